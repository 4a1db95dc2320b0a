/* core: the HTTP client over libcurl, see http_client.h. */
#define _GNU_SOURCE /* explicit_bzero, strndup, fseeko */
#include "net/http_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/error.h"

/* The body: bounded by the call's response_max; zeroed as it grows, as ep_http_reply_clear
 * zeroes it (a token endpoint's answer is a secret). */
typedef struct body_buffer {
  ep_buf buf;
  bool too_large;
} body_buffer;

static size_t on_body(char *data, size_t size, size_t count, void *user) {
  body_buffer *s = user;
  size_t n = size * count;
  int r = ep_buf_append(&s->buf, data, n);
  if (r == EP_ERANGE) s->too_large = true;
  return r == 0 ? n : 0; /* 0 aborts the transfer */
}

void ep_http_reply_header(ep_http_reply *reply, const char *data, size_t n) {
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
    for (size_t k = 0; k < len; k++) wanted[i].out[k] = (unsigned char)data[start + k] < 0x20 || data[start + k] == 0x7f ? '?' : data[start + k];
    wanted[i].out[len] = '\0';
  }
}

static size_t on_header(char *data, size_t size, size_t count, void *user) {
  ep_http_reply_header(user, data, size * count);
  return size * count;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_setup(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static bool method_known(const char *m) {
  return m && (!strcmp(m, "GET") || !strcmp(m, "POST") || !strcmp(m, "PUT") || !strcmp(m, "DELETE"));
}

int ep_http_perform(const ep_http_call *call, ep_http_reply *out) {
  if (!method_known(call->method))
    return ep_error_set(EP_EINVAL, "HTTP method '%.16s' is not supported", call->method ? call->method : "(none)");
  if (!call->url || (strncmp(call->url, "https://", 8) != 0 && strncmp(call->url, "http://", 7) != 0))
    return ep_error_set(EP_EINVAL, "URL '%.128s' is not http:// or https://", call->url ? call->url : "");
  pthread_once(&curl_once, curl_setup);
  CURL *curl = curl_easy_init();
  if (!curl) return ep_error_set(EP_ENOMEM, "out of memory");
  ep_http_reply reply = {0};
  size_t max = call->response_max ? call->response_max : EP_HTTP_RESPONSE_MAX_DEFAULT;
  body_buffer s = {.too_large = false};
  ep_buf_init(&s.buf, "HTTP response", max, EP_BUF_WIPE);
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
    r = ep_error_set(EP_ERANGE, "%.256s: response larger than %zu bytes", call->url, max);
  else if (code == CURLE_OPERATION_TIMEDOUT)
    r = ep_error_set(EP_ETIMEDOUT, "%.256s: no answer in time", call->url);
  else if (code != CURLE_OK)
    r = ep_error_set(code == CURLE_OUT_OF_MEMORY ? EP_ENOMEM : EP_EIO, "%.256s: %s", call->url, curl_easy_strerror(code));
  if (r == 0 && !(reply.body = ep_buf_take(&s.buf, &reply.len))) r = ep_error_set(EP_ENOMEM, "out of memory");
  ep_buf_free(&s.buf);
  if (r < 0) {
    ep_http_reply_clear(&reply);
    return r;
  }
  reply.status = (int)status;
  *out = reply;
  return 0;
}

void ep_http_reply_clear(ep_http_reply *reply) {
  if (reply->body) explicit_bzero(reply->body, reply->len);
  free(reply->body);
  memset(reply, 0, sizeof *reply);
}

/* ---- streamed downloads ------------------------------------------------------------------ */

#define FETCH_FILE_CHUNK (1u << 20)

typedef struct fetch_state {
  ep_fetch_sink sink;
  void *data;
  int sink_error;      /* the sink's code when it stopped the transfer */
  ep_fetch_info *info;
  uint64_t offset;
  const atomic_int *cancel;
  bool range_ignored;  /* asked for a Range, got a 200 */
} fetch_state;

static size_t on_fetch_body(char *bytes, size_t size, size_t count, void *user) {
  fetch_state *f = user;
  size_t n = size * count;
  if (f->range_ignored) return 0;
  int r = f->sink(f->data, (const uint8_t *)bytes, n);
  if (r < 0) {
    f->sink_error = r;
    return 0;
  }
  f->info->received += n;
  return n;
}

void ep_http_fetch_header(ep_fetch_info *info, uint64_t offset, bool *ret_range_ignored, const char *line, size_t n) {
  char text[256];
  size_t len = n < sizeof text - 1 ? n : sizeof text - 1;
  memcpy(text, line, len);
  text[len] = '\0';
  unsigned long long a = 0, b = 0, total = 0;
  int status = 0;
  if (sscanf(text, "HTTP/%*s %d", &status) == 1) {
    info->http_status = status;
    info->total = 0;
    *ret_range_ignored = offset > 0 && status == 200;
  } else if (strncasecmp(text, "content-range:", 14) == 0 &&
             sscanf(text + 14, " bytes %llu-%llu/%llu", &a, &b, &total) == 3) {
    info->total = total;
  } else if (strncasecmp(text, "content-length:", 15) == 0 && sscanf(text + 15, " %llu", &total) == 1 &&
             !info->total) {
    uint64_t before = info->http_status == 206 ? offset : 0;
    if (total <= UINT64_MAX - before) info->total = total + before; /* else unknown: no wrapped length */
  }
}

static size_t on_fetch_header(char *line, size_t size, size_t count, void *user) {
  fetch_state *f = user;
  ep_http_fetch_header(f->info, f->offset, &f->range_ignored, line, size * count);
  return size * count;
}

static int on_fetch_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
  (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
  const fetch_state *f = user;
  return f->cancel && atomic_load(f->cancel) ? 1 : 0;
}

static int fetch_file(const ep_fetch_call *call, ep_fetch_sink sink, void *data, ep_fetch_info *info) {
  const char *path = call->url + 7;
  FILE *file = fopen(path, "rb");
  if (!file) return ep_error_set(errno == ENOENT ? EP_ENOENT : EP_EIO, "%.256s: %s", call->url, strerror(errno));
  int r = 0;
  uint8_t *chunk = malloc(FETCH_FILE_CHUNK);
  if (!chunk) r = ep_error_set(EP_ENOMEM, "out of memory");
  struct stat st;
  if (r == 0 && fstat(fileno(file), &st) == 0 && S_ISREG(st.st_mode)) info->total = (uint64_t)st.st_size;
  if (r == 0 && call->offset && fseeko(file, (off_t)call->offset, SEEK_SET) != 0)
    r = ep_error_set(EP_EIO, "%.256s: cannot seek to %llu", call->url, (unsigned long long)call->offset);
  while (r == 0) {
    if (call->cancel && atomic_load(call->cancel)) {
      r = ep_error_set(EP_ECANCELED, "%.256s: cancelled", call->url);
      break;
    }
    size_t n = fread(chunk, 1, FETCH_FILE_CHUNK, file);
    if (n == 0) {
      if (ferror(file)) r = ep_error_set(EP_EIO, "%.256s: read error", call->url);
      break;
    }
    r = sink(data, chunk, n);
    if (r == 0) info->received += n;
  }
  free(chunk);
  fclose(file);
  return r;
}

int ep_http_fetch(const ep_fetch_call *call, ep_fetch_sink sink, void *data, ep_fetch_info *info) {
  memset(info, 0, sizeof *info);
  if (!call->url) return ep_error_set(EP_EINVAL, "url: required");
  if (strncmp(call->url, "file://", 7) == 0) return fetch_file(call, sink, data, info);
  if (strncmp(call->url, "https://", 8) != 0 && strncmp(call->url, "http://", 7) != 0)
    return ep_error_set(EP_EINVAL, "url: '%.128s' is not http://, https:// or file://", call->url);
  pthread_once(&curl_once, curl_setup);
  CURL *curl = curl_easy_init();
  if (!curl) return ep_error_set(EP_ENOMEM, "out of memory");
  fetch_state f = {.sink = sink, .data = data, .info = info, .offset = call->offset, .cancel = call->cancel};
  char range[48];
  snprintf(range, sizeof range, "%llu-", (unsigned long long)call->offset);
  long stall_s = (call->stall_timeout_ms > 0 ? call->stall_timeout_ms : 30000) / 1000;
  curl_easy_setopt(curl, CURLOPT_URL, call->url);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)(call->connect_timeout_ms > 0 ? call->connect_timeout_ms : 15000));
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, stall_s > 0 ? stall_s : 1L);
  curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, 512L * 1024);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_fetch_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &f);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_fetch_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &f);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_fetch_progress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &f);
  curl_easy_setopt(curl, CURLOPT_PROXY, call->proxy ? call->proxy : ""); /* "" also ignores *_proxy variables */
  if (call->ca_file && *call->ca_file) curl_easy_setopt(curl, CURLOPT_CAINFO, call->ca_file);
  if (call->offset) curl_easy_setopt(curl, CURLOPT_RANGE, range);
  CURLcode code = curl_easy_perform(curl);
  curl_easy_cleanup(curl);
  if (f.sink_error) return f.sink_error;
  if (f.range_ignored)
    return ep_error_set(EP_ENOTSUP, "%.256s: the server ignored the Range request (cannot resume)", call->url);
  if (code == CURLE_OK) return 0;
  if (code == CURLE_ABORTED_BY_CALLBACK) return ep_error_set(EP_ECANCELED, "%.256s: cancelled", call->url);
  if (code == CURLE_HTTP_RETURNED_ERROR)
    return ep_error_set(EP_EFAILED, "%.256s: HTTP %d", call->url, info->http_status);
  if (code == CURLE_OUT_OF_MEMORY) return ep_error_set(EP_ENOMEM, "out of memory");
  return ep_error_set(EP_EIO, "%.256s: %s after %llu bytes", call->url, curl_easy_strerror(code),
                      (unsigned long long)info->received);
}
