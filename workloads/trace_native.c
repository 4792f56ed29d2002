/* trace_native.c -- the project's own trace CSV, read and written.
 *
 *   arrival_s,prompt_tokens,output_tokens,prompt_hash,tenant
 *   0.412731,598,131,,
 *   1.000000,12,40,9f86d081884c7d65,alice
 *
 * arrival_s is seconds on the trace's own time axis (not shifted to the
 * first row, so a written trace reads back unchanged).  prompt_hash is 16
 * hex digits or empty (0, unknown).  tenant is empty (0), "0x" followed by
 * 16 hex digits (that value, as the writer emits it), or any other string,
 * hashed with xxhash. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workloads/trace_format.h"

#define NATIVE_HEADER "arrival_s,prompt_tokens,output_tokens,prompt_hash,tenant"
#define NATIVE_COLUMNS 5

static bool native_detect(const char *first_line)
{
    return strncmp(first_line, NATIVE_HEADER, strlen(NATIVE_HEADER)) == 0;
}

static void *native_open(struct linereader *lr, struct err *e)
{
    static int state; /* the reader keeps no state: any non-NULL pointer */
    char *line;
    char quoted[64];
    int rc = trace_next_line(lr, &line, e);

    if (rc < 0)
        return NULL;
    if (rc == 0 || strcmp(line, NATIVE_HEADER) != 0) {
        trace_quote(rc == 0 ? "" : line, quoted, sizeof(quoted));
        err_at(e, linereader_path(lr), linereader_lineno(lr),
               "native: expected the header '%s', got '%s'", NATIVE_HEADER, quoted);
        return NULL;
    }
    return &state;
}

/* Exactly 16 hex digits into *out; false otherwise. */
static bool native_hex16(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 16; i++) {
        char ch = s[i];
        int d;

        if (ch >= '0' && ch <= '9')
            d = ch - '0';
        else if (ch >= 'a' && ch <= 'f')
            d = ch - 'a' + 10;
        else if (ch >= 'A' && ch <= 'F')
            d = ch - 'A' + 10;
        else
            return false;
        v = (v << 4) | (uint64_t)d;
    }
    if (s[16] != '\0')
        return false;
    *out = v;
    return true;
}

static int native_next(void *state, struct linereader *lr, struct trace_request *out, struct err *e)
{
    char *line, *fields[NATIVE_COLUMNS];
    char quoted[64];
    int n, rc;

    rc = trace_next_line(lr, &line, e);
    if (rc <= 0)
        return rc;
    n = trace_split_csv(line, fields, NATIVE_COLUMNS);
    if (n != NATIVE_COLUMNS)
        return trace_columns_error(lr, NATIVE_COLUMNS, n, NATIVE_HEADER, e);
    memset(out, 0, sizeof(*out));
    if (trace_parse_seconds(lr, "arrival_s", fields[0], &out->arrival_s, e) < 0 ||
        trace_parse_tokens(lr, "prompt_tokens", fields[1], &out->prompt_tokens, e) < 0 ||
        trace_parse_tokens(lr, "output_tokens", fields[2], &out->output_tokens, e) < 0)
        return -1;
    if (fields[3][0] != '\0' && !native_hex16(fields[3], &out->prompt_hash)) {
        trace_quote(fields[3], quoted, sizeof(quoted));
        return err_at(e, linereader_path(lr), linereader_lineno(lr),
                      "prompt_hash: expected 16 hex digits or nothing, got '%s'", quoted);
    }
    if (fields[4][0] == '\0')
        out->tenant = 0;
    else if (strncmp(fields[4], "0x", 2) == 0 && native_hex16(fields[4] + 2, &out->tenant))
        ;
    else
        out->tenant = trace_hash_string(fields[4]);
    return 1;
}

const struct trace_format trace_format_native = {
    .name = "native",
    .detect = native_detect,
    .open = native_open,
    .next = native_next,
    .progress = NULL,
    .close = NULL,
};

/* --- writer ---------------------------------------------------------------- */

struct trace_writer {
    FILE *f;
    bool owns_f;
    char *path;
    bool failed;
};

/* Create PATH ("-" is standard output) and write the header.  NULL with
 * ERR_SYSTEM on error. */
struct trace_writer *trace_writer_open(const char *path, struct err *e)
{
    struct trace_writer *w = calloc(1, sizeof(*w));

    if (w == NULL || (w->path = strdup(path)) == NULL) {
        free(w);
        err_set(e, ERR_SYSTEM, "out of memory");
        return NULL;
    }
    if (strcmp(path, "-") == 0) {
        w->f = stdout;
    } else {
        w->f = fopen(path, "w");
        if (w->f == NULL) {
            err_sys(e, errno, "%s", path);
            free(w->path);
            free(w);
            return NULL;
        }
        w->owns_f = true;
    }
    if (fprintf(w->f, "%s\n", NATIVE_HEADER) < 0)
        w->failed = true;
    return w;
}

/* Write one request: arrival with 6 decimals (microseconds), so output is
 * deterministic and reads back within 0.5 us.  -1 on a bad arrival time
 * (ERR_INPUT) or a write error (ERR_SYSTEM). */
int trace_writer_put(struct trace_writer *w, const struct trace_request *req, struct err *e)
{
    char hash[20] = "", tenant[24] = "";

    if (!isfinite(req->arrival_s) || req->arrival_s < 0)
        return err_set(e, ERR_INPUT, "%s: arrival time %g is not a non-negative number", w->path,
                       req->arrival_s);
    if (req->prompt_hash != 0)
        snprintf(hash, sizeof(hash), "%016" PRIx64, req->prompt_hash);
    if (req->tenant != 0)
        snprintf(tenant, sizeof(tenant), "0x%016" PRIx64, req->tenant);
    if (fprintf(w->f, "%.6f,%" PRIu32 ",%" PRIu32 ",%s,%s\n", req->arrival_s, req->prompt_tokens,
                req->output_tokens, hash, tenant) < 0) {
        w->failed = true;
        return err_sys(e, errno, "%s", w->path);
    }
    return 0;
}

int trace_writer_close(struct trace_writer *w, struct err *e)
{
    int rc = 0;
    int saved;

    if (w == NULL)
        return 0;
    if (fflush(w->f) != 0 || ferror(w->f))
        w->failed = true;
    saved = errno;
    if (w->owns_f && fclose(w->f) != 0) {
        w->failed = true;
        saved = errno;
    }
    if (w->failed)
        rc = err_sys(e, saved ? saved : EIO, "%s: write failed", w->path);
    free(w->path);
    free(w);
    return rc;
}
