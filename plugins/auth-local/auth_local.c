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

#define KEY_PREFIX "identity/local/"
#define SECRET_BYTES 32     /* 256 random bits per node secret */
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

static void base64url(const unsigned char *in, size_t len, char *out) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t o = 0;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < len ? in[i + 2] : 0);
    out[o++] = alphabet[(v >> 18) & 63];
    out[o++] = alphabet[(v >> 12) & 63];
    if (i + 1 < len) out[o++] = alphabet[(v >> 6) & 63];
    if (i + 2 < len) out[o++] = alphabet[v & 63];
  }
  out[o] = '\0';
}

static int32_t sha256_hex(auth_state *s, const char *text, char out[65]) {
  unsigned char digest[32];
  unsigned int len = 0;
  if (EVP_Digest(text, strlen(text), digest, &len, EVP_sha256(), NULL) != 1 || len != 32)
    return ep_failf(s->host, s->ctx, EP_EIO, "SHA-256 failed");
  for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", digest[i]);
  return 0;
}

static bool node_id_valid(const char *id) {
  size_t len = id ? strnlen(id, EP_IDENTITY_NODE_ID_MAX + 1) : 0;
  if (len == 0 || len > EP_IDENTITY_NODE_ID_MAX) return false;
  for (size_t i = 0; i < len; i++)
    if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9') || id[i] == '-')) return false;
  return true;
}

static const ep_storage *store(auth_state *s, void **ret_state) {
  return s->host->capability(s->ctx, EP_CAP_STORAGE, ret_state);
}

/* The stored record: "<client_id>\n<sha256 of secret>\n<created_at>\n". */
typedef struct record {
  char client_id[96];
  char hash[65];
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
  if (sscanf(text, "%95[^\n]\n%64[0-9a-f]\n%lld", rec->client_id, rec->hash, &created) == 3) {
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
  unsigned char raw[SECRET_BYTES];
  if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
    return ep_failf(s->host, s->ctx, EP_EIO, "getrandom: %s", strerror(errno));
  char secret[SECRET_BYTES * 2], hash[65], client_id[96], key[128], value[RECORD_MAX];
  base64url(raw, sizeof raw, secret);
  explicit_bzero(raw, sizeof raw);
  int32_t r = sha256_hex(s, secret, hash);
  int64_t now = (int64_t)time(NULL);
  snprintf(client_id, sizeof client_id, "edgenode-%s", node_id);
  snprintf(key, sizeof key, KEY_PREFIX "%s", node_id);
  int len = snprintf(value, sizeof value, "%s\n%s\n%" PRId64 "\n", client_id, hash, now);
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

static int32_t check_node(auth_state *s, const char *node_id) {
  if (node_id_valid(node_id)) return 0;
  return ep_failf(s->host, s->ctx, EP_EINVAL, "node id '%.64s' is not [a-z0-9-]{1,63}", node_id ? node_id : "(null)");
}

static int32_t local_create(void *state, const char *node_id, ep_identity_credentials_fn visit, void *data) {
  auth_state *s = state;
  int32_t r = check_node(s, node_id);
  return r < 0 ? r : issue(s, node_id, EP_STORAGE_EXPECT_ABSENT, visit, data);
}

static int32_t local_get(void *state, const char *node_id, ep_identity_credentials_fn visit, void *data) {
  auth_state *s = state;
  record rec;
  int32_t r = check_node(s, node_id);
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
  int32_t r = check_node(s, node_id);
  if (r == 0) r = load(s, node_id, &rec);
  if (r == EP_ENOENT) return ep_failf(s->host, s->ctx, EP_ENOENT, "node %s has no credentials to rotate", node_id);
  return r < 0 ? r : issue(s, node_id, rec.revision, visit, data);
}

static int32_t local_revoke(void *state, const char *node_id) {
  auth_state *s = state;
  int32_t r = check_node(s, node_id);
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

#define TOKEN_MAX 4096

static int base64url_decode(const char *in, size_t len, unsigned char *out, size_t cap, size_t *ret_len) {
  uint32_t acc = 0;
  int bits = 0;
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    char c = in[i];
    int v = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 : c >= '0' && c <= '9' ? c - '0' + 52
            : c == '-' ? 62 : c == '_' ? 63 : -1;
    if (v < 0) return -1;
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (o >= cap) return -1;
      out[o++] = (unsigned char)(acc >> bits);
    }
  }
  *ret_len = o;
  return 0;
}

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

/* Signs "header.payload" and appends ".signature" (raw r||s, base64url). */
static int32_t sign_jwt(auth_state *s, char *token, size_t cap) {
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  unsigned char der[128], raw[64];
  size_t der_len = sizeof der;
  int ok = md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, s->key) == 1 &&
           EVP_DigestSign(md, der, &der_len, (const unsigned char *)token, strlen(token)) == 1;
  EVP_MD_CTX_free(md);
  const unsigned char *p = der;
  ECDSA_SIG *sig = ok ? d2i_ECDSA_SIG(NULL, &p, (long)der_len) : NULL;
  ok = sig && BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32) == 32 && BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32) == 32;
  ECDSA_SIG_free(sig);
  if (!ok) return ep_failf(s->host, s->ctx, EP_EIO, "cannot sign the token");
  size_t used = strlen(token);
  if (used + 2 + 88 > cap) return ep_failf(s->host, s->ctx, EP_ERANGE, "token too long");
  token[used++] = '.';
  base64url(raw, sizeof raw, token + used);
  return 0;
}

static bool verify_signature(auth_state *s, const char *signed_part, size_t signed_len, const unsigned char raw[64]) {
  ECDSA_SIG *sig = ECDSA_SIG_new();
  BIGNUM *r = BN_bin2bn(raw, 32, NULL), *sv = BN_bin2bn(raw + 32, 32, NULL);
  if (!sig || !r || !sv || ECDSA_SIG_set0(sig, r, sv) != 1) {
    BN_free(r);
    BN_free(sv);
    ECDSA_SIG_free(sig);
    return false;
  }
  unsigned char *der = NULL;
  int der_len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  bool ok = der_len > 0 && md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, s->key) == 1 &&
            EVP_DigestVerify(md, der, (size_t)der_len, (const unsigned char *)signed_part, signed_len) == 1;
  EVP_MD_CTX_free(md);
  OPENSSL_free(der);
  return ok;
}

/* The node ID in a client ID "edgenode-<node>", or NULL. */
static const char *node_of(const char *client_id) {
  return client_id && !strncmp(client_id, "edgenode-", 9) && node_id_valid(client_id + 9) ? client_id + 9 : NULL;
}

static int32_t local_issue_token(void *state, const char *client_id, const char *client_secret, const char *audience,
                                 ep_identity_credentials_fn visit, void *data) {
  auth_state *s = state;
  const char *node = node_of(client_id);
  record rec;
  char hash[65];
  if (!token_text_valid(audience, 128)) return ep_failf(s->host, s->ctx, EP_EINVAL, "audience: not an identifier");
  if (!node || !client_secret || strnlen(client_secret, 256) > 255 || load(s, node, &rec) < 0 ||
      sha256_hex(s, client_secret, hash) < 0 || CRYPTO_memcmp(hash, rec.hash, 64) != 0 || strcmp(rec.client_id, client_id))
    return ep_failf(s->host, s->ctx, EP_EPERM, "invalid client credentials");
  char header[128], payload[512], header64[200], payload64[700], token[TOKEN_MAX];
  int64_t now = (int64_t)time(NULL);
  snprintf(header, sizeof header, "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", s->kid);
  snprintf(payload, sizeof payload,
           "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"%s\",\"iat\":%" PRId64 ",\"exp\":%" PRId64 "}", s->issuer,
           client_id, audience, now, now + s->token_ttl);
  base64url((const unsigned char *)header, strlen(header), header64);
  base64url((const unsigned char *)payload, strlen(payload), payload64);
  snprintf(token, sizeof token, "%s.%s", header64, payload64);
  int32_t r = sign_jwt(s, token, sizeof token);
  if (r == 0 && visit) {
    ep_identity_credentials c = {.struct_size = sizeof c, .client_id = client_id, .client_secret = token,
                                 .project_id = s->project_id, .created_at = now};
    visit(data, &c);
  }
  return r;
}

static int32_t local_verify_token(void *state, const char *token, const char *audience, ep_identity_claims_fn visit,
                                  void *data) {
  auth_state *s = state;
  size_t len = token ? strnlen(token, TOKEN_MAX + 1) : 0;
  if (len == 0 || len > TOKEN_MAX) return ep_failf(s->host, s->ctx, EP_EPERM, "token missing or too long");
  const char *dot1 = memchr(token, '.', len);
  const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
  if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
    return ep_failf(s->host, s->ctx, EP_EPERM, "token is not a JWS compact serialization");
  unsigned char header[512], payload[1024], sig[80];
  size_t header_len = 0, payload_len = 0, sig_len = 0;
  if (base64url_decode(token, (size_t)(dot1 - token), header, sizeof header - 1, &header_len) < 0 ||
      base64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), payload, sizeof payload - 1, &payload_len) < 0 ||
      base64url_decode(dot2 + 1, strlen(dot2 + 1), sig, sizeof sig, &sig_len) < 0 || sig_len != 64)
    return ep_failf(s->host, s->ctx, EP_EPERM, "token encoding is invalid");
  header[header_len] = payload[payload_len] = '\0';
  if (!verify_signature(s, token, (size_t)(dot2 - token), sig))
    return ep_failf(s->host, s->ctx, EP_EPERM, "token signature does not verify");
  json_error_t jerr;
  json_t *h = json_loads((const char *)header, 0, &jerr), *p = json_loads((const char *)payload, 0, &jerr);
  const char *alg = json_string_value(json_object_get(h, "alg")), *kid = json_string_value(json_object_get(h, "kid"));
  const char *iss = json_string_value(json_object_get(p, "iss")), *sub = json_string_value(json_object_get(p, "sub"));
  const char *aud = json_string_value(json_object_get(p, "aud"));
  json_t *exp_value = json_object_get(p, "exp");
  int64_t exp = json_is_integer(exp_value) ? (int64_t)json_integer_value(exp_value) : 0;
  record rec;
  int32_t r = 0;
  if (!alg || strcmp(alg, "ES256") || !kid || strcmp(kid, s->kid))
    r = ep_failf(s->host, s->ctx, EP_EPERM, "token: unexpected algorithm or key");
  else if (!iss || strcmp(iss, s->issuer))
    r = ep_failf(s->host, s->ctx, EP_EPERM, "token: wrong issuer");
  else if (!aud || !audience || strcmp(aud, audience))
    r = ep_failf(s->host, s->ctx, EP_EPERM, "token: wrong audience");
  else if (exp <= (int64_t)time(NULL))
    r = ep_failf(s->host, s->ctx, EP_EPERM, "token: expired");
  else if (!node_of(sub) || load(s, node_of(sub), &rec) < 0)
    r = ep_failf(s->host, s->ctx, EP_EPERM, "token: the node's credentials were revoked");
  if (r == 0 && visit) {
    ep_identity_claims c = {.struct_size = sizeof c, .subject = sub, .audience = aud, .expires_at = exp,
                            .node_id = node_of(sub)};
    visit(data, &c);
  }
  json_decref(h);
  json_decref(p);
  return r;
}

static const char *local_token_url(void *state) {
  (void)state;
  return "";
}

static int32_t local_jwks(void *state, ep_identity_text_fn visit, void *data) {
  auth_state *s = state;
  BIGNUM *x = NULL, *y = NULL;
  unsigned char xb[32], yb[32];
  char x64[48], y64[48], text[512];
  int ok = EVP_PKEY_get_bn_param(s->key, OSSL_PKEY_PARAM_EC_PUB_X, &x) == 1 &&
           EVP_PKEY_get_bn_param(s->key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) == 1 && BN_bn2binpad(x, xb, 32) == 32 &&
           BN_bn2binpad(y, yb, 32) == 32;
  BN_free(x);
  BN_free(y);
  if (!ok) return ep_failf(s->host, s->ctx, EP_EIO, "cannot export the public key");
  base64url(xb, 32, x64);
  base64url(yb, 32, y64);
  snprintf(text, sizeof text,
           "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"ES256\",\"use\":\"sig\",\"kid\":\"%s\","
           "\"x\":\"%s\",\"y\":\"%s\"}]}",
           s->kid, x64, y64);
  return visit ? visit(data, text) : 0;
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
  base64url(digest, 16, kid64);
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
