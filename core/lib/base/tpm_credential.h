/* base: proof that a node holds a TPM 2.0 whose endorsement key (EK) is known, by the
 * TPM's credential activation (TPM 2.0 Part 1, "Credential Protection"; Part 3,
 * TPM2_MakeCredential / TPM2_ActivateCredential).
 *
 * The node sends its EK's and an attestation key's (AK) public areas, as TPM2B_PUBLIC in the
 * TPM's own marshalling (tpm2-tss: Tss2_MU_TPM2B_PUBLIC_Marshal). The orchestrator wraps a
 * random secret to the EK, bound to the AK's name; only the TPM holding the EK's private part
 * and the AK together can unwrap it (TPM2_ActivateCredential), so a node that answers with the
 * secret holds that TPM. What this file does is TPM2_MakeCredential in software (as
 * tpm2_makecredential --tcti none does): RSA-OAEP of a seed with the label "IDENTITY", KDFa
 * (OpenSSL's KBKDF in counter mode with HMAC) for the AES-CFB and HMAC keys. Only RSA 2048 EKs
 * of the TCG default template (AES-128-CFB, SHA-256) are taken.
 *
 * Structures are parsed with tpm2-tss's marshalling library; nothing here talks to a TPM. */
#ifndef EP_BASE_TPM_CREDENTIAL_H
#define EP_BASE_TPM_CREDENTIAL_H

#include <stddef.h>
#include <stdint.h>

#define EP_TPM_PUBLIC_MAX 1024    /* longest TPM2B_PUBLIC accepted from a node */
#define EP_TPM_NAME_MAX 66        /* a TPM object name: algorithm (2 bytes) and digest */
#define EP_TPM_SECRET_LEN 32      /* the challenge's random secret */
#define EP_TPM_EK_DER_MAX 1024    /* longest EK SubjectPublicKeyInfo (DER) accepted */
#define EP_TPM_FINGERPRINT_LEN 71 /* "sha256:" and 64 hex digits */

/* An EK as the orchestrator keeps it: DER SubjectPublicKeyInfo. */
typedef struct ep_tpm_ek {
  uint8_t der[EP_TPM_EK_DER_MAX];
  size_t der_len;
} ep_tpm_ek;

/* Checks that data (a marshalled TPM2B_PUBLIC, the node's field `field`) is an endorsement key
 * of the default RSA 2048 template: restricted decryption key, SHA-256 names, AES-128-CFB;
 * puts its public key in *out. The error names the field and the reason. */
int ep_tpm_ek_from_public(ep_tpm_ek *out, const uint8_t *data, size_t len, const char *field);

/* Checks that data (a marshalled TPM2B_PUBLIC) is an attestation key: a restricted signing key
 * made in the TPM and bound to it (fixedTPM, fixedParent, sensitiveDataOrigin), with SHA-256
 * names; puts its name (TPM2B_NAME's bytes: nameAlg, then the digest of its public area) in
 * name. */
int ep_tpm_ak_name(uint8_t name[EP_TPM_NAME_MAX], size_t *name_len, const uint8_t *data, size_t len, const char *field);

/* Reads an EK as an operator has it: a PEM public key ("PUBLIC KEY", as tpm2_createek -f pem
 * writes it) or the TPM's EK certificate (PEM or DER X.509). The error names path. */
int ep_tpm_ek_from_file(ep_tpm_ek *out, const char *path);

/* The same from bytes held in memory (what a file held); `what` names them in errors. */
int ep_tpm_ek_from_bytes(ep_tpm_ek *out, const uint8_t *data, size_t len, const char *what);

/* "sha256:<hex>" of the EK's DER: how operators and logs name an EK. */
void ep_tpm_ek_fingerprint(char out[EP_TPM_FINGERPRINT_LEN + 1], const uint8_t *der, size_t der_len);

/* TPM2_MakeCredential: wraps secret (1..32 bytes) to the EK (a marshalled TPM2B_PUBLIC that
 * ep_tpm_ek_from_public accepted) for the object named name. Writes the marshalled
 * TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET, as TPM2_ActivateCredential takes them, into
 * malloc'd buffers the caller frees. */
int ep_tpm_make_credential(const uint8_t *ek_public, size_t ek_public_len, const uint8_t *name, size_t name_len,
                           const uint8_t *secret, size_t secret_len, uint8_t **ret_blob, size_t *ret_blob_len,
                           uint8_t **ret_encrypted_seed, size_t *ret_encrypted_seed_len);

#endif
