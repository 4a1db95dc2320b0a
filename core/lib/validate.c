/* core: identity field validation, see validate.h. */
#define _GNU_SOURCE /* getrandom */
#include "validate.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "error.h"

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

int ep_validate_text(const char *field, const char *text, size_t max) {
  size_t len = text ? strnlen(text, max + 1) : 0;
  if (len == 0 || len > max) return ep_error_set(EP_EINVAL, "%s: must have 1 to %zu bytes", field, max);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)text[i];
    if (c < 0x20 || c == 0x7f) return ep_error_set(EP_EINVAL, "%s: control character at byte %zu", field, i);
  }
  return 0;
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
