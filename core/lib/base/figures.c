/* core: edgeprovd's Prometheus figures, see figures.h. */
#include "base/figures.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "base/error.h"

typedef struct figures {
  ep_metric *onboardings, *onboarding_failures;
  ep_metric *workflow_duration, *action_duration, *streamed_bytes;
  ep_metric *artifact_bytes;
  ep_metric *rpc_calls, *rpc_calls_open;
  ep_metric *storage_txn;
} figures;

static ep_metrics *registry;
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t register_lock = PTHREAD_MUTEX_INITIALIZER;
static figures registered;
static _Atomic(const figures *) active; /* &registered once every member is set */

static void make_registry(void) {
  if (ep_metrics_new(&registry) < 0) registry = NULL;
}

ep_metrics *ep_figures_registry(void) {
  pthread_once(&registry_once, make_registry);
  return registry;
}

/* Bucket bounds, in seconds. A workflow streams an OS image: minutes to an hour. An action
 * is a disk erase of a second or an image stream of many minutes. A storage transaction is a
 * SQLite commit (a millisecond) or a PostgreSQL round trip. */
static const double workflow_bounds[] = {10, 30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 7200};
static const double action_bounds[] = {0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600};
static const double storage_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
#define COUNT(a) (sizeof a / sizeof a[0])

int ep_figures_register(void) {
  ep_metrics *r = ep_figures_registry();
  if (!r) return ep_error_set(EP_ENOMEM, "out of memory");
  pthread_mutex_lock(&register_lock);
  int err = 0;
  if (!atomic_load(&active)) {
    figures *f = &registered;
    const char *const result[] = {"result", NULL};
    const char *const rpc[] = {"method", "code", NULL};
    err = ep_metrics_counter(&f->onboardings, r, "edgeprov_onboardings_total",
                             "Nodes onboarded: credentials issued and ONBOARDED answered.", NULL);
    if (!err)
      err = ep_metrics_counter(&f->onboarding_failures, r, "edgeprov_onboarding_failures_total",
                               "Onboardings of registered nodes that were refused or failed.", NULL);
    if (!err)
      err = ep_metrics_histogram(&f->workflow_duration, r, "edgeprov_workflow_duration_seconds",
                                 "Time from a workflow's rendering to its end, by result (SUCCESS, FAILED).", result,
                                 workflow_bounds, COUNT(workflow_bounds));
    if (!err)
      err = ep_metrics_histogram(&f->action_duration, r, "edgeprov_action_duration_seconds",
                                 "Time of a workflow action, its retries included, by result (SUCCESS, FAILED, TIMEOUT).",
                                 result, action_bounds, COUNT(action_bounds));
    if (!err)
      err = ep_metrics_counter(&f->streamed_bytes, r, "edgeprov_workflow_streamed_bytes_total",
                               "Bytes workflow actions reported done (an OS image streamed to disk).", NULL);
    if (!err)
      err = ep_metrics_counter(&f->artifact_bytes, r, "edgeprov_artifact_served_bytes_total",
                               "Bytes of boot artifacts sent by the HTTPS server.", NULL);
    if (!err)
      err = ep_metrics_counter(&f->rpc_calls, r, "edgeprov_rpc_calls_total",
                               "gRPC calls answered, by method and status code.", rpc);
    if (!err)
      err = ep_metrics_gauge(&f->rpc_calls_open, r, "edgeprov_rpc_calls_open",
                             "gRPC calls open now (node streams included) on the southbound and management servers.",
                             NULL);
    if (!err)
      err = ep_metrics_histogram(&f->storage_txn, r, "edgeprov_storage_txn_duration_seconds",
                                 "Time of the inventory's storage transactions (commits).", NULL, storage_bounds,
                                 COUNT(storage_bounds));
    if (!err) atomic_store(&active, f);
  }
  pthread_mutex_unlock(&register_lock);
  return err;
}

static const figures *on(void) { return atomic_load_explicit(&active, memory_order_acquire); }

void ep_figures_onboarding(bool ok) {
  const figures *f = on();
  if (f) ep_metrics_add(ok ? f->onboardings : f->onboarding_failures, NULL, 1);
}

void ep_figures_rpc_call(const char *method, const char *code) {
  const figures *f = on();
  if (f) ep_metrics_add(f->rpc_calls, (const char *const[]){method, code}, 1);
}

void ep_figures_rpc_calls_open(int delta) {
  const figures *f = on();
  if (f) ep_metrics_gauge_add(f->rpc_calls_open, NULL, delta);
}

void ep_figures_artifact_bytes(uint64_t n) {
  const figures *f = on();
  if (f) ep_metrics_add(f->artifact_bytes, NULL, n);
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t ep_figures_clock(void) { return on() ? now_ns() : 0; }

void ep_figures_storage_txn(int64_t started) {
  const figures *f = on();
  if (f && started) ep_metrics_observe(f->storage_txn, NULL, (double)(now_ns() - started) / 1e9);
}

void ep_figures_workflow_end(int64_t created_at, bool failed) {
  const figures *f = on();
  int64_t now = (int64_t)time(NULL);
  if (f && created_at > 0 && now >= created_at)
    ep_metrics_observe(f->workflow_duration, (const char *const[]){failed ? "FAILED" : "SUCCESS"}, (double)(now - created_at));
}

void ep_figures_action_report(ep_figures_action *t, uint32_t index, uint32_t attempts, uint64_t bytes_done,
                              const char *state) {
  const figures *f = on();
  if (!f) return;
  bool same_action = t->seen && t->index == index;
  if (!same_action || t->attempts != attempts) {
    /* An attempt seen first: it started here when it has done nothing yet (the agent's
     * "started" report); else the stream resumed it and what it did was counted before. */
    bool starts = bytes_done == 0 && strcmp(state, "RUNNING") == 0;
    if (!same_action) {
      t->timed = starts;
      t->started_ns = now_ns();
    } else if (!starts) {
      t->timed = false;
    }
    t->seen = true;
    t->index = index;
    t->attempts = attempts;
    t->bytes = bytes_done;
  }
  if (bytes_done > t->bytes) ep_metrics_add(f->streamed_bytes, NULL, bytes_done - t->bytes);
  if (bytes_done > t->bytes) t->bytes = bytes_done;
  bool ends = strcmp(state, "SUCCESS") == 0 || strcmp(state, "FAILED") == 0 || strcmp(state, "TIMEOUT") == 0;
  if (ends && t->timed)
    ep_metrics_observe(f->action_duration, (const char *const[]){state}, (double)(now_ns() - t->started_ns) / 1e9);
  if (ends) t->seen = t->timed = false;
}
