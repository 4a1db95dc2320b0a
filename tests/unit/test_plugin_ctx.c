/* Unit tests of core/lib/runtime/plugin_ctx.c: a prepared context starts with nothing a
 * plugin could misuse (no run, no publishing, no reboot, no error) whatever the memory held,
 * and the plugin's error falls back to the caller's text when it set none. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "runtime/plugin_ctx.h"
#include "testutil.h"

static const void *find_nothing(const void *set, const char *capability_id, void **ret_state) {
  (void)set, (void)capability_id, (void)ret_state;
  return NULL;
}

static void init_keeps_identity_and_clears_everything_else(void **state) {
  (void)state;
  ep_ctx ctx;
  memset(&ctx, 0xa5, sizeof ctx); /* a reused context, or stack garbage */
  ep_fields settings = {0};
  static const char lookup_set[] = "set";
  ep_ctx_init(&ctx, "vendor-x", &settings, (ep_capability_lookup){.find = find_nothing, .set = lookup_set});
  assert_string_equal(ctx.plugin_id, "vendor-x");
  assert_ptr_equal(ctx.settings, &settings);
  assert_ptr_equal(ctx.capabilities.find, find_nothing);
  assert_ptr_equal(ctx.capabilities.set, lookup_set);
  /* Nothing of a run, of init or of an earlier call survives. */
  assert_null(ctx.params);
  assert_null(ctx.progress);
  assert_null(ctx.log_line);
  assert_null(ctx.cancel);
  assert_null(ctx.config);
  assert_null(ctx.run_target_disk);
  assert_null(ctx.run_scratch_dir);
  assert_string_equal(ctx.run_deadline, "");
  assert_string_equal(ctx.reboot, "");
  assert_false(ctx.publishing);
  assert_int_equal(ctx.published_count, 0);
  assert_int_equal(ctx.error_code, 0);
  assert_string_equal(ctx.error_message, "");
}

static void error_falls_back_until_the_plugin_sets_one(void **state) {
  (void)state;
  ep_ctx ctx;
  ep_ctx_init(&ctx, "p", NULL, (ep_capability_lookup){0});
  assert_string_equal(ep_ctx_error(&ctx, "init failed"), "init failed");
  assert_null(ep_ctx_error(&ctx, NULL));
  snprintf(ctx.error_message, sizeof ctx.error_message, "%s", "vendor API down");
  assert_string_equal(ep_ctx_error(&ctx, "init failed"), "vendor API down");
  /* Initialising again forgets it. */
  ep_ctx_init(&ctx, "p", NULL, (ep_capability_lookup){0});
  assert_string_equal(ep_ctx_error(&ctx, "init failed"), "init failed");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(init_keeps_identity_and_clears_everything_else),
      cmocka_unit_test(error_falls_back_until_the_plugin_sets_one),
  };
  return cmocka_run_group_tests_name("plugin_ctx", tests, NULL, NULL);
}
