/* core: housekeeping, see housekeeping.h. */
#define _POSIX_C_SOURCE 200809L /* pthreads */
#include "provisioning/housekeeping.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "base/error.h"
#include "base/log.h"

/* The thread looks at the store at least this often even without a wake-up (writes of
 * other processes are only seen by polling). */
#define HOUSEKEEPING_WAIT_MS 5000
#define HOUSEKEEPING_STANDBY_MS 2000 /* how often a replica that does not lead asks again */
/* Most revisions dropped by one compaction: a store that grew for long before this ran is
 * compacted in steps, so the writer is never held by one huge DELETE. */
#define HOUSEKEEPING_STEP_MAX 50000

struct ep_housekeeping {
  ep_inventory *inv;
  uint64_t retention;
  uint64_t slack;
  /* The change log is known to start after this revision (this process compacted it so
   * far). 0 at start: the first pass over an old store re-asks for compactions the store
   * has done already, which cost nothing. */
  uint64_t floor;
  pthread_t thread;
  bool started;
  atomic_bool stopping;
};

int ep_housekeeping_new(ep_housekeeping **out, ep_inventory *inv, uint64_t retention) {
  if (!inv || retention == 0) return ep_error_set(EP_EINVAL, "housekeeping: retention must be at least 1 revision");
  ep_housekeeping *hk = calloc(1, sizeof *hk);
  if (!hk) return ep_error_set(EP_ENOMEM, "out of memory");
  hk->inv = inv;
  hk->retention = retention;
  hk->slack = retention / 10 ? retention / 10 : 1;
  *out = hk;
  return 0;
}

int64_t ep_housekeeping_pass(ep_housekeeping *hk) {
  uint64_t revision = 0;
  int r = ep_inventory_revision(hk->inv, &revision);
  if (r < 0) return r;
  if (revision <= hk->floor + hk->retention + hk->slack) return 0;
  uint64_t target = revision - hk->retention; /* keep (target, revision] */
  uint64_t start = hk->floor;
  while (hk->floor < target) {
    uint64_t next = target - hk->floor > HOUSEKEEPING_STEP_MAX ? hk->floor + HOUSEKEEPING_STEP_MAX : target;
    if ((r = ep_inventory_compact(hk->inv, next + 1)) < 0) return r;
    hk->floor = next;
    if (atomic_load(&hk->stopping)) break;
  }
  return (int64_t)(hk->floor - start);
}

static void *housekeeping_main(void *arg) {
  ep_housekeeping *hk = arg;
  while (!atomic_load(&hk->stopping)) {
    bool leading = false;
    if (ep_inventory_lead(hk->inv, "housekeeping", &leading) < 0 || !leading) { /* another replica compacts */
      ep_inventory_wait(hk->inv, UINT64_MAX, HOUSEKEEPING_STANDBY_MS);
      continue;
    }
    int64_t n = ep_housekeeping_pass(hk);
    if (n < 0)
      ep_log(EP_LOG_WARN, "housekeeping", "change-log compaction failed (retrying in %d s): %s",
             HOUSEKEEPING_WAIT_MS / 1000, ep_error_message());
    else if (n > 0)
      ep_log(EP_LOG_DEBUG, "housekeeping", "compacted %lld change-log revisions; the log starts after revision %llu",
             (long long)n, (unsigned long long)hk->floor);
    /* Sleep until the store passes the threshold (or a wake-up, or the poll interval); after
     * a failure the threshold is already passed, so wait out the interval instead of
     * retrying in a loop. */
    ep_inventory_wait(hk->inv, n < 0 ? UINT64_MAX : hk->floor + hk->retention + hk->slack, HOUSEKEEPING_WAIT_MS);
  }
  return NULL;
}

int ep_housekeeping_start(ep_housekeeping *hk) {
  if (hk->started) return 0;
  if (pthread_create(&hk->thread, NULL, housekeeping_main, hk) != 0)
    return ep_error_set(EP_ENOMEM, "cannot start the housekeeping thread");
  hk->started = true;
  return 0;
}

void ep_housekeeping_free(ep_housekeeping *hk) {
  if (!hk) return;
  if (hk->started) {
    atomic_store(&hk->stopping, true);
    ep_inventory_wake(hk->inv);
    pthread_join(hk->thread, NULL);
  }
  free(hk);
}
