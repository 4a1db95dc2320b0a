/* Unit tests of core/lib/base/figures.c: edgeprovd's figures and their hooks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/figures.h"

static char *render(void) {
  char *text = NULL;
  size_t len = 0;
  assert_int_equal(ep_metrics_render(ep_figures_registry(), &text, &len), 0);
  return text;
}

/* The value of the sample line that starts with series (name and labels), or -1. */
static double value_of(const char *text, const char *series) {
  char key[256];
  snprintf(key, sizeof key, "\n%s ", series);
  const char *at = strstr(text, key);
  return at ? strtod(at + strlen(key), NULL) : -1;
}

static void hooks_do_nothing_until_registered_then_count(void **state) {
  (void)state;
  ep_figures_onboarding(true); /* not registered: nothing, and nothing to render */
  ep_figures_rpc_call("/a.B/C", "OK");
  assert_int_equal(ep_figures_clock(), 0);
  char *text = render();
  assert_string_equal(text, "");
  free(text);
  assert_int_equal(ep_figures_register(), 0);
  assert_int_equal(ep_figures_register(), 0); /* once */
  ep_figures_onboarding(true);
  ep_figures_onboarding(true);
  ep_figures_onboarding(false);
  ep_figures_rpc_call("/a.B/C", "OK");
  ep_figures_rpc_calls_open(1);
  ep_figures_rpc_calls_open(1);
  ep_figures_rpc_calls_open(-1);
  ep_figures_artifact_bytes(4096);
  int64_t started = ep_figures_clock();
  assert_true(started > 0);
  ep_figures_storage_txn(started);
  text = render();
  assert_true(value_of(text, "edgeprov_onboardings_total") == 2);
  assert_true(value_of(text, "edgeprov_onboarding_failures_total") == 1);
  assert_true(value_of(text, "edgeprov_rpc_calls_total{method=\"/a.B/C\",code=\"OK\"}") == 1);
  assert_true(value_of(text, "edgeprov_rpc_calls_open") == 1);
  assert_true(value_of(text, "edgeprov_artifact_served_bytes_total") == 4096);
  assert_true(value_of(text, "edgeprov_storage_txn_duration_seconds_count") == 1);
  free(text);
}

static void action_reports_give_durations_and_bytes_counted_once(void **state) {
  (void)state;
  assert_int_equal(ep_figures_register(), 0);
  char *text = render();
  double bytes0 = value_of(text, "edgeprov_workflow_streamed_bytes_total");
  free(text);
  ep_figures_action t = {0};
  /* action 0: started, progress, a retry that starts over, success */
  ep_figures_action_report(&t, 0, 1, 0, "RUNNING");
  ep_figures_action_report(&t, 0, 1, 100, "RUNNING");
  ep_figures_action_report(&t, 0, 1, 100, "RUNNING"); /* a repeat counts nothing */
  ep_figures_action_report(&t, 0, 2, 0, "RUNNING");
  ep_figures_action_report(&t, 0, 2, 300, "RUNNING");
  ep_figures_action_report(&t, 0, 2, 300, "SUCCESS");
  /* action 1 seen first mid-way (the stream resumed it): its earlier bytes and its duration
   * are not this stream's to count */
  ep_figures_action_report(&t, 1, 1, 5000, "RUNNING");
  ep_figures_action_report(&t, 1, 1, 5050, "FAILED");
  text = render();
  assert_true(value_of(text, "edgeprov_workflow_streamed_bytes_total") == bytes0 + 100 + 300 + 50);
  assert_true(value_of(text, "edgeprov_action_duration_seconds_count{result=\"SUCCESS\"}") == 1);
  assert_true(value_of(text, "edgeprov_action_duration_seconds_count{result=\"FAILED\"}") == -1);
  free(text);
  ep_figures_workflow_end(1, false); /* created in 1970: a long one, in the +Inf bucket */
  text = render();
  assert_true(value_of(text, "edgeprov_workflow_duration_seconds_bucket{result=\"SUCCESS\",le=\"7200\"}") == 0);
  assert_true(value_of(text, "edgeprov_workflow_duration_seconds_bucket{result=\"SUCCESS\",le=\"+Inf\"}") == 1);
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(hooks_do_nothing_until_registered_then_count),
      cmocka_unit_test(action_reports_give_durations_and_bytes_counted_once),
  };
  return cmocka_run_group_tests_name("figures", tests, NULL, NULL);
}
