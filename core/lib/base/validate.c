/* core: identity and node-text validation, see validate.h. */
#define _GNU_SOURCE /* getrandom */
#include "base/validate.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "base/error.h"

/* Input longer than this is refused before it is looked at closely. */
#define VALIDATE_INPUT_MAX 256

static int too_long(const char *field, const char *text) {
  if (strnlen(text, VALIDATE_INPUT_MAX + 1) <= VALIDATE_INPUT_MAX) return 0;
  return ep_error_set(EP_EINVAL, "%s: longer than %d bytes", field, VALIDATE_INPUT_MAX);
}

int ep_validate_uuid(char out[EP_UUID_TEXT_LEN + 1], const char *field, const char *text) {
  if (too_long(field, text)) return EP_EINVAL;
  if (!*text) return ep_error_set(EP_EINVAL, "%s: empty; expected a UUID like 123e4567-e89b-12d3-a456-426614174000", field);
  char buf[EP_UUID_TEXT_LEN + 1];
  size_t len = strlen(text);
  if (len != EP_UUID_TEXT_LEN) goto bad;
  for (size_t i = 0; i < len; i++) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? text[i] != '-' : !isxdigit((unsigned char)text[i])) goto bad;
    buf[i] = (char)tolower((unsigned char)text[i]);
  }
  buf[len] = '\0';
  memcpy(out, buf, sizeof buf);
  return 0;
bad:
  return ep_error_set(EP_EINVAL, "%s: '%.64s' is not a UUID in RFC 4122 text form (8-4-4-4-12 hex digits)", field, text);
}

int ep_validate_serial(const char *field, const char *text) {
  if (too_long(field, text)) return EP_EINVAL;
  size_t len = strlen(text);
  for (size_t i = 0; i < len; i++)
    if (!isalnum((unsigned char)text[i]) || (unsigned char)text[i] > 0x7f)
      return ep_error_set(EP_EINVAL, "%s: '%.64s' has a character other than A-Z, a-z, 0-9", field, text);
  if (len < 5 || len > 20)
    return ep_error_set(EP_EINVAL, "%s: '%.64s' has %zu characters; a serial has 5 to 20", field, text, len);
  return 0;
}

int ep_validate_mac(char out[EP_MAC_TEXT_LEN + 1], const char *field, const char *text) {
  if (too_long(field, text)) return EP_EINVAL;
  char buf[EP_MAC_TEXT_LEN + 1];
  if (strlen(text) != EP_MAC_TEXT_LEN) goto bad;
  for (size_t i = 0; i < EP_MAC_TEXT_LEN; i++) {
    if (i % 3 == 2) {
      if (text[i] != ':' && text[i] != '-') goto bad;
      buf[i] = ':';
    } else {
      if (!isxdigit((unsigned char)text[i])) goto bad;
      buf[i] = (char)tolower((unsigned char)text[i]);
    }
  }
  buf[EP_MAC_TEXT_LEN] = '\0';
  memcpy(out, buf, sizeof buf);
  return 0;
bad:
  return ep_error_set(EP_EINVAL, "%s: '%.64s' is not a MAC address (six hex pairs split by ':' or '-')", field, text);
}

int ep_validate_ip(char out[EP_IP_TEXT_MAX + 1], const char *field, const char *text) {
  if (too_long(field, text)) return EP_EINVAL;
  unsigned char addr[16];
  char buf[INET6_ADDRSTRLEN];
  if (inet_pton(AF_INET, text, addr) == 1) {
    inet_ntop(AF_INET, addr, buf, sizeof buf);
  } else if (inet_pton(AF_INET6, text, addr) == 1) {
    inet_ntop(AF_INET6, addr, buf, sizeof buf);
  } else {
    return ep_error_set(EP_EINVAL, "%s: '%.64s' is not an IPv4 or IPv6 address", field, text);
  }
  snprintf(out, EP_IP_TEXT_MAX + 1, "%s", buf);
  return 0;
}

int ep_validate_name(const char *field, const char *text) {
  if (too_long(field, text)) return EP_EINVAL;
  size_t len = strlen(text);
  if (len == 0 || len > EP_NAME_MAX)
    return ep_error_set(EP_EINVAL, "%s: must have 1 to %d characters", field, EP_NAME_MAX);
  for (size_t i = 0; i < len; i++) {
    char c = text[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && (c == '.' || c == '_' || c == '-'));
    if (!ok) return ep_error_set(EP_EINVAL, "%s: '%.64s' is not a name ([a-z0-9][a-z0-9._-]*)", field, text);
  }
  return 0;
}

/* The UTF-8 sequence at s (len >= 1 bytes there): its length with the code point in *cp, or
 * 0 with the reason in *why. */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp, const char **why) {
  unsigned char b = s[0];
  size_t n;
  uint32_t c, min;
  if (b < 0x80) {
    *cp = b;
    return 1;
  }
  if (b < 0xc0) {
    *why = "a continuation byte without a lead byte";
    return 0;
  } else if (b < 0xe0) {
    n = 2, c = b & 0x1fu, min = 0x80;
  } else if (b < 0xf0) {
    n = 3, c = b & 0x0fu, min = 0x800;
  } else if (b < 0xf8) {
    n = 4, c = b & 0x07u, min = 0x10000;
  } else {
    *why = "a byte that never appears in UTF-8";
    return 0;
  }
  for (size_t i = 1; i < n; i++) {
    if (i >= len || (s[i] & 0xc0) != 0x80) {
      *why = "a sequence cut short";
      return 0;
    }
    c = c << 6 | (s[i] & 0x3fu);
  }
  if (c < min) *why = "an overlong encoding";
  else if (c >= 0xd800 && c <= 0xdfff) *why = "a UTF-16 surrogate";
  else if (c > 0x10ffff) *why = "past U+10FFFF";
  else {
    *cp = c;
    return n;
  }
  return 0;
}

size_t ep_utf8_next(const char *s, size_t len, uint32_t *cp) {
  const char *why = NULL;
  return len ? utf8_decode((const unsigned char *)s, len, cp, &why) : 0;
}

bool ep_text_refused(uint32_t cp, unsigned flags) {
  if (cp == '\t') return !(flags & EP_TEXT_TAB);
  if (cp == '\n') return !(flags & EP_TEXT_NEWLINE);
  return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

int ep_validate_text_flags(const char *field, const char *text, size_t max, unsigned flags) {
  size_t len = text ? strnlen(text, max + 1) : 0;
  if (len == 0 || len > max) return ep_error_set(EP_EINVAL, "%s: must have 1 to %zu bytes", field, max);
  for (size_t i = 0; i < len;) {
    uint32_t cp = 0;
    const char *why = "";
    size_t n = utf8_decode((const unsigned char *)text + i, len - i, &cp, &why);
    if (!n)
      return ep_error_set(EP_EINVAL, "%s: invalid UTF-8 at byte %zu (0x%02x: %s)", field, i, (unsigned char)text[i],
                          why);
    if (ep_text_refused(cp, flags))
      return ep_error_set(EP_EINVAL, "%s: %s at byte %zu (U+%04X)", field,
                          cp >= 0x202a ? "bidi control character" : "control character", i, (unsigned)cp);
    i += n;
  }
  return 0;
}

int ep_validate_text(const char *field, const char *text, size_t max) {
  return ep_validate_text_flags(field, text, max, 0);
}

size_t ep_text_escape(char *out, size_t cap, const char *text, unsigned flags) {
  size_t used = 0, len = text ? strlen(text) : 0;
  for (size_t i = 0; i < len;) {
    uint32_t cp = 0;
    const char *why = NULL, *piece = text + i;
    char escape[16];
    size_t n = utf8_decode((const unsigned char *)text + i, len - i, &cp, &why), piece_len = n;
    if (!n) {
      n = 1; /* one byte at a time: what follows a bad byte may be good text */
      piece_len = (size_t)snprintf(escape, sizeof escape, "\\x%02x", (unsigned char)text[i]);
      piece = escape;
    } else if (ep_text_refused(cp, flags)) {
      piece_len = (size_t)(cp < 0x80 ? snprintf(escape, sizeof escape, "\\x%02x", (unsigned)cp)
                                     : snprintf(escape, sizeof escape, "\\u{%04x}", (unsigned)cp));
      piece = escape;
    }
    if (used + piece_len >= cap) break;
    memcpy(out + used, piece, piece_len);
    used += piece_len;
    i += n;
  }
  out[used] = '\0';
  return used;
}

int ep_uuid_random(char out[EP_UUID_TEXT_LEN + 1]) {
  unsigned char b[16];
  size_t got = 0;
  while (got < sizeof b) {
    ssize_t n = getrandom(b + got, sizeof b - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ep_error_set(-errno, "getrandom: %s", strerror(errno));
    got += (size_t)n;
  }
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
  snprintf(out, EP_UUID_TEXT_LEN + 1, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
           b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return 0;
}
