/* edgeprov-agent: the node's boot log, see boot_log.h. */
#define _GNU_SOURCE /* SEEK_DATA */
#include "boot_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/validate.h"

#define READ_MAX (8 * 1024 * 1024) /* what is read of the source at most */

/* Keeps text (one line, without its newline) as the log's newest line, the oldest going. */
static void keep(ep_boot_log *log, const char *text, size_t len) {
  if (!len) return; /* an empty line says nothing (and the server takes none) */
  /* A kmsg record: "PRIORITY,SEQUENCE,MICROSECONDS,FLAGS;TEXT": the text. */
  size_t skip = 0;
  while (skip < len && strchr("0123456789,-cm", text[skip]) && text[skip]) skip++;
  if (skip < len && text[skip] == ';' && memchr(text, ',', skip)) text += skip + 1, len -= skip + 1;
  char *raw = strndup(text, len), *line = malloc(EP_BOOT_LOG_LINE_MAX + 1);
  if (raw && line) ep_text_escape(line, EP_BOOT_LOG_LINE_MAX + 1, raw, 0);
  free(raw);
  if (!raw || !line) {
    free(line);
    return;
  }
  if (log->count == EP_BOOT_LOG_LINES_MAX) {
    free(log->lines[0]);
    memmove(log->lines, log->lines + 1, (EP_BOOT_LOG_LINES_MAX - 1) * sizeof *log->lines);
    log->count--;
  }
  log->lines[log->count++] = line;
}

int ep_boot_log_read(const char *path, ep_boot_log *log) {
  memset(log, 0, sizeof *log);
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return ep_error_set(EP_EIO, "boot log %s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > READ_MAX)
    lseek(fd, st.st_size - READ_MAX, SEEK_SET); /* a long file: its end (the first line read may be cut) */
  else
    lseek(fd, 0, SEEK_DATA); /* /dev/kmsg: from the oldest record kept */
  char buf[8192], pending[EP_BOOT_LOG_LINE_MAX * 4 + 1] = "";
  size_t held = 0, total = 0;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EPIPE) continue; /* kmsg: records were overwritten while reading */
    if (n <= 0 || (total += (size_t)n) > READ_MAX) break;
    for (ssize_t i = 0; i < n; i++) {
      if (buf[i] == '\n') {
        keep(log, pending, held);
        held = 0;
      } else if (held < sizeof pending - 1) {
        pending[held++] = buf[i] ? buf[i] : ' ';
      }
    }
  }
  if (held) keep(log, pending, held);
  close(fd);
  return 0;
}

void ep_boot_log_clear(ep_boot_log *log) {
  for (size_t i = 0; i < log->count; i++) free(log->lines[i]);
  memset(log, 0, sizeof *log);
}
