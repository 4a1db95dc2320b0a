/* core: the readiness check a front door (HAProxy) and an operator ask, on the embedded
 * HTTPS server:
 *   GET /healthz   200 "ready revision N" when the store answers; 503 "not ready: REASON"
 *                  when it does not (the replica keeps running and recovers by itself)
 * The answer is kept for EP_HEALTH_CACHE_MS, so a client polling fast costs one store read
 * per period, and it names no secret (storage errors name the database without a password). */
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
