/* core/artifacts: a new set of Secure Boot keys for a site (`edgeprov artifacts keys`). */
#ifndef EP_ARTIFACTS_KEYS_H
#define EP_ARTIFACTS_KEYS_H

/* Creates, in out_dir (made 0700 if missing), PK, KEK and db: each an RSA-3072 key (NAME.key,
 * mode 0600) and a self-signed certificate valid for years (NAME.crt PEM, NAME.cer DER for a
 * firmware's setup screen, NAME.esl EFI signature list for efi-updatevar and the like).
 * subject_prefix names them ("<prefix> db"). Refuses (EP_EEXIST) when any of the files
 * exists: keys are never overwritten. db.key and db.crt are what artifacts.signing_key and
 * artifacts.signing_cert take. */
int ep_keys_create(const char *out_dir, const char *subject_prefix);

#endif
