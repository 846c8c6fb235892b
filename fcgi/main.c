/* main.c - nova-api: the FastCGI adapter, worker loop and prefork supervisor.
 *
 * Two ways to run:
 *   nova-api --socket PATH --workers N   listen on a unix socket with N
 *                                        prefork workers, restarted if
 *                                        they die; with --hash-socket P2
 *                                        --hash-workers M, a second pool
 *                                        of M on P2 for the routes that
 *                                        hash passwords;
 *   spawn-fcgi -- nova-api               serve the FastCGI socket on fd 0
 *                                        (any FastCGI process manager).
 * Every worker opens its own database connection after the fork. */
#include <errno.h>
#include <fcgiapp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/crypto.h"
#include "../common/json_util.h"
#include "../common/log.h"
#include "../common/notify.h"
#include "../common/migrate.h"
#include "api.h"
#include "console.h"
#include "stats.h"

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void install_signals(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_stop; /* no SA_RESTART: accept() returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static const char *param(FCGX_Request *r, const char *name)
{
    return FCGX_GetParam(name, r->envp);
}

/* Read the body: exactly CONTENT_LENGTH bytes, or to the end of the
 * stream when it is absent, keeping at most limit bytes. A longer body is
 * drained (so the web server sees a clean exchange) and flagged. */
static char *read_body(FCGX_Request *r, long limit, size_t *len, bool *too_large)
{
    const char *cl = param(r, "CONTENT_LENGTH");
    const char *method = param(r, "REQUEST_METHOD");
    /* A GET's body is ignored: unless one is announced, do not look. */
    if ((!cl || !*cl) && method && !strcmp(method, "GET")) cl = "0";
    long long declared = cl && *cl ? strtoll(cl, NULL, 10) : -1;
    *len = 0;
    *too_large = declared > limit;
    if (declared == 0) return NULL;
    size_t cap = declared > 0 && !*too_large ? (size_t)declared : 4096;
    char *buf = *too_large ? NULL : malloc(cap);
    char sink[8192];
    for (;;) {
        if (buf && *len == cap && !*too_large) {
            size_t grown = cap * 2 > (size_t)limit + 1 ? (size_t)limit + 1 : cap * 2;
            char *bigger = grown > cap ? realloc(buf, grown) : NULL;
            if (!bigger) {
                *too_large = true; /* reached limit + 1 bytes: over the limit */
            } else {
                buf = bigger;
                cap = grown;
            }
        }
        bool keep = buf && !*too_large && *len < cap;
        char *dst = keep ? buf + *len : sink;
        size_t room = keep ? cap - *len : sizeof sink;
        int n = FCGX_GetStr(dst, (int)(room > 65536 ? 65536 : room), r->in);
        if (n <= 0) break;
        if (keep) *len += (size_t)n;
    }
    if (*len > (size_t)limit) *too_large = true;
    if (*too_large) {
        free(buf);
        *len = 0;
        return NULL;
    }
    return buf;
}

/* A scrape, from the location of nginx's operator listener that sets the
 * FastCGI parameter NOVA_METRICS (a client's headers only ever become
 * HTTP_* parameters, so no request from outside can carry it). */
static bool is_scrape(FCGX_Request *r)
{
    const char *m = param(r, "NOVA_METRICS");
    return m && !strcmp(m, "1");
}

static void serve_scrape(FCGX_Request *r)
{
    size_t len;
    char *text = api_stats_render(&len);
    if (!text) {
        FCGX_PutS("Status: 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\n"
                  "metrics unavailable\n",
                  r->out);
        return;
    }
    FCGX_PutS("Status: 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
              "Cache-Control: no-store\r\n\r\n",
              r->out);
    FCGX_PutStr(text, (int)len, r->out);
    free(text);
}

static void serve(nova_db *db, FCGX_Request *r)
{
    double start = nova_now();
    if (is_scrape(r)) {
        serve_scrape(r);
        return;
    }
    const char *path = param(r, "PATH_INFO");
    http_request req = {
        .method = param(r, "REQUEST_METHOD"),
        .path = path ? path : "",
        .query = param(r, "QUERY_STRING"),
        .content_type = param(r, "CONTENT_TYPE"),
        .cookie = param(r, "HTTP_COOKIE"),
        .origin = param(r, "HTTP_ORIGIN"),
        .referer = param(r, "HTTP_REFERER"),
        .host = param(r, "HTTP_HOST"),
        .scheme = param(r, "REQUEST_SCHEME"),
    };
    if (!req.query) req.query = "";
    if (!req.method) req.method = "";
    char *body = read_body(r, api_body_limit(db->cfg, req.method, req.path), &req.body_len,
                           &req.body_too_large);
    req.body = body;

    http_response resp;
    http_response_init(&resp);
    const char *marked = param(r, "NOVA_CONSOLE");
    if (console_wants(db->cfg, marked && !strcmp(marked, "1"), req.path))
        console_handle(db, &req, &resp);
    else
        api_handle(db, &req, &resp);

    FCGX_FPrintF(r->out, "Status: %d %s\r\n", resp.status, http_reason(resp.status));
    if (!resp.raw && (resp.body_len || resp.status != 200 || strcmp(req.method, "OPTIONS")))
        FCGX_PutS("Content-Type: application/json\r\nCache-Control: no-store\r\n", r->out);
    FCGX_PutStr(resp.headers, (int)resp.headers_len, r->out);
    FCGX_PutS("\r\n", r->out);
    if (resp.body_len) FCGX_PutStr(resp.body, (int)resp.body_len, r->out);
    api_stats_request_end(resp.route, resp.status, nova_now() - start);
    log_info("%s %s %d %zuB %.2fms", req.method, req.path, resp.status, resp.body_len,
             (nova_now() - start) * 1000.0);
    http_response_free(&resp);
    free(body);
}

/* One worker: own database connection, accept until told to stop. */
static int worker(const nova_config *cfg, int listen_fd)
{
    nova_err err;
    nova_db *db = db_open(cfg, &err);
    if (!db) return 1;
    if (migrate_check(db, &err)) {
        log_error("%s", err.msg);
        db_close(db);
        return 1;
    }
    FCGX_Request r;
    if (FCGX_InitRequest(&r, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR)) {
        db_close(db);
        return 1;
    }
    while (!stop_requested && FCGX_Accept_r(&r) >= 0) {
        serve(db, &r);
        FCGX_Finish_r(&r);
    }
    FCGX_Free(&r, 1);
    db_close(db);
    return 0;
}

/* Fork a worker accepting on listen_fd; other_fd (the other pool's
 * socket, or -1) is closed in it. */
static pid_t spawn_worker(const nova_config *cfg, int listen_fd, int other_fd)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (other_fd >= 0) close(other_fd);
        /* Own process group: a terminal's Ctrl-C reaches the supervisor,
         * which stops the workers in order; and die with the supervisor. */
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() == 1) _exit(0);
        log_init("nova-api", (int)cfg->log_level);
        api_stats_worker_start();
        exit(worker(cfg, listen_fd)); /* exit, not _exit: lets LeakSanitizer check workers */
    }
    if (pid < 0) log_error("fork failed: %s", strerror(errno));
    return pid;
}

/* A pool of prefork workers accepting on one listening socket. */
typedef struct worker_pool {
    const char *what; /* for the log: "" or "password-hashing " */
    const char *path;
    int fd;
    int other_fd; /* the other pool's socket (closed in this pool's workers), or -1 */
    size_t n;
    pid_t *pids;
    time_t window; /* restarts in the current second, for the backoff */
    int restarts;
    bool given; /* the socket came from the service manager */
} worker_pool;

/* A pool on the socket at path, or on the listening socket given (fd >= 0:
 * passed by the service manager, socket activation). */
static int pool_open(worker_pool *p, const char *what, const char *path, int given, size_t n)
{
    *p = (worker_pool){
        .what = what, .path = path, .fd = -1, .other_fd = -1, .n = n, .window = time(NULL)};
    if (given >= 0) {
        p->fd = given;
        p->given = true;
    } else {
        p->fd = FCGX_OpenSocket(path, 256);
        if (p->fd < 0) {
            log_error("cannot listen on %s", path);
            return -1;
        }
        chmod(path, 0660);
    }
    p->pids = calloc(n, sizeof *p->pids);
    return p->pids ? 0 : -1;
}

/* Replace the worker dead (if it is one of this pool's): true if it was. */
static bool pool_restart(const nova_config *cfg, worker_pool *p, pid_t dead, int status)
{
    for (size_t i = 0; i < p->n; i++) {
        if (p->pids[i] != dead) continue;
        if (WIFSIGNALED(status))
            log_error("%sworker %d killed by signal %d, restarting", p->what, (int)dead,
                      WTERMSIG(status));
        else
            log_error("%sworker %d exited with %d, restarting", p->what, (int)dead,
                      WEXITSTATUS(status));
        /* Back off when workers die in a loop (e.g. bad database). */
        if (time(NULL) != p->window) {
            p->window = time(NULL);
            p->restarts = 0;
        }
        if (++p->restarts > (int)p->n) sleep(1);
        api_stats_worker_restarted();
        p->pids[i] = stop_requested ? 0 : spawn_worker(cfg, p->fd, p->other_fd);
        return true;
    }
    return false;
}

/* Stop every worker of the pools: SIGTERM, a moment to finish the
 * request in hand, then SIGKILL. */
static void pools_stop(worker_pool *pools, size_t n_pools)
{
    for (size_t k = 0; k < n_pools; k++)
        for (size_t i = 0; i < pools[k].n; i++)
            if (pools[k].pids[i] > 0) kill(pools[k].pids[i], SIGTERM);
    for (int tries = 0; tries < 50; tries++) {
        bool alive = false;
        for (size_t k = 0; k < n_pools; k++)
            for (size_t i = 0; i < pools[k].n; i++) {
                if (pools[k].pids[i] > 0 && waitpid(pools[k].pids[i], NULL, WNOHANG) == 0)
                    alive = true;
                else
                    pools[k].pids[i] = 0;
            }
        if (!alive) break;
        usleep(100000);
    }
    for (size_t k = 0; k < n_pools; k++)
        for (size_t i = 0; i < pools[k].n; i++)
            if (pools[k].pids[i] > 0) {
                kill(pools[k].pids[i], SIGKILL);
                waitpid(pools[k].pids[i], NULL, 0);
            }
}

static void pool_close(worker_pool *p)
{
    free(p->pids);
    if (p->fd >= 0) {
        close(p->fd);
        if (!p->given) unlink(p->path); /* the service manager's socket is its own */
    }
}

/* Workers of the hashing pool: as configured, or half the cores (at
 * least one), since each argon2id hash keeps one core busy. */
static size_t hash_pool_size(const nova_config *cfg)
{
    if (cfg->hash_workers > 0) return (size_t)cfg->hash_workers;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores / 2 > 1 ? (size_t)(cores / 2) : 1;
}

/* Keep cfg->api_workers workers on cfg->api_socket, and with
 * cfg->hash_socket a second pool on it, alive until SIGTERM/SIGINT. The
 * second pool runs the same code (any route works there); nginx sends it
 * the routes that hash a password, so that a burst of them queues on its
 * own socket while every other request still finds a free worker. */
static int supervise(const nova_config *cfg, int api_fd, int hash_fd)
{
    worker_pool pools[2];
    size_t n_pools = 0;
    int rc = 1;
    const char *api_path = api_fd >= 0 ? "the socket of the service manager" : cfg->api_socket;
    if (pool_open(&pools[n_pools++], "", api_path, api_fd, (size_t)cfg->api_workers)) goto out;
    if ((hash_fd >= 0 || (api_fd < 0 && cfg->hash_socket[0])) &&
        pool_open(&pools[n_pools++], "password-hashing ",
                  hash_fd >= 0 ? "the hashing socket of the service manager" : cfg->hash_socket,
                  hash_fd, hash_pool_size(cfg)))
        goto out;
    if (n_pools == 2) {
        pools[0].other_fd = pools[1].fd;
        pools[1].other_fd = pools[0].fd;
    }
    api_stats_init(pools[0].n, n_pools == 2 ? pools[1].n : 0);
    for (size_t k = 0; k < n_pools; k++)
        for (size_t i = 0; i < pools[k].n; i++)
            pools[k].pids[i] = spawn_worker(cfg, pools[k].fd, pools[k].other_fd);
    if (n_pools == 2)
        log_info("listening on %s with %zu workers, and on %s with %zu password-hashing workers",
                 pools[0].path, pools[0].n, pools[1].path, pools[1].n);
    else
        log_info("listening on %s with %zu workers", pools[0].path, pools[0].n);
    notify_ready("serving");

    while (!stop_requested) {
        int status;
        pid_t dead = waitpid(-1, &status, 0);
        if (dead < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (size_t k = 0; k < n_pools && !pool_restart(cfg, &pools[k], dead, status); k++)
            ;
    }
    notify_stopping();
    pools_stop(pools, n_pools);
    log_info("stopped");
    rc = 0;
out:
    for (size_t k = 0; k < n_pools; k++)
        pool_close(&pools[k]);
    return rc;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: nova-api [--socket PATH --workers N [--hash-socket PATH2\n"
                 "                [--hash-workers M]]] [options]\n"
                 "\n"
                 "Nova's REST API as a FastCGI responder, for nginx (location /api/,\n"
                 "SCRIPT_NAME=/api, PATH_INFO=/user/...). With --socket it listens on that\n"
                 "unix socket with N prefork workers and restarts any that die; with\n"
                 "--hash-socket too, a second pool of M workers listens on PATH2, where\n"
                 "nginx sends login and register (argon2id hashes), so that a burst of\n"
                 "them cannot stall the other requests. Without --socket, it serves the\n"
                 "FastCGI socket it was given on fd 0 (spawn-fcgi), one pool for all.\n"
                 "The database must be migrated first (nova-admin migrate).\n"
                 "\n"
                 "options (each also read from its environment variable):\n");
    config_print_help(out, CFG_API);
    fprintf(out, "  --help               show this text\n");
}

int main(int argc, char **argv)
{
    nova_config cfg;
    int start = config_init(&cfg, "nova-api", argc, argv, usage, NULL);
    if (start) return start == 1 ? 0 : 2;
    log_init("nova-api", (int)cfg.log_level);
    log_set_json(!strcmp(cfg.log_format, "json"));
    if (crypto_init()) {
        log_error("libsodium cannot be initialised");
        return 1;
    }
    json_util_init();
    install_signals();
    if (FCGX_Init()) {
        log_error("libfcgi cannot be initialised");
        return 1;
    }

    /* Refuse to start on an out-of-date schema, with a clear message. */
    nova_err err;
    nova_db *db = db_open(&cfg, &err);
    if (!db) {
        log_error("cannot open database %s", cfg.db_path);
        config_free(&cfg);
        return 1;
    }
    int schema = migrate_check(db, &err);
    db_close(db);
    if (schema) {
        log_error("%s", err.msg);
        config_free(&cfg);
        return 1;
    }

    int rc;
    /* Socket activation: the service manager's sockets, "api" (or the
     * first) and "hash" (or the second). */
    int fds[2], api_fd = -1, hash_fd = -1;
    const char *names[2];
    size_t n = notify_listen_fds(fds, names, 2);
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(names[i], "hash") || (i == 1 && hash_fd < 0 && strcmp(names[i], "api")))
            hash_fd = fds[i];
        else if (api_fd < 0)
            api_fd = fds[i];
    }
    if (cfg.hash_socket[0] && !cfg.api_socket[0] && api_fd < 0)
        log_error("hash-socket is ignored without --socket (one FastCGI socket on fd 0)");
    if (api_fd >= 0) {
        rc = supervise(&cfg, api_fd, hash_fd);
    } else if (cfg.api_socket[0]) {
        rc = supervise(&cfg, -1, -1);
    } else if (FCGX_IsCGI()) {
        fprintf(stderr, "nova-api: not started as FastCGI; use --socket PATH or a FastCGI "
                        "process manager such as spawn-fcgi (see --help)\n");
        rc = 2;
    } else {
        api_stats_init(1, 0);
        rc = worker(&cfg, 0);
    }
    config_free(&cfg);
    return rc;
}
