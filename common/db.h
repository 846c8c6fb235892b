/* db.h - the storage seam: one connection per process, with its statement
 * cache, transactions, and the only functions through which the rest of
 * Nova binds, steps and reads statements (SQLite is the engine today).
 *
 * Statements are prepared once per process from SQL text kept as named
 * constants next to the code that runs it (the cache is keyed by the
 * constant's address), and are handed out reset with bindings cleared.
 * Callers must release a statement when done with it (db_done),
 * so that no read transaction outlives its use.
 *
 * Writes happen inside db_begin()/db_commit() (BEGIN IMMEDIATE): every
 * change and the outbox events it causes commit together or not at all. */
#ifndef NOVA_DB_H
#define NOVA_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"

typedef struct nova_db nova_db;

/* A prepared statement of the engine. Domain code only ever uses it
 * through the db_* functions below. */
typedef struct db_stmt db_stmt;

/* The engines: SQLite (a file path) and PostgreSQL (a postgresql:// URI). */
enum db_kind { DB_SQLITE, DB_POSTGRES };

struct nova_db {
    const struct db_engine *engine;
    enum db_kind kind;
    void *conn; /* the engine's connection: db_*.c only */
    const nova_config *cfg;
    struct db_stmt_slot *cache;
    size_t cache_cap, cache_count;
    bool in_write;     /* a write transaction is open */
    int busy_ms;       /* how long a statement waits for a lock (db_set_busy_timeout) */
    unsigned epoch;    /* PostgreSQL: bumped when the connection is made anew */
    double retry_at;   /* PostgreSQL: no reconnect attempt before this time */
};

/* The transaction an adapter runs a route or a socket action in. */
enum db_tx {
    TX_NONE,  /* none: the action touches no table (ping) */
    TX_READ,  /* one read snapshot: every query sees one state */
    TX_WRITE, /* the write lock: check, change, emit events, build the view */
};

/* Which engine a database setting names: a postgresql:// or postgres://
 * URI is PostgreSQL, anything else a SQLite file. */
enum db_kind db_kind_of(const char *db_setting);

/* Open the database of cfg->db_path. SQLite: create the file if needed
 * and apply the connection pragmas (WAL, foreign keys, busy timeout,
 * synchronous). PostgreSQL: connect (the URI's parameters apply) and set
 * the session's lock timeout (durability is the server's synchronous_commit).
 * Does not check the schema version: see migrate.h. A PostgreSQL
 * connection that breaks later is made anew by the next transaction. */
nova_db *db_open(const nova_config *cfg, nova_err *err);
void db_close(nova_db *db);

/* The cached statement for sql (a constant string), reset and unbound;
 * NULL if it cannot be prepared (logged). SQL is written for SQLite with
 * ? or ?N parameters; on PostgreSQL they become $N. */
db_stmt *db_prepare(nova_db *db, const char *sql);

/* The same for a query that needs a dialect of its own on PostgreSQL:
 * sqlite_sql or postgres_sql by the engine (both constants). */
db_stmt *db_prepare_for(nova_db *db, const char *sqlite_sql, const char *postgres_sql);

/* Reset a statement after use (NULL is fine). It returns nothing: it
 * exists to make the release visible at every call site. */
void db_done(db_stmt *st);

/* --- the storage seam: binding, stepping, reading columns ---------------
 * Parameters and columns are numbered as in SQL (?1 is 1; column 0 is the
 * first). Text binds are copied; NULL text binds SQL NULL. */
enum { DB_DONE = 0, DB_ROW = 1 }; /* db_step: or a negative value on failure (db_fail) */
int db_step(db_stmt *st);
void db_bind_i64(db_stmt *st, int idx, int64_t v);
void db_bind_double(db_stmt *st, int idx, double v);
void db_bind_blob(db_stmt *st, int idx, const void *p, size_t len);
int db_param_count(db_stmt *st);
int64_t db_col_i64(db_stmt *st, int col);
double db_col_double(db_stmt *st, int col);
const char *db_col_text(db_stmt *st, int col); /* NULL for SQL NULL */
const void *db_col_blob(db_stmt *st, int col, size_t *len);
bool db_col_is_null(db_stmt *st, int col);
/* Run an INSERT ... RETURNING id (bound) and give the id; 0 or a failure
 * kind. */
int db_insert_id(nova_db *db, db_stmt *st, int64_t *id, nova_err *err);
/* The rows the last statement changed (for "already gone" answers). */
long db_changes(nova_db *db);
/* The engine's message of the last failure (for logs, never for clients),
 * and whether it was another connection holding the lock. */
const char *db_error_text(nova_db *db);
bool db_last_was_busy(nova_db *db);

/* Transactions. db_begin takes the write lock: SQLite's BEGIN IMMEDIATE;
 * on PostgreSQL a transaction-scoped advisory lock that every writer of
 * every host takes, so that writers run one at a time exactly as on
 * SQLite (and outbox ids become visible in commit order: DESIGN.md
 * "Scaling out"). db_begin_read opens a read snapshot (BEGIN DEFERRED;
 * REPEATABLE READ) so that several queries see one state. Both return 0
 * or a failure kind in err. */
int db_begin(nova_db *db, nova_err *err);
int db_begin_read(nova_db *db, nova_err *err);

/* How long statements wait for another connection's lock: the config's
 * busy timeout from db_open, 0 for an event loop that must never wait. */
void db_set_busy_timeout(nova_db *db, int ms);

/* Copy the whole database, consistent as of one moment, into a new file at
 * path while others keep reading and writing (one read snapshot; writers
 * are not blocked). The file must not exist yet. 0, ERR_CONFLICT when it
 * exists, or another kind. SQLite only (VACUUM INTO): on PostgreSQL
 * ERR_INVALID, and nova-admin backup copies row by row (admin/copy.c). */
int db_backup(nova_db *db, const char *path, nova_err *err);

/* Engine facts the adapters need. The schema version (0 for a new
 * database, -1 on error) and setting it inside a migration's transaction;
 * a counter that moves when another connection commits (SQLite's
 * data_version), or -1 when the engine has none (then read anyway);
 * wake the outbox's listeners when the open transaction commits
 * (PostgreSQL: NOTIFY; SQLite: nothing, the writer sends a datagram). */
int db_schema_version(nova_db *db);
int db_set_schema_version(nova_db *db, int version, nova_err *err);
int64_t db_data_version(nova_db *db);
int db_wake_listeners(nova_db *db, nova_err *err); /* once per transaction */

/* PostgreSQL's wake-up: a connection of its own that LISTENs for the
 * outbox's NOTIFY. NULL on SQLite or when it cannot connect (try again
 * later). db_listener_fd is the socket to watch; db_listener_drain
 * consumes what arrived: 1 when woken, 0 when not, -1 when the connection
 * is gone (close it and listen anew). */
nova_db *db_listener_open(const nova_config *cfg);
int db_listener_fd(nova_db *db);
int db_listener_drain(nova_db *db);

/* The SQLite handle of a SQLite database, for the fuzz harnesses' undo
 * log only; NULL on PostgreSQL. */
struct sqlite3 *db_sqlite_handle(nova_db *db);
struct sqlite3_stmt *db_sqlite_stmt(db_stmt *st);

/* WAL upkeep for a writer that must not pause for it (nova-realtime's
 * loop): turn its connection's automatic checkpoints off, and run passive
 * checkpoints (they never wait for a lock) from another connection. */
void db_autocheckpoint(nova_db *db, bool on);
/* A bare connection to cfg's database for db_checkpoint only (none of
 * db_open's settings); NULL when it cannot be opened. */
nova_db *db_open_for_checkpoints(const nova_config *cfg);
void db_checkpoint(nova_db *db);

/* Take the write lock only if it is free right now: 0 with *busy false
 * (a write transaction is open), 0 with *busy true (another connection
 * writes; nothing was started), or a failure kind. For an event loop that
 * must never wait (nova-realtime). */
int db_begin_nowait(nova_db *db, bool *busy, nova_err *err);
int db_commit(nova_db *db, nova_err *err);
void db_rollback(nova_db *db);

/* One savepoint inside a write transaction (not nested): a step that
 * fails is undone alone, the transaction and the steps before it kept.
 * DB_SAVE starts it, DB_RELEASE keeps the step, DB_UNDO rolls the step
 * back (and ends the savepoint). 0 or a failure kind. */
enum db_savepoint { DB_SAVE, DB_RELEASE, DB_UNDO };
int db_savepoint(nova_db *db, enum db_savepoint op, nova_err *err);

/* Record an unexpected engine failure: logs the engine's message (never
 * sent to clients) and returns ERR_UNAVAILABLE for "storage unavailable"
 * conditions (disk full, read-only, I/O error, lock timeout, PostgreSQL
 * gone or restarting) or ERR_INTERNAL otherwise. */
int db_fail(nova_db *db, nova_err *err);
/* How many failures db_fail has seen in this process: internal ones (500)
 * and the storage being unavailable (503). */
void db_error_totals(uint64_t *internal, uint64_t *unavailable);

/* Execute a statement that returns no rows; 0 or a failure kind. */
int db_exec_done(nova_db *db, db_stmt *st, nova_err *err);

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
int db_collect_ids(nova_db *db, db_stmt *st, idlist *out, nova_err *err);

/* Current time as UNIX seconds with microseconds. */
double nova_now(void);

/* Bind a NUL-free UTF-8 string (copied). */
void db_bind_text(db_stmt *st, int idx, const char *s);

#endif
