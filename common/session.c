/* session.c - sessions stored by token hash. */
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "outbox.h"

static const char SQL_SESSION_BY_HASH[] =
    "SELECT id, user_id, token_hash, last_seen, expires_at FROM sessions WHERE token_hash = ?";
static const char SQL_SESSION_TOUCH[] = "UPDATE sessions SET last_seen = ? WHERE id = ?";
static const char SQL_SESSION_INSERT[] =
    "INSERT INTO sessions (token_hash, user_id, created_at, last_seen, expires_at) "
    "VALUES (?, ?, ?, ?, ?) RETURNING id";
static const char SQL_SESSION_ROTATE[] = "UPDATE sessions SET token_hash = ?, last_seen = ? "
                                         "WHERE id = ?";
static const char SQL_SESSION_DELETE[] = "DELETE FROM sessions WHERE id = ? AND user_id = ?";
static const char SQL_SESSIONS_OF_USER[] = "SELECT id FROM sessions WHERE user_id = ? AND id <> ?";

int session_token_from_named_cookie(const char *header, const char *name, char out[TOKEN_LEN + 1])
{
    size_t name_len = strlen(name);
    const char *p = header;
    while (p && *p) {
        while (*p == ' ' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > name_len + 1 && !strncmp(p, name, name_len) && p[name_len] == '=') {
            const char *v = p + name_len + 1;
            size_t vlen = len - (name_len + 1);
            while (vlen && v[vlen - 1] == ' ')
                vlen--;
            if (token_well_formed(v, vlen)) {
                memcpy(out, v, vlen);
                out[vlen] = '\0';
                return 0;
            }
        }
        p = end;
    }
    return -1;
}

int session_token_from_cookie(const char *header, char out[TOKEN_LEN + 1])
{
    return session_token_from_named_cookie(header, "sessionid", out);
}

int session_check(nova_db *db, const char *token, session *out, nova_err *err)
{
    unsigned char hash[TOKEN_HASH_LEN];
    token_hash(token, strlen(token), hash);
    out->expired = out->stale = false;
    db_stmt *st = db_prepare(db, SQL_SESSION_BY_HASH);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_blob(st, 1, hash, sizeof hash);
    int rc = db_step(st);
    if (rc != DB_ROW) {
        db_done(st);
        return rc == DB_DONE ? nova_fail(err, ERR_FORBIDDEN, "Invalid Session") : db_fail(db, err);
    }
    out->id = db_col_i64(st, 0);
    out->user_id = db_col_i64(st, 1);
    size_t stored_len;
    const void *stored = db_col_blob(st, 2, &stored_len);
    enum session_verdict v =
        session_judge(stored, stored_len, hash, db_col_double(st, 3), db_col_double(st, 4),
                      (double)db->cfg->session_idle, (double)db->cfg->session_touch, &out->stale);
    db_done(st);
    out->expired = v == SESSION_EXPIRED;
    return v == SESSION_LIVE ? 0 : nova_fail(err, ERR_FORBIDDEN, "Invalid Session");
}

enum session_verdict session_judge(const void *stored_hash, size_t stored_len,
                                   const unsigned char hash[TOKEN_HASH_LEN], double last_seen,
                                   double expires_at, double idle, double touch, bool *stale)
{
    *stale = false;
    if (stored_len != TOKEN_HASH_LEN || sodium_memcmp(stored_hash, hash, TOKEN_HASH_LEN))
        return SESSION_NOT_IT;
    double now = nova_now();
    if (now > last_seen + idle || now > expires_at) return SESSION_EXPIRED;
    *stale = now - last_seen >= touch;
    return SESSION_LIVE;
}

int session_settle(nova_db *db, const session *s, nova_err *err)
{
    if (s->expired) return session_end(db, s->user_id, s->id, err);
    if (!s->stale) return 0;
    db_stmt *t = db_prepare(db, SQL_SESSION_TOUCH);
    if (!t) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_double(t, 1, nova_now());
    db_bind_i64(t, 2, s->id);
    return db_exec_done(db, t, err);
}

int session_create(nova_db *db, int64_t user_id, char token_out[TOKEN_LEN + 1], int64_t *session_id,
                   nova_err *err)
{
    unsigned char hash[TOKEN_HASH_LEN];
    token_new(token_out);
    token_hash(token_out, TOKEN_LEN, hash);
    double now = nova_now();
    db_stmt *st = db_prepare(db, SQL_SESSION_INSERT);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_blob(st, 1, hash, sizeof hash);
    db_bind_i64(st, 2, user_id);
    db_bind_double(st, 3, now);
    db_bind_double(st, 4, now);
    db_bind_double(st, 5, now + (double)db->cfg->session_max_age);
    int64_t id = 0;
    int rc = db_insert_id(db, st, &id, err);
    if (!rc && session_id) *session_id = id;
    return rc;
}

int session_rotate(nova_db *db, int64_t session_id, char token_out[TOKEN_LEN + 1], nova_err *err)
{
    unsigned char hash[TOKEN_HASH_LEN];
    token_new(token_out);
    token_hash(token_out, TOKEN_LEN, hash);
    db_stmt *st = db_prepare(db, SQL_SESSION_ROTATE);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_blob(st, 1, hash, sizeof hash);
    db_bind_double(st, 2, nova_now());
    db_bind_i64(st, 3, session_id);
    return db_exec_done(db, st, err);
}

int session_end(nova_db *db, int64_t user_id, int64_t session_id, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_SESSION_DELETE);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, session_id);
    db_bind_i64(st, 2, user_id);
    int rc = db_exec_done(db, st, err);
    if (rc) return rc;
    if (db_changes(db) == 0) return 0; /* already ended */
    return outbox_emit_session(db, "logout", NULL, user_id, session_id, err);
}

int session_end_all(nova_db *db, int64_t user_id, int64_t keep_id, nova_err *err)
{
    /* Collect first: session_end runs other statements. */
    idlist ids = {0};
    db_stmt *st = db_prepare(db, SQL_SESSIONS_OF_USER);
    if (st) {
        db_bind_i64(st, 1, user_id);
        db_bind_i64(st, 2, keep_id);
    }
    int rc = db_collect_ids(db, st, &ids, err);
    for (size_t i = 0; i < ids.n && !rc; i++)
        rc = session_end(db, user_id, ids.v[i], err);
    idlist_free(&ids);
    return rc;
}

static const char SQL_SESSIONS_EXPIRED[] =
    "SELECT id, user_id FROM sessions WHERE expires_at < ?1 UNION "
    "SELECT id, user_id FROM sessions WHERE last_seen < ?1 - ?2 LIMIT ?3";

int session_expire(nova_db *db, int batch, int *ended, nova_err *err)
{
    *ended = 0;
    db_stmt *st = db_prepare(db, SQL_SESSIONS_EXPIRED);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    int rc;
    db_bind_double(st, 1, nova_now());
    db_bind_i64(st, 2, db->cfg->session_idle);
    db_bind_i64(st, 3, batch);
    idlist ids = {0}, users = {0};
    while ((rc = db_step(st)) == DB_ROW) {
        if (idlist_push(&ids, db_col_i64(st, 0)) || idlist_push(&users, db_col_i64(st, 1))) {
            rc = -1;
            break;
        }
    }
    db_done(st);
    rc = rc == DB_DONE ? 0 : db_fail(db, err);
    for (size_t i = 0; i < ids.n && !rc; i++)
        rc = session_end(db, users.v[i], ids.v[i], err);
    if (!rc) *ended = (int)ids.n;
    idlist_free(&ids);
    idlist_free(&users);
    return rc;
}

void session_cookie(const nova_config *cfg, const char *token, char *out, size_t size)
{
    if (token)
        snprintf(out, size, "sessionid=%s; Path=/; Max-Age=%ld; HttpOnly; SameSite=%s%s", token,
                 cfg->session_max_age, cfg->cookie_samesite, cfg->cookie_secure ? "; Secure" : "");
    else
        snprintf(out, size, "sessionid=; Path=/; Max-Age=0; HttpOnly; SameSite=%s%s",
                 cfg->cookie_samesite, cfg->cookie_secure ? "; Secure" : "");
}

static const char SQL_SESSIONS_LIST[] =
    "SELECT s.id, s.user_id, u.user_name, s.created_at, s.last_seen, s.expires_at "
    "FROM sessions s JOIN users u ON u.id = s.user_id "
    "WHERE (CAST(?1 AS TEXT) IS NULL OR u.user_name = ?1) "
    "AND (?2 <= 0 OR (s.expires_at > ?2 AND s.last_seen > ?2 - ?3)) ORDER BY s.id";

int session_list(nova_db *db, const char *user_name, double now,
                 void (*each)(void *ctx, const session_row *s), void *ctx, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_SESSIONS_LIST);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    if (user_name) db_bind_text(st, 1, user_name);
    db_bind_double(st, 2, now);
    db_bind_i64(st, 3, db->cfg->session_idle);
    int rc;
    while ((rc = db_step(st)) == DB_ROW) {
        const char *name = db_col_text(st, 2);
        session_row s = {.id = db_col_i64(st, 0),
                         .user_id = db_col_i64(st, 1),
                         .user_name = name ? name : "",
                         .created_at = db_col_double(st, 3),
                         .last_seen = db_col_double(st, 4),
                         .expires_at = db_col_double(st, 5)};
        each(ctx, &s);
    }
    db_done(st);
    return rc == DB_DONE ? 0 : db_fail(db, err);
}
