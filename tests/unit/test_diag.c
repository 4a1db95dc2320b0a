/* Unit tests of core/lib/base/diag.c: the diagnostics list (copies, error count, the bound on
 * how many are kept) and its printed form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/diag.h"
#include "testutil.h"

/* What ep_diags_print writes (caller frees). */
static char *printed(const ep_diags *diags) {
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  assert_non_null(out);
  ep_diags_print(diags, out);
  fclose(out);
  return text;
}

static void add_copies_file_and_message_and_counts_errors(void **state) {
  (void)state;
  ep_diags diags = {0};
  char file[32] = "site.conf";
  ep_diags_add(&diags, EP_DIAG_ERROR, file, 12, "unknown key '%s'", "plugns");
  ep_diags_add(&diags, EP_DIAG_WARNING, NULL, 0, "plugin directory %s: missing", "/x");
  snprintf(file, sizeof file, "changed"); /* the list holds its own copy */
  assert_int_equal(diags.count, 2);
  assert_int_equal(diags.errors, 1); /* a warning is not an error */
  assert_int_equal(diags.items[0].severity, EP_DIAG_ERROR);
  assert_string_equal(diags.items[0].file, "site.conf");
  assert_int_equal(diags.items[0].line, 12);
  assert_string_equal(diags.items[0].message, "unknown key 'plugns'");
  assert_int_equal(diags.items[1].severity, EP_DIAG_WARNING);
  assert_null(diags.items[1].file);
  assert_string_equal(diags.items[1].message, "plugin directory /x: missing");
  ep_diags_clear(&diags);
}

static void print_omits_what_is_unknown(void **state) {
  (void)state;
  ep_diags diags = {0};
  ep_diags_add(&diags, EP_DIAG_ERROR, "a.conf", 3, "bad value");
  ep_diags_add(&diags, EP_DIAG_WARNING, "a.conf", 0, "no line");
  ep_diags_add(&diags, EP_DIAG_ERROR, NULL, 0, "no file");
  ep_diags_add(&diags, EP_DIAG_WARNING, NULL, 7, "line without file");
  char *text = printed(&diags);
  assert_string_equal(text, "a.conf:3: error: bad value\n"
                            "a.conf: warning: no line\n"
                            "error: no file\n"
                            "warning: line without file\n");
  free(text);
  ep_diags_clear(&diags);
}

static void past_the_bound_errors_are_counted_but_dropped(void **state) {
  (void)state;
  ep_diags diags = {0};
  for (int i = 0; i < EP_DIAGS_MAX + 5; i++) ep_diags_add(&diags, EP_DIAG_ERROR, "f", i + 1, "error %d", i);
  ep_diags_add(&diags, EP_DIAG_WARNING, "f", 1, "late warning");
  assert_int_equal(diags.count, EP_DIAGS_MAX);
  assert_int_equal(diags.errors, EP_DIAGS_MAX + 5);
  assert_string_equal(diags.items[EP_DIAGS_MAX - 1].message, "error 199");
  char *text = printed(&diags);
  assert_non_null(strstr(text, "f:200: error: error 199\n(6 further diagnostics omitted)\n"));
  assert_null(strstr(text, "error 200"));
  assert_null(strstr(text, "late warning"));
  free(text);
  ep_diags_clear(&diags);

  /* Exactly the bound: nothing was dropped, so nothing is said to be. */
  for (int i = 0; i < EP_DIAGS_MAX; i++) ep_diags_add(&diags, EP_DIAG_ERROR, "f", i + 1, "error %d", i);
  text = printed(&diags);
  assert_null(strstr(text, "omitted"));
  free(text);
  ep_diags_clear(&diags);
}

static void long_message_is_cut(void **state) {
  (void)state;
  ep_diags diags = {0};
  char big[3000];
  memset(big, 'q', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  ep_diags_add(&diags, EP_DIAG_ERROR, NULL, 0, "%s", big);
  assert_int_equal(diags.count, 1);
  size_t len = strlen(diags.items[0].message);
  assert_true(len >= 1000 && len < sizeof big - 1);
  assert_int_equal(strspn(diags.items[0].message, "q"), len);
  ep_diags_clear(&diags);
}

static void clear_empties_and_the_list_can_be_reused(void **state) {
  (void)state;
  ep_diags diags = {0};
  for (int i = 0; i < 20; i++) ep_diags_add(&diags, EP_DIAG_ERROR, "f", i, "e%d", i);
  ep_diags_clear(&diags);
  assert_int_equal(diags.count, 0);
  assert_int_equal(diags.errors, 0);
  assert_int_equal(diags.capacity, 0);
  assert_null(diags.items);
  ep_diags_add(&diags, EP_DIAG_WARNING, NULL, 0, "again");
  assert_int_equal(diags.count, 1);
  assert_int_equal(diags.errors, 0);
  assert_string_equal(diags.items[0].message, "again");
  ep_diags_clear(&diags);
  ep_diags_clear(&diags); /* clearing an empty list is harmless */
  char *text = printed(&diags);
  assert_string_equal(text, "");
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(add_copies_file_and_message_and_counts_errors),
      cmocka_unit_test(print_omits_what_is_unknown),
      cmocka_unit_test(past_the_bound_errors_are_counted_but_dropped),
      cmocka_unit_test(long_message_is_cut),
      cmocka_unit_test(clear_empties_and_the_list_can_be_reused),
  };
  return cmocka_run_group_tests_name("diag", tests, NULL, NULL);
}
