/* crypto.c - libsodium wrappers for passwords and tokens. */
#include "crypto.h"

#include <string.h>

int crypto_init(void)
{
    return sodium_init() < 0 ? -1 : 0;
}

int password_hash(const nova_config *cfg, const char *password, char *out)
{
    return crypto_pwhash_str(out, password, strlen(password),
                             (unsigned long long)cfg->pwhash_opslimit,
                             (size_t)cfg->pwhash_memlimit) == 0
               ? 0
               : -1;
}

const char *password_dummy_hash(const nova_config *cfg)
{
    static char dummy[crypto_pwhash_STRBYTES];
    if (!dummy[0]) {
        char random[TOKEN_LEN + 1];
        token_new(random);
        if (password_hash(cfg, random, dummy)) dummy[0] = '\0';
        sodium_memzero(random, sizeof random);
    }
    return dummy[0] ? dummy : NULL;
}

bool password_verify(const char *stored, const char *password)
{
    return stored && crypto_pwhash_str_verify(stored, password, strlen(password)) == 0;
}

void token_new(char out[TOKEN_LEN + 1])
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(out, TOKEN_LEN + 1, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
}

bool token_well_formed(const char *s, size_t len)
{
    if (len != TOKEN_LEN) return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

void token_hash(const char *token, size_t len, unsigned char out[TOKEN_HASH_LEN])
{
    crypto_generichash(out, TOKEN_HASH_LEN, (const unsigned char *)token, len, NULL, 0);
}
