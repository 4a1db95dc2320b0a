/* Unit tests of core/lib/base/tpm_credential.c: TPM2_MakeCredential in software, checked
 * against an independent activation written here from the TPM 2.0 specification (Part 1,
 * "Credential Protection": RSA-OAEP of the seed with the label "IDENTITY", KDFa by hand as
 * HMAC-SHA-256 in counter mode, the outer HMAC, AES-128-CFB) and against tpm2-tools'
 * tpm2_makecredential (--tcti none: its own software implementation), whose output the same
 * activation must open. The real TPM's activation of our credentials is
 * tests/integration/tpm_identity.sh's (swtpm). Also: what EKs, AKs and EK files are taken. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <tss2/tss2_mu.h>

#include "base/error.h"
#include "base/tpm_credential.h"

static EVP_PKEY *ek_key; /* the software "TPM"'s endorsement key, RSA 2048 */
static char tmpdir[] = "/tmp/test_tpm_credential.XXXXXX";

/* The EK's public area as a TPM gives it (the default template L-1), marshalled. */
static size_t ek_public(uint8_t *out, size_t size, TPMA_OBJECT attributes, uint16_t aes_bits) {
  TPM2B_PUBLIC pub = {0};
  pub.publicArea.type = TPM2_ALG_RSA;
  pub.publicArea.nameAlg = TPM2_ALG_SHA256;
  pub.publicArea.objectAttributes = attributes;
  pub.publicArea.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
  pub.publicArea.parameters.rsaDetail.symmetric.keyBits.aes = aes_bits;
  pub.publicArea.parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
  pub.publicArea.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
  pub.publicArea.parameters.rsaDetail.keyBits = 2048;
  BIGNUM *n = NULL;
  assert_int_equal(EVP_PKEY_get_bn_param(ek_key, "n", &n), 1);
  pub.publicArea.unique.rsa.size = (UINT16)BN_bn2binpad(n, pub.publicArea.unique.rsa.buffer, 256);
  BN_free(n);
  size_t len = 0;
  assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, out, size, &len), TSS2_RC_SUCCESS);
  return len;
}

#define EK_ATTRIBUTES                                                                                              \
  (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_ADMINWITHPOLICY | \
   TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)
#define AK_ATTRIBUTES                                                                                            \
  (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH | \
   TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT)

/* An ECC P-256 attestation key's public area (the point is arbitrary bytes: only its name counts). */
static size_t ak_public(uint8_t *out, size_t size, TPMA_OBJECT attributes, TPMT_PUBLIC *area) {
  TPM2B_PUBLIC pub = {0};
  pub.publicArea.type = TPM2_ALG_ECC;
  pub.publicArea.nameAlg = TPM2_ALG_SHA256;
  pub.publicArea.objectAttributes = attributes;
  pub.publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
  pub.publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
  pub.publicArea.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
  pub.publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
  pub.publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
  pub.publicArea.unique.ecc.x.size = pub.publicArea.unique.ecc.y.size = 32;
  for (int i = 0; i < 32; i++) pub.publicArea.unique.ecc.x.buffer[i] = pub.publicArea.unique.ecc.y.buffer[i] = (uint8_t)i;
  if (area) *area = pub.publicArea;
  size_t len = 0;
  assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, out, size, &len), TSS2_RC_SUCCESS);
  return len;
}

/* KDFa (Part 1, 11.4.10.2), written out: HMAC(key, [i]32 || label || 0x00 || context || [bits]32)
 * for i = 1, 2, ..., the output's first bits/8 bytes. */
static void kdfa_by_hand(uint8_t *out, size_t out_len, const uint8_t *key, size_t key_len, const char *label,
                         const uint8_t *context, size_t context_len) {
  uint8_t input[512];
  for (uint32_t i = 1, done = 0; done < out_len; i++) {
    size_t n = 0;
    uint32_t bits = (uint32_t)out_len * 8;
    input[n++] = (uint8_t)(i >> 24), input[n++] = (uint8_t)(i >> 16), input[n++] = (uint8_t)(i >> 8), input[n++] = (uint8_t)i;
    memcpy(input + n, label, strlen(label) + 1);
    n += strlen(label) + 1;
    if (context_len) memcpy(input + n, context, context_len); /* (none for "INTEGRITY") */
    n += context_len;
    input[n++] = (uint8_t)(bits >> 24), input[n++] = (uint8_t)(bits >> 16), input[n++] = (uint8_t)(bits >> 8), input[n++] = (uint8_t)bits;
    uint8_t block[32];
    unsigned int block_len = 0;
    HMAC(EVP_sha256(), key, (int)key_len, input, n, block, &block_len);
    size_t take = out_len - done < 32 ? out_len - done : 32;
    memcpy(out + done, block, take);
    done += (uint32_t)take;
  }
}

/* TPM2_ActivateCredential as the TPM does it, with the EK's private key. Returns the secret's
 * length, or -1 when the credential does not open (the integrity HMAC fails). */
static int activate(const uint8_t *name, size_t name_len, const uint8_t *blob, size_t blob_len, const uint8_t *seed_in,
                    size_t seed_in_len, uint8_t *secret) {
  TPM2B_ID_OBJECT id = {0};
  TPM2B_ENCRYPTED_SECRET encrypted = {0};
  size_t off = 0;
  assert_int_equal(Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(blob, blob_len, &off, &id), TSS2_RC_SUCCESS);
  assert_int_equal(off, blob_len);
  off = 0;
  assert_int_equal(Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(seed_in, seed_in_len, &off, &encrypted), TSS2_RC_SUCCESS);
  assert_int_equal(off, seed_in_len);

  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(ek_key, NULL);
  assert_non_null(ctx);
  assert_int_equal(EVP_PKEY_decrypt_init(ctx), 1);
  EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING);
  EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256());
  EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256());
  unsigned char *label = OPENSSL_malloc(9);
  memcpy(label, "IDENTITY", 9); /* with its terminating zero */
  EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, label, 9);
  uint8_t seed[256];
  size_t seed_len = sizeof seed;
  int decrypted = EVP_PKEY_decrypt(ctx, seed, &seed_len, encrypted.secret, encrypted.size);
  EVP_PKEY_CTX_free(ctx);
  if (decrypted != 1) return -1;

  uint8_t hmac_key[32], sym_key[16];
  kdfa_by_hand(hmac_key, sizeof hmac_key, seed, seed_len, "INTEGRITY", NULL, 0);
  kdfa_by_hand(sym_key, sizeof sym_key, seed, seed_len, "STORAGE", name, name_len);
  uint16_t hmac_size = (uint16_t)(id.credential[0] << 8 | id.credential[1]);
  assert_int_equal(hmac_size, 32);
  const uint8_t *outer_hmac = id.credential + 2, *enc_identity = id.credential + 2 + hmac_size;
  size_t enc_len = id.size - 2 - hmac_size;
  uint8_t hmac_input[256], hmac[32];
  unsigned int hmac_len = 0;
  memcpy(hmac_input, enc_identity, enc_len);
  memcpy(hmac_input + enc_len, name, name_len);
  HMAC(EVP_sha256(), hmac_key, sizeof hmac_key, hmac_input, enc_len + name_len, hmac, &hmac_len);
  if (memcmp(hmac, outer_hmac, 32) != 0) return -1;

  uint8_t plain[128], iv[16] = {0};
  int plain_len = 0, final_len = 0;
  EVP_CIPHER_CTX *cipher = EVP_CIPHER_CTX_new();
  assert_int_equal(EVP_DecryptInit_ex(cipher, EVP_aes_128_cfb128(), NULL, sym_key, iv), 1);
  assert_int_equal(EVP_DecryptUpdate(cipher, plain, &plain_len, enc_identity, (int)enc_len), 1);
  assert_int_equal(EVP_DecryptFinal_ex(cipher, plain + plain_len, &final_len), 1);
  EVP_CIPHER_CTX_free(cipher);
  int secret_len = plain[0] << 8 | plain[1];
  assert_int_equal(secret_len + 2, plain_len + final_len);
  memcpy(secret, plain + 2, (size_t)secret_len);
  return secret_len;
}

static void ak_name_of(uint8_t *name, size_t *name_len) {
  uint8_t ak[EP_TPM_PUBLIC_MAX];
  size_t ak_len = ak_public(ak, sizeof ak, AK_ATTRIBUTES, NULL);
  assert_int_equal(ep_tpm_ak_name(name, name_len, ak, ak_len, "tpm.ak_public"), 0);
}

static void our_credential_opens_with_the_ek_only(void **state) {
  (void)state;
  uint8_t ek[EP_TPM_PUBLIC_MAX], name[EP_TPM_NAME_MAX], secret[EP_TPM_SECRET_LEN], opened[64];
  size_t ek_len = ek_public(ek, sizeof ek, EK_ATTRIBUTES, 128), name_len = 0;
  ak_name_of(name, &name_len);
  RAND_bytes(secret, sizeof secret);
  uint8_t *blob = NULL, *seed = NULL;
  size_t blob_len = 0, seed_len = 0;
  assert_int_equal(ep_tpm_make_credential(ek, ek_len, name, name_len, secret, sizeof secret, &blob, &blob_len, &seed, &seed_len), 0);
  assert_int_equal(seed_len, 2 + 256);
  assert_int_equal(activate(name, name_len, blob, blob_len, seed, seed_len, opened), (int)sizeof secret);
  assert_memory_equal(opened, secret, sizeof secret);
  /* Bound to the object's name: another AK's name does not open it. */
  uint8_t other[EP_TPM_NAME_MAX];
  memcpy(other, name, name_len);
  other[name_len - 1] ^= 1;
  assert_int_equal(activate(other, name_len, blob, blob_len, seed, seed_len, opened), -1);
  /* One bit changed in the encrypted credential: the integrity check refuses it. */
  blob[blob_len - 1] ^= 1;
  assert_int_equal(activate(name, name_len, blob, blob_len, seed, seed_len, opened), -1);
  free(blob);
  free(seed);
  /* Two credentials of the same secret differ (a fresh seed each). */
  uint8_t *blob2 = NULL, *seed2 = NULL, *blob3 = NULL, *seed3 = NULL;
  assert_int_equal(ep_tpm_make_credential(ek, ek_len, name, name_len, secret, sizeof secret, &blob2, &blob_len, &seed2, &seed_len), 0);
  assert_int_equal(ep_tpm_make_credential(ek, ek_len, name, name_len, secret, sizeof secret, &blob3, &blob_len, &seed3, &seed_len), 0);
  assert_memory_not_equal(seed2, seed3, seed_len);
  free(blob2), free(seed2), free(blob3), free(seed3);
}

static void tpm2_makecredential_output_opens_the_same_way(void **state) {
  (void)state;
  char pem[256], secret_file[256], out[256], command[1400], name_hex[2 * EP_TPM_NAME_MAX + 1];
  snprintf(pem, sizeof pem, "%s/ek.pem", tmpdir);
  snprintf(secret_file, sizeof secret_file, "%s/secret", tmpdir);
  snprintf(out, sizeof out, "%s/credential", tmpdir);
  FILE *f = fopen(pem, "w");
  assert_non_null(f);
  PEM_write_PUBKEY(f, ek_key);
  fclose(f);
  uint8_t secret[EP_TPM_SECRET_LEN], name[EP_TPM_NAME_MAX], opened[64];
  size_t name_len = 0;
  RAND_bytes(secret, sizeof secret);
  f = fopen(secret_file, "w");
  fwrite(secret, 1, sizeof secret, f);
  fclose(f);
  ak_name_of(name, &name_len);
  for (size_t i = 0; i < name_len; i++) snprintf(name_hex + 2 * i, 3, "%02x", name[i]);
  snprintf(command, sizeof command, "tpm2_makecredential --tcti none -G rsa -u %s -s %s -n %s -o %s >/dev/null 2>&1", pem,
           secret_file, name_hex, out);
  assert_int_equal(system(command), 0); /* tpm2-tools: scripts/install-deps.sh */
  /* Its file: magic 0xBADCC0DE, version 1, then the TPM2B_ID_OBJECT and the TPM2B_ENCRYPTED_SECRET. */
  uint8_t file[2048];
  f = fopen(out, "rb");
  assert_non_null(f);
  size_t len = fread(file, 1, sizeof file, f);
  fclose(f);
  assert_true(len > 8);
  assert_memory_equal(file, "\xba\xdc\xc0\xde\x00\x00\x00\x01", 8);
  size_t blob_len = 2 + (size_t)(file[8] << 8 | file[9]);
  assert_true(8 + blob_len < len);
  assert_int_equal(activate(name, name_len, file + 8, blob_len, file + 8 + blob_len, len - 8 - blob_len, opened),
                   (int)sizeof secret);
  assert_memory_equal(opened, secret, sizeof secret);
  /* And ours has the very same layout and sizes. */
  uint8_t ek[EP_TPM_PUBLIC_MAX], *blob = NULL, *seed = NULL;
  size_t ek_len = ek_public(ek, sizeof ek, EK_ATTRIBUTES, 128), our_blob_len = 0, seed_len = 0;
  assert_int_equal(ep_tpm_make_credential(ek, ek_len, name, name_len, secret, sizeof secret, &blob, &our_blob_len, &seed, &seed_len), 0);
  assert_int_equal(our_blob_len, blob_len);
  assert_int_equal(seed_len, len - 8 - blob_len);
  free(blob);
  free(seed);
}

static void the_ak_name_is_the_digest_of_its_public_area(void **state) {
  (void)state;
  uint8_t ak[EP_TPM_PUBLIC_MAX], name[EP_TPM_NAME_MAX], marshalled[sizeof(TPMT_PUBLIC)], digest[32];
  TPMT_PUBLIC area;
  size_t ak_len = ak_public(ak, sizeof ak, AK_ATTRIBUTES, &area), name_len = 0, off = 0;
  assert_int_equal(ep_tpm_ak_name(name, &name_len, ak, ak_len, "tpm.ak_public"), 0);
  assert_int_equal(Tss2_MU_TPMT_PUBLIC_Marshal(&area, marshalled, sizeof marshalled, &off), TSS2_RC_SUCCESS);
  EVP_Digest(marshalled, off, digest, NULL, EVP_sha256(), NULL);
  assert_int_equal(name_len, 34);
  assert_memory_equal(name, "\x00\x0b", 2);
  assert_memory_equal(name + 2, digest, 32);
}

static void keys_that_are_no_ek_or_ak_are_refused(void **state) {
  (void)state;
  uint8_t buf[EP_TPM_PUBLIC_MAX], name[EP_TPM_NAME_MAX];
  size_t name_len = 0, len;
  ep_tpm_ek ek;
  len = ek_public(buf, sizeof buf, EK_ATTRIBUTES, 128);
  assert_int_equal(ep_tpm_ek_from_public(&ek, buf, len, "tpm.ek_public"), 0);
  assert_int_equal(ep_tpm_ek_from_public(&ek, buf, len - 1, "tpm.ek_public"), EP_EINVAL); /* cut short */
  assert_non_null(strstr(ep_error_message(), "tpm.ek_public: not a marshalled TPM2B_PUBLIC"));
  uint8_t longer[EP_TPM_PUBLIC_MAX + 1];
  memcpy(longer, buf, len);
  longer[len] = 0;
  assert_int_equal(ep_tpm_ek_from_public(&ek, longer, len + 1, "tpm.ek_public"), EP_EINVAL); /* a byte too many */
  len = ek_public(buf, sizeof buf, (EK_ATTRIBUTES & ~TPMA_OBJECT_DECRYPT) | TPMA_OBJECT_SIGN_ENCRYPT, 128);
  assert_int_equal(ep_tpm_ek_from_public(&ek, buf, len, "tpm.ek_public"), EP_EINVAL);
  assert_non_null(strstr(ep_error_message(), "not a restricted decryption key"));
  len = ek_public(buf, sizeof buf, EK_ATTRIBUTES, 256);
  assert_int_equal(ep_tpm_ek_from_public(&ek, buf, len, "tpm.ek_public"), EP_EINVAL);
  assert_non_null(strstr(ep_error_message(), "AES-128-CFB"));
  assert_int_equal(ep_tpm_ek_from_public(&ek, (const uint8_t *)"", 0, "tpm.ek_public"), EP_EINVAL);
  /* An AK must be a restricted signing key bound to its TPM. */
  len = ak_public(buf, sizeof buf, AK_ATTRIBUTES & ~TPMA_OBJECT_FIXEDTPM, NULL);
  assert_int_equal(ep_tpm_ak_name(name, &name_len, buf, len, "tpm.ak_public"), EP_EINVAL);
  assert_non_null(strstr(ep_error_message(), "tpm.ak_public: not an attestation key"));
  len = ak_public(buf, sizeof buf, AK_ATTRIBUTES & ~TPMA_OBJECT_RESTRICTED, NULL);
  assert_int_equal(ep_tpm_ak_name(name, &name_len, buf, len, "tpm.ak_public"), EP_EINVAL);
  /* The EK itself is no AK. */
  len = ek_public(buf, sizeof buf, EK_ATTRIBUTES, 128);
  assert_int_equal(ep_tpm_ak_name(name, &name_len, buf, len, "tpm.ak_public"), EP_EINVAL);
}

/* An operator's EK file: a PEM public key, a certificate (PEM or DER), or a DER key; all the
 * same EK, the one the node sends. */
static void ek_files_in_every_form_name_the_same_key(void **state) {
  (void)state;
  uint8_t pub[EP_TPM_PUBLIC_MAX];
  size_t pub_len = ek_public(pub, sizeof pub, EK_ATTRIBUTES, 128);
  ep_tpm_ek from_node, from_file;
  assert_int_equal(ep_tpm_ek_from_public(&from_node, pub, pub_len, "tpm.ek_public"), 0);
  char path[256];
  const char *forms[] = {"pem", "cert.pem", "cert.der", "der"};
  X509 *cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, ek_key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC, (const unsigned char *)"EK", -1, -1, 0);
  X509_set_issuer_name(cert, X509_get_subject_name(cert));
  assert_true(X509_sign(cert, ek_key, EVP_sha256()) > 0);
  for (size_t i = 0; i < 4; i++) {
    snprintf(path, sizeof path, "%s/ek.%s", tmpdir, forms[i]);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (i == 0) PEM_write_PUBKEY(f, ek_key);
    if (i == 1) PEM_write_X509(f, cert);
    if (i == 2) i2d_X509_fp(f, cert);
    if (i == 3) i2d_PUBKEY_fp(f, ek_key);
    fclose(f);
    memset(&from_file, 0, sizeof from_file);
    assert_int_equal(ep_tpm_ek_from_file(&from_file, path), 0);
    assert_int_equal(ERR_peek_error(), 0); /* the forms tried first leave nothing in OpenSSL's queue */
    assert_int_equal(from_file.der_len, from_node.der_len);
    assert_memory_equal(from_file.der, from_node.der, from_node.der_len);
  }
  X509_free(cert);
  char fingerprint[EP_TPM_FINGERPRINT_LEN + 1];
  ep_tpm_ek_fingerprint(fingerprint, from_node.der, from_node.der_len);
  assert_int_equal(strlen(fingerprint), EP_TPM_FINGERPRINT_LEN);
  assert_memory_equal(fingerprint, "sha256:", 7);
  /* What is no key is named with the reason; so is a key of the wrong kind. */
  snprintf(path, sizeof path, "%s/not-a-key", tmpdir);
  FILE *f = fopen(path, "w");
  fputs("hello\n", f);
  fclose(f);
  assert_int_equal(ep_tpm_ek_from_file(&from_file, path), EP_EINVAL);
  assert_non_null(strstr(ep_error_message(), "not-a-key: neither a PEM public key"));
  assert_int_equal(ERR_peek_error(), 0);
  EVP_PKEY *ec = EVP_EC_gen("P-256");
  snprintf(path, sizeof path, "%s/ec.pem", tmpdir);
  f = fopen(path, "w");
  PEM_write_PUBKEY(f, ec);
  fclose(f);
  EVP_PKEY_free(ec);
  assert_int_equal(ep_tpm_ek_from_file(&from_file, path), EP_EINVAL);
  assert_non_null(strstr(ep_error_message(), "not an RSA 2048 key"));
  snprintf(path, sizeof path, "%s/missing", tmpdir);
  assert_int_equal(ep_tpm_ek_from_file(&from_file, path), EP_ENOENT);
  assert_non_null(strstr(ep_error_message(), "missing: cannot open"));
}

static int setup(void **state) {
  (void)state;
  ek_key = EVP_RSA_gen(2048);
  return ek_key && mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  EVP_PKEY_free(ek_key);
  char command[128];
  snprintf(command, sizeof command, "rm -rf %s", tmpdir);
  return system(command) == 0 ? 0 : -1;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(our_credential_opens_with_the_ek_only),
      cmocka_unit_test(tpm2_makecredential_output_opens_the_same_way),
      cmocka_unit_test(the_ak_name_is_the_digest_of_its_public_area),
      cmocka_unit_test(keys_that_are_no_ek_or_ak_are_refused),
      cmocka_unit_test(ek_files_in_every_form_name_the_same_key),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
