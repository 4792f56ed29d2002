/* bench_util.c -- what llmbench's subcommands share (see bench.h): timing,
 * the machine, arguments, tables and JSON. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "common/log.h"
#include "kernels/bench.h"
#include "kernels/kernels.h"

#define BENCH_DEFAULT_LLC (32u * 1024 * 1024)

/* ---- timing ---------------------------------------------------------------- */

double bench_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* qsort comparator for doubles, increasing. */
static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y ? 1 : 0;
}

double bench_median(const double *v, size_t n)
{
    double *s, m;

    if (n == 0 || (s = malloc(n * sizeof *s)) == NULL)
        return NAN;
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    m = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
    return m;
}

struct bench_timing bench_time(void (*fn)(void *arg, int i), void *arg, int repeat, double budget_s)
{
    struct bench_timing t = {0};
    double *s, t0, warm;
    int i;

    if (repeat < 1)
        repeat = 1;
    t0 = bench_now_s();
    fn(arg, 0);
    warm = bench_now_s() - t0;
    if (budget_s > 0 && warm > budget_s) {
        t.median_s = t.min_s = warm;
        t.runs = 1;
        return t;
    }
    s = malloc((size_t)repeat * sizeof(*s));
    if (s == NULL) {
        t.median_s = t.min_s = warm;
        t.runs = 1;
        return t;
    }
    for (i = 0; i < repeat; i++) {
        t0 = bench_now_s();
        fn(arg, i + 1);
        s[i] = bench_now_s() - t0;
    }
    qsort(s, (size_t)repeat, sizeof(*s), cmp_double);
    t.median_s = repeat % 2 ? s[repeat / 2] : 0.5 * (s[repeat / 2 - 1] + s[repeat / 2]);
    t.min_s = s[0];
    t.runs = repeat;
    free(s);
    return t;
}

void bench_settle(void)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 250000000};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Parse one dimension of --sizes. */
static int bench_parse_dim(const char *s, size_t len, const char *item, long *out, struct err *e)
{
    char buf[32], *end;
    long v;

    if (len == 0 || len >= sizeof(buf))
        return err_set(e, ERR_INPUT, "--sizes: '%s' is not N or MxNxK", item);
    memcpy(buf, s, len);
    buf[len] = '\0';
    v = strtol(buf, &end, 10);
    if (*end != '\0' || end == buf)
        return err_set(e, ERR_INPUT, "--sizes: '%s' is not N or MxNxK", item);
    if (v <= 0 || v > BENCH_MAX_DIM)
        return err_set(e, ERR_INPUT, "--sizes: '%s': sizes must be in [1, %ld]", item, BENCH_MAX_DIM);
    *out = v;
    return 0;
}

int bench_parse_sizes(const char *list, struct bench_mnk *cases, int max, int *n, struct err *e)
{
    const char *p = list;

    *n = 0;
    if (*list == '\0')
        return err_set(e, ERR_INPUT, "--sizes: empty list");
    while (1) {
        size_t len = strcspn(p, ",");
        char item[128];
        long d[3];
        int nd = 0;
        const char *q = item;

        if (len == 0 || len >= sizeof(item))
            return err_set(e, ERR_INPUT, "--sizes: empty or overlong item in '%s'", list);
        if (*n == max)
            return err_set(e, ERR_INPUT, "--sizes: more than %d cases", max);
        memcpy(item, p, len);
        item[len] = '\0';
        while (1) {
            size_t dl = strcspn(q, "x");

            if (nd == 3)
                return err_set(e, ERR_INPUT, "--sizes: '%s' is not N or MxNxK", item);
            if (bench_parse_dim(q, dl, item, &d[nd++], e) != 0)
                return -1;
            if (q[dl] == '\0')
                break;
            q += dl + 1;
        }
        if (nd == 1)
            cases[(*n)++] = (struct bench_mnk){d[0], d[0], d[0]};
        else if (nd == 3)
            cases[(*n)++] = (struct bench_mnk){d[0], d[1], d[2]};
        else
            return err_set(e, ERR_INPUT, "--sizes: '%s' is not N or MxNxK", item);
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    return 0;
}

/* ---- the machine ----------------------------------------------------------- */

/* Parse a /sys cache size ("32768K", "1M", "512") into bytes; 0 if unreadable. */
static size_t sys_cache_size(const char *path)
{
    char buf[64], *end;
    unsigned long v;
    FILE *fp = fopen(path, "r");

    if (fp == NULL)
        return 0;
    if (fgets(buf, sizeof(buf), fp) == NULL) {
        fclose(fp);
        return 0;
    }
    fclose(fp);
    errno = 0;
    v = strtoul(buf, &end, 10);
    if (errno != 0 || end == buf)
        return 0;
    if (*end == 'K')
        v *= 1024;
    else if (*end == 'M')
        v *= 1024 * 1024;
    return v;
}

size_t bench_llc_bytes(void)
{
    static size_t cached;
    char path[128];
    size_t best = 0, v;
    long sc;
    int i;

    if (cached != 0)
        return cached;
    for (i = 0; i < 8; i++) {
        snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        v = sys_cache_size(path);
        best = v > best ? v : best;
    }
#ifdef _SC_LEVEL3_CACHE_SIZE
    if (best == 0) {
        sc = sysconf(_SC_LEVEL3_CACHE_SIZE);
        if (sc > 0)
            best = (size_t)sc;
    }
#else
    (void)sc;
#endif
    cached = best > 0 ? best : BENCH_DEFAULT_LLC;
    return cached;
}

int bench_copies(double bytes)
{
    double want = 2.0 * (double)bench_llc_bytes() * kn_get_threads();
    double n;

    if (!(bytes > 0))
        return 1;
    n = floor(want / bytes) + 1;
    return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

int bench_cores(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n > 0 ? (int)n : 1;
#endif
}

/* The "model name" line of /proc/cpuinfo into buf ("unknown" otherwise). */
static void cpu_model(char *buf, size_t len)
{
    char line[256];
    FILE *fp = fopen("/proc/cpuinfo", "r");

    snprintf(buf, len, "unknown");
    if (fp == NULL)
        return;
    while (fgets(line, sizeof(line), fp) != NULL) {
        char *colon = strchr(line, ':');

        if (strncmp(line, "model name", 10) == 0 && colon != NULL) {
            colon++;
            while (*colon == ' ' || *colon == '\t')
                colon++;
            colon[strcspn(colon, "\n")] = '\0';
            snprintf(buf, len, "%s", colon);
            break;
        }
    }
    fclose(fp);
}

json_t *bench_host_json(void)
{
    char model[256], date[64];
    time_t now = time(NULL);
    struct tm tm;

    cpu_model(model, sizeof(model));
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_pack("{s:s, s:i, s:I, s:s, s:s}", "cpu", model, "cores", bench_cores(), "llc_bytes",
                     (json_int_t)bench_llc_bytes(), "isa", kn_isa_name(kn_get_isa()), "date", date);
}

/* ---- arguments --------------------------------------------------------------- */

int bench_parse_int(const char *opt, const char *arg, long lo, long hi, long *out, struct err *e)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(arg, &end, 10);
    if (end == arg || *end != '\0' || errno != 0)
        return err_set(e, ERR_INPUT, "%s: '%s' is not an integer", opt, arg);
    if (v < lo || v > hi)
        return err_set(e, ERR_INPUT, "%s: %ld is out of range [%ld, %ld]", opt, v, lo, hi);
    *out = v;
    return 0;
}

int bench_fail(const struct err *e)
{
    log_error("%s", e->msg);
    return err_exit_status(e);
}

/* ---- tables ------------------------------------------------------------------ */

struct bench_table {
    int ncols;
    const char *const *names;
    char **cells; /* rows x ncols, row-major; NULL where a row was left short */
    int rows, cap;
    int col;      /* next cell of the current row */
};

struct bench_table *bench_table_new(int ncols, const char *const *names)
{
    struct bench_table *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    t->ncols = ncols;
    t->names = names;
    return t;
}

void bench_table_free(struct bench_table *t)
{
    int i;

    if (t == NULL)
        return;
    for (i = 0; i < t->rows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t);
}

void bench_table_row(struct bench_table *t)
{
    char **cells;
    int i;

    if (t->rows == t->cap) {
        int cap = t->cap ? 2 * t->cap : 16;

        cells = realloc(t->cells, (size_t)cap * t->ncols * sizeof(*cells));
        if (cells == NULL)
            return; /* out of memory: the row's cells go to the last row */
        t->cells = cells;
        t->cap = cap;
    }
    for (i = 0; i < t->ncols; i++)
        t->cells[t->rows * t->ncols + i] = NULL;
    t->rows++;
    t->col = 0;
}

void bench_table_cell(struct bench_table *t, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;

    if (t->rows == 0 || t->col >= t->ncols)
        return;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    t->cells[(t->rows - 1) * t->ncols + t->col++] = s;
}

/* Whether S reads as a number (possibly with a unit suffix like "x" or "%"). */
static int numeric(const char *s)
{
    return s != NULL && (isdigit((unsigned char)s[0]) || (s[0] == '-' && isdigit((unsigned char)s[1])));
}

void bench_table_print(struct bench_table *t, FILE *f)
{
    int *w = calloc((size_t)t->ncols, sizeof(*w));
    int r, c;

    if (w == NULL)
        return;
    for (c = 0; c < t->ncols; c++) {
        w[c] = (int)strlen(t->names[c]);
        for (r = 0; r < t->rows; r++) {
            const char *s = t->cells[r * t->ncols + c];
            int len = s != NULL ? (int)strlen(s) : 1;

            w[c] = len > w[c] ? len : w[c];
        }
    }
    for (c = 0; c < t->ncols; c++)
        fprintf(f, "%s%-*s", c ? "  " : "", c + 1 < t->ncols ? w[c] : 0, t->names[c]);
    fputc('\n', f);
    for (r = 0; r < t->rows; r++) {
        for (c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * t->ncols + c];

            if (s == NULL)
                s = "-";
            if (numeric(s))
                fprintf(f, "%s%*s", c ? "  " : "", w[c], s);
            else
                fprintf(f, "%s%-*s", c ? "  " : "", c + 1 < t->ncols ? w[c] : 0, s);
        }
        fputc('\n', f);
    }
    fflush(f);
    free(w);
}

/* ---- JSON -------------------------------------------------------------------- */

json_t *bench_json_num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

json_t *bench_json_doc(const char *command, int threads)
{
    return json_pack("{s:s, s:s, s:o, s:i, s:[]}", "tool", "llmbench", "command", command, "host",
                     bench_host_json(), "threads", threads, "results");
}

int bench_json_write(const char *file, json_t *doc, struct err *e)
{
    char tmp[4096];
    FILE *f;
    int bad;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", file) >= (int)sizeof(tmp))
        return err_set(e, ERR_INPUT, "--json %s: name too long", file);
    f = fopen(tmp, "w");
    if (f == NULL)
        return err_sys(e, errno, "--json %s", file);
    bad = json_dumpf(doc, f, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) != 0 || fputc('\n', f) == EOF;
    if (fclose(f) != 0 || bad) {
        int errnum = errno;

        unlink(tmp);
        return err_sys(e, errnum, "--json %s", file);
    }
    if (rename(tmp, file) != 0) {
        int errnum = errno;

        unlink(tmp);
        return err_sys(e, errnum, "--json %s", file);
    }
    return 0;
}
