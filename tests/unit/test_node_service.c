/* Unit tests of core/lib/southbound/node_service.c (edgeprov.v1.NodeService/ReportStatus)
 * through a real rpc server on loopback, over a real inventory (storage-sqlite) with
 * auth-local, actions-core and os-microvisor: a node reports its status on its own host only;
 * bad text and undecodable requests are refused; INSTALLED_OS makes the Instance RUNNING only
 * once its workflow succeeded; each node is held to limits.node_reports_*. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/error.h"
#include "edgeprov/v1/node.pb-c.h"
#include "net/rpc.h"
#include "provisioning/reconciler.h"
#include "site_fixture.h"
#include "southbound/node_service.h"
#include "southbound/workflow_service.h"

#define NODE_A "aaaaaaaa-0000-4000-8000-00000000000a"
#define NODE_B "aaaaaaaa-0000-4000-8000-00000000000b"
#define NODE_X "aaaaaaaa-0000-4000-8000-0000000000ff" /* has credentials, no host */

typedef struct fixture {
  tu_site *t;
  ep_node_service *service;
  ep_rpc_server *server;
  ep_rpc_channel *channel;
  char header_a[4200], header_b[4200], header_x[4200];
} fixture;

static int bearer(fixture *f, const char *node, char header[4200]) {
  char token[4096];
  int r = tu_node_token(f->t, node, EP_NODE_AUDIENCE, token, sizeof token);
  snprintf(header, 4200, "Bearer %s", token);
  return r;
}

static int setup_with(void **state, const char *config) {
  fixture *f = calloc(1, sizeof *f);
  *state = f;
  if (!(f->t = tu_site_provisioning(", \"auth-local\"", config, NULL))) return -1;
  if (tu_add_host(f->t, NODE_A, "SERIALA", TU_PROFILE, true) < 0 || tu_add_host(f->t, NODE_B, "SERIALB", TU_PROFILE, true) < 0)
    return -1;
  if (bearer(f, NODE_A, f->header_a) < 0 || bearer(f, NODE_B, f->header_b) < 0 || bearer(f, NODE_X, f->header_x) < 0)
    return -1;
  int port = 0;
  char target[64];
  if (ep_node_service_new(&f->service, f->t->inv, f->t->site->plugins) < 0 || ep_rpc_server_new(&f->server, NULL) < 0 ||
      ep_node_service_register(f->service, f->server) < 0 ||
      ep_rpc_server_listen(f->server, "127.0.0.1:0", NULL, &port) < 0 || ep_rpc_server_start(f->server) < 0)
    return -1;
  snprintf(target, sizeof target, "127.0.0.1:%d", port);
  return ep_rpc_channel_new(&f->channel, target, NULL, 0);
}

static int setup(void **state) { return setup_with(state, ""); }

static int teardown(void **state) {
  fixture *f = *state;
  ep_rpc_channel_free(f->channel);
  ep_rpc_server_free(f->server, 1000);
  ep_node_service_free(f->service);
  tu_site_close(f->t);
  free(f);
  return 0;
}

/* Calls ReportStatus with raw request bytes; returns the status, the message in res. */
static int call_raw(fixture *f, const char *header, const uint8_t *request, size_t len, ep_rpc_result *res) {
  ep_rpc_metadata md = {"authorization", header};
  memset(res, 0, sizeof *res);
  assert_int_equal(ep_rpc_unary(f->channel, EP_NODE_SERVICE_REPORT_STATUS, &md, header ? 1 : 0, request, len, 10000, res), 0);
  return res->status;
}

/* Reports status (in phase) as the node of header; checks the status code and, when not OK,
 * that the message contains want; on OK checks the reply names node. */
static void report(fixture *f, const char *header, const char *node, const char *status, Edgeprov__V1__NodePhase phase,
                   int want_status, const char *want) {
  Edgeprov__V1__ReportStatusRequest req = EDGEPROV__V1__REPORT_STATUS_REQUEST__INIT;
  req.status = (char *)status;
  req.phase = phase;
  uint8_t buf[1024];
  assert_true(edgeprov__v1__report_status_request__get_packed_size(&req) <= sizeof buf);
  size_t len = edgeprov__v1__report_status_request__pack(&req, buf);
  ep_rpc_result res;
  int got = call_raw(f, header, buf, len, &res);
  if (got != want_status || (want && !strstr(res.message, want)))
    fail_msg("ReportStatus \"%.40s\": %s \"%s\", expected %s \"%s\"", status, ep_status_name(got), res.message,
             ep_status_name(want_status), want ? want : "");
  if (got == EP_STATUS_OK) {
    Edgeprov__V1__ReportStatusResponse *resp = edgeprov__v1__report_status_response__unpack(NULL, res.len, res.data);
    assert_non_null(resp);
    assert_string_equal(resp->host_uuid, node);
    edgeprov__v1__report_status_response__free_unpacked(resp, NULL);
  }
  ep_rpc_result_clear(&res);
}

static void host_status(fixture *f, const char *node, char out[256]) {
  ep_inv_host *host = NULL;
  assert_int_equal(ep_inventory_get_host(f->t->inv, node, &host), 0);
  snprintf(out, 256, "%s", host->host_status ? host->host_status->message : "");
  ep_inv_host_free(host);
}

#define MICRO_OS EDGEPROV__V1__NODE_PHASE__NODE_PHASE_UNSPECIFIED
#define INSTALLED EDGEPROV__V1__NODE_PHASE__NODE_PHASE_INSTALLED_OS

static void a_node_reports_on_its_own_host(void **state) {
  fixture *f = *state;
  char status[256];
  report(f, f->header_a, NODE_A, "Booting the Micro-OS", MICRO_OS, EP_STATUS_OK, NULL);
  host_status(f, NODE_A, status);
  assert_string_equal(status, "Booting the Micro-OS");
  host_status(f, NODE_B, status);
  assert_string_not_equal(status, "Booting the Micro-OS");
  report(f, f->header_b, NODE_B, "Hello from B", MICRO_OS, EP_STATUS_OK, NULL);
  host_status(f, NODE_B, status);
  assert_string_equal(status, "Hello from B");
  host_status(f, NODE_A, status);
  assert_string_equal(status, "Booting the Micro-OS");
  /* Valid credentials of a node the inventory does not know. */
  report(f, f->header_x, NODE_X, "Hello", MICRO_OS, EP_STATUS_NOT_FOUND, "no host with uuid " NODE_X);
}

static void unauthenticated_calls_are_refused(void **state) {
  fixture *f = *state;
  report(f, NULL, NODE_A, "x", MICRO_OS, EP_STATUS_UNAUTHENTICATED, "a bearer token is required");
  report(f, "Bearer not.a.token", NODE_A, "x", MICRO_OS, EP_STATUS_UNAUTHENTICATED, "token refused");
  char status[256];
  host_status(f, NODE_A, status);
  assert_string_not_equal(status, "x");
}

static void bad_requests_are_refused(void **state) {
  fixture *f = *state;
  const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0a};
  ep_rpc_result res;
  assert_int_equal(call_raw(f, f->header_a, junk, sizeof junk, &res), EP_STATUS_INVALID_ARGUMENT);
  assert_string_equal(res.message, "request is not a valid ReportStatusRequest");
  ep_rpc_result_clear(&res);
  report(f, f->header_a, NODE_A, "", MICRO_OS, EP_STATUS_INVALID_ARGUMENT, "status");
  report(f, f->header_a, NODE_A, "red \x1b[31m", MICRO_OS, EP_STATUS_INVALID_ARGUMENT, "status");
  char longest[EP_NODE_STATUS_MAX + 2];
  memset(longest, 's', sizeof longest - 1);
  longest[EP_NODE_STATUS_MAX] = '\0';
  report(f, f->header_a, NODE_A, longest, MICRO_OS, EP_STATUS_OK, NULL); /* 128 bytes: the limit */
  longest[EP_NODE_STATUS_MAX] = 's';
  longest[EP_NODE_STATUS_MAX + 1] = '\0';
  report(f, f->header_a, NODE_A, longest, MICRO_OS, EP_STATUS_INVALID_ARGUMENT, "status");
  char status[256];
  host_status(f, NODE_A, status);
  assert_int_equal(strlen(status), EP_NODE_STATUS_MAX);
}

static void installed_os_runs_only_after_its_workflow_succeeded(void **state) {
  fixture *f = *state;
  report(f, f->header_a, NODE_A, "Up", INSTALLED, EP_STATUS_FAILED_PRECONDITION, "host " NODE_A " has no instance");
  ep_inv_instance *instance = NULL;
  assert_int_equal(ep_inventory_create_instance(f->t->inv, NODE_A, NULL, false, &instance), 0);
  char id[64];
  snprintf(id, sizeof id, "%s", instance->id);
  ep_inv_instance_free(instance);
  assert_int_equal(ep_inventory_set_host_state(f->t->inv, NODE_A, EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED, "Onboarded",
                                               EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IDLE, NULL),
                   0);
  assert_int_equal(ep_reconciler_pass(f->t->inv, f->t->site->plugins, f->t->site->config), 1);
  report(f, f->header_a, NODE_A, "Up", INSTALLED, EP_STATUS_FAILED_PRECONDITION, "its workflow has not succeeded");

  ep_workflow *w = NULL;
  assert_int_equal(ep_inventory_get_workflow(f->t->inv, id, &w), 0);
  for (uint32_t i = 0; i < w->n_actions; i++) {
    Edgeprov__V1__ActionReport r = EDGEPROV__V1__ACTION_REPORT__INIT;
    r.instance_id = id;
    r.generation = w->generation;
    r.index = i;
    r.state = EDGEPROV__V1__ACTION_STATE__ACTION_STATE_SUCCESS;
    r.attempts = 1;
    assert_int_equal(ep_workflow_record_report(f->t->inv, NODE_A, &r), 0);
  }
  ep_workflow_free(w);
  report(f, f->header_b, NODE_B, "Up", INSTALLED, EP_STATUS_FAILED_PRECONDITION, "has no instance"); /* not A's */
  report(f, f->header_a, NODE_A, "Ubuntu is up", INSTALLED, EP_STATUS_OK, NULL);
  assert_int_equal(ep_inventory_get_instance(f->t->inv, id, &instance), 0);
  assert_int_equal(instance->current_state, EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_RUNNING);
  assert_string_equal(instance->provisioning_status->message, "Ubuntu is up");
  ep_inv_instance_free(instance);
  report(f, f->header_a, NODE_A, "Still up", INSTALLED, EP_STATUS_OK, NULL); /* a repeat is fine */
}

static int setup_limited(void **state) {
  return setup_with(state, "limits = { node_reports_per_s = 1; node_reports_burst = 3; };\n");
}

static void each_node_is_held_to_its_report_budget(void **state) {
  fixture *f = *state;
  for (int i = 0; i < 3; i++) report(f, f->header_a, NODE_A, "within the burst", MICRO_OS, EP_STATUS_OK, NULL);
  /* One report a second refills the budget: on a slow machine a few more may pass first. */
  int refused = 0;
  for (int i = 0; i < 20 && !refused; i++) {
    Edgeprov__V1__ReportStatusRequest req = EDGEPROV__V1__REPORT_STATUS_REQUEST__INIT;
    req.status = "more";
    uint8_t buf[64];
    size_t len = edgeprov__v1__report_status_request__pack(&req, buf);
    ep_rpc_result res;
    int got = call_raw(f, f->header_a, buf, len, &res);
    assert_true(got == EP_STATUS_OK || got == EP_STATUS_RESOURCE_EXHAUSTED);
    if (got == EP_STATUS_RESOURCE_EXHAUSTED) {
      refused = 1;
      if (!strstr(res.message, "more than 1 reports a second (limits.node_reports_per_s); retry in "))
        fail_msg("%s", res.message);
    }
    ep_rpc_result_clear(&res);
  }
  assert_true(refused);
  report(f, f->header_b, NODE_B, "B has its own budget", MICRO_OS, EP_STATUS_OK, NULL);
  /* Unauthenticated calls do not spend a node's budget: they never get that far. */
  report(f, NULL, NODE_A, "x", MICRO_OS, EP_STATUS_UNAUTHENTICATED, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(a_node_reports_on_its_own_host, setup, teardown),
      cmocka_unit_test_setup_teardown(unauthenticated_calls_are_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(bad_requests_are_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(installed_os_runs_only_after_its_workflow_succeeded, setup, teardown),
      cmocka_unit_test_setup_teardown(each_node_is_held_to_its_report_budget, setup_limited, teardown),
  };
  return cmocka_run_group_tests_name("node_service", tests, NULL, NULL);
}
