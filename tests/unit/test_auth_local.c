/* Tests of the auth-local plugin, loaded for real with storage-sqlite: per-node credentials
 * (only a hash stored), and ES256 tokens: accepted when right, refused when tampered,
 * expired, for another audience, after revocation (also once the node onboarded again), or
 * for a wrong secret; and the token endpoint, which issues tokens only for the audiences the
 * site lists (auth.token_audiences). */
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
#include <edgeprov/storage.h>

#include "runtime/config.h"
#include "base/error.h"
#include "net/http_client.h"
#include "net/https.h"
#include "runtime/site.h"
#include "testutil.h"
#include "southbound/token_endpoint.h"

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

/* Opens a site with storage-sqlite and auth-local; extra is more config text. */
static int setup_with(void **state, const char *extra) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_mkdtemp();
  char text[2048];
  snprintf(text, sizeof text,
           "paths = { data = \"%s\"; plugins = [ \"%s\" ]; };\n"
           "plugins = { enabled = [ \"storage-sqlite\", \"auth-local\" ]; };\n%s",
           f->dir, EP_PLUGIN_OUTPUT_DIR, extra);
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

static int setup(void **state) { return setup_with(state, ""); }

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
  assert_int_equal(tu_grep_tree(f->dir, f->secret), 1); /* the secret itself is stored nowhere */
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

/* The attack of finding 4 (issue 14): a token minted before `host invalidate`, kept by
 * whoever holds it, must stay dead after `host approve` and the node onboarding again (a new
 * credential for the same client ID), even within the same second. */
static void old_token_is_refused_after_reonboarding(void **state) {
  fixture *f = *state;
  assert_int_equal(f->id->create(f->state, NODE, keep_secret, f), 0);
  assert_int_equal(f->id->issue_token(f->state, "edgenode-" NODE, f->secret, "edgeprov", keep_token, f), 0);
  char old[4096];
  snprintf(old, sizeof old, "%s", f->token);
  assert_int_equal(f->id->verify_token(f->state, old, "edgeprov", NULL, NULL), 0);

  assert_int_equal(f->id->revoke(f->state, NODE), 0);                          /* host invalidate */
  assert_int_equal(f->id->create(f->state, NODE, keep_secret, f), 0);          /* approve, onboard */
  assert_int_equal(f->id->verify_token(f->state, old, "edgeprov", NULL, NULL), EP_EPERM);
  assert_non_null(strstr(ep_error_message(), "issued before the node's current credentials"));

  /* The node's new token is good; a rotation retires it the same way. */
  assert_int_equal(f->id->issue_token(f->state, "edgenode-" NODE, f->secret, "edgeprov", keep_token, f), 0);
  assert_int_equal(f->id->verify_token(f->state, f->token, "edgeprov", NULL, NULL), 0);
  snprintf(old, sizeof old, "%s", f->token);
  assert_int_equal(f->id->rotate(f->state, NODE, keep_secret, f), 0);
  assert_int_equal(f->id->verify_token(f->state, old, "edgeprov", NULL, NULL), EP_EPERM);
  assert_int_equal(f->id->issue_token(f->state, "edgenode-" NODE, f->secret, "edgeprov", keep_token, f), 0);
  assert_int_equal(f->id->verify_token(f->state, f->token, "edgeprov", NULL, NULL), 0);
}

typedef struct stored {
  char value[512];
} stored;

static int32_t keep_value(void *data, const ep_storage_record *r) {
  stored *out = data;
  snprintf(out->value, sizeof out->value, "%.*s", (int)r->value_len, (const char *)r->value);
  return 0;
}

/* Rewrites the node's stored record as records were before credential IDs
 * ("<client_id>\n<hash>\n<created_at>\n"), with the given creation time. */
static void set_created_at(fixture *f, long long created_at) {
  void *st_state = NULL;
  ep_plugin *provider = NULL;
  const ep_storage *st = ep_plugins_capability(f->site->plugins, EP_CAP_STORAGE, &provider);
  assert_non_null(st);
  st_state = provider->instance;
  stored rec = {{0}};
  assert_int_equal(st->get(st_state, "identity/local/" NODE, keep_value, &rec), 0);
  char client_id[96], hash[65], value[512];
  assert_int_equal(sscanf(rec.value, "%95[^\n]\n%64[0-9a-f]", client_id, hash), 2);
  int len = snprintf(value, sizeof value, "%s\n%s\n%lld\n", client_id, hash, created_at);
  ep_storage_op op = {.struct_size = sizeof op, .kind = EP_STORAGE_PUT, .key = "identity/local/" NODE,
                      .value = (const uint8_t *)value, .value_len = (uint64_t)len,
                      .expect_mod_revision = EP_STORAGE_EXPECT_ANY};
  assert_int_equal(st->txn(st_state, &op, 1, sizeof op, NULL, NULL), 0);
}

/* The creation time bounds iat on its own too (what protects tokens of records written
 * before credential IDs, whose records this test writes). */
static void token_older_than_the_credentials_is_refused(void **state) {
  fixture *f = *state;
  assert_int_equal(f->id->create(f->state, NODE, keep_secret, f), 0);
  assert_int_equal(f->id->issue_token(f->state, "edgenode-" NODE, f->secret, "edgeprov", keep_token, f), 0);
  long long now = (long long)time(NULL);
  set_created_at(f, now - 60);
  assert_int_equal(f->id->verify_token(f->state, f->token, "edgeprov", NULL, NULL), 0);
  set_created_at(f, now + 60); /* credentials made after the token was issued */
  assert_int_equal(f->id->verify_token(f->state, f->token, "edgeprov", NULL, NULL), EP_EPERM);
  assert_non_null(strstr(ep_error_message(), "issued before the node's current credentials"));
}

/* POSTs a client-credentials grant with the node's credentials (and audience, when not
 * NULL) to the token endpoint at port; returns the HTTP status, the body in body. */
static int grant(fixture *f, int port, const char *audience, char *body, size_t cap) {
  char url[128], form[512];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, EP_TOKEN_PATH);
  snprintf(form, sizeof form, "grant_type=client_credentials&client_id=edgenode-" NODE "&client_secret=%s%s%s",
           f->secret, audience ? "&audience=" : "", audience ? audience : "");
  const char *headers[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
  ep_http_call call = {.method = "POST", .url = url, .headers = headers, .body = (const uint8_t *)form,
                       .body_len = strlen(form), .timeout_ms = 10000};
  ep_http_reply reply;
  assert_int_equal(ep_http_perform(&call, &reply), 0);
  snprintf(body, cap, "%s", reply.body ? reply.body : "");
  int status = reply.status;
  ep_http_reply_clear(&reply);
  return status;
}

static int setup_audiences(void **state) {
  return setup_with(state, "auth = { token_audiences = [ \"edgeprov\", \"edgeprov-metrics\" ]; };\n");
}

/* The attack of finding 6: a node asks the token endpoint for a token of an audience it
 * names (another service that trusts this issuer). Only the listed audiences are issued. */
static void token_endpoint_issues_only_listed_audiences(void **state) {
  fixture *f = *state;
  assert_int_equal(f->id->create(f->state, NODE, keep_secret, f), 0);
  ep_https_server *server = NULL;
  int port = 0;
  assert_int_equal(ep_https_server_new(&server, "127.0.0.1:0", NULL, NULL), 0);
  assert_int_equal(ep_token_endpoint_route(server, f->site->plugins), 0);
  assert_int_equal(ep_https_server_start(server, &port), 0);
  char body[8192];

  assert_int_equal(grant(f, port, "billing-api", body, sizeof body), 400);
  assert_non_null(strstr(body, "\"error\":\"invalid_target\""));
  assert_non_null(strstr(body, "audience"));
  assert_null(strstr(body, "access_token"));
  assert_int_equal(grant(f, port, "edgeprov-metricsX", body, sizeof body), 400);

  assert_int_equal(grant(f, port, "edgeprov-metrics", body, sizeof body), 200);
  char *token = strstr(body, "\"access_token\":\"");
  assert_non_null(token);
  token += strlen("\"access_token\":\"");
  *strchr(token, '"') = '\0';
  assert_int_equal(f->id->verify_token(f->state, token, "edgeprov-metrics", NULL, NULL), 0);
  assert_int_equal(f->id->verify_token(f->state, token, "edgeprov", NULL, NULL), EP_EPERM);

  assert_int_equal(grant(f, port, NULL, body, sizeof body), 200); /* no audience: the node API's */
  ep_https_server_free(server);

  assert_true(ep_token_audience_allowed(f->site->config, "edgeprov"));
  assert_false(ep_token_audience_allowed(f->site->config, "billing-api"));
  assert_false(ep_token_audience_allowed(f->site->config, NULL));
  assert_true(ep_token_audience_allowed(NULL, "edgeprov")); /* no config: the node API's only */
  assert_false(ep_token_audience_allowed(NULL, "edgeprov-metrics"));
}

/* With embedded defaults the token endpoint issues the node API's audience only. */
static void token_endpoint_default_is_the_node_audience(void **state) {
  fixture *f = *state;
  assert_int_equal(f->site->config->token_audiences.count, 1);
  assert_string_equal(f->site->config->token_audiences.items[0], "edgeprov");
  assert_int_equal(f->id->create(f->state, NODE, keep_secret, f), 0);
  ep_https_server *server = NULL;
  int port = 0;
  assert_int_equal(ep_https_server_new(&server, "127.0.0.1:0", NULL, NULL), 0);
  assert_int_equal(ep_token_endpoint_route(server, f->site->plugins), 0);
  assert_int_equal(ep_https_server_start(server, &port), 0);
  char body[8192];
  assert_int_equal(grant(f, port, "other", body, sizeof body), 400);
  assert_non_null(strstr(body, "invalid_target"));
  assert_int_equal(grant(f, port, "edgeprov", body, sizeof body), 200);
  ep_https_server_free(server);
}

/* A bad auth.token_audiences is a config error naming the key and what is allowed. */
static void bad_token_audiences_are_config_errors(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  const char *cases[][2] = {
      {"auth = { token_audiences = [ \"bad audience\" ]; };\n", "'auth.token_audiences': \"bad audience\": an audience may only hold"},
      {"auth = { token_audiences = [ ]; };\n", "'auth.token_audiences': must list at least one audience"},
      {"auth = { token_audiences = \"edgeprov\"; };\n", "'auth.token_audiences': expected a list of strings"},
      {"auth = { token_audiences = [ \"edgeprov\", \"edgeprov\" ]; };\n", "is listed twice"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *path = tu_write(dir, "site.conf", cases[i][0]);
    ep_diags diags = {0};
    ep_config *c = NULL;
    assert_int_equal(ep_config_load(&c, path, NULL, &diags), 0);
    assert_true(diags.errors > 0);
    bool found = false;
    for (size_t d = 0; d < diags.count; d++) found = found || strstr(diags.items[d].message, cases[i][1]);
    if (!found) fail_msg("case %zu: no diagnostic with \"%s\"", i, cases[i][1]);
    assert_true(c->token_audiences.count > 0); /* checking goes on with a usable value */
    ep_diags_clear(&diags);
    ep_config_free(c);
    free(path);
  }
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(credentials_are_issued_once_and_only_hashed, setup, teardown),
      cmocka_unit_test_setup_teardown(tokens_are_issued_and_verified, setup, teardown),
      cmocka_unit_test_setup_teardown(expired_token_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(old_token_is_refused_after_reonboarding, setup, teardown),
      cmocka_unit_test_setup_teardown(token_older_than_the_credentials_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(token_endpoint_issues_only_listed_audiences, setup_audiences, teardown),
      cmocka_unit_test_setup_teardown(token_endpoint_default_is_the_node_audience, setup, teardown),
      cmocka_unit_test(bad_token_audiences_are_config_errors),
  };
  return cmocka_run_group_tests_name("auth_local", tests, NULL, NULL);
}
