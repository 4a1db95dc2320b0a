/* core: the read-only web dashboard and its JSON API, see dashboard.h. */
#define _GNU_SOURCE /* strdup, explicit_bzero */
#include "northbound/dashboard.h"

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "base/json_text.h"
#include "base/log.h"
#include "base/secret.h"
#include "base/validate.h"
#include "northbound/dashboard_assets.h" /* generated from core/dashboard/ by embed_files.cmake */
#include "net/https.h"
#include "northbound/fleet_view.h"
#include "provisioning/node_log.h"

#define FOLLOW_WAIT_MS 1000 /* the longest wait between two looks at the store (and at stopping) */
#define FOLLOW_PAGE 256     /* events read at a time */
#define LOG_LINES_MAX EP_NODE_LOG_READ_MAX

/* One inventory change as an event stream tells it. */
typedef struct change {
  uint64_t revision;
  const char *kind; /* "host", "instance", "workflow", "log" */
  char host[EP_UUID_TEXT_LEN + 1]; /* "" when the change does not name it (a deleted instance) */
} change;

struct ep_dashboard {
  ep_https_server *server;
  ep_inventory *inv;
  char *token;
  pthread_t follower;
  bool following;
  /* The changes the follower read: ring[] holds every change of revisions (floor, followed],
   * at most EP_DASHBOARD_CHANGES_KEPT, oldest at ring_start. Guarded by lock. */
  pthread_mutex_t lock;
  bool stopping;
  change ring[EP_DASHBOARD_CHANGES_KEPT];
  size_t ring_start, ring_count;
  uint64_t floor, followed;
};

/* ---- JSON ------------------------------------------------------------------------------------- */

/* Sets key of o to value (taken); false when value is NULL or out of memory (o is kept). */
static bool put(json_t *o, const char *key, json_t *value) { return value && json_object_set_new(o, key, value) == 0; }

static json_t *time_json(int64_t t) { return t > 0 ? json_integer((json_int_t)t) : json_null(); }

/* {"error": message} and the status; NULL when out of memory. */
static char *error_body(const char *message) {
  json_t *o = json_object();
  char *text = o && put(o, "error", ep_json_text(message)) ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
  json_decref(o);
  return text;
}

/* Dumps o (taken) into *out: 0 or EP_ENOMEM. */
static int dump(json_t *o, bool ok, char **out) {
  char *text = o && ok ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
  json_decref(o);
  if (!text) return ep_error_set(EP_ENOMEM, "out of memory");
  *out = text;
  return 0;
}

/* The host's instance and workflow, each NULL when there is none (or it cannot be read). */
static void load_records(ep_inventory *inv, const ep_inv_host *h, ep_inv_instance **ret_i, ep_workflow **ret_w) {
  *ret_i = NULL;
  *ret_w = NULL;
  if (!h->instance_id[0]) return;
  if (ep_inventory_get_instance(inv, h->instance_id, ret_i) < 0) *ret_i = NULL;
  if (ep_inventory_get_workflow(inv, h->instance_id, ret_w) < 0) *ret_w = NULL;
  if (*ret_w) ep_workflow_strip_for_operators(*ret_w); /* no action parameter leaves */
}

/* A host as the fleet table shows it. */
static json_t *fleet_row(const ep_inv_host *h, const ep_inv_instance *i, const ep_workflow *w, int64_t now) {
  json_t *o = json_object();
  uint32_t index = 0;
  const Edgeprov__V1__WorkflowAction *a = ep_fleet_current_action(w, &index);
  bool done = w && w->state == EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_SUCCESS;
  int64_t started = ep_fleet_started_at(h);
  int64_t end = i && i->running_at ? i->running_at : now;
  const char *status = i && i->provisioning_status && i->provisioning_status->message[0] ? i->provisioning_status->message
                       : h->host_status ? h->host_status->message
                                        : "";
  bool ok = o && put(o, "uuid", ep_json_text(h->uuid)) && put(o, "serial", ep_json_text(h->serial)) &&
            put(o, "site", ep_json_text(h->site)) && put(o, "state", json_string(ep_fleet_state(h, i, w))) &&
            put(o, "host_state", json_string(ep_inv_host_state_name(h->current_state))) &&
            put(o, "instance_state", i ? json_string(ep_inv_instance_state_name(i->current_state)) : json_null()) &&
            put(o, "status", ep_json_text(status)) &&
            put(o, "action", a && !done ? ep_json_text(a->action) : json_null()) &&
            put(o, "action_index", a && !done ? json_integer(index + 1) : json_null()) &&
            put(o, "actions", json_integer(w ? (json_int_t)w->n_actions : 0)) &&
            put(o, "action_state", a && !done ? json_string(ep_action_state_name(a->state)) : json_null()) &&
            put(o, "bytes_done", json_integer(a && !done ? (json_int_t)a->bytes_done : 0)) &&
            put(o, "bytes_total", json_integer(a && !done ? (json_int_t)a->bytes_total : 0)) &&
            put(o, "started_at", time_json(started)) &&
            put(o, "elapsed_s", started ? json_integer(end > started ? end - started : 0) : json_null());
  if (!ok) {
    json_decref(o);
    return NULL;
  }
  return o;
}

int ep_dashboard_fleet_json(ep_inventory *inv, const char *page_token, unsigned limit, char **out, int *ret_status) {
  if (!limit) limit = EP_DASHBOARD_FLEET_PAGE_DEFAULT;
  if (limit > EP_DASHBOARD_FLEET_PAGE_MAX) {
    char message[128];
    snprintf(message, sizeof message, "limit: at most %d hosts a page", EP_DASHBOARD_FLEET_PAGE_MAX);
    *ret_status = 400;
    return (*out = error_body(message)) ? 0 : ep_error_set(EP_ENOMEM, "out of memory");
  }
  uint64_t revision = 0;
  ep_inv_host **hosts = NULL;
  size_t count = 0;
  char *next = NULL;
  int r = ep_inventory_revision(inv, &revision); /* before the page: a change after it is an event */
  if (r == 0) r = ep_inventory_list_hosts(inv, page_token ? page_token : "", limit, &hosts, &count, &next);
  if (r < 0) {
    *ret_status = r == EP_EINVAL ? 400 : 500;
    return (*out = error_body(ep_error_message())) ? 0 : ep_error_set(EP_ENOMEM, "out of memory");
  }
  int64_t now = (int64_t)time(NULL);
  json_t *o = json_object(), *rows = json_array();
  bool ok = o && rows;
  for (size_t k = 0; ok && k < count; k++) {
    ep_inv_instance *i = NULL;
    ep_workflow *w = NULL;
    load_records(inv, hosts[k], &i, &w);
    json_t *row = fleet_row(hosts[k], i, w, now);
    ok = row && json_array_append_new(rows, row) == 0;
    ep_inv_instance_free(i);
    if (w) ep_workflow_free(w);
  }
  ok = ok && put(o, "revision", json_integer((json_int_t)revision)) && put(o, "now", json_integer(now)) &&
       put(o, "next", next && next[0] ? ep_json_text(next) : json_null());
  if (ok) ok = json_object_set_new(o, "hosts", rows) == 0;
  else json_decref(rows);
  ep_inv_hosts_free(hosts, count);
  free(next);
  *ret_status = 200;
  return dump(o, ok, out);
}

static json_t *timeline_json(const ep_inv_host *h, const ep_inv_instance *i, const ep_workflow *w) {
  ep_fleet_phase p[EP_FLEET_PHASES_MAX];
  size_t n = ep_fleet_timeline(h, i, w, p);
  json_t *list = json_array();
  for (size_t k = 0; list && k < n; k++) {
    json_t *o = json_object();
    bool ok = o && put(o, "phase", ep_json_text(p[k].name)) && put(o, "kind", json_string(p[k].state ? "action" : "moment")) &&
              put(o, "start", json_integer(p[k].start)) && put(o, "end", time_json(p[k].end)) &&
              put(o, "state", p[k].state ? json_string(p[k].state) : json_null()) &&
              put(o, "bytes_done", json_integer((json_int_t)p[k].bytes_done)) &&
              put(o, "bytes_total", json_integer((json_int_t)p[k].bytes_total));
    if (!ok) {
      json_decref(o);
      o = NULL;
    }
    ep_json_push(&list, o);
  }
  return list;
}

static json_t *actions_json(const ep_workflow *w) {
  json_t *list = json_array();
  for (size_t k = 0; list && k < w->n_actions; k++) {
    const Edgeprov__V1__WorkflowAction *a = w->actions[k];
    json_t *o = json_object();
    bool ok = o && put(o, "action", ep_json_text(a->action)) && put(o, "state", json_string(ep_action_state_name(a->state))) &&
              put(o, "attempts", json_integer(a->attempts)) && put(o, "message", ep_json_text(a->message)) &&
              put(o, "bytes_done", json_integer((json_int_t)a->bytes_done)) &&
              put(o, "bytes_total", json_integer((json_int_t)a->bytes_total)) &&
              put(o, "started_at", time_json(a->started_at)) && put(o, "finished_at", time_json(a->finished_at));
    if (!ok) {
      json_decref(o);
      o = NULL;
    }
    ep_json_push(&list, o);
  }
  return list;
}

typedef struct log_json {
  json_t *lines;
  bool failed;
} log_json;

static int keep_line(void *data, const ep_node_log_line *line) {
  log_json *l = data;
  json_t *o = json_object();
  bool ok = o && put(o, "seq", json_integer((json_int_t)line->seq)) && put(o, "time", json_integer(line->time)) &&
            put(o, "run", json_integer(line->run)) && put(o, "action", json_integer(line->action)) &&
            put(o, "action_name", ep_json_text(line->action_name)) && put(o, "text", ep_json_text(line->text));
  if (!ok || json_array_append_new(l->lines, o) < 0) {
    if (!ok) json_decref(o);
    l->failed = true;
    return 1;
  }
  return 0;
}

static int no_line(void *data, const ep_node_log_line *line) {
  (void)data, (void)line;
  return 1;
}

int ep_dashboard_node_json(ep_inventory *inv, const char *uuid_text, unsigned lines, char **out, int *ret_status) {
  char uuid[EP_UUID_TEXT_LEN + 1];
  ep_inv_host *h = NULL;
  if (!lines) lines = EP_DASHBOARD_LOG_LINES_DEFAULT;
  if (lines > LOG_LINES_MAX) lines = LOG_LINES_MAX;
  uint64_t revision = 0;
  int r = ep_validate_uuid(uuid, "uuid", uuid_text);
  if (r == 0) r = ep_inventory_revision(inv, &revision);
  if (r == 0) r = ep_inventory_get_host(inv, uuid, &h);
  if (r < 0) {
    *ret_status = r == EP_EINVAL ? 400 : r == EP_ENOENT ? 404 : 500;
    return (*out = error_body(ep_error_message())) ? 0 : ep_error_set(EP_ENOMEM, "out of memory");
  }
  ep_inv_instance *i = NULL;
  ep_workflow *w = NULL;
  load_records(inv, h, &i, &w);
  /* The last lines: the head first (no line read), then from where they begin. */
  ep_node_log_head head;
  log_json l = {.lines = json_array()};
  int lr = ep_node_log_read(inv, uuid, UINT64_MAX - 1, 0, 1, no_line, NULL, &head);
  uint64_t last = head.next_line ? head.next_line - 1 : 0;
  if (lr == 0 && last && l.lines)
    lr = ep_node_log_read(inv, uuid, last > lines ? last - lines : 0, 0, lines, keep_line, &l, NULL);
  if (lr < 0) ep_log(EP_LOG_WARN, "dashboard", "cannot read the log of host %s: %s", uuid, ep_error_message());
  int64_t now = (int64_t)time(NULL);
  /* Each part is built whole, then put into o (put takes it, whether or not it succeeds). */
  json_t *o = json_object(), *host = fleet_row(h, i, w, now);
  bool ok = o && host && l.lines && !l.failed;
  ok = ok && put(host, "ip", ep_json_text(h->ip)) && put(host, "peer_ip", ep_json_text(h->peer_ip)) &&
       put(host, "os_profile", ep_json_text(h->os_profile)) && put(host, "fde", json_boolean(h->fde)) &&
       put(host, "desired_state", json_string(ep_inv_host_state_name(h->desired_state))) &&
       put(host, "created_at", time_json(h->created_at));
  ok = put(o, "host", host) && ok;
  json_t *instance = i ? json_object() : json_null();
  if (ok && i)
    ok = put(instance, "id", ep_json_text(i->id)) && put(instance, "os_profile", ep_json_text(i->os_profile)) &&
         put(instance, "fde", json_boolean(i->fde)) &&
         put(instance, "state", json_string(ep_inv_instance_state_name(i->current_state))) &&
         put(instance, "status", ep_json_text(i->provisioning_status ? i->provisioning_status->message : "")) &&
         put(instance, "running_at", time_json(i->running_at));
  ok = put(o, "instance", instance) && ok;
  json_t *workflow = w ? json_object() : json_null();
  if (ok && w)
    ok = put(workflow, "generation", json_integer(w->generation)) && put(workflow, "os_profile", ep_json_text(w->os_profile)) &&
         put(workflow, "created_at", time_json(w->created_at)) && put(workflow, "finished_at", time_json(w->finished_at)) &&
         put(workflow, "actions", actions_json(w));
  ok = put(o, "workflow", workflow) && ok;
  ok = put(o, "log", l.lines) && ok;
  ok = ok && put(o, "revision", json_integer((json_int_t)revision)) && put(o, "now", json_integer(now)) &&
       put(o, "timeline", timeline_json(h, i, w)) &&
       put(o, "log_next_line", json_integer((json_int_t)(head.next_line ? head.next_line : 1)));
  ep_inv_host_free(h);
  ep_inv_instance_free(i);
  if (w) ep_workflow_free(w);
  *ret_status = 200;
  return dump(o, ok, out);
}

/* ---- the follower: the inventory's changes, read once for every event stream ---------------- */

static int keep_change(void *data, const ep_inv_event *e) {
  ep_dashboard *d = data;
  change c = {.revision = e->revision};
  const char *host = "";
  switch (e->resource_case) {
  case EDGEPROV__V1__EVENT__RESOURCE_HOST:
    c.kind = "host", host = e->host->uuid;
    break;
  case EDGEPROV__V1__EVENT__RESOURCE_INSTANCE:
    c.kind = "instance", host = e->instance->host_uuid;
    break;
  case EDGEPROV__V1__EVENT__RESOURCE_WORKFLOW:
    c.kind = "workflow", host = e->workflow->host_uuid;
    break;
  case EDGEPROV__V1__EVENT__RESOURCE_LOG:
    c.kind = "log", host = e->log->host_uuid;
    break;
  default:
    return 0;
  }
  if (ep_validate_uuid(c.host, "host", host ? host : "") < 0) c.host[0] = '\0'; /* only a UUID goes out */
  pthread_mutex_lock(&d->lock);
  if (d->ring_count == EP_DASHBOARD_CHANGES_KEPT) { /* the oldest goes: a stream behind it resyncs */
    d->floor = d->ring[d->ring_start].revision;
    d->ring_start = (d->ring_start + 1) % EP_DASHBOARD_CHANGES_KEPT;
    d->ring_count--;
  }
  d->ring[(d->ring_start + d->ring_count++) % EP_DASHBOARD_CHANGES_KEPT] = c;
  pthread_mutex_unlock(&d->lock);
  return 0;
}

static void *follow_main(void *arg) {
  ep_dashboard *d = arg;
  bool failing = false;
  for (;;) {
    pthread_mutex_lock(&d->lock);
    bool stopping = d->stopping;
    uint64_t from = d->followed;
    pthread_mutex_unlock(&d->lock);
    if (stopping) break;
    ep_inventory_wait(d->inv, from, FOLLOW_WAIT_MS);
    uint64_t head = 0, last = from;
    int r = ep_inventory_revision(d->inv, &head);
    while (r == 0 && last < head) {
      uint64_t before = last;
      r = ep_inventory_events_page(d->inv, before, FOLLOW_PAGE, keep_change, d, &last);
      if (r == 0 && last <= before) last = head; /* nothing more up to head */
    }
    if (r == EP_ECOMPACTED) { /* what was missed cannot be told: every stream resyncs */
      pthread_mutex_lock(&d->lock);
      d->ring_count = 0;
      d->floor = head;
      pthread_mutex_unlock(&d->lock);
      last = head;
      r = 0;
    }
    if (r < 0 && !failing)
      ep_log(EP_LOG_WARN, "dashboard", "cannot read the inventory's changes (tried again): %s", ep_error_message());
    failing = r < 0;
    if (last > from) {
      pthread_mutex_lock(&d->lock);
      d->followed = last;
      pthread_mutex_unlock(&d->lock);
      ep_https_server_wake_streams(d->server);
    }
  }
  return NULL;
}

/* ---- event streams ------------------------------------------------------------------------------ */

typedef struct events {
  ep_dashboard *d;
  uint64_t cursor; /* the last revision told */
  bool greeted;    /* the "ready" event went out */
  bool resync;     /* the client's revision is unknown here: it re-reads everything */
} events;

/* Appends one event to buf (used of max) when it fits whole; false when it does not. Its id is
 * where a client that reconnects resumes (Last-Event-ID). */
static bool put_event(char *buf, size_t max, size_t *used, const char *name, uint64_t id, uint64_t revision,
                      const char *kind, const char *host) {
  char text[256];
  int n;
  if (kind)
    n = snprintf(text, sizeof text,
                 "id: %" PRIu64 "\nevent: %s\ndata: {\"revision\":%" PRIu64 ",\"kind\":\"%s\",\"host\":%s%s%s}\n\n",
                 id, name, revision, kind, host[0] ? "\"" : "", host[0] ? host : "null", host[0] ? "\"" : "");
  else
    n = snprintf(text, sizeof text, "id: %" PRIu64 "\nevent: %s\ndata: {\"revision\":%" PRIu64 "}\n\n", id, name,
                 revision);
  if (n < 0 || (size_t)n >= sizeof text || *used + (size_t)n > max) return false;
  memcpy(buf + *used, text, (size_t)n);
  *used += (size_t)n;
  return true;
}

static long read_events(void *stream, char *buf, size_t max) {
  events *e = stream;
  ep_dashboard *d = e->d;
  size_t used = 0;
  pthread_mutex_lock(&d->lock);
  if (!e->greeted) { /* tells the client the revision it is at; "retry" its reconnect delay */
    static const char retry[] = "retry: 2000\n";
    if (sizeof retry - 1 <= max) {
      memcpy(buf, retry, sizeof retry - 1);
      used = sizeof retry - 1;
    }
    /* "ready" tells the revision the server is at; its id is where the stream starts */
    e->greeted = put_event(buf, max, &used, "ready", e->resync ? d->followed : e->cursor, d->followed, NULL, NULL);
  }
  /* Behind what is kept, or from elsewhere: the client re-reads everything, then follows. */
  if (e->greeted && (e->resync || e->cursor < d->floor) &&
      put_event(buf, max, &used, "resync", d->followed, d->followed, NULL, NULL)) {
    e->cursor = d->followed;
    e->resync = false;
  }
  for (size_t k = 0; e->greeted && k < d->ring_count; k++) {
    const change *c = &d->ring[(d->ring_start + k) % EP_DASHBOARD_CHANGES_KEPT];
    if (c->revision <= e->cursor) continue;
    if (!put_event(buf, max, &used, "change", c->revision, c->revision, c->kind, c->host)) break;
    e->cursor = c->revision;
  }
  if (e->greeted && e->cursor < d->followed && (d->ring_count == 0 ||
      d->ring[(d->ring_start + d->ring_count - 1) % EP_DASHBOARD_CHANGES_KEPT].revision <= e->cursor))
    e->cursor = d->followed; /* index changes only: nothing to tell */
  pthread_mutex_unlock(&d->lock);
  return (long)used;
}

static void close_events(void *stream) { free(stream); }

static const ep_https_stream_ops events_ops = {.read = read_events, .close = close_events};

/* ---- the routes -------------------------------------------------------------------------------- */

static void answer(ep_https_response *resp, int status, const char *type, char *body) {
  *resp = (ep_https_response){.status = body ? status : 500, .content_type = type, .body = body,
                              .len = body ? strlen(body) : 0};
}

static void answer_error(ep_https_response *resp, int status, const char *message) {
  answer(resp, status, "application/json", error_body(message));
}

/* True when the request carries the operator token; else answers 401. */
static bool authorized(const ep_dashboard *d, const ep_https_request *req, ep_https_response *resp) {
  if (ep_https_bearer_matches(req, d->token)) return true;
  answer_error(resp, 401, "an operator token is required: Authorization: Bearer <token of auth.operator_token_file>");
  return false;
}

/* A query number (0 when absent); false when it is not one. */
static bool query_number(const ep_https_request *req, const char *name, uint64_t max, uint64_t *out) {
  const char *v = ep_https_query_value(req, name);
  *out = 0;
  if (!v || !*v) return true;
  if (strspn(v, "0123456789") != strlen(v) || strlen(v) > 19) return false;
  *out = strtoull(v, NULL, 10);
  return *out <= max;
}

static void api_fleet(void *data, const ep_https_request *req, ep_https_response *resp) {
  ep_dashboard *d = data;
  if (!authorized(d, req, resp)) return;
  uint64_t limit = 0;
  if (req->query_invalid || !query_number(req, "limit", EP_DASHBOARD_FLEET_PAGE_MAX, &limit)) {
    answer_error(resp, 400, "limit: a number of hosts, at most 500");
    return;
  }
  char *body = NULL;
  int status = 500;
  if (ep_dashboard_fleet_json(d->inv, ep_https_query_value(req, "page"), (unsigned)limit, &body, &status) < 0) body = NULL;
  answer(resp, status, "application/json", body);
}

static void api_node(void *data, const ep_https_request *req, ep_https_response *resp) {
  ep_dashboard *d = data;
  if (!authorized(d, req, resp)) return;
  uint64_t lines = 0;
  if (req->query_invalid || !query_number(req, "lines", LOG_LINES_MAX, &lines)) {
    answer_error(resp, 400, "lines: a number of log lines, at most 1000");
    return;
  }
  char *body = NULL;
  int status = 500;
  const char *uuid = req->path + strlen("/api/node/");
  if (ep_dashboard_node_json(d->inv, uuid, (unsigned)lines, &body, &status) < 0) body = NULL;
  answer(resp, status, "application/json", body);
}

static void api_events(void *data, const ep_https_request *req, ep_https_response *resp) {
  ep_dashboard *d = data;
  if (!authorized(d, req, resp)) return;
  uint64_t after = 0;
  const char *last_id = ep_https_header_value(req, "Last-Event-ID");
  bool given = ep_https_query_value(req, "after") != NULL;
  bool ok = !req->query_invalid && query_number(req, "after", UINT64_MAX / 2, &after);
  if (ok && !given && last_id && *last_id) {
    given = true;
    ok = strspn(last_id, "0123456789") == strlen(last_id) && strlen(last_id) <= 18;
    after = ok ? strtoull(last_id, NULL, 10) : 0;
  }
  if (!ok) {
    answer_error(resp, 400, "after (or Last-Event-ID): a revision");
    return;
  }
  events *e = calloc(1, sizeof *e);
  if (!e) {
    answer_error(resp, 503, "out of memory");
    return;
  }
  e->d = d;
  uint64_t head = 0; /* a revision this store has not reached (another store's): the client resyncs */
  e->resync = given && (ep_inventory_revision(d->inv, &head) < 0 || after > head);
  pthread_mutex_lock(&d->lock);
  e->cursor = given && !e->resync ? after : d->followed;
  pthread_mutex_unlock(&d->lock);
  *resp = (ep_https_response){.status = 200, .content_type = "text/event-stream; charset=utf-8", .stream = e,
                              .stream_ops = &events_ops};
}

typedef struct asset {
  const char *path;
  const char *type;
  const char *data;
  size_t len;
} asset;

static const asset assets[] = {
    {"/", "text/html; charset=utf-8", dashboard_index_html, sizeof dashboard_index_html - 1},
    {"/index.html", "text/html; charset=utf-8", dashboard_index_html, sizeof dashboard_index_html - 1},
    {"/dashboard.css", "text/css; charset=utf-8", dashboard_css, sizeof dashboard_css - 1},
    {"/dashboard.js", "text/javascript; charset=utf-8", dashboard_js, sizeof dashboard_js - 1},
};

static void static_asset(void *data, const ep_https_request *req, ep_https_response *resp) {
  const asset *a = data;
  (void)req;
  char *body = malloc(a->len + 1);
  if (body) memcpy(body, a->data, a->len + 1);
  *resp = (ep_https_response){.status = body ? 200 : 500, .content_type = a->type, .body = body, .len = body ? a->len : 0};
}

/* The server's limits: a few operators' browsers, each with a page, its fetches and a stream. */
static const ep_https_limits dashboard_limits = {2, 2, 128, 64, EP_HTTPS_HEADER_TIMEOUT_S_DEFAULT,
                                                 EP_DASHBOARD_KEEPALIVE_S * 4};

int ep_dashboard_start(ep_dashboard **out, const ep_config *config, ep_inventory *inv, int *ret_port) {
  *out = NULL;
  if (!config->listen_dashboard) return 0;
  if (!config->operator_token_file)
    return ep_error_set(EP_EINVAL, "'listen.dashboard': the dashboard needs the operator token: set "
                                   "auth.operator_token_file (its /api/ asks for it as a bearer token)");
  ep_dashboard *d = calloc(1, sizeof *d);
  if (!d) return ep_error_set(EP_ENOMEM, "out of memory");
  d->inv = inv;
  pthread_mutex_init(&d->lock, NULL);
  char *cert = NULL, *key = NULL;
  int port = 0;
  int r = ep_read_secret_file(&d->token, config->operator_token_file, EP_OPERATOR_TOKEN_MAX);
  if (r == 0 && strlen(d->token) < EP_OPERATOR_TOKEN_MIN)
    r = ep_error_set(EP_EINVAL, "%s: the operator token is shorter than %d characters", config->operator_token_file,
                     EP_OPERATOR_TOKEN_MIN);
  if (r == 0 && config->tls_cert) r = ep_config_read_tls_files(config, &cert, &key);
  if (r == 0) r = ep_https_server_new(&d->server, config->listen_dashboard, cert, key);
  if (key) explicit_bzero(key, strlen(key));
  free(cert);
  free(key);
  if (r == 0) r = ep_https_server_set_limits(d->server, &dashboard_limits);
  if (r == 0)
    r = ep_https_server_set_streams(d->server, (unsigned)config->dashboard_streams_max, EP_DASHBOARD_KEEPALIVE_S,
                                    ": keep-alive\n\n");
  for (size_t k = 0; r == 0 && k < sizeof assets / sizeof assets[0]; k++)
    r = ep_https_server_route(d->server, "GET", assets[k].path, static_asset, (void *)&assets[k]);
  if (r == 0) r = ep_https_server_route(d->server, "GET", "/api/fleet", api_fleet, d);
  if (r == 0) r = ep_https_server_route(d->server, "GET", "/api/node/*", api_node, d);
  if (r == 0) r = ep_https_server_route(d->server, "GET", "/api/events", api_events, d);
  if (r == 0) r = ep_inventory_revision(inv, &d->followed);
  d->floor = d->followed;
  if (r == 0) {
    d->following = pthread_create(&d->follower, NULL, follow_main, d) == 0;
    if (!d->following) r = ep_error_set(EP_ENOMEM, "cannot start the dashboard's thread");
  }
  if (r == 0) r = ep_https_server_start(d->server, &port);
  if (r < 0) {
    ep_dashboard_stop(d);
    return ep_error_prefix(r, "'listen.dashboard' %s", config->listen_dashboard);
  }
  ep_log(EP_LOG_INFO, "dashboard", "serving the dashboard at %s://%s/ (port %d)", config->tls_cert ? "https" : "http",
         config->listen_dashboard, port);
  if (ret_port) *ret_port = port;
  *out = d;
  return 0;
}

void ep_dashboard_stop(ep_dashboard *d) {
  if (!d) return;
  if (d->following) {
    pthread_mutex_lock(&d->lock);
    d->stopping = true;
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->follower, NULL); /* within FOLLOW_WAIT_MS */
  }
  ep_https_server_free(d->server); /* every stream closed */
  pthread_mutex_destroy(&d->lock);
  if (d->token) {
    explicit_bzero(d->token, strlen(d->token));
    free(d->token);
  }
  free(d);
}
