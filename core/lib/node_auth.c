/* core: authentication of southbound calls, see node_auth.h. */
#define _GNU_SOURCE /* explicit_bzero */
#include "node_auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "plugin.h"

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
