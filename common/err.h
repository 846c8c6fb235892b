/* err.h - the one error vocabulary of Nova.
 *
 * Every fallible domain call returns an int status: 0 on success, or an
 * HTTP-like code (400, 403, 404, 409, 413, 500, 503) on failure, after
 * writing a human-readable reason into a nova_err. The REST adapter turns
 * the pair into a status line and an envelope; the socket adapter into an
 * error packet. Reasons never contain secrets, SQL text or file paths. */
#ifndef NOVA_ERR_H
#define NOVA_ERR_H

typedef struct nova_err {
    int status;
    char msg[256];
} nova_err;

/* Record a failure and return its status, so callers can write
 * `return nova_fail(err, 400, "...")`. err may be NULL. The message is
 * kept valid UTF-8 without control characters (it may quote client text). */
int nova_fail(nova_err *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reset err to "no error". */
void nova_err_clear(nova_err *err);

#endif
