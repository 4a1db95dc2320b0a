/* edgeprov: the operator CLI (config check, plugins, actions). */
#define _GNU_SOURCE /* explicit_bzero */
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/action.h"
#include "artifacts_cmds.h"
#include "base/error.h"
#include "inventory_cmds.h"
#include "fleet_cmds.h"
#include "base/log.h"
#include "runtime/site.h"
#include "provisioning/workflow.h"
#include "base/suggest.h"
#include "base/secret.h"

#define EXIT_USAGE 2

static const char usage_text[] =
    "Usage: edgeprov [--config FILE] COMMAND [ARGS]\n"
    "\n"
    "Operator CLI of edgeprov, the zero-touch edge node provisioning framework.\n"
    "\n"
    "Commands:\n"
    "  config check FILE          validate a site config (edgeprov.conf) against the\n"
    "                             settings its plugins declare, and the OS plugins'\n"
    "                             workflow templates against the site's actions (starts\n"
    "                             only the OS and action plugins); exit 1 on any error\n"
    "  plugins list               every plugin found: ID, version, state, capabilities,\n"
    "                             and why a plugin does not load\n"
    "  plugins describe NAME      a plugin's settings: type, default, required, help\n"
    "  actions list               node actions offered by the loaded plugins\n"
    "  actions run [--log-level error|warn|info|debug] NAME [PARAM=VALUE ...]\n"
    "                             run one node action here and show its progress\n"
    "  host add --uuid UUID [--serial SERIAL] [--mac MAC ...] [--ip IP] [--site SITE]\n"
    "           [--os PROFILE] [--auto-onboard]\n"
    "                             pre-register a host\n"
    "  host list [--json]         every host with its desired and current state\n"
    "  host show UUID|SERIAL [--json]\n"
    "  host approve UUID          let a registered node onboard\n"
    "  host invalidate UUID       revoke a node's credentials (UNTRUSTED)\n"
    "  host delete UUID\n"
    "  instance create HOST_UUID [--os PROFILE] [--json]\n"
    "  instance list [--json]\n"
    "  instance show ID [--json]  the instance and its workflow's actions and states\n"
    "  instance render (--os PROFILE | --host UUID | both) [--json]\n"
    "                             dry run: the workflow a node would get, secrets masked\n"
    "  instance retry ID          re-arm a failed instance (its workflow starts again)\n"
    "  instance delete ID\n"
    "  events [--follow] [--after REVISION] [--json]\n"
    "                             inventory changes, each with its revision\n"
    "  watch [HOST_UUID...] [--site SITE] [--until running|onboarded] [--json]\n"
    "                             live table of nodes: state, action, progress, rate, ETA\n"
    "  logs HOST_UUID [--follow] [--run N] [--json]\n"
    "                             a node's log, as its agent reported it (secrets masked)\n"
    "\n"
    "Options:\n"
    "  --server ADDRESS           edgeprovd's management API (default: $EDGEPROV_SERVER, else\n"
    "                             listen.management of the config: unix:/run/edgeprov/edgeprov.sock)\n"
    "  --ca FILE                  CA of a TCP server (PEM)\n"
    "  --token-file FILE          operator token for a TCP server\n"
    "  --config FILE   site config to use (default: $" EP_SITE_CONFIG_ENV ", else " EP_SITE_CONFIG_SYSTEM
    "\n"
    "                  if it exists, else the embedded defaults)\n"
    "  --version       print the version and the plugin ABI version\n"
    "  -h, --help      print this help\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "edgeprov: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\nRun 'edgeprov --help' for usage.\n");
  va_end(ap);
  return EXIT_USAGE;
}

/* Opens the site, prints its diagnostics, and starts its plugins when start is set.
 * Returns the site, or NULL after printing why. */
static ep_site *open_site(const char *config_path, bool start) {
  ep_diags diags = {0};
  ep_site *site = NULL;
  const char *path = ep_site_config_path(config_path);
  int r = ep_site_open(&site, path, &diags);
  ep_diags_print(&diags, stderr);
  bool bad = r < 0 || diags.errors > 0;
  ep_diags_clear(&diags);
  if (r < 0 && r != EP_EINVAL && r != EP_ENOENT) fprintf(stderr, "edgeprov: %s\n", ep_error_message());
  if (bad) {
    fprintf(stderr, "edgeprov: %s is not valid (run: edgeprov config check %s)\n", path ? path : "the config",
            path ? path : "FILE");
    ep_site_free(site);
    return NULL;
  }
  if (start && ep_plugins_start(site->plugins, site->config) < 0) {
    fprintf(stderr, "edgeprov: %s\n", ep_error_message());
    ep_site_free(site);
    return NULL;
  }
  return site;
}

static void print_problems(const ep_site *site) {
  char line[EP_ERROR_MESSAGE_MAX + 512];
  for (size_t i = 0; i < site->plugins->count; i++)
    if (ep_site_plugin_problem(site->plugins->items[i], line, sizeof line))
      fprintf(stderr, "edgeprov: warning: %s\n", line);
}

/* ---- config check --------------------------------------------------------------------- */

static int cmd_config_check(const char *path) {
  ep_diags diags = {0};
  ep_site *site = NULL;
  int r = ep_site_open(&site, path, &diags);
  ep_diags_print(&diags, stderr);
  size_t errors = diags.errors;
  ep_diags_clear(&diags);
  if (r < 0 || errors > 0) {
    fprintf(stderr, "%s: %zu error%s\n", path, errors ? errors : 1, errors == 1 ? "" : "s");
    ep_site_free(site);
    return EXIT_FAILURE;
  }
  size_t enabled = 0;
  for (size_t i = 0; i < site->plugins->count; i++)
    if (site->plugins->items[i]->state == EP_PLUGIN_READY) enabled++;
  /* The workflow templates, against the actions: only the OS and action plugins start. */
  static const char *const template_capabilities[] = {EP_CAP_OS, EP_CAP_ACTIONS};
  if (ep_site_start_offering(site, template_capabilities, 2) < 0) {
    fprintf(stderr, "%s: error: %s\n%s: 1 error\n", path, ep_error_message(), path);
    ep_site_free(site);
    return EXIT_FAILURE;
  }
  print_problems(site);
  ep_workflow_check_templates(site->plugins, &diags);
  ep_diags_print(&diags, stderr);
  errors = diags.errors;
  ep_diags_clear(&diags);
  if (errors > 0) {
    fprintf(stderr, "%s: %zu error%s\n", path, errors, errors == 1 ? "" : "s");
    ep_site_free(site);
    return EXIT_FAILURE;
  }
  printf("%s: ok (mode %s, %zu plugin%s enabled)\n", path, ep_provisioning_mode_name(site->config->mode), enabled,
         enabled == 1 ? "" : "s");
  ep_site_free(site);
  return EXIT_SUCCESS;
}

/* ---- plugins -------------------------------------------------------------------------- */

static void capabilities_text(const ep_plugin *p, char *buf, size_t len) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; p->entry && p->entry->capabilities && p->entry->capabilities[i] && used < len; i++)
    used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? "," : "", p->entry->capabilities[i]);
  if (!buf[0]) snprintf(buf, len, "-");
}

static int cmd_plugins_list(const char *config_path) {
  ep_site *site = open_site(config_path, false);
  if (!site) return EXIT_FAILURE;
  int started = ep_plugins_start(site->plugins, site->config);
  if (started < 0) fprintf(stderr, "edgeprov: startup would stop: %s\n", ep_error_message());
  printf("%-24s %-10s %-9s %-40s %s\n", "ID", "VERSION", "STATE", "CAPABILITIES", "FILE");
  for (size_t i = 0; i < site->plugins->count; i++) {
    const ep_plugin *p = site->plugins->items[i];
    char caps[512];
    capabilities_text(p, caps, sizeof caps);
    printf("%-24s %-10s %-9s %-40s %s\n", p->entry ? p->entry->id : "-", p->entry ? p->entry->version : "-",
           ep_plugin_state_name(p->state), caps, p->path);
    if (p->reason) printf("  why: %s\n", p->reason);
  }
  if (site->plugins->count == 0) printf("(no plugins found in the plugin directories)\n");
  ep_site_free(site);
  return started < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

static void print_field_table(const ep_fields *fields, const char *indent) {
  if (fields->count == 0) {
    printf("%s(none)\n", indent);
    return;
  }
  printf("%s%-20s %-7s %-9s %-24s %s\n", indent, "NAME", "TYPE", "REQUIRED", "DEFAULT", "HELP");
  for (uint32_t i = 0; i < fields->count; i++) {
    const ep_field_decl *d = fields->items[i].decl;
    char bounds[64] = "";
    if (d->type == EP_FIELD_INT)
      snprintf(bounds, sizeof bounds, " [%" PRId64 "..%" PRId64 "]", d->min, d->max);
    else if (d->type == EP_FIELD_STRING && d->max > 0)
      snprintf(bounds, sizeof bounds, " [max %" PRId64 " bytes]", d->max);
    printf("%s%-20s %-7s %-9s %-24s %s%s\n", indent, d->name, ep_field_type_name(d->type), d->required ? "yes" : "no",
           d->default_value ? d->default_value : "-", d->help ? d->help : "", bounds);
  }
}

static int cmd_plugins_describe(const char *config_path, const char *name) {
  ep_site *site = open_site(config_path, false);
  if (!site) return EXIT_FAILURE;
  const ep_plugin *p = ep_plugins_find(site->plugins, name);
  if (!p) {
    const char *ids[EP_PLUGINS_MAX];
    size_t n = 0;
    for (size_t i = 0; i < site->plugins->count && n < EP_PLUGINS_MAX; i++)
      if (site->plugins->items[i]->entry) ids[n++] = site->plugins->items[i]->entry->id;
    const char *hint = ep_suggest(name, ids, n);
    fprintf(stderr, "edgeprov: no plugin '%s'%s%s%s (see: edgeprov plugins list)\n", name,
            hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
    ep_site_free(site);
    return EXIT_FAILURE;
  }
  char caps[512];
  capabilities_text(p, caps, sizeof caps);
  printf("%s %s\n", p->entry->id, p->entry->version);
  if (p->entry->description) printf("  %s\n", p->entry->description);
  printf("file:         %s\n", p->path);
  printf("state:        %s%s%s\n", ep_plugin_state_name(p->state), p->reason ? ": " : "", p->reason ? p->reason : "");
  printf("ABI:          %u.%u\n", p->entry->abi_major, p->entry->abi_minor);
  printf("capabilities: %s\n", caps);
  printf("settings (section '%s' of edgeprov.conf):\n", p->entry->id);
  print_field_table(&p->settings, "  ");
  ep_site_free(site);
  return EXIT_SUCCESS;
}

/* ---- actions -------------------------------------------------------------------------- */

static void print_action(void *data, const ep_action_ref *ref) {
  (void)data;
  printf("%s (plugin %s)\n", ref->action->name, ref->plugin->entry->id);
  if (ref->action->description) printf("  %s\n", ref->action->description);
  ep_fields params;
  if (ep_action_params_new(&params, ref) == 0) {
    print_field_table(&params, "    ");
    ep_fields_free(&params);
  }
}

static int cmd_actions_list(const char *config_path) {
  ep_site *site = open_site(config_path, true);
  if (!site) return EXIT_FAILURE;
  print_problems(site);
  ep_actions_each(site->plugins, print_action, NULL);
  ep_site_free(site);
  return EXIT_SUCCESS;
}

static atomic_int cancel_requested;

static void on_interrupt(int sig) {
  (void)sig;
  atomic_store(&cancel_requested, 1);
}

static void print_progress(void *data, uint64_t done, uint64_t total, const char *message) {
  (void)data;
  if (total > 0)
    fprintf(stderr, "progress: %" PRIu64 "/%" PRIu64 " (%" PRIu64 "%%) %s\n", done, total, done * 100 / total,
            message ? message : "");
  else
    fprintf(stderr, "progress: %" PRIu64 " %s\n", done, message ? message : "");
}

static int cmd_actions_run(const char *config_path, const char *name, char **assignments, int count) {
  ep_site *site = open_site(config_path, true);
  if (!site) return EXIT_FAILURE;
  print_problems(site);
  int status = EXIT_FAILURE;
  ep_fields params = {0};
  ep_action_ref ref;
  if (ep_actions_find(site->plugins, name, &ref) < 0 || ep_action_params_new(&params, &ref) < 0 ||
      ep_action_params_parse(&params, &ref, (const char *const *)assignments, (size_t)count) < 0) {
    fprintf(stderr, "edgeprov: %s\n", ep_error_message());
    goto out;
  }
  struct sigaction sa = {.sa_handler = on_interrupt};
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  ep_action_run_opts opts = {.progress = print_progress, .cancel = &cancel_requested};
  if (ep_action_run(&ref, &params, &opts) < 0) {
    fprintf(stderr, "edgeprov: %s\n", ep_error_message());
    goto out;
  }
  printf("action %s: ok\n", name);
  if (opts.reboot[0]) printf("action %s asked for a %s: the agent does that after reporting; the CLI does not\n", name, opts.reboot);
  status = EXIT_SUCCESS;
out:
  ep_fields_free(&params);
  ep_site_free(site);
  return status;
}

/* ---- inventory commands ---------------------------------------------------------------- */

typedef struct server_options {
  const char *server;
  const char *ca_file;
  const char *token_file;
} server_options;

/* Connects to the management API: --server, else $EDGEPROV_SERVER, else the config's
 * listen.management. Returns NULL after printing why. */
static ep_mgmt_client *connect_server(const char *config_path, const server_options *opts) {
  const char *address = opts->server ? opts->server : getenv("EDGEPROV_SERVER");
  ep_config *config = NULL;
  char *token = NULL;
  ep_mgmt_client *client = NULL;
  if (!address || !*address) {
    ep_diags diags = {0};
    const char *path = ep_site_config_path(config_path);
    int r = path ? ep_config_load(&config, path, NULL, &diags) : ep_config_new_defaults(&config, NULL);
    ep_diags_print(&diags, stderr);
    ep_diags_clear(&diags);
    if (r < 0) {
      fprintf(stderr, "edgeprov: cannot read %s to find the server; pass --server ADDRESS\n", path);
      return NULL;
    }
    address = config->listen_management;
  }
  if (opts->token_file && ep_read_secret_file(&token, opts->token_file, EP_OPERATOR_TOKEN_MAX) < 0)
    fprintf(stderr, "edgeprov: --token-file: %s\n", ep_error_message());
  else if (ep_mgmt_client_new(&client, address, opts->ca_file, token) < 0)
    fprintf(stderr, "edgeprov: %s\n", ep_error_message());
  if (token) {
    explicit_bzero(token, strlen(token));
    free(token);
  }
  ep_config_free(config);
  return client;
}

static int run_inventory_command(const char *config_path, const server_options *opts, const char *group, int argc,
                                 char **argv) {
  ep_mgmt_client *client = connect_server(config_path, opts);
  if (!client) return EXIT_FAILURE;
  int status;
  if (strcmp(group, "host") == 0)
    status = ep_cli_host(client, argc, argv);
  else if (strcmp(group, "instance") == 0)
    status = ep_cli_instance(client, argc, argv);
  else if (strcmp(group, "watch") == 0)
    status = ep_cli_watch(client, argc, argv);
  else if (strcmp(group, "logs") == 0)
    status = ep_cli_logs(client, argc, argv);
  else
    status = ep_cli_events(client, argc, argv);
  ep_mgmt_client_free(client);
  return status;
}

/* ---- main ----------------------------------------------------------------------------- */

int main(int argc, char **argv) {
  const char *config_path = NULL;
  server_options server = {0};
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      fputs(usage_text, stdout);
      return EXIT_SUCCESS;
    } else if (strcmp(argv[i], "--version") == 0) {
      printf("edgeprov %s (plugin ABI %d.%d)\n", EP_VERSION, EP_ABI_MAJOR, EP_ABI_MINOR);
      return EXIT_SUCCESS;
    } else if (strcmp(argv[i], "--config") == 0) {
      if (++i >= argc) return usage_error("%s needs a file", "--config");
      config_path = argv[i];
    } else if (strcmp(argv[i], "--server") == 0) {
      if (++i >= argc) return usage_error("%s needs an address", "--server");
      server.server = argv[i];
    } else if (strcmp(argv[i], "--ca") == 0) {
      if (++i >= argc) return usage_error("%s needs a file", "--ca");
      server.ca_file = argv[i];
    } else if (strcmp(argv[i], "--token-file") == 0) {
      if (++i >= argc) return usage_error("%s needs a file", "--token-file");
      server.token_file = argv[i];
    } else {
      return usage_error("unknown option '%s'", argv[i]);
    }
  }
  ep_log_setup(stderr, EP_LOG_WARN);
  if (i >= argc) {
    fputs(usage_text, stderr);
    return EXIT_USAGE;
  }
  const char *group = argv[i];
  const char *verb = i + 1 < argc ? argv[i + 1] : NULL;
  int rest = argc - i - 2;
  char **args = argv + i + 2;

  if (strcmp(group, "host") == 0 || strcmp(group, "instance") == 0 || strcmp(group, "events") == 0 ||
      strcmp(group, "watch") == 0 || strcmp(group, "logs") == 0)
    return run_inventory_command(config_path, &server, group, argc - i - 1, argv + i + 1);
  if (strcmp(group, "config") == 0) {
    if (verb && strcmp(verb, "check") == 0) {
      if (rest != 1) return usage_error("%s needs exactly one FILE", "config check");
      return cmd_config_check(args[0]);
    }
  } else if (strcmp(group, "plugins") == 0) {
    if (verb && strcmp(verb, "list") == 0 && rest == 0) return cmd_plugins_list(config_path);
    if (verb && strcmp(verb, "describe") == 0) {
      if (rest != 1) return usage_error("%s needs exactly one NAME", "plugins describe");
      return cmd_plugins_describe(config_path, args[0]);
    }
  } else if (strcmp(group, "artifacts") == 0 || strcmp(group, "usb-image") == 0) {
    bool keys = verb && strcmp(group, "artifacts") == 0 && strcmp(verb, "keys") == 0;
    ep_site *site = keys ? NULL : open_site(config_path, true);
    if (!keys && !site) return EXIT_FAILURE;
    if (site) print_problems(site);
    int status = strcmp(group, "artifacts") == 0 ? ep_cli_artifacts(site, argc - i - 1, argv + i + 1)
                                                 : ep_cli_usb_image(site, argc - i - 1, argv + i + 1);
    ep_site_free(site);
    return status;
  } else if (strcmp(group, "actions") == 0) {
    if (verb && strcmp(verb, "list") == 0 && rest == 0) return cmd_actions_list(config_path);
    if (verb && strcmp(verb, "run") == 0) {
      /* --log-level shows the plugin's own lines (INFO, DEBUG) while the action runs. */
      if (rest >= 1 && strcmp(args[0], "--log-level") == 0) {
        int level = rest >= 2 ? ep_log_level_parse(args[1]) : -1;
        if (level < 0)
          return usage_error("--log-level needs one of error, warn, info, debug (got '%s')", rest >= 2 ? args[1] : "");
        ep_log_setup(stderr, level);
        args += 2;
        rest -= 2;
      }
      if (rest < 1) return usage_error("%s needs an action NAME", "actions run");
      return cmd_actions_run(config_path, args[0], args + 1, rest - 1);
    }
  } else {
    return usage_error("unknown command '%s'", group);
  }
  return usage_error("unknown or incomplete command '%s ...'", group);
}
