/* Unit tests of core/lib/base/fields.c: declarations, value validation, typed lookup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/error.h"
#include "base/fields.h"

static const ep_field_decl good[] = {
    EP_FIELD_STRING_DECL("url", "http://x", EP_FIELD_OPTIONAL, 16, "where"),
    EP_FIELD_INT_DECL("retries", "3", EP_FIELD_OPTIONAL, 0, 10, "how often"),
    EP_FIELD_BOOL_DECL("strict", "false", EP_FIELD_OPTIONAL, "be strict"),
    EP_FIELD_STRING_DECL("token", NULL, EP_FIELD_REQUIRED, 0, "secret"),
};

static void defaults_and_lookup(void **state) {
  (void)state;
  ep_fields f;
  assert_int_equal(ep_fields_init(&f, good, 4, sizeof(ep_field_decl)), 0);
  const char *s = NULL;
  int64_t i = -1;
  int32_t b = -1;
  assert_int_equal(ep_fields_get_string(&f, "url", &s), 0);
  assert_string_equal(s, "http://x");
  assert_int_equal(ep_fields_get_int(&f, "retries", &i), 0);
  assert_int_equal(i, 3);
  assert_int_equal(ep_fields_get_bool(&f, "strict", &b), 0);
  assert_int_equal(b, 0);
  assert_int_equal(ep_fields_get_string(&f, "token", &s), EP_ENOENT);
  assert_int_equal(ep_fields_get_int(&f, "url", &i), EP_EINVAL);     /* wrong type */
  assert_int_equal(ep_fields_get_int(&f, "nothing", &i), EP_EINVAL); /* undeclared */
  assert_true(ep_field_missing(ep_fields_find(&f, "token")));
  assert_false(ep_field_missing(ep_fields_find(&f, "url")));
  ep_fields_free(&f);
}

static void values_are_validated(void **state) {
  (void)state;
  ep_fields f;
  assert_int_equal(ep_fields_init(&f, good, 4, sizeof(ep_field_decl)), 0);
  ep_field_value *retries = ep_fields_find(&f, "retries");
  ep_field_value *url = ep_fields_find(&f, "url");
  ep_field_value *strict = ep_fields_find(&f, "strict");

  assert_int_equal(ep_field_set_int(retries, 11), EP_ERANGE);
  assert_non_null(strstr(ep_error_message(), "'retries': 11 is out of range [0, 10]"));
  assert_int_equal(ep_field_set_text(retries, "7x"), EP_EINVAL);
  assert_non_null(strstr(ep_error_message(), "not a 64-bit integer"));
  assert_int_equal(ep_field_set_text(retries, "99999999999999999999"), EP_EINVAL);
  assert_int_equal(ep_field_set_text(retries, "10"), 0);
  assert_int_equal(retries->integer, 10);
  assert_true(retries->is_explicit);

  assert_int_equal(ep_field_set_string(url, "http://far-too-long.example"), EP_ERANGE);
  assert_non_null(strstr(ep_error_message(), "'url': longer than 16 bytes"));
  assert_string_equal(url->text, "http://x"); /* the old value is kept */
  assert_int_equal(ep_field_set_int(url, 1), EP_EINVAL);
  assert_non_null(strstr(ep_error_message(), "'url': expected string, got an integer"));

  assert_int_equal(ep_field_set_text(strict, "maybe"), EP_EINVAL);
  assert_int_equal(ep_field_set_text(strict, "YES"), 0);
  assert_int_equal(strict->boolean, 1);
  ep_fields_free(&f);
}

static void bad_declarations_are_refused(void **state) {
  (void)state;
  ep_fields f = {0};
  const ep_field_decl bad_name[] = {EP_FIELD_INT_DECL("Retries", NULL, 0, 0, 1, "")};
  assert_int_equal(ep_fields_init(&f, bad_name, 1, sizeof(ep_field_decl)), EP_EINVAL);
  assert_non_null(strstr(ep_error_message(), "name 'Retries'"));

  const ep_field_decl twice[] = {EP_FIELD_BOOL_DECL("a", NULL, 0, ""), EP_FIELD_BOOL_DECL("a", NULL, 0, "")};
  assert_int_equal(ep_fields_init(&f, twice, 2, sizeof(ep_field_decl)), EP_EINVAL);
  assert_non_null(strstr(ep_error_message(), "declared twice"));

  const ep_field_decl bad_default[] = {EP_FIELD_INT_DECL("n", "500", 0, 0, 10, "")};
  assert_int_equal(ep_fields_init(&f, bad_default, 1, sizeof(ep_field_decl)), EP_EINVAL);
  assert_non_null(strstr(ep_error_message(), "field 'n': bad default"));

  const ep_field_decl required_default[] = {EP_FIELD_STRING_DECL("s", "x", EP_FIELD_REQUIRED, 0, "")};
  assert_int_equal(ep_fields_init(&f, required_default, 1, sizeof(ep_field_decl)), EP_EINVAL);

  const ep_field_decl inverted[] = {EP_FIELD_INT_DECL("n", NULL, 0, 10, 0, "")};
  assert_int_equal(ep_fields_init(&f, inverted, 1, sizeof(ep_field_decl)), EP_EINVAL);

  ep_field_decl bad_type[] = {EP_FIELD_INT_DECL("n", NULL, 0, 0, 1, "")};
  bad_type[0].type = 99;
  assert_int_equal(ep_fields_init(&f, bad_type, 1, sizeof(ep_field_decl)), EP_EINVAL);

  assert_int_equal(ep_fields_init(&f, good, 4, 8), EP_EINVAL); /* stride below the 1.0 size */
  assert_int_equal(ep_fields_init(&f, NULL, 1, sizeof(ep_field_decl)), EP_EINVAL);
  assert_null(f.items); /* untouched on failure */
}

static void wider_stride_is_walked(void **state) {
  (void)state;
  /* A plugin built with a later minor may hand a larger struct: the host walks its stride. */
  struct wider {
    ep_field_decl decl;
    uint64_t appended;
  } decls[2] = {{EP_FIELD_INT_DECL("a", "1", 0, 0, 9, ""), 0}, {EP_FIELD_INT_DECL("b", "2", 0, 0, 9, ""), 0}};
  decls[0].decl.struct_size = decls[1].decl.struct_size = sizeof(struct wider);
  ep_fields f;
  assert_int_equal(ep_fields_init(&f, &decls[0].decl, 2, sizeof(struct wider)), 0);
  int64_t v = 0;
  assert_int_equal(ep_fields_get_int(&f, "b", &v), 0);
  assert_int_equal(v, 2);
  ep_fields_free(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(defaults_and_lookup),
      cmocka_unit_test(values_are_validated),
      cmocka_unit_test(bad_declarations_are_refused),
      cmocka_unit_test(wider_stride_is_walked),
  };
  return cmocka_run_group_tests_name("fields", tests, NULL, NULL);
}
