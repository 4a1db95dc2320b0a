/* core: authentication of southbound calls made by nodes. A node presents the bearer token
 * it obtained with the client-credentials grant; the active identity plugin checks its
 * signature, issuer, audience and expiry, and says which node it belongs to. */
#ifndef EP_CORE_NODE_AUTH_H
#define EP_CORE_NODE_AUTH_H

#include <edgeprov/identity.h>

#include "net/node_api.h"
#include "net/rpc.h"

struct ep_plugin_set;


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

#endif
