/* edit_react.h - editing one's messages and reacting to messages with
 * emoji (docs/API.md "[ext] Edit and react").
 *
 * Each operation runs inside the caller's write transaction and emits its
 * notifications through the outbox to the chat's members. */
#ifndef NOVA_EDIT_REACT_H
#define NOVA_EDIT_REACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "config.h"
#include "db.h"

typedef struct edit_react_limits {
    long edit_window;    /* seconds after send_time a message may be edited; 0: no limit */
    long edit_max;       /* edits per message */
    long react_distinct; /* distinct emojis per message */
    long react_per_user; /* emojis one user may put on one message */
    long emoji_bytes;    /* bytes of one emoji (UTF-8) */
} edit_react_limits;

/* The limits of a configuration. */
edit_react_limits edit_react_limits_of(const nova_config *cfg);

/* Is s (len bytes) one emoji as docs/API.md defines it: 1..max_bytes of
 * UTF-8, only emoji code points, ZWJ between two of them, variation
 * selectors, skin-tone modifiers, keycaps and tag sequences. 0, or
 * ERR_INVALID / ERR_TOO_LARGE with err set. */
int emoji_check(const char *s, size_t len, size_t max_bytes, nova_err *err);

/* edit_message: only the sender, still a member of the chat, of a
 * message that is neither recalled nor a system message, within the edit
 * window and under the edit cap; content as send_message's. Emits
 * message_edited {message_id, chat_id, message, edited_at} to the members.
 * The same text again changes nothing and emits message_edited (with the
 * current edited_at, null if never edited) to the caller's sockets only. */
int message_edit(nova_db *db, const edit_react_limits *lim, int64_t user_id, int64_t message_id,
                 const char *content, nova_err *err);

/* react (add) / unreact (!add): caller a member of the message's chat;
 * not a recalled message. Idempotent: a reaction already there (or not
 * there) changes nothing and emits the same event, with the current count,
 * to the caller's sockets only. Otherwise emits
 * (emoji_len: its bytes, a NUL among them is refused)
 * reaction_added / reaction_removed {message_id, chat_id, user_id, emoji,
 * count} to the members (count: that emoji's reactions after the change). */
int message_react(nova_db *db, const edit_react_limits *lim, int64_t user_id, int64_t message_id,
                  const char *emoji, size_t emoji_len, bool add, nova_err *err);

/* Remove every reaction of a message (its recall). */
int reactions_clear(nova_db *db, int64_t message_id, nova_err *err);

#endif
