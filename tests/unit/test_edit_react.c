/* test_edit_react.c - [ext] what an emoji is (common/edit_react.c,
 * docs/API.md "[ext] Edit and react"). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "../../common/edit_react.h"

static int check(const char *s, size_t len, size_t max)
{
    nova_err err;
    nova_err_clear(&err);
    int rc = emoji_check(s, len, max, &err);
    if (rc && (rc != ERR_INVALID || !err.msg[0])) fail_msg("\"%s\": rc %d", s, rc);
    return rc;
}

static void test_accepted(void **state)
{
    (void)state;
    static const char *const good[] = {
        "\xF0\x9F\x91\x8D",                 /* thumbs up */
        "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD", /* + skin tone */
        "\xE2\x9D\xA4\xEF\xB8\x8F",         /* heart + VS16 */
        "\xE2\x9D\xA4",                     /* bare heart */
        "\xF0\x9F\x87\xAB\xF0\x9F\x87\xB7", /* flag FR */
        "1\xEF\xB8\x8F\xE2\x83\xA3",
        "#\xE2\x83\xA3",                                                            /* keycaps */
        "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7", /* family */
        "\xF0\x9F\x8F\xB4\xF3\xA0\x81\xA7\xF3\xA0\x81\xA2\xF3\xA0\x81\xA5\xF3\xA0\x81\xAE"
        "\xF3\xA0\x81\xA7\xF3\xA0\x81\xBF", /* England */
        "\xC2\xA9",                         /* copyright */
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (check(good[i], strlen(good[i]), 64)) fail_msg("refused good emoji %zu", i);
}

static void test_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "a",
        "1",
        "#",
        "ok",
        " ",
        "\xF0\x9F\x91\x8D\xF0\x9F\x91\x8D",                         /* two emojis */
        "\xE2\x80\x8D\xF0\x9F\x91\x8D",                             /* leading ZWJ */
        "\xF0\x9F\x91\x8D\xE2\x80\x8D",                             /* trailing ZWJ */
        "\xF0\x9F\x91\x8D\xE2\x80\x8D\xE2\x80\x8D\xF0\x9F\x91\x8D", /* two ZWJs */
        "\xF0\x9F\x8F\xBD",                                         /* lone skin tone */
        "\xEF\xB8\x8F",                                             /* lone VS */
        "\xF0\x9F\x87\xAB",                                         /* lone regional indicator */
        "1\xEF\xB8\x8F",                                            /* keycap without U+20E3 */
        "\xF0\x9F\x8F\xB4\xF3\xA0\x81\xA7",                         /* unterminated tag */
        "\xF0\x9F\x91\x8D\n",
        "\x07",
        "\xF0\x9F\x91", /* control, truncated */
        "\xC0\xA9",
        "\xED\xA0\x80",                                     /* overlong, surrogate */
        "\xF4\x90\x80\x80",                                 /* beyond U+10FFFF */
        "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD\xF0\x9F\x8F\xBD", /* two skin tones */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (!check(bad[i], strlen(bad[i]), 64)) fail_msg("accepted bad emoji %zu", i);
    /* A NUL inside, and the byte limit. */
    if (!check("\xF0\x9F\x91\x8D\0x", 6, 64)) fail_msg("accepted a NUL");
    if (!check("\xF0\x9F\x91\x8D", 4, 3)) fail_msg("accepted over the byte limit");
    if (check("\xF0\x9F\x91\x8D", 4, 4)) fail_msg("refused at the byte limit");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
