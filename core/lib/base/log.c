/* core: structured log lines, see log.h. */
#include "base/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

static FILE *log_sink;
/* Atomic: edgeprovd's reload (SIGHUP) changes it while every thread logs. */
static atomic_int log_max_level = EP_LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void ep_log_setup(FILE *sink, int max_level) {
  log_sink = sink;
  ep_log_set_level(max_level);
}

void ep_log_set_level(int max_level) {
  atomic_store(&log_max_level,
               max_level < EP_LOG_ERROR ? EP_LOG_ERROR : max_level > EP_LOG_DEBUG ? EP_LOG_DEBUG : max_level);
}

const char *ep_log_level_name(int level) {
  return level >= EP_LOG_ERROR && level <= EP_LOG_DEBUG ? level_names[level] : "?";
}

int ep_log_level_parse(const char *name) {
  for (int i = 0; i < (int)(sizeof level_names / sizeof level_names[0]); i++)
    if (strcmp(name, level_names[i]) == 0) return i;
  return -1;
}

static void write_escaped(FILE *out, const char *text) {
  for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(out, "\\%c", *p);
    else if (*p == '\n')
      fputs("\\n", out);
    else if (*p < 0x20 || *p == 0x7f)
      fprintf(out, "\\x%02x", *p);
    else
      fputc(*p, out);
  }
}

void ep_log_message(int level, const char *component, const char *message) {
  if (level > atomic_load(&log_max_level)) return;
  if (level < EP_LOG_ERROR) level = EP_LOG_ERROR;
  FILE *out = log_sink ? log_sink : stderr;
  struct timespec now;
  struct tm tm;
  char stamp[32];
  clock_gettime(CLOCK_REALTIME, &now);
  gmtime_r(&now.tv_sec, &tm);
  strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);

  pthread_mutex_lock(&log_lock);
  fprintf(out, "time=%s.%03ldZ level=%s component=", stamp, now.tv_nsec / 1000000L, level_names[level]);
  write_escaped(out, component ? component : "edgeprov");
  fputs(" msg=\"", out);
  write_escaped(out, message);
  fputs("\"\n", out);
  fflush(out);
  pthread_mutex_unlock(&log_lock);
}

void ep_log(int level, const char *component, const char *fmt, ...) {
  char message[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  ep_log_message(level, component, message);
}
