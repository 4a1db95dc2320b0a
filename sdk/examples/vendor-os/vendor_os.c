/* Example out-of-tree OS plugin: one profile of the vendor's OS, from the site's settings, with
 * the workflow of workflow.conf (compiled in; a site may point template_file at an edited
 * copy). All of it is the plugin kit's: this file says what tells this OS from another. */
#include <stddef.h>

#include <edgeprov-kit/os_image.h>
#include "vendor_os_template.h" /* generated from workflow.conf: vendor_os_template[] */

static const ep_os_image_def vendor_def = {
    .os_type = "immutable",
    .builtin_template = vendor_os_template,
    .fragments = NULL,
};

static int32_t vendor_init(const ep_host *host, ep_ctx *ctx, void **ret_state) {
  return ep_os_image_init(&vendor_def, host, ctx, ret_state);
}

static const ep_field_decl vendor_settings[] = {
    EP_OS_IMAGE_SETTINGS("vendor-os", "vendor-1", "The vendor's OS, release 1"),
};

static const char *const vendor_capabilities[] = {EP_CAP_OS, NULL};

EP_PLUGIN_EXPORT const ep_plugin_entry ep_plugin = {
    EP_PLUGIN_ENTRY_HEADER,
    .id = "vendor-os",
    .version = VENDOR_VERSION,
    .description = "Example: the vendor's OS (erase, then stamp the disk)",
    .capabilities = vendor_capabilities,
    .settings = vendor_settings,
    .settings_count = EP_COUNT(vendor_settings),
    .init = vendor_init,
    .deinit = ep_os_image_deinit,
    .get_capability = ep_os_image_capability,
};
