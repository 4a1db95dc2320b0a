/* Onboarding against a real edgeprovd (storage-sqlite, auth-local) over the wire-compatible
 * onboardingmgr.v1 stream: pre-registered, unknown-then-added, REGISTERED, mismatched and
 * already-onboarded nodes, nZTP and non-ZTP, no secret in logs or the inventory, and the
 * attacks of SECURITY.md finding 1 and 2 (posing as another node, enumeration, floods).
 * Usage: test_onboarding EDGEPROVD PLUGIN_DIR */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "daemon_harness.h"
#include "testutil.h"
#include "base/error.h"
#include "northbound/mgmt.h"
#include "southbound/onboarding.h"
#include "onboardingmgr/v1/onboarding.pb-c.h"
#include "edgeprov/v1/node.pb-c.h"
#include "edgeprov/v1/management.pb-c.h"
#include "net/rpc.h"

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

static int start_site_with(site *s, const char *mode, const char *more) {
  char extra[512];
  snprintf(extra, sizeof extra, "provisioning = { mode = \"%s\"; }; %s", mode, more);
  s->port = tu_free_port();
  if (harness_init_with(&s->h, daemon_path, plugin_dir, s->port,
                        "plugins = { enabled = [ \"storage-sqlite\", \"auth-local\" ]; };", extra) < 0 ||
      harness_start(&s->h) < 0)
    return -1;
  snprintf(s->target, sizeof s->target, "127.0.0.1:%d", s->port);
  if (ep_mgmt_client_new(&s->mgmt, s->h.address, NULL, NULL) < 0) return -1;
  return ep_rpc_channel_new(&s->south, s->target, NULL, 0);
}

/* A site that serves CreateNodes (onboarding.create_nodes) with an operator token. */
#define OPERATOR_TOKEN "operator-token-of-32-characters!"
static int setup_create_nodes(void **state) {
  site *s = calloc(1, sizeof *s);
  *state = s;
  char token_file[] = "/tmp/edgeprov-operator-token-XXXXXX", extra[512];
  int fd = mkstemp(token_file);
  if (fd < 0 || write(fd, OPERATOR_TOKEN "\n", strlen(OPERATOR_TOKEN) + 1) < 0) return -1;
  close(fd);
  snprintf(extra, sizeof extra,
           "provisioning = { mode = \"nztp\"; }; auth = { operator_token_file = \"%s\"; }; "
           "onboarding = { create_nodes = true; };",
           token_file);
  s->port = tu_free_port();
  int r = harness_init_with(&s->h, daemon_path, plugin_dir, s->port,
                            "plugins = { enabled = [ \"storage-sqlite\", \"auth-local\" ]; };", extra);
  if (r == 0) r = harness_start(&s->h);
  unlink(token_file);
  snprintf(s->target, sizeof s->target, "127.0.0.1:%d", s->port);
  if (r == 0) r = ep_mgmt_client_new(&s->mgmt, s->h.address, NULL, NULL);
  return r < 0 ? r : ep_rpc_channel_new(&s->south, s->target, NULL, 0);
}

static void stop_site(site *s) {
  ep_rpc_channel_free(s->south);
  ep_mgmt_client_free(s->mgmt);
  harness_signal(&s->h, SIGTERM);
  harness_cleanup(&s->h);
}

static int start_site(site *s, const char *mode) { return start_site_with(s, mode, ""); }

static int setup_nztp(void **state) {
  site *s = calloc(1, sizeof *s);
  *state = s;
  return start_site(s, "nztp");
}

/* Small southbound budgets, to reach them in a test. */
static int setup_budgets(void **state) {
  site *s = calloc(1, sizeof *s);
  *state = s;
  return start_site_with(s, "nztp", "southbound = { unknown_streams_max = 3; first_message_s = 1; };");
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

#define NODE_MAC "52:54:00:12:34:56"

/* Sends one request; returns what the send returned (a stream the server finished refuses). */
static int send_request(ep_rpc_stream *stream, const char *uuid, const char *serial, const char *mac, const char *ip) {
  Onboardingmgr__V1__OnboardNodeStreamRequest req = ONBOARDINGMGR__V1__ONBOARD_NODE_STREAM_REQUEST__INIT;
  req.uuid = (char *)uuid;
  req.serialnum = (char *)serial;
  req.mac_id = (char *)mac;
  req.host_ip = (char *)ip;
  uint8_t buf[512];
  size_t len = onboardingmgr__v1__onboard_node_stream_request__pack(&req, buf);
  return ep_rpc_stream_send(stream, buf, len);
}

/* The send's own result is not asserted: when the server answers and ends the stream at once
 * (credentials issued, a request refused), gRPC may complete the send after the stream's end
 * and report it cancelled (-ECANCELED, seen 1 run in 24 under load). What the server did is
 * read from the reply and the stream's status, which every test checks. */
static void send_identity(ep_rpc_stream *stream, const char *uuid, const char *serial) {
  send_request(stream, uuid, serial, NODE_MAC, "10.0.2.15");
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
  assert_int_equal(tu_grep_tree(s->h.dir, secret), 1);

  /* Credentials are issued once: a second request while they may still be on their way (not
   * used yet, issued less than southbound.unfinished_onboarding_s ago) is asked to come back;
   * once the node has used them, it is refused (agent.sh). */
  stream = open_stream(s);
  send_identity(stream, UUID_A, "SERIALA1");
  assert_null(read_response(stream));
  r = close_stream(stream);
  assert_int_equal(r.status, EP_STATUS_UNAVAILABLE);
  assert_non_null(strstr(r.message, "in progress, or its answer was lost; ask again in"));
}

/* An answer lost after the host was recorded ONBOARDED (its replica died before it went out):
 * the node asks again, is told to come back while the credentials could still be on their
 * way, and once they are older than southbound.unfinished_onboarding_s (10 s here) and were
 * never used, gets new ones. The host keeps its one instance. */
static int setup_short_unfinished(void **state) {
  site *s = calloc(1, sizeof *s);
  *state = s;
  return start_site_with(s, "nztp", "southbound = { unfinished_onboarding_s = 10; };");
}

static char *onboard_secret(site *s, const char *uuid, const char *serial, ep_rpc_result *ret) {
  ep_rpc_stream *stream = open_stream(s);
  send_identity(stream, uuid, serial);
  Onboardingmgr__V1__OnboardNodeStreamResponse *resp = read_response(stream);
  char *secret = resp && resp->node_state == NODE_ONBOARDED ? strdup(resp->client_secret) : NULL;
  if (resp) onboardingmgr__v1__onboard_node_stream_response__free_unpacked(resp, NULL);
  if (resp) assert_null(read_response(stream)); /* the service ends the stream once it is done */
  *ret = close_stream(stream);
  return secret;
}

static void a_lost_answer_is_made_good_once_the_credentials_are_stale(void **state) {
  site *s = *state;
  add_host(s, UUID_A, "SERIALA1", true, "ubuntu-22.04");
  ep_rpc_result r;
  char *lost = onboard_secret(s, UUID_A, "SERIALA1", &r); /* the answer the node never got */
  assert_non_null(lost);
  Edgeprov__V1__HostResponse *host = get_host(s, UUID_A);
  assert_true(host->host->credentials_unused);
  char instance[64];
  snprintf(instance, sizeof instance, "%s", host->host->instance_id);
  assert_true(instance[0] != '\0');
  protobuf_c_message_free_unpacked(&host->base, NULL);

  assert_null(onboard_secret(s, UUID_A, "SERIALA1", &r));
  assert_int_equal(r.status, EP_STATUS_UNAVAILABLE);
  assert_non_null(strstr(r.message, "ask again in"));
  sleep(11);
  char *second = onboard_secret(s, UUID_A, "SERIALA1", &r);
  assert_int_equal(r.status, 0);
  assert_non_null(second);
  assert_string_not_equal(second, lost);
  host = get_host(s, UUID_A);
  assert_int_equal(host->host->current_state, EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED);
  assert_true(host->host->credentials_unused);
  assert_string_equal(host->host->instance_id, instance);
  protobuf_c_message_free_unpacked(&host->base, NULL);
  /* The new ones are as fresh as the first were: asked again at once, the node comes back later. */
  assert_null(onboard_secret(s, UUID_A, "SERIALA1", &r));
  assert_int_equal(r.status, EP_STATUS_UNAVAILABLE);
  char *log = tu_slurp(s->h.log_path);
  assert_non_null(log);
  assert_non_null(strstr(log, "credentials handed out and never used"));
  assert_null(strstr(log, lost));
  assert_null(strstr(log, second));
  free(log);
  free(lost);
  free(second);
}

static void unknown_node_waits_then_onboards(void **state) {
  site *s = *state;
  ep_rpc_stream *stream = open_stream(s);
  send_identity(stream, UUID_B, "SERIALB2");
  Onboardingmgr__V1__OnboardNodeStreamResponse *resp = read_response(stream);
  assert_non_null(resp);
  assert_int_equal(resp->status->code, EP_STATUS_NOT_FOUND);
  assert_non_null(strstr(resp->status->message, "is not registered"));
  onboardingmgr__v1__onboard_node_stream_response__free_unpacked(resp, NULL);
  add_host(s, UUID_B, "SERIALB2", true, NULL);
  send_identity(stream, UUID_B, "SERIALB2"); /* the stream stayed open */
  resp = read_response(stream);
  assert_non_null(resp);
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

/* The answer to one request on a fresh stream: "CODE MESSAGE" of the reply, or of the
 * stream's end when there was no reply, and the node state; *ret_secret gets any secret. */
static void ask_once(site *s, const char *uuid, const char *serial, const char *mac, const char *ip, char *answer,
                     size_t cap, int *ret_state, bool *ret_secret) {
  ep_rpc_stream *stream = open_stream(s);
  send_request(stream, uuid, serial, mac, ip);
  Onboardingmgr__V1__OnboardNodeStreamResponse *resp = read_response(stream);
  *ret_state = resp ? (int)resp->node_state : -1;
  *ret_secret = resp && resp->client_secret[0];
  if (resp) snprintf(answer, cap, "%d %.200s", resp->status->code, resp->status->message);
  if (resp) onboardingmgr__v1__onboard_node_stream_response__free_unpacked(resp, NULL);
  ep_rpc_result r = close_stream(stream);
  if (!resp) snprintf(answer, cap, "%d %.200s", r.status, r.message);
  ep_rpc_result_clear(&r);
}

/* Finding 1: every registered identifier must match; the attacker learns nothing, gets
 * nothing, changes nothing, and the real node then onboards. */
static void a_node_must_match_every_registered_identifier(void **state) {
  site *s = *state;
  Edgeprov__V1__AddHostRequest req = EDGEPROV__V1__ADD_HOST_REQUEST__INIT;
  char *macs[] = {"52:54:00:aa:bb:01", NODE_MAC};
  req.uuid = UUID_A;
  req.serial = "SERIALA1";
  req.macs = macs;
  req.n_macs = 2;
  req.auto_onboard = true;
  ProtobufCMessage *reply = NULL;
  assert_int_equal(ep_mgmt_client_call(s->mgmt, "AddHost", &req.base, &edgeprov__v1__host_response__descriptor, &reply), 0);
  protobuf_c_message_free_unpacked(reply, NULL);

  char unknown[300], answer[300];
  int node_state;
  bool secret;
  /* What an unknown node hears (same serial and MAC, another UUID). */
  ask_once(s, UUID_B, "SERIALA1", NODE_MAC, "10.6.6.6", unknown, sizeof unknown, &node_state, &secret);
  assert_non_null(strstr(unknown, "is not registered"));
  const struct {
    const char *uuid, *serial, *mac;
  } attempts[] = {
      {UUID_A, "", NODE_MAC},                   /* the UUID without the serial */
      {UUID_A, "SERIALA1", ""},                 /* without a MAC */
      {UUID_A, "SERIALA1", "52:54:00:66:66:66"}, /* with another MAC */
      {UUID_A, "WRONGSER", NODE_MAC},           /* another serial */
  };
  for (size_t i = 0; i < sizeof attempts / sizeof attempts[0]; i++) {
    ask_once(s, attempts[i].uuid, attempts[i].serial, attempts[i].mac, "10.6.6.6", answer, sizeof answer, &node_state, &secret);
    assert_false(secret);
    assert_int_equal(node_state, ONBOARDINGMGR__V1__ONBOARD_NODE_STREAM_RESPONSE__NODE_STATE__NODE_STATE_UNSPECIFIED);
    /* The same code and words as for the unknown node: no enumeration oracle. */
    char expected[300];
    snprintf(expected, sizeof expected, "5 node uuid %s serial %s is not registered (or not with these identifiers)",
             attempts[i].uuid, attempts[i].serial);
    assert_string_equal(answer, expected);
  }
  /* The serial alone is no identity at all. */
  ask_once(s, "", "SERIALA1", NODE_MAC, "10.6.6.6", answer, sizeof answer, &node_state, &secret);
  assert_false(secret);
  assert_non_null(strstr(answer, "uuid: required"));

  Edgeprov__V1__HostResponse *host = get_host(s, UUID_A);
  assert_int_not_equal(host->host->current_state, EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED);
  assert_string_equal(host->host->ip, ""); /* the attacker's address was not recorded */
  assert_non_null(strstr(host->host->registration_status->message, "Onboarding refused"));
  assert_int_equal(host->host->registration_status->indicator, EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_ERROR);
  protobuf_c_message_free_unpacked(&host->base, NULL);

  /* The real node, with everything it was registered with, onboards. */
  ask_once(s, UUID_A, "SERIALA1", NODE_MAC, "10.0.2.15", answer, sizeof answer, &node_state, &secret);
  assert_int_equal(node_state, NODE_ONBOARDED);
  assert_true(secret);
  host = get_host(s, UUID_A);
  assert_string_equal(host->host->ip, "10.0.2.15");
  assert_string_equal(host->host->peer_ip, "127.0.0.1"); /* what the server saw, next to what the node says */
  protobuf_c_message_free_unpacked(&host->base, NULL);
}

/* Finding 1: one address cannot ask without end. */
static void onboarding_attempts_are_rate_limited_per_peer(void **state) {
  site *s = *state;
  ep_rpc_stream *stream = open_stream(s);
  int answered = 0;
  for (int i = 0; i < 40; i++) {
    if (send_request(stream, UUID_B, "SERIALB2", NODE_MAC, "10.0.2.15") < 0) break;
    Onboardingmgr__V1__OnboardNodeStreamResponse *resp = read_response(stream);
    if (!resp) break;
    answered++;
    onboardingmgr__v1__onboard_node_stream_response__free_unpacked(resp, NULL);
  }
  ep_rpc_result r = close_stream(stream);
  assert_in_range(answered, 15, 30); /* the burst, and what refilled meanwhile */
  assert_int_equal(r.status, EP_STATUS_RESOURCE_EXHAUSTED);
  assert_non_null(strstr(r.message, "too many onboarding attempts from 127.0.0.1; ask again in"));
  ep_rpc_result_clear(&r);
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Unknown nodes flooding from one address spend that address's budget, not a registered
 * node's: the registered node behind the same address (one NAT) still onboards at once. */
static void a_flood_of_unknown_nodes_does_not_stop_a_registered_one(void **state) {
  site *s = *state;
  add_host(s, UUID_A, "SERIALA1", true, NULL);
  ep_rpc_stream *flood = open_stream(s);
  for (int i = 0; i < 40; i++) {
    if (send_request(flood, UUID_B, "SERIALB2", NODE_MAC, "10.0.2.15") < 0) break;
    Onboardingmgr__V1__OnboardNodeStreamResponse *resp = read_response(flood);
    if (!resp) break;
    onboardingmgr__v1__onboard_node_stream_response__free_unpacked(resp, NULL);
  }
  ep_rpc_result r = close_stream(flood);
  assert_int_equal(r.status, EP_STATUS_RESOURCE_EXHAUSTED); /* 127.0.0.1's budget is spent */
  ep_rpc_result_clear(&r);
  double t0 = now_s();
  ep_rpc_stream *stream = open_stream(s);
  send_identity(stream, UUID_A, "SERIALA1");
  Onboardingmgr__V1__OnboardNodeStreamResponse *resp = read_response(stream);
  assert_non_null(resp);
  assert_int_equal(resp->node_state, NODE_ONBOARDED);
  onboardingmgr__v1__onboard_node_stream_response__free_unpacked(resp, NULL);
  assert_true(now_s() - t0 < 2.0);
  assert_null(read_response(stream)); /* the service ends the stream after the credentials */
  r = close_stream(stream);
  assert_int_equal(r.status, 0);
}

/* southbound.unknown_streams_max streams of unknown nodes wait at once; the next is refused at
 * once with when to ask again, and a place frees when one ends. */
static void unknown_streams_are_bounded(void **state) {
  site *s = *state;
  ep_rpc_stream *waiting[3];
  for (int i = 0; i < 3; i++) {
    waiting[i] = open_stream(s);
    send_identity(waiting[i], UUID_B, "SERIALB2");
    Onboardingmgr__V1__OnboardNodeStreamResponse *resp = read_response(waiting[i]);
    assert_non_null(resp);
    assert_int_equal(resp->status->code, EP_STATUS_NOT_FOUND);
    onboardingmgr__v1__onboard_node_stream_response__free_unpacked(resp, NULL);
  }
  ep_rpc_stream *extra = open_stream(s);
  send_identity(extra, UUID_B, "SERIALB2");
  assert_null(read_response(extra));
  ep_rpc_result r = close_stream(extra);
  assert_int_equal(r.status, EP_STATUS_RESOURCE_EXHAUSTED);
  assert_non_null(strstr(r.message, "too many unregistered nodes are waiting (southbound.unknown_streams_max); ask again in"));
  ep_rpc_result_clear(&r);
  /* A registered node is not counted. */
  add_host(s, UUID_A, "SERIALA1", false, NULL);
  ep_rpc_stream *known = open_stream(s);
  send_identity(known, UUID_A, "SERIALA1");
  Onboardingmgr__V1__OnboardNodeStreamResponse *resp = read_response(known);
  assert_non_null(resp);
  assert_int_equal(resp->node_state, NODE_REGISTERED);
  onboardingmgr__v1__onboard_node_stream_response__free_unpacked(resp, NULL);
  close_stream(known);
  /* One unknown stream ends: its place is given to the next. */
  close_stream(waiting[0]);
  bool admitted = false;
  for (int attempt = 0; attempt < 50 && !admitted; attempt++) {
    usleep(100 * 1000);
    ep_rpc_stream *again = open_stream(s);
    send_identity(again, UUID_B, "SERIALB2");
    resp = read_response(again);
    admitted = resp && resp->status->code == EP_STATUS_NOT_FOUND;
    if (resp) onboardingmgr__v1__onboard_node_stream_response__free_unpacked(resp, NULL);
    ep_rpc_result end = close_stream(again);
    ep_rpc_result_clear(&end);
  }
  assert_true(admitted);
  for (int i = 1; i < 3; i++) close_stream(waiting[i]);
}

/* A stream that never says who it is ends after southbound.first_message_s. */
static void a_silent_stream_is_ended(void **state) {
  site *s = *state;
  double t0 = now_s();
  ep_rpc_stream *silent = open_stream(s);
  assert_null(read_response(silent));
  ep_rpc_result r = close_stream(silent);
  double waited = now_s() - t0;
  assert_int_equal(r.status, EP_STATUS_RESOURCE_EXHAUSTED);
  assert_non_null(strstr(r.message, "no request within 1000 ms"));
  assert_true(waited >= 0.9 && waited < 5.0);
  ep_rpc_result_clear(&r);
}

/* Finding 2: an invalidated host stays invalidated, whatever its node sends; and what a
 * node repeats is not written again. */
static void invalidated_stays_invalidated_and_repeats_write_nothing(void **state) {
  site *s = *state;
  add_host(s, UUID_A, "SERIALA1", false, NULL);
  ep_rpc_stream *stream = open_stream(s);
  uint64_t revision = 0;
  for (int i = 0; i < 5; i++) {
    send_identity(stream, UUID_A, "SERIALA1");
    Onboardingmgr__V1__OnboardNodeStreamResponse *resp = read_response(stream);
    assert_int_equal(resp->node_state, NODE_REGISTERED);
    onboardingmgr__v1__onboard_node_stream_response__free_unpacked(resp, NULL);
    Edgeprov__V1__HostResponse *host = get_host(s, UUID_A);
    if (i == 0) revision = host->host->revision;
    assert_int_equal(host->host->revision, revision); /* the same message again changes nothing */
    protobuf_c_message_free_unpacked(&host->base, NULL);
  }
  close_stream(stream);

  set_desired(s, UUID_A, EDGEPROV__V1__HOST_STATE__HOST_STATE_UNTRUSTED);
  char answer[300];
  int node_state;
  bool secret;
  ask_once(s, UUID_A, "SERIALA1", NODE_MAC, "10.9.9.9", answer, sizeof answer, &node_state, &secret);
  assert_false(secret);
  assert_non_null(strstr(answer, "invalidated by an operator"));
  Edgeprov__V1__HostResponse *host = get_host(s, UUID_A);
  assert_int_equal(host->host->current_state, EDGEPROV__V1__HOST_STATE__HOST_STATE_UNTRUSTED);
  assert_string_equal(host->host->ip, "10.0.2.15"); /* not the invalidated node's new claim */
  protobuf_c_message_free_unpacked(&host->base, NULL);
}

/* One CreateNodes call registering uuid; returns the gRPC status (message into *out). */
static int create_nodes(site *s, const char *authorization, const char *uuid, ep_rpc_result *out) {
  Onboardingmgr__V1__HwData hw = ONBOARDINGMGR__V1__HW_DATA__INIT;
  hw.uuid = (char *)uuid;
  hw.serialnum = "CREATED1";
  hw.mac_id = "52:54:00:AA:BB:CC";
  Onboardingmgr__V1__HwData *hws[] = {&hw};
  Onboardingmgr__V1__NodeData node = ONBOARDINGMGR__V1__NODE_DATA__INIT;
  node.hwdata = hws;
  node.n_hwdata = 1;
  Onboardingmgr__V1__NodeData *nodes[] = {&node};
  Onboardingmgr__V1__CreateNodesRequest req = ONBOARDINGMGR__V1__CREATE_NODES_REQUEST__INIT;
  req.payload = nodes;
  req.n_payload = 1;
  uint8_t buf[512];
  size_t len = onboardingmgr__v1__create_nodes_request__pack(&req, buf);
  ep_rpc_metadata md = {"authorization", authorization};
  assert_int_equal(ep_rpc_unary(s->south, EP_ONBOARDING_SERVICE_CREATE, authorization ? &md : NULL, authorization ? 1 : 0,
                                buf, len, 10000, out),
                   0);
  return out->status;
}

/* Finding 9: CreateNodes is not served unless the site enables it, even to the operator. */
/* UploadBootLog: the node names itself; only a registered host with all its identifiers gets
 * its lines kept (masked, marked as sent without a token), bounded, one upload every 10
 * minutes per host. */
static int upload_boot_log(site *s, const char *uuid, const char *serial, char **lines, size_t count, ep_rpc_result *out) {
  Edgeprov__V1__UploadBootLogRequest req = EDGEPROV__V1__UPLOAD_BOOT_LOG_REQUEST__INIT;
  req.uuid = (char *)uuid;
  req.serialnum = (char *)serial;
  req.lines = lines;
  req.n_lines = count;
  size_t len = edgeprov__v1__upload_boot_log_request__get_packed_size(&req);
  uint8_t *buf = malloc(len);
  edgeprov__v1__upload_boot_log_request__pack(&req, buf);
  assert_int_equal(ep_rpc_unary(s->south, EP_NODE_SERVICE_UPLOAD_BOOT_LOG, NULL, 0, buf, len, 10000, out), 0);
  free(buf);
  if (out->status == EP_STATUS_OK) {
    Edgeprov__V1__UploadBootLogResponse *resp = edgeprov__v1__upload_boot_log_response__unpack(NULL, out->len, out->data);
    assert_non_null(resp);
    assert_int_equal(resp->kept, count);
    edgeprov__v1__upload_boot_log_response__free_unpacked(resp, NULL);
  }
  free(out->data); /* the status and message stay */
  out->data = NULL;
  out->len = 0;
  return out->status;
}

static void a_refused_node_can_leave_its_boot_log(void **state) {
  site *s = *state;
  add_host(s, UUID_A, "SERIALA1", false, NULL);
  char *lines[] = {"Linux version 6.1.0", "edgeprov-microos: network up", "db_password=hunter2-in-boot"};
  ep_rpc_result r;
  assert_int_equal(upload_boot_log(s, UUID_A, "WRONGSER", lines, 3, &r), EP_STATUS_NOT_FOUND); /* a mismatch */
  assert_int_equal(upload_boot_log(s, UUID_B, "SERIALB2", lines, 3, &r), EP_STATUS_NOT_FOUND); /* unknown */
  assert_non_null(strstr(r.message, "is not registered"));
  char *many[EP_BOOT_LOG_LINES_MAX + 1];
  for (size_t i = 0; i <= EP_BOOT_LOG_LINES_MAX; i++) many[i] = "x";
  assert_int_equal(upload_boot_log(s, UUID_A, "SERIALA1", many, EP_BOOT_LOG_LINES_MAX + 1, &r), EP_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(r.message, "lines: 257"));
  char *control[] = {"bad\x1b[2Jline"};
  assert_int_equal(upload_boot_log(s, UUID_A, "SERIALA1", control, 1, &r), EP_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(r.message, "lines[0]"));
  assert_int_equal(upload_boot_log(s, UUID_A, "SERIALA1", lines, 3, &r), EP_STATUS_OK);
  assert_int_equal(upload_boot_log(s, UUID_A, "SERIALA1", lines, 1, &r), EP_STATUS_RESOURCE_EXHAUSTED);
  assert_non_null(strstr(r.message, "ask again in"));

  Edgeprov__V1__GetLogsRequest req = EDGEPROV__V1__GET_LOGS_REQUEST__INIT;
  req.host_uuid = UUID_A;
  Edgeprov__V1__GetLogsResponse *resp = NULL;
  assert_int_equal(ep_mgmt_client_call(s->mgmt, "GetLogs", &req.base, &edgeprov__v1__get_logs_response__descriptor,
                                       (ProtobufCMessage **)&resp),
                   0);
  assert_int_equal(resp->n_lines, 3);
  assert_string_equal(resp->lines[0]->text, "Linux version 6.1.0");
  assert_string_equal(resp->lines[0]->action_name, "boot log (no token, from 127.0.0.1)");
  assert_int_equal(resp->lines[0]->run, 0);
  assert_null(strstr(resp->lines[2]->text, "hunter2"));
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  assert_int_equal(tu_grep_tree(s->h.dir, "hunter2-in-boot"), 1);
}

static void create_nodes_is_off_by_default(void **state) {
  site *s = *state;
  ep_rpc_result r;
  assert_int_equal(create_nodes(s, "Bearer " OPERATOR_TOKEN, UUID_B, &r), EP_STATUS_PERMISSION_DENIED);
  assert_non_null(strstr(r.message, "onboarding.create_nodes"));
  ep_rpc_result_clear(&r);
}

/* Finding 9: where enabled, the operator token is needed and calls are rate-limited. */
static void create_nodes_needs_the_token_and_is_rate_limited(void **state) {
  site *s = *state;
  ep_rpc_result r;
  assert_int_equal(create_nodes(s, NULL, UUID_B, &r), EP_STATUS_UNAUTHENTICATED);
  ep_rpc_result_clear(&r);
  assert_int_equal(create_nodes(s, "Bearer operator-token-of-32-characterz", UUID_B, &r), EP_STATUS_UNAUTHENTICATED);
  ep_rpc_result_clear(&r);
  assert_int_equal(create_nodes(s, "Bearer " OPERATOR_TOKEN, UUID_B, &r), EP_STATUS_OK);
  /* The reply lists what was stored, in canonical form (not the request echoed back). */
  Onboardingmgr__V1__CreateNodesResponse *created = onboardingmgr__v1__create_nodes_response__unpack(NULL, r.len, r.data);
  assert_non_null(created);
  assert_int_equal(created->n_payload, 1);
  assert_int_equal(created->payload[0]->n_hwdata, 1);
  assert_string_equal(created->payload[0]->hwdata[0]->uuid, UUID_B);
  assert_string_equal(created->payload[0]->hwdata[0]->mac_id, "52:54:00:aa:bb:cc");
  onboardingmgr__v1__create_nodes_response__free_unpacked(created, NULL);
  ep_rpc_result_clear(&r);
  Edgeprov__V1__HostResponse *host = get_host(s, UUID_B);
  assert_string_equal(host->host->serial, "CREATED1");
  protobuf_c_message_free_unpacked(&host->base, NULL);
  int limited = 0;
  for (int i = 0; i < 10 && !limited; i++) { /* a guesser with the wrong token is held too */
    if (create_nodes(s, "Bearer guess", UUID_A, &r) == EP_STATUS_RESOURCE_EXHAUSTED) limited = i + 1;
    if (limited) assert_non_null(strstr(r.message, "too many CreateNodes calls from 127.0.0.1"));
    ep_rpc_result_clear(&r);
  }
  assert_in_range(limited, 1, 5);
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
      cmocka_unit_test_setup_teardown(a_lost_answer_is_made_good_once_the_credentials_are_stale, setup_short_unfinished,
                                      teardown),
      cmocka_unit_test_setup_teardown(registered_node_waits, setup_nztp, teardown),
      cmocka_unit_test_setup_teardown(a_node_must_match_every_registered_identifier, setup_nztp, teardown),
      cmocka_unit_test_setup_teardown(onboarding_attempts_are_rate_limited_per_peer, setup_nztp, teardown),
      cmocka_unit_test_setup_teardown(invalidated_stays_invalidated_and_repeats_write_nothing, setup_nztp, teardown),
      cmocka_unit_test_setup_teardown(invalid_fields_are_named, setup_nztp, teardown),
      cmocka_unit_test_setup_teardown(a_flood_of_unknown_nodes_does_not_stop_a_registered_one, setup_budgets, teardown),
      cmocka_unit_test_setup_teardown(unknown_streams_are_bounded, setup_budgets, teardown),
      cmocka_unit_test_setup_teardown(a_silent_stream_is_ended, setup_budgets, teardown),
      cmocka_unit_test_setup_teardown(create_nodes_is_off_by_default, setup_nztp, teardown),
      cmocka_unit_test_setup_teardown(a_refused_node_can_leave_its_boot_log, setup_nztp, teardown),
      cmocka_unit_test_setup_teardown(create_nodes_needs_the_token_and_is_rate_limited, setup_create_nodes, teardown),
      cmocka_unit_test_setup_teardown(non_ztp_waits_for_the_operator, setup_non_ztp, teardown),
      cmocka_unit_test_setup_teardown(invalidate_then_approve_rearms_and_delete_revokes, setup_non_ztp, teardown),
  };
  return cmocka_run_group_tests_name("onboarding", tests, NULL, NULL);
}
