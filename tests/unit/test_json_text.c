/* Unit tests of core/lib/base/json_text.c: stored text as a JSON string (UTF-8 kept, each bad
 * byte replaced, NULL as ""), and ep_json_push's rule that a list is complete or absent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/json_text.h"

static void utf8_is_kept_and_bad_bytes_are_replaced(void **state) {
  (void)state;
  json_t *j = ep_json_text("h\xc3\xa9llo");
  assert_string_equal(json_string_value(j), "h\xc3\xa9llo");
  json_decref(j);
  j = ep_json_text("a\xff" "b\xc3");
  assert_string_equal(json_string_value(j), "a\xef\xbf\xbd" "b\xef\xbf\xbd");
  json_decref(j);
  j = ep_json_text(NULL);
  assert_string_equal(json_string_value(j), "");
  json_decref(j);
}

static void a_list_is_complete_or_absent(void **state) {
  (void)state;
  json_t *list = json_array();
  assert_true(ep_json_push(&list, json_integer(1)));
  assert_true(ep_json_push(&list, ep_json_text("two")));
  assert_int_equal(json_array_size(list), 2);
  /* A failed item (NULL, as a failed json_pack gives) takes the whole list with it. */
  assert_false(ep_json_push(&list, NULL));
  assert_null(list);
  /* Onto a list that is gone, an item is dropped, not leaked: its last reference goes. */
  json_t *item = json_string("three");
  json_incref(item);
  assert_false(ep_json_push(&list, item));
  assert_int_equal(item->refcount, 1);
  json_decref(item);
  assert_null(list);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(utf8_is_kept_and_bad_bytes_are_replaced),
      cmocka_unit_test(a_list_is_complete_or_absent),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
