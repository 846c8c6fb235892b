/* config.c - defaults, environment and flags for nova_config. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <unistd.h>

typedef enum { OPT_LONG, OPT_BOOL, OPT_STRING } opt_type;

typedef struct option_def {
    const char *flag; /* without the leading "--" */
    const char *env;
    opt_type type;
    size_t offset;
    const char *def;
    long min, max; /* bounds for OPT_LONG; OPT_STRING: min 1 = must not be empty */
    int programs;
    const char *help;
    const char *allowed; /* OPT_STRING: "A|B|C", or NULL for any string */
} option_def;

#define OFF(field) offsetof(nova_config, field)

#ifndef NOVA_SYSCONFDIR
#define NOVA_SYSCONFDIR "/etc"
#endif
/* The configuration file read when neither --config nor NOVA_CONFIG names
 * one, if it exists. */
static const char DEFAULT_CONFIG_FILE[] = NOVA_SYSCONFDIR "/nova/nova.conf";

static const option_def options[] = {
    {"config", "NOVA_CONFIG", OPT_STRING, OFF(config_path), NOVA_SYSCONFDIR "/nova/nova.conf", 0, 0,
     CFG_ALL,
     "configuration file: one \"name = value\" per line, with the names of these options; "
     "flags and environment win over it; empty: none",
     NULL},
    {"db", "NOVA_DB", OPT_STRING, OFF(db_path), "data/nova.db", 1, 0, CFG_ALL,
     "the database: a SQLite file, or a postgresql:// URI (libpq; e.g. "
     "postgresql://nova:secret@db.example/nova)",
     NULL},
    {"synchronous", "NOVA_SYNCHRONOUS", OPT_STRING, OFF(synchronous), "NORMAL", 0, 0, CFG_ALL,
     "SQLite synchronous mode: NORMAL or FULL", "NORMAL|FULL"},
    {"busy-timeout-ms", "NOVA_BUSY_TIMEOUT_MS", OPT_LONG, OFF(busy_timeout_ms), "5000", 1, 600000,
     CFG_ALL, "how long a writer waits for the database lock", NULL},
    {"pwhash-opslimit", "NOVA_PWHASH_OPSLIMIT", OPT_LONG, OFF(pwhash_opslimit), "2", 1, 64, CFG_API,
     "argon2id passes (libsodium interactive level: 2)", NULL},
    {"pwhash-memlimit", "NOVA_PWHASH_MEMLIMIT", OPT_LONG, OFF(pwhash_memlimit), "67108864", 8192,
     4294967296L, CFG_API, "argon2id memory in bytes (interactive level: 64 MiB)", NULL},
    {"session-idle", "NOVA_SESSION_IDLE", OPT_LONG, OFF(session_idle), "1209600", 1, 315360000L,
     CFG_ALL, "seconds of inactivity after which a session expires (14 days)", NULL},
    {"session-max-age", "NOVA_SESSION_MAX_AGE", OPT_LONG, OFF(session_max_age), "7776000", 1,
     315360000L, CFG_ALL, "absolute lifetime of a session in seconds (90 days)", NULL},
    {"session-touch", "NOVA_SESSION_TOUCH", OPT_LONG, OFF(session_touch), "60", 0, 86400, CFG_API,
     "a session's last-seen time is rewritten at most this often (seconds)", NULL},
    {"cookie-secure", "NOVA_COOKIE_SECURE", OPT_BOOL, OFF(cookie_secure), "0", 0, 1, CFG_API,
     "add Secure to the session cookie (set it behind https)", NULL},
    {"cookie-samesite", "NOVA_COOKIE_SAMESITE", OPT_STRING, OFF(cookie_samesite), "Lax", 0, 0,
     CFG_API,
     "SameSite attribute of the session cookie: Lax, Strict or None (None needs "
     "cookie-secure)",
     "Lax|Strict|None"},
    {"cors-origins", "NOVA_CORS_ORIGINS", OPT_STRING, OFF(cors_origins), "", 0, 0,
     CFG_API | CFG_REALTIME,
     "comma-separated origins allowed cross-site (CORS and WebSocket Origin); empty: same "
     "origin only",
     NULL},
    {"body-limit", "NOVA_BODY_LIMIT", OPT_LONG, OFF(body_limit), "1048576", 1024, 1073741824L,
     CFG_API, "largest request body in bytes (larger: 413)", NULL},
    {"json-max-depth", "NOVA_JSON_MAX_DEPTH", OPT_LONG, OFF(json_max_depth), "32", 1, 1000,
     CFG_API | CFG_REALTIME, "deepest JSON nesting accepted", NULL},
    {"socket", "NOVA_API_SOCKET", OPT_STRING, OFF(api_socket), "", 0, 0, CFG_API,
     "unix socket to listen on with prefork workers; empty: use the FastCGI socket on fd 0 "
     "(spawn-fcgi)",
     NULL},
    {"workers", "NOVA_API_WORKERS", OPT_LONG, OFF(api_workers), "4", 1, 1024, CFG_API,
     "number of prefork workers (with --socket)", NULL},
    {"hash-socket", "NOVA_HASH_SOCKET", OPT_STRING, OFF(hash_socket), "", 0, 0, CFG_API,
     "second unix socket (with --socket), served by a separate pool of workers: nginx sends "
     "the password-hashing routes (login, register) there, so that they cannot occupy the "
     "workers of every other request; empty: one pool",
     NULL},
    {"hash-workers", "NOVA_HASH_WORKERS", OPT_LONG, OFF(hash_workers), "0", 0, 1024, CFG_API,
     "workers of the --hash-socket pool; 0: half the cores, at least 1", NULL},
    {"group-invite-flow", "NOVA_GROUP_INVITE_FLOW", OPT_STRING, OFF(group_invite_flow), "approval",
     0, 0, CFG_API,
     "how a friend joins a group: approval (API.md: a member invites, the owner or an admin "
     "approves) or consent (the invitee accepts or declines too; docs/API.md)",
     "approval|consent"},
    {"console", "NOVA_CONSOLE", OPT_BOOL, OFF(console), "0", 0, 1, CFG_API,
     "serve the operators' outbox console at /admin/api/ (only to requests that nginx's "
     "/admin/api/ location marks with the FastCGI parameter NOVA_CONSOLE; operators: "
     "nova-admin operator add)",
     NULL},
    {"listen", "NOVA_RT_LISTEN", OPT_STRING, OFF(rt_listen), "data/run/realtime.sock", 0, 0,
     CFG_REALTIME, "unix socket path, or a TCP port on 127.0.0.1, for WebSocket connections", NULL},
    {"ws-max-frame", "NOVA_WS_MAX_FRAME", OPT_LONG, OFF(ws_max_frame), "131072", 256, 67108864L,
     CFG_REALTIME, "largest client message in bytes (larger: close 1009)", NULL},
    {"ws-max-queue", "NOVA_WS_MAX_QUEUE", OPT_LONG, OFF(ws_max_queue), "4194304", 4096, 1073741824L,
     CFG_REALTIME,
     "bytes queued to one socket over which it must keep taking packets (else closed as too "
     "slow, see ws-send-stall-ms)",
     NULL},
    {"ws-ping-interval", "NOVA_WS_PING_INTERVAL", OPT_LONG, OFF(ws_ping_interval), "30", 1, 3600,
     CFG_REALTIME, "seconds of silence before an idle socket is pinged", NULL},
    {"ws-max-per-user", "NOVA_WS_MAX_PER_USER", OPT_LONG, OFF(ws_max_per_user), "32", 1, 100000,
     CFG_REALTIME, "sockets one user may hold on one daemon; beyond, the oldest is closed", NULL},
    {"outbox-poll-ms", "NOVA_OUTBOX_POLL_MS", OPT_LONG, OFF(outbox_poll_ms), "10", 1, 10000,
     CFG_REALTIME, "how often the outbox is checked for new events (milliseconds)", NULL},
    {"outbox-batch", "NOVA_OUTBOX_BATCH", OPT_LONG, OFF(outbox_batch), "512", 1, 100000,
     CFG_REALTIME, "events read from the outbox per query", NULL},
    {"outbox-retention", "NOVA_OUTBOX_RETENTION", OPT_LONG, OFF(outbox_retention), "86400", 60,
     315360000L, CFG_REALTIME | CFG_ADMIN, "seconds events are kept for resuming clients", NULL},
    {"wake-socket", "NOVA_WAKE_SOCKET", OPT_STRING, OFF(wake_socket), "", 0, 0,
     CFG_API | CFG_REALTIME,
     "unix datagram socket nova-realtime listens on and writers poke after a commit (lower "
     "latency); writers take a comma-separated list (one per daemon); empty: off",
     NULL},
    /* realtime: sockets that fall behind, headers, compression, the write lock */
    {"ws-send-stall-ms", "NOVA_WS_SEND_STALL_MS", OPT_LONG, OFF(ws_send_stall_ms), "5000", 100,
     3600000, CFG_REALTIME,
     "a socket over ws-max-queue that takes no packet for this long is closed (ms)", NULL},
    {"ws-queue-ceiling", "NOVA_WS_QUEUE_CEILING", OPT_LONG, OFF(ws_queue_ceiling), "67108864", 8192,
     4294967296L, CFG_REALTIME, "bytes queued to one socket that close it at once", NULL},
    {"ws-rx-pause", "NOVA_WS_RX_PAUSE", OPT_LONG, OFF(ws_rx_pause), "262144", 1024, 1073741824L,
     CFG_REALTIME, "bytes queued to a socket above which its input waits (flow control)", NULL},
    {"ws-max-header", "NOVA_WS_MAX_HEADER", OPT_LONG, OFF(ws_max_header), "40960", 4096, 1048576,
     CFG_REALTIME, "bytes of request headers a WebSocket upgrade may carry (nginx: 32 KiB)", NULL},
    {"ws-header-pool", "NOVA_WS_HEADER_POOL", OPT_LONG, OFF(ws_header_pool), "128", 1, 65535,
     CFG_REALTIME, "upgrades whose headers are held at once (each up to ws-max-header)", NULL},
    {"ws-deflate", "NOVA_WS_DEFLATE", OPT_BOOL, OFF(ws_deflate), "1", 0, 1, CFG_REALTIME,
     "accept permessage-deflate (RFC 7692) from clients that offer it", NULL},
    {"rt-retry-ms", "NOVA_RT_RETRY_MS", OPT_LONG, OFF(rt_retry_ms), "20", 1, 10000, CFG_REALTIME,
     "socket actions that found the write lock taken are retried this often (ms)", NULL},
    {"rt-max-pending", "NOVA_RT_MAX_PENDING", OPT_LONG, OFF(rt_max_pending), "10000", 1, 10000000,
     CFG_REALTIME, "socket actions waiting for the write lock; beyond: error 503", NULL},
    {"rt-batch-max", "NOVA_RT_BATCH_MAX", OPT_LONG, OFF(rt_batch_max), "64", 1, 100000,
     CFG_REALTIME,
     "socket actions that arrive together commit in one transaction, at most this many "
     "(1: each alone)",
     NULL},
    {"rt-batch-ms", "NOVA_RT_BATCH_MS", OPT_LONG, OFF(rt_batch_ms), "5", 0, 10000, CFG_REALTIME,
     "a batch of socket actions takes no more actions after this long (ms)", NULL},
    {"rt-checkpoint-ms", "NOVA_RT_CHECKPOINT_MS", OPT_LONG, OFF(rt_checkpoint_ms), "1000", 0,
     3600000, CFG_REALTIME,
     "WAL checkpoints of nova-realtime's writes run in a thread this often (ms); 0: in the "
     "event loop (SQLite's automatic checkpoint)",
     NULL},
    {"rt-echo-first", "NOVA_RT_ECHO_FIRST", OPT_LONG, OFF(rt_echo_first), "16", 0, 1000000,
     CFG_REALTIME,
     "an event with this many recipients or more reaches the socket that caused it before the "
     "others are written (0: never)",
     NULL},
    {"rt-echo-wait-us", "NOVA_RT_ECHO_WAIT_US", OPT_LONG, OFF(rt_echo_wait_us), "2000", 0,
     1000000, CFG_REALTIME,
     "the other recipients wait at most this long for that socket's write (microseconds)", NULL},
    {"edit-window", "NOVA_EDIT_WINDOW", OPT_LONG, OFF(edit_window), "172800", 0, 315360000,
     CFG_REALTIME, "seconds after sending during which a message may be edited; 0: no limit", NULL},
    {"edit-max", "NOVA_EDIT_MAX", OPT_LONG, OFF(edit_max), "20", 1, 100000, CFG_REALTIME,
     "edits allowed per message", NULL},
    {"react-distinct", "NOVA_REACT_DISTINCT", OPT_LONG, OFF(react_distinct), "20", 1, 1000,
     CFG_REALTIME, "different emojis allowed on one message", NULL},
    {"react-per-user", "NOVA_REACT_PER_USER", OPT_LONG, OFF(react_per_user), "3", 1, 1000,
     CFG_REALTIME, "emojis one user may put on one message", NULL},
    {"emoji-bytes", "NOVA_EMOJI_BYTES", OPT_LONG, OFF(emoji_bytes), "64", 4, 1024, CFG_REALTIME,
     "longest emoji (UTF-8 bytes) a reaction may be", NULL},
    {"log-level", "NOVA_LOG_LEVEL", OPT_LONG, OFF(log_level), "1", 0, 2, CFG_ALL,
     "0 errors only, 1 one line per request/event, 2 debug", NULL},
    {"log-format", "NOVA_LOG_FORMAT", OPT_STRING, OFF(log_format), "text", 0, 0, CFG_ALL,
     "text: one readable line per event; json: one JSON object per line (for log shippers)",
     "text|json"},
    /* realtime: presence and typing (docs/API.md "[ext] Presence and typing") */
    {"presence", "NOVA_PRESENCE", OPT_BOOL, OFF(presence), "1", 0, 1, CFG_REALTIME,
     "track who is online and tell their friends (sockets opened with ?presence=1)", NULL},
    {"presence-heartbeat-ms", "NOVA_PRESENCE_HEARTBEAT_MS", OPT_LONG, OFF(presence_heartbeat_ms),
     "1000", 100, 600000, CFG_REALTIME,
     "how often a daemon records that it is alive and expires dead daemons' presence (ms)", NULL},
    {"presence-timeout-ms", "NOVA_PRESENCE_TIMEOUT_MS", OPT_LONG, OFF(presence_timeout_ms), "15000",
     200, 3600000, CFG_REALTIME,
     "a daemon without a heartbeat this long is dead: its users' sockets are gone (ms)", NULL},
    {"presence-grace-ms", "NOVA_PRESENCE_GRACE_MS", OPT_LONG, OFF(presence_grace_ms), "3000", 0,
     3600000, CFG_REALTIME,
     "a user whose last socket closed is offline only after this long (no flap on reload; ms)",
     NULL},
    {"presence-retention", "NOVA_PRESENCE_RETENTION", OPT_LONG, OFF(presence_retention), "60", 10,
     86400, CFG_REALTIME, "seconds presence and typing events stay in the outbox", NULL},
    {"typing-interval-ms", "NOVA_TYPING_INTERVAL_MS", OPT_LONG, OFF(typing_interval_ms), "2000", 0,
     600000, CFG_REALTIME,
     "a user's typing in one chat goes out at most once per this long per daemon (ms)", NULL},
    /* attachments (docs/API.md "[ext] Attachments") */
    {"attachment-dir", "NOVA_ATTACHMENT_DIR", OPT_STRING, OFF(attachment_dir), "data/attachments",
     1, 0, CFG_API | CFG_ADMIN,
     "directory of the uploaded files, named by their SHA-256 (nginx serves it at the internal "
     "location /.nova-attachment/: scripts/gen-nginx renders it from the same variable)",
     NULL},
    {"attachment-limit", "NOVA_ATTACHMENT_LIMIT", OPT_LONG, OFF(attachment_limit), "10485760", 1,
     1073741824L, CFG_API,
     "largest uploaded file in bytes (larger: 413; nginx's limit of the upload location is "
     "rendered from the same variable)",
     NULL},
    {"attachment-expiry", "NOVA_ATTACHMENT_EXPIRY", OPT_LONG, OFF(attachment_expiry), "86400", 0,
     315360000L, CFG_API | CFG_ADMIN,
     "seconds an uploaded file may wait to be sent before nova-admin attachments-gc removes it",
     NULL},
    /* [ext] search (docs/API.md "[ext] Search") */
    {"search-max-query", "NOVA_SEARCH_MAX_QUERY", OPT_LONG, OFF(search_max_query), "256", 1, 4096,
     CFG_API, "longest search query q, bytes", NULL},
    {"search-max-terms", "NOVA_SEARCH_MAX_TERMS", OPT_LONG, OFF(search_max_terms), "8", 1, 64,
     CFG_API, "most words in a search query", NULL},
    {"search-max-limit", "NOVA_SEARCH_MAX_LIMIT", OPT_LONG, OFF(search_max_limit), "50", 1, 1000,
     CFG_API, "most hits in one page of search results", NULL},
    {"search-max-offset", "NOVA_SEARCH_MAX_OFFSET", OPT_LONG, OFF(search_max_offset), "1000", 0,
     100000, CFG_API, "search hits by relevance reachable by paging", NULL},
    {"search-snippet-words", "NOVA_SEARCH_SNIPPET_WORDS", OPT_LONG, OFF(search_snippet_words), "24",
     4, 64, CFG_API, "words in the snippet of a search hit", NULL},
    {"search-chat-tokens", "NOVA_SEARCH_CHAT_TOKENS", OPT_LONG, OFF(search_chat_tokens), "500", 0,
     10000, CFG_API,
     "a caller in at most this many chats is searched inside the index; in more, row by row "
     "(SQLite)",
     NULL},
};

#define N_OPTIONS (sizeof options / sizeof options[0])

/* Is value one of the '|'-separated words of list? */
static bool one_of(const char *value, const char *list)
{
    size_t n = strlen(value);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, '|');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && !strncmp(p, value, n)) return true;
        p += len + (end != NULL);
    }
    return false;
}

static int apply(nova_config *cfg, const option_def *o, const char *value, const char *source)
{
    char *field = (char *)cfg + o->offset;
    switch (o->type) {
    case OPT_STRING: {
        if (o->min && !*value) {
            fprintf(stderr, "%s: %s must not be empty\n", source, o->flag);
            return -1;
        }
        if (o->allowed && !one_of(value, o->allowed)) {
            fprintf(stderr, "%s: %s must be one of %s, got \"%s\"\n", source, o->flag, o->allowed,
                    value);
            return -1;
        }
        char *copy = strdup(value);
        if (!copy) return -1;
        free(*(char **)field);
        *(char **)field = copy;
        return 0;
    }
    case OPT_BOOL:
        if (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes")) {
            *(bool *)field = true;
            return 0;
        }
        if (!strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "no") ||
            !strcmp(value, "")) {
            *(bool *)field = false;
            return 0;
        }
        fprintf(stderr, "%s: %s wants 0 or 1, got \"%s\"\n", source, o->flag, value);
        return -1;
    case OPT_LONG: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end || v < o->min || v > o->max) {
            fprintf(stderr, "%s: %s wants an integer in %ld..%ld, got \"%s\"\n", source, o->flag,
                    o->min, o->max, value);
            return -1;
        }
        *(long *)field = (long)v;
        return 0;
    }
    }
    return -1;
}

int config_check(const nova_config *cfg)
{
    if (!strcmp(cfg->cookie_samesite, "None") && !cfg->cookie_secure) {
        fprintf(stderr, "cookie-samesite None needs cookie-secure (browsers drop the cookie)\n");
        return -1;
    }
    return 0;
}

int config_load(nova_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (apply(cfg, &options[i], options[i].def, "default")) return -1;
        const char *env = getenv(options[i].env);
        if (env && apply(cfg, &options[i], env, options[i].env)) return -1;
    }
    return 0;
}

int config_parse_flag(nova_config *cfg, int argc, char **argv, int *i)
{
    const char *arg = argv[*i];
    if (strncmp(arg, "--", 2)) return 0;
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
    for (size_t k = 0; k < N_OPTIONS; k++) {
        const option_def *o = &options[k];
        if (strlen(o->flag) != name_len || strncmp(o->flag, name, name_len)) continue;
        const char *value;
        if (eq) {
            value = eq + 1;
        } else if (o->type == OPT_BOOL && (*i + 1 >= argc || !strncmp(argv[*i + 1], "--", 2))) {
            value = "1";
        } else if (*i + 1 < argc) {
            value = argv[++*i];
        } else {
            fprintf(stderr, "--%s needs a value\n", o->flag);
            return -1;
        }
        if (apply(cfg, o, value, "command line")) return -1;
        return 1;
    }
    return 0;
}

void config_print_help(FILE *out, int programs)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const option_def *o = &options[i];
        if (!(o->programs & programs)) continue;
        fprintf(out, "  --%-18s %s\n  %-20s (env %s, default \"%s\")\n", o->flag, o->help, "",
                o->env, o->def);
    }
}

void config_free(nova_config *cfg)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (options[i].type != OPT_STRING) continue;
        char **field = (char **)((char *)cfg + options[i].offset);
        free(*field);
        *field = NULL;
    }
}

static bool origin_listed(const nova_config *cfg, const char *origin, size_t len)
{
    if (!len) return false;
    const char *p = cfg->cors_origins;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        const char *last = end;
        while (last > p && last[-1] == ' ')
            last--;
        if ((size_t)(last - p) == len && !memcmp(p, origin, len)) return true;
        p = end;
    }
    return false;
}

bool config_origin_allowed(const nova_config *cfg, const char *origin)
{
    return origin_listed(cfg, origin, strlen(origin));
}

bool origin_trusted(const nova_config *cfg, const char *origin, size_t len, const char *scheme,
                    const char *host)
{
    if (origin_listed(cfg, origin, len)) return true;
    if (!host || !*host || !scheme) return false;
    size_t slen = strlen(scheme), hlen = strlen(host);
    return len == slen + 3 + hlen && !strncasecmp(origin, scheme, slen) &&
           !memcmp(origin + slen, "://", 3) && !strncasecmp(origin + slen + 3, host, hlen);
}

/* Trim spaces and tabs at both ends of [*p, *end). */
static void trim(char **p, char **end)
{
    while (*p < *end && (**p == ' ' || **p == '\t'))
        ++*p;
    while (*end > *p && ((*end)[-1] == ' ' || (*end)[-1] == '\t' || (*end)[-1] == '\r'))
        --*end;
}

static const option_def *option_named(const char *name, size_t len)
{
    for (size_t k = 0; k < N_OPTIONS; k++)
        if (strlen(options[k].flag) == len && !strncmp(options[k].flag, name, len))
            return &options[k];
    return NULL;
}

int config_load_file(nova_config *cfg, const char *path, bool must_exist)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (!must_exist && errno == ENOENT) return 0;
        fprintf(stderr, "%s: cannot read the configuration file: %s\n", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    long number = 0;
    int rc = 0;
    ssize_t len;
    while (!rc && (len = getline(&line, &cap, f)) >= 0) {
        number++;
        char *p = line, *end = line + len;
        if (end > p && end[-1] == '\n') *--end = '\0';
        trim(&p, &end);
        if (p == end || *p == '#') continue;
        char *eq = memchr(p, '=', (size_t)(end - p));
        char where[300];
        snprintf(where, sizeof where, "%s:%ld", path, number);
        if (!eq) {
            fprintf(stderr, "%s: expected \"name = value\"\n", where);
            rc = -1;
            break;
        }
        char *name = p, *name_end = eq, *value = eq + 1;
        trim(&name, &name_end);
        trim(&value, &end);
        if (end - value >= 2 && *value == '"' && end[-1] == '"') {
            value++;
            end--;
        }
        *end = '\0';
        const option_def *o = option_named(name, (size_t)(name_end - name));
        if (!o || o->offset == OFF(config_path)) {
            fprintf(stderr, "%s: unknown setting \"%.*s\"\n", where, (int)(name_end - name), name);
            rc = -1;
        } else if (apply(cfg, o, value, where)) {
            rc = -1;
        }
    }
    if (!rc && ferror(f)) {
        fprintf(stderr, "%s: cannot read the configuration file\n", path);
        rc = -1;
    }
    free(line);
    fclose(f);
    return rc;
}

/* The configuration file a program is asked to read: --config PATH (or
 * --config=PATH) among its flags, else NOVA_CONFIG, else the default.
 * *explicit tells whether it was named (then it must exist). */
static const char *config_file_of(int argc, char **argv, bool commands, bool *explicit)
{
    for (int i = 1; i < argc; i++) {
        if (commands && strncmp(argv[i], "--", 2)) break;
        if (!strcmp(argv[i], "--config") && i + 1 < argc) {
            *explicit = true;
            return argv[i + 1];
        }
        if (!strncmp(argv[i], "--config=", 9)) {
            *explicit = true;
            return argv[i] + 9;
        }
    }
    const char *env = getenv("NOVA_CONFIG");
    *explicit = env != NULL;
    return env ? env : DEFAULT_CONFIG_FILE;
}

int config_init(nova_config *cfg, const char *program, int argc, char **argv,
                void (*usage)(FILE *out), int *next)
{
    /* Help needs no settings: shown even when the file is broken. */
    for (int i = 1; i < argc && (!next || !strncmp(argv[i], "--", 2)); i++) {
        if (!strcmp(argv[i], "--help") || (!next && !strcmp(argv[i], "-h"))) {
            usage(stdout);
            return 1;
        }
    }
    memset(cfg, 0, sizeof *cfg);
    for (size_t k = 0; k < N_OPTIONS; k++)
        if (apply(cfg, &options[k], options[k].def, "default")) return 2;
    bool explicit;
    const char *file = config_file_of(argc, argv, next != NULL, &explicit);
    if (apply(cfg, option_named("config", 6), file, "config") ||
        (*file && config_load_file(cfg, file, explicit))) {
        config_free(cfg);
        return 2;
    }
    if (*file && !explicit && access(file, F_OK)) {
        /* the default file is not there: say so in the settings */
        free(cfg->config_path);
        cfg->config_path = strdup("");
    }
    for (size_t k = 0; k < N_OPTIONS; k++) {
        const char *env = getenv(options[k].env);
        if (env && options[k].offset != OFF(config_path) &&
            apply(cfg, &options[k], env, options[k].env)) {
            config_free(cfg);
            return 2;
        }
    }
    int i = 1;
    for (; i < argc; i++) {
        if (next && strncmp(argv[i], "--", 2)) break; /* the command */
        int n = config_parse_flag(cfg, argc, argv, &i);
        if (n == 1) continue;
        if (n == 0) fprintf(stderr, "%s: unknown argument %s (see --help)\n", program, argv[i]);
        config_free(cfg);
        return 2;
    }
    if (config_check(cfg)) {
        config_free(cfg);
        return 2;
    }
    if (next) *next = i;
    return 0;
}

bool config_invite_consent(const nova_config *cfg)
{
    return cfg && cfg->group_invite_flow && !strcmp(cfg->group_invite_flow, "consent");
}
