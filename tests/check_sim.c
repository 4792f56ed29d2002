/* check_sim.c -- the simulator: event engine, profiles, scenarios, the
 * cluster model (continuous batching, gateway), and validation against
 * queueing theory (M/M/1, M/M/c by Erlang C, M/D/1 by Pollaczek-Khinchine). */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/rng.h"
#include "sim/cache.h"
#include "sim/engine.h"
#include "sim/profile.h"
#include "sim/scenario.h"
#include "sim/sim.h"

static char tmpdir[256];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_sim.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Write NAME in the temp dir; returns its path (static buffer). */
static const char *write_file(const char *name, const char *text)
{
    static char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

/* Load a scenario from YAML text with optional overrides; expect success. */
static struct scenario *load_yaml(const char *yaml, char *const *sets, int nsets)
{
    struct err e = {0};
    struct scenario *s = scenario_load(write_file("scenario.yaml", yaml), sets, nsets, &e);

    if (s == NULL)
        ck_abort_msg("scenario failed to load: %s", e.msg);
    return s;
}

/* Run YAML and return the summary. */
static json_t *run_yaml(const char *yaml)
{
    struct sim_options opt = {0};
    struct scenario *s = load_yaml(yaml, NULL, 0);
    struct err e = {0};
    json_t *sm;

    opt.reproducible = true;
    sm = sim_run(s, &opt, &e);
    if (sm == NULL)
        ck_abort_msg("run failed: %s", e.msg);
    scenario_free(s);
    return sm;
}

static double jget(json_t *o, const char *a, const char *b, const char *c)
{
    json_t *x = json_object_get(o, a);
    if (b)
        x = json_object_get(x, b);
    if (c)
        x = json_object_get(x, c);
    ck_assert_msg(json_is_number(x), "summary has no number at %s.%s.%s", a, b ? b : "", c ? c : "");
    return json_number_value(x);
}

/* Expect loading YAML to fail with a message containing every NEEDLE. */
static void expect_load_error(const char *yaml, char *const *sets, int nsets, const char *n1, const char *n2)
{
    struct err e = {0};
    struct scenario *s = scenario_load(write_file("bad.yaml", yaml), sets, nsets, &e);

    ck_assert_msg(s == NULL, "scenario should have been refused");
    ck_assert_int_eq(e.code, ERR_INPUT);
    ck_assert_int_eq(err_exit_status(&e), 2);
    ck_assert_msg(strstr(e.msg, n1) != NULL, "message '%s' lacks '%s'", e.msg, n1);
    if (n2)
        ck_assert_msg(strstr(e.msg, n2) != NULL, "message '%s' lacks '%s'", e.msg, n2);
}

/* ---- engine: events pop in (time, insertion) order ------------------------------------------ */

START_TEST(test_engine_order)
{
    struct engine en;
    struct event ev;
    struct rng r;
    double last = -1;
    uint64_t last_seq = 0;
    int i;

    engine_init(&en);
    rng_init(&r, 7, 0);
    for (i = 0; i < 20000; i++)
        ck_assert_int_eq(engine_schedule(&en, floor(rng_uniform(&r) * 100.0), 1, NULL, (uint64_t)i), 0);
    for (i = 0; i < 20000; i++) {
        ck_assert_int_eq(engine_pop(&en, &ev), 1);
        ck_assert(ev.time_s >= last);
        if (ev.time_s == last)
            ck_assert_msg(ev.seq > last_seq, "ties must pop in insertion order");
        ck_assert(en.now_s == ev.time_s);
        last = ev.time_s;
        last_seq = ev.seq;
    }
    ck_assert_int_eq(engine_pop(&en, &ev), 0);
    ck_assert_uint_eq(en.processed, 20000);
    engine_free(&en);
}
END_TEST

/* ---- profiles -------------------------------------------------------------------------------- */

/* The roofline's weight bytes, KV bytes and step times follow the documented formulas. */
START_TEST(test_roofline_llama2_7b)
{
    const struct gpu_spec *g = catalog_gpu("A100-80GB");
    const struct model_spec *m = catalog_model("llama-2-7b");
    struct roofline rf = {0};
    struct profile *p;
    struct err e = {0};
    double per_layer = 2.0 * 4096 * 4096 + 2.0 * 4096 * 4096 + 3.0 * 4096 * 11008;
    double weights = (32 * per_layer + 2.0 * 32000 * 4096) * 2.0;
    double params = 32 * per_layer + 32000.0 * 4096;
    double kv_tok = 2.0 * 32 * 4096 * 2.0;
    double t, want;

    ck_assert_ptr_nonnull(g);
    ck_assert_ptr_nonnull(m);
    rf.gpu = *g;
    rf.model = *m;
    rf.bytes_per_weight = 2;
    rf.kv_bytes_per_elem = 2;
    rf.tp = 1;
    rf.compute_efficiency = 0.6;
    rf.memory_efficiency = 0.8;
    rf.memory_utilization = 0.9;
    rf.overhead_s = 0.002;
    p = profile_roofline(&rf, &e);
    ck_assert_ptr_nonnull(p);
    ck_assert_double_eq_tol(p->rf.weight_bytes, weights, 1.0);
    ck_assert(fabs(p->rf.weight_bytes / 1e9 - 13.48) < 0.01);
    ck_assert_double_eq_tol(p->rf.kv_bytes_per_token, kv_tok, 1e-6);
    ck_assert_double_eq_tol(p->kv_capacity_tokens, floor((80e9 * 0.9 - weights) / kv_tok), 1.0);
    /* Decode of one sequence is memory bound: weights plus its context. */
    t = profile_iteration_s(p, 0, 0, 1, 1000);
    want = (weights + kv_tok * 1000) / (2039e9 * 0.8) + 0.002;
    ck_assert_double_eq_tol(t, want, 1e-12);
    /* A 4096-token prefill is compute bound. */
    t = profile_iteration_s(p, 4096, 4096.0 * 4097 / 2, 0, 0);
    want = (2.0 * params * 4096 + 4.0 * 32 * 4096 * (4096.0 * 4097 / 2)) / (312e12 * 0.6) + 0.002;
    ck_assert_double_eq_tol(t, want, 1e-12);
    ck_assert(t > 0.25 && t < 0.4);
    ck_assert(profile_iteration_s(p, 0, 0, 0, 0) == 0.0);
    profile_free(p);

    /* Llama-2-70B does not fit on one A10G. */
    rf.gpu = *catalog_gpu("A10G");
    rf.model = *catalog_model("llama-2-70b");
    ck_assert_ptr_null(profile_roofline(&rf, &e));
    ck_assert(strstr(e.msg, "does not fit") != NULL);
}
END_TEST

START_TEST(test_catalog_complete)
{
    const char *gpus[] = {"A10G", "L4", "A100-40GB", "A100-80GB", "H100", "H200"};
    const char *models[] = {"llama-2-7b", "llama-3-8b", "llama-2-13b", "llama-2-70b"};
    size_t i;

    for (i = 0; i < sizeof(gpus) / sizeof(gpus[0]); i++)
        ck_assert_msg(catalog_gpu(gpus[i]) != NULL, "GPU %s missing", gpus[i]);
    for (i = 0; i < sizeof(models) / sizeof(models[0]); i++)
        ck_assert_msg(catalog_model(models[i]) != NULL, "model %s missing", models[i]);
    ck_assert_int_eq(catalog_model("llama-2-70b")->tp, 8);
    ck_assert_ptr_null(catalog_gpu("TPU"));
}
END_TEST

static const char *table_profile_json =
    "{\"format\": \"llmscale-profile-v1\", \"name\": \"test\", \"kv_capacity_tokens\": 100000,\n"
    " \"prefill\": {\"tokens\": [1, 1001], \"time_s\": [0.001, 1.001]},\n"
    " \"decode\": {\"batch\": [1, 65], \"context_tokens\": [0, 100000],\n"
    "            \"time_s\": [[0.01, 0.02], [0.03, 0.04]]}}\n";

START_TEST(test_profile_table)
{
    struct err e = {0};
    struct profile *p;

    make_tmpdir();
    p = profile_load_json(write_file("p.json", table_profile_json), &e);
    ck_assert_msg(p != NULL, "%s", e.msg);
    ck_assert_double_eq_tol(p->kv_capacity_tokens, 100000, 1e-9);
    ck_assert_double_eq_tol(profile_iteration_s(p, 1, 0, 0, 0), 0.001, 1e-12);
    ck_assert_double_eq_tol(profile_iteration_s(p, 501, 0, 0, 0), 0.501, 1e-12);
    ck_assert_double_eq_tol(profile_iteration_s(p, 2001, 0, 0, 0), 2.001, 1e-12); /* linear beyond */
    ck_assert_double_eq_tol(profile_iteration_s(p, 0, 0, 1, 0), 0.01, 1e-12);
    ck_assert_double_eq_tol(profile_iteration_s(p, 0, 0, 33, 50000), 0.025, 1e-12); /* bilinear centre */
    ck_assert_double_eq_tol(profile_iteration_s(p, 501, 0, 1, 0), 0.511, 1e-12);   /* prefill + decode */
    profile_free(p);
    remove_tmpdir();
}
END_TEST

/* step_overhead_s: a step that prefills and decodes pays the fixed cost once;
 * pure steps are unchanged, and the saving never exceeds either part. */
START_TEST(test_profile_step_overhead)
{
    static const char *json =
        "{\"kv_capacity_tokens\": 1000, \"step_overhead_s\": 0.004,\n"
        " \"prefill\": {\"tokens\": [1, 1001], \"time_s\": [0.001, 1.001]},\n"
        " \"decode\": {\"batch\": [1, 65], \"context_tokens\": [0, 100000],\n"
        "            \"time_s\": [[0.01, 0.02], [0.03, 0.04]]}}\n";
    struct err e = {0};
    struct profile *p;

    make_tmpdir();
    p = profile_load_json(write_file("p.json", json), &e);
    ck_assert_msg(p != NULL, "%s", e.msg);
    ck_assert_double_eq_tol(p->step_overhead_s, 0.004, 1e-12);
    ck_assert_double_eq_tol(profile_iteration_s(p, 501, 0, 0, 0), 0.501, 1e-12);
    ck_assert_double_eq_tol(profile_iteration_s(p, 0, 0, 1, 0), 0.01, 1e-12);
    ck_assert_double_eq_tol(profile_iteration_s(p, 501, 0, 1, 0), 0.511 - 0.004, 1e-12);
    /* a 1-token prefill (1 ms) saves at most its own 1 ms */
    ck_assert_double_eq_tol(profile_iteration_s(p, 1, 0, 1, 0), 0.010, 1e-12);
    profile_free(p);
    p = profile_load_json(write_file("p.json", "{\"kv_capacity_tokens\": 5, \"step_overhead_s\": -1}"), &e);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(e.msg, "step_overhead_s") != NULL, "%s", e.msg);
    remove_tmpdir();
}
END_TEST

/* Malformed profiles are refused with the file and the key (or line). */
START_TEST(test_profile_errors)
{
    struct {
        const char *json;
        const char *needle;
    } cases[] = {
        {"{\"kv_capacity_tokens\": 1,\n \"prefill\": {\"tokens\": [1], \"time_s\": [1]}\n", "p.json:3"},
        {"[1, 2]", "must be a JSON object"},
        {"{\"kv_capacity_tokens\": -5, \"prefill\": {}, \"decode\": {}}", "kv_capacity_tokens"},
        {"{\"kv_capacity_tokens\": 5, \"prefill\": {\"tokens\": [2, 1], \"time_s\": [1, 2]}, \"decode\": {}}",
         "prefill.tokens[1]: values must increase"},
        {"{\"kv_capacity_tokens\": 5, \"prefill\": {\"tokens\": [1, 2], \"time_s\": [1]}, \"decode\": {}}",
         "prefill.time_s: 1 values for 2"},
        {"{\"kv_capacity_tokens\": 5, \"prefill\": {\"tokens\": [1], \"time_s\": [\"x\"]}, \"decode\": {}}",
         "prefill.time_s[0]: expected a number"},
        {"{\"kv_capacity_tokens\": 5, \"prefill\": {\"tokens\": [1], \"time_s\": [1]},"
         " \"decode\": {\"batch\": [1], \"context_tokens\": [0, 10], \"time_s\": [[1]]}}",
         "decode.time_s[0]: 1 values for 2"},
        {"{\"kv_capacity_tokens\": 5, \"bogus\": 1}", "bogus: unknown key"},
        {"", "p.json"},
    };
    size_t i;

    make_tmpdir();
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct err e = {0};
        struct profile *p = profile_load_json(write_file("p.json", cases[i].json), &e);
        ck_assert_msg(p == NULL, "case %zu accepted", i);
        ck_assert_msg(strstr(e.msg, cases[i].needle) != NULL, "case %zu: '%s' lacks '%s'", i, e.msg,
                      cases[i].needle);
        ck_assert_msg(strstr(e.msg, "p.json") != NULL, "case %zu: '%s' does not name the file", i, e.msg);
    }
    remove_tmpdir();
}
END_TEST

/* ---- scenarios ------------------------------------------------------------------------------------ */

#define MINIMAL_YAML                                                                                     \
    "workload:\n"                                                                                        \
    "  generator: {kind: poisson, rate: 1, duration: 1m}\n"                                              \
    "service:\n"                                                                                         \
    "  roofline: {gpu: A100-80GB, model: llama-2-7b}\n"                                                  \
    "cluster:\n"                                                                                         \
    "  replicas: 2\n"

START_TEST(test_scenario_defaults_and_set)
{
    char *sets[] = {"cluster.replicas=5", "gateway.routing=power_of_two", "slo.ttft=1500ms"};
    struct scenario *s;

    make_tmpdir();
    s = load_yaml(MINIMAL_YAML, NULL, 0);
    ck_assert_str_eq(s->name, "scenario");
    ck_assert_int_eq(s->replicas, 2);
    ck_assert_int_eq(s->gpus_per_replica, 1);
    ck_assert_double_eq_tol(s->gpu_hourly_usd, catalog_gpu("A100-80GB")->hourly_usd, 1e-12);
    ck_assert_int_eq(s->max_num_seqs, 256);
    ck_assert_int_eq(s->max_concurrency, 256);
    ck_assert_int_eq(s->routing, ROUTE_LEAST_OUTSTANDING);
    ck_assert_double_eq_tol(s->kv_capacity_tokens, s->profile->kv_capacity_tokens, 1e-9);
    ck_assert(s->chunked_prefill);
    scenario_free(s);
    s = load_yaml(MINIMAL_YAML, sets, 3);
    ck_assert_int_eq(s->replicas, 5);
    ck_assert_int_eq(s->routing, ROUTE_POWER_OF_TWO);
    ck_assert_double_eq_tol(s->slo_ttft_s, 1.5, 1e-12);
    scenario_free(s);
    remove_tmpdir();
}
END_TEST

/* Every kind of bad scenario stops with FILE:LINE (or the --set) and the key. */
START_TEST(test_scenario_errors)
{
    char *bad_set[] = {"cluster.replicas=many"};
    char *bad_path[] = {"cluster..replicas=1"};

    make_tmpdir();
    expect_load_error(MINIMAL_YAML "  replicass: 3\n", NULL, 0, "bad.yaml:7", "unknown key 'replicass'");
    expect_load_error(MINIMAL_YAML "gateway:\n  queue_timeout: -5s\n", NULL, 0, "bad.yaml:8", "negative duration");
    expect_load_error(MINIMAL_YAML "gateway:\n  queue_timeout: soon\n", NULL, 0, "bad.yaml:8", "queue_timeout");
    expect_load_error(MINIMAL_YAML "gateway:\n  routing: fastest\n", NULL, 0, "bad.yaml:8", "round_robin");
    expect_load_error("workload:\n  generator: {kind: poisson, rate: 1, duration: 1m}\nservice:\n"
                      "  roofline: {gpu: A100-80GB, model: llama-2-7b}\ncluster:\n  replicas: [1, 2]\n",
                      NULL, 0, "bad.yaml:6", "replicas");
    expect_load_error("workload:\n  generator: {kind: poisson, rate: 1, duration: 1m}\nservice:\n"
                      "  roofline: {gpu: B200, model: llama-2-7b}\ncluster:\n  replicas: 1\n",
                      NULL, 0, "bad.yaml:4", "unknown GPU 'B200'");
    expect_load_error("workload:\n  generator: {kind: poisson, rate: 1, duration: 1m}\n"
                      "cluster:\n  replicas: 1\n", NULL, 0, "bad.yaml", "service");
    expect_load_error(MINIMAL_YAML "surprise: 1\n", NULL, 0, "bad.yaml:7", "unknown key 'surprise'");
    expect_load_error(MINIMAL_YAML "  replica: {max_num_seqs: 0}\n", NULL, 0, "bad.yaml:7", "max_num_seqs");
    expect_load_error(MINIMAL_YAML "slo: {target: 1.5}\n", NULL, 0, "bad.yaml:7", "target");
    expect_load_error("workload: [\n", NULL, 0, "bad.yaml:", "YAML");
    expect_load_error(MINIMAL_YAML, bad_set, 1, "--set cluster.replicas=many", "expected an integer");
    expect_load_error(MINIMAL_YAML, bad_path, 1, "--set", "malformed key path");
    remove_tmpdir();
}
END_TEST

/* ---- continuous batching: exact times from a table profile ----------------------------------- */

/* A constant decode step (10 ms) and a linear prefill (1 ms per token)
 * make every latency computable by hand. */
static const char *flat_profile_json =
    "{\"kv_capacity_tokens\": 100000,\n"
    " \"prefill\": {\"tokens\": [1, 1001], \"time_s\": [0.001, 1.001]},\n"
    " \"decode\": {\"batch\": [1, 1000], \"context_tokens\": [0, 1000000],\n"
    "            \"time_s\": [[0.01, 0.01], [0.01, 0.01]]}}\n";

static json_t *run_batching(const char *trace, const char *cluster_extra)
{
    char yaml[2048];

    write_file("flat.json", flat_profile_json);
    write_file("t.csv", trace);
    snprintf(yaml, sizeof(yaml),
             "workload: {trace: t.csv, format: native}\n"
             "service: {profile: flat.json}\n"
             "cluster:\n  replicas: 1\n  gpu_hourly_usd: 3600\n%s", cluster_extra);
    return run_yaml(yaml);
}

#define NATIVE_HEADER "arrival_s,prompt_tokens,output_tokens,prompt_hash,tenant\n"

START_TEST(test_batching_single_request)
{
    json_t *sm;

    make_tmpdir();
    sm = run_batching(NATIVE_HEADER "0,100,10,,\n", "");
    ck_assert_double_eq(jget(sm, "requests", "completed", NULL), 1);
    /* Prefill of 100 tokens: 0.1 s, then 9 decode steps of 10 ms. */
    ck_assert_double_eq_tol(jget(sm, "latency_s", "ttft", "mean"), 0.1, 1e-9);
    ck_assert_double_eq_tol(jget(sm, "latency_s", "e2e", "mean"), 0.19, 1e-9);
    ck_assert_double_eq_tol(jget(sm, "latency_s", "tpot", "mean"), 0.01, 1e-9);
    ck_assert_double_eq_tol(jget(sm, "latency_s", "queue", "mean"), 0.0, 1e-12);
    /* One replica at $3600/h for 0.19 s costs $0.19. */
    ck_assert_double_eq_tol(jget(sm, "cost_usd", "total", NULL), 0.19, 1e-9);
    ck_assert_double_eq_tol(jget(sm, "utilization", "busy_mean", NULL), 1.0, 1e-9);
    json_decref(sm);
    remove_tmpdir();
}
END_TEST

/* Two prompts arriving together share the prefill step and then decode in
 * one batch; with max_num_seqs 1 the second waits for the first. */
START_TEST(test_batching_shared_and_limited)
{
    json_t *sm;

    make_tmpdir();
    sm = run_batching(NATIVE_HEADER "0,100,10,,\n0,100,10,,\n", "");
    ck_assert_double_eq_tol(jget(sm, "latency_s", "ttft", "mean"), 0.2, 1e-9);
    ck_assert_double_eq_tol(jget(sm, "latency_s", "e2e", "max"), 0.29, 1e-9);
    json_decref(sm);

    sm = run_batching(NATIVE_HEADER "0,100,10,,\n0,100,10,,\n", "  replica: {max_num_seqs: 1}\n");
    ck_assert_double_eq_tol(jget(sm, "latency_s", "queue", "max"), 0.19, 1e-9);
    ck_assert_double_eq_tol(jget(sm, "latency_s", "ttft", "max"), 0.29, 1e-9);
    ck_assert_double_eq_tol(jget(sm, "latency_s", "e2e", "max"), 0.38, 1e-9);
    json_decref(sm);
    remove_tmpdir();
}
END_TEST

/* A 3000-token prompt under a 1000-token budget prefills in three chunks,
 * during which a decoding sequence keeps producing tokens. */
START_TEST(test_batching_chunked_prefill)
{
    json_t *sm;

    make_tmpdir();
    sm = run_batching(NATIVE_HEADER "0,3000,1,,\n", "  replica: {max_batched_tokens: 1000}\n");
    ck_assert_double_eq_tol(jget(sm, "latency_s", "ttft", "mean"), 3.0, 1e-9);
    json_decref(sm);
    /* Without chunking the whole prompt runs in one step: same here, 3 s. */
    sm = run_batching(NATIVE_HEADER "0,3000,1,,\n",
                      "  replica: {max_batched_tokens: 1000, chunked_prefill: false}\n");
    ck_assert_double_eq_tol(jget(sm, "latency_s", "ttft", "mean"), 3.0, 1e-9);
    json_decref(sm);
    /* A decoding request is not stalled by the long prompt when chunked:
     * each of its steps costs one chunk (1 s) + 10 ms, not the whole 3 s. */
    sm = run_batching(NATIVE_HEADER "0,10,3,,\n0.001,3000,1,,\n", "  replica: {max_batched_tokens: 1001}\n");
    ck_assert_double_eq(jget(sm, "requests", "completed", NULL), 2);
    ck_assert(jget(sm, "latency_s", "e2e", "p50") < 2.5); /* the short one */
    json_decref(sm);
    remove_tmpdir();
}
END_TEST

/* A KV cache too small for both sequences forces a preemption; both finish. */
START_TEST(test_batching_kv_preemption)
{
    json_t *sm;

    make_tmpdir();
    sm = run_batching(NATIVE_HEADER "0,100,100,,\n0,100,100,,\n", "  replica: {kv_cache_tokens: 250}\n");
    ck_assert_double_eq(jget(sm, "requests", "completed", NULL), 2);
    ck_assert(jget(sm, "requests", "preempted", NULL) >= 1);
    ck_assert(jget(sm, "utilization", "kv_mean", NULL) > 0.5);
    json_decref(sm);
    /* A prompt that can never fit is rejected at once. */
    sm = run_batching(NATIVE_HEADER "0,300,10,,\n0,10,10,,\n", "  replica: {kv_cache_tokens: 250}\n");
    ck_assert_double_eq(jget(sm, "requests", "rejected", NULL), 1);
    ck_assert_double_eq(jget(sm, "requests", "completed", NULL), 1);
    json_decref(sm);
    remove_tmpdir();
}
END_TEST

/* ---- the gateway: bounded queue, timeout, routing -------------------------------------------- */

START_TEST(test_gateway_capacity_and_timeout)
{
    json_t *sm;

    make_tmpdir();
    write_file("t.csv", NATIVE_HEADER "0,1,1,,\n0,1,1,,\n0,1,1,,\n0,1,1,,\n");
    /* One server busy 10 s per request; the queue holds 2; the 4th is rejected. */
    sm = run_yaml("workload: {trace: t.csv}\nservice: {kind: deterministic, mean: 10s}\n"
                  "cluster: {replicas: 1}\ngateway: {queue_capacity: 2}\n");
    ck_assert_double_eq(jget(sm, "requests", "rejected", NULL), 1);
    ck_assert_double_eq(jget(sm, "requests", "completed", NULL), 3);
    ck_assert_double_eq_tol(jget(sm, "latency_s", "queue", "max"), 20.0, 1e-9);
    json_decref(sm);
    /* With a 15 s timeout the 3rd and 4th would start at 20 s and 30 s: timed out. */
    sm = run_yaml("workload: {trace: t.csv}\nservice: {kind: deterministic, mean: 10s}\n"
                  "cluster: {replicas: 1}\ngateway: {queue_timeout: 15s}\n");
    ck_assert_double_eq(jget(sm, "requests", "timed_out", NULL), 2);
    ck_assert_double_eq(jget(sm, "requests", "completed", NULL), 2);
    ck_assert_double_eq_tol(jget(sm, "slo", "attainment", NULL), 0.5, 1e-12);
    json_decref(sm);
    remove_tmpdir();
}
END_TEST

/* Round robin over two servers with requests 0.6 s apart and 1 s of
 * service: each server gets every other request, so nobody waits. */
START_TEST(test_gateway_round_robin)
{
    char trace[4096] = NATIVE_HEADER;
    json_t *sm;
    int i;

    make_tmpdir();
    for (i = 0; i < 50; i++)
        snprintf(trace + strlen(trace), sizeof(trace) - strlen(trace), "%.1f,1,1,,\n", i * 0.6);
    write_file("t.csv", trace);
    sm = run_yaml("workload: {trace: t.csv}\nservice: {kind: deterministic, mean: 1s}\n"
                  "cluster: {replicas: 2}\ngateway: {routing: round_robin}\n");
    ck_assert_double_eq(jget(sm, "requests", "completed", NULL), 50);
    ck_assert_double_eq_tol(jget(sm, "latency_s", "queue", "max"), 0.0, 1e-12);
    json_decref(sm);
    remove_tmpdir();
}
END_TEST

/* ---- queueing theory ------------------------------------------------------------------------------- */

/* Erlang C: probability of waiting in M/M/c with offered load a = lambda/mu. */
static double erlang_c(int c, double a)
{
    double term = 1.0, sum = 0.0, top;
    int k;

    for (k = 0; k < c; k++) {
        sum += term;
        term *= a / (k + 1);
    }
    top = term / (1.0 - a / c); /* a^c / c! / (1 - rho) */
    return top / (sum + top);
}

/* Mean queue wait of M/M/c with service mean 1 s. */
static double mmc_wq(int c, double rho)
{
    double a = rho * c;
    return erlang_c(c, a) / (c - a);
}

static json_t *run_queue(const char *kind, int c, double rho, double hours, uint64_t seed)
{
    char yaml[1024];

    snprintf(yaml, sizeof(yaml),
             "seed: %llu\n"
             "workload: {generator: {kind: poisson, rate: %.17g, duration: %.17gh}}\n"
             "service: {kind: %s, mean: 1s}\n"
             "cluster: {replicas: %d}\n",
             (unsigned long long)seed, rho * c, hours, kind, c);
    return run_yaml(yaml);
}

static void check_mmc(int c, double rho, double hours)
{
    json_t *sm;
    double wq = mmc_wq(c, rho), got;

    make_tmpdir();
    sm = run_queue("exponential", c, rho, hours, 1);
    got = jget(sm, "latency_s", "queue", "mean");
    printf("M/M/%d rho %.2f: Wq simulated %.4f s, Erlang C %.4f s (%+.2f%%, %.0f requests)\n", c, rho, got, wq,
           100 * (got - wq) / wq, jget(sm, "requests", "completed", NULL));
    ck_assert_msg(fabs(got - wq) / wq < 0.03, "M/M/%d at rho %.2f: Wq %.4f vs Erlang C %.4f", c, rho, got, wq);
    /* Utilisation of the servers is rho. */
    ck_assert_double_eq_tol(jget(sm, "utilization", "busy_mean", NULL), rho, 0.01);
    json_decref(sm);
    remove_tmpdir();
}

START_TEST(test_mm1_rho_050) { check_mmc(1, 0.50, 300); }
END_TEST
START_TEST(test_mm1_rho_080) { check_mmc(1, 0.80, 600); }
END_TEST
START_TEST(test_mm1_rho_095) { check_mmc(1, 0.95, 4000); }
END_TEST
START_TEST(test_mmc_rho_050) { check_mmc(4, 0.50, 100); }
END_TEST
START_TEST(test_mmc_rho_080) { check_mmc(4, 0.80, 150); }
END_TEST
START_TEST(test_mmc_rho_095) { check_mmc(4, 0.95, 1000); }
END_TEST

/* M/D/1: Pollaczek-Khinchine gives Wq = rho / (2 mu (1 - rho)). */
START_TEST(test_md1)
{
    json_t *sm;
    double rho = 0.8, wq = rho / (2 * (1 - rho)), got;

    make_tmpdir();
    sm = run_queue("deterministic", 1, rho, 300, 3);
    got = jget(sm, "latency_s", "queue", "mean");
    printf("M/D/1 rho %.2f: Wq simulated %.4f s, Pollaczek-Khinchine %.4f s\n", rho, got, wq);
    ck_assert_msg(fabs(got - wq) / wq < 0.03, "M/D/1: %.4f vs %.4f", got, wq);
    json_decref(sm);
    remove_tmpdir();
}
END_TEST

/* ---- determinism ---------------------------------------------------------------------------------- */

START_TEST(test_determinism)
{
    json_t *a, *b, *c;
    char *sa, *sb, *sc;

    make_tmpdir();
    a = run_queue("exponential", 3, 0.7, 2, 11);
    b = run_queue("exponential", 3, 0.7, 2, 11);
    c = run_queue("exponential", 3, 0.7, 2, 12);
    sa = json_dumps(a, JSON_REAL_PRECISION(17));
    sb = json_dumps(b, JSON_REAL_PRECISION(17));
    sc = json_dumps(c, JSON_REAL_PRECISION(17));
    ck_assert_str_eq(sa, sb);
    ck_assert_str_ne(sa, sc);
    free(sa);
    free(sb);
    free(sc);
    json_decref(a);
    json_decref(b);
    json_decref(c);
    remove_tmpdir();
}
END_TEST


/* ---- the HPA in the loop ------------------------------------------------------------------------------- */

/* Read column COL of the timeline row whose time_s equals T. */
static double timeline_at(const char *dir, double t, int col)
{
    char path[512], line[1024];
    FILE *f;
    double v = NAN;

    snprintf(path, sizeof(path), "%s/timeline.csv", dir);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f)) {
        char *p = line, *end;
        double row_t = strtod(p, &end);
        int i;
        if (end == p || fabs(row_t - t) > 1e-6)
            continue;
        for (i = 0; i < col && p != NULL; i++) {
            p = strchr(p, ',');
            if (p)
                p++;
        }
        if (p != NULL)
            v = strtod(p, NULL);
        break;
    }
    fclose(f);
    return v;
}

/* Overload at 10 requests/s on one server (1 s each): the gateway queue
 * grows, the HPA (External gateway_requests_waiting, AverageValue 1) wants
 * far more replicas than the scale-up policy allows: +4 pods per 15 s sync
 * (behavior, selectPolicy Max of Pods 4 and Percent 100). */
START_TEST(test_hpa_scale_up_rate)
{
    char trace[16384] = NATIVE_HEADER, dir[600];
    struct sim_options opt = {0};
    struct scenario *s;
    struct err e = {0};
    json_t *sm;
    int i;

    make_tmpdir();
    for (i = 0; i < 600; i++)
        snprintf(trace + strlen(trace), sizeof(trace) - strlen(trace), "%.1f,1,1,,\n", i * 0.1);
    write_file("t.csv", trace);
    s = load_yaml("workload: {trace: t.csv}\n"
                  "service: {kind: deterministic, mean: 1s}\n"
                  "cluster: {replicas: 1, startup: {model_load: 20s}}\n"
                  "autoscaler:\n"
                  "  hpa:\n"
                  "    minReplicas: 1\n"
                  "    maxReplicas: 12\n"
                  "    metrics:\n"
                  "    - type: External\n"
                  "      external: {metric: {name: gateway_requests_waiting}, target: {type: AverageValue, averageValue: '1'}}\n"
                  "    behavior:\n"
                  "      scaleUp: {stabilizationWindowSeconds: 0, policies: [{type: Pods, value: 4, periodSeconds: 15},\n"
                  "                {type: Percent, value: 100, periodSeconds: 15}]}\n"
                  "output: {interval: 10s}\n",
                  NULL, 0);
    snprintf(dir, sizeof(dir), "%s", tmpdir);
    opt.outdir = dir;
    opt.reproducible = true;
    sm = sim_run(s, &opt, &e);
    ck_assert_msg(sm != NULL, "%s", e.msg);
    /* timeline columns: 7 replicas_desired, 8 replicas_ready */
    ck_assert_double_eq(timeline_at(dir, 0, 7), 1);   /* no sync yet by t = 10 */
    ck_assert_double_eq(timeline_at(dir, 10, 7), 5);  /* t = 15: 1 + max(4, 100%) */
    ck_assert_double_eq(timeline_at(dir, 10, 8), 1);  /* the new ones are still starting */
    ck_assert_double_eq(timeline_at(dir, 30, 7), 10); /* t = 30: 5 + max(4, 5) */
    ck_assert_double_eq(timeline_at(dir, 30, 8), 5);  /* t = 35: the first four are ready */
    ck_assert_double_eq(timeline_at(dir, 40, 7), 12); /* t = 45: capped at maxReplicas */
    ck_assert_double_eq(jget(sm, "replicas", "max", NULL), 12);
    ck_assert_double_eq(jget(sm, "events", "cold_starts", NULL), 11);
    ck_assert_double_eq(jget(sm, "requests", "completed", NULL), 600);
    json_decref(sm);
    scenario_free(s);
    remove_tmpdir();
}
END_TEST

/* A diurnal day on a roofline profile: the HPA follows the load up and down,
 * every request completes, and the run is deterministic. */
START_TEST(test_hpa_follows_load)
{
    static const char *yaml =
        "seed: 3\n"
        "workload:\n"
        "  generator: {kind: diurnal, rate: 6, amplitude: 0.8, period: 2h, duration: 2h}\n"
        "service:\n  roofline: {gpu: A100-80GB, model: llama-2-7b}\n"
        "cluster: {replicas: 2, startup: {image_pull: 30s, model_load: 30s}}\n"
        "autoscaler:\n"
        "  hpa:\n"
        "    minReplicas: 1\n"
        "    maxReplicas: 10\n"
        "    metrics:\n"
        "    - {type: Pods, pods: {metric: {name: llmserve_requests_running}, target: {type: AverageValue, averageValue: '16'}}}\n"
        "  metrics: {scrape_interval: 15s, adapter_lag: 30s}\n";
    json_t *a, *b;
    char *sa, *sb;

    make_tmpdir();
    a = run_yaml(yaml);
    b = run_yaml(yaml);
    sa = json_dumps(a, 0);
    sb = json_dumps(b, 0);
    ck_assert_str_eq(sa, sb);
    ck_assert(jget(a, "events", "scale_ups", NULL) >= 1);
    ck_assert(jget(a, "events", "scale_downs", NULL) >= 1);
    ck_assert(jget(a, "replicas", "max", NULL) > 2);
    ck_assert(jget(a, "replicas", "min", NULL) < 2);
    ck_assert(jget(a, "events", "cold_starts", NULL) >= 1);
    ck_assert_double_eq(jget(a, "requests", "completed", NULL), jget(a, "requests", "arrived", NULL));
    free(sa);
    free(sb);
    json_decref(a);
    json_decref(b);
    remove_tmpdir();
}
END_TEST

START_TEST(test_hpa_scenario_errors)
{
    make_tmpdir();
    expect_load_error(MINIMAL_YAML "autoscaler:\n  hpa:\n    maxReplicas: 4\n    metrics:\n"
                      "    - {type: Pods, pods: {metric: {name: tokens_per_joule}, target: {type: AverageValue, averageValue: '1'}}}\n",
                      NULL, 0, "bad.yaml:11", "not a metric the simulated replicas export");
    expect_load_error(MINIMAL_YAML "autoscaler:\n  hpa: {maxReplicas: 1}\n", NULL, 0, "bad.yaml", "minReplicas..maxReplicas");
    expect_load_error(MINIMAL_YAML "autoscaler:\n  metrics: {scrape_interval: -15s}\n", NULL, 0, "bad.yaml:8",
                      "negative duration");
    expect_load_error(MINIMAL_YAML "  startup: {model_load: 1m, warmup: 5s}\n", NULL, 0, "bad.yaml:7",
                      "unknown key 'warmup'");
    remove_tmpdir();
}
END_TEST


/* ---- the response cache ------------------------------------------------------------------------------- */

/* LRU order, TTL expiry and eviction, and the hash table against a plain
 * array model under random operations (deletions shift probe chains). */
START_TEST(test_cache_lru_ttl)
{
    struct cache *c = cache_create(2);
    struct rng r;
    uint64_t keys[64];
    double exp_s[64];
    int i, n = 0;

    ck_assert_ptr_nonnull(c);
    cache_put(c, 1, 100);
    cache_put(c, 2, 100);
    ck_assert(cache_get(c, 1, 0)); /* 1 is now the most recent */
    cache_put(c, 3, 100);          /* evicts 2 */
    ck_assert(!cache_get(c, 2, 0));
    ck_assert(cache_get(c, 1, 0));
    ck_assert(cache_get(c, 3, 0));
    ck_assert_uint_eq(cache_evictions(c), 1);
    ck_assert(!cache_get(c, 3, 100)); /* expired at its time */
    ck_assert_uint_eq(cache_len(c), 1);
    cache_free(c);

    /* Model: an array of (key, expiry) in LRU order, most recent first. */
    c = cache_create(48);
    rng_init(&r, 5, 0);
    for (i = 0; i < 200000; i++) {
        uint64_t key = 1 + rng_below(&r, 200);
        double now = i * 0.01;
        int j, found = -1;
        for (j = 0; j < n; j++)
            if (keys[j] == key)
                found = j;
        if (rng_uniform(&r) < 0.5) {
            bool want = found >= 0 && exp_s[found] > now;
            ck_assert_int_eq(cache_get(c, key, now), want);
            if (found >= 0) {
                uint64_t k = keys[found];
                double x = exp_s[found];
                memmove(&keys[1], &keys[0], (size_t)found * sizeof(keys[0]));
                memmove(&exp_s[1], &exp_s[0], (size_t)found * sizeof(exp_s[0]));
                keys[0] = k;
                exp_s[0] = x;
                if (!want) { /* expired: dropped */
                    memmove(&keys[0], &keys[1], (size_t)(n - 1) * sizeof(keys[0]));
                    memmove(&exp_s[0], &exp_s[1], (size_t)(n - 1) * sizeof(exp_s[0]));
                    n--;
                }
            }
        } else {
            double x = now + rng_uniform(&r) * 30;
            if (found >= 0) {
                memmove(&keys[1], &keys[0], (size_t)found * sizeof(keys[0]));
                memmove(&exp_s[1], &exp_s[0], (size_t)found * sizeof(exp_s[0]));
            } else {
                if (n == 48)
                    n--; /* the least recent goes */
                memmove(&keys[1], &keys[0], (size_t)n * sizeof(keys[0]));
                memmove(&exp_s[1], &exp_s[0], (size_t)n * sizeof(exp_s[0]));
                n++;
            }
            keys[0] = key;
            exp_s[0] = x;
            cache_put(c, key, x);
        }
        ck_assert_uint_eq(cache_len(c), (size_t)n);
    }
    cache_free(c);
}
END_TEST

/* Closed form: one prompt re-asked as a Poisson process of rate L, answers
 * stored when served (after D) for T.  Each cycle starts with a miss, then
 * L*D more misses arrive before the answer is stored, then L*T hits: hit
 * ratio = L T / (1 + L D + L T). */
START_TEST(test_cache_poisson_closed_form)
{
    const double L = 1.0, T = 10.0, D = 0.001;
    size_t cap = 4 * 1024 * 1024, used;
    char *trace = malloc(cap);
    double t = 0, want = L * T / (1 + L * D + L * T), got;
    struct rng r;
    json_t *sm;
    int i;

    ck_assert_ptr_nonnull(trace);
    make_tmpdir();
    rng_init(&r, 9, 0);
    used = (size_t)snprintf(trace, cap, NATIVE_HEADER);
    for (i = 0; i < 100000; i++) {
        t += rng_exp(&r, 1.0 / L);
        used += (size_t)snprintf(trace + used, cap - used, "%.6f,10,5,00000000000000ab,\n", t);
    }
    write_file("t.csv", trace);
    free(trace);
    sm = run_yaml("workload: {trace: t.csv}\nservice: {kind: deterministic, mean: 1ms}\n"
                  "cluster: {replicas: 1}\ncache: {ttl: 10s, hit_latency: 2ms}\n");
    got = jget(sm, "cache", "hit_ratio", NULL);
    printf("cache, Poisson re-requests of one prompt, TTL %.0f s: hit ratio %.4f, closed form %.4f\n", T, got, want);
    ck_assert_msg(fabs(got - want) < 0.01, "hit ratio %.4f vs %.4f", got, want);
    ck_assert_double_eq(jget(sm, "cache", "lookups", NULL), 100000);
    ck_assert_double_eq(jget(sm, "requests", "completed", NULL), 100000);
    ck_assert(jget(sm, "cache", "gpu_s_saved", NULL) > 0);
    json_decref(sm);
    /* Half the traffic deterministic: the cacheable requests are a Poisson
     * process of rate L/2, so half the lookups and L T / 2 / (1 + L D / 2 + L T / 2). */
    sm = run_yaml("workload: {trace: t.csv}\nservice: {kind: deterministic, mean: 1ms}\n"
                  "cluster: {replicas: 1}\ncache: {ttl: 10s, deterministic_fraction: 0.5}\n");
    want = L * T / 2 / (1 + L * D / 2 + L * T / 2);
    got = jget(sm, "cache", "hit_ratio", NULL);
    ck_assert_msg(fabs(got - want) < 0.015, "hit ratio %.4f vs %.4f", got, want);
    ck_assert(fabs(jget(sm, "cache", "lookups", NULL) - 50000) < 5 * sqrt(25000.0));
    json_decref(sm);
    remove_tmpdir();
}
END_TEST


/* ---- node pools and spot ---------------------------------------------------------------------------- */

/* Two replicas on spot nodes; a listed interruption at 100 s notices the
 * oldest node (AWS: 120 s); spot capacity is then unavailable, so the
 * replacement goes to the on-demand fallback pool (60 s to provision, 30 s
 * to start).  The two long requests on the interrupted replica are still
 * running at 220 s when the node goes: they are requeued, their KV lost, and
 * finish elsewhere. */
START_TEST(test_spot_interruption_requeue)
{
    json_t *sm, *pools;

    make_tmpdir();
    write_file("flat.json", flat_profile_json);
    write_file("t.csv", NATIVE_HEADER "0,100,30000,,\n0,100,30000,,\n0,100,30000,,\n0,100,30000,,\n");
    sm = run_yaml("workload: {trace: t.csv}\n"
                  "service: {profile: flat.json}\n"
                  "cluster:\n"
                  "  replicas: 2\n"
                  "  startup: {model_load: 30s}\n"
                  "  pools:\n"
                  "    spot:\n"
                  "      {pricing: spot, gpus_per_node: 1, hourly_usd: 1, on_demand_hourly_usd: 3, fallback: ondemand,\n"
                  "       idle_timeout: 0, spot: {interruptions: [100s], notice: 120s, unavailable: 10m}}\n"
                  "    ondemand: {pricing: on_demand, gpus_per_node: 1, hourly_usd: 3, share: 0, provisioning: 60s,\n"
                  "               idle_timeout: 0}\n");
    ck_assert_double_eq(jget(sm, "requests", "completed", NULL), 4);
    ck_assert_double_eq(jget(sm, "events", "preemptions", NULL), 1);        /* nodes */
    ck_assert_double_eq(jget(sm, "events", "replicas_preempted", NULL), 1); /* replicas on them */
    ck_assert_double_eq(jget(sm, "events", "requeued", NULL), 2);
    ck_assert(jget(sm, "events", "lost_tokens", NULL) > 2 * 100);
    ck_assert_double_eq(jget(sm, "events", "cold_starts", NULL), 1);
    pools = json_object_get(sm, "pools");
    ck_assert_double_eq(jget(pools, "spot", "preemptions", NULL), 1);
    ck_assert_double_eq(jget(pools, "ondemand", "provisioned", NULL), 1);
    ck_assert_double_eq(jget(pools, "spot", "provisioned", NULL), 2);
    /* Spot at a third of the on-demand price: savings are the difference. */
    ck_assert_double_eq_tol(jget(sm, "cost_usd", "savings_vs_on_demand", NULL),
                            2 * jget(pools, "spot", "cost_usd", NULL), 1e-6);
    ck_assert_double_eq_tol(jget(sm, "cost_usd", "total", NULL),
                            jget(pools, "spot", "cost_usd", NULL) + jget(pools, "ondemand", "cost_usd", NULL), 1e-9);
    /* The interrupted node was billed from 0 to 220 s. */
    ck_assert(jget(pools, "spot", "node_hours", NULL) > 220.0 / 3600);
    json_decref(sm);
    /* The same interruption replayed from a file. */
    write_file("times.txt", "# spot reclaims seen last week\n100s  # the first\n\n");
    sm = run_yaml("workload: {trace: t.csv}\n"
                  "service: {profile: flat.json}\n"
                  "cluster:\n"
                  "  replicas: 2\n"
                  "  startup: {model_load: 30s}\n"
                  "  pools:\n"
                  "    spot:\n"
                  "      {pricing: spot, gpus_per_node: 1, hourly_usd: 1, on_demand_hourly_usd: 3, fallback: ondemand,\n"
                  "       idle_timeout: 0, spot: {interruptions_file: times.txt, notice: 120s, unavailable: 10m}}\n"
                  "    ondemand: {pricing: on_demand, gpus_per_node: 1, hourly_usd: 3, share: 0, provisioning: 60s,\n"
                  "               idle_timeout: 0}\n");
    ck_assert_double_eq(jget(sm, "events", "preemptions", NULL), 1);
    ck_assert_double_eq(jget(sm, "events", "requeued", NULL), 2);
    json_decref(sm);
    remove_tmpdir();
}
END_TEST

/* The cluster autoscaler: a pool node idles out after idle_timeout, and a
 * billing minimum rounds short lives up. */
START_TEST(test_pool_idle_and_billing_minimum)
{
    json_t *sm, *pools;

    make_tmpdir();
    write_file("flat.json", flat_profile_json);
    write_file("t.csv", NATIVE_HEADER "0,100,10,,\n");
    /* One request of 0.19 s on a node billed at least 60 s; min_nodes 0,
     * idle_timeout 10 s: the node goes at 10.19 s, billed 60 s. */
    sm = run_yaml("workload: {trace: t.csv}\n"
                  "service: {profile: flat.json}\n"
                  "cluster:\n"
                  "  replicas: 1\n"
                  "  billing_minimum: 60s\n"
                  "  pools: {gpu: {gpus_per_node: 1, hourly_usd: 3600, idle_timeout: 10s}}\n");
    pools = json_object_get(sm, "pools");
    ck_assert_double_eq_tol(jget(pools, "gpu", "cost_usd", NULL), 60.0, 1e-6);
    json_decref(sm);
    remove_tmpdir();
}
END_TEST

START_TEST(test_pool_errors)
{
    make_tmpdir();
    expect_load_error(MINIMAL_YAML "  pools: {a: {pricing: spot}}\n", NULL, 0, "bad.yaml:7", "needs its hourly_usd");
    expect_load_error(MINIMAL_YAML "  pools: {a: {fallback: b}}\n", NULL, 0, "bad.yaml:7", "not another pool");
    expect_load_error(MINIMAL_YAML "  pools: {a: {spot: {notice: 2m}}}\n", NULL, 0, "bad.yaml:7", "only for pricing: spot");
    expect_load_error(MINIMAL_YAML "  pools: {a: {min_nodes: 5, max_nodes: 2}}\n", NULL, 0, "bad.yaml:7", "min_nodes");
    expect_load_error(MINIMAL_YAML "  pools: {a: {gpu_per_node: 2}}\n", NULL, 0, "bad.yaml:7", "unknown key 'gpu_per_node'");
    write_file("times.txt", "10s\n5m\nsoon\n");
    expect_load_error(MINIMAL_YAML "  pools: {a: {pricing: spot, hourly_usd: 1, spot: {interruptions_file: times.txt}}}\n",
                      NULL, 0, "times.txt:3", "soon");
    write_file("times.txt", "5m\n10s\n");
    expect_load_error(MINIMAL_YAML "  pools: {a: {pricing: spot, hourly_usd: 1, spot: {interruptions_file: times.txt}}}\n",
                      NULL, 0, "times.txt:2", "must not go back");
    remove_tmpdir();
}
END_TEST

/* ---- regions and the global load balancer ---------------------------------------------------- */

#define TWO_REGIONS_YAML(clients)                                                                    \
    "workload: {trace: t.csv}\nservice: {kind: deterministic, mean: 10s}\ncluster: {replicas: 1}\n" \
    "regions:\n"                                                                                     \
    "  east: {latency: {east: 10ms, west: 80ms}}\n"                                                  \
    "  west: {latency: {east: 50ms, west: 20ms}}\n"                                                  \
    "clients: " clients "\n"

/* arrived = completed + rejected + timed_out + in_flight_at_end. */
static void check_conservation(json_t *sm)
{
    ck_assert_double_eq(jget(sm, "requests", "arrived", NULL),
                        jget(sm, "requests", "completed", NULL) + jget(sm, "requests", "rejected", NULL) +
                            jget(sm, "requests", "timed_out", NULL) + jget(sm, "requests", "in_flight_at_end", NULL));
}

/* Each request goes to the region nearest its clients; the round trip is
 * added to TTFT and E2E exactly. */
START_TEST(test_regions_nearest)
{
    json_t *sm;

    make_tmpdir();
    write_file("t.csv", NATIVE_HEADER "0,1,1,,\n20,1,1,,\n40,1,1,,\n");
    sm = run_yaml(TWO_REGIONS_YAML("{east: 1, west: 0}"));
    ck_assert_double_eq(jget(sm, "requests", "completed", NULL), 3);
    ck_assert_double_eq(jget(sm, "regions", "east", "arrived"), 3);
    ck_assert_double_eq(jget(sm, "regions", "east", "completed"), 3);
    ck_assert_double_eq(jget(sm, "regions", "west", "arrived"), 0);
    ck_assert_double_eq_tol(jget(sm, "latency_s", "ttft", "max"), 10.01, 1e-9);
    ck_assert_double_eq_tol(jget(sm, "latency_s", "e2e", "mean"), 10.01, 1e-9);
    ck_assert_double_eq(jget(sm, "events", "failed_over", NULL), 0);
    check_conservation(sm);
    json_decref(sm);
    sm = run_yaml(TWO_REGIONS_YAML("{east: 0, west: 1}"));
    ck_assert_double_eq(jget(sm, "regions", "west", "completed"), 3);
    ck_assert_double_eq(jget(sm, "regions", "east", "arrived"), 0);
    ck_assert_double_eq_tol(jget(sm, "latency_s", "ttft", "max"), 10.02, 1e-9);
    ck_assert_double_eq_tol(jget(sm, "latency_s", "e2e", "mean"), 10.02, 1e-9);
    json_decref(sm);
    /* Without regions: no regions key, no failed_over. */
    sm = run_yaml("workload: {trace: t.csv}\nservice: {kind: deterministic, mean: 10s}\ncluster: {replicas: 1}\n");
    ck_assert_ptr_null(json_object_get(sm, "regions"));
    ck_assert_ptr_null(json_object_get(json_object_get(sm, "events"), "failed_over"));
    ck_assert_double_eq_tol(jget(sm, "latency_s", "ttft", "max"), 10.0, 1e-12);
    json_decref(sm);
    remove_tmpdir();
}
END_TEST

/* East goes down at 5 s holding one running and two queued requests: all
 * three fail over to west (50 ms from east's clients), keeping their arrival
 * time, and run there one after the other; after the outage, east serves
 * its clients again. */
START_TEST(test_regions_failover)
{
    json_t *sm;

    make_tmpdir();
    write_file("t.csv", NATIVE_HEADER "0,1,1,,\n0,1,1,,\n0,1,1,,\n200,1,1,,\n");
    sm = run_yaml("workload: {trace: t.csv}\nservice: {kind: deterministic, mean: 10s}\ncluster: {replicas: 1}\n"
                  "regions:\n"
                  "  east: {latency: {east: 10ms, west: 80ms}, outages: [{start: 5s, end: 100s}]}\n"
                  "  west: {latency: {east: 50ms, west: 20ms}}\n"
                  "clients: {east: 1, west: 0}\n");
    ck_assert_double_eq(jget(sm, "requests", "arrived", NULL), 4);
    ck_assert_double_eq(jget(sm, "requests", "completed", NULL), 4);
    ck_assert_double_eq(jget(sm, "events", "failed_over", NULL), 3);
    ck_assert_double_eq(jget(sm, "regions", "east", "failed_over"), 3);
    ck_assert_double_eq(jget(sm, "regions", "east", "arrived"), 4);
    ck_assert_double_eq(jget(sm, "regions", "east", "completed"), 1);
    ck_assert_double_eq(jget(sm, "regions", "west", "arrived"), 3);
    ck_assert_double_eq(jget(sm, "regions", "west", "completed"), 3);
    ck_assert_double_eq(jget(sm, "regions", "west", "failed_over"), 0);
    /* West serves them 5-15, 15-25, 25-35 s; the last waited from 0 s. */
    ck_assert_double_eq_tol(jget(sm, "latency_s", "e2e", "max"), 35.05, 1e-9);
    /* The request after the outage is back in east: 10 s + 10 ms. */
    ck_assert_double_eq_tol(jget(sm, "latency_s", "e2e", "mean"), (15.05 + 25.05 + 35.05 + 10.01) / 4, 1e-9);
    check_conservation(sm);
    json_decref(sm);
    /* Both regions down: what east held and the new arrival are rejected. */
    sm = run_yaml("workload: {trace: t.csv}\nservice: {kind: deterministic, mean: 10s}\ncluster: {replicas: 1}\n"
                  "regions:\n"
                  "  east: {latency: {east: 10ms, west: 80ms}, outages: [{start: 5s, end: 1000s}]}\n"
                  "  west: {latency: {east: 50ms, west: 20ms}, outages: [{start: 0s, end: 1000s}]}\n"
                  "clients: {east: 1, west: 0}\n");
    ck_assert_double_eq(jget(sm, "requests", "rejected", NULL), 4);
    ck_assert_double_eq(jget(sm, "requests", "completed", NULL), 0);
    check_conservation(sm);
    json_decref(sm);
    remove_tmpdir();
}
END_TEST

/* A region whose gateway queue is full sends the request to the next
 * nearest; with both full, it is rejected. */
START_TEST(test_regions_capacity_spill)
{
    json_t *sm;

    make_tmpdir();
    write_file("t.csv", NATIVE_HEADER "0,1,1,,\n0,1,1,,\n0,1,1,,\n0,1,1,,\n0,1,1,,\n");
    sm = run_yaml(TWO_REGIONS_YAML("{east: 1}") "gateway: {queue_capacity: 1}\n");
    ck_assert_double_eq(jget(sm, "regions", "east", "arrived"), 2);
    ck_assert_double_eq(jget(sm, "regions", "west", "arrived"), 2);
    ck_assert_double_eq(jget(sm, "requests", "completed", NULL), 4);
    ck_assert_double_eq(jget(sm, "requests", "rejected", NULL), 1);
    /* West's second request waits 10 s there, and its clients are 50 ms away. */
    ck_assert_double_eq_tol(jget(sm, "latency_s", "e2e", "max"), 20.05, 1e-9);
    check_conservation(sm);
    json_decref(sm);
    remove_tmpdir();
}
END_TEST

/* Many requests, queue limits, timeouts and outages in both regions: every
 * request is accounted for once. */
START_TEST(test_regions_conservation)
{
    char trace[65536] = NATIVE_HEADER;
    json_t *sm;
    struct rng r;
    double t = 0;
    int i;

    make_tmpdir();
    write_file("flat.json", flat_profile_json);
    rng_init(&r, 3, 0);
    for (i = 0; i < 1500; i++) {
        t += rng_exp(&r, 0.2);
        snprintf(trace + strlen(trace), sizeof(trace) - strlen(trace), "%.4f,%d,%d,,\n", t,
                 (int)(50 + rng_below(&r, 400)), (int)(1 + rng_below(&r, 200)));
    }
    write_file("t.csv", trace);
    sm = run_yaml("workload: {trace: t.csv}\nservice: {profile: flat.json}\n"
                  "cluster: {replicas: 1, replica: {max_num_seqs: 8}}\n"
                  "gateway: {queue_capacity: 20, queue_timeout: 30s}\n"
                  "regions:\n"
                  "  a: {replicas: 2, latency: {a: 5ms, b: 60ms, c: 90ms}, outages: [{start: 60s, end: 120s}, {start: 200s, end: 230s}]}\n"
                  "  b: {latency: {a: 60ms, b: 5ms, c: 40ms}, outages: [{start: 100s, end: 150s}]}\n"
                  "  c: {replicas: 1, latency: {a: 90ms, b: 40ms, c: 5ms}}\n"
                  "clients: {a: 2, b: 1, c: 1}\n");
    check_conservation(sm);
    ck_assert(jget(sm, "events", "failed_over", NULL) > 0);
    ck_assert_double_eq(jget(sm, "requests", "arrived", NULL), 1500);
    ck_assert_double_eq(jget(sm, "regions", "a", "completed") + jget(sm, "regions", "b", "completed") +
                            jget(sm, "regions", "c", "completed"),
                        jget(sm, "requests", "completed", NULL));
    json_decref(sm);
    remove_tmpdir();
}
END_TEST

START_TEST(test_regions_errors)
{
    make_tmpdir();
    expect_load_error(MINIMAL_YAML "regions: {a: {latency: {a: 1ms, x: 2ms}}}\n", NULL, 0, "bad.yaml:7",
                      "unknown region 'x'");
    expect_load_error(MINIMAL_YAML "regions: {a: {latency: {a: 1ms}}, b: {latency: {a: 1ms, b: 1ms}}}\n", NULL, 0,
                      "bad.yaml:7", "missing client region 'b'");
    expect_load_error(MINIMAL_YAML "regions: {a: {latency: {a: 1ms}}}\nclients: {b: 1}\n", NULL, 0, "bad.yaml:8",
                      "clients: unknown region 'b'");
    expect_load_error(MINIMAL_YAML "regions: {a: {latency: {a: 1ms}, outages: [{start: 2h, end: 1h}]}}\n", NULL, 0,
                      "bad.yaml:7", "end must come after start");
    expect_load_error(MINIMAL_YAML "regions: {a: {latency: {a: -1ms}}}\n", NULL, 0, "bad.yaml:7", "negative");
    expect_load_error(MINIMAL_YAML "regions: {a: {latency: {a: 1ms}, outages: [{start: -1h, end: 1h}]}}\n", NULL, 0,
                      "bad.yaml:7", "negative");
    expect_load_error(MINIMAL_YAML "regions: {a: {latency: {a: 1ms}}}\nclients: {a: 0}\n", NULL, 0, "bad.yaml:8",
                      "add up to more than 0");
    expect_load_error(MINIMAL_YAML "regions: {a: {replica: 2, latency: {a: 1ms}}}\n", NULL, 0, "bad.yaml:7",
                      "unknown key 'replica'");
    expect_load_error(MINIMAL_YAML "clients: {a: 1}\n", NULL, 0, "bad.yaml:7", "only with regions");
    remove_tmpdir();
}
END_TEST

static Suite *suite_sim(void)
{
    Suite *s = suite_create("sim");
    TCase *tc = tcase_create("engine_profile_scenario");
    TCase *tb = tcase_create("cluster");
    TCase *tq = tcase_create("queueing");

    tcase_add_test(tc, test_engine_order);
    tcase_add_test(tc, test_roofline_llama2_7b);
    tcase_add_test(tc, test_catalog_complete);
    tcase_add_test(tc, test_profile_table);
    tcase_add_test(tc, test_profile_step_overhead);
    tcase_add_test(tc, test_profile_errors);
    tcase_add_test(tc, test_scenario_defaults_and_set);
    tcase_add_test(tc, test_scenario_errors);
    suite_add_tcase(s, tc);
    tcase_add_test(tb, test_batching_single_request);
    tcase_add_test(tb, test_batching_shared_and_limited);
    tcase_add_test(tb, test_batching_chunked_prefill);
    tcase_add_test(tb, test_batching_kv_preemption);
    tcase_add_test(tb, test_gateway_capacity_and_timeout);
    tcase_add_test(tb, test_gateway_round_robin);
    tcase_add_test(tb, test_determinism);
    tcase_add_test(tb, test_hpa_scale_up_rate);
    tcase_add_test(tb, test_hpa_follows_load);
    tcase_add_test(tb, test_hpa_scenario_errors);
    tcase_add_test(tb, test_cache_lru_ttl);
    tcase_add_test(tb, test_cache_poisson_closed_form);
    tcase_add_test(tb, test_spot_interruption_requeue);
    tcase_add_test(tb, test_pool_idle_and_billing_minimum);
    tcase_add_test(tb, test_pool_errors);
    tcase_add_test(tb, test_regions_nearest);
    tcase_add_test(tb, test_regions_failover);
    tcase_add_test(tb, test_regions_capacity_spill);
    tcase_add_test(tb, test_regions_conservation);
    tcase_add_test(tb, test_regions_errors);
    suite_add_tcase(s, tb);
    tcase_set_timeout(tq, 600);
    tcase_add_test(tq, test_mm1_rho_050);
    tcase_add_test(tq, test_mm1_rho_080);
    tcase_add_test(tq, test_mm1_rho_095);
    tcase_add_test(tq, test_mmc_rho_050);
    tcase_add_test(tq, test_mmc_rho_080);
    tcase_add_test(tq, test_mmc_rho_095);
    tcase_add_test(tq, test_md1);
    suite_add_tcase(s, tq);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite_sim());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
