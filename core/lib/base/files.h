/* core: reading the small text files a site names (certificates, keys, tokens, cloud-init
 * fragments): bounded, regular files only, never through a symbolic link. And the absolute
 * form of a path a user gives a program. */
#ifndef EP_CORE_FILES_H
#define EP_CORE_FILES_H

#include <stddef.h>

typedef enum {
  EP_FILE_ANY_ACCESS, /* any permissions (a certificate, a CA, a fragment) */
  EP_FILE_OWNER_ONLY, /* refused (EP_EPERM) when group or others may read it: it holds a secret */
} ep_file_access;

/* Reads path: a regular file of at most max bytes (not a symbolic link), with the access
 * rule given. Trailing spaces, tabs and line ends are dropped. Errors name the path and the reason. The caller
 * frees *out (and clears it first when it holds a secret). */
int ep_read_text_file(char **out, const char *path, size_t max, ep_file_access access);

/* The absolute form of path a user gave: unchanged when it starts with '/', else taken from the
 * current directory (leading "./" dropped; nothing else is resolved, the path need not exist).
 * For a program's options, at parse time, so a later chdir or a plugin that takes absolute paths
 * only sees the file the user meant. The caller frees *out. EP_ENOMEM, or -errno from getcwd. */
int ep_path_absolute(char **out, const char *path);

#endif
