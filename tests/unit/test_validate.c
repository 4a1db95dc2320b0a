/* Unit tests of core/lib/validate.c: identity fields with the reference system's rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "error.h"
#include "validate.h"

static void uuids(void **state) {
  (void)state;
  char out[EP_UUID_TEXT_LEN + 1];
  assert_int_equal(ep_validate_uuid(out, "uuid", "123E4567-E89B-12D3-A456-426614174000"), 0);
  assert_string_equal(out, "123e4567-e89b-12d3-a456-426614174000");
  const char *bad[] = {"", "123e4567e89b12d3a456426614174000", "123e4567-e89b-12d3-a456-42661417400",
                       "123e4567-e89b-12d3-a456-4266141740000", "g23e4567-e89b-12d3-a456-426614174000",
                       "123e4567_e89b-12d3-a456-426614174000"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(ep_validate_uuid(out, "uuid", bad[i]), EP_EINVAL);
    assert_non_null(strstr(ep_error_message(), "uuid: "));
  }
  assert_string_equal(out, "123e4567-e89b-12d3-a456-426614174000"); /* untouched on failure */
}

static void serials(void **state) {
  (void)state;
  assert_int_equal(ep_validate_serial("serial", "ABC12"), 0);
  assert_int_equal(ep_validate_serial("serial", "A1b2C3d4E5f6G7h8I9j0"), 0);
  assert_int_equal(ep_validate_serial("serial", "ABC1"), EP_EINVAL);
  assert_string_equal(ep_error_message(), "serial: 'ABC1' has 4 characters; a serial has 5 to 20");
  assert_int_equal(ep_validate_serial("serial", "A1b2C3d4E5f6G7h8I9j0K"), EP_EINVAL);
  assert_int_equal(ep_validate_serial("serial", "ABC-123"), EP_EINVAL);
  assert_non_null(strstr(ep_error_message(), "character other than"));
  assert_int_equal(ep_validate_serial("serial", "ABC 123"), EP_EINVAL);
}

static void macs(void **state) {
  (void)state;
  char out[EP_MAC_TEXT_LEN + 1];
  assert_int_equal(ep_validate_mac(out, "mac", "AA-BB-CC-0d-0e-0F"), 0);
  assert_string_equal(out, "aa:bb:cc:0d:0e:0f");
  assert_int_equal(ep_validate_mac(out, "mac", "52:54:00:12:34:56"), 0);
  const char *bad[] = {"52:54:00:12:34", "52:54:00:12:34:567", "52.54.00.12.34.56", "5254:0012:3456", "zz:54:00:12:34:56", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(ep_validate_mac(out, "macs[0]", bad[i]), EP_EINVAL);
    assert_non_null(strstr(ep_error_message(), "macs[0]: "));
  }
}

static void ips(void **state) {
  (void)state;
  char out[EP_IP_TEXT_MAX + 1];
  assert_int_equal(ep_validate_ip(out, "ip", "192.168.1.10"), 0);
  assert_string_equal(out, "192.168.1.10");
  assert_int_equal(ep_validate_ip(out, "ip", "2001:DB8:0:0:0:0:0:1"), 0);
  assert_string_equal(out, "2001:db8::1");
  const char *bad[] = {"256.1.1.1", "1.2.3", "10.0.0.0/8", "fe80::1%eth0", "host.example", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_int_equal(ep_validate_ip(out, "ip", bad[i]), EP_EINVAL);
  assert_non_null(strstr(ep_error_message(), "ip: '' is not an IPv4 or IPv6 address"));
}

static void names_and_limits(void **state) {
  (void)state;
  assert_int_equal(ep_validate_name("os_profile", "ubuntu-22.04"), 0);
  assert_int_equal(ep_validate_name("os_profile", "Ubuntu"), EP_EINVAL);
  assert_int_equal(ep_validate_name("os_profile", "-x"), EP_EINVAL);
  assert_int_equal(ep_validate_name("os_profile", "a/../b"), EP_EINVAL);
  char longer[300];
  memset(longer, 'a', sizeof longer - 1);
  longer[sizeof longer - 1] = '\0';
  assert_int_equal(ep_validate_serial("serial", longer), EP_EINVAL);
  assert_string_equal(ep_error_message(), "serial: longer than 256 bytes");
}

static void random_uuids(void **state) {
  (void)state;
  char a[EP_UUID_TEXT_LEN + 1], b[EP_UUID_TEXT_LEN + 1], check[EP_UUID_TEXT_LEN + 1];
  assert_int_equal(ep_uuid_random(a), 0);
  assert_int_equal(ep_uuid_random(b), 0);
  assert_string_not_equal(a, b);
  assert_int_equal(ep_validate_uuid(check, "id", a), 0);
  assert_int_equal(a[14], '4');
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(uuids), cmocka_unit_test(serials), cmocka_unit_test(macs),
      cmocka_unit_test(ips), cmocka_unit_test(names_and_limits), cmocka_unit_test(random_uuids),
  };
  return cmocka_run_group_tests_name("validate", tests, NULL, NULL);
}
