/* Unit tests of core/lib/base/error.c: the calling thread's last error, its code, prefixing, and
 * the bound on a message's length. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/error.h"
#include "testutil.h"

static void set_records_message_and_code_and_returns_the_code(void **state) {
  (void)state;
  ep_error_clear();
  assert_int_equal(ep_error_set(EP_EINVAL, "config %s:%d: bad value", "a.conf", 12), EP_EINVAL);
  assert_string_equal(ep_error_message(), "config a.conf:12: bad value");
  assert_int_equal(ep_error_code(), EP_EINVAL);
  /* The next error replaces the last one entirely. */
  assert_int_equal(ep_error_set(-13, "short"), -13);
  assert_string_equal(ep_error_message(), "short");
  assert_int_equal(ep_error_code(), -13);
}

static void clear_leaves_no_message_and_code_zero(void **state) {
  (void)state;
  ep_error_set(EP_EIO, "something broke");
  ep_error_clear();
  assert_string_equal(ep_error_message(), "");
  assert_int_equal(ep_error_code(), 0);
}

static void prefix_adds_context_in_front_and_takes_the_new_code(void **state) {
  (void)state;
  ep_error_set(EP_ENOENT, "no such file");
  assert_int_equal(ep_error_prefix(EP_EINVAL, "tls.cert %s", "/etc/x.pem"), EP_EINVAL);
  assert_string_equal(ep_error_message(), "tls.cert /etc/x.pem: no such file");
  assert_int_equal(ep_error_code(), EP_EINVAL);
  ep_error_prefix(EP_EFAILED, "startup");
  assert_string_equal(ep_error_message(), "startup: tls.cert /etc/x.pem: no such file");
  assert_int_equal(ep_error_code(), EP_EFAILED);
  /* The prefix may quote the message it prefixes (it is formatted before anything moves). */
  ep_error_set(EP_EIO, "abc");
  ep_error_prefix(EP_EIO, "[%s]", ep_error_message());
  assert_string_equal(ep_error_message(), "[abc]: abc");
}

static void set_may_quote_the_current_message(void **state) {
  (void)state;
  ep_error_set(EP_EIO, "disk gone");
  /* The message being replaced is an argument: it is read before it is overwritten. */
  assert_int_equal(ep_error_set(EP_EFAILED, "plugin x: %s", ep_error_message()), EP_EFAILED);
  assert_string_equal(ep_error_message(), "plugin x: disk gone");
}

static void long_message_is_cut_to_the_bound(void **state) {
  (void)state;
  char big[3 * EP_ERROR_MESSAGE_MAX];
  for (size_t i = 0; i < sizeof big - 1; i++) big[i] = (char)('a' + i % 26);
  big[sizeof big - 1] = '\0';
  ep_error_set(EP_EINVAL, "%s", big);
  assert_int_equal(strlen(ep_error_message()), EP_ERROR_MESSAGE_MAX - 1);
  assert_memory_equal(ep_error_message(), big, EP_ERROR_MESSAGE_MAX - 1); /* the beginning is kept */
}

static void prefix_of_a_full_message_keeps_the_prefix_and_the_bound(void **state) {
  (void)state;
  char big[2 * EP_ERROR_MESSAGE_MAX];
  memset(big, 'm', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  ep_error_set(EP_EIO, "%s", big);
  ep_error_prefix(EP_EINVAL, "ctx");
  const char *m = ep_error_message();
  assert_int_equal(strlen(m), EP_ERROR_MESSAGE_MAX - 1);
  assert_memory_equal(m, "ctx: mmm", 8);
  assert_int_equal(m[EP_ERROR_MESSAGE_MAX - 2], 'm');

  /* A prefix longer than the bound: the prefix is cut, the separator still ends it. */
  char huge_prefix[2 * EP_ERROR_MESSAGE_MAX];
  memset(huge_prefix, 'p', sizeof huge_prefix - 1);
  huge_prefix[sizeof huge_prefix - 1] = '\0';
  ep_error_set(EP_EIO, "old");
  ep_error_prefix(EP_EIO, "%s", huge_prefix);
  m = ep_error_message();
  assert_int_equal(strlen(m), EP_ERROR_MESSAGE_MAX - 1);
  assert_int_equal(m[0], 'p');
  assert_string_equal(m + EP_ERROR_MESSAGE_MAX - 3, ": ");
}

typedef struct thread_view {
  char initial[64];
  int initial_code;
  char after[64];
} thread_view;

static void *other_thread(void *arg) {
  thread_view *v = arg;
  snprintf(v->initial, sizeof v->initial, "%s", ep_error_message());
  v->initial_code = ep_error_code();
  ep_error_set(EP_ETIMEDOUT, "thread's own error");
  snprintf(v->after, sizeof v->after, "%s", ep_error_message());
  return NULL;
}

static void each_thread_has_its_own_last_error(void **state) {
  (void)state;
  ep_error_set(EP_EPERM, "main thread's error");
  thread_view v;
  memset(&v, 0, sizeof v);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, other_thread, &v), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_string_equal(v.initial, ""); /* a new thread starts with none */
  assert_int_equal(v.initial_code, 0);
  assert_string_equal(v.after, "thread's own error");
  assert_string_equal(ep_error_message(), "main thread's error"); /* untouched by the other thread */
  assert_int_equal(ep_error_code(), EP_EPERM);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(set_records_message_and_code_and_returns_the_code),
      cmocka_unit_test(clear_leaves_no_message_and_code_zero),
      cmocka_unit_test(set_may_quote_the_current_message),
      cmocka_unit_test(prefix_adds_context_in_front_and_takes_the_new_code),
      cmocka_unit_test(long_message_is_cut_to_the_bound),
      cmocka_unit_test(prefix_of_a_full_message_keeps_the_prefix_and_the_bound),
      cmocka_unit_test(each_thread_has_its_own_last_error),
  };
  return cmocka_run_group_tests_name("error", tests, NULL, NULL);
}
