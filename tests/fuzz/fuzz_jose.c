/* Fuzzes what identity plugins read from the network (plugins/common/jose.c): bearer tokens
 * (JWS compact form, their JSON header and claims) and JWKs from a key set. A token that
 * parses must have a signing input inside it; no key may verify garbage. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jose.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static EVP_PKEY *ec_key;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!ec_key) ec_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  ep_jws jws;
  const char *why = NULL;
  if (ep_jws_parse(&jws, text, &why) == 0) {
    if (jws.signing_len >= strlen(text) || jws.signing_input != text) abort();
    if (ep_jws_verify(&jws, ec_key)) abort(); /* nobody but us holds this key */
    ep_jwt_check_claims(jws.payload, "issuer", "edgeprov", 0, &why);
    ep_jws_clear(&jws);
  }
  json_error_t err;
  json_t *jwk = json_loads(text, 0, &err);
  EVP_PKEY *key = jwk ? ep_jwk_public_key(jwk) : NULL;
  EVP_PKEY_free(key);
  json_decref(jwk);
  unsigned char out[256];
  size_t out_len = 0;
  if (ep_b64url_decode(text, size, out, sizeof out, &out_len) == 0 && out_len > sizeof out) abort();
  free(text);
  return 0;
}
