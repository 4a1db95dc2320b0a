/* Fuzzes template substitution, ep_template_substitute (workflow.c), which expands ${name} in
 * workflow parameters from operator templates and node values. The first input byte picks
 * the size limit and the kept prefix; the rest is the text. Checks against a reference
 * written from workflow.h's contract: same output, or the same error (EP_EINVAL for a
 * malformed or unknown ${variable}, EP_ERANGE past the limit); values are not expanded again;
 * the output stays under the limit. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "provisioning/workflow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char big[5000];

static const char *lookup(void *data, const char *name) {
  (void)data;
  static const char *const vars[][2] = {
      {"node.hostname", "node-1"}, {"node.mac", "52:54:00:12:34:56"}, {"x", "${node.mac}"}, {"empty", ""},
      {"dollar", "$"},             {"open", "${"},                    {"a}b", "brace"}};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
    if (strcmp(vars[i][0], name) == 0) return vars[i][1];
  return strcmp(name, "big") == 0 ? big : NULL;
}

/* The contract, spelled out: 0 with *out set, or the error code. */
static int reference(const char *text, const char *keep, size_t max, char **out) {
  size_t len = 0, cap = strlen(text) * 2 + sizeof big + 1;
  char *o = malloc(cap);
  if (!o) abort();
  for (const char *p = text; *p;) {
    const char *add = p;
    size_t add_len = 1, step = 1;
    if (p[0] == '$' && p[1] == '{') {
      const char *end = strchr(p + 2, '}');
      size_t n = end ? (size_t)(end - p - 2) : 0;
      if (!end || n == 0 || n > 63) return free(o), EP_EINVAL;
      char name[64];
      memcpy(name, p + 2, n);
      name[n] = '\0';
      step = add_len = n + 3;
      if (!keep || strncmp(name, keep, strlen(keep)) != 0) {
        if (!(add = lookup(NULL, name))) return free(o), EP_EINVAL;
        add_len = strlen(add);
      }
    }
    if (len + add_len + 1 > max) return free(o), EP_ERANGE;
    while (len + add_len + 1 > cap) {
      cap *= 2;
      if (!(o = realloc(o, cap))) abort();
    }
    memcpy(o + len, add, add_len);
    len += add_len, p += step;
  }
  o[len] = '\0';
  *out = o;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const size_t limits[] = {1, 16, 256, 4096, EP_WORKFLOW_PARAM_MAX};
  static const char *const keeps[] = {NULL, "node.", ""};
  if (!big[0]) memset(big, 'b', sizeof big - 1);
  if (size == 0 || size > 64 * 1024) return 0;
  size_t max = limits[data[0] % 5];
  const char *keep = keeps[(data[0] / 5) % 3];
  char *text = malloc(size);
  if (!text) abort();
  memcpy(text, data + 1, size - 1);
  text[size - 1] = '\0';

  ep_error_clear();
  char *got = ep_template_substitute(text, lookup, NULL, keep, max);
  int got_code = got ? 0 : ep_error_code();
  char *want = NULL;
  int want_code = reference(text, keep, max, &want);
  if (got_code != want_code) abort();
  if (got && (strcmp(got, want) != 0 || strlen(got) + 1 > max)) abort();
  if (!got && (!ep_error_message() || !ep_error_message()[0])) abort();
  free(got);
  free(want);
  free(text);
  return 0;
}
