/* loadgen.c - nova-loadgen: the WebSocket side of scripts/bench.
 *
 * One libwebsockets client event loop (on libev/epoll) holds every socket
 * (10 000 and more), so the load generator is one process on one core. It reads
 * the users that bench/setup.py made (users.txt: "index user_id name token",
 * pairs.txt: "chat_id index_a index_b") and runs one measurement per
 * invocation, printing its results as "key value" lines on stdout
 * (progress and trouble go to stderr):
 *
 *   send    messages/s that send_message sustains and the delivery latency
 *           from the sender's write to the receipt by the other member of
 *           a private chat, with --sockets sockets open (one per user,
 *           round robin; all but the pairs' are idle). --rate 0: closed
 *           loop, each sender keeps --window messages in flight; --rate R:
 *           R messages/s in all, paced. --count N stops after N messages.
 *   fanout  one message to a group of --sockets members (one socket each,
 *           user 0 sends): time until the last member has it (and the
 *           first, and the sender's own echo), --messages times.
 *   idle    VmRSS and CPU use of --rt-pid with no socket and with --sockets
 *           idle ones; with --rate and --pairs, then a paced send run with
 *           all of them open; with --hold S, then keeps them open for S
 *           seconds more (or until SIGTERM) after printing "idle.holding".
 *   resume  a socket misses --events events, reconnects with
 *           ?last_event_id=N: time until it has all of them again.
 *   replay  one socket of --user connects with ?last_event_id=--after:
 *           time until it has received the event --until (the events
 *           were written by someone else, e.g. bench/curves.py).
 *   wake    latency of a REST-caused event: PATCH /api/user (a second
 *           thread, plain HTTP) until profile_change reaches the socket.
 *
 * --host "+/path" connects to a unix socket instead (nova-realtime's own,
 * to measure without nginx).
 *
 * --relay runs send and fanout against bench/trivial-relay instead (path
 * /relay/ unless --path says otherwise), the same sockets and the same
 * frames: a pair's sockets connect with ?pair=K&side=0 (the sender) and
 * ?pair=K&side=1, a group's with ?group=<chat id>, the others idle. The
 * relay forwards the send_message frame as it is, so a message is
 * delivered when the frame reaches the other side (a group: every socket,
 * the sender's own included), and in the closed loop that delivery, not
 * an echo, lets the sender write its next one.
 *
 * Every message sent by the bench has the content "bench <seq>"; the
 * sequence number finds its send time when it is received. Times are
 * CLOCK_MONOTONIC, all in this one process. */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <libwebsockets.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RX_KEEP 1024 /* bytes of each received message kept for parsing */

typedef struct user {
    int64_t id;
    char name[64];
    char token[128];
} user;

typedef struct pair {
    int64_t chat_id;
    int a, b; /* user indexes: a sends, b receives */
} pair;

enum { S_IDLE, S_CONNECTING, S_OPEN, S_CLOSED, S_FAILED, S_RETRY };

typedef struct sock {
    struct lws *wsi;
    int idx;
    int user;
    int state;
    int retries;
    double retry_at;
    bool closing;     /* we asked for the close */
    char query[48];   /* "?last_event_id=N" or "" */
    int64_t chat_id;  /* where this socket sends */
    int to_send;      /* messages to write when writable */
    int64_t next_rid; /* request_id of the next message */
    int64_t acked;    /* own new_message echoes seen */
    int64_t events;   /* notifications with an event_id */
    int64_t max_event;
    char rx[RX_KEEP];
    size_t rx_len;
} sock;

/* One message of the bench: when it was written, when it arrived. */
typedef struct rec {
    double sent, recv, acked;
    int sender; /* user index */
    int sender_sock;
    int receivers; /* fanout: how many sockets have it */
    double first, last;
} rec;

static struct {
    struct lws_context *ctx;
    struct ev_loop *loop;
    const char *host;
    int port;
    const char *path;
    user *users;
    int n_users;
    pair *pairs;
    int n_pairs;
    sock *socks;
    int n_socks;
    int next_connect, connecting, n_open, n_failed, unexpected_closes, retry_pending;
    int max_inflight;
    rec *recs;
    int64_t n_recs, cap_recs;
    bool sending;       /* sending phase on */
    bool closed_loop;   /* refill a sender after each of its acks */
    int64_t send_limit; /* stop writing after this many messages (0: none) */
    int errors;         /* error packets */
    int64_t profile_changes;
    double *wake_recv; /* wake mode: receipt time of profile_change k */
    int64_t wake_cap;
    _Atomic int64_t wake_seen;
    double fanout_members; /* fanout: receipts expected per message */
    volatile sig_atomic_t interrupted;
    lws_sorted_usec_list_t tick, pace;
    double pace_start, pace_rate;
    int64_t pace_n, pace_limit;
    int n_senders;
    int *senders; /* socket indexes */
    long rt_pid;  /* nova-realtime, for its CPU use (0: not measured) */
    bool relay;   /* the peer is bench/trivial-relay (--relay) */
} G;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "nova-loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

/* --- results ------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v. */
static double pct(const double *v, size_t n, double q)
{
    if (!n) return NAN;
    size_t k = (size_t)ceil(q * (double)n);
    if (k < 1) k = 1;
    if (k > n) k = n;
    return v[k - 1];
}

static void print_latencies(const char *prefix, double *ms, size_t n)
{
    qsort(ms, n, sizeof *ms, cmp_double);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += ms[i];
    printf("%s.samples %zu\n", prefix, n);
    if (!n) return;
    printf("%s.mean_ms %.3f\n", prefix, sum / (double)n);
    printf("%s.p50_ms %.3f\n", prefix, pct(ms, n, 0.50));
    printf("%s.p90_ms %.3f\n", prefix, pct(ms, n, 0.90));
    printf("%s.p99_ms %.3f\n", prefix, pct(ms, n, 0.99));
    printf("%s.max_ms %.3f\n", prefix, ms[n - 1]);
}

static long rss_kib(long pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

/* CPU time (user + system) of a process, in seconds. */
static double cpu_seconds(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p) return -1;
    unsigned long utime = 0, stime = 0;
    /* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime stime */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static rec *new_rec(int sender)
{
    if (G.n_recs == G.cap_recs) {
        int64_t cap = G.cap_recs ? G.cap_recs * 2 : 65536;
        rec *grown = realloc(G.recs, (size_t)cap * sizeof *grown);
        if (!grown) die("out of memory");
        G.recs = grown;
        G.cap_recs = cap;
    }
    rec *r = &G.recs[G.n_recs++];
    memset(r, 0, sizeof *r);
    r->sender = sender;
    return r;
}

/* --- input files ---------------------------------------------------------- */

static void load_users(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) die("cannot read %s", path);
    int cap = 1024, idx;
    G.users = calloc((size_t)cap, sizeof *G.users);
    user u;
    long long id;
    while (fscanf(f, "%d %lld %63s %127s", &idx, &id, u.name, u.token) == 4) {
        if (G.n_users == cap) {
            cap *= 2;
            G.users = realloc(G.users, (size_t)cap * sizeof *G.users);
        }
        if (!G.users) die("out of memory");
        u.id = id;
        G.users[G.n_users++] = u;
    }
    fclose(f);
    if (!G.n_users) die("no users in %s", path);
}

static void load_pairs(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) die("cannot read %s", path);
    long long chat;
    int a, b;
    while (fscanf(f, "%lld %d %d", &chat, &a, &b) == 3) {
        G.pairs = realloc(G.pairs, (size_t)(G.n_pairs + 1) * sizeof *G.pairs);
        if (!G.pairs) die("out of memory");
        if (a >= G.n_users || b >= G.n_users) die("pair %d: unknown user", G.n_pairs);
        G.pairs[G.n_pairs++] = (pair){chat, a, b};
    }
    fclose(f);
}

/* --- sockets -------------------------------------------------------------- */

static void make_socks(int n)
{
    G.socks = calloc((size_t)n, sizeof *G.socks);
    if (!G.socks) die("out of memory");
    G.n_socks = n;
    for (int i = 0; i < n; i++) {
        G.socks[i].idx = i;
        G.socks[i].user = i % G.n_users;
        G.socks[i].next_rid = 1;
    }
}

static void start_connect(sock *s)
{
    char path[128];
    snprintf(path, sizeof path, "%s%s", G.path, s->query);
    struct lws_client_connect_info i;
    memset(&i, 0, sizeof i);
    i.context = G.ctx;
    i.address = G.host;
    i.port = G.port;
    i.path = path;
    /* "+/path" is a unix socket: any Host will do */
    i.host = G.host[0] == '+' ? "localhost" : G.host;
    i.origin = NULL; /* a non-browser client sends no Origin */
    i.protocol = NULL;
    i.ietf_version_or_minus_one = -1;
    i.userdata = s;
    i.pwsi = &s->wsi;
    s->state = S_CONNECTING;
    s->closing = false;
    s->rx_len = 0;
    G.connecting++;
    if (!lws_client_connect_via_info(&i) && s->state == S_CONNECTING) {
        /* failed synchronously without a CONNECTION_ERROR callback */
        G.connecting--;
        s->state = S_FAILED;
        G.n_failed++;
    }
}

/* Start connections while fewer than max_inflight handshakes are open. */
static void pump_connects(void)
{
    while (G.connecting < G.max_inflight && G.next_connect < G.n_socks) {
        sock *s = &G.socks[G.next_connect++];
        if (s->state == S_IDLE) start_connect(s);
    }
}

static void connect_range(int from, int to)
{
    for (int i = from; i < to; i++)
        G.socks[i].state = S_IDLE;
    G.next_connect = from;
    (void)to;
    pump_connects();
}

static void ask_close(sock *s)
{
    if (s->state != S_OPEN || !s->wsi) return;
    s->closing = true;
    lws_callback_on_writable(s->wsi);
}

/* A field after a key in the first RX_KEEP bytes of a packet. */
static bool int_after(const char *text, const char *key, int64_t *out)
{
    const char *p = strstr(text, key);
    if (!p) return false;
    *out = strtoll(p + strlen(key), NULL, 10);
    return true;
}

/* A frame from bench/trivial-relay: one of our own send_message frames,
 * forwarded as it was written. */
static void on_relay_frame(sock *s, const char *text, double t)
{
    int64_t seq;
    if (!int_after(text, "\"content\":\"bench ", &seq) || seq < 0 || seq >= G.n_recs) return;
    rec *r = &G.recs[seq];
    if (G.fanout_members > 0) {
        if (!r->receivers++) r->first = t;
        r->last = t;
    }
    if (s->idx == r->sender_sock || r->recv) return;
    r->recv = r->acked = t;
    sock *from = &G.socks[r->sender_sock];
    from->acked++;
    if (G.sending && G.closed_loop && from->chat_id && from->wsi) {
        from->to_send++;
        lws_callback_on_writable(from->wsi);
    }
}

static void on_packet(sock *s, char *text)
{
    double t = now();
    if (G.relay) {
        on_relay_frame(s, text, t);
        return;
    }
    const char *a = strstr(text, "\"action\":\"");
    if (!a) return;
    a += 10;
    int64_t rid = 0, event_id = 0, seq;
    int_after(text, "\"request_id\":", &rid);
    if (int_after(text, "\"event_id\":", &event_id)) {
        s->events++;
        if (event_id > s->max_event) s->max_event = event_id;
    }
    if (!strncmp(a, "new_message\"", 12)) {
        if (!int_after(text, "\"message\":\"bench ", &seq) || seq < 0 || seq >= G.n_recs) return;
        rec *r = &G.recs[seq];
        if (rid && s->user == r->sender) {
            /* the sender's own echo: the message is stored */
            if (!r->acked) r->acked = t;
            s->acked++;
            if (G.sending && G.closed_loop && s->chat_id) {
                s->to_send++;
                lws_callback_on_writable(s->wsi);
            }
        }
        if (s->user != r->sender && !r->recv) r->recv = t;
        if (G.fanout_members > 0) {
            if (!r->receivers++) r->first = t;
            r->last = t;
        }
    } else if (!strncmp(a, "profile_change\"", 15)) {
        int64_t k = atomic_load(&G.wake_seen);
        if (G.wake_recv && k < G.wake_cap) G.wake_recv[k] = t;
        atomic_store(&G.wake_seen, k + 1);
        G.profile_changes++;
    } else if (!strncmp(a, "error\"", 6)) {
        if (G.errors++ < 5) fprintf(stderr, "nova-loadgen: error packet: %.300s\n", text);
    }
}

static int write_next(sock *s)
{
    if (s->closing) {
        lws_close_reason(s->wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"bye", 3);
        return -1;
    }
    if (s->to_send <= 0 || !s->chat_id) return 0;
    if (G.send_limit && G.n_recs >= G.send_limit) {
        s->to_send = 0;
        return 0;
    }
    unsigned char buf[LWS_PRE + 256];
    rec *r = new_rec(s->user);
    r->sender_sock = s->idx;
    int64_t seq = r - G.recs;
    int n = snprintf((char *)buf + LWS_PRE, 256,
                     "{\"action\":\"send_message\",\"request_id\":%lld,\"data\":{"
                     "\"chat_id\":%lld,"
                     "\"content\":\"bench %lld\"}}",
                     (long long)s->next_rid++, (long long)s->chat_id, (long long)seq);
    s->to_send--;
    r->sent = now();
    if (lws_write(s->wsi, buf + LWS_PRE, (size_t)n, LWS_WRITE_TEXT) < n) return -1;
    if (s->to_send > 0) lws_callback_on_writable(s->wsi);
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user_ptr, void *in,
                    size_t len)
{
    sock *s = user_ptr;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        if (!s) return 0;
        unsigned char **p = in, *end = *p + len;
        char cookie[160];
        int n = snprintf(cookie, sizeof cookie, "sessionid=%s", G.users[s->user].token);
        if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_COOKIE, (unsigned char *)cookie, n, p,
                                         end))
            return -1;
        return 0;
    }
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        s->wsi = wsi;
        s->state = S_OPEN;
        G.connecting--;
        G.n_open++;
        pump_connects();
        if (s->to_send > 0) lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (!s) return 0;
        if (s->state == S_CONNECTING) G.connecting--;
        s->wsi = NULL;
        if (s->retries++ < 10) {
            /* try again a little later (nginx may have marked the
             * upstream down for a moment) */
            s->state = S_RETRY;
            s->retry_at = now() + 0.25 * s->retries;
            G.retry_pending++;
            if (s->retries == 1)
                fprintf(stderr, "nova-loadgen: connect failed (%s), retrying\n",
                        in ? (const char *)in : "?");
        } else {
            s->state = S_FAILED;
            G.n_failed++;
            fprintf(stderr, "nova-loadgen: connect failed: %s\n", in ? (const char *)in : "?");
        }
        pump_connects();
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE: {
        if (lws_is_first_fragment(wsi)) s->rx_len = 0;
        size_t room = sizeof s->rx - 1 - s->rx_len;
        size_t take = len < room ? len : room;
        memcpy(s->rx + s->rx_len, in, take);
        s->rx_len += take;
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            s->rx[s->rx_len] = '\0';
            on_packet(s, s->rx);
            s->rx_len = 0;
        }
        return 0;
    }
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return write_next(s);
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (s && s->state == S_OPEN) {
            G.n_open--;
            if (!s->closing) G.unexpected_closes++;
        }
        if (s) {
            s->state = S_CLOSED;
            s->wsi = NULL;
        }
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {"bench", callback, 0, 4096, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* --- the loop --------------------------------------------------------------
 */

/* Keeps lws_service returning at least every 5 ms so that the loop's
 * conditions and deadlines are checked. */
static void tick(lws_sorted_usec_list_t *sul)
{
    if (G.retry_pending) {
        double t = now();
        for (int i = 0; i < G.n_socks && G.connecting < G.max_inflight; i++) {
            sock *s = &G.socks[i];
            if (s->state != S_RETRY || s->retry_at > t) continue;
            G.retry_pending--;
            start_connect(s);
        }
    }
    lws_sul_schedule(G.ctx, 0, sul, tick, 5 * LWS_US_PER_MS);
}

typedef bool (*cond_fn)(void);

static bool serve_until(cond_fn done, double timeout)
{
    double end = now() + timeout;
    while (!G.interrupted) {
        if (done && done()) return true;
        if (now() >= end) return done ? done() : true;
        ev_run(G.loop, EVRUN_ONCE);
    }
    die("interrupted");
}

static void serve_for(double seconds)
{
    serve_until(NULL, seconds);
}

static bool all_settled(void)
{
    return G.next_connect >= G.n_socks && G.connecting == 0 && G.retry_pending == 0;
}

/* Open sockets [from, to) and wait until every handshake is done. */
static double open_socks(int from, int to, double timeout)
{
    double t0 = now();
    connect_range(from, to);
    int last = -1;
    double report = t0 + 2;
    double end = t0 + timeout;
    while (!all_settled()) {
        if (now() > end)
            die("only %d of %d sockets open after %.0fs", G.n_open, to - from, timeout);
        serve_until(all_settled, 0.5);
        if (now() > report && G.n_open != last) {
            fprintf(stderr, "nova-loadgen: %d sockets open\n", G.n_open);
            last = G.n_open;
            report = now() + 2;
        }
    }
    if (G.n_failed) die("%d sockets failed to connect", G.n_failed);
    return now() - t0;
}

static void close_all(void)
{
    for (int i = 0; i < G.n_socks; i++)
        ask_close(&G.socks[i]);
}

static bool none_open(void)
{
    return G.n_open == 0;
}

static void on_signal(int sig)
{
    (void)sig;
    G.interrupted = 1;
    if (G.ctx) lws_cancel_service(G.ctx);
}

/* --- send ------------------------------------------------------------------
 */

/* Paced sending: the k-th message is due at pace_start + k / rate. */
static void pace(lws_sorted_usec_list_t *sul)
{
    double t = now();
    while (G.sending && G.pace_n < G.pace_limit &&
           G.pace_start + (double)G.pace_n / G.pace_rate <= t) {
        sock *s = &G.socks[G.senders[G.pace_n % G.n_senders]];
        G.pace_n++;
        s->to_send++;
        if (s->wsi) lws_callback_on_writable(s->wsi);
    }
    if (!G.sending || G.pace_n >= G.pace_limit) return;
    double next = G.pace_start + (double)G.pace_n / G.pace_rate - t;
    lws_usec_t us = next > 0 ? (lws_usec_t)(next * 1e6) : 1;
    lws_sul_schedule(G.ctx, 0, sul, pace, us);
}

static int64_t total_acked(void)
{
    int64_t n = 0;
    for (int k = 0; k < G.n_senders; k++)
        n += G.socks[G.senders[k]].acked;
    return n;
}

static int64_t send_count;
static bool count_reached(void)
{
    return total_acked() >= send_count;
}

static bool all_delivered(void)
{
    for (int64_t i = 0; i < G.n_recs; i++)
        if (!G.recs[i].recv || !G.recs[i].acked) return false;
    return true;
}

/* The pairs' senders: socket i belongs to user i (the first n_users
 * sockets), so pair k sends from socket a to socket b. */
static void setup_senders(int n_socks, int n_pairs, int pair0)
{
    if (pair0 + n_pairs > G.n_pairs) die("only %d pairs in the pairs file", G.n_pairs);
    G.senders = calloc((size_t)n_pairs, sizeof *G.senders);
    if (!G.senders) die("out of memory");
    G.n_senders = n_pairs;
    for (int k = 0; k < n_pairs; k++) {
        pair *p = &G.pairs[pair0 + k];
        if (p->a >= n_socks || p->b >= n_socks) die("pair %d outside the sockets", pair0 + k);
        G.senders[k] = p->a;
        G.socks[p->a].chat_id = p->chat_id;
        if (G.relay) {
            snprintf(G.socks[p->a].query, sizeof G.socks[p->a].query, "?pair=%d&side=0", pair0 + k);
            snprintf(G.socks[p->b].query, sizeof G.socks[p->b].query, "?pair=%d&side=1", pair0 + k);
        }
    }
}

/* Send over the open sockets: closed loop (rate 0) or paced; print the
 * throughput and the delivery latencies. */
static void send_phase(double duration, double warmup, double rate, int window, int64_t count,
                       const char *prefix)
{
    int n_pairs = G.n_senders;
    double t0 = now();
    double rt_cpu0 = G.rt_pid ? cpu_seconds(G.rt_pid) : 0, own_cpu0 = cpu_seconds(getpid());
    G.sending = true;
    if (rate > 0) {
        G.pace_start = t0;
        G.pace_rate = rate;
        G.pace_limit = count > 0 ? count : INT64_MAX;
        pace(&G.pace);
    } else {
        G.closed_loop = true;
        for (int k = 0; k < n_pairs; k++) {
            sock *s = &G.socks[G.senders[k]];
            s->to_send = window;
            lws_callback_on_writable(s->wsi);
        }
    }
    double t_end;
    if (count > 0) {
        send_count = count;
        G.send_limit = count;
        if (!serve_until(count_reached, 600))
            die("sending %lld messages took too long", (long long)count);
        t_end = now();
    } else {
        serve_for(duration);
        t_end = now();
    }
    G.sending = false;
    double rt_cpu = G.rt_pid ? (cpu_seconds(G.rt_pid) - rt_cpu0) / (t_end - t0) * 100.0 : 0;
    double own_cpu = (cpu_seconds(getpid()) - own_cpu0) / (t_end - t0) * 100.0;
    lws_sul_cancel(&G.pace);
    serve_until(all_delivered, 5);

    /* measure over [t0 + warmup, t_end) */
    double from = count > 0 ? t0 : t0 + warmup;
    double *lat = malloc((size_t)(G.n_recs + 1) * sizeof *lat);
    size_t n = 0;
    int64_t acked_in = 0, lost = 0;
    for (int64_t i = 0; i < G.n_recs; i++) {
        rec *r = &G.recs[i];
        if (r->sent < from || r->sent >= t_end) continue;
        if (r->acked && r->acked < t_end) acked_in++;
        if (r->recv)
            lat[n++] = (r->recv - r->sent) * 1000.0;
        else
            lost++;
    }
    printf("%s.sockets %d\n", prefix, G.n_open);
    printf("%s.senders %d\n", prefix, n_pairs);
    printf("%s.sent %lld\n", prefix, (long long)G.n_recs);
    printf("%s.msgs_per_s %.1f\n", prefix, (double)acked_in / (t_end - from));
    printf("%s.lost %lld\n", prefix, (long long)lost);
    printf("%s.errors %d\n", prefix, G.errors);
    printf("%s.unexpected_closes %d\n", prefix, G.unexpected_closes);
    if (G.rt_pid) printf("%s.rt_cpu_pct %.1f\n", prefix, rt_cpu);
    printf("%s.loadgen_cpu_pct %.1f\n", prefix, own_cpu);
    print_latencies(prefix, lat, n);
    free(lat);
    fflush(stdout);
}

static void run_send(int n_socks, int n_pairs, int pair0, double duration, double warmup,
                     double rate, int window, int64_t count, const char *prefix)
{
    make_socks(n_socks);
    setup_senders(n_socks, n_pairs, pair0);
    double conn_s = open_socks(0, n_socks, 300);
    fprintf(stderr, "nova-loadgen: %d sockets open in %.1fs\n", G.n_open, conn_s);
    serve_for(0.5);
    send_phase(duration, warmup, rate, window, count, prefix);
}

/* --- fanout ----------------------------------------------------------------
 */

static int64_t fan_seq = -1;
static bool fan_done(void)
{
    return fan_seq >= 0 && fan_seq < G.n_recs && G.recs[fan_seq].receivers >= (int)G.fanout_members;
}

static void run_fanout(int n_socks, int64_t chat_id, int messages, double gap, const char *prefix)
{
    if (n_socks > G.n_users) die("fanout: one socket per user, at most %d", G.n_users);
    make_socks(n_socks);
    G.fanout_members = n_socks;
    sock *sender = &G.socks[0];
    sender->chat_id = chat_id;
    if (G.relay)
        for (int i = 0; i < n_socks; i++)
            snprintf(G.socks[i].query, sizeof G.socks[i].query, "?group=%lld", (long long)chat_id);
    double conn_s = open_socks(0, n_socks, 300);
    fprintf(stderr, "nova-loadgen: %d sockets open in %.1fs\n", G.n_open, conn_s);
    serve_for(1.0);
    double *last = malloc((size_t)messages * sizeof *last);
    double *first = malloc((size_t)messages * sizeof *first);
    double *ack = malloc((size_t)messages * sizeof *ack);
    int done = 0;
    for (int m = 0; m < messages; m++) {
        fan_seq = G.n_recs; /* the next message gets this seq */
        sender->to_send = 1;
        lws_callback_on_writable(sender->wsi);
        if (!serve_until(fan_done, 10)) {
            fprintf(stderr, "nova-loadgen: fanout message %d reached only %d sockets\n", m,
                    fan_seq < G.n_recs ? G.recs[fan_seq].receivers : 0);
            continue;
        }
        rec *r = &G.recs[fan_seq];
        last[done] = (r->last - r->sent) * 1000.0;
        first[done] = (r->first - r->sent) * 1000.0;
        ack[done] = (r->acked - r->sent) * 1000.0; /* the sender's own echo */
        done++;
        serve_for(gap); /* the messages_read that follows reaches everyone too */
    }
    printf("%s.members %d\n", prefix, n_socks);
    printf("%s.messages %d\n", prefix, done);
    printf("%s.errors %d\n", prefix, G.errors);
    printf("%s.unexpected_closes %d\n", prefix, G.unexpected_closes);
    printf("%s.last_ms_all", prefix);
    for (int i = 0; i < done; i++)
        printf(" %.1f", last[i]);
    printf("\n");
    print_latencies(prefix, last, (size_t)done);
    qsort(first, (size_t)done, sizeof *first, cmp_double);
    if (done) printf("%s.first_p50_ms %.3f\n", prefix, pct(first, (size_t)done, 0.5));
    qsort(ack, (size_t)done, sizeof *ack, cmp_double);
    if (done) printf("%s.ack_p50_ms %.3f\n", prefix, pct(ack, (size_t)done, 0.5));
    free(last);
    free(first);
    free(ack);
}

/* --- idle ------------------------------------------------------------------
 */

/* Memory and CPU of the daemon with n_socks idle sockets; then, with
 * rate > 0, a paced send-path run with all of them still open. */
static void run_idle(int n_socks, long pid, double settle, int n_pairs, double duration,
                     double rate, double hold, const char *prefix)
{
    make_socks(n_socks);
    if (rate > 0) setup_senders(n_socks, n_pairs, 0);
    serve_for(settle);
    long before = rss_kib(pid);
    if (before < 0) die("cannot read /proc/%ld/status", pid);
    double conn_s = open_socks(0, n_socks, 600);
    fprintf(stderr, "nova-loadgen: %d sockets open in %.1fs\n", G.n_open, conn_s);
    serve_for(settle);
    long after = rss_kib(pid);
    /* what holding the idle sockets costs the daemon's CPU */
    double c0 = cpu_seconds(pid), w0 = now();
    serve_for(settle);
    double cpu = (cpu_seconds(pid) - c0) / (now() - w0) * 100.0;
    printf("%s.sockets %d\n", prefix, G.n_open);
    printf("%s.connect_s %.2f\n", prefix, conn_s);
    printf("%s.rss0_kib %ld\n", prefix, before);
    printf("%s.rss_kib %ld\n", prefix, after);
    printf("%s.per_socket_bytes %.0f\n", prefix,
           (double)(after - before) * 1024.0 / (double)(n_socks ? n_socks : 1));
    printf("%s.idle_cpu_pct %.1f\n", prefix, cpu);
    printf("%s.unexpected_closes %d\n", prefix, G.unexpected_closes);
    fflush(stdout);
    if (rate > 0) {
        char p2[96];
        snprintf(p2, sizeof p2, "%s_paced", prefix);
        send_phase(duration, 1, rate, 1, 0, p2);
    }
    printf("%s.holding %d\n", prefix, G.n_open);
    fflush(stdout);
    /* Keep the sockets open (for measurements by another process) until
     * the time is up or SIGTERM/SIGINT. */
    double end = now() + hold;
    while (!G.interrupted && now() < end)
        ev_run(G.loop, EVRUN_ONCE);
}

/* --- resume ----------------------------------------------------------------
 */

static sock *res_a, *res_b;
static int64_t res_target;
static bool b_has_event(void)
{
    return res_b->max_event >= res_target;
}
static bool b_closed(void)
{
    return res_b->state == S_CLOSED;
}
static bool b_open(void)
{
    return res_b->state == S_OPEN || res_b->state == S_FAILED;
}
static int64_t res_acks;
static bool a_acked(void)
{
    return res_a->acked >= res_acks && res_a->max_event >= res_target;
}

static void run_resume(int pair_idx, int64_t events, const char *prefix)
{
    if (pair_idx < 0 || pair_idx >= G.n_pairs) die("resume: no pair %d", pair_idx);
    pair *p = &G.pairs[pair_idx];
    /* two sockets: 0 for the sender a, 1 for the resuming b */
    make_socks(2);
    G.socks[0].user = p->a;
    G.socks[0].chat_id = p->chat_id;
    G.socks[1].user = p->b;
    res_a = &G.socks[0];
    res_b = &G.socks[1];
    open_socks(0, 2, 30);

    /* A barrier message: b's position afterwards is N. */
    res_a->to_send = 1;
    lws_callback_on_writable(res_a->wsi);
    res_acks = 1;
    res_target = 0;
    if (!serve_until(a_acked, 10)) die("resume: no echo");
    serve_for(0.3); /* and the messages_read that follows */
    int64_t n = res_b->max_event;
    if (!n) die("resume: the receiver saw no event");
    ask_close(res_b);
    if (!serve_until(b_closed, 10)) die("resume: close failed");

    /* Every message makes two events for b (new_message, messages_read). */
    int64_t msgs = (events + 1) / 2;
    int64_t a_events0 = res_a->events;
    double t_send = now();
    G.sending = true;
    G.closed_loop = true;
    res_a->to_send = 8;
    lws_callback_on_writable(res_a->wsi);
    res_acks = 1 + msgs;
    res_target = 0;
    G.send_limit = 1 + msgs;
    if (!serve_until(a_acked, 600)) die("resume: sending took too long");
    G.sending = false;
    serve_for(0.3);
    int64_t last = res_a->max_event;
    int64_t expected = res_a->events - a_events0;
    fprintf(stderr,
            "nova-loadgen: %lld messages sent in %.1fs; replaying events "
            "%lld..%lld\n",
            (long long)msgs, now() - t_send, (long long)n + 1, (long long)last);

    snprintf(res_b->query, sizeof res_b->query, "?last_event_id=%lld", (long long)n);
    res_b->events = 0;
    res_b->max_event = 0;
    res_target = last;
    double t0 = now();
    connect_range(1, 2);
    if (!serve_until(b_open, 10) || res_b->state != S_OPEN) die("resume: reconnect failed");
    double t_est = now();
    if (!serve_until(b_has_event, 120)) die("resume: replay incomplete");
    double t1 = now();
    printf("%s.events %lld\n", prefix, (long long)res_b->events);
    printf("%s.expected %lld\n", prefix, (long long)expected);
    printf("%s.total_ms %.1f\n", prefix, (t1 - t0) * 1000.0);
    printf("%s.replay_ms %.1f\n", prefix, (t1 - t_est) * 1000.0);
    printf("%s.events_per_s %.0f\n", prefix, (double)res_b->events / (t1 - t0));
    printf("%s.errors %d\n", prefix, G.errors);
}

/* --- replay ----------------------------------------------------------------
 */

static bool replay_open(void)
{
    return res_b->state == S_OPEN || res_b->state == S_FAILED || res_b->state == S_CLOSED;
}

/* Resume one socket from after: the events are already in the outbox. */
static void run_replay(int user_idx, int64_t after, int64_t until, const char *prefix)
{
    if (user_idx < 0 || user_idx >= G.n_users) die("replay: no user %d", user_idx);
    if (until <= after) die("replay: --until must be after --after");
    make_socks(1);
    res_b = &G.socks[0];
    res_b->user = user_idx;
    res_target = until;
    snprintf(res_b->query, sizeof res_b->query, "?last_event_id=%lld", (long long)after);
    double t0 = now();
    connect_range(0, 1);
    if (!serve_until(replay_open, 30) || res_b->state != S_OPEN) die("replay: connect failed");
    double t_est = now();
    if (!serve_until(b_has_event, 600)) die("replay: event %lld never came", (long long)until);
    double t1 = now();
    printf("%s.events %lld\n", prefix, (long long)res_b->events);
    printf("%s.total_ms %.2f\n", prefix, (t1 - t0) * 1000.0);
    printf("%s.replay_ms %.2f\n", prefix, (t1 - t_est) * 1000.0);
    printf("%s.errors %d\n", prefix, G.errors);
}

/* --- wake ------------------------------------------------------------------
 */

typedef struct wake_job {
    int count;
    int port;
    const user *u;
    double *sent, *resp;
    int done;
    int failed;
} wake_job;

/* One PATCH /api/user (a no-op rename to the same name: it still emits
 * profile_change), plain HTTP/1.1 with Connection: close. */
static int http_patch(const wake_job *j, double *t_resp)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)j->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        close(fd);
        return -1;
    }
    char body[128], req[512];
    int bn = snprintf(body, sizeof body, "{\"user_name\":\"%s\"}", j->u->name);
    int n = snprintf(req, sizeof req,
                     "PATCH /api/user HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: sessionid=%s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %d\r\n"
                     "Connection: close\r\n\r\n%s",
                     j->u->token, bn, body);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    char buf[4096];
    size_t got = 0;
    ssize_t r;
    while ((r = read(fd, buf + got, sizeof buf - 1 - got)) > 0) {
        got += (size_t)r;
        if (got == sizeof buf - 1) got = 0; /* only the status line matters */
    }
    *t_resp = now();
    close(fd);
    buf[got] = '\0';
    return 0;
}

static void *wake_thread(void *arg)
{
    wake_job *j = arg;
    unsigned seed = 12345;
    for (int i = 0; i < j->count && !G.interrupted; i++) {
        /* random spacing, so the sends fall anywhere in the poll period */
        usleep(20000 + (unsigned)(rand_r(&seed) % 20000));
        j->sent[i] = now();
        if (http_patch(j, &j->resp[i])) {
            j->failed++;
            break;
        }
        double end = now() + 5;
        while (atomic_load(&G.wake_seen) <= i && now() < end)
            usleep(200);
        if (atomic_load(&G.wake_seen) <= i) {
            j->failed++;
            break;
        }
    }
    j->done = 1;
    lws_cancel_service(G.ctx);
    return NULL;
}

static wake_job *wake_j;
static bool wake_finished(void)
{
    return wake_j->done;
}

static void run_wake(int user_idx, int count, const char *prefix)
{
    if (user_idx < 0 || user_idx >= G.n_users) die("wake: no user %d", user_idx);
    make_socks(1);
    G.socks[0].user = user_idx;
    open_socks(0, 1, 30);
    serve_for(0.3);
    G.wake_cap = count;
    G.wake_recv = calloc((size_t)count, sizeof *G.wake_recv);
    wake_job j = {.count = count, .port = G.port, .u = &G.users[user_idx]};
    j.sent = calloc((size_t)count, sizeof *j.sent);
    j.resp = calloc((size_t)count, sizeof *j.resp);
    wake_j = &j;
    atomic_store(&G.wake_seen, 0);
    pthread_t th;
    if (pthread_create(&th, NULL, wake_thread, &j)) die("pthread_create failed");
    serve_until(wake_finished, 600);
    pthread_join(th, NULL);
    double *lat = calloc((size_t)count, sizeof *lat), *http = calloc((size_t)count, sizeof *http);
    size_t n = 0, h = 0;
    int64_t seen = atomic_load(&G.wake_seen);
    for (int i = 0; i < count && i < seen; i++) {
        if (!j.sent[i] || !G.wake_recv[i]) continue;
        lat[n++] = (G.wake_recv[i] - j.sent[i]) * 1000.0;
        http[h++] = (j.resp[i] - j.sent[i]) * 1000.0;
    }
    printf("%s.failed %d\n", prefix, j.failed);
    print_latencies(prefix, lat, n);
    qsort(http, h, sizeof *http, cmp_double);
    if (h) printf("%s.http_p50_ms %.3f\n", prefix, pct(http, h, 0.5));
    free(lat);
    free(http);
}

/* --- main ------------------------------------------------------------------
 */

static void usage(void)
{
    fprintf(stderr, "usage: nova-loadgen MODE --port P --users FILE [options]\n"
                    "modes: send, fanout, idle, resume, wake (see bench/loadgen.c)\n"
                    "options: --host H (127.0.0.1; \"+/path\" for a unix socket) --path "
                    "/ws/\n"
                    "  --pairs FILE --sockets N\n"
                    "  --pair0 K --npairs K --duration S --warmup S --rate R --window W "
                    "--count N\n"
                    "  --chat ID --messages N --gap S --rt-pid PID --settle S --events N\n"
                    "  --user IDX --prefix NAME --inflight N --hold S --after N --until N\n"
                    "  --relay (send, fanout: against bench/trivial-relay, path /relay/)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2) usage();
    const char *mode = argv[1], *users = NULL, *pairs = NULL, *prefix = NULL;
    int sockets = 1000, npairs = 16, pair0 = 0, window = 1, messages = 10, user_idx = 0;
    double duration = 10, warmup = 1, rate = 0, gap = 0.3, settle = 2, hold = 0;
    long long count = 0, events = 10000, chat = 0, after = 0, until = 0;
    long pid = 0;
    G.host = "127.0.0.1";
    G.path = NULL;
    G.max_inflight = 64;
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(k, "--relay")) { /* the only option without a value */
            G.relay = true;
            continue;
        }
        if (!v) usage();
        i++;
        if (!strcmp(k, "--port"))
            G.port = atoi(v);
        else if (!strcmp(k, "--host"))
            G.host = v;
        else if (!strcmp(k, "--path"))
            G.path = v;
        else if (!strcmp(k, "--users"))
            users = v;
        else if (!strcmp(k, "--pairs"))
            pairs = v;
        else if (!strcmp(k, "--sockets"))
            sockets = atoi(v);
        else if (!strcmp(k, "--npairs"))
            npairs = atoi(v);
        else if (!strcmp(k, "--pair0"))
            pair0 = atoi(v);
        else if (!strcmp(k, "--window"))
            window = atoi(v);
        else if (!strcmp(k, "--messages"))
            messages = atoi(v);
        else if (!strcmp(k, "--user"))
            user_idx = atoi(v);
        else if (!strcmp(k, "--duration"))
            duration = atof(v);
        else if (!strcmp(k, "--warmup"))
            warmup = atof(v);
        else if (!strcmp(k, "--rate"))
            rate = atof(v);
        else if (!strcmp(k, "--gap"))
            gap = atof(v);
        else if (!strcmp(k, "--hold"))
            hold = atof(v);
        else if (!strcmp(k, "--settle"))
            settle = atof(v);
        else if (!strcmp(k, "--count"))
            count = atoll(v);
        else if (!strcmp(k, "--events"))
            events = atoll(v);
        else if (!strcmp(k, "--chat"))
            chat = atoll(v);
        else if (!strcmp(k, "--after"))
            after = atoll(v);
        else if (!strcmp(k, "--until"))
            until = atoll(v);
        else if (!strcmp(k, "--rt-pid"))
            pid = G.rt_pid = atol(v);
        else if (!strcmp(k, "--prefix"))
            prefix = v;
        else if (!strcmp(k, "--inflight"))
            G.max_inflight = atoi(v);
        else
            usage();
    }
    if (!G.port || !users || sockets < 1 || window < 1 || G.max_inflight < 1) usage();
    if (G.relay && strcmp(mode, "send") && strcmp(mode, "fanout"))
        die("--relay is for send and fanout");
    if (!G.path) G.path = G.relay ? "/relay/" : "/ws/";
    load_users(users);
    if (pairs) load_pairs(pairs);
    if (!prefix) prefix = mode;

    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    lws_set_log_level(LLL_ERR, NULL);
    /* lws on libev with epoll: the default poll() loop scans every socket
     * on every wake-up, which with thousands of sockets would make the
     * load generator the bottleneck (and steal the server's CPU). */
    G.loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOSIGMASK);
    if (!G.loop) die("cannot create the libev loop");
    void *foreign[] = {G.loop};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.timeout_secs = 30;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_LIBEV;
    info.foreign_loops = foreign;
    G.ctx = lws_create_context(&info);
    if (!G.ctx) die("cannot create the lws context");
    tick(&G.tick);

    if (!strcmp(mode, "send")) {
        if (!pairs) die("send needs --pairs");
        run_send(sockets, npairs, pair0, duration, warmup, rate, window, count, prefix);
    } else if (!strcmp(mode, "fanout")) {
        if (!chat) die("fanout needs --chat");
        run_fanout(sockets, chat, messages, gap, prefix);
    } else if (!strcmp(mode, "idle")) {
        if (!pid) die("idle needs --rt-pid");
        if (rate > 0 && !pairs) die("idle with --rate needs --pairs");
        run_idle(sockets, pid, settle, npairs, duration, rate, hold, prefix);
    } else if (!strcmp(mode, "resume")) {
        if (!pairs) die("resume needs --pairs");
        run_resume(pair0, events, prefix);
    } else if (!strcmp(mode, "replay")) {
        run_replay(user_idx, after, until, prefix);
    } else if (!strcmp(mode, "wake")) {
        run_wake(user_idx, (int)(count > 0 ? count : 100), prefix);
    } else {
        usage();
    }
    fflush(stdout);
    if (!G.interrupted) { /* a TERM while holding (idle --hold) is the normal end */
        close_all();
        serve_until(none_open, 5);
    }
    lws_context_destroy(G.ctx);
    ev_loop_destroy(G.loop);
    return 0;
}
