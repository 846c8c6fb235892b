/* err.c - recording failures in a nova_err. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

int nova_fail(nova_err *err, int status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->status = status;
    }
    return status;
}

void nova_err_clear(nova_err *err)
{
    err->status = 0;
    err->msg[0] = '\0';
}
