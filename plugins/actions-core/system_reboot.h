/* actions-core: system.reboot, the node restarted by the agent once the run is reported. */
#ifndef EP_ACTIONS_CORE_SYSTEM_REBOOT_H
#define EP_ACTIONS_CORE_SYSTEM_REBOOT_H

#include <edgeprov/edgeprov.h>

extern const ep_field_decl system_reboot_params[];
extern const uint32_t system_reboot_params_count;

/* Asks the host (host->request_reboot, ABI 1.1) to restart the node with "mode" ("reboot"
 * or "kexec") after it has reported this run, and returns at once: the action never
 * restarts anything itself, so its success is reported before the node goes down. */
int32_t system_reboot_run(void *plugin_state, ep_ctx *ctx);

#endif
