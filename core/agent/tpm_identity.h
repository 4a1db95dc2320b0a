/* edgeprov-agent: the node's TPM 2.0 as its identity. The agent proves to the orchestrator
 * that it holds the TPM registered for its host (onboarding.proto's TpmIdentity): it sends the
 * public areas of the TPM's endorsement key (EK, the default RSA 2048 template, so the same key
 * `tpm2_createek -G rsa` gives the operator) and of an attestation key (AK) it makes under the
 * EK, and answers the orchestrator's challenge with TPM2_ActivateCredential, which only that
 * TPM can do. tpm2-tss's enhanced system API does the talking; nothing is stored on the TPM
 * (both keys are transient and flushed). */
#ifndef EP_AGENT_TPM_IDENTITY_H
#define EP_AGENT_TPM_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

typedef struct ep_agent_tpm ep_agent_tpm;

/* Opens the TPM by its TCTI configuration (tpm2-tss's form: "device:/dev/tpmrm0",
 * "swtpm:host=127.0.0.1,port=2321", …) and makes the EK and the AK. Errors name the TCTI and
 * the TPM's response code. */
int ep_agent_tpm_open(ep_agent_tpm **out, const char *tcti);

/* The marshalled TPM2B_PUBLIC of the EK and of the AK. */
const uint8_t *ep_agent_tpm_ek_public(const ep_agent_tpm *tpm, size_t *len);
const uint8_t *ep_agent_tpm_ak_public(const ep_agent_tpm *tpm, size_t *len);

/* TPM2_ActivateCredential of the orchestrator's challenge (a marshalled TPM2B_ID_OBJECT and
 * TPM2B_ENCRYPTED_SECRET): writes the secret (at most 64 bytes) to secret. */
int ep_agent_tpm_activate(ep_agent_tpm *tpm, const uint8_t *blob, size_t blob_len, const uint8_t *encrypted_secret,
                          size_t encrypted_secret_len, uint8_t secret[64], size_t *secret_len);

void ep_agent_tpm_free(ep_agent_tpm *tpm);

#endif
