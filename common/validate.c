/* validate.c - field validation (API.md §2). */
#include "validate.h"

#include <stdbool.h>
#include <string.h>

static bool in_set(char c, const char *extra)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr(extra, c));
}

int validate_user_name(const char *s, nova_err *err)
{
    size_t len = strlen(s);
    bool ok = len >= 1 && len <= USER_NAME_MAX;
    for (size_t i = 0; ok && i < len; i++)
        ok = in_set(s[i], "-_()@.");
    if (!ok)
        return nova_fail(err, ERR_INVALID,
                         "user_name must be 1-32 characters of a-z A-Z 0-9 - _ ( ) @ .");
    return 0;
}

int validate_password(const char *s, const char *field, nova_err *err)
{
    long n = utf8_length(s);
    if (n < PASSWORD_MIN)
        return nova_fail(err, ERR_INVALID, "%s must be at least 6 characters", field);
    if (strpbrk(s, " \t\r\n\v\f"))
        return nova_fail(err, ERR_INVALID, "%s must not contain spaces", field);
    return 0;
}

/* ^[a-zA-Z0-9_.+-]+@([A-Za-z0-9-]+\.)+[A-Za-z0-9-]+$ */
int validate_email(const char *s, nova_err *err)
{
    if (!*s) return 0;
    size_t len = strlen(s);
    const char *at = strchr(s, '@');
    bool ok = len <= EMAIL_MAX && at && at > s;
    for (const char *p = s; ok && p < at; p++)
        ok = in_set(*p, "_.+-");
    if (ok) {
        int labels = 0;
        size_t label_len = 0;
        for (const char *p = at + 1;; p++) {
            if (*p == '.' || !*p) {
                if (!label_len) {
                    ok = false;
                    break;
                }
                labels++;
                label_len = 0;
                if (!*p) break;
            } else if (in_set(*p, "-")) {
                label_len++;
            } else {
                ok = false;
                break;
            }
        }
        ok = ok && labels >= 2;
    }
    if (!ok)
        return nova_fail(err, ERR_INVALID,
                         "email must be empty or a valid address of at most 100 characters");
    return 0;
}

int validate_phone(const char *s, nova_err *err)
{
    if (!*s) return 0;
    bool ok = strlen(s) == 11 && s[0] == '1' && strspn(s, "0123456789") == 11;
    if (!ok) return nova_fail(err, ERR_INVALID, "phone must be empty or 11 digits starting with 1");
    return 0;
}

static bool is_base64(const char *p)
{
    size_t n = 0, pad = 0;
    for (; *p; p++, n++) {
        if (*p == '=') {
            pad++;
        } else if (pad || !in_set(*p, "+/")) {
            return false;
        }
    }
    return n > 0 && pad <= 2 && n % 4 == 0;
}

int validate_avatar_url(const char *s, nova_err *err)
{
    size_t len = strlen(s);
    if (!len) return 0;
    if (!strncmp(s, "data:image/", 11)) {
        const char *p = s + 11;
        const char *type = p;
        while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
            p++;
        if (p > type && !strncmp(p, ";base64,", 8) && len <= AVATAR_DATA_MAX && is_base64(p + 8))
            return 0;
        return nova_fail(err, ERR_INVALID,
                         "avatar_url must be data:image/<type>;base64,<data> of at most "
                         "100000 characters");
    }
    size_t scheme = !strncmp(s, "http://", 7) ? 7 : !strncmp(s, "https://", 8) ? 8 : 0;
    if (scheme) {
        long chars = utf8_length(s);
        bool ok = len > scheme && chars > 0 && chars <= AVATAR_HTTP_MAX;
        for (const char *p = s; ok && *p; p++)
            ok = (unsigned char)*p > 0x20 && *p != 0x7f && *p != '"' && *p != '<' && *p != '>';
        if (ok) return 0;
        return nova_fail(err, ERR_INVALID,
                         "avatar_url must be an http(s) URL of at most 500 characters");
    }
    return nova_fail(err, ERR_INVALID,
                     "avatar_url must be empty, a data:image URL or an http(s) URL");
}

int validate_message_content(const char *content, nova_err *err)
{
    return content[0] ? 0 : nova_fail(err, ERR_INVALID, "content must not be empty");
}

int validate_length(const char *s, const char *field, long min, long max, nova_err *err)
{
    long n = utf8_length(s);
    if (n < min || n > max) {
        if (min > 0)
            return nova_fail(err, ERR_INVALID, "%s must be %ld-%ld characters", field, min, max);
        return nova_fail(err, ERR_INVALID, "%s must be at most %ld characters", field, max);
    }
    return 0;
}
