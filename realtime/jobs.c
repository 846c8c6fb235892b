/* jobs.c - nova-realtime's periodic work besides the tail: every second,
 * record this daemon's position for operators (and, for the console's
 * chart, its largest lag of each minute) and end the sessions that
 * expired; every minute (or sooner while there is more), prune the outbox
 * and the lag samples.
 * Writes go through rt_write, so the loop never waits for the lock. */
#include <unistd.h>

#include "../common/console.h"
#include "../common/log.h"
#include "../common/outbox.h"
#include "../common/session.h"
#include "rt.h"

static const char SQL_STATUS_UPSERT[] =
    "INSERT INTO realtime_daemons (name, pid, started_at, delivered_id, sockets, updated_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (name) DO UPDATE SET pid = ?2, "
    "delivered_id = ?4, sockets = ?5, updated_at = ?6";

/* The console's lag history: a row per minute holding the largest lag the
 * heartbeat saw in it, written when the minute begins or the lag grows
 * (about one small write a minute). A failed write is tried next second. */
static void sample_lag(rt *r)
{
    nova_err err;
    int64_t oldest, newest;
    if (outbox_bounds(r->db, &oldest, &newest, &err)) return;
    int64_t minute = (int64_t)(nova_now() / 60), lag = newest > r->last_id ? newest - r->last_id : 0;
    if (minute == r->sample_minute && lag <= r->sample_lag) return;
    if (console_record_sample(r->db, r->name, minute, lag, (int64_t)r->n_conns, &err)) {
        log_debug("lag sample failed: %s", err.msg);
        r->sample_minute = -1;
        return;
    }
    if (minute != r->sample_minute) r->sample_lag = 0;
    r->sample_minute = minute;
    if (lag > r->sample_lag) r->sample_lag = lag;
}

static int expire_sessions(rt *r, void *ended, nova_err *err)
{
    return session_expire(r->db, 200, ended, err);
}

/* Every second: record this daemon's position for operators (nova-admin
 * outbox stats), and end sessions that expired (their sockets get logout,
 * delivered by the tail like any event). */
static void status_tick(lws_sorted_usec_list_t *sul)
{
    rt *r = lws_container_of(sul, rt, status_timer);
    nova_err err;
    int ended = 0;
    rt_check_stalls(r);
    /* Only when the write lock is free right now: else simply next
     * second, so the loop never waits for it. */
    int rc = rt_write(r, NULL, 0, expire_sessions, &ended, &err);
    if (rc == ACTION_BUSY)
        log_debug("session expiry: the database is busy, next time");
    else if (rc)
        log_error("ending expired sessions failed: %s", err.msg);
    else if (ended)
        log_info("ended %d expired sessions", ended);
    db_stmt *st = db_prepare(r->db, SQL_STATUS_UPSERT);
    if (st) {
        db_bind_text(st, 1, r->name);
        db_bind_i64(st, 2, (int64_t)getpid());
        db_bind_double(st, 3, r->started_at);
        db_bind_i64(st, 4, r->last_id);
        db_bind_i64(st, 5, (int64_t)r->n_conns);
        db_bind_double(st, 6, nova_now());
        if (db_step(st) != DB_DONE) log_debug("status update failed: %s", db_error_text(r->db));
        db_done(st);
    }
    sample_lag(r);
    lws_sul_schedule(r->ctx, 0, &r->status_timer, status_tick, LWS_US_PER_SEC);
}

/* Drop events older than the retention window, a small batch at a time so
 * that the write lock is never held long; keep going soon while there is
 * more, else check again in a minute. */
static void prune_tick(lws_sorted_usec_list_t *sul)
{
    rt *r = lws_container_of(sul, rt, prune_timer);
    nova_err err;
    int deleted = 0;
    double before = nova_now() - (double)r->cfg->outbox_retention;
    if (outbox_prune(r->db, before, 500, &deleted, &err))
        /* the write lock taken (the connection never waits): next time */
        log_msg(db_last_was_busy(r->db) ? LOG_DEBUG : LOG_ERROR, "pruning the outbox failed: %s",
                err.msg);
    else if (deleted)
        log_debug("pruned %d events", deleted);
    if (deleted < 500 && console_prune_samples(r->db, before, &err))
        log_msg(db_last_was_busy(r->db) ? LOG_DEBUG : LOG_ERROR, "pruning the lag samples failed: %s",
                err.msg);

    lws_sul_schedule(r->ctx, 0, &r->prune_timer, prune_tick,
                     deleted == 500 ? 10 * LWS_US_PER_MS : 60 * LWS_US_PER_SEC);
}

void jobs_start(rt *r)
{
    lws_sul_schedule(r->ctx, 0, &r->status_timer, status_tick, 1);
    lws_sul_schedule(r->ctx, 0, &r->prune_timer, prune_tick, LWS_US_PER_SEC);
}
