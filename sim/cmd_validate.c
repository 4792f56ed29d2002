/* cmd_validate.c -- `llmsim validate --scenario S --measured results.json`:
 * simulate a scenario and compare its latency distributions and throughput
 * with what llmload measured on a real server running the same trace. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "sim/command.h"
#include "sim/scenario.h"
#include "sim/sim.h"

/* The figures compared, as paths into summary.json. */
static const struct {
    const char *name;   /* "ttft.p50": what --check names */
    const char *group;  /* summary.json section */
    const char *sub;    /* latency_s.<sub>, or NULL */
    const char *key;
} validate_metrics[] = {
    {"ttft.p50", "latency_s", "ttft", "p50"},   {"ttft.p90", "latency_s", "ttft", "p90"},
    {"ttft.p99", "latency_s", "ttft", "p99"},   {"tpot.p50", "latency_s", "tpot", "p50"},
    {"tpot.p90", "latency_s", "tpot", "p90"},   {"tpot.p99", "latency_s", "tpot", "p99"},
    {"e2e.p50", "latency_s", "e2e", "p50"},     {"e2e.p90", "latency_s", "e2e", "p90"},
    {"e2e.p99", "latency_s", "e2e", "p99"},     {"requests_per_s", "throughput", NULL, "requests_per_s"},
    {"output_tokens_per_s", "throughput", NULL, "output_tokens_per_s"},
};
#define VALIDATE_N (sizeof(validate_metrics) / sizeof(validate_metrics[0]))
#define VALIDATE_DEFAULT_CHECK "ttft.p50,ttft.p90,e2e.p50,e2e.p90"

static void cmd_validate_usage(FILE *f)
{
    fprintf(f,
            "usage: llmsim validate --scenario SCENARIO.yaml --measured results.json\n"
            "                       [--set KEY=VALUE]... [--tolerance X] [--check LIST] [--json FILE]\n"
            "\n"
            "Simulate the scenario and compare it with a measurement of the real server\n"
            "(llmload's results.json, or another summary.json): time to first token, time per\n"
            "output token and end-to-end latency at p50, p90 and p99, and throughput.  Prints\n"
            "each figure simulated and measured and the error (simulated - measured) / measured.\n"
            "The scenario should replay the trace llmload sent, with the server's profile.\n"
            "\n"
            "options:\n"
            "      --scenario FILE     the scenario to simulate\n"
            "      --measured FILE     the measured summary (llmload -o FILE)\n"
            "      --set KEY=VALUE     override a scenario key (repeatable; as in llmsim run)\n"
            "      --tolerance X       fail (exit 1) when a checked figure is off by more than X\n"
            "                          (a fraction: 0.15 is 15%%)\n"
            "      --check LIST        the figures --tolerance applies to, comma-separated\n"
            "                          (default %s; also ttft.p99, tpot.p50/p90/p99,\n"
            "                          e2e.p99, requests_per_s, output_tokens_per_s)\n"
            "      --json FILE         also write the comparison as JSON\n"
            "  -q, --quiet             print nothing but errors\n"
            "  -h, --help              this help\n"
            "\n"
            "Exit status: 0 ok, 1 a checked figure beyond --tolerance or a failure, 2 bad input.\n",
            VALIDATE_DEFAULT_CHECK);
}

/* summary[group](.sub).key as a number; -1 with E naming FILE and the path
 * when missing or not a non-negative number. */
static int validate_get(json_t *sm, const char *file, size_t i, double *out, struct err *e)
{
    json_t *v = json_object_get(sm, validate_metrics[i].group);

    if (validate_metrics[i].sub != NULL)
        v = json_object_get(v, validate_metrics[i].sub);
    v = json_object_get(v, validate_metrics[i].key);
    if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) < 0)
        return err_set(e, ERR_INPUT, "%s: %s%s%s.%s: %s", file, validate_metrics[i].group,
                       validate_metrics[i].sub ? "." : "", validate_metrics[i].sub ? validate_metrics[i].sub : "",
                       validate_metrics[i].key, v == NULL ? "missing" : "not a non-negative number");
    *out = json_number_value(v);
    return 0;
}

/* Mark the figures named in LIST; -1 naming an unknown one. */
static int validate_parse_check(const char *list, int *checked, struct err *e)
{
    char *copy = strdup(list), *tok, *save = NULL;
    size_t i;
    int rc = 0;

    if (copy == NULL)
        return err_set(e, ERR_SYSTEM, "out of memory");
    memset(checked, 0, VALIDATE_N * sizeof(*checked));
    for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        for (i = 0; i < VALIDATE_N; i++)
            if (strcmp(tok, validate_metrics[i].name) == 0)
                break;
        if (i == VALIDATE_N) {
            rc = err_set(e, ERR_INPUT, "--check: unknown figure '%s' (known: ttft.p50 ... e2e.p99, "
                                       "requests_per_s, output_tokens_per_s)", tok);
            break;
        }
        checked[i] = 1;
    }
    free(copy);
    return rc;
}

static int cmd_validate_exec(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"scenario", required_argument, NULL, 'S'}, {"measured", required_argument, NULL, 'm'},
        {"set", required_argument, NULL, 's'},      {"tolerance", required_argument, NULL, 't'},
        {"check", required_argument, NULL, 'c'},    {"json", required_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},          {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *scenario = NULL, *measured = NULL, *json_out = NULL, *check = VALIDATE_DEFAULT_CHECK;
    char **sets = calloc((size_t)argc + 1, sizeof(*sets));
    int nsets = 0, ch, status = 0, checked[VALIDATE_N], beyond = 0;
    double tolerance = -1;
    bool quiet = false;
    struct scenario *sc = NULL;
    struct sim_options opt = {0};
    struct err e = {0};
    json_t *meas = NULL, *sim = NULL, *cmp = NULL;
    json_error_t je;
    size_t i;

    if (sets == NULL)
        return 1;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
        switch (ch) {
        case 'S': scenario = optarg; break;
        case 'm': measured = optarg; break;
        case 's': sets[nsets++] = optarg; break;
        case 't': {
            char *end;
            errno = 0;
            tolerance = strtod(optarg, &end);
            if (*optarg == '\0' || *end != '\0' || errno || !isfinite(tolerance) || tolerance < 0) {
                err_set(&e, ERR_INPUT, "--tolerance: expected a fraction >= 0 such as 0.15, got '%s'", optarg);
                goto fail;
            }
            break;
        }
        case 'c': check = optarg; break;
        case 'j': json_out = optarg; break;
        case 'q': quiet = true; log_set_level(LOG_ERROR); break;
        case 'h': cmd_validate_usage(stdout); free(sets); return 0;
        default:
            err_set(&e, ERR_INPUT, "validate: unknown or incomplete option '%s' (try 'llmsim validate --help')",
                    argv[optind - 1]);
            goto fail;
        }
    }
    if (optind != argc || scenario == NULL || measured == NULL) {
        cmd_validate_usage(stderr);
        free(sets);
        return 2;
    }
    if (validate_parse_check(check, checked, &e) < 0)
        goto fail;
    meas = json_load_file(measured, 0, &je);
    if (meas == NULL) {
        if (je.line > 0)
            err_at(&e, measured, je.line, "%s", je.text);
        else
            err_set(&e, ERR_INPUT, "%s: %s", measured, je.text);
        goto fail;
    }
    if (!json_is_object(meas)) {
        err_set(&e, ERR_INPUT, "%s: expected a summary (a JSON object)", measured);
        goto fail;
    }
    sc = scenario_load(scenario, sets, nsets, &e);
    if (sc == NULL)
        goto fail;
    sim = sim_run(sc, &opt, &e);
    if (sim == NULL)
        goto fail;
    cmp = json_object();
    if (cmp == NULL) {
        err_set(&e, ERR_SYSTEM, "out of memory");
        goto fail;
    }
    if (!quiet) {
        json_t *ma = json_object_get(json_object_get(meas, "requests"), "arrived"),
               *sa = json_object_get(json_object_get(sim, "requests"), "arrived");
        printf("llmsim validate: %s against %s\n", scenario, measured);
        printf("  requests: simulated %lld, measured %lld\n", (long long)json_integer_value(sa),
               (long long)json_integer_value(ma));
        printf("  %-20s %12s %12s %9s\n", "figure", "simulated", "measured", "error");
    }
    for (i = 0; i < VALIDATE_N; i++) {
        double s, m, err;
        bool latency = validate_metrics[i].sub != NULL;
        if (validate_get(sim, "simulation", i, &s, &e) < 0 || validate_get(meas, measured, i, &m, &e) < 0)
            goto fail;
        err = m > 0 ? (s - m) / m : (s == 0 ? 0 : NAN);
        if (checked[i] && tolerance >= 0 && !(fabs(err) <= tolerance))
            beyond++;
        json_object_set_new(cmp, validate_metrics[i].name,
                            json_pack("{s:f,s:f,s:o,s:b}", "simulated", s, "measured", m, "error",
                                      isfinite(err) ? json_real(err) : json_null(), "checked", checked[i]));
        if (!quiet) {
            char es[32];
            if (isfinite(err))
                snprintf(es, sizeof(es), "%+.1f%%", 100 * err);
            else
                snprintf(es, sizeof(es), "n/a");
            printf("  %-20s %12.4f %12.4f %9s%s\n", validate_metrics[i].name, latency ? 1e3 * s : s,
                   latency ? 1e3 * m : m, es,
                   checked[i] && tolerance >= 0 ? (fabs(err) <= tolerance ? "  ok" : "  BEYOND") : "");
        }
    }
    if (!quiet)
        printf("  (latencies in ms; error = (simulated - measured) / measured)\n");
    if (json_out != NULL) {
        json_t *doc = json_pack("{s:s,s:s,s:o,s:O}", "scenario", scenario, "measured", measured,
                                "tolerance", tolerance >= 0 ? json_real(tolerance) : json_null(), "figures", cmp);
        if (doc == NULL || json_dump_file(doc, json_out, JSON_INDENT(2) | JSON_REAL_PRECISION(8)) != 0) {
            json_decref(doc);
            err_sys(&e, errno, "%s", json_out);
            goto fail;
        }
        json_decref(doc);
    }
    if (beyond > 0) {
        log_error("%d checked figure(s) off by more than %.0f%%", beyond, 100 * tolerance);
        status = 1;
    }
    goto done;
fail:
    log_error("%s", e.msg);
    status = err_exit_status(&e);
    if (status == 0)
        status = 1;
done:
    json_decref(cmp);
    json_decref(sim);
    json_decref(meas);
    scenario_free(sc);
    free(sets);
    return status;
}

const struct command cmd_validate_entry = {
    .name = "validate",
    .summary = "compare a simulation with a measured run of the real server (llmload)",
    .exec = cmd_validate_exec,
};
