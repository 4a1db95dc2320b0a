/* core: the southbound workflow service, see workflow_service.h. */
#include "workflow_service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <edgeprov/storage.h>

#include "error.h"
#include "log.h"
#include "mgmt.h"
#include "node_auth.h"
#include "workflow.h"

#define WAIT_SLICE_MS 1000 /* how often a waiting stream checks that its node is still there */
#define CAS_RETRIES 16

struct ep_workflow_service {
  ep_inventory *inv;
  const struct ep_plugin_set *plugins;
};

int ep_workflow_record_report(ep_inventory *inv, const char *node_id, const Edgeprov__V1__ActionReport *report) {
  for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
    ep_inv_host *host = NULL;
    ep_workflow *w = NULL;
    int r = ep_inventory_get_host(inv, node_id, &host);
    if (r == 0 && !host->instance_id[0]) r = ep_error_set(EP_EPERM, "host %s has no instance", node_id);
    if (r == 0) r = ep_inventory_get_workflow(inv, host->instance_id, &w);
    if (r == 0) r = ep_workflow_apply_report(w, report);
    uint64_t expect = w ? w->revision : 0;
    if (r == 0) r = ep_inventory_put_workflow(inv, w, expect, NULL);
    if (r == 0) {
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
      if (failed || done) ep_log(failed ? EP_LOG_WARN : EP_LOG_INFO, "workflow", "host %s: %s", node_id, status);
    }
    ep_workflow_free(w);
    ep_inv_host_free(host);
    if (r != EP_ECONFLICT) return r;
  }
  return ep_error_set(EP_ECONFLICT, "the workflow of host %s keeps changing; report again", node_id);
}

/* Waits until the node has a workflow that has not failed (or the call ends) and sends it. */
static int push_workflow(ep_workflow_service *ws, ep_rpc_call *call, const char *node_id) {
  for (;;) {
    uint64_t revision = 0;
    ep_inventory_revision(ws->inv, &revision);
    ep_inv_host *host = NULL;
    ep_workflow *w = NULL;
    int r = ep_inventory_get_host(ws->inv, node_id, &host);
    if (r == 0 && host->instance_id[0]) {
      r = ep_inventory_get_workflow(ws->inv, host->instance_id, &w);
      if (r == EP_ENOENT) r = 0;
    }
    ep_inv_host_free(host);
    if (r < 0) return r;
    if (w && w->state == EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_FAILED) { /* until an operator re-arms it */
      ep_workflow_free(w);
      w = NULL;
    }
    if (w) {
      Edgeprov__V1__WorkflowStreamResponse resp = EDGEPROV__V1__WORKFLOW_STREAM_RESPONSE__INIT;
      resp.workflow = w;
      size_t len = edgeprov__v1__workflow_stream_response__get_packed_size(&resp);
      uint8_t *data = malloc(len ? len : 1);
      if (data) edgeprov__v1__workflow_stream_response__pack(&resp, data);
      r = data ? ep_rpc_call_send(call, data, len) : ep_error_set(EP_ENOMEM, "out of memory");
      free(data);
      ep_workflow_free(w);
      return r < 0 ? ep_error_set(r, "the node went away") : 0;
    }
    if (ep_rpc_call_cancelled(call)) return ep_error_set(EP_ECANCELED, "the node went away");
    ep_inventory_wait(ws->inv, revision, WAIT_SLICE_MS);
  }
}

static void finish_with(ep_rpc_call *call, int r) {
  ep_rpc_call_finish(call, r == 0 ? EP_STATUS_OK : r == EP_EPERM ? EP_STATUS_PERMISSION_DENIED : ep_status_from_error(r),
                     r == 0 ? "" : ep_error_message(), NULL, 0);
}

static void handle_run(void *data, ep_rpc_call *call, const uint8_t *unused, size_t unused_len) {
  (void)unused, (void)unused_len;
  ep_workflow_service *ws = data;
  char node_id[EP_IDENTITY_NODE_ID_MAX + 1];
  int r = ep_node_auth(ws->plugins, call, node_id);
  if (r < 0) {
    ep_log(EP_LOG_WARN, "workflow", "Run refused: %s", ep_error_message());
    ep_rpc_call_finish(call, r == EP_EPERM ? EP_STATUS_UNAUTHENTICATED : EP_STATUS_UNAVAILABLE, ep_error_message(), NULL, 0);
    return;
  }
  uint8_t *bytes = NULL;
  size_t len = 0;
  bool hello = false;
  while (r == 0 && ep_rpc_call_recv(call, &bytes, &len) == 1) {
    Edgeprov__V1__WorkflowStreamRequest *req = edgeprov__v1__workflow_stream_request__unpack(NULL, len, bytes);
    free(bytes);
    if (!req) {
      r = ep_error_set(EP_EINVAL, "request is not a valid WorkflowStreamRequest");
    } else if (req->kind_case == EDGEPROV__V1__WORKFLOW_STREAM_REQUEST__KIND_HELLO && !hello) {
      hello = true;
      r = push_workflow(ws, call, node_id);
    } else if (req->kind_case == EDGEPROV__V1__WORKFLOW_STREAM_REQUEST__KIND_REPORT && hello) {
      r = ep_workflow_record_report(ws->inv, node_id, req->report);
      for (size_t i = 0; r == 0 && i < req->report->n_log_lines; i++) /* validated with the report */
        ep_log(EP_LOG_INFO, "node", "host %s action %u: %s", node_id, req->report->index, req->report->log_lines[i]);
      if (r < 0) ep_log(EP_LOG_WARN, "workflow", "host %s: report refused: %s", node_id, ep_error_message());
    } else {
      r = ep_error_set(EP_EINVAL, "a stream starts with one hello, then carries reports");
    }
    if (req) edgeprov__v1__workflow_stream_request__free_unpacked(req, NULL);
  }
  finish_with(call, r == EP_ECANCELED ? 0 : r);
}

int ep_workflow_service_new(ep_workflow_service **out, ep_inventory *inv, const struct ep_plugin_set *plugins) {
  ep_workflow_service *ws = calloc(1, sizeof *ws);
  if (!ws) return ep_error_set(EP_ENOMEM, "out of memory");
  ws->inv = inv;
  ws->plugins = plugins;
  *out = ws;
  return 0;
}

int ep_workflow_service_register(ep_workflow_service *ws, ep_rpc_server *server) {
  ep_rpc_method method = {EP_WORKFLOW_SERVICE_RUN, EP_RPC_BIDI_STREAMING, handle_run, ws};
  return ep_rpc_server_add_method(server, &method);
}

void ep_workflow_service_free(ep_workflow_service *ws) { free(ws); }
