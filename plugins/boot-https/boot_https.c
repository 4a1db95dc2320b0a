/* boot-https: HTTPS boot. Publishes the artifact directory on the core's embedded HTTPS
 * server (publish_directory) and adds boot.ipxe, the script iPXE runs, to every build. */
#include <stdlib.h>
#include <string.h>

#include <edgeprov/edgeprov.h>

#include "ipxe_script.h"

#define SCRIPT_MAX (16 * 1024)

typedef struct boot_https {
  const ep_host *host;
  ep_ctx *ctx;
  ep_ipxe_options script;
  int kernel_only; /* payload = "kernel" set: refused for a signed build */
} boot_https;

static int32_t https_curate(void *state, const ep_boot_build *build, ep_boot_add_fn add, void *data) {
  boot_https *b = state;
  char *script = b->host->alloc(b->ctx, SCRIPT_MAX);
  if (!script) return ep_failf(b->host, b->ctx, EP_ENOMEM, "out of memory");
  if (b->kernel_only && build->is_signed) {
    b->host->free(b->ctx, script);
    return ep_failf(b->host, b->ctx, EP_EINVAL,
                    "setting payload: 'kernel' boots a bare kernel with an unsigned initramfs and command line, which "
                    "Secure Boot would not check; this site signs its artifacts, so its Micro-OS boots only as the "
                    "signed UKI: set payload = \"uki\" (or leave it unset)");
  }
  int len = ep_ipxe_script(script, SCRIPT_MAX, build, &b->script);
  int uki = b->script.use_uki || build->is_signed; /* a signed build boots only its UKI */
  int32_t r = len < 0 ? ep_failf(b->host, b->ctx, EP_EINVAL,
                                 uki ? "payload uki: this build has no unified kernel image (set artifacts.efi_stub)"
                                     : "the iPXE script does not fit in %d bytes", SCRIPT_MAX)
                      : add(data, "boot.ipxe", (const uint8_t *)script, (uint64_t)len);
  b->host->free(b->ctx, script);
  return r;
}

static const ep_boot https_boot = {
    .struct_size = sizeof(ep_boot),
    .name = "https",
    .curate = https_curate,
    .write_media = NULL,
};

static int32_t https_init(const ep_host *host, ep_ctx *ctx, void **ret_state) {
  if (host->abi_minor < 2 || !EP_HOST_HAS(host, publish_directory))
    return ep_failf(host, ctx, EP_ENOTSUP, "needs a host with plugin ABI 1.2 (publish_directory)");
  boot_https *b = calloc(1, sizeof *b);
  if (!b) return ep_failf(host, ctx, EP_ENOMEM, "out of memory");
  b->host = host;
  b->ctx = ctx;
  const char *url_path = "/boot", *directory = "", *payload = "auto";
  host->setting_string(ctx, "url_path", &url_path);
  host->setting_string(ctx, "directory", &directory);
  host->setting_string(ctx, "payload", &payload);
  int32_t r = ep_ipxe_options_read(host, ctx, &b->script);
  if (r == 0 && strcmp(payload, "auto") != 0 && strcmp(payload, "kernel") != 0 && strcmp(payload, "uki") != 0)
    r = ep_failf(host, ctx, EP_EINVAL, "setting payload: '%.32s' is none of 'auto', 'kernel' and 'uki'", payload);
  b->script.use_uki = strcmp(payload, "uki") == 0; /* auto: the build decides (signed: uki) */
  b->kernel_only = strcmp(payload, "kernel") == 0;
  if (r == 0 && !directory[0] && host->site_string(ctx, "artifacts.directory", &directory) < 0)
    r = ep_failf(host, ctx, EP_EINVAL, "setting directory: unset, and the host has no artifacts.directory");
  if (r == 0) r = host->publish_directory(ctx, url_path, directory); /* message set by the host */
  if (r < 0) {
    free(b);
    return r;
  }
  *ret_state = b;
  return 0;
}

static void https_deinit(void *state) { free(state); }

static const void *https_capability(void *state, const char *id) {
  (void)state;
  return strcmp(id, EP_CAP_BOOT) == 0 ? &https_boot : NULL;
}

static const ep_field_decl https_settings[] = {
    EP_FIELD_STRING_DECL("url_path", "/boot", EP_FIELD_OPTIONAL, 100,
                         "where the artifacts appear on the HTTPS server (artifacts.base_url ends with it)"),
    EP_FIELD_STRING_DECL("directory", "", EP_FIELD_OPTIONAL, 1024,
                         "the directory served; empty: the site's artifacts.directory"),
    EP_FIELD_STRING_DECL("payload", "auto", EP_FIELD_OPTIONAL, 16,
                         "what iPXE boots: auto (uki when the site signs its artifacts, else kernel), kernel "
                         "(unsigned builds only: kernel + initrd) or uki (one EFI file, signed when the site signs)"),
    EP_IPXE_SETTINGS,
};

static const char *const https_capabilities[] = {EP_CAP_BOOT, NULL};

EP_PLUGIN_EXPORT const ep_plugin_entry ep_plugin = {
    EP_PLUGIN_ENTRY_HEADER,
    .id = "boot-https",
    .version = "0.1.0",
    .description = "UEFI HTTPS boot: serves the boot artifacts and writes the iPXE script",
    .capabilities = https_capabilities,
    .settings = https_settings,
    .settings_count = EP_COUNT(https_settings),
    .init = https_init,
    .deinit = https_deinit,
    .get_capability = https_capability,
};
