/* chat.c - private and group chats. */
#include "chat.h"

#include "json_util.h"
#include "outbox.h"

static const char SQL_CHAT_LOOKUP[] = "SELECT owner_id, name = '' FROM chats WHERE id = ?";
static const char SQL_MEMBER_ROLE[] =
    "SELECT is_admin FROM chat_members WHERE chat_id = ? AND user_id = ?";
static const char SQL_CHAT_INSERT[] = "INSERT INTO chats (name, owner_id, created_at) "
                                      "VALUES (?, ?, ?)";
static const char SQL_MEMBER_INSERT[] =
    "INSERT INTO chat_members (chat_id, user_id, joined_at) VALUES (?, ?, ?)";
static const char SQL_RELATION_UPSERT[] =
    "INSERT INTO chat_relations (chat_id, user_id, last_read_id) "
    "VALUES (?1, ?2, (SELECT coalesce(max(id), 0) FROM messages WHERE chat_id = ?1)) "
    "ON CONFLICT (chat_id, user_id) DO UPDATE SET last_read_id = max(last_read_id, "
    "excluded.last_read_id)";
static const char SQL_CHAT_DELETE[] = "DELETE FROM chats WHERE id = ?";

int chat_lookup(nova_db *db, int64_t chat_id, chat_info *out, int missing_status,
                nova_err *err)
{
    sqlite3_stmt *st = db_prepare(db, SQL_CHAT_LOOKUP);
    if (!st) return nova_fail(err, 500, "internal error");
    sqlite3_bind_int64(st, 1, chat_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->id = chat_id;
        out->owner_id = sqlite3_column_int64(st, 0);
        out->is_private = sqlite3_column_int(st, 1);
    }
    db_done(st);
    if (rc == SQLITE_ROW) return 0;
    if (rc == SQLITE_DONE)
        return nova_fail(err, missing_status, "chat %lld not found", (long long)chat_id);
    return db_fail(db, err);
}

int chat_role(nova_db *db, const chat_info *chat, int64_t user_id, enum chat_role *role,
              nova_err *err)
{
    sqlite3_stmt *st = db_prepare(db, SQL_MEMBER_ROLE);
    if (!st) return nova_fail(err, 500, "internal error");
    sqlite3_bind_int64(st, 1, chat->id);
    sqlite3_bind_int64(st, 2, user_id);
    int rc = sqlite3_step(st);
    *role = ROLE_NONE;
    if (rc == SQLITE_ROW)
        *role = user_id == chat->owner_id  ? ROLE_OWNER
                : sqlite3_column_int(st, 0) ? ROLE_ADMIN
                                            : ROLE_MEMBER;
    db_done(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_fail(db, err);
}

int chat_add_member(nova_db *db, int64_t chat_id, int64_t user_id, nova_err *err)
{
    sqlite3_stmt *st = db_prepare(db, SQL_MEMBER_INSERT);
    if (!st) return nova_fail(err, 500, "internal error");
    sqlite3_bind_int64(st, 1, chat_id);
    sqlite3_bind_int64(st, 2, user_id);
    sqlite3_bind_double(st, 3, nova_now());
    int rc = db_exec_done(db, st, err);
    if (rc) return rc;
    st = db_prepare(db, SQL_RELATION_UPSERT);
    if (!st) return nova_fail(err, 500, "internal error");
    sqlite3_bind_int64(st, 1, chat_id);
    sqlite3_bind_int64(st, 2, user_id);
    return db_exec_done(db, st, err);
}

static int chat_insert(nova_db *db, const char *name, int64_t owner, int64_t *chat_id,
                       nova_err *err)
{
    sqlite3_stmt *st = db_prepare(db, SQL_CHAT_INSERT);
    if (!st) return nova_fail(err, 500, "internal error");
    db_bind_text(st, 1, name);
    sqlite3_bind_int64(st, 2, owner);
    sqlite3_bind_double(st, 3, nova_now());
    int rc = db_exec_done(db, st, err);
    if (!rc) *chat_id = sqlite3_last_insert_rowid(db->sql);
    return rc;
}

int chat_create_private(nova_db *db, int64_t owner, int64_t other, int64_t *chat_id,
                        nova_err *err)
{
    int rc;
    if ((rc = chat_insert(db, "", owner, chat_id, err)) ||
        (rc = chat_add_member(db, *chat_id, owner, err)) ||
        (rc = chat_add_member(db, *chat_id, other, err)))
        return rc;
    return 0;
}

int chat_destroy(nova_db *db, int64_t chat_id, nova_err *err)
{
    sqlite3_stmt *st = db_prepare(db, SQL_CHAT_DELETE);
    if (!st) return nova_fail(err, 500, "internal error");
    sqlite3_bind_int64(st, 1, chat_id);
    return db_exec_done(db, st, err);
}
