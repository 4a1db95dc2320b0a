/* core: answers a request for a file of a published directory (the boot artifacts) on the
 * embedded HTTPS server: GET and HEAD, single byte ranges (206, 416), ETag with
 * If-None-Match (304) and If-Range. Only for https.c. */
#ifndef EP_CORE_HTTPS_FILES_H
#define EP_CORE_HTTPS_FILES_H

#include <microhttpd.h>
#include <stdint.h>

/* Serves rel (the URL path below the published prefix, decoded by libmicrohttpd) from
 * directory. rel must be '/'-separated components of [A-Za-z0-9_][A-Za-z0-9._-]*: no "..",
 * no hidden names, no symbolic links on the way; anything else is 404, so nothing outside
 * directory can be reached. directory is opened per request: replacing it by a rename
 * takes effect for the next request while running downloads finish from the old files. */
enum MHD_Result ep_https_serve_file(struct MHD_Connection *connection, const char *method, const char *directory,
                                    const char *rel);

/* For tests and fuzzing (ep_https_serve_file's steps): opens rel (already URL-decoded) under
 * directory without leaving it: every component is checked as above and none may be a
 * symbolic link. Returns an fd (O_RDONLY, O_CLOEXEC) or -1 with errno (EINVAL for a refused
 * path, EACCES for a symbolic link, else openat's). */
int ep_https_files_open(const char *directory, const char *rel);

/* For tests and fuzzing: parses a Range header of one range, "bytes=FIRST-LAST",
 * "bytes=FIRST-" or "bytes=-SUFFIX", against a file of size bytes. Returns 1 with
 * *ret_first <= *ret_last < size set, 0 to ignore the header (unsupported or malformed: the
 * whole file is sent, as RFC 9110 allows), -1 when it cannot be satisfied (416). */
int ep_https_files_parse_range(const char *header, uint64_t size, uint64_t *ret_first, uint64_t *ret_last);

#endif
