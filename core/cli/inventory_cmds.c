/* edgeprov CLI: the inventory commands (host, instance, events) over the management API. */
#define _GNU_SOURCE /* getopt_long */
#include "inventory_cmds.h"

#include "cli_output.h"
#include "fleet_cmds.h"

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
#include "base/tpm_credential.h"


static const char *status_text(const Edgeprov__V1__Status *s) { return s && s->message[0] ? cli_shown(s->message) : "-"; }

static void print_host(const ep_inv_host *h) {
  char created[32];
  cli_time_text(h->created_at, created, sizeof created);
  printf("uuid:          %s\n", cli_shown(h->uuid));
  printf("serial:        %s\n", h->serial[0] ? cli_shown(h->serial) : "-");
  printf("macs:         ");
  for (size_t i = 0; i < h->n_macs; i++) printf(" %s", cli_shown(h->macs[i]));
  printf("%s\n", h->n_macs ? "" : " -");
  printf("ip:            %s (reported by the node)\n", h->ip[0] ? cli_shown(h->ip) : "-");
  printf("peer ip:       %s (seen by edgeprovd)\n", h->peer_ip[0] ? cli_shown(h->peer_ip) : "-");
  printf("site:          %s\n", h->site[0] ? cli_shown(h->site) : "-");
  printf("os profile:    %s\n", h->os_profile[0] ? cli_shown(h->os_profile) : "-");
  printf("state:         desired %s, current %s%s\n", ep_inv_host_state_name(h->desired_state),
         ep_inv_host_state_name(h->current_state), h->auto_onboard ? " (auto-onboard)" : "");
  printf("host status:   %s [%s]\n", status_text(h->host_status),
         ep_status_indicator_name(h->host_status ? h->host_status->indicator : 0));
  printf("onboarding:    %s\n", status_text(h->onboarding_status));
  if (h->credentials_unused) printf("credentials:   handed out, not used by the node yet\n");
  printf("registration:  %s\n", status_text(h->registration_status));
  char ek[EP_TPM_FINGERPRINT_LEN + 1] = "-";
  if (h->tpm_ek.len) ep_tpm_ek_fingerprint(ek, h->tpm_ek.data, h->tpm_ek.len);
  printf("tpm ek:        %s%s\n", ek, !h->tpm_ek.len ? "" : h->tpm_ek_first_use ? " (recorded on first use)" : " (registered)");
  printf("instance:      %s\n", h->instance_id[0] ? cli_shown(h->instance_id) : "-");
  printf("created:       %s (revision %" PRIu64 ")\n", created, h->revision);
}

static void print_instance(const ep_inv_instance *i) {
  printf("id:            %s\n", cli_shown(i->id));
  printf("host:          %s\n", cli_shown(i->host_uuid));
  printf("os profile:    %s\n", cli_shown(i->os_profile));
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
      return cli_fail();
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
  if (json) return cli_print_json(l.all, JSON_INDENT(2));
  if (l.total == 0 && kind->none) printf("%s\n", kind->none);
  return EXIT_SUCCESS;
}

/* Calls method (DeleteHost, DeleteInstance) with request and says that what id is deleted. */
static int delete_record(ep_mgmt_client *client, const char *method, const ProtobufCMessage *request, const char *what,
                         const char *id) {
  Edgeprov__V1__DeleteResponse *resp = NULL;
  if (ep_mgmt_client_call(client, method, request, &edgeprov__v1__delete_response__descriptor,
                          (ProtobufCMessage **)&resp) < 0)
    return cli_fail();
  printf("%s %s deleted (revision %" PRIu64 ")\n", what, id, resp->revision);
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  return EXIT_SUCCESS;
}

/* ---- host ------------------------------------------------------------------------------------ */

static const char host_usage[] =
    "Usage: edgeprov host add --uuid UUID [--serial SERIAL] [--mac MAC ...] [--ip IP] [--site SITE]\n"
    "                         [--os PROFILE] [--auto-onboard] [--ek FILE]\n"
    "                         (--ek: the node's TPM endorsement key, a PEM public key as\n"
    "                         tpm2_createek -f pem writes it or its EK certificate; the node\n"
    "                         must then prove it holds that TPM to onboard)\n"
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
    return cli_fail();
  int status = EXIT_SUCCESS;
  if (json)
    status = cli_print_json(cli_host_json(resp->host), JSON_INDENT(2));
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
  printf("host %s added (desired %s)\n", cli_shown(h->uuid), ep_inv_host_state_name(h->desired_state));
}

static int host_add(ep_mgmt_client *client, int argc, char **argv) {
  static const struct option options[] = {{"uuid", required_argument, NULL, 'u'}, {"serial", required_argument, NULL, 's'},
                                          {"mac", required_argument, NULL, 'm'},  {"ip", required_argument, NULL, 'i'},
                                          {"site", required_argument, NULL, 'S'}, {"os", required_argument, NULL, 'o'},
                                          {"auto-onboard", no_argument, NULL, 'a'}, {"json", no_argument, NULL, 'j'},
                                          {"ek", required_argument, NULL, 'e'},   {NULL, 0, NULL, 0}};
  Edgeprov__V1__AddHostRequest req = EDGEPROV__V1__ADD_HOST_REQUEST__INIT;
  ep_tpm_ek ek;
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
    case 'e': /* sent as its DER public key, whatever form the file has */
      if (ep_tpm_ek_from_file(&ek, optarg) < 0) {
        fprintf(stderr, "edgeprov: --ek: %s\n", ep_error_message());
        return EXIT_USAGE;
      }
      req.tpm_ek = (ProtobufCBinaryData){ek.der_len, ek.der};
      break;
    default: return cli_usage(host_usage);
    }
  }
  if (optind != argc || !req.uuid[0]) return cli_usage(host_usage);
  req.macs = macs;
  return host_call(client, "AddHost", &req.base, json, print_added);
}

#define HOST_ROW "%-36s  %-20s  %-10s  %-10s  %-14s  %s\n"

static void host_header(void) { printf(HOST_ROW, "UUID", "SERIAL", "DESIRED", "CURRENT", "OS", "STATUS"); }

static int host_page(listing *l, const ProtobufCMessage *m, const char **ret_next) {
  const Edgeprov__V1__ListHostsResponse *page = (const void *)m;
  for (size_t i = 0; i < page->n_hosts; i++) {
    const ep_inv_host *h = page->hosts[i];
    if (l->json && json_array_append_new(l->all, cli_host_json(h)) < 0) return cli_not_encoded("host", h->uuid);
    if (!l->json)
      printf(HOST_ROW, cli_shown(h->uuid), h->serial[0] ? cli_shown(h->serial) : "-", ep_inv_host_state_name(h->desired_state),
             ep_inv_host_state_name(h->current_state), h->os_profile[0] ? cli_shown(h->os_profile) : "-",
             status_text(h->host_status));
  }
  l->total += page->n_hosts;
  *ret_next = page->next_page_token;
  return EXIT_SUCCESS;
}

static const list_kind hosts = {"ListHosts", &edgeprov__v1__list_hosts_response__descriptor, host_header, host_page,
                                "(no hosts; add one with: edgeprov host add --uuid UUID --serial SERIAL)"};

/* The host, and its timeline (with its instance and workflow when it has one). */
static int host_show(ep_mgmt_client *client, const char *which, int json) {
  Edgeprov__V1__GetHostRequest req = EDGEPROV__V1__GET_HOST_REQUEST__INIT;
  char uuid[EP_UUID_TEXT_LEN + 1];
  if (ep_validate_uuid(uuid, "uuid", which) == 0)
    req.uuid = uuid;
  else
    req.serial = (char *)which;
  Edgeprov__V1__HostResponse *resp = NULL;
  if (ep_mgmt_client_call(client, "GetHost", &req.base, &edgeprov__v1__host_response__descriptor,
                          (ProtobufCMessage **)&resp) < 0)
    return cli_fail();
  const ep_inv_host *h = resp->host;
  Edgeprov__V1__InstanceDetail *detail = NULL;
  if (h->instance_id[0] && cli_get_instance(client, h->instance_id, &detail) < 0 && ep_error_code() != EP_ENOENT) {
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return cli_fail();
  }
  const ep_inv_instance *instance = detail ? detail->instance : NULL;
  const ep_workflow *workflow = detail ? detail->workflow : NULL;
  int status = EXIT_SUCCESS;
  if (json) {
    json_t *o = cli_host_json(h);
    if (o && json_object_set_new(o, "timeline", cli_timeline_json(h, instance, workflow)) < 0) {
      json_decref(o);
      o = NULL;
    }
    status = cli_print_json(o, JSON_INDENT(2));
  } else {
    print_host(h);
    cli_print_timeline(h, instance, workflow);
  }
  if (detail) protobuf_c_message_free_unpacked(&detail->base, NULL);
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  return status;
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
  if (argc < 1) return cli_usage(host_usage);
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
  return cli_usage(host_usage);
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

static int instance_show(ep_mgmt_client *client, const char *id, int json) {
  Edgeprov__V1__GetInstanceRequest req = EDGEPROV__V1__GET_INSTANCE_REQUEST__INIT;
  req.id = (char *)id;
  Edgeprov__V1__InstanceDetail *resp = NULL;
  if (ep_mgmt_client_call(client, "GetInstance", &req.base, &edgeprov__v1__instance_detail__descriptor,
                          (ProtobufCMessage **)&resp) < 0)
    return cli_fail();
  int status = EXIT_SUCCESS;
  const ep_workflow *w = resp->workflow;
  if (json) {
    json_t *o = cli_instance_json(resp->instance);
    if (o && json_object_set_new(o, "workflow", cli_workflow_json(w, false)) < 0) {
      json_decref(o);
      o = NULL;
    }
    status = cli_print_json(o, JSON_INDENT(2));
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
        printf("  %-3zu %-22s %-8s %-8u %-23s %s\n", i + 1, cli_shown(a->action), ep_action_state_name(a->state), a->attempts,
               bytes, a->message[0] ? cli_shown(a->message) : "-");
      }
    }
  }
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  return status;
}

/* Prints a parameter's value: on its line when it is one line, else indented under it. */
static void print_param(const Edgeprov__V1__ActionParam *p) {
  if (!strchr(p->value, '\n')) {
    printf("       %s = %s\n", cli_shown(p->name), cli_shown(p->value));
    return;
  }
  printf("       %s = (%zu bytes)\n", cli_shown(p->name), strlen(p->value));
  for (const char *line = p->value; *line;) {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    char *copy = strndup(line, len);
    printf("         | %s\n", copy ? cli_shown(copy) : "(out of memory)");
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
    else return cli_usage(instance_usage);
  }
  if (optind != argc || (!req.os_profile[0] && !req.host_uuid[0])) return cli_usage(instance_usage);
  Edgeprov__V1__RenderWorkflowResponse *resp = NULL;
  if (ep_mgmt_client_call(client, "RenderWorkflow", &req.base, &edgeprov__v1__render_workflow_response__descriptor,
                          (ProtobufCMessage **)&resp) < 0)
    return cli_fail();
  const ep_workflow *w = resp->workflow;
  int status = EXIT_SUCCESS;
  if (json) {
    json_t *o = cli_workflow_json(w, true);
    if (o && json_object_set_new(o, "masked", json_integer(resp->masked)) < 0) {
      json_decref(o);
      o = NULL;
    }
    status = cli_print_json(o, JSON_INDENT(2));
  } else if (w) {
    printf("profile %s for host %s%s: %zu actions (dry run: nothing stored, no node told; %u secret%s masked)\n",
           cli_shown(w->os_profile), cli_shown(w->host_uuid), req.host_uuid[0] ? "" : " (a sample host)", w->n_actions,
           resp->masked, resp->masked == 1 ? "" : "s");
    for (size_t i = 0; i < w->n_actions; i++) {
      const Edgeprov__V1__WorkflowAction *a = w->actions[i];
      printf("  %2zu. %s (timeout %us, retries %u)\n", i + 1, cli_shown(a->action), a->timeout_s, a->retries);
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
      return cli_usage(instance_usage);
  }
  if (!req.host_uuid[0]) return cli_usage(instance_usage);
  Edgeprov__V1__InstanceResponse *resp = NULL;
  if (ep_mgmt_client_call(client, "CreateInstance", &req.base, &edgeprov__v1__instance_response__descriptor,
                          (ProtobufCMessage **)&resp) < 0)
    return cli_fail();
  int status = EXIT_SUCCESS;
  if (json) {
    status = cli_print_json(cli_instance_json(resp->instance), JSON_INDENT(2));
  } else {
    printf("instance %s created for host %s\n", cli_shown(resp->instance->id), cli_shown(resp->instance->host_uuid));
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
    if (l->json && json_array_append_new(l->all, cli_instance_json(in)) < 0) return cli_not_encoded("instance", in->id);
    if (!l->json)
      printf(INSTANCE_ROW, cli_shown(in->id), cli_shown(in->host_uuid), cli_shown(in->os_profile),
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
    return cli_fail();
  printf("instance %s re-armed: %s\n", id, status_text(resp->instance->provisioning_status));
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  return EXIT_SUCCESS;
}

int ep_cli_instance(ep_mgmt_client *client, int argc, char **argv) {
  if (argc < 1) return cli_usage(instance_usage);
  if (strcmp(argv[0], "create") == 0) return instance_create(client, argc, argv);
  if (strcmp(argv[0], "render") == 0) return instance_render(client, argc, argv);
  int rest = 0;
  int json = has_json_flag(argc - 1, argv + 1, &rest);
  if (strcmp(argv[0], "list") == 0 && rest == 0) return list_all(client, &instances, json);
  if (strcmp(argv[0], "show") == 0 && rest == 1) return instance_show(client, argv[1], json);
  if (strcmp(argv[0], "delete") == 0 && rest == 1 && !json) return instance_delete(client, argv[1]);
  if (strcmp(argv[0], "retry") == 0 && rest == 1 && !json) return instance_retry(client, argv[1]);
  return cli_usage(instance_usage);
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
             status_text(e->host->host_status));
    else
      printf("%" PRIu64 " host %s deleted\n", e->revision, cli_shown(e->host->uuid));
  } else if (e->resource_case == EDGEPROV__V1__EVENT__RESOURCE_INSTANCE) {
    if (put)
      printf("%" PRIu64 " instance %s put: host %s, %s, %s\n", e->revision, cli_shown(e->instance->id),
             cli_shown(e->instance->host_uuid), ep_inv_instance_state_name(e->instance->current_state),
             status_text(e->instance->provisioning_status));
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
      if (!end || *end) return cli_usage(events_usage);
    } else {
      return cli_usage(events_usage);
    }
  }
  if (ep_mgmt_client_watch(client, after, follow, print_event, &printer) < 0) return cli_fail();
  return printer.failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
