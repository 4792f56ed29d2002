/* err.c -- see err.h. */
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void err_vset(struct err *e, enum err_code code, const char *fmt, va_list ap)
{
    e->code = code;
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
}

int err_set(struct err *e, enum err_code code, const char *fmt, ...)
{
    va_list ap;

    if (e == NULL)
        return -1;
    va_start(ap, fmt);
    err_vset(e, code, fmt, ap);
    va_end(ap);
    return -1;
}

int err_at(struct err *e, const char *file, long line, const char *fmt, ...)
{
    char where[512];
    char what[ERR_MSG_MAX];
    va_list ap;

    if (e == NULL)
        return -1;
    if (line > 0)
        snprintf(where, sizeof(where), "%s:%ld", file ? file : "<input>", line);
    else
        snprintf(where, sizeof(where), "%s", file ? file : "<input>");
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    e->code = ERR_INPUT;
    snprintf(e->msg, sizeof(e->msg), "%s: %s", where, what);
    return -1;
}

int err_sys(struct err *e, int errnum, const char *fmt, ...)
{
    char what[ERR_MSG_MAX];
    va_list ap;

    if (e == NULL)
        return -1;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    e->code = ERR_SYSTEM;
    snprintf(e->msg, sizeof(e->msg), "%s: %s", what, strerror(errnum));
    return -1;
}

int err_prefix(struct err *e, const char *fmt, ...)
{
    char head[ERR_MSG_MAX];
    char old[ERR_MSG_MAX];
    va_list ap;

    if (e == NULL)
        return -1;
    va_start(ap, fmt);
    vsnprintf(head, sizeof(head), fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof(old));
    snprintf(e->msg, sizeof(e->msg), "%s: %s", head, old);
    return -1;
}

void err_clear(struct err *e)
{
    if (e == NULL)
        return;
    e->code = ERR_OK;
    e->msg[0] = '\0';
}

int err_exit_status(const struct err *e)
{
    if (e == NULL || e->code == ERR_OK)
        return 0;
    return e->code == ERR_INPUT ? 2 : 1;
}
