/* Unit tests of core/lib/runtime/plugin_loader.c, the loader: each accepted and refused case is a real
 * shared object built from tests/plugins/test_plugin.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "runtime/action.h"
#include "base/error.h"
#include "runtime/host_services.h"
#include "runtime/site.h"
#include "testutil.h"

static ep_plugin *by_file(const ep_plugin_set *set, const char *file) {
  for (size_t i = 0; i < set->count; i++) {
    const char *slash = strrchr(set->items[i]->path, '/');
    if (strcmp(slash + 1, file) == 0) return set->items[i];
  }
  fail_msg("no %s in the scan", file);
  return NULL;
}

static void assert_refused(const ep_plugin_set *set, const char *file, const char *why) {
  ep_plugin *p = by_file(set, file);
  assert_int_equal(p->state, EP_PLUGIN_REFUSED);
  assert_non_null(p->reason);
  if (!strstr(p->reason, why)) fail_msg("%s: reason \"%s\" lacks \"%s\"", file, p->reason, why);
}

static void scan_refuses_each_bad_case_and_keeps_the_good(void **state) {
  (void)state;
  char *dirs_items[] = {TEST_PLUGIN_DIR};
  ep_strv dirs = {dirs_items, 1};
  ep_plugin_set *set = NULL;
  assert_int_equal(ep_plugins_scan(&set, &dirs, NULL, 0), 0);
  assert_int_equal(set->count, 10);
  assert_int_equal(by_file(set, "alpha.so")->state, EP_PLUGIN_READY);
  assert_int_equal(by_file(set, "beta.so")->state, EP_PLUGIN_READY);
  assert_int_equal(by_file(set, "init-fails.so")->state, EP_PLUGIN_READY);
  assert_refused(set, "no-entry.so", "not a plugin (no entry symbol 'ep_plugin')");
  char want[128];
  snprintf(want, sizeof want, "ABI major mismatch: plugin built for ABI %d.%d, host is %d.%d", EP_ABI_MAJOR + 1,
           EP_ABI_MINOR, EP_ABI_MAJOR, EP_ABI_MINOR);
  assert_refused(set, "abi-major.so", want);
  snprintf(want, sizeof want, "ABI minor newer than the host: plugin built for ABI %d.%d, host is %d.%d", EP_ABI_MAJOR,
           EP_ABI_MINOR + 1, EP_ABI_MAJOR, EP_ABI_MINOR);
  assert_refused(set, "abi-minor.so", want);
  assert_refused(set, "bad-signature.so", "bad build signature 0x01040804: pointer 4, off_t 8, time_t 4 bytes");
  assert_refused(set, "duplicate-alpha.so", "duplicate plugin ID 'alpha' (already loaded from " TEST_PLUGIN_DIR "/alpha.so)");
  assert_refused(set, "unknown-cap.so", "unknown capability ID 'edgeprov.teleport/1'");
  assert_refused(set, "bad-decl.so", "invalid setting declaration: field 'retries': bad default");
  assert_null(by_file(set, "no-entry.so")->entry);
  assert_ptr_equal(ep_plugins_find(set, "alpha"), by_file(set, "alpha.so"));
  assert_null(ep_plugins_find(set, "major"));
  ep_plugin_set_free(set);
}

static void missing_directory_is_a_note(void **state) {
  (void)state;
  char *dirs_items[] = {"/nonexistent/plugins", TEST_PLUGIN_DIR};
  ep_strv dirs = {dirs_items, 2};
  ep_plugin_set *set = NULL;
  assert_int_equal(ep_plugins_scan(&set, &dirs, NULL, 0), 0);
  assert_int_equal(set->notes.count, 1);
  assert_non_null(strstr(set->notes.items[0], "/nonexistent/plugins: No such file or directory"));
  assert_int_equal(set->count, 10);
  ep_plugin_set_free(set);
}

/* Copies the test plugin alpha.so into dir with mode, scans dir and returns the plugin's state
 * (its reason in reason). */
static ep_plugin_state scan_copy_with_mode(const char *dir, mode_t mode, char *reason, size_t len) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "cp '%s/alpha.so' '%s/alpha.so'", TEST_PLUGIN_DIR, dir);
  assert_int_equal(system(cmd), 0);
  char *path = tu_path(dir, "alpha.so");
  assert_int_equal(chmod(path, mode), 0);
  char *dirs_items[] = {(char *)dir};
  ep_strv dirs = {dirs_items, 1};
  ep_plugin_set *set = NULL;
  assert_int_equal(ep_plugins_scan(&set, &dirs, NULL, 0), 0);
  assert_int_equal(set->count, 1);
  ep_plugin_state state = set->items[0]->state;
  snprintf(reason, len, "%s", set->items[0]->reason ? set->items[0]->reason : "");
  ep_plugin_set_free(set);
  free(path);
  return state;
}

/* Anyone who may write a plugin file may run code in edgeprovd: such a file is never loaded. */
static void world_writable_plugin_file_is_refused(void **state) {
  char reason[512];
  assert_int_equal(scan_copy_with_mode(*state, 0755, reason, sizeof reason), EP_PLUGIN_READY);
  assert_int_equal(scan_copy_with_mode(*state, 0757, reason, sizeof reason), EP_PLUGIN_REFUSED);
  assert_string_equal(reason, "insecure: the file is writable by any user (chmod go-w)");
  assert_int_equal(scan_copy_with_mode(*state, 0666, reason, sizeof reason), EP_PLUGIN_REFUSED);
  assert_int_equal(scan_copy_with_mode(*state, 0775, reason, sizeof reason), EP_PLUGIN_REFUSED);
  assert_string_equal(reason, "insecure: the file is writable by its group (chmod go-w)");
  assert_int_equal(scan_copy_with_mode(*state, 0644, reason, sizeof reason), EP_PLUGIN_READY);

  /* A directory others may write to lets them swap the file: what it holds is refused. */
  const char *dir_modes[] = {"its group", "any user"};
  for (int i = 0; i < 2; i++) {
    assert_int_equal(chmod(*state, i == 0 ? 0775 : 01777), 0);
    assert_int_equal(scan_copy_with_mode(*state, 0755, reason, sizeof reason), EP_PLUGIN_REFUSED);
    if (!strstr(reason, "insecure: its directory") || !strstr(reason, dir_modes[i]) || !strstr(reason, *state))
      fail_msg("reason \"%s\"", reason);
  }
  assert_int_equal(chmod(*state, 0755), 0);

  /* Through a symbolic link the file it names is checked. */
  char *dir = tu_path(*state, "linked");
  assert_int_equal(mkdir(dir, 0755), 0);
  char *target = tu_path(*state, "alpha.so"), *link = tu_path(dir, "alpha.so");
  assert_int_equal(chmod(target, 0777), 0);
  assert_int_equal(symlink(target, link), 0);
  char *dirs_items[] = {dir};
  ep_strv dirs = {dirs_items, 1};
  ep_plugin_set *set = NULL;
  assert_int_equal(ep_plugins_scan(&set, &dirs, NULL, 0), 0);
  assert_int_equal(set->items[0]->state, EP_PLUGIN_REFUSED);
  assert_non_null(strstr(set->items[0]->reason, "writable by any user"));
  assert_null(set->items[0]->handle); /* refused before it was ever opened */
  ep_plugin_set_free(set);
  free(target);
  free(link);
  free(dir);
}

/* Opens a site on the mixed test plugins with the given plugins group; trace goes to dir. */
static ep_site *open_mixed(const char *dir, const char *plugins_group, char **trace_out) {
  char text[4096];
  char *trace = NULL;
  assert_true(asprintf(&trace, "%s/trace", dir) > 0);
  snprintf(text, sizeof text,
           "paths = { plugins = [ \"%s\" ]; };\n%s\n"
           "alpha = { trace_file = \"%s\"; workers = 8; };\n"
           "beta = { trace_file = \"%s\"; };\n",
           TEST_PLUGIN_DIR, plugins_group, trace, trace);
  char *path = tu_write(dir, "site.conf", text);
  ep_diags diags = {0};
  ep_site *site = NULL;
  assert_int_equal(ep_site_open(&site, path, &diags), 0);
  if (diags.errors) ep_diags_print(&diags, stderr);
  assert_int_equal(diags.errors, 0);
  ep_diags_clear(&diags);
  free(path);
  *trace_out = trace;
  return site;
}

static char *read_all(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return strdup("");
  static char buf[4096];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  return strdup(buf);
}

static void optional_failure_is_skipped_and_deinit_runs_in_reverse(void **state) {
  char *trace = NULL;
  ep_site *site = open_mixed(*state, "plugins = { enabled = [ \"beta\", \"flaky\", \"alpha\" ]; };", &trace);
  assert_int_equal(ep_plugins_start(site->plugins, site->config), 0);
  ep_plugin *flaky = ep_plugins_find(site->plugins, "flaky");
  assert_int_equal(flaky->state, EP_PLUGIN_FAILED);
  assert_string_equal(flaky->reason, "init failed: cannot reach the vendor API at https://vendor.invalid");
  char line[2048];
  assert_true(ep_site_plugin_problem(flaky, line, sizeof line));
  assert_non_null(strstr(line, "init-fails.so: init failed: cannot reach the vendor API"));
  assert_int_equal(site->plugins->started_count, 2);
  assert_string_equal(site->plugins->started[0]->entry->id, "beta");
  assert_string_equal(site->plugins->started[1]->entry->id, "alpha");
  /* The settings reached the plugin through the host table. */
  int64_t workers = 0;
  ep_plugin *alpha = ep_plugins_find(site->plugins, "alpha");
  assert_int_equal(ep_host_table()->setting_int(&alpha->ctx, "workers", &workers), 0);
  assert_int_equal(workers, 8);
  ep_plugins_stop(site->plugins);
  char *events = read_all(trace);
  assert_string_equal(events, "init:beta\ninit:alpha\ndeinit:alpha\ndeinit:beta\n");
  free(events);
  ep_site_free(site);
  free(trace);
}

static void required_failure_stops_startup(void **state) {
  char *trace = NULL;
  ep_site *site = open_mixed(*state, "plugins = { enabled = [ \"alpha\", \"flaky\" ]; required = [ \"flaky\" ]; };",
                             &trace);
  assert_int_equal(ep_plugins_start(site->plugins, site->config), EP_EFAILED);
  assert_non_null(strstr(ep_error_message(), "required plugin 'flaky' (" TEST_PLUGIN_DIR "/init-fails.so): init failed: "
                                             "cannot reach the vendor API"));
  assert_int_equal(site->plugins->started_count, 0);
  char *events = read_all(trace);
  assert_string_equal(events, "init:alpha\ndeinit:alpha\n"); /* what started was stopped */
  free(events);
  ep_site_free(site);
  free(trace);
}

static void refused_required_plugin_is_reported(void **state) {
  char text[1024];
  snprintf(text, sizeof text,
           "paths = { plugins = [ \"%s\" ]; };\n"
           "plugins = { enabled = [ \"alpha\", \"major\" ]; required = [ \"major\" ]; };\n",
           TEST_PLUGIN_DIR);
  char *path = tu_write(*state, "major.conf", text);
  ep_diags diags = {0};
  ep_site *site = NULL;
  assert_int_equal(ep_site_open(&site, path, &diags), 0);
  assert_true(tu_has_diag(&diags, 0, "required plugin 'major' missing: not found in " TEST_PLUGIN_DIR));
  /* The message lists the files that were refused there, with why: one may be it. */
  assert_true(tu_has_diag(&diags, 0, "; refused there: "));
  assert_true(tu_has_diag(&diags, 0, TEST_PLUGIN_DIR "/abi-major.so (ABI major mismatch: plugin built for ABI"));
  ep_diags_clear(&diags);
  ep_site_free(site);
  free(path);

  /* A plugin named by its file, refused: required and configured, each says why. */
  snprintf(text, sizeof text,
           "paths = { plugins = [ \"%s\" ]; };\n"
           "plugins = { required = [ \"abi-major\" ]; };\n"
           "abi-major = { workers = 2; };\n",
           TEST_PLUGIN_DIR);
  path = tu_write(*state, "major-by-file.conf", text);
  assert_int_equal(ep_site_open(&site, path, &diags), 0);
  assert_true(tu_has_diag(&diags, 3, "section 'abi-major' configures plugin " TEST_PLUGIN_DIR
                                     "/abi-major.so, which was refused: ABI major mismatch"));
  assert_false(tu_has_diag(&diags, 3, "unknown key"));
  assert_true(tu_has_diag(&diags, 0, "required plugin 'abi-major' refused: " TEST_PLUGIN_DIR
                                     "/abi-major.so: ABI major mismatch"));
  ep_diags_clear(&diags);
  ep_site_free(site);
  free(path);
}

static void capabilities_are_registered_and_looked_up(void **state) {
  char *trace = NULL;
  ep_site *site = open_mixed(*state, "plugins = { enabled = [ \"alpha\", \"beta\" ]; };", &trace);
  assert_null(ep_plugins_capability(site->plugins, EP_CAP_ACTIONS, NULL)); /* nothing before start */
  assert_int_equal(ep_plugins_start(site->plugins, site->config), 0);
  ep_plugin *owner = NULL;
  const ep_actions *actions = ep_plugins_capability(site->plugins, EP_CAP_ACTIONS, &owner);
  assert_non_null(actions);
  assert_string_equal(owner->entry->id, "alpha");
  assert_int_equal(actions->actions_count, 2); /* test.run_values, test.count */
  ep_plugin *beta = ep_plugins_find(site->plugins, "beta");
  void *provider_state = NULL;
  assert_ptr_equal(ep_host_table()->capability(&beta->ctx, EP_CAP_ACTIONS, &provider_state), actions);
  assert_ptr_equal(provider_state, owner->instance);
  assert_null(ep_host_table()->capability(&beta->ctx, EP_CAP_STORAGE, &provider_state));
  const char *data_dir = NULL;
  assert_int_equal(ep_host_table()->site_string(&beta->ctx, "paths.data", &data_dir), 0);
  assert_string_equal(data_dir, "/var/lib/edgeprov");
  assert_int_equal(ep_host_table()->site_string(&beta->ctx, "paths.nothing", &data_dir), EP_EINVAL);
  ep_site_free(site);
  free(trace);
}

static void capability_ids(void **state) {
  (void)state;
  bool known = false;
  assert_true(ep_capability_id_valid("edgeprov.os/1", &known));
  assert_true(known);
  assert_true(ep_capability_id_valid("edgeprov.os/2", &known));
  assert_false(known);
  assert_true(ep_capability_id_valid("com.vendor.thing/3", &known));
  assert_true(known);
  assert_false(ep_capability_id_valid("edgeprov.os", NULL));
  assert_false(ep_capability_id_valid("nodot/1", NULL));
  assert_false(ep_capability_id_valid("com..x/1", NULL));
  assert_false(ep_capability_id_valid("com.x/0", NULL));
  assert_false(ep_capability_id_valid("com.x/1a", NULL));
  assert_false(ep_capability_id_valid("Com.x/1", NULL));
}

static int setup(void **state) {
  *state = tu_mkdtemp();
  return *state ? 0 : -1;
}

static int teardown(void **state) {
  tu_rmdir(*state);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(scan_refuses_each_bad_case_and_keeps_the_good),
      cmocka_unit_test(missing_directory_is_a_note),
      cmocka_unit_test_setup_teardown(world_writable_plugin_file_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(optional_failure_is_skipped_and_deinit_runs_in_reverse, setup, teardown),
      cmocka_unit_test_setup_teardown(required_failure_stops_startup, setup, teardown),
      cmocka_unit_test_setup_teardown(refused_required_plugin_is_reported, setup, teardown),
      cmocka_unit_test_setup_teardown(capabilities_are_registered_and_looked_up, setup, teardown),
      cmocka_unit_test(capability_ids),
  };
  return cmocka_run_group_tests_name("plugin", tests, NULL, NULL);
}
