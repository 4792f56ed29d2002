/* linereader.h -- bounded, streaming line reader for trace files.
 *
 * Reads a file one line at a time through a fixed-size block buffer, so
 * memory is bounded by LINEREADER_MAX_BYTES whatever the file's length.
 * Lines come back without their "\n" or "\r\n"; a UTF-8 byte order mark at
 * the start of the file is dropped; a last line without a newline is
 * returned like any other.  A line longer than the limit, or one holding a
 * NUL byte, is an input error naming FILE:LINE, never a crash. */
#ifndef LLM_LINEREADER_H
#define LLM_LINEREADER_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define LINEREADER_MAX_BYTES (1024 * 1024)

struct linereader;

/* Open PATH ("-" is standard input).  NULL on error (ERR_SYSTEM). */
struct linereader *linereader_open(const char *path, struct err *e);
void linereader_close(struct linereader *lr);

/* Next line: 1 and *line (NUL-terminated, writable, valid until the next
 * call) and *len set; 0 at the end of the file; -1 on error: an over-long
 * line or a NUL byte (ERR_INPUT, "FILE:LINE: ..."), or a read error. */
int linereader_next(struct linereader *lr, char **line, size_t *len, struct err *e);

/* Make the next linereader_next() return the same line again (one step of
 * push-back, used to peek at a header). */
void linereader_unread(struct linereader *lr);

/* The path as given, and the number of the line last returned (1-based). */
const char *linereader_path(const struct linereader *lr);
long linereader_lineno(const struct linereader *lr);

/* Bytes consumed so far, and the file's size (0 when not a regular file). */
uint64_t linereader_offset(const struct linereader *lr);
uint64_t linereader_size(const struct linereader *lr);

#endif
