/* core: the plugin loader. Scans plugin directories, checks each shared object against the
 * ABI, applies the site config, initialises plugins in order and deinitialises them in
 * reverse, and answers capability lookups. */
#ifndef EP_CORE_PLUGIN_LOADER_H
#define EP_CORE_PLUGIN_LOADER_H

#include <stdbool.h>
#include <stddef.h>

#include <edgeprov/plugin.h>

#include "runtime/config.h"
#include "base/diag.h"
#include "base/fields.h"
#include "runtime/plugin_ctx.h"

#define EP_PLUGINS_MAX 256      /* most shared objects considered in one scan */
#define EP_PLUGIN_CAPS_MAX 32   /* most capabilities one plugin may declare */

/* Size of ep_plugin_entry in ABI 1.0, the smallest entry accepted. */
#define EP_PLUGIN_ENTRY_SIZE_1_0 ((uint32_t)sizeof(ep_plugin_entry))

typedef enum {
  EP_PLUGIN_REFUSED,  /* failed a loader check or its settings; reason says why */
  EP_PLUGIN_DISABLED, /* valid, but not enabled by the site config */
  EP_PLUGIN_READY,    /* checked and configured, not initialised */
  EP_PLUGIN_FAILED,   /* init failed; reason holds the plugin's message */
  EP_PLUGIN_ACTIVE,   /* initialised; capabilities registered */
} ep_plugin_state;

typedef struct ep_plugin {
  char *path;
  void *handle;                 /* dlopen handle, NULL when it could not be opened */
  const ep_plugin_entry *entry; /* NULL until the entry passed the ABI checks */
  char claimed_id[64];          /* the ID its entry names once readable, else its file name without
                                 * ".so": what a site's config would call it (messages only) */
  ep_plugin_state state;
  char *reason;                 /* why refused or failed, NULL otherwise */
  bool required;
  ep_fields settings;           /* declared settings with the site's values */
  ep_ctx ctx;                   /* the plugin's host context */
  void *instance;               /* what init returned */
} ep_plugin;

struct ep_plugin_set;

/* A check the loader runs on the table an initialised plugin returns for capability_id (the
 * caller hands the loader these, so the loader knows no capability's rules). Returns 0, or a
 * negative code with a message in the error API, which refuses the plugin. */
typedef struct ep_capability_check {
  const char *capability_id;
  int (*check)(const void *table, const struct ep_plugin *plugin, const struct ep_plugin_set *set);
} ep_capability_check;

#define EP_CAPABILITY_CHECKS_MAX 8

typedef struct ep_plugin_set {
  ep_plugin **items;    /* in scan order: directories in order, files sorted by name */
  size_t count;
  ep_plugin **started;  /* ACTIVE plugins in init order */
  size_t started_count;
  ep_strv notes;        /* scan problems not tied to a file ("directory not found") */
  const ep_config *config; /* the site config of the last start, for host site values */
  ep_capability_check checks[EP_CAPABILITY_CHECKS_MAX]; /* run on tables after init */
  size_t check_count;
} ep_plugin_set;

/* Scans every directory in dirs for *.so files and checks each (dlopen with
 * RTLD_NOW|RTLD_LOCAL, entry symbol, ABI major and minor, build signature, plugin ID, duplicate
 * ID, capability IDs, setting declarations). Refused files stay in the set with a reason.
 * checks (check_count of them, at most EP_CAPABILITY_CHECKS_MAX; NULL when 0) are run on each
 * capability table when plugins start. Returns 0 with *out set, EP_EINVAL or EP_ENOMEM. */
int ep_plugins_scan(ep_plugin_set **out, const ep_strv *dirs, const ep_capability_check *checks, size_t check_count);

/* Applies the site config: marks plugins enabled or disabled, validates each enabled
 * plugin's section (errors go to diags with file:line), reports unknown sections and
 * required plugins that are missing or refused. Returns 0, or EP_EINVAL when diags got an
 * error that must stop startup (a config error, or a required plugin unusable). */
int ep_plugins_configure(ep_plugin_set *set, const ep_config *config, ep_diags *diags);

/* Initialises READY plugins in order (the config's plugins.enabled order, else scan order)
 * and registers their capabilities. An optional plugin whose init fails becomes FAILED and
 * is skipped; a required one stops everything already started and returns EP_EFAILED with
 * the reason in the error API. */
int ep_plugins_start(ep_plugin_set *set, const ep_config *config);

/* Deinitialises ACTIVE plugins in reverse init order. Safe to call twice. */
void ep_plugins_stop(ep_plugin_set *set);

/* Stops, unloads and frees. Accepts NULL. */
void ep_plugin_set_free(ep_plugin_set *set);

/* The plugin with this ID that passed the loader checks (any state but REFUSED without an
 * entry), or NULL. */
ep_plugin *ep_plugins_find(const ep_plugin_set *set, const char *id);

/* The table of the first ACTIVE plugin (in init order) providing capability_id, or NULL.
 * Sets *ret_plugin when non-NULL. */
const void *ep_plugins_capability(const ep_plugin_set *set, const char *capability_id, ep_plugin **ret_plugin);

/* "refused", "disabled", "ready", "failed" or "active". */
const char *ep_plugin_state_name(ep_plugin_state state);

/* True when id is well formed ("<namespace>.<name>/<revision>"); known_out tells whether
 * the host knows it (always true outside the edgeprov namespace). */
bool ep_capability_id_valid(const char *id, bool *known_out);

#endif
