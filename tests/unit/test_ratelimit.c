/* Unit tests of core/lib/base/ratelimit.c: per-key token buckets with a bounded key table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <time.h>

#include "base/error.h"
#include "base/ratelimit.h"

static void burst_then_refused_with_a_retry_time(void **state) {
  (void)state;
  ep_ratelimit *rl = NULL;
  assert_int_equal(ep_ratelimit_new(&rl, 1.0, 3, 8), 0);
  for (int i = 0; i < 3; i++) assert_true(ep_ratelimit_take(rl, "10.0.0.1", NULL));
  uint32_t retry = 0;
  assert_false(ep_ratelimit_take(rl, "10.0.0.1", &retry));
  assert_true(retry > 0 && retry <= 1001);
  assert_true(ep_ratelimit_take(rl, "10.0.0.2", NULL)); /* another key has its own bucket */
  ep_ratelimit_free(rl);
}

static void tokens_come_back_at_the_rate(void **state) {
  (void)state;
  ep_ratelimit *rl = NULL;
  assert_int_equal(ep_ratelimit_new(&rl, 50.0, 1, 4), 0); /* one token every 20 ms */
  assert_true(ep_ratelimit_take(rl, "k", NULL));
  assert_false(ep_ratelimit_take(rl, "k", NULL));
  nanosleep(&(struct timespec){0, 60 * 1000 * 1000}, NULL);
  assert_true(ep_ratelimit_take(rl, "k", NULL));
  ep_ratelimit_free(rl);
}

static void the_key_table_stays_bounded_and_keeps_the_limited(void **state) {
  (void)state;
  ep_ratelimit *rl = NULL;
  assert_int_equal(ep_ratelimit_new(&rl, 0.001, 2, 16), 0);
  assert_true(ep_ratelimit_take(rl, "victim-of-a-flood", NULL));
  assert_true(ep_ratelimit_take(rl, "victim-of-a-flood", NULL));
  assert_false(ep_ratelimit_take(rl, "victim-of-a-flood", NULL));
  /* Ten thousand other keys, each taking one token: their buckets are not full, so they
   * compete for 15 slots; the table never grows past 16. */
  char key[32];
  for (int i = 0; i < 10000; i++) {
    snprintf(key, sizeof key, "peer-%d", i);
    assert_true(ep_ratelimit_take(rl, key, NULL));
  }
  ep_ratelimit_free(rl); /* ASan: nothing leaked, nothing written out of bounds */
}

static void full_buckets_are_evicted_first(void **state) {
  (void)state;
  ep_ratelimit *rl = NULL;
  assert_int_equal(ep_ratelimit_new(&rl, 20.0, 1, 2), 0); /* one token every 50 ms, two keys */
  assert_true(ep_ratelimit_take(rl, "a", NULL));
  nanosleep(&(struct timespec){0, 80 * 1000 * 1000}, NULL); /* "a" is full again */
  assert_true(ep_ratelimit_take(rl, "b", NULL));           /* "b" is empty */
  assert_true(ep_ratelimit_take(rl, "c", NULL));           /* the table is full: "a" goes, not "b" */
  assert_false(ep_ratelimit_take(rl, "b", NULL));          /* "b" is still held to its budget */
  ep_ratelimit_free(rl);
}

static void bad_settings_and_no_limiter(void **state) {
  (void)state;
  ep_ratelimit *rl = NULL;
  assert_int_equal(ep_ratelimit_new(&rl, 0, 1, 1), EP_EINVAL);
  assert_int_equal(ep_ratelimit_new(&rl, 1, 0, 1), EP_EINVAL);
  assert_int_equal(ep_ratelimit_new(&rl, 1, 1, 0), EP_EINVAL);
  assert_null(rl);
  assert_true(ep_ratelimit_take(NULL, "anyone", NULL)); /* a switched-off budget */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(burst_then_refused_with_a_retry_time),
      cmocka_unit_test(tokens_come_back_at_the_rate),
      cmocka_unit_test(the_key_table_stays_bounded_and_keeps_the_limited),
      cmocka_unit_test(full_buckets_are_evicted_first),
      cmocka_unit_test(bad_settings_and_no_limiter),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
