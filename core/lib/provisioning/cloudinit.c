/* core: cloud-init NoCloud seed rendering, see cloudinit.h.
 *
 * The document is built as a small tree, site fragments (loaded with libyaml) are merged into
 * it, and the tree is written out through libyaml's emitter, event by event. Values edgeprov
 * writes are never plain scalars (single-quoted, or literal blocks when they span lines), so
 * nothing an operator or a node supplies can be read back as YAML syntax, a boolean, a number
 * or null. Scalars from fragments keep the style they were written in, so they read back as
 * their author meant.
 *
 * users: the site's accounts only. The image's default user ("default" in cloud-init's list)
 * is not added: it would be an account without keys; a fragment may append "default". With
 * no users the key is left out and cloud-init creates the image's default user as usual.
 *
 * Fragments are operator input (site configuration) and may run commands as root on the
 * node; the merge rules keep them from replacing what edgeprov sets by accident (host name,
 * credentials, agent.conf, CA), they are not a sandbox. */
#define _DEFAULT_SOURCE /* explicit_bzero */
#include "provisioning/cloudinit.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "base/buf.h"
#include "base/error.h"

#define SUDO_RULE "ALL=(ALL) NOPASSWD:ALL"
#define DEFAULT_SHELL "/bin/bash"
#define SHELL_MAX 255
#define INSTANCE_ID_MAX 64
#define HOSTNAME_MAX EP_CLOUDINIT_HOSTNAME_MAX
#define LABEL_MAX 63
#define USER_NAME_MAX 32
#define ORCHESTRATOR_MAX EP_CLOUDINIT_ORCHESTRATOR_MAX
#define FIELD_MAX 64      /* longest field name in a message: "users[63].ssh_keys[63]" */
#define KEY_PATH_MAX 160  /* longest key path quoted in a message */
#define ORIGIN_EDGEPROV (-1)

/* ---- Document tree ---------------------------------------------------------------------- */

typedef enum node_kind { N_SCALAR, N_SEQ, N_MAP } node_kind;

typedef struct node node;
struct node {
  node_kind kind;
  int origin;                /* ORIGIN_EDGEPROV, or the fragment's index */
  yaml_scalar_style_t style; /* scalars: plain only for keys, booleans and fragment plain text */
  char *text;                /* scalars: len bytes plus a NUL (may hold NULs from "\0" escapes) */
  size_t len;
  node **items; /* sequences: the items; mappings: key, value, key, value, ... */
  size_t count, cap;
};

static void node_free(node *n) {
  if (!n) return;
  if (n->text) {
    explicit_bzero(n->text, n->len); /* the credentials file content is a scalar */
    free(n->text);
  }
  for (size_t i = 0; i < n->count; i++) node_free(n->items[i]);
  free(n->items);
  free(n);
}

static int reserve(node *n, size_t extra) {
  if (n->cap - n->count >= extra) return 0;
  size_t cap = n->cap ? n->cap : 8;
  while (cap - n->count < extra) cap *= 2;
  node **items = realloc(n->items, cap * sizeof *items);
  if (!items) return EP_ENOMEM;
  n->items = items;
  n->cap = cap;
  return 0;
}

/* Building: helpers take NULL (an earlier allocation failed) and record failures in oom. */
typedef struct build {
  int origin;
  bool oom;
} build;

static node *node_new(build *b, node_kind kind) {
  node *n = calloc(1, sizeof *n);
  if (!n) {
    b->oom = true;
    return NULL;
  }
  n->kind = kind;
  n->origin = b->origin;
  return n;
}

static node *scalar_len(build *b, const char *text, size_t len, yaml_scalar_style_t style) {
  node *n = node_new(b, N_SCALAR);
  if (!n) return NULL;
  n->text = malloc(len + 1);
  if (!n->text) {
    free(n);
    b->oom = true;
    return NULL;
  }
  memcpy(n->text, text, len);
  n->text[len] = '\0';
  n->len = len;
  n->style = style;
  return n;
}

/* A string value: a literal block when it spans lines, else single-quoted (the emitter moves
 * to double quotes when single quotes cannot carry it). Never plain. */
static node *str(build *b, const char *text) {
  yaml_scalar_style_t style = strchr(text, '\n') ? YAML_LITERAL_SCALAR_STYLE : YAML_SINGLE_QUOTED_SCALAR_STYLE;
  return scalar_len(b, text, strlen(text), style);
}

/* A plain scalar: keys edgeprov chooses and the booleans true/false. */
static node *plain(build *b, const char *text) { return scalar_len(b, text, strlen(text), YAML_PLAIN_SCALAR_STYLE); }

static node *boolean(build *b, bool value) { return plain(b, value ? "true" : "false"); }

static void add(build *b, node *seq, node *item) {
  if (!seq || !item || reserve(seq, 1) < 0) {
    node_free(item);
    b->oom = true;
    return;
  }
  seq->items[seq->count++] = item;
}

static void put(build *b, node *map, const char *key, node *value) {
  node *k = plain(b, key);
  if (!map || !k || !value || reserve(map, 2) < 0) {
    node_free(k);
    node_free(value);
    b->oom = true;
    return;
  }
  map->items[map->count++] = k;
  map->items[map->count++] = value;
}

static node *map_get(const node *map, const char *key, size_t len) {
  for (size_t i = 0; i + 1 < map->count; i += 2)
    if (map->items[i]->len == len && !memcmp(map->items[i]->text, key, len)) return map->items[i + 1];
  return NULL;
}

/* ---- Validation of the spec --------------------------------------------------------------- */

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

static int check_hostname(const char *field, const char *h) {
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

static int check_instance_id(const char *id) {
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

static int check_user_name(const char *field, const char *name) {
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

static int check_shell(const char *field, const char *shell) {
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

/* One authorized_keys line without options: "<type> <base64 blob naming the type> [comment]". */
static int check_ssh_key(const char *field, const char *key) {
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

/* One or more PEM CERTIFICATE blocks, LF line ends; nothing else (never a private key). */
static int check_pem(const char *field, const char *pem) {
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
static int check_credential(const char *field, const char *value, bool required) {
  if (!value || !*value) return required ? ep_error_set(EP_EINVAL, "%s: required", field) : 0;
  size_t len = strnlen(value, EP_CLOUDINIT_CREDENTIAL_MAX + 1);
  if (len > EP_CLOUDINIT_CREDENTIAL_MAX)
    return ep_error_set(EP_ERANGE, "%s: longer than %d bytes", field, EP_CLOUDINIT_CREDENTIAL_MAX);
  return printable(field, value, len, false);
}

static int check_orchestrator(const char *o) {
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

static int check_token_url(const char *url) {
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

static int check_users(const ep_cloudinit_spec *s) {
  if (s->user_count > EP_CLOUDINIT_USERS_MAX)
    return ep_error_set(EP_ERANGE, "users: %zu given; at most %d", s->user_count, EP_CLOUDINIT_USERS_MAX);
  if (s->user_count && !s->users) return ep_error_set(EP_EINVAL, "users: NULL with user_count %zu", s->user_count);
  char field[FIELD_MAX];
  for (size_t i = 0; i < s->user_count; i++) {
    const ep_cloudinit_user *u = &s->users[i];
    snprintf(field, sizeof field, "users[%zu].name", i);
    int r = check_user_name(field, u->name);
    if (r < 0) return r;
    for (size_t j = 0; j < i; j++)
      if (!strcmp(s->users[j].name, u->name))
        return ep_error_set(EP_EINVAL, "%s: '%s' is already users[%zu]", field, u->name, j);
    snprintf(field, sizeof field, "users[%zu].shell", i);
    if (u->shell && (r = check_shell(field, u->shell)) < 0) return r;
    if (u->ssh_key_count > EP_CLOUDINIT_SSH_KEYS_MAX)
      return ep_error_set(EP_ERANGE, "users[%zu].ssh_keys: %zu given; at most %d", i, u->ssh_key_count,
                          EP_CLOUDINIT_SSH_KEYS_MAX);
    if (u->ssh_key_count && !u->ssh_keys)
      return ep_error_set(EP_EINVAL, "users[%zu].ssh_keys: NULL with ssh_key_count %zu", i, u->ssh_key_count);
    for (size_t k = 0; k < u->ssh_key_count; k++) {
      snprintf(field, sizeof field, "users[%zu].ssh_keys[%zu]", i, k);
      if ((r = check_ssh_key(field, u->ssh_keys[k])) < 0) return r;
    }
  }
  return 0;
}

static int check_spec(const ep_cloudinit_spec *s) {
  int r;
  if ((r = check_instance_id(s->instance_id)) < 0 || (r = check_hostname("hostname", s->hostname)) < 0 ||
      (r = check_pem("ca_pem", s->ca_pem)) < 0 || (r = check_credential("client_id", s->client_id, true)) < 0 ||
      (r = check_credential("client_secret", s->client_secret, true)) < 0 ||
      (r = check_credential("project_id", s->project_id, false)) < 0 || (r = check_orchestrator(s->orchestrator)) < 0 ||
      (r = check_token_url(s->token_url)) < 0 || (r = check_users(s)) < 0)
    return r;
  if (s->fragment_count > EP_CLOUDINIT_FRAGMENTS_MAX)
    return ep_error_set(EP_ERANGE, "fragments: %zu given; at most %d", s->fragment_count, EP_CLOUDINIT_FRAGMENTS_MAX);
  if (s->fragment_count && !s->fragments)
    return ep_error_set(EP_EINVAL, "fragments: NULL with fragment_count %zu", s->fragment_count);
  return 0;
}

/* ---- Fragments ---------------------------------------------------------------------------- */

static int parse_error(const char *what, const yaml_parser_t *p) {
  if (p->error == YAML_MEMORY_ERROR) return ep_error_set(EP_ENOMEM, "%s: out of memory", what);
  if (p->error == YAML_READER_ERROR)
    return ep_error_set(EP_EINVAL, "%s: byte %zu: %s (expected UTF-8 text)", what, p->problem_offset,
                        p->problem ? p->problem : "unreadable");
  return ep_error_set(EP_EINVAL, "%s: line %zu column %zu: %s%s%s", what, p->problem_mark.line + 1,
                      p->problem_mark.column + 1, p->problem ? p->problem : "not YAML", p->context ? " " : "",
                      p->context ? p->context : "");
}

static void parser_input(yaml_parser_t *p, const char *text, size_t len) {
  yaml_parser_set_input_string(p, (const unsigned char *)text, len);
  yaml_parser_set_encoding(p, YAML_UTF8_ENCODING);
}

/* First pass over the events: refuses what the tree cannot carry faithfully or safely
 * (aliases and anchors: billion laughs; tags; several documents; deep nesting). */
static int fragment_scan(const char *what, const char *text, size_t len) {
  yaml_parser_t p;
  if (!yaml_parser_initialize(&p)) return ep_error_set(EP_ENOMEM, "%s: out of memory", what);
  parser_input(&p, text, len);
  int r = 0, depth = 0, documents = 0;
  for (bool end = false; !end && r == 0;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&p, &ev)) {
      r = parse_error(what, &p);
      break;
    }
    const yaml_char_t *anchor = NULL, *tag = NULL;
    switch (ev.type) {
    case YAML_SCALAR_EVENT:
      anchor = ev.data.scalar.anchor;
      tag = ev.data.scalar.tag;
      break;
    case YAML_SEQUENCE_START_EVENT:
      anchor = ev.data.sequence_start.anchor;
      tag = ev.data.sequence_start.tag;
      depth++;
      break;
    case YAML_MAPPING_START_EVENT:
      anchor = ev.data.mapping_start.anchor;
      tag = ev.data.mapping_start.tag;
      depth++;
      break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
      depth--;
      break;
    case YAML_DOCUMENT_START_EVENT:
      documents++;
      break;
    case YAML_STREAM_END_EVENT:
      end = true;
      break;
    default:
      break;
    }
    size_t line = ev.start_mark.line + 1;
    if (ev.type == YAML_ALIAS_EVENT || anchor)
      r = ep_error_set(EP_EINVAL,
                       "%s: line %zu: anchors and aliases (&name, *name) are refused; write the value out",
                       what, line);
    else if (tag)
      r = ep_error_set(EP_EINVAL, "%s: line %zu: tags (!name) are refused; write plain YAML", what, line);
    else if (depth > EP_CLOUDINIT_DEPTH_MAX)
      r = ep_error_set(EP_ERANGE, "%s: line %zu: nested deeper than %d levels", what, line,
                       EP_CLOUDINIT_DEPTH_MAX);
    else if (documents > 1)
      r = ep_error_set(EP_EINVAL, "%s: line %zu: a second YAML document; give one mapping per fragment", what,
                       line);
    yaml_event_delete(&ev);
  }
  yaml_parser_delete(&p);
  return r;
}

static void key_path(char out[KEY_PATH_MAX], const char *path, const node *key) {
  size_t n = (size_t)snprintf(out, KEY_PATH_MAX, "%s%s", path, *path ? "." : "");
  if (n >= KEY_PATH_MAX) n = KEY_PATH_MAX - 1;
  for (size_t i = 0; i < key->len && n + 1 < KEY_PATH_MAX; i++) {
    unsigned char c = (unsigned char)key->text[i];
    out[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
  }
  out[n] = '\0';
}

typedef struct loaded {
  yaml_document_t *doc;
  const char *what;
  build b;
} loaded;

/* Copies a loaded node into the tree; refuses non-scalar, empty, "<<" and repeated keys. */
static int convert(node **out, loaded *l, const yaml_node_t *yn) {
  size_t line = yn->start_mark.line + 1;
  node *n = NULL;
  if (yn->type == YAML_SCALAR_NODE) {
    yaml_scalar_style_t style = yn->data.scalar.style;
    const char *v = (const char *)yn->data.scalar.value;
    /* PyYAML (cloud-init's loader) resolves these plain scalars to tags it cannot construct,
     * which would make the whole user-data unreadable on the node. */
    if (style == YAML_PLAIN_SCALAR_STYLE && (!strcmp(v, "=") || !strcmp(v, "<<")))
      return ep_error_set(EP_EINVAL, "%s: line %zu: a plain '%s' cannot be loaded by cloud-init; quote it",
                          l->what, line, v);
    if (style == YAML_FOLDED_SCALAR_STYLE) style = YAML_LITERAL_SCALAR_STYLE; /* same string, written exactly */
    n = scalar_len(&l->b, (const char *)yn->data.scalar.value, yn->data.scalar.length, style);
  } else if (yn->type == YAML_SEQUENCE_NODE) {
    n = node_new(&l->b, N_SEQ);
    for (yaml_node_item_t *it = yn->data.sequence.items.start; n && it < yn->data.sequence.items.top; it++) {
      node *child = NULL;
      int r = convert(&child, l, yaml_document_get_node(l->doc, *it));
      if (r < 0) {
        node_free(n);
        return r;
      }
      add(&l->b, n, child);
    }
  } else if (yn->type == YAML_MAPPING_NODE) {
    /* Keys are looked up one by one: their number bounds the work. */
    if (yn->data.mapping.pairs.top - yn->data.mapping.pairs.start > EP_CLOUDINIT_KEYS_MAX)
      return ep_error_set(EP_ERANGE, "%s: line %zu: a mapping with more than %d keys", l->what, line,
                          EP_CLOUDINIT_KEYS_MAX);
    n = node_new(&l->b, N_MAP);
    for (yaml_node_pair_t *pair = yn->data.mapping.pairs.start; n && pair < yn->data.mapping.pairs.top; pair++) {
      const yaml_node_t *k = yaml_document_get_node(l->doc, pair->key);
      size_t kline = k->start_mark.line + 1;
      int r = 0;
      if (k->type != YAML_SCALAR_NODE)
        r = ep_error_set(EP_EINVAL, "%s: line %zu: a key must be a string, not a %s", l->what, kline,
                         k->type == YAML_MAPPING_NODE ? "mapping" : "sequence");
      else if (k->data.scalar.length == 0)
        r = ep_error_set(EP_EINVAL, "%s: line %zu: empty key", l->what, kline);
      else if (k->data.scalar.length == 2 && !memcmp(k->data.scalar.value, "<<", 2))
        r = ep_error_set(EP_EINVAL, "%s: line %zu: merge keys (<<) are refused; write the keys out", l->what,
                         kline);
      else if (map_get(n, (const char *)k->data.scalar.value, k->data.scalar.length)) {
        node shown = {.text = (char *)k->data.scalar.value, .len = k->data.scalar.length};
        char name[KEY_PATH_MAX];
        key_path(name, "", &shown);
        r = ep_error_set(EP_EINVAL, "%s: line %zu: key '%s' appears twice in one mapping", l->what, kline, name);
      }
      node *key = NULL, *value = NULL;
      if (r == 0) r = convert(&key, l, k);
      if (r == 0) r = convert(&value, l, yaml_document_get_node(l->doc, pair->value));
      if (r < 0) {
        node_free(key);
        node_free(n);
        return r;
      }
      if (key && value && reserve(n, 2) == 0) {
        n->items[n->count++] = key;
        n->items[n->count++] = value;
      } else {
        node_free(key);
        node_free(value);
        l->b.oom = true;
      }
    }
  }
  if (l->b.oom || !n) {
    node_free(n);
    return ep_error_set(EP_ENOMEM, "%s: line %zu: out of memory", l->what, line);
  }
  *out = n;
  return 0;
}

static const char *kind_name(node_kind k) { return k == N_MAP ? "mapping" : k == N_SEQ ? "sequence" : "scalar"; }

/* Parses text (len bytes, UTF-8 YAML holding one mapping) into a tree whose nodes carry
 * origin; what names the text in error messages ("fragments[2]", "user-data"). */
static int yaml_load(node **out, const char *what, int origin, const char *text, size_t len) {
  int r = fragment_scan(what, text, len);
  if (r < 0) return r;
  yaml_parser_t p;
  yaml_document_t doc;
  if (!yaml_parser_initialize(&p)) return ep_error_set(EP_ENOMEM, "%s: out of memory", what);
  parser_input(&p, text, len);
  if (!yaml_parser_load(&p, &doc)) {
    r = parse_error(what, &p);
    yaml_parser_delete(&p);
    return r;
  }
  const yaml_node_t *root = yaml_document_get_root_node(&doc);
  if (!root)
    r = ep_error_set(EP_EINVAL, "%s: empty; expected a mapping of cloud-config keys", what);
  else if (root->type != YAML_MAPPING_NODE)
    r = ep_error_set(EP_EINVAL, "%s: is a %s; expected a mapping of cloud-config keys (key: value)", what,
                     root->type == YAML_SEQUENCE_NODE ? "sequence" : "scalar");
  else {
    loaded l = {.doc = &doc, .what = what, .b = {.origin = origin}};
    r = convert(out, &l, root);
  }
  yaml_document_delete(&doc);
  yaml_parser_delete(&p);
  return r;
}

/* Parses fragment index into a tree (a mapping). */
static int fragment_load(node **out, size_t index, const char *text) {
  char what[32];
  snprintf(what, sizeof what, "fragments[%zu]", index);
  if (!text) return ep_error_set(EP_EINVAL, "%s: NULL", what);
  size_t len = strnlen(text, EP_CLOUDINIT_FRAGMENT_MAX + 1);
  if (len > EP_CLOUDINIT_FRAGMENT_MAX)
    return ep_error_set(EP_ERANGE, "%s: longer than %d bytes", what, EP_CLOUDINIT_FRAGMENT_MAX);
  return yaml_load(out, what, (int)index, text, len);
}

/* Whether path, taken from / with '.', '..' and repeated '/' resolved, is /etc/edgeprov or
 * below it. */
static bool under_edgeprov(const char *path, size_t len) {
  char *norm = malloc(len + 2);
  if (!norm) return true; /* refuse rather than guess */
  size_t n = 0;
  for (size_t i = 0; i < len;) {
    size_t start = i;
    while (i < len && path[i] != '/') i++;
    size_t c = i - start;
    if (c == 0 || (c == 1 && path[start] == '.')) {
      /* nothing */
    } else if (c == 2 && path[start] == '.' && path[start + 1] == '.') {
      while (n > 0 && norm[n - 1] != '/') n--;
      if (n > 0) n--;
    } else {
      norm[n++] = '/';
      memcpy(norm + n, path + start, c);
      n += c;
    }
    if (i < len) i++;
  }
  static const char dir[] = "/etc/edgeprov";
  size_t dir_len = sizeof dir - 1;
  bool under = n >= dir_len && !memcmp(norm, dir, dir_len) && (n == dir_len || norm[dir_len] == '/');
  free(norm);
  return under;
}

/* Keys a fragment may not set at the top, besides those edgeprov sets itself. */
static int fragment_policy(size_t index, const node *frag) {
  static const char *const hostname_keys[] = {"fqdn", "prefer_fqdn_over_hostname"};
  for (size_t i = 0; i < sizeof hostname_keys / sizeof hostname_keys[0]; i++)
    if (map_get(frag, hostname_keys[i], strlen(hostname_keys[i])))
      return ep_error_set(EP_EINVAL, "fragments[%zu]: '%s' would change the host name edgeprov sets; leave it out", index,
                          hostname_keys[i]);
  if (map_get(frag, "ca-certs", 8))
    return ep_error_set(EP_EINVAL,
                        "fragments[%zu]: 'ca-certs' is the deprecated spelling that cloud-init ignores next to "
                        "edgeprov's ca_certs; use 'ca_certs' (its trusted list is appended to)",
                        index);
  const node *files = map_get(frag, "write_files", 11);
  for (size_t i = 0; files && files->kind == N_SEQ && i < files->count; i++) {
    const node *item = files->items[i];
    const node *path = item->kind == N_MAP ? map_get(item, "path", 4) : NULL;
    if (!path || path->kind != N_SCALAR || !path->len)
      return ep_error_set(EP_EINVAL, "fragments[%zu]: write_files[%zu]: expected a mapping with a path", index, i);
    if (under_edgeprov(path->text, path->len))
      return ep_error_set(EP_EINVAL, "fragments[%zu]: write_files[%zu].path: under /etc/edgeprov, which edgeprov writes",
                          index, i);
  }
  return 0;
}

/* Merges the mapping src (fragment index) into dst, taking src's children. */
static int merge_map(node *dst, node *src, size_t index, const char *path) {
  for (size_t i = 0; i + 1 < src->count; i += 2) {
    node *k = src->items[i], *v = src->items[i + 1];
    node *have = map_get(dst, k->text, k->len);
    char where[KEY_PATH_MAX];
    key_path(where, path, k);
    if (!have) {
      if (dst->count / 2 >= EP_CLOUDINIT_KEYS_MAX)
        return ep_error_set(EP_ERANGE, "fragments[%zu]: '%s': more than %d keys in one mapping, fragments merged", index,
                            where, EP_CLOUDINIT_KEYS_MAX);
      if (reserve(dst, 2) < 0) return ep_error_set(EP_ENOMEM, "fragments[%zu]: out of memory", index);
      dst->items[dst->count++] = k;
      dst->items[dst->count++] = v;
      src->items[i] = src->items[i + 1] = NULL;
    } else if (have->kind == N_MAP && v->kind == N_MAP) {
      int r = merge_map(have, v, index, where);
      if (r < 0) return r;
    } else if (have->kind == N_SEQ && v->kind == N_SEQ) {
      if (reserve(have, v->count) < 0) return ep_error_set(EP_ENOMEM, "fragments[%zu]: out of memory", index);
      if (v->count) memcpy(have->items + have->count, v->items, v->count * sizeof *v->items);
      have->count += v->count;
      v->count = 0;
    } else {
      char by[32];
      if (have->origin == ORIGIN_EDGEPROV) snprintf(by, sizeof by, "edgeprov");
      else snprintf(by, sizeof by, "fragments[%d]", have->origin);
      if (have->kind == N_SCALAR && v->kind == N_SCALAR)
        return ep_error_set(EP_EINVAL, "fragments[%zu]: '%s' is set by %s", index, where, by);
      return ep_error_set(EP_EINVAL,
                          "fragments[%zu]: '%s' is a %s here and a %s in %s; only sequences (appended) and "
                          "mappings (merged) combine",
                          index, where, kind_name(v->kind), kind_name(have->kind), by);
    }
  }
  return 0;
}

/* ---- The documents ------------------------------------------------------------------------ */

static node *write_file(build *b, const char *path, const char *content, const char *permissions) {
  node *f = node_new(b, N_MAP);
  put(b, f, "path", str(b, path));
  put(b, f, "content", str(b, content));
  put(b, f, "owner", str(b, "root:root"));
  put(b, f, "permissions", str(b, permissions));
  put(b, f, "defer", boolean(b, false));
  return f;
}

static node *user_node(build *b, const ep_cloudinit_user *u) {
  node *m = node_new(b, N_MAP);
  put(b, m, "name", str(b, u->name));
  put(b, m, "lock_passwd", boolean(b, true));
  put(b, m, "shell", str(b, u->shell ? u->shell : DEFAULT_SHELL));
  if (u->sudo) put(b, m, "sudo", str(b, SUDO_RULE));
  if (u->ssh_key_count) {
    node *keys = node_new(b, N_SEQ);
    for (size_t k = 0; k < u->ssh_key_count; k++) add(b, keys, str(b, u->ssh_keys[k]));
    put(b, m, "ssh_authorized_keys", keys);
  }
  return m;
}

/* edgeprov's own part of the user-data. */
static int user_data_tree(node **out, const ep_cloudinit_spec *s) {
  /* Key=value files the node reads; values were checked to be printable ASCII. */
  char credentials[3 * (EP_CLOUDINIT_CREDENTIAL_MAX + 16)];
  char agent_conf[ORCHESTRATOR_MAX + EP_CLOUDINIT_TOKEN_URL_MAX + 32];
  snprintf(credentials, sizeof credentials, "client_id=%s\nclient_secret=%s\nproject_id=%s\n", s->client_id,
           s->client_secret, s->project_id ? s->project_id : "");
  snprintf(agent_conf, sizeof agent_conf, "orchestrator=%s\n%s%s%s", s->orchestrator, s->token_url ? "token_url=" : "",
           s->token_url ? s->token_url : "", s->token_url ? "\n" : "");

  build b = {.origin = ORIGIN_EDGEPROV};
  node *doc = node_new(&b, N_MAP);
  put(&b, doc, "hostname", str(&b, s->hostname));
  put(&b, doc, "preserve_hostname", boolean(&b, false));
  put(&b, doc, "ssh_pwauth", boolean(&b, false));
  node *ca = node_new(&b, N_MAP), *trusted = node_new(&b, N_SEQ);
  add(&b, trusted, str(&b, s->ca_pem));
  put(&b, ca, "trusted", trusted);
  put(&b, doc, "ca_certs", ca);
  if (s->user_count) {
    node *users = node_new(&b, N_SEQ);
    for (size_t i = 0; i < s->user_count; i++) add(&b, users, user_node(&b, &s->users[i]));
    put(&b, doc, "users", users);
  }
  node *files = node_new(&b, N_SEQ);
  add(&b, files, write_file(&b, EP_CLOUDINIT_CREDENTIALS_PATH, credentials, "0600"));
  add(&b, files, write_file(&b, EP_CLOUDINIT_AGENT_CONF_PATH, agent_conf, "0644"));
  put(&b, doc, "write_files", files);
  explicit_bzero(credentials, sizeof credentials);
  if (b.oom) {
    node_free(doc);
    return ep_error_set(EP_ENOMEM, "cloud-init user-data: out of memory");
  }
  *out = doc;
  return 0;
}

/* ---- Emitting ----------------------------------------------------------------------------- */

/* The output: grows up to EP_CLOUDINIT_MAX bytes, zeroing what it leaves behind (it holds the
 * client secret). */
typedef struct outbuf {
  ep_buf buf;
  bool over;
} outbuf;

static int out_write(void *data, unsigned char *bytes, size_t size) {
  outbuf *o = data;
  int r = ep_buf_append(&o->buf, bytes, size);
  if (r == EP_ERANGE) o->over = true;
  return r == 0;
}

static int emit(yaml_emitter_t *e, yaml_event_t *ev, int initialized) { return initialized && yaml_emitter_emit(e, ev); }

/* Plain scalars may resolve to other types (true, 0600, null) and are written only where the
 * tree says plain; the rest carry no tag and are quoted or block, so they read back as strings. */
static int emit_node(yaml_emitter_t *e, const node *n) {
  yaml_event_t ev;
  switch (n->kind) {
  case N_SCALAR:
    return emit(e, &ev,
                yaml_scalar_event_initialize(&ev, NULL, NULL, (const yaml_char_t *)n->text, (int)n->len,
                                             n->style == YAML_PLAIN_SCALAR_STYLE, 1, n->style));
  case N_SEQ:
    if (!emit(e, &ev, yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE))) return 0;
    for (size_t i = 0; i < n->count; i++)
      if (!emit_node(e, n->items[i])) return 0;
    return emit(e, &ev, yaml_sequence_end_event_initialize(&ev));
  case N_MAP:
    if (!emit(e, &ev, yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE))) return 0;
    for (size_t i = 0; i < n->count; i++)
      if (!emit_node(e, n->items[i])) return 0;
    return emit(e, &ev, yaml_mapping_end_event_initialize(&ev));
  }
  return 0;
}

static int render(char **out, size_t *ret_len, const char *what, const char *header, const node *root) {
  outbuf o = {.over = false};
  ep_buf_init(&o.buf, what, EP_CLOUDINIT_MAX, EP_BUF_WIPE);
  yaml_emitter_t e;
  yaml_event_t ev;
  if (!yaml_emitter_initialize(&e)) return ep_error_set(EP_ENOMEM, "%s: out of memory", what);
  yaml_emitter_set_output(&e, out_write, &o);
  yaml_emitter_set_unicode(&e, 1);
  yaml_emitter_set_width(&e, -1); /* no folding of long lines */
  yaml_emitter_set_indent(&e, 2);
  int ok = out_write(&o, (unsigned char *)(uintptr_t)header, strlen(header)) &&
           emit(&e, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING)) &&
           emit(&e, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1)) && emit_node(&e, root) &&
           emit(&e, &ev, yaml_document_end_event_initialize(&ev, 1)) &&
           emit(&e, &ev, yaml_stream_end_event_initialize(&ev)) && yaml_emitter_flush(&e);
  int r = 0;
  if (!ok && o.over)
    r = ep_error_set(EP_ERANGE, "%s: longer than %d bytes; shorten the site's cloud-config fragments", what, EP_CLOUDINIT_MAX);
  else if (!ok && e.error == YAML_EMITTER_ERROR)
    r = ep_error_set(EP_EINVAL, "%s: YAML emitter: %s", what, e.problem ? e.problem : "failed");
  else if (!ok)
    r = ep_error_set(EP_ENOMEM, "%s: out of memory", what);
  if (e.buffer.start) explicit_bzero(e.buffer.start, (size_t)(e.buffer.end - e.buffer.start));
  yaml_emitter_delete(&e);
  char *text = r == 0 ? ep_buf_take(&o.buf, ret_len) : NULL;
  ep_buf_free(&o.buf);
  if (r == 0 && !text) r = ep_error_set(EP_ENOMEM, "%s: out of memory", what);
  if (r < 0) return r;
  *out = text;
  return 0;
}

/* ---- API ---------------------------------------------------------------------------------- */

int ep_cloudinit_user_data(char **out, size_t *ret_len, const ep_cloudinit_spec *spec) {
  if (!out || !ret_len || !spec) return ep_error_set(EP_EINVAL, "cloud-init user-data: NULL argument");
  int r = check_spec(spec);
  if (r < 0) return r;
  node *doc = NULL;
  if ((r = user_data_tree(&doc, spec)) < 0) return r;
  for (size_t i = 0; i < spec->fragment_count && r == 0; i++) {
    node *frag = NULL;
    r = fragment_load(&frag, i, spec->fragments[i]);
    if (r == 0) r = fragment_policy(i, frag);
    if (r == 0) r = merge_map(doc, frag, i, "");
    node_free(frag);
  }
  if (r == 0) r = render(out, ret_len, "cloud-init user-data", "#cloud-config\n", doc);
  node_free(doc);
  return r;
}

int ep_cloudinit_meta_data(char **out, size_t *ret_len, const ep_cloudinit_spec *spec) {
  if (!out || !ret_len || !spec) return ep_error_set(EP_EINVAL, "cloud-init meta-data: NULL argument");
  int r;
  if ((r = check_instance_id(spec->instance_id)) < 0 || (r = check_hostname("hostname", spec->hostname)) < 0) return r;
  build b = {.origin = ORIGIN_EDGEPROV};
  node *doc = node_new(&b, N_MAP);
  put(&b, doc, "instance-id", str(&b, spec->instance_id));
  put(&b, doc, "local-hostname", str(&b, spec->hostname));
  if (b.oom) r = ep_error_set(EP_ENOMEM, "cloud-init meta-data: out of memory");
  else r = render(out, ret_len, "cloud-init meta-data", "", doc);
  node_free(doc);
  return r;
}

void ep_cloudinit_free(char *text) {
  if (!text) return;
  explicit_bzero(text, strlen(text));
  free(text);
}

/* ---- Reading the seed back ------------------------------------------------------------------ */

/* The scalar child key of map, as a NUL-terminated string without embedded NULs, or NULL. */
static const char *scalar_at(const node *map, const char *key) {
  const node *v = map && map->kind == N_MAP ? map_get(map, key, strlen(key)) : NULL;
  return v && v->kind == N_SCALAR && strlen(v->text) == v->len ? v->text : NULL;
}

/* The content of the write_files entry whose path is path, or NULL. */
static const char *written_file(const node *files, const char *path) {
  for (size_t i = 0; files && files->kind == N_SEQ && i < files->count; i++) {
    const char *p = scalar_at(files->items[i], "path");
    if (p && !strcmp(p, path)) return scalar_at(files->items[i], "content");
  }
  return NULL;
}

/* Copies the value of the "key=" line of a key=value file into out (cap bytes): 1 when found,
 * 0 when not, EP_ERANGE when longer. */
static int key_value(char *out, size_t cap, const char *file, const char *key, const char *field) {
  size_t klen = strlen(key);
  for (const char *line = file; *line;) {
    size_t n = strcspn(line, "\n");
    if (n > klen && !memcmp(line, key, klen) && line[klen] == '=') {
      if (n - klen - 1 >= cap) return ep_error_set(EP_ERANGE, "user-data: %s: longer than %zu bytes", field, cap - 1);
      memcpy(out, line + klen + 1, n - klen - 1);
      out[n - klen - 1] = '\0';
      return 1;
    }
    line += n;
    if (*line) line++;
  }
  return 0;
}

static int seed_fields(ep_cloudinit_seed *out, const node *doc) {
  const char *host = scalar_at(doc, "hostname");
  if (!host) return ep_error_set(EP_EINVAL, "user-data: hostname: missing (not written by edgeprov?)");
  int r = check_hostname("user-data: hostname", host);
  if (r < 0) return r;
  snprintf(out->hostname, sizeof out->hostname, "%s", host);

  const node *ca = map_get(doc, "ca_certs", 8), *trusted = ca && ca->kind == N_MAP ? map_get(ca, "trusted", 7) : NULL;
  const node *first = trusted && trusted->kind == N_SEQ && trusted->count ? trusted->items[0] : NULL;
  if (!first || first->kind != N_SCALAR || strlen(first->text) != first->len)
    return ep_error_set(EP_EINVAL, "user-data: ca_certs.trusted[0]: missing (the orchestrator CA)");
  if ((r = check_pem("user-data: ca_certs.trusted[0]", first->text)) < 0) return r;
  if (!(out->ca_pem = strdup(first->text))) return ep_error_set(EP_ENOMEM, "user-data: out of memory");

  const node *files = map_get(doc, "write_files", 11);
  const char *credentials = written_file(files, EP_CLOUDINIT_CREDENTIALS_PATH);
  const char *conf = written_file(files, EP_CLOUDINIT_AGENT_CONF_PATH);
  if (!credentials) return ep_error_set(EP_EINVAL, "user-data: write_files: no %s", EP_CLOUDINIT_CREDENTIALS_PATH);
  if (!conf) return ep_error_set(EP_EINVAL, "user-data: write_files: no %s", EP_CLOUDINIT_AGENT_CONF_PATH);
  struct {
    const char *file, *key, *field;
    char *out;
    size_t cap;
    bool required;
  } wanted[] = {
      {credentials, "client_id", "credentials: client_id", out->client_id, sizeof out->client_id, true},
      {credentials, "client_secret", "credentials: client_secret", out->client_secret, sizeof out->client_secret, true},
      {credentials, "project_id", "credentials: project_id", out->project_id, sizeof out->project_id, false},
      {conf, "orchestrator", "agent.conf: orchestrator", out->orchestrator, sizeof out->orchestrator, true},
      {conf, "token_url", "agent.conf: token_url", out->token_url, sizeof out->token_url, false},
  };
  for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
    if ((r = key_value(wanted[i].out, wanted[i].cap, wanted[i].file, wanted[i].key, wanted[i].field)) < 0) return r;
    if (r == 0 && wanted[i].required) return ep_error_set(EP_EINVAL, "user-data: %s: missing", wanted[i].field);
  }
  if ((r = check_credential("user-data: credentials: client_id", out->client_id, true)) < 0 ||
      (r = check_credential("user-data: credentials: client_secret", out->client_secret, true)) < 0 ||
      (r = check_credential("user-data: credentials: project_id", out->project_id, false)) < 0 ||
      (r = check_orchestrator(out->orchestrator)) < 0 || (r = check_token_url(out->token_url[0] ? out->token_url : NULL)) < 0)
    return r;
  return 0;
}

int ep_cloudinit_seed_read(ep_cloudinit_seed *out, const char *user_data, size_t len) {
  static const char header[] = "#cloud-config\n";
  if (!out || !user_data) return ep_error_set(EP_EINVAL, "user-data: NULL argument");
  memset(out, 0, sizeof *out);
  if (len > EP_CLOUDINIT_MAX) return ep_error_set(EP_ERANGE, "user-data: longer than %d bytes", EP_CLOUDINIT_MAX);
  if (len < sizeof header - 1 || memcmp(user_data, header, sizeof header - 1))
    return ep_error_set(EP_EINVAL, "user-data: does not start with #cloud-config");
  node *doc = NULL;
  int r = yaml_load(&doc, "user-data", ORIGIN_EDGEPROV, user_data, len);
  if (r == 0) r = seed_fields(out, doc);
  node_free(doc);
  if (r < 0) ep_cloudinit_seed_clear(out);
  return r;
}

void ep_cloudinit_seed_clear(ep_cloudinit_seed *seed) {
  if (!seed) return;
  free(seed->ca_pem);
  explicit_bzero(seed, sizeof *seed);
}
