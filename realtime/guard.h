/* guard.h - RFC 6455 checks on the raw bytes of each connection (guard.c). */
#ifndef NOVA_GUARD_H
#define NOVA_GUARD_H

#include <stdbool.h>

enum { GUARD_VALUE_MAX = 24 }; /* longest last_event_id value kept */

/* A connection was accepted on fd: follow it from its request line.
 * 0, or -1 when out of memory (then it is not followed). */
int guard_open(int fd);
void guard_close(int fd);
/* Tie fd to its socket, for guard_take_violation. */
void guard_bind(int fd, void *owner);
/* The raw value of the query's first last_event_id argument (NULL when
 * absent); *too_long when it was longer than GUARD_VALUE_MAX. */
const char *guard_last_event_id(int fd, bool *too_long);
/* Hand out one bound connection that broke the protocol since the last
 * call (closed with 1002): its owner and the reason. */
bool guard_take_violation(int *fd, void **owner, const char **why);

#endif
