/* core: the southbound onboarding service, wire-compatible with the reference Onboarding
 * Manager (onboardingmgr.v1). A node identifies itself on OnboardNodeStream; the service
 * checks it against the inventory, and once an operator wants it ONBOARDED issues its
 * credentials through the identity plugin. */
#ifndef EP_CORE_ONBOARDING_H
#define EP_CORE_ONBOARDING_H

#include "config.h"
#include "inventory.h"
#include "plugin.h"

#define EP_ONBOARDING_SERVICE_STREAM "/onboardingmgr.v1.NonInteractiveOnboardingService/OnboardNodeStream"
#define EP_ONBOARDING_SERVICE_CREATE "/onboardingmgr.v1.InteractiveOnboardingService/CreateNodes"

typedef struct ep_onboarding ep_onboarding;

/* Serves onboarding on config->listen_grpc: with TLS when tls.cert and tls.key are set;
 * without, only on a loopback address (a warning is logged). CreateNodes needs the operator
 * token of auth.operator_token_file. inv and plugins must outlive the service. */
int ep_onboarding_start(ep_onboarding **out, ep_inventory *inv, const ep_plugin_set *plugins, const ep_config *config);

/* The port the service listens on (for an address with port 0). */
int ep_onboarding_port(const ep_onboarding *onboarding);

/* Stops: open streams end, running calls get grace_ms. Accepts NULL. */
void ep_onboarding_stop(ep_onboarding *onboarding, int grace_ms);

#endif
