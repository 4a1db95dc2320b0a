/* core: the management API served over the rpc helper, see mgmt_server.h. */
#define _GNU_SOURCE /* strdup */
#include "northbound/mgmt_server.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <edgeprov/storage.h>

#include "edgeprov/v1/management.pb-c.h"
#include "base/error.h"
#include "base/log.h"
#include "northbound/mgmt.h"
#include "net/rpc.h"
#include "base/secret.h"
#include "provisioning/change_hub.h"

#define WATCH_PAGE (EP_RPC_SEND_QUEUE_MAX / 2) /* events read at a time: what ep_rpc_call_send_room promises */

struct ep_mgmt_server {
  ep_rpc_server *rpc;
  ep_inventory *inv;
  const struct ep_plugin_set *plugins;
  ep_change_hub *hub; /* wakes following watches */
  char *token; /* NULL on a UNIX socket */
};

/* True when the call may proceed; otherwise the call has been answered UNAUTHENTICATED. */
static bool authorized(const ep_mgmt_server *server, ep_rpc_call *call) {
  if (!server->token) return true;
  bool ok = ep_rpc_call_bearer_matches(call, server->token);
  if (!ok)
    ep_rpc_call_finish(call, EP_STATUS_UNAUTHENTICATED,
                       "an operator token is required: authorization: Bearer <token of auth.operator_token_file>",
                       NULL, 0);
  return ok;
}

static void handle_unary(void *data, ep_rpc_call *call, const uint8_t *request, size_t len) {
  ep_mgmt_server *server = data;
  if (!authorized(server, call)) return;
  const char *name = ep_rpc_call_method(call) + strlen(EP_MGMT_SERVICE);
  ep_mgmt_reply reply;
  ep_mgmt_unary(server->inv, server->plugins, name, request, len, &reply);
  ep_rpc_call_finish(call, reply.status, reply.message, reply.data, reply.len);
  ep_mgmt_reply_clear(&reply);
}

/* A WatchEvents stream, event-driven: it sends while the send queue has room, goes on when it
 * drained, and while following it holds no thread, only a subscription to every change. */
typedef struct watch {
  ep_mgmt_server *server;
  ep_rpc_call *call;
  uint64_t revision; /* last revision sent */
  bool started;      /* the request came */
  bool follow;
  int gone;          /* a send failed (its code): the call ends */
  ep_change_sub *following; /* holds a reference to the call */
} watch;

static int send_event(void *data, const ep_inv_event *event) {
  watch *w = data;
  size_t len = edgeprov__v1__event__get_packed_size(event);
  uint8_t *bytes = malloc(len ? len : 1);
  if (!bytes) return w->gone = ep_error_set(EP_ENOMEM, "out of memory"); /* end rather than skip */
  edgeprov__v1__event__pack(event, bytes);
  int r = ep_rpc_call_send(w->call, bytes, len);
  if (r < 0) w->gone = r;
  free(bytes);
  w->revision = event->revision;
  return w->gone;
}

/* Ends a watch whose next events were compacted away: the client cannot resume, so it is
 * told to rebuild its view from a list and watch from the current revision instead of
 * being left with a silent gap. */
static void finish_compacted(ep_rpc_call *call, uint64_t after_revision, uint64_t head) {
  char message[EP_ERROR_MESSAGE_MAX + 512];
  snprintf(message, sizeof message,
           "events after revision %llu are no longer kept (%s; the change log keeps the newest "
           "storage.change_log_retention revisions). Re-list hosts and instances (edgeprov host list, edgeprov "
           "instance list), then watch again from revision %llu (edgeprov events --after %llu)",
           (unsigned long long)after_revision, ep_error_message(), (unsigned long long)head,
           (unsigned long long)head);
  ep_rpc_call_finish(call, EP_STATUS_OUT_OF_RANGE, message, NULL, 0);
}

/* Sends what the store has after w->revision, as far as the send queue takes it; ends the call
 * when done and not following, or on an error. */
static void pump(watch *w) {
  if (!w->started || w->gone) return;
  if (ep_rpc_call_cancelled(w->call)) { /* the server is stopping: a clean end, not a cancel */
    ep_rpc_call_finish(w->call, EP_STATUS_OK, "", NULL, 0);
    return;
  }
  uint64_t head = 0;
  int r = ep_inventory_revision(w->server->inv, &head);
  /* Read up to the store's revision as it was before the read; more wakes the stream. */
  while (r == 0 && w->revision < head && !w->gone) {
    if (!ep_rpc_call_send_room(w->call)) return; /* goes on in drained */
    uint64_t before = w->revision, last = 0;
    r = ep_inventory_events_page(w->server->inv, w->revision, WATCH_PAGE, send_event, w, &last);
    /* A page may hold index changes only: go on after what was read, never past it (events
     * may follow). Nothing read at all: the log holds nothing up to head. */
    if (r == 0 && !w->gone) w->revision = last > before ? last : head;
  }
  if (r == EP_ECOMPACTED)
    finish_compacted(w->call, w->revision, head);
  else if (r < 0)
    ep_rpc_call_finish(w->call, ep_status_from_error(r), ep_error_message(), NULL, 0);
  else if (w->gone) /* never an OK end with an event missing */
    ep_rpc_call_finish(w->call, ep_status_from_error(w->gone), ep_error_message(), NULL, 0);
  else if (!w->follow)
    ep_rpc_call_finish(w->call, EP_STATUS_OK, "", NULL, 0);
}

static void wake_watch(void *data) { ep_rpc_call_wake(((watch *)data)->call); }

static void *watch_open(void *data, ep_rpc_call *call) {
  ep_mgmt_server *server = data;
  if (!authorized(server, call)) return NULL;
  watch *w = calloc(1, sizeof *w);
  if (!w) ep_rpc_call_finish(call, EP_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
  if (w) {
    w->server = server;
    w->call = call;
  }
  return w;
}

static void watch_request(void *state, ep_rpc_call *call, const uint8_t *request, size_t len) {
  watch *w = state;
  if (!w) return;
  Edgeprov__V1__WatchEventsRequest *req = edgeprov__v1__watch_events_request__unpack(NULL, len, request);
  if (!req) {
    ep_rpc_call_finish(call, EP_STATUS_INVALID_ARGUMENT, "request is not a valid WatchEventsRequest", NULL, 0);
    return;
  }
  w->revision = req->after_revision;
  w->follow = req->follow;
  w->started = true;
  edgeprov__v1__watch_events_request__free_unpacked(req, NULL);
  if (w->follow) { /* subscribe first, then read: a change in between wakes the stream */
    ep_rpc_call_ref(call);
    if (ep_change_hub_subscribe(w->server->hub, NULL, wake_watch, w, &w->following) < 0) {
      ep_rpc_call_unref(call);
      ep_rpc_call_finish(call, EP_STATUS_RESOURCE_EXHAUSTED, ep_error_message(), NULL, 0);
      return;
    }
  }
  pump(w);
}

static void watch_more(void *state, ep_rpc_call *call) {
  (void)call;
  if (state) pump(state);
}

static void watch_close(void *state, ep_rpc_call *call) {
  watch *w = state;
  if (!w) return;
  if (w->following) {
    ep_change_hub_unsubscribe(w->server->hub, w->following);
    ep_rpc_call_unref(call);
  }
  free(w);
}

static const ep_rpc_stream_ops watch_ops = {
    .open = watch_open, .message = watch_request, .drained = watch_more, .wake = watch_more, .close = watch_close};

/* Creates the directory of a UNIX socket (0750) when missing. */
static int prepare_socket_dir(const char *address) {
  char *copy = strdup(address + 5);
  if (!copy) return ep_error_set(EP_ENOMEM, "out of memory");
  const char *dir = dirname(copy);
  int r = 0;
  if (mkdir(dir, 0750) < 0 && errno != EEXIST) r = ep_error_set(-errno, "cannot create %s: %s", dir, strerror(errno));
  free(copy);
  return r;
}

int ep_mgmt_server_start(ep_mgmt_server **out, ep_inventory *inv, const struct ep_plugin_set *plugins,
                         const ep_config *config) {
  ep_mgmt_server *server = calloc(1, sizeof *server);
  if (!server) return ep_error_set(EP_ENOMEM, "out of memory");
  server->inv = inv;
  server->plugins = plugins;
  char *cert = NULL, *key = NULL;
  bool tcp = strncmp(config->listen_management, "unix:", 5) != 0;
  int r = ep_rpc_server_new(&server->rpc, &(ep_rpc_server_options){.max_message = EP_MGMT_MESSAGE_MAX});
  for (size_t i = 0; r == 0 && ep_mgmt_unary_methods[i]; i++) {
    char path[128];
    snprintf(path, sizeof path, "%s%s", EP_MGMT_SERVICE, ep_mgmt_unary_methods[i]);
    ep_rpc_method m = {.path = path, .kind = EP_RPC_UNARY, .handler = handle_unary, .data = server};
    r = ep_rpc_server_add_method(server->rpc, &m);
  }
  if (r == 0) {
    ep_rpc_method watch_method = {.path = EP_MGMT_SERVICE "WatchEvents", .kind = EP_RPC_SERVER_STREAMING,
                                  .data = server, .stream = &watch_ops};
    r = ep_rpc_server_add_method(server->rpc, &watch_method);
  }
  if (r == 0 && tcp) {
    r = ep_read_secret_file(&server->token, config->operator_token_file, EP_OPERATOR_TOKEN_MAX);
    if (r == 0 && strlen(server->token) < EP_OPERATOR_TOKEN_MIN)
      r = ep_error_set(EP_EINVAL, "%s: the operator token is shorter than %d characters", config->operator_token_file,
                       EP_OPERATOR_TOKEN_MIN);
    if (r == 0) r = ep_config_read_tls_files(config, &cert, &key);
    if (r == 0) {
      ep_rpc_tls tls = {.cert_pem = cert, .key_pem = key};
      r = ep_rpc_server_listen(server->rpc, config->listen_management, &tls, NULL);
    }
  } else if (r == 0) {
    r = prepare_socket_dir(config->listen_management);
    if (r == 0) r = ep_rpc_server_listen(server->rpc, config->listen_management, NULL, NULL);
  }
  if (r == 0) r = ep_change_hub_start(&server->hub, inv);
  if (r == 0) r = ep_rpc_server_start(server->rpc);
  if (key) explicit_bzero(key, strlen(key));
  free(cert);
  free(key);
  if (r < 0) {
    ep_mgmt_server_stop(server, 0);
    return r;
  }
  *out = server;
  return 0;
}

void ep_mgmt_server_stop(ep_mgmt_server *server, int grace_ms) {
  if (!server) return;
  ep_rpc_server_free(server->rpc, grace_ms); /* every watch closed: no subscription is left */
  ep_change_hub_stop(server->hub);
  if (server->token) {
    explicit_bzero(server->token, strlen(server->token));
    free(server->token);
  }
  free(server);
}
