/* core: the one HTTP client (libcurl), for the agent and for plugins (through the host
 * service http_request). Bounded: a response body larger than the caller's limit fails. */
#ifndef EP_CORE_HTTP_CLIENT_H
#define EP_CORE_HTTP_CLIENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EP_HTTP_TIMEOUT_MS_DEFAULT 30000
#define EP_HTTP_RESPONSE_MAX_DEFAULT (1u << 20)
#define EP_HTTP_HEADERS_MAX 16
#define EP_HTTP_LOCATION_MAX 2048

typedef struct ep_http_call {
  const char *method;                  /* "GET", "POST", "PUT", "DELETE" */
  const char *url;                     /* http:// or https:// only */
  const char *const *headers;          /* "Name: value", NULL-terminated; may be NULL */
  const uint8_t *body;                 /* request body or NULL */
  size_t body_len;
  const char *ca_file;                 /* PEM file to trust for https; NULL: the system's */
  const char *basic_user;              /* HTTP Basic credentials, or NULL */
  const char *basic_password;
  int timeout_ms;                      /* 0: EP_HTTP_TIMEOUT_MS_DEFAULT */
  size_t response_max;                 /* 0: EP_HTTP_RESPONSE_MAX_DEFAULT */
} ep_http_call;

typedef struct ep_http_reply {
  int status;                          /* the HTTP status */
  char *body;                          /* malloc'd, NUL-terminated; ep_http_reply_clear frees */
  size_t len;
  char location[EP_HTTP_LOCATION_MAX]; /* the Location header, "" when none */
  char content_type[128];
} ep_http_reply;

/* Makes the request. Returns 0 when a response arrived (whatever its status, in *out),
 * EP_ETIMEDOUT, EP_ERANGE (response larger than response_max), EP_EINVAL (bad method or
 * URL scheme) or EP_EIO (connection or TLS failure), with a message naming the URL.
 * Thread-safe. Never logs: bodies and headers may carry secrets. */
int ep_http_perform(const ep_http_call *call, ep_http_reply *out);

/* A streamed download (image.stream): http://, https:// or file://, from offset on. */
typedef struct ep_fetch_call {
  const char *url;
  const char *ca_file;     /* PEM file trusted for https; NULL or "": the system's */
  const char *proxy;       /* proxy URL; NULL or "": none (environment proxies are not used) */
  uint64_t offset;         /* first byte wanted: an HTTP Range request when > 0 */
  int connect_timeout_ms;  /* 0: 15 s */
  int stall_timeout_ms;    /* give up when no byte arrives for this long; 0: 30 s */
  const atomic_int *cancel; /* non-zero stops the transfer (EP_ECANCELED); may be NULL */
} ep_fetch_call;

/* What a fetch saw; filled on success and failure alike. */
typedef struct ep_fetch_info {
  int http_status;  /* 0 for file:// */
  uint64_t total;   /* the whole resource's size when known (Content-Length or Content-Range), else 0 */
  uint64_t received; /* bytes handed to the sink by this call */
} ep_fetch_info;

/* Receives the body in order; returns 0 to go on, or a negative code that ends the fetch
 * with that code. */
typedef int (*ep_fetch_sink)(void *data, const uint8_t *bytes, size_t len);

/* Streams call->url into sink. Returns 0 when the whole body arrived; EP_EIO when the
 * connection broke or stalled (retryable: ask again from offset + info->received);
 * EP_EFAILED for an HTTP error status; EP_ENOTSUP when offset > 0 and the server ignored
 * the Range; EP_ENOENT for a missing file:// path; EP_ECANCELED; or the sink's own code.
 * Messages name the URL. Thread-safe; never logs. */
int ep_http_fetch(const ep_fetch_call *call, ep_fetch_sink sink, void *data, ep_fetch_info *info);

/* For tests and fuzzing (ep_http_perform's header callback): keeps what reply wants of one
 * response header line of n bytes as libcurl hands it over (not NUL-terminated, CRLF
 * included): Location and Content-Type, bounded, control characters replaced by '?'. */
void ep_http_reply_header(ep_http_reply *reply, const char *line, size_t n);

/* For tests and fuzzing (ep_http_fetch's header callback): reads one response header line of
 * n bytes into info: the status line (which also sets *ret_range_ignored when offset > 0 and
 * the status is 200), Content-Range's complete length, or Content-Length (plus offset after a
 * 206) as info->total. */
void ep_http_fetch_header(ep_fetch_info *info, uint64_t offset, bool *ret_range_ignored, const char *line, size_t n);

/* Frees the body (zeroed first: it may carry a token) and resets the reply. */
void ep_http_reply_clear(ep_http_reply *reply);

#endif
