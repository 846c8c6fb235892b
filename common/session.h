/* session.h - login sessions: creation, lookup by cookie, rotation, end.
 *
 * A session is a row keyed by the hash of its cookie token. Ending a
 * session deletes the row and emits `logout` to that session's sockets, in
 * the caller's write transaction. */
#ifndef NOVA_SESSION_H
#define NOVA_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "db.h"

typedef struct session {
    int64_t id;
    int64_t user_id;
    bool expired; /* set by session_check: the session must be ended */
    bool stale;   /* set by session_check: last_seen should be refreshed */
} session;

/* Extract the value of the cookie `name` (e.g. "sessionid") from a Cookie
 * header into out[TOKEN_LEN + 1]. Returns 0 when a well-formed token was
 * found. */
int session_token_from_named_cookie(const char *cookie_header, const char *name,
                                    char out[TOKEN_LEN + 1]);

/* The same for the chat session's cookie, sessionid. */
int session_token_from_cookie(const char *cookie_header, char out[TOKEN_LEN + 1]);

/* Find the live session of a token (a read; any transaction or none):
 * 0 and *out, or ERR_FORBIDDEN "Invalid Session" for an unknown or expired
 * one. out->expired / out->stale say what session_settle must write. */
int session_check(nova_db *db, const char *token, session *out, nova_err *err);

/* The rule every kind of session (a chat user's, an operator's) is judged
 * by: the row found by the token's hash is the token's (its stored hash,
 * compared in constant time), and it is neither idle for longer than idle
 * seconds nor past expires_at. SESSION_LIVE (with *stale when last_seen is
 * older than touch seconds: refresh it), SESSION_NOT_IT or SESSION_EXPIRED. */
enum session_verdict { SESSION_LIVE, SESSION_NOT_IT, SESSION_EXPIRED };
enum session_verdict session_judge(const void *stored_hash, size_t stored_len,
                                   const unsigned char hash[TOKEN_HASH_LEN], double last_seen,
                                   double expires_at, double idle, double touch, bool *stale);

/* What session_check found, written inside the caller's write
 * transaction: an expired session ends (logout to its sockets), a stale
 * one's last_seen is refreshed (at most every cfg->session_touch seconds);
 * else nothing. */
int session_settle(nova_db *db, const session *s, nova_err *err);

/* Create a session for user_id inside the caller's write transaction;
 * writes the new token to token_out. */
int session_create(nova_db *db, int64_t user_id, char token_out[TOKEN_LEN + 1], int64_t *session_id,
                   nova_err *err);

/* Give an existing session a new token (password change): same id, so
 * its sockets stay connected. Write transaction. */
int session_rotate(nova_db *db, int64_t session_id, char token_out[TOKEN_LEN + 1], nova_err *err);

/* End one session: delete it, emit `logout` to its sockets. */
int session_end(nova_db *db, int64_t user_id, int64_t session_id, nova_err *err);

/* End every session of user_id except keep_id (0: end all). */
int session_end_all(nova_db *db, int64_t user_id, int64_t keep_id, nova_err *err);

/* End up to `batch` sessions that expired (idle or absolute), each with
 * logout to its sockets, inside the caller's write transaction. *ended
 * says how many. Run it periodically (nova-realtime does). */
int session_expire(nova_db *db, int batch, int *ended, nova_err *err);

/* Format the Set-Cookie value for token (or a clearing cookie when token
 * is NULL) into out. */
void session_cookie(const nova_config *cfg, const char *token, char *out, size_t size);

/* A row of the sessions table for operators (never the token's hash). */
typedef struct session_row {
    int64_t id;
    int64_t user_id;
    const char *user_name;
    double created_at, last_seen, expires_at;
} session_row;

/* Call each for the sessions (of the user named user_name, when not NULL;
 * only the live ones at time now when now > 0), by id. */
int session_list(nova_db *db, const char *user_name, double now,
                 void (*each)(void *ctx, const session_row *s), void *ctx, nova_err *err);

#endif
