/* core: the HTTP client over libcurl, see http_client.h. */
#define _GNU_SOURCE /* explicit_bzero, strndup */
#include "http_client.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"

typedef struct sink {
  ep_http_reply *reply;
  size_t cap;
  size_t max;
  bool too_large;
} sink;

static size_t on_body(char *data, size_t size, size_t count, void *user) {
  sink *s = user;
  size_t n = size * count;
  if (s->reply->len + n > s->max) {
    s->too_large = true;
    return 0; /* aborts the transfer */
  }
  if (s->reply->len + n + 1 > s->cap) {
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < s->reply->len + n + 1) cap *= 2;
    char *grown = realloc(s->reply->body, cap);
    if (!grown) return 0;
    s->reply->body = grown;
    s->cap = cap;
  }
  memcpy(s->reply->body + s->reply->len, data, n);
  s->reply->len += n;
  s->reply->body[s->reply->len] = '\0';
  return n;
}

/* Keeps the Location and Content-Type headers (bounded, control characters stripped). */
static size_t on_header(char *data, size_t size, size_t count, void *user) {
  ep_http_reply *reply = user;
  size_t n = size * count;
  struct { const char *name; char *out; size_t cap; } wanted[] = {
      {"location:", reply->location, sizeof reply->location},
      {"content-type:", reply->content_type, sizeof reply->content_type}};
  for (size_t i = 0; i < 2; i++) {
    size_t name_len = strlen(wanted[i].name);
    if (n <= name_len || strncasecmp(data, wanted[i].name, name_len) != 0) continue;
    size_t start = name_len, end = n;
    while (start < end && (data[start] == ' ' || data[start] == '\t')) start++;
    while (end > start && (data[end - 1] == '\r' || data[end - 1] == '\n' || data[end - 1] == ' ')) end--;
    size_t len = end - start < wanted[i].cap - 1 ? end - start : wanted[i].cap - 1;
    for (size_t k = 0; k < len; k++) wanted[i].out[k] = (unsigned char)data[start + k] < 0x20 ? '?' : data[start + k];
    wanted[i].out[len] = '\0';
  }
  return n;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_setup(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static bool method_known(const char *m) {
  return m && (!strcmp(m, "GET") || !strcmp(m, "POST") || !strcmp(m, "PUT") || !strcmp(m, "DELETE"));
}

int ep_http_perform(const ep_http_call *call, ep_http_reply *out) {
  if (!method_known(call->method)) return ep_error_set(EP_EINVAL, "HTTP method '%.16s' is not supported", call->method);
  if (!call->url || (strncmp(call->url, "https://", 8) != 0 && strncmp(call->url, "http://", 7) != 0))
    return ep_error_set(EP_EINVAL, "URL '%.128s' is not http:// or https://", call->url ? call->url : "");
  pthread_once(&curl_once, curl_setup);
  CURL *curl = curl_easy_init();
  if (!curl) return ep_error_set(EP_ENOMEM, "out of memory");
  ep_http_reply reply = {0};
  sink s = {.reply = &reply, .max = call->response_max ? call->response_max : EP_HTTP_RESPONSE_MAX_DEFAULT};
  struct curl_slist *headers = NULL;
  bool headers_ok = true;
  for (size_t i = 0; call->headers && call->headers[i] && i < EP_HTTP_HEADERS_MAX; i++) {
    struct curl_slist *more = curl_slist_append(headers, call->headers[i]);
    if (!more) headers_ok = false;
    else headers = more;
  }
  curl_easy_setopt(curl, CURLOPT_URL, call->url);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)(call->timeout_ms > 0 ? call->timeout_ms : EP_HTTP_TIMEOUT_MS_DEFAULT));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &s);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &reply);
  if (headers) curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  if (call->ca_file && *call->ca_file) curl_easy_setopt(curl, CURLOPT_CAINFO, call->ca_file);
  if (call->basic_user) {
    curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(curl, CURLOPT_USERNAME, call->basic_user);
    curl_easy_setopt(curl, CURLOPT_PASSWORD, call->basic_password ? call->basic_password : "");
  }
  if (strcmp(call->method, "GET") != 0) curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, call->method);
  if (call->body || strcmp(call->method, "POST") == 0) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, call->body ? (const char *)call->body : "");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
  }
  CURLcode code = headers_ok ? curl_easy_perform(curl) : CURLE_OUT_OF_MEMORY;
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  int r = 0;
  if (s.too_large)
    r = ep_error_set(EP_ERANGE, "%.256s: response larger than %zu bytes", call->url, s.max);
  else if (code == CURLE_OPERATION_TIMEDOUT)
    r = ep_error_set(EP_ETIMEDOUT, "%.256s: no answer in time", call->url);
  else if (code != CURLE_OK)
    r = ep_error_set(code == CURLE_OUT_OF_MEMORY ? EP_ENOMEM : EP_EIO, "%.256s: %s", call->url, curl_easy_strerror(code));
  if (r < 0) {
    ep_http_reply_clear(&reply);
    return r;
  }
  if (!reply.body && !(reply.body = calloc(1, 1))) return ep_error_set(EP_ENOMEM, "out of memory");
  reply.status = (int)status;
  *out = reply;
  return 0;
}

void ep_http_reply_clear(ep_http_reply *reply) {
  if (reply->body) explicit_bzero(reply->body, reply->len);
  free(reply->body);
  memset(reply, 0, sizeof *reply);
}
