/* edgeprov CLI: the host commands (add, list, show, approve, invalidate, delete, recovery-key) over the
 * management API. */
#define _GNU_SOURCE /* strndup, explicit_bzero */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/tpm_credential.h"
#include "base/validate.h"
#include "cli.h"
#include "edgeprov/v1/management.pb-c.h"
#include "fleet_cmds.h"
#include "northbound/mgmt_client.h"
#include "provisioning/workflow.h"

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
  printf("fde:           %s\n",
         h->fde ? "yes (every instance encrypts its disk)" : "no (unless its OS profile or instance asks)");
  printf("state:         desired %s, current %s%s\n", ep_inv_host_state_name(h->desired_state),
         ep_inv_host_state_name(h->current_state), h->auto_onboard ? " (auto-onboard)" : "");
  printf("host status:   %s [%s]\n", cli_status_text(h->host_status),
         ep_status_indicator_name(h->host_status ? h->host_status->indicator : 0));
  printf("onboarding:    %s\n", cli_status_text(h->onboarding_status));
  if (h->credentials_unused) printf("credentials:   handed out, not used by the node yet\n");
  printf("registration:  %s\n", cli_status_text(h->registration_status));
  char ek[EP_TPM_FINGERPRINT_LEN + 1] = "-";
  if (h->tpm_ek.len) ep_tpm_ek_fingerprint(ek, h->tpm_ek.data, h->tpm_ek.len);
  printf("tpm ek:        %s%s\n", ek, !h->tpm_ek.len ? "" : h->tpm_ek_first_use ? " (recorded on first use)" : " (registered)");
  const Edgeprov__V1__DiskProtection *p = h->disk_protection;
  if (p) {
    char reported[32];
    cli_time_text(p->reported_at, reported, sizeof reported);
    printf("disk:          %s, root %s: %s (reported %s)\n", cli_protection_text(p->encrypted, "encrypted", "not encrypted"),
           cli_protection_text(p->verified_root, "verified", "not verified"), p->detail[0] ? cli_shown(p->detail) : "-",
           reported);
  } else {
    printf("disk:          - (reported by the installed OS)\n");
  }
  printf("instance:      %s\n", h->instance_id[0] ? cli_shown(h->instance_id) : "-");
  printf("created:       %s (revision %" PRIu64 ")\n", created, h->revision);
}

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

static int host_set_desired(cli_call *call, ep_inv_host_state desired) {
  Edgeprov__V1__SetDesiredStateRequest req = EDGEPROV__V1__SET_DESIRED_STATE_REQUEST__INIT;
  req.uuid = call->args[0];
  req.desired_state = desired;
  return host_call(call->client, "SetDesiredState", &req.base, cli_flag(call, 'j'), print_desired);
}

int ep_cli_host_approve(cli_call *call) { return host_set_desired(call, EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED); }

int ep_cli_host_invalidate(cli_call *call) {
  return host_set_desired(call, EDGEPROV__V1__HOST_STATE__HOST_STATE_UNTRUSTED);
}

static void print_added(const ep_inv_host *h) {
  printf("host %s added (desired %s)\n", cli_shown(h->uuid), ep_inv_host_state_name(h->desired_state));
}

int ep_cli_host_add(cli_call *call) {
  Edgeprov__V1__AddHostRequest req = EDGEPROV__V1__ADD_HOST_REQUEST__INIT;
  const char *macs[EP_MACS_MAX];
  size_t n_macs = cli_values(call, 'm', macs, EP_MACS_MAX);
  if (n_macs > EP_MACS_MAX) return cli_usage_error(call, "--mac: at most %d", EP_MACS_MAX);
  req.uuid = (char *)cli_value(call, 'u');
  if (cli_value(call, 's')) req.serial = (char *)cli_value(call, 's');
  if (cli_value(call, 'i')) req.ip = (char *)cli_value(call, 'i');
  if (cli_value(call, 'S')) req.site = (char *)cli_value(call, 'S');
  if (cli_value(call, 'o')) req.os_profile = (char *)cli_value(call, 'o');
  req.auto_onboard = cli_flag(call, 'a');
  req.fde = cli_flag(call, 'F');
  ep_tpm_ek ek;
  if (cli_value(call, 'e')) { /* sent as its DER public key, whatever form the file has */
    int r = ep_tpm_ek_from_file(&ek, cli_value(call, 'e'));
    if (r < 0) {
      ep_error_prefix(r, "--ek");
      return cli_fail();
    }
    req.tpm_ek = (ProtobufCBinaryData){ek.der_len, ek.der};
  }
  req.n_macs = n_macs;
  req.macs = (char **)macs;
  return host_call(call->client, "AddHost", &req.base, cli_flag(call, 'j'), print_added);
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
             cli_status_text(h->host_status));
  }
  l->total += page->n_hosts;
  *ret_next = page->next_page_token;
  return EXIT_SUCCESS;
}

static const list_kind hosts = {"ListHosts", &edgeprov__v1__list_hosts_response__descriptor, host_header, host_page,
                                "(no hosts; add one with: edgeprov host add --uuid UUID --serial SERIAL)"};

/* The host, and its timeline (with its instance and workflow when it has one). */
int ep_cli_host_show(cli_call *call) {
  ep_mgmt_client *client = call->client;
  const char *which = call->args[0];
  bool json = cli_flag(call, 'j');
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

int ep_cli_host_delete(cli_call *call) {
  Edgeprov__V1__DeleteHostRequest req = EDGEPROV__V1__DELETE_HOST_REQUEST__INIT;
  req.uuid = call->args[0];
  return cli_delete_record(call->client, "DeleteHost", &req.base, "host", req.uuid);
}

int ep_cli_host_list(cli_call *call) { return cli_list_all(call->client, &hosts, cli_flag(call, 'j')); }

/* The recovery key of a host's encrypted disk (edgeprovd logs the read, in its log and the
 * host's). The host by UUID, or by serial through GetHost. */
int ep_cli_host_recovery_key(cli_call *call) {
  const char *which = call->args[0];
  char uuid[EP_UUID_TEXT_LEN + 1];
  if (ep_validate_uuid(uuid, "uuid", which) < 0) {
    Edgeprov__V1__GetHostRequest get = EDGEPROV__V1__GET_HOST_REQUEST__INIT;
    get.serial = (char *)which;
    Edgeprov__V1__HostResponse *host = NULL;
    if (ep_mgmt_client_call(call->client, "GetHost", &get.base, &edgeprov__v1__host_response__descriptor,
                            (ProtobufCMessage **)&host) < 0)
      return cli_fail();
    snprintf(uuid, sizeof uuid, "%s", host->host->uuid);
    protobuf_c_message_free_unpacked(&host->base, NULL);
  }
  Edgeprov__V1__GetRecoveryKeyRequest req = EDGEPROV__V1__GET_RECOVERY_KEY_REQUEST__INIT;
  req.uuid = uuid;
  Edgeprov__V1__GetRecoveryKeyResponse *resp = NULL;
  if (ep_mgmt_client_call(call->client, "GetRecoveryKey", &req.base, &edgeprov__v1__get_recovery_key_response__descriptor,
                          (ProtobufCMessage **)&resp) < 0)
    return cli_fail();
  int status = EXIT_SUCCESS;
  if (cli_flag(call, 'j')) {
    /* The key as it is: printable ASCII, which edgeprovd checked when the node sent it. */
    json_t *o = json_pack("{s:s, s:s, s:I}", "uuid", uuid, "recovery_key", resp->recovery_key, "stored_at",
                          (json_int_t)resp->stored_at);
    status = cli_print_json(o, JSON_INDENT(2));
  } else {
    printf("%s\n", cli_shown(resp->recovery_key));
  }
  fflush(stdout);
  explicit_bzero(resp->recovery_key, strlen(resp->recovery_key));
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  return status;
}
