/* core: what a node knows about itself, read from sysfs and procfs (under a sysroot for
 * tests): SMBIOS UUID and serial, network interfaces, local IPs, disks, CPUs, memory. */
#ifndef EP_CORE_DISCOVERY_H
#define EP_CORE_DISCOVERY_H

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

#endif
