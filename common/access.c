/* access.c - who may do what: chats, roles and friendships. */
#include "access.h"

static const char SQL_CHAT_LOOKUP[] = "SELECT owner_id, name = '' FROM chats WHERE id = ?";
static const char SQL_MEMBER_ROLE[] =
    "SELECT is_admin FROM chat_members WHERE chat_id = ? AND user_id = ?";
static const char SQL_ARE_FRIENDS[] =
    "SELECT chat_id FROM friends WHERE user_id = ? AND friend_id = ?";

int access_chat_load(nova_db *db, int64_t chat_id, chat_info *out, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_CHAT_LOOKUP);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, chat_id);
    int rc = db_step(st);
    if (rc == DB_ROW) {
        out->id = chat_id;
        out->owner_id = db_col_i64(st, 0);
        out->is_private = (int)db_col_i64(st, 1);
    }
    db_done(st);
    if (rc == DB_ROW) return 0;
    if (rc == DB_DONE)
        return nova_fail(err, ERR_NOT_FOUND, "chat %lld not found", (long long)chat_id);
    return db_fail(db, err);
}

int access_chat_role(nova_db *db, const chat_info *chat, int64_t user_id, enum chat_role *role,
                     nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_MEMBER_ROLE);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, chat->id);
    db_bind_i64(st, 2, user_id);
    int rc = db_step(st);
    *role = ROLE_NONE;
    if (rc == DB_ROW)
        *role = user_id == chat->owner_id ? ROLE_OWNER
                : (int)db_col_i64(st, 0)  ? ROLE_ADMIN
                                          : ROLE_MEMBER;
    db_done(st);
    return rc == DB_ROW || rc == DB_DONE ? 0 : db_fail(db, err);
}

int access_chat(nova_db *db, int64_t caller, int64_t chat_id, enum chat_need need, bool group_only,
                chat_info *chat, enum chat_role *role, nova_err *err)
{
    enum chat_role r;
    int rc;
    if (!role) role = &r;
    if ((rc = access_chat_load(db, chat_id, chat, err))) return rc;
    if (group_only && chat->is_private)
        return nova_fail(err, ERR_INVALID, "chat %lld is a private chat", (long long)chat_id);
    if ((rc = access_chat_role(db, chat, caller, role, err))) return rc;
    switch (need) {
    case NEED_MEMBER:
        if (*role != ROLE_NONE) return 0;
        return nova_fail(err, ERR_FORBIDDEN, "you are not a member of chat %lld",
                         (long long)chat_id);
    case NEED_STAFF:
        if (*role == ROLE_OWNER || *role == ROLE_ADMIN) return 0;
        return nova_fail(err, ERR_FORBIDDEN, "only the owner and admins of chat %lld may do this",
                         (long long)chat_id);
    case NEED_OWNER:
        if (*role == ROLE_OWNER) return 0;
        return nova_fail(err, ERR_FORBIDDEN, "only the owner of chat %lld may do this",
                         (long long)chat_id);
    }
    return nova_fail(err, ERR_INTERNAL, "internal error");
}

int access_friendship(nova_db *db, int64_t a, int64_t b, int64_t *chat_id, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_ARE_FRIENDS);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, a);
    db_bind_i64(st, 2, b);
    int rc = db_step(st);
    *chat_id = rc == DB_ROW ? db_col_i64(st, 0) : 0;
    db_done(st);
    return rc == DB_ROW || rc == DB_DONE ? 0 : db_fail(db, err);
}

int access_are_friends(nova_db *db, int64_t a, int64_t b, bool *yes, nova_err *err)
{
    int64_t chat;
    int rc = access_friendship(db, a, b, &chat, err);
    *yes = !rc && chat;
    return rc;
}

int access_friend(nova_db *db, int64_t owner, int64_t friend_id, nova_err *err)
{
    int64_t chat;
    int rc = access_friendship(db, owner, friend_id, &chat, err);
    if (rc) return rc;
    if (!chat)
        return nova_fail(err, ERR_NOT_FOUND, "user %lld is not your friend", (long long)friend_id);
    return 0;
}
