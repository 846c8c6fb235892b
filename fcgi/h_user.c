/* h_user.c - /user endpoints (API.md §4 "User"). */
#include <stdlib.h>
#include <string.h>

#include "../common/json_util.h"
#include "../common/log.h"
#include "../common/user.h"
#include "../common/validate.h"
#include "../common/view.h"
#include "api.h"

/* Name and password of a register/login body, checked against §2. */
static int read_credentials(api_call *c, const char **name, const char **password, nova_err *err)
{
    int rc;
    if ((rc = json_require_object(c->body, "body", err)) ||
        (rc = json_field_string(c->body, "user_name", true, name, NULL, err)) ||
        (rc = json_field_string(c->body, "password", true, password, NULL, err)) ||
        (rc = validate_user_name(*name, err)) ||
        (rc = validate_password(*password, "password", err)))
        return rc;
    return 0;
}

/* Commit the write begun by the caller, then answer with the caller's
 * User.Detailed and the new cookie. */
static int finish_login(api_call *c, int64_t user_id, const char *token, nova_err *err)
{
    int rc = db_commit(c->db, err);
    if (rc) return rc;
    api_set_cookie(c, token);
    c->data = view_user_detailed(c->db, user_id, err);
    return c->data ? 0 : err->status;
}

int h_user_register(api_call *c, nova_err *err)
{
    const char *name, *password;
    int rc = read_credentials(c, &name, &password, err);
    if (rc) return rc;
    /* Cheap early answer before the expensive hash; rechecked under lock. */
    int64_t existing;
    char *unused = NULL;
    if (!user_credentials_by_name(c->db, name, &existing, &unused, err)) {
        free(unused);
        return nova_fail(err, 409, "user_name '%s' is taken", name);
    }
    char hash[crypto_pwhash_STRBYTES];
    if (password_hash(c->cfg, password, hash)) return nova_fail(err, 503, "server busy, try again");
    session previous;
    bool had_session = !api_optional_session(c, &previous);

    char token[TOKEN_LEN + 1];
    int64_t user_id;
    if ((rc = db_begin(c->db, err))) return rc;
    if ((had_session && (rc = session_end(c->db, previous.user_id, previous.id, err))) ||
        (rc = user_register(c->db, name, hash, &user_id, token, err)))
        return rc;
    log_info("registered user %lld", (long long)user_id);
    rc = finish_login(c, user_id, token, err);
    sodium_memzero(token, sizeof token);
    return rc;
}

int h_user_login(api_call *c, nova_err *err)
{
    const char *name, *password;
    int rc = read_credentials(c, &name, &password, err);
    if (rc) return rc;
    int64_t user_id;
    char *hash = NULL;
    if ((rc = user_credentials_by_name(c->db, name, &user_id, &hash, err))) return rc;
    bool ok = password_verify(hash, password);
    free(hash);
    if (!ok) return nova_fail(err, 403, "wrong user name or password");

    session previous;
    bool had_session = !api_optional_session(c, &previous);
    char token[TOKEN_LEN + 1];
    if ((rc = db_begin(c->db, err)) ||
        (rc = user_login(c->db, user_id, had_session ? &previous : NULL, token, err)))
        return rc;
    rc = finish_login(c, user_id, token, err);
    sodium_memzero(token, sizeof token);
    return rc;
}

int h_user_logout(api_call *c, nova_err *err)
{
    int rc;
    if ((rc = db_begin(c->db, err)) ||
        (rc = session_end(c->db, c->session.user_id, c->session.id, err)) ||
        (rc = db_commit(c->db, err)))
        return rc;
    api_set_cookie(c, NULL);
    return 0;
}

int h_user_get(api_call *c, nova_err *err)
{
    c->data = view_user_detailed(c->db, c->session.user_id, err);
    return c->data ? 0 : err->status;
}

int h_user_patch(api_call *c, nova_err *err)
{
    user_patch p = {0};
    int rc;
    if ((rc = json_require_object(c->body, "body", err)) ||
        (rc = json_field_string(c->body, "old_password", false, &p.old_password, NULL, err)) ||
        (rc = json_field_string(c->body, "new_password", false, &p.new_password, NULL, err)) ||
        (rc = json_field_string(c->body, "user_name", false, &p.user_name, NULL, err)) ||
        (rc = json_field_string(c->body, "email", false, &p.email, NULL, err)) ||
        (rc = json_field_string(c->body, "phone", false, &p.phone, NULL, err)) ||
        (rc = json_field_string(c->body, "avatar_url", false, &p.avatar_url, NULL, err)) ||
        (rc = user_patch_validate(&p, err)))
        return rc;

    char *stored = NULL;
    if (p.old_password) {
        if ((rc = user_credentials_by_id(c->db, c->session.user_id, &stored, err))) return rc;
        if (!password_verify(stored, p.old_password)) {
            free(stored);
            return nova_fail(err, 403, "old_password is wrong");
        }
    }
    char new_hash[crypto_pwhash_STRBYTES];
    if (p.new_password && password_hash(c->cfg, p.new_password, new_hash)) {
        free(stored);
        return nova_fail(err, 503, "server busy, try again");
    }
    char token[TOKEN_LEN + 1];
    bool changes = p.new_password || p.user_name || p.email || p.phone || p.avatar_url;
    if (changes) {
        if (!(rc = db_begin(c->db, err)) &&
            !(rc = user_update(c->db, &c->session, &p, stored, p.new_password ? new_hash : NULL,
                               token, err)) &&
            !(rc = db_commit(c->db, err)) && token[0])
            api_set_cookie(c, token);
        sodium_memzero(token, sizeof token);
    }
    free(stored);
    if (rc) return rc;
    c->data = view_user_detailed(c->db, c->session.user_id, err);
    return c->data ? 0 : err->status;
}

int h_user_delete(api_call *c, nova_err *err)
{
    int rc;
    if ((rc = db_begin(c->db, err)) || (rc = user_delete(c->db, c->session.user_id, err)) ||
        (rc = db_commit(c->db, err)))
        return rc;
    log_info("deleted user %lld", (long long)c->session.user_id);
    api_set_cookie(c, NULL);
    return 0;
}

int h_user_by_id(api_call *c, nova_err *err)
{
    c->data = view_user_basic(c->db, c->ids[0], err);
    return c->data ? 0 : err->status;
}
