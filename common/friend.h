/* friend.h - friend groups, friendships, friend invitations and search
 * (API.md §4 "Friend groups" and "Friends").
 *
 * Operations run inside the caller's transaction (write operations in a
 * write transaction), check every rule before changing anything, and emit
 * their notifications through the outbox. */
#ifndef NOVA_FRIEND_H
#define NOVA_FRIEND_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "db.h"

enum { FRIEND_FIND_LIMIT = 50 };

/* Groups. group_check: 0 when group_id is owner's; unknown →
 * ERR_NOT_FOUND; someone else's → ERR_FORBIDDEN. */
int friend_group_check(nova_db *db, int64_t owner, int64_t group_id, nova_err *err);
int friend_group_add(nova_db *db, int64_t owner, const char *name, int64_t *group_id,
                     nova_err *err);
int friend_group_rename(nova_db *db, int64_t owner, int64_t group_id, const char *name,
                        nova_err *err);
int friend_group_delete(nova_db *db, int64_t owner, int64_t group_id, nova_err *err);
/* [FriendGroup] of owner, default group first. */
json_object *friend_group_list(nova_db *db, int64_t owner, nova_err *err);

/* [User.Basic] matching id (exact; wins) or name_contains (case-sensitive
 * substring), never the caller or a system user, at most
 * FRIEND_FIND_LIMIT, by id. has_id false and name NULL → ERR_INVALID. */
json_object *friend_find(nova_db *db, int64_t caller, bool has_id, int64_t id,
                         const char *name_contains, nova_err *err);

/* Where an invitation says the two met, as the request gave it. */
typedef struct friend_source {
    bool given;      /* the field was present */
    bool search;     /* "search" */
    int64_t chat_id; /* otherwise: the chat id it held, 0 when not an id */
} friend_source;

/* Invite target. When target has already invited caller, that invitation
 * is accepted instead and *became_friends is set; the source is then not
 * checked (API.md §4). Otherwise the source must be "search" or a chat
 * both are members of (ERR_INVALID). */
int friend_invite(nova_db *db, int64_t caller, int64_t target, const char *comment,
                  const friend_source *source, bool *became_friends, nova_err *err);
/* Accept (→ *inviter) or decline an invitation addressed to caller. */
int friend_invitation_accept(nova_db *db, int64_t caller, int64_t invitation_id, int64_t *inviter,
                             nova_err *err);
int friend_invitation_decline(nova_db *db, int64_t caller, int64_t invitation_id, nova_err *err);
/* [FriendInvitation] received by caller. */
json_object *friend_invitation_list(nova_db *db, int64_t caller, nova_err *err);

/* Friendships. */
/* nickname NULL / group_id 0: unchanged. */
int friend_update(nova_db *db, int64_t owner, int64_t friend_id, const char *nickname,
                  int64_t group_id, nova_err *err);
int friend_delete(nova_db *db, int64_t owner, int64_t friend_id, nova_err *err);
/* [Friend] of owner. */
json_object *friend_list(nova_db *db, int64_t owner, nova_err *err);

/* End every friendship of user_id (account deletion). */
int friend_delete_all(nova_db *db, int64_t user_id, nova_err *err);

#endif
