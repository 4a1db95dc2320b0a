/* Unit tests of core/lib/base/clock.c: deadlines as struct timespec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <time.h>

#include "base/clock.h"

static struct timespec at(time_t s, long ns) { return (struct timespec){.tv_sec = s, .tv_nsec = ns}; }

static void assert_at(struct timespec t, time_t s, long ns) {
  assert_int_equal(t.tv_sec, s);
  assert_int_equal(t.tv_nsec, ns);
}

static void adding_carries_nanoseconds_into_seconds(void **state) {
  (void)state;
  assert_at(ep_timespec_add_ms(at(10, 0), 0), 10, 0);
  assert_at(ep_timespec_add_ms(at(10, 0), 1), 10, 1000000);
  assert_at(ep_timespec_add_ms(at(10, 0), 2500), 12, 500000000);
  assert_at(ep_timespec_add_ms(at(10, 600000000), 500), 11, 100000000);
  assert_at(ep_timespec_add_ms(at(10, 999999999), 1), 11, 999999);
  assert_at(ep_timespec_add_ms(at(10, 500000000), 500), 11, 0); /* exactly a second: no tv_nsec of 1e9 */
}

static void adding_a_negative_delay_borrows_a_second(void **state) {
  (void)state;
  assert_at(ep_timespec_add_ms(at(10, 0), -1), 9, 999000000);
  assert_at(ep_timespec_add_ms(at(10, 200000000), -300), 9, 900000000);
  assert_at(ep_timespec_add_ms(at(10, 200000000), -2200), 8, 0);
  assert_at(ep_timespec_add_ms(ep_timespec_add_ms(at(10, 123456789), 98765), -98765), 10, 123456789);
}

static void compare_orders_by_seconds_then_nanoseconds(void **state) {
  (void)state;
  struct timespec a = at(5, 999999999), b = at(6, 0), c = at(6, 1);
  assert_true(ep_timespec_cmp(&a, &b) < 0);
  assert_true(ep_timespec_cmp(&b, &a) > 0);
  assert_true(ep_timespec_cmp(&b, &c) < 0);
  assert_true(ep_timespec_cmp(&c, &b) > 0);
  assert_int_equal(ep_timespec_cmp(&c, &c), 0);
}

static void a_deadline_lies_the_delay_ahead_on_its_clock(void **state) {
  (void)state;
  clockid_t clocks[] = {CLOCK_MONOTONIC, CLOCK_REALTIME};
  for (size_t i = 0; i < sizeof clocks / sizeof clocks[0]; i++) {
    struct timespec before, after;
    clock_gettime(clocks[i], &before);
    struct timespec deadline = ep_clock_deadline(clocks[i], 60000);
    clock_gettime(clocks[i], &after);
    struct timespec earliest = ep_timespec_add_ms(before, 60000), latest = ep_timespec_add_ms(after, 60000);
    assert_true(ep_timespec_cmp(&deadline, &earliest) >= 0);
    assert_true(ep_timespec_cmp(&deadline, &latest) <= 0);
    assert_true(deadline.tv_nsec >= 0 && deadline.tv_nsec < 1000000000L);
    struct timespec past = ep_clock_deadline(clocks[i], -1000);
    assert_true(ep_timespec_cmp(&past, &after) < 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(adding_carries_nanoseconds_into_seconds),
      cmocka_unit_test(adding_a_negative_delay_borrows_a_second),
      cmocka_unit_test(compare_orders_by_seconds_then_nanoseconds),
      cmocka_unit_test(a_deadline_lies_the_delay_ahead_on_its_clock),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
