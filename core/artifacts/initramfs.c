/* core/artifacts: see initramfs.h. */
#define _GNU_SOURCE /* strdup */
#include "initramfs.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"

#define ZSTD_LEVEL "15"

typedef struct entry {
  char *path; /* absolute */
  mode_t type; /* S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR */
  mode_t perm;
  char *source;   /* S_IFREG from a file */
  uint8_t *data;  /* S_IFREG from memory */
  size_t len;
  char *link;     /* S_IFLNK */
  unsigned major, minor;
} entry;

struct ep_initramfs {
  entry *items;
  size_t count;
};

int ep_initramfs_new(ep_initramfs **out) {
  ep_initramfs *fs = calloc(1, sizeof *fs);
  if (!fs || !(fs->items = calloc(EP_INITRAMFS_ENTRIES_MAX, sizeof *fs->items))) {
    free(fs);
    return ep_error_set(EP_ENOMEM, "out of memory");
  }
  *out = fs;
  return 0;
}

void ep_initramfs_free(ep_initramfs *fs) {
  if (!fs) return;
  for (size_t i = 0; i < fs->count; i++) {
    free(fs->items[i].path);
    free(fs->items[i].source);
    free(fs->items[i].data);
    free(fs->items[i].link);
  }
  free(fs->items);
  free(fs);
}

static entry *find(const ep_initramfs *fs, const char *path) {
  for (size_t i = 0; i < fs->count; i++)
    if (strcmp(fs->items[i].path, path) == 0) return &fs->items[i];
  return NULL;
}

int ep_initramfs_has(const ep_initramfs *fs, const char *path) { return find(fs, path) != NULL; }

static bool path_valid(const char *path) {
  size_t n = strlen(path);
  return path[0] == '/' && n > 1 && n < EP_INITRAMFS_PATH_MAX && path[n - 1] != '/' && !strstr(path, "//") &&
         !strstr(path, "/../") && !strstr(path, "/./");
}

static bool same(const entry *a, const entry *b) {
  if (a->type != b->type || a->perm != b->perm) return false;
  if (a->type == S_IFLNK) return strcmp(a->link, b->link) == 0;
  if (a->type == S_IFREG) {
    if (a->source && b->source) return strcmp(a->source, b->source) == 0;
    return !a->source && !b->source && a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
  }
  return a->major == b->major && a->minor == b->minor;
}

static int add_parents(ep_initramfs *fs, const char *path);

/* Takes ownership of e's allocations. */
static int add_entry(ep_initramfs *fs, entry *e) {
  int r = 0;
  entry *old = NULL;
  if (!path_valid(e->path)) r = ep_error_set(EP_EINVAL, "initramfs: bad path '%s'", e->path);
  else if ((old = find(fs, e->path)) && !same(old, e))
    r = ep_error_set(EP_EEXIST, "initramfs: %s is added twice with different contents", e->path);
  else if (!old && fs->count == EP_INITRAMFS_ENTRIES_MAX)
    r = ep_error_set(EP_ERANGE, "initramfs: more than %d entries", EP_INITRAMFS_ENTRIES_MAX);
  else if (!old)
    r = add_parents(fs, e->path);
  if (r < 0 || old) {
    free(e->path);
    free(e->source);
    free(e->data);
    free(e->link);
    return r;
  }
  fs->items[fs->count++] = *e;
  return 0;
}

static int add_parents(ep_initramfs *fs, const char *path) {
  char dir[EP_INITRAMFS_PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (!slash || slash == dir) return 0;
  *slash = '\0';
  const entry *e = find(fs, dir);
  if (e) return e->type == S_IFDIR || e->type == S_IFLNK ? 0 : ep_error_set(EP_EEXIST, "initramfs: %s is not a directory", dir);
  return ep_initramfs_add_dir(fs, dir);
}

int ep_initramfs_add_dir(ep_initramfs *fs, const char *path) {
  entry e = {.path = strdup(path), .type = S_IFDIR, .perm = 0755};
  return e.path ? add_entry(fs, &e) : ep_error_set(EP_ENOMEM, "out of memory");
}

int ep_initramfs_add_file(ep_initramfs *fs, const char *path, const char *source, mode_t perm) {
  struct stat st;
  if (stat(source, &st) < 0) return ep_error_set(EP_ENOENT, "initramfs: cannot read %s: %s", source, strerror(errno));
  if (!S_ISREG(st.st_mode)) return ep_error_set(EP_EINVAL, "initramfs: %s is not a regular file", source);
  entry e = {.path = strdup(path), .type = S_IFREG, .perm = perm & 07777, .source = strdup(source)};
  if (!e.path || !e.source) {
    free(e.path);
    free(e.source);
    return ep_error_set(EP_ENOMEM, "out of memory");
  }
  return add_entry(fs, &e);
}

int ep_initramfs_add_data(ep_initramfs *fs, const char *path, const void *data, size_t len, mode_t perm) {
  entry e = {.path = strdup(path), .type = S_IFREG, .perm = perm & 07777, .data = malloc(len ? len : 1), .len = len};
  if (!e.path || !e.data) {
    free(e.path);
    free(e.data);
    return ep_error_set(EP_ENOMEM, "out of memory");
  }
  if (len) memcpy(e.data, data, len);
  return add_entry(fs, &e);
}

int ep_initramfs_add_symlink(ep_initramfs *fs, const char *path, const char *target) {
  entry e = {.path = strdup(path), .type = S_IFLNK, .perm = 0777, .link = strdup(target)};
  if (!e.path || !e.link) {
    free(e.path);
    free(e.link);
    return ep_error_set(EP_ENOMEM, "out of memory");
  }
  return add_entry(fs, &e);
}

int ep_initramfs_add_chardev(ep_initramfs *fs, const char *path, mode_t perm, unsigned major, unsigned minor) {
  entry e = {.path = strdup(path), .type = S_IFCHR, .perm = perm & 07777, .major = major, .minor = minor};
  return e.path ? add_entry(fs, &e) : ep_error_set(EP_ENOMEM, "out of memory");
}

static int by_path(const void *a, const void *b) {
  return strcmp((*(const entry *const *)a)->path, (*(const entry *const *)b)->path);
}

static int write_source(struct archive *a, const entry *e) {
  int fd = open(e->source, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ep_error_set(EP_EIO, "initramfs: cannot read %s: %s", e->source, strerror(errno));
  static __thread char buf[256 * 1024];
  ssize_t n;
  int r = 0;
  while ((n = read(fd, buf, sizeof buf)) > 0)
    if (archive_write_data(a, buf, (size_t)n) != n) {
      r = ep_error_set(EP_EIO, "initramfs: %s", archive_error_string(a));
      break;
    }
  if (n < 0) r = ep_error_set(EP_EIO, "initramfs: cannot read %s: %s", e->source, strerror(errno));
  close(fd);
  return r;
}

int ep_initramfs_write(const ep_initramfs *fs, const char *out_path, int64_t mtime) {
  const entry **sorted = calloc(fs->count ? fs->count : 1, sizeof *sorted);
  if (!sorted) return ep_error_set(EP_ENOMEM, "out of memory");
  for (size_t i = 0; i < fs->count; i++) sorted[i] = &fs->items[i];
  qsort(sorted, fs->count, sizeof *sorted, by_path);

  struct archive *a = archive_write_new();
  struct archive_entry *ae = archive_entry_new();
  int r = 0;
  if (!a || !ae) r = ep_error_set(EP_ENOMEM, "out of memory");
  else if (archive_write_set_format_cpio_newc(a) != ARCHIVE_OK || archive_write_add_filter_zstd(a) != ARCHIVE_OK ||
           archive_write_set_filter_option(a, "zstd", "compression-level", ZSTD_LEVEL) != ARCHIVE_OK ||
           archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
           archive_write_open_filename(a, out_path) != ARCHIVE_OK)
    r = ep_error_set(EP_EIO, "initramfs: %s: %s", out_path, archive_error_string(a));
  for (size_t i = 0; r == 0 && i < fs->count; i++) {
    const entry *e = sorted[i];
    struct stat st = {0};
    if (e->source && stat(e->source, &st) < 0) {
      r = ep_error_set(EP_EIO, "initramfs: cannot read %s: %s", e->source, strerror(errno));
      break;
    }
    archive_entry_clear(ae);
    archive_entry_set_pathname(ae, e->path + 1); /* relative, as the kernel expects */
    archive_entry_set_filetype(ae, (unsigned)e->type);
    archive_entry_set_perm(ae, e->perm);
    archive_entry_set_uid(ae, 0);
    archive_entry_set_gid(ae, 0);
    archive_entry_set_mtime(ae, mtime, 0);
    archive_entry_set_ino64(ae, (int64_t)i + 1);
    archive_entry_set_nlink(ae, e->type == S_IFDIR ? 2 : 1);
    archive_entry_set_dev(ae, 0);
    archive_entry_set_size(ae, e->type != S_IFREG ? 0 : e->source ? st.st_size : (int64_t)e->len);
    if (e->type == S_IFLNK) archive_entry_set_symlink(ae, e->link);
    if (e->type == S_IFCHR) {
      archive_entry_set_rdevmajor(ae, e->major);
      archive_entry_set_rdevminor(ae, e->minor);
    }
    if (archive_write_header(a, ae) != ARCHIVE_OK) {
      r = ep_error_set(EP_EIO, "initramfs: %s: %s", e->path, archive_error_string(a));
      break;
    }
    if (e->type == S_IFREG && e->source) r = write_source(a, e);
    else if (e->type == S_IFREG && e->len && archive_write_data(a, e->data, e->len) != (la_ssize_t)e->len)
      r = ep_error_set(EP_EIO, "initramfs: %s: %s", e->path, archive_error_string(a));
  }
  if (a && r == 0 && archive_write_close(a) != ARCHIVE_OK)
    r = ep_error_set(EP_EIO, "initramfs: %s: %s", out_path, archive_error_string(a));
  if (ae) archive_entry_free(ae);
  if (a) archive_write_free(a);
  free(sorted);
  return r;
}
