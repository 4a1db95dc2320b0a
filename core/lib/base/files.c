/* core: reading small text files, and the absolute form of a path a user gave; see files.h. */
#define _GNU_SOURCE /* asprintf */
#include "base/files.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
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

int ep_path_absolute(char **out, const char *path) {
  char *copy = NULL;
  if (!path[0]) return ep_error_set(EP_EINVAL, "an empty path names no file or directory");
  if (path[0] == '/') {
    copy = strdup(path);
  } else {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return ep_error_set(-errno, "%s: the current directory: %s", path, strerror(errno));
    while (path[0] == '.' && path[1] == '/') path += 2 + strspn(path + 2, "/");
    if (strcmp(path, ".") == 0) path = "";
    if (asprintf(&copy, "%s%s%s", cwd, strcmp(cwd, "/") == 0 || !*path ? "" : "/", path) < 0) copy = NULL;
  }
  if (!copy) return ep_error_set(EP_ENOMEM, "out of memory");
  *out = copy;
  return 0;
}
