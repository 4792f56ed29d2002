/* check_hpa.c -- the HPA controller against the Kubernetes controller's own
 * test cases.  Each case names the upstream test in
 * kubernetes/kubernetes pkg/controller/podautoscaler (replica_calculator_test.go,
 * horizontal_test.go) whose inputs it reproduces and whose expected value
 * it asserts.  Those tests run the controller with a 2-minute CPU
 * initialisation period and a 10-second readiness delay; pods without a
 * start time started long ago; metric samples carry the zero timestamp and
 * a 1-minute window; "hot" pods started inside the initialisation period. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/conf.h"
#include "sim/hpa.h"
#include "sim/quantity.h"

#define NOW 100000.0
#define HOT (NOW - 60)   /* within the 2-minute initialisation period */
#define COOL (NOW - 600) /* past it */
#define MAXPODS 16

/* Parse an HPA spec from YAML (origin "spec.yaml"); aborts on error. */
static void spec_yaml(const char *yaml, struct hpa_spec *spec)
{
    struct err e = {0};
    struct conf *c = conf_load_string(yaml, "spec.yaml", &e);

    if (c == NULL)
        ck_abort_msg("YAML: %s", e.msg);
    if (hpa_spec_from_conf(c, conf_root(c), spec, &e) < 0)
        ck_abort_msg("spec: %s", e.msg);
    conf_free(c);
    /* The upstream tests' controller constants. */
    spec->cpu_init_period_s = 120;
    spec->readiness_delay_s = 10;
}

/* The error message for a malformed spec, or "" if it parses. */
static const char *spec_error(const char *yaml)
{
    static struct err e;
    struct hpa_spec spec;
    struct conf *c;

    memset(&e, 0, sizeof(e));
    c = conf_load_string(yaml, "bad.yaml", &e);
    if (c == NULL)
        return e.msg;
    if (hpa_spec_from_conf(c, conf_root(c), &spec, &e) == 0)
        e.msg[0] = '\0';
    conf_free(c);
    return e.msg;
}

/* Pods as replicaCalcTestCase builds them: LEVELS[i] (milli, per container,
 * two containers) for the first NLEVELS pods, REQ_M (per container), the
 * Ready status from READY ("TTF"; NULL: all true), the phase from PHASE
 * ("RRFP"; NULL: running), the start time from START (NULL: long ago). */
struct pods {
    struct hpa_pod pod[MAXPODS];
    size_t n;
};

static void make_pods(struct pods *p, size_t n, const int64_t *levels, size_t nlevels, const int64_t *req_m,
                      const char *ready, const char *phase, const double *start)
{
    size_t i;

    ck_assert_uint_le(n, MAXPODS);
    p->n = n;
    for (i = 0; i < n; i++) {
        struct hpa_pod *pod = &p->pod[i];

        hpa_pod_init(pod, NOW);
        pod->metric_time_s = HPA_LONG_AGO_S; /* the zero timestamp */
        pod->metric_window_s = 60;
        pod->ready = ready == NULL || ready[i] == 'T';
        if (phase != NULL)
            pod->phase = phase[i] == 'F' ? HPA_POD_FAILED : phase[i] == 'P' ? HPA_POD_PENDING : HPA_POD_RUNNING;
        if (start != NULL)
            pod->start_s = start[i];
        if (req_m != NULL) {
            pod->has_request[0] = true;
            pod->request_milli[0] = 2 * req_m[i];
        }
        if (i < nlevels) {
            pod->has_usage[0] = true;
            pod->usage_milli[0] = 2 * levels[i];
        }
    }
}

/* One sync of SPEC over PODS with a fresh state whose recommendations are
 * set but empty (the tests' `recommendations: []`). */
static struct hpa_result run(const struct hpa_spec *spec, int32_t current, const struct pods *p)
{
    struct hpa_state st;
    struct hpa_observation obs;
    struct hpa_result res;

    hpa_state_init(&st);
    st.recommendations_set = true;
    memset(&obs, 0, sizeof(obs));
    obs.status_replicas = -1;
    obs.pods = p ? p->pod : NULL;
    obs.npods = p ? p->n : 0;
    ck_assert_int_eq(hpa_step(&st, spec, NOW, current, &obs, &res), 0);
    hpa_state_free(&st);
    return res;
}

static const char *CPU30 = "{maxReplicas: 100, metrics: [{type: Resource, resource: {name: cpu, target: "
                           "{type: Utilization, averageUtilization: 30}}}]}";
static const char *CPU50 = "{maxReplicas: 100, metrics: [{type: Resource, resource: {name: cpu, target: "
                           "{type: Utilization, averageUtilization: 50}}}]}";
static const char *CPU100 = "{maxReplicas: 100, metrics: [{type: Resource, resource: {name: cpu, target: "
                            "{type: Utilization, averageUtilization: 100}}}]}";
static const int64_t R1[MAXPODS] = {1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000,
                                     1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000};

/* Check the first metric's proposal (ReplicaCalculator's replica count). */
static void expect_cpu(const char *specyaml, int32_t current, size_t n, const int64_t *levels, size_t nlevels,
                       const char *ready, const char *phase, const double *start, int32_t want, int32_t want_util)
{
    struct hpa_spec spec;
    struct pods p;
    struct hpa_result res;

    spec_yaml(specyaml, &spec);
    make_pods(&p, n, levels, nlevels, R1, ready, phase, start);
    res = run(&spec, current, &p);
    ck_assert_msg(res.metrics[0].valid, "metric invalid: %s", res.metrics[0].error);
    ck_assert_int_eq(res.metrics[0].replicas, want);
    if (want_util >= 0)
        ck_assert_int_eq(res.metrics[0].utilization, want_util);
}

/* ---- replica_calculator_test.go: Resource metrics -------------------------- */

START_TEST(test_calc_scale_up)
{
    /* TestReplicaCalcScaleUp: 3 pods at 300m/500m/700m of 1 CPU, target 30% -> 5 (50%) */
    expect_cpu(CPU30, 3, 3, (int64_t[]){300, 500, 700}, 3, NULL, NULL, NULL, 5, 50);
}
END_TEST

START_TEST(test_calc_unready_less_scale)
{
    /* TestReplicaCalcScaleUpUnreadyLessScale: first pod unready -> 4 (60%) */
    expect_cpu(CPU30, 3, 3, (int64_t[]){300, 500, 700}, 3, "FTT", NULL, NULL, 4, 60);
    /* TestReplicaCalcScaleUpHotCpuLessScale: first pod in its CPU init period -> 4 */
    expect_cpu(CPU30, 3, 3, (int64_t[]){300, 500, 700}, 3, NULL, NULL, (double[]){HOT, COOL, COOL}, 4, 60);
    /* TestReplicaCalcScaleUpUnreadyNoScale: two unready, 40% -> rebalance flips -> 3 */
    expect_cpu(CPU30, 3, 3, (int64_t[]){400, 500, 700}, 3, "TFF", NULL, NULL, 3, 40);
    /* TestReplicaCalcScaleHotCpuNoScale -> 3 */
    expect_cpu(CPU30, 3, 3, (int64_t[]){400, 500, 700}, 3, "TFF", NULL, (double[]){COOL, HOT, HOT}, 3, 40);
}
END_TEST

START_TEST(test_calc_ignores_failed)
{
    /* TestReplicaCalcScaleUpIgnoresFailedPods: 2 running + 2 failed -> 4 (60%) */
    expect_cpu(CPU30, 2, 4, (int64_t[]){500, 700}, 2, "TTFF", "RRFF", NULL, 4, 60);
}
END_TEST

START_TEST(test_calc_scale_down)
{
    /* TestReplicaCalcScaleDown: 5 pods, target 50% -> 3 (28%) */
    expect_cpu(CPU50, 5, 5, (int64_t[]){100, 300, 500, 250, 250}, 5, NULL, NULL, NULL, 3, 28);
    /* TestReplicaCalcScaleDownIncludeUnreadyPods -> 2 (30%) */
    expect_cpu(CPU50, 5, 5, (int64_t[]){100, 300, 500, 250, 250}, 5, "TTTFF", NULL, NULL, 2, 30);
    /* TestReplicaCalcScaleDownExcludeUnscheduledPods: 4 pending pods -> 1 (10%) */
    expect_cpu(CPU50, 5, 5, (int64_t[]){100}, 1, "TFFFF", "RPPPP", NULL, 1, 10);
    /* TestReplicaCalcScaleDownIgnoreHotCpuPods -> 2 (30%) */
    expect_cpu(CPU50, 5, 5, (int64_t[]){100, 300, 500, 250, 250}, 5, NULL, NULL,
               (double[]){COOL, COOL, COOL, HOT, HOT}, 2, 30);
}
END_TEST

START_TEST(test_calc_tolerance)
{
    /* TestReplicaCalcTolerance: requests 0.9/1.0/1.1, usage 1010m/1030m/1020m,
     * target 100% -> 102%, within tolerance -> 3 */
    struct hpa_spec spec;
    struct pods p;
    struct hpa_result res;

    spec_yaml(CPU100, &spec);
    make_pods(&p, 3, (int64_t[]){1010, 1030, 1020}, 3, (int64_t[]){900, 1000, 1100}, NULL, NULL, NULL);
    res = run(&spec, 3, &p);
    ck_assert_int_eq(res.metrics[0].replicas, 3);
    ck_assert_int_eq(res.metrics[0].utilization, 102);
}
END_TEST

START_TEST(test_calc_missing_metrics)
{
    /* TestReplicaCalcMissingMetrics: 2 of 4 pods report, 24% of 100% -> 3 */
    expect_cpu(CPU100, 4, 4, (int64_t[]){400, 95}, 2, NULL, NULL, NULL, 3, 24);
    /* TestReplicaCalcMissingMetricsNoChangeEq / Gt / Lt -> 2 */
    expect_cpu(CPU100, 2, 2, (int64_t[]){1000}, 1, NULL, NULL, NULL, 2, 100);
    expect_cpu(CPU100, 2, 2, (int64_t[]){1900}, 1, NULL, NULL, NULL, 2, 190);
    expect_cpu(CPU100, 2, 2, (int64_t[]){600}, 1, NULL, NULL, NULL, 2, 60);
    /* TestReplicaCalcMissingMetricsUnreadyChange: the correction pass
     * reverses the direction -> 3 */
    expect_cpu(CPU50, 3, 3, (int64_t[]){100, 450}, 2, "FTT", NULL, NULL, 3, 45);
    /* TestReplicaCalcMissingMetricsHotCpuNoChange -> 3 */
    expect_cpu(CPU50, 3, 3, (int64_t[]){100, 450}, 2, NULL, NULL, (double[]){HOT, COOL, COOL}, 3, 45);
    /* TestReplicaCalcMissingMetricsUnreadyScaleUp -> 4 (200%) */
    expect_cpu(CPU50, 3, 3, (int64_t[]){100, 2000}, 2, "FTT", NULL, NULL, 4, 200);
    /* TestReplicaCalcMissingMetricsHotCpuScaleUp -> 4 */
    expect_cpu(CPU50, 3, 3, (int64_t[]){100, 2000}, 2, "FTT", NULL, (double[]){HOT, COOL, COOL}, 4, 200);
    /* TestReplicaCalcMissingMetricsUnreadyScaleDown -> 3 (10%) */
    expect_cpu(CPU50, 4, 4, (int64_t[]){100, 100, 100}, 3, "FTTT", NULL, NULL, 3, 10);
}
END_TEST

START_TEST(test_group_pods_fresh_metrics)
{
    /* TestGroupPods "count in a ready pod with fresh metrics during
     * initialization period - CPU": started 1 min ago, ready 30 s ago,
     * sampled now over 30 s -> counted; over 60 s ("ignore a ready pod
     * without fresh metrics") -> unready.  Seen here as the proposal of a
     * 2-pod HPA where the other pod is idle at 10%. */
    struct hpa_spec spec;
    struct pods p;
    struct hpa_result res;

    spec_yaml(CPU50, &spec);
    make_pods(&p, 2, (int64_t[]){1000, 100}, 2, R1, NULL, NULL, NULL);
    p.pod[0].start_s = NOW - 60;
    p.pod[0].last_transition_s = NOW - 30;
    p.pod[0].metric_time_s = NOW;
    p.pod[0].metric_window_s = 30;
    res = run(&spec, 2, &p);
    ck_assert_int_eq(res.metrics[0].utilization, 55); /* both counted */
    p.pod[0].metric_window_s = 60;
    res = run(&spec, 2, &p);
    ck_assert_int_eq(res.metrics[0].utilization, 10); /* pod 0 unready */
}
END_TEST

/* ---- replica_calculator_test.go: Pods, Object, External --------------------- */

static const char *QPS15 = "{maxReplicas: 100, metrics: [{type: Pods, pods: {metric: {name: qps}, target: "
                           "{type: AverageValue, averageValue: 15}}}]}";
static const char *QPS20 = "{maxReplicas: 100, metrics: [{type: Pods, pods: {metric: {name: qps}, target: "
                           "{type: AverageValue, averageValue: 20}}}]}";

static void expect_pods_metric(const char *specyaml, int32_t current, size_t n, const int64_t *levels,
                               const char *ready, const double *start, int32_t want)
{
    struct hpa_spec spec;
    struct pods p;
    size_t i;

    spec_yaml(specyaml, &spec);
    make_pods(&p, n, levels, n, NULL, ready, NULL, start);
    for (i = 0; i < n; i++) /* custom metrics are not per-container */
        p.pod[i].usage_milli[0] = levels[i];
    ck_assert_int_eq(run(&spec, current, &p).metrics[0].replicas, want);
}

START_TEST(test_calc_pods_metric)
{
    /* TestReplicaCalcScaleUpCM: 20/10/30 qps, target 15 -> 4 */
    expect_pods_metric(QPS15, 3, 3, (int64_t[]){20000, 10000, 30000}, NULL, NULL, 4);
    /* TestReplicaCalcScaleUpCMUnreadyHotCpuNoLessScale: readiness only
     * matters for CPU -> 6 */
    expect_pods_metric(QPS15, 3, 3, (int64_t[]){50000, 10000, 30000}, "TTF", (double[]){COOL, COOL, HOT}, 6);
    /* TestReplicaCalcScaleUpCMUnreadyHotCpuScaleWouldScaleDown -> 7 */
    expect_pods_metric(QPS15, 3, 3, (int64_t[]){50000, 15000, 30000}, "FTF", (double[]){HOT, COOL, HOT}, 7);
    /* TestReplicaCalcScaleDownCM: 12 qps each, target 20 -> 3 */
    expect_pods_metric(QPS20, 5, 5, (int64_t[]){12000, 12000, 12000, 12000, 12000}, NULL, NULL, 3);
    /* TestReplicaCalcToleranceCM: 20/21/21, target 20 -> 3 */
    expect_pods_metric(QPS20, 3, 3, (int64_t[]){20000, 21000, 21000}, NULL, NULL, 3);
}
END_TEST

/* An Object or External metric TYPE with target TTYPE of TARGET_M milli,
 * value VALUE_M, CURRENT replicas and, if READY, pods with that readiness. */
static int32_t value_case(const char *type, const char *ttype, int64_t target_m, int64_t value_m, int32_t current,
                          const char *ready, int64_t *current_out)
{
    char yaml[512];
    struct hpa_spec spec;
    struct pods p;
    struct hpa_state st;
    struct hpa_observation obs;
    struct hpa_result res;
    const char *key = strcmp(type, "Object") == 0 ? "object" : "external";

    snprintf(yaml, sizeof(yaml),
             "{maxReplicas: 100, metrics: [{type: %s, %s: {metric: {name: qps}, target: {type: %s, %s: %lldm}}}]}",
             type, key, ttype, strcmp(ttype, "Value") == 0 ? "value" : "averageValue", (long long)target_m);
    spec_yaml(yaml, &spec);
    hpa_state_init(&st);
    st.recommendations_set = true;
    memset(&obs, 0, sizeof(obs));
    obs.status_replicas = -1;
    if (ready != NULL) {
        make_pods(&p, strlen(ready), NULL, 0, NULL, ready, NULL, NULL);
        obs.pods = p.pod;
        obs.npods = p.n;
    }
    obs.has_value[0] = true;
    obs.value_milli[0] = value_m;
    ck_assert_int_eq(hpa_step(&st, &spec, NOW, current, &obs, &res), 0);
    hpa_state_free(&st);
    ck_assert(res.metrics[0].valid);
    if (current_out != NULL)
        *current_out = res.metrics[0].current_milli;
    return res.metrics[0].replicas;
}

START_TEST(test_calc_object_external)
{
    int64_t cur;

    /* TestReplicaCalcScaleUpCMObject: 20 over a target of 15, 3 ready -> 4 */
    ck_assert_int_eq(value_case("Object", "Value", 15000, 20000, 3, "TTT", NULL), 4);
    /* TestReplicaCalcScaleUpCMObjectIgnoresUnreadyPods: 1 ready pod -> 5 */
    ck_assert_int_eq(value_case("Object", "Value", 10000, 50000, 3, "FTF", NULL), 5);
    /* TestReplicaCalcToleranceCMObject: 20.666 vs 20 -> 3 */
    ck_assert_int_eq(value_case("Object", "Value", 20000, 20666, 3, "TTT", NULL), 3);
    /* TestReplicaCalcScaleUpCMPerPodObject: 20 over 3 replicas, 5 per pod -> 4 (6.667) */
    ck_assert_int_eq(value_case("Object", "AverageValue", 5000, 20000, 3, NULL, &cur), 4);
    ck_assert_int_eq(cur, 6667);
    /* TestReplicaCalcTolerancePerPodCMObject -> 4 (5.042) */
    ck_assert_int_eq(value_case("Object", "AverageValue", 5000, 20166, 4, NULL, &cur), 4);
    ck_assert_int_eq(cur, 5042);
    /* TestReplicaCalcScaleDownPerPodCMObject: 6 over 5, 2 per pod -> 3 */
    ck_assert_int_eq(value_case("Object", "AverageValue", 2000, 6000, 5, NULL, NULL), 3);
    /* TestReplicaCalcScaleUpCMExternalIgnoresUnreadyPods -> 2 */
    ck_assert_int_eq(value_case("External", "Value", 4400, 8600, 3, "FTF", NULL), 2);
    /* TestReplicaCalcScaleDownCMExternal: 8.6 vs 14.334, 5 ready -> 3 */
    ck_assert_int_eq(value_case("External", "Value", 14334, 8600, 5, "TTTTT", NULL), 3);
    /* TestReplicaCalcToleranceCMExternal -> 3 */
    ck_assert_int_eq(value_case("External", "Value", 8888, 8600, 3, "TTT", NULL), 3);
    /* TestReplicaCalcScaleUpPerPodCMExternal: 8.6 over 3, 2.15 per pod -> 4 (2.867) */
    ck_assert_int_eq(value_case("External", "AverageValue", 2150, 8600, 3, NULL, &cur), 4);
    ck_assert_int_eq(cur, 2867);
    /* TestReplicaCalcScaleDownPerPodCMExternal -> 3 */
    ck_assert_int_eq(value_case("External", "AverageValue", 2867, 8600, 5, NULL, NULL), 3);
    /* TestScaleDownToZeroCMExternal (horizontal_test.go): 0 -> 0 */
    ck_assert_int_eq(value_case("External", "Value", 14400, 0, 5, NULL, NULL), 0);
}
END_TEST

/* ---- horizontal_test.go: whole syncs ------------------------------------------ */

START_TEST(test_scale_down_and_initial_size)
{
    struct hpa_spec spec;
    struct pods p;
    struct hpa_state st;
    struct hpa_observation obs = {0};
    struct hpa_result res;
    const int64_t lv[] = {100, 300, 500, 250, 250};

    spec_yaml("{minReplicas: 2, maxReplicas: 6, metrics: [{type: Resource, resource: {name: cpu, target: "
              "{type: Utilization, averageUtilization: 50}}}]}",
              &spec);
    make_pods(&p, 5, lv, 5, R1, NULL, NULL, NULL);
    /* TestScaleDown: recommendations [] -> 3 */
    res = run(&spec, 5, &p);
    ck_assert_int_eq(res.desired_replicas, 3);
    ck_assert_str_eq(res.reason, "DesiredWithinRange");
    ck_assert_str_eq(res.message, "All metrics below target");
    /* TestScaleDownStabilizeInitialSize: no recommendations yet, the
     * current size is recorded first -> 5, ScaleDownStabilized */
    hpa_state_init(&st);
    obs.status_replicas = -1;
    obs.pods = p.pod;
    obs.npods = p.n;
    ck_assert_int_eq(hpa_step(&st, &spec, NOW, 5, &obs, &res), 0);
    ck_assert_int_eq(res.desired_replicas, 5);
    ck_assert_str_eq(res.able_to_scale, "ScaleDownStabilized");
    /* ... and 300 s later the recorded 5 still counts (the cutoff is
     * inclusive in stabilizeRecommendation), 301 s later it has aged out. */
    ck_assert_int_eq(hpa_step(&st, &spec, NOW + 300, 5, &obs, &res), 0);
    ck_assert_int_eq(res.desired_replicas, 5);
    ck_assert_int_eq(hpa_step(&st, &spec, NOW + 301, 5, &obs, &res), 0);
    ck_assert_int_eq(res.desired_replicas, 3);
    hpa_state_free(&st);
}
END_TEST

START_TEST(test_scale_up_multiple_metrics)
{
    struct hpa_spec spec;
    struct pods p;
    struct hpa_result res;
    size_t i;

    /* TestScaleUp: min 2, max 6, 3 pods at 300m/500m/700m, target 30% -> 5 */
    spec_yaml("{minReplicas: 2, maxReplicas: 6, metrics: [{type: Resource, resource: {name: cpu, target: "
              "{type: Utilization, averageUtilization: 30}}}]}",
              &spec);
    make_pods(&p, 3, (int64_t[]){300, 500, 700}, 3, R1, NULL, NULL, NULL);
    res = run(&spec, 3, &p);
    ck_assert_int_eq(res.desired_replicas, 5);
    ck_assert_str_eq(res.message, "cpu resource utilization (percentage of request) above target");
    /* Several metrics take the largest proposal: TestScaleUp's CPU (5)
     * with TestReplicaCalcScaleUpCM's qps (4) -> 5; qps alone -> 4. */
    spec_yaml("{minReplicas: 2, maxReplicas: 6, metrics: [{type: Pods, pods: {metric: {name: qps}, target: "
              "{type: AverageValue, averageValue: 15}}}, {type: Resource, resource: {name: cpu, target: "
              "{type: Utilization, averageUtilization: 30}}}]}",
              &spec);
    for (i = 0; i < 3; i++) {
        p.pod[i].has_usage[1] = true;
        p.pod[i].usage_milli[1] = p.pod[i].usage_milli[0];
        p.pod[i].has_request[1] = true;
        p.pod[i].request_milli[1] = p.pod[i].request_milli[0];
        p.pod[i].usage_milli[0] = (int64_t[]){20000, 10000, 30000}[i];
        p.pod[i].has_request[0] = false;
    }
    res = run(&spec, 3, &p);
    ck_assert_int_eq(res.metrics[0].replicas, 4);
    ck_assert_int_eq(res.metrics[1].replicas, 5);
    ck_assert_int_eq(res.desired_replicas, 5);
}
END_TEST

/* A sync where the metrics propose exactly DESIRED: one External metric
 * with an AverageValue target of 1 reporting DESIRED (the proposal is then
 * ceil(DESIRED / 1), see GetExternalPerPodMetricReplicas). */
static struct hpa_result rules_case(const char *behavior, int32_t min, int32_t max, int32_t current,
                                    int32_t desired, const int *up, size_t nup, const int *down, size_t ndown)
{
    char yaml[1024];
    struct hpa_spec spec;
    struct hpa_state st;
    struct hpa_observation obs;
    struct hpa_result res;
    size_t i;

    snprintf(yaml, sizeof(yaml),
             "{minReplicas: %d, maxReplicas: %d, metrics: [{type: External, external: {metric: {name: x}, "
             "target: {type: AverageValue, averageValue: 1}}}]%s%s}",
             (int)min, (int)max, behavior ? ", behavior: " : "", behavior ? behavior : "");
    spec_yaml(yaml, &spec);
    hpa_state_init(&st);
    st.recommendations_set = true;
    /* generateEventsUniformDistribution(events, 120): event i sits in the
     * middle of the i-th of n equal segments of the last 120 s. */
    for (i = 0; i < nup; i++)
        ck_assert_int_eq(hpa_state_add_scale_event(&st, NOW - (120.0 - 120.0 / nup * (i + 1) + 60.0 / nup), up[i], NULL), 0);
    for (i = 0; i < ndown; i++)
        ck_assert_int_eq(hpa_state_add_scale_event(&st, NOW - (120.0 - 120.0 / ndown * (i + 1) + 60.0 / ndown), -down[i], NULL), 0);
    memset(&obs, 0, sizeof(obs));
    obs.status_replicas = -1;
    obs.has_value[0] = true;
    obs.value_milli[0] = (int64_t)desired * 1000;
    ck_assert_int_eq(hpa_step(&st, &spec, NOW, current, &obs, &res), 0);
    /* Outside [minReplicas, maxReplicas] reconcile clamps without metrics. */
    if (current >= min && current <= max && current > 0)
        ck_assert_int_eq(res.metric_replicas, desired);
    hpa_state_free(&st);
    return res;
}

/* generateScalingRules(pods, podsPeriod, percent, percentPeriod, window) */
static const char *rules(int pods, int pods_period, int percent, int percent_period, int window)
{
    static char buf[8][256];
    static int k;
    char *b = buf[k++ % 8];
    int n = snprintf(b, 256, "{stabilizationWindowSeconds: %d, selectPolicy: Max, policies: [", window);

    if (pods)
        n += snprintf(b + n, 256 - (size_t)n, "{type: Pods, value: %d, periodSeconds: %d}%s", pods, pods_period,
                      percent ? ", " : "");
    if (percent)
        n += snprintf(b + n, 256 - (size_t)n, "{type: Percent, value: %d, periodSeconds: %d}", percent,
                      percent_period);
    snprintf(b + n, 256 - (size_t)n, "]}");
    return b;
}

static void expect_rules(const char *up, const char *down, int32_t min, int32_t max, int32_t current,
                         int32_t desired, const int *ev_up, size_t nup, const int *ev_down, size_t ndown,
                         int32_t want, const char *want_reason)
{
    char behavior[600];
    struct hpa_result res;

    snprintf(behavior, sizeof(behavior), "{%s%s%s%s%s}", up ? "scaleUp: " : "", up ? up : "",
             up && down ? ", " : "", down ? "scaleDown: " : "", down ? down : "");
    res = rules_case(behavior, min, max, current, desired, ev_up, nup, ev_down, ndown);
    ck_assert_msg(res.desired_replicas == want && strcmp(res.reason, want_reason) == 0,
                  "behavior %s, %d -> %d: got %d %s, want %d %s", behavior, current, desired, res.desired_replicas,
                  res.reason, want, want_reason);
}

START_TEST(test_scaling_with_rules)
{
    static const int e159[] = {1, 5, 9}, e246[] = {2, 4, 6}, e10[] = {10, 10, 10}, e8[] = {8, 12, 9, 11};

    /* TestScalingWithRules, case by case (name: expected) */
    /* "prenormalized desired replicas within range": 7 DesiredWithinRange */
    expect_rules(NULL, NULL, 3, 8, 5, 7, NULL, 0, NULL, 0, 7, "DesiredWithinRange");
    /* "prenormalized desired replicas < minReplicas": 2 TooFewReplicas */
    expect_rules(NULL, NULL, 2, 8, 3, 1, NULL, 0, NULL, 0, 2, "TooFewReplicas");
    /* "... within range when minReplicas is 0": 0 */
    expect_rules(NULL, NULL, 0, 10, 1, 0, NULL, 0, NULL, 0, 0, "DesiredWithinRange");
    /* "maxReplicas is the limit because maxReplicas < scaleUpLimit": 10 */
    expect_rules(NULL, NULL, 1, 10, 20, 1000, NULL, 0, NULL, 0, 10, "TooManyReplicas");
    /* "desired replica count is more than the maximum replica count": 150 */
    expect_rules(NULL, NULL, 100, 150, 100, 1000, NULL, 0, NULL, 0, 150, "TooManyReplicas");
    /* "scaleUpLimit is the limit ... with user policies" (1% per 60 s): 4 */
    expect_rules(rules(0, 0, 1, 60, 0), NULL, 1, 2000, 3, 1000, NULL, 0, NULL, 0, 4, "ScaleUpLimit");
    /* "scaleUp with default behavior": 10 -> 20 */
    expect_rules(NULL, NULL, 1, 1000, 10, 50, NULL, 0, NULL, 0, 20, "ScaleUpLimit");
    /* "scaleUp with pods policy larger than percent policy": 110 */
    expect_rules(rules(100, 60, 100, 60, 0), NULL, 1, 1000, 10, 500, NULL, 0, NULL, 0, 110, "ScaleUpLimit");
    /* "scaleUp with percent policy larger than pods policy": 20 */
    expect_rules(rules(2, 60, 100, 60, 0), NULL, 1, 1000, 10, 500, NULL, 0, NULL, 0, 20, "ScaleUpLimit");
    /* "scaleUp with spec MaxReplicas limitation with large pod policy": 50 */
    expect_rules(rules(100, 60, 0, 0, 0), NULL, 1, 1000, 10, 50, NULL, 0, NULL, 0, 50, "DesiredWithinRange");
    /* "scaleUp with pod policy limitation": 40 */
    expect_rules(rules(30, 60, 0, 0, 0), NULL, 1, 1000, 10, 50, NULL, 0, NULL, 0, 40, "ScaleUpLimit");
    /* "scaleUp with percent policy limitation": 30 */
    expect_rules(rules(0, 0, 200, 60, 0), NULL, 1, 1000, 10, 50, NULL, 0, NULL, 0, 30, "ScaleUpLimit");
    /* "scaleDown with percent policy larger than pod policy": 80 */
    expect_rules(NULL, rules(20, 60, 1, 60, 300), 1, 1000, 100, 2, NULL, 0, NULL, 0, 80, "ScaleDownLimit");
    /* "scaleDown with pod policy larger than percent policy": 98 */
    expect_rules(NULL, rules(2, 60, 1, 60, 300), 1, 1000, 100, 2, NULL, 0, NULL, 0, 98, "ScaleDownLimit");
    /* "scaleDown with spec MinReplicas limitation with large pod policy": 1 */
    expect_rules(NULL, rules(100, 60, 0, 0, 300), 1, 1000, 10, 0, NULL, 0, NULL, 0, 1, "TooFewReplicas");
    /* "... with large percent policy": 5 */
    expect_rules(NULL, rules(0, 0, 100, 60, 300), 5, 1000, 10, 2, NULL, 0, NULL, 0, 5, "TooFewReplicas");
    /* "scaleDown with pod policy limitation": 5 */
    expect_rules(NULL, rules(5, 60, 0, 0, 300), 1, 1000, 10, 2, NULL, 0, NULL, 0, 5, "ScaleDownLimit");
    /* "scaleDown with percent policy limitation": 5 */
    expect_rules(NULL, rules(0, 0, 50, 60, 300), 1, 1000, 10, 5, NULL, 0, NULL, 0, 5, "DesiredWithinRange");
    /* With scale events in the period: */
    /* "scaleUp with spec MaxReplicas limitation with large pod policy and events": 200 */
    expect_rules(rules(300, 60, 0, 0, 0), NULL, 1, 200, 100, 500, e159, 3, NULL, 0, 200, "TooManyReplicas");
    /* "scaleUp with currentReplicas limitation with rate.PeriodSeconds with a
     * lot of recent scale up events": 100 */
    expect_rules(rules(5, 120, 0, 0, 0), NULL, 1, 1000, 100, 500, e159, 3, NULL, 0, 100, "ScaleUpLimit");
    /* "scaleUp with pod policy and previous scale up events": 235 */
    expect_rules(rules(150, 120, 0, 0, 0), NULL, 1, 1000, 100, 500, e159, 3, NULL, 0, 235, "ScaleUpLimit");
    /* "scaleUp with percent policy and previous scale up events": 255 */
    expect_rules(rules(0, 0, 200, 120, 0), NULL, 1, 1000, 100, 500, e159, 3, NULL, 0, 255, "ScaleUpLimit");
    /* "scaleDown with default policy and previous events": 5 */
    expect_rules(NULL, NULL, 1, 1000, 10, 5, NULL, 0, e159, 3, 5, "DesiredWithinRange");
    /* "scaleDown with spec MinReplicas limitation with large pod policy and previous events": 5 */
    expect_rules(NULL, rules(130, 120, 0, 0, 300), 5, 1000, 100, 0, NULL, 0, e159, 3, 5, "TooFewReplicas");
    /* "scaleDown with pod policy limitation and previous events": 100 */
    expect_rules(NULL, rules(5, 120, 0, 0, 300), 1, 1000, 100, 2, NULL, 0, e159, 3, 100, "ScaleDownLimit");
    /* "scaleDown with percent policy limitation and previous events": 56 */
    expect_rules(NULL, rules(0, 0, 50, 120, 300), 1, 1000, 100, 0, NULL, 0, e246, 3, 56, "ScaleDownLimit");
    /* "scaleDown with previous events preventing further scale down": 100 */
    expect_rules(NULL, rules(0, 0, 10, 120, 300), 1, 1000, 100, 0, NULL, 0, e10, 3, 100, "ScaleDownLimit");
    /* "scaleDown with with previous events still allowing more scale down": 5 */
    expect_rules(NULL, rules(0, 0, 1000, 120, 300), 1, 1000, 10, 5, NULL, 0, e10, 3, 5, "DesiredWithinRange");
    /* "check that events were marked 'outdated' for two different policies in the behavior for up": 200 */
    expect_rules(rules(1000, 30, 100, 60, 0), NULL, 1, 1000, 100, 200, e8, 4, NULL, 0, 200, "DesiredWithinRange");
    /* "... for down": 5 */
    expect_rules(NULL, rules(1000, 30, 100, 60, 300), 1, 1000, 100, 5, NULL, 0, e8, 4, 5, "DesiredWithinRange");
}
END_TEST

START_TEST(test_select_policy)
{
    /* TestCalculateScaleUpLimitWithScalingRules: Min of Pods 2 and 50% per
     * 60 s from 1 replica -> 2 */
    expect_rules("{selectPolicy: Min, policies: [{type: Pods, value: 2, periodSeconds: 60}, "
                 "{type: Percent, value: 50, periodSeconds: 60}]}",
                 NULL, 1, 1000, 1, 1000, NULL, 0, NULL, 0, 2, "ScaleUpLimit");
    /* TestCalculateScaleDownLimitWithBehaviors: Min from 5 -> 3 */
    expect_rules(NULL,
                 "{selectPolicy: Min, policies: [{type: Pods, value: 2, periodSeconds: 60}, "
                 "{type: Percent, value: 50, periodSeconds: 60}]}",
                 1, 1000, 5, 0, NULL, 0, NULL, 0, 3, "ScaleDownLimit");
    /* selectPolicy Disabled: the limit is the current count (the first
     * branch of calculateScaleUpLimitWithScalingRules / ...DownLimit...) */
    expect_rules("{selectPolicy: Disabled}", NULL, 1, 1000, 10, 50, NULL, 0, NULL, 0, 10, "ScaleUpLimit");
    expect_rules(NULL, "{selectPolicy: Disabled, stabilizationWindowSeconds: 0}", 1, 1000, 10, 5, NULL, 0, NULL, 0,
                 10, "ScaleDownLimit");
}
END_TEST

START_TEST(test_legacy_limits)
{
    struct hpa_result res;

    /* TestConvertDesiredReplicasWithRules "scaleUpLimit is the limit because
     * scaleUpLimit < maxReplicas": 3 -> calculateScaleUpLimit(3) = 6 */
    res = rules_case(NULL, 1, 2000, 3, 1000, NULL, 0, NULL, 0);
    ck_assert_int_eq(res.desired_replicas, 6);
    ck_assert_str_eq(res.reason, "ScaleUpLimit");
    /* the floor of 4: 1 -> 4 */
    res = rules_case(NULL, 1, 2000, 1, 1000, NULL, 0, NULL, 0);
    ck_assert_int_eq(res.desired_replicas, 4);
    /* "maxReplicas is the limit because maxReplicas < scaleUpLimit": 10 */
    res = rules_case(NULL, 1, 10, 20, 1000, NULL, 0, NULL, 0);
    ck_assert_int_eq(res.desired_replicas, 10);
    ck_assert_str_eq(res.reason, "TooManyReplicas");
    /* "prenormalized desired replicas < minReplicas": 2 TooFewReplicas */
    res = rules_case(NULL, 2, 8, 3, 1, NULL, 0, NULL, 0);
    ck_assert_int_eq(res.desired_replicas, 2);
    ck_assert_str_eq(res.reason, "TooFewReplicas");
}
END_TEST

/* Stabilisation with a recommendation log: RECS (replicas, age in s). */
static int32_t stabilize_case(const char *behavior, const int32_t (*recs)[2], size_t nrecs, int32_t current,
                              int32_t desired, size_t *log_len)
{
    char yaml[600];
    struct hpa_spec spec;
    struct hpa_state st;
    struct hpa_observation obs;
    struct hpa_result res;
    size_t i;

    snprintf(yaml, sizeof(yaml),
             "{minReplicas: 1, maxReplicas: 1000, metrics: [{type: External, external: {metric: {name: x}, "
             "target: {type: AverageValue, averageValue: 1}}}]%s%s}",
             behavior ? ", behavior: " : "", behavior ? behavior : "");
    spec_yaml(yaml, &spec);
    hpa_state_init(&st);
    st.recommendations_set = true;
    for (i = 0; i < nrecs; i++)
        ck_assert_int_eq(hpa_state_add_recommendation(&st, NOW - recs[i][1], recs[i][0], NULL), 0);
    memset(&obs, 0, sizeof(obs));
    obs.status_replicas = -1;
    obs.has_value[0] = true;
    obs.value_milli[0] = (int64_t)desired * 1000;
    ck_assert_int_eq(hpa_step(&st, &spec, NOW, current, &obs, &res), 0);
    if (log_len != NULL)
        *log_len = st.nrecs;
    hpa_state_free(&st);
    return res.stabilized_replicas;
}

START_TEST(test_stabilization)
{
    size_t len;
    /* TestNormalizeDesiredReplicas (legacy, 5-minute window): */
    /* "stabilize": {4, -2m}, {5, -1m}, desired 3 -> 5, log 3 */
    ck_assert_int_eq(stabilize_case(NULL, (const int32_t[][2]){{4, 120}, {5, 60}}, 2, 3, 3, &len), 5);
    ck_assert_uint_eq(len, 3);
    /* "no stabilize": {1,-2m}, {2,-1m}, 3 -> 3 */
    ck_assert_int_eq(stabilize_case(NULL, (const int32_t[][2]){{1, 120}, {2, 60}}, 2, 3, 3, NULL), 3);
    /* "no stabilize - old recommendations": {10,-10m}, {9,-9m} -> 3, log 2 */
    ck_assert_int_eq(stabilize_case(NULL, (const int32_t[][2]){{10, 600}, {9, 540}}, 2, 3, 3, &len), 3);
    ck_assert_uint_eq(len, 2);
    /* "stabilize - old recommendations": -> 5, log 4 */
    ck_assert_int_eq(
        stabilize_case(NULL, (const int32_t[][2]){{10, 600}, {4, 60}, {5, 120}, {9, 540}}, 4, 3, 3, &len), 5);
    ck_assert_uint_eq(len, 4);

    /* TestNormalizeDesiredReplicasWithBehavior: */
    /* "simple scale down stabilization" (down 180 s): 100 -> 3 stabilised at 5 */
    ck_assert_int_eq(stabilize_case("{scaleUp: {stabilizationWindowSeconds: 0}, scaleDown: "
                                    "{stabilizationWindowSeconds: 180}}",
                                    (const int32_t[][2]){{4, 120}, {5, 60}}, 2, 100, 3, NULL),
                     5);
    /* "simple scale up stabilization" (up 300 s): 1 -> 7 stabilised at 4 */
    ck_assert_int_eq(stabilize_case("{scaleUp: {stabilizationWindowSeconds: 300}, scaleDown: "
                                    "{stabilizationWindowSeconds: 0}}",
                                    (const int32_t[][2]){{4, 120}, {5, 60}}, 2, 1, 7, NULL),
                     4);
    /* "no scale down stabilization": 100 -> 3 */
    ck_assert_int_eq(stabilize_case("{scaleUp: {stabilizationWindowSeconds: 300}, scaleDown: "
                                    "{stabilizationWindowSeconds: 0}}",
                                    (const int32_t[][2]){{1, 120}, {2, 60}}, 2, 100, 3, NULL),
                     3);
    /* "scale down stabilization, reuse one of obsolete recommendation element": 5, log 4 */
    ck_assert_int_eq(stabilize_case("{scaleUp: {stabilizationWindowSeconds: 0}, scaleDown: "
                                    "{stabilizationWindowSeconds: 180}}",
                                    (const int32_t[][2]){{10, 600}, {4, 60}, {5, 120}, {9, 540}}, 4, 100, 3, &len),
                     5);
    ck_assert_uint_eq(len, 4);
    /* "scale up stabilization, reuse one of obsolete recommendation element": 5 */
    ck_assert_int_eq(stabilize_case("{scaleUp: {stabilizationWindowSeconds: 300}, scaleDown: "
                                    "{stabilizationWindowSeconds: 0}}",
                                    (const int32_t[][2]){{10, 6000}, {6, 60}, {5, 120}, {9, 180}}, 4, 1, 100, &len),
                     5);
    ck_assert_uint_eq(len, 4);
}
END_TEST

START_TEST(test_tolerance_per_direction)
{
    /* Tolerances.isWithin with per-direction tolerances (KEP-4951,
     * HPAConfigurableTolerance): 108% of target on 10 pods is within the
     * default 10% (-> 10) but not within a 5% scale-up tolerance (-> 11);
     * 92% on 20 pods is within 10% (-> 20) but not within 5% (-> 19). */
    struct hpa_spec spec;
    struct pods p;
    int64_t lv[16];
    size_t i;
    const char *base = "{maxReplicas: 100, metrics: [{type: Resource, resource: {name: cpu, target: "
                       "{type: Utilization, averageUtilization: 100}}}]";
    char yaml[400];

    for (i = 0; i < 16; i++)
        lv[i] = 1080;
    spec_yaml(CPU100, &spec);
    make_pods(&p, 10, lv, 10, R1, NULL, NULL, NULL);
    ck_assert_int_eq(run(&spec, 10, &p).desired_replicas, 10);
    snprintf(yaml, sizeof(yaml), "%s, behavior: {scaleUp: {tolerance: 0.05}}}", base);
    spec_yaml(yaml, &spec);
    ck_assert_int_eq(run(&spec, 10, &p).desired_replicas, 11);
    /* the scale-up tolerance leaves scale-down at the default */
    for (i = 0; i < 16; i++)
        lv[i] = 920;
    make_pods(&p, 16, lv, 16, R1, NULL, NULL, NULL);
    ck_assert_int_eq(run(&spec, 16, &p).desired_replicas, 16);
    snprintf(yaml, sizeof(yaml), "%s, behavior: {scaleDown: {tolerance: 50m, stabilizationWindowSeconds: 0}}}",
             base);
    spec_yaml(yaml, &spec);
    ck_assert_int_eq(run(&spec, 16, &p).desired_replicas, 15); /* ceil(0.92 * 16) */
}
END_TEST

START_TEST(test_bounded_state)
{
    /* 2000 syncs, 15 s apart, alternating proposals: the log keeps about a
     * window's worth of entries. */
    struct hpa_spec spec;
    struct hpa_state st;
    struct hpa_observation obs;
    struct hpa_result res;
    int i;

    spec_yaml("{minReplicas: 1, maxReplicas: 100, metrics: [{type: External, external: {metric: {name: x}, "
              "target: {type: AverageValue, averageValue: 1}}}], behavior: {}}",
              &spec);
    hpa_state_init(&st);
    memset(&obs, 0, sizeof(obs));
    obs.status_replicas = -1;
    obs.has_value[0] = true;
    for (i = 0; i < 2000; i++) {
        obs.value_milli[0] = (i % 7 + 1) * 3000;
        ck_assert_int_eq(hpa_step(&st, &spec, i * 15.0, i % 7 + 2, &obs, &res), 0);
    }
    ck_assert_uint_le(st.nrecs, 300 / 15 + 2);
    ck_assert_uint_le(st.nup, 15 / 15 + 2);
    ck_assert_uint_le(st.ndown, 15 / 15 + 2);
    hpa_state_free(&st);
}
END_TEST

START_TEST(test_special_paths)
{
    struct hpa_result res;

    /* reconcileAutoscaler: a target at 0 with minReplicas > 0 is not scaled */
    res = rules_case(NULL, 1, 10, 0, 0, NULL, 0, NULL, 0);
    ck_assert_str_eq(res.reason, "ScalingDisabled");
    ck_assert_int_eq(res.desired_replicas, 0);
}
END_TEST

/* ---- quantities and malformed specs ------------------------------------------- */

START_TEST(test_quantity)
{
    int64_t m;
    double v;

    ck_assert_int_eq(quantity_parse("500m", &m, &v, NULL), 0);
    ck_assert_int_eq(m, 500);
    ck_assert_int_eq(quantity_parse("2", &m, NULL, NULL), 0);
    ck_assert_int_eq(m, 2000);
    ck_assert_int_eq(quantity_parse("1.5", &m, NULL, NULL), 0);
    ck_assert_int_eq(m, 1500);
    ck_assert_int_eq(quantity_parse("1k", &m, NULL, NULL), 0);
    ck_assert_int_eq(m, 1000000);
    ck_assert_int_eq(quantity_parse("100Mi", &m, &v, NULL), 0);
    ck_assert_int_eq(m, 104857600000LL);
    ck_assert_int_eq(quantity_parse("1e3", &m, &v, NULL), 0);
    ck_assert_int_eq(m, 1000000);
    ck_assert(fabs(v - 1000) < 1e-9);
    ck_assert_int_eq(quantity_parse("0.05", &m, &v, NULL), 0);
    ck_assert_int_eq(m, 50);
    ck_assert(fabs(v - 0.05) < 1e-12);
    ck_assert_int_eq(quantity_parse("1n", &m, NULL, NULL), 0); /* MilliValue rounds up */
    ck_assert_int_eq(m, 1);
    ck_assert_int_eq(quantity_parse("", &m, NULL, NULL), -1);
    ck_assert_int_eq(quantity_parse("12x", &m, NULL, NULL), -1);
    ck_assert_int_eq(quantity_parse("1.2.3", &m, NULL, NULL), -1);
    ck_assert_int_eq(quantity_parse("99999999E", &m, NULL, NULL), -1);
}
END_TEST

START_TEST(test_defaults)
{
    struct hpa_spec spec;

    spec_yaml("{maxReplicas: 5}", &spec);
    ck_assert_int_eq(spec.min_replicas, 1);
    ck_assert_uint_eq(spec.nmetrics, 1); /* the API's default: CPU at 80% */
    ck_assert_int_eq(spec.metrics[0].average_utilization, 80);
    ck_assert(!spec.has_behavior);
    spec_yaml("{maxReplicas: 5, behavior: {scaleUp: {selectPolicy: Min}}}", &spec);
    ck_assert(spec.has_behavior);
    ck_assert_uint_eq(spec.scale_up.npolicies, 2); /* Pods 4 and Percent 100 per 15 s */
    ck_assert_int_eq(spec.scale_up.policies[0].value, 4);
    ck_assert_int_eq(spec.scale_up.policies[1].value, 100);
    ck_assert_int_eq(spec.scale_up.select, HPA_SELECT_MIN);
    ck_assert(isnan(spec.scale_down.stabilization_window_s)); /* the controller's 300 s */
    ck_assert_uint_eq(spec.scale_down.npolicies, 1);
}
END_TEST

START_TEST(test_malformed)
{
    ck_assert_str_eq(spec_error("maxReplicas: 5\nminReplica: 2\n"),
                     "bad.yaml:2: unknown key 'minReplica' in hpa (known: minReplicas, maxReplicas, metrics, "
                     "behavior, scaleTargetRef)");
    ck_assert_str_eq(spec_error("maxReplicas: lots\n"), "bad.yaml:1: maxReplicas: expected an integer, got 'lots'");
    ck_assert_str_eq(spec_error("maxReplicas: 5\nbehavior:\n  scaleDown:\n    stabilizationWindowSeconds: -1\n"),
                     "bad.yaml:4: stabilizationWindowSeconds: must be between 0 and 3600, got -1");
    ck_assert_str_eq(spec_error("minReplicas: 7\nmaxReplicas: 5\n"),
                     "bad.yaml:1: minReplicas: must be less than or equal to maxReplicas (7 > 5)");
    ck_assert_str_eq(spec_error("maxReplicas: 5\nmetrics:\n  - type: Cheese\n"),
                     "bad.yaml:3: type: unknown value 'Cheese' (expected one of: Resource, Pods, Object, External)");
    ck_assert_str_eq(spec_error("maxReplicas: 5\nmetrics:\n  - type: Pods\n    pods:\n      metric: {name: qps}\n"
                                "      target: {type: Utilization, averageUtilization: 50}\n"),
                     "bad.yaml:6: type: Utilization is not a valid target for a Pods metric");
    ck_assert_str_eq(spec_error("maxReplicas: 5\nbehavior:\n  scaleUp:\n    policies:\n"
                                "      - {type: Pods, value: 4, periodSeconds: 0}\n"),
                     "bad.yaml:5: periodSeconds: must be between 1 and 1800, got 0");
    ck_assert_str_eq(spec_error("maxReplicas: 5\nminReplicas: 0\n"),
                     "bad.yaml:2: minReplicas: must be between 1 and 2147483647, got 0");
    ck_assert_str_eq(spec_error("maxReplicas: 5\nmetrics:\n  - type: Resource\n    resource:\n      name: cpu\n"
                                "      target: {type: AverageValue, averageValue: 12q}\n"),
                     "bad.yaml:6: averageValue: '12q' is not a quantity (expected e.g. 500m, 2, 1.5, 100Mi, 1k)");
}
END_TEST

static Suite *suite_hpa(void)
{
    Suite *s = suite_create("hpa");
    TCase *calc = tcase_create("replica_calculator");
    TCase *ctl = tcase_create("horizontal");
    TCase *spec = tcase_create("spec");

    tcase_add_test(calc, test_calc_scale_up);
    tcase_add_test(calc, test_calc_unready_less_scale);
    tcase_add_test(calc, test_calc_ignores_failed);
    tcase_add_test(calc, test_calc_scale_down);
    tcase_add_test(calc, test_calc_tolerance);
    tcase_add_test(calc, test_calc_missing_metrics);
    tcase_add_test(calc, test_group_pods_fresh_metrics);
    tcase_add_test(calc, test_calc_pods_metric);
    tcase_add_test(calc, test_calc_object_external);
    suite_add_tcase(s, calc);
    tcase_add_test(ctl, test_scale_down_and_initial_size);
    tcase_add_test(ctl, test_scale_up_multiple_metrics);
    tcase_add_test(ctl, test_scaling_with_rules);
    tcase_add_test(ctl, test_select_policy);
    tcase_add_test(ctl, test_legacy_limits);
    tcase_add_test(ctl, test_stabilization);
    tcase_add_test(ctl, test_tolerance_per_direction);
    tcase_add_test(ctl, test_bounded_state);
    tcase_add_test(ctl, test_special_paths);
    suite_add_tcase(s, ctl);
    tcase_add_test(spec, test_quantity);
    tcase_add_test(spec, test_defaults);
    tcase_add_test(spec, test_malformed);
    suite_add_tcase(s, spec);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite_hpa());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
