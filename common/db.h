/* db.h - one SQLite connection per process, with its statement cache.
 *
 * Statements are prepared once per process from SQL text kept as named
 * constants next to the code that runs it (the cache is keyed by the
 * constant's address), and are handed out reset with bindings cleared.
 * Callers must sqlite3_reset() a statement when done with it (db_done),
 * so that no read transaction outlives its use.
 *
 * Writes happen inside db_begin()/db_commit() (BEGIN IMMEDIATE): every
 * change and the outbox events it causes commit together or not at all. */
#ifndef NOVA_DB_H
#define NOVA_DB_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "err.h"

typedef struct nova_db nova_db;

struct nova_db {
    sqlite3 *sql;
    const nova_config *cfg;
    struct db_stmt_slot *cache;
    size_t cache_cap, cache_count;
    bool in_write; /* a write transaction is open */
    int busy_ms;   /* how long a statement waits for a lock (db_set_busy_timeout) */
};

/* The transaction an adapter runs a route or a socket action in. */
enum db_tx {
    TX_NONE,  /* none: the action touches no table (ping) */
    TX_READ,  /* one read snapshot: every query sees one state */
    TX_WRITE, /* BEGIN IMMEDIATE: check, change, emit events, build the view */
};

/* Open (creating if needed) the database of cfg->db_path and apply the
 * connection pragmas (WAL, foreign keys, busy timeout, synchronous).
 * Does not check the schema version: see migrate.h. */
nova_db *db_open(const nova_config *cfg, nova_err *err);
void db_close(nova_db *db);

/* The cached statement for sql (a constant string), reset and unbound;
 * NULL if it cannot be prepared (logged). */
sqlite3_stmt *db_prepare(nova_db *db, const char *sql);

/* Reset a statement after use (NULL is fine). It returns nothing: it
 * exists to make the release visible at every call site. */
void db_done(sqlite3_stmt *st);

/* Transactions. db_begin takes the write lock (BEGIN IMMEDIATE);
 * db_begin_read opens a read snapshot (BEGIN DEFERRED) so that several
 * queries see one state. Both return 0 or a failure kind in err. */
int db_begin(nova_db *db, nova_err *err);
int db_begin_read(nova_db *db, nova_err *err);

/* How long statements wait for another connection's lock: the config's
 * busy timeout from db_open, 0 for an event loop that must never wait. */
void db_set_busy_timeout(nova_db *db, int ms);

/* Take the write lock only if it is free right now: 0 with *busy false
 * (a write transaction is open), 0 with *busy true (another connection
 * writes; nothing was started), or a failure kind. For an event loop that
 * must never wait (nova-realtime). */
int db_begin_nowait(nova_db *db, bool *busy, nova_err *err);
int db_commit(nova_db *db, nova_err *err);
void db_rollback(nova_db *db);

/* Record an unexpected SQLite failure: logs the SQLite message (never sent
 * to clients) and returns ERR_UNAVAILABLE for "storage unavailable"
 * conditions (disk full, read-only, I/O error, lock timeout) or
 * ERR_INTERNAL otherwise. */
int db_fail(nova_db *db, nova_err *err);

/* Execute a statement that returns no rows; 0 or a failure kind. */
int db_exec_done(nova_db *db, sqlite3_stmt *st, nova_err *err);

/* Run a fixed SQL script (no parameters, several statements). */
int db_exec_script(nova_db *db, const char *sql, nova_err *err);

/* A growable list of ids. */
typedef struct idlist {
    int64_t *v;
    size_t n, cap;
} idlist;

/* Append; 0 or -1 when out of memory. */
int idlist_push(idlist *l, int64_t id);
bool idlist_contains(const idlist *l, int64_t id);
void idlist_free(idlist *l);

/* Step st (already bound) to its end, appending column 0 of every row to
 * out, then reset it. 0 or a failure kind. */
int db_collect_ids(nova_db *db, sqlite3_stmt *st, idlist *out, nova_err *err);

/* Current time as UNIX seconds with microseconds. */
double nova_now(void);

/* Bind a NUL-free UTF-8 string (length in bytes). */
int db_bind_text(sqlite3_stmt *st, int idx, const char *s);

#endif
