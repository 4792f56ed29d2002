/* bench_profile.c -- `llmbench profile`: measure how long a batched forward
 * step of llmserve's model takes on this machine and write the service-time
 * profile llmsim reads (sim/profile.h, "llmscale-profile-v1"):
 *
 *   prefill.time_s[i]        one step prefilling prefill.tokens[i] prompt tokens
 *   decode.time_s[b][c]      one decode step of decode.batch[b] sequences
 *                            holding decode.context_tokens[c] tokens in all
 *                            (spread evenly over the sequences)
 *   kv_capacity_tokens       what llmserve's KV cache holds by default
 *                            (max batch x the model's context) or --kv-tokens
 *
 *   step_overhead_s          what a step costs whatever it computes, counted
 *                            in both tables: a step that prefills and decodes
 *                            pays it once (measured as prefill + decode - mixed)
 *
 * A step is timed as the engine runs it: the forward pass (bench_step_* in
 * bench_model.c), then a token sampled from each sequence's logits.  The
 * points are measured in --repeat interleaved rounds, each point once a round
 * (after an untimed warm-up step), and each figure is the median over the
 * rounds: a machine whose speed drifts slows every point alike instead of
 * bending the curves. */
#include "config.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "kernels/bench.h"
#include "kernels/kernels.h"
#ifdef HAVE_CUDA
#include "kernels/cuda/kn_cuda.h"
#endif
#include "server/model.h"

/* Most points on each axis. */
#define PROFILE_MAX_POINTS 32
/* Most interleaved rounds. */
#define PROFILE_MAX_ROUNDS 99
/* (prompt tokens, decoding sequences) pairs of the mixed steps timed. */
#define PROFILE_MIXED 4

static void profile_usage(FILE *f)
{
    fprintf(f,
            "usage: llmbench profile --model M [--max-batch N] [-o profile.json] [--quantize q8]\n"
            "                        [--threads N] [--repeat R] [--max-prefill P] [--kv-tokens K] [--name NAME]\n"
            "                        [--backend cpu|cuda|auto]\n"
            "\n"
            "Measure llmserve's forward step on this machine -- prefill time against prompt\n"
            "tokens, decode-step time against batch size and total context -- and write the\n"
            "service-time profile llmsim reads ('service: {profile: FILE}' in a scenario).\n"
            "\n"
            "  --model M        a checkpoint or synthetic:NAME\n"
            "  --max-batch N    largest decode batch measured (default 16): 1, 2, 3 ... 8, 10 ... N\n"
            "  -o, --output F   the profile JSON (default profile.json)\n"
            "  --quantize q8    int8 weights\n"
            "  --threads N      kernel threads (default: all cores)\n"
            "  --repeat R       interleaved rounds, each timing every point once; the median\n"
            "                   kept (default 5)\n"
            "  --max-prefill P  largest prefill measured (default: 1024 or the context)\n"
            "  --kv-tokens K    kv_capacity_tokens (default: max batch x the model's context)\n"
            "  --name NAME      the profile's name (default: the model's name and the host)\n"
            "  --backend B      the forward pass's backend, as llmserve's --backend: cpu\n"
            "                   (default), cuda (the GPU: a profile of llmserve on it), auto\n");
}

/* Decode batch sizes: every one up to 8, then steps of 2 up to 16, then
 * of a quarter, and MAX last.  Returns the count. */
static int profile_batch_axis(int max, int *axis)
{
    int n = 0;

    for (int v = 1; v < max && n < PROFILE_MAX_POINTS - 1; v += v < 8 ? 1 : v < 16 ? 2 : v / 4)
        axis[n++] = v;
    axis[n++] = max;
    return n;
}

/* Prefill sizes: 1, 8, 16, 32, 64, 96, 128, 192, 256, 384 ... (powers of
 * two and the points halfway), and MAX last.  Returns the count. */
static int profile_prefill_axis(int max, int *axis)
{
    int n = 0;

    axis[n++] = 1;
    for (int v = 8; v < max && n < PROFILE_MAX_POINTS - 1; v = v < 64 ? v * 2 : (v & (v - 1)) == 0 ? v * 3 / 2 : v / 3 * 4)
        axis[n++] = v;
    if (max > 1)
        axis[n++] = max;
    return n;
}

static json_t *profile_int_array(const int *v, int n)
{
    json_t *a = json_array();

    for (int i = 0; a != NULL && i < n; i++)
        json_array_append_new(a, json_integer(v[i]));
    return a;
}

static int bench_profile_exec(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},      {"max-batch", required_argument, NULL, 'b'},
        {"output", required_argument, NULL, 'o'},     {"quantize", required_argument, NULL, 'q'},
        {"threads", required_argument, NULL, 't'},    {"repeat", required_argument, NULL, 'r'},
        {"max-prefill", required_argument, NULL, 'p'}, {"kv-tokens", required_argument, NULL, 'k'},
        {"name", required_argument, NULL, 'n'},       {"help", no_argument, NULL, 'h'},
        {"backend", required_argument, NULL, 'B'},
        {NULL, 0, NULL, 0},
    };
    static const char *const cols[] = {"step", "batch", "tokens", "context", "ms", "ms/token"};
    const char *model = NULL, *out_file = "profile.json", *name = NULL, *backend = "cpu";
    long max_batch = 16, threads = bench_cores(), repeat = 5, max_prefill = 0, kv_tokens = 0;
    int q8 = 0, c, rc = 1, n_pre, n_batch, n_ctx, seq;
    int pre_axis[PROFILE_MAX_POINTS], batch_axis[PROFILE_MAX_POINTS], ctx_axis[3], mix_axis[PROFILE_MIXED][2];
    int n_points;
    double *times = NULL, step_overhead = 0;
    struct bench_step b = {0};
    struct bench_table *table = NULL;
    json_t *doc = NULL, *pre_s = NULL, *dec_s = NULL, *measured;
    struct err e = {0};
    char namebuf[160];

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'b':
            if (bench_parse_int("--max-batch", optarg, 1, 256, &max_batch, &e) != 0)
                return bench_fail(&e);
            break;
        case 'o': out_file = optarg; break;
        case 'q':
            if (strcmp(optarg, "q8") != 0) {
                err_set(&e, ERR_INPUT, "--quantize: unknown type '%s' (q8)", optarg);
                return bench_fail(&e);
            }
            q8 = 1;
            break;
        case 't':
            if (bench_parse_int("--threads", optarg, 1, 1024, &threads, &e) != 0)
                return bench_fail(&e);
            break;
        case 'r':
            if (bench_parse_int("--repeat", optarg, 1, PROFILE_MAX_ROUNDS, &repeat, &e) != 0)
                return bench_fail(&e);
            break;
        case 'p':
            if (bench_parse_int("--max-prefill", optarg, 1, 1 << 20, &max_prefill, &e) != 0)
                return bench_fail(&e);
            break;
        case 'k':
            if (bench_parse_int("--kv-tokens", optarg, 1, 1L << 40, &kv_tokens, &e) != 0)
                return bench_fail(&e);
            break;
        case 'n': name = optarg; break;
        case 'B': backend = optarg; break;
        case 'h': profile_usage(stdout); return 0;
        default:
            log_error("profile: unknown or incomplete option '%s' (try 'llmbench profile --help')",
                      argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        log_error("profile: unexpected argument '%s'", argv[optind]);
        return 2;
    }
    if (model == NULL) {
        err_set(&e, ERR_INPUT, "--model is required (try 'llmbench profile --help')");
        return bench_fail(&e);
    }
    kn_set_threads((int)threads);
    if (max_prefill == 0)
        max_prefill = 1024;
    /* one sequence more than the largest batch: the prompt of a mixed step */
    if (bench_step_open(&b, model, q8, (int)max_batch + 1, (int)(max_prefill + max_batch), backend, &e) < 0)
        goto out;
    b.sample = 1;
    seq = b.m->cfg.seq_len;
    if (max_prefill > seq)
        max_prefill = seq;
    if (max_batch > seq) /* one position each at least */
        max_batch = seq;
    if (kv_tokens == 0)
        kv_tokens = max_batch * (long)seq;

    /* the axes; total context from one position per sequence of the largest
     * batch to a full context of one sequence (the table extends linearly
     * past its ends) */
    n_pre = profile_prefill_axis((int)max_prefill, pre_axis);
    n_batch = profile_batch_axis((int)max_batch, batch_axis);
    ctx_axis[0] = (int)max_batch;
    ctx_axis[1] = seq / 2 > max_batch ? seq / 2 : (int)max_batch + 1;
    ctx_axis[2] = seq > ctx_axis[1] ? seq : ctx_axis[1] + 1;
    n_ctx = 3;
    /* mixed steps: a short and a long prompt chunk beside one and all
     * decoding sequences, at the middle context */
    {
        int p_short = max_prefill >= 64 ? 64 : (int)max_prefill, p_long = (int)max_prefill;
        int mixed[PROFILE_MIXED][2] = {{p_short, 1}, {p_short, (int)max_batch}, {p_long, 1}, {p_long, (int)max_batch}};

        memcpy(mix_axis, mixed, sizeof mixed);
    }

    n_points = n_pre + n_batch * n_ctx + PROFILE_MIXED * 3;
    times = calloc((size_t)n_points * repeat, sizeof *times);
    table = bench_table_new(6, cols);
    doc = json_object();
    pre_s = json_array();
    dec_s = json_array();
    if (times == NULL || table == NULL || doc == NULL || pre_s == NULL || dec_s == NULL) {
        err_set(&e, ERR_SYSTEM, "out of memory");
        goto out;
    }
    /* times[point * repeat + round]: prefill points, then decode (batch,
     * context), then for each mixed pair its prefill, decode and mixed step */
    for (int r = 0; r < repeat; r++) {
        int k = 0;

        for (int i = 0; i < n_pre; i++)
            times[(size_t)k++ * repeat + r] = bench_step_prefill_s(&b, pre_axis[i], 1);
        for (int i = 0; i < n_batch; i++)
            for (int j = 0; j < n_ctx; j++)
                times[(size_t)k++ * repeat + r] = bench_step_decode_s(&b, batch_axis[i], ctx_axis[j] / batch_axis[i], 1);
        for (int i = 0; i < PROFILE_MIXED; i++) {
            int P = mix_axis[i][0], B = mix_axis[i][1], per_seq = ctx_axis[1] / B;

            times[(size_t)k++ * repeat + r] = bench_step_prefill_s(&b, P, 1);
            times[(size_t)k++ * repeat + r] = bench_step_decode_s(&b, B, per_seq, 1);
            times[(size_t)k++ * repeat + r] = bench_step_mixed_s(&b, P, B, per_seq, 1);
        }
        log_info("profile: round %d of %ld done", r + 1, repeat);
    }

    {
        int k = 0;
        double overlaps[PROFILE_MIXED];

        for (int i = 0; i < n_pre; i++, k++) {
            double t = bench_median(times + (size_t)k * repeat, (size_t)repeat);

            json_array_append_new(pre_s, json_real(t));
            bench_table_row(table);
            bench_table_cell(table, "prefill");
            bench_table_cell(table, "1");
            bench_table_cell(table, "%d", pre_axis[i]);
            bench_table_cell(table, "%d", pre_axis[i]);
            bench_table_cell(table, "%.3f", t * 1e3);
            bench_table_cell(table, "%.4f", t * 1e3 / pre_axis[i]);
        }
        for (int i = 0; i < n_batch; i++) {
            json_t *row = json_array();

            if (row == NULL) {
                err_set(&e, ERR_SYSTEM, "out of memory");
                goto out;
            }
            for (int j = 0; j < n_ctx; j++, k++) {
                double t = bench_median(times + (size_t)k * repeat, (size_t)repeat);

                json_array_append_new(row, json_real(t));
                bench_table_row(table);
                bench_table_cell(table, "decode");
                bench_table_cell(table, "%d", batch_axis[i]);
                bench_table_cell(table, "%d", batch_axis[i]);
                bench_table_cell(table, "%d", ctx_axis[j]);
                bench_table_cell(table, "%.3f", t * 1e3);
                bench_table_cell(table, "%.4f", t * 1e3 / batch_axis[i]);
            }
            json_array_append_new(dec_s, row);
        }
        for (int i = 0; i < PROFILE_MIXED; i++, k += 3) {
            double tp = bench_median(times + (size_t)k * repeat, (size_t)repeat);
            double td = bench_median(times + (size_t)(k + 1) * repeat, (size_t)repeat);
            double tm = bench_median(times + (size_t)(k + 2) * repeat, (size_t)repeat);

            overlaps[i] = tp + td - tm;
            bench_table_row(table);
            bench_table_cell(table, "mixed");
            bench_table_cell(table, "%d", mix_axis[i][1] + 1);
            bench_table_cell(table, "%d", mix_axis[i][0] + mix_axis[i][1]);
            bench_table_cell(table, "%d", ctx_axis[1] / mix_axis[i][1] * mix_axis[i][1]);
            bench_table_cell(table, "%.3f", tm * 1e3);
            bench_table_cell(table, "%.4f", tm * 1e3 / (mix_axis[i][0] + mix_axis[i][1]));
        }
        /* the overhead a mixed step saves: the median of the pairs', never
         * negative, never more than the cheapest step measured */
        step_overhead = bench_median(overlaps, PROFILE_MIXED);
        if (step_overhead < 0)
            step_overhead = 0;
        for (int i = 0; i < n_pre + n_batch * n_ctx; i++)
            step_overhead = fmin(step_overhead, bench_median(times + (size_t)i * repeat, (size_t)repeat));
    }
    if (name == NULL) {
        json_t *host = bench_host_json();
        const char *cpu = host != NULL ? json_string_value(json_object_get(host, "cpu")) : NULL;

        if (strcmp(b.backend, "cuda") == 0) {
            const char *gpu = "a GPU";
#ifdef HAVE_CUDA
            struct kn_cuda_info info;
            if (kn_cuda_info(&info) == 0)
                gpu = info.name;
#endif
            snprintf(namebuf, sizeof namebuf, "%s%s on %s (llmserve --backend cuda)", b.m->name,
                     q8 ? " q8" : "", gpu);
        } else {
            snprintf(namebuf, sizeof namebuf, "%s%s on %s (%ld threads)", b.m->name, q8 ? " q8" : "",
                     cpu != NULL ? cpu : "this host", threads);
        }
        json_decref(host);
        name = namebuf;
    }
    json_object_set_new(doc, "format", json_string("llmscale-profile-v1"));
    json_object_set_new(doc, "name", json_string(name));
    json_object_set_new(doc, "kv_capacity_tokens", json_integer(kv_tokens));
    json_object_set_new(doc, "step_overhead_s", json_real(step_overhead));
    json_object_set_new(doc, "prefill", json_pack("{s:o, s:o}", "tokens", profile_int_array(pre_axis, n_pre),
                                                  "time_s", pre_s));
    pre_s = NULL;
    json_object_set_new(doc, "decode",
                        json_pack("{s:o, s:o, s:o}", "batch", profile_int_array(batch_axis, n_batch),
                                  "context_tokens", profile_int_array(ctx_axis, n_ctx), "time_s", dec_s));
    dec_s = NULL;
    measured = json_pack("{s:s, s:s, s:s, s:i, s:i, s:I, s:o}", "by", "llmbench profile", "model", b.m->name,
                         "backend", b.backend, "threads", (int)threads, "repeat", (int)repeat, "weight_bytes",
                         (json_int_t)b.m->weight_bytes, "host", bench_host_json());
    json_object_set_new(doc, "measured", measured);
    bench_table_print(table, stdout);
    if (bench_json_write(out_file, doc, &e) != 0)
        goto out;
    printf("wrote %s\n", out_file);
    rc = 0;
out:
    if (rc != 0)
        rc = bench_fail(&e);
    bench_step_close(&b);
    free(times);
    bench_table_free(table);
    json_decref(pre_s);
    json_decref(dec_s);
    json_decref(doc);
    return rc;
}

const struct bench_command bench_profile_entry = {
    .name = "profile",
    .summary = "measure llmserve's step times and write llmsim's service-time profile",
    .exec = bench_profile_exec,
};
