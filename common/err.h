/* err.h - the one error vocabulary of Nova.
 *
 * Every fallible call returns an int: 0 on success, or the kind of its
 * failure (enum nova_kind), after writing a human-readable reason into a
 * nova_err. A kind says what went wrong in the domain's terms, never how
 * a client is told: the REST route table maps kinds to the statuses API.md
 * gives per endpoint (the defaults of err_http_status, with per-route
 * exceptions such as "unknown chat → 400"), the socket adapter to an error
 * packet's code (err_socket_code). Reasons never contain secrets, SQL text
 * or file paths. */
#ifndef NOVA_ERR_H
#define NOVA_ERR_H

enum nova_kind {
    ERR_NONE = 0,
    ERR_INVALID,     /* the request breaks a rule: a bad field, a wrong target (400) */
    ERR_FORBIDDEN,   /* the caller may not do this (403) */
    ERR_NOT_FOUND,   /* what the request names does not exist for the caller (404) */
    ERR_CONFLICT,    /* it clashes with the current state: taken, already done (409) */
    ERR_TOO_LARGE,   /* over a size limit (413) */
    ERR_UNAVAILABLE, /* storage unavailable or busy: try again later (503) */
    ERR_INTERNAL,    /* a bug or out of memory (500) */
};

typedef struct nova_err {
    int kind;
    char msg[256];
} nova_err;

/* Record a failure and return its kind, so callers can write
 * `return nova_fail(err, ERR_INVALID, "...")`. err may be NULL. The
 * message is kept valid UTF-8 without control characters (it may quote
 * client text). */
int nova_fail(nova_err *err, int kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Reset err to "no error". */
void nova_err_clear(nova_err *err);

/* The HTTP status of a kind where the endpoint says nothing else (the
 * numbers in the comments of enum nova_kind; 500 for anything unknown). */
int err_http_status(int kind);

/* The code of a socket error packet: 400 for every failure of the
 * request itself (API.md §5), 503 and 500 for the server's own. */
int err_socket_code(int kind);

#endif
