/* h_user.c - /user endpoints (API.md §4 "User").
 *
 * Register, login and a password change hash or verify a password
 * (argon2id, ~100 ms): that happens in each route's prepare step, before
 * the pipeline opens the write transaction, and the handler re-checks
 * under the lock whatever the prepare step relied on. */
#include <stdlib.h>
#include <string.h>

#include "../common/account.h"
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

/* Answer with the caller's User.Detailed and the new session's cookie. */
static int answer_login(api_call *c, int64_t user_id, char token[TOKEN_LEN + 1], nova_err *err)
{
    c->data = view_user_detailed(c->db, user_id, err);
    if (c->data) api_set_cookie(c, token);
    sodium_memzero(token, TOKEN_LEN + 1);
    return c->data ? 0 : err->kind;
}

int h_user_register_prepare(api_call *c, nova_err *err)
{
    const char *name, *password;
    int rc = read_credentials(c, &name, &password, err);
    if (rc) return rc;
    /* Cheap early answer before the expensive hash; rechecked under lock. */
    int64_t existing;
    char *unused = NULL;
    if (!user_credentials_by_name(c->db, name, &existing, &unused, err)) {
        free(unused);
        return nova_fail(err, ERR_CONFLICT, "user_name '%s' is taken", name);
    }
    if (password_hash(c->cfg, password, c->prep.new_hash))
        return nova_fail(err, ERR_UNAVAILABLE, "server busy, try again");
    c->prep.has_new_hash = true;
    return 0;
}

int h_user_register(api_call *c, nova_err *err)
{
    const char *name = json_object_get_string(json_object_object_get(c->body, "user_name"));
    char token[TOKEN_LEN + 1];
    int64_t user_id;
    int rc;
    if ((c->has_session && (rc = session_end(c->db, c->session.user_id, c->session.id, err))) ||
        (rc = user_register(c->db, name, c->prep.new_hash, &user_id, token, err)))
        return rc;
    log_info("registered user %lld", (long long)user_id);
    return answer_login(c, user_id, token, err);
}

int h_user_login_prepare(api_call *c, nova_err *err)
{
    const char *name, *password;
    int rc = read_credentials(c, &name, &password, err);
    if (rc) return rc;
    rc = user_credentials_by_name(c->db, name, &c->prep.user_id, &c->prep.verified_hash, err);
    if (rc && rc != ERR_NOT_FOUND) return rc;
    /* An unknown name costs one verification too, so that timing does
     * not tell which names exist. */
    bool ok = password_verify(rc ? password_dummy_hash(c->cfg) : c->prep.verified_hash, password);
    if (rc || !ok) return nova_fail(err, ERR_FORBIDDEN, "wrong user name or password");
    return 0;
}

int h_user_login(api_call *c, nova_err *err)
{
    /* The account may have been deleted, or its password changed, since
     * the password was verified. */
    char *current = NULL;
    int rc = user_credentials_by_id(c->db, c->prep.user_id, &current, err);
    bool same = !rc && current && !strcmp(current, c->prep.verified_hash);
    free(current);
    if (!same && (!rc || rc == ERR_NOT_FOUND))
        return nova_fail(err, ERR_FORBIDDEN, "wrong user name or password");
    if (rc) return rc;

    char token[TOKEN_LEN + 1];
    if ((rc = user_login(c->db, c->prep.user_id, c->has_session ? &c->session : NULL, token, err)))
        return rc;
    return answer_login(c, c->prep.user_id, token, err);
}

int h_user_logout(api_call *c, nova_err *err)
{
    int rc = session_end(c->db, c->session.user_id, c->session.id, err);
    if (rc) return rc;
    api_set_cookie(c, NULL);
    return 0;
}

int h_user_get(api_call *c, nova_err *err)
{
    c->data = view_user_detailed(c->db, c->session.user_id, err);
    return c->data ? 0 : err->kind;
}

/* The fields of a PATCH /user body (pointers into c->body). */
static int read_patch(api_call *c, user_patch *p, nova_err *err)
{
    memset(p, 0, sizeof *p);
    int rc;
    if ((rc = json_require_object(c->body, "body", err)) ||
        (rc = json_field_string(c->body, "old_password", false, &p->old_password, NULL, err)) ||
        (rc = json_field_string(c->body, "new_password", false, &p->new_password, NULL, err)) ||
        (rc = json_field_string(c->body, "user_name", false, &p->user_name, NULL, err)) ||
        (rc = json_field_string(c->body, "email", false, &p->email, NULL, err)) ||
        (rc = json_field_string(c->body, "phone", false, &p->phone, NULL, err)) ||
        (rc = json_field_string(c->body, "avatar_url", false, &p->avatar_url, NULL, err)) ||
        (rc = user_patch_validate(p, err)))
        return rc;
    return 0;
}

int h_user_patch_prepare(api_call *c, nova_err *err)
{
    user_patch p;
    int rc = read_patch(c, &p, err);
    if (rc) return rc;
    if (p.old_password) {
        rc = user_credentials_by_id(c->db, c->session.user_id, &c->prep.verified_hash, err);
        if (rc) return rc == ERR_NOT_FOUND ? nova_fail(err, ERR_FORBIDDEN, "Invalid Session") : rc;
        if (!password_verify(c->prep.verified_hash, p.old_password))
            return nova_fail(err, ERR_FORBIDDEN, "old_password is wrong");
    }
    if (p.new_password) {
        if (password_hash(c->cfg, p.new_password, c->prep.new_hash))
            return nova_fail(err, ERR_UNAVAILABLE, "server busy, try again");
        c->prep.has_new_hash = true;
    }
    return 0;
}

int h_user_patch(api_call *c, nova_err *err)
{
    user_patch p;
    int rc = read_patch(c, &p, err);
    if (rc) return rc;
    if (p.new_password || p.user_name || p.email || p.phone || p.avatar_url) {
        char token[TOKEN_LEN + 1];
        rc = user_update(c->db, &c->session, &p, c->prep.verified_hash,
                         c->prep.has_new_hash ? c->prep.new_hash : NULL, token, err);
        if (!rc && token[0]) api_set_cookie(c, token);
        sodium_memzero(token, sizeof token);
        if (rc) return rc;
    }
    c->data = view_user_detailed(c->db, c->session.user_id, err);
    return c->data ? 0 : err->kind;
}

int h_user_delete(api_call *c, nova_err *err)
{
    int rc = account_delete(c->db, c->session.user_id, err);
    if (rc) return rc;
    log_info("deleted user %lld", (long long)c->session.user_id);
    api_set_cookie(c, NULL);
    return 0;
}

int h_user_by_id(api_call *c, nova_err *err)
{
    c->data = view_user_basic(c->db, c->ids[0], err);
    return c->data ? 0 : err->kind;
}
