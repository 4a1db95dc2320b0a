/* core: per-key token buckets, see ratelimit.h. */
#include "base/ratelimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"

typedef struct bucket {
  char key[EP_RATELIMIT_KEY_MAX + 1];
  double tokens;
  double at_s; /* when tokens was computed (monotonic seconds); 0: free slot */
  struct bucket *next; /* hash chain */
} bucket;

struct ep_ratelimit {
  pthread_mutex_t lock;
  double rate, burst;
  size_t max_keys, used, n_slots;
  bucket *buckets; /* max_keys of them */
  bucket **slots;  /* hash table, n_slots chains */
};

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9 + 1.0; /* + 1: never 0 */
}

static size_t hash(const char *key, size_t n) { /* FNV-1a */
  uint64_t h = 1469598103934665603ull;
  for (const unsigned char *p = (const unsigned char *)key; *p; p++) h = (h ^ *p) * 1099511628211ull;
  return (size_t)(h % n);
}

int ep_ratelimit_new(ep_ratelimit **out, double rate_per_s, uint32_t burst, size_t max_keys) {
  if (!(rate_per_s > 0) || burst < 1 || max_keys < 1 || max_keys > (1u << 24))
    return ep_error_set(EP_EINVAL, "rate limit: rate > 0, burst >= 1 and 1..16777216 keys");
  ep_ratelimit *rl = calloc(1, sizeof *rl);
  if (!rl) return ep_error_set(EP_ENOMEM, "out of memory");
  rl->rate = rate_per_s;
  rl->burst = burst;
  rl->max_keys = max_keys;
  rl->n_slots = max_keys * 2 + 1;
  rl->buckets = calloc(max_keys, sizeof *rl->buckets);
  rl->slots = calloc(rl->n_slots, sizeof *rl->slots);
  if (!rl->buckets || !rl->slots) {
    ep_ratelimit_free(rl);
    return ep_error_set(EP_ENOMEM, "out of memory");
  }
  pthread_mutex_init(&rl->lock, NULL);
  *out = rl;
  return 0;
}

void ep_ratelimit_free(ep_ratelimit *rl) {
  if (!rl) return;
  if (rl->buckets && rl->slots) pthread_mutex_destroy(&rl->lock);
  free(rl->buckets);
  free(rl->slots);
  free(rl);
}

static void unlink_bucket(ep_ratelimit *rl, bucket *b) {
  for (bucket **p = &rl->slots[hash(b->key, rl->n_slots)]; *p; p = &(*p)->next)
    if (*p == b) {
      *p = b->next;
      return;
    }
}

/* The bucket to reuse when every one is taken: a full one if any, else the idle longest.
 * O(max_keys), only when the table is full. */
static bucket *evict(ep_ratelimit *rl, double now) {
  bucket *oldest = &rl->buckets[0];
  for (size_t i = 0; i < rl->max_keys; i++) {
    bucket *b = &rl->buckets[i];
    if (b->tokens + (now - b->at_s) * rl->rate >= rl->burst) return b;
    if (b->at_s < oldest->at_s) oldest = b;
  }
  return oldest;
}

bool ep_ratelimit_take(ep_ratelimit *rl, const char *key, uint32_t *ret_retry_after_ms) {
  if (!rl) return true;
  char k[EP_RATELIMIT_KEY_MAX + 1];
  size_t len = strnlen(key, EP_RATELIMIT_KEY_MAX);
  memcpy(k, key, len);
  k[len] = '\0';
  double now = now_s();
  pthread_mutex_lock(&rl->lock);
  size_t slot = hash(k, rl->n_slots);
  bucket *b = rl->slots[slot];
  while (b && strcmp(b->key, k) != 0) b = b->next;
  if (!b) {
    if (rl->used < rl->max_keys) b = &rl->buckets[rl->used++];
    else {
      b = evict(rl, now);
      unlink_bucket(rl, b);
    }
    memcpy(b->key, k, len + 1);
    b->tokens = rl->burst;
    b->at_s = now;
    b->next = rl->slots[slot];
    rl->slots[slot] = b;
  }
  b->tokens += (now - b->at_s) * rl->rate;
  if (b->tokens > rl->burst) b->tokens = rl->burst;
  b->at_s = now;
  bool ok = b->tokens >= 1.0;
  if (ok) b->tokens -= 1.0;
  else if (ret_retry_after_ms) *ret_retry_after_ms = (uint32_t)((1.0 - b->tokens) / rl->rate * 1000.0) + 1;
  pthread_mutex_unlock(&rl->lock);
  return ok;
}
