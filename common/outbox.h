/* outbox.h - the only way a notification is born.
 *
 * An event is a row of the outbox table written inside the caller's write
 * transaction, so it commits with the change that caused it or not at all.
 * Recipients are resolved now (user ids, optionally narrowed to one
 * session); nova-realtime delivers the row to the matching sockets.
 *
 * Around each write transaction the adapter tells the outbox what it needs
 * to know: the cause of the events when a socket action runs
 * (outbox_set_cause: the originating socket alone sees its request_id),
 * and the end of the transaction (outbox_committed wakes the realtime
 * daemons if events were written, outbox_discarded forgets them). That
 * state is the process's: each process writes through one connection, one
 * transaction at a time. */
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

/* The events of the current write transaction are caused by a socket
 * action: origin names the socket (rt_origin_format), request_id is the
 * action's. Until outbox_committed/outbox_discarded. */
void outbox_set_cause(const char *origin, int64_t request_id);

/* The current write transaction committed: if it wrote events, send a
 * wake-up datagram to each of wake_sockets (comma-separated paths; NULL or
 * "" for none: nova-realtime delivers its own commits itself). Best
 * effort: delivery never depends on it. Forgets the cause. */
void outbox_committed(const char *wake_sockets);

/* The current write transaction was rolled back: forget its events and
 * cause. */
void outbox_discarded(void);
/* The id of the newest event written in the current transaction (0: none
 * yet). An event undone with a savepoint may be counted: its id is only
 * ever used as an upper bound of what to deliver. */
int64_t outbox_last_emitted(void);

/* Delete up to batch events created before `before` (oldest first);
 * *deleted tells how many went. Autocommit: call outside transactions,
 * repeatedly, so that no single call holds the write lock for long. */
int outbox_prune(nova_db *db, double before, int batch, int *deleted, nova_err *err);

/* The oldest retained event id (newest + 1 when the table is empty) and
 * the newest id ever handed out. */
int outbox_bounds(nova_db *db, int64_t *oldest, int64_t *newest, nova_err *err);

/* --- reading ---------------------------------------------------------------
 *
 * Every reader of the outbox (nova-realtime's tail and replay, nova-admin)
 * goes through these: one query, one column order, one recipient parser,
 * one answer to each question about an event. */

/* An event read back. The strings belong to the reader's current row and
 * stay valid until the next outbox_next() or outbox_read_end(). */
typedef struct outbox_event {
    int64_t id;
    double created_at;
    const char *action;
    const char *data;       /* JSON text */
    const char *recipients; /* JSON array of user ids, ascending */
    int64_t session_id;     /* 0: every session of the recipients */
    const char *origin;     /* the socket that caused it (outbox_origin), or NULL */
    int64_t request_id;     /* that socket's request_id, 0 if none */
} outbox_event;

typedef struct outbox_reader {
    nova_db *db;
    db_stmt *st;
} outbox_reader;

/* Start reading the events with after < id (and id <= upto when upto > 0),
 * oldest first, at most limit of them (limit <= 0: all), only those of one
 * action when action is not NULL. 0 or a failure kind. The read holds a
 * snapshot until outbox_read_end(): end it promptly (WAL checkpoints wait
 * for it). */
int outbox_read(nova_db *db, outbox_reader *r, int64_t after, int64_t upto, long limit,
                const char *action, nova_err *err);

/* Start reading the events that may be addressed to user_id, with after <
 * id <= upto, oldest first, at most limit: those addressed to them (to any
 * of their sessions or one: outbox_event_for tells) through the
 * recipients' index, and the wide events (over 64 recipients) of anyone,
 * through theirs; whatever else is retained is not read. */
int outbox_read_for(nova_db *db, outbox_reader *r, int64_t user_id, int64_t after, int64_t upto,
                    long limit, nova_err *err);

/* Start reading the newest `count` events (of one action, if not NULL),
 * oldest of them first. */
int outbox_read_newest(nova_db *db, outbox_reader *r, long count, const char *action,
                       nova_err *err);

/* The event with this id: 0, ERR_NOT_FOUND (never written or pruned), or
 * another kind. The reader holds it until outbox_read_end(). */
int outbox_read_one(nova_db *db, outbox_reader *r, int64_t id, outbox_event *ev, nova_err *err);

/* The next event: 1 with *ev filled, 0 at the end, or a negative value
 * when the read failed (the failure is logged; the reader is at its end). */
int outbox_next(outbox_reader *r, outbox_event *ev);

/* End a read (always, also after an error). */
void outbox_read_end(outbox_reader *r);

/* Step through the user ids of a recipients text: call with *p at its
 * start; 1 and *user_id for each id, 0 at the end. */
int outbox_next_recipient(const char **p, int64_t *user_id);

/* Is ev addressed to user_id's session session_id? */
bool outbox_event_for(const outbox_event *ev, int64_t user_id, int64_t session_id);

/* Does delivering ev end the sockets it reaches (logout)? */
bool outbox_event_ends_session(const outbox_event *ev);

/* --- for operators (nova-admin outbox stats, the console) ------------------ */

/* The outbox as a whole, at time now. */
typedef struct outbox_stats {
    long long rows;
    int64_t oldest_id, newest_id; /* of the retained rows; 0 when there are none */
    double oldest_at, newest_at;
    long long last_minute;     /* events created in the last 60 s */
    long long last_10_minutes; /* and in the last 600 s */
} outbox_stats;

int outbox_stats_read(nova_db *db, double now, outbox_stats *out, nova_err *err);

/* A nova-realtime's row of realtime_daemons (its heartbeat). */
typedef struct outbox_daemon {
    const char *name;
    int64_t pid;
    double started_at;
    int64_t delivered_id;
    int64_t sockets;
    double updated_at;
} outbox_daemon;

/* Call each for every daemon that ever ran here, by name. */
int outbox_daemons(nova_db *db, void (*each)(void *ctx, const outbox_daemon *d), void *ctx,
                   nova_err *err);

/* What outbox_search looks for; 0 or NULL fields do not filter. */
typedef struct outbox_filter {
    const char *action;
    int64_t user_id; /* among the recipients */
    int64_t chat_id; /* the chat the event is about: data's chat_id, chat.chat_id or
                        message.chat_id */
    double since;    /* created_at >= since */
    double until;    /* created_at < until */
    int64_t before;  /* id < before (paging) */
    long limit;
} outbox_filter;

/* Start reading the events that match f, newest first (outbox_next). It
 * scans the retained outbox from the newest event down until it has
 * f->limit of them: the outbox is bounded by its retention. */
int outbox_search(nova_db *db, outbox_reader *r, const outbox_filter *f, nova_err *err);

#endif
