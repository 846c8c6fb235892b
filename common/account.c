/* account.c - deleting an account (API.md §6), across every aggregate.
 *
 * The orchestration lives here, above users, friends and chats, so that
 * none of those modules needs to call the others to undo a user. */
#include "account.h"

#include "chat.h"
#include "friend.h"
#include "session.h"
#include "user.h"

static const char SQL_USER_DELETE[] = "DELETE FROM users WHERE id = ? AND is_system = 0";

/* Account deletion (API.md §6), in an order that notifies everyone while
 * there is still something to describe, and ends the sessions last so
 * that the user's own sockets see logout after everything else. */
static const char SQL_DELETE_FRIEND_INVITATIONS[] =
    "DELETE FROM friend_invitations WHERE sender_id = ?1 OR receiver_id = ?1";
static const char SQL_DELETE_CHAT_INVITATIONS[] =
    "DELETE FROM chat_invitations WHERE user_id = ?1 OR invited_by = ?1";
static const char SQL_DELETE_MESSAGE_DELETIONS[] =
    "DELETE FROM message_deletions WHERE user_id = ?1";
static const char SQL_DELETE_RELATIONS[] = "DELETE FROM chat_relations WHERE user_id = ?1";
static const char SQL_MESSAGES_TO_DELETED[] =
    "UPDATE messages SET sender_id = ?2 WHERE sender_id = ?1";
static const char SQL_DELETE_GROUPS[] = "DELETE FROM friend_groups WHERE user_id = ?1";

int account_delete(nova_db *db, int64_t user_id, nova_err *err)
{
    int rc;
    if ((rc = user_exists(db, user_id, err)) || (rc = friend_delete_all(db, user_id, err)) ||
        (rc = chat_forget_user(db, user_id, err)))
        return rc;
    static const char *const cleanup[] = {
        SQL_DELETE_FRIEND_INVITATIONS, SQL_DELETE_CHAT_INVITATIONS, SQL_DELETE_MESSAGE_DELETIONS,
        SQL_DELETE_RELATIONS,          SQL_MESSAGES_TO_DELETED,     SQL_DELETE_GROUPS,
    };
    for (size_t i = 0; i < sizeof cleanup / sizeof cleanup[0]; i++) {
        db_stmt *st = db_prepare(db, cleanup[i]);
        if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
        db_bind_i64(st, 1, user_id);
        if (db_param_count(st) >= 2) db_bind_i64(st, 2, USER_DELETED_ID);
        if ((rc = db_exec_done(db, st, err))) return rc;
    }
    if ((rc = session_end_all(db, user_id, 0, err))) return rc;
    db_stmt *st = db_prepare(db, SQL_USER_DELETE);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, user_id);
    return db_exec_done(db, st, err);
}
