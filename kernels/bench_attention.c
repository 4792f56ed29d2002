/* bench_attention.c -- `llmbench attention`: decode and causal prefill
 * against the memory roofline, the plain reference and float64.
 *
 * Decode (one query per head over S cached positions) is memory-bound: it
 * must read all of K and V, 2 S n_kv_heads head_dim floats, so it is
 * reported in GB/s and as a fraction of the measured bandwidth; several KV
 * caches are cycled through so that together they exceed twice the LLC.
 * Prefill (T queries at positions 0 .. T-1, causal) is compute-bound and is
 * reported in GFLOP/s, counting 4 T S_avg n_heads head_dim with the causal
 * halving (2 T^2 n_heads head_dim), and against the reference kernel run in
 * the same process.  Both are checked against float64 on a sample of
 * (position, head) outputs. */
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

#define ATT_ERR_SAMPLES 16
#define ATT_MAX_CONTEXT (1L << 20)
#define ATT_MAX_ROUNDS 100

struct att_opts {
    const char *backend;
    int decode, prefill;
    long context; /* 0: the defaults, 4096 for decode and 2048 for prefill */
    struct kn_attn_shape shape;
    int threads;
    int repeat;
    int rounds; /* roofline and kernel measured back to back this many times */
    const char *json_file;
    const char *roofline_file;
};

/* Operands of one mode: copies of the KV cache (S rows), the queries and the
 * outputs, cycled through. */
struct att_data {
    float **k, **v, **q, **out;
    struct kn_kv_view *kv;
    int copies;
    int S;      /* cached positions */
    int T;      /* queries: 1 for decode */
    size_t row; /* floats per KV row: n_kv_heads * head_dim */
};

/* Free what att_data_build allocated (also a partly built D) and zero D. */
static void att_data_free(struct att_data *d)
{
    int i;

    for (i = 0; i < d->copies; i++) {
        if (d->k != NULL)
            free(d->k[i]);
        if (d->v != NULL)
            free(d->v[i]);
        if (d->q != NULL)
            free(d->q[i]);
        if (d->out != NULL)
            free(d->out[i]);
    }
    free(d->k);
    free(d->v);
    free(d->q);
    free(d->out);
    free(d->kv);
    memset(d, 0, sizeof(*d));
}

/* Random K, V (S rows) and queries (T, n_heads, head_dim), uniform in
 * [-1, 1], copied so that the copies exceed twice the LLC. */
static int att_data_build(const struct kn_attn_shape *s, int S, int T, struct att_data *d,
                          struct err *e)
{
    size_t row = (size_t)s->n_kv_heads * s->head_dim, qn = (size_t)T * s->n_heads * s->head_dim;
    size_t kvn = (size_t)S * row, i;
    struct rng r;
    int c;

    memset(d, 0, sizeof(*d));
    d->S = S;
    d->T = T;
    d->row = row;
    d->copies = bench_copies(4.0 * (2 * kvn + 2 * qn));
    d->k = calloc((size_t)d->copies, sizeof(float *));
    d->v = calloc((size_t)d->copies, sizeof(float *));
    d->q = calloc((size_t)d->copies, sizeof(float *));
    d->out = calloc((size_t)d->copies, sizeof(float *));
    d->kv = calloc((size_t)d->copies, sizeof(*d->kv));
    if (d->k == NULL || d->v == NULL || d->q == NULL || d->out == NULL || d->kv == NULL)
        goto oom;
    rng_init(&r, 43, RNG_STREAM_USER);
    for (c = 0; c < d->copies; c++) {
        d->k[c] = malloc(kvn * sizeof(float));
        d->v[c] = malloc(kvn * sizeof(float));
        d->q[c] = malloc(qn * sizeof(float));
        d->out[c] = calloc(qn, sizeof(float));
        if (d->k[c] == NULL || d->v[c] == NULL || d->q[c] == NULL || d->out[c] == NULL)
            goto oom;
        if (c == 0) {
            for (i = 0; i < kvn; i++) {
                d->k[0][i] = (float)(2 * rng_uniform(&r) - 1);
                d->v[0][i] = (float)(2 * rng_uniform(&r) - 1);
            }
            for (i = 0; i < qn; i++)
                d->q[0][i] = (float)(2 * rng_uniform(&r) - 1);
        } else {
            memcpy(d->k[c], d->k[0], kvn * sizeof(float));
            memcpy(d->v[c], d->v[0], kvn * sizeof(float));
            memcpy(d->q[c], d->q[0], qn * sizeof(float));
        }
        d->kv[c] = (struct kn_kv_view){.k = d->k[c], .v = d->v[c], .pos_stride = (int)row};
    }
    return 0;
oom:
    att_data_free(d);
    return err_set(e, ERR_SYSTEM, "attention: out of memory for %d positions", S);
}

struct att_run {
    const struct att_data *d;
    const struct kn_attn_shape *s;
    void (*prefill)(float *out, const float *q, const struct kn_kv_view *kv, int T, int pos0,
                    const struct kn_attn_shape *s);
    void (*decode)(float *out, const float *q, const struct kn_kv_view *kv, int S,
                   const struct kn_attn_shape *s);
    int last;
};

/* bench_time callback: run I on copy I mod copies and remember it. */
static void att_call(void *arg, int i)
{
    struct att_run *r = arg;
    int c = i % r->d->copies;

    r->last = c;
    if (r->decode != NULL)
        r->decode(r->d->out[c], r->d->q[c], &r->d->kv[c], r->d->S, r->s);
    else
        r->prefill(r->d->out[c], r->d->q[c], &r->d->kv[c], r->d->T, 0, r->s);
}

/* Max |out - ref| / max |ref| over sampled (query, head) rows of copy C,
 * against float64 attention; query t sees positions 0 .. t + (S - T). */
static double att_error(const struct att_data *d, const struct kn_attn_shape *s, int c)
{
    int hd = s->head_dim, group = s->n_heads / s->n_kv_heads, n, j, p;
    long rows = (long)d->T * s->n_heads, samples = rows < ATT_ERR_SAMPLES ? rows : ATT_ERR_SAMPLES;
    double *score = malloc((size_t)d->S * sizeof(*score)), *acc = malloc((size_t)hd * sizeof(*acc));
    double max_err = 0, max_ref = 0, scale = 1 / sqrt((double)hd);
    struct rng r;

    if (score == NULL || acc == NULL) {
        free(score);
        free(acc);
        return NAN;
    }
    rng_init(&r, 8, RNG_STREAM_USER + 2);
    for (n = 0; n < samples; n++) {
        long idx = samples == rows ? n : (long)rng_below(&r, (uint64_t)rows);
        int t = (int)(idx / s->n_heads), h = (int)(idx % s->n_heads), kvh = h / group;
        int last = t + (d->S - d->T);
        const float *q = d->q[c] + (size_t)idx * hd, *out = d->out[c] + (size_t)idx * hd;
        double m = -INFINITY, sum = 0;

        for (p = 0; p <= last; p++) {
            const float *k = d->k[c] + (size_t)p * d->row + (size_t)kvh * hd;
            double dot = 0;

            for (j = 0; j < hd; j++)
                dot += (double)q[j] * k[j];
            score[p] = dot * scale;
            m = score[p] > m ? score[p] : m;
        }
        for (j = 0; j < hd; j++)
            acc[j] = 0;
        for (p = 0; p <= last; p++) {
            const float *v = d->v[c] + (size_t)p * d->row + (size_t)kvh * hd;
            double w = exp(score[p] - m);

            sum += w;
            for (j = 0; j < hd; j++)
                acc[j] += w * v[j];
        }
        for (j = 0; j < hd; j++) {
            double ref = acc[j] / sum;

            max_err = fmax(max_err, fabs(out[j] - ref));
            max_ref = fmax(max_ref, fabs(ref));
        }
    }
    free(score);
    free(acc);
    return max_ref > 0 ? max_err / max_ref : max_err;
}

/* Time the backend and the reference on one mode and add a row and a JSON
 * entry.  The backend is timed in o->rounds rounds; unless the roofline
 * comes from a file, each round first measures it again (one streaming
 * read, one FMA loop), so that the fraction of each round compares the
 * kernel with the machine as it was that second: on a shared machine whose
 * bandwidth drifts, a roofline measured once at start and a kernel timed
 * later disagree by the drift.  Printed: the median over rounds of the time
 * and of the fraction. */
static int att_run_mode(const struct att_opts *o, int decode, const struct bench_roofline *roof,
                        struct bench_table *table, json_t *results, struct err *e)
{
    const struct kn_backend *be = kn_backend_find(o->backend), *ref = kn_backend_find("ref");
    const struct kn_attn_shape *s = &o->shape;
    int ctx = (int)(o->context > 0 ? o->context : decode ? 4096 : 2048);
    struct att_data d;
    struct att_run run = {.s = s}, rrun = {.s = s};
    struct bench_timing t, tr;
    double kv_bytes, bytes, flops, gflops, gbs, frac, err_rel, bw;
    double time_r[ATT_MAX_ROUNDS], frac_r[ATT_MAX_ROUNDS], bw_r[ATT_MAX_ROUNDS];
    json_t *rounds_json;
    double hd = s->head_dim, nh = s->n_heads, nkv = s->n_kv_heads;

    if (att_data_build(s, ctx, decode ? 1 : ctx, &d, e) != 0)
        return -1;
    kv_bytes = 2.0 * ctx * nkv * hd * 4;
    if (decode) {
        bytes = kv_bytes + 2 * nh * hd * 4;
        flops = 4.0 * ctx * nh * hd;
    } else {
        bytes = kv_bytes + 2.0 * ctx * nh * hd * 4;
        flops = 2.0 * ctx * ctx * nh * hd;
    }
    run.d = rrun.d = &d;
    if (decode) {
        run.decode = be->attention_decode;
        rrun.decode = ref->attention_decode;
    } else {
        run.prefill = be->attention_prefill;
        rrun.prefill = ref->attention_prefill;
    }
    log_debug("attention %s %d: %d copies", decode ? "decode" : "prefill", ctx, d.copies);
    rounds_json = json_array();
    for (int r = 0; r < o->rounds; r++) {
        struct bench_roofline rr = *roof;

        if (o->rounds > 1 && o->roofline_file == NULL &&
            bench_roofline_measure(o->threads, bench_roofline_bytes(o->threads), 1, &rr, e) != 0) {
            json_decref(rounds_json);
            att_data_free(&d);
            return -1;
        }
        t = bench_time(att_call, &run, o->repeat, 5.0);
        time_r[r] = t.median_s;
        bw_r[r] = rr.bandwidth_gbs;
        frac_r[r] = decode ? bytes / t.median_s / 1e9 / rr.bandwidth_gbs
                           : flops / t.median_s / 1e9 / bench_roofline_bound(&rr, flops / bytes);
        json_array_append_new(rounds_json, json_pack("{s:o, s:o, s:o}", "time_s", bench_json_num(time_r[r]),
                                                     "bandwidth_gbs", bench_json_num(bw_r[r]),
                                                     "roofline_fraction", bench_json_num(frac_r[r])));
        if (o->rounds > 1)
            log_info("attention %s %d, round %d: %.3f ms, %.1f GB/s measured, %.0f%% of the roofline",
                     decode ? "decode" : "prefill", ctx, r + 1, time_r[r] * 1e3, bw_r[r], 100 * frac_r[r]);
    }
    t.median_s = bench_median(time_r, (size_t)o->rounds);
    bw = bench_median(bw_r, (size_t)o->rounds);
    err_rel = att_error(&d, s, run.last);
    if (be == ref)
        tr = t;
    else
        tr = bench_time(att_call, &rrun, o->repeat, 5.0);
    gflops = flops / t.median_s / 1e9;
    gbs = bytes / t.median_s / 1e9;
    frac = bench_median(frac_r, (size_t)o->rounds);
    bench_table_row(table);
    bench_table_cell(table, "%s", decode ? "decode" : "prefill");
    bench_table_cell(table, "%d", ctx);
    bench_table_cell(table, "%d/%d/%d", s->n_heads, s->n_kv_heads, s->head_dim);
    bench_table_cell(table, "%s", o->backend);
    bench_table_cell(table, "%.3f", t.median_s * 1e3);
    bench_table_cell(table, "%.1f", gflops);
    bench_table_cell(table, "%.1f", gbs);
    bench_table_cell(table, "%.0f%%", 100 * frac);
    bench_table_cell(table, "%.2fx", tr.median_s / t.median_s);
    bench_table_cell(table, "%.1e", err_rel);
    json_array_append_new(
        results,
        json_pack("{s:s, s:i, s:i, s:i, s:i, s:s, s:o, s:i, s:o, s:o, s:o, s:o, s:s, s:o, s:o, s:o, "
                  "s:o, s:i, s:i, s:o, s:o}",
                  "mode", decode ? "decode" : "prefill", "context", ctx, "n_heads", s->n_heads,
                  "n_kv_heads", s->n_kv_heads, "head_dim", s->head_dim, "backend", o->backend, "time_s",
                  bench_json_num(t.median_s), "runs", t.runs, "flops", bench_json_num(flops), "bytes",
                  bench_json_num(bytes), "gflops", bench_json_num(gflops), "gbs", bench_json_num(gbs),
                  "roofline_kind", decode ? "bandwidth" : "roofline", "roofline_fraction",
                  bench_json_num(frac), "ref_time_s", bench_json_num(tr.median_s), "vs_ref",
                  bench_json_num(tr.median_s / t.median_s), "max_rel_err", bench_json_num(err_rel),
                  "copies", d.copies, "rounds", o->rounds, "bandwidth_gbs", bench_json_num(bw),
                  "per_round", rounds_json));
    att_data_free(&d);
    return 0;
}

/* ---- the subcommand ------------------------------------------------------------- */

static void attention_usage(FILE *f)
{
    fprintf(f,
            "usage: llmbench attention [--backend cpu|ref] [--mode prefill|decode|both]\n"
            "                          [--context N] [--heads H] [--kv-heads K] [--head-dim D]\n"
            "                          [--threads N] [--repeat R] [--rounds N] [--roofline FILE]\n"
            "                          [--json FILE]\n"
            "\n"
            "Time attention over a float32 KV cache.  decode: one query per head over N cached\n"
            "positions (default 4096), in GB/s of K and V read and as a fraction of the\n"
            "measured bandwidth.  prefill: N queries at positions 0..N-1, causal (default\n"
            "2048), in GFLOP/s (2 N^2 H D).  Both report the ratio against the plain\n"
            "reference (>1 is faster) and the error against float64 on %d sampled rows.\n"
            "The kernel is timed in N rounds, each measuring the roofline again first, so\n"
            "that a drift in this machine's bandwidth moves a round's kernel and its\n"
            "roofline alike; printed: the median over rounds of the time and the fraction.\n"
            "\n"
            "  --backend B    cpu (default) or ref\n"
            "  --mode M       prefill, decode or both (default)\n"
            "  --context N    positions (decode) and queries (prefill)\n"
            "  --heads H      query heads (default 32)\n"
            "  --kv-heads K   key/value heads, dividing H (default 8)\n"
            "  --head-dim D   floats per head (default 128)\n"
            "  --threads N    threads (default: all cores)\n"
            "  --repeat R     timed runs per round after a warm-up (default 5)\n"
            "  --rounds N     rounds of roofline + kernel (default 5; 1: the roofline once)\n"
            "  --roofline F   read the roofline from F instead of measuring it\n"
            "  --json FILE    also write the results as JSON (for 'llmbench report')\n",
            ATT_ERR_SAMPLES);
}

/* `llmbench attention ARGS`: parse, measure or load the roofline, run the
 * modes, print the table and write the JSON.  Returns the exit status. */
static int attention_exec(int argc, char **argv)
{
    static const struct option opts[] = {
        {"backend", required_argument, NULL, 'b'},  {"mode", required_argument, NULL, 'm'},
        {"context", required_argument, NULL, 'c'},  {"heads", required_argument, NULL, 'H'},
        {"kv-heads", required_argument, NULL, 'K'}, {"head-dim", required_argument, NULL, 'D'},
        {"threads", required_argument, NULL, 't'},  {"repeat", required_argument, NULL, 'r'},
        {"roofline", required_argument, NULL, 'R'}, {"json", required_argument, NULL, 'j'},
        {"rounds", required_argument, NULL, 'n'},   {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char *const cols[] = {"mode",  "context", "H/K/D",    "backend", "ms",
                                       "GFLOP/s", "GB/s",  "roofline", "vs ref",  "err"};
    struct att_opts o = {.backend = "cpu", .decode = 1, .prefill = 1, .repeat = 5, .rounds = 5,
                         .shape = {.n_heads = 32, .n_kv_heads = 8, .head_dim = 128}};
    struct bench_roofline roof;
    struct bench_table *table = NULL;
    json_t *doc = NULL;
    struct err e = {0};
    double bytes, ctx_max;
    long v;
    int c, rc = 1;

    o.threads = bench_cores();
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (strcmp(optarg, "cpu") != 0 && strcmp(optarg, "ref") != 0) {
                err_set(&e, ERR_INPUT, "--backend: unknown backend '%s' (cpu or ref)", optarg);
                return bench_fail(&e);
            }
            o.backend = optarg;
            break;
        case 'm':
            if (strcmp(optarg, "both") == 0)
                o.decode = o.prefill = 1;
            else if (strcmp(optarg, "decode") == 0 || strcmp(optarg, "prefill") == 0) {
                o.decode = optarg[0] == 'd';
                o.prefill = !o.decode;
            } else {
                err_set(&e, ERR_INPUT, "--mode: unknown mode '%s' (prefill, decode or both)", optarg);
                return bench_fail(&e);
            }
            break;
        case 'c':
            if (bench_parse_int("--context", optarg, 1, ATT_MAX_CONTEXT, &o.context, &e) != 0)
                return bench_fail(&e);
            break;
        case 'H':
        case 'K':
        case 'D':
            if (bench_parse_int(c == 'H' ? "--heads" : c == 'K' ? "--kv-heads" : "--head-dim", optarg, 1,
                                c == 'D' ? 1024 : 4096, &v, &e) != 0)
                return bench_fail(&e);
            if (c == 'H')
                o.shape.n_heads = (int)v;
            else if (c == 'K')
                o.shape.n_kv_heads = (int)v;
            else
                o.shape.head_dim = (int)v;
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
        case 'n':
            if (bench_parse_int("--rounds", optarg, 1, ATT_MAX_ROUNDS, &v, &e) != 0)
                return bench_fail(&e);
            o.rounds = (int)v;
            break;
        case 'R': o.roofline_file = optarg; break;
        case 'j': o.json_file = optarg; break;
        case 'h': attention_usage(stdout); return 0;
        default:
            log_error("attention: unknown or incomplete option '%s' (try 'llmbench attention --help')",
                      argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        log_error("attention: unexpected argument '%s'", argv[optind]);
        return 2;
    }
    if (o.shape.n_heads % o.shape.n_kv_heads != 0) {
        err_set(&e, ERR_INPUT, "--kv-heads %d must divide --heads %d", o.shape.n_kv_heads,
                o.shape.n_heads);
        return bench_fail(&e);
    }
    /* K, V, queries and outputs of the largest mode */
    ctx_max = (double)(o.context > 0 ? o.context : 4096);
    bytes = 4.0 * ctx_max * o.shape.head_dim * (2.0 * o.shape.n_kv_heads + 2.0 * o.shape.n_heads);
    if (bytes > BENCH_MAX_OPERAND_BYTES) {
        err_set(&e, ERR_INPUT, "--context %.0f: operands need %.1f GiB, above the %.0f GiB limit", ctx_max,
                bytes / (1 << 30), BENCH_MAX_OPERAND_BYTES / (1 << 30));
        return bench_fail(&e);
    }
    if (kn_backend_find(o.backend) == NULL || kn_backend_find("ref") == NULL) {
        err_set(&e, ERR_INPUT, "--backend: '%s' is not built in", o.backend);
        return bench_fail(&e);
    }
    kn_set_threads(o.threads);
    if (bench_roofline_get(o.roofline_file, o.threads, &roof, &e) != 0)
        goto err;
    table = bench_table_new(10, cols);
    doc = bench_json_doc("attention", o.threads);
    if (table == NULL || doc == NULL) {
        err_set(&e, ERR_SYSTEM, "out of memory");
        goto err;
    }
    json_object_set_new(doc, "roofline",
                        json_pack("{s:o, s:o, s:s}", "bandwidth_gbs", bench_json_num(roof.bandwidth_gbs),
                                  "peak_gflops", bench_json_num(roof.peak_gflops), "source",
                                  o.roofline_file != NULL ? o.roofline_file : "measured"));
    if (o.decode && att_run_mode(&o, 1, &roof, table, json_object_get(doc, "results"), &e) != 0)
        goto err;
    if (o.prefill && att_run_mode(&o, 0, &roof, table, json_object_get(doc, "results"), &e) != 0)
        goto err;
    printf("attention on %d threads (%s); roofline %.1f GB/s, %.1f GFLOP/s%s; median of %d rounds of %d runs\n",
           o.threads, kn_isa_name(kn_get_isa()), roof.bandwidth_gbs, roof.peak_gflops,
           o.rounds > 1 && o.roofline_file == NULL ? " at start, measured again each round" : "", o.rounds,
           o.repeat);
    printf("decode: roofline = fraction of bandwidth; prefill: of min(peak, bandwidth x intensity)\n");
    bench_table_print(table, stdout);
    if (o.json_file != NULL && bench_json_write(o.json_file, doc, &e) != 0)
        goto err;
    rc = 0;
err:
    bench_table_free(table);
    json_decref(doc);
    return rc == 0 ? 0 : bench_fail(&e);
}

const struct bench_command bench_attention_entry = {
    .name = "attention",
    .summary = "attention decode and causal prefill against the roofline and the reference",
    .exec = attention_exec,
};
