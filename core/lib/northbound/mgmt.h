/* core: the management API (edgeprov.v1.Management) without its transport: decodes a
 * request, calls the inventory, encodes the reply. The daemon binds it to the rpc helper. */
#ifndef EP_CORE_MGMT_H
#define EP_CORE_MGMT_H

#include <stddef.h>
#include <stdint.h>

#include "net/status.h"
#include "provisioning/inventory.h"

struct ep_plugin_set;

#define EP_MGMT_SERVICE "/edgeprov.v1.Management/"
#define EP_MGMT_MESSAGE_MAX (4 * 1024 * 1024) /* largest request or reply accepted */

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
