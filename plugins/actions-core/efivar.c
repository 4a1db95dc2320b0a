/* actions-core: reading a UEFI variable from efivarfs, see efivar.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_CLOEXEC */
#endif
#include "efivar.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

uint32_t efivar_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int efivar_read_at(int dir, const char *name, uint8_t *raw, size_t max) {
  int fd = openat(dir, name, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  size_t len = 0;
  int r = 0;
  for (;;) {
    if (len == 4 + max) { /* full: one byte more means too large */
      uint8_t extra;
      ssize_t n = read(fd, &extra, 1);
      r = n > 0 ? -EFBIG : n < 0 ? -errno : 0;
      break;
    }
    ssize_t n = read(fd, raw + len, 4 + max - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) r = -errno;
    if (n <= 0) break;
    len += (size_t)n;
  }
  close(fd);
  if (r == 0 && len < 4) r = -EINVAL;
  return r < 0 ? r : (int)(len - 4);
}
