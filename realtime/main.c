/* main.c - nova-realtime: the libwebsockets server behind nginx at /ws/.
 *
 * Authenticates each socket by its sessionid cookie, refuses cross-site
 * upgrades (Origin), reassembles and bounds client messages, runs the
 * socket actions, and delivers outbox events (tail.c). SIGTERM/SIGINT stop
 * it cleanly. */
#include <ev.h>
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
#include "../common/session.h"
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
    if (config_origin_allowed(r->cfg, origin)) return true;
    if (lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST) <= 0) return false;
    if (lws_hdr_custom_copy(wsi, proto, sizeof proto, "x-forwarded-proto:", 18) <= 0)
        strcpy(proto, "http");
    char self[300];
    snprintf(self, sizeof self, "%s://%s", proto, host);
    return !strcasecmp(origin, self);
}

/* Bind the socket to its session, or answer 403 and close. */
static void authenticate(rt *r, conn *c, struct lws *wsi)
{
    char cookie[4096], token[TOKEN_LEN + 1];
    session s;
    nova_err err;
    int n = lws_hdr_copy(wsi, cookie, sizeof cookie, WSI_TOKEN_HTTP_COOKIE);
    if (n > 0 && !session_token_from_cookie(cookie, token) &&
        !session_lookup(r->db, token, &s, &err)) {
        c->user_id = s.user_id;
        c->session_id = s.id;
        rt_register(r, c);
        log_info("socket %llu open for user %lld", (unsigned long long)c->id,
                 (long long)c->user_id);
    } else {
        conn_send_error(r, c, 0, 403, "Invalid Session");
        conn_close_after_drain(c, 1008, "invalid session");
    }
    sodium_memzero(token, sizeof token);
    sodium_memzero(cookie, sizeof cookie);
}

/* Collect a message's fragments; act on it once complete. */
static int receive(rt *r, conn *c, struct lws *wsi, const void *in, size_t len)
{
    size_t max = (size_t)r->cfg->ws_max_frame;
    if (lws_is_first_fragment(wsi)) c->rx_len = 0;
    size_t remaining = lws_remaining_packet_payload(wsi);
    if (c->rx_len + len + remaining > max) {
        free(c->rx);
        c->rx = NULL;
        c->rx_len = c->rx_cap = 0;
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

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    rt *r = lws_context_user(lws_get_context(wsi));
    conn *c = user;
    switch (reason) {
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
        authenticate(r, c, wsi);
        if (c->registered) {
            char arg[64];
            const char *last = lws_get_urlarg_by_name(wsi, "last_event_id=", arg, sizeof arg);
            resume_start(r, c, last);
        }
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return receive(r, c, wsi, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (conn_write_next(r, c)) return -1;
        if (c->replaying) resume_step(r, c);
        return 0;
    case LWS_CALLBACK_CLOSED:
        rt_unregister(r, c);
        conn_free_queue(c);
        free(c->rx);
        c->rx = NULL;
        log_info("socket %llu closed", (unsigned long long)c->id);
        return 0;
    case LWS_CALLBACK_HTTP:
        /* Plain HTTP to the socket endpoint: not a WebSocket upgrade. */
        lws_return_http_status(wsi, HTTP_STATUS_BAD_REQUEST, "WebSocket upgrade required");
        return -1;
    default:
        return 0;
    }
}

/* The wake socket: writers send a datagram after committing events. */
static int wake_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    (void)user, (void)in, (void)len;
    if (reason != LWS_CALLBACK_RAW_RX_FILE) return 0;
    rt *r = lws_context_user(lws_get_context(wsi));
    char buf[64];
    while (recv(r->wake_fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
    }
    tail_run(r);
    return 0;
}

static const struct lws_protocols protocols[] = {
    /* A small receive buffer keeps idle sockets cheap; larger messages
     * arrive in several callbacks and are reassembled by receive(). */
    {"nova", callback, sizeof(conn), 1024, 0, NULL, 0},
    {"nova-wake", wake_callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

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
                 "recall_message, messages_read) and delivers the outbox's events to the\n"
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
    lws_sock_file_fd_type desc;
    desc.filefd = fd;
    r->wake_fd = fd;
    if (!lws_adopt_descriptor_vhost(r->vhost, LWS_ADOPT_RAW_FILE_DESC, desc, "nova-wake", NULL)) {
        log_error("cannot watch the wake socket");
        close(fd);
        unlink(path);
        r->wake_fd = -1;
    }
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
    r.db->no_wake = true; /* it delivers its own commits itself */
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
    if (cfg->wake_socket[0]) wake_listen(&r);
    log_info("listening on %s as %s", cfg->rt_listen, r.name);

    ev_signal sigterm, sigint;
    ev_signal_init(&sigterm, on_stop, SIGTERM);
    ev_signal_init(&sigint, on_stop, SIGINT);
    ev_signal_start(loop, &sigterm);
    ev_signal_start(loop, &sigint);
    signal(SIGPIPE, SIG_IGN);

    ev_run(loop, 0);
    log_info("stopping with %zu sockets open", r.n_conns);
    ev_signal_stop(loop, &sigterm);
    ev_signal_stop(loop, &sigint);
    lws_context_destroy(r.ctx);
    ev_loop_destroy(loop);
    static const char SQL_STATUS_DELETE[] = "DELETE FROM realtime_daemons WHERE name = ?";
    sqlite3_stmt *st = db_prepare(r.db, SQL_STATUS_DELETE);
    if (st) {
        db_bind_text(st, 1, r.name);
        db_exec_done(r.db, st, &err);
    }
    if (info.options & LWS_SERVER_OPTION_UNIX_SOCK) unlink(cfg->rt_listen);
    if (r.wake_fd >= 0) unlink(cfg->wake_socket);
    rt_registry_free(&r);
    db_close(r.db);
    log_info("stopped");
    return 0;
}

int main(int argc, char **argv)
{
    nova_config cfg;
    if (config_load(&cfg)) return 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            config_free(&cfg);
            return 0;
        }
        int n = config_parse_flag(&cfg, argc, argv, &i);
        if (n == 1) continue;
        if (n == 0) fprintf(stderr, "nova-realtime: unknown argument %s (see --help)\n", argv[i]);
        config_free(&cfg);
        return 2;
    }
    if (config_check(&cfg)) {
        config_free(&cfg);
        return 2;
    }
    log_init("nova-realtime", (int)cfg.log_level);
    if (crypto_init()) return 1;
    json_util_init();
    int rc = run(&cfg);
    config_free(&cfg);
    return rc;
}
