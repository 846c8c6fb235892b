/* db.c - the storage seam: the statement cache, transactions and the
 * calls every module binds, steps and reads through, handed to the engine
 * of the database (db_sqlite.c or db_pg.c). */
#include "db.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "db_engine.h"
#include "log.h"

struct db_stmt_slot {
    const char *key;
    db_stmt *stmt;
};

double nova_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

enum db_kind db_kind_of(const char *setting)
{
    return !strncmp(setting, "postgresql://", 13) || !strncmp(setting, "postgres://", 11)
               ? DB_POSTGRES
               : DB_SQLITE;
}

static nova_db *db_new(const nova_config *cfg)
{
    nova_db *db = calloc(1, sizeof *db);
    if (!db) return NULL;
    db->cfg = cfg;
    db->kind = db_kind_of(cfg->db_path);
    db->engine = db->kind == DB_POSTGRES ? &db_engine_postgres : &db_engine_sqlite;
    return db;
}

nova_db *db_open(const nova_config *cfg, nova_err *err)
{
    nova_db *db = db_new(cfg);
    if (!db) {
        nova_fail(err, ERR_INTERNAL, "out of memory");
        return NULL;
    }
    if (db->engine->open(db, err)) {
        db_close(db);
        return NULL;
    }
    db_set_busy_timeout(db, (int)cfg->busy_timeout_ms);
    return db;
}

/* Forget every prepared statement (the connection that held them is
 * gone or going). */
static void cache_clear(nova_db *db)
{
    for (size_t i = 0; i < db->cache_cap; i++)
        if (db->cache[i].stmt) db->engine->finalize(db->cache[i].stmt);
    free(db->cache);
    db->cache = NULL;
    db->cache_cap = db->cache_count = 0;
}

void db_close(nova_db *db)
{
    if (!db) return;
    cache_clear(db);
    if (db->conn) db->engine->close(db);
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

db_stmt *db_prepare(nova_db *db, const char *sql)
{
    if (db->cache_count * 2 >= db->cache_cap && cache_grow(db)) return NULL;
    size_t j = slot_of(sql, db->cache_cap);
    while (db->cache[j].key && db->cache[j].key != sql)
        j = (j + 1) & (db->cache_cap - 1);
    if (db->cache[j].key) {
        db_stmt *st = db->cache[j].stmt;
        db->engine->reset(st);
        return st;
    }
    db_stmt *st = db->engine->prepare(db, sql);
    if (!st) return NULL;
    db->cache[j].key = sql;
    db->cache[j].stmt = st;
    db->cache_count++;
    return st;
}

db_stmt *db_prepare_for(nova_db *db, const char *sqlite_sql, const char *postgres_sql)
{
    return db_prepare(db, db->kind == DB_POSTGRES ? postgres_sql : sqlite_sql);
}

void db_done(db_stmt *st)
{
    if (st) st->db->engine->reset(st);
}

/* While the storage is away every request and poll fails the same way:
 * one line a second says so, with how many were not logged. */
static struct {
    double quiet_until;
    long unlogged;
} outage;

/* Failures of this process, for its metrics. */
static uint64_t failed_internal, failed_unavailable;

void db_error_totals(uint64_t *internal, uint64_t *unavailable)
{
    *internal = failed_internal;
    *unavailable = failed_unavailable;
}

int db_fail(nova_db *db, nova_err *err)
{
    if (!db->engine->last_was_unavailable(db)) {
        failed_internal++;
        log_error("database error: %s", db->engine->error_text(db));
        return nova_fail(err, ERR_INTERNAL, "internal error");
    }
    failed_unavailable++;
    double now = nova_now();
    if (now < outage.quiet_until) {
        outage.unlogged++;
    } else {
        if (outage.unlogged)
            log_error("storage unavailable: %s (and %ld more failures in the last second)",
                      db->engine->error_text(db), outage.unlogged);
        else
            log_error("storage unavailable: %s", db->engine->error_text(db));
        outage.quiet_until = now + 1;
        outage.unlogged = 0;
    }
    return nova_fail(err, ERR_UNAVAILABLE, "storage temporarily unavailable, try again");
}

int db_exec_script(nova_db *db, const char *sql, nova_err *err)
{
    return db->engine->exec_script(db, sql) ? db_fail(db, err) : 0;
}

int db_exec_done(nova_db *db, db_stmt *st, nova_err *err)
{
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    int rc = db_step(st);
    db_done(st);
    return rc < 0 ? db_fail(db, err) : 0;
}

int db_insert_id(nova_db *db, db_stmt *st, int64_t *id, nova_err *err)
{
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    int rc = db_step(st);
    if (rc == DB_ROW) *id = db_col_i64(st, 0);
    /* SQLite applies the change on the first step; stepping to the end
     * finishes the statement on both engines. */
    while (rc == DB_ROW)
        rc = db_step(st);
    db_done(st);
    return rc < 0 ? db_fail(db, err) : 0;
}

int db_begin(nova_db *db, nova_err *err)
{
    if (db->engine->begin(db)) return db_fail(db, err);
    db->in_write = true;
    return 0;
}

int db_begin_nowait(nova_db *db, bool *busy, nova_err *err)
{
    *busy = false;
    if (db->engine->begin_nowait(db, busy)) return db_fail(db, err);
    db->in_write = !*busy;
    return 0;
}

int db_begin_read(nova_db *db, nova_err *err)
{
    return db->engine->begin_read(db) ? db_fail(db, err) : 0;
}

int db_commit(nova_db *db, nova_err *err)
{
    if (db->engine->commit(db)) {
        int rc = db_fail(db, err);
        db_rollback(db);
        return rc;
    }
    db->in_write = false;
    return 0;
}

void db_rollback(nova_db *db)
{
    db->engine->rollback(db);
    db->in_write = false;
}

void db_set_busy_timeout(nova_db *db, int ms)
{
    db->busy_ms = ms;
    db->engine->set_busy_timeout(db, ms);
}

int db_schema_version(nova_db *db)
{
    return db->engine->schema_version(db);
}

int db_set_schema_version(nova_db *db, int version, nova_err *err)
{
    return db->engine->set_schema_version(db, version) ? db_fail(db, err) : 0;
}

int64_t db_data_version(nova_db *db)
{
    return db->engine->data_version(db);
}

int db_savepoint(nova_db *db, enum db_savepoint op, nova_err *err)
{
    assert(db->in_write);
    return db->engine->savepoint(db, op) ? db_fail(db, err) : 0;
}

int db_wake_listeners(nova_db *db, nova_err *err)
{
    return db->engine->wake_listeners(db) ? db_fail(db, err) : 0;
}

/* --- idlist ---------------------------------------------------------------- */

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

int db_collect_ids(nova_db *db, db_stmt *st, idlist *out, nova_err *err)
{
    if (!st) return nova_fail(err, ERR_INTERNAL, "internal error");
    int rc;
    while ((rc = db_step(st)) == DB_ROW) {
        if (idlist_push(out, db_col_i64(st, 0))) {
            db_done(st);
            return nova_fail(err, ERR_INTERNAL, "internal error");
        }
    }
    db_done(st);
    return rc == DB_DONE ? 0 : db_fail(db, err);
}

/* --- binding, stepping, reading: straight to the engine ------------------ */

int db_step(db_stmt *st)
{
    return st->db->engine->step(st);
}

void db_bind_i64(db_stmt *st, int idx, int64_t v)
{
    st->db->engine->bind_i64(st, idx, v);
}

void db_bind_double(db_stmt *st, int idx, double v)
{
    st->db->engine->bind_double(st, idx, v);
}

void db_bind_text(db_stmt *st, int idx, const char *s)
{
    st->db->engine->bind_text(st, idx, s);
}

void db_bind_blob(db_stmt *st, int idx, const void *p, size_t len)
{
    st->db->engine->bind_blob(st, idx, p, len);
}

int db_param_count(db_stmt *st)
{
    return st->db->engine->param_count(st);
}

int64_t db_col_i64(db_stmt *st, int col)
{
    return st->db->engine->col_i64(st, col);
}

double db_col_double(db_stmt *st, int col)
{
    return st->db->engine->col_double(st, col);
}

const char *db_col_text(db_stmt *st, int col)
{
    return st->db->engine->col_text(st, col);
}

const void *db_col_blob(db_stmt *st, int col, size_t *len)
{
    return st->db->engine->col_blob(st, col, len);
}

bool db_col_is_null(db_stmt *st, int col)
{
    return st->db->engine->col_is_null(st, col);
}

long db_changes(nova_db *db)
{
    return db->engine->changes(db);
}

const char *db_error_text(nova_db *db)
{
    return db->engine->error_text(db);
}

bool db_last_was_busy(nova_db *db)
{
    return db->engine->last_was_busy(db);
}
