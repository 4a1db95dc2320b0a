/* Benchmark (not a test): edgeprovd's southbound server under nodes that each bring their own
 * TLS connection, as real ones do (not many streams on a few channels). A coordinator starts
 * edgeprovd (storage-sqlite, auth-local) with the test harness, registers the nodes through the
 * management API and drives load-generator processes, each under its descriptor limit, whose
 * connections come from many loopback source addresses. Two figures:
 *   - waiting: N nodes connect and stay connected at once on their onboarding streams; the
 *     server's memory and threads are sampled as they ramp up, and the cost of a connection
 *     is the slope over the ramp, projected to a fleet larger than this machine can hold;
 *   - onboarding: approved nodes onboard concurrently, each on a TLS connection of its own:
 *     durable onboardings/s with p50/p99 latency, once with the connections opened first and
 *     closed after, each apart (what the server sustains), and once with each node connecting
 *     as it onboards and closing after (TCP + TLS too).
 * With --compare-with the same is run against a second edgeprovd (an older build) and both
 * columns are printed side by side. Run with --help for the options. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_nodes.h"
#include "daemon_harness.h"
#include "testutil.h"

/* Connections one load-generator process holds at most: a process may have 20,000
 * descriptors here, and gRPC keeps a few of its own. */
#define CONNECTIONS_PER_PROCESS 9000
/* Nodes per source address: the server allows 20 onboarding messages per address at once
 * (then 2/s), as a site behind one NAT address would see; 16 stays within that burst. Each
 * address also has its own ~28,000 ephemeral ports (32768-60999). */
#define PER_ADDRESS_DEFAULT 16
#define SAMPLE_INTERVAL_S 0.2
#define SAMPLES_MAX 8192
#define ONBOARD_TIMEOUT_MS 60000

typedef struct options {
  char daemon[PATH_MAX], plugins[PATH_MAX];
  char old_daemon[PATH_MAX], old_plugins[PATH_MAX];
  int connections, processes, per_address, onboard, concurrency, project;
  bool unknown, verbose;
} options;

/* The figures of one server. */
typedef struct result {
  bool ran;
  char error[256];
  long fd_limit;
  int connected, wait_failed;
  double connect_seconds;
  long rss_base_kib, rss_kib, threads_base, threads, fds;
  double kib_per_connection, threads_per_connection;
  long client_rss_kib;
  double wait_server_cpu, wait_client_cpu; /* CPU seconds while they connected */
  struct onboarding {
    int done, failed;
    double seconds, p50_ms, p99_ms, server_cpu, client_cpu;
  } open, fresh; /* on connections opened first; each node connecting as it onboards */
  int closed;                                /* connections of open, closed after its timing */
  double close_server_cpu, close_client_cpu; /* CPU seconds that took */
} result;

/* What the runner of one server and its load generators share (MAP_SHARED). */
typedef struct shared {
  atomic_int connected, failed, done; /* of the phase running */
  atomic_flag error_taken;
  char error[256]; /* the first failure of a load generator */
  result res;
  double latencies[]; /* onboarding, by node (2 x --onboard) */
} shared;

/* A load generator's orders: a phase and its nodes (first, count) on the server at port. */
enum { PHASE_EXIT, PHASE_OPEN, PHASE_ONBOARD, PHASE_WAIT, PHASE_CLOSE };
typedef struct command {
  int phase, port, first, count, threads;
} command;

static options opt;
static shared *sh;
static char *ca_pem;

/* ---- load generator ------------------------------------------------------------------------ */

static void record_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void record_error(const char *fmt, ...) {
  if (atomic_flag_test_and_set(&sh->error_taken)) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sh->error, sizeof sh->error, fmt, ap);
  va_end(ap);
}

/* Node k of a phase connects from 127.A.B.C, per_address nodes an address (never 127.0.0.x,
 * where the server listens; last octet 1..254). */
static void source_address(int k, char out[32]) {
  int a = k / opt.per_address;
  snprintf(out, 32, "127.%d.%d.%d", 1 + a / (256 * 254), a / 254 % 256, a % 254 + 1);
}

/* A channel with a TLS connection of its own from node k's source address. */
static ep_rpc_channel *node_channel(int port, int k) {
  char target[32], source[32];
  snprintf(target, sizeof target, "127.0.0.1:%d", port);
  source_address(k, source);
  ep_rpc_tls tls = {.ca_pem = ca_pem};
  ep_rpc_channel_options how = {.source_address = source, .own_connection = true};
  ep_rpc_channel *channel = NULL;
  if (ep_rpc_channel_new_with(&channel, target, &tls, &how) < 0) {
    record_error("node %d: channel from %s: %s", k, source, ep_error_message());
    return NULL;
  }
  return channel;
}

typedef struct worker {
  command cmd;
  atomic_int next;
  ep_rpc_channel **channels; /* waiting nodes, kept open until the process exits */
  ep_rpc_stream **streams;
} worker;

/* Connections opened ahead (PHASE_OPEN) for nodes open_first.., taken by PHASE_ONBOARD. */
static ep_rpc_channel **opened;
static int open_first, open_count;

static void *open_load(void *arg) {
  worker *w = arg;
  for (int i; (i = atomic_fetch_add(&w->next, 1)) < w->cmd.count;) {
    int k = w->cmd.first + i;
    ep_rpc_channel *channel = node_channel(w->cmd.port, k);
    if (channel && ep_rpc_channel_connect(channel, ONBOARD_TIMEOUT_MS) == 0) {
      opened[i] = channel;
      atomic_fetch_add(&sh->connected, 1);
    } else {
      if (channel) record_error("node %d: %s", k, ep_error_message());
      ep_rpc_channel_free(channel);
      atomic_fetch_add(&sh->failed, 1);
    }
  }
  return NULL;
}

static void *onboard_load(void *arg) {
  worker *w = arg;
  for (int i; (i = atomic_fetch_add(&w->next, 1)) < w->cmd.count;) {
    int k = w->cmd.first + i;
    double start = bench_now();
    ep_rpc_channel *channel = NULL;
    if (opened && k >= open_first && k < open_first + open_count) {
      channel = opened[k - open_first];
      opened[k - open_first] = NULL;
    }
    if (!channel) channel = node_channel(w->cmd.port, k);
    int r = channel ? bench_node_onboard(channel, k, ONBOARD_TIMEOUT_MS) : -1;
    sh->latencies[k] = bench_now() - start;
    /* A connection opened first is closed after the phase (PHASE_CLOSE), so its close is
     * counted apart, as its opening is; one opened here is closed here. */
    if (opened && k >= open_first && k < open_first + open_count)
      opened[k - open_first] = channel;
    else
      ep_rpc_channel_free(channel);
    if (r == 0) {
      atomic_fetch_add(&sh->connected, 1);
    } else {
      atomic_fetch_add(&sh->failed, 1);
      record_error("node %d did not onboard", k);
    }
  }
  return NULL;
}

static void *close_load(void *arg) {
  worker *w = arg;
  for (int i; (i = atomic_fetch_add(&w->next, 1)) < open_count;) {
    if (!opened[i]) continue;
    ep_rpc_channel_free(opened[i]);
    opened[i] = NULL;
    atomic_fetch_add(&sh->connected, 1);
  }
  return NULL;
}

static void *wait_load(void *arg) {
  worker *w = arg;
  for (int i; (i = atomic_fetch_add(&w->next, 1)) < w->cmd.count;) {
    int k = w->cmd.first + i;
    ep_rpc_channel *channel = node_channel(w->cmd.port, k);
    ep_rpc_stream *stream = NULL;
    bench_answer *resp = channel ? bench_node_ask(channel, k, 0, &stream) : NULL;
    if (bench_answer_waits(resp, opt.unknown)) {
      w->channels[i] = channel;
      w->streams[i] = stream;
      atomic_fetch_add(&sh->connected, 1);
    } else {
      ep_rpc_result end = {0};
      if (stream) ep_rpc_stream_close(stream, &end);
      if (resp)
        record_error("node %d: answered state %d, status %d: %s", k, resp->node_state, resp->status ? resp->status->code : 0,
                     resp->status ? resp->status->message : "");
      else if (channel)
        record_error("node %d: stream ended with status %d: %s", k, end.status, end.message);
      ep_rpc_channel_free(channel);
      atomic_fetch_add(&sh->failed, 1);
    }
    bench_answer_free(resp);
  }
  return NULL;
}

/* A load-generator process: runs the phases it is sent on in, then exits without closing its
 * connections (the kernel does, at once). */
static void load_generator(int in) {
  command cmd;
  while (read(in, &cmd, sizeof cmd) == (ssize_t)sizeof cmd && cmd.phase != PHASE_EXIT) {
    worker w = {.cmd = cmd};
    if (cmd.phase == PHASE_OPEN) {
      free(opened);
      opened = calloc((size_t)cmd.count + 1, sizeof *opened);
      open_first = cmd.first;
      open_count = cmd.count;
    }
    if (cmd.phase == PHASE_WAIT) {
      w.channels = calloc((size_t)cmd.count + 1, sizeof *w.channels);
      w.streams = calloc((size_t)cmd.count + 1, sizeof *w.streams);
    }
    pthread_t *threads = calloc((size_t)cmd.threads, sizeof *threads);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256u << 10);
    void *(*run)(void *) = cmd.phase == PHASE_WAIT    ? wait_load
                           : cmd.phase == PHASE_OPEN  ? open_load
                           : cmd.phase == PHASE_CLOSE ? close_load
                                                      : onboard_load;
    for (int i = 0; i < cmd.threads; i++) pthread_create(&threads[i], &attr, run, &w);
    for (int i = 0; i < cmd.threads; i++) pthread_join(threads[i], NULL);
    pthread_attr_destroy(&attr);
    free(threads);
    atomic_fetch_add(&sh->done, 1);
  }
  _exit(0);
}

/* ---- runner: one server, its phases, its load generators ----------------------------------- */

typedef struct sample {
  double t;
  int connected;
  long rss_kib, threads, fds;
} sample;

static sample take_sample(pid_t pid, double start) {
  return (sample){.t = bench_now() - start,
                  .connected = atomic_load(&sh->connected),
                  .rss_kib = bench_proc_status(pid, "VmRSS:"),
                  .threads = bench_proc_status(pid, "Threads:"),
                  .fds = bench_proc_fds(pid)};
}

/* The least-squares slope of y over x. */
static double slope(const sample *s, int n, bool threads) {
  double mx = 0, my = 0, sxx = 0, sxy = 0;
  for (int i = 0; i < n; i++) mx += s[i].connected, my += (double)(threads ? s[i].threads : s[i].rss_kib);
  mx /= n, my /= n;
  for (int i = 0; i < n; i++) {
    double dx = s[i].connected - mx;
    sxx += dx * dx;
    sxy += dx * ((double)(threads ? s[i].threads : s[i].rss_kib) - my);
  }
  return sxx > 0 ? sxy / sxx : 0;
}

typedef struct runner {
  const char *daemon, *plugins, *tls_extra;
  int processes;
  pid_t workers[64];
  int orders[64];
} runner;

static int start_daemon(harness *h, runner *r, int nodes, bool approved) {
  int port = tu_free_port();
  if (harness_init_with(h, r->daemon, r->plugins, port,
                        "plugins = { enabled = [ \"storage-sqlite\", \"auth-local\" ]; };", r->tls_extra) < 0 ||
      harness_start(h) < 0) {
    snprintf(sh->res.error, sizeof sh->res.error, "%s did not start (log: %s)", r->daemon, h->log_path);
    return -1;
  }
  ep_mgmt_client *mgmt = NULL;
  int rc = nodes > 0 ? ep_mgmt_client_new(&mgmt, h->address, NULL, NULL) : 0;
  if (rc == 0 && nodes > 0) rc = bench_add_hosts(mgmt, 0, nodes, approved);
  ep_mgmt_client_free(mgmt);
  if (rc < 0) snprintf(sh->res.error, sizeof sh->res.error, "registering %d nodes failed", nodes);
  return rc < 0 ? -1 : port;
}

static void reset_counters(void) {
  atomic_store(&sh->connected, 0);
  atomic_store(&sh->failed, 0);
  atomic_store(&sh->done, 0);
}

/* Sends every load generator its share of nodes base..base+nodes-1. */
static void order(runner *r, int phase, int port, int base, int nodes) {
  reset_counters();
  int threads = opt.concurrency / r->processes;
  for (int w = 0; w < r->processes; w++) {
    int first = base + (int)((long)nodes * w / r->processes), end = base + (int)((long)nodes * (w + 1) / r->processes);
    command cmd = {.phase = phase, .port = port, .first = first, .count = end - first, .threads = threads < 1 ? 1 : threads};
    if (write(r->orders[w], &cmd, sizeof cmd) != (ssize_t)sizeof cmd) atomic_fetch_add(&sh->done, 1);
  }
}

/* CPU seconds the load generators have used. */
static double workers_cpu(const runner *r) {
  double sum = 0;
  for (int w = 0; w < r->processes; w++) sum += bench_proc_cpu_seconds(r->workers[w]);
  return sum;
}

/* Load generators that did not finish in time are stopped (they may be stuck on a server that
 * does not answer); the phases after are skipped. */
static void kill_workers(runner *r) {
  for (int w = 0; w < r->processes; w++) {
    if (r->workers[w] > 0) kill(r->workers[w], SIGKILL);
    if (r->orders[w] >= 0) close(r->orders[w]);
    r->orders[w] = -1;
  }
}

static void stop_daemon(harness *h) {
  if (h->pid > 0) harness_signal(h, SIGTERM);
  harness_cleanup(h);
}

/* Runs one phase on nodes base..base+count-1 and waits for it; false when it did not end in time
 * (the load generators are then stopped). */
static bool run_phase(runner *r, int phase, int port, int base, int count) {
  double deadline = bench_now() + 30 + count / 50.0;
  order(r, phase, port, base, count);
  while (atomic_load(&sh->done) < r->processes && bench_now() < deadline) usleep(10000);
  if (atomic_load(&sh->done) == r->processes) return true;
  snprintf(sh->res.error, sizeof sh->res.error, "onboarding: phase %d gave up with %d of %d done", phase,
           atomic_load(&sh->connected), count);
  kill_workers(r);
  return false;
}

/* Nodes base..base+N-1 onboard; their figures go to *out. */
static bool onboard_nodes(runner *r, harness *h, int port, int base, struct onboarding *out) {
  double server_cpu = bench_proc_cpu_seconds(h->pid), client_cpu = workers_cpu(r), start = bench_now();
  bool ok = run_phase(r, PHASE_ONBOARD, port, base, opt.onboard);
  out->seconds = bench_now() - start;
  out->server_cpu = bench_proc_cpu_seconds(h->pid) - server_cpu;
  out->client_cpu = workers_cpu(r) - client_cpu;
  out->done = atomic_load(&sh->connected);
  out->failed = opt.onboard - out->done;
  double *latencies = sh->latencies + base;
  qsort(latencies, (size_t)opt.onboard, sizeof *latencies, bench_compare_doubles);
  out->p50_ms = bench_quantile(latencies, opt.onboard, 0.50) * 1000;
  out->p99_ms = bench_quantile(latencies, opt.onboard, 0.99) * 1000;
  return ok;
}

/* Closes the connections the onboarding phase kept; their cost goes to the close figures.
 * The server tears a connection down after the client went: its CPU is read once its
 * descriptors are back near where they were before the connections were opened. */
static bool close_opened(runner *r, harness *h, int port, long fds_before) {
  double server_cpu = bench_proc_cpu_seconds(h->pid), client_cpu = workers_cpu(r);
  bool ok = run_phase(r, PHASE_CLOSE, port, 0, opt.onboard);
  for (double until = bench_now() + 10; bench_proc_fds(h->pid) > fds_before + 16 && bench_now() < until;) usleep(10000);
  sh->res.closed = atomic_load(&sh->connected);
  sh->res.close_server_cpu = bench_proc_cpu_seconds(h->pid) - server_cpu;
  sh->res.close_client_cpu = workers_cpu(r) - client_cpu;
  return ok;
}

/* Approved nodes onboard twice over: nodes 0..N-1 on connections opened first (the time
 * counts the onboarding only: the connections are opened before and closed after, each
 * measured apart), then nodes N..2N-1 each connecting as it onboards (and closing after). */
static void phase_onboard(runner *r) {
  harness h;
  int port = start_daemon(&h, r, 2 * opt.onboard, true);
  if (port < 0) return stop_daemon(&h);
  long fds_before = bench_proc_fds(h.pid);
  if (run_phase(r, PHASE_OPEN, port, 0, opt.onboard) && onboard_nodes(r, &h, port, 0, &sh->res.open) &&
      close_opened(r, &h, port, fds_before))
    onboard_nodes(r, &h, port, opt.onboard, &sh->res.fresh);
  stop_daemon(&h);
}

static void phase_wait(runner *r) {
  harness h;
  int port = start_daemon(&h, r, opt.unknown ? 0 : opt.connections, false);
  if (port < 0) return stop_daemon(&h);
  result *res = &sh->res;
  static sample samples[SAMPLES_MAX];
  int n = 0;
  usleep(500000); /* let the registration's writes settle */
  double start = bench_now(), deadline = start + 60 + opt.connections / 100.0, next = start + SAMPLE_INTERVAL_S;
  res->fd_limit = bench_proc_fd_limit(h.pid);
  reset_counters();
  double server_cpu = bench_proc_cpu_seconds(h.pid), client_cpu = workers_cpu(r);
  samples[n++] = take_sample(h.pid, start);
  order(r, PHASE_WAIT, port, 0, opt.connections);
  while (atomic_load(&sh->done) < r->processes && bench_now() < deadline) {
    if (bench_now() >= next && n < SAMPLES_MAX - 1) {
      samples[n++] = take_sample(h.pid, start);
      next += SAMPLE_INTERVAL_S;
    }
    usleep(10000);
  }
  res->connect_seconds = bench_now() - start;
  res->wait_server_cpu = bench_proc_cpu_seconds(h.pid) - server_cpu;
  res->wait_client_cpu = workers_cpu(r) - client_cpu;
  bool late = atomic_load(&sh->done) < r->processes;
  if (late)
    snprintf(res->error, sizeof res->error, "waiting: gave up after %.0f s with %d connected", res->connect_seconds,
             atomic_load(&sh->connected));
  sleep(1); /* what a connection costs once it is idle */
  samples[n++] = take_sample(h.pid, start);
  const sample *last = &samples[n - 1];
  res->connected = last->connected;
  res->wait_failed = atomic_load(&sh->failed);
  res->rss_base_kib = samples[0].rss_kib;
  res->threads_base = samples[0].threads;
  res->rss_kib = last->rss_kib;
  res->threads = last->threads;
  res->fds = last->fds;
  res->kib_per_connection = slope(samples, n, false);
  res->threads_per_connection = slope(samples, n, true);
  for (int w = 0; w < r->processes; w++) res->client_rss_kib += bench_proc_status(r->workers[w], "VmRSS:");
  if (opt.verbose) {
    fprintf(stderr, "%s: ramp\n%8s %10s %12s %10s %10s\n", r->daemon, "s", "connected", "RSS MiB", "threads", "fds");
    for (int i = 0; i < n; i++)
      fprintf(stderr, "%8.2f %10d %12.1f %10ld %10ld\n", samples[i].t, samples[i].connected, samples[i].rss_kib / 1024.0,
              samples[i].threads, samples[i].fds);
  }
  /* The load generators exit without closing their connections (the kernel does): thousands
   * of orderly closes would only slow the run down. */
  if (late) kill_workers(r);
  for (int w = 0; w < r->processes; w++) {
    if (r->orders[w] >= 0) close(r->orders[w]);
    r->orders[w] = -1;
  }
  for (int w = 0; w < r->processes; w++) waitpid(r->workers[w], NULL, 0);
  stop_daemon(&h);
}

/* Runs both phases against one server in a process of its own (the load generators are forked
 * before it uses gRPC, which does not survive a fork) and leaves the figures in sh->res. */
static void run_server(const char *daemon, const char *plugins, const char *tls_extra, result *out) {
  memset(&sh->res, 0, sizeof sh->res);
  atomic_flag_clear(&sh->error_taken);
  sh->error[0] = '\0';
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    runner r = {.daemon = daemon, .plugins = plugins, .tls_extra = tls_extra, .processes = opt.processes};
    for (int w = 0; w < r.processes; w++) {
      /* Close-on-exec: the daemon must not hold a load generator's orders open. */
      int fds[2];
      if (pipe2(fds, O_CLOEXEC) < 0) _exit(1);
      pid_t child = fork();
      if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (int i = 0; i < w; i++) close(r.orders[i]);
        close(fds[1]);
        load_generator(fds[0]);
      }
      close(fds[0]);
      r.workers[w] = child;
      r.orders[w] = fds[1];
    }
    sh->res.ran = true;
    if (opt.onboard > 0) phase_onboard(&r);
    if (opt.connections > 0 && !sh->res.error[0]) phase_wait(&r);
    for (int w = 0; w < r.processes; w++)
      if (r.orders[w] >= 0) close(r.orders[w]);
    for (int w = 0; w < r.processes; w++) waitpid(r.workers[w], NULL, 0);
    _exit(0);
  }
  if (pid > 0) waitpid(pid, NULL, 0);
  *out = sh->res;
  if (!out->error[0] && sh->error[0]) snprintf(out->error, sizeof out->error, "%s", sh->error);
  else if (out->error[0] && sh->error[0]) fprintf(stderr, "bench_southbound: first failure: %s\n", sh->error);
}

/* ---- report -------------------------------------------------------------------------------- */

static int columns;
static const result *col[2];

/* One figure of every server, with decimals digits. */
static void row(const char *name, int decimals, double (*get)(const result *)) {
  printf("%-50s", name);
  for (int c = 0; c < columns; c++) printf(" %16.*f", decimals, get(col[c]));
  printf("\n");
}

#define FIELD(name, expr)                                                                                             \
  static double name(const result *r) { return (double)(expr); }
FIELD(fd_limit, r->fd_limit)
FIELD(connected, r->connected)
FIELD(wait_failed, r->wait_failed)
FIELD(connect_seconds, r->connect_seconds)
FIELD(connect_rate, r->connect_seconds > 0 ? r->connected / r->connect_seconds : 0)
FIELD(kib_per_connection, r->kib_per_connection)
FIELD(rss_base, r->rss_base_kib / 1024.0)
FIELD(rss_all, r->rss_kib / 1024.0)
FIELD(threads_base, r->threads_base)
FIELD(threads_all, r->threads)
FIELD(threads_per_connection, r->threads_per_connection)
FIELD(fds, r->fds)
FIELD(projected_mib, (r->rss_base_kib + r->kib_per_connection * opt.project) / 1024.0)
FIELD(projected_threads, r->threads_base + r->threads_per_connection * opt.project)
FIELD(client_rss, r->client_rss_kib / 1024.0)
#define ONBOARDING(o)                                                                                                 \
  FIELD(o##_rate, r->o.seconds > 0 ? r->o.done / r->o.seconds : 0)                                                    \
  FIELD(o##_p50, r->o.p50_ms)                                                                                         \
  FIELD(o##_p99, r->o.p99_ms)                                                                                         \
  FIELD(o##_failed, r->o.failed)                                                                                      \
  FIELD(o##_server_ms, r->o.done ? r->o.server_cpu * 1000 / r->o.done : 0)                                           \
  FIELD(o##_per_core, r->o.server_cpu > 0 ? r->o.done / r->o.server_cpu : 0)                                          \
  FIELD(o##_client_ms, r->o.done ? r->o.client_cpu * 1000 / r->o.done : 0)
ONBOARDING(open)
ONBOARDING(fresh)
FIELD(close_server_ms, r->closed ? r->close_server_cpu * 1000 / r->closed : 0)
FIELD(close_client_ms, r->closed ? r->close_client_cpu * 1000 / r->closed : 0)
FIELD(wait_server_ms, r->connected ? r->wait_server_cpu * 1000 / r->connected : 0)
FIELD(wait_client_ms, r->connected ? r->wait_client_cpu * 1000 / r->connected : 0)


static void report(void) {
  int addresses_wait = (opt.connections + opt.per_address - 1) / opt.per_address;
  printf("\n%-50s", "server");
  for (int c = 0; c < columns; c++) printf(" %16s", c == 0 ? "A" : "B (compare)");
  printf("\nA: %s\n", opt.daemon);
  if (columns > 1) printf("B: %s\n", opt.old_daemon);
  if (opt.connections > 0) {
    printf("\nWaiting: %d nodes connected at once, each on its own TLS connection (%s), from %d source addresses, "
           "%d load-generator process%s\n",
           opt.connections, opt.unknown ? "unknown to the server" : "registered, not yet approved", addresses_wait,
           opt.processes, opt.processes > 1 ? "es" : "");
    row("edgeprovd open-files limit", 0, fd_limit);
    row("nodes connected and waiting", 0, connected);
    row("  failed", 0, wait_failed);
    row("time to connect them all, s", 2, connect_seconds);
    row("  connections/s", 0, connect_rate);
    row("  server CPU per connection, ms", 2, wait_server_ms);
    row("  load generators' CPU per connection, ms", 2, wait_client_ms);
    row("server memory per connection, KiB (slope)", 1, kib_per_connection);
    row("server RSS before, MiB", 0, rss_base);
    row("server RSS with all connected, MiB", 0, rss_all);
    row("server threads before", 0, threads_base);
    row("server threads with all connected", 0, threads_all);
    row("  threads per connection (slope)", 3, threads_per_connection);
    row("server descriptors with all connected", 0, fds);
    char name[64];
    snprintf(name, sizeof name, "projected for %d nodes: memory, MiB", opt.project);
    row(name, 0, projected_mib);
    snprintf(name, sizeof name, "projected for %d nodes: threads", opt.project);
    row(name, 0, projected_threads);
    row("load generators' RSS, MiB", 0, client_rss);
  }
  if (opt.onboard > 0) {
    int at_once = opt.concurrency < opt.processes ? opt.processes : opt.concurrency / opt.processes * opt.processes;
    printf("\nOnboarding: %d approved nodes, %d at once, each on a TLS connection of its own opened first "
           "and closed after (SQLite, durable)\n", opt.onboard, at_once);
    row("onboardings/s", 0, open_rate);
    row("  p50 latency, ms (stream to credentials)", 1, open_p50);
    row("  p99 latency, ms", 1, open_p99);
    row("  failed", 0, open_failed);
    row("  server CPU per onboarding, ms", 2, open_server_ms);
    row("  onboardings/s per server core (projected)", 0, open_per_core);
    row("  load generators' CPU per onboarding, ms", 2, open_client_ms);
    row("then closing those connections: server CPU each, ms", 2, close_server_ms);
    row("  load generators' CPU each, ms", 2, close_client_ms);
    printf("\nOnboarding: %d more, each connecting as it onboards (TCP + TLS + onboarding)\n", opt.onboard);
    row("onboardings/s", 0, fresh_rate);
    row("  p50 latency, ms (connect to credentials)", 1, fresh_p50);
    row("  p99 latency, ms", 1, fresh_p99);
    row("  failed", 0, fresh_failed);
    row("  server CPU per onboarding, ms", 2, fresh_server_ms);
    row("  onboardings/s per server core (projected)", 0, fresh_per_core);
    row("  load generators' CPU per onboarding, ms", 2, fresh_client_ms);
  }
  for (int c = 0; c < columns; c++)
    if (col[c]->error[0]) printf("%s: %s\n", c == 0 ? "A" : "B", col[c]->error);
}

/* ---- options ------------------------------------------------------------------------------- */

static void usage(FILE *out) {
  fprintf(out,
          "usage: bench_southbound [OPTIONS] EDGEPROVD [PLUGIN_DIR]\n"
          "Nodes on their own TLS connections against a real edgeprovd; prints a table of figures.\n"
          "PLUGIN_DIR defaults to EDGEPROVD's ../lib/edgeprov/plugins.\n"
          "  --connections N     nodes waiting at once, each on its own connection (default 2000; 0: none)\n"
          "  --unknown           waiting nodes are unknown to the server (default: registered, not approved)\n"
          "  --onboard N         first, N approved nodes onboard on connections opened ahead, then N more\n"
          "                      each connecting as it onboards (default 0; the README uses 2000)\n"
          "  --concurrency C     connections being opened or onboarding at once, all processes (default 64)\n"
          "  --processes P       load-generator processes (default: one per %d connections)\n"
          "  --per-address K     nodes per loopback source address 127.x.y.z (default %d: the server allows\n"
          "                      20 onboarding messages at once per address)\n"
          "  --project N         fleet size the waiting figures are projected to (default 50000)\n"
          "  --compare-with OLD_EDGEPROVD [--compare-plugins DIR]\n"
          "                      the same against a second build (e.g. from a git worktree of the commit\n"
          "                      before a change): two columns\n"
          "  --verbose           print the ramp samples (stderr)\n"
          "Each run starts a fresh edgeprovd per phase. Mind the machine's memory: the server before\n"
          "issue 16 spends a thread and ~130 KiB per waiting node, the load generators ~160 KiB.\n",
          CONNECTIONS_PER_PROCESS, PER_ADDRESS_DEFAULT);
}

static int positive(const char *name, const char *text, int min, int max) {
  char *end = NULL;
  long v = strtol(text, &end, 10);
  if (!*text || *end || v < min || v > max) {
    fprintf(stderr, "bench_southbound: %s: '%s' is not a number from %d to %d\n", name, text, min, max);
    exit(2);
  }
  return (int)v;
}

/* The plugin directory next to a daemon binary (<bin>/../lib/edgeprov/plugins). */
static void default_plugins(const char *daemon, char out[PATH_MAX]) {
  char copy[PATH_MAX], path[PATH_MAX * 2];
  snprintf(copy, sizeof copy, "%s", daemon);
  snprintf(path, sizeof path, "%s/../lib/edgeprov/plugins", dirname(copy));
  if (!realpath(path, out)) snprintf(out, PATH_MAX, "%.4000s", path);
}

static void absolute(const char *name, const char *path, char out[PATH_MAX]) {
  if (!realpath(path, out)) {
    fprintf(stderr, "bench_southbound: %s '%s': %s\n", name, path, strerror(errno));
    exit(2);
  }
}

static void parse(int argc, char **argv) {
  static const struct option longs[] = {
      {"connections", required_argument, NULL, 'c'}, {"unknown", no_argument, NULL, 'u'},
      {"onboard", required_argument, NULL, 'o'},     {"concurrency", required_argument, NULL, 'C'},
      {"processes", required_argument, NULL, 'p'},   {"per-address", required_argument, NULL, 'a'},
      {"project", required_argument, NULL, 'P'},     {"compare-with", required_argument, NULL, 'w'},
      {"compare-plugins", required_argument, NULL, 'W'}, {"verbose", no_argument, NULL, 'v'},
      {"help", no_argument, NULL, 'h'},              {NULL, 0, NULL, 0}};
  opt = (options){.connections = 2000, .concurrency = 64, .per_address = PER_ADDRESS_DEFAULT, .project = 50000};
  const char *old_plugins = NULL;
  for (int c; (c = getopt_long(argc, argv, "h", longs, NULL)) != -1;) {
    switch (c) {
    case 'c': opt.connections = positive("--connections", optarg, 0, 1000000); break;
    case 'u': opt.unknown = true; break;
    case 'o': opt.onboard = positive("--onboard", optarg, 0, 1000000); break;
    case 'C': opt.concurrency = positive("--concurrency", optarg, 1, 4096); break;
    case 'p': opt.processes = positive("--processes", optarg, 1, 64); break;
    case 'a': opt.per_address = positive("--per-address", optarg, 1, 25000); break;
    case 'P': opt.project = positive("--project", optarg, 1, 10000000); break;
    case 'w': absolute("--compare-with", optarg, opt.old_daemon); break;
    case 'W': old_plugins = optarg; break;
    case 'v': opt.verbose = true; break;
    case 'h': usage(stdout); exit(0);
    default: usage(stderr); exit(2);
    }
  }
  if (optind >= argc || argc - optind > 2) {
    usage(stderr);
    exit(2);
  }
  absolute("EDGEPROVD", argv[optind], opt.daemon);
  if (argc - optind == 2) absolute("PLUGIN_DIR", argv[optind + 1], opt.plugins);
  else default_plugins(opt.daemon, opt.plugins);
  if (opt.old_daemon[0]) {
    if (old_plugins) absolute("--compare-plugins", old_plugins, opt.old_plugins);
    else default_plugins(opt.old_daemon, opt.old_plugins);
  }
  int largest = opt.connections > opt.onboard ? opt.connections : opt.onboard;
  if (!opt.processes) opt.processes = (largest + CONNECTIONS_PER_PROCESS - 1) / CONNECTIONS_PER_PROCESS;
  if (opt.processes < 1) opt.processes = 1;
  if (opt.processes > 64) opt.processes = 64;
  if (opt.connections / opt.processes > CONNECTIONS_PER_PROCESS * 2)
    fprintf(stderr, "bench_southbound: %d connections a process may exceed its descriptor limit\n",
            opt.connections / opt.processes);
}

int main(int argc, char **argv) {
  parse(argc, argv);
  /* Load generators hold a descriptor a connection: up to the hard limit, like edgeprovd. */
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  char dir[] = "/tmp/edgeprov-bench-XXXXXX", extra[1024], path[PATH_MAX];
  if (bench_make_tls(dir, extra, sizeof extra) < 0) {
    fprintf(stderr, "bench_southbound: openssl could not make the certificates\n");
    return 1;
  }
  snprintf(path, sizeof path, "%s/ca.pem", dir);
  ca_pem = tu_slurp(path);
  size_t size = sizeof(shared) + (size_t)(opt.onboard ? 2 * opt.onboard : 1) * sizeof(double);
  sh = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (!ca_pem || sh == MAP_FAILED) return 1;
  result results[2];
  run_server(opt.daemon, opt.plugins, extra, &results[0]);
  columns = 1;
  if (opt.old_daemon[0]) {
    run_server(opt.old_daemon, opt.old_plugins, extra, &results[1]);
    columns = 2;
  }
  col[0] = &results[0];
  col[1] = &results[1];
  report();
  bench_remove_dir(dir);
  free(ca_pem);
  int failed = 0;
  for (int c = 0; c < columns; c++)
    failed |= !results[c].ran || results[c].error[0] || results[c].wait_failed || results[c].open.failed ||
              results[c].fresh.failed ||
              results[c].connected < opt.connections;
  return failed ? 1 : 0;
}
