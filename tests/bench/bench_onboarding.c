/* Benchmark (not a test): many simulated nodes onboarding concurrently over TLS against a
 * real edgeprovd (storage-sqlite, auth-local), from one load-generator process. Prints
 * nodes/s and the p50/p99 latency from opening the stream to holding credentials. Then
 * WAITING more nodes, registered but not approved, connect and stay connected at once (as
 * nodes waiting for approval do); prints how long they took and edgeprovd's memory and
 * threads while they wait.
 * Usage: bench_onboarding EDGEPROVD PLUGIN_DIR [NODES] [CONCURRENT] [WAITING] */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon_harness.h"
#include "testutil.h"
#include "base/error.h"
#include "southbound/onboarding.h"
#include "onboardingmgr/v1/onboarding.pb-c.h"
#include "net/rpc.h"

static harness h;
static ep_rpc_channel *channel;
static int nodes;
static atomic_int next_node, failures;
static double *latencies;

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void node_uuid(int i, char out[37]) { snprintf(out, 37, "bbbbbbbb-0000-4000-8000-%012d", i); }

/* Node i opens its stream and sends its identity; returns the first answer (free with
 * ..._free_unpacked) and leaves the stream open in *ret_stream, or NULL. */
static Onboardingmgr__V1__OnboardNodeStreamResponse *ask(int i, int timeout_ms, ep_rpc_stream **ret_stream) {
  char uuid[37], serial[21];
  node_uuid(i, uuid);
  snprintf(serial, sizeof serial, "LOAD%07d", i);
  *ret_stream = NULL;
  if (ep_rpc_stream_open(ret_stream, channel, EP_ONBOARDING_SERVICE_STREAM, NULL, 0, NULL, 0, timeout_ms) < 0) return NULL;
  Onboardingmgr__V1__OnboardNodeStreamRequest req = ONBOARDINGMGR__V1__ONBOARD_NODE_STREAM_REQUEST__INIT;
  req.uuid = uuid;
  req.serialnum = serial;
  uint8_t buf[256], *data = NULL;
  size_t len = onboardingmgr__v1__onboard_node_stream_request__pack(&req, buf), data_len = 0;
  Onboardingmgr__V1__OnboardNodeStreamResponse *resp = NULL;
  if (ep_rpc_stream_send(*ret_stream, buf, len) == 0 && ep_rpc_stream_read(*ret_stream, &data, &data_len) == 1)
    resp = onboardingmgr__v1__onboard_node_stream_response__unpack(NULL, data_len, data);
  free(data);
  return resp;
}

static int onboard(int i) {
  ep_rpc_stream *s = NULL;
  Onboardingmgr__V1__OnboardNodeStreamResponse *resp = ask(i, 30000, &s);
  int ok = resp && resp->node_state == ONBOARDINGMGR__V1__ONBOARD_NODE_STREAM_RESPONSE__NODE_STATE__NODE_STATE_ONBOARDED &&
           strlen(resp->client_secret) == 43;
  if (resp) onboardingmgr__v1__onboard_node_stream_response__free_unpacked(resp, NULL);
  uint8_t *data = NULL;
  size_t data_len = 0;
  while (s && ep_rpc_stream_read(s, &data, &data_len) == 1) free(data);
  if (s) ep_rpc_stream_close(s, NULL);
  return ok ? 0 : -1;
}

static void *load(void *arg) {
  (void)arg;
  for (int i; (i = atomic_fetch_add(&next_node, 1)) < nodes;) {
    double start = now_seconds();
    if (onboard(i) < 0) atomic_fetch_add(&failures, 1);
    latencies[i] = now_seconds() - start;
  }
  return NULL;
}

/* Nodes that wait: each opens its stream, hears REGISTERED and stays connected. */
static int waiting, waiting_base;
static atomic_int next_waiting, waiting_failures;
static ep_rpc_stream **waiting_streams;

static int connect_waiting(int i) {
  Onboardingmgr__V1__OnboardNodeStreamResponse *resp = ask(waiting_base + i, 0, &waiting_streams[i]);
  int ok = resp && resp->node_state == ONBOARDINGMGR__V1__ONBOARD_NODE_STREAM_RESPONSE__NODE_STATE__NODE_STATE_REGISTERED;
  if (resp) onboardingmgr__v1__onboard_node_stream_response__free_unpacked(resp, NULL);
  return ok ? 0 : -1;
}

static void *connect_load(void *arg) {
  (void)arg;
  for (int i; (i = atomic_fetch_add(&next_waiting, 1)) < waiting;)
    if (connect_waiting(i) < 0) atomic_fetch_add(&waiting_failures, 1);
  return NULL;
}

/* A line of /proc/PID/status ("VmRSS:", "Threads:") as a number, or -1. */
static long proc_status(pid_t pid, const char *key) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  long value = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, key, strlen(key)) == 0) value = strtol(line + strlen(key), NULL, 10);
  if (f) fclose(f);
  return value;
}

static int add_hosts(ep_mgmt_client *mgmt, int first, int count, bool auto_onboard) {
  for (int i = first; i < first + count; i++) {
    char uuid[37], serial[21];
    node_uuid(i, uuid);
    snprintf(serial, sizeof serial, "LOAD%07d", i);
    Edgeprov__V1__AddHostRequest req = EDGEPROV__V1__ADD_HOST_REQUEST__INIT;
    req.uuid = uuid;
    req.serial = serial;
    req.auto_onboard = auto_onboard;
    ProtobufCMessage *reply = NULL;
    if (ep_mgmt_client_call(mgmt, "AddHost", &req.base, &edgeprov__v1__host_response__descriptor, &reply) < 0) {
      fprintf(stderr, "bench_onboarding: AddHost: %s\n", ep_error_message());
      return -1;
    }
    protobuf_c_message_free_unpacked(reply, NULL);
  }
  return 0;
}

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
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
  /* A CA and a server certificate for 127.0.0.1, made for this run. */
  char dir[] = "/tmp/edgeprov-bench-XXXXXX", cmd[2048], extra[1024];
  if (!mkdtemp(dir)) return 1;
  snprintf(cmd, sizeof cmd,
           "(cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem "
           "-days 1 -subj /CN=bench-ca && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tls.key "
           "-out tls.csr -subj /CN=localhost && printf 'subjectAltName=IP:127.0.0.1' > ext && openssl x509 -req -in tls.csr "
           "-CA ca.pem -CAkey ca.key -CAcreateserial -out tls.pem -days 1 -extfile ext && chmod 600 tls.key) >/dev/null 2>&1",
           dir);
  if (system(cmd) != 0) return 1;
  snprintf(extra, sizeof extra, "tls = { cert = \"%s/tls.pem\"; key = \"%s/tls.key\"; };", dir, dir);
  int port = tu_free_port();
  if (harness_init_with(&h, argv[1], argv[2], port, "plugins = { enabled = [ \"storage-sqlite\", \"auth-local\" ]; };",
                        extra) < 0 ||
      harness_start(&h) < 0) {
    fprintf(stderr, "bench_onboarding: edgeprovd did not start (log: %s)\n", h.log_path);
    return 1;
  }
  /* Pre-register every node through the management API: those that onboard approved, those
   * that wait not. */
  ep_mgmt_client *mgmt = NULL;
  if (ep_mgmt_client_new(&mgmt, h.address, NULL, NULL) < 0 || add_hosts(mgmt, 0, nodes, true) < 0 ||
      add_hosts(mgmt, waiting_base, waiting, false) < 0)
    return 1;
  ep_mgmt_client_free(mgmt);

  snprintf(cmd, sizeof cmd, "%s/ca.pem", dir);
  char *ca = tu_slurp(cmd);
  char target[64];
  snprintf(target, sizeof target, "127.0.0.1:%d", port);
  ep_rpc_tls tls = {.ca_pem = ca};
  if (!ca || ep_rpc_channel_new(&channel, target, &tls, 0) < 0) return 1;
  latencies = calloc((size_t)nodes, sizeof *latencies);
  pthread_t *threads = calloc((size_t)concurrent, sizeof *threads);
  double start = now_seconds();
  for (int i = 0; i < concurrent; i++) pthread_create(&threads[i], NULL, load, NULL);
  for (int i = 0; i < concurrent; i++) pthread_join(threads[i], NULL);
  double elapsed = now_seconds() - start;
  qsort(latencies, (size_t)nodes, sizeof *latencies, compare_doubles);
  printf("%d nodes onboarded over TLS by %d concurrent streams on one channel\n", nodes, concurrent);
  printf("%-12s %12s %12s %12s %10s\n", "seconds", "nodes/s", "p50 ms", "p99 ms", "failed");
  printf("%-12.2f %12.0f %12.2f %12.2f %10d\n", elapsed, nodes / elapsed, latencies[nodes / 2] * 1000,
         latencies[(size_t)(nodes * 0.99)] * 1000, atomic_load(&failures));
  if (waiting > 0) {
    long rss_before = proc_status(h.pid, "VmRSS:");
    waiting_streams = calloc((size_t)waiting, sizeof *waiting_streams);
    start = now_seconds();
    for (int i = 0; i < concurrent; i++) pthread_create(&threads[i], NULL, connect_load, NULL);
    for (int i = 0; i < concurrent; i++) pthread_join(threads[i], NULL);
    elapsed = now_seconds() - start;
    long rss = proc_status(h.pid, "VmRSS:"), daemon_threads = proc_status(h.pid, "Threads:");
    printf("\n%d nodes connected at once, waiting for approval (streams open on one channel)\n", waiting);
    printf("%-12s %12s %16s %16s %10s\n", "seconds", "nodes/s", "edgeprovd MiB", "MiB/1000 nodes", "failed");
    printf("%-12.2f %12.0f %16.0f %16.1f %10d\n", elapsed, waiting / elapsed, rss / 1024.0,
           (double)(rss - rss_before) / 1024.0 / (waiting / 1000.0), atomic_load(&waiting_failures));
    printf("edgeprovd threads while they wait: %ld\n", daemon_threads);
    for (int i = 0; i < waiting; i++)
      if (waiting_streams[i]) ep_rpc_stream_close(waiting_streams[i], NULL);
    free(waiting_streams);
  }
  ep_rpc_channel_free(channel);
  harness_signal(&h, SIGTERM);
  harness_cleanup(&h);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
  free(ca);
  free(latencies);
  free(threads);
  return atomic_load(&failures) || atomic_load(&waiting_failures) ? 1 : 0;
}
