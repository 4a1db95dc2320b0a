/* base: TPM2_MakeCredential in software, see tpm_credential.h. */
#include "base/tpm_credential.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <tss2/tss2_mu.h>

#include "base/error.h"

#define SHA256_LEN 32
#define EK_SEED_LEN SHA256_LEN   /* the seed's size: the EK's name algorithm's digest */
#define EK_AES_KEY_BITS 128
#define EK_RSA_BITS 2048
#define EK_FILE_MAX (64u << 10) /* an EK file: a PEM key or certificate */

/* The label of the seed's encryption to an EK (Part 1, "Protected Storage": "IDENTITY" and its
 * terminating zero). */
static const char identity_label[] = "IDENTITY";

/* Unmarshals a TPM2B_PUBLIC that must fill data exactly. */
static int parse_public(TPM2B_PUBLIC *out, const uint8_t *data, size_t len, const char *field) {
  if (len == 0) return ep_error_set(EP_EINVAL, "%s: empty (a marshalled TPM2B_PUBLIC is expected)", field);
  if (len > EP_TPM_PUBLIC_MAX) return ep_error_set(EP_EINVAL, "%s: %zu bytes, at most %d", field, len, EP_TPM_PUBLIC_MAX);
  size_t offset = 0;
  memset(out, 0, sizeof *out);
  if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(data, len, &offset, out) != TSS2_RC_SUCCESS || offset != len)
    return ep_error_set(EP_EINVAL, "%s: not a marshalled TPM2B_PUBLIC", field);
  return 0;
}

/* The RSA public key of an RSA public area (exponent 0 means 65537). */
static int rsa_key(EVP_PKEY **out, const TPMT_PUBLIC *area, const char *field) {
  const TPM2B_PUBLIC_KEY_RSA *modulus = &area->unique.rsa;
  uint32_t exponent = area->parameters.rsaDetail.exponent ? area->parameters.rsaDetail.exponent : 65537;
  BIGNUM *n = BN_bin2bn(modulus->buffer, modulus->size, NULL), *e = BN_new();
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM *params = NULL;
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
  EVP_PKEY *key = NULL;
  bool ok = n && e && bld && ctx && BN_set_word(e, exponent) && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) && (params = OSSL_PARAM_BLD_to_param(bld)) &&
            EVP_PKEY_fromdata_init(ctx) > 0 && EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) > 0;
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  EVP_PKEY_CTX_free(ctx);
  BN_free(n);
  BN_free(e);
  if (!ok) {
    EVP_PKEY_free(key);
    return ep_error_set(EP_EINVAL, "%s: its RSA public key is not usable", field);
  }
  *out = key;
  return 0;
}

/* Checks area is an EK of the default RSA 2048 template (TCG EK Credential Profile, template
 * L-1): what MakeCredential below assumes. */
static int check_ek_area(const TPMT_PUBLIC *area, const char *field) {
  const TPMA_OBJECT want = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
  if (area->type != TPM2_ALG_RSA) return ep_error_set(EP_EINVAL, "%s: not an RSA key (only RSA 2048 EKs are taken)", field);
  if (area->nameAlg != TPM2_ALG_SHA256) return ep_error_set(EP_EINVAL, "%s: its name algorithm is not SHA-256", field);
  if ((area->objectAttributes & want) != want || (area->objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT))
    return ep_error_set(EP_EINVAL, "%s: not a restricted decryption key (an endorsement key is one)", field);
  const TPMT_SYM_DEF_OBJECT *sym = &area->parameters.rsaDetail.symmetric;
  if (sym->algorithm != TPM2_ALG_AES || sym->keyBits.aes != EK_AES_KEY_BITS || sym->mode.aes != TPM2_ALG_CFB)
    return ep_error_set(EP_EINVAL, "%s: its symmetric algorithm is not AES-128-CFB (the default EK template's)", field);
  if (area->parameters.rsaDetail.keyBits != EK_RSA_BITS || area->unique.rsa.size != EK_RSA_BITS / 8)
    return ep_error_set(EP_EINVAL, "%s: not an RSA 2048 key", field);
  /* What a TPM makes: the default exponent, a modulus of full length, odd (a product of primes). */
  uint32_t exponent = area->parameters.rsaDetail.exponent;
  const uint8_t *modulus = area->unique.rsa.buffer;
  if ((exponent != 0 && exponent != 65537) || !(modulus[0] & 0x80) || !(modulus[EK_RSA_BITS / 8 - 1] & 1))
    return ep_error_set(EP_EINVAL, "%s: not an RSA key a TPM makes (exponent 65537, a full-length odd modulus)", field);
  return 0;
}

static int ek_from_key(ep_tpm_ek *out, EVP_PKEY *key, const char *what) {
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA || EVP_PKEY_get_bits(key) != EK_RSA_BITS)
    return ep_error_set(EP_EINVAL, "%s: not an RSA 2048 key (only RSA 2048 endorsement keys are taken)", what);
  int len = i2d_PUBKEY(key, NULL);
  if (len <= 0 || (size_t)len > sizeof out->der) return ep_error_set(EP_EINVAL, "%s: the public key cannot be encoded", what);
  unsigned char *p = out->der;
  i2d_PUBKEY(key, &p);
  out->der_len = (size_t)len;
  return 0;
}

static int ek_from_public(ep_tpm_ek *out, const uint8_t *data, size_t len, const char *field) {
  TPM2B_PUBLIC pub;
  int r = parse_public(&pub, data, len, field);
  if (r == 0) r = check_ek_area(&pub.publicArea, field);
  EVP_PKEY *key = NULL;
  if (r == 0) r = rsa_key(&key, &pub.publicArea, field);
  if (r == 0) r = ek_from_key(out, key, field);
  EVP_PKEY_free(key);
  return r;
}

static int ak_name_of_public(uint8_t name[EP_TPM_NAME_MAX], size_t *name_len, const uint8_t *data, size_t len, const char *field) {
  TPM2B_PUBLIC pub;
  int r = parse_public(&pub, data, len, field);
  if (r < 0) return r;
  const TPMT_PUBLIC *area = &pub.publicArea;
  const TPMA_OBJECT want = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                           TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;
  if (area->type != TPM2_ALG_RSA && area->type != TPM2_ALG_ECC)
    return ep_error_set(EP_EINVAL, "%s: not an RSA or ECC key", field);
  if (area->nameAlg != TPM2_ALG_SHA256) return ep_error_set(EP_EINVAL, "%s: its name algorithm is not SHA-256", field);
  if ((area->objectAttributes & want) != want || (area->objectAttributes & TPMA_OBJECT_DECRYPT))
    return ep_error_set(EP_EINVAL,
                        "%s: not an attestation key (a restricted signing key made in the TPM and bound to it)", field);
  uint8_t marshalled[sizeof(TPMT_PUBLIC)];
  size_t offset = 0;
  if (Tss2_MU_TPMT_PUBLIC_Marshal(area, marshalled, sizeof marshalled, &offset) != TSS2_RC_SUCCESS)
    return ep_error_set(EP_EINVAL, "%s: its public area cannot be marshalled again", field);
  name[0] = (uint8_t)(TPM2_ALG_SHA256 >> 8);
  name[1] = (uint8_t)(TPM2_ALG_SHA256 & 0xff);
  unsigned int digest_len = 0;
  if (!EVP_Digest(marshalled, offset, name + 2, &digest_len, EVP_sha256(), NULL))
    return ep_error_set(EP_EIO, "%s: SHA-256 failed", field);
  *name_len = 2 + digest_len;
  return 0;
}

static int ek_from_bytes(ep_tpm_ek *out, const uint8_t *data, size_t len, const char *what) {
  if (len > EK_FILE_MAX) return ep_error_set(EP_EINVAL, "%s: %zu bytes, at most %u: not an EK", what, len, EK_FILE_MAX);
  BIO *bio = BIO_new_mem_buf(data, (int)len);
  if (!bio) return ep_error_set(EP_ENOMEM, "out of memory");
  EVP_PKEY *key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
  X509 *cert = NULL;
  if (!key && BIO_reset(bio) == 1) cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
  if (!key && !cert) {
    const unsigned char *p = data;
    cert = d2i_X509(NULL, &p, (long)len);
  }
  if (!key && cert) key = X509_get_pubkey(cert);
  if (!key && !cert) {
    const unsigned char *p = data;
    key = d2i_PUBKEY(NULL, &p, (long)len);
  }
  BIO_free(bio);
  X509_free(cert);
  int r = key ? ek_from_key(out, key, what)
              : ep_error_set(EP_EINVAL,
                             "%s: neither a PEM public key (tpm2_createek -f pem) nor an EK certificate (PEM or DER)", what);
  EVP_PKEY_free(key);
  return r;
}

int ep_tpm_ek_from_file(ep_tpm_ek *out, const char *path) {
  FILE *f = fopen(path, "rb"); /* PEM or DER: read as bytes */
  if (!f) return ep_error_set(EP_ENOENT, "%s: cannot open: %s", path, strerror(errno));
  uint8_t *data = malloc(EK_FILE_MAX + 1);
  size_t len = data ? fread(data, 1, EK_FILE_MAX + 1, f) : 0;
  bool failed = ferror(f);
  fclose(f);
  int r = !data                ? ep_error_set(EP_ENOMEM, "out of memory")
          : failed             ? ep_error_set(EP_EIO, "%s: cannot read", path)
          : len > EK_FILE_MAX  ? ep_error_set(EP_EINVAL, "%s: larger than %u bytes: not an EK", path, EK_FILE_MAX)
                               : ep_tpm_ek_from_bytes(out, data, len, path);
  free(data);
  return r;
}

void ep_tpm_ek_fingerprint(char out[EP_TPM_FINGERPRINT_LEN + 1], const uint8_t *der, size_t der_len) {
  uint8_t digest[SHA256_LEN];
  unsigned int digest_len = 0;
  EVP_Digest(der, der_len, digest, &digest_len, EVP_sha256(), NULL);
  int n = snprintf(out, EP_TPM_FINGERPRINT_LEN + 1, "sha256:");
  for (unsigned i = 0; i < digest_len && i < SHA256_LEN; i++) n += snprintf(out + n, EP_TPM_FINGERPRINT_LEN + 1 - n, "%02x", digest[i]);
}

/* KDFa (Part 1, "Key Derivation Function"): SP 800-108 counter mode with HMAC-SHA-256, the
 * label followed by a zero byte, the context, and the length in bits; OpenSSL's KBKDF builds
 * exactly that input (its separator and length fields are on by default). */
static int kdfa(uint8_t *out, size_t out_len, const uint8_t *key, size_t key_len, const char *label,
                const uint8_t *context, size_t context_len) {
  EVP_KDF *kdf = EVP_KDF_fetch(NULL, "KBKDF", NULL);
  EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
  OSSL_PARAM params[7], *p = params;
  *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, "COUNTER", 0);
  *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, "HMAC", 0);
  *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0);
  *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, key_len);
  *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)label, strlen(label));
  if (context_len) *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)context, context_len);
  *p = OSSL_PARAM_construct_end();
  int ok = ctx && EVP_KDF_derive(ctx, out, out_len, params) > 0;
  EVP_KDF_CTX_free(ctx);
  EVP_KDF_free(kdf);
  return ok ? 0 : ep_error_set(EP_EIO, "KDFa (%s) failed", label);
}

/* RSA-OAEP (SHA-256) of seed to the EK with the label "IDENTITY". */
static int encrypt_seed(uint8_t *out, size_t *out_len, EVP_PKEY *ek, const uint8_t *seed, size_t seed_len) {
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(ek, NULL);
  unsigned char *label = OPENSSL_malloc(sizeof identity_label); /* the context takes it */
  bool ok = ctx && label && EVP_PKEY_encrypt_init(ctx) > 0 && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) > 0 &&
            EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) > 0 && EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) > 0;
  if (ok) {
    memcpy(label, identity_label, sizeof identity_label);
    ok = EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, label, sizeof identity_label) > 0;
    if (ok) label = NULL;
  }
  ok = ok && EVP_PKEY_encrypt(ctx, out, out_len, seed, seed_len) > 0;
  OPENSSL_free(label);
  EVP_PKEY_CTX_free(ctx);
  return ok ? 0 : ep_error_set(EP_EIO, "the seed's encryption to the EK failed");
}

static int make_credential(const uint8_t *ek_public, size_t ek_public_len, const uint8_t *name, size_t name_len,
                           const uint8_t *secret, size_t secret_len, uint8_t **ret_blob, size_t *ret_blob_len,
                           uint8_t **ret_encrypted_seed, size_t *ret_encrypted_seed_len) {
  if (secret_len == 0 || secret_len > SHA256_LEN) return ep_error_set(EP_EINVAL, "secret: 1 to %d bytes", SHA256_LEN);
  if (name_len < 2 || name_len > EP_TPM_NAME_MAX) return ep_error_set(EP_EINVAL, "name: 2 to %d bytes", EP_TPM_NAME_MAX);
  TPM2B_PUBLIC ek;
  int r = parse_public(&ek, ek_public, ek_public_len, "ek_public");
  if (r == 0) r = check_ek_area(&ek.publicArea, "ek_public");
  EVP_PKEY *key = NULL;
  if (r == 0) r = rsa_key(&key, &ek.publicArea, "ek_public");
  if (r < 0) return r;

  uint8_t seed[EK_SEED_LEN], sym_key[EK_AES_KEY_BITS / 8], hmac_key[SHA256_LEN];
  TPM2B_ENCRYPTED_SECRET encrypted = {.size = 0};
  size_t encrypted_len = sizeof encrypted.secret;
  r = RAND_bytes(seed, sizeof seed) == 1 ? 0 : ep_error_set(EP_EIO, "no random bytes for the seed");
  if (r == 0) r = encrypt_seed(encrypted.secret, &encrypted_len, key, seed, sizeof seed);
  EVP_PKEY_free(key);
  if (r == 0) r = kdfa(sym_key, sizeof sym_key, seed, sizeof seed, "STORAGE", name, name_len);
  if (r == 0) r = kdfa(hmac_key, sizeof hmac_key, seed, sizeof seed, "INTEGRITY", NULL, 0);

  /* The credential (a TPM2B_DIGEST, marshalled) under AES-128-CFB with a zero IV, then the
   * outer HMAC over that and the object's name. The ID object: the HMAC as a TPM2B, then the
   * encrypted credential. */
  TPM2B_ID_OBJECT id = {.size = 0};
  uint8_t plain[2 + SHA256_LEN], iv[16] = {0};
  size_t plain_len = 2 + secret_len;
  plain[0] = (uint8_t)(secret_len >> 8);
  plain[1] = (uint8_t)secret_len;
  memcpy(plain + 2, secret, secret_len);
  uint8_t *hmac_out = id.credential + 2, *encrypted_identity = id.credential + 2 + SHA256_LEN;
  if (r == 0) {
    EVP_CIPHER_CTX *cipher = EVP_CIPHER_CTX_new();
    int out_len = 0, final_len = 0;
    bool ok = cipher && EVP_EncryptInit_ex(cipher, EVP_aes_128_cfb128(), NULL, sym_key, iv) == 1 &&
              EVP_EncryptUpdate(cipher, encrypted_identity, &out_len, plain, (int)plain_len) == 1 &&
              EVP_EncryptFinal_ex(cipher, encrypted_identity + out_len, &final_len) == 1 &&
              (size_t)(out_len + final_len) == plain_len;
    EVP_CIPHER_CTX_free(cipher);
    uint8_t hmac_input[2 + SHA256_LEN + EP_TPM_NAME_MAX];
    memcpy(hmac_input, encrypted_identity, plain_len);
    memcpy(hmac_input + plain_len, name, name_len);
    unsigned int hmac_len = 0;
    ok = ok && HMAC(EVP_sha256(), hmac_key, sizeof hmac_key, hmac_input, plain_len + name_len, hmac_out, &hmac_len) &&
         hmac_len == SHA256_LEN;
    if (!ok) r = ep_error_set(EP_EIO, "the credential's encryption failed");
    id.credential[0] = 0;
    id.credential[1] = SHA256_LEN;
    id.size = (UINT16)(2 + SHA256_LEN + plain_len);
    encrypted.size = (UINT16)encrypted_len;
  }
  OPENSSL_cleanse(seed, sizeof seed);
  OPENSSL_cleanse(sym_key, sizeof sym_key);
  OPENSSL_cleanse(hmac_key, sizeof hmac_key);
  OPENSSL_cleanse(plain, sizeof plain);
  if (r < 0) return r;

  uint8_t *blob = malloc(sizeof id), *seed_out = malloc(sizeof encrypted);
  size_t blob_len = 0, seed_out_len = 0;
  if (!blob || !seed_out || Tss2_MU_TPM2B_ID_OBJECT_Marshal(&id, blob, sizeof id, &blob_len) != TSS2_RC_SUCCESS ||
      Tss2_MU_TPM2B_ENCRYPTED_SECRET_Marshal(&encrypted, seed_out, sizeof encrypted, &seed_out_len) != TSS2_RC_SUCCESS) {
    free(blob);
    free(seed_out);
    return ep_error_set(EP_ENOMEM, "out of memory");
  }
  *ret_blob = blob;
  *ret_blob_len = blob_len;
  *ret_encrypted_seed = seed_out;
  *ret_encrypted_seed_len = seed_out_len;
  return 0;
}

/* ---- the entry points: OpenSSL's error queue is left as it was found ----------------------- */
/* Failed parses (a DER key tried as PEM first, a malformed key from a node) queue OpenSSL
 * errors on the calling thread; left there, a later TLS call on that thread (a gRPC worker)
 * would take them for its own. Everything queued here is dropped. */

int ep_tpm_ek_from_public(ep_tpm_ek *out, const uint8_t *data, size_t len, const char *field) {
  ERR_set_mark();
  int r = ek_from_public(out, data, len, field);
  ERR_pop_to_mark();
  return r;
}

int ep_tpm_ak_name(uint8_t name[EP_TPM_NAME_MAX], size_t *name_len, const uint8_t *data, size_t len, const char *field) {
  ERR_set_mark();
  int r = ak_name_of_public(name, name_len, data, len, field);
  ERR_pop_to_mark();
  return r;
}

int ep_tpm_ek_from_bytes(ep_tpm_ek *out, const uint8_t *data, size_t len, const char *what) {
  ERR_set_mark();
  int r = ek_from_bytes(out, data, len, what);
  ERR_pop_to_mark();
  return r;
}

int ep_tpm_make_credential(const uint8_t *ek_public, size_t ek_public_len, const uint8_t *name, size_t name_len,
                           const uint8_t *secret, size_t secret_len, uint8_t **ret_blob, size_t *ret_blob_len,
                           uint8_t **ret_encrypted_seed, size_t *ret_encrypted_seed_len) {
  ERR_set_mark();
  int r = make_credential(ek_public, ek_public_len, name, name_len, secret, secret_len, ret_blob,
                                          ret_blob_len, ret_encrypted_seed, ret_encrypted_seed_len);
  ERR_pop_to_mark();
  return r;
}
