/* actions-core: file.write, see file_write.h. */
#define _GNU_SOURCE /* O_CLOEXEC, mkdtemp, syscall, strtok_r */
#include "file_write.h"

#include <blkid/blkid.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "actions_core.h"
#include "crypt_holder.h"
#include "target_disk.h"

#define CONTENT_MAX (1u << 20) /* longest content written (the host may cap parameters lower) */
#define FS_PATH_MAX 1024       /* longest path inside the filesystem */
#define FS_NAME_MAX 255        /* longest path component */
#define PARTS_MAX 256          /* most partitions looked at on one disk */
#define PART_LIST_MAX 512      /* longest list of partitions quoted in a message */
#define LOOP_ATTEMPTS 8        /* tries when another process takes the free loop device first */
#define UMOUNT_ATTEMPTS 20     /* tries, 50 ms apart, while the filesystem is busy */

const ep_field_decl file_write_params[] = {
    EP_FIELD_STRING_DECL("path", NULL, EP_FIELD_REQUIRED, FS_PATH_MAX, "absolute path of the file inside the filesystem; no '.' or '..' components"),
    EP_FIELD_STRING_DECL("content", "", EP_FIELD_OPTIONAL, CONTENT_MAX, "the file's text"),
    EP_FIELD_STRING_DECL("mode", "0644", EP_FIELD_OPTIONAL, 5, "permissions in octal, like 0600 (ignored on vfat)"),
    EP_FIELD_INT_DECL("uid", "0", EP_FIELD_OPTIONAL, 0, 4294967294, "owner's user ID (ignored on vfat)"),
    EP_FIELD_INT_DECL("gid", "0", EP_FIELD_OPTIONAL, 0, 4294967294, "owner's group ID (ignored on vfat)"),
    EP_FIELD_INT_DECL("partition", "0", EP_FIELD_OPTIONAL, 0, PARTS_MAX, "number of the partition to write into, 1-based; 0: use partition_label"),
    EP_FIELD_STRING_DECL("partition_label", "", EP_FIELD_OPTIONAL, 72, "filesystem LABEL or GPT PARTLABEL of the partition to write into"),
    EP_FIELD_STRING_DECL("target", "", EP_FIELD_OPTIONAL, 255, "disk or image file holding the partition; empty: target_serial or the first fixed disk"),
    EP_FIELD_STRING_DECL("target_serial", "", EP_FIELD_OPTIONAL, 64, "choose the disk with this serial number"),
    EP_FIELD_STRING_DECL("directory", "", EP_FIELD_OPTIONAL, 255, "write below this host directory instead (nothing is mounted); excludes partition, partition_label and target"),
};
const uint32_t file_write_params_count = sizeof file_write_params / sizeof file_write_params[0];

/* One partition of the target, as its table and its filesystem's superblock describe it. */
typedef struct part_info {
  int number;
  uint64_t offset, size; /* bytes */
  char type[16];         /* filesystem type, "" when none was recognised */
  char label[64];        /* filesystem LABEL */
  char partlabel[80];    /* GPT PARTLABEL */
  char holder[32];       /* the LUKS mapping that holds it ("/dev/dm-N"): type and label are its file system's */
} part_info;

/* What has been set up to reach the filesystem, undone in reverse by release_fs. */
typedef struct mounted_fs {
  int disk_fd;
  int loop_fd;
  char loop_path[32];
  char dir[64]; /* the private mount point */
  bool dir_made, mounted;
  bool shared;  /* the disk is open without O_EXCL: a LUKS mapping holds one of its partitions */
  char disk_name[64]; /* the block device's kernel name ("sda"), "" for an image file */
} mounted_fs;

/* Checks path (absolute, no '.' or '..', no trailing '/') and stores it in rel without its
 * leading '/' and with repeated '/' collapsed. */
static int32_t check_path(const ep_host *host, ep_ctx *ctx, const char *path, char rel[FS_PATH_MAX + 1]) {
  if (path[0] != '/' || strlen(path) > FS_PATH_MAX)
    return ep_failf(host, ctx, EP_EINVAL, "path: '%.64s' must be an absolute path inside the filesystem", path);
  size_t len = 0;
  for (const char *p = path; *p;) {
    while (*p == '/') p++;
    size_t n = strcspn(p, "/");
    if (!n) break;
    if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
      return ep_failf(host, ctx, EP_EINVAL, "path: '%.200s' must not contain '.' or '..' components", path);
    if (n > FS_NAME_MAX)
      return ep_failf(host, ctx, EP_EINVAL, "path: a component of '%.64s...' is longer than %d bytes", path, FS_NAME_MAX);
    if (len) rel[len++] = '/';
    memcpy(rel + len, p, n);
    len += n;
    p += n;
  }
  rel[len] = '\0';
  if (!len || path[strlen(path) - 1] == '/')
    return ep_failf(host, ctx, EP_EINVAL, "path: '%.200s' names a directory; give the file's name", path);
  return 0;
}

/* Parses octal permissions ("644", "0600", "01777"). */
static int32_t parse_mode(const ep_host *host, ep_ctx *ctx, const char *text, mode_t *out) {
  size_t len = strlen(text);
  bool ok = len >= 3 && len <= 5 && strspn(text, "01234567") == len;
  unsigned long value = ok ? strtoul(text, NULL, 8) : 0;
  if (!ok || value > 07777) return ep_failf(host, ctx, EP_EINVAL, "mode: '%.16s' is not octal permissions like 0644", text);
  *out = (mode_t)value;
  return 0;
}

/* Opens directory rel (relative, no '..') below root, resolving symlinks as if root were "/"
 * (openat2 RESOLVE_IN_ROOT, Linux 5.6); on older kernels symlinks are refused instead.
 * Returns a descriptor, or -1 with errno set. */
static int open_in_root(int root, const char *rel) {
  struct open_how how = {.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
  int fd = (int)syscall(SYS_openat2, root, rel, &how, sizeof how);
  if (fd >= 0 || errno != ENOSYS) return fd;
  char copy[FS_PATH_MAX + 1];
  snprintf(copy, sizeof copy, "%s", rel);
  int dir = fcntl(root, F_DUPFD_CLOEXEC, 0);
  char *save = NULL;
  for (char *comp = strtok_r(copy, "/", &save); dir >= 0 && comp; comp = strtok_r(NULL, "/", &save)) {
    int next = openat(dir, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int err = errno;
    close(dir);
    errno = err;
    dir = next;
  }
  return dir;
}

/* Opens the parent directory of rel below root, creating missing directories 0755. */
static int32_t open_parent(const ep_host *host, ep_ctx *ctx, int root, const char *where, const char *rel, int *ret_fd) {
  int dir = fcntl(root, F_DUPFD_CLOEXEC, 0);
  if (dir < 0) return ep_failf(host, ctx, -errno, "%s: %s", where, strerror(errno));
  char prefix[FS_PATH_MAX + 1];
  for (const char *slash = strchr(rel, '/'); slash; slash = strchr(slash + 1, '/')) {
    size_t len = (size_t)(slash - rel);
    memcpy(prefix, rel, len);
    prefix[len] = '\0';
    const char *comp = strrchr(prefix, '/') ? strrchr(prefix, '/') + 1 : prefix;
    int next = open_in_root(root, prefix);
    bool made = false;
    if (next < 0 && errno == ENOENT) {
      if (mkdirat(dir, comp, 0755) < 0 && errno != EEXIST) {
        int err = errno;
        close(dir);
        return ep_failf(host, ctx, -err, "path: cannot create directory /%s in %s: %s", prefix, where, strerror(err));
      }
      made = true;
      next = open_in_root(root, prefix);
    }
    if (next < 0) {
      int err = errno;
      close(dir);
      return ep_failf(host, ctx, -err, "path: cannot open directory /%s in %s: %s", prefix, where, strerror(err));
    }
    if (made) (void)fchmod(next, 0755); /* whatever the umask */
    close(dir);
    dir = next;
  }
  *ret_fd = dir;
  return 0;
}

/* Writes content to rel below root atomically: a temporary file in the same directory,
 * owner and mode set (when owners), fsync, rename over rel, fsync of the directory. */
static int32_t write_file(const ep_host *host, ep_ctx *ctx, int root, const char *where, const char *rel, const char *content,
                          size_t len, mode_t mode, uid_t uid, gid_t gid, bool owners) {
  int dir = -1;
  int32_t r = open_parent(host, ctx, root, where, rel, &dir);
  if (r < 0) return r;
  const char *name = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
  uint64_t nonce = 0;
  if (getrandom(&nonce, sizeof nonce, GRND_NONBLOCK) != (ssize_t)sizeof nonce)
    nonce = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
  char tmp[48];
  snprintf(tmp, sizeof tmp, ".edgeprov-%016llx.tmp", (unsigned long long)nonce);
  int fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    r = ep_failf(host, ctx, -errno, "path: cannot create a file next to /%s in %s: %s", rel, where, strerror(errno));
    close(dir);
    return r;
  }
  for (size_t done = 0; r == 0 && done < len;) {
    ssize_t n = write(fd, content + done, len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) r = ep_failf(host, ctx, EP_EIO, "path: writing /%s in %s: %s", rel, where, n < 0 ? strerror(errno) : "no space");
    else done += (size_t)n;
  }
  if (r == 0 && owners && fchown(fd, uid, gid) < 0)
    r = ep_failf(host, ctx, -errno, "uid/gid: cannot give /%s in %s to %u:%u: %s", rel, where, (unsigned)uid, (unsigned)gid,
                 strerror(errno));
  if (r == 0 && owners && fchmod(fd, mode) < 0) /* after fchown, which clears set-ID bits */
    r = ep_failf(host, ctx, -errno, "mode: cannot set %04o on /%s in %s: %s", (unsigned)mode, rel, where, strerror(errno));
  if (r == 0 && fsync(fd) < 0) r = ep_failf(host, ctx, EP_EIO, "path: fsync of /%s in %s: %s", rel, where, strerror(errno));
  if (close(fd) < 0 && r == 0) r = ep_failf(host, ctx, EP_EIO, "path: closing /%s in %s: %s", rel, where, strerror(errno));
  if (r == 0 && renameat(dir, tmp, dir, name) < 0)
    r = ep_failf(host, ctx, -errno, "path: cannot replace /%s in %s: %s", rel, where, strerror(errno));
  if (r < 0) unlinkat(dir, tmp, 0);
  if (r == 0 && fsync(dir) < 0 && errno != EINVAL)
    r = ep_failf(host, ctx, EP_EIO, "path: fsync of the directory of /%s in %s: %s", rel, where, strerror(errno));
  close(dir);
  return r;
}

/* Fills p's type and labels from the superblock found in its byte range, if any. */
static void probe_filesystem(int fd, part_info *p) {
  blkid_probe probe = blkid_new_probe();
  if (!probe) return;
  const char *value = NULL;
  if (blkid_probe_set_device(probe, fd, (blkid_loff_t)p->offset, (blkid_loff_t)p->size) == 0 &&
      blkid_probe_enable_superblocks(probe, 1) == 0 &&
      blkid_probe_set_superblocks_flags(probe, BLKID_SUBLKS_LABEL | BLKID_SUBLKS_TYPE) == 0 && blkid_do_safeprobe(probe) == 0) {
    if (blkid_probe_lookup_value(probe, "TYPE", &value, NULL) == 0) snprintf(p->type, sizeof p->type, "%s", value);
    if (blkid_probe_lookup_value(probe, "LABEL", &value, NULL) == 0) snprintf(p->label, sizeof p->label, "%s", value);
  }
  blkid_free_probe(probe);
}

/* Lists the partitions of the table on the disk itself (libblkid), with their filesystems. */
static int32_t list_partitions(const ep_host *host, ep_ctx *ctx, int fd, const char *disk, const char *disk_name,
                               const char *param, part_info *parts, int *ret_count) {
  blkid_probe probe = blkid_new_probe();
  if (!probe) return ep_failf(host, ctx, EP_ENOMEM, "out of memory");
  blkid_partlist list = blkid_probe_set_device(probe, fd, 0, 0) == 0 ? blkid_probe_get_partitions(probe) : NULL;
  int count = list ? blkid_partlist_numof_partitions(list) : 0, n = 0;
  for (int i = 0; i < count && n < PARTS_MAX; i++) {
    blkid_partition part = blkid_partlist_get_partition(list, i);
    part_info *p = &parts[n++];
    memset(p, 0, sizeof *p);
    p->number = blkid_partition_get_partno(part);
    p->offset = (uint64_t)blkid_partition_get_start(part) * 512; /* libblkid counts 512-byte sectors */
    p->size = (uint64_t)blkid_partition_get_size(part) * 512;
    const char *name = blkid_partition_get_name(part);
    snprintf(p->partlabel, sizeof p->partlabel, "%s", name ? name : "");
    probe_filesystem(fd, p);
    /* Opened with LUKS (image.stream's fde): the file system and its label are inside the mapping. */
    if (*disk_name && crypt_holder_find("", disk_name, p->number, p->holder, sizeof p->holder)) {
      int holder_fd = open(p->holder, O_RDONLY | O_CLOEXEC);
      part_info inside = {0};
      if (holder_fd >= 0) {
        probe_filesystem(holder_fd, &inside); /* offset and size 0: the whole mapping */
        close(holder_fd);
      }
      memcpy(p->type, inside.type, sizeof p->type);
      memcpy(p->label, inside.label, sizeof p->label);
    }
  }
  blkid_free_probe(probe);
  if (n == 0) return ep_failf(host, ctx, EP_ENOENT, "%s: %s has no partition table (or no partitions)", param, disk);
  *ret_count = n;
  return 0;
}

/* "1 vfat 'ESP', 2 ext4 'cloudimg-rootfs' (PARTLABEL 'root')" for messages; cut at cap. */
static void describe_partitions(const part_info *parts, int n, char *out, size_t cap) {
  size_t len = 0;
  out[0] = '\0';
  for (int i = 0; i < n; i++) {
    const part_info *p = &parts[i];
    char label[80] = "", partlabel[100] = "";
    if (p->label[0]) snprintf(label, sizeof label, " '%s'", p->label);
    if (p->partlabel[0]) snprintf(partlabel, sizeof partlabel, " (PARTLABEL '%s')", p->partlabel);
    int w = snprintf(out + len, cap - len, "%s%d %s%s%s", i ? ", " : "", p->number, p->type[0] ? p->type : "(no filesystem)",
                     label, partlabel);
    if (w < 0 || (size_t)w >= cap - len) break;
    len += (size_t)w;
  }
}

static bool mountable(const char *type) {
  static const char *const types[] = {"ext4", "ext3", "ext2", "vfat", "xfs", "btrfs"};
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
    if (strcmp(type, types[i]) == 0) return true;
  return false;
}

/* Chooses the partition by number or by label among parts; it must hold a mountable filesystem. */
static int32_t select_partition(const ep_host *host, ep_ctx *ctx, const char *disk, const part_info *parts, int n,
                                int64_t number, const char *label, part_info *out) {
  char list[PART_LIST_MAX];
  describe_partitions(parts, n, list, sizeof list);
  int found = -1, matches = 0;
  for (int i = 0; i < n; i++) {
    bool match = number ? parts[i].number == number : strcmp(parts[i].label, label) == 0 || strcmp(parts[i].partlabel, label) == 0;
    if (match && found < 0) found = i;
    matches += match;
  }
  const char *param = number ? "partition" : "partition_label";
  if (number && found < 0)
    return ep_failf(host, ctx, EP_ENOENT, "partition: %s has no partition %lld (it has: %s)", disk, (long long)number, list);
  if (found < 0)
    return ep_failf(host, ctx, EP_ENOENT, "partition_label: no filesystem labelled '%s' on %s (partitions: %s)", label, disk, list);
  if (matches > 1)
    return ep_failf(host, ctx, EP_EINVAL, "partition_label: %d partitions of %s are labelled '%s' (partitions: %s); give partition instead",
                    matches, disk, label, list);
  const part_info *p = &parts[found];
  if (!p->type[0])
    return ep_failf(host, ctx, EP_EINVAL, "%s: partition %d of %s holds no filesystem libblkid recognises", param, p->number, disk);
  if (!mountable(p->type))
    return ep_failf(host, ctx, EP_ENOTSUP, "%s: partition %d of %s holds %s; file.write mounts ext4, ext3, ext2, vfat, xfs or btrfs",
                    param, p->number, disk, p->type);
  *out = *p;
  return 0;
}

/* Opens the target read-write; a block device exclusively, so it fails while any of its
 * partitions is mounted and nobody mounts one while the loop device is in use. A disk one of
 * whose partitions a LUKS mapping holds (it is open for this workflow) is opened shared, read
 * only: then only a partition inside such a mapping may be written (m->shared). */
static int32_t open_disk(const ep_host *host, ep_ctx *ctx, const char *disk, mounted_fs *m) {
  struct stat st;
  if (stat(disk, &st) < 0) return ep_failf(host, ctx, -errno, "target: cannot open %s: %s", disk, strerror(errno));
  if (!S_ISBLK(st.st_mode) && !S_ISREG(st.st_mode))
    return ep_failf(host, ctx, EP_EINVAL, "target: %s is neither a block device nor an image file", disk);
  char holder[32];
  /* sysfs names the disk by its numbers (a udev link's basename names nothing there). */
  if (S_ISBLK(st.st_mode) && sysfs_block_name("", major(st.st_rdev), minor(st.st_rdev), m->disk_name, sizeof m->disk_name) < 0)
    m->disk_name[0] = '\0';
  int fd = open(disk, O_RDWR | O_CLOEXEC | (S_ISBLK(st.st_mode) ? O_EXCL : 0));
  if (fd < 0 && errno == EBUSY && crypt_holder_find("", m->disk_name, 0, holder, sizeof holder)) {
    fd = open(disk, O_RDONLY | O_CLOEXEC);
    m->shared = fd >= 0;
  }
  if (fd < 0 && errno == EBUSY)
    return ep_failf(host, ctx, -EBUSY, "target: %s is in use (is one of its partitions mounted?); file.write will not mount a filesystem twice",
                    disk);
  if (fd < 0) return ep_failf(host, ctx, -errno, "target: cannot open %s: %s", disk, strerror(errno));
  m->disk_fd = fd;
  return 0;
}

/* Binds the loop device fd to p's byte range of the disk, detached automatically once the
 * last user closes it: LOOP_CONFIGURE, or LOOP_SET_FD + LOOP_SET_STATUS64 before Linux 5.8.
 * Returns 0 or an errno value. */
static int bind_loop(int fd, int disk_fd, const char *disk, const part_info *p) {
  struct loop_config config = {.fd = (uint32_t)disk_fd,
                               .info = {.lo_offset = p->offset, .lo_sizelimit = p->size, .lo_flags = LO_FLAGS_AUTOCLEAR}};
  snprintf((char *)config.info.lo_file_name, LO_NAME_SIZE, "%.63s", disk);
  if (ioctl(fd, LOOP_CONFIGURE, &config) == 0) return 0;
  if (errno != EINVAL && errno != ENOTTY) return errno;
  if (ioctl(fd, LOOP_SET_FD, disk_fd) < 0) return errno;
  if (ioctl(fd, LOOP_SET_STATUS64, &config.info) == 0) return 0;
  int err = errno;
  ioctl(fd, LOOP_CLR_FD, 0);
  return err;
}

/* Attaches a free loop device to the partition (the kernel need not know the partition). */
static int32_t attach_loop(const ep_host *host, ep_ctx *ctx, mounted_fs *m, const char *disk, const part_info *p, const char *param) {
  int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (ctl < 0)
    return ep_failf(host, ctx, -errno, "%s: cannot open /dev/loop-control to reach partition %d of %s: %s", param, p->number, disk,
                    strerror(errno));
  int32_t r = 0;
  for (int attempt = 1; attempt <= LOOP_ATTEMPTS; attempt++) {
    int n = ioctl(ctl, LOOP_CTL_GET_FREE);
    if (n < 0) {
      r = ep_failf(host, ctx, -errno, "%s: no free loop device for partition %d of %s: %s", param, p->number, disk, strerror(errno));
      break;
    }
    snprintf(m->loop_path, sizeof m->loop_path, "/dev/loop%d", n);
    int fd = open(m->loop_path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      r = ep_failf(host, ctx, -errno, "%s: cannot open %s: %s", param, m->loop_path, strerror(errno));
      break;
    }
    int err = bind_loop(fd, m->disk_fd, disk, p);
    if (!err) {
      m->loop_fd = fd;
      r = 0;
      break;
    }
    close(fd);
    r = ep_failf(host, ctx, -err, "%s: cannot attach partition %d of %s to %s: %s", param, p->number, disk, m->loop_path, strerror(err));
    if (err != EBUSY) break; /* else another process took it first: ask again */
  }
  close(ctl);
  return r;
}

/* Mounts the loop device on a new private directory under /run (or /tmp). */
static int32_t mount_fs(const ep_host *host, ep_ctx *ctx, mounted_fs *m, const char *disk, const part_info *p, const char *param) {
  const char *base = access("/run", W_OK) == 0 ? "/run" : "/tmp";
  snprintf(m->dir, sizeof m->dir, "%s/edgeprov-mnt.XXXXXX", base);
  if (!mkdtemp(m->dir)) return ep_failf(host, ctx, -errno, "cannot make a mount point under %s: %s", base, strerror(errno));
  m->dir_made = true;
  const unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME;
  const char *options = strcmp(p->type, "xfs") == 0 ? "nouuid" : NULL; /* a clone of a mounted image shares its UUID */
  int rc = mount(m->loop_path, m->dir, p->type, flags, options);
  if (rc < 0 && errno == ENODEV && (!strcmp(p->type, "ext2") || !strcmp(p->type, "ext3")))
    rc = mount(m->loop_path, m->dir, "ext4", flags, NULL); /* the ext4 driver serves ext2 and ext3 when they are not built */
  if (rc < 0 && errno == ENODEV)
    return ep_failf(host, ctx, EP_ENOTSUP, "%s: partition %d of %s holds %s, which this kernel cannot mount", param, p->number, disk,
                    p->type);
  if (rc < 0)
    return ep_failf(host, ctx, -errno, "%s: cannot mount partition %d of %s (%s) through %s: %s", param, p->number, disk, p->type,
                    m->loop_path, strerror(errno));
  m->mounted = true;
  return 0;
}

/* Undoes mount_fs, attach_loop and open_disk in reverse. Returns r, or a failure when r is 0
 * and the filesystem would not unmount or the disk would not sync. */
static int32_t release_fs(const ep_host *host, ep_ctx *ctx, mounted_fs *m, int32_t r) {
  if (m->mounted) {
    int rc;
    for (int i = 1; (rc = umount2(m->dir, 0)) < 0 && errno == EBUSY && i < UMOUNT_ATTEMPTS; i++)
      nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
    if (rc < 0) {
      int err = errno;
      umount2(m->dir, MNT_DETACH); /* out of sight now; the loop device goes once the kernel lets go */
      if (r == 0)
        r = ep_failf(host, ctx, -err, "cannot unmount %s: %s (detached lazily: the file may not be on disk yet)", m->dir, strerror(err));
    }
    m->mounted = false;
  }
  if (m->dir_made && rmdir(m->dir) < 0) ep_logf(host, ctx, EP_LOG_WARN, "cannot remove %s: %s", m->dir, strerror(errno));
  m->dir_made = false;
  if (m->loop_fd >= 0) {
    ioctl(m->loop_fd, LOOP_CLR_FD, 0); /* already autoclear: detached at the close below */
    close(m->loop_fd);
    m->loop_fd = -1;
  }
  if (m->disk_fd >= 0) {
    if (r == 0 && fsync(m->disk_fd) < 0) r = ep_failf(host, ctx, EP_EIO, "target: fsync: %s", strerror(errno));
    close(m->disk_fd);
    m->disk_fd = -1;
  }
  return r;
}

static void report(const ep_host *host, ep_ctx *ctx, const char *where, const char *rel, size_t len, mode_t mode, int64_t uid,
                   int64_t gid, bool owners) {
  char message[64];
  snprintf(message, sizeof message, "/%.40s written", rel);
  host->progress(ctx, len, len, message);
  if (owners)
    ep_logf(host, ctx, EP_LOG_INFO, "%s: /%s written (%zu bytes, mode %04o, owner %lld:%lld)", where, rel, len, (unsigned)mode,
            (long long)uid, (long long)gid);
  else
    ep_logf(host, ctx, EP_LOG_INFO, "%s: /%s written (%zu bytes)", where, rel, len);
}

int32_t file_write_run(void *plugin_state, ep_ctx *ctx) {
  const ep_host *host = ((actions_core_state *)plugin_state)->host;
  const char *path = "", *content = "", *mode_text = "0644", *label = "", *directory = "", *target = "";
  int64_t number = 0, uid = 0, gid = 0;
  host->param_string(ctx, "path", &path);
  host->param_string(ctx, "content", &content);
  host->param_string(ctx, "mode", &mode_text);
  host->param_string(ctx, "partition_label", &label);
  host->param_string(ctx, "directory", &directory);
  host->param_string(ctx, "target", &target);
  host->param_int(ctx, "partition", &number);
  host->param_int(ctx, "uid", &uid);
  host->param_int(ctx, "gid", &gid);
  size_t len = strnlen(content, CONTENT_MAX + 1);
  if (len > CONTENT_MAX) return ep_failf(host, ctx, EP_ERANGE, "content: longer than %u bytes", CONTENT_MAX);
  char rel[FS_PATH_MAX + 1];
  mode_t mode = 0;
  int32_t r = check_path(host, ctx, path, rel);
  if (r == 0) r = parse_mode(host, ctx, mode_text, &mode);
  if (r < 0) return r;

  if (*directory) {
    if (number || *label || *target)
      return ep_failf(host, ctx, EP_EINVAL, "directory: give directory, or partition/partition_label on a target, not both");
    if (directory[0] != '/') return ep_failf(host, ctx, EP_EINVAL, "directory: '%.64s' must be an absolute path", directory);
    int root = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) return ep_failf(host, ctx, -errno, "directory: cannot open %s: %s", directory, strerror(errno));
    char where[300];
    snprintf(where, sizeof where, "directory %.255s", directory);
    r = write_file(host, ctx, root, where, rel, content, len, mode, (uid_t)uid, (gid_t)gid, true);
    close(root);
    if (r == 0) report(host, ctx, where, rel, len, mode, uid, gid, true);
    return r;
  }

  if (!number == !*label) return ep_failf(host, ctx, EP_EINVAL, "partition and partition_label: give one of them (or directory)");
  const char *param = number ? "partition" : "partition_label";
  char disk[TARGET_PATH_MAX];
  r = target_disk_resolve(host, ctx, "", disk);
  if (r < 0) return r;
  mounted_fs m = {.disk_fd = -1, .loop_fd = -1};
  part_info *parts = calloc(PARTS_MAX, sizeof *parts);
  part_info chosen = {0};
  int count = 0;
  if (!parts) return ep_failf(host, ctx, EP_ENOMEM, "out of memory");
  r = open_disk(host, ctx, disk, &m);
  if (r == 0) r = list_partitions(host, ctx, m.disk_fd, disk, m.disk_name, param, parts, &count);
  if (r == 0) r = select_partition(host, ctx, disk, parts, count, number, label, &chosen);
  free(parts);
  if (r == 0 && m.shared && !chosen.holder[0])
    r = ep_failf(host, ctx, -EBUSY, "target: %s is in use (a LUKS mapping holds one of its partitions, not partition %d); file.write "
                 "will not write beside it", disk, chosen.number);
  if (r == 0 && chosen.holder[0]) /* mounted as it is: the mapping is the partition's clear view */
    snprintf(m.loop_path, sizeof m.loop_path, "%s", chosen.holder);
  else if (r == 0)
    r = attach_loop(host, ctx, &m, disk, &chosen, param);
  if (r == 0) r = mount_fs(host, ctx, &m, disk, &chosen, param);
  char where[TARGET_PATH_MAX + 128] = "";
  bool owners = r == 0 && strcmp(chosen.type, "vfat") != 0; /* FAT keeps neither owners nor modes */
  if (r == 0) {
    snprintf(where, sizeof where, "partition %d of %s (%s%s%s)", chosen.number, disk, chosen.type,
             chosen.holder[0] ? " inside LUKS, through " : "", chosen.holder);
    if (!owners && (mode != 0644 || uid || gid))
      ep_logf(host, ctx, EP_LOG_WARN, "%s: vfat keeps no owner or mode: mode, uid and gid are ignored", where);
    int root = open(m.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) r = ep_failf(host, ctx, -errno, "cannot open the mount point %s: %s", m.dir, strerror(errno));
    if (r == 0) r = write_file(host, ctx, root, where, rel, content, len, mode, (uid_t)uid, (gid_t)gid, owners);
    if (root >= 0) close(root);
  }
  r = release_fs(host, ctx, &m, r);
  if (r == 0) report(host, ctx, where, rel, len, mode, uid, gid, owners);
  return r;
}
