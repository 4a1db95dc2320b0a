/* Fuzzes the decoding of what the inventory stores and what nodes send (protobuf-c): a
 * message that decodes must encode again to its declared size. */
#include <stdint.h>
#include <stdlib.h>

#include "edgeprov/v1/inventory.pb-c.h"
#include "edgeprov/v1/node.pb-c.h"
#include "edgeprov/v1/workflow.pb-c.h"
#include "onboardingmgr/v1/onboarding.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void roundtrip(const ProtobufCMessageDescriptor *descriptor, const uint8_t *data, size_t size) {
  ProtobufCMessage *m = protobuf_c_message_unpack(descriptor, NULL, size, data);
  if (!m) return;
  size_t len = protobuf_c_message_get_packed_size(m);
  uint8_t *out = malloc(len ? len : 1);
  if (!out || protobuf_c_message_pack(m, out) != len) abort();
  free(out);
  protobuf_c_message_free_unpacked(m, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  roundtrip(&edgeprov__v1__host__descriptor, data, size);
  roundtrip(&edgeprov__v1__instance__descriptor, data, size);
  roundtrip(&onboardingmgr__v1__onboard_node_stream_request__descriptor, data, size);
  roundtrip(&edgeprov__v1__report_status_request__descriptor, data, size);
  roundtrip(&edgeprov__v1__workflow_stream_request__descriptor, data, size);
  roundtrip(&edgeprov__v1__workflow__descriptor, data, size);
  return 0;
}
