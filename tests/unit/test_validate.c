/* Unit tests of core/lib/base/validate.c: identity fields with the reference system's rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/error.h"
#include "base/validate.h"

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

/* Node text: every class of hostile byte sequence is refused with the field, the reason and
 * the byte offset; good multibyte text and the tab a field allows pass. */
static void text_is_well_formed_utf8_without_controls(void **state) {
  (void)state;
  assert_int_equal(ep_validate_text("status", "Micro-OS: up", 128), 0);
  assert_int_equal(ep_validate_text("status", "Gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x9a\x80 \xef\xbf\xbd", 128), 0);
  assert_int_equal(ep_validate_text("status", "\xf4\x8f\xbf\xbf", 128), 0);    /* U+10FFFF, the last */
  assert_int_equal(ep_validate_text("status", "\xc2\xa0\xe2\x80\x8f", 128), 0); /* U+00A0, U+200F (a mark) */
  static const struct {
    const char *text, *message;
  } bad[] = {
      {"ab\xc0\xaf" "cd", "status: invalid UTF-8 at byte 2 (0xc0: an overlong encoding)"},
      {"\xe0\x80\xaf", "status: invalid UTF-8 at byte 0 (0xe0: an overlong encoding)"},
      {"\xf0\x82\x82\xac", "status: invalid UTF-8 at byte 0 (0xf0: an overlong encoding)"},
      {"x\xed\xa0\x80", "status: invalid UTF-8 at byte 1 (0xed: a UTF-16 surrogate)"},
      {"\xed\xbf\xbf", "status: invalid UTF-8 at byte 0 (0xed: a UTF-16 surrogate)"},
      {"\xf4\x90\x80\x80", "status: invalid UTF-8 at byte 0 (0xf4: past U+10FFFF)"},
      {"ok \xff", "status: invalid UTF-8 at byte 3 (0xff: a byte that never appears in UTF-8)"},
      {"\xfe", "status: invalid UTF-8 at byte 0 (0xfe: a byte that never appears in UTF-8)"},
      {"a\x9b" "31m", "status: invalid UTF-8 at byte 1 (0x9b: a continuation byte without a lead byte)"},
      {"ab\xe2\x82", "status: invalid UTF-8 at byte 2 (0xe2: a sequence cut short)"},
      {"\xc3(", "status: invalid UTF-8 at byte 0 (0xc3: a sequence cut short)"},
      {"a\xc2\x9b" "31m", "status: control character at byte 1 (U+009B)"}, /* C1 CSI, UTF-8 encoded */
      {"\xc2\x85", "status: control character at byte 0 (U+0085)"},
      {"abc\x1b[2J", "status: control character at byte 3 (U+001B)"},
      {"bad\nline", "status: control character at byte 3 (U+000A)"},
      {"del\x7f", "status: control character at byte 3 (U+007F)"},
      {"tab\there", "status: control character at byte 3 (U+0009)"},
      {"\r", "status: control character at byte 0 (U+000D)"},
      {"exe.\xe2\x80\xaetxt", "status: bidi control character at byte 4 (U+202E)"},
      {"\xe2\x80\xaa", "status: bidi control character at byte 0 (U+202A)"},
      {"\xe2\x81\xa6x\xe2\x81\xa9", "status: bidi control character at byte 0 (U+2066)"},
      {"ok\xe2\x81\xa9", "status: bidi control character at byte 2 (U+2069)"},
      {"", "status: must have 1 to 128 bytes"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(ep_validate_text("status", bad[i].text, 128), EP_EINVAL);
    assert_string_equal(ep_error_message(), bad[i].message);
  }
  assert_int_equal(ep_validate_text("status", "12345", 4), EP_EINVAL);
  assert_string_equal(ep_error_message(), "status: must have 1 to 4 bytes");
  /* A field that allows tab (a log line) takes it and nothing else. */
  assert_int_equal(ep_validate_text_flags("log_lines[0]", "col1\tcol2", 512, EP_TEXT_TAB), 0);
  assert_int_equal(ep_validate_text_flags("log_lines[0]", "a\tb\nc", 512, EP_TEXT_TAB), EP_EINVAL);
  assert_string_equal(ep_error_message(), "log_lines[0]: control character at byte 3 (U+000A)");
  assert_int_equal(ep_validate_text_flags("log_lines[0]", "\t\x7f", 512, EP_TEXT_TAB), EP_EINVAL);
  assert_string_equal(ep_error_message(), "log_lines[0]: control character at byte 1 (U+007F)");
  assert_int_equal(ep_validate_text_flags("message", "two\nlines", 512, EP_TEXT_NEWLINE), 0);
  assert_int_equal(ep_validate_text_flags("message", "\xe2\x80\xae", 512, EP_TEXT_TAB | EP_TEXT_NEWLINE), EP_EINVAL);
  uint32_t cp = 0;
  assert_int_equal(ep_utf8_next("\xe2\x80\xae", 3, &cp), 3);
  assert_int_equal(cp, 0x202e);
  assert_int_equal(ep_utf8_next("\xe2\x80\xae", 2, &cp), 0); /* cut by len */
  assert_true(ep_text_refused(0x9b, 0) && ep_text_refused(0x2067, 0) && !ep_text_refused(0x200f, 0));
}

/* Escaping makes every refused byte visible and always yields text the validator accepts. */
static void escape_makes_refused_text_visible_and_valid(void **state) {
  (void)state;
  char out[128];
  assert_int_equal(ep_text_escape(out, sizeof out, "plain \xc3\xbc", 0), 8);
  assert_string_equal(out, "plain \xc3\xbc");
  ep_text_escape(out, sizeof out, "a\x1b[2J\x7f\xff\x9b\xc2\x9b\xe2\x80\xae" "b\xc0\xaf\xed\xa0\x80", 0);
  assert_string_equal(out, "a\\x1b[2J\\x7f\\xff\\x9b\\u{009b}\\u{202e}b\\xc0\\xaf\\xed\\xa0\\x80");
  assert_int_equal(ep_validate_text("status", out, sizeof out - 1), 0);
  ep_text_escape(out, sizeof out, "a\tb\nc", EP_TEXT_TAB);
  assert_string_equal(out, "a\tb\\x0ac");
  ep_text_escape(out, sizeof out, "a\tb", 0);
  assert_string_equal(out, "a\\x09b");
  /* Cut at the limit: never inside a character or an escape. */
  char small[6];
  assert_int_equal(ep_text_escape(small, sizeof small, "abc\xe2\x82\xac", 0), 3); /* the euro sign would not fit */
  assert_string_equal(small, "abc");
  assert_int_equal(ep_text_escape(small, sizeof small, "ab\x7f", 0), 2);
  assert_string_equal(small, "ab");
  assert_int_equal(ep_text_escape(small, 1, "abc", 0), 0);
  assert_string_equal(small, "");
  /* Every byte value, alone and after a lead byte: the result is accepted, within the limit. */
  for (unsigned lead = 0; lead < 0x100; lead += 0x11)
    for (unsigned b = 1; b < 0x100; b++) {
      char in[4] = {(char)(lead ? lead : 'x'), (char)b, 'z', '\0'};
      char esc[10];
      size_t n = ep_text_escape(esc, sizeof esc, in, 0);
      assert_true(n < sizeof esc);
      if (n) assert_int_equal(ep_validate_text("x", esc, sizeof esc - 1), 0);
    }
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
      cmocka_unit_test(text_is_well_formed_utf8_without_controls),
      cmocka_unit_test(escape_makes_refused_text_visible_and_valid),
  };
  return cmocka_run_group_tests_name("validate", tests, NULL, NULL);
}
