/* guard.c - what lws 4.1 does not check, seen on the bytes as they arrive.
 *
 * libwebsockets 4.1 parses frames without exposing the header bits: it
 * accepts unmasked client frames (RFC 6455 §5.1: the server MUST close),
 * drops a control frame longer than 125 bytes (§5.5) without a close
 * frame, and hands out query arguments only URL-decoded (so "%35" would
 * pass for "5"). Every byte lws reads from a connection comes through
 * recv(), which this file provides in place of libc's (the executable's
 * definition wins over libc's for the libraries it loads too); it passes
 * the call on to recvfrom() and follows each connection's stream:
 *
 *   - the request line: the raw value of the first last_event_id
 *     argument of the query (bounded: longer values are only flagged);
 *   - after the blank line that ends the request headers, the frames:
 *     an unmasked frame or a control frame announcing more than 125 bytes
 *     is a violation. The bytes before that frame reach lws; nothing after
 *     it does, and main.c closes the socket with 1002 and a close frame.
 *
 * State is per file descriptor, reset when lws accepts a connection on it
 * (guard_open) and dropped when it closes (guard_close). Descriptors
 * never opened here (the wake socket) pass through untouched. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "guard.h"

enum phase { P_OFF, P_METHOD, P_TARGET, P_QUERY, P_HEADERS, P_FRAMES, P_VIOLATED };
enum frame_state { F_HDR0, F_HDR1, F_EXTLEN, F_MASK, F_PAYLOAD };

typedef struct guard {
    unsigned char phase, frame, opcode, need;
    unsigned char eoh; /* how much of "\r\n\r\n" has been seen */
    /* the query: matching the name "last_event_id" at each argument */
    signed char name_at; /* chars of the name matched; -1: not this argument */
    bool in_value, seen, too_long;
    unsigned char value_len;
    char value[GUARD_VALUE_MAX + 1];
    uint64_t payload; /* bytes of the current frame's payload still to come */
    int code;
    const char *why;
    void *owner;
} guard;

static guard *table;
static size_t table_len;
static int violations; /* bound guards violated and not yet taken */

static const char ARG[] = "last_event_id";

/* Counted in violations: violated, bound to a socket, not yet taken. */
static bool counted(const guard *g)
{
    return g->phase == P_VIOLATED && g->code && g->owner;
}

static guard *guard_of(int fd)
{
    return fd >= 0 && (size_t)fd < table_len && table[fd].phase != P_OFF ? &table[fd] : NULL;
}

int guard_open(int fd)
{
    if (fd < 0) return -1;
    if ((size_t)fd >= table_len) {
        size_t len = table_len ? table_len : 1024;
        while (len <= (size_t)fd)
            len *= 2;
        guard *grown = realloc(table, len * sizeof *grown);
        if (!grown) return -1;
        memset(grown + table_len, 0, (len - table_len) * sizeof *grown);
        table = grown;
        table_len = len;
    }
    if (counted(&table[fd])) violations--;
    memset(&table[fd], 0, sizeof table[fd]);
    table[fd].phase = P_METHOD;
    return 0;
}

void guard_close(int fd)
{
    guard *g = guard_of(fd);
    if (!g) return;
    if (counted(g)) violations--;
    memset(g, 0, sizeof *g);
}

void guard_bind(int fd, void *owner)
{
    guard *g = guard_of(fd);
    if (!g || g->owner) return;
    g->owner = owner;
    if (counted(g)) violations++; /* it broke the protocol before it was bound */
}

const char *guard_last_event_id(int fd, bool *too_long)
{
    guard *g = guard_of(fd);
    *too_long = g && g->too_long;
    return g && g->seen ? g->value : NULL;
}

bool guard_take_violation(int *fd, void **owner, const char **why)
{
    if (!violations) return false;
    for (size_t i = 0; i < table_len; i++) {
        guard *g = &table[i];
        if (!counted(g)) continue;
        *fd = (int)i;
        *owner = g->owner;
        *why = g->why;
        g->code = 0; /* taken */
        violations--;
        return true;
    }
    return false;
}

static void violate(guard *g, const char *why)
{
    g->phase = P_VIOLATED;
    g->code = 1002;
    g->why = why;
    if (counted(g)) violations++;
}

/* One byte of the query string. */
static void query_byte(guard *g, unsigned char c)
{
    if (c == '&') {
        if (g->in_value) g->in_value = false;
        g->name_at = g->seen ? -1 : 0;
        return;
    }
    if (g->in_value) {
        if (g->value_len < GUARD_VALUE_MAX)
            g->value[g->value_len++] = (char)c;
        else
            g->too_long = true;
        return;
    }
    if (g->name_at < 0) return;
    if ((size_t)g->name_at == sizeof ARG - 1 && c == '=') {
        g->in_value = g->seen = true;
        g->name_at = -1;
    } else if ((size_t)g->name_at < sizeof ARG - 1 && c == (unsigned char)ARG[g->name_at]) {
        g->name_at++;
    } else {
        g->name_at = -1;
    }
}

/* Follow n bytes of the stream; returns how many of them lws may see. */
static size_t follow(guard *g, const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        switch (g->phase) {
        case P_METHOD:
            if (c == ' ') g->phase = P_TARGET;
            break;
        case P_TARGET:
            if (c == '?') {
                g->phase = P_QUERY;
                g->name_at = 0;
            } else if (c == ' ' || c == '\r' || c == '\n') {
                g->phase = P_HEADERS;
                g->eoh = c == '\r' ? 1 : 0;
            }
            break;
        case P_QUERY:
            if (c == ' ' || c == '#' || c == '\r' || c == '\n') {
                g->in_value = false;
                g->phase = P_HEADERS;
                g->eoh = c == '\r' ? 1 : 0;
            } else {
                query_byte(g, c);
            }
            break;
        case P_HEADERS:
            /* The headers end at the first "\r\n\r\n". */
            if (c == (g->eoh % 2 ? '\n' : '\r'))
                g->eoh++;
            else
                g->eoh = c == '\r' ? 1 : 0;
            if (g->eoh == 4) {
                g->phase = P_FRAMES;
                g->frame = F_HDR0;
            }
            break;
        case P_FRAMES:
            switch (g->frame) {
            case F_HDR0:
                g->opcode = c & 0x0f;
                g->frame = F_HDR1;
                break;
            case F_HDR1: {
                unsigned len7 = c & 0x7f;
                /* Drop the frame from its first byte (when it is in this
                 * read; else lws holds half a header and waits). */
                if (!(c & 0x80)) {
                    violate(g, "client frames must be masked");
                    return i ? i - 1 : 0;
                }
                if ((g->opcode & 8) && len7 > 125) {
                    violate(g, "control frame longer than 125 bytes");
                    return i ? i - 1 : 0;
                }
                g->payload = len7 < 126 ? len7 : 0;
                g->need = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
                g->frame = g->need ? F_EXTLEN : F_MASK;
                if (!g->need) g->need = 4;
                break;
            }
            case F_EXTLEN:
                g->payload = g->payload << 8 | c;
                if (--g->need == 0) {
                    g->frame = F_MASK;
                    g->need = 4;
                }
                break;
            case F_MASK:
                if (--g->need == 0) g->frame = g->payload ? F_PAYLOAD : F_HDR0;
                break;
            case F_PAYLOAD: {
                size_t skip = n - i;
                if (skip > g->payload) skip = (size_t)g->payload;
                g->payload -= skip;
                i += skip;
                if (!g->payload) g->frame = F_HDR0;
                continue;
            }
            }
            break;
        default:
            return i; /* violated: nothing more */
        }
        i++;
    }
    return n;
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    ssize_t n = recvfrom(fd, buf, len, flags, NULL, NULL);
    guard *g = guard_of(fd);
    if (n <= 0 || !g || (flags & MSG_PEEK)) return n;
    if (g->phase == P_VIOLATED) {
        errno = EAGAIN; /* closing: what it sends now is dropped */
        return -1;
    }
    /* A violation inside this read: the bytes before its frame header
     * (the two header bytes started at i - 1 of follow()) reach lws. */
    size_t keep = follow(g, buf, (size_t)n);
    if (g->phase == P_VIOLATED) {
        if (keep == 0) {
            errno = EAGAIN;
            return -1;
        }
        return (ssize_t)keep;
    }
    return n;
}
