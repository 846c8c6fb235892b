/* tail.c - follow the outbox and deliver each event to its sockets.
 *
 * A short timer checks SQLite's PRAGMA data_version (a cheap "did another
 * connection commit?") and only then reads `id > last_id` in batches; on
 * PostgreSQL it reads on every tick (an index probe), and a NOTIFY from
 * any host's writer wakes it at once (main.c).
 * This daemon's own commits (socket actions) do not move data_version,
 * so actions call tail_run() right after they commit. Statements are
 * reset after every batch so that no read transaction stays open (which
 * would stop WAL checkpoints). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/outbox.h"
#include "../common/presence.h"
#include "rt.h"

/* Echo first: the socket that caused an event gets it before the other
 * recipients' sockets are even asked to be written. lws writes the sockets
 * that are writable in the order of its descriptor table, not in the
 * order they were queued, so that at 10 000 members the sender's echo
 * waited behind most of the group (docs/BENCHMARKS.md, finding C). With
 * rt_echo_first recipients or more, the others' frames are queued at once
 * (each socket's order is kept) but their wake-ups wait for the origin's
 * write, or rt_echo_wait_us at most (an origin that cannot take it). */
static void held_tick(lws_sorted_usec_list_t *sul)
{
    rt_release_held(lws_container_of(sul, rt, held_timer));
}

/* Has ev at least rt_echo_first recipients? */
static bool echo_first(const rt *r, const outbox_event *ev)
{
    long count = 0;
    const char *p = ev->recipients;
    int64_t user_id;
    while (count < r->cfg->rt_echo_first && outbox_next_recipient(&p, &user_id))
        count++;
    return count >= r->cfg->rt_echo_first;
}

/* Deliver one event to the live sockets it is addressed to. */
static void deliver(rt *r, const outbox_event *ev)
{
    /* The socket that caused it, when it is one of ours: it sees its
     * request_id; every other 0. */
    uint64_t origin_id = 0;
    bool has_origin = ev->request_id && rt_origin_socket(r, ev->origin, &origin_id);
    bool hold = has_origin && r->cfg->rt_echo_first && echo_first(r, ev);
    bool closes = outbox_event_ends_session(ev);
    /* Ephemeral events are never replayed: a replaying socket gets them
     * live; presence events only reach the sockets that asked for them. */
    bool ephemeral = presence_event_ephemeral(ev), presence = presence_event_is_presence(ev);
    packet *plain = NULL, *own = NULL;
    const char *p = ev->recipients;
    int64_t user_id;
    while (outbox_next_recipient(&p, &user_id)) {
        for (conn *c = rt_first_conn_of(r, user_id); c; c = rt_next_conn_of(c, user_id)) {
            if ((c->replaying && !ephemeral) || (ev->session_id && c->session_id != ev->session_id))
                continue;
            if (presence && !c->presence) continue;
            bool origin = has_origin && c->id == origin_id;
            packet **pkt = origin ? &own : &plain;
            if (!*pkt)
                *pkt = packet_make(&(packet_fields){.action = ev->action,
                                                    .request_id = origin ? ev->request_id : 0,
                                                    .event_id = ev->id,
                                                    .data = ev->data});
            if (origin && hold) c->releases_held = true;
            if (hold && !origin)
                conn_send_held(r, c, *pkt);
            else
                conn_send(r, c, *pkt);
            r->metrics.deliveries++;
            if (closes) conn_close_after_drain(c, CLOSE_LOGGED_OUT, NULL);
        }
    }
    packet_unref(plain);
    packet_unref(own);
    if (hold && r->n_held && lws_dll2_is_detached(&r->held_timer.list))
        lws_sul_schedule(r->ctx, 0, &r->held_timer, held_tick, (lws_usec_t)r->cfg->rt_echo_wait_us);
    metrics_observe(&r->metrics.delivery_delay, nova_now() - ev->created_at);
    log_debug("event %lld %s delivered", (long long)ev->id, ev->action);
}

int tail_run(rt *r)
{
    return tail_run_upto(r, 0);
}

int tail_run_upto(rt *r, int64_t upto)
{
    for (;;) {
        outbox_reader rd;
        outbox_event ev;
        nova_err err;
        if (outbox_read(r->db, &rd, r->last_id, upto, r->cfg->outbox_batch, NULL, &err)) return -1;
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

static void tail_tick(lws_sorted_usec_list_t *sul)
{
    rt *r = lws_container_of(sul, rt, tail_timer);
    /* The version is kept only once the read worked: a failed read (a
     * rare busy lock, the connection never waits) is tried again. */
    int64_t v = db_data_version(r->db);
    if ((v < 0 || v != r->data_version) && !tail_run(r)) r->data_version = v;
    lws_sul_schedule(r->ctx, 0, &r->tail_timer, tail_tick,
                     (lws_usec_t)r->cfg->outbox_poll_ms * LWS_US_PER_MS);
}

void tail_start(rt *r)
{
    /* Start at the newest event: older ones are for resuming clients.
     * data_version first, so a commit in between is seen as a change. */
    r->data_version = db_data_version(r->db);
    int64_t oldest;
    nova_err err;
    if (outbox_bounds(r->db, &oldest, &r->last_id, &err))
        log_error("reading the outbox's position failed: %s", err.msg);
    lws_sul_schedule(r->ctx, 0, &r->tail_timer, tail_tick,
                     (lws_usec_t)r->cfg->outbox_poll_ms * LWS_US_PER_MS);
}
