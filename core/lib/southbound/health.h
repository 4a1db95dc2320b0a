/* core: the readiness check a front door (HAProxy) and an operator ask, on the embedded
 * HTTPS server:
 *   GET /healthz   200 "ready revision N" when the store answers; 503 "not ready: ..." when
 *                  it does not (the replica keeps running and recovers by itself)
 * The answer is kept for EP_HEALTH_CACHE_MS and one request at a time refreshes it, so a client
 * polling fast costs one store read per period; it is public, so it says nothing of the
 * database: the reason goes to the log (once per change). */
#ifndef EP_CORE_HEALTH_H
#define EP_CORE_HEALTH_H

#include "net/https.h"
#include "provisioning/inventory.h"

#define EP_HEALTH_PATH "/healthz"
#define EP_HEALTH_CACHE_MS 500

typedef struct ep_health ep_health;

/* Routes GET /healthz on server to inv (both must outlive the route's use: free after the
 * server). Returns 0 with *out set, or a negative code. */
int ep_health_route(ep_health **out, ep_https_server *server, ep_inventory *inv);
void ep_health_free(ep_health *health);

#endif
