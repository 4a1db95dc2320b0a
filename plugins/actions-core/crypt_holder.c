/* actions-core: the LUKS mapping that holds a partition, see crypt_holder.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* PATH_MAX */
#endif
#include "crypt_holder.h"

#include <dirent.h>
#include <limits.h>
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

/* The crypt device among the holders of the partition at part_dir (its sysfs directory): writes
 * "/dev/dm-N" to out. */
static int luks_holder(const char *sysroot, const char *part_dir, char *out, size_t cap) {
  char path[PATH_MAX + 320];
  snprintf(path, sizeof path, "%s/holders", part_dir);
  DIR *dir = opendir(path);
  if (!dir) return 0;
  int found = 0;
  struct dirent *e;
  while (!found && (e = readdir(dir))) {
    if (strncmp(e->d_name, "dm-", 3) != 0 || strlen(e->d_name) > 16) continue;
    char uuid_path[PATH_MAX], uuid[160];
    snprintf(uuid_path, sizeof uuid_path, "%s/sys/class/block/%s/dm/uuid", sysroot, e->d_name);
    if (read_first_line(uuid_path, uuid, sizeof uuid) == 0 && strncmp(uuid, "CRYPT-LUKS", 10) == 0) {
      snprintf(out, cap, "/dev/%s", e->d_name);
      found = 1;
    }
  }
  closedir(dir);
  return found;
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
