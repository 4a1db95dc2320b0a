/* Unit tests of core/lib/net/status.c: EP_E* codes to gRPC status codes and back, the names
 * of the codes, and what unknown codes become. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <edgeprov/storage.h>

#include "base/error.h"
#include "net/status.h"

static void errors_map_to_statuses(void **state) {
  (void)state;
  const int map[][2] = {
      {0, EP_STATUS_OK},
      {EP_EINVAL, EP_STATUS_INVALID_ARGUMENT},
      {EP_ERANGE, EP_STATUS_INVALID_ARGUMENT},
      {EP_ENOENT, EP_STATUS_NOT_FOUND},
      {EP_EEXIST, EP_STATUS_ALREADY_EXISTS},
      {EP_EPERM, EP_STATUS_FAILED_PRECONDITION},
      {EP_ECONFLICT, EP_STATUS_ABORTED},
      {EP_ECOMPACTED, EP_STATUS_OUT_OF_RANGE},
      {EP_ENOMEM, EP_STATUS_RESOURCE_EXHAUSTED},
      {EP_EIO, EP_STATUS_UNAVAILABLE},
      {EP_ETIMEDOUT, EP_STATUS_DEADLINE_EXCEEDED},
      {EP_ECANCELED, EP_STATUS_CANCELLED},
      {EP_ENOTSUP, EP_STATUS_UNIMPLEMENTED},
  };
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (ep_status_from_error(map[i][0]) != map[i][1])
      fail_msg("error %d: status %d, expected %d", map[i][0], ep_status_from_error(map[i][0]), map[i][1]);
}

static void unknown_errors_are_internal(void **state) {
  (void)state;
  const int unknown[] = {EP_EFAILED, EP_ECHECKSUM, -9999, -4, 1, 42, INT_MIN, INT_MAX};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
    assert_int_equal(ep_status_from_error(unknown[i]), EP_STATUS_INTERNAL);
}

static void statuses_map_to_errors(void **state) {
  (void)state;
  const int map[][2] = {
      {EP_STATUS_OK, 0},
      {EP_STATUS_INVALID_ARGUMENT, EP_EINVAL},
      {EP_STATUS_NOT_FOUND, EP_ENOENT},
      {EP_STATUS_ALREADY_EXISTS, EP_EEXIST},
      {EP_STATUS_FAILED_PRECONDITION, EP_EPERM},
      {EP_STATUS_PERMISSION_DENIED, EP_EPERM},
      {EP_STATUS_UNAUTHENTICATED, EP_EPERM},
      {EP_STATUS_ABORTED, EP_ECONFLICT},
      {EP_STATUS_OUT_OF_RANGE, EP_ECOMPACTED},
      {EP_STATUS_RESOURCE_EXHAUSTED, EP_ENOMEM},
      {EP_STATUS_DEADLINE_EXCEEDED, EP_ETIMEDOUT},
      {EP_STATUS_CANCELLED, EP_ECANCELED},
      {EP_STATUS_UNIMPLEMENTED, EP_ENOTSUP},
  };
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (ep_error_from_status(map[i][0]) != map[i][1])
      fail_msg("status %d: error %d, expected %d", map[i][0], ep_error_from_status(map[i][0]), map[i][1]);
}

static void unknown_or_server_side_statuses_are_io_errors(void **state) {
  (void)state;
  const int other[] = {EP_STATUS_INTERNAL, EP_STATUS_UNAVAILABLE, 2 /* UNKNOWN */, 15 /* DATA_LOSS */, 17, -1, 1000,
                       INT_MIN, INT_MAX};
  for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
    assert_int_equal(ep_error_from_status(other[i]), EP_EIO);
}

/* What a server answers for an error comes back to the client as the same error, except
 * where the mapping merges codes (EP_ERANGE answers as EP_EINVAL). */
static void round_trip_keeps_the_error(void **state) {
  (void)state;
  const int kept[] = {0, EP_EINVAL, EP_ENOENT, EP_EEXIST, EP_EPERM, EP_ECONFLICT,
                      EP_ECOMPACTED, EP_ENOMEM, EP_ETIMEDOUT, EP_ECANCELED, EP_ENOTSUP};
  for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
    assert_int_equal(ep_error_from_status(ep_status_from_error(kept[i])), kept[i]);
  assert_int_equal(ep_error_from_status(ep_status_from_error(EP_ERANGE)), EP_EINVAL);
  assert_int_equal(ep_error_from_status(ep_status_from_error(EP_EFAILED)), EP_EIO);
}

static void names_follow_grpc(void **state) {
  (void)state;
  const char *names[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
                         "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
                         "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
                         "UNAUTHENTICATED"};
  for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++) assert_string_equal(ep_status_name(i), names[i]);
  assert_string_equal(ep_status_name(EP_STATUS_NOT_FOUND), "NOT_FOUND");
  assert_string_equal(ep_status_name(EP_STATUS_UNAUTHENTICATED), "UNAUTHENTICATED");
  const int unknown[] = {-1, 17, 100, INT_MIN, INT_MAX};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
    assert_string_equal(ep_status_name(unknown[i]), "UNKNOWN");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(errors_map_to_statuses),
      cmocka_unit_test(unknown_errors_are_internal),
      cmocka_unit_test(statuses_map_to_errors),
      cmocka_unit_test(unknown_or_server_side_statuses_are_io_errors),
      cmocka_unit_test(round_trip_keeps_the_error),
      cmocka_unit_test(names_follow_grpc),
  };
  return cmocka_run_group_tests_name("status", tests, NULL, NULL);
}
