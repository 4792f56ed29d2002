/* report_int.h -- what the parts of the report share; private to reports/.
 *
 * report_write() (report.c) runs three parts in turn:
 *   report_input.c   reads and checks summary.json, timeline.csv and
 *                    latency_cdf.csv;
 *   report_charts.c  fills the embedded gnuplot templates and runs gnuplot
 *                    to draw the PNG charts;
 *   report_html.c    writes report.html from the summary and the charts.
 * Nothing outside reports/ includes this header; the public interface is
 * report.h. */
#ifndef LLM_REPORT_INT_H
#define LLM_REPORT_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

#define REPORT_PATH_MAX 4096

/* Generated into reports/templates.c by reports/embed.sh from
 * reports/timeline.gp, latency.gp and report.css. */
extern const char report_tpl_timeline_gp[];
extern const char report_tpl_latency_gp[];
extern const char report_tpl_report_css[];

/* ---- the inputs (report_input.c) ----------------------------------------- */

/* At most this many nodes_POOL columns of timeline.csv are checked and
 * drawn; further ones are ignored. */
#define REPORT_MAX_POOL_COLUMNS 32

/* What the charts need to know about timeline.csv: its number of rows, the
 * time_s of its first, second and last rows (0 where there is none) and
 * where the node counts are.  Columns are numbered from 1, as gnuplot does;
 * 0 means absent.  nodes_col is "nodes" (all pools); pool_cols are the
 * "nodes_POOL" columns, one per node pool, in header order.  Timelines of
 * runs before node pools have none of them. */
struct report_timeline {
    size_t rows;
    double first_s, second_s, last_s;
    int nodes_col;
    size_t npool_cols;
    int pool_cols[REPORT_MAX_POOL_COLUMNS];
};

/* The metrics of latency_cdf.csv, in the order of the latency table:
 * "queue", "ttft", "tpot", "e2e". */
#define REPORT_CDF_NMETRICS 4
extern const char *const report_cdf_metrics[];

/* Rows of latency_cdf.csv per metric of report_cdf_metrics (rows[i] counts
 * report_cdf_metrics[i]); total counts every row, other metrics included. */
struct report_cdf_counts {
    size_t rows[REPORT_CDF_NMETRICS];
    size_t total;
};

/* Parse and check FILE (summary.json): every key the page shows must be
 * present with its type.  Returns the document (the caller json_decref()s
 * it) or NULL: ERR_SYSTEM when the file cannot be opened, ERR_INPUT with the
 * line for a syntax error or naming the key that is missing or mistyped. */
json_t *report_summary_load(const char *file, struct err *e);

/* The value at dotted PATH ("latency_s.ttft.p99") under ROOT, or NULL when a
 * key along the path is missing or a value along it is not an object. */
json_t *report_summary_get(json_t *root, const char *path);

/* The number at dotted PATH under ROOT, or NAN when it is absent or not a
 * number. */
double report_summary_num(json_t *root, const char *path);

/* "a string", "null" ...: the kind of V, for messages. */
const char *report_summary_kind(const json_t *v);

/* Whether dotted PATH, whose value is V, is a key of summary.json that the
 * page shows in its own place (and so not among the "other figures"). */
bool report_summary_known(const char *path, const json_t *v);

/* Read and check PATH (timeline.csv) into T: the wanted columns present and
 * numeric, time_s increasing row by row, the node columns (when present)
 * numeric.  Returns 0, or -1 with e set:
 * ERR_SYSTEM when the file cannot be read, ERR_INPUT as "PATH:LINE: ..." for
 * bad content. */
int report_timeline_load(const char *path, struct report_timeline *t, struct err *e);

/* Read and check PATH (latency_cdf.csv) into N: latency_s >= 0 and cdf
 * within [0, 1] on every row.  Returns 0, or -1 with e set as for
 * report_timeline_load(). */
int report_cdf_load(const char *path, struct report_cdf_counts *n, struct err *e);

/* ---- the charts (report_charts.c) ---------------------------------------- */

/* The gnuplot template that draws a chart, and so the data it comes from. */
enum report_chart_source { REPORT_CHART_TIMELINE, REPORT_CHART_LATENCY };

/* One PNG of the page; the file names are those the templates write. */
struct report_chart {
    const char *file;
    const char *title; /* the image's alt text */
    const char *caption;
    enum report_chart_source source;
};

/* The charts of the page, in page order; drawn[] arrays are indexed alike. */
#define REPORT_NCHARTS 5
extern const struct report_chart report_charts[];

/* The index in report_charts of "Nodes by pool", drawn only when timeline.csv
 * has node columns; its caption is completed from the summary (preemptions,
 * cold starts). */
#define REPORT_CHART_NODES 1

/* Draw in DIR every chart the data allows and set drawn[i] for each chart of
 * report_charts that came out.  Charts of an earlier report are removed
 * first so that none is shown stale.  Never fails: when gnuplot cannot draw,
 * a warning is logged once and the charts are left out. */
void report_charts_draw_all(const char *dir, json_t *summary, const struct report_timeline *t,
                            const struct report_cdf_counts *cdf, bool drawn[REPORT_NCHARTS]);

/* ---- the page (report_html.c) -------------------------------------------- */

/* Write the page for summary S, the charts marked in DRAWN and the row
 * counts T and CDF to DIR/report.html, through a temporary file renamed into
 * place.  Returns 0, or -1 with an ERR_SYSTEM naming the file. */
int report_html_write(const char *dir, json_t *s, const bool drawn[REPORT_NCHARTS],
                      const struct report_timeline *t, const struct report_cdf_counts *cdf,
                      struct err *e);

#endif
