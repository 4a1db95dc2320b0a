/* core/artifacts: runs a tool (sbsign, objcopy, the dynamic loader) and captures its output. */
#ifndef EP_ARTIFACTS_RUN_H
#define EP_ARTIFACTS_RUN_H

#include <stddef.h>

/* Runs argv (argv[0] an absolute path or a name looked up in PATH; never a shell) with
 * stdin from /dev/null. Its stdout goes to out (NUL-terminated, cut at out_size - 1) when
 * out is given, else is dropped; its stderr is kept for the error message. Returns 0 when
 * it exited 0, else a negative code with a message naming the tool and quoting the end of
 * its stderr. */
int ep_run(const char *const *argv, char *out, size_t out_size);

#endif
