/* Benchmark support: simulated nodes of the onboarding API against a real edgeprovd (see
 * daemon_harness.h): their identities, their registration through the management API, their
 * onboarding stream, the TLS material of a run, and the daemon's figures from /proc. */
#ifndef EP_BENCH_NODES_H
#define EP_BENCH_NODES_H

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "edgeprov/v1/management.pb-c.h"
#include "net/rpc.h"
#include "northbound/mgmt_client.h"
#include "onboardingmgr/v1/onboarding.pb-c.h"
#include "southbound/onboarding.h"

typedef Onboardingmgr__V1__OnboardNodeStreamResponse bench_answer;

#define BENCH_NOT_FOUND 5 /* gRPC NOT_FOUND, in an answer's status: the server does not know the node */

static inline double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Node i's identity: a UUID and a serial number, both unique to i. */
static inline void bench_node_uuid(int i, char out[37]) { snprintf(out, 37, "bbbbbbbb-0000-4000-8000-%012d", i); }
static inline void bench_node_serial(int i, char out[21]) { snprintf(out, 21, "LOAD%07d", i); }

/* Sends node i's identity (its UUID and serial number) on an open onboarding stream; returns
 * what ep_rpc_stream_send returned. */
static inline int bench_node_send(ep_rpc_stream *stream, int i) {
  char uuid[37], serial[21];
  bench_node_uuid(i, uuid);
  bench_node_serial(i, serial);
  Onboardingmgr__V1__OnboardNodeStreamRequest req = ONBOARDINGMGR__V1__ONBOARD_NODE_STREAM_REQUEST__INIT;
  req.uuid = uuid;
  req.serialnum = serial;
  uint8_t buf[256];
  size_t len = onboardingmgr__v1__onboard_node_stream_request__pack(&req, buf);
  return ep_rpc_stream_send(stream, buf, len);
}

/* The next answer on an onboarding stream (free with bench_answer_free), or NULL when the
 * stream ended (its status is then in ep_rpc_stream_close) or the answer does not parse. */
static inline bench_answer *bench_node_read(ep_rpc_stream *stream) {
  uint8_t *data = NULL;
  size_t data_len = 0;
  bench_answer *resp = NULL;
  if (ep_rpc_stream_read(stream, &data, &data_len) == 1)
    resp = onboardingmgr__v1__onboard_node_stream_response__unpack(NULL, data_len, data);
  free(data);
  return resp;
}

/* Node i opens its onboarding stream on channel and sends its identity; returns the first
 * answer (free with bench_answer_free) and leaves the stream open in *ret_stream, or NULL
 * (the stream, when one was opened, is still to be closed). timeout_ms 0: no deadline. */
static inline bench_answer *bench_node_ask(ep_rpc_channel *channel, int i, int timeout_ms, ep_rpc_stream **ret_stream) {
  *ret_stream = NULL;
  if (ep_rpc_stream_open(ret_stream, channel, EP_ONBOARDING_SERVICE_STREAM, NULL, 0, NULL, 0, timeout_ms) < 0) return NULL;
  return bench_node_send(*ret_stream, i) == 0 ? bench_node_read(*ret_stream) : NULL;
}

static inline void bench_answer_free(bench_answer *resp) {
  if (resp) onboardingmgr__v1__onboard_node_stream_response__free_unpacked(resp, NULL);
}

/* True when the answer leaves the node waiting on its open stream: REGISTERED (known, not yet
 * approved) or, with unknown, NOT_FOUND (the server does not know it and waits for it to ask again). */
static inline bool bench_answer_waits(const bench_answer *resp, bool unknown) {
  if (!resp) return false;
  if (unknown) return resp->status && resp->status->code == BENCH_NOT_FOUND;
  return resp->node_state == ONBOARDINGMGR__V1__ONBOARD_NODE_STREAM_RESPONSE__NODE_STATE__NODE_STATE_REGISTERED;
}

/* What a node received when it onboarded. */
typedef struct bench_credentials {
  char client_id[128], client_secret[64];
} bench_credentials;

/* Node i, registered and approved, onboards on channel: 0 once it holds its credentials and
 * the server ended the stream, -1 otherwise. With ret, the node keeps its credentials there. */
static inline int bench_node_onboard_keep(ep_rpc_channel *channel, int i, int timeout_ms, bench_credentials *ret) {
  ep_rpc_stream *s = NULL;
  bench_answer *resp = bench_node_ask(channel, i, timeout_ms, &s);
  int ok = resp && resp->node_state == ONBOARDINGMGR__V1__ONBOARD_NODE_STREAM_RESPONSE__NODE_STATE__NODE_STATE_ONBOARDED &&
           strlen(resp->client_secret) == 43;
  if (ok && ret) {
    snprintf(ret->client_id, sizeof ret->client_id, "%s", resp->client_id);
    snprintf(ret->client_secret, sizeof ret->client_secret, "%s", resp->client_secret);
  }
  bench_answer_free(resp);
  uint8_t *data = NULL;
  size_t data_len = 0;
  while (s && ep_rpc_stream_read(s, &data, &data_len) == 1) free(data);
  if (s) ep_rpc_stream_close(s, NULL);
  return ok ? 0 : -1;
}

static inline int bench_node_onboard(ep_rpc_channel *channel, int i, int timeout_ms) {
  return bench_node_onboard_keep(channel, i, timeout_ms, NULL);
}

/* Registers nodes first .. first+count-1 through the management API (auto_onboard: approved
 * in advance). Returns 0, or -1 with the reason on stderr. */
static inline int bench_add_hosts(ep_mgmt_client *mgmt, int first, int count, bool auto_onboard) {
  for (int i = first; i < first + count; i++) {
    char uuid[37], serial[21];
    bench_node_uuid(i, uuid);
    bench_node_serial(i, serial);
    Edgeprov__V1__AddHostRequest req = EDGEPROV__V1__ADD_HOST_REQUEST__INIT;
    req.uuid = uuid;
    req.serial = serial;
    req.auto_onboard = auto_onboard;
    ProtobufCMessage *reply = NULL;
    if (ep_mgmt_client_call(mgmt, "AddHost", &req.base, &edgeprov__v1__host_response__descriptor, &reply) < 0) {
      fprintf(stderr, "bench: AddHost: %s\n", ep_error_message());
      return -1;
    }
    protobuf_c_message_free_unpacked(reply, NULL);
  }
  return 0;
}

/* Makes dir (a mkdtemp template) with a CA (ca.pem) and an ECDSA P-256 server certificate for
 * 127.0.0.1 signed by it (tls.pem, tls.key), and writes the config's tls group into extra.
 * Returns 0, or -1 when openssl failed. */
static inline int bench_make_tls(char *dir, char *extra, size_t extra_len) {
  char cmd[2048];
  if (!mkdtemp(dir)) return -1;
  snprintf(cmd, sizeof cmd,
           "(cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem "
           "-days 1 -subj /CN=bench-ca && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tls.key "
           "-out tls.csr -subj /CN=localhost && printf 'subjectAltName=IP:127.0.0.1' > ext && openssl x509 -req -in tls.csr "
           "-CA ca.pem -CAkey ca.key -CAcreateserial -out tls.pem -days 1 -extfile ext && chmod 600 tls.key) >/dev/null 2>&1",
           dir);
  if (system(cmd) != 0) return -1;
  snprintf(extra, extra_len, "tls = { cert = \"%s/tls.pem\"; key = \"%s/tls.key\"; };", dir, dir);
  return 0;
}

static inline void bench_remove_dir(const char *dir) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

/* A line of /proc/PID/<file> ("status": "VmRSS:", "Threads:") as a number, or -1. */
static inline long bench_proc_value(pid_t pid, const char *file, const char *key) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
  FILE *f = fopen(path, "r");
  long value = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, key, strlen(key)) == 0) value = strtol(line + strlen(key), NULL, 10);
  if (f) fclose(f);
  return value;
}

static inline long bench_proc_status(pid_t pid, const char *key) { return bench_proc_value(pid, "status", key); }

/* Descriptors pid has open, or -1. */
static inline long bench_proc_fds(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
  DIR *d = opendir(path);
  if (!d) return -1;
  long n = 0;
  for (struct dirent *e; (e = readdir(d));)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

/* pid's soft limit of open files (from /proc/PID/limits), or -1. */
static inline long bench_proc_fd_limit(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/limits", (int)pid);
  FILE *f = fopen(path, "r");
  long value = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "Max open files", 14) == 0) value = strtol(line + 14, NULL, 10);
  if (f) fclose(f);
  return value;
}

/* CPU time pid has used (user + system, all its threads), in seconds, or -1. */
static inline double bench_proc_cpu_seconds(pid_t pid) {
  char path[64], text[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
  if (f) fclose(f);
  text[n] = '\0';
  const char *p = strrchr(text, ')'); /* the command name may hold spaces */
  unsigned long utime = 0, stime = 0;
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2) return -1;
  return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static inline int bench_compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The q-quantile (0..1) of sorted[0..n-1]. */
static inline double bench_quantile(const double *sorted, int n, double q) {
  if (n <= 0) return 0;
  int i = (int)(q * n);
  return sorted[i < n ? i : n - 1];
}

#endif
