/* core: "did you mean" suggestions, see suggest.h. */
#include "base/suggest.h"

#include <ctype.h>
#include <string.h>

#define SUGGEST_NAME_MAX 63

/* Optimal string alignment distance (Levenshtein plus adjacent transposition). */
static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  size_t rows[3][SUGGEST_NAME_MAX + 2];
  size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
  for (size_t j = 0; j <= lb; j++) prev[j] = j;
  for (size_t i = 1; i <= la; i++) {
    cur[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      int same = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]);
      size_t best = prev[j - 1] + (same ? 0 : 1);
      if (prev[j] + 1 < best) best = prev[j] + 1;
      if (cur[j - 1] + 1 < best) best = cur[j - 1] + 1;
      if (i > 1 && j > 1 && tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 2]) &&
          tolower((unsigned char)a[i - 2]) == tolower((unsigned char)b[j - 1]) && prev2[j - 2] + 1 < best)
        best = prev2[j - 2] + 1;
      cur[j] = best;
    }
    size_t *t = prev2;
    prev2 = prev;
    prev = cur;
    cur = t;
  }
  return prev[lb];
}

const char *ep_suggest(const char *word, const char *const *candidates, size_t count) {
  size_t len = strlen(word);
  if (len == 0 || len > SUGGEST_NAME_MAX) return NULL;
  size_t limit = len / 3;
  if (limit < 1) limit = 1;
  if (limit > 3) limit = 3;
  const char *best = NULL;
  size_t best_distance = limit + 1;
  for (size_t i = 0; i < count; i++) {
    if (!candidates[i] || strlen(candidates[i]) > SUGGEST_NAME_MAX) continue;
    size_t d = edit_distance(word, candidates[i]);
    if (d < best_distance) {
      best_distance = d;
      best = candidates[i];
    }
  }
  return best;
}
