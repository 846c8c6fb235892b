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

/* Extract the sessionid cookie value from a Cookie header into
 * out[TOKEN_LEN + 1]. Returns 0 when a well-formed token was found. */
int session_token_from_cookie(const char *cookie_header, char out[TOKEN_LEN + 1]);

/* The read half of session_lookup, for callers inside a read transaction:
 * finds the session and says (expired/stale) what session_settle must
 * write once the transaction is over. ERR_FORBIDDEN for unknown or expired. */
int session_check(nova_db *db, const char *token, session *out, nova_err *err);

/* End an expired session (logout to its sockets) or refresh a stale one's
 * last_seen, as session_check found. Outside any transaction. */
void session_settle(nova_db *db, const session *s);

/* Find the live session of a token. 0 when found (in *out); ERR_FORBIDDEN
 * "Invalid Session" when unknown or expired (an expired session is deleted
 * and its sockets told). Refreshes last_seen at most every
 * cfg->session_touch seconds. Must run outside a transaction. */
int session_lookup(nova_db *db, const char *token, session *out, nova_err *err);

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
 * logout to its sockets, in one write transaction of its own. *ended says
 * how many. Run it periodically (nova-realtime does). */
int session_expire(nova_db *db, int batch, int *ended, nova_err *err);

/* Format the Set-Cookie value for token (or a clearing cookie when token
 * is NULL) into out. */
void session_cookie(const nova_config *cfg, const char *token, char *out, size_t size);

#endif
