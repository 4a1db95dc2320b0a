/* core: secrets, see secret.h. */
#include "base/secret.h"

#include <string.h>

#include "base/files.h"

int ep_read_secret_file(char **out, const char *path, size_t max) {
  return ep_read_text_file(out, path, max, EP_FILE_OWNER_ONLY);
}

bool ep_secret_equal(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  unsigned char diff = (unsigned char)(la != lb);
  for (size_t i = 0; i < la && i < lb; i++) diff |= (unsigned char)(a[i] ^ b[i]);
  return diff == 0;
}
