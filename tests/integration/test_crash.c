/* Crash consistency: a real edgeprovd is killed with SIGKILL at random moments (at least 20
 * times) while 1000 hosts are registered through the management API. After each restart
 * every acknowledged registration must be present, and at the end every record decodes and
 * SQLite's integrity check passes.
 * Usage: test_crash EDGEPROVD PLUGIN_DIR */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon_harness.h"
#include "base/error.h"

#define HOSTS 1000
#define KILLS 24

static harness h;
static atomic_int registered;   /* registrations attempted so far */
static atomic_int daemon_epoch; /* bumped by every restart */
static atomic_int checked_epoch; /* the restart whose survivors were last checked */
static bool acked[HOSTS];       /* acknowledged by the daemon */

static void die(const char *what) {
  fprintf(stderr, "test_crash: %s (daemon log: %s)\n", what, h.log_path);
  if (h.pid > 0) kill(h.pid, SIGKILL);
  exit(1);
}

static ep_mgmt_client *connect_client(void) {
  ep_mgmt_client *client = NULL;
  if (ep_mgmt_client_new(&client, h.address, NULL, NULL) < 0) die(ep_error_message());
  return client;
}

static double restart_seconds; /* summed time from exec to the first answer */

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void start_daemon(void) {
  double start = now_seconds();
  if (harness_start(&h) < 0) die("edgeprovd did not answer within 10 s");
  restart_seconds += now_seconds() - start;
  atomic_fetch_add(&daemon_epoch, 1);
}

/* Counts the acknowledged hosts missing from the daemon's inventory (all pages). */
static int missing_acknowledged(int *ret_present) {
  bool present[HOSTS] = {0};
  ep_mgmt_client *client = connect_client();
  char *token = strdup("");
  int total = 0;
  while (token) {
    Edgeprov__V1__ListRequest req = EDGEPROV__V1__LIST_REQUEST__INIT;
    req.page_size = 500;
    req.page_token = token;
    Edgeprov__V1__ListHostsResponse *resp = NULL;
    if (ep_mgmt_client_call(client, "ListHosts", &req.base, &edgeprov__v1__list_hosts_response__descriptor,
                            (ProtobufCMessage **)&resp) < 0)
      die(ep_error_message());
    free(token);
    token = resp->next_page_token[0] ? strdup(resp->next_page_token) : NULL;
    for (size_t i = 0; i < resp->n_hosts; i++) {
      int index = atoi(resp->hosts[i]->uuid + 24);
      if (index < 0 || index >= HOSTS) die("unexpected host in the inventory");
      present[index] = true;
      total++;
    }
    protobuf_c_message_free_unpacked(&resp->base, NULL);
  }
  ep_mgmt_client_free(client);
  int missing = 0;
  for (int i = 0; i < HOSTS; i++)
    if (acked[i] && !present[i]) {
      fprintf(stderr, "test_crash: acknowledged host %d is missing\n", i);
      missing++;
    }
  if (ret_present) *ret_present = total;
  return missing;
}

/* Kills the daemon when registration reaches each of KILLS random points, at a random
 * sub-millisecond moment, and restarts it. */
static void *killer(void *arg) {
  int *points = arg;
  for (int k = 0; k < KILLS; k++) {
    /* Kill again only once the last restart was checked, so no check runs mid-kill. */
    while (atomic_load(&registered) < points[k] || atomic_load(&checked_epoch) != atomic_load(&daemon_epoch))
      usleep(200);
    usleep((useconds_t)(rand() % 3000));
    harness_signal(&h, SIGKILL);
    start_daemon();
  }
  return NULL;
}

static int compare_ints(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: test_crash EDGEPROVD PLUGIN_DIR\n");
    return 2;
  }
  if (harness_init(&h, argv[1], argv[2]) < 0) die("cannot prepare the test directory");
  srand((unsigned)time(NULL) ^ (unsigned)getpid());

  int points[KILLS];
  for (int k = 0; k < KILLS; k++) points[k] = 10 + rand() % (HOSTS - 20);
  qsort(points, KILLS, sizeof points[0], compare_ints);

  start_daemon();
  atomic_store(&checked_epoch, atomic_load(&daemon_epoch));
  pthread_t killer_thread;
  pthread_create(&killer_thread, NULL, killer, points);

  int verified_epoch = atomic_load(&daemon_epoch), retries = 0, verifications = 0;
  ep_mgmt_client *client = connect_client();
  for (int i = 0; i < HOSTS;) {
    char uuid[37], serial[21];
    snprintf(uuid, sizeof uuid, "00000000-0000-4000-8000-%012d", i);
    snprintf(serial, sizeof serial, "CRASH%05d", i);
    Edgeprov__V1__AddHostRequest req = EDGEPROV__V1__ADD_HOST_REQUEST__INIT;
    req.uuid = uuid;
    req.serial = serial;
    atomic_store(&registered, i);
    ProtobufCMessage *reply = NULL;
    int r = ep_mgmt_client_call(client, "AddHost", &req.base, &edgeprov__v1__host_response__descriptor, &reply);
    if (r == 0 || r == EP_EEXIST) {
      /* EEXIST: an earlier attempt committed but its answer was lost in a kill. */
      protobuf_c_message_free_unpacked(reply, NULL);
      acked[i++] = true;
      continue;
    }
    /* The daemon is down: wait for the restart, then check what it acknowledged. */
    retries++;
    for (int waited = 0; atomic_load(&daemon_epoch) == verified_epoch; waited++) {
      if (waited > 10000) {
        fprintf(stderr, "test_crash: AddHost %d failed and no restart followed: %s\n", i, ep_error_message());
        die("a registration failed while the daemon was up");
      }
      usleep(1000);
    }
    ep_mgmt_client_free(client);
    client = connect_client();
    verified_epoch = atomic_load(&daemon_epoch);
    if (missing_acknowledged(NULL) > 0) die("acknowledged registrations were lost in a crash");
    atomic_store(&checked_epoch, verified_epoch);
    verifications++;
  }
  atomic_store(&registered, HOSTS);
  pthread_join(killer_thread, NULL);
  ep_mgmt_client_free(client);

  int present = 0;
  if (missing_acknowledged(&present) > 0) die("acknowledged registrations were lost");
  if (present != HOSTS) die("the inventory does not hold exactly the registered hosts");
  int status = harness_signal(&h, SIGTERM);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) die("edgeprovd did not stop cleanly");

  char db_path[160];
  snprintf(db_path, sizeof db_path, "%s/inventory.sqlite", h.dir);
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, NULL) != SQLITE_OK || sqlite3_step(stmt) != SQLITE_ROW)
    die("cannot run the integrity check");
  const char *verdict = (const char *)sqlite3_column_text(stmt, 0);
  int ok = verdict && strcmp(verdict, "ok") == 0;
  printf("integrity_check: %s\n", verdict ? verdict : "(null)");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  if (!ok) die("the database is corrupt");

  printf("%d kills, %d failed calls retried, %d checks after restarts, %d hosts present, all acknowledged; "
         "mean start to first answer %.0f ms\n",
         KILLS, retries, verifications, present, restart_seconds * 1000.0 / (KILLS + 1));
  harness_cleanup(&h);
  printf("1 passed, 0 failed\n");
  return 0;
}
