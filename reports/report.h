/* report.h -- the HTML report of a simulation run.
 *
 * Reads what a run wrote into DIR (summary.json, timeline.csv,
 * latency_cdf.csv), draws PNG charts with gnuplot (arrivals and replicas over
 * time, nodes by pool, latency CDFs, queue length, cost) and writes
 * DIR/report.html, a single page with no external assets that shows the
 * summary (with, when the run reports them, the cost by node pool, the
 * autoscaling and reliability events and the response cache) and the charts.
 * gnuplot is the one found by ./configure, or $GNUPLOT, or `gnuplot` on PATH;
 * when none runs, the page is written without charts and a warning is logged. */
#ifndef LLM_REPORT_H
#define LLM_REPORT_H

#include <stdio.h>

#include "common/err.h"

int report_write(const char *dir, struct err *e);

/* Helpers the report is built with, shared with other pages (llmbench's).
 *
 * report_run_gnuplot: run gnuplot (as above) in DIR with SCRIPT on its
 * standard input, its output captured.  Returns 0 when it exits with status
 * 0; otherwise -1 with an ERR_SYSTEM naming the program and quoting
 * gnuplot's last line of complaint.  SCRIPT must hold no untrusted text.
 *
 * report_html_escape: write S to OUT with the characters HTML gives meaning
 * to (& < > " ') escaped. */
int report_run_gnuplot(const char *dir, const char *script, struct err *e);
void report_html_escape(FILE *out, const char *s);

#endif
