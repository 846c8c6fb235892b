/* utf8.h - measuring UTF-8 text and making client text safe to echo. */
#ifndef NOVA_UTF8_H
#define NOVA_UTF8_H

#include <stddef.h>

/* Number of code points in a UTF-8 string, or -1 if it is not UTF-8. */
long utf8_length(const char *s);

/* Copy at most max_bytes of src into dst (size bytes) as text safe to
 * echo in a message: valid UTF-8 only (each invalid byte becomes '?', no
 * character is cut in half), control characters as '?'. Returns dst. */
char *utf8_excerpt(char *dst, size_t size, const char *src, size_t max_bytes);

#endif
