/* core: "did you mean" suggestions for misspelt names. */
#ifndef EP_CORE_SUGGEST_H
#define EP_CORE_SUGGEST_H

#include <stddef.h>

/* Returns the candidate closest to word by edit distance (case-insensitive), or NULL when
 * none is close enough to be a likely misspelling (distance at most 1/3 of the word's
 * length, and at most 3). Returns a pointer into candidates; names longer than 63 bytes are
 * never suggested. */
const char *ep_suggest(const char *word, const char *const *candidates, size_t count);

#endif
