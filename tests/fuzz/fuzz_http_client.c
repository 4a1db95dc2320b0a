/* Fuzzes the HTTP client's response header callbacks (http_client.c): the lines libcurl hands
 * over, one header line per call with its CRLF, go through ep_http_reply_header (Location,
 * Content-Type) and ep_http_fetch_header (status line, Content-Length, Content-Range). The
 * first input byte picks the resume offset. Checks: the kept values stay bounded, terminated
 * and free of control characters (DEL included) and equal the header's trimmed value; the fetch state
 * follows the status line; a resumed length never wraps below the offset. */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net/http_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The value curl's header line carries for name (lower case, with the colon), trimmed as
 * ep_http_reply_header promises, or false when the line is another header. */
static bool expected_value(const char *line, size_t n, const char *name, char *out, size_t cap) {
  size_t name_len = strlen(name);
  if (n <= name_len || strncasecmp(line, name, name_len) != 0) return false;
  size_t start = name_len, end = n;
  while (start < end && (line[start] == ' ' || line[start] == '\t')) start++;
  while (end > start && (line[end - 1] == '\r' || line[end - 1] == '\n' || line[end - 1] == ' ')) end--;
  size_t len = end - start < cap - 1 ? end - start : cap - 1;
  for (size_t k = 0; k < len; k++)
    out[k] = (unsigned char)line[start + k] < 0x20 || line[start + k] == 0x7f ? '?' : line[start + k];
  out[len] = '\0';
  return true;
}

static void check_kept(const char *value, size_t cap) {
  size_t len = strnlen(value, cap);
  if (len == cap) abort(); /* not terminated */
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const uint64_t offsets[] = {0, 1, 4096, UINT64_MAX / 2, UINT64_MAX - 1};
  if (size == 0 || size > 16384) return 0;
  uint64_t offset = offsets[data[0] % (sizeof offsets / sizeof offsets[0])];
  const char *text = (const char *)data + 1;
  size_t left = size - 1;

  ep_http_reply reply = {0};
  ep_fetch_info info = {0};
  bool range_ignored = false;
  while (left) {
    const char *nl = memchr(text, '\n', left);
    size_t n = nl ? (size_t)(nl - text) + 1 : left;
    /* curl hands over a copy; so do we, to catch reads past n. */
    char *line = malloc(n);
    if (!line) abort();
    memcpy(line, text, n);
    text += n, left -= n;

    char want[EP_HTTP_LOCATION_MAX];
    bool is_location = expected_value(line, n, "location:", want, sizeof reply.location);
    ep_http_reply_header(&reply, line, n);
    if (is_location && strcmp(reply.location, want) != 0) abort();
    if (expected_value(line, n, "content-type:", want, sizeof reply.content_type) &&
        strcmp(reply.content_type, want) != 0)
      abort();
    check_kept(reply.location, sizeof reply.location);
    check_kept(reply.content_type, sizeof reply.content_type);

    uint64_t total_before = info.total;
    int status_before = info.http_status;
    ep_http_fetch_header(&info, offset, &range_ignored, line, n);
    if (info.http_status != status_before) { /* a status line */
      if (info.total != 0 || range_ignored != (offset > 0 && info.http_status == 200)) abort();
    } else if (info.total != total_before && info.http_status == 206 && info.total < offset &&
               strncasecmp(line, "content-length:", 15) == 0) {
      abort(); /* the whole length wrapped below where the download resumed */
    }
    free(line);
  }
  if (info.received != 0) abort();
  return 0;
}
