/* Unit tests of core/lib/base/files.c: ep_read_text_file reads a bounded regular file, never
 * through a symbolic link, refuses a secret others may read, and drops trailing whitespace;
 * every refusal names the path and leaves *out alone. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "base/error.h"
#include "base/files.h"
#include "testutil.h"

static int setup(void **state) {
  *state = tu_mkdtemp();
  return *state ? 0 : -1;
}

static int teardown(void **state) {
  tu_rmdir(*state);
  return 0;
}

static char *write_mode(const char *dir, const char *name, const char *text, mode_t mode) {
  char *path = tu_write(dir, name, text);
  assert_non_null(path);
  assert_int_equal(chmod(path, mode), 0);
  return path;
}

/* Reads path expecting failure with code; checks *out was left alone and the message names
 * the path and contains why. */
static void assert_refused(const char *path, size_t max, ep_file_access access, int code, const char *why) {
  char *sentinel = (char *)"untouched";
  char *out = sentinel;
  assert_int_equal(ep_read_text_file(&out, path, max, access), code);
  assert_ptr_equal(out, sentinel);
  if (!strstr(ep_error_message(), path) || !strstr(ep_error_message(), why))
    fail_msg("message \"%s\" lacks \"%s\" or \"%s\"", ep_error_message(), path, why);
}

static void reads_a_regular_file_without_trailing_whitespace(void **state) {
  char *path = write_mode(*state, "cert.pem", "  line one\n\tline two \r\n \n\r\n  ", 0644);
  char *out = NULL;
  assert_int_equal(ep_read_text_file(&out, path, 4096, EP_FILE_ANY_ACCESS), 0);
  assert_string_equal(out, "  line one\n\tline two"); /* leading and inner whitespace stays */
  free(out);
  free(path);

  path = write_mode(*state, "empty", "", 0644);
  assert_int_equal(ep_read_text_file(&out, path, 4096, EP_FILE_ANY_ACCESS), 0);
  assert_string_equal(out, "");
  free(out);
  free(path);

  path = write_mode(*state, "only-space", " \n \r\n\t", 0644);
  assert_int_equal(ep_read_text_file(&out, path, 4096, EP_FILE_ANY_ACCESS), 0);
  assert_string_equal(out, "");
  free(out);
  free(path);
}

static void size_bound_is_inclusive(void **state) {
  char *path = write_mode(*state, "ten", "0123456789", 0644);
  char *out = NULL;
  assert_int_equal(ep_read_text_file(&out, path, 10, EP_FILE_ANY_ACCESS), 0);
  assert_string_equal(out, "0123456789");
  free(out);
  assert_refused(path, 9, EP_FILE_ANY_ACCESS, EP_EINVAL, "larger than 9 bytes");
  free(path);
}

static void symbolic_link_is_refused_even_to_a_good_file(void **state) {
  char *target = write_mode(*state, "real.pem", "pem", 0644);
  char *link = tu_path(*state, "link.pem");
  assert_int_equal(symlink(target, link), 0);
  assert_refused(link, 4096, EP_FILE_ANY_ACCESS, -ELOOP, "link.pem");
  char *out = NULL;
  assert_int_equal(ep_read_text_file(&out, target, 4096, EP_FILE_ANY_ACCESS), 0); /* the file itself is fine */
  free(out);
  free(link);
  free(target);
}

static void what_is_not_a_regular_file_is_refused(void **state) {
  assert_refused(*state, 4096, EP_FILE_ANY_ACCESS, EP_EINVAL, "not a regular file"); /* a directory */
  assert_refused("/dev/null", 4096, EP_FILE_ANY_ACCESS, EP_EINVAL, "not a regular file");
  char *missing = tu_path(*state, "missing.pem");
  assert_refused(missing, 4096, EP_FILE_ANY_ACCESS, -ENOENT, "No such file");
  free(missing);
  /* A FIFO with no writer: refused at once, not a read that waits forever (the test's
   * timeout would catch the wait). */
  char *fifo = tu_path(*state, "fifo");
  assert_int_equal(mkfifo(fifo, 0600), 0);
  assert_refused(fifo, 4096, EP_FILE_ANY_ACCESS, EP_EINVAL, "not a regular file");
  free(fifo);
}

static void owner_only_refuses_group_or_other_access(void **state) {
  const char *secret = "s3cr3t-token-value";
  char *path = write_mode(*state, "token", secret, 0600);
  char *out = NULL;
  assert_int_equal(ep_read_text_file(&out, path, 4096, EP_FILE_OWNER_ONLY), 0);
  assert_string_equal(out, secret);
  free(out);

  mode_t refused[] = {0640, 0604, 0620, 0602, 0610, 0601, 0644, 0666};
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    assert_int_equal(chmod(path, refused[i]), 0);
    assert_refused(path, 4096, EP_FILE_OWNER_ONLY, EP_EPERM, "readable by group or others");
    assert_null(strstr(ep_error_message(), secret)); /* the secret is never in the message */
  }
  /* The same file is fine when it is not a secret. */
  assert_int_equal(ep_read_text_file(&out, path, 4096, EP_FILE_ANY_ACCESS), 0);
  free(out);
  assert_int_equal(chmod(path, 0400), 0);
  assert_int_equal(ep_read_text_file(&out, path, 4096, EP_FILE_OWNER_ONLY), 0);
  free(out);
  free(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(reads_a_regular_file_without_trailing_whitespace, setup, teardown),
      cmocka_unit_test_setup_teardown(size_bound_is_inclusive, setup, teardown),
      cmocka_unit_test_setup_teardown(symbolic_link_is_refused_even_to_a_good_file, setup, teardown),
      cmocka_unit_test_setup_teardown(what_is_not_a_regular_file_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(owner_only_refuses_group_or_other_access, setup, teardown),
  };
  return cmocka_run_group_tests_name("files", tests, NULL, NULL);
}
