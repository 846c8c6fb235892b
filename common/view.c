/* view.c - JSON views of users, friends, chats and messages. */
#include "view.h"

#include "json_util.h"

static const char SQL_USER_VIEW[] =
    "SELECT id, user_name, avatar_url, email, phone FROM users WHERE id = ?";

static json_object *user_view(nova_db *db, int64_t user_id, bool detailed, nova_err *err)
{
    sqlite3_stmt *st = db_prepare(db, SQL_USER_VIEW);
    if (!st) {
        nova_fail(err, 500, "internal error");
        return NULL;
    }
    sqlite3_bind_int64(st, 1, user_id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        db_done(st);
        if (rc == SQLITE_DONE)
            nova_fail(err, 404, "user %lld not found", (long long)user_id);
        else
            db_fail(db, err);
        return NULL;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_i64(sqlite3_column_int64(st, 0)));
    json_object_object_add(o, "user_name", json_str((const char *)sqlite3_column_text(st, 1)));
    json_object_object_add(o, "avatar_url", json_str((const char *)sqlite3_column_text(st, 2)));
    if (detailed) {
        json_object_object_add(o, "email", json_str((const char *)sqlite3_column_text(st, 3)));
        json_object_object_add(o, "phone", json_str((const char *)sqlite3_column_text(st, 4)));
    }
    db_done(st);
    return o;
}

json_object *view_user_basic(nova_db *db, int64_t user_id, nova_err *err)
{
    return user_view(db, user_id, false, err);
}

json_object *view_user_detailed(nova_db *db, int64_t user_id, nova_err *err)
{
    return user_view(db, user_id, true, err);
}
