/* core: node actions offered by plugins (edgeprov.actions/1): checking their tables,
 * finding one by name, validating its parameters and running it. */
#ifndef EP_CORE_ACTION_H
#define EP_CORE_ACTION_H

#include <stdatomic.h>
#include <stddef.h>

#include <edgeprov/actions.h>

#include "base/fields.h"
#include "runtime/plugin_ctx.h"

struct ep_plugin;
struct ep_plugin_set;

#define EP_ACTIONS_MAX 256     /* most actions one plugin may offer */
#define EP_ACTION_NAME_MAX 63

/* An action found in an ACTIVE plugin. Valid while that plugin stays active. */
typedef struct ep_action_ref {
  const ep_action *action;
  const struct ep_plugin *plugin;
  uint32_t field_size; /* stride of action->params */
} ep_action_ref;

/* How a run reports and is stopped. All members may be zero. */
typedef struct ep_action_run_opts {
  ep_progress_fn progress;
  void *progress_data;
  const atomic_int *cancel;
  ep_log_line_fn log_line; /* also gets the action's log lines; may be NULL */
  void *log_data;
  const char *target_disk; /* the run.* site values the action may read; NULL/0 when unknown */
  const char *scratch_dir;
  int64_t deadline;        /* Unix seconds */
  const char *tpm;         /* run.tpm: the node's TPM as a TCTI; NULL or "" when it has none */
  ep_store_secret_fn store_secret; /* host->store_secret on a node; NULL elsewhere */
  void *store_secret_data;
  char reboot[16]; /* out: the restart the action asked for ("reboot", "kexec"), "" when none */
} ep_action_run_opts;

/* Checks an edgeprov.actions/1 table returned by plugin: sizes, names ("group.verb"),
 * run functions, parameter declarations, and names unique across the set's active plugins.
 * Returns 0 or EP_EINVAL with a message. Registered as the capability's check. */
int ep_actions_check_table(const void *table, const struct ep_plugin *plugin, const struct ep_plugin_set *set);

/* Finds the action called name among the set's active plugins. Returns 0 and fills *out, or
 * EP_ENOENT with a message (with a suggestion when a name is close). */
int ep_actions_find(const struct ep_plugin_set *set, const char *name, ep_action_ref *out);

/* Calls visit for every action of every active plugin, in init order. */
void ep_actions_each(const struct ep_plugin_set *set, void (*visit)(void *data, const ep_action_ref *ref),
                     void *data);

/* Prepares the parameters of ref, with defaults applied, into *out (free with
 * ep_fields_free). */
int ep_action_params_new(ep_fields *out, const ep_action_ref *ref);

/* Sets parameters from "name=value" texts: unknown names (with a suggestion), bad values
 * and missing required parameters are EP_EINVAL with a message naming the parameter. */
int ep_action_params_parse(ep_fields *params, const ep_action_ref *ref, const char *const *assignments,
                           size_t count);

/* Runs ref with validated params on the calling thread. Returns the action's result; on
 * failure the error API holds "action NAME (plugin ID): message". */
int ep_action_run(const ep_action_ref *ref, const ep_fields *params, ep_action_run_opts *opts);

/* True when name is "group.verb" ([a-z][a-z0-9_]* parts joined by '.'), at most 63 bytes. */
bool ep_action_name_valid(const char *name);

#endif
