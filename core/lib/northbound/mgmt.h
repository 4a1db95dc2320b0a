/* core: the management API (edgeprov.v1.Management) without its transport: decodes a
 * request, calls the inventory, encodes the reply. The daemon binds it to the rpc helper. */
#ifndef EP_CORE_MGMT_H
#define EP_CORE_MGMT_H

#include <stddef.h>
#include <stdint.h>

#include "provisioning/inventory.h"

struct ep_plugin_set;

#define EP_MGMT_SERVICE "/edgeprov.v1.Management/"
#define EP_MGMT_MESSAGE_MAX (4 * 1024 * 1024) /* largest request or reply accepted */

/* gRPC status codes the API answers with (numbers as in grpc/status.h). */
enum {
  EP_STATUS_OK = 0,
  EP_STATUS_CANCELLED = 1,
  EP_STATUS_INVALID_ARGUMENT = 3,
  EP_STATUS_DEADLINE_EXCEEDED = 4,
  EP_STATUS_NOT_FOUND = 5,
  EP_STATUS_ALREADY_EXISTS = 6,
  EP_STATUS_PERMISSION_DENIED = 7,
  EP_STATUS_RESOURCE_EXHAUSTED = 8,
  EP_STATUS_FAILED_PRECONDITION = 9,
  EP_STATUS_ABORTED = 10,
  EP_STATUS_OUT_OF_RANGE = 11,
  EP_STATUS_UNIMPLEMENTED = 12,
  EP_STATUS_INTERNAL = 13,
  EP_STATUS_UNAVAILABLE = 14,
  EP_STATUS_UNAUTHENTICATED = 16,
};

/* The gRPC status that reports a negative EP_E* code, and back. */
int ep_status_from_error(int code);
int ep_error_from_status(int status);

/* Name of a gRPC status code ("NOT_FOUND"). */
const char *ep_status_name(int status);

/* A unary reply: status, its message (empty on OK) and the encoded response (malloc'd,
 * freed by ep_mgmt_reply_clear). */
typedef struct ep_mgmt_reply {
  int status;
  char message[1024];
  uint8_t *data;
  size_t len;
} ep_mgmt_reply;

void ep_mgmt_reply_clear(ep_mgmt_reply *reply);

/* Handles one unary call of method (the name after EP_MGMT_SERVICE, e.g. "AddHost").
 * plugins gives the identity plugin, whose credentials of a host are revoked when the host
 * is deleted or invalidated.
 * Always fills *reply: UNIMPLEMENTED for an unknown method, INVALID_ARGUMENT for a request
 * that does not decode or a field that does not validate (the message names it). */
void ep_mgmt_unary(ep_inventory *inv, const struct ep_plugin_set *plugins, const char *method, const uint8_t *request,
                   size_t len, ep_mgmt_reply *reply);

/* True when method is the streaming WatchEvents. */
int ep_mgmt_is_watch(const char *method);

/* Names of the unary methods, NULL-terminated (for registering them). */
extern const char *const ep_mgmt_unary_methods[];

#endif
