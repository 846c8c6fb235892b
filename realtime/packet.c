/* packet.c - every packet a socket receives, built in one place.
 *
 * Notifications (live or replayed), direct replies (pong,
 * resync_required) and error packets all have the shape of API.md §5; the
 * text is built once per packet and shared by reference between the queues
 * it sits in, with LWS_PRE bytes of headroom for lws_write. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/json_util.h"
#include "rt.h"

packet *packet_new(const char *text, size_t len)
{
    packet *p = malloc(sizeof *p + LWS_PRE + len);
    if (!p) return NULL;
    p->refs = 1;
    p->len = len;
    memcpy(p->bytes + LWS_PRE, text, len);
    return p;
}

void packet_unref(packet *p)
{
    if (p && --p->refs == 0) free(p);
}

packet *packet_make(const packet_fields *f)
{
    if (f->code) {
        /* An error packet: the message may quote client text, so json-c
         * escapes it. */
        json_object *o = json_object_new_object();
        json_object_object_add(o, "action", json_str("error"));
        json_object_object_add(o, "request_id", json_i64(f->request_id));
        json_object_object_add(o, "ok", json_object_new_boolean(0));
        json_object_object_add(o, "code", json_i64(f->code));
        json_object_object_add(o, "error", json_str(f->error ? f->error : ""));
        size_t len;
        const char *text = json_text(o, &len);
        packet *p = packet_new(text, len);
        json_object_put(o);
        return p;
    }
    /* A notification or reply: action names and data are ours (outbox
     * rows, constants), already JSON-safe. */
    const char *data = f->data ? f->data : "null";
    size_t cap = strlen(f->action) + strlen(data) + 128;
    char *text = malloc(cap);
    if (!text) return NULL;
    int len;
    if (f->event_id)
        len = snprintf(text, cap,
                       "{\"action\":\"%s\",\"request_id\":%lld,\"ok\":true,\"event_id\":%lld,"
                       "\"data\":%s}",
                       f->action, (long long)f->request_id, (long long)f->event_id, data);
    else
        len = snprintf(text, cap, "{\"action\":\"%s\",\"request_id\":%lld,\"ok\":true,\"data\":%s}",
                       f->action, (long long)f->request_id, data);
    packet *p = len > 0 ? packet_new(text, (size_t)len) : NULL;
    free(text);
    return p;
}

void rt_origin_format(const rt *r, const conn *c, char *out, size_t size)
{
    snprintf(out, size, "%s#%llu", r->name, (unsigned long long)c->id);
}

bool rt_origin_socket(const rt *r, const char *origin, uint64_t *id)
{
    size_t n = strlen(r->name);
    if (!origin || strncmp(origin, r->name, n) || origin[n] != '#') return false;
    char *end;
    unsigned long long v = strtoull(origin + n + 1, &end, 10);
    if (*end) return false;
    *id = v;
    return true;
}
