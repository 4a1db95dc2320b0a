/* Unit tests of plugins/storage-sqlite: the storage contract suite (storage_contract.c) on
 * the real plugin loaded through the core, then what is SQLite's own: file modes, the path
 * setting, acknowledged writes surviving SIGKILL (checked with SQLite's integrity check) and
 * the WAL staying bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <edgeprov/storage.h>
#include <sqlite3.h>

#include "storage_contract.h"
#include "testutil.h"

#define DB_FILE "inventory.sqlite"

/* ---- the file ------------------------------------------------------------------------- */

static mode_t file_mode(const char *dir, const char *name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  struct stat st;
  if (stat(path, &st) < 0) return (mode_t)-1;
  return st.st_mode & 07777;
}
/* The database and its WAL are 0600 (checked by the contract's reopen test). */
static void files_are_private(const char *dir) {
  assert_int_equal(file_mode(dir, DB_FILE), 0600);
  assert_int_equal(file_mode(dir, DB_FILE "-wal"), 0600);
}

static void settings_path_and_refusals(void **state) {
  fixture *f = *state;
  store_close(&f->s);
  char extra[2048];
  snprintf(extra, sizeof extra,
           "storage-sqlite = { path = \"%s/nested/deeper/store.db\"; busy_timeout_ms = 100; group_commit_max = 1; };\n",
           f->dir);
  store other;
  assert_int_equal(store_open_with(&other, f->dir, extra), 0);
  assert_non_null(other.st);
  assert_int_equal(put(&other, "x", "y"), 1);
  assert_int_equal(file_mode(f->dir, "nested"), 0700);
  assert_int_equal(file_mode(f->dir, "nested/deeper"), 0700);
  assert_int_equal(file_mode(f->dir, "nested/deeper/store.db"), 0600);
  store_close(&other);

  /* An existing file readable by others is narrowed to 0600. */
  char path[1024];
  snprintf(path, sizeof path, "%s/nested/deeper/store.db", f->dir);
  assert_int_equal(chmod(path, 0644), 0);
  assert_int_equal(store_open_with(&other, f->dir, extra), 0);
  assert_non_null(other.st);
  assert_int_equal(file_mode(f->dir, "nested/deeper/store.db"), 0600);
  store_close(&other);

  /* A relative path fails init with a message naming the setting. */
  assert_int_equal(store_open_with(&other, f->dir, "storage-sqlite = { path = \"relative.db\"; };\n"), 0);
  assert_null(other.st);
  assert_non_null(other.plugin);
  assert_int_equal(other.plugin->state, EP_PLUGIN_FAILED);
  assert_non_null(strstr(other.plugin->reason, "setting 'path': 'relative.db' is not an absolute path"));
  store_close(&other);

  store_open(&f->s, f->dir); /* for teardown */
}

/* ---- crash durability ----------------------------------------------------------------- */

#define CRASH_ROUNDS 6
#define CRASH_THREADS 4

typedef struct crash_arg {
  store *s;
  int fd;
  int round;
  int id;
} crash_arg;

/* In the child: commits forever, reporting each acknowledged "revision key" on the pipe. */
static void *crash_writer(void *p) {
  crash_arg *a = p;
  for (int i = 0;; i++) {
    char key[64], line[128];
    snprintf(key, sizeof key, "crash/%d/%d/%06d", a->round, a->id, i);
    /* Writers other than 0 also overwrite a shared key, so transactions differ in size. */
    ep_storage_op ops[] = {put_op(key, key, EP_STORAGE_EXPECT_ABSENT),
                           put_op("crash/last", key, EP_STORAGE_EXPECT_ANY)};
    uint64_t rev = 0;
    if (a->s->st->txn(a->s->inst, ops, a->id == 0 ? 1 : 2, sizeof ops[0], &rev, NULL) != 0) _exit(4);
    int len = snprintf(line, sizeof line, "%llu %s\n", (unsigned long long)rev, key);
    if (write(a->fd, line, (size_t)len) != len) _exit(5); /* < PIPE_BUF: atomic */
  }
  return NULL;
}

static void crash_child(const char *dir, int fd, int round) {
  store s;
  if (store_open_with(&s, dir, NULL) < 0 || !s.st) _exit(3);
  crash_arg args[CRASH_THREADS];
  pthread_t threads[CRASH_THREADS];
  for (int i = 0; i < CRASH_THREADS; i++) {
    args[i] = (crash_arg){.s = &s, .fd = fd, .round = round, .id = i};
    if (pthread_create(&threads[i], NULL, crash_writer, &args[i]) != 0) _exit(6);
  }
  sleep(20); /* the parent kills us long before */
  _exit(7);
}

typedef struct acks {
  uint64_t *revs;
  char (*keys)[64];
  size_t count, cap;
} acks;

static void acks_parse(acks *a, char *buf, size_t *len) {
  char *start = buf, *nl;
  while ((nl = memchr(start, '\n', (size_t)(buf + *len - start)))) {
    *nl = '\0';
    if (a->count == a->cap) {
      a->cap = a->cap ? a->cap * 2 : 1024;
      a->revs = realloc(a->revs, a->cap * sizeof *a->revs);
      a->keys = realloc(a->keys, a->cap * sizeof *a->keys);
      assert_non_null(a->revs);
      assert_non_null(a->keys);
    }
    unsigned long long rev = 0;
    assert_int_equal(sscanf(start, "%llu %63s", &rev, a->keys[a->count]), 2);
    a->revs[a->count++] = rev;
    start = nl + 1;
  }
  *len = (size_t)(buf + *len - start);
  memmove(buf, start, *len);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads acknowledgements from fd until there are want of them (0: no such goal), deadline_ms
 * passes (0: none) or EOF. */
static void read_acks(int fd, acks *a, char *buf, size_t *len, size_t cap, int64_t deadline_ms, size_t want) {
  for (;;) {
    if (want && a->count >= want) return;
    int timeout = -1;
    if (deadline_ms) {
      int64_t left = deadline_ms - now_ms();
      if (left <= 0) return;
      timeout = (int)left;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int n = poll(&pfd, 1, timeout);
    if (n < 0 && errno == EINTR) continue;
    assert_true(n >= 0);
    if (n == 0) continue;
    ssize_t got_bytes = read(fd, buf + *len, cap - *len);
    if (got_bytes < 0 && errno == EINTR) continue;
    assert_true(got_bytes >= 0);
    if (got_bytes == 0) return; /* EOF: the child is gone */
    *len += (size_t)got_bytes;
    acks_parse(a, buf, len);
  }
}

static void integrity_ok(const char *dir) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, DB_FILE);
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
  sqlite3_stmt *stmt = NULL;
  assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "ok");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

static void acknowledged_writes_survive_sigkill(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  assert_non_null(dir);
  acks a = {0};
  srand((unsigned)time(NULL) ^ (unsigned)getpid());
  for (int round = 0; round < CRASH_ROUNDS; round++) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      close(fds[0]);
      crash_child(dir, fds[1], round);
    }
    close(fds[1]);
    static char buf[1 << 16];
    size_t len = 0, before = a.count;
    /* Wait for the first acknowledgement, then kill at a random moment 10..300 ms later. */
    read_acks(fds[0], &a, buf, &len, sizeof buf, now_ms() + 10000, before + 1);
    assert_true(a.count > before);
    read_acks(fds[0], &a, buf, &len, sizeof buf, now_ms() + 10 + rand() % 290, 0);
    assert_int_equal(kill(pid, SIGKILL), 0);
    read_acks(fds[0], &a, buf, &len, sizeof buf, 0, 0);
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    printf("crash round %d: %zu acknowledged transactions before SIGKILL\n", round, a.count - before);

    /* Every acknowledged transaction is there, with the revision it was acknowledged at. */
    store s;
    store_open(&s, dir);
    uint64_t max = 0;
    for (size_t i = 0; i < a.count; i++) {
      got g;
      assert_int_equal(get(&s, a.keys[i], &g), 0);
      assert_string_equal(g.value, a.keys[i]);
      assert_int_equal(g.mod_revision, a.revs[i]);
      if (a.revs[i] > max) max = a.revs[i];
    }
    assert_true(revision(&s) >= max);
    store_close(&s);
    integrity_ok(dir);
  }
  free(a.revs);
  free(a.keys);
  tu_rmdir(dir);
}

/* ---- the WAL stays bounded ----------------------------------------------------------------- */

#define WAL_LIMIT (8 * 1024 * 1024) /* SQS_WAL_SIZE_LIMIT */

static long long wal_bytes(const char *dir) {
  char path[1024];
  struct stat st;
  snprintf(path, sizeof path, "%s/" DB_FILE "-wal", dir);
  return stat(path, &st) == 0 ? (long long)st.st_size : 0;
}

/* A reader that holds back checkpoints lets the WAL grow past the limit during a burst; once
 * it is gone, the next checkpoint and restart truncate the file back to the limit instead of
 * leaving it at its largest for good. */
static void wal_shrinks_back_after_a_burst(void **state) {
  fixture *f = *state;
  char path[1024];
  snprintf(path, sizeof path, "%s/" DB_FILE, f->dir);
  sqlite3 *reader = NULL;
  assert_int_equal(sqlite3_open_v2(path, &reader, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM kv;", NULL, NULL, NULL), SQLITE_OK);
  size_t len = 64 * 1024;
  char *value = malloc(len + 1);
  assert_non_null(value);
  memset(value, 'x', len);
  value[len] = '\0';
  char key[32];
  for (int i = 0; i < 200; i++) { /* about 13 MB of WAL while the reader pins it */
    snprintf(key, sizeof key, "big/%d", i % 10);
    put(&f->s, key, value);
  }
  long long peak = wal_bytes(f->dir);
  assert_int_equal(sqlite3_exec(reader, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(reader);
  for (int i = 0; i < 200; i++) {
    snprintf(key, sizeof key, "big/%d", i % 10);
    put(&f->s, key, value);
  }
  long long after = wal_bytes(f->dir);
  print_message("WAL: %lld bytes with a reader pinning it, %lld after it left\n", peak, after);
  assert_true(peak > WAL_LIMIT);
  assert_true(after <= WAL_LIMIT);
  free(value);
}
/* Another process on the same file cannot be told of a commit: the store polls (500 ms). */
static const sc_backend sqlite_backend = {.plugin = "storage-sqlite", .check_dir = files_are_private, .other_writer_ms = 900};

int main(void) {
  int failed = sc_run(&sqlite_backend);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(wal_shrinks_back_after_a_burst, setup, teardown),
      cmocka_unit_test_setup_teardown(settings_path_and_refusals, setup, teardown),
      cmocka_unit_test(acknowledged_writes_survive_sigkill),
  };
  return failed + cmocka_run_group_tests_name("storage_sqlite", tests, NULL, NULL);
}
