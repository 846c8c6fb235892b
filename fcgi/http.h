/* http.h - the request and response nova-api's pipeline works on.
 *
 * The FastCGI adapter (main.c) fills an http_request from the FastCGI
 * parameters and body, and writes the http_response back; everything in
 * between (api.c) is plain C with no I/O, so tests and fuzzers can drive
 * it in-process. */
#ifndef NOVA_HTTP_H
#define NOVA_HTTP_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/config.h"
#include "../common/err.h"

typedef struct http_request {
    const char *method;       /* "GET", "POST", ... */
    const char *path;         /* PATH_INFO, e.g. "/chat/3/messages" */
    const char *query;        /* QUERY_STRING without '?', or "" */
    const char *content_type; /* NULL when absent */
    const char *cookie;       /* Cookie header, or NULL */
    const char *origin;       /* Origin header, or NULL */
    const char *referer;      /* Referer header, or NULL */
    const char *host;         /* Host header, or NULL */
    const char *scheme;       /* "http" or "https" as nginx saw it, or NULL */
    const char *body;
    size_t body_len;
    bool body_too_large; /* the adapter stopped reading at the limit */
} http_request;

typedef struct http_response {
    int status;
    char headers[2048]; /* "Name: value\r\n" lines */
    size_t headers_len;
    char *body; /* malloc'd */
    size_t body_len;
    int route; /* the index in api_routes of the route that answered, or -1 */
    bool raw;  /* no envelope: the headers say it all (X-Accel-Redirect) */
} http_response;

void http_response_init(http_response *r);
void http_response_free(http_response *r);
void http_add_header(http_response *r, const char *name, const char *value);
const char *http_reason(int status);

/* Put the envelope in r: {"ok": true, "data": data} for 200, else
 * {"ok": false, "error": error}. data is not consumed. */
void http_respond_json(http_response *r, int status, json_object *data, const char *error);

/* May this state-changing request act with the caller's cookie? Its Origin
 * (or, without one, its Referer) must be the page's own origin or one of
 * the configured ones; a request with neither (no browser) passes. */
bool http_origin_ok(const nova_config *cfg, const http_request *req);

/* A positive integer query parameter (?name=N): 0 with *out set, or left
 * alone when absent; ERR_INVALID otherwise. */
int http_query_id(const char *query, const char *name, int64_t *out, nova_err *err);

/* A text query parameter, percent-decoded ('+' is a space) into
 * out[size]: 1 when present, 0 when absent, or -ERR_INVALID (with err)
 * when longer than size - 1 bytes, badly encoded, or holding a NUL or
 * control character. */
int http_query_text(const char *query, const char *name, char *out, size_t size, nova_err *err);

#endif
