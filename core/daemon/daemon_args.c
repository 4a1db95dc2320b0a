/* edgeprovd: its command line, see daemon_args.h. */
#include "daemon_args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <edgeprov/abi.h>

#include "base/error.h"
#include "base/files.h"
#include "base/log.h"
#include "runtime/site.h"

static const char usage_text[] =
    "Usage: edgeprovd [--config FILE] [--log-level LEVEL] [--check]\n"
    "\n"
    "The edgeprov orchestrator daemon. Without a config file it runs on embedded defaults.\n"
    "\n"
    "Options:\n"
    "  --config FILE      site config (default: $" EP_SITE_CONFIG_ENV ", else " EP_SITE_CONFIG_SYSTEM
    "\n"
    "                     if it exists, else the embedded defaults); SIGHUP reads it again\n"
    "  --log-level LEVEL  error, warn, info or debug (default: the config's logs.level, info)\n"
    "  --check            load the config and plugins, then exit (0 when startup would succeed)\n"
    "  --version          print the version\n"
    "  -h, --help         print this help\n";

bool ep_daemon_args_parse(ep_daemon_options *out, int *ret_exit, int argc, char **argv) {
  ep_daemon_options o = {.log_level = EP_LOG_INFO};
  const char *config_path = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      fputs(usage_text, stdout);
      *ret_exit = EXIT_SUCCESS;
      return false;
    } else if (strcmp(argv[i], "--version") == 0) {
      printf("edgeprovd %s (plugin ABI %d.%d)\n", EP_VERSION, EP_ABI_MAJOR, EP_ABI_MINOR);
      *ret_exit = EXIT_SUCCESS;
      return false;
    } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
      config_path = argv[++i];
    } else if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc && ep_log_level_parse(argv[i + 1]) >= 0) {
      o.log_level = ep_log_level_parse(argv[++i]);
      o.log_level_set = true;
    } else if (strcmp(argv[i], "--check") == 0) {
      o.check_only = true;
    } else {
      fprintf(stderr, "edgeprovd: bad argument '%s'\n%s", argv[i], usage_text);
      *ret_exit = 2;
      return false;
    }
  }
  /* Absolute now: a reload (SIGHUP) reads the same file whatever the current directory is by then. */
  if (config_path && ep_path_absolute(&o.config_path, config_path) < 0) {
    fprintf(stderr, "edgeprovd: --config %s: %s\n", config_path, ep_error_message());
    *ret_exit = EXIT_FAILURE;
    return false;
  }
  *out = o;
  return true;
}

void ep_daemon_options_clear(ep_daemon_options *options) {
  free(options->config_path);
  options->config_path = NULL;
}
