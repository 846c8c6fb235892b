/* access.h - who may do what: the one gate for "may this user do this to
 * this chat", and the friendship facts the rules depend on.
 *
 * Every domain operation on a chat starts with access_chat(); every rule
 * that needs "are these two friends" asks access_are_friends() or
 * access_friend(). Failures are kinds (err.h): what each endpoint answers
 * for them is the adapters' business. */
#ifndef NOVA_ACCESS_H
#define NOVA_ACCESS_H

#include <stdbool.h>
#include <stdint.h>

#include "db.h"

enum chat_role { ROLE_NONE = 0, ROLE_MEMBER, ROLE_ADMIN, ROLE_OWNER };

typedef struct chat_info {
    int64_t id;
    int64_t owner_id;
    bool is_private;
} chat_info;

/* Load a chat; ERR_NOT_FOUND if it does not exist. */
int access_chat_load(nova_db *db, int64_t chat_id, chat_info *out, nova_err *err);

/* What the caller must be in a chat for an operation (access_chat). */
enum chat_need {
    NEED_MEMBER, /* any member */
    NEED_STAFF,  /* the owner or an admin */
    NEED_OWNER,  /* the owner */
};

/* The one access gate: may caller do this to chat_id? Loads the chat
 * (ERR_NOT_FOUND when unknown), refuses a private chat where group_only
 * (ERR_INVALID), then checks the caller's role against need
 * (ERR_FORBIDDEN). On success *chat and *role (role may be NULL) are the
 * chat and the caller's role in it. Every operation on a chat starts
 * here; what each endpoint answers for each kind is the route table's. */
int access_chat(nova_db *db, int64_t caller, int64_t chat_id, enum chat_need need, bool group_only,
                chat_info *chat, enum chat_role *role, nova_err *err);

/* The role of user_id in a chat (ROLE_NONE when not a member). */
int access_chat_role(nova_db *db, const chat_info *chat, int64_t user_id, enum chat_role *role,
                     nova_err *err);

/* The private chat of two friends in *chat_id, 0 when they are not
 * friends. */
int access_friendship(nova_db *db, int64_t a, int64_t b, int64_t *chat_id, nova_err *err);

/* Are a and b friends? */
int access_are_friends(nova_db *db, int64_t a, int64_t b, bool *yes, nova_err *err);

/* 0 when friend_id is owner's friend, else ERR_NOT_FOUND. */
int access_friend(nova_db *db, int64_t owner, int64_t friend_id, nova_err *err);

#endif
