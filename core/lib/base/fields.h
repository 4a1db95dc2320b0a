/* core: declared fields (plugin settings, action parameters): checking declarations,
 * validating values against them, typed lookup. */
#ifndef EP_CORE_FIELDS_H
#define EP_CORE_FIELDS_H

#include <stdbool.h>
#include <stdint.h>

#include <edgeprov/abi.h>

#define EP_FIELD_NAME_MAX 63     /* longest field name */
#define EP_FIELD_STRING_MAX 4096 /* longest string value unless a declaration says otherwise */
#define EP_FIELD_STRING_CAP (16 << 20) /* longest a declaration may ask for (file contents) */
#define EP_FIELDS_MAX 256        /* most fields one plugin or action may declare */

/* Size of ep_field_decl in ABI 1.0, the smallest a plugin may hand over. */
#define EP_FIELD_DECL_SIZE_1_0 ((uint32_t)sizeof(ep_field_decl))

typedef struct ep_field_value {
  const ep_field_decl *decl; /* the plugin's declaration (plugin-owned, lives while loaded) */
  bool has_value;            /* set explicitly or by a default */
  bool is_explicit;          /* set by the operator, not by a default */
  char *text;                /* EP_FIELD_STRING */
  int64_t integer;           /* EP_FIELD_INT */
  int32_t boolean;           /* EP_FIELD_BOOL */
} ep_field_value;

typedef struct ep_fields {
  ep_field_value *items;
  uint32_t count;
} ep_fields;

/* Checks count declarations laid out stride bytes apart and prepares *out with their
 * defaults applied. Returns 0, or EP_EINVAL with a message naming the bad declaration (the
 * declarations are plugin-supplied and untrusted). *out is untouched on failure. */
int ep_fields_init(ep_fields *out, const ep_field_decl *decls, uint32_t count, uint32_t stride);

void ep_fields_free(ep_fields *fields);

/* The value slot for name, or NULL when name is not declared. */
ep_field_value *ep_fields_find(const ep_fields *fields, const char *name);

/* Set a declared field from a typed value; EP_EINVAL (wrong type, bad text) or EP_ERANGE
 * (outside the declared bounds) with a message naming the field and the reason. */
int ep_field_set_string(ep_field_value *field, const char *value);
int ep_field_set_int(ep_field_value *field, int64_t value);
int ep_field_set_bool(ep_field_value *field, bool value);

/* Set a declared field from text ("42", "true", "/path"), as typed on a command line. */
int ep_field_set_text(ep_field_value *field, const char *text);

/* True when the field is required and has no value. */
bool ep_field_missing(const ep_field_value *field);

/* Name of the type ("string", "int", "bool"). */
const char *ep_field_type_name(uint32_t type);

/* Typed lookup with the host-services contract: 0 and *out set; EP_ENOENT when the field
 * has no value; EP_EINVAL when name is not declared with that type. Strings stay owned by
 * fields. */
int ep_fields_get_string(const ep_fields *fields, const char *name, const char **out);
int ep_fields_get_int(const ep_fields *fields, const char *name, int64_t *out);
int ep_fields_get_bool(const ep_fields *fields, const char *name, int32_t *out);

/* The declared name closest to name, for "did you mean" (NULL when none is close). */
const char *ep_fields_suggest(const ep_fields *fields, const char *name);

/* True when name is a valid field name: [a-z][a-z0-9_]*, at most EP_FIELD_NAME_MAX bytes. */
bool ep_field_name_valid(const char *name);

#endif
