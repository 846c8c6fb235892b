/* migrate.h - the schema version and the migrations that reach it.
 *
 * Migrations are the numbered files sql/NNN_name.sql (SQLite) and
 * sql/postgres/NNN_name.sql (PostgreSQL, the same numbers), compiled into
 * the binaries (scripts/embed-sql). The database records the version it
 * is at (SQLite: PRAGMA user_version; PostgreSQL: the nova_schema table).
 * nova-admin migrate applies what is missing; the daemons refuse to start
 * unless the database is exactly current. */
#ifndef NOVA_MIGRATE_H
#define NOVA_MIGRATE_H

#include <stdio.h>

#include "db.h"

struct migration {
    int version;
    const char *name;
    const char *sql;
};

extern const struct migration nova_migrations[];
extern const int nova_migration_count;
extern const struct migration nova_pg_migrations[];
extern const int nova_pg_migration_count;

/* The version this build needs. */
int migrate_latest_version(void);

/* The version the database is at (0 for a new file), or -1 on error. */
int migrate_db_version(nova_db *db);

/* Apply every missing migration in order, each in its own transaction,
 * reporting each step on out (may be NULL). 0 or a failure kind. */
int migrate_apply(nova_db *db, FILE *out, nova_err *err);

/* 0 when the database is at the latest version; otherwise a failure
 * kind and a message telling the operator what to run. */
int migrate_check(nova_db *db, nova_err *err);

#endif
