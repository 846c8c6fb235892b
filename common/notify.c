/* notify.c - sd_notify and sd_listen_fds, by their documented protocols. */
#include "notify.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

/* The first descriptor systemd passes (SD_LISTEN_FDS_START). */
enum { LISTEN_FDS_START = 3 };

static void notify(const char *text)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path) return;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof sa.sun_path) return;
    memcpy(sa.sun_path, path, len);
    if (path[0] == '@') sa.sun_path[0] = '\0'; /* an abstract socket */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    if (sendto(fd, text, strlen(text), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) < 0)
        log_error("cannot notify the service manager");
    close(fd);
}

void notify_ready(const char *status)
{
    char text[300];
    snprintf(text, sizeof text, "READY=1\nSTATUS=%s\nMAINPID=%d", status, (int)getpid());
    notify(text);
}

void notify_stopping(void)
{
    notify("STOPPING=1");
}

size_t notify_listen_fds(int *fds, const char **names, size_t max)
{
    const char *pid = getenv("LISTEN_PID"), *count = getenv("LISTEN_FDS");
    const char *fdnames = getenv("LISTEN_FDNAMES");
    size_t n = 0;
    if (pid && count && strtol(pid, NULL, 10) == (long)getpid()) {
        long c = strtol(count, NULL, 10);
        static char names_copy[512];
        snprintf(names_copy, sizeof names_copy, "%s", fdnames ? fdnames : "");
        char *save = NULL, *name = strtok_r(names_copy, ":", &save);
        for (long i = 0; i < c && n < max; i++) {
            int fd = LISTEN_FDS_START + (int)i;
            fcntl(fd, F_SETFD, FD_CLOEXEC);
            fds[n] = fd;
            names[n] = name ? name : "";
            n++;
            if (name) name = strtok_r(NULL, ":", &save);
        }
    }
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return n;
}
