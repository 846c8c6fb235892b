/* http.c - response helpers. */
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
