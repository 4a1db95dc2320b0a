/* core: the OAuth2 token endpoint (client-credentials grant, RFC 6749 section 4.4) and the
 * JWKS document of the active identity plugin, published on the embedded HTTPS server:
 *   POST /oauth2/token                (client_secret_post or client_secret_basic)
 *   GET  /.well-known/jwks.json */
#ifndef EP_CORE_TOKEN_ENDPOINT_H
#define EP_CORE_TOKEN_ENDPOINT_H

#include "net/https.h"

struct ep_plugin_set;
struct ep_config;

#define EP_TOKEN_PATH "/oauth2/token"
#define EP_JWKS_PATH "/.well-known/jwks.json"

/* Routes the endpoints on server to the first active identity plugin of plugins (which must
 * outlive the server): the JWKS always, the token endpoint when the plugin has the host
 * serve it (its token_url is ""; Keycloak serves its own). A grant without an audience
 * gets EP_NODE_AUDIENCE; one for an audience the site config (plugins->config,
 * auth.token_audiences) does not list is refused with 400 invalid_target. */
int ep_token_endpoint_route(ep_https_server *server, const struct ep_plugin_set *plugins);

/* True when the token endpoint may issue a token for audience: it is one of config's
 * auth.token_audiences (only EP_NODE_AUDIENCE when config is NULL). Thread-safe. */
bool ep_token_audience_allowed(const struct ep_config *config, const char *audience);

#endif
