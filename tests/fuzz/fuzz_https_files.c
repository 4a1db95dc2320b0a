/* Fuzzes the HTTPS file server (https_files.c): the path walk, the Range parser, and whole GET
 * and HEAD requests with Range, If-None-Match and If-Range through ep_https_server_serve_fd.
 * The input is lines: the path below /boot/, Range, If-None-Match, If-Range, the method
 * ("HEAD" or anything else for GET); "@E" in a header stands for a.efi's current ETag. Checks:
 * only files inside the published directory are ever opened or sent (no "..", hidden name or
 * symbolic link gets out), a range is inside the file, and every 200/206 body is the file's
 * bytes at the announced offsets. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http_exchange.h"
#include "net/https.h"
#include "net/https_files.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FILE_SIZE 3000
#define LINE_MAX_LEN 512
#define RESPONSE_MAX (64 * 1024)
#define OUTSIDE "OUTSIDE-MARKER-1c9e"
#define HIDDEN "HIDDEN-MARKER-77b2"

static char root[64];   /* the temporary tree */
static char served[96]; /* root/art: the published directory */
static char etag[128];  /* a.efi's ETag, learnt at setup */
static ep_https_server *server;

/* What may be opened: files and directories inside served, reached without a symbolic link. */
static struct stat allowed[8];
static size_t allowed_count;

static uint8_t file_byte(uint64_t i) { return (uint8_t)(i * 31 + 7); }

static void write_text(const char *path, const void *text, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(text, 1, len, f) != len || fclose(f) != 0) abort();
}

static void allow(const char *rel) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", served, rel);
  if (lstat(path, &allowed[allowed_count++]) != 0) abort();
}

static char response[RESPONSE_MAX + 1];

/* One request to server; aborts when the answer is longer than any it should be. */
static void exchange_run(fuzz_exchange *x, const char *request, size_t len) {
  *x = (fuzz_exchange){.request = request, .request_len = len, .response = response, .response_cap = RESPONSE_MAX};
  fuzz_exchange_run(server, x);
  if (x->overflowed) abort();
}

/* The value of header name in the response head (up to head_len), or NULL. */
static const char *header(const char *head, size_t head_len, const char *name, char *out, size_t cap) {
  size_t n = strlen(name);
  for (const char *line = strstr(head, "\r\n"); line && line < head + head_len; line = strstr(line + 2, "\r\n")) {
    if (strncasecmp(line + 2, name, n) != 0 || line[2 + n] != ':') continue;
    const char *v = line + 3 + n, *end = strstr(v, "\r\n");
    while (*v == ' ') v++;
    snprintf(out, cap, "%.*s", (int)(end - v), v);
    return out;
  }
  return NULL;
}

static void remove_tree(void) {
  static const char *const names[] = {"art/sub/hid", "art/sub/up", "art/sub/b.efi", "art/sub", "art/link", "art/.hidden",
                                      "art/empty.efi", "art/a.efi", "art", "outside.txt", ""};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", root, names[i]);
    if (remove(path) != 0 && errno != ENOENT) break;
  }
}

static void setup(void) {
  snprintf(root, sizeof root, "/tmp/edgeprov-fuzz-files-%d", (int)getpid());
  snprintf(served, sizeof served, "%s/art", root);
  char path[256];
  uint8_t content[FILE_SIZE];
  for (size_t i = 0; i < FILE_SIZE; i++) content[i] = file_byte(i);
  if (mkdir(root, 0755) != 0 && errno != EEXIST) abort();
  snprintf(path, sizeof path, "%s/outside.txt", root), write_text(path, OUTSIDE, strlen(OUTSIDE));
  snprintf(path, sizeof path, "%s/art", root), mkdir(path, 0755);
  snprintf(path, sizeof path, "%s/art/sub", root), mkdir(path, 0755);
  snprintf(path, sizeof path, "%s/art/a.efi", root), write_text(path, content, FILE_SIZE);
  snprintf(path, sizeof path, "%s/art/sub/b.efi", root), write_text(path, content, FILE_SIZE);
  snprintf(path, sizeof path, "%s/art/empty.efi", root), write_text(path, "", 0);
  snprintf(path, sizeof path, "%s/art/.hidden", root), write_text(path, HIDDEN, strlen(HIDDEN));
  snprintf(path, sizeof path, "%s/art/link", root), (void)symlink("../outside.txt", path);
  snprintf(path, sizeof path, "%s/art/sub/up", root), (void)symlink("..", path);
  snprintf(path, sizeof path, "%s/art/sub/hid", root), (void)symlink("../.hidden", path);
  allow("a.efi"), allow("sub"), allow("sub/b.efi"), allow("empty.efi");
  atexit(remove_tree);

  if (ep_https_server_new(&server, "127.0.0.1:0", NULL, NULL) < 0 ||
      ep_https_server_serve_directory(server, "/boot", served) < 0)
    abort();
  static const char head[] = "HEAD /boot/a.efi HTTP/1.1\r\nHost: h\r\n\r\n";
  fuzz_exchange x;
  exchange_run(&x, head, strlen(head));
  if (!header(x.response, x.response_len, "ETag", etag, sizeof etag)) abort();
}

/* Every file the walk opens is one of the allowed ones. */
static void check_open(const char *rel) {
  int fd = ep_https_files_open(served, rel);
  if (fd < 0) return;
  struct stat st;
  if (fstat(fd, &st) != 0) abort();
  close(fd);
  for (size_t i = 0; i < allowed_count; i++)
    if (allowed[i].st_dev == st.st_dev && allowed[i].st_ino == st.st_ino) return;
  abort();
}

/* A parsed range is inside the file, and nothing is written when there is none. */
static void check_range(const char *value) {
  static const uint64_t sizes[] = {0, 1, FILE_SIZE, UINT64_MAX};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    uint64_t first = 12345, last = 67890;
    int r = ep_https_files_parse_range(value, sizes[i], &first, &last);
    if (r == 1 && !(first <= last && last < sizes[i])) abort();
    if (r != 1 && (first != 12345 || last != 67890)) abort();
    if (r < -1 || r > 1) abort();
  }
}

/* Copies a header value, with "@E" replaced by a.efi's ETag. */
static void expand(char *out, size_t cap, const char *in) {
  size_t n = 0;
  for (const char *p = in; *p && n + 1 < cap; p++) {
    if (p[0] == '@' && p[1] == 'E') {
      n += (size_t)snprintf(out + n, cap - n, "%s", etag);
      if (n >= cap) n = cap - 1;
      p++;
    } else {
      out[n++] = *p;
    }
  }
  out[n] = '\0';
}

/* The whole GET/HEAD: status, ranges and bytes as promised. */
static void check_request(char lines[5][LINE_MAX_LEN]) {
  bool head = strcmp(lines[4], "HEAD") == 0;
  char range[LINE_MAX_LEN + 128], inm[LINE_MAX_LEN + 128], if_range[LINE_MAX_LEN + 128];
  expand(range, sizeof range, lines[1]);
  expand(inm, sizeof inm, lines[2]);
  expand(if_range, sizeof if_range, lines[3]);
  fuzz_exchange x;
  static char request[4 * LINE_MAX_LEN + 1024];
  int n = snprintf(request, sizeof request, "%s /boot/%s HTTP/1.1\r\nHost: h\r\n%s%s%s%s%s%s%s%s%s\r\n", head ? "HEAD" : "GET",
                   lines[0], range[0] ? "Range: " : "", range, range[0] ? "\r\n" : "", inm[0] ? "If-None-Match: " : "",
                   inm, inm[0] ? "\r\n" : "", if_range[0] ? "If-Range: " : "", if_range, if_range[0] ? "\r\n" : "");
  exchange_run(&x, request, (size_t)n);
  if (getenv("EP_FUZZ_PRINT")) fprintf(stderr, "---- %s---- response\n%.400s\n", request, x.response); /* seeds */
  if (x.response_len == 0) return; /* refused by libmicrohttpd before a response (bad request line) */
  if (memmem(x.response, x.response_len, OUTSIDE, strlen(OUTSIDE)) ||
      memmem(x.response, x.response_len, HIDDEN, strlen(HIDDEN)))
    abort();
  int status = 0;
  if (sscanf(x.response, "HTTP/1.1 %d ", &status) != 1) abort();
  const char *end = strstr(x.response, "\r\n\r\n");
  if (!end) abort();
  size_t head_len = (size_t)(end - x.response) + 4;
  const uint8_t *body = (const uint8_t *)x.response + head_len;
  size_t body_len = x.response_len - head_len;
  char value[256];
  uint64_t length = 0, first = 0, last = 0, total = 0;
  if (header(x.response, head_len, "Content-Length", value, sizeof value)) length = strtoull(value, NULL, 10);
  if (status == 304 && !inm[0]) abort();
  if (status == 206) {
    if (!range[0] || !header(x.response, head_len, "Content-Range", value, sizeof value) ||
        sscanf(value, "bytes %" SCNu64 "-%" SCNu64 "/%" SCNu64, &first, &last, &total) != 3 || first > last ||
        last >= total || length != last - first + 1)
      abort();
  } else if (status == 200) {
    total = length;
    last = length ? length - 1 : 0;
  } else {
    return;
  }
  if (total != FILE_SIZE && total != 0) abort(); /* only a.efi, sub/b.efi or empty.efi */
  if (head) {
    if (body_len != 0) abort();
    return;
  }
  if (body_len != length) abort();
  for (uint64_t i = 0; i < body_len; i++)
    if (body[i] != file_byte(first + i)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, setup);
  if (size > 4 * LINE_MAX_LEN) return 0;
  char lines[5][LINE_MAX_LEN] = {{0}};
  size_t line = 0, len = 0;
  for (size_t i = 0; i < size && line < 5; i++) {
    if (data[i] == '\n') {
      line++, len = 0;
    } else if (data[i] != '\r' && data[i] != '\0' && len + 1 < LINE_MAX_LEN) {
      lines[line][len++] = (char)data[i];
    }
  }
  check_open(lines[0]);
  check_range(lines[1]);
  check_request(lines);
  return 0;
}
