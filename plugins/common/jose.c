/* plugins/common: JWS and JWT helpers, see jose.h. */
#define _POSIX_C_SOURCE 200809L /* strnlen */
#include "jose.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <string.h>

static const char b64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void ep_b64url_encode(const unsigned char *in, size_t len, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < len ? in[i + 2] : 0);
    out[o++] = b64url_alphabet[(v >> 18) & 63];
    out[o++] = b64url_alphabet[(v >> 12) & 63];
    if (i + 1 < len) out[o++] = b64url_alphabet[(v >> 6) & 63];
    if (i + 2 < len) out[o++] = b64url_alphabet[v & 63];
  }
  out[o] = '\0';
}

int ep_b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap, size_t *ret_len) {
  uint32_t acc = 0;
  int bits = 0;
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    const char *pos = in[i] ? strchr(b64url_alphabet, in[i]) : NULL;
    if (!pos) return -1;
    acc = acc << 6 | (uint32_t)(pos - b64url_alphabet);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (o >= cap) return -1;
      out[o++] = (unsigned char)(acc >> bits);
    }
  }
  *ret_len = o;
  return 0;
}

/* Decodes one base64url JSON object part of a token. */
static json_t *decode_part(const char *part, size_t len) {
  unsigned char text[EP_JOSE_TOKEN_MAX];
  size_t text_len = 0;
  if (ep_b64url_decode(part, len, text, sizeof text, &text_len) < 0) return NULL;
  json_error_t err;
  json_t *value = json_loadb((const char *)text, text_len, JSON_REJECT_DUPLICATES, &err);
  if (value && !json_is_object(value)) {
    json_decref(value);
    value = NULL;
  }
  return value;
}

int ep_jws_parse(ep_jws *jws, const char *token, const char **why) {
  memset(jws, 0, sizeof *jws);
  size_t len = token ? strnlen(token, EP_JOSE_TOKEN_MAX + 1) : 0;
  if (len == 0 || len > EP_JOSE_TOKEN_MAX) return *why = "token missing or too long", -1;
  const char *dot1 = memchr(token, '.', len);
  const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
  if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
    return *why = "token is not a JWS compact serialization", -1;
  jws->header = decode_part(token, (size_t)(dot1 - token));
  jws->payload = decode_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
  if (!jws->header || !jws->payload ||
      ep_b64url_decode(dot2 + 1, len - (size_t)(dot2 + 1 - token), jws->signature, sizeof jws->signature,
                       &jws->signature_len) < 0) {
    ep_jws_clear(jws);
    return *why = "token encoding is invalid", -1;
  }
  jws->signing_input = token;
  jws->signing_len = (size_t)(dot2 - token);
  return 0;
}

void ep_jws_clear(ep_jws *jws) {
  json_decref(jws->header);
  json_decref(jws->payload);
  memset(jws, 0, sizeof *jws);
}

/* ES256 signatures are raw r||s (64 bytes); OpenSSL wants DER. */
static unsigned char *es256_der(const unsigned char raw[64], int *ret_len) {
  ECDSA_SIG *sig = ECDSA_SIG_new();
  BIGNUM *r = BN_bin2bn(raw, 32, NULL), *s = BN_bin2bn(raw + 32, 32, NULL);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return NULL;
  }
  unsigned char *der = NULL;
  *ret_len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  return *ret_len > 0 ? der : NULL;
}

bool ep_jws_verify(const ep_jws *jws, EVP_PKEY *key) {
  const char *alg = json_string_value(json_object_get(jws->header, "alg"));
  if (!alg || !key) return false;
  const unsigned char *sig = jws->signature;
  size_t sig_len = jws->signature_len;
  unsigned char *der = NULL;
  if (strcmp(alg, "ES256") == 0) {
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC || EVP_PKEY_get_bits(key) != 256 || sig_len != 64) return false;
    int der_len = 0;
    if (!(der = es256_der(sig, &der_len))) return false;
    sig = der;
    sig_len = (size_t)der_len;
  } else if (strcmp(alg, "RS256") == 0) {
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA || EVP_PKEY_get_bits(key) < 2048) return false;
  } else {
    return false;
  }
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  bool ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
            EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)jws->signing_input, jws->signing_len) == 1;
  EVP_MD_CTX_free(md);
  OPENSSL_free(der);
  return ok;
}

int ep_jws_sign_es256(char *token, size_t cap, EVP_PKEY *key) {
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  unsigned char der[128], raw[64];
  size_t der_len = sizeof der;
  int ok = md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
           EVP_DigestSign(md, der, &der_len, (const unsigned char *)token, strlen(token)) == 1;
  EVP_MD_CTX_free(md);
  const unsigned char *p = der;
  ECDSA_SIG *sig = ok ? d2i_ECDSA_SIG(NULL, &p, (long)der_len) : NULL;
  ok = sig && BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32) == 32 && BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32) == 32;
  ECDSA_SIG_free(sig);
  size_t used = strlen(token);
  if (!ok || used + 2 + 86 > cap) return -1;
  token[used++] = '.';
  ep_b64url_encode(raw, sizeof raw, token + used);
  return 0;
}

/* A big-endian number from a base64url JWK member, or NULL. */
static BIGNUM *jwk_number(const json_t *jwk, const char *name, size_t max_bytes) {
  const char *text = json_string_value(json_object_get(jwk, name));
  unsigned char bytes[1024];
  size_t len = 0;
  if (!text || max_bytes > sizeof bytes || ep_b64url_decode(text, strlen(text), bytes, max_bytes, &len) < 0 || len == 0)
    return NULL;
  return BN_bin2bn(bytes, (int)len, NULL);
}

EVP_PKEY *ep_jwk_public_key(const json_t *jwk) {
  const char *kty = json_string_value(json_object_get(jwk, "kty"));
  if (!kty) return NULL;
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  BIGNUM *a = NULL, *b = NULL;
  unsigned char point[65];
  bool ok = bld != NULL;
  const char *type = NULL;
  if (ok && strcmp(kty, "EC") == 0) {
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    a = jwk_number(jwk, "x", 32);
    b = jwk_number(jwk, "y", 32);
    ok = crv && strcmp(crv, "P-256") == 0 && a && b && BN_bn2binpad(a, point + 1, 32) == 32 &&
         BN_bn2binpad(b, point + 33, 32) == 32;
    point[0] = 0x04; /* uncompressed */
    ok = ok && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
         OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point);
    type = "EC";
  } else if (ok && strcmp(kty, "RSA") == 0) {
    a = jwk_number(jwk, "n", 1024);
    b = jwk_number(jwk, "e", 8);
    ok = a && b && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, a) && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, b);
    type = "RSA";
  } else {
    ok = false;
  }
  OSSL_PARAM *params = ok ? OSSL_PARAM_BLD_to_param(bld) : NULL;
  EVP_PKEY_CTX *ctx = params ? EVP_PKEY_CTX_new_from_name(NULL, type, NULL) : NULL;
  EVP_PKEY *key = NULL;
  if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1) key = NULL;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_free(a);
  BN_free(b);
  return key;
}

json_t *ep_jwk_from_ec_key(EVP_PKEY *key, const char *kid) {
  BIGNUM *x = NULL, *y = NULL;
  unsigned char xb[32], yb[32];
  char x64[48], y64[48];
  int ok = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x) == 1 &&
           EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) == 1 && BN_bn2binpad(x, xb, 32) == 32 &&
           BN_bn2binpad(y, yb, 32) == 32;
  BN_free(x);
  BN_free(y);
  if (!ok) return NULL;
  ep_b64url_encode(xb, 32, x64);
  ep_b64url_encode(yb, 32, y64);
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256", "alg", "ES256", "use", "sig",
                   "kid", kid, "x", x64, "y", y64);
}

static bool audience_matches(const json_t *aud, const char *audience) {
  if (json_is_string(aud)) return strcmp(json_string_value(aud), audience) == 0;
  size_t i;
  const json_t *item;
  json_array_foreach(aud, i, item) if (json_is_string(item) && strcmp(json_string_value(item), audience) == 0) return true;
  return false;
}

int ep_jwt_check_claims(const json_t *payload, const char *issuer, const char *audience, int64_t now, const char **why) {
  const char *iss = json_string_value(json_object_get(payload, "iss"));
  const json_t *exp = json_object_get(payload, "exp");
  if (!iss || strcmp(iss, issuer) != 0) return *why = "token: wrong issuer", -1;
  if (!audience || !audience_matches(json_object_get(payload, "aud"), audience)) return *why = "token: wrong audience", -1;
  if (!json_is_integer(exp) || (int64_t)json_integer_value(exp) <= now) return *why = "token: expired", -1;
  return 0;
}
