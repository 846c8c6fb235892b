/* console.h - what the outbox console shows (docs/CONSOLE.md), as JSON.
 *
 * The queries behind the console's API: the outbox's size and rate, the
 * daemons' positions and lag, the per-minute history of both, events
 * found by filters, one event with its recipients by name, and the live
 * chat sessions. fcgi/console.c serves them; the shared readers they are
 * built on (outbox_stats_read, outbox_daemons, outbox_search,
 * session_list) serve nova-admin too. Also the lag samples nova-realtime's
 * heartbeat writes for the chart. */
#ifndef NOVA_CONSOLE_H
#define NOVA_CONSOLE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "outbox.h"

/* A daemon whose heartbeat is older than this (seconds) is shown stale. */
enum { CONSOLE_DAEMON_STALE = 5, CONSOLE_SERIES_MAX_HOURS = 168 };

/* Record daemon's lag (events behind the newest) in minute (UNIX time /
 * 60): the row of that minute keeps the largest lag written to it.
 * Autocommit; a busy database fails it (the caller tries again later). */
int console_record_sample(nova_db *db, const char *daemon, int64_t minute, int64_t lag,
                          int64_t sockets, nova_err *err);

/* Drop the samples of minutes that began before `before` (UNIX time). */
int console_prune_samples(nova_db *db, double before, nova_err *err);

/* The outbox's size and rate, and every daemon's position and lag. */
json_object *console_stats(nova_db *db, nova_err *err);

/* Events per minute and each daemon's lag per minute over the last hours. */
json_object *console_series(nova_db *db, int hours, nova_err *err);

/* The events that match f, newest first, and the `before` of the next
 * page (null at the end). */
json_object *console_events(nova_db *db, const outbox_filter *f, nova_err *err);

/* The events after `after`, oldest first (at most limit), and the outbox's
 * position; with after < 0 none, only the position to follow from. */
json_object *console_tail(nova_db *db, int64_t after, long limit, nova_err *err);

/* One event in full, its recipients with their names; ERR_NOT_FOUND. */
json_object *console_event(nova_db *db, int64_t id, nova_err *err);

/* The id of the chat user named name: 0 or ERR_NOT_FOUND. */
int console_user_id(nova_db *db, const char *name, int64_t *id, nova_err *err);

/* The live chat sessions (of one user if user_name is not NULL), never
 * their tokens. */
json_object *console_sessions(nova_db *db, const char *user_name, nova_err *err);

#endif
