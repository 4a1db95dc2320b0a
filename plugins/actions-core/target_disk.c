/* actions-core: the target disk, see target_disk.h. */
#define _GNU_SOURCE /* strchrnul */
#include "target_disk.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Reads the first line of a sysfs attribute into out; "" when absent. */
static void read_attr(const char *path, char *out, size_t cap) {
  out[0] = '\0';
  FILE *f = fopen(path, "r");
  if (!f) return;
  if (!fgets(out, (int)cap, f)) out[0] = '\0';
  fclose(f);
  out[strcspn(out, "\r\n")] = '\0';
  /* sysfs pads some values (serials) with spaces */
  size_t len = strlen(out);
  while (len && out[len - 1] == ' ') out[--len] = '\0';
  char *start = out;
  while (*start == ' ') start++;
  memmove(out, start, strlen(start) + 1);
}

/* True when /proc/mounts lists /dev/<name> or one of its partitions (/dev/<name>p1, <name>1). */
static bool mounted(const char *sysroot, const char *name) {
  char path[512], line[1024];
  snprintf(path, sizeof path, "%s/proc/mounts", sysroot);
  FILE *f = fopen(path, "r");
  if (!f) return false;
  size_t len = strlen(name);
  bool found = false;
  while (!found && fgets(line, sizeof line, f))
    found = strncmp(line, "/dev/", 5) == 0 && strncmp(line + 5, name, len) == 0 &&
            (line[5 + len] == ' ' || (line[5 + len] >= '0' && line[5 + len] <= '9') || line[5 + len] == 'p');
  fclose(f);
  return found;
}

static bool is_candidate(const char *name) {
  return strncmp(name, "loop", 4) != 0 && strncmp(name, "ram", 3) != 0 && strncmp(name, "zram", 4) != 0 &&
         strncmp(name, "sr", 2) != 0 && strncmp(name, "fd", 2) != 0 && strncmp(name, "dm-", 3) != 0 &&
         strncmp(name, "md", 2) != 0;
}

int32_t target_disk_resolve(const ep_host *host, ep_ctx *ctx, const char *sysroot, char out[TARGET_PATH_MAX]) {
  const char *target = "", *serial = "";
  host->param_string(ctx, "target", &target);
  host->param_string(ctx, "target_serial", &serial);
  if (*target && *serial) return ep_failf(host, ctx, EP_EINVAL, "target and target_serial: give one, not both");
  const char *run_disk = NULL; /* the disk the node's workflow provisions, when the host knows it */
  if (!*target && !*serial && host->site_string(ctx, "run.target_disk", &run_disk) == 0 && run_disk && *run_disk)
    target = run_disk;
  if (*target) {
    if (target[0] != '/' || strstr(target, "/../") || strlen(target) >= TARGET_PATH_MAX)
      return ep_failf(host, ctx, EP_EINVAL, "target: '%.64s' must be an absolute path without '..'", target);
    snprintf(out, TARGET_PATH_MAX, "%s", target);
    return 0;
  }
  char dir_path[512];
  snprintf(dir_path, sizeof dir_path, "%s/sys/block", sysroot);
  DIR *dir = opendir(dir_path);
  if (!dir) return ep_failf(host, ctx, EP_ENOENT, "target: no %s to choose a disk from", dir_path);
  char best[64] = "";
  struct dirent *e;
  while ((e = readdir(dir))) {
    if (e->d_name[0] == '.' || !is_candidate(e->d_name) || strlen(e->d_name) >= sizeof best) continue;
    char attr[1024], value[128];
    snprintf(attr, sizeof attr, "%.500s/%.63s/removable", dir_path, e->d_name);
    read_attr(attr, value, sizeof value);
    if (strcmp(value, "1") == 0 || mounted(sysroot, e->d_name)) continue;
    snprintf(attr, sizeof attr, "%.500s/%.63s/size", dir_path, e->d_name);
    read_attr(attr, value, sizeof value);
    if (!value[0] || strcmp(value, "0") == 0) continue;
    if (*serial) {
      snprintf(attr, sizeof attr, "%.500s/%.63s/device/serial", dir_path, e->d_name);
      read_attr(attr, value, sizeof value);
      if (!value[0]) {
        snprintf(attr, sizeof attr, "%.500s/%.63s/serial", dir_path, e->d_name); /* nvme, virtio */
        read_attr(attr, value, sizeof value);
      }
      if (strcmp(value, serial) != 0) continue;
    }
    if (!best[0] || strcmp(e->d_name, best) < 0) snprintf(best, sizeof best, "%.63s", e->d_name);
  }
  closedir(dir);
  if (!best[0])
    return *serial ? ep_failf(host, ctx, EP_ENOENT, "target_serial: no fixed, unmounted disk has serial '%.64s'", serial)
                   : ep_failf(host, ctx, EP_ENOENT, "target: no fixed, unmounted disk found in %s", dir_path);
  snprintf(out, TARGET_PATH_MAX, "/dev/%.63s", best);
  return 0;
}
