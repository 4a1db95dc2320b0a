/* core: the client side of the management API, used by the edgeprov CLI. */
#ifndef EP_CORE_MGMT_CLIENT_H
#define EP_CORE_MGMT_CLIENT_H

#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "provisioning/inventory.h"

#define EP_MGMT_CALL_TIMEOUT_MS 15000

typedef struct ep_mgmt_client ep_mgmt_client;

/* Connects to edgeprovd's management API at address ("unix:/path" or "host:port"). A TCP
 * address uses TLS with ca_file (PEM) and sends token as the operator's bearer token; both
 * may be NULL for a UNIX socket. Connection is lazy: errors show on the first call. */
int ep_mgmt_client_new(ep_mgmt_client **out, const char *address, const char *ca_file, const char *token);
void ep_mgmt_client_free(ep_mgmt_client *client);

/* How every error for an edgeprovd that cannot be reached (its socket missing, the connection
 * refused, TLS failing; EP_EIO) begins: the CLI's "daemon unreachable" exit status keys on it. */
#define EP_MGMT_UNREACHABLE_PREFIX "cannot reach edgeprovd at "

/* Calls method ("AddHost") with request and decodes the reply as reply_type into
 * *ret_reply (free with protobuf_c_message_free_unpacked). On failure returns a negative
 * code with a message for the operator: the server's own message for a refused call, or
 * how to start edgeprovd when nothing listens at the address. */
int ep_mgmt_client_call(ep_mgmt_client *client, const char *method, const ProtobufCMessage *request,
                        const ProtobufCMessageDescriptor *reply_type, ProtobufCMessage **ret_reply);

/* Streams inventory events after after_revision to on_event until the server ends the
 * stream (follow false: when it has sent what it has) or on_event returns non-zero. */
int ep_mgmt_client_watch(ep_mgmt_client *client, uint64_t after_revision, int follow,
                         int (*on_event)(void *data, const ep_inv_event *event), void *data);

#endif
