/* cmd_tune.c -- `llmsim tune SCENARIO.yaml`: search the scenario's tune
 * space; `llmsim tune --merge DIR...`: join the shards of a sweep. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "sim/command.h"
#include "sim/tune.h"

static void cmd_tune_usage(FILE *f)
{
    fprintf(f,
            "usage: llmsim tune SCENARIO.yaml [-o DIR] [-j JOBS] [--budget N] [--shard I/N] [--set KEY=VALUE]...\n"
            "       llmsim tune --merge [-o DIR] SHARD_DIR...\n"
            "\n"
            "Search the knobs named in the scenario's `tune:` section (any scenario key, as\n"
            "with --set) for the cheapest settings that meet the SLO (objective: min_cost),\n"
            "or the best SLO attainment within budget_usd (objective: max_attainment).\n"
            "Each candidate runs over tune.seeds seeds; small spaces are searched whole\n"
            "(grid), large ones by successive halving on prefixes of the workload.\n"
            "\n"
            "Writes DIR/trials.csv (one row per candidate and fidelity), pareto.csv,\n"
            "sensitivity.csv (each knob one value down/up from the optimum), best.yaml\n"
            "(the scenario with the winning values), report.html, and manifests/\n"
            "(autoscaling/v2 HPA or KEDA ScaledObject, a Deployment patch for the cache TTL\n"
            "and the spot share).\n"
            "\n"
            "options:\n"
            "  -o, --output DIR     output directory (default: out/NAME-tune)\n"
            "  -j, --jobs N         simulations in parallel (threads; default 1); results do not\n"
            "                       depend on N\n"
            "      --budget N       at most N simulations of the whole workload (a run on a\n"
            "                       prefix counts its fraction); replaces tune.budget\n"
            "      --shard I/N      evaluate only the grid's items I, I+N, I+2N, ... and write\n"
            "                       DIR/shard-I-of-N.tsv (for a Kubernetes Indexed Job)\n"
            "      --merge          join the shard files in the SHARD_DIRs into DIR: the same\n"
            "                       outputs as one run\n"
            "      --set KEY=VALUE  override a scenario key before tuning (repeatable)\n"
            "      --no-report      skip report.html and the charts\n"
            "      --reread         read the workload for every simulation instead of once\n"
            "                       (slower; the results are the same)\n"
            "  -q, --quiet          print nothing but errors\n"
            "  -v, --verbose        more log output\n"
            "  -h, --help           this help\n"
            "\n"
            "Exit status: 0 ok, 1 failure (I/O), 2 bad input (the message names FILE:LINE and the key).\n");
}

static int cmd_tune_int(const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;

    errno = 0;
    *out = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno || *out < lo || *out > hi) {
        log_error("%s: expected an integer from %ld to %ld, got '%s'", opt, lo, hi, s);
        return -1;
    }
    return 0;
}

static int cmd_tune_shard(const char *s, struct tune_options *opt)
{
    const char *slash = strchr(s, '/');
    char first[32];
    long i, n;

    if (slash == NULL || (size_t)(slash - s) >= sizeof(first)) {
        log_error("--shard: expected I/N (for example 0/8), got '%s'", s);
        return -1;
    }
    memcpy(first, s, (size_t)(slash - s));
    first[slash - s] = '\0';
    if (cmd_tune_int("--shard N", slash + 1, 1, 100000, &n) < 0 || cmd_tune_int("--shard I", first, 0, n - 1, &i) < 0)
        return -1;
    opt->shard_index = (int)i;
    opt->shard_count = (int)n;
    return 0;
}

static int cmd_tune_exec(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'}, {"jobs", required_argument, NULL, 'j'},
        {"budget", required_argument, NULL, 'B'}, {"shard", required_argument, NULL, 'S'},
        {"merge", no_argument, NULL, 'M'},        {"set", required_argument, NULL, 's'},
        {"no-report", no_argument, NULL, 'N'},    {"quiet", no_argument, NULL, 'q'},
        {"reread", no_argument, NULL, 'R'},
        {"verbose", no_argument, NULL, 'v'},      {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct tune_options opt = {.jobs = 1, .report = true};
    struct err e = {0};
    char **sets, outdir[4096];
    const char *out = NULL;
    int nsets = 0, ch, status = 0;
    bool merge = false;
    long v;

    sets = calloc((size_t)argc + 1, sizeof(*sets));
    if (sets == NULL)
        return 1;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "o:j:qvh", longopts, NULL)) != -1) {
        switch (ch) {
        case 'o': out = optarg; break;
        case 'j':
            if (cmd_tune_int("--jobs", optarg, 1, 256, &v) < 0)
                goto usage;
            opt.jobs = (int)v;
            break;
        case 'B':
            if (cmd_tune_int("--budget", optarg, 1, LONG_MAX, &v) < 0)
                goto usage;
            opt.budget = v;
            break;
        case 'S':
            if (cmd_tune_shard(optarg, &opt) < 0)
                goto usage;
            break;
        case 'M': merge = true; break;
        case 's': sets[nsets++] = optarg; break;
        case 'N': opt.report = false; break;
        case 'R': opt.reread = true; break;
        case 'q': opt.quiet = true; log_set_level(LOG_ERROR); break;
        case 'v': log_set_level(LOG_DEBUG); break;
        case 'h': cmd_tune_usage(stdout); free(sets); return 0;
        default:
            log_error("tune: unknown or incomplete option '%s' (try 'llmsim tune --help')", argv[optind - 1]);
            goto usage;
        }
    }
    opt.progress = !opt.quiet && isatty(STDERR_FILENO);
    if (merge) {
        if (optind >= argc || opt.shard_count > 0 || nsets > 0) {
            log_error("tune --merge: give the shard directories (and no --shard or --set)");
            goto usage;
        }
        snprintf(outdir, sizeof(outdir), "%s", out ? out : "out/tune-merged");
        opt.outdir = outdir;
        if (tune_merge(argv + optind, argc - optind, &opt, &e) < 0)
            goto fail;
        goto done;
    }
    if (optind != argc - 1) {
        cmd_tune_usage(stderr);
        goto usage;
    }
    if (out == NULL) {
        const char *base = strrchr(argv[optind], '/');
        base = base ? base + 1 : argv[optind];
        snprintf(outdir, sizeof(outdir), "out/%.*s-tune", (int)strcspn(base, "."), base);
    } else {
        snprintf(outdir, sizeof(outdir), "%s", out);
    }
    opt.outdir = outdir;
    if (tune_run(argv[optind], sets, nsets, &opt, &e) < 0)
        goto fail;
    goto done;
usage:
    free(sets);
    return 2;
fail:
    log_error("%s", e.msg);
    status = err_exit_status(&e);
    if (status == 0)
        status = 1;
done:
    free(sets);
    return status;
}

const struct command cmd_tune_entry = {
    .name = "tune",
    .summary = "search a scenario's knobs for the cheapest settings meeting the SLO; emit manifests",
    .exec = cmd_tune_exec,
};
