/* message.h - posting, recalling, hiding and reading messages.
 *
 * Each operation runs inside the caller's write transaction and emits its
 * notifications (API.md §5) through the outbox. */
#ifndef NOVA_MESSAGE_H
#define NOVA_MESSAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "db.h"

/* Store a message and emit new_message {message: ChatMessage.Detailed} to
 * every member. No permission checks: see message_send. */
int message_post(nova_db *db, int64_t chat_id, int64_t sender_id, const char *content,
                 int64_t reply_to, int64_t *message_id, nova_err *err);

/* A system message from #SYSTEM (printf-style text). */
int message_post_system(nova_db *db, int64_t chat_id, nova_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The socket action send_message: caller must be a member, content
 * non-empty, reply_to (0: none) a message of the same chat. Posts, then
 * marks the chat read for the sender (messages_read). */
int message_send(nova_db *db, int64_t user_id, int64_t chat_id, const char *content,
                 int64_t reply_to, int64_t *message_id, nova_err *err);

/* message_send carrying an attachment (0: none): one the caller uploaded
 * to this chat and has not sent (attachment.h); content may then be
 * empty. */
int message_send_attachment(nova_db *db, int64_t user_id, int64_t chat_id, const char *content,
                            int64_t reply_to, int64_t attachment_id, int64_t *message_id,
                            nova_err *err);

/* recall_message {"delete": true}: hide the message for user_id only
 * (message_deleted to their sockets). user_id must be a member of its
 * chat. */
int message_delete_for_me(nova_db *db, int64_t user_id, int64_t message_id, nova_err *err);

/* recall_message: recall it for everyone (message_recalled to the
 * members): only its sender, still a member of its chat, may. */
int message_recall(nova_db *db, int64_t user_id, int64_t message_id, nova_err *err);

/* messages_read: move the caller's watermark to the newest message (O(1)
 * rows written) and emit messages_read {chat_id, user_id} to members. */
int message_mark_read(nova_db *db, int64_t user_id, int64_t chat_id, nova_err *err);

#endif
