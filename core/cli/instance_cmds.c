/* edgeprov CLI: the instance commands (create, list, show, render, retry, delete) over the management API. */
#define _GNU_SOURCE /* strndup */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "cli.h"
#include "edgeprov/v1/management.pb-c.h"
#include "northbound/mgmt_client.h"
#include "provisioning/workflow.h"

static void print_instance(const ep_inv_instance *i) {
  printf("id:            %s\n", cli_shown(i->id));
  printf("host:          %s\n", cli_shown(i->host_uuid));
  printf("os profile:    %s\n", cli_shown(i->os_profile));
  printf("fde:           %s\n", i->fde ? "yes (asked by the instance)" : "no (unless its host or OS profile asks)");
  printf("state:         desired %s, current %s\n", ep_inv_instance_state_name(i->desired_state),
         ep_inv_instance_state_name(i->current_state));
  printf("provisioning:  %s\n", cli_status_text(i->provisioning_status));
}

int ep_cli_instance_show(cli_call *call) {
  ep_mgmt_client *client = call->client;
  bool json = cli_flag(call, 'j');
  Edgeprov__V1__GetInstanceRequest req = EDGEPROV__V1__GET_INSTANCE_REQUEST__INIT;
  req.id = call->args[0];
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

int ep_cli_instance_render(cli_call *call) {
  ep_mgmt_client *client = call->client;
  bool json = cli_flag(call, 'j');
  Edgeprov__V1__RenderWorkflowRequest req = EDGEPROV__V1__RENDER_WORKFLOW_REQUEST__INIT;
  if (cli_value(call, 'o')) req.os_profile = (char *)cli_value(call, 'o');
  if (cli_value(call, 'H')) req.host_uuid = (char *)cli_value(call, 'H');
  req.fde = cli_flag(call, 'F');
  if (!req.os_profile[0] && !req.host_uuid[0]) return cli_usage_error(call, "needs --os PROFILE, --host UUID or both");
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

int ep_cli_instance_create(cli_call *call) {
  ep_mgmt_client *client = call->client;
  bool json = cli_flag(call, 'j');
  Edgeprov__V1__CreateInstanceRequest req = EDGEPROV__V1__CREATE_INSTANCE_REQUEST__INIT;
  req.host_uuid = call->args[0];
  if (cli_value(call, 'o')) req.os_profile = (char *)cli_value(call, 'o');
  req.fde = cli_flag(call, 'F');
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
             ep_inv_instance_state_name(in->current_state), cli_status_text(in->provisioning_status));
  }
  l->total += page->n_instances;
  *ret_next = page->next_page_token;
  return EXIT_SUCCESS;
}

static const list_kind instances = {"ListInstances", &edgeprov__v1__list_instances_response__descriptor,
                                    instance_header, instance_page, NULL};

int ep_cli_instance_list(cli_call *call) { return cli_list_all(call->client, &instances, cli_flag(call, 'j')); }

int ep_cli_instance_delete(cli_call *call) {
  Edgeprov__V1__DeleteInstanceRequest req = EDGEPROV__V1__DELETE_INSTANCE_REQUEST__INIT;
  req.id = call->args[0];
  return cli_delete_record(call->client, "DeleteInstance", &req.base, "instance", req.id);
}

int ep_cli_instance_retry(cli_call *call) {
  const char *id = call->args[0];
  Edgeprov__V1__RetryInstanceRequest req = EDGEPROV__V1__RETRY_INSTANCE_REQUEST__INIT;
  req.id = call->args[0];
  Edgeprov__V1__InstanceResponse *resp = NULL;
  if (ep_mgmt_client_call(call->client, "RetryInstance", &req.base, &edgeprov__v1__instance_response__descriptor,
                          (ProtobufCMessage **)&resp) < 0)
    return cli_fail();
  int status = EXIT_SUCCESS;
  if (cli_flag(call, 'j'))
    status = cli_print_json(cli_instance_json(resp->instance), JSON_INDENT(2));
  else
    printf("instance %s re-armed: %s\n", id, cli_status_text(resp->instance->provisioning_status));
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  return status;
}
