/* outbox.h - the only way a notification is born.
 *
 * An event is a row of the outbox table written inside the caller's write
 * transaction, so it commits with the change that caused it or not at all.
 * Recipients are resolved now (user ids, optionally narrowed to one
 * session); nova-realtime delivers the row to the matching sockets. If the
 * transaction runs for a socket action, db->origin/request_id are stored
 * so that the originating socket can see its request_id. */
#ifndef NOVA_OUTBOX_H
#define NOVA_OUTBOX_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"

/* Emit action with data (consumed; NULL means JSON null) to users.
 * Duplicate ids are delivered once. 0 or a failure kind. */
int outbox_emit(nova_db *db, const char *action, json_object *data, const int64_t *users,
                size_t n_users, nova_err *err);

/* Emit to one session of user_id only (logout). */
int outbox_emit_session(nova_db *db, const char *action, json_object *data, int64_t user_id,
                        int64_t session_id, nova_err *err);

/* Emit to every current member of a chat. */
int outbox_emit_chat(nova_db *db, const char *action, json_object *data, int64_t chat_id,
                     nova_err *err);

/* Mark the events of the next transactions as caused by a socket action
 * (origin names the socket, e.g. "rt1:42"); outbox_clear_origin after. */
/* Delete up to batch events created before `before` (oldest first);
 * *deleted tells how many went. Autocommit: call outside transactions,
 * repeatedly, so that no single call holds the write lock for long. */
int outbox_prune(nova_db *db, double before, int batch, int *deleted, nova_err *err);

/* The oldest retained event id (newest + 1 when the table is empty) and
 * the newest id ever handed out. */
int outbox_bounds(nova_db *db, int64_t *oldest, int64_t *newest, nova_err *err);

/* Is an event with these recipients (JSON array of user ids) and session
 * restriction (0: none) addressed to user_id's session session_id? */
bool outbox_addressed_to(const char *recipients, int64_t event_session, int64_t user_id,
                         int64_t session_id);

void outbox_set_origin(nova_db *db, const char *origin, int64_t request_id);
void outbox_clear_origin(nova_db *db);

#endif
