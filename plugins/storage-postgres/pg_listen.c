/* storage-postgres: the listener, see pg_listen.h. */
#define _GNU_SOURCE /* pipe2 */
#include "pg_listen.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <edgeprov/abi.h>

#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 5000

/* Waits up to ms for the stop pipe; true when stopping. */
static bool stopped_within(pgs_listener *l, int ms) {
  struct pollfd p = {.fd = l->stop_pipe[0], .events = POLLIN};
  return poll(&p, 1, ms) > 0;
}

/* Reads the committed revision on conn and passes it to the waiters. 0, or -1 when the
 * connection failed. */
static int read_revision(pgs_listener *l, PGconn *conn) {
  PGresult *res = PQexec(conn, "SELECT value FROM edgeprov_meta WHERE name = 'revision'");
  int r = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 ? 0 : -1;
  if (r == 0) commit_wait_note(l->commits, strtoull(PQgetvalue(res, 0, 0), NULL, 10));
  PQclear(res);
  return r;
}

/* Connects, LISTENs and reads the revision committed meanwhile. NULL when it cannot. */
static PGconn *listen_once(pgs_listener *l) {
  char err[PGS_MESSAGE_MAX];
  PGconn *conn = NULL;
  if (pgs_connect(&conn, l->params, err) < 0) return NULL;
  if (pgs_exec(conn, l->params, "LISTEN " PGS_NOTIFY_CHANNEL, "LISTEN", err) < 0) {
    PQfinish(conn);
    return NULL;
  }
  /* After LISTEN: a commit between this read and the first notification is not lost. */
  if (read_revision(l, conn) < 0) {
    PQfinish(conn);
    return NULL;
  }
  return conn;
}

static void *listener_main(void *arg) {
  pgs_listener *l = arg;
  int backoff = BACKOFF_MIN_MS;
  while (!stopped_within(l, 0)) {
    PGconn *conn = listen_once(l);
    if (!conn) {
      if (stopped_within(l, backoff)) break;
      backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
      continue;
    }
    backoff = BACKOFF_MIN_MS;
    atomic_store(&l->listening, true);
    for (;;) {
      struct pollfd p[2] = {{.fd = PQsocket(conn), .events = POLLIN}, {.fd = l->stop_pipe[0], .events = POLLIN}};
      int n = poll(p, 2, -1);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 || p[1].revents) break;
      if (!PQconsumeInput(conn)) break; /* the connection is gone: reconnect */
      /* A notification is a hint that something committed, not a revision to believe (any
       * role may NOTIFY this channel): the revision is read from the table. */
      bool notified = false;
      for (PGnotify *note; (note = PQnotifies(conn)); PQfreemem(note)) notified = true;
      if (notified && read_revision(l, conn) < 0) break;
    }
    atomic_store(&l->listening, false);
    PQfinish(conn);
  }
  return NULL;
}

int pgs_listener_start(pgs_listener *l, const pgs_params *params, commit_wait *commits) {
  l->params = params;
  l->commits = commits;
  atomic_store(&l->listening, false);
  if (pipe2(l->stop_pipe, O_CLOEXEC) < 0) return -errno;
  if (pthread_create(&l->thread, NULL, listener_main, l) != 0) {
    close(l->stop_pipe[0]);
    close(l->stop_pipe[1]);
    return EP_ENOMEM;
  }
  l->running = true;
  return 0;
}

void pgs_listener_stop(pgs_listener *l) {
  if (!l->running) return;
  if (write(l->stop_pipe[1], "x", 1) < 0) { /* a full pipe already says stop */
  }
  pthread_join(l->thread, NULL);
  close(l->stop_pipe[0]);
  close(l->stop_pipe[1]);
  l->running = false;
}
