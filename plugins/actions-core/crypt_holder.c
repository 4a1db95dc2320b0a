/* actions-core: the LUKS mapping that holds a partition, see crypt_holder.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* PATH_MAX */
#endif
#include "crypt_holder.h"

#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int read_first_line(const char *path, char *out, size_t cap) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  int ok = fgets(out, (int)cap, f) != NULL;
  fclose(f);
  if (!ok) return -1;
  out[strcspn(out, "\n")] = '\0';
  return 0;
}

/* The first dm-N listed in directory dir whose sysroot/sys/class/block/dm-N/dm/<attr> starts with
 * want (want_len bytes; strlen(want) + 1 for the whole line): its name into out (cap bytes). */
static int dm_in_dir(const char *sysroot, const char *dir_path, const char *attr, const char *want, size_t want_len, char *out,
                     size_t cap) {
  DIR *dir = opendir(dir_path);
  if (!dir) return 0;
  int found = 0;
  struct dirent *e;
  while (!found && (e = readdir(dir))) {
    if (strncmp(e->d_name, "dm-", 3) != 0 || strlen(e->d_name) > 16) continue;
    char attr_path[PATH_MAX], value[160];
    snprintf(attr_path, sizeof attr_path, "%s/sys/class/block/%s/dm/%s", sysroot, e->d_name, attr);
    if (read_first_line(attr_path, value, sizeof value) == 0 && strncmp(value, want, want_len) == 0) {
      snprintf(out, cap, "%s", e->d_name);
      found = 1;
    }
  }
  closedir(dir);
  return found;
}

/* The crypt device among the holders of the partition at part_dir (its sysfs directory): writes
 * "/dev/dm-N" to out. */
static int luks_holder(const char *sysroot, const char *part_dir, char *out, size_t cap) {
  char path[PATH_MAX + 320], dm[32];
  snprintf(path, sizeof path, "%s/holders", part_dir);
  if (!dm_in_dir(sysroot, path, "uuid", "CRYPT-LUKS", 10, dm, sizeof dm)) return 0;
  snprintf(out, cap, "/dev/%s", dm);
  return 1;
}

int crypt_holder_find(const char *sysroot, const char *disk_name, int number, char *out, size_t cap) {
  char path[PATH_MAX];
  if (!disk_name || !*disk_name || strchr(disk_name, '/')) return 0;
  snprintf(path, sizeof path, "%s/sys/class/block/%s", sysroot, disk_name);
  DIR *dir = opendir(path);
  if (!dir) return 0;
  int found = 0;
  struct dirent *e;
  while (!found && (e = readdir(dir))) {
    if (strncmp(e->d_name, disk_name, strlen(disk_name)) != 0) continue; /* partitions are named after their disk */
    char attr[PATH_MAX + 300], value[32];
    snprintf(attr, sizeof attr, "%s/%s/partition", path, e->d_name);
    if (read_first_line(attr, value, sizeof value) < 0) continue;
    int n = atoi(value);
    if (n <= 0 || (number && n != number)) continue;
    snprintf(attr, sizeof attr, "%s/%s", path, e->d_name);
    if (luks_holder(sysroot, attr, out, cap)) found = n;
  }
  closedir(dir);
  return found;
}

int sysfs_block_name(const char *sysroot, unsigned major, unsigned minor, char *out, size_t cap) {
  char path[PATH_MAX], link[PATH_MAX];
  snprintf(path, sizeof path, "%s/sys/dev/block/%u:%u", sysroot, major, minor);
  ssize_t n = readlink(path, link, sizeof link - 1);
  if (n <= 0) return -1;
  link[n] = '\0';
  const char *name = strrchr(link, '/') ? strrchr(link, '/') + 1 : link;
  if (!*name || (size_t)snprintf(out, cap, "%s", name) >= cap) return -1;
  return 0;
}

/* The dm-N whose dm/name is mapping, into out; false when none. */
static int dm_by_name(const char *sysroot, const char *mapping, char *out, size_t cap) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/sys/class/block", sysroot);
  return dm_in_dir(sysroot, path, "name", mapping, strlen(mapping) + 1, out, cap);
}

int crypt_mapping_on_disk(const char *sysroot, const char *mapping, const char *disk_name, char *other, size_t cap) {
  char dm[32], path[PATH_MAX];
  if (!dm_by_name(sysroot, mapping, dm, sizeof dm)) return -1;
  bool disk_ok = disk_name && *disk_name && !strchr(disk_name, '/');
  snprintf(path, sizeof path, "%s/sys/class/block/%s/slaves", sysroot, dm);
  DIR *dir = opendir(path);
  int result = 1, slaves = 0;
  struct dirent *e;
  while (dir && result == 1 && (e = readdir(dir))) {
    if (e->d_name[0] == '.') continue;
    slaves++;
    /* A partition is a directory of its disk in sysfs (/sys/class/block/sda/sda2). */
    char part[PATH_MAX + 300];
    snprintf(part, sizeof part, "%s/sys/class/block/%s/%s/partition", sysroot, disk_ok ? disk_name : "", e->d_name);
    if (!disk_ok || access(part, F_OK) != 0) {
      snprintf(other, cap, "%s", e->d_name);
      result = 0;
    }
  }
  if (dir) closedir(dir);
  if (result == 1 && !slaves) { /* nothing below it that sysfs shows: not provably ours */
    if (cap) other[0] = '\0';
    result = 0;
  }
  return result;
}
