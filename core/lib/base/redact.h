/* core: masking what looks like a secret in text shown to people (a dry-run render, a node's
 * log lines): the value of a key that names a secret, a PEM private key, a bearer token.
 * Masking is a net under the real rule (secrets are not put in such text); it errs on the side
 * of masking. */
#ifndef EP_CORE_REDACT_H
#define EP_CORE_REDACT_H

#include <stdbool.h>
#include <stddef.h>

#define EP_REDACTED "********"

/* True when name (a parameter, setting or key name) names a secret: it holds, in any case,
 * password, passwd, passphrase, pass, pwd, secret, token, private_key, privatekey, api_key,
 * apikey, credential, psk, auth, luks, recovery_key, recovery-key or recoverykey. */
bool ep_redact_is_secret_name(const char *name);

/* A malloc'd copy of text with each secret replaced by EP_REDACTED, line by line:
 * - "KEY: VALUE", "KEY=VALUE", "KEY = VALUE" (YAML, ini, shell; KEY may be quoted or a YAML
 *   list item) whose KEY names a secret: VALUE is masked; a YAML block value ("KEY: |" or
 *   ">") masks the lines indented under KEY. A value that is only a ${node.*} reference is
 *   kept (the node fills it in; it is not the secret);
 * - the lines between "-----BEGIN ... PRIVATE KEY-----" and its END line become one line;
 * - "Bearer X": X is masked;
 * - a disk recovery key as systemd-cryptenroll makes it (8 groups of 8 of the "modhex" letters
 *   cbdefghijklnrtuv, joined by dashes), anywhere.
 * *ret_count (may be NULL) gets the number of secrets masked. NULL when out of memory. */
char *ep_redact_text(const char *text, size_t *ret_count);

/* The value of a parameter or setting called name, masked for people: all of it when name
 * names a secret (unless it is only a ${node.*} reference), else as ep_redact_text. Adds the
 * secrets masked to *count (may be NULL). A malloc'd string, NULL when out of memory. */
char *ep_redact_value(const char *name, const char *value, size_t *count);

#endif
