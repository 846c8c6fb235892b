/* conn.c - the user registry and per-socket send queues, judged by progress. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/json_util.h"
#include "../common/log.h"
#include "rt.h"

/* Ask lws for a writable callback, and for a forced close shortly. A conn
 * without a wsi (the in-process fuzzer drives the packet handler without
 * any network) keeps its queue for inspection instead. */
void conn_want_write(conn *c)
{
    if (c->wsi) lws_callback_on_writable(c->wsi);
}

static void conn_kill_soon(conn *c)
{
    if (c->wsi) lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, 2);
}

int rt_registry_init(rt *r, size_t buckets)
{
    r->buckets = calloc(buckets, sizeof *r->buckets);
    r->n_buckets = buckets;
    return r->buckets ? 0 : -1;
}

void rt_registry_free(rt *r)
{
    free(r->buckets);
    r->buckets = NULL;
}

static size_t bucket_of(const rt *r, int64_t user_id)
{
    uint64_t h = (uint64_t)user_id * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) % r->n_buckets;
}

void rt_register(rt *r, conn *c)
{
    /* Over the per-user cap, the user's oldest open socket makes room. */
    long open = 0;
    conn *oldest = NULL;
    for (conn *o = rt_first_conn_of(r, c->user_id); o; o = rt_next_conn_of(o, c->user_id)) {
        if (o->close_when_drained) continue;
        open++;
        if (!oldest || o->id < oldest->id) oldest = o;
    }
    if (oldest && open >= r->cfg->ws_max_per_user) {
        log_info("user %lld has %ld sockets: closing the oldest", (long long)c->user_id, open);
        conn_close_after_drain(oldest, CLOSE_SOCKET_CAP, NULL);
        conn_kill_soon(oldest);
    }
    size_t b = bucket_of(r, c->user_id);
    c->next_in_bucket = r->buckets[b];
    r->buckets[b] = c;
    c->registered = true;
    r->n_conns++;
    r->metrics.sockets_opened++;
}

void rt_unregister(rt *r, conn *c)
{
    if (!c->registered) return;
    for (conn **p = &r->buckets[bucket_of(r, c->user_id)]; *p; p = &(*p)->next_in_bucket) {
        if (*p == c) {
            *p = c->next_in_bucket;
            break;
        }
    }
    c->registered = false;
    r->n_conns--;
}

conn *rt_first_conn_of(rt *r, int64_t user_id)
{
    conn *c = r->buckets[bucket_of(r, user_id)];
    while (c && c->user_id != user_id)
        c = c->next_in_bucket;
    return c;
}

conn *rt_next_conn_of(conn *c, int64_t user_id)
{
    for (c = c->next_in_bucket; c && c->user_id != user_id; c = c->next_in_bucket) {
    }
    return c;
}

/* Each kind of close of ours: its close code, and its reason unless the
 * closer gives one. */
static const struct {
    int code;
    const char *reason;
} closes[CLOSE_KINDS] = {
    [CLOSE_LOGGED_OUT] = {1000, "logged out"},
    [CLOSE_INVALID_SESSION] = {1008, "invalid session"},
    [CLOSE_SOCKET_CAP] = {1008, "too many sockets for this user: closed the oldest"},
    [CLOSE_TOO_SLOW] = {1008, "too slow: send queue limit exceeded, reconnect"},
    [CLOSE_TOO_BIG] = {1009, "message too big"},
    [CLOSE_PROTOCOL_ERROR] = {1002, "protocol error"},
    [CLOSE_TRY_AGAIN_LATER] = {1013, "try again later"},
    [CLOSE_SERVER_ERROR] = {1011, "server error, reconnect"},
};

void conn_close_after_drain(conn *c, enum rt_close_kind kind, const char *why)
{
    if (c->close_when_drained) return;
    c->close_when_drained = true;
    c->close_kind = kind;
    c->close_code = closes[kind].code;
    snprintf(c->close_reason, sizeof c->close_reason, "%s", why ? why : closes[kind].reason);
    conn_want_write(c);
}

void conn_free_queue(conn *c)
{
    while (c->head) {
        queued *q = c->head;
        c->head = q->next;
        packet_unref(q->pkt);
        free(q);
    }
    c->tail = NULL;
    c->queued_bytes = 0;
    c->over_since = 0;
}

double rt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void conn_update_rx(rt *r, conn *c)
{
    /* Its actions wait for the write lock, or it has sent many that wait
     * for their batch: its input waits too (back-pressure). */
    bool pause = (c->pending > 0 && r->lock_busy) || c->pending >= RT_PENDING_PER_SOCKET ||
                 c->queued_bytes > (size_t)r->cfg->ws_rx_pause;
    if (pause == c->rx_paused || !c->wsi) return;
    c->rx_paused = pause;
    lws_rx_flow_control(c->wsi, pause ? 0 : 1);
}

/* A client that cannot keep up is dropped rather than allowed to hold
 * memory; it resumes with last_event_id. */
static void conn_too_slow(conn *c, const char *why)
{
    log_info("socket %llu of user %lld is too slow (%zu bytes queued, %s): closing",
             (unsigned long long)c->id, (long long)c->user_id, c->queued_bytes, why);
    conn_free_queue(c);
    conn_close_after_drain(c, CLOSE_TOO_SLOW, NULL);
    /* A stuck peer may never make the socket writable for the close
     * frame: drop the connection in any case shortly. */
    conn_kill_soon(c);
}

/* The backlog is judged against progress, not by its size at one
 * instant: a socket that keeps taking packets may hold more than
 * ws_max_queue for a while (a burst of large events). It is closed only
 * when, over ws_max_queue, it has taken no packet for ws_send_stall_ms;
 * or for a tenth of that while its backlog grew by another ws_max_queue
 * (its kernel buffer stays full while more keeps coming: a reader that
 * keeps up takes a packet far sooner, even after a large batch arrived
 * in one pass of the loop); or when it reaches ws_queue_ceiling. */
static bool conn_judge(rt *r, conn *c, double now)
{
    const nova_config *cfg = r->cfg;
    if (c->close_when_drained || !c->over_since) return false;
    if (c->queued_bytes >= (size_t)cfg->ws_queue_ceiling && c->head != c->tail) {
        conn_too_slow(c, "over the ceiling");
        return true;
    }
    double since = c->last_progress > c->over_since ? c->last_progress : c->over_since;
    double stall = (double)cfg->ws_send_stall_ms / 1000;
    if (now - since >= stall) {
        conn_too_slow(c, "no progress");
        return true;
    }
    if (now - since >= stall / 10 && c->last_progress < c->over_since &&
        c->queued_bytes >= c->over_bytes + (size_t)cfg->ws_max_queue) {
        conn_too_slow(c, "growing without progress");
        return true;
    }
    return false;
}

void rt_check_stalls(rt *r)
{
    double now = rt_now();
    for (size_t b = 0; b < r->n_buckets; b++)
        for (conn *c = r->buckets[b]; c; c = c->next_in_bucket)
            conn_judge(r, c, now);
}

void conn_release(conn *c)
{
    conn_free_queue(c);
    packet_unref(c->inflight);
    c->inflight = NULL;
}

/* Hold c's wake-up until rt_release_held; false when it cannot be held
 * (no wsi, no memory): then it is woken at once. */
static bool hold_wake(rt *r, conn *c)
{
    if (!c->wsi) return false;
    if (c->wake_held) return true;
    if (r->n_held == r->cap_held) {
        size_t cap = r->cap_held ? r->cap_held * 2 : 256;
        conn **grown = realloc(r->held, cap * sizeof *grown);
        if (!grown) return false;
        r->held = grown;
        r->cap_held = cap;
    }
    r->held[r->n_held++] = c;
    c->wake_held = true;
    return true;
}

void rt_release_held(rt *r)
{
    for (size_t i = 0; i < r->n_held; i++) {
        r->held[i]->wake_held = false;
        conn_want_write(r->held[i]);
    }
    r->n_held = 0;
    lws_sul_cancel(&r->held_timer);
}

void rt_forget_held(rt *r, conn *c)
{
    if (!c->wake_held) return;
    for (size_t i = 0; i < r->n_held; i++)
        if (r->held[i] == c) {
            r->held[i] = r->held[--r->n_held];
            break;
        }
    c->wake_held = false;
}

static void send_queued(rt *r, conn *c, packet *p, bool held);

void conn_send(rt *r, conn *c, packet *p)
{
    send_queued(r, c, p, false);
}

void conn_send_held(rt *r, conn *c, packet *p)
{
    send_queued(r, c, p, true);
}

static void send_queued(rt *r, conn *c, packet *p, bool held)
{
    if (!p || c->close_when_drained) return;
    queued *q = malloc(sizeof *q);
    if (!q) return;
    p->refs++;
    q->pkt = p;
    q->next = NULL;
    if (c->tail)
        c->tail->next = q;
    else
        c->head = q;
    c->tail = q;
    c->queued_bytes += p->len;
    if (c->queued_bytes > (size_t)r->cfg->ws_max_queue && !c->over_since) {
        c->over_since = rt_now();
        c->over_bytes = c->queued_bytes;
    }
    if (c->over_since && conn_judge(r, c, rt_now())) return;
    conn_update_rx(r, c);
    if (!held || !hold_wake(r, c)) conn_want_write(c);
}

void conn_send_packet(rt *r, conn *c, const packet_fields *f)
{
    packet *p = packet_make(f);
    conn_send(r, c, p);
    packet_unref(p);
}

void conn_send_error(rt *r, conn *c, int64_t request_id, int code, const char *msg)
{
    conn_send_packet(
        r, c,
        &(packet_fields){.action = "error", .request_id = request_id, .code = code, .error = msg});
}

int conn_write_next(rt *r, conn *c)
{
    /* This callback comes only once lws has written all of the previous
     * packet (compressed fragments included): it may go now. */
    packet_unref(c->inflight);
    c->inflight = NULL;
    queued *q = c->head;
    if (!q) {
        if (!c->close_when_drained) return 0;
        lws_close_reason(c->wsi, (enum lws_close_status)c->close_code,
                         (unsigned char *)c->close_reason, strlen(c->close_reason));
        return -1;
    }
    c->head = q->next;
    if (!c->head) c->tail = NULL;
    c->queued_bytes -= q->pkt->len;
    int n = lws_write(c->wsi, q->pkt->bytes + LWS_PRE, q->pkt->len, LWS_WRITE_TEXT);
    if (c->deflate)
        c->inflight = q->pkt; /* until the next callback, asked for below */
    else
        packet_unref(q->pkt); /* lws copied what it could not send */
    free(q);
    if (n < 0) return -1;
    if (c->releases_held) { /* the echo is out: now the others */
        c->releases_held = false;
        rt_release_held(r);
    }
    c->last_progress = rt_now();
    if (c->queued_bytes <= (size_t)r->cfg->ws_max_queue) c->over_since = 0;
    conn_update_rx(r, c);
    if (c->head || c->close_when_drained || c->inflight) conn_want_write(c);
    return 0;
}
