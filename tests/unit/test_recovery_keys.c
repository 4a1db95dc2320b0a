/* Unit tests of core/lib/provisioning/recovery_keys.c on the real storage-sqlite plugin: the
 * site key (HKDF-SHA-256 of the key file's text, checked against RFC 5869 computed apart), the
 * sealing (round trip; a changed ciphertext, tag, header or host refused; another site key
 * named by id), the recovery keys' rules, and the records beside the inventory: stored,
 * replaced, never in the store in the clear, never an event, gone with their host. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>

#include "base/error.h"
#include "provisioning/inventory.h"
#include "provisioning/recovery_keys.h"
#include "site_fixture.h"

#define HOST_A "aaaaaaaa-0000-4000-8000-00000000000a"
#define HOST_B "bbbbbbbb-0000-4000-8000-00000000000b"
#define SITE_TEXT "correct horse battery staple, the site key of tests"
/* The first 8 bytes of SHA-256(HKDF-SHA-256(salt none, SITE_TEXT, "edgeprov recovery keys v1", 32)),
 * computed with Python's hmac and hashlib from RFC 5869. */
#define SITE_TEXT_ID "6ee19bd80694c1f6"
#define RECOVERY "fjbhnveg-rknrdtrg-jllvkhiu-ctbucdgf-lkcerjhb-nnvijdkn-ulhrtrek-bivhbdcb"

static ep_recovery_site_key *derive(const char *text) {
  ep_recovery_site_key *key = NULL;
  assert_int_equal(ep_recovery_site_key_derive(&key, text, strlen(text)), 0);
  return key;
}

static void the_site_key_is_hkdf_of_the_file_text_and_named_by_its_id(void **state) {
  (void)state;
  ep_recovery_site_key *key = derive(SITE_TEXT), *again = derive(SITE_TEXT), *other = derive(SITE_TEXT "!");
  assert_string_equal(ep_recovery_site_key_id(key), SITE_TEXT_ID);
  assert_string_equal(ep_recovery_site_key_id(again), SITE_TEXT_ID);
  assert_string_not_equal(ep_recovery_site_key_id(other), SITE_TEXT_ID);
  ep_recovery_site_key *none = NULL;
  assert_int_equal(ep_recovery_site_key_derive(&none, "0123456789012345678901234567890", 31), EP_EINVAL);
  assert_null(none);
  ep_recovery_site_key_free(key);
  ep_recovery_site_key_free(again);
  ep_recovery_site_key_free(other);

  /* From a file: owner-only, trailing line end dropped; errors name the file, never its text. */
  char *dir = tu_mkdtemp();
  char *path = tu_write(dir, "recovery.key", SITE_TEXT "\n");
  assert_int_equal(chmod(path, 0600), 0);
  assert_int_equal(ep_recovery_site_key_load(&key, path), 0);
  assert_string_equal(ep_recovery_site_key_id(key), SITE_TEXT_ID);
  ep_recovery_site_key_free(key);
  assert_int_equal(chmod(path, 0640), 0);
  assert_int_equal(ep_recovery_site_key_load(&none, path), EP_EPERM);
  assert_non_null(strstr(ep_error_message(), "secrets.recovery_key_file"));
  free(path);
  path = tu_write(dir, "short.key", "too short to be a site key\n");
  assert_int_equal(chmod(path, 0600), 0);
  assert_int_equal(ep_recovery_site_key_load(&none, path), EP_EINVAL);
  assert_non_null(strstr(ep_error_message(), path));
  assert_null(strstr(ep_error_message(), "too short to be"));
  assert_null(none);
  free(path);
  tu_rmdir(dir);
}

static void a_recovery_key_is_printable_ascii_of_16_to_256_bytes_and_never_echoed(void **state) {
  (void)state;
  char long_key[258];
  memset(long_key, 'k', 257);
  long_key[257] = '\0';
  const char *refused[] = {"0123456789abcde", long_key, "0123456789\nabcdef", "0123456789\tabcdef",
                           "0123456789\x7f" "abcdef", "0123456789\xc3\xa9" "abcdef"};
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    assert_int_equal(ep_recovery_key_validate("recovery_key", refused[i]), EP_EINVAL);
    assert_non_null(strstr(ep_error_message(), "recovery_key: "));
    assert_null(strstr(ep_error_message(), "0123456789"));
    assert_null(strstr(ep_error_message(), "kkkkkkkk"));
  }
  long_key[256] = '\0';
  assert_int_equal(ep_recovery_key_validate("recovery_key", long_key), 0);
  assert_int_equal(ep_recovery_key_validate("recovery_key", "0123456789 abcde"), 0);
  assert_int_equal(ep_recovery_key_validate("recovery_key", RECOVERY), 0);
}

static void sealing_round_trips_and_refuses_any_change(void **state) {
  (void)state;
  ep_recovery_site_key *key = derive(SITE_TEXT), *rotated = derive("another site key, after a rotation of it");
  uint8_t *record = NULL;
  size_t len = 0;
  assert_int_equal(ep_recovery_key_seal(&record, &len, key, HOST_A, RECOVERY, 1700000000), 0);
  assert_int_equal(len, EP_RECOVERY_RECORD_HEADER + EP_RECOVERY_NONCE_LEN + strlen(RECOVERY) + EP_RECOVERY_TAG_LEN);
  assert_null(memmem(record, len, "fjbhnveg", 8)); /* sealed, not in the clear */
  char *opened = NULL;
  int64_t stored_at = 0;
  assert_int_equal(ep_recovery_key_open(&opened, &stored_at, key, HOST_A, record, len), 0);
  assert_string_equal(opened, RECOVERY);
  assert_int_equal(stored_at, 1700000000);
  free(opened);

  /* Sealing twice never gives the same bytes (a fresh nonce each time). */
  uint8_t *second = NULL;
  size_t second_len = 0;
  assert_int_equal(ep_recovery_key_seal(&second, &second_len, key, HOST_A, RECOVERY, 1700000000), 0);
  assert_int_equal(second_len, len);
  assert_memory_not_equal(second, record, len);
  free(second);

  /* One byte changed anywhere (the header's version aside: a damaged record; the key id: another
   * site key's) does not open. */
  size_t where[] = {EP_RECOVERY_RECORD_HEADER - 1 /* stored_at */, EP_RECOVERY_RECORD_HEADER /* nonce */,
                    EP_RECOVERY_RECORD_HEADER + EP_RECOVERY_NONCE_LEN /* ciphertext */, len - 1 /* tag */};
  for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
    record[where[i]] ^= 1;
    opened = NULL;
    assert_int_equal(ep_recovery_key_open(&opened, NULL, key, HOST_A, record, len), EP_EIO);
    assert_non_null(strstr(ep_error_message(), "does not authenticate"));
    assert_null(opened);
    record[where[i]] ^= 1;
  }
  assert_int_equal(ep_recovery_key_open(&opened, NULL, key, HOST_B, record, len), EP_EIO); /* another host's */
  assert_int_equal(ep_recovery_key_open(&opened, NULL, key, HOST_A, record, len - 1), EP_EIO); /* cut short */
  record[0] = 2;
  assert_int_equal(ep_recovery_key_open(&opened, NULL, key, HOST_A, record, len), EP_EIO);
  record[0] = EP_RECOVERY_RECORD_VERSION;

  /* Another site key: refused as such, both ids named, nothing of either key. */
  assert_int_equal(ep_recovery_key_open(&opened, NULL, rotated, HOST_A, record, len), EP_EPERM);
  char expected[200];
  snprintf(expected, sizeof expected, "stored under site key %s, but secrets.recovery_key_file holds site key %s",
           SITE_TEXT_ID, ep_recovery_site_key_id(rotated));
  assert_non_null(strstr(ep_error_message(), expected));
  assert_null(opened);
  free(record);
  ep_recovery_site_key_free(key);
  ep_recovery_site_key_free(rotated);
}

typedef struct events_seen {
  size_t count;
  bool key_seen;
} events_seen;

static int see_event(void *data, const ep_inv_event *event) {
  events_seen *s = data;
  s->count++;
  uint8_t buf[65536];
  size_t len = edgeprov__v1__event__get_packed_size(event);
  if (len <= sizeof buf) {
    edgeprov__v1__event__pack(event, buf);
    if (memmem(buf, len, "fjbhnveg", 8) || memmem(buf, len, "recovery/", 9)) s->key_seen = true;
  }
  return 0;
}

static void records_are_stored_beside_the_host_never_seen_and_go_with_it(void **state) {
  tu_site *t = *state;
  ep_recovery_site_key *key = derive(SITE_TEXT);
  char *got = NULL;
  bool replaced = true;
  assert_int_equal(ep_recovery_key_store(t->inv, key, HOST_A, RECOVERY, &replaced), EP_ENOENT); /* no such host */
  assert_int_equal(tu_add_host(t, HOST_A, "SERIALA", NULL, false), 0);
  assert_int_equal(tu_add_host(t, HOST_B, "SERIALB", NULL, false), 0);
  assert_int_equal(ep_recovery_key_read(t->inv, key, HOST_A, &got, NULL), EP_ENOENT);
  assert_int_equal(ep_recovery_key_store(t->inv, NULL, HOST_A, RECOVERY, NULL), EP_EPERM); /* no site key */
  assert_non_null(strstr(ep_error_message(), "secrets.recovery_key_file"));
  assert_int_equal(ep_recovery_key_read(t->inv, NULL, HOST_A, &got, NULL), EP_EPERM);
  assert_int_equal(ep_recovery_key_store(t->inv, key, HOST_A, "short", NULL), EP_EINVAL);

  uint64_t before = 0;
  assert_int_equal(ep_inventory_revision(t->inv, &before), 0);
  assert_int_equal(ep_recovery_key_store(t->inv, key, HOST_A, RECOVERY, &replaced), 0);
  assert_false(replaced);
  int64_t stored_at = 0;
  assert_int_equal(ep_recovery_key_read(t->inv, key, HOST_A, &got, &stored_at), 0);
  assert_string_equal(got, RECOVERY);
  assert_true(stored_at > 1700000000);
  free(got);
  /* Per host: B has none. */
  assert_int_equal(ep_recovery_key_read(t->inv, key, HOST_B, &got, NULL), EP_ENOENT);

  /* The record is a record of its own, sealed: not in the host, not in the clear anywhere in the
   * data directory (the store's files, its change log), and no event carries it. */
  uint8_t *raw = NULL;
  size_t raw_len = 0;
  assert_int_equal(ep_inventory_load_raw(t->inv, EP_RECOVERY_KEYS_PREFIX HOST_A, &raw, &raw_len, NULL), 0);
  assert_null(memmem(raw, raw_len, "fjbhnveg", 8));
  free(raw);
  ep_inv_host *host = NULL;
  assert_int_equal(ep_inventory_get_host(t->inv, HOST_A, &host), 0);
  uint8_t packed[4096];
  assert_true(edgeprov__v1__host__get_packed_size(host) <= sizeof packed);
  size_t packed_len = edgeprov__v1__host__pack(host, packed);
  assert_null(memmem(packed, packed_len, "fjbhnveg", 8));
  ep_inv_host_free(host);
  assert_int_equal(tu_grep_tree(t->dir, "fjbhnveg"), 1);
  uint64_t after = 0;
  assert_int_equal(ep_inventory_revision(t->inv, &after), 0);
  assert_true(after > before); /* the record was written: a change in the log... */
  events_seen seen = {0};
  assert_int_equal(ep_inventory_events(t->inv, before, 100, see_event, &seen), 0);
  assert_int_equal(seen.count, 0); /* ...that is no event */
  assert_false(seen.key_seen);

  /* A new key from the node replaces the old one. */
  assert_int_equal(ep_recovery_key_store(t->inv, key, HOST_A, "a-newer-key-of-the-node", &replaced), 0);
  assert_true(replaced);
  assert_int_equal(ep_recovery_key_read(t->inv, key, HOST_A, &got, NULL), 0);
  assert_string_equal(got, "a-newer-key-of-the-node");
  free(got);

  /* Deleting the host deletes its record in the same transaction; added again, it has none. */
  assert_int_equal(ep_inventory_revision(t->inv, &before), 0);
  assert_int_equal(ep_inventory_delete_host(t->inv, HOST_A, NULL), 0);
  assert_int_equal(ep_inventory_load_raw(t->inv, EP_RECOVERY_KEYS_PREFIX HOST_A, &raw, &raw_len, NULL), EP_ENOENT);
  memset(&seen, 0, sizeof seen);
  assert_int_equal(ep_inventory_events(t->inv, before, 100, see_event, &seen), 0);
  assert_int_equal(seen.count, 1); /* the host's deletion, and nothing of the record */
  assert_false(seen.key_seen);
  assert_int_equal(tu_add_host(t, HOST_A, "SERIALA", NULL, false), 0);
  assert_int_equal(ep_recovery_key_read(t->inv, key, HOST_A, &got, NULL), EP_ENOENT);
  /* A host without a record deletes as before. */
  assert_int_equal(ep_inventory_delete_host(t->inv, HOST_B, NULL), 0);
  ep_recovery_site_key_free(key);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(the_site_key_is_hkdf_of_the_file_text_and_named_by_its_id),
      cmocka_unit_test(a_recovery_key_is_printable_ascii_of_16_to_256_bytes_and_never_echoed),
      cmocka_unit_test(sealing_round_trips_and_refuses_any_change),
      cmocka_unit_test_setup_teardown(records_are_stored_beside_the_host_never_seen_and_go_with_it,
                                      tu_site_setup_storage, tu_site_teardown),
  };
  return cmocka_run_group_tests_name("recovery_keys", tests, NULL, NULL);
}
