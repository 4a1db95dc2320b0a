/* Tests of the auth-local plugin, loaded for real with storage-sqlite: per-node credentials
 * (only a hash stored), and ES256 tokens: accepted when right, refused when tampered,
 * expired, for another audience, after revocation, or for a wrong secret. */
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>

#include <edgeprov/identity.h>

#include "error.h"
#include "site.h"
#include "testutil.h"

#define NODE "44444444-4444-4444-8444-444444444444"

typedef struct fixture {
  char *dir;
  ep_site *site;
  const ep_identity *id;
  void *state;
  char secret[128];
  char token[4096];
} fixture;

static int32_t keep_secret(void *data, const ep_identity_credentials *c) {
  fixture *f = data;
  snprintf(f->secret, sizeof f->secret, "%s", c->client_secret ? c->client_secret : "");
  return 0;
}

static int32_t keep_token(void *data, const ep_identity_credentials *c) {
  fixture *f = data;
  snprintf(f->token, sizeof f->token, "%s", c->client_secret);
  return 0;
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_mkdtemp();
  char text[1024];
  snprintf(text, sizeof text,
           "paths = { data = \"%s\"; plugins = [ \"%s\" ]; };\n"
           "plugins = { enabled = [ \"storage-sqlite\", \"auth-local\" ]; };\n",
           f->dir, EP_PLUGIN_OUTPUT_DIR);
  char *path = tu_write(f->dir, "site.conf", text);
  ep_diags diags = {0};
  int r = ep_site_open(&f->site, path, &diags);
  free(path);
  if (r < 0 || diags.errors || ep_plugins_start(f->site->plugins, f->site->config) < 0) return -1;
  ep_plugin *provider = NULL;
  f->id = ep_plugins_capability(f->site->plugins, EP_CAP_IDENTITY, &provider);
  if (!f->id) return -1;
  f->state = provider->instance;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  ep_site_free(f->site);
  tu_rmdir(f->dir);
  free(f);
  return 0;
}

static void credentials_are_issued_once_and_only_hashed(void **state) {
  fixture *f = *state;
  assert_int_equal(f->id->create(f->state, NODE, keep_secret, f), 0);
  assert_int_equal(strlen(f->secret), 43);
  assert_int_equal(f->id->create(f->state, NODE, keep_secret, f), EP_EEXIST);
  assert_int_equal(f->id->get(f->state, NODE, NULL, NULL), 0);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "grep -rqaF -- '%s' '%s'", f->secret, f->dir);
  assert_int_not_equal(system(cmd), 0); /* the secret itself is stored nowhere */
  char first[128];
  snprintf(first, sizeof first, "%s", f->secret);
  assert_int_equal(f->id->rotate(f->state, NODE, keep_secret, f), 0);
  assert_string_not_equal(first, f->secret);
  assert_int_equal(f->id->get(f->state, "Not A Node", NULL, NULL), EP_EINVAL);
}

static void tokens_are_issued_and_verified(void **state) {
  fixture *f = *state;
  assert_int_equal(f->id->create(f->state, NODE, keep_secret, f), 0);
  assert_int_equal(f->id->issue_token(f->state, "edgenode-" NODE, "wrong-secret", "edgeprov", keep_token, f), EP_EPERM);
  assert_int_equal(f->id->issue_token(f->state, "edgenode-" NODE, f->secret, "edgeprov", keep_token, f), 0);
  assert_int_equal(f->id->verify_token(f->state, f->token, "edgeprov", NULL, NULL), 0);

  /* Another audience. */
  assert_int_equal(f->id->verify_token(f->state, f->token, "other-service", NULL, NULL), EP_EPERM);
  assert_non_null(strstr(ep_error_message(), "wrong audience"));

  /* Tampered: one character of the payload changed. */
  char tampered[4096];
  snprintf(tampered, sizeof tampered, "%s", f->token);
  char *payload = strchr(tampered, '.') + 5;
  *payload = *payload == 'A' ? 'B' : 'A';
  assert_int_equal(f->id->verify_token(f->state, tampered, "edgeprov", NULL, NULL), EP_EPERM);
  assert_int_equal(f->id->verify_token(f->state, "a.b", "edgeprov", NULL, NULL), EP_EPERM);
  assert_int_equal(f->id->verify_token(f->state, "", "edgeprov", NULL, NULL), EP_EPERM);

  /* Revoked credentials make their tokens worthless at once. */
  assert_int_equal(f->id->revoke(f->state, NODE), 0);
  assert_int_equal(f->id->verify_token(f->state, f->token, "edgeprov", NULL, NULL), EP_EPERM);
  assert_non_null(strstr(ep_error_message(), "revoked"));
}

static void base64url(const unsigned char *in, size_t len, char *out) {
  static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t o = 0;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < len ? in[i + 2] : 0);
    out[o++] = a[(v >> 18) & 63];
    out[o++] = a[(v >> 12) & 63];
    if (i + 1 < len) out[o++] = a[(v >> 6) & 63];
    if (i + 2 < len) out[o++] = a[v & 63];
  }
  out[o] = '\0';
}

static void expired_token_is_refused(void **state) {
  fixture *f = *state;
  assert_int_equal(f->id->create(f->state, NODE, keep_secret, f), 0);
  assert_int_equal(f->id->issue_token(f->state, "edgenode-" NODE, f->secret, "edgeprov", keep_token, f), 0);
  /* Re-sign the same header with exp an hour ago, using the plugin's own key. */
  char key_path[512];
  snprintf(key_path, sizeof key_path, "%s/auth-local/signing-key.pem", f->dir);
  FILE *kf = fopen(key_path, "r");
  assert_non_null(kf);
  EVP_PKEY *key = PEM_read_PrivateKey(kf, NULL, NULL, NULL);
  fclose(kf);
  assert_non_null(key);
  char header64[256], payload[512], payload64[700], token[2048];
  snprintf(header64, sizeof header64, "%.*s", (int)(strchr(f->token, '.') - f->token), f->token);
  long long past = (long long)time(NULL) - 3600;
  snprintf(payload, sizeof payload,
           "{\"iss\":\"edgeprov-auth-local\",\"sub\":\"edgenode-" NODE "\",\"aud\":\"edgeprov\",\"iat\":%lld,\"exp\":%lld}",
           past - 60, past);
  base64url((const unsigned char *)payload, strlen(payload), payload64);
  snprintf(token, sizeof token, "%s.%s", header64, payload64);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  unsigned char der[128], raw[64];
  size_t der_len = sizeof der;
  assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key), 1);
  assert_int_equal(EVP_DigestSign(md, der, &der_len, (const unsigned char *)token, strlen(token)), 1);
  EVP_MD_CTX_free(md);
  const unsigned char *p = der;
  ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32);
  ECDSA_SIG_free(sig);
  EVP_PKEY_free(key);
  size_t used = strlen(token);
  token[used++] = '.';
  base64url(raw, 64, token + used);
  assert_int_equal(f->id->verify_token(f->state, token, "edgeprov", NULL, NULL), EP_EPERM);
  assert_string_equal(ep_error_message(), "token: expired");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(credentials_are_issued_once_and_only_hashed, setup, teardown),
      cmocka_unit_test_setup_teardown(tokens_are_issued_and_verified, setup, teardown),
      cmocka_unit_test_setup_teardown(expired_token_is_refused, setup, teardown),
  };
  return cmocka_run_group_tests_name("auth_local", tests, NULL, NULL);
}
