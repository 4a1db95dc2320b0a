/* Unit tests of core/lib/base/secret.c: secret comparison (lengths and prefixes included) and
 * reading a secret file, which others must not be able to read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "base/error.h"
#include "base/secret.h"
#include "testutil.h"

static void equal_secrets_compare_equal(void **state) {
  (void)state;
  assert_true(ep_secret_equal("", ""));
  assert_true(ep_secret_equal("a", "a"));
  char a[EP_OPERATOR_TOKEN_MAX + 1], b[EP_OPERATOR_TOKEN_MAX + 1];
  for (size_t i = 0; i < EP_OPERATOR_TOKEN_MAX; i++) a[i] = b[i] = (char)('!' + i % 90);
  a[EP_OPERATOR_TOKEN_MAX] = b[EP_OPERATOR_TOKEN_MAX] = '\0';
  assert_true(ep_secret_equal(a, b));
  /* One byte off anywhere, first, middle or last, makes them differ. */
  size_t where[] = {0, EP_OPERATOR_TOKEN_MAX / 2, EP_OPERATOR_TOKEN_MAX - 1};
  for (size_t i = 0; i < 3; i++) {
    b[where[i]] ^= 0x01;
    assert_false(ep_secret_equal(a, b));
    b[where[i]] ^= 0x01;
  }
  assert_true(ep_secret_equal(a, b));
}

static void different_lengths_and_prefixes_differ(void **state) {
  (void)state;
  assert_false(ep_secret_equal("", "a"));
  assert_false(ep_secret_equal("a", ""));
  assert_false(ep_secret_equal("token", "token1")); /* a prefix is not the secret */
  assert_false(ep_secret_equal("token1", "token"));
  assert_false(ep_secret_equal("abc", "abd"));
  assert_false(ep_secret_equal("abc", "ABC"));
  /* Only the bytes before a NUL count: the secrets are C strings. */
  assert_true(ep_secret_equal("abc\0x", "abc\0y"));
}

static void secret_file_is_read_when_only_its_owner_may(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  const char *token = "0123456789abcdef-operator-token";
  char *path = tu_write(dir, "operator.token", "0123456789abcdef-operator-token\n");
  assert_int_equal(chmod(path, 0600), 0);
  char *out = NULL;
  assert_int_equal(ep_read_secret_file(&out, path, EP_OPERATOR_TOKEN_MAX), 0);
  assert_string_equal(out, token);
  assert_true(ep_secret_equal(out, token));
  free(out);

  /* Group- or world-readable: refused, the message names the file but not the secret. */
  mode_t modes[] = {0640, 0644, 0604};
  for (size_t i = 0; i < 3; i++) {
    out = NULL;
    assert_int_equal(chmod(path, modes[i]), 0);
    assert_int_equal(ep_read_secret_file(&out, path, EP_OPERATOR_TOKEN_MAX), EP_EPERM);
    assert_null(out);
    assert_non_null(strstr(ep_error_message(), path));
    assert_null(strstr(ep_error_message(), "operator-token"));
  }

  /* The size bound is the caller's. */
  assert_int_equal(chmod(path, 0600), 0);
  assert_int_equal(ep_read_secret_file(&out, path, 8), EP_EINVAL);
  assert_non_null(strstr(ep_error_message(), "larger than 8 bytes"));
  free(path);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(equal_secrets_compare_equal),
      cmocka_unit_test(different_lengths_and_prefixes_differ),
      cmocka_unit_test(secret_file_is_read_when_only_its_owner_may),
  };
  return cmocka_run_group_tests_name("secret", tests, NULL, NULL);
}
