/* core: the read-only web dashboard (issue 18): a page of plain HTML, CSS and JavaScript
 * embedded in the program (core/dashboard/), and the JSON API it reads, on a listener of its own
 * (listen.dashboard; a browser cannot speak the management API's gRPC):
 *   GET /                    index.html, dashboard.css, dashboard.js (no data: no token needed)
 *   GET /api/fleet           a page of hosts as the fleet table shows them (?page=TOKEN&limit=N)
 *   GET /api/node/UUID       a host, its instance and workflow, its timeline and last log lines (?lines=N)
 *   GET /api/events          server-sent events: "change" per inventory change after ?after= or
 *                            Last-Event-ID, with the revision and the host concerned
 * Every /api/ request needs the operator token (auth.operator_token_file) as
 * "Authorization: Bearer <token>", compared in constant time. Nothing changes anything. */
#ifndef EP_CORE_DASHBOARD_H
#define EP_CORE_DASHBOARD_H

#include <stddef.h>

#include "provisioning/inventory.h"
#include "runtime/config.h"

#define EP_DASHBOARD_FLEET_PAGE_DEFAULT 100
#define EP_DASHBOARD_FLEET_PAGE_MAX 500 /* hosts of one /api/fleet page (each costs two reads) */
#define EP_DASHBOARD_LOG_LINES_DEFAULT 200
#define EP_DASHBOARD_CHANGES_KEPT 1024 /* changes an event stream can catch up on; older: one "resync" */
#define EP_DASHBOARD_KEEPALIVE_S 15

typedef struct ep_dashboard ep_dashboard;

/* Serves the dashboard on config's listen.dashboard (over TLS with tls.cert/tls.key when set,
 * plaintext only on loopback), for inv (which must outlive it); at most
 * config->dashboard_streams_max event streams at once. EP_EINVAL naming the settings without
 * an operator token (auth.operator_token_file). *ret_port (may be NULL) gets the bound port. */
int ep_dashboard_start(ep_dashboard **out, const ep_config *config, ep_inventory *inv, int *ret_port);

/* Stops serving (open event streams end) and frees. Accepts NULL. */
void ep_dashboard_stop(ep_dashboard *dashboard);

/* The JSON bodies, for tests: *out (malloc'd text) and the HTTP status it is answered with. */
int ep_dashboard_fleet_json(ep_inventory *inv, const char *page_token, unsigned limit, char **out, int *ret_status);
int ep_dashboard_node_json(ep_inventory *inv, const char *uuid, unsigned lines, char **out, int *ret_status);

#endif
