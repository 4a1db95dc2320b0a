/* Benchmark (not a test): many simulated nodes onboarding concurrently over TLS against a
 * real edgeprovd (storage-sqlite, auth-local), from one load-generator process, their streams
 * sharing connections (GROUP a connection; bench_southbound gives each node its own). Prints
 * nodes/s and the p50/p99 latency from opening the stream to holding credentials. Then
 * WAITING more nodes, registered but not approved, connect and stay connected at once (as
 * nodes waiting for approval do); prints how long they took and edgeprovd's memory and
 * threads while they wait.
 * Usage: bench_onboarding EDGEPROVD PLUGIN_DIR [NODES] [CONCURRENT] [WAITING] */
#define _GNU_SOURCE
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_nodes.h"
#include "daemon_harness.h"
#include "testutil.h"

/* Nodes per connection: the server allows 20 onboarding messages at once per address (then
 * 2/s), so every GROUP nodes share a connection from a loopback address of their own. */
#define GROUP 16

static harness h;
static ep_rpc_channel **channels;
static int nodes;
static atomic_int next_node, failures;
static double *latencies;

static ep_rpc_channel *channel_of(int i) { return channels[i / GROUP]; }

static void *load(void *arg) {
  (void)arg;
  for (int i; (i = atomic_fetch_add(&next_node, 1)) < nodes;) {
    double start = bench_now();
    if (bench_node_onboard(channel_of(i), i, 30000) < 0) atomic_fetch_add(&failures, 1);
    latencies[i] = bench_now() - start;
  }
  return NULL;
}

/* Nodes that wait: each opens its stream, hears REGISTERED and stays connected. */
static int waiting, waiting_base;
static atomic_int next_waiting, waiting_failures;
static ep_rpc_stream **waiting_streams;

static int connect_waiting(int i) {
  bench_answer *resp = bench_node_ask(channel_of(waiting_base + i), waiting_base + i, 0, &waiting_streams[i]);
  int ok = bench_answer_waits(resp, false);
  bench_answer_free(resp);
  return ok ? 0 : -1;
}

static void *connect_load(void *arg) {
  (void)arg;
  for (int i; (i = atomic_fetch_add(&next_waiting, 1)) < waiting;)
    if (connect_waiting(i) < 0) atomic_fetch_add(&waiting_failures, 1);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: bench_onboarding EDGEPROVD PLUGIN_DIR [NODES] [CONCURRENT] [WAITING]\n");
    return 2;
  }
  nodes = argc > 3 ? atoi(argv[3]) : 2000;
  int concurrent = argc > 4 ? atoi(argv[4]) : 64;
  waiting = argc > 5 ? atoi(argv[5]) : 0;
  waiting_base = nodes;
  if (nodes < 1 || nodes > 1000000 || concurrent < 1 || concurrent > 4096 || waiting < 0 || waiting > EP_RPC_CALLS_MAX - 64) {
    fprintf(stderr, "bench_onboarding: NODES 1..1000000, CONCURRENT 1..4096, WAITING 0..%d\n", EP_RPC_CALLS_MAX - 64);
    return 2;
  }
  /* The daemon's config names absolute paths. */
  char daemon[PATH_MAX], plugins[PATH_MAX];
  if (!realpath(argv[1], daemon) || !realpath(argv[2], plugins)) {
    fprintf(stderr, "bench_onboarding: no such file: %s or %s\n", argv[1], argv[2]);
    return 2;
  }
  /* A CA and a server certificate for 127.0.0.1, made for this run. */
  char dir[] = "/tmp/edgeprov-bench-XXXXXX", extra[1024], path[1024];
  if (bench_make_tls(dir, extra, sizeof extra) < 0) return 1;
  int port = tu_free_port();
  if (harness_init_with(&h, daemon, plugins, port, "plugins = { enabled = [ \"storage-sqlite\", \"auth-local\" ]; };",
                        extra) < 0 ||
      harness_start(&h) < 0) {
    fprintf(stderr, "bench_onboarding: edgeprovd did not start (log: %s)\n", h.log_path);
    return 1;
  }
  /* Pre-register every node through the management API: those that onboard approved, those
   * that wait not. */
  ep_mgmt_client *mgmt = NULL;
  if (ep_mgmt_client_new(&mgmt, h.address, NULL, NULL) < 0 || bench_add_hosts(mgmt, 0, nodes, true) < 0 ||
      bench_add_hosts(mgmt, waiting_base, waiting, false) < 0)
    return 1;
  ep_mgmt_client_free(mgmt);

  snprintf(path, sizeof path, "%s/ca.pem", dir);
  char *ca = tu_slurp(path);
  char target[64];
  snprintf(target, sizeof target, "127.0.0.1:%d", port);
  ep_rpc_tls tls = {.ca_pem = ca};
  int groups = (nodes + waiting + GROUP - 1) / GROUP;
  channels = calloc((size_t)groups, sizeof *channels);
  for (int g = 0; g < groups; g++) {
    char source[32];
    snprintf(source, sizeof source, "127.%d.%d.%d", 2 + g / (256 * 254), g / 254 % 256, g % 254 + 1);
    ep_rpc_channel_options how = {.source_address = source};
    if (!ca || ep_rpc_channel_new_with(&channels[g], target, &tls, &how) < 0) return 1;
  }
  latencies = calloc((size_t)nodes, sizeof *latencies);
  pthread_t *threads = calloc((size_t)concurrent, sizeof *threads);
  double start = bench_now();
  for (int i = 0; i < concurrent; i++) pthread_create(&threads[i], NULL, load, NULL);
  for (int i = 0; i < concurrent; i++) pthread_join(threads[i], NULL);
  double elapsed = bench_now() - start;
  qsort(latencies, (size_t)nodes, sizeof *latencies, bench_compare_doubles);
  printf("%d nodes onboarded over TLS by %d concurrent streams, %d a connection\n", nodes, concurrent, GROUP);
  printf("%-12s %12s %12s %12s %10s\n", "seconds", "nodes/s", "p50 ms", "p99 ms", "failed");
  printf("%-12.2f %12.0f %12.2f %12.2f %10d\n", elapsed, nodes / elapsed, latencies[nodes / 2] * 1000,
         latencies[(size_t)(nodes * 0.99)] * 1000, atomic_load(&failures));
  if (waiting > 0) {
    long rss_before = bench_proc_status(h.pid, "VmRSS:");
    waiting_streams = calloc((size_t)waiting, sizeof *waiting_streams);
    start = bench_now();
    for (int i = 0; i < concurrent; i++) pthread_create(&threads[i], NULL, connect_load, NULL);
    for (int i = 0; i < concurrent; i++) pthread_join(threads[i], NULL);
    elapsed = bench_now() - start;
    long rss = bench_proc_status(h.pid, "VmRSS:"), daemon_threads = bench_proc_status(h.pid, "Threads:");
    printf("\n%d nodes connected at once, waiting for approval (%d streams a connection)\n", waiting, GROUP);
    printf("%-12s %12s %16s %16s %10s\n", "seconds", "nodes/s", "edgeprovd MiB", "MiB/1000 nodes", "failed");
    printf("%-12.2f %12.0f %16.0f %16.1f %10d\n", elapsed, waiting / elapsed, rss / 1024.0,
           (double)(rss - rss_before) / 1024.0 / (waiting / 1000.0), atomic_load(&waiting_failures));
    printf("edgeprovd threads while they wait: %ld\n", daemon_threads);
    for (int i = 0; i < waiting; i++)
      if (waiting_streams[i]) ep_rpc_stream_close(waiting_streams[i], NULL);
    free(waiting_streams);
  }
  for (int g = 0; g < groups; g++) ep_rpc_channel_free(channels[g]);
  free(channels);
  harness_signal(&h, SIGTERM);
  harness_cleanup(&h);
  bench_remove_dir(dir);
  free(ca);
  free(latencies);
  free(threads);
  return atomic_load(&failures) || atomic_load(&waiting_failures) ? 1 : 0;
}
