/* actions-core: which disk an action writes to. Explicit (a block device or an image file),
 * by serial, or the first non-removable disk; never a removable disk or one with a mounted
 * partition (the boot medium). */
#ifndef EP_ACTIONS_CORE_TARGET_DISK_H
#define EP_ACTIONS_CORE_TARGET_DISK_H

#include <edgeprov/edgeprov.h>

#define TARGET_PATH_MAX 256

/* Resolves the run's target from its parameters "target" (a path) and "target_serial", else
 * the host's "run.target_disk", into
 * out (a path under /dev, or the file named). sysroot prefixes /sys and /proc (tests).
 * Returns 0 or a negative code after set_error naming the parameter. */
int32_t target_disk_resolve(const ep_host *host, ep_ctx *ctx, const char *sysroot, char out[TARGET_PATH_MAX]);

#endif
