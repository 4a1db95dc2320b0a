/* boot-usb: booting nodes from a USB stick — the autoexec.ipxe artifact, and a GPT disk image
 * whose EFI System Partition starts iPXE (which runs autoexec.ipxe) or the Micro-OS UKI. */
#define _GNU_SOURCE /* mkostemp, O_CLOEXEC */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <edgeprov/boot.h>
#include <edgeprov/plugin.h>

#include "ipxe_script.h"
#include "usb_image.h"

#define SCRIPT_MAX (64u << 10) /* longest autoexec.ipxe */
#define SCRIPT_NAME "autoexec.ipxe"
#define IPXE_EFI "ipxe.efi"
#define MICRO_OS_EFI "micro-os.efi"

typedef struct boot_usb_state {
  const ep_host *host;
  ep_ctx *ctx;
  ep_ipxe_options ipxe;
  char payload[16]; /* "ipxe" or "micro-os" */
} boot_usb_state;

static const ep_field_decl usb_settings[] = {
    EP_IPXE_SETTINGS,
    EP_FIELD_STRING_DECL("payload", "ipxe", EP_FIELD_OPTIONAL, 16,
                         "what the USB image boots unless told otherwise: ipxe (iPXE, then autoexec.ipxe fetches the "
                         "Micro-OS) or micro-os (the signed Micro-OS UKI, no network boot)"),
};

static int payload_known(const char *payload) { return strcmp(payload, "ipxe") == 0 || strcmp(payload, "micro-os") == 0; }

static int32_t usb_init(const ep_host *host, ep_ctx *ctx, void **ret_state) {
  ep_ipxe_options ipxe;
  const char *payload;
  int32_t rc = ep_ipxe_options_read(host, ctx, &ipxe);
  if (rc < 0) return rc;
  if ((rc = host->setting_string(ctx, "payload", &payload)) < 0)
    return ep_failf(host, ctx, rc, "setting payload: cannot read it");
  if (!payload_known(payload))
    return ep_failf(host, ctx, EP_EINVAL, "setting payload: '%.32s' is neither 'ipxe' nor 'micro-os'", payload);

  boot_usb_state *s = host->alloc(ctx, sizeof *s);
  if (!s) return ep_failf(host, ctx, EP_ENOMEM, "out of memory");
  memset(s, 0, sizeof *s);
  s->host = host;
  s->ctx = ctx;
  s->ipxe = ipxe; /* a signed build: autoexec.ipxe chains the signed UKI (ep_ipxe_script) */
  snprintf(s->payload, sizeof s->payload, "%s", payload);
  *ret_state = s;
  return 0;
}

static void usb_deinit(void *state) {
  boot_usb_state *s = state;
  if (s) s->host->free(s->ctx, s);
}

/* Adds autoexec.ipxe, the script iPXE runs when it starts from the stick. */
static int32_t usb_curate(void *state, const ep_boot_build *build, ep_boot_add_fn add, void *data) {
  boot_usb_state *s = state;
  if (build->struct_size < sizeof *build) return ep_failf(s->host, s->ctx, EP_EINVAL, "the host's build description is too old");
  char *script = malloc(SCRIPT_MAX);
  if (!script) return ep_failf(s->host, s->ctx, EP_ENOMEM, "out of memory");
  int len = ep_ipxe_script(script, SCRIPT_MAX, build, &s->ipxe);
  int32_t rc = len < 0 ? ep_failf(s->host, s->ctx, EP_ERANGE, SCRIPT_NAME ": the iPXE script would be longer than %u bytes "
                                  "(shorten the kernel arguments)", SCRIPT_MAX)
                       : add(data, SCRIPT_NAME, (const uint8_t *)script, (uint64_t)len);
  free(script);
  return rc;
}

/* Opens artifact_dir/name for the image; a missing file is the usual mistake, said plainly. */
static int32_t open_input(const ep_host *host, ep_ctx *ctx, int dir_fd, const char *artifact_dir, const char *name,
                          usb_image_file *f, char *source, size_t source_size) {
  snprintf(source, source_size, "%s/%s", artifact_dir, name);
  f->source = source;
  f->fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block; checked below */
  if (f->fd < 0 && errno == ENOENT)
    return ep_failf(host, ctx, EP_ENOENT, "%s is missing: the USB image needs it; run `edgeprov artifacts build` first", source);
  if (f->fd < 0) return ep_failf(host, ctx, -errno, "cannot open %s: %s", source, strerror(errno));
  struct stat st;
  if (fstat(f->fd, &st) < 0) return ep_failf(host, ctx, -errno, "cannot stat %s: %s", source, strerror(errno));
  if (!S_ISREG(st.st_mode)) return ep_failf(host, ctx, EP_EINVAL, "%s is not a regular file", source);
  f->size = (uint64_t)st.st_size;
  return 0;
}

/* Writes the image to a temporary file next to out_path and renames it into place. */
static int32_t usb_write_media(void *state, const ep_boot_media *media) {
  boot_usb_state *s = state;
  const ep_host *host = s->host;
  ep_ctx *ctx = s->ctx;
  if (media->struct_size < sizeof *media) return ep_failf(host, ctx, EP_EINVAL, "the host's media request is too old");
  const char *payload = media->payload && media->payload[0] ? media->payload : s->payload;
  if (!payload_known(payload))
    return ep_failf(host, ctx, EP_EINVAL, "payload '%.32s' is neither 'ipxe' nor 'micro-os'", payload);
  const char *out_path = media->out_path, *slash = strrchr(out_path, '/');
  if (out_path[0] != '/' || !slash[1] || strlen(out_path) > PATH_MAX - 32)
    return ep_failf(host, ctx, EP_EINVAL, "'%.200s' is not an absolute path to a file", out_path);

  /* What goes where: the source file in artifact_dir, the directory, the long and 8.3 names. */
  static const struct {
    const char *source;
    usb_image_dir dir;
    const char *name, *short_name;
  } ipxe_files[] = {{IPXE_EFI, USB_IMAGE_EFI_BOOT, "BOOTX64.EFI", "BOOTX64 EFI"},
                    {SCRIPT_NAME, USB_IMAGE_ROOT, SCRIPT_NAME, "AUTOEX~1IPX"},
                    {SCRIPT_NAME, USB_IMAGE_EFI_BOOT, SCRIPT_NAME, "AUTOEX~1IPX"}}, /* iPXE looks next to itself */
    micro_os_files[] = {{MICRO_OS_EFI, USB_IMAGE_EFI_BOOT, "BOOTX64.EFI", "BOOTX64 EFI"}};
  int ipxe = strcmp(payload, "ipxe") == 0;
  size_t count = ipxe ? EP_COUNT(ipxe_files) : EP_COUNT(micro_os_files);
  usb_image_file files[USB_IMAGE_FILES_MAX];
  char sources[USB_IMAGE_FILES_MAX][PATH_MAX];
  char tmp[PATH_MAX];
  int32_t rc = 0;
  int dir_fd = -1, fd = -1;
  for (size_t i = 0; i < USB_IMAGE_FILES_MAX; i++) files[i].fd = -1;
  tmp[0] = '\0';

  dir_fd = open(media->artifact_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) {
    rc = ep_failf(host, ctx, -errno, "cannot open the artifact directory %s: %s; run `edgeprov artifacts build` first",
                  media->artifact_dir, strerror(errno));
    goto out;
  }
  for (size_t i = 0; rc == 0 && i < count; i++) {
    files[i].dir = ipxe ? ipxe_files[i].dir : micro_os_files[i].dir;
    files[i].name = ipxe ? ipxe_files[i].name : micro_os_files[i].name;
    files[i].short_name = ipxe ? ipxe_files[i].short_name : micro_os_files[i].short_name;
    rc = open_input(host, ctx, dir_fd, media->artifact_dir, ipxe ? ipxe_files[i].source : micro_os_files[i].source,
                    &files[i], sources[i], sizeof sources[i]);
  }
  if (rc < 0) goto out;

  snprintf(tmp, sizeof tmp, "%.*s.%s.XXXXXX", (int)(slash + 1 - out_path), out_path, slash + 1);
  fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0) {
    rc = ep_failf(host, ctx, -errno, "cannot create a file next to %s: %s", out_path, strerror(errno));
    tmp[0] = '\0';
    goto out;
  }
  rc = usb_image_write(host, ctx, fd, out_path, files, count);
  if (rc == 0 && (fchmod(fd, 0644) < 0 || fsync(fd) < 0))
    rc = ep_failf(host, ctx, EP_EIO, "%s: cannot finish the image: %s", out_path, strerror(errno));
  if (close(fd) < 0 && rc == 0) rc = ep_failf(host, ctx, EP_EIO, "%s: cannot finish the image: %s", out_path, strerror(errno));
  fd = -1;
  if (rc == 0 && rename(tmp, out_path) < 0)
    rc = ep_failf(host, ctx, -errno, "cannot rename the image to %s: %s", out_path, strerror(errno));
  if (rc == 0) {
    tmp[0] = '\0';
    struct stat st;
    ep_logf(host, ctx, EP_LOG_INFO, "wrote %s (%llu MiB, boots %s)", out_path,
            stat(out_path, &st) == 0 ? (unsigned long long)st.st_size >> 20 : 0ull, ipxe ? "iPXE" : "the Micro-OS");
  }
out:
  if (fd >= 0) close(fd);
  if (tmp[0]) unlink(tmp);
  for (size_t i = 0; i < USB_IMAGE_FILES_MAX; i++)
    if (files[i].fd >= 0) close(files[i].fd);
  if (dir_fd >= 0) close(dir_fd);
  return rc;
}

static const ep_boot usb_boot = {
    .struct_size = sizeof(ep_boot),
    .name = "usb",
    .curate = usb_curate,
    .write_media = usb_write_media,
};

static const void *usb_get_capability(void *state, const char *id) {
  (void)state;
  return strcmp(id, EP_CAP_BOOT) == 0 ? &usb_boot : NULL;
}

static const char *const usb_capabilities[] = {EP_CAP_BOOT, NULL};

EP_PLUGIN_EXPORT const ep_plugin_entry ep_plugin = {
    EP_PLUGIN_ENTRY_HEADER,
    .id = "boot-usb",
    .version = "0.1.0",
    .description = "Boot from a USB stick: autoexec.ipxe, and a GPT image with an ESP that starts iPXE or the Micro-OS",
    .capabilities = usb_capabilities,
    .settings = usb_settings,
    .settings_count = EP_COUNT(usb_settings),
    .init = usb_init,
    .deinit = usb_deinit,
    .get_capability = usb_get_capability,
};
