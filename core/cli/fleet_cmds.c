/* edgeprov CLI: inventory changes (events), watching the fleet (watch), a node's log (logs) and
 * its timeline (host show), over the management API: the current state from unary calls, then
 * changes from the WatchEvents stream (no polling). */
#define _GNU_SOURCE /* strndup */
#include "fleet_cmds.h"

#include "cli.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_output.h"
#include "edgeprov/v1/management.pb-c.h"
#include "base/error.h"
#include "base/validate.h"
#include "northbound/fleet_view.h"
#include "provisioning/workflow.h"

static int64_t now_s(void) { return (int64_t)time(NULL); }

static double now_precise(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "12.3 MiB" */
static void bytes_text(uint64_t n, char *buf, size_t len) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = (double)n;
  size_t u = 0;
  while (v >= 1024 && u + 1 < sizeof units / sizeof units[0]) v /= 1024, u++;
  if (u == 0) snprintf(buf, len, "%" PRIu64 " B", n);
  else snprintf(buf, len, "%.1f %s", v, units[u]);
}

/* "1h02m", "3m05s", "42s"; "-" for a negative duration */
static void duration_text(int64_t s, char *buf, size_t len) {
  if (s < 0) snprintf(buf, len, "-");
  else if (s >= 3600) snprintf(buf, len, "%" PRId64 "h%02" PRId64 "m", s / 3600, s / 60 % 60);
  else if (s >= 60) snprintf(buf, len, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
  else snprintf(buf, len, "%" PRId64 "s", s);
}

/* ---- the timeline ------------------------------------------------------------------------------ */

/* The phases come from northbound/fleet_view.c (the dashboard draws the same); their texts are
 * the records' own, escaped here when printed. */
typedef ep_fleet_phase phase;
#define PHASES_MAX EP_FLEET_PHASES_MAX

static int64_t timeline_origin(const phase *p, size_t n) {
  int64_t origin = 0;
  for (size_t k = 0; k < n; k++)
    if (!origin || p[k].start < origin) origin = p[k].start;
  return origin;
}

void cli_print_timeline(const ep_inv_host *h, const ep_inv_instance *i, const ep_workflow *w) {
  phase p[PHASES_MAX];
  size_t n = ep_fleet_timeline(h, i, w, p);
  if (!n) {
    printf("timeline:      - (the node has not fetched or said anything yet)\n");
    return;
  }
  int64_t origin = timeline_origin(p, n);
  char when[32];
  cli_time_text(origin, when, sizeof when);
  printf("timeline:      from %s\n", when);
  for (size_t k = 0; k < n; k++) {
    char at[32], took[32] = "", done[32] = "", total[32] = "", bytes[80] = "";
    duration_text(p[k].start - origin, at, sizeof at);
    if (p[k].state) {
      int64_t end = p[k].end ? p[k].end : now_s();
      duration_text(end - p[k].start, took, sizeof took);
    }
    if (p[k].bytes_total || p[k].bytes_done) {
      bytes_text(p[k].bytes_done, done, sizeof done);
      bytes_text(p[k].bytes_total, total, sizeof total);
      snprintf(bytes, sizeof bytes, "  %s of %s", done, total);
    }
    printf("  +%-8s %-8s %s%s%s%s\n", at, took, cli_shown(p[k].name), p[k].state ? "  " : "", p[k].state ? p[k].state : "", bytes);
  }
}

json_t *cli_timeline_json(const ep_inv_host *h, const ep_inv_instance *i, const ep_workflow *w) {
  phase p[PHASES_MAX];
  size_t n = ep_fleet_timeline(h, i, w, p);
  json_t *list = json_array();
  for (size_t k = 0; list && k < n; k++) {
    char start[32], end[32];
    cli_time_text(p[k].start, start, sizeof start);
    cli_time_text(p[k].end, end, sizeof end);
    json_t *o = json_pack("{s:s, s:s}", "phase", cli_shown(p[k].name), "start", start);
    if (o && p[k].state &&
        (json_object_set_new(o, "end", p[k].end ? json_string(end) : json_null()) < 0 ||
         json_object_set_new(o, "state", json_string(p[k].state)) < 0 ||
         json_object_set_new(o, "bytes_done", json_integer((json_int_t)p[k].bytes_done)) < 0 ||
         json_object_set_new(o, "bytes_total", json_integer((json_int_t)p[k].bytes_total)) < 0)) {
      json_decref(o);
      o = NULL;
    }
    ep_json_push(&list, o);
  }
  return list;
}

int cli_get_instance(ep_mgmt_client *client, const char *id, Edgeprov__V1__InstanceDetail **ret_detail) {
  Edgeprov__V1__GetInstanceRequest req = EDGEPROV__V1__GET_INSTANCE_REQUEST__INIT;
  req.id = (char *)id;
  return ep_mgmt_client_call(client, "GetInstance", &req.base, &edgeprov__v1__instance_detail__descriptor,
                             (ProtobufCMessage **)ret_detail);
}

/* ---- events ----------------------------------------------------------------------------------- */

typedef struct event_printer {
  int json;
  int failed; /* an event could not be printed (reported on stderr): the command fails */
} event_printer;

static int print_event(void *data, const ep_inv_event *e) {
  event_printer *p = data;
  int put = e->kind == EDGEPROV__V1__EVENT__KIND__KIND_PUT;
  if (p->json) {
    json_t *o = json_pack("{s:I, s:s}", "revision", (json_int_t)e->revision, "kind", put ? "put" : "delete");
    const char *key = NULL;
    json_t *resource = NULL;
    if (e->resource_case == EDGEPROV__V1__EVENT__RESOURCE_HOST) {
      key = "host";
      resource = put ? cli_host_json(e->host) : json_pack("{s:o}", "uuid", ep_json_text(e->host->uuid));
    } else if (e->resource_case == EDGEPROV__V1__EVENT__RESOURCE_INSTANCE) {
      key = "instance";
      resource = put ? cli_instance_json(e->instance) : json_pack("{s:o}", "id", ep_json_text(e->instance->id));
    } else if (e->resource_case == EDGEPROV__V1__EVENT__RESOURCE_WORKFLOW) {
      key = "workflow";
      resource = put ? cli_workflow_json(e->workflow, false)
                     : json_pack("{s:o}", "instance_id", ep_json_text(e->workflow->instance_id));
      if (put && resource && json_object_set_new(resource, "instance_id", ep_json_text(e->workflow->instance_id)) < 0) {
        json_decref(resource);
        resource = NULL;
      }
    } else if (e->resource_case == EDGEPROV__V1__EVENT__RESOURCE_LOG) {
      key = "log";
      resource = json_pack("{s:o, s:I}", "host_uuid", ep_json_text(e->log->host_uuid), "next_line",
                           (json_int_t)e->log->next_line);
    }
    if (key && (!o || json_object_set_new(o, key, resource) < 0)) { /* set_new takes resource even when it fails */
      if (!o) json_decref(resource);
      json_decref(o);
      o = NULL;
    }
    if (cli_print_json(o, JSON_COMPACT) != EXIT_SUCCESS) {
      p->failed = 1;
      return 1;
    }
  } else if (e->resource_case == EDGEPROV__V1__EVENT__RESOURCE_HOST) {
    if (put)
      printf("%" PRIu64 " host %s put: desired %s, current %s, %s\n", e->revision, cli_shown(e->host->uuid),
             ep_inv_host_state_name(e->host->desired_state), ep_inv_host_state_name(e->host->current_state),
             cli_status_text(e->host->host_status));
    else
      printf("%" PRIu64 " host %s deleted\n", e->revision, cli_shown(e->host->uuid));
  } else if (e->resource_case == EDGEPROV__V1__EVENT__RESOURCE_INSTANCE) {
    if (put)
      printf("%" PRIu64 " instance %s put: host %s, %s, %s\n", e->revision, cli_shown(e->instance->id),
             cli_shown(e->instance->host_uuid), ep_inv_instance_state_name(e->instance->current_state),
             cli_status_text(e->instance->provisioning_status));
    else
      printf("%" PRIu64 " instance %s deleted\n", e->revision, cli_shown(e->instance->id));
  } else if (e->resource_case == EDGEPROV__V1__EVENT__RESOURCE_WORKFLOW) {
    if (put) {
      char status[EP_WORKFLOW_STATUS_MAX];
      ep_workflow_status(e->workflow, status, NULL);
      printf("%" PRIu64 " workflow %s put: host %s, %s\n", e->revision, cli_shown(e->workflow->instance_id),
             cli_shown(e->workflow->host_uuid), cli_shown(status));
    } else {
      printf("%" PRIu64 " workflow %s deleted\n", e->revision, cli_shown(e->workflow->instance_id));
    }
  } else if (e->resource_case == EDGEPROV__V1__EVENT__RESOURCE_LOG) {
    if (put)
      printf("%" PRIu64 " log of host %s: %" PRIu64 " lines\n", e->revision, cli_shown(e->log->host_uuid),
             e->log->next_line - 1);
    else
      printf("%" PRIu64 " log of host %s deleted\n", e->revision, cli_shown(e->log->host_uuid));
  }
  fflush(stdout);
  return 0;
}

int ep_cli_events(cli_call *call) {
  uint64_t after = 0;
  event_printer printer = {.json = cli_flag(call, 'j')};
  const char *after_text = cli_value(call, 'A');
  if (after_text) {
    char *end = NULL;
    after = strtoull(after_text, &end, 10);
    if (!*after_text || *end) return cli_usage_error(call, "--after needs a revision, a number (got '%s')", after_text);
  }
  if (ep_mgmt_client_watch(call->client, after, cli_flag(call, 'f'), print_event, &printer) < 0) return cli_fail();
  return printer.failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* ---- logs ------------------------------------------------------------------------------------ */

typedef struct log_follow {
  ep_mgmt_client *client;
  char uuid[EP_UUID_TEXT_LEN + 1];
  uint32_t run;
  bool json;
  uint64_t last;     /* seq of the last line printed */
  uint64_t revision; /* of the store when the last page was read */
  int status;
} log_follow;

static int print_log_line(const log_follow *f, const Edgeprov__V1__LogLine *l) {
  char when[32];
  cli_time_text(l->time, when, sizeof when);
  if (f->json) {
    json_t *o = json_pack("{s:I, s:s, s:i, s:i, s:o, s:o}", "seq", (json_int_t)l->seq, "time", when, "run", (int)l->run,
                          "action", (int)l->action, "action_name", ep_json_text(l->action_name), "text",
                          ep_json_text(l->text));
    return cli_print_json(o, JSON_COMPACT);
  }
  printf("%s run %u %s: %s\n", when, l->run, l->action_name[0] ? cli_shown(l->action_name) : "-", cli_shown(l->text));
  return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* Prints every kept line after f->last. */
static int print_new_lines(log_follow *f) {
  for (;;) {
    Edgeprov__V1__GetLogsRequest req = EDGEPROV__V1__GET_LOGS_REQUEST__INIT;
    req.host_uuid = f->uuid;
    req.after_line = f->last;
    req.run = f->run;
    Edgeprov__V1__GetLogsResponse *resp = NULL;
    if (ep_mgmt_client_call(f->client, "GetLogs", &req.base, &edgeprov__v1__get_logs_response__descriptor,
                            (ProtobufCMessage **)&resp) < 0)
      return cli_fail();
    int status = EXIT_SUCCESS;
    for (size_t i = 0; status == EXIT_SUCCESS && i < resp->n_lines; i++) {
      status = print_log_line(f, resp->lines[i]);
      f->last = resp->lines[i]->seq;
    }
    /* Lines of other runs were skipped: the next read starts after all of them. */
    if (!resp->more && resp->next_line > 0 && f->last < resp->next_line - 1) f->last = resp->next_line - 1;
    if (!f->revision) f->revision = resp->revision;
    bool more = resp->more;
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    if (status != EXIT_SUCCESS || !more) return status;
  }
}

static int on_log_event(void *data, const ep_inv_event *e) {
  log_follow *f = data;
  if (e->resource_case == EDGEPROV__V1__EVENT__RESOURCE_HOST && e->kind == EDGEPROV__V1__EVENT__KIND__KIND_DELETE &&
      strcmp(e->host->uuid, f->uuid) == 0)
    return 1; /* the host and its log are gone */
  if (e->resource_case != EDGEPROV__V1__EVENT__RESOURCE_LOG || !e->log || strcmp(e->log->host_uuid, f->uuid) != 0)
    return 0;
  if (e->log->next_line && e->log->next_line - 1 <= f->last) return 0; /* printed already */
  f->status = print_new_lines(f);
  return f->status != EXIT_SUCCESS;
}

int ep_cli_logs(cli_call *call) {
  ep_mgmt_client *client = call->client;
  log_follow f = {.client = client, .json = cli_flag(call, 'j')};
  bool follow = cli_flag(call, 'f');
  const char *run_text = cli_value(call, 'r');
  if (run_text) {
    char *end = NULL;
    unsigned long run = strtoul(run_text, &end, 10);
    if (!*run_text || *end || run == 0 || run > UINT32_MAX)
      return cli_usage_error(call, "--run needs a workflow run, 1 or more (got '%s')", run_text);
    f.run = (uint32_t)run;
  }
  if (ep_validate_uuid(f.uuid, "HOST_UUID", call->args[0]) < 0) return cli_fail();
  int status = print_new_lines(&f);
  if (status != EXIT_SUCCESS || !follow) return status;
  if (ep_mgmt_client_watch(client, f.revision, 1, on_log_event, &f) < 0) return cli_fail();
  return f.status;
}

/* ---- watch ----------------------------------------------------------------------------------- */

typedef enum { UNTIL_NONE, UNTIL_ONBOARDED, UNTIL_RUNNING } until_goal;

typedef struct node_row {
  ep_inv_host *host;
  ep_inv_instance *instance;
  ep_workflow *workflow;
  char line[512];      /* what was last printed for it (plain and JSON modes) */
  uint64_t rate_bytes; /* bytes_done at rate_time */
  double rate_time;    /* when rate_bytes was seen; 0: not yet */
  double rate;         /* bytes a second, smoothed */
  uint32_t rate_action;
} node_row;

typedef struct fleet {
  ep_mgmt_client *client;
  node_row *rows;
  size_t count, cap;
  const char *site;  /* NULL: any */
  bool all;          /* no hosts named: every host, added ones too */
  bool json, tty;
  until_goal until;
  size_t drawn;      /* lines of the last table drawn (tty) */
  int status;        /* EXIT_* once done, -1 while watching */
} fleet;

static node_row *row_of(fleet *f, const char *uuid) {
  for (size_t i = 0; i < f->count; i++)
    if (strcmp(f->rows[i].host->uuid, uuid) == 0) return &f->rows[i];
  return NULL;
}

static node_row *row_of_instance(fleet *f, const char *id) {
  for (size_t i = 0; i < f->count; i++)
    if (f->rows[i].host->instance_id[0] && strcmp(f->rows[i].host->instance_id, id) == 0) return &f->rows[i];
  return NULL;
}

/* Adds a row for host (taken over); NULL when out of memory. */
static node_row *add_row(fleet *f, ep_inv_host *host) {
  if (f->count == f->cap) {
    size_t cap = f->cap ? 2 * f->cap : 16;
    node_row *rows = realloc(f->rows, cap * sizeof *rows);
    if (!rows) return NULL;
    f->rows = rows;
    f->cap = cap;
  }
  node_row *r = &f->rows[f->count++];
  memset(r, 0, sizeof *r);
  r->host = host;
  return r;
}

/* Fetches the row's instance and workflow (when its host has an instance). */
static int load_instance(fleet *f, node_row *r) {
  ep_inv_instance_free(r->instance);
  ep_workflow_free(r->workflow);
  r->instance = NULL;
  r->workflow = NULL;
  if (!r->host->instance_id[0]) return 0;
  Edgeprov__V1__InstanceDetail *d = NULL;
  if (cli_get_instance(f->client, r->host->instance_id, &d) < 0) return ep_error_code() == EP_ENOENT ? 0 : -1;
  r->instance = d->instance;
  r->workflow = d->workflow;
  d->instance = NULL;
  d->workflow = NULL;
  protobuf_c_message_free_unpacked(&d->base, NULL);
  return 0;
}

static bool failed(const node_row *r) {
  return (r->instance && r->instance->current_state == EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_ERROR) ||
         (r->workflow && r->workflow->state == EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_FAILED) ||
         r->host->current_state == EDGEPROV__V1__HOST_STATE__HOST_STATE_UNTRUSTED;
}

static bool reached(const node_row *r, until_goal goal) {
  if (goal == UNTIL_RUNNING)
    return r->instance && r->instance->current_state == EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_RUNNING;
  return r->host->current_state == EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED;
}

/* The state a person reads (fleet_view.h): the instance's when there is one, else the host's. */
static const char *row_state(const node_row *r) { return ep_fleet_state(r->host, r->instance, r->workflow); }

/* Updates the row's transfer rate from its current action's bytes. */
static void update_rate(node_row *r) {
  uint32_t index = 0;
  const Edgeprov__V1__WorkflowAction *a = ep_fleet_current_action(r->workflow, &index);
  double t = now_precise();
  if (!a || a->state != EDGEPROV__V1__ACTION_STATE__ACTION_STATE_RUNNING || !a->bytes_total) {
    r->rate = 0;
    r->rate_time = 0;
    return;
  }
  if (r->rate_time && r->rate_action == index && a->bytes_done > r->rate_bytes && t > r->rate_time) {
    double sample = (double)(a->bytes_done - r->rate_bytes) / (t - r->rate_time);
    r->rate = r->rate > 0 ? 0.5 * r->rate + 0.5 * sample : sample;
  } else if (!r->rate_time || r->rate_action != index) {
    r->rate = 0;
  }
  if (!r->rate_time || r->rate_action != index || a->bytes_done != r->rate_bytes) {
    r->rate_bytes = a->bytes_done;
    r->rate_time = t;
    r->rate_action = index;
  }
}

static int64_t row_elapsed(const node_row *r) {
  int64_t start = r->host->first_contact_at ? r->host->first_contact_at
                  : r->host->artifact_fetched_at ? r->host->artifact_fetched_at
                                                 : 0;
  if (r->host->artifact_fetched_at && r->host->artifact_fetched_at < start) start = r->host->artifact_fetched_at;
  if (!start) return -1;
  int64_t end = r->instance && r->instance->running_at ? r->instance->running_at
                : failed(r) && r->workflow && r->workflow->finished_at ? r->workflow->finished_at /* stopped there */
                                                                    : now_s();
  return end - start;
}

/* The row's figures: action (or "-"), bytes, rate, ETA (-1: unknown), elapsed (-1: unknown). */
typedef struct row_figures {
  const char *action;
  uint64_t done, total;
  double rate;
  int64_t eta, elapsed;
} row_figures;

static row_figures figures_of(const node_row *r) {
  row_figures g = {.action = "-", .eta = -1, .elapsed = row_elapsed(r)};
  const Edgeprov__V1__WorkflowAction *a = ep_fleet_current_action(r->workflow, NULL);
  bool done = r->workflow && r->workflow->state == EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_SUCCESS;
  if (a && !done) {
    g.action = a->action;
    g.done = a->bytes_done;
    g.total = a->bytes_total;
    g.rate = r->rate;
    if (g.rate > 0 && g.total > g.done) g.eta = (int64_t)((double)(g.total - g.done) / g.rate + 0.5);
  }
  return g;
}

/* "[#########.........] 12.0 MiB/100.0 MiB" in buf. */
static void progress_text(const row_figures *g, char *buf, size_t len) {
  if (!g->total) {
    snprintf(buf, len, "%s", "");
    return;
  }
  enum { WIDTH = 20 };
  char bar[WIDTH + 1];
  size_t filled = g->done >= g->total ? WIDTH : (size_t)((double)g->done / (double)g->total * WIDTH);
  for (size_t i = 0; i < WIDTH; i++) bar[i] = i < filled ? '#' : '.';
  bar[WIDTH] = '\0';
  char done[32], total[32];
  bytes_text(g->done, done, sizeof done);
  bytes_text(g->total, total, sizeof total);
  snprintf(buf, len, "[%s] %3d%% %s/%s", bar, (int)(g->done >= g->total ? 100 : 100.0 * (double)g->done / (double)g->total),
           done, total);
}

#define WATCH_ROW "%-36s  %-12s  %-16s  %-44s  %-11s  %-6s  %-7s\n"

/* The row as one text line (without the newline) into buf. */
static void row_text(const node_row *r, char *buf, size_t len) {
  row_figures g = figures_of(r);
  char progress[96], rate[40] = "-", eta[32] = "-", elapsed[32];
  progress_text(&g, progress, sizeof progress);
  if (g.rate > 0) {
    bytes_text((uint64_t)g.rate, rate, sizeof rate);
    strncat(rate, "/s", sizeof rate - strlen(rate) - 1);
  }
  if (g.eta >= 0) duration_text(g.eta, eta, sizeof eta);
  duration_text(g.elapsed, elapsed, sizeof elapsed);
  snprintf(buf, len, WATCH_ROW, cli_shown(r->host->uuid), row_state(r), cli_shown(g.action), progress[0] ? progress : "-",
           rate, eta, elapsed);
  size_t end = strcspn(buf, "\n");
  while (end > 0 && buf[end - 1] == ' ') end--; /* no trailing blanks on a line */
  buf[end] = '\0';
}

static json_t *row_json(const node_row *r) {
  row_figures g = figures_of(r);
  return json_pack("{s:o, s:s, s:o, s:I, s:I, s:I, s:o, s:o}", "host", ep_json_text(r->host->uuid), "state",
                   row_state(r), "action", g.action[0] == '-' && !g.action[1] ? json_null() : ep_json_text(g.action),
                   "bytes_done", (json_int_t)g.done, "bytes_total", (json_int_t)g.total, "rate_bytes_s",
                   (json_int_t)g.rate, "eta_s", g.eta >= 0 ? json_integer(g.eta) : json_null(), "elapsed_s",
                   g.elapsed >= 0 ? json_integer(g.elapsed) : json_null());
}

/* Shows what changed: the whole table redrawn in place on a terminal, else a line (or a JSON
 * object) for each row that reads differently than last time. */
static int show(fleet *f) {
  if (f->tty && !f->json) {
    if (f->drawn) printf("\x1b[%zuA\x1b[J", f->drawn); /* back to the table's top, clear below */
    printf(WATCH_ROW, "HOST", "STATE", "ACTION", "PROGRESS", "RATE", "ETA", "ELAPSED");
    for (size_t i = 0; i < f->count; i++) {
      char line[512];
      row_text(&f->rows[i], line, sizeof line);
      printf("%s\n", line);
    }
    f->drawn = f->count + 1;
    return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
  }
  for (size_t i = 0; i < f->count; i++) {
    node_row *r = &f->rows[i];
    char line[512];
    row_text(r, line, sizeof line);
    /* A change is what the row says, less the clock: elapsed and ETA move by themselves. */
    char key[512];
    row_figures g = figures_of(r);
    snprintf(key, sizeof key, "%s|%s|%" PRIu64 "|%" PRIu64, row_state(r), g.action, g.done, g.total);
    if (strcmp(key, r->line) == 0) continue;
    snprintf(r->line, sizeof r->line, "%s", key);
    if (f->json) {
      if (cli_print_json(row_json(r), JSON_COMPACT) != EXIT_SUCCESS) return EXIT_FAILURE;
    } else {
      char when[32];
      cli_time_text(now_s(), when, sizeof when);
      printf("%s %s\n", when, line);
    }
  }
  return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* With --until: EXIT_FAILURE once a node failed, EXIT_SUCCESS once every one got there, -1
 * while some are on their way. */
static int verdict(const fleet *f) {
  if (f->until == UNTIL_NONE) return -1;
  if (!f->count && !f->all) { /* every named host was deleted */
    fprintf(stderr, "edgeprov: watch: the hosts watched were deleted\n");
    return EXIT_FAILURE;
  }
  if (!f->count) return -1;
  bool all = true;
  for (size_t i = 0; i < f->count; i++) {
    if (failed(&f->rows[i])) return EXIT_FAILURE;
    all = all && reached(&f->rows[i], f->until);
  }
  return all ? EXIT_SUCCESS : -1;
}

static bool selected(const fleet *f, const ep_inv_host *h) {
  return f->all && (!f->site || strcmp(h->site, f->site) == 0);
}

/* A copy of message (of the event, freed after the callback); NULL, with the error set, when
 * out of memory. */
static ProtobufCMessage *copy_message(const ProtobufCMessage *m) {
  size_t len = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(len ? len : 1);
  ProtobufCMessage *copy = NULL;
  if (buf) {
    protobuf_c_message_pack(m, buf);
    copy = protobuf_c_message_unpack(m->descriptor, NULL, len, buf);
    free(buf);
  }
  if (!copy) ep_error_set(EP_ENOMEM, "out of memory");
  return copy;
}

static ep_inv_host *copy_host(const ep_inv_host *h) {
  ep_inv_host *copy = (ep_inv_host *)copy_message(&h->base);
  if (copy) copy->revision = h->revision;
  return copy;
}

/* Applies one event to the rows; returns non-zero to stop watching. */
static int on_fleet_event(void *data, const ep_inv_event *e) {
  fleet *f = data;
  bool put = e->kind == EDGEPROV__V1__EVENT__KIND__KIND_PUT;
  node_row *r = NULL;
  if (e->resource_case == EDGEPROV__V1__EVENT__RESOURCE_HOST && e->host) {
    r = row_of(f, e->host->uuid);
    if (!put) { /* deleted: the row goes */
      if (r) {
        ep_inv_host_free(r->host);
        ep_inv_instance_free(r->instance);
        ep_workflow_free(r->workflow);
        *r = f->rows[--f->count];
      }
      r = NULL;
    } else if (r) {
      bool instance_changed = strcmp(r->host->instance_id, e->host->instance_id) != 0;
      ep_inv_host *host = copy_host(e->host);
      if (!host) return f->status = cli_fail(), 1;
      ep_inv_host_free(r->host);
      r->host = host;
      if (instance_changed && load_instance(f, r) < 0) return f->status = cli_fail(), 1;
    } else if (selected(f, e->host)) {
      ep_inv_host *host = copy_host(e->host);
      if (!host || !(r = add_row(f, host))) {
        ep_inv_host_free(host);
        ep_error_set(EP_ENOMEM, "out of memory");
        return f->status = cli_fail(), 1;
      }
      if (load_instance(f, r) < 0) return f->status = cli_fail(), 1;
    }
  } else if (e->resource_case == EDGEPROV__V1__EVENT__RESOURCE_INSTANCE && e->instance) {
    r = put ? row_of(f, e->instance->host_uuid) : row_of_instance(f, e->instance->id);
    if (r && (!put || strcmp(r->host->instance_id, e->instance->id) == 0) && load_instance(f, r) < 0)
      return f->status = cli_fail(), 1;
  } else if (e->resource_case == EDGEPROV__V1__EVENT__RESOURCE_WORKFLOW && e->workflow) {
    r = row_of_instance(f, e->workflow->instance_id);
    if (r && put) {
      ep_workflow *w = (ep_workflow *)copy_message(&e->workflow->base);
      if (!w) return f->status = cli_fail(), 1;
      w->revision = e->workflow->revision;
      ep_workflow_free(r->workflow);
      r->workflow = w;
    } else if (r) {
      ep_workflow_free(r->workflow);
      r->workflow = NULL;
    }
  } else {
    return 0; /* a log grew: nothing to show here */
  }
  if (r) update_rate(r);
  int status = show(f);
  if (status != EXIT_SUCCESS) return f->status = status, 1;
  int v = verdict(f);
  if (v >= 0) return f->status = v, 1;
  return 0;
}

/* Loads the hosts to watch (named, or all of the site) with their instances. *ret_revision:
 * the store's revision before they were read. */
static int load_fleet(fleet *f, char **hosts, int count, uint64_t *ret_revision) {
  char token[256] = "";
  bool first = true;
  do {
    Edgeprov__V1__ListRequest req = EDGEPROV__V1__LIST_REQUEST__INIT;
    req.page_token = token;
    Edgeprov__V1__ListHostsResponse *resp = NULL;
    if (ep_mgmt_client_call(f->client, "ListHosts", &req.base, &edgeprov__v1__list_hosts_response__descriptor,
                            (ProtobufCMessage **)&resp) < 0)
      return -1;
    if (first) *ret_revision = resp->revision;
    first = false;
    for (size_t i = 0; i < resp->n_hosts; i++) {
      ep_inv_host *h = resp->hosts[i];
      bool wanted = selected(f, h);
      for (int k = 0; !wanted && k < count; k++) wanted = strcmp(hosts[k], h->uuid) == 0;
      if (!wanted) continue;
      if (!add_row(f, h)) {
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        return ep_error_set(EP_ENOMEM, "out of memory");
      }
      resp->hosts[i] = NULL;
    }
    snprintf(token, sizeof token, "%s", resp->next_page_token);
    /* The taken hosts are NULL: protobuf-c's free skips them. */
    size_t kept = 0;
    for (size_t i = 0; i < resp->n_hosts; i++)
      if (resp->hosts[i]) resp->hosts[kept++] = resp->hosts[i];
    resp->n_hosts = kept;
    protobuf_c_message_free_unpacked(&resp->base, NULL);
  } while (token[0]);
  for (int k = 0; k < count; k++)
    if (!row_of(f, hosts[k])) return ep_error_set(EP_ENOENT, "no host with uuid %s", hosts[k]);
  for (size_t i = 0; i < f->count; i++)
    if (load_instance(f, &f->rows[i]) < 0) return -1;
  for (size_t i = 0; i < f->count; i++) update_rate(&f->rows[i]);
  return 0;
}

int ep_cli_watch(cli_call *call) {
  ep_mgmt_client *client = call->client;
  fleet f = {.client = client, .status = -1, .tty = isatty(STDOUT_FILENO) != 0, .json = cli_flag(call, 'j')};
  const char *site = cli_value(call, 's'), *until = cli_value(call, 'u');
  if (site && ep_validate_name("--site", site) < 0) return cli_fail();
  f.site = site;
  if (until) f.until = strcmp(until, "running") == 0 ? UNTIL_RUNNING : UNTIL_ONBOARDED; /* the row's choices */
  char **hosts = call->args;
  int count = call->nargs;
  for (int k = 0; k < count; k++) {
    char canonical[EP_UUID_TEXT_LEN + 1];
    if (ep_validate_uuid(canonical, "HOST_UUID", hosts[k]) < 0) return cli_fail();
    if (strcmp(canonical, hosts[k]) != 0) {
      fprintf(stderr, "edgeprov: HOST_UUID: write %s as %s\n", cli_shown(hosts[k]), canonical);
      return EXIT_USAGE;
    }
  }
  f.all = count == 0;
  uint64_t revision = 0;
  int status = load_fleet(&f, hosts, count, &revision) < 0 ? cli_fail() : show(&f);
  if (status == EXIT_SUCCESS) {
    int v = verdict(&f);
    if (v >= 0) {
      status = v;
    } else if (ep_mgmt_client_watch(client, revision, 1, on_fleet_event, &f) < 0) {
      status = cli_fail();
    } else if (f.status >= 0) {
      status = f.status;
    } else if (f.until != UNTIL_NONE) { /* edgeprovd ended the stream (it stops) before the goal */
      fprintf(stderr, "edgeprov: watch: edgeprovd ended the event stream before every node was %s\n",
              f.until == UNTIL_RUNNING ? "RUNNING" : "onboarded");
      status = EXIT_FAILURE;
    } else {
      status = EXIT_SUCCESS;
    }
  }
  for (size_t i = 0; i < f.count; i++) {
    ep_inv_host_free(f.rows[i].host);
    ep_inv_instance_free(f.rows[i].instance);
    ep_workflow_free(f.rows[i].workflow);
  }
  free(f.rows);
  return status;
}
