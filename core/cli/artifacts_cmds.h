/* edgeprov CLI: `artifacts build|keys|nginx-conf` and `usb-image`. */
#ifndef EP_CLI_ARTIFACTS_CMDS_H
#define EP_CLI_ARTIFACTS_CMDS_H

#include "runtime/site.h"

/* argv holds the words after "artifacts" (verb first) or after "usb-image". site is opened
 * and its plugins started. Return the process exit status. */
int ep_cli_artifacts(const ep_site *site, int argc, char **argv);
int ep_cli_usb_image(const ep_site *site, int argc, char **argv);

#endif
