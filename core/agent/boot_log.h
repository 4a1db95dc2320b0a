/* edgeprov-agent: the node's boot log, for UploadBootLog when onboarding fails (node.proto):
 * the kernel's ring buffer (/dev/kmsg: each record's text, prefix dropped) or any text file,
 * its last EP_BOOT_LOG_LINES_MAX lines, each made printable (ep_text_escape) and cut to
 * EP_BOOT_LOG_LINE_MAX bytes. */
#ifndef EP_AGENT_BOOT_LOG_H
#define EP_AGENT_BOOT_LOG_H

#include <stddef.h>

#include "net/node_api.h"

typedef struct ep_boot_log {
  char *lines[EP_BOOT_LOG_LINES_MAX];
  size_t count;
} ep_boot_log;

/* Reads path (never blocking: /dev/kmsg is read up to what it holds now) into log. Returns 0,
 * or a negative code with the error set when path cannot be read. */
int ep_boot_log_read(const char *path, ep_boot_log *log);

void ep_boot_log_clear(ep_boot_log *log);

#endif
