/* Unit tests of core/lib/net/http_client.c against a real local server (net/https, plaintext
 * and TLS with openssl-made certificates): requests and their bounds and failures, streamed
 * downloads with ranges, cancellation and file:// URLs, and the two header parsers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <cmocka.h>

#include "base/error.h"
#include "net/http_client.h"
#include "net/https.h"
#include "testutil.h"

#define DATA_SIZE (300 * 1000 + 7)
#define BIG_SIZE 2000

typedef struct fixture {
  char *dir;
  char *files;  /* dir/files: served under /files */
  char *ca;     /* dir/ca.pem: trusted for the TLS server */
  char *other;  /* dir/other.pem: an unrelated CA */
  ep_https_server *plain, *tls;
  int port, tls_port;
  char base[64], tls_base[64];
} fixture;

static uint8_t data_byte(size_t i) { return (uint8_t)(i * 13 + 5); }

/* Answers with what it received: "METHOD|authorization|content type|user:password|body". */
static void echo(void *data, const ep_https_request *req, ep_https_response *resp) {
  (void)data;
  char *text = NULL;
  int n = asprintf(&text, "%s|%s|%s|%s:%s|%.*s", req->method, req->authorization, req->content_type,
                   req->basic_user ? req->basic_user : "-", req->basic_password ? req->basic_password : "-",
                   (int)req->body_len, req->body ? (const char *)req->body : "");
  resp->status = 200;
  resp->content_type = "text/x-echo";
  resp->body = text;
  resp->len = n > 0 ? (size_t)n : 0;
}

static void big(void *data, const ep_https_request *req, ep_https_response *resp) {
  (void)data, (void)req;
  resp->status = 200;
  resp->body = malloc(BIG_SIZE);
  memset(resp->body, 'b', BIG_SIZE);
  resp->len = BIG_SIZE;
}

static void teapot(void *data, const ep_https_request *req, ep_https_response *resp) {
  (void)data, (void)req;
  resp->status = 418;
  resp->content_type = "application/problem+json";
  resp->body = strdup("{\"teapot\":true}");
  resp->len = strlen(resp->body);
}

static void slow(void *data, const ep_https_request *req, ep_https_response *resp) {
  (void)data, (void)req;
  struct timespec t = {1, 0};
  nanosleep(&t, NULL);
  resp->status = 200;
  resp->body = strdup("late");
  resp->len = 4;
}

static int serve(fixture *f, ep_https_server *s, int *port) {
  const char *echo_methods[] = {"GET", "POST", "PUT", "DELETE"};
  for (size_t i = 0; i < 4; i++)
    if (ep_https_server_route(s, echo_methods[i], "/echo", echo, NULL) < 0) return -1;
  if (ep_https_server_route(s, "GET", "/big", big, NULL) < 0 ||
      ep_https_server_route(s, "GET", "/teapot", teapot, NULL) < 0 ||
      ep_https_server_route(s, "GET", "/slow", slow, NULL) < 0 ||
      ep_https_server_serve_directory(s, "/files", f->files) < 0)
    return -1;
  return ep_https_server_start(s, port);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_mkdtemp();
  if (!f->dir || tu_make_certs(f->dir) < 0) return -1;
  f->files = tu_path(f->dir, "files");
  f->ca = tu_path(f->dir, "ca.pem");
  f->other = tu_path(f->dir, "other.pem");
  if (mkdir(f->files, 0755) < 0) return -1;
  char *path = tu_path(f->files, "data.bin");
  FILE *out = fopen(path, "wb");
  for (size_t i = 0; out && i < DATA_SIZE; i++) fputc(data_byte(i), out);
  if (!out || fclose(out) != 0) return -1;
  free(path);
  char *cert_path = tu_path(f->dir, "server.pem"), *key_path = tu_path(f->dir, "server.key");
  char *cert = tu_slurp(cert_path), *key = tu_slurp(key_path);
  int r = ep_https_server_new(&f->plain, "127.0.0.1:0", NULL, NULL) == 0 && serve(f, f->plain, &f->port) == 0 &&
          ep_https_server_new(&f->tls, "127.0.0.1:0", cert, key) == 0 && serve(f, f->tls, &f->tls_port) == 0 ? 0 : -1;
  free(cert);
  free(key);
  free(cert_path);
  free(key_path);
  snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", f->port);
  snprintf(f->tls_base, sizeof f->tls_base, "https://127.0.0.1:%d", f->tls_port);
  *state = f;
  return r;
}

static int teardown(void **state) {
  fixture *f = *state;
  ep_https_server_free(f->plain);
  ep_https_server_free(f->tls);
  free(f->files);
  free(f->ca);
  free(f->other);
  tu_rmdir(f->dir);
  free(f);
  return 0;
}

static char *url_of(const char *base, const char *path) {
  char *url = NULL;
  assert_true(asprintf(&url, "%s%s", base, path) > 0);
  return url;
}

/* ---- ep_http_perform ------------------------------------------------------------------- */

static void methods_headers_and_bodies_reach_the_server(void **state) {
  fixture *f = *state;
  char *url = url_of(f->base, "/echo");
  ep_http_reply reply;
  ep_http_call get = {.method = "GET", .url = url};
  assert_int_equal(ep_http_perform(&get, &reply), 0);
  assert_int_equal(reply.status, 200);
  assert_string_equal(reply.body, "GET|||-:-|");
  assert_int_equal(reply.len, strlen("GET|||-:-|"));
  assert_string_equal(reply.content_type, "text/x-echo");
  assert_string_equal(reply.location, "");
  ep_http_reply_clear(&reply);

  const char *headers[] = {"Content-Type: application/json", "Authorization: Bearer tok", NULL};
  const char *json = "{\"a\":1}";
  ep_http_call post = {.method = "POST", .url = url, .headers = headers, .body = (const uint8_t *)json,
                       .body_len = strlen(json)};
  assert_int_equal(ep_http_perform(&post, &reply), 0);
  assert_string_equal(reply.body, "POST|Bearer tok|application/json|-:-|{\"a\":1}");
  ep_http_reply_clear(&reply);

  /* body_len is what is sent, not the string length. */
  post.body_len = 3;
  assert_int_equal(ep_http_perform(&post, &reply), 0);
  assert_string_equal(reply.body, "POST|Bearer tok|application/json|-:-|{\"a");
  ep_http_reply_clear(&reply);

  ep_http_call put = {.method = "PUT", .url = url, .body = (const uint8_t *)"x", .body_len = 1};
  assert_int_equal(ep_http_perform(&put, &reply), 0);
  assert_true(strncmp(reply.body, "PUT|", 4) == 0);
  ep_http_reply_clear(&reply);
  ep_http_call del = {.method = "DELETE", .url = url};
  assert_int_equal(ep_http_perform(&del, &reply), 0);
  assert_true(strncmp(reply.body, "DELETE|", 7) == 0);
  ep_http_reply_clear(&reply);

  ep_http_call basic = {.method = "GET", .url = url, .basic_user = "client", .basic_password = "se:cret"};
  assert_int_equal(ep_http_perform(&basic, &reply), 0);
  assert_non_null(strstr(reply.body, "|client:se:cret|"));
  ep_http_reply_clear(&reply);
  free(url);
}

static void at_most_sixteen_headers_are_sent(void **state) {
  fixture *f = *state;
  char *url = url_of(f->base, "/echo");
  const char *headers[EP_HTTP_HEADERS_MAX + 2];
  char names[EP_HTTP_HEADERS_MAX][32];
  for (int i = 0; i < EP_HTTP_HEADERS_MAX - 1; i++) {
    snprintf(names[i], sizeof names[i], "X-Filler-%d: %d", i, i);
    headers[i] = names[i];
  }
  headers[EP_HTTP_HEADERS_MAX - 1] = "Authorization: sixteenth";
  headers[EP_HTTP_HEADERS_MAX] = NULL;
  ep_http_reply reply;
  ep_http_call call = {.method = "GET", .url = url, .headers = headers};
  assert_int_equal(ep_http_perform(&call, &reply), 0);
  assert_string_equal(reply.body, "GET|sixteenth||-:-|");
  ep_http_reply_clear(&reply);

  headers[EP_HTTP_HEADERS_MAX - 1] = "X-Filler-last: 1";
  headers[EP_HTTP_HEADERS_MAX] = "Authorization: seventeenth";
  headers[EP_HTTP_HEADERS_MAX + 1] = NULL;
  assert_int_equal(ep_http_perform(&call, &reply), 0);
  assert_string_equal(reply.body, "GET|||-:-|"); /* the seventeenth never left */
  ep_http_reply_clear(&reply);
  free(url);
}

static void any_status_is_a_reply(void **state) {
  fixture *f = *state;
  char *url = url_of(f->base, "/teapot");
  ep_http_reply reply;
  ep_http_call call = {.method = "GET", .url = url};
  assert_int_equal(ep_http_perform(&call, &reply), 0);
  assert_int_equal(reply.status, 418);
  assert_string_equal(reply.body, "{\"teapot\":true}");
  assert_string_equal(reply.content_type, "application/problem+json");
  ep_http_reply_clear(&reply);
  free(url);
  url = url_of(f->base, "/nowhere");
  call.url = url;
  assert_int_equal(ep_http_perform(&call, &reply), 0);
  assert_int_equal(reply.status, 404);
  assert_non_null(reply.body);
  ep_http_reply_clear(&reply);
  assert_null(reply.body);
  assert_int_equal(reply.len, 0);
  assert_int_equal(reply.status, 0);
  free(url);
}

static void response_larger_than_the_limit_fails(void **state) {
  fixture *f = *state;
  char *url = url_of(f->base, "/big");
  ep_http_reply reply = {.status = -1};
  ep_http_call call = {.method = "GET", .url = url, .response_max = BIG_SIZE};
  assert_int_equal(ep_http_perform(&call, &reply), 0); /* exactly the limit */
  assert_int_equal(reply.len, BIG_SIZE);
  ep_http_reply_clear(&reply);
  reply.status = -1;
  call.response_max = BIG_SIZE - 1;
  assert_int_equal(ep_http_perform(&call, &reply), EP_ERANGE);
  assert_int_equal(reply.status, -1); /* untouched */
  assert_non_null(strstr(ep_error_message(), url));
  assert_non_null(strstr(ep_error_message(), "larger than 1999 bytes"));
  free(url);
}

static void bad_requests_and_unreachable_servers_fail(void **state) {
  fixture *f = *state;
  ep_http_reply reply = {.status = -1};
  char *url = url_of(f->base, "/echo");
  const char *methods[] = {"PATCH", "get", "HEAD", ""};
  for (size_t i = 0; i < 4; i++) {
    ep_http_call call = {.method = methods[i], .url = url};
    assert_int_equal(ep_http_perform(&call, &reply), EP_EINVAL);
  }
  const char *urls[] = {"ftp://127.0.0.1/x", "file:///etc/passwd", "127.0.0.1/echo", "", NULL};
  for (size_t i = 0; i < 5; i++) {
    ep_http_call call = {.method = "GET", .url = urls[i]};
    assert_int_equal(ep_http_perform(&call, &reply), EP_EINVAL);
  }
  assert_non_null(strstr(ep_error_message(), "is not http:// or https://"));
  assert_int_equal(reply.status, -1);
  free(url);

  char refused[64];
  snprintf(refused, sizeof refused, "http://127.0.0.1:%d/echo", tu_free_port());
  ep_http_call call = {.method = "GET", .url = refused, .timeout_ms = 5000};
  assert_int_equal(ep_http_perform(&call, &reply), EP_EIO);
  assert_non_null(strstr(ep_error_message(), refused));
}

static void slow_server_times_out(void **state) {
  fixture *f = *state;
  char *url = url_of(f->base, "/slow");
  ep_http_reply reply;
  ep_http_call call = {.method = "GET", .url = url, .timeout_ms = 100};
  assert_int_equal(ep_http_perform(&call, &reply), EP_ETIMEDOUT);
  assert_non_null(strstr(ep_error_message(), url));
  free(url);
}

static void tls_needs_the_right_ca(void **state) {
  fixture *f = *state;
  char *url = url_of(f->tls_base, "/echo");
  ep_http_reply reply;
  ep_http_call call = {.method = "GET", .url = url, .ca_file = f->ca};
  assert_int_equal(ep_http_perform(&call, &reply), 0);
  assert_int_equal(reply.status, 200);
  assert_string_equal(reply.body, "GET|||-:-|");
  ep_http_reply_clear(&reply);
  call.ca_file = f->other;
  assert_int_equal(ep_http_perform(&call, &reply), EP_EIO);
  assert_non_null(strstr(ep_error_message(), url));
  call.ca_file = NULL; /* the system's trust store does not know the test CA */
  assert_int_equal(ep_http_perform(&call, &reply), EP_EIO);
  free(url);
}

static void reply_header_keeps_location_and_content_type_bounded(void **state) {
  (void)state;
  ep_http_reply reply;
  memset(&reply, 0, sizeof reply);
  const char *line = "Location: https://edge.example/next\r\n";
  ep_http_reply_header(&reply, line, strlen(line));
  assert_string_equal(reply.location, "https://edge.example/next");
  line = "content-TYPE:\t application/json; charset=utf-8 \r\n";
  ep_http_reply_header(&reply, line, strlen(line));
  assert_string_equal(reply.content_type, "application/json; charset=utf-8");
  /* Other headers, and names that only start the same, leave both alone. */
  const char *others[] = {"X-Location: /evil\r\n", "Locations: /evil\r\n", "Content-Length: 5\r\n",
                          "HTTP/1.1 302 Found\r\n", "Location:\r\n"};
  for (size_t i = 0; i < 4; i++) ep_http_reply_header(&reply, others[i], strlen(others[i]));
  assert_string_equal(reply.location, "https://edge.example/next");
  ep_http_reply_header(&reply, others[4], strlen(others[4])); /* a name with nothing after it */
  assert_string_equal(reply.location, "");
  /* Control characters become '?'; only n bytes are read (the line is not NUL-terminated). */
  line = "Location: /a\x01" "b\x1b[0m\r\nLocation: /ignored";
  ep_http_reply_header(&reply, line, strlen("Location: /a\x01" "b\x1b[0m\r\n"));
  assert_string_equal(reply.location, "/a?b?[0m");
  /* Longer than the field: cut, NUL-terminated. */
  char huge[3 * EP_HTTP_LOCATION_MAX];
  int n = snprintf(huge, sizeof huge, "Location: ");
  memset(huge + n, 'L', sizeof huge - (size_t)n - 3);
  memcpy(huge + sizeof huge - 3, "\r\n", 3);
  ep_http_reply_header(&reply, huge, strlen(huge));
  assert_int_equal(strlen(reply.location), EP_HTTP_LOCATION_MAX - 1);
  assert_int_equal(strspn(reply.location, "L"), EP_HTTP_LOCATION_MAX - 1);
  n = snprintf(huge, sizeof huge, "Content-Type: ");
  memset(huge + n, 'c', 500);
  huge[n + 500] = '\0';
  ep_http_reply_header(&reply, huge, strlen(huge));
  assert_int_equal(strlen(reply.content_type), sizeof reply.content_type - 1);
}

/* ---- ep_http_fetch --------------------------------------------------------------------- */

typedef struct sink_state {
  uint8_t *bytes;
  size_t len;
  int calls;
  int fail_with; /* returned from the first call when non-zero */
} sink_state;

static int sink(void *data, const uint8_t *bytes, size_t len) {
  sink_state *s = data;
  s->calls++;
  if (s->fail_with) return s->fail_with;
  uint8_t *grown = realloc(s->bytes, s->len + len);
  if (!grown) return EP_ENOMEM;
  s->bytes = grown;
  memcpy(s->bytes + s->len, bytes, len);
  s->len += len;
  return 0;
}

static void assert_data_from(const sink_state *s, size_t first) {
  assert_int_equal(s->len, DATA_SIZE - first);
  for (size_t i = 0; i < s->len; i++)
    if (s->bytes[i] != data_byte(first + i)) fail_msg("byte %zu is not file byte %zu", i, first + i);
}

static void fetch_streams_whole_files_and_resumes_with_a_range(void **state) {
  fixture *f = *state;
  char *url = url_of(f->base, "/files/data.bin");
  sink_state s = {0};
  ep_fetch_info info;
  ep_fetch_call call = {.url = url};
  assert_int_equal(ep_http_fetch(&call, sink, &s, &info), 0);
  assert_int_equal(info.http_status, 200);
  assert_int_equal(info.total, DATA_SIZE);
  assert_int_equal(info.received, DATA_SIZE);
  assert_data_from(&s, 0);
  free(s.bytes);

  memset(&s, 0, sizeof s);
  call.offset = 123456;
  assert_int_equal(ep_http_fetch(&call, sink, &s, &info), 0);
  assert_int_equal(info.http_status, 206);
  assert_int_equal(info.total, DATA_SIZE); /* the whole resource, not the part */
  assert_int_equal(info.received, DATA_SIZE - 123456);
  assert_data_from(&s, 123456);
  free(s.bytes);
  free(url);

  /* Over TLS with the site's CA. */
  url = url_of(f->tls_base, "/files/data.bin");
  memset(&s, 0, sizeof s);
  ep_fetch_call tls = {.url = url, .ca_file = f->ca, .offset = DATA_SIZE - 10};
  assert_int_equal(ep_http_fetch(&tls, sink, &s, &info), 0);
  assert_data_from(&s, DATA_SIZE - 10);
  free(s.bytes);
  memset(&s, 0, sizeof s);
  tls.ca_file = f->other;
  assert_int_equal(ep_http_fetch(&tls, sink, &s, &info), EP_EIO);
  assert_int_equal(s.calls, 0);
  free(url);
}

static void fetch_failures_say_what_happened(void **state) {
  fixture *f = *state;
  sink_state s = {0};
  ep_fetch_info info;

  char *url = url_of(f->base, "/files/missing.bin");
  ep_fetch_call call = {.url = url};
  assert_int_equal(ep_http_fetch(&call, sink, &s, &info), EP_EFAILED);
  assert_int_equal(info.http_status, 404);
  assert_non_null(strstr(ep_error_message(), "HTTP 404"));
  assert_non_null(strstr(ep_error_message(), url));
  assert_int_equal(s.calls, 0);
  free(url);

  /* A server that ignores the Range (a route answers 200): cannot resume, nothing delivered. */
  url = url_of(f->base, "/echo");
  call = (ep_fetch_call){.url = url, .offset = 5};
  assert_int_equal(ep_http_fetch(&call, sink, &s, &info), EP_ENOTSUP);
  assert_int_equal(info.received, 0);
  assert_int_equal(s.calls, 0);
  free(url);

  /* The sink's own code ends the fetch. */
  url = url_of(f->base, "/files/data.bin");
  s.fail_with = -77;
  call = (ep_fetch_call){.url = url};
  assert_int_equal(ep_http_fetch(&call, sink, &s, &info), -77);
  assert_int_equal(s.calls, 1);
  assert_int_equal(info.received, 0);

  /* Cancelled. */
  atomic_int cancel = 1;
  s = (sink_state){0};
  call = (ep_fetch_call){.url = url, .cancel = &cancel};
  assert_int_equal(ep_http_fetch(&call, sink, &s, &info), EP_ECANCELED);
  free(url);

  /* Unreachable, through a dead proxy, or not a URL it fetches. */
  char refused[64];
  int dead = tu_free_port();
  snprintf(refused, sizeof refused, "http://127.0.0.1:%d/x", dead);
  call = (ep_fetch_call){.url = refused, .connect_timeout_ms = 5000};
  assert_int_equal(ep_http_fetch(&call, sink, &s, &info), EP_EIO);
  assert_non_null(strstr(ep_error_message(), refused));
  url = url_of(f->base, "/files/data.bin");
  call = (ep_fetch_call){.url = url, .proxy = refused};
  assert_int_equal(ep_http_fetch(&call, sink, &s, &info), EP_EIO);
  free(url);
  const char *bad[] = {"ftp://127.0.0.1/x", "data.bin", "", NULL};
  for (size_t i = 0; i < 4; i++) {
    call = (ep_fetch_call){.url = bad[i]};
    assert_int_equal(ep_http_fetch(&call, sink, &s, &info), EP_EINVAL);
  }
  free(s.bytes);
}

static void fetch_ignores_proxy_variables(void **state) {
  fixture *f = *state;
  char dead[64];
  snprintf(dead, sizeof dead, "http://127.0.0.1:%d", tu_free_port());
  setenv("http_proxy", dead, 1);
  setenv("HTTPS_PROXY", dead, 1);
  setenv("ALL_PROXY", dead, 1);
  char *url = url_of(f->base, "/files/data.bin");
  sink_state s = {0};
  ep_fetch_info info;
  ep_fetch_call call = {.url = url, .offset = DATA_SIZE - 1};
  int r = ep_http_fetch(&call, sink, &s, &info);
  unsetenv("http_proxy");
  unsetenv("HTTPS_PROXY");
  unsetenv("ALL_PROXY");
  assert_int_equal(r, 0);
  assert_data_from(&s, DATA_SIZE - 1);
  free(s.bytes);
  free(url);
}

static void fetch_reads_file_urls(void **state) {
  fixture *f = *state;
  char *path = tu_path(f->files, "data.bin");
  char *url = url_of("file://", path);
  sink_state s = {0};
  ep_fetch_info info;
  ep_fetch_call call = {.url = url};
  assert_int_equal(ep_http_fetch(&call, sink, &s, &info), 0);
  assert_int_equal(info.http_status, 0);
  assert_int_equal(info.total, DATA_SIZE);
  assert_int_equal(info.received, DATA_SIZE);
  assert_data_from(&s, 0);
  free(s.bytes);
  s = (sink_state){0};
  call.offset = 1000;
  assert_int_equal(ep_http_fetch(&call, sink, &s, &info), 0);
  assert_int_equal(info.received, DATA_SIZE - 1000);
  assert_data_from(&s, 1000);
  free(s.bytes);
  s = (sink_state){0};
  atomic_int cancel = 1;
  call = (ep_fetch_call){.url = url, .cancel = &cancel};
  assert_int_equal(ep_http_fetch(&call, sink, &s, &info), EP_ECANCELED);
  assert_int_equal(s.calls, 0);
  free(url);
  free(path);

  char *missing = url_of("file://", f->dir);
  char *longer = url_of(missing, "/missing.bin");
  call = (ep_fetch_call){.url = longer};
  assert_int_equal(ep_http_fetch(&call, sink, &s, &info), EP_ENOENT);
  assert_non_null(strstr(ep_error_message(), longer));
  free(longer);
  free(missing);
}

static void fetch_header_reads_status_and_sizes(void **state) {
  (void)state;
  ep_fetch_info info = {0};
  bool ignored = true;
#define LINE(text) text, strlen(text)
  ep_http_fetch_header(&info, 0, &ignored, LINE("HTTP/1.1 200 OK\r\n"));
  assert_int_equal(info.http_status, 200);
  assert_false(ignored); /* no Range was asked for */
  ep_http_fetch_header(&info, 0, &ignored, LINE("Content-Length: 5000\r\n"));
  assert_int_equal(info.total, 5000);
  ep_http_fetch_header(&info, 0, &ignored, LINE("content-length: 7\r\n")); /* the first one counts */
  assert_int_equal(info.total, 5000);

  /* A new status line (a redirect's next response) starts over. */
  ep_http_fetch_header(&info, 100, &ignored, LINE("HTTP/2 206\r\n"));
  assert_int_equal(info.http_status, 206);
  assert_int_equal(info.total, 0);
  assert_false(ignored);
  ep_http_fetch_header(&info, 100, &ignored, LINE("Content-Length: 900\r\n"));
  assert_int_equal(info.total, 1000); /* offset + the part */

  info = (ep_fetch_info){0};
  ep_http_fetch_header(&info, 100, &ignored, LINE("HTTP/1.1 206 Partial Content\r\n"));
  ep_http_fetch_header(&info, 100, &ignored, LINE("Content-Range: bytes 100-999/4096\r\n"));
  ep_http_fetch_header(&info, 100, &ignored, LINE("Content-Length: 900\r\n"));
  assert_int_equal(info.total, 4096); /* Content-Range's complete length wins */

  info = (ep_fetch_info){0};
  ep_http_fetch_header(&info, 100, &ignored, LINE("HTTP/1.1 200 OK\r\n"));
  assert_true(ignored); /* asked from 100, got everything */
  ep_http_fetch_header(&info, 100, &ignored, LINE("Content-Length: 4096\r\n"));
  assert_int_equal(info.total, 4096);

  /* A length that would wrap with the offset stays unknown. */
  info = (ep_fetch_info){0};
  ep_http_fetch_header(&info, 100, &ignored, LINE("HTTP/1.1 206\r\n"));
  ep_http_fetch_header(&info, 100, &ignored, LINE("Content-Length: 18446744073709551600\r\n"));
  assert_int_equal(info.total, 0);
  /* Nonsense and an unknown total ("*") change nothing. */
  ep_http_fetch_header(&info, 100, &ignored, LINE("Content-Range: bytes 100-199/*\r\n"));
  ep_http_fetch_header(&info, 100, &ignored, LINE("Content-Length: lots\r\n"));
  ep_http_fetch_header(&info, 100, &ignored, LINE("X-Whatever: 1\r\n"));
  assert_int_equal(info.total, 0);
  assert_int_equal(info.http_status, 206);
  /* Only n bytes are read. */
  const char *two = "Content-Length: 12\r\nContent-Length: 99";
  ep_http_fetch_header(&info, 0, &ignored, two, strlen("Content-Length: 1"));
  assert_int_equal(info.total, 1);
#undef LINE
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(methods_headers_and_bodies_reach_the_server),
      cmocka_unit_test(at_most_sixteen_headers_are_sent),
      cmocka_unit_test(any_status_is_a_reply),
      cmocka_unit_test(response_larger_than_the_limit_fails),
      cmocka_unit_test(bad_requests_and_unreachable_servers_fail),
      cmocka_unit_test(slow_server_times_out),
      cmocka_unit_test(tls_needs_the_right_ca),
      cmocka_unit_test(reply_header_keeps_location_and_content_type_bounded),
      cmocka_unit_test(fetch_streams_whole_files_and_resumes_with_a_range),
      cmocka_unit_test(fetch_failures_say_what_happened),
      cmocka_unit_test(fetch_ignores_proxy_variables),
      cmocka_unit_test(fetch_reads_file_urls),
      cmocka_unit_test(fetch_header_reads_status_and_sizes),
  };
  return cmocka_run_group_tests_name("http_client", tests, setup, teardown); /* one pair of servers for all */
}
