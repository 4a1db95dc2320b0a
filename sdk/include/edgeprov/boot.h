/* edgeprov SDK: capability edgeprov.boot/1, a boot method's artifacts and media. */
#ifndef EDGEPROV_BOOT_H
#define EDGEPROV_BOOT_H

#include <stddef.h>

#include "abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What the core curated in one `edgeprov artifacts build`, handed to every boot plugin so it
 * can add its own artifacts (an iPXE script, ...). Every string is validated by the core and
 * holds only [A-Za-z0-9] and -._~:/?#[]@!$&'()*+,;=% (no space, quote, backslash or newline),
 * so a plugin may write it into a script or a command line as it is. Valid during the call.
 *
 * base_url: where nodes fetch the artifacts ("https://10.0.2.2:8443/boot"), no trailing "/".
 * kernel, initrd: file names of the Micro-OS kernel and initramfs in the artifact directory;
 *   kernel is "" in a signed build, which offers no bare kernel to boot (a signed one would run
 *   any initramfs and command line under Secure Boot): boot its uki.
 * uki: file name of the Micro-OS as one (signed) EFI executable, "" when none was built.
 * ipxe_efi: file name of the (signed) iPXE EFI binary, "" when none was curated.
 * kernel_args: what the core wants on the Micro-OS kernel command line, space-separated
 *   key=value words ("console=ttyS0,115200 edgeprov.orchestrator=10.0.2.2:7443 ..."); the
 *   plugin adds initrd=<initrd> and what only it knows (iPXE's ${netX/mac}, ...).
 * signed: 1 when uki and ipxe_efi carry the site's Secure Boot signature (and kernel is ""). */
typedef struct ep_boot_build {
  uint32_t struct_size;
  uint32_t is_signed;
  const char *base_url;
  const char *kernel;
  const char *initrd;
  const char *uki;
  const char *ipxe_efi;
  const char *kernel_args;
} ep_boot_build;

/* Adds one artifact to the build: name is a file name ([A-Za-z0-9][A-Za-z0-9._-]*, at most
 * 63 characters, not one the core or another plugin already added), content its bytes. The
 * core writes it with fixed metadata so builds are reproducible. Returns 0 or a negative
 * code (message set). */
typedef int32_t (*ep_boot_add_fn)(void *data, const char *name, const uint8_t *content, uint64_t len);

/* A request to write boot media (a disk image) from a finished artifact directory. */
typedef struct ep_boot_media {
  uint32_t struct_size;
  uint32_t reserved;
  const char *artifact_dir; /* the built artifacts (absolute path) */
  const char *out_path;     /* the file to create (absolute path); written whole or not at all */
  const char *payload;      /* what to boot: "" (the plugin's default), "ipxe" or "micro-os" */
} ep_boot_media;

/* The table get_capability returns for EP_CAP_BOOT. Functions return 0 or a negative code
 * after host->set_error.
 *
 * name: the boot method's name ("https", "usb"), [a-z0-9-]{1,31}.
 * curate: adds the method's artifacts to a build through add; may add none.
 * write_media: writes boot media; NULL when the method has none. */
typedef struct ep_boot {
  uint32_t struct_size;
  uint32_t reserved;
  const char *name;
  int32_t (*curate)(void *state, const ep_boot_build *build, ep_boot_add_fn add, void *data);
  int32_t (*write_media)(void *state, const ep_boot_media *media);
} ep_boot;

#ifdef __cplusplus
}
#endif
#endif
