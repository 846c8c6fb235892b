/* invariants.h - what must hold in the database after any request or
 * socket action, whatever the input (checked by the stateful harnesses).
 *
 * Domain invariants (API.md §3, §4, §6 and the schema's comments):
 * friendships are symmetric and share their private chat; a private chat
 * has exactly its two friends as members and no admin; the owner of every
 * chat is a member and never flagged admin; every member has a relation
 * row; system users own, join and hold nothing; every user has one default
 * friend group; no pending invitation between friends, crossing, to
 * oneself or to a member; recalled messages are rewritten; replies stay in
 * their chat; read watermarks never pass the chat's newest message; stored
 * profile fields pass the validators; plus PRAGMA foreign_key_check and
 * (deep) PRAGMA integrity_check. Any violation aborts via fuzz_fail. */
#ifndef NOVA_FUZZ_INVARIANTS_H
#define NOVA_FUZZ_INVARIANTS_H

#include <stdbool.h>
#include <stdint.h>

#include "../../common/db.h"

/* Check every domain invariant; deep adds PRAGMA integrity_check and the
 * FTS5 integrity checks of the user name and message search indexes. */
void inv_check_db(nova_db *db, bool deep);

/* A hash of the whole database content (every table, every row), except
 * sessions.last_seen, which a read may refresh; with_index adds the pages
 * of the full-text index of user names. Equal fingerprints before and
 * after a request mean that it changed nothing. */
uint64_t inv_fingerprint(nova_db *db, bool with_index);

/* The newest outbox id (0 when empty). */
int64_t inv_outbox_newest(nova_db *db);

/* Check the outbox rows after after_id: known action, data of the
 * documented shape, recipients a sorted, duplicate-free, non-empty JSON
 * array of user ids that reaches the users the event is about. */
void inv_check_outbox(nova_db *db, int64_t after_id);

#endif
