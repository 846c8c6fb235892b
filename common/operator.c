/* operator.c - operator accounts and their console sessions. */
#include "operator.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"

static const char SQL_OPERATOR_INSERT[] =
    "INSERT INTO operators (name, password_hash, created_at) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (name) DO NOTHING";
static const char SQL_OPERATOR_DELETE[] = "DELETE FROM operators WHERE name = ?1";
static const char SQL_OPERATOR_LIST[] =
    "SELECT o.id, o.name, o.created_at, (SELECT count(*) FROM operator_sessions s "
    "WHERE s.operator_id = o.id AND s.expires_at > ?1 AND s.last_seen > ?1 - ?2) "
    "FROM operators o ORDER BY o.name";
static const char SQL_OPERATOR_BY_NAME[] =
    "SELECT id, password_hash FROM operators WHERE name = ?1";
static const char SQL_OPSESSION_INSERT[] =
    "INSERT INTO operator_sessions (token_hash, operator_id, created_at, last_seen, expires_at) "
    "VALUES (?1, ?2, ?3, ?3, ?4)";
static const char SQL_OPSESSION_PRUNE[] =
    "DELETE FROM operator_sessions WHERE expires_at <= ?1 OR last_seen <= ?1 - ?2";
static const char SQL_OPSESSION_BY_HASH[] =
    "SELECT s.id, s.operator_id, s.token_hash, s.last_seen, s.expires_at, o.name "
    "FROM operator_sessions s JOIN operators o ON o.id = s.operator_id WHERE s.token_hash = ?1";
static const char SQL_OPSESSION_TOUCH[] = "UPDATE operator_sessions SET last_seen = ?1 WHERE id = ?2";
static const char SQL_OPSESSION_DELETE[] = "DELETE FROM operator_sessions WHERE id = ?1";

int operator_name_check(const char *name, nova_err *err)
{
    size_t len = strlen(name);
    if (len == 0 || len > OPERATOR_NAME_MAX ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != len)
        return nova_fail(err, ERR_INVALID,
                         "an operator's name is 1 to %d of the characters A-Z a-z 0-9 . _ -",
                         OPERATOR_NAME_MAX);
    return 0;
}

int operator_add(nova_db *db, const char *name, const char *hash, nova_err *err)
{
    int rc = operator_name_check(name, err);
    if (rc) return rc;
    db_stmt *st = db_prepare(db, SQL_OPERATOR_INSERT);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_text(st, 1, name);
    db_bind_text(st, 2, hash);
    db_bind_double(st, 3, nova_now());
    rc = db_exec_done(db, st, err);
    if (!rc && db_changes(db) == 0)
        return nova_fail(err, ERR_CONFLICT, "there is an operator %s already", name);
    return rc;
}

int operator_remove(nova_db *db, const char *name, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_OPERATOR_DELETE);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_text(st, 1, name);
    int rc = db_exec_done(db, st, err);
    if (!rc && db_changes(db) == 0)
        return nova_fail(err, ERR_NOT_FOUND, "there is no operator %.64s", name);
    return rc;
}

int operator_list(nova_db *db, void (*each)(void *ctx, const operator_row *op), void *ctx,
                  nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_OPERATOR_LIST);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_double(st, 1, nova_now());
    db_bind_i64(st, 2, OPERATOR_SESSION_IDLE);
    int rc;
    while ((rc = db_step(st)) == DB_ROW) {
        operator_row op = {.id = db_col_i64(st, 0),
                           .name = db_col_text(st, 1),
                           .created_at = db_col_double(st, 2),
                           .sessions = db_col_i64(st, 3)};
        each(ctx, &op);
    }
    db_done(st);
    return rc == DB_DONE ? 0 : db_fail(db, err);
}

int operator_find(nova_db *db, const char *name, int64_t *id, char **hash, nova_err *err)
{
    *hash = NULL;
    db_stmt *st = db_prepare(db, SQL_OPERATOR_BY_NAME);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_text(st, 1, name);
    int rc = db_step(st);
    if (rc == DB_ROW) {
        *id = db_col_i64(st, 0);
        const char *stored = db_col_text(st, 1);
        *hash = strdup(stored ? stored : "");
    }
    db_done(st);
    if (rc == DB_DONE) return nova_fail(err, ERR_NOT_FOUND, "no such operator");
    if (rc != DB_ROW) return db_fail(db, err);
    return *hash ? 0 : nova_fail(err, ERR_INTERNAL, "internal error");
}

int operator_session_create(nova_db *db, int64_t operator_id, char token_out[TOKEN_LEN + 1],
                            nova_err *err)
{
    double now = nova_now();
    db_stmt *st = db_prepare(db, SQL_OPSESSION_PRUNE);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_double(st, 1, now);
    db_bind_i64(st, 2, OPERATOR_SESSION_IDLE);
    int rc = db_exec_done(db, st, err);
    if (rc) return rc;

    unsigned char hash[TOKEN_HASH_LEN];
    token_new(token_out);
    token_hash(token_out, TOKEN_LEN, hash);
    st = db_prepare(db, SQL_OPSESSION_INSERT);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_blob(st, 1, hash, sizeof hash);
    db_bind_i64(st, 2, operator_id);
    db_bind_double(st, 3, now);
    db_bind_double(st, 4, now + OPERATOR_SESSION_MAX_AGE);
    return db_exec_done(db, st, err);
}

int operator_session_check(nova_db *db, const char *token, operator_session *out, nova_err *err)
{
    unsigned char hash[TOKEN_HASH_LEN];
    token_hash(token, strlen(token), hash);
    memset(out, 0, sizeof *out);
    db_stmt *st = db_prepare(db, SQL_OPSESSION_BY_HASH);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_blob(st, 1, hash, sizeof hash);
    int rc = db_step(st);
    if (rc != DB_ROW) {
        db_done(st);
        return rc == DB_DONE ? nova_fail(err, ERR_FORBIDDEN, "not logged in") : db_fail(db, err);
    }
    out->id = db_col_i64(st, 0);
    out->operator_id = db_col_i64(st, 1);
    size_t stored_len;
    const void *stored = db_col_blob(st, 2, &stored_len);
    enum session_verdict v = session_judge(stored, stored_len, hash, db_col_double(st, 3),
                                           db_col_double(st, 4), OPERATOR_SESSION_IDLE,
                                           OPERATOR_SESSION_TOUCH, &out->stale);
    const char *name = db_col_text(st, 5);
    snprintf(out->name, sizeof out->name, "%s", name ? name : "");
    db_done(st);
    return v == SESSION_LIVE ? 0 : nova_fail(err, ERR_FORBIDDEN, "not logged in");
}

int operator_session_touch(nova_db *db, int64_t session_id, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_OPSESSION_TOUCH);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_double(st, 1, nova_now());
    db_bind_i64(st, 2, session_id);
    return db_exec_done(db, st, err);
}

int operator_session_end(nova_db *db, int64_t session_id, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_OPSESSION_DELETE);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, session_id);
    return db_exec_done(db, st, err);
}

void operator_cookie(const nova_config *cfg, const char *token, char *out, size_t size)
{
    snprintf(out, size, OPERATOR_COOKIE "=%s; Path=/admin/; Max-Age=%d; HttpOnly; SameSite=Strict%s",
             token ? token : "", token ? OPERATOR_SESSION_MAX_AGE : 0,
             cfg->cookie_secure ? "; Secure" : "");
}
