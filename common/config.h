/* config.h - every tunable of Nova in one struct.
 *
 * Each setting has a default, a line of the configuration file
 * (`name = value`, NOVA_SYSCONFDIR/nova/nova.conf or --config), an
 * environment variable (NOVA_*) and a command-line flag (--name value);
 * flag over environment over file over default. The option table in
 * config.c is the single source of truth: it drives parsing, validation
 * and the --help text of every program. */
#ifndef NOVA_CONFIG_H
#define NOVA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Which programs an option concerns (for --help). */
enum {
    CFG_API = 1,
    CFG_REALTIME = 2,
    CFG_ADMIN = 4,
    CFG_ALL = 7,
};

typedef struct nova_config {
    char *config_path; /* the configuration file read ("" for none) */

    /* storage */
    char *db_path;
    char *synchronous; /* "NORMAL" or "FULL" */
    long busy_timeout_ms;

    /* passwords and sessions */
    long pwhash_opslimit;
    long pwhash_memlimit;
    long session_idle;    /* seconds of inactivity before a session ends */
    long session_max_age; /* absolute lifetime of a session, seconds */
    long session_touch;   /* last_seen is rewritten at most this often */
    bool cookie_secure;
    char *cookie_samesite; /* "Lax", "Strict" or "None" */

    /* chats */
    char *group_invite_flow; /* "approval" (API.md's simplified flow) or "consent" */

    /* HTTP */
    char *cors_origins; /* comma-separated allow-list; "" = same origin only */
    long body_limit;    /* bytes */
    long json_max_depth;
    char *api_socket; /* nova-api: listen here (prefork mode) */
    long api_workers;
    char *hash_socket; /* nova-api: second socket, its own pool (login, register) */
    long hash_workers; /* workers of that pool; 0 = half the cores, at least 1 */
    bool console;      /* serve the outbox console's API at /admin/api/ (docs/CONSOLE.md) */

    /* realtime */
    char *rt_listen; /* unix socket path, or a TCP port number */
    long ws_max_frame;
    long ws_max_queue; /* bytes queued per socket before it is closed */
    long ws_ping_interval;
    long ws_max_per_user; /* sockets one user may hold (per daemon) */
    long outbox_poll_ms;
    long outbox_batch;
    long outbox_retention; /* seconds */
    char *wake_socket;     /* datagram socket writers poke after commit; "" = off */

    /* realtime: sockets that fall behind, headers, compression, the write lock */
    long ws_send_stall_ms; /* over ws_max_queue with no packet taken this long: closed */
    long ws_queue_ceiling; /* backlog that closes a socket at once */
    long ws_rx_pause;      /* backlog above which a socket's input is not read */
    long ws_max_header;    /* bytes of HTTP headers of an upgrade */
    long ws_header_pool;   /* upgrades whose headers are parsed at once */
    bool ws_deflate;       /* offer permessage-deflate */
    long rt_retry_ms;      /* retry delay of actions that found the write lock taken */
    long rt_max_pending;   /* actions waiting for the write lock, per daemon */
    long rt_batch_max;     /* actions committed in one transaction (group commit) */
    long rt_batch_ms;      /* a batch takes no more actions after this long */
    long rt_checkpoint_ms; /* WAL checkpoints off the event loop this often; 0: in it */
    long rt_echo_first;    /* recipients from which the origin's echo goes out first */
    long rt_echo_wait_us;  /* the others wait at most this long for it */

    /* [ext] edit and react (docs/API.md) */
    long edit_window;    /* seconds after sending a message may be edited; 0: no limit */
    long edit_max;       /* edits per message */
    long react_distinct; /* distinct emojis per message */
    long react_per_user; /* emojis one user may put on one message */
    long emoji_bytes;    /* bytes of one emoji */

    /* logging */
    long log_level;   /* 0 errors, 1 info, 2 debug */
    char *log_format; /* "text" or "json" */

    /* realtime: presence and typing (docs/API.md "[ext] Presence and typing") */
    bool presence;              /* track who is online and tell their friends */
    long presence_heartbeat_ms; /* heartbeat and expiry check of the instances */
    long presence_timeout_ms;   /* an instance silent this long is dead */
    long presence_grace_ms;     /* offline only after this long without a socket */
    long presence_retention;    /* seconds presence and typing events are kept */
    long typing_interval_ms;    /* one typing per user and chat per this long */
    /* attachments */
    char *attachment_dir;   /* where uploaded files are stored, by hash */
    long attachment_limit;  /* largest upload, bytes */
    long attachment_expiry; /* seconds an unsent upload is kept */
    /* [ext] search (docs/API.md "[ext] Search") */
    long search_max_query;     /* longest q, bytes */
    long search_max_terms;     /* most words in q */
    long search_max_limit;     /* largest limit */
    long search_max_offset;    /* relevance hits reachable by paging */
    long search_snippet_words; /* words in a snippet */
    long search_chat_tokens;   /* chats searched inside the index (SQLite) */
} nova_config;

/* Fill cfg with defaults, then apply NOVA_* environment variables.
 * Returns 0, or -1 after printing what is wrong to stderr. Call
 * config_check once the flags are applied too. */
int config_load(nova_config *cfg);

/* Check the settings together (e.g. SameSite=None needs Secure): 0, or -1
 * after printing what is wrong to stderr. */
int config_check(const nova_config *cfg);

/* Apply one command-line flag. *i indexes argv[] at the flag; on success it
 * is advanced past the value. Returns 1 if the flag was a config option,
 * 0 if it is not one, -1 on a bad value (reported on stderr). *i is left
 * at the last argument consumed (the value), so a caller's for loop's
 * i++ moves past it. */
int config_parse_flag(nova_config *cfg, int argc, char **argv, int *i);

/* Apply a configuration file: one `name = value` per line (the flag names,
 * without "--"), blank lines and lines starting with '#' ignored, a value
 * optionally in double quotes. An unknown name or a bad value is reported
 * on stderr as "<path>:<line>: ..." and fails (-1), as does a missing file
 * when must_exist; a missing file is otherwise fine (0). */
int config_load_file(nova_config *cfg, const char *path, bool must_exist);

/* Everything a program's main does to configure itself: defaults, the
 * configuration file (--config PATH, else NOVA_CONFIG, else the default
 * path if that file exists), the environment, the flags of argv[1..]
 * (config_parse_flag), then config_check. --help (and -h) print usage(stdout). With next
 * (nova-admin), parsing stops at the first argument that is not a flag and
 * *next is its index (argc when none). Returns 0 to run on; 1 when usage
 * was shown (exit 0); 2 for a bad argument or setting, reported on stderr
 * as "<program>: ..." (exit 2). cfg holds nothing to free unless 0. */
int config_init(nova_config *cfg, const char *program, int argc, char **argv,
                void (*usage)(FILE *out), int *next);

/* Print the options of the given programs (CFG_* mask) for --help. */
void config_print_help(FILE *out, int programs);

/* Release the strings held by cfg. */
void config_free(nova_config *cfg);

/* True when origin (exact string) is in the configured CORS allow-list. */
bool config_origin_allowed(const nova_config *cfg, const char *origin);

/* Does group-invite-flow ask the invitee (consent)? False for a NULL
 * configuration (API.md's flow). */
bool config_invite_consent(const nova_config *cfg);

/* May a browser page of origin[0..len) act with the user's cookie? True for
 * the page's own origin (scheme://host of the request, host as the client
 * sent it) and for the allow-list; false for anything else, "null" too. */
bool origin_trusted(const nova_config *cfg, const char *origin, size_t len, const char *scheme,
                    const char *host);

#endif
