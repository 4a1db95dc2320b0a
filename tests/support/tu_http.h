/* Test support for the HTTP server tests: one request with libcurl, keeping the status, the
 * response headers and the body, so a test can check what a real client receives. */
#ifndef EP_TEST_HTTP_H
#define EP_TEST_HTTP_H

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct tu_request {
  const char *method;          /* NULL: GET; "HEAD" asks for no body */
  const char *url;
  const char *const *headers;  /* "Name: value", NULL-terminated; may be NULL */
  const void *body;            /* sent as is (POST unless method says otherwise); may be NULL */
  size_t body_len;
  const char *ca_file;         /* PEM trusted for https; NULL: the system's */
  const char *user, *password; /* HTTP Basic, or NULL */
} tu_request;

typedef struct tu_response {
  long status;
  char headers[16384]; /* the header block of the last response, NUL-terminated */
  size_t headers_len;
  char *body;          /* malloc'd, NUL-terminated (tu_response_clear) */
  size_t len;
} tu_response;

static inline size_t tu_on_body(char *data, size_t size, size_t count, void *user) {
  tu_response *r = user;
  size_t n = size * count;
  char *grown = realloc(r->body, r->len + n + 1);
  if (!grown) return 0;
  r->body = grown;
  memcpy(r->body + r->len, data, n);
  r->len += n;
  r->body[r->len] = '\0';
  return n;
}

static inline size_t tu_on_header(char *data, size_t size, size_t count, void *user) {
  tu_response *r = user;
  size_t n = size * count;
  if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) r->headers_len = 0; /* a new response (after a 100) */
  size_t room = sizeof r->headers - 1 - r->headers_len;
  size_t keep = n < room ? n : room;
  memcpy(r->headers + r->headers_len, data, keep);
  r->headers_len += keep;
  r->headers[r->headers_len] = '\0';
  return n;
}

/* Makes the request; returns the CURLcode (CURLE_OK when any response arrived) with *out
 * filled (tu_response_clear frees it, also after a failure). */
static inline int tu_http(const tu_request *req, tu_response *out) {
  memset(out, 0, sizeof *out);
  CURL *curl = curl_easy_init();
  if (!curl) return CURLE_FAILED_INIT;
  struct curl_slist *headers = NULL;
  for (size_t i = 0; req->headers && req->headers[i]; i++) headers = curl_slist_append(headers, req->headers[i]);
  curl_easy_setopt(curl, CURLOPT_URL, req->url);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L); /* send "..", "//" as written */
  curl_easy_setopt(curl, CURLOPT_PROXY, "");
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, tu_on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, tu_on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, out);
  if (headers) curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  if (req->ca_file) curl_easy_setopt(curl, CURLOPT_CAINFO, req->ca_file);
  if (req->user) {
    curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(curl, CURLOPT_USERNAME, req->user);
    curl_easy_setopt(curl, CURLOPT_PASSWORD, req->password ? req->password : "");
  }
  if (req->body) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
  }
  if (req->method && strcmp(req->method, "HEAD") == 0)
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  else if (req->method)
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
  CURLcode code = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return (int)code;
}

/* The value of response header name (first occurrence, without surrounding blanks) copied
 * into buf, or NULL when the response lacks it. */
static inline const char *tu_header(const tu_response *r, const char *name, char *buf, size_t cap) {
  size_t name_len = strlen(name);
  for (const char *line = r->headers; *line;) {
    const char *end = strstr(line, "\r\n");
    size_t len = end ? (size_t)(end - line) : strlen(line);
    if (len > name_len && strncasecmp(line, name, name_len) == 0 && line[name_len] == ':') {
      const char *v = line + name_len + 1;
      while (*v == ' ' || *v == '\t') v++;
      size_t vlen = len - (size_t)(v - line);
      while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t')) vlen--;
      snprintf(buf, cap, "%.*s", (int)vlen, v);
      return buf;
    }
    if (!end) break;
    line = end + 2;
  }
  return NULL;
}

static inline void tu_response_clear(tu_response *r) {
  free(r->body);
  r->body = NULL;
  r->len = 0;
}

#endif
