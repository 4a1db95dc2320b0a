/* core: the client side of the management API, see mgmt_client.h. */
#define _GNU_SOURCE /* asprintf, strdup */
#include "northbound/mgmt_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprov/v1/management.pb-c.h"
#include "base/error.h"
#include "northbound/mgmt.h"
#include "net/rpc.h"
#include "base/files.h"

struct ep_mgmt_client {
  char *address;
  char *authorization; /* "Bearer <token>", NULL on a UNIX socket */
  ep_rpc_channel *channel;
};

int ep_mgmt_client_new(ep_mgmt_client **out, const char *address, const char *ca_file, const char *token) {
  ep_mgmt_client *client = calloc(1, sizeof *client);
  if (!client || !(client->address = strdup(address))) {
    free(client);
    return ep_error_set(EP_ENOMEM, "out of memory");
  }
  char *ca = NULL;
  int r = 0;
  bool tcp = strncmp(address, "unix:", 5) != 0;
  if (tcp) {
    if (!ca_file || !token)
      r = ep_error_set(EP_EINVAL, "%s is a TCP address: pass --ca FILE (the server's CA) and --token-file FILE", address);
    else if ((r = ep_read_text_file(&ca, ca_file, 1 << 20, EP_FILE_ANY_ACCESS)) == 0 &&
             asprintf(&client->authorization, "Bearer %s", token) < 0)
      r = ep_error_set(EP_ENOMEM, "out of memory");
  }
  if (r == 0) {
    ep_rpc_tls tls = {.ca_pem = ca};
    r = ep_rpc_channel_new(&client->channel, address, tcp ? &tls : NULL, EP_MGMT_MESSAGE_MAX);
  }
  free(ca);
  if (r < 0) {
    ep_mgmt_client_free(client);
    return r;
  }
  *out = client;
  return 0;
}

void ep_mgmt_client_free(ep_mgmt_client *client) {
  if (!client) return;
  ep_rpc_channel_free(client->channel);
  if (client->authorization) {
    explicit_bzero(client->authorization, strlen(client->authorization));
    free(client->authorization);
  }
  free(client->address);
  free(client);
}

/* Turns a failed status into an error for the operator. */
static int call_failed(const ep_mgmt_client *client, const char *method, const ep_rpc_result *result) {
  if (result->status == EP_STATUS_UNAVAILABLE && result->unreachable)
    return ep_error_set(EP_EIO,
                        EP_MGMT_UNREACHABLE_PREFIX "%s (%s). Is it running? Start it with: edgeprovd [--config FILE] "
                        "(or ./scripts/quickstart.sh)",
                        client->address, result->message);
  if (result->status == EP_STATUS_DEADLINE_EXCEEDED)
    return ep_error_set(EP_ETIMEDOUT, "%s: edgeprovd at %s did not answer in time", method, client->address);
  return ep_error_set(ep_error_from_status(result->status), "%s", result->message[0] ? result->message : ep_status_name(result->status));
}

static size_t metadata_of(const ep_mgmt_client *client, ep_rpc_metadata *md) {
  if (!client->authorization) return 0;
  md->key = "authorization";
  md->value = client->authorization;
  return 1;
}

static uint8_t *pack(const ProtobufCMessage *message, size_t *ret_len) {
  size_t len = protobuf_c_message_get_packed_size(message);
  uint8_t *data = malloc(len ? len : 1);
  if (data) protobuf_c_message_pack(message, data);
  *ret_len = len;
  return data;
}

int ep_mgmt_client_call(ep_mgmt_client *client, const char *method, const ProtobufCMessage *request,
                        const ProtobufCMessageDescriptor *reply_type, ProtobufCMessage **ret_reply) {
  char path[128];
  snprintf(path, sizeof path, "%s%s", EP_MGMT_SERVICE, method);
  size_t len = 0;
  uint8_t *data = pack(request, &len);
  if (!data) return ep_error_set(EP_ENOMEM, "out of memory");
  ep_rpc_metadata md;
  ep_rpc_result result;
  int r = ep_rpc_unary(client->channel, path, &md, metadata_of(client, &md), data, len, EP_MGMT_CALL_TIMEOUT_MS, &result);
  free(data);
  if (r < 0) return r;
  if (result.status != EP_STATUS_OK) {
    r = call_failed(client, method, &result);
  } else {
    ProtobufCMessage *reply = protobuf_c_message_unpack(reply_type, NULL, result.len, result.data);
    if (!reply)
      r = ep_error_set(EP_EIO, "%s: the reply is not a valid %s", method, reply_type->name);
    else
      *ret_reply = reply;
  }
  ep_rpc_result_clear(&result);
  return r;
}

int ep_mgmt_client_watch(ep_mgmt_client *client, uint64_t after_revision, int follow,
                         int (*on_event)(void *data, const ep_inv_event *event), void *data) {
  Edgeprov__V1__WatchEventsRequest req = EDGEPROV__V1__WATCH_EVENTS_REQUEST__INIT;
  req.after_revision = after_revision;
  req.follow = follow != 0;
  size_t len = 0;
  uint8_t *bytes = pack(&req.base, &len);
  if (!bytes) return ep_error_set(EP_ENOMEM, "out of memory");
  ep_rpc_metadata md;
  ep_rpc_stream *stream = NULL;
  int r = ep_rpc_stream_open(&stream, client->channel, EP_MGMT_SERVICE "WatchEvents", &md, metadata_of(client, &md),
                             bytes, len, follow ? 0 : EP_MGMT_CALL_TIMEOUT_MS);
  free(bytes);
  if (r < 0) return r;
  uint8_t *message = NULL;
  size_t message_len = 0;
  bool stopped = false;
  while (!stopped && (r = ep_rpc_stream_read(stream, &message, &message_len)) == 1) {
    Edgeprov__V1__Event *event = edgeprov__v1__event__unpack(NULL, message_len, message);
    free(message);
    if (!event) {
      r = ep_error_set(EP_EIO, "WatchEvents: a message is not a valid Event");
      break;
    }
    stopped = on_event(data, event) != 0;
    edgeprov__v1__event__free_unpacked(event, NULL);
  }
  ep_rpc_result result;
  ep_rpc_stream_close(stream, &result);
  if (r < 0) return r;
  if (!stopped && result.status != EP_STATUS_OK) return call_failed(client, "WatchEvents", &result);
  return 0;
}
