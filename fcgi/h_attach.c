/* h_attach.c - [ext] attachments: upload to a chat, download through
 * nginx (docs/API.md "[ext] Attachments"). The rules are common/attachment.c's. */
#include <stdio.h>
#include <string.h>

#include "../common/attachment.h"
#include "api.h"

/* The internal nginx location that serves cfg->attachment_dir
 * (nginx/nova-site.conf.in). */
#define ATTACHMENT_LOCATION "/.nova-attachment/"

long api_body_limit(const nova_config *cfg, const char *method, const char *path)
{
    int64_t ids[ROUTE_MAX_IDS];
    size_t n;
    if (method && !strcmp(method, "POST") && path &&
        router_match("/chat/{id}/attachment", path, ids, &n))
        return cfg->attachment_limit > cfg->body_limit ? cfg->attachment_limit : cfg->body_limit;
    return cfg->body_limit;
}

int h_attach_upload(api_call *c, nova_err *err)
{
    char name[ATTACHMENT_NAME_MAX + 1];
    int got = http_query_text(c->req->query, "name", name, sizeof name, err);
    if (got < 0) return -got;
    if (!got) return nova_fail(err, ERR_INVALID, "the query parameter name is required");
    if (c->req->body_too_large || c->req->body_len > (size_t)c->cfg->attachment_limit) {
        /* still a member's question first: a stranger learns nothing */
        nova_err ignored;
        int rc =
            attachment_upload(c->db, c->session.user_id, c->ids[0], name, "", 0, NULL, &ignored);
        if (rc != ERR_INVALID && rc != ERR_TOO_LARGE) {
            *err = ignored;
            return rc;
        }
        return nova_fail(err, ERR_TOO_LARGE, "file is larger than %ld bytes",
                         c->cfg->attachment_limit);
    }
    json_object *view = NULL;
    int rc = attachment_upload(c->db, c->session.user_id, c->ids[0], name,
                               c->req->body ? c->req->body : "", c->req->body_len, &view, err);
    if (rc) return rc;
    return api_result(c, view, err);
}

/* Content-Disposition: a plain ASCII filename for old clients, and the
 * exact name as RFC 8187 filename*. */
static void disposition(const attachment_file *f, char *out, size_t size)
{
    char plain[ATTACHMENT_NAME_MAX + 1], star[3 * ATTACHMENT_NAME_MAX + 1];
    size_t p = 0, s = 0;
    for (const unsigned char *c = (const unsigned char *)f->name; *c; c++) {
        plain[p++] = *c < 0x80 && *c >= 0x20 && *c != '"' && *c != '\\' && *c != ';' && *c != '%'
                         ? (char)*c
                         : '_';
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            strchr("!#$&+-.^_`|~", *c))
            star[s++] = (char)*c;
        else
            s += (size_t)sprintf(star + s, "%%%02X", *c);
    }
    plain[p] = star[s] = '\0';
    snprintf(out, size, "%s; filename=\"%s\"; filename*=UTF-8''%s",
             attachment_inline(f->mime) ? "inline" : "attachment", plain, star);
}

int h_attach_download(api_call *c, nova_err *err)
{
    attachment_file f;
    int rc = attachment_for_download(c->db, c->session.user_id, c->ids[0], &f, err);
    if (rc) return rc;
    char accel[sizeof ATTACHMENT_LOCATION + 64], type[96], disp[1200];
    snprintf(accel, sizeof accel, ATTACHMENT_LOCATION "%s", f.hash);
    /* Never text/html or image/svg+xml: the sniffer knows neither. */
    snprintf(type, sizeof type, "%s%s", f.mime,
             !strcmp(f.mime, "text/plain") ? "; charset=utf-8" : "");
    disposition(&f, disp, sizeof disp);
    http_add_header(c->resp, "X-Accel-Redirect", accel);
    http_add_header(c->resp, "Content-Type", type);
    http_add_header(c->resp, "Content-Disposition", disp);
    http_add_header(c->resp, "Cache-Control", "private, no-store");
    c->resp->raw = true;
    c->data = NULL;
    return 0;
}
