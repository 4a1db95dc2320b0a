/* core: nodes' disk recovery keys, kept in the store beside the inventory and sealed there under
 * the site key (secrets.recovery_key_file): one record per host under "recovery/<uuid>", never
 * inside the Host record, so no list, event, dashboard or log carries it (the change log's
 * events skip the prefix: inventory.c makes events of hosts/, instances/, workflows/ and log
 * heads only). A record is, in order: a version byte (1), the 8-byte id of the site key it was
 * sealed with, when it was stored (8 bytes, big-endian Unix seconds), a 12-byte random nonce,
 * and the recovery key sealed with AES-256-GCM (ciphertext, then its 16-byte tag), whose
 * additional data is the host's UUID followed by the record's first 17 bytes: a record moved
 * to another host, or its header changed, does not open. The AES key is HKDF-SHA-256 of the
 * site key file's text (info EP_RECOVERY_HKDF_INFO); its id is the first 8 bytes of SHA-256
 * of that AES key, so a wrong or rotated site key is told apart from a damaged record and
 * named. Neither the recovery key nor anything of the site key but its id is ever logged or
 * put in an error message. Thread-safe. */
#ifndef EP_CORE_RECOVERY_KEYS_H
#define EP_CORE_RECOVERY_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/validate.h"
#include "provisioning/inventory.h"

#define EP_RECOVERY_KEYS_PREFIX "recovery/" /* "recovery/<uuid>": inventory.c's RECOVERY_PREFIX deletes it with the host */
#define EP_RECOVERY_HKDF_INFO "edgeprov recovery keys v1"
#define EP_RECOVERY_SITE_KEY_MIN 32               /* characters of the site key file's secret text, at least */
#define EP_RECOVERY_SITE_KEY_MAX 4096             /* and at most */
#define EP_RECOVERY_KEY_MIN 16                    /* bytes of a recovery key (printable ASCII), at least */
#define EP_RECOVERY_KEY_MAX 256                   /* and at most */
#define EP_RECOVERY_KEY_ID_LEN 8                  /* bytes of a site key's id */
#define EP_RECOVERY_KEY_ID_TEXT (2 * EP_RECOVERY_KEY_ID_LEN) /* its hex text, without the NUL */
#define EP_RECOVERY_RECORD_VERSION 1
#define EP_RECOVERY_RECORD_HEADER (1 + EP_RECOVERY_KEY_ID_LEN + 8) /* version, key id, stored_at */
#define EP_RECOVERY_NONCE_LEN 12
#define EP_RECOVERY_TAG_LEN 16
#define EP_RECOVERY_RECORD_MAX (EP_RECOVERY_RECORD_HEADER + EP_RECOVERY_NONCE_LEN + EP_RECOVERY_KEY_MAX + EP_RECOVERY_TAG_LEN)

/* The site key: the derived AES-256 key and its id, in memory only (wiped when freed). */
typedef struct ep_recovery_site_key ep_recovery_site_key;

/* Reads path (secrets.recovery_key_file: owner-only, EP_RECOVERY_SITE_KEY_MIN to _MAX characters
 * once trailing blanks are dropped) and derives the site key. Errors name the path and the
 * reason, never the contents. */
int ep_recovery_site_key_load(ep_recovery_site_key **out, const char *path);

/* Derives the site key from secret[0..len) (the file's text). */
int ep_recovery_site_key_derive(ep_recovery_site_key **out, const char *secret, size_t len);

/* The site key's id as hex text ("3f0a..."), valid while key lives. */
const char *ep_recovery_site_key_id(const ep_recovery_site_key *key);

/* Wipes and frees key; accepts NULL. */
void ep_recovery_site_key_free(ep_recovery_site_key *key);

/* Checks a recovery key a node sends: printable ASCII (0x20 to 0x7e), EP_RECOVERY_KEY_MIN to
 * _MAX bytes. EP_EINVAL naming field and the rule broken, never the value. */
int ep_recovery_key_validate(const char *field, const char *recovery_key);

/* Seals recovery_key (validated) for host uuid (canonical text) under key, stored_at Unix
 * seconds: *ret_record (malloc'd, ret_len bytes) is the record described above. */
int ep_recovery_key_seal(uint8_t **ret_record, size_t *ret_len, const ep_recovery_site_key *key, const char *uuid,
                         const char *recovery_key, int64_t stored_at);

/* Opens a record of host uuid with key: *ret_key (malloc'd; the caller wipes and frees it) and
 * *ret_stored_at (may be NULL). EP_EPERM when the record was sealed under another site key
 * (the message names both ids), EP_EIO when it is damaged, altered or of another host. */
int ep_recovery_key_open(char **ret_key, int64_t *ret_stored_at, const ep_recovery_site_key *key, const char *uuid,
                         const uint8_t *record, size_t len);

/* Stores host uuid's recovery key (validated here), sealed under key, replacing the one it had:
 * *ret_replaced (may be NULL) tells whether there was one. EP_ENOENT when the host is unknown.
 * key NULL (no secrets.recovery_key_file): EP_EPERM saying so. */
int ep_recovery_key_store(ep_inventory *inv, const ep_recovery_site_key *key, const char *uuid, const char *recovery_key,
                          bool *ret_replaced);

/* Reads host uuid's recovery key: *ret_key (malloc'd; wipe and free it) and *ret_stored_at
 * (may be NULL). EP_ENOENT when none is stored; key NULL: EP_EPERM saying the site has no key
 * file; and ep_recovery_key_open's refusals. */
int ep_recovery_key_read(ep_inventory *inv, const ep_recovery_site_key *key, const char *uuid, char **ret_key,
                         int64_t *ret_stored_at);

/* The store key of host uuid's record ("recovery/<uuid>", uuid canonical) into out. */
void ep_recovery_key_record_name(char out[sizeof EP_RECOVERY_KEYS_PREFIX + EP_UUID_TEXT_LEN], const char *uuid);

#endif
