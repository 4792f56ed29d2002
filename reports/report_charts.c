/* report_charts.c -- the PNG charts of the report (see report_int.h).
 *
 * The charts are drawn by feeding the embedded gnuplot templates
 * (reports/timeline.gp and latency.gp, turned into C strings by embed.sh) to
 * gnuplot.  gnuplot runs with DIR as its working directory and reads the data
 * files by their fixed relative names, so no string from the inputs ever
 * enters a gnuplot script: the only values filled into a template are numbers
 * and fixed words computed here. */
#include "config.h"
#include "reports/report.h"
#include "reports/report_int.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"

const struct report_chart report_charts[] = {
    {.file = "chart_arrivals.png",
     .title = "Arrivals and replicas over time",
     .caption = "Arrivals per second (left axis) and replicas desired by the autoscaler and "
                "ready to serve (right axis).",
     .source = REPORT_CHART_TIMELINE},
    {.file = "chart_nodes.png",
     .title = "Nodes by pool and replicas over time",
     .caption = "Nodes up in each node pool, stacked so that the top is all pools together, "
                "with the replicas desired by the autoscaler and ready to serve.",
     .source = REPORT_CHART_TIMELINE},
    {.file = "chart_latency.png",
     .title = "Latency CDFs",
     .caption = "Cumulative distribution of queue wait, time to first token, time per output "
                "token and end-to-end latency (log scale, so zero latencies are not shown).",
     .source = REPORT_CHART_LATENCY},
    {.file = "chart_queue.png",
     .title = "Queued and running requests over time",
     .caption = "Requests waiting in queues and requests running, at the end of each interval.",
     .source = REPORT_CHART_TIMELINE},
    {.file = "chart_cost.png",
     .title = "Cumulative cost over time",
     .caption = "Cumulative cost of the cluster.",
     .source = REPORT_CHART_TIMELINE},
};

_Static_assert(sizeof(report_charts) / sizeof(report_charts[0]) == REPORT_NCHARTS,
               "REPORT_NCHARTS is the number of report_charts");

/* Write into BUF the numbers of T's node columns for @NODE_COLUMNS@: each
 * pool's, or "nodes" alone when there are none; empty without either. */
static void chart_node_columns(const struct report_timeline *t, char *buf, size_t len)
{
    size_t i, used = 0;

    buf[0] = '\0';
    if (t->npool_cols == 0 && t->nodes_col > 0)
        snprintf(buf, len, "%d", t->nodes_col);
    for (i = 0; i < t->npool_cols && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%d", i > 0 ? " " : "",
                                 t->pool_cols[i]);
}

/* Copy TPL with each "@NAME@" of NAMES replaced by the matching VALUES
 * entry; other '@' characters are kept.  Returns a malloc'd string, or NULL
 * when out of memory. */
static char *tpl_fill(const char *tpl, const char *const *names, const char *const *values,
                      size_t n)
{
    char *out = NULL;
    size_t len = 0, i;
    FILE *fp = open_memstream(&out, &len);
    const char *p = tpl;

    if (fp == NULL)
        return NULL;
    while (*p != '\0') {
        bool done = false;

        if (*p == '@') {
            for (i = 0; i < n && !done; i++) {
                size_t k = strlen(names[i]);

                if (strncmp(p + 1, names[i], k) == 0 && p[1 + k] == '@') {
                    fputs(values[i], fp);
                    p += k + 2;
                    done = true;
                }
            }
        }
        if (!done)
            fputc(*p++, fp);
    }
    if (fclose(fp) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* The gnuplot to run: $GNUPLOT, else the one configure found, else PATH's. */
static const char *gnuplot_program(void)
{
    const char *env = getenv("GNUPLOT");

    if (env != NULL && *env != '\0')
        return env;
    if (GNUPLOT_PATH[0] != '\0')
        return GNUPLOT_PATH;
    return "gnuplot";
}

/* Copy the last line gnuplot wrote on stderr (held in FP) into buf. */
static void gnuplot_last_words(FILE *fp, char *buf, size_t len)
{
    char chunk[512];
    size_t n;
    char *start, *end;

    buf[0] = '\0';
    if (fseek(fp, 0, SEEK_END) != 0)
        return;
    if (ftell(fp) > (long)sizeof(chunk) - 1)
        fseek(fp, -((long)sizeof(chunk) - 1), SEEK_END);
    else
        rewind(fp);
    n = fread(chunk, 1, sizeof(chunk) - 1, fp);
    chunk[n] = '\0';
    end = chunk + n;
    while (end > chunk && (end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\r'))
        *--end = '\0';
    start = strrchr(chunk, '\n');
    start = start != NULL ? start + 1 : chunk;
    while (*start == ' ' || *start == '\t')
        start++;
    snprintf(buf, len, "%s", start);
}

/* Run gnuplot in DIR with SCRIPT on its standard input (from a temporary
 * file, so an early exit cannot raise SIGPIPE here) and its output captured.
 * Returns 0 when it exits with status 0; otherwise -1 with an ERR_SYSTEM
 * naming the program and quoting gnuplot's last line of complaint. */
int report_run_gnuplot(const char *dir, const char *script, struct err *e)
{
    const char *prog = gnuplot_program();
    FILE *in = tmpfile(), *out = tmpfile();
    char words[256];
    int status, rc = -1;
    pid_t pid;

    if (in == NULL || out == NULL) {
        err_sys(e, errno, "temporary file for gnuplot");
        goto err;
    }
    if (fputs(script, in) == EOF || fflush(in) != 0) {
        err_sys(e, errno, "temporary file for gnuplot");
        goto err;
    }
    rewind(in);
    pid = fork();
    if (pid < 0) {
        err_sys(e, errno, "fork for %s", prog);
        goto err;
    }
    if (pid == 0) {
        char *const argv[] = {(char *)prog, NULL};

        if (chdir(dir) != 0 || dup2(fileno(in), 0) < 0 || dup2(fileno(out), 1) < 0 ||
            dup2(fileno(out), 2) < 0)
            _exit(126);
        execvp(prog, argv);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            err_sys(e, errno, "waiting for %s", prog);
            goto err;
        }
    }
    gnuplot_last_words(out, words, sizeof(words));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        rc = 0;
    else if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        err_set(e, ERR_SYSTEM, "cannot run %s", prog);
    else if (WIFEXITED(status))
        err_set(e, ERR_SYSTEM, "%s exited with status %d%s%s", prog, WEXITSTATUS(status),
                words[0] != '\0' ? ": " : "", words);
    else
        err_set(e, ERR_SYSTEM, "%s was killed by signal %d", prog,
                WIFSIGNALED(status) ? WTERMSIG(status) : 0);
err:
    if (in != NULL)
        fclose(in);
    if (out != NULL)
        fclose(out);
    return rc;
}

/* Whether DIR/FILE exists and starts with the PNG signature. */
static bool chart_exists(const char *dir, const char *file)
{
    static const unsigned char magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char head[8];
    char path[REPORT_PATH_MAX];
    FILE *fp;
    bool ok;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    fp = fopen(path, "rb");
    if (fp == NULL)
        return false;
    ok = fread(head, 1, sizeof(head), fp) == sizeof(head) && memcmp(head, magic, 8) == 0;
    fclose(fp);
    return ok;
}

/* Draw the charts of SOURCE by running SCRIPT (NULL when filling the
 * template ran out of memory) and set drawn[] for each one that came out.
 * Returns 0, or -1 after logging a warning: failing to draw is not an error
 * of the report. */
static int charts_draw(const char *dir, enum report_chart_source source, const char *script,
                       bool drawn[REPORT_NCHARTS])
{
    struct err e = {0};
    size_t i;

    if (script == NULL)
        err_set(&e, ERR_SYSTEM, "out of memory filling a chart template");
    if (script == NULL || report_run_gnuplot(dir, script, &e) != 0) {
        log_warn("%s: %s: charts left out of the report", dir, e.msg);
        return -1;
    }
    for (i = 0; i < REPORT_NCHARTS; i++)
        if (report_charts[i].source == source)
            drawn[i] = chart_exists(dir, report_charts[i].file);
    return 0;
}

/* Draw every chart the data allows; drawn[] tells which came out.  Charts of
 * an earlier report are removed first so that none is shown stale.  After a
 * failed gnuplot run no other is tried, so a missing gnuplot warns once. */
void report_charts_draw_all(const char *dir, json_t *summary, const struct report_timeline *t,
                            const struct report_cdf_counts *cdf, bool drawn[REPORT_NCHARTS])
{
    static const char *const names[] = {"XSCALE", "XUNIT", "INTERVAL_S", "NODE_COLUMNS"};
    const char *values[4];
    char interval[64], node_columns[16 * REPORT_MAX_POOL_COLUMNS];
    double interval_s, span_s;
    char path[REPORT_PATH_MAX];
    char *script;
    size_t i;
    int rc;

    memset(drawn, 0, REPORT_NCHARTS * sizeof(drawn[0]));
    for (i = 0; i < REPORT_NCHARTS; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, report_charts[i].file);
        unlink(path);
    }
    if (t->rows > 0) {
        /* Rows are intervals of a fixed length; with one row, the run's
         * duration says how long it was. */
        if (t->rows >= 2)
            interval_s = t->second_s - t->first_s;
        else
            interval_s = report_summary_num(summary, "sim.duration_s") - t->first_s;
        if (!(interval_s > 0))
            interval_s = 1;
        span_s = t->last_s + interval_s;
        snprintf(interval, sizeof(interval), "%.17g", interval_s);
        values[0] = span_s > 2 * 3600 ? "3600" : "60";
        values[1] = span_s > 2 * 3600 ? "hours" : "minutes";
        values[2] = interval;
        chart_node_columns(t, node_columns, sizeof(node_columns));
        values[3] = node_columns;
        script = tpl_fill(report_tpl_timeline_gp, names, values, 4);
        rc = charts_draw(dir, REPORT_CHART_TIMELINE, script, drawn);
        free(script);
        if (rc != 0)
            return;
    }
    if (cdf->total > 0)
        charts_draw(dir, REPORT_CHART_LATENCY, report_tpl_latency_gp, drawn);
}
