/* utf8.c - measuring UTF-8 text and making client text safe to echo. */
#include "utf8.h"

#include <stdbool.h>
#include <string.h>

long utf8_length(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    long n = 0;
    while (*p) {
        int extra;
        unsigned cp;
        if (*p < 0x80) {
            extra = 0;
            cp = *p;
        } else if ((*p & 0xE0) == 0xC0) {
            extra = 1;
            cp = *p & 0x1F;
        } else if ((*p & 0xF0) == 0xE0) {
            extra = 2;
            cp = *p & 0x0F;
        } else if ((*p & 0xF8) == 0xF0) {
            extra = 3;
            cp = *p & 0x07;
        } else {
            return -1;
        }
        p++;
        for (int i = 0; i < extra; i++, p++) {
            if ((*p & 0xC0) != 0x80) return -1;
            cp = (cp << 6) | (*p & 0x3F);
        }
        /* overlong forms, surrogates, beyond U+10FFFF */
        static const unsigned min_cp[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[extra] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return -1;
        n++;
    }
    return n;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid. */
static size_t utf8_sequence(const unsigned char *p)
{
    int extra;
    unsigned cp;
    if (*p < 0x80) return 1;
    if ((*p & 0xE0) == 0xC0)
        extra = 1, cp = *p & 0x1F;
    else if ((*p & 0xF0) == 0xE0)
        extra = 2, cp = *p & 0x0F;
    else if ((*p & 0xF8) == 0xF0)
        extra = 3, cp = *p & 0x07;
    else
        return 0;
    for (int i = 1; i <= extra; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    static const unsigned min_cp[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[extra] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
    return (size_t)extra + 1;
}

char *utf8_excerpt(char *dst, size_t size, const char *src, size_t max_bytes)
{
    const unsigned char *p = (const unsigned char *)src;
    size_t out = 0, in = 0;
    while (p[in] && in < max_bytes && out + 1 < size) {
        size_t n = utf8_sequence(p + in);
        if (n == 1 && (p[in] < 0x20 || p[in] == 0x7f)) n = 0;
        if (n == 0) {
            dst[out++] = '?';
            in++;
            continue;
        }
        if (in + n > max_bytes || out + n >= size) break;
        for (size_t i = 0; i < n; i++)
            dst[out++] = (char)p[in + i];
        in += n;
    }
    dst[out] = '\0';
    return dst;
}
