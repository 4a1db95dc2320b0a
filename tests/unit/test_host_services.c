/* Unit tests of core/lib/runtime/host_services.c: the host table a plugin gets, called with a
 * context the way the loader and an action run prepare one: settings and parameters, site
 * values, errors, allocation bounds, progress and cancellation, capability lookups, reboot
 * requests (runs only), published directories (init only), logs, HTTP and fetch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/error.h"
#include "base/log.h"
#include "net/https.h"
#include "runtime/config.h"
#include "runtime/host_services.h"
#include "testutil.h"

static const ep_field_decl settings_decl[] = {
    EP_FIELD_STRING_DECL("endpoint", "https://vendor.example", EP_FIELD_OPTIONAL, 256, "where"),
    EP_FIELD_INT_DECL("workers", "4", EP_FIELD_OPTIONAL, 1, 64, "threads"),
    EP_FIELD_BOOL_DECL("strict", "true", EP_FIELD_OPTIONAL, "strict"),
    EP_FIELD_STRING_DECL("token_file", NULL, EP_FIELD_OPTIONAL, 0, "no default"),
};

static const ep_field_decl params_decl[] = {
    EP_FIELD_STRING_DECL("device", NULL, EP_FIELD_REQUIRED, 0, "disk"),
    EP_FIELD_INT_DECL("passes", "1", EP_FIELD_OPTIONAL, 1, 3, "passes"),
    EP_FIELD_BOOL_DECL("verify", "false", EP_FIELD_OPTIONAL, "verify"),
};

typedef struct fixture {
  const ep_host *host;
  ep_fields settings, params;
  ep_config *config;
  ep_ctx ctx;
  /* what the callbacks saw */
  uint64_t done, total;
  char progress_message[128];
  int progress_calls;
  int32_t line_level;
  char line[256];
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->host = ep_host_table();
  if (ep_fields_init(&f->settings, settings_decl, 4, sizeof(ep_field_decl)) < 0 ||
      ep_fields_init(&f->params, params_decl, 3, sizeof(ep_field_decl)) < 0 ||
      ep_field_set_int(ep_fields_find(&f->settings, "workers"), 9) < 0 ||
      ep_field_set_string(ep_fields_find(&f->params, "device"), "/dev/vdb") < 0 ||
      ep_config_new_defaults(&f->config, "/plugins") < 0)
    return -1;
  ep_ctx_init(&f->ctx, "vendor-x", &f->settings, (ep_capability_lookup){0});
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  ep_fields_free(&f->settings);
  ep_fields_free(&f->params);
  ep_config_free(f->config);
  free(f);
  return 0;
}

static void table_is_complete_and_of_this_abi(void **state) {
  fixture *f = *state;
  assert_ptr_equal(ep_host_table(), f->host); /* one static table */
  assert_int_equal(f->host->struct_size, sizeof(ep_host));
  assert_int_equal(f->host->abi_major, EP_ABI_MAJOR);
  assert_int_equal(f->host->abi_minor, EP_ABI_MINOR);
  assert_true(EP_HOST_HAS(f->host, publish_directory));
  const void *const members[] = {
      (const void *)f->host->log,           (const void *)f->host->alloc,         (const void *)f->host->free,
      (const void *)f->host->setting_string, (const void *)f->host->setting_int,  (const void *)f->host->setting_bool,
      (const void *)f->host->set_error,     (const void *)f->host->progress,      (const void *)f->host->cancelled,
      (const void *)f->host->param_string,  (const void *)f->host->param_int,     (const void *)f->host->param_bool,
      (const void *)f->host->capability,    (const void *)f->host->site_string,   (const void *)f->host->http_request,
      (const void *)f->host->fetch,         (const void *)f->host->request_reboot,
      (const void *)f->host->publish_directory};
  for (size_t i = 0; i < sizeof members / sizeof members[0]; i++)
    if (!members[i]) fail_msg("host table member %zu is NULL", i);
}

static void settings_are_typed_lookups(void **state) {
  fixture *f = *state;
  const char *s = "untouched";
  int64_t n = -1;
  int32_t b = -1;
  assert_int_equal(f->host->setting_string(&f->ctx, "endpoint", &s), 0);
  assert_string_equal(s, "https://vendor.example"); /* a default */
  assert_int_equal(f->host->setting_int(&f->ctx, "workers", &n), 0);
  assert_int_equal(n, 9); /* the site's value */
  assert_int_equal(f->host->setting_bool(&f->ctx, "strict", &b), 0);
  assert_int_equal(b, 1);

  /* Unset without a default, undeclared, or of another type; *out untouched each time. */
  s = "untouched";
  n = -1;
  b = -1;
  assert_int_equal(f->host->setting_string(&f->ctx, "token_file", &s), EP_ENOENT);
  assert_int_equal(f->host->setting_string(&f->ctx, "nope", &s), EP_EINVAL);
  assert_int_equal(f->host->setting_string(&f->ctx, "workers", &s), EP_EINVAL);
  assert_int_equal(f->host->setting_int(&f->ctx, "strict", &n), EP_EINVAL);
  assert_int_equal(f->host->setting_bool(&f->ctx, "endpoint", &b), EP_EINVAL);
  assert_string_equal(s, "untouched");
  assert_int_equal(n, -1);
  assert_int_equal(b, -1);

  /* Without a context or settings there is nothing to look up. */
  assert_int_equal(f->host->setting_string(NULL, "endpoint", &s), EP_EINVAL);
  assert_int_equal(f->host->setting_int(NULL, "workers", &n), EP_EINVAL);
  assert_int_equal(f->host->setting_bool(NULL, "strict", &b), EP_EINVAL);
  ep_ctx bare;
  ep_ctx_init(&bare, "bare", NULL, (ep_capability_lookup){0});
  assert_int_equal(f->host->setting_int(&bare, "workers", &n), EP_EINVAL);
}

static void parameters_exist_only_during_a_run(void **state) {
  fixture *f = *state;
  const char *s = "untouched";
  int64_t n = -1;
  int32_t b = -1;
  /* The plugin's own context: no run, no parameters. */
  assert_int_equal(f->host->param_string(&f->ctx, "device", &s), EP_EINVAL);
  assert_int_equal(f->host->param_int(&f->ctx, "passes", &n), EP_EINVAL);
  assert_int_equal(f->host->param_bool(&f->ctx, "verify", &b), EP_EINVAL);
  assert_int_equal(f->host->param_string(NULL, "device", &s), EP_EINVAL);
  assert_string_equal(s, "untouched");

  f->ctx.params = &f->params;
  assert_int_equal(f->host->param_string(&f->ctx, "device", &s), 0);
  assert_string_equal(s, "/dev/vdb");
  assert_int_equal(f->host->param_int(&f->ctx, "passes", &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(f->host->param_bool(&f->ctx, "verify", &b), 0);
  assert_int_equal(b, 0);
  assert_int_equal(f->host->param_int(&f->ctx, "device", &n), EP_EINVAL);
  assert_int_equal(f->host->param_string(&f->ctx, "workers", &s), EP_EINVAL); /* a setting is not a parameter */
}

static void site_strings_by_name(void **state) {
  fixture *f = *state;
  const char *s = "untouched";
  assert_int_equal(f->host->site_string(&f->ctx, "paths.data", &s), EP_EINVAL); /* no config: none */
  assert_string_equal(s, "untouched");
  f->ctx.config = f->config;
  assert_int_equal(f->host->site_string(&f->ctx, "paths.data", &s), 0);
  assert_string_equal(s, f->config->data_dir);
  assert_int_equal(f->host->site_string(&f->ctx, "provisioning.mode", &s), 0);
  assert_string_equal(s, "nztp");
  f->config->mode = EP_MODE_NON_ZTP;
  assert_int_equal(f->host->site_string(&f->ctx, "provisioning.mode", &s), 0);
  assert_string_equal(s, "non-ztp");
  assert_int_equal(f->host->site_string(&f->ctx, "artifacts.directory", &s), 0);
  assert_ptr_equal(s, f->config->artifacts.directory);

  /* run.* values: EP_ENOENT outside a run or when the run has none, EP_EINVAL for another name. */
  s = "untouched";
  f->ctx.run_target_disk = "/dev/vda";
  assert_int_equal(f->host->site_string(&f->ctx, "run.target_disk", &s), EP_ENOENT); /* no run */
  f->ctx.params = &f->params;
  assert_int_equal(f->host->site_string(&f->ctx, "run.target_disk", &s), 0);
  assert_string_equal(s, "/dev/vda");
  s = "untouched";
  assert_int_equal(f->host->site_string(&f->ctx, "run.scratch_dir", &s), EP_ENOENT); /* NULL */
  f->ctx.run_scratch_dir = "";
  assert_int_equal(f->host->site_string(&f->ctx, "run.scratch_dir", &s), EP_ENOENT); /* empty */
  assert_int_equal(f->host->site_string(&f->ctx, "run.deadline", &s), EP_ENOENT);
  snprintf(f->ctx.run_deadline, sizeof f->ctx.run_deadline, "%s", "1700000000");
  assert_int_equal(f->host->site_string(&f->ctx, "run.deadline", &s), 0);
  assert_string_equal(s, "1700000000");
  assert_int_equal(f->host->site_string(&f->ctx, "run.tpm", &s), EP_ENOENT); /* the node has none */
  f->ctx.run_tpm = "swtpm:host=127.0.0.1,port=2321";
  assert_int_equal(f->host->site_string(&f->ctx, "run.tpm", &s), 0);
  assert_string_equal(s, "swtpm:host=127.0.0.1,port=2321");
  s = "untouched";
  const char *unknown[] = {"run.other", "run.", "paths", "paths.data.x", "tls.key", "PATHS.DATA", ""};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
    assert_int_equal(f->host->site_string(&f->ctx, unknown[i], &s), EP_EINVAL);
  assert_int_equal(f->host->site_string(&f->ctx, NULL, &s), EP_EINVAL);
  assert_int_equal(f->host->site_string(NULL, "paths.data", &s), EP_EINVAL);
  assert_string_equal(s, "untouched");
}

static void set_error_reaches_the_thread_and_the_context(void **state) {
  fixture *f = *state;
  ep_error_clear();
  assert_string_equal(ep_ctx_error(&f->ctx, "fallback"), "fallback");
  f->host->set_error(&f->ctx, EP_EIO, "vendor API down");
  assert_string_equal(ep_error_message(), "vendor API down");
  assert_int_equal(ep_error_code(), EP_EIO);
  assert_int_equal(f->ctx.error_code, EP_EIO);
  assert_string_equal(ep_ctx_error(&f->ctx, "fallback"), "vendor API down");

  /* The host relaying the thread's own message (the text aliases the destination). */
  ep_error_set(EP_ENOENT, "core said: no such host");
  f->host->set_error(&f->ctx, EP_ENOENT, ep_error_message());
  assert_string_equal(ep_error_message(), "core said: no such host");
  assert_string_equal(f->ctx.error_message, "core said: no such host");

  /* Bounded; NULL is an empty message; without a context only the thread's error is set. */
  char big[3 * EP_ERROR_MESSAGE_MAX];
  memset(big, 'e', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  f->host->set_error(&f->ctx, EP_EINVAL, big);
  assert_int_equal(strlen(f->ctx.error_message), EP_ERROR_MESSAGE_MAX - 1);
  assert_int_equal(strlen(ep_error_message()), EP_ERROR_MESSAGE_MAX - 1);
  f->host->set_error(&f->ctx, EP_EINVAL, NULL);
  assert_string_equal(f->ctx.error_message, "");
  assert_string_equal(ep_ctx_error(&f->ctx, "fallback"), "fallback");
  f->host->set_error(NULL, EP_EPERM, "no context");
  assert_string_equal(ep_error_message(), "no context");
  assert_int_equal(ep_error_code(), EP_EPERM);
  assert_int_equal(f->ctx.error_code, EP_EINVAL);

  /* ep_failf, the SDK's helper, goes through set_error and returns the code. */
  assert_int_equal(ep_failf(f->host, &f->ctx, EP_ERANGE, "workers %d > %d", 99, 64), EP_ERANGE);
  assert_string_equal(f->ctx.error_message, "workers 99 > 64");
}

static void alloc_is_bounded(void **state) {
  fixture *f = *state;
  assert_null(f->host->alloc(&f->ctx, 0));
  assert_null(f->host->alloc(&f->ctx, (UINT64_C(1) << 30) + 1));
  assert_null(f->host->alloc(&f->ctx, UINT64_MAX));
  uint8_t *p = f->host->alloc(&f->ctx, 4096);
  assert_non_null(p);
  memset(p, 0xab, 4096);
  f->host->free(&f->ctx, p);
  f->host->free(&f->ctx, NULL);
  p = f->host->alloc(NULL, 1); /* a context is not needed */
  assert_non_null(p);
  f->host->free(NULL, p);
}

static void on_progress(void *data, uint64_t done, uint64_t total, const char *message) {
  fixture *f = data;
  f->progress_calls++;
  f->done = done;
  f->total = total;
  snprintf(f->progress_message, sizeof f->progress_message, "%s", message ? message : "(null)");
}

static void progress_and_cancellation(void **state) {
  fixture *f = *state;
  f->host->progress(&f->ctx, 1, 2, "dropped"); /* no receiver: a no-op */
  f->host->progress(NULL, 1, 2, "dropped");
  assert_int_equal(f->progress_calls, 0);
  f->ctx.progress = on_progress;
  f->ctx.progress_data = f;
  f->host->progress(&f->ctx, 512, 4096, "writing");
  assert_int_equal(f->progress_calls, 1);
  assert_int_equal(f->done, 512);
  assert_int_equal(f->total, 4096);
  assert_string_equal(f->progress_message, "writing");
  f->host->progress(&f->ctx, 3, 0, NULL);
  assert_string_equal(f->progress_message, "(null)");

  assert_int_equal(f->host->cancelled(&f->ctx), 0); /* no flag: never */
  assert_int_equal(f->host->cancelled(NULL), 0);
  atomic_int cancel = 0;
  f->ctx.cancel = &cancel;
  assert_int_equal(f->host->cancelled(&f->ctx), 0);
  atomic_store(&cancel, 1);
  assert_int_equal(f->host->cancelled(&f->ctx), 1);
}

static const void *find_widget(const void *set, const char *capability_id, void **ret_state) {
  if (strcmp(capability_id, "com.example.widget/1") != 0) return NULL;
  *ret_state = (void *)set;
  return "widget table";
}

static void capability_lookup_goes_through_the_context(void **state) {
  fixture *f = *state;
  void *provider = (void *)0x1;
  assert_null(f->host->capability(&f->ctx, "com.example.widget/1", &provider)); /* no lookup */
  assert_null(f->host->capability(NULL, "com.example.widget/1", &provider));
  static const char provider_state[] = "provider state";
  f->ctx.capabilities = (ep_capability_lookup){.find = find_widget, .set = provider_state};
  assert_string_equal(f->host->capability(&f->ctx, "com.example.widget/1", &provider), "widget table");
  assert_ptr_equal(provider, provider_state);
  provider = (void *)0x1;
  assert_null(f->host->capability(&f->ctx, "edgeprov.storage/1", &provider));
  assert_ptr_equal(provider, (void *)0x1); /* untouched when none */
  assert_null(f->host->capability(&f->ctx, NULL, &provider));
  assert_string_equal(f->host->capability(&f->ctx, "com.example.widget/1", NULL), "widget table");
}

typedef struct stored {
  int calls;
  char kind[32], value[128];
  int32_t answer;
} stored;

static int32_t store_into(void *data, const char *kind, const char *value) {
  stored *st = data;
  st->calls++;
  snprintf(st->kind, sizeof st->kind, "%s", kind);
  snprintf(st->value, sizeof st->value, "%s", value);
  return st->answer < 0 ? ep_error_set(st->answer, "StoreRecoveryKey: UNAVAILABLE: no orchestrator") : 0;
}

static void secrets_are_stored_only_in_a_node_run(void **state) {
  fixture *f = *state;
  stored st = {0};
  /* Outside a run: EP_EINVAL, and the callback is never reached. */
  f->ctx.store_secret = store_into;
  f->ctx.store_secret_data = &st;
  assert_int_equal(f->host->store_secret(&f->ctx, "recovery_key", "00ff"), EP_EINVAL);
  assert_string_equal(f->ctx.error_message, "store_secret: only during an action run on a node");
  assert_int_equal(f->host->store_secret(NULL, "recovery_key", "00ff"), EP_EINVAL);
  /* In a run: only the kind recovery_key, and a value. */
  f->ctx.params = &f->params;
  assert_int_equal(f->host->store_secret(&f->ctx, "password", "00ff"), EP_EINVAL);
  assert_string_equal(f->ctx.error_message, "store_secret: kind must be 'recovery_key'");
  assert_int_equal(f->host->store_secret(&f->ctx, NULL, "00ff"), EP_EINVAL);
  assert_int_equal(f->host->store_secret(&f->ctx, "recovery_key", ""), EP_EINVAL);
  assert_int_equal(st.calls, 0);
  /* A node's run hands it to the agent's callback, whose failure is the plugin's error. */
  assert_int_equal(f->host->store_secret(&f->ctx, "recovery_key", "00ff"), 0);
  assert_int_equal(st.calls, 1);
  assert_string_equal(st.kind, "recovery_key");
  assert_string_equal(st.value, "00ff");
  st.answer = EP_EIO;
  assert_int_equal(f->host->store_secret(&f->ctx, "recovery_key", "00ff"), EP_EIO);
  assert_string_equal(f->ctx.error_message, "StoreRecoveryKey: UNAVAILABLE: no orchestrator");
  /* A run that is not a node's (edgeprov actions run): EP_ENOTSUP, saying why. */
  f->ctx.store_secret = NULL;
  assert_int_equal(f->host->store_secret(&f->ctx, "recovery_key", "00ff"), EP_ENOTSUP);
  assert_non_null(strstr(f->ctx.error_message, "only the node agent"));
  assert_int_equal(st.calls, 2);
  assert_true(EP_HOST_HAS(f->host, store_secret));
}

static void reboot_is_requested_only_during_a_run(void **state) {
  fixture *f = *state;
  assert_int_equal(f->host->request_reboot(&f->ctx, "reboot"), EP_EINVAL);
  assert_string_equal(f->ctx.reboot, "");
  assert_non_null(strstr(ep_ctx_error(&f->ctx, ""), "only during an action run"));
  assert_int_equal(f->host->request_reboot(NULL, "reboot"), EP_EINVAL);

  f->ctx.params = &f->params;
  assert_int_equal(f->host->request_reboot(&f->ctx, "kexec"), 0);
  assert_string_equal(f->ctx.reboot, "kexec");
  assert_int_equal(f->host->request_reboot(&f->ctx, "reboot"), 0);
  assert_string_equal(f->ctx.reboot, "reboot");
  const char *bad[] = {"halt", "Reboot", "reboot ", "", NULL};
  for (size_t i = 0; i < 5; i++) assert_int_equal(f->host->request_reboot(&f->ctx, bad[i]), EP_EINVAL);
  assert_string_equal(f->ctx.reboot, "reboot");
  assert_non_null(strstr(ep_ctx_error(&f->ctx, ""), "mode must be 'reboot' or 'kexec'"));
}

static void directories_are_published_only_during_init(void **state) {
  fixture *f = *state;
  assert_int_equal(f->host->publish_directory(&f->ctx, "/boot", "/srv/art"), EP_EINVAL);
  assert_non_null(strstr(ep_ctx_error(&f->ctx, ""), "only during init"));
  assert_int_equal(f->host->publish_directory(NULL, "/boot", "/srv/art"), EP_EINVAL);
  assert_int_equal(f->ctx.published_count, 0);

  f->ctx.publishing = true;
  assert_int_equal(f->host->publish_directory(&f->ctx, "/boot", "/srv/art"), 0);
  assert_int_equal(f->ctx.published_count, 1);
  assert_string_equal(f->ctx.published[0].url_path, "/boot");
  assert_string_equal(f->ctx.published[0].directory, "/srv/art");

  char long_url[200];
  long_url[0] = '/';
  memset(long_url + 1, 'u', 127);
  long_url[128] = '\0'; /* 128 bytes: one too many for the slot */
  const char *bad_urls[] = {"boot",   "",    "/a/../b", "/a/..",  "/a//b", "/boot/",
                            "/b?x=1", "/b c", "/b%2e",  long_url, NULL};
  for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++)
    if (f->host->publish_directory(&f->ctx, bad_urls[i], "/srv/art") != EP_EINVAL)
      fail_msg("url_path '%s' was accepted", bad_urls[i] ? bad_urls[i] : "(null)");
  long_url[127] = '\0'; /* 127 bytes fit */
  assert_int_equal(f->host->publish_directory(&f->ctx, long_url, "/srv/long"), 0);
  char long_dir[4200];
  long_dir[0] = '/';
  memset(long_dir + 1, 'd', sizeof long_dir - 2);
  long_dir[sizeof long_dir - 1] = '\0';
  const char *bad_dirs[] = {"srv/art", "", "./art", long_dir, NULL};
  for (size_t i = 0; i < sizeof bad_dirs / sizeof bad_dirs[0]; i++)
    assert_int_equal(f->host->publish_directory(&f->ctx, "/ok", bad_dirs[i]), EP_EINVAL);
  assert_non_null(strstr(ep_ctx_error(&f->ctx, ""), "absolute path"));
  assert_int_equal(f->ctx.published_count, 2);

  assert_int_equal(f->host->publish_directory(&f->ctx, "/", "/srv/root"), 0);
  assert_int_equal(f->host->publish_directory(&f->ctx, "/a-b_c.d/e", "/srv/e"), 0);
  assert_int_equal(f->ctx.published_count, EP_CTX_PUBLISHED_MAX);
  assert_int_equal(f->host->publish_directory(&f->ctx, "/fifth", "/srv/5"), EP_ERANGE);
  assert_int_equal(f->ctx.published_count, EP_CTX_PUBLISHED_MAX);
  f->ctx.publishing = false;
}

static void on_line(void *data, int32_t level, const char *message) {
  fixture *f = data;
  f->line_level = level;
  snprintf(f->line, sizeof f->line, "%s", message);
}

static void log_lines_carry_the_plugin_name(void **state) {
  fixture *f = *state;
  FILE *sink = tmpfile();
  assert_non_null(sink);
  ep_log_setup(sink, EP_LOG_DEBUG);
  f->host->log(&f->ctx, EP_LOG_WARN, "disk is slow");
  f->ctx.log_line = on_line;
  f->ctx.log_data = f;
  f->host->log(&f->ctx, EP_LOG_DEBUG, "also to the run");
  f->host->log(NULL, EP_LOG_INFO, "no context");
  f->host->log(&f->ctx, EP_LOG_INFO, NULL);
  ep_logf(f->host, &f->ctx, EP_LOG_ERROR, "formatted %d", 7);
  ep_log_setup(NULL, EP_LOG_INFO);
  char text[4096] = {0};
  rewind(sink);
  assert_true(fread(text, 1, sizeof text - 1, sink) > 0);
  fclose(sink);
  assert_non_null(strstr(text, "level=warn component=vendor-x msg=\"disk is slow\"\n"));
  assert_non_null(strstr(text, "level=debug component=vendor-x msg=\"also to the run\"\n"));
  assert_non_null(strstr(text, "level=info component=plugin msg=\"no context\"\n"));
  assert_non_null(strstr(text, "level=info component=vendor-x msg=\"\"\n"));
  assert_non_null(strstr(text, "level=error component=vendor-x msg=\"formatted 7\"\n"));
  assert_int_equal(f->line_level, EP_LOG_ERROR); /* the run's receiver got the lines too */
  assert_string_equal(f->line, "formatted 7");
}

static void hello(void *data, const ep_https_request *req, ep_https_response *resp) {
  (void)data, (void)req;
  resp->status = 202;
  resp->content_type = "text/x-hello";
  resp->body = strdup("hello plugin");
  resp->len = strlen(resp->body);
}

typedef struct visited {
  int calls;
  int32_t status;
  char body[64];
  char content_type[64];
} visited;

static int32_t visit(void *data, const ep_http_response *response) {
  visited *v = data;
  v->calls++;
  v->status = response->status;
  snprintf(v->body, sizeof v->body, "%.*s", (int)response->body_len, (const char *)response->body);
  snprintf(v->content_type, sizeof v->content_type, "%s", response->content_type);
  return 5; /* what http_request returns */
}

static void http_request_visits_the_response(void **state) {
  fixture *f = *state;
  ep_https_server *server = NULL;
  int port = 0;
  assert_int_equal(ep_https_server_new(&server, "127.0.0.1:0", NULL, NULL), 0);
  assert_int_equal(ep_https_server_route(server, "GET", "/hello", hello, NULL), 0);
  assert_int_equal(ep_https_server_start(server, &port), 0);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/hello", port);
  visited v = {0};
  ep_http_request req = {.struct_size = sizeof req, .method = "GET", .url = url, .timeout_ms = 10000};
  assert_int_equal(f->host->http_request(&f->ctx, &req, visit, &v), 5);
  assert_int_equal(v.calls, 1);
  assert_int_equal(v.status, 202);
  assert_string_equal(v.body, "hello plugin");
  assert_string_equal(v.content_type, "text/x-hello");
  assert_int_equal(f->host->http_request(&f->ctx, &req, NULL, NULL), 0); /* no visitor */
  ep_https_server_free(server);

  /* A failure is the plugin's error too; a struct from an older ABI is refused. */
  req.url = "ftp://127.0.0.1/x";
  assert_int_equal(f->host->http_request(&f->ctx, &req, visit, &v), EP_EINVAL);
  assert_non_null(strstr(ep_ctx_error(&f->ctx, ""), "ftp://127.0.0.1/x"));
  assert_int_equal(v.calls, 1);
  req.url = url;
  req.struct_size = offsetof(ep_http_request, response_max);
  assert_int_equal(f->host->http_request(&f->ctx, &req, visit, &v), EP_EINVAL);
  assert_non_null(strstr(ep_ctx_error(&f->ctx, ""), "request struct too small"));
  assert_int_equal(f->host->http_request(&f->ctx, NULL, visit, &v), EP_EINVAL);
  assert_int_equal(v.calls, 1);
}

typedef struct fetched {
  size_t len;
  uint64_t total_seen;   /* status->total while data arrived */
  const ep_fetch_status *status;
} fetched;

static int32_t on_data(void *data, const uint8_t *bytes, uint64_t len) {
  fetched *d = data;
  (void)bytes;
  d->len += len;
  if (d->status) d->total_seen = d->status->total;
  return 0;
}

static void fetch_streams_and_reports_status(void **state) {
  fixture *f = *state;
  char *dir = tu_mkdtemp();
  free(tu_write(dir, "blob", "0123456789"));
  char url[512];
  snprintf(url, sizeof url, "file://%s/blob", dir);
  ep_fetch_status status = {.struct_size = sizeof status};
  fetched d = {.status = &status};
  ep_fetch_request req = {.struct_size = sizeof req, .url = url, .offset = 4};
  assert_int_equal(f->host->fetch(&f->ctx, &req, on_data, &d, &status), 0);
  assert_int_equal(d.len, 6);
  assert_int_equal(d.total_seen, 10); /* kept current while data arrives */
  assert_int_equal(status.total, 10);
  assert_int_equal(status.received, 6);
  assert_int_equal(status.http_status, 0);
  assert_string_equal(status.message, "");

  /* Failure: the status says why, and so does the plugin's error. */
  snprintf(url, sizeof url, "file://%s/missing", dir);
  assert_int_equal(f->host->fetch(&f->ctx, &req, on_data, &d, &status), EP_ENOENT);
  assert_non_null(strstr(status.message, "missing"));
  assert_non_null(strstr(ep_ctx_error(&f->ctx, ""), "missing"));

  /* The run's cancellation reaches the fetch. */
  snprintf(url, sizeof url, "file://%s/blob", dir);
  atomic_int cancel = 1;
  f->ctx.cancel = &cancel;
  assert_int_equal(f->host->fetch(&f->ctx, &req, on_data, &d, NULL), EP_ECANCELED);
  f->ctx.cancel = NULL;

  /* Too small a request struct, or no on_data. */
  req.struct_size = offsetof(ep_fetch_request, stall_timeout_ms);
  assert_int_equal(f->host->fetch(&f->ctx, &req, on_data, &d, &status), EP_EINVAL);
  req.struct_size = sizeof req;
  assert_int_equal(f->host->fetch(&f->ctx, &req, NULL, &d, &status), EP_EINVAL);
  assert_int_equal(f->host->fetch(&f->ctx, NULL, on_data, &d, &status), EP_EINVAL);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(table_is_complete_and_of_this_abi, setup, teardown),
      cmocka_unit_test_setup_teardown(settings_are_typed_lookups, setup, teardown),
      cmocka_unit_test_setup_teardown(parameters_exist_only_during_a_run, setup, teardown),
      cmocka_unit_test_setup_teardown(site_strings_by_name, setup, teardown),
      cmocka_unit_test_setup_teardown(set_error_reaches_the_thread_and_the_context, setup, teardown),
      cmocka_unit_test_setup_teardown(alloc_is_bounded, setup, teardown),
      cmocka_unit_test_setup_teardown(progress_and_cancellation, setup, teardown),
      cmocka_unit_test_setup_teardown(capability_lookup_goes_through_the_context, setup, teardown),
      cmocka_unit_test_setup_teardown(secrets_are_stored_only_in_a_node_run, setup, teardown),
      cmocka_unit_test_setup_teardown(reboot_is_requested_only_during_a_run, setup, teardown),
      cmocka_unit_test_setup_teardown(directories_are_published_only_during_init, setup, teardown),
      cmocka_unit_test_setup_teardown(log_lines_carry_the_plugin_name, setup, teardown),
      cmocka_unit_test_setup_teardown(http_request_visits_the_response, setup, teardown),
      cmocka_unit_test_setup_teardown(fetch_streams_and_reports_status, setup, teardown),
  };
  return cmocka_run_group_tests_name("host_services", tests, NULL, NULL);
}
