/* Unit tests of core/lib/runtime/action.c: finding, parameter validation and running node actions
 * of the real test plugin alpha. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "runtime/action.h"
#include "base/error.h"
#include "runtime/site.h"
#include "testutil.h"

typedef struct fixture {
  char *dir;
  ep_site *site;
  ep_action_ref count;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_mkdtemp();
  char text[1024];
  snprintf(text, sizeof text, "paths = { plugins = [ \"%s\" ]; };\nplugins = { enabled = [ \"alpha\" ]; };\n",
           TEST_PLUGIN_DIR);
  char *path = tu_write(f->dir, "site.conf", text);
  ep_diags diags = {0};
  if (ep_site_open(&f->site, path, &diags) < 0 || diags.errors || ep_plugins_start(f->site->plugins, f->site->config) < 0)
    return -1;
  free(path);
  if (ep_actions_find(f->site->plugins, "test.count", &f->count) < 0) return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  ep_site_free(f->site);
  tu_rmdir(f->dir);
  free(f);
  return 0;
}

typedef struct progress_log {
  uint64_t done[16];
  uint64_t total;
  int calls;
} progress_log;

static void record_progress(void *data, uint64_t done, uint64_t total, const char *message) {
  progress_log *log = data;
  assert_string_equal(message, "counting");
  if (log->calls < 16) log->done[log->calls] = done;
  log->total = total;
  log->calls++;
}

static int run_with(fixture *f, const char *const *assignments, size_t count, progress_log *log, atomic_int *cancel) {
  ep_fields params;
  assert_int_equal(ep_action_params_new(&params, &f->count), 0);
  int r = ep_action_params_parse(&params, &f->count, assignments, count);
  if (r == 0) {
    ep_action_run_opts opts = {.progress = record_progress, .progress_data = log, .cancel = cancel};
    r = ep_action_run(&f->count, &params, &opts);
  }
  ep_fields_free(&params);
  return r;
}

static void keep_message(void *data, uint64_t done, uint64_t total, const char *message) {
  (void)done, (void)total;
  snprintf(data, 512, "%s", message);
}

static void a_run_gets_its_node_values_and_may_ask_for_a_restart(void **state) {
  fixture *f = *state;
  ep_action_ref ref;
  ep_fields params = {0};
  assert_int_equal(ep_actions_find(f->site->plugins, "test.run_values", &ref), 0);
  assert_int_equal(ep_action_params_new(&params, &ref), 0);
  char message[512] = "";
  ep_action_run_opts opts = {.progress = keep_message, .progress_data = message, .target_disk = "/dev/vdb",
                             .scratch_dir = "/var/lib/edgeprov-agent/scratch", .deadline = 1900000000};
  assert_int_equal(ep_action_run(&ref, &params, &opts), 0);
  assert_string_equal(message, "target=/dev/vdb scratch=/var/lib/edgeprov-agent/scratch deadline=1900000000");
  assert_string_equal(opts.reboot, "kexec");
  ep_action_run_opts bare = {.progress = keep_message, .progress_data = message};
  assert_int_equal(ep_action_run(&ref, &params, &bare), 0);
  assert_string_equal(message, "target=- scratch=- deadline=-"); /* unknown here: EP_ENOENT, *out untouched */
  ep_fields_free(&params);
}

static void runs_with_progress(void **state) {
  fixture *f = *state;
  progress_log log = {0};
  const char *args[] = {"steps=5"};
  assert_int_equal(run_with(f, args, 1, &log, NULL), 0);
  assert_int_equal(log.calls, 5);
  assert_int_equal(log.total, 5);
  for (int i = 0; i < 5; i++) assert_int_equal(log.done[i], i + 1);
}

static void failure_carries_the_plugin_message(void **state) {
  fixture *f = *state;
  progress_log log = {0};
  const char *args[] = {"steps=5", "fail_at=2"};
  assert_int_equal(run_with(f, args, 2, &log, NULL), EP_EFAILED);
  assert_string_equal(ep_error_message(), "action test.count (plugin alpha): failed at step 2 as asked");
  assert_int_equal(log.calls, 1);
}

static void cancellation_is_seen_by_the_action(void **state) {
  fixture *f = *state;
  progress_log log = {0};
  atomic_int cancel = 1;
  assert_int_equal(run_with(f, NULL, 0, &log, &cancel), EP_ECANCELED);
  assert_non_null(strstr(ep_error_message(), "cancelled at step 1"));
  assert_int_equal(log.calls, 0);
}

static void bad_parameters_are_named(void **state) {
  fixture *f = *state;
  progress_log log = {0};
  const char *misspelt[] = {"stesp=3"};
  assert_int_equal(run_with(f, misspelt, 1, &log, NULL), EP_EINVAL);
  assert_string_equal(ep_error_message(), "action test.count: unknown parameter 'stesp' (did you mean 'steps'?)");
  const char *range[] = {"steps=0"};
  assert_int_equal(run_with(f, range, 1, &log, NULL), EP_EINVAL);
  assert_non_null(strstr(ep_error_message(), "'steps': 0 is out of range [1, 1000]"));
  const char *shape[] = {"steps"};
  assert_int_equal(run_with(f, shape, 1, &log, NULL), EP_EINVAL);
  assert_non_null(strstr(ep_error_message(), "'steps' is not name=value"));
  assert_int_equal(log.calls, 0);
}

static void unknown_action_gets_a_suggestion(void **state) {
  fixture *f = *state;
  ep_action_ref ref;
  assert_int_equal(ep_actions_find(f->site->plugins, "test.cuont", &ref), EP_ENOENT);
  assert_string_equal(ep_error_message(), "no action 'test.cuont' (did you mean 'test.count'?)");
}

static void action_names(void **state) {
  (void)state;
  assert_true(ep_action_name_valid("disk.erase"));
  assert_true(ep_action_name_valid("image.stream_v2"));
  assert_true(ep_action_name_valid("a.b.c"));
  assert_false(ep_action_name_valid("erase"));
  assert_false(ep_action_name_valid("disk."));
  assert_false(ep_action_name_valid(".disk"));
  assert_false(ep_action_name_valid("Disk.erase"));
  assert_false(ep_action_name_valid("disk..erase"));
  assert_false(ep_action_name_valid("disk.9x"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(runs_with_progress, setup, teardown),
      cmocka_unit_test_setup_teardown(a_run_gets_its_node_values_and_may_ask_for_a_restart, setup, teardown),
      cmocka_unit_test_setup_teardown(failure_carries_the_plugin_message, setup, teardown),
      cmocka_unit_test_setup_teardown(cancellation_is_seen_by_the_action, setup, teardown),
      cmocka_unit_test_setup_teardown(bad_parameters_are_named, setup, teardown),
      cmocka_unit_test_setup_teardown(unknown_action_gets_a_suggestion, setup, teardown),
      cmocka_unit_test(action_names),
  };
  return cmocka_run_group_tests_name("action", tests, NULL, NULL);
}
