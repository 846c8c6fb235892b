/* test_json.c - strict JSON parsing and typed field access (common/json_util.c).
 *
 * What API.md §1 asks of a request body: one JSON value, valid UTF-8, no
 * NUL, finite numbers, nesting at most 32; and strict field types (1 is not
 * "1", true is not 1, 1.0 is not an integer, null is nothing). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/json_util.h"

enum { MAX_DEPTH = 32 };

/* Parse len bytes of text with the API's depth limit; checks the contract
 * (0 with err untouched, or ERR_INVALID with *out NULL and a message). */
static int parse_n(const char *text, size_t len, json_object **out)
{
    nova_err err;
    nova_err_clear(&err);
    static char sentinel;
    *out = (json_object *)&sentinel; /* must be overwritten either way */
    int rc = json_parse_strict(text, len, MAX_DEPTH, out, &err);
    if (rc == 0) {
        if (err.kind != 0) fail_msg("'%.60s': 0 but err.kind %d", text, err.kind);
        return 0;
    }
    if (rc != ERR_INVALID || err.kind != ERR_INVALID)
        fail_msg("'%.60s': returned %d, err.kind %d, want ERR_INVALID", text, rc, err.kind);
    if (*out != NULL) fail_msg("'%.60s': *out not NULL after failure", text);
    if (!err.msg[0]) fail_msg("'%.60s': no reason given", text);
    return rc;
}

static int parse(const char *text, json_object **out)
{
    return parse_n(text, strlen(text), out);
}

/* Accept text, and free what it parsed to. */
#define PARSES(text)                                                                               \
    do {                                                                                           \
        json_object *v_;                                                                           \
        assert_int_equal(parse(text, &v_), 0);                                                     \
        json_object_put(v_);                                                                       \
    } while (0)
#define REJECTED_N(text, len)                                                                      \
    do {                                                                                           \
        json_object *v_;                                                                           \
        int rc_ = parse_n(text, len, &v_);                                                         \
        if (rc_ == 0) json_object_put(v_);                                                         \
        assert_int_equal(rc_, ERR_INVALID);                                                                \
    } while (0)

/* Append ` "text"` to buf (of size), bytes escaped so they can be read;
 * what does not fit is left out. */
static void append_quoted(char *buf, size_t size, const char *text)
{
    size_t len = strlen(buf);
    if (len + 16 >= size) return;
    buf[len++] = ' ';
    buf[len++] = '"';
    for (const char *p = text; *p && len + 8 < size; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c >= 0x7f)
            len += (size_t)snprintf(buf + len, size - len, "\\x%02X", c);
        else if (c == '"' || c == '\\')
            len += (size_t)snprintf(buf + len, size - len, "\\%c", c);
        else
            buf[len++] = (char)c;
    }
    buf[len++] = '"';
    buf[len] = '\0';
}

/* Every text must be refused. All of them are tried, and the failure
 * lists each one that was accepted. */
static void expect_rejected(const char *const *texts, size_t n)
{
    char accepted[2048] = "";
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *v;
        if (parse(texts[i], &v) != 0) continue;
        json_object_put(v);
        count++;
        append_quoted(accepted, sizeof accepted, texts[i]);
    }
    if (count) fail_msg("%zu of %zu invalid texts accepted:%s", count, n, accepted);
}

#define EXPECT_REJECTED(texts) expect_rejected(texts, sizeof texts / sizeof texts[0])

/* "[[...[]...]]" or {"a":{"a":...{}...}}, depth levels in all; malloc'd. */
static char *nested(int depth, int objects)
{
    const char *open = objects ? "{\"a\":" : "[", *close = objects ? "}" : "]";
    const char *inner = objects ? "{}" : "[]";
    size_t lo = strlen(open), lc = strlen(close), len = 0;
    char *s = malloc((size_t)(depth - 1) * (lo + lc) + 3);
    assert_non_null(s);
    for (int i = 1; i < depth; i++, len += lo)
        memcpy(s + len, open, lo);
    memcpy(s + len, inner, 2);
    len += 2;
    for (int i = 1; i < depth; i++, len += lc)
        memcpy(s + len, close, lc);
    s[len] = '\0';
    return s;
}

static void test_parse_objects_and_arrays(void **state)
{
    (void)state;
    json_object *v;
    assert_int_equal(parse("{\"a\":[1,2,{\"b\":null}],\"c\":\"x\",\"d\":{}}", &v), 0);
    assert_true(json_object_is_type(v, json_type_object));
    json_object *a;
    assert_true(json_object_object_get_ex(v, "a", &a));
    assert_int_equal(json_object_array_length(a), 3);
    assert_int_equal(json_object_get_int64(json_object_array_get_idx(a, 1)), 2);
    json_object_put(v);

    assert_int_equal(parse(" \t\r\n[ ] \t\r\n", &v), 0);
    assert_true(json_object_is_type(v, json_type_array));
    assert_int_equal(json_object_array_length(v), 0);
    json_object_put(v);

    assert_int_equal(parse("\"caf\\u00e9 \xC3\xA9 \xF0\x9F\x98\x80\"", &v), 0);
    assert_string_equal(json_object_get_string(v), "caf\xC3\xA9 \xC3\xA9 \xF0\x9F\x98\x80");
    json_object_put(v);

    PARSES("{}");
    PARSES("[]");
    PARSES("[[],{},\"\",0,-0,1.5,-2e3,true,false,null]");
    PARSES("{\"\":\"\"}");
}

static void test_parse_top_level_scalars(void **state)
{
    (void)state;
    json_object *v;
    assert_int_equal(parse("1", &v), 0);
    assert_true(json_object_is_type(v, json_type_int));
    assert_int_equal(json_object_get_int64(v), 1);
    json_object_put(v);

    assert_int_equal(parse("-42", &v), 0);
    assert_int_equal(json_object_get_int64(v), -42);
    json_object_put(v);

    assert_int_equal(parse(" 0 ", &v), 0);
    assert_true(json_object_is_type(v, json_type_int));
    assert_int_equal(json_object_get_int64(v), 0);
    json_object_put(v);

    assert_int_equal(parse("1.5", &v), 0);
    assert_true(json_object_is_type(v, json_type_double));
    assert_true(json_object_get_double(v) == 1.5);
    json_object_put(v);

    assert_int_equal(parse("-2.5e-3\n", &v), 0);
    assert_true(json_object_get_double(v) == -2.5e-3);
    json_object_put(v);

    assert_int_equal(parse("true", &v), 0);
    assert_true(json_object_is_type(v, json_type_boolean));
    assert_true(json_object_get_boolean(v));
    json_object_put(v);

    assert_int_equal(parse("false", &v), 0);
    assert_true(json_object_is_type(v, json_type_boolean));
    assert_false(json_object_get_boolean(v));
    json_object_put(v);

    assert_int_equal(parse("null", &v), 0);
    assert_null(v);
    assert_int_equal(parse(" null ", &v), 0);
    assert_null(v);

    assert_int_equal(parse("\"s\"", &v), 0);
    assert_string_equal(json_object_get_string(v), "s");
    json_object_put(v);
}

/* Only the first len bytes count: what follows them is not looked at. */
static void test_parse_honours_length(void **state)
{
    (void)state;
    json_object *v;
    assert_int_equal(parse_n("{\"a\":1}XYZ", 7, &v), 0);
    assert_true(json_object_is_type(v, json_type_object));
    json_object_put(v);
    assert_int_equal(parse_n("12345", 2, &v), 0);
    assert_int_equal(json_object_get_int64(v), 12);
    json_object_put(v);
    assert_int_equal(parse_n("truex", 4, &v), 0);
    json_object_put(v);
}

static void test_parse_invalid(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "",
        " ",
        " \n\t ",
        "{",
        "}",
        "[",
        "[1,]",
        "[,1]",
        "{\"a\":1,}",
        "{\"a\"}",
        "{\"a\" 1}",
        "{a:1}",
        "['a']",
        "'a'",
        "{\"a\":'b'}",
        "\"abc",
        "\"\\x41\"",
        "\"\\u12\"",
        "-",
        "+1",
        ".5",
        "01",
        "[01]",
        "1e",
        "1e+",
        "0x10",
        "tru",
        "True",
        "TRUE",
        "nul",
        "undefined",
        "/* comment */ 1",
        "[1] // comment",
    };
    EXPECT_REJECTED(texts);
    REJECTED_N("", 0);
}

/* JSON object keys are double-quoted strings: json-c's strict mode still
 * takes single-quoted keys. */
static void test_parse_rejects_single_quoted_keys(void **state)
{
    (void)state;
    static const char *const texts[] = {"{'a':1}", "{'a':'b'}", "{\"a\":1,'b':2}"};
    EXPECT_REJECTED(texts);
}

/* RFC 8259 numbers: a fraction needs a digit after '.', and no leading
 * zeros, also after a minus sign. */
static void test_parse_number_grammar(void **state)
{
    (void)state;
    static const char *const texts[] = {"1.",   "2.",  "0.",    "[1.]", "{\"a\":1.}",
                                        "1.e5", "-01", "[-01]", "-00"};
    EXPECT_REJECTED(texts);
}

/* Control characters U+0000..U+001F must be escaped inside strings. */
static void test_parse_rejects_raw_control_characters(void **state)
{
    (void)state;
    static const char *const texts[] = {"\"a\tb\"", "\"a\nb\"", "\"\x01\"", "[\"\x1f\"]",
                                        "{\"a\tb\":1}"};
    EXPECT_REJECTED(texts);
    /* escaped they are fine, and DEL needs no escape */
    json_object *v;
    assert_int_equal(parse("\"\\t\\n\\u0001\x7f\"", &v), 0);
    assert_string_equal(json_object_get_string(v), "\t\n\x01\x7f");
    json_object_put(v);
}

static void test_parse_trailing_garbage(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "1 2",   "[1] 2",      "{}{}",     "{} {}", "[]]", "{\"a\":1}x", "\"a\" \"b\"",
        "truex", "true false", "nullnull", "1x",    "1,",  "[1],",
    };
    EXPECT_REJECTED(texts);
}

static void test_parse_non_finite_numbers(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "NaN",      "nan",    "-NaN",         "Infinity",          "-Infinity",
        "infinity", "[NaN]",  "[1,Infinity]", "{\"a\":-Infinity}", "{\"a\":{\"b\":[NaN]}}",
        "1e400",    "-1e400", "[1e400]",      "{\"t\":1.5e999}",
    };
    EXPECT_REJECTED(texts);
}

static void test_parse_depth(void **state)
{
    (void)state;
    for (int objects = 0; objects <= 1; objects++) {
        json_object *v;
        char *s = nested(MAX_DEPTH, objects);
        if (parse(s, &v) != 0)
            fail_msg("%d nested %s rejected", MAX_DEPTH, objects ? "objects" : "arrays");
        json_object_put(v);
        free(s);

        s = nested(MAX_DEPTH + 1, objects);
        nova_err err;
        nova_err_clear(&err);
        assert_int_equal(json_parse_strict(s, strlen(s), MAX_DEPTH, &v, &err), ERR_INVALID);
        assert_null(v);
        assert_non_null(strstr(err.msg, "32"));
        free(s);

        s = nested(1000, objects);
        assert_int_equal(json_parse_strict(s, strlen(s), MAX_DEPTH, &v, &err), ERR_INVALID);
        assert_null(v);
        free(s);
    }

    /* the outermost container is level 1 */
    json_object *v;
    nova_err err;
    assert_int_equal(json_parse_strict("[]", 2, 1, &v, &err), 0);
    json_object_put(v);
    assert_int_equal(json_parse_strict("7", 1, 1, &v, &err), 0);
    json_object_put(v);
    assert_int_equal(json_parse_strict("[[]]", 4, 1, &v, &err), ERR_INVALID);
    assert_int_equal(json_parse_strict("[[]]", 4, 2, &v, &err), 0);
    json_object_put(v);
}

/* Bytes that cannot start or continue a UTF-8 sequence. */
static void test_parse_invalid_utf8(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "\"\xFF\"",
        "\"a\x80z\"",
        "\"\xC3\"",
        "[\"\xC3\", 1]",
        "{\"k\xFE\":1}",
        "\"\xE2\x82\"",
        "\"\xF8\x88\x80\x80\x80\"",
    };
    EXPECT_REJECTED(texts);
}

/* Sequences of the right shape that are still not UTF-8: overlong forms
 * (C0 80 is a disguised NUL), UTF-16 surrogates, code points past
 * U+10FFFF. validate.h relies on json_parse_strict having refused them. */
static void test_parse_rejects_non_utf8_sequences(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "\"\xC0\x80\"",     "\"\xC1\xBF\"",     "\"\xE0\x80\xAF\"",     "\"\xF0\x80\x80\x80\"",
        "\"\xED\xA0\x80\"", "\"\xED\xBF\xBF\"", "\"\xF4\x90\x80\x80\"", "\"\xF5\x80\x80\x80\"",
    };
    EXPECT_REJECTED(texts);
}

/* Escaped UTF-16: a surrogate pair is one code point; a lone high or low
 * surrogate (json-c would store U+FFFD) is refused. */
static void test_parse_escaped_surrogates(void **state)
{
    (void)state;
    static const char *const lone[] = {
        "\"\\ud800\"",        "\"\\udfff\"",       "\"a\\uD83Dz\"",      "\"\\ud83d\\u0041\"",
        "\"\\ude00\\ud83d\"", "\"\\ud83d\\ud83d\"", "{\"\\udc00\":1}", "\"\\ud83d\\\"",
    };
    EXPECT_REJECTED(lone);
    json_object *v;
    assert_int_equal(parse("\"\\ud83d\\ude00\"", &v), 0);
    assert_string_equal(json_object_get_string(v), "\xF0\x9F\x98\x80");
    json_object_put(v);
    assert_int_equal(parse("\"\\uD7FF\\uE000\"", &v), 0);
    assert_string_equal(json_object_get_string(v), "\xED\x9F\xBF\xEE\x80\x80");
    json_object_put(v);
}

static void test_parse_raw_nul(void **state)
{
    (void)state;
    static const char in_string[] = "{\"a\":\"b\0c\"}";
    static const char in_array[] = "[1,\0 2]";
    static const char after_value[] = "{}\0";
    static const char after_number[] = "1\0";
    static const char after_literal[] = "true\0";
    static const char nul_only[] = "\0";
    static const char key[] = "{\"a\0\":1}";
    REJECTED_N(in_string, sizeof in_string - 1);
    REJECTED_N(in_array, sizeof in_array - 1);
    REJECTED_N(after_value, sizeof after_value - 1);
    REJECTED_N(after_number, sizeof after_number - 1);
    REJECTED_N(after_literal, sizeof after_literal - 1);
    REJECTED_N(nul_only, sizeof nul_only - 1);
    REJECTED_N(key, sizeof key - 1);
}

/* An integer that fits in int64 is the only thing json_is_int64 accepts. */
static void test_is_int64(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool ok;
        int64_t value;
    } cases[] = {
        {"1", true, 1},
        {"0", true, 0},
        {"-1", true, -1},
        {"9223372036854775807", true, INT64_MAX},
        {"-9223372036854775808", true, INT64_MIN},
        {"1.0", false, 0},
        {"1e2", false, 0},
        {"-0.0", false, 0},
        {"true", false, 0},
        {"false", false, 0},
        {"\"1\"", false, 0},
        {"[1]", false, 0},
        {"{}", false, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_object *v;
        assert_int_equal(parse(cases[i].text, &v), 0);
        int64_t got = 12345;
        bool ok = json_is_int64(v, &got), ok_without_out = json_is_int64(v, NULL);
        json_object_put(v);
        if (ok != cases[i].ok) fail_msg("json_is_int64(%s) = %d", cases[i].text, ok);
        if (ok && got != cases[i].value)
            fail_msg("json_is_int64(%s) gave %lld", cases[i].text, (long long)got);
        assert_int_equal(ok_without_out, ok);
    }
    assert_false(json_is_int64(NULL, NULL)); /* JSON null */

    json_object *u = json_object_new_uint64(UINT64_MAX);
    assert_false(json_is_int64(u, NULL));
    json_object_put(u);
    u = json_object_new_uint64((uint64_t)INT64_MAX + 1);
    assert_false(json_is_int64(u, NULL));
    json_object_put(u);
    u = json_object_new_uint64(5);
    int64_t five = 0;
    assert_true(json_is_int64(u, &five));
    assert_int_equal(five, 5);
    json_object_put(u);
    u = json_object_new_double(5.0);
    assert_false(json_is_int64(u, NULL));
    json_object_put(u);
}

/* Integers outside int64 (json-c would clamp them to INT64_MIN/MAX) are
 * refused by the parser itself, so no clamped value reaches a handler. */
static void test_parse_rejects_out_of_range_integers(void **state)
{
    (void)state;
    static const char *const texts[] = {"9223372036854775808", "18446744073709551615",
                                        "-9223372036854775809", "[99999999999999999999999]",
                                        "{\"id\":9223372036854775808}"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        json_object *v = NULL;
        if (parse(texts[i], &v) != ERR_INVALID) fail_msg("%s was accepted", texts[i]);
        assert_null(v);
    }
    json_object *v;
    assert_int_equal(parse("9223372036854775807", &v), 0);
    json_object_put(v);
    assert_int_equal(parse("-9223372036854775808", &v), 0);
    json_object_put(v);
    assert_int_equal(parse("1e30", &v), 0); /* not an integer literal: a double */
    json_object_put(v);
}

/* Below INT64_MIN: json-c clamps the value to INT64_MIN, which must not
 * pass for the integer the client sent (it is refused or not an int64). */
static void test_is_int64_below_range(void **state)
{
    (void)state;
    static const char *const texts[] = {"-9223372036854775809", "-99999999999999999999999",
                                        "[-9223372036854775809]"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        json_object *v;
        if (parse(texts[i], &v) != 0) continue;
        json_object *n =
            json_object_is_type(v, json_type_array) ? json_object_array_get_idx(v, 0) : v;
        int64_t got = 0;
        bool ok = json_is_int64(n, &got);
        json_object_put(v);
        if (ok) fail_msg("json_is_int64(%s) is true, value %lld", texts[i], (long long)got);
    }
}

static const char fields_json[] =
    "{\"name\":\"alice\",\"count\":7,\"flag\":true,\"list\":[1,2],\"nothing\":null,"
    "\"count_str\":\"7\",\"ratio\":1.0,\"flag_int\":1,\"flag_str\":\"true\","
    "\"object\":{},\"nul_str\":\"a\\u0000b\","
    "\"empty\":\"\"}";

static int fields_setup(void **state)
{
    json_object *v;
    nova_err err;
    if (json_parse_strict(fields_json, strlen(fields_json), MAX_DEPTH, &v, &err)) return -1;
    *state = v;
    return 0;
}

static int fields_teardown(void **state)
{
    json_object_put(*state);
    return 0;
}

/* A field getter failing with ERR_INVALID and a message naming key. */
static void expect_field_error(int rc, const nova_err *err, const char *key)
{
    if (rc != ERR_INVALID || err->kind != ERR_INVALID)
        fail_msg("field '%s': returned %d, err.kind %d, want ERR_INVALID", key, rc, err->kind);
    if (!strstr(err->msg, key))
        fail_msg("field '%s': message \"%s\" does not name it", key, err->msg);
}

static void test_field_string(void **state)
{
    json_object *obj = *state;
    nova_err err;
    nova_err_clear(&err);
    const char *s = "unset";
    bool present = false;

    assert_int_equal(json_field_string(obj, "name", true, &s, &present, &err), 0);
    assert_string_equal(s, "alice");
    assert_true(present);
    assert_int_equal(json_field_string(obj, "empty", true, &s, NULL, &err), 0);
    assert_string_equal(s, "");
    assert_int_equal(err.kind, 0);

    s = "unset";
    assert_int_equal(json_field_string(obj, "nickname", false, &s, &present, &err), 0);
    assert_false(present);
    assert_string_equal(s, "unset");
    assert_int_equal(json_field_string(obj, "nickname", false, &s, NULL, &err), 0);

    expect_field_error(json_field_string(obj, "user_name", true, &s, &present, &err), &err,
                       "user_name");
    expect_field_error(json_field_string(obj, "count", true, &s, NULL, &err), &err, "count");
    expect_field_error(json_field_string(obj, "count", false, &s, NULL, &err), &err, "count");
    expect_field_error(json_field_string(obj, "flag", true, &s, NULL, &err), &err, "flag");
    expect_field_error(json_field_string(obj, "list", true, &s, NULL, &err), &err, "list");
    expect_field_error(json_field_string(obj, "object", true, &s, NULL, &err), &err, "object");
    expect_field_error(json_field_string(obj, "nothing", true, &s, NULL, &err), &err, "nothing");
    expect_field_error(json_field_string(obj, "nothing", false, &s, NULL, &err), &err, "nothing");
    expect_field_error(json_field_string(obj, "nul_str", true, &s, NULL, &err), &err, "nul_str");
    expect_field_error(json_field_string(obj, "nul_str", false, &s, NULL, &err), &err, "nul_str");
}

static void test_field_int(void **state)
{
    json_object *obj = *state;
    nova_err err;
    nova_err_clear(&err);
    int64_t i = -1;
    bool present = false;

    assert_int_equal(json_field_int(obj, "count", true, &i, &present, &err), 0);
    assert_int_equal(i, 7);
    assert_true(present);

    i = -1;
    assert_int_equal(json_field_int(obj, "limit", false, &i, &present, &err), 0);
    assert_false(present);
    assert_int_equal(i, -1);
    assert_int_equal(err.kind, 0);

    expect_field_error(json_field_int(obj, "chat_id", true, &i, &present, &err), &err, "chat_id");
    expect_field_error(json_field_int(obj, "count_str", true, &i, NULL, &err), &err, "count_str");
    expect_field_error(json_field_int(obj, "ratio", true, &i, NULL, &err), &err, "ratio");
    expect_field_error(json_field_int(obj, "flag", true, &i, NULL, &err), &err, "flag");
    expect_field_error(json_field_int(obj, "nothing", false, &i, NULL, &err), &err, "nothing");
    expect_field_error(json_field_int(obj, "list", true, &i, NULL, &err), &err, "list");
}

static void test_field_bool(void **state)
{
    json_object *obj = *state;
    nova_err err;
    nova_err_clear(&err);
    bool b = false, present = false;

    assert_int_equal(json_field_bool(obj, "flag", true, &b, &present, &err), 0);
    assert_true(b);
    assert_true(present);

    assert_int_equal(json_field_bool(obj, "mute", false, &b, &present, &err), 0);
    assert_false(present);
    assert_true(b);

    expect_field_error(json_field_bool(obj, "mute", true, &b, &present, &err), &err, "mute");
    expect_field_error(json_field_bool(obj, "flag_int", true, &b, NULL, &err), &err, "flag_int");
    expect_field_error(json_field_bool(obj, "flag_str", true, &b, NULL, &err), &err, "flag_str");
    expect_field_error(json_field_bool(obj, "nothing", false, &b, NULL, &err), &err, "nothing");
}

static void test_field_array(void **state)
{
    json_object *obj = *state;
    nova_err err;
    nova_err_clear(&err);
    json_object *a = NULL;
    bool present = false;

    assert_int_equal(json_field_array(obj, "list", true, &a, &present, &err), 0);
    assert_true(present);
    assert_true(json_object_is_type(a, json_type_array));
    assert_int_equal(json_object_array_length(a), 2);

    a = NULL;
    assert_int_equal(json_field_array(obj, "members", false, &a, &present, &err), 0);
    assert_false(present);
    assert_null(a);

    expect_field_error(json_field_array(obj, "members", true, &a, NULL, &err), &err, "members");
    expect_field_error(json_field_array(obj, "object", true, &a, NULL, &err), &err, "object");
    expect_field_error(json_field_array(obj, "name", true, &a, NULL, &err), &err, "name");
    expect_field_error(json_field_array(obj, "nothing", false, &a, NULL, &err), &err, "nothing");
}

/* An empty body is data = null: every required field is missing. */
static void test_fields_of_null_body(void **state)
{
    (void)state;
    nova_err err;
    nova_err_clear(&err);
    const char *s;
    bool present = true;
    expect_field_error(json_field_string(NULL, "password", true, &s, &present, &err), &err,
                       "password");
    assert_int_equal(json_field_string(NULL, "password", false, &s, &present, &err), 0);
    assert_false(present);
}

static void test_require_object(void **state)
{
    (void)state;
    nova_err err;
    nova_err_clear(&err);
    json_object *v;
    assert_int_equal(parse("{}", &v), 0);
    assert_int_equal(json_require_object(v, "body", &err), 0);
    json_object_put(v);

    assert_int_equal(json_require_object(NULL, "body", &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "body"));
    assert_int_equal(parse("[{}]", &v), 0);
    assert_int_equal(json_require_object(v, "data", &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "data"));
    json_object_put(v);
    assert_int_equal(parse("\"{}\"", &v), 0);
    assert_int_equal(json_require_object(v, "body", &err), ERR_INVALID);
    json_object_put(v);
}

/* json_util_init (called by main) makes times print with microseconds. */
static void test_time_serialisation(void **state)
{
    (void)state;
    size_t len = 0;
    json_object *t = json_time(1732761234.123456);
    assert_string_equal(json_text(t, &len), "1732761234.123456");
    assert_int_equal(len, strlen("1732761234.123456"));
    json_object_put(t);

    t = json_time(0.5);
    assert_string_equal(json_text(t, NULL), "0.500000");
    json_object_put(t);

    json_object *o = json_object_new_object();
    json_object_object_add(o, "time", json_time(1700000000.0));
    json_object_object_add(o, "id", json_i64(INT64_MAX));
    json_object_object_add(o, "url", json_str("https://x/a.png"));
    assert_string_equal(json_text(o, NULL),
                        "{\"time\":1700000000.000000,\"id\":9223372036854775807,"
                        "\"url\":\"https://x/a.png\"}");
    json_object_put(o);
}

int main(void)
{
    json_util_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_objects_and_arrays),
        cmocka_unit_test(test_parse_top_level_scalars),
        cmocka_unit_test(test_parse_honours_length),
        cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_parse_rejects_single_quoted_keys),
        cmocka_unit_test(test_parse_number_grammar),
        cmocka_unit_test(test_parse_rejects_raw_control_characters),
        cmocka_unit_test(test_parse_trailing_garbage),
        cmocka_unit_test(test_parse_non_finite_numbers),
        cmocka_unit_test(test_parse_depth),
        cmocka_unit_test(test_parse_invalid_utf8),
        cmocka_unit_test(test_parse_rejects_non_utf8_sequences),
        cmocka_unit_test(test_parse_raw_nul),
        cmocka_unit_test(test_parse_escaped_surrogates),
        cmocka_unit_test(test_is_int64),
        cmocka_unit_test(test_is_int64_below_range),
        cmocka_unit_test(test_parse_rejects_out_of_range_integers),
        cmocka_unit_test_setup_teardown(test_field_string, fields_setup, fields_teardown),
        cmocka_unit_test_setup_teardown(test_field_int, fields_setup, fields_teardown),
        cmocka_unit_test_setup_teardown(test_field_bool, fields_setup, fields_teardown),
        cmocka_unit_test_setup_teardown(test_field_array, fields_setup, fields_teardown),
        cmocka_unit_test(test_fields_of_null_body),
        cmocka_unit_test(test_require_object),
        cmocka_unit_test(test_time_serialisation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
