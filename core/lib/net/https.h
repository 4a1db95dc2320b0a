/* core: the embedded HTTPS server (libmicrohttpd), on which the core publishes endpoints:
 * the identity plugin's token endpoint and JWKS, and the boot artifacts. */
#ifndef EP_CORE_HTTPS_H
#define EP_CORE_HTTPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EP_HTTPS_BODY_MAX (64 * 1024) /* largest request body accepted */
#define EP_HTTPS_ROUTES_MAX 32
#define EP_HTTPS_MOUNTS_MAX 8
#define EP_HTTPS_CONNECTION_MEMORY (256 * 1024) /* per connection: headers and the file read buffer */
#define EP_HTTPS_FORM_FIELDS_MAX 16       /* fields kept of an urlencoded form */
#define EP_HTTPS_FORM_NAME_MAX 64         /* longest field name kept, with its NUL */
#define EP_HTTPS_FORM_VALUE_MAX 1024      /* longest field value, with its NUL */
#define EP_HTTPS_THREADS_MAX 64           /* most connection or handler threads */
#define EP_HTTPS_CONNECTIONS_MAX 1000000  /* largest connections_max */
#define EP_HTTPS_TIMEOUT_S_MAX 86400      /* longest header or idle timeout */

/* What the server holds its clients to (the site's https.* settings). A fixed number of
 * threads serves every connection, however many clients there are; a client that sends its
 * request slowly (slowloris) is closed at its deadline, and one that opens connections beyond
 * a cap makes room by closing the connection of that address (or any, at the total cap) that
 * has waited longest for its request, or is refused at once when every one is busy. */
typedef struct ep_https_limits {
  unsigned threads;            /* connection threads: TLS, HTTP and file sending; 1..EP_HTTPS_THREADS_MAX */
  unsigned handler_threads;    /* threads running route handlers; 1..EP_HTTPS_THREADS_MAX */
  unsigned connections_max;    /* open connections in all, 1..EP_HTTPS_CONNECTIONS_MAX */
  unsigned connections_per_ip; /* open connections from one address, at most connections_max */
  unsigned header_timeout_s;   /* a new connection's first request, headers and body, is in by then */
  unsigned idle_timeout_s;     /* a connection moving no byte is closed; a kept-alive one has this
                                  plus header_timeout_s for its next request. Both 1..EP_HTTPS_TIMEOUT_S_MAX */
} ep_https_limits;
#define EP_HTTPS_THREADS_DEFAULT 4
#define EP_HTTPS_HANDLER_THREADS_DEFAULT 4
#define EP_HTTPS_CONNECTIONS_MAX_DEFAULT 1024
#define EP_HTTPS_CONNECTIONS_PER_IP_DEFAULT (EP_HTTPS_CONNECTIONS_MAX_DEFAULT / 4) /* sites sit behind one NAT */
#define EP_HTTPS_HEADER_TIMEOUT_S_DEFAULT 10
#define EP_HTTPS_IDLE_TIMEOUT_S_DEFAULT 30

/* One field of an application/x-www-form-urlencoded body, decoded by the HTTP library. */
typedef struct ep_https_form_field {
  char name[EP_HTTPS_FORM_NAME_MAX];
  char value[EP_HTTPS_FORM_VALUE_MAX];
} ep_https_form_field;

/* A request as a handler sees it; valid during the handler call. A form body is decoded
 * into form (form_invalid when a field was too long or there were too many); any other
 * body is in body. basic_user/basic_password are the decoded HTTP Basic credentials, or
 * NULL. */
typedef struct ep_https_request {
  const char *method;
  const char *path;
  const char *content_type;  /* "" when absent */
  const char *authorization; /* "" when absent */
  const uint8_t *body;
  size_t body_len;
  const ep_https_form_field *form;
  size_t form_count;
  bool form_invalid;
  const char *basic_user;
  const char *basic_password;
} ep_https_request;

/* The value of the form field name, or NULL when the form lacks it. */
const char *ep_https_form_value(const ep_https_request *request, const char *name);

/* What a handler answers: status, content type, and a malloc'd body the server frees. */
typedef struct ep_https_response {
  int status;
  const char *content_type;
  char *body;
  size_t len;
} ep_https_response;

typedef void (*ep_https_handler)(void *data, const ep_https_request *request, ep_https_response *response);

typedef struct ep_https_server ep_https_server;

/* Creates a server for address ("host:port"; port 0 picks one) with TLS from the PEM texts,
 * or in plaintext when cert_pem is NULL (then only on a loopback address). */
int ep_https_server_new(ep_https_server **out, const char *address, const char *cert_pem, const char *key_pem);

/* Replaces the default limits (EP_HTTPS_*_DEFAULT) with limits (copied), before start.
 * EP_EINVAL, naming the setting, when one is out of range. */
int ep_https_server_set_limits(ep_https_server *server, const ep_https_limits *limits);

/* Routes method + exact path to handler (before start). Others get 404 (405 for a known
 * path with another method). The handler runs on one of the server's handler threads, never
 * on a connection thread, so it may block (a plugin asking another service) without holding
 * up file transfers or other connections; only requests queued behind it wait. */
int ep_https_server_route(ep_https_server *server, const char *method, const char *path, ep_https_handler handler,
                          void *data);

/* Serves the files of directory under url_path ("/boot": GET /boot/a.efi reads
 * directory/a.efi) with ranges and ETags (see https_files.h); before start. EP_EEXIST when
 * url_path is served already. */
int ep_https_server_serve_directory(ep_https_server *server, const char *url_path, const char *directory);

/* Called once per request for a file of a served directory (GET or HEAD), before it is
 * answered, with the client's address (canonical text; an IPv4-mapped IPv6 address as IPv4;
 * "" when unknown) and the request path. Runs on a connection thread: quick and thread-safe. */
typedef void (*ep_https_file_observer)(void *data, const char *peer_ip, const char *path);

/* Sets the file observer (before start; one per server). */
void ep_https_server_observe_files(ep_https_server *server, ep_https_file_observer observer, void *data);

/* Starts serving on the server's own threads (limits.threads + limits.handler_threads + 1
 * for the deadlines); *ret_port gets the bound port. */
int ep_https_server_start(ep_https_server *server, int *ret_port);

/* The connections open now, as the limits count them (those closing not counted). Any thread. */
size_t ep_https_server_connections(ep_https_server *server);

/* For tests and fuzzing: answers the HTTP/1.1 requests read from fd (a connected stream
 * socket, plaintext whatever the certificate) with server's routes and directories, on the
 * calling thread (handlers too; no connection limits), until the peer has closed its side and every request it sent is answered
 * (or the connection fails or times out). Takes fd and closes it. The server must not be
 * started. Returns 0, or EP_EIO/EP_EINVAL with the error set. */
int ep_https_server_serve_fd(ep_https_server *server, int fd);

/* Stops (handlers running finish, requests queued for one get 503) and frees. Accepts NULL. */
void ep_https_server_free(ep_https_server *server);

#endif
