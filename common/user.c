/* user.c - account operations. */
#include "user.h"

#include <stdlib.h>
#include <string.h>

#include "avatar.h"
#include "outbox.h"
#include "validate.h"

static const char SQL_USER_CREDENTIALS_BY_NAME[] =
    "SELECT id, password_hash FROM users WHERE user_name = ?";
static const char SQL_USER_CREDENTIALS_BY_ID[] = "SELECT password_hash FROM users WHERE id = ?";
static const char SQL_USER_NAME_TAKEN[] = "SELECT id FROM users WHERE user_name = ? AND id <> ?";
static const char SQL_USER_INSERT[] =
    "INSERT INTO users (user_name, password_hash, avatar_url, created_at) VALUES (?, ?, ?, ?) "
    "RETURNING id";
static const char SQL_GROUP_INSERT_DEFAULT[] =
    "INSERT INTO friend_groups (user_id, name, is_default) VALUES (?, '', 1)";
static const char SQL_USER_UPDATE[] =
    "UPDATE users SET user_name = coalesce(?2, user_name), password_hash = coalesce(?3, "
    "password_hash), email = coalesce(?4, email), phone = coalesce(?5, phone), "
    "avatar_url = coalesce(?6, avatar_url) WHERE id = ?1";
static const char SQL_USER_EXISTS[] = "SELECT 1 FROM users WHERE id = ? AND is_system = 0";
static const char SQL_USER_NAME_OF[] = "SELECT user_name FROM users WHERE id = ?";

static int credentials(nova_db *db, db_stmt *st, int64_t *user_id, char **hash, nova_err *err)
{
    *hash = NULL;
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    int rc = db_step(st);
    if (rc != DB_ROW) {
        db_done(st);
        if (rc != DB_DONE) return db_fail(db, err);
        return nova_fail(err, ERR_NOT_FOUND, "user not found");
    }
    int col = user_id ? 1 : 0;
    if (user_id) *user_id = db_col_i64(st, 0);
    const char *h = db_col_text(st, col);
    if (h && !(*hash = strdup(h))) {
        db_done(st);
        return nova_fail(err, ERR_INTERNAL, "out of memory");
    }
    db_done(st);
    return 0;
}

int user_credentials_by_name(nova_db *db, const char *name, int64_t *user_id, char **hash,
                             nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_USER_CREDENTIALS_BY_NAME);
    if (st) db_bind_text(st, 1, name);
    return credentials(db, st, user_id, hash, err);
}

int user_credentials_by_id(nova_db *db, int64_t user_id, char **hash, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_USER_CREDENTIALS_BY_ID);
    if (st) db_bind_i64(st, 1, user_id);
    return credentials(db, st, NULL, hash, err);
}

/* ERR_CONFLICT when name belongs to a user other than self (0: anyone). */
static int name_free(nova_db *db, const char *name, int64_t self, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_USER_NAME_TAKEN);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_text(st, 1, name);
    db_bind_i64(st, 2, self);
    int rc = db_step(st);
    db_done(st);
    if (rc == DB_ROW) return nova_fail(err, ERR_CONFLICT, "user_name '%s' is taken", name);
    return rc == DB_DONE ? 0 : db_fail(db, err);
}

int user_register(nova_db *db, const char *name, const char *password_hash, int64_t *user_id,
                  char token[TOKEN_LEN + 1], nova_err *err)
{
    int rc = name_free(db, name, 0, err);
    if (rc) return rc;
    char *avatar = avatar_identicon(name);
    db_stmt *st = db_prepare(db, SQL_USER_INSERT);
    if (!avatar || !st) {
        free(avatar);
        return nova_fail(err, ERR_INTERNAL, "internal error");
    }
    db_bind_text(st, 1, name);
    db_bind_text(st, 2, password_hash);
    db_bind_text(st, 3, avatar);
    db_bind_double(st, 4, nova_now());
    rc = db_insert_id(db, st, user_id, err);
    free(avatar);
    if (rc) return rc;

    st = db_prepare(db, SQL_GROUP_INSERT_DEFAULT);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, *user_id);
    if ((rc = db_exec_done(db, st, err))) return rc;
    return session_create(db, *user_id, token, NULL, err);
}

int user_login(nova_db *db, int64_t user_id, const session *previous, char token[TOKEN_LEN + 1],
               nova_err *err)
{
    if (previous) {
        int rc = session_end(db, previous->user_id, previous->id, err);
        if (rc) return rc;
    }
    return session_create(db, user_id, token, NULL, err);
}

int user_patch_validate(const user_patch *p, nova_err *err)
{
    int rc;
    if (p->user_name && (rc = validate_user_name(p->user_name, err))) return rc;
    if (p->new_password && (rc = validate_password(p->new_password, "new_password", err)))
        return rc;
    if (p->email && (rc = validate_email(p->email, err))) return rc;
    if (p->phone && (rc = validate_phone(p->phone, err))) return rc;
    if (p->avatar_url && (rc = validate_avatar_url(p->avatar_url, err))) return rc;
    if ((p->new_password || p->email || p->phone) && !p->old_password)
        return nova_fail(err, ERR_INVALID,
                         "missing field 'old_password' (needed to change the password, email "
                         "or phone)");
    return 0;
}

char *user_name_of(nova_db *db, int64_t user_id)
{
    db_stmt *st = db_prepare(db, SQL_USER_NAME_OF);
    if (!st) return NULL;
    db_bind_i64(st, 1, user_id);
    char *name = NULL;
    if (db_step(st) == DB_ROW) name = strdup(db_col_text(st, 0));
    db_done(st);
    return name;
}

int user_update(nova_db *db, const session *s, const user_patch *p, const char *verified_hash,
                const char *new_hash, char token_out[TOKEN_LEN + 1], nova_err *err)
{
    int rc;
    token_out[0] = '\0';
    if (verified_hash) {
        /* The password may have changed since it was verified. */
        char *current = NULL;
        if ((rc = user_credentials_by_id(db, s->user_id, &current, err))) return rc;
        bool same = current && !strcmp(current, verified_hash);
        free(current);
        if (!same) return nova_fail(err, ERR_CONFLICT, "the password changed meanwhile, try again");
    }
    if (p->user_name && (rc = name_free(db, p->user_name, s->user_id, err))) return rc;

    char *avatar = NULL;
    if (p->avatar_url && !p->avatar_url[0]) {
        char *name = p->user_name ? strdup(p->user_name) : user_name_of(db, s->user_id);
        avatar = name ? avatar_identicon(name) : NULL;
        free(name);
        if (!avatar) return nova_fail(err, ERR_INTERNAL, "internal error");
    }
    db_stmt *st = db_prepare(db, SQL_USER_UPDATE);
    if (!st) {
        free(avatar);
        return nova_fail(err, ERR_INTERNAL, "internal error");
    }
    db_bind_i64(st, 1, s->user_id);
    if (p->user_name) db_bind_text(st, 2, p->user_name);
    if (new_hash) db_bind_text(st, 3, new_hash);
    if (p->email) db_bind_text(st, 4, p->email);
    if (p->phone) db_bind_text(st, 5, p->phone);
    if (p->avatar_url) db_bind_text(st, 6, avatar ? avatar : p->avatar_url);
    rc = db_exec_done(db, st, err);
    free(avatar);
    if (rc) return rc;

    if (new_hash) {
        if ((rc = session_rotate(db, s->id, token_out, err)) ||
            (rc = session_end_all(db, s->user_id, s->id, err)))
            return rc;
    }
    return outbox_emit(db, "profile_change", NULL, &s->user_id, 1, err);
}

int user_exists(nova_db *db, int64_t user_id, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_USER_EXISTS);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, user_id);
    int rc = db_step(st);
    db_done(st);
    if (rc == DB_ROW) return 0;
    return rc == DB_DONE ? nova_fail(err, ERR_NOT_FOUND, "user %lld not found", (long long)user_id)
                         : db_fail(db, err);
}
