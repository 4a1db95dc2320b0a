/* actions-core: image.stream's routing of bytes around an encrypted partition, see fde_route.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pwrite */
#endif
#include "fde_route.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int write_all(int fd, const char *name, const uint8_t *data, size_t len, uint64_t at, char *message, size_t cap) {
  for (size_t done = 0; done < len;) {
    ssize_t n = pwrite(fd, data + done, len - done, (off_t)(at + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      snprintf(message, cap, "%.120s: write at byte %llu failed: %.80s", name, (unsigned long long)(at + done),
               n < 0 ? strerror(errno) : "no space");
      return EP_EIO;
    }
    done += (size_t)n;
  }
  return 0;
}

static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* Whether the superblock gathered in probe, when it is ext2/3/4's, fits the mapping's data_len
 * bytes. 0, or EP_EINVAL with message. */
static int ext4_fits(const fde_route *r, uint64_t data_len, char *message, size_t cap) {
  const uint8_t *sb = r->probe.sb;
  if (sb[0x38] != 0x53 || sb[0x39] != 0xef) return 0; /* s_magic: not ext2/3/4, the zero tail decides */
  uint32_t log_block = le32(sb + 0x18);               /* block size 1024 << s_log_block_size */
  uint64_t blocks = le32(sb + 0x04);
  if (le32(sb + 0x60) & 0x80) blocks |= (uint64_t)le32(sb + 0x150) << 32; /* INCOMPAT_64BIT */
  if (log_block > 6) {
    snprintf(message, cap, "image not built for FDE: partition '%.108s' holds an ext4 superblock with s_log_block_size %u "
             "(at most 6: 64 KiB blocks)", r->part_name, log_block);
    return EP_EINVAL;
  }
  unsigned shift = 10 + log_block;
  if (blocks > data_len >> shift) {
    snprintf(message, cap, "image not built for FDE: partition '%.108s' holds an ext4 file system of %llu blocks of %u "
             "bytes, larger than the %llu bytes its LUKS2 mapping has (the partition must be 16 MiB larger than its "
             "file system)", r->part_name, (unsigned long long)blocks, 1u << shift, (unsigned long long)data_len);
    return EP_EINVAL;
  }
  return 0;
}

/* Gathers the superblock's bytes from n bytes at mapping offset at; checks it once it is whole. */
static int probe_feed(fde_route *r, const uint8_t *p, size_t n, uint64_t at, uint64_t data_len, char *message, size_t cap) {
  fde_fs_probe *probe = &r->probe;
  if (probe->checked || at >= FDE_EXT4_SB_AT + FDE_EXT4_SB_LEN || at + n <= FDE_EXT4_SB_AT) return 0;
  uint64_t from = at > FDE_EXT4_SB_AT ? at : FDE_EXT4_SB_AT;
  uint64_t to = at + n < FDE_EXT4_SB_AT + FDE_EXT4_SB_LEN ? at + n : FDE_EXT4_SB_AT + FDE_EXT4_SB_LEN;
  for (uint64_t i = from; i < to; i++) {
    size_t k = (size_t)(i - FDE_EXT4_SB_AT);
    probe->sb[k] = p[i - at];
    if (!probe->seen[k]) probe->seen[k] = 1, probe->seen_count++;
  }
  if (probe->seen_count < FDE_EXT4_SB_LEN) return 0;
  probe->checked = true;
  return ext4_fits(r, data_len, message, cap);
}

int fde_route_write(fde_route *r, const uint8_t *data, size_t len, uint64_t offset, char *message, size_t cap) {
  if (!r->split) return write_all(r->disk_fd, r->disk_name, data, len, offset, message, cap);
  /* part_start < data_end <= part_end, or the pieces below overlap and wrap: a route from a
   * table that says otherwise is refused, whatever made it. */
  if (r->part_end <= r->part_start || r->part_end - r->part_start <= FDE_HEADER_ROOM) {
    snprintf(message, cap, "fde: partition '%.108s' (image bytes %llu-%llu) has no room for data before LUKS2's 16 MiB",
             r->part_name, (unsigned long long)r->part_start, (unsigned long long)r->part_end);
    return EP_EINVAL;
  }
  if (len > UINT64_MAX - offset) {
    snprintf(message, cap, "fde: %zu bytes at image byte %llu pass the end of any disk", len, (unsigned long long)offset);
    return EP_EINVAL;
  }
  uint64_t end = offset + len;
  uint64_t data_end = r->part_end - FDE_HEADER_ROOM; /* the mapping's last byte + 1, as image offsets */
  /* Pieces in order: [.., part_start) disk, [part_start, data_end) mapping, [data_end, part_end)
   * must be zero, [part_end, ..) disk; each cut to [offset, end). */
  const uint64_t lo[4] = {0, r->part_start, data_end, r->part_end};
  const uint64_t hi[4] = {r->part_start, data_end, r->part_end, UINT64_MAX};
  for (int piece = 0; piece < 4; piece++) {
    uint64_t from = lo[piece] > offset ? lo[piece] : offset;
    uint64_t to = hi[piece] < end ? hi[piece] : end;
    if (from >= to) continue;
    const uint8_t *p = data + (from - offset);
    size_t n = (size_t)(to - from);
    int rc = 0;
    switch (piece) {
    case 0:
    case 3: rc = write_all(r->disk_fd, r->disk_name, p, n, from, message, cap); break;
    case 1:
      if (r->mapping_fd < 0) {
        snprintf(message, cap, "fde: byte %llu belongs to partition '%.108s' but its mapping is not open",
                 (unsigned long long)from, r->part_name);
        return EP_EIO;
      }
      rc = probe_feed(r, p, n, from - r->part_start, data_end - r->part_start, message, cap);
      if (rc < 0) return rc;
      rc = write_all(r->mapping_fd, r->mapping_name, p, n, from - r->part_start, message, cap);
      break;
    default:
      for (size_t i = 0; i < n; i++)
        if (p[i]) {
          snprintf(message, cap,
                   "image not built for FDE: byte %llu of partition '%.108s' is not zero, but its last 16 MiB must be "
                   "(LUKS2's header takes that room: the partition must be 16 MiB larger than its file system)",
                   (unsigned long long)(from + i - r->part_start), r->part_name);
          return EP_EINVAL;
        }
    }
    if (rc < 0) return rc;
  }
  return 0;
}
