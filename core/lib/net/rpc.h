/* core: the one helper over the gRPC core C API (Debian's libgrpc 1.51). Servers, channels
 * and calls that move opaque byte messages; the caller encodes them. No other file includes
 * a gRPC header, so a gRPC upgrade touches this room only.
 *
 * Server model: one completion queue per server, polled by EP_RPC_POLLERS threads that only
 * turn completions into events of their call; a fixed pool of EP_RPC_WORKERS threads runs
 * handlers. A unary handler runs once on a worker with its request. A streaming method is
 * either event-driven (ep_rpc_stream_ops: open, each message, half-close, wakes, close, each
 * on a worker, never two at once for one call, so a call that waits for its next message or
 * for a wake holds no thread), or a blocking handler on a thread of its own (reads with
 * ep_rpc_call_recv, and its sends wait until gRPC took the message). At most EP_RPC_CALLS_MAX
 * calls at once; more are answered RESOURCE_EXHAUSTED.
 *
 * Client model: every call gets its own completion queue and is driven synchronously by the
 * calling thread. */
#ifndef EP_CORE_RPC_H
#define EP_CORE_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/status.h"

#define EP_RPC_CALLS_MAX 16384           /* calls a server handles at once; more get RESOURCE_EXHAUSTED */
#define EP_RPC_POLLERS 2                 /* threads that poll a server's completion queue */
#define EP_RPC_WORKERS 8                 /* threads that run a server's handlers and events */
#define EP_RPC_SLOTS 64                  /* calls gRPC may hand over before a poller asks for more */
#define EP_RPC_SEND_QUEUE_MAX 16         /* messages an event-driven call may have waiting to be sent */
#define EP_RPC_SEND_QUEUE_BYTES (8u << 20) /* ... and their bytes */
#define EP_RPC_STREAM_STACK (512u << 10) /* stack of a blocking streaming handler's thread */
#define EP_RPC_MESSAGE_MAX_DEFAULT (4u << 20)
#define EP_RPC_METADATA_VALUE_MAX 4096   /* longest metadata value handed to a handler */

/* TLS material as PEM text (not file names). Server: cert_pem + key_pem, and client_ca_pem
 * to require and verify client certificates (mutual TLS). Client: ca_pem to verify the
 * server, cert_pem + key_pem to present a client certificate, target_name to check the
 * server certificate against instead of the address's host. */
typedef struct ep_rpc_tls {
  const char *ca_pem;
  const char *cert_pem;
  const char *key_pem;
  const char *client_ca_pem;
  const char *target_name;
} ep_rpc_tls;

typedef enum { EP_RPC_UNARY, EP_RPC_SERVER_STREAMING, EP_RPC_BIDI_STREAMING } ep_rpc_kind;

/* ---- server ------------------------------------------------------------------------------ */

typedef struct ep_rpc_server ep_rpc_server;
typedef struct ep_rpc_call ep_rpc_call;

/* Handles one call (unary: on a worker; streaming: on a thread of its own, see above).
 * request is the client's (only) message of a unary or server-streaming call, valid during
 * the call; a bidirectional handler gets NULL and reads with ep_rpc_call_recv. The handler
 * should end the call with ep_rpc_call_finish before returning. */
typedef void (*ep_rpc_handler)(void *data, ep_rpc_call *call, const uint8_t *request, size_t len);

/* An event-driven streaming method. Each function runs on a worker, one at a time per call,
 * in this order: open once; then message for each client message (a bidirectional call
 * reads the next only after message returned; a server-streaming call gets one), half_close
 * once if the client ends its side (may be NULL), drained when the send queue emptied after
 * ep_rpc_call_send_room said there was no room (may be NULL), wake after each
 * ep_rpc_call_wake (may be NULL; wakes posted while one runs are coalesced); close exactly once, when the call is over
 * (finished and sent, cancelled, past its deadline, disconnected or the server stopping):
 * free the state there. Any of them may send and finish; none may block for long. */
typedef struct ep_rpc_stream_ops {
  void *(*open)(void *data, ep_rpc_call *call); /* returns the call's state (NULL is fine) */
  void (*message)(void *state, ep_rpc_call *call, const uint8_t *message, size_t len);
  void (*half_close)(void *state, ep_rpc_call *call);
  void (*drained)(void *state, ep_rpc_call *call);
  void (*wake)(void *state, ep_rpc_call *call);
  void (*close)(void *state, ep_rpc_call *call);
} ep_rpc_stream_ops;

typedef struct ep_rpc_method {
  const char *path; /* "/package.Service/Method" */
  ep_rpc_kind kind;
  ep_rpc_handler handler;          /* either this ... */
  void *data;                      /* (handed to handler and to stream->open) */
  const ep_rpc_stream_ops *stream; /* ... or this, for a streaming method */
  int first_message_ms; /* stream: a call whose first message has not come this long after it
                         * opened is ended RESOURCE_EXHAUSTED, so silent calls cannot pile up
                         * (0: no limit) */
} ep_rpc_method;

/* A server's budgets; 0 (or a zeroed struct) means the default named. */
typedef struct ep_rpc_server_options {
  size_t max_message;         /* longest message received (EP_RPC_MESSAGE_MAX_DEFAULT) */
  int workers;                /* threads that run handlers and events (EP_RPC_WORKERS) */
  int calls_max;              /* calls at once; more are answered RESOURCE_EXHAUSTED (EP_RPC_CALLS_MAX) */
  int streams_per_connection; /* concurrent calls one connection may open (gRPC: unbounded) */
  int handshake_timeout_ms;   /* a connection's TLS and HTTP/2 handshake (gRPC: 120 s) */
  int keepalive_ms;           /* pings an idle connection this often, drops it unanswered (off) */
  int keepalive_timeout_ms;   /* ... after this long (gRPC: 20 s) */
  int idle_timeout_ms;        /* closes a connection without calls for this long (off) */
  size_t memory_max;          /* gRPC's resource quota for the server's connections (none) */
} ep_rpc_server_options;

/* Creates a server with options (NULL: every default). */
int ep_rpc_server_new(ep_rpc_server **out, const ep_rpc_server_options *options);

/* Registers a method (before ep_rpc_server_start; the path is copied). Calls to paths not
 * registered are answered UNIMPLEMENTED. */
int ep_rpc_server_add_method(ep_rpc_server *server, const ep_rpc_method *method);

/* Listens on address ("host:port", port 0 picks one; or "unix:/path"), in plaintext or with
 * tls. *ret_port (when not NULL) gets the port bound. Before ep_rpc_server_start. */
int ep_rpc_server_listen(ep_rpc_server *server, const char *address, const ep_rpc_tls *tls, int *ret_port);

/* Starts serving on a thread of the server's own. */
int ep_rpc_server_start(ep_rpc_server *server);

/* Stops accepting calls, gives running calls up to grace_ms to end, cancels the rest, waits
 * for every handler to return, then frees. Accepts NULL. */
void ep_rpc_server_free(ep_rpc_server *server, int grace_ms);

/* Copies the value of the request metadata key (lower case, e.g. "authorization") into buf;
 * returns its length, or -1 when absent or longer than len - 1. */
int ep_rpc_call_metadata(const ep_rpc_call *call, const char *key, char *buf, size_t len);

/* True when the call carries "authorization: Bearer <token>" with exactly token. The guess is
 * compared in constant time and wiped; a missing, malformed or longer value is false. */
bool ep_rpc_call_bearer_matches(const ep_rpc_call *call, const char *token);

/* True once the client cancelled, the deadline passed or the server is stopping. */
bool ep_rpc_call_cancelled(ep_rpc_call *call);

/* The path of the method called. */
const char *ep_rpc_call_method(const ep_rpc_call *call);

/* The IP address the call came from as the transport saw it ("127.0.0.2", "::1"; no port)
 * into buf; returns its length, or -1 for a non-IP peer (a unix socket) or a short buf. */
int ep_rpc_call_peer_ip(const ep_rpc_call *call, char *buf, size_t len);

/* Blocking handlers only: receives the next client message of a bidirectional call into
 * *ret_data and *ret_len (malloc'd, caller frees). Returns 1 for a message, 0 when the client
 * half-closed or the call is over. May run on one thread while another sends. */
int ep_rpc_call_recv(ep_rpc_call *call, uint8_t **ret_data, size_t *ret_len);

/* Sends one message of a streaming call (copied). From a blocking handler it waits until gRPC
 * took the message (a slow client slows down its own handler); from an event-driven one it
 * queues it (at most EP_RPC_SEND_QUEUE_MAX messages and EP_RPC_SEND_QUEUE_BYTES: past that,
 * EP_ENOMEM, and the handler should end the call). Messages go out in order. Returns 0, or
 * EP_ECANCELED when the call is over. */
int ep_rpc_call_send(ep_rpc_call *call, const uint8_t *data, size_t len);

/* Ends the call with status (a gRPC status code) and message, after the messages already
 * sent; for a unary call with status 0, data/len is the reply. Does not wait. The first call
 * counts; later ones return EP_ECANCELED. Returns 0, or EP_ECANCELED when the call is over. */
int ep_rpc_call_finish(ep_rpc_call *call, int status, const char *message, const uint8_t *data, size_t len);

/* Event-driven calls: true when EP_RPC_SEND_QUEUE_MAX / 2 more messages of up to a few KiB each
 * may be sent now without refusal; when false, the stream's drained event comes once everything queued went out. A stream that
 * sends many messages (a list, a log) sends while this is true and goes on in drained. */
bool ep_rpc_call_send_room(ep_rpc_call *call);

/* Event-driven calls: asks for the stream's wake event, from any thread. Whoever calls it
 * from outside the call's own events must hold a reference (ep_rpc_call_ref), taken during
 * one of its events. Wakes after close are dropped. */
void ep_rpc_call_wake(ep_rpc_call *call);

/* Keeps the call's memory valid until the matching unref, for ep_rpc_call_wake (dropped once
 * the call is over) and the unref itself: nothing else may be called on an ended call. */
void ep_rpc_call_ref(ep_rpc_call *call);
void ep_rpc_call_unref(ep_rpc_call *call);

/* ---- client ------------------------------------------------------------------------------ */

typedef struct ep_rpc_channel ep_rpc_channel;

/* Opens a channel to target ("host:port" or "unix:/path"), plaintext when tls is NULL. The
 * connection is made on the first call. Thread-safe: calls may share a channel. */
int ep_rpc_channel_new(ep_rpc_channel **out, const char *target, const ep_rpc_tls *tls, size_t max_message);

/* How a channel connects; all zero is ep_rpc_channel_new's behaviour. */
typedef struct ep_rpc_channel_options {
  size_t max_message;         /* longest message received (0: the default) */
  const char *source_address; /* IP address its TCP connections are made from ("127.0.0.2"); NULL: any */
  bool own_connection;        /* a connection of its own: never shared with another channel to the same target */
} ep_rpc_channel_options;

/* ep_rpc_channel_new with options (NULL: none). EP_EINVAL names a source_address that is not
 * an IP address; a source address the machine does not have fails the calls (UNAVAILABLE). */
int ep_rpc_channel_new_with(ep_rpc_channel **out, const char *target, const ep_rpc_tls *tls,
                            const ep_rpc_channel_options *options);
void ep_rpc_channel_free(ep_rpc_channel *channel);

/* Connects now (a channel otherwise connects on its first call) and waits until the
 * connection is ready, up to timeout_ms (0: no limit). Returns 0, EP_ETIMEDOUT, or EP_EIO for
 * a channel shut down. Thread-safe. */
int ep_rpc_channel_connect(ep_rpc_channel *channel, int timeout_ms);

/* One metadata entry sent with a call ("authorization", "Bearer ..."). */
typedef struct ep_rpc_metadata {
  const char *key;
  const char *value;
} ep_rpc_metadata;

/* The end of a call: gRPC status code, the server's message, and for a unary call the
 * reply (malloc'd; ep_rpc_result_clear frees it). */
typedef struct ep_rpc_result {
  int status;
  bool unreachable; /* status UNAVAILABLE because no connection to the server could be made or kept */
  char message[512];
  uint8_t *data;
  size_t len;
} ep_rpc_result;

void ep_rpc_result_clear(ep_rpc_result *result);

/* Makes a unary call that gives up after timeout_ms. Returns 0 when the call ran (whatever
 * its status, in *out), or a negative code when it could not be started. */
int ep_rpc_unary(ep_rpc_channel *channel, const char *path, const ep_rpc_metadata *metadata, size_t metadata_count,
                 const uint8_t *request, size_t len, int timeout_ms, ep_rpc_result *out);

typedef struct ep_rpc_stream ep_rpc_stream;

/* Starts a streaming call; timeout_ms 0 means no deadline. With a request (len may be 0
 * for an empty message) it is a server-streaming call: the request is sent and the client
 * half-closes. With request NULL it is a bidirectional call: send with ep_rpc_stream_send,
 * end the sending side with ep_rpc_stream_half_close. */
int ep_rpc_stream_open(ep_rpc_stream **out, ep_rpc_channel *channel, const char *path,
                       const ep_rpc_metadata *metadata, size_t metadata_count, const uint8_t *request, size_t len,
                       int timeout_ms);

/* Sends one message of a bidirectional call. Returns 0, or EP_ECANCELED when the call is
 * over. One sender at a time; it may run while another thread reads. */
int ep_rpc_stream_send(ep_rpc_stream *stream, const uint8_t *data, size_t len);

/* Tells the server the client sends no more (bidirectional calls). */
int ep_rpc_stream_half_close(ep_rpc_stream *stream);

/* Receives the next message into *ret_data and *ret_len (malloc'd, caller frees). Returns 1 for
 * a message, 0 at the end of the stream (the status is then in ep_rpc_stream_close). */
int ep_rpc_stream_read(ep_rpc_stream *stream, uint8_t **ret_data, size_t *ret_len);

/* Cancels the call if it is still running, stores its final status in *out (when not NULL)
 * and frees the stream. */
void ep_rpc_stream_close(ep_rpc_stream *stream, ep_rpc_result *out);

#endif
