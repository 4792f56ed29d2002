/* tune_output.c -- the tables of a tune run (trials.csv, pareto.csv,
 * sensitivity.csv), best.yaml and the summary on stdout.  Everything here
 * is a function of the points alone, so a merged sweep writes the same
 * bytes as one run. */
#include "sim/tune_int.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* A CSV field: quoted when it holds a comma, a quote or a line break. */
static void tune_csv_field(FILE *f, const char *s)
{
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* A knob value as the scenario reads it (the YAML quotes removed). */
static void tune_csv_value(FILE *f, const char *yaml)
{
    char buf[TUNE_VALUE_MAX];
    size_t n = strlen(yaml), i, o = 0;

    if (n >= 2 && yaml[0] == '"' && yaml[n - 1] == '"') {
        for (i = 1; i + 1 < n && o + 1 < sizeof(buf); i++) {
            if (yaml[i] == '\\' && i + 2 < n)
                i++;
            buf[o++] = yaml[i];
        }
        buf[o] = '\0';
        tune_csv_field(f, buf);
    } else {
        tune_csv_field(f, yaml);
    }
}

static void tune_csv_num(FILE *f, double v)
{
    if (isnan(v))
        fputs(",", f);
    else
        fprintf(f, ",%.6g", v);
}

static FILE *tune_open(const struct tune_ctx *ctx, const char *name, char *path, size_t len, struct err *e)
{
    FILE *f;

    snprintf(path, len, "%s/%s", ctx->opt->outdir, name);
    f = fopen(path, "w");
    if (f == NULL)
        err_sys(e, errno, "%s", path);
    return f;
}

static int tune_close(FILE *f, const char *path, struct err *e)
{
    int bad = ferror(f);

    if (fclose(f) != 0 || bad)
        return err_sys(e, errno ? errno : EIO, "%s", path);
    return 0;
}

static void tune_csv_cand(FILE *f, const struct tune_ctx *ctx, long cand)
{
    size_t k;

    if (cand < 0)
        fputs("baseline", f);
    else
        fprintf(f, "%ld", cand);
    for (k = 0; k < ctx->spec.nknobs; k++) {
        fputc(',', f);
        tune_csv_value(f, tune_value_text(&ctx->spec, cand, k));
    }
}

static void tune_csv_knob_header(FILE *f, const struct tune_ctx *ctx)
{
    size_t k;

    fputs("candidate", f);
    for (k = 0; k < ctx->spec.nknobs; k++) {
        fputc(',', f);
        tune_csv_field(f, ctx->spec.knobs[k].key);
    }
}

static int tune_write_trials(const struct tune_ctx *ctx, const struct tune_result *r, struct err *e)
{
    static const enum tune_metric with_sd[] = {TM_COST, TM_ATTAINMENT, TM_TTFT_P99, TM_E2E_P99};
    char path[4200];
    FILE *f = tune_open(ctx, "trials.csv", path, sizeof(path), e);
    size_t i, m, s;

    if (f == NULL)
        return -1;
    tune_csv_knob_header(f, ctx);
    fputs(",fidelity,seeds,feasible", f);
    for (m = 0; m < TM_N; m++) {
        fprintf(f, ",%s", tune_metric_names[m]);
        for (s = 0; s < sizeof(with_sd) / sizeof(with_sd[0]); s++)
            if (with_sd[s] == m)
                fprintf(f, ",%s_sd", tune_metric_names[m]);
    }
    fputs(",error\n", f);
    for (i = 0; i < r->npoints; i++) {
        const struct tune_point *p = &r->points[i];
        tune_csv_cand(f, ctx, p->cand);
        fprintf(f, ",%.6g,%d,%s", p->fidelity, p->nseeds, p->feasible ? "yes" : "no");
        for (m = 0; m < TM_N; m++) {
            tune_csv_num(f, p->mean[m]);
            for (s = 0; s < sizeof(with_sd) / sizeof(with_sd[0]); s++)
                if (with_sd[s] == m)
                    tune_csv_num(f, p->sd[m]);
        }
        fputc(',', f);
        tune_csv_field(f, p->ok ? "" : p->error);
        fputc('\n', f);
    }
    return tune_close(f, path, e);
}

/* A dominates B: no worse in cost, attainment and TTFT p99, better in one. */
static bool tune_dominates(const struct tune_point *a, const struct tune_point *b)
{
    double ac = a->mean[TM_COST], bc = b->mean[TM_COST], aa = a->mean[TM_ATTAINMENT], ba = b->mean[TM_ATTAINMENT];
    double at = isnan(a->mean[TM_TTFT_P99]) ? 0 : a->mean[TM_TTFT_P99];
    double bt = isnan(b->mean[TM_TTFT_P99]) ? 0 : b->mean[TM_TTFT_P99];

    return ac <= bc && aa >= ba && at <= bt && (ac < bc || aa > ba || at < bt);
}

static int tune_cmp_cost(const void *x, const void *y)
{
    const struct tune_point *a = *(const struct tune_point *const *)x, *b = *(const struct tune_point *const *)y;

    if (a->mean[TM_COST] != b->mean[TM_COST])
        return a->mean[TM_COST] < b->mean[TM_COST] ? -1 : 1;
    return (a->cand > b->cand) - (a->cand < b->cand);
}

/* The full runs no other full run dominates, by cost; *N set. */
static const struct tune_point **tune_pareto(const struct tune_result *r, size_t *n)
{
    const struct tune_point **front = malloc((r->npoints + 1) * sizeof(*front));
    size_t i, j;

    *n = 0;
    if (front == NULL)
        return NULL;
    for (i = 0; i < r->npoints; i++) {
        const struct tune_point *p = &r->points[i];
        bool dominated = false;
        if (!p->ok || p->fidelity < 1.0)
            continue;
        for (j = 0; j < r->npoints && !dominated; j++)
            dominated = j != i && r->points[j].ok && r->points[j].fidelity >= 1.0 && tune_dominates(&r->points[j], p);
        if (!dominated)
            front[(*n)++] = p;
    }
    qsort(front, *n, sizeof(*front), tune_cmp_cost);
    return front;
}

static int tune_write_pareto(const struct tune_ctx *ctx, const struct tune_result *r, struct err *e)
{
    char path[4200];
    const struct tune_point **front;
    size_t n, i;
    FILE *f;

    front = tune_pareto(r, &n);
    if (front == NULL)
        return err_set(e, ERR_SYSTEM, "out of memory");
    f = tune_open(ctx, "pareto.csv", path, sizeof(path), e);
    if (f == NULL) {
        free(front);
        return -1;
    }
    tune_csv_knob_header(f, ctx);
    fputs(",cost_usd,slo_attainment,ttft_p99_s,feasible\n", f);
    for (i = 0; i < n; i++) {
        tune_csv_cand(f, ctx, front[i]->cand);
        tune_csv_num(f, front[i]->mean[TM_COST]);
        tune_csv_num(f, front[i]->mean[TM_ATTAINMENT]);
        tune_csv_num(f, front[i]->mean[TM_TTFT_P99]);
        fprintf(f, ",%s\n", front[i]->feasible ? "yes" : "no");
    }
    free(front);
    return tune_close(f, path, e);
}

const struct tune_point *tune_neighbour(const struct tune_ctx *ctx, const struct tune_result *r, size_t k, int step)
{
    long idx[TUNE_MAX_KNOBS], best, p;
    size_t j;

    if (r->best < 0)
        return NULL;
    best = r->points[r->best].cand;
    for (j = 0; j < ctx->spec.nknobs; j++)
        idx[j] = tune_value_index(&ctx->spec, best, j);
    idx[k] += step;
    if (idx[k] < 0 || idx[k] >= (long)ctx->spec.knobs[k].nvalues)
        return NULL;
    p = tune_find(r, tune_candidate(&ctx->spec, idx));
    return p < 0 ? NULL : &r->points[p];
}

static int tune_write_sensitivity(const struct tune_ctx *ctx, const struct tune_result *r, struct err *e)
{
    static const enum tune_metric shown[] = {TM_COST, TM_TTFT_P99, TM_E2E_P99, TM_ATTAINMENT};
    char path[4200];
    FILE *f = tune_open(ctx, "sensitivity.csv", path, sizeof(path), e);
    size_t k, m;
    int step;

    if (f == NULL)
        return -1;
    fputs("key,direction,value,best_value", f);
    for (m = 0; m < sizeof(shown) / sizeof(shown[0]); m++)
        fprintf(f, ",%s,delta_%s", tune_metric_names[shown[m]], tune_metric_names[shown[m]]);
    fputs(",feasible\n", f);
    for (k = 0; r->best >= 0 && k < ctx->spec.nknobs; k++)
        for (step = -1; step <= 1; step += 2) {
            const struct tune_point *b = &r->points[r->best], *p = tune_neighbour(ctx, r, k, step);
            if (p == NULL)
                continue;
            tune_csv_field(f, ctx->spec.knobs[k].key);
            fprintf(f, ",%s,", step < 0 ? "down" : "up");
            tune_csv_value(f, tune_value_text(&ctx->spec, p->cand, k));
            fputc(',', f);
            tune_csv_value(f, tune_value_text(&ctx->spec, b->cand, k));
            for (m = 0; m < sizeof(shown) / sizeof(shown[0]); m++) {
                tune_csv_num(f, p->mean[shown[m]]);
                tune_csv_num(f, p->mean[shown[m]] - b->mean[shown[m]]);
            }
            fprintf(f, ",%s\n", p->feasible ? "yes" : "no");
        }
    return tune_close(f, path, e);
}

/* Replace the file name at KEY (when a relative name) by its absolute one,
 * so best.yaml runs from wherever it is. */
static int tune_absolute(struct conf *c, const char *key, struct err *e)
{
    struct conf_node *n = conf_lookup(c, key);
    const char *text;
    char buf[4096], real[PATH_MAX], set[PATH_MAX + 300];
    size_t i, o;

    if (n == NULL || !conf_is_scalar(n) || conf_node_str(c, n, key, &text, e) < 0 || text[0] == '/' ||
        strcmp(text, "-") == 0)
        return 0;
    conf_path(c, n, text, buf, sizeof(buf));
    if (realpath(buf, real) == NULL)
        return 0; /* the run reports it */
    o = (size_t)snprintf(set, sizeof(set), "%s=\"", key);
    for (i = 0; real[i] && o + 3 < sizeof(set); i++) {
        if (real[i] == '"' || real[i] == '\\')
            set[o++] = '\\';
        set[o++] = real[i];
    }
    set[o++] = '"';
    set[o] = '\0';
    return conf_set(c, set, e);
}

static const char *tune_base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int tune_write_best(const struct tune_ctx *ctx, const struct tune_result *r, struct err *e)
{
    static const char *const paths[] = {"workload.trace", "workload.generator", "service.profile", NULL};
    const struct tune_point *b = &r->points[r->best];
    struct conf *c = conf_load_file(ctx->real_path, e);
    char **sets = NULL, path[4200];
    size_t k;
    int i, rc = -1;
    FILE *f = NULL;

    if (c == NULL)
        return -1;
    for (i = 0; i < ctx->nsets; i++)
        if (conf_set(c, ctx->sets[i], e) < 0)
            goto out;
    if (tune_candidate_sets(&ctx->spec, b->cand, &sets, e) < 0)
        goto out;
    for (k = 0; k < ctx->spec.nknobs; k++)
        if (conf_set(c, sets[k], e) < 0)
            goto out;
    for (i = 0; paths[i]; i++)
        if (tune_absolute(c, paths[i], e) < 0)
            goto out;
    f = tune_open(ctx, "best.yaml", path, sizeof(path), e);
    if (f == NULL)
        goto out;
    fprintf(f, "# %s tuned by llmsim tune (%s, %ld simulations): candidate %ld%s.\n", tune_base_name(ctx->real_path),
            r->method, ctx->simulations, b->cand,
            b->feasible ? (r->tie ? ", a tie with the runner-up within the spread over seeds"
                                  : ", the best meeting the constraints")
                        : ": NO candidate meets the constraints; this one misses them least");
    fprintf(f, "# Mean over %d seed(s): cost $%.2f (sd %.2f), SLO attainment %.4f, TTFT p99 %.3g s.\n", b->nseeds,
            b->mean[TM_COST], b->sd[TM_COST], b->mean[TM_ATTAINMENT], b->mean[TM_TTFT_P99]);
    if (r->baseline >= 0)
        fprintf(f, "# The scenario as written: cost $%.2f, SLO attainment %.4f%s.\n",
                r->points[r->baseline].mean[TM_COST], r->points[r->baseline].mean[TM_ATTAINMENT],
                r->points[r->baseline].feasible ? "" : " (misses the constraints)");
    fprintf(f, "# Tuned keys (was):\n");
    for (k = 0; k < ctx->spec.nknobs; k++)
        fprintf(f, "#   %s: %s (%s)\n", ctx->spec.knobs[k].key, tune_value_text(&ctx->spec, b->cand, k),
                ctx->spec.knobs[k].baseline);
    if (conf_emit(c, f, e) < 0) {
        fclose(f);
        goto out;
    }
    rc = tune_close(f, path, e);
out:
    tune_sets_free(sets, sets ? ctx->spec.nknobs : 0);
    conf_free(c);
    return rc;
}

static void tune_print(const struct tune_ctx *ctx, const struct tune_result *r)
{
    const struct tune_point *b = &r->points[r->best];
    const struct tune_point *base = r->baseline >= 0 ? &r->points[r->baseline] : NULL;
    size_t k;

    printf("%s: %s search, %ld simulations (%.1f of the whole workload), %d seed(s) each\n", ctx->name, r->method,
           ctx->simulations, ctx->sim_units, ctx->spec.seeds);
    if (base != NULL)
        printf("  baseline:  $%.2f (sd %.2f), SLO %.2f%%, TTFT p99 %.3g s%s\n", base->mean[TM_COST], base->sd[TM_COST],
               100 * base->mean[TM_ATTAINMENT], base->mean[TM_TTFT_P99], base->feasible ? "" : "  (misses)");
    printf("  best:      $%.2f (sd %.2f), SLO %.2f%%, TTFT p99 %.3g s%s\n", b->mean[TM_COST], b->sd[TM_COST],
           100 * b->mean[TM_ATTAINMENT], b->mean[TM_TTFT_P99],
           b->feasible ? "" : "  (NO candidate meets the constraints: the closest)");
    for (k = 0; k < ctx->spec.nknobs; k++)
        printf("    %s: %s (was %s)\n", ctx->spec.knobs[k].key, tune_value_text(&ctx->spec, b->cand, k),
               ctx->spec.knobs[k].baseline);
    if (r->runner_up >= 0) {
        const struct tune_point *u = &r->points[r->runner_up];
        printf("  runner-up: $%.2f (sd %.2f), SLO %.2f%%: %s\n", u->mean[TM_COST], u->sd[TM_COST],
               100 * u->mean[TM_ATTAINMENT],
               r->tie ? "a TIE (within the spread over seeds)" : "beaten beyond the spread");
    }
    printf("  results: %s/{trials.csv,pareto.csv,sensitivity.csv,best.yaml,manifests/}\n", ctx->opt->outdir);
    if (ctx->opt->report)
        printf("  report:  %s/report.html\n", ctx->opt->outdir);
}

int tune_write_outputs(struct tune_ctx *ctx, struct tune_result *r, struct err *e)
{
    if (tune_write_trials(ctx, r, e) < 0 || tune_write_pareto(ctx, r, e) < 0)
        return -1;
    if (r->best < 0)
        return err_set(e, ERR_INPUT, "%s: no candidate could be simulated (see the error column of %s/trials.csv)",
                       ctx->path, ctx->opt->outdir);
    if (!r->points[r->best].ok)
        return err_set(e, ERR_INPUT, "%s: no candidate could be simulated: %s", ctx->path, r->points[r->best].error);
    if (tune_write_sensitivity(ctx, r, e) < 0 || tune_write_best(ctx, r, e) < 0 || tune_write_manifests(ctx, r, e) < 0)
        return -1;
    if (ctx->opt->report && tune_write_report(ctx, r, e) < 0)
        return -1;
    if (!ctx->opt->quiet)
        tune_print(ctx, r);
    if (!r->points[r->best].feasible)
        log_warn("no candidate meets the constraints; best.yaml holds the closest");
    return 0;
}
