/* report_html.c -- the page, DIR/report.html (see report_int.h).
 *
 * A single page with no external assets: the style sheet (reports/report.css)
 * is inlined and the charts are referenced by their file names next to it.
 * Every string from the inputs that enters the page is HTML-escaped. */
#include "config.h"
#include "reports/report.h"
#include "reports/report_int.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/duration.h"

/* Write S with the characters HTML gives meaning to escaped. */
void report_html_escape(FILE *out, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&#39;", out); break;
        default: fputc(*s, out); break;
        }
    }
}

/* A JSON scalar as text: integers exactly, reals to 6 significant digits. */
static void fmt_json(const json_t *v, char *buf, size_t len)
{
    double d;

    switch (json_typeof(v)) {
    case JSON_INTEGER:
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return;
    case JSON_REAL:
        d = json_real_value(v);
        if (d == floor(d) && fabs(d) < 1e15)
            snprintf(buf, len, "%.0f", d);
        else
            snprintf(buf, len, "%.6g", d);
        return;
    case JSON_STRING: snprintf(buf, len, "%s", json_string_value(v)); return;
    case JSON_TRUE: snprintf(buf, len, "true"); return;
    case JSON_FALSE: snprintf(buf, len, "false"); return;
    case JSON_NULL: snprintf(buf, len, "null"); return;
    default: snprintf(buf, len, "(%s)", report_summary_kind(v)); return;
    }
}

/* A duration in seconds with its unit: "12.3 ms", "1.25 s", "312.4 s". */
static void fmt_seconds(double s, char *buf, size_t len)
{
    if (isnan(s))
        snprintf(buf, len, "-");
    else if (s < 1)
        snprintf(buf, len, "%.3g ms", s * 1000);
    else if (s < 60)
        snprintf(buf, len, "%.2f s", s);
    else
        snprintf(buf, len, "%.1f s", s);
}

/* A count with its thousands grouped ("13,095,450"), or a non-integral
 * value to 4 significant digits; "-" for NAN. */
static void fmt_count(double v, char *buf, size_t len)
{
    char digits[32];
    size_t n, i, used = 0;

    if (isnan(v)) {
        snprintf(buf, len, "-");
        return;
    }
    if (v != floor(v) || fabs(v) >= 1e15) {
        snprintf(buf, len, "%.4g", v);
        return;
    }
    n = (size_t)snprintf(digits, sizeof(digits), "%.0f", fabs(v));
    if (v < 0 && used + 1 < len)
        buf[used++] = '-';
    for (i = 0; i < n && used + 2 < len; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            buf[used++] = ',';
        buf[used++] = digits[i];
    }
    buf[used] = '\0';
}

/* Dollars to the cent, as the headline writes them ("$1234.56", "-$3.10");
 * "-" for NAN. */
static void fmt_usd(double v, char *buf, size_t len)
{
    if (isnan(v))
        snprintf(buf, len, "-");
    else if (v < 0)
        snprintf(buf, len, "-$%.2f", -v);
    else
        snprintf(buf, len, "$%.2f", v);
}

/* One headline card; LABEL and VALUE are page text, NOTE may be NULL. */
static void html_card(FILE *out, const char *label, const char *value, const char *note)
{
    fputs("<div class=\"card\"><div class=\"label\">", out);
    report_html_escape(out, label);
    fputs("</div><div class=\"value\">", out);
    report_html_escape(out, value);
    fputs("</div>", out);
    if (note != NULL) {
        fputs("<div class=\"note\">", out);
        report_html_escape(out, note);
        fputs("</div>", out);
    }
    fputs("</div>\n", out);
}

/* A card showing the summary value at PATH. */
static void html_card_json(FILE *out, json_t *s, const char *label, const char *path)
{
    char buf[64];

    fmt_json(report_summary_get(s, path), buf, sizeof(buf));
    html_card(out, label, buf, NULL);
}

/* The headline cards: requests, SLO, cost, capacity, throughput. */
static void html_headline(FILE *out, json_t *s)
{
    static const char *const slo_keys[] = {"slo.ttft_s", "slo.tpot_s", "slo.e2e_s"};
    static const char *const slo_names[] = {"TTFT", "TPOT", "E2E"};
    char value[64], note[256], num[32];
    bool met = json_is_true(report_summary_get(s, "slo.met"));
    size_t i, used = 0;

    fputs("<h2>Headline</h2>\n<div class=\"cards\">\n", out);
    html_card_json(out, s, "requests arrived", "requests.arrived");
    html_card_json(out, s, "completed", "requests.completed");
    html_card_json(out, s, "rejected", "requests.rejected");
    html_card_json(out, s, "timed out", "requests.timed_out");
    html_card_json(out, s, "in flight at end", "requests.in_flight_at_end");
    fputs("</div>\n<div class=\"cards\">\n", out);

    snprintf(value, sizeof(value), "%.2f%%", 100 * report_summary_num(s, "slo.attainment"));
    note[0] = '\0';
    for (i = 0; i < 3; i++) {
        double limit = report_summary_num(s, slo_keys[i]);

        if (isnan(limit))
            continue;
        fmt_seconds(limit, num, sizeof(num));
        used += (size_t)snprintf(note + used, sizeof(note) - used, "%s%s \xe2\x89\xa4 %s",
                                 used > 0 ? ", " : "", slo_names[i], num);
        if (used >= sizeof(note))
            break;
    }
    if (note[0] == '\0')
        snprintf(note, sizeof(note), "no latency objective set");
    fprintf(out, "<div class=\"card %s\"><div class=\"label\">SLO attainment</div>"
                 "<div class=\"value\">%s</div><div class=\"note\"><strong>%s</strong> "
                 "target %.4g%%<br>",
            met ? "met" : "missed", value, met ? "met" : "missed",
            100 * report_summary_num(s, "slo.target"));
    report_html_escape(out, note);
    fputs("</div></div>\n", out);

    snprintf(value, sizeof(value), "$%.2f", report_summary_num(s, "cost_usd.total"));
    snprintf(note, sizeof(note), "$%.4g per 1k requests",
             report_summary_num(s, "cost_usd.per_1k_requests"));
    html_card(out, "cost", value, note);
    snprintf(value, sizeof(value), "%.2f", report_summary_num(s, "gpu_hours"));
    html_card(out, "GPU-hours", value, NULL);
    snprintf(value, sizeof(value), "%.2f", report_summary_num(s, "replicas.mean"));
    snprintf(note, sizeof(note), "min %g, max %g", report_summary_num(s, "replicas.min"),
             report_summary_num(s, "replicas.max"));
    html_card(out, "replicas (mean)", value, note);
    fputs("</div>\n<div class=\"cards\">\n", out);
    snprintf(value, sizeof(value), "%.3g", report_summary_num(s, "throughput.requests_per_s"));
    html_card(out, "requests/s", value, NULL);
    snprintf(value, sizeof(value), "%.4g", report_summary_num(s, "throughput.output_tokens_per_s"));
    html_card(out, "output tokens/s", value, NULL);
    html_card_json(out, s, "prompt tokens", "tokens.prompt");
    html_card_json(out, s, "output tokens", "tokens.output");
    snprintf(value, sizeof(value), "%.1f%%", 100 * report_summary_num(s, "utilization.kv_mean"));
    html_card(out, "KV cache use (mean)", value, NULL);
    snprintf(value, sizeof(value), "%.1f%%", 100 * report_summary_num(s, "utilization.busy_mean"));
    html_card(out, "busy (mean)", value, NULL);
    fputs("</div>\n", out);
}

/* The latency table: a row per metric, a column per statistic. */
static void html_latency(FILE *out, json_t *s)
{
    static const char *const labels[REPORT_CDF_NMETRICS] = {
        "queue wait", "time to first token (TTFT)", "time per output token (TPOT)", "end to end"};
    static const char *const stats[] = {"mean", "p50", "p90", "p99", "max"};
    char path[64], buf[32];
    size_t i, j;

    fputs("<h2>Latency</h2>\n<table>\n<thead><tr><th>metric</th>", out);
    for (j = 0; j < 5; j++)
        fprintf(out, "<th>%s</th>", stats[j]);
    fputs("</tr></thead>\n<tbody>\n", out);
    for (i = 0; i < REPORT_CDF_NMETRICS; i++) {
        fprintf(out, "<tr><td>%s</td>", labels[i]);
        for (j = 0; j < 5; j++) {
            snprintf(path, sizeof(path), "latency_s.%s.%s", report_cdf_metrics[i], stats[j]);
            fmt_seconds(report_summary_num(s, path), buf, sizeof(buf));
            fprintf(out, "<td>%s</td>", buf);
        }
        fputs("</tr>\n", out);
    }
    fputs("</tbody>\n</table>\n", out);
}

/* What the nodes chart cannot show but a planner reading it must know:
 * the spot interruptions of each pool (nodes noticed) and the cold starts, as
 * sentences to end its caption.  Writes nothing when there were none. */
static void html_nodes_marks(FILE *out, json_t *s)
{
    json_t *pools = report_summary_get(s, "pools"), *pool;
    double cold = report_summary_num(s, "events.cold_starts"), total = 0;
    const char *name;
    char num[32];
    bool first = true;

    json_object_foreach(pools, name, pool) {
        double n = report_summary_num(pool, "preemptions");

        if (n > 0)
            total += n;
    }
    if (total > 0) {
        fmt_count(total, num, sizeof(num));
        fprintf(out, " <strong class=\"mark\">Spot interruptions: %s node%s (", num,
                total == 1 ? "" : "s");
        json_object_foreach(pools, name, pool) {
            double n = report_summary_num(pool, "preemptions");

            if (!(n > 0))
                continue;
            fmt_count(n, num, sizeof(num));
            fputs(first ? "" : ", ", out);
            report_html_escape(out, name);
            fprintf(out, " %s", num);
            first = false;
        }
        fputs(").</strong>", out);
    }
    if (cold > 0) {
        fmt_count(cold, num, sizeof(num));
        fprintf(out, " <strong class=\"mark\">Cold starts: %s replica%s started during the "
                     "run.</strong>",
                num, cold == 1 ? "" : "s");
    }
}

/* The charts that were drawn, or a note saying why there are none. */
static void html_charts(FILE *out, json_t *s, const bool drawn[REPORT_NCHARTS],
                        const struct report_timeline *t, const struct report_cdf_counts *cdf)
{
    size_t i, n = 0;

    fputs("<h2>Charts</h2>\n", out);
    for (i = 0; i < REPORT_NCHARTS; i++) {
        if (!drawn[i])
            continue;
        fprintf(out, "<figure><img src=\"%s\" alt=\"%s\"><figcaption>%s",
                report_charts[i].file, report_charts[i].title, report_charts[i].caption);
        if (i == REPORT_CHART_NODES)
            html_nodes_marks(out, s);
        fputs("</figcaption></figure>\n", out);
        n++;
    }
    if (t->rows == 0)
        fputs("<p class=\"nocharts\">timeline.csv has no rows: no charts over time.</p>\n", out);
    if (cdf->total == 0)
        fputs("<p class=\"nocharts\">latency_cdf.csv has no rows: no latency chart.</p>\n", out);
    if (n == 0 && (t->rows > 0 || cdf->total > 0))
        fputs("<p class=\"nocharts\">No charts: gnuplot could not draw them "
              "(see the warning printed when the report was written).</p>\n",
              out);
}

/* ---- node pools, events and the cache ------------------------------------- */

/* A row of a figures table: LABEL (page text), VALUE, and what it means. */
static void html_figure_row(FILE *out, const char *label, const char *value, const char *meaning)
{
    fputs("<tr><td>", out);
    report_html_escape(out, label);
    fputs("</td><td>", out);
    report_html_escape(out, value);
    fputs("</td><td class=\"meaning\">", out);
    report_html_escape(out, meaning != NULL ? meaning : "");
    fputs("</td></tr>\n", out);
}

/* Whether OBJ is an object with at least one member. */
static bool html_nonempty(json_t *obj)
{
    return json_is_object(obj) && json_object_size(obj) > 0;
}

/* One row of the cost table: pool NAME from POOL (its pools.NAME, or NULL)
 * and BY_POOL_USD (cost_usd.by_pool.NAME, or NAN); TOTAL_USD for the share. */
static void html_cost_row(FILE *out, const char *name, json_t *pool, double by_pool_usd,
                          double total_usd)
{
    static const char *const counts[] = {"nodes_max", "provisioned", "removed_idle", "preemptions"};
    double usd = report_summary_num(pool, "cost_usd");
    double hours = report_summary_num(pool, "node_hours");
    char buf[64];
    size_t i;

    if (isnan(usd))
        usd = by_pool_usd;
    fputs("<tr><td>", out);
    report_html_escape(out, name);
    fmt_usd(usd, buf, sizeof(buf));
    fprintf(out, "</td><td>%s</td>", buf);
    if (total_usd > 0 && !isnan(usd))
        fprintf(out, "<td>%.1f%%</td>", 100 * usd / total_usd);
    else
        fputs("<td>-</td>", out);
    if (isnan(hours))
        fputs("<td>-</td><td>-</td>", out);
    else if (hours > 0 && !isnan(usd))
        fprintf(out, "<td>%.2f</td><td>$%.2f</td>", hours, usd / hours);
    else
        fprintf(out, "<td>%.2f</td><td>-</td>", hours);
    for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        fmt_count(report_summary_num(pool, counts[i]), buf, sizeof(buf));
        fprintf(out, "<td>%s</td>", buf);
    }
    fputs("</tr>\n", out);
}

/* The Cost section: a row per node pool (pools, else cost_usd.by_pool),
 * the total, the on-demand equivalent and, when there are any, the savings.
 * Written only for runs that report node pools. */
static void html_cost(FILE *out, json_t *s)
{
    static const char *const sums[] = {"node_hours", "provisioned", "removed_idle", "preemptions"};
    json_t *pools = report_summary_get(s, "pools");
    json_t *by_pool = report_summary_get(s, "cost_usd.by_pool");
    double total = report_summary_num(s, "cost_usd.total");
    double od = report_summary_num(s, "cost_usd.on_demand_equivalent");
    double savings = report_summary_num(s, "cost_usd.savings_vs_on_demand");
    double sum[4] = {0, 0, 0, 0};
    bool have[4] = {false, false, false, false};
    const char *name;
    json_t *v;
    char buf[64], note[128];
    size_t i;

    if (!json_is_object(pools))
        pools = NULL;
    if (!json_is_object(by_pool))
        by_pool = NULL;
    if (!html_nonempty(pools) && !html_nonempty(by_pool) && isnan(od) && isnan(savings))
        return;
    fputs("<h2>Cost</h2>\n", out);
    if (html_nonempty(pools) || html_nonempty(by_pool)) {
        fputs("<table>\n<thead><tr><th>node pool</th><th>cost</th><th>share</th>"
              "<th>node-hours</th><th>per node-hour</th><th>max nodes</th>"
              "<th>nodes provisioned</th><th>removed when idle</th>"
              "<th>spot interruptions</th></tr></thead>\n<tbody>\n",
              out);
        json_object_foreach(pools, name, v) {
            json_t *usd = json_object_get(by_pool, name);

            html_cost_row(out, name, v, json_is_number(usd) ? json_number_value(usd) : NAN, total);
            for (i = 0; i < 4; i++) {
                double x = report_summary_num(v, sums[i]);

                if (!isnan(x)) {
                    sum[i] += x;
                    have[i] = true;
                }
            }
        }
        json_object_foreach(by_pool, name, v) {
            if (pools == NULL || json_object_get(pools, name) == NULL)
                html_cost_row(out, name, NULL, json_is_number(v) ? json_number_value(v) : NAN,
                              total);
        }
        fmt_usd(total, buf, sizeof(buf));
        fprintf(out, "</tbody>\n<tfoot><tr><th>total</th><th>%s</th><th>100%%</th>", buf);
        if (have[0] && sum[0] > 0)
            fprintf(out, "<th>%.2f</th><th>$%.2f</th>", sum[0], total / sum[0]);
        else if (have[0])
            fprintf(out, "<th>%.2f</th><th>-</th>", sum[0]);
        else
            fputs("<th>-</th><th>-</th>", out);
        fputs("<th></th>", out); /* maxima of pools do not add up to one */
        for (i = 1; i < 4; i++) {
            fmt_count(have[i] ? sum[i] : NAN, buf, sizeof(buf));
            fprintf(out, "<th>%s</th>", buf);
        }
        fputs("</tr></tfoot>\n</table>\n", out);
    }
    fputs("<div class=\"cards\">\n", out);
    fmt_usd(total, buf, sizeof(buf));
    html_card(out, "total cost", buf, NULL);
    if (!isnan(od)) {
        fmt_usd(od, buf, sizeof(buf));
        html_card(out, "on-demand equivalent", buf, "every node at its on-demand price");
    }
    if (!isnan(savings) && savings != 0) {
        fmt_usd(savings, buf, sizeof(buf));
        if (od > 0)
            snprintf(note, sizeof(note), "%.1f%% of the on-demand equivalent",
                     100 * savings / od);
        html_card(out, "savings vs on-demand", buf, od > 0 ? note : NULL);
    }
    fputs("</div>\n", out);
}

/* The counts of summary.json's "events" the page explains, in page order. */
static const struct {
    const char *key, *label, *meaning;
} html_events[] = {
    {"cold_starts", "cold starts",
     "replicas started during the run: image pull, model load and readiness before serving"},
    {"scale_ups", "scale-ups", "times the autoscaler raised the number of replicas"},
    {"scale_downs", "scale-downs", "times the autoscaler lowered it"},
    {"hpa_syncs", "HPA syncs", "autoscaler evaluations (one per sync period)"},
    {"activations", "activations", "replicas started from zero when traffic came back"},
    {"scale_to_zero", "scale to zero", "times the replicas went down to none"},
    {"preemptions", "replicas preempted",
     "replicas on spot nodes given an interruption notice, and replaced"},
    {"requeued", "requests requeued",
     "requests still running when their node went, sent back to the queue"},
    {"lost_tokens", "tokens lost", "KV-cache tokens of requeued requests, computed again"},
};

/* The "Autoscaling and reliability" section from "events": the counts above
 * with their meaning, then any other count under its own name.  Written only
 * when the run reports events; a run where none happened gets one line. */
static void html_events_section(FILE *out, json_t *s)
{
    json_t *events = report_summary_get(s, "events"), *v;
    const char *key;
    bool any = false, nonzero = false;
    char buf[64];
    size_t i;

    json_object_foreach(events, key, v) {
        if (json_is_number(v)) {
            any = true;
            nonzero = nonzero || json_number_value(v) != 0;
        }
    }
    if (!any)
        return;
    fputs("<h2>Autoscaling and reliability</h2>\n", out);
    if (!nonzero) {
        fputs("<p>No cold starts, scaling, spot interruptions or requeued requests in this "
              "run.</p>\n",
              out);
        return;
    }
    fputs("<table>\n<tbody>\n", out);
    for (i = 0; i < sizeof(html_events) / sizeof(html_events[0]); i++) {
        v = json_object_get(events, html_events[i].key);
        if (!json_is_number(v))
            continue;
        fmt_count(json_number_value(v), buf, sizeof(buf));
        html_figure_row(out, html_events[i].label, buf, html_events[i].meaning);
    }
    json_object_foreach(events, key, v) {
        bool explained = false;

        for (i = 0; i < sizeof(html_events) / sizeof(html_events[0]) && !explained; i++)
            explained = strcmp(key, html_events[i].key) == 0;
        if (explained || !json_is_number(v))
            continue;
        fmt_count(json_number_value(v), buf, sizeof(buf));
        html_figure_row(out, key, buf, NULL);
    }
    fputs("</tbody>\n</table>\n", out);
}

/* The "Response cache" section, written only when the run had a cache. */
static void html_cache(FILE *out, json_t *s)
{
    double lookups = report_summary_num(s, "cache.lookups");
    double hits = report_summary_num(s, "cache.hits");
    double ratio = report_summary_num(s, "cache.hit_ratio");
    double ratio_all = report_summary_num(s, "cache.hit_ratio_all");
    double tokens = report_summary_num(s, "cache.tokens_saved");
    double gpu_s = report_summary_num(s, "cache.gpu_s_saved");
    double evictions = report_summary_num(s, "cache.evictions");
    char buf[96], num[64];

    if (isnan(lookups) && isnan(hits) && isnan(ratio) && isnan(ratio_all) && isnan(tokens) &&
        isnan(gpu_s) && isnan(evictions))
        return;
    fputs("<h2>Response cache</h2>\n<table>\n<tbody>\n", out);
    if (!isnan(ratio)) {
        snprintf(buf, sizeof(buf), "%.1f%%", 100 * ratio);
        html_figure_row(out, "hit ratio (lookups)", buf,
                        "requests answered by the cache, among those looked up");
    }
    if (!isnan(ratio_all)) {
        snprintf(buf, sizeof(buf), "%.1f%%", 100 * ratio_all);
        html_figure_row(out, "hit ratio (all requests)", buf,
                        "requests answered by the cache, among all that arrived");
    }
    if (!isnan(lookups)) {
        fmt_count(lookups, buf, sizeof(buf));
        html_figure_row(out, "lookups", buf, "requests eligible for the cache");
    }
    if (!isnan(hits)) {
        fmt_count(hits, buf, sizeof(buf));
        html_figure_row(out, "hits", buf, "requests that never reached a replica");
    }
    if (!isnan(tokens)) {
        fmt_count(round(tokens), buf, sizeof(buf));
        html_figure_row(out, "tokens saved", buf, "prompt and output tokens not computed");
    }
    if (!isnan(gpu_s)) {
        fmt_count(round(gpu_s), num, sizeof(num));
        snprintf(buf, sizeof(buf), "%s s (%.2f GPU-hours)", num, gpu_s / 3600);
        html_figure_row(out, "GPU time saved", buf,
                        "tokens saved times the run's busy GPU-seconds per token");
    }
    if (!isnan(evictions)) {
        fmt_count(evictions, buf, sizeof(buf));
        html_figure_row(out, "evictions", buf, "entries dropped to stay within capacity");
    }
    fputs("</tbody>\n</table>\n", out);
}

/* Visit every leaf under NODE, whose dotted path is path[0..len), that the
 * page does not already show; write it as a table row to OUT (when not NULL)
 * named by the path after its first SKIP characters.  Returns the number of
 * such leaves.  Paths longer than the buffer are left out. */
static size_t html_extra_leaves(FILE *out, json_t *node, char *path, size_t len, size_t cap,
                                size_t skip)
{
    size_t n = 0, i, k;
    const char *key;
    json_t *v;
    char buf[256];

    path[len] = '\0';
    if (json_is_object(node)) {
        json_object_foreach(node, key, v) {
            k = (size_t)snprintf(path + len, cap - len, "%s%s", len > 0 ? "." : "", key);
            if (k < cap - len)
                n += html_extra_leaves(out, v, path, len + k, cap, skip);
            path[len] = '\0';
        }
        return n;
    }
    if (json_is_array(node)) {
        json_array_foreach(node, i, v) {
            k = (size_t)snprintf(path + len, cap - len, "[%zu]", i);
            if (k < cap - len)
                n += html_extra_leaves(out, v, path, len + k, cap, skip);
            path[len] = '\0';
        }
        return n;
    }
    if (report_summary_known(path, node))
        return 0;
    if (out != NULL) {
        fmt_json(node, buf, sizeof(buf));
        fputs("<tr><td>", out);
        report_html_escape(out, len > skip ? path + skip : path);
        fputs("</td><td>", out);
        report_html_escape(out, buf);
        fputs("</td></tr>\n", out);
    }
    return 1;
}

/* A table per top-level section holding figures the page does not show
 * elsewhere: sections added by later versions of llmsim, or new keys inside
 * known sections. */
static void html_extras(FILE *out, json_t *s)
{
    char path[512];
    const char *key;
    json_t *v;
    size_t len;
    bool any = false;

    json_object_foreach(s, key, v) {
        len = (size_t)snprintf(path, sizeof(path), "%s", key);
        if (len >= sizeof(path) || html_extra_leaves(NULL, v, path, len, sizeof(path), 0) == 0)
            continue;
        if (!any)
            fputs("<h2>Other figures</h2>\n", out);
        any = true;
        fputs("<h3>", out);
        report_html_escape(out, key);
        fputs("</h3>\n<table>\n<tbody>\n", out);
        html_extra_leaves(out, v, path, len, sizeof(path), len + 1);
        fputs("</tbody>\n</table>\n", out);
    }
}

/* The simulator's own statistics and links to the data files. */
static void html_footer(FILE *out, json_t *s)
{
    char events[64], seed[64], dur[64];

    fmt_json(report_summary_get(s, "sim.events"), events, sizeof(events));
    fmt_json(report_summary_get(s, "sim.seed"), seed, sizeof(seed));
    duration_format(report_summary_num(s, "sim.duration_s"), dur, sizeof(dur));
    fputs("<h2>Simulation</h2>\n<table>\n<tbody>\n", out);
    fprintf(out, "<tr><td>simulated time</td><td>%s</td></tr>\n", dur);
    fprintf(out, "<tr><td>events</td><td>%s</td></tr>\n", events);
    fprintf(out, "<tr><td>wall time</td><td>%.3f s</td></tr>\n",
            report_summary_num(s, "sim.wall_s"));
    fprintf(out, "<tr><td>events per second</td><td>%.0f</td></tr>\n",
            report_summary_num(s, "sim.events_per_s"));
    fprintf(out, "<tr><td>seed</td><td>%s</td></tr>\n", seed);
    fputs("</tbody>\n</table>\n", out);
    fputs("<footer>Data: <a href=\"summary.json\">summary.json</a>, "
          "<a href=\"timeline.csv\">timeline.csv</a>, "
          "<a href=\"latency_cdf.csv\">latency_cdf.csv</a>.</footer>\n",
          out);
}

/* Write the whole page to OUT. */
static void html_page(FILE *out, json_t *s, const bool drawn[REPORT_NCHARTS],
                      const struct report_timeline *t, const struct report_cdf_counts *cdf)
{
    const char *name = json_string_value(report_summary_get(s, "scenario.name"));
    json_t *file = report_summary_get(s, "scenario.file");
    char dur[64], seed[64];

    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
          out);
    report_html_escape(out, name);
    fputs(" \xe2\x80\x94 llmsim report</title>\n<style>\n", out);
    fputs(report_tpl_report_css, out);
    fputs("</style>\n</head>\n<body>\n<h1>", out);
    report_html_escape(out, name);
    fputs("</h1>\n<p class=\"meta\">llmsim report", out);
    if (json_is_string(file)) {
        fputs(" for <code>", out);
        report_html_escape(out, json_string_value(file));
        fputs("</code>", out);
    }
    duration_format(report_summary_num(s, "sim.duration_s"), dur, sizeof(dur));
    fmt_json(report_summary_get(s, "sim.seed"), seed, sizeof(seed));
    fprintf(out, ": %s of simulated time, seed %s.</p>\n", dur, seed);
    html_headline(out, s);
    html_latency(out, s);
    html_cost(out, s);
    html_events_section(out, s);
    html_cache(out, s);
    html_charts(out, s, drawn, t, cdf);
    html_extras(out, s);
    html_footer(out, s);
    fputs("</body>\n</html>\n", out);
}

/* Write the page to DIR/report.html through a temporary file renamed into
 * place.  Returns 0, or -1 with an ERR_SYSTEM naming the file. */
int report_html_write(const char *dir, json_t *s, const bool drawn[REPORT_NCHARTS],
                      const struct report_timeline *t, const struct report_cdf_counts *cdf,
                      struct err *e)
{
    char path[REPORT_PATH_MAX], tmp[REPORT_PATH_MAX + 8];
    FILE *out;
    int failed;

    snprintf(path, sizeof(path), "%s/report.html", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    out = fopen(tmp, "w");
    if (out == NULL)
        return err_sys(e, errno, "%s", tmp);
    html_page(out, s, drawn, t, cdf);
    failed = ferror(out);
    if (fclose(out) != 0 || failed) {
        err_sys(e, errno != 0 ? errno : EIO, "writing %s", tmp);
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        err_sys(e, errno, "renaming %s to %s", tmp, path);
        unlink(tmp);
        return -1;
    }
    return 0;
}
