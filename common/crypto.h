/* crypto.h - password hashes and session tokens (libsodium).
 *
 * Passwords: argon2id via crypto_pwhash_str, cost from the config.
 * Tokens: 256 random bits, base64url without padding (43 characters); the
 * database only ever sees their BLAKE2b-256 hash. */
#ifndef NOVA_CRYPTO_H
#define NOVA_CRYPTO_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"

enum { TOKEN_LEN = 43, TOKEN_HASH_LEN = 32 };

/* Initialise libsodium; -1 if it cannot be used. */
int crypto_init(void);

/* Hash a password with the configured argon2id cost. 0, or -1 when out
 * of memory. out must hold crypto_pwhash_STRBYTES. */
int password_hash(const nova_config *cfg, const char *password, char *out);

/* A hash of a random password with the configured cost, made once per
 * process: verifying against it costs what a real verification costs, so
 * a login with an unknown name takes as long as a wrong password. */
const char *password_dummy_hash(const nova_config *cfg);

/* True when password matches the stored argon2id string. */
bool password_verify(const char *stored, const char *password);

/* A new random token (TOKEN_LEN characters + NUL). */
void token_new(char out[TOKEN_LEN + 1]);

/* True when s looks like a token (length and alphabet), before hashing. */
bool token_well_formed(const char *s, size_t len);

/* BLAKE2b-256 of a token. */
void token_hash(const char *token, size_t len, unsigned char out[TOKEN_HASH_LEN]);

#endif
