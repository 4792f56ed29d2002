/* err.h -- the one error convention of the tree.
 *
 * A function that can fail returns 0 (or a valid pointer) on success and -1
 * (or NULL) on failure, and fills the caller's struct err with a code and a
 * message.  Messages about user input name the place at fault first, in the
 * form "FILE:LINE: message" or "--set KEY: message", so a user can go
 * straight to it.  Callers add context by prefixing (err_prefix).
 * The process exit status follows the code: ERR_INPUT -> 2, others -> 1. */
#ifndef LLM_ERR_H
#define LLM_ERR_H

#include <stddef.h>

enum err_code {
    ERR_OK = 0,
    ERR_SYSTEM = 1, /* I/O, memory, a child process: not the user's input */
    ERR_INPUT = 2,  /* bad input: a file, a flag, a key; exit status 2 */
};

#define ERR_MSG_MAX 1024

struct err {
    enum err_code code;
    char msg[ERR_MSG_MAX];
};

/* Set code and message; returns -1 so callers can write `return err_set(...)`.
 * A NULL e is allowed and ignored. */
int err_set(struct err *e, enum err_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Input error located at FILE:LINE (line <= 0 omits the line). Returns -1. */
int err_at(struct err *e, const char *file, long line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Set an ERR_SYSTEM error with strerror(errnum) appended. Returns -1. */
int err_sys(struct err *e, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Put "PREFIX: " in front of the current message. Returns -1. */
int err_prefix(struct err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void err_clear(struct err *e);

/* The exit status a program should end with after this error. */
int err_exit_status(const struct err *e);

#endif
