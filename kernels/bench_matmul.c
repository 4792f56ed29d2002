/* bench_matmul.c -- `llmbench matmul`: out (m, n) = x (m, k) W^T against
 * OpenBLAS, the roofline and float64.
 *
 * For each case it times the chosen backend, then OpenBLAS f32 on the same
 * shape and thread count (cblas_sgemm with W transposed, or cblas_sgemv for
 * m = 1), and for bf16/q8 weights the f32 "cpu" kernel too (alternating
 * with the benchmarked kernel run by run, so that a shared machine's swings
 * in load and bandwidth fall on both sides of the ratio alike), each over
 * copies of the operands that together exceed twice the LLC, so every run
 * streams its weights from memory as a model's forward pass does.  The
 * error is measured on a sample of outputs against a float64 dot product
 * with the original f32 weights (so for bf16 and q8 it includes the
 * quantisation error). */
#include "config.h"

#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef HAVE_OPENBLAS
#include <cblas.h>
#endif

#include "common/log.h"
#include "common/rng.h"
#include "kernels/bench.h"
#include "kernels/kernels.h"

#define MM_MAX_CASES 64
#define MM_ERR_SAMPLES 256
#define MM_MAX_ROUNDS 100
#define MM_WARM_S 0.05  /* seconds of warm-up calls before each timing */
#define MM_BUDGET_S 5.0 /* a call longer than this is timed once */

struct mm_opts {
    const char *backend; /* "cpu", "ref" or "openblas" */
    enum kn_dtype dtype;
    int group;
    int no_pack; /* q8: keep data and scales apart instead of kn_pack_q8 */
    int threads;
    int repeat;
    int rounds; /* the whole timing of a case, repeated; medians over rounds */
    const char *json_file;
    const char *roofline_file;
    struct bench_mnk cases[MM_MAX_CASES];
    int ncases;
};

/* The default cases: GEMM cubed 1024, 2048, 4096 and the GEMVs of a 7B
 * model's attention (4096 x 4096) and MLP (11008 x 4096) projections. */
static const struct bench_mnk mm_defaults[] = {
    {1024, 1024, 1024}, {2048, 2048, 2048}, {4096, 4096, 4096}, {1, 4096, 4096}, {1, 11008, 4096},
};

/* "f32", "bf16" or "q8". */
static const char *dtype_name(enum kn_dtype d)
{
    return d == KN_BF16 ? "bf16" : d == KN_Q8 ? "q8" : "f32";
}

/* Bytes of the weights W (n, k) in dtype D, scales included. */
static double weight_bytes(enum kn_dtype d, long n, long k, int group)
{
    double e = (double)n * k;

    if (d == KN_BF16)
        return 2 * e;
    if (d == KN_Q8)
        return e + 4 * e / group;
    return 4 * e;
}


/* Refuse cases whose operands would not fit: the f32 weights (for the
 * baseline and the reference) plus the benchmarked weights, x and out. */
static int check_case(const struct mm_opts *o, const struct bench_mnk *c, struct err *e)
{
    double bytes = 4.0 * c->n * c->k + 4.0 * c->m * c->k + 4.0 * c->m * c->n;

    if (o->dtype != KN_F32)
        bytes += weight_bytes(o->dtype, c->n, c->k, o->group);
    if (o->dtype == KN_Q8 && !o->no_pack)
        bytes += weight_bytes(o->dtype, c->n, c->k, o->group) + 32.0 * c->n; /* the packed copy */
    if (bytes > BENCH_MAX_OPERAND_BYTES)
        return err_set(e, ERR_INPUT, "--sizes %ldx%ldx%ld: operands need %.1f GiB, above the %.0f GiB limit",
                       c->m, c->n, c->k, bytes / (1 << 30), BENCH_MAX_OPERAND_BYTES / (1 << 30));
    if (o->dtype == KN_Q8 && c->k % o->group != 0)
        return err_set(e, ERR_INPUT, "--sizes %ldx%ldx%ld: q8 needs k a multiple of the group (%d)", c->m,
                       c->n, c->k, o->group);
    return 0;
}

/* ---- one case ------------------------------------------------------------------ */

/* Copies of the operands of one kind of run, cycled through. */
struct mm_run {
    const struct kn_backend *be; /* NULL: OpenBLAS */
    struct kn_weights *w;        /* copies */
    float **x, **out;            /* copies */
    int copies;
    int m;
    int last; /* the copy the latest run wrote */
};

/* bench_time callback: one matmul on copy I mod copies (OpenBLAS when the
 * backend is NULL); remembers the copy for the error check. */
static void mm_call(void *arg, int i)
{
    struct mm_run *r = arg;
    int c = i % r->copies;
    const struct kn_weights *w = &r->w[c];

    r->last = c;
    if (r->be != NULL) {
        r->be->matmul(r->out[c], r->x[c], w, r->m);
        return;
    }
#ifdef HAVE_OPENBLAS
    if (r->m == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, w->n, w->k, 1.0f, w->data, w->k, r->x[c], 1, 0.0f,
                    r->out[c], 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r->m, w->n, w->k, 1.0f, r->x[c], w->k,
                    w->data, w->k, 0.0f, r->out[c], w->n);
#endif
}

/* Call R for at least MM_WARM_S (once at least): threads woken and caches
 * and TLBs filled before a timing, also after a pause (bench_settle), when
 * the VM may have idled the cores; one warm-up call alone left
 * microsecond-sized cases timed 10x slow after a pause.  Returns the time of
 * the first call (over MM_BUDGET_S, the caller takes it as the timing). */
static double mm_warm(struct mm_run *r)
{
    double t0 = bench_now_s(), first;
    int i = 1;

    mm_call(r, 0);
    first = bench_now_s() - t0;
    while (first <= MM_BUDGET_S && bench_now_s() - t0 < MM_WARM_S)
        mm_call(r, i++);
    return first;
}

/* Everything one case allocates, freed by mm_case_free. */
struct mm_data {
    float *w32;          /* (n, k) master weights */
    void *wq;            /* master weights in the benchmarked dtype (not f32) */
    float *scales;       /* q8 scales */
    float **x, **out;    /* xcopies each */
    void **wcopies;      /* benchmarked dtype, wcopies_n of them (copy 0 = master) */
    float **scopies;
    float **w32copies;   /* f32, w32copies_n (copy 0 = w32) */
    void **pcopies;      /* q8: each weight copy in the kn_pack_q8 layout (or NULL) */
    struct kn_weights *wv, *w32v;
    int xcopies, wcopies_n, w32copies_n;
};

/* Free what mm_data_build allocated (also a partly built D) and zero D. */
static void mm_data_free(struct mm_data *d)
{
    int i;

    for (i = 0; i < d->xcopies; i++) {
        if (d->x != NULL)
            free(d->x[i]);
        if (d->out != NULL)
            free(d->out[i]);
    }
    for (i = 0; i < d->wcopies_n; i++)
        if (d->pcopies != NULL)
            free(d->pcopies[i]);
    for (i = 1; i < d->wcopies_n; i++) {
        if (d->wcopies != NULL)
            free(d->wcopies[i]);
        if (d->scopies != NULL)
            free(d->scopies[i]);
    }
    for (i = 1; i < d->w32copies_n; i++)
        if (d->w32copies != NULL)
            free(d->w32copies[i]);
    free(d->x);
    free(d->out);
    free(d->wcopies);
    free(d->scopies);
    free(d->pcopies);
    free(d->w32copies);
    free(d->wv);
    free(d->w32v);
    free(d->w32);
    free(d->wq);
    free(d->scales);
    memset(d, 0, sizeof(*d));
}

/* A copy of N bytes of SRC, or NULL. */
static void *dup_bytes(const void *src, size_t n)
{
    void *p = malloc(n);

    if (p != NULL)
        memcpy(p, src, n);
    return p;
}

/* Build the operands of case C: random weights and inputs, converted and
 * copied.  Returns 0, or -1 with an ERR_SYSTEM when memory runs out. */
static int mm_data_build(const struct mm_opts *o, const struct bench_mnk *c, struct mm_data *d,
                         struct err *e)
{
    size_t nk = (size_t)c->n * c->k, mk = (size_t)c->m * c->k, mn = (size_t)c->m * c->n, i;
    size_t wsize = o->dtype == KN_BF16 ? 2 * nk : o->dtype == KN_Q8 ? nk : 4 * nk;
    size_t ssize = o->dtype == KN_Q8 ? nk / o->group * sizeof(float) : 0;
    double run_bytes = weight_bytes(o->dtype, c->n, c->k, o->group) + 4.0 * (mk + mn);
    struct rng r;
    int j;

    memset(d, 0, sizeof(*d));
    rng_init(&r, 42, RNG_STREAM_USER);
    d->w32 = malloc(nk * sizeof(float));
    if (d->w32 == NULL)
        goto oom;
    for (i = 0; i < nk; i++)
        d->w32[i] = (float)(2 * rng_uniform(&r) - 1);
    if (o->dtype == KN_BF16) {
        d->wq = malloc(wsize);
        if (d->wq == NULL)
            goto oom;
        kn_f32_to_bf16(d->wq, d->w32, nk);
    } else if (o->dtype == KN_Q8) {
        d->wq = malloc(wsize);
        d->scales = malloc(ssize);
        if (d->wq == NULL || d->scales == NULL)
            goto oom;
        kn_quantize_q8(d->wq, d->scales, d->w32, nk, o->group);
    }
    /* x and out rotate with the benchmarked weights; the f32 runs (baseline,
     * f32 kernel) reuse the same x/out copies, cycling over fewer or more
     * weight copies of their own. */
    d->wcopies_n = bench_copies(run_bytes);
    d->w32copies_n = bench_copies(4.0 * (nk + mk + mn));
    d->xcopies = d->wcopies_n > d->w32copies_n ? d->wcopies_n : d->w32copies_n;
    d->x = calloc((size_t)d->xcopies, sizeof(float *));
    d->out = calloc((size_t)d->xcopies, sizeof(float *));
    d->wcopies = calloc((size_t)d->wcopies_n, sizeof(void *));
    d->scopies = calloc((size_t)d->wcopies_n, sizeof(float *));
    d->pcopies = calloc((size_t)d->wcopies_n, sizeof(void *));
    d->w32copies = calloc((size_t)d->w32copies_n, sizeof(float *));
    d->wv = calloc((size_t)d->wcopies_n, sizeof(*d->wv));
    d->w32v = calloc((size_t)d->w32copies_n, sizeof(*d->w32v));
    if (d->x == NULL || d->out == NULL || d->wcopies == NULL || d->scopies == NULL || d->pcopies == NULL ||
        d->w32copies == NULL || d->wv == NULL || d->w32v == NULL)
        goto oom;
    for (j = 0; j < d->xcopies; j++) {
        d->x[j] = malloc(mk * sizeof(float));
        d->out[j] = calloc(mn, sizeof(float));
        if (d->x[j] == NULL || d->out[j] == NULL)
            goto oom;
        if (j == 0)
            for (i = 0; i < mk; i++)
                d->x[0][i] = (float)(2 * rng_uniform(&r) - 1);
        else
            memcpy(d->x[j], d->x[0], mk * sizeof(float));
    }
    for (j = 0; j < d->w32copies_n; j++) {
        d->w32copies[j] = j == 0 ? d->w32 : dup_bytes(d->w32, nk * sizeof(float));
        if (d->w32copies[j] == NULL)
            goto oom;
        d->w32v[j] = (struct kn_weights){.dtype = KN_F32, .n = (int)c->n, .k = (int)c->k,
                                          .group = o->group, .data = d->w32copies[j]};
    }
    for (j = 0; j < d->wcopies_n; j++) {
        if (o->dtype == KN_F32) {
            d->wv[j] = d->w32v[j % d->w32copies_n];
            continue;
        }
        d->wcopies[j] = j == 0 ? d->wq : dup_bytes(d->wq, wsize);
        d->scopies[j] = j == 0 || ssize == 0 ? d->scales : dup_bytes(d->scales, ssize);
        if (d->wcopies[j] == NULL || (ssize > 0 && d->scopies[j] == NULL))
            goto oom;
        d->wv[j] = (struct kn_weights){.dtype = o->dtype, .n = (int)c->n, .k = (int)c->k,
                                        .group = o->group, .data = d->wcopies[j],
                                        .scales = d->scopies[j]};
        if (o->dtype == KN_Q8 && !o->no_pack) {
            d->pcopies[j] = malloc(kn_pack_q8_bytes(&d->wv[j]));
            if (d->pcopies[j] == NULL)
                goto oom;
            kn_pack_q8(d->pcopies[j], &d->wv[j]);
        }
    }
    if (o->dtype == KN_F32)
        d->wcopies_n = 0; /* the f32 copies own the memory */
    return 0;
oom:
    if (o->dtype == KN_F32)
        d->wcopies_n = 0;
    mm_data_free(d);
    return err_set(e, ERR_SYSTEM, "%ldx%ldx%ld: out of memory for the operands", c->m, c->n, c->k);
}

/* Max |out - ref| / max |ref| over a sample of outputs of OUT against the
 * float64 product of x and the f32 weights. */
static double mm_error(const struct bench_mnk *c, const float *out, const float *x, const float *w32)
{
    long total = c->m * c->n, s, samples = total < MM_ERR_SAMPLES ? total : MM_ERR_SAMPLES;
    double max_err = 0, max_ref = 0;
    struct rng r;

    rng_init(&r, 7, RNG_STREAM_USER + 1);
    for (s = 0; s < samples; s++) {
        long idx = samples == total ? s : (long)rng_below(&r, (uint64_t)total);
        long i = idx / c->n, j = idx % c->n, l;
        double ref = 0;

        for (l = 0; l < c->k; l++)
            ref += (double)x[i * c->k + l] * w32[j * c->k + l];
        max_err = fmax(max_err, fabs(out[idx] - ref));
        max_ref = fmax(max_ref, fabs(ref));
    }
    return max_ref > 0 ? max_err / max_ref : max_err;
}

/* Time one kind of run over the copies; returns the median seconds. */
static double mm_time(struct mm_data *d, const struct kn_backend *be, struct kn_weights *wv,
                      int wcopies, int m, int repeat, int *runs, int *last)
{
    struct mm_run r = {.be = be, .w = wv, .x = d->x, .out = d->out, .copies = wcopies, .m = m};
    struct bench_timing t;
    double first = mm_warm(&r);

    if (first > MM_BUDGET_S) { /* slow (the reference on large cases): once is enough */
        *runs = 1;
        *last = r.last;
        return first;
    }
    t = bench_time(mm_call, &r, repeat, MM_BUDGET_S);

    *runs = t.runs;
    *last = r.last;
    return t.median_s;
}

static int mm_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of the N values at V (sorted in place). */
static double mm_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), mm_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Time two kinds of run (A: backend BE_A over the copies WV_A; B the same
 * with _B) alternately, run by run, after a warm-up of each, so that the
 * machine's slow swings in load and bandwidth fall on both alike; their
 * ratio is what the "vs f32" column reports.  Medians of REPEAT runs each
 * in *TA and *TB (one run each when a warm-up took over 5 s), the runs
 * in *RUNS, the copy A last wrote in *LAST.  Returns 0, or -1 when out of
 * memory for the samples. */
static int mm_time_pair(struct mm_data *d, int m, int repeat, const struct kn_backend *be_a,
                        struct kn_weights *wv_a, int copies_a, const struct kn_backend *be_b,
                        struct kn_weights *wv_b, int copies_b, double *ta, double *tb, int *runs, int *last)
{
    struct mm_run ra = {.be = be_a, .w = wv_a, .x = d->x, .out = d->out, .copies = copies_a, .m = m};
    struct mm_run rb = {.be = be_b, .w = wv_b, .x = d->x, .out = d->out, .copies = copies_b, .m = m};
    double t0, warm_a, warm_b, *sa, *sb;
    int i;

    warm_a = mm_warm(&ra);
    warm_b = mm_warm(&rb);
    if (warm_a > MM_BUDGET_S || warm_b > MM_BUDGET_S) {
        mm_call(&ra, 0); /* A's output last, for the error check */
        *ta = warm_a;
        *tb = warm_b;
        *runs = 1;
        *last = ra.last;
        return 0;
    }
    sa = malloc((size_t)repeat * sizeof(*sa));
    sb = malloc((size_t)repeat * sizeof(*sb));
    if (sa == NULL || sb == NULL) {
        free(sa);
        free(sb);
        return -1;
    }
    for (i = 0; i < repeat; i++) {
        t0 = bench_now_s();
        mm_call(&rb, i + 1);
        sb[i] = bench_now_s() - t0;
        t0 = bench_now_s();
        mm_call(&ra, i + 1);
        sa[i] = bench_now_s() - t0;
    }
    *ta = mm_median(sa, repeat);
    *tb = mm_median(sb, repeat);
    *runs = repeat;
    *last = ra.last;
    free(sa);
    free(sb);
    return 0;
}

/* Run case C and add its row and JSON entry. */
static int mm_run_case(const struct mm_opts *o, const struct bench_mnk *c,
                       const struct bench_roofline *roof, struct bench_table *table, json_t *results,
                       struct err *e)
{
    const struct kn_backend *be = NULL, *cpu = kn_backend_find("cpu");
    struct mm_data d;
    double flops = 2.0 * c->m * c->n * c->k;
    double bytes = weight_bytes(o->dtype, c->n, c->k, o->group) + 4.0 * (c->m * c->k + c->m * c->n);
    double t, t_blas = NAN, t_f32 = NAN, gflops, bound, err_rel = NAN, vs_blas, vs_f32;
    double t_r[MM_MAX_ROUNDS], t_blas_r[MM_MAX_ROUNDS], t_f32_r[MM_MAX_ROUNDS];
    double vs_blas_r[MM_MAX_ROUNDS], vs_f32_r[MM_MAX_ROUNDS], frac_r[MM_MAX_ROUNDS], frac;
    int runs = 0, last = 0, runs_blas = 0, runs_f32 = 0, runs_ignored, is_blas = strcmp(o->backend, "openblas") == 0;
    char shape[96];

    if (!is_blas)
        be = kn_backend_find(o->backend);
    if (mm_data_build(o, c, &d, e) != 0)
        return -1;
    snprintf(shape, sizeof(shape), "%ldx%ldx%ld", c->m, c->n, c->k);
    log_debug("matmul %s %s %s: %d copies", shape, o->backend, dtype_name(o->dtype),
             o->dtype == KN_F32 ? d.w32copies_n : d.wcopies_n);
    for (int r = 0; r < o->rounds; r++) {
        double tr, tr_f32 = NAN, tr_blas = NAN;
        struct bench_roofline rr = *roof;

        if (o->rounds > 1 && o->roofline_file == NULL &&
            bench_roofline_measure(o->threads, bench_roofline_bytes(o->threads), 1, &rr, e) != 0) {
            mm_data_free(&d);
            return -1;
        }
        if (o->dtype == KN_F32) {
            tr = mm_time(&d, be, d.w32v, d.w32copies_n, (int)c->m, o->repeat, &runs, &last);
        } else if (cpu != NULL && be != NULL) {
            if (mm_time_pair(&d, (int)c->m, o->repeat, be, d.wv, d.wcopies_n, cpu, d.w32v, d.w32copies_n, &tr,
                             &tr_f32, &runs, &last) != 0) {
                mm_data_free(&d);
                return err_set(e, ERR_SYSTEM, "%s: out of memory for the timings", shape);
            }
            runs_f32 = runs;
        } else {
            tr = mm_time(&d, be, d.wv, d.wcopies_n, (int)c->m, o->repeat, &runs, &last);
        }
        err_rel = mm_error(c, d.out[last], d.x[last], d.w32); /* before OpenBLAS writes the outputs */
#ifdef HAVE_OPENBLAS
        if (is_blas) {
            tr_blas = tr;
            runs_blas = runs;
        } else {
            if (o->rounds > 1)
                bench_settle(); /* our threads' spin is over before OpenBLAS starts */
            tr_blas = mm_time(&d, NULL, d.w32v, d.w32copies_n, (int)c->m, o->repeat, &runs_blas, &runs_ignored);
        }
        bench_settle(); /* OpenBLAS's threads spin a while after its last call */
#endif
        t_r[r] = tr;
        frac_r[r] = flops / tr / 1e9 / bench_roofline_bound(&rr, flops / bytes);
        vs_f32_r[r] = tr_f32 / tr;
        vs_blas_r[r] = tr_blas / tr;
        if (o->rounds > 1)
            log_info("matmul %s %s %s, round %d: %.3f ms, %.0f%% of the roofline (%.1f GB/s); vs OpenBLAS "
                     "%.2fx; vs f32 %.2fx",
                     shape, o->backend, dtype_name(o->dtype), r + 1, tr * 1e3, 100 * frac_r[r], rr.bandwidth_gbs,
                     vs_blas_r[r], vs_f32_r[r]); /* nan: not timed */
        t_blas_r[r] = tr_blas;
        t_f32_r[r] = tr_f32;
    }
    t = mm_median(t_r, o->rounds);
    t_blas = mm_median(t_blas_r, o->rounds);
    t_f32 = mm_median(t_f32_r, o->rounds);
    vs_blas = mm_median(vs_blas_r, o->rounds);
    vs_f32 = mm_median(vs_f32_r, o->rounds);
    frac = mm_median(frac_r, o->rounds);
    (void)runs_ignored;
    gflops = flops / t / 1e9;
    bound = bench_roofline_bound(roof, flops / bytes);
    bench_table_row(table);
    bench_table_cell(table, "%s", shape);
    bench_table_cell(table, "%s", o->backend);
    bench_table_cell(table, "%s", dtype_name(o->dtype));
    bench_table_cell(table, "%.3f", t * 1e3);
    bench_table_cell(table, "%.1f", gflops);
    bench_table_cell(table, "%.1f", bytes / t / 1e9);
    bench_table_cell(table, "%.0f%%", 100 * frac);
    if (isnan(t_blas))
        bench_table_cell(table, "n/a");
    else
        bench_table_cell(table, "%.2fx", vs_blas);
    if (isnan(t_f32))
        bench_table_cell(table, "-");
    else
        bench_table_cell(table, "%.2fx", vs_f32);
    bench_table_cell(table, "%.1e", err_rel);
    json_array_append_new(
        results,
        json_pack("{s:I, s:I, s:I, s:s, s:s, s:i, s:o, s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, "
                  "s:o, s:o, s:o, s:i, s:b, s:i}",
                  "m", (json_int_t)c->m, "n", (json_int_t)c->n, "k", (json_int_t)c->k, "backend",
                  o->backend, "dtype", dtype_name(o->dtype), "group", o->group, "time_s",
                  bench_json_num(t), "runs", runs, "flops", bench_json_num(flops), "bytes",
                  bench_json_num(bytes), "gflops", bench_json_num(gflops), "gbs",
                  bench_json_num(bytes / t / 1e9), "roofline_gflops", bench_json_num(bound),
                  "roofline_fraction", bench_json_num(frac), "openblas_time_s",
                  bench_json_num(t_blas), "vs_openblas", bench_json_num(vs_blas), "f32_time_s",
                  bench_json_num(t_f32), "vs_f32", bench_json_num(vs_f32), "max_rel_err",
                  bench_json_num(err_rel), "copies",
                  o->dtype == KN_F32 ? d.w32copies_n : d.wcopies_n, "q8_packed",
                  o->dtype == KN_Q8 && !o->no_pack, "rounds", o->rounds));
    (void)runs_blas;
    (void)runs_f32;
    mm_data_free(&d);
    return 0;
}

/* ---- the subcommand ------------------------------------------------------------- */

static void matmul_usage(FILE *f)
{
    fprintf(f,
            "usage: llmbench matmul [--backend cpu|ref|openblas] [--dtype f32|bf16|q8] [--sizes LIST]\n"
            "                       [--threads N] [--repeat R] [--rounds N] [--group 32|64] [--no-pack]\n"
            "                       [--roofline FILE] [--json FILE]\n"
            "\n"
            "Time out (m, n) = x (m, k) W^T and report the median time, GFLOP/s (2mnk/t),\n"
            "GB/s (bytes of W, x and out / t), the fraction of the roofline, the ratio\n"
            "against OpenBLAS f32 on the same shape and threads (>1 is faster), for bf16/q8\n"
            "the ratio against the f32 cpu kernel (timed alternately with it, run by run),\n"
            "and the error against float64 on %d sampled outputs (max |err| / max |ref|,\n"
            "against the original f32 weights).\n"
            "\n"
            "  --backend B    cpu (default), ref or openblas\n"
            "  --dtype D      weights in f32 (default), bf16 or q8\n"
            "  --sizes LIST   comma-separated N (m=n=k) or MxNxK; default\n"
            "                 1024,2048,4096,1x4096x4096,1x11008x4096\n"
            "  --threads N    threads for the kernels and OpenBLAS (default: all cores)\n"
            "  --repeat R     timed runs per figure after a warm-up (default 5)\n"
            "  --rounds N     time each case N times over: the roofline measured again\n"
            "                 (unless --roofline), ours, a pause, OpenBLAS, a pause; print\n"
            "                 the medians over rounds of the times, the fraction of the\n"
            "                 roofline and the ratios (default 1)\n"
            "  --group G      q8 group size (default 32)\n"
            "  --no-pack      q8: keep the int8 and the scales in separate arrays (default:\n"
            "                 re-laid by kn_pack_q8 first, as a model loader would)\n"
            "  --roofline F   read the roofline from F (llmbench roofline --json) instead of\n"
            "                 measuring it quickly at start\n"
            "  --json FILE    also write the results as JSON (for 'llmbench report')\n",
            MM_ERR_SAMPLES);
}

/* `llmbench matmul ARGS`: parse and check every case first, then measure
 * or load the roofline, run the cases, print the table and write the JSON.
 * Returns the exit status. */
static int matmul_exec(int argc, char **argv)
{
    static const struct option opts[] = {
        {"backend", required_argument, NULL, 'b'}, {"dtype", required_argument, NULL, 'd'},
        {"sizes", required_argument, NULL, 's'},   {"threads", required_argument, NULL, 't'},
        {"repeat", required_argument, NULL, 'r'},  {"group", required_argument, NULL, 'g'},
        {"rounds", required_argument, NULL, 'N'},
        {"roofline", required_argument, NULL, 'R'}, {"json", required_argument, NULL, 'j'},
        {"no-pack", no_argument, NULL, 'P'},       {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char *const cols[] = {"m x n x k", "backend", "dtype", "ms", "GFLOP/s", "GB/s",
                                       "roofline", "vs OpenBLAS", "vs f32", "err"};
    struct mm_opts o = {.backend = "cpu", .dtype = KN_F32, .group = 32, .repeat = 5, .rounds = 1};
    struct bench_roofline roof;
    struct bench_table *table = NULL;
    json_t *doc = NULL;
    struct err e = {0};
    long v;
    int c, i, rc = 1;

    o.threads = bench_cores();
    memcpy(o.cases, mm_defaults, sizeof(mm_defaults));
    o.ncases = (int)(sizeof(mm_defaults) / sizeof(mm_defaults[0]));
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (strcmp(optarg, "cpu") != 0 && strcmp(optarg, "ref") != 0 && strcmp(optarg, "openblas") != 0) {
                err_set(&e, ERR_INPUT, "--backend: unknown backend '%s' (cpu, ref or openblas)", optarg);
                return bench_fail(&e);
            }
            o.backend = optarg;
            break;
        case 'd':
            if (strcmp(optarg, "f32") == 0)
                o.dtype = KN_F32;
            else if (strcmp(optarg, "bf16") == 0)
                o.dtype = KN_BF16;
            else if (strcmp(optarg, "q8") == 0)
                o.dtype = KN_Q8;
            else {
                err_set(&e, ERR_INPUT, "--dtype: unknown dtype '%s' (f32, bf16 or q8)", optarg);
                return bench_fail(&e);
            }
            break;
        case 's':
            if (bench_parse_sizes(optarg, o.cases, MM_MAX_CASES, &o.ncases, &e) != 0)
                return bench_fail(&e);
            break;
        case 't':
            if (bench_parse_int("--threads", optarg, 1, 1024, &v, &e) != 0)
                return bench_fail(&e);
            o.threads = (int)v;
            break;
        case 'r':
            if (bench_parse_int("--repeat", optarg, 1, 1000, &v, &e) != 0)
                return bench_fail(&e);
            o.repeat = (int)v;
            break;
        case 'N':
            if (bench_parse_int("--rounds", optarg, 1, MM_MAX_ROUNDS, &v, &e) != 0)
                return bench_fail(&e);
            o.rounds = (int)v;
            break;
        case 'g':
            if (bench_parse_int("--group", optarg, 32, 64, &v, &e) != 0)
                return bench_fail(&e);
            if (v != 32 && v != 64) {
                err_set(&e, ERR_INPUT, "--group: %ld is not 32 or 64", v);
                return bench_fail(&e);
            }
            o.group = (int)v;
            break;
        case 'P': o.no_pack = 1; break;
        case 'R': o.roofline_file = optarg; break;
        case 'j': o.json_file = optarg; break;
        case 'h': matmul_usage(stdout); return 0;
        default:
            log_error("matmul: unknown or incomplete option '%s' (try 'llmbench matmul --help')",
                      argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        log_error("matmul: unexpected argument '%s'", argv[optind]);
        return 2;
    }
    if (strcmp(o.backend, "openblas") == 0) {
#ifndef HAVE_OPENBLAS
        err_set(&e, ERR_INPUT, "--backend openblas: llmbench was built without OpenBLAS");
        return bench_fail(&e);
#endif
        if (o.dtype != KN_F32) {
            err_set(&e, ERR_INPUT, "--backend openblas: only --dtype f32");
            return bench_fail(&e);
        }
    } else if (kn_backend_find(o.backend) == NULL) {
        err_set(&e, ERR_INPUT, "--backend: '%s' is not built in", o.backend);
        return bench_fail(&e);
    }
    for (i = 0; i < o.ncases; i++)
        if (check_case(&o, &o.cases[i], &e) != 0)
            return bench_fail(&e);
    kn_set_threads(o.threads);
#ifdef HAVE_OPENBLAS
    openblas_set_num_threads(o.threads);
#endif
    if (bench_roofline_get(o.roofline_file, o.threads, &roof, &e) != 0)
        goto err;
    table = bench_table_new(10, cols);
    doc = bench_json_doc("matmul", o.threads);
    if (table == NULL || doc == NULL) {
        err_set(&e, ERR_SYSTEM, "out of memory");
        goto err;
    }
    json_object_set_new(doc, "roofline",
                        json_pack("{s:o, s:o, s:s}", "bandwidth_gbs", bench_json_num(roof.bandwidth_gbs),
                                  "peak_gflops", bench_json_num(roof.peak_gflops), "source",
                                  o.roofline_file != NULL ? o.roofline_file : "measured"));
    for (i = 0; i < o.ncases; i++)
        if (mm_run_case(&o, &o.cases[i], &roof, table, json_object_get(doc, "results"), &e) != 0)
            goto err;
    if (o.rounds > 1)
        printf("matmul on %d threads (%s); roofline %.1f GB/s, %.1f GFLOP/s%s; medians over %d rounds of a "
               "median of %d runs\n",
               o.threads, kn_isa_name(kn_get_isa()), roof.bandwidth_gbs, roof.peak_gflops,
               o.roofline_file == NULL ? " at start, measured again each round" : "", o.rounds, o.repeat);
    else
        printf("matmul on %d threads (%s); roofline %.1f GB/s, %.1f GFLOP/s; median of %d runs\n", o.threads,
               kn_isa_name(kn_get_isa()), roof.bandwidth_gbs, roof.peak_gflops, o.repeat);
    bench_table_print(table, stdout);
    if (o.json_file != NULL && bench_json_write(o.json_file, doc, &e) != 0)
        goto err;
    rc = 0;
err:
    bench_table_free(table);
    json_decref(doc);
    return rc == 0 ? 0 : bench_fail(&e);
}

const struct bench_command bench_matmul_entry = {
    .name = "matmul",
    .summary = "matmul (GEMM and GEMV, f32/bf16/q8) against OpenBLAS and the roofline",
    .exec = matmul_exec,
};
