/* presence.c - nova-realtime's side of presence and typing (docs/API.md
 * "[ext] Presence and typing"; the rules are common/presence.c's).
 *
 * A socket opened or closed marks its user dirty; a flush (at the end of
 * the loop's pass, or every rt_retry_ms while the write lock is taken)
 * writes each dirty user's count of sockets on this daemon to the shared
 * `presence` table, which emits the online/offline transitions to their
 * friends through the outbox, so every daemon on the database delivers
 * them. Every presence_heartbeat_ms the daemon beats its heart, puts the
 * rows of dead daemons in their grace and ends the graces that are over;
 * now and then it prunes the ephemeral events.
 * Typing is rate limited here, per daemon, per (user, chat). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/json_util.h"
#include "../common/log.h"
#include "../common/presence.h"
#include "rt.h"

enum { TYPING_BUCKETS = 1024, FLUSH_BATCH = 500, EXPIRE_BATCH = 200, PRUNE_BATCH = 500 };

typedef struct typing_entry {
    struct typing_entry *next;
    int64_t user_id, chat_id;
    double at;
} typing_entry;

typedef struct presence_rt {
    rt *r;
    lws_sorted_usec_list_t beat_timer, flush_timer;
    bool flush_scheduled, stopping;
    int64_t *dirty;
    size_t n_dirty, cap_dirty;
    double next_prune;
    typing_entry *typing[TYPING_BUCKETS];
} presence_rt;

static void dirty_add(presence_rt *p, int64_t user_id)
{
    if (p->n_dirty == p->cap_dirty) {
        size_t cap = p->cap_dirty ? p->cap_dirty * 2 : 64;
        int64_t *grown = realloc(p->dirty, cap * sizeof *grown);
        if (!grown) return; /* the next heartbeat of an unknown instance re-sends all */
        p->dirty = grown;
        p->cap_dirty = cap;
    }
    p->dirty[p->n_dirty++] = user_id;
}

static void dirty_all(presence_rt *p)
{
    rt *r = p->r;
    for (size_t b = 0; b < r->n_buckets; b++)
        for (conn *c = r->buckets[b]; c; c = c->next_in_bucket)
            dirty_add(p, c->user_id);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static long local_sockets(rt *r, int64_t user_id, long *watchers)
{
    long n = 0;
    *watchers = 0;
    for (conn *c = rt_first_conn_of(r, user_id); c; c = rt_next_conn_of(c, user_id)) {
        n++;
        *watchers += c->presence_wanted;
    }
    return n;
}

/* Inside rt_write: the heartbeat, then the first FLUSH_BATCH dirty users
 * (sorted, each once). *done tells how many were written. */
typedef struct flush_ctx {
    presence_rt *p;
    size_t done;
} flush_ctx;

static int flush_fn(rt *r, void *ctx, nova_err *err)
{
    flush_ctx *f = ctx;
    presence_rt *p = f->p;
    double now = nova_now();
    bool known;
    int rc = presence_heartbeat(r->db, r->name, now, &known, err);
    if (rc) return rc;
    if (!known) dirty_all(p);
    qsort(p->dirty, p->n_dirty, sizeof *p->dirty, cmp_i64);
    size_t i = 0, written = 0;
    for (; i < p->n_dirty && written < FLUSH_BATCH; i++) {
        if (i && p->dirty[i] == p->dirty[i - 1]) continue;
        int64_t user = p->dirty[i];
        long watchers, sockets = local_sockets(r, user, &watchers);
        if ((rc = presence_set(r->db, r->name, user, sockets, watchers,
                               r->cfg->presence_grace_ms > 0, now, err)))
            return rc;
        written++;
    }
    f->done = i;
    return 0;
}

static void flush_tick(lws_sorted_usec_list_t *sul);

/* presence_snapshot to each socket of user_id that asked and has none yet. */
static void send_snapshots(rt *r, int64_t user_id)
{
    char *text = NULL;
    for (conn *c = rt_first_conn_of(r, user_id); c; c = rt_next_conn_of(c, user_id)) {
        if (!c->presence_wanted || c->presence) continue;
        if (!text) {
            nova_err err;
            json_object *snap = presence_snapshot(r->db, user_id, &err);
            if (!snap) {
                conn_send_error(r, c, 0, err_socket_code(err.kind),
                                "presence unavailable; reconnect");
                continue;
            }
            text = strdup(json_text(snap, NULL));
            json_object_put(snap);
            if (!text) continue;
        }
        conn_send_packet(r, c, &(packet_fields){.action = "presence_snapshot", .data = text});
        c->presence = true;
    }
    free(text);
}

static void schedule_flush(presence_rt *p, long ms)
{
    if (p->stopping || !p->r->ctx) return;
    p->flush_scheduled = true;
    lws_sul_schedule(p->r->ctx, 0, &p->flush_timer, flush_tick, (lws_usec_t)ms * LWS_US_PER_MS);
}

static void flush(presence_rt *p)
{
    rt *r = p->r;
    p->flush_scheduled = false;
    if (!p->n_dirty) return;
    flush_ctx f = {.p = p};
    nova_err err;
    int rc = rt_write(r, NULL, 0, flush_fn, &f, &err);
    if (rc == ACTION_BUSY || rc) {
        if (rc != ACTION_BUSY) log_error("presence: writing failed: %s", err.msg);
        schedule_flush(p, rc == ACTION_BUSY ? r->cfg->rt_retry_ms : 1000);
        return;
    }
    /* The sockets that asked for presence get their snapshot now that they
     * count as watchers: a transition committed before is in it, one
     * committed after is addressed to them. */
    for (size_t i = 0; i < f.done; i++)
        if (!i || p->dirty[i] != p->dirty[i - 1]) send_snapshots(r, p->dirty[i]);
    memmove(p->dirty, p->dirty + f.done, (p->n_dirty - f.done) * sizeof *p->dirty);
    p->n_dirty -= f.done;
    if (p->n_dirty) schedule_flush(p, 0);
}

static void flush_tick(lws_sorted_usec_list_t *sul)
{
    flush(lws_container_of(sul, presence_rt, flush_timer));
}

static int beat_fn(rt *r, void *ctx, nova_err *err)
{
    presence_rt *p = ctx;
    double now = nova_now();
    bool known;
    int changed, rc = presence_heartbeat(r->db, r->name, now, &known, err);
    if (rc) return rc;
    if (!known) dirty_all(p);
    return presence_expire(r->db, r->name, now, (double)r->cfg->presence_timeout_ms / 1000,
                           (double)r->cfg->presence_grace_ms / 1000, EXPIRE_BATCH, &changed, err);
}

/* Forget the rate-limit entries older than the interval. */
static void typing_sweep(presence_rt *p, double now)
{
    double keep = (double)p->r->cfg->typing_interval_ms / 1000;
    for (size_t b = 0; b < TYPING_BUCKETS; b++)
        for (typing_entry **e = &p->typing[b]; *e;) {
            if (now - (*e)->at >= keep) {
                typing_entry *gone = *e;
                *e = gone->next;
                free(gone);
            } else {
                e = &(*e)->next;
            }
        }
}

static void beat_tick(lws_sorted_usec_list_t *sul)
{
    presence_rt *p = lws_container_of(sul, presence_rt, beat_timer);
    rt *r = p->r;
    nova_err err;
    if (r->cfg->presence) {
        int rc = rt_write(r, NULL, 0, beat_fn, p, &err);
        if (rc && rc != ACTION_BUSY) log_error("presence: heartbeat failed: %s", err.msg);
        if (p->n_dirty && !p->flush_scheduled) schedule_flush(p, 0);
    }
    double now = nova_now();
    typing_sweep(p, rt_now());
    if (now >= p->next_prune) {
        int deleted = 0;
        if (presence_prune(r->db, now - (double)r->cfg->presence_retention, PRUNE_BATCH, &deleted,
                           &err))
            log_msg(db_last_was_busy(r->db) ? LOG_DEBUG : LOG_ERROR,
                    "pruning presence and typing events failed: %s", err.msg);
        p->next_prune = deleted == PRUNE_BATCH ? now : now + 10;
    }
    lws_sul_schedule(r->ctx, 0, &p->beat_timer, beat_tick,
                     (lws_usec_t)r->cfg->presence_heartbeat_ms * LWS_US_PER_MS);
}

void presence_start(rt *r)
{
    presence_rt *p = calloc(1, sizeof *p);
    if (!p) {
        log_error("presence: out of memory");
        return;
    }
    p->r = r;
    r->presence = p;
    lws_sul_schedule(r->ctx, 0, &p->beat_timer, beat_tick, 1);
}

void presence_stop(rt *r)
{
    presence_rt *p = r->presence;
    if (!p) return;
    p->stopping = true;
    lws_sul_cancel(&p->beat_timer);
    lws_sul_cancel(&p->flush_timer);
}

static int leave_fn(rt *r, void *ctx, nova_err *err)
{
    (void)ctx;
    return presence_leave(r->db, r->name, nova_now(), err);
}

void presence_leave_and_free(rt *r)
{
    presence_rt *p = r->presence;
    if (!p) return;
    if (r->cfg->presence) {
        nova_err err;
        int rc = ACTION_BUSY;
        for (int i = 0; i < 50 && rc == ACTION_BUSY; i++)
            if ((rc = rt_write(r, NULL, 0, leave_fn, NULL, &err)) == ACTION_BUSY) usleep(20000);
        if (rc)
            log_error("presence: leaving failed (the others expire us): %s",
                      rc == ACTION_BUSY ? "busy" : err.msg);
    }
    typing_sweep(p, 1e300);
    free(p->dirty);
    free(p);
    r->presence = NULL;
}

void presence_opened(rt *r, conn *c, struct lws *wsi)
{
    presence_rt *p = r->presence;
    if (!p || !r->cfg->presence) return;
    char buf[16];
    const char *v = wsi ? lws_get_urlarg_by_name(wsi, "presence=", buf, sizeof buf) : NULL;
    c->presence_wanted = v && !strcmp(v, "1");
    c->presence = false; /* until its snapshot, sent by the flush */
    dirty_add(p, c->user_id);
    if (!p->flush_scheduled) schedule_flush(p, 0);
}

void presence_closed(rt *r, conn *c)
{
    presence_rt *p = r->presence;
    if (!p || !c->registered || !r->cfg->presence) return;
    dirty_add(p, c->user_id);
    if (!p->flush_scheduled) schedule_flush(p, 0);
}

int presence_typing_action(rt *r, conn *c, int64_t chat_id, bool *sent, nova_err *err)
{
    presence_rt *p = r->presence;
    *sent = false;
    /* Members only, whatever the rate: the same errors every time. */
    int rc = presence_typing_check(r->db, c->user_id, chat_id, err);
    if (rc) return rc;
    typing_entry *e = NULL;
    double now = rt_now(), interval = (double)r->cfg->typing_interval_ms / 1000;
    if (p) {
        uint64_t h = ((uint64_t)c->user_id * 0x9E3779B97F4A7C15ull) ^ (uint64_t)chat_id;
        typing_entry **head = &p->typing[(h >> 32) % TYPING_BUCKETS];
        for (e = *head; e && (e->user_id != c->user_id || e->chat_id != chat_id); e = e->next) {
        }
        if (e && now - e->at < interval) return 0; /* dropped */
        if (!e && (e = calloc(1, sizeof *e))) {
            e->user_id = c->user_id;
            e->chat_id = chat_id;
            e->next = *head;
            *head = e;
        }
    }
    rc = presence_typing_emit(r->db, c->user_id, chat_id, err);
    if (rc) return rc;
    if (e) e->at = now;
    *sent = true;
    return 0;
}
