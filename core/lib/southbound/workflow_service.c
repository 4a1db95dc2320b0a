/* core: the southbound workflow service, see workflow_service.h. */
#include "southbound/workflow_service.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <edgeprov/storage.h>

#include "base/error.h"
#include "base/redact.h"
#include "provisioning/node_log.h"
#include "base/figures.h"
#include "base/log.h"
#include "southbound/node_auth.h"
#include "runtime/plugin_loader.h"
#include "base/ratelimit.h"
#include "provisioning/change_hub.h"
#include "provisioning/workflow.h"

#define CAS_RETRIES 16
#define DROPPED_NODES_MAX 256 /* nodes whose dropped log lines are counted at once */

typedef struct dropped_lines {
  char node_id[EP_IDENTITY_NODE_ID_MAX + 1]; /* "": a free slot */
  uint64_t count;
} dropped_lines;

struct ep_workflow_service {
  ep_inventory *inv;
  const struct ep_plugin_set *plugins;
  ep_change_hub *hub;      /* wakes the streams waiting for their node's workflow */
  ep_node_budget budget;   /* reports that change no action's state */
  ep_ratelimit *log_lines; /* limits.node_log_lines_*, per node: report log lines the daemon logs */
  ep_ratelimit *writes;    /* per workflow: one progress-only write a second */
  pthread_mutex_t lock; /* guards dropped */
  dropped_lines dropped[DROPPED_NODES_MAX];
};

/* A report that moves its action to another state (PENDING -> RUNNING -> SUCCESS, FAILED,
 * TIMEOUT) or starts one of its allowed attempts: a workflow holds a bounded number of those,
 * so they are never refused for the budget. Anything else (progress, a repeat, a report the
 * workflow refuses) is charged to the node's budget. */
static bool changes_state(const ep_workflow *w, const Edgeprov__V1__ActionReport *report) {
  if (report->index >= w->n_actions) return false;
  const Edgeprov__V1__WorkflowAction *a = w->actions[report->index];
  return report->state != a->state || (report->attempts > a->attempts && report->attempts <= a->retries + 1);
}

/* Progress: the action stays RUNNING in the same attempt (bytes and message change). */
static bool progress_only(const ep_workflow *w, const Edgeprov__V1__ActionReport *report) {
  if (report->index >= w->n_actions) return false;
  const Edgeprov__V1__WorkflowAction *a = w->actions[report->index];
  return a->state == EDGEPROV__V1__ACTION_STATE__ACTION_STATE_RUNNING &&
         report->state == EDGEPROV__V1__ACTION_STATE__ACTION_STATE_RUNNING && report->attempts == a->attempts;
}

/* ep_workflow_record_report with ws's budgets (ws->budget, ws->writes; zero: none). */
static int record_report(ep_workflow_service *ws, const char *node_id, const Edgeprov__V1__ActionReport *report,
                         char action_name[EP_WORKFLOW_ACTION_NAME_MAX + 1]) {
  ep_inventory *inv = ws->inv;
  bool charged = false;
  for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
    ep_inv_host *host = NULL;
    ep_workflow *w = NULL;
    bool skip_write = false;
    int r = ep_inventory_get_host(inv, node_id, &host);
    if (r == 0 && !host->instance_id[0]) r = ep_error_set(EP_EPERM, "host %s has no instance", node_id);
    if (r == 0) r = ep_inventory_get_workflow(inv, host->instance_id, &w);
    if (r == 0 && !charged && !changes_state(w, report)) {
      charged = true; /* once, whatever the compare-and-set retries */
      r = ep_node_budget_take(&ws->budget, node_id);
    }
    /* Progress is stored at most once a second per workflow; the next state change is always. */
    if (r == 0 && progress_only(w, report)) skip_write = !ep_ratelimit_take(ws->writes, w->instance_id, NULL);
    if (r == 0) r = ep_workflow_apply_report(w, report);
    if (r == 0 && action_name) snprintf(action_name, EP_WORKFLOW_ACTION_NAME_MAX + 1, "%s", w->actions[report->index]->action);
    uint64_t expect = w ? w->revision : 0;
    if (r == 0 && !skip_write) r = ep_inventory_put_workflow(inv, w, expect, NULL);
    if (r == 0 && !skip_write) {
      char status[EP_WORKFLOW_STATUS_MAX];
      bool failed = false;
      ep_workflow_status(w, status, &failed);
      bool done = w->state == EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_SUCCESS;
      if (done) snprintf(status + strlen(status), sizeof status - strlen(status), ", rebooting into %s", w->os_profile);
      r = ep_inventory_set_instance_state(
          inv, w->instance_id,
          failed ? EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_ERROR : EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_PROVISIONING,
          status, failed ? EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_ERROR : EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IN_PROGRESS,
          NULL);
      if (r == 0 && done)
        r = ep_inventory_set_host_status(inv, node_id, "Rebooting", EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IN_PROGRESS, NULL);
      if (failed || done) ep_figures_workflow_end(w->created_at, failed);
      if (failed || done) ep_log(failed ? EP_LOG_WARN : EP_LOG_INFO, "workflow", "host %s: %s", node_id, status);
    }
    ep_workflow_free(w);
    ep_inv_host_free(host);
    if (r != EP_ECONFLICT) return r;
  }
  return ep_error_set(EP_ECONFLICT, "the workflow of host %s keeps changing; report again", node_id);
}

int ep_workflow_record_report(ep_inventory *inv, const char *node_id, const Edgeprov__V1__ActionReport *report) {
  ep_workflow_service unlimited = {.inv = inv};
  return record_report(&unlimited, node_id, report, NULL);
}

/* Keeps the report's log lines within the node's budget: in the node's log in the store
 * (node_log.c, redacted there) and in the daemon log; lines over the budget are counted, and
 * once the node may log again one line says how many were dropped. */
static void log_lines(ep_workflow_service *ws, const char *node_id, const Edgeprov__V1__ActionReport *report,
                      const char *action_name) {
  size_t n = report->n_log_lines < EP_WORKFLOW_LOG_LINES_MAX ? report->n_log_lines : EP_WORKFLOW_LOG_LINES_MAX;
  char *kept[EP_WORKFLOW_LOG_LINES_MAX];
  size_t kept_count = 0;
  for (size_t i = 0; i < n; i++) {
    bool allowed = ep_ratelimit_take(ws->log_lines, node_id, NULL);
    uint64_t resumed = 0;
    pthread_mutex_lock(&ws->lock);
    dropped_lines *slot = NULL, *free_slot = NULL, *least = &ws->dropped[0];
    for (size_t k = 0; k < DROPPED_NODES_MAX && !slot; k++) {
      dropped_lines *d = &ws->dropped[k];
      if (!d->node_id[0]) free_slot = free_slot ? free_slot : d;
      else if (strcmp(d->node_id, node_id) == 0) slot = d;
      else if (d->count < least->count) least = d;
    }
    if (allowed && slot) {
      resumed = slot->count;
      slot->node_id[0] = '\0';
    } else if (!allowed) {
      if (!slot) { /* full: the node with the fewest drops loses its count */
        slot = free_slot ? free_slot : least;
        snprintf(slot->node_id, sizeof slot->node_id, "%s", node_id);
        slot->count = 0;
      }
      slot->count++;
    }
    pthread_mutex_unlock(&ws->lock);
    if (resumed)
      ep_log(EP_LOG_WARN, "node", "host %s: %" PRIu64 " log lines dropped (over limits.node_log_lines_per_s)", node_id,
             resumed);
    if (allowed) kept[kept_count++] = report->log_lines[i]; /* validated with the report: printable, bounded */
  }
  const ep_config *config = ws->plugins ? ws->plugins->config : NULL;
  uint64_t max_bytes = config ? (uint64_t)config->log_max_bytes_per_host : EP_CONFIG_LOG_MAX_BYTES_DEFAULT;
  if (kept_count && ep_node_log_append(ws->inv, node_id, report->generation, report->index, action_name, kept, kept_count,
                                       max_bytes, NULL) < 0)
    ep_log(EP_LOG_WARN, "node", "host %s: %zu log lines not kept: %s", node_id, kept_count, ep_error_message());
  for (size_t i = 0; i < kept_count; i++) {
    char *shown = ep_redact_text(kept[i], NULL); /* the daemon log gets what the store got */
    ep_log(EP_LOG_INFO, "node", "host %s action %u: %s", node_id, report->index, shown ? shown : EP_REDACTED);
    free(shown);
  }
}

/* Sends the node its workflow when it has one that has not failed (an operator re-arms a
 * failed one). Returns 1 when sent, 0 when there is none yet, or a negative code. */
static int push_workflow(ep_workflow_service *ws, ep_rpc_call *call, const char *node_id) {
  ep_inv_host *host = NULL;
  ep_workflow *w = NULL;
  int r = ep_inventory_get_host(ws->inv, node_id, &host);
  if (r == 0 && host->instance_id[0]) {
    r = ep_inventory_get_workflow(ws->inv, host->instance_id, &w);
    if (r == EP_ENOENT) r = 0;
  }
  ep_inv_host_free(host);
  if (r < 0) return r;
  if (!w) return 0;
  if (w->state == EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_FAILED) {
    ep_workflow_free(w);
    return 0;
  }
  Edgeprov__V1__WorkflowStreamResponse resp = EDGEPROV__V1__WORKFLOW_STREAM_RESPONSE__INIT;
  resp.workflow = w;
  size_t len = edgeprov__v1__workflow_stream_response__get_packed_size(&resp);
  uint8_t *data = malloc(len ? len : 1);
  if (data) edgeprov__v1__workflow_stream_response__pack(&resp, data);
  r = data ? ep_rpc_call_send(call, data, len) : ep_error_set(EP_ENOMEM, "out of memory");
  free(data);
  ep_workflow_free(w);
  return r < 0 ? ep_error_prefix(r, "the node went away") : 1;
}

static void finish_with(ep_rpc_call *call, int r) {
  ep_rpc_call_finish(call, r == 0 ? EP_STATUS_OK : r == EP_EPERM ? EP_STATUS_PERMISSION_DENIED : ep_status_from_error(r),
                     r == 0 ? "" : ep_error_message(), NULL, 0);
}

/* One node's Run stream, event-driven: while it waits for its workflow it holds no thread,
 * only a subscription to its host's changes. */
typedef struct run_stream {
  ep_workflow_service *ws;
  ep_rpc_call *call;
  char node_id[EP_IDENTITY_NODE_ID_MAX + 1];
  bool hello;           /* the stream's first message came */
  bool pushed;          /* the workflow was sent */
  ep_change_sub *waiting; /* subscribed to the host's changes until pushed; holds a reference */
  ep_figures_action action; /* what this stream saw of the running action (metrics) */
} run_stream;

static void wake_stream(void *data) { ep_rpc_call_wake(((run_stream *)data)->call); }

static void stop_waiting(run_stream *st) {
  if (!st->waiting) return;
  ep_change_hub_unsubscribe(st->ws->hub, st->waiting);
  st->waiting = NULL;
  ep_rpc_call_unref(st->call);
}

/* Sends the workflow if it is there; ends the call on an error. */
static void try_push(run_stream *st) {
  int r = push_workflow(st->ws, st->call, st->node_id);
  if (r == 1) {
    st->pushed = true;
    stop_waiting(st);
  } else if (r < 0) {
    finish_with(st->call, r);
  }
}

static void *run_open(void *data, ep_rpc_call *call) {
  ep_workflow_service *ws = data;
  run_stream *st = calloc(1, sizeof *st);
  if (!st) {
    ep_rpc_call_finish(call, EP_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
    return NULL;
  }
  st->ws = ws;
  st->call = call;
  if (ep_node_auth_or_refuse(ws->plugins, call, "workflow", st->node_id) < 0) st->node_id[0] = '\0';
  return st;
}

static void run_message(void *state, ep_rpc_call *call, const uint8_t *bytes, size_t len) {
  run_stream *st = state;
  if (!st || !st->node_id[0]) return; /* refused in open */
  ep_workflow_service *ws = st->ws;
  int r = 0;
  Edgeprov__V1__WorkflowStreamRequest *req = edgeprov__v1__workflow_stream_request__unpack(NULL, len, bytes);
  if (!req) {
    r = ep_error_set(EP_EINVAL, "request is not a valid WorkflowStreamRequest");
  } else if (req->kind_case == EDGEPROV__V1__WORKFLOW_STREAM_REQUEST__KIND_HELLO && !st->hello) {
    st->hello = true;
    /* The node has its credentials: a lost onboarding answer can no longer be made good. */
    r = ep_inventory_credentials_used(ws->inv, st->node_id);
    /* Subscribe first, then look: a workflow stored in between wakes the stream. */
    if (r == 0) {
      ep_rpc_call_ref(call);
      r = ep_change_hub_subscribe(ws->hub, st->node_id, wake_stream, st, &st->waiting);
      if (r < 0) ep_rpc_call_unref(call);
    }
    if (r == 0) try_push(st);
  } else if (req->kind_case == EDGEPROV__V1__WORKFLOW_STREAM_REQUEST__KIND_REPORT && st->hello) {
    char action_name[EP_WORKFLOW_ACTION_NAME_MAX + 1] = "";
    r = record_report(ws, st->node_id, req->report, action_name);
    if (r == 0) log_lines(ws, st->node_id, req->report, action_name);
    if (r == 0) ep_figures_action_report(&st->action, req->report->index, req->report->attempts,
                                         req->report->bytes_done, ep_action_state_name(req->report->state));
    /* A refusal ends the stream, so a node reconnecting to repeat a refused report is held
     * to one warning a minute. */
    if (r < 0 && ep_ratelimit_take(ws->budget.warned, st->node_id, NULL))
      ep_log(EP_LOG_WARN, "workflow", "host %s: report refused: %s (further refusals for a minute are not logged)",
             st->node_id, ep_error_message());
  } else {
    r = ep_error_set(EP_EINVAL, "a stream starts with one hello, then carries reports");
  }
  if (req) edgeprov__v1__workflow_stream_request__free_unpacked(req, NULL);
  if (r < 0) finish_with(call, r);
}

static void run_wake(void *state, ep_rpc_call *call) {
  run_stream *st = state;
  if (st && ep_rpc_call_cancelled(call))
    finish_with(call, 0); /* the server is stopping: the agent reconnects */
  else if (st && st->hello && !st->pushed)
    try_push(st);
}

static void run_half_close(void *state, ep_rpc_call *call) {
  (void)state;
  finish_with(call, 0);
}

static void run_close(void *state, ep_rpc_call *call) {
  (void)call;
  run_stream *st = state;
  if (!st) return;
  stop_waiting(st);
  free(st);
}

static const ep_rpc_stream_ops run_ops = {
    .open = run_open, .message = run_message, .half_close = run_half_close, .wake = run_wake, .close = run_close};

int ep_workflow_service_new(ep_workflow_service **out, ep_inventory *inv, const struct ep_plugin_set *plugins) {
  ep_workflow_service *ws = calloc(1, sizeof *ws);
  if (!ws) return ep_error_set(EP_ENOMEM, "out of memory");
  ws->inv = inv;
  ws->plugins = plugins;
  pthread_mutex_init(&ws->lock, NULL);
  ep_config_limits limits = ep_node_limits(plugins);
  int r = ep_node_budget_init(&ws->budget, &limits);
  if (r == 0 && limits.node_log_lines_per_s)
    r = ep_ratelimit_new(&ws->log_lines, (double)limits.node_log_lines_per_s, (uint32_t)limits.node_log_lines_burst,
                         EP_NODE_LIMIT_KEYS);
  if (r == 0) r = ep_ratelimit_new(&ws->writes, 1.0, 1, EP_NODE_LIMIT_KEYS);
  if (r == 0) r = ep_change_hub_start(&ws->hub, inv);
  if (r < 0) {
    ep_workflow_service_free(ws);
    return r;
  }
  *out = ws;
  return 0;
}

int ep_workflow_service_register(ep_workflow_service *ws, ep_rpc_server *server) {
  ep_rpc_method method = {.path = EP_WORKFLOW_SERVICE_RUN, .kind = EP_RPC_BIDI_STREAMING, .data = ws, .stream = &run_ops};
  return ep_rpc_server_add_method(server, &method);
}

void ep_workflow_service_free(ep_workflow_service *ws) {
  if (!ws) return;
  ep_change_hub_stop(ws->hub);
  ep_node_budget_clear(&ws->budget);
  ep_ratelimit_free(ws->log_lines);
  ep_ratelimit_free(ws->writes);
  pthread_mutex_destroy(&ws->lock);
  free(ws);
}
