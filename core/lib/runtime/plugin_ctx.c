/* core: the plugin call context, see plugin_ctx.h. */
#include "runtime/plugin_ctx.h"

#include <string.h>

void ep_ctx_init(ep_ctx *ctx, const char *plugin_id, const ep_fields *settings, ep_capability_lookup capabilities) {
  memset(ctx, 0, sizeof *ctx);
  ctx->plugin_id = plugin_id;
  ctx->settings = settings;
  ctx->capabilities = capabilities;
}

const char *ep_ctx_error(const ep_ctx *ctx, const char *fallback) {
  return ctx->error_message[0] ? ctx->error_message : fallback;
}
