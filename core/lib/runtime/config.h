/* core: the site config (edgeprov.conf, libconfig syntax): core keys, embedded defaults,
 * and validation of each plugin's section against the plugin's declared settings. */
#ifndef EP_CORE_CONFIG_H
#define EP_CORE_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/diag.h"
#include "base/fields.h"

#define EP_CONFIG_FILE_MAX (1024 * 1024) /* largest config file read */
#define EP_CONFIG_LIST_MAX 64            /* most entries in one list (plugin dirs, plugins) */
#define EP_CONFIG_PATH_MAX 1024          /* longest path or address value */
#define EP_CONFIG_AUDIENCE_MAX 128       /* longest audience of auth.token_audiences */
#define EP_CONFIG_AUDIENCE_DEFAULT "edgeprov" /* the node API's own audience (EP_NODE_AUDIENCE) */
/* storage.change_log_retention: how many of the most recent store revisions the change log
 * keeps (older ones are compacted away by core/lib/housekeeping.c). */
#define EP_CONFIG_RETENTION_DEFAULT 10000
#define EP_CONFIG_RETENTION_MIN 100
#define EP_CONFIG_RETENTION_MAX 100000000

typedef enum { EP_MODE_NZTP, EP_MODE_NON_ZTP } ep_provisioning_mode;

/* onboarding.tpm_identity: which nodes must prove they hold their host's TPM before they get
 * credentials. A host registered with an EK (host add --ek) always must. */
typedef enum {
  EP_TPM_IDENTITY_OFF,       /* "off" (default): only hosts registered with an EK */
  EP_TPM_IDENTITY_FIRST_USE, /* "first_use": a host without one records the EK of the first node that proves it */
  EP_TPM_IDENTITY_REQUIRED,  /* "required": every host needs a registered EK; others are refused */
} ep_tpm_identity_mode;

typedef struct ep_strv {
  char **items;
  size_t count;
} ep_strv;

typedef struct ep_config_source ep_config_source;

#define EP_CONFIG_USERS_MAX 64

/* A user the site puts on every installed node (cloudinit.users). */
typedef struct ep_config_user {
  char *name;
  ep_strv ssh_keys;
  bool sudo;
  char *shell; /* NULL: the default */
} ep_config_user;

/* artifacts.*: what `edgeprov artifacts build` curates. A NULL path means "find it" (see
 * core/artifacts); strings are validated for scripts and command lines when read. */
typedef struct ep_config_artifacts {
  char *directory;   /* where the artifacts are written and served; default <paths.data>/artifacts */
  char *base_url;    /* where nodes fetch them; NULL: https://<listen.https>/boot */
  char *kernel;      /* the Micro-OS kernel; NULL: the newest /boot/vmlinuz-* */
  char *modules_dir; /* its modules; NULL: /lib/modules/<version of kernel> */
  char *busybox;     /* a static busybox; NULL: /bin/busybox */
  char *agent;       /* edgeprov-agent; NULL: next to the running program */
  char *ipxe_efi;    /* iPXE EFI binary with HTTPS; NULL: /usr/local/share/edgeprov/ipxe/ipxe.efi */
  char *efi_stub;    /* systemd's EFI stub for the UKI; NULL: /usr/lib/systemd/boot/efi/linuxx64.efi.stub */
  char *kernel_args; /* extra Micro-OS kernel arguments; NULL: console=tty0 console=ttyS0,115200 */
  char *proxy;       /* proxy URL the Micro-OS agent uses; NULL: none */
  char *no_proxy;    /* hosts it reaches directly */
  char *signing_key; /* Secure Boot db key and certificate (PEM); NULL: artifacts are unsigned */
  char *signing_cert;
  ep_strv modules;   /* extra kernel modules, by name */
} ep_config_artifacts;

/* limits.*: budgets each enrolled node is held to, per node: a rate per second and a burst
 * (token buckets). A rate of 0 switches that budget off. */
#define EP_CONFIG_NODE_REPORTS_PER_S 5 /* the agent sends progress at most every 500 ms */
#define EP_CONFIG_NODE_REPORTS_BURST 20
#define EP_CONFIG_NODE_LOG_LINES_PER_S 32 /* 16 lines a report, 2 progress reports a second */
#define EP_CONFIG_NODE_LOG_LINES_BURST 256
#define EP_CONFIG_LIMIT_MAX 1000000 /* largest rate or burst accepted */
typedef struct ep_config_limits {
  int64_t node_reports_per_s;   /* ReportStatus calls and workflow progress reports */
  int64_t node_reports_burst;
  int64_t node_log_lines_per_s; /* a node's report log lines the daemon writes to its log */
  int64_t node_log_lines_burst;
} ep_config_limits;

/* southbound.*: budgets of the node-facing gRPC server (README, "Southbound limits"). Nodes
 * not (yet) known to the inventory get their own, smaller budget, so a flood of them, even from
 * the address of a whole site behind one NAT, cannot starve registered nodes. */
typedef struct ep_config_southbound {
  int64_t workers;                /* threads serving every call */
  int64_t calls_max;              /* calls at once; more get RESOURCE_EXHAUSTED */
  int64_t streams_per_connection; /* calls one connection may have open */
  int64_t handshake_timeout_s;    /* a connection's TLS and HTTP/2 handshake */
  int64_t keepalive_s;            /* idle connections are pinged this often, dropped if silent */
  int64_t idle_timeout_s;         /* a connection without calls is closed after this */
  int64_t memory_mb;              /* gRPC's memory quota for all connections */
  int64_t first_message_s;        /* an onboarding stream must say who it is within this */
  /* The two below are reloaded (see ep_config_reload): atomic, read one at a time. */
  _Atomic int64_t unknown_streams_max;    /* onboarding streams of unknown nodes waiting at once */
  _Atomic int64_t unfinished_onboarding_s; /* credentials left by a cut onboarding are replaced after this */
} ep_config_southbound;
#define EP_CONFIG_SOUTHBOUND_DEFAULTS {16, 65536, 100, 10, 60, 600, 2048, 10, 1000, 60}
/* https.*: the embedded HTTPS server's threads, connection caps and request deadline (see
 * ep_https_limits in net/https.h, which holds the defaults and ranges). connections_per_ip
 * defaults to a quarter of connections_max and may not exceed it. */
typedef struct ep_config_https {
  int64_t threads;
  int64_t handler_threads;
  int64_t connections_max;
  int64_t connections_per_ip;
  int64_t header_timeout_s;
  int64_t idle_timeout_s;
} ep_config_https;

/* logs.max_bytes_per_host: how much of each node's log the store keeps (oldest lines go first). */
#define EP_CONFIG_LOG_MAX_BYTES_DEFAULT (1024 * 1024)
#define EP_CONFIG_LOG_MAX_BYTES_MIN (32 * 1024)
#define EP_CONFIG_LOG_MAX_BYTES_MAX (8 * 1024 * 1024) /* slots of at most 64 KiB: an append rewrites one */

#define EP_CONFIG_DASHBOARD_STREAMS_DEFAULT 16
#define EP_CONFIG_DASHBOARD_STREAMS_MAX 1024

/* A validated site config. Every field is set (defaults fill what the file leaves out).
 * Thread contract: a config is written only while it is read in, and after that only by
 * ep_config_reload, on one thread (edgeprovd's main thread, on SIGHUP), which changes just the
 * _Atomic fields: any thread may read those at any time (each read is one atomic load, so read a
 * value once where two reads must agree); every other field stays as it was read in. */
typedef struct ep_config {
  char *path; /* the file read, or NULL for embedded defaults */
  char *listen_management; /* "unix:/path" or "host:port" */
  char *listen_grpc;       /* southbound gRPC, "host:port" */
  char *listen_https;      /* embedded HTTPS server, "host:port" */
  char *listen_metrics;    /* Prometheus /metrics, "host:port"; NULL (the default): not served */
  bool metrics_public;     /* metrics.public: listen.metrics may be a non-loopback address (then over TLS) */
  char *listen_dashboard;  /* the web dashboard, "host:port"; NULL (the default): not served */
  int64_t dashboard_streams_max; /* dashboard.streams_max: its event streams open at once */
  char *data_dir;
  ep_strv plugin_dirs; /* searched in order; the first plugin with an ID wins */
  char *tls_cert;      /* PEM files, NULL when unset */
  char *tls_key;
  char *tls_ca;
  char *operator_token_file; /* bearer token operators present over TCP; NULL when unset */
  char *recovery_key_file;   /* secrets.recovery_key_file: the site key nodes' disk recovery keys are stored under
                                (provisioning/recovery_keys.h); NULL when unset (none are taken). Restart-only */
  ep_strv token_audiences;   /* auth.token_audiences: what the token endpoint issues tokens for; default
                                [ EP_CONFIG_AUDIENCE_DEFAULT ], never empty */
  ep_provisioning_mode mode;
  char *orchestrator;  /* host:port nodes dial for the southbound API; NULL: listen.grpc */
  char *token_url;     /* where nodes get tokens; NULL: the identity plugin's, or listen.https's /oauth2/token */
  ep_config_user *cloudinit_users; /* cloudinit.users */
  size_t cloudinit_user_count;
  ep_strv cloudinit_fragments;     /* cloudinit.fragments: cloud-config files merged into user-data */
  ep_config_artifacts artifacts; /* artifacts.* */
  ep_config_limits limits;       /* limits.* */
  ep_config_southbound southbound; /* southbound.* */
  ep_config_https https;         /* https.* */
  ep_tpm_identity_mode tpm_identity; /* onboarding.tpm_identity */
  bool onboarding_create_nodes;  /* onboarding.create_nodes: serve CreateNodes on listen.grpc (default false) */
  int64_t change_log_retention;  /* storage.change_log_retention, EP_CONFIG_RETENTION_MIN..MAX */
  _Atomic int64_t log_max_bytes_per_host; /* logs.max_bytes_per_host, EP_CONFIG_LOG_MAX_BYTES_MIN..MAX; reloaded */
  _Atomic int64_t log_level;      /* logs.level, an EP_LOG_* (default EP_LOG_INFO); reloaded. Only edgeprovd
                                     applies it (its --log-level wins over it) */
  bool plugins_enabled_set; /* false: every plugin found is enabled */
  ep_strv plugins_enabled;  /* in init order */
  ep_strv plugins_required;
  ep_config_source *source; /* the parsed file, NULL for embedded defaults */
} ep_config;

/* Embedded defaults: what edgeprovd runs on without a config file. plugin_dir is the
 * default plugin directory (see ep_config_default_plugin_dir). */
int ep_config_new_defaults(ep_config **out, const char *plugin_dir);

/* Reads path and validates its core keys. Every problem is added to diags with file and
 * line. Returns 0 with *out set when the file could be read and parsed: the config is valid
 * only if diags gained no error (a bad value keeps its default so checking can go on).
 * Returns EP_ENOENT or EP_EINVAL when the file cannot be read or parsed (in diags too).
 * Plugin sections are checked later with ep_config_check_plugin_section. */
int ep_config_load(ep_config **out, const char *path, const char *default_plugin_dir, ep_diags *diags);

void ep_config_free(ep_config *config);

/* Validates the section named plugin_id (if present) into settings (prepared with
 * ep_fields_init): unknown keys with a suggestion, wrong types, bounds, missing required
 * settings. Returns the number of errors added to diags. */
size_t ep_config_check_plugin_section(const ep_config *config, const char *plugin_id, ep_fields *settings,
                                      ep_diags *diags);

/* A plugin file the loader refused before its entry could be used: the ID a config would
 * give it (its entry's, or its file name's), the file and why. */
typedef struct ep_config_refused {
  const char *id;
  const char *path;
  const char *reason;
} ep_config_refused;

/* Reports top-level sections that are neither core keys nor one of known_ids (error, with a
 * suggestion; a section named after a refused plugin says it was refused and why), and sections
 * of known plugins that are not enabled (warning). */
void ep_config_check_sections(const ep_config *config, const char *const *known_ids, size_t known_count,
                              const ep_config_refused *refused, size_t refused_count, ep_diags *diags);

/* True when the plugin is enabled by this config. */
bool ep_config_plugin_enabled(const ep_config *config, const char *plugin_id);

/* Appends a copy of s to v; EP_ENOMEM. */
int ep_strv_push(ep_strv *v, const char *s);

/* True when the site lists its plugins (plugins.enabled); false when every plugin found is
 * enabled implicitly. */
bool ep_config_plugins_listed(const ep_config *config);

/* True when the config has a settings section for plugin_id. */
bool ep_config_has_section(const ep_config *config, const char *plugin_id);
bool ep_config_plugin_required(const ep_config *config, const char *plugin_id);

/* The plugin directory next to the running program: <exe dir>/../lib/edgeprov/plugins,
 * which is right both in the build tree and under an install prefix. Caller frees. */
char *ep_config_default_plugin_dir(void);

/* True when id is a valid plugin ID: [a-z][a-z0-9-]*, at most 63 characters. */
bool ep_plugin_id_valid(const char *id);

const char *ep_provisioning_mode_name(ep_provisioning_mode mode);

/* Called by ep_config_reload for each setting that differs: key names it ("logs.level", or a
 * plugin section's ID); applied tells whether the running config took the new value, and then
 * was and now are the old and new values as text (NULL for a setting that is not applied). */
typedef void ep_config_change_fn(void *user, const char *key, bool applied, const char *was, const char *now);

/* Takes what can change at run time from next (the same file read again and found free of
 * errors) into running, and reports every difference to changed. Applied at once: logs.level,
 * logs.max_bytes_per_host, southbound.unknown_streams_max and southbound.unfinished_onboarding_s,
 * the settings read afresh on each use (each stored atomically, one after the other). Every other
 * core key, and each plugin section, is reported with applied false: it takes effect at
 * restart. On the thread that owns running (see ep_config); returns the number applied. */
size_t ep_config_reload(ep_config *running, const ep_config *next, ep_config_change_fn *changed, void *user);

/* Reads the site's TLS certificate chain and private key (tls.cert, tls.key; the key must
 * be private to its owner). The caller frees both and clears the key first. */
int ep_config_read_tls_files(const ep_config *config, char **ret_cert, char **ret_key);

#endif
