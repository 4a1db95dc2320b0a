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

/* The sysfs name of block device major:minor ("sda", "loop0p2"): the last component of the link
 * sysroot/sys/dev/block/MAJ:MIN, into out (cap bytes). Returns 0, or -1 when there is none. */
int sysfs_block_name(const char *sysroot, unsigned major, unsigned minor, char *out, size_t cap);

/* Where the device-mapper device named mapping (its dm/name) reads from, under sysroot + /sys:
 * returns 1 when every device below it (its slaves) is a partition of disk_name, 0 when one is
 * not (that one's name into other, cap bytes: "sdb2"; "" when sysfs shows none below it), -1 when no
 * dm device has that name. */
int crypt_mapping_on_disk(const char *sysroot, const char *mapping, const char *disk_name, char *other, size_t cap);

#endif
