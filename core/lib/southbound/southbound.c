/* core: the southbound gRPC server, see southbound.h. */
#define _GNU_SOURCE /* explicit_bzero */
#include "southbound/southbound.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "southbound/node_service.h"
#include "southbound/onboarding.h"
#include "net/rpc.h"
#include "southbound/workflow_service.h"

struct ep_southbound {
  ep_rpc_server *rpc;
  ep_onboarding *onboarding;
  ep_node_service *node_service;
  ep_workflow_service *workflow_service;
  int port;
};

static bool loopback(const char *address) {
  return strncmp(address, "127.", 4) == 0 || strncmp(address, "[::1]:", 6) == 0 || strncmp(address, "localhost:", 10) == 0;
}

/* Listens on listen.grpc with TLS, or in plaintext on loopback only. */
static int listen_southbound(ep_southbound *sb, const ep_config *config) {
  if (!config->tls_cert) {
    if (!loopback(config->listen_grpc))
      return ep_error_set(EP_EINVAL, "'listen.grpc' %s is not a loopback address: nodes need tls.cert and tls.key",
                          config->listen_grpc);
    ep_log(EP_LOG_WARN, "southbound", "no tls.cert: nodes are served without TLS on %s (loopback only)",
           config->listen_grpc);
    return ep_rpc_server_listen(sb->rpc, config->listen_grpc, NULL, &sb->port);
  }
  char *cert = NULL, *key = NULL;
  int r = ep_config_read_tls_files(config, &cert, &key);
  ep_rpc_tls tls = {.cert_pem = cert, .key_pem = key};
  if (r == 0) r = ep_rpc_server_listen(sb->rpc, config->listen_grpc, &tls, &sb->port);
  if (key) explicit_bzero(key, strlen(key));
  free(cert);
  free(key);
  return r;
}

int ep_southbound_start(ep_southbound **out, ep_inventory *inv, const ep_plugin_set *plugins, const ep_config *config) {
  ep_southbound *sb = calloc(1, sizeof *sb);
  if (!sb) return ep_error_set(EP_ENOMEM, "out of memory");
  const ep_config_southbound *b = &config->southbound;
  ep_rpc_server_options options = {
      .max_message = EP_SOUTHBOUND_MESSAGE_MAX,
      .workers = (int)b->workers,
      .calls_max = (int)b->calls_max,
      .streams_per_connection = (int)b->streams_per_connection,
      .handshake_timeout_ms = (int)b->handshake_timeout_s * 1000,
      .keepalive_ms = (int)b->keepalive_s * 1000,
      .keepalive_timeout_ms = 20000,
      .idle_timeout_ms = (int)b->idle_timeout_s * 1000,
      .memory_max = (size_t)b->memory_mb << 20,
  };
  int r = ep_rpc_server_new(&sb->rpc, &options);
  if (r == 0) r = ep_onboarding_new(&sb->onboarding, inv, plugins, config);
  if (r == 0) r = ep_onboarding_register(sb->onboarding, sb->rpc);
  if (r == 0) r = ep_node_service_new(&sb->node_service, inv, plugins);
  if (r == 0) r = ep_node_service_register(sb->node_service, sb->rpc);
  if (r == 0) r = ep_workflow_service_new(&sb->workflow_service, inv, plugins);
  if (r == 0) r = ep_workflow_service_register(sb->workflow_service, sb->rpc);
  if (r == 0) r = listen_southbound(sb, config);
  if (r == 0) r = ep_rpc_server_start(sb->rpc);
  if (r < 0) {
    ep_southbound_stop(sb, 0);
    return r;
  }
  *out = sb;
  return 0;
}

int ep_southbound_port(const ep_southbound *sb) { return sb->port; }

void ep_southbound_stop(ep_southbound *sb, int grace_ms) {
  if (!sb) return;
  ep_rpc_server_free(sb->rpc, grace_ms);
  ep_node_service_free(sb->node_service);
  ep_workflow_service_free(sb->workflow_service);
  ep_onboarding_free(sb->onboarding);
  free(sb);
}
