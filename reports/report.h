/* report.h -- the HTML report of a simulation run.
 *
 * Reads what a run wrote into DIR (summary.json, timeline.csv,
 * latency_cdf.csv), draws PNG charts with gnuplot (arrivals and replicas over
 * time, latency CDFs, queue length, cost) and writes DIR/report.html, a single
 * page with no external assets that shows the summary and the charts.
 * gnuplot is the one found by ./configure, or $GNUPLOT, or `gnuplot` on PATH;
 * when none runs, the page is written without charts and a warning is logged. */
#ifndef LLM_REPORT_H
#define LLM_REPORT_H

#include "common/err.h"

int report_write(const char *dir, struct err *e);

#endif
