/* edgeprov SDK: ABI version, build signature, error codes and the field declarations
 * shared by plugin settings and action parameters. Fixed-width C types only. */
#ifndef EDGEPROV_ABI_H
#define EDGEPROV_ABI_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ABI version of these headers. The host refuses a plugin whose major differs from its own
 * or whose minor is newer than its own. Structs are append-only: a minor bump may add
 * fields at the end of a struct, never move, retype or remove one. */
#define EP_ABI_MAJOR 1
#define EP_ABI_MINOR 6

/* Build signature: the sizes that decide struct layout and calling convention on this
 * target. A plugin built for another data model (for example 32-bit, or a 32-bit time_t)
 * carries another signature and is refused before any of its code runs.
 * Byte 0: sizeof(void *), byte 1: sizeof(off_t), byte 2: sizeof(time_t), byte 3: a
 * byte-order mark (1 little endian, 2 big endian). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define EP_BUILD_BYTE_ORDER 2u
#else
#define EP_BUILD_BYTE_ORDER 1u
#endif
#define EP_BUILD_SIGNATURE                                                                      \
  ((uint32_t)sizeof(void *) | ((uint32_t)sizeof(off_t) << 8) | ((uint32_t)sizeof(time_t) << 16) | \
   (EP_BUILD_BYTE_ORDER << 24))

/* Error codes: 0 is success, failures are negative. The errno-like values equal Linux's
 * errno numbers so -errno from a system call can be returned as it is. */
#define EP_OK 0
#define EP_EPERM (-1)      /* not permitted */
#define EP_ENOENT (-2)     /* no such item, setting or file */
#define EP_EIO (-5)        /* input/output failure */
#define EP_ENOMEM (-12)    /* out of memory */
#define EP_EEXIST (-17)    /* already exists */
#define EP_EINVAL (-22)    /* invalid argument or value */
#define EP_ERANGE (-34)    /* value out of its allowed range */
#define EP_ENOTSUP (-95)   /* operation not supported */
#define EP_ETIMEDOUT (-110) /* deadline passed */
#define EP_ECANCELED (-125) /* cancelled by the host */
#define EP_EFAILED (-10000)   /* the operation ran and failed; the message says why */
#define EP_ECHECKSUM (-10001) /* content does not match its expected digest */

/* Log levels, most severe first. */
#define EP_LOG_ERROR 0
#define EP_LOG_WARN 1
#define EP_LOG_INFO 2
#define EP_LOG_DEBUG 3

/* Types of a declared field (a plugin setting or an action parameter). */
#define EP_FIELD_STRING 1u /* UTF-8 text */
#define EP_FIELD_INT 2u    /* signed 64-bit integer, bounded by min/max */
#define EP_FIELD_BOOL 3u   /* true or false */

#define EP_FIELD_OPTIONAL 0u
#define EP_FIELD_REQUIRED 1u

/* A declared field. Plugins hand arrays of these to the host; the host walks an array
 * with the stride the plugin states (see ep_plugin_entry.field_size), so fields appended
 * in a later minor never break older plugins.
 * name: [a-z][a-z0-9_]* at most 63 characters. default_value: the default as text
 * ("8", "true", "/var/lib"), or NULL for none; a required field has no default.
 * min/max: inclusive bounds of an EP_FIELD_INT; for EP_FIELD_STRING, max is the longest
 * length accepted in bytes (0 means the host's limit). */
typedef struct ep_field_decl {
  uint32_t struct_size;
  uint32_t type;
  const char *name;
  const char *default_value;
  uint32_t required;
  uint32_t reserved;
  int64_t min;
  int64_t max;
  const char *help;
} ep_field_decl;

/* Helpers to declare fields in a static array. */
#define EP_FIELD_STRING_DECL(name_, default_, required_, maxlen_, help_)                \
  {sizeof(ep_field_decl), EP_FIELD_STRING, (name_), (default_), (required_), 0, 0, (maxlen_), \
   (help_)}
#define EP_FIELD_INT_DECL(name_, default_, required_, min_, max_, help_)                        \
  {sizeof(ep_field_decl), EP_FIELD_INT, (name_), (default_), (required_), 0, (min_), (max_), \
   (help_)}
#define EP_FIELD_BOOL_DECL(name_, default_, required_, help_) \
  {sizeof(ep_field_decl), EP_FIELD_BOOL, (name_), (default_), (required_), 0, 0, 1, (help_)}

#ifdef __cplusplus
}
#endif
#endif
