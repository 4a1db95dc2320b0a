/* core: the checks of the values in a cloud-init seed, made on the way out (rendering a spec)
 * and on the way back in (the agent reading its seed). Each returns 0, or EP_EINVAL/EP_ERANGE
 * with a message that names field and says what is allowed; secrets are never echoed. */
#ifndef EP_CORE_CLOUDINIT_CHECK_H
#define EP_CORE_CLOUDINIT_CHECK_H

#include <stdbool.h>

/* An RFC 1123 host name (labels of 1-63 letters, digits, '-', split by '.'; 253 in all). */
int ep_ci_check_hostname(const char *field, const char *hostname);

/* [A-Za-z0-9._-]{1,64} (field: "instance_id"). */
int ep_ci_check_instance_id(const char *id);

/* [a-z_][a-z0-9_-]{0,31}, not "root" or "default". */
int ep_ci_check_user_name(const char *field, const char *name);

/* An absolute path such as /bin/bash. */
int ep_ci_check_shell(const char *field, const char *shell);

/* One authorized_keys line without options: "<type> <base64 blob naming the type> [comment]". */
int ep_ci_check_ssh_key(const char *field, const char *key);

/* One or more PEM CERTIFICATE blocks, LF line ends; nothing else (never a private key). */
int ep_ci_check_pem(const char *field, const char *pem);

/* A credential value of the agent's key=value files: printable ASCII without spaces, at most
 * EP_CLOUDINIT_CREDENTIAL_MAX bytes; NULL or "" is refused only when required. Never echoed. */
int ep_ci_check_credential(const char *field, const char *value, bool required);

/* host:port of the southbound (a host name, an IPv4 address or [IPv6]; port 1-65535). */
int ep_ci_check_orchestrator(const char *orchestrator);

/* An https:// URL, or NULL. */
int ep_ci_check_token_url(const char *url);

#endif
