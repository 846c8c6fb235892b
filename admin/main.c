/* main.c - nova-admin: the operator's command line.
 *
 *   nova-admin migrate                       create or upgrade the database
 *   nova-admin outbox [--since ID] [--action NAME] [--limit N]
 *   nova-admin outbox stats | tail [-f] | show ID | prune [--older-than S]
 *   nova-admin sessions [--user NAME]
 *   nova-admin operator add NAME | remove NAME | list   the console's operators
 *   nova-admin backup FILE                   an online, consistent copy
 *   nova-admin copy DEST                     everything into a new database,
 *                                            SQLite or PostgreSQL (admin/copy.c)
 *   nova-admin check [--quick]               the domain invariants, a report
 *
 * It reads the same NOVA_* settings and flags as the daemons (--db). */
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "../common/attachment.h"
#include "../common/check.h"
#include "../common/crypto.h"
#include "../common/db.h"
#include "../common/log.h"
#include "../common/migrate.h"
#include "../common/operator.h"
#include "../common/outbox.h"
#include "../common/session.h"
#include "copy.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: nova-admin [--db PATH] COMMAND [options]\n"
            "\n"
            "commands:\n"
            "  migrate              create the database or apply missing migrations\n"
            "                       (the daemons refuse to start until this is done)\n"
            "  version              print the schema version of the database and of this build\n"
            "  outbox [--since ID] [--action NAME] [--limit N]\n"
            "                       print events, oldest first: without --since the newest\n"
            "                       N (default 50), with it those after ID\n"
            "  outbox stats         rows, oldest/newest id and time, events per minute, and\n"
            "                       each running nova-realtime's delivered position and lag\n"
            "  outbox tail [-f]     the last 10 events; with -f keep printing new ones\n"
            "  outbox show ID       one event in full\n"
            "  outbox prune [--older-than SECONDS]\n"
            "                       delete events older than the retention (or SECONDS), in\n"
            "                       small batches\n"
            "  sessions [--user NAME]\n"
            "                       list live sessions (never their tokens)\n"
            "  operator add NAME    create an operator of the outbox console (the console\n"
            "                       setting); the password is read from stdin, or asked\n"
            "                       twice without echo on a terminal (8+ characters)\n"
            "  operator remove NAME remove an operator and end their console sessions\n"
            "  operator list        the operators, with their live console sessions\n"
            "  check [--quick]      check the domain invariants (and, unless --quick, the\n"
            "                       database file's integrity) on the live database: a line\n"
            "                       per rule, exit status 1 if any is broken\n"
            "  backup FILE          copy the database, consistent as of one moment, into the\n"
            "                       new SQLite file FILE while the stack keeps serving\n"
            "                       (restore: stop the stack, put FILE in the database's\n"
            "                       place, or copy it into PostgreSQL)\n"
            "  copy DEST            copy every row into DEST, a new SQLite file or an empty\n"
            "                       PostgreSQL database (postgresql://...), migrating it\n"
            "                       first; ids, sessions and the outbox position are kept,\n"
            "                       so moving up is: stop, copy, point --db at DEST, start\n"
            "  attachments-gc [--grace SECONDS]\n"
            "                       delete uploads not sent within attachment-expiry, then\n"
            "                       every file of attachment-dir that no attachment names\n"
            "                       (files younger than SECONDS, default 3600, are spared)\n"
            "\n"
            "settings (each also read from its environment variable):\n");
    config_print_help(out, CFG_ADMIN);
    fprintf(out, "  --help               show this text\n");
}

static void format_time(double t, char *out, size_t size)
{
    time_t secs = (time_t)t;
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, size, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(out + n, size - n, ".%03dZ", (int)((t - (double)secs) * 1000));
}

static nova_db *open_current(const nova_config *cfg)
{
    nova_err err;
    nova_db *db = db_open(cfg, &err);
    if (!db) {
        fprintf(stderr, "nova-admin: cannot open %s\n", cfg->db_path);
        return NULL;
    }
    if (migrate_check(db, &err)) {
        fprintf(stderr, "nova-admin: %s\n", err.msg);
        db_close(db);
        return NULL;
    }
    return db;
}

static int cmd_migrate(const nova_config *cfg)
{
    nova_err err;
    nova_db *db = db_open(cfg, &err);
    if (!db) {
        fprintf(stderr, "nova-admin: cannot open %s\n", cfg->db_path);
        return 1;
    }
    int before = migrate_db_version(db);
    int rc = migrate_apply(db, stdout, &err);
    if (rc)
        fprintf(stderr, "nova-admin: migration failed: %s\n", err.msg);
    else
        printf("database %s at schema version %d (was %d)\n", cfg->db_path, migrate_db_version(db),
               before);
    db_close(db);
    return rc ? 1 : 0;
}

typedef struct check_tally {
    int rules, broken;
} check_tally;

static void print_rule(void *ctx, const char *rule, const char *broken)
{
    check_tally *t = ctx;
    t->rules++;
    if (broken) {
        t->broken++;
        printf("BROKEN  %s: %s\n", rule, broken);
    } else {
        printf("ok      %s\n", rule);
    }
}

static int cmd_check(const nova_config *cfg, int argc, char **argv)
{
    bool quick = argc == 1 && !strcmp(argv[0], "--quick");
    if (argc > 1 || (argc == 1 && !quick)) {
        fprintf(stderr, "nova-admin check: bad arguments (see --help)\n");
        return 2;
    }
    nova_db *db = open_current(cfg);
    if (!db) return 1;
    check_tally t = {0};
    nova_err err;
    int failed = check_database(db, !quick, print_rule, &t, &err);
    db_close(db);
    if (failed < 0) {
        fprintf(stderr, "nova-admin check: %s\n", err.msg);
        return 1;
    }
    printf("%d of %d rules hold%s\n", t.rules - t.broken, t.rules,
           t.broken ? ": the database breaks the domain's invariants" : "");
    return t.broken ? 1 : 0;
}

static int cmd_backup(const nova_config *cfg, int argc, char **argv)
{
    if (argc != 1 || !argv[0][0]) {
        fprintf(stderr, "nova-admin backup: give the new file to write (see --help)\n");
        return 2;
    }
    nova_db *db = open_current(cfg);
    if (!db) return 1;
    nova_err err;
    double start = nova_now();
    /* PostgreSQL has no VACUUM INTO: the same copy as nova-admin copy, into
     * a new SQLite file, from one snapshot. */
    bool sqlite = db->kind == DB_SQLITE;
    int rc = sqlite ? db_backup(db, argv[0], &err) : copy_to_new_file(db, cfg, argv[0], &err);
    if (rc)
        fprintf(stderr, "nova-admin backup: %s\n",
                rc == ERR_CONFLICT || rc == ERR_INVALID
                    ? err.msg
                    : "the copy failed (see the log line above)");
    else
        printf("backed up %s to %s in %.2f s\n", sqlite ? cfg->db_path : "the PostgreSQL database",
               argv[0], nova_now() - start);
    db_close(db);
    return rc ? 1 : 0;
}

static int cmd_copy(const nova_config *cfg, int argc, char **argv)
{
    if (argc != 1 || !argv[0][0]) {
        fprintf(stderr, "nova-admin copy: give the destination database (see --help)\n");
        return 2;
    }
    nova_db *src = open_current(cfg);
    if (!src) return 1;
    nova_config dest_cfg = *cfg;
    dest_cfg.db_path = argv[0];
    nova_err err;
    nova_db *dst = db_open(&dest_cfg, &err);
    int rc = dst ? copy_database(src, dst, stdout, &err) : err.kind;
    if (rc) fprintf(stderr, "nova-admin copy: %s\n", dst ? err.msg : "cannot open the destination");
    db_close(dst);
    db_close(src);
    return rc ? 1 : 0;
}

static int cmd_version(const nova_config *cfg)
{
    nova_err err;
    nova_db *db = db_open(cfg, &err);
    if (!db) return 1;
    printf("database %d, build %d\n", migrate_db_version(db), migrate_latest_version());
    db_close(db);
    return 0;
}

/* One event, as the operator reads it. */
static void print_event(const outbox_event *ev)
{
    char when[40];
    format_time(ev->created_at, when, sizeof when);
    printf("#%lld  %s  %-18s to users %s", (long long)ev->id, when, ev->action, ev->recipients);
    if (ev->session_id) printf(" (session %lld only)", (long long)ev->session_id);
    if (ev->request_id) printf(" (request %lld)", (long long)ev->request_id);
    printf("\n    %s\n", ev->data);
}

/* Print every event of a started read; the id of the last one (or
 * `last` when none), -1 when the read failed. */
static long long print_events(outbox_reader *r, long long last, int *rows)
{
    outbox_event ev;
    int rc;
    while ((rc = outbox_next(r, &ev)) > 0) {
        print_event(&ev);
        last = ev.id;
        if (rows) ++*rows;
    }
    outbox_read_end(r);
    return rc < 0 ? -1 : last;
}

static int parse_long(const char *s, long long min, long long *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < min) return -1;
    *out = v;
    return 0;
}

typedef struct daemon_table {
    int rows;
    int64_t newest;
    double now;
} daemon_table;

static void print_daemon(void *ctx, const outbox_daemon *d)
{
    daemon_table *t = ctx;
    if (!t->rows++)
        printf("\n%-28s %-8s %-12s %-8s %-8s %s\n", "nova-realtime", "pid", "delivered", "lag",
               "sockets", "seen");
    double seen = t->now - d->updated_at;
    printf("%-28s %-8lld #%-11lld %-8lld %-8lld %.1fs ago%s\n", d->name, (long long)d->pid,
           (long long)d->delivered_id,
           (long long)(t->newest > d->delivered_id ? t->newest - d->delivered_id : 0),
           (long long)d->sockets, seen, seen > 5 ? " (stale: not running?)" : "");
}

static int print_outbox_stats(nova_db *db)
{
    double now = nova_now();
    outbox_stats s;
    nova_err err;
    if (outbox_stats_read(db, now, &s, &err)) return 1;
    printf("events retained   %lld\n", s.rows);
    if (s.rows) {
        char oldest_t[40], newest_t[40];
        format_time(s.oldest_at, oldest_t, sizeof oldest_t);
        format_time(s.newest_at, newest_t, sizeof newest_t);
        printf("oldest            #%lld  %s\n", (long long)s.oldest_id, oldest_t);
        printf("newest            #%lld  %s\n", (long long)s.newest_id, newest_t);
    }
    printf("events per minute %lld (last minute), %.1f (last 10 minutes)\n", s.last_minute,
           (double)s.last_10_minutes / 10.0);
    daemon_table t = {.newest = s.newest_id, .now = now};
    if (outbox_daemons(db, print_daemon, &t, &err)) return 1;
    if (!t.rows) printf("\nno nova-realtime is running\n");
    return 0;
}

static int outbox_show(nova_db *db, long long id)
{
    outbox_reader r;
    outbox_event ev;
    nova_err err;
    int rc = outbox_read_one(db, &r, id, &ev, &err);
    if (!rc) {
        print_event(&ev);
        if (ev.origin) printf("    caused by socket %s\n", ev.origin);
    } else if (rc == ERR_NOT_FOUND) {
        printf("no event #%lld (never written, or pruned)\n", id);
    }
    outbox_read_end(&r);
    return rc ? 1 : 0;
}

static volatile sig_atomic_t tail_stop;

static void on_tail_signal(int sig)
{
    (void)sig;
    tail_stop = 1;
}

/* The last 10 events, then (follow) every new one as it commits. */
static int outbox_tail(nova_db *db, bool follow)
{
    if (follow) {
        signal(SIGINT, on_tail_signal);
        signal(SIGTERM, on_tail_signal);
    }
    outbox_reader r;
    nova_err err;
    if (outbox_read_newest(db, &r, 10, NULL, &err)) return 1;
    long long last = print_events(&r, 0, NULL);
    fflush(stdout);
    if (last < 0) return 1;
    if (!follow) return 0;
    if (!last) {
        int64_t oldest, newest;
        if (outbox_bounds(db, &oldest, &newest, &err)) return 1;
        last = newest;
    }
    while (!tail_stop) {
        if (outbox_read(db, &r, last, 0, 1000, NULL, &err)) return 1;
        last = print_events(&r, last, NULL);
        fflush(stdout);
        if (last < 0) return 1;
        usleep(200000);
    }
    return 0;
}

static int outbox_prune_cmd(nova_db *db, const nova_config *cfg, long long older_than)
{
    double before = nova_now() - (double)(older_than >= 0 ? older_than : cfg->outbox_retention);
    long long total = 0;
    nova_err err;
    for (;;) {
        int deleted;
        if (outbox_prune(db, before, 500, &deleted, &err)) {
            fprintf(stderr, "nova-admin: prune failed: %s\n", err.msg);
            return 1;
        }
        total += deleted;
        if (deleted < 500) break;
        usleep(1000); /* let writers in between batches */
    }
    printf("pruned %lld events\n", total);
    return 0;
}

static int cmd_outbox(const nova_config *cfg, int argc, char **argv)
{
    const char *sub = argc > 0 && strncmp(argv[0], "--", 2) ? argv[0] : NULL;
    if (sub) {
        nova_db *db = open_current(cfg);
        if (!db) return 1;
        int rc = 2;
        long long n = -1;
        if (!strcmp(sub, "stats") && argc == 1) {
            rc = print_outbox_stats(db);
        } else if (!strcmp(sub, "tail") && (argc == 1 || (argc == 2 && !strcmp(argv[1], "-f")))) {
            rc = outbox_tail(db, argc == 2);
        } else if (!strcmp(sub, "show") && argc == 2 && !parse_long(argv[1], 1, &n)) {
            rc = outbox_show(db, n);
        } else if (!strcmp(sub, "prune") &&
                   (argc == 1 || (argc == 3 && !strcmp(argv[1], "--older-than") &&
                                  !parse_long(argv[2], 0, &n)))) {
            rc = outbox_prune_cmd(db, cfg, n);
        } else {
            fprintf(stderr, "nova-admin outbox: bad arguments (see --help)\n");
        }
        db_close(db);
        return rc;
    }
    long long since = -1, limit = 50;
    const char *action = NULL;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(arg, "--since") && val && !parse_long(val, 0, &since))
            i++;
        else if (!strcmp(arg, "--limit") && val && !parse_long(val, 1, &limit))
            i++;
        else if (!strcmp(arg, "--action") && val)
            action = argv[++i];
        else {
            fprintf(stderr, "nova-admin outbox: bad argument %s (see --help)\n", arg);
            return 2;
        }
    }
    nova_db *db = open_current(cfg);
    if (!db) return 1;
    outbox_reader r;
    nova_err err;
    int rows = 0;
    long long last = -1;
    if (!(since >= 0 ? outbox_read(db, &r, since, 0, (long)limit, action, &err)
                     : outbox_read_newest(db, &r, (long)limit, action, &err)))
        last = print_events(&r, 0, &rows);
    if (last >= 0 && !rows) printf("no events\n");
    db_close(db);
    return last < 0 ? 1 : 0;
}

static void print_session(void *ctx, const session_row *s)
{
    const nova_config *cfg = ctx;
    char created[40], seen[40], idle[40], expires[40];
    format_time(s->created_at, created, sizeof created);
    format_time(s->last_seen, seen, sizeof seen);
    format_time(s->last_seen + (double)cfg->session_idle, idle, sizeof idle);
    format_time(s->expires_at, expires, sizeof expires);
    printf("%-8lld %-32s %-24s %-24s %-24s %s\n", (long long)s->id, s->user_name, created, seen,
           idle, expires);
}

static int cmd_sessions(const nova_config *cfg, int argc, char **argv)
{
    const char *user = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--user") && i + 1 < argc) {
            user = argv[++i];
        } else {
            fprintf(stderr, "nova-admin sessions: bad argument %s (see --help)\n", argv[i]);
            return 2;
        }
    }
    nova_db *db = open_current(cfg);
    if (!db) return 1;
    printf("%-8s %-32s %-24s %-24s %-24s %s\n", "id", "user", "created", "last seen", "idle expiry",
           "absolute expiry");
    nova_err err;
    int rc = session_list(db, user, 0, print_session, (void *)cfg, &err);
    db_close(db);
    return rc ? 1 : 0;
}

/* The operator's new password: from the terminal without echo (twice), or
 * the first line of stdin when it is not a terminal. 0, or -1 (said why). */
static int read_password(char *out, size_t size)
{
    bool tty = isatty(STDIN_FILENO);
    struct termios saved, quiet;
    for (int round = 0; round < (tty ? 2 : 1); round++) {
        char *buf = round ? malloc(size) : out;
        if (!buf) return -1;
        if (tty) {
            fprintf(stderr, round ? "again: " : "password: ");
            tcgetattr(STDIN_FILENO, &saved);
            quiet = saved;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        }
        bool got = fgets(buf, (int)size, stdin) != NULL;
        if (tty) {
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
            fputc('\n', stderr);
        }
        size_t len = got ? strlen(buf) : 0;
        if (len && buf[len - 1] == '\n') buf[--len] = '\0';
        if (len && buf[len - 1] == '\r') buf[--len] = '\0';
        bool same = !round || !strcmp(buf, out);
        if (round) {
            sodium_memzero(buf, size);
            free(buf);
        }
        if (!got || !same) {
            fprintf(stderr, "nova-admin operator: %s\n",
                    got ? "the passwords differ" : "no password given (on stdin)");
            return -1;
        }
    }
    if (strlen(out) < OPERATOR_PASSWORD_MIN) {
        fprintf(stderr, "nova-admin operator: the password needs at least %d characters\n",
                OPERATOR_PASSWORD_MIN);
        return -1;
    }
    return 0;
}

static void print_operator(void *ctx, const operator_row *op)
{
    (void)ctx;
    char created[40];
    format_time(op->created_at, created, sizeof created);
    printf("%-24s %-24s %lld\n", op->name, created, op->sessions);
}

/* operator add NAME | remove NAME | list */
static int cmd_operator(const nova_config *cfg, int argc, char **argv)
{
    const char *sub = argc > 0 ? argv[0] : "";
    bool named = argc == 2 && (!strcmp(sub, "add") || !strcmp(sub, "remove"));
    if (!named && !(argc == 1 && !strcmp(sub, "list"))) {
        fprintf(stderr, "nova-admin operator: add NAME, remove NAME or list (see --help)\n");
        return 2;
    }
    nova_err err;
    if (named && operator_name_check(argv[1], &err)) {
        fprintf(stderr, "nova-admin operator: %s\n", err.msg);
        return 2;
    }
    char password[1024], hash[crypto_pwhash_STRBYTES];
    if (!strcmp(sub, "add")) {
        if (crypto_init()) {
            fprintf(stderr, "nova-admin operator: libsodium cannot be initialised\n");
            return 1;
        }
        if (read_password(password, sizeof password)) return 1;
        int failed = password_hash(cfg, password, hash);
        sodium_memzero(password, sizeof password);
        if (failed) {
            fprintf(stderr, "nova-admin operator: cannot hash the password (out of memory)\n");
            return 1;
        }
    }
    nova_db *db = open_current(cfg);
    if (!db) return 1;
    int rc;
    if (!strcmp(sub, "list")) {
        printf("%-24s %-24s %s\n", "operator", "created", "console sessions");
        rc = operator_list(db, print_operator, NULL, &err);
    } else if (!(rc = db_begin(db, &err))) {
        rc = !strcmp(sub, "add") ? operator_add(db, argv[1], hash, &err)
                                 : operator_remove(db, argv[1], &err);
        if (!rc) rc = db_commit(db, &err);
        if (rc) db_rollback(db);
    }
    if (rc)
        fprintf(stderr, "nova-admin operator: %s\n", err.msg);
    else if (strcmp(sub, "list"))
        printf("%s operator %s\n", !strcmp(sub, "add") ? "added" : "removed", argv[1]);
    db_close(db);
    return rc ? 1 : 0;
}
/* [ext] attachments (docs/API.md): unsent uploads past their expiry, and
 * the files no row names. */
static int cmd_attachments_gc(const nova_config *cfg, int argc, char **argv)
{
    double grace = 3600;
    for (int k = 0; k < argc; k++) {
        char *end;
        if (!strcmp(argv[k], "--grace") && k + 1 < argc) {
            grace = strtod(argv[++k], &end);
            if (*end || grace < 0) {
                fprintf(stderr, "nova-admin: --grace takes seconds\n");
                return 2;
            }
        } else {
            fprintf(stderr, "nova-admin: attachments-gc [--grace SECONDS]\n");
            return 2;
        }
    }
    nova_db *db = open_current(cfg);
    if (!db) return 1;
    nova_err err;
    long rows, files;
    int rc = attachment_gc(db, cfg, grace, &rows, &files, &err);
    db_close(db);
    if (rc) {
        fprintf(stderr, "nova-admin: attachments-gc: %s\n", err.msg);
        return 1;
    }
    printf("removed %ld unsent attachments, %ld files\n", rows, files);
    return 0;
}

int main(int argc, char **argv)
{
    nova_config cfg;
    log_init("nova-admin", LOG_ERROR);
    int i;
    int start = config_init(&cfg, "nova-admin", argc, argv, usage, &i);
    if (start) return start == 1 ? 0 : 2;
    log_set_json(!strcmp(cfg.log_format, "json"));
    int rc = 2;
    const char *cmd = i < argc ? argv[i] : NULL;
    int rest_argc = i < argc ? argc - i - 1 : 0;
    char **rest = argv + i + 1;
    if (!cmd) {
        usage(stderr);
    } else if (!strcmp(cmd, "help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        rc = 0;
    } else if (!strcmp(cmd, "migrate")) {
        rc = cmd_migrate(&cfg);
    } else if (!strcmp(cmd, "version")) {
        rc = cmd_version(&cfg);
    } else if (!strcmp(cmd, "outbox")) {
        rc = cmd_outbox(&cfg, rest_argc, rest);
    } else if (!strcmp(cmd, "operator")) {
        rc = cmd_operator(&cfg, rest_argc, rest);
    } else if (!strcmp(cmd, "sessions")) {
        rc = cmd_sessions(&cfg, rest_argc, rest);
    } else if (!strcmp(cmd, "check")) {
        rc = cmd_check(&cfg, rest_argc, rest);
    } else if (!strcmp(cmd, "backup")) {
        rc = cmd_backup(&cfg, rest_argc, rest);
    } else if (!strcmp(cmd, "copy")) {
        rc = cmd_copy(&cfg, rest_argc, rest);
    } else if (!strcmp(cmd, "attachments-gc")) {
        rc = cmd_attachments_gc(&cfg, rest_argc, rest);
    } else {
        fprintf(stderr, "nova-admin: unknown command %s (see --help)\n", cmd);
    }
    config_free(&cfg);
    return rc;
}
