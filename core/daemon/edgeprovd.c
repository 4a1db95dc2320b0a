/* edgeprovd: the orchestrator daemon. Loads the site's plugins and runs until SIGTERM/SIGINT. */
#define _GNU_SOURCE /* explicit_bzero */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "net/https.h"
#include "provisioning/inventory.h"
#include "base/log.h"
#include "northbound/mgmt_server.h"
#include "provisioning/housekeeping.h"
#include "provisioning/reconciler.h"
#include "southbound/southbound.h"
#include "runtime/site.h"
#include "southbound/token_endpoint.h"

/* How long running calls get to end when the daemon stops. */
#define SHUTDOWN_GRACE_MS 2000

static const char usage_text[] =
    "Usage: edgeprovd [--config FILE] [--log-level LEVEL] [--check]\n"
    "\n"
    "The edgeprov orchestrator daemon. Without a config file it runs on embedded defaults.\n"
    "\n"
    "Options:\n"
    "  --config FILE      site config (default: $" EP_SITE_CONFIG_ENV ", else " EP_SITE_CONFIG_SYSTEM
    "\n"
    "                     if it exists, else the embedded defaults)\n"
    "  --log-level LEVEL  error, warn, info (default) or debug\n"
    "  --check            load the config and plugins, then exit (0 when startup would succeed)\n"
    "  --version          print the version\n"
    "  -h, --help         print this help\n";

/* Serves the directories plugins published during init (boot-https: the artifacts). */
static int publish_directories(ep_https_server *server, const ep_plugin_set *plugins) {
  for (size_t i = 0; i < plugins->started_count; i++) {
    const ep_ctx *ctx = &plugins->started[i]->ctx;
    for (size_t k = 0; k < ctx->published_count; k++) {
      int r = ep_https_server_serve_directory(server, ctx->published[k].url_path, ctx->published[k].directory);
      if (r < 0) return ep_error_prefix(r, "plugin %s", ctx->plugin_id);
      ep_log(EP_LOG_INFO, "https", "serving %s at %s/ (plugin %s)", ctx->published[k].directory,
             ctx->published[k].url_path, ctx->plugin_id);
    }
  }
  return 0;
}

/* The embedded HTTPS server: the identity plugin's token endpoint and JWKS, and the
 * directories plugins publish. */
static int start_https(ep_https_server **out, int *ret_port, const ep_site *site) {
  char *cert = NULL, *key = NULL;
  int r = site->config->tls_cert ? ep_config_read_tls_files(site->config, &cert, &key) : 0;
  ep_https_server *server = NULL;
  if (r == 0) r = ep_https_server_new(&server, site->config->listen_https, cert, key);
  if (key) explicit_bzero(key, strlen(key));
  free(cert);
  free(key);
  if (r == 0 && !site->config->tls_cert)
    ep_log(EP_LOG_WARN, "https", "no tls.cert: the token endpoint is served without TLS on %s (loopback only)",
           site->config->listen_https);
  if (r == 0) r = ep_token_endpoint_route(server, site->plugins);
  if (r == 0) r = publish_directories(server, site->plugins);
  if (r == 0) r = ep_https_server_start(server, ret_port);
  if (r < 0) {
    ep_https_server_free(server);
    return r;
  }
  *out = server;
  return 0;
}

int main(int argc, char **argv) {
  const char *config_path = NULL;
  int level = EP_LOG_INFO;
  int check_only = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      fputs(usage_text, stdout);
      return EXIT_SUCCESS;
    } else if (strcmp(argv[i], "--version") == 0) {
      printf("edgeprovd %s (plugin ABI %d.%d)\n", EP_VERSION, EP_ABI_MAJOR, EP_ABI_MINOR);
      return EXIT_SUCCESS;
    } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
      config_path = argv[++i];
    } else if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc && ep_log_level_parse(argv[i + 1]) >= 0) {
      level = ep_log_level_parse(argv[++i]);
    } else if (strcmp(argv[i], "--check") == 0) {
      check_only = 1;
    } else {
      fprintf(stderr, "edgeprovd: bad argument '%s'\n%s", argv[i], usage_text);
      return 2;
    }
  }
  ep_log_setup(stderr, level);

  /* Block the stop signals before any plugin starts a thread, so every thread inherits the
   * mask and only sigwait below receives them. */
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

  const char *path = ep_site_config_path(config_path);
  ep_log(EP_LOG_INFO, "edgeprovd", "starting version=%s config=%s", EP_VERSION, path ? path : "(embedded defaults)");
  ep_diags diags = {0};
  ep_site *site = NULL;
  int r = ep_site_open(&site, path, &diags);
  for (size_t i = 0; i < diags.count; i++) {
    const ep_diag *d = &diags.items[i];
    char where[600] = "";
    if (d->file && d->line > 0)
      snprintf(where, sizeof where, "%s:%d: ", d->file, d->line);
    else if (d->file)
      snprintf(where, sizeof where, "%s: ", d->file);
    ep_log(d->severity == EP_DIAG_ERROR ? EP_LOG_ERROR : EP_LOG_WARN, "config", "%s%s", where, d->message);
  }
  size_t errors = diags.errors;
  ep_diags_clear(&diags);
  if (r < 0 || errors > 0) {
    ep_log(EP_LOG_ERROR, "edgeprovd", "not starting: the config has %zu error(s); run: edgeprov config check %s",
           errors, path ? path : "FILE");
    ep_site_free(site);
    return EXIT_FAILURE;
  }
  if (ep_plugins_start(site->plugins, site->config) < 0) {
    ep_log(EP_LOG_ERROR, "edgeprovd", "not starting: %s", ep_error_message());
    ep_site_free(site);
    return EXIT_FAILURE;
  }
  char line[EP_ERROR_MESSAGE_MAX + 512];
  for (size_t i = 0; i < site->plugins->count; i++)
    if (ep_site_plugin_problem(site->plugins->items[i], line, sizeof line))
      ep_log(EP_LOG_WARN, "loader", "%s (skipped)", line);
  for (size_t i = 0; i < site->plugins->started_count; i++) {
    const ep_plugin *p = site->plugins->started[i];
    ep_log(EP_LOG_INFO, "loader", "plugin %s %s active (%s)", p->entry->id, p->entry->version, p->path);
  }
  ep_inventory *inv = NULL;
  ep_mgmt_server *mgmt = NULL;
  ep_southbound *southbound = NULL;
  ep_reconciler *reconciler = NULL;
  ep_housekeeping *housekeeping = NULL;
  ep_https_server *https = NULL;
  int https_port = 0;
  /* The management API starts last: a client (an operator's script, a test harness) that sees
   * it answer finds the node-facing listeners up too. It started first, and a node that
   * dialled the southbound port in that window was refused (a flaky test_onboarding). */
  if (ep_inventory_new(&inv, site->plugins) < 0 ||
      (!check_only && ep_southbound_start(&southbound, inv, site->plugins, site->config) < 0) ||
      (!check_only && start_https(&https, &https_port, site) < 0) ||
      (!check_only && ep_housekeeping_new(&housekeeping, inv, (uint64_t)site->config->change_log_retention) < 0) ||
      (!check_only && ep_housekeeping_start(housekeeping) < 0) ||
      (!check_only && ep_reconciler_start(&reconciler, inv, site->plugins, site->config) < 0) ||
      (!check_only && ep_mgmt_server_start(&mgmt, inv, site->plugins, site->config) < 0)) {
    ep_log(EP_LOG_ERROR, "edgeprovd", "not starting: %s", ep_error_message());
    ep_reconciler_stop(reconciler);
    ep_housekeeping_free(housekeeping);
    ep_https_server_free(https);
    ep_southbound_stop(southbound, 0);
    ep_mgmt_server_stop(mgmt, 0);
    ep_inventory_free(inv);
    ep_site_free(site);
    return EXIT_FAILURE;
  }
  ep_log(EP_LOG_INFO, "edgeprovd", "ready mode=%s plugins=%zu management=%s southbound=%s port=%d https=%s port=%d",
         ep_provisioning_mode_name(site->config->mode), site->plugins->started_count,
         site->config->listen_management, site->config->listen_grpc, southbound ? ep_southbound_port(southbound) : 0,
         site->config->listen_https, https_port);

  if (!check_only) {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    ep_log(EP_LOG_INFO, "edgeprovd", "stopping on %s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  }
  ep_reconciler_stop(reconciler);
  ep_housekeeping_free(housekeeping);
  ep_https_server_free(https);
  ep_southbound_stop(southbound, SHUTDOWN_GRACE_MS);
  ep_mgmt_server_stop(mgmt, SHUTDOWN_GRACE_MS);
  ep_inventory_free(inv);
  ep_site_free(site);
  ep_log(EP_LOG_INFO, "edgeprovd", "stopped");
  return EXIT_SUCCESS;
}
