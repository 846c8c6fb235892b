/* chat.h - chats: private chats of friendships and group chats with an
 * owner, admins, members and invitations (API.md §4 "Chats").
 *
 * Every operation runs inside the caller's write transaction, checks the
 * rules of the spec first (nothing changes when one fails), then changes
 * and emits its notifications. */
#ifndef NOVA_CHAT_H
#define NOVA_CHAT_H

#include <stdbool.h>
#include <stdint.h>

#include "db.h"

enum chat_role { ROLE_NONE = 0, ROLE_MEMBER, ROLE_ADMIN, ROLE_OWNER };

typedef struct chat_info {
    int64_t id;
    int64_t owner_id;
    bool is_private;
} chat_info;

/* Load a chat; missing_status (400 or 404, per endpoint) if it does not
 * exist. */
int chat_lookup(nova_db *db, int64_t chat_id, chat_info *out, int missing_status,
                nova_err *err);

/* The role of user_id in a chat (ROLE_NONE when not a member). */
int chat_role(nova_db *db, const chat_info *chat, int64_t user_id, enum chat_role *role,
              nova_err *err);

/* Create the private chat of a new friendship, owned by owner, with both
 * members and a relation each. No notification: the friendship sends
 * friend_created and the system message. */
int chat_create_private(nova_db *db, int64_t owner, int64_t other, int64_t *chat_id,
                        nova_err *err);

/* Make user_id a member, with a relation whose watermark counts
 * everything already sent as read. */
int chat_add_member(nova_db *db, int64_t chat_id, int64_t user_id, nova_err *err);

/* Delete a chat with everything in it (members, relations, messages,
 * invitations), without notifications. */
int chat_destroy(nova_db *db, int64_t chat_id, nova_err *err);

#endif
