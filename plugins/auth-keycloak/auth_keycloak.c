/* auth-keycloak: per-node credentials in Keycloak. Each node is a confidential client
 * "edgenode-<node>" with a service account, made through Keycloak's Admin REST API by a
 * service-account admin client (realm-management role manage-clients); the node gets its
 * tokens from Keycloak's token endpoint (client-credentials grant) with edgeprov's audience
 * added by an oidc-audience-mapper on its client, and edgeprovd verifies them against
 * Keycloak's JWKS (the realm's /protocol/openid-connect/certs). All HTTP goes through the
 * host's http_request service.
 *
 * Keycloak's tokens are stateless, so revocations are kept here: in memory, and in the
 * site's store (edgeprov.storage/1, "identity/keycloak/revoked/<node>") so that a restart
 * does not revive them; each is kept as long as a token may live (token_lifetime_max_s,
 * longer-lived tokens are refused). The JWKS is fetched without any lock held, one fetch at
 * a time, so a slow Keycloak never stalls verifications of tokens whose key is cached. */
#define _GNU_SOURCE /* explicit_bzero, strndup */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <edgeprov/edgeprov.h>
#include <jansson.h>

#include "jose.h"
#include "kc_reply.h"
#include "node_client.h"

#define URL_MAX 1024
#define SECRET_MAX EP_KC_SECRET_MAX
#define ADMIN_TOKEN_MARGIN_S 30           /* renew the admin token this long before it expires */
#define JWKS_REFETCH_MIN_S 10             /* the JWKS is fetched at most this often */
#define JWKS_WAIT_MS 1000                 /* longest a verification waits for another's fetch */
#define UNKNOWN_KID_TTL_S 60              /* a kid a fresh JWKS lacked is refused unfetched this long */
#define UNKNOWN_KIDS_MAX 64               /* such kids remembered */
#define KID_MAX 128                       /* longest kid looked up */
#define REVOKED_MAX 4096                  /* revocations remembered (tokens issued before are refused) */
#define REVOKED_PREFIX "identity/keycloak/revoked/" /* + node ID: a stored revocation */
#define REVOKED_FLOOR_KEY "identity/keycloak/revoked-floor" /* see kc_state.revoked_floor */
#define RESPONSE_MAX EP_KC_RESPONSE_MAX

/* A node whose client was deleted: its tokens issued until revoked_at are refused, unless a
 * new client was made since (recreated_at, 0 when none) and the token is from then on.
 * Times are whole seconds, as iat is. */
typedef struct revocation {
  char node[EP_IDENTITY_NODE_ID_MAX + 1];
  int64_t revoked_at;
  int64_t recreated_at;
} revocation;

/* A kid that the JWKS lacked right after a fetch: refused without a fetch until until. */
typedef struct unknown_kid {
  char kid[KID_MAX + 1];
  int64_t until; /* monotonic seconds */
} unknown_kid;

typedef struct kc_state {
  const ep_host *host;
  ep_ctx *ctx;
  char issuer[URL_MAX];    /* <base_url>/realms/<realm> */
  char token_url[URL_MAX]; /* <issuer>/protocol/openid-connect/token */
  char certs_url[URL_MAX]; /* <issuer>/protocol/openid-connect/certs */
  char admin_url[URL_MAX]; /* <base_url>/admin/realms/<realm> */
  const char *admin_client_id;
  char admin_secret[SECRET_MAX];
  const char *ca_file;
  const char *audience;
  const char *project_id;
  int64_t timeout_ms;
  int64_t token_lifetime_max; /* longest exp - iat accepted; revocations are kept this long */
  pthread_mutex_t lock;       /* guards the admin token and the revocations; held for memory and
                                 the one-time load from the store, never across a call to Keycloak */
  char *admin_token;
  int64_t admin_token_expires;
  bool revoked_loaded;        /* the stored revocations are in revoked[] */
  int64_t revoked_floor;      /* tokens issued until then are refused (set when revoked[] overflowed) */
  revocation revoked[REVOKED_MAX];
  pthread_mutex_t jwks_lock;  /* guards the key cache below; never held across a call to Keycloak */
  pthread_cond_t jwks_done;   /* broadcast when a fetch ends */
  json_t *jwks;               /* the last JWKS fetched, or NULL */
  bool jwks_fetching;         /* a fetch is in flight (at most one) */
  bool jwks_tried;            /* a fetch was started once */
  int64_t jwks_fetched_at;    /* monotonic seconds when the last fetch started */
  uint64_t jwks_fetches;      /* fetches ended */
  unknown_kid unknown[UNKNOWN_KIDS_MAX];
  size_t unknown_next;
} kc_state;

static int64_t monotonic_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec;
}

/* ---- HTTP ------------------------------------------------------------------------------ */

/* What a Keycloak answer holds for us. */
typedef struct reply {
  int32_t status;
  json_t *json; /* the parsed body, or NULL */
  char *text;   /* the raw body (for the JWKS), malloc'd */
  char location[URL_MAX];
} reply;

static void reply_clear(reply *r) {
  json_decref(r->json);
  if (r->text) explicit_bzero(r->text, strlen(r->text));
  free(r->text);
  memset(r, 0, sizeof *r);
}

static int32_t keep_reply(void *data, const ep_http_response *response) {
  reply *r = data;
  r->status = response->status;
  snprintf(r->location, sizeof r->location, "%s", response->location ? response->location : "");
  if (response->body_len) {
    r->json = ep_kc_parse_body(response->body, (size_t)response->body_len);
    r->text = strndup((const char *)response->body, (size_t)response->body_len);
  }
  return 0;
}

static int32_t http(kc_state *s, const char *method, const char *url, const char *const *headers, const char *body,
                    const char *user, const char *password, reply *out) {
  ep_http_request req = {.struct_size = sizeof req, .method = method, .url = url, .headers = headers,
                         .body = (const uint8_t *)body, .body_len = body ? strlen(body) : 0,
                         .ca_file = s->ca_file, .basic_user = user, .basic_password = password,
                         .timeout_ms = s->timeout_ms, .response_max = RESPONSE_MAX};
  memset(out, 0, sizeof *out);
  return s->host->http_request(s->ctx, &req, keep_reply, out);
}

/* Keycloak's error text of an answer: errorMessage, error_description or error. */
static const char *error_text(const reply *r) { return ep_kc_error_text(r->json); }

static int32_t unexpected(kc_state *s, const char *what, const reply *r) {
  const char *hint = r->status == 401 ? " (check admin_client_id and admin_client_secret_file)"
                     : r->status == 403 ? " (the admin client needs the realm-management role manage-clients)"
                     : r->status == 404 ? " (check base_url and realm)"
                                        : "";
  return ep_failf(s->host, s->ctx, EP_EFAILED, "Keycloak: %s: HTTP %d: %.200s%s", what, r->status, error_text(r), hint);
}

/* The client-credentials grant at the realm's token endpoint; the token goes to *ret_token
 * (malloc'd) and its lifetime to *ret_expires_in. EP_EPERM when Keycloak refuses the client. */
static int32_t client_credentials(kc_state *s, const char *client_id, const char *secret, char **ret_token,
                                  int64_t *ret_expires_in) {
  const char *headers[] = {"Content-Type: application/x-www-form-urlencoded", "Accept: application/json", NULL};
  reply r;
  int32_t rc = http(s, "POST", s->token_url, headers, "grant_type=client_credentials", client_id, secret, &r);
  if (rc < 0) return rc;
  const char *token = NULL;
  int64_t expires_in = 0;
  if (r.status == 400 || r.status == 401)
    rc = ep_failf(s->host, s->ctx, EP_EPERM, "Keycloak refused client %s: %.200s", client_id, error_text(&r));
  else if (r.status != 200 || ep_kc_token_reply(r.json, &token, &expires_in) < 0)
    rc = unexpected(s, "token endpoint", &r);
  else if (!(*ret_token = strdup(token)))
    rc = ep_failf(s->host, s->ctx, EP_ENOMEM, "out of memory");
  else if (ret_expires_in)
    *ret_expires_in = expires_in;
  reply_clear(&r);
  return rc;
}

/* The admin client's bearer token, renewed when near expiry or after a 401. Copies it into
 * out (malloc'd). Called without the lock held. */
static int32_t admin_token(kc_state *s, bool renew, char **out) {
  int64_t now = (int64_t)time(NULL);
  pthread_mutex_lock(&s->lock);
  if (!renew && s->admin_token && s->admin_token_expires > now + ADMIN_TOKEN_MARGIN_S) {
    *out = strdup(s->admin_token);
    pthread_mutex_unlock(&s->lock);
    return *out ? 0 : ep_failf(s->host, s->ctx, EP_ENOMEM, "out of memory");
  }
  pthread_mutex_unlock(&s->lock);
  char *token = NULL;
  int64_t expires_in = 0;
  int32_t r = client_credentials(s, s->admin_client_id, s->admin_secret, &token, &expires_in);
  if (r == EP_EPERM)
    return ep_failf(s->host, s->ctx, EP_EPERM, "Keycloak refused the admin client %s: check admin_client_secret_file",
                    s->admin_client_id);
  if (r < 0) return r;
  pthread_mutex_lock(&s->lock);
  if (s->admin_token) explicit_bzero(s->admin_token, strlen(s->admin_token));
  free(s->admin_token);
  s->admin_token = strdup(token);
  s->admin_token_expires = now + (expires_in > 0 ? expires_in : 60);
  pthread_mutex_unlock(&s->lock);
  *out = token;
  return 0;
}

/* A call to the realm's Admin REST API (path after /admin/realms/<realm>), JSON in and out. */
static int32_t admin(kc_state *s, const char *method, const char *path, const json_t *body, reply *out) {
  char url[URL_MAX * 2];
  snprintf(url, sizeof url, "%s%s", s->admin_url, path);
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  if (body && !text) return ep_failf(s->host, s->ctx, EP_ENOMEM, "out of memory");
  int32_t r = 0;
  for (int attempt = 0; attempt < 2; attempt++) {
    char *token = NULL;
    r = admin_token(s, attempt > 0, &token);
    if (r < 0) break;
    char bearer[EP_JOSE_TOKEN_MAX + 32];
    snprintf(bearer, sizeof bearer, "Authorization: Bearer %s", token);
    explicit_bzero(token, strlen(token));
    free(token);
    const char *headers[] = {bearer, "Content-Type: application/json", "Accept: application/json", NULL};
    r = http(s, method, url, headers, text, NULL, NULL, out);
    explicit_bzero(bearer, sizeof bearer);
    if (r < 0 || out->status != 401) break;
    reply_clear(out); /* the admin token expired early or was revoked: log in again once */
  }
  if (text) explicit_bzero(text, strlen(text));
  free(text);
  return r;
}

/* ---- clients ------------------------------------------------------------------------------ */

/* Finds the node's client: its internal ID into id and its creation time. EP_ENOENT when none. */
static int32_t find_client(kc_state *s, const char *node_id, char id[65], int64_t *ret_created) {
  char path[256];
  snprintf(path, sizeof path, "/clients?clientId=" EP_NODE_CLIENT_PREFIX "%s", node_id);
  reply r;
  int32_t rc = admin(s, "GET", path, NULL, &r);
  if (rc < 0) return rc;
  if (r.status != 200 || !json_is_array(r.json)) {
    rc = unexpected(s, "list clients", &r);
    reply_clear(&r);
    return rc;
  }
  if (ep_kc_find_client(r.json, node_id, id, ret_created) < 0)
    rc = ep_failf(s->host, s->ctx, EP_ENOENT, "node %s has no client in Keycloak", node_id);
  reply_clear(&r);
  return rc;
}

/* Reads (POST: regenerates) the client's secret and visits the node's credentials. */
static int32_t visit_secret(kc_state *s, const char *node_id, const char *id, const char *method,
                            ep_identity_credentials_fn visit, void *data) {
  char path[128], client_id[96];
  snprintf(path, sizeof path, "/clients/%s/client-secret", id);
  snprintf(client_id, sizeof client_id, EP_NODE_CLIENT_PREFIX "%s", node_id);
  reply r;
  int32_t rc = admin(s, method, path, NULL, &r);
  if (rc < 0) return rc;
  const char *secret = ep_kc_secret_value(r.json);
  if (r.status != 200 || !secret)
    rc = unexpected(s, "client secret", &r);
  else if (visit) {
    ep_identity_credentials c = {.struct_size = sizeof c, .client_id = client_id, .client_secret = secret,
                                 .project_id = s->project_id, .created_at = (int64_t)time(NULL)};
    visit(data, &c);
  }
  reply_clear(&r);
  return rc;
}

/* ---- revocations ------------------------------------------------------------------------ */

/* Deleting a node's client stops new tokens; a revocation stops the ones already out, until
 * they expire. Tokens living longer than token_lifetime_max are refused, so a revocation
 * older than that can go: none of the tokens it stops is still good. */

static const ep_storage *store(kc_state *s, void **ret_state) {
  return s->host->capability(s->ctx, EP_CAP_STORAGE, ret_state);
}

static bool revocation_expired(const kc_state *s, int64_t revoked_at, int64_t now) {
  return revoked_at + s->token_lifetime_max < now;
}

static revocation *find_revocation(kc_state *s, const char *node_id) {
  for (size_t i = 0; i < REVOKED_MAX; i++)
    if (s->revoked[i].node[0] && strcmp(s->revoked[i].node, node_id) == 0) return &s->revoked[i];
  return NULL;
}

/* The slot for node_id's revocation (lock held): its own, else a free or expired one, else
 * the oldest, whose tokens then fall under revoked_floor (nothing revoked is forgotten
 * early; other nodes' tokens from before it are refused too, and their nodes get new ones).
 * The node whose revocation the slot held goes to replaced ("" when none). */
static revocation *revocation_slot(kc_state *s, const char *node_id, int64_t now,
                                   char replaced[EP_IDENTITY_NODE_ID_MAX + 1]) {
  replaced[0] = '\0';
  revocation *slot = find_revocation(s, node_id), *oldest = &s->revoked[0];
  for (size_t i = 0; !slot && i < REVOKED_MAX; i++) {
    revocation *r = &s->revoked[i];
    if (!r->node[0] || revocation_expired(s, r->revoked_at, now)) slot = r;
    else if (r->revoked_at < oldest->revoked_at) oldest = r;
  }
  if (!slot) {
    slot = oldest;
    if (slot->revoked_at > s->revoked_floor) s->revoked_floor = slot->revoked_at;
    ep_logf(s->host, s->ctx, EP_LOG_WARN,
            "more than %d revocations within token_lifetime_max_s: every token issued until %" PRId64 " is refused",
            REVOKED_MAX, s->revoked_floor);
  }
  if (slot->node[0] && strcmp(slot->node, node_id) != 0)
    snprintf(replaced, EP_IDENTITY_NODE_ID_MAX + 1, "%s", slot->node);
  memset(slot, 0, sizeof *slot);
  snprintf(slot->node, sizeof slot->node, "%s", node_id);
  return slot;
}

#define LOAD_DELETES_MAX 128 /* stored revocations deleted per page read (EP_STORAGE_TXN_OPS_MAX) */

typedef struct load_page {
  kc_state *s;
  int64_t now;
  char last[EP_STORAGE_KEY_MAX + 1];
  uint32_t seen;
  char deletes[LOAD_DELETES_MAX][EP_IDENTITY_NODE_ID_MAX + 1];
  uint32_t delete_count;
} load_page;

static int32_t load_one(void *data, const ep_storage_record *record) {
  load_page *page = data;
  kc_state *s = page->s;
  const char *node = record->key + strlen(REVOKED_PREFIX);
  int64_t revoked_at = 0, recreated_at = 0;
  char replaced[EP_IDENTITY_NODE_ID_MAX + 1] = "";
  snprintf(page->last, sizeof page->last, "%s", record->key);
  page->seen++;
  bool valid = ep_node_id_valid(node) &&
               ep_kc_revocation_parse((const char *)record->value, (size_t)record->value_len, &revoked_at, &recreated_at) == 0;
  if (valid && !revocation_expired(s, revoked_at, page->now)) {
    revocation *slot = revocation_slot(s, node, page->now, replaced);
    slot->revoked_at = revoked_at;
    slot->recreated_at = recreated_at;
    if (!replaced[0]) return 0;
    node = replaced;
  } else if (!ep_node_id_valid(node)) {
    return 0; /* not one of ours to delete by name */
  }
  if (page->delete_count < LOAD_DELETES_MAX)
    snprintf(page->deletes[page->delete_count++], EP_IDENTITY_NODE_ID_MAX + 1, "%s", node);
  return 0;
}

static int32_t read_floor(void *data, const ep_storage_record *record) {
  int64_t *floor = data, recreated = 0;
  if (ep_kc_revocation_parse((const char *)record->value, (size_t)record->value_len, floor, &recreated) < 0) *floor = 0;
  return 0;
}

/* Reads the stored revocations into revoked[] once, deleting those expired (lock held; the
 * store is looked up on first use: its plugin may start after this one). Returns 0, or the
 * store's error: the caller then fails closed and the next call tries again. */
static int32_t load_revocations(kc_state *s) {
  if (s->revoked_loaded) return 0;
  void *st_state = NULL;
  const ep_storage *st = store(s, &st_state);
  if (!st) {
    s->revoked_loaded = true;
    ep_logf(s->host, s->ctx, EP_LOG_WARN, "no storage plugin is active: revocations are kept in memory only");
    return 0;
  }
  int64_t floor = 0;
  int32_t r = st->get(st_state, REVOKED_FLOOR_KEY, read_floor, &floor);
  if (r < 0 && r != EP_ENOENT) return r;
  r = 0;
  if (floor > s->revoked_floor) s->revoked_floor = floor;
  load_page *page = s->host->alloc(s->ctx, sizeof *page);
  if (!page) return ep_failf(s->host, s->ctx, EP_ENOMEM, "out of memory");
  char after[EP_STORAGE_KEY_MAX + 1] = "";
  int32_t more = 1;
  while (r >= 0 && more) {
    memset(page, 0, sizeof *page);
    page->s = s;
    page->now = (int64_t)time(NULL);
    r = st->list(st_state, REVOKED_PREFIX, after, 1000, load_one, page, NULL, &more);
    ep_storage_op ops[LOAD_DELETES_MAX];
    char keys[LOAD_DELETES_MAX][sizeof REVOKED_PREFIX + EP_IDENTITY_NODE_ID_MAX];
    for (uint32_t i = 0; r >= 0 && i < page->delete_count; i++) {
      snprintf(keys[i], sizeof keys[i], REVOKED_PREFIX "%s", page->deletes[i]);
      ops[i] = (ep_storage_op){.struct_size = sizeof ops[i], .kind = EP_STORAGE_DELETE, .key = keys[i],
                               .expect_mod_revision = EP_STORAGE_EXPECT_ANY};
    }
    if (r >= 0 && page->delete_count) r = st->txn(st_state, ops, page->delete_count, sizeof ops[0], NULL, NULL);
    snprintf(after, sizeof after, "%s", page->last);
    if (!page->seen) break;
  }
  s->host->free(s->ctx, page);
  if (r < 0) return r;
  s->revoked_loaded = true;
  return 0;
}

/* Stores rev, deletes the stored revocation of replaced (unless ""), and stores the floor
 * when floor >= 0; called without the lock. 0 when there is no store (memory only). */
static int32_t store_revocation(kc_state *s, const revocation *rev, const char *replaced, int64_t floor) {
  void *st_state = NULL;
  const ep_storage *st = store(s, &st_state);
  if (!st) return 0;
  char key[sizeof REVOKED_PREFIX + EP_IDENTITY_NODE_ID_MAX], old_key[sizeof key], value[EP_KC_REVOCATION_MAX],
      floor_value[EP_KC_REVOCATION_MAX];
  ep_storage_op ops[3];
  uint32_t n = 0;
  snprintf(key, sizeof key, REVOKED_PREFIX "%s", rev->node);
  int len = ep_kc_revocation_format(value, sizeof value, rev->revoked_at, rev->recreated_at);
  ops[n++] = (ep_storage_op){.struct_size = sizeof ops[0], .kind = EP_STORAGE_PUT, .key = key, .value = (const uint8_t *)value,
                             .value_len = (uint64_t)len, .expect_mod_revision = EP_STORAGE_EXPECT_ANY};
  if (replaced[0]) {
    snprintf(old_key, sizeof old_key, REVOKED_PREFIX "%s", replaced);
    ops[n++] = (ep_storage_op){.struct_size = sizeof ops[0], .kind = EP_STORAGE_DELETE, .key = old_key,
                               .expect_mod_revision = EP_STORAGE_EXPECT_ANY};
  }
  if (floor >= 0) {
    len = ep_kc_revocation_format(floor_value, sizeof floor_value, floor, 0);
    ops[n++] = (ep_storage_op){.struct_size = sizeof ops[0], .kind = EP_STORAGE_PUT, .key = REVOKED_FLOOR_KEY,
                               .value = (const uint8_t *)floor_value, .value_len = (uint64_t)len,
                               .expect_mod_revision = EP_STORAGE_EXPECT_ANY};
  }
  int32_t r = st->txn(st_state, ops, n, sizeof ops[0], NULL, NULL);
  return r < 0 ? ep_failf(s->host, s->ctx, r,
                          "node %s: its tokens are refused, but the revocation could not be stored (a restart of "
                          "edgeprovd would forget it): storage error %d",
                          rev->node, r)
               : 0;
}

/* Remembers that tokens of node_id issued until now are no longer good, in memory and in
 * the store. Returns 0, or the store's error (the revocation then holds until a restart). */
static int32_t remember_revocation(kc_state *s, const char *node_id) {
  int64_t now = (int64_t)time(NULL);
  char replaced[EP_IDENTITY_NODE_ID_MAX + 1];
  pthread_mutex_lock(&s->lock);
  int32_t r = load_revocations(s);
  int64_t floor = s->revoked_floor;
  revocation *slot = revocation_slot(s, node_id, now, replaced);
  slot->revoked_at = now;
  revocation copy = *slot;
  floor = s->revoked_floor != floor ? s->revoked_floor : -1;
  pthread_mutex_unlock(&s->lock);
  if (r < 0)
    return ep_failf(s->host, s->ctx, r,
                    "node %s: its tokens are refused, but the stored revocations cannot be read (a restart of edgeprovd "
                    "would forget this one)",
                    node_id);
  return store_revocation(s, &copy, replaced, floor);
}

/* Notes that node_id has a new client: its tokens issued from now on stand. Best effort in
 * the store (only tokens issued within the second of the revocation depend on it). */
static void remember_recreation(kc_state *s, const char *node_id) {
  pthread_mutex_lock(&s->lock);
  bool known = load_revocations(s) == 0;
  revocation *slot = known ? find_revocation(s, node_id) : NULL;
  revocation copy = {.node = ""};
  if (slot) {
    slot->recreated_at = (int64_t)time(NULL);
    copy = *slot;
  }
  pthread_mutex_unlock(&s->lock);
  if (copy.node[0] && store_revocation(s, &copy, "", -1) < 0)
    ep_logf(s->host, s->ctx, EP_LOG_WARN, "node %s: the new client's time could not be stored", node_id);
}

/* 0 when a token of node_id issued at issued_at was not revoked since; EP_EPERM with the
 * reason when it was, or when the revocations cannot be read (fail closed). */
static int32_t check_revocation(kc_state *s, const char *node_id, int64_t issued_at) {
  pthread_mutex_lock(&s->lock);
  int32_t r = load_revocations(s);
  const revocation *rev = r == 0 ? find_revocation(s, node_id) : NULL;
  bool revoked = issued_at <= s->revoked_floor ||
                 (rev && issued_at <= rev->revoked_at && !(rev->recreated_at && issued_at >= rev->recreated_at));
  pthread_mutex_unlock(&s->lock);
  if (r < 0)
    return ep_failf(s->host, s->ctx, EP_EPERM, "token: the stored revocations cannot be read (storage error %d)", r);
  return revoked ? ep_failf(s->host, s->ctx, EP_EPERM, "token: the node's credentials were revoked") : 0;
}

static int32_t kc_create(void *state, const char *node_id, ep_identity_credentials_fn visit, void *data) {
  kc_state *s = state;
  int32_t rc = ep_node_id_check(s->host, s->ctx, node_id);
  if (rc < 0) return rc;
  char client_id[96];
  snprintf(client_id, sizeof client_id, EP_NODE_CLIENT_PREFIX "%s", node_id);
  /* A confidential client with a service account and nothing else; its tokens carry
   * edgeprov's audience through an audience mapper. */
  json_t *body = json_pack(
      "{s:s, s:s, s:s, s:b, s:b, s:b, s:b, s:b, s:b, s:s, s:s, s:{s:s}, s:[{s:s, s:s, s:s, s:{s:s, s:s, s:s}}]}",
      "clientId", client_id, "name", client_id, "description", "edgeprov node (managed by edgeprovd)", "enabled", 1,
      "publicClient", 0, "serviceAccountsEnabled", 1, "standardFlowEnabled", 0, "implicitFlowEnabled", 0,
      "directAccessGrantsEnabled", 0, "clientAuthenticatorType", "client-secret", "protocol", "openid-connect",
      "attributes", "edgeprov.node", node_id, "protocolMappers", "name", "edgeprov-audience", "protocol",
      "openid-connect", "protocolMapper", "oidc-audience-mapper", "config", "included.custom.audience", s->audience,
      "access.token.claim", "true", "id.token.claim", "false");
  if (!body) return ep_failf(s->host, s->ctx, EP_ENOMEM, "out of memory");
  reply r;
  rc = admin(s, "POST", "/clients", body, &r);
  json_decref(body);
  if (rc < 0) return rc;
  char id[EP_KC_INTERNAL_ID_MAX + 1] = "";
  if (r.status == 409)
    rc = ep_failf(s->host, s->ctx, EP_EEXIST, "node %s already has a client in Keycloak (%s)", node_id, client_id);
  else if (r.status != 201)
    rc = unexpected(s, "create client", &r);
  else if (ep_kc_location_id(r.location, id) < 0)
    rc = ep_failf(s->host, s->ctx, EP_EFAILED, "Keycloak: create client: no usable Location in the answer");
  reply_clear(&r);
  if (rc < 0) return rc;
  remember_recreation(s, node_id);
  rc = visit_secret(s, node_id, id, "GET", visit, data);
  if (rc < 0) { /* nothing half-done: a client whose secret nobody has is deleted */
    char path[128];
    snprintf(path, sizeof path, "/clients/%s", id);
    if (admin(s, "DELETE", path, NULL, &r) == 0) reply_clear(&r);
  }
  return rc;
}

static int32_t kc_get(void *state, const char *node_id, ep_identity_credentials_fn visit, void *data) {
  kc_state *s = state;
  char id[65], client_id[96];
  int64_t created = 0;
  int32_t rc = ep_node_id_check(s->host, s->ctx, node_id);
  if (rc == 0) rc = find_client(s, node_id, id, &created);
  if (rc < 0) return rc;
  snprintf(client_id, sizeof client_id, EP_NODE_CLIENT_PREFIX "%s", node_id);
  ep_identity_credentials c = {.struct_size = sizeof c, .client_id = client_id, .project_id = s->project_id,
                               .created_at = created};
  if (visit) visit(data, &c);
  return 0;
}

static int32_t kc_rotate(void *state, const char *node_id, ep_identity_credentials_fn visit, void *data) {
  kc_state *s = state;
  char id[65];
  int32_t rc = ep_node_id_check(s->host, s->ctx, node_id);
  if (rc == 0) rc = find_client(s, node_id, id, NULL);
  return rc < 0 ? rc : visit_secret(s, node_id, id, "POST", visit, data);
}

static int32_t kc_revoke(void *state, const char *node_id) {
  kc_state *s = state;
  char id[65], path[128];
  int32_t rc = ep_node_id_check(s->host, s->ctx, node_id);
  if (rc == 0) rc = find_client(s, node_id, id, NULL);
  if (rc == EP_ENOENT) return 0;
  if (rc < 0) return rc;
  snprintf(path, sizeof path, "/clients/%s", id);
  reply r;
  rc = admin(s, "DELETE", path, NULL, &r);
  if (rc < 0) return rc;
  if (r.status != 204 && r.status != 404) rc = unexpected(s, "delete client", &r);
  reply_clear(&r);
  if (rc == 0) rc = remember_revocation(s, node_id);
  return rc;
}

/* ---- tokens ------------------------------------------------------------------------------- */

static int32_t kc_issue_token(void *state, const char *client_id, const char *client_secret, const char *audience,
                              ep_identity_credentials_fn visit, void *data) {
  kc_state *s = state;
  if (!audience || strcmp(audience, s->audience) != 0)
    return ep_failf(s->host, s->ctx, EP_EINVAL, "audience: Keycloak issues node tokens for '%s' only", s->audience);
  if (!client_id || strncmp(client_id, EP_NODE_CLIENT_PREFIX, strlen(EP_NODE_CLIENT_PREFIX)) != 0 || !client_secret ||
      strnlen(client_secret, SECRET_MAX) >= SECRET_MAX)
    return ep_failf(s->host, s->ctx, EP_EPERM, "invalid client credentials");
  char *token = NULL;
  int32_t rc = client_credentials(s, client_id, client_secret, &token, NULL);
  if (rc == 0 && visit) {
    ep_identity_credentials c = {.struct_size = sizeof c, .client_id = client_id, .client_secret = token,
                                 .project_id = s->project_id, .created_at = (int64_t)time(NULL)};
    visit(data, &c);
  }
  if (token) explicit_bzero(token, strlen(token));
  free(token);
  return rc;
}

/* ---- the realm's keys ---------------------------------------------------------------------- */

/* Fetches the realm's JWKS into *out (no lock held: Keycloak may be slow). */
static int32_t fetch_jwks(kc_state *s, json_t **out) {
  const char *headers[] = {"Accept: application/json", NULL};
  reply r;
  int32_t rc = http(s, "GET", s->certs_url, headers, NULL, NULL, NULL, &r);
  if (rc < 0) return rc;
  if (r.status != 200 || !ep_kc_jwks_valid(r.json))
    rc = unexpected(s, "certs", &r);
  else
    *out = json_incref(r.json);
  reply_clear(&r);
  return rc;
}

typedef enum { JWKS_UNCHANGED, JWKS_OTHERS_FETCH, JWKS_OWN_FETCH } jwks_refresh;

/* With jwks_lock held, for a caller that did not find what it needs in the cache: waits for
 * the fetch in flight (until deadline, CLOCK_MONOTONIC), or when none is and the last one
 * started JWKS_REFETCH_MIN_S ago or more, fetches with the lock released meanwhile (others
 * keep using the cached keys). Says whether the cache may have changed, and whether this
 * call's own fetch succeeded. */
static jwks_refresh refresh_jwks(kc_state *s, const struct timespec *deadline) {
  if (s->jwks_fetching) {
    uint64_t fetches = s->jwks_fetches;
    while (s->jwks_fetching && fetches == s->jwks_fetches)
      if (pthread_cond_timedwait(&s->jwks_done, &s->jwks_lock, deadline) == ETIMEDOUT) return JWKS_UNCHANGED;
    return JWKS_OTHERS_FETCH;
  }
  int64_t now = monotonic_s();
  if (s->jwks_tried && now - s->jwks_fetched_at < JWKS_REFETCH_MIN_S) return JWKS_UNCHANGED;
  s->jwks_fetching = s->jwks_tried = true;
  s->jwks_fetched_at = now;
  pthread_mutex_unlock(&s->jwks_lock);
  json_t *fresh = NULL;
  int32_t rc = fetch_jwks(s, &fresh);
  pthread_mutex_lock(&s->jwks_lock);
  if (rc == 0) {
    json_decref(s->jwks);
    s->jwks = fresh;
  }
  s->jwks_fetching = false;
  s->jwks_fetches++;
  pthread_cond_broadcast(&s->jwks_done);
  return rc == 0 ? JWKS_OWN_FETCH : JWKS_UNCHANGED;
}

static struct timespec wait_deadline(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_sec += JWKS_WAIT_MS / 1000;
  ts.tv_nsec += (long)(JWKS_WAIT_MS % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return ts;
}

/* True when kid was missing from a JWKS fetched for it less than UNKNOWN_KID_TTL_S ago
 * (jwks_lock held). */
static bool kid_known_unknown(kc_state *s, const char *kid) {
  int64_t now = monotonic_s();
  for (size_t i = 0; i < UNKNOWN_KIDS_MAX; i++)
    if (s->unknown[i].until > now && strcmp(s->unknown[i].kid, kid) == 0) return true;
  return false;
}

static void remember_unknown_kid(kc_state *s, const char *kid) {
  unknown_kid *slot = &s->unknown[s->unknown_next++ % UNKNOWN_KIDS_MAX];
  snprintf(slot->kid, sizeof slot->kid, "%s", kid);
  slot->until = monotonic_s() + UNKNOWN_KID_TTL_S;
}

/* The signing key with kid: from the cached JWKS; for a kid it lacks, from a fresh one
 * (fetched at most every JWKS_REFETCH_MIN_S, one fetch at a time, never under a lock other
 * verifications need; a kid a fresh JWKS lacked is not fetched for again for
 * UNKNOWN_KID_TTL_S). NULL when there is none. Caller frees. */
static EVP_PKEY *signing_key(kc_state *s, const char *kid) {
  if (strlen(kid) > KID_MAX) return NULL;
  struct timespec deadline = wait_deadline();
  pthread_mutex_lock(&s->jwks_lock);
  EVP_PKEY *key = ep_kc_jwks_key(s->jwks, kid);
  for (int round = 0; !key && round < 3 && !kid_known_unknown(s, kid); round++) {
    jwks_refresh got = refresh_jwks(s, &deadline);
    if (got == JWKS_UNCHANGED) break;
    key = ep_kc_jwks_key(s->jwks, kid);
    if (!key && got == JWKS_OWN_FETCH) remember_unknown_kid(s, kid);
  }
  pthread_mutex_unlock(&s->jwks_lock);
  return key;
}

static int32_t kc_verify_token(void *state, const char *token, const char *audience, ep_identity_claims_fn visit,
                               void *data) {
  kc_state *s = state;
  ep_jws jws;
  const char *why = NULL;
  if (ep_jws_parse(&jws, token, &why) < 0) return ep_failf(s->host, s->ctx, EP_EPERM, "%s", why);
  const char *kid = json_string_value(json_object_get(jws.header, "kid"));
  /* Keycloak names the client in azp (and client_id since version 26). */
  const char *client_id = json_string_value(json_object_get(jws.payload, "azp"));
  if (!client_id) client_id = json_string_value(json_object_get(jws.payload, "client_id"));
  const char *node = ep_node_of_client(client_id);
  const json_t *iat = json_object_get(jws.payload, "iat"), *exp = json_object_get(jws.payload, "exp");
  EVP_PKEY *key = kid ? signing_key(s, kid) : NULL;
  int32_t rc = 0;
  if (!key || !ep_jws_verify(&jws, key))
    rc = ep_failf(s->host, s->ctx, EP_EPERM, "token signature does not verify");
  else if (ep_jwt_check_claims(jws.payload, s->issuer, audience, (int64_t)time(NULL), &why) < 0)
    rc = ep_failf(s->host, s->ctx, EP_EPERM, "%s", why);
  else if (!node)
    rc = ep_failf(s->host, s->ctx, EP_EPERM, "token: not a node's token");
  else if (!json_is_integer(iat) || (int64_t)json_integer_value(iat) < 0 ||
           (int64_t)json_integer_value(exp) - (int64_t)json_integer_value(iat) > s->token_lifetime_max)
    /* A token living longer than revocations are kept could outlive its revocation. */
    rc = ep_failf(s->host, s->ctx, EP_EPERM, "token: no iat, or it lives longer than token_lifetime_max_s");
  else
    rc = check_revocation(s, node, (int64_t)json_integer_value(iat));
  if (rc == 0 && visit) {
    ep_identity_claims c = {.struct_size = sizeof c, .subject = client_id, .audience = audience,
                            .expires_at = (int64_t)json_integer_value(json_object_get(jws.payload, "exp")),
                            .node_id = node};
    visit(data, &c);
  }
  EVP_PKEY_free(key);
  ep_jws_clear(&jws);
  return rc;
}

static const char *kc_token_url(void *state) { return ((kc_state *)state)->token_url; }

static int32_t kc_jwks(void *state, ep_identity_text_fn visit, void *data) {
  kc_state *s = state;
  struct timespec deadline = wait_deadline();
  pthread_mutex_lock(&s->jwks_lock);
  for (int round = 0; !s->jwks && round < 2; round++)
    if (refresh_jwks(s, &deadline) == JWKS_UNCHANGED) break;
  char *text = s->jwks ? json_dumps(s->jwks, JSON_COMPACT) : NULL;
  bool have = s->jwks != NULL;
  pthread_mutex_unlock(&s->jwks_lock);
  int32_t rc = 0;
  if (!have) rc = ep_failf(s->host, s->ctx, EP_EIO, "Keycloak: the realm's keys (certs) are not available yet");
  else if (!text) rc = ep_failf(s->host, s->ctx, EP_ENOMEM, "out of memory");
  if (rc == 0 && visit) rc = visit(data, text);
  free(text);
  return rc;
}

static const ep_identity kc_identity = {
    .struct_size = sizeof(ep_identity),
    .create = kc_create,
    .get = kc_get,
    .rotate = kc_rotate,
    .revoke = kc_revoke,
    .issue_token = kc_issue_token,
    .verify_token = kc_verify_token,
    .token_url = kc_token_url,
    .jwks = kc_jwks,
};

/* ---- the plugin ---------------------------------------------------------------------------- */

/* Reads the admin client's secret: the first line of a file of at most SECRET_MAX bytes. */
static int32_t read_secret(kc_state *s, const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return ep_failf(s->host, s->ctx, EP_ENOENT, "setting 'admin_client_secret_file': cannot read %s", path);
  size_t len = fread(s->admin_secret, 1, sizeof s->admin_secret - 1, f);
  bool longer = fgetc(f) != EOF;
  fclose(f);
  s->admin_secret[len] = '\0';
  s->admin_secret[strcspn(s->admin_secret, "\r\n")] = '\0';
  if (longer || !s->admin_secret[0])
    return ep_failf(s->host, s->ctx, EP_EINVAL, "setting 'admin_client_secret_file': %s must hold one line of 1 to %d bytes",
                    path, SECRET_MAX - 1);
  return 0;
}

static bool realm_valid(const char *realm) {
  size_t len = strlen(realm);
  if (len == 0 || len > 100) return false;
  for (size_t i = 0; i < len; i++)
    if (!(isalnum((unsigned char)realm[i]) || strchr("._-", realm[i]))) return false;
  return true;
}

static bool base_url_valid(const char *url) {
  size_t len = strlen(url);
  bool https = strncmp(url, "https://", 8) == 0;
  bool loopback_http = strncmp(url, "http://127.", 11) == 0 || strncmp(url, "http://localhost", 16) == 0 ||
                       strncmp(url, "http://[::1]", 12) == 0;
  if (!(https || loopback_http) || len > 400 || url[len - 1] == '/') return false;
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)url[i] <= 0x20 || strchr("?#\"'\\", url[i])) return false;
  return true;
}

static void kc_deinit(void *state) {
  kc_state *s = state;
  pthread_mutex_destroy(&s->lock);
  pthread_mutex_destroy(&s->jwks_lock);
  pthread_cond_destroy(&s->jwks_done);
  if (s->admin_token) explicit_bzero(s->admin_token, strlen(s->admin_token));
  free(s->admin_token);
  json_decref(s->jwks);
  explicit_bzero(s->admin_secret, sizeof s->admin_secret);
  s->host->free(s->ctx, s);
}

static int32_t kc_init(const ep_host *host, ep_ctx *ctx, void **ret_state) {
  if (!EP_HOST_HAS(host, http_request))
    return ep_failf(host, ctx, EP_ENOTSUP, "the host is too old: auth-keycloak needs ABI 1.1 (http_request)");
  const char *base = NULL, *realm = NULL, *admin_id = NULL, *secret_file = NULL, *ca = NULL, *audience = NULL,
             *project = NULL;
  int64_t timeout = 0, lifetime = 0;
  if (host->setting_int(ctx, "token_lifetime_max_s", &lifetime) < 0 || host->setting_string(ctx, "base_url", &base) < 0 ||
      host->setting_string(ctx, "realm", &realm) < 0 ||
      host->setting_string(ctx, "admin_client_id", &admin_id) < 0 ||
      host->setting_string(ctx, "admin_client_secret_file", &secret_file) < 0 ||
      host->setting_string(ctx, "ca_file", &ca) < 0 || host->setting_string(ctx, "audience", &audience) < 0 ||
      host->setting_string(ctx, "project_id", &project) < 0 || host->setting_int(ctx, "timeout_ms", &timeout) < 0)
    return ep_failf(host, ctx, EP_EINVAL, "settings are unavailable");
  if (!base_url_valid(base))
    return ep_failf(host, ctx, EP_EINVAL,
                    "setting 'base_url': '%.100s' must be https://HOST[:PORT][/PATH] without a trailing '/' "
                    "(http:// only on loopback)",
                    base);
  if (!realm_valid(realm)) return ep_failf(host, ctx, EP_EINVAL, "setting 'realm': must be 1 to 100 of [A-Za-z0-9._-]");
  if (!*admin_id) return ep_failf(host, ctx, EP_EINVAL, "setting 'admin_client_id' must not be empty");
  if (!*audience) return ep_failf(host, ctx, EP_EINVAL, "setting 'audience' must not be empty");
  kc_state *s = host->alloc(ctx, sizeof *s);
  if (!s) return ep_failf(host, ctx, EP_ENOMEM, "out of memory");
  memset(s, 0, sizeof *s);
  s->host = host;
  s->ctx = ctx;
  s->admin_client_id = admin_id;
  s->ca_file = ca;
  s->audience = audience;
  s->project_id = project;
  s->timeout_ms = timeout;
  s->token_lifetime_max = lifetime;
  pthread_mutex_init(&s->lock, NULL);
  pthread_mutex_init(&s->jwks_lock, NULL);
  pthread_condattr_t cond_attr;
  pthread_condattr_init(&cond_attr);
  pthread_condattr_setclock(&cond_attr, CLOCK_MONOTONIC); /* waits are bounded on the monotonic clock */
  pthread_cond_init(&s->jwks_done, &cond_attr);
  pthread_condattr_destroy(&cond_attr);
  snprintf(s->issuer, sizeof s->issuer, "%s/realms/%s", base, realm);
  snprintf(s->token_url, sizeof s->token_url, "%.600s/protocol/openid-connect/token", s->issuer);
  snprintf(s->certs_url, sizeof s->certs_url, "%.600s/protocol/openid-connect/certs", s->issuer);
  snprintf(s->admin_url, sizeof s->admin_url, "%s/admin/realms/%s", base, realm);
  int32_t r = read_secret(s, secret_file);
  if (r < 0) {
    kc_deinit(s);
    return r;
  }
  ep_logf(host, ctx, EP_LOG_INFO, "Keycloak realm %s, admin client %s", s->issuer, admin_id);
  *ret_state = s;
  return 0;
}

static const void *kc_get_capability(void *state, const char *id) {
  (void)state;
  return strcmp(id, EP_CAP_IDENTITY) == 0 ? &kc_identity : NULL;
}

static const ep_field_decl kc_settings[] = {
    EP_FIELD_STRING_DECL("base_url", NULL, EP_FIELD_REQUIRED, 400,
                         "Keycloak's base URL, e.g. https://keycloak.example.com (with /auth for Keycloak < 17)"),
    EP_FIELD_STRING_DECL("realm", NULL, EP_FIELD_REQUIRED, 100, "the realm that holds the node clients"),
    EP_FIELD_STRING_DECL("admin_client_id", NULL, EP_FIELD_REQUIRED, 255,
                         "service-account client with the realm-management role manage-clients"),
    EP_FIELD_STRING_DECL("admin_client_secret_file", NULL, EP_FIELD_REQUIRED, 1023,
                         "file holding the admin client's secret (one line; keep it 0600)"),
    EP_FIELD_STRING_DECL("ca_file", "", EP_FIELD_OPTIONAL, 1023, "PEM CA that signed Keycloak's certificate; empty: the system's"),
    EP_FIELD_STRING_DECL("audience", "edgeprov", EP_FIELD_OPTIONAL, 128,
                         "audience the node clients' tokens carry (audience mapper); edgeprovd checks it"),
    EP_FIELD_STRING_DECL("project_id", "edgeprov", EP_FIELD_OPTIONAL, 63, "project (tenant) named in onboarding replies"),
    EP_FIELD_INT_DECL("timeout_ms", "10000", EP_FIELD_OPTIONAL, 1000, 120000, "timeout of each call to Keycloak"),
    EP_FIELD_INT_DECL("token_lifetime_max_s", "86400", EP_FIELD_OPTIONAL, 60, 2592000,
                      "longest lifetime (exp - iat) of a node token accepted; revocations are kept (stored) this long"),
};

static const char *const kc_capabilities[] = {EP_CAP_IDENTITY, NULL};

EP_PLUGIN_EXPORT const ep_plugin_entry ep_plugin = {
    EP_PLUGIN_ENTRY_HEADER,
    .id = "auth-keycloak",
    .version = "0.1.0",
    .description = "Identity provider on Keycloak: a confidential client per node (Admin REST API), Keycloak's tokens",
    .capabilities = kc_capabilities,
    .settings = kc_settings,
    .settings_count = EP_COUNT(kc_settings),
    .init = kc_init,
    .deinit = kc_deinit,
    .get_capability = kc_get_capability,
};
