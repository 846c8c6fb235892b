/* presence.h - who is online, and typing (docs/API.md "[ext] Presence and
 * typing").
 *
 * A user is online while they have a row in `presence` (sql/007): one per
 * (nova-realtime instance, user) with that instance's sockets of the user,
 * or 0 sockets and gone_at while in the offline grace period. The
 * transitions (first row in, last row out) are emitted as `presence`
 * events to the user's friends; `typing` events go to a chat's other
 * members. Both are ephemeral: delivered live, never replayed, pruned
 * soon. Every write runs inside the caller's write transaction (writers
 * take turns: SQLite's write lock, PostgreSQL's advisory lock); on
 * PostgreSQL the user's row is locked too, so that the rule holds even
 * without that lock. */
#ifndef NOVA_PRESENCE_H
#define NOVA_PRESENCE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "outbox.h"

/* instance now has `sockets` open sockets of user_id, `watchers` of them
 * asking for presence (0 sockets: none left; the row then starts its
 * grace, or goes at once when grace is false). Emits online/offline to
 * the friends who watch (have a watching socket anywhere) when that is a
 * transition: nobody watching, no event. */
int presence_set(nova_db *db, const char *instance, int64_t user_id, long sockets, long watchers,
                 bool grace, double now, nova_err *err);

/* instance's heartbeat at now; *was_known false when it had no row (new,
 * or expired by the others: its users must be written again). */
int presence_heartbeat(nova_db *db, const char *instance, double now, bool *was_known,
                       nova_err *err);

/* Put the rows of every instance whose heartbeat is older than
 * now - timeout (other than `self`) in their grace, and forget those
 * instances; then end the graces older than now - grace (at most `batch`
 * users), emitting the offline transitions. *changed: rows touched. */
int presence_expire(nova_db *db, const char *self, double now, double timeout, double grace,
                    int batch, int *changed, nova_err *err);

/* An instance stops cleanly: its rows start their grace, it is forgot. */
int presence_leave(nova_db *db, const char *instance, double now, nova_err *err);

/* {"online":[User.Basic]}: the friends of user_id online now, by id. */
json_object *presence_snapshot(nova_db *db, int64_t user_id, nova_err *err);

/* a and b just became friends (made) or are about to stop being friends
 * (!made): each that watches gets the other's presence (online: true if
 * the other is online; when !made, online: false if the other was). */
int presence_friendship(nova_db *db, int64_t a, int64_t b, bool made, nova_err *err);

/* May user_id say it is typing in chat_id? The errors of access_chat
 * NEED_MEMBER (unknown chat 404, not a member 403). */
int presence_typing_check(nova_db *db, int64_t user_id, int64_t chat_id, nova_err *err);
/* Emit `typing` {"chat_id","user": User.Basic} to the other members of
 * chat_id (after presence_typing_check). */
int presence_typing_emit(nova_db *db, int64_t user_id, int64_t chat_id, nova_err *err);

/* Delete up to batch ephemeral events created before `before`
 * (autocommit, like outbox_prune). */
int presence_prune(nova_db *db, double before, int batch, int *deleted, nova_err *err);

/* Is this event ephemeral (presence, typing): never replayed? */
bool presence_event_ephemeral(const outbox_event *ev);
/* Is it a presence event (only for sockets that asked for presence)? */
bool presence_event_is_presence(const outbox_event *ev);

#endif
