/* core: node discovery from sysfs and procfs, see discovery.h. */
#define _GNU_SOURCE /* asprintf */
#include "discovery.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

#define LINE_MAX_BYTES 512

/* Reads the first line of sysroot/path (trimmed) into buf; returns 0 or -1. */
static int read_line(const char *sysroot, const char *path, char *buf, size_t len) {
  char full[1024];
  snprintf(full, sizeof full, "%s/%s", sysroot, path);
  FILE *f = fopen(full, "r");
  if (!f) return -1;
  char line[LINE_MAX_BYTES];
  int r = fgets(line, sizeof line, f) ? 0 : -1;
  fclose(f);
  if (r < 0) return -1;
  size_t n = strcspn(line, "\r\n");
  while (n > 0 && isspace((unsigned char)line[n - 1])) n--;
  if (n >= len) n = len - 1; /* longer values are cut; callers validate what they read */
  memcpy(buf, line, n);
  buf[n] = '\0';
  return 0;
}

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted entry names of sysroot/path (skipping dot files); caller frees with free_names. */
static size_t list_dir(const char *sysroot, const char *path, char **names, size_t max) {
  char full[1024];
  snprintf(full, sizeof full, "%s/%s", sysroot, path);
  DIR *d = opendir(full);
  if (!d) return 0;
  size_t n = 0;
  struct dirent *de;
  while ((de = readdir(d)) && n < max)
    if (de->d_name[0] != '.' && strlen(de->d_name) < 32 && (names[n] = strdup(de->d_name))) n++;
  closedir(d);
  qsort(names, n, sizeof *names, compare_names);
  return n;
}

static void free_names(char **names, size_t n) {
  for (size_t i = 0; i < n; i++) free(names[i]);
}

static void discover_nics(ep_discovery *out, const char *sysroot) {
  char *names[64];
  size_t n = list_dir(sysroot, "sys/class/net", names, 64);
  for (size_t i = 0; i < n && out->nic_count < EP_DISCOVERY_NICS_MAX; i++) {
    char path[128], text[64], mac[EP_MAC_TEXT_LEN + 1];
    if (strcmp(names[i], "lo") == 0) continue;
    snprintf(path, sizeof path, "sys/class/net/%s/address", names[i]);
    if (read_line(sysroot, path, text, sizeof text) < 0 || ep_validate_mac(mac, "mac", text) < 0) continue;
    if (strcmp(mac, "00:00:00:00:00:00") == 0) continue;
    ep_nic *nic = &out->nics[out->nic_count++];
    snprintf(nic->name, sizeof nic->name, "%s", names[i]);
    memcpy(nic->mac, mac, sizeof nic->mac);
    snprintf(path, sizeof path, "sys/class/net/%s/operstate", names[i]);
    nic->up = read_line(sysroot, path, text, sizeof text) == 0 && strcmp(text, "up") == 0;
  }
  free_names(names, n);
  for (size_t i = 0; i < out->nic_count && !out->primary_mac[0]; i++)
    if (out->nics[i].up) memcpy(out->primary_mac, out->nics[i].mac, sizeof out->primary_mac);
  if (!out->primary_mac[0] && out->nic_count) memcpy(out->primary_mac, out->nics[0].mac, sizeof out->primary_mac);
}

/* proc/net/fib_trie lists each local address on a line before "/32 host LOCAL". */
static void discover_ip(ep_discovery *out, const char *sysroot) {
  char full[1024];
  snprintf(full, sizeof full, "%s/proc/net/fib_trie", sysroot);
  FILE *f = fopen(full, "r");
  if (!f) return;
  char line[LINE_MAX_BYTES], last[64] = "";
  while (fgets(line, sizeof line, f)) {
    char *addr = strstr(line, "|-- ");
    if (addr) {
      snprintf(last, sizeof last, "%s", addr + 4);
      last[strcspn(last, "\r\n ")] = '\0';
    } else if (strstr(line, "/32 host LOCAL") && last[0] && strncmp(last, "127.", 4) != 0) {
      char ip[EP_IP_TEXT_MAX + 1];
      if (ep_validate_ip(ip, "ip", last) == 0) {
        memcpy(out->primary_ip, ip, sizeof out->primary_ip);
        break;
      }
    }
  }
  fclose(f);
}

static void discover_disks(ep_discovery *out, const char *sysroot) {
  char *names[64];
  size_t n = list_dir(sysroot, "sys/block", names, 64);
  for (size_t i = 0; i < n && out->disk_count < EP_DISCOVERY_DISKS_MAX; i++) {
    if (!strncmp(names[i], "loop", 4) || !strncmp(names[i], "ram", 3) || !strncmp(names[i], "zram", 4)) continue;
    char path[128], text[64];
    ep_disk *disk = &out->disks[out->disk_count];
    snprintf(path, sizeof path, "sys/block/%s/size", names[i]);
    if (read_line(sysroot, path, text, sizeof text) < 0) continue;
    snprintf(disk->name, sizeof disk->name, "%s", names[i]);
    disk->bytes = strtoull(text, NULL, 10) * 512;
    snprintf(path, sizeof path, "sys/block/%s/removable", names[i]);
    disk->removable = read_line(sysroot, path, text, sizeof text) == 0 && strcmp(text, "1") == 0;
    out->disk_count++;
  }
  free_names(names, n);
}

static void discover_cpu_memory(ep_discovery *out, const char *sysroot) {
  char full[1024], line[LINE_MAX_BYTES];
  snprintf(full, sizeof full, "%s/proc/cpuinfo", sysroot);
  FILE *f = fopen(full, "r");
  if (f) {
    while (fgets(line, sizeof line, f))
      if (!strncmp(line, "processor", 9)) out->cpus++;
    fclose(f);
  }
  snprintf(full, sizeof full, "%s/proc/meminfo", sysroot);
  if ((f = fopen(full, "r"))) {
    unsigned long long kib = 0;
    while (fgets(line, sizeof line, f))
      if (sscanf(line, "MemTotal: %llu kB", &kib) == 1) out->memory_bytes = (uint64_t)kib * 1024;
    fclose(f);
  }
}

int ep_discover(ep_discovery *out, const char *sysroot) {
  ep_discovery d;
  memset(&d, 0, sizeof d);
  char text[128];
  if (read_line(sysroot, "sys/class/dmi/id/product_uuid", text, sizeof text) == 0) {
    if (ep_validate_uuid(d.uuid, "product_uuid", text) < 0) d.uuid[0] = '\0';
  }
  if (read_line(sysroot, "sys/class/dmi/id/product_serial", text, sizeof text) == 0 &&
      ep_validate_serial("product_serial", text) == 0)
    memcpy(d.serial, text, strlen(text) + 1); /* a valid serial has at most 20 characters */
  discover_nics(&d, sysroot);
  discover_ip(&d, sysroot);
  discover_disks(&d, sysroot);
  discover_cpu_memory(&d, sysroot);
  ep_error_clear();
  *out = d;
  return 0;
}

/* ---- disk protection ------------------------------------------------------------------------ */

/* Appends "what" to the detail text, "; " between items, cut (never overflowing) at its size. */
static void add_detail(ep_disk_protection *p, const char *what) {
  size_t used = strlen(p->detail), room = sizeof p->detail - 1 - used;
  const char *sep = used ? "; " : "";
  size_t sep_len = strlen(sep), what_len = strlen(what);
  if (sep_len >= room) return;
  memcpy(p->detail + used, sep, sep_len);
  size_t take = what_len < room - sep_len ? what_len : room - sep_len;
  memcpy(p->detail + used + sep_len, what, take);
  p->detail[used + sep_len + take] = '\0';
}

int ep_discover_disk_protection(ep_disk_protection *out, const char *sysroot) {
  ep_disk_protection p;
  memset(&p, 0, sizeof p);
  char path[1024];
  snprintf(path, sizeof path, "%s/proc/self/mountinfo", sysroot);
  FILE *f = fopen(path, "r");
  if (!f) return ep_error_set(EP_ENOENT, "%s: cannot be read: no mount table", path);
  char line[LINE_MAX_BYTES * 2];
  size_t mounts = 0;
  while (fgets(line, sizeof line, f) && mounts < 256) {
    unsigned major = 0, minor = 0;
    char mount_point[256];
    /* mount ID, parent ID, major:minor, root, mount point, ... (proc(5)) */
    if (sscanf(line, "%*u %*u %u:%u %*s %255s", &major, &minor, mount_point) != 3 || major == 0) continue;
    mounts++;
    char uuid[160], name[128] = "";
    snprintf(path, sizeof path, "sys/dev/block/%u:%u/dm/uuid", major, minor);
    if (read_line(sysroot, path, uuid, sizeof uuid) < 0) continue; /* not a device-mapper device */
    snprintf(path, sizeof path, "sys/dev/block/%u:%u/dm/name", major, minor);
    read_line(sysroot, path, name, sizeof name);
    bool root = strcmp(mount_point, "/") == 0;
    const char *kind = NULL;
    if (strncmp(uuid, "CRYPT-VERITY-", 13) == 0) {
      kind = "dm-verity";
      p.verified_root |= root;
    } else if (strncmp(uuid, "CRYPT-LUKS2-", 12) == 0 || strncmp(uuid, "CRYPT-LUKS1-", 12) == 0) {
      kind = uuid[10] == '2' ? "dm-crypt LUKS2" : "dm-crypt LUKS1";
      p.encrypted = true;
    }
    if (!kind) continue;
    char what[512];
    snprintf(what, sizeof what, "%s on %.120s (%s)", mount_point, name[0] ? name : "device-mapper", kind);
    add_detail(&p, what);
  }
  fclose(f);
  if (!p.detail[0]) add_detail(&p, "no mounted file system is on dm-crypt or dm-verity");
  *out = p;
  return 0;
}
