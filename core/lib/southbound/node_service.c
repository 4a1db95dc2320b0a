/* core: the southbound node API, see node_service.h. */
#define _GNU_SOURCE /* explicit_bzero */
#include "southbound/node_service.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprov/v1/node.pb-c.h"
#include "base/error.h"
#include "base/log.h"
#include "southbound/node_auth.h"
#include "runtime/plugin_loader.h"
#include "base/ratelimit.h"
#include "base/validate.h"
#include "provisioning/node_log.h"
#include "provisioning/recovery_keys.h"

struct ep_node_service {
  ep_inventory *inv;
  const struct ep_plugin_set *plugins;
  ep_node_budget budget; /* ReportStatus and StoreRecoveryKey calls */
  ep_recovery_site_key *site_key; /* secrets.recovery_key_file's; NULL: none set */
};

/* Charges a call to node_id's budget; over it, answers RESOURCE_EXHAUSTED (logged once a minute
 * per node) and returns false. */
static bool within_budget(ep_node_service *ns, ep_rpc_call *call, const char *node_id) {
  if (ep_node_budget_take(&ns->budget, node_id) == 0) return true;
  if (ep_ratelimit_take(ns->budget.warned, node_id, NULL))
    ep_log(EP_LOG_WARN, "node-api", "host %s: %s (further refusals for a minute are not logged)", node_id,
           ep_error_message());
  ep_rpc_call_finish(call, EP_STATUS_RESOURCE_EXHAUSTED, ep_error_message(), NULL, 0);
  return false;
}

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
  if (!within_budget(ns, call, node_id)) return;
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

/* The node's disk recovery key, kept sealed for its own host (the token's). The key is never
 * echoed: the errors name the field and the rule only. */
static void handle_store_recovery_key(void *data, ep_rpc_call *call, const uint8_t *request, size_t len) {
  ep_node_service *ns = data;
  char node_id[EP_IDENTITY_NODE_ID_MAX + 1];
  if (ep_node_auth_or_refuse(ns->plugins, call, "node-api", node_id) < 0) return;
  if (!within_budget(ns, call, node_id)) return;
  Edgeprov__V1__StoreRecoveryKeyRequest *req = edgeprov__v1__store_recovery_key_request__unpack(NULL, len, request);
  if (!req) {
    ep_rpc_call_finish(call, EP_STATUS_INVALID_ARGUMENT, "request is not a valid StoreRecoveryKeyRequest", NULL, 0);
    return;
  }
  bool replaced = false;
  int r = ep_recovery_key_store(ns->inv, ns->site_key, node_id, req->recovery_key, &replaced);
  explicit_bzero(req->recovery_key, strlen(req->recovery_key));
  edgeprov__v1__store_recovery_key_request__free_unpacked(req, NULL);
  if (r < 0) {
    ep_rpc_call_finish(call, ep_status_from_error(r), ep_error_message(), NULL, 0);
    return;
  }
  const char *what = replaced ? "recovery key replaced: the node sent a new one" : "recovery key stored";
  ep_log(replaced ? EP_LOG_WARN : EP_LOG_INFO, "node-api", "host %s: %s (sealed under site key %s)", node_id, what,
         ep_recovery_site_key_id(ns->site_key));
  /* The host's log says when it came (edgeprov logs); a line lost here loses nothing kept. */
  char *lines[] = {(char *)what};
  const ep_config *config = ns->plugins ? ns->plugins->config : NULL;
  uint64_t max_bytes = config ? (uint64_t)config->log_max_bytes_per_host : EP_CONFIG_LOG_MAX_BYTES_DEFAULT;
  if (ep_node_log_append(ns->inv, node_id, 0, 0, "node", lines, 1, max_bytes, NULL) < 0)
    ep_log(EP_LOG_WARN, "node-api", "host %s: its log does not say the recovery key was stored: %s", node_id,
           ep_error_message());
  Edgeprov__V1__StoreRecoveryKeyResponse resp = EDGEPROV__V1__STORE_RECOVERY_KEY_RESPONSE__INIT;
  uint8_t out[16];
  size_t out_len = edgeprov__v1__store_recovery_key_response__pack(&resp, out); /* empty */
  ep_rpc_call_finish(call, EP_STATUS_OK, "", out, out_len);
}

int ep_node_service_new(ep_node_service **out, ep_inventory *inv, const struct ep_plugin_set *plugins) {
  ep_node_service *ns = calloc(1, sizeof *ns);
  if (!ns) return ep_error_set(EP_ENOMEM, "out of memory");
  ns->inv = inv;
  ns->plugins = plugins;
  ep_config_limits limits = ep_node_limits(plugins);
  int r = ep_node_budget_init(&ns->budget, &limits);
  const ep_config *config = plugins ? plugins->config : NULL;
  if (r == 0 && config && config->recovery_key_file) /* read once: a bad file stops the start, not a node */
    r = ep_recovery_site_key_load(&ns->site_key, config->recovery_key_file);
  if (r < 0) {
    ep_node_service_free(ns);
    return r;
  }
  *out = ns;
  return 0;
}

int ep_node_service_register(ep_node_service *ns, ep_rpc_server *server) {
  ep_rpc_method methods[] = {
      {.path = EP_NODE_SERVICE_REPORT_STATUS, .kind = EP_RPC_UNARY, .handler = handle_report_status, .data = ns},
      {.path = EP_NODE_SERVICE_STORE_RECOVERY_KEY, .kind = EP_RPC_UNARY, .handler = handle_store_recovery_key,
       .data = ns},
  };
  int r = 0;
  for (size_t i = 0; r == 0 && i < sizeof methods / sizeof methods[0]; i++) r = ep_rpc_server_add_method(server, &methods[i]);
  return r;
}

void ep_node_service_free(ep_node_service *ns) {
  if (!ns) return;
  ep_node_budget_clear(&ns->budget);
  ep_recovery_site_key_free(ns->site_key);
  free(ns);
}
