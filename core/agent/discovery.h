/* core: what a node knows about itself, read from sysfs and procfs (under a sysroot for
 * tests): SMBIOS UUID and serial, network interfaces, local IPs, disks, CPUs, memory. */
#ifndef EP_CORE_DISCOVERY_H
#define EP_CORE_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/validate.h"

#define EP_DISCOVERY_NICS_MAX 16
#define EP_DISCOVERY_DISKS_MAX 32

typedef struct ep_nic {
  char name[32];
  char mac[EP_MAC_TEXT_LEN + 1];
  int up; /* operstate "up" */
} ep_nic;

typedef struct ep_disk {
  char name[32];
  uint64_t bytes;
  int removable;
} ep_disk;

typedef struct ep_discovery {
  char uuid[EP_UUID_TEXT_LEN + 1]; /* "" when the firmware gives none */
  char serial[64];                 /* as the firmware gives it; "" when none */
  ep_nic nics[EP_DISCOVERY_NICS_MAX];
  size_t nic_count;
  char primary_mac[EP_MAC_TEXT_LEN + 1];
  char primary_ip[EP_IP_TEXT_MAX + 1];
  ep_disk disks[EP_DISCOVERY_DISKS_MAX];
  size_t disk_count;
  unsigned cpus;
  uint64_t memory_bytes;
} ep_discovery;

/* Reads the node's identity and hardware under sysroot ("/" on a real node). Missing files
 * leave fields empty; values that fail validation are dropped, not trusted. The primary NIC
 * is the first physical one that is up (else the first), sorted by name; the primary IP
 * the first local non-loopback IPv4 address in proc/net/fib_trie. Returns 0 or -errno. */
int ep_discover(ep_discovery *out, const char *sysroot);

/* What protects the disk the node runs from, read from the mount table
 * (sysroot/proc/self/mountinfo) and device-mapper's sysfs (sys/dev/block/M:m/dm/uuid): a file
 * system on "CRYPT-LUKS1-"/"CRYPT-LUKS2-" is on dm-crypt, one on "CRYPT-VERITY-" on dm-verity
 * (the names cryptsetup and veritysetup give). encrypted: any mounted file system is on
 * dm-crypt (the root of a mutable OS, the data partition of an immutable one); verified_root:
 * "/" is on dm-verity. detail says which (printable as the mount table's escapes are; cut to
 * its size). Returns 0, or EP_ENOENT when there is no mount table. */
typedef struct ep_disk_protection {
  bool encrypted;
  bool verified_root;
  char detail[256];
} ep_disk_protection;
int ep_discover_disk_protection(ep_disk_protection *out, const char *sysroot);

#endif
