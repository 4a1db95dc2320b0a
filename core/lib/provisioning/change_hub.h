/* core: one follower of the inventory's change log, many waiters. Streams that wait for
 * something in the store (a host's workflow, the next events) subscribe here instead of
 * polling it: one thread reads each change once and calls exactly the subscribers it
 * concerns. */
#ifndef EP_CORE_CHANGE_HUB_H
#define EP_CORE_CHANGE_HUB_H

#include <stdint.h>

#include "provisioning/inventory.h"

typedef struct ep_change_hub ep_change_hub;
typedef struct ep_change_sub ep_change_sub;

/* Called on the hub's thread when a change the subscriber asked for was committed. It must not
 * block or call back into the hub (ep_rpc_call_wake is what it is made for). */
typedef void (*ep_change_fn)(void *data);

/* Starts following inv from its current revision (inv must outlive the hub). Returns 0 or a
 * negative code with a message. */
int ep_change_hub_start(ep_change_hub **out, ep_inventory *inv);

/* Stops the thread and frees the hub; every subscription must have been cancelled. Accepts
 * NULL. */
void ep_change_hub_stop(ep_change_hub *hub);

/* Calls fn(data) after each committed change of the host host_uuid (its record, or an
 * instance of it), or after every change when host_uuid is NULL; also after the change log
 * was compacted past the hub, when it cannot tell what changed. Changes committed before the
 * call may or may not be reported: subscribe first, then read the store. Returns 0 with *out
 * set, or EP_ENOMEM. Thread-safe. */
int ep_change_hub_subscribe(ep_change_hub *hub, const char *host_uuid, ep_change_fn fn, void *data, ep_change_sub **out);

/* Cancels sub; once this returns, its fn is not running and will not be called. Accepts NULL.
 * Must not be called from an ep_change_fn. */
void ep_change_hub_unsubscribe(ep_change_hub *hub, ep_change_sub *sub);

#endif
