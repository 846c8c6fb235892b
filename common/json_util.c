/* json_util.c - strict parsing and typed access on top of json-c. */
#include "json_util.h"

#include <math.h>
#include <string.h>

void json_util_init(void)
{
    /* Times are UNIX seconds with microseconds: 1732761234.123456. */
    json_c_set_serialization_double_format("%.6f", JSON_C_OPTION_GLOBAL);
}

/* --- strict syntax check ------------------------------------------------
 *
 * json-c's "strict" mode still takes single-quoted keys, "1.", "-01", raw
 * control characters, malformed UTF-8 (overlong forms, surrogates) and
 * silently clamps integers beyond int64. So every text is first checked
 * here against RFC 8259 plus our own limits (depth, int64 integers), and
 * only then handed to json-c to build the tree. */

typedef struct scanner {
    const unsigned char *p, *end;
    int depth, max_depth;
    const char *why;
} scanner;

static void skip_ws(scanner *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static bool fail_scan(scanner *s, const char *why)
{
    if (!s->why) s->why = why;
    return false;
}

/* One UTF-8 sequence starting at s->p (first byte >= 0x80). */
static bool scan_utf8(scanner *s)
{
    unsigned c = *s->p, cp;
    int extra;
    if (c >= 0xC2 && c <= 0xDF)
        extra = 1, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        extra = 2, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        extra = 3, cp = c & 0x07;
    else
        return fail_scan(s, "invalid UTF-8");
    if (s->end - s->p <= extra) return fail_scan(s, "invalid UTF-8");
    for (int i = 1; i <= extra; i++) {
        if ((s->p[i] & 0xC0) != 0x80) return fail_scan(s, "invalid UTF-8");
        cp = (cp << 6) | (s->p[i] & 0x3F);
    }
    static const unsigned min_cp[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[extra] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        return fail_scan(s, "invalid UTF-8");
    s->p += extra + 1;
    return true;
}

static bool is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The code unit of the \\uXXXX escape at p, or -1 when malformed. */
static long hex4(const scanner *s, const unsigned char *p)
{
    if (s->end - p < 6) return -1;
    long v = 0;
    for (int i = 2; i < 6; i++) {
        if (!is_hex(p[i])) return -1;
        v = v * 16 + (p[i] <= '9' ? p[i] - '0' : (p[i] | 0x20) - 'a' + 10);
    }
    return v;
}

static bool scan_string(scanner *s)
{
    s->p++; /* opening quote */
    while (s->p < s->end) {
        unsigned char c = *s->p;
        if (c == '"') {
            s->p++;
            return true;
        }
        if (c < 0x20) return fail_scan(s, "control character in a string");
        if (c == '\\') {
            if (s->end - s->p < 2) break;
            unsigned char e = s->p[1];
            if (e == 'u') {
                long unit = hex4(s, s->p);
                if (unit < 0) return fail_scan(s, "bad \\u escape");
                s->p += 6;
                /* An escaped surrogate is only valid as a high-low pair
                 * (RFC 8259 §7); json-c would turn a lone one into U+FFFD. */
                if (unit >= 0xDC00 && unit <= 0xDFFF)
                    return fail_scan(s, "lone surrogate in a \\u escape");
                if (unit >= 0xD800 && unit <= 0xDBFF) {
                    long low = s->end - s->p >= 2 && s->p[0] == '\\' && s->p[1] == 'u'
                                   ? hex4(s, s->p)
                                   : -1;
                    if (low < 0xDC00 || low > 0xDFFF)
                        return fail_scan(s, "lone surrogate in a \\u escape");
                    s->p += 6;
                }
            } else if (strchr("\"\\/bfnrt", e) && e) {
                s->p += 2;
            } else {
                return fail_scan(s, "bad escape in a string");
            }
        } else if (c >= 0x80) {
            if (!scan_utf8(s)) return false;
        } else {
            s->p++;
        }
    }
    return fail_scan(s, "unterminated string");
}

static bool scan_number(scanner *s)
{
    bool negative = *s->p == '-';
    if (negative) s->p++;
    if (s->p >= s->end || *s->p < '0' || *s->p > '9') return fail_scan(s, "bad number");
    const unsigned char *digits = s->p;
    if (*s->p == '0')
        s->p++;
    else
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            s->p++;
    size_t int_len = (size_t)(s->p - digits);
    bool integer = true;
    if (s->p < s->end && *s->p == '.') {
        integer = false;
        s->p++;
        if (s->p >= s->end || *s->p < '0' || *s->p > '9') return fail_scan(s, "bad number");
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            s->p++;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        integer = false;
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-')) s->p++;
        if (s->p >= s->end || *s->p < '0' || *s->p > '9') return fail_scan(s, "bad number");
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            s->p++;
    }
    if (integer) {
        /* Integers must fit int64 (json-c would clamp them silently). */
        static const char max[] = "9223372036854775807", min[] = "9223372036854775808";
        const char *limit = negative ? min : max;
        if (int_len > 19 || (int_len == 19 && memcmp(digits, limit, 19) > 0))
            return fail_scan(s, "integer out of range");
    }
    return true;
}

static bool scan_literal(scanner *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n))
        return fail_scan(s, "unexpected token");
    s->p += n;
    return true;
}

static bool scan_value(scanner *s);

static bool scan_container(scanner *s, unsigned char close)
{
    if (++s->depth > s->max_depth) return fail_scan(s, "too deep");
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        s->depth--;
        return true;
    }
    for (;;) {
        skip_ws(s);
        if (close == '}') {
            if (s->p >= s->end || *s->p != '"') return fail_scan(s, "object keys must be strings");
            if (!scan_string(s)) return false;
            skip_ws(s);
            if (s->p >= s->end || *s->p != ':') return fail_scan(s, "missing ':'");
            s->p++;
        }
        if (!scan_value(s)) return false;
        skip_ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (s->p < s->end && *s->p == close) {
            s->p++;
            s->depth--;
            return true;
        }
        return fail_scan(s, "missing ',' or closing bracket");
    }
}

static bool scan_value(scanner *s)
{
    skip_ws(s);
    if (s->p >= s->end) return fail_scan(s, "unexpected end");
    switch (*s->p) {
    case '{':
        return scan_container(s, '}');
    case '[':
        return scan_container(s, ']');
    case '"':
        return scan_string(s);
    case 't':
        return scan_literal(s, "true");
    case 'f':
        return scan_literal(s, "false");
    case 'n':
        return scan_literal(s, "null");
    default:
        return scan_number(s);
    }
}

/* 0 when text is one strict JSON value within the limits, else ERR_INVALID. */
static int check_syntax(const char *text, size_t len, int max_depth, nova_err *err)
{
    scanner s = {(const unsigned char *)text, (const unsigned char *)text + len, 0, max_depth,
                 NULL};
    bool ok = scan_value(&s);
    if (ok) {
        skip_ws(&s);
        if (s.p != s.end) ok = fail_scan(&s, "trailing characters");
    }
    if (ok) return 0;
    if (!strcmp(s.why, "too deep"))
        return nova_fail(err, ERR_INVALID, "JSON is nested deeper than %d levels", max_depth);
    return nova_fail(err, ERR_INVALID, "body is not valid JSON (%s)", s.why);
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
    if (len > INT32_MAX) return nova_fail(err, ERR_INVALID, "body is not valid JSON");
    int rc = check_syntax(text, len, max_depth, err);
    if (rc) return rc;
    /* The checker above enforces max_depth; json-c counts a scalar inside
     * the deepest container as one more level, so give it room. */
    json_tokener *tok = json_tokener_new_ex(max_depth + 1);
    if (!tok) return nova_fail(err, ERR_INTERNAL, "internal error");
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
        return nova_fail(err, ERR_INVALID, "JSON is nested deeper than %d levels", max_depth);
    }
    if (jerr != json_tokener_success) {
        json_object_put(v);
        return nova_fail(err, ERR_INVALID, "body is not valid JSON");
    }
    while (end < len && strchr(" \t\r\n", text[end]) && text[end])
        end++;
    if (end != len) {
        json_object_put(v);
        return nova_fail(err, ERR_INVALID, "body is not valid JSON (trailing characters)");
    }
    if (!all_finite(v)) {
        json_object_put(v);
        return nova_fail(err, ERR_INVALID, "body is not valid JSON (numbers must be finite)");
    }
    *out = v;
    return 0;
}

int json_require_object(json_object *v, const char *what, nova_err *err)
{
    if (!json_object_is_type(v, json_type_object) || !v)
        return nova_fail(err, ERR_INVALID, "%s must be a JSON object", what);
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
    return required ? nova_fail(err, ERR_INVALID, "missing field '%s'", key) : 0;
}

int json_field_string(json_object *obj, const char *key, bool required, const char **val,
                      bool *present, nova_err *err)
{
    json_object *v;
    if (!lookup(obj, key, &v)) return absent(key, required, present, err);
    if (!v || !json_object_is_type(v, json_type_string))
        return nova_fail(err, ERR_INVALID, "field '%s' must be a string", key);
    const char *s = json_object_get_string(v);
    if (strlen(s) != (size_t)json_object_get_string_len(v))
        return nova_fail(err, ERR_INVALID, "field '%s' must not contain NUL characters", key);
    *val = s;
    if (present) *present = true;
    return 0;
}

int json_field_int(json_object *obj, const char *key, bool required, int64_t *val, bool *present,
                   nova_err *err)
{
    json_object *v;
    if (!lookup(obj, key, &v)) return absent(key, required, present, err);
    if (!json_is_int64(v, val))
        return nova_fail(err, ERR_INVALID, "field '%s' must be an integer", key);
    if (present) *present = true;
    return 0;
}

int json_field_bool(json_object *obj, const char *key, bool required, bool *val, bool *present,
                    nova_err *err)
{
    json_object *v;
    if (!lookup(obj, key, &v)) return absent(key, required, present, err);
    if (!v || !json_object_is_type(v, json_type_boolean))
        return nova_fail(err, ERR_INVALID, "field '%s' must be true or false", key);
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
        return nova_fail(err, ERR_INVALID, "field '%s' must be an array", key);
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
