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
#define EP_HTTPS_QUERY_MAX 8              /* query arguments kept (names and values bounded as a form's) */
#define EP_HTTPS_STREAMS_DEFAULT 16       /* streamed responses open at once, see ep_https_server_set_streams */
#define EP_HTTPS_STREAMS_MAX 4096

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
 * NULL. The query arguments are decoded into query (query_invalid when one was too long or
 * there were more than EP_HTTPS_QUERY_MAX); connection is the server's, for
 * ep_https_header_value. */
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
  const ep_https_form_field *query;
  size_t query_count;
  bool query_invalid;
  void *connection;
} ep_https_request;

/* The value of the form field name, or NULL when the form lacks it. */
const char *ep_https_form_value(const ep_https_request *request, const char *name);

/* The value of the query argument name ("?name=value", decoded), or NULL when absent. */
const char *ep_https_query_value(const ep_https_request *request, const char *name);

/* True when the request carries "Authorization: Bearer <token>", compared in constant time
 * (base/secret.h); false for a NULL token. */
bool ep_https_bearer_matches(const ep_https_request *request, const char *token);

/* The value of the request header name (any case), or NULL when absent. */
const char *ep_https_header_value(const ep_https_request *request, const char *name);

/* A response sent as it is produced (server-sent events), instead of a whole body.
 * read copies at most max bytes of what the stream has to send now into buf and returns how
 * many; 0 when it has nothing now: the connection then waits, holding no thread, until
 * ep_https_server_wake_streams (or the keep-alive tick) asks again; -1 ends the response. It
 * runs on a connection thread and must not block. close frees the stream, once, when the
 * response is done (the client left, read ended it, or the server stops); the server may call
 * it from any of its threads. */
typedef struct ep_https_stream_ops {
  long (*read)(void *stream, char *buf, size_t max);
  void (*close)(void *stream);
} ep_https_stream_ops;

/* What a handler answers: status, content type, and a malloc'd body the server frees; or,
 * with stream and stream_ops set (and no body), a streamed response: the server takes the
 * stream (and closes it at once, answering 503, when ep_https_server_set_streams's cap is
 * reached). */
typedef struct ep_https_response {
  int status;
  const char *content_type;
  char *body;
  size_t len;
  void *stream;
  const ep_https_stream_ops *stream_ops;
} ep_https_response;

typedef void (*ep_https_handler)(void *data, const ep_https_request *request, ep_https_response *response);

typedef struct ep_https_server ep_https_server;

/* Creates a server for address ("host:port"; port 0 picks one) with TLS from the PEM texts,
 * or in plaintext when cert_pem is NULL (then only on a loopback address). */
int ep_https_server_new(ep_https_server **out, const char *address, const char *cert_pem, const char *key_pem);

/* Replaces the default limits (EP_HTTPS_*_DEFAULT) with limits (copied), before start.
 * EP_EINVAL, naming the setting, when one is out of range. */
int ep_https_server_set_limits(ep_https_server *server, const ep_https_limits *limits);

/* Routes method + exact path to handler (before start); a path ending in '*' takes every
 * path that begins with what precedes it (as "/api/node/" + "*"). Others get 404 (405 for a known
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

/* Streamed responses (before start): at most max open at once (1..EP_HTTPS_STREAMS_MAX,
 * default EP_HTTPS_STREAMS_DEFAULT; more are answered 503); a stream that sent nothing for
 * keepalive_s (0: never) sends keepalive_text (e.g. an event-stream comment), which also tells
 * a client that left (a waiting connection does not see it go). EP_EINVAL when out of range. */
int ep_https_server_set_streams(ep_https_server *server, unsigned max, unsigned keepalive_s, const char *keepalive_text);

/* Asks every open stream's read again (something it sends may have come). Any thread. */
void ep_https_server_wake_streams(ep_https_server *server);

/* Starts serving on the server's own threads (limits.threads + limits.handler_threads + 1
 * for the deadlines); *ret_port gets the bound port. */
int ep_https_server_start(ep_https_server *server, int *ret_port);

/* The connections open now, as the limits count them (those closing not counted). Any thread. */
size_t ep_https_server_connections(ep_https_server *server);

/* For tests and fuzzing: answers the HTTP/1.1 requests read from fd (a connected stream
 * socket, plaintext whatever the certificate) with server's routes and directories, on the
 * calling thread (handlers too; no connection limits; a stream ends when it has nothing to
 * send), until the peer has closed its side and every request it sent is answered (or the
 * connection fails or times out). Takes fd and closes it. The server must not be started.
 * Returns 0, or EP_EIO/EP_EINVAL with the error set. */
int ep_https_server_serve_fd(ep_https_server *server, int fd);

/* Stops (handlers running finish, requests queued for one get 503) and frees. Accepts NULL. */
void ep_https_server_free(ep_https_server *server);

#endif
