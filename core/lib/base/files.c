/* core: reading small text files, see files.h. */
#include "base/files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"

int ep_read_text_file(char **out, const char *path, size_t max, ep_file_access access) {
  /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below. */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return ep_error_set(-errno, "%s: %s", path, strerror(errno));
  struct stat st;
  int r = 0;
  char *text = NULL;
  if (fstat(fd, &st) < 0)
    r = ep_error_set(-errno, "%s: %s", path, strerror(errno));
  else if (!S_ISREG(st.st_mode))
    r = ep_error_set(EP_EINVAL, "%s: not a regular file", path);
  else if ((size_t)st.st_size > max)
    r = ep_error_set(EP_EINVAL, "%s: larger than %zu bytes", path, max);
  else if (access == EP_FILE_OWNER_ONLY && (st.st_mode & 077))
    r = ep_error_set(EP_EPERM, "%s: readable by group or others; it holds a secret (chmod 600)", path);
  else if (!(text = calloc(1, (size_t)st.st_size + 1)))
    r = ep_error_set(EP_ENOMEM, "out of memory");
  else if (read(fd, text, (size_t)st.st_size) != st.st_size)
    r = ep_error_set(EP_EIO, "%s: short read", path);
  close(fd);
  if (r < 0) {
    free(text);
    return r;
  }
  size_t len = strlen(text);
  while (len > 0 && strchr(" \t\r\n", text[len - 1])) text[--len] = '\0';
  *out = text;
  return 0;
}
