/* Unit tests of core/lib/net/rpc.c's event-driven streams (ep_rpc_stream_ops): a real gRPC server
 * and client on loopback. Events arrive in order and one at a time, wakes come from other
 * threads, a waiting stream holds no thread, the send queue is bounded, and close runs exactly
 * once however the call ends. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/error.h"
#include "net/rpc.h"
#include "testutil.h"

#define ECHO "/test.Events/Echo"
#define WAIT "/test.Events/Wait"
#define FLOOD "/test.Events/Flood"
#define HELLO "/test.Events/Hello" /* echo, but a call must send its first message within 10 s */
#define ANSWER "/test.Events/Answer" /* answers each message and ends the call in the same event */
#define BURST "/test.Events/Burst"   /* sends small messages in one event until refused */
#define WAITERS_MAX 512

typedef struct fixture {
  ep_rpc_server *server;
  ep_rpc_channel *channel;
  char target[64];
  atomic_int opened, closed, half_closed, overlap, flood_refused;
  atomic_int burst_taken; /* messages a Burst event sent before the refusal, -1 while none ran */
  pthread_mutex_t lock;
  ep_rpc_call *waiters[WAITERS_MAX]; /* referenced in open, released in close */
  int waiter_count;
} fixture;

typedef struct stream_state {
  fixture *f;
  int messages;
  atomic_int running; /* events of this call running now */
} stream_state;

/* Marks an event of the call running; two at once for one call would be a bug (counted in
 * overlap). Different calls do run at once. */
static void enter(stream_state *st) {
  if (atomic_fetch_add(&st->running, 1) != 0) atomic_fetch_add(&st->f->overlap, 1);
}
static void leave(stream_state *st) { atomic_fetch_sub(&st->running, 1); }

static void *echo_open(void *data, ep_rpc_call *call) {
  (void)call;
  fixture *f = data;
  atomic_fetch_add(&f->opened, 1);
  stream_state *st = calloc(1, sizeof *st);
  st->f = f;
  return st;
}

/* Echo: each message back in upper case; the client's half-close ends the call with a count. */
static void echo_message(void *state, ep_rpc_call *call, const uint8_t *message, size_t len) {
  stream_state *st = state;
  enter(st);
  char reply[64];
  size_t n = len < sizeof reply ? len : sizeof reply;
  for (size_t i = 0; i < n; i++) reply[i] = (char)(message[i] >= 'a' && message[i] <= 'z' ? message[i] - 32 : message[i]);
  st->messages++;
  usleep(2000); /* long enough for a second event to overlap, were events not serialised */
  assert_int_equal(ep_rpc_call_send(call, (const uint8_t *)reply, n), 0);
  leave(st);
}

static void echo_half_close(void *state, ep_rpc_call *call) {
  stream_state *st = state;
  atomic_fetch_add(&st->f->half_closed, 1);
  char status[32];
  snprintf(status, sizeof status, "%d messages", st->messages);
  ep_rpc_call_finish(call, 0, status, NULL, 0);
}

static void echo_close(void *state, ep_rpc_call *call) {
  (void)call;
  stream_state *st = state;
  atomic_fetch_add(&st->f->closed, 1);
  free(st);
}

/* Wait: the call waits for a wake from a test thread, then sends "woken". */
static void *wait_open(void *data, ep_rpc_call *call) {
  fixture *f = data;
  stream_state *st = echo_open(data, call);
  pthread_mutex_lock(&f->lock);
  if (f->waiter_count < WAITERS_MAX) {
    ep_rpc_call_ref(call);
    f->waiters[f->waiter_count++] = call;
  }
  pthread_mutex_unlock(&f->lock);
  return st;
}

static void wait_message(void *state, ep_rpc_call *call, const uint8_t *message, size_t len) {
  (void)state, (void)call, (void)message, (void)len;
}

static void wait_wake(void *state, ep_rpc_call *call) {
  stream_state *st = state;
  enter(st);
  ep_rpc_call_send(call, (const uint8_t *)"woken", 5);
  leave(st);
}

/* Flood: sends 1 MiB messages without waiting for the client to read, until refused. */
static void flood_message(void *state, ep_rpc_call *call, const uint8_t *message, size_t len) {
  (void)message, (void)len;
  stream_state *st = state;
  uint8_t *block = calloc(1, 1 << 20);
  int r = 0;
  for (int i = 0; i < 64 && r == 0; i++) r = ep_rpc_call_send(call, block, 1 << 20);
  free(block);
  if (r == EP_ENOMEM) atomic_fetch_add(&st->f->flood_refused, 1);
  ep_rpc_call_finish(call, 8 /* RESOURCE_EXHAUSTED */, ep_error_message(), NULL, 0);
}

/* Answer: "answer" back, then the status the message names ("ok" or anything else: 9,
 * FAILED_PRECONDITION), both from the one event, as the onboarding service answers a node. */
static void answer_message(void *state, ep_rpc_call *call, const uint8_t *message, size_t len) {
  (void)state;
  bool ok = len == 2 && memcmp(message, "ok", 2) == 0;
  assert_int_equal(ep_rpc_call_send(call, (const uint8_t *)"answer", 6), 0);
  ep_rpc_call_finish(call, ok ? 0 : 9, ok ? "" : "ended", NULL, 0);
}

/* Burst: small messages in one event until the send queue refuses one, then the call ends. */
static void burst_message(void *state, ep_rpc_call *call, const uint8_t *message, size_t len) {
  (void)message, (void)len;
  stream_state *st = state;
  int taken = 0;
  while (taken < 1000 && ep_rpc_call_send(call, (const uint8_t *)"x", 1) == 0) taken++;
  atomic_store(&st->f->burst_taken, taken);
  ep_rpc_call_finish(call, 0, "", NULL, 0);
}

static const ep_rpc_stream_ops answer_ops = {.open = echo_open, .message = answer_message, .close = echo_close};
static const ep_rpc_stream_ops burst_ops = {.open = echo_open, .message = burst_message, .close = echo_close};

static const ep_rpc_stream_ops echo_ops = {
    .open = echo_open, .message = echo_message, .half_close = echo_half_close, .close = echo_close};
static const ep_rpc_stream_ops wait_ops = {
    .open = wait_open, .message = wait_message, .wake = wait_wake, .close = echo_close};
static const ep_rpc_stream_ops flood_ops = {.open = echo_open, .message = flood_message, .close = echo_close};

static int setup_with(void **state, const ep_rpc_server_options *options) {
  fixture *f = calloc(1, sizeof *f);
  pthread_mutex_init(&f->lock, NULL);
  *state = f;
  ep_rpc_method methods[] = {
      {.path = ECHO, .kind = EP_RPC_BIDI_STREAMING, .data = f, .stream = &echo_ops},
      {.path = WAIT, .kind = EP_RPC_BIDI_STREAMING, .data = f, .stream = &wait_ops},
      {.path = FLOOD, .kind = EP_RPC_BIDI_STREAMING, .data = f, .stream = &flood_ops},
      {.path = HELLO, .kind = EP_RPC_BIDI_STREAMING, .data = f, .stream = &echo_ops, .first_message_ms = 10000},
      {.path = ANSWER, .kind = EP_RPC_BIDI_STREAMING, .data = f, .stream = &answer_ops},
      {.path = BURST, .kind = EP_RPC_BIDI_STREAMING, .data = f, .stream = &burst_ops},
  };
  atomic_store(&f->burst_taken, -1);
  int port = 0;
  if (ep_rpc_server_new(&f->server, options) < 0) return -1;
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
    if (ep_rpc_server_add_method(f->server, &methods[i]) < 0) return -1;
  if (ep_rpc_server_listen(f->server, "127.0.0.1:0", NULL, &port) < 0 || ep_rpc_server_start(f->server) < 0) return -1;
  snprintf(f->target, sizeof f->target, "127.0.0.1:%d", port);
  return ep_rpc_channel_new(&f->channel, f->target, NULL, 4 << 20);
}

static int setup(void **state) { return setup_with(state, &(ep_rpc_server_options){.max_message = 4 << 20}); }

/* A server that takes CALLS_MAX calls at once. */
#define CALLS_MAX 4
static int setup_small(void **state) {
  return setup_with(state, &(ep_rpc_server_options){.max_message = 4 << 20, .calls_max = CALLS_MAX});
}

static void release_waiters(fixture *f) {
  pthread_mutex_lock(&f->lock);
  for (int i = 0; i < f->waiter_count; i++) ep_rpc_call_unref(f->waiters[i]);
  f->waiter_count = 0;
  pthread_mutex_unlock(&f->lock);
}

static int teardown(void **state) {
  fixture *f = *state;
  ep_rpc_channel_free(f->channel);
  ep_rpc_server_free(f->server, 1000);
  release_waiters(f); /* after the server: a reference keeps a call's memory past its end */
  assert_int_equal(atomic_load(&f->opened), atomic_load(&f->closed)); /* close ran once for each */
  assert_int_equal(atomic_load(&f->overlap), 0);
  pthread_mutex_destroy(&f->lock);
  free(f);
  return 0;
}

/* Waits up to 5 s for *counter to reach at least want. */
static void await(atomic_int *counter, int want) {
  for (int i = 0; i < 500 && atomic_load(counter) < want; i++) usleep(10000);
  assert_true(atomic_load(counter) >= want);
}

static int process_threads(void) {
  FILE *in = fopen("/proc/self/status", "r");
  char line[256];
  int threads = -1;
  while (in && fgets(line, sizeof line, in))
    if (sscanf(line, "Threads: %d", &threads) == 1) break;
  if (in) fclose(in);
  return threads;
}

static void read_text(ep_rpc_stream *s, const char *want) {
  uint8_t *data = NULL;
  size_t len = 0;
  assert_int_equal(ep_rpc_stream_read(s, &data, &len), 1);
  assert_int_equal(len, strlen(want));
  assert_memory_equal(data, want, len);
  free(data);
}

static void events_in_order_and_one_at_a_time(void **state) {
  fixture *f = *state;
  ep_rpc_stream *s = NULL;
  assert_int_equal(ep_rpc_stream_open(&s, f->channel, ECHO, NULL, 0, NULL, 0, 10000), 0);
  const char *words[] = {"alpha", "beta", "gamma", "delta"};
  for (int i = 0; i < 4; i++) assert_int_equal(ep_rpc_stream_send(s, (const uint8_t *)words[i], strlen(words[i])), 0);
  assert_int_equal(ep_rpc_stream_half_close(s), 0);
  const char *upper[] = {"ALPHA", "BETA", "GAMMA", "DELTA"};
  for (int i = 0; i < 4; i++) read_text(s, upper[i]);
  uint8_t *data = NULL;
  size_t len = 0;
  assert_int_equal(ep_rpc_stream_read(s, &data, &len), 0);
  ep_rpc_result result = {0};
  ep_rpc_stream_close(s, &result);
  assert_int_equal(result.status, 0);
  assert_string_equal(result.message, "4 messages");
  ep_rpc_result_clear(&result);
  await(&f->closed, 1);
  assert_int_equal(atomic_load(&f->half_closed), 1);
}

/* A few hundred streams waiting for a wake cost no thread each; each wake reaches its call. */
static void waiting_streams_hold_no_thread_and_wakes_arrive(void **state) {
  fixture *f = *state;
  enum { N = 300 };
  int before = process_threads();
  static ep_rpc_stream *streams[N];
  for (int i = 0; i < N; i++) {
    assert_int_equal(ep_rpc_stream_open(&streams[i], f->channel, WAIT, NULL, 0, NULL, 0, 20000), 0);
    assert_int_equal(ep_rpc_stream_send(streams[i], (const uint8_t *)"hi", 2), 0);
  }
  await(&f->opened, N);
  int during = process_threads();
  /* The former thread-per-stream server added N threads here. */
  if (during - before >= 30) fail_msg("%d threads before, %d with %d waiting streams", before, during, N);
  pthread_mutex_lock(&f->lock);
  int waiting = f->waiter_count;
  for (int i = 0; i < waiting; i++) ep_rpc_call_wake(f->waiters[i]);
  pthread_mutex_unlock(&f->lock);
  assert_int_equal(waiting, N);
  for (int i = 0; i < N; i++) read_text(streams[i], "woken");
  for (int i = 0; i < N; i++) ep_rpc_stream_close(streams[i], NULL); /* the client cancels each */
  await(&f->closed, N);
  /* A wake after the end is dropped, and the reference keeps the memory valid for it. */
  pthread_mutex_lock(&f->lock);
  for (int i = 0; i < f->waiter_count; i++) ep_rpc_call_wake(f->waiters[i]);
  pthread_mutex_unlock(&f->lock);
  release_waiters(f);
}

/* A client that does not read cannot make the server queue without bound. */
static void send_queue_is_bounded(void **state) {
  fixture *f = *state;
  ep_rpc_stream *s = NULL;
  assert_int_equal(ep_rpc_stream_open(&s, f->channel, FLOOD, NULL, 0, NULL, 0, 20000), 0);
  assert_int_equal(ep_rpc_stream_send(s, (const uint8_t *)"go", 2), 0);
  await(&f->flood_refused, 1);
  int received = 0;
  uint8_t *data = NULL;
  size_t len = 0;
  while (ep_rpc_stream_read(s, &data, &len) == 1) {
    received++;
    free(data);
  }
  ep_rpc_result result = {0};
  ep_rpc_stream_close(s, &result);
  assert_int_equal(result.status, 8);
  assert_non_null(strstr(result.message, "reads too slowly"));
  assert_true(received >= 1 && received < 64); /* what was queued before the refusal came out first */
  ep_rpc_result_clear(&result);
}

/* A message and the status one event gives after it arrive both, in order (they leave in one
 * batch), with an OK status and with an error alike. */
static void a_message_and_the_status_after_it_arrive_in_order(void **state) {
  fixture *f = *state;
  const char *asks[] = {"ok", "end"};
  for (size_t i = 0; i < 2; i++) {
    ep_rpc_stream *s = NULL;
    assert_int_equal(ep_rpc_stream_open(&s, f->channel, ANSWER, NULL, 0, NULL, 0, 10000), 0);
    assert_int_equal(ep_rpc_stream_send(s, (const uint8_t *)asks[i], strlen(asks[i])), 0);
    read_text(s, "answer");
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(ep_rpc_stream_read(s, &data, &len), 0);
    ep_rpc_result result = {0};
    ep_rpc_stream_close(s, &result);
    assert_int_equal(result.status, i == 0 ? 0 : 9);
    assert_string_equal(result.message, i == 0 ? "" : "ended");
    ep_rpc_result_clear(&result);
  }
}

/* The sends of one event wait until it returns; the first counts as the one in flight, so an
 * event may send EP_RPC_SEND_QUEUE_MAX + 1 messages before a refusal, every time. */
static void sends_of_one_event_are_bounded_as_one_in_flight_and_a_full_queue(void **state) {
  fixture *f = *state;
  ep_rpc_stream *s = NULL;
  assert_int_equal(ep_rpc_stream_open(&s, f->channel, BURST, NULL, 0, NULL, 0, 10000), 0);
  assert_int_equal(ep_rpc_stream_send(s, (const uint8_t *)"go", 2), 0);
  int received = 0;
  uint8_t *data = NULL;
  size_t len = 0;
  while (ep_rpc_stream_read(s, &data, &len) == 1) {
    received++;
    free(data);
  }
  ep_rpc_result result = {0};
  ep_rpc_stream_close(s, &result);
  assert_int_equal(result.status, 0);
  ep_rpc_result_clear(&result);
  assert_int_equal(atomic_load(&f->burst_taken), EP_RPC_SEND_QUEUE_MAX + 1);
  assert_int_equal(received, EP_RPC_SEND_QUEUE_MAX + 1);
}

/* Stopping the server with event-driven streams open ends each (close runs, see teardown). */
static void shutdown_with_waiting_streams(void **state) {
  fixture *f = *state;
  ep_rpc_stream *s[3];
  for (int i = 0; i < 3; i++) {
    assert_int_equal(ep_rpc_stream_open(&s[i], f->channel, WAIT, NULL, 0, NULL, 0, 20000), 0);
    assert_int_equal(ep_rpc_stream_send(s[i], (const uint8_t *)"hi", 2), 0);
  }
  await(&f->opened, 3);
  ep_rpc_server_free(f->server, 100);
  f->server = NULL;
  assert_int_equal(atomic_load(&f->closed), 3);
  for (int i = 0; i < 3; i++) {
    ep_rpc_result result = {0};
    ep_rpc_stream_close(s[i], &result);
    assert_int_not_equal(result.status, 0);
    ep_rpc_result_clear(&result);
  }
}

/* Calls past calls_max are refused RESOURCE_EXHAUSTED with when to ask again, and no event of
 * theirs reaches a handler: an event-driven call refused on arrival has no handler, and its end
 * once freed the call while a worker still had it queued (found by tests/integration/test_flood.c). */
static void calls_past_the_maximum_are_refused_without_events(void **state) {
  fixture *f = *state;
  enum { EXTRA = 60 };
  ep_rpc_stream *held[CALLS_MAX], *extra[EXTRA];
  for (int i = 0; i < CALLS_MAX; i++) {
    assert_int_equal(ep_rpc_stream_open(&held[i], f->channel, WAIT, NULL, 0, NULL, 0, 20000), 0);
    assert_int_equal(ep_rpc_stream_send(held[i], (const uint8_t *)"hi", 2), 0);
  }
  await(&f->opened, CALLS_MAX);
  for (int i = 0; i < EXTRA; i++) assert_int_equal(ep_rpc_stream_open(&extra[i], f->channel, WAIT, NULL, 0, NULL, 0, 20000), 0);
  for (int i = 0; i < EXTRA; i++) {
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(ep_rpc_stream_read(extra[i], &data, &len), 0);
    ep_rpc_result result = {0};
    ep_rpc_stream_close(extra[i], &result);
    assert_int_equal(result.status, 8);
    assert_non_null(strstr(result.message, "too many calls; ask again in "));
    ep_rpc_result_clear(&result);
  }
  assert_int_equal(atomic_load(&f->opened), CALLS_MAX); /* no handler saw the refused calls */
  assert_int_equal(atomic_load(&f->closed), 0);
  for (int i = 0; i < CALLS_MAX; i++) ep_rpc_stream_close(held[i], NULL);
  await(&f->closed, CALLS_MAX);
  release_waiters(f);
  /* Places free as calls end. */
  ep_rpc_stream *s = NULL;
  assert_int_equal(ep_rpc_stream_open(&s, f->channel, ECHO, NULL, 0, NULL, 0, 10000), 0);
  assert_int_equal(ep_rpc_stream_send(s, (const uint8_t *)"again", 5), 0);
  read_text(s, "AGAIN");
  ep_rpc_stream_close(s, NULL);
}

/* A full server makes room for a newcomer by ending the call that has waited longest without
 * sending anything (a method with first_message_ms): streams that say nothing cannot shut
 * others out, while calls that spoke keep their places, however old. */
static void a_full_server_ends_the_oldest_silent_call_for_a_newcomer(void **state) {
  fixture *f = *state;
  enum { SILENT = CALLS_MAX - 1, NEWCOMERS = 2 };
  ep_rpc_stream *spoke = NULL, *silent[SILENT], *newcomer[NEWCOMERS];
  assert_int_equal(ep_rpc_stream_open(&spoke, f->channel, HELLO, NULL, 0, NULL, 0, 20000), 0);
  assert_int_equal(ep_rpc_stream_send(spoke, (const uint8_t *)"hi", 2), 0);
  read_text(spoke, "HI");
  for (int i = 0; i < SILENT; i++) {
    assert_int_equal(ep_rpc_stream_open(&silent[i], f->channel, HELLO, NULL, 0, NULL, 0, 20000), 0);
    await(&f->opened, i + 2); /* the server takes them in this order: it is full after the last */
  }
  for (int i = 0; i < NEWCOMERS; i++) {
    assert_int_equal(ep_rpc_stream_open(&newcomer[i], f->channel, HELLO, NULL, 0, NULL, 0, 20000), 0);
    assert_int_equal(ep_rpc_stream_send(newcomer[i], (const uint8_t *)"in", 2), 0);
    read_text(newcomer[i], "IN");
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(ep_rpc_stream_read(silent[i], &data, &len), 0); /* the oldest silent one was ended */
    ep_rpc_result result = {0};
    ep_rpc_stream_close(silent[i], &result);
    assert_int_equal(result.status, 8);
    assert_non_null(strstr(result.message, "this one sent nothing; ask again in "));
    ep_rpc_result_clear(&result);
  }
  /* The rest are still open: the client's close cancels each. */
  ep_rpc_stream *open[] = {spoke, silent[2], newcomer[0], newcomer[1]};
  for (size_t i = 0; i < sizeof open / sizeof open[0]; i++) {
    ep_rpc_result result = {0};
    ep_rpc_stream_close(open[i], &result);
    assert_int_equal(result.status, 1);
    ep_rpc_result_clear(&result);
  }
  await(&f->closed, 1 + SILENT + NEWCOMERS);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(events_in_order_and_one_at_a_time, setup, teardown),
      cmocka_unit_test_setup_teardown(waiting_streams_hold_no_thread_and_wakes_arrive, setup, teardown),
      cmocka_unit_test_setup_teardown(send_queue_is_bounded, setup, teardown),
      cmocka_unit_test_setup_teardown(a_message_and_the_status_after_it_arrive_in_order, setup, teardown),
      cmocka_unit_test_setup_teardown(sends_of_one_event_are_bounded_as_one_in_flight_and_a_full_queue, setup, teardown),
      cmocka_unit_test_setup_teardown(shutdown_with_waiting_streams, setup, teardown),
      cmocka_unit_test_setup_teardown(calls_past_the_maximum_are_refused_without_events, setup_small, teardown),
      cmocka_unit_test_setup_teardown(a_full_server_ends_the_oldest_silent_call_for_a_newcomer, setup_small, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
