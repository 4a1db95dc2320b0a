/* core: when each node address first fetched a boot artifact (iPXE, the Micro-OS) from the
 * embedded HTTPS server, so a node's timeline can start at its first fetch although the fetch
 * is anonymous: onboarding, which learns the node's address, asks for it. One table per
 * process, bounded (EP_BOOT_FETCHES_MAX addresses; the least recent go first); an address's
 * entry older than EP_BOOT_FETCH_WINDOW_S starts afresh (a new boot). Nothing is stored:
 * fetches from anyone cost no write. Thread-safe. */
#ifndef EP_CORE_BOOT_FETCHES_H
#define EP_CORE_BOOT_FETCHES_H

#include <stdint.h>

#define EP_BOOT_FETCHES_MAX 8192
#define EP_BOOT_FETCH_WINDOW_S 3600

/* The HTTPS server's file observer (ep_https_file_observer; data unused): records a fetch
 * from peer_ip now. */
void ep_boot_fetches_observe(void *data, const char *peer_ip, const char *path);

/* Records a fetch from peer_ip at time now (Unix seconds), for tests. */
void ep_boot_fetches_record(const char *peer_ip, int64_t now);

/* When peer_ip first fetched an artifact within the window before now, or 0. */
int64_t ep_boot_fetches_first(const char *peer_ip, int64_t now);

#endif
