/* core: nodes' disk recovery keys in the store, sealed under the site key, see recovery_keys.h. */
#define _GNU_SOURCE /* explicit_bzero */
#include "provisioning/recovery_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "base/error.h"
#include "base/secret.h"

#define AES_KEY_LEN 32
#define CAS_RETRIES 16

struct ep_recovery_site_key {
  uint8_t aes[AES_KEY_LEN];
  uint8_t id[EP_RECOVERY_KEY_ID_LEN];
  char id_text[EP_RECOVERY_KEY_ID_TEXT + 1];
};

static void hex(char *out, const uint8_t *bytes, size_t len) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < len; i++) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 15];
  }
  out[2 * len] = '\0';
}

int ep_recovery_site_key_derive(ep_recovery_site_key **out, const char *secret, size_t len) {
  if (len < EP_RECOVERY_SITE_KEY_MIN || len > EP_RECOVERY_SITE_KEY_MAX)
    return ep_error_set(EP_EINVAL, "the site key is %zu characters; it must have %d to %d", len,
                        EP_RECOVERY_SITE_KEY_MIN, EP_RECOVERY_SITE_KEY_MAX);
  ep_recovery_site_key *key = calloc(1, sizeof *key);
  if (!key) return ep_error_set(EP_ENOMEM, "out of memory");
  EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
  EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, len),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, EP_RECOVERY_HKDF_INFO, strlen(EP_RECOVERY_HKDF_INFO)),
      OSSL_PARAM_construct_end(),
  };
  uint8_t digest[32];
  unsigned digest_len = 0;
  int ok = ctx && EVP_KDF_derive(ctx, key->aes, sizeof key->aes, params) > 0 &&
           EVP_Digest(key->aes, sizeof key->aes, digest, &digest_len, EVP_sha256(), NULL) && digest_len == sizeof digest;
  EVP_KDF_CTX_free(ctx);
  EVP_KDF_free(kdf);
  if (!ok) {
    ep_recovery_site_key_free(key);
    return ep_error_set(EP_EIO, "cannot derive the site key (OpenSSL's HKDF failed)");
  }
  memcpy(key->id, digest, sizeof key->id);
  hex(key->id_text, key->id, sizeof key->id);
  *out = key;
  return 0;
}

int ep_recovery_site_key_load(ep_recovery_site_key **out, const char *path) {
  char *secret = NULL;
  int r = ep_read_secret_file(&secret, path, EP_RECOVERY_SITE_KEY_MAX + 2);
  if (r < 0) return ep_error_prefix(r, "secrets.recovery_key_file");
  size_t len = strlen(secret);
  if (len < EP_RECOVERY_SITE_KEY_MIN || len > EP_RECOVERY_SITE_KEY_MAX)
    r = ep_error_set(EP_EINVAL,
                     "secrets.recovery_key_file: %s holds %zu characters; a site key needs %d to %d (make one with: "
                     "head -c 48 /dev/urandom | base64 > FILE; chmod 600 FILE)",
                     path, len, EP_RECOVERY_SITE_KEY_MIN, EP_RECOVERY_SITE_KEY_MAX);
  if (r == 0) r = ep_recovery_site_key_derive(out, secret, len);
  explicit_bzero(secret, len);
  free(secret);
  return r;
}

const char *ep_recovery_site_key_id(const ep_recovery_site_key *key) { return key->id_text; }

void ep_recovery_site_key_free(ep_recovery_site_key *key) {
  if (!key) return;
  explicit_bzero(key, sizeof *key);
  free(key);
}

int ep_recovery_key_validate(const char *field, const char *recovery_key) {
  size_t len = strnlen(recovery_key, EP_RECOVERY_KEY_MAX + 1);
  if (len < EP_RECOVERY_KEY_MIN || len > EP_RECOVERY_KEY_MAX)
    return ep_error_set(EP_EINVAL, "%s: %s%zu bytes; a recovery key has %d to %d", field,
                        len > EP_RECOVERY_KEY_MAX ? "more than " : "", len > EP_RECOVERY_KEY_MAX ? (size_t)EP_RECOVERY_KEY_MAX : len,
                        EP_RECOVERY_KEY_MIN, EP_RECOVERY_KEY_MAX);
  for (size_t i = 0; i < len; i++)
    if (recovery_key[i] < 0x20 || recovery_key[i] > 0x7e)
      return ep_error_set(EP_EINVAL, "%s: byte %zu is not printable ASCII; a recovery key is printable ASCII only", field,
                          i + 1);
  return 0;
}

void ep_recovery_key_record_name(char out[sizeof EP_RECOVERY_KEYS_PREFIX + EP_UUID_TEXT_LEN], const char *uuid) {
  snprintf(out, sizeof EP_RECOVERY_KEYS_PREFIX + EP_UUID_TEXT_LEN, EP_RECOVERY_KEYS_PREFIX "%s", uuid);
}

/* The additional data of host uuid's record: the UUID, then the record's header. */
static size_t additional_data(uint8_t out[EP_UUID_TEXT_LEN + EP_RECOVERY_RECORD_HEADER], const char *uuid,
                              const uint8_t *header) {
  size_t n = strnlen(uuid, EP_UUID_TEXT_LEN);
  memcpy(out, uuid, n);
  memcpy(out + n, header, EP_RECOVERY_RECORD_HEADER);
  return n + EP_RECOVERY_RECORD_HEADER;
}

/* AES-256-GCM of in[0..len) into out (encrypting: tag written; else: tag checked). Returns 1 when
 * it worked (and, decrypting, the tag matched). */
static int gcm(bool encrypt, const uint8_t *aes, const uint8_t *nonce, const uint8_t *aad, size_t aad_len,
               const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag) {
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  int n = 0, ok = ctx && EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, encrypt) &&
                  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, EP_RECOVERY_NONCE_LEN, NULL) &&
                  EVP_CipherInit_ex(ctx, NULL, NULL, aes, nonce, encrypt) &&
                  EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len) &&
                  EVP_CipherUpdate(ctx, out, &n, in, (int)len) && (size_t)n == len;
  if (ok && !encrypt) ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, EP_RECOVERY_TAG_LEN, tag);
  if (ok) ok = EVP_CipherFinal_ex(ctx, out + len, &n) && n == 0;
  if (ok && encrypt) ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, EP_RECOVERY_TAG_LEN, tag);
  EVP_CIPHER_CTX_free(ctx);
  return ok;
}

int ep_recovery_key_seal(uint8_t **ret_record, size_t *ret_len, const ep_recovery_site_key *key, const char *uuid,
                         const char *recovery_key, int64_t stored_at) {
  int r = ep_recovery_key_validate("recovery_key", recovery_key);
  if (r < 0) return r;
  size_t len = strlen(recovery_key);
  size_t total = EP_RECOVERY_RECORD_HEADER + EP_RECOVERY_NONCE_LEN + len + EP_RECOVERY_TAG_LEN;
  uint8_t *record = malloc(total);
  if (!record) return ep_error_set(EP_ENOMEM, "out of memory");
  record[0] = EP_RECOVERY_RECORD_VERSION;
  memcpy(record + 1, key->id, EP_RECOVERY_KEY_ID_LEN);
  for (int i = 0; i < 8; i++) record[1 + EP_RECOVERY_KEY_ID_LEN + i] = (uint8_t)((uint64_t)stored_at >> (56 - 8 * i));
  uint8_t *nonce = record + EP_RECOVERY_RECORD_HEADER, *sealed = nonce + EP_RECOVERY_NONCE_LEN;
  uint8_t aad[EP_UUID_TEXT_LEN + EP_RECOVERY_RECORD_HEADER];
  size_t aad_len = additional_data(aad, uuid, record);
  if (RAND_bytes(nonce, EP_RECOVERY_NONCE_LEN) != 1 ||
      !gcm(true, key->aes, nonce, aad, aad_len, (const uint8_t *)recovery_key, len, sealed, sealed + len)) {
    explicit_bzero(record, total);
    free(record);
    return ep_error_set(EP_EIO, "cannot seal the recovery key of host %s (OpenSSL's AES-GCM or random bytes failed)",
                        uuid);
  }
  *ret_record = record;
  *ret_len = total;
  return 0;
}

int ep_recovery_key_open(char **ret_key, int64_t *ret_stored_at, const ep_recovery_site_key *key, const char *uuid,
                         const uint8_t *record, size_t len) {
  size_t overhead = EP_RECOVERY_RECORD_HEADER + EP_RECOVERY_NONCE_LEN + EP_RECOVERY_TAG_LEN;
  if (len < overhead + EP_RECOVERY_KEY_MIN || len > EP_RECOVERY_RECORD_MAX || record[0] != EP_RECOVERY_RECORD_VERSION)
    return ep_error_set(EP_EIO, "host %s: its recovery key record is damaged (%zu bytes, version %u)", uuid, len,
                        len ? record[0] : 0);
  if (memcmp(record + 1, key->id, EP_RECOVERY_KEY_ID_LEN) != 0) {
    char stored[EP_RECOVERY_KEY_ID_TEXT + 1];
    hex(stored, record + 1, EP_RECOVERY_KEY_ID_LEN);
    return ep_error_set(EP_EPERM,
                        "host %s: its recovery key was stored under site key %s, but secrets.recovery_key_file holds "
                        "site key %s; put back the key file it was stored with (and restart edgeprovd)",
                        uuid, stored, key->id_text);
  }
  size_t key_len = len - overhead;
  const uint8_t *nonce = record + EP_RECOVERY_RECORD_HEADER, *sealed = nonce + EP_RECOVERY_NONCE_LEN;
  uint8_t tag[EP_RECOVERY_TAG_LEN], aad[EP_UUID_TEXT_LEN + EP_RECOVERY_RECORD_HEADER];
  memcpy(tag, sealed + key_len, sizeof tag);
  size_t aad_len = additional_data(aad, uuid, record);
  char *plain = malloc(key_len + EP_RECOVERY_TAG_LEN + 1); /* room for what a final step may write */
  if (!plain) return ep_error_set(EP_ENOMEM, "out of memory");
  if (!gcm(false, key->aes, nonce, aad, aad_len, sealed, key_len, (uint8_t *)plain, tag)) {
    explicit_bzero(plain, key_len + EP_RECOVERY_TAG_LEN + 1);
    free(plain);
    return ep_error_set(EP_EIO, "host %s: its recovery key record does not authenticate (altered, damaged or another "
                                "host's)", uuid);
  }
  plain[key_len] = '\0';
  int64_t stored_at = 0;
  for (int i = 0; i < 8; i++) stored_at = (int64_t)((uint64_t)stored_at << 8 | record[1 + EP_RECOVERY_KEY_ID_LEN + i]);
  *ret_key = plain;
  if (ret_stored_at) *ret_stored_at = stored_at;
  return 0;
}

static int no_site_key(void) {
  return ep_error_set(EP_EPERM, "this site keeps no recovery keys: set secrets.recovery_key_file (a file of at least %d "
                                "secret characters, mode 0600) and restart edgeprovd",
                      EP_RECOVERY_SITE_KEY_MIN);
}

int ep_recovery_key_store(ep_inventory *inv, const ep_recovery_site_key *key, const char *uuid, const char *recovery_key,
                          bool *ret_replaced) {
  char canonical[EP_UUID_TEXT_LEN + 1], name[sizeof EP_RECOVERY_KEYS_PREFIX + EP_UUID_TEXT_LEN];
  if (ep_validate_uuid(canonical, "uuid", uuid) < 0) return EP_EINVAL;
  if (!key) return no_site_key();
  int r = ep_recovery_key_validate("recovery_key", recovery_key);
  ep_inv_host *host = NULL;
  if (r == 0) r = ep_inventory_get_host(inv, canonical, &host);
  ep_inv_host_free(host);
  if (r < 0) return r;
  ep_recovery_key_record_name(name, canonical);
  uint8_t *record = NULL;
  size_t len = 0;
  r = ep_recovery_key_seal(&record, &len, key, canonical, recovery_key, (int64_t)time(NULL));
  bool replaced = false;
  for (int attempt = 0; r == 0 && attempt < CAS_RETRIES; attempt++) {
    uint8_t *old = NULL;
    size_t old_len = 0;
    uint64_t revision = 0;
    r = ep_inventory_load_raw(inv, name, &old, &old_len, &revision);
    free(old);
    if (r == EP_ENOENT) r = 0, revision = 0;
    ep_storage_op op = {.kind = EP_STORAGE_PUT, .key = name, .value = record, .value_len = len,
                        .expect_mod_revision = revision ? revision : EP_STORAGE_EXPECT_ABSENT};
    if (r == 0) r = ep_inventory_commit_raw(inv, &op, 1, NULL);
    replaced = revision != 0;
    if (r != EP_ECONFLICT) break;
    r = attempt + 1 < CAS_RETRIES ? 0 : ep_error_set(EP_ECONFLICT, "the recovery key of host %s keeps changing", canonical);
  }
  if (record) explicit_bzero(record, len);
  free(record);
  /* The host deleted meanwhile (its delete removes the record; this write may have come after
   * it): nothing of it may outlive it. */
  if (r == 0 && ep_inventory_get_host(inv, canonical, &host) == EP_ENOENT) {
    ep_storage_op op = {.kind = EP_STORAGE_DELETE, .key = name, .expect_mod_revision = EP_STORAGE_EXPECT_ANY};
    ep_inventory_commit_raw(inv, &op, 1, NULL);
    r = ep_error_set(EP_ENOENT, "host %s was deleted", canonical);
  }
  ep_inv_host_free(host);
  if (r == 0 && ret_replaced) *ret_replaced = replaced;
  return r;
}

int ep_recovery_key_read(ep_inventory *inv, const ep_recovery_site_key *key, const char *uuid, char **ret_key,
                         int64_t *ret_stored_at) {
  char canonical[EP_UUID_TEXT_LEN + 1], name[sizeof EP_RECOVERY_KEYS_PREFIX + EP_UUID_TEXT_LEN];
  if (ep_validate_uuid(canonical, "uuid", uuid) < 0) return EP_EINVAL;
  if (!key) return no_site_key();
  ep_recovery_key_record_name(name, canonical);
  uint8_t *record = NULL;
  size_t len = 0;
  int r = ep_inventory_load_raw(inv, name, &record, &len, NULL);
  if (r == EP_ENOENT) return ep_error_set(EP_ENOENT, "host %s: no recovery key is stored (its node sends one when it "
                                                     "encrypts its disk)", canonical);
  if (r < 0) return r;
  r = ep_recovery_key_open(ret_key, ret_stored_at, key, canonical, record, len);
  free(record);
  return r;
}
