/* Support for the HTTP fuzzers: one plaintext connection to an ep_https_server through a
 * socketpair, served on the calling thread (ep_https_server_serve_fd) while a client thread
 * sends the request, half-closes and keeps the answer. */
#ifndef EP_FUZZ_HTTP_EXCHANGE_H
#define EP_FUZZ_HTTP_EXCHANGE_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/https.h"

typedef struct fuzz_exchange {
  const void *request;
  size_t request_len;
  char *response;      /* response_cap + 1 bytes: the first response_cap bytes of the answer, NUL-terminated */
  size_t response_cap;
  size_t response_len;
  bool overflowed;     /* the answer was longer than response_cap */
  int fd;              /* the client's end, non-blocking */
} fuzz_exchange;

static void *fuzz_exchange_client(void *arg) {
  fuzz_exchange *x = arg;
  size_t sent = 0;
  bool writing = x->request_len > 0;
  if (!writing) shutdown(x->fd, SHUT_WR);
  for (;;) {
    struct pollfd p = {.fd = x->fd, .events = POLLIN | (writing ? POLLOUT : 0)};
    if (poll(&p, 1, 10000) <= 0) abort(); /* the server neither answers nor closes */
    if (writing && (p.revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = send(x->fd, (const char *)x->request + sent, x->request_len - sent, MSG_NOSIGNAL);
      if (n > 0) sent += (size_t)n;
      if (sent == x->request_len || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        shutdown(x->fd, SHUT_WR);
        writing = false;
      }
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[16384];
      ssize_t n = recv(x->fd, buf, sizeof buf, 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) break;
      size_t room = x->response_cap - x->response_len, keep = n > 0 && (size_t)n < room ? (size_t)n : room;
      if (n > 0 && (size_t)n > room) x->overflowed = true;
      if (n > 0) {
        memcpy(x->response + x->response_len, buf, keep);
        x->response_len += keep;
      }
    }
  }
  x->response[x->response_len] = '\0';
  return NULL;
}

/* Runs one exchange on server; x->request, request_len, response and response_cap set. */
static inline void fuzz_exchange_run(ep_https_server *server, fuzz_exchange *x) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0) abort();
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  x->fd = fds[0];
  x->response_len = 0;
  x->overflowed = false;
  pthread_t thread;
  if (pthread_create(&thread, NULL, fuzz_exchange_client, x) != 0) abort();
  ep_https_server_serve_fd(server, fds[1]); /* takes fds[1] */
  pthread_join(thread, NULL);
  close(fds[0]);
}

#endif
