/* main.c - nova-realtime: the libwebsockets server behind nginx at /ws/.
 *
 * Authenticates each socket by its sessionid cookie, refuses cross-site
 * upgrades (Origin) and foreign subprotocols, reassembles and bounds client
 * messages, runs the socket actions, and delivers outbox events (tail.c).
 * Our own libev loop also watches the wake socket, closes sockets that
 * broke RFC 6455 (guard.c), and a thread checkpoints the WAL, so that the
 * loop never waits for the database. SIGTERM/SIGINT stop it cleanly. */
#include <ev.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/crypto.h"
#include "../common/json_util.h"
#include "../common/log.h"
#include "../common/migrate.h"
#include "../common/notify.h"
#include "../common/session.h"
#include "guard.h"
#include "rt.h"

/* SIGTERM/SIGINT: leave the event loop; the context is destroyed after. */
static void on_stop(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)revents;
    log_info("signal %d: stopping", w->signum);
    ev_break(loop, EVBREAK_ALL);
}

/* Is the upgrade's Origin acceptable? Absent (non-browser clients), the
 * page's own origin (scheme://Host as nginx forwarded them), or listed. */
static bool origin_allowed(rt *r, struct lws *wsi)
{
    char origin[256], host[256], proto[16] = "http";
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);
    if (n <= 0) return true;
    if (n >= (int)sizeof origin || lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) < 0)
        return false;
    if (lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST) <= 0) host[0] = '\0';
    if (lws_hdr_custom_copy(wsi, proto, sizeof proto, "x-forwarded-proto:", 18) <= 0)
        strcpy(proto, "http");
    /* The same rule as nova-api's for state-changing requests. */
    return origin_trusted(r->cfg, origin, strlen(origin), proto, host);
}

/* A client may name no subprotocol, or a list that includes "nova" (lws
 * then binds it to "nova", the only one there is). Anything else is
 * refused here with 400, before lws would just drop the connection. */
static bool subprotocol_acceptable(struct lws *wsi)
{
    char list[256];
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_PROTOCOL);
    if (n <= 0) return true;
    if (n >= (int)sizeof list || lws_hdr_copy(wsi, list, sizeof list, WSI_TOKEN_PROTOCOL) < 0)
        return false;
    for (char *save, *tok = strtok_r(list, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save))
        if (!strcmp(tok, "nova")) return true;
    return false;
}

static int settle_session(rt *r, void *s, nova_err *err)
{
    return session_settle(r->db, s, err);
}

/* After session_check (rc): end an expired session or refresh a stale
 * one, if the write lock is free right now; otherwise the expiry job ends
 * it soon, and a refresh is best effort. Returns rc. */
static int settle(rt *r, int rc, session *s)
{
    nova_err ignored;
    if (s->expired || s->stale) rt_write(r, NULL, 0, settle_session, s, &ignored);
    return rc;
}

/* Bind the socket to its session, or answer 403 and close. The Cookie
 * header is copied whole, however long (the upgrade's headers are bounded
 * by ws_max_header), so the session cookie is found among any others. */
static void authenticate(rt *r, conn *c, struct lws *wsi)
{
    char token[TOKEN_LEN + 1];
    session s;
    nova_err err;
    int len = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_COOKIE);
    char *cookie = len > 0 ? malloc((size_t)len + 1) : NULL;
    int n = cookie ? lws_hdr_copy(wsi, cookie, len + 1, WSI_TOKEN_HTTP_COOKIE) : -1;
    int rc = n > 0 && !session_token_from_cookie(cookie, token)
                 ? settle(r, session_check(r->db, token, &s, &err), &s)
                 : ERR_FORBIDDEN;
    if (!rc) {
        c->user_id = s.user_id;
        c->session_id = s.id;
        rt_register(r, c);
        log_info("socket %llu open for user %lld", (unsigned long long)c->id,
                 (long long)c->user_id);
    } else if (rc == ERR_FORBIDDEN) {
        conn_send_error(r, c, 0, 403, "Invalid Session");
        conn_close_after_drain(c, CLOSE_INVALID_SESSION, NULL);
    } else { /* the storage could not be asked: come back later */
        conn_send_error(r, c, 0, err_socket_code(rc), err.msg);
        conn_close_after_drain(c, CLOSE_TRY_AGAIN_LATER, NULL);
    }
    sodium_memzero(token, sizeof token);
    if (cookie) {
        sodium_memzero(cookie, (size_t)len + 1);
        free(cookie);
    }
}

/* Collect a message's fragments; act on it once complete. */
static int receive(rt *r, conn *c, struct lws *wsi, const void *in, size_t len)
{
    size_t max = (size_t)r->cfg->ws_max_frame;
    /* lws goes on inflating a compressed frame, and calling us, after we
     * asked to close: refuse the rest too. */
    if (c->rx_refused) return -1;
    if (lws_is_first_fragment(wsi)) c->rx_len = 0;
    size_t remaining = lws_remaining_packet_payload(wsi);
    if (c->rx_len + len + remaining > max) {
        free(c->rx);
        c->rx = NULL;
        c->rx_len = c->rx_cap = 0;
        c->rx_refused = true;
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
                         (unsigned char *)"message too big", 15);
        return -1;
    }
    /* Grow with what has arrived, not with what the frame announces, so a
     * slow sender cannot make us reserve the maximum up front. */
    if (c->rx_len + len > c->rx_cap) {
        size_t cap = c->rx_cap ? c->rx_cap * 2 : 1024;
        while (cap < c->rx_len + len)
            cap *= 2;
        if (cap > max) cap = max;
        char *grown = realloc(c->rx, cap);
        if (!grown) return -1;
        c->rx = grown;
        c->rx_cap = cap;
    }
    if (len) {
        memcpy(c->rx + c->rx_len, in, len);
        c->rx_len += len;
    }
    if (!lws_is_final_fragment(wsi) || remaining) return 0;
    /* Unauthenticated or closing sockets (logged out) run no actions. */
    if (c->registered && !c->close_when_drained)
        actions_handle(r, c, c->rx ? c->rx : "", c->rx_len, lws_frame_is_binary(wsi));
    free(c->rx);
    c->rx = NULL;
    c->rx_len = c->rx_cap = 0;
    return 0;
}

/* GET /metrics: the headers now, the text on HTTP_WRITEABLE, held by the
 * connection's conn (lws's per-session data, zeroed; never a WebSocket's). */
static int metrics_begin(rt *r, conn *c, struct lws *wsi)
{
    size_t len;
    char *text = rt_metrics_render(r, &len);
    if (!text) {
        lws_return_http_status(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "metrics unavailable");
        return -1;
    }
    c->http_body = text;
    c->http_len = len;
    c->http_sent = 0;
    unsigned char head[LWS_PRE + 512], *start = head + LWS_PRE, *p = start,
                                       *end = head + sizeof head - 1;
    if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "text/plain; version=0.0.4; charset=utf-8",
                                    len, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                     (const unsigned char *)"no-store", 8, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    lws_callback_on_writable(wsi);
    return 0;
}

static int metrics_write(conn *c, struct lws *wsi)
{
    if (!c->http_body) return -1;
    unsigned char chunk[LWS_PRE + 16384];
    size_t n = c->http_len - c->http_sent;
    if (n > sizeof chunk - LWS_PRE) n = sizeof chunk - LWS_PRE;
    memcpy(chunk + LWS_PRE, c->http_body + c->http_sent, n);
    c->http_sent += n;
    bool last = c->http_sent == c->http_len;
    if (lws_write(wsi, chunk + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < 0)
        return -1;
    if (!last) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    free(c->http_body);
    c->http_body = NULL;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    rt *r = lws_context_user(lws_get_context(wsi));
    conn *c = user;
    switch (reason) {
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
        /* A new connection (user is lws's, not a conn): follow its bytes. */
        guard_open((int)(intptr_t)in);
        return 0;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        if (!subprotocol_acceptable(wsi)) {
            log_info("refused a WebSocket upgrade asking for another subprotocol");
            lws_return_http_status(wsi, HTTP_STATUS_BAD_REQUEST, "unsupported subprotocol");
            return -1;
        }
        return 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        if (!origin_allowed(r, wsi)) {
            log_info("refused a WebSocket upgrade from a foreign Origin");
            lws_return_http_status(wsi, HTTP_STATUS_FORBIDDEN, "origin not allowed");
            return -1;
        }
        return 0;
    case LWS_CALLBACK_ESTABLISHED:
        memset(c, 0, sizeof *c);
        c->wsi = wsi;
        c->id = ++r->next_conn_id;
        c->fd = lws_get_socket_fd(wsi);
        c->last_progress = rt_now();
        guard_bind(c->fd, c);
        if (r->cfg->ws_deflate) {
            /* lws 4.1 shares its permessage-deflate code between client
             * and server and reads the two takeover flags from the
             * client's side: "client_no_context_takeover" makes it drop
             * its compressor after each message, "server_..." its
             * decompressor. Drop the compressor always (RFC 7692 lets a
             * sender do so; an idle socket then holds no deflate window);
             * never the decompressor, which must follow the client's
             * context (else a client that offered server_no_context_takeover
             * fails at its second compressed message). */
            c->deflate = !lws_set_extension_option(wsi, "permessage-deflate",
                                                   "client_no_context_takeover", "1");
            lws_set_extension_option(wsi, "permessage-deflate", "server_no_context_takeover", "0");
        }
        authenticate(r, c, wsi);
        if (c->registered) {
            /* The raw argument, not lws's URL-decoded one ("%35"). */
            bool too_long;
            const char *last = guard_last_event_id(c->fd, &too_long);
            presence_opened(r, c, wsi);
            resume_start(r, c, last, too_long);
        }
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return receive(r, c, wsi, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (conn_write_next(r, c)) return -1;
        if (c->replaying) resume_step(r, c);
        return 0;
    case LWS_CALLBACK_CLOSED:
        rt_metrics_closed(r, c);
        presence_closed(r, c);
        rt_unregister(r, c);
        rt_forget_held(r, c);
        actions_forget(r, c);
        guard_close(c->fd);
        conn_release(c);
        free(c->rx);
        c->rx = NULL;
        log_info("socket %llu closed", (unsigned long long)c->id);
        return 0;
    case LWS_CALLBACK_HTTP:
        if (c && in && !strcmp(in, "/metrics") && lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0)
            return metrics_begin(r, c, wsi);
        /* Plain HTTP to the socket endpoint: not a WebSocket upgrade. */
        lws_return_http_status(wsi, HTTP_STATUS_BAD_REQUEST, "WebSocket upgrade required");
        return -1;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return c ? metrics_write(c, wsi) : -1;
    case LWS_CALLBACK_CLOSED_HTTP:
        /* Plain HTTP (a scrape, a refused upgrade): forget its bytes'
         * follower too, or another socket that gets its descriptor number
         * (libpq's, after a reconnect) would be read as WebSocket frames. */
        guard_close(lws_get_socket_fd(wsi));
        if (c) {
            free(c->http_body);
            c->http_body = NULL;
        }
        return 0;
    default:
        return 0;
    }
}

/* The wake socket: writers send a datagram after committing events. It
 * is watched by our own event loop, not adopted into lws, so that nothing
 * internal is a protocol a client could ask for at /ws/. */
static void on_wake(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop, (void)revents;
    rt *r = w->data;
    char buf[64];
    while (recvfrom(r->wake_fd, buf, sizeof buf, MSG_DONTWAIT, NULL, NULL) > 0) {
    }
    tail_run(r);
}

/* PostgreSQL's wake-up: a connection that LISTENs for the writers' NOTIFY
 * (from any host), watched by the loop. When it breaks, a timer opens it
 * anew every second; the outbox poll delivers meanwhile. */
typedef struct listener {
    rt *r;
    struct ev_loop *loop;
    nova_db *db;
    ev_io io;
    ev_timer retry;
} listener;

static void listener_open(listener *l);

static void on_notify(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop, (void)revents;
    listener *l = w->data;
    int rc = db_listener_drain(l->db);
    if (rc > 0) tail_run(l->r);
    if (rc < 0) {
        log_error("the LISTEN connection broke: listening again shortly");
        ev_io_stop(l->loop, &l->io);
        db_close(l->db);
        l->db = NULL;
        ev_timer_set(&l->retry, 1.0, 0.);
        ev_timer_start(l->loop, &l->retry);
    }
}

static void on_listener_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop, (void)revents;
    listener_open(w->data);
}

static void listener_open(listener *l)
{
    l->db = db_listener_open(l->r->cfg);
    if (!l->db) {
        ev_timer_set(&l->retry, 1.0, 0.);
        ev_timer_start(l->loop, &l->retry);
        return;
    }
    ev_io_init(&l->io, on_notify, db_listener_fd(l->db), EV_READ);
    l->io.data = l;
    ev_io_start(l->loop, &l->io);
    tail_run(l->r); /* whatever committed while nobody listened */
}

static void listener_start(listener *l, rt *r, struct ev_loop *loop)
{
    *l = (listener){.r = r, .loop = loop};
    ev_timer_init(&l->retry, on_listener_retry, 1.0, 0.);
    l->retry.data = l;
    listener_open(l);
}

static void listener_stop(listener *l)
{
    if (!l->loop) return;
    ev_timer_stop(l->loop, &l->retry);
    if (l->db) {
        ev_io_stop(l->loop, &l->io);
        db_close(l->db);
    }
}

/* The only protocol: an upgrade gets "nova" (with its session and Origin
 * checks) or is refused (subprotocol_acceptable). */
static const struct lws_protocols protocols[] = {
    /* A small receive buffer keeps idle sockets cheap; larger messages
     * arrive in several callbacks and are reassembled by receive(). */
    {"nova", callback, sizeof(conn), 1024, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* permessage-deflate (RFC 7692), when ws_deflate is on. */
static const struct lws_extension extensions[] = {
    {"permessage-deflate", lws_extension_callback_pm_deflate, "permessage-deflate"},
    {NULL, NULL, NULL},
};

/* After each pass of the loop: close the sockets whose client broke RFC
 * 6455 in a way lws lets through (guard.c), with 1002 and a close frame. */
static void on_check(struct ev_loop *loop, ev_check *w, int revents)
{
    (void)loop, (void)w, (void)revents;
    int fd;
    void *owner;
    const char *why;
    while (guard_take_violation(&fd, &owner, &why)) {
        conn *c = owner;
        log_info("socket %llu: protocol error (%s): closing", (unsigned long long)c->id, why);
        conn_free_queue(c);
        conn_close_after_drain(c, CLOSE_PROTOCOL_ERROR, why);
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, 5);
    }
}

static void lws_log_to_ours(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        n--;
    log_msg(level == LLL_ERR ? LOG_ERROR : LOG_INFO, "lws: %.*s", (int)n, line);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: nova-realtime [options]\n"
                 "\n"
                 "Nova's WebSocket daemon, behind nginx at /ws/. Authenticates sockets by\n"
                 "the sessionid cookie, runs the socket actions (ping, send_message,\n"
                 "recall_message, messages_read, typing) and delivers the outbox's events to the\n"
                 "sockets they are addressed to. The database must be migrated first.\n"
                 "\n"
                 "options (each also read from its environment variable):\n");
    config_print_help(out, CFG_REALTIME);
    fprintf(out, "  --help               show this text\n");
}

/* Bind the wake datagram socket and let the event loop watch it. Best
 * effort: without it, the outbox poll still delivers everything. */
static void wake_listen(rt *r)
{
    const char *path = r->cfg->wake_socket;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        log_error("wake socket path too long: %s", path);
        return;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    unlink(path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa)) {
        log_error("cannot bind wake socket %s", path);
        if (fd >= 0) close(fd);
        return;
    }
    r->wake_fd = fd;
}

/* Checkpoints of the WAL, off the event loop: a thread with its own
 * connection runs a PASSIVE checkpoint (it never waits for a lock) every
 * rt_checkpoint_ms, since the loop's connection has them turned off. */
typedef struct checkpointer {
    const nova_config *cfg;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop, running;
} checkpointer;

static void *checkpoint_main(void *arg)
{
    checkpointer *k = arg;
    nova_db *db = db_open_for_checkpoints(k->cfg);
    if (!db) {
        log_error("checkpoints: cannot open the database");
        return NULL;
    }
    pthread_mutex_lock(&k->lock);
    while (!k->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        long ms = k->cfg->rt_checkpoint_ms;
        until.tv_sec += ms / 1000;
        until.tv_nsec += (ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&k->wake, &k->lock, &until);
        if (k->stop) break;
        pthread_mutex_unlock(&k->lock);
        db_checkpoint(db);
        pthread_mutex_lock(&k->lock);
    }
    pthread_mutex_unlock(&k->lock);
    db_close(db);
    return NULL;
}

static void checkpoint_start(checkpointer *k, const nova_config *cfg)
{
    k->cfg = cfg;
    pthread_mutex_init(&k->lock, NULL);
    pthread_cond_init(&k->wake, NULL);
    k->running = !pthread_create(&k->thread, NULL, checkpoint_main, k);
    if (!k->running) log_error("cannot start the checkpoint thread");
}

static void checkpoint_stop(checkpointer *k)
{
    if (!k->cfg) return;
    if (k->running) {
        pthread_mutex_lock(&k->lock);
        k->stop = true;
        pthread_cond_signal(&k->wake);
        pthread_mutex_unlock(&k->lock);
        pthread_join(k->thread, NULL);
    }
    pthread_mutex_destroy(&k->lock);
    pthread_cond_destroy(&k->wake);
}

static int run(nova_config *cfg)
{
    nova_err err;
    rt r = {.cfg = cfg, .started_at = nova_now(), .wake_fd = -1};
    char host[64] = "localhost";
    gethostname(host, sizeof host - 1);
    snprintf(r.name, sizeof r.name, "%s:%d", host, (int)getpid());

    r.db = db_open(cfg, &err);
    if (!r.db) return 1;
    /* The event loop never waits for the write lock: BEGIN IMMEDIATE
     * answers BUSY at once and the action is retried (actions.c). Reads
     * in WAL do not wait. Checkpoints leave the loop too (a thread), unless
     * rt_checkpoint_ms is 0. */
    db_set_busy_timeout(r.db, 0);
    if (migrate_check(r.db, &err)) {
        log_error("%s", err.msg);
        db_close(r.db);
        return 1;
    }
    if (rt_registry_init(&r, 16384)) {
        db_close(r.db);
        return 1;
    }

    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_to_ours);
    static lws_retry_bo_t retry;
    retry.secs_since_valid_ping = (uint16_t)cfg->ws_ping_interval;
    retry.secs_since_valid_hangup = (uint16_t)(cfg->ws_ping_interval * 2 + 2);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.protocols = protocols;
    info.user = &r;
    info.retry_and_idle_policy = &retry;
    info.timeout_secs = 10;
    /* Accept the headers nginx accepts (large_client_header_buffers 4 x
     * 8k), e.g. many analytics cookies; each upgrade holds its own until
     * it is established, ws_header_pool of them at once. */
    info.max_http_header_data2 = (unsigned)cfg->ws_max_header;
    info.max_http_header_pool2 = (unsigned)cfg->ws_header_pool;
    if (cfg->ws_deflate) info.extensions = extensions;
    /* libev (epoll) rather than lws's default poll() loop, whose every pass
     * costs time proportional to the number of open sockets. The loop is
     * ours ("foreign"), so that we own its signal handling. */
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV);
    if (!loop) {
        log_error("cannot create the event loop");
        rt_registry_free(&r);
        db_close(r.db);
        return 1;
    }
    void *foreign_loops[1] = {loop};
    info.foreign_loops = foreign_loops;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_LIBEV;
    char *end;
    long port = strtol(cfg->rt_listen, &end, 10);
    if (*cfg->rt_listen && !*end && port > 0 && port < 65536) {
        info.port = (int)port;
        info.iface = "127.0.0.1";
    } else {
        unlink(cfg->rt_listen);
        info.options |= LWS_SERVER_OPTION_UNIX_SOCK;
        info.iface = cfg->rt_listen;
        info.port = 0; /* with UNIX_SOCK, port 0 selects the path in iface */
    }
    r.ctx = lws_create_context(&info);
    if (r.ctx) r.vhost = lws_get_vhost_by_name(r.ctx, "default");
    if (!r.ctx || !r.vhost) {
        log_error("cannot listen on %s", cfg->rt_listen);
        if (r.ctx) lws_context_destroy(r.ctx);
        ev_loop_destroy(loop);
        rt_registry_free(&r);
        db_close(r.db);
        return 1;
    }
    tail_start(&r);
    jobs_start(&r);
    presence_start(&r);
    if (cfg->wake_socket[0] && r.db->kind == DB_SQLITE) wake_listen(&r);
    log_info("listening on %s as %s", cfg->rt_listen, r.name);
    notify_ready("serving");

    ev_signal sigterm, sigint;
    ev_signal_init(&sigterm, on_stop, SIGTERM);
    ev_signal_init(&sigint, on_stop, SIGINT);
    ev_signal_start(loop, &sigterm);
    ev_signal_start(loop, &sigint);
    signal(SIGPIPE, SIG_IGN);

    ev_io wake_watcher;
    if (r.wake_fd >= 0) {
        ev_io_init(&wake_watcher, on_wake, r.wake_fd, EV_READ);
        wake_watcher.data = &r;
        ev_io_start(loop, &wake_watcher);
    }
    ev_check check_watcher;
    ev_check_init(&check_watcher, on_check);
    ev_check_start(loop, &check_watcher);
    listener pg_listener = {0};
    if (r.db->kind == DB_POSTGRES) listener_start(&pg_listener, &r, loop);
    checkpointer ckpt = {0};
    if (cfg->rt_checkpoint_ms && r.db->kind == DB_SQLITE) {
        db_autocheckpoint(r.db, false);
        checkpoint_start(&ckpt, cfg);
    }

    ev_run(loop, 0);
    checkpoint_stop(&ckpt);
    listener_stop(&pg_listener);
    ev_check_stop(loop, &check_watcher);
    if (r.wake_fd >= 0) ev_io_stop(loop, &wake_watcher);
    log_info("stopping with %zu sockets open", r.n_conns);
    notify_stopping();
    ev_signal_stop(loop, &sigterm);
    ev_signal_stop(loop, &sigint);
    presence_stop(&r);
    lws_context_destroy(r.ctx);
    presence_leave_and_free(&r);
    ev_loop_destroy(loop);
    static const char SQL_STATUS_DELETE[] = "DELETE FROM realtime_daemons WHERE name = ?";
    db_stmt *st = db_prepare(r.db, SQL_STATUS_DELETE);
    if (st) {
        db_bind_text(st, 1, r.name);
        db_exec_done(r.db, st, &err);
    }
    if (info.options & LWS_SERVER_OPTION_UNIX_SOCK) unlink(cfg->rt_listen);
    if (r.wake_fd >= 0) {
        close(r.wake_fd);
        unlink(cfg->wake_socket);
    }
    rt_registry_free(&r);
    free(r.held);
    db_close(r.db);
    log_info("stopped");
    return 0;
}

int main(int argc, char **argv)
{
    nova_config cfg;
    int start = config_init(&cfg, "nova-realtime", argc, argv, usage, NULL);
    if (start) return start == 1 ? 0 : 2;
    log_init("nova-realtime", (int)cfg.log_level);
    log_set_json(!strcmp(cfg.log_format, "json"));
    if (crypto_init()) return 1;
    json_util_init();
    int rc = run(&cfg);
    config_free(&cfg);
    return rc;
}
