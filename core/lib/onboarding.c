/* core: the southbound onboarding service, see onboarding.h. */
#define _GNU_SOURCE /* explicit_bzero */
#include "onboarding.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <edgeprov/identity.h>

#include "error.h"
#include "log.h"
#include "mgmt.h"
#include "mgmt_server.h"
#include "onboardingmgr/v1/onboarding.pb-c.h"
#include "rpc.h"
#include "validate.h"

typedef Onboardingmgr__V1__OnboardNodeStreamRequest stream_request;
typedef Onboardingmgr__V1__OnboardNodeStreamResponse stream_response;

struct ep_onboarding {
  ep_inventory *inv;
  const ep_plugin_set *plugins;
  const ep_config *config;
  char *operator_token; /* NULL: CreateNodes is refused */
};

/* Sends one response on the stream; status is a gRPC code with its message. */
static int send_response(ep_rpc_call *call, int status, const char *message,
                         Onboardingmgr__V1__OnboardNodeStreamResponse__NodeState state, const char *client_id,
                         const char *client_secret, const char *project_id) {
  Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
  st.code = status;
  st.message = (char *)(message ? message : "");
  stream_response resp = ONBOARDINGMGR__V1__ONBOARD_NODE_STREAM_RESPONSE__INIT;
  resp.status = &st;
  resp.node_state = state;
  if (client_id) resp.client_id = (char *)client_id;
  if (client_secret) resp.client_secret = (char *)client_secret;
  if (project_id) resp.project_id = (char *)project_id;
  size_t len = onboardingmgr__v1__onboard_node_stream_response__get_packed_size(&resp);
  uint8_t *data = malloc(len ? len : 1);
  if (!data) return EP_ENOMEM;
  onboardingmgr__v1__onboard_node_stream_response__pack(&resp, data);
  int r = ep_rpc_call_send(call, data, len);
  explicit_bzero(data, len); /* it may hold the node's secret */
  free(data);
  return r;
}

/* Finds the node's host by UUID, then by serial. Returns 0, EP_ENOENT, or EP_EPERM for a
 * UUID/serial mismatch (message set, and recorded in the host's registration status). */
static int find_host(ep_onboarding *ob, const stream_request *req, ep_inv_host **ret_host) {
  ep_inv_host *host = NULL;
  int r = EP_ENOENT;
  if (req->uuid[0]) r = ep_inventory_get_host(ob->inv, req->uuid, &host);
  if (r == EP_ENOENT && req->serialnum[0]) r = ep_inventory_find_host_by_serial(ob->inv, req->serialnum, &host);
  if (r < 0) return r;
  char uuid[EP_UUID_TEXT_LEN + 1] = "";
  if (req->uuid[0]) ep_validate_uuid(uuid, "uuid", req->uuid);
  bool serial_differs = req->serialnum[0] && host->serial[0] && strcmp(req->serialnum, host->serial) != 0;
  bool uuid_differs = uuid[0] && strcmp(uuid, host->uuid) != 0;
  if (serial_differs || uuid_differs) {
    char status[256];
    snprintf(status, sizeof status, "UUID/serial mismatch: the node reported uuid %.36s serial %.20s; registered %s %s",
             req->uuid, req->serialnum, host->uuid, host->serial);
    ep_inventory_set_registration_status(ob->inv, host->uuid, status, EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_ERROR,
                                         NULL);
    ep_log(EP_LOG_WARN, "onboarding", "host %s: %s", host->uuid, status);
    ep_inv_host_free(host);
    return ep_error_set(EP_EPERM, "%s", status);
  }
  *ret_host = host;
  return 0;
}

/* Validates what a node sent; the message names the field. */
static int check_request(const stream_request *req) {
  char uuid[EP_UUID_TEXT_LEN + 1], mac[EP_MAC_TEXT_LEN + 1], ip[EP_IP_TEXT_MAX + 1];
  if (!req->uuid[0] && !req->serialnum[0]) return ep_error_set(EP_EINVAL, "uuid: required (or serialnum)");
  if (req->uuid[0] && ep_validate_uuid(uuid, "uuid", req->uuid) < 0) return EP_EINVAL;
  if (req->serialnum[0] && ep_validate_serial("serialnum", req->serialnum) < 0) return EP_EINVAL;
  if (req->mac_id[0] && ep_validate_mac(mac, "mac_id", req->mac_id) < 0) return EP_EINVAL;
  if (req->host_ip[0] && ep_validate_ip(ip, "host_ip", req->host_ip) < 0) return EP_EINVAL;
  return 0;
}

typedef struct issued {
  char client_id[128];
  char client_secret[128];
  char project_id[64];
} issued;

static int32_t keep_credentials(void *data, const ep_identity_credentials *c) {
  issued *out = data;
  snprintf(out->client_id, sizeof out->client_id, "%s", c->client_id ? c->client_id : "");
  snprintf(out->client_secret, sizeof out->client_secret, "%s", c->client_secret ? c->client_secret : "");
  snprintf(out->project_id, sizeof out->project_id, "%s", c->project_id ? c->project_id : "");
  return 0;
}

/* nZTP: the instance is created as soon as the host is onboarded, when a profile is known. */
static void create_instance_if_zero_touch(ep_onboarding *ob, const ep_inv_host *host) {
  if (ob->config->mode != EP_MODE_NZTP || host->instance_id[0] || !host->os_profile[0]) return;
  ep_inv_instance *instance = NULL;
  if (ep_inventory_create_instance(ob->inv, host->uuid, NULL, &instance) == 0) {
    ep_log(EP_LOG_INFO, "onboarding", "host %s: instance %s created (nZTP, %s)", host->uuid, instance->id,
           instance->os_profile);
    ep_inv_instance_free(instance);
  } else {
    ep_log(EP_LOG_WARN, "onboarding", "host %s: no instance created: %s", host->uuid, ep_error_message());
  }
}

/* Onboards host: issues credentials and replies ONBOARDED. Returns 0 when the stream is
 * done, or a negative code with the status to finish with. */
static int onboard(ep_onboarding *ob, ep_rpc_call *call, ep_inv_host *host) {
  void *id_state = NULL;
  ep_plugin *provider = NULL;
  const ep_identity *identity = ep_plugins_capability(ob->plugins, EP_CAP_IDENTITY, &provider);
  if (!identity) return ep_error_set(EP_EIO, "no identity plugin is active (enable auth-local)");
  id_state = provider->instance;
  if (identity->get(id_state, host->uuid, NULL, NULL) == 0)
    return ep_error_set(EP_EPERM,
                        "host %s already has credentials; an operator re-arms it with: edgeprov host invalidate %s, "
                        "then edgeprov host approve %s",
                        host->uuid, host->uuid, host->uuid);
  /* An invalidated host that an operator approved again registers before it onboards. */
  if (host->current_state == EDGEPROV__V1__HOST_STATE__HOST_STATE_UNTRUSTED) {
    int r = ep_inventory_set_host_state(ob->inv, host->uuid, EDGEPROV__V1__HOST_STATE__HOST_STATE_REGISTERED,
                                        "Registered again", EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IDLE, NULL);
    if (r < 0) return r;
  }
  issued creds;
  memset(&creds, 0, sizeof creds);
  int r = identity->create(id_state, host->uuid, keep_credentials, &creds);
  if (r < 0) return ep_error_prefix(r, "host %s: credentials", host->uuid);
  ep_inv_host *updated = NULL;
  r = ep_inventory_set_host_state(ob->inv, host->uuid, EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED, "Onboarded",
                                  EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IDLE, &updated);
  if (r == 0) {
    r = send_response(call, EP_STATUS_OK, "", ONBOARDINGMGR__V1__ONBOARD_NODE_STREAM_RESPONSE__NODE_STATE__NODE_STATE_ONBOARDED,
                      creds.client_id, creds.client_secret, creds.project_id);
    ep_log(EP_LOG_INFO, "onboarding", "host %s onboarded as %s", host->uuid, creds.client_id);
    create_instance_if_zero_touch(ob, updated);
  }
  if (r < 0) identity->revoke(id_state, host->uuid); /* nothing half-done: the node retries */
  explicit_bzero(&creds, sizeof creds);
  ep_inv_host_free(updated);
  return r;
}

static void handle_stream(void *data, ep_rpc_call *call, const uint8_t *unused, size_t unused_len) {
  (void)unused, (void)unused_len;
  ep_onboarding *ob = data;
  uint8_t *bytes = NULL;
  size_t len = 0;
  while (ep_rpc_call_recv(call, &bytes, &len) == 1) {
    stream_request *req = onboardingmgr__v1__onboard_node_stream_request__unpack(NULL, len, bytes);
    free(bytes);
    if (!req) {
      ep_rpc_call_finish(call, EP_STATUS_INVALID_ARGUMENT, "request is not a valid OnboardNodeStreamRequest", NULL, 0);
      return;
    }
    ep_inv_host *host = NULL;
    int r = check_request(req);
    if (r == 0) r = find_host(ob, req, &host);
    if (r == EP_ENOENT) {
      char message[200];
      snprintf(message, sizeof message, "node uuid %.36s serial %.20s is not registered", req->uuid, req->serialnum);
      onboardingmgr__v1__onboard_node_stream_request__free_unpacked(req, NULL);
      if (send_response(call, EP_STATUS_NOT_FOUND, message,
                        ONBOARDINGMGR__V1__ONBOARD_NODE_STREAM_RESPONSE__NODE_STATE__NODE_STATE_UNSPECIFIED, NULL, NULL,
                        NULL) < 0)
        break;
      continue; /* the node asks again */
    }
    if (r < 0) {
      onboardingmgr__v1__onboard_node_stream_request__free_unpacked(req, NULL);
      ep_rpc_call_finish(call, ep_status_from_error(r), ep_error_message(), NULL, 0);
      return;
    }
    ep_inventory_set_registration_status(ob->inv, host->uuid, "Node connected", EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IDLE,
                                         req->host_ip);
    onboardingmgr__v1__onboard_node_stream_request__free_unpacked(req, NULL);
    if (host->desired_state == EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED) {
      r = onboard(ob, call, host);
      ep_inv_host_free(host);
      if (r < 0)
        ep_rpc_call_finish(call, ep_status_from_error(r), ep_error_message(), NULL, 0);
      else
        ep_rpc_call_finish(call, EP_STATUS_OK, "", NULL, 0);
      return;
    }
    if (host->current_state != EDGEPROV__V1__HOST_STATE__HOST_STATE_REGISTERED)
      r = ep_inventory_set_host_state(ob->inv, host->uuid, EDGEPROV__V1__HOST_STATE__HOST_STATE_REGISTERED,
                                      "Registered, waiting for approval", EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IDLE,
                                      NULL);
    ep_inv_host_free(host);
    if (r < 0) {
      ep_rpc_call_finish(call, ep_status_from_error(r), ep_error_message(), NULL, 0);
      return;
    }
    if (send_response(call, EP_STATUS_OK, "", ONBOARDINGMGR__V1__ONBOARD_NODE_STREAM_RESPONSE__NODE_STATE__NODE_STATE_REGISTERED,
                      NULL, NULL, NULL) < 0)
      break;
  }
  ep_rpc_call_finish(call, EP_STATUS_OK, "", NULL, 0);
}

static void handle_create_nodes(void *data, ep_rpc_call *call, const uint8_t *request, size_t len) {
  ep_onboarding *ob = data;
  char value[EP_OPERATOR_TOKEN_MAX + 16];
  bool ok = ob->operator_token && ep_rpc_call_metadata(call, "authorization", value, sizeof value) > 7 &&
            strncmp(value, "Bearer ", 7) == 0 && ep_secret_equal(value + 7, ob->operator_token);
  explicit_bzero(value, sizeof value);
  if (!ok) {
    ep_rpc_call_finish(call, EP_STATUS_UNAUTHENTICATED, "CreateNodes needs the operator token", NULL, 0);
    return;
  }
  Onboardingmgr__V1__CreateNodesRequest *req = onboardingmgr__v1__create_nodes_request__unpack(NULL, len, request);
  if (!req) {
    ep_rpc_call_finish(call, EP_STATUS_INVALID_ARGUMENT, "request is not a valid CreateNodesRequest", NULL, 0);
    return;
  }
  int r = 0;
  for (size_t i = 0; r == 0 && i < req->n_payload; i++) {
    for (size_t j = 0; r == 0 && j < req->payload[i]->n_hwdata; j++) {
      const Onboardingmgr__V1__HwData *hw = req->payload[i]->hwdata[j];
      const char *macs[1] = {hw->mac_id};
      ep_host_spec spec = {.uuid = hw->uuid, .serial = hw->serialnum, .macs = macs, .mac_count = hw->mac_id[0] ? 1 : 0,
                           .ip = hw->sut_ip, .auto_onboard = true};
      ep_inv_host *host = NULL;
      r = ep_inventory_add_host(ob->inv, &spec, &host);
      ep_inv_host_free(host);
    }
  }
  if (r < 0) {
    onboardingmgr__v1__create_nodes_request__free_unpacked(req, NULL);
    ep_rpc_call_finish(call, ep_status_from_error(r), ep_error_message(), NULL, 0);
    return;
  }
  Onboardingmgr__V1__CreateNodesResponse resp = ONBOARDINGMGR__V1__CREATE_NODES_RESPONSE__INIT;
  resp.payload = req->payload;
  resp.n_payload = req->n_payload;
  resp.project_id = "edgeprov";
  size_t out_len = onboardingmgr__v1__create_nodes_response__get_packed_size(&resp);
  uint8_t *out = malloc(out_len ? out_len : 1);
  if (out) onboardingmgr__v1__create_nodes_response__pack(&resp, out);
  ep_rpc_call_finish(call, out ? EP_STATUS_OK : EP_STATUS_RESOURCE_EXHAUSTED, out ? "" : "out of memory", out, out_len);
  free(out);
  onboardingmgr__v1__create_nodes_request__free_unpacked(req, NULL);
}

int ep_onboarding_new(ep_onboarding **out, ep_inventory *inv, const ep_plugin_set *plugins, const ep_config *config) {
  ep_onboarding *ob = calloc(1, sizeof *ob);
  if (!ob) return ep_error_set(EP_ENOMEM, "out of memory");
  ob->inv = inv;
  ob->plugins = plugins;
  ob->config = config;
  if (config->operator_token_file) {
    int r = ep_read_secret_file(&ob->operator_token, config->operator_token_file, EP_OPERATOR_TOKEN_MAX, true);
    if (r < 0) {
      ep_onboarding_free(ob);
      return r;
    }
  }
  *out = ob;
  return 0;
}

int ep_onboarding_register(ep_onboarding *ob, ep_rpc_server *server) {
  ep_rpc_method methods[] = {{EP_ONBOARDING_SERVICE_STREAM, EP_RPC_BIDI_STREAMING, handle_stream, ob},
                             {EP_ONBOARDING_SERVICE_CREATE, EP_RPC_UNARY, handle_create_nodes, ob}};
  int r = 0;
  for (size_t i = 0; r == 0 && i < sizeof methods / sizeof methods[0]; i++) r = ep_rpc_server_add_method(server, &methods[i]);
  return r;
}

void ep_onboarding_free(ep_onboarding *ob) {
  if (!ob) return;
  if (ob->operator_token) {
    explicit_bzero(ob->operator_token, strlen(ob->operator_token));
    free(ob->operator_token);
  }
  free(ob);
}
