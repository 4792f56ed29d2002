/* trace_format.h -- how a trace format plugs into trace.c (internal to
 * workloads/).
 *
 * Each format lives in trace_FORMAT.c and exports one const struct
 * trace_format; trace.c lists them in one table for detection and lookup.
 * A format turns lines into requests with a raw arrival time in seconds
 * relative to the file's first request (the native format keeps its own
 * time axis); trace.c applies everything common to all sources: going-back
 * clamping, time_scale, rate_scale, max_duration_s and limit.
 * Generators plug in the same way (trace_format_generator), with no lines. */
#ifndef LLM_TRACE_FORMAT_H
#define LLM_TRACE_FORMAT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/conf.h"
#include "common/err.h"
#include "workloads/linereader.h"
#include "workloads/trace.h"

/* Largest token count accepted from any trace: larger is surely garbage. */
#define TRACE_MAX_TOKENS 100000000u
/* Largest time offset accepted (about 31,700 years). */
#define TRACE_MAX_SECONDS 1e12

struct trace_format {
    const char *name;
    /* Whether FIRST_LINE (BOM and CR removed) is this format's header or
     * first record.  NULL for sources that are not files. */
    bool (*detect)(const char *first_line);
    /* Read and check the header (if the format has one) from LR and return
     * the format's state.  NULL on error. */
    void *(*open)(struct linereader *lr, struct err *e);
    /* Next request: 1 with *out filled, 0 at the end, -1 on error
     * ("FILE:LINE: FIELD: message").  LR is NULL for generators. */
    int (*next)(void *state, struct linereader *lr, struct trace_request *out, struct err *e);
    /* Fraction done in [0,1] for sources without a file; NULL otherwise. */
    double (*progress)(const void *state);
    /* Release the state; may log a summary (skipped lines). */
    void (*close)(void *state);
};

extern const struct trace_format trace_format_azure;
extern const struct trace_format trace_format_burstgpt;
extern const struct trace_format trace_format_mooncake;
extern const struct trace_format trace_format_native;
extern const struct trace_format trace_format_generator;

/* Wrap an opened source STATE of format FMT (LR may be NULL) into a reader
 * applying OPT (may be NULL).  Takes ownership of STATE and LR, closing them
 * on failure.  NULL on error (bad options). */
struct trace_reader *trace_reader_wrap(const struct trace_format *fmt, void *state,
                                       struct linereader *lr, const struct trace_options *opt,
                                       struct err *e);

/* Check OPT's values (time_scale, rate_scale >= 0 and finite ...); -1 with
 * ERR_INPUT naming the option on error. */
int trace_options_check(const struct trace_options *opt, struct err *e);

/* Open a generator wrapped with OPT (may be NULL); with ALLOW_UNBOUNDED the
 * spec may omit duration (the caller bounds it with OPT's limit or
 * max_duration_s).  Defined in generator.c. */
struct trace_reader *gen_open(const struct conf *c, const struct conf_node *spec, uint64_t seed,
                              bool allow_unbounded, const struct trace_options *opt, struct err *e);

/* --- field helpers shared by the readers ------------------------------- */

/* Next non-blank line of LR (lines of only spaces and tabs are skipped):
 * 1, 0 at the end, -1 on error.  Formats use this for every record. */
int trace_next_line(struct linereader *lr, char **line, struct err *e);

/* Split LINE in place at commas into at most MAX fields; returns the number
 * of fields found (which may exceed MAX: the rest are not stored). */
int trace_split_csv(char *line, char **fields, int max);

/* Parse a token count FIELD (named NAME in messages): a non-negative decimal
 * integer <= TRACE_MAX_TOKENS.  -1 with "FILE:LINE: NAME: ..." on error. */
int trace_parse_tokens(const struct linereader *lr, const char *name, const char *field,
                       uint32_t *out, struct err *e);

/* Parse a non-negative finite number of seconds (<= TRACE_MAX_SECONDS). */
int trace_parse_seconds(const struct linereader *lr, const char *name, const char *field,
                        double *out, struct err *e);

/* Copy TEXT for quoting in a message: at most ~40 characters, non-printable
 * bytes as '?'. */
void trace_quote(const char *text, char *buf, size_t len);

/* A field-count error: "FILE:LINE: expected N columns (HEADER), got M". */
int trace_columns_error(const struct linereader *lr, int expected, int got, const char *header,
                        struct err *e);

/* xxhash (XXH64) of a string, never 0 (0 means unknown). */
uint64_t trace_hash_string(const char *s);
/* Hash a list of ids one at a time: start with h = 0, feed each id with
 * trace_hash_id_step, finish with trace_hash_final (never 0).  The same
 * list gives the same value whatever the platform's byte order. */
uint64_t trace_hash_id_step(uint64_t h, uint64_t id);
uint64_t trace_hash_final(uint64_t h);

#endif
