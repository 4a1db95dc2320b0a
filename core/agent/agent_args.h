/* edgeprov-agent: its command line, parsed into options (no checks across options here). */
#ifndef EP_AGENT_ARGS_H
#define EP_AGENT_ARGS_H

#include <stdbool.h>

#define EP_AGENT_TOKEN_PORT_DEFAULT "8443" /* listen.https's default port */
#define EP_AGENT_URL_MAX 1024              /* longest --token-url, terminator included */
#define EP_AGENT_PATH_OPTIONS 8            /* options that name a file or directory */
#define EP_AGENT_TPM_AUTO_DEVICE "/dev/tpmrm0" /* the TPM --tpm auto uses when it exists */

/* The options as given; NULL or empty for those not given, unless a default is named. Paths
 * are absolute: a relative one given is taken from the current directory at parse time (the
 * node's plugins and its workflow's actions take absolute paths only). */
typedef struct ep_agent_options {
  const char *orchestrator;
  const char *ca_file;
  char token_url[EP_AGENT_URL_MAX]; /* "" when not given */
  const char *sysroot;              /* default "/" */
  const char *state_dir;            /* default /var/lib/edgeprov-agent */
  const char *host_ip;
  int backoff_ms;                   /* default 2000 */
  int backoff_max_ms;               /* default 32000 */
  const char *plugin_dir;           /* the node-side plugins (actions); NULL: next to the program */
  const char *target_disk;          /* ${node.target_disk}; NULL: the actions pick the first fixed disk */
  const char *efivars_dir;          /* ${node.efivars_dir}; NULL: /sys/firmware/efi/efivars */
  bool no_reboot;
  bool onboard_only;
  bool installed;
  const char *seed_file;            /* --seed: NoCloud user-data to take settings and credentials from */
  const char *boot_log;             /* --boot-log: what UploadBootLog sends; default <sysroot>/dev/kmsg */
  const char *tpm;                  /* --tpm: a TCTI, "auto" or "off"; NULL: auto */
  int log_level;                    /* EP_LOG_*, default EP_LOG_INFO */
  char *owned[EP_AGENT_PATH_OPTIONS]; /* the absolute forms made of relative paths; ep_agent_options_clear */
} ep_agent_options;

/* The --help text. */
extern const char ep_agent_usage[];

/* Fills out from argv (whose strings it points into, or into out->owned). Returns true when
 * the agent goes on (then free out with ep_agent_options_clear); false when it is done, with
 * *ret_exit the exit status: 0 after printing --help to stdout, 2 after saying on stderr which
 * argument is bad, 1 when a relative path cannot be made absolute. */
bool ep_agent_args_parse(ep_agent_options *out, int *ret_exit, int argc, char **argv);

void ep_agent_options_clear(ep_agent_options *options);

#endif
