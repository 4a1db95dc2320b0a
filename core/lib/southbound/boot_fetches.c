/* core: first boot-artifact fetch per address, see boot_fetches.h. */
#include "southbound/boot_fetches.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define WAYS 4                                  /* entries an address may sit in */
#define BUCKETS (EP_BOOT_FETCHES_MAX / WAYS)
#define ADDRESS_MAX 46                          /* INET6_ADDRSTRLEN */

typedef struct entry {
  char address[ADDRESS_MAX];
  int64_t first, last; /* Unix seconds; first == 0: free */
} entry;

static entry table[BUCKETS][WAYS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static entry *bucket_of(const char *address) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (const unsigned char *p = (const unsigned char *)address; *p; p++) h = (h ^ *p) * 16777619u;
  return table[h % BUCKETS];
}

void ep_boot_fetches_record(const char *peer_ip, int64_t now) {
  if (!peer_ip || !peer_ip[0] || strlen(peer_ip) >= ADDRESS_MAX) return;
  pthread_mutex_lock(&lock);
  entry *b = bucket_of(peer_ip), *e = NULL, *oldest = &b[0];
  for (int i = 0; i < WAYS && !e; i++) {
    if (b[i].first && strcmp(b[i].address, peer_ip) == 0) e = &b[i];
    else if (!b[i].first || (oldest->first && b[i].last < oldest->last)) oldest = &b[i];
  }
  if (e && now - e->first > EP_BOOT_FETCH_WINDOW_S) e->first = now; /* a new boot */
  if (!e) {
    e = oldest;
    snprintf(e->address, sizeof e->address, "%s", peer_ip);
    e->first = now;
  }
  e->last = now;
  pthread_mutex_unlock(&lock);
}

void ep_boot_fetches_observe(void *data, const char *peer_ip, const char *path) {
  (void)data, (void)path;
  ep_boot_fetches_record(peer_ip, (int64_t)time(NULL));
}

int64_t ep_boot_fetches_first(const char *peer_ip, int64_t now) {
  if (!peer_ip || !peer_ip[0] || strlen(peer_ip) >= ADDRESS_MAX) return 0;
  int64_t first = 0;
  pthread_mutex_lock(&lock);
  entry *b = bucket_of(peer_ip);
  for (int i = 0; i < WAYS; i++)
    if (b[i].first && strcmp(b[i].address, peer_ip) == 0 && now - b[i].first <= EP_BOOT_FETCH_WINDOW_S) first = b[i].first;
  pthread_mutex_unlock(&lock);
  return first;
}
