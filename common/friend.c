/* friend.c - friend groups, friendships, invitations and search. */
#include "friend.h"

#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "json_util.h"
#include "message.h"
#include "outbox.h"
#include "presence.h"
#include "user.h"
#include "view.h"

/* --- groups ------------------------------------------------------------- */

static const char SQL_GROUP_OWNER[] = "SELECT user_id, is_default FROM friend_groups WHERE id = ?";
static const char SQL_GROUP_INSERT[] =
    "INSERT INTO friend_groups (user_id, name) VALUES (?, ?) RETURNING id";
static const char SQL_GROUP_RENAME[] = "UPDATE friend_groups SET name = ? WHERE id = ?";
static const char SQL_GROUP_DELETE[] = "DELETE FROM friend_groups WHERE id = ?";
static const char SQL_GROUP_DEFAULT[] =
    "SELECT id FROM friend_groups WHERE user_id = ? AND is_default = 1";
static const char SQL_GROUP_MOVE_FRIENDS[] =
    "UPDATE friends SET group_id = ?1 WHERE user_id = ?2 AND group_id = ?3";
static const char SQL_GROUP_LIST[] =
    "SELECT id FROM friend_groups WHERE user_id = ? ORDER BY is_default DESC, id";

/* Owner and default flag of a group: 0, or ERR_NOT_FOUND. */
static int group_info(nova_db *db, int64_t group_id, int64_t *owner, bool *is_default,
                      nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_GROUP_OWNER);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, group_id);
    int rc = db_step(st);
    if (rc == DB_ROW) {
        *owner = db_col_i64(st, 0);
        *is_default = (int)db_col_i64(st, 1);
    }
    db_done(st);
    if (rc == DB_ROW) return 0;
    if (rc == DB_DONE)
        return nova_fail(err, ERR_NOT_FOUND, "friend group %lld not found", (long long)group_id);
    return db_fail(db, err);
}

int friend_group_check(nova_db *db, int64_t owner, int64_t group_id, nova_err *err)
{
    int64_t who;
    bool is_default;
    int rc = group_info(db, group_id, &who, &is_default, err);
    if (rc) return rc;
    if (who != owner)
        return nova_fail(err, ERR_FORBIDDEN, "friend group %lld is not yours", (long long)group_id);
    return 0;
}

/* A group of owner that may be renamed or deleted (not the default). */
static int group_editable(nova_db *db, int64_t owner, int64_t group_id, nova_err *err)
{
    int64_t who;
    bool is_default;
    int rc = group_info(db, group_id, &who, &is_default, err);
    if (rc) return rc;
    if (who != owner)
        return nova_fail(err, ERR_FORBIDDEN, "friend group %lld is not yours", (long long)group_id);
    if (is_default)
        return nova_fail(err, ERR_INVALID, "the default friend group cannot be changed");
    return 0;
}

int friend_group_add(nova_db *db, int64_t owner, const char *name, int64_t *group_id, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_GROUP_INSERT);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, owner);
    db_bind_text(st, 2, name);
    return db_insert_id(db, st, group_id, err);
}

int friend_group_rename(nova_db *db, int64_t owner, int64_t group_id, const char *name,
                        nova_err *err)
{
    int rc = group_editable(db, owner, group_id, err);
    if (rc) return rc;
    db_stmt *st = db_prepare(db, SQL_GROUP_RENAME);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_text(st, 1, name);
    db_bind_i64(st, 2, group_id);
    return db_exec_done(db, st, err);
}

static int default_group(nova_db *db, int64_t owner, int64_t *group_id, nova_err *err)
{
    idlist ids = {0};
    db_stmt *st = db_prepare(db, SQL_GROUP_DEFAULT);
    if (st) db_bind_i64(st, 1, owner);
    int rc = db_collect_ids(db, st, &ids, err);
    if (!rc && ids.n != 1) rc = nova_fail(err, ERR_INTERNAL, "internal error");
    if (!rc) *group_id = ids.v[0];
    idlist_free(&ids);
    return rc;
}

int friend_group_delete(nova_db *db, int64_t owner, int64_t group_id, nova_err *err)
{
    int64_t fallback;
    int rc;
    if ((rc = group_editable(db, owner, group_id, err)) ||
        (rc = default_group(db, owner, &fallback, err)))
        return rc;
    db_stmt *st = db_prepare(db, SQL_GROUP_MOVE_FRIENDS);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, fallback);
    db_bind_i64(st, 2, owner);
    db_bind_i64(st, 3, group_id);
    if ((rc = db_exec_done(db, st, err))) return rc;
    st = db_prepare(db, SQL_GROUP_DELETE);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, group_id);
    return db_exec_done(db, st, err);
}

json_object *friend_group_list(nova_db *db, int64_t owner, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_GROUP_LIST);
    if (st) db_bind_i64(st, 1, owner);
    return view_list_plain(db, st, view_friend_group, err);
}

/* --- search ------------------------------------------------------------- */

static const char SQL_FIND_BY_ID[] =
    "SELECT id FROM users WHERE id = ?1 AND id <> ?2 AND is_system = 0";
/* Substrings of 3+ characters use the trigram index; shorter ones scan
 * users by id until the cap is reached. */
static const char SQL_FIND_TRIGRAM[] =
    "SELECT u.id FROM users_name_trigram t JOIN users u ON u.id = t.rowid "
    "WHERE t.user_name GLOB ?1 AND u.id <> ?2 AND u.is_system = 0 ORDER BY u.id LIMIT ?3";
static const char SQL_FIND_SCAN[] =
    "SELECT id FROM users WHERE instr(user_name, ?1) > 0 AND id <> ?2 AND is_system = 0 "
    "ORDER BY id LIMIT ?3";
/* PostgreSQL: LIKE '%...%' (escaped) is answered by the pg_trgm index. */
static const char SQL_FIND_TRIGRAM_PG[] =
    "SELECT id FROM users WHERE user_name LIKE ?1 AND id <> ?2 AND is_system = 0 "
    "ORDER BY id LIMIT ?3";
static const char SQL_FIND_SCAN_PG[] =
    "SELECT id FROM users WHERE strpos(user_name, ?1) > 0 AND id <> ?2 AND is_system = 0 "
    "ORDER BY id LIMIT ?3";

/* '%name%' into out (room for 2 * strlen(s) + 3), with LIKE's own
 * characters escaped (backslash is the escape). */
static void like_pattern(char *out, const char *s)
{
    *out++ = '%';
    for (; *s; s++) {
        if (*s == '%' || *s == '_' || *s == '\\') *out++ = '\\';
        *out++ = *s;
    }
    *out++ = '%';
    *out = '\0';
}

json_object *friend_find(nova_db *db, int64_t caller, bool has_id, int64_t id,
                         const char *name_contains, nova_err *err)
{
    db_stmt *st;
    if (has_id) {
        st = db_prepare(db, SQL_FIND_BY_ID);
        if (st) {
            db_bind_i64(st, 1, id);
            db_bind_i64(st, 2, caller);
        }
    } else if (name_contains) {
        /* Names never contain GLOB's special characters, so a query with
         * one matches nobody; the empty string matches everybody. */
        if (strpbrk(name_contains, "*?[]")) return json_object_new_array();
        size_t len = strlen(name_contains);
        if (db->kind == DB_POSTGRES && len >= 3) {
            char pattern[2 * len + 3];
            like_pattern(pattern, name_contains);
            st = db_prepare(db, SQL_FIND_TRIGRAM_PG);
            if (st) db_bind_text(st, 1, pattern);
        } else if (db->kind == DB_POSTGRES) {
            st = db_prepare(db, SQL_FIND_SCAN_PG);
            if (st) db_bind_text(st, 1, name_contains);
        } else if (len >= 3) {
            char pattern[len + 3];
            pattern[0] = '*';
            memcpy(pattern + 1, name_contains, len);
            pattern[len + 1] = '*';
            pattern[len + 2] = '\0';
            st = db_prepare(db, SQL_FIND_TRIGRAM);
            if (st) db_bind_text(st, 1, pattern);
        } else {
            st = db_prepare(db, SQL_FIND_SCAN);
            if (st) db_bind_text(st, 1, name_contains);
        }
        if (st) {
            db_bind_i64(st, 2, caller);
            db_bind_i64(st, 3, FRIEND_FIND_LIMIT);
        }
    } else {
        nova_fail(err, ERR_INVALID, "give 'id' or 'name_contains'");
        return NULL;
    }
    return view_list_plain(db, st, view_user_basic, err);
}

/* --- friendships -------------------------------------------------------- */

static const char SQL_FRIEND_INSERT[] =
    "INSERT INTO friends (user_id, friend_id, group_id, chat_id, created_at) "
    "VALUES (?1, ?2, (SELECT id FROM friend_groups WHERE user_id = ?1 AND is_default = 1), ?3, ?4)";
static const char SQL_FRIEND_DELETE_PAIR[] = "DELETE FROM friends WHERE (user_id = ?1 AND "
                                             "friend_id = ?2) OR (user_id = ?2 AND friend_id = ?1)";
static const char SQL_INVITATIONS_DELETE_PAIR[] =
    "DELETE FROM friend_invitations WHERE (sender_id = ?1 AND receiver_id = ?2) "
    "OR (sender_id = ?2 AND receiver_id = ?1)";
static const char SQL_FRIEND_SET_NICKNAME[] =
    "UPDATE friends SET nickname = ? WHERE user_id = ? AND friend_id = ?";
static const char SQL_FRIEND_SET_GROUP[] =
    "UPDATE friends SET group_id = ? WHERE user_id = ? AND friend_id = ?";
static const char SQL_FRIEND_LIST[] =
    "SELECT friend_id FROM friends WHERE user_id = ? ORDER BY created_at, friend_id";

/* Emit a friend_* event to each side with the other side as `friend`. */
static int emit_pair(nova_db *db, const char *action, int64_t a, int64_t b, nova_err *err)
{
    int64_t sides[2][2] = {{a, b}, {b, a}};
    for (int i = 0; i < 2; i++) {
        json_object *other = view_user_detailed(db, sides[i][1], err);
        if (!other) return err->kind;
        json_object *data = json_object_new_object();
        json_object_object_add(data, "friend", other);
        int rc = outbox_emit(db, action, data, &sides[i][0], 1, err);
        if (rc) return rc;
    }
    return 0;
}

/* Make accepter and inviter friends (API.md §4 "Making a friendship"). */
static int befriend(nova_db *db, int64_t accepter, int64_t inviter, nova_err *err)
{
    int64_t chat_id;
    int rc = chat_create_private(db, accepter, inviter, &chat_id, err);
    if (rc) return rc;
    double now = nova_now();
    int64_t pairs[2][2] = {{accepter, inviter}, {inviter, accepter}};
    for (int i = 0; i < 2; i++) {
        db_stmt *st = db_prepare(db, SQL_FRIEND_INSERT);
        if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
        db_bind_i64(st, 1, pairs[i][0]);
        db_bind_i64(st, 2, pairs[i][1]);
        db_bind_i64(st, 3, chat_id);
        db_bind_double(st, 4, now);
        if ((rc = db_exec_done(db, st, err))) return rc;
    }
    db_stmt *st = db_prepare(db, SQL_INVITATIONS_DELETE_PAIR);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, accepter);
    db_bind_i64(st, 2, inviter);
    if ((rc = db_exec_done(db, st, err))) return rc;
    if ((rc = emit_pair(db, "friend_created", accepter, inviter, err))) return rc;
    if ((rc = presence_friendship(db, accepter, inviter, true, err))) return rc;

    char *a = user_name_of(db, accepter), *b = user_name_of(db, inviter);
    rc = a && b ? message_post_system(db, chat_id, err, "%s added %s as a friend", a, b)
                : nova_fail(err, ERR_INTERNAL, "internal error");
    free(a);
    free(b);
    return rc;
}

static const char SQL_INVITATION_GET[] =
    "SELECT sender_id, receiver_id FROM friend_invitations WHERE id = ?";
static const char SQL_INVITATION_BETWEEN[] =
    "SELECT id FROM friend_invitations WHERE sender_id = ? AND receiver_id = ?";
static const char SQL_INVITATION_UPSERT[] =
    "INSERT INTO friend_invitations (sender_id, receiver_id, comment, source_chat_id, created_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (sender_id, receiver_id) DO UPDATE SET "
    "comment = excluded.comment, source_chat_id = excluded.source_chat_id, "
    "created_at = excluded.created_at";
static const char SQL_INVITATION_DELETE[] = "DELETE FROM friend_invitations WHERE id = ?";
static const char SQL_INVITATIONS_RECEIVED[] =
    "SELECT id FROM friend_invitations WHERE receiver_id = ? ORDER BY id";
static const char SQL_BOTH_MEMBERS[] =
    "SELECT count(*) FROM chat_members WHERE chat_id = ?1 AND user_id IN (?2, ?3)";

/* An invitation addressed to caller: its sender, or ERR_NOT_FOUND / ERR_FORBIDDEN. */
static int invitation_for(nova_db *db, int64_t caller, int64_t invitation_id, int64_t *sender,
                          nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_INVITATION_GET);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, invitation_id);
    int rc = db_step(st);
    int64_t receiver = 0;
    if (rc == DB_ROW) {
        *sender = db_col_i64(st, 0);
        receiver = db_col_i64(st, 1);
    }
    db_done(st);
    if (rc == DB_DONE)
        return nova_fail(err, ERR_NOT_FOUND, "invitation %lld not found", (long long)invitation_id);
    if (rc != DB_ROW) return db_fail(db, err);
    if (receiver != caller)
        return nova_fail(err, ERR_FORBIDDEN, "invitation %lld is not addressed to you",
                         (long long)invitation_id);
    return 0;
}

int friend_invitation_accept(nova_db *db, int64_t caller, int64_t invitation_id, int64_t *inviter,
                             nova_err *err)
{
    int64_t chat;
    int rc;
    if ((rc = invitation_for(db, caller, invitation_id, inviter, err)) ||
        (rc = access_friendship(db, caller, *inviter, &chat, err)))
        return rc;
    if (chat) return nova_fail(err, ERR_CONFLICT, "you are already friends");
    return befriend(db, caller, *inviter, err);
}

int friend_invitation_decline(nova_db *db, int64_t caller, int64_t invitation_id, nova_err *err)
{
    int64_t sender;
    int rc = invitation_for(db, caller, invitation_id, &sender, err);
    if (rc) return rc;
    db_stmt *st = db_prepare(db, SQL_INVITATION_DELETE);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, invitation_id);
    return db_exec_done(db, st, err);
}

json_object *friend_invitation_list(nova_db *db, int64_t caller, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_INVITATIONS_RECEIVED);
    if (st) db_bind_i64(st, 1, caller);
    return view_list_plain(db, st, view_friend_invitation, err);
}

int friend_invite(nova_db *db, int64_t caller, int64_t target, const char *comment,
                  const friend_source *source, bool *became_friends, nova_err *err)
{
    *became_friends = false;
    int rc = user_exists(db, target, err);
    if (rc) return rc;
    if (target == caller) return nova_fail(err, ERR_INVALID, "you cannot invite yourself");
    int64_t chat;
    if ((rc = access_friendship(db, caller, target, &chat, err))) return rc;
    if (chat) return nova_fail(err, ERR_CONFLICT, "you are already friends");

    /* A crossing invitation: accept theirs instead. */
    idlist theirs = {0};
    db_stmt *st = db_prepare(db, SQL_INVITATION_BETWEEN);
    if (st) {
        db_bind_i64(st, 1, target);
        db_bind_i64(st, 2, caller);
    }
    rc = db_collect_ids(db, st, &theirs, err);
    bool crossing = !rc && theirs.n;
    idlist_free(&theirs);
    if (rc) return rc;
    if (crossing) {
        *became_friends = true;
        return befriend(db, caller, target, err);
    }

    if (!source->given) return nova_fail(err, ERR_INVALID, "missing field 'source'");
    if (!source->search && source->chat_id <= 0)
        return nova_fail(err, ERR_INVALID, "field 'source' must be \"search\" or a chat id");
    int64_t source_chat = source->search ? 0 : source->chat_id;
    if (source_chat) {
        st = db_prepare(db, SQL_BOTH_MEMBERS);
        if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
        db_bind_i64(st, 1, source_chat);
        db_bind_i64(st, 2, caller);
        db_bind_i64(st, 3, target);
        int64_t both = db_step(st) == DB_ROW ? db_col_i64(st, 0) : 0;
        db_done(st);
        if (both != 2)
            return nova_fail(err, ERR_INVALID,
                             "source must be \"search\" or a chat you are both members of");
    }
    st = db_prepare(db, SQL_INVITATION_UPSERT);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, caller);
    db_bind_i64(st, 2, target);
    db_bind_text(st, 3, comment);
    if (source_chat) db_bind_i64(st, 4, source_chat);
    db_bind_double(st, 5, nova_now());
    return db_exec_done(db, st, err);
}

int friend_update(nova_db *db, int64_t owner, int64_t friend_id, const char *nickname,
                  int64_t group_id, nova_err *err)
{
    int rc;
    if ((rc = access_friend(db, owner, friend_id, err))) return rc;
    if (group_id && (rc = friend_group_check(db, owner, group_id, err))) return rc;
    if (nickname) {
        db_stmt *st = db_prepare(db, SQL_FRIEND_SET_NICKNAME);
        if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
        db_bind_text(st, 1, nickname);
        db_bind_i64(st, 2, owner);
        db_bind_i64(st, 3, friend_id);
        if ((rc = db_exec_done(db, st, err))) return rc;
    }
    if (group_id) {
        db_stmt *st = db_prepare(db, SQL_FRIEND_SET_GROUP);
        if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
        db_bind_i64(st, 1, group_id);
        db_bind_i64(st, 2, owner);
        db_bind_i64(st, 3, friend_id);
        if ((rc = db_exec_done(db, st, err))) return rc;
    }
    return 0;
}

int friend_delete(nova_db *db, int64_t owner, int64_t friend_id, nova_err *err)
{
    int64_t chat;
    int rc = access_friendship(db, owner, friend_id, &chat, err);
    if (rc) return rc;
    if (!chat)
        return nova_fail(err, ERR_NOT_FOUND, "user %lld is not your friend", (long long)friend_id);
    /* Tell both first, while both users are still there to describe. */
    if ((rc = emit_pair(db, "friend_deleted", owner, friend_id, err))) return rc;
    if ((rc = presence_friendship(db, owner, friend_id, false, err))) return rc;
    db_stmt *st = db_prepare(db, SQL_FRIEND_DELETE_PAIR);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, owner);
    db_bind_i64(st, 2, friend_id);
    if ((rc = db_exec_done(db, st, err))) return rc;
    return chat_destroy(db, chat, err);
}

static json_object *friend_view(nova_db *db, int64_t id, int64_t owner, nova_err *err)
{
    return view_friend(db, owner, id, err);
}

json_object *friend_list(nova_db *db, int64_t owner, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_FRIEND_LIST);
    if (st) db_bind_i64(st, 1, owner);
    return view_list(db, st, owner, friend_view, err);
}

int friend_delete_all(nova_db *db, int64_t user_id, nova_err *err)
{
    idlist friends = {0};
    db_stmt *st = db_prepare(db, SQL_FRIEND_LIST);
    if (st) db_bind_i64(st, 1, user_id);
    int rc = db_collect_ids(db, st, &friends, err);
    for (size_t i = 0; i < friends.n && !rc; i++)
        rc = friend_delete(db, user_id, friends.v[i], err);
    idlist_free(&friends);
    return rc;
}
