/* db_engine.h - what each storage engine gives the seam in db.c (for
 * db.c, db_sqlite.c and db_pg.c only).
 *
 * An engine is a table of functions. Its statements embed struct db_stmt
 * as their first member, so that the seam's per-statement calls find the
 * engine from the statement alone. */
#ifndef NOVA_DB_ENGINE_H
#define NOVA_DB_ENGINE_H

#include "db.h"

struct db_stmt {
    nova_db *db;
};

struct db_engine {
    const char *name;
    int (*open)(nova_db *db, nova_err *err); /* db->conn from db->cfg->db_path */
    void (*close)(nova_db *db);
    db_stmt *(*prepare)(nova_db *db, const char *sql); /* a new statement */
    void (*finalize)(db_stmt *st);
    void (*reset)(db_stmt *st); /* rewound, bindings cleared */
    int (*step)(db_stmt *st);
    void (*bind_i64)(db_stmt *st, int idx, int64_t v);
    void (*bind_double)(db_stmt *st, int idx, double v);
    void (*bind_text)(db_stmt *st, int idx, const char *s);
    void (*bind_blob)(db_stmt *st, int idx, const void *p, size_t len);
    int (*param_count)(db_stmt *st);
    int64_t (*col_i64)(db_stmt *st, int col);
    double (*col_double)(db_stmt *st, int col);
    const char *(*col_text)(db_stmt *st, int col);
    const void *(*col_blob)(db_stmt *st, int col, size_t *len);
    bool (*col_is_null)(db_stmt *st, int col);
    long (*changes)(nova_db *db);
    const char *(*error_text)(nova_db *db);
    bool (*last_was_busy)(nova_db *db);
    bool (*last_was_unavailable)(nova_db *db); /* storage away, not a bug */
    int (*exec_script)(nova_db *db, const char *sql);
    int (*begin)(nova_db *db); /* -1 on failure (db_fail tells) */
    int (*begin_read)(nova_db *db);
    int (*begin_nowait)(nova_db *db, bool *busy);
    int (*commit)(nova_db *db);
    void (*rollback)(nova_db *db);
    void (*set_busy_timeout)(nova_db *db, int ms);
    int (*schema_version)(nova_db *db);
    int (*set_schema_version)(nova_db *db, int version);
    int64_t (*data_version)(nova_db *db);
    int (*wake_listeners)(nova_db *db);
    int (*savepoint)(nova_db *db, enum db_savepoint op); /* -1 on failure */
};

extern const struct db_engine db_engine_sqlite;
extern const struct db_engine db_engine_postgres;

#endif
