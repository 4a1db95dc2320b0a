/* edgeprov-agent: its command line, see agent_args.h. */
#include "agent_args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/files.h"
#include "base/log.h"

const char ep_agent_usage[] =
    "Usage: edgeprov-agent --orchestrator HOST:PORT[,HOST:PORT...] [--ca FILE] [--token-url URL] [--sysroot DIR]\n"
    "                      [--state-dir DIR] [--host-ip IP] [--backoff-ms MS] [--backoff-max-ms MS]\n"
    "                      [--plugins DIR] [--target-disk PATH] [--efivars DIR] [--boot-log FILE]\n"
    "                      [--no-reboot | --onboard-only | --installed [--seed FILE]]\n"
    "                      [--tpm TCTI|auto|off] [--log-level LEVEL]\n"
    "\n"
    "Discovers this node (SMBIOS UUID and serial, MACs, IPs, disks, CPUs, memory), onboards it at\n"
    "the orchestrator and stores the credentials it receives (mode 0600) in the state directory.\n"
    "While the node is unknown or waits for approval it asks again, backing off from 2 s to 32 s\n"
    "with jitter. With its credentials it obtains a bearer token at the token URL (OAuth2\n"
    "client-credentials grant), reports in on the orchestrator's node API, then receives the\n"
    "node's workflow and runs it (erase, stream the OS image, write cloud-init, ..., restart),\n"
    "reporting every action; after a crash or restart it resumes where it stopped.\n"
    "\n"
    "  --orchestrator HOST:PORT[,HOST:PORT...]\n"
    "                            the orchestrator's onboarding service; with several (replicas,\n"
    "                            or front doors; at most 8), one at a time, moving to the next\n"
    "                            when it cannot be reached, with the same backoff\n"
    "  --ca FILE                 CA that signed the orchestrator's certificate (TLS); required\n"
    "                            unless the orchestrator is on loopback\n"
    "  --sysroot DIR             read sysfs and procfs under DIR (default /)\n"
    "  --token-url URL           the identity provider's token endpoint (default\n"
    "                            https://HOST:" EP_AGENT_TOKEN_PORT_DEFAULT "/oauth2/token, HOST from the orchestrator in use)\n"
    "  --state-dir DIR           where the credentials are kept (default /var/lib/edgeprov-agent)\n"
    "  --plugins DIR             the node-side plugins (default: <bin>/../lib/edgeprov/plugins)\n"
    "  --target-disk PATH        the disk the workflow provisions (default: the first fixed disk)\n"
    "  --efivars DIR             the firmware's variables (default /sys/firmware/efi/efivars); the\n"
    "                            credentials are kept there too until the workflow is done, so\n"
    "                            a restart of the Micro-OS resumes without onboarding again\n"
    "  --no-reboot               when the workflow asks for a restart, say so and exit instead\n"
    "  --onboard-only            stop after onboarding and reporting in (no workflow)\n"
    "  --installed               on the installed OS: report the Instance RUNNING and exit\n"
    "  --seed FILE               with --installed, on an image without cloud-init: take the\n"
    "                            orchestrator, token URL, CA and credentials from the NoCloud\n"
    "                            user-data edgeprov wrote (mode 0600); given options win\n"
    "  --host-ip IP              report this IP instead of the discovered one\n"
    "  --boot-log FILE           when the orchestrator refuses to onboard this node (invalidated,\n"
    "                            credentials already issued...), send it the last 256 lines of\n"
    "                            FILE (default: the kernel's log, <sysroot>/dev/kmsg), at most\n"
    "                            once every 10 minutes: edgeprov logs shows them\n"
    "  --tpm TCTI|auto|off       the TPM 2.0 that proves this node's identity when the site or the\n"
    "                            host asks for it (tpm2-tss's TCTI form, e.g. device:/dev/tpmrm0 or\n"
    "                            swtpm:host=127.0.0.1,port=2321); auto (default): " EP_AGENT_TPM_AUTO_DEVICE "\n"
    "                            when it exists; off: never\n"
    "\n"
    "A relative path given to an option is taken from the current directory.\n";

bool ep_agent_args_parse(ep_agent_options *out, int *ret_exit, int argc, char **argv) {
  ep_agent_options o = {.sysroot = "/", .state_dir = "/var/lib/edgeprov-agent", .backoff_ms = 2000,
                        .backoff_max_ms = 32000, .log_level = EP_LOG_INFO};
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
      fputs(ep_agent_usage, stdout);
      *ret_exit = 0;
      return false;
    }
    if (!strcmp(arg, "--no-reboot") || !strcmp(arg, "--onboard-only") || !strcmp(arg, "--installed")) {
      o.no_reboot |= !strcmp(arg, "--no-reboot");
      o.onboard_only |= !strcmp(arg, "--onboard-only");
      o.installed |= !strcmp(arg, "--installed");
      continue;
    }
    if (!value) {
      fprintf(stderr, "edgeprov-agent: bad or incomplete argument '%s'\n%s", arg, ep_agent_usage);
      *ret_exit = 2;
      return false;
    }
    i++;
    if (!strcmp(arg, "--orchestrator")) o.orchestrator = value;
    else if (!strcmp(arg, "--ca")) o.ca_file = value;
    else if (!strcmp(arg, "--token-url") && strlen(value) < sizeof o.token_url)
      snprintf(o.token_url, sizeof o.token_url, "%s", value);
    else if (!strcmp(arg, "--sysroot")) o.sysroot = value;
    else if (!strcmp(arg, "--state-dir")) o.state_dir = value;
    else if (!strcmp(arg, "--host-ip")) o.host_ip = value;
    else if (!strcmp(arg, "--plugins")) o.plugin_dir = value;
    else if (!strcmp(arg, "--target-disk")) o.target_disk = value;
    else if (!strcmp(arg, "--efivars")) o.efivars_dir = value;
    else if (!strcmp(arg, "--seed")) o.seed_file = value;
    else if (!strcmp(arg, "--boot-log")) o.boot_log = value;
    else if (!strcmp(arg, "--tpm") && value[0]) o.tpm = value;
    else if (!strcmp(arg, "--backoff-ms")) o.backoff_ms = atoi(value);
    else if (!strcmp(arg, "--backoff-max-ms")) o.backoff_max_ms = atoi(value);
    else if (!strcmp(arg, "--log-level") && ep_log_level_parse(value) >= 0) o.log_level = ep_log_level_parse(value);
    else {
      fprintf(stderr, "edgeprov-agent: bad argument '%s'\n%s", arg, ep_agent_usage);
      *ret_exit = 2;
      return false;
    }
  }
  /* Relative paths are taken from the current directory now. */
  const char **paths[] = {&o.ca_file,    &o.sysroot,     &o.state_dir, &o.plugin_dir,
                          &o.target_disk, &o.efivars_dir, &o.seed_file, &o.boot_log};
  _Static_assert(sizeof paths / sizeof paths[0] <= EP_AGENT_PATH_OPTIONS, "room in ep_agent_options.owned");
  size_t owned = 0;
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    if (!*paths[i] || (*paths[i])[0] == '/') continue;
    if (ep_path_absolute(&o.owned[owned], *paths[i]) < 0) {
      fprintf(stderr, "edgeprov-agent: %s\n", ep_error_message());
      ep_agent_options_clear(&o);
      *ret_exit = 1;
      return false;
    }
    *paths[i] = o.owned[owned++];
  }
  *out = o;
  return true;
}

void ep_agent_options_clear(ep_agent_options *options) {
  for (size_t i = 0; i < EP_AGENT_PATH_OPTIONS; i++) {
    free(options->owned[i]);
    options->owned[i] = NULL;
  }
}
