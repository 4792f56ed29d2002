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
 * Each figure is the median of --repeat timed steps after a warm-up
 * (bench_step_* in bench_model.c). */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "kernels/bench.h"
#include "kernels/kernels.h"
#include "server/model.h"

/* Most points on each axis. */
#define PROFILE_MAX_POINTS 16

static void profile_usage(FILE *f)
{
    fprintf(f,
            "usage: llmbench profile --model M [--max-batch N] [-o profile.json] [--quantize q8]\n"
            "                        [--threads N] [--repeat R] [--max-prefill P] [--kv-tokens K] [--name NAME]\n"
            "\n"
            "Measure llmserve's forward step on this machine -- prefill time against prompt\n"
            "tokens, decode-step time against batch size and total context -- and write the\n"
            "service-time profile llmsim reads ('service: {profile: FILE}' in a scenario).\n"
            "\n"
            "  --model M        a checkpoint or synthetic:NAME\n"
            "  --max-batch N    largest decode batch measured (default 16): 1, 2, 4, ... N\n"
            "  -o, --output F   the profile JSON (default profile.json)\n"
            "  --quantize q8    int8 weights\n"
            "  --threads N      kernel threads (default: all cores)\n"
            "  --repeat R       timed steps per point, the median kept (default 3)\n"
            "  --max-prefill P  largest prefill measured (default: 1024 or the context)\n"
            "  --kv-tokens K    kv_capacity_tokens (default: max batch x the model's context)\n"
            "  --name NAME      the profile's name (default: the model's name and the host)\n");
}

/* 1, 2, 4, ... up to and including MAX into AXIS; returns the count. */
static int profile_powers(int max, int first, int *axis)
{
    int n = 0;

    for (int v = first; v < max && n < PROFILE_MAX_POINTS - 1; v *= 2)
        axis[n++] = v;
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
        {NULL, 0, NULL, 0},
    };
    static const char *const cols[] = {"step", "batch", "tokens", "context", "ms", "ms/token"};
    const char *model = NULL, *out_file = "profile.json", *name = NULL;
    long max_batch = 16, threads = bench_cores(), repeat = 3, max_prefill = 0, kv_tokens = 0;
    int q8 = 0, c, rc = 1, n_pre, n_batch, n_ctx, seq;
    int pre_axis[PROFILE_MAX_POINTS], batch_axis[PROFILE_MAX_POINTS], ctx_axis[3];
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
            if (bench_parse_int("--repeat", optarg, 1, 1000, &repeat, &e) != 0)
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
    if (bench_step_open(&b, model, q8, (int)max_batch, (int)max_prefill, &e) < 0)
        goto out;
    seq = b.m->cfg.seq_len;
    if (max_prefill > seq)
        max_prefill = seq;
    if (max_batch > seq) /* one position each at least */
        max_batch = seq;
    if (kv_tokens == 0)
        kv_tokens = max_batch * (long)seq;

    /* the axes: prefill 1, 16, 64, 256 ... max; batch 1, 2, 4 ... max; total
     * context from one position per sequence of the largest batch to a full
     * context of one sequence (the table extends linearly past its ends) */
    pre_axis[0] = 1;
    n_pre = 1;
    for (int v = 16; v < max_prefill && n_pre < PROFILE_MAX_POINTS - 1; v *= 4)
        pre_axis[n_pre++] = v;
    if (max_prefill > 1)
        pre_axis[n_pre++] = (int)max_prefill;
    n_batch = profile_powers((int)max_batch, 1, batch_axis);
    ctx_axis[0] = (int)max_batch;
    ctx_axis[1] = seq / 2 > max_batch ? seq / 2 : (int)max_batch + 1;
    ctx_axis[2] = seq > ctx_axis[1] ? seq : ctx_axis[1] + 1;
    n_ctx = 3;

    table = bench_table_new(6, cols);
    doc = json_object();
    pre_s = json_array();
    dec_s = json_array();
    if (table == NULL || doc == NULL || pre_s == NULL || dec_s == NULL) {
        err_set(&e, ERR_SYSTEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < n_pre; i++) {
        double s = bench_step_prefill_s(&b, pre_axis[i], (int)repeat);

        json_array_append_new(pre_s, json_real(s));
        bench_table_row(table);
        bench_table_cell(table, "prefill");
        bench_table_cell(table, "1");
        bench_table_cell(table, "%d", pre_axis[i]);
        bench_table_cell(table, "%d", pre_axis[i]);
        bench_table_cell(table, "%.3f", s * 1e3);
        bench_table_cell(table, "%.4f", s * 1e3 / pre_axis[i]);
    }
    for (int i = 0; i < n_batch; i++) {
        json_t *row = json_array();

        if (row == NULL) {
            err_set(&e, ERR_SYSTEM, "out of memory");
            goto out;
        }
        for (int j = 0; j < n_ctx; j++) {
            int per_seq = ctx_axis[j] / batch_axis[i];
            double s;

            if (per_seq > seq)
                per_seq = seq;
            s = bench_step_decode_s(&b, batch_axis[i], per_seq, (int)repeat);
            json_array_append_new(row, json_real(s));
            bench_table_row(table);
            bench_table_cell(table, "decode");
            bench_table_cell(table, "%d", batch_axis[i]);
            bench_table_cell(table, "%d", batch_axis[i]);
            bench_table_cell(table, "%d", ctx_axis[j]);
            bench_table_cell(table, "%.3f", s * 1e3);
            bench_table_cell(table, "%.4f", s * 1e3 / batch_axis[i]);
        }
        json_array_append_new(dec_s, row);
    }
    if (name == NULL) {
        json_t *host = bench_host_json();
        const char *cpu = host != NULL ? json_string_value(json_object_get(host, "cpu")) : NULL;

        snprintf(namebuf, sizeof namebuf, "%s%s on %s (%ld threads)", b.m->name, q8 ? " q8" : "",
                 cpu != NULL ? cpu : "this host", threads);
        json_decref(host);
        name = namebuf;
    }
    json_object_set_new(doc, "format", json_string("llmscale-profile-v1"));
    json_object_set_new(doc, "name", json_string(name));
    json_object_set_new(doc, "kv_capacity_tokens", json_integer(kv_tokens));
    json_object_set_new(doc, "prefill", json_pack("{s:o, s:o}", "tokens", profile_int_array(pre_axis, n_pre),
                                                  "time_s", pre_s));
    pre_s = NULL;
    json_object_set_new(doc, "decode",
                        json_pack("{s:o, s:o, s:o}", "batch", profile_int_array(batch_axis, n_batch),
                                  "context_tokens", profile_int_array(ctx_axis, n_ctx), "time_s", dec_s));
    dec_s = NULL;
    measured = json_pack("{s:s, s:s, s:i, s:i, s:I, s:o}", "by", "llmbench profile", "model", b.m->name,
                         "threads", (int)threads, "repeat", (int)repeat, "weight_bytes",
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
