/* bench_calibrate.c -- `llmbench calibrate`: hold a service-time profile
 * against the steps a running llmserve logged (`llmserve --step-log`), say
 * how far each kind of step is from the prediction, and write the profile
 * scaled to match.
 *
 * Why: `llmbench profile` times the forward pass in a quiet loop.  In the
 * server the same step shares the machine with the HTTP threads, the
 * clients and whatever else runs there, and on a small machine that costs
 * a measurable share (tens of percent on a 2-core VM: docs/BENCHMARKS.md).
 * Steps logged on a calibration workload give the factor; a different
 * workload is then predicted with the scaled profile.
 *
 * For each logged step the prediction is llmsim's own (profile_iteration_s,
 * sim/profile.c) and the measurement t_end - t_forward (the forward pass,
 * sampling and the token callbacks).  The factors, medians of measured /
 * predicted:
 *   decode    one per batch row of the table, from the pure decode steps
 *             whose batch is nearest that row (at least CAL_MIN_STEPS of
 *             them; else the factor of all decode steps);
 *   prefill   from the steps that prefill, alone or beside decoding
 *             sequences (with chunked prefill most prompts share a step):
 *             per step, the measured time less the decode side priced by
 *             the profile with its decode rows already calibrated, over the
 *             prediction of the prefill side (else the decode factor);
 * step_overhead_s is scaled by the decode factor of batch 1.  Mixed steps are
 * reported, before and after, as the check. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "kernels/bench.h"
#include "sim/profile.h"
#include "workloads/linereader.h"

/* Fewest steps a factor is taken from. */
#define CAL_MIN_STEPS 20

/* The step log's columns, in order (server/cmd_serve.c writes them). */
static const char cal_header[] =
    "t_start,t_forward,t_sample,t_end,seqs,prefill_seqs,prefill_tokens,prefill_ctx,decode_seqs,decode_ctx,generated";

struct cal_step {
    double meas_s;
    int prefill_tokens;
    double prefill_ctx;
    int decode_seqs;
    double decode_ctx;
};

struct cal_steps {
    struct cal_step *v;
    size_t n, cap;
};

static void calibrate_usage(FILE *f)
{
    fprintf(f,
            "usage: llmbench calibrate --profile P --steps S [-o OUT]\n"
            "\n"
            "Compare a service-time profile (llmbench profile) with the steps a running\n"
            "llmserve logged (llmserve serve --step-log S), print measured against\n"
            "predicted for decode, prefill and mixed steps, and write the profile scaled\n"
            "by the measured factors (decode per batch row, prefill) to OUT.\n"
            "\n"
            "  --profile P    the profile JSON to calibrate\n"
            "  --steps S      the step log CSV (its header line first)\n"
            "  -o, --output F the calibrated profile (default: none, only the report)\n");
}

/* Read the step log PATH.  Returns 0, or -1 with E naming FILE:LINE. */
static int cal_read_steps(const char *path, struct cal_steps *s, struct err *e)
{
    static const char *const names[] = {"t_start", "t_forward", "t_sample", "t_end", "seqs", "prefill_seqs",
                                        "prefill_tokens", "prefill_ctx", "decode_seqs", "decode_ctx",
                                        "generated"};
    struct linereader *lr = linereader_open(path, e);
    char *line;
    size_t len;
    int r;

    if (lr == NULL)
        return -1;
    r = linereader_next(lr, &line, &len, e);
    if (r <= 0 || strcmp(line, cal_header) != 0) {
        if (r >= 0)
            err_set(e, ERR_INPUT, "%s:1: not an llmserve step log (expected the header '%s')", path, cal_header);
        linereader_close(lr);
        return -1;
    }
    while ((r = linereader_next(lr, &line, &len, e)) > 0) {
        double f[11];
        char *p = line, *end;
        struct cal_step st;

        if (len == 0)
            continue;
        for (int i = 0; i < 11; i++) {
            errno = 0;
            f[i] = strtod(p, &end);
            if (end == p || errno != 0 || !isfinite(f[i]) || f[i] < 0 || *end != (i < 10 ? ',' : '\0')) {
                err_set(e, ERR_INPUT, "%s:%ld: field %d (%s): expected a number >= 0%s", path,
                        linereader_lineno(lr), i + 1, names[i], i < 10 ? " and a comma after it" : " to end the line");
                linereader_close(lr);
                return -1;
            }
            p = end + (i < 10);
        }
        if (f[3] < f[1] || f[6] > 1e9 || f[8] > 1e9) {
            err_set(e, ERR_INPUT, "%s:%ld: t_end before t_forward, or counts out of range", path,
                    linereader_lineno(lr));
            linereader_close(lr);
            return -1;
        }
        st = (struct cal_step){.meas_s = f[3] - f[1], .prefill_tokens = (int)f[6], .prefill_ctx = f[7],
                               .decode_seqs = (int)f[8], .decode_ctx = f[9]};
        if (st.prefill_tokens == 0 && st.decode_seqs == 0)
            continue;
        if (s->n == s->cap) {
            size_t cap = s->cap ? 2 * s->cap : 1024;
            struct cal_step *v = realloc(s->v, cap * sizeof *v);

            if (v == NULL) {
                linereader_close(lr);
                return err_set(e, ERR_SYSTEM, "out of memory");
            }
            s->v = v;
            s->cap = cap;
        }
        s->v[s->n++] = st;
    }
    linereader_close(lr);
    if (r < 0)
        return -1;
    if (s->n == 0)
        return err_set(e, ERR_INPUT, "%s: no steps logged", path);
    return 0;
}

enum cal_kind { CAL_DECODE, CAL_PREFILL, CAL_MIXED };

static enum cal_kind cal_kind_of(const struct cal_step *st)
{
    return st->prefill_tokens == 0 ? CAL_DECODE : st->decode_seqs == 0 ? CAL_PREFILL : CAL_MIXED;
}

/* Print the median measured and predicted time and their ratio for the
 * steps of KIND (batch rows: decode steps with batch in [BLO, BHI]). */
static void cal_report(struct bench_table *t, const char *what, const struct profile *p, const struct cal_steps *s,
                       enum cal_kind kind, int blo, int bhi, double *scratch)
{
    size_t n = 0;
    double *meas = scratch, *pred = scratch + s->n, *ratio = scratch + 2 * s->n;

    for (size_t i = 0; i < s->n; i++) {
        const struct cal_step *st = &s->v[i];
        double pr;

        if (cal_kind_of(st) != kind || st->decode_seqs < blo || st->decode_seqs > bhi)
            continue;
        pr = profile_iteration_s(p, st->prefill_tokens, st->prefill_ctx, st->decode_seqs, st->decode_ctx);
        if (!(pr > 0))
            continue;
        meas[n] = st->meas_s;
        pred[n] = pr;
        ratio[n] = st->meas_s / pr;
        n++;
    }
    if (n == 0)
        return;
    bench_table_row(t);
    bench_table_cell(t, "%s", what);
    bench_table_cell(t, "%zu", n);
    bench_table_cell(t, "%.3f", 1e3 * bench_median(meas, n));
    bench_table_cell(t, "%.3f", 1e3 * bench_median(pred, n));
    bench_table_cell(t, "%.3f", bench_median(ratio, n));
}

/* The median measured / predicted ratio of the pure decode steps whose batch
 * is in [BLO, BHI] (or of the prefill steps); NAN with fewer than
 * CAL_MIN_STEPS. */
static double cal_factor(const struct profile *p, const struct cal_steps *s, enum cal_kind kind, int blo, int bhi,
                         double *scratch)
{
    size_t n = 0;

    for (size_t i = 0; i < s->n; i++) {
        const struct cal_step *st = &s->v[i];
        double pr;

        if (cal_kind_of(st) != kind || (kind == CAL_DECODE && (st->decode_seqs < blo || st->decode_seqs > bhi)))
            continue;
        pr = profile_iteration_s(p, st->prefill_tokens, st->prefill_ctx, st->decode_seqs, st->decode_ctx);
        if (pr > 0)
            scratch[n++] = st->meas_s / pr;
    }
    return n >= CAL_MIN_STEPS ? bench_median(scratch, n) : NAN;
}

/* The prefill factor (see the top): for each step that prefills, with A the
 * prediction of its prefill alone and F of the whole step, both by PD (the
 * profile with its decode rows and step overhead calibrated, its prefill
 * not), (measured - (F - A)) / A; the median of those, or NAN with fewer
 * than CAL_MIN_STEPS.  A pure prefill step gives measured / A. */
static double cal_prefill_factor(const struct profile *pd, const struct cal_steps *s, double *scratch)
{
    size_t n = 0;

    for (size_t i = 0; i < s->n; i++) {
        const struct cal_step *st = &s->v[i];
        double a, f;

        if (st->prefill_tokens <= 0)
            continue;
        a = profile_iteration_s(pd, st->prefill_tokens, st->prefill_ctx, 0, 0);
        f = profile_iteration_s(pd, st->prefill_tokens, st->prefill_ctx, st->decode_seqs, st->decode_ctx);
        if (a > 0)
            scratch[n++] = (st->meas_s - (f - a)) / a;
    }
    return n >= CAL_MIN_STEPS ? bench_median(scratch, n) : NAN;
}

/* Multiply every number of the JSON array A (or array of arrays) by F. */
static void cal_scale_array(json_t *a, double f)
{
    size_t i;
    json_t *x;

    json_array_foreach(a, i, x)
    {
        if (json_is_array(x))
            cal_scale_array(x, f);
        else if (json_is_number(x))
            json_array_set_new(a, i, json_real(json_number_value(x) * f));
    }
}

static int bench_calibrate_exec(int argc, char **argv)
{
    static const struct option opts[] = {
        {"profile", required_argument, NULL, 'p'},
        {"steps", required_argument, NULL, 's'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char *const cols[] = {"steps", "n", "measured ms", "predicted ms", "ratio"};
    const char *prof_file = NULL, *steps_file = NULL, *out_file = NULL;
    struct cal_steps s = {0};
    struct profile *p = NULL, *pc = NULL;
    struct bench_table *table = NULL;
    json_t *doc = NULL, *dec, *batch, *rows, *factors;
    json_error_t jerr;
    double *scratch = NULL, all_dec, pre, *row_f = NULL;
    struct err e = {0};
    size_t nb, i;
    int c, rc = 1;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'p': prof_file = optarg; break;
        case 's': steps_file = optarg; break;
        case 'o': out_file = optarg; break;
        case 'h': calibrate_usage(stdout); return 0;
        default:
            log_error("calibrate: unknown or incomplete option '%s' (try 'llmbench calibrate --help')",
                      argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        log_error("calibrate: unexpected argument '%s'", argv[optind]);
        return 2;
    }
    if (prof_file == NULL || steps_file == NULL) {
        err_set(&e, ERR_INPUT, "--profile and --steps are required (try 'llmbench calibrate --help')");
        return bench_fail(&e);
    }
    if ((p = profile_load_json(prof_file, &e)) == NULL)
        goto out;
    if (p->kind != PROFILE_TABLE) {
        err_set(&e, ERR_INPUT, "%s: only a table profile can be calibrated", prof_file);
        goto out;
    }
    if (cal_read_steps(steps_file, &s, &e) < 0)
        goto out;
    if ((scratch = malloc(3 * s.n * sizeof *scratch)) == NULL ||
        (row_f = malloc(p->n_batch * sizeof *row_f)) == NULL) {
        err_set(&e, ERR_SYSTEM, "out of memory");
        goto out;
    }

    /* the factors: decode per batch row (the steps nearest it), prefill */
    all_dec = cal_factor(p, &s, CAL_DECODE, 1, 1 << 30, scratch);
    if (isnan(all_dec))
        all_dec = 1;
    nb = p->n_batch;
    for (i = 0; i < nb; i++) {
        double lo = i == 0 ? 1 : (p->decode_batch[i - 1] + p->decode_batch[i]) / 2;
        double hi = i + 1 == nb ? 1 << 30 : (p->decode_batch[i] + p->decode_batch[i + 1]) / 2;

        row_f[i] = cal_factor(p, &s, CAL_DECODE, (int)ceil(lo - 1e-9), (int)ceil(hi - 1e-9) - (i + 1 < nb), scratch);
        if (isnan(row_f[i]))
            row_f[i] = all_dec;
    }
    /* pc: the profile with its decode side calibrated, then its prefill */
    if ((pc = profile_load_json(prof_file, &e)) == NULL)
        goto out;
    for (i = 0; i < nb * pc->n_ctx; i++)
        pc->decode_s[i] *= row_f[i / pc->n_ctx];
    pc->step_overhead_s *= row_f[0];
    pre = cal_prefill_factor(pc, &s, scratch);
    if (isnan(pre))
        pre = all_dec;
    for (i = 0; i < pc->n_prefill; i++)
        pc->prefill_s[i] *= pre;

    /* the calibrated profile: the JSON with its times scaled */
    doc = json_load_file(prof_file, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        err_set(&e, ERR_INPUT, "%s: %s", prof_file, jerr.text);
        goto out;
    }
    cal_scale_array(json_object_get(json_object_get(doc, "prefill"), "time_s"), pre);
    dec = json_object_get(doc, "decode");
    batch = json_object_get(dec, "batch");
    rows = json_object_get(dec, "time_s");
    for (i = 0; i < nb && i < json_array_size(rows); i++)
        cal_scale_array(json_array_get(rows, i), row_f[i]);
    if (json_object_get(doc, "step_overhead_s") != NULL)
        json_object_set_new(doc, "step_overhead_s",
                            json_real(json_number_value(json_object_get(doc, "step_overhead_s")) * row_f[0]));
    factors = json_array();
    for (i = 0; i < nb; i++)
        json_array_append_new(factors, json_real(row_f[i]));
    if (!json_is_object(json_object_get(doc, "measured")))
        json_object_set_new(doc, "measured", json_object());
    json_object_set_new(json_object_get(doc, "measured"), "calibrated",
                        json_pack("{s:s, s:I, s:f, s:o, s:o}", "steps", steps_file, "n_steps", (json_int_t)s.n,
                                  "prefill_factor", pre, "decode_batch", json_deep_copy(batch),
                                  "decode_factors", factors));
    {
        const char *name = json_string_value(json_object_get(doc, "name"));
        char buf[400];

        snprintf(buf, sizeof buf, "%s, calibrated to %s", name != NULL ? name : prof_file, steps_file);
        json_object_set_new(doc, "name", json_string(buf));
    }

    /* report: before and after */
    table = bench_table_new(5, cols);
    if (table == NULL) {
        err_set(&e, ERR_SYSTEM, "out of memory");
        goto out;
    }
    for (int pass = 0; pass < 2; pass++) {
        const struct profile *q = pass == 0 ? p : pc;
        const char *tag = pass == 0 ? "" : "calibrated: ";
        char what[64];

        snprintf(what, sizeof what, "%sdecode, all", tag);
        cal_report(table, what, q, &s, CAL_DECODE, 1, 1 << 30, scratch);
        for (i = 0; i < nb; i++) {
            double lo = i == 0 ? 1 : (p->decode_batch[i - 1] + p->decode_batch[i]) / 2;
            double hi = i + 1 == nb ? 1 << 30 : (p->decode_batch[i] + p->decode_batch[i + 1]) / 2;
            int blo = (int)ceil(lo - 1e-9), bhi = (int)ceil(hi - 1e-9) - (i + 1 < nb);

            if (pass == 0 || nb <= 8 || i % 2 == 0) {
                snprintf(what, sizeof what, "%sdecode, batch %d-%d", tag, blo, bhi > 100000 ? 99999 : bhi);
                cal_report(table, what, q, &s, CAL_DECODE, blo, bhi, scratch);
            }
        }
        snprintf(what, sizeof what, "%sprefill", tag);
        cal_report(table, what, q, &s, CAL_PREFILL, 0, 1 << 30, scratch);
        snprintf(what, sizeof what, "%smixed", tag);
        cal_report(table, what, q, &s, CAL_MIXED, 0, 1 << 30, scratch);
    }
    bench_table_print(table, stdout);
    printf("factors: prefill %.3f; decode", pre);
    for (i = 0; i < nb; i++)
        printf(" %g:%.3f", p->decode_batch[i], row_f[i]);
    printf(" (batch:factor)\n");
    if (out_file != NULL) {
        if (bench_json_write(out_file, doc, &e) != 0)
            goto out;
        printf("wrote %s\n", out_file);
    }
    rc = 0;
out:
    if (rc != 0)
        rc = bench_fail(&e);
    profile_free(p);
    profile_free(pc);
    bench_table_free(table);
    json_decref(doc);
    free(scratch);
    free(row_f);
    free(s.v);
    return rc;
}

const struct bench_command bench_calibrate_entry = {
    .name = "calibrate",
    .summary = "scale a profile to the steps a running llmserve logged (--step-log)",
    .exec = bench_calibrate_exec,
};
