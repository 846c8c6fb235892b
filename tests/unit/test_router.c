/* test_router.c - path patterns, ids and methods (fcgi/router.c).
 *
 * API.md §1: a trailing slash, an empty segment, or an id that is not a
 * positive decimal integer fitting in 63 bits makes the path unknown. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "../../fcgi/router.h"

/* router_match, failing the test if the result is not want. */
static void expect_match(const char *pattern, const char *path, int want)
{
    int64_t ids[ROUTE_MAX_IDS] = {0};
    size_t n = 99;
    int got = router_match(pattern, path, ids, &n);
    if (got != want)
        fail_msg("router_match(\"%s\", \"%s\") = %d, want %d", pattern, path, got, want);
    if (got && n != 0 && !strstr(pattern, "{id}"))
        fail_msg("router_match(\"%s\", \"%s\"): %zu ids", pattern, path, n);
}

/* The single id of "/chat/{id}" matched against "/chat/<segment>". */
static int parse_segment(const char *segment, int64_t *id)
{
    char path[128];
    int64_t ids[ROUTE_MAX_IDS] = {0};
    size_t n = 0;
    strcpy(path, "/chat/");
    strcat(path, segment);
    if (!router_match("/chat/{id}", path, ids, &n)) return -1;
    assert_int_equal(n, 1);
    *id = ids[0];
    return 0;
}

static void test_literal_routes(void **state)
{
    (void)state;
    expect_match("/user", "/user", 1);
    expect_match("/user/login", "/user/login", 1);
    expect_match("/friend/group/list", "/friend/group/list", 1);

    expect_match("/user", "/users", 0);
    expect_match("/user", "/use", 0);
    expect_match("/user", "/USER", 0);
    expect_match("/user/login", "/user/logout", 0);
    expect_match("/user/login", "/user", 0); /* missing segment */
    expect_match("/user", "/user/login", 0); /* extra segment */
    expect_match("/user", "/user/", 0);      /* trailing slash */
    expect_match("/user/login", "/user/login/", 0);
    expect_match("/user", "//user", 0); /* empty segment */
    expect_match("/user/login", "/user//login", 0);
    expect_match("/user/login", "//user/login", 0);
    expect_match("/user", "user", 0); /* no leading slash */
    expect_match("/user", "", 0);
    expect_match("/user", "/", 0);
    expect_match("/user", "/user?x=1", 0);
}

static void test_id_routes(void **state)
{
    (void)state;
    int64_t ids[ROUTE_MAX_IDS] = {0};
    size_t n = 0;

    assert_int_equal(router_match("/chat/{id}/messages", "/chat/3/messages", ids, &n), 1);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 3);

    assert_int_equal(router_match("/chat/{id}/member/{id}", "/chat/12/member/3400", ids, &n), 1);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 12);
    assert_int_equal(ids[1], 3400);

    assert_int_equal(router_match("/a/{id}/{id}/{id}", "/a/1/20/300", ids, &n), 1);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 20);
    assert_int_equal(ids[2], 300);

    /* a literal where the pattern has one, and vice versa */
    expect_match("/chat/{id}/messages", "/chat/messages/3", 0);
    expect_match("/chat/{id}", "/chat/{id}", 0);
    expect_match("/chat/{id}/messages", "/chat/3/message", 0);
    /* missing, extra and empty segments */
    expect_match("/chat/{id}/messages", "/chat/3", 0);
    expect_match("/chat/{id}/messages", "/chat/3/messages/4", 0);
    expect_match("/chat/{id}/messages", "/chat//messages", 0);
    expect_match("/chat/{id}", "/chat/", 0);
    expect_match("/chat/{id}", "/chat", 0);
    expect_match("/chat/{id}", "/chat/3/", 0); /* trailing slash */
    expect_match("/chat/{id}", "/chat//3", 0);

    /* more ids than ROUTE_MAX_IDS never match (and never overflow ids) */
    expect_match("/a/{id}/{id}/{id}/{id}", "/a/1/2/3/4", 0);
}

static void test_id_values(void **state)
{
    (void)state;
    int64_t id = 0;
    assert_int_equal(parse_segment("1", &id), 0);
    assert_int_equal(id, 1);
    assert_int_equal(parse_segment("10", &id), 0);
    assert_int_equal(id, 10);
    assert_int_equal(parse_segment("1000000007", &id), 0);
    assert_int_equal(id, 1000000007);
    assert_int_equal(parse_segment("9223372036854775807", &id), 0);
    assert_true(id == INT64_MAX);

    static const char *const bad[] = {
        "0",
        "00",
        "007",
        "01",
        "-1",
        "+1",
        "1a",
        "a1",
        "abc",
        " 1",
        "1 ",
        "1.0",
        "1e3",
        "0x10",
        "%31",
        "\xD9\xA1", /* ARABIC-INDIC DIGIT ONE */
        "9223372036854775808",
        "9999999999999999999",
        "10000000000000000000",
        "18446744073709551616",
        "99999999999999999999999999",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (parse_segment(bad[i], &id) == 0)
            fail_msg("id \"%s\" accepted as %lld", bad[i], (long long)id);
}

static void test_parse_id(void **state)
{
    (void)state;
    int64_t id = 0;
    assert_int_equal(router_parse_id("42", 2, &id), 0);
    assert_int_equal(id, 42);
    assert_int_equal(router_parse_id("123/x", 3, &id), 0); /* only len characters */
    assert_int_equal(id, 123);
    assert_int_equal(router_parse_id("9223372036854775807", 19, &id), 0);
    assert_true(id == INT64_MAX);
    id = 7;
    assert_int_not_equal(router_parse_id("", 0, &id), 0);
    assert_int_not_equal(router_parse_id("0", 1, &id), 0);
    assert_int_not_equal(router_parse_id("12", 3, &id), 0); /* NUL inside len */
    assert_int_not_equal(router_parse_id("9223372036854775808", 19, &id), 0);
    assert_int_equal(id, 7); /* untouched on failure */
}

static void test_method(void **state)
{
    (void)state;
    assert_int_equal(router_method("GET"), METHOD_GET);
    assert_int_equal(router_method("POST"), METHOD_POST);
    assert_int_equal(router_method("PATCH"), METHOD_PATCH);
    assert_int_equal(router_method("DELETE"), METHOD_DELETE);
    assert_int_equal(router_method("OPTIONS"), METHOD_OPTIONS);
    assert_int_equal(router_method("get"), 0);
    assert_int_equal(router_method("Post"), 0);
    assert_int_equal(router_method("PUT"), 0);
    assert_int_equal(router_method("HEAD"), 0);
    assert_int_equal(router_method("GETS"), 0);
    assert_int_equal(router_method("GE"), 0);
    assert_int_equal(router_method(" GET"), 0);
    assert_int_equal(router_method(""), 0);
    assert_int_equal(router_method(NULL), 0);
    /* the bits are distinct, so masks can combine them */
    assert_int_equal(METHOD_GET | METHOD_POST | METHOD_PATCH | METHOD_DELETE | METHOD_OPTIONS, 31);
}

static void expect_allow(unsigned methods, const char *want)
{
    char out[64];
    memset(out, 'x', sizeof out);
    router_allow_text(methods, out, sizeof out);
    if (strcmp(out, want)) fail_msg("allow text of %u: \"%s\", want \"%s\"", methods, out, want);
}

static void test_allow_text(void **state)
{
    (void)state;
    expect_allow(METHOD_POST | METHOD_OPTIONS, "POST, OPTIONS");
    expect_allow(METHOD_GET, "GET");
    expect_allow(METHOD_OPTIONS, "OPTIONS");
    expect_allow(METHOD_GET | METHOD_DELETE | METHOD_OPTIONS, "GET, DELETE, OPTIONS");
    expect_allow(METHOD_PATCH | METHOD_GET, "GET, PATCH");
    expect_allow(METHOD_GET | METHOD_POST | METHOD_PATCH | METHOD_DELETE | METHOD_OPTIONS,
                 "GET, POST, PATCH, DELETE, OPTIONS");
    expect_allow(0, "");
    expect_allow(32 | 64, ""); /* unknown bits are ignored */
    expect_allow(METHOD_GET | 128, "GET");

    /* a buffer too small is never overrun and stays terminated */
    char small[8];
    memset(small, 'x', sizeof small);
    router_allow_text(METHOD_GET | METHOD_POST | METHOD_OPTIONS, small, sizeof small);
    assert_non_null(memchr(small, '\0', sizeof small));
    assert_int_equal(strncmp(small, "GET", 3), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_routes), cmocka_unit_test(test_id_routes),
        cmocka_unit_test(test_id_values),      cmocka_unit_test(test_parse_id),
        cmocka_unit_test(test_method),         cmocka_unit_test(test_allow_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
