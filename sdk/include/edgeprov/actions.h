/* edgeprov SDK: capability edgeprov.actions/1, named node-side actions run by the agent.
 * The agent loads a plugin with its declared setting defaults only (no site config on a node;
 * see plugin.h): an action takes what varies per site or node from its parameters. */
#ifndef EDGEPROV_ACTIONS_H
#define EDGEPROV_ACTIONS_H

#include "abi.h"
#include "host.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One action.
 * name: "<group>.<verb>" ([a-z][a-z0-9_]* parts joined by '.'), unique across plugins.
 * params/params_count: declared parameters (stride field_size); the host validates a
 *   workflow's parameters against them before run is called.
 * run: performs the action. Reads parameters with host->param_*, reports with
 *   host->progress and host->log, polls host->cancelled in long loops. Returns 0 on success
 *   or a negative code after host->set_error. Called on a worker thread; one run at a time
 *   per ctx, several runs of one plugin may overlap. */
typedef struct ep_action {
  uint32_t struct_size;
  uint32_t params_count;
  const char *name;
  const char *description;
  const ep_field_decl *params;
  int32_t (*run)(void *plugin_state, ep_ctx *ctx);
} ep_action;

/* The table get_capability returns for EP_CAP_ACTIONS. action_size is sizeof(ep_action)
 * as the plugin was built (the stride of actions); field_size that of ep_field_decl. */
typedef struct ep_actions {
  uint32_t struct_size;
  uint32_t actions_count;
  uint32_t action_size;
  uint32_t field_size;
  const ep_action *actions;
} ep_actions;

#define EP_ACTIONS_HEADER \
  .struct_size = sizeof(ep_actions), .action_size = sizeof(ep_action), .field_size = sizeof(ep_field_decl)

#ifdef __cplusplus
}
#endif
#endif
