/* actions-core: the plugin entry and its action table. */
#include <string.h>

#include "actions_core.h"
#include "disk_erase.h"
#include "efi_boot_order.h"
#include "file_write.h"
#include "image_stream.h"
#include "system_reboot.h"

static ep_action core_actions[] = {
    {.struct_size = sizeof(ep_action), .name = "disk.erase",
     .description = "wipe the target disk's partition tables and filesystem signatures", .run = disk_erase_run},
    {.struct_size = sizeof(ep_action), .name = "image.stream",
     .description = "stream an OS image (raw, zstd or gzip) onto the target disk, resuming broken downloads, "
                    "SHA-256 checked; with fde, one partition encrypted as it is written (LUKS2, TPM 2.0)",
     .run = image_stream_run},
    {.struct_size = sizeof(ep_action), .name = "file.write",
     .description = "write one file (content, mode, owner) into a filesystem on the target disk, found by partition number "
                    "or label, or into a host directory",
     .run = file_write_run},
    {.struct_size = sizeof(ep_action), .name = "efi.boot_order",
     .description = "put the installed OS's Boot#### entry first in the firmware's BootOrder (efivarfs)",
     .run = efi_boot_order_run},
    {.struct_size = sizeof(ep_action), .name = "system.reboot",
     .description = "have the agent restart the node (reboot or kexec) once this run is reported",
     .run = system_reboot_run},
};

static const ep_actions core_table = {
    EP_ACTIONS_HEADER,
    .actions_count = sizeof core_actions / sizeof core_actions[0],
    .actions = core_actions,
};

static int32_t core_init(const ep_host *host, ep_ctx *ctx, void **ret_state) {
  if (!EP_HOST_HAS(host, fetch))
    return ep_failf(host, ctx, EP_ENOTSUP, "the host is too old: actions-core needs ABI 1.1 (fetch)");
  actions_core_state *s = host->alloc(ctx, sizeof *s);
  if (!s) return ep_failf(host, ctx, EP_ENOMEM, "out of memory");
  s->host = host;
  s->ctx = ctx;
  /* The parameter tables live in their actions' files. */
  core_actions[0].params = disk_erase_params, core_actions[0].params_count = disk_erase_params_count;
  core_actions[1].params = image_stream_params, core_actions[1].params_count = image_stream_params_count;
  core_actions[2].params = file_write_params, core_actions[2].params_count = file_write_params_count;
  core_actions[3].params = efi_boot_order_params, core_actions[3].params_count = efi_boot_order_params_count;
  core_actions[4].params = system_reboot_params, core_actions[4].params_count = system_reboot_params_count;
  *ret_state = s;
  return 0;
}

static void core_deinit(void *state) {
  actions_core_state *s = state;
  s->host->free(s->ctx, s);
}

static const void *core_get_capability(void *state, const char *id) {
  (void)state;
  return strcmp(id, EP_CAP_ACTIONS) == 0 ? &core_table : NULL;
}

static const char *const core_capabilities[] = {EP_CAP_ACTIONS, NULL};

EP_PLUGIN_EXPORT const ep_plugin_entry ep_plugin = {
    EP_PLUGIN_ENTRY_HEADER,
    .id = "actions-core",
    .version = "0.1.0",
    .description = "Core node actions: disk.erase, image.stream, file.write, efi.boot_order, system.reboot",
    .capabilities = core_capabilities,
    .init = core_init,
    .deinit = core_deinit,
    .get_capability = core_get_capability,
};
