/* core: the readiness check, see health.h. */
#define _GNU_SOURCE /* asprintf */
#include "southbound/health.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "base/log.h"

struct ep_health {
  ep_inventory *inv;
  pthread_mutex_t lock;
  int64_t checked_ms; /* when the store was last asked (0: never) */
  bool asking;  /* a request is asking the store */
  int status;   /* 0 until the first answer */
  char text[300];
};

static int64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* One request at a time asks the store (outside the lock, so a slow store holds nobody else
 * up); the others get the last answer. The reason of a failure goes to the log, not to the
 * public answer. */
static void handle_health(void *data, const ep_https_request *req, ep_https_response *resp) {
  (void)req;
  ep_health *h = data;
  pthread_mutex_lock(&h->lock);
  bool ask = !h->asking && (!h->checked_ms || now_ms() - h->checked_ms >= EP_HEALTH_CACHE_MS);
  if (ask) h->asking = true;
  pthread_mutex_unlock(&h->lock);
  if (ask) {
    uint64_t revision = 0;
    int r = ep_inventory_revision(h->inv, &revision);
    pthread_mutex_lock(&h->lock);
    if (r == 0) {
      if (h->status == 503) ep_log(EP_LOG_INFO, "health", "ready again (revision %" PRIu64 ")", revision);
      h->status = 200;
      snprintf(h->text, sizeof h->text, "ready revision %" PRIu64 "\n", revision);
    } else {
      if (h->status != 503) ep_log(EP_LOG_WARN, "health", "not ready: %s", ep_error_message());
      h->status = 503;
      snprintf(h->text, sizeof h->text, "not ready: the store cannot be reached (the replica's log says why)\n");
    }
    h->checked_ms = now_ms(); /* after the call: a slow one does not leave an expired answer */
    h->asking = false;
    pthread_mutex_unlock(&h->lock);
  }
  pthread_mutex_lock(&h->lock);
  resp->status = h->status ? h->status : 503;
  resp->content_type = "text/plain";
  resp->body = strdup(h->status ? h->text : "not ready: starting\n");
  resp->len = resp->body ? strlen(resp->body) : 0;
  pthread_mutex_unlock(&h->lock);
}

int ep_health_route(ep_health **out, ep_https_server *server, ep_inventory *inv) {
  ep_health *h = calloc(1, sizeof *h);
  if (!h) return ep_error_set(EP_ENOMEM, "out of memory");
  h->inv = inv;
  pthread_mutex_init(&h->lock, NULL);
  int r = ep_https_server_route(server, "GET", EP_HEALTH_PATH, handle_health, h);
  if (r < 0) {
    ep_health_free(h);
    return r;
  }
  *out = h;
  return 0;
}

void ep_health_free(ep_health *h) {
  if (!h) return;
  pthread_mutex_destroy(&h->lock);
  free(h);
}
