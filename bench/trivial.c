/* trivial.c - the baseline for the REST benchmark: a FastCGI responder
 * that answers every request with the constant {"ok":true,"data":null}.
 *
 * It runs like nova-api does (libfcgi, a unix socket, N prefork workers
 * sharing it, each blocking in FCGX_Accept_r), so that scripts/bench can
 * put it behind the same nginx and compare: whatever nova-api costs above
 * this responder is Nova's own work (session lookup, SQLite, JSON).
 *
 *   trivial-fcgi --socket PATH [--workers N]
 *
 * SIGTERM or SIGINT stops the workers and removes the socket. */
#include <errno.h>
#include <fcgiapp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static const char RESPONSE[] = "Status: 200 OK\r\n"
                               "Content-Type: application/json\r\n"
                               "Cache-Control: no-store\r\n"
                               "\r\n"
                               "{\"ok\":true,\"data\":null}";

static int worker(int listen_fd)
{
    FCGX_Request r;
    if (FCGX_InitRequest(&r, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR)) return 1;
    while (!stop_requested && FCGX_Accept_r(&r) >= 0) {
        /* Drain a body, as a real responder must. */
        char sink[4096];
        while (FCGX_GetStr(sink, sizeof sink, r.in) > 0) {
        }
        FCGX_PutStr(RESPONSE, (int)sizeof RESPONSE - 1, r.out);
        FCGX_Finish_r(&r);
    }
    FCGX_Free(&r, 1);
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    long workers = 4;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--socket") && i + 1 < argc)
            path = argv[++i];
        else if (!strcmp(argv[i], "--workers") && i + 1 < argc)
            workers = strtol(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: trivial-fcgi --socket PATH [--workers N]\n");
            return 2;
        }
    }
    if (!path || workers < 1 || workers > 1024) {
        fprintf(stderr, "usage: trivial-fcgi --socket PATH [--workers N]\n");
        return 2;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_stop; /* no SA_RESTART: accept() returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (FCGX_Init()) return 1;
    unlink(path);
    int fd = FCGX_OpenSocket(path, 256);
    if (fd < 0) {
        fprintf(stderr, "trivial-fcgi: cannot listen on %s\n", path);
        return 1;
    }
    chmod(path, 0660);
    pid_t *pids = calloc((size_t)workers, sizeof *pids);
    if (!pids) return 1;
    for (long i = 0; i < workers; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() == 1) _exit(0);
            _exit(worker(fd));
        }
        if (pids[i] < 0) fprintf(stderr, "trivial-fcgi: fork: %s\n", strerror(errno));
    }
    while (!stop_requested) {
        pid_t dead = waitpid(-1, NULL, 0);
        if (dead < 0 && errno != EINTR) break;
    }
    for (long i = 0; i < workers; i++)
        if (pids[i] > 0) kill(pids[i], SIGTERM);
    for (long i = 0; i < workers; i++)
        if (pids[i] > 0) waitpid(pids[i], NULL, 0);
    free(pids);
    close(fd);
    unlink(path);
    return 0;
}
