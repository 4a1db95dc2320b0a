/* edgeprov-agent: the node agent. In the Micro-OS it discovers the node, onboards it at the
 * orchestrator (onboardingmgr.v1 OnboardNodeStream), keeps the credentials it receives,
 * obtains a bearer token with them (OAuth2 client-credentials grant) and reports in on the
 * node API with that token. main: the options (agent_args.c), check_options, then run. */
#define _GNU_SOURCE /* explicit_bzero, getrandom */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <sys/reboot.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "agent_args.h"
#include "boot_log.h"
#include "runtime/config.h"
#include "base/diag.h"
#include "discovery.h"
#include "executor.h"
#include "firmware_store.h"
#include "runtime/site.h"
#include "edgeprov/v1/node.pb-c.h"
#include "base/error.h"
#include "net/http_client.h"
#include "base/log.h"
#include "provisioning/cloudinit.h"
#include "onboardingmgr/v1/onboarding.pb-c.h"
#include "net/rpc.h"
#include "base/files.h"
#include "base/secret.h"
#include "net/node_api.h"
#include "tpm_identity.h"

#define CREDENTIALS_FILE "credentials"
#define CREDENTIAL_MAX 512         /* longest client_id, client_secret or project_id kept */
#define TOKEN_ATTEMPTS_MAX 8       /* token requests before giving up on a reachable server */
#define WORKFLOW_ATTEMPTS_MAX 20   /* reconnections of the workflow stream before giving up */
#define ORCHESTRATORS_MAX 8        /* addresses --orchestrator may list */
#define ORCHESTRATOR_MAX 255       /* longest HOST:PORT */

/* The agent as it runs: its options, settled by check_options (defaults, the seed's settings),
 * and what it read. */
typedef struct agent {
  ep_agent_options opt;
  char *ca_pem;
  char seed_orchestrator[EP_CLOUDINIT_ORCHESTRATOR_MAX + 1];
  char seed_ca_file[1024]; /* the seed's CA, written to the state directory for the token request */
  ep_discovery node;
  /* --orchestrator's addresses (replicas, or front doors): the agent uses one at a time and
   * moves to the next when it cannot be reached. */
  char orchestrators[ORCHESTRATORS_MAX][ORCHESTRATOR_MAX + 1];
  size_t orchestrator_count, current;
  bool token_url_follows; /* no --token-url: it follows the current orchestrator */
  int refused;            /* the last onboarding attempt was refused (its gRPC status), 0: it was not */
  time_t boot_log_sent;   /* when the boot log last went to the orchestrator */
  ep_agent_tpm *tpm;      /* the TPM proving the node's identity; NULL: none (see open_tpm) */
  bool tpm_settled;       /* open_tpm found there is no TPM to use (off, or none at auto's device) */
} agent;

static const char *orchestrator(const agent *a) { return a->orchestrators[a->current]; }

/* The token URL for the current orchestrator: its host on listen.https's default port. */
static int default_token_url(agent *a) {
  const char *o = orchestrator(a), *colon = strrchr(o, ':');
  size_t host_len = colon ? (size_t)(colon - o) : strlen(o);
  int n = snprintf(a->opt.token_url, sizeof a->opt.token_url, "https://%.*s:" EP_AGENT_TOKEN_PORT_DEFAULT "/oauth2/token",
                   (int)host_len, o);
  return n > 0 && (size_t)n < sizeof a->opt.token_url ? 0 : EP_ERANGE;
}

/* The current orchestrator could not be reached (what): the next one's turn, if there are
 * several. Callers back off as before, so a node never hammers the next one either. */
static void next_orchestrator(agent *a, const char *what) {
  if (a->orchestrator_count < 2) return;
  const char *from = orchestrator(a);
  a->current = (a->current + 1) % a->orchestrator_count;
  ep_log(EP_LOG_WARN, "agent", "%s at %s failed; trying %s next", what, from, orchestrator(a));
  if (a->token_url_follows) default_token_url(a);
}

/* True when a call's status means the orchestrator (this replica) cannot serve it now. */
static bool unreachable(int status) {
  return status == EP_STATUS_UNAVAILABLE || status == EP_STATUS_DEADLINE_EXCEEDED || status == EP_STATUS_UNKNOWN;
}

/* Sleeps for the attempt's backoff: base doubling up to max, with the upper half jittered. */
static void back_off(const agent *a, int attempt) {
  long delay = a->opt.backoff_ms;
  for (int i = 0; i < attempt && delay < a->opt.backoff_max_ms; i++) delay *= 2;
  if (delay > a->opt.backoff_max_ms) delay = a->opt.backoff_max_ms;
  unsigned int r = 0;
  if (getrandom(&r, sizeof r, 0) != sizeof r) r = (unsigned int)time(NULL);
  long sleep_ms = delay / 2 + (long)(r % (unsigned int)(delay / 2 + 1));
  struct timespec ts = {.tv_sec = sleep_ms / 1000, .tv_nsec = (sleep_ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Writes text to path atomically (temporary file, fsync, rename) with mode. */
static int write_file_atomic(const char *path, const char *text, mode_t mode) {
  char tmp[1100];
  if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) return ep_error_set(EP_ERANGE, "path too long: %s", path);
  unlink(tmp);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return ep_error_set(-errno, "cannot write %s: %s", tmp, strerror(errno));
  size_t len = strlen(text);
  int r = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0 ? 0 : -1;
  close(fd);
  if (r < 0 || rename(tmp, path) < 0) {
    unlink(tmp);
    return ep_error_set(EP_EIO, "cannot write %s", path);
  }
  return 0;
}

static const char *efivars_dir(const agent *a) {
  return a->opt.efivars_dir ? a->opt.efivars_dir : "/sys/firmware/efi/efivars";
}

/* Stores the credentials in the state directory (created 0700), mode 0600; with
 * in_firmware, also in a UEFI variable (firmware_store.h): the Micro-OS runs from RAM and the
 * orchestrator issues credentials once, so a node that restarts in the middle of
 * provisioning takes them back from there. A node without writable variables goes on
 * without (an operator re-arms it after such a restart). */
static int store_credentials(const agent *a, const char *client_id, const char *client_secret, const char *project_id,
                             bool in_firmware) {
  if (mkdir(a->opt.state_dir, 0700) < 0 && errno != EEXIST)
    return ep_error_set(-errno, "cannot create %s: %s", a->opt.state_dir, strerror(errno));
  char path[1024], text[3 * CREDENTIAL_MAX + 64];
  snprintf(path, sizeof path, "%s/%s", a->opt.state_dir, CREDENTIALS_FILE);
  int len = snprintf(text, sizeof text, "client_id=%s\nclient_secret=%s\nproject_id=%s\n", client_id, client_secret,
                     project_id);
  int r = len > 0 && (size_t)len < sizeof text ? write_file_atomic(path, text, 0600) : EP_ERANGE;
  if (r == 0 && in_firmware && ep_firmware_store_put(efivars_dir(a), text, (size_t)len) < 0)
    ep_log(EP_LOG_WARN, "agent", "%s: a restart before the workflow ends will need an operator", ep_error_message());
  explicit_bzero(text, sizeof text);
  return r < 0 ? ep_error_set(EP_EIO, "cannot store the credentials in %s", path) : 0;
}

/* The credentials a restarted Micro-OS left in the firmware, back into the state directory.
 * Returns 0 when there were some. */
static int restore_credentials(const agent *a) {
  char *text = NULL, path[1024];
  int r = ep_firmware_store_get(efivars_dir(a), &text);
  if (r < 0) return r;
  snprintf(path, sizeof path, "%s/%s", a->opt.state_dir, CREDENTIALS_FILE);
  if (!strstr(text, "client_id=") || !strstr(text, "client_secret="))
    r = ep_error_set(EP_EINVAL, "efivars: %s holds no credentials", EP_FIRMWARE_CREDENTIALS);
  else if (mkdir(a->opt.state_dir, 0700) < 0 && errno != EEXIST)
    r = ep_error_set(-errno, "cannot create %s: %s", a->opt.state_dir, strerror(errno));
  else
    r = write_file_atomic(path, text, 0600);
  explicit_bzero(text, strlen(text));
  free(text);
  return r;
}

/* The node's TPM (--tpm: a TCTI; auto: EP_AGENT_TPM_AUTO_DEVICE when it exists; off). Without
 * one the agent onboards as clients of the reference contract do; a site or host that asks for
 * the proof then refuses it, saying so. Opened once; a TPM that is there but failed to open
 * (busy, not ready yet) is tried again at the next attempt, which comes with the backoff. */
static ep_agent_tpm *open_tpm(agent *a) {
  if (a->tpm || a->tpm_settled) return a->tpm;
  const char *tcti = a->opt.tpm ? a->opt.tpm : "auto";
  bool automatic = strcmp(tcti, "auto") == 0;
  if (strcmp(tcti, "off") == 0 || (automatic && access(EP_AGENT_TPM_AUTO_DEVICE, F_OK) != 0)) {
    a->tpm_settled = true; /* no TPM now means none later */
    if (automatic) ep_log(EP_LOG_INFO, "agent", "no TPM at %s: onboarding without a TPM identity", EP_AGENT_TPM_AUTO_DEVICE);
    return NULL;
  }
  if (ep_agent_tpm_open(&a->tpm, automatic ? "device:" EP_AGENT_TPM_AUTO_DEVICE : tcti) < 0) {
    ep_log(EP_LOG_WARN, "agent", "%s: this attempt goes without a TPM identity; the next tries again", ep_error_message());
    return NULL;
  }
  ep_log(EP_LOG_INFO, "agent", "TPM identity ready (endorsement key and attestation key made)");
  return a->tpm;
}

/* The node's TPM for its workflow's actions (host service run.tpm), as --tpm names it: a TCTI as
 * given; auto: device:EP_AGENT_TPM_AUTO_DEVICE when that exists; "" for off or none. */
static const char *node_tpm(const agent *a) {
  const char *tcti = a->opt.tpm ? a->opt.tpm : "auto";
  if (strcmp(tcti, "off") == 0) return "";
  if (strcmp(tcti, "auto") == 0) return access(EP_AGENT_TPM_AUTO_DEVICE, F_OK) == 0 ? "device:" EP_AGENT_TPM_AUTO_DEVICE : "";
  return tcti;
}

/* The onboarding request: the node's identifiers, and its TPM's keys (and the answer to a
 * challenge, answer_len > 0) when it has one. Returns the length packed into buf. */
static size_t pack_request(agent *a, uint8_t *buf, size_t size, const uint8_t *answer, size_t answer_len) {
  Onboardingmgr__V1__OnboardNodeStreamRequest req = ONBOARDINGMGR__V1__ONBOARD_NODE_STREAM_REQUEST__INIT;
  req.uuid = a->node.uuid;
  req.serialnum = a->node.serial;
  req.mac_id = a->node.primary_mac;
  req.host_ip = (char *)(a->opt.host_ip ? a->opt.host_ip : a->node.primary_ip);
  Onboardingmgr__V1__TpmIdentity tpm = ONBOARDINGMGR__V1__TPM_IDENTITY__INIT;
  if (open_tpm(a)) {
    tpm.ek_public.data = (uint8_t *)ep_agent_tpm_ek_public(a->tpm, &tpm.ek_public.len);
    tpm.ak_public.data = (uint8_t *)ep_agent_tpm_ak_public(a->tpm, &tpm.ak_public.len);
    tpm.activated_secret.data = (uint8_t *)answer;
    tpm.activated_secret.len = answer_len;
    req.tpm = &tpm;
  }
  size_t len = onboardingmgr__v1__onboard_node_stream_request__get_packed_size(&req);
  return len <= size ? onboardingmgr__v1__onboard_node_stream_request__pack(&req, buf) : 0;
}

/* Answers the orchestrator's TPM challenge: the request with the activated secret, packed
 * into buf (its length; 0 when the TPM could not answer). */
static size_t answer_challenge(agent *a, const Onboardingmgr__V1__TpmChallenge *challenge, uint8_t *buf, size_t size) {
  uint8_t secret[64];
  size_t secret_len = 0;
  if (!a->tpm || ep_agent_tpm_activate(a->tpm, challenge->credential_blob.data, challenge->credential_blob.len,
                                       challenge->encrypted_secret.data, challenge->encrypted_secret.len, secret,
                                       &secret_len) < 0) {
    ep_log(EP_LOG_WARN, "agent", "the TPM could not answer the orchestrator's challenge: %s",
           a->tpm ? ep_error_message() : "no TPM is open");
    return 0;
  }
  size_t len = pack_request(a, buf, size, secret, secret_len);
  explicit_bzero(secret, sizeof secret);
  ep_log(EP_LOG_INFO, "agent", "answering the orchestrator's TPM challenge");
  return len;
}

/* One connection: sends the identity until ONBOARDED (returns 1), the stream ends (0), or
 * storing fails (<0). *attempt counts answers that said "not yet". A TPM challenge is
 * answered at once on the same stream. */
static int onboard_once(agent *a, int *attempt) {
  ep_rpc_channel *channel = NULL;
  ep_rpc_tls tls = {.ca_pem = a->ca_pem};
  if (ep_rpc_channel_new(&channel, orchestrator(a), a->ca_pem ? &tls : NULL, 0) < 0) {
    next_orchestrator(a, "connecting");
    return 0;
  }
  ep_rpc_stream *stream = NULL;
  int result = 0;
  if (ep_rpc_stream_open(&stream, channel, EP_ONBOARDING_SERVICE_STREAM, NULL, 0, NULL, 0, 0) < 0) {
    ep_rpc_channel_free(channel);
    next_orchestrator(a, "onboarding");
    return 0;
  }
  uint8_t buf[2048], answer[2048];
  size_t len = pack_request(a, buf, sizeof buf, NULL, 0), answer_len = 0;
  for (;;) {
    if (ep_rpc_stream_send(stream, answer_len ? answer : buf, answer_len ? answer_len : len) < 0) break;
    explicit_bzero(answer, answer_len);
    answer_len = 0;
    uint8_t *data = NULL;
    size_t data_len = 0;
    if (ep_rpc_stream_read(stream, &data, &data_len) != 1) break;
    Onboardingmgr__V1__OnboardNodeStreamResponse *resp =
        onboardingmgr__v1__onboard_node_stream_response__unpack(NULL, data_len, data);
    explicit_bzero(data, data_len);
    free(data);
    if (!resp) {
      ep_log(EP_LOG_WARN, "agent", "the orchestrator sent an undecodable response");
      break;
    }
    int code = resp->status ? resp->status->code : 0;
    if (resp->node_state == ONBOARDINGMGR__V1__ONBOARD_NODE_STREAM_RESPONSE__NODE_STATE__NODE_STATE_ONBOARDED) {
      result = store_credentials(a, resp->client_id, resp->client_secret, resp->project_id, true) < 0 ? -1 : 1;
      if (result == 1)
        ep_log(EP_LOG_INFO, "agent", "onboarded as %s (project %s); credentials in %s/%s", resp->client_id,
               resp->project_id, a->opt.state_dir, CREDENTIALS_FILE);
      explicit_bzero(resp->client_secret, strlen(resp->client_secret));
      onboardingmgr__v1__onboard_node_stream_response__free_unpacked(resp, NULL);
      break;
    }
    if (resp->tpm_challenge) {
      answer_len = answer_challenge(a, resp->tpm_challenge, answer, sizeof answer);
      onboardingmgr__v1__onboard_node_stream_response__free_unpacked(resp, NULL);
      if (answer_len) continue; /* no backoff: the orchestrator waits for the answer */
      break;
    }
    if (code == EP_STATUS_NOT_FOUND)
      ep_log(EP_LOG_INFO, "agent", "not registered yet (%s); asking again", resp->status->message);
    else
      ep_log(EP_LOG_INFO, "agent", "registered, waiting for approval; asking again");
    onboardingmgr__v1__onboard_node_stream_response__free_unpacked(resp, NULL);
    back_off(a, (*attempt)++);
  }
  explicit_bzero(answer, sizeof answer);
  ep_rpc_result status;
  ep_rpc_stream_close(stream, &status);
  if (result == 0 && status.status != EP_STATUS_OK)
    ep_log(EP_LOG_WARN, "agent", "onboarding at %s: %s: %s", orchestrator(a), ep_status_name(status.status),
           status.message);
  a->refused = result == 0 && (status.status == EP_STATUS_PERMISSION_DENIED || status.status == EP_STATUS_FAILED_PRECONDITION)
                   ? status.status
                   : 0;
  ep_rpc_channel_free(channel);
  if (result == 0 && unreachable(status.status)) next_orchestrator(a, "onboarding");
  return result;
}

/* The node's stored credentials. */
typedef struct credentials {
  char client_id[CREDENTIAL_MAX];
  char client_secret[CREDENTIAL_MAX];
} credentials;

static int load_credentials(const agent *a, credentials *out) {
  char path[1024], *text = NULL;
  snprintf(path, sizeof path, "%s/%s", a->opt.state_dir, CREDENTIALS_FILE);
  int r = ep_read_secret_file(&text, path, 4 * CREDENTIAL_MAX);
  if (r < 0) return r;
  memset(out, 0, sizeof *out);
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    if (!strncmp(line, "client_id=", 10)) snprintf(out->client_id, sizeof out->client_id, "%s", line + 10);
    else if (!strncmp(line, "client_secret=", 14)) snprintf(out->client_secret, sizeof out->client_secret, "%s", line + 14);
  }
  explicit_bzero(text, strlen(text));
  free(text);
  if (!out->client_id[0] || !out->client_secret[0])
    return ep_error_set(EP_EINVAL, "%s lacks client_id or client_secret", path);
  return 0;
}

/* One client-credentials grant: 0 with the token in token, EP_EPERM when the credentials
 * are refused (they were revoked), another negative code when the server could not say. */
static int request_token(const agent *a, const credentials *c, char *token, size_t cap) {
  static const char form[] = "grant_type=client_credentials";
  const char *headers[] = {"Content-Type: application/x-www-form-urlencoded", "Accept: application/json", NULL};
  ep_http_call call = {.method = "POST", .url = a->opt.token_url, .headers = headers, .body = (const uint8_t *)form,
                       .body_len = sizeof form - 1, .ca_file = a->opt.ca_file, .basic_user = c->client_id,
                       .basic_password = c->client_secret, .timeout_ms = 15000, .response_max = 64 * 1024};
  ep_http_reply reply;
  int r = ep_http_perform(&call, &reply);
  if (r < 0) return r;
  json_error_t err;
  json_t *doc = reply.status == 200 ? json_loadb(reply.body, reply.len, 0, &err) : NULL;
  const char *value = json_string_value(json_object_get(doc, "access_token"));
  if (reply.status == 400 || reply.status == 401)
    r = ep_error_set(EP_EPERM, "%s refused the credentials of %s (HTTP %d)", a->opt.token_url, c->client_id,
                     reply.status);
  else if (reply.status != 200)
    r = ep_error_set(EP_EIO, "%s answered HTTP %d", a->opt.token_url, reply.status);
  else if (!value || !*value || strlen(value) >= cap || strlen(value) > EP_NODE_TOKEN_MAX)
    r = ep_error_set(EP_EIO, "%s: the answer holds no usable access_token", a->opt.token_url);
  else
    memcpy(token, value, strlen(value) + 1);
  json_decref(doc);
  ep_http_reply_clear(&reply);
  return r;
}

/* Reports status on the node API with the bearer token. */
static int report_status(const agent *a, const char *token, const char *status, bool installed) {
  ep_rpc_channel *channel = NULL;
  ep_rpc_tls tls = {.ca_pem = a->ca_pem};
  int r = ep_rpc_channel_new(&channel, orchestrator(a), a->ca_pem ? &tls : NULL, 0);
  if (r < 0) return r;
  char bearer[EP_NODE_TOKEN_MAX + 16];
  snprintf(bearer, sizeof bearer, "Bearer %s", token);
  ep_rpc_metadata auth = {"authorization", bearer};
  Edgeprov__V1__ReportStatusRequest req = EDGEPROV__V1__REPORT_STATUS_REQUEST__INIT;
  char text[EP_NODE_STATUS_MAX + 1];
  ep_text_escape(text, sizeof text, status, 0); /* what node_service.c accepts (ep_validate_text) */
  req.status = text;
  req.phase = installed ? EDGEPROV__V1__NODE_PHASE__NODE_PHASE_INSTALLED_OS : EDGEPROV__V1__NODE_PHASE__NODE_PHASE_UNSPECIFIED;
  /* The installed OS says what protects its disk (host show prints it). */
  Edgeprov__V1__DiskProtection protection = EDGEPROV__V1__DISK_PROTECTION__INIT;
  ep_disk_protection found;
  char detail[sizeof found.detail];
  if (installed && ep_discover_disk_protection(&found, a->opt.sysroot) == 0) {
    protection.encrypted = found.encrypted ? EDGEPROV__V1__PROTECTION__PROTECTION_YES : EDGEPROV__V1__PROTECTION__PROTECTION_NO;
    protection.verified_root =
        found.verified_root ? EDGEPROV__V1__PROTECTION__PROTECTION_YES : EDGEPROV__V1__PROTECTION__PROTECTION_NO;
    ep_text_escape(detail, sizeof detail, found.detail, 0);
    protection.detail = detail;
    req.disk_protection = &protection;
    ep_log(EP_LOG_INFO, "agent", "disk: %s, root %s (%s)", found.encrypted ? "encrypted" : "not encrypted",
           found.verified_root ? "verified" : "not verified", detail);
  } else if (installed) {
    ep_log(EP_LOG_WARN, "agent", "what protects the disk is not reported: %s", ep_error_message());
  }
  uint8_t buf[1024];
  size_t len = edgeprov__v1__report_status_request__pack(&req, buf);
  ep_rpc_result result;
  r = ep_rpc_unary(channel, EP_NODE_SERVICE_REPORT_STATUS, &auth, 1, buf, len, 15000, &result);
  explicit_bzero(bearer, sizeof bearer);
  ep_rpc_channel_free(channel);
  if (r < 0) return r;
  if (result.status != EP_STATUS_OK)
    r = ep_error_set(ep_error_from_status(result.status), "ReportStatus: %s: %s", ep_status_name(result.status),
                     result.message);
  ep_rpc_result_clear(&result);
  return r;
}

/* With the stored credentials: obtains a token (retrying while the server cannot answer)
 * into token (EP_NODE_TOKEN_MAX + 1 bytes). */
static int obtain_token(agent *a, const credentials *c, char *token) {
  int r = 0;
  for (int attempt = 0; attempt < TOKEN_ATTEMPTS_MAX; attempt++) {
    r = request_token(a, c, token, EP_NODE_TOKEN_MAX + 1);
    if (r == 0 || r == EP_EPERM) break;
    ep_log(EP_LOG_WARN, "agent", "no token yet: %s; asking again", ep_error_message());
    if (a->token_url_follows) next_orchestrator(a, "the token request");
    back_off(a, attempt);
  }
  if (r == 0) ep_log(EP_LOG_INFO, "agent", "obtained a bearer token at %s", a->opt.token_url);
  return r;
}

/* Reports status on the node API, retrying while the orchestrator cannot be reached. */
static int report_with_retries(agent *a, const char *token, const char *status, bool installed) {
  int r = 0;
  for (int attempt = 0; attempt < TOKEN_ATTEMPTS_MAX; attempt++) {
    r = report_status(a, token, status, installed);
    if (r == 0 || r == EP_EPERM || r == EP_EINVAL) break;
    ep_log(EP_LOG_WARN, "agent", "report: %s; trying again", ep_error_message());
    next_orchestrator(a, "reporting");
    back_off(a, attempt);
  }
  if (r == 0) ep_log(EP_LOG_INFO, "agent", "reported in on the node API");
  return r;
}

/* Restarts the node as an action asked, unless --no-reboot. */
static int restart_node(const agent *a, const char *mode) {
  if (a->opt.no_reboot) {
    ep_log(EP_LOG_INFO, "agent", "workflow done; the workflow asks for a %s: not restarting (--no-reboot)", mode);
    return 0;
  }
  ep_log(EP_LOG_INFO, "agent", "workflow done; restarting (%s)", mode);
  sync();
  /* kexec boots the kernel loaded beforehand (kexec_file_load); with none loaded the kernel
   * refuses (EINVAL) and the node reboots through the firmware instead. */
  if (strcmp(mode, "kexec") == 0 && reboot(RB_KEXEC) < 0)
    ep_log(EP_LOG_WARN, "agent", "kexec: %s; rebooting through the firmware", strerror(errno));
  if (reboot(RB_AUTOBOOT) < 0) return ep_error_set(-errno, "reboot: %s", strerror(errno));
  return 0;
}

/* Runs the node's workflow until it succeeds or fails for good, reconnecting (with a fresh
 * token) when the stream breaks. */
static int run_workflow(agent *a, const credentials *c, char *token) {
  ep_diags diags = {0};
  ep_site *site = NULL;
  char data_dir[1100];
  snprintf(data_dir, sizeof data_dir, "%s/plugin-data", a->opt.state_dir);
  char *default_dir = a->opt.plugin_dir ? NULL : ep_config_default_plugin_dir();
  const char *plugin_dir = a->opt.plugin_dir ? a->opt.plugin_dir : default_dir;
  int r = plugin_dir ? ep_site_open_for(&site, plugin_dir, data_dir, EP_CAP_ACTIONS, &diags)
                     : ep_error_set(EP_ENOENT, "no plugin directory (--plugins DIR)");
  ep_diags_print(&diags, stderr);
  ep_diags_clear(&diags);
  if (r < 0) r = ep_error_prefix(r, "plugins in %s", plugin_dir ? plugin_dir : "-");
  free(default_dir);
  if (r < 0) return r;
  ep_executor_node node = {.client_id = c->client_id, .client_secret = c->client_secret,
                           .target_disk = a->opt.target_disk ? a->opt.target_disk : "",
                           .ca_file = a->opt.ca_file ? a->opt.ca_file : "",
                           .efivars_dir = efivars_dir(a)};
  char scratch[1100];
  snprintf(scratch, sizeof scratch, "%s/scratch", a->opt.state_dir);
  if (mkdir(scratch, 0700) < 0 && errno != EEXIST) ep_log(EP_LOG_WARN, "agent", "cannot create %s: %s", scratch, strerror(errno));
  node.scratch_dir = scratch;
  node.tpm = node_tpm(a);
  ep_log(EP_LOG_INFO, "agent", "actions see the node's TPM as %s", node.tpm[0] ? node.tpm : "none (run.tpm unset)");
  char reboot_mode[16] = "";
  for (int attempt = 0;; attempt++) {
    ep_rpc_channel *channel = NULL;
    ep_rpc_tls tls = {.ca_pem = a->ca_pem};
    r = ep_rpc_channel_new(&channel, orchestrator(a), a->ca_pem ? &tls : NULL, 0);
    if (r == 0) r = ep_executor_run(channel, token, site->plugins, &node, reboot_mode);
    ep_rpc_channel_free(channel);
    if (r == 0 || attempt >= WORKFLOW_ATTEMPTS_MAX) break;
    if (r == EP_EFAILED) { /* reported; the orchestrator sends a new workflow once an operator re-arms it */
      ep_log(EP_LOG_ERROR, "agent", "%s; waiting for an operator to retry (edgeprov instance retry)", ep_error_message());
      attempt = 0;
    } else {
      ep_log(EP_LOG_WARN, "agent", "%s; reconnecting", ep_error_message());
      next_orchestrator(a, "the workflow stream");
    }
    back_off(a, attempt < 4 ? attempt : 4);
    if (obtain_token(a, c, token) < 0) break; /* tokens expire; a refused one may be stale */
  }
  ep_site_free(site);
  /* Done: the installed OS has its own credentials (its cloud-init seed). */
  if (r == 0 && ep_firmware_store_delete(efivars_dir(a)) < 0) ep_log(EP_LOG_WARN, "agent", "%s", ep_error_message());
  if (r == 0 && reboot_mode[0]) r = restart_node(a, reboot_mode);
  return r;
}

/* After onboarding: obtains a token, reports in, and (unless --onboard-only) runs the
 * workflow; --installed reports the installed OS running instead. */
static int after_onboarding(agent *a) {
  credentials c;
  int r = load_credentials(a, &c);
  if (r < 0) return r;
  char *token = calloc(1, EP_NODE_TOKEN_MAX + 1);
  if (!token) return ep_error_set(EP_ENOMEM, "out of memory");
  r = obtain_token(a, &c, token);
  if (r == EP_EPERM && !a->opt.installed) { /* revoked (the host was invalidated): onboard afresh next time */
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", a->opt.state_dir, CREDENTIALS_FILE);
    unlink(path);
    ep_firmware_store_delete(efivars_dir(a));
    ep_error_prefix(r, "the stored credentials were removed, the next start onboards again");
  }
  if (r == 0)
    r = report_with_retries(a, token,
                            a->opt.installed ? "Running: the installed OS is up" : "Micro-OS: onboarded, token obtained",
                            a->opt.installed);
  if (r == 0 && !a->opt.installed && !a->opt.onboard_only) r = run_workflow(a, &c, token);
  explicit_bzero(&c, sizeof c);
  explicit_bzero(token, EP_NODE_TOKEN_MAX + 1);
  free(token);
  return r;
}

/* True when target (HOST:PORT, or a URL's HOST:PORT/...) is on this machine: 127.x.y.z as an
 * address (not "127.example.org"), localhost or [::1]. */
static bool loopback(const char *target) {
  if (!strncmp(target, "localhost:", 10) || !strncmp(target, "[::1]:", 6)) return true;
  if (strncmp(target, "127.", 4) != 0) return false;
  const char *p = target + 4;
  while ((*p >= '0' && *p <= '9') || *p == '.') p++;
  return *p == ':';
}

/* --seed: the settings and credentials of the NoCloud user-data edgeprov wrote for this node
 * (an immutable image whose agent is baked in and no cloud-init runs). --orchestrator,
 * --token-url and --ca given on the command line win; the credentials are stored in the
 * state directory as onboarding would store them. */
static int apply_seed(agent *a) {
  char *text = NULL;
  int r = ep_read_secret_file(&text, a->opt.seed_file, EP_CLOUDINIT_MAX);
  if (r < 0) return r;
  ep_cloudinit_seed seed;
  r = ep_cloudinit_seed_read(&seed, text, strlen(text));
  explicit_bzero(text, strlen(text));
  free(text);
  if (r < 0) return ep_error_prefix(r, "%s", a->opt.seed_file);
  if (!a->opt.orchestrator) {
    snprintf(a->seed_orchestrator, sizeof a->seed_orchestrator, "%s", seed.orchestrator);
    a->opt.orchestrator = a->seed_orchestrator;
  }
  if (!a->opt.token_url[0] && seed.token_url[0])
    snprintf(a->opt.token_url, sizeof a->opt.token_url, "%s", seed.token_url);
  r = store_credentials(a, seed.client_id, seed.client_secret, seed.project_id, false);
  if (r == 0 && !a->ca_pem) {
    snprintf(a->seed_ca_file, sizeof a->seed_ca_file, "%s/ca.pem", a->opt.state_dir);
    r = write_file_atomic(a->seed_ca_file, seed.ca_pem, 0644);
    a->opt.ca_file = a->seed_ca_file;
    a->ca_pem = seed.ca_pem;
    seed.ca_pem = NULL;
  }
  if (r == 0)
    ep_log(EP_LOG_INFO, "agent", "seed %s: node %s (%s), orchestrator %s", a->opt.seed_file, seed.client_id,
           seed.hostname, a->opt.orchestrator);
  ep_cloudinit_seed_clear(&seed);
  return r;
}

/* --orchestrator's comma-separated HOST:PORT list into a->orchestrators: at most
 * ORCHESTRATORS_MAX, each non-empty, with a port, printable, no spaces. */
static int split_orchestrators(agent *a) {
  const char *p = a->opt.orchestrator;
  a->orchestrator_count = 0;
  for (;;) {
    size_t len = strcspn(p, ",");
    const char *colon = memrchr(p, ':', len);
    if (a->orchestrator_count == ORCHESTRATORS_MAX)
      return ep_error_set(EP_ERANGE, "more than %d addresses", ORCHESTRATORS_MAX);
    if (len == 0 || len > ORCHESTRATOR_MAX || !colon || colon == p || colon + 1 == p + len)
      return ep_error_set(EP_EINVAL, "address %zu ('%.*s') is not HOST:PORT", a->orchestrator_count + 1,
                          (int)(len < 64 ? len : 64), p);
    for (size_t i = 0; i < len; i++)
      if (p[i] <= ' ' || p[i] >= 0x7f) return ep_error_set(EP_EINVAL, "address %zu holds a space or control character", a->orchestrator_count + 1);
    for (const char *d = colon + 1; d < p + len; d++)
      if (*d < '0' || *d > '9') return ep_error_set(EP_EINVAL, "address %zu: the port is not a number", a->orchestrator_count + 1);
    memcpy(a->orchestrators[a->orchestrator_count], p, len);
    a->orchestrators[a->orchestrator_count++][len] = '\0';
    if (!p[len]) return 0;
    p += len + 1;
  }
}

/* Checks the options against each other and settles them: reads the CA, applies --seed,
 * derives the default token URL. Returns true when the agent goes on; false with *ret_exit
 * the exit status (1: a file could not be used, 2: the options are wrong), said on stderr. */
static bool check_options(agent *a, int *ret_exit) {
  ep_agent_options *o = &a->opt;
  *ret_exit = 2;
  if (o->seed_file && !o->installed) {
    fprintf(stderr, "edgeprov-agent: --seed is for the installed OS: give --installed too\n");
    return false;
  }
  if (o->ca_file && ep_read_text_file(&a->ca_pem, o->ca_file, 1 << 20, EP_FILE_ANY_ACCESS) < 0) {
    fprintf(stderr, "edgeprov-agent: --ca: %s\n", ep_error_message());
    *ret_exit = 1;
    return false;
  }
  if (o->seed_file && apply_seed(a) < 0) {
    fprintf(stderr, "edgeprov-agent: --seed: %s\n", ep_error_message());
    *ret_exit = 1;
    return false;
  }
  if (!o->orchestrator) {
    fprintf(stderr, "edgeprov-agent: --orchestrator HOST:PORT is required\n%s", ep_agent_usage);
    return false;
  }
  if (o->backoff_ms < 1 || o->backoff_max_ms < o->backoff_ms) {
    fprintf(stderr, "edgeprov-agent: --backoff-ms must be >= 1 and <= --backoff-max-ms\n");
    return false;
  }
  if (split_orchestrators(a) < 0) {
    fprintf(stderr, "edgeprov-agent: --orchestrator: %s\n", ep_error_message());
    return false;
  }
  a->token_url_follows = !o->token_url[0];
  if (a->token_url_follows && default_token_url(a) < 0) {
    fprintf(stderr, "edgeprov-agent: --orchestrator is too long\n");
    return false;
  }
  if (strncmp(o->token_url, "https://", 8) != 0 &&
      !(strncmp(o->token_url, "http://", 7) == 0 && loopback(o->token_url + 7))) {
    fprintf(stderr, "edgeprov-agent: --token-url must be https:// (http:// only on loopback)\n");
    return false;
  }
  for (size_t i = 0; i < a->orchestrator_count; i++)
    if (!a->ca_pem && !loopback(a->orchestrators[i])) {
      fprintf(stderr, "edgeprov-agent: --ca FILE is required for %s (only loopback may go without TLS)\n",
              a->orchestrators[i]);
      return false;
    }
  *ret_exit = 0;
  return true;
}

/* True when the node has its credentials already: in the state directory, or (in the
 * Micro-OS) left in the firmware by a restart, which are put back into the state directory. */
static bool has_credentials(const agent *a) {
  char existing[1024];
  snprintf(existing, sizeof existing, "%s/%s", a->opt.state_dir, CREDENTIALS_FILE);
  if (access(existing, F_OK) == 0) {
    ep_log(EP_LOG_INFO, "agent", "already onboarded: %s exists", existing);
    return true;
  }
  if (!a->opt.installed && restore_credentials(a) == 0) {
    ep_log(EP_LOG_INFO, "agent", "already onboarded: the credentials were in the firmware (%s/%s); resuming",
           efivars_dir(a), EP_FIRMWARE_CREDENTIALS);
    return true;
  }
  return false;
}

#define BOOT_LOG_INTERVAL_S 600 /* the boot log goes to the orchestrator at most this often */

/* Onboarding was refused: sends the node's boot log (--boot-log) to the orchestrator, which
 * keeps it in the host's log when the node names a registered host (UploadBootLog, no token),
 * at most once every BOOT_LOG_INTERVAL_S. Failures are logged; onboarding goes on regardless. */
static void send_boot_log(agent *a) {
  time_t now = time(NULL);
  if (a->boot_log_sent && now - a->boot_log_sent < BOOT_LOG_INTERVAL_S) return;
  a->boot_log_sent = now;
  char kmsg[4096];
  const char *path = a->opt.boot_log;
  if (!path) {
    snprintf(kmsg, sizeof kmsg, "%s/dev/kmsg", strcmp(a->opt.sysroot, "/") == 0 ? "" : a->opt.sysroot);
    path = kmsg;
  }
  ep_boot_log log;
  if (ep_boot_log_read(path, &log) < 0) {
    ep_log(EP_LOG_WARN, "agent", "no boot log for the orchestrator: %s", ep_error_message());
    return;
  }
  Edgeprov__V1__UploadBootLogRequest req = EDGEPROV__V1__UPLOAD_BOOT_LOG_REQUEST__INIT;
  req.uuid = a->node.uuid;
  req.serialnum = a->node.serial;
  req.mac_id = a->node.primary_mac;
  req.lines = log.lines;
  req.n_lines = log.count;
  size_t len = edgeprov__v1__upload_boot_log_request__get_packed_size(&req);
  uint8_t *buf = malloc(len ? len : 1);
  ep_rpc_channel *channel = NULL;
  ep_rpc_tls tls = {.ca_pem = a->ca_pem};
  ep_rpc_result result = {0};
  int r = buf ? ep_rpc_channel_new(&channel, orchestrator(a), a->ca_pem ? &tls : NULL, 0) : EP_ENOMEM;
  if (r == 0) {
    edgeprov__v1__upload_boot_log_request__pack(&req, buf);
    r = ep_rpc_unary(channel, EP_NODE_SERVICE_UPLOAD_BOOT_LOG, NULL, 0, buf, len, 15000, &result);
  }
  if (r < 0)
    ep_log(EP_LOG_WARN, "agent", "sending the boot log failed: %s", ep_error_message());
  else if (result.status != EP_STATUS_OK)
    ep_log(EP_LOG_WARN, "agent", "the orchestrator did not take the boot log: %s: %s", ep_status_name(result.status),
           result.message);
  else
    ep_log(EP_LOG_INFO, "agent", "sent %zu lines of the boot log (%s) to the orchestrator", log.count, path);
  ep_rpc_result_clear(&result);
  ep_rpc_channel_free(channel);
  free(buf);
  ep_boot_log_clear(&log);
}

/* Discovers the node and onboards it, asking until the orchestrator approves. Returns 0 once
 * the credentials are stored, else the exit status (1, or 2 for a bad --host-ip). */
static int onboard(agent *a) {
  ep_discover(&a->node, a->opt.sysroot);
  char ip_text[EP_IP_TEXT_MAX + 1];
  if (a->opt.host_ip && ep_validate_ip(ip_text, "--host-ip", a->opt.host_ip) < 0) {
    fprintf(stderr, "edgeprov-agent: %s\n", ep_error_message());
    return 2;
  }
  const ep_discovery *n = &a->node;
  ep_log(EP_LOG_INFO, "agent", "node uuid=%s serial=%s mac=%s ip=%s nics=%zu disks=%zu cpus=%u memory=%" PRIu64 "MiB",
         n->uuid[0] ? n->uuid : "-", n->serial[0] ? n->serial : "-", n->primary_mac[0] ? n->primary_mac : "-",
         a->opt.host_ip ? a->opt.host_ip : (n->primary_ip[0] ? n->primary_ip : "-"), n->nic_count, n->disk_count,
         n->cpus, n->memory_bytes >> 20);
  if (!n->uuid[0] && !n->serial[0]) {
    ep_log(EP_LOG_ERROR, "agent", "the firmware gives neither a UUID nor a serial number: nothing to onboard with");
    return 1;
  }
  int attempt = 0;
  for (;;) {
    int r = onboard_once(a, &attempt);
    if (r == 1) return 0;
    if (r == 0 && a->refused) send_boot_log(a);
    if (r < 0) {
      ep_log(EP_LOG_ERROR, "agent", "%s", ep_error_message());
      return 1;
    }
    back_off(a, attempt++);
  }
}

/* Onboards the node unless it has its credentials, then obtains a token, reports in and runs
 * the workflow. Returns the exit status. */
static int run(agent *a) {
  if (!has_credentials(a)) {
    int status = onboard(a);
    ep_agent_tpm_free(a->tpm); /* (only onboarding uses it) */
    a->tpm = NULL;
    if (status != 0) return status;
  }
  int r = after_onboarding(a);
  if (r < 0) ep_log(EP_LOG_ERROR, "agent", "%s", ep_error_message());
  return r < 0 ? 1 : 0;
}

int main(int argc, char **argv) {
  agent a = {0};
  int status = 0;
  if (!ep_agent_args_parse(&a.opt, &status, argc, argv)) return status;
  ep_log_setup(stderr, a.opt.log_level);
  if (check_options(&a, &status)) status = run(&a);
  free(a.ca_pem);
  ep_agent_options_clear(&a.opt);
  return status;
}
