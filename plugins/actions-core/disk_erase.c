/* actions-core: disk.erase, see disk_erase.h. */
#define _GNU_SOURCE /* O_CLOEXEC */
#include "disk_erase.h"

#include <blkid/blkid.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "actions_core.h"
#include "fde.h"
#include "target_disk.h"

#define WIPE_BYTES (1u << 20)

const ep_field_decl disk_erase_params[] = {
    EP_FIELD_STRING_DECL("target", "", EP_FIELD_OPTIONAL, 255, "disk or image file to erase; empty: target_serial or the first fixed disk"),
    EP_FIELD_STRING_DECL("target_serial", "", EP_FIELD_OPTIONAL, 64, "choose the disk with this serial number"),
    EP_FIELD_BOOL_DECL("fde", "false", EP_FIELD_OPTIONAL,
                       "the disk is to be encrypted (image.stream fde): fail before erasing on a node without a TPM 2.0 "
                       "or without Secure Boot enforcing, so it keeps its old disk"),
    EP_FIELD_BOOL_DECL("fde_without_secure_boot", "false", EP_FIELD_OPTIONAL,
                       "encrypt even where the firmware does not enforce Secure Boot (off, setup mode, no UEFI); weakens "
                       "the protection: PCR 7 then records Secure Boot off: any OS booted with Secure Boot off opens the disk"),
};
const uint32_t disk_erase_params_count = sizeof disk_erase_params / sizeof disk_erase_params[0];

/* Zeroes [offset, offset + len) clipped to size. */
static int32_t zero_range(const ep_host *host, ep_ctx *ctx, int fd, const char *path, const uint8_t *zeros, uint64_t offset,
                          uint64_t len, uint64_t size) {
  if (offset >= size) return 0;
  if (offset + len > size) len = size - offset;
  while (len) {
    ssize_t n = pwrite(fd, zeros, len < WIPE_BYTES ? (size_t)len : WIPE_BYTES, (off_t)offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ep_failf(host, ctx, EP_EIO, "%s: write at %llu: %s", path, (unsigned long long)offset, strerror(errno));
    offset += (uint64_t)n, len -= (uint64_t)n;
  }
  return 0;
}

/* Wipes the start and end of every partition the disk's partition table lists (read with
 * libblkid from the disk itself, so image files and disks the kernel did not scan count). */
static int32_t wipe_partitions(const ep_host *host, ep_ctx *ctx, int fd, const char *path, const uint8_t *zeros,
                               uint64_t size) {
  blkid_probe probe = blkid_new_probe_from_filename(path);
  if (!probe) return 0; /* nothing readable: the whole-disk wipe still runs */
  blkid_probe_enable_partitions(probe, 1);
  blkid_partlist list = blkid_do_fullprobe(probe) == 0 ? blkid_probe_get_partitions(probe) : NULL;
  int count = list ? blkid_partlist_numof_partitions(list) : 0;
  int32_t r = 0;
  for (int i = 0; r == 0 && i < count; i++) {
    blkid_partition part = blkid_partlist_get_partition(list, i);
    uint64_t start = (uint64_t)blkid_partition_get_start(part) * 512, length = (uint64_t)blkid_partition_get_size(part) * 512;
    if (!start || !length) continue;
    r = zero_range(host, ctx, fd, path, zeros, start, WIPE_BYTES, size);
    if (r == 0 && length > WIPE_BYTES) r = zero_range(host, ctx, fd, path, zeros, start + length - WIPE_BYTES, WIPE_BYTES, size);
  }
  if (count > 0) ep_logf(host, ctx, EP_LOG_INFO, "%s: %d partition(s) wiped", path, count);
  blkid_free_probe(probe);
  return r;
}

int32_t disk_erase_run(void *plugin_state, ep_ctx *ctx) {
  const ep_host *host = ((actions_core_state *)plugin_state)->host;
  char path[TARGET_PATH_MAX];
  int32_t fde = 0;
  host->param_bool(ctx, "fde", &fde);
  int32_t r = target_disk_resolve(host, ctx, "", path);
  if (r < 0) return r;
  /* A node asked for FDE that cannot do it keeps the disk it has: image.stream would refuse it
   * only after this erase. */
  char tcti[FDE_TCTI_MAX];
  if (fde && (r = fde_tpm_check(host, ctx, tcti)) < 0) return r;
  if (fde && (r = fde_secure_boot_check(host, ctx, "nothing erased")) < 0) return r;
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return ep_failf(host, ctx, -errno, "target: cannot open %s: %s", path, strerror(errno));
  struct stat st;
  uint64_t size = 0;
  bool block = fstat(fd, &st) == 0 && S_ISBLK(st.st_mode);
  if (block && ioctl(fd, BLKGETSIZE64, &size) < 0) size = 0;
  if (!block) size = (uint64_t)st.st_size;
  uint8_t *zeros = calloc(1, WIPE_BYTES);
  if (!zeros) r = ep_failf(host, ctx, EP_ENOMEM, "out of memory");
  if (r == 0) r = wipe_partitions(host, ctx, fd, path, zeros, size); /* before the table that lists them */
  if (r == 0) r = zero_range(host, ctx, fd, path, zeros, 0, WIPE_BYTES, size);
  if (r == 0 && size > WIPE_BYTES) r = zero_range(host, ctx, fd, path, zeros, size - WIPE_BYTES, WIPE_BYTES, size);
  if (r == 0 && fsync(fd) < 0) r = ep_failf(host, ctx, EP_EIO, "%s: fsync: %s", path, strerror(errno));
  if (r == 0 && block && ioctl(fd, BLKRRPART) < 0 && errno != EINVAL)
    ep_logf(host, ctx, EP_LOG_WARN, "%s: the kernel did not reread the partition table: %s", path, strerror(errno));
  if (r == 0) {
    host->progress(ctx, size, size, "erased");
    ep_logf(host, ctx, EP_LOG_INFO, "%s: partition tables and signatures erased (%llu bytes)", path, (unsigned long long)size);
  }
  free(zeros);
  close(fd);
  return r;
}
