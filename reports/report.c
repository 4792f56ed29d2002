/* report.c -- see report.h.
 *
 * Three steps, each in its own file (see report_int.h): read and check what
 * a run wrote into DIR (report_input.c), draw the charts with gnuplot
 * (report_charts.c) and write DIR/report.html (report_html.c). */
#include "config.h"
#include "reports/report.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "reports/report_int.h"

/* Read and check the three inputs, draw the charts, write the page.  An
 * input that fails its check stops the report before anything is drawn or
 * written; a chart gnuplot cannot draw does not (see report.h). */
int report_write(const char *dir, struct err *e)
{
    char summary_path[REPORT_PATH_MAX], timeline_path[REPORT_PATH_MAX], cdf_path[REPORT_PATH_MAX];
    bool drawn[REPORT_NCHARTS];
    struct report_timeline t;
    struct report_cdf_counts cdf;
    json_t *summary = NULL;
    int rc = -1;

    if (dir == NULL || *dir == '\0')
        return err_set(e, ERR_INPUT, "report: no output directory given");
    if ((size_t)snprintf(cdf_path, sizeof(cdf_path), "%s/latency_cdf.csv", dir) >= sizeof(cdf_path))
        return err_set(e, ERR_INPUT, "report: directory name too long: %.100s...", dir);
    snprintf(summary_path, sizeof(summary_path), "%s/summary.json", dir);
    snprintf(timeline_path, sizeof(timeline_path), "%s/timeline.csv", dir);

    summary = report_summary_load(summary_path, e);
    if (summary == NULL)
        goto err;
    if (report_timeline_load(timeline_path, &t, e) != 0 || report_cdf_load(cdf_path, &cdf, e) != 0)
        goto err;
    report_charts_draw_all(dir, summary, &t, &cdf, drawn);
    if (report_html_write(dir, summary, drawn, &t, &cdf, e) != 0)
        goto err;
    rc = 0;
err:
    json_decref(summary);
    return rc;
}
