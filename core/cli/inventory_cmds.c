/* edgeprov CLI: the inventory commands (host, instance, events) over the management API. */
#define _GNU_SOURCE /* getopt_long */
#include "inventory_cmds.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "edgeprov/v1/management.pb-c.h"
#include "base/error.h"
#include "northbound/mgmt_client.h"
#include "provisioning/workflow.h"
#include "base/validate.h"

#define EXIT_USAGE 2
#define SHOWN_SLOTS 8 /* escaped texts one printf may show at once */

/* text for the terminal: every control character, bidi control and byte that is not UTF-8
 * made visible (\xNN, \u{NNNN}; flags: what may stay, see validate.h). Node text is checked
 * when it arrives, but records stored before that check may hold anything. The result lives
 * until SHOWN_SLOTS later calls. */
static const char *shown_flags(const char *text, unsigned flags) {
  static char *slots[SHOWN_SLOTS];
  static size_t next;
  if (!text) text = "";
  size_t cap = 4 * strlen(text) + 1; /* an escape is at most 4 bytes per byte escaped */
  char *buf = realloc(slots[next], cap);
  if (!buf) return "(out of memory)";
  slots[next] = buf;
  next = (next + 1) % SHOWN_SLOTS;
  ep_text_escape(buf, cap, text, flags);
  return buf;
}

static const char *shown(const char *text) { return shown_flags(text, 0); }

static int fail(void) {
  fprintf(stderr, "edgeprov: %s\n", shown_flags(ep_error_message(), EP_TEXT_TAB | EP_TEXT_NEWLINE));
  return EXIT_FAILURE;
}

static int usage(const char *text) {
  fprintf(stderr, "%s", text);
  return EXIT_USAGE;
}

/* ---- rendering ------------------------------------------------------------------------------ */

static void time_text(int64_t t, char *buf, size_t len) {
  if (t <= 0) {
    snprintf(buf, len, "-");
    return;
  }
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A JSON string of stored text: as it is when it is UTF-8, else with each byte that is not
 * replaced by U+FFFD (jansson refuses such text, and the record would vanish from a list).
 * NULL only when out of memory. */
static json_t *text_json(const char *text) {
  if (!text) text = "";
  size_t len = strlen(text);
  json_t *j = json_stringn(text, len);
  if (j) return j;
  char *fixed = malloc(3 * len + 1);
  if (!fixed) return NULL;
  size_t used = 0;
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    size_t n = ep_utf8_next(text + i, len - i, &cp);
    if (n) {
      memcpy(fixed + used, text + i, n);
      used += n;
      i += n;
    } else {
      memcpy(fixed + used, "\xef\xbf\xbd", 3); /* U+FFFD for the byte */
      used += 3;
      i++;
    }
  }
  j = json_stringn(fixed, used);
  free(fixed);
  return j;
}

/* The JSON builders return NULL when the value cannot be built (print_json reports it). */
static json_t *status_json(const Edgeprov__V1__Status *s) {
  if (!s) return json_null();
  char when[32];
  time_text(s->timestamp, when, sizeof when);
  return json_pack("{s:o, s:s, s:s}", "message", text_json(s->message), "indicator",
                   ep_status_indicator_name(s->indicator), "time", when);
}

static json_t *host_json(const ep_inv_host *h) {
  json_t *macs = json_array();
  for (size_t i = 0; macs && i < h->n_macs; i++)
    if (json_array_append_new(macs, text_json(h->macs[i])) < 0) {
      json_decref(macs);
      macs = NULL;
    }
  char created[32];
  time_text(h->created_at, created, sizeof created);
  return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:s, s:b, s:b, s:o, s:o, s:o, s:o, s:s, s:I}", "uuid",
                   text_json(h->uuid), "serial", text_json(h->serial), "macs", macs, "ip", text_json(h->ip), "peer_ip",
                   text_json(h->peer_ip), "site",
                   text_json(h->site), "os_profile", text_json(h->os_profile), "desired_state",
                   ep_inv_host_state_name(h->desired_state), "current_state", ep_inv_host_state_name(h->current_state),
                   "auto_onboard", h->auto_onboard, "credentials_unused", h->credentials_unused, "instance_id", text_json(h->instance_id), "host_status",
                   status_json(h->host_status), "onboarding_status", status_json(h->onboarding_status),
                   "registration_status", status_json(h->registration_status), "created_at", created, "revision",
                   (json_int_t)h->revision);
}

static json_t *instance_json(const ep_inv_instance *i) {
  char created[32];
  time_text(i->created_at, created, sizeof created);
  return json_pack("{s:o, s:o, s:o, s:s, s:s, s:o, s:s, s:I}", "id", text_json(i->id), "host_uuid",
                   text_json(i->host_uuid), "os_profile", text_json(i->os_profile), "desired_state",
                   ep_inv_instance_state_name(i->desired_state), "current_state", ep_inv_instance_state_name(i->current_state),
                   "provisioning_status", status_json(i->provisioning_status), "created_at", created, "revision",
                   (json_int_t)i->revision);
}

/* Prints value (taken over; NULL: it could not be built) as JSON, every non-ASCII character
 * and DEL as \u escapes so no raw control or bidi character reaches the terminal. A value
 * that cannot be built, encoded or written is an error on stderr, never empty output. */
static int print_json(json_t *value, size_t flags) {
  char *text = value ? json_dumps(value, flags | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER) : NULL;
  json_decref(value);
  if (!text) {
    fprintf(stderr, "edgeprov: cannot encode the answer as JSON (out of memory)\n");
    return EXIT_FAILURE;
  }
  for (const char *p = text; *p;) { /* DEL is valid in a JSON string (and only there), but not for a terminal */
    size_t n = strcspn(p, "\x7f");
    fwrite(p, 1, n, stdout);
    p += n;
    if (*p) {
      fputs("\\u007f", stdout);
      p++;
    }
  }
  free(text);
  putchar('\n');
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "edgeprov: cannot write the output: %s\n", strerror(errno));
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}

/* A record that could not go into a JSON list: the list is not printed short. */
static int not_encoded(const char *what, const char *id) {
  fprintf(stderr, "edgeprov: %s %s: cannot encode it as JSON (out of memory)\n", what, shown(id));
  return EXIT_FAILURE;
}

static const char *status_text(const Edgeprov__V1__Status *s) { return s && s->message[0] ? shown(s->message) : "-"; }

static void print_host(const ep_inv_host *h) {
  char created[32];
  time_text(h->created_at, created, sizeof created);
  printf("uuid:          %s\n", shown(h->uuid));
  printf("serial:        %s\n", h->serial[0] ? shown(h->serial) : "-");
  printf("macs:         ");
  for (size_t i = 0; i < h->n_macs; i++) printf(" %s", shown(h->macs[i]));
  printf("%s\n", h->n_macs ? "" : " -");
  printf("ip:            %s (reported by the node)\n", h->ip[0] ? shown(h->ip) : "-");
  printf("peer ip:       %s (seen by edgeprovd)\n", h->peer_ip[0] ? shown(h->peer_ip) : "-");
  printf("site:          %s\n", h->site[0] ? shown(h->site) : "-");
  printf("os profile:    %s\n", h->os_profile[0] ? shown(h->os_profile) : "-");
  printf("state:         desired %s, current %s%s\n", ep_inv_host_state_name(h->desired_state),
         ep_inv_host_state_name(h->current_state), h->auto_onboard ? " (auto-onboard)" : "");
  printf("host status:   %s [%s]\n", status_text(h->host_status),
         ep_status_indicator_name(h->host_status ? h->host_status->indicator : 0));
  printf("onboarding:    %s\n", status_text(h->onboarding_status));
  if (h->credentials_unused) printf("credentials:   handed out, not used by the node yet\n");
  printf("registration:  %s\n", status_text(h->registration_status));
  printf("instance:      %s\n", h->instance_id[0] ? shown(h->instance_id) : "-");
  printf("created:       %s (revision %" PRIu64 ")\n", created, h->revision);
}

static void print_instance(const ep_inv_instance *i) {
  printf("id:            %s\n", shown(i->id));
  printf("host:          %s\n", shown(i->host_uuid));
  printf("os profile:    %s\n", shown(i->os_profile));
  printf("state:         desired %s, current %s\n", ep_inv_instance_state_name(i->desired_state),
         ep_inv_instance_state_name(i->current_state));
  printf("provisioning:  %s\n", status_text(i->provisioning_status));
}

/* ---- lists ----------------------------------------------------------------------------------- */

/* A list command's output as its pages come: a table, or (--json) one JSON array. */
typedef struct listing {
  int json;
  json_t *all; /* --json: the records so far */
  size_t total;
} listing;

/* What a list command shows of one kind of record. */
typedef struct list_kind {
  const char *method;                         /* "ListHosts" */
  const ProtobufCMessageDescriptor *response; /* its List*Response */
  void (*header)(void);                       /* prints the table's header row */
  /* Adds page's records to l (JSON, or printed rows) and sets *ret_next to its next_page_token.
   * Returns EXIT_SUCCESS, or the exit status when a record cannot be shown. */
  int (*page)(listing *l, const ProtobufCMessage *page, const char **ret_next);
  const char *none; /* printed instead of an empty table; NULL: the header alone */
} list_kind;

/* Shows every record of kind, asking for EP_INVENTORY_PAGE_DEFAULT a page (every list the
 * same), as a table or (json) one JSON array; returns the exit status. */
static int list_all(ep_mgmt_client *client, const list_kind *kind, int json) {
  Edgeprov__V1__ListRequest req = EDGEPROV__V1__LIST_REQUEST__INIT;
  req.page_size = EP_INVENTORY_PAGE_DEFAULT;
  listing l = {.json = json, .all = json ? json_array() : NULL};
  char *token = NULL;
  bool header = !json;
  do {
    req.page_token = token ? token : "";
    ProtobufCMessage *page = NULL;
    int r = ep_mgmt_client_call(client, kind->method, &req.base, kind->response, &page);
    free(token);
    token = NULL;
    if (r < 0) {
      json_decref(l.all);
      return fail();
    }
    if (header) {
      kind->header();
      header = false;
    }
    const char *next = "";
    int status = kind->page(&l, page, &next);
    if (status == EXIT_SUCCESS && next[0]) token = strdup(next);
    protobuf_c_message_free_unpacked(page, NULL);
    if (status != EXIT_SUCCESS) {
      json_decref(l.all);
      return status;
    }
  } while (token);
  if (json) return print_json(l.all, JSON_INDENT(2));
  if (l.total == 0 && kind->none) printf("%s\n", kind->none);
  return EXIT_SUCCESS;
}

/* Calls method (DeleteHost, DeleteInstance) with request and says that what id is deleted. */
static int delete_record(ep_mgmt_client *client, const char *method, const ProtobufCMessage *request, const char *what,
                         const char *id) {
  Edgeprov__V1__DeleteResponse *resp = NULL;
  if (ep_mgmt_client_call(client, method, request, &edgeprov__v1__delete_response__descriptor,
                          (ProtobufCMessage **)&resp) < 0)
    return fail();
  printf("%s %s deleted (revision %" PRIu64 ")\n", what, id, resp->revision);
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  return EXIT_SUCCESS;
}

/* ---- host ------------------------------------------------------------------------------------ */

static const char host_usage[] =
    "Usage: edgeprov host add --uuid UUID [--serial SERIAL] [--mac MAC ...] [--ip IP] [--site SITE]\n"
    "                         [--os PROFILE] [--auto-onboard]\n"
    "       edgeprov host list [--json]\n"
    "       edgeprov host show UUID|SERIAL [--json]\n"
    "       edgeprov host approve UUID      (let the node onboard: desired ONBOARDED)\n"
    "       edgeprov host invalidate UUID   (revoke its credentials: UNTRUSTED)\n"
    "       edgeprov host delete UUID\n";

/* Calls method, whose answer is a HostResponse, and shows the host: as JSON (json), else with print. */
static int host_call(ep_mgmt_client *client, const char *method, const ProtobufCMessage *request, int json,
                     void (*print)(const ep_inv_host *)) {
  Edgeprov__V1__HostResponse *resp = NULL;
  if (ep_mgmt_client_call(client, method, request, &edgeprov__v1__host_response__descriptor,
                          (ProtobufCMessage **)&resp) < 0)
    return fail();
  int status = EXIT_SUCCESS;
  if (json)
    status = print_json(host_json(resp->host), JSON_INDENT(2));
  else
    print(resp->host);
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  return status;
}

static void print_desired(const ep_inv_host *h) {
  printf("host %s: desired %s, current %s\n", h->uuid, ep_inv_host_state_name(h->desired_state),
         ep_inv_host_state_name(h->current_state));
}

static int host_set_desired(ep_mgmt_client *client, const char *uuid, ep_inv_host_state desired) {
  Edgeprov__V1__SetDesiredStateRequest req = EDGEPROV__V1__SET_DESIRED_STATE_REQUEST__INIT;
  req.uuid = (char *)uuid;
  req.desired_state = desired;
  return host_call(client, "SetDesiredState", &req.base, 0, print_desired);
}

static void print_added(const ep_inv_host *h) {
  printf("host %s added (desired %s)\n", shown(h->uuid), ep_inv_host_state_name(h->desired_state));
}

static int host_add(ep_mgmt_client *client, int argc, char **argv) {
  static const struct option options[] = {{"uuid", required_argument, NULL, 'u'}, {"serial", required_argument, NULL, 's'},
                                          {"mac", required_argument, NULL, 'm'},  {"ip", required_argument, NULL, 'i'},
                                          {"site", required_argument, NULL, 'S'}, {"os", required_argument, NULL, 'o'},
                                          {"auto-onboard", no_argument, NULL, 'a'}, {"json", no_argument, NULL, 'j'},
                                          {NULL, 0, NULL, 0}};
  Edgeprov__V1__AddHostRequest req = EDGEPROV__V1__ADD_HOST_REQUEST__INIT;
  char *macs[EP_MACS_MAX];
  int json = 0, c;
  while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
    switch (c) {
    case 'u': req.uuid = optarg; break;
    case 's': req.serial = optarg; break;
    case 'm':
      if (req.n_macs == EP_MACS_MAX) {
        fprintf(stderr, "edgeprov: --mac: at most %d\n", EP_MACS_MAX);
        return EXIT_USAGE;
      }
      macs[req.n_macs++] = optarg;
      break;
    case 'i': req.ip = optarg; break;
    case 'S': req.site = optarg; break;
    case 'o': req.os_profile = optarg; break;
    case 'a': req.auto_onboard = 1; break;
    case 'j': json = 1; break;
    default: return usage(host_usage);
    }
  }
  if (optind != argc || !req.uuid[0]) return usage(host_usage);
  req.macs = macs;
  return host_call(client, "AddHost", &req.base, json, print_added);
}

#define HOST_ROW "%-36s  %-20s  %-10s  %-10s  %-14s  %s\n"

static void host_header(void) { printf(HOST_ROW, "UUID", "SERIAL", "DESIRED", "CURRENT", "OS", "STATUS"); }

static int host_page(listing *l, const ProtobufCMessage *m, const char **ret_next) {
  const Edgeprov__V1__ListHostsResponse *page = (const void *)m;
  for (size_t i = 0; i < page->n_hosts; i++) {
    const ep_inv_host *h = page->hosts[i];
    if (l->json && json_array_append_new(l->all, host_json(h)) < 0) return not_encoded("host", h->uuid);
    if (!l->json)
      printf(HOST_ROW, shown(h->uuid), h->serial[0] ? shown(h->serial) : "-", ep_inv_host_state_name(h->desired_state),
             ep_inv_host_state_name(h->current_state), h->os_profile[0] ? shown(h->os_profile) : "-",
             status_text(h->host_status));
  }
  l->total += page->n_hosts;
  *ret_next = page->next_page_token;
  return EXIT_SUCCESS;
}

static const list_kind hosts = {"ListHosts", &edgeprov__v1__list_hosts_response__descriptor, host_header, host_page,
                                "(no hosts; add one with: edgeprov host add --uuid UUID --serial SERIAL)"};

static int host_show(ep_mgmt_client *client, const char *which, int json) {
  Edgeprov__V1__GetHostRequest req = EDGEPROV__V1__GET_HOST_REQUEST__INIT;
  char uuid[EP_UUID_TEXT_LEN + 1];
  if (ep_validate_uuid(uuid, "uuid", which) == 0)
    req.uuid = uuid;
  else
    req.serial = (char *)which;
  return host_call(client, "GetHost", &req.base, json, print_host);
}

static int host_delete(ep_mgmt_client *client, const char *uuid) {
  Edgeprov__V1__DeleteHostRequest req = EDGEPROV__V1__DELETE_HOST_REQUEST__INIT;
  req.uuid = (char *)uuid;
  return delete_record(client, "DeleteHost", &req.base, "host", uuid);
}

static int has_json_flag(int argc, char **argv, int *rest) {
  int json = 0, n = 0;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0)
      json = 1;
    else
      argv[n++] = argv[i];
  }
  *rest = n;
  return json;
}

int ep_cli_host(ep_mgmt_client *client, int argc, char **argv) {
  if (argc < 1) return usage(host_usage);
  const char *verb = argv[0];
  if (strcmp(verb, "add") == 0) {
    optind = 1;
    return host_add(client, argc, argv);
  }
  int rest = 0;
  int json = has_json_flag(argc - 1, argv + 1, &rest);
  if (strcmp(verb, "list") == 0 && rest == 0) return list_all(client, &hosts, json);
  if (strcmp(verb, "show") == 0 && rest == 1) return host_show(client, argv[1], json);
  if (strcmp(verb, "delete") == 0 && rest == 1 && !json) return host_delete(client, argv[1]);
  if (strcmp(verb, "approve") == 0 && rest == 1 && !json)
    return host_set_desired(client, argv[1], EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED);
  if (strcmp(verb, "invalidate") == 0 && rest == 1 && !json)
    return host_set_desired(client, argv[1], EDGEPROV__V1__HOST_STATE__HOST_STATE_UNTRUSTED);
  return usage(host_usage);
}

/* ---- instance --------------------------------------------------------------------------------- */

static const char instance_usage[] =
    "Usage: edgeprov instance create HOST_UUID [--os PROFILE] [--json]\n"
    "       edgeprov instance list [--json]\n"
    "       edgeprov instance show ID [--json]      (the instance and its workflow's actions)\n"
    "       edgeprov instance render (--os PROFILE | --host UUID | both) [--json]\n"
    "                                    (dry run: the workflow a node would get, secrets masked)\n"
    "       edgeprov instance delete ID\n"
    "       edgeprov instance retry ID      (re-arm a failed instance: its workflow starts again)\n";

/* One action of a workflow as JSON; with_params adds its parameters. */
static json_t *action_json(const Edgeprov__V1__WorkflowAction *a, bool with_params) {
  json_t *o = json_pack("{s:o, s:i, s:i, s:s, s:i, s:I, s:I, s:o}", "action", text_json(a->action), "timeout_s",
                        (int)a->timeout_s, "retries", (int)a->retries, "state", ep_action_state_name(a->state),
                        "attempts", (int)a->attempts, "bytes_done", (json_int_t)a->bytes_done, "bytes_total",
                        (json_int_t)a->bytes_total, "message", text_json(a->message));
  if (!o || !with_params) return o;
  json_t *params = json_object();
  for (size_t k = 0; params && k < a->n_params; k++)
    if (json_object_set_new(params, a->params[k]->name, text_json(a->params[k]->value)) < 0) {
      json_decref(params);
      params = NULL;
    }
  if (!params || json_object_set_new(o, "params", params) < 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}

static json_t *workflow_json(const ep_workflow *w, bool with_params) {
  if (!w) return json_null();
  json_t *actions = json_array();
  for (size_t i = 0; actions && i < w->n_actions; i++)
    if (json_array_append_new(actions, action_json(w->actions[i], with_params)) < 0) {
      json_decref(actions);
      actions = NULL;
    }
  char created[32];
  time_text(w->created_at, created, sizeof created);
  return json_pack("{s:o, s:o, s:i, s:s, s:s, s:o}", "os_profile", text_json(w->os_profile), "host_uuid",
                   text_json(w->host_uuid), "generation", (int)w->generation, "state",
                   w->state == EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_SUCCESS   ? "SUCCESS"
                   : w->state == EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_FAILED  ? "FAILED"
                   : w->state == EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_RUNNING ? "RUNNING"
                                                                                        : "PENDING",
                   "created_at", created, "actions", actions);
}

static int instance_show(ep_mgmt_client *client, const char *id, int json) {
  Edgeprov__V1__GetInstanceRequest req = EDGEPROV__V1__GET_INSTANCE_REQUEST__INIT;
  req.id = (char *)id;
  Edgeprov__V1__InstanceDetail *resp = NULL;
  if (ep_mgmt_client_call(client, "GetInstance", &req.base, &edgeprov__v1__instance_detail__descriptor,
                          (ProtobufCMessage **)&resp) < 0)
    return fail();
  int status = EXIT_SUCCESS;
  const ep_workflow *w = resp->workflow;
  if (json) {
    json_t *o = instance_json(resp->instance);
    if (o && json_object_set_new(o, "workflow", workflow_json(w, false)) < 0) {
      json_decref(o);
      o = NULL;
    }
    status = print_json(o, JSON_INDENT(2));
  } else {
    print_instance(resp->instance);
    if (!w) {
      printf("workflow:      not rendered yet\n");
    } else {
      printf("workflow:      generation %u, %zu actions\n", w->generation, w->n_actions);
      printf("  %-3s %-22s %-8s %-8s %-23s %s\n", "#", "ACTION", "STATE", "ATTEMPTS", "BYTES", "MESSAGE");
      for (size_t i = 0; i < w->n_actions; i++) {
        const Edgeprov__V1__WorkflowAction *a = w->actions[i];
        char bytes[48] = "-";
        if (a->bytes_total || a->bytes_done)
          snprintf(bytes, sizeof bytes, "%" PRIu64 "/%" PRIu64, a->bytes_done, a->bytes_total);
        printf("  %-3zu %-22s %-8s %-8u %-23s %s\n", i + 1, shown(a->action), ep_action_state_name(a->state), a->attempts,
               bytes, a->message[0] ? shown(a->message) : "-");
      }
    }
  }
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  return status;
}

/* Prints a parameter's value: on its line when it is one line, else indented under it. */
static void print_param(const Edgeprov__V1__ActionParam *p) {
  if (!strchr(p->value, '\n')) {
    printf("       %s = %s\n", shown(p->name), shown(p->value));
    return;
  }
  printf("       %s = (%zu bytes)\n", shown(p->name), strlen(p->value));
  for (const char *line = p->value; *line;) {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    char *copy = strndup(line, len);
    printf("         | %s\n", copy ? shown(copy) : "(out of memory)");
    free(copy);
    line += len + (end ? 1 : 0);
  }
}

static int instance_render(ep_mgmt_client *client, int argc, char **argv) {
  Edgeprov__V1__RenderWorkflowRequest req = EDGEPROV__V1__RENDER_WORKFLOW_REQUEST__INIT;
  static const struct option options[] = {
      {"os", required_argument, NULL, 'o'}, {"host", required_argument, NULL, 'H'}, {"json", no_argument, NULL, 'j'},
      {"help", no_argument, NULL, 'h'},     {NULL, 0, NULL, 0}};
  int json = 0, c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
    if (c == 'o') req.os_profile = optarg;
    else if (c == 'H') req.host_uuid = optarg;
    else if (c == 'j') json = 1;
    else if (c == 'h') return printf("%s", instance_usage), EXIT_SUCCESS;
    else return usage(instance_usage);
  }
  if (optind != argc || (!req.os_profile[0] && !req.host_uuid[0])) return usage(instance_usage);
  Edgeprov__V1__RenderWorkflowResponse *resp = NULL;
  if (ep_mgmt_client_call(client, "RenderWorkflow", &req.base, &edgeprov__v1__render_workflow_response__descriptor,
                          (ProtobufCMessage **)&resp) < 0)
    return fail();
  const ep_workflow *w = resp->workflow;
  int status = EXIT_SUCCESS;
  if (json) {
    json_t *o = workflow_json(w, true);
    if (o && json_object_set_new(o, "masked", json_integer(resp->masked)) < 0) {
      json_decref(o);
      o = NULL;
    }
    status = print_json(o, JSON_INDENT(2));
  } else if (w) {
    printf("profile %s for host %s%s: %zu actions (dry run: nothing stored, no node told; %u secret%s masked)\n",
           shown(w->os_profile), shown(w->host_uuid), req.host_uuid[0] ? "" : " (a sample host)", w->n_actions,
           resp->masked, resp->masked == 1 ? "" : "s");
    for (size_t i = 0; i < w->n_actions; i++) {
      const Edgeprov__V1__WorkflowAction *a = w->actions[i];
      printf("  %2zu. %s (timeout %us, retries %u)\n", i + 1, shown(a->action), a->timeout_s, a->retries);
      for (size_t k = 0; k < a->n_params; k++) print_param(a->params[k]);
    }
  }
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  return status;
}

static int instance_create(ep_mgmt_client *client, int argc, char **argv) {
  Edgeprov__V1__CreateInstanceRequest req = EDGEPROV__V1__CREATE_INSTANCE_REQUEST__INIT;
  int json = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--os") == 0 && i + 1 < argc)
      req.os_profile = argv[++i];
    else if (strcmp(argv[i], "--json") == 0)
      json = 1;
    else if (argv[i][0] != '-' && !req.host_uuid[0])
      req.host_uuid = argv[i];
    else
      return usage(instance_usage);
  }
  if (!req.host_uuid[0]) return usage(instance_usage);
  Edgeprov__V1__InstanceResponse *resp = NULL;
  if (ep_mgmt_client_call(client, "CreateInstance", &req.base, &edgeprov__v1__instance_response__descriptor,
                          (ProtobufCMessage **)&resp) < 0)
    return fail();
  int status = EXIT_SUCCESS;
  if (json) {
    status = print_json(instance_json(resp->instance), JSON_INDENT(2));
  } else {
    printf("instance %s created for host %s\n", shown(resp->instance->id), shown(resp->instance->host_uuid));
    print_instance(resp->instance);
  }
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  return status;
}

#define INSTANCE_ROW "%-36s  %-36s  %-14s  %-12s  %s\n"

static void instance_header(void) { printf(INSTANCE_ROW, "ID", "HOST", "OS", "CURRENT", "PROVISIONING"); }

static int instance_page(listing *l, const ProtobufCMessage *m, const char **ret_next) {
  const Edgeprov__V1__ListInstancesResponse *page = (const void *)m;
  for (size_t i = 0; i < page->n_instances; i++) {
    const ep_inv_instance *in = page->instances[i];
    if (l->json && json_array_append_new(l->all, instance_json(in)) < 0) return not_encoded("instance", in->id);
    if (!l->json)
      printf(INSTANCE_ROW, shown(in->id), shown(in->host_uuid), shown(in->os_profile),
             ep_inv_instance_state_name(in->current_state), status_text(in->provisioning_status));
  }
  l->total += page->n_instances;
  *ret_next = page->next_page_token;
  return EXIT_SUCCESS;
}

static const list_kind instances = {"ListInstances", &edgeprov__v1__list_instances_response__descriptor,
                                    instance_header, instance_page, NULL};

static int instance_delete(ep_mgmt_client *client, const char *id) {
  Edgeprov__V1__DeleteInstanceRequest req = EDGEPROV__V1__DELETE_INSTANCE_REQUEST__INIT;
  req.id = (char *)id;
  return delete_record(client, "DeleteInstance", &req.base, "instance", id);
}

static int instance_retry(ep_mgmt_client *client, const char *id) {
  Edgeprov__V1__RetryInstanceRequest req = EDGEPROV__V1__RETRY_INSTANCE_REQUEST__INIT;
  req.id = (char *)id;
  Edgeprov__V1__InstanceResponse *resp = NULL;
  if (ep_mgmt_client_call(client, "RetryInstance", &req.base, &edgeprov__v1__instance_response__descriptor,
                          (ProtobufCMessage **)&resp) < 0)
    return fail();
  printf("instance %s re-armed: %s\n", id, status_text(resp->instance->provisioning_status));
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  return EXIT_SUCCESS;
}

int ep_cli_instance(ep_mgmt_client *client, int argc, char **argv) {
  if (argc < 1) return usage(instance_usage);
  if (strcmp(argv[0], "create") == 0) return instance_create(client, argc, argv);
  if (strcmp(argv[0], "render") == 0) return instance_render(client, argc, argv);
  int rest = 0;
  int json = has_json_flag(argc - 1, argv + 1, &rest);
  if (strcmp(argv[0], "list") == 0 && rest == 0) return list_all(client, &instances, json);
  if (strcmp(argv[0], "show") == 0 && rest == 1) return instance_show(client, argv[1], json);
  if (strcmp(argv[0], "delete") == 0 && rest == 1 && !json) return instance_delete(client, argv[1]);
  if (strcmp(argv[0], "retry") == 0 && rest == 1 && !json) return instance_retry(client, argv[1]);
  return usage(instance_usage);
}

/* ---- events ----------------------------------------------------------------------------------- */

static const char events_usage[] = "Usage: edgeprov events [--follow] [--after REVISION] [--json]\n";

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
      resource = put ? host_json(e->host) : json_pack("{s:o}", "uuid", text_json(e->host->uuid));
    } else if (e->resource_case == EDGEPROV__V1__EVENT__RESOURCE_INSTANCE) {
      key = "instance";
      resource = put ? instance_json(e->instance) : json_pack("{s:o}", "id", text_json(e->instance->id));
    }
    if (key && (!o || json_object_set_new(o, key, resource) < 0)) { /* set_new takes resource even when it fails */
      if (!o) json_decref(resource);
      json_decref(o);
      o = NULL;
    }
    if (print_json(o, JSON_COMPACT) != EXIT_SUCCESS) {
      p->failed = 1;
      return 1;
    }
  } else if (e->resource_case == EDGEPROV__V1__EVENT__RESOURCE_HOST) {
    if (put)
      printf("%" PRIu64 " host %s put: desired %s, current %s, %s\n", e->revision, shown(e->host->uuid),
             ep_inv_host_state_name(e->host->desired_state), ep_inv_host_state_name(e->host->current_state),
             status_text(e->host->host_status));
    else
      printf("%" PRIu64 " host %s deleted\n", e->revision, shown(e->host->uuid));
  } else if (e->resource_case == EDGEPROV__V1__EVENT__RESOURCE_INSTANCE) {
    if (put)
      printf("%" PRIu64 " instance %s put: host %s, %s, %s\n", e->revision, shown(e->instance->id),
             shown(e->instance->host_uuid), ep_inv_instance_state_name(e->instance->current_state),
             status_text(e->instance->provisioning_status));
    else
      printf("%" PRIu64 " instance %s deleted\n", e->revision, shown(e->instance->id));
  }
  fflush(stdout);
  return 0;
}

int ep_cli_events(ep_mgmt_client *client, int argc, char **argv) {
  int follow = 0;
  uint64_t after = 0;
  event_printer printer = {0};
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--follow") == 0 || strcmp(argv[i], "-f") == 0) {
      follow = 1;
    } else if (strcmp(argv[i], "--json") == 0) {
      printer.json = 1;
    } else if (strcmp(argv[i], "--after") == 0 && i + 1 < argc) {
      char *end = NULL;
      after = strtoull(argv[++i], &end, 10);
      if (!end || *end) return usage(events_usage);
    } else {
      return usage(events_usage);
    }
  }
  if (ep_mgmt_client_watch(client, after, follow, print_event, &printer) < 0) return fail();
  return printer.failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
