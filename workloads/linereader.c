/* linereader.c -- see linereader.h. */
#include "config.h"

#include "workloads/linereader.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LINEREADER_BLOCK_BYTES (64 * 1024)

struct linereader {
    FILE *f;
    bool owns_f;
    char *path;
    char *block;       /* raw bytes read from f */
    size_t block_len;  /* valid bytes in block */
    size_t block_pos;  /* next unread byte in block */
    char *line;        /* the assembled line, NUL-terminated */
    size_t line_cap;
    size_t line_len;
    long lineno;
    uint64_t offset;   /* bytes handed out as lines (with their newlines) */
    uint64_t size;
    bool eof;
    bool pushed_back;
};

/* Open PATH for reading; NULL with ERR_SYSTEM set on failure. */
struct linereader *linereader_open(const char *path, struct err *e)
{
    struct linereader *lr = calloc(1, sizeof(*lr));
    struct stat st;

    if (lr == NULL)
        goto nomem;
    lr->path = strdup(path);
    lr->block = malloc(LINEREADER_BLOCK_BYTES);
    lr->line_cap = 4096;
    lr->line = malloc(lr->line_cap);
    if (lr->path == NULL || lr->block == NULL || lr->line == NULL)
        goto nomem;
    if (strcmp(path, "-") == 0) {
        lr->f = stdin;
    } else {
        lr->f = fopen(path, "rb");
        if (lr->f == NULL) {
            err_sys(e, errno, "%s", path);
            goto err;
        }
        lr->owns_f = true;
    }
    if (fstat(fileno(lr->f), &st) == 0 && S_ISREG(st.st_mode))
        lr->size = (uint64_t)st.st_size;
    if (lr->owns_f && fstat(fileno(lr->f), &st) == 0 && S_ISDIR(st.st_mode)) {
        err_set(e, ERR_INPUT, "%s: is a directory", path);
        goto err;
    }
    return lr;
nomem:
    err_set(e, ERR_SYSTEM, "out of memory");
err:
    linereader_close(lr);
    return NULL;
}

void linereader_close(struct linereader *lr)
{
    if (lr == NULL)
        return;
    if (lr->f != NULL && lr->owns_f)
        fclose(lr->f);
    free(lr->path);
    free(lr->block);
    free(lr->line);
    free(lr);
}

/* Refill the block; 1 when bytes are available, 0 at EOF, -1 on error. */
static int linereader_fill(struct linereader *lr, struct err *e)
{
    if (lr->block_pos < lr->block_len)
        return 1;
    if (lr->eof)
        return 0;
    lr->block_len = fread(lr->block, 1, LINEREADER_BLOCK_BYTES, lr->f);
    lr->block_pos = 0;
    if (lr->block_len == 0) {
        if (ferror(lr->f))
            return err_sys(e, errno ? errno : EIO, "%s", lr->path);
        lr->eof = true;
        return 0;
    }
    return 1;
}

/* Append N bytes to the line, growing up to the limit; -1 when the line
 * would exceed LINEREADER_MAX_BYTES. */
static int linereader_append(struct linereader *lr, const char *p, size_t n, struct err *e)
{
    if (lr->line_len + n > LINEREADER_MAX_BYTES)
        return err_at(e, lr->path, lr->lineno, "line longer than %d bytes", LINEREADER_MAX_BYTES);
    if (lr->line_len + n + 1 > lr->line_cap) {
        size_t cap = lr->line_cap;
        char *grown;

        while (cap < lr->line_len + n + 1)
            cap *= 2;
        if (cap > LINEREADER_MAX_BYTES + 1)
            cap = LINEREADER_MAX_BYTES + 1;
        grown = realloc(lr->line, cap);
        if (grown == NULL)
            return err_set(e, ERR_SYSTEM, "out of memory");
        lr->line = grown;
        lr->line_cap = cap;
    }
    memcpy(lr->line + lr->line_len, p, n);
    lr->line_len += n;
    return 0;
}

int linereader_next(struct linereader *lr, char **line, size_t *len, struct err *e)
{
    bool got_newline = false;
    int rc;

    if (lr->pushed_back) {
        lr->pushed_back = false;
        *line = lr->line;
        *len = lr->line_len;
        return 1;
    }
    lr->line_len = 0;
    lr->lineno++;
    for (;;) {
        const char *start, *nl;
        size_t avail, take;

        rc = linereader_fill(lr, e);
        if (rc < 0)
            return -1;
        if (rc == 0)
            break;
        start = lr->block + lr->block_pos;
        avail = lr->block_len - lr->block_pos;
        nl = memchr(start, '\n', avail);
        take = nl != NULL ? (size_t)(nl - start) : avail;
        if (linereader_append(lr, start, take, e) < 0)
            return -1;
        lr->block_pos += take;
        lr->offset += take;
        if (nl != NULL) {
            lr->block_pos++;
            lr->offset++;
            got_newline = true;
            break;
        }
    }
    if (!got_newline && lr->line_len == 0) {
        lr->lineno--;
        return 0;
    }
    if (lr->line_len > 0 && lr->line[lr->line_len - 1] == '\r')
        lr->line_len--;
    lr->line[lr->line_len] = '\0';
    if (memchr(lr->line, '\0', lr->line_len) != NULL)
        return err_at(e, lr->path, lr->lineno, "NUL byte in line (binary data?)");
    if (lr->lineno == 1 && lr->line_len >= 3 && memcmp(lr->line, "\xEF\xBB\xBF", 3) == 0) {
        memmove(lr->line, lr->line + 3, lr->line_len - 3 + 1);
        lr->line_len -= 3;
    }
    *line = lr->line;
    *len = lr->line_len;
    return 1;
}

void linereader_unread(struct linereader *lr)
{
    lr->pushed_back = true;
}

const char *linereader_path(const struct linereader *lr) { return lr->path; }
long linereader_lineno(const struct linereader *lr) { return lr->lineno; }
uint64_t linereader_offset(const struct linereader *lr) { return lr->offset; }
uint64_t linereader_size(const struct linereader *lr) { return lr->size; }
