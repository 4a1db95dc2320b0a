/* edgeprovd: its command line, parsed into options. */
#ifndef EP_DAEMON_ARGS_H
#define EP_DAEMON_ARGS_H

#include <stdbool.h>

typedef struct ep_daemon_options {
  char *config_path; /* --config made absolute (owned); NULL: $EDGEPROV_CONFIG, the system file or the embedded
                        defaults */
  int log_level;     /* EP_LOG_*, default EP_LOG_INFO */
  bool log_level_set; /* --log-level was given: it wins over the config's logs.level, at start and on reload */
  bool check_only;   /* --check: load the config and plugins, then exit */
} ep_daemon_options;

/* Fills out from argv. Returns true when the daemon goes on (free out with
 * ep_daemon_options_clear); false when it is done, with *ret_exit the exit status:
 * EXIT_SUCCESS after printing --help or --version to stdout, 2 after saying on stderr which
 * argument is bad, EXIT_FAILURE when the --config path cannot be made absolute. */
bool ep_daemon_args_parse(ep_daemon_options *out, int *ret_exit, int argc, char **argv);

void ep_daemon_options_clear(ep_daemon_options *options);

#endif
