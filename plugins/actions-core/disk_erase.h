/* actions-core: disk.erase, partition tables and filesystem signatures wiped. */
#ifndef EP_ACTIONS_CORE_DISK_ERASE_H
#define EP_ACTIONS_CORE_DISK_ERASE_H

#include <edgeprov/edgeprov.h>

extern const ep_field_decl disk_erase_params[];
extern const uint32_t disk_erase_params_count;

/* Zeroes the first and last MiB of the target disk (MBR, both GPT headers, RAID and LVM
 * labels, filesystem superblocks) and of each of its partitions, then has the kernel reread
 * the partition table. Works on block devices and image files. */
int32_t disk_erase_run(void *plugin_state, ep_ctx *ctx);

#endif
