/* log.c - minimal line logger on stderr. */
#include "log.h"

#include <string.h>

#include "utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *log_program = "nova";

const char *log_program_name(void)
{
    return log_program;
}
static int log_level = LOG_INFO;
static int log_pid;
static int log_json;

void log_set_json(int on)
{
    log_json = on;
}

/* Call again in each child after fork(): the pid is kept, not asked for
 * on every line. */
void log_init(const char *program, int level)
{
    log_program = program;
    log_level = level;
    log_pid = (int)getpid();
}

static const char *level_name(int level)
{
    return level == LOG_ERROR ? "error" : level == LOG_INFO ? "info" : "debug";
}

/* Append text to line (cap bytes, *len used) as the inside of a JSON
 * string; stops before the buffer would overflow. */
static void json_escape_into(char *line, size_t cap, size_t *len, const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p && *len + 7 < cap; p++) {
        if (*p == '"' || *p == '\\') {
            line[(*len)++] = '\\';
            line[(*len)++] = (char)*p;
        } else if (*p < 0x20 || *p == 0x7f) {
            *len += (size_t)snprintf(line + *len, cap - *len, "\\u%04x", *p);
        } else {
            line[(*len)++] = (char)*p;
        }
    }
}

void log_msg(int level, const char *fmt, ...)
{
    if (level > log_level) return;
    if (!log_pid) log_pid = (int)getpid(); /* a program that never called log_init */
    char text[1024], line[2048];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (m < 0) text[0] = '\0';
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char when[96];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
    size_t len;
    if (log_json) {
        /* Valid UTF-8 whatever client text the message quotes. */
        char safe[sizeof text];
        utf8_excerpt(safe, sizeof safe, text, strlen(text));
        int n =
            snprintf(line, sizeof line,
                     "{\"time\":\"%s\",\"program\":\"%s\",\"pid\":%d,\"level\":\"%s\",\"msg\":\"",
                     when, log_program, log_pid, level_name(level));
        len = n > 0 && (size_t)n < sizeof line ? (size_t)n : 0;
        json_escape_into(line, sizeof line, &len, safe);
        line[len++] = '"';
        line[len++] = '}';
    } else {
        int n = snprintf(line, sizeof line, "%s %s[%d] %s %s", when, log_program, log_pid,
                         level_name(level), text);
        len = n < 0 ? 0 : (size_t)n < sizeof line - 1 ? (size_t)n : sizeof line - 2;
        /* Client-supplied text (paths) must not forge log lines. */
        size_t start = strlen(when) + 1;
        for (size_t i = start; i < len; i++)
            if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f) line[i] = '?';
    }
    line[len++] = '\n';
    /* One write per line so concurrent workers do not interleave. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
