/* core: the site config, see config.h. */
#define _GNU_SOURCE /* strdup, readlink */
#include "runtime/config.h"

#include <errno.h>
#include <libconfig.h>
#include <libgen.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/files.h"
#include "base/log.h"
#include "base/secret.h"
#include "base/suggest.h"
#include "net/https.h"

struct ep_config_source {
  config_t lc;
};

/* ---- small helpers ---------------------------------------------------------------- */

static void strv_free(ep_strv *v) {
  for (size_t i = 0; i < v->count; i++) free(v->items[i]);
  free(v->items);
  v->items = NULL;
  v->count = 0;
}

static bool strv_contains(const ep_strv *v, const char *s) {
  for (size_t i = 0; i < v->count; i++)
    if (strcmp(v->items[i], s) == 0) return true;
  return false;
}

static int strv_push(ep_strv *v, const char *s) {
  char **items = realloc(v->items, (v->count + 1) * sizeof *items);
  if (!items) return EP_ENOMEM;
  v->items = items;
  if (!(v->items[v->count] = strdup(s))) return EP_ENOMEM;
  v->count++;
  return 0;
}

static int replace_string(char **slot, const char *value) {
  char *copy = value ? strdup(value) : NULL;
  if (value && !copy) return EP_ENOMEM;
  free(*slot);
  *slot = copy;
  return 0;
}

bool ep_plugin_id_valid(const char *id) {
  size_t len = id ? strnlen(id, 64) : 0;
  if (len == 0 || len > 63 || id[0] < 'a' || id[0] > 'z') return false;
  for (size_t i = 0; i < len; i++) {
    char c = id[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

const char *ep_provisioning_mode_name(ep_provisioning_mode mode) {
  return mode == EP_MODE_NZTP ? "nztp" : "non-ztp";
}

char *ep_config_default_plugin_dir(void) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return NULL;
  exe[n] = '\0';
  char *dir = dirname(exe);
  char *out = NULL;
  if (asprintf(&out, "%s/../lib/edgeprov/plugins", dir) < 0) return NULL;
  char *resolved = realpath(out, NULL);
  if (resolved) {
    free(out);
    return resolved;
  }
  return out;
}

/* ---- value checks (return NULL when fine, or the reason) ----------------------------- */

static bool port_valid(const char *text) {
  if (!*text || strlen(text) > 5) return false;
  long v = 0;
  for (const char *p = text; *p; p++) {
    if (*p < '0' || *p > '9') return false;
    v = v * 10 + (*p - '0');
  }
  return v <= 65535;
}

static bool host_valid(const char *host, size_t len) {
  if (len == 0 || len > 253) return false;
  for (size_t i = 0; i < len; i++) {
    char c = host[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-'))
      return false;
  }
  return true;
}

/* "host:port", "[v6]:port" or, when unix_ok, "unix:/absolute/path". */
static const char *check_address(const char *value, bool unix_ok) {
  if (strncmp(value, "unix:", 5) == 0) {
    if (!unix_ok) return "UNIX sockets are not allowed here; use host:port";
    if (value[5] != '/') return "a UNIX socket path must be absolute (unix:/run/...)";
    if (strlen(value + 5) > 107) return "UNIX socket path longer than 107 bytes";
    return NULL;
  }
  if (value[0] == '[') {
    const char *close = strchr(value, ']');
    if (!close || close[1] != ':') return "expected [IPv6]:port";
    for (const char *p = value + 1; p < close; p++)
      if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F') || *p == ':' ||
            *p == '.'))
        return "bad IPv6 address";
    return port_valid(close + 2) ? NULL : "port must be a number from 0 to 65535";
  }
  const char *colon = strrchr(value, ':');
  if (!colon) return unix_ok ? "expected host:port or unix:/path" : "expected host:port";
  if (!host_valid(value, (size_t)(colon - value))) return "bad host name or address";
  return port_valid(colon + 1) ? NULL : "port must be a number from 0 to 65535";
}

/* True for a host:port on a loopback address (127.0.0.0/8, [::1], localhost). */
static bool loopback_address(const char *v) {
  return strncmp(v, "127.", 4) == 0 || strncmp(v, "[::1]:", 6) == 0 || strncmp(v, "localhost:", 10) == 0;
}

static const char *check_management(const char *v) { return check_address(v, true); }
static const char *check_network(const char *v) { return check_address(v, false); }

static const char *check_absolute_path(const char *v) {
  return v[0] == '/' ? NULL : "must be an absolute path";
}

static const char *check_readable_file(const char *v) {
  if (v[0] != '/') return "must be an absolute path";
  return access(v, R_OK) == 0 ? NULL : "file cannot be read";
}

static const char *check_https_url(const char *v) {
  if (strncmp(v, "https://", 8) != 0 && strncmp(v, "http://127.", 11) != 0 && strncmp(v, "http://localhost", 16) != 0)
    return "must be an https:// URL (http:// only on loopback)";
  for (const char *p = v; *p; p++)
    if ((unsigned char)*p <= 0x20 || *p == '"' || *p == '\\') return "must not contain spaces, quotes or backslashes";
  return strlen(v) > 1000 ? "longer than 1000 characters" : NULL;
}

/* True when every byte of v is in the set allowed in a URL, an iPXE script and a kernel
 * command line word: [A-Za-z0-9] and -._~:/?#[]@!$&'()*+,;=% (no space, quote, backslash,
 * newline or control byte). */
static bool script_safe(const char *v) {
  for (const char *p = v; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          strchr("-._~:/?#[]@!&()*+,;=%", c)))
      return false;
  }
  return true;
}

static const char *check_boot_url(const char *v) {
  if (strncmp(v, "https://", 8) != 0 && strncmp(v, "http://", 7) != 0) return "must be an https:// (or http://) URL";
  if (!script_safe(v)) return "may only hold URL characters (no spaces, quotes, $, backslashes or control bytes)";
  if (v[strlen(v) - 1] == '/') return "must not end with '/'";
  return strlen(v) > 512 ? "longer than 512 characters" : NULL;
}

static const char *check_proxy_url(const char *v) {
  if (!*v) return NULL;
  if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) return "must be an http:// or https:// URL";
  return script_safe(v) && strlen(v) <= 512 ? NULL : "may only hold URL characters, at most 512";
}

static const char *check_no_proxy(const char *v) {
  for (const char *p = v; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr(".,:-/[]", *p)))
      return "a comma-separated list of hosts, domains or addresses";
  return strlen(v) <= 512 ? NULL : "longer than 512 characters";
}

/* Kernel arguments: space-separated words of [A-Za-z0-9._,:=/+-]. */
static const char *check_kernel_args(const char *v) {
  for (const char *p = v; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr(" ._,:=/+-", *p)))
      return "words of letters, digits and ._,:=/+- separated by spaces";
  return strlen(v) <= 512 ? NULL : "longer than 512 characters";
}

static const char *check_module_name(const char *v) {
  if (!*v || strlen(v) > 63) return "a kernel module name of 1 to 63 characters";
  for (const char *p = v; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
      return "a kernel module name ([a-z0-9_-])";
  return NULL;
}

/* An audience of a token: 1 to EP_CONFIG_AUDIENCE_MAX of [A-Za-z0-9._:/-], as the identity
 * plugins put it into the aud claim unescaped. */
static const char *check_audience(const char *v) {
  size_t len = strlen(v);
  if (len == 0 || len > EP_CONFIG_AUDIENCE_MAX) return "an audience of 1 to 128 characters";
  for (const char *p = v; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("._:/-", *p)))
      return "an audience may only hold letters, digits and ._:/- (e.g. \"edgeprov\" or \"https://api.example/\")";
  return NULL;
}

static const char *check_plugin_id(const char *v) {
  return ep_plugin_id_valid(v) ? NULL : "not a plugin ID ([a-z][a-z0-9-]*, at most 63 characters)";
}

/* ---- the core schema ------------------------------------------------------------------ */

/* KEY_LEVEL: a log level's name in the file ("info"), an EP_LOG_* held as an int64_t.
 * KEY_CHOICE: one of the key's choices (case-insensitive) in the file, held as its index in
 * an int-sized enum whose values are those indexes (provisioning.mode, onboarding.tpm_identity). */
typedef enum { KEY_STRING, KEY_LIST, KEY_INT, KEY_BOOL, KEY_LEVEL, KEY_CHOICE } key_kind;

typedef struct core_key {
  const char *group;
  const char *name;
  key_kind kind;
  size_t offset; /* of a char * (KEY_STRING), an ep_strv (KEY_LIST), an int64_t (KEY_INT, KEY_LEVEL) or a bool
                    (KEY_BOOL) in ep_config */
  const char *(*check)(const char *value);
  int64_t min, max; /* KEY_INT: the accepted range */
  bool reload;      /* ep_config_reload applies it to a running daemon: a KEY_INT or KEY_LEVEL whose field is
                       an _Atomic int64_t, read by its users on any thread (see ep_config) */
  const char *const *choices; /* KEY_CHOICE: the names, NULL-terminated, in the enum's order */
} core_key;

static const char *const mode_choices[] = {"nztp", "non-ztp", NULL};            /* ep_provisioning_mode */
static const char *const tpm_identity_choices[] = {"off", "first_use", "required", NULL}; /* ep_tpm_identity_mode */
_Static_assert(sizeof(ep_provisioning_mode) == sizeof(int) && EP_MODE_NZTP == 0 && EP_MODE_NON_ZTP == 1,
               "provisioning.mode: its enum is the index of mode_choices");
_Static_assert(sizeof(ep_tpm_identity_mode) == sizeof(int) && EP_TPM_IDENTITY_OFF == 0 && EP_TPM_IDENTITY_FIRST_USE == 1 &&
                   EP_TPM_IDENTITY_REQUIRED == 2,
               "onboarding.tpm_identity: its enum is the index of tpm_identity_choices");

/* String and list keys leave min and max out (zero): keep -Wextra quiet about that here only. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
static const core_key core_keys[] = {
    {"listen", "management", KEY_STRING, offsetof(ep_config, listen_management), check_management},
    {"listen", "grpc", KEY_STRING, offsetof(ep_config, listen_grpc), check_network},
    {"listen", "https", KEY_STRING, offsetof(ep_config, listen_https), check_network},
    {"listen", "metrics", KEY_STRING, offsetof(ep_config, listen_metrics), check_network},
    {"metrics", "public", KEY_BOOL, offsetof(ep_config, metrics_public), NULL},
    {"listen", "dashboard", KEY_STRING, offsetof(ep_config, listen_dashboard), check_network},
    {"dashboard", "streams_max", KEY_INT, offsetof(ep_config, dashboard_streams_max), NULL, 1,
     EP_CONFIG_DASHBOARD_STREAMS_MAX},
    {"paths", "data", KEY_STRING, offsetof(ep_config, data_dir), check_absolute_path},
    {"paths", "plugins", KEY_LIST, offsetof(ep_config, plugin_dirs), check_absolute_path},
    {"tls", "cert", KEY_STRING, offsetof(ep_config, tls_cert), check_readable_file},
    {"tls", "key", KEY_STRING, offsetof(ep_config, tls_key), check_readable_file},
    {"tls", "ca", KEY_STRING, offsetof(ep_config, tls_ca), check_readable_file},
    {"provisioning", "mode", KEY_CHOICE, offsetof(ep_config, mode), NULL, 0, 0, false, mode_choices},
    {"provisioning", "orchestrator", KEY_STRING, offsetof(ep_config, orchestrator), check_network},
    {"provisioning", "token_url", KEY_STRING, offsetof(ep_config, token_url), check_https_url},
    {"cloudinit", "fragments", KEY_LIST, offsetof(ep_config, cloudinit_fragments), check_readable_file},
    {"cloudinit", "users", KEY_LIST, 0, NULL}, /* a list of groups: read by read_users */
    {"auth", "operator_token_file", KEY_STRING, offsetof(ep_config, operator_token_file), check_readable_file},
    {"auth", "token_audiences", KEY_LIST, offsetof(ep_config, token_audiences), check_audience},
    {"secrets", "recovery_key_file", KEY_STRING, offsetof(ep_config, recovery_key_file), check_readable_file},
    {"artifacts", "directory", KEY_STRING, offsetof(ep_config, artifacts.directory), check_absolute_path},
    {"artifacts", "base_url", KEY_STRING, offsetof(ep_config, artifacts.base_url), check_boot_url},
    {"artifacts", "kernel", KEY_STRING, offsetof(ep_config, artifacts.kernel), check_readable_file},
    {"artifacts", "modules_dir", KEY_STRING, offsetof(ep_config, artifacts.modules_dir), check_absolute_path},
    {"artifacts", "busybox", KEY_STRING, offsetof(ep_config, artifacts.busybox), check_readable_file},
    {"artifacts", "agent", KEY_STRING, offsetof(ep_config, artifacts.agent), check_readable_file},
    {"artifacts", "ipxe_efi", KEY_STRING, offsetof(ep_config, artifacts.ipxe_efi), check_readable_file},
    {"artifacts", "efi_stub", KEY_STRING, offsetof(ep_config, artifacts.efi_stub), check_readable_file},
    {"artifacts", "kernel_args", KEY_STRING, offsetof(ep_config, artifacts.kernel_args), check_kernel_args},
    {"artifacts", "proxy", KEY_STRING, offsetof(ep_config, artifacts.proxy), check_proxy_url},
    {"artifacts", "no_proxy", KEY_STRING, offsetof(ep_config, artifacts.no_proxy), check_no_proxy},
    {"artifacts", "signing_key", KEY_STRING, offsetof(ep_config, artifacts.signing_key), check_readable_file},
    {"artifacts", "signing_cert", KEY_STRING, offsetof(ep_config, artifacts.signing_cert), check_readable_file},
    {"artifacts", "modules", KEY_LIST, offsetof(ep_config, artifacts.modules), check_module_name},
    {"onboarding", "create_nodes", KEY_BOOL, offsetof(ep_config, onboarding_create_nodes), NULL},
    {"onboarding", "tpm_identity", KEY_CHOICE, offsetof(ep_config, tpm_identity), NULL, 0, 0, false,
     tpm_identity_choices},
    {"plugins", "enabled", KEY_LIST, offsetof(ep_config, plugins_enabled), check_plugin_id},
    {"plugins", "required", KEY_LIST, offsetof(ep_config, plugins_required), check_plugin_id},
    {"storage", "change_log_retention", KEY_INT, offsetof(ep_config, change_log_retention), NULL,
     EP_CONFIG_RETENTION_MIN, EP_CONFIG_RETENTION_MAX},
    {"logs", "max_bytes_per_host", KEY_INT, offsetof(ep_config, log_max_bytes_per_host), NULL,
     EP_CONFIG_LOG_MAX_BYTES_MIN, EP_CONFIG_LOG_MAX_BYTES_MAX, .reload = true},
    {"logs", "level", KEY_LEVEL, offsetof(ep_config, log_level), NULL, EP_LOG_ERROR, EP_LOG_DEBUG, .reload = true},
    {"limits", "node_reports_per_s", KEY_INT, offsetof(ep_config, limits.node_reports_per_s), NULL, 0, EP_CONFIG_LIMIT_MAX},
    {"limits", "node_reports_burst", KEY_INT, offsetof(ep_config, limits.node_reports_burst), NULL, 1, EP_CONFIG_LIMIT_MAX},
    {"limits", "node_log_lines_per_s", KEY_INT, offsetof(ep_config, limits.node_log_lines_per_s), NULL, 0,
     EP_CONFIG_LIMIT_MAX},
    {"limits", "node_log_lines_burst", KEY_INT, offsetof(ep_config, limits.node_log_lines_burst), NULL, 1,
     EP_CONFIG_LIMIT_MAX},
    {"southbound", "workers", KEY_INT, offsetof(ep_config, southbound.workers), NULL, 1, 256},
    {"southbound", "calls_max", KEY_INT, offsetof(ep_config, southbound.calls_max), NULL, 16, 1000000},
    {"southbound", "streams_per_connection", KEY_INT, offsetof(ep_config, southbound.streams_per_connection), NULL,
     1, 100000},
    {"southbound", "handshake_timeout_s", KEY_INT, offsetof(ep_config, southbound.handshake_timeout_s), NULL, 1, 300},
    {"southbound", "keepalive_s", KEY_INT, offsetof(ep_config, southbound.keepalive_s), NULL, 0, 86400},
    {"southbound", "idle_timeout_s", KEY_INT, offsetof(ep_config, southbound.idle_timeout_s), NULL, 0, 86400},
    {"southbound", "memory_mb", KEY_INT, offsetof(ep_config, southbound.memory_mb), NULL, 64, 1048576},
    /* Not reloaded: the onboarding method's deadline, set when the method is registered. */
    {"southbound", "first_message_s", KEY_INT, offsetof(ep_config, southbound.first_message_s), NULL, 1, 3600},
    {"southbound", "unknown_streams_max", KEY_INT, offsetof(ep_config, southbound.unknown_streams_max), NULL, 0,
     1000000, .reload = true},
    {"southbound", "unfinished_onboarding_s", KEY_INT, offsetof(ep_config, southbound.unfinished_onboarding_s), NULL, 10,
     3600, .reload = true},
    {"https", "threads", KEY_INT, offsetof(ep_config, https.threads), NULL, 1, EP_HTTPS_THREADS_MAX},
    {"https", "handler_threads", KEY_INT, offsetof(ep_config, https.handler_threads), NULL, 1, EP_HTTPS_THREADS_MAX},
    {"https", "connections_max", KEY_INT, offsetof(ep_config, https.connections_max), NULL, 1,
     EP_HTTPS_CONNECTIONS_MAX},
    {"https", "connections_per_ip", KEY_INT, offsetof(ep_config, https.connections_per_ip), NULL, 1,
     EP_HTTPS_CONNECTIONS_MAX},
    {"https", "header_timeout_s", KEY_INT, offsetof(ep_config, https.header_timeout_s), NULL, 1,
     EP_HTTPS_TIMEOUT_S_MAX},
    {"https", "idle_timeout_s", KEY_INT, offsetof(ep_config, https.idle_timeout_s), NULL, 1, EP_HTTPS_TIMEOUT_S_MAX},
};
#pragma GCC diagnostic pop
#define CORE_KEY_COUNT (sizeof core_keys / sizeof core_keys[0])

static const char *const core_groups[] = {"listen", "paths", "tls", "provisioning", "cloudinit", "auth", "secrets", "artifacts", "plugins", "storage", "limits", "logs", "onboarding", "southbound", "https", "metrics", "dashboard"};
#define CORE_GROUP_COUNT (sizeof core_groups / sizeof core_groups[0])

static bool is_core_group(const char *name) {
  for (size_t i = 0; i < CORE_GROUP_COUNT; i++)
    if (strcmp(core_groups[i], name) == 0) return true;
  return false;
}

/* artifacts.directory's default: <paths.data>/artifacts. */
static int default_artifacts_dir(ep_config *c) {
  free(c->artifacts.directory);
  c->artifacts.directory = NULL;
  return asprintf(&c->artifacts.directory, "%s/artifacts", c->data_dir) < 0 ? EP_ENOMEM : 0;
}

int ep_config_new_defaults(ep_config **out, const char *plugin_dir) {
  ep_config *c = calloc(1, sizeof *c);
  if (!c) return ep_error_set(EP_ENOMEM, "out of memory");
  c->mode = EP_MODE_NZTP;
  c->change_log_retention = EP_CONFIG_RETENTION_DEFAULT;
  c->log_max_bytes_per_host = EP_CONFIG_LOG_MAX_BYTES_DEFAULT;
  c->log_level = EP_LOG_INFO;
  c->dashboard_streams_max = EP_CONFIG_DASHBOARD_STREAMS_DEFAULT;
  c->limits = (ep_config_limits){EP_CONFIG_NODE_REPORTS_PER_S, EP_CONFIG_NODE_REPORTS_BURST,
                                 EP_CONFIG_NODE_LOG_LINES_PER_S, EP_CONFIG_NODE_LOG_LINES_BURST};
  c->southbound = (ep_config_southbound)EP_CONFIG_SOUTHBOUND_DEFAULTS;
  c->https = (ep_config_https){EP_HTTPS_THREADS_DEFAULT,         EP_HTTPS_HANDLER_THREADS_DEFAULT,
                               EP_HTTPS_CONNECTIONS_MAX_DEFAULT, EP_HTTPS_CONNECTIONS_PER_IP_DEFAULT,
                               EP_HTTPS_HEADER_TIMEOUT_S_DEFAULT, EP_HTTPS_IDLE_TIMEOUT_S_DEFAULT};
  if (replace_string(&c->listen_management, "unix:/run/edgeprov/edgeprov.sock") < 0 ||
      replace_string(&c->listen_grpc, "127.0.0.1:7443") < 0 ||
      replace_string(&c->listen_https, "127.0.0.1:8443") < 0 ||
      replace_string(&c->data_dir, "/var/lib/edgeprov") < 0 ||
      strv_push(&c->token_audiences, EP_CONFIG_AUDIENCE_DEFAULT) < 0 ||
      (plugin_dir && strv_push(&c->plugin_dirs, plugin_dir) < 0) || default_artifacts_dir(c) < 0) {
    ep_config_free(c);
    return ep_error_set(EP_ENOMEM, "out of memory");
  }
  *out = c;
  return 0;
}

void ep_config_free(ep_config *c) {
  if (!c) return;
  free(c->path);
  free(c->listen_management);
  free(c->listen_grpc);
  free(c->listen_https);
  free(c->listen_metrics);
  free(c->listen_dashboard);
  free(c->data_dir);
  free(c->tls_cert);
  free(c->tls_key);
  free(c->tls_ca);
  free(c->orchestrator);
  free(c->token_url);
  for (size_t i = 0; i < c->cloudinit_user_count; i++) {
    free(c->cloudinit_users[i].name);
    free(c->cloudinit_users[i].shell);
    strv_free(&c->cloudinit_users[i].ssh_keys);
  }
  free(c->cloudinit_users);
  strv_free(&c->cloudinit_fragments);
  free(c->operator_token_file);
  free(c->recovery_key_file);
  strv_free(&c->token_audiences);
  ep_config_artifacts *a = &c->artifacts;
  char **paths[] = {&a->directory, &a->base_url, &a->kernel, &a->modules_dir, &a->busybox, &a->agent, &a->ipxe_efi,
                    &a->efi_stub, &a->kernel_args, &a->proxy, &a->no_proxy, &a->signing_key, &a->signing_cert};
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) free(*paths[i]);
  strv_free(&a->modules);
  strv_free(&c->plugin_dirs);
  strv_free(&c->plugins_enabled);
  strv_free(&c->plugins_required);
  if (c->source) {
    config_destroy(&c->source->lc);
    free(c->source);
  }
  free(c);
}

/* ---- reading -------------------------------------------------------------------------- */

static const char *setting_file(const config_setting_t *s, const char *fallback) {
  const char *f = config_setting_source_file(s);
  return f ? f : fallback;
}

static const char *libconfig_type_name(int type) {
  switch (type) {
  case CONFIG_TYPE_GROUP: return "a group";
  case CONFIG_TYPE_INT:
  case CONFIG_TYPE_INT64: return "an integer";
  case CONFIG_TYPE_FLOAT: return "a floating-point number";
  case CONFIG_TYPE_STRING: return "a string";
  case CONFIG_TYPE_BOOL: return "a boolean";
  case CONFIG_TYPE_ARRAY: return "an array";
  case CONFIG_TYPE_LIST: return "a list";
  default: return "an unknown type";
  }
}

#define DIAG_AT(diags, sev, s, path, ...) \
  ep_diags_add((diags), (sev), setting_file((s), (path)), (int)config_setting_source_line(s), __VA_ARGS__)

static const core_key *find_core_key(const char *group, const char *name) {
  for (size_t i = 0; i < CORE_KEY_COUNT; i++)
    if (strcmp(core_keys[i].group, group) == 0 && strcmp(core_keys[i].name, name) == 0) return &core_keys[i];
  return NULL;
}

static void report_unknown_core_key(const config_setting_t *s, const char *group, const char *path,
                                    ep_diags *diags) {
  const char *names[CORE_KEY_COUNT];
  size_t n = 0;
  for (size_t i = 0; i < CORE_KEY_COUNT; i++)
    if (strcmp(core_keys[i].group, group) == 0) names[n++] = core_keys[i].name;
  const char *hint = ep_suggest(config_setting_name(s), names, n);
  if (hint)
    DIAG_AT(diags, EP_DIAG_ERROR, s, path, "unknown key '%s.%s' (did you mean '%s'?)", group,
            config_setting_name(s), hint);
  else
    DIAG_AT(diags, EP_DIAG_ERROR, s, path, "unknown key '%s.%s'", group, config_setting_name(s));
}

/* The value of a KEY_INT or KEY_LEVEL key; a reloaded one is an _Atomic int64_t. */
static int64_t key_int(const ep_config *c, const core_key *key) {
  const char *at = (const char *)c + key->offset;
  return key->reload ? atomic_load((_Atomic int64_t *)at) : *(const int64_t *)at;
}

static void key_int_set(ep_config *c, const core_key *key, int64_t value) {
  char *at = (char *)c + key->offset;
  if (key->reload)
    atomic_store((_Atomic int64_t *)at, value);
  else
    *(int64_t *)at = value;
}

/* Checks one string value of a core key; returns true when it is acceptable. */
static bool check_core_string(const config_setting_t *s, const core_key *key, const char *value,
                              const char *path, ep_diags *diags) {
  if (strnlen(value, EP_CONFIG_PATH_MAX + 1) > EP_CONFIG_PATH_MAX) {
    DIAG_AT(diags, EP_DIAG_ERROR, s, path, "'%s.%s': longer than %d bytes", key->group, key->name,
            EP_CONFIG_PATH_MAX);
    return false;
  }
  const char *why = key->check(value);
  if (why) {
    DIAG_AT(diags, EP_DIAG_ERROR, s, path, "'%s.%s': \"%.200s\": %s", key->group, key->name, value, why);
    return false;
  }
  return true;
}

static int read_core_key(ep_config *c, const config_setting_t *s, const core_key *key, const char *path,
                         ep_diags *diags) {
  int type = config_setting_type(s);
  if (key->kind == KEY_BOOL) {
    if (type != CONFIG_TYPE_BOOL) {
      DIAG_AT(diags, EP_DIAG_ERROR, s, path, "'%s.%s': expected true or false, got %s", key->group, key->name,
              libconfig_type_name(type));
      return 0;
    }
    *(bool *)((char *)c + key->offset) = config_setting_get_bool(s);
    return 0;
  }
  if (key->kind == KEY_INT) {
    if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) {
      DIAG_AT(diags, EP_DIAG_ERROR, s, path, "'%s.%s': expected an integer, got %s", key->group, key->name,
              libconfig_type_name(type));
      return 0;
    }
    long long value = config_setting_get_int64(s);
    if (value < key->min || value > key->max) {
      DIAG_AT(diags, EP_DIAG_ERROR, s, path, "'%s.%s': %lld is out of range [%lld, %lld]", key->group, key->name,
              value, (long long)key->min, (long long)key->max);
      return 0;
    }
    key_int_set(c, key, value);
    return 0;
  }
  if (key->kind == KEY_LEVEL) {
    int level = type == CONFIG_TYPE_STRING ? ep_log_level_parse(config_setting_get_string(s)) : -1;
    if (level < 0) {
      DIAG_AT(diags, EP_DIAG_ERROR, s, path, "'%s.%s': expected \"error\", \"warn\", \"info\" or \"debug\"", key->group,
              key->name);
      return 0;
    }
    key_int_set(c, key, level);
    return 0;
  }
  if (key->kind == KEY_CHOICE) {
    const char *value = type == CONFIG_TYPE_STRING ? config_setting_get_string(s) : NULL;
    int index = -1;
    for (int i = 0; value && key->choices[i]; i++)
      if (strcasecmp(value, key->choices[i]) == 0) index = i;
    if (index < 0) {
      char names[160] = "";
      for (int i = 0; key->choices[i]; i++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s\"%s\"", i == 0 ? "" : key->choices[i + 1] ? ", " : " or ",
                 key->choices[i]);
      DIAG_AT(diags, EP_DIAG_ERROR, s, path, "'%s.%s': must be %s", key->group, key->name, names);
      return 0;
    }
    *(int *)((char *)c + key->offset) = index;
    return 0;
  }
  if (key->kind == KEY_STRING) {
    if (type != CONFIG_TYPE_STRING) {
      DIAG_AT(diags, EP_DIAG_ERROR, s, path, "'%s.%s': expected a string, got %s", key->group, key->name,
              libconfig_type_name(type));
      return 0;
    }
    const char *value = config_setting_get_string(s);
    if (!check_core_string(s, key, value, path, diags)) return 0;
    return replace_string((char **)((char *)c + key->offset), value);
  }

  if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST) {
    DIAG_AT(diags, EP_DIAG_ERROR, s, path, "'%s.%s': expected a list of strings like [ \"a\", \"b\" ], got %s",
            key->group, key->name, libconfig_type_name(type));
    return 0;
  }
  int n = config_setting_length(s);
  if (n > EP_CONFIG_LIST_MAX) {
    DIAG_AT(diags, EP_DIAG_ERROR, s, path, "'%s.%s': %d entries, at most %d allowed", key->group, key->name, n,
            EP_CONFIG_LIST_MAX);
    return 0;
  }
  ep_strv *list = (ep_strv *)((char *)c + key->offset);
  strv_free(list);
  for (int i = 0; i < n; i++) {
    const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
    if (config_setting_type(e) != CONFIG_TYPE_STRING) {
      DIAG_AT(diags, EP_DIAG_ERROR, s, path, "'%s.%s'[%d]: expected a string, got %s", key->group, key->name, i,
              libconfig_type_name(config_setting_type(e)));
      continue;
    }
    const char *value = config_setting_get_string(e);
    if (!check_core_string(s, key, value, path, diags)) continue;
    if (strv_contains(list, value)) {
      DIAG_AT(diags, EP_DIAG_ERROR, s, path, "'%s.%s': \"%s\" is listed twice", key->group, key->name, value);
      continue;
    }
    if (strv_push(list, value) < 0) return EP_ENOMEM;
  }
  if (strcmp(key->group, "plugins") == 0 && strcmp(key->name, "enabled") == 0) c->plugins_enabled_set = true;
  return 0;
}

/* cloudinit.users = ( { name = "ops"; ssh_keys = [ "ssh-ed25519 ..." ]; sudo = true; shell = "/bin/bash"; }, ... );
 * Shapes are checked here; the values themselves when the user-data is rendered. */
static int read_users(ep_config *c, const config_setting_t *list, const char *path, ep_diags *diags) {
  int n = config_setting_is_list(list) ? config_setting_length(list) : -1;
  if (n < 0 || n > EP_CONFIG_USERS_MAX) {
    DIAG_AT(diags, EP_DIAG_ERROR, list, path, "'cloudinit.users': a list ( { name = ...; ssh_keys = [ ... ]; }, ... ) of at most %d users",
            EP_CONFIG_USERS_MAX);
    return 0;
  }
  c->cloudinit_users = calloc((size_t)n + 1, sizeof *c->cloudinit_users);
  if (!c->cloudinit_users) return EP_ENOMEM;
  for (int i = 0; i < n; i++) {
    const config_setting_t *u = config_setting_get_elem(list, (unsigned)i), *keys = NULL;
    const char *name = NULL, *shell = NULL;
    int sudo = 0;
    if (!config_setting_is_group(u) || !config_setting_lookup_string(u, "name", &name)) {
      DIAG_AT(diags, EP_DIAG_ERROR, u, path, "'cloudinit.users[%d]': a group with at least name = \"...\";", i);
      continue;
    }
    ep_config_user *user = &c->cloudinit_users[c->cloudinit_user_count++];
    if (!(user->name = strdup(name))) return EP_ENOMEM;
    config_setting_lookup_bool(u, "sudo", &sudo);
    user->sudo = sudo != 0;
    if (config_setting_lookup_string(u, "shell", &shell) && !(user->shell = strdup(shell))) return EP_ENOMEM;
    keys = config_setting_get_member(u, "ssh_keys");
    for (int k = 0; keys && k < config_setting_length(keys); k++) {
      const char *key = config_setting_get_string_elem(keys, (unsigned)k);
      if (!key) {
        DIAG_AT(diags, EP_DIAG_ERROR, keys, path, "'cloudinit.users[%d].ssh_keys': a list of strings", i);
        break;
      }
      if (strv_push(&user->ssh_keys, key) < 0) return EP_ENOMEM;
    }
  }
  return 0;
}

static int read_core_group(ep_config *c, const config_setting_t *group, const char *path, ep_diags *diags) {
  const char *gname = config_setting_name(group);
  if (!config_setting_is_group(group)) {
    DIAG_AT(diags, EP_DIAG_ERROR, group, path, "'%s' must be a group: %s = { ... };", gname, gname);
    return 0;
  }
  int n = config_setting_length(group);
  for (int i = 0; i < n; i++) {
    const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
    const core_key *key = find_core_key(gname, config_setting_name(s));
    if (!key) {
      report_unknown_core_key(s, gname, path, diags);
      continue;
    }
    int r = key->check || key->kind != KEY_LIST ? read_core_key(c, s, key, path, diags) : read_users(c, s, path, diags);
    if (r < 0) return r;
  }
  return 0;
}

static int read_file_checked(config_t *lc, const char *path, ep_diags *diags) {
  struct stat st;
  if (stat(path, &st) < 0) {
    ep_diags_add(diags, EP_DIAG_ERROR, path, 0, "cannot read: %s", strerror(errno));
    return EP_ENOENT;
  }
  if (!S_ISREG(st.st_mode)) {
    ep_diags_add(diags, EP_DIAG_ERROR, path, 0, "not a regular file");
    return EP_EINVAL;
  }
  if (st.st_size > EP_CONFIG_FILE_MAX) {
    ep_diags_add(diags, EP_DIAG_ERROR, path, 0, "%lld bytes, larger than the %d-byte limit",
                 (long long)st.st_size, EP_CONFIG_FILE_MAX);
    return EP_EINVAL;
  }
  char *copy = strdup(path);
  if (!copy) return EP_ENOMEM;
  config_set_include_dir(lc, dirname(copy));
  free(copy);
  if (config_read_file(lc, path) != CONFIG_TRUE) {
    if (config_error_type(lc) == CONFIG_ERR_FILE_IO)
      ep_diags_add(diags, EP_DIAG_ERROR, path, 0, "cannot read: %s", strerror(errno));
    else
      ep_diags_add(diags, EP_DIAG_ERROR, config_error_file(lc) ? config_error_file(lc) : path,
                   config_error_line(lc), "syntax: %s", config_error_text(lc));
    return EP_EINVAL;
  }
  return 0;
}

int ep_config_load(ep_config **out, const char *path, const char *default_plugin_dir, ep_diags *diags) {
  ep_config *c = NULL;
  int r = ep_config_new_defaults(&c, default_plugin_dir);
  if (r < 0) return r;
  if (!(c->path = strdup(path)) || !(c->source = calloc(1, sizeof *c->source))) {
    ep_config_free(c);
    return ep_error_set(EP_ENOMEM, "out of memory");
  }
  config_init(&c->source->lc);
  r = read_file_checked(&c->source->lc, path, diags);
  if (r < 0) goto fail;

  const config_setting_t *root = config_root_setting(&c->source->lc);
  int n = config_setting_length(root);
  for (int i = 0; i < n; i++) {
    const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
    const char *name = config_setting_name(s);
    if (is_core_group(name)) {
      r = read_core_group(c, s, path, diags);
      if (r < 0) goto fail;
    } else if (!config_setting_is_group(s)) {
      DIAG_AT(diags, EP_DIAG_ERROR, s, path,
              "'%s' is neither a core key nor a plugin section (a plugin's settings are a group: %s = { ... };)",
              name, name);
    }
  }
  for (size_t i = 0; i < c->plugins_required.count; i++) {
    const char *id = c->plugins_required.items[i];
    if (c->plugins_enabled_set && !strv_contains(&c->plugins_enabled, id)) {
      const config_setting_t *s = config_lookup(&c->source->lc, "plugins.required");
      DIAG_AT(diags, EP_DIAG_ERROR, s, path, "plugin '%s' is required but not in plugins.enabled", id);
    }
  }
  if (strncmp(c->listen_management, "unix:", 5) != 0 && (!c->tls_cert || !c->operator_token_file)) {
    const config_setting_t *s = config_lookup(&c->source->lc, "listen.management");
    DIAG_AT(diags, EP_DIAG_ERROR, s, path,
            "'listen.management': a TCP address needs tls.cert, tls.key and auth.operator_token_file "
            "(or use unix:/path)");
  }
  /* The figures tell whoever reads them how big the fleet is and what it does. */
  if (c->listen_metrics && !loopback_address(c->listen_metrics) && (!c->metrics_public || !c->tls_cert)) {
    const config_setting_t *s = config_lookup(&c->source->lc, "listen.metrics");
    if (!c->metrics_public)
      DIAG_AT(diags, EP_DIAG_ERROR, s, path,
              "'listen.metrics': %s is not a loopback address, and the figures show the fleet's size and activity to "
              "whoever can reach it: set metrics.public = true to serve them there (or use 127.0.0.1:PORT)",
              c->listen_metrics);
    else
      DIAG_AT(diags, EP_DIAG_ERROR, s, path,
              "'listen.metrics': %s is not a loopback address: metrics are served there over TLS, set tls.cert and tls.key",
              c->listen_metrics);
  }
  /* The dashboard shows the fleet to whoever holds the operator token, never in clear text off
   * this machine. */
  if (c->listen_dashboard && (!c->operator_token_file || (!c->tls_cert && !loopback_address(c->listen_dashboard)))) {
    const config_setting_t *s = config_lookup(&c->source->lc, "listen.dashboard");
    if (!c->operator_token_file)
      DIAG_AT(diags, EP_DIAG_ERROR, s, path,
              "'listen.dashboard': the dashboard's API asks for the operator token: set auth.operator_token_file");
    else
      DIAG_AT(diags, EP_DIAG_ERROR, s, path,
              "'listen.dashboard': %s is not a loopback address: the dashboard is served there over TLS, set tls.cert "
              "and tls.key (or use 127.0.0.1:PORT)",
              c->listen_dashboard);
  }
  if (c->onboarding_create_nodes && !c->operator_token_file) {
    const config_setting_t *s = config_lookup(&c->source->lc, "onboarding.create_nodes");
    DIAG_AT(diags, EP_DIAG_ERROR, s, path,
            "'onboarding.create_nodes': CreateNodes needs the operator token: set auth.operator_token_file");
  }
  if (c->token_audiences.count == 0) { /* an empty list, or every entry refused (reported above) */
    const config_setting_t *s = config_lookup(&c->source->lc, "auth.token_audiences");
    if (s && config_setting_length(s) == 0)
      DIAG_AT(diags, EP_DIAG_ERROR, s, path,
              "'auth.token_audiences': must list at least one audience (leave it out for [ \"%s\" ], the node API's)",
              EP_CONFIG_AUDIENCE_DEFAULT);
    if ((r = strv_push(&c->token_audiences, EP_CONFIG_AUDIENCE_DEFAULT)) < 0) goto fail;
  } else if (!strv_contains(&c->token_audiences, EP_CONFIG_AUDIENCE_DEFAULT)) {
    const config_setting_t *s = config_lookup(&c->source->lc, "auth.token_audiences");
    DIAG_AT(diags, EP_DIAG_WARNING, s, path,
            "'auth.token_audiences' leaves out \"%s\": nodes will get no token for the node API", EP_CONFIG_AUDIENCE_DEFAULT);
  }
  /* https.connections_per_ip: a quarter of connections_max unless the file sets it (and
   * read_core_key took it: a refused value is reported there). */
  const config_setting_t *per_ip = config_lookup(&c->source->lc, "https.connections_per_ip");
  if (!per_ip || config_setting_get_int64(per_ip) != c->https.connections_per_ip) {
    c->https.connections_per_ip = c->https.connections_max / 4 > 0 ? c->https.connections_max / 4 : 1;
  } else if (c->https.connections_per_ip > c->https.connections_max) {
    DIAG_AT(diags, EP_DIAG_ERROR, per_ip, path,
            "'https.connections_per_ip': %lld is more than https.connections_max (%lld)",
            (long long)c->https.connections_per_ip, (long long)c->https.connections_max);
    c->https.connections_per_ip = c->https.connections_max;
  }
  if ((c->tls_cert == NULL) != (c->tls_key == NULL)) {
    const config_setting_t *s = config_lookup(&c->source->lc, "tls");
    DIAG_AT(diags, EP_DIAG_ERROR, s, path, "'tls': cert and key must be set together");
  }
  if ((c->artifacts.signing_key == NULL) != (c->artifacts.signing_cert == NULL)) {
    const config_setting_t *s = config_lookup(&c->source->lc, "artifacts");
    DIAG_AT(diags, EP_DIAG_ERROR, s, path, "'artifacts': signing_key and signing_cert must be set together");
  }
  if (!config_lookup(&c->source->lc, "artifacts.directory") && (r = default_artifacts_dir(c)) < 0) goto fail;
  *out = c;
  return 0;
fail:
  ep_config_free(c);
  if (r == EP_ENOMEM) return ep_error_set(EP_ENOMEM, "out of memory");
  return ep_error_set(r, "%s: invalid config", path);
}

/* ---- plugin sections ------------------------------------------------------------------ */

static int set_field_from_setting(ep_field_value *field, const config_setting_t *s) {
  switch (config_setting_type(s)) {
  case CONFIG_TYPE_STRING: return ep_field_set_string(field, config_setting_get_string(s));
  case CONFIG_TYPE_INT:
  case CONFIG_TYPE_INT64: return ep_field_set_int(field, config_setting_get_int64(s));
  case CONFIG_TYPE_BOOL: return ep_field_set_bool(field, config_setting_get_bool(s) != 0);
  default:
    return ep_error_set(EP_EINVAL, "'%s': expected %s, got %s", field->decl->name,
                        ep_field_type_name(field->decl->type), libconfig_type_name(config_setting_type(s)));
  }
}

size_t ep_config_check_plugin_section(const ep_config *config, const char *plugin_id, ep_fields *settings,
                                      ep_diags *diags) {
  size_t errors_before = diags->errors;
  const config_setting_t *section = NULL;
  if (config->source) section = config_setting_get_member(config_root_setting(&config->source->lc), plugin_id);
  if (section) {
    int n = config_setting_length(section);
    for (int i = 0; i < n; i++) {
      const config_setting_t *s = config_setting_get_elem(section, (unsigned)i);
      const char *name = config_setting_name(s);
      ep_field_value *field = ep_fields_find(settings, name);
      if (!field) {
        const char *hint = ep_fields_suggest(settings, name);
        if (hint)
          DIAG_AT(diags, EP_DIAG_ERROR, s, config->path, "unknown key '%s.%s' (did you mean '%s'?)", plugin_id,
                  name, hint);
        else
          DIAG_AT(diags, EP_DIAG_ERROR, s, config->path,
                  "unknown key '%s.%s' (see: edgeprov plugins describe %s)", plugin_id, name, plugin_id);
        continue;
      }
      if (set_field_from_setting(field, s) < 0)
        DIAG_AT(diags, EP_DIAG_ERROR, s, config->path, "plugin '%s': %s", plugin_id, ep_error_message());
    }
  }
  for (uint32_t i = 0; i < settings->count; i++) {
    const ep_field_value *field = &settings->items[i];
    if (!ep_field_missing(field)) continue;
    if (section)
      DIAG_AT(diags, EP_DIAG_ERROR, section, config->path, "plugin '%s': missing required setting '%s' (%s)",
              plugin_id, field->decl->name, ep_field_type_name(field->decl->type));
    else
      ep_diags_add(diags, EP_DIAG_ERROR, config->path, 0,
                   "plugin '%s': missing required setting '%s' (%s): add %s = { %s = ...; };", plugin_id,
                   field->decl->name, ep_field_type_name(field->decl->type), plugin_id, field->decl->name);
  }
  return diags->errors - errors_before;
}

void ep_config_check_sections(const ep_config *config, const char *const *known_ids, size_t known_count,
                              const ep_config_refused *refused, size_t refused_count, ep_diags *diags) {
  if (!config->source) return;
  const config_setting_t *root = config_root_setting(&config->source->lc);
  int n = config_setting_length(root);
  const char **candidates = calloc(known_count + CORE_GROUP_COUNT, sizeof *candidates);
  if (!candidates) return;
  for (size_t i = 0; i < CORE_GROUP_COUNT; i++) candidates[i] = core_groups[i];
  for (size_t i = 0; i < known_count; i++) candidates[CORE_GROUP_COUNT + i] = known_ids[i];
  for (int i = 0; i < n; i++) {
    const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
    const char *name = config_setting_name(s);
    if (is_core_group(name) || !config_setting_is_group(s)) continue;
    bool known = false;
    for (size_t k = 0; k < known_count && !known; k++) known = strcmp(known_ids[k], name) == 0;
    const ep_config_refused *was_refused = NULL;
    for (size_t k = 0; !known && k < refused_count && !was_refused; k++)
      if (strcmp(refused[k].id, name) == 0) was_refused = &refused[k];
    if (was_refused) {
      DIAG_AT(diags, EP_DIAG_ERROR, s, config->path, "section '%s' configures plugin %s, which was refused: %s", name,
              was_refused->path, was_refused->reason);
    } else if (!known) {
      const char *hint = ep_suggest(name, candidates, known_count + CORE_GROUP_COUNT);
      if (hint)
        DIAG_AT(diags, EP_DIAG_ERROR, s, config->path, "unknown key '%s' (did you mean '%s'?)", name, hint);
      else
        DIAG_AT(diags, EP_DIAG_ERROR, s, config->path,
                "unknown key '%s': not a core key and no plugin with this ID was found", name);
    } else if (!ep_config_plugin_enabled(config, name)) {
      DIAG_AT(diags, EP_DIAG_WARNING, s, config->path,
              "section '%s' configures a plugin that is not in plugins.enabled", name);
    }
  }
  free(candidates);
}

bool ep_config_plugin_enabled(const ep_config *config, const char *plugin_id) {
  return !config->plugins_enabled_set || strv_contains(&config->plugins_enabled, plugin_id);
}

int ep_strv_push(ep_strv *v, const char *s) { return strv_push(v, s); }

bool ep_config_plugins_listed(const ep_config *config) { return config->plugins_enabled_set; }

bool ep_config_has_section(const ep_config *config, const char *plugin_id) {
  return config->source && config_setting_get_member(config_root_setting(&config->source->lc), plugin_id) != NULL;
}

bool ep_config_plugin_required(const ep_config *config, const char *plugin_id) {
  return strv_contains(&config->plugins_required, plugin_id);
}

int ep_config_read_tls_files(const ep_config *config, char **ret_cert, char **ret_key) {
  char *cert = NULL, *key = NULL;
  int r = ep_read_text_file(&cert, config->tls_cert, 1 << 20, EP_FILE_ANY_ACCESS);
  if (r == 0) r = ep_read_secret_file(&key, config->tls_key, 1 << 20);
  if (r < 0) {
    free(cert);
    return r;
  }
  *ret_cert = cert;
  *ret_key = key;
  return 0;
}

/* ---- reload --------------------------------------------------------------------------- */

static bool strings_equal(const char *a, const char *b) { return a == b || (a && b && strcmp(a, b) == 0); }

static bool strv_equal(const ep_strv *a, const ep_strv *b) {
  if (a->count != b->count) return false;
  for (size_t i = 0; i < a->count; i++)
    if (strcmp(a->items[i], b->items[i]) != 0) return false;
  return true;
}

static bool users_equal(const ep_config *a, const ep_config *b) {
  if (a->cloudinit_user_count != b->cloudinit_user_count) return false;
  for (size_t i = 0; i < a->cloudinit_user_count; i++) {
    const ep_config_user *x = &a->cloudinit_users[i], *y = &b->cloudinit_users[i];
    if (!strings_equal(x->name, y->name) || !strings_equal(x->shell, y->shell) || x->sudo != y->sudo ||
        !strv_equal(&x->ssh_keys, &y->ssh_keys))
      return false;
  }
  return true;
}

/* True when two settings of a file hold the same value (groups: the same members, in any order). */
static bool settings_equal(const config_setting_t *a, const config_setting_t *b) {
  if (!a || !b) return a == b;
  int type = config_setting_type(a);
  if (type != config_setting_type(b)) return false;
  switch (type) {
  case CONFIG_TYPE_INT:
  case CONFIG_TYPE_INT64: return config_setting_get_int64(a) == config_setting_get_int64(b);
  case CONFIG_TYPE_FLOAT: return config_setting_get_float(a) == config_setting_get_float(b);
  case CONFIG_TYPE_BOOL: return config_setting_get_bool(a) == config_setting_get_bool(b);
  case CONFIG_TYPE_STRING: return strcmp(config_setting_get_string(a), config_setting_get_string(b)) == 0;
  default: break;
  }
  int n = config_setting_length(a);
  if (n != config_setting_length(b)) return false;
  for (int i = 0; i < n; i++) {
    const config_setting_t *x = config_setting_get_elem(a, (unsigned)i);
    const config_setting_t *y = type == CONFIG_TYPE_GROUP ? config_setting_get_member(b, config_setting_name(x))
                                                          : config_setting_get_elem(b, (unsigned)i);
    if (!settings_equal(x, y)) return false;
  }
  return true;
}

static bool core_key_equal(const ep_config *a, const ep_config *b, const core_key *key) {
  const char *x = (const char *)a + key->offset, *y = (const char *)b + key->offset;
  switch (key->kind) {
  case KEY_INT:
  case KEY_LEVEL: return key_int(a, key) == key_int(b, key);
  case KEY_BOOL: return *(const bool *)x == *(const bool *)y;
  case KEY_CHOICE: return *(const int *)x == *(const int *)y;
  case KEY_STRING: return strings_equal(*(char *const *)x, *(char *const *)y);
  case KEY_LIST:
    if (key->offset == 0) return users_equal(a, b); /* cloudinit.users */
    return strv_equal((const ep_strv *)x, (const ep_strv *)y);
  }
  return false;
}

static void format_value(char *buf, size_t len, const core_key *key, int64_t value) {
  if (key->kind == KEY_LEVEL)
    snprintf(buf, len, "%s", ep_log_level_name((int)value));
  else
    snprintf(buf, len, "%lld", (long long)value);
}

/* Reports the plugin sections (top-level groups that are not core groups) that differ. */
static void report_sections(const ep_config *running, const ep_config *next, ep_config_change_fn *changed,
                            void *user) {
  const config_setting_t *roots[2] = {running->source ? config_root_setting(&running->source->lc) : NULL,
                                      next->source ? config_root_setting(&next->source->lc) : NULL};
  for (int side = 0; side < 2; side++) {
    const config_setting_t *root = roots[side], *other = roots[1 - side];
    for (int i = 0; root && i < config_setting_length(root); i++) {
      const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
      const char *name = config_setting_name(s);
      if (is_core_group(name) || !config_setting_is_group(s)) continue;
      const config_setting_t *match = other ? config_setting_get_member(other, name) : NULL;
      if (side == 1 && match) continue; /* compared from the running side */
      if (!settings_equal(s, match)) changed(user, name, false, NULL, NULL);
    }
  }
}

size_t ep_config_reload(ep_config *running, const ep_config *next, ep_config_change_fn *changed, void *user) {
  size_t applied = 0;
  for (size_t i = 0; i < CORE_KEY_COUNT; i++) {
    const core_key *key = &core_keys[i];
    if (core_key_equal(running, next, key)) continue;
    char name[64], was[32] = "", now[32] = "";
    snprintf(name, sizeof name, "%s.%s", key->group, key->name);
    if (!key->reload) {
      changed(user, name, false, NULL, NULL);
      continue;
    }
    format_value(was, sizeof was, key, key_int(running, key));
    format_value(now, sizeof now, key, key_int(next, key));
    key_int_set(running, key, key_int(next, key));
    applied++;
    changed(user, name, true, was, now);
  }
  report_sections(running, next, changed, user);
  return applied;
}
