/* Example out-of-tree node action: vendor.stamp writes a line of text at the start of the
 * node's disk (a stand-in for whatever a vendor's OS needs done on the node). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <edgeprov/edgeprov.h>

typedef struct vendor_state {
  const ep_host *host;
  ep_ctx *ctx;
} vendor_state;

static int32_t stamp_run(void *state, ep_ctx *ctx) {
  const ep_host *host = ((vendor_state *)state)->host;
  const char *target = NULL, *text = NULL;
  if (host->param_string(ctx, "target", &target) < 0 || host->param_string(ctx, "text", &text) < 0)
    return ep_failf(host, ctx, EP_EINVAL, "parameters 'target' and 'text' are required");
  int fd = open(target, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ep_failf(host, ctx, -errno, "cannot open %s: %s", target, strerror(errno));
  size_t len = strlen(text);
  ssize_t n = pwrite(fd, text, len, 0);
  int err = n < 0 ? errno : 0;
  if (n == (ssize_t)len && fsync(fd) < 0) err = errno;
  close(fd);
  if (err) return ep_failf(host, ctx, -err, "cannot write %s: %s", target, strerror(err));
  if (n != (ssize_t)len) return ep_failf(host, ctx, EP_EIO, "%s: short write", target);
  host->progress(ctx, len, len, "stamped");
  ep_logf(host, ctx, EP_LOG_INFO, "%s: stamped (%zu bytes)", target, len);
  return 0;
}

static const ep_field_decl stamp_params[] = {
    EP_FIELD_STRING_DECL("target", NULL, EP_FIELD_REQUIRED, 4096, "disk (or file) to stamp"),
    EP_FIELD_STRING_DECL("text", NULL, EP_FIELD_REQUIRED, 256, "what to write at its start"),
};

static const ep_action vendor_actions[] = {
    {
        .struct_size = sizeof(ep_action),
        .name = "vendor.stamp",
        .description = "Write a line of text at the start of the node's disk",
        .params = stamp_params,
        .params_count = EP_COUNT(stamp_params),
        .run = stamp_run,
    },
};

static const ep_actions vendor_actions_table = {
    EP_ACTIONS_HEADER,
    .actions = vendor_actions,
    .actions_count = EP_COUNT(vendor_actions),
};

static int32_t vendor_init(const ep_host *host, ep_ctx *ctx, void **ret_state) {
  vendor_state *s = host->alloc(ctx, sizeof *s);
  if (!s) return ep_failf(host, ctx, EP_ENOMEM, "out of memory");
  s->host = host;
  s->ctx = ctx;
  *ret_state = s;
  return 0;
}

static void vendor_deinit(void *state) {
  vendor_state *s = state;
  s->host->free(s->ctx, s);
}

static const void *vendor_get_capability(void *state, const char *id) {
  (void)state;
  return strcmp(id, EP_CAP_ACTIONS) == 0 ? &vendor_actions_table : NULL;
}

static const char *const vendor_capabilities[] = {EP_CAP_ACTIONS, NULL};

EP_PLUGIN_EXPORT const ep_plugin_entry ep_plugin = {
    EP_PLUGIN_ENTRY_HEADER,
    .id = "vendor-actions",
    .version = VENDOR_VERSION,
    .description = "Example: the vendor's node action vendor.stamp",
    .capabilities = vendor_capabilities,
    .init = vendor_init,
    .deinit = vendor_deinit,
    .get_capability = vendor_get_capability,
};
