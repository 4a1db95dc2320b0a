/* core: serves the management API (edgeprov.v1.Management) over the rpc helper: on a UNIX
 * socket (file permissions are the access control) or on TCP with TLS and the operator's
 * bearer token. */
#ifndef EP_CORE_MGMT_SERVER_H
#define EP_CORE_MGMT_SERVER_H

#include "runtime/config.h"
#include "provisioning/inventory.h"

struct ep_plugin_set;

#define EP_OPERATOR_TOKEN_MIN 16   /* shortest operator token accepted */
#define EP_OPERATOR_TOKEN_MAX 4096

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

/* Reads a secret file (a token or a PEM key): it must be a regular file of at most max
 * bytes, not readable by group or others when private is set. Trailing whitespace is
 * dropped. The caller frees (and should clear) *out. */
int ep_read_secret_file(char **out, const char *path, size_t max, bool private_file);

/* Reads the site's TLS certificate chain and private key (tls.cert, tls.key; the key must
 * be private to its owner). The caller frees both and should clear the key. */
int ep_read_tls_files(const ep_config *config, char **ret_cert, char **ret_key);

/* Compares two secrets without an early exit, so timing does not tell how much of a guess
 * was right. */
bool ep_secret_equal(const char *a, const char *b);

#endif
