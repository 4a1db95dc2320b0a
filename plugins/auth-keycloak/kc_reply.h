/* auth-keycloak: reading what Keycloak answers (token endpoint, JWKS, Admin REST) and the
 * plugin's stored revocation records. No I/O and no state, so that the fuzzer
 * (tests/fuzz/fuzz_keycloak.c) reaches every line that reads Keycloak's bytes. Linked
 * statically into the plugin and the fuzzer (hidden symbols). Thread-safe. */
#ifndef EP_PLUGINS_KC_REPLY_H
#define EP_PLUGINS_KC_REPLY_H

#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EP_KC_RESPONSE_MAX (256 * 1024)    /* largest Keycloak answer accepted */
#define EP_KC_SECRET_MAX 512               /* longest client secret, with its NUL */
#define EP_KC_INTERNAL_ID_MAX 64           /* longest internal client ID ("id") */
#define EP_KC_EXPIRES_IN_MAX (366 * 86400) /* expires_in above this is taken as this */
#define EP_KC_REVOCATION_MAX 64            /* longest stored revocation record */

/* The JSON of an answer's body, or NULL when it is empty, too long or not JSON. Caller
 * decrefs. */
json_t *ep_kc_parse_body(const uint8_t *body, size_t len);

/* Keycloak's error text of an answer: errorMessage, error_description or error; "no
 * details" when none (never NULL). Valid while json is. */
const char *ep_kc_error_text(const json_t *json);

/* The token endpoint's answer: access_token (1..EP_JOSE_TOKEN_MAX bytes, valid while json
 * is) into *ret_token and expires_in, clamped to 0..EP_KC_EXPIRES_IN_MAX (0 when absent),
 * into *ret_expires_in (may be NULL). Returns 0, or -1 when there is no usable token. */
int ep_kc_token_reply(const json_t *json, const char **ret_token, int64_t *ret_expires_in);

/* True when id, Keycloak's internal client ID, is 1..EP_KC_INTERNAL_ID_MAX of [A-Za-z0-9-]
 * (safe in a URL path). */
bool ep_kc_internal_id_valid(const char *id);

/* Finds the client "edgenode-<node_id>" in the answer of GET /clients?clientId=...: its
 * internal ID into id and the creation time of its secret (Unix seconds, 0 when unknown)
 * into *ret_created (may be NULL). Returns 0, or -1 when list holds no such client. */
int ep_kc_find_client(const json_t *list, const char *node_id, char id[EP_KC_INTERNAL_ID_MAX + 1],
                      int64_t *ret_created);

/* The secret of a CredentialRepresentation ({"type":"secret","value":...}), or NULL when
 * it is missing, empty or EP_KC_SECRET_MAX bytes or longer. Valid while json is. */
const char *ep_kc_secret_value(const json_t *json);

/* The internal client ID at the end of a Location header (".../clients/<id>"). Returns 0,
 * or -1 when there is none or it is not valid. */
int ep_kc_location_id(const char *location, char id[EP_KC_INTERNAL_ID_MAX + 1]);

/* True when json is a JWK Set: an object with a "keys" array. */
bool ep_kc_jwks_valid(const json_t *json);

/* The public key of the signing key with kid in jwks (use "sig" or none), or NULL. Caller
 * frees. */
EVP_PKEY *ep_kc_jwks_key(const json_t *jwks, const char *kid);

/* A stored revocation: "<revoked_at>\n<recreated_at>\n" (Unix seconds, recreated_at 0 when
 * the node has no new client since). parse returns 0, or -1 when text is not one. format
 * returns the length written, or -1 when cap is too small. */
int ep_kc_revocation_parse(const char *text, size_t len, int64_t *ret_revoked_at, int64_t *ret_recreated_at);
int ep_kc_revocation_format(char *out, size_t cap, int64_t revoked_at, int64_t recreated_at);

#endif
