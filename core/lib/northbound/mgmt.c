/* core: the management API without its transport, see mgmt.h. */
#define _GNU_SOURCE /* explicit_bzero */
#include "northbound/mgmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <edgeprov/identity.h>
#include <edgeprov/storage.h>

#include "edgeprov/v1/management.pb-c.h"
#include "base/error.h"
#include "base/log.h"
#include "runtime/plugin_loader.h"
#include "base/redact.h"
#include "base/validate.h"
#include "provisioning/node_log.h"
#include "provisioning/recovery_keys.h"
#include "provisioning/workflow.h"

void ep_mgmt_reply_clear(ep_mgmt_reply *reply) {
  free(reply->data);
  memset(reply, 0, sizeof *reply);
}

static void reply_error(ep_mgmt_reply *reply, int code) {
  reply->status = ep_status_from_error(code);
  snprintf(reply->message, sizeof reply->message, "%s", ep_error_message());
}

static void reply_status(ep_mgmt_reply *reply, int status, const char *message) {
  reply->status = status;
  snprintf(reply->message, sizeof reply->message, "%s", message);
}

static void reply_message(ep_mgmt_reply *reply, const ProtobufCMessage *message) {
  size_t len = protobuf_c_message_get_packed_size(message);
  if (len > EP_MGMT_MESSAGE_MAX) {
    reply_status(reply, EP_STATUS_RESOURCE_EXHAUSTED, "reply larger than the message limit; use a smaller page_size");
    return;
  }
  reply->data = malloc(len ? len : 1);
  if (!reply->data) {
    reply_status(reply, EP_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  protobuf_c_message_pack(message, reply->data);
  reply->len = len;
  reply->status = EP_STATUS_OK;
}

/* Decodes request as descriptor's message; on failure fills reply and returns NULL. */
static ProtobufCMessage *decode(const ProtobufCMessageDescriptor *descriptor, const uint8_t *request, size_t len,
                                ep_mgmt_reply *reply) {
  if (len > EP_MGMT_MESSAGE_MAX) {
    reply_status(reply, EP_STATUS_RESOURCE_EXHAUSTED, "request larger than the message limit");
    return NULL;
  }
  ProtobufCMessage *message = protobuf_c_message_unpack(descriptor, NULL, len, request);
  if (!message) {
    char text[160];
    snprintf(text, sizeof text, "request is not a valid %s message", descriptor->name);
    reply_status(reply, EP_STATUS_INVALID_ARGUMENT, text);
  }
  return message;
}

/* ---- methods ----------------------------------------------------------------------------- */

/* What a method handler works on. */
typedef struct mgmt_site {
  ep_inventory *inv;
  const ep_plugin_set *plugins;
} mgmt_site;

/* Revokes the host's credentials at the identity plugin, if one is active; a failure is
 * logged (the host is gone or untrusted either way, and a stale client cannot onboard). */
static void revoke_credentials(const mgmt_site *site, const char *uuid) {
  ep_plugin *provider = NULL;
  const ep_identity *identity = site->plugins ? ep_plugins_capability(site->plugins, EP_CAP_IDENTITY, &provider) : NULL;
  if (identity && identity->revoke(provider->instance, uuid) < 0)
    ep_log(EP_LOG_WARN, "mgmt", "host %s: credentials not revoked: %s", uuid, ep_error_message());
}

/* Answers message, or the error r. */
static void reply_result(ep_mgmt_reply *reply, int r, const ProtobufCMessage *message) {
  if (r < 0)
    reply_error(reply, r);
  else
    reply_message(reply, message);
}

/* Answers a host (or the error r) and frees it. */
static void reply_host(ep_mgmt_reply *reply, int r, ep_inv_host *host) {
  Edgeprov__V1__HostResponse resp = EDGEPROV__V1__HOST_RESPONSE__INIT;
  resp.host = host;
  reply_result(reply, r, &resp.base);
  ep_inv_host_free(host);
}

/* Answers an instance (or the error r) and frees it. */
static void reply_instance(ep_mgmt_reply *reply, int r, ep_inv_instance *instance) {
  Edgeprov__V1__InstanceResponse resp = EDGEPROV__V1__INSTANCE_RESPONSE__INIT;
  resp.instance = instance;
  reply_result(reply, r, &resp.base);
  ep_inv_instance_free(instance);
}

/* ListHosts and ListInstances: one page of records (instances or hosts), answered in its
 * List*Response with the next page's token. */
static void list_page(const mgmt_site *site, const ProtobufCMessage *m, ep_mgmt_reply *reply, bool instances) {
  const Edgeprov__V1__ListRequest *req = (const void *)m;
  Edgeprov__V1__ListHostsResponse hosts = EDGEPROV__V1__LIST_HOSTS_RESPONSE__INIT;
  Edgeprov__V1__ListInstancesResponse insts = EDGEPROV__V1__LIST_INSTANCES_RESPONSE__INIT;
  char *next = NULL;
  int r = instances ? 0 : ep_inventory_revision(site->inv, &hosts.revision); /* before the page: nothing missed */
  if (r == 0)
    r = instances ? ep_inventory_list_instances(site->inv, req->page_token, req->page_size, &insts.instances,
                                                  &insts.n_instances, &next)
                    : ep_inventory_list_hosts(site->inv, req->page_token, req->page_size, &hosts.hosts, &hosts.n_hosts,
                                              &next);
  hosts.next_page_token = insts.next_page_token = next;
  reply_result(reply, r, instances ? &insts.base : &hosts.base);
  ep_inv_hosts_free(hosts.hosts, hosts.n_hosts);
  ep_inv_instances_free(insts.instances, insts.n_instances);
  free(next);
}

static void add_host(const mgmt_site *site, const ProtobufCMessage *m, ep_mgmt_reply *reply) {
  ep_inventory *inv = site->inv;
  const Edgeprov__V1__AddHostRequest *req = (const void *)m;
  ep_inv_host_spec spec = {.uuid = req->uuid,
                       .serial = req->serial,
                       .macs = (const char *const *)req->macs,
                       .mac_count = req->n_macs,
                       .ip = req->ip,
                       .site = req->site,
                       .os_profile = req->os_profile,
                       .auto_onboard = req->auto_onboard,
                       .tpm_ek = req->tpm_ek.data,
                       .tpm_ek_len = req->tpm_ek.len,
                       .fde = req->fde};
  ep_inv_host *host = NULL;
  int r = ep_inventory_add_host(inv, &spec, &host);
  reply_host(reply, r, host);
}

static void get_host(const mgmt_site *site, const ProtobufCMessage *m, ep_mgmt_reply *reply) {
  ep_inventory *inv = site->inv;
  const Edgeprov__V1__GetHostRequest *req = (const void *)m;
  ep_inv_host *host = NULL;
  int r;
  if (req->uuid[0])
    r = ep_inventory_get_host(inv, req->uuid, &host);
  else if (req->serial[0])
    r = ep_inventory_find_host_by_serial(inv, req->serial, &host);
  else
    r = ep_error_set(EP_EINVAL, "uuid: required (or serial)");
  reply_host(reply, r, host);
}

static void list_hosts(const mgmt_site *site, const ProtobufCMessage *m, ep_mgmt_reply *reply) {
  list_page(site, m, reply, false);
}

static void delete_host(const mgmt_site *site, const ProtobufCMessage *m, ep_mgmt_reply *reply) {
  const Edgeprov__V1__DeleteHostRequest *req = (const void *)m;
  Edgeprov__V1__DeleteResponse resp = EDGEPROV__V1__DELETE_RESPONSE__INIT;
  char uuid[EP_UUID_TEXT_LEN + 1];
  int r = ep_validate_uuid(uuid, "uuid", req->uuid);
  if (r == 0) r = ep_inventory_delete_host(site->inv, uuid, &resp.revision);
  if (r == 0) revoke_credentials(site, uuid);
  if (r == 0 && ep_node_log_delete(site->inv, uuid) < 0) /* the host is gone all the same */
    ep_log(EP_LOG_WARN, "mgmt", "host %s deleted, but its log could not be: %s", uuid, ep_error_message());
  reply_result(reply, r, &resp.base);
}

static void set_desired_state(const mgmt_site *site, const ProtobufCMessage *m, ep_mgmt_reply *reply) {
  const Edgeprov__V1__SetDesiredStateRequest *req = (const void *)m;
  ep_inv_host *host = NULL;
  int r = ep_inventory_set_desired_state(site->inv, req->uuid, req->desired_state, &host);
  if (r == 0 && req->desired_state == EDGEPROV__V1__HOST_STATE__HOST_STATE_UNTRUSTED)
    revoke_credentials(site, host->uuid);
  reply_host(reply, r, host);
}

static void create_instance(const mgmt_site *site, const ProtobufCMessage *m, ep_mgmt_reply *reply) {
  ep_inventory *inv = site->inv;
  const Edgeprov__V1__CreateInstanceRequest *req = (const void *)m;
  ep_inv_instance *instance = NULL;
  int r = ep_inventory_create_instance(inv, req->host_uuid, req->os_profile, req->fde, &instance);
  reply_instance(reply, r, instance);
}

static void delete_instance(const mgmt_site *site, const ProtobufCMessage *m, ep_mgmt_reply *reply) {
  ep_inventory *inv = site->inv;
  const Edgeprov__V1__DeleteInstanceRequest *req = (const void *)m;
  Edgeprov__V1__DeleteResponse resp = EDGEPROV__V1__DELETE_RESPONSE__INIT;
  int r = ep_inventory_delete_instance(inv, req->id, &resp.revision);
  reply_result(reply, r, &resp.base);
}

static void retry_instance(const mgmt_site *site, const ProtobufCMessage *m, ep_mgmt_reply *reply) {
  const Edgeprov__V1__RetryInstanceRequest *req = (const void *)m;
  ep_inv_instance *instance = NULL;
  int r = ep_inventory_retry_instance(site->inv, req->id, &instance);
  reply_instance(reply, r, instance);
}

static void list_instances(const mgmt_site *site, const ProtobufCMessage *m, ep_mgmt_reply *reply) {
  list_page(site, m, reply, true);
}

static void get_instance(const mgmt_site *site, const ProtobufCMessage *m, ep_mgmt_reply *reply) {
  const Edgeprov__V1__GetInstanceRequest *req = (const void *)m;
  Edgeprov__V1__InstanceDetail resp = EDGEPROV__V1__INSTANCE_DETAIL__INIT;
  char id[EP_UUID_TEXT_LEN + 1];
  int r = ep_validate_uuid(id, "id", req->id);
  if (r == 0) r = ep_inventory_get_instance(site->inv, id, &resp.instance);
  if (r == 0 && ep_inventory_get_workflow(site->inv, id, &resp.workflow) < 0) {
    if (ep_error_code() != EP_ENOENT) r = ep_error_code();
    resp.workflow = NULL;
  }
  if (resp.workflow) ep_workflow_strip_for_operators(resp.workflow);
  reply_result(reply, r, &resp.base);
  ep_inv_instance_free(resp.instance);
  if (resp.workflow) ep_workflow_free(resp.workflow);
}

typedef struct log_lines {
  Edgeprov__V1__LogLine **lines;
  size_t count, cap;
  int error;
} log_lines;

static int keep_log_line(void *data, const ep_node_log_line *line) {
  log_lines *l = data;
  size_t len = edgeprov__v1__log_line__get_packed_size(line);
  uint8_t *buf = malloc(len ? len : 1);
  Edgeprov__V1__LogLine *copy = buf ? edgeprov__v1__log_line__unpack(NULL, edgeprov__v1__log_line__pack(line, buf), buf) : NULL;
  free(buf);
  if (!copy || l->count == l->cap) {
    if (copy) protobuf_c_message_free_unpacked(&copy->base, NULL);
    l->error = ep_error_set(EP_ENOMEM, "out of memory");
    return 1;
  }
  l->lines[l->count++] = copy;
  return 0;
}

static void get_logs(const mgmt_site *site, const ProtobufCMessage *m, ep_mgmt_reply *reply) {
  const Edgeprov__V1__GetLogsRequest *req = (const void *)m;
  char uuid[EP_UUID_TEXT_LEN + 1];
  int r = ep_validate_uuid(uuid, "host_uuid", req->host_uuid);
  if (r == 0 && req->limit > EP_NODE_LOG_READ_MAX)
    r = ep_error_set(EP_EINVAL, "limit: %u lines, at most %d", req->limit, EP_NODE_LOG_READ_MAX);
  ep_inv_host *host = NULL;
  if (r == 0) r = ep_inventory_get_host(site->inv, uuid, &host); /* an unknown host is NOT_FOUND, not an empty log */
  ep_inv_host_free(host);
  size_t limit = req->limit ? req->limit : EP_NODE_LOG_READ_MAX;
  /* One more than asked, to tell whether more follow. */
  log_lines l = {.cap = limit + 1};
  l.lines = r == 0 ? calloc(l.cap, sizeof *l.lines) : NULL;
  if (r == 0 && !l.lines) r = ep_error_set(EP_ENOMEM, "out of memory");
  ep_node_log_head head;
  uint64_t revision = 0;
  if (r == 0) r = ep_inventory_revision(site->inv, &revision); /* before the log: nothing missed */
  if (r == 0) r = ep_node_log_read(site->inv, uuid, req->after_line, req->run, l.cap, keep_log_line, &l, &head);
  if (r == 0) r = l.error;
  Edgeprov__V1__GetLogsResponse resp = EDGEPROV__V1__GET_LOGS_RESPONSE__INIT;
  if (r == 0) {
    resp.more = l.count > limit;
    resp.n_lines = resp.more ? limit : l.count;
    resp.lines = l.lines;
    resp.next_line = head.next_line ? head.next_line : 1;
    resp.revision = revision;
  }
  reply_result(reply, r, &resp.base);
  for (size_t i = 0; i < l.count; i++) protobuf_c_message_free_unpacked(&l.lines[i]->base, NULL);
  free(l.lines);
}

/* The site key is read for each call (reads are rare, and nothing of it stays in memory between
 * them); the node side reads it once at start (southbound/node_service.c). */
static void get_recovery_key(const mgmt_site *site, const ProtobufCMessage *m, ep_mgmt_reply *reply) {
  const Edgeprov__V1__GetRecoveryKeyRequest *req = (const void *)m;
  const ep_config *config = site->plugins ? site->plugins->config : NULL;
  char uuid[EP_UUID_TEXT_LEN + 1];
  ep_recovery_site_key *key = NULL;
  ep_inv_host *host = NULL;
  Edgeprov__V1__GetRecoveryKeyResponse resp = EDGEPROV__V1__GET_RECOVERY_KEY_RESPONSE__INIT;
  int r = ep_validate_uuid(uuid, "uuid", req->uuid);
  if (r == 0) r = ep_inventory_get_host(site->inv, uuid, &host); /* an unknown host is NOT_FOUND as such */
  ep_inv_host_free(host);
  if (r == 0 && config && config->recovery_key_file) r = ep_recovery_site_key_load(&key, config->recovery_key_file);
  char *recovery_key = NULL;
  if (r == 0) r = ep_recovery_key_read(site->inv, key, uuid, &recovery_key, &resp.stored_at);
  ep_recovery_site_key_free(key);
  if (r == 0) {
    resp.recovery_key = recovery_key;
    ep_log(EP_LOG_WARN, "mgmt", "host %s: recovery key read by an operator", uuid);
    char *lines[] = {"recovery key read by an operator (management API)"};
    uint64_t max_bytes = config ? (uint64_t)config->log_max_bytes_per_host : EP_CONFIG_LOG_MAX_BYTES_DEFAULT;
    if (ep_node_log_append(site->inv, uuid, 0, 0, "operator", lines, 1, max_bytes, NULL) < 0)
      ep_log(EP_LOG_WARN, "mgmt", "host %s: its log does not say its recovery key was read: %s", uuid, ep_error_message());
  }
  reply_result(reply, r, &resp.base);
  if (recovery_key) {
    explicit_bzero(recovery_key, strlen(recovery_key));
    free(recovery_key);
  }
}

#define SAMPLE_HOST_UUID "00000000-0000-4000-8000-000000000000"
#define DRY_RUN_INSTANCE_ID "00000000-0000-4000-8000-000000000001"

/* Masks each parameter value of w that looks like a secret; returns how many were. */
static int mask_secrets(ep_workflow *w, uint32_t *ret_masked) {
  size_t masked = 0;
  for (size_t i = 0; i < w->n_actions; i++)
    for (size_t k = 0; k < w->actions[i]->n_params; k++) {
      Edgeprov__V1__ActionParam *p = w->actions[i]->params[k];
      char *value = ep_redact_value(p->name, p->value, &masked);
      if (!value) return ep_error_set(EP_ENOMEM, "out of memory");
      free(p->value);
      p->value = value;
    }
  *ret_masked = (uint32_t)masked;
  return 0;
}

static void render_workflow(const mgmt_site *site, const ProtobufCMessage *m, ep_mgmt_reply *reply) {
  const Edgeprov__V1__RenderWorkflowRequest *req = (const void *)m;
  Edgeprov__V1__RenderWorkflowResponse resp = EDGEPROV__V1__RENDER_WORKFLOW_RESPONSE__INIT;
  ep_inv_host sample = EDGEPROV__V1__HOST__INIT, *host = NULL;
  int r = 0;
  if (!site->plugins || !site->plugins->config)
    r = ep_error_set(EP_EFAILED, "no plugins are started here to render with");
  else if (req->host_uuid[0])
    r = ep_inventory_get_host(site->inv, req->host_uuid, &host);
  else if (!req->os_profile[0])
    r = ep_error_set(EP_EINVAL, "os_profile: required when no host_uuid is given (see: edgeprov plugins list)");
  sample.uuid = SAMPLE_HOST_UUID;
  sample.serial = "SAMPLE";
  const char *profile = req->os_profile[0] ? req->os_profile : host ? host->os_profile : "";
  if (r == 0 && !profile[0])
    r = ep_error_set(EP_EINVAL, "os_profile: host %s names no OS profile; give one", host->uuid);
  if (r == 0 && ep_validate_text("os_profile", profile, 63) < 0) r = EP_EINVAL;
  ep_inv_instance instance = EDGEPROV__V1__INSTANCE__INIT;
  instance.id = DRY_RUN_INSTANCE_ID;
  instance.host_uuid = host ? host->uuid : sample.uuid;
  instance.os_profile = (char *)profile;
  instance.fde = req->fde;
  if (r == 0) r = ep_workflow_render(&resp.workflow, site->plugins, site->plugins->config, host ? host : &sample, &instance, 0);
  if (r == 0) r = mask_secrets(resp.workflow, &resp.masked);
  reply_result(reply, r, &resp.base);
  if (resp.workflow) ep_workflow_free(resp.workflow);
  ep_inv_host_free(host);
}

/* The unary methods, listed once: name, request message, handler. The dispatch table and
 * ep_mgmt_unary_methods (what the server registers) are both made from this list. */
#define UNARY_METHODS(X)                                             \
  X("AddHost", add_host_request, add_host)                           \
  X("GetHost", get_host_request, get_host)                           \
  X("ListHosts", list_request, list_hosts)                           \
  X("DeleteHost", delete_host_request, delete_host)                  \
  X("CreateInstance", create_instance_request, create_instance)      \
  X("DeleteInstance", delete_instance_request, delete_instance)      \
  X("ListInstances", list_request, list_instances)                   \
  X("SetDesiredState", set_desired_state_request, set_desired_state) \
  X("RetryInstance", retry_instance_request, retry_instance)          \
  X("GetInstance", get_instance_request, get_instance)                \
  X("RenderWorkflow", render_workflow_request, render_workflow)       \
  X("GetLogs", get_logs_request, get_logs)                            \
  X("GetRecoveryKey", get_recovery_key_request, get_recovery_key)

typedef struct method {
  const char *name;
  const ProtobufCMessageDescriptor *request;
  void (*handle)(const mgmt_site *site, const ProtobufCMessage *request, ep_mgmt_reply *reply);
} method;

#define METHOD_ENTRY(name, request, handle) {name, &edgeprov__v1__##request##__descriptor, handle},
#define METHOD_NAME(name, request, handle) name,

static const method methods[] = {UNARY_METHODS(METHOD_ENTRY)};

const char *const ep_mgmt_unary_methods[] = {UNARY_METHODS(METHOD_NAME) NULL};

int ep_mgmt_is_watch(const char *name) { return strcmp(name, "WatchEvents") == 0; }

void ep_mgmt_unary(ep_inventory *inv, const ep_plugin_set *plugins, const char *name, const uint8_t *request, size_t len,
                   ep_mgmt_reply *reply) {
  const mgmt_site site = {inv, plugins};
  memset(reply, 0, sizeof *reply);
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
    if (strcmp(methods[i].name, name) != 0) continue;
    ProtobufCMessage *message = decode(methods[i].request, request, len, reply);
    if (!message) return;
    ep_error_clear();
    methods[i].handle(&site, message, reply);
    protobuf_c_message_free_unpacked(message, NULL);
    return;
  }
  char text[160];
  snprintf(text, sizeof text, "unknown method edgeprov.v1.Management/%.64s", name);
  reply_status(reply, EP_STATUS_UNIMPLEMENTED, text);
}
