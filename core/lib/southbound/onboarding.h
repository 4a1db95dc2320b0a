/* core: the southbound onboarding service, wire-compatible with the reference Onboarding
 * Manager (onboardingmgr.v1). A node identifies itself on OnboardNodeStream; the service
 * checks it against the inventory, and once an operator wants it ONBOARDED issues its
 * credentials through the identity plugin. */
#ifndef EP_CORE_ONBOARDING_H
#define EP_CORE_ONBOARDING_H

#include "runtime/config.h"
#include "provisioning/inventory.h"
#include "runtime/plugin_loader.h"
#include "net/node_api.h"
#include "net/rpc.h"


typedef struct ep_onboarding ep_onboarding;

/* Creates the service over inv, plugins and config (all must outlive it). CreateNodes is
 * served only with onboarding.create_nodes, and then needs the operator token of
 * auth.operator_token_file (at least EP_OPERATOR_TOKEN_MIN characters; read here, EP_EINVAL
 * when missing or short). Both methods are rate-limited per peer address. */
int ep_onboarding_new(ep_onboarding **out, ep_inventory *inv, const ep_plugin_set *plugins, const ep_config *config);

/* Registers both services' methods on server (before it starts). */
int ep_onboarding_register(ep_onboarding *onboarding, ep_rpc_server *server);

/* Frees the service (after the server that calls it stopped). Accepts NULL. */
void ep_onboarding_free(ep_onboarding *onboarding);

#endif
