/* Unit tests of core/lib/base/metrics.c: the Prometheus registry and its text format. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <edgeprov/abi.h>

#include "base/metrics.h"

static char *render(ep_metrics *r) {
  char *text = NULL;
  size_t len = 0;
  assert_int_equal(ep_metrics_render(r, &text, &len), 0);
  assert_int_equal(strlen(text), len);
  return text;
}

static size_t count_lines_starting(const char *text, const char *prefix) {
  size_t n = 0;
  for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
    n += strncmp(line, prefix, strlen(prefix)) == 0;
  return n;
}

static void counters_and_gauges_render_as_text_format_0_0_4(void **state) {
  (void)state;
  ep_metrics *r = NULL;
  assert_int_equal(ep_metrics_new(&r), 0);
  ep_metric *c = NULL, *g = NULL, *lc = NULL;
  assert_int_equal(ep_metrics_counter(&c, r, "t_things_total", "Things done.", NULL), 0);
  assert_int_equal(ep_metrics_gauge(&g, r, "t_open", "Open now.", NULL), 0);
  assert_int_equal(ep_metrics_counter(&lc, r, "t_calls_total", "Calls.", (const char *const[]){"method", "code", NULL}), 0);
  ep_metrics_add(c, NULL, 3);
  ep_metrics_add(c, NULL, 2);
  ep_metrics_gauge_add(g, NULL, 5);
  ep_metrics_gauge_add(g, NULL, -7);
  ep_metrics_add(lc, (const char *const[]){"/a.B/C", "OK"}, 1);
  ep_metrics_add(lc, (const char *const[]){"/a.B/C", "NOT_FOUND"}, 2);
  ep_metrics_add(lc, (const char *const[]){"/a.B/C", "OK"}, 1);
  char *text = render(r);
  assert_string_equal(text, "# HELP t_things_total Things done.\n"
                            "# TYPE t_things_total counter\n"
                            "t_things_total 5\n"
                            "# HELP t_open Open now.\n"
                            "# TYPE t_open gauge\n"
                            "t_open -2\n"
                            "# HELP t_calls_total Calls.\n"
                            "# TYPE t_calls_total counter\n"
                            "t_calls_total{method=\"/a.B/C\",code=\"OK\"} 2\n"
                            "t_calls_total{method=\"/a.B/C\",code=\"NOT_FOUND\"} 2\n");
  free(text);
  ep_metrics_gauge_set(g, NULL, 42);
  text = render(r);
  assert_non_null(strstr(text, "\nt_open 42\n"));
  free(text);
  ep_metrics_free(r);
}

static void help_and_label_values_are_escaped(void **state) {
  (void)state;
  ep_metrics *r = NULL;
  assert_int_equal(ep_metrics_new(&r), 0);
  ep_metric *c = NULL;
  assert_int_equal(ep_metrics_counter(&c, r, "t_total", "a \\ back\nslash", (const char *const[]){"v", NULL}), 0);
  ep_metrics_add(c, (const char *const[]){"say \"hi\" \\o/"}, 1);
  ep_metrics_add(c, (const char *const[]){"line\nbreak \xc3\xa9"}, 1); /* not printable ASCII: '?' */
  char *text = render(r);
  assert_string_equal(text, "# HELP t_total a \\\\ back\\nslash\n"
                            "# TYPE t_total counter\n"
                            "t_total{v=\"say \\\"hi\\\" \\\\o/\"} 1\n"
                            "t_total{v=\"line?break ??\"} 1\n");
  free(text);
  ep_metrics_free(r);
}

static void histogram_buckets_are_cumulative_with_inf_sum_and_count(void **state) {
  (void)state;
  ep_metrics *r = NULL;
  assert_int_equal(ep_metrics_new(&r), 0);
  ep_metric *h = NULL;
  const double bounds[] = {0.005, 1, 2.5};
  assert_int_equal(ep_metrics_histogram(&h, r, "t_seconds", "Durations.", (const char *const[]){"result", NULL},
                                        bounds, 3), 0);
  const char *const ok[] = {"SUCCESS"};
  ep_metrics_observe(h, ok, 0.5);
  ep_metrics_observe(h, ok, 1); /* le is inclusive */
  ep_metrics_observe(h, ok, 2);
  ep_metrics_observe(h, ok, 100);
  char *text = render(r);
  assert_string_equal(text, "# HELP t_seconds Durations.\n"
                            "# TYPE t_seconds histogram\n"
                            "t_seconds_bucket{result=\"SUCCESS\",le=\"0.005\"} 0\n"
                            "t_seconds_bucket{result=\"SUCCESS\",le=\"1\"} 2\n"
                            "t_seconds_bucket{result=\"SUCCESS\",le=\"2.5\"} 3\n"
                            "t_seconds_bucket{result=\"SUCCESS\",le=\"+Inf\"} 4\n"
                            "t_seconds_sum{result=\"SUCCESS\"} 103.5\n"
                            "t_seconds_count{result=\"SUCCESS\"} 4\n");
  free(text);
  ep_metrics_free(r);
}

static void label_sets_are_bounded_and_the_rest_counted_as_other(void **state) {
  (void)state;
  ep_metrics *r = NULL;
  assert_int_equal(ep_metrics_new(&r), 0);
  ep_metric *c = NULL;
  assert_int_equal(ep_metrics_counter(&c, r, "t_total", "Per node.", (const char *const[]){"node", NULL}), 0);
  char *text = render(r);
  assert_int_equal(count_lines_starting(text, "t_total{"), 0); /* "other" only once used */
  free(text);
  for (int i = 0; i < EP_METRICS_SETS_MAX + 10; i++) {
    char node[32];
    snprintf(node, sizeof node, "node-%d", i);
    ep_metrics_add(c, (const char *const[]){node}, 1);
    ep_metrics_add(c, (const char *const[]){node}, 1);
  }
  text = render(r);
  assert_int_equal(count_lines_starting(text, "t_total{"), EP_METRICS_SETS_MAX + 1);
  assert_non_null(strstr(text, "t_total{node=\"node-0\"} 2\n"));
  assert_non_null(strstr(text, "t_total{node=\"node-63\"} 2\n"));
  assert_null(strstr(text, "node-64"));
  assert_non_null(strstr(text, "t_total{node=\"other\"} 20\n"));
  free(text);
  /* A very long value is cut: it cannot grow a series past EP_METRICS_VALUE_MAX. */
  ep_metric *g = NULL;
  assert_int_equal(ep_metrics_gauge(&g, r, "t_g", "Long.", (const char *const[]){"v", NULL}), 0);
  char long_value[1000];
  memset(long_value, 'x', sizeof long_value - 1);
  long_value[sizeof long_value - 1] = '\0';
  ep_metrics_gauge_add(g, (const char *const[]){long_value}, 1);
  long_value[EP_METRICS_VALUE_MAX + 5] = '\0'; /* the same after the cut: the same series */
  ep_metrics_gauge_add(g, (const char *const[]){long_value}, 1);
  text = render(r);
  assert_int_equal(count_lines_starting(text, "t_g{"), 1);
  assert_non_null(strstr(text, "\"} 2\n"));
  free(text);
  ep_metrics_free(r);
}

static void registration_checks_names_labels_and_bounds(void **state) {
  (void)state;
  ep_metrics *r = NULL;
  assert_int_equal(ep_metrics_new(&r), 0);
  ep_metric *m = NULL;
  const double bounds[] = {1, 2};
  const double unsorted[] = {2, 1};
  assert_int_equal(ep_metrics_counter(&m, r, "9bad", "x", NULL), EP_EINVAL);
  assert_int_equal(ep_metrics_counter(&m, r, "bad-name", "x", NULL), EP_EINVAL);
  assert_int_equal(ep_metrics_counter(&m, r, "ok_total", "x", (const char *const[]){"__reserved", NULL}), EP_EINVAL);
  assert_int_equal(ep_metrics_counter(&m, r, "ok_total", "x", (const char *const[]){"a", "a", NULL}), EP_EINVAL);
  assert_int_equal(ep_metrics_counter(&m, r, "ok_total", "x", (const char *const[]){"a", "b", "c", "d", NULL}),
                   EP_EINVAL);
  assert_int_equal(ep_metrics_histogram(&m, r, "h", "x", (const char *const[]){"le", NULL}, bounds, 2), EP_EINVAL);
  assert_int_equal(ep_metrics_histogram(&m, r, "h", "x", NULL, unsorted, 2), EP_EINVAL);
  assert_int_equal(ep_metrics_histogram(&m, r, "h", "x", NULL, bounds, 0), EP_EINVAL);
  assert_int_equal(ep_metrics_counter(&m, r, "ok_total", "x", NULL), 0);
  assert_int_equal(ep_metrics_gauge(&m, r, "ok_total", "x", NULL), EP_EEXIST);
  ep_metrics_add(NULL, NULL, 1); /* a figure not registered: nothing */
  ep_metrics_observe(NULL, NULL, 1);
  ep_metrics_free(r);
}

static int collected;
static void collect_states(void *data, ep_metrics_sink *sink) {
  collected++;
  ep_metrics_sink_put(sink, (const char *const[]){"ONBOARDED"}, *(double *)data);
  ep_metrics_sink_put(sink, (const char *const[]){"REGISTERED"}, 0);
}

static void computed_gauges_collect_at_render_until_detached(void **state) {
  (void)state;
  ep_metrics *r = NULL;
  assert_int_equal(ep_metrics_new(&r), 0);
  ep_metric *m = NULL;
  double onboarded = 3;
  assert_int_equal(ep_metrics_gauge_fn(&m, r, "t_nodes", "Nodes.", (const char *const[]){"state", NULL},
                                       collect_states, &onboarded), 0);
  collected = 0;
  char *text = render(r);
  assert_string_equal(text, "# HELP t_nodes Nodes.\n# TYPE t_nodes gauge\n"
                            "t_nodes{state=\"ONBOARDED\"} 3\nt_nodes{state=\"REGISTERED\"} 0\n");
  free(text);
  assert_int_equal(collected, 1);
  ep_metrics_detach(m);
  text = render(r);
  assert_string_equal(text, "# HELP t_nodes Nodes.\n# TYPE t_nodes gauge\n");
  free(text);
  assert_int_equal(collected, 1);
  ep_metrics_free(r);
}

#define THREADS 4
#define ROUNDS 50000
typedef struct worker {
  ep_metric *counter, *histogram, *gauge;
  int id;
} worker;

static void *hammer(void *arg) {
  worker *w = arg;
  char label[16];
  for (int i = 0; i < ROUNDS; i++) {
    snprintf(label, sizeof label, "v%d", i % 3); /* the threads race to create the same sets */
    ep_metrics_add(w->counter, (const char *const[]){label}, 1);
    ep_metrics_observe(w->histogram, NULL, 0.5);
    ep_metrics_gauge_add(w->gauge, NULL, 1);
    ep_metrics_gauge_add(w->gauge, NULL, -1);
  }
  return NULL;
}

static void concurrent_updates_lose_nothing(void **state) {
  (void)state;
  ep_metrics *r = NULL;
  assert_int_equal(ep_metrics_new(&r), 0);
  worker w = {0};
  const double bounds[] = {1};
  assert_int_equal(ep_metrics_counter(&w.counter, r, "t_total", "x", (const char *const[]){"v", NULL}), 0);
  assert_int_equal(ep_metrics_histogram(&w.histogram, r, "t_seconds", "x", NULL, bounds, 1), 0);
  assert_int_equal(ep_metrics_gauge(&w.gauge, r, "t_open", "x", NULL), 0);
  pthread_t threads[THREADS];
  for (int i = 0; i < THREADS; i++) assert_int_equal(pthread_create(&threads[i], NULL, hammer, &w), 0);
  for (int i = 0; i < 20; i++) free(render(r)); /* renders while they run */
  for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
  char *text = render(r);
  uint64_t per_label = 0;
  for (int v = 0; v < 3; v++) {
    char line[64];
    snprintf(line, sizeof line, "t_total{v=\"v%d\"} ", v);
    const char *at = strstr(text, line);
    assert_non_null(at);
    per_label += strtoull(at + strlen(line), NULL, 10);
  }
  assert_int_equal(per_label, (uint64_t)THREADS * ROUNDS);
  assert_int_equal(count_lines_starting(text, "t_total{"), 3); /* each set made once */
  char expect[128];
  snprintf(expect, sizeof expect, "t_seconds_count %d\n", THREADS * ROUNDS);
  assert_non_null(strstr(text, expect));
  snprintf(expect, sizeof expect, "t_seconds_sum %d\n", THREADS * ROUNDS / 2);
  assert_non_null(strstr(text, expect));
  assert_non_null(strstr(text, "t_open 0\n"));
  free(text);
  ep_metrics_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(counters_and_gauges_render_as_text_format_0_0_4),
      cmocka_unit_test(help_and_label_values_are_escaped),
      cmocka_unit_test(histogram_buckets_are_cumulative_with_inf_sum_and_count),
      cmocka_unit_test(label_sets_are_bounded_and_the_rest_counted_as_other),
      cmocka_unit_test(registration_checks_names_labels_and_bounds),
      cmocka_unit_test(computed_gauges_collect_at_render_until_detached),
      cmocka_unit_test(concurrent_updates_lose_nothing),
  };
  return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
