/* core: gRPC status codes, as both APIs answer them, and their mapping to the EP_E* codes of
 * base/error.h. Known to the server and client sides of both APIs without the gRPC headers. */
#ifndef EP_CORE_STATUS_H
#define EP_CORE_STATUS_H

/* gRPC status codes our servers answer with (numbers as in grpc/status.h). */
enum {
  EP_STATUS_OK = 0,
  EP_STATUS_CANCELLED = 1,
  EP_STATUS_UNKNOWN = 2,
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

#endif
