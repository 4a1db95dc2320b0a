/* Unit tests of core/lib/southbound/workflow_service.c's ep_workflow_record_report on a real
 * inventory (storage-sqlite) whose workflows the reconciler rendered with actions-core and
 * os-microvisor: a node's reports advance its workflow and its Instance's status (and the
 * Host's once done); reports out of order, stale, malformed, about another node's Instance, or
 * from a node without one are refused and change nothing. (The Run stream and its budgets
 * need a node on the wire: tests/integration/report_flood.sh and workflow.sh.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/error.h"
#include "provisioning/reconciler.h"
#include "provisioning/workflow.h"
#include "site_fixture.h"
#include "southbound/workflow_service.h"

#define NODE_A "aaaaaaaa-0000-4000-8000-00000000000a"
#define NODE_B "aaaaaaaa-0000-4000-8000-00000000000b"
#define NODE_C "aaaaaaaa-0000-4000-8000-00000000000c" /* registered, no instance */
#define NODE_X "aaaaaaaa-0000-4000-8000-0000000000ff" /* unknown */
#define ACTIONS 6                                    /* os-microvisor's workflow.conf */

typedef struct fixture {
  tu_site *t;
  char a[64], b[64]; /* instance IDs */
  uint32_t generation_a, generation_b;
} fixture;

static void onboarded_host_with_instance(tu_site *t, const char *node, char id[64]) {
  assert_int_equal(tu_add_host(t, node, NULL, TU_PROFILE, true), 0);
  ep_inv_instance *instance = NULL;
  assert_int_equal(ep_inventory_create_instance(t->inv, node, NULL, false, &instance), 0);
  snprintf(id, 64, "%s", instance->id);
  ep_inv_instance_free(instance);
  assert_int_equal(ep_inventory_set_host_state(t->inv, node, EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED, "Onboarded",
                                               EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IDLE, NULL),
                   0);
}

static uint32_t generation_of(tu_site *t, const char *id) {
  ep_workflow *w = NULL;
  assert_int_equal(ep_inventory_get_workflow(t->inv, id, &w), 0);
  uint32_t g = w->generation;
  ep_workflow_free(w);
  return g;
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  *state = f;
  if (!(f->t = tu_site_provisioning("", "", NULL))) return -1;
  onboarded_host_with_instance(f->t, NODE_A, f->a);
  onboarded_host_with_instance(f->t, NODE_B, f->b);
  if (tu_add_host(f->t, NODE_C, NULL, TU_PROFILE, true) < 0) return -1;
  if (ep_reconciler_pass(f->t->inv, f->t->site->plugins, f->t->site->config) != 2) return -1;
  f->generation_a = generation_of(f->t, f->a);
  f->generation_b = generation_of(f->t, f->b);
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  tu_site_close(f->t);
  free(f);
  return 0;
}

static Edgeprov__V1__ActionReport report(const char *instance_id, uint32_t generation, uint32_t index,
                                         Edgeprov__V1__ActionState s, const char *message) {
  Edgeprov__V1__ActionReport r = EDGEPROV__V1__ACTION_REPORT__INIT;
  r.instance_id = (char *)instance_id;
  r.generation = generation;
  r.index = index;
  r.state = s;
  r.attempts = 1;
  r.message = (char *)message;
  return r;
}

/* Records r from node, expecting want (and, when it fails, a message containing text). */
static void record(fixture *f, const char *node, const Edgeprov__V1__ActionReport *r, int want, const char *text) {
  int got = ep_workflow_record_report(f->t->inv, node, r);
  if (got != want || (want < 0 && !strstr(ep_error_message(), text)))
    fail_msg("report %u from %s: %d \"%s\", expected %d \"%s\"", r->index, node, got, got < 0 ? ep_error_message() : "",
             want, text ? text : "");
}

/* The instance's current state and provisioning status. */
static ep_inv_instance_state instance_of(fixture *f, const char *id, char status[256], ep_status_indicator *indicator) {
  ep_inv_instance *instance = NULL;
  assert_int_equal(ep_inventory_get_instance(f->t->inv, id, &instance), 0);
  ep_inv_instance_state s = instance->current_state;
  snprintf(status, 256, "%s", instance->provisioning_status->message);
  if (indicator) *indicator = instance->provisioning_status->indicator;
  ep_inv_instance_free(instance);
  return s;
}

static uint64_t workflow_revision(fixture *f, const char *id) {
  ep_workflow *w = NULL;
  assert_int_equal(ep_inventory_get_workflow(f->t->inv, id, &w), 0);
  uint64_t r = w->revision;
  ep_workflow_free(w);
  return r;
}

static void reports_advance_the_workflow_and_the_instance(void **state) {
  fixture *f = *state;
  char status[256];
  ep_status_indicator indicator = 0;
  Edgeprov__V1__ActionReport r = report(f->a, f->generation_a, 0, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_RUNNING, "");
  record(f, NODE_A, &r, 0, NULL);
  assert_int_equal(instance_of(f, f->a, status, &indicator), EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_PROVISIONING);
  assert_string_equal(status, "1/6: disk.erase (RUNNING)");
  assert_int_equal(indicator, EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IN_PROGRESS);

  r = report(f->a, f->generation_a, 0, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_SUCCESS, "");
  record(f, NODE_A, &r, 0, NULL);
  r = report(f->a, f->generation_a, 1, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_RUNNING, "writing");
  r.bytes_done = 1 << 20, r.bytes_total = 4 << 20;
  record(f, NODE_A, &r, 0, NULL);
  instance_of(f, f->a, status, NULL);
  assert_string_equal(status, "2/6: image.stream (1048576/4194304)");

  for (uint32_t i = 1; i < ACTIONS; i++) {
    r = report(f->a, f->generation_a, i, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_SUCCESS, "ok");
    record(f, NODE_A, &r, 0, NULL);
  }
  ep_workflow *w = NULL;
  assert_int_equal(ep_inventory_get_workflow(f->t->inv, f->a, &w), 0);
  assert_int_equal(w->state, EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_SUCCESS);
  for (size_t i = 0; i < w->n_actions; i++) assert_int_equal(w->actions[i]->state, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_SUCCESS);
  ep_workflow_free(w);
  /* Done: the Instance waits for the installed OS to report (the node API sets RUNNING). */
  assert_int_equal(instance_of(f, f->a, status, NULL), EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_PROVISIONING);
  assert_string_equal(status, "6/6: done, rebooting into " TU_PROFILE);
  ep_inv_host *host = NULL;
  assert_int_equal(ep_inventory_get_host(f->t->inv, NODE_A, &host), 0);
  assert_string_equal(host->host_status->message, "Rebooting");
  ep_inv_host_free(host);

  uint64_t before = workflow_revision(f, f->a);
  r = report(f->a, f->generation_a, 5, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_RUNNING, "");
  record(f, NODE_A, &r, EP_EPERM, "the workflow is already done");
  assert_int_equal(workflow_revision(f, f->a), before);
  /* B's workflow was not touched by any of it. */
  assert_int_equal(instance_of(f, f->b, status, NULL), EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_PROVISIONING);
  assert_string_equal(status, "0/6: waiting for the node");
}

static void failed_action_fails_the_instance(void **state) {
  fixture *f = *state;
  char status[256];
  ep_status_indicator indicator = 0;
  Edgeprov__V1__ActionReport r = report(f->a, f->generation_a, 0, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_FAILED,
                                        "device busy");
  record(f, NODE_A, &r, 0, NULL);
  assert_int_equal(instance_of(f, f->a, status, &indicator), EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_ERROR);
  assert_string_equal(status, "Provisioning Failed: disk.erase: device busy");
  assert_int_equal(indicator, EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_ERROR);
  r.state = EDGEPROV__V1__ACTION_STATE__ACTION_STATE_RUNNING;
  record(f, NODE_A, &r, EP_EPERM, "the workflow is already failed");
}

static void out_of_order_stale_and_malformed_reports_change_nothing(void **state) {
  fixture *f = *state;
  uint64_t before = workflow_revision(f, f->a);
  Edgeprov__V1__ActionReport r = report(f->a, f->generation_a, 2, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_SUCCESS, "");
  record(f, NODE_A, &r, EP_EPERM, "index: action 0 (disk.erase) comes before 2 and has not succeeded");
  r = report(f->a, f->generation_a + 1, 0, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_RUNNING, "");
  record(f, NODE_A, &r, EP_EPERM, "generation:");
  r = report(f->a, f->generation_a, ACTIONS, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_RUNNING, "");
  record(f, NODE_A, &r, EP_EINVAL, "index: 6, the workflow has 6 actions");
  r = report(f->a, f->generation_a, 0, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_PENDING, "");
  record(f, NODE_A, &r, EP_EINVAL, "state:");
  r = report(f->a, f->generation_a, 0, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_RUNNING, "red \x1b[31m text");
  record(f, NODE_A, &r, EP_EINVAL, "message");
  char *lines[EP_WORKFLOW_LOG_LINES_MAX + 1];
  for (size_t i = 0; i <= EP_WORKFLOW_LOG_LINES_MAX; i++) lines[i] = "a line";
  r = report(f->a, f->generation_a, 0, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_RUNNING, "");
  r.log_lines = lines;
  r.n_log_lines = EP_WORKFLOW_LOG_LINES_MAX + 1;
  record(f, NODE_A, &r, EP_EINVAL, "log_lines: at most 16 per report");
  assert_int_equal(workflow_revision(f, f->a), before);

  r = report(f->a, f->generation_a, 0, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_SUCCESS, "");
  record(f, NODE_A, &r, 0, NULL);
  before = workflow_revision(f, f->a);
  record(f, NODE_A, &r, EP_EPERM, "index: action 0 (disk.erase) already succeeded"); /* no going back */
  r.state = EDGEPROV__V1__ACTION_STATE__ACTION_STATE_RUNNING;
  record(f, NODE_A, &r, EP_EPERM, "already succeeded");
  assert_int_equal(workflow_revision(f, f->a), before);
}

static void a_node_reports_on_its_own_workflow_only(void **state) {
  fixture *f = *state;
  uint64_t before_a = workflow_revision(f, f->a), before_b = workflow_revision(f, f->b);
  /* B names A's instance (and A's generation): refused, A's workflow untouched. */
  Edgeprov__V1__ActionReport r = report(f->a, f->generation_a, 0, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_FAILED, "x");
  record(f, NODE_B, &r, EP_EPERM, "is not this node's instance");
  record(f, NODE_C, &r, EP_EPERM, "host " NODE_C " has no instance");
  record(f, NODE_X, &r, EP_ENOENT, "no host with uuid " NODE_X);
  record(f, "not-a-node", &r, EP_EINVAL, "not a UUID");
  assert_int_equal(workflow_revision(f, f->a), before_a);
  assert_int_equal(workflow_revision(f, f->b), before_b);
  char status[256];
  assert_int_equal(instance_of(f, f->a, status, NULL), EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_PROVISIONING);
}

/* ep_workflow_record_report has no budget and stores every report (the Run stream coalesces). */
static void every_progress_report_is_stored(void **state) {
  fixture *f = *state;
  Edgeprov__V1__ActionReport r = report(f->a, f->generation_a, 0, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_RUNNING, "");
  r.bytes_total = 100;
  uint64_t last = workflow_revision(f, f->a);
  for (uint64_t i = 1; i <= 50; i++) {
    r.bytes_done = i;
    record(f, NODE_A, &r, 0, NULL);
    uint64_t now = workflow_revision(f, f->a);
    assert_true(now > last);
    last = now;
  }
  ep_workflow *w = NULL;
  assert_int_equal(ep_inventory_get_workflow(f->t->inv, f->a, &w), 0);
  assert_int_equal(w->actions[0]->bytes_done, 50);
  ep_workflow_free(w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(reports_advance_the_workflow_and_the_instance, setup, teardown),
      cmocka_unit_test_setup_teardown(failed_action_fails_the_instance, setup, teardown),
      cmocka_unit_test_setup_teardown(out_of_order_stale_and_malformed_reports_change_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(a_node_reports_on_its_own_workflow_only, setup, teardown),
      cmocka_unit_test_setup_teardown(every_progress_report_is_stored, setup, teardown),
  };
  return cmocka_run_group_tests_name("workflow_service", tests, NULL, NULL);
}
