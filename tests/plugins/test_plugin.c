/* Test plugins: one source built into several real shared objects, each a case the loader
 * must accept or refuse. TEST_VARIANT selects the case (see tests/plugins/CMakeLists.txt). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <edgeprov/edgeprov.h>

#define VARIANT_ALPHA 1         /* good: actions, settings, trace of init/deinit */
#define VARIANT_BETA 2          /* good: no capabilities */
#define VARIANT_NO_ENTRY 3      /* a shared object without the entry symbol */
#define VARIANT_ABI_MAJOR 4     /* built for ABI major + 1 */
#define VARIANT_ABI_MINOR 5     /* built for a minor newer than the host */
#define VARIANT_BAD_SIGNATURE 6 /* claims a 32-bit build */
#define VARIANT_DUPLICATE 7     /* same ID as alpha */
#define VARIANT_UNKNOWN_CAP 8   /* claims edgeprov.teleport/1 */
#define VARIANT_INIT_FAILS 9    /* init fails with a message */
#define VARIANT_BAD_DECL 10     /* a setting whose default is not of its type */
#define VARIANT_GAMMA 11        /* good: a required setting, a vendor capability */
#define VARIANT_NEEDY 12        /* actions, and an init that insists on its required setting */
#define VARIANT_OS_ACTIONS 13   /* an OS profile and actions; init copes without its required setting */

#ifndef TEST_VARIANT
#error "define TEST_VARIANT"
#endif

#if TEST_VARIANT == VARIANT_NO_ENTRY
EP_PLUGIN_EXPORT int not_a_plugin(void);
int not_a_plugin(void) { return 42; }
#else

typedef struct test_state {
  const ep_host *host;
  ep_ctx *ctx;
  char id[64];
  const char *image_url; /* VARIANT_OS_ACTIONS: NULL on a node (no site config there) */
} test_state;

static void trace(test_state *s, const char *event) {
  const char *path = NULL;
  if (s->host->setting_string(s->ctx, "trace_file", &path) < 0 || !*path) return;
  FILE *f = fopen(path, "a");
  if (!f) return;
  fprintf(f, "%s:%s\n", event, s->id);
  fclose(f);
}

/* test.count: counts to `steps` (`delay_ms` a step), reporting progress (a step is `step_bytes`
 * bytes) and logging `say` at each step when set; fails at step `fail_at` if set. */
static int32_t count_run(void *state, ep_ctx *ctx) {
  test_state *s = state;
  int64_t steps = 0, fail_at = 0, delay_ms = 0, step_bytes = 1;
  const char *say = "";
  s->host->param_int(ctx, "steps", &steps);
  s->host->param_int(ctx, "fail_at", &fail_at);
  s->host->param_int(ctx, "delay_ms", &delay_ms);
  s->host->param_int(ctx, "step_bytes", &step_bytes);
  s->host->param_string(ctx, "say", &say);
  for (int64_t i = 1; i <= steps; i++) {
    if (s->host->cancelled(ctx)) return ep_failf(s->host, ctx, EP_ECANCELED, "cancelled at step %lld", (long long)i);
    if (i == fail_at) return ep_failf(s->host, ctx, EP_EFAILED, "failed at step %lld as asked", (long long)i);
    if (delay_ms) nanosleep(&(struct timespec){delay_ms / 1000, delay_ms % 1000 * 1000000}, NULL);
    if (say && *say) {
      char line[512];
      snprintf(line, sizeof line, "step %lld: %s", (long long)i, say);
      s->host->log(ctx, EP_LOG_INFO, line);
    }
    s->host->progress(ctx, (uint64_t)(i * step_bytes), (uint64_t)(steps * step_bytes), "counting");
  }
  char line[64];
  snprintf(line, sizeof line, "counted to %lld", (long long)steps);
  s->host->log(ctx, EP_LOG_INFO, line); /* seen with: edgeprov actions run --log-level info */
  return 0;
}

static const ep_field_decl count_params[] = {
    EP_FIELD_INT_DECL("steps", "3", EP_FIELD_OPTIONAL, 1, 1000, "how many steps"),
    EP_FIELD_INT_DECL("fail_at", "0", EP_FIELD_OPTIONAL, 0, 1000, "fail at this step (0: never)"),
    EP_FIELD_INT_DECL("delay_ms", "0", EP_FIELD_OPTIONAL, 0, 10000, "pause before each step"),
    EP_FIELD_INT_DECL("step_bytes", "1", EP_FIELD_OPTIONAL, 1, 1073741824, "bytes a step stands for"),
    EP_FIELD_STRING_DECL("say", "", EP_FIELD_OPTIONAL, 400, "a line logged at each step"),
};

/* test.run_values: reports the run's host values in one progress message and asks for a
 * kexec, so the tests see what an action on a node gets. */
static int32_t run_values_run(void *state, ep_ctx *ctx) __attribute__((unused));
static int32_t run_values_run(void *state, ep_ctx *ctx) {
  test_state *s = state;
  const char *disk = "-", *scratch = "-", *deadline = "-";
  s->host->site_string(ctx, "run.target_disk", &disk);
  s->host->site_string(ctx, "run.scratch_dir", &scratch);
  s->host->site_string(ctx, "run.deadline", &deadline);
  char message[512];
  snprintf(message, sizeof message, "target=%s scratch=%s deadline=%s", disk, scratch, deadline);
  s->host->progress(ctx, 1, 1, message);
  return s->host->request_reboot(ctx, "kexec");
}

#if TEST_VARIANT == VARIANT_NEEDY
static const ep_action test_actions[] = {
    {.struct_size = sizeof(ep_action), .name = "needy.count", .description = "count with progress",
     .params = count_params, .params_count = EP_COUNT(count_params), .run = count_run},
};
#else
static const ep_action test_actions[] = {
    {.struct_size = sizeof(ep_action),
     .name = "test.run_values",
     .description = "report the run's host values",
     .run = run_values_run},
    {.struct_size = sizeof(ep_action),
     .name = "test.count",
     .description = "count with progress",
     .params = count_params,
     .params_count = EP_COUNT(count_params),
     .run = count_run},
};
#endif

static const ep_actions test_actions_table = {
    EP_ACTIONS_HEADER,
    .actions = test_actions,
    .actions_count = EP_COUNT(test_actions),
};

static int32_t test_init(const ep_host *host, ep_ctx *ctx, void **ret_state);

#if TEST_VARIANT == VARIANT_OS_ACTIONS
/* One profile from the image_url setting; called on the orchestrator only. */
static int32_t os_profiles(void *state, ep_os_profile_fn visit, void *data) {
  const test_state *s = state;
  ep_os_profile profile = {.struct_size = sizeof profile, .name = "osact-1", .os_type = "immutable",
                           .image_url = s->image_url,
                           .image_sha256 = "0000000000000000000000000000000000000000000000000000000000000000",
                           .image_format = "raw", .description = "test OS"};
  return visit(data, &profile);
}

static int32_t os_template(void *state, const char *profile, ep_os_text_fn visit, void *data) {
  const test_state *s = state;
  if (strcmp(profile, "osact-1") != 0) return ep_failf(s->host, s->ctx, EP_ENOENT, "no profile '%s'", profile);
  const char *text = NULL; /* the site's, else two steps */
  if (s->host->setting_string(s->ctx, "template", &text) == 0 && text && *text) return visit(data, text);
  return visit(data, "actions = ( { action = \"test.count\"; params = { steps = \"2\"; }; } );");
}

static int32_t os_fragments(void *state, const char *profile, ep_os_text_fn visit, void *data) {
  (void)state, (void)profile, (void)visit, (void)data;
  return 0;
}

static const ep_os test_os_table = {.struct_size = sizeof(ep_os), .profiles = os_profiles,
                                    .workflow_template = os_template, .cloudinit_fragments = os_fragments};
#endif

static void test_deinit(void *state) {
  test_state *s = state;
  trace(s, "deinit");
  s->host->free(s->ctx, s);
}

static const void *test_get_capability(void *state, const char *id) {
  (void)state;
  if (strcmp(id, EP_CAP_ACTIONS) == 0) return &test_actions_table;
  if (strcmp(id, "com.example.widget/1") == 0) return "widget";
#if TEST_VARIANT == VARIANT_OS_ACTIONS
  /* Answered on a node too: the loader checks every declared capability's table. */
  if (strcmp(id, EP_CAP_OS) == 0) return &test_os_table;
#endif
  return NULL;
}

#if TEST_VARIANT == VARIANT_BAD_DECL
static const ep_field_decl test_settings[] = {
    EP_FIELD_INT_DECL("retries", "many", EP_FIELD_OPTIONAL, 0, 10, "retries"),
};
#elif TEST_VARIANT == VARIANT_NEEDY
static const ep_field_decl test_settings[] = {
    EP_FIELD_STRING_DECL("endpoint", NULL, EP_FIELD_REQUIRED, 256, "vendor endpoint URL"),
    EP_FIELD_STRING_DECL("trace_file", "", EP_FIELD_OPTIONAL, 0, "append init/deinit events here"),
};
#elif TEST_VARIANT == VARIANT_OS_ACTIONS
static const ep_field_decl test_settings[] = {
    EP_FIELD_STRING_DECL("image_url", NULL, EP_FIELD_REQUIRED, 2048, "the OS image (orchestrator only)"),
    EP_FIELD_STRING_DECL("trace_file", "", EP_FIELD_OPTIONAL, 0, "append init/deinit events here"),
    EP_FIELD_STRING_DECL("template", "", EP_FIELD_OPTIONAL, 8192, "the workflow template of osact-1 (default: 2 steps)"),
};
#elif TEST_VARIANT == VARIANT_GAMMA
static const ep_field_decl test_settings[] = {
    EP_FIELD_STRING_DECL("endpoint", NULL, EP_FIELD_REQUIRED, 256, "vendor endpoint URL"),
    EP_FIELD_INT_DECL("timeout_s", "30", EP_FIELD_OPTIONAL, 1, 3600, "timeout in seconds"),
    EP_FIELD_BOOL_DECL("verbose", "false", EP_FIELD_OPTIONAL, "log more"),
};
#else
static const ep_field_decl test_settings[] = {
    EP_FIELD_STRING_DECL("trace_file", "", EP_FIELD_OPTIONAL, 0, "append init/deinit events here"),
    EP_FIELD_INT_DECL("workers", "4", EP_FIELD_OPTIONAL, 1, 64, "worker threads"),
    EP_FIELD_BOOL_DECL("strict", "true", EP_FIELD_OPTIONAL, "refuse unknown input"),
};
#endif

#if TEST_VARIANT == VARIANT_ALPHA || TEST_VARIANT == VARIANT_DUPLICATE
#define TEST_ID "alpha"
static const char *const test_capabilities[] = {EP_CAP_ACTIONS, NULL};
#elif TEST_VARIANT == VARIANT_NEEDY
#define TEST_ID "needy"
static const char *const test_capabilities[] = {EP_CAP_ACTIONS, NULL};
#elif TEST_VARIANT == VARIANT_OS_ACTIONS
#define TEST_ID "osact"
static const char *const test_capabilities[] = {EP_CAP_OS, EP_CAP_ACTIONS, NULL};
#elif TEST_VARIANT == VARIANT_UNKNOWN_CAP
#define TEST_ID "teleporter"
static const char *const test_capabilities[] = {"edgeprov.teleport/1", NULL};
#elif TEST_VARIANT == VARIANT_GAMMA
#define TEST_ID "gamma"
static const char *const test_capabilities[] = {"com.example.widget/1", NULL};
#else
#define TEST_ID_FROM_VARIANT
static const char *const test_capabilities[] = {NULL};
#endif

#ifdef TEST_ID_FROM_VARIANT
#if TEST_VARIANT == VARIANT_BETA
#define TEST_ID "beta"
#elif TEST_VARIANT == VARIANT_ABI_MAJOR
#define TEST_ID "major"
#elif TEST_VARIANT == VARIANT_ABI_MINOR
#define TEST_ID "minor"
#elif TEST_VARIANT == VARIANT_BAD_SIGNATURE
#define TEST_ID "thirty-two"
#elif TEST_VARIANT == VARIANT_INIT_FAILS
#define TEST_ID "flaky"
#elif TEST_VARIANT == VARIANT_BAD_DECL
#define TEST_ID "baddecl"
#endif
#endif

static int32_t test_init(const ep_host *host, ep_ctx *ctx, void **ret_state) {
#if TEST_VARIANT == VARIANT_INIT_FAILS
  (void)ret_state;
  return ep_failf(host, ctx, EP_EIO, "cannot reach the vendor API at %s", "https://vendor.invalid");
#else
  test_state *s = host->alloc(ctx, sizeof *s);
  if (!s) return ep_failf(host, ctx, EP_ENOMEM, "out of memory");
  s->host = host;
  s->ctx = ctx;
  snprintf(s->id, sizeof s->id, "%s", TEST_ID);
#if TEST_VARIANT == VARIANT_NEEDY
  const char *endpoint = NULL;
  if (host->setting_string(ctx, "endpoint", &endpoint) < 0) {
    host->free(ctx, s);
    return ep_failf(host, ctx, EP_EINVAL, "setting 'endpoint' is required");
  }
#elif TEST_VARIANT == VARIANT_OS_ACTIONS
  /* A required setting without a value happens only on a node: there only the actions are used. */
  s->image_url = NULL;
  if (host->setting_string(ctx, "image_url", &s->image_url) == EP_ENOENT) s->image_url = NULL;
#endif
  trace(s, "init");
  *ret_state = s;
  return 0;
#endif
}

EP_PLUGIN_EXPORT const ep_plugin_entry ep_plugin = {
    EP_PLUGIN_ENTRY_HEADER,
#if TEST_VARIANT == VARIANT_ABI_MAJOR
    .abi_major = EP_ABI_MAJOR + 1,
#elif TEST_VARIANT == VARIANT_ABI_MINOR
    .abi_minor = EP_ABI_MINOR + 1,
#elif TEST_VARIANT == VARIANT_BAD_SIGNATURE
    .build_signature = 4u | (8u << 8) | (4u << 16) | (1u << 24),
#endif
    .id = TEST_ID,
    .version = "0.0.1",
    .description = "loader test plugin",
    .capabilities = test_capabilities,
    .settings = test_settings,
    .settings_count = EP_COUNT(test_settings),
    .init = test_init,
    .deinit = test_deinit,
    .get_capability = test_get_capability,
};
#endif
