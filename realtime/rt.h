/* rt.h - nova-realtime's state: connections, their queues, the outbox tail.
 *
 * One libwebsockets event loop serves every socket. Each socket is a conn
 * (lws per-session data) tied to one session of one user; the registry
 * finds a user's conns by user id. Events read from the outbox are turned
 * into packets once and shared by every recipient's queue. */
#ifndef NOVA_RT_H
#define NOVA_RT_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stdint.h>

#include "../common/db.h"
#include "../common/metrics.h"

/* A packet, shared by reference between the queues it sits in. The LWS_PRE
 * bytes before the payload are scratch space for lws_write. */
typedef struct packet {
    int refs;
    size_t len;
    unsigned char bytes[]; /* LWS_PRE + len */
} packet;

typedef struct queued {
    struct queued *next;
    packet *pkt;
} queued;

typedef struct conn {
    struct lws *wsi;
    uint64_t id;
    int64_t user_id;
    int64_t session_id;
    bool registered; /* in the user registry */
    /* Resuming (?last_event_id=N): until the replay has caught up with the
     * live position, live events skip this socket and the replay reads
     * them from the outbox instead, so none is lost or doubled. */
    bool replaying;
    int64_t cursor; /* newest event id considered for this socket */
    bool close_when_drained;
    int close_kind; /* enum rt_close_kind: why we close it */
    int close_code;
    char close_reason[96];
    struct conn *next_in_bucket;
    /* send queue */
    queued *head, *tail;
    size_t queued_bytes;
    /* The packet last handed to lws_write on a compressed socket: lws goes
     * on reading it while it drains the compressed fragments, up to the
     * next SERVER_WRITEABLE, so it lives until then (or the close). */
    packet *inflight;
    bool deflate; /* permessage-deflate was negotiated */
    /* Judging a backlog by progress (conn.c): when the socket last took a
     * packet, when its backlog went over ws_max_queue (0: it is not over),
     * and the backlog at that moment. */
    double last_progress;
    double over_since;
    size_t over_bytes;
    bool rx_paused; /* its input is not read (lws rx flow control) */
    /* Echo first (tail.c): this socket's wake-up waits until the origin of
     * the event it was queued waits for has written (wake_held), or this
     * socket is such an origin (releases_held). */
    bool wake_held, releases_held;
    int pending;    /* its actions waiting in the daemon's FIFO (actions.c) */
    uint64_t blocked_walk; /* the FIFO pass that found a write of it waiting */
    int fd;         /* its connection's descriptor (guard.c), or -1 */
    /* message being reassembled from fragments */
    char *rx;
    size_t rx_len, rx_cap;
    bool rx_refused; /* over ws_max_frame: closing with 1009, nothing more is read */
    /* A plain HTTP connection's answer (GET /metrics), and how much of it
     * went out. */
    char *http_body;
    size_t http_len, http_sent;
    /* Opened with ?presence=1 (presence.c): wants presence; and has had its
     * snapshot, so presence events reach it. */
    bool presence_wanted, presence;
} conn;

/* What nova-realtime counts for its metrics (metrics.c). Actions are
 * indexed as actions.c lists them (actions_name), the last slot for
 * messages that name no known action. */
enum { RT_ACTION_SLOTS = 9 };
/* Actions of one socket in the FIFO above which its input is not read. */
enum { RT_PENDING_PER_SOCKET = 64 };
enum rt_close_kind {
    CLOSE_BY_PEER, /* the client or the network: no close of ours */
    CLOSE_LOGGED_OUT,
    CLOSE_INVALID_SESSION,
    CLOSE_SOCKET_CAP,
    CLOSE_TOO_SLOW,
    CLOSE_TOO_BIG,
    CLOSE_PROTOCOL_ERROR,
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_SERVER_ERROR,
    CLOSE_KINDS
};
typedef struct rt_metrics {
    uint64_t sockets_opened;
    uint64_t closes[CLOSE_KINDS];
    uint64_t deliveries; /* events queued to live sockets */
    uint64_t replayed;   /* events queued to resuming sockets */
    uint64_t resumes;    /* sockets that asked for last_event_id */
    uint64_t resyncs;    /* of which told resync_required */
    uint64_t actions_ok[RT_ACTION_SLOTS], actions_failed[RT_ACTION_SLOTS];
    metrics_hist action_time[RT_ACTION_SLOTS];
    metrics_hist delivery_delay; /* from an event's commit to its delivery */
    uint64_t batches;            /* write transactions of socket actions */
    uint64_t batched_writes;     /* write actions they ran */
} rt_metrics;

typedef struct rt {
    const nova_config *cfg;
    nova_db *db;
    struct lws_context *ctx;
    char name[96]; /* this daemon, for origin tags and status rows */
    conn **buckets;
    size_t n_buckets;
    size_t n_conns;
    uint64_t next_conn_id;
    int64_t last_id; /* newest outbox id delivered */
    int64_t data_version;
    double started_at;
    int64_t sample_minute; /* the minute of the last lag sample written (console chart) */
    int64_t sample_lag;    /* and the largest lag written to it */
    lws_sorted_usec_list_t tail_timer;
    lws_sorted_usec_list_t status_timer;
    lws_sorted_usec_list_t prune_timer;
    struct lws_vhost *vhost;
    int wake_fd; /* datagram socket writers poke after commits, or -1 */
    /* Socket actions that found the write lock taken, oldest first: retried
     * every rt_retry_ms, in order (actions.c). */
    struct pending_action *pending_head, *pending_tail;
    size_t n_pending;
    lws_sorted_usec_list_t retry_timer;
    lws_sorted_usec_list_t flush_timer; /* runs the FIFO at the end of a pass */
    bool flush_scheduled;
    bool lock_busy; /* the FIFO waits for the write lock (retry_timer) */
    uint64_t walks; /* run_lockfree's passes over the FIFO (conn.blocked_walk) */
    rt_metrics metrics;
    struct presence_rt *presence; /* presence.c's state, NULL without it */
    /* Echo first (tail.c): the sockets whose wake-up waits for an origin's
     * write, and the timer that wakes them anyway. */
    conn **held;
    size_t n_held, cap_held;
    lws_sorted_usec_list_t held_timer;
} rt;

/* conn.c: registry, queues, packets */
int rt_registry_init(rt *r, size_t buckets);
void rt_registry_free(rt *r);
void rt_register(rt *r, conn *c);
void rt_unregister(rt *r, conn *c);
conn *rt_first_conn_of(rt *r, int64_t user_id);
conn *rt_next_conn_of(conn *c, int64_t user_id);

/* packet.c: every packet a socket gets, and the origin tag */
packet *packet_new(const char *text, size_t len);
void packet_unref(packet *p);

/* What a packet says (API.md §5). code != 0 makes an error packet
 * {"action":"error","request_id","ok":false,"code","error"}; otherwise
 * {"action","request_id","ok":true[,"event_id"],"data"} with data the JSON
 * text (NULL: null) and event_id when it comes from the outbox (0: a
 * direct reply). */
typedef struct packet_fields {
    const char *action;
    int64_t request_id;
    int64_t event_id;
    const char *data;
    int code;
    const char *error;
} packet_fields;

/* A new packet (one reference), NULL when out of memory. */
packet *packet_make(const packet_fields *f);

/* The origin tag of events caused by socket c ("<daemon>#<socket id>"),
 * and, when a tag names a socket of this daemon, that socket's id in *id:
 * the one format and its one reading. */
void rt_origin_format(const rt *r, const conn *c, char *out, size_t size);
bool rt_origin_socket(const rt *r, const char *origin, uint64_t *id);

/* Queue p (takes a reference) and ask for a writable callback. A socket
 * whose queue would exceed the limit is marked to be closed instead. */
void conn_send(rt *r, conn *c, packet *p);
/* The same, but the writable callback waits for rt_release_held (the
 * origin's echo goes out first: tail.c), or queues at once without a wsi. */
void conn_send_held(rt *r, conn *c, packet *p);
/* Wake every held socket; forget a closing one. */
void rt_release_held(rt *r);
void rt_forget_held(rt *r, conn *c);
/* Build a packet (packet_make) and queue it. */
void conn_send_packet(rt *r, conn *c, const packet_fields *f);
/* Send an error packet {"action":"error",...}. */
void conn_send_error(rt *r, conn *c, int64_t request_id, int code, const char *msg);
/* Ask for a writable callback (no-op without a wsi). */
void conn_want_write(conn *c);
/* Close after the queue has been written, with the close code of its
 * kind and its reason (why, or the kind's own). */
void conn_close_after_drain(conn *c, enum rt_close_kind kind, const char *why);
/* Write the next queued packet (SERVER_WRITEABLE); -1 to close. */
int conn_write_next(rt *r, conn *c);
void conn_free_queue(conn *c);
/* Release everything of a closed socket (queue and packet in flight). */
void conn_release(conn *c);
/* Read the socket's input only while its backlog is below ws_rx_pause and
 * none of its actions wait for the write lock. */
void conn_update_rx(rt *r, conn *c);
/* Close the sockets that fell behind (no packet taken for ws_send_stall_ms
 * while over ws_max_queue); called every second. */
void rt_check_stalls(rt *r);
/* Monotonic seconds. */
double rt_now(void);

/* tail.c: reading the outbox */
void tail_start(rt *r);

/* jobs.c: the periodic jobs (position, session expiry, pruning) */
void jobs_start(rt *r);
/* Deliver every committed event not yet delivered: 0, or -1 when reading
 * the outbox failed (what was read is delivered; the rest next time). */
int tail_run(rt *r);
/* The same, up to the event with id upto (inclusive). */
int tail_run_upto(rt *r, int64_t upto);

/* resume.c: replaying missed events to a reconnecting socket */
/* Start from the client's last_event_id argument, raw from the query
 * string (NULL: live only; too_long: present but longer than kept). */
void resume_start(rt *r, conn *c, const char *last_event_id, bool too_long);
/* Queue the next batch of the replay when the socket has room. */
void resume_step(rt *r, conn *c);

/* metrics.c: the scrape at GET /metrics (Prometheus text), and how a
 * close of ours is counted. */
char *rt_metrics_render(rt *r, size_t *len);
void rt_metrics_closed(rt *r, const conn *c);

/* actions.c: a complete client message. It joins the daemon's FIFO; at
 * the end of the loop's pass the FIFO runs in batches (up to rt_batch_max
 * actions, rt_batch_ms long), each batch's writes in one transaction with
 * a savepoint each, and replies in order. A batch that finds the write
 * lock taken waits and is retried shortly, so the event loop never waits
 * for the lock. */
void actions_handle(rt *r, conn *c, const char *text, size_t len, bool binary);
/* Forget a closing socket's waiting actions. */
void actions_forget(rt *r, conn *c);
/* The name of the i-th socket action (metrics), NULL past the last. */
const char *actions_name(size_t i);
/* The one write bracket of nova-realtime (socket actions, session expiry
 * and settling): take the write lock only if it is free (ACTION_BUSY
 * otherwise: nothing happened, try again later), run fn inside it with
 * origin/request_id as the cause of its events (origin NULL: none),
 * commit or roll back, and deliver what it wrote at once (this daemon's
 * own commits do not move data_version). 0 or a failure kind. */
enum { ACTION_BUSY = -2 };
typedef int (*rt_write_fn)(rt *r, void *ctx, nova_err *err);
int rt_write(rt *r, const char *origin, int64_t request_id, rt_write_fn fn, void *ctx,
             nova_err *err);

/* presence.c: presence and typing (docs/API.md "[ext] Presence and typing") */
/* Start the heartbeat (after jobs_start); presence_stop before the lws
 * context is destroyed, presence_leave after (the instance's rows start
 * their grace, and the state is freed). */
void presence_start(rt *r);
void presence_stop(rt *r);
void presence_leave_and_free(rt *r);
/* A socket was registered (authenticated): reads ?presence=1, sends the
 * snapshot, counts the socket. And one is about to be unregistered. */
void presence_opened(rt *r, conn *c, struct lws *wsi);
void presence_closed(rt *r, conn *c);
/* The typing action inside its write transaction: *sent false when rate
 * limited (nothing emitted). */
int presence_typing_action(rt *r, conn *c, int64_t chat_id, bool *sent, nova_err *err);

#endif
