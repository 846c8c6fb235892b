/* user.h - accounts: register, login, profile changes, lookups (deleting
 * an account is account.h's).
 *
 * Password hashing is slow (argon2id) and happens outside any write
 * transaction: callers read the stored hash (user_credentials_by_*),
 * verify or hash (crypto.h) first, then make the change inside the write
 * transaction, re-checking that the hash they verified is still stored. */
#ifndef NOVA_USER_H
#define NOVA_USER_H

#include <stdint.h>

#include "crypto.h"
#include "db.h"
#include "session.h"

enum { USER_SYSTEM_ID = 1, USER_DELETED_ID = 2 };

/* Look up a login name: 0 with *user_id and a malloc'd *hash (NULL for
 * system users), ERR_NOT_FOUND when no such user. Read-only. */
int user_credentials_by_name(nova_db *db, const char *name, int64_t *user_id, char **hash,
                             nova_err *err);

/* The stored password hash of a user (malloc'd, NULL if none), or
 * ERR_NOT_FOUND. */
int user_credentials_by_id(nova_db *db, int64_t user_id, char **hash, nova_err *err);

/* Create an account with its default friend group and a first session.
 * ERR_CONFLICT when the name is taken. Write transaction. */
int user_register(nova_db *db, const char *name, const char *password_hash, int64_t *user_id,
                  char token[TOKEN_LEN + 1], nova_err *err);

/* Start a new session for user_id, first ending `previous` (the session
 * the request carried, if any; 0 for none). Write transaction. */
int user_login(nova_db *db, int64_t user_id, const session *previous, char token[TOKEN_LEN + 1],
               nova_err *err);

/* Validated profile changes; NULL fields are left alone. */
typedef struct user_patch {
    const char *old_password;
    const char *new_password;
    const char *user_name;
    const char *email;
    const char *phone;
    const char *avatar_url;
} user_patch;

/* Check each present field against API.md §2 and the old_password rule. */
int user_patch_validate(const user_patch *p, nova_err *err);

/* Apply a validated patch for the session's user. verified_hash is the
 * password hash old_password was checked against (NULL when no password
 * was given); new_hash the argon2id of new_password (or NULL). A password
 * change rotates the session (new token in token_out, token_out[0] left
 * '\0' otherwise) and ends the user's other sessions. Emits
 * profile_change. Write transaction. */
int user_update(nova_db *db, const session *s, const user_patch *p, const char *verified_hash,
                const char *new_hash, char token_out[TOKEN_LEN + 1], nova_err *err);

/* The user's name as stored (malloc'd), or NULL. */
char *user_name_of(nova_db *db, int64_t user_id);

/* 0 if user_id names a real (non-system) existing user, else
 * ERR_NOT_FOUND. */
int user_exists(nova_db *db, int64_t user_id, nova_err *err);

#endif
