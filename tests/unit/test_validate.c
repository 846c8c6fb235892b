/* test_validate.c - the field rules of API.md §2 (common/validate.c).
 *
 * Every validator must answer 0, or ERR_INVALID with a message naming the field;
 * check() enforces that contract for each input, so the tests themselves
 * only say which inputs are accepted and which are rejected. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../../common/validate.h"

typedef int (*validator)(const char *s, nova_err *err);

/* Run v on s: 0, or ERR_INVALID after checking err says so and names field. */
static int check(validator v, const char *field, const char *s)
{
    nova_err err;
    nova_err_clear(&err);
    int rc = v(s, &err);
    if (rc == 0) {
        if (err.kind != 0) fail_msg("%s \"%.60s\": 0 but err.kind %d", field, s, err.kind);
        return 0;
    }
    if (rc != ERR_INVALID || err.kind != ERR_INVALID)
        fail_msg("%s \"%.60s\": returned %d, err.kind %d, want ERR_INVALID", field, s, rc, err.kind);
    if (!strstr(err.msg, field))
        fail_msg("%s \"%.60s\": message \"%s\" does not name the field", field, s, err.msg);
    return rc;
}

static int password_rule(const char *s, nova_err *err)
{
    return validate_password(s, "password", err);
}

#define ACCEPTS(v, field, s) assert_int_equal(check(v, field, s), 0)
#define REJECTS(v, field, s) assert_int_equal(check(v, field, s), ERR_INVALID)

#define NAME_OK(s) ACCEPTS(validate_user_name, "user_name", s)
#define NAME_BAD(s) REJECTS(validate_user_name, "user_name", s)
#define PASSWORD_OK(s) ACCEPTS(password_rule, "password", s)
#define PASSWORD_BAD(s) REJECTS(password_rule, "password", s)
#define EMAIL_OK(s) ACCEPTS(validate_email, "email", s)
#define EMAIL_BAD(s) REJECTS(validate_email, "email", s)
#define PHONE_OK(s) ACCEPTS(validate_phone, "phone", s)
#define PHONE_BAD(s) REJECTS(validate_phone, "phone", s)
#define AVATAR_OK(s) ACCEPTS(validate_avatar_url, "avatar_url", s)
#define AVATAR_BAD(s) REJECTS(validate_avatar_url, "avatar_url", s)

/* A malloc'd string: prefix, then unit repeated n times, then suffix. */
static char *build(const char *prefix, const char *unit, size_t n, const char *suffix)
{
    size_t lp = strlen(prefix), lu = strlen(unit), ls = strlen(suffix);
    char *s = malloc(lp + lu * n + ls + 1);
    assert_non_null(s);
    memcpy(s, prefix, lp);
    for (size_t i = 0; i < n; i++)
        memcpy(s + lp + i * lu, unit, lu);
    memcpy(s + lp + lu * n, suffix, ls + 1);
    return s;
}

/* check() on build(prefix, unit, n, suffix): for long inputs. */
static int check_built(validator v, const char *field, const char *prefix, const char *unit,
                       size_t n, const char *suffix)
{
    char *s = build(prefix, unit, n, suffix);
    int rc = check(v, field, s);
    free(s);
    return rc;
}

static void test_user_name_length(void **state)
{
    (void)state;
    NAME_BAD("");
    NAME_OK("a");
    NAME_OK("Z");
    NAME_OK("7");
    assert_int_equal(check_built(validate_user_name, "user_name", "", "a", 31, ""), 0);
    assert_int_equal(check_built(validate_user_name, "user_name", "", "a", 32, ""), 0);
    assert_int_equal(check_built(validate_user_name, "user_name", "", "a", 33, ""), ERR_INVALID);
    assert_int_equal(check_built(validate_user_name, "user_name", "", "a", 200, ""), ERR_INVALID);
}

static void test_user_name_charset(void **state)
{
    (void)state;
    NAME_OK("abcdefghijklmnopqrstuvwxyz");
    NAME_OK("ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    NAME_OK("0123456789");
    NAME_OK("a-b");
    NAME_OK("a_b");
    NAME_OK("a(b");
    NAME_OK("a)b");
    NAME_OK("a@b");
    NAME_OK("a.b");
    NAME_OK("-");
    NAME_OK("_");
    NAME_OK("(");
    NAME_OK(")");
    NAME_OK("@");
    NAME_OK(".");
    NAME_OK("-_()@.");
    NAME_OK("alice.smith@home_(2)-x");

    NAME_BAD("a b");
    NAME_BAD(" alice");
    NAME_BAD("alice ");
    NAME_BAD("a#b");
    NAME_BAD("a/b");
    NAME_BAD("a+b");
    NAME_BAD("a,b");
    NAME_BAD("a'b");
    NAME_BAD("a\"b");
    NAME_BAD("a\tb");
    NAME_BAD("a\nb");
    NAME_BAD("<script>");
    NAME_BAD("caf\xC3\xA9");              /* café */
    NAME_BAD("\xE5\x90\x8D\xE5\xAD\x97"); /* 名字 */
    NAME_BAD("\xF0\x9F\x98\x80");         /* emoji */
    NAME_BAD("\xEF\xBC\xA1");             /* fullwidth A */
    NAME_BAD("a\xFF");                    /* not UTF-8 */
}

/* Every ASCII character alone: allowed exactly when API.md lists it. */
static void test_user_name_every_ascii_char(void **state)
{
    (void)state;
    for (int c = 1; c < 128; c++) {
        char s[2] = {(char)c, '\0'};
        int allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      strchr("-_()@.", c) != NULL;
        if (check(validate_user_name, "user_name", s) != (allowed ? 0 : ERR_INVALID))
            fail_msg("character 0x%02x: want %s", c, allowed ? "accepted" : "rejected");
    }
}

static void test_password_length(void **state)
{
    (void)state;
    PASSWORD_BAD("");
    PASSWORD_BAD("a");
    PASSWORD_BAD("12345");
    PASSWORD_OK("123456");
    PASSWORD_OK("secret1");
    PASSWORD_OK("!@#$%^&*()");
    assert_int_equal(check_built(password_rule, "password", "", "x", 1000, ""), 0);
}

/* Length counts code points: five 2-, 3- or 4-byte characters are five. */
static void test_password_counts_code_points(void **state)
{
    (void)state;
    PASSWORD_BAD("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9");        /* ééééé: 10 bytes */
    PASSWORD_OK("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"); /* éééééé */
    PASSWORD_BAD("\xE5\xAF\x86\xE7\xA0\x81\xE5\xAF\x86\xE7\xA0\x81"  /* 密码密码密: 15 bytes */
                 "\xE5\xAF\x86");
    PASSWORD_OK("\xE5\xAF\x86\xE7\xA0\x81\xE5\xAF\x86\xE7\xA0\x81" /* 密码密码密码 */
                "\xE5\xAF\x86\xE7\xA0\x81");
    /* five emoji are 20 bytes */
    assert_int_equal(check_built(password_rule, "password", "", "\xF0\x9F\x98\x80", 5, ""), ERR_INVALID);
    assert_int_equal(check_built(password_rule, "password", "", "\xF0\x9F\x98\x80", 6, ""), 0);
    PASSWORD_OK("abcd\xC3\xA9\xC3\xA9"); /* mixed: 6 */
    PASSWORD_BAD("abc\xC3\xA9\xC3\xA9"); /* mixed: 5 */
}

static void test_password_whitespace(void **state)
{
    (void)state;
    PASSWORD_BAD("abc def");
    PASSWORD_BAD(" abcdef");
    PASSWORD_BAD("abcdef ");
    PASSWORD_BAD("abc\tdef");
    PASSWORD_BAD("abc\ndef");
    PASSWORD_BAD("abc\rdef");
    PASSWORD_BAD("abc\vdef");
    PASSWORD_BAD("abc\fdef");
    PASSWORD_BAD("      ");
}

static void test_password_field_name_and_utf8(void **state)
{
    (void)state;
    nova_err err;
    nova_err_clear(&err);
    assert_int_equal(validate_password("short", "new_password", &err), ERR_INVALID);
    assert_int_equal(err.kind, ERR_INVALID);
    assert_non_null(strstr(err.msg, "new_password"));
    nova_err_clear(&err);
    assert_int_equal(validate_password("has space", "old_password", &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "old_password"));
    /* NULL err is allowed (nova_fail ignores it) */
    assert_int_equal(validate_password("x", "password", NULL), ERR_INVALID);
    PASSWORD_BAD("abcdefgh\xFF"); /* not UTF-8 */
    PASSWORD_BAD("abcdefgh\xC0\x80");
}

static void test_email_valid(void **state)
{
    (void)state;
    EMAIL_OK("");
    EMAIL_OK("a@b.c");
    EMAIL_OK("alice@example.com");
    EMAIL_OK("first.last+tag@mail.sub.example.org");
    EMAIL_OK("A_Z-0.9+x@x-y.co");
    EMAIL_OK("_@1.2");
    EMAIL_OK(".a.@b.c"); /* the regex allows dots anywhere before @ */
    EMAIL_OK("a@-.-");   /* and labels made of hyphens */
}

static void test_email_invalid(void **state)
{
    (void)state;
    EMAIL_BAD("alice");
    EMAIL_BAD("alice.example.com"); /* no @ */
    EMAIL_BAD("@example.com");      /* empty local part */
    EMAIL_BAD("alice@");            /* empty domain */
    EMAIL_BAD("alice@localhost");   /* single-label domain */
    EMAIL_BAD("a@b..c");            /* empty label */
    EMAIL_BAD("a@b.c.");            /* trailing dot */
    EMAIL_BAD("a@.b.c");            /* leading dot */
    EMAIL_BAD("a@b@c.d");           /* two @ */
    EMAIL_BAD("a b@c.d");           /* space in local part */
    EMAIL_BAD("a#b@c.d");           /* '#' in local part */
    EMAIL_BAD("a!@c.d");
    EMAIL_BAD("a@b_c.d"); /* '_' in domain */
    EMAIL_BAD("a@b+c.d"); /* '+' in domain */
    EMAIL_BAD("a@b.c ");  /* trailing space */
    EMAIL_BAD(" a@b.c");
    EMAIL_BAD("\xC3\xA9@b.c");  /* é in local part */
    EMAIL_BAD("a@b\xC3\xA9.c"); /* é in domain */
    EMAIL_BAD("a@b.c\n");
}

static void test_email_length(void **state)
{
    (void)state;
    /* 95 + strlen("@b.cd") = 100 characters, then 101 */
    assert_int_equal(check_built(validate_email, "email", "", "a", 95, "@b.cd"), 0);
    assert_int_equal(check_built(validate_email, "email", "", "a", 96, "@b.cd"), ERR_INVALID);
    /* 2 + 98 + 2 = 102, too long in the domain */
    assert_int_equal(check_built(validate_email, "email", "a@", "b.", 49, "cd"), ERR_INVALID);
}

static void test_phone(void **state)
{
    (void)state;
    PHONE_OK("");
    PHONE_OK("13800138000");
    PHONE_OK("10000000000");
    PHONE_OK("19999999999");
    PHONE_BAD("1380013800");   /* 10 digits */
    PHONE_BAD("138001380001"); /* 12 digits */
    PHONE_BAD("1");
    PHONE_BAD("23800138000"); /* does not start with 1 */
    PHONE_BAD("03800138000");
    PHONE_BAD("1380013800a");
    PHONE_BAD("+1380013800");
    PHONE_BAD("+13800138000");
    PHONE_BAD("138-0013800");
    PHONE_BAD(" 13800138000");
    PHONE_BAD("13800138000 ");
    PHONE_BAD("1380013800\xEF\xBC\x90"); /* fullwidth zero */
}

static void test_avatar_data_url(void **state)
{
    (void)state;
    AVATAR_OK("");
    AVATAR_OK("data:image/png;base64,iVBORw0KGgo=");
    AVATAR_OK("data:image/png;base64,AAAA");
    AVATAR_OK("data:image/jpeg;base64,AA==");
    AVATAR_OK("data:image/gif;base64,AAA=");
    AVATAR_OK("data:image/PNG;base64,ab+/09Zz");

    AVATAR_BAD("data:image/;base64,AAAA");        /* no type */
    AVATAR_BAD("data:image/svg+xml;base64,AAAA"); /* type is not letters */
    AVATAR_BAD("data:image/png2;base64,AAAA");
    AVATAR_BAD("data:image/png,AAAA"); /* not base64 */
    AVATAR_BAD("data:image/png;base64;AAAA");
    AVATAR_BAD("data:image/png;charset=utf-8,AAAA");
    AVATAR_BAD("data:text/plain;base64,AAAA"); /* not an image */
    AVATAR_BAD("data:;base64,AAAA");
    AVATAR_BAD("data:image/png;base64,AAA"); /* length not a multiple of 4 */
    AVATAR_BAD("data:image/png;base64,AAAAA");
    AVATAR_BAD("data:image/png;base64,AA=A"); /* data after padding */
    AVATAR_BAD("data:image/png;base64,A==="); /* three padding characters */
    AVATAR_BAD("data:image/png;base64,AAAA====");
    AVATAR_BAD("data:image/png;base64,AA*A"); /* not in the alphabet */
    AVATAR_BAD("data:image/png;base64,AA A");
    AVATAR_BAD("data:image/png;base64,-_AA"); /* base64url is not base64 */
    AVATAR_BAD("data:image/png;base64,AAAA\n");
}

static void test_avatar_data_url_length(void **state)
{
    (void)state;
    /* 20 + 99980 = 100000 characters */
    assert_int_equal(
        check_built(validate_avatar_url, "avatar_url", "data:image/a;base64,", "AAAA", 24995, ""),
        0);
    /* 21 + 99980 = 100001, the data itself still valid base64 */
    assert_int_equal(
        check_built(validate_avatar_url, "avatar_url", "data:image/ab;base64,", "AAAA", 24995, ""),
        ERR_INVALID);
}

static void test_avatar_http_url(void **state)
{
    (void)state;
    AVATAR_OK("http://example.com/a.png");
    AVATAR_OK("https://example.com/a.png");
    AVATAR_OK("https://cdn.example.com:8443/u/1/avatar.png?size=64&v=2#x");
    AVATAR_OK("https://example.com/\xC3\xA9.png");

    AVATAR_BAD("http://");
    AVATAR_BAD("https://");
    AVATAR_BAD("ftp://example.com/a.png");
    AVATAR_BAD("javascript:alert(1)");
    AVATAR_BAD("file:///etc/passwd");
    AVATAR_BAD("//example.com/a.png");
    AVATAR_BAD("example.com/a.png");
    AVATAR_BAD("http:/example.com/a.png");
    AVATAR_BAD(" https://example.com/a.png");
    AVATAR_BAD("https://example.com/a b.png");
    AVATAR_BAD("https://example.com/\"onerror=\"x");
    AVATAR_BAD("https://example.com/<x>");
    AVATAR_BAD("https://example.com/\x01");
    AVATAR_BAD("https://example.com/\xFF"); /* not UTF-8 */
}

static void test_avatar_http_url_length(void **state)
{
    (void)state;
    /* 8 + 492 = 500 characters, then 501 */
    assert_int_equal(check_built(validate_avatar_url, "avatar_url", "https://", "a", 492, ""), 0);
    assert_int_equal(check_built(validate_avatar_url, "avatar_url", "https://", "a", 493, ""), ERR_INVALID);
    assert_int_equal(check_built(validate_avatar_url, "avatar_url", "http://", "a", 493, ""), 0);
    assert_int_equal(check_built(validate_avatar_url, "avatar_url", "http://", "a", 494, ""), ERR_INVALID);
    /* 10 + 490 = 500 code points in 990 bytes: characters count, not bytes */
    assert_int_equal(
        check_built(validate_avatar_url, "avatar_url", "https://x/", "\xC3\xA9", 490, ""), 0);
    assert_int_equal(
        check_built(validate_avatar_url, "avatar_url", "https://x/", "\xC3\xA9", 491, ""), ERR_INVALID);
}

/* validate_length on unit repeated n times, without an err. */
static int length_rule(const char *unit, size_t n, long min, long max)
{
    char *s = build("", unit, n, "");
    int rc = validate_length(s, "field", min, max, NULL);
    free(s);
    return rc;
}

static void test_validate_length(void **state)
{
    (void)state;
    nova_err err;
    nova_err_clear(&err);
    assert_int_equal(validate_length("abc", "chat_name", 1, CHAT_NAME_MAX, &err), 0);
    assert_int_equal(err.kind, 0);
    assert_int_equal(validate_length("", "comment", 0, COMMENT_MAX, &err), 0);

    assert_int_equal(validate_length("", "chat_name", 1, CHAT_NAME_MAX, &err), ERR_INVALID);
    assert_int_equal(err.kind, ERR_INVALID);
    assert_non_null(strstr(err.msg, "chat_name"));

    assert_int_equal(length_rule("a", CHAT_NAME_MAX, 1, CHAT_NAME_MAX), 0);
    assert_int_equal(length_rule("a", CHAT_NAME_MAX + 1, 1, CHAT_NAME_MAX), ERR_INVALID);
    /* 60 two-, three- or four-byte characters fit in 60; 61 do not */
    assert_int_equal(length_rule("\xC3\xA9", CHAT_NAME_MAX, 1, CHAT_NAME_MAX), 0);
    assert_int_equal(length_rule("\xC3\xA9", CHAT_NAME_MAX + 1, 1, CHAT_NAME_MAX), ERR_INVALID);
    assert_int_equal(length_rule("\xE5\x90\x8D", CHAT_NAME_MAX, 1, CHAT_NAME_MAX), 0);
    assert_int_equal(length_rule("\xE5\x90\x8D", CHAT_NAME_MAX + 1, 1, CHAT_NAME_MAX), ERR_INVALID);
    assert_int_equal(length_rule("\xF0\x9F\x98\x80", NICKNAME_MAX, 0, NICKNAME_MAX), 0);
    assert_int_equal(length_rule("\xF0\x9F\x98\x80", NICKNAME_MAX + 1, 0, NICKNAME_MAX), ERR_INVALID);

    /* invalid UTF-8 is never a valid string, even when empty is allowed */
    nova_err_clear(&err);
    assert_int_equal(validate_length("ab\xFF", "comment", 0, COMMENT_MAX, &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "comment"));
    assert_int_equal(validate_length("\x80", "group_name", 1, GROUP_NAME_MAX, NULL), ERR_INVALID);
}

static void test_utf8_length_valid(void **state)
{
    (void)state;
    assert_int_equal(utf8_length(""), 0);
    assert_int_equal(utf8_length("abc"), 3);
    assert_int_equal(utf8_length("\xC2\x80"), 1);         /* U+0080 */
    assert_int_equal(utf8_length("\xC3\xA9"), 1);         /* é */
    assert_int_equal(utf8_length("\xDF\xBF"), 1);         /* U+07FF */
    assert_int_equal(utf8_length("\xE0\xA0\x80"), 1);     /* U+0800 */
    assert_int_equal(utf8_length("\xE2\x82\xAC"), 1);     /* € */
    assert_int_equal(utf8_length("\xED\x9F\xBF"), 1);     /* U+D7FF */
    assert_int_equal(utf8_length("\xEE\x80\x80"), 1);     /* U+E000 */
    assert_int_equal(utf8_length("\xEF\xBF\xBF"), 1);     /* U+FFFF */
    assert_int_equal(utf8_length("\xF0\x90\x80\x80"), 1); /* U+10000 */
    assert_int_equal(utf8_length("\xF0\x9F\x98\x80"), 1); /* 😀 */
    assert_int_equal(utf8_length("\xF4\x8F\xBF\xBF"), 1); /* U+10FFFF */
    assert_int_equal(utf8_length("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z"), 5);
}

static void test_utf8_length_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\x80",  /* lone continuation byte */
        "a\xBF", /* continuation byte after ASCII */
        "\xC3",  /* truncated 2-byte sequence */
        "\xC3"
        "a",            /* ... followed by ASCII */
        "\xE2\x82",     /* truncated 3-byte sequence */
        "\xF0\x9F\x98", /* truncated 4-byte sequence */
        "\xF0\x9F\x98 ",
        "\xC0\x80",         /* overlong NUL */
        "\xC1\xBF",         /* overlong U+007F */
        "\xE0\x80\x80",     /* overlong 3-byte */
        "\xE0\x9F\xBF",     /* overlong U+07FF */
        "\xF0\x80\x80\x80", /* overlong 4-byte */
        "\xF0\x8F\xBF\xBF", /* overlong U+FFFF */
        "\xED\xA0\x80",     /* U+D800, a surrogate */
        "\xED\xBF\xBF",     /* U+DFFF */
        "\xF4\x90\x80\x80", /* U+110000 */
        "\xF5\x80\x80\x80",
        "\xF7\xBF\xBF\xBF",
        "\xF8\x88\x80\x80\x80", /* 5-byte form */
        "\xFC\x84\x80\x80\x80\x80",
        "\xFE",
        "\xFF",
        "valid then \xFF",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        long n = utf8_length(bad[i]);
        if (n != -1) fail_msg("bad[%zu]: utf8_length = %ld, want -1", i, n);
    }
}

/* Text echoed in error messages is always valid UTF-8, cut only at
 * character boundaries, without control characters. */
static void test_utf8_excerpt(void **state)
{
    (void)state;
    char out[16];
    assert_string_equal(utf8_excerpt(out, sizeof out, "/user/abc", 200), "/user/abc");
    assert_string_equal(utf8_excerpt(out, sizeof out, "/\xff/\xc3", 200), "/?/?");
    assert_string_equal(utf8_excerpt(out, sizeof out, "a\nb\x7f", 200), "a?b?");
    /* "\xc3\xa9" (é) must not be cut in half by max_bytes... */
    assert_string_equal(utf8_excerpt(out, sizeof out, "ab\xc3\xa9", 3), "ab");
    /* ...nor by the output size (room for 3 bytes + NUL). */
    char small[4];
    assert_string_equal(utf8_excerpt(small, sizeof small, "ab\xc3\xa9", 200), "ab");
    /* overlong and surrogate forms are invalid bytes */
    assert_string_equal(utf8_excerpt(out, sizeof out, "\xc0\x80\xed\xa0\x80", 200), "?????");
    assert_int_equal(
        utf8_length(utf8_excerpt(out, sizeof out, "x\xe2\x82\xacy\xf0\x9f\x98\x80", 200)), 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_name_length),
        cmocka_unit_test(test_user_name_charset),
        cmocka_unit_test(test_user_name_every_ascii_char),
        cmocka_unit_test(test_password_length),
        cmocka_unit_test(test_password_counts_code_points),
        cmocka_unit_test(test_password_whitespace),
        cmocka_unit_test(test_password_field_name_and_utf8),
        cmocka_unit_test(test_email_valid),
        cmocka_unit_test(test_email_invalid),
        cmocka_unit_test(test_email_length),
        cmocka_unit_test(test_phone),
        cmocka_unit_test(test_avatar_data_url),
        cmocka_unit_test(test_avatar_data_url_length),
        cmocka_unit_test(test_avatar_http_url),
        cmocka_unit_test(test_avatar_http_url_length),
        cmocka_unit_test(test_validate_length),
        cmocka_unit_test(test_utf8_length_valid),
        cmocka_unit_test(test_utf8_length_invalid),
        cmocka_unit_test(test_utf8_excerpt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
