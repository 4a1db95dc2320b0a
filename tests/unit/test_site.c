/* Unit tests of core/lib/runtime/site.c: which config file a program uses, opening a site
 * (problems as diagnostics, the config applied to the plugins), the agent's site of one
 * capability, and the line that says why a plugin is unusable. Plugins are the real test
 * shared objects of tests/plugins. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/error.h"
#include "runtime/action.h"
#include "runtime/site.h"
#include "testutil.h"

static int setup(void **state) {
  *state = tu_mkdtemp();
  return *state ? 0 : -1;
}

static int teardown(void **state) {
  tu_rmdir(*state);
  return 0;
}

static void config_path_explicit_then_environment_then_system(void **state) {
  (void)state;
  setenv(EP_SITE_CONFIG_ENV, "/from/env.conf", 1);
  assert_string_equal(ep_site_config_path("/given.conf"), "/given.conf");
  assert_string_equal(ep_site_config_path(NULL), "/from/env.conf");
  const char *system_path = access(EP_SITE_CONFIG_SYSTEM, F_OK) == 0 ? EP_SITE_CONFIG_SYSTEM : NULL;
  setenv(EP_SITE_CONFIG_ENV, "", 1); /* empty is unset */
  const char *chosen = ep_site_config_path(NULL);
  unsetenv(EP_SITE_CONFIG_ENV);
  if (system_path)
    assert_string_equal(chosen, system_path);
  else
    assert_null(chosen); /* embedded defaults */
  const char *unset = ep_site_config_path(NULL);
  assert_true(unset == system_path);
}

static void open_without_a_file_runs_on_defaults(void **state) {
  (void)state;
  ep_diags diags = {0};
  ep_site *site = NULL;
  assert_int_equal(ep_site_open(&site, NULL, &diags), 0);
  assert_non_null(site);
  assert_null(site->config->path);
  char *default_dir = ep_config_default_plugin_dir();
  assert_int_equal(site->config->plugin_dirs.count, 1);
  assert_string_equal(site->config->plugin_dirs.items[0], default_dir);
  free(default_dir);
  assert_non_null(site->plugins);
  ep_diags_clear(&diags);
  ep_site_free(site);
  ep_site_free(NULL);
}

static void open_reports_problems_as_diagnostics(void **state) {
  char text[1024];
  snprintf(text, sizeof text,
           "paths = { plugins = [ \"/nonexistent/plugins\", \"%s\" ]; };\n"
           "plugins = { enabled = [ \"alpha\", \"beta\" ]; };\n"
           "alpha = { workers = 12; };\n",
           TEST_PLUGIN_DIR);
  char *path = tu_write(*state, "site.conf", text);
  ep_diags diags = {0};
  ep_site *site = NULL;
  assert_int_equal(ep_site_open(&site, path, &diags), 0);
  if (diags.errors) ep_diags_print(&diags, stderr);
  assert_int_equal(diags.errors, 0);
  /* A missing plugin directory is a warning, not an error. */
  assert_true(tu_has_diag(&diags, 0, "plugin directory /nonexistent/plugins: No such file or directory"));
  assert_string_equal(site->config->path, path);
  /* The config reached the plugins: enabled ones are ready with their settings, others off. */
  ep_plugin *alpha = ep_plugins_find(site->plugins, "alpha");
  assert_non_null(alpha);
  assert_int_equal(alpha->state, EP_PLUGIN_READY);
  int64_t workers = 0;
  assert_int_equal(ep_fields_get_int(&alpha->settings, "workers", &workers), 0);
  assert_int_equal(workers, 12);
  assert_int_equal(ep_plugins_find(site->plugins, "beta")->state, EP_PLUGIN_READY);
  assert_int_equal(ep_plugins_find(site->plugins, "flaky")->state, EP_PLUGIN_DISABLED);
  ep_diags_clear(&diags);
  ep_site_free(site);
  free(path);

  /* A config with errors still opens (every problem is reported at once) but is not usable. */
  snprintf(text, sizeof text,
           "paths = { plugins = [ \"%s\" ]; };\nplugns = { };\nalpha = { workers = 999; };\n", TEST_PLUGIN_DIR);
  path = tu_write(*state, "bad.conf", text);
  site = NULL;
  assert_int_equal(ep_site_open(&site, path, &diags), 0);
  assert_non_null(site);
  assert_true(diags.errors >= 2);
  assert_true(tu_has_diag(&diags, 0, "plugns"));
  assert_true(tu_has_diag(&diags, 0, "workers"));
  ep_diags_clear(&diags);
  ep_site_free(site);
  free(path);
}

static void open_fails_without_a_readable_config(void **state) {
  char *missing = tu_path(*state, "missing.conf");
  ep_diags diags = {0};
  ep_site *site = (ep_site *)0x1;
  assert_int_equal(ep_site_open(&site, missing, &diags), EP_ENOENT);
  assert_ptr_equal(site, (ep_site *)0x1);
  assert_true(diags.errors > 0);
  ep_diags_clear(&diags);
  free(missing);

  char *garbled = tu_write(*state, "garbled.conf", "paths = { data = ; \n");
  assert_int_equal(ep_site_open(&site, garbled, &diags), EP_EINVAL);
  assert_ptr_equal(site, (ep_site *)0x1);
  assert_true(tu_has_diag(&diags, 1, ""));
  ep_diags_clear(&diags);
  free(garbled);
}

static void open_for_starts_only_the_plugins_of_one_capability(void **state) {
  ep_diags diags = {0};
  ep_site *site = NULL;
  assert_int_equal(ep_site_open_for(&site, TEST_PLUGIN_DIR, *state, EP_CAP_ACTIONS, &diags), 0);
  assert_string_equal(site->config->data_dir, *state);
  assert_int_equal(site->config->plugins_enabled.count, 1);
  assert_string_equal(site->config->plugins_enabled.items[0], "alpha");
  assert_int_equal(ep_plugins_find(site->plugins, "alpha")->state, EP_PLUGIN_ACTIVE);
  assert_int_equal(ep_plugins_find(site->plugins, "beta")->state, EP_PLUGIN_DISABLED);
  assert_int_equal(ep_plugins_find(site->plugins, "flaky")->state, EP_PLUGIN_DISABLED); /* never initialised */
  assert_int_equal(site->plugins->started_count, 1);
  assert_non_null(ep_plugins_capability(site->plugins, EP_CAP_ACTIONS, NULL));
  ep_site_free(site);
  ep_diags_clear(&diags);

  /* A capability nobody offers: a site with nothing started. */
  site = NULL;
  assert_int_equal(ep_site_open_for(&site, TEST_PLUGIN_DIR, *state, EP_CAP_OS, &diags), 0);
  assert_int_equal(site->plugins->started_count, 0);
  assert_int_equal(ep_plugins_find(site->plugins, "alpha")->state, EP_PLUGIN_DISABLED);
  ep_site_free(site);
  ep_diags_clear(&diags);

  /* A plugin of that capability whose required setting nobody can give on a node: it starts
   * without a value for it (its init does not need it), and the lookup answers EP_ENOENT. */
  site = NULL;
  assert_int_equal(ep_site_open_for(&site, TEST_PLUGIN_REQUIRED_DIR, *state, "com.example.widget/1", &diags), 0);
  ep_plugin *gamma = ep_plugins_find(site->plugins, "gamma");
  assert_int_equal(gamma->state, EP_PLUGIN_ACTIVE);
  const char *endpoint = "untouched";
  assert_int_equal(ep_fields_get_string(&gamma->settings, "endpoint", &endpoint), EP_ENOENT);
  assert_string_equal(endpoint, "untouched");
  int64_t timeout = 0;
  assert_int_equal(ep_fields_get_int(&gamma->settings, "timeout_s", &timeout), 0);
  assert_int_equal(timeout, 30); /* the declared default */
  assert_int_equal(diags.count, 0);
  ep_site_free(site);
  ep_diags_clear(&diags);
}

/* The node-side rule (sdk/include/edgeprov/plugin.h): no site config on a node, so a plugin
 * whose init insists on a required setting cannot start there, and the warning names its file
 * and its own reason; a plugin offering an OS profile and actions serves its actions. */
static void open_for_on_a_node_gives_no_settings_and_names_what_cannot_start(void **state) {
  ep_diags diags = {0};
  ep_site *site = NULL;
  ep_error_clear();
  assert_int_equal(ep_site_open_for(&site, TEST_PLUGIN_NODE_DIR, *state, EP_CAP_ACTIONS, &diags), 0);
  assert_int_equal(diags.errors, 0);
  assert_int_equal(diags.count, 1);
  char want[512];
  snprintf(want, sizeof want, "plugin %s/needy.so: init failed: setting 'endpoint' is required", TEST_PLUGIN_NODE_DIR);
  assert_string_equal(diags.items[0].message, want);
  assert_int_equal(diags.items[0].severity, EP_DIAG_WARNING);
  ep_plugin *needy = ep_plugins_find(site->plugins, "needy");
  assert_int_equal(needy->state, EP_PLUGIN_FAILED);
  ep_plugin *osact = ep_plugins_find(site->plugins, "osact");
  assert_int_equal(osact->state, EP_PLUGIN_ACTIVE);
  assert_int_equal(site->plugins->started_count, 1);
  const char *url = "untouched";
  assert_int_equal(ep_fields_get_string(&osact->settings, "image_url", &url), EP_ENOENT);
  /* The OS plugin's actions are there; the failed plugin's are not. */
  ep_action_ref ref;
  assert_int_equal(ep_actions_find(site->plugins, "test.count", &ref), 0);
  assert_ptr_equal(ref.plugin, osact);
  assert_int_equal(ep_actions_find(site->plugins, "needy.count", &ref), EP_ENOENT);
  ep_site_free(site);
  ep_diags_clear(&diags);

  /* Refused files are named with the loader's reason; the good plugin still starts. */
  site = NULL;
  assert_int_equal(ep_site_open_for(&site, TEST_PLUGIN_DIR, *state, EP_CAP_ACTIONS, &diags), 0);
  assert_int_equal(diags.errors, 0);
  snprintf(want, sizeof want, "plugin %s/abi-major.so: refused: ABI major mismatch", TEST_PLUGIN_DIR);
  assert_true(tu_has_diag(&diags, 0, want));
  snprintf(want, sizeof want, "plugin %s/no-entry.so: refused: not a plugin", TEST_PLUGIN_DIR);
  assert_true(tu_has_diag(&diags, 0, want));
  assert_int_equal(ep_plugins_find(site->plugins, "alpha")->state, EP_PLUGIN_ACTIVE);
  ep_site_free(site);
  ep_diags_clear(&diags);
}

static void plugin_problem_line_says_why(void **state) {
  (void)state;
  char buf[256];
  ep_plugin p = {.path = "/lib/p/x.so", .state = EP_PLUGIN_REFUSED, .reason = "ABI major mismatch"};
  assert_true(ep_site_plugin_problem(&p, buf, sizeof buf));
  assert_string_equal(buf, "plugin /lib/p/x.so: refused: ABI major mismatch");
  p.required = true;
  assert_true(ep_site_plugin_problem(&p, buf, sizeof buf));
  assert_string_equal(buf, "plugin /lib/p/x.so: required plugin refused: ABI major mismatch");
  p = (ep_plugin){.path = "/lib/p/x.so", .state = EP_PLUGIN_FAILED, .reason = "init failed: vendor down"};
  assert_true(ep_site_plugin_problem(&p, buf, sizeof buf));
  assert_string_equal(buf, "plugin /lib/p/x.so: init failed: vendor down");
  p.reason = NULL;
  assert_true(ep_site_plugin_problem(&p, buf, sizeof buf));
  assert_string_equal(buf, "plugin /lib/p/x.so: no reason recorded");

  /* Fine, or merely disabled: no line. */
  ep_plugin_state fine[] = {EP_PLUGIN_READY, EP_PLUGIN_DISABLED, EP_PLUGIN_ACTIVE};
  for (size_t i = 0; i < 3; i++) {
    strcpy(buf, "untouched");
    p.state = fine[i];
    p.reason = "stale reason";
    assert_false(ep_site_plugin_problem(&p, buf, sizeof buf));
    assert_string_equal(buf, "untouched");
  }

  /* The line is cut to the buffer. */
  p = (ep_plugin){.path = "/lib/p/x.so", .state = EP_PLUGIN_REFUSED, .reason = "long reason"};
  char small[12];
  memset(small, 'x', sizeof small);
  assert_true(ep_site_plugin_problem(&p, small, sizeof small));
  assert_string_equal(small, "plugin /lib");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(config_path_explicit_then_environment_then_system),
      cmocka_unit_test(open_without_a_file_runs_on_defaults),
      cmocka_unit_test_setup_teardown(open_reports_problems_as_diagnostics, setup, teardown),
      cmocka_unit_test_setup_teardown(open_fails_without_a_readable_config, setup, teardown),
      cmocka_unit_test_setup_teardown(open_for_starts_only_the_plugins_of_one_capability, setup, teardown),
      cmocka_unit_test(plugin_problem_line_says_why),
      cmocka_unit_test_setup_teardown(open_for_on_a_node_gives_no_settings_and_names_what_cannot_start, setup, teardown),
  };
  return cmocka_run_group_tests_name("site", tests, NULL, NULL);
}
