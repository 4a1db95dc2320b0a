/* auth-keycloak: per-node credentials in Keycloak. Each node is a confidential client
 * "edgenode-<node>" with a service account, made through Keycloak's Admin REST API by a
 * service-account admin client (realm-management role manage-clients); the node gets its
 * tokens from Keycloak's token endpoint (client-credentials grant) with edgeprov's audience
 * added by an oidc-audience-mapper on its client, and edgeprovd verifies them against
 * Keycloak's JWKS (the realm's /protocol/openid-connect/certs). All HTTP goes through the
 * host's http_request service. */
#define _GNU_SOURCE /* explicit_bzero, strndup */
#include <ctype.h>
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
#include "node_client.h"

#define URL_MAX 1024
#define SECRET_MAX 512
#define ADMIN_TOKEN_MARGIN_S 30   /* renew the admin token this long before it expires */
#define JWKS_REFETCH_MIN_S 10     /* an unknown kid refetches the JWKS at most this often */
#define REVOKED_MAX 4096          /* revocations remembered (tokens issued before are refused) */
#define RESPONSE_MAX (256 * 1024) /* largest Keycloak answer accepted */

/* A node whose client was deleted: its tokens issued until revoked_at are refused, unless a
 * new client was made since (recreated_at, 0 when none) and the token is from then on.
 * Times are whole seconds, as iat is. */
typedef struct revocation {
  char node[EP_IDENTITY_NODE_ID_MAX + 1];
  int64_t revoked_at;
  int64_t recreated_at;
} revocation;

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
  pthread_mutex_t lock; /* guards everything below */
  char *admin_token;
  int64_t admin_token_expires;
  json_t *jwks;
  int64_t jwks_fetched_at;
  revocation revoked[REVOKED_MAX];
  size_t revoked_next;
} kc_state;

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
    json_error_t err;
    r->json = json_loadb((const char *)response->body, (size_t)response->body_len, 0, &err);
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
static const char *error_text(const reply *r) {
  const char *keys[] = {"errorMessage", "error_description", "error"};
  for (size_t i = 0; i < 3; i++) {
    const char *text = json_string_value(json_object_get(r->json, keys[i]));
    if (text) return text;
  }
  return "no details";
}

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
  const char *token = json_string_value(json_object_get(r.json, "access_token"));
  if (r.status == 400 || r.status == 401)
    rc = ep_failf(s->host, s->ctx, EP_EPERM, "Keycloak refused client %s: %.200s", client_id, error_text(&r));
  else if (r.status != 200 || !token || strlen(token) > EP_JOSE_TOKEN_MAX)
    rc = unexpected(s, "token endpoint", &r);
  else if (!(*ret_token = strdup(token)))
    rc = ep_failf(s->host, s->ctx, EP_ENOMEM, "out of memory");
  else if (ret_expires_in)
    *ret_expires_in = json_integer_value(json_object_get(r.json, "expires_in"));
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

/* Keycloak's internal client ID ("id", a UUID) is safe in a URL path when it is [A-Za-z0-9-]. */
static bool internal_id_valid(const char *id) {
  size_t len = id ? strnlen(id, 65) : 0;
  if (len == 0 || len > 64) return false;
  for (size_t i = 0; i < len; i++)
    if (!(isalnum((unsigned char)id[i]) || id[i] == '-')) return false;
  return true;
}

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
  rc = ep_failf(s->host, s->ctx, EP_ENOENT, "node %s has no client in Keycloak", node_id);
  size_t i;
  json_t *client;
  json_array_foreach(r.json, i, client) {
    const char *client_id = json_string_value(json_object_get(client, "clientId"));
    const char *internal = json_string_value(json_object_get(client, "id"));
    if (!client_id || strncmp(client_id, EP_NODE_CLIENT_PREFIX, strlen(EP_NODE_CLIENT_PREFIX)) != 0 ||
        strcmp(client_id + strlen(EP_NODE_CLIENT_PREFIX), node_id) != 0 || !internal_id_valid(internal))
      continue;
    snprintf(id, 65, "%s", internal);
    const char *created = json_string_value(json_object_get(json_object_get(client, "attributes"), "client.secret.creation.time"));
    if (ret_created) *ret_created = created ? strtoll(created, NULL, 10) : 0;
    rc = 0;
    break;
  }
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
  const char *secret = json_string_value(json_object_get(r.json, "value"));
  if (r.status != 200 || !secret || !*secret || strlen(secret) >= SECRET_MAX)
    rc = unexpected(s, "client secret", &r);
  else if (visit) {
    ep_identity_credentials c = {.struct_size = sizeof c, .client_id = client_id, .client_secret = secret,
                                 .project_id = s->project_id, .created_at = (int64_t)time(NULL)};
    visit(data, &c);
  }
  reply_clear(&r);
  return rc;
}

/* Remembers that tokens of node issued until now are no longer good (Keycloak's tokens are
 * stateless: deleting the client stops new ones, this stops the ones already out). */
static revocation *find_revocation(kc_state *s, const char *node_id) {
  for (size_t i = 0; i < REVOKED_MAX; i++)
    if (s->revoked[i].node[0] && strcmp(s->revoked[i].node, node_id) == 0) return &s->revoked[i];
  return NULL;
}

static void remember_revocation(kc_state *s, const char *node_id) {
  pthread_mutex_lock(&s->lock);
  revocation *slot = find_revocation(s, node_id);
  if (!slot) slot = &s->revoked[s->revoked_next++ % REVOKED_MAX];
  snprintf(slot->node, sizeof slot->node, "%s", node_id);
  slot->revoked_at = (int64_t)time(NULL);
  slot->recreated_at = 0;
  pthread_mutex_unlock(&s->lock);
}

static void remember_recreation(kc_state *s, const char *node_id) {
  pthread_mutex_lock(&s->lock);
  revocation *slot = find_revocation(s, node_id);
  if (slot) slot->recreated_at = (int64_t)time(NULL);
  pthread_mutex_unlock(&s->lock);
}

static bool revoked_since(kc_state *s, const char *node_id, int64_t issued_at) {
  pthread_mutex_lock(&s->lock);
  const revocation *r = find_revocation(s, node_id);
  bool revoked = r && issued_at <= r->revoked_at && !(r->recreated_at && issued_at >= r->recreated_at);
  pthread_mutex_unlock(&s->lock);
  return revoked;
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
  const char *slash = strrchr(r.location, '/');
  char id[65] = "";
  if (r.status == 409)
    rc = ep_failf(s->host, s->ctx, EP_EEXIST, "node %s already has a client in Keycloak (%s)", node_id, client_id);
  else if (r.status != 201)
    rc = unexpected(s, "create client", &r);
  else if (!slash || !internal_id_valid(slash + 1))
    rc = ep_failf(s->host, s->ctx, EP_EFAILED, "Keycloak: create client: no usable Location in the answer");
  else
    snprintf(id, sizeof id, "%s", slash + 1);
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
  if (rc == 0) remember_revocation(s, node_id);
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

/* Fetches the realm's JWKS into the cache (lock held by the caller). */
static int32_t fetch_jwks(kc_state *s) {
  const char *headers[] = {"Accept: application/json", NULL};
  reply r;
  int32_t rc = http(s, "GET", s->certs_url, headers, NULL, NULL, NULL, &r);
  if (rc < 0) return rc;
  if (r.status != 200 || !json_is_array(json_object_get(r.json, "keys"))) {
    rc = unexpected(s, "certs", &r);
  } else {
    json_decref(s->jwks);
    s->jwks = json_incref(r.json);
    s->jwks_fetched_at = (int64_t)time(NULL);
  }
  reply_clear(&r);
  return rc;
}

/* The signing key with kid, from the cache or a fresh JWKS (refetched at most every
 * JWKS_REFETCH_MIN_S seconds, so unknown kids cannot make us hammer Keycloak). */
static EVP_PKEY *signing_key(kc_state *s, const char *kid) {
  EVP_PKEY *key = NULL;
  pthread_mutex_lock(&s->lock);
  for (int pass = 0; pass < 2 && !key; pass++) {
    size_t i;
    json_t *jwk;
    json_array_foreach(json_object_get(s->jwks, "keys"), i, jwk) {
      const char *k = json_string_value(json_object_get(jwk, "kid"));
      const char *use = json_string_value(json_object_get(jwk, "use"));
      if (k && strcmp(k, kid) == 0 && (!use || strcmp(use, "sig") == 0)) {
        key = ep_jwk_public_key(jwk);
        break;
      }
    }
    if (key || (int64_t)time(NULL) - s->jwks_fetched_at < JWKS_REFETCH_MIN_S || fetch_jwks(s) < 0) break;
  }
  pthread_mutex_unlock(&s->lock);
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
  EVP_PKEY *key = kid ? signing_key(s, kid) : NULL;
  int32_t rc = 0;
  if (!key || !ep_jws_verify(&jws, key))
    rc = ep_failf(s->host, s->ctx, EP_EPERM, "token signature does not verify");
  else if (ep_jwt_check_claims(jws.payload, s->issuer, audience, (int64_t)time(NULL), &why) < 0)
    rc = ep_failf(s->host, s->ctx, EP_EPERM, "%s", why);
  else if (!node)
    rc = ep_failf(s->host, s->ctx, EP_EPERM, "token: not a node's token");
  else if (revoked_since(s, node, (int64_t)json_integer_value(json_object_get(jws.payload, "iat"))))
    rc = ep_failf(s->host, s->ctx, EP_EPERM, "token: the node's credentials were revoked");
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
  pthread_mutex_lock(&s->lock);
  int32_t rc = s->jwks ? 0 : fetch_jwks(s);
  char *text = rc == 0 ? json_dumps(s->jwks, JSON_COMPACT) : NULL;
  pthread_mutex_unlock(&s->lock);
  if (rc == 0 && !text) rc = ep_failf(s->host, s->ctx, EP_ENOMEM, "out of memory");
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
  int64_t timeout = 0;
  if (host->setting_string(ctx, "base_url", &base) < 0 || host->setting_string(ctx, "realm", &realm) < 0 ||
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
  pthread_mutex_init(&s->lock, NULL);
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
