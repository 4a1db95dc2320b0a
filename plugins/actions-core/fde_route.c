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

int fde_route_write(const fde_route *r, const uint8_t *data, size_t len, uint64_t offset, char *message, size_t cap) {
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
