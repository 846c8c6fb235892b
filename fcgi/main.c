/* main.c - nova-api: the FastCGI adapter, worker loop and prefork supervisor.
 *
 * Two ways to run:
 *   nova-api --socket PATH --workers N   listen on a unix socket with N
 *                                        prefork workers, restarted if
 *                                        they die;
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
#include "../common/migrate.h"
#include "api.h"

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

static void serve(nova_db *db, FCGX_Request *r)
{
    double start = nova_now();
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
    char *body = read_body(r, db->cfg->body_limit, &req.body_len, &req.body_too_large);
    req.body = body;

    http_response resp;
    http_response_init(&resp);
    api_handle(db, &req, &resp);

    FCGX_FPrintF(r->out, "Status: %d %s\r\n", resp.status, http_reason(resp.status));
    if (resp.body_len || resp.status != 200 || strcmp(req.method, "OPTIONS"))
        FCGX_PutS("Content-Type: application/json\r\nCache-Control: no-store\r\n", r->out);
    FCGX_PutStr(resp.headers, (int)resp.headers_len, r->out);
    FCGX_PutS("\r\n", r->out);
    if (resp.body_len) FCGX_PutStr(resp.body, (int)resp.body_len, r->out);
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

static pid_t spawn_worker(const nova_config *cfg, int listen_fd)
{
    pid_t pid = fork();
    if (pid == 0) {
        /* Own process group: a terminal's Ctrl-C reaches the supervisor,
         * which stops the workers in order; and die with the supervisor. */
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() == 1) _exit(0);
        log_init("nova-api", (int)cfg->log_level);
        exit(worker(cfg, listen_fd)); /* exit, not _exit: lets LeakSanitizer check workers */
    }
    if (pid < 0) log_error("fork failed: %s", strerror(errno));
    return pid;
}

/* Keep cfg->api_workers workers alive until SIGTERM/SIGINT. */
static int supervise(const nova_config *cfg)
{
    int listen_fd = FCGX_OpenSocket(cfg->api_socket, 256);
    if (listen_fd < 0) {
        log_error("cannot listen on %s", cfg->api_socket);
        return 1;
    }
    chmod(cfg->api_socket, 0660);
    size_t n = (size_t)cfg->api_workers;
    pid_t *pids = calloc(n, sizeof *pids);
    if (!pids) return 1;
    for (size_t i = 0; i < n; i++)
        pids[i] = spawn_worker(cfg, listen_fd);
    log_info("listening on %s with %zu workers", cfg->api_socket, n);

    time_t window = time(NULL);
    int restarts = 0;
    while (!stop_requested) {
        int status;
        pid_t dead = waitpid(-1, &status, 0);
        if (dead < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (size_t i = 0; i < n; i++) {
            if (pids[i] != dead) continue;
            if (WIFSIGNALED(status))
                log_error("worker %d killed by signal %d, restarting", (int)dead, WTERMSIG(status));
            else
                log_error("worker %d exited with %d, restarting", (int)dead, WEXITSTATUS(status));
            /* Back off when workers die in a loop (e.g. bad database). */
            if (time(NULL) != window) {
                window = time(NULL);
                restarts = 0;
            }
            if (++restarts > (int)n) sleep(1);
            if (!stop_requested) pids[i] = spawn_worker(cfg, listen_fd);
        }
    }
    for (size_t i = 0; i < n; i++)
        if (pids[i] > 0) kill(pids[i], SIGTERM);
    /* Give workers a moment to finish their request, then insist. */
    for (int tries = 0; tries < 50; tries++) {
        bool alive = false;
        for (size_t i = 0; i < n; i++) {
            if (pids[i] > 0 && waitpid(pids[i], NULL, WNOHANG) == 0)
                alive = true;
            else
                pids[i] = 0;
        }
        if (!alive) break;
        usleep(100000);
    }
    for (size_t i = 0; i < n; i++)
        if (pids[i] > 0) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], NULL, 0);
        }
    free(pids);
    close(listen_fd);
    unlink(cfg->api_socket);
    log_info("stopped");
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: nova-api [--socket PATH --workers N] [options]\n"
                 "\n"
                 "Nova's REST API as a FastCGI responder, for nginx (location /api/,\n"
                 "SCRIPT_NAME=/api, PATH_INFO=/user/...). With --socket it listens on that\n"
                 "unix socket with N prefork workers and restarts any that die; without,\n"
                 "it serves the FastCGI socket it was given on fd 0 (spawn-fcgi).\n"
                 "The database must be migrated first (nova-admin migrate).\n"
                 "\n"
                 "options (each also read from its environment variable):\n");
    config_print_help(out, CFG_API);
    fprintf(out, "  --help               show this text\n");
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
        int r = config_parse_flag(&cfg, argc, argv, &i);
        if (r == 1) continue;
        if (r == 0) fprintf(stderr, "nova-api: unknown argument %s (see --help)\n", argv[i]);
        config_free(&cfg);
        return 2;
    }
    if (config_check(&cfg)) {
        config_free(&cfg);
        return 2;
    }
    log_init("nova-api", (int)cfg.log_level);
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
    if (cfg.api_socket[0]) {
        rc = supervise(&cfg);
    } else if (FCGX_IsCGI()) {
        fprintf(stderr, "nova-api: not started as FastCGI; use --socket PATH or a FastCGI "
                        "process manager such as spawn-fcgi (see --help)\n");
        rc = 2;
    } else {
        rc = worker(&cfg, 0);
    }
    config_free(&cfg);
    return rc;
}
