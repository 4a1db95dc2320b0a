/* core: the embedded HTTPS server over libmicrohttpd, see https.h. */
#define _GNU_SOURCE /* strdup, explicit_bzero, pthread_setname_np, POLLRDHUP */
#include "net/https.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "base/secret.h"
#include "net/https_files.h"

/* How often the deadline thread looks for late requests, and how often at most it logs the
 * connections closed and refused since it last did. */
#define SWEEP_INTERVAL_MS 250
#define REPORT_INTERVAL_MS 10000

typedef struct route {
  char *method;
  char *path;
  ep_https_handler handler;
  void *data;
} route;

typedef struct mount {
  char *url_path; /* "/boot" */
  char *directory;
} mount;

/* One open connection as the limits see it: made by on_connection when libmicrohttpd
 * accepts, freed when it closes the connection; guarded by the server's conns_lock. */
typedef struct tracked {
  struct tracked *prev, *next;
  int fd;
  int family; /* AF_INET or AF_INET6: the peer address in addr */
  uint8_t addr[16];
  bool receiving;      /* waiting for (the rest of) a request: held to deadline_ms, and evictable */
  bool closing;        /* shut down here (evicted, refused or late): no longer counted */
  int64_t since_ms;    /* when it began to wait: eviction closes the one waiting longest */
  int64_t deadline_ms; /* CLOCK_MONOTONIC */
} tracked;

typedef struct upload upload;

/* One streamed response: made when a handler's answer streams, freed by libmicrohttpd's
 * free callback of the response; in the server's streams under streams_lock. */
typedef struct stream_conn {
  struct stream_conn *prev, *next;
  ep_https_server *server;
  struct MHD_Connection *connection;
  void *stream;
  const ep_https_stream_ops *ops;
  bool suspended;     /* waiting for a wake (streams_lock) */
  bool woken;         /* a wake came since read last found nothing (streams_lock) */
  bool keepalive_due; /* the keep-alive tick woke it (streams_lock) */
  bool ending;        /* the server stops: the response ends (streams_lock) */
  int64_t sent_ms;    /* when it last sent something (streams_lock) */
} stream_conn;

struct ep_https_server {
  mount mounts[EP_HTTPS_MOUNTS_MAX];
  size_t mount_count;
  struct MHD_Daemon *mhd;
  struct sockaddr_storage addr;
  char *cert;
  char *key;
  route routes[EP_HTTPS_ROUTES_MAX];
  size_t route_count;
  ep_https_limits limits;

  pthread_mutex_t conns_lock; /* guards conns, live, the counters and sweeping */
  pthread_cond_t sweep_wake;  /* the deadline thread's tick, or its stop */
  tracked *conns;
  size_t live;                        /* connections in conns not closing */
  uint64_t refused, evicted, late;    /* since the last report */
  bool sweeping;                      /* the deadline thread runs */
  pthread_t sweeper;

  pthread_mutex_t jobs_lock; /* guards jobs and jobs_stopping */
  pthread_cond_t jobs_more;
  upload *jobs_head, *jobs_tail; /* requests waiting for a handler thread */
  bool jobs_stopping;
  pthread_t handlers[EP_HTTPS_THREADS_MAX];
  size_t handler_count; /* 0: handlers run on the calling thread (serve_fd) */
  bool locks_ready;
  ep_https_file_observer file_observer; /* NULL: none */
  void *file_observer_data;

  pthread_mutex_t streams_lock; /* guards streams, stream_count and each stream_conn's flags */
  stream_conn *streams;
  size_t stream_count;
  unsigned streams_max;
  bool streams_ending; /* the server stops: no stream starts or waits */
  unsigned keepalive_s;
  char *keepalive_text; /* NULL: none */
};

typedef enum { UPLOAD_RECEIVING, UPLOAD_QUEUED, UPLOAD_ANSWERED } upload_stage;

/* What is being received for one request: a raw body, or a form decoded as it arrives; then,
 * while a handler thread answers it, the request and the answer. */
struct upload {
  uint8_t data[EP_HTTPS_BODY_MAX];
  size_t len;
  bool too_large;
  bool is_form;                          /* application/x-www-form-urlencoded */
  struct MHD_PostProcessor *form_parser; /* while the form arrives */
  ep_https_form_field form[EP_HTTPS_FORM_FIELDS_MAX];
  size_t form_count;
  bool form_invalid;
  ep_https_form_field query[EP_HTTPS_QUERY_MAX];
  size_t query_count;
  bool query_invalid;
  upload_stage stage;
  upload *next; /* in the server's jobs */
  struct MHD_Connection *connection;
  const route *rt;
  ep_https_request request;
  char *user, *password; /* HTTP Basic credentials (MHD_free) */
  ep_https_response response;
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *ep_https_form_value(const ep_https_request *request, const char *name) {
  for (size_t i = 0; i < request->form_count; i++)
    if (strcmp(request->form[i].name, name) == 0) return request->form[i].value;
  return NULL;
}

const char *ep_https_query_value(const ep_https_request *request, const char *name) {
  for (size_t i = 0; i < request->query_count; i++)
    if (strcmp(request->query[i].name, name) == 0) return request->query[i].value;
  return NULL;
}

bool ep_https_bearer_matches(const ep_https_request *request, const char *token) {
  return token && strncmp(request->authorization, "Bearer ", 7) == 0 &&
         ep_secret_equal(request->authorization + 7, token);
}

const char *ep_https_header_value(const ep_https_request *request, const char *name) {
  return request->connection ? MHD_lookup_connection_value(request->connection, MHD_HEADER_KIND, name) : NULL;
}

/* Keeps a query argument of the request (libmicrohttpd decoded it). */
static enum MHD_Result on_query_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
  (void)kind;
  upload *u = cls;
  if (!value) value = "";
  if (u->query_count == EP_HTTPS_QUERY_MAX || strlen(key) >= EP_HTTPS_FORM_NAME_MAX ||
      strlen(value) >= EP_HTTPS_FORM_VALUE_MAX) {
    u->query_invalid = true;
    return MHD_YES;
  }
  ep_https_form_field *arg = &u->query[u->query_count++];
  memcpy(arg->name, key, strlen(key) + 1);
  memcpy(arg->value, value, strlen(value) + 1);
  return MHD_YES;
}

/* Receives a form field from libmicrohttpd, possibly in pieces (off > 0 continues it). */
static enum MHD_Result on_form_field(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                                     const char *content_type, const char *transfer_encoding, const char *data,
                                     uint64_t off, size_t size) {
  (void)kind, (void)filename, (void)content_type, (void)transfer_encoding;
  upload *u = cls;
  ep_https_form_field *field = u->form_count ? &u->form[u->form_count - 1] : NULL;
  if (off == 0 || !field || strcmp(field->name, key) != 0) {
    if (u->form_count == EP_HTTPS_FORM_FIELDS_MAX || strlen(key) >= EP_HTTPS_FORM_NAME_MAX) {
      u->form_invalid = true;
      return MHD_YES;
    }
    field = &u->form[u->form_count++];
    memcpy(field->name, key, strlen(key) + 1);
    field->value[0] = '\0';
  }
  size_t used = strlen(field->value);
  if (used + size >= EP_HTTPS_FORM_VALUE_MAX || memchr(data, '\0', size)) {
    u->form_invalid = true;
    return MHD_YES;
  }
  memcpy(field->value + used, data, size);
  field->value[used + size] = '\0';
  return MHD_YES;
}

static int parse_address(const char *address, struct sockaddr_storage *out) {
  char host[256];
  const char *colon = strrchr(address, ':');
  if (!colon || (size_t)(colon - address) >= sizeof host) return -1;
  memcpy(host, address, (size_t)(colon - address));
  host[colon - address] = '\0';
  const char *digits = colon + 1;
  if (!*digits || strspn(digits, "0123456789") != strlen(digits) || strlen(digits) > 5) return -1;
  long port = strtol(digits, NULL, 10);
  if (port > 65535) return -1;
  memset(out, 0, sizeof *out);
  struct sockaddr_in *v4 = (struct sockaddr_in *)out;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
  size_t hl = strlen(host);
  if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
    host[hl - 1] = '\0';
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    return inet_pton(AF_INET6, host + 1, &v6->sin6_addr) == 1 ? 0 : -1;
  }
  if (strcmp(host, "localhost") == 0) snprintf(host, sizeof host, "127.0.0.1");
  v4->sin_family = AF_INET;
  v4->sin_port = htons((uint16_t)port);
  return inet_pton(AF_INET, host, &v4->sin_addr) == 1 ? 0 : -1;
}

static bool is_loopback(const struct sockaddr_storage *a) {
  if (a->ss_family == AF_INET) return (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24) == 127;
  return a->ss_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)a)->sin6_addr);
}

int ep_https_server_new(ep_https_server **out, const char *address, const char *cert_pem, const char *key_pem) {
  ep_https_server *s = calloc(1, sizeof *s);
  if (!s) return ep_error_set(EP_ENOMEM, "out of memory");
  s->limits = (ep_https_limits){EP_HTTPS_THREADS_DEFAULT,         EP_HTTPS_HANDLER_THREADS_DEFAULT,
                                EP_HTTPS_CONNECTIONS_MAX_DEFAULT, EP_HTTPS_CONNECTIONS_PER_IP_DEFAULT,
                                EP_HTTPS_HEADER_TIMEOUT_S_DEFAULT, EP_HTTPS_IDLE_TIMEOUT_S_DEFAULT};
  pthread_condattr_t monotonic;
  if (pthread_condattr_init(&monotonic) != 0) {
    free(s);
    return ep_error_set(EP_ENOMEM, "out of memory");
  }
  pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
  pthread_mutex_init(&s->conns_lock, NULL);
  pthread_cond_init(&s->sweep_wake, &monotonic);
  pthread_mutex_init(&s->jobs_lock, NULL);
  pthread_cond_init(&s->jobs_more, NULL);
  pthread_mutex_init(&s->streams_lock, NULL);
  s->streams_max = EP_HTTPS_STREAMS_DEFAULT;
  pthread_condattr_destroy(&monotonic);
  s->locks_ready = true;
  int r = 0;
  if (parse_address(address, &s->addr) < 0)
    r = ep_error_set(EP_EINVAL, "'listen.https': '%s' is not host:port with an IP address", address);
  else if (!cert_pem && !is_loopback(&s->addr))
    r = ep_error_set(EP_EINVAL, "'listen.https' %s is not a loopback address: HTTPS needs tls.cert and tls.key", address);
  else if (cert_pem && (!(s->cert = strdup(cert_pem)) || !(s->key = strdup(key_pem ? key_pem : ""))))
    r = ep_error_set(EP_ENOMEM, "out of memory");
  if (r < 0) {
    ep_https_server_free(s);
    return r;
  }
  *out = s;
  return 0;
}

int ep_https_server_set_limits(ep_https_server *s, const ep_https_limits *l) {
  if (s->mhd) return ep_error_set(EP_EINVAL, "cannot change the HTTPS limits: the server runs");
  const char *bad = NULL;
  if (l->threads < 1 || l->threads > EP_HTTPS_THREADS_MAX) bad = "https.threads";
  else if (l->handler_threads < 1 || l->handler_threads > EP_HTTPS_THREADS_MAX) bad = "https.handler_threads";
  else if (l->connections_max < 1 || l->connections_max > EP_HTTPS_CONNECTIONS_MAX) bad = "https.connections_max";
  else if (l->connections_per_ip < 1 || l->connections_per_ip > l->connections_max) bad = "https.connections_per_ip";
  else if (l->header_timeout_s < 1 || l->header_timeout_s > EP_HTTPS_TIMEOUT_S_MAX) bad = "https.header_timeout_s";
  else if (l->idle_timeout_s < 1 || l->idle_timeout_s > EP_HTTPS_TIMEOUT_S_MAX) bad = "https.idle_timeout_s";
  if (bad)
    return ep_error_set(EP_EINVAL, "'%s': out of range (threads 1 to %d; connections_per_ip at most connections_max; "
                        "timeouts at least 1 s)", bad, EP_HTTPS_THREADS_MAX);
  s->limits = *l;
  return 0;
}

int ep_https_server_set_streams(ep_https_server *s, unsigned max, unsigned keepalive_s, const char *keepalive_text) {
  if (s->mhd) return ep_error_set(EP_EINVAL, "cannot change the stream limits: the server runs");
  if (max < 1 || max > EP_HTTPS_STREAMS_MAX || keepalive_s > EP_HTTPS_TIMEOUT_S_MAX)
    return ep_error_set(EP_EINVAL, "streams: %u open at most is out of range (1 to %d)", max, EP_HTTPS_STREAMS_MAX);
  char *text = keepalive_text && *keepalive_text ? strdup(keepalive_text) : NULL;
  if (keepalive_text && *keepalive_text && !text) return ep_error_set(EP_ENOMEM, "out of memory");
  free(s->keepalive_text);
  s->keepalive_text = text;
  s->streams_max = max;
  s->keepalive_s = text ? keepalive_s : 0;
  return 0;
}

int ep_https_server_route(ep_https_server *s, const char *method, const char *path, ep_https_handler handler, void *data) {
  if (s->mhd || s->route_count == EP_HTTPS_ROUTES_MAX) return ep_error_set(EP_EINVAL, "cannot add route %s", path);
  route *rt = &s->routes[s->route_count];
  rt->method = strdup(method);
  rt->path = strdup(path);
  rt->handler = handler;
  rt->data = data;
  if (!rt->method || !rt->path) return ep_error_set(EP_ENOMEM, "out of memory");
  s->route_count++;
  return 0;
}

int ep_https_server_serve_directory(ep_https_server *s, const char *url_path, const char *directory) {
  if (s->mhd || s->mount_count == EP_HTTPS_MOUNTS_MAX)
    return ep_error_set(EP_EINVAL, "cannot serve %s: too many directories, or the server runs", url_path);
  for (size_t i = 0; i < s->mount_count; i++)
    if (strcmp(s->mounts[i].url_path, url_path) == 0)
      return ep_error_set(EP_EEXIST, "%s is already served from %s", url_path, s->mounts[i].directory);
  mount *m = &s->mounts[s->mount_count];
  if (!(m->url_path = strdup(url_path)) || !(m->directory = strdup(directory))) {
    free(m->url_path);
    return ep_error_set(EP_ENOMEM, "out of memory");
  }
  s->mount_count++;
  return 0;
}

void ep_https_server_observe_files(ep_https_server *s, ep_https_file_observer observer, void *data) {
  s->file_observer = observer;
  s->file_observer_data = data;
}

/* The client's address as text ("" when unknown), an IPv4-mapped IPv6 address as IPv4. */
static void peer_text(struct MHD_Connection *connection, char out[INET6_ADDRSTRLEN]) {
  out[0] = '\0';
  const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  const struct sockaddr *a = info ? info->client_addr : NULL;
  if (a && a->sa_family == AF_INET) {
    inet_ntop(AF_INET, &((const struct sockaddr_in *)a)->sin_addr, out, INET6_ADDRSTRLEN);
  } else if (a && a->sa_family == AF_INET6) {
    const struct in6_addr *v6 = &((const struct sockaddr_in6 *)a)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(v6)) inet_ntop(AF_INET, v6->s6_addr + 12, out, INET6_ADDRSTRLEN);
    else inet_ntop(AF_INET6, v6, out, INET6_ADDRSTRLEN);
  }
}

/* The published directory url falls under, with *rel set to the rest of the path. */
static const mount *find_mount(const ep_https_server *s, const char *url, const char **rel) {
  for (size_t i = 0; i < s->mount_count; i++) {
    size_t n = strlen(s->mounts[i].url_path);
    if (strncmp(url, s->mounts[i].url_path, n) == 0 && url[n] == '/') {
      *rel = url + n + 1;
      return &s->mounts[i];
    }
  }
  return NULL;
}

/* Answers with body (malloc'd, taken); allow, when not NULL, is the Allow header of a 405. */
static enum MHD_Result respond_allow(struct MHD_Connection *connection, int status, const char *type, char *body,
                                     size_t len, const char *allow) {
  struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
  if (!resp) {
    free(body);
    return MHD_NO;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  if (allow) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
  enum MHD_Result r = MHD_queue_response(connection, (unsigned)status, resp);
  MHD_destroy_response(resp);
  return r;
}

static enum MHD_Result respond(struct MHD_Connection *connection, int status, const char *type, char *body, size_t len) {
  return respond_allow(connection, status, type, body, len, NULL);
}

static enum MHD_Result respond_text(struct MHD_Connection *connection, int status, const char *text) {
  char *body = strdup(text);
  return body ? respond(connection, status, "text/plain", body, strlen(body)) : MHD_NO;
}

/* 405 with the methods the path takes in Allow (RFC 9110 section 15.5.6). */
static enum MHD_Result respond_not_allowed(struct MHD_Connection *connection, const char *allow) {
  char *body = strdup("method not allowed\n");
  return body ? respond_allow(connection, 405, "text/plain", body, strlen(body), allow) : MHD_NO;
}

/* ---- connection limits and the request deadline ------------------------------------------
 *
 * libmicrohttpd's own limits do not stop a slowloris: its connection timeout is an idle
 * timeout (a byte a second keeps a connection), and its per-IP and total limits refuse every
 * new connection once slow ones hold the slots, a legitimate client's from the same NAT too.
 * So the server keeps its own account of connections (on_connection, from
 * MHD_OPTION_NOTIFY_CONNECTION): a connection must deliver its whole request (headers, and
 * the body, at most EP_HTTPS_BODY_MAX) within header_timeout_s of being accepted, or, kept
 * alive, within idle_timeout_s + header_timeout_s of its previous response; the deadline thread
 * (sweep_main) closes a late one. A new connection over connections_per_ip or connections_max
 * closes the connection of that address (or of any, at the total cap) that has waited longest
 * for its request, the slowest of the slowloris, and is refused only when none waits; a client
 * that sends its request at once so always gets in. "Closes" is shutdown(2) on the socket,
 * which libmicrohttpd then reads as the peer leaving and closes on its own thread: it has no
 * call that closes a connection from outside. The socket stays open until on_connection's
 * CLOSED under conns_lock, so the descriptor shut down is always that connection's. */

static void track_address(tracked *t, const struct sockaddr *a) {
  t->family = a ? a->sa_family : AF_UNSPEC;
  if (t->family == AF_INET) memcpy(t->addr, &((const struct sockaddr_in *)a)->sin_addr, 4);
  else if (t->family == AF_INET6) memcpy(t->addr, &((const struct sockaddr_in6 *)a)->sin6_addr, 16);
}

static bool same_address(const tracked *a, const tracked *b) {
  return a->family == b->family && memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : 16) == 0;
}

/* Shuts t down (conns_lock held). */
static void close_tracked(ep_https_server *s, tracked *t) {
  t->closing = true;
  s->live--;
  shutdown(t->fd, SHUT_RDWR);
}

/* The open connection that has waited longest for its request, from peer's address when peer
 * is not NULL; NULL when none waits (conns_lock held). */
static tracked *longest_waiting(ep_https_server *s, const tracked *peer) {
  tracked *oldest = NULL;
  for (tracked *t = s->conns; t; t = t->next)
    if (!t->closing && t->receiving && (!peer || same_address(t, peer)) && (!oldest || t->since_ms < oldest->since_ms))
      oldest = t;
  return oldest;
}

static void on_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
  ep_https_server *s = cls;
  tracked *t = *socket_context;
  if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
    if (!t) return;
    pthread_mutex_lock(&s->conns_lock);
    if (t->prev) t->prev->next = t->next;
    else s->conns = t->next;
    if (t->next) t->next->prev = t->prev;
    if (!t->closing) s->live--;
    pthread_mutex_unlock(&s->conns_lock);
    free(t);
    *socket_context = NULL;
    return;
  }
  const union MHD_ConnectionInfo *fd = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
  const union MHD_ConnectionInfo *peer = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (!fd) return;
  if (!(t = calloc(1, sizeof *t))) {
    shutdown(fd->connect_fd, SHUT_RDWR); /* out of memory: refused */
    return;
  }
  t->fd = fd->connect_fd;
  track_address(t, peer ? peer->client_addr : NULL);
  t->receiving = true;
  t->since_ms = now_ms();
  t->deadline_ms = t->since_ms + (int64_t)s->limits.header_timeout_s * 1000;
  pthread_mutex_lock(&s->conns_lock);
  size_t from_peer = 0;
  for (tracked *o = s->conns; o; o = o->next) from_peer += !o->closing && same_address(o, t);
  bool over_peer = from_peer >= s->limits.connections_per_ip;
  if (over_peer || s->live >= s->limits.connections_max) {
    tracked *victim = longest_waiting(s, over_peer ? t : NULL);
    if (victim) {
      close_tracked(s, victim);
      s->evicted++;
    } else {
      t->closing = true; /* refused: every connection it would displace is busy */
      shutdown(t->fd, SHUT_RDWR);
      s->refused++;
    }
  }
  if (!t->closing) s->live++;
  t->next = s->conns;
  if (s->conns) s->conns->prev = t;
  s->conns = t;
  pthread_mutex_unlock(&s->conns_lock);
  *socket_context = t;
}

static tracked *tracked_of(struct MHD_Connection *connection) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return ci ? ci->socket_context : NULL;
}

/* The request on connection has been read whole: no longer held to the deadline, nor evictable. */
static void request_received(ep_https_server *s, struct MHD_Connection *connection) {
  tracked *t = tracked_of(connection);
  if (!t) return;
  pthread_mutex_lock(&s->conns_lock);
  t->receiving = false;
  pthread_mutex_unlock(&s->conns_lock);
}

/* The response on connection has been sent: a kept-alive connection waits for the next request. */
static void response_sent(ep_https_server *s, struct MHD_Connection *connection) {
  tracked *t = tracked_of(connection);
  if (!t) return;
  pthread_mutex_lock(&s->conns_lock);
  t->receiving = true;
  t->since_ms = now_ms();
  t->deadline_ms = t->since_ms + ((int64_t)s->limits.idle_timeout_s + s->limits.header_timeout_s) * 1000;
  pthread_mutex_unlock(&s->conns_lock);
}

static void stream_tick(ep_https_server *s);

/* The deadline thread: closes the connections whose request is late, and logs now and then how
 * many connections the limits closed or refused. */
static void *sweep_main(void *arg) {
  ep_https_server *s = arg;
  pthread_setname_np(pthread_self(), "https-deadline");
  int64_t reported = now_ms();
  pthread_mutex_lock(&s->conns_lock);
  while (s->sweeping) {
    struct timespec tick = ep_clock_deadline(CLOCK_MONOTONIC, SWEEP_INTERVAL_MS); /* sweep_wake's clock */
    pthread_cond_timedwait(&s->sweep_wake, &s->conns_lock, &tick);
    int64_t now = now_ms();
    for (tracked *t = s->conns; t; t = t->next)
      if (!t->closing && t->receiving && now >= t->deadline_ms) {
        close_tracked(s, t);
        s->late++;
      }
    if (now - reported >= REPORT_INTERVAL_MS && (s->late || s->evicted || s->refused)) {
      uint64_t late = s->late, evicted = s->evicted, refused = s->refused;
      size_t live = s->live;
      s->late = s->evicted = s->refused = 0;
      reported = now;
      pthread_mutex_unlock(&s->conns_lock); /* not held while the log is written */
      ep_log(EP_LOG_WARN, "https",
             "connections since the last report: %" PRIu64 " closed at the request deadline (https.header_timeout_s), "
             "%" PRIu64 " closed to make room and %" PRIu64 " refused (https.connections_per_ip, "
             "https.connections_max); %zu open",
             late, evicted, refused, live);
      pthread_mutex_lock(&s->conns_lock);
    }
    pthread_mutex_unlock(&s->conns_lock); /* streams_lock is never taken under conns_lock */
    stream_tick(s);
    pthread_mutex_lock(&s->conns_lock);
  }
  pthread_mutex_unlock(&s->conns_lock);
  return NULL;
}

/* ---- route handlers, off the connection threads ---------------------------------------------
 *
 * A route handler may block: the token endpoint and the JWKS call the identity plugin, which
 * may ask Keycloak (up to its timeout_ms, 10 s by default). On libmicrohttpd's few connection
 * threads that would stall every other client, boot artifacts included, so a complete request
 * for a route is suspended (MHD_suspend_connection) and queued for the handler threads, which
 * run the handler and resume the connection; libmicrohttpd then calls on_request again, which
 * sends the answer. A suspended connection holds no thread. */

static void *handler_main(void *arg) {
  ep_https_server *s = arg;
  pthread_setname_np(pthread_self(), "https-handler");
  pthread_mutex_lock(&s->jobs_lock);
  for (;;) {
    while (!s->jobs_head && !s->jobs_stopping) pthread_cond_wait(&s->jobs_more, &s->jobs_lock);
    upload *u = s->jobs_head;
    if (!u) break; /* stopping, and every queued request answered */
    if (!(s->jobs_head = u->next)) s->jobs_tail = NULL;
    bool stopping = s->jobs_stopping;
    pthread_mutex_unlock(&s->jobs_lock);
    if (stopping) /* the server stops: not held up by what waits behind a slow handler */
      u->response = (ep_https_response){.status = 503, .content_type = "text/plain"};
    else
      u->rt->handler(u->rt->data, &u->request, &u->response);
    u->stage = UPLOAD_ANSWERED;
    MHD_resume_connection(u->connection); /* publishes u to the connection's thread */
    pthread_mutex_lock(&s->jobs_lock);
  }
  pthread_mutex_unlock(&s->jobs_lock);
  return NULL;
}

/* Queues u for a handler thread with connection suspended; false when the server stops (then
 * the caller answers). */
static bool queue_request(ep_https_server *s, struct MHD_Connection *connection, upload *u) {
  pthread_mutex_lock(&s->jobs_lock);
  bool queued = !s->jobs_stopping;
  if (queued) {
    MHD_suspend_connection(connection);
    u->connection = connection;
    u->stage = UPLOAD_QUEUED;
    u->next = NULL;
    if (s->jobs_tail) s->jobs_tail->next = u;
    else s->jobs_head = u;
    s->jobs_tail = u;
    pthread_cond_signal(&s->jobs_more);
  }
  pthread_mutex_unlock(&s->jobs_lock);
  return queued;
}

/* Clears what a request carried that may be secret: the Basic credentials and the form. */
static void forget_credentials(upload *u) {
  if (u->password) {
    explicit_bzero(u->password, strlen(u->password));
    MHD_free(u->password);
  }
  if (u->user) MHD_free(u->user);
  u->user = u->password = NULL;
  explicit_bzero(u->form, sizeof u->form); /* a form may carry a client secret */
}

/* The per-request state of a file request: no state, only a mark that its headers were seen. */
static char file_request;

/* ---- streamed responses ---------------------------------------------------------------------
 *
 * A streamed response (server-sent events) may stay open for hours with nothing to say most of
 * the time, so it must not hold a thread while it waits: libmicrohttpd asks read_stream for
 * more whenever the socket can take it, and when the stream has nothing, read_stream suspends
 * the connection (allowed from a content reader) and returns 0; ep_https_server_wake_streams,
 * or the deadline thread's keep-alive tick, resumes it and libmicrohttpd asks again. A wake
 * that comes between read and suspend is not lost: both happen under streams_lock, and read
 * does not suspend when woken was set since it began. A suspended connection does not see its
 * client leave; the keep-alive's write does. */

static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)pos;
  stream_conn *sc = cls;
  ep_https_server *s = sc->server;
  pthread_mutex_lock(&s->streams_lock);
  bool ending = sc->ending || s->streams_ending, keepalive = sc->keepalive_due;
  sc->keepalive_due = sc->woken = false;
  pthread_mutex_unlock(&s->streams_lock);
  if (ending) return MHD_CONTENT_READER_END_OF_STREAM;
  long n = sc->ops->read(sc->stream, buf, max);
  if (n < 0 || (size_t)n > max) return MHD_CONTENT_READER_END_OF_STREAM;
  size_t keep = s->keepalive_text ? strlen(s->keepalive_text) : 0;
  if (n == 0 && keepalive && keep && keep <= max) {
    memcpy(buf, s->keepalive_text, keep);
    n = (long)keep;
  }
  pthread_mutex_lock(&s->streams_lock);
  if (n > 0) {
    sc->sent_ms = now_ms();
  } else if (s->handler_count == 0) { /* serve_fd: nothing waits, the stream ends */
    n = -1;
  } else if (sc->ending || s->streams_ending) {
    n = -1;
  } else if (!sc->woken) {
    sc->suspended = true;
    MHD_suspend_connection(sc->connection);
  }
  pthread_mutex_unlock(&s->streams_lock);
  return n < 0 ? MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)n;
}

/* libmicrohttpd is done with the response: the stream leaves the server's list and is closed. */
static void free_stream(void *cls) {
  stream_conn *sc = cls;
  ep_https_server *s = sc->server;
  pthread_mutex_lock(&s->streams_lock);
  if (sc->prev) sc->prev->next = sc->next;
  else s->streams = sc->next;
  if (sc->next) sc->next->prev = sc->prev;
  s->stream_count--;
  pthread_mutex_unlock(&s->streams_lock);
  sc->ops->close(sc->stream);
  free(sc);
}

/* Starts the stream a handler answered (taken from resp), or answers 503 at the cap. */
static enum MHD_Result send_stream(ep_https_server *s, struct MHD_Connection *connection, ep_https_response *resp) {
  void *stream = resp->stream;
  const ep_https_stream_ops *ops = resp->stream_ops;
  resp->stream = NULL;
  stream_conn *sc = calloc(1, sizeof *sc);
  pthread_mutex_lock(&s->streams_lock);
  bool room = s->stream_count < s->streams_max && !s->streams_ending;
  if (room && sc) {
    *sc = (stream_conn){.next = s->streams, .server = s, .connection = connection, .stream = stream, .ops = ops,
                        .sent_ms = now_ms()};
    if (s->streams) s->streams->prev = sc;
    s->streams = sc;
    s->stream_count++;
  }
  pthread_mutex_unlock(&s->streams_lock);
  if (!room || !sc) {
    free(sc);
    ops->close(stream);
    return respond_text(connection, 503, "too many streams open: try again later\n");
  }
  struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, read_stream, sc, free_stream);
  if (!r) {
    free_stream(sc);
    return MHD_NO;
  }
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type ? resp->content_type : "text/plain");
  MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  enum MHD_Result q = MHD_queue_response(connection, (unsigned)resp->status, r);
  MHD_destroy_response(r); /* freed (free_stream) once the connection is done with it */
  return q;
}

void ep_https_server_wake_streams(ep_https_server *s) {
  pthread_mutex_lock(&s->streams_lock);
  for (stream_conn *sc = s->streams; sc; sc = sc->next) {
    sc->woken = true;
    if (sc->suspended) {
      sc->suspended = false;
      MHD_resume_connection(sc->connection);
    }
  }
  pthread_mutex_unlock(&s->streams_lock);
}

/* The deadline thread's tick, for the waiting streams: ends each whose client left (or sent
 * something: an event stream's client only listens), which libmicrohttpd does not see while the
 * connection is suspended, so that it frees its place under streams_max at once; and wakes each
 * silent for keepalive_s, to send the keep-alive. */
static void stream_tick(ep_https_server *s) {
  int64_t now = now_ms();
  pthread_mutex_lock(&s->streams_lock);
  size_t n = 0;
  struct pollfd *fds = s->stream_count ? calloc(s->stream_count, sizeof *fds) : NULL;
  for (stream_conn *sc = s->streams; fds && sc; sc = sc->next) {
    const union MHD_ConnectionInfo *fd =
        sc->suspended ? MHD_get_connection_info(sc->connection, MHD_CONNECTION_INFO_CONNECTION_FD) : NULL;
    fds[n++] = (struct pollfd){.fd = fd ? fd->connect_fd : -1, .events = POLLIN | POLLRDHUP};
  }
  if (n) poll(fds, n, 0);
  size_t k = 0;
  for (stream_conn *sc = s->streams; sc; sc = sc->next, k++) {
    bool gone = fds && k < n && fds[k].fd >= 0 && (fds[k].revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR));
    bool due = s->keepalive_s && now - sc->sent_ms >= (int64_t)s->keepalive_s * 1000;
    if (!sc->suspended || (!gone && !due)) continue;
    sc->ending = sc->ending || gone;
    sc->keepalive_due = due;
    sc->woken = true;
    sc->suspended = false;
    MHD_resume_connection(sc->connection);
  }
  pthread_mutex_unlock(&s->streams_lock);
  free(fds);
}

/* Ends every stream (the server stops): each suspended one is resumed, libmicrohttpd must find
 * none suspended when it stops. */
static void end_streams(ep_https_server *s) {
  pthread_mutex_lock(&s->streams_lock);
  s->streams_ending = true;
  for (stream_conn *sc = s->streams; sc; sc = sc->next) {
    sc->ending = true;
    if (sc->suspended) {
      sc->suspended = false;
      MHD_resume_connection(sc->connection);
    }
  }
  pthread_mutex_unlock(&s->streams_lock);
}

/* Whether url is path, or starts with path less its '*' when it ends in one. */
static bool route_matches(const char *path, const char *url) {
  size_t n = strlen(path);
  if (n && path[n - 1] == '*') return strncmp(path, url, n - 1) == 0;
  return strcmp(path, url) == 0;
}

/* Sends the answer a handler gave u's request. */
static enum MHD_Result send_answer(ep_https_server *s, struct MHD_Connection *connection, upload *u) {
  forget_credentials(u);
  ep_https_response *resp = &u->response;
  if (resp->stream && resp->stream_ops && !resp->body) return send_stream(s, connection, resp);
  if (resp->stream && resp->stream_ops) resp->stream_ops->close(resp->stream); /* a body and a stream: the body */
  resp->stream = NULL;
  if (!resp->body) return respond_text(connection, resp->status, "");
  char *body = resp->body; /* taken by respond */
  resp->body = NULL;
  return respond(connection, resp->status, resp->content_type, body, resp->len);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls) {
  (void)version;
  ep_https_server *s = cls;
  upload *u = *con_cls;
  if (*con_cls && !*upload_data_size) request_received(s, connection);
  const char *rel = NULL;
  const mount *m = find_mount(s, url, &rel);
  if (m && !*con_cls && strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
    request_received(s, connection); /* answered now; libmicrohttpd closes the connection after */
    return respond_not_allowed(connection, "GET, HEAD");
  }
  if (m && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)) {
    /* Answered on the second call, once the request is read: libmicrohttpd closes the
     * connection after a response queued on the first (headers only) call, and UEFI HTTP
     * boot cannot open a second TLS connection after its HEAD. A stray body is dropped. */
    if (!*con_cls) {
      *con_cls = &file_request;
      return MHD_YES;
    }
    if (*upload_data_size) {
      *upload_data_size = 0;
      return MHD_YES;
    }
    if (s->file_observer) {
      char peer[INET6_ADDRSTRLEN];
      peer_text(connection, peer);
      s->file_observer(s->file_observer_data, peer, url);
    }
    return ep_https_serve_file(connection, method, m->directory, rel);
  }
  if (!u) { /* first call: headers only */
    if (!(u = calloc(1, sizeof *u))) return MHD_NO;
    *con_cls = u;
    const char *type = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (type && strncasecmp(type, MHD_HTTP_POST_ENCODING_FORM_URLENCODED, strlen(MHD_HTTP_POST_ENCODING_FORM_URLENCODED)) == 0)
      u->is_form = (u->form_parser = MHD_create_post_processor(connection, 4096, on_form_field, u)) != NULL;
    return MHD_YES;
  }
  if (u->stage == UPLOAD_ANSWERED) return send_answer(s, connection, u); /* resumed by a handler thread */
  if (*upload_data_size) { /* body arriving */
    if (u->len + *upload_data_size > sizeof u->data)
      u->too_large = true;
    else if (u->form_parser && MHD_post_process(u->form_parser, upload_data, *upload_data_size) != MHD_YES)
      u->form_invalid = true;
    else if (!u->form_parser)
      memcpy(u->data + u->len, upload_data, *upload_data_size);
    u->len += u->too_large ? 0 : *upload_data_size;
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (u->form_parser) { /* the body is complete: destroying the parser delivers its last field */
    if (MHD_destroy_post_processor(u->form_parser) != MHD_YES) u->form_invalid = true;
    u->form_parser = NULL;
  }
  if (u->too_large) return respond_text(connection, 413, "request body too large\n");
  bool path_known = false;
  char allow[128] = ""; /* the methods routed on this path, for a 405 */
  for (size_t i = 0; i < s->route_count; i++) {
    route *rt = &s->routes[i];
    if (!route_matches(rt->path, url)) continue;
    path_known = true;
    size_t used = strlen(allow);
    snprintf(allow + used, sizeof allow - used, "%s%s", used ? ", " : "", rt->method);
    if (strcmp(rt->method, method) != 0) continue;
    /* The strings are libmicrohttpd's, valid until the request completes, which a suspended
     * connection does not. */
    const char *type = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    const char *auth = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    u->user = MHD_basic_auth_get_username_password(connection, &u->password);
    MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, on_query_arg, u);
    u->rt = rt;
    u->request = (ep_https_request){.method = method, .path = url, .content_type = type ? type : "",
                                    .authorization = auth ? auth : "", .body = u->is_form ? NULL : u->data,
                                    .body_len = u->is_form ? 0 : u->len, .form = u->form,
                                    .form_count = u->form_count, .form_invalid = u->form_invalid,
                                    .basic_user = u->user, .basic_password = u->password, .query = u->query,
                                    .query_count = u->query_count, .query_invalid = u->query_invalid,
                                    .connection = connection};
    u->response = (ep_https_response){.status = 500, .content_type = "text/plain"};
    if (s->handler_count > 0 && queue_request(s, connection, u)) return MHD_YES;
    if (s->handler_count == 0) rt->handler(rt->data, &u->request, &u->response);
    else u->response = (ep_https_response){.status = 503, .content_type = "text/plain"}; /* stopping */
    u->stage = UPLOAD_ANSWERED;
    return send_answer(s, connection, u);
  }
  return path_known ? respond_not_allowed(connection, allow) : respond_text(connection, 404, "not found\n");
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **con_cls, enum MHD_RequestTerminationCode code) {
  (void)code;
  response_sent(cls, connection);
  if (*con_cls == &file_request) {
    *con_cls = NULL;
    return;
  }
  upload *u = *con_cls;
  if (u && u->form_parser) MHD_destroy_post_processor(u->form_parser);
  if (u) {
    forget_credentials(u);
    free(u->response.body); /* an answer the connection closed before */
    if (u->response.stream && u->response.stream_ops) u->response.stream_ops->close(u->response.stream);
  }
  free(u);
  *con_cls = NULL;
}

/* The TLS listener's GnuTLS priorities: TLS 1.3, and TLS 1.2 with forward-secret AEAD suites
 * only: ECDHE (as on the gRPC listener) or DHE-RSA (RFC 7919 groups), with AES-GCM or
 * ChaCha20-Poly1305. No TLS 1.0/1.1, no CBC suites with their SHA-1/SHA-2 MACs, no static RSA
 * key exchange: a client offering only those gets a handshake failure
 * (tests/integration/https_tls.sh). DHE-RSA is there for UEFI HTTP boot: Debian 12's OVMF
 * offers TLS 1.2 with DHE-RSA or RSA key exchange only, no ECDHE (its ClientHello has no
 * supported_groups), and fetches ipxe.efi from this listener. */
#define TLS_PRIORITIES                                                                                  \
  "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:" \
  "-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:+DHE-RSA:%SERVER_PRECEDENCE"

/* The DHE-RSA group for a client that names none (OVMF): RFC 7919's ffdhe2048, a published
 * safe prime, so nothing to generate or keep secret. Without it GnuTLS offers no DHE. */
static const char dh_params[] =
    "-----BEGIN DH PARAMETERS-----\n"
    "MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz\n"
    "+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a\n"
    "87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7\n"
    "YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi\n"
    "7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD\n"
    "ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==\n"
    "-----END DH PARAMETERS-----\n";

/* Starts libmicrohttpd on s's handlers and limits; over TLS when tls (s has a certificate).
 * pool: with s's thread pool, connection account and suspendable requests (else one
 * connection served on the caller's thread, serve_fd). */
static struct MHD_Daemon *start_daemon(ep_https_server *s, unsigned int flags, uint16_t port, bool tls, bool pool) {
  const ep_https_limits *l = &s->limits;
  /* libmicrohttpd's own cap, above connections_max: the connections shut down here are
   * counted by it until their threads close them, and in a thread pool each thread gets an
   * equal share of it. Reached, a thread stops accepting; the account refuses long before. */
  unsigned backstop = l->connections_max * 2 + l->threads * 8;
  struct MHD_OptionItem options[] = {
      {MHD_OPTION_SOCK_ADDR, 0, &s->addr},
      {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s},
      {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)l->idle_timeout_s, NULL},
      {MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)EP_HTTPS_CONNECTION_MEMORY, NULL},
      {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)(pool ? backstop : 1024u), NULL},
      {pool ? MHD_OPTION_NOTIFY_CONNECTION : MHD_OPTION_END, (intptr_t)on_connection, s}, /* END ends the list */
      {pool && l->threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (intptr_t)l->threads, NULL},
      {MHD_OPTION_END, 0, NULL},
  };
  if (tls)
    return MHD_start_daemon(flags | MHD_USE_TLS, port, NULL, NULL, on_request, s, MHD_OPTION_ARRAY, options,
                            MHD_OPTION_HTTPS_MEM_CERT, s->cert, MHD_OPTION_HTTPS_MEM_KEY, s->key,
                            MHD_OPTION_HTTPS_PRIORITIES, TLS_PRIORITIES, MHD_OPTION_HTTPS_MEM_DHPARAMS, dh_params,
                            MHD_OPTION_END);
  return MHD_start_daemon(flags, port, NULL, NULL, on_request, s, MHD_OPTION_ARRAY, options, MHD_OPTION_END);
}

/* Stops the deadline and handler threads: handlers running finish, requests still queued get
 * 503, and every suspended connection is resumed (libmicrohttpd must find none suspended when
 * it stops). */
static void stop_threads(ep_https_server *s) {
  pthread_mutex_lock(&s->conns_lock);
  bool sweeping = s->sweeping;
  s->sweeping = false;
  pthread_cond_signal(&s->sweep_wake);
  pthread_mutex_unlock(&s->conns_lock);
  if (sweeping) pthread_join(s->sweeper, NULL);
  pthread_mutex_lock(&s->jobs_lock);
  s->jobs_stopping = true;
  pthread_cond_broadcast(&s->jobs_more);
  pthread_mutex_unlock(&s->jobs_lock);
  for (size_t i = 0; i < s->handler_count; i++) pthread_join(s->handlers[i], NULL);
}

int ep_https_server_start(ep_https_server *s, int *ret_port) {
  if (s->mhd) return ep_error_set(EP_EINVAL, "the HTTPS server runs already");
  /* A fixed pool of threads, each with its own epoll set, serves every connection: threads
   * do not grow with clients. */
  unsigned int flags = MHD_ALLOW_SUSPEND_RESUME | (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES
                                                       ? MHD_USE_EPOLL_INTERNAL_THREAD
                                                       : MHD_USE_POLL_INTERNAL_THREAD);
  if (s->addr.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
  uint16_t port = s->addr.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&s->addr)->sin6_port)
                                                 : ntohs(((struct sockaddr_in *)&s->addr)->sin_port);
  pthread_mutex_lock(&s->jobs_lock);
  s->jobs_stopping = false;
  pthread_mutex_unlock(&s->jobs_lock);
  for (; s->handler_count < s->limits.handler_threads; s->handler_count++)
    if (pthread_create(&s->handlers[s->handler_count], NULL, handler_main, s) != 0) break;
  s->sweeping = s->handler_count > 0; /* before the thread starts: it runs while this holds */
  if (s->sweeping && pthread_create(&s->sweeper, NULL, sweep_main, s) != 0) s->sweeping = false;
  if (s->sweeping) s->mhd = start_daemon(s, flags, port, s->cert != NULL, true);
  if (!s->mhd) {
    bool threads = s->sweeping;
    stop_threads(s);
    s->handler_count = 0;
    if (!threads) return ep_error_set(EP_ENOMEM, "cannot start the HTTPS server's threads");
    return ep_error_set(EP_EIO, "cannot start the HTTPS server (address in use, or a bad certificate)");
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
  if (ret_port) *ret_port = info ? info->port : port;
  return 0;
}

size_t ep_https_server_connections(ep_https_server *s) {
  pthread_mutex_lock(&s->conns_lock);
  size_t live = s->live;
  pthread_mutex_unlock(&s->conns_lock);
  return live;
}

int ep_https_server_serve_fd(ep_https_server *s, int fd) {
  if (s->mhd) {
    close(fd);
    return ep_error_set(EP_EINVAL, "cannot serve a connection: the server runs");
  }
  struct MHD_Daemon *d = start_daemon(s, MHD_USE_NO_LISTEN_SOCKET, 0, false, false);
  if (!d) {
    close(fd);
    return ep_error_set(EP_EIO, "cannot start the HTTP server");
  }
  struct sockaddr_in peer = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int r = 0;
  if (MHD_add_connection(d, fd, (const struct sockaddr *)&peer, sizeof peer) != MHD_YES) /* closes fd */
    r = ep_error_set(EP_EIO, "cannot add the connection");
  for (;;) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    if (r < 0 || !info || info->num_connections == 0) break;
    if (MHD_run_wait(d, 1000) != MHD_YES) r = ep_error_set(EP_EIO, "the HTTP server failed");
  }
  MHD_stop_daemon(d); /* closes a connection still open */
  return r;
}

void ep_https_server_free(ep_https_server *s) {
  if (!s) return;
  if (s->mhd) {
    stop_threads(s);
    end_streams(s);
    MHD_stop_daemon(s->mhd); /* closes every stream */
  }
  if (s->locks_ready) {
    pthread_mutex_destroy(&s->streams_lock);
    pthread_mutex_destroy(&s->conns_lock);
    pthread_cond_destroy(&s->sweep_wake);
    pthread_mutex_destroy(&s->jobs_lock);
    pthread_cond_destroy(&s->jobs_more);
  }
  for (size_t i = 0; i < s->mount_count; i++) {
    free(s->mounts[i].url_path);
    free(s->mounts[i].directory);
  }
  for (size_t i = 0; i < s->route_count; i++) {
    free(s->routes[i].method);
    free(s->routes[i].path);
  }
  if (s->key) {
    explicit_bzero(s->key, strlen(s->key));
    free(s->key);
  }
  free(s->cert);
  free(s->keepalive_text);
  free(s);
}
