/* core: the checks of the values a cloud-init seed carries, see cloudinit_check.h. */
#include "provisioning/cloudinit_check.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "provisioning/cloudinit_limits.h"

#define SHELL_MAX 255
#define INSTANCE_ID_MAX 64
#define HOSTNAME_MAX EP_CLOUDINIT_HOSTNAME_MAX
#define LABEL_MAX 63
#define USER_NAME_MAX 32
#define ORCHESTRATOR_MAX EP_CLOUDINIT_ORCHESTRATOR_MAX

static bool is_alnum(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

/* Refuses control and non-ASCII bytes in the first len bytes without echoing the value. */
static int printable(const char *field, const char *text, size_t len, bool space_ok) {
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)text[i];
    if (c < 0x20 || c > 0x7e || (c == ' ' && !space_ok))
      return ep_error_set(EP_EINVAL, "%s: %s 0x%02x at byte %zu; only printable ASCII%s is allowed", field,
                          c == ' ' ? "space" : "character", c, i, space_ok ? "" : " without spaces");
  }
  return 0;
}

/* RFC 1123 host name: labels of 1-63 letters, digits, '-' (not first or last), split by '.'. */
static bool hostname_ok(const char *h, size_t len) {
  if (len == 0 || len > HOSTNAME_MAX) return false;
  size_t label = 0;
  for (size_t i = 0; i <= len; i++) {
    unsigned char c = i < len ? (unsigned char)h[i] : '.';
    if (c == '.') {
      if (label == 0 || label > LABEL_MAX || h[i - 1] == '-') return false;
      label = 0;
    } else if (is_alnum(c) || (c == '-' && label > 0)) {
      label++;
    } else {
      return false;
    }
  }
  return true;
}

int ep_ci_check_hostname(const char *field, const char *h) {
  if (!h || !*h) return ep_error_set(EP_EINVAL, "%s: required (an RFC 1123 host name such as node-12.site.example)", field);
  size_t len = strnlen(h, HOSTNAME_MAX + 1);
  int r = printable(field, h, len, false);
  if (r < 0) return r;
  if (len > HOSTNAME_MAX) return ep_error_set(EP_EINVAL, "%s: longer than %d characters", field, HOSTNAME_MAX);
  if (!hostname_ok(h, len))
    return ep_error_set(EP_EINVAL,
                        "%s: '%s' is not an RFC 1123 host name (labels of 1 to %d letters, digits or '-', not "
                        "starting or ending with '-', split by '.')",
                        field, h, LABEL_MAX);
  return 0;
}

int ep_ci_check_instance_id(const char *id) {
  if (!id || !*id) return ep_error_set(EP_EINVAL, "instance_id: required (the instance's UUID)");
  size_t len = strnlen(id, INSTANCE_ID_MAX + 1);
  int r = printable("instance_id", id, len, false);
  if (r < 0) return r;
  if (len > INSTANCE_ID_MAX) return ep_error_set(EP_EINVAL, "instance_id: longer than %d characters", INSTANCE_ID_MAX);
  for (size_t i = 0; i < len; i++)
    if (!is_alnum((unsigned char)id[i]) && id[i] != '.' && id[i] != '_' && id[i] != '-')
      return ep_error_set(EP_EINVAL, "instance_id: '%s' has a character other than A-Z, a-z, 0-9, '.', '_', '-'", id);
  return 0;
}

int ep_ci_check_user_name(const char *field, const char *name) {
  if (!name || !*name) return ep_error_set(EP_EINVAL, "%s: required", field);
  size_t len = strnlen(name, USER_NAME_MAX + 1);
  int r = printable(field, name, len, true);
  if (r < 0) return r;
  bool ok = len <= USER_NAME_MAX && ((name[0] >= 'a' && name[0] <= 'z') || name[0] == '_');
  for (size_t i = 1; ok && i < len; i++) {
    char c = name[i];
    ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  }
  if (!ok) return ep_error_set(EP_EINVAL, "%s: '%.*s' is not a user name ([a-z_][a-z0-9_-]{0,31})", field, (int)len, name);
  if (!strcmp(name, "root"))
    return ep_error_set(EP_EINVAL, "%s: 'root' is refused; give a named account with sudo instead", field);
  if (!strcmp(name, "default"))
    return ep_error_set(EP_EINVAL, "%s: 'default' is cloud-init's word for the image's default user; pick another name",
                        field);
  return 0;
}

int ep_ci_check_shell(const char *field, const char *shell) {
  size_t len = strnlen(shell, SHELL_MAX + 1);
  int r = printable(field, shell, len, false);
  if (r < 0) return r;
  bool ok = len > 1 && len <= SHELL_MAX && shell[0] == '/';
  for (size_t i = 0; ok && i < len; i++) {
    char c = shell[i];
    ok = is_alnum((unsigned char)c) || c == '/' || c == '.' || c == '_' || c == '-' || c == '+';
  }
  if (!ok) return ep_error_set(EP_EINVAL, "%s: '%.*s' is not an absolute path such as /bin/bash", field, (int)len, shell);
  return 0;
}

static int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

/* Decodes up to cap bytes from the start of base64 text (len characters); the count. */
static size_t base64_prefix(unsigned char *out, size_t cap, const char *text, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i + 4 <= len && n < cap; i += 4) {
    int v[4];
    for (int j = 0; j < 4; j++) v[j] = base64_value(text[i + (size_t)j]);
    if (v[0] < 0 || v[1] < 0) break;
    uint32_t bits = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)(v[2] < 0 ? 0 : v[2]) << 6 |
                    (uint32_t)(v[3] < 0 ? 0 : v[3]);
    size_t got = v[2] < 0 ? 1 : v[3] < 0 ? 2 : 3;
    for (size_t j = 0; j < got && n < cap; j++) out[n++] = (unsigned char)(bits >> (16 - 8 * j));
    if (got < 3) break;
  }
  return n;
}

static const char *const ssh_key_types[] = {
    "ssh-ed25519",         "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com"};

int ep_ci_check_ssh_key(const char *field, const char *key) {
  if (!key) return ep_error_set(EP_EINVAL, "%s: NULL", field);
  size_t len = strnlen(key, EP_CLOUDINIT_SSH_KEY_MAX + 1);
  if (len > EP_CLOUDINIT_SSH_KEY_MAX)
    return ep_error_set(EP_ERANGE, "%s: longer than %d bytes", field, EP_CLOUDINIT_SSH_KEY_MAX);
  int r = printable(field, key, len, true); /* one line: no CR, LF or other control character */
  if (r < 0) return r;
  size_t type_len = strcspn(key, " ");
  const char *type = NULL;
  for (size_t i = 0; i < sizeof ssh_key_types / sizeof ssh_key_types[0]; i++)
    if (strlen(ssh_key_types[i]) == type_len && !memcmp(key, ssh_key_types[i], type_len)) type = ssh_key_types[i];
  if (!type)
    return ep_error_set(EP_EINVAL,
                        "%s: key type '%.*s' is not ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256/384/521, "
                        "sk-ssh-ed25519@openssh.com or sk-ecdsa-sha2-nistp256@openssh.com (options are not taken)",
                        field, (int)(type_len > 40 ? 40 : type_len), key);
  const char *blob = key + type_len;
  while (*blob == ' ') blob++;
  size_t blob_len = strcspn(blob, " "), data_len = blob_len;
  while (data_len > 0 && blob[data_len - 1] == '=') data_len--;
  bool ok = blob_len >= 16 && blob_len % 4 == 0 && blob_len - data_len <= 2;
  for (size_t i = 0; ok && i < data_len; i++) ok = base64_value(blob[i]) >= 0;
  /* The blob starts with the key type as an SSH string: uint32 length, then the name. */
  unsigned char head[64];
  size_t want = 4 + type_len;
  ok = ok && base64_prefix(head, want, blob, blob_len) == want &&
       ((uint32_t)head[0] << 24 | (uint32_t)head[1] << 16 | (uint32_t)head[2] << 8 | head[3]) == type_len &&
       !memcmp(head + 4, type, type_len);
  if (!ok) return ep_error_set(EP_EINVAL, "%s: the base64 key after '%s' is missing or is not a %s key", field, type, type);
  return 0;
}

int ep_ci_check_pem(const char *field, const char *pem) {
  static const char begin[] = "-----BEGIN CERTIFICATE-----", end[] = "-----END CERTIFICATE-----";
  if (!pem || !*pem) return ep_error_set(EP_EINVAL, "%s: required (the orchestrator CA certificate, PEM)", field);
  size_t len = strnlen(pem, EP_CLOUDINIT_CA_MAX + 1);
  if (len > EP_CLOUDINIT_CA_MAX) return ep_error_set(EP_ERANGE, "%s: longer than %d bytes", field, EP_CLOUDINIT_CA_MAX);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)pem[i];
    if ((c < 0x20 && c != '\n') || c > 0x7e)
      return ep_error_set(EP_EINVAL, "%s: character 0x%02x at byte %zu; PEM is ASCII with LF line ends", field, c, i);
  }
  size_t certs = 0, lines_in = 0, line_no = 0;
  bool inside = false;
  for (const char *p = pem; *p;) {
    size_t n = strcspn(p, "\n");
    line_no++;
    if (!inside && n == 0) {
      /* blank line between blocks */
    } else if (!inside) {
      if (n != sizeof begin - 1 || memcmp(p, begin, n))
        return ep_error_set(EP_EINVAL, "%s: line %zu: expected %s (only certificates are taken)", field, line_no, begin);
      inside = true;
      lines_in = 0;
    } else if (n == sizeof end - 1 && !memcmp(p, end, n)) {
      if (!lines_in) return ep_error_set(EP_EINVAL, "%s: line %zu: empty CERTIFICATE block", field, line_no);
      inside = false;
      certs++;
    } else {
      bool ok = n > 0;
      for (size_t i = 0; ok && i < n; i++) ok = base64_value(p[i]) >= 0 || p[i] == '=';
      if (!ok) return ep_error_set(EP_EINVAL, "%s: line %zu: not base64 inside a CERTIFICATE block", field, line_no);
      lines_in++;
    }
    p += n;
    if (*p == '\n') p++;
  }
  if (inside) return ep_error_set(EP_EINVAL, "%s: the last CERTIFICATE block has no %s line", field, end);
  if (!certs) return ep_error_set(EP_EINVAL, "%s: no certificate (%s)", field, begin);
  return 0;
}

/* A credential value in the agent's key=value file: printable ASCII without spaces. Never
 * echoed: client_secret is a secret. */
int ep_ci_check_credential(const char *field, const char *value, bool required) {
  if (!value || !*value) return required ? ep_error_set(EP_EINVAL, "%s: required", field) : 0;
  size_t len = strnlen(value, EP_CLOUDINIT_CREDENTIAL_MAX + 1);
  if (len > EP_CLOUDINIT_CREDENTIAL_MAX)
    return ep_error_set(EP_ERANGE, "%s: longer than %d bytes", field, EP_CLOUDINIT_CREDENTIAL_MAX);
  return printable(field, value, len, false);
}

int ep_ci_check_orchestrator(const char *o) {
  if (!o || !*o) return ep_error_set(EP_EINVAL, "orchestrator: required (host:port of the southbound gRPC)");
  size_t len = strnlen(o, ORCHESTRATOR_MAX + 1);
  int r = printable("orchestrator", o, len, false);
  if (r < 0) return r;
  if (len > ORCHESTRATOR_MAX) return ep_error_set(EP_EINVAL, "orchestrator: longer than %d characters", ORCHESTRATOR_MAX);
  const char *colon = strrchr(o, ':');
  bool ok = colon != NULL;
  if (ok && o[0] == '[') {
    char v6[64];
    unsigned char addr[16];
    size_t n = (size_t)(colon - o);
    ok = n >= 3 && o[n - 1] == ']' && n - 2 < sizeof v6;
    if (ok) {
      memcpy(v6, o + 1, n - 2);
      v6[n - 2] = '\0';
      ok = inet_pton(AF_INET6, v6, addr) == 1;
    }
  } else if (ok) {
    ok = hostname_ok(o, (size_t)(colon - o));
  }
  const char *port = ok ? colon + 1 : "";
  size_t digits = strspn(port, "0123456789");
  ok = ok && digits >= 1 && digits <= 5 && !port[digits] && atol(port) >= 1 && atol(port) <= 65535;
  if (!ok)
    return ep_error_set(EP_EINVAL,
                        "orchestrator: '%s' is not host:port (a host name, an IPv4 address or [IPv6], port 1-65535)", o);
  return 0;
}

int ep_ci_check_token_url(const char *url) {
  if (!url) return 0;
  size_t len = strnlen(url, EP_CLOUDINIT_TOKEN_URL_MAX + 1);
  if (len > EP_CLOUDINIT_TOKEN_URL_MAX)
    return ep_error_set(EP_ERANGE, "token_url: longer than %d characters", EP_CLOUDINIT_TOKEN_URL_MAX);
  int r = printable("token_url", url, len, false);
  if (r < 0) return r;
  if (strncmp(url, "https://", 8) != 0 || len == 8 || url[8] == '/')
    return ep_error_set(EP_EINVAL, "token_url: '%s' is not an https:// URL (the node reaches it over the network)", url);
  return 0;
}
