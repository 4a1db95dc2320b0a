/* core: answers a request for a file of a published directory (the boot artifacts) on the
 * embedded HTTPS server: GET and HEAD, single byte ranges (206, 416), ETag with
 * If-None-Match (304) and If-Range. Only for https.c. */
#ifndef EP_CORE_HTTPS_FILES_H
#define EP_CORE_HTTPS_FILES_H

#include <microhttpd.h>

/* Serves rel (the URL path below the published prefix, decoded by libmicrohttpd) from
 * directory. rel must be '/'-separated components of [A-Za-z0-9_][A-Za-z0-9._-]*: no "..",
 * no hidden names, no symbolic links on the way; anything else is 404, so nothing outside
 * directory can be reached. directory is opened per request: replacing it by a rename
 * takes effect for the next request while running downloads finish from the old files. */
enum MHD_Result ep_https_serve_file(struct MHD_Connection *connection, const char *method, const char *directory,
                                    const char *rel);

#endif
