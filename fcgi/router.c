/* router.c - path patterns with {id} segments. */
#include "router.h"

#include <stdio.h>
#include <string.h>

unsigned router_method(const char *name)
{
    if (!name) return 0;
    if (!strcmp(name, "GET")) return METHOD_GET;
    if (!strcmp(name, "POST")) return METHOD_POST;
    if (!strcmp(name, "PATCH")) return METHOD_PATCH;
    if (!strcmp(name, "DELETE")) return METHOD_DELETE;
    if (!strcmp(name, "OPTIONS")) return METHOD_OPTIONS;
    return 0;
}

void router_allow_text(unsigned methods, char *out, size_t size)
{
    static const char *names[] = {"GET", "POST", "PATCH", "DELETE", "OPTIONS"};
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < 5; i++) {
        if (!(methods & (1u << i))) continue;
        int n = snprintf(out + len, size - len, "%s%s", len ? ", " : "", names[i]);
        if (n < 0 || (size_t)n >= size - len) break;
        len += (size_t)n;
    }
}

int router_parse_id(const char *s, size_t len, int64_t *out)
{
    if (len == 0 || len > 19 || s[0] == '0') return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX) return -1;
    *out = (int64_t)v;
    return 0;
}

int router_match(const char *pattern, const char *path, int64_t ids[ROUTE_MAX_IDS], size_t *n_ids)
{
    size_t n = 0;
    const char *p = pattern, *q = path;
    if (*p != '/' || *q != '/') return 0;
    while (*p && *q) {
        if (*p != '/' || *q != '/') return 0;
        p++, q++;
        const char *p_end = strchr(p, '/'), *q_end = strchr(q, '/');
        size_t p_len = p_end ? (size_t)(p_end - p) : strlen(p);
        size_t q_len = q_end ? (size_t)(q_end - q) : strlen(q);
        if (p_len == 4 && !strncmp(p, "{id}", 4)) {
            if (n == ROUTE_MAX_IDS || router_parse_id(q, q_len, &ids[n])) return 0;
            n++;
        } else if (p_len != q_len || strncmp(p, q, p_len)) {
            return 0;
        }
        p += p_len, q += q_len;
    }
    if (*p || *q) return 0;
    *n_ids = n;
    return 1;
}
