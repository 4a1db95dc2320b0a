/* The plugin kit: the shared half of an image-based OS plugin (in-tree: os-ubuntu,
 * os-microvisor): its settings and their checks, its workflow template (built in, or the
 * site's template_file, read bounded and checked against the template format with file:line
 * messages) and its edgeprov.os/1 table. A plugin supplies an ep_os_image_def, its settings
 * array (EP_OS_IMAGE_SETTINGS) and its entry; CMake's edgeprov_add_os_image_plugin builds it
 * (the plugin guide, sdk/README.md, "The plugin kit").
 * The kit is a static library linked into the plugin with hidden symbols: nothing of it
 * crosses the plugin ABI. Its API follows the SDK's version: a minor adds, never changes or
 * removes (a member of ep_os_image_def is only ever appended, so designated initialisers keep
 * compiling). */
#ifndef EP_PLUGIN_OS_IMAGE_H
#define EP_PLUGIN_OS_IMAGE_H

#include <edgeprov/edgeprov.h>

#define EP_OS_TEMPLATE_MAX (256 * 1024) /* longest template_file read (the core renders no more) */
#define EP_OS_TEMPLATE_ACTIONS_MAX 64   /* most actions in a template (the core's limit) */

/* What tells one image-based OS plugin from another. Static data, never freed. */
typedef struct ep_os_image_def {
  const char *os_type;            /* "mutable" or "immutable" */
  const char *builtin_template;   /* the workflow template compiled into the plugin (libconfig) */
  const char *const *fragments;   /* cloud-config fragments (YAML mappings), NULL-terminated; NULL: none */
} ep_os_image_def;

/* Where the built-in templates are installed for operators to copy (set by EdgeprovOsImage.cmake). */
#ifndef EP_OS_WORKFLOWS_DIR
#define EP_OS_WORKFLOWS_DIR "<datadir>/edgeprov/workflows"
#endif

/* The settings every image-based OS plugin declares, in this order, for the plugin called
 * plugin_id with its defaults profile_ and description_ (string literals). Use as
 * `static const ep_field_decl s[] = {EP_OS_IMAGE_SETTINGS("os-x", "x-1", "X 1")};`. */
#define EP_OS_IMAGE_SETTINGS(plugin_id, profile_, description_)                                                        \
  EP_FIELD_STRING_DECL("profile", profile_, EP_FIELD_OPTIONAL, 63,                                                     \
                       "profile name instances select ([a-z0-9][a-z0-9._-]*)"),                                        \
      EP_FIELD_STRING_DECL("image_url", NULL, EP_FIELD_REQUIRED, 2048,                                                 \
                           "raw disk image, may be zstd or gzip compressed: http://, https:// or file://"),            \
      EP_FIELD_STRING_DECL("image_sha256", NULL, EP_FIELD_REQUIRED, 64,                                                \
                           "SHA-256 (64 hex digits) of the image as written to disk (decompressed)"),                  \
      EP_FIELD_STRING_DECL("image_format", "auto", EP_FIELD_OPTIONAL, 8,                                               \
                           "auto (by magic bytes), raw, zstd or gzip"),                                                \
      EP_FIELD_STRING_DECL("template_file", "", EP_FIELD_OPTIONAL, 1023,                                               \
                           "workflow template (libconfig, absolute path) instead of the built-in one, "                \
                           "e.g. an edited copy of " EP_OS_WORKFLOWS_DIR "/" plugin_id ".conf; empty: built-in"),     \
      EP_FIELD_STRING_DECL("description", description_, EP_FIELD_OPTIONAL, 255,                                        \
                           "what the profile installs, for people"),                                                   \
      EP_FIELD_BOOL_DECL("fde", "false", EP_FIELD_OPTIONAL,                                                            \
                         "every instance of the profile encrypts its disk (full-disk encryption, the key "             \
                         "sealed in the node's TPM 2.0; a node without one fails instead of writing a "                \
                         "clear disk)")

/* init for a plugin described by def: reads and checks the settings (messages name the
 * setting), reads and checks the template. Same contract as ep_plugin_entry.init. */
int32_t ep_os_image_init(const ep_os_image_def *def, const ep_host *host, ep_ctx *ctx, void **ret_state);

/* deinit and get_capability for ep_plugin_entry. */
void ep_os_image_deinit(void *state);
const void *ep_os_image_capability(void *state, const char *capability_id);

#endif
