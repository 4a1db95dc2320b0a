/* edgeprovd: the /metrics listener and the figures computed at scrape time, see daemon_metrics.h. */
#define _GNU_SOURCE /* explicit_bzero */
#include "daemon_metrics.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "base/figures.h"
#include "base/log.h"

/* A scrape reads the node counts of the last NODES_CACHE_MS: however often it comes, the
 * store is listed at most that often (every host, page by page). */
#define NODES_CACHE_MS 2000

/* The states counted; a host registered whose node has not called yet has none: "NEW". */
static const ep_inv_host_state node_states[] = {
    EDGEPROV__V1__HOST_STATE__HOST_STATE_UNSPECIFIED, EDGEPROV__V1__HOST_STATE__HOST_STATE_REGISTERED, EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED,
    EDGEPROV__V1__HOST_STATE__HOST_STATE_UNTRUSTED, EDGEPROV__V1__HOST_STATE__HOST_STATE_DELETED};
#define NODE_STATES (sizeof node_states / sizeof node_states[0])

struct ep_daemon_metrics {
  ep_https_server *server;
  ep_inventory *inv;
  ep_https_server *https;
  ep_metric *nodes, *connections;
  /* the node counts: read and written by the collect, under the registry's lock */
  bool counted;
  bool failing; /* the last count failed (logged once until one succeeds) */
  int64_t counted_ms;
  double counts[NODE_STATES];
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Counts the hosts by current state into counts; 0 or the inventory's error. */
static int count_nodes(ep_inventory *inv, double counts[NODE_STATES]) {
  char *token = strdup("");
  int r = token ? 0 : ep_error_set(EP_ENOMEM, "out of memory");
  memset(counts, 0, NODE_STATES * sizeof *counts);
  while (r == 0 && token) {
    ep_inv_host **hosts = NULL;
    size_t count = 0;
    char *next = NULL;
    r = ep_inventory_list_hosts(inv, token, EP_INVENTORY_PAGE_MAX, &hosts, &count, &next);
    free(token);
    token = NULL;
    for (size_t i = 0; r == 0 && i < count; i++)
      for (size_t k = 0; k < NODE_STATES; k++) counts[k] += hosts[i]->current_state == node_states[k];
    if (r == 0) ep_inv_hosts_free(hosts, count);
    if (r == 0 && next && next[0]) token = next;
    else free(next);
  }
  return r;
}

static void collect_nodes(void *data, ep_metrics_sink *sink) {
  ep_daemon_metrics *m = data;
  int64_t now = now_ms();
  if (!m->counted || now - m->counted_ms >= NODES_CACHE_MS) {
    double counts[NODE_STATES];
    int r = count_nodes(m->inv, counts);
    if (r == 0) {
      memcpy(m->counts, counts, sizeof counts);
      m->counted = true;
      m->failing = false;
    } else if (!m->failing) {
      m->failing = true;
      ep_log(EP_LOG_WARN, "metrics", "cannot count the nodes by state (scrapes show the last count): %s",
             ep_error_message());
    }
    m->counted_ms = now; /* a failing store is asked again only after the same pause */
  }
  for (size_t k = 0; m->counted && k < NODE_STATES; k++)
    ep_metrics_sink_put(sink, (const char *const[]){k == 0 ? "NEW" : ep_inv_host_state_name(node_states[k])},
                        m->counts[k]);
}

static void collect_connections(void *data, ep_metrics_sink *sink) {
  ep_daemon_metrics *m = data;
  ep_metrics_sink_put(sink, NULL, (double)ep_https_server_connections(m->https));
}

static void answer_metrics(void *data, const ep_https_request *request, ep_https_response *response) {
  (void)data, (void)request;
  char *text = NULL;
  size_t len = 0;
  if (ep_metrics_render(ep_figures_registry(), &text, &len) < 0) {
    ep_log(EP_LOG_WARN, "metrics", "cannot render the figures: %s", ep_error_message());
    *response = (ep_https_response){.status = 500, .content_type = "text/plain"};
    return;
  }
  *response = (ep_https_response){.status = 200, .content_type = EP_METRICS_CONTENT_TYPE, .body = text, .len = len};
}

/* The server's limits: Prometheus scrapes over one kept-alive connection; a few more for
 * people with curl. */
static const ep_https_limits metrics_limits = {1, 1, 16, 16, EP_HTTPS_HEADER_TIMEOUT_S_DEFAULT,
                                               EP_HTTPS_IDLE_TIMEOUT_S_DEFAULT * 4};

static int make_server(ep_https_server **out, const ep_config *config, bool tls) {
  char *cert = NULL, *key = NULL;
  int r = tls ? ep_config_read_tls_files(config, &cert, &key) : 0;
  if (r == 0) r = ep_https_server_new(out, config->listen_metrics, cert, key);
  if (key) explicit_bzero(key, strlen(key));
  free(cert);
  free(key);
  return r;
}

int ep_daemon_metrics_start(ep_daemon_metrics **out, const ep_config *config, ep_inventory *inv,
                            ep_https_server *https) {
  *out = NULL;
  if (!config->listen_metrics) return 0;
  ep_daemon_metrics *m = calloc(1, sizeof *m);
  if (!m) return ep_error_set(EP_ENOMEM, "out of memory");
  m->inv = inv;
  m->https = https;
  ep_metrics *registry = ep_figures_registry();
  int r = registry ? 0 : ep_error_set(EP_ENOMEM, "out of memory");
  if (r == 0)
    r = ep_metrics_gauge_fn(&m->nodes, registry, "edgeprov_nodes", "Hosts in the inventory by current state.",
                            (const char *const[]){"state", NULL}, collect_nodes, m);
  if (r == 0 && https)
    r = ep_metrics_gauge_fn(&m->connections, registry, "edgeprov_https_connections_open",
                            "Connections open now on the embedded HTTPS server (listen.https).", NULL,
                            collect_connections, m);
  /* The config refused a public address unless metrics.public and tls.cert are set. */
  bool tls = config->metrics_public && config->tls_cert;
  int port = 0;
  if (r == 0) r = make_server(&m->server, config, tls);
  if (r == 0) r = ep_https_server_set_limits(m->server, &metrics_limits);
  if (r == 0) r = ep_https_server_route(m->server, "GET", "/metrics", answer_metrics, m);
  if (r == 0) r = ep_https_server_start(m->server, &port);
  if (r < 0) {
    ep_daemon_metrics_stop(m);
    return ep_error_prefix(r, "'listen.metrics' %s", config->listen_metrics);
  }
  ep_log(EP_LOG_INFO, "metrics", "serving Prometheus metrics at %s://%s/metrics (port %d)", tls ? "https" : "http",
         config->listen_metrics, port);
  *out = m;
  return 0;
}

void ep_daemon_metrics_stop(ep_daemon_metrics *m) {
  if (!m) return;
  ep_https_server_free(m->server); /* no scrape runs after */
  ep_metrics_detach(m->nodes);
  ep_metrics_detach(m->connections);
  free(m);
}
