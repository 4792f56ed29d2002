/* cmd_run.c -- `llmsim run SCENARIO.yaml`: simulate a scenario, write its
 * results and report, print a short summary. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/duration.h"
#include "common/log.h"
#include "common/path.h"
#include "reports/report.h"
#include "sim/command.h"
#include "sim/scenario.h"
#include "sim/sim.h"

static void cmd_run_usage(FILE *f)
{
    fprintf(f,
            "usage: llmsim run SCENARIO.yaml [-o DIR] [--seed N] [--set KEY.PATH=VALUE]...\n"
            "\n"
            "Simulate the scenario and write DIR/summary.json, DIR/timeline.csv,\n"
            "DIR/latency_cdf.csv and DIR/report.html (with gnuplot charts).\n"
            "\n"
            "options:\n"
            "  -o, --output DIR        output directory (default: out/NAME, NAME from the scenario)\n"
            "      --seed N            random seed (overrides the scenario's seed)\n"
            "      --set KEY=VALUE     override a scenario key, e.g. --set cluster.replicas=8,\n"
            "                          --set workload.trace=other.csv (repeatable; VALUE is YAML)\n"
            "      --requests          also write DIR/requests.csv, one row per request\n"
            "      --reproducible      write 0 for wall-clock figures so that summary.json is\n"
            "                          byte-identical across runs of the same scenario and seed\n"
            "      --no-report         skip report.html and the charts\n"
            "  -q, --quiet             print nothing but errors\n"
            "  -v, --verbose           more log output\n"
            "  -h, --help              this help\n"
            "\n"
            "Exit status: 0 ok, 1 failure (I/O), 2 bad input (the message names FILE:LINE).\n");
}

static double cmd_run_get(json_t *summary, const char *a, const char *b, const char *c)
{
    json_t *x = json_object_get(summary, a);

    if (b)
        x = json_object_get(x, b);
    if (c)
        x = json_object_get(x, c);
    return json_is_number(x) ? json_number_value(x) : 0.0;
}

static void cmd_run_print(json_t *sm, const struct scenario *sc, const char *dir, bool report)
{
    char span[32], d1[32], d2[32], d3[32], d4[32], d5[32], d6[32];

    duration_format(cmd_run_get(sm, "sim", "duration_s", NULL), span, sizeof(span));
    printf("%s (seed %llu): %.0f requests over %s simulated in %.2f s (%.2fM events, %.1fM events/s)\n", sc->name,
           (unsigned long long)sc->seed, cmd_run_get(sm, "requests", "arrived", NULL), span,
           cmd_run_get(sm, "sim", "wall_s", NULL), cmd_run_get(sm, "sim", "events", NULL) / 1e6,
           cmd_run_get(sm, "sim", "events_per_s", NULL) / 1e6);
    printf("  completed %.0f, rejected %.0f, timed out %.0f\n", cmd_run_get(sm, "requests", "completed", NULL),
           cmd_run_get(sm, "requests", "rejected", NULL), cmd_run_get(sm, "requests", "timed_out", NULL));
    duration_format(cmd_run_get(sm, "latency_s", "ttft", "p50"), d1, sizeof(d1));
    duration_format(cmd_run_get(sm, "latency_s", "ttft", "p99"), d2, sizeof(d2));
    duration_format(cmd_run_get(sm, "latency_s", "tpot", "p50"), d3, sizeof(d3));
    duration_format(cmd_run_get(sm, "latency_s", "tpot", "p99"), d4, sizeof(d4));
    duration_format(cmd_run_get(sm, "latency_s", "e2e", "p50"), d5, sizeof(d5));
    duration_format(cmd_run_get(sm, "latency_s", "e2e", "p99"), d6, sizeof(d6));
    printf("  TTFT p50 %s p99 %s | TPOT p50 %s p99 %s | E2E p50 %s p99 %s\n", d1, d2, d3, d4, d5, d6);
    printf("  SLO attainment %.2f%% (target %.2f%%): %s\n", 100 * cmd_run_get(sm, "slo", "attainment", NULL),
           100 * sc->slo_target, json_is_true(json_object_get(json_object_get(sm, "slo"), "met")) ? "met" : "MISSED");
    printf("  replicas mean %.2f max %.0f, busy %.0f%%, KV %.0f%% | GPU-hours %.2f, cost $%.2f\n",
           cmd_run_get(sm, "replicas", "mean", NULL), cmd_run_get(sm, "replicas", "max", NULL),
           100 * cmd_run_get(sm, "utilization", "busy_mean", NULL), 100 * cmd_run_get(sm, "utilization", "kv_mean", NULL),
           cmd_run_get(sm, "gpu_hours", NULL, NULL), cmd_run_get(sm, "cost_usd", "total", NULL));
    printf("  results: %s/summary.json, %s/timeline.csv\n", dir, dir);
    if (report)
        printf("  report:  %s/report.html\n", dir);
}

static int cmd_run_exec(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},   {"seed", required_argument, NULL, 'S'},
        {"set", required_argument, NULL, 's'},      {"requests", no_argument, NULL, 'R'},
        {"reproducible", no_argument, NULL, 'r'},   {"no-report", no_argument, NULL, 'N'},
        {"quiet", no_argument, NULL, 'q'},          {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    struct sim_options opt = {0};
    struct scenario *sc = NULL;
    struct err e = {0};
    char **sets = NULL, seedset[64], outdir[4096];
    const char *out = NULL;
    int nsets = 0, ch, status = 0;
    bool report = true, quiet = false;
    json_t *summary = NULL;

    sets = calloc((size_t)argc + 1, sizeof(*sets));
    if (sets == NULL)
        return 1;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "o:qvh", longopts, NULL)) != -1) {
        switch (ch) {
        case 'o': out = optarg; break;
        case 'S': {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || errno || optarg[0] == '-') {
                log_error("--seed: expected a non-negative integer, got '%s'", optarg);
                free(sets);
                return 2;
            }
            snprintf(seedset, sizeof(seedset), "seed=%llu", v);
            sets[nsets++] = seedset;
            break;
        }
        case 's': sets[nsets++] = optarg; break;
        case 'R': opt.requests_csv = true; break;
        case 'r': opt.reproducible = true; break;
        case 'N': report = false; break;
        case 'q': quiet = true; log_set_level(LOG_ERROR); break;
        case 'v': log_set_level(LOG_DEBUG); break;
        case 'h': cmd_run_usage(stdout); free(sets); return 0;
        default:
            log_error("run: unknown or incomplete option '%s' (try 'llmsim run --help')", argv[optind - 1]);
            free(sets);
            return 2;
        }
    }
    if (optind != argc - 1) {
        cmd_run_usage(stderr);
        free(sets);
        return 2;
    }
    sc = scenario_load(argv[optind], sets, nsets, &e);
    if (sc == NULL)
        goto fail;
    if (out == NULL)
        snprintf(outdir, sizeof(outdir), "out/%s", sc->name);
    else
        snprintf(outdir, sizeof(outdir), "%s", out);
    if (path_mkdirs(outdir, &e) < 0)
        goto fail;
    opt.outdir = outdir;
    opt.progress = !quiet && isatty(STDERR_FILENO);
    summary = sim_run(sc, &opt, &e);
    if (summary == NULL)
        goto fail;
    if (report && report_write(outdir, &e) < 0)
        goto fail;
    if (!quiet)
        cmd_run_print(summary, sc, outdir, report);
    goto done;
fail:
    log_error("%s", e.msg);
    status = err_exit_status(&e);
    if (status == 0)
        status = 1;
done:
    json_decref(summary);
    scenario_free(sc);
    free(sets);
    return status;
}

const struct command cmd_run_entry = {
    .name = "run",
    .summary = "simulate a scenario and write its results and HTML report",
    .exec = cmd_run_exec,
};
