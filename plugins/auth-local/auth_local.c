/* auth-local: the embedded identity provider. Issues per-node client credentials and keeps
 * only a SHA-256 hash of each secret, in the site's store (edgeprov.storage/1) under
 * "identity/local/<node>". */
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
#include <openssl/evp.h>

#define KEY_PREFIX "identity/local/"
#define SECRET_BYTES 32     /* 256 random bits per node secret */
#define RECORD_MAX 512

typedef struct auth_state {
  const ep_host *host;
  ep_ctx *ctx;
  const char *project_id;
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

/* Tokens come with the embedded HTTPS server (token endpoint and JWKS); until then this
 * provider says so instead of pretending. */
static int32_t local_issue_token(void *state, const char *client_id, const char *client_secret, const char *audience,
                                 ep_identity_credentials_fn visit, void *data) {
  (void)client_id, (void)client_secret, (void)audience, (void)visit, (void)data;
  auth_state *s = state;
  return ep_failf(s->host, s->ctx, EP_ENOTSUP, "auth-local does not issue tokens yet");
}

static int32_t local_verify_token(void *state, const char *token, const char *audience, ep_identity_claims_fn visit,
                                  void *data) {
  (void)token, (void)audience, (void)visit, (void)data;
  auth_state *s = state;
  return ep_failf(s->host, s->ctx, EP_ENOTSUP, "auth-local does not verify tokens yet");
}

static const char *local_token_url(void *state) {
  (void)state;
  return "";
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
};

/* ---- the plugin ---------------------------------------------------------------------------- */

static int32_t auth_init(const ep_host *host, ep_ctx *ctx, void **ret_state) {
  const char *project = NULL;
  if (host->setting_string(ctx, "project_id", &project) < 0 || !*project)
    return ep_failf(host, ctx, EP_EINVAL, "setting 'project_id' must not be empty");
  auth_state *s = host->alloc(ctx, sizeof *s);
  if (!s) return ep_failf(host, ctx, EP_ENOMEM, "out of memory");
  s->host = host;
  s->ctx = ctx;
  s->project_id = project;
  *ret_state = s;
  return 0;
}

static void auth_deinit(void *state) {
  auth_state *s = state;
  s->host->free(s->ctx, s);
}

static const void *auth_get_capability(void *state, const char *id) {
  (void)state;
  return strcmp(id, EP_CAP_IDENTITY) == 0 ? &local_identity : NULL;
}

static const ep_field_decl auth_settings[] = {
    EP_FIELD_STRING_DECL("project_id", "edgeprov", EP_FIELD_OPTIONAL, 63, "project (tenant) named in onboarding replies"),
};

static const char *const auth_capabilities[] = {EP_CAP_IDENTITY, NULL};

EP_PLUGIN_EXPORT const ep_plugin_entry ep_plugin = {
    EP_PLUGIN_ENTRY_HEADER,
    .id = "auth-local",
    .version = "0.1.0",
    .description = "Embedded identity provider: per-node client credentials (only hashes stored)",
    .capabilities = auth_capabilities,
    .settings = auth_settings,
    .settings_count = EP_COUNT(auth_settings),
    .init = auth_init,
    .deinit = auth_deinit,
    .get_capability = auth_get_capability,
};
