/* A stand-in host for the boot-usb plugin: loads it with dlopen, runs init with settings from
 * the command line (the plugin's declared defaults otherwise), then curate or write_media.
 * Usage: boot_usb_driver PLUGIN.so curate OUT_DIR [NAME=VALUE...]
 *        boot_usb_driver PLUGIN.so media ARTIFACT_DIR OUT_PATH PAYLOAD [NAME=VALUE...]
 * Exits 0 on success; 1 with the plugin's message on stderr when a call fails. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <edgeprov/boot.h>
#include <edgeprov/plugin.h>

static const ep_plugin_entry *entry;
static char **overrides;
static int overrides_count;

static void host_log(ep_ctx *ctx, int32_t level, const char *message) {
  (void)ctx;
  fprintf(stderr, "log %d: %s\n", level, message);
}
static void *host_alloc(ep_ctx *ctx, uint64_t size) {
  (void)ctx;
  return malloc(size);
}
static void host_free(ep_ctx *ctx, void *ptr) {
  (void)ctx;
  free(ptr);
}
static void host_set_error(ep_ctx *ctx, int32_t code, const char *message) {
  (void)ctx;
  fprintf(stderr, "error %d: %s\n", code, message);
}

/* The value of a declared setting of that type: NAME=VALUE from the command line, else its
 * default. */
static int32_t setting(const char *name, uint32_t type, const char **out) {
  const ep_field_decl *decl = NULL;
  for (uint32_t i = 0; i < entry->settings_count; i++) {
    const ep_field_decl *d = (const ep_field_decl *)((const char *)entry->settings + (size_t)i * entry->field_size);
    if (strcmp(d->name, name) == 0) decl = d;
  }
  if (!decl || decl->type != type) return EP_EINVAL;
  size_t len = strlen(name);
  for (int i = 0; i < overrides_count; i++)
    if (strncmp(overrides[i], name, len) == 0 && overrides[i][len] == '=') return *out = overrides[i] + len + 1, 0;
  if (!decl->default_value) return EP_ENOENT;
  *out = decl->default_value;
  return 0;
}
static int32_t host_setting_string(ep_ctx *ctx, const char *name, const char **out) {
  (void)ctx;
  return setting(name, EP_FIELD_STRING, out);
}
static int32_t host_setting_int(ep_ctx *ctx, const char *name, int64_t *out) {
  (void)ctx;
  const char *text;
  int32_t rc = setting(name, EP_FIELD_INT, &text);
  if (rc < 0) return rc;
  char *end;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (errno || *end || end == text) return EP_EINVAL;
  *out = v;
  return 0;
}

/* Writes each artifact curate adds to OUT_DIR. */
static int32_t add_artifact(void *data, const char *name, const uint8_t *content, uint64_t len) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", (const char *)data, name);
  FILE *f = fopen(path, "wbx");
  if (!f || fwrite(content, 1, len, f) != len || fclose(f) != 0) {
    fprintf(stderr, "cannot write %s\n", path);
    return EP_EIO;
  }
  printf("added %s\n", name);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4 || (strcmp(argv[2], "curate") != 0 && (strcmp(argv[2], "media") != 0 || argc < 6))) {
    fprintf(stderr, "usage: %s PLUGIN.so curate OUT_DIR [NAME=VALUE...]\n"
                    "       %s PLUGIN.so media ARTIFACT_DIR OUT_PATH PAYLOAD [NAME=VALUE...]\n", argv[0], argv[0]);
    return 2;
  }
  int media = strcmp(argv[2], "media") == 0;
  overrides = argv + (media ? 6 : 4);
  overrides_count = argc - (media ? 6 : 4);

  void *so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!so) return fprintf(stderr, "%s\n", dlerror()), 1;
  entry = dlsym(so, EP_PLUGIN_ENTRY_SYMBOL);
  if (!entry || entry->abi_major != EP_ABI_MAJOR || entry->field_size != sizeof(ep_field_decl))
    return fprintf(stderr, "%s: no usable ep_plugin\n", argv[1]), 1;

  ep_host host = {
      .struct_size = sizeof host, .abi_major = EP_ABI_MAJOR, .abi_minor = EP_ABI_MINOR,
      .log = host_log, .alloc = host_alloc, .free = host_free,
      .setting_string = host_setting_string, .setting_int = host_setting_int, .set_error = host_set_error,
  };
  ep_ctx *ctx = (ep_ctx *)&host; /* any non-NULL token: the plugin never looks inside */
  void *state = NULL;
  if (entry->init(&host, ctx, &state) < 0) return 1;
  const ep_boot *boot = entry->get_capability(state, EP_CAP_BOOT);
  int32_t rc;
  if (!boot) {
    fprintf(stderr, "no %s capability\n", EP_CAP_BOOT);
    rc = EP_ENOENT;
  } else if (!media) {
    ep_boot_build build = {
        .struct_size = sizeof build,
        .base_url = "https://10.0.2.2:8443/boot",
        .kernel = "vmlinuz",
        .initrd = "initrd.img",
        .uki = "micro-os.efi",
        .ipxe_efi = "ipxe.efi",
        .kernel_args = "console=ttyS0,115200 edgeprov.orchestrator=10.0.2.2:7443",
    };
    rc = boot->curate(state, &build, add_artifact, argv[3]);
  } else {
    ep_boot_media request = {.struct_size = sizeof request, .artifact_dir = argv[3], .out_path = argv[4], .payload = argv[5]};
    rc = boot->write_media ? boot->write_media(state, &request) : EP_ENOTSUP;
  }
  printf("plugin %s, boot method %s: %d\n", entry->id, boot ? boot->name : "-", rc);
  if (entry->deinit) entry->deinit(state);
  dlclose(so);
  return rc < 0 ? 1 : 0;
}
