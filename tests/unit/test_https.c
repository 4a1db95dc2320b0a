/* Unit tests of core/lib/net/https.c, the embedded HTTPS server: addresses it accepts, routes
 * and directories (bounded, fixed once started), what a handler sees of a request (raw body,
 * decoded form, Basic credentials) and its bounds, TLS with a certificate made by the openssl
 * CLI, serving one connection on the calling thread, and the limits: the request deadline,
 * the per-address cap (the longest-waiting connection makes room; with every one busy a new
 * one is refused at once), and handlers off the connection threads. Requests are made with
 * libcurl, or on raw sockets where a client must misbehave. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <cmocka.h>

#include "base/error.h"
#include "net/https.h"
#include "testutil.h"
#include "tu_http.h"

/* What the last handler call saw (requests are made one at a time). */
typedef struct seen {
  int calls;
  char method[16];
  char path[128];
  char content_type[128];
  char authorization[256];
  bool body_null;
  uint8_t body[EP_HTTPS_BODY_MAX];
  size_t body_len;
  ep_https_form_field form[EP_HTTPS_FORM_FIELDS_MAX];
  size_t form_count;
  bool form_invalid;
  bool has_user;
  char user[128];
  char password[128];
} seen;

typedef struct fixture {
  char *dir;
  ep_https_server *server;
  int port;
  seen seen;
} fixture;

/* Keeps what it sees and answers 201 "created" (POST) or 200 "hello" (GET) as application/x-test. */
static void record(void *data, const ep_https_request *req, ep_https_response *resp) {
  seen *s = data;
  s->calls++;
  snprintf(s->method, sizeof s->method, "%s", req->method);
  snprintf(s->path, sizeof s->path, "%s", req->path);
  snprintf(s->content_type, sizeof s->content_type, "%s", req->content_type);
  snprintf(s->authorization, sizeof s->authorization, "%s", req->authorization);
  s->body_null = req->body == NULL;
  s->body_len = req->body_len;
  if (req->body_len) memcpy(s->body, req->body, req->body_len);
  s->form_count = req->form_count;
  memcpy(s->form, req->form, req->form_count * sizeof *req->form);
  s->form_invalid = req->form_invalid;
  s->has_user = req->basic_user != NULL;
  snprintf(s->user, sizeof s->user, "%s", req->basic_user ? req->basic_user : "");
  snprintf(s->password, sizeof s->password, "%s", req->basic_password ? req->basic_password : "");
  bool post = strcmp(req->method, "POST") == 0;
  resp->status = post ? 201 : 200;
  resp->content_type = "application/x-test";
  resp->body = strdup(post ? "created" : "hello");
  resp->len = strlen(resp->body);
}

static void no_body(void *data, const ep_https_request *req, ep_https_response *resp) {
  (void)data, (void)req;
  resp->status = 403;
}

static int add_routes(fixture *f) {
  if (ep_https_server_route(f->server, "GET", "/echo", record, &f->seen) < 0 ||
      ep_https_server_route(f->server, "POST", "/echo", record, &f->seen) < 0 ||
      ep_https_server_route(f->server, "GET", "/nobody", no_body, NULL) < 0)
    return -1;
  return 0;
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_mkdtemp();
  if (!f->dir || ep_https_server_new(&f->server, "127.0.0.1:0", NULL, NULL) < 0 || add_routes(f) < 0 ||
      ep_https_server_start(f->server, &f->port) < 0 || f->port <= 0)
    return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  ep_https_server_free(f->server);
  tu_rmdir(f->dir);
  free(f);
  return 0;
}

/* A request to path on the fixture's plaintext server. */
static long call(fixture *f, const char *method, const char *path, const char *const *headers, const void *body,
                 size_t body_len, tu_response *out) {
  char url[256];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", f->port, path);
  tu_request req = {.method = method, .url = url, .headers = headers, .body = body, .body_len = body_len};
  assert_int_equal(tu_http(&req, out), CURLE_OK);
  return out->status;
}

static void addresses_accepted_and_refused(void **state) {
  (void)state;
  ep_https_server *s = NULL;
  const char *good[] = {"127.0.0.1:0", "localhost:8443", "127.1.2.3:0", "[::1]:0"};
  for (size_t i = 0; i < 4; i++) {
    s = NULL;
    assert_int_equal(ep_https_server_new(&s, good[i], NULL, NULL), 0);
    assert_non_null(s);
    ep_https_server_free(s);
  }
  /* Plaintext only on loopback: anywhere else needs a certificate. */
  s = (ep_https_server *)0x1;
  assert_int_equal(ep_https_server_new(&s, "0.0.0.0:8443", NULL, NULL), EP_EINVAL);
  assert_ptr_equal(s, (ep_https_server *)0x1);
  assert_non_null(strstr(ep_error_message(), "not a loopback address"));
  assert_int_equal(ep_https_server_new(&s, "[::]:8443", NULL, NULL), EP_EINVAL);
  assert_int_equal(ep_https_server_new(&s, "10.0.3.1:8443", NULL, NULL), EP_EINVAL);
  s = NULL;
  assert_int_equal(ep_https_server_new(&s, "0.0.0.0:0", "cert", "key"), 0); /* with a certificate: fine */
  ep_https_server_free(s);

  const char *bad[] = {"", "8443", "127.0.0.1", "edge.example:8443", "127.0.0.1:70000", "127.0.0.1:-1",
                       "[::1:0", "[zz]:0", "300.0.0.1:1", "127.0.0.1:80x", "127.0.0.1:abc",
                       "127.0.0.1:", "127.0.0.1: 80", "127.0.0.1:+80", "127.0.0.1:000080"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    s = (ep_https_server *)0x1;
    if (ep_https_server_new(&s, bad[i], NULL, NULL) != EP_EINVAL) fail_msg("'%s' was accepted", bad[i]);
    assert_ptr_equal(s, (ep_https_server *)0x1);
  }
  assert_non_null(strstr(ep_error_message(), "is not host:port with an IP address"));
  ep_https_server_free(NULL);
}

static void routes_and_directories_are_bounded_and_fixed_once_started(void **state) {
  fixture *f = *state;
  ep_https_server *s = NULL;
  assert_int_equal(ep_https_server_new(&s, "127.0.0.1:0", NULL, NULL), 0);
  for (int i = 0; i < EP_HTTPS_ROUTES_MAX; i++) {
    char path[32];
    snprintf(path, sizeof path, "/r%d", i);
    assert_int_equal(ep_https_server_route(s, "GET", path, record, &f->seen), 0);
  }
  assert_int_equal(ep_https_server_route(s, "GET", "/one-too-many", record, &f->seen), EP_EINVAL);
  for (int i = 0; i < EP_HTTPS_MOUNTS_MAX; i++) {
    char url[32];
    snprintf(url, sizeof url, "/d%d", i);
    assert_int_equal(ep_https_server_serve_directory(s, url, f->dir), 0);
  }
  assert_int_equal(ep_https_server_serve_directory(s, "/d9", f->dir), EP_EINVAL);
  ep_https_server_free(s);

  assert_int_equal(ep_https_server_new(&s, "127.0.0.1:0", NULL, NULL), 0);
  assert_int_equal(ep_https_server_serve_directory(s, "/boot", f->dir), 0);
  assert_int_equal(ep_https_server_serve_directory(s, "/boot", "/elsewhere"), EP_EEXIST);
  assert_non_null(strstr(ep_error_message(), f->dir));
  int port = 0;
  assert_int_equal(ep_https_server_start(s, &port), 0);
  assert_true(port > 0);
  assert_int_equal(ep_https_server_route(s, "GET", "/late", record, &f->seen), EP_EINVAL);
  assert_int_equal(ep_https_server_serve_directory(s, "/late", f->dir), EP_EINVAL);
  int fds[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  assert_int_equal(ep_https_server_serve_fd(s, fds[1]), EP_EINVAL); /* takes fds[1] */
  close(fds[0]);
  ep_https_server_free(s);

  /* A port in use cannot be started on. */
  assert_int_equal(ep_https_server_new(&s, "127.0.0.1:0", NULL, NULL), 0);
  char address[32];
  snprintf(address, sizeof address, "127.0.0.1:%d", f->port);
  ep_https_server *second = NULL;
  assert_int_equal(ep_https_server_new(&second, address, NULL, NULL), 0);
  assert_int_equal(ep_https_server_start(second, &port), EP_EIO);
  ep_https_server_free(second);
  ep_https_server_free(s);
}

static void requests_reach_their_route_or_get_404_or_405(void **state) {
  fixture *f = *state;
  tu_response r;
  char v[128];
  assert_int_equal(call(f, NULL, "/echo", NULL, NULL, 0, &r), 200);
  assert_string_equal(r.body, "hello");
  assert_string_equal(tu_header(&r, "Content-Type", v, sizeof v), "application/x-test");
  assert_string_equal(tu_header(&r, "Cache-Control", v, sizeof v), "no-store");
  assert_int_equal(f->seen.calls, 1);
  assert_string_equal(f->seen.method, "GET");
  assert_string_equal(f->seen.path, "/echo");
  assert_string_equal(f->seen.content_type, ""); /* absent: "" */
  assert_string_equal(f->seen.authorization, "");
  assert_false(f->seen.has_user);
  tu_response_clear(&r);

  /* A handler that sets no body answers its status with an empty one. */
  assert_int_equal(call(f, NULL, "/nobody", NULL, NULL, 0, &r), 403);
  assert_int_equal(r.len, 0);
  tu_response_clear(&r);

  assert_int_equal(call(f, "PUT", "/echo", NULL, NULL, 0, &r), 405);
  assert_string_equal(tu_header(&r, "Allow", v, sizeof v), "GET, POST"); /* RFC 9110: a 405 says what is */
  tu_response_clear(&r);
  assert_int_equal(call(f, "DELETE", "/nobody", NULL, NULL, 0, &r), 405);
  assert_string_equal(tu_header(&r, "Allow", v, sizeof v), "GET");
  tu_response_clear(&r);
  const char *unknown[] = {"/nope", "/echo/", "/ech", "/echo/x", "/"};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    assert_int_equal(call(f, NULL, unknown[i], NULL, NULL, 0, &r), 404);
    tu_response_clear(&r);
  }
  assert_int_equal(f->seen.calls, 1); /* none of those reached a handler */
}

static void raw_body_arrives_whole_up_to_the_bound(void **state) {
  fixture *f = *state;
  uint8_t *body = malloc(EP_HTTPS_BODY_MAX + 1);
  for (size_t i = 0; i <= EP_HTTPS_BODY_MAX; i++) body[i] = (uint8_t)(i * 7 + 3); /* NUL bytes included */
  const char *json[] = {"Content-Type: application/octet-stream", "Authorization: Bearer abc.def", NULL};
  tu_response r;
  assert_int_equal(call(f, "POST", "/echo", json, body, 1000, &r), 201);
  assert_string_equal(r.body, "created");
  assert_string_equal(f->seen.content_type, "application/octet-stream");
  assert_string_equal(f->seen.authorization, "Bearer abc.def");
  assert_false(f->seen.body_null);
  assert_int_equal(f->seen.body_len, 1000);
  assert_memory_equal(f->seen.body, body, 1000);
  assert_int_equal(f->seen.form_count, 0);
  tu_response_clear(&r);

  assert_int_equal(call(f, "POST", "/echo", json, body, EP_HTTPS_BODY_MAX, &r), 201);
  assert_int_equal(f->seen.body_len, EP_HTTPS_BODY_MAX);
  assert_memory_equal(f->seen.body, body, EP_HTTPS_BODY_MAX);
  tu_response_clear(&r);

  int calls = f->seen.calls;
  assert_int_equal(call(f, "POST", "/echo", json, body, EP_HTTPS_BODY_MAX + 1, &r), 413);
  assert_int_equal(f->seen.calls, calls); /* the handler never saw it */
  tu_response_clear(&r);
  free(body);
}

static void form_body_is_decoded_into_fields(void **state) {
  fixture *f = *state;
  const char *form_type[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
  const char *form = "grant_type=client_credentials&client_id=edgenode-a%20b&client_secret=s%3D%26x&empty=";
  tu_response r;
  assert_int_equal(call(f, "POST", "/echo", form_type, form, strlen(form), &r), 201);
  tu_response_clear(&r);
  assert_false(f->seen.form_invalid);
  assert_true(f->seen.body_null); /* a form arrives as fields, not as a body */
  assert_int_equal(f->seen.body_len, 0);
  assert_int_equal(f->seen.form_count, 4);
  ep_https_request req = {.form = f->seen.form, .form_count = f->seen.form_count};
  assert_string_equal(ep_https_form_value(&req, "grant_type"), "client_credentials");
  assert_string_equal(ep_https_form_value(&req, "client_id"), "edgenode-a b");
  assert_string_equal(ep_https_form_value(&req, "client_secret"), "s=&x");
  assert_string_equal(ep_https_form_value(&req, "empty"), "");
  assert_null(ep_https_form_value(&req, "audience"));
  assert_null(ep_https_form_value(&req, "grant"));
}

/* POSTs form and returns whether the handler saw it marked invalid. */
static bool form_invalid(fixture *f, const char *form) {
  const char *form_type[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
  tu_response r;
  int calls = f->seen.calls;
  assert_int_equal(call(f, "POST", "/echo", form_type, form, strlen(form), &r), 201);
  tu_response_clear(&r);
  assert_int_equal(f->seen.calls, calls + 1);
  return f->seen.form_invalid;
}

static void form_bounds_mark_the_form_invalid(void **state) {
  fixture *f = *state;
  char form[8192];
  /* Field count: 16 kept, a 17th makes the form invalid. */
  form[0] = '\0';
  for (int i = 0; i < EP_HTTPS_FORM_FIELDS_MAX; i++)
    snprintf(form + strlen(form), sizeof form - strlen(form), "%sf%d=v", i ? "&" : "", i);
  assert_false(form_invalid(f, form));
  assert_int_equal(f->seen.form_count, EP_HTTPS_FORM_FIELDS_MAX);
  strcat(form, "&f16=v");
  assert_true(form_invalid(f, form));

  /* Value length: 1023 bytes fit with the NUL, 1024 do not. */
  strcpy(form, "v=");
  memset(form + 2, 'x', EP_HTTPS_FORM_VALUE_MAX - 1);
  form[2 + EP_HTTPS_FORM_VALUE_MAX - 1] = '\0';
  assert_false(form_invalid(f, form));
  assert_int_equal(strlen(f->seen.form[0].value), EP_HTTPS_FORM_VALUE_MAX - 1);
  strcat(form, "x");
  assert_true(form_invalid(f, form));

  /* Name length: 63 bytes fit, 64 do not. */
  memset(form, 'n', EP_HTTPS_FORM_NAME_MAX - 1);
  strcpy(form + EP_HTTPS_FORM_NAME_MAX - 1, "=1");
  assert_false(form_invalid(f, form));
  memset(form, 'n', EP_HTTPS_FORM_NAME_MAX);
  strcpy(form + EP_HTTPS_FORM_NAME_MAX, "=1");
  assert_true(form_invalid(f, form));

  /* A NUL byte in a value (%00) is refused rather than cut. */
  assert_true(form_invalid(f, "a=1%002"));
}

static void basic_credentials_are_decoded(void **state) {
  fixture *f = *state;
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/echo", f->port);
  tu_request req = {.url = url, .user = "edgenode-1", .password = "p@ss:word"};
  tu_response r;
  assert_int_equal(tu_http(&req, &r), CURLE_OK);
  assert_int_equal(r.status, 200);
  tu_response_clear(&r);
  assert_true(f->seen.has_user);
  assert_string_equal(f->seen.user, "edgenode-1");
  assert_string_equal(f->seen.password, "p@ss:word"); /* only the first ':' separates */
  assert_true(strncmp(f->seen.authorization, "Basic ", 6) == 0);

  const char *bearer[] = {"Authorization: Bearer t", NULL};
  assert_int_equal(call(f, NULL, "/echo", bearer, NULL, 0, &r), 200);
  tu_response_clear(&r);
  assert_false(f->seen.has_user);
  assert_string_equal(f->seen.authorization, "Bearer t");
}

static void tls_is_served_with_the_given_certificate(void **state) {
  fixture *f = *state;
  assert_int_equal(tu_make_certs(f->dir), 0);
  char *cert_path = tu_path(f->dir, "server.pem"), *key_path = tu_path(f->dir, "server.key");
  char *ca = tu_path(f->dir, "ca.pem"), *other = tu_path(f->dir, "other.pem");
  char *cert = tu_slurp(cert_path), *key = tu_slurp(key_path);
  assert_non_null(cert);
  assert_non_null(key);
  ep_https_server *s = NULL;
  int port = 0;
  assert_int_equal(ep_https_server_new(&s, "127.0.0.1:0", cert, key), 0);
  assert_int_equal(ep_https_server_route(s, "GET", "/echo", record, &f->seen), 0);
  assert_int_equal(ep_https_server_start(s, &port), 0);

  char url[128];
  snprintf(url, sizeof url, "https://127.0.0.1:%d/echo", port);
  tu_request req = {.url = url, .ca_file = ca};
  tu_response r;
  assert_int_equal(tu_http(&req, &r), CURLE_OK);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "hello");
  tu_response_clear(&r);

  /* A client that trusts another CA refuses the server; plaintext gets no answer. */
  int calls = f->seen.calls;
  req.ca_file = other;
  assert_int_equal(tu_http(&req, &r), CURLE_PEER_FAILED_VERIFICATION);
  tu_response_clear(&r);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/echo", port);
  req.ca_file = NULL;
  assert_int_not_equal(tu_http(&req, &r), CURLE_OK);
  tu_response_clear(&r);
  assert_int_equal(f->seen.calls, calls);
  ep_https_server_free(s);

  /* A certificate that is not one: the server does not start. */
  assert_int_equal(ep_https_server_new(&s, "127.0.0.1:0", "not a certificate", key), 0);
  assert_int_equal(ep_https_server_start(s, &port), EP_EIO);
  ep_https_server_free(s);
  free(cert);
  free(key);
  free(cert_path);
  free(key_path);
  free(ca);
  free(other);
}

static void serve_fd_answers_pipelined_requests_on_the_calling_thread(void **state) {
  fixture *f = *state;
  ep_https_server *s = NULL;
  assert_int_equal(ep_https_server_new(&s, "127.0.0.1:0", NULL, NULL), 0);
  assert_int_equal(ep_https_server_route(s, "GET", "/echo", record, &f->seen), 0);
  int fds[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  const char *requests = "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n"
                         "GET /missing HTTP/1.1\r\nHost: t\r\n\r\n";
  assert_int_equal(write(fds[0], requests, strlen(requests)), (ssize_t)strlen(requests));
  assert_int_equal(shutdown(fds[0], SHUT_WR), 0);
  assert_int_equal(ep_https_server_serve_fd(s, fds[1]), 0); /* returns once both are answered */
  char answer[8192];
  size_t len = 0;
  ssize_t n;
  while ((n = read(fds[0], answer + len, sizeof answer - 1 - len)) > 0) len += (size_t)n;
  answer[len] = '\0';
  close(fds[0]);
  char *first = strstr(answer, "HTTP/1.1 200");
  char *second = strstr(answer, "HTTP/1.1 404");
  assert_non_null(first);
  assert_non_null(second);
  assert_true(first < second);
  assert_non_null(strstr(first, "\r\n\r\nhello"));
  assert_int_equal(f->seen.calls, 1);
  ep_https_server_free(s);
}

/* ---- limits ------------------------------------------------------------------------------ */

/* A route that blocks until released, counting the calls that wait. */
typedef struct gate {
  pthread_mutex_t lock;
  pthread_cond_t changed;
  int waiting;
  bool open;
} gate;

static void wait_at_gate(void *data, const ep_https_request *req, ep_https_response *resp) {
  (void)req;
  gate *g = data;
  pthread_mutex_lock(&g->lock);
  g->waiting++;
  pthread_cond_broadcast(&g->changed);
  while (!g->open) pthread_cond_wait(&g->changed, &g->lock);
  pthread_mutex_unlock(&g->lock);
  resp->status = 200;
  resp->body = strdup("through");
  resp->len = strlen(resp->body);
}

/* Waits (up to 5 s) until n calls wait at g. */
static bool gate_reached(gate *g, int n) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 5;
  pthread_mutex_lock(&g->lock);
  while (g->waiting < n && pthread_cond_timedwait(&g->changed, &g->lock, &until) == 0) {
  }
  bool reached = g->waiting >= n;
  pthread_mutex_unlock(&g->lock);
  return reached;
}

static void gate_open(gate *g) {
  pthread_mutex_lock(&g->lock);
  g->open = true;
  pthread_cond_broadcast(&g->changed);
  pthread_mutex_unlock(&g->lock);
}

static int64_t ms_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A plaintext TCP connection to 127.0.0.1:port, connected. */
static int dial(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_true(fd >= 0);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  return fd;
}

static void send_text(int fd, const char *text) {
  assert_int_equal(send(fd, text, strlen(text), MSG_NOSIGNAL), (ssize_t)strlen(text));
}

/* True when the server closes fd (EOF or reset) within ms; data before that is skipped. */
static bool closed_within(int fd, int ms) {
  int64_t until = ms_now() + ms;
  for (;;) {
    int left = (int)(until - ms_now());
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (left <= 0 || poll(&p, 1, left) <= 0) return false;
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return true;
  }
}

/* Reads fd until the server closes it or 5 s pass; true when what came holds text. */
static bool answer_holds(int fd, const char *text) {
  char buf[8192];
  size_t len = 0;
  int64_t until = ms_now() + 5000;
  while (len < sizeof buf - 1 && ms_now() < until) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 100) <= 0) continue;
    ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
    if (n <= 0) break;
    len += (size_t)n;
    buf[len] = '\0';
    if (strstr(buf, text)) return true;
  }
  buf[len] = '\0';
  return strstr(buf, text) != NULL;
}

static ep_https_server *start_limited(fixture *f, const ep_https_limits *limits, gate *g, int *port) {
  ep_https_server *s = NULL;
  assert_int_equal(ep_https_server_new(&s, "127.0.0.1:0", NULL, NULL), 0);
  assert_int_equal(ep_https_server_set_limits(s, limits), 0);
  assert_int_equal(ep_https_server_route(s, "GET", "/echo", record, &f->seen), 0);
  if (g) assert_int_equal(ep_https_server_route(s, "GET", "/gate", wait_at_gate, g), 0);
  assert_int_equal(ep_https_server_serve_directory(s, "/files", f->dir), 0);
  assert_int_equal(ep_https_server_start(s, port), 0);
  return s;
}

static void limits_are_checked_and_fixed_once_started(void **state) {
  (void)state;
  ep_https_server *s = NULL;
  assert_int_equal(ep_https_server_new(&s, "127.0.0.1:0", NULL, NULL), 0);
  const ep_https_limits good = {1, 1, 10, 10, 1, 1};
  ep_https_limits bad[] = {{0, 1, 10, 10, 1, 1}, {1, EP_HTTPS_THREADS_MAX + 1, 10, 10, 1, 1}, {1, 1, 0, 1, 1, 1},
                           {1, 1, 10, 11, 1, 1}, {1, 1, 10, 0, 1, 1}, {1, 1, 10, 10, 0, 1}, {1, 1, 10, 10, 1, 0}};
  const char *named[] = {"'https.threads'", "'https.handler_threads'", "'https.connections_max'",
                         "'https.connections_per_ip'", "'https.connections_per_ip'", "'https.header_timeout_s'",
                         "'https.idle_timeout_s'"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(ep_https_server_set_limits(s, &bad[i]), EP_EINVAL);
    if (!strstr(ep_error_message(), named[i])) fail_msg("case %zu: %s", i, ep_error_message());
  }
  assert_int_equal(ep_https_server_set_limits(s, &good), 0);
  int port = 0;
  assert_int_equal(ep_https_server_start(s, &port), 0);
  assert_int_equal(ep_https_server_set_limits(s, &good), EP_EINVAL);
  ep_https_server_free(s);
}

/* A slowloris: a request trickled a byte every 200 ms is closed at its deadline, though the
 * connection is never idle; a whole request on another connection is answered meanwhile, and
 * a kept-alive connection trickling its next request is closed too. */
static void a_request_not_in_by_its_deadline_is_closed_even_when_it_trickles(void **state) {
  fixture *f = *state;
  const ep_https_limits limits = {2, 2, 100, 100, 1, 1};
  int port = 0;
  ep_https_server *s = start_limited(f, &limits, NULL, &port);
  int slow = dial(port), kept = dial(port);
  int64_t start = ms_now();
  send_text(slow, "GET /echo HTTP/1.1\r\nHost: t\r\n");
  send_text(kept, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
  assert_true(answer_holds(kept, "hello"));
  int64_t kept_since = ms_now();
  send_text(kept, "GET /echo HTTP/1.1\r\n");
  bool slow_closed = false, kept_closed = false;
  int64_t slow_at = 0, kept_at = 0;
  while (ms_now() - start < 6000 && !(slow_closed && kept_closed)) {
    if (!slow_closed && closed_within(slow, 200)) slow_closed = true, slow_at = ms_now();
    if (!slow_closed) send(slow, "X", 1, MSG_NOSIGNAL);
    if (!kept_closed && closed_within(kept, 1)) kept_closed = true, kept_at = ms_now();
    if (!kept_closed) send(kept, "X", 1, MSG_NOSIGNAL);
  }
  assert_true(slow_closed);
  assert_true(kept_closed);
  /* The deadline (1 s, checked every 250 ms), not anything sooner; the kept-alive one has idle + header. */
  if (slow_at - start < 900 || slow_at - start > 3000) fail_msg("closed after %lld ms", (long long)(slow_at - start));
  if (kept_at - kept_since < 1900 || kept_at - kept_since > 4000)
    fail_msg("kept-alive closed after %lld ms", (long long)(kept_at - kept_since));
  tu_response r = {0};
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/echo", port);
  tu_request req = {.method = "GET", .url = url};
  assert_int_equal(tu_http(&req, &r), CURLE_OK);
  assert_int_equal(r.status, 200);
  tu_response_clear(&r);
  close(slow);
  close(kept);
  ep_https_server_free(s);
}

/* At the per-address cap, a new connection closes the one that has waited longest for its
 * request, and is served. */
static void over_the_cap_the_longest_waiting_connection_makes_room(void **state) {
  fixture *f = *state;
  const ep_https_limits limits = {2, 2, 100, 2, 10, 30};
  int port = 0;
  ep_https_server *s = start_limited(f, &limits, NULL, &port);
  int oldest = dial(port);
  usleep(50000);
  int newer = dial(port);
  usleep(50000);
  int third = dial(port);
  send_text(third, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
  assert_true(answer_holds(third, "hello"));
  assert_true(closed_within(oldest, 2000));
  assert_false(closed_within(newer, 300));
  close(oldest);
  close(newer);
  close(third);
  ep_https_server_free(s);
}

/* With every connection of the address busy (a handler holds its request), a new one is
 * refused at once, not left hanging; the busy ones are answered. Handlers hold no connection
 * thread: with one of each, a file is served while a handler blocks. */
static void over_the_cap_with_every_connection_busy_a_new_one_is_refused_at_once(void **state) {
  fixture *f = *state;
  const ep_https_limits limits = {1, 3, 100, 3, 10, 30};
  gate g = {.lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER};
  char *file = tu_write(f->dir, "a.txt", "file body\n");
  int port = 0;
  ep_https_server *s = start_limited(f, &limits, &g, &port);
  int busy[2] = {dial(port), dial(port)};
  for (int i = 0; i < 2; i++) send_text(busy[i], "GET /gate HTTP/1.1\r\nHost: t\r\n\r\n");
  assert_true(gate_reached(&g, 2));
  int reader = dial(port); /* the third: answered by the one connection thread, then kept alive */
  send_text(reader, "GET /files/a.txt HTTP/1.1\r\nHost: t\r\n\r\n");
  assert_true(answer_holds(reader, "file body"));
  int fourth = dial(port); /* the kept-alive reader, waiting, makes room */
  assert_true(closed_within(reader, 2000));
  send_text(fourth, "GET /gate HTTP/1.1\r\nHost: t\r\n\r\n");
  assert_true(gate_reached(&g, 3));
  int64_t start = ms_now();
  int over = dial(port); /* three busy now: refused, at once */
  assert_true(closed_within(over, 1000));
  if (ms_now() - start > 1000) fail_msg("refused after %lld ms", (long long)(ms_now() - start));
  gate_open(&g);
  for (int i = 0; i < 2; i++) assert_true(answer_holds(busy[i], "through"));
  assert_true(answer_holds(fourth, "through"));
  close(over);
  close(fourth);
  close(reader);
  for (int i = 0; i < 2; i++) close(busy[i]);
  ep_https_server_free(s);
  free(file);
}


/* ---- streamed responses, query arguments, prefix routes ------------------------------------- */

/* What the streams of /feed send: text queued by the test, taken by whichever stream reads. */
typedef struct feed {
  pthread_mutex_t lock;
  char pending[256];
  int opened, closed;
  char query[64];  /* the last request's ?q= */
  char header[64]; /* its X-Test header */
  bool bearer;     /* it carried "Bearer sesame" */
} feed;

static long feed_read(void *stream, char *buf, size_t max) {
  feed *fd = stream;
  pthread_mutex_lock(&fd->lock);
  size_t n = strlen(fd->pending);
  if (n > max) n = max;
  memcpy(buf, fd->pending, n);
  memmove(fd->pending, fd->pending + n, strlen(fd->pending + n) + 1);
  pthread_mutex_unlock(&fd->lock);
  return (long)n;
}

static void feed_close(void *stream) {
  feed *fd = stream;
  pthread_mutex_lock(&fd->lock);
  fd->closed++;
  pthread_mutex_unlock(&fd->lock);
}

static const ep_https_stream_ops feed_ops = {.read = feed_read, .close = feed_close};

static void open_feed(void *data, const ep_https_request *req, ep_https_response *resp) {
  feed *fd = data;
  const char *q = ep_https_query_value(req, "q"), *h = ep_https_header_value(req, "x-test");
  pthread_mutex_lock(&fd->lock);
  fd->opened++;
  snprintf(fd->query, sizeof fd->query, "%s", q ? q : "(none)");
  snprintf(fd->header, sizeof fd->header, "%s", h ? h : "(none)");
  fd->bearer = ep_https_bearer_matches(req, "sesame");
  pthread_mutex_unlock(&fd->lock);
  *resp = (ep_https_response){.status = 200, .content_type = "text/event-stream", .stream = fd, .stream_ops = &feed_ops};
}

static void feed_push(feed *fd, const char *text) {
  pthread_mutex_lock(&fd->lock);
  strncat(fd->pending, text, sizeof fd->pending - strlen(fd->pending) - 1);
  pthread_mutex_unlock(&fd->lock);
}

static int feed_count(feed *fd, bool closed) {
  pthread_mutex_lock(&fd->lock);
  int n = closed ? fd->closed : fd->opened;
  pthread_mutex_unlock(&fd->lock);
  return n;
}

/* Waits up to ms for n streams of fd to have been closed. */
static bool closed_streams(feed *fd, int n, int ms) {
  int64_t until = ms_now() + ms;
  while (feed_count(fd, true) < n && ms_now() < until) usleep(10000);
  return feed_count(fd, true) >= n;
}

static ep_https_server *start_feed(feed *fd, fixture *f, unsigned max, unsigned keepalive_s, int *port) {
  ep_https_server *s = NULL;
  const ep_https_limits one = {1, 1, 16, 16, 5, 30}; /* one thread of each: a waiting stream holds none */
  assert_int_equal(ep_https_server_new(&s, "127.0.0.1:0", NULL, NULL), 0);
  assert_int_equal(ep_https_server_set_limits(s, &one), 0);
  assert_int_equal(ep_https_server_set_streams(s, max, keepalive_s, ": ka\n\n"), 0);
  assert_int_equal(ep_https_server_route(s, "GET", "/feed", open_feed, fd), 0);
  assert_int_equal(ep_https_server_route(s, "GET", "/echo", record, &f->seen), 0);
  assert_int_equal(ep_https_server_route(s, "GET", "/under/*", record, &f->seen), 0);
  assert_int_equal(ep_https_server_start(s, port), 0);
  return s;
}

static void a_stream_waits_holding_no_thread_and_sends_when_woken(void **state) {
  fixture *f = *state;
  feed fd = {.lock = PTHREAD_MUTEX_INITIALIZER};
  int port = 0;
  ep_https_server *s = start_feed(&fd, f, 4, 0, &port);
  feed_push(&fd, "event: first\n\n");
  int a = dial(port), b = dial(port);
  send_text(a, "GET /feed?q=a%20b HTTP/1.1\r\nHost: t\r\nX-Test: yes\r\nAuthorization: Bearer sesame\r\n\r\n");
  assert_true(answer_holds(a, "event: first"));
  send_text(b, "GET /feed HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer other\r\n\r\n");
  usleep(200000);
  assert_int_equal(feed_count(&fd, false), 2);
  /* Both wait, yet the one handler thread and the one connection thread answer others. */
  tu_response r;
  assert_int_equal(call(&(fixture){.port = port}, "GET", "/echo", NULL, NULL, 0, &r), 200);
  tu_response_clear(&r);
  feed_push(&fd, "event: second\n\n");
  ep_https_server_wake_streams(s);
  assert_true(answer_holds(a, "event: second") || answer_holds(b, "event: second"));
  pthread_mutex_lock(&fd.lock);
  assert_string_equal(fd.query, "(none)"); /* the second request's: no query, no header */
  assert_string_equal(fd.header, "(none)");
  assert_false(fd.bearer);
  pthread_mutex_unlock(&fd.lock);
  assert_int_equal(feed_count(&fd, true), 0);
  close(a);
  assert_true(closed_streams(&fd, 1, 3000)); /* its client left: ended within a tick */
  ep_https_server_free(s); /* ends the other */
  assert_int_equal(feed_count(&fd, true), 2);
  close(b);
}

static void query_arguments_headers_and_the_bearer_token_reach_the_handler(void **state) {
  fixture *f = *state;
  feed fd = {.lock = PTHREAD_MUTEX_INITIALIZER};
  int port = 0;
  ep_https_server *s = start_feed(&fd, f, 4, 0, &port);
  int a = dial(port);
  send_text(a, "GET /feed?q=a%20b&x=1 HTTP/1.1\r\nHost: t\r\nX-Test: yes\r\nAuthorization: Bearer sesame\r\n\r\n");
  assert_true(answer_holds(a, "200 OK"));
  pthread_mutex_lock(&fd.lock);
  assert_string_equal(fd.query, "a b");
  assert_string_equal(fd.header, "yes");
  assert_true(fd.bearer);
  pthread_mutex_unlock(&fd.lock);
  close(a);
  /* A route ending in '*' takes the paths under it; its prefix alone is not one of them. */
  tu_response r;
  assert_int_equal(call(&(fixture){.port = port}, "GET", "/under/x/y", NULL, NULL, 0, &r), 200);
  tu_response_clear(&r);
  assert_string_equal(f->seen.path, "/under/x/y");
  assert_int_equal(call(&(fixture){.port = port}, "GET", "/under", NULL, NULL, 0, &r), 404);
  tu_response_clear(&r);
  ep_https_server_free(s);
}

static void streams_over_the_cap_get_503_and_a_silent_one_sends_the_keepalive(void **state) {
  fixture *f = *state;
  feed fd = {.lock = PTHREAD_MUTEX_INITIALIZER};
  int port = 0;
  ep_https_server *s = NULL;
  assert_int_equal(ep_https_server_new(&s, "127.0.0.1:0", NULL, NULL), 0);
  assert_int_equal(ep_https_server_set_streams(s, 0, 1, NULL), EP_EINVAL);
  assert_int_equal(ep_https_server_set_streams(s, EP_HTTPS_STREAMS_MAX + 1, 1, NULL), EP_EINVAL);
  ep_https_server_free(s);
  s = start_feed(&fd, f, 1, 1, &port);
  assert_int_equal(ep_https_server_set_streams(s, 2, 1, NULL), EP_EINVAL); /* it runs */
  int a = dial(port), b = dial(port);
  send_text(a, "GET /feed HTTP/1.1\r\nHost: t\r\n\r\n");
  assert_true(answer_holds(a, "200 OK"));
  send_text(b, "GET /feed HTTP/1.1\r\nHost: t\r\n\r\n");
  assert_true(answer_holds(b, "503"));
  assert_int_equal(feed_count(&fd, false), 2);
  assert_true(closed_streams(&fd, 1, 1000)); /* the refused one was closed at once */
  assert_true(answer_holds(a, ": ka")); /* a second of silence */
  close(a);
  close(b);
  ep_https_server_free(s);
  assert_int_equal(feed_count(&fd, true), 2);
}

static void serve_fd_ends_a_stream_when_it_has_nothing(void **state) {
  (void)state;
  feed fd = {.lock = PTHREAD_MUTEX_INITIALIZER};
  ep_https_server *s = NULL;
  assert_int_equal(ep_https_server_new(&s, "127.0.0.1:0", NULL, NULL), 0);
  assert_int_equal(ep_https_server_route(s, "GET", "/feed", open_feed, &fd), 0);
  feed_push(&fd, "data: all there is\n\n");
  int fds[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  const char *request = "GET /feed HTTP/1.1\r\nHost: t\r\n\r\n";
  assert_int_equal(write(fds[0], request, strlen(request)), (ssize_t)strlen(request));
  assert_int_equal(shutdown(fds[0], SHUT_WR), 0);
  assert_int_equal(ep_https_server_serve_fd(s, fds[1]), 0);
  assert_true(answer_holds(fds[0], "data: all there is"));
  close(fds[0]);
  assert_int_equal(feed_count(&fd, true), 1);
  ep_https_server_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(addresses_accepted_and_refused),
      cmocka_unit_test_setup_teardown(routes_and_directories_are_bounded_and_fixed_once_started, setup, teardown),
      cmocka_unit_test_setup_teardown(requests_reach_their_route_or_get_404_or_405, setup, teardown),
      cmocka_unit_test_setup_teardown(raw_body_arrives_whole_up_to_the_bound, setup, teardown),
      cmocka_unit_test_setup_teardown(form_body_is_decoded_into_fields, setup, teardown),
      cmocka_unit_test_setup_teardown(form_bounds_mark_the_form_invalid, setup, teardown),
      cmocka_unit_test_setup_teardown(basic_credentials_are_decoded, setup, teardown),
      cmocka_unit_test_setup_teardown(tls_is_served_with_the_given_certificate, setup, teardown),
      cmocka_unit_test_setup_teardown(serve_fd_answers_pipelined_requests_on_the_calling_thread, setup, teardown),
      cmocka_unit_test(limits_are_checked_and_fixed_once_started),
      cmocka_unit_test_setup_teardown(a_request_not_in_by_its_deadline_is_closed_even_when_it_trickles, setup, teardown),
      cmocka_unit_test_setup_teardown(over_the_cap_the_longest_waiting_connection_makes_room, setup, teardown),
      cmocka_unit_test_setup_teardown(over_the_cap_with_every_connection_busy_a_new_one_is_refused_at_once, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(a_stream_waits_holding_no_thread_and_sends_when_woken, setup, teardown),
      cmocka_unit_test_setup_teardown(query_arguments_headers_and_the_bearer_token_reach_the_handler, setup, teardown),
      cmocka_unit_test_setup_teardown(streams_over_the_cap_get_503_and_a_silent_one_sends_the_keepalive, setup,
                                      teardown),
      cmocka_unit_test(serve_fd_ends_a_stream_when_it_has_nothing),
  };
  return cmocka_run_group_tests_name("https", tests, NULL, NULL);
}
