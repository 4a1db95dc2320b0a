/* core: housekeeping, the background work that keeps the store bounded by the fleet rather
 * than by its history. Today one job: compacting the change log to the newest
 * storage.change_log_retention revisions, so an endless stream of changes (node reports,
 * onboarding attempts) cannot grow the store for good. */
#ifndef EP_CORE_HOUSEKEEPING_H
#define EP_CORE_HOUSEKEEPING_H

#include <stdint.h>

#include "provisioning/inventory.h"

typedef struct ep_housekeeping ep_housekeeping;

/* Prepares housekeeping on inv (which must outlive it) keeping the newest retention
 * revisions of the change log (>= 1). No thread runs until ep_housekeeping_start. */
int ep_housekeeping_new(ep_housekeeping **out, ep_inventory *inv, uint64_t retention);

/* One pass, on the calling thread: when the change log holds more than retention plus a
 * slack of retention/10 revisions, compacts it down to the newest retention. The slack
 * makes one compaction (one DELETE of many rows) pay for many writes. Returns the number of
 * revisions compacted away (0 when under the threshold) or a negative EP_E* code. Not to be
 * called while the thread runs. */
int64_t ep_housekeeping_pass(ep_housekeeping *hk);

/* Starts the thread, which runs a pass whenever the store passes the threshold. */
int ep_housekeeping_start(ep_housekeeping *hk);

/* Stops and joins the thread (if started) and frees hk. Accepts NULL. */
void ep_housekeeping_free(ep_housekeeping *hk);

#endif
