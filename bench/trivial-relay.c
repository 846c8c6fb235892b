/* trivial-relay.c - the baseline for the socket benchmarks: a WebSocket
 * relay that does nothing but move text frames between sockets.
 *
 * It runs like nova-realtime does (libwebsockets on a libev loop of its
 * own, one context, one thread, a unix socket behind the same nginx), so
 * that scripts/bench can load both the same way and compare: whatever
 * nova-realtime costs above this relay is Nova's own work (JSON, the
 * transaction, building events, the outbox).
 *
 *   trivial-relay --listen PATH|PORT [--max-queue N]
 *
 * Where a socket belongs comes from its URL's query at connect:
 *
 *   ?pair=K&side=S   S is 0 or 1: every text frame goes to the other side
 *                    of pair K (and is dropped while that side is absent);
 *   ?group=G         every text frame goes to every socket of group G,
 *                    the sender's own included (as Nova's new_message does);
 *   anything else    an idle socket: held open, never written to.
 *
 * No database, no parsing of the frames. A frame is copied once, into a
 * reference-counted payload that every recipient's queue shares; each
 * recipient gets its own lws_write of it, one per writable callback (lws
 * writes the same frame header in front of it every time). A socket whose
 * queue holds --max-queue frames is closed (a slow consumer), as Nova's
 * NOVA_WS_MAX_QUEUE does. SIGTERM or SIGINT stops it. */
#include <ev.h>
#include <libwebsockets.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RELAY_QUEUE_SLOTS 64      /* ring size per socket; --max-queue at most this */
#define RELAY_MAX_FRAME (1 << 20) /* a longer message closes its socket */
#define RELAY_BUCKETS 1024        /* hash buckets of the rooms */

/* One received frame, shared by the queues of all its recipients. */
typedef struct relay_msg {
    int refs;
    size_t len;
    unsigned char buf[]; /* LWS_PRE bytes for lws's frame header, then the payload */
} relay_msg;

enum { ROOM_PAIR, ROOM_GROUP };

struct relay_peer;

/* A pair (members[0] and members[1], each NULL while absent) or a group
 * (members[0..n), in no order). Rooms are found by kind and key at
 * connect only; a socket keeps a pointer to its own. */
typedef struct relay_room {
    int kind;
    long key;
    struct relay_peer **members;
    size_t n, cap;
    struct relay_room *next; /* the bucket's chain */
} relay_room;

/* lws's per-session data of one socket. */
typedef struct relay_peer {
    struct lws *wsi;
    relay_room *room; /* NULL: idle */
    size_t slot;      /* pair: the side; group: the index in members */
    relay_msg *queue[RELAY_QUEUE_SLOTS];
    unsigned head, queued;
    bool doomed;       /* queue overflow: close at the next writable */
    unsigned char *rx; /* a message arriving in several fragments */
    size_t rx_len, rx_cap;
} relay_peer;

static struct {
    relay_room *buckets[RELAY_BUCKETS];
    unsigned max_queue;
    uint64_t frames_in, frames_out, dropped, overflows;
} R = {.max_queue = RELAY_QUEUE_SLOTS};

/* --- payloads -------------------------------------------------------------- */

static relay_msg *relay_msg_new(const void *data, size_t len)
{
    relay_msg *m = malloc(sizeof *m + LWS_PRE + len);
    if (!m) return NULL;
    m->refs = 1;
    m->len = len;
    memcpy(m->buf + LWS_PRE, data, len);
    return m;
}

static void relay_msg_unref(relay_msg *m)
{
    if (--m->refs == 0) free(m);
}

/* --- rooms ----------------------------------------------------------------- */

static relay_room **relay_room_slot(int kind, long key)
{
    size_t h = ((size_t)key * 2654435761u + (size_t)kind) % RELAY_BUCKETS;
    relay_room **p = &R.buckets[h];
    while (*p && ((*p)->kind != kind || (*p)->key != key))
        p = &(*p)->next;
    return p;
}

/* The room of that kind and key, made if there is none (NULL: no memory). */
static relay_room *relay_room_get(int kind, long key)
{
    relay_room **p = relay_room_slot(kind, key);
    relay_room *r = *p;
    if (r) return r;
    r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->kind = kind;
    r->key = key;
    if (kind == ROOM_PAIR) {
        r->cap = 2;
        r->members = calloc(2, sizeof *r->members);
        if (!r->members) {
            free(r);
            return NULL;
        }
    }
    *p = r;
    return r;
}

/* Puts a socket into a room: 0, or -1 (the side is taken, or no memory). */
static int relay_room_join(relay_room *r, relay_peer *p, size_t side)
{
    if (r->kind == ROOM_PAIR) {
        if (side > 1 || r->members[side]) return -1;
        r->members[side] = p;
        r->n++;
        p->slot = side;
    } else {
        if (r->n == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 64;
            relay_peer **grown = realloc(r->members, cap * sizeof *grown);
            if (!grown) return -1;
            r->members = grown;
            r->cap = cap;
        }
        p->slot = r->n;
        r->members[r->n++] = p;
    }
    p->room = r;
    return 0;
}

static void relay_room_free_if_empty(relay_room *r)
{
    if (r->n) return;
    relay_room **slot = relay_room_slot(r->kind, r->key);
    *slot = r->next;
    free(r->members);
    free(r);
}

/* Takes a socket out of its room, and frees the room once it is empty. */
static void relay_room_leave(relay_peer *p)
{
    relay_room *r = p->room;
    if (!r) return;
    p->room = NULL;
    if (r->kind == ROOM_PAIR) {
        r->members[p->slot] = NULL;
    } else {
        /* the last member takes the leaver's slot */
        relay_peer *last = r->members[r->n - 1];
        r->members[p->slot] = last;
        last->slot = p->slot;
    }
    r->n--;
    relay_room_free_if_empty(r);
}

/* --- sockets --------------------------------------------------------------- */

/* A query argument as a number; false when absent or not a number. */
static bool relay_arg(struct lws *wsi, const char *name, long *out)
{
    char buf[64];
    const char *v = lws_get_urlarg_by_name(wsi, name, buf, (int)sizeof buf);
    if (!v || !*v) return false;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || n < 0) return false;
    *out = n;
    return true;
}

static int relay_established(relay_peer *p, struct lws *wsi)
{
    memset(p, 0, sizeof *p);
    p->wsi = wsi;
    long key, side = 0;
    int kind;
    if (relay_arg(wsi, "pair=", &key) && relay_arg(wsi, "side=", &side))
        kind = ROOM_PAIR;
    else if (relay_arg(wsi, "group=", &key))
        kind = ROOM_GROUP;
    else
        return 0; /* idle */
    if (side > 1) return -1;
    relay_room *r = relay_room_get(kind, key);
    if (!r) return -1;
    if (relay_room_join(r, p, (size_t)side)) {
        relay_room_free_if_empty(r); /* it may have been made for this socket */
        return -1;
    }
    return 0;
}

static void relay_enqueue(relay_peer *to, relay_msg *m)
{
    if (to->doomed) return;
    if (to->queued >= R.max_queue) {
        to->doomed = true;
        R.overflows++;
        lws_callback_on_writable(to->wsi);
        return;
    }
    m->refs++;
    to->queue[(to->head + to->queued++) % RELAY_QUEUE_SLOTS] = m;
    if (to->queued == 1) lws_callback_on_writable(to->wsi);
}

/* One whole message from p: to its pair's other side or its whole group. */
static int relay_forward(relay_peer *p, const void *data, size_t len)
{
    R.frames_in++;
    relay_room *r = p->room;
    if (!r) return 0;
    relay_msg *m = relay_msg_new(data, len);
    if (!m) return -1;
    if (r->kind == ROOM_PAIR) {
        relay_peer *other = r->members[1 - p->slot];
        if (other)
            relay_enqueue(other, m);
        else
            R.dropped++;
    } else {
        for (size_t i = 0; i < r->n; i++)
            relay_enqueue(r->members[i], m);
    }
    relay_msg_unref(m);
    return 0;
}

/* A received fragment: forwarded straight from lws's buffer when it is a
 * whole message (the usual case), else gathered first. Binary frames are
 * not relayed. */
static int relay_receive(relay_peer *p, struct lws *wsi, const void *in, size_t len)
{
    bool last = lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);
    if (last && !p->rx_len) {
        if (lws_frame_is_binary(wsi)) return 0;
        return relay_forward(p, in, len);
    }
    if (p->rx_len + len > RELAY_MAX_FRAME) return -1;
    if (p->rx_len + len > p->rx_cap) {
        size_t cap = p->rx_cap ? p->rx_cap : 4096;
        while (cap < p->rx_len + len)
            cap *= 2;
        unsigned char *grown = realloc(p->rx, cap);
        if (!grown) return -1;
        p->rx = grown;
        p->rx_cap = cap;
    }
    memcpy(p->rx + p->rx_len, in, len);
    p->rx_len += len;
    if (!last) return 0;
    int rc = lws_frame_is_binary(wsi) ? 0 : relay_forward(p, p->rx, p->rx_len);
    p->rx_len = 0;
    return rc;
}

/* One queued frame to the socket; asks for the next writable if more wait. */
static int relay_write_next(relay_peer *p)
{
    if (p->doomed) return -1;
    if (!p->queued) return 0;
    relay_msg *m = p->queue[p->head];
    p->head = (p->head + 1) % RELAY_QUEUE_SLOTS;
    p->queued--;
    int n = lws_write(p->wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT);
    relay_msg_unref(m);
    if (n < 0) return -1;
    R.frames_out++;
    if (p->queued) lws_callback_on_writable(p->wsi);
    return 0;
}

static void relay_closed(relay_peer *p)
{
    relay_room_leave(p);
    while (p->queued) {
        relay_msg_unref(p->queue[p->head]);
        p->head = (p->head + 1) % RELAY_QUEUE_SLOTS;
        p->queued--;
    }
    free(p->rx);
    p->rx = NULL;
}

static int relay_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                          size_t len)
{
    relay_peer *p = user;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        return relay_established(p, wsi);
    case LWS_CALLBACK_RECEIVE:
        return relay_receive(p, wsi, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return relay_write_next(p);
    case LWS_CALLBACK_CLOSED:
        relay_closed(p);
        return 0;
    case LWS_CALLBACK_HTTP:
        lws_return_http_status(wsi, HTTP_STATUS_BAD_REQUEST, "WebSocket upgrade required");
        return -1;
    default:
        return 0;
    }
}

static const struct lws_protocols relay_protocols[] = {
    /* the same receive buffer as nova-realtime's */
    {"relay", relay_callback, sizeof(relay_peer), 1024, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* --- main ------------------------------------------------------------------ */

static void relay_on_stop(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static int usage(void)
{
    fprintf(stderr, "usage: trivial-relay --listen PATH|PORT [--max-queue N]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *listen_on = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--listen") && i + 1 < argc)
            listen_on = argv[++i];
        else if (!strcmp(argv[i], "--max-queue") && i + 1 < argc)
            R.max_queue = (unsigned)strtoul(argv[++i], NULL, 10);
        else
            return usage();
    }
    if (!listen_on || !*listen_on || R.max_queue < 1 || R.max_queue > RELAY_QUEUE_SLOTS)
        return usage();

    lws_set_log_level(LLL_ERR, NULL);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV);
    if (!loop) {
        fprintf(stderr, "trivial-relay: cannot create the event loop\n");
        return 1;
    }
    void *foreign_loops[1] = {loop};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.protocols = relay_protocols;
    info.timeout_secs = 10;
    info.foreign_loops = foreign_loops;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_LIBEV;
    char *end;
    long port = strtol(listen_on, &end, 10);
    bool unix_sock = *end || port <= 0 || port > 65535;
    if (unix_sock) {
        unlink(listen_on);
        info.options |= LWS_SERVER_OPTION_UNIX_SOCK;
        info.iface = listen_on;
        info.port = 0;
    } else {
        info.iface = "127.0.0.1";
        info.port = (int)port;
    }
    struct lws_context *ctx = lws_create_context(&info);
    if (!ctx) {
        fprintf(stderr, "trivial-relay: cannot listen on %s\n", listen_on);
        ev_loop_destroy(loop);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    ev_signal sigterm, sigint;
    ev_signal_init(&sigterm, relay_on_stop, SIGTERM);
    ev_signal_init(&sigint, relay_on_stop, SIGINT);
    ev_signal_start(loop, &sigterm);
    ev_signal_start(loop, &sigint);

    ev_run(loop, 0);

    ev_signal_stop(loop, &sigterm);
    ev_signal_stop(loop, &sigint);
    lws_context_destroy(ctx);
    ev_loop_destroy(loop);
    if (unix_sock) unlink(listen_on);
    fprintf(stderr,
            "trivial-relay: %llu frames in, %llu out, %llu dropped (no other side), "
            "%llu sockets closed for a full queue\n",
            (unsigned long long)R.frames_in, (unsigned long long)R.frames_out,
            (unsigned long long)R.dropped, (unsigned long long)R.overflows);
    return 0;
}
