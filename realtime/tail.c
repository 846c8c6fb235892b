/* tail.c - follow the outbox and deliver each event to its sockets.
 *
 * A short timer checks PRAGMA data_version (a cheap "did another
 * connection commit?") and only then reads `id > last_id` in batches.
 * This daemon's own commits (socket actions) do not move data_version,
 * so actions call tail_run() right after they commit. Statements are
 * reset after every batch so that no read transaction stays open (which
 * would stop WAL checkpoints). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/outbox.h"
#include "../common/session.h"
#include "rt.h"

static const char SQL_DATA_VERSION[] = "PRAGMA data_version";
static const char SQL_STATUS_UPSERT[] =
    "INSERT INTO realtime_daemons (name, pid, started_at, delivered_id, sockets, updated_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (name) DO UPDATE SET pid = ?2, "
    "delivered_id = ?4, sockets = ?5, updated_at = ?6";

/* Deliver one event to the live sockets it is addressed to. */
static void deliver(rt *r, const outbox_event *ev)
{
    bool closes = outbox_event_ends_session(ev);
    packet *plain = NULL, *own = NULL;
    const char *p = ev->recipients;
    int64_t user_id;
    while (outbox_next_recipient(&p, &user_id)) {
        for (conn *c = rt_first_conn_of(r, user_id); c; c = rt_next_conn_of(c, user_id)) {
            if (c->replaying || (ev->session_id && c->session_id != ev->session_id)) continue;
            /* The socket that caused it sees its request_id; every other 0. */
            bool origin = ev->request_id && rt_origin_is(r, c, ev->origin);
            packet **pkt = origin ? &own : &plain;
            if (!*pkt)
                *pkt = packet_make(&(packet_fields){.action = ev->action,
                                                    .request_id = origin ? ev->request_id : 0,
                                                    .event_id = ev->id,
                                                    .data = ev->data});
            conn_send(r, c, *pkt);
            if (closes) conn_close_after_drain(c, 1000, "logged out");
        }
    }
    packet_unref(plain);
    packet_unref(own);
    log_debug("event %lld %s delivered", (long long)ev->id, ev->action);
}

int tail_run(rt *r)
{
    for (;;) {
        outbox_reader rd;
        outbox_event ev;
        nova_err err;
        if (outbox_read(r->db, &rd, r->last_id, 0, r->cfg->outbox_batch, NULL, &err)) return -1;
        long n = 0;
        int rc;
        while ((rc = outbox_next(&rd, &ev)) > 0) {
            deliver(r, &ev);
            r->last_id = ev.id;
            n++;
        }
        outbox_read_end(&rd);
        if (rc < 0) return -1;
        if (n < r->cfg->outbox_batch) return 0;
    }
}

static int64_t data_version(rt *r)
{
    db_stmt *st = db_prepare(r->db, SQL_DATA_VERSION);
    int64_t v = -1;
    if (st && db_step(st) == DB_ROW) v = db_col_i64(st, 0);
    db_done(st);
    return v;
}

static void tail_tick(lws_sorted_usec_list_t *sul)
{
    rt *r = lws_container_of(sul, rt, tail_timer);
    /* The version is kept only once the read worked: a failed read (a
     * rare busy lock, the connection never waits) is tried again. */
    int64_t v = data_version(r);
    if (v != r->data_version && !tail_run(r)) r->data_version = v;
    lws_sul_schedule(r->ctx, 0, &r->tail_timer, tail_tick,
                     (lws_usec_t)r->cfg->outbox_poll_ms * LWS_US_PER_MS);
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

    lws_sul_schedule(r->ctx, 0, &r->prune_timer, prune_tick,
                     deleted == 500 ? 10 * LWS_US_PER_MS : 60 * LWS_US_PER_SEC);
}

void tail_start(rt *r)
{
    /* Start at the newest event: older ones are for resuming clients.
     * data_version first, so a commit in between is seen as a change. */
    r->data_version = data_version(r);
    int64_t oldest;
    nova_err err;
    if (outbox_bounds(r->db, &oldest, &r->last_id, &err))
        log_error("reading the outbox's position failed: %s", err.msg);
    lws_sul_schedule(r->ctx, 0, &r->tail_timer, tail_tick,
                     (lws_usec_t)r->cfg->outbox_poll_ms * LWS_US_PER_MS);
    lws_sul_schedule(r->ctx, 0, &r->status_timer, status_tick, 1);
    lws_sul_schedule(r->ctx, 0, &r->prune_timer, prune_tick, LWS_US_PER_SEC);
}
