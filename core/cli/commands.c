/* edgeprov CLI: the command table, the one place a command is declared (see cli.h). A new
 * command is a row here and a function in its group's file; `edgeprov --help`, edgeprov(1),
 * the bash completion and tests/integration/cli_help.sh pick it up from the row. */
#include "cli.h"

#define JSON_OPTION(what) {"json", 'j', false, NULL, 0, NULL, "print " what " as JSON"}
#define END_OPTIONS {0}

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const until_goals[] = {"running", "onboarded", NULL};
static const char *const payloads[] = {"ipxe", "micro-os", NULL};

/* ---- config, plugins, actions (site_cmds.c) ------------------------------------------------ */

static const cli_option no_options[] = {END_OPTIONS};
static const cli_option plugins_list_options[] = {JSON_OPTION("the plugins"), END_OPTIONS};
static const cli_option plugins_describe_options[] = {JSON_OPTION("the plugin and its settings"), END_OPTIONS};
static const cli_option actions_list_options[] = {JSON_OPTION("the actions and their parameters"), END_OPTIONS};
static const cli_option actions_run_options[] = {
    {"log-level", 'L', false, "LEVEL", 0, log_levels, "also show the plugins' own log lines, down to that level"},
    END_OPTIONS};

/* ---- host (host_cmds.c) -------------------------------------------------------------------- */

static const cli_option host_add_options[] = {
    {"uuid", 'u', false, "UUID", CLI_OPT_REQUIRED, NULL, "the host's SMBIOS UUID (RFC 4122 text form)"},
    {"serial", 's', false, "SERIAL", 0, NULL, "its serial number (5 to 20 of A-Z, a-z, 0-9)"},
    {"mac", 'm', false, "MAC", CLI_OPT_REPEAT, NULL, "a MAC address of the host (repeat for several)"},
    {"ip", 'i', false, "IP", 0, NULL, "its IPv4 or IPv6 address"},
    {"site", 'S', false, "SITE", 0, NULL, "the site it belongs to"},
    {"os", 'o', false, "PROFILE", 0, NULL, "the OS profile it gets"},
    {"auto-onboard", 'a', false, NULL, 0, NULL, "let it onboard without `edgeprov host approve`"},
    {"ek", 'e', false, "FILE", 0, NULL,
     "its TPM's endorsement key (a PEM public key as `tpm2_createek -f pem` writes it, or its EK certificate, PEM or "
     "DER): its node must prove it holds that TPM to onboard"},
    {"fde", 'F', false, NULL, 0, NULL,
     "encrypt the disk of every instance it gets (full-disk encryption, key sealed in its TPM 2.0; a node "
     "without one fails instead of writing a clear disk)"},
    JSON_OPTION("the host added"),
    END_OPTIONS};
static const cli_option host_list_options[] = {JSON_OPTION("the hosts"), END_OPTIONS};
static const cli_option host_show_options[] = {JSON_OPTION("the host and its timeline"), END_OPTIONS};
static const cli_option host_state_options[] = {JSON_OPTION("the host"), END_OPTIONS};
static const cli_option host_recovery_key_options[] = {JSON_OPTION("the host's UUID, the key and when it was stored"),
                                                       END_OPTIONS};

/* ---- instance (instance_cmds.c) ------------------------------------------------------------ */

static const cli_option instance_create_options[] = {
    {"os", 'o', false, "PROFILE", 0, NULL, "the OS profile (default: the host's)"},
    {"fde", 'F', false, NULL, 0, NULL,
     "encrypt its disk (full-disk encryption, key sealed in the node's TPM 2.0; also when the host or the OS "
     "profile asks)"},
    JSON_OPTION("the instance created"),
    END_OPTIONS};
static const cli_option instance_list_options[] = {JSON_OPTION("the instances"), END_OPTIONS};
static const cli_option instance_show_options[] = {JSON_OPTION("the instance and its workflow"), END_OPTIONS};
static const cli_option instance_render_options[] = {
    {"os", 'o', false, "PROFILE", 0, NULL, "the OS profile to render (default: the host's)"},
    {"host", 'H', false, "UUID", 0, NULL, "render for this host (default: a sample host)"},
    {"fde", 'F', false, NULL, 0, NULL, "render as for an instance created with --fde"},
    JSON_OPTION("the workflow"),
    END_OPTIONS};
static const cli_option instance_retry_options[] = {JSON_OPTION("the instance re-armed"), END_OPTIONS};

/* ---- events, watch, logs (fleet_cmds.c) ---------------------------------------------------- */

static const cli_option events_options[] = {
    {"follow", 'f', true, NULL, 0, NULL, "keep printing changes as they happen (until edgeprovd stops or ^C)"},
    {"after", 'A', false, "REVISION", 0, NULL, "only changes after this store revision"},
    JSON_OPTION("one JSON object per change"),
    END_OPTIONS};
static const cli_option watch_options[] = {
    {"site", 's', false, "SITE", 0, NULL, "only the hosts of SITE"},
    {"until", 'u', false, "GOAL", 0, until_goals,
     "exit 0 once every selected node is there (running: its instance RUNNING; onboarded), 1 once one "
     "failed or edgeprovd ends the stream first; without HOST_UUID, the hosts of the moment and those "
     "added before they all got there"},
    {"json", 'j', false, NULL, 0, NULL,
     "one JSON object per change (host, state, action, bytes_done, bytes_total, rate_bytes_s, eta_s, elapsed_s)"},
    END_OPTIONS};
static const cli_option logs_options[] = {
    {"follow", 'f', true, NULL, 0, NULL, "keep printing lines as they arrive (until the host is deleted or ^C)"},
    {"run", 'r', false, "N", 0, NULL, "only the lines of workflow run N (the workflow's generation)"},
    {"json", 'j', false, NULL, 0, NULL, "one JSON object per line: seq, time, run, action, action_name, text"},
    END_OPTIONS};

/* ---- artifacts, usb-image (artifacts_cmds.c) ----------------------------------------------- */

static const cli_option artifacts_build_options[] = {
    {"out", 'o', false, "DIR", 0, NULL, "write them there (default: artifacts.directory)"}, END_OPTIONS};
static const cli_option artifacts_keys_options[] = {
    {"out", 'o', false, "DIR", CLI_OPT_REQUIRED, NULL, "the directory to write the keys to"},
    {"name", 'n', false, "NAME", 0, NULL, "the certificates' subject prefix (default: \"edgeprov site\")"},
    END_OPTIONS};
static const cli_option artifacts_nginx_conf_options[] = {
    {"out", 'o', false, "FILE", 0, NULL, "write it to FILE (whole or not at all; default: standard output)"},
    {"listen", 'l', false, "ADDRESS", 0, NULL, "where nginx listens, host:port (default: 0.0.0.0:443)"},
    {"cert", 'c', false, "FILE", 0, NULL, "its TLS certificate, PEM (default: tls.cert)"},
    {"key", 'k', false, "FILE", 0, NULL, "its TLS key, PEM (default: tls.key)"},
    {"directory", 'd', false, "DIR", 0, NULL, "the artifacts it serves (default: artifacts.directory)"},
    END_OPTIONS};
static const cli_option usb_image_options[] = {
    {"out", 'o', false, "FILE", CLI_OPT_REQUIRED, NULL, "the image file to write"},
    {"payload", 'p', false, "PAYLOAD", 0, payloads,
     "what the stick boots: ipxe (fetches the Micro-OS over HTTPS) or micro-os (carries it); default: the "
     "boot plugin's"},
    {"from", 'f', false, "DIR", 0, NULL, "the built artifacts (default: artifacts.directory)"},
    END_OPTIONS};

const cli_command cli_commands[] = {
    {"config", "check", CLI_NEEDS_NOTHING, ep_cli_config_check, "FILE", 1, 1, no_options,
     "validate a site config against its plugins' settings and its workflow templates",
     "Checks FILE (an edgeprov.conf) against the settings its plugins declare, and the OS\n"
     "plugins' workflow templates against the site's actions (only the OS and action plugins\n"
     "start). Every error is printed as file:line with a did-you-mean; exit 1 on any error."},
    {"plugins", "list", CLI_NEEDS_CONFIG, ep_cli_plugins_list, NULL, 0, 0, plugins_list_options,
     "every plugin found: ID, version, state, capabilities, and why one does not load", NULL},
    {"plugins", "describe", CLI_NEEDS_CONFIG, ep_cli_plugins_describe, "NAME", 1, 1, plugins_describe_options,
     "a plugin's settings: type, default, required, bounds, help", NULL},
    {"actions", "list", CLI_NEEDS_PLUGINS, ep_cli_actions_list, NULL, 0, 0, actions_list_options,
     "the node actions the loaded plugins offer, with their parameters", NULL},
    {"actions", "run", CLI_NEEDS_PLUGINS, ep_cli_actions_run, "NAME [PARAM=VALUE...]", 1, -1, actions_run_options,
     "run one node action here and show its progress",
     "Runs the action on this machine, as an agent would on a node (^C cancels it). A reboot\n"
     "the action asks for is not done: the agent does that after reporting."},
    {"host", "add", CLI_NEEDS_DAEMON, ep_cli_host_add, NULL, 0, 0, host_add_options, "pre-register a host", NULL},
    {"host", "list", CLI_NEEDS_DAEMON, ep_cli_host_list, NULL, 0, 0, host_list_options,
     "every host with its desired and current state", NULL},
    {"host", "show", CLI_NEEDS_DAEMON, ep_cli_host_show, "UUID|SERIAL", 1, 1, host_show_options,
     "a host, its status and its timeline", NULL},
    {"host", "approve", CLI_NEEDS_DAEMON, ep_cli_host_approve, "UUID", 1, 1, host_state_options,
     "let a registered node onboard (desired ONBOARDED)", NULL},
    {"host", "invalidate", CLI_NEEDS_DAEMON, ep_cli_host_invalidate, "UUID", 1, 1, host_state_options,
     "revoke a node's credentials (desired UNTRUSTED)", NULL},
    {"host", "delete", CLI_NEEDS_DAEMON, ep_cli_host_delete, "UUID", 1, 1, no_options,
     "delete a host (delete its instance first)", NULL},
    {"host", "recovery-key", CLI_NEEDS_DAEMON, ep_cli_host_recovery_key, "UUID|SERIAL", 1, 1, host_recovery_key_options,
     "print the recovery key of a host's encrypted disk (the read is logged)",
     "Prints the key its node stored when it encrypted its disk (kept sealed under the site key,\n"
     "secrets.recovery_key_file). Every read is logged: a warning in edgeprovd's log and a line\n"
     "in the host's log (edgeprov logs HOST_UUID)."},
    {"instance", "create", CLI_NEEDS_DAEMON, ep_cli_instance_create, "HOST_UUID", 1, 1, instance_create_options,
     "give a host an instance: its workflow starts", NULL},
    {"instance", "list", CLI_NEEDS_DAEMON, ep_cli_instance_list, NULL, 0, 0, instance_list_options,
     "every instance with its state and provisioning status", NULL},
    {"instance", "show", CLI_NEEDS_DAEMON, ep_cli_instance_show, "ID", 1, 1, instance_show_options,
     "an instance and its workflow's actions and states", NULL},
    {"instance", "render", CLI_NEEDS_DAEMON, ep_cli_instance_render, NULL, 0, 0, instance_render_options,
     "dry run: the workflow a node would get, secrets masked",
     "Needs --os, --host or both. Nothing is stored and no node is told."},
    {"instance", "retry", CLI_NEEDS_DAEMON, ep_cli_instance_retry, "ID", 1, 1, instance_retry_options,
     "re-arm a failed instance: its workflow starts again", NULL},
    {"instance", "delete", CLI_NEEDS_DAEMON, ep_cli_instance_delete, "ID", 1, 1, no_options, "delete an instance",
     NULL},
    {"events", NULL, CLI_NEEDS_DAEMON, ep_cli_events, NULL, 0, 0, events_options,
     "inventory changes, each with its store revision", NULL},
    {"watch", NULL, CLI_NEEDS_DAEMON, ep_cli_watch, "[HOST_UUID...]", 0, -1, watch_options,
     "live table of nodes: state, action, progress, rate, ETA",
     "The current action's progress with bytes, rate and ETA, and the elapsed time, from\n"
     "edgeprovd's event stream. Redrawn in place on a terminal; otherwise one line per\n"
     "change. Without HOST_UUID, every host (of SITE), hosts added later too."},
    {"logs", NULL, CLI_NEEDS_DAEMON, ep_cli_logs, "HOST_UUID", 1, 1, logs_options,
     "a node's log, as its agent reported it (secrets masked)",
     "The node's log kept by edgeprovd (what its agent reported, secrets masked; the\n"
     "oldest lines go past logs.max_bytes_per_host), oldest first."},
    {"artifacts", "build", CLI_NEEDS_PLUGINS, ep_cli_artifacts_build, NULL, 0, 0, artifacts_build_options,
     "build the boot artifacts: the Micro-OS kernel and initramfs, iPXE, signed for Secure Boot", NULL},
    {"artifacts", "keys", CLI_NEEDS_NOTHING, ep_cli_artifacts_keys, NULL, 0, 0, artifacts_keys_options,
     "create the site's Secure Boot keys: PK, KEK and db (never overwrites)", NULL},
    {"artifacts", "nginx-conf", CLI_NEEDS_PLUGINS, ep_cli_artifacts_nginx_conf, NULL, 0, 0,
     artifacts_nginx_conf_options, "an nginx server block that serves the artifacts", NULL},
    {"usb-image", NULL, CLI_NEEDS_PLUGINS, ep_cli_usb_image, NULL, 0, 0, usb_image_options,
     "write a USB stick image that boots a node into provisioning", NULL},
};

const size_t cli_command_count = sizeof cli_commands / sizeof cli_commands[0];

/* ---- what every command shares ------------------------------------------------------------- */

const cli_option cli_global_options[] = {
    {"config", 'c', false, "FILE", 0, NULL,
     "site config to use (default: $" EP_SITE_CONFIG_ENV ", else " EP_SITE_CONFIG_SYSTEM
     " if it exists, else the embedded defaults)"},
    {"server", 's', false, "ADDRESS", 0, NULL,
     "edgeprovd's management API (default: $EDGEPROV_SERVER, else listen.management of the config: "
     "unix:/run/edgeprov/edgeprov.sock)"},
    {"ca", 'C', false, "FILE", 0, NULL, "CA of a TCP server (PEM)"},
    {"token-file", 't', false, "FILE", 0, NULL, "operator token for a TCP server"},
    {"version", 'V', false, NULL, 0, NULL, "print the version and the plugin ABI version"},
    END_OPTIONS};

const cli_exit_status cli_exit_statuses[] = {
    {EXIT_SUCCESS, "ok"},
    {EXIT_FAILURE, "the command failed (the message says why and what to do)"},
    {EXIT_USAGE, "usage error: an unknown command or option, a missing or extra argument (the usage follows)"},
    {EXIT_UNREACHABLE,
     "edgeprovd cannot be reached: nothing listens at the address (connection refused, no socket) or "
     "the TLS handshake with it failed"},
    {0, NULL}};
