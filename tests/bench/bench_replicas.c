/* Benchmark and replica test: durable onboardings per second of edgeprovd on SQLite (one
 * replica), PostgreSQL (one replica) and PostgreSQL (several replicas on one database), each
 * node on a TLS connection of its own, printed side by side in one run; and, with --haproxy,
 * --kill and --restart-db, the replica test of issue 17: the nodes onboard through HAProxy
 * (deploy/haproxy/edgeprov.cfg) while one replica is killed with SIGKILL, or PostgreSQL is
 * restarted, in the middle. Either way every node must end ONBOARDED with one credential, and
 * no call may hang (each has a deadline; a failed one is retried, as an agent would).
 *
 * PostgreSQL is a throwaway cluster (tests/pg_cluster.sh): without PG_TEST_DIR the program
 * runs itself under `pg_cluster.sh run`. Replicas listen on 127.0.0.2, 127.0.0.3, ... with the
 * same ports, as on separate machines; nodes come from 127.A.B.C (16 a source address).
 * Run with --help for the options. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include "bench_nodes.h"
#include "daemon_harness.h"
#include "testutil.h"

#define REPLICAS_MAX 3
#define PER_ADDRESS 16
#define CALL_TIMEOUT_MS 10000
#define NODE_GIVES_UP_S 60 /* a node asks again for this long, as an agent would for ever */

typedef struct options {
  char daemon[PATH_MAX], plugins[PATH_MAX], haproxy_cfg[PATH_MAX];
  int nodes, concurrency, replicas;
  bool haproxy, kill, restart_db, only_postgres;
} options;

static options opt = {.nodes = 2000, .concurrency = 64, .replicas = 3};
static char *ca_pem, tls_dir[64] = "/tmp/edgeprov-replicas-XXXXXX";
static int grpc_port, https_port, front_port, front_https_port;

/* One configuration's figures. */
typedef struct result {
  const char *name;
  int replicas, done, failed, retries;
  double seconds, p50_ms, p99_ms;
  bool checked; /* every node ONBOARDED with one credential */
  char error[256];
} result;

/* ---- the replicas ---------------------------------------------------------------------------- */

typedef struct cluster {
  bool postgres;
  int count;
  harness h[REPLICAS_MAX];
  pid_t haproxy;
} cluster;

static const char *replica_address(int i, char out[16]) {
  snprintf(out, 16, "127.0.0.%d", (i + 2) & 0xff);
  return out;
}

/* Writes replica i's config and starts it (harness_start waits for its management API). */
static int start_replica(cluster *c, int i) {
  harness *h = &c->h[i];
  memset(h, 0, sizeof *h);
  h->daemon_path = opt.daemon;
  snprintf(h->dir, sizeof h->dir, "/tmp/edgeprov-replica-XXXXXX");
  if (!mkdtemp(h->dir)) return -1;
  char dir[sizeof h->dir];
  memcpy(dir, h->dir, sizeof dir);
  snprintf(h->address, sizeof h->address, "unix:%s/mgmt.sock", dir);
  snprintf(h->config_path, sizeof h->config_path, "%s/site.conf", dir);
  snprintf(h->log_path, sizeof h->log_path, "%s/edgeprovd.log", dir);
  FILE *f = fopen(h->config_path, "w");
  if (!f) return -1;
  char ip[16];
  replica_address(i, ip);
  const char *pg = getenv("PG_TEST_DIR");
  fprintf(f,
          "listen = { management = \"%s\"; grpc = \"%s:%d\"; https = \"%s:%d\"; };\n"
          "paths = { data = \"%s\"; plugins = [ \"%s\" ]; };\n"
          "tls = { cert = \"%s/tls.pem\"; key = \"%s/tls.key\"; ca = \"%s/ca.pem\"; };\n"
          "auth-local = { key_file = \"%s/signing-key.pem\"; };\n"
          /* a cut onboarding's credentials are replaced after 15 s: statements end within 5 s */
          "southbound = { unfinished_onboarding_s = 15; };\n",
          h->address, ip, grpc_port, ip, https_port, h->dir, opt.plugins, tls_dir, tls_dir, tls_dir, tls_dir);
  if (c->postgres)
    fprintf(f,
            "plugins = { enabled = [ \"storage-postgres\", \"auth-local\" ]; required = [ \"storage-postgres\" ]; };\n"
            "storage-postgres = { conninfo = \"host=%s dbname=edgeprov user=edgeprov\"; passfile = \"%s/passfile\"; "
            "statement_timeout_ms = 5000; };\n",
            pg, pg);
  else
    fprintf(f, "plugins = { enabled = [ \"storage-sqlite\", \"auth-local\" ]; required = [ \"storage-sqlite\" ]; };\n");
  fclose(f);
  return harness_start(h);
}

static void start_haproxy(cluster *c) {
  char grpc[32], https[32], port[8], hport[8];
  snprintf(grpc, sizeof grpc, "127.0.0.1:%d", front_port);
  snprintf(https, sizeof https, "127.0.0.1:%d", front_https_port);
  snprintf(port, sizeof port, "%d", grpc_port);
  snprintf(hport, sizeof hport, "%d", https_port);
  c->haproxy = fork();
  if (c->haproxy == 0) {
    setenv("EDGEPROV_FRONT_GRPC", grpc, 1);
    setenv("EDGEPROV_FRONT_HTTPS", https, 1);
    setenv("EDGEPROV_R1", "127.0.0.2", 1);
    setenv("EDGEPROV_R2", "127.0.0.3", 1);
    setenv("EDGEPROV_R3", "127.0.0.4", 1);
    setenv("EDGEPROV_GRPC_PORT", port, 1);
    setenv("EDGEPROV_HTTPS_PORT", hport, 1);
    if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) _exit(126);
    execlp("haproxy", "haproxy", "-db", "-f", opt.haproxy_cfg, (char *)NULL);
    _exit(127);
  }
  sleep(3); /* its first health checks */
}

static void stop_cluster(cluster *c) {
  if (c->haproxy > 0) {
    kill(c->haproxy, SIGTERM);
    waitpid(c->haproxy, NULL, 0);
  }
  for (int i = 0; i < c->count; i++) {
    if (c->h[i].pid > 0) harness_signal(&c->h[i], SIGTERM);
    harness_cleanup(&c->h[i]);
  }
}

/* Runs SQL on the throwaway cluster as its superuser. */
static int psql(const char *sql, char *out, size_t cap) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "psql -h '%s' -U postgres -d edgeprov -Atqc \"%s\" 2>/dev/null", getenv("PG_TEST_DIR"), sql);
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  size_t n = out ? fread(out, 1, cap - 1, p) : 0;
  if (out) out[n] = '\0';
  return pclose(p) == 0 ? 0 : -1;
}

/* ---- the nodes --------------------------------------------------------------------------------- */

typedef struct load {
  cluster *c;
  atomic_int next, done, failed, retries;
  double *latency;
  bench_credentials *credentials; /* what each node received */
  int kill_at; /* the node whose turn kills replica 0 or restarts PostgreSQL (-1: none) */
} load;

static ep_rpc_channel *node_channel(const char *target, int k) {
  char source[32];
  int a = k / PER_ADDRESS;
  snprintf(source, sizeof source, "127.%d.%d.%d", 1 + a / (256 * 254), a / 254 % 256, a % 254 + 1);
  ep_rpc_tls tls = {.ca_pem = ca_pem};
  ep_rpc_channel_options how = {.source_address = source, .own_connection = true};
  ep_rpc_channel *channel = NULL;
  return ep_rpc_channel_new_with(&channel, target, &tls, &how) == 0 ? channel : NULL;
}

static void disrupt(load *l) {
  if (opt.kill) {
    kill(l->c->h[0].pid, SIGKILL);
    waitpid(l->c->h[0].pid, NULL, 0);
    l->c->h[0].pid = 0;
  }
  if (opt.restart_db) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "bash '%s' restart '%s' >/dev/null 2>&1", PG_CLUSTER_SCRIPT, getenv("PG_TEST_DIR"));
    if (system(cmd) != 0) fprintf(stderr, "bench_replicas: restarting PostgreSQL failed\n");
  }
}

static void *node_thread(void *arg) {
  load *l = arg;
  for (int k; (k = atomic_fetch_add(&l->next, 1)) < opt.nodes;) {
    if (k == l->kill_at) disrupt(l);
    double start = bench_now();
    int ok = -1;
    for (int attempt = 0; ok < 0 && bench_now() - start < NODE_GIVES_UP_S; attempt++) {
      char target[32], ip[16];
      if (opt.haproxy) snprintf(target, sizeof target, "127.0.0.1:%d", front_port);
      else snprintf(target, sizeof target, "%s:%d", replica_address((k + attempt) % l->c->count, ip), grpc_port);
      ep_rpc_channel *channel = node_channel(target, k);
      ok = channel ? bench_node_onboard_keep(channel, k, CALL_TIMEOUT_MS, &l->credentials[k]) : -1;
      ep_rpc_channel_free(channel);
      if (ok < 0) {
        atomic_fetch_add(&l->retries, 1);
        usleep(100000 + (useconds_t)(k % 7) * 30000); /* back off, with jitter */
      }
    }
    l->latency[k] = (bench_now() - start) * 1000;
    atomic_fetch_add(ok == 0 ? &l->done : &l->failed, 1);
  }
  return NULL;
}

static size_t discard_body(char *data, size_t size, size_t count, void *user) {
  (void)data, (void)user;
  return size * count;
}

/* Every node's credentials get a token at the token endpoint of url (HAProxy's, or a live
 * replica's): what a node received is what the store holds. */
static bool check_credentials(const load *l, const char *url, result *r) {
  char ca_file[128];
  snprintf(ca_file, sizeof ca_file, "%s/ca.pem", tls_dir);
  CURL *curl = curl_easy_init();
  if (!curl) return false;
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard_body);
  int refused = 0, first = -1;
  long first_status = 0;
  for (int i = 0; i < opt.nodes; i++) {
    const bench_credentials *cr = &l->credentials[i];
    char *id = curl_easy_escape(curl, cr->client_id, 0), *secret = curl_easy_escape(curl, cr->client_secret, 0);
    char form[512];
    snprintf(form, sizeof form, "grant_type=client_credentials&client_id=%s&client_secret=%s", id ? id : "",
             secret ? secret : "");
    curl_free(id);
    curl_free(secret);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, form);
    long status = 0;
    if (curl_easy_perform(curl) != CURLE_OK || curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK ||
        status != 200) {
      if (refused++ == 0) first = i, first_status = status;
    }
  }
  curl_easy_cleanup(curl);
  if (refused)
    snprintf(r->error, sizeof r->error, "%d of %d nodes' credentials got no token (first: node %d, HTTP %ld)", refused,
             opt.nodes, first, first_status);
  return refused == 0;
}

/* Every node ONBOARDED, one credential each (one store key per node). */
static bool check_store(cluster *c, result *r) {
  int live = c->h[0].pid > 0 ? 0 : 1;
  ep_mgmt_client *mgmt = NULL;
  int onboarded = 0;
  if (ep_mgmt_client_new(&mgmt, c->h[live].address, NULL, NULL) < 0) return false;
  for (int i = 0; i < opt.nodes; i++) {
    char uuid[37];
    bench_node_uuid(i, uuid);
    Edgeprov__V1__GetHostRequest req = EDGEPROV__V1__GET_HOST_REQUEST__INIT;
    req.uuid = uuid;
    Edgeprov__V1__HostResponse *resp = NULL;
    if (ep_mgmt_client_call(mgmt, "GetHost", &req.base, &edgeprov__v1__host_response__descriptor,
                            (ProtobufCMessage **)&resp) == 0) {
      onboarded += resp->host->current_state == EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED;
      protobuf_c_message_free_unpacked(&resp->base, NULL);
    }
  }
  ep_mgmt_client_free(mgmt);
  if (onboarded != opt.nodes) {
    snprintf(r->error, sizeof r->error, "%d of %d nodes ONBOARDED", onboarded, opt.nodes);
    return false;
  }
  if (c->postgres) {
    char out[64] = "";
    if (psql("SELECT count(*) FROM edgeprov_kv WHERE key LIKE 'identity/local/%'", out, sizeof out) < 0 ||
        atoi(out) != opt.nodes) {
      snprintf(r->error, sizeof r->error, "%d credentials for %d nodes", atoi(out), opt.nodes);
      return false;
    }
  }
  return true;
}

static void run(result *r, bool postgres, int replicas) {
  cluster c = {.postgres = postgres, .count = replicas};
  r->replicas = replicas;
  if (postgres && psql("DROP TABLE IF EXISTS edgeprov_kv, edgeprov_changes, edgeprov_meta; "
                       "DROP FUNCTION IF EXISTS edgeprov_txn, edgeprov_compact",
                       NULL, 0) < 0) {
    snprintf(r->error, sizeof r->error, "cannot empty the database");
    return;
  }
  for (int i = 0; i < replicas; i++)
    if (start_replica(&c, i) < 0) {
      snprintf(r->error, sizeof r->error, "replica %d did not start (log: %s)", i, c.h[i].log_path);
      stop_cluster(&c);
      return;
    }
  ep_mgmt_client *mgmt = NULL;
  int rc = ep_mgmt_client_new(&mgmt, c.h[0].address, NULL, NULL);
  if (rc == 0) rc = bench_add_hosts(mgmt, 0, opt.nodes, true);
  ep_mgmt_client_free(mgmt);
  if (rc < 0) {
    snprintf(r->error, sizeof r->error, "registering the nodes failed");
    stop_cluster(&c);
    return;
  }
  if (opt.haproxy) start_haproxy(&c);
  load l = {.c = &c, .latency = calloc((size_t)opt.nodes, sizeof(double)),
            .credentials = calloc((size_t)opt.nodes, sizeof(bench_credentials)),
            .kill_at = opt.kill || opt.restart_db ? opt.nodes / 2 : -1};
  pthread_t threads[256];
  int n = opt.concurrency;
  double start = bench_now();
  for (int i = 0; i < n; i++) pthread_create(&threads[i], NULL, node_thread, &l);
  for (int i = 0; i < n; i++) pthread_join(threads[i], NULL);
  r->seconds = bench_now() - start;
  r->done = atomic_load(&l.done);
  r->failed = atomic_load(&l.failed);
  r->retries = atomic_load(&l.retries);
  qsort(l.latency, (size_t)opt.nodes, sizeof(double), bench_compare_doubles);
  r->p50_ms = bench_quantile(l.latency, opt.nodes, 0.5);
  r->p99_ms = bench_quantile(l.latency, opt.nodes, 0.99);
  free(l.latency);
  char url[96], ip[16];
  if (opt.haproxy) snprintf(url, sizeof url, "https://127.0.0.1:%d/oauth2/token", front_https_port);
  else snprintf(url, sizeof url, "https://%s:%d/oauth2/token", replica_address(c.h[0].pid > 0 ? 0 : 1, ip), https_port);
  r->checked = check_store(&c, r) && check_credentials(&l, url, r);
  explicit_bzero(l.credentials, (size_t)opt.nodes * sizeof *l.credentials);
  free(l.credentials);
  stop_cluster(&c);
}

/* ---- main ---------------------------------------------------------------------------------------- */

static void usage(FILE *out) {
  fprintf(out,
          "usage: bench_replicas [OPTIONS] EDGEPROVD PLUGIN_DIR\n"
          "Durable onboardings/s on SQLite (1 replica), PostgreSQL (1 replica) and PostgreSQL (N replicas),\n"
          "each node on a TLS connection of its own; a throwaway PostgreSQL cluster of its own.\n"
          "  --nodes N          nodes per configuration (default 2000)\n"
          "  --concurrency C    nodes onboarding at once (default 64)\n"
          "  --replicas N       replicas of the last configuration, 2..3 (default 3)\n"
          "  --haproxy CFG      PostgreSQL with N replicas only, the nodes through HAProxy with CFG\n"
          "                     (deploy/haproxy/edgeprov.cfg)\n"
          "  --kill             ... and replica 1 killed (SIGKILL) half-way\n"
          "  --restart-db       ... and PostgreSQL restarted half-way\n"
          "Exit status 0 when every node of every configuration ended ONBOARDED with one credential, and the\n"
          "credentials each node received get a token.\n");
}

int main(int argc, char **argv) {
  static const struct option longs[] = {{"nodes", required_argument, NULL, 'n'},   {"concurrency", required_argument, NULL, 'c'},
                                        {"replicas", required_argument, NULL, 'r'}, {"haproxy", required_argument, NULL, 'H'},
                                        {"kill", no_argument, NULL, 'k'},          {"restart-db", no_argument, NULL, 'R'},
                                        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
  for (int ch; (ch = getopt_long(argc, argv, "h", longs, NULL)) != -1;) {
    if (ch == 'n') opt.nodes = atoi(optarg);
    else if (ch == 'c') opt.concurrency = atoi(optarg);
    else if (ch == 'r') opt.replicas = atoi(optarg);
    else if (ch == 'H') opt.haproxy = true, snprintf(opt.haproxy_cfg, sizeof opt.haproxy_cfg, "%s", optarg);
    else if (ch == 'k') opt.kill = true;
    else if (ch == 'R') opt.restart_db = true;
    else if (ch == 'h') return usage(stdout), 0;
    else return usage(stderr), 2;
  }
  if (argc - optind != 2 || opt.nodes < 1 || opt.concurrency < 1 || opt.concurrency > 256 || opt.replicas < 2 ||
      opt.replicas > REPLICAS_MAX || ((opt.kill || opt.restart_db) && !opt.haproxy))
    return usage(stderr), 2;
  /* Paths may be relative: resolved now, as the replicas' configs and haproxy need them whole. */
  const char *paths[] = {argv[optind], argv[optind + 1], opt.haproxy ? opt.haproxy_cfg : NULL};
  char *resolved[] = {opt.daemon, opt.plugins, opt.haproxy_cfg};
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    char given[PATH_MAX];
    if (!paths[i]) continue;
    snprintf(given, sizeof given, "%s", paths[i]); /* haproxy_cfg is resolved onto itself */
    if (!realpath(given, resolved[i])) {
      fprintf(stderr, "bench_replicas: %s: %s\n", given, strerror(errno));
      return 2;
    }
  }
  if (!getenv("PG_TEST_DIR")) { /* a throwaway cluster around this very run */
    char **args = calloc((size_t)argc + 4, sizeof *args);
    args[0] = "bash";
    args[1] = PG_CLUSTER_SCRIPT;
    args[2] = "run";
    for (int i = 0; i < argc; i++) args[3 + i] = argv[i];
    execvp("bash", args);
    perror("bench_replicas: bash");
    return 2;
  }
  char extra[512], cmd[512];
  if (bench_make_tls(tls_dir, extra, sizeof extra) < 0) return fprintf(stderr, "bench_replicas: openssl failed\n"), 1;
  /* the certificate must name every replica's address */
  snprintf(cmd, sizeof cmd,
           "cd %s && printf 'subjectAltName=IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.3,IP:127.0.0.4' >ext && "
           "openssl x509 -req -in tls.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out tls.pem -days 1 -extfile ext "
           ">/dev/null 2>&1 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out signing-key.pem "
           "2>/dev/null && chmod 600 signing-key.pem",
           tls_dir);
  char path[128];
  snprintf(path, sizeof path, "%s/ca.pem", tls_dir);
  if (system(cmd) != 0 || !(ca_pem = tu_slurp(path))) return fprintf(stderr, "bench_replicas: openssl failed\n"), 1;
  grpc_port = tu_free_port();
  https_port = tu_free_port();
  front_port = tu_free_port();
  front_https_port = tu_free_port();

  result results[3] = {{.name = "SQLite, 1 replica"}, {.name = "PostgreSQL, 1 replica"}, {.name = "PostgreSQL, N replicas"}};
  int first = opt.haproxy ? 2 : 0;
  if (!opt.haproxy) run(&results[0], false, 1);
  if (!opt.haproxy) run(&results[1], true, 1);
  run(&results[2], true, opt.replicas);
  bench_remove_dir(tls_dir);

  printf("%d nodes, %d onboarding at once, each on a TLS connection of its own%s%s%s\n", opt.nodes, opt.concurrency,
         opt.haproxy ? ", through HAProxy" : "", opt.kill ? ", replica 1 killed half-way" : "",
         opt.restart_db ? ", PostgreSQL restarted half-way" : "");
  printf("%-28s", "");
  for (int i = first; i < 3; i++) printf(" %22s", i == 2 ? "PostgreSQL" : results[i].name);
  printf("\n%-28s", "replicas");
  for (int i = first; i < 3; i++) printf(" %22d", results[i].replicas);
  printf("\n%-28s", "durable onboardings/s");
  for (int i = first; i < 3; i++) printf(" %22.0f", results[i].seconds > 0 ? results[i].done / results[i].seconds : 0);
  printf("\n%-28s", "p50 / p99 latency, ms");
  for (int i = first; i < 3; i++) printf(" %14.1f / %5.1f", results[i].p50_ms, results[i].p99_ms);
  printf("\n%-28s", "onboarded / failed");
  for (int i = first; i < 3; i++) printf(" %15d / %4d", results[i].done, results[i].failed);
  printf("\n%-28s", "calls retried");
  for (int i = first; i < 3; i++) printf(" %22d", results[i].retries);
  printf("\n%-28s", "ONBOARDED, 1 credential, token");
  for (int i = first; i < 3; i++) printf(" %22s", results[i].checked ? "yes" : "NO");
  printf("\n");
  int status = 0;
  for (int i = first; i < 3; i++)
    if (!results[i].checked || results[i].failed) {
      fprintf(stderr, "bench_replicas: %s: %s\n", results[i].name, results[i].error[0] ? results[i].error : "nodes failed");
      status = 1;
    }
  return status;
}
