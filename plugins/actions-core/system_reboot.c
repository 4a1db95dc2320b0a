/* actions-core: system.reboot, see system_reboot.h. */
#include "system_reboot.h"

#include <string.h>

#include "actions_core.h"

const ep_field_decl system_reboot_params[] = {
    EP_FIELD_STRING_DECL("mode", "reboot", EP_FIELD_OPTIONAL, 8, "reboot (through the firmware) or kexec (straight into the installed kernel)"),
};
const uint32_t system_reboot_params_count = sizeof system_reboot_params / sizeof system_reboot_params[0];

int32_t system_reboot_run(void *plugin_state, ep_ctx *ctx) {
  const ep_host *host = ((actions_core_state *)plugin_state)->host;
  const char *mode = "reboot";
  host->param_string(ctx, "mode", &mode);
  if (strcmp(mode, "reboot") != 0 && strcmp(mode, "kexec") != 0)
    return ep_failf(host, ctx, EP_EINVAL, "mode: '%.16s' is not reboot or kexec", mode);
  if (!EP_HOST_HAS(host, request_reboot) || !host->request_reboot)
    return ep_failf(host, ctx, EP_ENOTSUP, "the host is too old: system.reboot needs ABI 1.1 with request_reboot");
  int32_t r = host->request_reboot(ctx, mode);
  if (r < 0) return r; /* the host set the message */
  host->progress(ctx, 1, 1, "restart requested");
  ep_logf(host, ctx, EP_LOG_INFO, "%s requested: the agent restarts the node once this run is reported", mode);
  return 0;
}
