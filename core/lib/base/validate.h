/* core: validation of identity fields that come from operators and nodes, with the
 * reference system's rules. Each check writes the normalised form and, on failure, records
 * a message naming the field and the reason (error API) and returns EP_EINVAL. */
#ifndef EP_CORE_VALIDATE_H
#define EP_CORE_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* What a text field allows besides printable text (flags of the text checks below). */
#define EP_TEXT_TAB 0x1u     /* horizontal tab (U+0009) */
#define EP_TEXT_NEWLINE 0x2u /* line feed (U+000A) */

/* Text from a node (status, message, log line): 1 to max bytes of well-formed UTF-8 (no
 * overlong forms, surrogates or code points past U+10FFFF) without C0 controls (but those
 * flags allow), DEL, C1 controls (U+0080-U+009F) or bidi overrides and isolates
 * (U+202A-U+202E, U+2066-U+2069), so it cannot forge log lines, drive a terminal or reorder
 * what an operator reads. The message names the field, the reason and the byte offset. */
int ep_validate_text_flags(const char *field, const char *text, size_t max, unsigned flags);

/* ep_validate_text_flags with no flags: one line, no tab. */
int ep_validate_text(const char *field, const char *text, size_t max);

/* Decodes the well-formed UTF-8 sequence at s (len bytes there): returns its length (1-4)
 * with the code point in *cp, or 0 when the bytes there are not one. */
size_t ep_utf8_next(const char *s, size_t len, uint32_t *cp);

/* True for a code point the text checks refuse with these flags (controls, bidi). */
bool ep_text_refused(uint32_t cp, unsigned flags);

/* Copies text into out (cap bytes with the NUL, cap >= 1) with what ep_validate_text_flags
 * refuses made visible: a byte that is not well-formed UTF-8, a C0 control or DEL as \xNN,
 * a C1 or bidi control as \u{NNNN}. Stops before a character or escape that would not fit,
 * so the result, when not empty, passes ep_validate_text_flags(.., cap - 1, flags). 4 bytes
 * of out per byte of text always suffice. Returns the length written. */
size_t ep_text_escape(char *out, size_t cap, const char *text, unsigned flags);

/* Writes a new random (version 4) UUID in text form. Returns 0 or -errno. */
int ep_uuid_random(char out[EP_UUID_TEXT_LEN + 1]);

#endif
