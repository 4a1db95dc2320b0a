/* core: structured log lines (logfmt: time=... level=... component=... msg="..."). */
#ifndef EP_CORE_LOG_H
#define EP_CORE_LOG_H

#include <stdio.h>

#include <edgeprov/abi.h>

/* Sets where lines go (default stderr) and the most verbose level written (default
 * EP_LOG_INFO). Call before other threads log. */
void ep_log_setup(FILE *sink, int max_level);

/* Changes the most verbose level written (clamped to EP_LOG_ERROR..EP_LOG_DEBUG); any thread,
 * while others log (edgeprovd's reload). */
void ep_log_set_level(int max_level);

/* Writes one line: level is an EP_LOG_* value, component names the room or plugin.
 * Quotes, backslashes and control characters in the message are escaped. Thread-safe. */
void ep_log(int level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Same as ep_log with a preformatted message. */
void ep_log_message(int level, const char *component, const char *message);

/* Parses "error", "warn", "info" or "debug"; returns the level or -1. */
int ep_log_level_parse(const char *name);

/* The name ep_log_level_parse takes for level ("?" outside EP_LOG_ERROR..EP_LOG_DEBUG). */
const char *ep_log_level_name(int level);

#endif
