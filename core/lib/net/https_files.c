/* core: static files of a published directory on the embedded HTTPS server, see
 * https_files.h. */
#define _GNU_SOURCE /* O_PATH */
#include "net/https_files.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/figures.h"

#define PATH_DEPTH_MAX 8
#define PATH_LEN_MAX 255
/* Bytes read from a file per send. libmicrohttpd's own file responses read 4 KiB at a time,
 * which over TLS becomes one 4 KiB record, a poll and a send per 4 KiB; 64 KiB lets the TLS
 * library fill whole 16 KiB records (tests/bench/bench_artifacts.sh measures the difference). */
#define FILE_BLOCK_SIZE (64 * 1024)
/* Bodies from this size on are sent with TCP_NODELAY off (see ep_https_serve_file). */
#define COALESCE_MIN (256 * 1024)

/* One path component: [A-Za-z0-9_][A-Za-z0-9._-]*, so never "", ".", ".." or hidden. */
static bool component_valid(const char *c, size_t len) {
  if (len == 0 || len > 128 || c[0] == '.' || c[0] == '-') return false;
  for (size_t i = 0; i < len; i++) {
    char ch = c[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
          ch == '_' || ch == '-'))
      return false;
  }
  return true;
}

int ep_https_files_open(const char *directory, const char *rel) {
  if (strlen(rel) > PATH_LEN_MAX) {
    errno = EINVAL;
    return -1;
  }
  int dir = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return -1;
  const char *p = rel;
  for (int depth = 0;; depth++) {
    const char *slash = strchr(p, '/');
    size_t len = slash ? (size_t)(slash - p) : strlen(p);
    char name[129];
    if (depth >= PATH_DEPTH_MAX || !component_valid(p, len)) {
      close(dir);
      errno = EINVAL;
      return -1;
    }
    memcpy(name, p, len);
    name[len] = '\0';
    int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (slash ? O_DIRECTORY : 0);
    int fd = openat(dir, name, flags);
    int saved = errno;
    close(dir);
    if (fd < 0) {
      errno = saved == ELOOP ? EACCES : saved;
      return -1;
    }
    if (!slash) return fd;
    dir = fd;
    p = slash + 1;
  }
}

static const char *content_type_of(const char *name) {
  const char *dot = strrchr(name, '.');
  if (!dot) return "application/octet-stream";
  if (strcmp(dot, ".ipxe") == 0 || strcmp(dot, ".txt") == 0 || strcmp(dot, ".pem") == 0 || strcmp(dot, ".crt") == 0)
    return "text/plain; charset=utf-8";
  if (strcmp(dot, ".json") == 0) return "application/json";
  if (strcmp(dot, ".efi") == 0) return "application/efi";
  return "application/octet-stream";
}

int ep_https_files_parse_range(const char *h, uint64_t size, uint64_t *first, uint64_t *last) {
  if (strncmp(h, "bytes=", 6) != 0 || strchr(h, ',')) return 0;
  const char *p = h + 6;
  char *end;
  if (*p == '-') {
    if (p[1] < '0' || p[1] > '9') return 0;
    errno = 0;
    uint64_t suffix = strtoull(p + 1, &end, 10);
    if (*end || errno) return 0;
    if (suffix == 0 || size == 0) return -1;
    *first = suffix >= size ? 0 : size - suffix;
    *last = size - 1;
    return 1;
  }
  if (*p < '0' || *p > '9') return 0;
  errno = 0;
  uint64_t a = strtoull(p, &end, 10);
  if (errno || *end != '-') return 0;
  p = end + 1;
  uint64_t b = UINT64_MAX;
  if (*p) {
    if (*p < '0' || *p > '9') return 0;
    b = strtoull(p, &end, 10);
    if (*end || errno) return 0;
    if (b < a) return 0;
  }
  if (a >= size) return -1;
  *first = a;
  *last = b >= size ? size - 1 : b;
  return 1;
}

/* What a file response reads from: the open file, and the file offset of the body's first byte. */
typedef struct file_body {
  int fd;
  uint64_t offset;
  int socket; /* the connection's socket while its body is coalesced (Nagle on), else -1 */
} file_body;

static ssize_t read_file_block(void *cls, uint64_t pos, char *buf, size_t max) {
  file_body *b = cls;
  ssize_t n;
  do n = pread(b->fd, buf, max, (off_t)(b->offset + pos));
  while (n < 0 && errno == EINTR);
  if (n > 0) ep_figures_artifact_bytes((uint64_t)n);
  /* 0 before the announced length: the file shrank while being sent; end the connection
   * rather than send a short body with a full Content-Length. */
  return n > 0 ? n : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void free_file_body(void *cls) {
  file_body *b = cls;
  /* TCP_NODELAY back on sends the body's last partial segment now. Should the connection be
   * gone already, this lands on a closed descriptor or another connection's socket, which
   * gets the TCP_NODELAY libmicrohttpd sets anyway: harmless. */
  if (b->socket >= 0) {
    int one = 1;
    setsockopt(b->socket, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  close(b->fd);
  free(b);
}

static enum MHD_Result respond_status(struct MHD_Connection *c, unsigned status, const char *text,
                                      const char *header, const char *value) {
  struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
  if (header) MHD_add_response_header(r, header, value);
  enum MHD_Result q = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return q;
}

enum MHD_Result ep_https_serve_file(struct MHD_Connection *c, const char *method, const char *directory,
                                    const char *rel) {
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
    return respond_status(c, 405, "method not allowed\n", MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
  int fd = ep_https_files_open(directory, rel);
  if (fd < 0) {
    if (errno == EINVAL || errno == EACCES) return respond_status(c, 404, "not found\n", NULL, NULL);
    return respond_status(c, errno == ENOENT || errno == ENOTDIR ? 404 : 500,
                          errno == ENOENT || errno == ENOTDIR ? "not found\n" : "cannot open\n", NULL, NULL);
  }
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return respond_status(c, 404, "not found\n", NULL, NULL);
  }
  /* The change time and inode change whenever a file is replaced, even by one of the same
   * size and modification time (reproducible builds fix the latter). */
  char etag[96];
  snprintf(etag, sizeof etag, "\"%" PRIx64 "-%" PRIx64 "-%lx%09lx\"", (uint64_t)st.st_ino, (uint64_t)st.st_size,
           (unsigned long)st.st_ctim.tv_sec, (unsigned long)st.st_ctim.tv_nsec);
  uint64_t size = (uint64_t)st.st_size;

  const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
  if (inm && (strcmp(inm, etag) == 0 || strcmp(inm, "*") == 0 || strstr(inm, etag))) {
    close(fd);
    struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
    enum MHD_Result q = MHD_queue_response(c, MHD_HTTP_NOT_MODIFIED, r);
    MHD_destroy_response(r);
    return q;
  }

  uint64_t first = 0, last = size ? size - 1 : 0;
  int ranged = 0;
  const char *range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE);
  const char *if_range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_RANGE);
  if (range && (!if_range || strcmp(if_range, etag) == 0))
    ranged = ep_https_files_parse_range(range, size, &first, &last);
  if (ranged < 0) {
    close(fd);
    char unsatisfied[48];
    snprintf(unsatisfied, sizeof unsatisfied, "bytes */%" PRIu64, size);
    return respond_status(c, MHD_HTTP_RANGE_NOT_SATISFIABLE, "range not satisfiable\n", MHD_HTTP_HEADER_CONTENT_RANGE,
                          unsatisfied);
  }
  uint64_t len = size ? last - first + 1 : 0;
  file_body *body = malloc(sizeof *body);
  if (!body) {
    close(fd);
    return MHD_NO;
  }
  *body = (file_body){.fd = fd, .offset = first, .socket = -1};
  /* libmicrohttpd sets TCP_NODELAY, so every TLS record leaves as a segment of its own and
   * wakes the client once per 16 KiB; a large body goes out with Nagle's coalescing instead
   * (full segments), and free_file_body flushes the rest when the response is done. */
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
  if (ci && len >= COALESCE_MIN && strcmp(method, "HEAD") != 0) {
    int zero = 0;
    if (setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_NODELAY, &zero, sizeof zero) == 0) body->socket = ci->connect_fd;
  }
  struct MHD_Response *r = MHD_create_response_from_callback(len, FILE_BLOCK_SIZE, read_file_block, body,
                                                             free_file_body); /* owns body */
  if (!r) {
    free_file_body(body);
    return MHD_NO;
  }
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type_of(rel));
  MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
  MHD_add_response_header(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
  MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
  if (ranged) {
    char content_range[96];
    snprintf(content_range, sizeof content_range, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, last, size);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, content_range);
  }
  enum MHD_Result q = MHD_queue_response(c, ranged ? MHD_HTTP_PARTIAL_CONTENT : MHD_HTTP_OK, r);
  MHD_destroy_response(r);
  return q;
}
