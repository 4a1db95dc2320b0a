/* edgeprov SDK: capability edgeprov.os/1, OS profiles and their provisioning workflows. */
#ifndef EDGEPROV_OS_H
#define EDGEPROV_OS_H

#include <stddef.h>

#include "abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One OS profile: what a host names with `--os NAME`. Strings are valid during the visit. */
typedef struct ep_os_profile {
  uint32_t struct_size;
  uint32_t reserved;
  const char *name;         /* [a-z0-9][a-z0-9._-]{0,62}, unique across OS plugins */
  const char *os_type;      /* "mutable" (installs its agents) or "immutable" (agents baked in) */
  const char *image_url;    /* http://, https:// or file:// */
  const char *image_sha256; /* hex SHA-256 of the image as written to the disk (decompressed) */
  const char *image_format; /* "auto", "raw", "zstd" or "gzip" */
  const char *description;
  /* Since ABI 1.3: where the profile's workflow template comes from, for the file:line of the
   * host's template checks: an absolute path when an operator's file, NULL when built into the
   * plugin. The host reads it only when struct_size covers it. */
  const char *template_file;
  /* Since ABI 1.6: non-zero when every instance of the profile encrypts its disk (full-disk
   * encryption; the workflow's ${instance.fde} is then "true"). The host reads it only when
   * struct_size covers it: an older plugin's profiles ask for none. */
  uint32_t fde;
} ep_os_profile;

typedef int32_t (*ep_os_profile_fn)(void *data, const ep_os_profile *profile);

/* Receives a text, valid only during the call. */
typedef int32_t (*ep_os_text_fn)(void *data, const char *text);

/* The table get_capability returns for EP_CAP_OS. Functions return 0 or a negative code
 * after host->set_error, and may be called from several threads at once.
 *
 * profiles: visits every profile the plugin offers (typically from its settings).
 * workflow_template: visits the workflow template of profile: libconfig text
 *   `actions = ( { action = "NAME"; timeout_s = N; retries = N; params = { k = "v"; ... }; }, ... );`
 *   whose string values may reference ${variables} the core fills in (see the plugin guide,
 *   sdk/README.md, "Workflow templates"); EP_ENOENT for a profile the plugin does not have.
 * cloudinit_fragments: visits the cloud-config fragments (YAML mappings) the OS adds to the
 *   node's user-data, zero or more. */
typedef struct ep_os {
  uint32_t struct_size;
  uint32_t reserved;
  int32_t (*profiles)(void *state, ep_os_profile_fn visit, void *data);
  int32_t (*workflow_template)(void *state, const char *profile, ep_os_text_fn visit, void *data);
  int32_t (*cloudinit_fragments)(void *state, const char *profile, ep_os_text_fn visit, void *data);
} ep_os;

#ifdef __cplusplus
}
#endif
#endif
