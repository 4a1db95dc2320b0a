/* agent: credentials in a UEFI variable, see firmware_store.h. */
#define _GNU_SOURCE /* explicit_bzero */
#include "firmware_store.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "base/error.h"

#define EFI_ATTRIBUTES 0x7u /* NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS */

static int var_path(char *out, size_t cap, const char *efivars_dir) {
  int n = snprintf(out, cap, "%s/%s", efivars_dir, EP_FIRMWARE_CREDENTIALS);
  return n > 0 && (size_t)n < cap ? 0 : ep_error_set(EP_ERANGE, "efivars: path too long: %s", efivars_dir);
}

/* efivarfs marks variables immutable; a directory of plain files (tests) has no such flag. */
static void make_mutable(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  int flags = 0;
  if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && (flags & FS_IMMUTABLE_FL)) {
    flags &= ~FS_IMMUTABLE_FL;
    ioctl(fd, FS_IOC_SETFLAGS, &flags);
  }
  close(fd);
}

int ep_firmware_store_put(const char *efivars_dir, const char *text, size_t len) {
  char path[1024];
  if (len > EP_FIRMWARE_CREDENTIALS_MAX) return ep_error_set(EP_ERANGE, "efivars: credentials of %zu bytes", len);
  int r = var_path(path, sizeof path, efivars_dir);
  if (r < 0) return r;
  make_mutable(path);
  /* efivarfs takes a variable in one write: the attributes, then the data. */
  uint8_t buf[4 + EP_FIRMWARE_CREDENTIALS_MAX];
  uint32_t attributes = EFI_ATTRIBUTES;
  memcpy(buf, &attributes, 4);
  memcpy(buf + 4, text, len);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ssize_t written = fd < 0 ? -1 : write(fd, buf, 4 + len);
  int err = errno;
  explicit_bzero(buf, sizeof buf);
  if (fd >= 0) close(fd);
  if (written != (ssize_t)(4 + len))
    return ep_error_set(-err, "efivars: cannot write %s: %s", path, written < 0 ? strerror(err) : "short write");
  return 0;
}

int ep_firmware_store_get(const char *efivars_dir, char **out) {
  char path[1024];
  int r = var_path(path, sizeof path, efivars_dir);
  if (r < 0) return r;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? EP_ENOENT : ep_error_set(-errno, "efivars: cannot read %s: %s", path, strerror(errno));
  uint8_t buf[4 + EP_FIRMWARE_CREDENTIALS_MAX + 1];
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  if (n < 5 || n > 4 + EP_FIRMWARE_CREDENTIALS_MAX) {
    explicit_bzero(buf, sizeof buf);
    return ep_error_set(EP_EINVAL, "efivars: %s is not a credentials variable (%zd bytes)", path, n);
  }
  char *text = malloc((size_t)n - 4 + 1);
  if (text) {
    memcpy(text, buf + 4, (size_t)n - 4);
    text[n - 4] = '\0';
  }
  explicit_bzero(buf, sizeof buf);
  if (!text) return ep_error_set(EP_ENOMEM, "out of memory");
  *out = text;
  return 0;
}

int ep_firmware_store_delete(const char *efivars_dir) {
  char path[1024];
  int r = var_path(path, sizeof path, efivars_dir);
  if (r < 0) return r;
  make_mutable(path);
  if (unlink(path) < 0 && errno != ENOENT) return ep_error_set(-errno, "efivars: cannot remove %s: %s", path, strerror(errno));
  return 0;
}
