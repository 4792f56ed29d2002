/* bench_cuda.c -- `llmbench cuda`: the CUDA kernels (kernels/cuda) against
 * cuBLAS and the GPU's roofline, in one table.
 *
 *   sgemm, bgemm  every version of kn_cuda_sgemm / kn_cuda_bgemm and
 *                 cuBLAS (cublasSgemm / cublasGemmEx bf16->f32) on the same
 *                 operands: ms, TFLOP/s (2mnk/t), the ratio against cuBLAS
 *                 timed in the same run (>1 is faster), and the error on
 *                 sampled outputs against float64 (from the bf16-rounded
 *                 inputs for bgemm).
 *   gemv          every version of kn_cuda_gemv for m = 1 and f32, bf16 and
 *                 q8 weights (cuBLAS at m = 1 for f32 and bf16), in GB/s
 *                 (weights, x and out / t) and as a fraction of the read
 *                 bandwidth kn_cuda_read_bandwidth_gbs() measures at the
 *                 start; enough copies of W are cycled that they exceed
 *                 4x the L2, so every call reads from memory.
 *   decode        every version of kn_cuda_attention_decode, a batch of
 *                 sequences over a paged cache (blocks of 16 in a shuffled
 *                 block table), in GB/s of K and V and as a fraction of the
 *                 read bandwidth.
 *   prefill       every version of kn_cuda_flash_attention_bf16, causal, in
 *                 TFLOP/s counting 4 B S^2 H D / 2 and as a fraction of 300
 *                 TFLOP/s (FlashAttention-2's published H100 forward figure
 *                 for head size 128, causal).
 * Attention errors are against float64 on sampled queries.  Times are
 * medians of CUDA-event timings after a warm-up (kn_cuda_time_ms); a call
 * slower than 2 s / repeat is timed once.
 *
 * Built without CUDA the subcommand says so and exits 2; with no usable
 * device it exits 1. */
#include "config.h"

#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/rng.h"
#include "kernels/bench.h"
#include "kernels/kernels.h"
#ifdef HAVE_CUDA
#include "kernels/cuda/kn_cuda.h"
#endif

#define CU_MAX_CASES 64
#define CU_ERR_SAMPLES 256     /* GEMM outputs checked against float64 */
#define CU_ATT_SAMPLES 16      /* prefill queries checked */
#define CU_FA2_TFLOPS 300.0    /* FlashAttention-2, H100, forward, hdim 128, causal */
#define CU_MAX_COPIES 256

enum { CU_SGEMM = 1, CU_BGEMM = 2, CU_GEMV = 4, CU_DECODE = 8, CU_PREFILL = 16, CU_ALL = 31 };

struct cu_opts {
    int ours, cublas;  /* --backend: time our versions, cuBLAS */
    int only;          /* CU_* bits */
    int quick;
    int repeat;
    int device;
    const char *json_file;
    struct bench_mnk cases[CU_MAX_CASES]; /* --sizes: m > 8 GEMMs, m <= 8 GEMVs */
    int ncases;
};

static void cuda_usage(FILE *f)
{
    fprintf(f,
            "usage: llmbench cuda [--backend cuda|cublas|both] [--only LIST] [--sizes LIST]\n"
            "                     [--quick] [--repeat R] [--device N] [--json FILE]\n"
            "\n"
            "Time the CUDA kernels, every version side by side, against cuBLAS and the\n"
            "GPU's roofline, and check them against float64 on sampled outputs:\n"
            "  sgemm, bgemm  ms, TFLOP/s and the ratio against cuBLAS timed in the same run\n"
            "                (>1 is faster); cubes 1024, 2048, 4096 (and 8192 for bgemm)\n"
            "  gemv          m = 1, f32/bf16/q8 weights of stories110M- and Llama-7B-like\n"
            "                shapes: GB/s and the fraction of the measured read bandwidth\n"
            "  decode        32 sequences x 4096 positions, 32 heads, 8 KV heads, d 128,\n"
            "                paged (blocks of 16): GB/s and fraction of read bandwidth\n"
            "  prefill       flash attention bf16, B 4, S 4096, 32 heads, d 128, causal:\n"
            "                TFLOP/s (4 B S^2 H D / 2) and fraction of %.0f TFLOP/s\n"
            "                (FlashAttention-2's published H100 figure)\n"
            "\n"
            "  --backend B   cuda (our kernels), cublas (the baseline) or both (default)\n"
            "  --only LIST   comma-separated subset of sgemm,bgemm,gemv,decode,prefill\n"
            "  --sizes LIST  replace the matmul shapes: N (N^3) or MxNxK, comma-separated;\n"
            "                M <= 8 is a GEMV case, larger M a GEMM case\n"
            "  --quick       fewer and smaller cases (8 decode sequences, prefill B 1)\n"
            "  --repeat R    timed runs per figure after a warm-up (default 10)\n"
            "  --device N    the CUDA device (default 0)\n"
            "  --json FILE   also write the results as JSON\n",
            CU_FA2_TFLOPS);
}

/* Parse LIST ("sgemm,gemv") into CU_* bits.  0, or -1 with an ERR_INPUT. */
static int parse_only(const char *list, int *bits, struct err *e)
{
    static const char *const names[] = {"sgemm", "bgemm", "gemv", "decode", "prefill"};
    const char *p = list;

    *bits = 0;
    while (1) {
        size_t len = strcspn(p, ",");
        int i;

        for (i = 0; i < 5; i++)
            if (strlen(names[i]) == len && strncmp(p, names[i], len) == 0)
                break;
        if (i == 5)
            return err_set(e, ERR_INPUT, "--only: unknown part '%.*s' (sgemm, bgemm, gemv, decode, prefill)",
                           (int)len, p);
        *bits |= 1 << i;
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    return 0;
}


#ifdef HAVE_CUDA

/* ---- the run: options, device, table, JSON ------------------------------------------ */

struct cu_ctx {
    const struct cu_opts *o;
    struct kn_cuda_info info;
    double read_gbs;           /* measured streaming read, GB/s */
    struct bench_table *table;
    json_t *results;
    struct rng rng;
    int failed; /* kernels that failed (logged, the run goes on) */
};

/* One row: the table's cells and the JSON entry.  NaN marks "n/a". */
struct cu_row {
    const char *op;
    long m, n, k;
    char shape[64];
    const char *impl; /* a version's name or "cuBLAS" */
    int version;      /* -1: cuBLAS */
    double ms, tflops, gbs;
    double vs_cublas;  /* cuBLAS time / this time */
    double roof;       /* fraction of the roofline (read bandwidth or the FA2 figure) */
    const char *roof_of;
    double err;
};

static void cu_emit(struct cu_ctx *c, const struct cu_row *r)
{
    bench_table_row(c->table);
    bench_table_cell(c->table, "%s", r->op);
    bench_table_cell(c->table, "%s", r->shape);
    bench_table_cell(c->table, "%s", r->impl);
    bench_table_cell(c->table, "%.3f", r->ms);
    if (isnan(r->tflops))
        bench_table_cell(c->table, "-");
    else
        bench_table_cell(c->table, "%.1f", r->tflops);
    if (isnan(r->gbs))
        bench_table_cell(c->table, "-");
    else
        bench_table_cell(c->table, "%.0f", r->gbs);
    if (isnan(r->vs_cublas))
        bench_table_cell(c->table, "-");
    else
        bench_table_cell(c->table, "%.2fx", r->vs_cublas);
    if (isnan(r->roof))
        bench_table_cell(c->table, "-");
    else
        bench_table_cell(c->table, "%.0f%%", 100 * r->roof);
    bench_table_cell(c->table, "%.1e", r->err);
    json_array_append_new(
        c->results,
        json_pack("{s:s, s:s, s:I, s:I, s:I, s:s, s:i, s:o, s:o, s:o, s:o, s:o, s:s?, s:o}", "op", r->op, "shape",
                  r->shape, "m", (json_int_t)r->m, "n", (json_int_t)r->n, "k", (json_int_t)r->k, "impl", r->impl,
                  "version", r->version, "time_s", bench_json_num(r->ms * 1e-3), "tflops",
                  bench_json_num(r->tflops), "gbs", bench_json_num(r->gbs), "vs_cublas",
                  bench_json_num(r->vs_cublas), "roof_fraction", bench_json_num(r->roof), "roof_of", r->roof_of,
                  "max_rel_err", bench_json_num(r->err)));
}

/* ---- timing -------------------------------------------------------------------------- */

enum cu_kind { K_SGEMM, K_BGEMM, K_CUBLAS_S, K_CUBLAS_B, K_GEMV, K_DECODE, K_FLASH };

/* One timed call: what to run and on what; COPIES operands cycled. */
struct cu_call {
    enum cu_kind kind;
    int version;
    int fail;            /* a call returned -1 */
    char why[512];       /* its error */
    int copies, next, last;
    float *out;
    const void *x;
    const void **w;      /* COPIES weight pointers (GEMMs, cuBLAS) */
    int m, n, k;
    struct kn_weights *wv; /* gemv: COPIES weights */
    /* decode */
    const struct kn_cuda_paged_kv *kv;
    int n_seqs, max_len;
    const struct kn_attn_shape *shape;
    void *ws;
    /* flash */
    uint16_t *o16;
    const uint16_t *q16, *k16, *v16;
    int B, S;
};

static void cu_call_run(void *arg)
{
    struct cu_call *c = arg;
    int i = c->next, rc = 0;

    c->next = (c->next + 1) % c->copies;
    c->last = i;
    switch (c->kind) {
    case K_SGEMM: rc = kn_cuda_sgemm(c->version, c->out, c->x, c->w[i], c->m, c->n, c->k); break;
    case K_BGEMM: rc = kn_cuda_bgemm(c->version, c->out, c->x, c->w[i], c->m, c->n, c->k); break;
    case K_CUBLAS_S: rc = kn_cublas_sgemm(c->out, c->x, c->w[i], c->m, c->n, c->k); break;
    case K_CUBLAS_B: rc = kn_cublas_bgemm(c->out, c->x, c->w[i], c->m, c->n, c->k); break;
    case K_GEMV: rc = kn_cuda_gemv(c->version, c->out, c->x, &c->wv[i], c->m); break;
    case K_DECODE:
        rc = kn_cuda_attention_decode(c->version, c->out, c->x, c->kv, c->n_seqs, c->max_len, c->shape, c->ws);
        break;
    case K_FLASH:
        rc = kn_cuda_flash_attention_bf16(c->version, c->o16, c->q16, c->k16, c->v16, c->B, c->S, c->shape, 1);
        break;
    }
    if (rc != 0 && !c->fail) {
        c->fail = 1;
        snprintf(c->why, sizeof c->why, "%s", kn_cuda_error());
    }
}

/* Median ms of CALL over the repeat count (once when one run takes over
 * 2 s / repeat).  When a call or the device fails: logs why, counts it in
 * ctx->failed and returns -1 (the run goes on with the next kernel). */
static double cu_time(struct cu_ctx *ctx, struct cu_call *call, const char *what)
{
    int repeat = ctx->o->repeat;
    double ms;

    call->fail = 0;
    call->next = 0;
    ms = kn_cuda_time_ms(cu_call_run, call, 1);
    if (ms >= 0 && !call->fail && ms * repeat < 2000 && repeat > 1)
        ms = kn_cuda_time_ms(cu_call_run, call, repeat);
    if (call->fail || ms < 0) {
        log_error("%s: %s", what, call->fail ? call->why : kn_cuda_error());
        ctx->failed++;
        return -1;
    }
    return ms;
}

/* ---- host data ---------------------------------------------------------------------- */

/* N floats uniform in [-1, 1). */
static void cu_fill(struct rng *r, float *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        a[i] = (float)((rng_u64(r) >> 40) * (2.0 / 16777216.0) - 1.0);
}

/* Round A (N floats) to bf16 into B16 (when not NULL) and write the rounded
 * values back to A. */
static void cu_round_bf16(float *a, uint16_t *b16, size_t n)
{
    uint16_t tmp[4096];

    for (size_t i = 0; i < n; i += 4096) {
        size_t len = n - i < 4096 ? n - i : 4096;
        uint16_t *dst = b16 != NULL ? b16 + i : tmp;

        kn_f32_to_bf16(dst, a + i, len);
        kn_bf16_to_f32(a + i, dst, len);
    }
}

/* A device copy of BYTES at SRC (uninitialised when SRC is NULL), or NULL
 * with E set. */
static void *cu_dev(const void *src, size_t bytes, struct err *e)
{
    void *d = kn_cuda_alloc(bytes);

    if (d == NULL) {
        err_set(e, ERR_SYSTEM, "%s", kn_cuda_error());
        return NULL;
    }
    if (src != NULL && kn_cuda_upload(d, src, bytes) != 0) {
        err_set(e, ERR_SYSTEM, "%s", kn_cuda_error());
        kn_cuda_free(d);
        return NULL;
    }
    return d;
}

/* How many copies of an operand of BYTES together exceed 4x the L2. */
static int cu_copies(const struct cu_ctx *c, double bytes)
{
    double n = ceil(4.0 * (double)c->info.l2_bytes / bytes);

    return n < 1 ? 1 : n > CU_MAX_COPIES ? CU_MAX_COPIES : (int)n;
}

/* ---- GEMM ------------------------------------------------------------------------------- */

/* Max |out - ref| / max |ref| over sampled outputs of OUT_D (device, m x n)
 * against the float64 product of the host X and W. */
static double cu_gemm_err(const float *out_d, const float *x, const float *w, long m, long n, long k)
{
    long total = m * n, samples = total < CU_ERR_SAMPLES ? total : CU_ERR_SAMPLES;
    double max_err = 0, max_ref = 0;
    struct rng r;

    rng_init(&r, 11, RNG_STREAM_USER + 2);
    for (long s = 0; s < samples; s++) {
        long idx = samples == total ? s : (long)rng_below(&r, (uint64_t)total), i = idx / n, j = idx % n;
        double ref = 0;
        float got = NAN;

        for (long l = 0; l < k; l++)
            ref += (double)x[i * k + l] * w[j * k + l];
        if (kn_cuda_download(&got, out_d + idx, sizeof got) != 0)
            return NAN;
        if (!(fabs(got - ref) <= max_err))
            max_err = fabs(got - ref); /* NaN sticks */
        max_ref = fmax(max_ref, fabs(ref));
    }
    return max_ref > 0 ? max_err / max_ref : max_err;
}

/* One GEMM case: BF16 selects bgemm (bf16 inputs) over sgemm. */
static int cu_gemm_case(struct cu_ctx *c, int bf16, const struct bench_mnk *cs, struct err *e)
{
    long m = cs->m, n = cs->n, k = cs->k;
    size_t mk = (size_t)m * k, nk = (size_t)n * k, es = bf16 ? 2 : 4;
    float *x = malloc(mk * sizeof(float)), *w = malloc(nk * sizeof(float));
    uint16_t *xb = bf16 ? malloc(mk * 2) : NULL, *wb = bf16 ? malloc(nk * 2) : NULL;
    void *x_d = NULL, *w_d = NULL;
    float *out_d = NULL;
    const void *wp[1];
    double t_cublas = NAN, flops = 2.0 * m * n * k;
    const char *op = bf16 ? "bgemm" : "sgemm";
    int rc = -1;

    if (x == NULL || w == NULL || (bf16 && (xb == NULL || wb == NULL))) {
        err_set(e, ERR_SYSTEM, "%s %ldx%ldx%ld: out of host memory", op, m, n, k);
        goto out;
    }
    cu_fill(&c->rng, x, mk);
    cu_fill(&c->rng, w, nk);
    if (bf16) {
        cu_round_bf16(x, xb, mk);
        cu_round_bf16(w, wb, nk);
    }
    if ((x_d = cu_dev(bf16 ? (void *)xb : (void *)x, mk * es, e)) == NULL ||
        (w_d = cu_dev(bf16 ? (void *)wb : (void *)w, nk * es, e)) == NULL ||
        (out_d = cu_dev(NULL, (size_t)m * n * sizeof(float), e)) == NULL) {
        err_prefix(e, "%s %ldx%ldx%ld", op, m, n, k);
        goto out;
    }
    wp[0] = w_d;
    for (int v = c->o->cublas ? -1 : 0; v < (c->o->ours ? kn_cuda_versions(bf16 ? KN_CUDA_OP_BGEMM : KN_CUDA_OP_SGEMM) : 0);
         v++) {
        struct cu_call call = {.kind = v < 0 ? (bf16 ? K_CUBLAS_B : K_CUBLAS_S) : (bf16 ? K_BGEMM : K_SGEMM),
                               .version = v, .copies = 1, .out = out_d, .x = x_d, .w = wp,
                               .m = (int)m, .n = (int)n, .k = (int)k};
        struct cu_row r = {.op = op, .m = m, .n = n, .k = k, .version = v, .gbs = NAN, .roof = NAN};
        char what[128];

        r.impl = v < 0 ? "cuBLAS" : kn_cuda_version_name(bf16 ? KN_CUDA_OP_BGEMM : KN_CUDA_OP_SGEMM, v);
        snprintf(r.shape, sizeof r.shape, "%ldx%ldx%ld", m, n, k);
        snprintf(what, sizeof what, "%s %s %s", op, r.shape, r.impl);
        if (bf16 && v >= 0 && k % 8 != 0) {
            log_warn("%s: skipped (k %% 8 != 0)", what);
            continue;
        }
        if ((r.ms = cu_time(c, &call, what)) < 0)
            continue;
        if (v < 0)
            t_cublas = r.ms;
        r.tflops = flops / (r.ms * 1e-3) / 1e12;
        r.vs_cublas = t_cublas / r.ms;
        r.err = cu_gemm_err(out_d, x, w, m, n, k);
        cu_emit(c, &r);
    }
    rc = 0;
out:
    kn_cuda_free(x_d);
    kn_cuda_free(w_d);
    kn_cuda_free(out_d);
    free(x);
    free(w);
    free(xb);
    free(wb);
    return rc;
}

/* ---- GEMV ------------------------------------------------------------------------------- */

static const char *cu_dtype_name(enum kn_dtype d)
{
    return d == KN_BF16 ? "bf16" : d == KN_Q8 ? "q8" : "f32";
}

/* One GEMV case of M rows (<= 8) for weights of DTYPE: our versions, and
 * cuBLAS for f32 and bf16. */
static int cu_gemv_case(struct cu_ctx *c, enum kn_dtype dtype, const struct bench_mnk *cs, struct err *e)
{
    const int group = 32;
    long m = cs->m, n = cs->n, k = cs->k;
    size_t nk = (size_t)n * k, wbytes = dtype == KN_F32 ? nk * 4 : dtype == KN_BF16 ? nk * 2 : nk;
    size_t sbytes = dtype == KN_Q8 ? nk / group * sizeof(float) : 0;
    float *w = malloc(nk * sizeof(float)), *x = malloc((size_t)m * k * sizeof(float));
    float *out = malloc((size_t)m * n * sizeof(float)), *scales = sbytes ? malloc(sbytes) : NULL;
    void *wq = dtype == KN_F32 ? NULL : malloc(wbytes);
    uint16_t *xb = malloc((size_t)m * k * 2);
    void **w_d = NULL;
    float **s_d = NULL, *x_d = NULL, *out_d = NULL;
    uint16_t *xb_d = NULL;
    struct kn_weights *wv = NULL;
    const void **wp = NULL;
    double bytes = (double)wbytes + sbytes + 4.0 * m * k + 4.0 * m * n;
    int copies = cu_copies(c, (double)wbytes + sbytes), rc = -1;
    char shape[64];

    snprintf(shape, sizeof shape, "%ldx%ldx%ld %s", m, n, k, cu_dtype_name(dtype));
    if (dtype == KN_Q8 && k % group != 0) {
        log_warn("gemv %s: skipped (q8 needs k %% %d == 0)", shape, group);
        rc = 0;
        goto out;
    }
    w_d = calloc((size_t)copies, sizeof *w_d);
    s_d = calloc((size_t)copies, sizeof *s_d);
    wv = calloc((size_t)copies, sizeof *wv);
    wp = calloc((size_t)copies, sizeof *wp);
    if (w == NULL || x == NULL || out == NULL || (sbytes && scales == NULL) || (dtype != KN_F32 && wq == NULL) ||
        xb == NULL || w_d == NULL || s_d == NULL || wv == NULL || wp == NULL) {
        err_set(e, ERR_SYSTEM, "gemv %s: out of host memory", shape);
        goto out;
    }
    cu_fill(&c->rng, w, nk);
    cu_fill(&c->rng, x, (size_t)m * k);
    if (dtype == KN_BF16) {
        cu_round_bf16(w, wq, nk);
    } else if (dtype == KN_Q8) {
        kn_quantize_q8(wq, scales, w, nk, group);
        kn_dequantize_q8(w, wq, scales, nk, group); /* the reference's weights */
    }
    kn_f32_to_bf16(xb, x, (size_t)m * k); /* cuBLAS bf16's x */
    for (int i = 0; i < copies; i++) {
        if ((w_d[i] = cu_dev(dtype == KN_F32 ? (void *)w : wq, wbytes, e)) == NULL ||
            (sbytes && (s_d[i] = cu_dev(scales, sbytes, e)) == NULL)) {
            err_prefix(e, "gemv %s (%d copies)", shape, copies);
            goto out;
        }
        wv[i] = (struct kn_weights){.dtype = dtype, .n = (int)n, .k = (int)k, .group = group, .data = w_d[i],
                                    .scales = s_d[i]};
        wp[i] = w_d[i];
    }
    if ((x_d = cu_dev(x, (size_t)m * k * 4, e)) == NULL || (xb_d = cu_dev(xb, (size_t)m * k * 2, e)) == NULL ||
        (out_d = cu_dev(NULL, (size_t)m * n * 4, e)) == NULL) {
        err_prefix(e, "gemv %s", shape);
        goto out;
    }
    for (int v = c->o->cublas && dtype != KN_Q8 ? -1 : 0; v < (c->o->ours ? kn_cuda_versions(KN_CUDA_OP_GEMV) : 0);
         v++) {
        struct cu_call call = {.kind = v >= 0 ? K_GEMV : dtype == KN_F32 ? K_CUBLAS_S : K_CUBLAS_B,
                               .version = v, .copies = copies, .out = out_d, .x = v < 0 && dtype == KN_BF16 ? (void *)xb_d : (void *)x_d,
                               .w = wp, .wv = wv, .m = (int)m, .n = (int)n, .k = (int)k};
        struct cu_row r = {.op = "gemv", .m = m, .n = n, .k = k, .version = v, .vs_cublas = NAN,
                           .roof_of = "read bandwidth"};
        char what[160];
        double max_err = 0, max_ref = 0;

        r.impl = v < 0 ? "cuBLAS" : kn_cuda_version_name(KN_CUDA_OP_GEMV, v);
        snprintf(r.shape, sizeof r.shape, "%s", shape);
        snprintf(what, sizeof what, "gemv %s %s", shape, r.impl);
        if ((r.ms = cu_time(c, &call, what)) < 0)
            continue;
        r.tflops = NAN;
        r.gbs = bytes / (r.ms * 1e-3) / 1e9;
        r.roof = r.gbs / c->read_gbs;
        if (kn_cuda_download(out, out_d, (size_t)m * n * 4) != 0) {
            err_set(e, ERR_SYSTEM, "%s: %s", what, kn_cuda_error());
            goto out;
        }
        for (long i = 0; i < m; i++)
            for (long j = 0; j < n; j++) {
                double ref = 0;
                for (long l = 0; l < k; l++)
                    ref += (double)x[i * k + l] * w[j * k + l];
                if (!(fabs(out[i * n + j] - ref) <= max_err))
                    max_err = fabs(out[i * n + j] - ref);
                max_ref = fmax(max_ref, fabs(ref));
            }
        r.err = max_ref > 0 ? max_err / max_ref : max_err;
        cu_emit(c, &r);
    }
    rc = 0;
out:
    for (int i = 0; w_d != NULL && i < copies; i++) {
        kn_cuda_free(w_d[i]);
        if (s_d != NULL)
            kn_cuda_free(s_d[i]);
    }
    kn_cuda_free(x_d);
    kn_cuda_free(xb_d);
    kn_cuda_free(out_d);
    free(w_d);
    free(s_d);
    free(wv);
    free(wp);
    free(w);
    free(x);
    free(out);
    free(scales);
    free(wq);
    free(xb);
    return rc;
}

/* ---- decode: batched, paged ----------------------------------------------------------------- */

#define CU_BLOCK 16

/* Float64 attention of one query Q (head_dim) over LEN keys/values, the
 * row of position p at BASE + row(p) * row_stride + kvh * head_dim. */
static void cu_attend64(double *out, const float *q, const float *k, const float *v, const int32_t *table,
                        int block, int len, int row_stride, int kvh, int d)
{
    double *p = malloc((size_t)len * sizeof(double)), mx = -INFINITY, sum = 0;

    if (p == NULL) {
        for (int i = 0; i < d; i++)
            out[i] = NAN;
        return;
    }
    for (int t = 0; t < len; t++) {
        size_t row = table != NULL ? (size_t)table[t / block] * block + t % block : (size_t)t;
        const float *kr = k + row * row_stride + (size_t)kvh * d;
        double s = 0;
        for (int i = 0; i < d; i++)
            s += (double)q[i] * kr[i];
        p[t] = s / sqrt((double)d);
        mx = fmax(mx, p[t]);
    }
    for (int i = 0; i < d; i++)
        out[i] = 0;
    for (int t = 0; t < len; t++) {
        size_t row = table != NULL ? (size_t)table[t / block] * block + t % block : (size_t)t;
        const float *vr = v + row * row_stride + (size_t)kvh * d;
        double e = exp(p[t] - mx);
        sum += e;
        for (int i = 0; i < d; i++)
            out[i] += e * vr[i];
    }
    for (int i = 0; i < d; i++)
        out[i] /= sum;
    free(p);
}

static int cu_decode_case(struct cu_ctx *c, int n_seqs, int ctx, struct err *e)
{
    struct kn_attn_shape s = {.n_heads = 32, .n_kv_heads = 8, .head_dim = 128};
    int row = s.n_kv_heads * s.head_dim, max_blocks = (ctx + CU_BLOCK - 1) / CU_BLOCK;
    size_t nblocks = (size_t)n_seqs * max_blocks, rows = nblocks * CU_BLOCK, qn = (size_t)n_seqs * s.n_heads * s.head_dim;
    float *k = malloc(rows * row * sizeof(float)), *v = malloc(rows * row * sizeof(float));
    float *q = malloc(qn * sizeof(float)), *out = malloc(qn * sizeof(float));
    int32_t *table = malloc(nblocks * sizeof(int32_t)), *lens = malloc((size_t)n_seqs * sizeof(int32_t));
    double *ref = malloc((size_t)s.n_heads * s.head_dim * sizeof(double));
    float *k_d = NULL, *v_d = NULL, *q_d = NULL, *out_d = NULL;
    int32_t *table_d = NULL, *lens_d = NULL;
    void *ws_d = NULL;
    size_t ws = kn_cuda_decode_workspace_bytes(n_seqs, ctx, &s);
    double bytes = 2.0 * n_seqs * ctx * row * 4 + 8.0 * qn;
    char shape[64];
    int rc = -1;

    snprintf(shape, sizeof shape, "%dx%d h%d/%d d%d", n_seqs, ctx, s.n_heads, s.n_kv_heads, s.head_dim);
    if (k == NULL || v == NULL || q == NULL || out == NULL || table == NULL || lens == NULL || ref == NULL) {
        err_set(e, ERR_SYSTEM, "decode %s: out of host memory", shape);
        goto out;
    }
    cu_fill(&c->rng, k, rows * row);
    cu_fill(&c->rng, v, rows * row);
    cu_fill(&c->rng, q, qn);
    for (size_t i = 0; i < nblocks; i++) /* a shuffled block table (Fisher-Yates) */
        table[i] = (int32_t)i;
    for (size_t i = nblocks - 1; i > 0; i--) {
        size_t j = (size_t)rng_below(&c->rng, i + 1);
        int32_t t = table[i];
        table[i] = table[j];
        table[j] = t;
    }
    for (int i = 0; i < n_seqs; i++)
        lens[i] = ctx;
    if ((k_d = cu_dev(k, rows * row * 4, e)) == NULL || (v_d = cu_dev(v, rows * row * 4, e)) == NULL ||
        (q_d = cu_dev(q, qn * 4, e)) == NULL || (out_d = cu_dev(NULL, qn * 4, e)) == NULL ||
        (table_d = cu_dev(table, nblocks * 4, e)) == NULL || (lens_d = cu_dev(lens, (size_t)n_seqs * 4, e)) == NULL ||
        (ws > 0 && (ws_d = cu_dev(NULL, ws, e)) == NULL)) {
        err_prefix(e, "decode %s", shape);
        goto out;
    }
    struct kn_cuda_paged_kv kv = {.k = k_d, .v = v_d, .row_stride = row, .block_size = CU_BLOCK,
                                  .block_tables = table_d, .max_blocks = max_blocks, .seq_lens = lens_d};
    /* The reference: sequence 0, every head. */
    for (int h = 0; h < s.n_heads; h++)
        cu_attend64(ref + (size_t)h * s.head_dim, q + (size_t)h * s.head_dim, k, v, table, CU_BLOCK, ctx, row,
                    h / (s.n_heads / s.n_kv_heads), s.head_dim);
    for (int ver = 0; c->o->ours && ver < kn_cuda_versions(KN_CUDA_OP_DECODE); ver++) {
        struct cu_call call = {.kind = K_DECODE, .version = ver, .copies = 1, .out = out_d, .x = q_d, .kv = &kv,
                               .n_seqs = n_seqs, .max_len = ctx, .shape = &s, .ws = ws_d};
        struct cu_row r = {.op = "decode", .m = n_seqs, .n = ctx, .k = s.head_dim, .version = ver,
                           .tflops = NAN, .vs_cublas = NAN, .roof_of = "read bandwidth"};
        char what[128];
        double max_err = 0, max_ref = 0;

        r.impl = kn_cuda_version_name(KN_CUDA_OP_DECODE, ver);
        snprintf(r.shape, sizeof r.shape, "%s", shape);
        snprintf(what, sizeof what, "decode %s %s", shape, r.impl);
        if ((r.ms = cu_time(c, &call, what)) < 0)
            continue;
        r.gbs = bytes / (r.ms * 1e-3) / 1e9;
        r.roof = r.gbs / c->read_gbs;
        if (kn_cuda_download(out, out_d, (size_t)s.n_heads * s.head_dim * 4) != 0) {
            err_set(e, ERR_SYSTEM, "%s: %s", what, kn_cuda_error());
            goto out;
        }
        for (int i = 0; i < s.n_heads * s.head_dim; i++) {
            if (!(fabs(out[i] - ref[i]) <= max_err))
                max_err = fabs(out[i] - ref[i]);
            max_ref = fmax(max_ref, fabs(ref[i]));
        }
        r.err = max_ref > 0 ? max_err / max_ref : max_err;
        cu_emit(c, &r);
    }
    rc = 0;
out:
    kn_cuda_free(k_d);
    kn_cuda_free(v_d);
    kn_cuda_free(q_d);
    kn_cuda_free(out_d);
    kn_cuda_free(table_d);
    kn_cuda_free(lens_d);
    kn_cuda_free(ws_d);
    free(k);
    free(v);
    free(q);
    free(out);
    free(table);
    free(lens);
    free(ref);
    return rc;
}

/* ---- prefill: flash attention bf16 ------------------------------------------------------------- */

static int cu_prefill_case(struct cu_ctx *c, int B, int S, struct err *e)
{
    struct kn_attn_shape s = {.n_heads = 32, .n_kv_heads = 32, .head_dim = 128};
    int d = s.head_dim;
    size_t n = (size_t)B * S * s.n_heads * d; /* q, k, v and out alike (n_kv_heads = n_heads) */
    float *tmp = malloc(4096 * sizeof(float)), *qf = malloc((size_t)d * sizeof(float));
    float *kf = NULL, *vf = NULL;
    uint16_t *q = malloc(n * 2), *k = malloc(n * 2), *v = malloc(n * 2), *o = malloc((size_t)d * 2);
    uint16_t *q_d = NULL, *k_d = NULL, *v_d = NULL, *o_d = NULL;
    double flops = 4.0 * B * (double)S * S * s.n_heads * d / 2, *ref = malloc((size_t)d * sizeof(double));
    char shape[64];
    int rc = -1;

    snprintf(shape, sizeof shape, "B%d S%d h%d d%d causal", B, S, s.n_heads, d);
    if (tmp == NULL || qf == NULL || q == NULL || k == NULL || v == NULL || o == NULL || ref == NULL) {
        err_set(e, ERR_SYSTEM, "prefill %s: out of host memory", shape);
        goto out;
    }
    for (int a = 0; a < 3; a++) {
        uint16_t *dst = a == 0 ? q : a == 1 ? k : v;
        for (size_t i = 0; i < n; i += 4096) {
            size_t len = n - i < 4096 ? n - i : 4096;
            cu_fill(&c->rng, tmp, len);
            kn_f32_to_bf16(dst + i, tmp, len);
        }
    }
    if ((q_d = cu_dev(q, n * 2, e)) == NULL || (k_d = cu_dev(k, n * 2, e)) == NULL ||
        (v_d = cu_dev(v, n * 2, e)) == NULL || (o_d = cu_dev(NULL, n * 2, e)) == NULL) {
        err_prefix(e, "prefill %s", shape);
        goto out;
    }
    /* K and V of one (batch, head) as float rows for the reference: the
     * sampled queries all come from batch 0, head 0 onwards. */
    kf = malloc((size_t)S * d * sizeof(float));
    vf = malloc((size_t)S * d * sizeof(float));
    if (kf == NULL || vf == NULL) {
        err_set(e, ERR_SYSTEM, "prefill %s: out of host memory", shape);
        goto out;
    }
    for (int ver = 0; c->o->ours && ver < kn_cuda_versions(KN_CUDA_OP_FLASH_BF16); ver++) {
        struct cu_call call = {.kind = K_FLASH, .version = ver, .copies = 1, .o16 = o_d, .q16 = q_d, .k16 = k_d,
                               .v16 = v_d, .B = B, .S = S, .shape = &s};
        struct cu_row r = {.op = "prefill", .m = B, .n = S, .k = d, .version = ver, .gbs = NAN, .vs_cublas = NAN,
                           .roof_of = "300 TFLOP/s (FlashAttention-2, H100)"};
        char what[128];
        double max_err = 0, max_ref = 0;
        struct rng sr;

        r.impl = kn_cuda_version_name(KN_CUDA_OP_FLASH_BF16, ver);
        snprintf(r.shape, sizeof r.shape, "%s", shape);
        snprintf(what, sizeof what, "prefill %s %s", shape, r.impl);
        if ((r.ms = cu_time(c, &call, what)) < 0)
            continue;
        r.tflops = flops / (r.ms * 1e-3) / 1e12;
        r.roof = r.tflops / CU_FA2_TFLOPS;
        /* Sampled (batch, position, head) queries against float64. */
        rng_init(&sr, 5, RNG_STREAM_USER + 3);
        for (int smp = 0; smp < CU_ATT_SAMPLES; smp++) {
            int b = (int)rng_below(&sr, (uint64_t)B), t = smp == 0 ? S - 1 : (int)rng_below(&sr, (uint64_t)S);
            int h = (int)rng_below(&sr, (uint64_t)s.n_heads);
            size_t q_off = (((size_t)b * S + t) * s.n_heads + h) * d;
            for (int p = 0; p <= t; p++) { /* this (b, h)'s keys and values, rows 0 .. t */
                size_t off = (((size_t)b * S + p) * s.n_kv_heads + h) * d;
                kn_bf16_to_f32(kf + (size_t)p * d, k + off, (size_t)d);
                kn_bf16_to_f32(vf + (size_t)p * d, v + off, (size_t)d);
            }
            kn_bf16_to_f32(qf, q + q_off, (size_t)d);
            cu_attend64(ref, qf, kf, vf, NULL, 1, t + 1, d, 0, d);
            if (kn_cuda_download(o, o_d + q_off, (size_t)d * 2) != 0) {
                err_set(e, ERR_SYSTEM, "%s: %s", what, kn_cuda_error());
                goto out;
            }
            kn_bf16_to_f32(tmp, o, (size_t)d);
            for (int i = 0; i < d; i++) {
                if (!(fabs(tmp[i] - ref[i]) <= max_err))
                    max_err = fabs(tmp[i] - ref[i]);
                max_ref = fmax(max_ref, fabs(ref[i]));
            }
        }
        r.err = max_ref > 0 ? max_err / max_ref : max_err;
        cu_emit(c, &r);
    }
    rc = 0;
out:
    kn_cuda_free(q_d);
    kn_cuda_free(k_d);
    kn_cuda_free(v_d);
    kn_cuda_free(o_d);
    free(tmp);
    free(qf);
    free(kf);
    free(vf);
    free(q);
    free(k);
    free(v);
    free(o);
    free(ref);
    return rc;
}

/* ---- the subcommand ------------------------------------------------------------------------------- */

/* The default shapes: GEMM cubes; GEMVs of stories110M (dim 768, hidden
 * 2048, vocabulary 32000) and Llama-7B (4096, 11008). */
static const struct bench_mnk cu_sgemm_cubes[] = {{1024, 1024, 1024}, {2048, 2048, 2048}, {4096, 4096, 4096}};
static const struct bench_mnk cu_bgemm_cubes[] = {
    {1024, 1024, 1024}, {2048, 2048, 2048}, {4096, 4096, 4096}, {8192, 8192, 8192}};
static const struct bench_mnk cu_gemvs[] = {{1, 768, 768},   {1, 2048, 768},   {1, 32000, 768},
                                          {1, 4096, 4096}, {1, 11008, 4096}, {1, 4096, 11008}};
static const struct bench_mnk cu_gemvs_quick[] = {{1, 768, 768}, {1, 4096, 4096}, {1, 11008, 4096}};

#define CU_N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int cu_run(const struct cu_opts *o, struct err *e)
{
    static const char *const cols[] = {"op", "shape", "impl", "ms", "TFLOP/s", "GB/s", "vs cuBLAS", "roofline", "err"};
    static const enum kn_dtype dtypes[] = {KN_F32, KN_BF16, KN_Q8};
    struct cu_ctx c = {.o = o};
    json_t *doc = NULL;
    int rc = -1;

    if (kn_cuda_device_count() == 0)
        return err_set(e, ERR_SYSTEM, "cuda: no CUDA device (%s)", kn_cuda_error());
    if (kn_cuda_init(o->device) != 0 || kn_cuda_info(&c.info) != 0)
        return err_set(e, ERR_SYSTEM, "cuda: device %d: %s", o->device, kn_cuda_error());
    c.read_gbs = kn_cuda_read_bandwidth_gbs((size_t)1 << 30, 5);
    if (c.read_gbs <= 0)
        return err_set(e, ERR_SYSTEM, "cuda: measuring the read bandwidth: %s", kn_cuda_error());
    rng_init(&c.rng, 42, RNG_STREAM_USER);
    c.table = bench_table_new(CU_N(cols), cols);
    doc = bench_json_doc("cuda", 1);
    if (c.table == NULL || doc == NULL) {
        err_set(e, ERR_SYSTEM, "out of memory");
        goto out;
    }
    c.results = json_object_get(doc, "results");
    json_object_set_new(
        doc, "device",
        json_pack("{s:s, s:i, s:i, s:i, s:I, s:I, s:o, s:o, s:i, s:i}", "name", c.info.name, "sm_major",
                  c.info.sm_major, "sm_minor", c.info.sm_minor, "sms", c.info.sms, "mem_bytes",
                  (json_int_t)c.info.mem_bytes, "l2_bytes", (json_int_t)c.info.l2_bytes, "read_gbs",
                  bench_json_num(c.read_gbs), "peak_gbs", bench_json_num(c.info.peak_gbs), "driver_version",
                  c.info.driver_version, "runtime_version", c.info.runtime_version));
    log_info("cuda: %s (sm_%d%d, %d SMs), read bandwidth %.0f GB/s", c.info.name, c.info.sm_major, c.info.sm_minor,
             c.info.sms, c.read_gbs);

    for (int part = CU_SGEMM; part <= CU_GEMV; part <<= 1) {
        const struct bench_mnk *list = o->cases;
        int n = o->ncases;
        if (!(o->only & part))
            continue;
        if (o->ncases == 0) {
            list = part == CU_SGEMM ? cu_sgemm_cubes : part == CU_BGEMM ? cu_bgemm_cubes : o->quick ? cu_gemvs_quick : cu_gemvs;
            n = part == CU_SGEMM ? CU_N(cu_sgemm_cubes) : part == CU_BGEMM ? (o->quick ? 3 : CU_N(cu_bgemm_cubes))
                : o->quick ? CU_N(cu_gemvs_quick) : CU_N(cu_gemvs);
        }
        for (int i = 0; i < n; i++) {
            int is_gemv = list[i].m <= 8;
            if (is_gemv != (part == CU_GEMV))
                continue;
            if (part == CU_GEMV) {
                for (int d = 0; d < 3; d++)
                    if (cu_gemv_case(&c, dtypes[d], &list[i], e) != 0)
                        goto out;
            } else if (cu_gemm_case(&c, part == CU_BGEMM, &list[i], e) != 0) {
                goto out;
            }
        }
    }
    if ((o->only & CU_DECODE) && o->ours && cu_decode_case(&c, o->quick ? 8 : 32, 4096, e) != 0)
        goto out;
    if ((o->only & CU_PREFILL) && o->ours && cu_prefill_case(&c, o->quick ? 1 : 4, 4096, e) != 0)
        goto out;

    if (o->json_file != NULL && bench_json_write(o->json_file, doc, e) != 0)
        goto out;
    if (c.failed > 0) {
        err_set(e, ERR_SYSTEM, "cuda: %d kernel%s failed (see above)", c.failed, c.failed > 1 ? "s" : "");
        goto out;
    }
    rc = 0;
out:
    if (c.table != NULL) { /* what was measured, also when a case failed */
        printf("llmbench cuda: %s (sm_%d%d, %d SMs, %.0f MiB L2); read bandwidth %.0f GB/s measured",
               c.info.name, c.info.sm_major, c.info.sm_minor, c.info.sms, c.info.l2_bytes / 1048576.0, c.read_gbs);
        if (c.info.peak_gbs > 0)
            printf(" (%.0f GB/s theoretical)", c.info.peak_gbs);
        printf("; median of %d runs\n", o->repeat);
        bench_table_print(c.table, stdout);
        printf("vs cuBLAS: cuBLAS time / this time, same operands, same run (>1 is faster).\n"
               "roofline: gemv and decode as a fraction of the measured read bandwidth; prefill of\n"
               "%.0f TFLOP/s (FlashAttention-2 on an H100).  err: max |out - ref| / max |ref| against\n"
               "float64 on sampled outputs (bgemm and prefill: from the bf16-rounded inputs).\n",
               CU_FA2_TFLOPS);
        fflush(stdout);
    }
    bench_table_free(c.table);
    json_decref(doc);
    return rc;
}

#endif /* HAVE_CUDA */

static int cuda_exec(int argc, char **argv)
{
    static const struct option opts[] = {
        {"backend", required_argument, NULL, 'b'}, {"only", required_argument, NULL, 'o'},
        {"sizes", required_argument, NULL, 's'},   {"quick", no_argument, NULL, 'q'},
        {"repeat", required_argument, NULL, 'r'},  {"device", required_argument, NULL, 'D'},
        {"json", required_argument, NULL, 'j'},    {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cu_opts o = {.ours = 1, .cublas = 1, .only = CU_ALL, .repeat = 10};
    struct err e = {0};
    long v;
    int ch;

    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'b':
            if (strcmp(optarg, "cuda") == 0)
                o.ours = 1, o.cublas = 0;
            else if (strcmp(optarg, "cublas") == 0)
                o.ours = 0, o.cublas = 1;
            else if (strcmp(optarg, "both") == 0)
                o.ours = 1, o.cublas = 1;
            else {
                err_set(&e, ERR_INPUT, "--backend: unknown backend '%s' (cuda, cublas or both)", optarg);
                return bench_fail(&e);
            }
            break;
        case 'o':
            if (parse_only(optarg, &o.only, &e) != 0)
                return bench_fail(&e);
            break;
        case 's':
            if (bench_parse_sizes(optarg, o.cases, CU_MAX_CASES, &o.ncases, &e) != 0)
                return bench_fail(&e);
            break;
        case 'q': o.quick = 1; break;
        case 'r':
            if (bench_parse_int("--repeat", optarg, 1, 1000, &v, &e) != 0)
                return bench_fail(&e);
            o.repeat = (int)v;
            break;
        case 'D':
            if (bench_parse_int("--device", optarg, 0, 63, &v, &e) != 0)
                return bench_fail(&e);
            o.device = (int)v;
            break;
        case 'j': o.json_file = optarg; break;
        case 'h': cuda_usage(stdout); return 0;
        default:
            log_error("cuda: unknown or incomplete option '%s' (try 'llmbench cuda --help')", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        log_error("cuda: unexpected argument '%s'", argv[optind]);
        return 2;
    }
#ifndef HAVE_CUDA
    log_error("cuda: this llmbench was built without CUDA (configure found no nvcc and cuBLAS)");
    return 2;
#else
    if (cu_run(&o, &e) != 0)
        return bench_fail(&e);
    return 0;
#endif
}

const struct bench_command bench_cuda_entry = {
    .name = "cuda",
    .summary = "the CUDA kernels (GEMM, GEMV, attention) against cuBLAS and the GPU roofline",
    .exec = cuda_exec,
};
