/* fuzz_json.c - libFuzzer harness for the JSON and validation helpers
 * (common/json_util.h, common/validate.h), with differential oracles.
 *
 * Every input is used twice:
 *
 * 1. As JSON text for json_parse_strict (depth limit 32, as the API uses).
 *    The exact rule it must follow, checked against SQLite's json_valid()
 *    (an independent RFC 8259 parser) and a small scanner of this file:
 *
 *      json_parse_strict accepts  <=>  the input has no NUL byte
 *                                      and json_valid(input) = 1
 *                                      and nesting <= 32
 *                                      and every integer literal fits int64
 *                                      and every number is finite as a double
 *                                      and every string is valid UTF-8
 *
 *    (SQLite accepts big integers, 1e400 and any bytes in strings; our
 *    API rejects them by design.) When it accepts, the value re-serialised
 *    by json-c (as the server does) parses again to an equal value and
 *    serialises to the same text; the typed field getters agree with the
 *    JSON types of every member of an object. When it rejects, the status
 *    is 400 with a reason and no value.
 *
 * 2. As a C string (up to the first NUL; and the string value, when the
 *    JSON is one string) for every validator, each compared with a
 *    reference written here from API.md §2: utf8_length against a decoder
 *    that follows the Unicode table of well-formed byte sequences, the
 *    name/email/phone/avatar rules against POSIX regular expressions. */
#include <errno.h>
#include <math.h>
#include <regex.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/json_util.h"
#include "../../common/validate.h"
#include "world.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_DEPTH = 32 };

static sqlite3 *sqlite;
static sqlite3_stmt *json_valid_stmt;
static regex_t re_user_name, re_email, re_phone, re_avatar_data;

static void compile(regex_t *re, const char *pattern)
{
    if (regcomp(re, pattern, REG_EXTENDED | REG_NOSUB)) fuzz_fail("bad regex %s", pattern);
}

static void release(void)
{
    sqlite3_finalize(json_valid_stmt);
    sqlite3_close(sqlite);
    regfree(&re_user_name);
    regfree(&re_email);
    regfree(&re_phone);
    regfree(&re_avatar_data);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    json_util_init(); /* as both daemons do */
    if (sqlite3_open(":memory:", &sqlite) != SQLITE_OK ||
        sqlite3_prepare_v2(sqlite, "SELECT json_valid(?1)", -1, &json_valid_stmt, NULL) !=
            SQLITE_OK)
        fuzz_fail("sqlite");
    compile(&re_user_name, "^[-a-zA-Z0-9_()@.]{1,32}$");
    compile(&re_email, "^[-a-zA-Z0-9_.+]+@([-A-Za-z0-9]+\\.)+[-A-Za-z0-9]+$");
    compile(&re_phone, "^1[0-9]{10}$");
    compile(&re_avatar_data, "^data:image/[A-Za-z]+;base64,([A-Za-z0-9+/]{4})*"
                             "([A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2}==)$");
    atexit(release);
    return 0;
}

/* --- reference UTF-8 (Unicode 15, table 3-7) ------------------------------ */

/* Length of the well-formed sequence at p (n bytes left), or 0. */
static size_t ref_sequence(const unsigned char *p, size_t n)
{
    static const struct {
        unsigned char first_lo, first_hi, second_lo, second_hi;
        size_t len;
    } table[] = {
        {0x00, 0x7F, 0, 0, 1},       {0xC2, 0xDF, 0x80, 0xBF, 2}, {0xE0, 0xE0, 0xA0, 0xBF, 3},
        {0xE1, 0xEC, 0x80, 0xBF, 3}, {0xED, 0xED, 0x80, 0x9F, 3}, {0xEE, 0xEF, 0x80, 0xBF, 3},
        {0xF0, 0xF0, 0x90, 0xBF, 4}, {0xF1, 0xF3, 0x80, 0xBF, 4}, {0xF4, 0xF4, 0x80, 0x8F, 4},
    };
    for (size_t t = 0; t < sizeof table / sizeof table[0]; t++) {
        if (p[0] < table[t].first_lo || p[0] > table[t].first_hi) continue;
        size_t len = table[t].len;
        if (n < len) return 0;
        if (len > 1 && (p[1] < table[t].second_lo || p[1] > table[t].second_hi)) return 0;
        for (size_t i = 2; i < len; i++)
            if (p[i] < 0x80 || p[i] > 0xBF) return 0;
        return len;
    }
    return 0;
}

/* Code points of a NUL-terminated string, or -1 when not UTF-8. */
static long ref_utf8_length(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    long count = 0;
    for (size_t i = 0; i < n; count++) {
        size_t k = ref_sequence(p + i, n - i);
        if (!k) return -1;
        i += k;
    }
    return count;
}

/* --- validators ----------------------------------------------------------- */

static bool matches(const regex_t *re, const char *s)
{
    return regexec(re, s, 0, NULL, 0) == 0;
}

/* A validator's contract: 0 with err untouched, or ERR_INVALID with a message. */
static bool run(int rc, const nova_err *err, const char *what, const char *s)
{
    if (rc == 0) {
        if (err->kind) fuzz_fail("%s('%.80s'): 0 but err.kind %d", what, s, err->kind);
        return true;
    }
    if (rc != ERR_INVALID || err->kind != ERR_INVALID || !err->msg[0])
        fuzz_fail("%s('%.80s'): returned %d (err %d '%s'), want ERR_INVALID with a reason", what, s, rc,
                  err->kind, err->msg);
    return false;
}

#define CHECK_VALIDATOR(call, expected, what, s)                                                   \
    do {                                                                                           \
        nova_err e_;                                                                               \
        nova_err_clear(&e_);                                                                       \
        bool got_ = run((call), &e_, what, s);                                                     \
        if (got_ != (expected))                                                                    \
            fuzz_fail("%s('%.120s') %s, the rule says %s", what, s, got_ ? "accepts" : "rejects",  \
                      (expected) ? "accept" : "reject");                                           \
    } while (0)

static bool ref_avatar(const char *s, long chars)
{
    size_t len = strlen(s);
    if (!len) return true;
    if (!strncmp(s, "data:image/", 11))
        return chars >= 0 && chars <= 100000 && matches(&re_avatar_data, s);
    size_t scheme = !strncmp(s, "http://", 7) ? 7 : !strncmp(s, "https://", 8) ? 8 : 0;
    if (!scheme || len == scheme || chars < 0 || chars > 500) return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p == 0x7F || *p == '"' || *p == '<' || *p == '>') return false;
    return true;
}

/* utf8_excerpt (client text echoed in error messages): valid UTF-8
 * without control characters, within both limits, each character the
 * input's own or '?', and the input itself when that already qualifies. */
static void check_excerpt(const char *s)
{
    static const size_t limits[][2] = {{256, 200}, {80, 64}, {32, 16}, {8, 200}, {1, 5}, {5, 0}};
    size_t len = strlen(s);
    bool clean = ref_utf8_length(s) >= 0;
    for (const unsigned char *p = (const unsigned char *)s; clean && *p; p++)
        clean = *p >= 0x20 && *p != 0x7f;
    for (size_t k = 0; k < sizeof limits / sizeof limits[0]; k++) {
        char out[256];
        size_t size = limits[k][0], max = limits[k][1];
        memset(out, 'X', sizeof out);
        if (utf8_excerpt(out, size, s, max) != out) fuzz_fail("utf8_excerpt: not dst");
        size_t n = strnlen(out, size);
        if (n >= size || n > max) fuzz_fail("utf8_excerpt(%zu, %zu): %zu bytes", size, max, n);
        if (ref_utf8_length(out) < 0) fuzz_fail("utf8_excerpt('%.80s'): not UTF-8", s);
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
                fuzz_fail("utf8_excerpt('%.80s'): a control character", s);
        /* Same characters in the same places, invalid bytes as '?'. */
        size_t in = 0;
        for (size_t i = 0; i < n;) {
            size_t k2 = ref_sequence((const unsigned char *)s + in, len - in);
            if (k2 && !(k2 == 1 && ((unsigned char)s[in] < 0x20 || s[in] == 0x7f)) &&
                !memcmp(out + i, s + in, k2))
                i += k2, in += k2;
            else if (out[i] == '?')
                i++, in++;
            else
                fuzz_fail("utf8_excerpt('%.80s'): byte %zu is neither the input's nor '?'", s, i);
        }
        if (clean && len <= max && len < size && strcmp(out, s))
            fuzz_fail("utf8_excerpt changed clean text '%.80s'", s);
    }
}

static void check_validators(const char *s)
{
    long chars = ref_utf8_length(s);
    long got = utf8_length(s);
    if (got != chars) fuzz_fail("utf8_length('%.120s') = %ld, reference %ld", s, got, chars);
    check_excerpt(s);

    static const long bounds[][2] = {{0, 100}, {1, 100}, {0, 500}, {1, 60}, {1, 1}, {0, 0}};
    for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++) {
        bool ok = chars >= bounds[i][0] && chars <= bounds[i][1];
        CHECK_VALIDATOR(validate_length(s, "field", bounds[i][0], bounds[i][1], &e_), ok,
                        "validate_length", s);
    }
    CHECK_VALIDATOR(validate_user_name(s, &e_), matches(&re_user_name, s), "validate_user_name", s);
    bool password = chars >= 6 && !strpbrk(s, " \t\r\n\v\f");
    CHECK_VALIDATOR(validate_password(s, "password", &e_), password, "validate_password", s);
    size_t len = strlen(s);
    bool email = !len || (len <= 100 && matches(&re_email, s));
    CHECK_VALIDATOR(validate_email(s, &e_), email, "validate_email", s);
    bool phone = !len || matches(&re_phone, s);
    CHECK_VALIDATOR(validate_phone(s, &e_), phone, "validate_phone", s);
    CHECK_VALIDATOR(validate_avatar_url(s, &e_), ref_avatar(s, chars), "validate_avatar_url", s);
}

/* --- JSON reference ---------------------------------------------------------- */

typedef struct scan_facts {
    int max_depth; /* containers inside each other */
    bool big_integer, non_finite, bad_utf8;
    bool lone_surrogate; /* a \\uD800-\\uDFFF escape that is not half of a pair */
    bool bad_key; /* a container where a key belongs: SQLite 3.40 accepts
                     {"a":1,{"":"x"}:2} (it checks the last node parsed) */
    long keys;    /* object keys in the text */
} scan_facts;

/* Facts about a text SQLite found valid: it is well-formed JSON, so this
 * walk only needs to tell strings, brackets and numbers apart. */
static scan_facts scan(const unsigned char *s, size_t n)
{
    scan_facts f = {0};
    int depth = 0;
    char stack[4096]; /* the open containers, innermost last */
    bool expect_key = false;
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c == ',' && depth > 0 && depth <= (int)sizeof stack)
            expect_key = stack[depth - 1] == '{';
        bool value_start = c == '"' || c == '{' || c == '[' || c == '-' || (c >= '0' && c <= '9') ||
                           c == 't' || c == 'f' || c == 'n';
        if (value_start && expect_key && c != '"') f.bad_key = true;
        if (value_start) expect_key = false;
        if (c == '"') {
            int want_low = 0; /* 1: the previous escape was a high surrogate */
            for (i++; i < n && s[i] != '"';) {
                if (s[i] == '\\' && i + 5 < n && s[i + 1] == 'u') {
                    char hex[5] = {(char)s[i + 2], (char)s[i + 3], (char)s[i + 4], (char)s[i + 5], 0};
                    long unit = strtol(hex, NULL, 16);
                    bool high = unit >= 0xD800 && unit < 0xDC00, low = unit >= 0xDC00 && unit < 0xE000;
                    if (want_low ? !low : low) f.lone_surrogate = true;
                    want_low = high && !want_low;
                    i += 6;
                    continue;
                }
                if (want_low) f.lone_surrogate = true;
                want_low = 0;
                if (s[i] == '\\') {
                    i += 2;
                } else if (s[i] >= 0x80) {
                    size_t k = ref_sequence(s + i, n - i);
                    if (!k) {
                        f.bad_utf8 = true;
                        k = 1;
                    }
                    i += k;
                } else {
                    i++;
                }
            }
            if (want_low) f.lone_surrogate = true;
            i++;
            /* A key (followed by ':') is no value of its own. */
            size_t j = i;
            while (j < n && strchr(" \t\r\n", s[j]) && s[j])
                j++;
            if (j < n && s[j] == ':') f.keys++;
        } else if (c == '[' || c == '{') {
            if (++depth > f.max_depth) f.max_depth = depth;
            if (depth <= (int)sizeof stack) stack[depth - 1] = (char)c;
            i++;
            /* A key comes next, unless the object is empty. */
            size_t j = i;
            while (j < n && strchr(" \t\r\n", s[j]) && s[j])
                j++;
            expect_key = c == '{' && j < n && s[j] != '}';
        } else if (c == ']' || c == '}') {
            depth--;
            expect_key = false;
            i++;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t start = i;
            bool integer = true;
            while (i < n && strchr("-+0123456789.eE", s[i]) && s[i]) {
                if (s[i] == '.' || s[i] == 'e' || s[i] == 'E') integer = false;
                i++;
            }
            char token[64];
            size_t len = i - start;
            const unsigned char *digits = s + start + (s[start] == '-');
            size_t ndigits = len - (s[start] == '-');
            if (integer) {
                /* Compare the digits with the int64 bounds. */
                const char *limit = s[start] == '-' ? "9223372036854775808" : "9223372036854775807";
                if (ndigits > 19 || (ndigits == 19 && memcmp(digits, limit, 19) > 0))
                    f.big_integer = true;
            } else {
                char *text = len < sizeof token ? token : malloc(len + 1);
                if (!text) abort();
                memcpy(text, s + start, len);
                text[len] = '\0';
                double v = strtod(text, NULL);
                if (!isfinite(v)) f.non_finite = true;
                if (text != token) free(text);
            }
        } else {
            i++;
            if (c == 't' || c == 'f' || c == 'n') {
                while (i < n && s[i] >= 'a' && s[i] <= 'z')
                    i++;
            }
        }
    }
    return f;
}

static bool sqlite_json_valid(const uint8_t *data, size_t size)
{
    sqlite3_bind_text(json_valid_stmt, 1, (const char *)data, (int)size, SQLITE_STATIC);
    if (sqlite3_step(json_valid_stmt) != SQLITE_ROW) fuzz_fail("json_valid failed");
    bool ok = sqlite3_column_int(json_valid_stmt, 0) == 1;
    sqlite3_reset(json_valid_stmt);
    return ok;
}

/* Members of every object in a parsed value; false if a number in it is
 * not finite. */
static bool tree_facts(json_object *v, long *members)
{
    bool finite = true;
    switch (json_object_get_type(v)) {
    case json_type_double:
        return isfinite(json_object_get_double(v));
    case json_type_array:
        for (size_t i = 0, n = json_object_array_length(v); i < n; i++)
            finite &= tree_facts(json_object_array_get_idx(v, i), members);
        return finite;
    case json_type_object: {
        json_object_object_foreach(v, key, child)
        {
            (void)key;
            ++*members;
            finite &= tree_facts(child, members);
        }
        return finite;
    }
    default:
        return true;
    }
}

/* The typed getters agree with the JSON type of every member. */
static void check_getters(json_object *obj)
{
    json_object_object_foreach(obj, key, val)
    {
        nova_err err;
        const char *s;
        int64_t i;
        bool b, present;
        json_object *arr;
        enum json_type t = val ? json_object_get_type(val) : json_type_null;
        bool is_string = t == json_type_string && strlen(json_object_get_string(val)) ==
                                                      (size_t)json_object_get_string_len(val);
        /* json-c keeps the last of duplicate keys, and so do the getters:
         * look the key up as they do. */
        json_object *looked = NULL;
        json_object_object_get_ex(obj, key, &looked);
        if (looked != val) continue;
        nova_err_clear(&err);
        if ((json_field_string(obj, key, true, &s, &present, &err) == 0) != is_string)
            fuzz_fail("json_field_string('%s') disagrees with type %s", key, json_type_to_name(t));
        int64_t v64 = 0;
        bool is_int = t == json_type_int && json_is_int64(val, &v64);
        nova_err_clear(&err);
        if ((json_field_int(obj, key, true, &i, &present, &err) == 0) != is_int)
            fuzz_fail("json_field_int('%s') disagrees with type %s", key, json_type_to_name(t));
        if (is_int && i != v64) fuzz_fail("json_field_int('%s') changed the value", key);
        nova_err_clear(&err);
        if ((json_field_bool(obj, key, true, &b, &present, &err) == 0) != (t == json_type_boolean))
            fuzz_fail("json_field_bool('%s') disagrees with type %s", key, json_type_to_name(t));
        nova_err_clear(&err);
        if ((json_field_array(obj, key, true, &arr, &present, &err) == 0) != (t == json_type_array))
            fuzz_fail("json_field_array('%s') disagrees with type %s", key, json_type_to_name(t));
    }
    nova_err err;
    const char *s;
    bool present = true;
    nova_err_clear(&err);
    if (json_field_string(obj, "\x01no such key", false, &s, &present, &err) || present)
        fuzz_fail("an absent optional field is not reported absent");
    if (json_field_int(obj, "\x01no such key", true, NULL, NULL, &err) != ERR_INVALID)
        fuzz_fail("an absent required field is not 400");
}

static void check_json(const uint8_t *data, size_t size)
{
    nova_err err;
    nova_err_clear(&err);
    static char sentinel;
    json_object *v = (json_object *)&sentinel;
    int rc = json_parse_strict((const char *)data, size, MAX_DEPTH, &v, &err);
    if (rc) {
        if (rc != ERR_INVALID || err.kind != ERR_INVALID || !err.msg[0] || v)
            fuzz_fail("json_parse_strict rejected with %d (err %d '%s'), value %s", rc, err.kind,
                      err.msg, v ? "set" : "NULL");
    } else if (err.kind) {
        fuzz_fail("json_parse_strict accepted but err.kind is %d", err.kind);
    }

    bool expected;
    const char *why;
    if (memchr(data, 0, size)) {
        expected = false;
        why = "it holds a NUL byte";
    } else if (!sqlite_json_valid(data, size)) {
        expected = false;
        why = "SQLite's json_valid says it is not JSON";
    } else {
        scan_facts f = scan(data, size);
        /* A non-finite number is rejected by a check of the parsed value,
         * so one that a duplicate key replaced (json-c keeps the last) is
         * not seen: only when the value kept every key must it be. */
        long members = 0;
        if (f.non_finite && !rc) {
            tree_facts(v, &members);
            if (members < f.keys) f.non_finite = false;
        }
        expected = f.max_depth <= MAX_DEPTH && !f.big_integer && !f.non_finite && !f.bad_utf8 &&
                   !f.bad_key && !f.lone_surrogate;
        why = f.bad_key                 ? "an object key is not a string"
              : f.max_depth > MAX_DEPTH ? "it is nested too deep"
              : f.big_integer           ? "an integer is beyond int64"
              : f.non_finite            ? "a number is not finite"
              : f.bad_utf8              ? "a string is not UTF-8"
              : f.lone_surrogate        ? "a \\u escape is a lone surrogate"
                                        : "it is valid JSON within the limits";
    }
    if ((rc == 0) != expected)
        fuzz_fail("json_parse_strict %s '%.*s' (%s) but %s", rc ? "rejects" : "accepts",
                  (int)(size > 200 ? 200 : size), (const char *)data, rc ? err.msg : "", why);
    if (rc) return;
    long members = 0;
    if (!tree_facts(v, &members)) fuzz_fail("an accepted value holds a number that is not finite");

    /* Round trip through the server's serialiser. */
    size_t len;
    const char *text = json_text(v, &len);
    if (!v) text = "null", len = 4;
    json_object *again = NULL;
    nova_err_clear(&err);
    if (json_parse_strict(text, len, MAX_DEPTH, &again, &err))
        fuzz_fail("re-serialised JSON does not parse (%s): %.*s", err.msg,
                  (int)(len > 200 ? 200 : len), text);
    if (!json_object_equal(v, again))
        fuzz_fail("re-serialised JSON parses to another value: %.*s", (int)(len > 200 ? 200 : len),
                  text);
    size_t len2;
    const char *text2 = again ? json_text(again, &len2) : "null";
    if (!again) len2 = 4;
    if (len2 != len || memcmp(text, text2, len))
        fuzz_fail("serialisation is not stable: %.*s vs %.*s", (int)(len > 200 ? 200 : len), text,
                  (int)(len2 > 200 ? 200 : len2), text2);
    json_object_put(again);

    /* The helpers the handlers use. */
    nova_err_clear(&err);
    bool object = v && json_object_is_type(v, json_type_object);
    if ((json_require_object(v, "body", &err) == 0) != object)
        fuzz_fail("json_require_object disagrees with the type");
    if (object) check_getters(v);
    int64_t i;
    if (json_is_int64(v, &i) != (v && json_object_is_type(v, json_type_int)))
        fuzz_fail("json_is_int64 disagrees with the type of an accepted integer");
    if (v && json_object_is_type(v, json_type_int) && size < 31) {
        errno = 0;
        char buf[32];
        memcpy(buf, data, size < sizeof buf - 1 ? size : sizeof buf - 1);
        buf[size < sizeof buf - 1 ? size : sizeof buf - 1] = '\0';
        long long want = strtoll(buf + strspn(buf, " \t\r\n"), NULL, 10);
        if (!errno && want != i) fuzz_fail("integer %s parsed as %lld", buf, (long long)i);
    }
    if (v && json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        if (strlen(s) == (size_t)json_object_get_string_len(v)) check_validators(s);
    }
    json_object_put(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_json(data, size);
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    check_validators(s);
    free(s);
    return 0;
}
