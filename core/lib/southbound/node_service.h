/* core: the southbound node API (edgeprov.v1.NodeService): calls a node makes after it has
 * onboarded, authenticated with its bearer token and limited to its own host. */
#ifndef EP_CORE_NODE_SERVICE_H
#define EP_CORE_NODE_SERVICE_H

#include "provisioning/inventory.h"
#include "net/node_api.h"
#include "net/rpc.h"

struct ep_plugin_set;

typedef struct ep_node_service ep_node_service;

/* Creates the service over inv and plugins (both must outlive it). Each node's ReportStatus
 * and StoreRecoveryKey calls are held to limits.node_reports_* of plugins->config (defaults
 * without one); a call over budget gets RESOURCE_EXHAUSTED saying when to retry. The site key of
 * secrets.recovery_key_file is read here (an unusable file fails the creation, naming why). */
int ep_node_service_new(ep_node_service **out, ep_inventory *inv, const struct ep_plugin_set *plugins);

/* Registers the service's methods on server (before it starts). */
int ep_node_service_register(ep_node_service *service, ep_rpc_server *server);

/* Frees the service (after the server that calls it stopped). Accepts NULL. */
void ep_node_service_free(ep_node_service *service);

#endif
