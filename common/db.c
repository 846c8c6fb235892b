/* db.c - SQLite connection, statement cache and transactions. */
#include "db.h"

#include <sqlite3.h>

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "log.h"

struct db_stmt_slot {
    const char *key;
    sqlite3_stmt *stmt;
};

double nova_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

nova_db *db_open(const nova_config *cfg, nova_err *err)
{
    nova_db *db = calloc(1, sizeof *db);
    if (!db) {
        nova_fail(err, ERR_INTERNAL, "out of memory");
        return NULL;
    }
    db->cfg = cfg;
    int rc =
        sqlite3_open_v2(cfg->db_path, &db->sql,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        log_error("cannot open database %s: %s", cfg->db_path,
                  db->sql ? sqlite3_errmsg(db->sql) : sqlite3_errstr(rc));
        nova_fail(err, ERR_UNAVAILABLE, "database unavailable");
        db_close(db);
        return NULL;
    }
    sqlite3_extended_result_codes(db->sql, 1);
    db_set_busy_timeout(db, (int)cfg->busy_timeout_ms);
    /* journal_mode=WAL needs a write lock the first time; the busy timeout
     * above covers concurrent openers. */
    const char *pragmas = !strcmp(cfg->synchronous, "FULL")
                              ? "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; "
                                "PRAGMA synchronous=FULL;"
                              : "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; "
                                "PRAGMA synchronous=NORMAL;";
    if (db_exec_script(db, pragmas, err)) {
        db_close(db);
        return NULL;
    }
    return db;
}

void db_close(nova_db *db)
{
    if (!db) return;
    for (size_t i = 0; i < db->cache_cap; i++)
        if (db->cache[i].stmt) sqlite3_finalize(db->cache[i].stmt);
    free(db->cache);
    if (db->sql) sqlite3_close(db->sql);
    free(db);
}

static size_t slot_of(const char *key, size_t cap)
{
    uintptr_t h = (uintptr_t)key;
    h ^= h >> 17;
    h *= 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 7) & (cap - 1);
}

static int cache_grow(nova_db *db)
{
    size_t cap = db->cache_cap ? db->cache_cap * 2 : 256;
    struct db_stmt_slot *slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < db->cache_cap; i++) {
        if (!db->cache[i].key) continue;
        size_t j = slot_of(db->cache[i].key, cap);
        while (slots[j].key)
            j = (j + 1) & (cap - 1);
        slots[j] = db->cache[i];
    }
    free(db->cache);
    db->cache = slots;
    db->cache_cap = cap;
    return 0;
}

sqlite3_stmt *db_prepare(nova_db *db, const char *sql)
{
    if (db->cache_count * 2 >= db->cache_cap && cache_grow(db)) return NULL;
    size_t j = slot_of(sql, db->cache_cap);
    while (db->cache[j].key && db->cache[j].key != sql)
        j = (j + 1) & (db->cache_cap - 1);
    if (db->cache[j].key) {
        sqlite3_stmt *st = db->cache[j].stmt;
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return st;
    }
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(db->sql, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK) {
        log_error("prepare failed: %s", sqlite3_errmsg(db->sql));
        return NULL;
    }
    db->cache[j].key = sql;
    db->cache[j].stmt = st;
    db->cache_count++;
    return st;
}

void db_done(sqlite3_stmt *st)
{
    if (st) sqlite3_reset(st);
}

int db_fail(nova_db *db, nova_err *err)
{
    int code = sqlite3_extended_errcode(db->sql);
    log_error("database error %d: %s", code, sqlite3_errmsg(db->sql));
    switch (code & 0xff) {
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_PROTOCOL:
        return nova_fail(err, ERR_UNAVAILABLE, "storage temporarily unavailable, try again");
    default:
        return nova_fail(err, ERR_INTERNAL, "internal error");
    }
}

int db_exec_script(nova_db *db, const char *sql, nova_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db->sql, sql, NULL, NULL, &msg) != SQLITE_OK) {
        sqlite3_free(msg);
        return db_fail(db, err);
    }
    return 0;
}

int db_exec_done(nova_db *db, sqlite3_stmt *st, nova_err *err)
{
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return db_fail(db, err);
    return 0;
}

static const char SQL_BEGIN_IMMEDIATE[] = "BEGIN IMMEDIATE";
static const char SQL_BEGIN_DEFERRED[] = "BEGIN DEFERRED";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";

int db_begin(nova_db *db, nova_err *err)
{
    /* The busy timeout makes BEGIN IMMEDIATE wait for the lock; a few
     * extra tries cover the rare BUSY that bypasses the handler. */
    for (int attempt = 0;; attempt++) {
        sqlite3_stmt *st = db_prepare(db, SQL_BEGIN_IMMEDIATE);
        if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc == SQLITE_DONE) break;
        if ((rc & 0xff) != SQLITE_BUSY || attempt >= 3) return db_fail(db, err);
        usleep(1000u << attempt);
    }
    db->in_write = true;
    return 0;
}

void db_set_busy_timeout(nova_db *db, int ms)
{
    db->busy_ms = ms;
    sqlite3_busy_timeout(db->sql, ms);
}

int db_begin_nowait(nova_db *db, bool *busy, nova_err *err)
{
    *busy = false;
    sqlite3_stmt *st = db_prepare(db, SQL_BEGIN_IMMEDIATE);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    /* The busy handler would make BEGIN wait: off for this one step. */
    sqlite3_busy_timeout(db->sql, 0);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_busy_timeout(db->sql, db->busy_ms);
    if (rc == SQLITE_DONE) {
        db->in_write = true;
        return 0;
    }
    if ((rc & 0xff) == SQLITE_BUSY) {
        *busy = true;
        return 0;
    }
    return db_fail(db, err);
}

int db_begin_read(nova_db *db, nova_err *err)
{
    return db_exec_done(db, db_prepare(db, SQL_BEGIN_DEFERRED), err);
}

int db_commit(nova_db *db, nova_err *err)
{
    int rc = db_exec_done(db, db_prepare(db, SQL_COMMIT), err);
    if (rc) {
        db_rollback(db);
        return rc;
    }
    db->in_write = false;
    return 0;
}

void db_rollback(nova_db *db)
{
    if (!sqlite3_get_autocommit(db->sql)) {
        sqlite3_stmt *st = db_prepare(db, SQL_ROLLBACK);
        if (st) {
            sqlite3_step(st);
            sqlite3_reset(st);
        }
    }
    db->in_write = false;
}

int db_bind_text(sqlite3_stmt *st, int idx, const char *s)
{
    return sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT);
}

int idlist_push(idlist *l, int64_t id)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        int64_t *v = realloc(l->v, cap * sizeof *v);
        if (!v) return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = id;
    return 0;
}

bool idlist_contains(const idlist *l, int64_t id)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i] == id) return true;
    return false;
}

void idlist_free(idlist *l)
{
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

int db_collect_ids(nova_db *db, sqlite3_stmt *st, idlist *out, nova_err *err)
{
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (idlist_push(out, sqlite3_column_int64(st, 0))) {
            sqlite3_reset(st);
            return nova_fail(err, ERR_INTERNAL, "internal error");
        }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : db_fail(db, err);
}

/* --- the storage seam ----------------------------------------------------- */

int db_step(db_stmt *st)
{
    int rc = sqlite3_step(st);
    return rc == SQLITE_ROW ? DB_ROW : rc == SQLITE_DONE ? DB_DONE : -1;
}

void db_bind_i64(db_stmt *st, int idx, int64_t v)
{
    sqlite3_bind_int64(st, idx, v);
}

void db_bind_double(db_stmt *st, int idx, double v)
{
    sqlite3_bind_double(st, idx, v);
}

void db_bind_blob(db_stmt *st, int idx, const void *p, size_t len)
{
    sqlite3_bind_blob(st, idx, p, (int)len, SQLITE_TRANSIENT);
}

int db_param_count(db_stmt *st)
{
    return sqlite3_bind_parameter_count(st);
}

int64_t db_col_i64(db_stmt *st, int col)
{
    return sqlite3_column_int64(st, col);
}

double db_col_double(db_stmt *st, int col)
{
    return sqlite3_column_double(st, col);
}

const char *db_col_text(db_stmt *st, int col)
{
    return (const char *)sqlite3_column_text(st, col);
}

const void *db_col_blob(db_stmt *st, int col, size_t *len)
{
    const void *p = sqlite3_column_blob(st, col);
    *len = (size_t)sqlite3_column_bytes(st, col);
    return p;
}

bool db_col_is_null(db_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL;
}

int64_t db_last_insert_id(nova_db *db)
{
    return sqlite3_last_insert_rowid(db->sql);
}

long db_changes(nova_db *db)
{
    return sqlite3_changes(db->sql);
}

const char *db_error_text(nova_db *db)
{
    return sqlite3_errmsg(db->sql);
}

bool db_last_was_busy(nova_db *db)
{
    int code = sqlite3_errcode(db->sql) & 0xff;
    return code == SQLITE_BUSY || code == SQLITE_LOCKED;
}

void db_autocheckpoint(nova_db *db, bool on)
{
    sqlite3_wal_autocheckpoint(db->sql, on ? 1000 : 0);
}

nova_db *db_open_for_checkpoints(const nova_config *cfg)
{
    nova_db *db = calloc(1, sizeof *db);
    if (!db) return NULL;
    db->cfg = cfg;
    if (sqlite3_open_v2(cfg->db_path, &db->sql, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        db_close(db);
        return NULL;
    }
    return db;
}

void db_checkpoint(nova_db *db)
{
    int rc = sqlite3_wal_checkpoint_v2(db->sql, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        log_error("checkpoint failed: %s", sqlite3_errmsg(db->sql));
}

static const char SQL_BACKUP[] = "VACUUM INTO ?";

int db_backup(nova_db *db, const char *path, nova_err *err)
{
    if (access(path, F_OK) == 0)
        return nova_fail(err, ERR_CONFLICT, "%s exists already: choose a new file", path);
    db_stmt *st = db_prepare(db, SQL_BACKUP);
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    db_bind_text(st, 1, path);
    return db_exec_done(db, st, err);
}
