/* log.c - minimal line logger on stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *log_program = "nova";
static int log_level = LOG_INFO;
static int log_pid;

/* Call again in each child after fork(): the pid is kept, not asked for
 * on every line. */
void log_init(const char *program, int level)
{
    log_program = program;
    log_level = level;
    log_pid = (int)getpid();
}

void log_msg(int level, const char *fmt, ...)
{
    if (level > log_level) return;
    char line[1024];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s[%d] %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(tv.tv_usec / 1000), log_program, (int)getpid(),
                     level == LOG_ERROR  ? "error"
                     : level == LOG_INFO ? "info"
                                         : "debug");
    if (n < 0 || (size_t)n >= sizeof line) n = 0;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2) len = sizeof line - 2;
    /* Client-supplied text (paths) must not forge log lines. */
    for (size_t i = (size_t)n; i < len; i++)
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f) line[i] = '?';
    line[len++] = '\n';
    /* One write per line so concurrent workers do not interleave. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
