/* core: stored text as a JSON string, for every JSON answer (the dashboard's API, the CLI's
 * --json). jansson takes only UTF-8; text stored before the input checks may hold anything. */
#ifndef EP_CORE_JSON_TEXT_H
#define EP_CORE_JSON_TEXT_H

#include <jansson.h>
#include <stdbool.h>

/* text (NULL: "") as a JSON string: as it is when it is UTF-8, else each byte that is not
 * replaced by U+FFFD, so a record never vanishes from a list for one bad byte. NULL only when
 * out of memory. */
json_t *ep_json_text(const char *text);

/* Appends item to the JSON array *array, taking item (NULL, from a failed json_pack, counts as
 * a failure). On a failure the whole array goes (*array becomes NULL), so a list is complete or
 * absent, never silently short. Returns whether *array is still there. */
bool ep_json_push(json_t **array, json_t *item);

#endif
