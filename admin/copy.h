/* copy.h - nova-admin copy (and backup on PostgreSQL): every row of one
 * database into a new one, of either engine. */
#ifndef NOVA_ADMIN_COPY_H
#define NOVA_ADMIN_COPY_H

#include <stdio.h>

#include "../common/db.h"

/* Copy src (at the current schema version) into the database dest names
 * (a SQLite path or a postgresql:// URI): dest is migrated here and must
 * hold nothing but what the migration makes. src is read in one snapshot,
 * dest written in one transaction, so a serving stack is not disturbed and
 * a failure leaves dest empty. Every id is kept, the id sequences move past
 * them, and the outbox keeps its position. Reports each table on out.
 * 0, ERR_CONFLICT when dest holds data, or another kind (err). */
int copy_database(nova_db *src, const nova_config *cfg, const char *dest, FILE *out,
                  nova_err *err);

#endif
