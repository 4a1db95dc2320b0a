/* core: the helper over the gRPC core C API, see rpc.h. */
#define _GNU_SOURCE /* strdup */
#include "net/rpc.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <grpc/support/sync.h>
#include <grpc/support/time.h>
#include <openssl/ssl.h> /* (libgrpc-dev depends on libssl-dev) for the interposed SSL_CTX_new only */

#include "base/clock.h"
#include "base/error.h"
#include "base/figures.h"
#include "base/secret.h"


/* ---- shared ------------------------------------------------------------------------------ */

static pthread_once_t log_once = PTHREAD_ONCE_INIT;

static void drop_log(gpr_log_func_args *args) { (void)args; }

/* Debian builds abseil without NDEBUG, so every absl::Mutex lock and unlock in gRPC runs
 * abseil's debug deadlock detector: a graph of lock orders kept under one process-wide lock
 * (3-5 % of edgeprovd's CPU per onboarding, and contention between its threads). Release
 * builds of abseil skip it; so does this process, through abseil's own switch
 * (absl::SetMutexDeadlockDetectionMode(kIgnore), a C++ function, hence found by its symbol
 * in the inline namespaces of known builds; none found: nothing changes). */
static void skip_abseil_deadlock_detection(void) {
  static const char *const names[] = {
      "_ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE",        /* Debian 12 */
      "_ZN4absl12lts_2022062329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE", /* upstream LTS */
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    void (*set_mode)(int) = NULL;
    *(void **)&set_mode = dlsym(RTLD_DEFAULT, names[i]); /* (POSIX's way to a function pointer) */
    if (set_mode) {
      set_mode(0); /* absl::OnDeadlockCycle::kIgnore */
      return;
    }
  }
}

/* gRPC's TLS (its TSI layer over OpenSSL) gives every connection an SSL whose read and write
 * buffers (~16.5 KiB each) stay allocated for the connection's life: gRPC core neither sets
 * SSL_MODE_RELEASE_BUFFERS, which frees them whenever no record is half read or half sent,
 * nor exposes its SSL_CTX. So a program linking this file (edgeprovd, the agent, the CLI)
 * defines SSL_CTX_new, which the dynamic linker binds ahead of libssl's for every library of
 * the process: it calls libssl's (the next definition, RTLD_NEXT) and sets that mode on the
 * new context, whose SSLs inherit it. Harmless to the process's other users of OpenSSL
 * (libcurl, plugins): the mode changes only when buffers are allocated, never what is read
 * or written. With no libssl loaded nobody calls this; without its symbols it returns NULL,
 * as an SSL_CTX_new that failed. 5.5 KiB less per waiting node (bench_southbound, README). */
SSL_CTX *SSL_CTX_new(const SSL_METHOD *method) {
  static _Atomic(SSL_CTX *(*)(const SSL_METHOD *)) real_new;
  static _Atomic(long (*)(SSL_CTX *, int, long, void *)) real_ctrl;
  SSL_CTX *(*new_ctx)(const SSL_METHOD *) = atomic_load(&real_new);
  long (*ctrl)(SSL_CTX *, int, long, void *) = atomic_load(&real_ctrl);
  if (!new_ctx || !ctrl) { /* racing threads look up the same two addresses */
    *(void **)&new_ctx = dlsym(RTLD_NEXT, "SSL_CTX_new");
    *(void **)&ctrl = dlsym(RTLD_NEXT, "SSL_CTX_ctrl");
    if (!new_ctx || !ctrl) return NULL;
    atomic_store(&real_new, new_ctx);
    atomic_store(&real_ctrl, ctrl);
  }
  SSL_CTX *ctx = new_ctx(method);
  if (ctx) ctrl(ctx, SSL_CTRL_MODE, SSL_MODE_RELEASE_BUFFERS, NULL); /* SSL_CTX_set_mode, a macro over it */
  return ctx;
}

/* gRPC logs to stderr on its own; library code must not print, so its log is dropped
 * unless an operator asks for it with GRPC_VERBOSITY. */
static void quiet_grpc_log(void) {
  if (!getenv("GRPC_VERBOSITY")) gpr_set_log_function(drop_log);
  skip_abseil_deadlock_detection();
}

static void rpc_init(void) {
  pthread_once(&log_once, quiet_grpc_log);
  grpc_init();
}

static grpc_byte_buffer *bytes_to_buffer(const uint8_t *data, size_t len) {
  grpc_slice slice = grpc_slice_from_copied_buffer((const char *)data, len);
  grpc_byte_buffer *buffer = grpc_raw_byte_buffer_create(&slice, 1);
  grpc_slice_unref(slice);
  return buffer;
}

/* Copies a received buffer into malloc'd memory; returns 0 or EP_ENOMEM / EP_EIO. */
static int buffer_to_bytes(grpc_byte_buffer *buffer, uint8_t **ret_data, size_t *ret_len) {
  grpc_byte_buffer_reader reader;
  if (!grpc_byte_buffer_reader_init(&reader, buffer)) return ep_error_set(EP_EIO, "cannot read a gRPC message");
  grpc_slice slice = grpc_byte_buffer_reader_readall(&reader);
  grpc_byte_buffer_reader_destroy(&reader);
  size_t len = GRPC_SLICE_LENGTH(slice);
  uint8_t *data = malloc(len ? len : 1);
  if (data) memcpy(data, GRPC_SLICE_START_PTR(slice), len);
  grpc_slice_unref(slice);
  if (!data) return ep_error_set(EP_ENOMEM, "out of memory");
  *ret_data = data;
  *ret_len = len;
  return 0;
}

static gpr_timespec deadline_in(int timeout_ms) {
  if (timeout_ms <= 0) return gpr_inf_future(GPR_CLOCK_REALTIME);
  return gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
}

/* Runs ops as one batch on call and waits for it on cq (a pluck queue). Returns the
 * batch's success flag, or 0 when it could not be started. */
static int run_batch(grpc_call *call, grpc_completion_queue *cq, const grpc_op *ops, size_t count, void *tag) {
  if (grpc_call_start_batch(call, ops, count, tag, NULL) != GRPC_CALL_OK) return 0;
  grpc_event ev = grpc_completion_queue_pluck(cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  return ev.type == GRPC_OP_COMPLETE && ev.success;
}

static void destroy_cq(grpc_completion_queue *cq) {
  grpc_completion_queue_shutdown(cq);
  grpc_completion_queue_destroy(cq);
}

static void copy_slice(char *buf, size_t len, grpc_slice slice) {
  size_t n = GRPC_SLICE_LENGTH(slice);
  if (n >= len) n = len - 1;
  memcpy(buf, GRPC_SLICE_START_PTR(slice), n);
  buf[n] = '\0';
}

/* Largest TLS record a server connection builds (gRPC's default: 16 KiB). Its TLS layer keeps
 * a buffer of that size per connection for its whole life, and what the server sends is small
 * (an onboarding answer, a workflow step): a message past 4 KiB goes out as several records,
 * 22 bytes each more. 4.8 KiB less per waiting node on top of SSL_CTX_new's mode above. */
#define TLS_FRAME_MAX 4096

/* ---- server -------------------------------------------------------------------------------- */

/* How a call's handler runs (see rpc.h): */
typedef enum {
  MODE_UNARY,  /* the handler runs once on a worker, with the request */
  MODE_EVENTS, /* ep_rpc_stream_ops: each event on a worker; waiting holds no thread */
  MODE_THREAD, /* a blocking streaming handler on a thread of its own */
} call_mode;

/* What a completion on the server's queue was for; each call has at most one of each kind
 * in flight. */
typedef enum { TAG_NEW, TAG_RECV, TAG_SEND, TAG_FINISH, TAG_CLOSE, TAG_KINDS } tag_kind;

typedef struct call_tag {
  struct ep_rpc_call *call;
  tag_kind kind;
} call_tag;

typedef struct queued_send {
  struct queued_send *next;
  size_t len;
  uint8_t data[];
} queued_send;

struct ep_rpc_server {
  grpc_server *grpc;
  grpc_completion_queue *cq; /* every completion: new calls, each call's batches, the shutdown */
  ep_rpc_method *methods;
  size_t method_count;
  bool started;
  ep_rpc_server_options options; /* with the defaults filled in */
  grpc_resource_quota *quota;     /* NULL without options.memory_max */
  pthread_t pollers[EP_RPC_POLLERS];
  int poller_count;
  pthread_t *workers;
  int worker_count;
  pthread_mutex_t lock; /* guards what follows; taken after a call's lock, never before */
  pthread_cond_t cond;  /* active, threads or shutdown_done changed */
  pthread_cond_t work_cond;
  struct ep_rpc_call *run_head, *run_tail; /* calls with events for a worker */
  struct ep_rpc_call *live;                /* event-driven calls not over, for the stop's wake */
  struct ep_rpc_call *silent_head, *silent_tail; /* calls of a method with first_message_ms that have
                                                  * sent nothing yet, oldest first (make_room) */
  int active;  /* calls accepted and not yet freed */
  int active_peak; /* the most at once since memory was last given back (give_back_memory) */
  long long trimmed_ms;    /* when it was (monotonic ms) */
  long long trim_until_ms; /* memory is given back until then, after a burst */
  int threads; /* MODE_THREAD handlers running */
  bool stopping;
  bool shutdown_done;
  char shutdown_tag;
  atomic_bool scanning;  /* a poller is looking for calls past their first-message deadline */
  atomic_llong scanned_ms; /* when one last did (monotonic ms) */
};

struct ep_rpc_call {
  ep_rpc_server *server;
  grpc_call *grpc;
  grpc_call_details details;
  grpc_metadata_array metadata;
  const ep_rpc_method *method;
  call_mode mode;
  char path[256];
  call_tag tags[TAG_KINDS];
  pthread_mutex_t lock; /* guards what follows */
  pthread_cond_t cond;  /* MODE_THREAD: a message, a send's end or the close arrived */
  int holds;            /* batches in flight + the handler's; 0 ends the call (call_over) */
  atomic_int refs;      /* ep_rpc_call_ref's; the memory lives until holds and refs are 0 */
  bool over;            /* call_over ran or runs: the gRPC call is released */
  struct ep_rpc_call *live_prev, *live_next; /* in server->live until over (server's lock) */
  struct ep_rpc_call *silent_prev, *silent_next; /* in server->silent_* until its first message or its end */
  bool silent;                                   /* ... while it is in it (server's lock) */
  gpr_timespec first_deadline;  /* method->first_message_ms after the call came; set once */
  atomic_bool first_message;    /* a message arrived (read by the deadline scan) */
  bool counted;         /* counts in server->active until it is over */
  /* receiving */
  grpc_byte_buffer *recv_buffer; /* filled by the RECV batch */
  bool recv_armed;
  uint8_t *message; /* a message waiting for the handler, with its length */
  size_t message_len;
  bool has_message;
  bool recv_over;          /* no more messages: the client half-closed, or the call is over */
  bool pending_half_close; /* MODE_EVENTS: tell the handler recv_over */
  /* sending */
  bool initial_sent;
  grpc_byte_buffer *send_buffer; /* in flight, NULL when none */
  queued_send *send_head, *send_tail;
  size_t send_queued, send_queued_bytes;
  uint64_t sends_started, sends_done; /* MODE_THREAD waits for its own send */
  bool send_failed;
  bool hold_sends; /* MODE_EVENTS: a handler runs; its sends start when it returns (pump_sends) */
  bool finished; /* ep_rpc_call_finish was called */
  bool finish_started;
  int finish_status;
  char *finish_message;
  uint8_t *finish_data;
  size_t finish_len;
  grpc_slice finish_details;
  grpc_byte_buffer *finish_buffer;
  /* the end */
  int close_cancelled; /* filled by the CLOSE batch */
  bool closed;
  /* events for a worker (MODE_UNARY, MODE_EVENTS) */
  void *state; /* what ep_rpc_stream_ops.open returned */
  bool pending_open, pending_wake, pending_end, ended;
  bool want_drained, pending_drained; /* ep_rpc_call_send_room said no: tell when it is empty */
  bool queued, running;
  struct ep_rpc_call *next; /* in the run queue */
};

/* Takes c out of the server's silent calls, if it is there. Server's lock held. */
static void silent_remove(ep_rpc_server *server, ep_rpc_call *c) {
  if (!c->silent) return;
  if (c->silent_prev)
    c->silent_prev->silent_next = c->silent_next;
  else
    server->silent_head = c->silent_next;
  if (c->silent_next)
    c->silent_next->silent_prev = c->silent_prev;
  else
    server->silent_tail = c->silent_prev;
  c->silent_prev = c->silent_next = NULL;
  c->silent = false;
}

/* The call is over (no batch in flight, the handler done with it): releases the gRPC call and
 * its place in the server; its memory may live on for references. Runs without the call's
 * lock, holding a reference (see settle_unlock). */
static void call_over(ep_rpc_call *c, grpc_call *grpc) {
  if (grpc) grpc_call_unref(grpc);
  if (!c->counted) return;
  ep_rpc_server *server = c->server;
  pthread_mutex_lock(&server->lock);
  silent_remove(server, c);
  if (c->mode == MODE_EVENTS) {
    if (c->live_prev)
      c->live_prev->live_next = c->live_next;
    else if (server->live == c)
      server->live = c->live_next;
    if (c->live_next) c->live_next->live_prev = c->live_prev;
  }
  server->active--;
  ep_figures_rpc_calls_open(-1);
  pthread_cond_broadcast(&server->cond);
  pthread_mutex_unlock(&server->lock);
}

static void call_free(ep_rpc_call *c) {
  if (c->grpc) grpc_call_unref(c->grpc);
  grpc_call_details_destroy(&c->details);
  grpc_metadata_array_destroy(&c->metadata);
  if (c->recv_buffer) grpc_byte_buffer_destroy(c->recv_buffer);
  free(c->message);
  for (queued_send *q = c->send_head, *next; q; q = next) {
    next = q->next;
    free(q);
  }
  free(c->finish_message);
  if (c->finish_data) explicit_bzero(c->finish_data, c->finish_len);
  free(c->finish_data);
  pthread_cond_destroy(&c->cond);
  pthread_mutex_destroy(&c->lock);
  free(c);
}

/* After holds or refs dropped, with the call's lock held: ends the call when nothing holds
 * it, frees it when nothing refers to it either. Unlocks. */
static void settle_unlock(ep_rpc_call *c) {
  if (c->holds == 0 && !c->over) {
    c->over = true;
    grpc_call *grpc = c->grpc;
    c->grpc = NULL;
    grpc_metadata_array_destroy(&c->metadata); /* its slices belong to the call */
    grpc_metadata_array_init(&c->metadata);
    atomic_fetch_add(&c->refs, 1); /* keeps c while it leaves the server, outside its lock */
    pthread_mutex_unlock(&c->lock);
    call_over(c, grpc);
    pthread_mutex_lock(&c->lock);
    atomic_fetch_sub(&c->refs, 1);
  }
  bool gone = c->holds == 0 && atomic_load(&c->refs) == 0;
  pthread_mutex_unlock(&c->lock);
  if (gone) call_free(c);
}

/* Drops one hold. The call's lock must not be held. */
static void call_release(ep_rpc_call *c) {
  pthread_mutex_lock(&c->lock);
  c->holds--;
  settle_unlock(c);
}

/* Starts a batch whose completion comes back tagged kind; counts a hold while it is in
 * flight. Call with the call's lock held. Returns false when gRPC refused to start it. */
static bool start_batch(ep_rpc_call *c, const grpc_op *ops, size_t count, tag_kind kind) {
  if (grpc_call_start_batch(c->grpc, ops, count, &c->tags[kind], NULL) != GRPC_CALL_OK) return false;
  c->holds++;
  return true;
}

static bool has_events(const ep_rpc_call *c) {
  if (c->ended) return false;
  if (c->mode == MODE_UNARY) return c->has_message || c->recv_over;
  return c->pending_open || c->has_message || c->pending_half_close || c->pending_drained || c->pending_wake ||
         c->pending_end;
}

/* Puts c on the run queue when it has events and no worker has it. Call's lock held. */
static void schedule(ep_rpc_call *c) {
  if (c->mode == MODE_THREAD || c->queued || c->running || !has_events(c)) return;
  c->queued = true;
  ep_rpc_server *server = c->server;
  pthread_mutex_lock(&server->lock);
  c->next = NULL;
  if (server->run_tail)
    server->run_tail->next = c;
  else
    server->run_head = c;
  server->run_tail = c;
  pthread_cond_signal(&server->work_cond);
  pthread_mutex_unlock(&server->lock);
}

/* Arms the receipt of the next client message (with the initial metadata the first time).
 * Call's lock held. */
static void arm_recv(ep_rpc_call *c) {
  if (c->recv_armed || c->recv_over || c->closed || c->finished) return;
  grpc_op ops[2];
  size_t n = 0;
  memset(ops, 0, sizeof ops);
  if (!c->initial_sent) ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[n].op = GRPC_OP_RECV_MESSAGE;
  ops[n++].data.recv_message.recv_message = &c->recv_buffer;
  if (start_batch(c, ops, n, TAG_RECV)) {
    c->recv_armed = true;
    c->initial_sent = true;
  } else {
    c->recv_over = true;
  }
}

/* True when the one message still queued can go out in the status batch: nothing in flight,
 * nothing after it, and no reply of the finish itself to take its place. Call's lock held. */
static bool last_send_with_status(const ep_rpc_call *c) {
  return c->finished && !c->finish_started && !c->send_buffer && c->send_head && c->send_head == c->send_tail &&
         !c->send_failed && !(c->finish_status == 0 && c->finish_data);
}

/* Starts the status batch once no send is in flight or queued; the last queued message goes
 * in the same batch (one write, one completion: a stream that answers and ends, as an
 * onboarding does, costs a batch less on both sides). Call's lock held. */
static void start_finish(ep_rpc_call *c) {
  if (!c->finished || c->finish_started || c->send_buffer || (c->send_head && !last_send_with_status(c))) return;
  c->finish_started = true;
  ep_figures_rpc_call(c->method ? c->path : "unknown", ep_status_name(c->finish_status)); /* a known path only */
  c->finish_details = grpc_slice_from_copied_string(c->finish_message ? c->finish_message : "");
  c->finish_buffer = c->finish_status == 0 && c->finish_data ? bytes_to_buffer(c->finish_data, c->finish_len) : NULL;
  if (c->send_head) { /* last_send_with_status */
    queued_send *q = c->send_head;
    c->send_head = c->send_tail = NULL;
    c->send_queued--;
    c->send_queued_bytes -= q->len;
    c->finish_buffer = bytes_to_buffer(q->data, q->len);
    explicit_bzero(q->data, q->len); /* a message may carry a node's secret */
    free(q);
    c->sends_done++;
  }
  grpc_op ops[3];
  size_t n = 0;
  memset(ops, 0, sizeof ops);
  if (!c->initial_sent) {
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    c->initial_sent = true;
  }
  if (c->finish_buffer) {
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = c->finish_buffer;
  }
  ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[n].data.send_status_from_server.status = (grpc_status_code)c->finish_status;
  ops[n++].data.send_status_from_server.status_details = &c->finish_details;
  if (!start_batch(c, ops, n, TAG_FINISH)) {
    grpc_slice_unref(c->finish_details);
    if (c->finish_buffer) grpc_byte_buffer_destroy(c->finish_buffer);
    c->finish_buffer = NULL;
    grpc_call_cancel(c->grpc, NULL);
  }
}

/* Starts the next queued send when none is in flight, else the status. While an event
 * handler of the call runs, nothing starts: run_events pumps when it returns, so a message
 * and the status the handler gave after it leave in one batch. Call's lock held. */
static void pump_sends(ep_rpc_call *c) {
  if (c->hold_sends) return;
  while (!c->send_buffer && c->send_head && !last_send_with_status(c)) {
    queued_send *q = c->send_head;
    c->send_head = q->next;
    if (!c->send_head) c->send_tail = NULL;
    c->send_queued--;
    c->send_queued_bytes -= q->len;
    if (!c->send_failed) {
      grpc_op op = {.op = GRPC_OP_SEND_MESSAGE};
      c->send_buffer = bytes_to_buffer(q->data, q->len);
      op.data.send_message.send_message = c->send_buffer;
      if (!start_batch(c, &op, 1, TAG_SEND)) {
        grpc_byte_buffer_destroy(c->send_buffer);
        c->send_buffer = NULL;
        c->send_failed = true;
      }
    }
    explicit_bzero(q->data, q->len); /* a message may carry a node's secret */
    free(q);
    if (c->send_failed) c->sends_done++;
  }
  start_finish(c);
}

/* Ends a call at once from the serving side: status only. Call's lock held. */
static void refuse(ep_rpc_call *c, grpc_status_code status, const char *message) {
  c->finished = true;
  c->finish_status = status;
  c->finish_message = strdup(message);
  start_finish(c);
}

/* Opens one request slot: gRPC fills it with the next incoming call. */
static int request_slot(ep_rpc_server *server) {
  ep_rpc_call *c = calloc(1, sizeof *c);
  if (!c) return EP_ENOMEM;
  c->server = server;
  for (int k = 0; k < TAG_KINDS; k++) c->tags[k] = (call_tag){c, (tag_kind)k};
  pthread_mutex_init(&c->lock, NULL);
  pthread_cond_init(&c->cond, NULL);
  grpc_call_details_init(&c->details);
  grpc_metadata_array_init(&c->metadata);
  c->holds = 1; /* the slot */
  if (grpc_server_request_call(server->grpc, &c->grpc, &c->details, &c->metadata, server->cq, server->cq,
                               &c->tags[TAG_NEW]) != GRPC_CALL_OK) {
    call_free(c);
    return EP_EIO;
  }
  return 0;
}

int ep_rpc_server_new(ep_rpc_server **out, const ep_rpc_server_options *options) {
  ep_rpc_server *server = calloc(1, sizeof *server);
  if (!server) return ep_error_set(EP_ENOMEM, "out of memory");
  ep_rpc_server_options o = options ? *options : (ep_rpc_server_options){0};
  if (!o.max_message) o.max_message = EP_RPC_MESSAGE_MAX_DEFAULT;
  if (o.workers <= 0) o.workers = EP_RPC_WORKERS;
  if (o.calls_max <= 0) o.calls_max = EP_RPC_CALLS_MAX;
  server->options = o;
  server->workers = calloc((size_t)o.workers, sizeof *server->workers);
  if (!server->workers) {
    free(server);
    return ep_error_set(EP_ENOMEM, "out of memory");
  }
  rpc_init();
  grpc_arg args[10];
  size_t n = 0;
  args[n++] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
                         .value.integer = (int)o.max_message};
  args[n++] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_TSI_MAX_FRAME_SIZE, .value.integer = TLS_FRAME_MAX};
  if (o.streams_per_connection > 0)
    args[n++] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_CONCURRENT_STREAMS,
                           .value.integer = o.streams_per_connection};
  if (o.handshake_timeout_ms > 0)
    args[n++] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                           .value.integer = o.handshake_timeout_ms};
  if (o.keepalive_ms > 0) {
    args[n++] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_KEEPALIVE_TIME_MS, .value.integer = o.keepalive_ms};
    if (o.keepalive_timeout_ms > 0)
      args[n++] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             .value.integer = o.keepalive_timeout_ms};
  }
  if (o.idle_timeout_ms > 0)
    args[n++] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                           .value.integer = o.idle_timeout_ms};
  if (o.memory_max > 0) {
    server->quota = grpc_resource_quota_create("edgeprov-server");
    grpc_resource_quota_resize(server->quota, o.memory_max);
    args[n++] = (grpc_arg){.type = GRPC_ARG_POINTER, .key = GRPC_ARG_RESOURCE_QUOTA,
                           .value.pointer = {server->quota, grpc_resource_quota_arg_vtable()}};
  }
  grpc_channel_args channel_args = {.num_args = n, .args = args};
  server->grpc = grpc_server_create(&channel_args, NULL);
  server->cq = grpc_completion_queue_create_for_next(NULL);
  grpc_server_register_completion_queue(server->grpc, server->cq, NULL);
  pthread_mutex_init(&server->lock, NULL);
  pthread_cond_init(&server->cond, NULL);
  pthread_cond_init(&server->work_cond, NULL);
  *out = server;
  return 0;
}

int ep_rpc_server_add_method(ep_rpc_server *server, const ep_rpc_method *method) {
  if (server->started) return ep_error_set(EP_EINVAL, "methods are added before the server starts");
  if (!method->path || method->path[0] != '/' || strlen(method->path) >= sizeof((ep_rpc_call *)0)->path)
    return ep_error_set(EP_EINVAL, "bad method path '%.64s'", method->path ? method->path : "(null)");
  if (!method->handler == !method->stream || (method->stream && method->kind == EP_RPC_UNARY))
    return ep_error_set(EP_EINVAL, "method %s: give a handler, or stream events for a streaming method", method->path);
  ep_rpc_method *methods = realloc(server->methods, (server->method_count + 1) * sizeof *methods);
  if (!methods) return ep_error_set(EP_ENOMEM, "out of memory");
  server->methods = methods;
  methods[server->method_count] = *method;
  if (!(methods[server->method_count].path = strdup(method->path))) return ep_error_set(EP_ENOMEM, "out of memory");
  server->method_count++;
  return 0;
}

int ep_rpc_server_listen(ep_rpc_server *server, const char *address, const ep_rpc_tls *tls, int *ret_port) {
  grpc_server_credentials *creds;
  if (tls) {
    if (!tls->cert_pem || !tls->key_pem) return ep_error_set(EP_EINVAL, "%s: TLS needs a certificate and a key", address);
    grpc_ssl_pem_key_cert_pair pair = {.private_key = tls->key_pem, .cert_chain = tls->cert_pem};
    creds = grpc_ssl_server_credentials_create_ex(
        tls->client_ca_pem, &pair, 1,
        tls->client_ca_pem ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                           : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
        NULL);
  } else {
    creds = grpc_insecure_server_credentials_create();
  }
  if (!creds) return ep_error_set(EP_EINVAL, "%s: the TLS certificate or key was refused", address);
  int port = grpc_server_add_http2_port(server->grpc, address, creds);
  grpc_server_credentials_release(creds);
  if (port == 0) return ep_error_set(EP_EIO, "cannot listen on %s (address in use, or not allowed)", address);
  if (strncmp(address, "unix:", 5) == 0 && chmod(address + 5, 0660) < 0)
    return ep_error_set(-errno, "cannot set the mode of %s: %s", address + 5, strerror(errno));
  if (ret_port) *ret_port = port;
  return 0;
}

static const ep_rpc_method *find_method(const ep_rpc_server *server, const char *path) {
  for (size_t i = 0; i < server->method_count; i++)
    if (strcmp(server->methods[i].path, path) == 0) return &server->methods[i];
  return NULL;
}

/* MODE_THREAD: waits for the first message, when the method takes one, then runs the
 * blocking handler on this thread. */
static void *thread_main(void *arg) {
  ep_rpc_call *c = arg;
  uint8_t *request = NULL;
  size_t len = 0;
  bool run = true;
  if (c->method->kind == EP_RPC_SERVER_STREAMING) {
    int r = ep_rpc_call_recv(c, &request, &len);
    if (r != 1) {
      pthread_mutex_lock(&c->lock);
      bool cancelled = c->closed;
      pthread_mutex_unlock(&c->lock);
      if (!cancelled)
        ep_rpc_call_finish(c, r < 0 ? GRPC_STATUS_RESOURCE_EXHAUSTED : GRPC_STATUS_INVALID_ARGUMENT,
                           r < 0 ? "out of memory reading the request" : "the call carried no request message", NULL, 0);
      run = false;
    }
  }
  if (run) c->method->handler(c->method->data, c, request, len);
  free(request);
  pthread_mutex_lock(&c->lock);
  bool finished = c->finished;
  pthread_mutex_unlock(&c->lock);
  if (!finished) ep_rpc_call_finish(c, GRPC_STATUS_CANCELLED, "the call ended before the handler replied", NULL, 0);
  ep_rpc_server *server = c->server;
  call_release(c); /* the handler's hold */
  pthread_mutex_lock(&server->lock);
  server->threads--;
  pthread_cond_broadcast(&server->cond);
  pthread_mutex_unlock(&server->lock);
  return NULL;
}

/* The retry hint of a call refused because the server is full: calls end and free their
 * places all the time (a silent one within its method's first_message_ms). */
#define BUSY_RETRY_S 10

/* The server is full: the call that has waited longest without sending anything, if any,
 * gives its place up (it is ended RESOURCE_EXHAUSTED once the server's lock is released).
 * Without this, one client could keep calls_max filled with streams that say nothing, renewed
 * every first_message_ms, and every other caller, a registered node behind the same address
 * too, was refused. Returns the call with a reference, or NULL. Server's lock held. */
static ep_rpc_call *make_room(ep_rpc_server *server) {
  ep_rpc_call *oldest = server->silent_head;
  if (!oldest) return NULL;
  silent_remove(server, oldest);
  atomic_fetch_add(&oldest->refs, 1); /* it has not left the server: see wake_live_calls */
  return oldest;
}

/* A new call arrived (on a poller): finds its method, admits it or refuses it, and starts
 * it in its mode. */
static void accept_call(ep_rpc_server *server, ep_rpc_call *c) {
  char *method = grpc_slice_to_c_string(c->details.method);
  snprintf(c->path, sizeof c->path, "%s", method ? method : "");
  gpr_free(method);
  c->method = find_method(server, c->path);
  c->mode = !c->method || c->method->kind == EP_RPC_UNARY ? MODE_UNARY : c->method->stream ? MODE_EVENTS : MODE_THREAD;
  pthread_mutex_lock(&server->lock);
  bool allowed = !server->stopping && (c->mode != MODE_THREAD || server->threads < server->options.calls_max);
  bool room = allowed && server->active < server->options.calls_max;
  ep_rpc_call *evicted = allowed && !room ? make_room(server) : NULL;
  room = room || evicted;
  if (room) {
    server->active++;
    ep_figures_rpc_calls_open(1);
    if (server->active > server->active_peak) server->active_peak = server->active;
    if (c->mode == MODE_THREAD) server->threads++;
    if (c->mode == MODE_EVENTS && c->method) {
      if (c->method->first_message_ms > 0) {
        c->first_deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                         gpr_time_from_millis(c->method->first_message_ms, GPR_TIMESPAN));
        c->silent_prev = server->silent_tail;
        if (server->silent_tail)
          server->silent_tail->silent_next = c;
        else
          server->silent_head = c;
        server->silent_tail = c;
        c->silent = true;
      }
      c->live_next = server->live;
      if (server->live) server->live->live_prev = c;
      server->live = c;
    }
  }
  pthread_mutex_unlock(&server->lock);
  if (evicted) {
    pthread_mutex_lock(&evicted->lock);
    if (!evicted->over && !evicted->finished && !atomic_load(&evicted->first_message)) {
      char message[128];
      snprintf(message, sizeof message,
               "the server is handling too many calls and this one sent nothing; ask again in %d s", BUSY_RETRY_S);
      refuse(evicted, GRPC_STATUS_RESOURCE_EXHAUSTED, message);
    }
    pthread_mutex_unlock(&evicted->lock);
    ep_rpc_call_unref(evicted);
  }

  pthread_mutex_lock(&c->lock);
  c->counted = room;
  grpc_op close_op = {.op = GRPC_OP_RECV_CLOSE_ON_SERVER};
  close_op.data.recv_close_on_server.cancelled = &c->close_cancelled;
  if (!start_batch(c, &close_op, 1, TAG_CLOSE)) {
    grpc_call_cancel(c->grpc, NULL);
    c->closed = c->recv_over = true;
  }
  /* A call refused here has no handler and no handler's hold: it must never be scheduled
   * (has_events), or its close event would release a hold it does not have and free the call
   * while a worker still has it. */
  c->ended = !room || !c->method;
  if (!room) {
    char message[96];
    snprintf(message, sizeof message, "the server is handling too many calls; ask again in %d s", BUSY_RETRY_S);
    refuse(c, GRPC_STATUS_RESOURCE_EXHAUSTED, message);
  } else if (!c->method) {
    char message[320];
    snprintf(message, sizeof message, "unknown method %s", c->path);
    refuse(c, GRPC_STATUS_UNIMPLEMENTED, message);
  } else {
    c->holds++; /* the handler's, released once it is done with the call */
    arm_recv(c);
    if (c->mode == MODE_EVENTS) c->pending_open = true;
    schedule(c);
  }
  pthread_mutex_unlock(&c->lock);
  if (room && c->method && c->mode == MODE_THREAD) {
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, EP_RPC_STREAM_STACK);
    if (pthread_create(&thread, &attr, thread_main, c) != 0) {
      pthread_mutex_lock(&c->lock);
      if (!c->finished) refuse(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "the server cannot start a thread; retry later");
      pthread_mutex_unlock(&c->lock);
      pthread_mutex_lock(&server->lock);
      server->threads--;
      pthread_mutex_unlock(&server->lock);
      call_release(c);
    }
    pthread_attr_destroy(&attr);
  }
}

/* A batch of c completed (on a poller): records what it brought and wakes who waits. */
static void complete(ep_rpc_call *c, tag_kind kind, bool success) {
  pthread_mutex_lock(&c->lock);
  switch (kind) {
  case TAG_RECV:
    c->recv_armed = false;
    if (success && c->recv_buffer) {
      uint8_t *data = NULL;
      size_t len = 0;
      if (buffer_to_bytes(c->recv_buffer, &data, &len) == 0) {
        if (!atomic_exchange(&c->first_message, true) && c->mode == MODE_EVENTS) {
          pthread_mutex_lock(&c->server->lock); /* after the call's: the order kept everywhere */
          silent_remove(c->server, c);
          pthread_mutex_unlock(&c->server->lock);
        }
        c->message = data;
        c->message_len = len;
        c->has_message = true;
      } else {
        c->recv_over = true;
        if (!c->finished) refuse(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory reading a message");
      }
      grpc_byte_buffer_destroy(c->recv_buffer);
      c->recv_buffer = NULL;
    } else {
      c->recv_over = true; /* the client half-closed, or the call is over */
      c->pending_half_close = c->mode == MODE_EVENTS;
    }
    break;
  case TAG_SEND:
    grpc_byte_buffer_destroy(c->send_buffer);
    c->send_buffer = NULL;
    c->sends_done++;
    if (!success) c->send_failed = true;
    pump_sends(c);
    if (c->want_drained && !c->send_buffer && !c->send_head) {
      c->want_drained = false;
      c->pending_drained = c->mode == MODE_EVENTS;
    }
    break;
  case TAG_FINISH:
    grpc_slice_unref(c->finish_details);
    if (c->finish_buffer) grpc_byte_buffer_destroy(c->finish_buffer);
    c->finish_buffer = NULL;
    break;
  case TAG_CLOSE:
    c->closed = true;
    c->pending_end = c->mode == MODE_EVENTS;
    break;
  default:
    break;
  }
  pthread_cond_broadcast(&c->cond);
  schedule(c);
  c->holds--;
  settle_unlock(c);
}

/* glibc keeps the heap pages that a burst of calls freed: after a flood of 20,000 onboarding
 * streams edgeprovd stayed at 335 MiB resident for good, 41 MiB of it in use (malloc_stats).
 * Once TRIM_CALLS fewer calls are open than the most since the last trim, and then for
 * TRIM_AFTER_MS (a burst's connections close after its calls), the free pages go back to the
 * system, at most every TRIM_MS (a trim took 30 ms with 300 MiB free, 1.5 ms with a few). */
#define TRIM_CALLS 1024 /* about 15 MiB of calls */
#define TRIM_MS 5000
#define TRIM_AFTER_MS 60000
static void give_back_memory(ep_rpc_server *server, long long now_ms) {
  pthread_mutex_lock(&server->lock);
  bool burst = server->active_peak - server->active >= TRIM_CALLS;
  bool trim = (burst || now_ms < server->trim_until_ms) && now_ms - server->trimmed_ms >= TRIM_MS;
  if (trim) {
    server->active_peak = server->active;
    server->trimmed_ms = now_ms;
    if (burst) server->trim_until_ms = now_ms + TRIM_AFTER_MS;
  }
  pthread_mutex_unlock(&server->lock);
  if (trim) malloc_trim(0);
}

/* Ends the event-driven calls whose first message has not come by their method's
 * first_message_ms, then gives memory back: at most every SCAN_MS, by one poller at a time. */
#define SCAN_MS 250
static void end_silent_calls(ep_rpc_server *server) {
  gpr_timespec now = gpr_now(GPR_CLOCK_MONOTONIC);
  long long now_ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
  if (now_ms - atomic_load(&server->scanned_ms) < SCAN_MS || atomic_exchange(&server->scanning, true)) return;
  atomic_store(&server->scanned_ms, now_ms);
  enum { BATCH = 256 };
  ep_rpc_call *late[BATCH];
  size_t count = 0;
  pthread_mutex_lock(&server->lock);
  /* A call in the list has not left the server, so taking a reference is safe (see
   * wake_live_calls); first_deadline is set before the call joins the list. */
  for (ep_rpc_call *c = server->live; c && count < BATCH; c = c->live_next) {
    if (!c->method->first_message_ms || atomic_load(&c->first_message) || gpr_time_cmp(now, c->first_deadline) < 0)
      continue;
    atomic_fetch_add(&c->refs, 1);
    late[count++] = c;
  }
  pthread_mutex_unlock(&server->lock);
  for (size_t i = 0; i < count; i++) {
    ep_rpc_call *c = late[i];
    pthread_mutex_lock(&c->lock);
    if (!c->finished && !atomic_load(&c->first_message)) {
      char message[128];
      snprintf(message, sizeof message, "no request within %d ms of the call; call again", c->method->first_message_ms);
      refuse(c, GRPC_STATUS_RESOURCE_EXHAUSTED, message);
    }
    pthread_mutex_unlock(&c->lock);
    ep_rpc_call_unref(c);
  }
  give_back_memory(server, now_ms);
  atomic_store(&server->scanning, false);
}

static void *poller_main(void *arg) {
  ep_rpc_server *server = arg;
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(
        server->cq, gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(SCAN_MS, GPR_TIMESPAN)), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
    end_silent_calls(server);
    if (ev.type != GRPC_OP_COMPLETE) continue;
    if (ev.tag == &server->shutdown_tag) {
      pthread_mutex_lock(&server->lock);
      server->shutdown_done = true;
      pthread_cond_broadcast(&server->cond);
      pthread_mutex_unlock(&server->lock);
      continue;
    }
    call_tag *tag = ev.tag;
    ep_rpc_call *c = tag->call;
    if (tag->kind != TAG_NEW) {
      complete(c, tag->kind, ev.success);
      continue;
    }
    if (!ev.success) { /* the server is shutting down: the slot was never filled */
      call_release(c);
      continue;
    }
    pthread_mutex_lock(&server->lock);
    bool stopping = server->stopping;
    pthread_mutex_unlock(&server->lock);
    if (!stopping) request_slot(server);
    accept_call(server, c);
    call_release(c); /* the slot's hold */
  }
  return NULL;
}

/* MODE_UNARY: runs the handler with the request (or answers that there was none). */
static void run_unary(ep_rpc_call *c, uint8_t *message, size_t len, bool has_message) {
  if (has_message)
    c->method->handler(c->method->data, c, message, len);
  else if (!ep_rpc_call_cancelled(c))
    ep_rpc_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "the call carried no request message", NULL, 0);
  free(message);
  pthread_mutex_lock(&c->lock);
  bool finished = c->finished;
  pthread_mutex_unlock(&c->lock);
  if (!finished) ep_rpc_call_finish(c, GRPC_STATUS_INTERNAL, "the handler gave no reply", NULL, 0);
}

/* Handles the events of c, one at a time and in order, until it has none. */
static void run_events(ep_rpc_call *c) {
  pthread_mutex_lock(&c->lock);
  c->queued = false;
  c->running = true;
  while (has_events(c)) {
    const ep_rpc_stream_ops *ops = c->method->stream;
    c->hold_sends = c->mode == MODE_EVENTS; /* see pump_sends */
    if (c->mode == MODE_UNARY) {
      uint8_t *message = c->message;
      size_t len = c->message_len;
      bool has_message = c->has_message;
      c->message = NULL;
      c->has_message = false;
      c->ended = true;
      pthread_mutex_unlock(&c->lock);
      run_unary(c, message, len, has_message);
      pthread_mutex_lock(&c->lock);
      c->holds--; /* the handler's: the call still holds its close batch */
    } else if (c->pending_open) {
      c->pending_open = false;
      pthread_mutex_unlock(&c->lock);
      void *state = ops->open(c->method->data, c);
      pthread_mutex_lock(&c->lock);
      c->state = state;
    } else if (c->has_message) {
      uint8_t *message = c->message;
      size_t len = c->message_len;
      c->message = NULL;
      c->has_message = false;
      pthread_mutex_unlock(&c->lock);
      ops->message(c->state, c, message, len);
      free(message);
      pthread_mutex_lock(&c->lock);
      if (c->method->kind == EP_RPC_BIDI_STREAMING) arm_recv(c);
    } else if (c->pending_drained) {
      c->pending_drained = false;
      pthread_mutex_unlock(&c->lock);
      if (ops->drained) ops->drained(c->state, c);
      pthread_mutex_lock(&c->lock);
    } else if (c->pending_wake) {
      c->pending_wake = false;
      pthread_mutex_unlock(&c->lock);
      if (ops->wake) ops->wake(c->state, c);
      pthread_mutex_lock(&c->lock);
    } else if (c->pending_half_close) {
      c->pending_half_close = false;
      if (ops->half_close && !c->closed && !c->finished) {
        pthread_mutex_unlock(&c->lock);
        ops->half_close(c->state, c);
        pthread_mutex_lock(&c->lock);
      }
    } else if (c->pending_end) {
      c->pending_end = false;
      c->ended = true;
      bool finished = c->finished;
      pthread_mutex_unlock(&c->lock);
      if (!finished) ep_rpc_call_finish(c, GRPC_STATUS_CANCELLED, "the call ended", NULL, 0);
      ops->close(c->state, c);
      pthread_mutex_lock(&c->lock);
      c->state = NULL;
      c->holds--; /* the handler's */
    } else {
      c->hold_sends = false;
      break;
    }
    c->hold_sends = false;
    pump_sends(c);
  }
  c->running = false;
  schedule(c);
  settle_unlock(c);
}

/* Runs calls with events until the server stops and the run queue is empty. */
static void *worker_main(void *arg) {
  ep_rpc_server *server = arg;
  pthread_mutex_lock(&server->lock);
  for (;;) {
    while (!server->run_head && !(server->stopping && server->active == 0))
      pthread_cond_wait(&server->work_cond, &server->lock);
    ep_rpc_call *c = server->run_head;
    if (!c) break;
    server->run_head = c->next;
    if (!server->run_head) server->run_tail = NULL;
    pthread_mutex_unlock(&server->lock);
    run_events(c);
    pthread_mutex_lock(&server->lock);
  }
  pthread_mutex_unlock(&server->lock);
  return NULL;
}

int ep_rpc_server_start(ep_rpc_server *server) {
  grpc_server_start(server->grpc);
  server->started = true;
  for (int i = 0; i < EP_RPC_SLOTS; i++)
    if (request_slot(server) < 0) return ep_error_set(EP_EIO, "cannot wait for calls");
  for (; server->worker_count < server->options.workers; server->worker_count++)
    if (pthread_create(&server->workers[server->worker_count], NULL, worker_main, server) != 0) break;
  for (; server->poller_count < EP_RPC_POLLERS; server->poller_count++)
    if (pthread_create(&server->pollers[server->poller_count], NULL, poller_main, server) != 0) break;
  if (server->worker_count == 0 || server->poller_count == 0)
    return ep_error_set(EP_ENOMEM, "cannot start the server's threads");
  return 0;
}

static void wait_until(ep_rpc_server *server, bool (*done)(const ep_rpc_server *), int timeout_ms) {
  struct timespec deadline = ep_clock_deadline(CLOCK_REALTIME, timeout_ms); /* server->cond's clock */
  pthread_mutex_lock(&server->lock);
  while (!done(server)) {
    if (timeout_ms < 0)
      pthread_cond_wait(&server->cond, &server->lock);
    else if (pthread_cond_timedwait(&server->cond, &server->lock, &deadline) == ETIMEDOUT)
      break;
  }
  pthread_mutex_unlock(&server->lock);
}

static bool is_shut_down(const ep_rpc_server *server) { return server->shutdown_done; }
static bool is_idle(const ep_rpc_server *server) { return server->active == 0 && server->threads == 0; }

/* Wakes every event-driven call, once the server is stopping: handlers that see
 * ep_rpc_call_cancelled end their streams in the grace period instead of being cancelled. */
static void wake_live_calls(ep_rpc_server *server) {
  size_t count = 0, i = 0;
  pthread_mutex_lock(&server->lock);
  for (ep_rpc_call *c = server->live; c; c = c->live_next) count++;
  ep_rpc_call **calls = count ? malloc(count * sizeof *calls) : NULL;
  /* A call still in the list has not left the server (call_over holds a reference while it
   * does), so it cannot be freed before this reference is taken. */
  for (ep_rpc_call *c = server->live; calls && c; c = c->live_next) {
    atomic_fetch_add(&c->refs, 1);
    calls[i++] = c;
  }
  pthread_mutex_unlock(&server->lock);
  for (size_t k = 0; k < i; k++) {
    ep_rpc_call_wake(calls[k]);
    ep_rpc_call_unref(calls[k]);
  }
  free(calls);
}

void ep_rpc_server_free(ep_rpc_server *server, int grace_ms) {
  if (!server) return;
  pthread_mutex_lock(&server->lock);
  server->stopping = true;
  pthread_mutex_unlock(&server->lock);
  if (server->started) {
    grpc_server_shutdown_and_notify(server->grpc, server->cq, &server->shutdown_tag);
    wake_live_calls(server);
    wait_until(server, is_shut_down, grace_ms);
    grpc_server_cancel_all_calls(server->grpc);
    wait_until(server, is_shut_down, -1);
    wait_until(server, is_idle, -1);
  }
  pthread_mutex_lock(&server->lock);
  pthread_cond_broadcast(&server->work_cond);
  pthread_mutex_unlock(&server->lock);
  for (int i = 0; i < server->worker_count; i++) pthread_join(server->workers[i], NULL);
  grpc_server_destroy(server->grpc);
  grpc_completion_queue_shutdown(server->cq);
  if (server->poller_count > 0) {
    for (int i = 0; i < server->poller_count; i++) pthread_join(server->pollers[i], NULL);
  } else {
    while (grpc_completion_queue_next(server->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN) {
    }
  }
  grpc_completion_queue_destroy(server->cq);
  if (server->quota) grpc_resource_quota_unref(server->quota);
  free(server->workers);
  for (size_t i = 0; i < server->method_count; i++) free((char *)server->methods[i].path);
  free(server->methods);
  pthread_cond_destroy(&server->cond);
  pthread_cond_destroy(&server->work_cond);
  pthread_mutex_destroy(&server->lock);
  free(server);
  grpc_shutdown();
}

bool ep_rpc_call_cancelled(ep_rpc_call *c) {
  pthread_mutex_lock(&c->lock);
  bool over = c->closed && (c->close_cancelled || !c->finished);
  pthread_mutex_unlock(&c->lock);
  pthread_mutex_lock(&c->server->lock);
  bool stopping = c->server->stopping;
  pthread_mutex_unlock(&c->server->lock);
  return over || stopping;
}

int ep_rpc_call_recv(ep_rpc_call *c, uint8_t **ret_data, size_t *ret_len) {
  pthread_mutex_lock(&c->lock);
  /* A finished call arms no more reads: nothing would end the wait. */
  while (!c->has_message && !c->recv_over && (c->recv_armed || !c->finished)) pthread_cond_wait(&c->cond, &c->lock);
  int r = 0;
  if (c->has_message) {
    *ret_data = c->message;
    *ret_len = c->message_len;
    c->message = NULL;
    c->has_message = false;
    if (c->method->kind == EP_RPC_BIDI_STREAMING) arm_recv(c);
    r = 1;
  }
  pthread_mutex_unlock(&c->lock);
  return r;
}

/* Messages (and their bytes) that wait for one in flight: a message held back while the
 * handler runs (pump_sends) counts as the one in flight it would have been. Call's lock held. */
static size_t sends_waiting(const ep_rpc_call *c, size_t *ret_bytes) {
  bool held = c->hold_sends && !c->send_buffer && c->send_head;
  *ret_bytes = c->send_queued_bytes - (held ? c->send_head->len : 0);
  return c->send_queued - (held ? 1 : 0);
}

int ep_rpc_call_send(ep_rpc_call *c, const uint8_t *data, size_t len) {
  pthread_mutex_lock(&c->lock);
  int r = 0;
  size_t waiting_bytes = 0, waiting = sends_waiting(c, &waiting_bytes);
  if (c->finished || c->closed || c->send_failed) {
    r = EP_ECANCELED;
  } else if (c->mode != MODE_THREAD && (waiting >= EP_RPC_SEND_QUEUE_MAX || waiting_bytes + len > EP_RPC_SEND_QUEUE_BYTES)) {
    r = ep_error_set(EP_ENOMEM, "the client reads too slowly: %zu messages wait to be sent", waiting);
  } else {
    queued_send *q = malloc(sizeof *q + (len ? len : 1));
    if (!q) {
      r = ep_error_set(EP_ENOMEM, "out of memory");
    } else {
      q->next = NULL;
      q->len = len;
      if (len) memcpy(q->data, data, len);
      if (c->send_tail)
        c->send_tail->next = q;
      else
        c->send_head = q;
      c->send_tail = q;
      c->send_queued++;
      c->send_queued_bytes += len;
      uint64_t mine = ++c->sends_started;
      pump_sends(c);
      if (c->mode == MODE_THREAD) {
        /* A blocking handler waits for its message to be taken: a slow client slows down its
         * own handler, and nothing queues. */
        while (c->sends_done < mine) pthread_cond_wait(&c->cond, &c->lock);
        if (c->send_failed) r = EP_ECANCELED;
      }
    }
  }
  pthread_mutex_unlock(&c->lock);
  return r;
}

int ep_rpc_call_finish(ep_rpc_call *c, int status, const char *message, const uint8_t *data, size_t len) {
  pthread_mutex_lock(&c->lock);
  if (c->finished) {
    pthread_mutex_unlock(&c->lock);
    return EP_ECANCELED;
  }
  c->finished = true;
  c->finish_status = status;
  c->finish_message = strdup(message ? message : "");
  if (status == 0 && data && (c->finish_data = malloc(len ? len : 1))) {
    if (len) memcpy(c->finish_data, data, len);
    c->finish_len = len;
  }
  start_finish(c);
  bool closed = c->closed;
  pthread_mutex_unlock(&c->lock);
  return closed ? EP_ECANCELED : 0;
}

bool ep_rpc_call_send_room(ep_rpc_call *c) {
  pthread_mutex_lock(&c->lock);
  size_t waiting_bytes = 0, waiting = sends_waiting(c, &waiting_bytes);
  bool room = waiting <= EP_RPC_SEND_QUEUE_MAX / 2 && waiting_bytes < EP_RPC_SEND_QUEUE_BYTES / 2;
  if (!room) c->want_drained = true;
  pthread_mutex_unlock(&c->lock);
  return room;
}

void ep_rpc_call_wake(ep_rpc_call *c) {
  pthread_mutex_lock(&c->lock);
  if (c->mode == MODE_EVENTS && !c->ended) {
    c->pending_wake = true;
    schedule(c);
  }
  pthread_mutex_unlock(&c->lock);
}

void ep_rpc_call_ref(ep_rpc_call *c) {
  pthread_mutex_lock(&c->lock);
  atomic_fetch_add(&c->refs, 1);
  pthread_mutex_unlock(&c->lock);
}

void ep_rpc_call_unref(ep_rpc_call *c) {
  if (!c) return;
  pthread_mutex_lock(&c->lock);
  atomic_fetch_sub(&c->refs, 1);
  settle_unlock(c);
}

int ep_rpc_call_metadata(const ep_rpc_call *c, const char *key, char *buf, size_t len) {
  for (size_t i = 0; i < c->metadata.count; i++) {
    const grpc_metadata *m = &c->metadata.metadata[i];
    if (grpc_slice_str_cmp(m->key, key) != 0) continue;
    size_t n = GRPC_SLICE_LENGTH(m->value);
    if (n + 1 > len || n > EP_RPC_METADATA_VALUE_MAX) return -1;
    memcpy(buf, GRPC_SLICE_START_PTR(m->value), n);
    buf[n] = '\0';
    return (int)n;
  }
  return -1;
}

bool ep_rpc_call_bearer_matches(const ep_rpc_call *c, const char *token) {
  char value[EP_RPC_METADATA_VALUE_MAX + 1];
  bool ok = token && ep_rpc_call_metadata(c, "authorization", value, sizeof value) > 7 &&
            strncmp(value, "Bearer ", 7) == 0 && ep_secret_equal(value + 7, token);
  explicit_bzero(value, sizeof value);
  return ok;
}

const char *ep_rpc_call_method(const ep_rpc_call *c) { return c->path; }

int ep_rpc_call_peer_ip(const ep_rpc_call *c, char *buf, size_t len) {
  /* gRPC core names the peer "ipv4:1.2.3.4:port", "ipv6:[::1]:port" or "unix:path". */
  char *peer = c->grpc ? grpc_call_get_peer(c->grpc) : NULL;
  const char *host = NULL, *end = NULL;
  if (peer && strncmp(peer, "ipv4:", 5) == 0) {
    host = peer + 5;
    end = strrchr(host, ':');
  } else if (peer && strncmp(peer, "ipv6:[", 6) == 0) {
    host = peer + 6;
    end = strchr(host, ']');
  }
  int n = -1;
  if (host && end && end > host && (size_t)(end - host) < len) {
    n = (int)(end - host);
    memcpy(buf, host, (size_t)n);
    buf[n] = '\0';
  }
  gpr_free(peer);
  return n;
}

/* ---- client -------------------------------------------------------------------------------- */

struct ep_rpc_channel {
  grpc_channel *grpc;
};

/* A source address is bound by a socket mutator: gRPC core calls it on each client socket
 * between socket() and connect(). Its type is gRPC's own (src/core/lib/iomgr/socket_mutator.h
 * in 1.51, a header Debian does not install; grpc_types.h declares the struct only), so its
 * layout is written out here: a vtable pointer and a reference count that gRPC core takes and
 * drops itself (gpr_ref/gpr_unref), calling destroy at zero. An upgrade checks this struct. */
typedef struct {
  bool (*mutate_fd)(int fd, grpc_socket_mutator *mutator);
  int (*compare)(grpc_socket_mutator *a, grpc_socket_mutator *b);
  void (*destroy)(grpc_socket_mutator *mutator);
  bool (*mutate_fd_2)(const void *info, grpc_socket_mutator *mutator); /* NULL: mutate_fd for client sockets */
} socket_mutator_vtable;

struct grpc_socket_mutator {
  const socket_mutator_vtable *vtable;
  gpr_refcount refcount;
  /* ours, after gRPC's part */
  struct sockaddr_in6 source; /* IPv6, or an IPv4 address mapped (::ffff:a.b.c.d) */
  bool ipv4;
};

static bool bind_source(int fd, grpc_socket_mutator *m) {
  int domain = 0;
  socklen_t size = sizeof domain;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &size) < 0) return false;
  /* The port is picked at connect(), per destination, not at bind(): a source address then
   * serves as many connections as the ephemeral range allows to each server. */
  int on = 1;
  setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof on);
  if (domain == AF_INET6) return bind(fd, (const struct sockaddr *)&m->source, sizeof m->source) == 0;
  if (domain != AF_INET || !m->ipv4) return false;
  struct sockaddr_in in = {.sin_family = AF_INET};
  memcpy(&in.sin_addr, &m->source.sin6_addr.s6_addr[12], 4);
  return bind(fd, (const struct sockaddr *)&in, sizeof in) == 0;
}

static int compare_sources(grpc_socket_mutator *a, grpc_socket_mutator *b) {
  return memcmp(&a->source.sin6_addr, &b->source.sin6_addr, sizeof a->source.sin6_addr);
}

static void free_mutator(grpc_socket_mutator *m) { free(m); }

static const socket_mutator_vtable source_vtable = {bind_source, compare_sources, free_mutator, NULL};

/* The channel argument that carries the mutator: copies share it by reference. */
static void *mutator_arg_copy(void *p) {
  gpr_ref(&((grpc_socket_mutator *)p)->refcount);
  return p;
}

static void mutator_arg_destroy(void *p) {
  grpc_socket_mutator *m = p;
  if (gpr_unref(&m->refcount)) m->vtable->destroy(m);
}

static int mutator_arg_cmp(void *a, void *b) {
  grpc_socket_mutator *x = a, *y = b;
  if (x == y) return 0;
  if (x->vtable != y->vtable) return x->vtable < y->vtable ? -1 : 1;
  return x->vtable->compare(x, y);
}

static const grpc_arg_pointer_vtable mutator_arg_vtable = {mutator_arg_copy, mutator_arg_destroy, mutator_arg_cmp};

/* A mutator that binds address (IPv4 or IPv6 text), with one reference; EP_EINVAL when address
 * is not an IP address. */
static int source_mutator_new(grpc_socket_mutator **out, const char *address) {
  struct in_addr v4;
  struct sockaddr_in6 source = {.sin6_family = AF_INET6};
  bool ipv4 = inet_pton(AF_INET, address, &v4) == 1;
  if (ipv4) {
    source.sin6_addr.s6_addr[10] = source.sin6_addr.s6_addr[11] = 0xff;
    memcpy(&source.sin6_addr.s6_addr[12], &v4, 4);
  } else if (inet_pton(AF_INET6, address, &source.sin6_addr) != 1) {
    return ep_error_set(EP_EINVAL, "source_address: '%.64s' is not an IP address", address);
  }
  grpc_socket_mutator *m = calloc(1, sizeof *m);
  if (!m) return ep_error_set(EP_ENOMEM, "out of memory");
  m->vtable = &source_vtable;
  gpr_ref_init(&m->refcount, 1);
  m->source = source;
  m->ipv4 = ipv4;
  *out = m;
  return 0;
}

int ep_rpc_channel_new(ep_rpc_channel **out, const char *target, const ep_rpc_tls *tls, size_t max_message) {
  ep_rpc_channel_options options = {.max_message = max_message};
  return ep_rpc_channel_new_with(out, target, tls, &options);
}

int ep_rpc_channel_new_with(ep_rpc_channel **out, const char *target, const ep_rpc_tls *tls,
                            const ep_rpc_channel_options *options) {
  static const ep_rpc_channel_options no_options;
  if (!options) options = &no_options;
  size_t max_message = options->max_message;
  grpc_socket_mutator *mutator = NULL;
  if (options->source_address) {
    int r = source_mutator_new(&mutator, options->source_address);
    if (r < 0) return r;
  }
  ep_rpc_channel *channel = calloc(1, sizeof *channel);
  if (!channel) {
    if (mutator) mutator_arg_destroy(mutator);
    return ep_error_set(EP_ENOMEM, "out of memory");
  }
  rpc_init();
  /* Reconnect within a second of a server coming back (gRPC's default backoff grows to
   * two minutes, far too slow for a restarted daemon): initial and maximum backoff. The
   * "minimum reconnect backoff" is not a backoff in gRPC core: it is the time one connection
   * attempt (TCP, TLS and HTTP/2 handshakes) may take, 20 s by default; at 100 ms a node on a
   * slow link (or under emulation) had its first attempts cut short ("Handshake read failed")
   * and its first calls failed UNAVAILABLE. */
  grpc_arg args[7] = {
      {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
       .value.integer = (int)(max_message ? max_message : EP_RPC_MESSAGE_MAX_DEFAULT)},
      {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, .value.integer = 100},
      {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, .value.integer = 20000},
      {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, .value.integer = 1000},
  };
  size_t n = 4;
  if (tls && tls->target_name)
    args[n++] = (grpc_arg){.type = GRPC_ARG_STRING, .key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
                           .value.string = (char *)tls->target_name};
  if (mutator)
    args[n++] = (grpc_arg){.type = GRPC_ARG_POINTER, .key = GRPC_ARG_SOCKET_MUTATOR,
                           .value.pointer = {.p = mutator, .vtable = &mutator_arg_vtable}};
  /* Channels with equal arguments otherwise share gRPC's global subchannel pool, and with it
   * one connection. */
  if (options->own_connection)
    args[n++] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, .value.integer = 1};
  grpc_channel_args channel_args = {.num_args = n, .args = args};
  grpc_channel_credentials *creds;
  if (tls) {
    grpc_ssl_pem_key_cert_pair pair = {.private_key = tls->key_pem, .cert_chain = tls->cert_pem};
    creds = grpc_ssl_credentials_create(tls->ca_pem, tls->cert_pem && tls->key_pem ? &pair : NULL, NULL, NULL);
  } else {
    creds = grpc_insecure_credentials_create();
  }
  channel->grpc = creds ? grpc_channel_create(target, creds, &channel_args) : NULL;
  if (creds) grpc_channel_credentials_release(creds);
  if (mutator) mutator_arg_destroy(mutator); /* the channel holds its own references */
  if (!channel->grpc) {
    free(channel);
    grpc_shutdown();
    return ep_error_set(EP_EINVAL, "cannot open a channel to %s", target);
  }
  *out = channel;
  return 0;
}

void ep_rpc_channel_free(ep_rpc_channel *channel) {
  if (!channel) return;
  grpc_channel_destroy(channel->grpc);
  free(channel);
  grpc_shutdown();
}

int ep_rpc_channel_connect(ep_rpc_channel *channel, int timeout_ms) {
  grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
  gpr_timespec deadline = deadline_in(timeout_ms);
  char tag;
  int r = 0;
  /* try_to_connect also moves an idle channel, and one waiting out a reconnect backoff, on. */
  for (grpc_connectivity_state state; (state = grpc_channel_check_connectivity_state(channel->grpc, 1)) != GRPC_CHANNEL_READY;) {
    if (state == GRPC_CHANNEL_SHUTDOWN) {
      r = ep_error_set(EP_EIO, "the channel is shut down");
      break;
    }
    grpc_channel_watch_connectivity_state(channel->grpc, state, deadline, cq, &tag);
    grpc_event ev = grpc_completion_queue_pluck(cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (!ev.success) { /* the deadline passed first */
      r = ep_error_set(EP_ETIMEDOUT, "not connected within %d ms", timeout_ms);
      break;
    }
  }
  destroy_cq(cq);
  return r;
}

void ep_rpc_result_clear(ep_rpc_result *result) {
  free(result->data);
  memset(result, 0, sizeof *result);
}

/* A client call in progress with its queue and metadata. */
typedef struct client_call {
  grpc_call *grpc;
  grpc_channel *channel; /* the call's: asked whether an UNAVAILABLE came from the server */
  grpc_completion_queue *cq;
  grpc_metadata *metadata;
  size_t metadata_count;
  grpc_metadata_array initial;
  grpc_metadata_array trailing;
  grpc_status_code status;
  grpc_slice details;
  char tag;      /* receiving batches */
  char send_tag; /* sending batches, which may run beside a receive */
} client_call;

static int client_call_start(client_call *cc, ep_rpc_channel *channel, const char *path, const ep_rpc_metadata *metadata,
                             size_t metadata_count, int timeout_ms) {
  memset(cc, 0, sizeof *cc);
  cc->channel = channel->grpc;
  cc->cq = grpc_completion_queue_create_for_pluck(NULL);
  grpc_slice method = grpc_slice_from_copied_string(path);
  cc->grpc = grpc_channel_create_call(channel->grpc, NULL, GRPC_PROPAGATE_DEFAULTS, cc->cq, method, NULL,
                                      deadline_in(timeout_ms), NULL);
  grpc_slice_unref(method);
  grpc_metadata_array_init(&cc->initial);
  grpc_metadata_array_init(&cc->trailing);
  cc->details = grpc_empty_slice();
  if (!cc->grpc) return ep_error_set(EP_EIO, "cannot start a call of %s", path);
  if (metadata_count) {
    cc->metadata = calloc(metadata_count, sizeof *cc->metadata);
    if (!cc->metadata) return ep_error_set(EP_ENOMEM, "out of memory");
    for (size_t i = 0; i < metadata_count; i++) {
      cc->metadata[i].key = grpc_slice_from_copied_string(metadata[i].key);
      cc->metadata[i].value = grpc_slice_from_copied_string(metadata[i].value);
    }
    cc->metadata_count = metadata_count;
  }
  return 0;
}

static void client_call_end(client_call *cc, ep_rpc_result *out) {
  if (out) {
    out->status = cc->status;
    copy_slice(out->message, sizeof out->message, cc->details);
    /* gRPC gives UNAVAILABLE both for "no connection" and for a server that answered so (a
     * replica whose database is down): only with a connection up did the server answer. */
    out->unreachable = cc->status == GRPC_STATUS_UNAVAILABLE && cc->channel &&
                       grpc_channel_check_connectivity_state(cc->channel, 0) != GRPC_CHANNEL_READY;
  }
  for (size_t i = 0; i < cc->metadata_count; i++) {
    grpc_slice_unref(cc->metadata[i].key);
    grpc_slice_unref(cc->metadata[i].value);
  }
  free(cc->metadata);
  grpc_slice_unref(cc->details);
  grpc_metadata_array_destroy(&cc->initial);
  grpc_metadata_array_destroy(&cc->trailing);
  if (cc->grpc) grpc_call_unref(cc->grpc);
  destroy_cq(cc->cq);
}

int ep_rpc_unary(ep_rpc_channel *channel, const char *path, const ep_rpc_metadata *metadata, size_t metadata_count,
                 const uint8_t *request, size_t len, int timeout_ms, ep_rpc_result *out) {
  memset(out, 0, sizeof *out);
  client_call cc;
  int r = client_call_start(&cc, channel, path, metadata, metadata_count, timeout_ms);
  if (r < 0) {
    client_call_end(&cc, NULL);
    return r;
  }
  grpc_byte_buffer *send = bytes_to_buffer(request, len);
  grpc_byte_buffer *reply = NULL;
  grpc_op ops[6];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = cc.metadata_count;
  ops[0].data.send_initial_metadata.metadata = cc.metadata;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = send;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &cc.initial;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &reply;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &cc.trailing;
  ops[5].data.recv_status_on_client.status = &cc.status;
  ops[5].data.recv_status_on_client.status_details = &cc.details;
  if (grpc_call_start_batch(cc.grpc, ops, 6, &cc.tag, NULL) != GRPC_CALL_OK) {
    r = ep_error_set(EP_EIO, "cannot start a call of %s", path);
  } else {
    grpc_completion_queue_pluck(cc.cq, &cc.tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (reply && cc.status == GRPC_STATUS_OK) r = buffer_to_bytes(reply, &out->data, &out->len);
  }
  grpc_byte_buffer_destroy(send);
  if (reply) grpc_byte_buffer_destroy(reply);
  client_call_end(&cc, r == 0 ? out : NULL);
  return r;
}

struct ep_rpc_stream {
  client_call cc;
  bool ended;
  bool initial_received;
};

int ep_rpc_stream_open(ep_rpc_stream **out, ep_rpc_channel *channel, const char *path, const ep_rpc_metadata *metadata,
                       size_t metadata_count, const uint8_t *request, size_t len, int timeout_ms) {
  ep_rpc_stream *s = calloc(1, sizeof *s);
  if (!s) return ep_error_set(EP_ENOMEM, "out of memory");
  int r = client_call_start(&s->cc, channel, path, metadata, metadata_count, timeout_ms);
  if (r < 0) {
    client_call_end(&s->cc, NULL);
    free(s);
    return r;
  }
  grpc_op ops[3];
  size_t n = 0;
  memset(ops, 0, sizeof ops);
  ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[n].data.send_initial_metadata.count = s->cc.metadata_count;
  ops[n++].data.send_initial_metadata.metadata = s->cc.metadata;
  grpc_byte_buffer *send = request ? bytes_to_buffer(request, len) : NULL;
  if (send) {
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = send;
    ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  }
  /* A failed batch means the call already ended; read then reports the end and close the
   * status. */
  if (!run_batch(s->cc.grpc, s->cc.cq, ops, n, &s->cc.send_tag)) s->ended = true;
  if (send) grpc_byte_buffer_destroy(send);
  *out = s;
  return 0;
}

int ep_rpc_stream_send(ep_rpc_stream *s, const uint8_t *data, size_t len) {
  grpc_byte_buffer *buffer = bytes_to_buffer(data, len);
  grpc_op op = {.op = GRPC_OP_SEND_MESSAGE};
  op.data.send_message.send_message = buffer;
  int ok = run_batch(s->cc.grpc, s->cc.cq, &op, 1, &s->cc.send_tag);
  grpc_byte_buffer_destroy(buffer);
  return ok ? 0 : EP_ECANCELED;
}

int ep_rpc_stream_half_close(ep_rpc_stream *s) {
  grpc_op op = {.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT};
  return run_batch(s->cc.grpc, s->cc.cq, &op, 1, &s->cc.send_tag) ? 0 : EP_ECANCELED;
}

int ep_rpc_stream_read(ep_rpc_stream *s, uint8_t **ret_data, size_t *ret_len) {
  if (s->ended) return 0;
  grpc_byte_buffer *message = NULL;
  grpc_op ops[2];
  size_t n = 0;
  memset(ops, 0, sizeof ops);
  if (!s->initial_received) {
    ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[n++].data.recv_initial_metadata.recv_initial_metadata = &s->cc.initial;
    s->initial_received = true;
  }
  ops[n].op = GRPC_OP_RECV_MESSAGE;
  ops[n++].data.recv_message.recv_message = &message;
  if (!run_batch(s->cc.grpc, s->cc.cq, ops, n, &s->cc.tag) || !message) {
    s->ended = true;
    return 0;
  }
  int r = buffer_to_bytes(message, ret_data, ret_len);
  grpc_byte_buffer_destroy(message);
  return r < 0 ? r : 1;
}

void ep_rpc_stream_close(ep_rpc_stream *s, ep_rpc_result *out) {
  if (!s) return;
  if (out) memset(out, 0, sizeof *out);
  if (!s->ended) grpc_call_cancel(s->cc.grpc, NULL); /* the caller stops reading early */
  if (!s->initial_received) { /* status must not be asked before the initial metadata */
    grpc_op initial = {.op = GRPC_OP_RECV_INITIAL_METADATA};
    initial.data.recv_initial_metadata.recv_initial_metadata = &s->cc.initial;
    run_batch(s->cc.grpc, s->cc.cq, &initial, 1, &s->cc.tag);
  }
  grpc_op op = {.op = GRPC_OP_RECV_STATUS_ON_CLIENT};
  op.data.recv_status_on_client.trailing_metadata = &s->cc.trailing;
  op.data.recv_status_on_client.status = &s->cc.status;
  op.data.recv_status_on_client.status_details = &s->cc.details;
  run_batch(s->cc.grpc, s->cc.cq, &op, 1, &s->cc.tag);
  client_call_end(&s->cc, out);
  free(s);
}
