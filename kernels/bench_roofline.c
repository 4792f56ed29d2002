/* bench_roofline.c -- `llmbench roofline`: the machine's memory bandwidth
 * and peak FLOP/s, the two lines of the roofline that matmul and attention
 * are measured against.
 *
 * Bandwidth is a streaming read: the sum of a large float array (1 GiB by
 * default, far beyond any cache), each thread summing its own contiguous
 * part, which it also first touched so its pages are local.  Peak is a loop
 * of independent FMAs on registers: 12 accumulators of 8 floats cover an FMA
 * latency of 4-6 cycles on two pipes, so the loop is throughput-bound.
 * Both report the best of their timed runs, not the median: the roofline is
 * an upper bound, and on a shared machine the best run is the one least
 * disturbed. */
#include "config.h"

#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define BENCH_X86 1
#endif

#include "common/log.h"
#include "kernels/bench.h"

/* FMA loop iterations per thread: 12 x 8 x 2 FLOP each, ~40 ms per core. */
#define PEAK_ITERS 20000000L
/* The streaming read: streams per thread, and floats per thread's part a
 * multiple of (16 floats, two AVX2 loads, per stream). */
#define READ_STREAMS 4
#define READ_BLOCK (16 * READ_STREAMS)
#define READ_PREFETCH 4096 /* floats ahead */
/* Accumulators of the portable peak loop. */
#define PEAK_LANES 16

/* ---- the kernels -------------------------------------------------------------- */

#ifdef BENCH_X86
/* Whether this CPU runs the AVX2/FMA loops. */
static int have_avx2(void)
{
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* Sum of x[0..n), n a multiple of READ_BLOCK, read as READ_STREAMS
 * sequential streams (the quarters of x) at once, as a GEMV reads several
 * rows, each with a software prefetch 16 KiB ahead as the GEMV kernels
 * do: one stream per core with the hardware prefetchers alone leaves
 * memory-level parallelism unused (AMD Zen measures 15-25% less). */
__attribute__((target("avx2,fma"))) static double read_avx2(const float *x, size_t n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t q = n / READ_STREAMS, i;
    const float *s0 = x, *s1 = x + q, *s2 = x + 2 * q, *s3 = x + 3 * q;
    float lanes[8];
    double s = 0;
    int j;

    for (i = 0; i < q; i += 16) {
        _mm_prefetch((const char *)(s0 + i + READ_PREFETCH), _MM_HINT_T0);
        _mm_prefetch((const char *)(s1 + i + READ_PREFETCH), _MM_HINT_T0);
        _mm_prefetch((const char *)(s2 + i + READ_PREFETCH), _MM_HINT_T0);
        _mm_prefetch((const char *)(s3 + i + READ_PREFETCH), _MM_HINT_T0);
        a0 = _mm256_add_ps(a0, _mm256_add_ps(_mm256_loadu_ps(s0 + i), _mm256_loadu_ps(s0 + i + 8)));
        a1 = _mm256_add_ps(a1, _mm256_add_ps(_mm256_loadu_ps(s1 + i), _mm256_loadu_ps(s1 + i + 8)));
        a2 = _mm256_add_ps(a2, _mm256_add_ps(_mm256_loadu_ps(s2 + i), _mm256_loadu_ps(s2 + i + 8)));
        a3 = _mm256_add_ps(a3, _mm256_add_ps(_mm256_loadu_ps(s3 + i), _mm256_loadu_ps(s3 + i + 8)));
    }
    _mm256_storeu_ps(lanes, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (j = 0; j < 8; j++)
        s += lanes[j];
    return s;
}

/* ITERS rounds of 12 independent 8-wide FMAs; returns a value that depends
 * on all of them so the compiler keeps the loop. */
__attribute__((target("avx2,fma"))) static double fma_avx2(long iters, float seed)
{
    __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    __m256 a0 = _mm256_set1_ps(seed), a1 = _mm256_add_ps(a0, c), a2 = _mm256_add_ps(a1, c);
    __m256 a3 = _mm256_add_ps(a2, c), a4 = _mm256_add_ps(a3, c), a5 = _mm256_add_ps(a4, c);
    __m256 a6 = _mm256_add_ps(a5, c), a7 = _mm256_add_ps(a6, c), a8 = _mm256_add_ps(a7, c);
    __m256 a9 = _mm256_add_ps(a8, c), a10 = _mm256_add_ps(a9, c), a11 = _mm256_add_ps(a10, c);
    float lanes[8];
    long i;

    for (i = 0; i < iters; i++) {
        a0 = _mm256_fmadd_ps(a0, m, c);
        a1 = _mm256_fmadd_ps(a1, m, c);
        a2 = _mm256_fmadd_ps(a2, m, c);
        a3 = _mm256_fmadd_ps(a3, m, c);
        a4 = _mm256_fmadd_ps(a4, m, c);
        a5 = _mm256_fmadd_ps(a5, m, c);
        a6 = _mm256_fmadd_ps(a6, m, c);
        a7 = _mm256_fmadd_ps(a7, m, c);
        a8 = _mm256_fmadd_ps(a8, m, c);
        a9 = _mm256_fmadd_ps(a9, m, c);
        a10 = _mm256_fmadd_ps(a10, m, c);
        a11 = _mm256_fmadd_ps(a11, m, c);
    }
    a0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                       _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    a0 = _mm256_add_ps(a0, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    _mm256_storeu_ps(lanes, a0);
    return lanes[0] + lanes[7];
}
#endif

/* The portable streaming read: eight partial sums for the vectoriser. */
static double read_portable(const float *x, size_t n)
{
    float a[8] = {0};
    double s = 0;
    size_t i;
    int j;

    for (i = 0; i < n; i += 8)
        for (j = 0; j < 8; j++)
            a[j] += x[i + j];
    for (j = 0; j < 8; j++)
        s += a[j];
    return s;
}

/* The portable peak loop: PEAK_LANES independent multiply-adds. */
static double fma_portable(long iters, float seed)
{
    float a[PEAK_LANES];
    double s = 0;
    long i;
    int j;

    for (j = 0; j < PEAK_LANES; j++)
        a[j] = seed + j * 1e-7f;
    for (i = 0; i < iters; i++)
        for (j = 0; j < PEAK_LANES; j++)
            a[j] = a[j] * 0.999999f + 1e-7f;
    for (j = 0; j < PEAK_LANES; j++)
        s += a[j];
    return s;
}

/* FLOP done by one call of the peak loop for ITERS. */
static double fma_flops(long iters)
{
#ifdef BENCH_X86
    if (have_avx2())
        return (double)iters * 12 * 8 * 2;
#endif
    return (double)iters * PEAK_LANES * 2;
}

/* The streaming read with the best loop this CPU runs. */
static double read_any(const float *x, size_t n)
{
#ifdef BENCH_X86
    if (have_avx2())
        return read_avx2(x, n);
#endif
    return read_portable(x, n);
}

/* The peak loop with the best ISA this CPU runs. */
static double fma_any(long iters, float seed)
{
#ifdef BENCH_X86
    if (have_avx2())
        return fma_avx2(iters, seed);
#endif
    return fma_portable(iters, seed);
}

/* ---- measuring ---------------------------------------------------------------- */

struct read_job {
    const float *x;
    size_t n; /* floats, a multiple of READ_BLOCK * threads */
    int threads;
    volatile double sink;
};

/* One streaming pass over the array, split evenly across the threads. */
static void read_pass(void *arg, int iter)
{
    struct read_job *j = arg;
    double total = 0;

#pragma omp parallel num_threads(j->threads) reduction(+ : total)
    {
        int t = 0, nt = 1;
        size_t part;

#ifdef _OPENMP
        t = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        part = j->n / (size_t)nt / READ_BLOCK * READ_BLOCK;
        total += read_any(j->x + part * (size_t)t, part);
    }
    j->sink = total;
    (void)iter;
}

struct fma_job {
    int threads;
    volatile double sink;
};

/* bench_time callback: the peak loop on every thread at once. */
static void fma_pass(void *arg, int iter)
{
    struct fma_job *j = arg;
    double total = 0;

#pragma omp parallel num_threads(j->threads) reduction(+ : total)
    total += fma_any(PEAK_ITERS, 1.0f + iter * 1e-3f);
    j->sink = total;
}

int bench_roofline_measure(int threads, size_t bytes, int repeat, struct bench_roofline *r,
                           struct err *e)
{
    struct read_job rj = {0};
    struct fma_job fj = {0};
    struct bench_timing t;
    float *x;
    size_t n = bytes / sizeof(float) / (READ_BLOCK * (size_t)threads) * (READ_BLOCK * (size_t)threads);

    if (n == 0)
        n = READ_BLOCK * (size_t)threads;
    x = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    if (x == NULL)
        return err_set(e, ERR_SYSTEM, "roofline: cannot allocate %zu MiB", n * sizeof(float) >> 20);
    /* first touch by the thread that will read each part */
#pragma omp parallel num_threads(threads)
    {
        int tid = 0, nt = 1;
        size_t part, i;

#ifdef _OPENMP
        tid = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        part = n / (size_t)nt;
        for (i = part * (size_t)tid; i < part * (size_t)(tid + 1); i++)
            x[i] = 1.0f;
    }
    rj.x = x;
    rj.n = n;
    rj.threads = threads;
    t = bench_time(read_pass, &rj, repeat, 0);
    r->bandwidth_gbs = (double)n * sizeof(float) / t.min_s / 1e9;
    free(x);
    fj.threads = threads;
    t = bench_time(fma_pass, &fj, repeat, 0);
    r->peak_gflops = fma_flops(PEAK_ITERS) * threads / t.min_s / 1e9;
    r->threads = threads;
    return 0;
}

int bench_roofline_load(const char *file, int threads, struct bench_roofline *r, struct err *e)
{
    json_error_t je;
    json_t *doc = json_load_file(file, 0, &je), *results, *it;
    int best = -1;
    size_t i;

    if (doc == NULL)
        return err_at(e, file, je.line, "%s", je.text);
    results = json_object_get(doc, "results");
    if (!json_is_array(results)) {
        json_decref(doc);
        return err_at(e, file, 0, "no \"results\" array (write it with llmbench roofline --json)");
    }
    json_array_foreach(results, i, it)
    {
        json_t *th = json_object_get(it, "threads"), *bw = json_object_get(it, "bandwidth_gbs");
        json_t *pk = json_object_get(it, "peak_gflops");
        int n;

        if (!json_is_integer(th) || !json_is_number(bw) || !json_is_number(pk)) {
            json_decref(doc);
            return err_at(e, file, 0, "results[%zu]: needs threads, bandwidth_gbs and peak_gflops", i);
        }
        n = (int)json_integer_value(th);
        if (n <= threads && n > best) {
            best = n;
            r->threads = n;
            r->bandwidth_gbs = json_number_value(bw);
            r->peak_gflops = json_number_value(pk);
        }
    }
    json_decref(doc);
    if (best < 0)
        return err_at(e, file, 0, "no entry for %d threads or fewer", threads);
    if (best != threads)
        log_warn("%s: no entry for %d threads, using %d's", file, threads, best);
    return 0;
}

size_t bench_roofline_bytes(int threads)
{
    size_t bytes = 4 * bench_llc_bytes() * (size_t)threads;

    return bytes < ((size_t)256 << 20) ? (size_t)256 << 20 : bytes;
}

int bench_roofline_get(const char *file, int threads, struct bench_roofline *r, struct err *e)
{
    if (file != NULL)
        return bench_roofline_load(file, threads, r, e);
    if (bench_roofline_measure(threads, bench_roofline_bytes(threads), 3, r, e) != 0)
        return -1;
    log_info("roofline on %d threads: %.1f GB/s, %.1f GFLOP/s", threads, r->bandwidth_gbs,
             r->peak_gflops);
    return 0;
}

double bench_roofline_bound(const struct bench_roofline *r, double ai)
{
    double mem = r->bandwidth_gbs * ai;

    return mem < r->peak_gflops ? mem : r->peak_gflops;
}

/* ---- the subcommand ------------------------------------------------------------- */

static void roofline_usage(FILE *f)
{
    fprintf(f, "usage: llmbench roofline [--threads N] [--mib M] [--repeat R] [--json FILE]\n"
               "\n"
               "Measure memory bandwidth (a streaming read of M MiB, default 1024) and peak\n"
               "FLOP/s (an FMA loop) on 1 .. N threads (default: all cores) and print a table.\n"
               "Each figure is the best of R runs (default 5) after a warm-up: an upper bound.\n"
               "\n"
               "  --threads N   largest thread count to measure\n"
               "  --mib M       size of the array read, in MiB (at least 4x the LLC to mean memory)\n"
               "  --repeat R    timed runs per figure\n"
               "  --json FILE   also write the results as JSON (read by 'llmbench report' and\n"
               "                by 'llmbench matmul|attention --roofline FILE')\n");
}

/* `llmbench roofline ARGS`.  Returns the exit status. */
static int roofline_exec(int argc, char **argv)
{
    static const struct option opts[] = {
        {"threads", required_argument, NULL, 't'}, {"mib", required_argument, NULL, 'm'},
        {"repeat", required_argument, NULL, 'r'},  {"json", required_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    static const char *const cols[] = {"threads", "GB/s", "GFLOP/s", "ridge FLOP/B"};
    long threads = bench_cores(), mib = 1024, repeat = 5;
    const char *json_file = NULL;
    struct bench_table *table = NULL;
    json_t *doc = NULL;
    struct err e = {0};
    int c, t, rc = 1;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (bench_parse_int("--threads", optarg, 1, 1024, &threads, &e) != 0)
                return bench_fail(&e);
            break;
        case 'm':
            if (bench_parse_int("--mib", optarg, 1, 65536, &mib, &e) != 0)
                return bench_fail(&e);
            break;
        case 'r':
            if (bench_parse_int("--repeat", optarg, 1, 1000, &repeat, &e) != 0)
                return bench_fail(&e);
            break;
        case 'j': json_file = optarg; break;
        case 'h': roofline_usage(stdout); return 0;
        default:
            log_error("roofline: unknown or incomplete option '%s' (try 'llmbench roofline --help')",
                      argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        log_error("roofline: unexpected argument '%s'", argv[optind]);
        return 2;
    }
    table = bench_table_new(4, cols);
    doc = bench_json_doc("roofline", (int)threads);
    if (table == NULL || doc == NULL) {
        err_set(&e, ERR_SYSTEM, "out of memory");
        goto err;
    }
    json_object_set_new(doc, "array_bytes", json_integer((json_int_t)mib << 20));
    for (t = 1; t <= threads; t++) {
        struct bench_roofline r;

        if (bench_roofline_measure(t, (size_t)mib << 20, (int)repeat, &r, &e) != 0)
            goto err;
        bench_table_row(table);
        bench_table_cell(table, "%d", t);
        bench_table_cell(table, "%.1f", r.bandwidth_gbs);
        bench_table_cell(table, "%.1f", r.peak_gflops);
        bench_table_cell(table, "%.1f", r.peak_gflops / r.bandwidth_gbs);
        json_array_append_new(json_object_get(doc, "results"),
                              json_pack("{s:i, s:o, s:o, s:o}", "threads", t, "bandwidth_gbs",
                                        bench_json_num(r.bandwidth_gbs), "peak_gflops",
                                        bench_json_num(r.peak_gflops), "ridge_flop_per_byte",
                                        bench_json_num(r.peak_gflops / r.bandwidth_gbs)));
    }
    printf("roofline: streaming read of %ld MiB, FMA loop; best of %ld runs\n", mib, repeat);
    bench_table_print(table, stdout);
    if (json_file != NULL && bench_json_write(json_file, doc, &e) != 0)
        goto err;
    rc = 0;
err:
    bench_table_free(table);
    json_decref(doc);
    return rc == 0 ? 0 : bench_fail(&e);
}

const struct bench_command bench_roofline_entry = {
    .name = "roofline",
    .summary = "memory bandwidth and peak FLOP/s per thread count",
    .exec = roofline_exec,
};
