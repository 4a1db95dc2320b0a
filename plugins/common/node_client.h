/* plugins/common: how identity plugins name a node's client. A node ID is the host UUID in
 * text form ([a-z0-9-]{1,63}); its OAuth2 client ID is "edgenode-<node ID>". */
#ifndef EP_PLUGINS_NODE_CLIENT_H
#define EP_PLUGINS_NODE_CLIENT_H

#include <stdbool.h>
#include <string.h>

#include <edgeprov/edgeprov.h>

#define EP_NODE_CLIENT_PREFIX "edgenode-"

static inline bool ep_node_id_valid(const char *id) {
  size_t len = id ? strnlen(id, EP_IDENTITY_NODE_ID_MAX + 1) : 0;
  if (len == 0 || len > EP_IDENTITY_NODE_ID_MAX) return false;
  for (size_t i = 0; i < len; i++)
    if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9') || id[i] == '-')) return false;
  return true;
}

/* The node ID inside a client ID "edgenode-<node>", or NULL when it is not a node's. */
static inline const char *ep_node_of_client(const char *client_id) {
  size_t prefix = sizeof EP_NODE_CLIENT_PREFIX - 1;
  return client_id && strncmp(client_id, EP_NODE_CLIENT_PREFIX, prefix) == 0 && ep_node_id_valid(client_id + prefix)
             ? client_id + prefix
             : NULL;
}

/* Checks node_id for an identity call: 0, or EP_EINVAL after host->set_error. */
static inline int32_t ep_node_id_check(const ep_host *host, ep_ctx *ctx, const char *node_id) {
  if (ep_node_id_valid(node_id)) return 0;
  return ep_failf(host, ctx, EP_EINVAL, "node id '%.64s' is not [a-z0-9-]{1,63}", node_id ? node_id : "(null)");
}

#endif
