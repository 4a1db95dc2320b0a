/* core: what a node's southbound call passes before it is served, see node_auth.h. */
#define _GNU_SOURCE /* explicit_bzero */
#include "southbound/node_auth.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/error.h"
#include "base/log.h"
#include "runtime/plugin_loader.h"
#include "base/ratelimit.h"
#include "base/validate.h"

static int32_t keep_node(void *data, const ep_identity_claims *claims) {
  char *out = data;
  const char *node = EP_IDENTITY_HAS_CLAIM(claims, node_id) ? claims->node_id : NULL;
  snprintf(out, EP_IDENTITY_NODE_ID_MAX + 1, "%s", node && strlen(node) <= EP_IDENTITY_NODE_ID_MAX ? node : "");
  return 0;
}

int ep_node_auth(const ep_plugin_set *plugins, const ep_rpc_call *call, char ret_node_id[EP_IDENTITY_NODE_ID_MAX + 1]) {
  ep_plugin *provider = NULL;
  const ep_identity *identity = ep_plugins_capability(plugins, EP_CAP_IDENTITY, &provider);
  if (!identity) return ep_error_set(EP_EIO, "no identity plugin is active");
  char *value = malloc(EP_NODE_TOKEN_MAX + 16);
  if (!value) return ep_error_set(EP_ENOMEM, "out of memory");
  int len = ep_rpc_call_metadata(call, "authorization", value, EP_NODE_TOKEN_MAX + 16);
  char node[EP_IDENTITY_NODE_ID_MAX + 1] = "";
  int r = 0;
  if (len < 0)
    r = ep_error_set(EP_EPERM, "a bearer token is required (authorization metadata missing or too long)");
  else if (len < 8 || strncasecmp(value, "Bearer ", 7) != 0)
    r = ep_error_set(EP_EPERM, "authorization must be 'Bearer <token>'");
  else if (identity->verify_token(provider->instance, value + 7, EP_NODE_AUDIENCE, keep_node, node) < 0)
    r = ep_error_prefix(EP_EPERM, "token refused");
  else if (!node[0])
    r = ep_error_set(EP_EPERM, "token refused: it names no node");
  explicit_bzero(value, EP_NODE_TOKEN_MAX + 16);
  free(value);
  if (r == 0) memcpy(ret_node_id, node, sizeof node);
  return r;
}

#define REFUSAL_PEERS_TRACKED 4096

static ep_ratelimit *refusal_log; /* one line a minute per source address */
static _Atomic unsigned long refusals_unlogged;

static void refusal_log_init(void) {
  if (ep_ratelimit_new(&refusal_log, 1.0 / 60, 1, REFUSAL_PEERS_TRACKED) < 0) refusal_log = NULL;
}

void ep_node_auth_log_refusal(const ep_rpc_call *call, const char *component) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, refusal_log_init);
  char peer[EP_IP_TEXT_MAX + 1] = "";
  ep_rpc_call_peer_ip(call, peer, sizeof peer);
  if (refusal_log && !ep_ratelimit_take(refusal_log, peer, NULL)) {
    refusals_unlogged++;
    return;
  }
  unsigned long skipped = refusals_unlogged;
  refusals_unlogged -= skipped;
  ep_log(EP_LOG_WARN, component, "%s from %s refused: %s (%lu refusals unlogged before; one line a minute per address)",
         ep_rpc_call_method(call), peer[0] ? peer : "-", ep_error_message(), skipped);
}

int ep_node_auth_or_refuse(const ep_plugin_set *plugins, ep_rpc_call *call, const char *component,
                           char ret_node_id[EP_IDENTITY_NODE_ID_MAX + 1]) {
  int r = ep_node_auth(plugins, call, ret_node_id);
  if (r == 0) return 0;
  ep_node_auth_log_refusal(call, component);
  ep_rpc_call_finish(call, r == EP_EPERM ? EP_STATUS_UNAUTHENTICATED : EP_STATUS_UNAVAILABLE, ep_error_message(), NULL,
                     0);
  return r;
}

ep_config_limits ep_node_limits(const ep_plugin_set *plugins) {
  if (plugins && plugins->config) return plugins->config->limits;
  return (ep_config_limits){EP_CONFIG_NODE_REPORTS_PER_S, EP_CONFIG_NODE_REPORTS_BURST, EP_CONFIG_NODE_LOG_LINES_PER_S,
                            EP_CONFIG_NODE_LOG_LINES_BURST};
}

int ep_node_budget_init(ep_node_budget *budget, const ep_config_limits *limits) {
  ep_node_budget b = {.reports_per_s = limits->node_reports_per_s};
  int r = b.reports_per_s ? ep_ratelimit_new(&b.reports, (double)b.reports_per_s, (uint32_t)limits->node_reports_burst,
                                             EP_NODE_LIMIT_KEYS)
                          : 0;
  if (r == 0) r = ep_ratelimit_new(&b.warned, 1.0 / 60, 1, EP_NODE_LIMIT_KEYS);
  if (r < 0) {
    ep_node_budget_clear(&b);
    return r;
  }
  *budget = b;
  return 0;
}

int ep_node_budget_take(ep_node_budget *budget, const char *node_id) {
  uint32_t retry_ms = 0;
  if (ep_ratelimit_take(budget->reports, node_id, &retry_ms)) return 0;
  return ep_error_set(EP_ENOMEM, "more than %lld reports a second (limits.node_reports_per_s); retry in %u ms",
                      (long long)budget->reports_per_s, retry_ms);
}

void ep_node_budget_clear(ep_node_budget *budget) {
  ep_ratelimit_free(budget->reports);
  ep_ratelimit_free(budget->warned);
  memset(budget, 0, sizeof *budget);
}
