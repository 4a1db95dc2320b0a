/* actions-core: the LUKS mapping (device-mapper crypt device) that holds a partition, as sysfs
 * shows it (/sys/class/block/<part>/holders/dm-N with dm/uuid CRYPT-LUKS*): file.write writes into
 * it, since a file system inside LUKS is invisible on the raw partition. */
#ifndef EP_ACTIONS_CORE_CRYPT_HOLDER_H
#define EP_ACTIONS_CORE_CRYPT_HOLDER_H

#include <stddef.h>

/* Looks at the partitions of disk_name ("sda", "loop0"; under sysroot + /sys, "" on a node)
 * numbered number (0: any) for one held by a LUKS crypt device. Returns that partition's number
 * and writes "/dev/dm-N" to out (cap bytes), or 0 when none is. */
int crypt_holder_find(const char *sysroot, const char *disk_name, int number, char *out, size_t cap);

#endif
