/* The management API of a real edgeprovd refuses bad input: every invalid field with a
 * message naming it, undecodable and oversized requests, unknown methods (UNIMPLEMENTED).
 * Usage: test_mgmt_api EDGEPROVD PLUGIN_DIR */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "daemon_harness.h"
#include "base/error.h"
#include "northbound/mgmt.h"
#include "net/rpc.h"

static harness h;
static ep_rpc_channel *channel;

static int setup(void **state) {
  (void)state;
  return ep_rpc_channel_new(&channel, h.address, NULL, 8u << 20);
}

static int teardown(void **state) {
  (void)state;
  ep_rpc_channel_free(channel);
  return 0;
}

static ep_rpc_result call(const char *method, const uint8_t *data, size_t len) {
  char path[128];
  snprintf(path, sizeof path, "%s%s", EP_MGMT_SERVICE, method);
  ep_rpc_result r;
  assert_int_equal(ep_rpc_unary(channel, path, NULL, 0, data, len, 10000, &r), 0);
  return r;
}

static ep_rpc_result add_host(Edgeprov__V1__AddHostRequest *req) {
  uint8_t buf[4096];
  size_t len = edgeprov__v1__add_host_request__pack(req, buf);
  return call("AddHost", buf, len);
}

static void each_invalid_field_is_named(void **state) {
  (void)state;
  char *bad_macs[] = {"52:54:00:00:00:01", "zz:54:00:00:00:02"};
  struct {
    Edgeprov__V1__AddHostRequest req;
    const char *message;
  } cases[] = {
      {{.uuid = "123"}, "uuid: '123' is not a UUID"},
      {{.uuid = ""}, "uuid: "},
      {{.uuid = "123e4567-e89b-12d3-a456-426614174000", .serial = "toolongserialnumber123"}, "serial: "},
      {{.uuid = "123e4567-e89b-12d3-a456-426614174000", .n_macs = 2, .macs = bad_macs}, "macs[1]: 'zz:54:00:00:00:02'"},
      {{.uuid = "123e4567-e89b-12d3-a456-426614174000", .ip = "1.2.3.4.5"}, "ip: '1.2.3.4.5'"},
      {{.uuid = "123e4567-e89b-12d3-a456-426614174000", .site = "a b"}, "site: 'a b'"},
      {{.uuid = "123e4567-e89b-12d3-a456-426614174000", .os_profile = "x/y"}, "os_profile: 'x/y'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    Edgeprov__V1__AddHostRequest req = EDGEPROV__V1__ADD_HOST_REQUEST__INIT;
    req.uuid = cases[i].req.uuid;
    if (cases[i].req.serial) req.serial = cases[i].req.serial;
    if (cases[i].req.ip) req.ip = cases[i].req.ip;
    if (cases[i].req.site) req.site = cases[i].req.site;
    if (cases[i].req.os_profile) req.os_profile = cases[i].req.os_profile;
    req.n_macs = cases[i].req.n_macs;
    req.macs = cases[i].req.macs;
    ep_rpc_result r = add_host(&req);
    assert_int_equal(r.status, EP_STATUS_INVALID_ARGUMENT);
    if (!strstr(r.message, cases[i].message)) fail_msg("case %zu: \"%s\" lacks \"%s\"", i, r.message, cases[i].message);
    ep_rpc_result_clear(&r);
  }
}

static void undecodable_and_oversized_requests(void **state) {
  (void)state;
  const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
  ep_rpc_result r = call("AddHost", garbage, sizeof garbage);
  assert_int_equal(r.status, EP_STATUS_INVALID_ARGUMENT);
  assert_string_equal(r.message, "request is not a valid edgeprov.v1.AddHostRequest message");
  ep_rpc_result_clear(&r);

  size_t big = EP_MGMT_MESSAGE_MAX + 1024;
  uint8_t *payload = calloc(1, big);
  r = call("AddHost", payload, big);
  assert_int_equal(r.status, EP_STATUS_RESOURCE_EXHAUSTED);
  ep_rpc_result_clear(&r);
  free(payload);

  Edgeprov__V1__ListRequest list = EDGEPROV__V1__LIST_REQUEST__INIT;
  list.page_size = 100000;
  uint8_t buf[64];
  r = call("ListHosts", buf, edgeprov__v1__list_request__pack(&list, buf));
  assert_int_equal(r.status, EP_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(r.message, "page_size: 100000 is above the limit of 1000"));
  ep_rpc_result_clear(&r);
}

static void unknown_methods_are_unimplemented(void **state) {
  (void)state;
  ep_rpc_result r = call("Frobnicate", NULL, 0);
  assert_int_equal(r.status, EP_STATUS_UNIMPLEMENTED);
  assert_string_equal(r.message, "unknown method /edgeprov.v1.Management/Frobnicate");
  ep_rpc_result_clear(&r);
  assert_int_equal(ep_rpc_unary(channel, "/other.Service/Call", NULL, 0, NULL, 0, 10000, &r), 0);
  assert_int_equal(r.status, EP_STATUS_UNIMPLEMENTED);
  ep_rpc_result_clear(&r);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: test_mgmt_api EDGEPROVD PLUGIN_DIR\n");
    return 2;
  }
  if (harness_init(&h, argv[1], argv[2]) < 0 || harness_start(&h) < 0) {
    fprintf(stderr, "test_mgmt_api: edgeprovd did not start (log: %s)\n", h.log_path);
    return 1;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(each_invalid_field_is_named, setup, teardown),
      cmocka_unit_test_setup_teardown(undecodable_and_oversized_requests, setup, teardown),
      cmocka_unit_test_setup_teardown(unknown_methods_are_unimplemented, setup, teardown),
  };
  int failed = cmocka_run_group_tests_name("mgmt_api", tests, NULL, NULL);
  int status = harness_signal(&h, SIGTERM);
  harness_cleanup(&h);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "test_mgmt_api: edgeprovd did not stop cleanly\n");
    return 1;
  }
  return failed;
}
