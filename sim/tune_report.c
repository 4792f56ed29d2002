/* tune_report.c -- DIR/report.html of a tune run: the baseline against the
 * winner, the tuned keys, the sensitivity table, the Pareto front and the
 * best candidates, with gnuplot charts (reports/tune_pareto.gp: cost against
 * SLO attainment and TTFT p99; reports/tune_knob.gp: cost and TTFT p99 per
 * value of each knob).  The charts' data go to tune_chart_*.csv beside it;
 * when gnuplot does not run, the page is written without charts. */
#include "sim/tune_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "reports/report.h"

/* The templates, embedded into reports/templates.c by reports/embed.sh. */
extern const char report_tpl_tune_pareto_gp[];
extern const char report_tpl_tune_knob_gp[];
extern const char report_tpl_report_css[];

#define TUNE_REPORT_TOP 15

static FILE *tune_report_open(const struct tune_ctx *ctx, const char *name, char *path, size_t len, struct err *e)
{
    FILE *f;

    snprintf(path, len, "%s/%s", ctx->opt->outdir, name);
    f = fopen(path, "w");
    if (f == NULL)
        err_sys(e, errno, "%s", path);
    return f;
}

static int tune_report_close(FILE *f, const char *path, struct err *e)
{
    int bad = ferror(f);

    if (fclose(f) != 0 || bad)
        return err_sys(e, errno ? errno : EIO, "%s", path);
    return 0;
}

/* A knob value for display: the YAML quotes taken off. */
static void tune_plain(const char *yaml, char *buf, size_t len)
{
    size_t n = strlen(yaml), i, o = 0;

    if (n >= 2 && yaml[0] == '"' && yaml[n - 1] == '"') {
        for (i = 1; i + 1 < n && o + 1 < len; i++) {
            if (yaml[i] == '\\' && i + 2 < n)
                i++;
            buf[o++] = yaml[i];
        }
        buf[o] = '\0';
    } else {
        snprintf(buf, len, "%s", yaml);
    }
}

static bool tune_on_front(const struct tune_result *r, size_t i)
{
    const struct tune_point *p = &r->points[i];
    size_t j;

    for (j = 0; j < r->npoints; j++) {
        const struct tune_point *q = &r->points[j];
        double pt = isnan(p->mean[TM_TTFT_P99]) ? 0 : p->mean[TM_TTFT_P99];
        double qt = isnan(q->mean[TM_TTFT_P99]) ? 0 : q->mean[TM_TTFT_P99];
        if (j == i || !q->ok || q->fidelity < 1.0)
            continue;
        if (q->mean[TM_COST] <= p->mean[TM_COST] && q->mean[TM_ATTAINMENT] >= p->mean[TM_ATTAINMENT] && qt <= pt &&
            (q->mean[TM_COST] < p->mean[TM_COST] || q->mean[TM_ATTAINMENT] > p->mean[TM_ATTAINMENT] || qt < pt))
            return false;
    }
    return true;
}

static int tune_chart_data(const struct tune_ctx *ctx, const struct tune_result *r, struct err *e)
{
    char path[4200];
    FILE *f = tune_report_open(ctx, "tune_chart_points.csv", path, sizeof(path), e);
    size_t i, k, v, pass;

    if (f == NULL)
        return -1;
    fputs("cost_usd,slo_attainment,ttft_p99_s,feasible,front,best,baseline\n", f);
    /* Front rows last and by cost, so the line joins them in order. */
    for (pass = 0; pass < 2; pass++) {
        long *front = malloc((r->npoints + 1) * sizeof(*front));
        size_t nf = 0;
        if (front == NULL) {
            fclose(f);
            return err_set(e, ERR_SYSTEM, "out of memory");
        }
        for (i = 0; i < r->npoints; i++) {
            const struct tune_point *p = &r->points[i];
            bool fr;
            if (!p->ok || p->fidelity < 1.0)
                continue;
            fr = tune_on_front(r, i);
            if ((pass == 1) != fr)
                continue;
            if (pass == 1) {
                size_t j = nf++;
                while (j > 0 && r->points[front[j - 1]].mean[TM_COST] > p->mean[TM_COST]) {
                    front[j] = front[j - 1];
                    j--;
                }
                front[j] = (long)i;
                continue;
            }
            fprintf(f, "%.6g,%.6g,%.6g,%d,0,%d,%d\n", p->mean[TM_COST], p->mean[TM_ATTAINMENT],
                    isnan(p->mean[TM_TTFT_P99]) ? 0 : p->mean[TM_TTFT_P99], p->feasible, (long)i == r->best,
                    (long)i == r->baseline);
        }
        for (i = 0; i < nf; i++) {
            const struct tune_point *p = &r->points[front[i]];
            fprintf(f, "%.6g,%.6g,%.6g,%d,1,%d,%d\n", p->mean[TM_COST], p->mean[TM_ATTAINMENT],
                    isnan(p->mean[TM_TTFT_P99]) ? 0 : p->mean[TM_TTFT_P99], p->feasible, front[i] == r->best,
                    front[i] == r->baseline);
        }
        free(front);
    }
    if (tune_report_close(f, path, e) < 0)
        return -1;
    for (k = 0; k < ctx->spec.nknobs; k++) {
        char name[64];
        long idx[TUNE_MAX_KNOBS];
        size_t j;

        snprintf(name, sizeof(name), "tune_chart_knob_%zu.csv", k + 1);
        f = tune_report_open(ctx, name, path, sizeof(path), e);
        if (f == NULL)
            return -1;
        fputs("value,cost_usd,cost_usd_sd,ttft_p99_s,feasible,best\n", f);
        for (j = 0; j < ctx->spec.nknobs; j++)
            idx[j] = tune_value_index(&ctx->spec, r->points[r->best].cand, j);
        for (v = 0; v < ctx->spec.knobs[k].nvalues; v++) {
            long p;
            char val[TUNE_VALUE_MAX];
            idx[k] = (long)v;
            p = tune_find(r, tune_candidate(&ctx->spec, idx));
            if (p < 0)
                continue;
            tune_plain(ctx->spec.knobs[k].values[v], val, sizeof(val));
            /* A value is data for gnuplot, not script; keep CSV intact. */
            for (j = 0; val[j]; j++)
                if (val[j] == ',' || val[j] == '"')
                    val[j] = ' ';
            fprintf(f, "%s,%.6g,%.6g,%.6g,%d,%d\n", val, r->points[p].mean[TM_COST], r->points[p].sd[TM_COST],
                    isnan(r->points[p].mean[TM_TTFT_P99]) ? 0 : r->points[p].mean[TM_TTFT_P99],
                    r->points[p].feasible, p == r->best);
        }
        if (tune_report_close(f, path, e) < 0)
            return -1;
    }
    return 0;
}

/* Draw the charts; false (with a warning) when gnuplot does not run. */
static bool tune_charts(const struct tune_ctx *ctx)
{
    struct err e = {0};
    size_t k;

    if (report_run_gnuplot(ctx->opt->outdir, report_tpl_tune_pareto_gp, &e) < 0) {
        log_warn("report: no charts: %s", e.msg);
        return false;
    }
    for (k = 0; k < ctx->spec.nknobs; k++) {
        /* The key is a checked path (letters, digits, _.[]-): safe to quote. */
        size_t n = strlen(report_tpl_tune_knob_gp) + strlen(ctx->spec.knobs[k].key) + 64;
        char *script = malloc(n);
        int rc;
        if (script == NULL)
            return false;
        snprintf(script, n, "knob = %zu\nknob_key = \"%s\"\n%s", k + 1, ctx->spec.knobs[k].key,
                 report_tpl_tune_knob_gp);
        rc = report_run_gnuplot(ctx->opt->outdir, script, &e);
        free(script);
        if (rc < 0) {
            log_warn("report: knob chart %zu: %s", k + 1, e.msg);
            return false;
        }
    }
    return true;
}

static void tune_html_num(FILE *f, const char *fmt, double v)
{
    if (isnan(v))
        fputs("<td>-</td>", f);
    else {
        fputs("<td>", f);
        fprintf(f, fmt, v);
        fputs("</td>", f);
    }
}

static void tune_html_row(FILE *f, const struct tune_ctx *ctx, const char *label, const struct tune_point *p)
{
    fputs("<tr><th>", f);
    report_html_escape(f, label);
    fputs("</th>", f);
    fprintf(f, "<td>$%.2f &plusmn; %.2f</td>", p->mean[TM_COST], p->sd[TM_COST]);
    fprintf(f, "<td>%.2f%% &plusmn; %.2f</td>", 100 * p->mean[TM_ATTAINMENT], 100 * p->sd[TM_ATTAINMENT]);
    tune_html_num(f, "%.3f s", p->mean[TM_TTFT_P99]);
    tune_html_num(f, "%.3f s", p->mean[TM_E2E_P99]);
    tune_html_num(f, "%.2f%%", 100 * p->mean[TM_FAILED]);
    tune_html_num(f, "%.2f", p->mean[TM_REPLICAS]);
    tune_html_num(f, "%.2f", p->mean[TM_GPU_HOURS]);
    fprintf(f, "<td>%s</td></tr>\n", p->feasible ? "yes" : "<b>no</b>");
    (void)ctx;
}

static void tune_html_values(FILE *f, const struct tune_ctx *ctx, long cand)
{
    size_t k;
    char v[TUNE_VALUE_MAX];

    for (k = 0; k < ctx->spec.nknobs; k++) {
        tune_plain(tune_value_text(&ctx->spec, cand, k), v, sizeof(v));
        fputs("<td>", f);
        report_html_escape(f, v);
        fputs("</td>", f);
    }
}

static void tune_html_knob_header(FILE *f, const struct tune_ctx *ctx)
{
    size_t k;

    for (k = 0; k < ctx->spec.nknobs; k++) {
        fputs("<th>", f);
        report_html_escape(f, ctx->spec.knobs[k].key);
        fputs("</th>", f);
    }
}

static const struct tune_ctx *tune_top_ctx;
static const struct tune_result *tune_top_r;

static int tune_cmp_top(const void *a, const void *b)
{
    const struct tune_point *p = &tune_top_r->points[*(const long *)a], *q = &tune_top_r->points[*(const long *)b];

    if (tune_better(tune_top_ctx, p, q))
        return -1;
    if (tune_better(tune_top_ctx, q, p))
        return 1;
    return (p->cand > q->cand) - (p->cand < q->cand);
}

static void tune_html_body(FILE *f, const struct tune_ctx *ctx, const struct tune_result *r, bool charts)
{
    static const char *const head = "<tr><th></th><th>cost</th><th>SLO attainment</th><th>TTFT p99</th>"
                                     "<th>E2E p99</th><th>rejected + timed out</th><th>replicas (mean)</th>"
                                     "<th>GPU-hours</th><th>meets constraints</th></tr>\n";
    const struct tune_point *b = &r->points[r->best], *base = r->baseline >= 0 ? &r->points[r->baseline] : NULL;
    char v[TUNE_VALUE_MAX], w[TUNE_VALUE_MAX];
    size_t i, k, n = 0;
    long *top;
    int step;

    fputs("<h1>llmsim tune: ", f);
    report_html_escape(f, ctx->name);
    fputs("</h1>\n<p>", f);
    fprintf(f, "%s search, %ld simulations (%.1f of the whole workload), %d seed(s) per candidate, "
               "%llu candidates in the space. Objective: %s",
            r->method, ctx->simulations, ctx->sim_units, ctx->spec.seeds, (unsigned long long)ctx->spec.ncandidates,
            ctx->spec.objective == TUNE_MIN_COST ? "the lowest cost" : "the highest SLO attainment");
    if (ctx->spec.objective == TUNE_MIN_COST)
        fprintf(f, " with a mean SLO attainment of at least %.2f%%", 100 * ctx->spec.attainment);
    else
        fprintf(f, " within $%.2f", ctx->spec.budget_usd);
    for (i = 0; i < ctx->spec.nlimits; i++)
        fprintf(f, ", %s at most %.3g s", tune_metric_names[ctx->spec.limits[i].metric], ctx->spec.limits[i].max_s);
    if (ctx->spec.max_failed < 1)
        fprintf(f, ", at most %.2f%% rejected or timed out", 100 * ctx->spec.max_failed);
    fputs(" (means over seeds).</p>\n", f);

    fputs("<h2>Baseline and best</h2>\n<table>\n", f);
    fputs(head, f);
    if (base != NULL)
        tune_html_row(f, ctx, "baseline (the scenario as written)", base);
    tune_html_row(f, ctx, "best", b);
    fputs("</table>\n<p>", f);
    if (!b->feasible)
        fputs("<b>No candidate meets the constraints</b>; the best is the one that misses them least.", f);
    else if (r->runner_up >= 0 && r->tie)
        fprintf(f, "A <b>tie</b>: the runner-up (candidate %ld, $%.2f &plusmn; %.2f) is within the spread over seeds "
                   "of the best; either will do.", r->points[r->runner_up].cand, r->points[r->runner_up].mean[TM_COST],
                r->points[r->runner_up].sd[TM_COST]);
    else if (r->runner_up >= 0)
        fprintf(f, "The best beats the runner-up (candidate %ld, $%.2f &plusmn; %.2f) beyond the spread over seeds.",
                r->points[r->runner_up].cand, r->points[r->runner_up].mean[TM_COST],
                r->points[r->runner_up].sd[TM_COST]);
    if (base != NULL && b->feasible && base->mean[TM_COST] > 0)
        fprintf(f, " It costs %.1f%% %s than the baseline.",
                100 * fabs(base->mean[TM_COST] - b->mean[TM_COST]) / base->mean[TM_COST],
                b->mean[TM_COST] <= base->mean[TM_COST] ? "less" : "more");
    fputs("</p>\n<table>\n<tr><th>key</th><th>baseline</th><th>best</th></tr>\n", f);
    for (k = 0; k < ctx->spec.nknobs; k++) {
        tune_plain(ctx->spec.knobs[k].baseline, v, sizeof(v));
        tune_plain(tune_value_text(&ctx->spec, b->cand, k), w, sizeof(w));
        fputs("<tr><td>", f);
        report_html_escape(f, ctx->spec.knobs[k].key);
        fputs("</td><td>", f);
        report_html_escape(f, v);
        fputs("</td><td>", f);
        report_html_escape(f, w);
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n<p>Files: <a href=\"best.yaml\">best.yaml</a>, <a href=\"trials.csv\">trials.csv</a>, "
          "<a href=\"pareto.csv\">pareto.csv</a>, <a href=\"sensitivity.csv\">sensitivity.csv</a>, "
          "<a href=\"manifests/\">manifests/</a>.</p>\n",
          f);

    fputs("<h2>Sensitivity: each knob one value down and up from the best</h2>\n<table>\n"
          "<tr><th>key</th><th>value</th><th>&Delta; cost</th><th>&Delta; TTFT p99</th><th>&Delta; E2E p99</th>"
          "<th>&Delta; SLO attainment</th><th>meets constraints</th></tr>\n",
          f);
    for (k = 0; k < ctx->spec.nknobs; k++)
        for (step = -1; step <= 1; step += 2) {
            const struct tune_point *p = tune_neighbour(ctx, r, k, step);
            if (p == NULL)
                continue;
            tune_plain(tune_value_text(&ctx->spec, p->cand, k), v, sizeof(v));
            tune_plain(tune_value_text(&ctx->spec, b->cand, k), w, sizeof(w));
            fputs("<tr><td>", f);
            report_html_escape(f, ctx->spec.knobs[k].key);
            fputs("</td><td>", f);
            report_html_escape(f, w);
            fputs(" &rarr; ", f);
            report_html_escape(f, v);
            fprintf(f, "</td><td>%+.2f USD</td>", p->mean[TM_COST] - b->mean[TM_COST]);
            tune_html_num(f, "%+.3f s", p->mean[TM_TTFT_P99] - b->mean[TM_TTFT_P99]);
            tune_html_num(f, "%+.3f s", p->mean[TM_E2E_P99] - b->mean[TM_E2E_P99]);
            tune_html_num(f, "%+.2f pt", 100 * (p->mean[TM_ATTAINMENT] - b->mean[TM_ATTAINMENT]));
            fprintf(f, "<td>%s</td></tr>\n", p->feasible ? "yes" : "<b>no</b>");
        }
    fputs("</table>\n", f);
    if (charts) {
        fputs("<h2>Charts</h2>\n<figure><img src=\"chart_tune_pareto.png\" alt=\"Pareto front\"><figcaption>"
              "Every candidate run on the whole workload; the Pareto front (cost, SLO attainment, TTFT p99), the "
              "baseline and the best.</figcaption></figure>\n",
              f);
        for (k = 0; k < ctx->spec.nknobs; k++) {
            fprintf(f, "<figure><img src=\"chart_tune_knob_%zu.png\" alt=\"knob %zu\"><figcaption>", k + 1, k + 1);
            report_html_escape(f, ctx->spec.knobs[k].key);
            fputs(": cost (&plusmn; its spread over seeds) and TTFT p99 per value, the other knobs at the best's."
                  "</figcaption></figure>\n",
                  f);
        }
    }
    top = malloc((r->npoints + 1) * sizeof(*top));
    if (top == NULL)
        return;
    for (i = 0; i < r->npoints; i++)
        if (r->points[i].fidelity >= 1.0 && r->points[i].cand >= 0)
            top[n++] = (long)i;
    tune_top_ctx = ctx;
    tune_top_r = r;
    qsort(top, n, sizeof(*top), tune_cmp_top);
    fprintf(f, "<h2>The best %d candidates</h2>\n<table>\n<tr><th>candidate</th>", TUNE_REPORT_TOP);
    tune_html_knob_header(f, ctx);
    fputs("<th>cost</th><th>SLO attainment</th><th>TTFT p99</th><th>meets constraints</th></tr>\n", f);
    for (i = 0; i < n && i < TUNE_REPORT_TOP; i++) {
        const struct tune_point *p = &r->points[top[i]];
        fprintf(f, "<tr><td>%ld</td>", p->cand);
        tune_html_values(f, ctx, p->cand);
        fprintf(f, "<td>$%.2f &plusmn; %.2f</td><td>%.2f%%</td>", p->mean[TM_COST], p->sd[TM_COST],
                100 * p->mean[TM_ATTAINMENT]);
        tune_html_num(f, "%.3f s", p->mean[TM_TTFT_P99]);
        fprintf(f, "<td>%s</td></tr>\n", p->feasible ? "yes" : "no");
    }
    fputs("</table>\n", f);
    free(top);
}

int tune_write_report(struct tune_ctx *ctx, const struct tune_result *r, struct err *e)
{
    char path[4200];
    bool charts;
    FILE *f;

    if (tune_chart_data(ctx, r, e) < 0)
        return -1;
    charts = tune_charts(ctx);
    f = tune_report_open(ctx, "report.html", path, sizeof(path), e);
    if (f == NULL)
        return -1;
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>llmsim tune: ", f);
    report_html_escape(f, ctx->name);
    fputs("</title>\n<style>\n", f);
    fputs(report_tpl_report_css, f);
    fputs("</style>\n</head>\n<body>\n", f);
    tune_html_body(f, ctx, r, charts);
    fputs("</body>\n</html>\n", f);
    return tune_report_close(f, path, e);
}
