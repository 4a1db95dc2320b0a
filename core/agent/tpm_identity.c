/* edgeprov-agent: the node's TPM as its identity, see tpm_identity.h. */
#define _GNU_SOURCE /* explicit_bzero */
#include "tpm_identity.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "base/error.h"

struct ep_agent_tpm {
  TSS2_TCTI_CONTEXT *tcti;
  ESYS_CONTEXT *esys;
  ESYS_TR ek, ak;
  uint8_t ek_public[sizeof(TPM2B_PUBLIC)];
  size_t ek_public_len;
  uint8_t ak_public[sizeof(TPM2B_PUBLIC)];
  size_t ak_public_len;
};

/* The TCG EK Credential Profile's default RSA 2048 EK template (L-1): the key is derived from
 * the TPM's endorsement seed, so every caller with this template gets the same key, and its
 * use needs the endorsement hierarchy's authorization (the policy below is PolicySecret of
 * TPM_RH_ENDORSEMENT). */
static const TPM2B_PUBLIC ek_template = {
    .publicArea = {.type = TPM2_ALG_RSA,
                   .nameAlg = TPM2_ALG_SHA256,
                   .objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                                       TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT,
                   .authPolicy = {.size = 32,
                                  .buffer = {0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xB3, 0xF8, 0x1A, 0x90, 0xCC,
                                             0x8D, 0x46, 0xA5, 0xD7, 0x24, 0xFD, 0x52, 0xD7, 0x6E, 0x06, 0x52,
                                             0x0B, 0x64, 0xF2, 0xA1, 0xDA, 0x1B, 0x33, 0x14, 0x69, 0xAA}},
                   .parameters.rsaDetail = {.symmetric = {.algorithm = TPM2_ALG_AES,
                                                          .keyBits.aes = 128,
                                                          .mode.aes = TPM2_ALG_CFB},
                                            .scheme = {.scheme = TPM2_ALG_NULL},
                                            .keyBits = 2048,
                                            .exponent = 0},
                   .unique.rsa = {.size = 256}}};

/* The attestation key: an ECC P-256 restricted signing key made in the TPM (quick to make,
 * unlike an RSA one), bound to it. */
static const TPM2B_PUBLIC ak_template = {
    .publicArea = {.type = TPM2_ALG_ECC,
                   .nameAlg = TPM2_ALG_SHA256,
                   .objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                                       TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT,
                   .parameters.eccDetail = {.symmetric = {.algorithm = TPM2_ALG_NULL},
                                            .scheme = {.scheme = TPM2_ALG_ECDSA, .details.ecdsa.hashAlg = TPM2_ALG_SHA256},
                                            .curveID = TPM2_ECC_NIST_P256,
                                            .kdf = {.scheme = TPM2_ALG_NULL}}}};

static int tpm_error(TSS2_RC rc, const char *what) {
  return ep_error_set(EP_EIO, "TPM: %s failed: %s (0x%x)", what, Tss2_RC_Decode(rc), (unsigned)rc);
}

/* A policy session that satisfies the EK's policy (PolicySecret of the endorsement hierarchy,
 * whose authorization is empty on a node), for one use: the TPM flushes it after. */
static int ek_policy_session(ep_agent_tpm *t, ESYS_TR *out) {
  const TPMT_SYM_DEF no_symmetric = {.algorithm = TPM2_ALG_NULL};
  ESYS_TR session = ESYS_TR_NONE;
  TSS2_RC rc = Esys_StartAuthSession(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL,
                                     TPM2_SE_POLICY, &no_symmetric, TPM2_ALG_SHA256, &session);
  if (rc != TSS2_RC_SUCCESS) return tpm_error(rc, "starting a policy session");
  const TPM2B_NONCE no_nonce = {.size = 0};
  const TPM2B_DIGEST no_cp_hash = {.size = 0};
  rc = Esys_PolicySecret(t->esys, ESYS_TR_RH_ENDORSEMENT, session, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &no_nonce,
                         &no_cp_hash, &no_nonce, 0, NULL, NULL);
  if (rc == TSS2_RC_SUCCESS) rc = Esys_TRSess_SetAttributes(t->esys, session, 0, TPMA_SESSION_CONTINUESESSION);
  if (rc != TSS2_RC_SUCCESS) {
    Esys_FlushContext(t->esys, session);
    return tpm_error(rc, "the endorsement policy (PolicySecret)");
  }
  *out = session;
  return 0;
}

static int marshal_public(uint8_t *out, size_t size, size_t *len, const TPM2B_PUBLIC *pub) {
  *len = 0;
  TSS2_RC rc = Tss2_MU_TPM2B_PUBLIC_Marshal(pub, out, size, len);
  return rc == TSS2_RC_SUCCESS ? 0 : tpm_error(rc, "marshalling a public area");
}

static int make_keys(ep_agent_tpm *t) {
  const TPM2B_SENSITIVE_CREATE no_sensitive = {.size = 0};
  const TPM2B_DATA no_outside_info = {.size = 0};
  const TPML_PCR_SELECTION no_pcrs = {.count = 0};
  TPM2B_PUBLIC *ek_public = NULL, *ak_public = NULL;
  TPM2B_PRIVATE *ak_private = NULL;
  TSS2_RC rc = Esys_CreatePrimary(t->esys, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                  &no_sensitive, &ek_template, &no_outside_info, &no_pcrs, &t->ek, &ek_public, NULL, NULL,
                                  NULL);
  if (rc != TSS2_RC_SUCCESS) return tpm_error(rc, "making the endorsement key (CreatePrimary)");
  int r = marshal_public(t->ek_public, sizeof t->ek_public, &t->ek_public_len, ek_public);
  ESYS_TR session = ESYS_TR_NONE;
  if (r == 0) r = ek_policy_session(t, &session);
  if (r == 0) {
    rc = Esys_Create(t->esys, t->ek, session, ESYS_TR_NONE, ESYS_TR_NONE, &no_sensitive, &ak_template, &no_outside_info,
                     &no_pcrs, &ak_private, &ak_public, NULL, NULL, NULL);
    if (rc != TSS2_RC_SUCCESS) {
      Esys_FlushContext(t->esys, session); /* a failed command leaves the session loaded */
      r = tpm_error(rc, "making the attestation key (Create)");
    }
  }
  if (r == 0) r = ek_policy_session(t, &session);
  if (r == 0) {
    rc = Esys_Load(t->esys, t->ek, session, ESYS_TR_NONE, ESYS_TR_NONE, ak_private, ak_public, &t->ak);
    if (rc != TSS2_RC_SUCCESS) {
      Esys_FlushContext(t->esys, session);
      r = tpm_error(rc, "loading the attestation key (Load)");
    }
  }
  if (r == 0) r = marshal_public(t->ak_public, sizeof t->ak_public, &t->ak_public_len, ak_public);
  Esys_Free(ek_public);
  Esys_Free(ak_public);
  Esys_Free(ak_private);
  return r;
}

int ep_agent_tpm_open(ep_agent_tpm **out, const char *tcti) {
  ep_agent_tpm *t = calloc(1, sizeof *t);
  if (!t) return ep_error_set(EP_ENOMEM, "out of memory");
  t->ek = t->ak = ESYS_TR_NONE;
  TSS2_RC rc = Tss2_TctiLdr_Initialize(tcti, &t->tcti);
  int r = rc == TSS2_RC_SUCCESS ? 0 : ep_error_set(EP_EIO, "cannot be opened: %s", Tss2_RC_Decode(rc));
  if (r == 0 && (rc = Esys_Initialize(&t->esys, t->tcti, NULL)) != TSS2_RC_SUCCESS)
    r = ep_error_set(EP_EIO, "%s", Tss2_RC_Decode(rc));
  if (r == 0) {
    /* Firmware has started a real TPM (TPM2_RC_INITIALIZE then); a bare simulator has not. */
    rc = Esys_Startup(t->esys, TPM2_SU_CLEAR);
    if (rc != TSS2_RC_SUCCESS && (rc & 0xfff) != TPM2_RC_INITIALIZE)
      r = ep_error_set(EP_EIO, "Startup failed: %s", Tss2_RC_Decode(rc));
  }
  if (r == 0) r = make_keys(t);
  if (r < 0) {
    ep_agent_tpm_free(t);
    return ep_error_prefix(r, "TPM %s", tcti);
  }
  *out = t;
  return 0;
}

const uint8_t *ep_agent_tpm_ek_public(const ep_agent_tpm *tpm, size_t *len) {
  *len = tpm->ek_public_len;
  return tpm->ek_public;
}

const uint8_t *ep_agent_tpm_ak_public(const ep_agent_tpm *tpm, size_t *len) {
  *len = tpm->ak_public_len;
  return tpm->ak_public;
}

int ep_agent_tpm_activate(ep_agent_tpm *tpm, const uint8_t *blob, size_t blob_len, const uint8_t *encrypted_secret,
                          size_t encrypted_secret_len, uint8_t secret[64], size_t *secret_len) {
  TPM2B_ID_OBJECT credential = {.size = 0};
  TPM2B_ENCRYPTED_SECRET seed = {.size = 0};
  size_t blob_offset = 0, seed_offset = 0;
  if (Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(blob, blob_len, &blob_offset, &credential) != TSS2_RC_SUCCESS ||
      blob_offset != blob_len)
    return ep_error_set(EP_EINVAL, "tpm_challenge.credential_blob: not a marshalled TPM2B_ID_OBJECT");
  if (Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(encrypted_secret, encrypted_secret_len, &seed_offset, &seed) !=
          TSS2_RC_SUCCESS ||
      seed_offset != encrypted_secret_len)
    return ep_error_set(EP_EINVAL, "tpm_challenge.encrypted_secret: not a marshalled TPM2B_ENCRYPTED_SECRET");
  ESYS_TR session = ESYS_TR_NONE;
  int r = ek_policy_session(tpm, &session);
  if (r < 0) return r;
  TPM2B_DIGEST *out = NULL;
  TSS2_RC rc = Esys_ActivateCredential(tpm->esys, tpm->ak, tpm->ek, ESYS_TR_PASSWORD, session, ESYS_TR_NONE, &credential,
                                       &seed, &out);
  if (rc != TSS2_RC_SUCCESS) {
    Esys_FlushContext(tpm->esys, session);
    return tpm_error(rc, "ActivateCredential");
  }
  memcpy(secret, out->buffer, out->size);
  *secret_len = out->size;
  explicit_bzero(out->buffer, out->size);
  Esys_Free(out);
  return 0;
}

void ep_agent_tpm_free(ep_agent_tpm *tpm) {
  if (!tpm) return;
  if (tpm->esys) {
    if (tpm->ak != ESYS_TR_NONE) Esys_FlushContext(tpm->esys, tpm->ak);
    if (tpm->ek != ESYS_TR_NONE) Esys_FlushContext(tpm->esys, tpm->ek);
    Esys_Finalize(&tpm->esys);
  }
  if (tpm->tcti) Tss2_TctiLdr_Finalize(&tpm->tcti);
  free(tpm);
}
