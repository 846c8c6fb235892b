/* http.c - response helpers. */
#include "http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/json_util.h"

void http_response_init(http_response *r)
{
    memset(r, 0, sizeof *r);
    r->status = 200;
    r->route = -1;
}

void http_response_free(http_response *r)
{
    free(r->body);
    r->body = NULL;
}

void http_add_header(http_response *r, const char *name, const char *value)
{
    size_t room = sizeof r->headers - r->headers_len;
    int n = snprintf(r->headers + r->headers_len, room, "%s: %s\r\n", name, value);
    if (n > 0 && (size_t)n < room) r->headers_len += (size_t)n;
}

const char *http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

void http_respond_json(http_response *r, int status, json_object *data, const char *error)
{
    json_object *env = json_object_new_object();
    json_object_object_add(env, "ok", json_object_new_boolean(status == 200));
    if (status == 200)
        json_object_object_add(env, "data", json_object_get(data));
    else
        json_object_object_add(env, "error", json_str(error));
    size_t len;
    const char *text = json_text(env, &len);
    free(r->body);
    r->body = malloc(len);
    if (r->body) {
        memcpy(r->body, text, len);
        r->body_len = len;
    } else {
        r->body_len = 0;
    }
    r->status = status;
    json_object_put(env);
}

bool http_origin_ok(const nova_config *cfg, const http_request *req)
{
    const char *scheme = req->scheme && *req->scheme ? req->scheme : "http";
    if (req->origin) return origin_trusted(cfg, req->origin, strlen(req->origin), scheme, req->host);
    if (!req->referer) return true;
    /* scheme://host[:port] of the referring page */
    const char *p = strstr(req->referer, "://");
    size_t len = 0;
    if (p) {
        p += 3;
        len = (size_t)(p - req->referer) + strcspn(p, "/?#");
    }
    return len && origin_trusted(cfg, req->referer, len, scheme, req->host);
}

/* The raw value of query parameter name (the last one given), or NULL. */
static const char *query_raw(const char *query, const char *name, size_t *len)
{
    size_t name_len = strlen(name);
    const char *found = NULL;
    for (const char *p = query; p && *p;) {
        const char *end = strchr(p, '&');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > name_len && !strncmp(p, name, name_len) && p[name_len] == '=') {
            found = p + name_len + 1;
            *len = n - name_len - 1;
        }
        p = end ? end + 1 : NULL;
    }
    return found;
}

int http_query_id(const char *query, const char *name, int64_t *out, nova_err *err)
{
    size_t len;
    const char *v = query_raw(query, name, &len);
    if (!v) return 0;
    char *stop;
    errno = 0;
    long long n = strtoll(v, &stop, 10);
    if (errno || stop != v + len || n <= 0 || *v == '+' || *v == ' ' || *v == '-')
        return nova_fail(err, ERR_INVALID, "query parameter '%s' must be a positive integer", name);
    *out = n;
    return 0;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int http_query_text(const char *query, const char *name, char *out, size_t size, nova_err *err)
{
    size_t len, n = 0;
    const char *v = query_raw(query, name, &len);
    if (!v) return 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)v[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= len || hex_digit(v[i + 1]) < 0 || hex_digit(v[i + 2]) < 0) goto bad;
            c = hex_digit(v[i + 1]) * 16 + hex_digit(v[i + 2]);
            i += 2;
        }
        if (c < 0x20 || c == 0x7f || n + 1 >= size) goto bad;
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return 1;
bad:
    return -nova_fail(err, ERR_INVALID, "query parameter '%s' is too long or badly encoded", name);
}
