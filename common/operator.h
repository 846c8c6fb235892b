/* operator.h - the people who run Nova: their accounts and console sessions.
 *
 * Operators are not chat users. nova-admin creates them (`operator add`);
 * the console (fcgi/console.c) logs them in. Their sessions are stored as
 * chat sessions are (the BLAKE2b hash of a random token, never the token)
 * but in a table of their own and under a cookie of their own, nova_admin
 * (Path=/admin/, HttpOnly, SameSite=Strict), so that a chat session can
 * never pass for an operator's. */
#ifndef NOVA_OPERATOR_H
#define NOVA_OPERATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "db.h"

/* An operator session ends after this much inactivity, or this long after
 * login, whichever comes first; last_seen is rewritten at most every
 * OPERATOR_SESSION_TOUCH seconds. Short on purpose: it opens every user's
 * sessions and events. */
enum {
    OPERATOR_SESSION_IDLE = 2 * 3600,
    OPERATOR_SESSION_MAX_AGE = 12 * 3600,
    OPERATOR_SESSION_TOUCH = 60,
    OPERATOR_NAME_MAX = 64,
    OPERATOR_PASSWORD_MIN = 8,
};

/* The console's cookie. */
#define OPERATOR_COOKIE "nova_admin"

/* An operator's name: 1..OPERATOR_NAME_MAX of [A-Za-z0-9._-]. 0 or
 * ERR_INVALID. */
int operator_name_check(const char *name, nova_err *err);

/* Create an operator with an argon2id hash (password_hash) inside the
 * caller's write transaction: 0, ERR_CONFLICT when the name is taken. */
int operator_add(nova_db *db, const char *name, const char *hash, nova_err *err);

/* Remove an operator and, with it, every one of their sessions: 0 or
 * ERR_NOT_FOUND. Write transaction. */
int operator_remove(nova_db *db, const char *name, nova_err *err);

/* One operator, for operator_list. */
typedef struct operator_row {
    int64_t id;
    const char *name;
    double created_at;
    long long sessions; /* live console sessions */
} operator_row;

/* Call each for every operator, by name. 0 or a failure kind. */
int operator_list(nova_db *db, void (*each)(void *ctx, const operator_row *op), void *ctx,
                  nova_err *err);

/* The id and stored hash (malloc'd, the caller frees) of the operator
 * `name`: 0 or ERR_NOT_FOUND. */
int operator_find(nova_db *db, const char *name, int64_t *id, char **hash, nova_err *err);

/* A live console session, as operator_session_check found it. */
typedef struct operator_session {
    int64_t id;
    int64_t operator_id;
    char name[OPERATOR_NAME_MAX + 1];
    bool stale; /* last_seen should be rewritten (operator_session_touch) */
} operator_session;

/* Create a session for operator_id in the caller's write transaction (and
 * drop the expired sessions of everyone); the new token in token_out. */
int operator_session_create(nova_db *db, int64_t operator_id, char token_out[TOKEN_LEN + 1],
                            nova_err *err);

/* The live session of a token: 0 and *out, or ERR_FORBIDDEN for an unknown
 * or expired one (and another kind when the storage could not say). */
int operator_session_check(nova_db *db, const char *token, operator_session *out, nova_err *err);

/* Rewrite last_seen; end the session. Write transaction. */
int operator_session_touch(nova_db *db, int64_t session_id, nova_err *err);
int operator_session_end(nova_db *db, int64_t session_id, nova_err *err);

/* The Set-Cookie value for token, or a clearing cookie when NULL. */
void operator_cookie(const nova_config *cfg, const char *token, char *out, size_t size);

#endif
