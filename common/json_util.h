/* json_util.h - strict JSON parsing and typed field access (json-c).
 *
 * Types are strict, as API.md §1 demands: 1 is not "1", true is not 1,
 * 1.0 is not an integer, null is not a string. Every failure is ERR_INVALID with
 * a message naming the field. */
#ifndef NOVA_JSON_UTIL_H
#define NOVA_JSON_UTIL_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Process-wide json-c settings (time serialisation). Call once at start. */
void json_util_init(void);

/* Parse exactly one JSON value from text[0..len): strict grammar, valid
 * UTF-8, nesting at most max_depth, nothing but whitespace after it.
 * On success *out is the value (NULL for JSON null) and 0 is returned;
 * otherwise ERR_INVALID with a reason. */
int json_parse_strict(const char *text, size_t len, int max_depth, json_object **out,
                      nova_err *err);

/* 0 if v is an object, else ERR_INVALID "<what> must be a JSON object". */
int json_require_object(json_object *v, const char *what, nova_err *err);

/* True if v is a JSON integer that fits in int64 (false for 1.0, true,
 * strings, and integers beyond the int64 range). */
bool json_is_int64(json_object *v, int64_t *out);

/* Typed field getters on an object. A missing field is ERR_INVALID when required;
 * when optional, *present (if given) says whether it was there. A field
 * present with the wrong type (null included) is always ERR_INVALID. */
int json_field_string(json_object *obj, const char *key, bool required, const char **val,
                      bool *present, nova_err *err);
int json_field_int(json_object *obj, const char *key, bool required, int64_t *val, bool *present,
                   nova_err *err);
int json_field_bool(json_object *obj, const char *key, bool required, bool *val, bool *present,
                    nova_err *err);
int json_field_array(json_object *obj, const char *key, bool required, json_object **val,
                     bool *present, nova_err *err);

/* Serialise compactly; the string belongs to v. */
const char *json_text(json_object *v, size_t *len);

/* Small constructors that keep call sites short. */
json_object *json_i64(int64_t v);
json_object *json_str(const char *s);
json_object *json_time(double t);

#endif
