/* Fuzzes secret masking, ep_redact_text (base/redact.c), which will read what nodes send (their
 * log lines) as well as operators' text. Checks: it never fails but for memory; text with none
 * of the markers it looks for (a secret word, "Bearer ", "PRIVATE KEY", a URL's "@", a recovery
 * key of systemd-cryptenroll's form) comes back unchanged;
 * a masked value never survives: in "password: X" lines made from the input, X is gone. */
#define _GNU_SOURCE /* strcasestr, memmem */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/redact.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const markers[] = {"password", "passwd", "passphrase", "pass", "pwd", "secret", "token",
                                      "private_key", "privatekey", "api_key", "apikey", "credential", "psk",
                                      "auth", "luks", "recovery_key", "recovery-key", "recoverykey", "Bearer ",
                                      "PRIVATE KEY", "@" /* a URL's userinfo */};

/* True when text holds 8 groups of 8 modhex letters joined by dashes (any case). */
static bool has_modhex_key(const char *text) {
  for (const char *p = text; *p; p++) {
    size_t i = 0;
    for (; i < 71 && p[i]; i++) {
      char c = p[i] >= 'A' && p[i] <= 'Z' ? (char)(p[i] - 'A' + 'a') : p[i];
      if (i % 9 == 8 ? c != '-' : !strchr("cbdefghijklnrtuv", c) || !c) break;
    }
    if (i == 71) return true;
  }
  return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 64 * 1024) return 0;
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  size_t count = 0;
  char *out = ep_redact_text(text, &count);
  if (!out) abort();
  bool marked = false;
  for (size_t i = 0; i < sizeof markers / sizeof markers[0] && !marked; i++) marked = strcasestr(text, markers[i]) != NULL;
  if (!marked) marked = has_modhex_key(text);
  if (!marked && (strcmp(out, text) != 0 || count != 0)) abort();
  free(out);

  /* A value after a secret key, on its own line: masked, whatever it is. */
  size_t n = strcspn(text, "\n");
  if (n >= 4 && !strchr(text, '$')) {
    char *line = malloc(n + 32);
    if (!line) abort();
    memcpy(line, "password: ", 10);
    memcpy(line + 10, text, n);
    line[10 + n] = '\0';
    char *masked = ep_redact_text(line, NULL);
    if (!masked) abort();
    const char *value = line + 10;
    while (*value == ' ' || *value == '\t') value++;
    size_t kept = (size_t)(value - line); /* "password: " and the blanks before the value */
    if (*value && (strncmp(masked, line, kept) != 0 || strcmp(masked + kept, EP_REDACTED) != 0)) abort();
    free(masked);
    free(line);
  }
  free(text);
  return 0;
}
