/* db_sqlite.c - the SQLite engine of the storage seam (the embedded
 * default: one file, WAL, one writer at a time by BEGIN IMMEDIATE). */
#include <sqlite3.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db_engine.h"
#include "log.h"

typedef struct lite_stmt {
    db_stmt base;
    sqlite3_stmt *st;
} lite_stmt;

#define LITE(s) (((lite_stmt *)(s))->st)
#define CONN(db) ((sqlite3 *)(db)->conn)

static int lite_open(nova_db *db, nova_err *err)
{
    sqlite3 *conn = NULL;
    int rc = sqlite3_open_v2(db->cfg->db_path, &conn,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    db->conn = conn;
    if (rc != SQLITE_OK) {
        log_error("cannot open database %s: %s", db->cfg->db_path,
                  conn ? sqlite3_errmsg(conn) : sqlite3_errstr(rc));
        return nova_fail(err, ERR_UNAVAILABLE, "database unavailable");
    }
    sqlite3_extended_result_codes(conn, 1);
    /* journal_mode=WAL needs a write lock the first time; the busy timeout
     * covers concurrent openers. */
    sqlite3_busy_timeout(conn, (int)db->cfg->busy_timeout_ms);
    const char *pragmas = !strcmp(db->cfg->synchronous, "FULL")
                              ? "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; "
                                "PRAGMA synchronous=FULL;"
                              : "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; "
                                "PRAGMA synchronous=NORMAL;";
    return db_exec_script(db, pragmas, err);
}

static void lite_close(nova_db *db)
{
    sqlite3_close(CONN(db));
    db->conn = NULL;
}

static db_stmt *lite_prepare(nova_db *db, const char *sql)
{
    lite_stmt *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->base.db = db;
    if (sqlite3_prepare_v3(CONN(db), sql, -1, SQLITE_PREPARE_PERSISTENT, &s->st, NULL) !=
        SQLITE_OK) {
        log_error("prepare failed: %s", sqlite3_errmsg(CONN(db)));
        free(s);
        return NULL;
    }
    return &s->base;
}

static void lite_finalize(db_stmt *st)
{
    sqlite3_finalize(LITE(st));
    free(st);
}

static void lite_reset(db_stmt *st)
{
    sqlite3_reset(LITE(st));
    sqlite3_clear_bindings(LITE(st));
}

static int lite_step(db_stmt *st)
{
    int rc = sqlite3_step(LITE(st));
    return rc == SQLITE_ROW ? DB_ROW : rc == SQLITE_DONE ? DB_DONE : -1;
}

static void lite_bind_i64(db_stmt *st, int idx, int64_t v)
{
    sqlite3_bind_int64(LITE(st), idx, v);
}

static void lite_bind_double(db_stmt *st, int idx, double v)
{
    sqlite3_bind_double(LITE(st), idx, v);
}

static void lite_bind_text(db_stmt *st, int idx, const char *s)
{
    sqlite3_bind_text(LITE(st), idx, s, -1, SQLITE_TRANSIENT);
}

static void lite_bind_blob(db_stmt *st, int idx, const void *p, size_t len)
{
    sqlite3_bind_blob(LITE(st), idx, p, (int)len, SQLITE_TRANSIENT);
}

static int lite_param_count(db_stmt *st)
{
    return sqlite3_bind_parameter_count(LITE(st));
}

static int64_t lite_col_i64(db_stmt *st, int col)
{
    return sqlite3_column_int64(LITE(st), col);
}

static double lite_col_double(db_stmt *st, int col)
{
    return sqlite3_column_double(LITE(st), col);
}

static const char *lite_col_text(db_stmt *st, int col)
{
    return (const char *)sqlite3_column_text(LITE(st), col);
}

static const void *lite_col_blob(db_stmt *st, int col, size_t *len)
{
    const void *p = sqlite3_column_blob(LITE(st), col);
    *len = (size_t)sqlite3_column_bytes(LITE(st), col);
    return p;
}

static bool lite_col_is_null(db_stmt *st, int col)
{
    return sqlite3_column_type(LITE(st), col) == SQLITE_NULL;
}

static long lite_changes(nova_db *db)
{
    return sqlite3_changes(CONN(db));
}

static const char *lite_error_text(nova_db *db)
{
    return CONN(db) ? sqlite3_errmsg(CONN(db)) : "no connection";
}

static bool lite_last_was_busy(nova_db *db)
{
    int code = sqlite3_errcode(CONN(db)) & 0xff;
    return code == SQLITE_BUSY || code == SQLITE_LOCKED;
}

static bool lite_last_was_unavailable(nova_db *db)
{
    switch (sqlite3_extended_errcode(CONN(db)) & 0xff) {
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_PROTOCOL:
        return true;
    default:
        return false;
    }
}

static int lite_exec_script(nova_db *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(CONN(db), sql, NULL, NULL, &msg);
    sqlite3_free(msg);
    return rc == SQLITE_OK ? 0 : -1;
}

static const char SQL_BEGIN_IMMEDIATE[] = "BEGIN IMMEDIATE";
static const char SQL_BEGIN_DEFERRED[] = "BEGIN DEFERRED";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";
static const char SQL_SAVEPOINT[] = "SAVEPOINT nova_step";
static const char SQL_RELEASE[] = "RELEASE nova_step";
static const char SQL_ROLLBACK_TO[] = "ROLLBACK TO nova_step";

/* One step of a cached transaction-control statement: SQLite's code. */
static int lite_control(nova_db *db, const char *sql)
{
    db_stmt *st = db_prepare(db, sql);
    if (!st) return SQLITE_ERROR;
    int rc = sqlite3_step(LITE(st));
    sqlite3_reset(LITE(st));
    return rc;
}

static int lite_begin(nova_db *db)
{
    /* The busy timeout makes BEGIN IMMEDIATE wait for the lock; a few
     * extra tries cover the rare BUSY that bypasses the handler. */
    for (int attempt = 0;; attempt++) {
        int rc = lite_control(db, SQL_BEGIN_IMMEDIATE);
        if (rc == SQLITE_DONE) return 0;
        if ((rc & 0xff) != SQLITE_BUSY || attempt >= 3) return -1;
        usleep(1000u << attempt);
    }
}

static int lite_begin_nowait(nova_db *db, bool *busy)
{
    /* The busy handler would make BEGIN wait: off for this one step. */
    sqlite3_busy_timeout(CONN(db), 0);
    int rc = lite_control(db, SQL_BEGIN_IMMEDIATE);
    sqlite3_busy_timeout(CONN(db), db->busy_ms);
    if (rc == SQLITE_DONE) return 0;
    if ((rc & 0xff) == SQLITE_BUSY) {
        *busy = true;
        return 0;
    }
    return -1;
}

static int lite_begin_read(nova_db *db)
{
    return lite_control(db, SQL_BEGIN_DEFERRED) == SQLITE_DONE ? 0 : -1;
}

static int lite_commit(nova_db *db)
{
    return lite_control(db, SQL_COMMIT) == SQLITE_DONE ? 0 : -1;
}

static void lite_rollback(nova_db *db)
{
    if (!sqlite3_get_autocommit(CONN(db))) lite_control(db, SQL_ROLLBACK);
}

static int lite_savepoint(nova_db *db, enum db_savepoint op)
{
    if (op == DB_SAVE) return lite_control(db, SQL_SAVEPOINT) == SQLITE_DONE ? 0 : -1;
    if (op == DB_UNDO && lite_control(db, SQL_ROLLBACK_TO) != SQLITE_DONE) return -1;
    return lite_control(db, SQL_RELEASE) == SQLITE_DONE ? 0 : -1;
}

static void lite_set_busy_timeout(nova_db *db, int ms)
{
    sqlite3_busy_timeout(CONN(db), ms);
}

static const char SQL_USER_VERSION[] = "PRAGMA user_version";

static int lite_schema_version(nova_db *db)
{
    db_stmt *st = db_prepare(db, SQL_USER_VERSION);
    if (!st) return -1;
    int version = db_step(st) == DB_ROW ? (int)db_col_i64(st, 0) : -1;
    db_done(st);
    return version;
}

static int lite_set_schema_version(nova_db *db, int version)
{
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", version);
    return lite_exec_script(db, sql);
}

static const char SQL_DATA_VERSION[] = "PRAGMA data_version";

static int64_t lite_data_version(nova_db *db)
{
    db_stmt *st = db_prepare(db, SQL_DATA_VERSION);
    int64_t v = -1;
    if (st && db_step(st) == DB_ROW) v = db_col_i64(st, 0);
    db_done(st);
    return v;
}

static int lite_wake_listeners(nova_db *db)
{
    (void)db; /* the writer sends the wake datagram after commit */
    return 0;
}

const struct db_engine db_engine_sqlite = {
    .name = "sqlite",
    .open = lite_open,
    .close = lite_close,
    .prepare = lite_prepare,
    .finalize = lite_finalize,
    .reset = lite_reset,
    .step = lite_step,
    .bind_i64 = lite_bind_i64,
    .bind_double = lite_bind_double,
    .bind_text = lite_bind_text,
    .bind_blob = lite_bind_blob,
    .param_count = lite_param_count,
    .col_i64 = lite_col_i64,
    .col_double = lite_col_double,
    .col_text = lite_col_text,
    .col_blob = lite_col_blob,
    .col_is_null = lite_col_is_null,
    .changes = lite_changes,
    .error_text = lite_error_text,
    .last_was_busy = lite_last_was_busy,
    .last_was_unavailable = lite_last_was_unavailable,
    .exec_script = lite_exec_script,
    .begin = lite_begin,
    .begin_read = lite_begin_read,
    .begin_nowait = lite_begin_nowait,
    .commit = lite_commit,
    .rollback = lite_rollback,
    .set_busy_timeout = lite_set_busy_timeout,
    .schema_version = lite_schema_version,
    .set_schema_version = lite_set_schema_version,
    .data_version = lite_data_version,
    .wake_listeners = lite_wake_listeners,
    .savepoint = lite_savepoint,
};

/* --- SQLite only: WAL upkeep, the online copy, the fuzzers' handle ------- */

struct sqlite3 *db_sqlite_handle(nova_db *db)
{
    return db->kind == DB_SQLITE ? CONN(db) : NULL;
}

struct sqlite3_stmt *db_sqlite_stmt(db_stmt *st)
{
    return st->db->kind == DB_SQLITE ? LITE(st) : NULL;
}

void db_autocheckpoint(nova_db *db, bool on)
{
    if (db->kind == DB_SQLITE) sqlite3_wal_autocheckpoint(CONN(db), on ? 1000 : 0);
}

nova_db *db_open_for_checkpoints(const nova_config *cfg)
{
    if (db_kind_of(cfg->db_path) != DB_SQLITE) return NULL;
    nova_db *db = calloc(1, sizeof *db);
    if (!db) return NULL;
    db->cfg = cfg;
    db->kind = DB_SQLITE;
    db->engine = &db_engine_sqlite;
    sqlite3 *conn = NULL;
    int rc = sqlite3_open_v2(cfg->db_path, &conn, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    db->conn = conn;
    if (rc != SQLITE_OK) {
        db_close(db);
        return NULL;
    }
    return db;
}

void db_checkpoint(nova_db *db)
{
    int rc = sqlite3_wal_checkpoint_v2(CONN(db), NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        log_error("checkpoint failed: %s", sqlite3_errmsg(CONN(db)));
}

static const char SQL_BACKUP[] = "VACUUM INTO ?";

int db_backup(nova_db *db, const char *path, nova_err *err)
{
    if (db->kind != DB_SQLITE)
        return nova_fail(err, ERR_INVALID, "VACUUM INTO is SQLite's: copy with nova-admin copy");
    if (access(path, F_OK) == 0)
        return nova_fail(err, ERR_CONFLICT, "%s exists already: choose a new file", path);
    db_stmt *st = db_prepare(db, SQL_BACKUP);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_text(st, 1, path);
    return db_exec_done(db, st, err);
}
