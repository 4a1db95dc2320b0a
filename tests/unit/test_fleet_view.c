/* Unit tests of core/lib/northbound/fleet_view.c: the state a person reads of a node, its
 * current action, and its timeline in time order (moments and actions), from the records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "northbound/fleet_view.h"

static void the_state_a_person_reads(void **state) {
  (void)state;
  ep_inv_host h = EDGEPROV__V1__HOST__INIT;
  ep_inv_instance i = EDGEPROV__V1__INSTANCE__INIT;
  ep_workflow w = EDGEPROV__V1__WORKFLOW__INIT;
  assert_string_equal(ep_fleet_state(&h, NULL, NULL), "NEW"); /* its node never called */
  h.current_state = EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED;
  assert_string_equal(ep_fleet_state(&h, NULL, NULL), "ONBOARDED");
  i.current_state = EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_PROVISIONING;
  w.state = EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_RUNNING;
  assert_string_equal(ep_fleet_state(&h, &i, &w), "PROVISIONING");
  w.state = EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_SUCCESS;
  assert_string_equal(ep_fleet_state(&h, &i, &w), "REBOOTING");
  i.current_state = EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_RUNNING;
  assert_string_equal(ep_fleet_state(&h, &i, &w), "RUNNING");
  i.current_state = EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_ERROR;
  assert_string_equal(ep_fleet_state(&h, &i, &w), "FAILED");
  h.current_state = EDGEPROV__V1__HOST_STATE__HOST_STATE_UNTRUSTED;
  assert_string_equal(ep_fleet_state(&h, &i, &w), "UNTRUSTED");
}

static void the_current_action_is_the_first_not_done_and_the_timeline_is_in_time_order(void **state) {
  (void)state;
  Edgeprov__V1__WorkflowAction a[3], *actions[3];
  for (int k = 0; k < 3; k++) {
    edgeprov__v1__workflow_action__init(&a[k]);
    actions[k] = &a[k];
  }
  a[0].action = "disk.erase", a[0].state = EDGEPROV__V1__ACTION_STATE__ACTION_STATE_SUCCESS;
  a[0].started_at = 1010, a[0].finished_at = 1012;
  a[1].action = "image.stream", a[1].state = EDGEPROV__V1__ACTION_STATE__ACTION_STATE_RUNNING;
  a[1].started_at = 1012, a[1].bytes_done = 5, a[1].bytes_total = 10;
  a[2].action = "reboot";
  ep_workflow w = EDGEPROV__V1__WORKFLOW__INIT;
  w.actions = actions, w.n_actions = 3, w.created_at = 1005, w.generation = 7, w.os_profile = "ubuntu";
  uint32_t index = 9;
  assert_ptr_equal(ep_fleet_current_action(&w, &index), &a[1]);
  assert_int_equal(index, 1);
  assert_null(ep_fleet_current_action(NULL, NULL));
  ep_inv_host h = EDGEPROV__V1__HOST__INIT;
  h.artifact_fetched_at = 1000, h.first_contact_at = 1002, h.onboarded_at = 1003, h.peer_ip = "10.0.0.9";
  assert_int_equal(ep_fleet_started_at(&h), 1000);
  ep_fleet_phase p[EP_FLEET_PHASES_MAX];
  size_t n = ep_fleet_timeline(&h, NULL, &w, p);
  assert_int_equal(n, 6); /* fetched, connected, onboarded, created, two actions started (reboot not yet) */
  assert_string_equal(p[0].name, "first boot artifact fetched (from 10.0.0.9)");
  assert_null(p[0].state);
  assert_string_equal(p[3].name, "workflow 7 created (ubuntu)");
  assert_string_equal(p[4].name, "disk.erase");
  assert_string_equal(p[4].state, "SUCCESS");
  assert_int_equal(p[4].end, 1012);
  assert_string_equal(p[5].state, "RUNNING");
  assert_int_equal(p[5].end, 0);
  assert_int_equal(p[5].bytes_total, 10);
  for (size_t k = 1; k < n; k++) assert_true(p[k - 1].start <= p[k].start);
  assert_int_equal(ep_fleet_timeline(NULL, NULL, NULL, p), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(the_state_a_person_reads),
      cmocka_unit_test(the_current_action_is_the_first_not_done_and_the_timeline_is_in_time_order),
  };
  return cmocka_run_group_tests_name("fleet_view", tests, NULL, NULL);
}
