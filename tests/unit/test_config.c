/* Unit tests of core/lib/runtime/config.c (and the config side of site.c): core keys, defaults,
 * file:line diagnostics, did-you-mean, plugin sections checked against declared settings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "net/https.h"
#include "runtime/config.h"
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

static void embedded_defaults(void **state) {
  (void)state;
  ep_config *c = NULL;
  assert_int_equal(ep_config_new_defaults(&c, "/opt/plugins"), 0);
  assert_null(c->path);
  assert_string_equal(c->listen_management, "unix:/run/edgeprov/edgeprov.sock");
  assert_string_equal(c->data_dir, "/var/lib/edgeprov");
  assert_int_equal(c->mode, EP_MODE_NZTP);
  assert_int_equal(c->plugin_dirs.count, 1);
  assert_string_equal(c->plugin_dirs.items[0], "/opt/plugins");
  assert_false(c->plugins_enabled_set);
  assert_true(ep_config_plugin_enabled(c, "anything"));
  assert_int_equal(c->https.threads, EP_HTTPS_THREADS_DEFAULT);
  assert_int_equal(c->https.handler_threads, EP_HTTPS_HANDLER_THREADS_DEFAULT);
  assert_int_equal(c->https.connections_max, 1024);
  assert_int_equal(c->https.connections_per_ip, 256);
  assert_int_equal(c->https.header_timeout_s, 10);
  assert_int_equal(c->https.idle_timeout_s, 30);
  ep_config_free(c);
}

/* https.*: read with their bounds; connections_per_ip follows connections_max unless set, and
 * may not exceed it. */
static void https_limits(void **state) {
  char *path = tu_write(*state, "https.conf",
                        "https = { threads = 2; handler_threads = 3; connections_max = 400;\n"
                        "          header_timeout_s = 5; idle_timeout_s = 60; };\n");
  ep_diags diags = {0};
  ep_config *c = NULL;
  assert_int_equal(ep_config_load(&c, path, NULL, &diags), 0);
  assert_int_equal(diags.errors, 0);
  assert_int_equal(c->https.threads, 2);
  assert_int_equal(c->https.handler_threads, 3);
  assert_int_equal(c->https.connections_max, 400);
  assert_int_equal(c->https.connections_per_ip, 100); /* a quarter */
  assert_int_equal(c->https.header_timeout_s, 5);
  assert_int_equal(c->https.idle_timeout_s, 60);
  ep_config_free(c);
  free(path);

  path = tu_write(*state, "https2.conf", "https = { connections_max = 400; connections_per_ip = 400; };\n");
  assert_int_equal(ep_config_load(&c, path, NULL, &diags), 0);
  assert_int_equal(diags.errors, 0);
  assert_int_equal(c->https.connections_per_ip, 400);
  ep_config_free(c);
  free(path);

  path = tu_write(*state, "bad_https.conf",
                  "https = {\n"
                  "  threads = 0;\n"                  /* 2: out of range */
                  "  header_timeout_s = \"10\";\n"    /* 3: a string */
                  "  connections_max = 100;\n"
                  "  connections_per_ip = 101;\n"     /* 5: over connections_max */
                  "  idle_timeot_s = 5;\n"            /* 6: misspelt */
                  "};\n");
  assert_int_equal(ep_config_load(&c, path, NULL, &diags), 0);
  assert_true(tu_has_diag(&diags, 2, "'https.threads': 0 is out of range [1, 64]"));
  assert_true(tu_has_diag(&diags, 3, "'https.header_timeout_s': expected an integer, got a string"));
  assert_true(tu_has_diag(&diags, 5, "'https.connections_per_ip': 101 is more than https.connections_max (100)"));
  assert_true(tu_has_diag(&diags, 6, "unknown key 'https.idle_timeot_s' (did you mean 'idle_timeout_s'?)"));
  assert_int_equal(diags.errors, 4);
  assert_int_equal(c->https.threads, EP_HTTPS_THREADS_DEFAULT); /* a bad value keeps its default */
  ep_config_free(c);
  ep_diags_clear(&diags);
  free(path);
}

/* secrets.recovery_key_file: an absolute path to a file that can be read (its rules, owner-only
 * and long enough, are checked where it is read: provisioning/recovery_keys.c). */
static void the_recovery_key_file_is_an_absolute_readable_path(void **state) {
  const char *bad[] = {"secrets = { recovery_key_file = \"recovery.key\"; };\n",
                       "secrets = { recovery_key_file = \"/nonexistent/recovery.key\"; };\n",
                       "secrets = { recovery_keyfile = \"/etc/hostname\"; };\n"};
  const char *why[] = {"must be an absolute path", "file cannot be read", "did you mean 'recovery_key_file'"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char *path = tu_write(*state, "bad.conf", bad[i]);
    ep_diags diags = {0};
    ep_config *c = NULL;
    assert_int_equal(ep_config_load(&c, path, "/default", &diags), 0);
    assert_int_equal(diags.errors, 1);
    assert_true(tu_has_diag(&diags, 1, why[i]));
    ep_config_free(c);
    ep_diags_clear(&diags);
    free(path);
  }
  ep_config *c = NULL;
  assert_int_equal(ep_config_new_defaults(&c, "/default"), 0);
  assert_null(c->recovery_key_file); /* none by default: the site keeps no recovery keys */
  ep_config_free(c);
}

static void reads_every_core_key(void **state) {
  char *cert = tu_write(*state, "cert.pem", "x");
  char *key = tu_write(*state, "key.pem", "x");
  char text[2048];
  snprintf(text, sizeof text,
           "listen = { management = \"127.0.0.1:7001\"; grpc = \"[::1]:7443\"; https = \"0.0.0.0:0\"; };\n"
           "paths = { data = \"/srv/edgeprov\"; plugins = [ \"/a\", \"/b\" ]; };\n"
           "tls = { cert = \"%s\"; key = \"%s\"; };\n"
           "provisioning = { mode = \"non-ZTP\"; };\n"
           "plugins = { enabled = [ \"beta\", \"alpha\" ]; required = [ \"alpha\" ]; };\n"
           "auth = { operator_token_file = \"%s\"; };\n"
           "secrets = { recovery_key_file = \"%s\"; };\n",
           cert, key, key, key);
  char *path = tu_write(*state, "good.conf", text);
  ep_diags diags = {0};
  ep_config *c = NULL;
  assert_int_equal(ep_config_load(&c, path, "/default", &diags), 0);
  assert_int_equal(diags.errors, 0);
  assert_string_equal(c->listen_management, "127.0.0.1:7001");
  assert_string_equal(c->listen_grpc, "[::1]:7443");
  assert_string_equal(c->data_dir, "/srv/edgeprov");
  assert_int_equal(c->plugin_dirs.count, 2);
  assert_string_equal(c->plugin_dirs.items[1], "/b");
  assert_string_equal(c->tls_cert, cert);
  assert_string_equal(c->operator_token_file, key);
  assert_string_equal(c->recovery_key_file, key);
  assert_int_equal(c->mode, EP_MODE_NON_ZTP);
  assert_true(c->plugins_enabled_set);
  assert_string_equal(c->plugins_enabled.items[0], "beta");
  assert_true(ep_config_plugin_required(c, "alpha"));
  assert_false(ep_config_plugin_enabled(c, "gamma"));
  ep_config_free(c);
  ep_diags_clear(&diags);
  free(cert);
  free(key);
  free(path);
}

static void core_errors_name_line_and_reason(void **state) {
  char *path = tu_write(*state, "bad.conf",
                        "listen = {\n"
                        "  managment = \"unix:/run/x.sock\";\n" /* 2: misspelt */
                        "  grpc = \"nohostport\";\n"            /* 3: bad address */
                        "  https = \"unix:/run/https.sock\";\n" /* 4: unix not allowed */
                        "};\n"
                        "paths = { data = 5; plugins = \"/one\"; };\n" /* 6: wrong types */
                        "provisioning = { mode = \"zero\"; }; onboarding = { tpm_identity = \"sometimes\"; };\n" /* 7 */
                        "plugins = { enabled = [ \"Bad_ID\" ]; required = [ \"other\" ]; };\n" /* 8 */
                        "tls = { ca = \"relative.pem\"; key = \"/etc/passwd\"; };\n"); /* 9 */
  ep_diags diags = {0};
  ep_config *c = NULL;
  assert_int_equal(ep_config_load(&c, path, NULL, &diags), 0);
  assert_true(tu_has_diag(&diags, 2, "unknown key 'listen.managment' (did you mean 'management'?)"));
  assert_true(tu_has_diag(&diags, 3, "'listen.grpc': \"nohostport\": expected host:port"));
  assert_true(tu_has_diag(&diags, 4, "UNIX sockets are not allowed here"));
  assert_true(tu_has_diag(&diags, 6, "'paths.data': expected a string, got an integer"));
  assert_true(tu_has_diag(&diags, 6, "'paths.plugins': expected a list of strings"));
  assert_true(tu_has_diag(&diags, 7, "must be \"nztp\" or \"non-ztp\""));
  assert_true(tu_has_diag(&diags, 7, "'onboarding.tpm_identity': must be \"off\", \"first_use\" or \"required\""));
  assert_true(tu_has_diag(&diags, 8, "not a plugin ID"));
  assert_true(tu_has_diag(&diags, 8, "plugin 'other' is required but not in plugins.enabled"));
  assert_true(tu_has_diag(&diags, 9, "must be an absolute path"));
  assert_true(tu_has_diag(&diags, 0, "cert and key must be set together"));
  assert_int_equal(diags.errors, 11);
  assert_string_equal(c->data_dir, "/var/lib/edgeprov"); /* a bad value keeps its default */
  ep_config_free(c);
  ep_diags_clear(&diags);
  free(path);
}

static void provisioning_and_cloudinit_keys(void **state) {
  char *frag = tu_write(*state, "site.yaml", "timezone: Etc/UTC\n");
  char text[1024];
  snprintf(text, sizeof text,
           "provisioning = { orchestrator = \"edge.example:7443\"; token_url = \"https://edge.example:8443/oauth2/token\"; };\n"
           "cloudinit = { users = ( { name = \"ops\"; sudo = true; ssh_keys = [ \"ssh-ed25519 AAAA ops\" ]; },\n" /* 2 */
           "                        { sudo = true; } );\n"                                                         /* 3 */
           "              fragments = [ \"%s\" ]; };\n",
           frag);
  char *path = tu_write(*state, "ci.conf", text);
  ep_diags diags = {0};
  ep_config *c = NULL;
  assert_int_equal(ep_config_load(&c, path, NULL, &diags), 0);
  assert_string_equal(c->orchestrator, "edge.example:7443");
  assert_int_equal(c->cloudinit_user_count, 1);
  assert_string_equal(c->cloudinit_users[0].name, "ops");
  assert_true(c->cloudinit_users[0].sudo);
  assert_int_equal(c->cloudinit_users[0].ssh_keys.count, 1);
  assert_int_equal(c->cloudinit_fragments.count, 1);
  assert_true(tu_has_diag(&diags, 3, "'cloudinit.users[1]': a group with at least name"));
  ep_config_free(c);
  ep_diags_clear(&diags);
  free(path);
  free(frag);
}

static void tcp_management_needs_tls_and_a_token(void **state) {
  char *path = tu_write(*state, "tcp.conf", "listen = {\n  management = \"127.0.0.1:7001\";\n};\n");
  ep_diags diags = {0};
  ep_config *c = NULL;
  assert_int_equal(ep_config_load(&c, path, NULL, &diags), 0);
  assert_true(tu_has_diag(&diags, 2, "'listen.management': a TCP address needs tls.cert, tls.key and "
                                     "auth.operator_token_file"));
  ep_config_free(c);
  ep_diags_clear(&diags);
  free(path);
}

static void metrics_listen_on_loopback_unless_public(void **state) {
  ep_diags diags = {0};
  ep_config *c = NULL;
  char *path = tu_write(*state, "metrics.conf", "listen = {\n  metrics = \"127.0.0.1:9464\";\n};\n");
  assert_int_equal(ep_config_load(&c, path, NULL, &diags), 0);
  assert_int_equal(diags.errors, 0);
  assert_string_equal(c->listen_metrics, "127.0.0.1:9464");
  assert_false(c->metrics_public);
  ep_config_free(c);
  free(path);
  path = tu_write(*state, "metrics.conf", "listen = {\n  metrics = \"0.0.0.0:9464\";\n};\n");
  assert_int_equal(ep_config_load(&c, path, NULL, &diags), 0);
  assert_true(tu_has_diag(&diags, 2, "'listen.metrics': 0.0.0.0:9464 is not a loopback address, and the figures "
                                     "show the fleet's size and activity"));
  ep_config_free(c);
  ep_diags_clear(&diags);
  free(path);
  path = tu_write(*state, "metrics.conf", "listen = {\n  metrics = \"0.0.0.0:9464\";\n};\nmetrics = { public = true; };\n");
  assert_int_equal(ep_config_load(&c, path, NULL, &diags), 0);
  assert_true(tu_has_diag(&diags, 2, "'listen.metrics': 0.0.0.0:9464 is not a loopback address: metrics are served "
                                     "there over TLS, set tls.cert and tls.key"));
  assert_true(c->metrics_public);
  ep_config_free(c);
  ep_diags_clear(&diags);
  free(path);
  c = NULL;
  assert_int_equal(ep_config_new_defaults(&c, NULL), 0);
  assert_null(c->listen_metrics); /* off by default */
  ep_config_free(c);
}

static void dashboard_needs_the_operator_token_and_tls_off_loopback(void **state) {
  ep_diags diags = {0};
  ep_config *c = NULL;
  assert_int_equal(ep_config_new_defaults(&c, NULL), 0);
  assert_null(c->listen_dashboard); /* off by default */
  assert_int_equal(c->dashboard_streams_max, EP_CONFIG_DASHBOARD_STREAMS_DEFAULT);
  ep_config_free(c);
  char *token = tu_write(*state, "operator.token", "0123456789abcdef0123\n");
  char text[1024];
  snprintf(text, sizeof text, "listen = { dashboard = \"127.0.0.1:9480\"; };\nauth = { operator_token_file = \"%s\"; };\n"
           "dashboard = { streams_max = 4; };\n", token);
  char *path = tu_write(*state, "dash.conf", text);
  assert_int_equal(ep_config_load(&c, path, NULL, &diags), 0);
  assert_int_equal(diags.errors, 0);
  assert_string_equal(c->listen_dashboard, "127.0.0.1:9480");
  assert_int_equal(c->dashboard_streams_max, 4);
  ep_config_free(c);
  free(path);
  path = tu_write(*state, "dash.conf", "listen = { dashboard = \"127.0.0.1:9480\"; };\n");
  assert_int_equal(ep_config_load(&c, path, NULL, &diags), 0);
  assert_true(tu_has_diag(&diags, 1, "'listen.dashboard': the dashboard's API asks for the operator token: set "
                                     "auth.operator_token_file"));
  ep_config_free(c);
  ep_diags_clear(&diags);
  free(path);
  snprintf(text, sizeof text, "listen = { dashboard = \"0.0.0.0:9480\"; };\nauth = { operator_token_file = \"%s\"; };\n",
           token);
  path = tu_write(*state, "dash.conf", text);
  assert_int_equal(ep_config_load(&c, path, NULL, &diags), 0);
  assert_true(tu_has_diag(&diags, 1, "'listen.dashboard': 0.0.0.0:9480 is not a loopback address: the dashboard is "
                                     "served there over TLS, set tls.cert and tls.key"));
  ep_config_free(c);
  ep_diags_clear(&diags);
  free(path);
  path = tu_write(*state, "dash.conf", "dashboard = { streams_max = 0; };\n");
  assert_int_equal(ep_config_load(&c, path, NULL, &diags), 0);
  assert_int_equal(diags.errors, 1);
  ep_config_free(c);
  ep_diags_clear(&diags);
  free(path);
  free(token);
}

static void syntax_and_io_errors(void **state) {
  char *path = tu_write(*state, "syntax.conf", "listen = {\n  grpc = \"a:1\";\n  = 5;\n};\n");
  ep_diags diags = {0};
  ep_config *c = NULL;
  assert_int_equal(ep_config_load(&c, path, NULL, &diags), EP_EINVAL);
  assert_null(c);
  assert_true(tu_has_diag(&diags, 3, "syntax:"));
  ep_diags_clear(&diags);

  assert_int_equal(ep_config_load(&c, "/nonexistent/edgeprov.conf", NULL, &diags), EP_ENOENT);
  assert_true(tu_has_diag(&diags, 0, "cannot read: No such file or directory"));
  ep_diags_clear(&diags);

  char *big = malloc(EP_CONFIG_FILE_MAX + 2);
  memset(big, '#', EP_CONFIG_FILE_MAX + 1);
  big[EP_CONFIG_FILE_MAX + 1] = '\0';
  char *big_path = tu_write(*state, "big.conf", big);
  assert_int_equal(ep_config_load(&c, big_path, NULL, &diags), EP_EINVAL);
  assert_true(tu_has_diag(&diags, 0, "larger than the"));
  ep_diags_clear(&diags);
  free(big);
  free(big_path);
  free(path);
}

/* Writes a config whose plugin directory holds gamma (required 'endpoint' setting). */
static char *gamma_config(const char *dir, const char *name, const char *body) {
  char text[2048];
  snprintf(text, sizeof text, "paths = { plugins = [ \"%s\" ]; };\n%s", TEST_PLUGIN_REQUIRED_DIR, body);
  return tu_write(dir, name, text);
}

static void plugin_sections_follow_declared_settings(void **state) {
  char *path = gamma_config(*state, "gamma.conf",
                            "gamma = {\n"                 /* 2 */
                            "  endpont = \"https://x\";\n" /* 3: misspelt */
                            "  timeout_s = 99999;\n"      /* 4: out of range */
                            "  verbose = \"yes\";\n"      /* 5: wrong type */
                            "};\n"
                            "gama = { };\n"               /* 7: misspelt section */
                            "plugns = { };\n");           /* 8: misspelt core key */
  ep_diags diags = {0};
  ep_site *site = NULL;
  assert_int_equal(ep_site_open(&site, path, &diags), 0);
  assert_true(tu_has_diag(&diags, 3, "unknown key 'gamma.endpont' (did you mean 'endpoint'?)"));
  assert_true(tu_has_diag(&diags, 4, "'timeout_s': 99999 is out of range [1, 3600]"));
  assert_true(tu_has_diag(&diags, 5, "'verbose': expected bool, got a string"));
  assert_true(tu_has_diag(&diags, 2, "plugin 'gamma': missing required setting 'endpoint' (string)"));
  assert_true(tu_has_diag(&diags, 7, "unknown key 'gama' (did you mean 'gamma'?)"));
  assert_true(tu_has_diag(&diags, 8, "unknown key 'plugns' (did you mean 'plugins'?)"));
  assert_int_equal(diags.errors, 6);
  ep_plugin *gamma = ep_plugins_find(site->plugins, "gamma");
  assert_non_null(gamma);
  assert_int_equal(gamma->state, EP_PLUGIN_REFUSED);
  ep_site_free(site);
  ep_diags_clear(&diags);
  free(path);
}

static void good_plugin_section_reaches_the_plugin(void **state) {
  char *path = gamma_config(*state, "gamma-ok.conf", "gamma = { endpoint = \"https://vendor\"; verbose = true; };\n");
  ep_diags diags = {0};
  ep_site *site = NULL;
  assert_int_equal(ep_site_open(&site, path, &diags), 0);
  assert_int_equal(diags.errors, 0);
  ep_plugin *gamma = ep_plugins_find(site->plugins, "gamma");
  assert_int_equal(gamma->state, EP_PLUGIN_READY);
  const char *endpoint = NULL;
  int64_t timeout = 0;
  int32_t verbose = 0;
  assert_int_equal(ep_fields_get_string(&gamma->settings, "endpoint", &endpoint), 0);
  assert_string_equal(endpoint, "https://vendor");
  assert_int_equal(ep_fields_get_int(&gamma->settings, "timeout_s", &timeout), 0);
  assert_int_equal(timeout, 30);
  assert_int_equal(ep_fields_get_bool(&gamma->settings, "verbose", &verbose), 0);
  assert_int_equal(verbose, 1);
  ep_site_free(site);
  free(path);
}

static void missing_section_and_missing_plugins(void **state) {
  char *path = gamma_config(*state, "missing.conf",
                            "plugins = { enabled = [ \"gamma\", \"delta\" ]; required = [ \"delta\" ]; };\n");
  ep_diags diags = {0};
  ep_site *site = NULL;
  assert_int_equal(ep_site_open(&site, path, &diags), 0);
  assert_true(tu_has_diag(&diags, 0, "plugin 'gamma': missing required setting 'endpoint' (string): add gamma = {"));
  assert_true(tu_has_diag(&diags, 0, "required plugin 'delta' missing: not found in " TEST_PLUGIN_REQUIRED_DIR));
  assert_int_equal(diags.errors, 2);
  ep_site_free(site);
  ep_diags_clear(&diags);
  free(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(embedded_defaults),
      cmocka_unit_test_setup_teardown(https_limits, setup, teardown),
      cmocka_unit_test_setup_teardown(provisioning_and_cloudinit_keys, setup, teardown),
      cmocka_unit_test_setup_teardown(reads_every_core_key, setup, teardown),
      cmocka_unit_test_setup_teardown(core_errors_name_line_and_reason, setup, teardown),
      cmocka_unit_test_setup_teardown(metrics_listen_on_loopback_unless_public, setup, teardown),
      cmocka_unit_test_setup_teardown(dashboard_needs_the_operator_token_and_tls_off_loopback, setup, teardown),
      cmocka_unit_test_setup_teardown(tcp_management_needs_tls_and_a_token, setup, teardown),
      cmocka_unit_test_setup_teardown(syntax_and_io_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(the_recovery_key_file_is_an_absolute_readable_path, setup, teardown),
      cmocka_unit_test_setup_teardown(plugin_sections_follow_declared_settings, setup, teardown),
      cmocka_unit_test_setup_teardown(good_plugin_section_reaches_the_plugin, setup, teardown),
      cmocka_unit_test_setup_teardown(missing_section_and_missing_plugins, setup, teardown),
  };
  return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
