/* core: the host-services table, see host_services.h. */
#include "runtime/host_services.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/config.h"
#include "net/http_client.h"
#include "base/log.h"

/* Largest single allocation a plugin may ask for (1 GiB). */
#define HOST_ALLOC_MAX (UINT64_C(1) << 30)

static void host_log(ep_ctx *ctx, int32_t level, const char *message) {
  ep_log_message(level, ctx && ctx->plugin_id ? ctx->plugin_id : "plugin", message ? message : "");
  if (ctx && ctx->log_line) ctx->log_line(ctx->log_data, level, message ? message : "");
}

static void *host_alloc(ep_ctx *ctx, uint64_t size) {
  (void)ctx;
  if (size == 0 || size > HOST_ALLOC_MAX) return NULL;
  return malloc((size_t)size);
}

static void host_free(ep_ctx *ctx, void *ptr) {
  (void)ctx;
  free(ptr);
}

static int32_t host_setting_string(ep_ctx *ctx, const char *name, const char **out) {
  return ctx && ctx->settings ? ep_fields_get_string(ctx->settings, name, out) : EP_EINVAL;
}

static int32_t host_setting_int(ep_ctx *ctx, const char *name, int64_t *out) {
  return ctx && ctx->settings ? ep_fields_get_int(ctx->settings, name, out) : EP_EINVAL;
}

static int32_t host_setting_bool(ep_ctx *ctx, const char *name, int32_t *out) {
  return ctx && ctx->settings ? ep_fields_get_bool(ctx->settings, name, out) : EP_EINVAL;
}

static int32_t host_param_string(ep_ctx *ctx, const char *name, const char **out) {
  return ctx && ctx->params ? ep_fields_get_string(ctx->params, name, out) : EP_EINVAL;
}

static int32_t host_param_int(ep_ctx *ctx, const char *name, int64_t *out) {
  return ctx && ctx->params ? ep_fields_get_int(ctx->params, name, out) : EP_EINVAL;
}

static int32_t host_param_bool(ep_ctx *ctx, const char *name, int32_t *out) {
  return ctx && ctx->params ? ep_fields_get_bool(ctx->params, name, out) : EP_EINVAL;
}

static void host_set_error(ep_ctx *ctx, int32_t code, const char *message) {
  /* The calling thread's error is what a caller of a capability function reads: it cannot
   * be overwritten by another thread using the same plugin. message may be that very
   * thread's error text (the host relaying a core error), so it is copied first. */
  char copy[EP_ERROR_MESSAGE_MAX];
  snprintf(copy, sizeof copy, "%s", message ? message : "");
  ep_error_set(code, "%s", copy);
  if (!ctx) return;
  ctx->error_code = code;
  snprintf(ctx->error_message, sizeof ctx->error_message, "%s", copy);
}

/* Records an error for the plugin's caller, as set_error does, and returns code. */
static int32_t plugin_error(ep_ctx *ctx, int32_t code, const char *message) {
  host_set_error(ctx, code, message);
  return code;
}

static void host_progress(ep_ctx *ctx, uint64_t done, uint64_t total, const char *message) {
  if (ctx && ctx->progress) ctx->progress(ctx->progress_data, done, total, message);
}

static int32_t host_cancelled(ep_ctx *ctx) {
  return ctx && ctx->cancel && atomic_load(ctx->cancel) ? 1 : 0;
}

static const void *host_capability(ep_ctx *ctx, const char *capability_id, void **ret_state) {
  if (!ctx || !ctx->capabilities.find || !capability_id) return NULL;
  void *state = NULL;
  const void *table = ctx->capabilities.find(ctx->capabilities.set, capability_id, &state);
  if (table && ret_state) *ret_state = state;
  return table;
}

static int32_t host_site_string(ep_ctx *ctx, const char *name, const char **out) {
  if (!ctx || !ctx->config || !name) return EP_EINVAL;
  if (strcmp(name, "paths.data") == 0) {
    *out = ctx->config->data_dir;
    return 0;
  }
  if (strncmp(name, "run.", 4) == 0) {
    const char *value = NULL;
    if (strcmp(name, "run.target_disk") == 0) value = ctx->run_target_disk;
    else if (strcmp(name, "run.scratch_dir") == 0) value = ctx->run_scratch_dir;
    else if (strcmp(name, "run.deadline") == 0) value = ctx->run_deadline;
    else if (strcmp(name, "run.tpm") == 0) value = ctx->run_tpm;
    else return EP_EINVAL;
    if (!ctx->params || !value || !*value) return EP_ENOENT;
    *out = value;
    return 0;
  }
  if (strcmp(name, "artifacts.directory") == 0) {
    *out = ctx->config->artifacts.directory;
    return 0;
  }
  if (strcmp(name, "provisioning.mode") == 0) {
    *out = ep_provisioning_mode_name(ctx->config->mode);
    return 0;
  }
  return EP_EINVAL;
}

static int32_t host_http_request(ep_ctx *ctx, const ep_http_request *request, ep_http_response_fn visit, void *data) {
  if (!request || request->struct_size < offsetof(ep_http_request, response_max) + sizeof request->response_max)
    return plugin_error(ctx, EP_EINVAL, "http_request: request struct too small");
  ep_http_call call = {.method = request->method, .url = request->url, .headers = request->headers,
                       .body = request->body, .body_len = (size_t)request->body_len, .ca_file = request->ca_file,
                       .basic_user = request->basic_user, .basic_password = request->basic_password,
                       .timeout_ms = request->timeout_ms > 0 && request->timeout_ms < INT32_MAX ? (int)request->timeout_ms : 0,
                       .response_max = (size_t)request->response_max};
  ep_http_reply reply;
  int32_t r = ep_http_perform(&call, &reply);
  if (r < 0) return plugin_error(ctx, r, ep_error_message());
  ep_http_response response = {.struct_size = sizeof response, .status = reply.status,
                               .body = (const uint8_t *)reply.body, .body_len = reply.len,
                               .location = reply.location, .content_type = reply.content_type};
  r = visit ? visit(data, &response) : 0;
  ep_http_reply_clear(&reply);
  return r;
}

typedef struct fetch_relay {
  ep_fetch_data_fn on_data;
  void *data;
  const ep_fetch_info *info;
  ep_fetch_status *status; /* kept current for the plugin while data arrives */
} fetch_relay;

static int relay_data(void *data, const uint8_t *bytes, size_t len) {
  const fetch_relay *relay = data;
  if (relay->status) {
    relay->status->http_status = relay->info->http_status;
    relay->status->total = relay->info->total;
    relay->status->received = relay->info->received;
  }
  return relay->on_data(relay->data, bytes, len);
}

static int32_t host_fetch(ep_ctx *ctx, const ep_fetch_request *request, ep_fetch_data_fn on_data, void *data,
                          ep_fetch_status *status) {
  if (!request || request->struct_size < offsetof(ep_fetch_request, stall_timeout_ms) + sizeof request->stall_timeout_ms ||
      !on_data)
    return plugin_error(ctx, EP_EINVAL, "fetch: request struct too small or no on_data");
  ep_fetch_call call = {.url = request->url, .ca_file = request->ca_file, .proxy = request->proxy,
                        .offset = request->offset,
                        .connect_timeout_ms = request->connect_timeout_ms > 0 && request->connect_timeout_ms < INT32_MAX
                                                  ? (int)request->connect_timeout_ms : 0,
                        .stall_timeout_ms = request->stall_timeout_ms > 0 && request->stall_timeout_ms < INT32_MAX
                                                ? (int)request->stall_timeout_ms : 0,
                        .cancel = ctx ? ctx->cancel : NULL};
  ep_fetch_info info;
  bool live = status && status->struct_size >= sizeof *status;
  fetch_relay relay = {on_data, data, &info, live ? status : NULL};
  int32_t r = ep_http_fetch(&call, relay_data, &relay, &info);
  if (live) {
    status->http_status = info.http_status;
    status->total = info.total;
    status->received = info.received;
    snprintf(status->message, sizeof status->message, "%s", r < 0 ? ep_error_message() : "");
  }
  /* The thread's last message is the host's, or on_data's own when it stopped the fetch. */
  return r < 0 ? plugin_error(ctx, r, ep_error_message()) : 0;
}

static int32_t host_request_reboot(ep_ctx *ctx, const char *mode) {
  if (!ctx || !ctx->params) return plugin_error(ctx, EP_EINVAL, "request_reboot: only during an action run");
  if (!mode || (strcmp(mode, "reboot") != 0 && strcmp(mode, "kexec") != 0))
    return plugin_error(ctx, EP_EINVAL, "request_reboot: mode must be 'reboot' or 'kexec'");
  snprintf(ctx->reboot, sizeof ctx->reboot, "%s", mode);
  return 0;
}

static int32_t host_publish_directory(ep_ctx *ctx, const char *url_path, const char *directory) {
  if (!ctx || !ctx->publishing) return plugin_error(ctx, EP_EINVAL, "publish_directory: only during init");
  if (!url_path || url_path[0] != '/' || strlen(url_path) >= sizeof ctx->published[0].url_path ||
      strspn(url_path, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/-_.") != strlen(url_path) ||
      strstr(url_path, "..") || strstr(url_path, "//") || (strlen(url_path) > 1 && url_path[strlen(url_path) - 1] == '/'))
    return plugin_error(ctx, EP_EINVAL, "publish_directory: url_path must look like /boot ([A-Za-z0-9/._-], no '..', no trailing '/')");
  if (!directory || directory[0] != '/' || strlen(directory) >= sizeof ctx->published[0].directory)
    return plugin_error(ctx, EP_EINVAL, "publish_directory: directory must be an absolute path");
  if (ctx->published_count == EP_CTX_PUBLISHED_MAX)
    return plugin_error(ctx, EP_ERANGE, "publish_directory: at most 4 directories per plugin");
  ep_published_dir *d = &ctx->published[ctx->published_count++];
  snprintf(d->url_path, sizeof d->url_path, "%s", url_path);
  snprintf(d->directory, sizeof d->directory, "%s", directory);
  return 0;
}

static int32_t host_store_secret(ep_ctx *ctx, const char *kind, const char *value) {
  if (!ctx || !ctx->params) return plugin_error(ctx, EP_EINVAL, "store_secret: only during an action run on a node");
  if (!kind || strcmp(kind, "recovery_key") != 0)
    return plugin_error(ctx, EP_EINVAL, "store_secret: kind must be 'recovery_key'");
  if (!value || !*value) return plugin_error(ctx, EP_EINVAL, "store_secret: empty value");
  if (!ctx->store_secret)
    return plugin_error(ctx, EP_ENOTSUP,
                        "store_secret: only the node agent hands secrets to the orchestrator (this run is not a node's)");
  int32_t r = ctx->store_secret(ctx->store_secret_data, kind, value);
  return r < 0 ? plugin_error(ctx, r, ep_error_message()) : 0;
}

static const ep_host host_table = {
    .struct_size = sizeof(ep_host),
    .abi_major = EP_ABI_MAJOR,
    .abi_minor = EP_ABI_MINOR,
    .log = host_log,
    .alloc = host_alloc,
    .free = host_free,
    .setting_string = host_setting_string,
    .setting_int = host_setting_int,
    .setting_bool = host_setting_bool,
    .set_error = host_set_error,
    .progress = host_progress,
    .cancelled = host_cancelled,
    .param_string = host_param_string,
    .param_int = host_param_int,
    .param_bool = host_param_bool,
    .capability = host_capability,
    .site_string = host_site_string,
    .http_request = host_http_request,
    .fetch = host_fetch,
    .request_reboot = host_request_reboot,
    .publish_directory = host_publish_directory,
    .store_secret = host_store_secret,
};

const ep_host *ep_host_table(void) { return &host_table; }
