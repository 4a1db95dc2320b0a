/* actions-core: where image.stream's bytes go when it encrypts a partition (fde=true, the split
 * stream of docs/design/fde.md C(i)): bytes before the partition and after it to the disk at
 * their own offset; the partition's bytes into the opened LUKS2 mapping at (offset - start),
 * except its last FDE_HEADER_ROOM bytes, which the image leaves zero (LUKS2's header takes
 * that room at the partition's start) and which go nowhere. Without a partition everything goes
 * to the disk. A function of its arguments, two file descriptors and the route's superblock probe:
 * the writer thread calls it; tests use files for the disk and the mapping. */
#ifndef EP_ACTIONS_CORE_FDE_ROUTE_H
#define EP_ACTIONS_CORE_FDE_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <edgeprov/abi.h>

#define FDE_HEADER_ROOM (UINT64_C(16) << 20) /* LUKS2's default data offset: 16 MiB */

/* The partition's ext2/3/4 superblock, gathered from the bytes as they pass (any order, any
 * buffer sizes): byte 1024 of the partition, through s_blocks_count_hi. */
#define FDE_EXT4_SB_AT 1024
#define FDE_EXT4_SB_LEN 0x154

typedef struct fde_fs_probe {
  uint8_t sb[FDE_EXT4_SB_LEN];
  uint8_t seen[FDE_EXT4_SB_LEN]; /* 1 where sb holds the image's byte */
  size_t seen_count;
  bool checked;
} fde_fs_probe;

typedef struct fde_route {
  bool split;                 /* false: everything to disk_fd */
  uint64_t part_start, part_end; /* the partition's bytes in the image, [start, end) */
  int disk_fd;
  int mapping_fd;             /* -1 until the mapping is open: partition bytes then fail */
  const char *disk_name;      /* for messages */
  const char *mapping_name;
  const char *part_name;      /* the GPT name, for messages */
  fde_fs_probe probe;         /* the writer's own: zero when the route is made */
} fde_route;

/* Writes len bytes that belong at byte offset of the image where r sends them. Returns 0, or
 * EP_EIO (a write failed, or a partition byte came before the mapping was open) or EP_EINVAL
 * ("image not built for FDE": a byte of the partition's last FDE_HEADER_ROOM is not zero, or the
 * partition holds an ext2/3/4 file system larger than the mapping (its superblock's block count
 * times block size: the exact rule the zero tail only approximates, checked once the superblock
 * has passed and before the buffer that completes it is written); a split route whose
 * partition is not part_start < part_end - FDE_HEADER_ROOM <= part_end), with message (cap
 * bytes) saying which byte or what size. Other file systems get the zero-tail rule only.
 * Updates r->probe: one writer at a time. */
int fde_route_write(fde_route *r, const uint8_t *data, size_t len, uint64_t offset, char *message, size_t cap);

#endif
