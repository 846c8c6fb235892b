/* log.h - one line per event on stderr: time, program[pid], level, text;
 * or, for log shippers, the same as one JSON object a line
 * ({"time","program","pid","level","msg"}). Never pass secrets
 * (passwords, tokens, cookies) to these functions. */
#ifndef NOVA_LOG_H
#define NOVA_LOG_H

enum { LOG_ERROR = 0, LOG_INFO = 1, LOG_DEBUG = 2 };

void log_init(const char *program, int level);
/* The program name given to log_init ("nova" before). */
const char *log_program_name(void);
/* Write JSON lines instead of text (log-format = json). */
void log_set_json(int on);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
