/* copy.h - nova-admin copy: every row of one database into another, of
 * either engine, in either direction (SQLite to PostgreSQL and back), and
 * nova-admin backup on PostgreSQL, which is such a copy into a new SQLite
 * file. */
#ifndef NOVA_ADMIN_COPY_H
#define NOVA_ADMIN_COPY_H

#include <stdio.h>

#include "../common/config.h"
#include "../common/db.h"

/* Copy src (open, at the current schema version) into dst (open). dst is
 * migrated here and must hold nothing beyond what the migration creates;
 * otherwise ERR_CONFLICT and dst is left as it was. Every row keeps its
 * ids; the id sequences of dst end up where src's are (never behind a
 * copied id), and so does the outbox position, so that sockets resume
 * across the move. src is read in one snapshot (consistent while a stack
 * serves it), dst written in one transaction (a failure leaves it empty).
 * A line per table, and the migration's steps, on out (NULL: quiet).
 * 0 or a failure kind. */
int copy_database(nova_db *src, nova_db *dst, FILE *out, nova_err *err);

/* Copy src into path, a new SQLite file (cfg gives the other settings of
 * the connection): ERR_CONFLICT when path exists already. On failure
 * nothing is left at path. */
int copy_to_new_file(nova_db *src, const nova_config *cfg, const char *path, nova_err *err);

#endif
