/* Unit tests of core/lib/northbound/mgmt.c without a transport: encoded requests for each
 * method of edgeprov.v1.Management go to ep_mgmt_unary over a real inventory (storage-sqlite)
 * with auth-local active; the replies are decoded and their status codes and messages checked,
 * including requests that do not decode, fields that do not validate, unknown methods, paging,
 * and the credentials a deleted or invalidated host loses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <edgeprov/identity.h>

#include "base/error.h"
#include "edgeprov/v1/management.pb-c.h"
#include "northbound/mgmt.h"
#include "site_fixture.h"

#define UUID1 "11111111-2222-4333-8444-555555555555"
#define UUID2 "11111111-2222-4333-8444-666666666666"
#define UUID3 "aaaaaaaa-2222-4333-8444-555555555555" /* given in upper case */

static int setup(void **state) {
  *state = tu_site_open("\"storage-sqlite\", \"auth-local\"", "", NULL);
  return *state ? 0 : -1;
}

/* Packs request, calls method, and checks the reply's status (and, when want_message is not
 * NULL, that its message contains it). The reply is left in *reply for the caller to decode. */
static void call(tu_site *t, const char *method, const ProtobufCMessage *request, int want_status,
                 const char *want_message, ep_mgmt_reply *reply) {
  size_t len = protobuf_c_message_get_packed_size(request);
  uint8_t *buf = malloc(len ? len : 1);
  assert_non_null(buf);
  protobuf_c_message_pack(request, buf);
  ep_mgmt_unary(t->inv, t->site->plugins, method, buf, len, reply);
  free(buf);
  if (reply->status != want_status || (want_message && !strstr(reply->message, want_message)))
    fail_msg("%s: status %s \"%s\", expected %s \"%s\"", method, ep_status_name(reply->status), reply->message,
             ep_status_name(want_status), want_message ? want_message : "");
  if (want_status == EP_STATUS_OK) assert_string_equal(reply->message, "");
  else assert_null(reply->data); /* an error carries no reply message */
}

/* AddHost of uuid (serial may be ""), expecting OK; returns nothing, checks the echo. */
static void add_host(tu_site *t, const char *uuid, const char *serial, bool auto_onboard) {
  Edgeprov__V1__AddHostRequest req = EDGEPROV__V1__ADD_HOST_REQUEST__INIT;
  char *macs[] = {"52-54-00-AA-BB-01"};
  req.uuid = (char *)uuid;
  req.serial = (char *)serial;
  req.macs = macs;
  req.n_macs = 1;
  req.os_profile = "ubuntu-22.04";
  req.auto_onboard = auto_onboard;
  ep_mgmt_reply reply;
  call(t, "AddHost", &req.base, EP_STATUS_OK, NULL, &reply);
  Edgeprov__V1__HostResponse *resp = edgeprov__v1__host_response__unpack(NULL, reply.len, reply.data);
  assert_non_null(resp);
  assert_non_null(resp->host);
  assert_string_equal(resp->host->macs[0], "52:54:00:aa:bb:01"); /* canonical, as stored */
  assert_int_equal(resp->host->desired_state, auto_onboard ? EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED
                                                           : EDGEPROV__V1__HOST_STATE__HOST_STATE_REGISTERED);
  edgeprov__v1__host_response__free_unpacked(resp, NULL);
  ep_mgmt_reply_clear(&reply);
}

/* CreateInstance for host, expecting OK; writes the instance ID into id. */
static void create_instance(tu_site *t, const char *host, char id[64]) {
  Edgeprov__V1__CreateInstanceRequest req = EDGEPROV__V1__CREATE_INSTANCE_REQUEST__INIT;
  req.host_uuid = (char *)host;
  ep_mgmt_reply reply;
  call(t, "CreateInstance", &req.base, EP_STATUS_OK, NULL, &reply);
  Edgeprov__V1__InstanceResponse *resp = edgeprov__v1__instance_response__unpack(NULL, reply.len, reply.data);
  assert_non_null(resp);
  assert_string_equal(resp->instance->host_uuid, host);
  assert_string_equal(resp->instance->os_profile, "ubuntu-22.04"); /* "" takes the host's */
  snprintf(id, 64, "%s", resp->instance->id);
  edgeprov__v1__instance_response__free_unpacked(resp, NULL);
  ep_mgmt_reply_clear(&reply);
}

static void adds_and_gets_hosts(void **state) {
  tu_site *t = *state;
  add_host(t, "AAAAAAAA-2222-4333-8444-555555555555", "SER001", true);
  ep_mgmt_reply reply;

  Edgeprov__V1__GetHostRequest get = EDGEPROV__V1__GET_HOST_REQUEST__INIT;
  get.uuid = "aaaaaaaa-2222-4333-8444-555555555555";
  call(t, "GetHost", &get.base, EP_STATUS_OK, NULL, &reply);
  Edgeprov__V1__HostResponse *resp = edgeprov__v1__host_response__unpack(NULL, reply.len, reply.data);
  assert_non_null(resp);
  assert_string_equal(resp->host->uuid, UUID3); /* stored in lower case */
  assert_string_equal(resp->host->serial, "SER001");
  edgeprov__v1__host_response__free_unpacked(resp, NULL);
  ep_mgmt_reply_clear(&reply);

  get.uuid = "";
  get.serial = "SER001"; /* or by serial */
  call(t, "GetHost", &get.base, EP_STATUS_OK, NULL, &reply);
  resp = edgeprov__v1__host_response__unpack(NULL, reply.len, reply.data);
  assert_string_equal(resp->host->uuid, UUID3);
  edgeprov__v1__host_response__free_unpacked(resp, NULL);
  ep_mgmt_reply_clear(&reply);

  get.serial = "";
  call(t, "GetHost", &get.base, EP_STATUS_INVALID_ARGUMENT, "uuid: required (or serial)", &reply);
  get.uuid = UUID2;
  call(t, "GetHost", &get.base, EP_STATUS_NOT_FOUND, "no host with uuid " UUID2, &reply);
  get.uuid = "";
  get.serial = "SER999";
  call(t, "GetHost", &get.base, EP_STATUS_NOT_FOUND, NULL, &reply);
}

static void refuses_bad_hosts_naming_the_field(void **state) {
  tu_site *t = *state;
  ep_mgmt_reply reply;
  Edgeprov__V1__AddHostRequest req = EDGEPROV__V1__ADD_HOST_REQUEST__INIT;
  req.uuid = "not-a-uuid";
  call(t, "AddHost", &req.base, EP_STATUS_INVALID_ARGUMENT, "uuid: 'not-a-uuid' is not a UUID", &reply);
  req.uuid = "";
  call(t, "AddHost", &req.base, EP_STATUS_INVALID_ARGUMENT, "uuid: empty", &reply);
  req.uuid = UUID1;
  req.ip = "300.1.1.1";
  call(t, "AddHost", &req.base, EP_STATUS_INVALID_ARGUMENT, "ip: '300.1.1.1' is not an IPv4 or IPv6 address", &reply);
  req.ip = "";
  add_host(t, UUID1, "SER001", false);
  call(t, "AddHost", &req.base, EP_STATUS_ALREADY_EXISTS, "a host with uuid " UUID1 " already exists", &reply);
}

static void lists_hosts_and_instances_in_pages(void **state) {
  tu_site *t = *state;
  char uuid[64], serial[32], id[64];
  for (int i = 0; i < 7; i++) {
    snprintf(uuid, sizeof uuid, "00000000-0000-4000-8000-%012d", i);
    snprintf(serial, sizeof serial, "SERIAL%03d", i);
    add_host(t, uuid, serial, false);
    if (i < 5) create_instance(t, uuid, id);
  }
  Edgeprov__V1__ListRequest req = EDGEPROV__V1__LIST_REQUEST__INIT;
  ep_mgmt_reply reply;
  char token[256] = "";
  size_t total = 0, pages = 0;
  do { /* hosts, 3 a page, in UUID order */
    req.page_size = 3;
    req.page_token = token;
    call(t, "ListHosts", &req.base, EP_STATUS_OK, NULL, &reply);
    Edgeprov__V1__ListHostsResponse *resp = edgeprov__v1__list_hosts_response__unpack(NULL, reply.len, reply.data);
    assert_non_null(resp);
    assert_true(resp->n_hosts <= 3);
    for (size_t i = 0; i < resp->n_hosts; i++) {
      snprintf(uuid, sizeof uuid, "00000000-0000-4000-8000-%012zu", total + i);
      assert_string_equal(resp->hosts[i]->uuid, uuid);
    }
    total += resp->n_hosts;
    pages++;
    snprintf(token, sizeof token, "%s", resp->next_page_token);
    edgeprov__v1__list_hosts_response__free_unpacked(resp, NULL);
    ep_mgmt_reply_clear(&reply);
  } while (token[0] && pages < 10);
  assert_int_equal(total, 7);
  assert_int_equal(pages, 3);

  req.page_size = 0; /* the server's default page holds them all */
  req.page_token = "";
  call(t, "ListInstances", &req.base, EP_STATUS_OK, NULL, &reply);
  Edgeprov__V1__ListInstancesResponse *inst = edgeprov__v1__list_instances_response__unpack(NULL, reply.len, reply.data);
  assert_non_null(inst);
  assert_int_equal(inst->n_instances, 5);
  assert_string_equal(inst->next_page_token, "");
  edgeprov__v1__list_instances_response__free_unpacked(inst, NULL);
  ep_mgmt_reply_clear(&reply);
  req.page_size = 4;
  call(t, "ListInstances", &req.base, EP_STATUS_OK, NULL, &reply);
  inst = edgeprov__v1__list_instances_response__unpack(NULL, reply.len, reply.data);
  assert_int_equal(inst->n_instances, 4);
  assert_string_not_equal(inst->next_page_token, "");
  edgeprov__v1__list_instances_response__free_unpacked(inst, NULL);
  ep_mgmt_reply_clear(&reply);

  req.page_size = EP_INVENTORY_PAGE_MAX + 1;
  call(t, "ListHosts", &req.base, EP_STATUS_INVALID_ARGUMENT, "page_size: 1001 is above the limit", &reply);
  call(t, "ListInstances", &req.base, EP_STATUS_INVALID_ARGUMENT, "page_size: 1001 is above the limit", &reply);
  req.page_size = 3;
  req.page_token = "garbage";
  call(t, "ListHosts", &req.base, EP_STATUS_INVALID_ARGUMENT, "page_token:", &reply);
  call(t, "ListInstances", &req.base, EP_STATUS_INVALID_ARGUMENT, "page_token:", &reply);
}

static int32_t ignore_credentials(void *data, const ep_identity_credentials *credentials) {
  (void)data, (void)credentials;
  return 0;
}

/* Creates auth-local credentials for uuid, as onboarding does. */
static void give_credentials(tu_site *t, const char *uuid) {
  void *st = NULL;
  const ep_identity *id = tu_site_identity(t, &st);
  assert_non_null(id);
  assert_int_equal(id->create(st, uuid, ignore_credentials, NULL), 0);
  assert_int_equal(id->get(st, uuid, ignore_credentials, NULL), 0);
}

static int has_credentials(tu_site *t, const char *uuid) {
  void *st = NULL;
  const ep_identity *id = tu_site_identity(t, &st);
  int r = id->get(st, uuid, ignore_credentials, NULL);
  assert_true(r == 0 || r == EP_ENOENT);
  return r == 0;
}

static void instances_are_created_retried_and_deleted(void **state) {
  tu_site *t = *state;
  add_host(t, UUID1, "SER001", true);
  char id[64];
  create_instance(t, UUID1, id);
  ep_mgmt_reply reply;
  Edgeprov__V1__CreateInstanceRequest create = EDGEPROV__V1__CREATE_INSTANCE_REQUEST__INIT;
  create.host_uuid = UUID1;
  call(t, "CreateInstance", &create.base, EP_STATUS_ALREADY_EXISTS, "already has instance", &reply);
  create.host_uuid = UUID2;
  call(t, "CreateInstance", &create.base, EP_STATUS_NOT_FOUND, "no host with uuid " UUID2, &reply);
  create.host_uuid = UUID1;
  create.os_profile = "../etc";
  call(t, "CreateInstance", &create.base, EP_STATUS_INVALID_ARGUMENT, "os_profile: '../etc' is not a name", &reply);

  Edgeprov__V1__RetryInstanceRequest retry = EDGEPROV__V1__RETRY_INSTANCE_REQUEST__INIT;
  retry.id = id;
  call(t, "RetryInstance", &retry.base, EP_STATUS_FAILED_PRECONDITION, "only a failed (ERROR) instance is retried", &reply);
  assert_int_equal(ep_inventory_set_instance_state(t->inv, id, EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_ERROR, "failed",
                                                   EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_ERROR, NULL),
                   0);
  call(t, "RetryInstance", &retry.base, EP_STATUS_OK, NULL, &reply);
  Edgeprov__V1__InstanceResponse *resp = edgeprov__v1__instance_response__unpack(NULL, reply.len, reply.data);
  assert_non_null(resp);
  assert_int_equal(resp->instance->current_state, EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_PROVISIONING);
  edgeprov__v1__instance_response__free_unpacked(resp, NULL);
  ep_mgmt_reply_clear(&reply);

  /* A host with an instance is not deleted; the instance first, then the host. */
  Edgeprov__V1__DeleteHostRequest del_host = EDGEPROV__V1__DELETE_HOST_REQUEST__INIT;
  del_host.uuid = UUID1;
  call(t, "DeleteHost", &del_host.base, EP_STATUS_FAILED_PRECONDITION, "has instance", &reply);
  Edgeprov__V1__DeleteInstanceRequest del = EDGEPROV__V1__DELETE_INSTANCE_REQUEST__INIT;
  del.id = id;
  uint64_t before = 0, head = 0;
  assert_int_equal(ep_inventory_revision(t->inv, &before), 0);
  call(t, "DeleteInstance", &del.base, EP_STATUS_OK, NULL, &reply);
  Edgeprov__V1__DeleteResponse *done = edgeprov__v1__delete_response__unpack(NULL, reply.len, reply.data);
  assert_non_null(done);
  assert_int_equal(ep_inventory_revision(t->inv, &head), 0);
  assert_true(done->revision > before && done->revision <= head); /* the revision of the deletion */
  edgeprov__v1__delete_response__free_unpacked(done, NULL);
  ep_mgmt_reply_clear(&reply);
  call(t, "DeleteInstance", &del.base, EP_STATUS_NOT_FOUND, NULL, &reply);
  retry.id = "x";
  call(t, "RetryInstance", &retry.base, EP_STATUS_INVALID_ARGUMENT, "id: 'x' is not a UUID", &reply);
}

static void deleting_a_host_revokes_its_credentials(void **state) {
  tu_site *t = *state;
  add_host(t, UUID1, "SER001", true);
  add_host(t, UUID3, "SER003", true);
  give_credentials(t, UUID1);
  give_credentials(t, UUID3);
  ep_mgmt_reply reply;
  Edgeprov__V1__DeleteHostRequest req = EDGEPROV__V1__DELETE_HOST_REQUEST__INIT;
  req.uuid = "11111111-2222-4333-8444-55555555555"; /* one digit short */
  call(t, "DeleteHost", &req.base, EP_STATUS_INVALID_ARGUMENT, "uuid:", &reply);
  req.uuid = UUID2;
  call(t, "DeleteHost", &req.base, EP_STATUS_NOT_FOUND, NULL, &reply);
  assert_true(has_credentials(t, UUID1));
  req.uuid = "11111111-2222-4333-8444-555555555555";
  call(t, "DeleteHost", &req.base, EP_STATUS_OK, NULL, &reply);
  Edgeprov__V1__DeleteResponse *resp = edgeprov__v1__delete_response__unpack(NULL, reply.len, reply.data);
  assert_non_null(resp);
  assert_true(resp->revision > 0);
  edgeprov__v1__delete_response__free_unpacked(resp, NULL);
  ep_mgmt_reply_clear(&reply);
  assert_false(has_credentials(t, UUID1));
  assert_true(has_credentials(t, UUID3)); /* only that host's */
  ep_inv_host *host = NULL;
  assert_int_equal(ep_inventory_get_host(t->inv, UUID1, &host), EP_ENOENT);
  req.uuid = "AAAAAAAA-2222-4333-8444-555555555555"; /* any case */
  call(t, "DeleteHost", &req.base, EP_STATUS_OK, NULL, &reply);
  ep_mgmt_reply_clear(&reply);
  assert_false(has_credentials(t, UUID3));
}

static void invalidating_a_host_revokes_its_credentials(void **state) {
  tu_site *t = *state;
  add_host(t, UUID1, "SER001", true);
  add_host(t, UUID2, "SER002", false);
  give_credentials(t, UUID1);
  give_credentials(t, UUID2);
  ep_mgmt_reply reply;
  Edgeprov__V1__SetDesiredStateRequest req = EDGEPROV__V1__SET_DESIRED_STATE_REQUEST__INIT;
  req.uuid = UUID2;
  req.desired_state = EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED; /* approval keeps the credentials */
  call(t, "SetDesiredState", &req.base, EP_STATUS_OK, NULL, &reply);
  ep_mgmt_reply_clear(&reply);
  assert_true(has_credentials(t, UUID2));
  req.desired_state = EDGEPROV__V1__HOST_STATE__HOST_STATE_DELETED;
  call(t, "SetDesiredState", &req.base, EP_STATUS_INVALID_ARGUMENT, "desired_state: DELETED cannot be asked for", &reply);

  req.uuid = UUID1;
  req.desired_state = EDGEPROV__V1__HOST_STATE__HOST_STATE_UNTRUSTED;
  call(t, "SetDesiredState", &req.base, EP_STATUS_OK, NULL, &reply);
  Edgeprov__V1__HostResponse *resp = edgeprov__v1__host_response__unpack(NULL, reply.len, reply.data);
  assert_non_null(resp);
  assert_int_equal(resp->host->current_state, EDGEPROV__V1__HOST_STATE__HOST_STATE_UNTRUSTED);
  assert_int_equal(resp->host->desired_state, EDGEPROV__V1__HOST_STATE__HOST_STATE_UNTRUSTED);
  edgeprov__v1__host_response__free_unpacked(resp, NULL);
  ep_mgmt_reply_clear(&reply);
  assert_false(has_credentials(t, UUID1));
  assert_true(has_credentials(t, UUID2)); /* only that host's */
}

static void refuses_unknown_methods_and_undecodable_requests(void **state) {
  tu_site *t = *state;
  ep_mgmt_reply reply;
  const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0a};
  ep_mgmt_unary(t->inv, t->site->plugins, "AddHostt", junk, sizeof junk, &reply);
  assert_int_equal(reply.status, EP_STATUS_UNIMPLEMENTED);
  assert_string_equal(reply.message, "unknown method edgeprov.v1.Management/AddHostt");
  ep_mgmt_unary(t->inv, t->site->plugins, "WatchEvents", NULL, 0, &reply); /* streaming: not a unary method */
  assert_int_equal(reply.status, EP_STATUS_UNIMPLEMENTED);
  char long_name[300];
  memset(long_name, 'M', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  ep_mgmt_unary(t->inv, t->site->plugins, long_name, NULL, 0, &reply);
  assert_int_equal(reply.status, EP_STATUS_UNIMPLEMENTED);
  assert_true(strlen(reply.message) < 128); /* the name is cut, not echoed whole */

  for (size_t i = 0; ep_mgmt_unary_methods[i]; i++) {
    ep_mgmt_unary(t->inv, t->site->plugins, ep_mgmt_unary_methods[i], junk, sizeof junk, &reply);
    if (reply.status != EP_STATUS_INVALID_ARGUMENT || !strstr(reply.message, "request is not a valid edgeprov.v1."))
      fail_msg("%s: %s \"%s\"", ep_mgmt_unary_methods[i], ep_status_name(reply.status), reply.message);
    assert_null(reply.data);
    assert_false(ep_mgmt_is_watch(ep_mgmt_unary_methods[i]));
  }
  assert_true(ep_mgmt_is_watch("WatchEvents"));

  /* Past the message limit: refused before it is decoded. */
  uint8_t *big = calloc(1, EP_MGMT_MESSAGE_MAX + 1);
  assert_non_null(big);
  ep_mgmt_unary(t->inv, t->site->plugins, "AddHost", big, EP_MGMT_MESSAGE_MAX + 1, &reply);
  free(big);
  assert_int_equal(reply.status, EP_STATUS_RESOURCE_EXHAUSTED);
  assert_string_equal(reply.message, "request larger than the message limit");

  /* An empty request decodes (every field at its default) and is judged on its fields. */
  ep_mgmt_unary(t->inv, t->site->plugins, "AddHost", NULL, 0, &reply);
  assert_int_equal(reply.status, EP_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(reply.message, "uuid: empty"));
}

/* Without an identity plugin (plugins NULL) a host is still deleted and invalidated. */
static void works_without_an_identity_plugin(void **state) {
  tu_site *t = *state;
  add_host(t, UUID1, "SER001", true);
  Edgeprov__V1__SetDesiredStateRequest set = EDGEPROV__V1__SET_DESIRED_STATE_REQUEST__INIT;
  set.uuid = UUID1;
  set.desired_state = EDGEPROV__V1__HOST_STATE__HOST_STATE_UNTRUSTED;
  uint8_t buf[128];
  size_t len = edgeprov__v1__set_desired_state_request__pack(&set, buf);
  ep_mgmt_reply reply;
  ep_mgmt_unary(t->inv, NULL, "SetDesiredState", buf, len, &reply);
  assert_int_equal(reply.status, EP_STATUS_OK);
  ep_mgmt_reply_clear(&reply);
  Edgeprov__V1__DeleteHostRequest del = EDGEPROV__V1__DELETE_HOST_REQUEST__INIT;
  del.uuid = UUID1;
  len = edgeprov__v1__delete_host_request__pack(&del, buf);
  ep_mgmt_unary(t->inv, NULL, "DeleteHost", buf, len, &reply);
  assert_int_equal(reply.status, EP_STATUS_OK);
  ep_mgmt_reply_clear(&reply);
  ep_mgmt_reply_clear(&reply); /* clearing twice is harmless */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(adds_and_gets_hosts, setup, tu_site_teardown),
      cmocka_unit_test_setup_teardown(refuses_bad_hosts_naming_the_field, setup, tu_site_teardown),
      cmocka_unit_test_setup_teardown(lists_hosts_and_instances_in_pages, setup, tu_site_teardown),
      cmocka_unit_test_setup_teardown(instances_are_created_retried_and_deleted, setup, tu_site_teardown),
      cmocka_unit_test_setup_teardown(deleting_a_host_revokes_its_credentials, setup, tu_site_teardown),
      cmocka_unit_test_setup_teardown(invalidating_a_host_revokes_its_credentials, setup, tu_site_teardown),
      cmocka_unit_test_setup_teardown(refuses_unknown_methods_and_undecodable_requests, setup, tu_site_teardown),
      cmocka_unit_test_setup_teardown(works_without_an_identity_plugin, setup, tu_site_teardown),
  };
  return cmocka_run_group_tests_name("mgmt", tests, NULL, NULL);
}
