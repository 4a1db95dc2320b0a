/* edgeprov SDK: the host-services table the core hands to every plugin. */
#ifndef EDGEPROV_HOST_H
#define EDGEPROV_HOST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include "abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A context owned by the host. init receives the plugin's context; an action's run receives
 * a context for that one run. Every host service takes the context it was handed, so the
 * host knows whose settings to look up and whose progress to report. A plugin never frees
 * or dereferences a context, and uses a run's context only during that run. */
typedef struct ep_ctx ep_ctx;

/* An HTTP(S) request a plugin makes through the host (ABI 1.1), so plugins need not link an
 * HTTP library. Strings are NUL-terminated; body may be NULL. */
typedef struct ep_http_request {
  uint32_t struct_size;
  uint32_t reserved;
  const char *method;          /* "GET", "POST", "PUT" or "DELETE" */
  const char *url;             /* http:// or https:// */
  const char *const *headers;  /* "Name: value" lines, NULL-terminated, at most 16; or NULL */
  const uint8_t *body;
  uint64_t body_len;
  const char *ca_file;         /* PEM CA file trusted for https; NULL or "": the system's */
  const char *basic_user;      /* HTTP Basic credentials, or NULL */
  const char *basic_password;
  int64_t timeout_ms;          /* 0: 30 s */
  uint64_t response_max;       /* largest response body accepted; 0: 1 MiB */
} ep_http_request;

/* The response, valid only during the visitor call. body is NUL-terminated. */
typedef struct ep_http_response {
  uint32_t struct_size;
  int32_t status;              /* HTTP status code */
  const uint8_t *body;
  uint64_t body_len;
  const char *location;        /* Location header, "" when none */
  const char *content_type;    /* "" when none */
} ep_http_response;

typedef int32_t (*ep_http_response_fn)(void *data, const ep_http_response *response);

/* A streamed download through the host (ABI 1.1): http://, https:// or file://. */
typedef struct ep_fetch_request {
  uint32_t struct_size;
  uint32_t reserved;
  const char *url;
  const char *ca_file;        /* PEM CA file trusted for https; NULL or "": the system's */
  const char *proxy;          /* proxy URL; NULL or "": none */
  uint64_t offset;            /* first byte wanted (an HTTP Range request when > 0) */
  int64_t connect_timeout_ms; /* 0: 15 s */
  int64_t stall_timeout_ms;   /* give up when nothing arrives for this long; 0: 30 s */
} ep_fetch_request;

/* What a fetch saw: kept current while on_data is called (total is known once the headers
 * arrived), and final when fetch returns, whether it succeeded or not. */
typedef struct ep_fetch_status {
  uint32_t struct_size;
  int32_t http_status; /* 0 for file:// */
  uint64_t total;      /* the whole resource's size when known, else 0 */
  uint64_t received;   /* bytes handed to on_data by this fetch */
  char message[256];   /* why it failed ("" on success), for the plugin's own messages */
} ep_fetch_status;

/* Receives the body in order; returns 0 to go on or a negative code to stop the fetch. */
typedef int32_t (*ep_fetch_data_fn)(void *data, const uint8_t *bytes, uint64_t len);

/* Host services. All functions are safe to call from any thread the host called the plugin
 * on. Strings handed to the host are copied; strings handed out by the host are owned by
 * the host and stay valid for the lifetime of the context they came from.
 * Appended fields arrive with a newer minor: check struct_size before using them
 * (EP_HOST_HAS). */
typedef struct ep_host {
  uint32_t struct_size;
  uint16_t abi_major;
  uint16_t abi_minor;

  /* Writes one log line attributed to the plugin. message is plain text; the host adds
   * time, level and plugin name. Never pass secrets. */
  void (*log)(ep_ctx *ctx, int32_t level, const char *message);

  /* Memory that crosses the ABI: allocate with alloc, release with free. alloc returns NULL
   * when out of memory; free accepts NULL. */
  void *(*alloc)(ep_ctx *ctx, uint64_t size);
  void (*free)(ep_ctx *ctx, void *ptr);

  /* Typed lookup of the plugin's validated settings (declared defaults applied).
   * Return 0 and set *out, EP_ENOENT when the setting is unset and has no default, or
   * EP_EINVAL when name is not declared with that type. *out is untouched on failure. */
  int32_t (*setting_string)(ep_ctx *ctx, const char *name, const char **out);
  int32_t (*setting_int)(ep_ctx *ctx, const char *name, int64_t *out);
  int32_t (*setting_bool)(ep_ctx *ctx, const char *name, int32_t *out);

  /* Records why the current call fails; the host shows it with the plugin's name. Call it
   * on the thread the host called, before returning a negative code (from init, run or a
   * capability function): the host keeps the message per calling thread. */
  void (*set_error)(ep_ctx *ctx, int32_t code, const char *message);

  /* Reports progress of the running action: done and total in bytes or steps (total 0 when
   * unknown), message a short phrase or NULL. No-op outside a run. */
  void (*progress)(ep_ctx *ctx, uint64_t done, uint64_t total, const char *message);

  /* Returns non-zero once the host wants the current run to stop (cancel, deadline or
   * shutdown). Long loops check it and return EP_ECANCELED. */
  int32_t (*cancelled)(ep_ctx *ctx);

  /* Typed lookup of the current action run's validated parameters; same contract as the
   * setting lookups. EP_EINVAL outside a run. */
  int32_t (*param_string)(ep_ctx *ctx, const char *name, const char **out);
  int32_t (*param_int)(ep_ctx *ctx, const char *name, int64_t *out);
  int32_t (*param_bool)(ep_ctx *ctx, const char *name, int32_t *out);

  /* Finds a capability another plugin registered, by ID with revision
   * ("edgeprov.storage/1"). Returns the capability's table and stores in *ret_state the
   * state its functions take, or returns NULL if none is active. Look it up when needed
   * rather than in init: the provider may start after the caller, and both stay valid only
   * while the provider is active (never use them in deinit). */
  const void *(*capability)(ep_ctx *ctx, const char *capability_id, void **ret_state);

  /* Site-wide values from the core config, by name: "paths.data" (the data directory),
   * "provisioning.mode" ("nztp" or "non-ztp"). During an action run on a node (ABI 1.1)
   * also "run.target_disk" (the disk the workflow provisions), "run.scratch_dir" (a
   * directory of the node's the action may use) and "run.deadline" (Unix seconds by which
   * the run must end). "artifacts.directory" (ABI 1.2) is where `edgeprov artifacts build`
   * writes the boot artifacts. "run.tpm" (ABI 1.6, during an action run on a node): the TCTI of
   * the node's TPM 2.0 as the agent resolved its --tpm option ("device:/dev/tpmrm0",
   * "swtpm:host=127.0.0.1,port=2321"), EP_ENOENT when the node has none or --tpm is off. Same
   * contract as the setting lookups: EP_ENOENT when the host has no such value here, EP_EINVAL
   * for an unknown name. */
  int32_t (*site_string)(ep_ctx *ctx, const char *name, const char **out);

  /* ---- ABI 1.1 ---- */

  /* Makes an HTTP request and visits the response, whatever its status; returns what visit
   * returns. Fails with EP_EIO (connection or TLS), EP_ETIMEDOUT, EP_ERANGE (response too
   * large) or EP_EINVAL (bad method or URL), message set. Blocking; any thread. The host
   * never logs requests or responses (they may carry secrets). */
  int32_t (*http_request)(ep_ctx *ctx, const ep_http_request *request, ep_http_response_fn visit, void *data);

  /* Streams request->url into on_data. Returns 0 when the whole body arrived; EP_EIO when
   * the connection broke or stalled (resume with offset + status->received); EP_EFAILED for
   * an HTTP error status; EP_ENOTSUP when the server ignored the Range; EP_ENOENT for a
   * missing file; EP_ECANCELED when the run is cancelled; or on_data's own code. Message
   * set in every case. Blocking; any thread. */
  int32_t (*fetch)(ep_ctx *ctx, const ep_fetch_request *request, ep_fetch_data_fn on_data, void *data,
                   ep_fetch_status *status);

  /* Asks the host to restart the node once this run's result has been reported, so a
   * successful reboot never ends as a timeout: mode "reboot" or "kexec". Only during an
   * action run (EP_EINVAL otherwise, or for another mode). The host decides when and how;
   * `edgeprov actions run` only says what would happen. */
  int32_t (*request_reboot)(ep_ctx *ctx, const char *mode);

  /* ---- ABI 1.2 ---- */

  /* Asks the host to serve the files of directory (absolute path) on its embedded HTTPS
   * server under url_path ("/boot": a file d/x.efi is GET /boot/x.efi): GET and HEAD with
   * Range, ETag and If-None-Match; nothing outside directory is ever served (no "..", no
   * symbolic links, no hidden files). The directory is opened per request, so replacing it
   * (a rename) takes effect at once. Only during init; at most 4 per plugin. In a program
   * without an HTTPS server (the CLI, the agent) it is recorded and does nothing. */
  int32_t (*publish_directory)(ep_ctx *ctx, const char *url_path, const char *directory);

  /* ---- ABI 1.6 ---- */

  /* Hands a secret the node made to the orchestrator over the node's authenticated channel;
   * kind "recovery_key" (a disk's recovery key: NodeService/StoreRecoveryKey, kept for the
   * node's own host). value is NUL-terminated text; the host copies it, never logs it, and
   * the plugin wipes its own copy. Blocking; on the thread the host called. Returns 0 once
   * the orchestrator stored it; EP_EINVAL outside an action run or for another kind;
   * EP_ENOTSUP in a run that is not a node's (`edgeprov actions run`); else the call's
   * failure (EP_EIO, EP_EPERM, ...). Message set in every failure. */
  int32_t (*store_secret)(ep_ctx *ctx, const char *kind, const char *value);
} ep_host;

/* True when the host table is new enough to carry the named member. */
#define EP_HOST_HAS(host, member)                                                          \
  ((host)->struct_size >= (uint32_t)(offsetof(ep_host, member) + sizeof((host)->member)))

/* Formats and logs one line through host->log. Lines longer than 1 KiB are cut. */
static inline void ep_logf(const ep_host *host, ep_ctx *ctx, int32_t level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline void ep_logf(const ep_host *host, ep_ctx *ctx, int32_t level, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  host->log(ctx, level, line);
}

/* Formats a message, records it with host->set_error and returns code, so a failure path
 * reads `return ep_failf(host, ctx, EP_EINVAL, "...", ...);`. */
static inline int32_t ep_failf(const ep_host *host, ep_ctx *ctx, int32_t code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline int32_t ep_failf(const ep_host *host, ep_ctx *ctx, int32_t code, const char *fmt, ...) {
  char message[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  host->set_error(ctx, code, message);
  return code;
}

#ifdef __cplusplus
}
#endif
#endif
