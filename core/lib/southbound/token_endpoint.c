/* core: the OAuth2 token endpoint and JWKS, see token_endpoint.h. */
#define _GNU_SOURCE /* strdup, asprintf, explicit_bzero */
#include "southbound/token_endpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <edgeprov/identity.h>

#include "runtime/config.h"
#include "base/error.h"
#include "southbound/node_auth.h"
#include "runtime/plugin_loader.h"

#define FIELD_MAX 512

static const ep_identity *identity_of(const ep_plugin_set *plugins, void **ret_state) {
  ep_plugin *provider = NULL;
  const ep_identity *id = ep_plugins_capability(plugins, EP_CAP_IDENTITY, &provider);
  if (id) *ret_state = provider->instance;
  return id;
}

static void json_reply(ep_https_response *resp, int status, char *body) {
  resp->status = status;
  resp->content_type = "application/json";
  resp->body = body;
  resp->len = body ? strlen(body) : 0;
}

/* Answers an RFC 6749 section 5.2 error ({"error":"...","error_description":"..."}); returns 0
 * so a handler can end with `return oauth_error(...)`. */
static int oauth_error(ep_https_response *resp, int status, const char *error, const char *description) {
  char *body = NULL;
  if (asprintf(&body, "{\"error\":\"%s\",\"error_description\":\"%s\"}", error, description) < 0) body = NULL;
  json_reply(resp, status, body);
  return 0;
}

/* A form field of the grant, bounded; NULL when absent. */
static const char *grant_field(const ep_https_request *req, const char *name) {
  const char *value = ep_https_form_value(req, name);
  return value && strlen(value) < FIELD_MAX ? value : NULL;
}

bool ep_token_audience_allowed(const ep_config *config, const char *audience) {
  if (!audience) return false;
  if (!config || config->token_audiences.count == 0) return strcmp(audience, EP_NODE_AUDIENCE) == 0;
  for (size_t i = 0; i < config->token_audiences.count; i++)
    if (strcmp(config->token_audiences.items[i], audience) == 0) return true;
  return false;
}

typedef struct issued {
  char token[4096];
} issued;

static int32_t keep_token(void *data, const ep_identity_credentials *c) {
  issued *out = data;
  snprintf(out->token, sizeof out->token, "%s", c->client_secret ? c->client_secret : "");
  return 0;
}

static int32_t keep_expiry(void *data, const ep_identity_claims *claims) {
  *(int64_t *)data = claims->expires_at;
  return 0;
}

/* The client-credentials grant; the answer goes into resp. */
static int grant_token(const ep_plugin_set *plugins, const ep_https_request *req, ep_https_response *resp) {
  void *state = NULL;
  const ep_identity *id = identity_of(plugins, &state);
  if (!id) return oauth_error(resp, 503, "temporarily_unavailable", "no identity plugin is active");
  if (strncasecmp(req->content_type, "application/x-www-form-urlencoded", 33) != 0)
    return oauth_error(resp, 400, "invalid_request", "content type must be application/x-www-form-urlencoded");
  if (req->form_invalid) return oauth_error(resp, 400, "invalid_request", "a form field is too long, or too many");
  const char *grant = grant_field(req, "grant_type");
  if (!grant) return oauth_error(resp, 400, "invalid_request", "grant_type is required");
  if (strcmp(grant, "client_credentials") != 0)
    return oauth_error(resp, 400, "unsupported_grant_type", "only client_credentials is supported");
  /* client_secret_basic, else client_secret_post (RFC 6749 section 2.3.1). */
  const char *client_id = req->basic_user ? req->basic_user : grant_field(req, "client_id");
  const char *secret = req->basic_user ? req->basic_password : grant_field(req, "client_secret");
  if (!client_id || !secret) return oauth_error(resp, 401, "invalid_client", "client_id and client_secret are required");
  const char *audience = ep_https_form_value(req, "audience");
  if (!audience) audience = EP_NODE_AUDIENCE;
  /* A node may ask only for what the site lists: a token for any audience it names would be
   * a token for every service that trusts this issuer. The value is not echoed. */
  if (!ep_token_audience_allowed(plugins->config, audience))
    return oauth_error(resp, 400, "invalid_target",
                       "audience: not an audience this site issues tokens for (auth.token_audiences)");
  issued out;
  int64_t expires_at = 0;
  int r = id->issue_token(state, client_id, secret, audience, keep_token, &out);
  if (r == EP_EPERM) return oauth_error(resp, 401, "invalid_client", "client authentication failed");
  if (r == EP_EINVAL) return oauth_error(resp, 400, "invalid_request", "audience is not an identifier");
  if (r < 0) return oauth_error(resp, 500, "server_error", "the token could not be issued");
  if (id->verify_token(state, out.token, audience, keep_expiry, &expires_at) < 0) expires_at = 0;
  char *body = NULL;
  long long expires_in = expires_at > 0 ? (long long)(expires_at - (int64_t)time(NULL)) : 0;
  if (asprintf(&body, "{\"access_token\":\"%s\",\"token_type\":\"Bearer\",\"expires_in\":%lld}", out.token,
               expires_in) < 0)
    body = NULL;
  explicit_bzero(&out, sizeof out);
  json_reply(resp, body ? 200 : 500, body);
  return 0;
}

static void handle_token(void *data, const ep_https_request *req, ep_https_response *resp) {
  grant_token(data, req, resp);
}

typedef struct text {
  char *value;
} text;

static int32_t keep_text(void *data, const char *value) {
  ((text *)data)->value = strdup(value);
  return 0;
}

static void handle_jwks(void *data, const ep_https_request *req, ep_https_response *resp) {
  (void)req;
  const ep_plugin_set *plugins = data;
  void *state = NULL;
  const ep_identity *id = identity_of(plugins, &state);
  text t = {0};
  if (!id || !EP_IDENTITY_HAS(id, jwks) || id->jwks(state, keep_text, &t) < 0 || !t.value) {
    free(t.value);
    oauth_error(resp, 503, "temporarily_unavailable", "no key set available");
  } else {
    json_reply(resp, 200, t.value);
  }
}

int ep_token_endpoint_route(ep_https_server *server, const ep_plugin_set *plugins) {
  void *state = NULL;
  const ep_identity *id = identity_of(plugins, &state);
  int r = 0;
  if (id && !id->token_url(state)[0]) r = ep_https_server_route(server, "POST", EP_TOKEN_PATH, handle_token, (void *)plugins);
  if (r == 0) r = ep_https_server_route(server, "GET", EP_JWKS_PATH, handle_jwks, (void *)plugins);
  return r;
}
