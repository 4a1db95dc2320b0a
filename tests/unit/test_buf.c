/* Unit tests of core/lib/base/buf.c: the growable buffer, its limit, printf, take and wipe.
 *
 * The wipe tests need to see a block at the moment the buffer frees it, which reading freed
 * memory cannot do without undefined behaviour. This file is linked with -Wl,--wrap=free
 * (tests/CMakeLists.txt): every call to free() from the code linked in (buf.c among it) goes
 * to __wrap_free below, which looks at the block while it is still allocated, then frees it
 * with __real_free. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/error.h"

/* ---- watching free() ------------------------------------------------------------------------ */

void __real_free(void *p);
void __wrap_free(void *p);

static struct {
  const void *block; /* the block to look at when it is freed */
  size_t size;       /* how many of its bytes */
  bool freed;        /* it was freed */
  bool zero;         /* all size bytes were zero then */
} watch;

void __wrap_free(void *p) {
  if (p && p == watch.block) {
    const unsigned char *bytes = p;
    watch.zero = true;
    for (size_t i = 0; i < watch.size; i++) watch.zero = watch.zero && bytes[i] == 0;
    watch.freed = true;
    watch.block = NULL;
  }
  __real_free(p);
}

static void watch_block(const void *block, size_t size) {
  watch.block = block;
  watch.size = size;
  watch.freed = watch.zero = false;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void grows_by_doubling_and_stays_terminated(void **state) {
  (void)state;
  ep_buf b;
  ep_buf_init(&b, "test", 1 << 20, 0);
  assert_null(b.data);
  assert_int_equal(b.len, 0);
  char expect[5000];
  for (size_t i = 0; i < sizeof expect - 1; i++) {
    char c = (char)('a' + i % 26);
    expect[i] = c;
    assert_int_equal(ep_buf_append(&b, &c, 1), 0);
    assert_int_equal(b.len, i + 1);
    assert_true(b.cap > b.len);
    assert_int_equal(b.data[b.len], '\0');
  }
  expect[sizeof expect - 1] = '\0';
  assert_string_equal(b.data, expect);
  assert_true(b.cap < 2 * (sizeof expect)); /* doubled, not grown a byte at a time or wildly */
  assert_int_equal(ep_buf_append(&b, NULL, 0), 0);
  assert_int_equal(b.len, sizeof expect - 1);
  ep_buf_free(&b);
  assert_null(b.data);
  ep_buf_free(&b); /* twice is fine */
  ep_buf_free(NULL);
}

static void bytes_with_nuls_are_kept(void **state) {
  (void)state;
  ep_buf b;
  ep_buf_init(&b, "test", 64, 0);
  assert_int_equal(ep_buf_append(&b, "a\0b", 3), 0);
  assert_int_equal(ep_buf_append_str(&b, "cd"), 0);
  assert_int_equal(b.len, 5);
  assert_memory_equal(b.data, "a\0bcd", 6);
  ep_buf_free(&b);
}

static void past_max_is_refused_and_the_content_is_kept(void **state) {
  (void)state;
  ep_buf b;
  ep_buf_init(&b, "cloud-init user-data", 10, 0);
  assert_int_equal(ep_buf_append(&b, "0123456789", 10), 0); /* exactly max: taken */
  assert_int_equal(b.len, 10);
  assert_true(b.cap <= 11); /* growth never allocates past the limit */
  ep_error_clear();
  assert_int_equal(ep_buf_append(&b, "x", 1), EP_ERANGE);
  assert_string_equal(ep_error_message(), "cloud-init user-data: longer than 10 bytes");
  assert_int_equal(ep_buf_reserve(&b, 1), EP_ERANGE);
  assert_int_equal(ep_buf_printf(&b, "%d", 7), EP_ERANGE);
  assert_int_equal(b.len, 10);
  assert_string_equal(b.data, "0123456789");

  ep_buf_free(&b);
  ep_buf c;
  ep_buf_init(&c, NULL, 4, 0);
  assert_int_equal(ep_buf_append(&c, "abc", 3), 0);
  assert_int_equal(ep_buf_append(&c, "de", 2), EP_ERANGE);
  assert_string_equal(ep_error_message(), "buffer: longer than 4 bytes");
  assert_string_equal(c.data, "abc"); /* not part of "de" either */
  assert_int_equal(ep_buf_reserve(&c, SIZE_MAX), EP_ERANGE); /* no wrap-around */
  ep_buf_free(&c);
}

static void a_zero_max_holds_only_the_empty_text(void **state) {
  (void)state;
  ep_buf b;
  ep_buf_init(&b, "t", 0, 0);
  assert_int_equal(ep_buf_append(&b, "", 0), 0);
  assert_int_equal(ep_buf_append(&b, "x", 1), EP_ERANGE);
  size_t len = 99;
  char *text = ep_buf_take(&b, &len);
  assert_non_null(text);
  assert_string_equal(text, "");
  assert_int_equal(len, 0);
  free(text);
}

static void printf_appends_formatted_text_of_any_length(void **state) {
  (void)state;
  ep_buf b;
  ep_buf_init(&b, "test", 1 << 20, 0);
  assert_int_equal(ep_buf_printf(&b, "client_id=%s\n", "node-1"), 0);
  assert_int_equal(ep_buf_printf(&b, "%s%d%s", "", 42, ""), 0);
  assert_string_equal(b.data, "client_id=node-1\n42");
  assert_int_equal(b.len, strlen("client_id=node-1\n42"));
  char long_value[3000];
  memset(long_value, 'v', sizeof long_value - 1);
  long_value[sizeof long_value - 1] = '\0';
  assert_int_equal(ep_buf_printf(&b, "[%s]", long_value), 0); /* past the capacity: grows, formats again */
  assert_int_equal(b.len, strlen("client_id=node-1\n42") + 2 + sizeof long_value - 1);
  assert_int_equal(b.data[b.len - 1], ']');
  assert_int_equal(b.data[b.len], '\0');
  assert_memory_equal(b.data + strlen("client_id=node-1\n42") + 1, long_value, sizeof long_value - 1);
  ep_buf_free(&b);
}

static void printf_past_max_leaves_the_content_as_it_was(void **state) {
  (void)state;
  ep_buf b;
  ep_buf_init(&b, "t", 100, EP_BUF_WIPE);
  assert_int_equal(ep_buf_append_str(&b, "head:"), 0);
  assert_int_equal(ep_buf_reserve(&b, 60), 0); /* room enough that vsnprintf writes into it first */
  char secret[120];
  memset(secret, 's', sizeof secret - 1);
  secret[sizeof secret - 1] = '\0';
  assert_int_equal(ep_buf_printf(&b, "%s", secret), EP_ERANGE);
  assert_int_equal(b.len, 5);
  assert_string_equal(b.data, "head:");
  for (size_t i = b.len; i < b.cap; i++) assert_int_equal(b.data[i], '\0'); /* the partial write is wiped */
  ep_buf_free(&b);
}

static void take_hands_over_the_block_and_leaves_it_empty(void **state) {
  (void)state;
  ep_buf b;
  ep_buf_init(&b, "test", 1024, 0);
  assert_int_equal(ep_buf_append_str(&b, "hello"), 0);
  size_t len = 0;
  char *text = ep_buf_take(&b, &len);
  assert_string_equal(text, "hello");
  assert_int_equal(len, 5);
  assert_null(b.data);
  assert_int_equal(b.len, 0);
  assert_int_equal(b.cap, 0);
  assert_int_equal(b.max, 1024); /* still usable, with its limit */
  assert_int_equal(ep_buf_append_str(&b, "again"), 0);
  char *second = ep_buf_take(&b, NULL);
  assert_string_equal(second, "again");
  assert_ptr_not_equal(text, second);
  free(text);
  free(second);
  char *empty = ep_buf_take(&b, &len); /* nothing appended: "" */
  assert_string_equal(empty, "");
  assert_int_equal(len, 0);
  free(empty);
  ep_buf_free(&b);
}

static void reset_empties_and_keeps_the_memory(void **state) {
  (void)state;
  ep_buf b;
  ep_buf_init(&b, "test", 1024, 0);
  ep_buf_reset(&b); /* nothing yet: fine */
  assert_int_equal(ep_buf_append_str(&b, "first"), 0);
  char *data = b.data;
  ep_buf_reset(&b);
  assert_int_equal(b.len, 0);
  assert_string_equal(b.data, "");
  assert_int_equal(ep_buf_append_str(&b, "2nd"), 0);
  assert_ptr_equal(b.data, data);
  assert_string_equal(b.data, "2nd");
  ep_buf_free(&b);
}

static void wipe_zeroes_the_old_block_on_every_grow(void **state) {
  (void)state;
  ep_buf b;
  ep_buf_init(&b, "secret", 1 << 20, EP_BUF_WIPE);
  char secret[1024];
  memset(secret, 'S', sizeof secret);
  assert_int_equal(ep_buf_append(&b, secret, 40), 0);
  for (int grow = 0; grow < 4; grow++) {
    char *old = b.data;
    size_t old_cap = b.cap, old_len = b.len;
    watch_block(old, old_cap);
    assert_int_equal(ep_buf_append(&b, secret, old_cap - old_len + 1), 0); /* one byte past the capacity */
    assert_true(watch.freed);
    assert_true(watch.zero); /* every byte of the old block, not only the content */
    assert_ptr_not_equal(b.data, old);
    for (size_t i = 0; i < b.len; i++) assert_int_equal(b.data[i], 'S'); /* the content moved intact */
  }
  char *data = b.data;
  watch_block(data, b.cap);
  ep_buf_free(&b);
  assert_true(watch.freed);
  assert_true(watch.zero);
}

static void wipe_also_applies_to_printf_reserve_and_reset(void **state) {
  (void)state;
  ep_buf b;
  ep_buf_init(&b, "secret", 1 << 20, EP_BUF_WIPE);
  assert_int_equal(ep_buf_printf(&b, "client_secret=%s\n", "hunter2hunter2hunter2hunter2hunter2hunter2"), 0);
  watch_block(b.data, b.cap);
  assert_int_equal(ep_buf_reserve(&b, b.cap * 3), 0);
  assert_true(watch.freed && watch.zero);
  assert_string_equal(b.data, "client_secret=hunter2hunter2hunter2hunter2hunter2hunter2\n");
  size_t len = b.len;
  ep_buf_reset(&b);
  for (size_t i = 0; i <= len; i++) assert_int_equal(b.data[i], '\0');
  ep_buf_free(&b);
}

static void without_wipe_free_leaves_memory_as_it_is(void **state) {
  (void)state;
  /* The watch sees the block at free: shows that the zeroing above is the flag's doing, so
   * the wipe tests can fail. */
  ep_buf b;
  ep_buf_init(&b, "plain", 1024, 0);
  assert_int_equal(ep_buf_append_str(&b, "not a secret"), 0);
  watch_block(b.data, b.len);
  ep_buf_free(&b);
  assert_true(watch.freed);
  assert_false(watch.zero);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(grows_by_doubling_and_stays_terminated),
      cmocka_unit_test(bytes_with_nuls_are_kept),
      cmocka_unit_test(past_max_is_refused_and_the_content_is_kept),
      cmocka_unit_test(a_zero_max_holds_only_the_empty_text),
      cmocka_unit_test(printf_appends_formatted_text_of_any_length),
      cmocka_unit_test(printf_past_max_leaves_the_content_as_it_was),
      cmocka_unit_test(take_hands_over_the_block_and_leaves_it_empty),
      cmocka_unit_test(reset_empties_and_keeps_the_memory),
      cmocka_unit_test(wipe_zeroes_the_old_block_on_every_grow),
      cmocka_unit_test(wipe_also_applies_to_printf_reserve_and_reset),
      cmocka_unit_test(without_wipe_free_leaves_memory_as_it_is),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
