/* Unit tests of plugins/actions-core/boot_order_calc.c: the BootOrder efi.boot_order computes
 * from the old one and the Boot#### entries (the variables themselves: integration/node_actions.sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <edgeprov/abi.h>

#include "boot_order_calc.h"

#define CAP 16

static boot_entry entry(uint16_t number, const char *label, const char *partition) {
  boot_entry e = {.number = number, .attributes = 1, .valid = true};
  snprintf(e.description, sizeof e.description, "%s", label);
  snprintf(e.partition, sizeof e.partition, "%s", partition);
  return e;
}

/* "0003,0001,0002" */
static const char *text(const uint16_t *order, size_t n) {
  static char out[CAP * 5 + 1];
  out[0] = '\0';
  for (size_t i = 0, len = 0; i < n; i++)
    len += (size_t)snprintf(out + len, sizeof out - len, "%s%04X", i ? "," : "", order[i]);
  return out;
}

/* Computes by label; returns the outcome, the order in *ret_text. */
static int by_label(const uint16_t *old, size_t old_len, boot_entry *entries, size_t count, const char *label,
                    bool fail_if_missing, const char **ret_text) {
  uint16_t order[CAP];
  size_t n = 0;
  boot_order_want want = {.label = label, .fail_if_missing = fail_if_missing};
  int r = boot_order_compute(order, &n, CAP, old, old_len, entries, count, &want);
  *ret_text = r >= 0 ? text(order, n) : "(error)";
  return r;
}

static void entry_already_first_is_left_unchanged(void **state) {
  (void)state;
  boot_entry e[] = {entry(1, "UEFI PXEv4", ""), entry(2, "EFI Shell", ""), entry(3, "ubuntu", "")};
  const uint16_t old[] = {3, 1, 2};
  const char *order;
  assert_int_equal(by_label(old, 3, e, 3, "ubuntu", false, &order), BOOT_ORDER_UNCHANGED);
  assert_string_equal(order, "0003,0001,0002");
  assert_true(e[2].match);
  assert_false(e[0].match || e[1].match);
}

static void entry_in_the_middle_moves_first_and_the_rest_keep_their_order(void **state) {
  (void)state;
  boot_entry e[] = {entry(1, "UEFI PXEv4", ""), entry(2, "EFI Shell", ""), entry(3, "ubuntu", "")};
  const uint16_t old[] = {1, 3, 2};
  const char *order;
  assert_int_equal(by_label(old, 3, e, 3, "ubuntu", false, &order), BOOT_ORDER_CHANGED);
  assert_string_equal(order, "0003,0001,0002");
}

static void missing_label_leaves_the_order_as_it_is(void **state) {
  (void)state;
  boot_entry e[] = {entry(1, "UEFI PXEv4", ""), entry(3, "ubuntu", "")};
  const uint16_t old[] = {1, 3};
  const char *order;
  assert_int_equal(by_label(old, 2, e, 2, "windows", false, &order), BOOT_ORDER_NO_MATCH);
  assert_string_equal(order, "0001,0003");
  assert_false(e[0].match || e[1].match);
}

static void missing_label_with_fail_if_missing_is_an_error_that_touches_nothing(void **state) {
  (void)state;
  boot_entry e[] = {entry(1, "UEFI PXEv4", ""), entry(3, "ubuntu", "")};
  const uint16_t old[] = {1, 3};
  uint16_t order[CAP] = {0xbeef};
  size_t n = 77;
  boot_order_want want = {.label = "windows", .fail_if_missing = true};
  assert_int_equal(boot_order_compute(order, &n, CAP, old, 2, e, 2, &want), EP_ENOENT);
  assert_int_equal(order[0], 0xbeef);
  assert_int_equal(n, 77);
  /* fail_if_missing changes nothing when the entry is there */
  want.label = "ubuntu";
  assert_int_equal(boot_order_compute(order, &n, CAP, old, 2, e, 2, &want), BOOT_ORDER_CHANGED);
  assert_string_equal(text(order, n), "0003,0001");
}

static void duplicates_of_the_entry_are_listed_once_others_are_kept(void **state) {
  (void)state;
  boot_entry e[] = {entry(1, "UEFI PXEv4", ""), entry(3, "ubuntu", "")};
  const uint16_t twice[] = {1, 3, 1, 3};
  const char *order;
  assert_int_equal(by_label(twice, 4, e, 2, "ubuntu", false, &order), BOOT_ORDER_CHANGED);
  assert_string_equal(order, "0003,0001,0001");
  /* already first, but listed twice: the order changes (the second one goes) */
  const uint16_t first_twice[] = {3, 3, 1};
  assert_int_equal(by_label(first_twice, 3, e, 2, "ubuntu", false, &order), BOOT_ORDER_CHANGED);
  assert_string_equal(order, "0003,0001");
}

static void empty_order_gets_the_entry(void **state) {
  (void)state;
  boot_entry e[] = {entry(4, "ubuntu", "")};
  const char *order;
  assert_int_equal(by_label(NULL, 0, e, 1, "ubuntu", false, &order), BOOT_ORDER_CHANGED);
  assert_string_equal(order, "0004");
  assert_int_equal(by_label(NULL, 0, e, 1, "windows", false, &order), BOOT_ORDER_NO_MATCH);
  assert_string_equal(order, "");
  assert_int_equal(by_label(NULL, 0, NULL, 0, "ubuntu", true, &order), EP_ENOENT);
}

static void entries_sharing_the_label_all_go_first_listed_ones_before_the_others(void **state) {
  (void)state;
  boot_entry e[] = {entry(1, "UEFI PXEv4", ""), entry(2, "ubuntu", ""), entry(3, "EFI Shell", ""),
                    entry(5, "ubuntu", ""), entry(7, "ubuntu", "")};
  const uint16_t old[] = {1, 5, 3, 2};
  const char *order;
  assert_int_equal(by_label(old, 4, e, 5, "ubuntu", false, &order), BOOT_ORDER_CHANGED);
  assert_string_equal(order, "0005,0002,0007,0001,0003");
  assert_int_equal(boot_order_count_label(e, 5, "ubuntu"), 3);
}

static void malformed_entries_never_match(void **state) {
  (void)state;
  boot_entry e[] = {entry(1, "ubuntu", ""), entry(2, "ubuntu", "")};
  e[0].valid = false;
  const uint16_t old[] = {1, 2};
  const char *order;
  assert_int_equal(boot_order_count_label(e, 2, "ubuntu"), 1);
  assert_int_equal(boot_order_count_label(e, 2, ""), 0);
  assert_int_equal(by_label(old, 2, e, 2, "ubuntu", false, &order), BOOT_ORDER_CHANGED);
  assert_string_equal(order, "0002,0001");
  assert_false(e[0].match);
}

static void partitions_match_ignoring_case_with_or_without_a_label(void **state) {
  (void)state;
  /* the target's ESP and root; the firmware wrote the ESP's GUID in capitals */
  static const char partitions[][BOOT_GUID_TEXT_LEN + 1] = {"1c5d0e6a-2b3c-4d5e-8f90-a1b2c3d4e5f6",
                                                            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"};
  boot_entry e[] = {entry(1, "UEFI PXEv4", ""), entry(2, "UEFI OS", "1C5D0E6A-2B3C-4D5E-8F90-A1B2C3D4E5F6"),
                    entry(3, "EFI Shell", ""), entry(5, "UEFI OS", partitions[1]),
                    entry(6, "other disk", "00000000-0000-0000-0000-000000000001")};
  const uint16_t old[] = {1, 2, 3};
  uint16_t order[CAP];
  size_t n = 0;
  boot_order_want want = {.label = "", .partitions = partitions, .partition_count = 2};
  assert_int_equal(boot_order_compute(order, &n, CAP, old, 3, e, 5, &want), BOOT_ORDER_CHANGED);
  assert_string_equal(text(order, n), "0002,0005,0001,0003");
  assert_false(e[4].match);
  /* a label that matches nothing, with the target's partitions: those */
  want.label = "ubuntu";
  assert_int_equal(boot_order_compute(order, &n, CAP, old, 3, e, 5, &want), BOOT_ORDER_CHANGED);
  assert_string_equal(text(order, n), "0002,0005,0001,0003");
}

static void the_order_never_outgrows_its_buffer(void **state) {
  (void)state;
  boot_entry e[] = {entry(1, "ubuntu", ""), entry(2, "ubuntu", ""), entry(3, "ubuntu", "")};
  const uint16_t old[] = {9, 8};
  uint16_t order[3];
  size_t n = 0;
  boot_order_want want = {.label = "ubuntu"};
  assert_int_equal(boot_order_compute(order, &n, 3, old, 2, e, 3, &want), BOOT_ORDER_CHANGED);
  assert_string_equal(text(order, n), "0001,0002,0003");
  assert_int_equal(boot_order_compute(order, &n, 1, old, 2, e, 3, &want), EP_EINVAL); /* the old order is longer */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(entry_already_first_is_left_unchanged),
      cmocka_unit_test(entry_in_the_middle_moves_first_and_the_rest_keep_their_order),
      cmocka_unit_test(missing_label_leaves_the_order_as_it_is),
      cmocka_unit_test(missing_label_with_fail_if_missing_is_an_error_that_touches_nothing),
      cmocka_unit_test(duplicates_of_the_entry_are_listed_once_others_are_kept),
      cmocka_unit_test(empty_order_gets_the_entry),
      cmocka_unit_test(entries_sharing_the_label_all_go_first_listed_ones_before_the_others),
      cmocka_unit_test(malformed_entries_never_match),
      cmocka_unit_test(partitions_match_ignoring_case_with_or_without_a_label),
      cmocka_unit_test(the_order_never_outgrows_its_buffer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
