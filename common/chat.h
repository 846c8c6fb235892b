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

#include <json-c/json.h>

#include "access.h"
#include "db.h"

/* Create the private chat of a new friendship, owned by owner, with both
 * members and a relation each. No notification: the friendship sends
 * friend_created and the system message. */
int chat_create_private(nova_db *db, int64_t owner, int64_t other, int64_t *chat_id, nova_err *err);

/* Make user_id a member, with a relation whose watermark counts
 * everything already sent as read. */
int chat_add_member(nova_db *db, int64_t chat_id, int64_t user_id, nova_err *err);

/* Delete a chat with everything in it (members, relations, messages,
 * invitations), without notifications. */
int chat_destroy(nova_db *db, int64_t chat_id, nova_err *err);

/* POST /chat/new: a group owned by owner with the given members (each a
 * friend of owner; owner added whether listed or not). */
int chat_create_group(nova_db *db, int64_t owner, const char *name, const idlist *members,
                      int64_t *chat_id, nova_err *err);

/* DELETE /chat/<id> of a group: the owner deletes it (chat_deleted to the
 * members), anyone else leaves it ("member left"). */
int chat_delete_or_leave(nova_db *db, int64_t user_id, int64_t chat_id, nova_err *err);

/* Invitations (API.md §4; with group-invite-flow = consent, docs/API.md). */
int chat_invite(nova_db *db, int64_t caller, int64_t chat_id, int64_t user_id, nova_err *err);
json_object *chat_invitation_list(nova_db *db, int64_t caller, int64_t chat_id, nova_err *err);
int chat_invitation_approve(nova_db *db, int64_t caller, int64_t chat_id, int64_t user_id,
                            nova_err *err);
int chat_invitation_decline(nova_db *db, int64_t caller, int64_t chat_id, int64_t user_id,
                            nova_err *err);

/* The invitee's side, with group-invite-flow = consent (404 otherwise;
 * docs/API.md "Group invitations with consent"): the invitations addressed
 * to the caller, one ReceivedChatInvitation per chat; accepting (the
 * caller joins at once when the invitation is approved, *joined says so;
 * else it waits for an approval); declining (every pending invitation of
 * the caller to that chat). */
json_object *chat_invitations_received(nova_db *db, int64_t caller, nova_err *err);
int chat_invitation_accept(nova_db *db, int64_t caller, int64_t chat_id, bool *joined,
                           nova_err *err);
int chat_invitation_refuse(nova_db *db, int64_t caller, int64_t chat_id, nova_err *err);

/* Roles and removal. */
int chat_set_admin(nova_db *db, int64_t caller, int64_t chat_id, int64_t member_id, bool is_admin,
                   nova_err *err);
int chat_set_owner(nova_db *db, int64_t caller, int64_t chat_id, int64_t new_owner, nova_err *err);
int chat_remove_member(nova_db *db, int64_t caller, int64_t chat_id, int64_t member_id,
                       nova_err *err);

/* [UserChatRelation] of every chat the user is a member of. */
json_object *chat_list(nova_db *db, int64_t user_id, nova_err *err);

/* Account deletion: delete the groups user_id owns (chat_deleted) and
 * leave the others silently (admin_state_change, member_deleted). */
int chat_forget_user(nova_db *db, int64_t user_id, nova_err *err);

#endif
