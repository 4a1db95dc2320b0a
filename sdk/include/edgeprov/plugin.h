/* edgeprov SDK: the one symbol a plugin exports, and the capability IDs the host knows. */
#ifndef EDGEPROV_PLUGIN_H
#define EDGEPROV_PLUGIN_H

#include "abi.h"
#include "host.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Capability IDs: "<namespace>.<name>/<revision>". The host knows the edgeprov.* ones
 * below and refuses a plugin that claims another edgeprov.* ID; third parties register
 * their own namespace ("com.vendor.thing/1") for other plugins to look up. */
#define EP_CAP_OS "edgeprov.os/1"             /* OS profiles and workflow templates */
#define EP_CAP_BOOT "edgeprov.boot/1"         /* boot artifacts (iPXE script, USB image) */
#define EP_CAP_IDENTITY "edgeprov.identity/1" /* per-node credentials and tokens */
#define EP_CAP_STORAGE "edgeprov.storage/1"   /* the inventory's durable store */
#define EP_CAP_ACTIONS "edgeprov.actions/1"   /* node-side actions (see actions.h) */

/* The name of the one symbol a plugin exports. */
#define EP_PLUGIN_ENTRY_SYMBOL "ep_plugin"

/* A plugin's entry: the only exported symbol, a const object of this type named ep_plugin.
 * The host reads the first four fields before anything else, so they never move.
 *
 * id: the plugin's unique name, [a-z][a-z0-9-]* at most 63 characters; it also names the
 *   plugin's section in the site config. version: the plugin's own version text.
 * capabilities: NULL-terminated list of the capability IDs get_capability answers.
 * settings/settings_count: the plugin's declared settings; field_size is
 *   sizeof(ep_field_decl) as the plugin was built (the stride of settings).
 * init: called once, after the host validated the settings. On success stores the plugin's
 *   state in *ret_state and returns 0; on failure calls host->set_error and returns a
 *   negative code (deinit is then not called). host and ctx stay valid until deinit.
 * deinit: releases the state; called once, in reverse order of init. May be NULL.
 * get_capability: returns the table for capability_id (one of capabilities) or NULL. The
 *   table stays valid until deinit. The host asks for every declared capability after init
 *   and refuses the plugin when one answers NULL.
 *
 * On a node (edgeprov-agent in the Micro-OS) only plugins offering EP_CAP_ACTIONS are loaded
 * and only their actions are used; a plugin that also offers an OS profile serves its actions
 * there. There is no site config on a node: every setting holds its declared default and a
 * required setting has no value (setting_* returns EP_ENOENT, which on the orchestrator never
 * happens for a required one). A plugin meant for nodes gives its settings defaults, or its
 * init does without the ones it needs only on the orchestrator; an init that fails there is
 * logged by the agent with the plugin's file and message, and its actions are missing. */
typedef struct ep_plugin_entry {
  uint32_t struct_size;
  uint16_t abi_major;
  uint16_t abi_minor;
  uint32_t build_signature;
  uint32_t field_size;
  const char *id;
  const char *version;
  const char *description;
  const char *const *capabilities;
  const ep_field_decl *settings;
  uint32_t settings_count;
  uint32_t reserved;
  int32_t (*init)(const ep_host *host, ep_ctx *ctx, void **ret_state);
  void (*deinit)(void *state);
  const void *(*get_capability)(void *state, const char *capability_id);
} ep_plugin_entry;

/* Marks the entry as the plugin's one exported symbol (build with -fvisibility=hidden). */
#define EP_PLUGIN_EXPORT __attribute__((visibility("default")))

/* Fills the version fields of an ep_plugin_entry initializer:
 *   EP_PLUGIN_EXPORT const ep_plugin_entry ep_plugin = { EP_PLUGIN_ENTRY_HEADER, .id = ... }; */
#define EP_PLUGIN_ENTRY_HEADER                                                               \
  .struct_size = sizeof(ep_plugin_entry), .abi_major = EP_ABI_MAJOR, .abi_minor = EP_ABI_MINOR, \
  .build_signature = EP_BUILD_SIGNATURE, .field_size = sizeof(ep_field_decl)

/* Number of elements of a static array. */
#define EP_COUNT(array) ((uint32_t)(sizeof(array) / sizeof((array)[0])))

#ifdef __cplusplus
}
#endif
#endif
