/* edgeprovd: the Prometheus figures at GET /metrics on listen.metrics, on an HTTP server of
 * their own (plaintext on loopback; over the site's TLS on a public address, which the
 * config accepts only with metrics.public). */
#ifndef EP_DAEMON_METRICS_H
#define EP_DAEMON_METRICS_H

#include "net/https.h"
#include "provisioning/inventory.h"
#include "runtime/config.h"

typedef struct ep_daemon_metrics ep_daemon_metrics;

/* Adds the figures computed at scrape time (nodes by state from inv, cached for
 * NODES_CACHE_MS; https's open connections) and serves them on config->listen_metrics; logs
 * one line. *out is NULL and nothing is served when listen.metrics is unset. inv and https
 * must outlive it; the figures must be registered (ep_figures_register). */
int ep_daemon_metrics_start(ep_daemon_metrics **out, const ep_config *config, ep_inventory *inv,
                            ep_https_server *https);

/* Stops serving and detaches the computed figures (after it, inv and https may go). NULL is fine. */
void ep_daemon_metrics_stop(ep_daemon_metrics *metrics);

#endif
