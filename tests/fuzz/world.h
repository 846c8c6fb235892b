/* world.h - the seeded database the stateful fuzz harnesses run against.
 *
 * fuzz_world_init builds, once per process, a temporary database with a
 * known population (users, sessions, friendships, friend groups and
 * invitations, two group chats with an owner, an admin and members, chat
 * invitations, messages, a recalled and a hidden message, read marks)
 * through the real REST pipeline and domain code, checks that every id
 * came out as the constants below say (the committed corpus relies on
 * them), and keeps a pristine copy in memory. fuzz_world_reset puts that
 * copy back, so that every fuzz input starts from the same state and every
 * finding reproduces from its input alone. */
#ifndef NOVA_FUZZ_WORLD_H
#define NOVA_FUZZ_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/config.h"
#include "../../common/crypto.h"
#include "../../common/db.h"
#include "../../fcgi/http.h"

/* Users (1 and 2 are #SYSTEM and #DELETED). */
enum { ALICE = 3, BOB, CAROL, DAVE, ERIN, N_USERS_SEEDED = 7 };

/* Sessions: one per user (ids 1..5 in user order) and a second one of
 * alice's (id 6). */
enum {
    SESSION_ALICE = 0,
    SESSION_BOB,
    SESSION_CAROL,
    SESSION_DAVE,
    SESSION_ERIN,
    SESSION_ALICE2,
    N_SESSIONS
};

/* Private chats of the friendships alice-bob, alice-carol, bob-carol,
 * dave-alice, erin-bob; the group "Team" (owner alice, admin bob, member
 * carol; pending invitations: erin by bob, dave by alice) and the group
 * "Side" (owner carol, member bob; pending: alice by carol). */
enum { CHAT_AB = 1, CHAT_AC, CHAT_BC, CHAT_DA, CHAT_EB, CHAT_TEAM, CHAT_SIDE, N_CHATS_SEEDED = 7 };

/* Friend groups: the default group of each user (ids 1..5 in user order),
 * alice's "Work" (6, holds bob) and bob's "Close" (7, empty). */
enum { GROUP_WORK = 6, GROUP_CLOSE = 7 };

/* Pending friend invitations erin→alice, dave→carol, carol→erin. */
enum { FINV_ERIN_ALICE = 6, FINV_DAVE_CAROL, FINV_CAROL_ERIN };

/* Messages 1..7 are the system messages of the five friendships and two
 * groups; then in Team: 8 alice, 9 bob (reply to 8), 10 carol (hidden by
 * bob), 11 carol (recalled); 12 alice in CHAT_AB; 13 bob in Side. */
enum {
    MSG_TEAM_ALICE = 8,
    MSG_TEAM_BOB_REPLY,
    MSG_TEAM_CAROL_HIDDEN,
    MSG_TEAM_RECALLED,
    MSG_AB_ALICE,
    MSG_SIDE_BOB,
    N_MESSAGES_SEEDED = 13
};

typedef struct fuzz_world {
    nova_config cfg;
    nova_db *db;
    char dir[128];  /* temporary directory holding the database */
    char path[192]; /* the database file */
    void *pristine; /* sqlite3 * of the in-memory snapshot */
    char tokens[N_SESSIONS][TOKEN_LEN + 1];
    int64_t token_user[N_SESSIONS];
    int64_t session_id[N_SESSIONS];
    uint64_t fingerprint; /* of the state after the last reset (inv_fingerprint) */
    long long resets, full_restores;
} fuzz_world;

/* Abort with a message: an invariant does not hold (or setup failed). */
void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Environment (cheap argon2, no log noise), database, seed, snapshot. */
void fuzz_world_init(fuzz_world *w);

/* Restore the pristine state (cheap when nothing changed since) and
 * update w->fingerprint. */
void fuzz_world_reset(fuzz_world *w);

/* Has anything been written since the last reset? */
bool fuzz_world_dirty(fuzz_world *w);

/* Run one request through api_handle. token may be NULL; body is text.
 * resp must be freed by the caller (http_response_free). */
void fuzz_call(fuzz_world *w, const char *method, const char *path, const char *token,
               const char *body, http_response *resp);

/* Like fuzz_call but aborts unless the status is 200. */
void fuzz_call_ok(fuzz_world *w, const char *method, const char *path, const char *token,
                  const char *body);

/* The sessionid token a response sets, copied to out (TOKEN_LEN + 1): true
 * when there is one (a clearing cookie yields false). */
bool fuzz_response_token(const http_response *resp, char *out);

/* One integer from a query, or fallback (for ids and counts). */
int64_t fuzz_query_int(fuzz_world *w, const char *sql, int64_t fallback);

/* A cached statement of the world's database as SQLite's own, for the
 * oracles that read SQLite directly (reset it with sqlite3_reset). */
struct sqlite3_stmt *world_prepare_lite(nova_db *db, const char *sql);

#endif
