/* bench_model.c -- `llmbench model`: the model's forward pass (server/model.c)
 * on this machine, against the targets of the engine issue, each as a ratio
 * to a baseline measured in the same run:
 *
 *   decode f32    single-stream tokens/s vs the bandwidth roofline
 *                 (measured GB/s / weight bytes read per token)   >= 0.9
 *   decode q8     int8 weights vs f32 decode                       >= 3x
 *   batch 16      aggregate tokens/s of 16 sequences vs 1          >= 8x
 *   prefill 512   seconds per token decoding vs prefilling 512     >= 20x
 *
 * Also the timed steps `llmbench profile` uses (bench_step_*), so both
 * measure the same thing: forward_batch over sequences whose KV blocks are
 * reserved in a paged cache (the keys read are zeros; their values do not
 * change the work). */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "kernels/bench.h"
#include "kernels/kernels.h"
#include "server/forward.h"
#include "server/kvcache.h"
#include "server/model.h"

/* ---- timed steps, shared with bench_profile.c ------------------------------------------ */

int bench_step_open(struct bench_step *b, const char *model, int quantize_q8, int max_seqs, int max_tokens,
                    const char *backend, struct err *e)
{
    struct model_load_opts lo = {.quantize_q8 = quantize_q8};
    const struct model_config *c;
    const struct kn_backend *be;
    int per_seq;

    memset(b, 0, sizeof *b);
    b->m = calloc(1, sizeof *b->m);
    if (b->m == NULL)
        return err_set(e, ERR_SYSTEM, "out of memory");
    if (model_load(b->m, model, &lo, e) < 0)
        goto fail;
    c = &b->m->cfg;
    per_seq = (c->seq_len + 15) / 16;
    b->kv = calloc(1, sizeof *b->kv);
    b->seqs = calloc((size_t)max_seqs, sizeof *b->seqs);
    b->fs = calloc((size_t)max_seqs, sizeof *b->fs);
    b->tokens = calloc((size_t)(max_tokens > max_seqs ? max_tokens : max_seqs), sizeof *b->tokens);
    b->logits = malloc((size_t)max_seqs * c->vocab_size * sizeof *b->logits);
    b->scratch = malloc((size_t)c->vocab_size * sizeof *b->scratch);
    if (b->kv == NULL || b->seqs == NULL || b->fs == NULL || b->tokens == NULL || b->logits == NULL ||
        b->scratch == NULL) {
        err_set(e, ERR_SYSTEM, "out of memory");
        goto fail;
    }
    /* the backend's choice ("auto") goes to the log; a cache on the device
     * keeps only block ids on the host */
    if ((be = forward_backend(backend, e)) == NULL)
        goto fail;
    b->backend = be->name;
    if ((forward_backend_on_device(be) ? kv_cache_init_meta : kv_cache_init)(
            b->kv, c->n_layers, c->n_kv_heads * c->head_dim, 16, max_seqs * per_seq, e) < 0)
        goto fail;
    b->f = forward_create(b->m, b->kv, max_tokens > max_seqs ? max_tokens : max_seqs, be, e);
    if (b->f == NULL)
        goto fail;
    for (int i = 0; i < max_seqs; i++) {
        kv_seq_init(&b->seqs[i]);
        if (kv_seq_reserve(b->kv, &b->seqs[i], c->seq_len) < 0) {
            err_set(e, ERR_SYSTEM, "KV cache: no room for %d sequences", max_seqs);
            goto fail;
        }
    }
    /* token ids spread over the vocabulary */
    for (int i = 0; i < (max_tokens > max_seqs ? max_tokens : max_seqs); i++)
        b->tokens[i] = (int)((i * 7919L + 1) % c->vocab_size);
    b->max_seqs = max_seqs;
    b->max_tokens = max_tokens > max_seqs ? max_tokens : max_seqs;
    return 0;
fail:
    bench_step_close(b);
    return -1;
}

void bench_step_close(struct bench_step *b)
{
    if (b->seqs != NULL && b->kv != NULL && b->kv->free_ids != NULL)
        for (int i = 0; i < b->max_seqs; i++)
            kv_seq_free(b->kv, &b->seqs[i]);
    forward_free(b->f);
    if (b->kv != NULL)
        kv_cache_free(b->kv);
    if (b->m != NULL)
        model_free(b->m);
    free(b->m);
    free(b->kv);
    free(b->seqs);
    free(b->fs);
    free(b->tokens);
    free(b->logits);
    free(b->scratch);
    memset(b, 0, sizeof *b);
}

/* What one timed call runs. */
struct bench_step_call {
    struct bench_step *b;
    int n_seqs;
};

/* One step: the forward pass, then (when b->sample) a token drawn from
 * every sequence's logits as the engine does for a request at temperature 1
 * (what llmload asks for). */
static void bench_step_run(void *arg, int i)
{
    struct bench_step_call *c = arg;
    struct bench_step *b = c->b;

    (void)i;
    forward_batch(b->f, b->fs, c->n_seqs);
    if (b->sample)
        for (int s = 0; s < c->n_seqs; s++)
            if (b->fs[s].logits != NULL)
                b->sampled += kn_sample(b->fs[s].logits, b->m->cfg.vocab_size, 1.0f, 0, 1.0f,
                                        (float)((s * 0.618034 + i * 0.414214) - (long)(s * 0.618034 + i * 0.414214)),
                                        b->scratch);
}

double bench_step_decode_s(struct bench_step *b, int batch, int ctx, int repeat)
{
    return bench_step_mixed_s(b, 0, batch, ctx, repeat);
}

double bench_step_prefill_s(struct bench_step *b, int n, int repeat)
{
    return bench_step_mixed_s(b, n, 0, 0, repeat);
}

double bench_step_mixed_s(struct bench_step *b, int prefill, int batch, int ctx, int repeat)
{
    struct bench_step_call call = {.b = b, .n_seqs = 0};
    int V = b->m->cfg.vocab_size;

    if (ctx < 1)
        ctx = 1;
    if (ctx > b->m->cfg.seq_len)
        ctx = b->m->cfg.seq_len;
    for (int s = 0; s < batch; s++)
        b->fs[call.n_seqs++] = (struct forward_seq){.tokens = &b->tokens[s], .n_tokens = 1, .pos0 = ctx - 1,
                                                    .kv = &b->seqs[s], .logits = b->logits + (size_t)s * V};
    if (prefill > 0) {
        /* the prompt goes to the sequence after the decoding ones */
        b->fs[call.n_seqs] = (struct forward_seq){.tokens = b->tokens, .n_tokens = prefill, .pos0 = 0,
                                                  .kv = &b->seqs[batch],
                                                  .logits = b->logits + (size_t)batch * V};
        call.n_seqs++;
    }
    return bench_time(bench_step_run, &call, repeat, 0).median_s;
}

/* ---- the subcommand -------------------------------------------------------------------- */

static void model_usage(FILE *f)
{
    fprintf(f,
            "usage: llmbench model [--model M] [--threads N] [--rounds R] [--repeat S] [--context C]\n"
            "                      [--prefill P] [--batch B] [--roofline FILE] [--json FILE]\n"
            "\n"
            "Time the forward pass of llmserve's model on this machine against the engine's\n"
            "targets, each a ratio to a baseline measured in the same run:\n"
            "  decode f32   single-stream tokens/s / (GB/s measured here / weight bytes)  >= 0.9\n"
            "  decode q8    tokens/s with int8 weights / f32 tokens/s                    >= 3\n"
            "  batch B      aggregate tokens/s of B sequences / single-stream            >= 8\n"
            "  prefill P    tokens/s prefilling P tokens at once / decoding              >= 20\n"
            "The figures are measured in R interleaved rounds (bandwidth, f32 decode, q8\n"
            "decode, batch, prefill; a round's decode figures the median of S steps), so a\n"
            "busy neighbour slows a figure and its baseline alike.  Printed: the median over\n"
            "rounds of each figure and of each ratio, and the ratio of the best rounds.\n"
            "\n"
            "  --model M      a checkpoint or synthetic:NAME (default synthetic:stories110M)\n"
            "  --threads N    kernel threads (default: all cores)\n"
            "  --rounds R     interleaved rounds (default 5)\n"
            "  --repeat S     timed decode steps per round and figure (default 5)\n"
            "  --context C    tokens already in the cache when decoding (default 128)\n"
            "  --prefill P    prompt tokens prefilled in one step (default 512)\n"
            "  --batch B      sequences decoded together (default 16)\n"
            "  --roofline F   the bandwidth from 'llmbench roofline --json F' instead of measuring it\n"
            "  --json FILE    write the figures as JSON\n");
}

#define MODEL_MAX_ROUNDS 100

static double max_of(const double *v, int n)
{
    double m = v[0];

    for (int i = 1; i < n; i++)
        if (v[i] > m)
            m = v[i];
    return m;
}

static int bench_model_exec(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},   {"threads", required_argument, NULL, 't'},
        {"repeat", required_argument, NULL, 'r'},  {"rounds", required_argument, NULL, 'n'},
        {"context", required_argument, NULL, 'c'}, {"prefill", required_argument, NULL, 'p'},
        {"batch", required_argument, NULL, 'b'},   {"roofline", required_argument, NULL, 'R'},
        {"json", required_argument, NULL, 'j'},    {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char *const cols[] = {"figure", "value", "baseline", "ratio", "best ratio", "target", "met"};
    const char *model = "synthetic:stories110M", *roof_file = NULL, *json_file = NULL;
    long threads = bench_cores(), repeat = 5, rounds = 5, ctx = 128, prefill = 512, batch = 16;
    struct bench_roofline roof;
    struct bench_step b32 = {0}, b8 = {0};
    struct bench_table *table = NULL;
    json_t *doc = NULL;
    struct err e = {0};
    /* per round, in tokens/s (bandwidth: the roofline's tokens/s) */
    double roof_tps[MODEL_MAX_ROUNDS], f32_tps[MODEL_MAX_ROUNDS], q8_tps[MODEL_MAX_ROUNDS];
    double batch_tps[MODEL_MAX_ROUNDS], prefill_tps[MODEL_MAX_ROUNDS], bw[MODEL_MAX_ROUNDS];
    double wbytes;
    size_t roof_bytes;
    int c, rc = 1;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 't':
            if (bench_parse_int("--threads", optarg, 1, 1024, &threads, &e) != 0)
                return bench_fail(&e);
            break;
        case 'r':
            if (bench_parse_int("--repeat", optarg, 1, 1000, &repeat, &e) != 0)
                return bench_fail(&e);
            break;
        case 'n':
            if (bench_parse_int("--rounds", optarg, 1, MODEL_MAX_ROUNDS, &rounds, &e) != 0)
                return bench_fail(&e);
            break;
        case 'c':
            if (bench_parse_int("--context", optarg, 1, 1 << 20, &ctx, &e) != 0)
                return bench_fail(&e);
            break;
        case 'p':
            if (bench_parse_int("--prefill", optarg, 2, 1 << 16, &prefill, &e) != 0)
                return bench_fail(&e);
            break;
        case 'b':
            if (bench_parse_int("--batch", optarg, 2, 1024, &batch, &e) != 0)
                return bench_fail(&e);
            break;
        case 'R': roof_file = optarg; break;
        case 'j': json_file = optarg; break;
        case 'h': model_usage(stdout); return 0;
        default:
            log_error("model: unknown or incomplete option '%s' (try 'llmbench model --help')", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        log_error("model: unexpected argument '%s'", argv[optind]);
        return 2;
    }
    kn_set_threads((int)threads);
    if (roof_file != NULL && bench_roofline_load(roof_file, (int)threads, &roof, &e) != 0)
        return bench_fail(&e);
    roof_bytes = bench_roofline_bytes((int)threads);

    if (bench_step_open(&b32, model, 0, (int)batch, (int)prefill, "cpu", &e) < 0)
        goto out;
    if (prefill > b32.m->cfg.seq_len || ctx > b32.m->cfg.seq_len) {
        err_set(&e, ERR_INPUT, "--prefill %ld / --context %ld: beyond the model's context of %d", prefill, ctx,
                b32.m->cfg.seq_len);
        goto out;
    }
    if (bench_step_open(&b8, model, 1, 1, 1, "cpu", &e) < 0)
        goto out;
    wbytes = (double)b32.m->weight_bytes;

    for (int r = 0; r < rounds; r++) {
        if (roof_file == NULL && bench_roofline_measure((int)threads, roof_bytes, 1, &roof, &e) != 0)
            goto out;
        bw[r] = roof.bandwidth_gbs;
        roof_tps[r] = roof.bandwidth_gbs * 1e9 / wbytes;
        f32_tps[r] = 1.0 / bench_step_decode_s(&b32, 1, (int)ctx, (int)repeat);
        q8_tps[r] = 1.0 / bench_step_decode_s(&b8, 1, (int)ctx, (int)repeat);
        batch_tps[r] = batch / bench_step_decode_s(&b32, (int)batch, (int)ctx, (int)repeat);
        prefill_tps[r] = prefill / bench_step_prefill_s(&b32, (int)prefill, 1);
        log_info("round %d: %.1f GB/s, f32 %.1f, q8 %.1f, batch %.1f, prefill %.1f tok/s", r + 1, bw[r],
                 f32_tps[r], q8_tps[r], batch_tps[r], prefill_tps[r]);
    }

    table = bench_table_new(7, cols);
    doc = bench_json_doc("model", (int)threads);
    if (table == NULL || doc == NULL) {
        err_set(&e, ERR_SYSTEM, "out of memory");
        goto out;
    }
    {
        struct {
            char figure[64];
            const double *value, *baseline;
            double target;
        } rows[4] = {
            {"decode f32 tok/s vs roofline", f32_tps, roof_tps, 0.9},
            {"decode q8 tok/s vs f32", q8_tps, f32_tps, 3.0},
            {"", batch_tps, f32_tps, 8.0},
            {"", prefill_tps, f32_tps, 20.0},
        };

        snprintf(rows[2].figure, sizeof rows[2].figure, "batch %ld tok/s vs single", batch);
        snprintf(rows[3].figure, sizeof rows[3].figure, "prefill %ld tok/s vs decode", prefill);
        for (int i = 0; i < 4; i++) {
            double ratios[MODEL_MAX_ROUNDS], ratio, best;

            for (int r = 0; r < rounds; r++)
                ratios[r] = rows[i].value[r] / rows[i].baseline[r];
            ratio = bench_median(ratios, (size_t)rounds);
            best = max_of(rows[i].value, (int)rounds) / max_of(rows[i].baseline, (int)rounds);
            bench_table_row(table);
            bench_table_cell(table, "%s", rows[i].figure);
            bench_table_cell(table, "%.1f", bench_median(rows[i].value, (size_t)rounds));
            bench_table_cell(table, "%.1f", bench_median(rows[i].baseline, (size_t)rounds));
            bench_table_cell(table, "%.2f", ratio);
            bench_table_cell(table, "%.2f", best);
            bench_table_cell(table, "%.1f", rows[i].target);
            bench_table_cell(table, "%s", ratio >= rows[i].target ? "yes" : "no");
            json_array_append_new(json_object_get(doc, "results"),
                                  json_pack("{s:s, s:o, s:o, s:o, s:o, s:f, s:b}", "figure", rows[i].figure,
                                            "value", bench_json_num(bench_median(rows[i].value, (size_t)rounds)),
                                            "baseline", bench_json_num(bench_median(rows[i].baseline, (size_t)rounds)),
                                            "ratio", bench_json_num(ratio), "best_ratio", bench_json_num(best),
                                            "target", rows[i].target, "met", ratio >= rows[i].target));
        }
    }
    printf("model %s: %.1f MB of weights per token (f32), %.1f MB (q8); %ld threads\n", model, wbytes / 1e6,
           (double)b8.m->weight_bytes / 1e6, threads);
    printf("bandwidth %.1f GB/s (median of rounds; best %.1f); decode at context %ld; %ld rounds of %ld steps\n",
           bench_median(bw, (size_t)rounds), max_of(bw, (int)rounds), ctx, rounds, repeat);
    bench_table_print(table, stdout);
    json_object_set_new(doc, "model", json_string(model));
    json_object_set_new(doc, "bandwidth_gbs", bench_json_num(bench_median(bw, (size_t)rounds)));
    json_object_set_new(doc, "weight_bytes_f32", json_integer((json_int_t)wbytes));
    json_object_set_new(doc, "weight_bytes_q8", json_integer((json_int_t)b8.m->weight_bytes));
    json_object_set_new(doc, "rounds", json_integer(rounds));
    if (json_file != NULL && bench_json_write(json_file, doc, &e) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        rc = bench_fail(&e);
    bench_step_close(&b32);
    bench_step_close(&b8);
    bench_table_free(table);
    json_decref(doc);
    return rc;
}

const struct bench_command bench_model_entry = {
    .name = "model",
    .summary = "llmserve's forward pass: decode, int8, batching and prefill vs their targets",
    .exec = bench_model_exec,
};
