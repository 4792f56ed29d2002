/* log.h -- the one logging convention: one line per message on stderr,
 * "PROGRAM: LEVEL: message", filtered by a global level.  The level comes
 * from -v/-q flags or the LLMSCALE_LOG environment variable
 * (error, warn, info, debug). */
#ifndef LLM_LOG_H
#define LLM_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Name the program and read LLMSCALE_LOG. */
void log_init(const char *progname);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
const char *log_progname(void);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
