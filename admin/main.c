/* main.c - nova-admin: the operator's command line.
 *
 *   nova-admin migrate                       create or upgrade the database
 *   nova-admin outbox [--since ID] [--action NAME] [--limit N]
 *   nova-admin sessions [--user NAME]
 *
 * It reads the same NOVA_* settings and flags as the daemons (--db). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/db.h"
#include "../common/log.h"
#include "../common/migrate.h"

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
            "  sessions [--user NAME]\n"
            "                       list live sessions (never their tokens)\n"
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

static int cmd_version(const nova_config *cfg)
{
    nova_err err;
    nova_db *db = db_open(cfg, &err);
    if (!db) return 1;
    printf("database %d, build %d\n", migrate_db_version(db), migrate_latest_version());
    db_close(db);
    return 0;
}

static const char SQL_OUTBOX_SINCE[] =
    "SELECT id, created_at, action, recipients, session_id, request_id, data FROM outbox "
    "WHERE id > ?1 AND (?2 IS NULL OR action = ?2) ORDER BY id LIMIT ?3";
static const char SQL_OUTBOX_NEWEST[] =
    "SELECT * FROM (SELECT id, created_at, action, recipients, session_id, request_id, data "
    "FROM outbox WHERE (?2 IS NULL OR action = ?2) ORDER BY id DESC LIMIT ?3) ORDER BY id";

static int parse_long(const char *s, long long min, long long *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < min) return -1;
    *out = v;
    return 0;
}

static int cmd_outbox(const nova_config *cfg, int argc, char **argv)
{
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
    sqlite3_stmt *st = db_prepare(db, since >= 0 ? SQL_OUTBOX_SINCE : SQL_OUTBOX_NEWEST);
    if (!st) {
        db_close(db);
        return 1;
    }
    sqlite3_bind_int64(st, 1, since);
    if (action) db_bind_text(st, 2, action);
    sqlite3_bind_int64(st, 3, limit);
    int rc, rows = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char when[40];
        format_time(sqlite3_column_double(st, 1), when, sizeof when);
        printf("#%lld  %s  %-18s to users %s", (long long)sqlite3_column_int64(st, 0), when,
               (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3));
        if (sqlite3_column_type(st, 4) != SQLITE_NULL)
            printf(" (session %lld only)", (long long)sqlite3_column_int64(st, 4));
        if (sqlite3_column_int64(st, 5))
            printf(" (request %lld)", (long long)sqlite3_column_int64(st, 5));
        printf("\n    %s\n", (const char *)sqlite3_column_text(st, 6));
        rows++;
    }
    db_done(st);
    if (!rows) printf("no events\n");
    db_close(db);
    return rc == SQLITE_DONE ? 0 : 1;
}

static const char SQL_SESSIONS[] =
    "SELECT s.id, u.user_name, s.created_at, s.last_seen, s.expires_at FROM sessions s "
    "JOIN users u ON u.id = s.user_id WHERE ?1 IS NULL OR u.user_name = ?1 ORDER BY s.id";

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
    sqlite3_stmt *st = db_prepare(db, SQL_SESSIONS);
    if (!st) {
        db_close(db);
        return 1;
    }
    if (user) db_bind_text(st, 1, user);
    printf("%-8s %-32s %-24s %-24s %-24s %s\n", "id", "user", "created", "last seen", "idle expiry",
           "absolute expiry");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char created[40], seen[40], idle[40], expires[40];
        double last_seen = sqlite3_column_double(st, 3);
        format_time(sqlite3_column_double(st, 2), created, sizeof created);
        format_time(last_seen, seen, sizeof seen);
        format_time(last_seen + (double)cfg->session_idle, idle, sizeof idle);
        format_time(sqlite3_column_double(st, 4), expires, sizeof expires);
        printf("%-8lld %-32s %-24s %-24s %-24s %s\n", (long long)sqlite3_column_int64(st, 0),
               (const char *)sqlite3_column_text(st, 1), created, seen, idle, expires);
    }
    db_done(st);
    db_close(db);
    return rc == SQLITE_DONE ? 0 : 1;
}

int main(int argc, char **argv)
{
    nova_config cfg;
    if (config_load(&cfg)) return 2;
    log_init("nova-admin", LOG_ERROR);
    int i = 1;
    for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
        if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            config_free(&cfg);
            return 0;
        }
        int n = config_parse_flag(&cfg, argc, argv, &i);
        if (n != 1) {
            if (n == 0) fprintf(stderr, "nova-admin: unknown option %s (see --help)\n", argv[i]);
            config_free(&cfg);
            return 2;
        }
    }
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
    } else if (!strcmp(cmd, "sessions")) {
        rc = cmd_sessions(&cfg, rest_argc, rest);
    } else {
        fprintf(stderr, "nova-admin: unknown command %s (see --help)\n", cmd);
    }
    config_free(&cfg);
    return rc;
}
