/* core: gRPC status codes, see status.h. */
#include "net/status.h"

#include <edgeprov/storage.h> /* EP_ECONFLICT, EP_ECOMPACTED */

#include "base/error.h"

int ep_status_from_error(int code) {
  switch (code) {
  case 0: return EP_STATUS_OK;
  case EP_EINVAL:
  case EP_ERANGE: return EP_STATUS_INVALID_ARGUMENT;
  case EP_ENOENT: return EP_STATUS_NOT_FOUND;
  case EP_EEXIST: return EP_STATUS_ALREADY_EXISTS;
  case EP_EPERM: return EP_STATUS_FAILED_PRECONDITION;
  case EP_ECONFLICT: return EP_STATUS_ABORTED;
  /* what etcd answers for a compacted revision: "start over from a fresh list", not a
   * failure worth retrying as is */
  case EP_ECOMPACTED: return EP_STATUS_OUT_OF_RANGE;
  case EP_ENOMEM: return EP_STATUS_RESOURCE_EXHAUSTED;
  /* an input/output failure (the store's database unreachable, a lost connection) is
   * transient: the caller may retry, on this replica or another */
  case EP_EIO: return EP_STATUS_UNAVAILABLE;
  case EP_ETIMEDOUT: return EP_STATUS_DEADLINE_EXCEEDED;
  case EP_ECANCELED: return EP_STATUS_CANCELLED;
  case EP_ENOTSUP: return EP_STATUS_UNIMPLEMENTED;
  default: return EP_STATUS_INTERNAL;
  }
}

int ep_error_from_status(int status) {
  switch (status) {
  case EP_STATUS_OK: return 0;
  case EP_STATUS_INVALID_ARGUMENT: return EP_EINVAL;
  case EP_STATUS_NOT_FOUND: return EP_ENOENT;
  case EP_STATUS_ALREADY_EXISTS: return EP_EEXIST;
  case EP_STATUS_FAILED_PRECONDITION:
  case EP_STATUS_PERMISSION_DENIED:
  case EP_STATUS_UNAUTHENTICATED: return EP_EPERM;
  case EP_STATUS_ABORTED: return EP_ECONFLICT;
  case EP_STATUS_OUT_OF_RANGE: return EP_ECOMPACTED;
  case EP_STATUS_RESOURCE_EXHAUSTED: return EP_ENOMEM;
  case EP_STATUS_DEADLINE_EXCEEDED: return EP_ETIMEDOUT;
  case EP_STATUS_CANCELLED: return EP_ECANCELED;
  case EP_STATUS_UNIMPLEMENTED: return EP_ENOTSUP;
  default: return EP_EIO;
  }
}

const char *ep_status_name(int status) {
  static const char *const names[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
                                      "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                                      "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
                                      "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  return status >= 0 && status < (int)(sizeof names / sizeof names[0]) ? names[status] : "UNKNOWN";
}
