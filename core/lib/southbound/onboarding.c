/* core: the southbound onboarding service, see onboarding.h. */
#define _GNU_SOURCE /* explicit_bzero */
#include "southbound/onboarding.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <edgeprov/identity.h>

#include "base/error.h"
#include "base/figures.h"
#include "base/log.h"
#include "base/ratelimit.h"
#include "southbound/boot_fetches.h"
#include "onboardingmgr/v1/onboarding.pb-c.h"
#include "edgeprov/v1/node.pb-c.h"
#include "provisioning/node_log.h"
#include "net/rpc.h"
#include "base/validate.h"
#include "base/secret.h"
#include "base/tpm_credential.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

typedef Onboardingmgr__V1__OnboardNodeStreamRequest stream_request;
typedef Onboardingmgr__V1__OnboardNodeStreamResponse stream_response;

/* Budgets of the unauthenticated onboarding stream. A message from a registered node is held
 * to a budget of its own host (ONBOARD_ATTEMPTS_* per UUID); a message from a node the
 * inventory does not know, to its source address's (the same figures), and its stream to
 * southbound.unknown_streams_max streams of unknown nodes waiting at once. So a flood of
 * unknown nodes, even from the address of a whole site behind one NAT, never takes a
 * registered node's turn. A real node asks again with backoff (2 s doubling to 32 s), so it
 * never meets its own budget. */
#define ONBOARD_ATTEMPTS_PER_S 2.0
#define ONBOARD_ATTEMPTS_BURST 20
#define ONBOARD_PEERS_TRACKED 65536 /* addresses (or hosts) whose budgets are kept at once */
#define UNKNOWN_RETRY_S 30          /* the retry hint when unknown streams are over budget */
/* CreateNodes (an operator's bulk registration on the node-facing port, when enabled). */
#define CREATE_NODES_PER_S 1.0
#define CREATE_NODES_BURST 5
#define CREATE_NODES_HOSTS_MAX 1000
/* UploadBootLog: one upload every 10 minutes per host, as often as the agent sends one. */
#define BOOT_LOGS_PER_S (1.0 / 600)
#define BOOT_LOGS_BURST 1

struct ep_onboarding {
  ep_inventory *inv;
  const ep_plugin_set *plugins;
  const ep_config *config;
  char *operator_token;      /* NULL: CreateNodes is refused */
  ep_ratelimit *per_peer;        /* unknown nodes' messages, by the address the server sees */
  ep_ratelimit *per_host;        /* registered nodes' messages, by host UUID */
  pthread_mutex_t lock;          /* guards unknown_streams */
  int64_t unknown_streams;       /* streams whose node is unknown, waiting */
  ep_ratelimit *create_per_peer; /* CreateNodes calls, by address */
  ep_ratelimit *boot_logs;       /* UploadBootLog calls, by host UUID */
};

/* Sends one response on the stream; status is a gRPC code with its message. */
static int send_response_with(ep_rpc_call *call, int status, const char *message,
                              Onboardingmgr__V1__OnboardNodeStreamResponse__NodeState state, const char *client_id,
                              const char *client_secret, const char *project_id,
                              Onboardingmgr__V1__TpmChallenge *challenge) {
  Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
  st.code = status;
  st.message = (char *)(message ? message : "");
  stream_response resp = ONBOARDINGMGR__V1__ONBOARD_NODE_STREAM_RESPONSE__INIT;
  resp.status = &st;
  resp.node_state = state;
  if (client_id) resp.client_id = (char *)client_id;
  if (client_secret) resp.client_secret = (char *)client_secret;
  if (project_id) resp.project_id = (char *)project_id;
  resp.tpm_challenge = challenge;
  size_t len = onboardingmgr__v1__onboard_node_stream_response__get_packed_size(&resp);
  uint8_t *data = malloc(len ? len : 1);
  if (!data) return EP_ENOMEM;
  onboardingmgr__v1__onboard_node_stream_response__pack(&resp, data);
  int r = ep_rpc_call_send(call, data, len);
  explicit_bzero(data, len); /* it may hold the node's secret */
  free(data);
  return r;
}

static int send_response(ep_rpc_call *call, int status, const char *message,
                         Onboardingmgr__V1__OnboardNodeStreamResponse__NodeState state, const char *client_id,
                         const char *client_secret, const char *project_id) {
  return send_response_with(call, status, message, state, client_id, client_secret, project_id, NULL);
}

/* Takes one from peer's budget; when it is spent, ends the call RESOURCE_EXHAUSTED saying when
 * to ask again, and returns false. */
static bool within_budget(ep_ratelimit *budget, ep_rpc_call *call, const char *peer, const char *what) {
  uint32_t retry_ms = 0;
  if (ep_ratelimit_take(budget, peer, &retry_ms)) return true;
  char message[160];
  snprintf(message, sizeof message, "too many %s from %s; ask again in %u s", what, peer[0] ? peer : "this peer",
           (retry_ms + 999) / 1000);
  ep_rpc_call_finish(call, EP_STATUS_RESOURCE_EXHAUSTED, message, NULL, 0);
  return false;
}

/* Finds the node's host: the one registered with the UUID the node sends, and only when every
 * identifier it was registered with is among what the node sends (its serial, one of its
 * MACs). Returns 0 or EP_ENOENT, for an unknown node and a mismatched one alike: the caller
 * answers both the same way, so the stream tells nobody which hosts exist. A mismatch is
 * recorded on the host (once: the status is the same each time) and logged. */
static int find_host(ep_onboarding *ob, const stream_request *req, const char *peer, ep_inv_host **ret_host) {
  char uuid[EP_UUID_TEXT_LEN + 1], mac[EP_MAC_TEXT_LEN + 1] = "";
  if (!req->uuid[0] || ep_validate_uuid(uuid, "uuid", req->uuid) < 0) return EP_ENOENT;
  if (req->mac_id[0]) ep_validate_mac(mac, "mac_id", req->mac_id);
  ep_inv_host *host = NULL;
  int r = ep_inventory_get_host(ob->inv, uuid, &host);
  if (r < 0) return r;
  const char *missing = NULL;
  if (host->serial[0] && strcmp(req->serialnum, host->serial) != 0) missing = "serial";
  bool mac_known = host->n_macs == 0;
  for (size_t i = 0; !mac_known && i < host->n_macs; i++) mac_known = strcmp(mac, host->macs[i]) == 0;
  if (!missing && !mac_known) missing = "MAC";
  if (missing) {
    char status[160];
    snprintf(status, sizeof status, "Onboarding refused: the node's %s is not the registered one (see the daemon log)", missing);
    ep_inventory_set_registration_status(ob->inv, host->uuid, status, EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_ERROR,
                                         NULL, NULL);
    ep_log(EP_LOG_WARN, "onboarding", "host %s: refused a node from %s: serial %.64s mac %s do not match the registration",
           host->uuid, peer[0] ? peer : "-", req->serialnum[0] ? req->serialnum : "-", mac[0] ? mac : "-");
    ep_inv_host_free(host);
    return EP_ENOENT;
  }
  *ret_host = host;
  return 0;
}

/* Validates what a node sent; the message names the field. */
static int check_request(const stream_request *req) {
  char uuid[EP_UUID_TEXT_LEN + 1], mac[EP_MAC_TEXT_LEN + 1], ip[EP_IP_TEXT_MAX + 1];
  if (!req->uuid[0]) return ep_error_set(EP_EINVAL, "uuid: required (a host is registered by its UUID)");
  if (req->uuid[0] && ep_validate_uuid(uuid, "uuid", req->uuid) < 0) return EP_EINVAL;
  if (req->serialnum[0] && ep_validate_serial("serialnum", req->serialnum) < 0) return EP_EINVAL;
  if (req->mac_id[0] && ep_validate_mac(mac, "mac_id", req->mac_id) < 0) return EP_EINVAL;
  if (req->host_ip[0] && ep_validate_ip(ip, "host_ip", req->host_ip) < 0) return EP_EINVAL;
  return 0;
}

typedef struct issued {
  char client_id[128];
  char client_secret[128];
  char project_id[64];
} issued;

static int32_t keep_credentials(void *data, const ep_identity_credentials *c) {
  issued *out = data;
  snprintf(out->client_id, sizeof out->client_id, "%s", c->client_id ? c->client_id : "");
  snprintf(out->client_secret, sizeof out->client_secret, "%s", c->client_secret ? c->client_secret : "");
  snprintf(out->project_id, sizeof out->project_id, "%s", c->project_id ? c->project_id : "");
  return 0;
}

static int32_t keep_issue_time(void *data, const ep_identity_credentials *c) {
  *(int64_t *)data = c->created_at;
  return 0;
}

/* nZTP: the instance is created as soon as the host is onboarded, when a profile is known. */
static void create_instance_if_zero_touch(ep_onboarding *ob, const ep_inv_host *host) {
  if (ob->config->mode != EP_MODE_NZTP || host->instance_id[0] || !host->os_profile[0]) return;
  ep_inv_instance *instance = NULL;
  if (ep_inventory_create_instance(ob->inv, host->uuid, NULL, false, &instance) == 0) {
    ep_log(EP_LOG_INFO, "onboarding", "host %s: instance %s created (nZTP, %s)", host->uuid, instance->id,
           instance->os_profile);
    ep_inv_instance_free(instance);
  } else {
    ep_log(EP_LOG_WARN, "onboarding", "host %s: no instance created: %s", host->uuid, ep_error_message());
  }
}

/* Decides about the credentials host uuid already has (issued at issued_at, 0: unknown) when
 * its node asks to onboard again. Returns 0 when they may be replaced, else the refusal.
 * A node never receives credentials twice, except when none of them can have reached it or
 * been used:
 *  - an onboarding cut between issuing them and recording the host (a database restart, a
 *    replica killed) leaves credentials and no ONBOARDED host (read again now: another
 *    replica may have just finished), when its revocation failed too;
 *  - an answer lost after the host was recorded (the replica died before it went out, the
 *    connection broke) leaves an ONBOARDED host whose credentials_unused is still set: its
 *    node never made an authenticated call with them.
 * Either way they are replaced once older than any onboarding in progress can be
 * (southbound.unfinished_onboarding_s), so the node is not locked out; before that the node
 * is asked to come back, so a second request never takes the credentials of one in
 * progress. Credentials a node has used are never replaced: an operator re-arms the host. */
static int may_replace_credentials(ep_onboarding *ob, const char *uuid, int64_t issued_at) {
  ep_inv_host *now = NULL;
  bool readable = ep_inventory_get_host(ob->inv, uuid, &now) == 0;
  bool onboarded = !readable || now->current_state == EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED;
  bool unused = readable && now->credentials_unused;
  ep_inv_host_free(now);
  if ((onboarded && !unused) || issued_at <= 0) /* (a plugin that does not say when it issued them: as before) */
    return ep_error_set(EP_EPERM,
                        "host %s already has credentials; an operator re-arms it with: edgeprov host invalidate %s, "
                        "then edgeprov host approve %s",
                        uuid, uuid, uuid);
  int64_t age = (int64_t)time(NULL) - issued_at;
  int64_t wait_s = ob->config->southbound.unfinished_onboarding_s; /* read once: a reload may change it */
  if (age < wait_s)
    return ep_error_set(EP_EIO,
                        "host %s: an onboarding of this node is in progress, or its answer was lost; ask again in %lld s",
                        uuid, (long long)(wait_s - age));
  ep_log(EP_LOG_WARN, "onboarding", "host %s: credentials %s %lld s ago are replaced", uuid,
         onboarded ? "handed out and never used" : "an onboarding left unfinished", (long long)age);
  return 0;
}

/* Onboards host: issues credentials and replies ONBOARDED; first_use_ek (or NULL) is recorded
 * on the host with it (EP_EEXIST when the host has another by then). Returns 0 when the stream is
 * done, or a negative code with the status to finish with. */
static int onboard(ep_onboarding *ob, ep_rpc_call *call, ep_inv_host *host, const ep_inv_contact *contact,
                   const ep_tpm_ek *first_use_ek) {
  void *id_state = NULL;
  ep_plugin *provider = NULL;
  const ep_identity *identity = ep_plugins_capability(ob->plugins, EP_CAP_IDENTITY, &provider);
  if (!identity) return ep_error_set(EP_EIO, "no identity plugin is active (enable auth-local)");
  id_state = provider->instance;
  /* An invalidated host that an operator approved again registers before it onboards. */
  if (host->current_state == EDGEPROV__V1__HOST_STATE__HOST_STATE_UNTRUSTED) {
    int r = ep_inventory_set_host_state(ob->inv, host->uuid, EDGEPROV__V1__HOST_STATE__HOST_STATE_REGISTERED,
                                        "Registered again", EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IDLE, NULL);
    if (r < 0) return r;
  }
  issued creds;
  memset(&creds, 0, sizeof creds);
  int r = identity->create(id_state, host->uuid, keep_credentials, &creds);
  /* Credentials are issued once: a node that restarts in the middle of provisioning takes
   * them back from its firmware's NVRAM (edgeprov-agent), not from a second onboarding that
   * anyone knowing its identifiers could ask for (may_replace_credentials says when a second
   * one is due). The identity plugin refuses a second set (EP_EEXIST); only then is it asked
   * about the first. */
  if (r == EP_EEXIST) {
    int64_t issued_at = 0;
    if (identity->get(id_state, host->uuid, keep_issue_time, &issued_at) < 0) issued_at = 0;
    r = may_replace_credentials(ob, host->uuid, issued_at);
    if (r < 0) return r;
    r = identity->revoke(id_state, host->uuid);
    if (r < 0) return ep_error_prefix(r, "host %s: revoking unfinished credentials", host->uuid);
    r = identity->create(id_state, host->uuid, keep_credentials, &creds);
  }
  if (r < 0) return ep_error_prefix(r, "host %s: credentials", host->uuid);
  ep_inv_host *updated = NULL;
  /* With the contact, and the EK recorded on first use: one write, only when the credentials go out. */
  r = ep_inventory_set_onboarded(ob->inv, host->uuid, contact, first_use_ek ? first_use_ek->der : NULL,
                                 first_use_ek ? first_use_ek->der_len : 0, &updated);
  if (r == 0 && first_use_ek)
    ep_log(EP_LOG_INFO, "onboarding", "host %s: recorded the endorsement key of its first node (onboarding.tpm_identity = first_use)",
           host->uuid);
  if (r == 0) {
    r = send_response(call, EP_STATUS_OK, "", ONBOARDINGMGR__V1__ONBOARD_NODE_STREAM_RESPONSE__NODE_STATE__NODE_STATE_ONBOARDED,
                      creds.client_id, creds.client_secret, creds.project_id);
    ep_log(EP_LOG_INFO, "onboarding", "host %s onboarded as %s", host->uuid, creds.client_id);
    create_instance_if_zero_touch(ob, updated);
  }
  if (r < 0) identity->revoke(id_state, host->uuid); /* nothing half-done: the node retries */
  explicit_bzero(&creds, sizeof creds);
  ep_inv_host_free(updated);
  return r;
}

/* The answer to a node that is not registered, or whose identifiers do not all match: the
 * same words and code for both, echoing only what the node sent. */
static int send_not_registered(ep_rpc_call *call, const stream_request *req) {
  char message[200];
  snprintf(message, sizeof message, "node uuid %.36s serial %.64s is not registered (or not with these identifiers)",
           req->uuid, req->serialnum);
  return send_response(call, EP_STATUS_NOT_FOUND, message,
                       ONBOARDINGMGR__V1__ONBOARD_NODE_STREAM_RESPONSE__NODE_STATE__NODE_STATE_UNSPECIFIED, NULL, NULL, NULL);
}

/* The onboarding stream, event-driven: a node waiting for an operator holds no thread, only
 * its pending read. Each message is answered by itself; the node asks again. */
typedef struct onboarding_stream {
  ep_onboarding *ob;
  char peer[EP_IP_TEXT_MAX + 1]; /* the address the transport saw, "" for none */
  bool unknown;                  /* counted in ob->unknown_streams */
  /* The TPM challenge sent on this stream and not answered yet: for which host, its secret,
   * and the SHA-256 of the EK and AK public areas it was made for. One answer each. */
  bool challenged;
  char challenge_host[EP_UUID_TEXT_LEN + 1];
  uint8_t challenge_secret[EP_TPM_SECRET_LEN];
  uint8_t challenge_binding[32];
  int refusal_status; /* the gRPC status of the last refusal (refuse_node), 0: none */
} onboarding_stream;

/* Counts st as a stream of an unknown node, when there is room. Returns false, after ending
 * the call RESOURCE_EXHAUSTED with when to ask again, when there is none. */
static bool admit_unknown(onboarding_stream *st, ep_rpc_call *call) {
  if (st->unknown) return true;
  ep_onboarding *ob = st->ob;
  pthread_mutex_lock(&ob->lock);
  bool room = ob->unknown_streams < ob->config->southbound.unknown_streams_max;
  if (room) ob->unknown_streams++;
  pthread_mutex_unlock(&ob->lock);
  if (!room) {
    char message[200];
    snprintf(message, sizeof message,
             "too many unregistered nodes are waiting (southbound.unknown_streams_max); ask again in %d s",
             UNKNOWN_RETRY_S);
    ep_rpc_call_finish(call, EP_STATUS_RESOURCE_EXHAUSTED, message, NULL, 0);
    return false;
  }
  st->unknown = true;
  return true;
}

static void forget_unknown(onboarding_stream *st) {
  if (!st->unknown) return;
  pthread_mutex_lock(&st->ob->lock);
  st->ob->unknown_streams--;
  pthread_mutex_unlock(&st->ob->lock);
  st->unknown = false;
}

/* Refuses st's node (host) with the gRPC status and the message (which names the host; it
 * goes to the node and the daemon log), recording "Onboarding refused: <recorded>" as the
 * host's registration status so that `edgeprov host show` says why. recorded is a fixed text
 * per kind of refusal, nothing the node sent: a node varying what it sends never makes the
 * host's record change more than the kinds do. Returns an error (EP_EPERM, the message) for
 * the caller to finish the call with st->refusal_status. */
static int refuse_node(onboarding_stream *st, const ep_inv_host *host, int grpc_status, const char *recorded,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int refuse_node(onboarding_stream *st, const ep_inv_host *host, int grpc_status, const char *recorded,
                       const char *fmt, ...) {
  ep_onboarding *ob = st->ob;
  const char *peer = st->peer;
  char message[EP_ERROR_MESSAGE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  char status[256];
  snprintf(status, sizeof status, "Onboarding refused: %s", recorded);
  ep_inventory_set_registration_status(ob->inv, host->uuid, status, EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_ERROR,
                                       NULL, NULL);
  ep_log(EP_LOG_WARN, "onboarding", "host %s: refused the node from %s: %s", host->uuid, peer[0] ? peer : "-", message);
  st->refusal_status = grpc_status;
  return ep_error_set(EP_EPERM, "%s", message);
}

/* The statuses of refusals: another TPM or no proof; what the site asks for is missing. */
#define TPM_REFUSED EP_STATUS_PERMISSION_DENIED
#define TPM_MISSING EP_STATUS_FAILED_PRECONDITION

/* Before host's node gets credentials: the proof that it holds the host's TPM, when the host
 * has an EK registered or the site asks for one (onboarding.tpm_identity). tpm is what the
 * node sent (NULL: nothing, as every client of the reference contract). Returns 0 when the
 * node may be given credentials (*first_use: record its EK on the host first), 1 when a
 * challenge went out on the stream (the node answers with its next message), or a refusal
 * (the error's code and message are the call's status; the host's status records it). */
static int prove_tpm(onboarding_stream *st, ep_rpc_call *call, const ep_inv_host *host,
                     const Onboardingmgr__V1__TpmIdentity *tpm, ep_tpm_ek *ek, bool *first_use) {
  ep_onboarding *ob = st->ob;
  bool registered = host->tpm_ek.len > 0;
  *first_use = false;
  if (!registered && ob->config->tpm_identity == EP_TPM_IDENTITY_OFF) return 0;
  if (!registered && ob->config->tpm_identity == EP_TPM_IDENTITY_REQUIRED)
    return refuse_node(st, host, TPM_MISSING, "this site requires a registered TPM endorsement key (host add --ek)",
                       "host %s has no registered TPM endorsement key and this site requires one "
                       "(onboarding.tpm_identity = \"required\"): register it with edgeprov host add ... --ek FILE",
                       host->uuid);
  if (!tpm || !tpm->ek_public.len)
    return refuse_node(st, host, TPM_MISSING, "the node sent no TPM identity",
                       "host %s must prove it holds %s TPM, and its node sent no TPM identity "
                       "(edgeprov-agent finds the TPM at /dev/tpmrm0, or --tpm)",
                       host->uuid, registered ? "its registered" : "a");
  int r = ep_tpm_ek_from_public(ek, tpm->ek_public.data, tpm->ek_public.len, "tpm.ek_public");
  uint8_t name[EP_TPM_NAME_MAX];
  size_t name_len = 0;
  if (r == 0) r = ep_tpm_ak_name(name, &name_len, tpm->ak_public.data, tpm->ak_public.len, "tpm.ak_public");
  if (r < 0)
    return refuse_node(st, host, EP_STATUS_INVALID_ARGUMENT, "the node sent an unusable TPM identity", "host %s: %s",
                       host->uuid, ep_error_message());
  if (registered && (host->tpm_ek.len != ek->der_len || memcmp(host->tpm_ek.data, ek->der, ek->der_len) != 0)) {
    char want[EP_TPM_FINGERPRINT_LEN + 1], got[EP_TPM_FINGERPRINT_LEN + 1];
    ep_tpm_ek_fingerprint(want, host->tpm_ek.data, host->tpm_ek.len);
    ep_tpm_ek_fingerprint(got, ek->der, ek->der_len);
    return refuse_node(st, host, TPM_REFUSED, "the node's TPM is not the one registered (see the daemon log)",
                       "the node's TPM is not the one registered for host %s (its endorsement key is %s, the host's %s)",
                       host->uuid, got, want);
  }
  /* The challenge is bound to the EK and AK it was made for: an answer counts for those only. */
  uint8_t binding[32];
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  bool hashed = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) && EVP_DigestUpdate(md, tpm->ek_public.data, tpm->ek_public.len) &&
                EVP_DigestUpdate(md, tpm->ak_public.data, tpm->ak_public.len) && EVP_DigestFinal_ex(md, binding, NULL);
  EVP_MD_CTX_free(md);
  if (!hashed) return ep_error_set(EP_EIO, "SHA-256 failed");
  if (tpm->activated_secret.len) {
    bool asked = st->challenged && strcmp(st->challenge_host, host->uuid) == 0 &&
                 memcmp(st->challenge_binding, binding, sizeof binding) == 0;
    bool right = asked && tpm->activated_secret.len == EP_TPM_SECRET_LEN &&
                 CRYPTO_memcmp(tpm->activated_secret.data, st->challenge_secret, EP_TPM_SECRET_LEN) == 0;
    st->challenged = false; /* one answer per challenge */
    explicit_bzero(st->challenge_secret, sizeof st->challenge_secret);
    if (!right)
      return refuse_node(st, host, TPM_REFUSED, "the node could not prove it holds the TPM it named",
                         asked ? "the node could not prove it holds the TPM it named for host %s (wrong answer to the challenge)"
                               : "the node answered no challenge of this stream for host %s (ask without an answer first)",
                         host->uuid);
    *first_use = !registered;
    return 0;
  }
  uint8_t *blob = NULL, *seed = NULL;
  size_t blob_len = 0, seed_len = 0;
  r = RAND_bytes(st->challenge_secret, sizeof st->challenge_secret) == 1 ? 0 : ep_error_set(EP_EIO, "no random bytes");
  if (r == 0)
    r = ep_tpm_make_credential(tpm->ek_public.data, tpm->ek_public.len, name, name_len, st->challenge_secret,
                               sizeof st->challenge_secret, &blob, &blob_len, &seed, &seed_len);
  if (r == 0) {
    Onboardingmgr__V1__TpmChallenge challenge = ONBOARDINGMGR__V1__TPM_CHALLENGE__INIT;
    challenge.credential_blob = (ProtobufCBinaryData){blob_len, blob};
    challenge.encrypted_secret = (ProtobufCBinaryData){seed_len, seed};
    st->challenged = true;
    snprintf(st->challenge_host, sizeof st->challenge_host, "%s", host->uuid);
    memcpy(st->challenge_binding, binding, sizeof binding);
    r = send_response_with(call, EP_STATUS_OK, "prove the TPM: answer the challenge",
                           ONBOARDINGMGR__V1__ONBOARD_NODE_STREAM_RESPONSE__NODE_STATE__NODE_STATE_REGISTERED, NULL, NULL,
                           NULL, &challenge);
  }
  free(blob);
  free(seed);
  return r < 0 ? r : 1;
}

/* Whether the node's TPM identity names host's registered EK (true when the host has none). */
static bool shows_registered_ek(const ep_inv_host *host, const Onboardingmgr__V1__TpmIdentity *tpm) {
  if (!host->tpm_ek.len) return true;
  ep_tpm_ek ek;
  bool same = tpm && ep_tpm_ek_from_public(&ek, tpm->ek_public.data, tpm->ek_public.len, "tpm.ek_public") == 0 &&
              ek.der_len == host->tpm_ek.len && memcmp(ek.der, host->tpm_ek.data, ek.der_len) == 0;
  ep_error_clear();
  return same;
}

static void *stream_open(void *data, ep_rpc_call *call) {
  onboarding_stream *st = calloc(1, sizeof *st);
  if (!st) {
    ep_rpc_call_finish(call, EP_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
    return NULL;
  }
  st->ob = data;
  ep_rpc_call_peer_ip(call, st->peer, sizeof st->peer);
  return st;
}

static void stream_message(void *state, ep_rpc_call *call, const uint8_t *bytes, size_t len) {
  onboarding_stream *st = state;
  if (!st) return;
  st->refusal_status = 0;
  ep_onboarding *ob = st->ob;
  const char *peer = st->peer;
  stream_request *req = onboardingmgr__v1__onboard_node_stream_request__unpack(NULL, len, bytes);
  if (!req) {
    if (within_budget(ob->per_peer, call, peer, "onboarding attempts"))
      ep_rpc_call_finish(call, EP_STATUS_INVALID_ARGUMENT, "request is not a valid OnboardNodeStreamRequest", NULL, 0);
    return;
  }
  ep_inv_host *host = NULL;
  int r = check_request(req);
  if (r == 0) r = find_host(ob, req, peer, &host);
  /* The budget follows who the node is: its host's, or its address's when it is unknown. */
  bool known = r == 0;
  if (!within_budget(known ? ob->per_host : ob->per_peer, call, known ? host->uuid : peer, "onboarding attempts") ||
      (r == EP_ENOENT && !admit_unknown(st, call))) {
    ep_inv_host_free(host);
    onboardingmgr__v1__onboard_node_stream_request__free_unpacked(req, NULL);
    return;
  }
  if (known) forget_unknown(st); /* registered since its last message */
  if (r == EP_ENOENT) {
    r = send_not_registered(call, req);
    onboardingmgr__v1__onboard_node_stream_request__free_unpacked(req, NULL);
    if (r < 0) ep_rpc_call_finish(call, ep_status_from_error(r), ep_error_message(), NULL, 0);
    return; /* the node asks again */
  }
  if (r < 0) {
    onboardingmgr__v1__onboard_node_stream_request__free_unpacked(req, NULL);
    ep_rpc_call_finish(call, ep_status_from_error(r), ep_error_message(), NULL, 0);
    return;
  }
  /* An invalidated host stays so until an operator approves it: nothing the node sends
   * changes its record. */
  if (host->desired_state == EDGEPROV__V1__HOST_STATE__HOST_STATE_UNTRUSTED) {
    ep_inv_host_free(host);
    onboardingmgr__v1__onboard_node_stream_request__free_unpacked(req, NULL);
    ep_rpc_call_finish(call, EP_STATUS_PERMISSION_DENIED,
                       "this host was invalidated by an operator; it onboards again once approved", NULL, 0);
    return;
  }
  char host_ip[EP_IP_TEXT_MAX + 1] = "";
  snprintf(host_ip, sizeof host_ip, "%s", req->host_ip); /* validated by check_request */
  ep_inv_contact contact = {host_ip, peer, ep_boot_fetches_first(peer, (int64_t)time(NULL))};
  if (host->desired_state == EDGEPROV__V1__HOST_STATE__HOST_STATE_ONBOARDED) {
    ep_tpm_ek ek;
    bool first_use = false;
    r = prove_tpm(st, call, host, req->tpm, &ek, &first_use);
    onboardingmgr__v1__onboard_node_stream_request__free_unpacked(req, NULL);
    if (r == 1) { /* challenged: the node answers on this stream (its contact is recorded once it proved its TPM) */
      ep_inv_host_free(host);
      return;
    }
    if (r == 0) r = onboard(ob, call, host, &contact, first_use ? &ek : NULL);
    if (r == EP_EEXIST && first_use) /* (recorded by a concurrent onboarding meanwhile) */
      r = refuse_node(st, host, TPM_REFUSED, "another node's key was recorded first",
                      "another node's endorsement key was recorded for host %s first", host->uuid);
    char refusal[EP_ERROR_MESSAGE_MAX] = "";
    if (r < 0) snprintf(refusal, sizeof refusal, "%s", ep_error_message()); /* what the node is told */
    /* Onboarded, the contact went with it; refused, it is recorded by itself, unless the node
     * failed to prove it holds the host's TPM: then it may be anyone, and the refusal is what
     * the host's record keeps. */
    if (r < 0 && !st->refusal_status) ep_inventory_node_connected(ob->inv, host->uuid, &contact);
    ep_figures_onboarding(r == 0);
    ep_inv_host_free(host);
    if (r < 0)
      ep_rpc_call_finish(call, st->refusal_status ? st->refusal_status : ep_status_from_error(r), refusal, NULL, 0);
    else
      ep_rpc_call_finish(call, EP_STATUS_OK, "", NULL, 0);
    return;
  }
  /* A host bound to a TPM keeps the contact of a node that shows that TPM's EK only (the proof
   * comes at onboarding): an operator approving it reads the right node's address. */
  bool shows_ek = shows_registered_ek(host, req->tpm);
  onboardingmgr__v1__onboard_node_stream_request__free_unpacked(req, NULL);
  if (shows_ek) ep_inventory_node_connected(ob->inv, host->uuid, &contact);
  if (host->current_state != EDGEPROV__V1__HOST_STATE__HOST_STATE_REGISTERED)
    r = ep_inventory_set_host_state(ob->inv, host->uuid, EDGEPROV__V1__HOST_STATE__HOST_STATE_REGISTERED,
                                    "Registered, waiting for approval", EDGEPROV__V1__STATUS_INDICATOR__STATUS_INDICATOR_IDLE,
                                    NULL);
  ep_inv_host_free(host);
  if (r == 0)
    r = send_response(call, EP_STATUS_OK, "", ONBOARDINGMGR__V1__ONBOARD_NODE_STREAM_RESPONSE__NODE_STATE__NODE_STATE_REGISTERED,
                      NULL, NULL, NULL);
  if (r < 0) ep_rpc_call_finish(call, ep_status_from_error(r), ep_error_message(), NULL, 0);
}

static void stream_half_close(void *state, ep_rpc_call *call) {
  (void)state;
  ep_rpc_call_finish(call, EP_STATUS_OK, "", NULL, 0);
}

static void stream_close(void *state, ep_rpc_call *call) {
  (void)call;
  if (state) forget_unknown(state);
  free(state);
}

static const ep_rpc_stream_ops onboarding_stream_ops = {
    .open = stream_open, .message = stream_message, .half_close = stream_half_close, .close = stream_close};

static void handle_create_nodes(void *data, ep_rpc_call *call, const uint8_t *request, size_t len) {
  ep_onboarding *ob = data;
  if (!ob->config->onboarding_create_nodes) {
    ep_rpc_call_finish(call, EP_STATUS_PERMISSION_DENIED,
                       "CreateNodes is not served on this site (onboarding.create_nodes = false); register hosts with "
                       "edgeprov host add",
                       NULL, 0);
    return;
  }
  char peer[EP_IP_TEXT_MAX + 1] = "";
  ep_rpc_call_peer_ip(call, peer, sizeof peer);
  if (!within_budget(ob->create_per_peer, call, peer, "CreateNodes calls")) return;
  bool ok = ob->operator_token && ep_rpc_call_bearer_matches(call, ob->operator_token);
  if (!ok) {
    ep_rpc_call_finish(call, EP_STATUS_UNAUTHENTICATED, "CreateNodes needs the operator token", NULL, 0);
    return;
  }
  Onboardingmgr__V1__CreateNodesRequest *req = onboardingmgr__v1__create_nodes_request__unpack(NULL, len, request);
  if (!req) {
    ep_rpc_call_finish(call, EP_STATUS_INVALID_ARGUMENT, "request is not a valid CreateNodesRequest", NULL, 0);
    return;
  }
  size_t hosts = 0;
  for (size_t i = 0; i < req->n_payload; i++) hosts += req->payload[i]->n_hwdata;
  if (hosts > CREATE_NODES_HOSTS_MAX) {
    onboardingmgr__v1__create_nodes_request__free_unpacked(req, NULL);
    char message[96];
    snprintf(message, sizeof message, "payload: %zu hosts, at most %d a call", hosts, CREATE_NODES_HOSTS_MAX);
    ep_rpc_call_finish(call, EP_STATUS_INVALID_ARGUMENT, message, NULL, 0);
    return;
  }
  /* The reply lists what was stored, in its canonical forms, built afresh: echoing the request
   * would send back whatever unknown fields the caller put in it (protobuf-c keeps them, and
   * can write some back in a form no decoder accepts). */
  ep_inv_host **added = calloc(hosts ? hosts : 1, sizeof *added);
  Onboardingmgr__V1__HwData *hw_out = calloc(hosts ? hosts : 1, sizeof *hw_out), **hw_ptrs = calloc(hosts ? hosts : 1, sizeof *hw_ptrs);
  Onboardingmgr__V1__NodeData *nodes = calloc(req->n_payload ? req->n_payload : 1, sizeof *nodes);
  Onboardingmgr__V1__NodeData **node_ptrs = calloc(req->n_payload ? req->n_payload : 1, sizeof *node_ptrs);
  int r = added && hw_out && hw_ptrs && nodes && node_ptrs ? 0 : ep_error_set(EP_ENOMEM, "out of memory");
  size_t k = 0;
  for (size_t i = 0; r == 0 && i < req->n_payload; i++) {
    onboardingmgr__v1__node_data__init(&nodes[i]);
    nodes[i].hwdata = hw_ptrs + k;
    node_ptrs[i] = &nodes[i];
    for (size_t j = 0; r == 0 && j < req->payload[i]->n_hwdata; j++, k++) {
      const Onboardingmgr__V1__HwData *hw = req->payload[i]->hwdata[j];
      const char *macs[1] = {hw->mac_id};
      ep_inv_host_spec spec = {.uuid = hw->uuid, .serial = hw->serialnum, .macs = macs, .mac_count = hw->mac_id[0] ? 1 : 0,
                           .ip = hw->sut_ip, .auto_onboard = true};
      r = ep_inventory_add_host(ob->inv, &spec, &added[k]);
      if (r < 0) break;
      onboardingmgr__v1__hw_data__init(&hw_out[k]);
      hw_out[k].uuid = added[k]->uuid;
      hw_out[k].serialnum = added[k]->serial;
      hw_out[k].mac_id = added[k]->n_macs ? added[k]->macs[0] : "";
      hw_out[k].sut_ip = added[k]->ip;
      hw_ptrs[k] = &hw_out[k];
      nodes[i].n_hwdata++;
    }
  }
  uint8_t *out = NULL;
  size_t out_len = 0;
  if (r == 0) {
    Onboardingmgr__V1__CreateNodesResponse resp = ONBOARDINGMGR__V1__CREATE_NODES_RESPONSE__INIT;
    resp.payload = node_ptrs;
    resp.n_payload = req->n_payload;
    resp.project_id = "edgeprov";
    out_len = onboardingmgr__v1__create_nodes_response__get_packed_size(&resp);
    out = malloc(out_len ? out_len : 1);
    if (out) onboardingmgr__v1__create_nodes_response__pack(&resp, out);
    else r = ep_error_set(EP_ENOMEM, "out of memory");
  }
  if (r < 0) ep_rpc_call_finish(call, ep_status_from_error(r), ep_error_message(), NULL, 0);
  else ep_rpc_call_finish(call, EP_STATUS_OK, "", out, out_len);
  free(out);
  for (size_t i = 0; added && i < hosts; i++) ep_inv_host_free(added[i]);
  free(added);
  free(hw_out);
  free(hw_ptrs);
  free(nodes);
  free(node_ptrs);
  onboardingmgr__v1__create_nodes_request__free_unpacked(req, NULL);
}

int ep_onboarding_new(ep_onboarding **out, ep_inventory *inv, const ep_plugin_set *plugins, const ep_config *config) {
  ep_onboarding *ob = calloc(1, sizeof *ob);
  if (!ob) return ep_error_set(EP_ENOMEM, "out of memory");
  ob->inv = inv;
  ob->plugins = plugins;
  ob->config = config;
  pthread_mutex_init(&ob->lock, NULL);
  if (ep_ratelimit_new(&ob->per_peer, ONBOARD_ATTEMPTS_PER_S, ONBOARD_ATTEMPTS_BURST, ONBOARD_PEERS_TRACKED) < 0 ||
      ep_ratelimit_new(&ob->per_host, ONBOARD_ATTEMPTS_PER_S, ONBOARD_ATTEMPTS_BURST, ONBOARD_PEERS_TRACKED) < 0 ||
      ep_ratelimit_new(&ob->create_per_peer, CREATE_NODES_PER_S, CREATE_NODES_BURST, ONBOARD_PEERS_TRACKED) < 0 ||
      ep_ratelimit_new(&ob->boot_logs, BOOT_LOGS_PER_S, BOOT_LOGS_BURST, ONBOARD_PEERS_TRACKED) < 0) {
    ep_onboarding_free(ob);
    return EP_ENOMEM;
  }
  if (config->onboarding_create_nodes) { /* the management listener's token rules */
    int r = config->operator_token_file
                ? ep_read_secret_file(&ob->operator_token, config->operator_token_file, EP_OPERATOR_TOKEN_MAX)
                : ep_error_set(EP_EINVAL, "onboarding.create_nodes needs auth.operator_token_file");
    if (r == 0 && strlen(ob->operator_token) < EP_OPERATOR_TOKEN_MIN)
      r = ep_error_set(EP_EINVAL, "%s: the operator token is shorter than %d characters", config->operator_token_file,
                       EP_OPERATOR_TOKEN_MIN);
    if (r < 0) {
      ep_onboarding_free(ob);
      return r;
    }
  }
  *out = ob;
  return 0;
}

/* UploadBootLog (node.proto): the boot log of a node whose onboarding failed, kept in its
 * host's log when the node names a registered host with all its identifiers. No token: held
 * to the onboarding budgets (its address's while unknown) and one upload a minute per host. */
static void handle_upload_boot_log(void *data, ep_rpc_call *call, const uint8_t *request, size_t len) {
  ep_onboarding *ob = data;
  char peer[EP_IP_TEXT_MAX + 1] = "";
  ep_rpc_call_peer_ip(call, peer, sizeof peer);
  Edgeprov__V1__UploadBootLogRequest *req = edgeprov__v1__upload_boot_log_request__unpack(NULL, len, request);
  if (!req) {
    if (within_budget(ob->per_peer, call, peer, "onboarding attempts"))
      ep_rpc_call_finish(call, EP_STATUS_INVALID_ARGUMENT, "request is not a valid UploadBootLogRequest", NULL, 0);
    return;
  }
  stream_request who = ONBOARDINGMGR__V1__ONBOARD_NODE_STREAM_REQUEST__INIT;
  who.uuid = req->uuid;
  who.serialnum = req->serialnum;
  who.mac_id = req->mac_id;
  int r = check_request(&who);
  if (r == 0 && req->n_lines > EP_BOOT_LOG_LINES_MAX)
    r = ep_error_set(EP_EINVAL, "lines: %zu, at most %d an upload", req->n_lines, EP_BOOT_LOG_LINES_MAX);
  for (size_t i = 0; r == 0 && i < req->n_lines; i++) {
    char field[32];
    snprintf(field, sizeof field, "lines[%zu]", i);
    r = ep_validate_text(field, req->lines[i], EP_BOOT_LOG_LINE_MAX);
  }
  ep_inv_host *host = NULL;
  if (r == 0) r = find_host(ob, &who, peer, &host);
  bool known = r == 0;
  if (within_budget(known ? ob->per_host : ob->per_peer, call, known ? host->uuid : peer, "onboarding attempts") &&
      (!known || within_budget(ob->boot_logs, call, host->uuid, "boot log uploads"))) {
    Edgeprov__V1__UploadBootLogResponse resp = EDGEPROV__V1__UPLOAD_BOOT_LOG_RESPONSE__INIT;
    ep_inv_instance *instance = NULL;
    if (known && host->instance_id[0] && ep_inventory_get_instance(ob->inv, host->instance_id, &instance) == 0 &&
        instance->current_state == EDGEPROV__V1__INSTANCE_STATE__INSTANCE_STATE_RUNNING)
      r = ep_error_set(EP_EPERM, "host %s is RUNNING: its boot log is not taken without a token", host->uuid);
    ep_inv_instance_free(instance);
    /* Marked as what it is: lines anyone knowing the host's identifiers could have sent. */
    char source[EP_IP_TEXT_MAX + 40];
    snprintf(source, sizeof source, "boot log (no token, from %s)", peer[0] ? peer : "-");
    if (known && r == 0)
      r = ep_node_log_append(ob->inv, host->uuid, 0, 0, source, req->lines, req->n_lines,
                             (uint64_t)ob->config->log_max_bytes_per_host, NULL);
    if (r == EP_ENOENT) {
      char message[200];
      snprintf(message, sizeof message, "node uuid %.36s serial %.64s is not registered (or not with these identifiers)",
               req->uuid, req->serialnum);
      ep_rpc_call_finish(call, EP_STATUS_NOT_FOUND, message, NULL, 0);
    } else if (r < 0) {
      ep_rpc_call_finish(call, ep_status_from_error(r), ep_error_message(), NULL, 0);
    } else {
      ep_log(EP_LOG_INFO, "onboarding", "host %s: kept %zu lines of its boot log (from %s)", host->uuid, req->n_lines,
             peer[0] ? peer : "-");
      resp.kept = (uint32_t)req->n_lines;
      uint8_t out[16];
      ep_rpc_call_finish(call, EP_STATUS_OK, "", out, edgeprov__v1__upload_boot_log_response__pack(&resp, out));
    }
  }
  ep_inv_host_free(host);
  edgeprov__v1__upload_boot_log_request__free_unpacked(req, NULL);
}

int ep_onboarding_register(ep_onboarding *ob, ep_rpc_server *server) {
  ep_rpc_method methods[] = {{.path = EP_ONBOARDING_SERVICE_STREAM,
                              .kind = EP_RPC_BIDI_STREAMING,
                              .data = ob,
                              .stream = &onboarding_stream_ops,
                              .first_message_ms = (int)ob->config->southbound.first_message_s * 1000},
                             {.path = EP_ONBOARDING_SERVICE_CREATE,
                              .kind = EP_RPC_UNARY,
                              .handler = handle_create_nodes,
                              .data = ob},
                             {.path = EP_NODE_SERVICE_UPLOAD_BOOT_LOG,
                              .kind = EP_RPC_UNARY,
                              .handler = handle_upload_boot_log,
                              .data = ob}};
  int r = 0;
  for (size_t i = 0; r == 0 && i < sizeof methods / sizeof methods[0]; i++) r = ep_rpc_server_add_method(server, &methods[i]);
  return r;
}

void ep_onboarding_free(ep_onboarding *ob) {
  if (!ob) return;
  ep_ratelimit_free(ob->per_peer);
  ep_ratelimit_free(ob->per_host);
  ep_ratelimit_free(ob->create_per_peer);
  ep_ratelimit_free(ob->boot_logs);
  pthread_mutex_destroy(&ob->lock);
  if (ob->operator_token) {
    explicit_bzero(ob->operator_token, strlen(ob->operator_token));
    free(ob->operator_token);
  }
  free(ob);
}
