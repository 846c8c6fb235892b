/* message.c - messages: post, send, recall, delete-for-me, read marks. */
#include "message.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "chat.h"
#include "json_util.h"
#include "outbox.h"
#include "user.h"
#include "view.h"

static const char SQL_MESSAGE_INSERT[] =
    "INSERT INTO messages (chat_id, sender_id, content, send_time, reply_to_id) "
    "VALUES (?, ?, ?, ?, ?)";

int message_post(nova_db *db, int64_t chat_id, int64_t sender_id, const char *content,
                 int64_t reply_to, int64_t *message_id, nova_err *err)
{
    sqlite3_stmt *st = db_prepare(db, SQL_MESSAGE_INSERT);
    if (!st) return nova_fail(err, 500, "internal error");
    sqlite3_bind_int64(st, 1, chat_id);
    sqlite3_bind_int64(st, 2, sender_id);
    db_bind_text(st, 3, content);
    sqlite3_bind_double(st, 4, nova_now());
    if (reply_to) sqlite3_bind_int64(st, 5, reply_to);
    int rc = db_exec_done(db, st, err);
    if (rc) return rc;
    int64_t id = sqlite3_last_insert_rowid(db->sql);
    if (message_id) *message_id = id;
    json_object *m = view_message_detailed(db, id, 0, err);
    if (!m) return err->status;
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
    if (n < 0) return nova_fail(err, 500, "out of memory");
    int rc = message_post(db, chat_id, USER_SYSTEM_ID, text, 0, NULL, err);
    free(text);
    return rc;
}
