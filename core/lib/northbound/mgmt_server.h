/* core: serves the management API (edgeprov.v1.Management) over the rpc helper: on a UNIX
 * socket (file permissions are the access control) or on TCP with TLS and the operator's
 * bearer token. */
#ifndef EP_CORE_MGMT_SERVER_H
#define EP_CORE_MGMT_SERVER_H

#include "runtime/config.h"
#include "provisioning/inventory.h"

struct ep_plugin_set;

typedef struct ep_mgmt_server ep_mgmt_server;

/* Starts serving inv at config->listen_management. For a UNIX socket, its directory is
 * created (0750) and the socket is 0660. For TCP, TLS uses config->tls_* and every call
 * must carry "authorization: Bearer <token>" with the token of auth.operator_token_file.
 * plugins (the identity plugin) must outlive the server. Returns 0 or a negative code with a
 * message. */
int ep_mgmt_server_start(ep_mgmt_server **out, ep_inventory *inv, const struct ep_plugin_set *plugins,
                         const ep_config *config);

/* Stops: open event streams end, running calls get grace_ms. Accepts NULL. */
void ep_mgmt_server_stop(ep_mgmt_server *server, int grace_ms);

#endif
