/* actions-core: where image.stream's bytes go when it encrypts a partition (fde=true, the split
 * stream of docs/design/fde.md C(i)): bytes before the partition and after it to the disk at
 * their own offset; the partition's bytes into the opened LUKS2 mapping at (offset - start),
 * except its last FDE_HEADER_ROOM bytes, which the image leaves zero (LUKS2's header takes
 * that room at the partition's start) and which go nowhere. Without a partition everything goes
 * to the disk. A pure function of its arguments and two file descriptors: the writer thread
 * calls it; tests use files for the disk and the mapping. */
#ifndef EP_ACTIONS_CORE_FDE_ROUTE_H
#define EP_ACTIONS_CORE_FDE_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <edgeprov/abi.h>

#define FDE_HEADER_ROOM (UINT64_C(16) << 20) /* LUKS2's default data offset: 16 MiB */

typedef struct fde_route {
  bool split;                 /* false: everything to disk_fd */
  uint64_t part_start, part_end; /* the partition's bytes in the image, [start, end) */
  int disk_fd;
  int mapping_fd;             /* -1 until the mapping is open: partition bytes then fail */
  const char *disk_name;      /* for messages */
  const char *mapping_name;
  const char *part_name;      /* the GPT name, for messages */
} fde_route;

/* Writes len bytes that belong at byte offset of the image where r sends them. Returns 0, or
 * EP_EIO (a write failed, or a partition byte came before the mapping was open) or EP_EINVAL
 * (a byte of the partition's last FDE_HEADER_ROOM is not zero: "image not built for FDE"; a split
 * route whose partition is not part_start < part_end - FDE_HEADER_ROOM <= part_end),
 * with message (cap bytes) saying which byte. */
int fde_route_write(const fde_route *r, const uint8_t *data, size_t len, uint64_t offset, char *message, size_t cap);

#endif
