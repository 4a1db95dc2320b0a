/* Fuzzes what a node (or an operator's file) gives the TPM identity proof
 * (base/tpm_credential.c): the EK and AK public areas of OnboardNodeStreamRequest.tpm and the
 * EK files of `host add --ek`. The first byte picks the parser, the rest is its input. Checks
 * the promises: an EK taken is RSA 2048 in a bounded canonical DER that reads back to itself,
 * and a credential can be made for it; an AK's name is SHA-256's (34 bytes, algorithm 0x000b);
 * OpenSSL's error queue is left empty whatever the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "base/tpm_credential.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_ek(const ep_tpm_ek *ek) {
  if (ek->der_len == 0 || ek->der_len > sizeof ek->der) abort();
  ep_tpm_ek again;
  if (ep_tpm_ek_from_bytes(&again, ek->der, ek->der_len, "der") != 0 || again.der_len != ek->der_len ||
      memcmp(again.der, ek->der, ek->der_len) != 0)
    abort();
  char fingerprint[EP_TPM_FINGERPRINT_LEN + 1];
  ep_tpm_ek_fingerprint(fingerprint, ek->der, ek->der_len);
  if (strlen(fingerprint) != EP_TPM_FINGERPRINT_LEN) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t mode = data[0] % 3;
  data++, size--;
  ep_tpm_ek ek;
  if (mode == 0 && ep_tpm_ek_from_public(&ek, data, size, "tpm.ek_public") == 0) {
    check_ek(&ek);
    static const uint8_t name[34] = {0x00, 0x0b}, secret[EP_TPM_SECRET_LEN] = {1, 2, 3};
    uint8_t *blob = NULL, *seed = NULL;
    size_t blob_len = 0, seed_len = 0;
    if (ep_tpm_make_credential(data, size, name, sizeof name, secret, sizeof secret, &blob, &blob_len, &seed, &seed_len) != 0 ||
        blob_len != 2 + 2 + 32 + 2 + EP_TPM_SECRET_LEN || seed_len != 2 + 256)
      abort();
    free(blob);
    free(seed);
  } else if (mode == 1) {
    uint8_t name[EP_TPM_NAME_MAX];
    size_t name_len = 0;
    if (ep_tpm_ak_name(name, &name_len, data, size, "tpm.ak_public") == 0 &&
        (name_len != 34 || name[0] != 0x00 || name[1] != 0x0b))
      abort();
  } else if (mode == 2 && ep_tpm_ek_from_bytes(&ek, data, size, "ek file") == 0) {
    check_ek(&ek);
  }
  if (ERR_peek_error() != 0) abort(); /* a TLS call on this thread would take it for its own */
  return 0;
}
