/* hpa.c -- one HPA controller sync (see hpa.h).  Each function names the
 * Kubernetes function it mirrors (pkg/controller/podautoscaler, v1.33+);
 * the arithmetic follows it step by step (integer milli-units, integer
 * utilisation percentages, float64 ratios, ceil), because the point is to
 * give the replica counts the real controller gives. */
#include "sim/hpa.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- setup ----------------------------------------------------------------- */

static void hpa_rules_default(struct hpa_rules *r, bool up)
{
    memset(r, 0, sizeof(*r));
    r->select = HPA_SELECT_MAX;
    r->tolerance = NAN;
    if (up) { /* 0 s window; 4 pods or 100% per 15 s, whichever is more */
        r->stabilization_window_s = 0;
        r->policies[0] = (struct hpa_policy){.type = HPA_POLICY_PODS, .value = 4, .period_s = 15};
        r->policies[1] = (struct hpa_policy){.type = HPA_POLICY_PERCENT, .value = 100, .period_s = 15};
        r->npolicies = 2;
    } else { /* the controller's window (NAN here); 100% per 15 s */
        r->stabilization_window_s = NAN;
        r->policies[0] = (struct hpa_policy){.type = HPA_POLICY_PERCENT, .value = 100, .period_s = 15};
        r->npolicies = 1;
    }
}

void hpa_spec_init(struct hpa_spec *spec)
{
    memset(spec, 0, sizeof(*spec));
    spec->min_replicas = 1;
    spec->max_replicas = 1;
    hpa_rules_default(&spec->scale_up, true);
    hpa_rules_default(&spec->scale_down, false);
    spec->sync_period_s = HPA_DEFAULT_SYNC_PERIOD_S;
    spec->tolerance = HPA_DEFAULT_TOLERANCE;
    spec->cpu_init_period_s = HPA_DEFAULT_CPU_INIT_PERIOD_S;
    spec->readiness_delay_s = HPA_DEFAULT_READINESS_DELAY_S;
    spec->downscale_window_s = HPA_DEFAULT_DOWNSCALE_WINDOW_S;
}

void hpa_pod_init(struct hpa_pod *pod, double now_s)
{
    memset(pod, 0, sizeof(*pod));
    pod->phase = HPA_POD_RUNNING;
    pod->ready = true;
    pod->start_s = HPA_LONG_AGO_S;
    pod->last_transition_s = HPA_LONG_AGO_S;
    pod->metric_time_s = now_s;
    pod->metric_window_s = HPA_DEFAULT_METRIC_WINDOW_S;
}

void hpa_state_init(struct hpa_state *st)
{
    memset(st, 0, sizeof(*st));
}

void hpa_state_free(struct hpa_state *st)
{
    if (st == NULL)
        return;
    free(st->recs);
    free(st->up);
    free(st->down);
    memset(st, 0, sizeof(*st));
}

/* Make room for one more element in *ARR (N used, *CAP allocated); -1 when
 * out of memory. */
static int hpa_reserve(void **arr, size_t n, size_t *cap, size_t size)
{
    void *grown;
    size_t want;

    if (n < *cap)
        return 0;
    want = *cap ? *cap * 2 : 16;
    grown = realloc(*arr, want * size);
    if (grown == NULL)
        return -1;
    *arr = grown;
    *cap = want;
    return 0;
}

int hpa_state_add_recommendation(struct hpa_state *st, double time_s, int32_t replicas, struct err *e)
{
    if (hpa_reserve((void **)&st->recs, st->nrecs, &st->recs_cap, sizeof(*st->recs)) < 0)
        return err_set(e, ERR_SYSTEM, "out of memory");
    st->recs[st->nrecs++] = (struct hpa_recommendation){.time_s = time_s, .replicas = replicas};
    st->recommendations_set = true;
    return 0;
}

int hpa_state_add_scale_event(struct hpa_state *st, double time_s, int32_t change, struct err *e)
{
    struct hpa_scale_event ev = {.time_s = time_s, .change = change > 0 ? change : -change};

    if (change > 0) {
        if (hpa_reserve((void **)&st->up, st->nup, &st->up_cap, sizeof(*st->up)) < 0)
            return err_set(e, ERR_SYSTEM, "out of memory");
        st->up[st->nup++] = ev;
    } else if (change < 0) {
        if (hpa_reserve((void **)&st->down, st->ndown, &st->down_cap, sizeof(*st->down)) < 0)
            return err_set(e, ERR_SYSTEM, "out of memory");
        st->down[st->ndown++] = ev;
    }
    return 0;
}

/* ---- replica_calculator.go --------------------------------------------------- */

struct hpa_tolerances {
    double down, up;
};

/* Tolerances.isWithin: no change while 1-down <= ratio <= 1+up. */
static bool hpa_within(const struct hpa_tolerances *t, double ratio)
{
    return 1.0 - t->down <= ratio && ratio <= 1.0 + t->up;
}

/* int32(math.Ceil(x)), saturating as the newer controller does. */
static int32_t hpa_ceil_replicas(double x)
{
    double c = ceil(x);

    if (c >= (double)INT32_MAX)
        return INT32_MAX;
    if (c <= (double)INT32_MIN)
        return INT32_MIN;
    return (int32_t)c;
}

enum hpa_group { HPA_GROUP_READY, HPA_GROUP_UNREADY, HPA_GROUP_MISSING, HPA_GROUP_IGNORED };

/* groupPods, for one pod and metric M: deleted or failed pods are ignored,
 * pending pods unready, pods without a sample missing; for CPU, a pod is
 * also unready while in its initialisation period if it is not ready or its
 * sample predates readiness by less than a window, and after that if it is
 * not ready and has never been ready (its last transition came within the
 * initial readiness delay of its start). */
static enum hpa_group hpa_group_pod(const struct hpa_spec *spec, const struct hpa_pod *p, size_t m, bool cpu,
                                    double now_s)
{
    bool unready;

    if (p->deleting || p->phase == HPA_POD_FAILED)
        return HPA_GROUP_IGNORED;
    if (p->phase == HPA_POD_PENDING)
        return HPA_GROUP_UNREADY;
    if (!p->has_usage[m])
        return HPA_GROUP_MISSING;
    if (!cpu)
        return HPA_GROUP_READY;
    if (p->start_s + spec->cpu_init_period_s > now_s)
        unready = !p->ready || p->metric_time_s < p->last_transition_s + p->metric_window_s;
    else
        unready = !p->ready && p->start_s + spec->readiness_delay_s > p->last_transition_s;
    return unready ? HPA_GROUP_UNREADY : HPA_GROUP_READY;
}

/* Sums over the pods of one group pass. */
struct hpa_groups {
    size_t nready, nunready, nmissing, npods;
    int64_t usage_ready;   /* sum of the ready pods' samples */
    int64_t request_ready; /* sum of the ready pods' requests */
    int64_t request_unready, request_missing;
    int64_t missing_fallback; /* sum over missing pods of request*max(100,target)/100 */
};

static void hpa_group_pods(const struct hpa_spec *spec, const struct hpa_observation *obs, size_t m,
                           double now_s, struct hpa_groups *g)
{
    const struct hpa_metric *mt = &spec->metrics[m];
    bool cpu = mt->type == HPA_METRIC_RESOURCE && strcmp(mt->name, "cpu") == 0;
    int64_t fallback_pct = mt->average_utilization > 100 ? mt->average_utilization : 100;
    size_t i;

    memset(g, 0, sizeof(*g));
    g->npods = obs->npods;
    for (i = 0; i < obs->npods; i++) {
        const struct hpa_pod *p = &obs->pods[i];
        int64_t req = p->has_request[m] ? p->request_milli[m] : 0;

        switch (hpa_group_pod(spec, p, m, cpu, now_s)) {
        case HPA_GROUP_READY:
            g->nready++;
            g->usage_ready += p->usage_milli[m];
            g->request_ready += req;
            break;
        case HPA_GROUP_UNREADY:
            g->nunready++;
            g->request_unready += req;
            break;
        case HPA_GROUP_MISSING:
            g->nmissing++;
            g->request_missing += req;
            g->missing_fallback += req * fallback_pct / 100;
            break;
        case HPA_GROUP_IGNORED:
            break;
        }
    }
}

static int32_t hpa_invalid(struct hpa_metric_result *r, const char *reason, const char *msg)
{
    r->valid = false;
    r->failure_reason = reason;
    snprintf(r->error, sizeof(r->error), "%s", msg);
    return -1;
}

/* GetResourceReplicas: a Resource metric with a Utilization target. */
static void hpa_resource_utilization(const struct hpa_spec *spec, const struct hpa_observation *obs, size_t m,
                                     int32_t current, const struct hpa_tolerances *tol, double now_s,
                                     struct hpa_metric_result *r)
{
    const struct hpa_metric *mt = &spec->metrics[m];
    struct hpa_groups g;
    int64_t usage, requests, util, new_util;
    double ratio, new_ratio;
    bool up_with_unready;
    size_t i, n;
    int32_t replicas;

    if (obs->npods == 0) {
        hpa_invalid(r, "FailedGetResourceMetric", "no pods returned by selector while calculating replica count");
        return;
    }
    hpa_group_pods(spec, obs, m, now_s, &g);
    if (g.nready == 0) {
        hpa_invalid(r, "FailedGetResourceMetric",
                    "did not receive metrics for targeted pods (pods might be unready)");
        return;
    }
    for (i = 0; i < obs->npods; i++) /* calculateRequests: every pod needs one */
        if (!obs->pods[i].has_request[m]) {
            snprintf(r->error, sizeof(r->error), "missing request for %s in pod %zu", mt->name, i);
            r->valid = false;
            r->failure_reason = "FailedGetResourceMetric";
            return;
        }
    if (g.request_ready == 0) {
        hpa_invalid(r, "FailedGetResourceMetric", "no metrics returned matched known pods");
        return;
    }
    /* GetResourceUtilizationRatio: integer percent, truncated. */
    util = g.usage_ready * 100 / g.request_ready;
    ratio = (double)util / (double)mt->average_utilization;
    r->has_utilization = true;
    r->utilization = (int32_t)util;
    r->current_milli = g.usage_ready / (int64_t)g.nready;
    r->valid = true;

    up_with_unready = g.nunready > 0 && ratio > 1.0;
    if (!up_with_unready && g.nmissing == 0) {
        r->replicas = hpa_within(tol, ratio) ? current : hpa_ceil_replicas(ratio * (double)g.nready);
        return;
    }
    /* The correction pass: missing pods count as 100% of their request (or
     * the target, if above 100%) on a scale-down and 0 on a scale-up;
     * unready pods count as 0 on a scale-up. */
    usage = g.usage_ready;
    requests = g.request_ready;
    n = g.nready;
    if (g.nmissing > 0 && ratio < 1.0) {
        usage += g.missing_fallback;
        requests += g.request_missing;
        n += g.nmissing;
    } else if (g.nmissing > 0 && ratio > 1.0) {
        requests += g.request_missing;
        n += g.nmissing;
    }
    if (up_with_unready) {
        requests += g.request_unready;
        n += g.nunready;
    }
    new_util = usage * 100 / requests;
    new_ratio = (double)new_util / (double)mt->average_utilization;
    if (hpa_within(tol, new_ratio) || (ratio < 1.0 && new_ratio > 1.0) || (ratio > 1.0 && new_ratio < 1.0)) {
        r->replicas = current; /* too small a change, or the direction flipped */
        return;
    }
    replicas = hpa_ceil_replicas(new_ratio * (double)n);
    if ((new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current))
        replicas = current;
    r->replicas = replicas;
}

/* calcPlainMetricReplicas: a Resource metric with an AverageValue target
 * (GetRawResourceReplicas) or a Pods metric (GetMetricReplicas). */
static void hpa_plain_metric(const struct hpa_spec *spec, const struct hpa_observation *obs, size_t m,
                             int32_t current, const struct hpa_tolerances *tol, double now_s,
                             struct hpa_metric_result *r)
{
    const struct hpa_metric *mt = &spec->metrics[m];
    const char *fail = mt->type == HPA_METRIC_PODS ? "FailedGetPodsMetric" : "FailedGetResourceMetric";
    struct hpa_groups g;
    int64_t usage, total;
    double ratio, new_ratio;
    bool up_with_unready;
    size_t n;
    int32_t replicas;

    if (obs->npods == 0) {
        hpa_invalid(r, fail, "no pods returned by selector while calculating replica count");
        return;
    }
    hpa_group_pods(spec, obs, m, now_s, &g);
    if (g.nready == 0) {
        hpa_invalid(r, fail, "did not receive metrics for targeted pods (pods might be unready)");
        return;
    }
    /* GetMetricUsageRatio: integer average, float ratio. */
    usage = g.usage_ready / (int64_t)g.nready;
    ratio = (double)usage / (double)mt->target_milli;
    r->current_milli = usage;
    r->valid = true;

    up_with_unready = g.nunready > 0 && ratio > 1.0;
    if (!up_with_unready && g.nmissing == 0) {
        r->replicas = hpa_within(tol, ratio) ? current : hpa_ceil_replicas(ratio * (double)g.nready);
        return;
    }
    /* Missing pods: exactly the target on a scale-down, 0 on a scale-up. */
    total = g.usage_ready;
    n = g.nready;
    if (g.nmissing > 0 && ratio < 1.0) {
        total += mt->target_milli * (int64_t)g.nmissing;
        n += g.nmissing;
    } else if (g.nmissing > 0 && ratio > 1.0) {
        n += g.nmissing;
    }
    if (up_with_unready)
        n += g.nunready;
    new_ratio = (double)(total / (int64_t)n) / (double)mt->target_milli;
    if (hpa_within(tol, new_ratio) || (ratio < 1.0 && new_ratio > 1.0) || (ratio > 1.0 && new_ratio < 1.0)) {
        r->replicas = current;
        return;
    }
    replicas = hpa_ceil_replicas(new_ratio * (double)n);
    if ((new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current))
        replicas = current;
    r->replicas = replicas;
}

/* getReadyPodsCount: running pods whose Ready condition is true.  A replay
 * that lists no pods stands for CURRENT ready pods. */
static int64_t hpa_ready_pods(const struct hpa_observation *obs, int32_t current)
{
    int64_t n = 0;
    size_t i;

    if (obs->npods == 0)
        return current;
    for (i = 0; i < obs->npods; i++)
        if (obs->pods[i].phase == HPA_POD_RUNNING && obs->pods[i].ready)
            n++;
    return n;
}

/* GetObjectMetricReplicas / GetExternalMetricReplicas through
 * getUsageRatioReplicaCount (a Value target); GetObjectPerPodMetricReplicas /
 * GetExternalPerPodMetricReplicas (an AverageValue target, on the status
 * replica count). */
static void hpa_object_metric(const struct hpa_spec *spec, const struct hpa_observation *obs, size_t m,
                              int32_t current, int32_t status_replicas, const struct hpa_tolerances *tol,
                              struct hpa_metric_result *r)
{
    const struct hpa_metric *mt = &spec->metrics[m];
    const char *fail = mt->type == HPA_METRIC_OBJECT ? "FailedGetObjectMetric" : "FailedGetExternalMetric";
    int64_t usage;
    double ratio;

    if (!obs->has_value[m]) {
        hpa_invalid(r, fail, "no value reported for the metric");
        return;
    }
    usage = obs->value_milli[m];
    r->valid = true;
    if (mt->target == HPA_TARGET_VALUE) {
        r->current_milli = usage;
        ratio = (double)usage / (double)mt->target_milli;
        if (current == 0) { /* scale from zero: ignores pods and tolerance */
            r->replicas = hpa_ceil_replicas(ratio);
        } else if (hpa_within(tol, ratio)) {
            r->replicas = current;
        } else {
            r->replicas = hpa_ceil_replicas(ratio * (double)hpa_ready_pods(obs, current));
        }
        return;
    }
    r->replicas = status_replicas;
    ratio = (double)usage / ((double)mt->target_milli * (double)status_replicas);
    if (!hpa_within(tol, ratio))
        r->replicas = hpa_ceil_replicas((double)usage / (double)mt->target_milli);
    r->current_milli = status_replicas > 0 ? (int64_t)ceil((double)usage / (double)status_replicas) : usage;
}

/* ---- horizontal.go ----------------------------------------------------------- */

/* The name computeStatusFor*Metric gives a metric in messages. */
static void hpa_describe(const struct hpa_metric *mt, char *buf, size_t len)
{
    switch (mt->type) {
    case HPA_METRIC_RESOURCE:
        if (mt->target == HPA_TARGET_UTILIZATION)
            snprintf(buf, len, "%s resource utilization (percentage of request)", mt->name);
        else
            snprintf(buf, len, "%s resource", mt->name);
        break;
    case HPA_METRIC_PODS:
        snprintf(buf, len, "pods metric %s", mt->name);
        break;
    case HPA_METRIC_OBJECT:
        if (mt->target == HPA_TARGET_VALUE && mt->object_kind[0] != '\0')
            snprintf(buf, len, "%s metric %s", mt->object_kind, mt->name);
        else
            snprintf(buf, len, "object metric %s", mt->name);
        break;
    case HPA_METRIC_EXTERNAL:
        snprintf(buf, len, "external metric %s", mt->name);
        break;
    }
}

/* The tolerances the controller applies to this HPA: its flag, unless
 * behavior sets one for a direction (HPAConfigurableTolerance). */
static struct hpa_tolerances hpa_tolerances_for(const struct hpa_spec *spec)
{
    struct hpa_tolerances t = {spec->tolerance, spec->tolerance};

    if (spec->has_behavior) {
        if (!isnan(spec->scale_down.tolerance))
            t.down = spec->scale_down.tolerance;
        if (!isnan(spec->scale_up.tolerance))
            t.up = spec->scale_up.tolerance;
    }
    return t;
}

/* computeReplicasForMetrics: every metric's proposal and the largest.
 * Returns -1 when no scaling may happen: all metrics invalid, or some
 * invalid and the valid ones would scale down; *FIRST_BAD then names the
 * first invalid metric. */
static int32_t hpa_compute_metrics(const struct hpa_spec *spec, double now_s, int32_t current,
                                   const struct hpa_observation *obs, struct hpa_result *res, size_t *best,
                                   size_t *first_bad)
{
    struct hpa_tolerances tol = hpa_tolerances_for(spec);
    int32_t status = obs->status_replicas >= 0 ? obs->status_replicas : current;
    int32_t replicas = 0;
    size_t m, invalid = 0;

    res->nmetrics = spec->nmetrics;
    for (m = 0; m < spec->nmetrics; m++) {
        const struct hpa_metric *mt = &spec->metrics[m];
        struct hpa_metric_result *r = &res->metrics[m];

        memset(r, 0, sizeof(*r));
        hpa_describe(mt, r->description, sizeof(r->description));
        if (mt->type == HPA_METRIC_RESOURCE && mt->target == HPA_TARGET_UTILIZATION)
            hpa_resource_utilization(spec, obs, m, current, &tol, now_s, r);
        else if (mt->type == HPA_METRIC_RESOURCE || mt->type == HPA_METRIC_PODS)
            hpa_plain_metric(spec, obs, m, current, &tol, now_s, r);
        else
            hpa_object_metric(spec, obs, m, current, status, &tol, r);
        if (!r->valid) {
            if (invalid++ == 0)
                *first_bad = m;
            continue;
        }
        if (replicas == 0 || r->replicas > replicas) {
            replicas = r->replicas;
            *best = m;
        }
    }
    if (invalid >= spec->nmetrics || (invalid > 0 && replicas < current))
        return -1;
    return replicas;
}

/* Record a recommendation: overwrite slot OLD (>= 0) or append. */
static int hpa_store_recommendation(struct hpa_state *st, long old, double now_s, int32_t replicas)
{
    if (old >= 0) {
        st->recs[old] = (struct hpa_recommendation){.time_s = now_s, .replicas = replicas};
        return 0;
    }
    if (hpa_reserve((void **)&st->recs, st->nrecs, &st->recs_cap, sizeof(*st->recs)) < 0)
        return -1;
    st->recs[st->nrecs++] = (struct hpa_recommendation){.time_s = now_s, .replicas = replicas};
    return 0;
}

/* stabilizeRecommendation (no behavior): the highest recommendation not
 * older than the downscale window (inclusive), after recording this one in
 * place of the last stale entry. */
static int hpa_stabilize_legacy(struct hpa_state *st, const struct hpa_spec *spec, double now_s, int32_t desired,
                                int32_t *out)
{
    double cutoff = now_s - spec->downscale_window_s;
    int32_t best = desired;
    long old = -1;
    size_t i;

    for (i = 0; i < st->nrecs; i++) {
        if (st->recs[i].time_s < cutoff)
            old = (long)i;
        else if (st->recs[i].replicas > best)
            best = st->recs[i].replicas;
    }
    if (hpa_store_recommendation(st, old, now_s, desired) < 0)
        return -1;
    *out = best;
    return 0;
}

/* convertDesiredReplicasWithRules (no behavior): clamp to minReplicas, and
 * to maxReplicas or the legacy scale-up limit max(2 * current, 4). */
static int32_t hpa_convert_legacy(int32_t current, int32_t desired, int32_t min, int32_t max, const char **reason)
{
    int32_t limit = (int32_t)fmax(2.0 * (double)current, 4.0);
    int32_t allowed_max;
    const char *limited;

    if (max > limit) {
        allowed_max = limit;
        limited = "ScaleUpLimit";
    } else {
        allowed_max = max;
        limited = "TooManyReplicas";
    }
    if (desired < min) {
        *reason = "TooFewReplicas";
        return min;
    }
    if (desired > allowed_max) {
        *reason = limited;
        return allowed_max;
    }
    *reason = "DesiredWithinRange";
    return desired;
}

/* stabilizeRecommendationWithBehaviors: keep the recommendation between
 * the lowest one within the scale-up window and the highest within the
 * scale-down window (both exclusive of the cutoff). */
static int hpa_stabilize_behavior(struct hpa_state *st, const struct hpa_spec *spec, double now_s,
                                  int32_t current, int32_t desired, int32_t *out)
{
    double down_window = isnan(spec->scale_down.stabilization_window_s) ? spec->downscale_window_s
                                                                        : spec->scale_down.stabilization_window_s;
    double up_cutoff = now_s - spec->scale_up.stabilization_window_s;
    double down_cutoff = now_s - down_window;
    int32_t up_rec = desired, down_rec = desired, rec = current;
    long old = -1;
    size_t i;

    for (i = 0; i < st->nrecs; i++) {
        const struct hpa_recommendation *r = &st->recs[i];

        if (r->time_s > up_cutoff && r->replicas < up_rec)
            up_rec = r->replicas;
        if (r->time_s > down_cutoff && r->replicas > down_rec)
            down_rec = r->replicas;
        if (r->time_s < up_cutoff && r->time_s < down_cutoff)
            old = (long)i;
    }
    if (rec < up_rec)
        rec = up_rec;
    if (rec > down_rec)
        rec = down_rec;
    if (hpa_store_recommendation(st, old, now_s, desired) < 0)
        return -1;
    *out = rec;
    return 0;
}

/* getReplicasChangePerPeriod: replicas changed by events newer than the
 * period (exclusive). */
static int32_t hpa_change_in_period(const struct hpa_scale_event *ev, size_t n, int32_t period_s, double now_s)
{
    double cutoff = now_s - (double)period_s;
    int32_t sum = 0;
    size_t i;

    for (i = 0; i < n; i++)
        if (ev[i].time_s > cutoff)
            sum += ev[i].change;
    return sum;
}

/* calculateScaleUpLimitWithScalingRules (UP) and
 * calculateScaleDownLimitWithBehaviors: each policy allows a change from
 * the replica count at the start of its period; selectPolicy picks the
 * largest change (Max), the smallest (Min) or none (Disabled). */
static int32_t hpa_rate_limit(const struct hpa_state *st, const struct hpa_rules *rules, int32_t current,
                              double now_s, bool up)
{
    int32_t result;
    size_t i;

    if (rules->select == HPA_SELECT_DISABLED)
        return current;
    /* Scaling up, the largest change is the highest count; down, the lowest. */
    if ((rules->select == HPA_SELECT_MIN) == up)
        result = INT32_MAX;
    else
        result = INT32_MIN;
    for (i = 0; i < rules->npolicies; i++) {
        const struct hpa_policy *p = &rules->policies[i];
        int32_t added = hpa_change_in_period(st->up, st->nup, p->period_s, now_s);
        int32_t deleted = hpa_change_in_period(st->down, st->ndown, p->period_s, now_s);
        int32_t start = current - added + deleted;
        int32_t proposed;

        if (up)
            proposed = p->type == HPA_POLICY_PODS ? start + p->value
                                                  : hpa_ceil_replicas((double)start * (1 + (double)p->value / 100));
        else
            proposed = p->type == HPA_POLICY_PODS ? start - p->value
                                                  : (int32_t)((double)start * (1 - (double)p->value / 100));
        if ((rules->select == HPA_SELECT_MIN) == up)
            result = proposed < result ? proposed : result;
        else
            result = proposed > result ? proposed : result;
    }
    return result;
}

/* convertDesiredReplicasWithBehaviorRate: clamp to maxReplicas and the
 * scale-up rate, or to minReplicas and the scale-down rate. */
static int32_t hpa_convert_behavior(const struct hpa_state *st, const struct hpa_spec *spec, double now_s,
                                    int32_t current, int32_t desired, const char **reason)
{
    *reason = "DesiredWithinRange";
    if (desired > current) {
        int32_t limit = hpa_rate_limit(st, &spec->scale_up, current, now_s, true);
        int32_t allowed = spec->max_replicas;
        const char *limited = "TooManyReplicas";

        if (limit < current)
            limit = current;
        if (allowed > limit) {
            allowed = limit;
            limited = "ScaleUpLimit";
        }
        if (desired > allowed) {
            *reason = limited;
            return allowed;
        }
    } else if (desired < current) {
        int32_t limit = hpa_rate_limit(st, &spec->scale_down, current, now_s, false);
        int32_t allowed = spec->min_replicas;
        const char *limited = "TooFewReplicas";

        if (limit > current)
            limit = current;
        if (allowed < limit) {
            allowed = limit;
            limited = "ScaleDownLimit";
        }
        if (desired < allowed) {
            *reason = limited;
            return allowed;
        }
    }
    return desired;
}

/* storeScaleEvent: with behavior, remember the change, reusing the last
 * slot older than the direction's longest policy period. */
static int hpa_store_scale_event(struct hpa_state *st, const struct hpa_spec *spec, double now_s, int32_t prev,
                                 int32_t next)
{
    bool up = next > prev;
    const struct hpa_rules *rules = up ? &spec->scale_up : &spec->scale_down;
    struct hpa_scale_event **ev = up ? &st->up : &st->down;
    size_t *n = up ? &st->nup : &st->ndown;
    size_t *cap = up ? &st->up_cap : &st->down_cap;
    int32_t longest = 0;
    long old = -1;
    size_t i;

    if (!spec->has_behavior)
        return 0;
    for (i = 0; i < rules->npolicies; i++)
        if (rules->policies[i].period_s > longest)
            longest = rules->policies[i].period_s;
    for (i = 0; i < *n; i++) { /* markScaleEventsOutdated */
        if ((*ev)[i].time_s < now_s - (double)longest)
            (*ev)[i].outdated = true;
        if ((*ev)[i].outdated)
            old = (long)i;
    }
    if (old < 0) {
        if (hpa_reserve((void **)ev, *n, cap, sizeof(**ev)) < 0)
            return -1;
        old = (long)(*n)++;
    }
    (*ev)[old] = (struct hpa_scale_event){.time_s = now_s, .change = up ? next - prev : prev - next};
    return 0;
}

int hpa_step(struct hpa_state *st, const struct hpa_spec *spec, double now_s, int32_t current,
             const struct hpa_observation *obs, struct hpa_result *res)
{
    int32_t desired = 0, min = spec->min_replicas;
    size_t best = 0, bad = 0;

    memset(res, 0, sizeof(*res));
    res->metric_replicas = -1;
    res->scaling_active = "ValidMetricFound";
    res->able_to_scale = "ReadyForNewScale";
    /* recordInitialRecommendation */
    if (!st->recommendations_set) {
        if (hpa_store_recommendation(st, -1, now_s, current) < 0)
            return -1;
        st->recommendations_set = true;
    }
    if (current == 0 && min != 0) {
        res->desired_replicas = 0;
        res->scaling_active = "ScalingDisabled";
        res->reason = "ScalingDisabled";
        snprintf(res->message, sizeof(res->message), "scaling is disabled since the replica count of the target is zero");
        return 0;
    }
    if (current > spec->max_replicas) {
        desired = spec->max_replicas;
        res->stabilized_replicas = desired;
        res->reason = "TooManyReplicas";
        snprintf(res->message, sizeof(res->message), "Current number of replicas above Spec.MaxReplicas");
    } else if (current < min) {
        desired = min;
        res->stabilized_replicas = desired;
        res->reason = "TooFewReplicas";
        snprintf(res->message, sizeof(res->message), "Current number of replicas below Spec.MinReplicas");
    } else {
        int32_t proposal = hpa_compute_metrics(spec, now_s, current, obs, res, &best, &bad);
        int32_t stabilized;

        if (proposal < 0) { /* the controller returns an error and does not scale */
            res->desired_replicas = current;
            res->stabilized_replicas = current;
            res->scaling_active = res->metrics[bad].failure_reason;
            res->reason = res->metrics[bad].failure_reason;
            snprintf(res->message, sizeof(res->message), "%s", res->metrics[bad].error);
            return 0;
        }
        res->metric_replicas = proposal;
        desired = proposal > 0 ? proposal : 0;
        if (desired > current)
            snprintf(res->message, sizeof(res->message), "%s above target", res->metrics[best].description);
        if (desired < current)
            snprintf(res->message, sizeof(res->message), "All metrics below target");
        if (!spec->has_behavior) {
            if (hpa_stabilize_legacy(st, spec, now_s, desired, &stabilized) < 0)
                return -1;
            if (stabilized != desired)
                res->able_to_scale = "ScaleDownStabilized";
            res->stabilized_replicas = stabilized;
            desired = hpa_convert_legacy(current, stabilized, min, spec->max_replicas, &res->reason);
        } else {
            if (hpa_stabilize_behavior(st, spec, now_s, current, desired, &stabilized) < 0)
                return -1;
            if (stabilized != desired)
                res->able_to_scale = desired >= current ? "ScaleUpStabilized" : "ScaleDownStabilized";
            res->stabilized_replicas = stabilized;
            desired = hpa_convert_behavior(st, spec, now_s, current, stabilized, &res->reason);
        }
    }
    res->desired_replicas = desired;
    res->rescale = desired != current;
    if (res->rescale && hpa_store_scale_event(st, spec, now_s, current, desired) < 0)
        return -1;
    return 0;
}
