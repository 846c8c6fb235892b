/* migrate.c - apply and check schema migrations. */
#include "migrate.h"

#include "log.h"

static const char SQL_USER_VERSION[] = "PRAGMA user_version";

int migrate_latest_version(void)
{
    return nova_migration_count ? nova_migrations[nova_migration_count - 1].version : 0;
}

int migrate_db_version(nova_db *db)
{
    db_stmt *st = db_prepare(db, SQL_USER_VERSION);
    if (!st) return -1;
    int version = -1;
    if (db_step(st) == DB_ROW) version = (int)db_col_i64(st, 0);
    db_done(st);
    return version;
}

int migrate_apply(nova_db *db, FILE *out, nova_err *err)
{
    for (int i = 0; i < nova_migration_count; i++) {
        const struct migration *m = &nova_migrations[i];
        int rc = db_begin(db, err);
        if (rc) return rc;
        /* Read the version under the write lock, so that two migrators
         * never apply the same step twice. */
        int current = migrate_db_version(db);
        if (current < 0) {
            db_rollback(db);
            return db_fail(db, err);
        }
        if (current >= m->version) {
            db_rollback(db);
            continue;
        }
        char set_version[64];
        snprintf(set_version, sizeof set_version, "PRAGMA user_version = %d", m->version);
        if ((rc = db_exec_script(db, m->sql, err)) || (rc = db_exec_script(db, set_version, err)) ||
            (rc = db_commit(db, err))) {
            db_rollback(db);
            log_error("migration %s failed", m->name);
            return rc;
        }
        if (out) fprintf(out, "applied %s\n", m->name);
    }
    return 0;
}

int migrate_check(nova_db *db, nova_err *err)
{
    int have = migrate_db_version(db), want = migrate_latest_version();
    if (have < 0) return db_fail(db, err);
    if (have < want)
        return nova_fail(err, ERR_UNAVAILABLE,
                         "database schema is at version %d but this build needs %d: "
                         "run `nova-admin migrate` first",
                         have, want);
    if (have > want)
        return nova_fail(err, ERR_UNAVAILABLE,
                         "database schema is at version %d, newer than this build (%d): "
                         "upgrade Nova",
                         have, want);
    return 0;
}
