/* plugins/common: JSON Web Signature and Token helpers (RFC 7515, 7517, 7519) shared by the
 * identity plugins: base64url, JWS compact parsing, ES256/RS256 signatures, JWK public keys
 * and the registered claims. Linked statically into each plugin (hidden symbols). Not part
 * of the SDK: plugins include it from the source tree. */
#ifndef EP_PLUGINS_JOSE_H
#define EP_PLUGINS_JOSE_H

#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EP_JOSE_TOKEN_MAX 8192 /* longest token accepted */

/* Writes the unpadded base64url form of in (4 * ceil(len / 3) + 1 bytes at most) into out. */
void ep_b64url_encode(const unsigned char *in, size_t len, char *out);

/* Decodes unpadded base64url; returns 0, or -1 on a bad character or when cap is too small. */
int ep_b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap, size_t *ret_len);

/* A parsed JWS compact serialization. header and payload are JSON objects owned by it. */
typedef struct ep_jws {
  json_t *header;
  json_t *payload;
  const char *signing_input; /* the token itself: "header.payload" is its first signing_len bytes */
  size_t signing_len;
  unsigned char signature[512];
  size_t signature_len;
} ep_jws;

/* Parses token (bounded by EP_JOSE_TOKEN_MAX). Returns 0, or -1 with a reason in *why. The
 * token must outlive jws; free with ep_jws_clear. */
int ep_jws_parse(ep_jws *jws, const char *token, const char **why);
void ep_jws_clear(ep_jws *jws);

/* Checks the signature with key for the header's alg, which must be ES256 (P-256 key) or
 * RS256 (RSA key of at least 2048 bits). */
bool ep_jws_verify(const ep_jws *jws, EVP_PKEY *key);

/* Signs "header.payload" with an EC P-256 key (ES256) and appends ".signature" to token
 * (a NUL-terminated string in a buffer of cap bytes). Returns 0 or -1. */
int ep_jws_sign_es256(char *token, size_t cap, EVP_PKEY *key);

/* The public key of a JWK (kty EC with crv P-256, or kty RSA), or NULL. Caller frees. */
EVP_PKEY *ep_jwk_public_key(const json_t *jwk);

/* The JWK (kty EC, P-256) of an EC key as a new JSON object with kid, or NULL. */
json_t *ep_jwk_from_ec_key(EVP_PKEY *key, const char *kid);

/* Checks the registered claims: iss equals issuer, aud equals audience or is an array
 * holding it, exp is after now. Returns 0, or -1 with the reason in *why. */
int ep_jwt_check_claims(const json_t *payload, const char *issuer, const char *audience, int64_t now, const char **why);

#endif
