/* auth-local: the embedded identity provider. Issues per-node client credentials and keeps
 * only a SHA-256 hash of each secret, in the site's store (edgeprov.storage/1) under
 * "identity/local/<node>"; issues and verifies ES256 JWTs (the client-credentials grant done
 * in process; the HTTPS token endpoint and JWKS document come with the embedded HTTPS
 * server). */
#define _GNU_SOURCE /* getrandom, explicit_bzero */
#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <edgeprov/edgeprov.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/core_names.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jose.h"
#include "node_client.h"

#define KEY_PREFIX "identity/local/"
#define SECRET_BYTES 32     /* 256 random bits per node secret */
#define CRED_ID_BYTES 8     /* random ID of one issue of credentials, bound into its tokens */
#define RECORD_MAX 512

typedef struct auth_state {
  const ep_host *host;
  ep_ctx *ctx;
  const char *project_id;
  const char *issuer;
  int64_t token_ttl;
  EVP_PKEY *key; /* ES256 signing key, created on first start */
  char kid[24];  /* key ID: the start of the base64url SHA-256 of the public key */
} auth_state;

/* ---- helpers -------------------------------------------------------------------------- */

static int32_t sha256_hex(auth_state *s, const char *text, char out[65]) {
  unsigned char digest[32];
  unsigned int len = 0;
  if (EVP_Digest(text, strlen(text), digest, &len, EVP_sha256(), NULL) != 1 || len != 32)
    return ep_failf(s->host, s->ctx, EP_EIO, "SHA-256 failed");
  for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", digest[i]);
  return 0;
}

static const ep_storage *store(auth_state *s, void **ret_state) {
  return s->host->capability(s->ctx, EP_CAP_STORAGE, ret_state);
}

/* The stored record: "<client_id>\n<sha256 of secret>\n<created_at>\n<credential ID>\n".
 * Tokens of these credentials have an iat of at least created_at and carry the credential ID
 * (hex, new at every create and rotate) as "ep_cid": a token of earlier credentials of the
 * node (revoked and onboarded again, or rotated) is refused, even one issued within the
 * second the new ones were made, which iat alone cannot tell. Records written before
 * credential IDs have none (cred_id ""): then iat alone is checked. */
typedef struct record {
  char client_id[96];
  char hash[65];
  char cred_id[CRED_ID_BYTES * 2 + 1];
  int64_t created_at;
  uint64_t revision;
  bool found;
} record;

static int32_t read_record(void *data, const ep_storage_record *r) {
  record *rec = data;
  char text[RECORD_MAX + 1];
  size_t len = r->value_len < RECORD_MAX ? (size_t)r->value_len : RECORD_MAX;
  memcpy(text, r->value, len);
  text[len] = '\0';
  long long created = 0;
  int n = sscanf(text, "%95[^\n]\n%64[0-9a-f]\n%lld\n%16[0-9a-f]", rec->client_id, rec->hash, &created, rec->cred_id);
  if (n == 3) rec->cred_id[0] = '\0';
  if (n >= 3) {
    rec->created_at = created;
    rec->revision = r->mod_revision;
    rec->found = true;
  }
  return 0;
}

static int32_t load(auth_state *s, const char *node_id, record *rec) {
  void *st_state = NULL;
  const ep_storage *st = store(s, &st_state);
  if (!st) return ep_failf(s->host, s->ctx, EP_ENOENT, "no storage plugin is active");
  char key[128];
  snprintf(key, sizeof key, KEY_PREFIX "%s", node_id);
  memset(rec, 0, sizeof *rec);
  int32_t r = st->get(st_state, key, read_record, rec);
  if (r == EP_ENOENT) return EP_ENOENT;
  if (r < 0) return r;
  if (!rec->found) return ep_failf(s->host, s->ctx, EP_EIO, "credentials of %s are corrupt", node_id);
  return 0;
}

/* Writes a new secret for node_id (expect: EP_STORAGE_EXPECT_ABSENT or the record's
 * revision) and visits the credentials with the secret. */
static int32_t issue(auth_state *s, const char *node_id, uint64_t expect, ep_identity_credentials_fn visit, void *data) {
  void *st_state = NULL;
  const ep_storage *st = store(s, &st_state);
  if (!st) return ep_failf(s->host, s->ctx, EP_ENOENT, "no storage plugin is active");
  unsigned char raw[SECRET_BYTES], cred_raw[CRED_ID_BYTES];
  if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw || getrandom(cred_raw, sizeof cred_raw, 0) != (ssize_t)sizeof cred_raw)
    return ep_failf(s->host, s->ctx, EP_EIO, "getrandom: %s", strerror(errno));
  char secret[SECRET_BYTES * 2], hash[65], client_id[96], key[128], value[RECORD_MAX], cred_id[CRED_ID_BYTES * 2 + 1];
  ep_b64url_encode(raw, sizeof raw, secret);
  explicit_bzero(raw, sizeof raw);
  for (int i = 0; i < CRED_ID_BYTES; i++) snprintf(cred_id + 2 * i, 3, "%02x", cred_raw[i]);
  int32_t r = sha256_hex(s, secret, hash);
  int64_t now = (int64_t)time(NULL);
  snprintf(client_id, sizeof client_id, EP_NODE_CLIENT_PREFIX "%s", node_id);
  snprintf(key, sizeof key, KEY_PREFIX "%s", node_id);
  int len = snprintf(value, sizeof value, "%s\n%s\n%" PRId64 "\n%s\n", client_id, hash, now, cred_id);
  if (r == 0) {
    ep_storage_op op = {.struct_size = sizeof op, .kind = EP_STORAGE_PUT, .key = key,
                        .value = (const uint8_t *)value, .value_len = (uint64_t)len, .expect_mod_revision = expect};
    uint64_t revision = 0;
    r = st->txn(st_state, &op, 1, sizeof op, &revision, NULL);
    if (r == EP_ECONFLICT)
      r = ep_failf(s->host, s->ctx, EP_EEXIST, "node %s already has credentials (%s)", node_id, client_id);
  }
  if (r == 0 && visit) {
    ep_identity_credentials c = {.struct_size = sizeof c, .client_id = client_id, .client_secret = secret,
                                 .project_id = s->project_id, .created_at = now};
    visit(data, &c);
  }
  explicit_bzero(secret, sizeof secret);
  return r;
}

/* ---- the identity table ------------------------------------------------------------------ */

static int32_t local_create(void *state, const char *node_id, ep_identity_credentials_fn visit, void *data) {
  auth_state *s = state;
  int32_t r = ep_node_id_check(s->host, s->ctx, node_id);
  return r < 0 ? r : issue(s, node_id, EP_STORAGE_EXPECT_ABSENT, visit, data);
}

static int32_t local_get(void *state, const char *node_id, ep_identity_credentials_fn visit, void *data) {
  auth_state *s = state;
  record rec;
  int32_t r = ep_node_id_check(s->host, s->ctx, node_id);
  if (r == 0) r = load(s, node_id, &rec);
  if (r == EP_ENOENT) return ep_failf(s->host, s->ctx, EP_ENOENT, "node %s has no credentials", node_id);
  if (r < 0) return r;
  ep_identity_credentials c = {.struct_size = sizeof c, .client_id = rec.client_id, .project_id = s->project_id,
                               .created_at = rec.created_at};
  if (visit) visit(data, &c);
  return 0;
}

static int32_t local_rotate(void *state, const char *node_id, ep_identity_credentials_fn visit, void *data) {
  auth_state *s = state;
  record rec;
  int32_t r = ep_node_id_check(s->host, s->ctx, node_id);
  if (r == 0) r = load(s, node_id, &rec);
  if (r == EP_ENOENT) return ep_failf(s->host, s->ctx, EP_ENOENT, "node %s has no credentials to rotate", node_id);
  return r < 0 ? r : issue(s, node_id, rec.revision, visit, data);
}

static int32_t local_revoke(void *state, const char *node_id) {
  auth_state *s = state;
  int32_t r = ep_node_id_check(s->host, s->ctx, node_id);
  if (r < 0) return r;
  void *st_state = NULL;
  const ep_storage *st = store(s, &st_state);
  if (!st) return ep_failf(s->host, s->ctx, EP_ENOENT, "no storage plugin is active");
  char key[128];
  snprintf(key, sizeof key, KEY_PREFIX "%s", node_id);
  ep_storage_op op = {.struct_size = sizeof op, .kind = EP_STORAGE_DELETE, .key = key,
                      .expect_mod_revision = EP_STORAGE_EXPECT_ANY};
  return st->txn(st_state, &op, 1, sizeof op, NULL, NULL);
}

/* ---- tokens (JWT, ES256) ------------------------------------------------------------------ */

#define TOKEN_MAX EP_JOSE_TOKEN_MAX

/* Claims and audiences are plain identifiers: nothing that needs escaping in JSON. */
static bool token_text_valid(const char *text, size_t max) {
  size_t len = text ? strnlen(text, max + 1) : 0;
  if (len == 0 || len > max) return false;
  for (size_t i = 0; i < len; i++) {
    char c = text[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("._:/-", c))) return false;
  }
  return true;
}

static int32_t local_issue_token(void *state, const char *client_id, const char *client_secret, const char *audience,
                                 ep_identity_credentials_fn visit, void *data) {
  auth_state *s = state;
  const char *node = ep_node_of_client(client_id);
  record rec;
  char hash[65];
  if (!token_text_valid(audience, 128)) return ep_failf(s->host, s->ctx, EP_EINVAL, "audience: not an identifier");
  if (!node || !client_secret || strnlen(client_secret, 256) > 255 || load(s, node, &rec) < 0 ||
      sha256_hex(s, client_secret, hash) < 0 || CRYPTO_memcmp(hash, rec.hash, 64) != 0 || strcmp(rec.client_id, client_id))
    return ep_failf(s->host, s->ctx, EP_EPERM, "invalid client credentials");
  char header[128], payload[512], header64[200], payload64[700], token[TOKEN_MAX];
  int64_t now = (int64_t)time(NULL);
  snprintf(header, sizeof header, "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", s->kid);
  /* iat is never before the credentials' creation time, even if the clock stepped back since. */
  int64_t iat = now < rec.created_at ? rec.created_at : now;
  snprintf(payload, sizeof payload,
           "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"%s\",\"iat\":%" PRId64 ",\"exp\":%" PRId64 "%s%s%s}",
           s->issuer, client_id, audience, iat, now + s->token_ttl, rec.cred_id[0] ? ",\"ep_cid\":\"" : "",
           rec.cred_id, rec.cred_id[0] ? "\"" : "");
  ep_b64url_encode((const unsigned char *)header, strlen(header), header64);
  ep_b64url_encode((const unsigned char *)payload, strlen(payload), payload64);
  snprintf(token, sizeof token, "%s.%s", header64, payload64);
  int32_t r = ep_jws_sign_es256(token, sizeof token, s->key) == 0 ? 0 : ep_failf(s->host, s->ctx, EP_EIO, "cannot sign the token");
  if (r == 0 && visit) {
    ep_identity_credentials c = {.struct_size = sizeof c, .client_id = client_id, .client_secret = token,
                                 .project_id = s->project_id, .created_at = now};
    visit(data, &c);
  }
  return r;
}

/* True when a token's claims belong to the node's current credentials rec: issued (iat) no
 * earlier than they were created and, when rec has a credential ID, carrying it as ep_cid. A
 * token minted before an invalidation thus stays dead after the node onboards again under
 * the same client ID (finding 4 of issue 14). */
static bool token_of_credentials(const json_t *payload, const record *rec) {
  const json_t *iat = json_object_get(payload, "iat");
  if (!json_is_integer(iat) || (int64_t)json_integer_value(iat) < rec->created_at) return false;
  if (!rec->cred_id[0]) return true;
  const char *cid = json_string_value(json_object_get(payload, "ep_cid"));
  return cid && strlen(cid) == strlen(rec->cred_id) && CRYPTO_memcmp(cid, rec->cred_id, strlen(cid)) == 0;
}

static int32_t local_verify_token(void *state, const char *token, const char *audience, ep_identity_claims_fn visit,
                                  void *data) {
  auth_state *s = state;
  ep_jws jws;
  const char *why = NULL;
  if (ep_jws_parse(&jws, token, &why) < 0) return ep_failf(s->host, s->ctx, EP_EPERM, "%s", why);
  const char *kid = json_string_value(json_object_get(jws.header, "kid"));
  const char *sub = json_string_value(json_object_get(jws.payload, "sub"));
  record rec;
  int32_t r = 0;
  if (!ep_jws_verify(&jws, s->key) || !kid || strcmp(kid, s->kid) != 0)
    r = ep_failf(s->host, s->ctx, EP_EPERM, "token signature does not verify");
  else if (ep_jwt_check_claims(jws.payload, s->issuer, audience, (int64_t)time(NULL), &why) < 0)
    r = ep_failf(s->host, s->ctx, EP_EPERM, "%s", why);
  else if (!ep_node_of_client(sub) || load(s, ep_node_of_client(sub), &rec) < 0)
    r = ep_failf(s->host, s->ctx, EP_EPERM, "token: the node's credentials were revoked");
  else if (!token_of_credentials(jws.payload, &rec))
    r = ep_failf(s->host, s->ctx, EP_EPERM, "token: issued before the node's current credentials (revoked or rotated since)");
  if (r == 0 && visit) {
    ep_identity_claims c = {.struct_size = sizeof c, .subject = sub, .audience = audience,
                            .expires_at = (int64_t)json_integer_value(json_object_get(jws.payload, "exp")),
                            .node_id = ep_node_of_client(sub)};
    visit(data, &c);
  }
  ep_jws_clear(&jws);
  return r;
}

static const char *local_token_url(void *state) {
  (void)state;
  return "";
}

static int32_t local_jwks(void *state, ep_identity_text_fn visit, void *data) {
  auth_state *s = state;
  json_t *key = ep_jwk_from_ec_key(s->key, s->kid);
  json_t *set = key ? json_pack("{s:[o]}", "keys", key) : NULL;
  char *text = set ? json_dumps(set, JSON_COMPACT) : NULL;
  json_decref(set);
  int32_t r = text ? (visit ? visit(data, text) : 0) : ep_failf(s->host, s->ctx, EP_EIO, "cannot export the public key");
  free(text);
  return r;
}

static const ep_identity local_identity = {
    .struct_size = sizeof(ep_identity),
    .create = local_create,
    .get = local_get,
    .rotate = local_rotate,
    .revoke = local_revoke,
    .issue_token = local_issue_token,
    .verify_token = local_verify_token,
    .token_url = local_token_url,
    .jwks = local_jwks,
};

/* ---- the plugin ---------------------------------------------------------------------------- */

/* Loads the signing key from path, or creates one there (0600) on first start. */
static int32_t load_or_create_key(auth_state *s, const char *path) {
  FILE *f = fopen(path, "r");
  if (f) {
    s->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!s->key || EVP_PKEY_get_base_id(s->key) != EVP_PKEY_EC)
      return ep_failf(s->host, s->ctx, EP_EINVAL, "%s is not an EC private key", path);
  } else {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    /* Create the key's directory and any missing parents (mkdir -p), 0700. */
    for (char *slash = strchr(dir + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
      *slash = '\0';
      if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return ep_failf(s->host, s->ctx, -errno, "cannot create %s: %s", dir, strerror(errno));
      *slash = '/';
    }
    s->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    int fd = s->key ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
    FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
    bool written = out && PEM_write_PrivateKey(out, s->key, NULL, NULL, 0, NULL, NULL) == 1 && fflush(out) == 0 &&
                   fsync(fileno(out)) == 0;
    if (out) fclose(out);
    else if (fd >= 0) close(fd);
    if (!written) return ep_failf(s->host, s->ctx, EP_EIO, "cannot create the signing key %s", path);
    ep_logf(s->host, s->ctx, EP_LOG_INFO, "created the token signing key %s", path);
  }
  unsigned char *der = NULL, digest[32];
  int der_len = i2d_PUBKEY(s->key, &der);
  unsigned int digest_len = 0;
  char kid64[48];
  if (der_len <= 0 || EVP_Digest(der, (size_t)der_len, digest, &digest_len, EVP_sha256(), NULL) != 1) {
    OPENSSL_free(der);
    return ep_failf(s->host, s->ctx, EP_EIO, "cannot derive the key ID");
  }
  OPENSSL_free(der);
  ep_b64url_encode(digest, 16, kid64);
  snprintf(s->kid, sizeof s->kid, "%.22s", kid64);
  return 0;
}

static void auth_deinit(void *state) {
  auth_state *s = state;
  EVP_PKEY_free(s->key);
  s->host->free(s->ctx, s);
}

static int32_t auth_init(const ep_host *host, ep_ctx *ctx, void **ret_state) {
  const char *project = NULL, *issuer = NULL, *key_file = NULL, *data_dir = NULL;
  int64_t ttl = 0;
  if (host->setting_string(ctx, "project_id", &project) < 0 || !*project)
    return ep_failf(host, ctx, EP_EINVAL, "setting 'project_id' must not be empty");
  if (host->setting_string(ctx, "issuer", &issuer) < 0 || !token_text_valid(issuer, 128))
    return ep_failf(host, ctx, EP_EINVAL, "setting 'issuer' must be an identifier ([A-Za-z0-9._:/-])");
  if (host->setting_int(ctx, "token_ttl_s", &ttl) < 0 || host->setting_string(ctx, "key_file", &key_file) < 0)
    return ep_failf(host, ctx, EP_EINVAL, "settings are unavailable");
  char path[1024];
  if (*key_file)
    snprintf(path, sizeof path, "%s", key_file);
  else if (host->site_string(ctx, "paths.data", &data_dir) == 0)
    snprintf(path, sizeof path, "%s/auth-local/signing-key.pem", data_dir);
  else
    return ep_failf(host, ctx, EP_EINVAL, "setting 'key_file' is empty and the site has no paths.data");
  auth_state *s = host->alloc(ctx, sizeof *s);
  if (!s) return ep_failf(host, ctx, EP_ENOMEM, "out of memory");
  memset(s, 0, sizeof *s);
  s->host = host;
  s->ctx = ctx;
  s->project_id = project;
  s->issuer = issuer;
  s->token_ttl = ttl;
  int32_t r = load_or_create_key(s, path);
  if (r < 0) {
    auth_deinit(s);
    return r;
  }
  *ret_state = s;
  return 0;
}

static const void *auth_get_capability(void *state, const char *id) {
  (void)state;
  return strcmp(id, EP_CAP_IDENTITY) == 0 ? &local_identity : NULL;
}

static const ep_field_decl auth_settings[] = {
    EP_FIELD_STRING_DECL("project_id", "edgeprov", EP_FIELD_OPTIONAL, 63, "project (tenant) named in onboarding replies"),
    EP_FIELD_STRING_DECL("issuer", "edgeprov-auth-local", EP_FIELD_OPTIONAL, 128, "iss claim of the tokens"),
    EP_FIELD_INT_DECL("token_ttl_s", "3600", EP_FIELD_OPTIONAL, 60, 86400, "lifetime of a token in seconds"),
    EP_FIELD_STRING_DECL("key_file", "", EP_FIELD_OPTIONAL, 1023,
                         "ES256 signing key (PEM); empty: <paths.data>/auth-local/signing-key.pem, created on first start"),
};

static const char *const auth_capabilities[] = {EP_CAP_IDENTITY, NULL};

EP_PLUGIN_EXPORT const ep_plugin_entry ep_plugin = {
    EP_PLUGIN_ENTRY_HEADER,
    .id = "auth-local",
    .version = "0.1.0",
    .description = "Embedded identity provider: per-node client credentials (only hashes stored), ES256 tokens",
    .capabilities = auth_capabilities,
    .settings = auth_settings,
    .settings_count = EP_COUNT(auth_settings),
    .init = auth_init,
    .deinit = auth_deinit,
    .get_capability = auth_get_capability,
};
