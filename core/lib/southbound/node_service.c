/* core: the southbound node API, see node_service.h. */
#include "southbound/node_service.h"

#include <stdbool.h>
#include <stdlib.h>

#include "edgeprov/v1/node.pb-c.h"
#include "base/error.h"
#include "base/log.h"
#include "southbound/node_auth.h"
#include "runtime/plugin_loader.h"
#include "base/ratelimit.h"
#include "base/validate.h"

struct ep_node_service {
  ep_inventory *inv;
  const struct ep_plugin_set *plugins;
  ep_node_budget budget; /* ReportStatus calls */
};

/* The installed OS is up: the host's Instance is RUNNING (its workflow must have succeeded). */
static int report_running(ep_node_service *ns, const ep_inv_host *host, const char *status) {
  if (!host->instance_id[0]) return ep_error_set(EP_EPERM, "host %s has no instance to be running", host->uuid);
  ep_workflow *w = NULL;
  int r = ep_inventory_get_workflow(ns->inv, host->instance_id, &w);
  if (r == 0 && w->state != EDGEPROV__V1__WORKFLOW_STATE__WORKFLOW_STATE_SUCCESS)
    r = ep_error_set(EP_EPERM, "instance %s: its workflow has not succeeded; the installed OS cannot be running yet",
                     host->instance_id);
  ep_workflow_free(w);
  ep_inv_instance *instance = NULL; /* to log the change only: a node may repeat its report */
  bool was_running = r == 0 && ep_inventory_get_instance(ns->inv, host->instance_id, &instance) == 0 &&
                     instance->current_state == EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_RUNNING;
  ep_inv_instance_free(instance);
  if (r == 0)
    r = ep_inventory_set_instance_state(ns->inv, host->instance_id, EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_RUNNING,
                                        status, EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IDLE, NULL);
  if (r == 0 && !was_running) ep_log(EP_LOG_INFO, "node-api", "host %s: instance %s RUNNING", host->uuid, host->instance_id);
  return r;
}

/* What protects the installed disk, as the installed OS found it: checked, then kept on the
 * host (only a change is written). */
static int record_protection(ep_node_service *ns, const char *uuid, const Edgeprov__V1__DiskProtection *p) {
  const int known[] = {EDGEPROV__V1__PROTECTION__PROTECTION_UNREPORTED, EDGEPROV__V1__PROTECTION__PROTECTION_NO,
                       EDGEPROV__V1__PROTECTION__PROTECTION_YES};
  bool encrypted_ok = false, verified_ok = false;
  for (size_t i = 0; i < 3; i++) {
    encrypted_ok |= (int)p->encrypted == known[i];
    verified_ok |= (int)p->verified_root == known[i];
  }
  if (!encrypted_ok) return ep_error_set(EP_EINVAL, "disk_protection.encrypted: %d is not a Protection value", (int)p->encrypted);
  if (!verified_ok)
    return ep_error_set(EP_EINVAL, "disk_protection.verified_root: %d is not a Protection value", (int)p->verified_root);
  if (p->detail[0] && ep_validate_text("disk_protection.detail", p->detail, EP_DISK_PROTECTION_DETAIL_MAX) < 0)
    return EP_EINVAL;
  return ep_inventory_set_disk_protection(ns->inv, uuid, p->encrypted, p->verified_root, p->detail);
}

static void handle_report_status(void *data, ep_rpc_call *call, const uint8_t *request, size_t len) {
  ep_node_service *ns = data;
  char node_id[EP_IDENTITY_NODE_ID_MAX + 1];
  if (ep_node_auth_or_refuse(ns->plugins, call, "node-api", node_id) < 0) return;
  if (ep_node_budget_take(&ns->budget, node_id) < 0) {
    if (ep_ratelimit_take(ns->budget.warned, node_id, NULL))
      ep_log(EP_LOG_WARN, "node-api", "host %s: %s (further refusals for a minute are not logged)", node_id,
             ep_error_message());
    ep_rpc_call_finish(call, EP_STATUS_RESOURCE_EXHAUSTED, ep_error_message(), NULL, 0);
    return;
  }
  Edgeprov__V1__ReportStatusRequest *req = edgeprov__v1__report_status_request__unpack(NULL, len, request);
  if (!req) {
    ep_rpc_call_finish(call, EP_STATUS_INVALID_ARGUMENT, "request is not a valid ReportStatusRequest", NULL, 0);
    return;
  }
  ep_inv_host *host = NULL;
  bool installed = req->phase == EDGEPROV__V1__NODE_PHASE__NODE_PHASE_INSTALLED_OS;
  int r = ep_validate_text("status", req->status, EP_NODE_STATUS_MAX);
  if (r == 0)
    r = ep_inventory_set_host_status(ns->inv, node_id, req->status, EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IDLE,
                                     &host);
  /* The node has its credentials: a lost onboarding answer can no longer be made good. */
  if (r == 0 && host->credentials_unused) r = ep_inventory_credentials_used(ns->inv, node_id);
  if (r == 0 && installed && req->disk_protection) r = record_protection(ns, node_id, req->disk_protection);
  if (r == 0 && installed) r = report_running(ns, host, req->status);
  edgeprov__v1__report_status_request__free_unpacked(req, NULL);
  if (r < 0) {
    ep_rpc_call_finish(call, ep_status_from_error(r), ep_error_message(), NULL, 0);
    ep_inv_host_free(host); /* set when only report_running failed */
    return;
  }
  Edgeprov__V1__ReportStatusResponse resp = EDGEPROV__V1__REPORT_STATUS_RESPONSE__INIT;
  resp.host_uuid = host->uuid;
  resp.current_state = host->current_state;
  uint8_t out[128];
  size_t out_len = edgeprov__v1__report_status_response__pack(&resp, out); /* a UUID and an enum */
  ep_rpc_call_finish(call, EP_STATUS_OK, "", out, out_len);
  ep_inv_host_free(host);
}

int ep_node_service_new(ep_node_service **out, ep_inventory *inv, const struct ep_plugin_set *plugins) {
  ep_node_service *ns = calloc(1, sizeof *ns);
  if (!ns) return ep_error_set(EP_ENOMEM, "out of memory");
  ns->inv = inv;
  ns->plugins = plugins;
  ep_config_limits limits = ep_node_limits(plugins);
  int r = ep_node_budget_init(&ns->budget, &limits);
  if (r < 0) {
    free(ns);
    return r;
  }
  *out = ns;
  return 0;
}

int ep_node_service_register(ep_node_service *ns, ep_rpc_server *server) {
  ep_rpc_method method = {.path = EP_NODE_SERVICE_REPORT_STATUS, .kind = EP_RPC_UNARY, .handler = handle_report_status, .data = ns};
  return ep_rpc_server_add_method(server, &method);
}

void ep_node_service_free(ep_node_service *ns) {
  if (!ns) return;
  ep_node_budget_clear(&ns->budget);
  free(ns);
}
