/* edgeprovd: the orchestrator daemon. Loads the site's plugins and runs until SIGTERM/SIGINT;
 * SIGHUP reads the config again (reload below).
 * main: the options (daemon_args.c), the site and its checks, the services, one teardown. */
#define _GNU_SOURCE /* explicit_bzero */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#ifdef EP_HAVE_SYSTEMD
#include <systemd/sd-daemon.h> /* sd_notify: readiness under a Type=notify unit */
#endif

#include "daemon_args.h"
#include "daemon_metrics.h"
#include "base/figures.h"
#include "base/error.h"
#include "net/https.h"
#include "provisioning/inventory.h"
#include "base/log.h"
#include "northbound/dashboard.h"
#include "northbound/mgmt_server.h"
#include "provisioning/housekeeping.h"
#include "provisioning/reconciler.h"
#include "provisioning/workflow.h"
#include "southbound/southbound.h"
#include "runtime/site.h"
#include "southbound/boot_fetches.h"
#include "southbound/health.h"
#include "southbound/token_endpoint.h"

/* How long running calls get to end when the daemon stops. */
#define SHUTDOWN_GRACE_MS 2000

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
static int start_https(ep_https_server **out, int *ret_port, ep_health **ret_health, const ep_site *site,
                       ep_inventory *inv) {
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
  const ep_config_https *h = &site->config->https; /* validated: each fits its range */
  ep_https_limits limits = {(unsigned)h->threads,          (unsigned)h->handler_threads,
                            (unsigned)h->connections_max,  (unsigned)h->connections_per_ip,
                            (unsigned)h->header_timeout_s, (unsigned)h->idle_timeout_s};
  if (r == 0) r = ep_https_server_set_limits(server, &limits);
  if (r == 0) r = ep_token_endpoint_route(server, site->plugins);
  if (r == 0) r = ep_health_route(ret_health, server, inv);
  if (r == 0) r = publish_directories(server, site->plugins);
  if (r == 0) ep_https_server_observe_files(server, ep_boot_fetches_observe, NULL); /* nodes' timelines */
  if (r == 0) r = ep_https_server_start(server, ret_port);
  if (r == 0)
    ep_log(EP_LOG_INFO, "https", "serving on %s: %u connection threads, %u handler threads, at most %u connections "
           "(%u from one address), requests in within %u s, idle connections closed after %u s",
           site->config->listen_https, limits.threads, limits.handler_threads, limits.connections_max,
           limits.connections_per_ip, limits.header_timeout_s, limits.idle_timeout_s);
  if (r < 0) {
    ep_https_server_free(server);
    return r;
  }
  *out = server;
  return 0;
}

/* What the daemon runs; every member NULL until it starts. */
typedef struct daemon_state {
  ep_site *site;
  ep_inventory *inv;
  ep_southbound *southbound;
  ep_https_server *https;
  int https_port;
  ep_health *health; /* GET /healthz on https: freed after it */
  ep_housekeeping *housekeeping;
  ep_reconciler *reconciler;
  ep_mgmt_server *mgmt;
  ep_daemon_metrics *metrics; /* GET /metrics on listen.metrics: stopped first */
  ep_dashboard *dashboard;    /* the web dashboard on listen.dashboard: stopped first too */
} daemon_state;

static void log_diags(const ep_diags *diags) {
  for (size_t i = 0; i < diags->count; i++) {
    const ep_diag *diag = &diags->items[i];
    char where[600] = "";
    if (diag->file && diag->line > 0)
      snprintf(where, sizeof where, "%s:%d: ", diag->file, diag->line);
    else if (diag->file)
      snprintf(where, sizeof where, "%s: ", diag->file);
    ep_log(diag->severity == EP_DIAG_ERROR ? EP_LOG_ERROR : EP_LOG_WARN, "config", "%s%s", where, diag->message);
  }
}

/* Opens the site (config and plugins), logs what the config check found, takes the config's
 * logs.level unless --log-level was given, and starts the plugins. Returns 0, or -1 when the
 * daemon must not start (said in the log). */
static int open_site(daemon_state *d, const char *path, bool log_level_set) {
  ep_diags diags = {0};
  int r = ep_site_open(&d->site, path, &diags);
  log_diags(&diags);
  size_t errors = diags.errors;
  ep_diags_clear(&diags);
  if (r < 0 || errors > 0) {
    ep_log(EP_LOG_ERROR, "edgeprovd", "not starting: the config has %zu error(s); run: edgeprov config check %s",
           errors, path ? path : "FILE");
    return -1;
  }
  const ep_site *site = d->site;
  if (!log_level_set) ep_log_set_level((int)site->config->log_level);
  if (ep_plugins_start(site->plugins, site->config) < 0) {
    ep_log(EP_LOG_ERROR, "edgeprovd", "not starting: %s", ep_error_message());
    return -1;
  }
  char line[EP_ERROR_MESSAGE_MAX + 512];
  for (size_t i = 0; i < site->plugins->count; i++)
    if (ep_site_plugin_problem(site->plugins->items[i], line, sizeof line))
      ep_log(EP_LOG_WARN, "loader", "%s (skipped)", line);
  /* A template mistake would fail every node of its profile half-way: none starts. */
  size_t mistakes = ep_workflow_check_templates(site->plugins, &diags);
  log_diags(&diags);
  ep_diags_clear(&diags);
  if (mistakes > 0) {
    ep_log(EP_LOG_ERROR, "edgeprovd", "not starting: the workflow templates have %zu mistake(s); run: edgeprov config check %s",
           mistakes, path ? path : "FILE");
    return -1;
  }
  for (size_t i = 0; i < site->plugins->started_count; i++) {
    const ep_plugin *p = site->plugins->started[i];
    ep_log(EP_LOG_INFO, "loader", "plugin %s %s active (%s)", p->entry->id, p->entry->version, p->path);
  }
  return 0;
}

/* Every connected node holds a descriptor: the soft limit (often 1,024) goes up to the hard
 * one, the most this process may have without privileges it should not need. */
static void raise_descriptor_limit(void) {
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) < 0) return;
  rlim_t before = limit.rlim_cur;
  limit.rlim_cur = limit.rlim_max;
  if (before != limit.rlim_max && setrlimit(RLIMIT_NOFILE, &limit) < 0) {
    ep_log(EP_LOG_WARN, "edgeprovd", "open files: soft limit stays at %llu (hard %llu): %s",
           (unsigned long long)before, (unsigned long long)limit.rlim_max, strerror(errno));
    return;
  }
  if (limit.rlim_max == RLIM_INFINITY)
    ep_log(EP_LOG_INFO, "edgeprovd", "open files: limit unlimited (was %llu)", (unsigned long long)before);
  else
    ep_log(EP_LOG_INFO, "edgeprovd", "open files: limit %llu (the hard limit; was %llu)",
           (unsigned long long)limit.rlim_max, (unsigned long long)before);
}

/* Starts the inventory and, unless check_only, the services. Returns 0, or -1 when one
 * failed (said in the log). */
static int start_services(daemon_state *d, bool check_only) {
  const ep_site *site = d->site;
  if (!check_only) raise_descriptor_limit();
  /* The management API starts last: a client (an operator's script, a test harness) that sees
   * it answer finds the node-facing listeners up too. It started first, and a node that
   * dialled the southbound port in that window was refused (a flaky test_onboarding). */
  if (ep_inventory_new(&d->inv, site->plugins) < 0 ||
      (!check_only && site->config->listen_metrics && ep_figures_register() < 0) ||
      (!check_only && ep_southbound_start(&d->southbound, d->inv, site->plugins, site->config) < 0) ||
      (!check_only && start_https(&d->https, &d->https_port, &d->health, site, d->inv) < 0) ||
      (!check_only &&
       ep_housekeeping_new(&d->housekeeping, d->inv, (uint64_t)site->config->change_log_retention) < 0) ||
      (!check_only && ep_housekeeping_start(d->housekeeping) < 0) ||
      (!check_only && ep_reconciler_start(&d->reconciler, d->inv, site->plugins, site->config) < 0) ||
      (!check_only && ep_daemon_metrics_start(&d->metrics, site->config, d->inv, d->https) < 0) ||
      (!check_only && ep_dashboard_start(&d->dashboard, site->config, d->inv, NULL) < 0) ||
      (!check_only && ep_mgmt_server_start(&d->mgmt, d->inv, site->plugins, site->config) < 0)) {
    ep_log(EP_LOG_ERROR, "edgeprovd", "not starting: %s", ep_error_message());
    return -1;
  }
  ep_log(EP_LOG_INFO, "edgeprovd", "ready mode=%s plugins=%zu management=%s southbound=%s port=%d https=%s port=%d",
         ep_provisioning_mode_name(site->config->mode), site->plugins->started_count,
         site->config->listen_management, site->config->listen_grpc,
         d->southbound ? ep_southbound_port(d->southbound) : 0, site->config->listen_https, d->https_port);
#ifdef EP_HAVE_SYSTEMD
  /* Under systemd (Type=notify): every listener is up. Without $NOTIFY_SOCKET this does nothing. */
  if (!check_only) sd_notify(0, "READY=1");
#endif
  return 0;
}

static void log_change(void *user, const char *key, bool applied, const char *was, const char *now) {
  size_t *restart_only = user;
  if (applied) {
    ep_log(EP_LOG_INFO, "reload", "%s: %s (was %s)", key, now, was);
  } else {
    ep_log(EP_LOG_WARN, "reload", "%s changed: takes effect at restart", key);
    (*restart_only)++;
  }
}

#ifdef EP_HAVE_SYSTEMD
static void notify_reloading(void) {
  /* MONOTONIC_USEC: systemd (253 and later) pairs it with the READY=1 that ends the reload. */
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)now.tv_sec * 1000000ULL + (unsigned long long)now.tv_nsec / 1000);
}
#endif

/* On SIGHUP: reads the config file again and checks it as startup does (core keys, the plugins
 * found, each plugin's section) without starting the plugins again. With an error nothing
 * changes (the log says which key and why). Otherwise ep_config_reload takes what a running
 * daemon can change (README, "Reloading the configuration") and every other difference is
 * logged as taking effect at restart. Main thread only: the single writer of the running config. */
static void reload(daemon_state *d, const char *path, bool log_level_set) {
#ifdef EP_HAVE_SYSTEMD
  notify_reloading();
#endif
  if (!path) {
    ep_log(EP_LOG_WARN, "reload", "SIGHUP: running on the embedded defaults, there is no config file to read again");
  } else {
    ep_site *next = NULL;
    ep_diags diags = {0};
    int r = ep_site_open(&next, path, &diags);
    log_diags(&diags);
    size_t errors = diags.errors;
    ep_diags_clear(&diags);
    if (r < 0 || errors > 0) {
      ep_log(EP_LOG_ERROR, "reload", "%s not reloaded: %zu error(s) (above); still running on the previous settings",
             path, errors);
    } else {
      ep_config *running = d->site->config;
      int level_before = (int)running->log_level;
      size_t restart_only = 0;
      size_t applied = ep_config_reload(running, next->config, log_change, &restart_only);
      ep_log(EP_LOG_INFO, "reload", "%s reloaded: %zu setting(s) applied, %zu take effect at restart", path, applied,
             restart_only);
      if ((int)running->log_level != level_before) {
        if (log_level_set)
          ep_log(EP_LOG_WARN, "reload", "logs.level %s: --log-level on the command line wins",
                 ep_log_level_name((int)running->log_level));
        else
          ep_log_set_level((int)running->log_level); /* last, so the lines above are written at the old level */
      }
    }
    ep_site_free(next);
  }
#ifdef EP_HAVE_SYSTEMD
  sd_notify(0, "READY=1");
#endif
}

/* Stops and frees whatever started, in reverse; running calls get grace_ms to end. */
static void stop(daemon_state *d, int grace_ms) {
  ep_dashboard_stop(d->dashboard);
  ep_daemon_metrics_stop(d->metrics);
  ep_reconciler_stop(d->reconciler);
  ep_housekeeping_free(d->housekeeping);
  ep_https_server_free(d->https);
  ep_health_free(d->health);
  ep_southbound_stop(d->southbound, grace_ms);
  ep_mgmt_server_stop(d->mgmt, grace_ms);
  ep_inventory_free(d->inv);
  ep_site_free(d->site);
  *d = (daemon_state){0};
}

int main(int argc, char **argv) {
  ep_daemon_options opt;
  int status = EXIT_SUCCESS;
  if (!ep_daemon_args_parse(&opt, &status, argc, argv)) return status;
  ep_log_setup(stderr, opt.log_level);

  /* Block the stop and reload signals before any plugin starts a thread, so every thread
   * inherits the mask and only sigwait below receives them (a SIGHUP during startup waits there). */
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, NULL);

  const char *path = ep_site_config_path(opt.config_path);
  ep_log(EP_LOG_INFO, "edgeprovd", "starting version=%s config=%s", EP_VERSION, path ? path : "(embedded defaults)");
  daemon_state d = {0};
  if (open_site(&d, path, opt.log_level_set) < 0 || start_services(&d, opt.check_only) < 0) {
    stop(&d, 0); /* nothing was served yet: no calls to wait for */
    ep_daemon_options_clear(&opt);
    return EXIT_FAILURE;
  }
  int sig = 0;
  while (!opt.check_only && sigwait(&signals, &sig) == 0 && sig == SIGHUP) reload(&d, path, opt.log_level_set);
  if (!opt.check_only) ep_log(EP_LOG_INFO, "edgeprovd", "stopping on %s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  stop(&d, SHUTDOWN_GRACE_MS);
  ep_log(EP_LOG_INFO, "edgeprovd", "stopped");
  ep_daemon_options_clear(&opt);
  return EXIT_SUCCESS;
}
