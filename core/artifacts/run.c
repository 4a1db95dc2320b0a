/* core/artifacts: see run.h. */
#define _GNU_SOURCE /* pipe2 */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/error.h"

extern char **environ;

#define STDERR_KEPT 2048

int ep_run(const char *const *argv, char *out, size_t out_size) {
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) < 0) return ep_error_set(EP_EIO, "%s: pipe: %s", argv[0], strerror(errno));
  if (pipe2(err_pipe, O_CLOEXEC) < 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return ep_error_set(EP_EIO, "%s: pipe: %s", argv[0], strerror(errno));
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  pid_t pid;
  int r = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (r != 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    return ep_error_set(EP_ENOENT, "cannot run %s: %s (see scripts/install-deps.sh)", argv[0], strerror(r));
  }
  char err[STDERR_KEPT];
  size_t out_len = 0, err_len = 0;
  struct pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; i++) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char chunk[4096];
      ssize_t n = read(fds[i].fd, chunk, sizeof chunk);
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        open_fds--;
        continue;
      }
      if (i == 0 && out && out_len + 1 < out_size) {
        size_t take = (size_t)n < out_size - 1 - out_len ? (size_t)n : out_size - 1 - out_len;
        memcpy(out + out_len, chunk, take);
        out_len += take;
      } else if (i == 1) { /* keep the last STDERR_KEPT - 1 bytes */
        if ((size_t)n >= sizeof err - 1) {
          memcpy(err, chunk + (size_t)n - (sizeof err - 1), sizeof err - 1);
          err_len = sizeof err - 1;
        } else {
          if (err_len + (size_t)n > sizeof err - 1) {
            size_t drop = err_len + (size_t)n - (sizeof err - 1);
            memmove(err, err + drop, err_len - drop);
            err_len -= drop;
          }
          memcpy(err + err_len, chunk, (size_t)n);
          err_len += (size_t)n;
        }
      }
    }
  }
  if (out) out[out_len] = '\0';
  err[err_len] = '\0';
  while (err_len > 0 && (err[err_len - 1] == '\n' || err[err_len - 1] == ' ')) err[--err_len] = '\0';
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
  if (WIFSIGNALED(status))
    return ep_error_set(EP_EFAILED, "%s was killed by signal %d%s%s", argv[0], WTERMSIG(status), err_len ? ": " : "", err);
  return ep_error_set(EP_EFAILED, "%s failed (exit %d)%s%s", argv[0], WEXITSTATUS(status), err_len ? ": " : "", err);
}
