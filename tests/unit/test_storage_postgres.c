/* Unit tests of plugins/storage-postgres on a real, throwaway PostgreSQL (tests/pg_cluster.sh
 * run starts it and sets PG_TEST_DIR): the storage contract suite (storage_contract.c), then
 * what is PostgreSQL's own: clear init errors without the password, a newer schema refused,
 * reconnecting after a restart and an outage, group commit with CAS conflicts from many
 * threads, and revisions in commit order across two replicas on one database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>

#include "storage_contract.h"
#include "testutil.h"

static const char *pg_dir;   /* the cluster's directory: its socket, passfile, password */
static char password[128];   /* edgeprov's password, which no message may show */

/* Runs sql on database edgeprov as the superuser (trusted over the socket). */
static void admin(const char *sql) {
  char conninfo[1024];
  snprintf(conninfo, sizeof conninfo, "host=%s dbname=edgeprov user=postgres", pg_dir);
  PGconn *conn = PQconnectdb(conninfo);
  assert_int_equal(PQstatus(conn), CONNECTION_OK);
  PGresult *res = PQexec(conn, sql);
  if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
    fail_msg("%s: %s", sql, PQresultErrorMessage(res));
  PQclear(res);
  PQfinish(conn);
}

/* Runs pg_cluster.sh VERB on the test's cluster. */
static void cluster(const char *verb) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "bash '%s' %s '%s'", getenv("PG_CLUSTER"), verb, pg_dir);
  assert_int_equal(system(cmd), 0);
}

/* Every test starts on an empty database: the plugin creates its schema again. */
static int pg_prepare(const char *dir) {
  (void)dir;
  admin("DROP TABLE IF EXISTS edgeprov_kv, edgeprov_changes, edgeprov_meta; "
        "DROP FUNCTION IF EXISTS edgeprov_txn, edgeprov_compact");
  return 0;
}

static void pg_settings(const char *dir, char *buf, size_t size) {
  (void)dir;
  snprintf(buf, size,
           "storage-postgres = { conninfo = \"host=%s dbname=edgeprov user=edgeprov\"; passfile = \"%s/passfile\"; "
           "pool_size = 4; statement_timeout_ms = 10000; connect_timeout_s = 5; };\n",
           pg_dir, pg_dir);
}

/* Another replica's commit arrives as a notification (LISTEN/NOTIFY). */
static const sc_backend pg_backend = {.plugin = "storage-postgres", .prepare = pg_prepare, .settings = pg_settings,
                                      .other_writer_ms = 300};

/* ---- init errors ---------------------------------------------------------------------- */

/* Starts the plugin with section (a whole storage-postgres section) and asserts init fails
 * with a reason containing want and neither the password nor secret. */
static void refused(const char *dir, const char *section, const char *want, const char *secret) {
  store s;
  assert_int_equal(store_open_with(&s, dir, section), 0);
  assert_null(s.st);
  assert_non_null(s.plugin);
  assert_int_equal(s.plugin->state, EP_PLUGIN_FAILED);
  print_message("refused: %s\n", s.plugin->reason);
  assert_non_null(strstr(s.plugin->reason, want));
  assert_null(strstr(s.plugin->reason, password));
  if (secret) assert_null(strstr(s.plugin->reason, secret));
  assert_null(strchr(s.plugin->reason, '\n'));
  store_close(&s);
}

static void init_errors_are_clear_and_never_show_the_password(void **state) {
  fixture *f = *state;
  store_close(&f->s);
  char section[2048], want[1024];

  /* A wrong password: the database and host are named, the password is not. */
  snprintf(section, sizeof section,
           "storage-postgres = { conninfo = \"host=%s dbname=edgeprov user=edgeprov password=Wrong-Secret-42\"; };\n",
           pg_dir);
  snprintf(want, sizeof want, "cannot connect to database \"edgeprov\" on host %s port 5432 as user \"edgeprov\"",
           pg_dir);
  refused(f->dir, section, want, "Wrong-Secret-42");
  refused(f->dir, section, "password authentication failed", "Wrong-Secret-42");

  /* Unreachable (no server on that socket), with the right password in the string. */
  snprintf(section, sizeof section,
           "storage-postgres = { conninfo = \"host=%s/nowhere dbname=edgeprov user=edgeprov password=%s\"; "
           "connect_timeout_s = 2; };\n",
           pg_dir, password);
  snprintf(want, sizeof want, "cannot connect to database \"edgeprov\" on host %s/nowhere port 5432", pg_dir);
  refused(f->dir, section, want, NULL);

  /* Invalid connection strings: libpq's reason, with a password it quotes masked. */
  refused(f->dir, "storage-postgres = { conninfo = \"host=/tmp dbname\"; };\n",
          "setting 'conninfo' is not a valid libpq connection string or URI: missing \"=\" after \"dbname\"", NULL);
  snprintf(section, sizeof section,
           "storage-postgres = { conninfo = \"postgresql://edgeprov:%s%%zz@/edgeprov?host=%s\"; };\n", password,
           pg_dir);
  refused(f->dir, section, "setting 'conninfo' is not a valid libpq connection string or URI: invalid percent", NULL);
  snprintf(section, sizeof section, "storage-postgres = { conninfo = \"host=%s password=%s bogus=1\"; };\n", pg_dir,
           password);
  refused(f->dir, section, "invalid connection option \"bogus\"", NULL);

  /* A passfile others may read (libpq would ignore it, with a warning on stderr). */
  char *loose = tu_write(f->dir, "loose.pass", "*:*:*:edgeprov:x\n");
  assert_int_equal(chmod(loose, 0644), 0);
  snprintf(section, sizeof section, "storage-postgres = { conninfo = \"host=%s dbname=edgeprov\"; passfile = \"%s\"; };\n",
           pg_dir, loose);
  refused(f->dir, section, "setting 'passfile': ", NULL);
  refused(f->dir, section, "is mode 0644; make it 0600", NULL);
  free(loose);

  /* The right password from the passfile works. */
  store_open(&f->s, f->dir);
}

static void newer_schema_is_refused_not_downgraded(void **state) {
  fixture *f = *state;
  put(&f->s, "k", "v");
  store_close(&f->s);
  admin("UPDATE edgeprov_meta SET value = 99 WHERE name = 'schema_version'");
  char section[2048], want[1024];
  pg_settings(f->dir, section, sizeof section);
  snprintf(want, sizeof want,
           "database \"edgeprov\" on host %s port 5432 as user \"edgeprov\" has schema version 99, newer than this "
           "plugin's 1: use a newer edgeprov",
           pg_dir);
  refused(f->dir, section, want, NULL);
  /* Still 99, the data untouched. */
  admin("DO $$ BEGIN IF (SELECT value FROM edgeprov_meta WHERE name = 'schema_version') <> 99 "
        "OR (SELECT count(*) FROM edgeprov_kv) <> 1 THEN RAISE 'schema changed'; END IF; END $$");
  admin("UPDATE edgeprov_meta SET value = 1 WHERE name = 'schema_version'");
  store_open(&f->s, f->dir);
  assert_int_equal(revision(&f->s), 1);
}

/* ---- restarts and outages ------------------------------------------------------------- */

typedef struct notify_waiter {
  store *s;
  uint64_t after, seen;
  int32_t result;
  struct timespec returned;
} notify_waiter;

static void *notify_wait(void *arg) {
  notify_waiter *w = arg;
  w->result = w->s->st->wait(w->s->inst, w->after, 10000, &w->seen);
  clock_gettime(CLOCK_MONOTONIC, &w->returned);
  return NULL;
}

static void reconnects_after_restart_and_outage(void **state) {
  store *s = &((fixture *)*state)->s;
  got g;
  assert_int_equal(put(s, "before", "1"), 1);
  assert_int_equal(get(s, "before", &g), 0);

  /* A restart ends every session; the very next calls succeed on new ones. */
  cluster("restart");
  assert_int_equal(put(s, "after", "2"), 2);
  assert_int_equal(get(s, "before", &g), 0);
  assert_string_equal(g.value, "1");
  assert_int_equal(revision(s), 2);

  /* During an outage calls fail with EP_EIO and name the database, and do not hang. */
  cluster("halt");
  ep_storage_op op = put_op("during", "x", EP_STORAGE_EXPECT_ANY);
  int r = txn(s, &op, 1, NULL, NULL);
  assert_int_equal(r, EP_EIO);
  print_message("txn during the outage: %s\n", message(s));
  assert_non_null(strstr(message(s), "database \"edgeprov\""));
  assert_null(strstr(message(s), password));
  assert_int_equal(get(s, "before", &g), EP_EIO);
  assert_non_null(strstr(message(s), "database \"edgeprov\""));
  uint64_t rev = 0;
  assert_int_equal(s->st->revision(s->inst, &rev), EP_EIO);

  cluster("resume");
  assert_int_equal(put(s, "back", "3"), 3);
  assert_int_equal(get(s, "during", &g), EP_ENOENT);
  change_log log;
  assert_int_equal(changes(s, 0, 100, &log), 0);
  assert_int_equal(log.count, 3);
  assert_string_equal(log.items[2].key, "back");

  /* The listener is back too: a wait in progress learns of another replica's commit as a
   * notification again (within 300 ms; without the listener it would read the revision
   * every 500 ms) once the listener has reconnected (its backoff is at most 5 s). */
  store other;
  store_open(&other, ((fixture *)*state)->dir);
  bool notified = false;
  for (int round = 0; round < 40 && !notified; round++) {
    notify_waiter w = {.s = s, .after = revision(s)};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, notify_wait, &w), 0);
    usleep(100 * 1000); /* waiting */
    uint64_t committed = put(&other, "notify", "x");
    struct timespec t0; /* acknowledged: from here the waiter may be late */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_join(thread, NULL);
    assert_int_equal(w.result, 0);
    assert_true(w.seen >= committed);
    double ms = (double)(w.returned.tv_sec - t0.tv_sec) * 1000 + (double)(w.returned.tv_nsec - t0.tv_nsec) / 1e6;
    notified = ms < 300;
    if (!notified) usleep(250 * 1000);
  }
  assert_true(notified);
  store_close(&other);
}

/* ---- group commit: CAS conflicts from many threads ------------------------------------ */

#define CAS_THREADS 16
#define CAS_INCREMENTS 25

typedef struct cas_arg {
  store *s;
  int id;
  int done, conflicts, errors, wrong_index;
  uint64_t revs[CAS_INCREMENTS];
} cas_arg;

typedef struct counter {
  uint64_t mod;
  long value;
} counter;

static int32_t read_counter(void *data, const ep_storage_record *rec) {
  counter *c = data;
  char buf[32];
  snprintf(buf, sizeof buf, "%.*s", (int)rec->value_len, (const char *)rec->value);
  c->mod = rec->mod_revision;
  c->value = atol(buf);
  return 0;
}

/* Increments "counter" CAS_INCREMENTS times by compare-and-set, each attempt also creating
 * a key of its own (op 0): a conflict on op 1 must leave that key unwritten. */
static void *cas_thread(void *p) {
  cas_arg *a = p;
  for (int attempt = 0; a->done < CAS_INCREMENTS; attempt++) {
    counter c = {0};
    if (a->s->st->get(a->s->inst, "counter", read_counter, &c) != 0) {
      a->errors++;
      continue;
    }
    char key[32], value[32];
    snprintf(key, sizeof key, "attempt/%02d/%04d", a->id, attempt);
    snprintf(value, sizeof value, "%ld", c.value + 1);
    ep_storage_op ops[] = {put_op(key, "x", EP_STORAGE_EXPECT_ABSENT), put_op("counter", value, c.mod)};
    uint64_t rev = 0;
    uint32_t failed = 99;
    int r = a->s->st->txn(a->s->inst, ops, 2, sizeof ops[0], &rev, &failed);
    if (r == 0)
      a->revs[a->done++] = rev;
    else if (r == EP_ECONFLICT)
      a->conflicts++, a->wrong_index += failed != 1;
    else
      a->errors++;
  }
  return NULL;
}

static void group_commit_conflicts_from_many_threads(void **state) {
  store *s = &((fixture *)*state)->s;
  assert_int_equal(put(s, "counter", "0"), 1);
  static cas_arg args[CAS_THREADS];
  pthread_t threads[CAS_THREADS];
  for (int i = 0; i < CAS_THREADS; i++) {
    args[i] = (cas_arg){.s = s, .id = i};
    assert_int_equal(pthread_create(&threads[i], NULL, cas_thread, &args[i]), 0);
  }
  int conflicts = 0;
  static uint64_t all[CAS_THREADS * CAS_INCREMENTS];
  for (int i = 0; i < CAS_THREADS; i++) {
    pthread_join(threads[i], NULL);
    assert_int_equal(args[i].errors, 0);
    assert_int_equal(args[i].wrong_index, 0);
    conflicts += args[i].conflicts;
    memcpy(&all[i * CAS_INCREMENTS], args[i].revs, sizeof args[i].revs);
  }
  print_message("%d increments, %d conflicts\n", CAS_THREADS * CAS_INCREMENTS, conflicts);
  assert_true(conflicts > 0); /* they did race */

  /* No increment was lost, and each success got its own revision, 2..N+1 without gaps. */
  got g;
  assert_int_equal(get(s, "counter", &g), 0);
  assert_int_equal(atol(g.value), CAS_THREADS * CAS_INCREMENTS);
  qsort(all, CAS_THREADS * CAS_INCREMENTS, sizeof all[0], compare_u64);
  for (int i = 0; i < CAS_THREADS * CAS_INCREMENTS; i++) assert_int_equal(all[i], (uint64_t)i + 2);
  assert_int_equal(revision(s), CAS_THREADS * CAS_INCREMENTS + 1);
  /* Only the successful attempts' own keys were written. */
  int n = 0;
  int32_t more = 1;
  assert_int_equal(s->st->list(s->inst, "attempt/", "", 10000, count_only, &n, NULL, &more), 0);
  assert_int_equal(n, CAS_THREADS * CAS_INCREMENTS);
}

/* ---- two replicas: revisions in commit order ------------------------------------------ */

#define REPLICA_WRITERS 4
#define REPLICA_PUTS 100

typedef struct replica_writer {
  store *s;
  int id;
  int failures;
} replica_writer;

static void *replica_write(void *p) {
  replica_writer *w = p;
  for (int i = 0; i < REPLICA_PUTS; i++) {
    char key[32];
    snprintf(key, sizeof key, "r/%d/%03d", w->id, i);
    ep_storage_op op = put_op(key, key, EP_STORAGE_EXPECT_ABSENT);
    if (w->s->st->txn(w->s->inst, &op, 1, sizeof op, NULL, NULL) != 0) w->failures++;
  }
  return NULL;
}

typedef struct follower {
  store *s;
  atomic_int *stop;
  uint64_t last;  /* last revision seen */
  int out_of_order; /* a change whose revision is not last or last + 1 */
  int failures;
  int calls;
} follower;

static int32_t follow_change(void *data, const ep_storage_change *c) {
  follower *f = data;
  if (c->revision != f->last + 1) f->out_of_order++;
  f->last = c->revision;
  return 0;
}

/* Follows the change log as a replica's watcher does: resumes after the last revision seen.
 * Were a lower revision to commit after a higher one, it would be skipped: a gap. */
static void *follow(void *p) {
  follower *f = p;
  for (;;) {
    int stopping = atomic_load(f->stop);
    uint64_t before = f->last;
    if (f->s->st->changes(f->s->inst, f->last, 7, follow_change, f) != 0) f->failures++;
    f->calls++;
    if (stopping && f->last == before) break; /* the writers are done and the log is read to its end */
  }
  return NULL;
}

static void revisions_in_commit_order_across_replicas(void **state) {
  fixture *fx = *state;
  char *other_dir = tu_mkdtemp();
  assert_non_null(other_dir);
  store b; /* a second replica on the same database */
  store_open(&b, other_dir);
  store *replicas[2] = {&fx->s, &b};

  atomic_int stop = 0;
  follower f = {.s = &fx->s, .stop = &stop};
  pthread_t follower_thread;
  assert_int_equal(pthread_create(&follower_thread, NULL, follow, &f), 0);
  static replica_writer writers[2 * REPLICA_WRITERS];
  pthread_t threads[2 * REPLICA_WRITERS];
  for (int i = 0; i < 2 * REPLICA_WRITERS; i++) {
    writers[i] = (replica_writer){.s = replicas[i % 2], .id = i};
    assert_int_equal(pthread_create(&threads[i], NULL, replica_write, &writers[i]), 0);
  }
  for (int i = 0; i < 2 * REPLICA_WRITERS; i++) {
    pthread_join(threads[i], NULL);
    assert_int_equal(writers[i].failures, 0);
  }
  atomic_store(&stop, 1);
  pthread_join(follower_thread, NULL);
  print_message("follower: %d calls\n", f.calls);
  assert_int_equal(f.failures, 0);
  assert_int_equal(f.out_of_order, 0);
  assert_int_equal(f.last, 2 * REPLICA_WRITERS * REPLICA_PUTS);
  assert_int_equal(revision(&b), 2 * REPLICA_WRITERS * REPLICA_PUTS);
  store_close(&b);
  tu_rmdir(other_dir);
}

int main(void) {
  pg_dir = getenv("PG_TEST_DIR");
  if (!pg_dir || !getenv("PG_CLUSTER")) {
    /* Run again on a cluster of our own, which pg_cluster.sh removes afterwards. */
    char self[1024];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) return 1;
    self[len] = '\0';
    fflush(NULL);
    execlp("bash", "bash", PG_CLUSTER_SCRIPT, "run", self, (char *)NULL);
    perror("cannot run " PG_CLUSTER_SCRIPT);
    return 1;
  }
  char path[1024];
  snprintf(path, sizeof path, "%s/password", pg_dir);
  FILE *fp = fopen(path, "r");
  if (!fp || !fgets(password, sizeof password, fp) || strlen(password) < 8) {
    fprintf(stderr, "cannot read %s\n", path);
    return 1;
  }
  fclose(fp);
  int failed = sc_run(&pg_backend);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(init_errors_are_clear_and_never_show_the_password, setup, teardown),
      cmocka_unit_test_setup_teardown(newer_schema_is_refused_not_downgraded, setup, teardown),
      cmocka_unit_test_setup_teardown(reconnects_after_restart_and_outage, setup, teardown),
      cmocka_unit_test_setup_teardown(group_commit_conflicts_from_many_threads, setup, teardown),
      cmocka_unit_test_setup_teardown(revisions_in_commit_order_across_replicas, setup, teardown),
  };
  return failed + cmocka_run_group_tests_name("storage_postgres", tests, NULL, NULL);
}
