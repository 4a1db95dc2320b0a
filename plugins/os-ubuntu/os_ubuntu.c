/* os-ubuntu: Ubuntu cloud images (a mutable OS): one profile from the site's settings, the
 * workflow template built from workflow.conf.in with its installer, and the cloud-config
 * fragment that enables that installer. */
#include <stddef.h>

#include <edgeprov-kit/os_image.h>
#include "os_ubuntu_template.h" /* generated: os_ubuntu_template[] */

/* Enables and starts the installer unit the workflow wrote. runcmd runs in cloud-final, after
 * write_files put /etc/edgeprov in place; --no-block because the unit is ordered after
 * cloud-final.service, whose runcmd would otherwise wait for it forever. */
static const char *const ubuntu_fragments[] = {
    "runcmd:\n"
    "  - [systemctl, enable, --now, --no-block, edgeprov-install.service]\n",
    NULL,
};

static const ep_os_image_def ubuntu_def = {
    .os_type = "mutable",
    .builtin_template = os_ubuntu_template,
    .fragments = ubuntu_fragments,
};

static int32_t ubuntu_init(const ep_host *host, ep_ctx *ctx, void **ret_state) {
  return ep_os_image_init(&ubuntu_def, host, ctx, ret_state);
}

static const ep_field_decl ubuntu_settings[] = {
    EP_OS_IMAGE_SETTINGS("os-ubuntu", "ubuntu-22.04", "Ubuntu 22.04 LTS server"),
};

static const char *const ubuntu_capabilities[] = {EP_CAP_OS, NULL};

EP_PLUGIN_EXPORT const ep_plugin_entry ep_plugin = {
    EP_PLUGIN_ENTRY_HEADER,
    .id = "os-ubuntu",
    .version = "0.1.0",
    .description = "Ubuntu cloud images (mutable): stream the image, seed cloud-init, install the edge node agent "
                   "on first boot",
    .capabilities = ubuntu_capabilities,
    .settings = ubuntu_settings,
    .settings_count = EP_COUNT(ubuntu_settings),
    .init = ubuntu_init,
    .deinit = ep_os_image_deinit,
    .get_capability = ep_os_image_capability,
};
