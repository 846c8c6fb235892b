/* test_crypto.c - tokens, password hashes (common/crypto.c) and finding
 * the session token in a Cookie header (common/session.c).
 *
 * Password hashing runs at libsodium's minimum argon2id cost so that the
 * tests stay fast; the algorithm and the checks are the same. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/config.h"
#include "../../common/crypto.h"
#include "../../common/session.h"

static const char base64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void test_token_new(void **state)
{
    (void)state;
    char a[TOKEN_LEN + 1], b[TOKEN_LEN + 1];
    memset(a, '!', sizeof a);
    memset(b, '!', sizeof b);
    token_new(a);
    token_new(b);
    assert_int_equal(TOKEN_LEN, 43);
    assert_int_equal(strlen(a), TOKEN_LEN);
    assert_int_equal(strlen(b), TOKEN_LEN);
    assert_int_equal(strspn(a, base64url), TOKEN_LEN);
    assert_int_equal(strspn(b, base64url), TOKEN_LEN);
    assert_string_not_equal(a, b);
    assert_true(token_well_formed(a, strlen(a)));
    assert_true(token_well_formed(b, strlen(b)));
}

/* 32 random bytes in 43 characters: over many tokens every one of the 64
 * characters turns up, and none repeats a token. */
static void test_token_new_spread(void **state)
{
    (void)state;
    enum { N = 200 };
    static char tokens[N][TOKEN_LEN + 1];
    bool seen[128] = {false};
    for (int i = 0; i < N; i++) {
        token_new(tokens[i]);
        for (int k = 0; k < TOKEN_LEN; k++)
            seen[(unsigned char)tokens[i][k] & 0x7f] = true;
        for (int j = 0; j < i; j++)
            if (!strcmp(tokens[i], tokens[j])) fail_msg("token %d repeats token %d", i, j);
    }
    for (const char *c = base64url; *c; c++)
        if (!seen[(unsigned char)*c]) fail_msg("'%c' never appears in %d tokens", *c, N);
}

static void test_token_well_formed(void **state)
{
    (void)state;
    char t[TOKEN_LEN + 2];
    memset(t, 'a', TOKEN_LEN);
    t[TOKEN_LEN] = '\0';
    assert_true(token_well_formed(t, TOKEN_LEN));
    memcpy(t, "-_09AZaz", 8);
    assert_true(token_well_formed(t, TOKEN_LEN));

    assert_false(token_well_formed(t, TOKEN_LEN - 1));
    assert_false(token_well_formed("", 0));
    t[TOKEN_LEN] = 'a';
    t[TOKEN_LEN + 1] = '\0';
    assert_false(token_well_formed(t, TOKEN_LEN + 1));

    static const char bad_chars[] = "+/=. \t;,\"\\%\x7f\x80\xff";
    for (const char *c = bad_chars; *c; c++) {
        memset(t, 'a', TOKEN_LEN);
        t[TOKEN_LEN] = '\0';
        t[TOKEN_LEN / 2] = *c;
        if (token_well_formed(t, TOKEN_LEN))
            fail_msg("token with 0x%02x accepted", (unsigned char)*c);
    }
    memset(t, 'a', TOKEN_LEN);
    t[10] = '\0'; /* an embedded NUL within the length */
    assert_false(token_well_formed(t, TOKEN_LEN));
}

static void test_token_hash(void **state)
{
    (void)state;
    /* BLAKE2b-256("abc"), RFC 7693 parameters, digest length 32 */
    static const unsigned char abc[TOKEN_HASH_LEN] = {
        0xbd, 0xdd, 0x81, 0x3c, 0x63, 0x42, 0x39, 0x72, 0x31, 0x71, 0xef,
        0x3f, 0xee, 0x98, 0x57, 0x9b, 0x94, 0x96, 0x4e, 0x3b, 0xb1, 0xcb,
        0x3e, 0x42, 0x72, 0x62, 0xc8, 0xc0, 0x68, 0xd5, 0x23, 0x19,
    };
    unsigned char buf[TOKEN_HASH_LEN + 8];
    memset(buf, 0xAA, sizeof buf);
    token_hash("abcdef", 3, buf); /* only len bytes are hashed */
    assert_memory_equal(buf, abc, TOKEN_HASH_LEN);
    for (size_t i = TOKEN_HASH_LEN; i < sizeof buf; i++)
        assert_int_equal(buf[i], 0xAA);

    char t1[TOKEN_LEN + 1], t2[TOKEN_LEN + 1];
    token_new(t1);
    token_new(t2);
    unsigned char h1[TOKEN_HASH_LEN], h1again[TOKEN_HASH_LEN], h2[TOKEN_HASH_LEN];
    token_hash(t1, TOKEN_LEN, h1);
    token_hash(t1, TOKEN_LEN, h1again);
    token_hash(t2, TOKEN_LEN, h2);
    assert_memory_equal(h1, h1again, TOKEN_HASH_LEN);
    assert_memory_not_equal(h1, h2, TOKEN_HASH_LEN);

    /* one character changed changes the hash */
    char t3[TOKEN_LEN + 1];
    memcpy(t3, t1, sizeof t3);
    t3[TOKEN_LEN - 1] = t3[TOKEN_LEN - 1] == 'A' ? 'B' : 'A';
    unsigned char h3[TOKEN_HASH_LEN];
    token_hash(t3, TOKEN_LEN, h3);
    assert_memory_not_equal(h1, h3, TOKEN_HASH_LEN);
}

/* A config at the lowest argon2id cost libsodium allows. */
static int cheap_config(void **state)
{
    nova_config *cfg = malloc(sizeof *cfg);
    if (!cfg || config_load(cfg)) {
        free(cfg);
        return -1;
    }
    cfg->pwhash_opslimit = 1;
    cfg->pwhash_memlimit = 8192;
    *state = cfg;
    return 0;
}

static int free_config(void **state)
{
    config_free(*state);
    free(*state);
    return 0;
}

static void test_password_round_trip(void **state)
{
    const nova_config *cfg = *state;
    char hash[crypto_pwhash_STRBYTES];
    assert_int_equal(password_hash(cfg, "secret1", hash), 0);
    assert_true(strlen(hash) < sizeof hash);
    assert_int_equal(strncmp(hash, "$argon2id$", 10), 0);
    assert_non_null(strstr(hash, "m=8,t=1")); /* the configured cost is used */
    assert_null(strstr(hash, "secret1"));

    assert_true(password_verify(hash, "secret1"));
    assert_false(password_verify(hash, "secret2"));
    assert_false(password_verify(hash, "Secret1"));
    assert_false(password_verify(hash, "secret1 "));
    assert_false(password_verify(hash, "secret"));
    assert_false(password_verify(hash, ""));

    /* a fresh salt each time: same password, different strings, both valid */
    char again[crypto_pwhash_STRBYTES];
    assert_int_equal(password_hash(cfg, "secret1", again), 0);
    assert_string_not_equal(hash, again);
    assert_true(password_verify(again, "secret1"));

    /* a damaged hash verifies nothing */
    hash[strlen(hash) - 2] ^= 1;
    assert_false(password_verify(hash, "secret1"));
}

static void test_password_unicode(void **state)
{
    const nova_config *cfg = *state;
    char hash[crypto_pwhash_STRBYTES];
    const char *pw = "p\xC3\xA4ss\xE5\xAF\x86\xF0\x9F\x98\x80";
    assert_int_equal(password_hash(cfg, pw, hash), 0);
    assert_true(password_verify(hash, pw));
    assert_false(password_verify(hash, "p\xC3\xA4ss\xE5\xAF\x86"));
}

static void test_password_verify_without_hash(void **state)
{
    (void)state;
    assert_false(password_verify(NULL, "secret1")); /* system users have no hash */
    assert_false(password_verify("", "secret1"));
    assert_false(password_verify("secret1", "secret1"));
    assert_false(password_verify("$argon2id$v=19$m=8,t=1,p=1$garbage$garbage", "secret1"));
}

/* session_token_from_cookie on the header made from fmt, expecting want
 * (NULL: nothing found). */
static void expect_cookie(const char *want, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void expect_cookie(const char *want, const char *fmt, ...)
{
    char header[512], out[TOKEN_LEN + 1] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(header, sizeof header, fmt, ap);
    va_end(ap);
    int rc = session_token_from_cookie(header, out);
    if (!want) {
        if (rc == 0) fail_msg("Cookie \"%s\": found \"%s\", want nothing", header, out);
        return;
    }
    if (rc != 0) fail_msg("Cookie \"%s\": nothing found, want %s", header, want);
    if (strcmp(out, want)) fail_msg("Cookie \"%s\": found \"%s\", want %s", header, out, want);
}

static void test_cookie_found(void **state)
{
    (void)state;
    char tok[TOKEN_LEN + 1], other[TOKEN_LEN + 1];
    token_new(tok);
    token_new(other);
    expect_cookie(tok, "a=1; sessionid=%s; b=2", tok);
    expect_cookie(tok, "sessionid=%s", tok);
    expect_cookie(tok, "sessionid=%s;", tok);
    expect_cookie(tok, "sessionid=%s ", tok);
    expect_cookie(tok, "a=1;sessionid=%s", tok);
    expect_cookie(tok, "  theme=dark;   sessionid=%s  ;lang=en", tok);
    /* a cookie whose name merely ends in sessionid is another cookie */
    expect_cookie(tok, "xsessionid=%s; sessionid=%s", other, tok);
    expect_cookie(tok, "other=sessionid=%s; sessionid=%s", other, tok);
    /* a malformed sessionid does not hide a good one after it */
    expect_cookie(tok, "sessionid=bad; sessionid=%s", tok);
}

static void test_cookie_not_found(void **state)
{
    (void)state;
    char tok[TOKEN_LEN + 1], out[TOKEN_LEN + 1];
    token_new(tok);
    assert_int_equal(session_token_from_cookie(NULL, out), -1);
    expect_cookie(NULL, "%s", "");
    expect_cookie(NULL, " ; ;; ");
    expect_cookie(NULL, "a=1; b=2");
    expect_cookie(NULL, "sessionid");
    expect_cookie(NULL, "sessionid=");
    expect_cookie(NULL, "sessionid=;");
    expect_cookie(NULL, "xsessionid=%s", tok);
    expect_cookie(NULL, "a=1; my_sessionid=%s; b=2", tok);
    expect_cookie(NULL, "SESSIONID=%s", tok);
    expect_cookie(NULL, "sessionid=%sx", tok);   /* 44 characters */
    expect_cookie(NULL, "sessionid=%.42s", tok); /* 42 characters */
    expect_cookie(NULL, "sessionid=\"%s\"", tok);
    expect_cookie(NULL, "sessionid=+%.42s", tok);
    expect_cookie(NULL, "sessionid=%.21s=%.21s", tok, tok + 21);
    expect_cookie(NULL, "sessionid=%.20s %.22s", tok, tok + 21);
}

int main(void)
{
    if (crypto_init()) {
        fprintf(stderr, "libsodium cannot be initialised\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_new),
        cmocka_unit_test(test_token_new_spread),
        cmocka_unit_test(test_token_well_formed),
        cmocka_unit_test(test_token_hash),
        cmocka_unit_test_setup_teardown(test_password_round_trip, cheap_config, free_config),
        cmocka_unit_test_setup_teardown(test_password_unicode, cheap_config, free_config),
        cmocka_unit_test(test_password_verify_without_hash),
        cmocka_unit_test(test_cookie_found),
        cmocka_unit_test(test_cookie_not_found),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
