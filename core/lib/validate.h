/* core: validation of identity fields that come from operators and nodes, with the
 * reference system's rules. Each check writes the normalised form and, on failure, records
 * a message naming the field and the reason (error API) and returns EP_EINVAL. */
#ifndef EP_CORE_VALIDATE_H
#define EP_CORE_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#define EP_UUID_TEXT_LEN 36   /* 8-4-4-4-12 */
#define EP_MAC_TEXT_LEN 17    /* aa:bb:cc:dd:ee:ff */
#define EP_IP_TEXT_MAX 45     /* longest IPv6 text form */
#define EP_NAME_MAX 63        /* OS profile and site names */
#define EP_MACS_MAX 16        /* most MAC addresses per host */

/* UUID in RFC 4122 text form (8-4-4-4-12 hex digits); out gets it in lower case. */
int ep_validate_uuid(char out[EP_UUID_TEXT_LEN + 1], const char *field, const char *text);

/* Serial number: ^[A-Za-z0-9]{5,20}$ (kept as given). */
int ep_validate_serial(const char *field, const char *text);

/* MAC: six hex pairs split by ':' or '-'; out gets aa:bb:cc:dd:ee:ff. */
int ep_validate_mac(char out[EP_MAC_TEXT_LEN + 1], const char *field, const char *text);

/* IPv4 or IPv6 address (no prefix length, no zone); out gets the canonical text form. */
int ep_validate_ip(char out[EP_IP_TEXT_MAX + 1], const char *field, const char *text);

/* A name (OS profile, site): [a-z0-9][a-z0-9._-]*, at most EP_NAME_MAX bytes. */
int ep_validate_name(const char *field, const char *text);

/* Status text from a node: 1 to max bytes of printable text (UTF-8 allowed; no control
 * characters, so it cannot forge log lines or terminal output). */
int ep_validate_text(const char *field, const char *text, size_t max);

/* Writes a new random (version 4) UUID in text form. Returns 0 or -errno. */
int ep_uuid_random(char out[EP_UUID_TEXT_LEN + 1]);

#endif
