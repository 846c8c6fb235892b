/* err.c - recording failures in a nova_err, and what a kind means to a
 * client. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

#include "utf8.h"

int nova_fail(nova_err *err, int kind, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        char raw[sizeof err->msg];
        vsnprintf(raw, sizeof raw, fmt, ap);
        va_end(ap);
        /* Messages reach clients inside JSON: whatever they quote, and
         * wherever the buffer cut them, keep them valid UTF-8. */
        utf8_excerpt(err->msg, sizeof err->msg, raw, sizeof raw);
        err->kind = kind;
    }
    return kind;
}

void nova_err_clear(nova_err *err)
{
    err->kind = ERR_NONE;
    err->msg[0] = '\0';
}

int err_http_status(int kind)
{
    switch (kind) {
    case ERR_INVALID:
        return 400;
    case ERR_FORBIDDEN:
        return 403;
    case ERR_NOT_FOUND:
        return 404;
    case ERR_CONFLICT:
        return 409;
    case ERR_TOO_LARGE:
        return 413;
    case ERR_UNAVAILABLE:
        return 503;
    default:
        return 500;
    }
}

int err_socket_code(int kind)
{
    return kind == ERR_UNAVAILABLE ? 503 : kind == ERR_INTERNAL || kind == ERR_NONE ? 500 : 400;
}
