/* Benchmark (not a test): host registrations per second through edgeprovd's management API
 * with 64 calls in flight, side by side with the sqlite3 CLI committing the same number of
 * rows one durable transaction each (WAL, synchronous=FULL), the floor without group commit.
 * Usage: bench_register EDGEPROVD PLUGIN_DIR [REGISTRATIONS] */
#define _GNU_SOURCE
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon_harness.h"
#include "base/error.h"

#define IN_FLIGHT 64

static harness h;
static ep_mgmt_client *client;
static atomic_int next_host, failures;
static int total;

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *register_hosts(void *arg) {
  (void)arg;
  for (int i; (i = atomic_fetch_add(&next_host, 1)) < total;) {
    char uuid[37], serial[21];
    snprintf(uuid, sizeof uuid, "00000000-0000-4000-8000-%012d", i);
    snprintf(serial, sizeof serial, "BENCH%07d", i);
    Edgeprov__V1__AddHostRequest req = EDGEPROV__V1__ADD_HOST_REQUEST__INIT;
    req.uuid = uuid;
    req.serial = serial;
    ProtobufCMessage *reply = NULL;
    if (ep_mgmt_client_call(client, "AddHost", &req.base, &edgeprov__v1__host_response__descriptor, &reply) == 0)
      protobuf_c_message_free_unpacked(reply, NULL);
    else
      atomic_fetch_add(&failures, 1);
  }
  return NULL;
}

/* The same number of durable single-row transactions with the sqlite3 CLI. */
static double sqlite3_cli_seconds(const char *dir) {
  char script[128], db[128], cmd[512];
  snprintf(script, sizeof script, "%s/bench.sql", dir);
  snprintf(db, sizeof db, "%s/sqlite3-cli.db", dir);
  FILE *f = fopen(script, "w");
  if (!f) return -1;
  fprintf(f, "PRAGMA journal_mode=WAL;\nPRAGMA synchronous=FULL;\nCREATE TABLE hosts(uuid TEXT PRIMARY KEY, value BLOB);\n");
  for (int i = 0; i < total; i++)
    fprintf(f, "BEGIN IMMEDIATE; INSERT INTO hosts VALUES('00000000-0000-4000-8000-%012d', randomblob(80)); COMMIT;\n", i);
  fclose(f);
  snprintf(cmd, sizeof cmd, "sqlite3 '%s' < '%s' > /dev/null", db, script);
  double start = now_seconds();
  if (system(cmd) != 0) return -1;
  return now_seconds() - start;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: bench_register EDGEPROVD PLUGIN_DIR [REGISTRATIONS]\n");
    return 2;
  }
  total = argc > 3 ? atoi(argv[3]) : 5000;
  if (total <= 0 || total > 1000000) {
    fprintf(stderr, "bench_register: REGISTRATIONS must be 1..1000000\n");
    return 2;
  }
  /* The daemon's config names absolute paths; EDGEPROVD and PLUGIN_DIR may be relative. */
  char daemon[PATH_MAX], plugins[PATH_MAX];
  if (!realpath(argv[1], daemon) || !realpath(argv[2], plugins)) {
    fprintf(stderr, "bench_register: no such file: %s or %s\n", argv[1], argv[2]);
    return 2;
  }
  if (harness_init(&h, daemon, plugins) < 0 || harness_start(&h) < 0) {
    fprintf(stderr, "bench_register: edgeprovd did not start (log: %s)\n", h.log_path);
    return 1;
  }
  if (ep_mgmt_client_new(&client, h.address, NULL, NULL) < 0) {
    fprintf(stderr, "bench_register: %s\n", ep_error_message());
    return 1;
  }
  pthread_t threads[IN_FLIGHT];
  double start = now_seconds();
  for (int i = 0; i < IN_FLIGHT; i++) pthread_create(&threads[i], NULL, register_hosts, NULL);
  for (int i = 0; i < IN_FLIGHT; i++) pthread_join(threads[i], NULL);
  double api = now_seconds() - start;
  ep_mgmt_client_free(client);
  harness_signal(&h, SIGTERM);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "grep -o 'transactions committed in .*' '%s' | tr -d '\"'", h.log_path);
  if (system(cmd) != 0) printf("(group commit figures not logged)\n");
  double cli = sqlite3_cli_seconds(h.dir);

  printf("%-58s %10s %12s\n", "durable host registrations", "seconds", "per second");
  printf("%-58s %10.2f %12.0f\n", "edgeprovd AddHost, gRPC over UNIX socket, 64 in flight", api, total / api);
  if (cli > 0)
    printf("%-58s %10.2f %12.0f\n", "sqlite3 CLI, one INSERT per transaction (WAL, sync=FULL)", cli, total / cli);
  else
    printf("sqlite3 CLI: not run (is the sqlite3 package installed?)\n");
  printf("%d registrations, %d failed\n", total, atomic_load(&failures));
  harness_cleanup(&h);
  return atomic_load(&failures) ? 1 : 0;
}
