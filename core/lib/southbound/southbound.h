/* core: the southbound gRPC server on listen.grpc, where nodes call in: the onboarding
 * services (onboardingmgr.v1, no token: the node has no credentials yet), the node API
 * (edgeprov.v1.NodeService) and the workflow stream (edgeprov.v1.WorkflowService), the last
 * two with the node's bearer token. TLS with tls.cert and tls.key; without them only
 * on a loopback address. */
#ifndef EP_CORE_SOUTHBOUND_H
#define EP_CORE_SOUTHBOUND_H

#include "runtime/config.h"
#include "provisioning/inventory.h"
#include "runtime/plugin_loader.h"

#define EP_SOUTHBOUND_MESSAGE_MAX (64 * 1024) /* nodes send short messages */

typedef struct ep_southbound ep_southbound;

/* Starts serving; inv, plugins and config must outlive the server. */
int ep_southbound_start(ep_southbound **out, ep_inventory *inv, const ep_plugin_set *plugins, const ep_config *config);

/* The port bound (for an address with port 0). */
int ep_southbound_port(const ep_southbound *southbound);

/* Stops: open streams end, running calls get grace_ms. Accepts NULL. */
void ep_southbound_stop(ep_southbound *southbound, int grace_ms);

#endif
