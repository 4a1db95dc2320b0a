/* Unit tests of core/lib/southbound/node_auth.c through a real rpc server on loopback (an
 * ep_rpc_call exists only inside a server), with auth-local as the identity plugin: a valid
 * bearer token names its node; a token for another audience, a tampered or revoked one, a
 * missing, malformed or oversized authorization header are refused (EP_EPERM, the reason
 * set); without an identity plugin the call cannot be judged (EP_EIO). The refusal log is
 * held to one line a minute per address, counting what it left out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/error.h"
#include "base/log.h"
#include "net/rpc.h"
#include "site_fixture.h"
#include "southbound/node_auth.h"

#define NODE "44444444-4444-4444-8444-444444444444"
#define WHO "/test.Auth/Who"       /* answers the node ID, or the refusal */
#define LOGGED "/test.Auth/Logged" /* the same, and logs a refusal with ep_node_auth_log_refusal */

typedef struct fixture {
  tu_site *site;
  const ep_plugin_set *plugins; /* what the handlers authenticate against */
  ep_rpc_server *server;
  ep_rpc_channel *channel;
  char unix_address[256];
  char token[4096];
} fixture;

static void who(void *data, ep_rpc_call *call, const uint8_t *request, size_t len) {
  (void)request, (void)len;
  fixture *f = data;
  char node[EP_IDENTITY_NODE_ID_MAX + 1] = "untouched";
  int r = ep_node_auth(f->plugins, call, node);
  if (r == 0) {
    ep_rpc_call_finish(call, EP_STATUS_OK, "", (const uint8_t *)node, strlen(node));
    return;
  }
  if (strcmp(node, "untouched") != 0) { /* a refusal must not write the output */
    ep_rpc_call_finish(call, EP_STATUS_INTERNAL, "ret_node_id written on failure", NULL, 0);
    return;
  }
  if (strcmp(ep_rpc_call_method(call), LOGGED) == 0) ep_node_auth_log_refusal(call, "test");
  ep_rpc_call_finish(call, r == EP_EPERM ? EP_STATUS_UNAUTHENTICATED : r == EP_EIO ? EP_STATUS_UNAVAILABLE : EP_STATUS_INTERNAL,
                     ep_error_message(), NULL, 0);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  *state = f;
  if (!(f->site = tu_site_open("\"storage-sqlite\", \"auth-local\"", "", NULL))) return -1;
  f->plugins = f->site->site->plugins;
  ep_rpc_method methods[] = {{.path = WHO, .kind = EP_RPC_UNARY, .handler = who, .data = f}, {.path = LOGGED, .kind = EP_RPC_UNARY, .handler = who, .data = f}};
  int port = 0;
  char target[64];
  snprintf(f->unix_address, sizeof f->unix_address, "unix:%s/rpc.sock", f->site->dir);
  if (ep_rpc_server_new(&f->server, NULL) < 0 || ep_rpc_server_add_method(f->server, &methods[0]) < 0 ||
      ep_rpc_server_add_method(f->server, &methods[1]) < 0 ||
      ep_rpc_server_listen(f->server, "127.0.0.1:0", NULL, &port) < 0 ||
      ep_rpc_server_listen(f->server, f->unix_address, NULL, NULL) < 0 || ep_rpc_server_start(f->server) < 0)
    return -1;
  snprintf(target, sizeof target, "127.0.0.1:%d", port);
  if (ep_rpc_channel_new(&f->channel, target, NULL, 0) < 0) return -1;
  return tu_node_token(f->site, NODE, EP_NODE_AUDIENCE, f->token, sizeof f->token);
}

static int teardown(void **state) {
  fixture *f = *state;
  ep_rpc_channel_free(f->channel);
  ep_rpc_server_free(f->server, 1000);
  tu_site_close(f->site);
  free(f);
  return 0;
}

/* Calls method on channel with "authorization: value" (none when value is NULL); checks the
 * status and that the message (or, on OK, the reply) contains want. */
static void call_on(ep_rpc_channel *channel, const char *method, const char *value, int want_status, const char *want) {
  ep_rpc_metadata md = {"authorization", value};
  ep_rpc_result res = {0};
  assert_int_equal(ep_rpc_unary(channel, method, &md, value ? 1 : 0, (const uint8_t *)"", 0, 10000, &res), 0);
  char reply[128] = "";
  if (res.data) snprintf(reply, sizeof reply, "%.*s", (int)res.len, (const char *)res.data);
  const char *got = res.status == EP_STATUS_OK ? reply : res.message;
  if (res.status != want_status || !strstr(got, want))
    fail_msg("%s: status %s \"%s\", expected %s \"%s\"", method, ep_status_name(res.status), got, ep_status_name(want_status),
             want);
  ep_rpc_result_clear(&res);
}

static void call(fixture *f, const char *value, int want_status, const char *want) {
  call_on(f->channel, WHO, value, want_status, want);
}

static void valid_token_names_its_node(void **state) {
  fixture *f = *state;
  char header[4200];
  snprintf(header, sizeof header, "Bearer %s", f->token);
  call(f, header, EP_STATUS_OK, NODE);
  snprintf(header, sizeof header, "bearer %s", f->token); /* the scheme is case-insensitive (RFC 7235) */
  call(f, header, EP_STATUS_OK, NODE);
}

static void token_for_another_audience_is_refused(void **state) {
  fixture *f = *state;
  char token[4096], header[4200];
  assert_int_equal(tu_node_token(f->site, NODE, "other-service", token, sizeof token), 0);
  snprintf(header, sizeof header, "Bearer %s", token);
  call(f, header, EP_STATUS_UNAUTHENTICATED, "token refused");
  call(f, header, EP_STATUS_UNAUTHENTICATED, "audience");
}

static void tampered_and_revoked_tokens_are_refused(void **state) {
  fixture *f = *state;
  char header[4200];
  snprintf(header, sizeof header, "Bearer %s", f->token);
  char *payload = strchr(header + 7, '.') + 5;
  *payload = *payload == 'A' ? 'B' : 'A';
  call(f, header, EP_STATUS_UNAUTHENTICATED, "token refused");
  call(f, "Bearer a.b.c", EP_STATUS_UNAUTHENTICATED, "token refused");

  snprintf(header, sizeof header, "Bearer %s", f->token);
  call(f, header, EP_STATUS_OK, NODE);
  void *st = NULL;
  const ep_identity *id = tu_site_identity(f->site, &st);
  assert_int_equal(id->revoke(st, NODE), 0);
  call(f, header, EP_STATUS_UNAUTHENTICATED, "token refused");
}

static void missing_or_malformed_header_is_refused(void **state) {
  fixture *f = *state;
  call(f, NULL, EP_STATUS_UNAUTHENTICATED, "a bearer token is required");
  call(f, "", EP_STATUS_UNAUTHENTICATED, "authorization must be 'Bearer <token>'");
  call(f, "Bearer ", EP_STATUS_UNAUTHENTICATED, "authorization must be 'Bearer <token>'");
  call(f, "Basic dXNlcjpwYXNz", EP_STATUS_UNAUTHENTICATED, "authorization must be 'Bearer <token>'");
  call(f, f->token, EP_STATUS_UNAUTHENTICATED, "authorization must be 'Bearer <token>'"); /* no scheme */
  /* Longer than any token: refused unread, whatever it holds. */
  size_t n = EP_RPC_METADATA_VALUE_MAX + 100;
  char *big = malloc(n + 1);
  assert_non_null(big);
  memcpy(big, "Bearer ", 7);
  memset(big + 7, 'x', n - 7);
  big[n] = '\0';
  call(f, big, EP_STATUS_UNAUTHENTICATED, "missing or too long");
  free(big);
}

static void without_an_identity_plugin_nothing_is_accepted(void **state) {
  fixture *f = *state;
  tu_site *bare = tu_site_open("\"storage-sqlite\"", "", NULL);
  assert_non_null(bare);
  f->plugins = bare->site->plugins;
  char header[4200];
  snprintf(header, sizeof header, "Bearer %s", f->token);
  call(f, header, EP_STATUS_UNAVAILABLE, "no identity plugin is active");
  f->plugins = f->site->site->plugins;
  tu_site_close(bare);
  call(f, header, EP_STATUS_OK, NODE);
}

/* Lines in the log file that contain text. */
static int count_lines(const char *path, const char *text) {
  char *log = tu_slurp(path);
  int n = 0;
  for (char *p = log; p && (p = strstr(p, text)); p++) n++;
  free(log);
  return n;
}

static void refusals_are_logged_once_a_minute_per_address(void **state) {
  fixture *f = *state;
  char *path = NULL;
  assert_true(asprintf(&path, "%s/log", f->site->dir) > 0);
  FILE *sink = fopen(path, "w");
  assert_non_null(sink);
  setvbuf(sink, NULL, _IOLBF, 0);
  ep_log_setup(sink, EP_LOG_INFO);
  for (int i = 0; i < 4; i++) call_on(f->channel, LOGGED, NULL, EP_STATUS_UNAUTHENTICATED, "a bearer token is required");
  /* From another address (a unix socket has none: "-"), logged at once, counting the 3 left out. */
  ep_rpc_channel *local = NULL;
  assert_int_equal(ep_rpc_channel_new(&local, f->unix_address, NULL, 0), 0);
  call_on(local, LOGGED, "Basic x", EP_STATUS_UNAUTHENTICATED, "authorization must be");
  ep_rpc_channel_free(local);
  ep_log_setup(stderr, EP_LOG_INFO);
  fclose(sink);
  if (count_lines(path, "component=test") != 2 || count_lines(path, " from - ") != 1) {
    char *log = tu_slurp(path);
    fail_msg("log:\n%s", log ? log : "(none)");
  }
  assert_int_equal(count_lines(path, LOGGED " from 127.0.0.1 refused: a bearer token is required"), 1);
  assert_int_equal(count_lines(path, "(0 refusals unlogged before; one line a minute per address)"), 1);
  assert_int_equal(count_lines(path, LOGGED " from - refused: authorization must be 'Bearer <token>' (3 refusals unlogged"),
                   1);
  assert_int_equal(count_lines(path, f->token), 0);
  free(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      /* first: the refusal log's budget is the process's */
      cmocka_unit_test_setup_teardown(refusals_are_logged_once_a_minute_per_address, setup, teardown),
      cmocka_unit_test_setup_teardown(valid_token_names_its_node, setup, teardown),
      cmocka_unit_test_setup_teardown(token_for_another_audience_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(tampered_and_revoked_tokens_are_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(missing_or_malformed_header_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(without_an_identity_plugin_nothing_is_accepted, setup, teardown),
  };
  return cmocka_run_group_tests_name("node_auth", tests, NULL, NULL);
}
