/* core: one follower of the change log, see change_hub.h. */
#define _DEFAULT_SOURCE /* usleep */
#include "provisioning/change_hub.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <edgeprov/storage.h> /* EP_ECOMPACTED */

#include "base/error.h"
#include "base/log.h"

#define HUB_BUCKETS 4096 /* subscriptions by host, hashed */
#define HUB_PAGE 512     /* changes read at a time */
#define HUB_WAIT_MS 1000 /* the longest wait between two looks at the store (and at stopping) */
#define HUB_KEY_MAX 64

struct ep_change_sub {
  struct ep_change_sub *prev, *next;
  ep_change_fn fn;
  void *data;
  bool all;
  uint64_t called_pass; /* the pass it was last called in: once per pass is enough */
  char key[HUB_KEY_MAX + 1];
};

struct ep_change_hub {
  ep_inventory *inv;
  pthread_t thread;
  pthread_mutex_t lock; /* guards the lists and stopping; held while subscribers are called */
  bool stopping;
  ep_change_sub *buckets[HUB_BUCKETS];
  ep_change_sub *all;
  uint64_t revision; /* read up to here (the hub's thread only) */
  uint64_t pass;     /* pages read; under lock */
  size_t subscribers; /* under lock: with none, changes are skipped, not read */
};

static size_t bucket_of(const char *key) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (const unsigned char *p = (const unsigned char *)key; *p; p++) h = (h ^ *p) * 16777619u;
  return h % HUB_BUCKETS;
}

static void call_once(ep_change_hub *hub, ep_change_sub *sub) {
  if (sub->called_pass == hub->pass) return;
  sub->called_pass = hub->pass;
  sub->fn(sub->data);
}

/* Calls the subscribers of key (hub's lock held). */
static void notify_key(ep_change_hub *hub, const char *key) {
  if (!key || !key[0]) return;
  for (ep_change_sub *s = hub->buckets[bucket_of(key)]; s; s = s->next)
    if (strcmp(s->key, key) == 0) call_once(hub, s);
}

static void notify_everyone(ep_change_hub *hub) {
  for (size_t b = 0; b < HUB_BUCKETS; b++)
    for (ep_change_sub *s = hub->buckets[b]; s; s = s->next) call_once(hub, s);
  for (ep_change_sub *s = hub->all; s; s = s->next) call_once(hub, s);
}

static int visit(void *data, const ep_inv_event *event) {
  ep_change_hub *hub = data;
  const char *key = NULL;
  if (event->resource_case == EDGEPROV__V1__EVENT__RESOURCE_HOST && event->host)
    key = event->host->uuid;
  else if (event->resource_case == EDGEPROV__V1__EVENT__RESOURCE_INSTANCE && event->instance)
    key = event->instance->host_uuid; /* "" for a delete, which names the instance only */
  pthread_mutex_lock(&hub->lock);
  notify_key(hub, key);
  pthread_mutex_unlock(&hub->lock);
  return 0;
}

/* Reads every change up to the store's revision and tells whom it concerns. */
static void catch_up(ep_change_hub *hub) {
  uint64_t head = 0;
  if (ep_inventory_revision(hub->inv, &head) < 0) return;
  while (hub->revision < head) {
    pthread_mutex_lock(&hub->lock);
    hub->pass++;
    bool anyone = hub->subscribers > 0;
    if (!anyone) hub->revision = head; /* nobody waits: nothing to read (a later subscriber reads the store) */
    pthread_mutex_unlock(&hub->lock);
    if (!anyone) break;
    uint64_t last = 0;
    int r = ep_inventory_events_page(hub->inv, hub->revision, HUB_PAGE, visit, hub, &last);
    pthread_mutex_lock(&hub->lock);
    if (r == EP_ECOMPACTED) {
      /* Compacted past us: what changed cannot be told, so everyone looks again. */
      notify_everyone(hub);
      hub->revision = head;
    } else if (r == 0) {
      for (ep_change_sub *s = hub->all; s; s = s->next) call_once(hub, s);
      hub->revision = last > hub->revision ? last : head;
    }
    pthread_mutex_unlock(&hub->lock);
    if (r < 0 && r != EP_ECOMPACTED) {
      ep_log(EP_LOG_WARN, "change-hub", "cannot read the change log after revision %llu: %s",
             (unsigned long long)hub->revision, ep_error_message());
      return; /* tried again after the next wait */
    }
  }
}

static void *hub_main(void *arg) {
  ep_change_hub *hub = arg;
  for (;;) {
    pthread_mutex_lock(&hub->lock);
    bool stopping = hub->stopping;
    pthread_mutex_unlock(&hub->lock);
    if (stopping) break;
    int r = ep_inventory_wait(hub->inv, hub->revision, HUB_WAIT_MS);
    if (r < 0 && r != EP_ETIMEDOUT) usleep(100 * 1000); /* a store error: do not spin */
    catch_up(hub);
  }
  return NULL;
}

int ep_change_hub_start(ep_change_hub **out, ep_inventory *inv) {
  ep_change_hub *hub = calloc(1, sizeof *hub);
  if (!hub) return ep_error_set(EP_ENOMEM, "out of memory");
  hub->inv = inv;
  int r = ep_inventory_revision(inv, &hub->revision);
  if (r < 0) {
    free(hub);
    return r;
  }
  pthread_mutex_init(&hub->lock, NULL);
  if (pthread_create(&hub->thread, NULL, hub_main, hub) != 0) {
    pthread_mutex_destroy(&hub->lock);
    free(hub);
    return ep_error_set(EP_ENOMEM, "cannot start the change hub's thread");
  }
  *out = hub;
  return 0;
}

void ep_change_hub_stop(ep_change_hub *hub) {
  if (!hub) return;
  pthread_mutex_lock(&hub->lock);
  hub->stopping = true;
  pthread_mutex_unlock(&hub->lock);
  ep_inventory_wake(hub->inv);
  pthread_join(hub->thread, NULL);
  pthread_mutex_destroy(&hub->lock);
  free(hub);
}

int ep_change_hub_subscribe(ep_change_hub *hub, const char *host_uuid, ep_change_fn fn, void *data, ep_change_sub **out) {
  if (host_uuid && strlen(host_uuid) > HUB_KEY_MAX) return ep_error_set(EP_EINVAL, "host '%.64s...' is too long", host_uuid);
  ep_change_sub *sub = calloc(1, sizeof *sub);
  if (!sub) return ep_error_set(EP_ENOMEM, "out of memory");
  sub->fn = fn;
  sub->data = data;
  sub->all = !host_uuid;
  if (host_uuid) snprintf(sub->key, sizeof sub->key, "%s", host_uuid);
  pthread_mutex_lock(&hub->lock);
  ep_change_sub **head = sub->all ? &hub->all : &hub->buckets[bucket_of(sub->key)];
  /* called_pass 0: a page being read now may hold a change committed after this call, so the
   * subscriber is called for it (a spurious call at worst). */
  sub->next = *head;
  if (*head) (*head)->prev = sub;
  *head = sub;
  hub->subscribers++;
  pthread_mutex_unlock(&hub->lock);
  *out = sub;
  return 0;
}

void ep_change_hub_unsubscribe(ep_change_hub *hub, ep_change_sub *sub) {
  if (!sub) return;
  pthread_mutex_lock(&hub->lock);
  ep_change_sub **head = sub->all ? &hub->all : &hub->buckets[bucket_of(sub->key)];
  if (sub->prev)
    sub->prev->next = sub->next;
  else
    *head = sub->next;
  if (sub->next) sub->next->prev = sub->prev;
  hub->subscribers--;
  pthread_mutex_unlock(&hub->lock);
  free(sub);
}
