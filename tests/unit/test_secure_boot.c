/* Unit tests of plugins/actions-core/secure_boot.c: full-disk encryption's Secure Boot check reads
 * SecureBoot and SetupMode as efivarfs shows them (4 bytes of attributes, then the value), here in
 * a directory made by the test: enforcing only with SecureBoot=1 and SetupMode=0; no EFI, a
 * missing variable, Secure Boot off, setup mode and malformed variables each named. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "secure_boot.h"
#include "testutil.h"

#define GUID "8be4df61-93ca-11d2-aa0d-00e098032b8c"

/* A firmware directory "efi" under a fresh temporary directory, with its efivars/. */
typedef struct fw {
  char *root;
  char efi[512];
} fw;

static void fw_new(fw *f) {
  f->root = tu_mkdtemp();
  assert_non_null(f->root);
  snprintf(f->efi, sizeof f->efi, "%s/efi", f->root);
  assert_int_equal(mkdir(f->efi, 0755), 0);
  char vars[600];
  snprintf(vars, sizeof vars, "%s/efivars", f->efi);
  assert_int_equal(mkdir(vars, 0755), 0);
}

static void fw_free(fw *f) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->root);
  assert_int_equal(system(cmd), 0);
  free(f->root);
}

/* Writes the variable name with the firmware's attributes (non-volatile, boot and run time) and
 * the given bytes after them. */
static void fw_var(fw *f, const char *name, const uint8_t *data, size_t len) {
  char path[800];
  snprintf(path, sizeof path, "%s/efivars/%s-" GUID, f->efi, name);
  FILE *file = fopen(path, "wb");
  assert_non_null(file);
  static const uint8_t attributes[4] = {0x06, 0, 0, 0};
  assert_int_equal(fwrite(attributes, 1, 4, file), 4);
  if (len) assert_int_equal(fwrite(data, 1, len, file), len);
  fclose(file);
}

static void fw_u8(fw *f, const char *name, uint8_t value) { fw_var(f, name, &value, 1); }

static void parses_attributes_little_endian_then_the_value(void **state) {
  (void)state;
  const uint8_t stub_info[5] = {0x07, 0x00, 0x00, 0x80, 0x01};
  uint32_t attributes = 0;
  uint8_t value = 0;
  assert_true(efivar_parse_u8(stub_info, sizeof stub_info, &attributes, &value));
  assert_int_equal(attributes, 0x80000007u);
  assert_int_equal(value, 1);
}

static void parse_refuses_any_other_length_and_leaves_the_outputs(void **state) {
  (void)state;
  const uint8_t bytes[6] = {6, 0, 0, 0, 1, 0};
  uint32_t attributes = 42;
  uint8_t value = 42;
  assert_false(efivar_parse_u8(bytes, 4, &attributes, &value));
  assert_false(efivar_parse_u8(bytes, 6, &attributes, &value));
  assert_false(efivar_parse_u8(bytes, 0, &attributes, &value));
  assert_int_equal(attributes, 42);
  assert_int_equal(value, 42);
}

static void enforcing_only_with_secure_boot_1_and_setup_mode_0(void **state) {
  (void)state;
  fw f;
  fw_new(&f);
  fw_u8(&f, "SecureBoot", 1);
  fw_u8(&f, "SetupMode", 0);
  char why[SECURE_BOOT_WHY_MAX] = "unchanged";
  assert_int_equal(secure_boot_read(f.efi, why, sizeof why), SECURE_BOOT_ENFORCING);
  assert_string_equal(why, "");
  fw_free(&f);
}

static void no_efi_directory_is_no_efi(void **state) {
  (void)state;
  fw f;
  fw_new(&f);
  char missing[600], why[SECURE_BOOT_WHY_MAX];
  snprintf(missing, sizeof missing, "%s/no-such-efi", f.root);
  assert_int_equal(secure_boot_read(missing, why, sizeof why), SECURE_BOOT_NO_EFI);
  assert_non_null(strstr(why, "no EFI: the node did not boot from UEFI"));
  fw_free(&f);
}

static void no_secure_boot_variable_is_named(void **state) {
  (void)state;
  fw f;
  fw_new(&f);
  fw_u8(&f, "SetupMode", 0);
  char why[SECURE_BOOT_WHY_MAX];
  assert_int_equal(secure_boot_read(f.efi, why, sizeof why), SECURE_BOOT_NO_VARIABLE);
  assert_non_null(strstr(why, "no SecureBoot variable in "));
  fw_free(&f);
}

static void secure_boot_0_is_off(void **state) {
  (void)state;
  fw f;
  fw_new(&f);
  fw_u8(&f, "SecureBoot", 0);
  fw_u8(&f, "SetupMode", 0);
  char why[SECURE_BOOT_WHY_MAX];
  assert_int_equal(secure_boot_read(f.efi, why, sizeof why), SECURE_BOOT_OFF);
  assert_string_equal(why, "SecureBoot=0");
  fw_free(&f);
}

static void setup_mode_is_named_with_secure_boot_0_or_1(void **state) {
  (void)state;
  fw f;
  fw_new(&f);
  fw_u8(&f, "SecureBoot", 0); /* what firmware in setup mode says */
  fw_u8(&f, "SetupMode", 1);
  char why[SECURE_BOOT_WHY_MAX];
  assert_int_equal(secure_boot_read(f.efi, why, sizeof why), SECURE_BOOT_SETUP_MODE);
  assert_string_equal(why, "SecureBoot=0, SetupMode=1: no platform key enrolled");
  fw_u8(&f, "SecureBoot", 1);
  assert_int_equal(secure_boot_read(f.efi, why, sizeof why), SECURE_BOOT_SETUP_MODE);
  assert_string_equal(why, "SecureBoot=1, SetupMode=1: no platform key enrolled");
  fw_free(&f);
}

static void secure_boot_1_without_setup_mode_is_not_enforcing(void **state) {
  (void)state;
  fw f;
  fw_new(&f);
  fw_u8(&f, "SecureBoot", 1);
  char why[SECURE_BOOT_WHY_MAX];
  assert_int_equal(secure_boot_read(f.efi, why, sizeof why), SECURE_BOOT_NO_VARIABLE);
  assert_non_null(strstr(why, "SecureBoot=1 but no SetupMode variable"));
  fw_free(&f);
}

static void malformed_variables_are_unreadable(void **state) {
  (void)state;
  fw f;
  fw_new(&f);
  char why[SECURE_BOOT_WHY_MAX];
  const uint8_t two[2] = {1, 0};
  fw_var(&f, "SecureBoot", two, 2); /* 6 bytes: not a one-byte variable */
  fw_u8(&f, "SetupMode", 0);
  assert_int_equal(secure_boot_read(f.efi, why, sizeof why), SECURE_BOOT_UNREADABLE);
  assert_string_equal(why, "the SecureBoot variable holds 6 bytes, not 4 of attributes and 1 of value");
  fw_var(&f, "SecureBoot", NULL, 0); /* attributes only */
  assert_int_equal(secure_boot_read(f.efi, why, sizeof why), SECURE_BOOT_UNREADABLE);
  assert_string_equal(why, "the SecureBoot variable holds 4 bytes, not 4 of attributes and 1 of value");
  fw_u8(&f, "SecureBoot", 2);
  assert_int_equal(secure_boot_read(f.efi, why, sizeof why), SECURE_BOOT_UNREADABLE);
  assert_string_equal(why, "SecureBoot=2, neither 0 nor 1");
  fw_u8(&f, "SecureBoot", 1);
  fw_u8(&f, "SetupMode", 7);
  assert_int_equal(secure_boot_read(f.efi, why, sizeof why), SECURE_BOOT_UNREADABLE);
  assert_string_equal(why, "SetupMode=7, neither 0 nor 1");
  fw_free(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(parses_attributes_little_endian_then_the_value),
      cmocka_unit_test(parse_refuses_any_other_length_and_leaves_the_outputs),
      cmocka_unit_test(enforcing_only_with_secure_boot_1_and_setup_mode_0),
      cmocka_unit_test(no_efi_directory_is_no_efi),
      cmocka_unit_test(no_secure_boot_variable_is_named),
      cmocka_unit_test(secure_boot_0_is_off),
      cmocka_unit_test(setup_mode_is_named_with_secure_boot_0_or_1),
      cmocka_unit_test(secure_boot_1_without_setup_mode_is_not_enforcing),
      cmocka_unit_test(malformed_variables_are_unreadable),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
