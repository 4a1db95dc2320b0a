/* edgeprovd: its command line, parsed into options. */
#ifndef EP_DAEMON_ARGS_H
#define EP_DAEMON_ARGS_H

#include <stdbool.h>

typedef struct ep_daemon_options {
  const char *config_path; /* --config; NULL: $EDGEPROV_CONFIG, the system file or the embedded defaults */
  int log_level;           /* EP_LOG_*, default EP_LOG_INFO */
  bool check_only;         /* --check: load the config and plugins, then exit */
} ep_daemon_options;

/* Fills out from argv (whose strings it points into). Returns true when the daemon goes on;
 * false when it is done, with *ret_exit the exit status: EXIT_SUCCESS after printing --help
 * or --version to stdout, 2 after saying on stderr which argument is bad. */
bool ep_daemon_args_parse(ep_daemon_options *out, int *ret_exit, int argc, char **argv);

#endif
