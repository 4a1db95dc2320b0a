/* edgeprov SDK: capability edgeprov.identity/1, per-node credentials and tokens. */
#ifndef EDGEPROV_IDENTITY_H
#define EDGEPROV_IDENTITY_H

#include <stddef.h>

#include "abi.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EP_IDENTITY_NODE_ID_MAX 63 /* node IDs are host UUIDs in text form */

/* A node's credentials as the plugin hands them over. client_secret is set only by create
 * and rotate (NULL otherwise); it is a secret: the host never logs or stores it. Pointers
 * are valid only during the visitor call. */
typedef struct ep_identity_credentials {
  uint32_t struct_size;
  uint32_t reserved;
  const char *client_id;
  const char *client_secret;
  const char *project_id;
  int64_t created_at; /* Unix seconds */
} ep_identity_credentials;

typedef int32_t (*ep_identity_credentials_fn)(void *data, const ep_identity_credentials *credentials);

/* What a verified token says. Valid only during the visitor call. */
typedef struct ep_identity_claims {
  uint32_t struct_size;
  uint32_t reserved;
  const char *subject;  /* the node's client_id */
  const char *audience;
  int64_t expires_at;   /* Unix seconds */
  const char *node_id;  /* the node the credentials were made for (ABI 1.1) */
} ep_identity_claims;

typedef int32_t (*ep_identity_claims_fn)(void *data, const ep_identity_claims *claims);

/* Receives a text (valid only during the call). */
typedef int32_t (*ep_identity_text_fn)(void *data, const char *text);

/* The table get_capability returns for EP_CAP_IDENTITY. state is the plugin's state.
 * Functions return 0 or a negative code after host->set_error; they may be called from
 * several threads at once.
 *
 * create: makes credentials for node_id and visits them, secret included. EP_EEXIST when
 *   the node already has credentials (rotate or revoke them first).
 * get: visits the node's credentials without the secret; EP_ENOENT when none.
 * rotate: replaces the node's secret and visits the new credentials.
 * revoke: deletes the node's credentials (no error when there are none).
 * issue_token: the OAuth2 client-credentials grant (RFC 6749 section 4.4) done in process:
 *   checks client_id and client_secret and visits the signed token text through a
 *   credentials visitor (client_secret then carries the token). EP_EPERM on bad credentials.
 * verify_token: checks a bearer token's signature, issuer, audience and expiry and visits
 *   its claims; EP_EPERM with the reason when it is not acceptable.
 * token_url: the URL nodes post the client-credentials grant to ("" when the host serves
 *   the grant itself on its HTTPS server).
 * jwks: visits the JSON Web Key Set (RFC 7517) of the keys that sign tokens. */
typedef struct ep_identity {
  uint32_t struct_size;
  uint32_t reserved;
  int32_t (*create)(void *state, const char *node_id, ep_identity_credentials_fn visit, void *data);
  int32_t (*get)(void *state, const char *node_id, ep_identity_credentials_fn visit, void *data);
  int32_t (*rotate)(void *state, const char *node_id, ep_identity_credentials_fn visit, void *data);
  int32_t (*revoke)(void *state, const char *node_id);
  int32_t (*issue_token)(void *state, const char *client_id, const char *client_secret, const char *audience,
                         ep_identity_credentials_fn visit, void *data);
  int32_t (*verify_token)(void *state, const char *token, const char *audience, ep_identity_claims_fn visit,
                          void *data);
  const char *(*token_url)(void *state);
  int32_t (*jwks)(void *state, ep_identity_text_fn visit, void *data);
} ep_identity;

/* True when the plugin's table, or the claims it visits, are new enough to carry the named
 * member (jwks and node_id came with ABI 1.1). */
#define EP_IDENTITY_HAS(table, member) \
  ((table)->struct_size >= (uint32_t)(offsetof(ep_identity, member) + sizeof((table)->member)))
#define EP_IDENTITY_HAS_CLAIM(claims, member) \
  ((claims)->struct_size >= (uint32_t)(offsetof(ep_identity_claims, member) + sizeof((claims)->member)))

#ifdef __cplusplus
}
#endif
#endif
