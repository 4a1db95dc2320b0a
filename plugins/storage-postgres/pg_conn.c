/* storage-postgres: connecting, bounded waits, error messages and the schema. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "pg_conn.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <edgeprov/abi.h>

/* How much longer than statement_timeout the client waits for an answer before it gives the
 * connection up: the server cancels a statement at statement_timeout itself, so only a
 * server or network that is gone needs this. */
#define PGS_AWAIT_MARGIN_MS 2000
/* Key of the advisory lock that serialises schema creation between replicas ("edgep"). */
#define PGS_SCHEMA_LOCK "435459958128"
#define PGS_STR_(x) #x
#define PGS_STR(x) PGS_STR_(x)

/* Tables, and the two functions every write goes through (see README.md: "How revisions
 * are ordered"). Keys are text in the "C" collation, so PostgreSQL orders them bytewise, as
 * storage.h asks. edgeprov_txn locks the revision row before it checks anything, so its
 * checks see every transaction that took a revision before it, and it writes nothing when
 * one fails. */
static const char schema_sql[] =
    "CREATE TABLE edgeprov_kv ("
    "  key text COLLATE \"C\" PRIMARY KEY,"
    "  value bytea NOT NULL,"
    "  create_revision bigint NOT NULL,"
    "  mod_revision bigint NOT NULL);"
    "CREATE TABLE edgeprov_changes ("
    "  revision bigint NOT NULL,"
    "  seq integer NOT NULL," /* position of the write within its transaction */
    "  kind smallint NOT NULL,"
    "  key text COLLATE \"C\" NOT NULL,"
    "  value bytea," /* NULL for a delete */
    "  PRIMARY KEY (revision, seq));"
    "INSERT INTO edgeprov_meta(name, value) VALUES ('revision', 0), ('compacted_revision', 0)"
    "  ON CONFLICT (name) DO NOTHING;"
    "CREATE FUNCTION edgeprov_txn(kinds integer[], keys text[], vals bytea[], expects bigint[],"
    "    OUT ret_revision bigint, OUT ret_failed_op integer, OUT ret_failed_mod bigint)"
    "  LANGUAGE plpgsql AS $fn$\n"
    "DECLARE\n"
    "  cur bigint;\n"
    "  rev bigint;\n"
    "  seq integer := 0;\n"
    "BEGIN\n"
    "  PERFORM 1 FROM edgeprov_meta WHERE name = 'revision' FOR UPDATE;\n"
    "  FOR i IN 1 .. cardinality(keys) LOOP\n"
    "    CONTINUE WHEN expects[i] IS NULL;\n"
    "    SELECT kv.mod_revision INTO cur FROM edgeprov_kv kv WHERE kv.key = keys[i];\n"
    "    IF (expects[i] = 0 AND FOUND) OR (expects[i] <> 0 AND (NOT FOUND OR cur <> expects[i])) THEN\n"
    "      ret_failed_op := i - 1;\n"
    "      IF FOUND THEN ret_failed_mod := cur; END IF;\n"
    "      RETURN;\n"
    "    END IF;\n"
    "  END LOOP;\n"
    "  UPDATE edgeprov_meta SET value = value + 1 WHERE name = 'revision' RETURNING value INTO rev;\n"
    "  FOR i IN 1 .. cardinality(keys) LOOP\n"
    "    IF kinds[i] = 1 THEN\n"
    "      INSERT INTO edgeprov_kv AS kv VALUES (keys[i], vals[i], rev, rev)\n"
    "        ON CONFLICT (key) DO UPDATE SET value = excluded.value, mod_revision = excluded.mod_revision;\n"
    "    ELSE\n"
    "      DELETE FROM edgeprov_kv kv WHERE kv.key = keys[i];\n"
    "      CONTINUE WHEN NOT FOUND;\n" /* deleting a missing key logs nothing */
    "    END IF;\n"
    "    INSERT INTO edgeprov_changes VALUES (rev, seq, kinds[i], keys[i], CASE WHEN kinds[i] = 1 THEN vals[i] END);\n"
    "    seq := seq + 1;\n"
    "  END LOOP;\n"
    "  ret_revision := rev;\n"
    /* delivered at commit, to every replica's listener (pg_listen.c) */
    "  PERFORM pg_notify('edgeprov_revision', rev::text);\n"
    "END $fn$;"
    "CREATE FUNCTION edgeprov_compact(before bigint) RETURNS bigint LANGUAGE plpgsql AS $fn$\n"
    "DECLARE\n"
    "  cur bigint;\n"
    "BEGIN\n"
    "  SELECT value INTO cur FROM edgeprov_meta WHERE name = 'revision';\n"
    "  IF before <= cur + 1 THEN\n"
    "    UPDATE edgeprov_meta SET value = before - 1 WHERE name = 'compacted_revision' AND value < before - 1;\n"
    "    IF FOUND THEN DELETE FROM edgeprov_changes WHERE revision < before; END IF;\n"
    "  END IF;\n"
    "  RETURN cur;\n"
    "END $fn$;"
    "INSERT INTO edgeprov_meta(name, value) VALUES ('schema_version', " PGS_STR(PGS_SCHEMA_VERSION) ");";

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* libpq writes notices (and errors the server sends to an idle session) to stderr unless
 * told otherwise; a library does not print. */
static void ignore_notice(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

/* Copies src into dst (size bytes) as one line: newlines and runs of spaces become one
 * space, the end is trimmed. */
static void one_line(char *dst, size_t size, const char *src) {
  size_t n = 0;
  bool space = false;
  for (; *src && n + 1 < size; src++) {
    bool blank = *src == '\n' || *src == '\r' || *src == '\t' || *src == ' ';
    if (blank) {
      space = n > 0;
      continue;
    }
    if (space && n + 2 < size) dst[n++] = ' ';
    space = false;
    dst[n++] = *src;
  }
  dst[n] = '\0';
}

/* Replaces every occurrence of secret (when at least 1 byte) in text with "********". */
static void mask(char *text, size_t size, const char *secret, size_t secret_len) {
  if (secret_len == 0) return;
  char out[PGS_MESSAGE_MAX];
  size_t n = 0;
  for (const char *p = text; *p && n + 1 < sizeof out;) {
    if (strncmp(p, secret, secret_len) == 0) {
      n += (size_t)snprintf(out + n, sizeof out - n, "********");
      if (n >= sizeof out) n = sizeof out - 1;
      p += secret_len;
    } else {
      out[n++] = *p++;
    }
  }
  out[n] = '\0';
  snprintf(text, size, "%s", out);
}

/* Masks in text whatever conninfo may carry as a password: the value of every "password="
 * (key/value form or URI query) and the password of a URI's user info. Used on libpq's
 * parse errors, which quote the part of the string they could not read. */
static void mask_passwords(char *text, size_t size, const char *conninfo) {
  for (const char *p = conninfo; (p = strstr(p, "password")); p += 8) {
    const char *v = p + 8;
    while (*v == ' ') v++;
    if (*v != '=') continue;
    v++;
    while (*v == ' ') v++;
    if (*v == '\'') v++;
    size_t len = strcspn(v, " '&\t\n");
    mask(text, size, v, len);
  }
  const char *scheme = strstr(conninfo, "://");
  if (scheme) {
    const char *user = scheme + 3;
    size_t info = strcspn(user, "@/?");
    const char *colon = memchr(user, ':', info);
    if (user[info] == '@' && colon) mask(text, size, colon + 1, (size_t)(user + info - colon - 1));
  }
}

int pgs_conninfo_check(const pgs_params *p, char err[PGS_MESSAGE_MAX]) {
  char *parse_err = NULL;
  /* A bare word is a database name, which libpq takes as it is. */
  bool is_string = strchr(p->conninfo, '=') || strstr(p->conninfo, "://");
  PQconninfoOption *opts = is_string ? PQconninfoParse(p->conninfo, &parse_err) : NULL;
  if (is_string && !opts) {
    char line[PGS_MESSAGE_MAX];
    one_line(line, sizeof line, parse_err ? parse_err : "out of memory");
    mask_passwords(line, sizeof line, p->conninfo);
    snprintf(err, PGS_MESSAGE_MAX, "setting 'conninfo' is not a valid libpq connection string or URI: %.600s", line);
    PQfreemem(parse_err);
    return EP_EINVAL;
  }
  PQconninfoFree(opts);
  return 0;
}

void pgs_describe(const pgs_params *p, const PGconn *conn, char *buf, size_t size) {
  const char *host = NULL, *port = NULL, *db = NULL, *user = NULL;
  PQconninfoOption *opts = NULL;
  if (conn) {
    host = PQhost(conn), port = PQport(conn), db = PQdb(conn), user = PQuser(conn);
  } else if ((opts = PQconninfoParse(p->conninfo, NULL))) {
    for (PQconninfoOption *o = opts; o->keyword; o++) {
      if (strcmp(o->keyword, "host") == 0) host = o->val;
      if (strcmp(o->keyword, "port") == 0) port = o->val;
      if (strcmp(o->keyword, "dbname") == 0) db = o->val;
      if (strcmp(o->keyword, "user") == 0) user = o->val;
    }
  }
  snprintf(buf, size, "database \"%s\" on host %s port %s as user \"%s\"", db && *db ? db : "(default)",
           host && *host ? host : "(default)", port && *port ? port : "(default)",
           user && *user ? user : "(default)");
  PQconninfoFree(opts);
}

int pgs_fail(PGconn *conn, const PGresult *res, const char *what, char err[PGS_MESSAGE_MAX]) {
  const char *detail = res ? PQresultErrorMessage(res) : NULL;
  if (!detail || !*detail) detail = conn ? PQerrorMessage(conn) : "";
  if (!*detail) detail = "no answer";
  char line[PGS_MESSAGE_MAX];
  one_line(line, sizeof line, detail);
  snprintf(err, PGS_MESSAGE_MAX, "%.200s: %.560s", what, line);
  const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  /* 57014: canceled (statement_timeout); 55P03: lock not available. */
  if (state && (strcmp(state, "57014") == 0 || strcmp(state, "55P03") == 0)) return EP_ETIMEDOUT;
  return EP_EIO;
}

int pgs_connect(PGconn **out, const pgs_params *p, char err[PGS_MESSAGE_MAX]) {
  char timeout[16];
  snprintf(timeout, sizeof timeout, "%d", p->connect_timeout_s);
  /* Keywords override those before them: TCP keepalives first (a half-open connection, after a
   * failover or a partition, is noticed within about 25 s; the conninfo may say otherwise),
   * then the conninfo, then what this plugin needs. */
  const char *keys[10] = {"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "dbname",
                          "connect_timeout", "client_encoding", "fallback_application_name"};
  const char *values[10] = {"1", "10", "5", "3", p->conninfo, timeout, "UTF8", "edgeprovd"};
  if (*p->passfile) keys[8] = "passfile", values[8] = p->passfile;
  PGconn *conn = PQconnectdbParams(keys, values, 1);
  char where[PGS_MESSAGE_MAX / 2];
  if (!conn) {
    snprintf(err, PGS_MESSAGE_MAX, "cannot connect to PostgreSQL: out of memory");
    return EP_ENOMEM;
  }
  pgs_describe(p, conn, where, sizeof where);
  if (PQstatus(conn) != CONNECTION_OK) {
    char line[PGS_MESSAGE_MAX];
    one_line(line, sizeof line, PQerrorMessage(conn));
    mask_passwords(line, sizeof line, p->conninfo);
    int code = strstr(line, "authentication failed") || strstr(line, "no password supplied") ? EP_EPERM
               : strstr(line, "timeout expired")                                              ? EP_ETIMEDOUT
                                                                                              : EP_EIO;
    snprintf(err, PGS_MESSAGE_MAX, "cannot connect to %.300s: %.440s", where, line);
    PQfinish(conn);
    return code;
  }
  PQsetNoticeProcessor(conn, ignore_notice, NULL);
  const char *encoding = PQparameterStatus(conn, "server_encoding");
  if (!encoding || (strcmp(encoding, "UTF8") != 0 && strcmp(encoding, "SQL_ASCII") != 0)) {
    snprintf(err, PGS_MESSAGE_MAX, "%s has encoding %s; edgeprov needs UTF8 (createdb -E UTF8)", where,
             encoding ? encoding : "(unknown)");
    PQfinish(conn);
    return EP_ENOTSUP;
  }
  /* Per session, whatever the server's defaults: an acknowledged commit is on disk, no
   * statement runs unbounded, and writers see each other's commits (read committed; the
   * revision lock in edgeprov_txn relies on it). */
  char setup[256];
  snprintf(setup, sizeof setup,
           "SET synchronous_commit = on; SET statement_timeout = %d; "
           "SET default_transaction_isolation = 'read committed'",
           p->statement_timeout_ms);
  char why[PGS_MESSAGE_MAX];
  int r = pgs_exec(conn, p, setup, "cannot set up the session", why);
  if (r < 0) {
    snprintf(err, PGS_MESSAGE_MAX, "%.300s: %.460s", where, why);
    PQfinish(conn);
    return r;
  }
  *out = conn;
  return 0;
}

bool pgs_usable(PGconn *conn) {
  if (!conn || PQstatus(conn) != CONNECTION_OK || PQtransactionStatus(conn) != PQTRANS_IDLE) return false;
  /* Twice: the first read may take a message the server sent before it closed (a restart's
   * "terminating connection"), the second then sees the end of the connection. */
  for (int i = 0; i < 2; i++) {
    if (!PQconsumeInput(conn)) return false;
    (void)PQisBusy(conn); /* parses it: an error while idle goes to the notice processor */
  }
  return PQstatus(conn) == CONNECTION_OK;
}

int pgs_await(PGconn *conn, const pgs_params *p, char err[PGS_MESSAGE_MAX]) {
  int64_t deadline = now_ms() + p->statement_timeout_ms + PGS_AWAIT_MARGIN_MS;
  while (PQisBusy(conn)) {
    int64_t left = deadline - now_ms();
    if (left <= 0) {
      snprintf(err, PGS_MESSAGE_MAX, "no answer from PostgreSQL within %d ms",
               p->statement_timeout_ms + PGS_AWAIT_MARGIN_MS);
      return EP_ETIMEDOUT;
    }
    struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
    if (pfd.fd < 0) return pgs_fail(conn, NULL, "lost the connection to PostgreSQL", err);
    int n = poll(&pfd, 1, (int)left);
    if (n < 0 && errno != EINTR) {
      snprintf(err, PGS_MESSAGE_MAX, "cannot wait for PostgreSQL: %s", strerror(errno));
      return EP_EIO;
    }
    if (n > 0 && !PQconsumeInput(conn)) return pgs_fail(conn, NULL, "lost the connection to PostgreSQL", err);
  }
  return 0;
}

PGresult *pgs_next(PGconn *conn, const pgs_params *p, int *code, char err[PGS_MESSAGE_MAX]) {
  int r = pgs_await(conn, p, err);
  if (r < 0) {
    *code = r;
    return NULL;
  }
  *code = 0;
  return PQgetResult(conn);
}

int pgs_exec(PGconn *conn, const pgs_params *p, const char *sql, const char *what, char err[PGS_MESSAGE_MAX]) {
  if (!PQsendQuery(conn, sql)) return pgs_fail(conn, NULL, what, err);
  int r = 0;
  for (;;) {
    int wait = pgs_await(conn, p, err);
    if (wait < 0) return wait;
    PGresult *res = PQgetResult(conn);
    if (!res) break;
    ExecStatusType status = PQresultStatus(res);
    if (r == 0 && status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) r = pgs_fail(conn, res, what, err);
    PQclear(res);
  }
  return r;
}

int64_t pgs_int(const PGresult *res, int row, int col) {
  if (PQgetisnull(res, row, col)) return 0;
  const unsigned char *v = (const unsigned char *)PQgetvalue(res, row, col);
  int len = PQgetlength(res, row, col);
  uint64_t x = 0;
  for (int i = 0; i < len; i++) x = (x << 8) | v[i];
  if (len == 2) return (int16_t)x;
  if (len == 4) return (int32_t)x;
  return (int64_t)x;
}

/* Reads the schema_version row: 0 when there is none. */
static int schema_version(PGconn *conn, const pgs_params *p, int64_t *out, char err[PGS_MESSAGE_MAX]) {
  if (!PQsendQueryParams(conn, "SELECT value FROM edgeprov_meta WHERE name = 'schema_version'", 0, NULL, NULL, NULL,
                         NULL, 1))
    return pgs_fail(conn, NULL, "cannot read the schema version", err);
  int r = 0;
  *out = 0;
  for (;;) {
    PGresult *res = pgs_next(conn, p, &r, err);
    if (!res) return r;
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
      r = pgs_fail(conn, res, "cannot read the schema version", err);
    else if (PQntuples(res) == 1)
      *out = pgs_int(res, 0, 0);
    PQclear(res);
    if (r < 0) {
      while ((res = PQgetResult(conn))) PQclear(res);
      return r;
    }
  }
}

int pgs_schema_init(PGconn *conn, const pgs_params *p, char err[PGS_MESSAGE_MAX]) {
  int r = pgs_exec(conn, p,
                   "BEGIN; SELECT pg_advisory_xact_lock(" PGS_SCHEMA_LOCK "); "
                   "CREATE TABLE IF NOT EXISTS edgeprov_meta (name text PRIMARY KEY, value bigint NOT NULL)",
                   "cannot create the schema", err);
  int64_t version = 0;
  if (r == 0) r = schema_version(conn, p, &version, err);
  if (r == 0 && version == 0) r = pgs_exec(conn, p, schema_sql, "cannot create the schema", err);
  if (r == 0 && version > PGS_SCHEMA_VERSION) {
    char where[PGS_MESSAGE_MAX / 2];
    pgs_describe(p, conn, where, sizeof where);
    snprintf(err, PGS_MESSAGE_MAX, "%s has schema version %lld, newer than this plugin's %d: use a newer edgeprov",
             where, (long long)version, PGS_SCHEMA_VERSION);
    r = EP_ENOTSUP;
  }
  if (r == 0) return pgs_exec(conn, p, "COMMIT", "cannot commit the schema", err);
  if (PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE) {
    char ignored[PGS_MESSAGE_MAX];
    pgs_exec(conn, p, "ROLLBACK", "rollback", ignored);
  }
  return r;
}
