/* check.h - the domain invariants of API.md and the schema, checked on a
 * live database (nova-admin check; the fuzz harnesses assert the same).
 *
 * Friendships are symmetric and share their private chat; a private chat
 * has exactly its two friends as members and no admin; the owner of every
 * chat is a member and never flagged admin; every member has a relation
 * row; system users own, join and hold nothing; every user has one default
 * friend group; no pending invitation between friends, crossing, to
 * oneself or to a member; recalled messages are rewritten; replies stay in
 * their chat; read watermarks never pass the chat's newest message; stored
 * profile fields pass the validators; every reference holds; and (deep)
 * the engine's own integrity check. */
#ifndef NOVA_CHECK_H
#define NOVA_CHECK_H

#include <stdbool.h>

#include "db.h"

/* Called once per rule: broken is NULL when it holds, else a short
 * description of the first row that breaks it. */
typedef void (*check_report_fn)(void *ctx, const char *rule, const char *broken);

/* Check every rule in one read snapshot: the number of broken rules, or
 * -1 when the snapshot cannot be had (err says why). */
int check_database(nova_db *db, bool deep, check_report_fn report, void *ctx, nova_err *err);

#endif
