/* core: stored text as a JSON string, see json_text.h. */
#include "base/json_text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/validate.h"

json_t *ep_json_text(const char *text) {
  if (!text) text = "";
  size_t len = strlen(text);
  json_t *j = json_stringn(text, len);
  if (j) return j;
  char *fixed = malloc(3 * len + 1);
  if (!fixed) return NULL;
  size_t used = 0;
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    size_t n = ep_utf8_next(text + i, len - i, &cp);
    if (n) {
      memcpy(fixed + used, text + i, n);
      used += n;
      i += n;
    } else {
      memcpy(fixed + used, "\xef\xbf\xbd", 3);
      used += 3;
      i++;
    }
  }
  j = json_stringn(fixed, used);
  free(fixed);
  return j;
}

bool ep_json_push(json_t **array, json_t *item) {
  if (!*array) {
    json_decref(item);
    return false;
  }
  if (item && json_array_append_new(*array, item) == 0) return true; /* (which drops item when it fails) */
  json_decref(*array);
  *array = NULL;
  return false;
}
