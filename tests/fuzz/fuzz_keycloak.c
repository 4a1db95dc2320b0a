/* Fuzzes auth-keycloak's reading of what Keycloak sends (plugins/auth-keycloak/kc_reply.c,
 * linked as ep_keycloak_reply): the token endpoint's answer, the realm's JWKS (/certs), the
 * Admin REST answers (client lists, client secrets, the Location of a new client, error
 * bodies), and the plugin's stored revocation records. Whatever the bytes, nothing crashes
 * or leaks, and whatever is accepted is within the bounds the plugin relies on. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jose.h"
#include "kc_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The node ID of "edgenode-<node>" in the first element's clientId, else a fixed one. */
static const char *node_of(const json_t *json) {
  const char *client_id = json_string_value(json_object_get(json_array_get(json, 0), "clientId"));
  return client_id && strncmp(client_id, "edgenode-", 9) == 0 ? client_id + 9 : "dddddddd-0000-4000-8000-000000000001";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_t *json = ep_kc_parse_body(data, size);
  if (!ep_kc_error_text(json)) abort();

  const char *token = NULL;
  int64_t expires_in = -1;
  if (ep_kc_token_reply(json, &token, &expires_in) == 0) {
    size_t len = strlen(token);
    if (len == 0 || len > EP_JOSE_TOKEN_MAX || expires_in < 0 || expires_in > EP_KC_EXPIRES_IN_MAX) abort();
  }

  char id[EP_KC_INTERNAL_ID_MAX + 1];
  int64_t created = -1;
  if (ep_kc_find_client(json, node_of(json), id, &created) == 0 && (!ep_kc_internal_id_valid(id) || created < 0)) abort();

  const char *secret = ep_kc_secret_value(json);
  if (secret && (!*secret || strlen(secret) >= EP_KC_SECRET_MAX)) abort();

  if (ep_kc_jwks_valid(json)) {
    size_t i;
    const json_t *jwk;
    json_array_foreach(json_object_get(json, "keys"), i, jwk) {
      EVP_PKEY *key = ep_kc_jwks_key(json, json_string_value(json_object_get(jwk, "kid")));
      EVP_PKEY_free(key);
      if (i >= 16) break;
    }
  }
  EVP_PKEY_free(ep_kc_jwks_key(json, "kid-1"));
  json_decref(json);

  /* The same bytes as a Location header and as a stored revocation record. */
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  if (ep_kc_location_id(text, id) == 0 && !ep_kc_internal_id_valid(id)) abort();
  int64_t revoked = -1, recreated = -1, again_revoked = -1, again_recreated = -1;
  if (ep_kc_revocation_parse(text, size, &revoked, &recreated) == 0) {
    char out[EP_KC_REVOCATION_MAX];
    int n = ep_kc_revocation_format(out, sizeof out, revoked, recreated);
    if (revoked < 0 || recreated < 0 || n < 0 ||
        ep_kc_revocation_parse(out, (size_t)n, &again_revoked, &again_recreated) < 0 || again_revoked != revoked ||
        again_recreated != recreated)
      abort();
  }
  free(text);
  return 0;
}
