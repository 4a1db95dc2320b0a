/* A node's side of edgeprov.v1.NodeService/StoreRecoveryKey for tests/integration/recovery_keys.sh:
 * sends KEY with the bearer TOKEN ("-": none) over TLS trusting CA.pem and prints
 * "code=<gRPC status> <message>". The agent's FDE action is the real caller (issue 20).
 * Usage: recovery_key_client HOST:PORT CA.pem TOKEN|- KEY */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/files.h"
#include "edgeprov/v1/node.pb-c.h"
#include "net/node_api.h"
#include "net/rpc.h"

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s HOST:PORT CA.pem TOKEN|- KEY\n", argv[0]);
    return 2;
  }
  char *ca = NULL;
  if (ep_read_text_file(&ca, argv[2], 1 << 20, EP_FILE_ANY_ACCESS) < 0) {
    fprintf(stderr, "%s\n", ep_error_message());
    return 1;
  }
  ep_rpc_tls tls = {.ca_pem = ca};
  ep_rpc_channel *channel = NULL;
  if (ep_rpc_channel_new(&channel, argv[1], &tls, 0) < 0) {
    fprintf(stderr, "%s\n", ep_error_message());
    return 1;
  }
  static char bearer[EP_NODE_TOKEN_MAX + 16];
  snprintf(bearer, sizeof bearer, "Bearer %s", argv[3]);
  ep_rpc_metadata auth = {"authorization", bearer};
  Edgeprov__V1__StoreRecoveryKeyRequest req = EDGEPROV__V1__STORE_RECOVERY_KEY_REQUEST__INIT;
  req.recovery_key = argv[4];
  size_t len = edgeprov__v1__store_recovery_key_request__get_packed_size(&req);
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf) return 1;
  edgeprov__v1__store_recovery_key_request__pack(&req, buf);
  ep_rpc_result result;
  int r = ep_rpc_unary(channel, EP_NODE_SERVICE_STORE_RECOVERY_KEY, &auth, strcmp(argv[3], "-") ? 1 : 0, buf, len,
                       15000, &result);
  if (r < 0) {
    fprintf(stderr, "%s\n", ep_error_message());
  } else {
    printf("code=%d %s\n", result.status, result.message);
    ep_rpc_result_clear(&result);
  }
  free(buf);
  ep_rpc_channel_free(channel);
  free(ca);
  return r < 0;
}
