/* os-microvisor: Edge Microvisor images (an immutable OS, agents baked in): one profile from
 * the site's settings and the workflow template of workflow.conf; no cloud-config fragments. */
#include <stddef.h>

#include <edgeprov-kit/os_image.h>
#include "os_microvisor_template.h" /* generated: os_microvisor_template[] */

static const ep_os_image_def microvisor_def = {
    .os_type = "immutable",
    .builtin_template = os_microvisor_template,
    .fragments = NULL,
};

static int32_t microvisor_init(const ep_host *host, ep_ctx *ctx, void **ret_state) {
  return ep_os_image_init(&microvisor_def, host, ctx, ret_state);
}

static const ep_field_decl microvisor_settings[] = {
    EP_OS_IMAGE_SETTINGS("os-microvisor", "microvisor", "Edge Microvisor Toolkit"),
};

static const char *const microvisor_capabilities[] = {EP_CAP_OS, NULL};

EP_PLUGIN_EXPORT const ep_plugin_entry ep_plugin = {
    EP_PLUGIN_ENTRY_HEADER,
    .id = "os-microvisor",
    .version = "0.1.0",
    .description = "Edge Microvisor images (immutable, agents built in): stream the image, seed cloud-init",
    .capabilities = microvisor_capabilities,
    .settings = microvisor_settings,
    .settings_count = EP_COUNT(microvisor_settings),
    .init = microvisor_init,
    .deinit = ep_os_image_deinit,
    .get_capability = ep_os_image_capability,
};
