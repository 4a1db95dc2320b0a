/* core: masking secrets in text shown to people, see redact.h. */
#define _GNU_SOURCE /* strcasestr */
#include "base/redact.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <edgeprov/abi.h>

#include "base/buf.h"

static const char *const secret_words[] = {"password", "passwd", "passphrase", "pass", "pwd", "secret", "token",
                                           "private_key", "privatekey", "api_key", "apikey", "credential", "psk",
                                           "auth", "luks", "recovery_key", "recovery-key", "recoverykey"};

bool ep_redact_is_secret_name(const char *name) {
  for (size_t i = 0; name && i < sizeof secret_words / sizeof secret_words[0]; i++)
    if (strcasestr(name, secret_words[i])) return true;
  return false;
}

/* True when [p, end) is only "${node.NAME}" (quotes around it allowed). */
static bool only_node_reference(const char *p, const char *end) {
  while (p < end && (*p == '"' || *p == '\'')) p++;
  while (end > p && (end[-1] == '"' || end[-1] == '\'' || end[-1] == ',')) end--;
  if (end - p < 8 || strncmp(p, "${node.", 7) != 0 || end[-1] != '}') return false;
  for (const char *c = p + 7; c < end - 1; c++)
    if (!(isalnum((unsigned char)*c) || *c == '_')) return false;
  return true;
}

static size_t indent_of(const char *line, const char *end) {
  size_t n = 0;
  while (line + n < end && (line[n] == ' ' || line[n] == '\t')) n++;
  return n;
}

/* In [line, end): the separator of a "KEY: VALUE" or "KEY = VALUE" whose key names a secret,
 * or NULL. */
static const char *secret_separator(const char *line, const char *end) {
  const char *p = line;
  while (p < end && (*p == ' ' || *p == '\t' || *p == '-')) p++; /* indentation, a YAML list item */
  for (const char *word = p; word < end;) { /* shell: "export NAME=...", "set NAME=..." */
    if ((size_t)(end - word) > 7 && strncmp(word, "export ", 7) == 0) word += 7;
    else if ((size_t)(end - word) > 4 && strncmp(word, "set ", 4) == 0) word += 4;
    else break;
    p = word;
  }
  const char *key = p;
  while (p < end && *p != ':' && *p != '=') p++;
  if (p == end || p == key) return NULL;
  const char *key_end = p;
  while (key_end > key && (key_end[-1] == ' ' || key_end[-1] == '"' || key_end[-1] == '\'')) key_end--;
  while (key < key_end && (*key == '"' || *key == '\'')) key++;
  char name[128];
  size_t n = (size_t)(key_end - key);
  if (n == 0 || n >= sizeof name) return NULL;
  memcpy(name, key, n);
  name[n] = '\0';
  for (size_t i = 0; i < n; i++)
    if (isspace((unsigned char)name[i])) return NULL; /* prose, not a key */
  return ep_redact_is_secret_name(name) ? p : NULL;
}

/* The value at v, past an HTTP authorization scheme ("Bearer ", "Basic ") when it has one. */
static size_t skip_scheme(const char *line, size_t len, size_t v) {
  static const char *const schemes[] = {"Bearer ", "Basic ", "Token "};
  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
    size_t n = strlen(schemes[i]);
    if (len - v > n && strncmp(line + v, schemes[i], n) == 0) return v + n;
  }
  return v;
}

static bool ident_char(char c) { return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.'; }

/* The line [line, line + len) with, in place of each value of a secret-named key anywhere in
 * it and each URL password, EP_REDACTED: *out (malloc'd) and how many; 0 when there was
 * nothing (*out may be NULL); (size_t)-1 out of memory. */
static size_t mask_inline(const char *line, size_t len, char **out) {
  ep_buf b;
  ep_buf_init(&b, "redacted line", SIZE_MAX, EP_BUF_WIPE);
  size_t count = 0, i = 0, copied = 0;
  int r = 0;
  while (r == 0 && i < len) {
    /* A URL's userinfo: scheme://user:password@ */
    if (i + 3 <= len && memcmp(line + i, "://", 3) == 0) {
      size_t u = i + 3, colon = 0, at = 0;
      for (size_t k = u; k < len && !strchr("/?# \t\"'", line[k]); k++) {
        if (line[k] == ':' && !colon) colon = k;
        if (line[k] == '@') at = k;
      }
      if (colon && at > colon + 1) {
        r = ep_buf_append(&b, line + copied, colon + 1 - copied);
        if (r == 0) r = ep_buf_append_str(&b, EP_REDACTED);
        copied = i = at;
        count++;
        continue;
      }
    }
    /* A key: an identifier, maybe quoted, then ':' or '=' */
    if (ident_char(line[i]) && (i == 0 || !ident_char(line[i - 1]))) {
      size_t k = i;
      while (k < len && ident_char(line[k])) k++;
      char name[128];
      size_t n = k - i < sizeof name - 1 ? k - i : sizeof name - 1;
      memcpy(name, line + i, n);
      name[n] = '\0';
      size_t v = k;
      while (v < len && (line[v] == '"' || line[v] == '\'' || line[v] == ' ')) v++;
      if (v < len && (line[v] == ':' || line[v] == '=') && ep_redact_is_secret_name(name)) {
        v++;
        while (v < len && line[v] == ' ') v++;
        if (v < len && (line[v] == '{' || line[v] == '[')) { /* a structure: its own keys are scanned */
          i = k;
          continue;
        }
        size_t start = v, stop = v;
        if (v < len && (line[v] == '"' || line[v] == '\'')) {
          char quote = line[v];
          start = v + 1;
          for (stop = start; stop < len && line[stop] != quote; stop++)
            if (line[stop] == '\\' && stop + 1 < len) stop++;
        } else {
          /* "Authorization: Bearer X": the credential is the word after the scheme */
          stop = start = skip_scheme(line, len, v);
          if (stop + 1 < len && line[stop] == '$' && line[stop + 1] == '{') { /* a ${reference} as a whole */
            while (stop < len && line[stop] != '}') stop++;
            if (stop < len) stop++;
          } else {
            while (stop < len && !strchr(" \t,;&}])\"'", line[stop])) stop++;
          }
        }
        if (stop > start && !only_node_reference(line + start, line + stop)) {
          r = ep_buf_append(&b, line + copied, start - copied);
          if (r == 0) r = ep_buf_append_str(&b, EP_REDACTED);
          copied = i = stop;
          count++;
          continue;
        }
      }
      i = k;
      continue;
    }
    i++;
  }
  if (r == 0 && count) r = ep_buf_append(&b, line + copied, len - copied);
  *out = r == 0 && count ? ep_buf_take(&b, NULL) : NULL;
  ep_buf_free(&b);
  if (r < 0 || (count && !*out)) return (size_t)-1;
  return count;
}

/* systemd-cryptenroll's recovery keys: 8 groups of 8 "modhex" characters joined by dashes. */
#define MODHEX "cbdefghijklnrtuv"
#define MODHEX_KEY_LEN (8 * 8 + 7)

static bool modhex_key_at(const char *p) {
  for (size_t i = 0; i < MODHEX_KEY_LEN; i++) {
    char c = (char)tolower((unsigned char)p[i]);
    if (i % 9 == 8 ? c != '-' : !c || !strchr(MODHEX, c)) return false;
  }
  return true;
}

/* Replaces in text, in place, each recovery key of systemd-cryptenroll's form by EP_REDACTED
 * (shorter: the text only shrinks); returns how many. */
static size_t mask_modhex_keys(char *text) {
  size_t count = 0, w = 0, len = strlen(text);
  for (size_t r = 0; r < len;) {
    if (len - r >= MODHEX_KEY_LEN && modhex_key_at(text + r)) {
      memcpy(text + w, EP_REDACTED, strlen(EP_REDACTED));
      w += strlen(EP_REDACTED);
      r += MODHEX_KEY_LEN;
      count++;
    } else {
      text[w++] = text[r++];
    }
  }
  if (count) explicit_bzero(text + w, len - w); /* what was beyond holds pieces of a key */
  text[w] = '\0';
  return count;
}

char *ep_redact_text(const char *text, size_t *ret_count) {
  ep_buf out;
  ep_buf_init(&out, "redacted text", SIZE_MAX, EP_BUF_WIPE);
  size_t count = 0;
  bool in_key = false;        /* between a PRIVATE KEY's BEGIN and END lines */
  long block_indent = -1;     /* masking a YAML block value indented more than this */
  int r = 0;
  for (const char *line = text; r == 0 && *line;) {
    const char *end = strchr(line, '\n');
    const char *next = end ? end + 1 : line + strlen(line);
    if (!end) end = next;
    size_t indent = indent_of(line, end);
    bool blank = indent == (size_t)(end - line);
    if (block_indent >= 0 && (blank || (long)indent > block_indent)) {
      line = next; /* the block's lines are gone; its key line says EP_REDACTED */
      continue;
    }
    block_indent = -1;
    const char *begin = memmem(line, (size_t)(end - line), "-----BEGIN ", 11);
    if (in_key) {
      if (memmem(line, (size_t)(end - line), "-----END ", 9)) {
        in_key = false;
        r = ep_buf_append(&out, line, (size_t)(next - line));
      }
      line = next;
      continue;
    }
    bool key_begins = begin && memmem(begin, (size_t)(end - begin), "PRIVATE KEY-----", 16);
    const char *sep = secret_separator(line, end);
    const char *value = sep ? sep + 1 : NULL;
    while (value && value < end && (*value == ' ' || *value == '\t')) value++;
    bool mask_value = value && value < end && !only_node_reference(value, end);
    if (mask_value || key_begins) {
      count++;
      if (mask_value) { /* KEY: ******** (a key's BEGIN in the value: its lines go too) */
        r = ep_buf_append(&out, line, (size_t)(value - line));
        if (r == 0) r = ep_buf_append_str(&out, EP_REDACTED);
        if (r == 0) r = ep_buf_append(&out, end, (size_t)(next - end));
        if (!key_begins && (*value == '|' || *value == '>')) block_indent = (long)indent;
      } else { /* the BEGIN line, then one line for all of the key's */
        r = ep_buf_append(&out, line, (size_t)(next - line));
        if (r == 0 && next == end) r = ep_buf_append_str(&out, "\n");
        if (r == 0) r = ep_buf_append_str(&out, EP_REDACTED "\n");
      }
      in_key = key_begins;
      line = next;
      continue;
    }
    /* Anywhere in the line: a secret-named key's value in JSON, a query string or a list of
     * pairs ({"user":"a","password":"x"}, ?token=abc&x=1), and a URL's password
     * (https://user:pw@host). */
    char *scanned = NULL;
    size_t found = mask_inline(line, (size_t)(end - line), &scanned);
    if (found == (size_t)-1) {
      r = EP_ENOMEM;
      break;
    }
    if (found) {
      count += found;
      r = ep_buf_append_str(&out, scanned);
      free(scanned);
      if (r == 0) r = ep_buf_append(&out, end, (size_t)(next - end));
      line = next;
      continue;
    }
    free(scanned);
    /* "Bearer X" anywhere in the line. */
    const char *p = line;
    for (const char *b; r == 0 && (b = memmem(p, (size_t)(end - p), "Bearer ", 7));) {
      const char *token = b + 7, *token_end = token;
      while (token_end < end && !isspace((unsigned char)*token_end) && *token_end != '"' && *token_end != '\'')
        token_end++;
      r = ep_buf_append(&out, p, (size_t)(token - p));
      if (r == 0 && token_end > token) {
        r = ep_buf_append_str(&out, EP_REDACTED);
        count++;
      }
      p = token_end;
    }
    if (r == 0) r = ep_buf_append(&out, p, (size_t)(next - p));
    line = next;
  }
  char *result = r == 0 ? ep_buf_take(&out, NULL) : NULL;
  ep_buf_free(&out);
  if (result) count += mask_modhex_keys(result); /* wherever one is, whatever masking it went through */
  if (result && ret_count) *ret_count = count;
  return result;
}

char *ep_redact_value(const char *name, const char *value, size_t *count) {
  size_t n = 0;
  char *masked;
  if (ep_redact_is_secret_name(name) && value[0] && !only_node_reference(value, value + strlen(value))) {
    masked = strdup(EP_REDACTED);
    n = 1;
  } else {
    masked = ep_redact_text(value, &n);
  }
  if (masked && count) *count += n;
  return masked;
}
