/* auth-keycloak: reading Keycloak's answers and the stored revocations, see kc_reply.h. */
#define _GNU_SOURCE /* strnlen */
#include "kc_reply.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jose.h"
#include "node_client.h"

json_t *ep_kc_parse_body(const uint8_t *body, size_t len) {
  if (!body || len == 0 || len > EP_KC_RESPONSE_MAX) return NULL;
  json_error_t err;
  return json_loadb((const char *)body, len, 0, &err);
}

const char *ep_kc_error_text(const json_t *json) {
  const char *keys[] = {"errorMessage", "error_description", "error"};
  for (size_t i = 0; i < 3; i++) {
    const char *text = json_string_value(json_object_get(json, keys[i]));
    if (text) return text;
  }
  return "no details";
}

int ep_kc_token_reply(const json_t *json, const char **ret_token, int64_t *ret_expires_in) {
  const char *token = json_string_value(json_object_get(json, "access_token"));
  size_t len = token ? strnlen(token, EP_JOSE_TOKEN_MAX + 1) : 0;
  if (len == 0 || len > EP_JOSE_TOKEN_MAX) return -1;
  const json_t *expires = json_object_get(json, "expires_in");
  json_int_t seconds = json_is_integer(expires) ? json_integer_value(expires) : 0;
  *ret_token = token;
  if (ret_expires_in)
    *ret_expires_in = seconds < 0 ? 0 : seconds > EP_KC_EXPIRES_IN_MAX ? EP_KC_EXPIRES_IN_MAX : (int64_t)seconds;
  return 0;
}

bool ep_kc_internal_id_valid(const char *id) {
  size_t len = id ? strnlen(id, EP_KC_INTERNAL_ID_MAX + 1) : 0;
  if (len == 0 || len > EP_KC_INTERNAL_ID_MAX) return false;
  for (size_t i = 0; i < len; i++)
    if (!(isalnum((unsigned char)id[i]) || id[i] == '-')) return false;
  return true;
}

/* Unix seconds in Keycloak's "client.secret.creation.time" attribute; 0 unless it is
 * 1..18 digits. */
static int64_t seconds_of(const char *text) {
  size_t len = text ? strnlen(text, 19) : 0;
  if (len == 0 || len > 18) return 0;
  int64_t v = 0;
  for (size_t i = 0; i < len; i++) {
    if (text[i] < '0' || text[i] > '9') return 0;
    v = v * 10 + (text[i] - '0');
  }
  return v;
}

int ep_kc_find_client(const json_t *list, const char *node_id, char id[EP_KC_INTERNAL_ID_MAX + 1],
                      int64_t *ret_created) {
  size_t prefix = strlen(EP_NODE_CLIENT_PREFIX), i;
  const json_t *client;
  if (!node_id) return -1;
  json_array_foreach(list, i, client) {
    const char *client_id = json_string_value(json_object_get(client, "clientId"));
    const char *internal = json_string_value(json_object_get(client, "id"));
    if (!client_id || strncmp(client_id, EP_NODE_CLIENT_PREFIX, prefix) != 0 || strcmp(client_id + prefix, node_id) != 0 ||
        !ep_kc_internal_id_valid(internal))
      continue;
    snprintf(id, EP_KC_INTERNAL_ID_MAX + 1, "%s", internal);
    const json_t *attributes = json_object_get(client, "attributes");
    if (ret_created) *ret_created = seconds_of(json_string_value(json_object_get(attributes, "client.secret.creation.time")));
    return 0;
  }
  return -1;
}

const char *ep_kc_secret_value(const json_t *json) {
  const char *secret = json_string_value(json_object_get(json, "value"));
  size_t len = secret ? strnlen(secret, EP_KC_SECRET_MAX) : 0;
  return len > 0 && len < EP_KC_SECRET_MAX ? secret : NULL;
}

int ep_kc_location_id(const char *location, char id[EP_KC_INTERNAL_ID_MAX + 1]) {
  const char *slash = location ? strrchr(location, '/') : NULL;
  if (!slash || !ep_kc_internal_id_valid(slash + 1)) return -1;
  snprintf(id, EP_KC_INTERNAL_ID_MAX + 1, "%s", slash + 1);
  return 0;
}

bool ep_kc_jwks_valid(const json_t *json) { return json_is_array(json_object_get(json, "keys")); }

EVP_PKEY *ep_kc_jwks_key(const json_t *jwks, const char *kid) {
  size_t i;
  const json_t *jwk;
  if (!kid) return NULL;
  json_array_foreach(json_object_get(jwks, "keys"), i, jwk) {
    const char *k = json_string_value(json_object_get(jwk, "kid"));
    const char *use = json_string_value(json_object_get(jwk, "use"));
    if (k && strcmp(k, kid) == 0 && (!use || strcmp(use, "sig") == 0)) return ep_jwk_public_key(jwk);
  }
  return NULL;
}

/* Reads 1..18 digits and the '\n' after them from text[*at..len). */
static int read_seconds(const char *text, size_t len, size_t *at, int64_t *out) {
  int64_t v = 0;
  size_t start = *at;
  while (*at < len && text[*at] >= '0' && text[*at] <= '9' && *at - start < 18) v = v * 10 + (text[(*at)++] - '0');
  if (*at == start || *at >= len || text[*at] != '\n') return -1;
  (*at)++;
  *out = v;
  return 0;
}

int ep_kc_revocation_parse(const char *text, size_t len, int64_t *ret_revoked_at, int64_t *ret_recreated_at) {
  size_t at = 0;
  int64_t revoked = 0, recreated = 0;
  if (!text || len > EP_KC_REVOCATION_MAX || read_seconds(text, len, &at, &revoked) < 0 ||
      read_seconds(text, len, &at, &recreated) < 0 || at != len)
    return -1;
  *ret_revoked_at = revoked;
  *ret_recreated_at = recreated;
  return 0;
}

int ep_kc_revocation_format(char *out, size_t cap, int64_t revoked_at, int64_t recreated_at) {
  int n = snprintf(out, cap, "%lld\n%lld\n", (long long)(revoked_at < 0 ? 0 : revoked_at),
                   (long long)(recreated_at < 0 ? 0 : recreated_at));
  return n < 0 || (size_t)n >= cap ? -1 : n;
}
