/* actions-core: efi.boot_order, see efi_boot_order.h. */
#define _GNU_SOURCE /* O_CLOEXEC */
#include "efi_boot_order.h"

#include <blkid/blkid.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "actions_core.h"
#include "boot_order_calc.h"
#include "efivar.h"
#include "target_disk.h"

#define EFI_GLOBAL_GUID "8be4df61-93ca-11d2-aa0d-00e098032b8c"
#define BOOT_ORDER "BootOrder-" EFI_GLOBAL_GUID
#define BOOT_NEXT "BootNext-" EFI_GLOBAL_GUID
#define VAR_MAX (64 * 1024)   /* largest variable payload read */
#define ENTRIES_MAX 512       /* most Boot#### entries looked at */
#define ORDER_MAX 1024        /* most entries in BootOrder */
#define GUIDS_MAX 256         /* most partitions of the target matched against */
#define LIST_MAX 512          /* longest list of entries quoted in a message (a log line holds 1 KiB) */
#define ORDER_TEXT_MAX 256    /* longest BootOrder quoted in a message */
#define ATTRIBUTES_DEFAULT 0x7u /* EFI_VARIABLE_NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS */
#define LOAD_OPTION_ACTIVE 0x1u
#if defined(__aarch64__)
#define REMOVABLE_LOADER "\\EFI\\BOOT\\BOOTAA64.EFI"
#else
#define REMOVABLE_LOADER "\\EFI\\BOOT\\BOOTX64.EFI"
#endif

const ep_field_decl efi_boot_order_params[] = {
    EP_FIELD_STRING_DECL("efivars_dir", "/sys/firmware/efi/efivars", EP_FIELD_OPTIONAL, 255, "efivarfs mount (or a directory of variable files, for tests)"),
    EP_FIELD_STRING_DECL("entry_label", "", EP_FIELD_OPTIONAL, BOOT_DESCRIPTION_MAX - 1, "description of the Boot#### entry to put first (\"ubuntu\"); empty: the entries that boot a partition of target"),
    EP_FIELD_STRING_DECL("target", "", EP_FIELD_OPTIONAL, 255, "disk or image file whose GPT partitions the entry boots: used when entry_label is empty or matches nothing; empty: target_serial or the first fixed disk"),
    EP_FIELD_STRING_DECL("target_serial", "", EP_FIELD_OPTIONAL, 64, "choose the disk with this serial number"),
    EP_FIELD_BOOL_DECL("fail_if_missing", "false", EP_FIELD_OPTIONAL, "fail when no entry matches; default: warn and leave BootOrder to the firmware's removable-media path"),
};
const uint32_t efi_boot_order_params_count = sizeof efi_boot_order_params / sizeof efi_boot_order_params[0];

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* Copies NUL-terminated UCS-2 (little endian) as UTF-8, cut at cap; returns the number of
 * bytes of in used, terminator included, or 0 when in has no terminator. */
static size_t ucs2_to_utf8(const uint8_t *in, size_t in_len, char *out, size_t cap) {
  size_t o = 0;
  bool full = false;
  for (size_t i = 0; i + 2 <= in_len; i += 2) {
    uint16_t c = le16(in + i);
    if (!c) {
      out[o] = '\0';
      return i + 2;
    }
    char u[3];
    size_t n;
    if (c < 0x80) u[0] = (char)c, n = 1;
    else if (c < 0x800) u[0] = (char)(0xc0 | c >> 6), u[1] = (char)(0x80 | (c & 0x3f)), n = 2;
    else if (c >= 0xd800 && c <= 0xdfff) u[0] = '?', n = 1; /* a lone surrogate half */
    else u[0] = (char)(0xe0 | c >> 12), u[1] = (char)(0x80 | ((c >> 6) & 0x3f)), u[2] = (char)(0x80 | (c & 0x3f)), n = 3;
    full = full || o + n >= cap;
    if (!full) memcpy(out + o, u, n), o += n;
  }
  out[o] = '\0';
  return 0;
}

/* Finds the first hard-drive media node with a GPT signature in a device path list and
 * stores its partition GUID ("" when none). */
static void find_partition_guid(const uint8_t *path, size_t len, char out[37]) {
  out[0] = '\0';
  for (size_t off = 0; off + 4 <= len;) {
    const uint8_t *node = path + off;
    uint16_t node_len = le16(node + 2);
    if (node_len < 4 || node_len > len - off) return;
    if (node[0] == 0x7f && node[1] == 0xff) return; /* end of the entire path */
    if (node[0] == 0x04 && node[1] == 0x01 && node_len >= 42 && node[41] == 0x02) { /* media, hard drive, GUID signature */
      const uint8_t *g = node + 24;
      snprintf(out, 37, "%08x-%04x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", (unsigned)efivar_le32(g), (unsigned)le16(g + 4), g[7], g[6],
               g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
      return;
    }
    off += node_len;
  }
}

/* Parses an EFI_LOAD_OPTION: UINT32 Attributes, UINT16 FilePathListLength, CHAR16
 * Description[], device path list, optional data. */
static void parse_load_option(const uint8_t *data, size_t len, boot_entry *e) {
  e->valid = false;
  snprintf(e->description, sizeof e->description, "(malformed)");
  e->partition[0] = '\0';
  if (len < 6) return;
  e->attributes = efivar_le32(data);
  size_t path_len = le16(data + 4);
  char description[BOOT_DESCRIPTION_MAX];
  size_t used = ucs2_to_utf8(data + 6, len - 6, description, sizeof description);
  if (!used || path_len > len - 6 - used) return;
  memcpy(e->description, description, sizeof description);
  find_partition_guid(data + 6 + used, path_len, e->partition);
  e->valid = true;
}

/* True for "Boot####-<global GUID>" with four hex digits; stores the number. */
static bool boot_entry_name(const char *name, uint16_t *number) {
  if (strncmp(name, "Boot", 4) != 0 || strlen(name) != 9 + strlen(EFI_GLOBAL_GUID) || name[8] != '-' ||
      strcasecmp(name + 9, EFI_GLOBAL_GUID) != 0)
    return false;
  for (int i = 4; i < 8; i++)
    if (!isxdigit((unsigned char)name[i])) return false;
  char hex[5] = {name[4], name[5], name[6], name[7], '\0'};
  *number = (uint16_t)strtoul(hex, NULL, 16);
  return true;
}

static int compare_entries(const void *a, const void *b) {
  const boot_entry *x = a, *y = b;
  return (int)x->number - (int)y->number;
}

/* Reads every Boot#### variable of the directory, sorted by number. */
static int32_t read_entries(const ep_host *host, ep_ctx *ctx, int dir, const char *dir_path, uint8_t *raw, boot_entry *entries,
                            int *ret_count) {
  int fd = dup(dir);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (!d) {
    int err = errno;
    if (fd >= 0) close(fd);
    return ep_failf(host, ctx, -err, "efivars_dir: cannot list %s: %s", dir_path, strerror(err));
  }
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    uint16_t number;
    if (!boot_entry_name(de->d_name, &number)) continue;
    if (n == ENTRIES_MAX) {
      ep_logf(host, ctx, EP_LOG_WARN, "%s: more than %d Boot entries; the rest are ignored", dir_path, ENTRIES_MAX);
      break;
    }
    boot_entry *e = &entries[n];
    memset(e, 0, sizeof *e);
    e->number = number;
    int len = efivar_read_at(dir, de->d_name, raw, VAR_MAX);
    if (len < 0) {
      ep_logf(host, ctx, EP_LOG_WARN, "%s/%s: unreadable (%s); skipped", dir_path, de->d_name, strerror(-len));
      continue;
    }
    parse_load_option(raw + 4, (size_t)len, e);
    if (!e->valid) ep_logf(host, ctx, EP_LOG_WARN, "%s/%s: not a valid load option; skipped", dir_path, de->d_name);
    n++;
  }
  closedir(d);
  qsort(entries, (size_t)n, sizeof *entries, compare_entries);
  *ret_count = n;
  return 0;
}

/* Collects the unique GUIDs of the GPT partitions of the target disk. Returns a negative
 * code (message set) only for a bad target parameter; an unreadable disk or one without GPT
 * partitions leaves *ret_count 0 and says why in why. */
static int32_t target_partitions(const ep_host *host, ep_ctx *ctx, char disk[TARGET_PATH_MAX], char (*guids)[37], int *ret_count,
                                 char *why, size_t why_cap) {
  int32_t r = target_disk_resolve(host, ctx, "", disk);
  if (r < 0) return r;
  *ret_count = 0;
  blkid_probe probe = blkid_new_probe_from_filename(disk);
  if (!probe) {
    snprintf(why, why_cap, "cannot read %s: %s", disk, strerror(errno));
    return 0;
  }
  blkid_partlist list = blkid_probe_get_partitions(probe);
  int count = list ? blkid_partlist_numof_partitions(list) : 0, n = 0;
  for (int i = 0; i < count && n < GUIDS_MAX; i++) {
    const char *uuid = blkid_partition_get_uuid(blkid_partlist_get_partition(list, i));
    if (uuid && strlen(uuid) == 36) snprintf(guids[n++], 37, "%s", uuid); /* GPT; an MBR's are shorter */
  }
  blkid_free_probe(probe);
  if (!n) snprintf(why, why_cap, "%s has no GPT partitions", disk);
  *ret_count = n;
  return 0;
}

/* "Boot0001 'UEFI PXEv4', Boot0003 'ubuntu' (partition 1c5d...)" for messages; cut at cap. */
static void describe_entries(const boot_entry *entries, int n, bool guids, char *out, size_t cap) {
  size_t len = 0;
  snprintf(out, cap, "no Boot#### variables");
  for (int i = 0; i < n; i++) {
    char partition[64] = "";
    if (guids && entries[i].partition[0]) snprintf(partition, sizeof partition, " (partition %s)", entries[i].partition);
    int w = snprintf(out + len, cap - len, "%sBoot%04X '%s'%s", i ? ", " : "", entries[i].number, entries[i].description, partition);
    if (w < 0 || (size_t)w >= cap - len) break;
    len += (size_t)w;
  }
}

/* "0003,0001,0002", cut with "..." at cap. */
static void describe_order(const uint16_t *order, size_t n, char *out, size_t cap) {
  size_t len = 0;
  out[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    if (len + 9 >= cap) {
      snprintf(out + len, cap - len, "...");
      return;
    }
    len += (size_t)snprintf(out + len, cap - len, "%s%04X", i ? "," : "", order[i]);
  }
}

/* Sets or clears FS_IMMUTABLE_FL of the variable; returns 0 or -errno. *was (when not NULL)
 * receives whether it was set. */
static int set_immutable(int dir, const char *name, bool on, bool *was) {
  int fd = openat(dir, name, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? 0 : -errno;
  int flags = 0, r = 0;
  if (ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0) r = -errno;
  if (r == 0 && was) *was = flags & FS_IMMUTABLE_FL;
  if (r == 0 && !!(flags & FS_IMMUTABLE_FL) != on) {
    flags = on ? flags | FS_IMMUTABLE_FL : flags & ~FS_IMMUTABLE_FL;
    if (ioctl(fd, FS_IOC_SETFLAGS, &flags) < 0) r = -errno;
  }
  close(fd);
  return r;
}

/* Writes BootOrder in one write (efivarfs takes a variable whole). */
static int32_t write_order(const ep_host *host, ep_ctx *ctx, int dir, const char *dir_path, bool efivarfs, uint32_t attributes,
                           const uint16_t *order, size_t n) {
  uint8_t buf[4 + 2 * ORDER_MAX];
  for (int i = 0; i < 4; i++) buf[i] = (uint8_t)(attributes >> (8 * i));
  for (size_t i = 0; i < n; i++) buf[4 + 2 * i] = (uint8_t)order[i], buf[5 + 2 * i] = (uint8_t)(order[i] >> 8);
  size_t len = 4 + 2 * n;
  bool immutable = false;
  if (efivarfs) {
    int err = set_immutable(dir, BOOT_ORDER, false, &immutable);
    if (err) return ep_failf(host, ctx, err, "efivars_dir: cannot make %s/BootOrder writable: %s", dir_path, strerror(-err));
  }
  int32_t r = 0;
  int fd = openat(dir, BOOT_ORDER, O_WRONLY | O_CREAT | O_CLOEXEC | (efivarfs ? 0 : O_TRUNC), 0644);
  if (fd < 0) r = ep_failf(host, ctx, -errno, "efivars_dir: cannot open %s/BootOrder for writing: %s", dir_path, strerror(errno));
  ssize_t written = fd < 0 ? 0 : write(fd, buf, len);
  if (r == 0 && written != (ssize_t)len)
    r = ep_failf(host, ctx, written < 0 ? -errno : EP_EIO, "efivars_dir: writing %s/BootOrder: %s", dir_path,
                 written < 0 ? strerror(errno) : "short write");
  if (r == 0 && !efivarfs && fsync(fd) < 0)
    r = ep_failf(host, ctx, EP_EIO, "efivars_dir: fsync of %s/BootOrder: %s", dir_path, strerror(errno));
  if (fd >= 0) close(fd);
  if (immutable) {
    int err = set_immutable(dir, BOOT_ORDER, true, NULL);
    if (err) ep_logf(host, ctx, EP_LOG_WARN, "%s/BootOrder: cannot make it immutable again: %s", dir_path, strerror(-err));
  }
  return r;
}

/* Warns when BootNext will send the next boot elsewhere once. */
static void check_boot_next(const ep_host *host, ep_ctx *ctx, int dir, const char *dir_path, uint8_t *raw, uint16_t first) {
  int len = efivar_read_at(dir, BOOT_NEXT, raw, VAR_MAX);
  if (len == 2 && le16(raw + 4) != first)
    ep_logf(host, ctx, EP_LOG_WARN, "%s: BootNext is Boot%04X: the next boot goes there once, before BootOrder applies", dir_path,
            le16(raw + 4));
}

typedef struct order_job {
  const ep_host *host;
  ep_ctx *ctx;
  const char *dir_path;
  int dir;
  uint8_t *raw;          /* 4 + VAR_MAX bytes */
  boot_entry *entries;   /* ENTRIES_MAX */
  char (*guids)[BOOT_GUID_TEXT_LEN + 1]; /* GUIDS_MAX */
  uint16_t old_order[ORDER_MAX], new_order[ORDER_MAX];
} order_job;

/* Reads BootOrder into j->old_order: *ret_len entries, *ret_attributes its attributes (the
 * default when there is none yet). */
static int32_t read_order(order_job *j, size_t *ret_len, uint32_t *ret_attributes) {
  const ep_host *host = j->host;
  ep_ctx *ctx = j->ctx;
  uint32_t attributes = ATTRIBUTES_DEFAULT;
  int len = efivar_read_at(j->dir, BOOT_ORDER, j->raw, VAR_MAX);
  if (len == -ENOENT) len = 0; /* no BootOrder yet: one is created */
  else if (len < 0) return ep_failf(host, ctx, len, "efivars_dir: cannot read %s/BootOrder: %s", j->dir_path, strerror(-len));
  else attributes = efivar_le32(j->raw);
  if (len % 2 || len / 2 > ORDER_MAX)
    return ep_failf(host, ctx, EP_EINVAL, "efivars_dir: %s/BootOrder is not a list of at most %d entries (%d bytes)",
                    j->dir_path, ORDER_MAX, len);
  size_t order_len = (size_t)len / 2;
  for (size_t i = 0; i < order_len; i++) j->old_order[i] = le16(j->raw + 4 + 2 * i);
  *ret_len = order_len;
  *ret_attributes = attributes;
  return 0;
}

/* No entry matched: says so, listing the entries found, as an error (fail_if_missing) or as a
 * warning that leaves BootOrder to the firmware. */
static int32_t no_match(order_job *j, int count, const char *label, bool by_path, const char *disk, const char *why,
                        bool fail_if_missing) {
  const ep_host *host = j->host;
  ep_ctx *ctx = j->ctx;
  char list[LIST_MAX], sought[BOOT_DESCRIPTION_MAX + TARGET_PATH_MAX + TARGET_PATH_MAX + 64 + 64];
  describe_entries(j->entries, count, by_path, list, sizeof list);
  if (*label && by_path)
    snprintf(sought, sizeof sought, "is labelled '%s' or boots a partition of %s%s%s%s", label, disk,
             why[0] ? " (" : "", why, why[0] ? ")" : "");
  else if (*label) snprintf(sought, sizeof sought, "is labelled '%s'", label);
  else snprintf(sought, sizeof sought, "boots a partition of %s", disk);
  const char *param = *label ? "entry_label" : "target";
  if (fail_if_missing)
    return ep_failf(host, ctx, EP_ENOENT, "%s: no Boot entry in %s %s (found: %s)", param, j->dir_path, sought, list);
  ep_logf(host, ctx, EP_LOG_WARN,
          "%s: no Boot entry in %s %s (found: %s); BootOrder left as it is: the firmware boots the disk only "
          "through its removable-media loader " REMOVABLE_LOADER " (set fail_if_missing to make this an error)",
          param, j->dir_path, sought, list);
  host->progress(ctx, 1, 1, "no Boot entry matched; BootOrder left as it is");
  return 0;
}

/* Reads BootOrder and the entries, has boot_order_compute put the wanted ones first, and writes
 * the result when it differs. */
static int32_t reorder(order_job *j, const char *label, bool fail_if_missing) {
  const ep_host *host = j->host;
  ep_ctx *ctx = j->ctx;
  struct statfs fs;
  bool efivarfs = fstatfs(j->dir, &fs) == 0 && (unsigned long)fs.f_type == (unsigned long)EFIVARFS_MAGIC;
  uint32_t attributes = ATTRIBUTES_DEFAULT;
  size_t order_len = 0;
  int32_t r = read_order(j, &order_len, &attributes);
  if (r < 0) return r;
  int count = 0;
  r = read_entries(host, ctx, j->dir, j->dir_path, j->raw, j->entries, &count);
  if (r < 0) return r;
  /* By label; by the target's partitions when there is no label or it matched nothing and a
   * target was given (firmware names the entries it makes itself "UEFI OS" and the like). */
  const char *target = "";
  host->param_string(ctx, "target", &target);
  bool by_path = !*label || (!boot_order_count_label(j->entries, (size_t)count, label) && *target);
  int guid_count = 0;
  char disk[TARGET_PATH_MAX] = "", why[TARGET_PATH_MAX + 64] = "";
  if (by_path && (r = target_partitions(host, ctx, disk, j->guids, &guid_count, why, sizeof why)) < 0) return r;
  if (by_path && !guid_count && !*label) return ep_failf(host, ctx, EP_ENOENT, "target: %s; give entry_label", why);
  boot_order_want want = {.label = label, .fail_if_missing = fail_if_missing};
  if (by_path) {
    want.partitions = (const char(*)[BOOT_GUID_TEXT_LEN + 1])j->guids;
    want.partition_count = (size_t)guid_count;
  }
  size_t n = 0;
  r = boot_order_compute(j->new_order, &n, ORDER_MAX, j->old_order, order_len, j->entries, (size_t)count, &want);
  if (r == EP_ENOENT || r == BOOT_ORDER_NO_MATCH) return no_match(j, count, label, by_path, disk, why, fail_if_missing);
  if (r < 0) return ep_failf(host, ctx, r, "efivars_dir: %s/BootOrder: cannot compute the new order", j->dir_path);

  for (int k = 0; k < count; k++)
    if (j->entries[k].match && !(j->entries[k].attributes & LOAD_OPTION_ACTIVE))
      ep_logf(host, ctx, EP_LOG_WARN, "Boot%04X '%s' is inactive (LOAD_OPTION_ACTIVE unset): the firmware skips it", j->entries[k].number,
              j->entries[k].description);
  check_boot_next(host, ctx, j->dir, j->dir_path, j->raw, j->new_order[0]);

  char was[ORDER_TEXT_MAX], now[ORDER_TEXT_MAX], message[ORDER_TEXT_MAX + 16];
  describe_order(j->old_order, order_len, was, sizeof was);
  describe_order(j->new_order, n, now, sizeof now);
  snprintf(message, sizeof message, "BootOrder %s", now);
  if (r == BOOT_ORDER_UNCHANGED) {
    ep_logf(host, ctx, EP_LOG_INFO, "%s: BootOrder is already %s; left as it is", j->dir_path, now);
    host->progress(ctx, 1, 1, message);
    return 0;
  }
  r = write_order(host, ctx, j->dir, j->dir_path, efivarfs, attributes, j->new_order, n);
  if (r < 0) return r;
  host->progress(ctx, 1, 1, message);
  ep_logf(host, ctx, EP_LOG_INFO, "%s: BootOrder is now %s (was %s)", j->dir_path, now, order_len ? was : "empty");
  return 0;
}

int32_t efi_boot_order_run(void *plugin_state, ep_ctx *ctx) {
  const ep_host *host = ((actions_core_state *)plugin_state)->host;
  const char *dir_path = "/sys/firmware/efi/efivars", *label = "";
  int32_t fail_if_missing = 0;
  host->param_string(ctx, "efivars_dir", &dir_path);
  host->param_string(ctx, "entry_label", &label);
  host->param_bool(ctx, "fail_if_missing", &fail_if_missing);
  if (dir_path[0] != '/') return ep_failf(host, ctx, EP_EINVAL, "efivars_dir: '%.64s' must be an absolute path", dir_path);
  order_job *j = calloc(1, sizeof *j);
  if (!j) return ep_failf(host, ctx, EP_ENOMEM, "out of memory");
  j->host = host, j->ctx = ctx, j->dir_path = dir_path, j->dir = -1;
  int32_t r = 0;
  j->raw = malloc(4 + VAR_MAX);
  j->entries = calloc(ENTRIES_MAX, sizeof *j->entries);
  j->guids = calloc(GUIDS_MAX, sizeof *j->guids);
  if (!j->raw || !j->entries || !j->guids) r = ep_failf(host, ctx, EP_ENOMEM, "out of memory");
  if (r == 0 && (j->dir = open(dir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
    r = ep_failf(host, ctx, -errno, "efivars_dir: cannot open %s: %s (was the node booted in UEFI mode?)", dir_path, strerror(errno));
  if (r == 0) r = reorder(j, label, fail_if_missing != 0);
  if (j->dir >= 0) close(j->dir);
  free(j->raw);
  free(j->entries);
  free(j->guids);
  free(j);
  return r;
}
