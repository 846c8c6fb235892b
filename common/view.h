/* view.h - the structures of API.md §3, built in one place.
 *
 * Responses and event payloads alike are made here. Each function returns
 * a new json_object (owned by the caller) or NULL with err set (ERR_NOT_FOUND when
 * the object does not exist). `viewer` is the user the structure is shown
 * to (it decides delete-for-me, last_message, unread_count); 0 shows it
 * as nobody in particular (event payloads sent to several users). */
#ifndef NOVA_VIEW_H
#define NOVA_VIEW_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "db.h"

json_object *view_user_basic(nova_db *db, int64_t user_id, nova_err *err);
json_object *view_user_detailed(nova_db *db, int64_t user_id, nova_err *err);

json_object *view_friend_group(nova_db *db, int64_t group_id, nova_err *err);
/* Friend as owner sees friend_id; ERR_NOT_FOUND when they are not friends. */
json_object *view_friend(nova_db *db, int64_t owner_id, int64_t friend_id, nova_err *err);
json_object *view_friend_invitation(nova_db *db, int64_t invitation_id, nova_err *err);

json_object *view_chat(nova_db *db, int64_t chat_id, int64_t viewer, nova_err *err);
json_object *view_chat_relation(nova_db *db, int64_t chat_id, int64_t viewer, nova_err *err);
json_object *view_chat_invitation(nova_db *db, int64_t invitation_id, nova_err *err);
/* ReceivedChatInvitation of user_id to chat_id (the consent flow). */
json_object *view_received_invitation(nova_db *db, int64_t chat_id, int64_t user_id,
                                      nova_err *err);

json_object *view_message_basic(nova_db *db, int64_t message_id, int64_t viewer, nova_err *err);
json_object *view_message_detailed(nova_db *db, int64_t message_id, int64_t viewer, nova_err *err);

/* [ChatMessage.Basic] of the messages ids[n], in that order (one
 * statement for all); ERR_NOT_FOUND if one does not exist. */
json_object *view_message_basics(nova_db *db, const int64_t *ids, size_t n, int64_t viewer,
                                 nova_err *err);

/* Which messages of a chat to list, newest first. */
typedef struct message_query {
    int64_t before; /* only ids below this; 0: no bound */
    long limit;     /* at most this many; 0: all */
    bool has_begin, has_end;
    double begin, end;     /* inclusive send_time bounds */
    const idlist *senders; /* only these senders; NULL: any */
} message_query;

/* [ChatMessage.Detailed] of a chat as viewer sees them. */
json_object *view_messages(nova_db *db, int64_t chat_id, int64_t viewer, const message_query *q,
                           nova_err *err);

/* A JSON array of view(db, id, viewer) for every id a bound statement
 * yields (column 0); NULL with err set if any view fails. */
typedef json_object *(*view_fn)(nova_db *db, int64_t id, int64_t viewer, nova_err *err);
json_object *view_list(nova_db *db, db_stmt *st, int64_t viewer, view_fn view, nova_err *err);
/* The same for a view that every viewer sees alike. */
typedef json_object *(*view_plain_fn)(nova_db *db, int64_t id, nova_err *err);
json_object *view_list_plain(nova_db *db, db_stmt *st, view_plain_fn view, nova_err *err);

#endif
