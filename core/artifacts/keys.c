/* core/artifacts: see keys.h. */
#define _GNU_SOURCE
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "efi.h"
#include "base/error.h"

#define KEY_BITS 3072
#define VALID_DAYS (20 * 365)

static const char *const names[] = {"PK", "KEK", "db"};
static const char *const suffixes[] = {".key", ".crt", ".cer", ".esl"};

static int add_ext(X509 *cert, int nid, const char *value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
  X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
  if (!ext) return -1;
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return ok ? 0 : -1;
}

static int create_one(const char *dir, const char *name, const char *subject_prefix) {
  char path[PATH_MAX], cn[256];
  snprintf(cn, sizeof cn, "%s %s", subject_prefix, name);
  EVP_PKEY *key = EVP_RSA_gen(KEY_BITS);
  X509 *cert = X509_new();
  ASN1_INTEGER *serial = ASN1_INTEGER_new();
  BIGNUM *bn = BN_new();
  int r = 0;
  if (!key || !cert || !serial || !bn || !BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
      !BN_to_ASN1_INTEGER(bn, serial) || !X509_set_version(cert, 2) || !X509_set_serialNumber(cert, serial) ||
      !X509_gmtime_adj(X509_getm_notBefore(cert), 0) ||
      !X509_gmtime_adj(X509_getm_notAfter(cert), (long)VALID_DAYS * 24 * 3600) || !X509_set_pubkey(cert, key) ||
      !X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) ||
      !X509_set_issuer_name(cert, X509_get_subject_name(cert)) ||
      add_ext(cert, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
      add_ext(cert, NID_subject_key_identifier, "hash") < 0 ||
      add_ext(cert, NID_key_usage, "critical,digitalSignature") < 0 ||
      add_ext(cert, NID_ext_key_usage, "codeSigning") < 0 || !X509_sign(cert, key, EVP_sha256()))
    r = ep_error_set(EP_EFAILED, "cannot create the %s key and certificate", name);

  if (r == 0) { /* the key: created 0600, never readable by others even for a moment */
    snprintf(path, sizeof path, "%s/%s.key", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f || !PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL))
      r = ep_error_set(EP_EIO, "cannot write %s: %s", path, strerror(errno));
    if (f) {
      if (fclose(f) != 0 && r == 0) r = ep_error_set(EP_EIO, "cannot write %s", path);
    } else if (fd >= 0) {
      close(fd);
    }
  }
  char crt[PATH_MAX];
  snprintf(crt, sizeof crt, "%s/%s.crt", dir, name);
  if (r == 0) {
    FILE *f = fopen(crt, "wxe");
    if (!f || !PEM_write_X509(f, cert)) r = ep_error_set(EP_EIO, "cannot write %s: %s", crt, strerror(errno));
    if (f && fclose(f) != 0 && r == 0) r = ep_error_set(EP_EIO, "cannot write %s", crt);
  }
  if (r == 0) {
    snprintf(path, sizeof path, "%s/%s.cer", dir, name);
    r = ep_efi_write_der(crt, path);
  }
  if (r == 0) {
    snprintf(path, sizeof path, "%s/%s.esl", dir, name);
    r = ep_efi_write_esl(crt, path);
  }
  BN_free(bn);
  ASN1_INTEGER_free(serial);
  X509_free(cert);
  EVP_PKEY_free(key);
  return r;
}

int ep_keys_create(const char *out_dir, const char *subject_prefix) {
  if (mkdir(out_dir, 0700) < 0 && errno != EEXIST)
    return ep_error_set(EP_EIO, "cannot create %s: %s", out_dir, strerror(errno));
  char path[PATH_MAX];
  for (size_t i = 0; i < 3; i++)
    for (size_t k = 0; k < 4; k++) {
      snprintf(path, sizeof path, "%s/%s%s", out_dir, names[i], suffixes[k]);
      if (access(path, F_OK) == 0)
        return ep_error_set(EP_EEXIST, "%s exists: keys are never overwritten (choose another --out)", path);
    }
  for (size_t i = 0; i < 3; i++) {
    int r = create_one(out_dir, names[i], subject_prefix);
    if (r < 0) return r;
  }
  return 0;
}
