/* Onboarding against a real edgeprovd (storage-sqlite, auth-local) over the wire-compatible
 * onboardingmgr.v1 stream: pre-registered, unknown-then-added, REGISTERED, mismatched and
 * already-onboarded nodes, nZTP and non-ZTP, and no secret in logs or the inventory.
 * Usage: test_onboarding EDGEPROVD PLUGIN_DIR */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "daemon_harness.h"
#include "testutil.h"
#include "error.h"
#include "mgmt.h"
#include "onboarding.h"
#include "onboardingmgr/v1/onboarding.pb-c.h"
#include "rpc.h"

#define NODE_REGISTERED ONBOARDINGMGR__V1__ONBOARD_NODE_STREAM_RESPONSE__NODE_STATE__NODE_STATE_REGISTERED
#define NODE_ONBOARDED ONBOARDINGMGR__V1__ONBOARD_NODE_STREAM_RESPONSE__NODE_STATE__NODE_STATE_ONBOARDED

static const char *daemon_path, *plugin_dir;

typedef struct site {
  harness h;
  int port;
  char target[64];
  ep_mgmt_client *mgmt;
  ep_rpc_channel *south;
} site;

static int start_site(site *s, const char *mode) {
  char extra[128];
  snprintf(extra, sizeof extra, "provisioning = { mode = \"%s\"; };", mode);
  s->port = tu_free_port();
  if (harness_init_with(&s->h, daemon_path, plugin_dir, s->port,
                        "plugins = { enabled = [ \"storage-sqlite\", \"auth-local\" ]; };", extra) < 0 ||
      harness_start(&s->h) < 0)
    return -1;
  snprintf(s->target, sizeof s->target, "127.0.0.1:%d", s->port);
  if (ep_mgmt_client_new(&s->mgmt, s->h.address, NULL, NULL) < 0) return -1;
  return ep_rpc_channel_new(&s->south, s->target, NULL, 0);
}

static void stop_site(site *s) {
  ep_rpc_channel_free(s->south);
  ep_mgmt_client_free(s->mgmt);
  harness_signal(&s->h, SIGTERM);
  harness_cleanup(&s->h);
}

static int setup_nztp(void **state) {
  site *s = calloc(1, sizeof *s);
  *state = s;
  return start_site(s, "nztp");
}

static int setup_non_ztp(void **state) {
  site *s = calloc(1, sizeof *s);
  *state = s;
  return start_site(s, "non-ztp");
}

static int teardown(void **state) {
  stop_site(*state);
  free(*state);
  return 0;
}

static void add_host(site *s, const char *uuid, const char *serial, bool auto_onboard, const char *os) {
  Edgeprov__V1__AddHostRequest req = EDGEPROV__V1__ADD_HOST_REQUEST__INIT;
  req.uuid = (char *)uuid;
  req.serial = (char *)serial;
  req.auto_onboard = auto_onboard;
  if (os) req.os_profile = (char *)os;
  ProtobufCMessage *reply = NULL;
  if (ep_mgmt_client_call(s->mgmt, "AddHost", &req.base, &edgeprov__v1__host_response__descriptor, &reply) < 0)
    fail_msg("AddHost: %s", ep_error_message());
  protobuf_c_message_free_unpacked(reply, NULL);
}

static void set_desired(site *s, const char *uuid, Edgeprov__V1__HostState desired) {
  Edgeprov__V1__SetDesiredStateRequest req = EDGEPROV__V1__SET_DESIRED_STATE_REQUEST__INIT;
  req.uuid = (char *)uuid;
  req.desired_state = desired;
  ProtobufCMessage *reply = NULL;
  if (ep_mgmt_client_call(s->mgmt, "SetDesiredState", &req.base, &edgeprov__v1__host_response__descriptor, &reply) < 0)
    fail_msg("SetDesiredState: %s", ep_error_message());
  protobuf_c_message_free_unpacked(reply, NULL);
}

static Edgeprov__V1__HostResponse *get_host(site *s, const char *uuid) {
  Edgeprov__V1__GetHostRequest req = EDGEPROV__V1__GET_HOST_REQUEST__INIT;
  req.uuid = (char *)uuid;
  ProtobufCMessage *reply = NULL;
  if (ep_mgmt_client_call(s->mgmt, "GetHost", &req.base, &edgeprov__v1__host_response__descriptor, &reply) < 0)
    fail_msg("GetHost: %s", ep_error_message());
  return (Edgeprov__V1__HostResponse *)reply;
}

static ep_rpc_stream *open_stream(site *s) {
  ep_rpc_stream *stream = NULL;
  assert_int_equal(ep_rpc_stream_open(&stream, s->south, EP_ONBOARDING_SERVICE_STREAM, NULL, 0, NULL, 0, 10000), 0);
  return stream;
}

static void send_identity(ep_rpc_stream *stream, const char *uuid, const char *serial) {
  Onboardingmgr__V1__OnboardNodeStreamRequest req = ONBOARDINGMGR__V1__ONBOARD_NODE_STREAM_REQUEST__INIT;
  req.uuid = (char *)uuid;
  req.serialnum = (char *)serial;
  req.mac_id = "52:54:00:12:34:56";
  req.host_ip = "10.0.2.15";
  uint8_t buf[512];
  size_t len = onboardingmgr__v1__onboard_node_stream_request__pack(&req, buf);
  assert_int_equal(ep_rpc_stream_send(stream, buf, len), 0);
}

static Onboardingmgr__V1__OnboardNodeStreamResponse *read_response(ep_rpc_stream *stream) {
  uint8_t *data = NULL;
  size_t len = 0;
  if (ep_rpc_stream_read(stream, &data, &len) != 1) return NULL;
  Onboardingmgr__V1__OnboardNodeStreamResponse *resp =
      onboardingmgr__v1__onboard_node_stream_response__unpack(NULL, len, data);
  free(data);
  assert_non_null(resp);
  return resp;
}

static ep_rpc_result close_stream(ep_rpc_stream *stream) {
  ep_rpc_result r;
  ep_rpc_stream_close(stream, &r);
  return r;
}

#define UUID_A "11111111-1111-4111-8111-111111111111"
#define UUID_B "22222222-2222-4222-8222-222222222222"

static void pre_registered_node_onboards_and_gets_an_instance(void **state) {
  site *s = *state;
  add_host(s, UUID_A, "SERIALA1", true, "ubuntu-22.04");
  ep_rpc_stream *stream = open_stream(s);
  send_identity(stream, UUID_A, "SERIALA1");
  Onboardingmgr__V1__OnboardNodeStreamResponse *resp = read_response(stream);
  assert_non_null(resp);
  assert_int_equal(resp->status->code, 0);
  assert_int_equal(resp->node_state, NODE_ONBOARDED);
  assert_string_equal(resp->client_id, "edgenode-" UUID_A);
  assert_int_equal(strlen(resp->client_secret), 43);
  assert_string_equal(resp->project_id, "edgeprov");
  char secret[64];
  snprintf(secret, sizeof secret, "%s", resp->client_secret);
  onboardingmgr__v1__onboard_node_stream_response__free_unpacked(resp, NULL);
  assert_null(read_response(stream)); /* the service closes the stream */
  ep_rpc_result r = close_stream(stream);
  assert_int_equal(r.status, 0);

  Edgeprov__V1__HostResponse *host = get_host(s, UUID_A);
  assert_int_equal(host->host->current_state, EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED);
  assert_string_equal(host->host->ip, "10.0.2.15");
  assert_true(host->host->instance_id[0] != '\0'); /* nZTP */
  protobuf_c_message_free_unpacked(&host->base, NULL);

  /* The secret is nowhere but in the node's reply: not in the log, not in the store. */
  char cmd[512];
  snprintf(cmd, sizeof cmd, "grep -rqa -- '%s' '%s'", secret, s->h.dir);
  assert_int_not_equal(system(cmd), 0);

  /* Credentials are issued once. */
  stream = open_stream(s);
  send_identity(stream, UUID_A, "SERIALA1");
  assert_null(read_response(stream));
  r = close_stream(stream);
  assert_int_equal(r.status, EP_STATUS_FAILED_PRECONDITION);
  assert_non_null(strstr(r.message, "already has credentials"));
}

static void unknown_node_waits_then_onboards(void **state) {
  site *s = *state;
  ep_rpc_stream *stream = open_stream(s);
  send_identity(stream, UUID_B, "SERIALB2");
  Onboardingmgr__V1__OnboardNodeStreamResponse *resp = read_response(stream);
  assert_int_equal(resp->status->code, EP_STATUS_NOT_FOUND);
  assert_non_null(strstr(resp->status->message, "is not registered"));
  onboardingmgr__v1__onboard_node_stream_response__free_unpacked(resp, NULL);
  add_host(s, UUID_B, "SERIALB2", true, NULL);
  send_identity(stream, UUID_B, "SERIALB2"); /* the stream stayed open */
  resp = read_response(stream);
  assert_int_equal(resp->node_state, NODE_ONBOARDED);
  onboardingmgr__v1__onboard_node_stream_response__free_unpacked(resp, NULL);
  assert_null(read_response(stream)); /* the service ends the stream after the credentials */
  assert_int_equal(close_stream(stream).status, 0);
  Edgeprov__V1__HostResponse *host = get_host(s, UUID_B);
  assert_string_equal(host->host->instance_id, ""); /* no OS profile: no instance */
  protobuf_c_message_free_unpacked(&host->base, NULL);
}

static void registered_node_waits(void **state) {
  site *s = *state;
  add_host(s, UUID_A, "SERIALA1", false, "ubuntu-22.04");
  ep_rpc_stream *stream = open_stream(s);
  for (int i = 0; i < 2; i++) {
    send_identity(stream, UUID_A, "SERIALA1");
    Onboardingmgr__V1__OnboardNodeStreamResponse *resp = read_response(stream);
    assert_int_equal(resp->status->code, 0);
    assert_int_equal(resp->node_state, NODE_REGISTERED);
    assert_string_equal(resp->client_secret, "");
    onboardingmgr__v1__onboard_node_stream_response__free_unpacked(resp, NULL);
  }
  Edgeprov__V1__HostResponse *host = get_host(s, UUID_A);
  assert_int_equal(host->host->current_state, EDGEPROV__V1__HOST_STATE__HOST_STATE_REGISTERED);
  assert_string_equal(host->host->host_status->message, "Registered, waiting for approval");
  protobuf_c_message_free_unpacked(&host->base, NULL);

  /* The operator approves; the node's next attempt on the same stream onboards. */
  set_desired(s, UUID_A, EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED);
  send_identity(stream, UUID_A, "SERIALA1");
  Onboardingmgr__V1__OnboardNodeStreamResponse *resp = read_response(stream);
  assert_int_equal(resp->node_state, NODE_ONBOARDED);
  onboardingmgr__v1__onboard_node_stream_response__free_unpacked(resp, NULL);
  close_stream(stream);
}

static char *onboard_once(site *s, const char *uuid, const char *serial) {
  ep_rpc_stream *stream = open_stream(s);
  send_identity(stream, uuid, serial);
  Onboardingmgr__V1__OnboardNodeStreamResponse *resp = read_response(stream);
  char *secret = resp && resp->node_state == NODE_ONBOARDED ? strdup(resp->client_secret) : NULL;
  if (resp) onboardingmgr__v1__onboard_node_stream_response__free_unpacked(resp, NULL);
  close_stream(stream);
  return secret;
}

static void invalidate_then_approve_rearms_and_delete_revokes(void **state) {
  site *s = *state;
  add_host(s, UUID_A, "SERIALA1", true, NULL);
  char *first = onboard_once(s, UUID_A, "SERIALA1");
  assert_non_null(first);
  assert_null(onboard_once(s, UUID_A, "SERIALA1")); /* issued once */
  set_desired(s, UUID_A, EDGEPROV__V1__HOST_STATE__HOST_STATE_UNTRUSTED);
  set_desired(s, UUID_A, EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED);
  char *second = onboard_once(s, UUID_A, "SERIALA1");
  assert_non_null(second);
  assert_string_not_equal(first, second);
  /* Deleting the host revokes its credentials: added again, it onboards again. */
  Edgeprov__V1__DeleteHostRequest del = EDGEPROV__V1__DELETE_HOST_REQUEST__INIT;
  del.uuid = UUID_A;
  ProtobufCMessage *reply = NULL;
  assert_int_equal(ep_mgmt_client_call(s->mgmt, "DeleteHost", &del.base, &edgeprov__v1__delete_response__descriptor, &reply), 0);
  protobuf_c_message_free_unpacked(reply, NULL);
  add_host(s, UUID_A, "SERIALA1", true, NULL);
  char *third = onboard_once(s, UUID_A, "SERIALA1");
  assert_non_null(third);
  free(first);
  free(second);
  free(third);
}

static void mismatched_serial_is_refused_and_recorded(void **state) {
  site *s = *state;
  add_host(s, UUID_A, "SERIALA1", true, NULL);
  ep_rpc_stream *stream = open_stream(s);
  send_identity(stream, UUID_A, "OTHERSER9");
  assert_null(read_response(stream));
  ep_rpc_result r = close_stream(stream);
  assert_int_equal(r.status, EP_STATUS_FAILED_PRECONDITION);
  assert_non_null(strstr(r.message, "UUID/serial mismatch"));
  Edgeprov__V1__HostResponse *host = get_host(s, UUID_A);
  assert_non_null(strstr(host->host->registration_status->message, "UUID/serial mismatch"));
  assert_int_equal(host->host->registration_status->indicator, EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_ERROR);
  assert_int_not_equal(host->host->current_state, EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED);
  protobuf_c_message_free_unpacked(&host->base, NULL);
}

static void invalid_fields_are_named(void **state) {
  site *s = *state;
  ep_rpc_stream *stream = open_stream(s);
  send_identity(stream, "not-a-uuid", "SERIALA1");
  assert_null(read_response(stream));
  ep_rpc_result r = close_stream(stream);
  assert_int_equal(r.status, EP_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(r.message, "uuid: 'not-a-uuid' is not a UUID"));
}

static void non_ztp_waits_for_the_operator(void **state) {
  site *s = *state;
  add_host(s, UUID_A, "SERIALA1", true, "ubuntu-22.04");
  ep_rpc_stream *stream = open_stream(s);
  send_identity(stream, UUID_A, "SERIALA1");
  Onboardingmgr__V1__OnboardNodeStreamResponse *resp = read_response(stream);
  assert_int_equal(resp->node_state, NODE_ONBOARDED);
  onboardingmgr__v1__onboard_node_stream_response__free_unpacked(resp, NULL);
  close_stream(stream);
  Edgeprov__V1__HostResponse *host = get_host(s, UUID_A);
  assert_int_equal(host->host->current_state, EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED);
  assert_string_equal(host->host->instance_id, "");
  protobuf_c_message_free_unpacked(&host->base, NULL);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: test_onboarding EDGEPROVD PLUGIN_DIR\n");
    return 2;
  }
  daemon_path = argv[1];
  plugin_dir = argv[2];
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(pre_registered_node_onboards_and_gets_an_instance, setup_nztp, teardown),
      cmocka_unit_test_setup_teardown(unknown_node_waits_then_onboards, setup_nztp, teardown),
      cmocka_unit_test_setup_teardown(registered_node_waits, setup_nztp, teardown),
      cmocka_unit_test_setup_teardown(mismatched_serial_is_refused_and_recorded, setup_nztp, teardown),
      cmocka_unit_test_setup_teardown(invalid_fields_are_named, setup_nztp, teardown),
      cmocka_unit_test_setup_teardown(non_ztp_waits_for_the_operator, setup_non_ztp, teardown),
      cmocka_unit_test_setup_teardown(invalidate_then_approve_rearms_and_delete_revokes, setup_non_ztp, teardown),
  };
  return cmocka_run_group_tests_name("onboarding", tests, NULL, NULL);
}
