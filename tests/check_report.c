/* check_report.c -- unit tests of reports/: report_write() on fixture runs
 * written into a fresh temporary directory per test. */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "reports/report.h"

Suite *suite_report(void);

static const char *const chart_files[] = {
    "chart_arrivals.png", "chart_latency.png", "chart_queue.png", "chart_cost.png"};

/* ---- fixtures -------------------------------------------------------------- */

/* A fresh directory under $TMPDIR or /tmp; the caller removes it. */
static char *fixture_dir(void)
{
    const char *tmp = getenv("TMPDIR");
    char *dir = malloc(4096);

    ck_assert_ptr_nonnull(dir);
    snprintf(dir, 4096, "%s/check_report.XXXXXX", tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    return dir;
}

/* Remove DIR and the plain files in it, then free the name. */
static void fixture_remove(char *dir)
{
    char path[4096];
    struct dirent *ent;
    DIR *d = opendir(dir);

    if (d != NULL) {
        while ((ent = readdir(d)) != NULL) {
            if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof(path), "%s/%s", dir, ent->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
    free(dir);
}

static void fixture_write(const char *dir, const char *name, const char *text)
{
    char path[4096];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    ck_assert_int_ge(fputs(text, fp), 0);
    ck_assert_int_eq(fclose(fp), 0);
}

/* summary.json for scenario NAME (already JSON-escaped); GPU_HOURS is the
 * whole "gpu_hours" member with its comma (or "" to leave it out); EXTRA is
 * put before the last member. */
static void fixture_summary(const char *dir, const char *name, const char *gpu_hours,
                            const char *extra)
{
    char text[4096];

    snprintf(text, sizeof(text),
             "{\"scenario\":{\"name\":\"%s\",\"file\":\"workloads/examples/replay.yaml\",\"seed\":1},\n"
             " \"requests\":{\"arrived\":1234,\"completed\":1200,\"rejected\":21,\"timed_out\":9,"
             "\"in_flight_at_end\":4},\n"
             " \"latency_s\":{\n"
             "  \"queue\":{\"mean\":0.05,\"p50\":0.01,\"p90\":0.12,\"p99\":0.9,\"max\":2.5},\n"
             "  \"ttft\":{\"mean\":0.21,\"p50\":0.15,\"p90\":0.33,\"p99\":0.4321,\"max\":3.75},\n"
             "  \"tpot\":{\"mean\":0.031,\"p50\":0.03,\"p90\":0.04,\"p99\":0.05,\"max\":0.09},\n"
             "  \"e2e\":{\"mean\":7.5,\"p50\":6.0,\"p90\":14.0,\"p99\":25.5,\"max\":95.25}},\n"
             " \"tokens\":{\"prompt\":456789,\"output\":234567},\n"
             " \"throughput\":{\"requests_per_s\":0.114,\"output_tokens_per_s\":21.7},\n"
             " \"cost_usd\":{\"total\":12.345,\"per_1k_requests\":10.29},\n"
             " %s\n"
             " \"slo\":{\"ttft_s\":0.5,\"tpot_s\":null,\"e2e_s\":null,\"target\":0.99,"
             "\"attainment\":0.9912,\"met\":true},\n"
             " \"replicas\":{\"min\":1,\"mean\":2.75,\"max\":6},\n"
             " \"utilization\":{\"kv_mean\":0.42,\"busy_mean\":0.63},\n"
             " %s\n"
             " \"sim\":{\"duration_s\":10800,\"events\":987654,\"wall_s\":0.5,"
             "\"events_per_s\":1975308,\"seed\":1}}\n",
             name, gpu_hours, extra);
    fixture_write(dir, "summary.json", text);
}

#define GPU_HOURS "\"gpu_hours\":8.25,"

/* timeline.csv with ROWS intervals of INTERVAL_S seconds; EXTRA_COLUMN adds
 * a trailing text column the report does not know.  With POOL_A (and
 * POOL_B, when not NULL) the columns of a run with node pools follow
 * ttft_p99_s: nodes, then nodes_POOL_A and nodes_POOL_B, sharing the ready
 * replicas between them, one node each. */
static void fixture_timeline_pools(const char *dir, int rows, double interval_s,
                                   bool extra_column, const char *pool_a, const char *pool_b)
{
    size_t cap = 512 + (size_t)rows * 256, used;
    char *text = malloc(cap);
    double cost = 0;
    int i;

    ck_assert_ptr_nonnull(text);
    used = (size_t)snprintf(text, cap,
                            "time_s,arrivals,completed,rejected,timed_out,queue_len,running,"
                            "replicas_desired,replicas_ready,kv_util,busy_frac,cost_usd,"
                            "ttft_p50_s,ttft_p99_s%s",
                            extra_column ? ",pool" : "");
    if (pool_a != NULL)
        used += (size_t)snprintf(text + used, cap - used, ",nodes,nodes_%s", pool_a);
    if (pool_a != NULL && pool_b != NULL)
        used += (size_t)snprintf(text + used, cap - used, ",nodes_%s", pool_b);
    used += (size_t)snprintf(text + used, cap - used, "\n");
    for (i = 0; i < rows; i++) {
        double load = 1 + sin(i * 6.283 / rows * 2);
        int arrivals = (int)(load * 60 * interval_s / 60);
        int desired = 1 + (int)(load * 2.5);
        int ready = i > 0 ? 1 + (int)((1 + sin((i - 1) * 6.283 / rows * 2)) * 2.5) : 1;

        cost += ready * 2.5 * interval_s / 3600;
        used += (size_t)snprintf(text + used, cap - used,
                                 "%g,%d,%d,%d,%d,%d,%d,%d,%d,%.3f,%.3f,%.4f,%s,%s%s",
                                 i * interval_s, arrivals, arrivals - 1, i % 7 == 0, 0,
                                 (int)(load * 8) % 13, ready * 8, desired, ready, load / 2.2,
                                 load / 2.1, cost, i % 5 == 0 ? "" : "0.15",
                                 i % 5 == 0 ? "" : "0.43", extra_column ? ",a100" : "");
        if (pool_a != NULL && pool_b != NULL)
            used += (size_t)snprintf(text + used, cap - used, ",%d,%d,%d", ready, (ready + 1) / 2,
                                     ready - (ready + 1) / 2);
        else if (pool_a != NULL)
            used += (size_t)snprintf(text + used, cap - used, ",%d,%d", ready, ready);
        used += (size_t)snprintf(text + used, cap - used, "\n");
    }
    fixture_write(dir, "timeline.csv", text);
    free(text);
}

/* timeline.csv as llmsim wrote it before node pools. */
static void fixture_timeline(const char *dir, int rows, double interval_s, bool extra_column)
{
    fixture_timeline_pools(dir, rows, interval_s, extra_column, NULL, NULL);
}

/* latency_cdf.csv with a smooth CDF per metric around its median. */
static void fixture_cdf(const char *dir)
{
    static const char *const metrics[] = {"queue", "ttft", "tpot", "e2e"};
    static const double medians[] = {0.01, 0.15, 0.03, 6.0};
    char text[32768];
    size_t used;
    int m, i;

    used = (size_t)snprintf(text, sizeof(text), "metric,latency_s,cdf\n");
    for (m = 0; m < 4; m++) {
        for (i = 0; i <= 40; i++) {
            double z = (i - 20) / 8.0;
            double cdf = 0.5 * erfc(-z / sqrt(2));

            used += (size_t)snprintf(text + used, sizeof(text) - used, "%s,%.6g,%.6f\n",
                                     metrics[m], medians[m] * exp(z * 0.8), cdf);
        }
    }
    fixture_write(dir, "latency_cdf.csv", text);
}

/* A complete, valid run of three hours in one-minute intervals. */
static char *fixture_run(void)
{
    char *dir = fixture_dir();

    fixture_summary(dir, "replay", GPU_HOURS, "");
    fixture_timeline(dir, 180, 60, false);
    fixture_cdf(dir);
    return dir;
}

/* The whole of DIR/NAME, or NULL when it cannot be read. */
static char *slurp(const char *dir, const char *name, size_t *len_out)
{
    char path[4096];
    char *buf = NULL;
    long len;
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fp = fopen(path, "rb");
    if (fp == NULL)
        return NULL;
    if (fseek(fp, 0, SEEK_END) == 0 && (len = ftell(fp)) >= 0 && fseek(fp, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)len + 1);
        if (buf != NULL && fread(buf, 1, (size_t)len, fp) == (size_t)len) {
            buf[len] = '\0';
            if (len_out != NULL)
                *len_out = (size_t)len;
        } else {
            free(buf);
            buf = NULL;
        }
    }
    fclose(fp);
    return buf;
}

/* Whether report_write will find a gnuplot to run (same order it uses). */
static bool gnuplot_installed(void)
{
    const char *env = getenv("GNUPLOT");

    if (env != NULL && *env != '\0')
        return access(env, X_OK) == 0;
    if (GNUPLOT_PATH[0] != '\0')
        return access(GNUPLOT_PATH, X_OK) == 0;
    return system("command -v gnuplot >/dev/null 2>&1") == 0;
}

/* Assert that every chart of the page is a PNG of reasonable size, or say
 * why the check is skipped. */
static void assert_pngs(const char *dir, const char *html, bool timeline_charts)
{
    static const unsigned char magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    char tag[128];
    size_t i, len;

    if (!gnuplot_installed()) {
        printf("check_report: gnuplot not installed: skipping PNG checks\n");
        return;
    }
    for (i = 0; i < 4; i++) {
        bool wanted = timeline_charts || strcmp(chart_files[i], "chart_latency.png") == 0;
        char *png = slurp(dir, chart_files[i], &len);

        snprintf(tag, sizeof(tag), "<img src=\"%s\"", chart_files[i]);
        if (!wanted) {
            ck_assert_ptr_null(strstr(html, tag));
            free(png);
            continue;
        }
        ck_assert_msg(png != NULL, "%s not written", chart_files[i]);
        ck_assert_msg(len > 4000, "%s is only %zu bytes", chart_files[i], len);
        ck_assert_int_eq(memcmp(png, magic, sizeof(magic)), 0);
        ck_assert_msg(strstr(html, tag) != NULL, "no %s in the page", tag);
        free(png);
    }
}

/* Assert that the nodes chart is in the page and DIR as a PNG of reasonable
 * size, or say why the check is skipped. */
static void assert_nodes_png(const char *dir, const char *html)
{
    static const unsigned char magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    size_t len;
    char *png;

    if (!gnuplot_installed()) {
        printf("check_report: gnuplot not installed: skipping the nodes chart check\n");
        return;
    }
    png = slurp(dir, "chart_nodes.png", &len);
    ck_assert_msg(png != NULL, "chart_nodes.png not written");
    ck_assert_msg(len > 4000, "chart_nodes.png is only %zu bytes", len);
    ck_assert_int_eq(memcmp(png, magic, sizeof(magic)), 0);
    ck_assert_ptr_nonnull(strstr(html, "<img src=\"chart_nodes.png\""));
    free(png);
}

/* The members of summary.json that a run with two node pools, an
 * autoscaler, spot interruptions and a response cache adds (for
 * fixture_summary's EXTRA): cost_usd again with its new keys (the later
 * member wins), pools, events with one undocumented count, cache. */
#define POOLS_SUMMARY                                                                           \
    "\"cost_usd\":{\"total\":12.345,\"per_1k_requests\":10.29,"                                 \
    "\"by_pool\":{\"spot\":3.0,\"ondemand\":9.345},\"on_demand_equivalent\":21.345,"            \
    "\"savings_vs_on_demand\":9.0},\n"                                                          \
    " \"pools\":{\"spot\":{\"cost_usd\":3.0,\"node_hours\":2.5,\"nodes_max\":4,"                \
    "\"provisioned\":7,\"removed_idle\":3,\"preemptions\":2},"                                  \
    "\"ondemand\":{\"cost_usd\":9.345,\"node_hours\":1.825,\"nodes_max\":3,"                    \
    "\"provisioned\":5,\"removed_idle\":4,\"preemptions\":0}},\n"                               \
    " \"events\":{\"cold_starts\":12,\"scale_ups\":9,\"scale_downs\":8,\"hpa_syncs\":4321,"     \
    "\"preemptions\":3,\"requeued\":17,\"lost_tokens\":23456.0,\"activations\":2,"              \
    "\"warm_pool_hits\":6},\n"                                                                  \
    " \"cache\":{\"lookups\":1000,\"hits\":437,\"hit_ratio\":0.437,\"hit_ratio_all\":0.3541,"   \
    "\"tokens_saved\":1234567.0,\"gpu_s_saved\":7384.5,\"evictions\":55},"

/* ---- tests ----------------------------------------------------------------- */

START_TEST(test_full_report)
{
    char *dir = fixture_run();
    struct err e = {0};
    char *html;

    unsetenv("GNUPLOT");
    ck_assert_msg(report_write(dir, &e) == 0, "%s", e.msg);
    html = slurp(dir, "report.html", NULL);
    ck_assert_ptr_nonnull(html);
    ck_assert_ptr_nonnull(strstr(html, "<title>replay"));
    ck_assert_ptr_nonnull(strstr(html, ">1234<"));      /* arrived */
    ck_assert_ptr_nonnull(strstr(html, ">1200<"));      /* completed */
    ck_assert_ptr_nonnull(strstr(html, ">21<"));        /* rejected */
    ck_assert_ptr_nonnull(strstr(html, ">9<"));         /* timed out */
    ck_assert_ptr_nonnull(strstr(html, "99.12%"));      /* SLO attainment */
    ck_assert_ptr_nonnull(strstr(html, "target 99%"));  /* SLO target */
    ck_assert_ptr_nonnull(strstr(html, "<strong>met")); /* SLO verdict */
    ck_assert_ptr_nonnull(strstr(html, "$12.35"));      /* cost */
    ck_assert_ptr_nonnull(strstr(html, ">8.25<"));      /* GPU-hours */
    ck_assert_ptr_nonnull(strstr(html, ">2.75<"));      /* replicas mean */
    ck_assert_ptr_nonnull(strstr(html, "max 6"));       /* replicas max */
    ck_assert_ptr_nonnull(strstr(html, "432 ms"));      /* ttft p99 */
    ck_assert_ptr_nonnull(strstr(html, "95.2 s"));      /* e2e max: 95.25 s */
    ck_assert_ptr_nonnull(strstr(html, ">987654<"));    /* events */
    ck_assert_ptr_nonnull(strstr(html, "href=\"summary.json\""));
    ck_assert_ptr_nonnull(strstr(html, "href=\"timeline.csv\""));
    ck_assert_ptr_null(strstr(html, "Other figures"));
    assert_pngs(dir, html, true);
    free(html);
    fixture_remove(dir);
}
END_TEST

START_TEST(test_short_run_in_minutes)
{
    char *dir = fixture_dir();
    struct err e = {0};
    char *html;

    unsetenv("GNUPLOT");
    fixture_summary(dir, "short", GPU_HOURS, "");
    fixture_timeline(dir, 30, 60, false);
    fixture_cdf(dir);
    ck_assert_msg(report_write(dir, &e) == 0, "%s", e.msg);
    html = slurp(dir, "report.html", NULL);
    ck_assert_ptr_nonnull(html);
    assert_pngs(dir, html, true);
    free(html);
    fixture_remove(dir);
}
END_TEST

START_TEST(test_without_gnuplot)
{
    char *dir = fixture_run();
    struct err e = {0};
    char *html, *again;

    setenv("GNUPLOT", "/nonexistent", 1);
    log_set_level(LOG_ERROR);
    ck_assert_msg(report_write(dir, &e) == 0, "%s", e.msg);
    html = slurp(dir, "report.html", NULL);
    ck_assert_ptr_nonnull(html);
    ck_assert_ptr_null(strstr(html, "<img"));
    ck_assert_ptr_nonnull(strstr(html, "gnuplot could not draw"));
    ck_assert_ptr_nonnull(strstr(html, "99.12%"));
    /* The page depends on the inputs only. */
    ck_assert_int_eq(report_write(dir, &e), 0);
    again = slurp(dir, "report.html", NULL);
    ck_assert_ptr_nonnull(again);
    ck_assert_str_eq(html, again);
    free(again);
    free(html);
    fixture_remove(dir);
}
END_TEST

START_TEST(test_hostile_name_escaped)
{
    char *dir = fixture_run();
    struct err e = {0};
    char *html;

    setenv("GNUPLOT", "/nonexistent", 1);
    log_set_level(LOG_ERROR);
    fixture_summary(dir, "<script>alert('x')<\\/script> & \\\"co\\\"", GPU_HOURS, "");
    ck_assert_msg(report_write(dir, &e) == 0, "%s", e.msg);
    html = slurp(dir, "report.html", NULL);
    ck_assert_ptr_nonnull(html);
    ck_assert_ptr_null(strstr(html, "<script"));
    ck_assert_ptr_null(strstr(html, "\"co\""));
    ck_assert_ptr_nonnull(
        strstr(html, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;co&quot;"));
    free(html);
    fixture_remove(dir);
}
END_TEST

START_TEST(test_missing_summary)
{
    char *dir = fixture_run();
    struct err e = {0};
    char path[4096];

    snprintf(path, sizeof(path), "%s/summary.json", dir);
    unlink(path);
    ck_assert_int_eq(report_write(dir, &e), -1);
    ck_assert_int_eq(e.code, ERR_SYSTEM);
    ck_assert_msg(strstr(e.msg, path) != NULL, "message does not name %s: %s", path, e.msg);
    fixture_remove(dir);
}
END_TEST

START_TEST(test_missing_timeline)
{
    char *dir = fixture_run();
    struct err e = {0};
    char path[4096];

    snprintf(path, sizeof(path), "%s/timeline.csv", dir);
    unlink(path);
    ck_assert_int_eq(report_write(dir, &e), -1);
    ck_assert_int_eq(e.code, ERR_SYSTEM);
    ck_assert_msg(strstr(e.msg, path) != NULL, "message does not name %s: %s", path, e.msg);
    fixture_remove(dir);
}
END_TEST

START_TEST(test_invalid_json)
{
    char *dir = fixture_run();
    struct err e = {0};
    char want[4096];

    fixture_write(dir, "summary.json", "{\"scenario\": {\"name\": \"x\"},\n"
                                       " \"requests\": {\"arrived\": 3,\n"
                                       "   \"completed\": }\n"
                                       "}\n");
    ck_assert_int_eq(report_write(dir, &e), -1);
    ck_assert_int_eq(e.code, ERR_INPUT);
    snprintf(want, sizeof(want), "%s/summary.json:3:", dir);
    ck_assert_msg(strstr(e.msg, want) != NULL, "wanted %s in: %s", want, e.msg);
    fixture_remove(dir);
}
END_TEST

START_TEST(test_missing_or_mistyped_key)
{
    char *dir = fixture_run();
    struct err e = {0};

    fixture_summary(dir, "replay", "", "");
    ck_assert_int_eq(report_write(dir, &e), -1);
    ck_assert_int_eq(e.code, ERR_INPUT);
    ck_assert_msg(strstr(e.msg, "summary.json: missing key \"gpu_hours\"") != NULL, "%s", e.msg);

    fixture_summary(dir, "replay", "\"gpu_hours\":\"lots\",", "");
    ck_assert_int_eq(report_write(dir, &e), -1);
    ck_assert_msg(strstr(e.msg, "\"gpu_hours\" should be a number, not a string") != NULL, "%s",
                  e.msg);

    fixture_summary(dir, "replay", GPU_HOURS, "\"latency_s\":7,");
    ck_assert_int_eq(report_write(dir, &e), -1);
    ck_assert_msg(strstr(e.msg, "\"latency_s\" should be an object, not a number") != NULL, "%s",
                  e.msg);
    fixture_remove(dir);
}
END_TEST

START_TEST(test_malformed_timeline_line)
{
    char *dir = fixture_run();
    struct err e = {0};
    char want[4096];

    fixture_write(dir, "timeline.csv",
                  "time_s,arrivals,completed,rejected,timed_out,queue_len,running,"
                  "replicas_desired,replicas_ready,kv_util,busy_frac,cost_usd,ttft_p50_s,ttft_p99_s\n"
                  "0,5,4,0,0,1,4,1,1,0.5,0.5,0.01,0.1,0.2\n"
                  "60,5,4,0,0,1,4,1,1,0.5,0.5,0.02,,\n"
                  "120,five,4,0,0,1,4,1,1,0.5,0.5,0.03,0.1,0.2\n");
    ck_assert_int_eq(report_write(dir, &e), -1);
    ck_assert_int_eq(e.code, ERR_INPUT);
    snprintf(want, sizeof(want), "%s/timeline.csv:4: column arrivals: \"five\"", dir);
    ck_assert_msg(strstr(e.msg, want) != NULL, "wanted %s in: %s", want, e.msg);

    fixture_write(dir, "timeline.csv",
                  "time_s,arrivals,completed,rejected,timed_out,queue_len,running,"
                  "replicas_desired,replicas_ready,kv_util,busy_frac,cost_usd,ttft_p50_s,ttft_p99_s\n"
                  "0,5,4,0,0,1,4,1,1,0.5,0.5,0.01,0.1,0.2\n"
                  "60,5,4\n");
    ck_assert_int_eq(report_write(dir, &e), -1);
    snprintf(want, sizeof(want), "%s/timeline.csv:3: 3 fields, but the header has 14", dir);
    ck_assert_msg(strstr(e.msg, want) != NULL, "wanted %s in: %s", want, e.msg);

    fixture_write(dir, "timeline.csv", "time_s,arrivals\n");
    ck_assert_int_eq(report_write(dir, &e), -1);
    ck_assert_msg(strstr(e.msg, "timeline.csv:1: missing column \"completed\"") != NULL, "%s",
                  e.msg);
    fixture_remove(dir);
}
END_TEST

START_TEST(test_malformed_cdf_line)
{
    char *dir = fixture_run();
    struct err e = {0};
    char want[4096];

    fixture_write(dir, "latency_cdf.csv", "metric,latency_s,cdf\nttft,0.1,0.5\nttft,0.2,1.5\n");
    ck_assert_int_eq(report_write(dir, &e), -1);
    ck_assert_int_eq(e.code, ERR_INPUT);
    snprintf(want, sizeof(want), "%s/latency_cdf.csv:3: cdf 1.5 is outside [0, 1]", dir);
    ck_assert_msg(strstr(e.msg, want) != NULL, "wanted %s in: %s", want, e.msg);
    fixture_remove(dir);
}
END_TEST

START_TEST(test_empty_timeline)
{
    char *dir = fixture_run();
    struct err e = {0};
    char *html;

    unsetenv("GNUPLOT");
    fixture_timeline(dir, 0, 60, false);
    ck_assert_msg(report_write(dir, &e) == 0, "%s", e.msg);
    html = slurp(dir, "report.html", NULL);
    ck_assert_ptr_nonnull(html);
    ck_assert_ptr_nonnull(strstr(html, "timeline.csv has no rows"));
    assert_pngs(dir, html, false);
    free(html);
    fixture_remove(dir);
}
END_TEST

START_TEST(test_extra_summary_sections)
{
    char *dir = fixture_run();
    struct err e = {0};
    char *html;

    setenv("GNUPLOT", "/nonexistent", 1);
    log_set_level(LOG_ERROR);
    fixture_summary(dir, "replay", GPU_HOURS,
                    "\"cost_usd\":{\"total\":12.345,\"per_1k_requests\":10.29,"
                    "\"by_pool\":{\"a100\":7.5,\"h100\":4.845},\"reserved_usd\":2.25},\n"
                    " \"cache\":{\"hit_ratio\":0.4375,\"tiers\":[\"hbm\",\"<dram>\"]},\n"
                    " \"events\":{\"cold_starts\":3,\"by_reason\":{\"oom\":1}},");
    ck_assert_msg(report_write(dir, &e) == 0, "%s", e.msg);
    html = slurp(dir, "report.html", NULL);
    ck_assert_ptr_nonnull(html);
    ck_assert_ptr_nonnull(strstr(html, "Other figures"));
    ck_assert_ptr_nonnull(strstr(html, "<h3>cost_usd</h3>"));
    ck_assert_ptr_nonnull(strstr(html, "<td>reserved_usd</td><td>2.25</td>"));
    ck_assert_ptr_nonnull(strstr(html, "<td>tiers[1]</td><td>&lt;dram&gt;</td>"));
    ck_assert_ptr_nonnull(strstr(html, "<td>by_reason.oom</td><td>1</td>"));
    /* Keys the page shows elsewhere are not repeated: the cost by pool is in
     * the Cost section (a row per pool of by_pool when there is no "pools"),
     * the hit ratio under Response cache, the cold starts under Autoscaling. */
    ck_assert_ptr_null(strstr(html, "<td>total</td>"));
    ck_assert_ptr_null(strstr(html, "<td>by_pool.a100</td>"));
    ck_assert_ptr_null(strstr(html, "<td>hit_ratio</td>"));
    ck_assert_ptr_null(strstr(html, "<td>cold_starts</td>"));
    ck_assert_ptr_nonnull(strstr(html, "<tr><td>a100</td><td>$7.50</td><td>60.8%</td>"));
    ck_assert_ptr_nonnull(strstr(html, "<tr><td>h100</td><td>$4.84</td>"));
    ck_assert_ptr_nonnull(strstr(html, "<td>hit ratio (lookups)</td><td>43.8%</td>"));
    ck_assert_ptr_null(strstr(html, "hit ratio (all requests)"));
    ck_assert_ptr_nonnull(strstr(html, "<td>cold starts</td><td>3</td>"));
    free(html);
    fixture_remove(dir);
}
END_TEST

START_TEST(test_extra_timeline_column)
{
    char *dir = fixture_run();
    struct err e = {0};
    char *html;

    unsetenv("GNUPLOT");
    fixture_timeline(dir, 90, 60, true);
    ck_assert_msg(report_write(dir, &e) == 0, "%s", e.msg);
    html = slurp(dir, "report.html", NULL);
    ck_assert_ptr_nonnull(html);
    assert_pngs(dir, html, true);
    free(html);
    fixture_remove(dir);
}
END_TEST

START_TEST(test_pools_events_cache)
{
    char *dir = fixture_run();
    struct err e = {0};
    char *html, *cost, *events, *cache, *charts;

    unsetenv("GNUPLOT");
    fixture_summary(dir, "replay", GPU_HOURS, POOLS_SUMMARY);
    fixture_timeline_pools(dir, 180, 60, false, "spot", "ondemand");
    ck_assert_msg(report_write(dir, &e) == 0, "%s", e.msg);
    html = slurp(dir, "report.html", NULL);
    ck_assert_ptr_nonnull(html);
    cost = strstr(html, "<h2>Cost</h2>");
    events = strstr(html, "<h2>Autoscaling and reliability</h2>");
    cache = strstr(html, "<h2>Response cache</h2>");
    charts = strstr(html, "<h2>Charts</h2>");
    ck_assert_ptr_nonnull(cost);
    ck_assert_ptr_nonnull(events);
    ck_assert_ptr_nonnull(cache);
    ck_assert_ptr_nonnull(charts);
    ck_assert(cost < events && events < cache && cache < charts);

    /* Cost: a row per pool (cost, share, node-hours, per node-hour, max
     * nodes, provisioned, removed idle, interruptions), the total, the
     * on-demand equivalent and the savings. */
    ck_assert_ptr_nonnull(strstr(cost, "<tr><td>spot</td><td>$3.00</td><td>24.3%</td><td>2.50</td>"
                                       "<td>$1.20</td><td>4</td><td>7</td><td>3</td><td>2</td></tr>"));
    ck_assert_ptr_nonnull(strstr(cost, "<tr><td>ondemand</td><td>$9.35</td><td>75.7%</td>"
                                       "<td>1.82</td><td>$5.12</td><td>3</td><td>5</td><td>4</td>"
                                       "<td>0</td></tr>"));
    ck_assert_ptr_nonnull(strstr(cost, "<th>total</th><th>$12.35</th><th>100%</th><th>4.33</th>"
                                       "<th>$2.85</th><th></th><th>12</th><th>7</th><th>2</th></tr>"));
    ck_assert_ptr_nonnull(strstr(cost, "on-demand equivalent</div><div class=\"value\">$21.34"));
    ck_assert_ptr_nonnull(strstr(cost, "savings vs on-demand</div><div class=\"value\">$9.00"));
    ck_assert_ptr_nonnull(strstr(cost, "42.2% of the on-demand equivalent"));

    /* Events, an undocumented one under its own name. */
    ck_assert_ptr_nonnull(strstr(events, "<td>cold starts</td><td>12</td>"));
    ck_assert_ptr_nonnull(strstr(events, "<td>scale-ups</td><td>9</td>"));
    ck_assert_ptr_nonnull(strstr(events, "<td>scale-downs</td><td>8</td>"));
    ck_assert_ptr_nonnull(strstr(events, "<td>HPA syncs</td><td>4,321</td>"));
    ck_assert_ptr_nonnull(strstr(events, "<td>replicas preempted</td><td>3</td>"));
    ck_assert_ptr_nonnull(strstr(events, "<td>requests requeued</td><td>17</td>"));
    ck_assert_ptr_nonnull(strstr(events, "<td>tokens lost</td><td>23,456</td>"));
    ck_assert_ptr_nonnull(strstr(events, "<td>activations</td><td>2</td>"));
    ck_assert_ptr_nonnull(strstr(events, "<td>warm_pool_hits</td><td>6</td>"));

    /* The cache. */
    ck_assert_ptr_nonnull(strstr(cache, "<td>hit ratio (lookups)</td><td>43.7%</td>"));
    ck_assert_ptr_nonnull(strstr(cache, "<td>hit ratio (all requests)</td><td>35.4%</td>"));
    ck_assert_ptr_nonnull(strstr(cache, "<td>lookups</td><td>1,000</td>"));
    ck_assert_ptr_nonnull(strstr(cache, "<td>hits</td><td>437</td>"));
    ck_assert_ptr_nonnull(strstr(cache, "<td>tokens saved</td><td>1,234,567</td>"));
    ck_assert_ptr_nonnull(strstr(cache, "<td>GPU time saved</td><td>7,385 s (2.05 GPU-hours)</td>"));
    ck_assert_ptr_nonnull(strstr(cache, "<td>evictions</td><td>55</td>"));

    /* Everything is shown in its place: nothing left for "Other figures". */
    ck_assert_ptr_null(strstr(html, "Other figures"));

    /* The nodes chart, right after arrivals and replicas, and its marks. */
    if (gnuplot_installed()) {
        char *fig = strstr(html, "<img src=\"chart_nodes.png\"");

        ck_assert_ptr_nonnull(fig);
        ck_assert_ptr_nonnull(strstr(fig, "Spot interruptions: 2 nodes (spot 2)."));
        ck_assert_ptr_nonnull(strstr(fig, "Cold starts: 12 replicas started during the run."));
        ck_assert_ptr_nonnull(strstr(html, "<img src=\"chart_arrivals.png\""));
        ck_assert(strstr(html, "<img src=\"chart_arrivals.png\"") < fig);
        ck_assert(fig < strstr(html, "<img src=\"chart_latency.png\""));
    }
    assert_nodes_png(dir, html);
    assert_pngs(dir, html, true);
    free(html);
    fixture_remove(dir);
}
END_TEST

/* A run from before node pools: no nodes chart, and none of the new
 * sections, not even empty. */
START_TEST(test_without_pools)
{
    char *dir = fixture_run();
    struct err e = {0};
    char path[4096];
    char *html;

    unsetenv("GNUPLOT");
    /* A chart of an earlier report is not shown stale. */
    fixture_write(dir, "chart_nodes.png", "stale");
    ck_assert_msg(report_write(dir, &e) == 0, "%s", e.msg);
    html = slurp(dir, "report.html", NULL);
    ck_assert_ptr_nonnull(html);
    snprintf(path, sizeof(path), "%s/chart_nodes.png", dir);
    ck_assert_int_ne(access(path, F_OK), 0);
    ck_assert_ptr_null(strstr(html, "chart_nodes.png"));
    ck_assert_ptr_null(strstr(html, "<h2>Cost</h2>"));
    ck_assert_ptr_null(strstr(html, "Autoscaling and reliability"));
    ck_assert_ptr_null(strstr(html, "Response cache"));
    ck_assert_ptr_null(strstr(html, "Spot interruptions"));
    assert_pngs(dir, html, true);
    free(html);
    fixture_remove(dir);
}
END_TEST

/* One pool, a static cluster: every event count zero, no savings. */
START_TEST(test_one_pool_nothing_happened)
{
    char *dir = fixture_run();
    struct err e = {0};
    char *html, *cost;

    unsetenv("GNUPLOT");
    fixture_summary(dir, "replay", GPU_HOURS,
                    "\"cost_usd\":{\"total\":12.345,\"per_1k_requests\":10.29,"
                    "\"by_pool\":{\"default\":12.345},\"on_demand_equivalent\":12.345,"
                    "\"savings_vs_on_demand\":0.0},\n"
                    " \"pools\":{\"default\":{\"cost_usd\":12.345,\"node_hours\":2.41,"
                    "\"nodes_max\":2,\"provisioned\":2,\"removed_idle\":0,\"preemptions\":0}},\n"
                    " \"events\":{\"cold_starts\":0,\"scale_ups\":0,\"scale_downs\":0,"
                    "\"hpa_syncs\":0,\"preemptions\":0,\"requeued\":0,\"lost_tokens\":0.0},");
    fixture_timeline_pools(dir, 60, 60, false, "default", NULL);
    ck_assert_msg(report_write(dir, &e) == 0, "%s", e.msg);
    html = slurp(dir, "report.html", NULL);
    ck_assert_ptr_nonnull(html);
    cost = strstr(html, "<h2>Cost</h2>");
    ck_assert_ptr_nonnull(cost);
    ck_assert_ptr_nonnull(strstr(cost, "<tr><td>default</td><td>$12.35</td><td>100.0%</td>"));
    ck_assert_ptr_nonnull(strstr(cost, "on-demand equivalent"));
    ck_assert_ptr_null(strstr(html, "savings"));
    ck_assert_ptr_nonnull(strstr(html, "<h2>Autoscaling and reliability</h2>\n<p>No cold starts"));
    ck_assert_ptr_null(strstr(html, "<td>cold starts</td>"));
    ck_assert_ptr_null(strstr(html, "Response cache"));
    ck_assert_ptr_null(strstr(html, "class=\"mark\""));
    ck_assert_ptr_null(strstr(html, "Other figures"));
    assert_nodes_png(dir, html);
    free(html);
    fixture_remove(dir);
}
END_TEST

/* Pool names come from the user's YAML: in the page they are escaped; in
 * the chart they come from the CSV header, never through the script. */
START_TEST(test_hostile_pool_name_escaped)
{
    char *dir = fixture_run();
    struct err e = {0};
    char *html;

    unsetenv("GNUPLOT");
    fixture_summary(dir, "replay", GPU_HOURS,
                    "\"cost_usd\":{\"total\":12.345,\"per_1k_requests\":10.29,"
                    "\"by_pool\":{\"<b>x</b>\":2.345,\"d'\\\"q\\\"\":10.0,\"<i>only</i>\":0.5}},\n"
                    " \"pools\":{\"<b>x</b>\":{\"cost_usd\":2.345,\"node_hours\":1,"
                    "\"nodes_max\":1,\"provisioned\":1,\"removed_idle\":0,\"preemptions\":1},"
                    "\"d'\\\"q\\\"\":{\"cost_usd\":10.0,\"node_hours\":2,\"preemptions\":0}},\n"
                    " \"events\":{\"<s>e</s>\":4},");
    fixture_timeline_pools(dir, 120, 60, false, "<b>x</b>", "\"; set output '/tmp/x' #");
    ck_assert_msg(report_write(dir, &e) == 0, "%s", e.msg);
    html = slurp(dir, "report.html", NULL);
    ck_assert_ptr_nonnull(html);
    ck_assert_ptr_null(strstr(html, "<b>"));
    ck_assert_ptr_null(strstr(html, "<i>"));
    ck_assert_ptr_null(strstr(html, "<s>"));
    ck_assert_ptr_nonnull(strstr(html, "<tr><td>&lt;b&gt;x&lt;/b&gt;</td><td>$2.35</td>"));
    ck_assert_ptr_nonnull(strstr(html, "<tr><td>d&#39;&quot;q&quot;</td><td>$10.00</td>"));
    ck_assert_ptr_nonnull(strstr(html, "<tr><td>&lt;i&gt;only&lt;/i&gt;</td><td>$0.50</td>"));
    ck_assert_ptr_nonnull(strstr(html, "<td>&lt;s&gt;e&lt;/s&gt;</td><td>4</td>"));
    if (gnuplot_installed())
        ck_assert_ptr_nonnull(strstr(html, "Spot interruptions: 1 node (&lt;b&gt;x&lt;/b&gt; 1)."));
    assert_nodes_png(dir, html);
    free(html);
    fixture_remove(dir);
}
END_TEST

START_TEST(test_bad_pools_input)
{
    char *dir = fixture_run();
    struct err e = {0};
    char want[4096];

    fixture_summary(dir, "replay", GPU_HOURS,
                    "\"pools\":{\"spot\":{\"cost_usd\":\"cheap\",\"node_hours\":1}},");
    ck_assert_int_eq(report_write(dir, &e), -1);
    ck_assert_int_eq(e.code, ERR_INPUT);
    ck_assert_msg(strstr(e.msg, "\"pools.spot.cost_usd\" should be a number, not a string") != NULL,
                  "%s", e.msg);

    fixture_summary(dir, "replay", GPU_HOURS, "\"cache\":{\"hits\":null},");
    ck_assert_int_eq(report_write(dir, &e), -1);
    ck_assert_msg(strstr(e.msg, "\"cache.hits\" should be a number, not null") != NULL, "%s",
                  e.msg);

    fixture_summary(dir, "replay", GPU_HOURS, POOLS_SUMMARY);
    fixture_write(dir, "timeline.csv",
                  "time_s,arrivals,completed,rejected,timed_out,queue_len,running,"
                  "replicas_desired,replicas_ready,kv_util,busy_frac,cost_usd,ttft_p50_s,ttft_p99_s,"
                  "nodes,nodes_spot,nodes_ondemand\n"
                  "0,5,4,0,0,1,4,1,1,0.5,0.5,0.01,0.1,0.2,1,1,0\n"
                  "60,5,4,0,0,1,4,1,1,0.5,0.5,0.02,,,2,1,one\n");
    ck_assert_int_eq(report_write(dir, &e), -1);
    ck_assert_int_eq(e.code, ERR_INPUT);
    snprintf(want, sizeof(want), "%s/timeline.csv:3: column nodes_ondemand: \"one\" is not a number",
             dir);
    ck_assert_msg(strstr(e.msg, want) != NULL, "wanted %s in: %s", want, e.msg);
    fixture_remove(dir);
}
END_TEST

Suite *suite_report(void)
{
    Suite *s = suite_create("report");
    TCase *tc = tcase_create("report");

    /* gnuplot runs twice per report; sanitizer builds are slower. */
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_full_report);
    tcase_add_test(tc, test_short_run_in_minutes);
    tcase_add_test(tc, test_without_gnuplot);
    tcase_add_test(tc, test_hostile_name_escaped);
    tcase_add_test(tc, test_missing_summary);
    tcase_add_test(tc, test_missing_timeline);
    tcase_add_test(tc, test_invalid_json);
    tcase_add_test(tc, test_missing_or_mistyped_key);
    tcase_add_test(tc, test_malformed_timeline_line);
    tcase_add_test(tc, test_malformed_cdf_line);
    tcase_add_test(tc, test_empty_timeline);
    tcase_add_test(tc, test_extra_summary_sections);
    tcase_add_test(tc, test_extra_timeline_column);
    tcase_add_test(tc, test_pools_events_cache);
    tcase_add_test(tc, test_without_pools);
    tcase_add_test(tc, test_one_pool_nothing_happened);
    tcase_add_test(tc, test_hostile_pool_name_escaped);
    tcase_add_test(tc, test_bad_pools_input);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite_report());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
