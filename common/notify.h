/* notify.h - telling a service manager (systemd) how the daemon is doing,
 * and taking the sockets it opened for us (socket activation).
 *
 * Both follow systemd's documented protocols (sd_notify(3),
 * sd_listen_fds(3)) without linking libsystemd: outside systemd (no
 * NOTIFY_SOCKET, no LISTEN_FDS) they do nothing. */
#ifndef NOVA_NOTIFY_H
#define NOVA_NOTIFY_H

#include <stddef.h>

/* Send "READY=1" with a status line: the daemon serves. */
void notify_ready(const char *status);

/* Send "STOPPING=1": the daemon is shutting down. */
void notify_stopping(void);

/* The listening sockets passed by the service manager, if they are for
 * this process: fds[i] for i < the count returned (at most max), and
 * names[i] their FileDescriptorName (pointers into the environment, or
 * "" when unnamed). The LISTEN_* variables are removed, so that children
 * do not take them for theirs. 0 when none were passed. */
size_t notify_listen_fds(int *fds, const char **names, size_t max);

#endif
