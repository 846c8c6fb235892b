/* migrate.c - apply and check schema migrations. */
#include "migrate.h"

#include "log.h"

int migrate_latest_version(void)
{
    return nova_migration_count ? nova_migrations[nova_migration_count - 1].version : 0;
}

int migrate_db_version(nova_db *db)
{
    return db_schema_version(db);
}

/* The migrations of db's engine. */
static const struct migration *migrations_of(nova_db *db, int *count)
{
    if (db->kind == DB_POSTGRES) {
        *count = nova_pg_migration_count;
        return nova_pg_migrations;
    }
    *count = nova_migration_count;
    return nova_migrations;
}

int migrate_apply(nova_db *db, FILE *out, nova_err *err)
{
    int count;
    const struct migration *list = migrations_of(db, &count);
    for (int i = 0; i < count; i++) {
        const struct migration *m = &list[i];
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
        if ((rc = db_exec_script(db, m->sql, err)) ||
            (rc = db_set_schema_version(db, m->version, err)) ||
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
