/* storage-sqlite: the edgeprov.storage/1 capability on a local SQLite database (WAL, group
 * commit). This file holds the plugin entry, settings, input validation and the reads; the
 * writer is in group_commit.c, the read connections in reader_pool.c. */
#define _POSIX_C_SOURCE 200809L /* strdup, O_CLOEXEC, O_DIRECTORY, O_NOFOLLOW, fsync */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <edgeprov/edgeprov.h>
#include <edgeprov/storage.h>

#include "commit_wait.h"
#include "group_commit.h"
#include "storage_check.h"
#include "reader_pool.h"
#include "sqlite_conn.h"

#define SQS_DEFAULT_FILE "inventory.sqlite" /* under paths.data when `path` is "" */
#define SQS_PATH_MAX 4096
#define STORAGE_LIMIT_MAX 10000 /* most records of one list or changes call */

typedef struct sqs_store {
  const ep_host *host;
  ep_ctx *ctx;                /* the plugin's context: every error is reported on it */
  pthread_mutex_t error_lock; /* one set_error at a time, so messages are never interleaved */
  char *path;
  bool pool_ready;
  sqs_pool readers;
  sqs_writer writer;
  commit_wait commits; /* wait and wake */
  /* lead: a role is held by an flock on <database>.lead-<role>, released with the process. */
  pthread_mutex_t lead_lock;
  struct {
    char role[STORAGE_ROLE_MAX + 1];
    int fd;
  } held[STORAGE_ROLES_MAX];
} sqs_store;

/* ---- errors and validation ------------------------------------------------------------ */

static int32_t fail(sqs_store *s, int32_t code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int32_t fail(sqs_store *s, int32_t code, const char *fmt, ...) {
  char message[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&s->error_lock);
  s->host->set_error(s->ctx, code, message);
  pthread_mutex_unlock(&s->error_lock);
  return code;
}

/* The argument checks every backend makes (plugins/common/storage_check.c), reported here. */
static int32_t checked(sqs_store *s, int32_t r, const char *err) { return r < 0 ? fail(s, r, "%s", err) : 0; }

static int32_t check_bound(sqs_store *s, const char *name, const char *text) {
  char err[STORAGE_CHECK_MESSAGE_MAX];
  return checked(s, storage_check_bound(name, text, err), err);
}

static int32_t check_limit(sqs_store *s, uint32_t limit) {
  char err[STORAGE_CHECK_MESSAGE_MAX];
  return checked(s, storage_check_limit(limit, err), err);
}

static int32_t check_txn(sqs_store *s, const ep_storage_op *ops, uint32_t count, uint32_t op_size) {
  char err[STORAGE_CHECK_MESSAGE_MAX];
  return checked(s, storage_check_txn(ops, count, op_size, err), err);
}

/* ---- reads ---------------------------------------------------------------------------- */

/* Ends a read: resets nothing (callers reset their statements), closes the read
 * transaction if one is open and returns the connection to the pool. */
static void read_end(sqs_store *s, sqs_conn *conn) {
  if (!sqlite3_get_autocommit(conn->db)) {
    char ignored[SQS_MESSAGE_MAX];
    sqs_exec(conn, SQS_ROLLBACK, "end of read", ignored);
  }
  sqs_pool_release(&s->readers, conn);
}

static const uint8_t *column_blob(sqlite3_stmt *stmt, int col, uint64_t *len) {
  *len = (uint64_t)sqlite3_column_bytes(stmt, col);
  const void *p = sqlite3_column_blob(stmt, col);
  return p ? p : (const uint8_t *)"";
}

static int32_t store_get(void *state, const char *key, ep_storage_visit_fn visit, void *data) {
  sqs_store *s = state;
  const char *problem = storage_key_problem(key);
  if (problem) return fail(s, EP_EINVAL, "key %s", problem);
  char err[SQS_MESSAGE_MAX];
  sqs_conn *conn = NULL;
  int r = sqs_pool_acquire(&s->readers, &conn, err);
  if (r < 0) return fail(s, r, "%s", err);
  sqlite3_stmt *stmt = sqs_stmt(conn, SQS_KV_GET, err);
  if (!stmt) {
    read_end(s, conn);
    return fail(s, EP_EIO, "%s", err);
  }
  sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) {
    ep_storage_record rec = {.struct_size = sizeof rec, .key = key};
    rec.value = column_blob(stmt, 0, &rec.value_len);
    rec.create_revision = (uint64_t)sqlite3_column_int64(stmt, 1);
    rec.mod_revision = (uint64_t)sqlite3_column_int64(stmt, 2);
    if (visit) visit(data, &rec);
    r = 0;
  } else if (rc == SQLITE_DONE) {
    r = EP_ENOENT;
  } else {
    r = sqs_fail(conn, rc, "cannot read a key", err);
  }
  sqs_stmt_done(stmt);
  read_end(s, conn);
  if (r == EP_ENOENT) return fail(s, r, "key '%.100s' not found", key);
  return r < 0 ? fail(s, r, "%s", err) : 0;
}


/* Visits one page of records; see storage.h. The page and its revision come from one read
 * transaction, so they agree. */
static int32_t store_list(void *state, const char *prefix, const char *start_after, uint32_t limit,
                          ep_storage_visit_fn visit, void *data, uint64_t *ret_revision, int32_t *ret_more) {
  sqs_store *s = state;
  int32_t r;
  if ((r = check_bound(s, "prefix", prefix)) < 0 || (r = check_bound(s, "start_after", start_after)) < 0 ||
      (r = check_limit(s, limit)) < 0)
    return r;

  /* One lower bound serves both constraints: keys >= prefix, or keys > start_after when
   * that is not smaller than prefix. */
  bool after = strcmp(start_after, prefix) >= 0;
  char end[EP_STORAGE_KEY_MAX + 1];
  bool bounded = storage_prefix_end(prefix, end);
  sqs_stmt_id id = after ? (bounded ? SQS_LIST_GT_LT : SQS_LIST_GT) : (bounded ? SQS_LIST_GE_LT : SQS_LIST_GE);

  char err[SQS_MESSAGE_MAX];
  sqs_conn *conn = NULL;
  if ((r = sqs_pool_acquire(&s->readers, &conn, err)) < 0) return fail(s, r, "%s", err);
  uint64_t revision = 0;
  int32_t more = 0;
  sqlite3_stmt *stmt = NULL;
  if ((r = sqs_exec(conn, SQS_BEGIN, "cannot start a read", err)) < 0 ||
      (r = sqs_meta_get(conn, SQS_META_REVISION, &revision, err)) < 0)
    goto done;
  if (!(stmt = sqs_stmt(conn, id, err))) {
    r = EP_EIO;
    goto done;
  }
  sqlite3_bind_text(stmt, 1, after ? start_after : prefix, -1, SQLITE_STATIC);
  if (bounded) sqlite3_bind_text(stmt, 2, end, -1, SQLITE_STATIC);
  uint32_t count = 0;
  bool stopped = false;
  int rc = SQLITE_DONE;
  while (count < limit && !stopped && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    ep_storage_record rec = {.struct_size = sizeof rec};
    rec.key = (const char *)sqlite3_column_text(stmt, 0);
    rec.value = column_blob(stmt, 1, &rec.value_len);
    rec.create_revision = (uint64_t)sqlite3_column_int64(stmt, 2);
    rec.mod_revision = (uint64_t)sqlite3_column_int64(stmt, 3);
    count++;
    if (visit && visit(data, &rec) != 0) stopped = true;
  }
  if (count == limit || stopped) rc = sqlite3_step(stmt); /* is there a record after the last visited? */
  if (rc == SQLITE_ROW)
    more = 1;
  else if (rc != SQLITE_DONE)
    r = sqs_fail(conn, rc, "cannot list keys", err);
done:
  if (stmt) sqs_stmt_done(stmt);
  read_end(s, conn);
  if (r < 0) return fail(s, r, "%s", err);
  if (ret_revision) *ret_revision = revision;
  if (ret_more) *ret_more = more;
  return 0;
}

/* Visits changes after after_revision. limit counts changes, but a page never ends inside a
 * transaction: a revision is visited whole, so the next call can resume after the last
 * revision seen (the first revision of a page may take it past limit by up to
 * EP_STORAGE_TXN_OPS_MAX - 1). */
static int32_t store_changes(void *state, uint64_t after_revision, uint32_t limit, ep_storage_change_fn visit,
                             void *data) {
  sqs_store *s = state;
  int32_t r = check_limit(s, limit);
  if (r < 0) return r;
  char err[SQS_MESSAGE_MAX];
  sqs_conn *conn = NULL;
  if ((r = sqs_pool_acquire(&s->readers, &conn, err)) < 0) return fail(s, r, "%s", err);
  uint64_t compacted = 0;
  sqlite3_stmt *stmt = NULL;
  if ((r = sqs_exec(conn, SQS_BEGIN, "cannot start a read", err)) < 0 ||
      (r = sqs_meta_get(conn, SQS_META_COMPACTED, &compacted, err)) < 0)
    goto done;
  if (after_revision < compacted) {
    snprintf(err, sizeof err, "after_revision %llu is compacted: the change log starts after revision %llu",
             (unsigned long long)after_revision, (unsigned long long)compacted);
    r = EP_ECOMPACTED;
    goto done;
  }
  if (!(stmt = sqs_stmt(conn, SQS_CHANGES_AFTER, err))) {
    r = EP_EIO;
    goto done;
  }
  sqlite3_bind_int64(stmt, 1, (sqlite3_int64)after_revision);
  uint32_t count = 0;
  uint64_t last = 0;
  int rc = SQLITE_DONE;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    ep_storage_change change = {.struct_size = sizeof change};
    change.revision = (uint64_t)sqlite3_column_int64(stmt, 0);
    if (count >= limit && change.revision != last) break;
    change.kind = (uint32_t)sqlite3_column_int(stmt, 1);
    change.key = (const char *)sqlite3_column_text(stmt, 2);
    if (change.kind == EP_STORAGE_PUT) change.value = column_blob(stmt, 3, &change.value_len);
    count++;
    last = change.revision;
    if (visit && visit(data, &change) != 0) break;
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) r = sqs_fail(conn, rc, "cannot read the change log", err);
done:
  if (stmt) sqs_stmt_done(stmt);
  read_end(s, conn);
  return r < 0 ? fail(s, r, "%s", err) : 0;
}

static int32_t store_revision(void *state, uint64_t *ret_revision) {
  sqs_store *s = state;
  char err[SQS_MESSAGE_MAX];
  sqs_conn *conn = NULL;
  int r = sqs_pool_acquire(&s->readers, &conn, err);
  if (r < 0) return fail(s, r, "%s", err);
  uint64_t revision = 0;
  r = sqs_meta_get(conn, SQS_META_REVISION, &revision, err);
  read_end(s, conn);
  if (r < 0) return fail(s, r, "%s", err);
  if (ret_revision) *ret_revision = revision;
  return 0;
}

/* ---- writes (through the group-commit writer) ------------------------------------------ */

static int32_t store_txn(void *state, const ep_storage_op *ops, uint32_t count, uint32_t op_size,
                         uint64_t *ret_revision, uint32_t *ret_failed_op) {
  sqs_store *s = state;
  int32_t r = check_txn(s, ops, count, op_size);
  if (r < 0) return r;
  sqs_request req = {.kind = SQS_REQUEST_TXN, .ops = ops, .count = count, .op_size = op_size};
  r = sqs_writer_submit(&s->writer, &req);
  if (r == EP_ECONFLICT && ret_failed_op) *ret_failed_op = req.failed_op;
  if (r < 0) return fail(s, r, "%s", req.message);
  commit_wait_note(&s->commits, req.revision);
  if (ret_revision) *ret_revision = req.revision;
  return 0;
}

static int32_t store_compact(void *state, uint64_t before_revision) {
  sqs_store *s = state;
  sqs_request req = {.kind = SQS_REQUEST_COMPACT, .before_revision = before_revision};
  int32_t r = sqs_writer_submit(&s->writer, &req);
  return r < 0 ? fail(s, r, "%s", req.message) : 0;
}

static int32_t read_revision(void *data, uint64_t *ret_revision) { return store_revision(data, ret_revision); }

static int32_t store_wait(void *state, uint64_t after_revision, uint32_t timeout_ms, uint64_t *ret_revision) {
  sqs_store *s = state;
  int32_t r = commit_wait_for(&s->commits, after_revision, timeout_ms, read_revision, s, ret_revision);
  if (r == EP_ETIMEDOUT) return fail(s, r, "no revision past %llu within %u ms", (unsigned long long)after_revision, timeout_ms);
  if (r == EP_ECANCELED) return fail(s, r, "woken");
  return r; /* 0, or store_revision's error (reported) */
}

static void store_wake(void *state) {
  sqs_store *s = state;
  commit_wait_wake(&s->commits);
}

/* Several processes may share the file (WAL): an exclusive flock on a file beside it decides. */
static int32_t store_lead(void *state, const char *role, int32_t *ret_leading) {
  sqs_store *s = state;
  char err[STORAGE_CHECK_MESSAGE_MAX];
  int32_t r = checked(s, storage_check_role(role, err), err);
  if (r < 0) return r;
  pthread_mutex_lock(&s->lead_lock);
  int32_t leading = 0;
  size_t free_slot = STORAGE_ROLES_MAX;
  for (size_t i = 0; i < STORAGE_ROLES_MAX && !leading; i++) {
    if (s->held[i].fd >= 0 && strcmp(s->held[i].role, role) == 0) leading = 1;
    else if (s->held[i].fd < 0 && free_slot == STORAGE_ROLES_MAX) free_slot = i;
  }
  if (!leading && free_slot == STORAGE_ROLES_MAX) {
    r = fail(s, EP_ERANGE, "this store holds %d roles already", STORAGE_ROLES_MAX);
  } else if (!leading) {
    char path[SQS_PATH_MAX + 80];
    snprintf(path, sizeof path, "%s.lead-%s", s->path, role);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      r = fail(s, -errno, "cannot open %s: %s", path, strerror(errno));
    } else if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
      snprintf(s->held[free_slot].role, sizeof s->held[free_slot].role, "%s", role);
      s->held[free_slot].fd = fd;
      leading = 1;
    } else {
      if (errno != EWOULDBLOCK) r = fail(s, -errno, "cannot lock %s: %s", path, strerror(errno));
      close(fd);
    }
  }
  pthread_mutex_unlock(&s->lead_lock);
  if (r == 0 && ret_leading) *ret_leading = leading;
  return r;
}

static const ep_storage store_table = {
    .struct_size = sizeof(ep_storage),
    .get = store_get,
    .txn = store_txn,
    .list = store_list,
    .changes = store_changes,
    .revision = store_revision,
    .compact = store_compact,
    .wait = store_wait,
    .wake = store_wake,
    .lead = store_lead,
};

/* ---- init and deinit ------------------------------------------------------------------ */

/* Creates dir and its missing parents with mode 0700 (mkdir -p). Returns 0 or -errno. */
static int make_dirs(const char *dir) {
  char path[SQS_PATH_MAX];
  size_t len = strlen(dir);
  if (len == 0 || len >= sizeof path) return -ENAMETOOLONG;
  memcpy(path, dir, len + 1);
  for (size_t i = 1; i <= len; i++) {
    if (path[i] != '/' && path[i] != '\0') continue;
    char saved = path[i];
    path[i] = '\0';
    if (mkdir(path, 0700) < 0 && errno != EEXIST) return -errno;
    path[i] = saved;
  }
  return 0;
}

/* Resolves the database path from the settings into *out (caller frees). */
static int32_t resolve_path(const ep_host *host, ep_ctx *ctx, char **out) {
  const char *setting = NULL;
  if (host->setting_string(ctx, "path", &setting) < 0) setting = "";
  char *path = NULL;
  if (*setting) {
    if (setting[0] != '/')
      return ep_failf(host, ctx, EP_EINVAL, "setting 'path': '%s' is not an absolute path", setting);
    path = strdup(setting);
  } else {
    const char *data_dir = NULL;
    if (host->site_string(ctx, "paths.data", &data_dir) < 0 || !data_dir || !*data_dir)
      return ep_failf(host, ctx, EP_EINVAL, "setting 'path' is empty and the site has no paths.data: set one");
    size_t len = strlen(data_dir) + 1 + sizeof SQS_DEFAULT_FILE;
    path = malloc(len);
    if (path) snprintf(path, len, "%s/%s", data_dir, SQS_DEFAULT_FILE);
  }
  if (!path) return ep_failf(host, ctx, EP_ENOMEM, "out of memory");
  if (strlen(path) >= SQS_PATH_MAX) {
    free(path);
    return ep_failf(host, ctx, EP_EINVAL, "database path is longer than %d bytes", SQS_PATH_MAX - 1);
  }
  *out = path;
  return 0;
}

/* Creates the directory (0700) and the database file (0600) when missing, and narrows the
 * mode of an existing file that others can read. SQLite gives its -wal and -shm files the
 * database file's mode. */
static int32_t prepare_file(const ep_host *host, ep_ctx *ctx, const char *path) {
  char dir[SQS_PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) {
    *slash = '\0';
    int e = make_dirs(dir);
    if (e < 0) return ep_failf(host, ctx, e, "cannot create directory %s: %s", dir, strerror(-e));
  }
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return ep_failf(host, ctx, -errno, "cannot open %s: %s", path, strerror(errno));
  struct stat st;
  int32_t r = 0;
  if (fstat(fd, &st) < 0) {
    r = ep_failf(host, ctx, -errno, "cannot stat %s: %s", path, strerror(errno));
  } else if (!S_ISREG(st.st_mode)) {
    r = ep_failf(host, ctx, EP_EINVAL, "%s is not a regular file", path);
  } else if ((st.st_mode & 077) != 0) {
    if (fchmod(fd, 0600) < 0)
      r = ep_failf(host, ctx, -errno, "%s is readable by others and cannot be made 0600: %s", path, strerror(errno));
    else
      ep_logf(host, ctx, EP_LOG_WARN, "%s was mode %04o; changed to 0600", path, (unsigned)(st.st_mode & 07777));
  }
  /* A new file's directory entry must be durable too; SQLite syncs only its own -wal. */
  if (r == 0 && fsync(fd) < 0) r = ep_failf(host, ctx, -errno, "cannot sync %s: %s", path, strerror(errno));
  close(fd);
  if (r == 0 && slash && slash != dir) {
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) < 0)
      r = ep_failf(host, ctx, -errno, "cannot sync directory %s: %s", dir, strerror(errno));
    if (dfd >= 0) close(dfd);
  }
  return r;
}

static void store_free(sqs_store *s) {
  if (!s) return;
  if (s->pool_ready) sqs_pool_destroy(&s->readers); /* readers first: the writer closes last */
  sqs_writer_stop(&s->writer);
  pthread_mutex_destroy(&s->error_lock);
  commit_wait_destroy(&s->commits);
  for (size_t i = 0; i < STORAGE_ROLES_MAX; i++)
    if (s->held[i].fd >= 0) close(s->held[i].fd); /* releases the role */
  pthread_mutex_destroy(&s->lead_lock);
  free(s->path);
  free(s);
}

static int32_t store_init(const ep_host *host, ep_ctx *ctx, void **ret_state) {
  int64_t busy_timeout_ms = 5000, group_commit_max = 64;
  if (host->setting_int(ctx, "busy_timeout_ms", &busy_timeout_ms) < 0 ||
      host->setting_int(ctx, "group_commit_max", &group_commit_max) < 0)
    return ep_failf(host, ctx, EP_EINVAL, "settings 'busy_timeout_ms' and 'group_commit_max' are unavailable");
  sqs_store *s = calloc(1, sizeof *s);
  if (!s) return ep_failf(host, ctx, EP_ENOMEM, "out of memory");
  s->host = host;
  s->ctx = ctx;
  pthread_mutex_init(&s->error_lock, NULL);
  commit_wait_init(&s->commits);
  pthread_mutex_init(&s->lead_lock, NULL);
  for (size_t i = 0; i < STORAGE_ROLES_MAX; i++) s->held[i].fd = -1;

  char err[SQS_MESSAGE_MAX];
  sqs_conn *conn = NULL;
  uint64_t revision = 0;
  int32_t r = resolve_path(host, ctx, &s->path);
  if (r < 0 || (r = prepare_file(host, ctx, s->path)) < 0) goto fail;
  if ((r = sqs_conn_open(&conn, s->path, (int)busy_timeout_ms, false, err)) < 0 ||
      (r = sqs_schema_init(conn, err)) < 0 || (r = sqs_meta_get(conn, SQS_META_REVISION, &revision, err)) < 0) {
    ep_failf(host, ctx, r, "%s: %s", s->path, err);
    goto fail;
  }
  if ((r = sqs_pool_init(&s->readers, s->path, (int)busy_timeout_ms)) < 0) {
    ep_failf(host, ctx, r, "out of memory");
    goto fail;
  }
  s->pool_ready = true;
  if ((r = sqs_writer_start(&s->writer, conn, &s->commits, (uint32_t)group_commit_max, err)) < 0) {
    ep_failf(host, ctx, r, "%s", err);
    goto fail;
  }
  ep_logf(host, ctx, EP_LOG_INFO, "opened %s at revision %llu", s->path, (unsigned long long)revision);
  *ret_state = s;
  return 0;
fail:
  sqs_conn_close(conn);
  store_free(s);
  return r;
}

static void store_deinit(void *state) {
  sqs_store *s = state;
  sqs_pool_destroy(&s->readers); /* readers first, so the writer's close checkpoints the WAL */
  s->pool_ready = false;
  sqs_writer_stop(&s->writer); /* drains the queue first */
  ep_logf(s->host, s->ctx, EP_LOG_INFO, "closed %s: %llu transactions committed in %llu group commits (largest %llu)",
          s->path, (unsigned long long)s->writer.committed, (unsigned long long)s->writer.batches,
          (unsigned long long)s->writer.largest_batch);
  store_free(s);
}

static const void *store_get_capability(void *state, const char *id) {
  (void)state;
  return strcmp(id, EP_CAP_STORAGE) == 0 ? &store_table : NULL;
}

static const ep_field_decl store_settings[] = {
    EP_FIELD_STRING_DECL("path", "", EP_FIELD_OPTIONAL, SQS_PATH_MAX - 1,
                         "database file, an absolute path; \"\" means <paths.data>/" SQS_DEFAULT_FILE
                         " (created 0600, its directory 0700)"),
    EP_FIELD_INT_DECL("busy_timeout_ms", "5000", EP_FIELD_OPTIONAL, 0, 600000,
                      "how long a connection waits for a lock another process holds, in milliseconds"),
    EP_FIELD_INT_DECL("group_commit_max", "64", EP_FIELD_OPTIONAL, 1, 1024,
                      "most concurrent transactions committed together with one fsync"),
};

static const char *const store_capabilities[] = {EP_CAP_STORAGE, NULL};

EP_PLUGIN_EXPORT const ep_plugin_entry ep_plugin = {
    EP_PLUGIN_ENTRY_HEADER,
    .id = "storage-sqlite",
    .version = SQS_VERSION,
    .description = "Inventory store on a local SQLite database (WAL, group commit)",
    .capabilities = store_capabilities,
    .settings = store_settings,
    .settings_count = EP_COUNT(store_settings),
    .init = store_init,
    .deinit = store_deinit,
    .get_capability = store_get_capability,
};
