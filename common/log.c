/* log.c -- see log.h. */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *log_prog = "llmscale";
static enum log_level log_level_now = LOG_INFO;
static const char *const log_names[] = {"error", "warning", "info", "debug"};

void log_init(const char *progname)
{
    const char *env = getenv("LLMSCALE_LOG");

    if (progname != NULL) {
        const char *slash = strrchr(progname, '/');
        log_prog = slash ? slash + 1 : progname;
    }
    if (env == NULL)
        return;
    if (strcmp(env, "error") == 0)
        log_level_now = LOG_ERROR;
    else if (strcmp(env, "warn") == 0 || strcmp(env, "warning") == 0)
        log_level_now = LOG_WARN;
    else if (strcmp(env, "info") == 0)
        log_level_now = LOG_INFO;
    else if (strcmp(env, "debug") == 0)
        log_level_now = LOG_DEBUG;
}

void log_set_level(enum log_level level)
{
    log_level_now = level;
}

enum log_level log_get_level(void)
{
    return log_level_now;
}

const char *log_progname(void)
{
    return log_prog;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    char line[2048];
    va_list ap;

    if (level > log_level_now)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* One fprintf per message so concurrent writers do not interleave. */
    fprintf(stderr, "%s: %s: %s\n", log_prog, log_names[level], line);
}
