/* Test support shared by the unit tests: temporary files and diagnostic matching. */
#ifndef EP_TEST_UTIL_H
#define EP_TEST_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/diag.h"

/* A self-signed CA certificate (PEM) for configs that need a readable tls.ca: its key is
 * nowhere, nothing is verified against it. */
#define TU_CA_PEM                                                        \
  "-----BEGIN CERTIFICATE-----\n"                                        \
  "MIIBizCCATGgAwIBAgIUPzNpdVDYfBeZOQAwcNNfGZR1cZUwCgYIKoZIzj0EAwIw\n"   \
  "GzEZMBcGA1UEAwwQZWRnZXByb3YtdGVzdC1jYTAeFw0yNjExMjUwMzU2NDlaFw0z\n"   \
  "NjExMjIwMzU2NDlaMBsxGTAXBgNVBAMMEGVkZ2Vwcm92LXRlc3QtY2EwWTATBgcq\n"   \
  "hkjOPQIBBggqhkjOPQMBBwNCAAReTJXWgnN9+ZwPM5Jv3DvYn77QVNRQ0QpUXf88\n"   \
  "TwPJT3xlzGAUS8UOpyIaIoqySfAGIyOKvmWGrIHKQqCp+EuRo1MwUTAdBgNVHQ4E\n"   \
  "FgQUgs8xaCddztav1acaaERem/1PrK0wHwYDVR0jBBgwFoAUgs8xaCddztav1aca\n"   \
  "aERem/1PrK0wDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiBSX8uJ\n"   \
  "sfYR9YWgCJsd8wsyj5eqHoXUBLin9pIQwYuAKgIhAM0UDFfwW4saUim/XJNnImO1\n"   \
  "pBU+CoD4bp714dpZLUHr\n"                                               \
  "-----END CERTIFICATE-----\n"

/* Creates a fresh temporary directory (test-owned; removed by tu_rmdir). */
static inline char *tu_mkdtemp(void) {
  char *dir = strdup("/tmp/edgeprov-test-XXXXXX");
  return dir && mkdtemp(dir) ? dir : NULL;
}

/* Writes text to dir/name and returns the path (caller frees). */
static inline char *tu_write(const char *dir, const char *name, const char *text) {
  char *path = NULL;
  if (asprintf(&path, "%s/%s", dir, name) < 0) return NULL;
  FILE *f = fopen(path, "w");
  if (!f) return path;
  fputs(text, f);
  fclose(f);
  return path;
}

/* Writes text to dir/relpath, making the directories on the way (a fake sysroot's
 * "sys/class/net/eth0/address"). Returns 0 or -1. */
static inline int tu_put(const char *dir, const char *relpath, const char *text) {
  char path[4096];
  if (snprintf(path, sizeof path, "%s/%s", dir, relpath) >= (int)sizeof path) return -1;
  for (char *slash = path + strlen(dir) + 1; (slash = strchr(slash, '/')); slash++) {
    *slash = '\0';
    int r = mkdir(path, 0755);
    *slash = '/';
    if (r < 0 && errno != EEXIST) return -1;
  }
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  int ok = fputs(text, f) >= 0;
  return fclose(f) == 0 && ok ? 0 : -1;
}

static inline void tu_rmdir(char *dir) {
  char *cmd = NULL;
  if (dir && asprintf(&cmd, "rm -rf '%s'", dir) >= 0 && system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
  free(cmd);
  free(dir);
}

/* A TCP port on 127.0.0.1 that was free a moment ago (for configs that need one). */
static inline int tu_free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  bind(fd, (struct sockaddr *)&a, sizeof a);
  getsockname(fd, (struct sockaddr *)&a, &len);
  close(fd);
  return ntohs(a.sin_port);
}

/* The contents of a small text file (at most 64 KiB), or NULL; caller frees. */
static inline char *tu_slurp(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  char *text = calloc(1, 65536);
  size_t n = text ? fread(text, 1, 65535, f) : 0;
  if (text) text[n] = '\0';
  fclose(f);
  return text;
}

/* The exit status of `grep -rqaF -- text dir`: 0 when a file under dir holds text, 1 when none does,
 * 2 when grep failed (dir missing or unreadable), -1 when it did not run or text or dir holds a single
 * quote. A test that text is stored nowhere asserts exactly 1: "not 0" would pass on a missing dir. */
static inline int tu_grep_tree(const char *dir, const char *text) {
  char *cmd = NULL;
  if (strchr(dir, '\'') || strchr(text, '\'') || asprintf(&cmd, "grep -rqaF -- '%s' '%s'", text, dir) < 0) return -1;
  int status = system(cmd);
  free(cmd);
  return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Makes certificates in dir with the openssl CLI: a CA (ca.pem, ca.key), a server certificate
 * for 127.0.0.1 and localhost signed by it (server.pem, server.key), and an unrelated
 * self-signed one (other.pem, other.key). Returns 0, or -1 when openssl failed. */
static inline int tu_make_certs(const char *dir) {
  char *cmd = NULL;
  if (asprintf(&cmd,
               "cd '%s' && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 "
               "-subj /CN=test-ca >/dev/null 2>&1 && openssl req -newkey rsa:2048 -nodes -keyout server.key "
               "-out server.csr -subj /CN=localhost >/dev/null 2>&1 && "
               "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost' > server.ext && openssl x509 -req -in server.csr "
               "-CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 1 -extfile server.ext "
               ">/dev/null 2>&1 && "
               "openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 1 -subj /CN=other "
               ">/dev/null 2>&1",
               dir) < 0)
    return -1;
  int r = system(cmd);
  free(cmd);
  return r == 0 ? 0 : -1;
}

/* dir/name as a malloc'd path (caller frees). */
static inline char *tu_path(const char *dir, const char *name) {
  char *path = NULL;
  return asprintf(&path, "%s/%s", dir, name) < 0 ? NULL : path;
}

/* True when diags holds a diagnostic at line (0: any line) whose message contains text. */
static inline int tu_has_diag(const ep_diags *diags, int line, const char *text) {
  for (size_t i = 0; i < diags->count; i++)
    if ((line == 0 || diags->items[i].line == line) && strstr(diags->items[i].message, text)) return 1;
  fprintf(stderr, "no diagnostic at line %d containing \"%s\"; have:\n", line, text);
  ep_diags_print(diags, stderr);
  return 0;
}

#endif
