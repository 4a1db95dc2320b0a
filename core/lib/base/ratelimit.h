/* core: per-key token buckets, the one budget every untrusted caller is held to. */
#ifndef EP_RATELIMIT_H
#define EP_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One limiter: each key (a peer address, a node's client id) has a bucket of `burst` tokens
 * refilled at `rate_per_s`. At most max_keys buckets are kept; when full, the one idle
 * longest is reused (a full bucket loses nothing; a key that was limited and then evicted
 * starts over, which only a caller holding max_keys other keys busy can cause). Thread-safe. */
typedef struct ep_ratelimit ep_ratelimit;

/* rate_per_s > 0, burst >= 1, max_keys >= 1. EP_EINVAL otherwise. */
int ep_ratelimit_new(ep_ratelimit **out, double rate_per_s, uint32_t burst, size_t max_keys);
void ep_ratelimit_free(ep_ratelimit *rl);

/* Takes one token from key's bucket: true when there was one. When not, *ret_retry_after_ms
 * (may be NULL) is how long until the next token. key: at most EP_RATELIMIT_KEY_MAX bytes are
 * told apart. A NULL limiter allows everything (a budget that is switched off). */
#define EP_RATELIMIT_KEY_MAX 127
bool ep_ratelimit_take(ep_ratelimit *rl, const char *key, uint32_t *ret_retry_after_ms);

#endif
