/* err.c - recording failures in a nova_err. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

#include "validate.h"

int nova_fail(nova_err *err, int status, const char *fmt, ...)
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
        err->status = status;
    }
    return status;
}

void nova_err_clear(nova_err *err)
{
    err->status = 0;
    err->msg[0] = '\0';
}
