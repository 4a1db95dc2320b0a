/* core: what a southbound call made by a node passes before it is served, for every service
 * a node calls. Authentication: the node presents the bearer token it obtained with the
 * client-credentials grant; the active identity plugin checks its signature, issuer, audience
 * and expiry, and says which node it belongs to. Then the node's report budget (limits.*). */
#ifndef EP_CORE_NODE_AUTH_H
#define EP_CORE_NODE_AUTH_H

#include <edgeprov/identity.h>

#include "base/ratelimit.h"
#include "net/node_api.h"
#include "net/rpc.h"
#include "runtime/config.h"

struct ep_plugin_set;

#define EP_NODE_LIMIT_KEYS 4096 /* nodes whose budgets are tracked at once (limits.*) */

/* Checks the call's "authorization: Bearer <token>" metadata. On success copies the node ID
 * (the host UUID) into ret_node_id and returns 0; otherwise returns EP_EPERM with the
 * reason set (the caller answers UNAUTHENTICATED), or EP_EIO when no identity plugin is
 * active. Thread-safe; the token is never logged. */
int ep_node_auth(const struct ep_plugin_set *plugins, const ep_rpc_call *call,
                 char ret_node_id[EP_IDENTITY_NODE_ID_MAX + 1]);

/* Logs (WARN, component) that call was refused for the current error message, at most once a
 * minute per source address, saying how many refusals went unlogged since: callers without
 * a valid token cannot grow the daemon log. Thread-safe. */
void ep_node_auth_log_refusal(const ep_rpc_call *call, const char *component);

/* ep_node_auth for a handler: on a failure, logs the refusal (ep_node_auth_log_refusal) and
 * finishes call, UNAUTHENTICATED for a token refused and UNAVAILABLE when none can be
 * checked, and returns the negative code; the handler then returns. 0: authenticated. */
int ep_node_auth_or_refuse(const struct ep_plugin_set *plugins, ep_rpc_call *call, const char *component,
                           char ret_node_id[EP_IDENTITY_NODE_ID_MAX + 1]);

/* The limits.* nodes are held to: those of plugins->config, the defaults without one. */
ep_config_limits ep_node_limits(const struct ep_plugin_set *plugins);

/* A service's per-node report budget (limits.node_reports_*). Thread-safe. */
typedef struct ep_node_budget {
  ep_ratelimit *reports; /* per node; NULL: no limit */
  ep_ratelimit *warned;  /* one "over its budget" warning per node a minute: ep_ratelimit_take(warned, node) */
  int64_t reports_per_s;
} ep_node_budget;

/* Sets up budget for limits (a zeroed budget is unlimited); ep_node_budget_clear frees it. */
int ep_node_budget_init(ep_node_budget *budget, const ep_config_limits *limits);

/* Charges one report to node_id: 0, or EP_ENOMEM (RESOURCE_EXHAUSTED) with a message saying
 * when the node may report again. */
int ep_node_budget_take(ep_node_budget *budget, const char *node_id);

void ep_node_budget_clear(ep_node_budget *budget);

#endif
