/* message.c - messages: post, send, recall, delete-for-me, read marks. */
#include "message.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "access.h"
#include "attachment.h"
#include "edit_react.h"
#include "json_util.h"
#include "outbox.h"
#include "user.h"
#include "validate.h"
#include "view.h"

/* Raised before the insert, so that on PostgreSQL the chat's row lock
 * orders concurrent sends (the count and the ids grow together). */
static const char SQL_CHAT_COUNT_MESSAGE[] =
    "UPDATE chats SET message_count = message_count + 1 WHERE id = ?";
static const char SQL_MESSAGE_INSERT[] =
    "INSERT INTO messages (chat_id, sender_id, content, send_time, reply_to_id) "
    "VALUES (?, ?, ?, ?, ?) RETURNING id";

static int post(nova_db *db, int64_t chat_id, int64_t sender_id, const char *content,
                int64_t reply_to, int64_t attachment_id, int64_t *message_id, nova_err *err);

int message_post(nova_db *db, int64_t chat_id, int64_t sender_id, const char *content,
                 int64_t reply_to, int64_t *message_id, nova_err *err)
{
    return post(db, chat_id, sender_id, content, reply_to, 0, message_id, err);
}

/* message_post, and the attachment (0: none, else checked) linked to the
 * message before its view goes out. */
static int post(nova_db *db, int64_t chat_id, int64_t sender_id, const char *content,
                int64_t reply_to, int64_t attachment_id, int64_t *message_id, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_CHAT_COUNT_MESSAGE);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, chat_id);
    int rc = db_exec_done(db, st, err);
    if (rc) return rc;
    if (!(st = db_prepare(db, SQL_MESSAGE_INSERT)))
        return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, chat_id);
    db_bind_i64(st, 2, sender_id);
    db_bind_text(st, 3, content);
    db_bind_double(st, 4, nova_now());
    if (reply_to) db_bind_i64(st, 5, reply_to);
    int64_t id = 0;
    rc = db_insert_id(db, st, &id, err);
    if (rc) return rc;
    if (message_id) *message_id = id;
    if (attachment_id && (rc = attachment_link(db, attachment_id, id, err))) return rc;
    json_object *m = view_message_detailed(db, id, 0, err);
    if (!m) return err->kind;
    json_object *data = json_object_new_object();
    json_object_object_add(data, "message", m);
    return outbox_emit_chat(db, "new_message", data, chat_id, err);
}

int message_post_system(nova_db *db, int64_t chat_id, nova_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = NULL;
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (n < 0) return nova_fail(err, ERR_INTERNAL, "out of memory");
    int rc = message_post(db, chat_id, USER_SYSTEM_ID, text, 0, NULL, err);
    free(text);
    return rc;
}

static const char SQL_MESSAGE_CHAT_SENDER[] =
    "SELECT chat_id, sender_id, recalled FROM messages WHERE id = ?";
static const char SQL_MESSAGE_RECALL[] =
    "UPDATE messages SET content = 'Message recalled', sender_id = ?2, reply_to_id = NULL, "
    "recalled = 1, edited_at = NULL WHERE id = ?1";
static const char SQL_MESSAGE_HIDE[] =
    "INSERT INTO message_deletions (user_id, message_id) VALUES (?, ?) ON CONFLICT DO NOTHING";
/* One row written, whatever the length of the chat: the watermark moves to
 * the newest message (found through the (chat_id, id) index), and the read
 * count with it to the chat's message count (schema 004). Both right-hand
 * sides see the row as it was. */
#define NEWEST_OF_CHAT "(SELECT coalesce(max(id), 0) FROM messages WHERE chat_id = ?1)"
static const char SQL_MARK_READ[] =
    "UPDATE chat_relations SET "
    "read_count = CASE WHEN " NEWEST_OF_CHAT " > last_read_id "
    "THEN (SELECT message_count FROM chats WHERE id = ?1) ELSE read_count END, "
    "last_read_id = CASE WHEN " NEWEST_OF_CHAT " > last_read_id "
    "THEN " NEWEST_OF_CHAT " ELSE last_read_id END "
    "WHERE chat_id = ?1 AND user_id = ?2";

static int mark_read(nova_db *db, int64_t user_id, int64_t chat_id, nova_err *err);

typedef struct message_info {
    int64_t chat_id;
    int64_t sender_id;
    bool recalled;
} message_info;

static int message_lookup(nova_db *db, int64_t message_id, message_info *m, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_MESSAGE_CHAT_SENDER);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, message_id);
    int rc = db_step(st);
    if (rc == DB_ROW) {
        m->chat_id = db_col_i64(st, 0);
        m->sender_id = db_col_i64(st, 1);
        m->recalled = (int)db_col_i64(st, 2);
    }
    db_done(st);
    if (rc == DB_ROW) return 0;
    if (rc == DB_DONE)
        return nova_fail(err, ERR_NOT_FOUND, "message %lld not found", (long long)message_id);
    return db_fail(db, err);
}

int message_send(nova_db *db, int64_t user_id, int64_t chat_id, const char *content,
                 int64_t reply_to, int64_t *message_id, nova_err *err)
{
    return message_send_attachment(db, user_id, chat_id, content, reply_to, 0, message_id, err);
}

int message_send_attachment(nova_db *db, int64_t user_id, int64_t chat_id, const char *content,
                            int64_t reply_to, int64_t attachment_id, int64_t *message_id,
                            nova_err *err)
{
    chat_info chat;
    int rc = access_chat(db, user_id, chat_id, NEED_MEMBER, false, &chat, NULL, err);
    if (rc) return rc;
    if (!attachment_id && (rc = validate_message_content(content, err))) return rc;
    if (attachment_id && (rc = attachment_check_unsent(db, user_id, chat_id, attachment_id, err)))
        return rc;
    if (reply_to) {
        message_info parent;
        if ((rc = message_lookup(db, reply_to, &parent, err))) return rc;
        if (parent.chat_id != chat_id)
            return nova_fail(err, ERR_INVALID, "reply_to must be a message of the same chat");
    }
    if ((rc = post(db, chat_id, user_id, content, reply_to, attachment_id, message_id, err)))
        return rc;
    return mark_read(db, user_id, chat_id, err); /* membership checked above */
}

/* The message, in a chat user_id is a member of: a user who left or was
 * removed from a group changes nothing in it, their old messages
 * included. */
static int own_chat_message(nova_db *db, int64_t user_id, int64_t message_id, message_info *m,
                            nova_err *err)
{
    chat_info chat;
    int rc = message_lookup(db, message_id, m, err);
    if (rc) return rc;
    return access_chat(db, user_id, m->chat_id, NEED_MEMBER, false, &chat, NULL, err);
}

static json_object *message_event(int64_t message_id)
{
    json_object *data = json_object_new_object();
    json_object_object_add(data, "message_id", json_i64(message_id));
    return data;
}

int message_delete_for_me(nova_db *db, int64_t user_id, int64_t message_id, nova_err *err)
{
    message_info m;
    int rc = own_chat_message(db, user_id, message_id, &m, err);
    if (rc) return rc;
    db_stmt *st = db_prepare(db, SQL_MESSAGE_HIDE);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, user_id);
    db_bind_i64(st, 2, message_id);
    if ((rc = db_exec_done(db, st, err))) return rc;
    return outbox_emit(db, "message_deleted", message_event(message_id), &user_id, 1, err);
}

int message_recall(nova_db *db, int64_t user_id, int64_t message_id, nova_err *err)
{
    message_info m;
    int rc = own_chat_message(db, user_id, message_id, &m, err);
    if (rc) return rc;
    if (m.recalled || m.sender_id != user_id)
        return nova_fail(err, ERR_FORBIDDEN, "only the sender may recall a message");
    db_stmt *st = db_prepare(db, SQL_MESSAGE_RECALL);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, message_id);
    db_bind_i64(st, 2, USER_DELETED_ID);
    if ((rc = db_exec_done(db, st, err)) || (rc = reactions_clear(db, message_id, err))) return rc;
    if ((rc = attachment_forget_message(db, message_id, err))) return rc;
    return outbox_emit_chat(db, "message_recalled", message_event(message_id), m.chat_id, err);
}

/* Move user_id's watermark to the newest message of a chat they are a
 * member of, and tell the members. */
static int mark_read(nova_db *db, int64_t user_id, int64_t chat_id, nova_err *err)
{
    db_stmt *st = db_prepare(db, SQL_MARK_READ);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_i64(st, 1, chat_id);
    db_bind_i64(st, 2, user_id);
    int rc = db_exec_done(db, st, err);
    if (rc) return rc;
    json_object *data = json_object_new_object();
    json_object_object_add(data, "chat_id", json_i64(chat_id));
    json_object_object_add(data, "user_id", json_i64(user_id));
    return outbox_emit_chat(db, "messages_read", data, chat_id, err);
}

int message_mark_read(nova_db *db, int64_t user_id, int64_t chat_id, nova_err *err)
{
    chat_info chat;
    int rc = access_chat(db, user_id, chat_id, NEED_MEMBER, false, &chat, NULL, err);
    return rc ? rc : mark_read(db, user_id, chat_id, err);
}
