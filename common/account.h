/* account.h - deleting an account with everything it holds. */
#ifndef NOVA_ACCOUNT_H
#define NOVA_ACCOUNT_H

#include <stdint.h>

#include "db.h"

/* DELETE /user (API.md §6), inside the caller's write transaction: every
 * friend gets friend_deleted, the user's private chats and owned groups
 * are deleted (chat_deleted to their members), the user leaves every other
 * group (member_deleted), invitations, relations, read marks and friend
 * groups go, the remaining messages pass to #DELETED, and every session
 * ends (logout) last. ERR_NOT_FOUND for an unknown or system user. */
int account_delete(nova_db *db, int64_t user_id, nova_err *err);

#endif
