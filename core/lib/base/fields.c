/* core: declared fields, see fields.h. */
#include "base/fields.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/error.h"
#include "base/suggest.h"

bool ep_field_name_valid(const char *name) {
  size_t len = name ? strnlen(name, EP_FIELD_NAME_MAX + 1) : 0;
  if (len == 0 || len > EP_FIELD_NAME_MAX || name[0] < 'a' || name[0] > 'z') return false;
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

const char *ep_field_type_name(uint32_t type) {
  switch (type) {
  case EP_FIELD_STRING: return "string";
  case EP_FIELD_INT: return "int";
  case EP_FIELD_BOOL: return "bool";
  default: return "unknown";
  }
}

static int64_t string_limit(const ep_field_decl *decl) {
  if (decl->max <= 0) return EP_FIELD_STRING_MAX;
  return decl->max < EP_FIELD_STRING_CAP ? decl->max : EP_FIELD_STRING_CAP;
}

static int type_error(const ep_field_value *field, const char *given) {
  return ep_error_set(EP_EINVAL, "'%s': expected %s, got %s", field->decl->name,
                      ep_field_type_name(field->decl->type), given);
}

int ep_field_set_string(ep_field_value *field, const char *value) {
  if (field->decl->type != EP_FIELD_STRING) return type_error(field, "a string");
  size_t limit = (size_t)string_limit(field->decl);
  size_t len = strnlen(value, limit + 1);
  if (len > limit)
    return ep_error_set(EP_ERANGE, "'%s': longer than %zu bytes", field->decl->name, limit);
  char *copy = strdup(value);
  if (!copy) return ep_error_set(EP_ENOMEM, "'%s': out of memory", field->decl->name);
  free(field->text);
  field->text = copy;
  field->has_value = true;
  field->is_explicit = true;
  return 0;
}

int ep_field_set_int(ep_field_value *field, int64_t value) {
  if (field->decl->type != EP_FIELD_INT) return type_error(field, "an integer");
  if (value < field->decl->min || value > field->decl->max)
    return ep_error_set(EP_ERANGE, "'%s': %" PRId64 " is out of range [%" PRId64 ", %" PRId64 "]",
                        field->decl->name, value, field->decl->min, field->decl->max);
  field->integer = value;
  field->has_value = true;
  field->is_explicit = true;
  return 0;
}

int ep_field_set_bool(ep_field_value *field, bool value) {
  if (field->decl->type != EP_FIELD_BOOL) return type_error(field, "a boolean");
  field->boolean = value ? 1 : 0;
  field->has_value = true;
  field->is_explicit = true;
  return 0;
}

static int parse_bool(const char *text, bool *out) {
  static const char *const yes[] = {"true", "yes", "on", "1"};
  static const char *const no[] = {"false", "no", "off", "0"};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
    if (strcasecmp(text, yes[i]) == 0) return *out = true, 0;
    if (strcasecmp(text, no[i]) == 0) return *out = false, 0;
  }
  return -1;
}

static int parse_int(const char *text, int64_t *out) {
  char *end = NULL;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0') return -1;
  *out = v;
  return 0;
}

int ep_field_set_text(ep_field_value *field, const char *text) {
  switch (field->decl->type) {
  case EP_FIELD_STRING: return ep_field_set_string(field, text);
  case EP_FIELD_INT: {
    int64_t v;
    if (parse_int(text, &v) < 0)
      return ep_error_set(EP_EINVAL, "'%s': '%.64s' is not a 64-bit integer", field->decl->name, text);
    return ep_field_set_int(field, v);
  }
  case EP_FIELD_BOOL: {
    bool v;
    if (parse_bool(text, &v) < 0)
      return ep_error_set(EP_EINVAL, "'%s': '%.64s' is not a boolean (true or false)", field->decl->name,
                          text);
    return ep_field_set_bool(field, v);
  }
  default: return ep_error_set(EP_EINVAL, "'%s': unknown type", field->decl->name);
  }
}

bool ep_field_missing(const ep_field_value *field) { return field->decl->required && !field->has_value; }

static int check_decl(const ep_field_decl *decl, uint32_t stride, const ep_field_decl *first, uint32_t index) {
  if (decl->struct_size < EP_FIELD_DECL_SIZE_1_0 || decl->struct_size > stride)
    return ep_error_set(EP_EINVAL, "field #%u: struct_size %u does not match the declared stride %u", index,
                        decl->struct_size, stride);
  if (!ep_field_name_valid(decl->name))
    return ep_error_set(EP_EINVAL, "field #%u: name '%.64s' is not [a-z][a-z0-9_]* of at most %d characters",
                        index, decl->name ? decl->name : "(null)", EP_FIELD_NAME_MAX);
  for (uint32_t j = 0; j < index; j++) {
    const ep_field_decl *other = (const ep_field_decl *)((const char *)first + (size_t)j * stride);
    if (strcmp(other->name, decl->name) == 0)
      return ep_error_set(EP_EINVAL, "field '%s' is declared twice", decl->name);
  }
  if (decl->type != EP_FIELD_STRING && decl->type != EP_FIELD_INT && decl->type != EP_FIELD_BOOL)
    return ep_error_set(EP_EINVAL, "field '%s': unknown type %u", decl->name, decl->type);
  if (decl->required && decl->default_value)
    return ep_error_set(EP_EINVAL, "field '%s': a required field cannot have a default", decl->name);
  if (decl->type == EP_FIELD_INT && decl->min > decl->max)
    return ep_error_set(EP_EINVAL, "field '%s': min %" PRId64 " is above max %" PRId64, decl->name, decl->min,
                        decl->max);
  if (decl->type == EP_FIELD_STRING && decl->max < 0)
    return ep_error_set(EP_EINVAL, "field '%s': negative maximum length", decl->name);
  return 0;
}

int ep_fields_init(ep_fields *out, const ep_field_decl *decls, uint32_t count, uint32_t stride) {
  if (count > EP_FIELDS_MAX)
    return ep_error_set(EP_EINVAL, "%u fields declared, at most %d allowed", count, EP_FIELDS_MAX);
  if (count > 0 && !decls) return ep_error_set(EP_EINVAL, "%u fields declared but the array is NULL", count);
  if (count > 0 && stride < EP_FIELD_DECL_SIZE_1_0)
    return ep_error_set(EP_EINVAL, "field stride %u is smaller than ep_field_decl (%u)", stride,
                        EP_FIELD_DECL_SIZE_1_0);
  ep_fields fields = {.count = count};
  if (count > 0) {
    fields.items = calloc(count, sizeof *fields.items);
    if (!fields.items) return ep_error_set(EP_ENOMEM, "out of memory");
  }
  int r = 0;
  for (uint32_t i = 0; i < count; i++) {
    const ep_field_decl *decl = (const ep_field_decl *)((const char *)decls + (size_t)i * stride);
    r = check_decl(decl, stride, decls, i);
    if (r < 0) goto fail;
    ep_field_value *field = &fields.items[i];
    field->decl = decl;
    if (decl->default_value) {
      r = ep_field_set_text(field, decl->default_value);
      if (r < 0) {
        r = ep_error_prefix(EP_EINVAL, "field '%s': bad default", decl->name);
        goto fail;
      }
      field->is_explicit = false;
    }
  }
  *out = fields;
  return 0;
fail:
  ep_fields_free(&fields);
  return r;
}

void ep_fields_free(ep_fields *fields) {
  if (!fields) return;
  for (uint32_t i = 0; i < fields->count; i++) free(fields->items[i].text);
  free(fields->items);
  fields->items = NULL;
  fields->count = 0;
}

ep_field_value *ep_fields_find(const ep_fields *fields, const char *name) {
  if (!name) return NULL;
  for (uint32_t i = 0; i < fields->count; i++)
    if (strcmp(fields->items[i].decl->name, name) == 0) return &fields->items[i];
  return NULL;
}

static int lookup(const ep_fields *fields, const char *name, uint32_t type, const ep_field_value **out) {
  const ep_field_value *field = ep_fields_find(fields, name);
  if (!field || field->decl->type != type) return EP_EINVAL;
  if (!field->has_value) return EP_ENOENT;
  *out = field;
  return 0;
}

int ep_fields_get_string(const ep_fields *fields, const char *name, const char **out) {
  const ep_field_value *field;
  int r = lookup(fields, name, EP_FIELD_STRING, &field);
  if (r == 0) *out = field->text;
  return r;
}

int ep_fields_get_int(const ep_fields *fields, const char *name, int64_t *out) {
  const ep_field_value *field;
  int r = lookup(fields, name, EP_FIELD_INT, &field);
  if (r == 0) *out = field->integer;
  return r;
}

int ep_fields_get_bool(const ep_fields *fields, const char *name, int32_t *out) {
  const ep_field_value *field;
  int r = lookup(fields, name, EP_FIELD_BOOL, &field);
  if (r == 0) *out = field->boolean;
  return r;
}

const char *ep_fields_suggest(const ep_fields *fields, const char *name) {
  const char *names[EP_FIELDS_MAX];
  uint32_t n = 0;
  for (uint32_t i = 0; i < fields->count && n < EP_FIELDS_MAX; i++) names[n++] = fields->items[i].decl->name;
  return ep_suggest(name, names, n);
}
