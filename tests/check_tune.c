/* check_tune.c -- llmsim tune: the tune section's checks (malformed,
 * truncated, oversized and hostile input), candidate numbering, the fast
 * search against the grid, results independent of threads, and shards
 * merged into the same bytes as one run. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sim/tune.h"
#include "sim/tune_int.h"

static char tmpdir[256];

static void setup(void)
{
    const char *base = getenv("TMPDIR");

    snprintf(tmpdir, sizeof(tmpdir), "%s/check_tune.XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "check_tune: could not remove %s\n", tmpdir);
}

static const char *small_yaml(void)
{
    static char path[4096];
    const char *src = getenv("top_srcdir");

    snprintf(path, sizeof(path), "%s/tests/data/tune/small.yaml", src && *src ? src : ".");
    return path;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n) {
            buf[n] = '\0';
            if (len)
                *len = (size_t)n;
        } else {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

static void assert_same_file(const char *dir_a, const char *dir_b, const char *name)
{
    char pa[512], pb[512];
    size_t la = 0, lb = 0;
    char *a, *b;

    snprintf(pa, sizeof(pa), "%s/%s", dir_a, name);
    snprintf(pb, sizeof(pb), "%s/%s", dir_b, name);
    a = slurp(pa, &la);
    b = slurp(pb, &lb);
    ck_assert_msg(a != NULL && b != NULL, "%s or %s missing", pa, pb);
    ck_assert_msg(la == lb && memcmp(a, b, la) == 0, "%s and %s differ", pa, pb);
    free(a);
    free(b);
}

/* The winner's candidate number, from best.yaml's first line. */
static long best_candidate(const char *dir)
{
    char path[512], *text, *p;
    long c;

    snprintf(path, sizeof(path), "%s/best.yaml", dir);
    text = slurp(path, NULL);
    ck_assert_ptr_nonnull(text);
    p = strstr(text, "candidate ");
    ck_assert_ptr_nonnull(p);
    c = strtol(p + 10, NULL, 10);
    free(text);
    return c;
}

static int run_tune(const char *outdir, char **sets, int nsets, int jobs, int shard, int nshards, struct err *e)
{
    struct tune_options opt = {.outdir = outdir, .jobs = jobs, .quiet = true, .report = false,
                               .shard_index = shard, .shard_count = nshards};

    return tune_run(small_yaml(), sets, nsets, &opt, e);
}

/* ---- the tune section --------------------------------------------------------- */

/* A scenario with a given tune section (or none). */
static const char *const scenario_head =
    "name: t\n"
    "workload: {generator: {kind: poisson, rate: 1, duration: 2m}}\n"
    "service: {kind: exponential, mean: 100ms}\n"
    "cluster: {replicas: 2}\n"
    "autoscaler:\n"
    "  hpa:\n"
    "    minReplicas: 1\n"
    "    maxReplicas: 4\n"
    "    metrics: [{type: Pods, pods: {metric: {name: llmserve_requests_running}, target: {type: AverageValue, "
    "averageValue: \"4\"}}}]\n"
    "slo: {e2e: 5s, target: 0.9}\n";

struct spec_case {
    const char *tune;   /* the text after scenario_head */
    const char *expect; /* a substring of the error */
};

static const struct spec_case spec_cases[] = {
    {"", "no 'tune' section"},
    {"tune: {space: [{key: autoscaler.hpa.minReplica, values: [1]}]}\n",
     "tune.space[0].key: 'autoscaler.hpa.minReplica' is not in the scenario"},
    {"tune: {space: [{key: autoscaler.hpa, values: [1]}]}\n", "is a mapping in the scenario"},
    {"tune: {space: [{key: 'autoscaler.hpa.metrics[7].pods', values: [1]}]}\n", "is not in the scenario"},
    {"tune: {space: [{key: autoscaler.hpa.minReplicas, range: [1, 3]}]}\n", "range needs a step"},
    {"tune: {space: [{key: autoscaler.hpa.minReplicas, range: [3, 1], step: 1}]}\n", "HIGH 1 is below LOW 3"},
    {"tune: {space: [{key: autoscaler.hpa.minReplicas, range: [1, 1e9], step: 1}]}\n", "over 1000 values"},
    {"tune: {space: [{key: autoscaler.hpa.minReplicas, range: [1, 3], step: -1}]}\n", "step: must be above 0"},
    {"tune: {space: [{key: autoscaler.hpa.minReplicas, range: [1, x], step: 1}]}\n", "expected a number or a duration"},
    {"tune: {space: [{key: autoscaler.hpa.minReplicas, log_range: [0, 3], points: 3}]}\n", "LOW must be above 0"},
    {"tune: {space: [{key: autoscaler.hpa.minReplicas, log_range: [1, 3], points: 1}]}\n", "points: expected an integer"},
    {"tune: {space: [{key: autoscaler.hpa.minReplicas, values: [1], range: [1, 2], step: 1}]}\n",
     "give exactly one of"},
    {"tune: {space: [{key: autoscaler.hpa.minReplicas, values: []}]}\n", "values: expected a non-empty list"},
    {"tune: {space: [{key: autoscaler.hpa.minReplicas, values: [{a: 1}]}]}\n", "expected a single value, not a mapping"},
    {"tune: {space: [{key: autoscaler.hpa.minReplicas, values: [1, 1]}]}\n", "listed twice"},
    {"tune: {space: [{key: autoscaler.hpa.minReplicas, values: [1]}, {key: autoscaler.hpa.minReplicas, values: [2]}]}\n",
     "is already tune.space[0]"},
    {"tune: {space: [{key: autoscaler.hpa.maxReplicas, values: [-1]}]}\n", "tune.space[0]: value -1"},
    {"tune: {space: [{key: autoscaler.hpa.minReplicas, values: [\"\\x01\"]}]}\n", "control characters"},
    {"tune: {space: [{key: 'a\"b c', values: [1]}]}\n", "is not a key path"},
    {"tune: {space: [{key: seed, values: [1]}]}\n", "cannot be tuned"},
    {"tune: {space: [{values: [1]}]}\n", "missing 'key'"},
    {"tune: {space: [{key: autoscaler.hpa.minReplicas, values: [1], stride: 2}]}\n", "unknown key 'stride'"},
    {"tune: {space: []}\n", "tune.space: expected a non-empty list"},
    {"tune: {space: 3}\n", "space"},
    {"tune: {objectiv: min_cost, space: [{key: autoscaler.hpa.minReplicas, values: [1]}]}\n", "unknown key 'objectiv'"},
    {"tune: {objective: cheapest, space: [{key: autoscaler.hpa.minReplicas, values: [1]}]}\n", "objective"},
    {"tune: {objective: max_attainment, space: [{key: autoscaler.hpa.minReplicas, values: [1]}]}\n",
     "max_attainment needs a cost budget"},
    {"tune: {budget_usd: 5, space: [{key: autoscaler.hpa.minReplicas, values: [1]}]}\n",
     "only with objective: max_attainment"},
    {"tune: {seeds: 0, space: [{key: autoscaler.hpa.minReplicas, values: [1]}]}\n", "tune.seeds: expected 1..100"},
    {"tune: {budget: -5, space: [{key: autoscaler.hpa.minReplicas, values: [1]}]}\n", "tune.budget"},
    {"tune: {method: exhaustive, space: [{key: autoscaler.hpa.minReplicas, values: [1]}]}\n", "method"},
    {"tune: {constraints: {slo: {ttft: {p95: 1s}}}, space: [{key: autoscaler.hpa.minReplicas, values: [1]}]}\n",
     "unknown key 'p95'"},
    {"tune: {constraints: {slo: {attainment: 1.5}}, space: [{key: autoscaler.hpa.minReplicas, values: [1]}]}\n",
     "attainment: expected 0..1"},
    {"tune: {constraints: {max_rejected_fraction: 2}, space: [{key: autoscaler.hpa.minReplicas, values: [1]}]}\n",
     "max_rejected_fraction: expected 0..1"},
    {"tune: {space: [{key: autoscaler.hpa.minReplicas, values: [1]}\n", NULL}, /* truncated: a syntax error */
};

START_TEST(test_spec_errors)
{
    const struct spec_case *c = &spec_cases[_i];
    struct tune_spec spec;
    struct err e = {0};
    char path[512], *text;
    size_t n;

    snprintf(path, sizeof(path), "%s/s%d.yaml", tmpdir, _i);
    n = strlen(scenario_head) + strlen(c->tune) + 1;
    text = malloc(n);
    ck_assert_ptr_nonnull(text);
    snprintf(text, n, "%s%s", scenario_head, c->tune);
    write_file(path, text);
    free(text);
    ck_assert_int_eq(tune_spec_load(path, NULL, 0, &spec, &e), -1);
    ck_assert_int_eq(e.code, ERR_INPUT);
    ck_assert_msg(strstr(e.msg, path) != NULL, "case %d: the message names no file: %s", _i, e.msg);
    if (c->expect != NULL)
        ck_assert_msg(strstr(e.msg, c->expect) != NULL, "case %d: expected '%s' in: %s", _i, c->expect, e.msg);
    tune_spec_free(&spec);
}
END_TEST

START_TEST(test_spec_oversized)
{
    struct tune_spec spec;
    struct err e = {0};
    char path[512];
    FILE *f;
    int i;

    /* 17 knobs, over the limit of 16. */
    snprintf(path, sizeof(path), "%s/many.yaml", tmpdir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%stune:\n  space:\n", scenario_head);
    for (i = 0; i < TUNE_MAX_KNOBS + 1; i++)
        fprintf(f, "    - {key: autoscaler.hpa.minReplicas, values: [1]}\n");
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(tune_spec_load(path, NULL, 0, &spec, &e), -1);
    ck_assert_msg(strstr(e.msg, "at most 16 keys") != NULL, "%s", e.msg);
    tune_spec_free(&spec);
}
END_TEST

START_TEST(test_spec_values)
{
    struct tune_spec spec;
    struct err e = {0};
    char path[512];
    long idx[3], c;

    snprintf(path, sizeof(path), "%s/ok.yaml", tmpdir);
    write_file(path, "name: t\n"
                     "workload: {generator: {kind: poisson, rate: 1, duration: 2m}}\n"
                     "service: {kind: exponential, mean: 100ms}\n"
                     "cluster: {replicas: 2}\n"
                     "cache: {ttl: 1h}\n"
                     "autoscaler:\n"
                     "  hpa:\n"
                     "    minReplicas: 1\n"
                     "    maxReplicas: 40\n"
                     "    metrics: [{type: Pods, pods: {metric: {name: llmserve_requests_running}, target: "
                     "{type: AverageValue, averageValue: \"4\"}}}]\n"
                     "tune:\n"
                     "  space:\n"
                     "    - {key: autoscaler.hpa.maxReplicas, range: [4, 10], step: 3}\n"
                     "    - {key: cache.ttl, log_range: [1m, 1h], points: 3}\n"
                     "    - {key: 'autoscaler.hpa.metrics[0].pods.target.averageValue', values: [\"2\", 4.5, 8]}\n");
    ck_assert_msg(tune_spec_load(path, NULL, 0, &spec, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(spec.nknobs, 3);
    ck_assert_uint_eq(spec.ncandidates, 3 * 3 * 3);
    ck_assert_str_eq(spec.knobs[0].values[0], "4");
    ck_assert_str_eq(spec.knobs[0].values[2], "10");
    /* Durations in seconds; a log range of 60..3600 in 3 points. */
    ck_assert_str_eq(spec.knobs[1].values[0], "60");
    ck_assert_str_eq(spec.knobs[1].values[1], "464.758");
    ck_assert_str_eq(spec.knobs[1].values[2], "3600");
    ck_assert_str_eq(spec.knobs[1].baseline, "1h");
    ck_assert_str_eq(spec.knobs[2].values[1], "4.5");
    ck_assert_str_eq(spec.knobs[2].baseline, "4");
    ck_assert_int_eq(spec.seeds, 1);
    ck_assert_int_eq(spec.method, TUNE_AUTO);
    /* Candidate numbers: the last knob varies fastest, and back. */
    for (c = 0; c < (long)spec.ncandidates; c++) {
        size_t k;
        for (k = 0; k < 3; k++)
            idx[k] = tune_value_index(&spec, c, k);
        ck_assert_int_eq(tune_candidate(&spec, idx), c);
    }
    ck_assert_int_eq(tune_value_index(&spec, 5, 0), 0);
    ck_assert_int_eq(tune_value_index(&spec, 5, 1), 1);
    ck_assert_int_eq(tune_value_index(&spec, 5, 2), 2);
    ck_assert_int_eq(tune_value_index(&spec, -1, 2), -1);
    ck_assert_str_eq(tune_value_text(&spec, -1, 1), "1h");
    tune_spec_free(&spec);
}
END_TEST

/* ---- searches ----------------------------------------------------------------- */

START_TEST(test_halving_finds_grid_optimum)
{
    char grid[512], fast[512], path[600], *trials;
    char *set_grid[] = {"tune.method=grid"}, *set_fast[] = {"tune.method=halving"};
    struct err e = {0};

    snprintf(grid, sizeof(grid), "%s/grid", tmpdir);
    snprintf(fast, sizeof(fast), "%s/fast", tmpdir);
    ck_assert_msg(run_tune(grid, set_grid, 1, 2, 0, 0, &e) == 0, "%s", e.msg);
    ck_assert_msg(run_tune(fast, set_fast, 1, 2, 0, 0, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(best_candidate(fast), best_candidate(grid));
    /* The fast search did run on prefixes of the workload. */
    snprintf(path, sizeof(path), "%s/trials.csv", fast);
    trials = slurp(path, NULL);
    ck_assert_ptr_nonnull(trials);
    ck_assert_msg(strstr(trials, ",0.333333,1,") != NULL, "no rows at a third of the workload:\n%s", trials);
    free(trials);
}
END_TEST

/* A budget below the grid makes halving sample its candidates (the path that
 * once seeded its generator on stream 0x74756e65, 1.9e9 jumps: minutes of
 * work before the first simulation).  It must finish, start from fewer
 * candidates than the grid's 9, and draw the same ones every run. */
START_TEST(test_halving_samples_under_a_small_budget)
{
    char a[512], b[512], path[600], *trials, *line, *nl;
    char *sets[] = {"tune.method=halving", "tune.budget=14"};
    struct err e = {0};
    int rung0 = 0;

    snprintf(a, sizeof(a), "%s/sample-a", tmpdir);
    snprintf(b, sizeof(b), "%s/sample-b", tmpdir);
    ck_assert_msg(run_tune(a, sets, 2, 1, 0, 0, &e) == 0, "%s", e.msg);
    ck_assert_msg(run_tune(b, sets, 2, 2, 0, 0, &e) == 0, "%s", e.msg);
    assert_same_file(a, b, "trials.csv");
    snprintf(path, sizeof(path), "%s/trials.csv", a);
    trials = slurp(path, NULL);
    ck_assert_ptr_nonnull(trials);
    for (line = trials; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
        *nl = '\0';
        if (strstr(line, ",0.037037,") != NULL) /* fidelity 1/27: the first of 4 rungs */
            rung0++;
    }
    ck_assert_msg(rung0 >= 3 && rung0 < 9, "%d candidates on the first rung:\n%s", rung0, trials);
    free(trials);
}
END_TEST

START_TEST(test_threads_do_not_change_results)
{
    char one[512], three[512];
    struct err e = {0};

    snprintf(one, sizeof(one), "%s/j1", tmpdir);
    snprintf(three, sizeof(three), "%s/j3", tmpdir);
    ck_assert_msg(run_tune(one, NULL, 0, 1, 0, 0, &e) == 0, "%s", e.msg);
    ck_assert_msg(run_tune(three, NULL, 0, 3, 0, 0, &e) == 0, "%s", e.msg);
    assert_same_file(one, three, "trials.csv");
    assert_same_file(one, three, "best.yaml");
}
END_TEST

START_TEST(test_shards_merge_to_one_run)
{
    char whole[512], merged[512], dirs[3][512], *dirv[3], bad[512], path[600], line[700];
    struct tune_options mopt = {.jobs = 1, .quiet = true};
    struct err e = {0};
    int i;

    snprintf(whole, sizeof(whole), "%s/whole", tmpdir);
    ck_assert_msg(run_tune(whole, NULL, 0, 2, 0, 0, &e) == 0, "%s", e.msg);
    for (i = 0; i < 3; i++) {
        snprintf(dirs[i], sizeof(dirs[i]), "%s/shard%d", tmpdir, i);
        dirv[i] = dirs[i];
        ck_assert_msg(run_tune(dirs[i], NULL, 0, 2, i, 3, &e) == 0, "%s", e.msg);
    }
    snprintf(merged, sizeof(merged), "%s/merged", tmpdir);
    mopt.outdir = merged;
    ck_assert_msg(tune_merge(dirv, 3, &mopt, &e) == 0, "%s", e.msg);
    assert_same_file(whole, merged, "trials.csv");
    assert_same_file(whole, merged, "best.yaml");
    assert_same_file(whole, merged, "pareto.csv");
    assert_same_file(whole, merged, "sensitivity.csv");
    assert_same_file(whole, merged, "manifests/hpa.yaml");

    /* A shard missing, a shard twice, a directory without shards. */
    ck_assert_int_eq(tune_merge(dirv, 2, &mopt, &e), -1);
    ck_assert_msg(strstr(e.msg, "shard 2 of 3 is missing") != NULL, "%s", e.msg);
    {
        char *twice[] = {dirs[0], dirs[0], dirs[1], dirs[2]};
        ck_assert_int_eq(tune_merge(twice, 4, &mopt, &e), -1);
        ck_assert_msg(strstr(e.msg, "given twice") != NULL, "%s", e.msg);
    }
    ck_assert_int_eq(tune_merge((char *[]){tmpdir}, 1, &mopt, &e), -1);
    ck_assert_msg(strstr(e.msg, "no shard") != NULL, "%s", e.msg);

    /* Damaged shard files: each error names the file and line. */
    {
        static const char *const damage[][2] = {
            {"job\t0\t0\t1\tabc", "not a number"},
            {"job\t999\t0\t1", "job: bad candidate"},
            {"fingerprint\tzz", "unexpected line"},
            {"bogus line", "unexpected line"},
        };
        size_t d;
        for (d = 0; d < sizeof(damage) / sizeof(damage[0]); d++) {
            char *orig, *copy;
            size_t n;
            snprintf(bad, sizeof(bad), "%s/bad%zu", tmpdir, d);
            ck_assert_int_eq(mkdir(bad, 0777), 0);
            snprintf(path, sizeof(path), "%s/shard-1-of-3.tsv", dirs[1]);
            orig = slurp(path, &n);
            ck_assert_ptr_nonnull(orig);
            copy = malloc(n + 4096);
            ck_assert_ptr_nonnull(copy);
            /* Keep the head, replace the jobs by one damaged line (with a
             * full set of fields where the damage is in a number). */
            {
                char *jobs = strstr(orig, "\njob\t");
                ck_assert_ptr_nonnull(jobs);
                jobs[1] = '\0';
            }
            snprintf(line, sizeof(line), "%s", damage[d][0]);
            if (strncmp(line, "job", 3) == 0) {
                int k;
                for (k = strncmp(damage[d][1], "not a", 5) == 0 ? 1 : 0; k < TM_N; k++)
                    strncat(line, "\t1", sizeof(line) - strlen(line) - 1);
                strncat(line, "\t", sizeof(line) - strlen(line) - 1);
            }
            snprintf(copy, n + 4096, "%s%s\n", orig, line);
            snprintf(path, sizeof(path), "%s/shard-1-of-3.tsv", bad);
            write_file(path, copy);
            free(orig);
            free(copy);
            {
                char *dd[] = {dirs[0], bad, dirs[2]};
                ck_assert_int_eq(tune_merge(dd, 3, &mopt, &e), -1);
                ck_assert_msg(strstr(e.msg, damage[d][1]) != NULL, "damage %zu: %s", d, e.msg);
                ck_assert_msg(strstr(e.msg, "shard-1-of-3.tsv:") != NULL, "damage %zu names no file: %s", d, e.msg);
            }
        }
    }
    /* An overlong line and a file that is not a shard. */
    {
        char *big = malloc(20000);
        ck_assert_ptr_nonnull(big);
        memset(big, 'x', 19998);
        big[19998] = '\n';
        big[19999] = '\0';
        snprintf(bad, sizeof(bad), "%s/big", tmpdir);
        ck_assert_int_eq(mkdir(bad, 0777), 0);
        snprintf(path, sizeof(path), "%s/shard-1-of-3.tsv", bad);
        write_file(path, big);
        free(big);
        {
            char *dd[] = {dirs[0], bad, dirs[2]};
            ck_assert_int_eq(tune_merge(dd, 3, &mopt, &e), -1);
            ck_assert_msg(strstr(e.msg, "longer than") != NULL || strstr(e.msg, "not an llmsim tune shard") != NULL,
                          "%s", e.msg);
        }
    }
}
END_TEST

/* The trace read once and kept gives the same as reading it for each run,
 * on the whole trace and on halving's prefixes. */
START_TEST(test_trace_read_once)
{
    char once[512], each[512], path[4096];
    char *sets[] = {"tune.method=halving"};
    const char *src = getenv("top_srcdir");
    struct tune_options opt = {.jobs = 2, .quiet = true};
    struct err e = {0};

    snprintf(path, sizeof(path), "%s/tests/data/tune/trace.yaml", src && *src ? src : ".");
    snprintf(once, sizeof(once), "%s/once", tmpdir);
    snprintf(each, sizeof(each), "%s/each", tmpdir);
    opt.outdir = once;
    ck_assert_msg(tune_run(path, sets, 1, &opt, &e) == 0, "%s", e.msg);
    opt.outdir = each;
    opt.reread = true;
    ck_assert_msg(tune_run(path, sets, 1, &opt, &e) == 0, "%s", e.msg);
    assert_same_file(once, each, "trials.csv");
    assert_same_file(once, each, "best.yaml");
}
END_TEST

START_TEST(test_shard_needs_grid)
{
    char dir[512], *sets[] = {"tune.method=halving"};
    struct err e = {0};

    snprintf(dir, sizeof(dir), "%s/sh", tmpdir);
    ck_assert_int_eq(run_tune(dir, sets, 1, 1, 0, 2, &e), -1);
    ck_assert_msg(strstr(e.msg, "--shard evaluates a slice of the grid") != NULL, "%s", e.msg);
}
END_TEST

START_TEST(test_grid_over_budget)
{
    char dir[512], *sets[] = {"tune.method=grid", "tune.budget=5"};
    struct err e = {0};

    snprintf(dir, sizeof(dir), "%s/ob", tmpdir);
    ck_assert_int_eq(run_tune(dir, sets, 2, 1, 0, 0, &e), -1);
    ck_assert_msg(strstr(e.msg, "over the budget of 5") != NULL, "%s", e.msg);
}
END_TEST

static Suite *tune_suite(void)
{
    Suite *s = suite_create("tune");
    TCase *tc = tcase_create("spec");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_spec_errors, 0, (int)(sizeof(spec_cases) / sizeof(spec_cases[0])));
    tcase_add_test(tc, test_spec_oversized);
    tcase_add_test(tc, test_spec_values);
    suite_add_tcase(s, tc);
    tc = tcase_create("search");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_halving_finds_grid_optimum);
    tcase_add_test(tc, test_halving_samples_under_a_small_budget);
    tcase_add_test(tc, test_threads_do_not_change_results);
    tcase_add_test(tc, test_shards_merge_to_one_run);
    tcase_add_test(tc, test_trace_read_once);
    tcase_add_test(tc, test_shard_needs_grid);
    tcase_add_test(tc, test_grid_over_budget);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tune_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
