/* Unit tests of core/lib/provisioning/workflow.c: template variables, report rules, status texts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/error.h"
#include "provisioning/workflow.h"

static const char *lookup(void *data, const char *name) {
  (void)data;
  if (!strcmp(name, "host.uuid")) return "u-1";
  if (!strcmp(name, "profile.image_url")) return "https://x/os.img";
  return NULL;
}

static void substitutes_known_variables_and_keeps_node_ones(void **state) {
  (void)state;
  char *out = ep_template_substitute("${profile.image_url}?h=${host.uuid}&s=${node.client_secret}$", lookup, NULL, "node.", 1024);
  assert_non_null(out);
  assert_string_equal(out, "https://x/os.img?h=u-1&s=${node.client_secret}$");
  free(out);
}

static void refuses_unknown_and_malformed_variables(void **state) {
  (void)state;
  assert_null(ep_template_substitute("a ${host.nope} b", lookup, NULL, "node.", 1024));
  assert_string_equal(ep_error_message(), "template: ${host.nope}: no such variable");
  assert_null(ep_template_substitute("a ${host.uuid b", lookup, NULL, "node.", 1024));
  assert_non_null(strstr(ep_error_message(), "is not a ${variable}"));
  assert_null(ep_template_substitute("${profile.image_url}${profile.image_url}", lookup, NULL, NULL, 20));
  assert_non_null(strstr(ep_error_message(), "grows past 20 bytes"));
}

/* A workflow of three actions, all PENDING. */
static ep_workflow *make_workflow(void) {
  static const char *names[] = {"disk.erase", "image.stream", "system.reboot"};
  ep_workflow *w = calloc(1, sizeof *w);
  edgeprov__v1__workflow__init(w);
  w->instance_id = strdup("11111111-1111-4111-8111-111111111111");
  w->host_uuid = strdup("22222222-2222-4222-8222-222222222222");
  w->os_profile = strdup("ubuntu-22.04");
  w->generation = 7;
  w->n_actions = 3;
  w->actions = calloc(3, sizeof *w->actions);
  for (int i = 0; i < 3; i++) {
    w->actions[i] = calloc(1, sizeof *w->actions[i]);
    edgeprov__v1__workflow_action__init(w->actions[i]);
    w->actions[i]->action = strdup(names[i]);
    w->actions[i]->message = i == 2 ? (char *)protobuf_c_empty_string : strdup(""); /* as unpack leaves it */
    w->actions[i]->state = EDGEPROV__V1__ACTION_STATE__ACTION_STATE_PENDING;
  }
  return w;
}

static Edgeprov__V1__ActionReport report(uint32_t index, Edgeprov__V1__ActionState s, const char *message) {
  Edgeprov__V1__ActionReport r = EDGEPROV__V1__ACTION_REPORT__INIT;
  r.instance_id = "11111111-1111-4111-8111-111111111111";
  r.generation = 7;
  r.index = index;
  r.state = s;
  r.message = (char *)message;
  return r;
}

static void reports_advance_the_workflow_and_its_status(void **state) {
  (void)state;
  ep_workflow *w = make_workflow();
  char status[EP_WORKFLOW_STATUS_MAX];
  bool failed = true;
  Edgeprov__V1__ActionReport r = report(0, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_SUCCESS, "done");
  assert_int_equal(ep_workflow_apply_report(w, &r), 0);
  r = report(1, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_RUNNING, "4 MiB written");
  r.bytes_done = 10, r.bytes_total = 100;
  assert_int_equal(ep_workflow_apply_report(w, &r), 0);
  ep_workflow_status(w, status, &failed);
  assert_false(failed);
  assert_string_equal(status, "2/3: image.stream (10/100)");
  assert_int_equal(w->state, EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_RUNNING);
  r = report(1, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_SUCCESS, "done");
  assert_int_equal(ep_workflow_apply_report(w, &r), 0);
  r = report(2, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_SUCCESS, "done");
  assert_int_equal(ep_workflow_apply_report(w, &r), 0);
  assert_int_equal(w->state, EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_SUCCESS);
  ep_workflow_status(w, status, &failed);
  assert_string_equal(status, "3/3: done");
  r = report(2, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_RUNNING, "again");
  assert_int_equal(ep_workflow_apply_report(w, &r), EP_EPERM); /* nothing after done */
  ep_workflow_free(w);
}

static void a_final_failure_fails_the_workflow(void **state) {
  (void)state;
  ep_workflow *w = make_workflow();
  Edgeprov__V1__ActionReport r = report(0, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_TIMEOUT, "no result within 300 s");
  assert_int_equal(ep_workflow_apply_report(w, &r), 0);
  char status[EP_WORKFLOW_STATUS_MAX];
  bool failed = false;
  ep_workflow_status(w, status, &failed);
  assert_true(failed);
  assert_string_equal(status, "Provisioning Failed: disk.erase: no result within 300 s");
  ep_workflow_free(w);
}

static void bad_reports_are_refused_and_named(void **state) {
  (void)state;
  ep_workflow *w = make_workflow();
  Edgeprov__V1__ActionReport r = report(0, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_RUNNING, "");
  r.instance_id = "33333333-3333-4333-8333-333333333333";
  assert_int_equal(ep_workflow_apply_report(w, &r), EP_EPERM);
  assert_non_null(strstr(ep_error_message(), "is not this node's instance"));
  r = report(0, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_RUNNING, "");
  r.generation = 6;
  assert_int_equal(ep_workflow_apply_report(w, &r), EP_EPERM);
  assert_non_null(strstr(ep_error_message(), "generation: 6"));
  r = report(3, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_RUNNING, "");
  assert_int_equal(ep_workflow_apply_report(w, &r), EP_EINVAL);
  r = report(1, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_RUNNING, "");
  assert_int_equal(ep_workflow_apply_report(w, &r), EP_EPERM); /* action 0 has not succeeded */
  r = report(0, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_PENDING, "");
  assert_int_equal(ep_workflow_apply_report(w, &r), EP_EINVAL);
  r = report(0, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_RUNNING, "line\nforged");
  assert_int_equal(ep_workflow_apply_report(w, &r), EP_EINVAL);
  assert_non_null(strstr(ep_error_message(), "message:"));
  char *lines[] = {"fine", "bad\x1b[2J"};
  r = report(0, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_RUNNING, "");
  r.log_lines = lines;
  r.n_log_lines = 2;
  assert_int_equal(ep_workflow_apply_report(w, &r), EP_EINVAL);
  assert_non_null(strstr(ep_error_message(), "log_lines[1]"));
  assert_int_equal(w->actions[0]->state, EDGEPROV__V1__ACTION_STATE__ACTION_STATE_PENDING); /* nothing changed */
  ep_workflow_free(w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(substitutes_known_variables_and_keeps_node_ones),
      cmocka_unit_test(refuses_unknown_and_malformed_variables),
      cmocka_unit_test(reports_advance_the_workflow_and_its_status),
      cmocka_unit_test(a_final_failure_fails_the_workflow),
      cmocka_unit_test(bad_reports_are_refused_and_named),
  };
  return cmocka_run_group_tests_name("workflow", tests, NULL, NULL);
}
