/* Unit tests of core/lib/base/suggest.c: "did you mean" for misspelt names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/suggest.h"

static const char *const keys[] = {"listen", "paths", "tls", "provisioning", "plugins"};

static void suggests_close_names(void **state) {
  (void)state;
  assert_string_equal(ep_suggest("plugns", keys, 5), "plugins");
  assert_string_equal(ep_suggest("lsiten", keys, 5), "listen"); /* transposition */
  assert_string_equal(ep_suggest("PATHS", keys, 5), "paths");   /* case-insensitive */
  assert_string_equal(ep_suggest("provisoning", keys, 5), "provisioning");
}

static void refuses_far_names(void **state) {
  (void)state;
  assert_null(ep_suggest("database", keys, 5));
  assert_null(ep_suggest("x", keys, 5));
  assert_null(ep_suggest("", keys, 5));
  assert_null(ep_suggest("plugins", keys, 0));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(suggests_close_names),
      cmocka_unit_test(refuses_far_names),
  };
  return cmocka_run_group_tests_name("suggest", tests, NULL, NULL);
}
