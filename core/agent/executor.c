/* edgeprov-agent: the workflow executor, see executor.h. */
#define _GNU_SOURCE /* explicit_bzero */
#include "executor.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/action.h"
#include "runtime/site.h"
#include "edgeprov/v1/node.pb-c.h"
#include "edgeprov/v1/workflow.pb-c.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "base/validate.h"
#include "provisioning/workflow.h"
#include "net/node_api.h"
#include "net/status.h"

typedef Edgeprov__V1__WorkflowAction wf_action;

/* What the orchestrator takes in a report's message and log lines besides printable text
 * (workflow.c checks both with ep_validate_text: no tab, no newline). Whatever an action
 * prints is escaped to that (ep_text_escape), so no report is refused for it: a refused
 * report ends the workflow stream. */
#define REPORT_TEXT_FLAGS 0u

typedef struct run {
  ep_rpc_stream *stream;
  ep_rpc_channel *channel; /* the workflow stream's: secrets go to the orchestrator on it */
  const char *token;       /* the node's bearer token */
  const ep_workflow *workflow;
  uint32_t index;
  uint32_t attempts;
  struct timespec last_report;
  uint64_t bytes_done, bytes_total;
  int send_error;
  char *lines[EP_WORKFLOW_LOG_LINES_MAX]; /* the action's log lines not reported yet */
  size_t line_count;
} run;

/* Keeps an action's log line for the next report (the oldest are dropped past the limit). */
static void keep_line(void *data, int32_t level, const char *message) {
  (void)level;
  run *rn = data;
  char text[EP_WORKFLOW_MESSAGE_MAX + 1];
  if (!ep_text_escape(text, sizeof text, message, REPORT_TEXT_FLAGS)) return;
  if (rn->line_count == EP_WORKFLOW_LOG_LINES_MAX) {
    free(rn->lines[0]);
    memmove(rn->lines, rn->lines + 1, (EP_WORKFLOW_LOG_LINES_MAX - 1) * sizeof *rn->lines);
    rn->line_count--;
  }
  char *copy = strdup(text);
  if (copy) rn->lines[rn->line_count++] = copy;
}

static double since_ms(const struct timespec *t) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)(now.tv_sec - t->tv_sec) * 1e3 + (double)(now.tv_nsec - t->tv_nsec) / 1e6;
}

/* Text the orchestrator accepts, bounded, for a report (error messages may hold anything). */
static void report_text(const char *in, char out[EP_WORKFLOW_MESSAGE_MAX + 1]) {
  ep_text_escape(out, EP_WORKFLOW_MESSAGE_MAX + 1, in, REPORT_TEXT_FLAGS);
}

static int send_report(run *rn, Edgeprov__V1__ActionState state, const char *message) {
  char text[EP_WORKFLOW_MESSAGE_MAX + 1];
  report_text(message, text);
  Edgeprov__V1__ActionReport report = EDGEPROV__V1__ACTION_REPORT__INIT;
  report.instance_id = rn->workflow->instance_id;
  report.generation = rn->workflow->generation;
  report.index = rn->index;
  report.state = state;
  report.attempts = rn->attempts;
  report.bytes_done = rn->bytes_done;
  report.bytes_total = rn->bytes_total;
  report.message = text;
  report.log_lines = rn->lines;
  report.n_log_lines = rn->line_count;
  Edgeprov__V1__WorkflowStreamRequest req = EDGEPROV__V1__WORKFLOW_STREAM_REQUEST__INIT;
  req.kind_case = EDGEPROV__V1__WORKFLOW_STREAM_REQUEST__KIND_REPORT;
  req.report = &report;
  size_t len = edgeprov__v1__workflow_stream_request__get_packed_size(&req);
  uint8_t *data = malloc(len ? len : 1);
  if (!data) return EP_ENOMEM;
  edgeprov__v1__workflow_stream_request__pack(&req, data);
  int r = ep_rpc_stream_send(rn->stream, data, len);
  free(data);
  for (size_t i = 0; i < rn->line_count; i++) free(rn->lines[i]);
  rn->line_count = 0;
  clock_gettime(CLOCK_MONOTONIC, &rn->last_report);
  if (r < 0) rn->send_error = r;
  return r;
}

static void on_progress(void *data, uint64_t done, uint64_t total, const char *message) {
  run *rn = data;
  rn->bytes_done = done;
  rn->bytes_total = total;
  if (since_ms(&rn->last_report) >= EP_EXECUTOR_REPORT_INTERVAL_MS && !rn->send_error)
    send_report(rn, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_RUNNING, message ? message : "");
}

/* host->store_secret on the node: NodeService/StoreRecoveryKey with the node's token, so the
 * orchestrator keeps the key for this node's own host. The key is wiped from the request buffer
 * and never logged; a failure names the call and the orchestrator's answer. */
static int32_t store_secret(void *data, const char *kind, const char *value) {
  const run *rn = data;
  if (strcmp(kind, "recovery_key") != 0) return ep_error_set(EP_EINVAL, "store_secret: kind must be 'recovery_key'");
  char bearer[EP_NODE_TOKEN_MAX + 16];
  snprintf(bearer, sizeof bearer, "Bearer %s", rn->token);
  ep_rpc_metadata auth = {"authorization", bearer};
  Edgeprov__V1__StoreRecoveryKeyRequest req = EDGEPROV__V1__STORE_RECOVERY_KEY_REQUEST__INIT;
  req.recovery_key = (char *)value;
  size_t len = edgeprov__v1__store_recovery_key_request__get_packed_size(&req);
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf) {
    explicit_bzero(bearer, sizeof bearer);
    return ep_error_set(EP_ENOMEM, "out of memory");
  }
  edgeprov__v1__store_recovery_key_request__pack(&req, buf);
  ep_rpc_result result;
  int r = ep_rpc_unary(rn->channel, EP_NODE_SERVICE_STORE_RECOVERY_KEY, &auth, 1, buf, len, 15000, &result);
  explicit_bzero(buf, len);
  free(buf);
  explicit_bzero(bearer, sizeof bearer);
  if (r < 0) return ep_error_prefix(EP_EIO, "the recovery key did not reach the orchestrator: StoreRecoveryKey");
  if (result.status != EP_STATUS_OK)
    r = ep_error_set(ep_error_from_status(result.status),
                     "the recovery key did not reach the orchestrator: StoreRecoveryKey: %s: %s", ep_status_name(result.status),
                     result.message);
  ep_rpc_result_clear(&result);
  if (r == 0) ep_log(EP_LOG_INFO, "agent", "the disk's recovery key is stored with the orchestrator");
  return r;
}

/* Cancels a run when its deadline passes. */
typedef struct watchdog {
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t done_cond;
  bool done;
  atomic_int cancel;
  bool fired;
  unsigned timeout_s;
} watchdog;

static void *watchdog_main(void *arg) {
  watchdog *w = arg;
  struct timespec deadline = ep_clock_deadline(CLOCK_REALTIME, (int64_t)w->timeout_s * 1000);
  pthread_mutex_lock(&w->lock);
  while (!w->done)
    if (pthread_cond_timedwait(&w->done_cond, &w->lock, &deadline) != 0 && !w->done) {
      w->fired = true;
      atomic_store(&w->cancel, 1);
      break;
    }
  pthread_mutex_unlock(&w->lock);
  return NULL;
}

/* The ${node.*} variables: core/lib/provisioning/workflow.c's node_variables lists the same names. */
static const char *lookup_node(void *data, const char *name) {
  const ep_executor_node *node = data;
  if (!strcmp(name, "node.client_id")) return node->client_id;
  if (!strcmp(name, "node.client_secret")) return node->client_secret;
  if (!strcmp(name, "node.target_disk")) return node->target_disk;
  if (!strcmp(name, "node.ca_file")) return node->ca_file;
  if (!strcmp(name, "node.efivars_dir")) return node->efivars_dir;
  return NULL;
}

/* The action's parameters with ${node.*} filled in, as "name=value" texts (freed with
 * free_assignments: they may hold the node's secret). */
static int build_assignments(const wf_action *a, const ep_executor_node *node, char ***ret) {
  char **list = calloc(a->n_params + 1, sizeof *list);
  if (!list) return ep_error_set(EP_ENOMEM, "out of memory");
  for (size_t i = 0; i < a->n_params; i++) {
    char *value = ep_template_substitute(a->params[i]->value, lookup_node, (void *)node, NULL, EP_WORKFLOW_PARAM_MAX);
    size_t len = value ? strlen(a->params[i]->name) + strlen(value) + 2 : 0;
    if (value && (list[i] = malloc(len))) snprintf(list[i], len, "%s=%s", a->params[i]->name, value);
    if (value) explicit_bzero(value, strlen(value));
    free(value);
    if (!list[i]) {
      for (size_t k = 0; k < i; k++) free(list[k]);
      free(list);
      return ep_error_prefix(EP_EINVAL, "%s parameter %s", a->action, a->params[i]->name);
    }
  }
  *ret = list;
  return 0;
}

static void free_assignments(char **list) {
  for (size_t i = 0; list && list[i]; i++) {
    explicit_bzero(list[i], strlen(list[i]));
    free(list[i]);
  }
  free(list);
}

/* An action the node lacks may be one of a plugin that could not start here (no site config
 * on a node, see plugin.h): adds to the message which plugins did not start and why. */
static int explain_missing_action(const ep_plugin_set *plugins, int r) {
  char why[EP_ERROR_MESSAGE_MAX] = "", line[EP_ERROR_MESSAGE_MAX];
  size_t used = 0;
  for (size_t i = 0; i < plugins->count && used < sizeof why; i++)
    if (ep_site_plugin_problem(plugins->items[i], line, sizeof line))
      used += (size_t)snprintf(why + used, sizeof why - used, "%s%s", used ? "; " : "", line);
  if (!used) return r;
  char missing[EP_ERROR_MESSAGE_MAX];
  snprintf(missing, sizeof missing, "%s", ep_error_message());
  return ep_error_set(r, "%s; not usable on this node: %s", missing, why);
}

/* One attempt of action a: 0, EP_ETIMEDOUT, or the action's error (message set). */
static int attempt_action(run *rn, const wf_action *a, const ep_plugin_set *plugins, const ep_executor_node *node,
                          char reboot[16]) {
  ep_action_ref ref;
  ep_fields params = {0};
  char **assignments = NULL;
  int r = ep_actions_find(plugins, a->action, &ref);
  if (r == EP_ENOENT) r = explain_missing_action(plugins, r);
  if (r == 0) r = ep_action_params_new(&params, &ref);
  if (r == 0) r = build_assignments(a, node, &assignments);
  if (r == 0) r = ep_action_params_parse(&params, &ref, (const char *const *)assignments, a->n_params);
  free_assignments(assignments);
  if (r < 0) {
    ep_fields_free(&params);
    return r;
  }
  watchdog w = {.timeout_s = a->timeout_s ? a->timeout_s : 3600};
  pthread_mutex_init(&w.lock, NULL);
  pthread_cond_init(&w.done_cond, NULL);
  bool watching = pthread_create(&w.thread, NULL, watchdog_main, &w) == 0;
  ep_action_run_opts opts = {.progress = on_progress, .progress_data = rn, .cancel = &w.cancel,
                             .log_line = keep_line, .log_data = rn,
                             .target_disk = node->target_disk, .scratch_dir = node->scratch_dir,
                             .deadline = (int64_t)time(NULL) + w.timeout_s, .tpm = node->tpm,
                             .store_secret = store_secret, .store_secret_data = rn};
  r = ep_action_run(&ref, &params, &opts);
  pthread_mutex_lock(&w.lock);
  w.done = true;
  pthread_cond_signal(&w.done_cond);
  pthread_mutex_unlock(&w.lock);
  if (watching) pthread_join(w.thread, NULL);
  pthread_mutex_destroy(&w.lock);
  pthread_cond_destroy(&w.done_cond);
  ep_fields_free(&params);
  if (r < 0 && w.fired) r = ep_error_set(EP_ETIMEDOUT, "%s: no result within %u s", a->action, w.timeout_s);
  if (r == 0) snprintf(reboot, 16, "%s", opts.reboot);
  return r;
}

/* Runs action index of workflow with its retries; reports each state. */
static int run_action(run *rn, const wf_action *a, const ep_plugin_set *plugins, const ep_executor_node *node,
                      char reboot[16]) {
  rn->attempts = a->attempts;
  rn->bytes_done = rn->bytes_total = 0;
  for (;;) {
    rn->attempts++;
    /* The node's log (edgeprov logs) gets a line as each attempt starts and ends, whatever the
     * action itself logs. */
    char line[EP_WORKFLOW_MESSAGE_MAX + 1];
    snprintf(line, sizeof line, "action %u/%zu %s: attempt %u of %u", rn->index + 1, rn->workflow->n_actions, a->action,
             rn->attempts, a->retries + 1);
    ep_log(EP_LOG_INFO, "agent", "%s", line);
    keep_line(rn, EP_LOG_INFO, line);
    if (send_report(rn, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_RUNNING, "started") < 0) return EP_EIO;
    struct timespec started;
    clock_gettime(CLOCK_MONOTONIC, &started);
    int r = attempt_action(rn, a, plugins, node, reboot);
    if (rn->send_error) return ep_error_set(EP_EIO, "the workflow stream broke during %s", a->action);
    if (r == 0) {
      snprintf(line, sizeof line, "action %s: SUCCESS in %.1f s", a->action, since_ms(&started) / 1000);
      ep_log(EP_LOG_INFO, "agent", "%s", line);
      keep_line(rn, EP_LOG_INFO, line);
      return send_report(rn, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_SUCCESS, "done") < 0 ? EP_EIO : 0;
    }
    /* The status reads "Provisioning Failed: <action>: <message>": drop the runner's
     * "action NAME (plugin ID): " prefix, the report names the action already. */
    const char *text = ep_error_message(), *plugin_end = strstr(text, "): ");
    if (strncmp(text, "action ", 7) == 0 && plugin_end) text = plugin_end + 3;
    char message[EP_ERROR_MESSAGE_MAX];
    snprintf(message, sizeof message, "%s", text);
    snprintf(line, sizeof line, "action %s: attempt %u failed: %.400s", a->action, rn->attempts, message);
    ep_log(EP_LOG_WARN, "agent", "%s", line);
    keep_line(rn, EP_LOG_WARN, line);
    if (rn->attempts > a->retries) {
      bool timeout = r == EP_ETIMEDOUT;
      send_report(rn, timeout ? EDGEPROV__V1__ACTION_STATE__ACTION_STATE_TIMEOUT : EDGEPROV__V1__ACTION_STATE__ACTION_STATE_FAILED,
                  message);
      return ep_error_set(EP_EFAILED, "%s failed: %s", a->action, message);
    }
    char retrying[EP_ERROR_MESSAGE_MAX + 64];
    snprintf(retrying, sizeof retrying, "attempt %u failed: %.400s; retrying", rn->attempts, message);
    if (send_report(rn, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_RUNNING, retrying) < 0) return EP_EIO;
  }
}

static int send_hello(ep_rpc_stream *stream) {
  Edgeprov__V1__WorkflowHello hello = EDGEPROV__V1__WORKFLOW_HELLO__INIT;
  Edgeprov__V1__WorkflowStreamRequest req = EDGEPROV__V1__WORKFLOW_STREAM_REQUEST__INIT;
  req.kind_case = EDGEPROV__V1__WORKFLOW_STREAM_REQUEST__KIND_HELLO;
  req.hello = &hello;
  uint8_t buf[16];
  size_t len = edgeprov__v1__workflow_stream_request__pack(&req, buf);
  return ep_rpc_stream_send(stream, buf, len);
}

/* The stream's end: EP_EPERM when the orchestrator refused us, else EP_EIO. */
static int stream_end(ep_rpc_stream *stream, const char *what) {
  ep_rpc_result result;
  ep_rpc_stream_close(stream, &result);
  int code = result.status == EP_STATUS_UNAUTHENTICATED || result.status == EP_STATUS_PERMISSION_DENIED ? EP_EPERM : EP_EIO;
  return ep_error_set(code, "workflow stream: %s: %s: %s", what, ep_status_name(result.status), result.message);
}

int ep_executor_run(ep_rpc_channel *channel, const char *token, const ep_plugin_set *plugins,
                    const ep_executor_node *node, char ret_reboot[16]) {
  char bearer[EP_NODE_TOKEN_MAX + 16];
  snprintf(bearer, sizeof bearer, "Bearer %s", token);
  ep_rpc_metadata auth = {"authorization", bearer};
  ep_rpc_stream *stream = NULL;
  int r = ep_rpc_stream_open(&stream, channel, EP_WORKFLOW_SERVICE_RUN, &auth, 1, NULL, 0, 0);
  explicit_bzero(bearer, sizeof bearer);
  if (r < 0) return ep_error_set(EP_EIO, "workflow stream: cannot open");
  if (send_hello(stream) < 0) return stream_end(stream, "hello");
  ep_log(EP_LOG_INFO, "agent", "waiting for a workflow");
  uint8_t *data = NULL;
  size_t len = 0;
  if (ep_rpc_stream_read(stream, &data, &len) != 1) return stream_end(stream, "no workflow");
  Edgeprov__V1__WorkflowStreamResponse *resp = edgeprov__v1__workflow_stream_response__unpack(NULL, len, data);
  free(data);
  if (!resp || !resp->workflow || !resp->workflow->n_actions) {
    if (resp) edgeprov__v1__workflow_stream_response__free_unpacked(resp, NULL);
    ep_rpc_stream_close(stream, NULL);
    return ep_error_set(EP_EIO, "workflow stream: the orchestrator sent no usable workflow");
  }
  const ep_workflow *w = resp->workflow;
  ep_log(EP_LOG_INFO, "agent", "workflow for instance %s (%s): %zu actions", w->instance_id, w->os_profile, w->n_actions);
  run rn = {.stream = stream, .channel = channel, .token = token, .workflow = w};
  char reboot[16] = "";
  r = 0;
  for (uint32_t i = 0; r == 0 && i < w->n_actions; i++) {
    if (w->actions[i]->state == EDGEPROV__V1__ACTION_STATE__ACTION_STATE_SUCCESS) continue;
    rn.index = i;
    char asked[16] = "";
    r = run_action(&rn, w->actions[i], plugins, node, asked);
    if (asked[0]) snprintf(reboot, sizeof reboot, "%s", asked);
  }
  edgeprov__v1__workflow_stream_response__free_unpacked(resp, NULL);
  for (size_t i = 0; i < rn.line_count; i++) free(rn.lines[i]);
  if (r == EP_EIO || rn.send_error) return stream_end(stream, "broken");
  ep_rpc_stream_half_close(stream);
  while (ep_rpc_stream_read(stream, &data, &len) == 1) free(data);
  ep_rpc_result result;
  ep_rpc_stream_close(stream, &result);
  if (r == 0 && result.status != EP_STATUS_OK)
    r = ep_error_set(result.status == EP_STATUS_UNAUTHENTICATED || result.status == EP_STATUS_PERMISSION_DENIED ||
                             result.status == EP_STATUS_FAILED_PRECONDITION
                         ? EP_EPERM
                         : EP_EIO,
                     "workflow stream: the orchestrator refused a report: %s: %s", ep_status_name(result.status),
                     result.message);
  if (r == 0) snprintf(ret_reboot, 16, "%s", reboot);
  return r;
}
