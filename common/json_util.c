/* json_util.c - strict parsing and typed access on top of json-c. */
#include "json_util.h"

#include <math.h>
#include <string.h>

void json_util_init(void)
{
    /* Times are UNIX seconds with microseconds: 1732761234.123456. */
    json_c_set_serialization_double_format("%.6f", JSON_C_OPTION_GLOBAL);
}

/* json-c accepts NaN and Infinity even in strict mode, and 1e400 becomes
 * infinity: JSON has no such numbers, so reject them anywhere. */
static bool all_finite(json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_double:
        return isfinite(json_object_get_double(v));
    case json_type_array:
        for (size_t i = 0, n = json_object_array_length(v); i < n; i++)
            if (!all_finite(json_object_array_get_idx(v, i))) return false;
        return true;
    case json_type_object: {
        json_object_object_foreach(v, key, child)
        {
            (void)key;
            if (!all_finite(child)) return false;
        }
        return true;
    }
    default:
        return true;
    }
}

int json_parse_strict(const char *text, size_t len, int max_depth, json_object **out, nova_err *err)
{
    *out = NULL;
    if (len > INT32_MAX) return nova_fail(err, 400, "body is not valid JSON");
    /* json-c counts the outermost container as one level, like we do. */
    json_tokener *tok = json_tokener_new_ex(max_depth);
    if (!tok) return nova_fail(err, 500, "internal error");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *v = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    if (jerr == json_tokener_continue && end == len) {
        /* A top-level number or literal only ends at a terminator: feed
         * the end of input explicitly. */
        v = json_tokener_parse_ex(tok, "", 1);
        jerr = json_tokener_get_error(tok);
    }
    json_tokener_free(tok);
    if (jerr == json_tokener_error_depth) {
        json_object_put(v);
        return nova_fail(err, 400, "JSON is nested deeper than %d levels", max_depth);
    }
    if (jerr != json_tokener_success) {
        json_object_put(v);
        return nova_fail(err, 400, "body is not valid JSON");
    }
    while (end < len && strchr(" \t\r\n", text[end]) && text[end])
        end++;
    if (end != len) {
        json_object_put(v);
        return nova_fail(err, 400, "body is not valid JSON (trailing characters)");
    }
    if (!all_finite(v)) {
        json_object_put(v);
        return nova_fail(err, 400, "body is not valid JSON (numbers must be finite)");
    }
    *out = v;
    return 0;
}

int json_require_object(json_object *v, const char *what, nova_err *err)
{
    if (!json_object_is_type(v, json_type_object) || !v)
        return nova_fail(err, 400, "%s must be a JSON object", what);
    return 0;
}

bool json_is_int64(json_object *v, int64_t *out)
{
    if (!v || !json_object_is_type(v, json_type_int)) return false;
    int64_t i = json_object_get_int64(v);
    /* json-c keeps integers above INT64_MAX as uint64 and clamps them. */
    if (i == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX) return false;
    if (out) *out = i;
    return true;
}

/* Look the field up: 1 present (in *v, maybe NULL for null), 0 absent. */
static int lookup(json_object *obj, const char *key, json_object **v)
{
    *v = NULL;
    return obj && json_object_object_get_ex(obj, key, v);
}

static int absent(const char *key, bool required, bool *present, nova_err *err)
{
    if (present) *present = false;
    return required ? nova_fail(err, 400, "missing field '%s'", key) : 0;
}

int json_field_string(json_object *obj, const char *key, bool required, const char **val,
                      bool *present, nova_err *err)
{
    json_object *v;
    if (!lookup(obj, key, &v)) return absent(key, required, present, err);
    if (!v || !json_object_is_type(v, json_type_string))
        return nova_fail(err, 400, "field '%s' must be a string", key);
    const char *s = json_object_get_string(v);
    if (strlen(s) != (size_t)json_object_get_string_len(v))
        return nova_fail(err, 400, "field '%s' must not contain NUL characters", key);
    *val = s;
    if (present) *present = true;
    return 0;
}

int json_field_int(json_object *obj, const char *key, bool required, int64_t *val, bool *present,
                   nova_err *err)
{
    json_object *v;
    if (!lookup(obj, key, &v)) return absent(key, required, present, err);
    if (!json_is_int64(v, val)) return nova_fail(err, 400, "field '%s' must be an integer", key);
    if (present) *present = true;
    return 0;
}

int json_field_bool(json_object *obj, const char *key, bool required, bool *val, bool *present,
                    nova_err *err)
{
    json_object *v;
    if (!lookup(obj, key, &v)) return absent(key, required, present, err);
    if (!v || !json_object_is_type(v, json_type_boolean))
        return nova_fail(err, 400, "field '%s' must be true or false", key);
    *val = json_object_get_boolean(v);
    if (present) *present = true;
    return 0;
}

int json_field_array(json_object *obj, const char *key, bool required, json_object **val,
                     bool *present, nova_err *err)
{
    json_object *v;
    if (!lookup(obj, key, &v)) return absent(key, required, present, err);
    if (!v || !json_object_is_type(v, json_type_array))
        return nova_fail(err, 400, "field '%s' must be an array", key);
    *val = v;
    if (present) *present = true;
    return 0;
}

const char *json_text(json_object *v, size_t *len)
{
    return json_object_to_json_string_length(
        v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len);
}

json_object *json_i64(int64_t v)
{
    return json_object_new_int64(v);
}

json_object *json_str(const char *s)
{
    return json_object_new_string(s);
}

json_object *json_time(double t)
{
    return json_object_new_double(t);
}
