/* Unit tests: masking secrets in text shown to people (base/redact.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/redact.h"

/* Masks text and checks the result and the count. */
static void expect(const char *text, const char *want, size_t want_count) {
  size_t count = 99;
  char *got = ep_redact_text(text, &count);
  assert_non_null(got);
  assert_string_equal(got, want);
  assert_int_equal(count, want_count);
  free(got);
}

static void names_that_are_secrets(void **state) {
  (void)state;
  const char *secret[] = {"password", "client_secret", "TOKEN", "api_key", "ApiKey", "ssh_private_key",
                          "passwd", "wifi_psk", "Credentials", "passphrase"};
  const char *plain[] = {"target", "url", "content", "sha256", "mode", "path", "ca_file", "", NULL};
  for (size_t i = 0; i < sizeof secret / sizeof secret[0]; i++) assert_true(ep_redact_is_secret_name(secret[i]));
  for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) assert_false(ep_redact_is_secret_name(plain[i]));
}

static void key_values_are_masked(void **state) {
  (void)state;
  expect("hostname: edge-1\npassword: hunter2\n", "hostname: edge-1\npassword: " EP_REDACTED "\n", 1);
  expect("  - client_secret: \"s3cr3t\"\n", "  - client_secret: " EP_REDACTED "\n", 1);
  expect("TOKEN=abc.def\nPATH=/bin", "TOKEN=" EP_REDACTED "\nPATH=/bin", 1);
  expect("api_key = 42 ; comment\n", "api_key = " EP_REDACTED "\n", 1);
  expect("\"passwd\": \"x\",\n", "\"passwd\": " EP_REDACTED "\n", 1);
  /* not keys: prose, an empty value, a node reference the agent fills in */
  expect("the password is: elsewhere\n", "the password is: elsewhere\n", 0);
  expect("password:\n", "password:\n", 0);
  expect("client_secret: ${node.client_secret}\n", "client_secret: ${node.client_secret}\n", 0);
  expect("client_secret: \"${node.client_secret}\"\n", "client_secret: \"${node.client_secret}\"\n", 0);
}

static void yaml_blocks_are_masked(void **state) {
  (void)state;
  expect("users:\n  - name: ops\n    passwd: |\n      line1\n      line2\n    shell: /bin/sh\n",
         "users:\n  - name: ops\n    passwd: " EP_REDACTED "\n    shell: /bin/sh\n", 1);
}

static void private_keys_and_bearer_tokens(void **state) {
  (void)state;
  expect("a\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\nabcd\n-----END RSA PRIVATE KEY-----\nb\n",
         "a\n-----BEGIN RSA PRIVATE KEY-----\n" EP_REDACTED "\n-----END RSA PRIVATE KEY-----\nb\n", 1);
  expect("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
         "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", 0);
  expect("curl -H 'Authorization: Bearer eyJ.x.y' https://x\n",
         "curl -H 'Authorization: Bearer " EP_REDACTED "' https://x\n", 1);
  /* an unterminated key block: everything after BEGIN stays hidden */
  expect("-----BEGIN PRIVATE KEY-----\nMIIE\n", "-----BEGIN PRIVATE KEY-----\n" EP_REDACTED "\n", 1);
}

/* What a review showed getting through the first version. */
static void secrets_anywhere_in_a_line(void **state) {
  (void)state;
  expect("{\"user\":\"a\",\"password\":\"x\"}\n", "{\"user\":\"a\",\"password\":\"" EP_REDACTED "\"}\n", 1);
  expect("image https://u:pw@mirror.example/img.raw\n", "image https://u:" EP_REDACTED "@mirror.example/img.raw\n", 1);
  expect("export DB_PASSWORD=x\n", "export DB_PASSWORD=" EP_REDACTED "\n", 1);
  expect("GET /img?sig=1&token=abc&x=2\n", "GET /img?sig=1&token=" EP_REDACTED "&x=2\n", 1);
  expect("luks_key = \"k\" ; pwd: y\n", "luks_key = " EP_REDACTED "\n", 1); /* the rest of a key line goes too */
  expect("  docker: {\"auths\": {\"r\": {\"auth\": \"dTpw\"}}}\n",
         "  docker: {\"auths\": {\"r\": {\"auth\": \"" EP_REDACTED "\"}}}\n", 1);
  expect("see https://example.org/path and a:b\n", "see https://example.org/path and a:b\n", 0);
}

/* Disk recovery keys: systemd-cryptenroll's form anywhere in a line, and keys named so. */
#define MODHEX_KEY "fjbhnveg-rknrdtrg-jllvkhiu-ctbucdgf-lkcerjhb-nnvijdkn-ulhrtrek-bivhbdcb"
static void recovery_keys_are_masked(void **state) {
  (void)state;
  expect("cryptenroll: " MODHEX_KEY "\n", "cryptenroll: " EP_REDACTED "\n", 1);
  expect("A NEW RECOVERY KEY: " MODHEX_KEY " (keep it)", "A NEW RECOVERY KEY: " EP_REDACTED " (keep it)", 1);
  expect("[" MODHEX_KEY "][" MODHEX_KEY "]", "[" EP_REDACTED "][" EP_REDACTED "]", 2);
  expect("FJBHNVEG-RKNRDTRG-JLLVKHIU-CTBUCDGF-LKCERJHB-NNVIJDKN-ULHRTREK-BIVHBDCB\n", EP_REDACTED "\n", 1);
  expect("recovery_key=s3cr3t-of-any-form\n", "recovery_key=" EP_REDACTED "\n", 1);
  expect("{\"host\":\"a\",\"recovery-key\":\"abc\"}\n", "{\"host\":\"a\",\"recovery-key\":\"" EP_REDACTED "\"}\n", 1);
  /* near misses: a group of 7, a letter outside modhex (a), 7 groups, uuids and hex */
  const char *kept[] = {
      "fjbhnve-rknrdtrg-jllvkhiu-ctbucdgf-lkcerjhb-nnvijdkn-ulhrtrek-bivhbdcb\n",
      "fjbhnvea-rknrdtrg-jllvkhiu-ctbucdgf-lkcerjhb-nnvijdkn-ulhrtrek-bivhbdcb\n",
      "fjbhnveg-rknrdtrg-jllvkhiu-ctbucdgf-lkcerjhb-nnvijdkn-ulhrtrek\n",
      "11111111-1111-4111-8111-111111111111 deadbeef-deadbeef\n",
  };
  for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) expect(kept[i], kept[i], 0);
  assert_true(ep_redact_is_secret_name("luks_recovery_key"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(names_that_are_secrets),
      cmocka_unit_test(key_values_are_masked),
      cmocka_unit_test(yaml_blocks_are_masked),
      cmocka_unit_test(private_keys_and_bearer_tokens),
      cmocka_unit_test(secrets_anywhere_in_a_line),
      cmocka_unit_test(recovery_keys_are_masked),
  };
  return cmocka_run_group_tests_name("redact", tests, NULL, NULL);
}
