/* hpa_spec.c -- read an autoscaling/v2 HorizontalPodAutoscalerSpec from a
 * configuration mapping (see hpa.h): the API's field names, its defaults
 * (SetDefaults_HorizontalPodAutoscaler, GenerateHPAScale{Up,Down}Rules) and
 * its validation (ValidateHorizontalPodAutoscalerSpec), every error located
 * at the offending key. */
#include "sim/hpa.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/conf.h"
#include "sim/quantity.h"

#define HPA_MAX_WINDOW_S 3600 /* MaxStabilizationWindowSeconds */
#define HPA_MAX_PERIOD_S 1800 /* MaxPeriodSeconds */

/* An integer KEY of MAP within [LO, HI]; 1 present, 0 absent, -1 error. */
static int hpa_get_int(const struct conf *c, const struct conf_node *map, const char *key, long lo, long hi,
                       int32_t *out, struct err *e)
{
    long v;
    int rc = conf_get_long(c, map, key, &v, e);

    if (rc <= 0)
        return rc;
    if (v < lo || v > hi)
        return conf_error(c, conf_get(map, key), e, "%s: must be between %ld and %ld, got %ld", key, lo, hi, v);
    *out = (int32_t)v;
    return 1;
}

/* A quantity KEY of MAP that must be positive (or, NONNEG, not negative);
 * 1 present, 0 absent, -1 error. */
static int hpa_get_quantity(const struct conf *c, const struct conf_node *map, const char *key, bool nonneg,
                            int64_t *milli, double *value, struct err *e)
{
    const char *s;
    struct err sub;
    double v;
    int rc = conf_get_str(c, map, key, &s, e);

    if (rc <= 0)
        return rc;
    if (quantity_parse(s, milli, &v, &sub) < 0)
        return conf_error(c, conf_get(map, key), e, "%s: %s", key, sub.msg);
    if (nonneg ? v < 0 : v <= 0)
        return conf_error(c, conf_get(map, key), e, "%s: must be %s, got %s", key,
                          nonneg ? "zero or more" : "positive", s);
    if (value != NULL)
        *value = v;
    return 1;
}

/* A required mapping KEY of MAP, checked against ALLOWED. */
static int hpa_get_section(const struct conf *c, const struct conf_node *map, const char *key,
                           const char *const *allowed, struct conf_node **out, struct err *e)
{
    int rc = conf_get_map(c, map, key, out, e);

    if (rc < 0)
        return -1;
    if (rc == 0)
        return conf_error(c, map, e, "%s: required", key);
    return conf_check_keys(c, *out, key, allowed, e);
}

/* MetricTarget: type and the matching field; ALLOW says which types the
 * source accepts (bit per enum hpa_target_type). */
static int hpa_read_target(const struct conf *c, const struct conf_node *src, unsigned allow,
                           struct hpa_metric *m, struct err *e)
{
    static const char *const keys[] = {"type", "averageUtilization", "value", "averageValue", NULL};
    static const char *const types[] = {"Utilization", "Value", "AverageValue", NULL};
    struct conf_node *t;
    int type, rc;

    if (hpa_get_section(c, src, "target", keys, &t, e) < 0)
        return -1;
    rc = conf_get_enum(c, t, "type", types, &type, e);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return conf_error(c, t, e, "target.type: required (Utilization, Value or AverageValue)");
    if (!(allow & (1u << type)))
        return conf_error(c, conf_get(t, "type"), e, "type: %s is not a valid target for a %s metric", types[type],
                          m->type == HPA_METRIC_RESOURCE ? "Resource"
                          : m->type == HPA_METRIC_PODS   ? "Pods"
                          : m->type == HPA_METRIC_OBJECT ? "Object"
                                                         : "External");
    m->target = (enum hpa_target_type)type;
    switch (m->target) {
    case HPA_TARGET_UTILIZATION:
        rc = hpa_get_int(c, t, "averageUtilization", 1, INT32_MAX, &m->average_utilization, e);
        if (rc == 0)
            return conf_error(c, t, e, "averageUtilization: required with type Utilization");
        return rc < 0 ? -1 : 0;
    case HPA_TARGET_VALUE:
        rc = hpa_get_quantity(c, t, "value", false, &m->target_milli, NULL, e);
        if (rc == 0)
            return conf_error(c, t, e, "value: required with type Value");
        return rc < 0 ? -1 : 0;
    case HPA_TARGET_AVERAGE_VALUE:
        rc = hpa_get_quantity(c, t, "averageValue", false, &m->target_milli, NULL, e);
        if (rc == 0)
            return conf_error(c, t, e, "averageValue: required with type AverageValue");
        return rc < 0 ? -1 : 0;
    }
    return 0;
}

/* Copy a name from KEY of MAP (required, non-empty) into BUF. */
static int hpa_read_name(const struct conf *c, const struct conf_node *map, const char *key, char *buf, size_t len,
                         struct err *e)
{
    const char *s;
    int rc = conf_get_str(c, map, key, &s, e);

    if (rc < 0)
        return -1;
    if (rc == 0 || s[0] == '\0')
        return conf_error(c, map, e, "%s: required", key);
    if (strlen(s) >= len)
        return conf_error(c, conf_get(map, key), e, "%s: longer than %zu characters", key, len - 1);
    snprintf(buf, len, "%s", s);
    return 0;
}

/* One MetricSpec. */
static int hpa_read_metric(const struct conf *c, const struct conf_node *n, struct hpa_metric *m, struct err *e)
{
    static const char *const keys[] = {"type", "resource", "pods", "object", "external", NULL};
    static const char *const types[] = {"Resource", "Pods", "Object", "External", NULL};
    static const char *const sections[] = {"resource", "pods", "object", "external"};
    static const char *const resource_keys[] = {"name", "target", NULL};
    static const char *const source_keys[] = {"metric", "target", NULL};
    static const char *const object_keys[] = {"metric", "target", "describedObject", NULL};
    static const char *const ident_keys[] = {"name", "selector", NULL};
    static const char *const described_keys[] = {"apiVersion", "kind", "name", NULL};
    const unsigned value_types = (1u << HPA_TARGET_VALUE) | (1u << HPA_TARGET_AVERAGE_VALUE);
    struct conf_node *src, *ident, *described;
    int type, rc, i;

    memset(m, 0, sizeof(*m));
    if (conf_check_keys(c, n, "metrics[]", keys, e) < 0)
        return -1;
    rc = conf_get_enum(c, n, "type", types, &type, e);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return conf_error(c, n, e, "type: required (Resource, Pods, Object or External)");
    m->type = (enum hpa_metric_type)type;
    for (i = 0; i < 4; i++)
        if (i != type && conf_get(n, sections[i]) != NULL)
            return conf_error(c, conf_get(n, sections[i]), e, "%s: must not be set for a metric of type %s",
                              sections[i], types[type]);
    switch (m->type) {
    case HPA_METRIC_RESOURCE:
        if (hpa_get_section(c, n, "resource", resource_keys, &src, e) < 0 ||
            hpa_read_name(c, src, "name", m->name, sizeof(m->name), e) < 0)
            return -1;
        return hpa_read_target(c, src, (1u << HPA_TARGET_UTILIZATION) | (1u << HPA_TARGET_AVERAGE_VALUE), m, e);
    case HPA_METRIC_PODS:
        if (hpa_get_section(c, n, "pods", source_keys, &src, e) < 0)
            return -1;
        break;
    case HPA_METRIC_OBJECT:
        if (hpa_get_section(c, n, "object", object_keys, &src, e) < 0)
            return -1;
        rc = conf_get_map(c, src, "describedObject", &described, e);
        if (rc < 0 || (rc == 1 && conf_check_keys(c, described, "describedObject", described_keys, e) < 0))
            return -1;
        if (rc == 1 && conf_get(described, "kind") != NULL &&
            hpa_read_name(c, described, "kind", m->object_kind, sizeof(m->object_kind), e) < 0)
            return -1;
        break;
    case HPA_METRIC_EXTERNAL:
        if (hpa_get_section(c, n, "external", source_keys, &src, e) < 0)
            return -1;
        break;
    }
    if (hpa_get_section(c, src, "metric", ident_keys, &ident, e) < 0 ||
        hpa_read_name(c, ident, "name", m->name, sizeof(m->name), e) < 0)
        return -1;
    return hpa_read_target(c, src, m->type == HPA_METRIC_PODS ? (1u << HPA_TARGET_AVERAGE_VALUE) : value_types, m, e);
}

/* One direction of behavior (HPAScalingRules); unset fields keep the
 * defaults already in R. */
static int hpa_read_rules(const struct conf *c, const struct conf_node *map, const char *key, struct hpa_rules *r,
                          struct err *e)
{
    static const char *const keys[] = {"stabilizationWindowSeconds", "selectPolicy", "policies", "tolerance", NULL};
    static const char *const policy_keys[] = {"type", "value", "periodSeconds", NULL};
    static const char *const selects[] = {"Max", "Min", "Disabled", NULL};
    static const char *const ptypes[] = {"Pods", "Percent", NULL};
    struct conf_node *n, *seq;
    int32_t window;
    int64_t milli;
    double tol;
    int sel, rc;
    size_t i;

    rc = conf_get_map(c, map, key, &n, e);
    if (rc <= 0)
        return rc;
    if (conf_check_keys(c, n, key, keys, e) < 0)
        return -1;
    rc = hpa_get_int(c, n, "stabilizationWindowSeconds", 0, HPA_MAX_WINDOW_S, &window, e);
    if (rc < 0)
        return -1;
    if (rc == 1)
        r->stabilization_window_s = window;
    rc = conf_get_enum(c, n, "selectPolicy", selects, &sel, e);
    if (rc < 0)
        return -1;
    if (rc == 1)
        r->select = (enum hpa_select)sel;
    rc = hpa_get_quantity(c, n, "tolerance", true, &milli, &tol, e);
    if (rc < 0)
        return -1;
    if (rc == 1)
        r->tolerance = tol;
    rc = conf_get_seq(c, n, "policies", &seq, e);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return 0;
    if (conf_seq_len(seq) == 0)
        return conf_error(c, conf_get(n, "policies"), e, "policies: must specify at least one policy");
    if (conf_seq_len(seq) > HPA_MAX_POLICIES)
        return conf_error(c, seq, e, "policies: at most %d policies", HPA_MAX_POLICIES);
    r->npolicies = conf_seq_len(seq);
    for (i = 0; i < r->npolicies; i++) {
        struct conf_node *p = conf_seq_at(seq, i);
        struct hpa_policy *pol = &r->policies[i];
        int t;

        if (conf_check_keys(c, p, "policies[]", policy_keys, e) < 0)
            return -1;
        rc = conf_get_enum(c, p, "type", ptypes, &t, e);
        if (rc < 0)
            return -1;
        if (rc == 0)
            return conf_error(c, p, e, "type: required (Pods or Percent)");
        pol->type = (enum hpa_policy_type)t;
        rc = hpa_get_int(c, p, "value", 1, INT32_MAX, &pol->value, e);
        if (rc == 0)
            return conf_error(c, p, e, "value: required");
        if (rc < 0)
            return -1;
        rc = hpa_get_int(c, p, "periodSeconds", 1, HPA_MAX_PERIOD_S, &pol->period_s, e);
        if (rc == 0)
            return conf_error(c, p, e, "periodSeconds: required");
        if (rc < 0)
            return -1;
    }
    return 0;
}

int hpa_spec_from_conf(const struct conf *c, const struct conf_node *map, struct hpa_spec *out, struct err *e)
{
    static const char *const keys[] = {"minReplicas", "maxReplicas", "metrics", "behavior", "scaleTargetRef", NULL};
    struct conf_node *seq, *behavior;
    bool value_metric = false;
    int rc;
    size_t i;

    hpa_spec_init(out);
    if (conf_check_keys(c, map, "hpa", keys, e) < 0)
        return -1;
    rc = hpa_get_int(c, map, "maxReplicas", 1, INT32_MAX, &out->max_replicas, e);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return conf_error(c, map, e, "maxReplicas: required");
    rc = conf_get_seq(c, map, "metrics", &seq, e);
    if (rc < 0)
        return -1;
    if (rc == 0 || conf_seq_len(seq) == 0) { /* the API's default: 80% CPU */
        out->nmetrics = 1;
        out->metrics[0].type = HPA_METRIC_RESOURCE;
        snprintf(out->metrics[0].name, sizeof(out->metrics[0].name), "cpu");
        out->metrics[0].target = HPA_TARGET_UTILIZATION;
        out->metrics[0].average_utilization = 80;
    } else {
        if (conf_seq_len(seq) > HPA_MAX_METRICS)
            return conf_error(c, seq, e, "metrics: at most %d metrics", HPA_MAX_METRICS);
        out->nmetrics = conf_seq_len(seq);
        for (i = 0; i < out->nmetrics; i++) {
            if (hpa_read_metric(c, conf_seq_at(seq, i), &out->metrics[i], e) < 0)
                return -1;
            if (out->metrics[i].type == HPA_METRIC_OBJECT || out->metrics[i].type == HPA_METRIC_EXTERNAL)
                value_metric = true;
        }
    }
    /* minReplicas 0 (HPAScaleToZero) needs an Object or External metric. */
    rc = hpa_get_int(c, map, "minReplicas", value_metric ? 0 : 1, INT32_MAX, &out->min_replicas, e);
    if (rc < 0)
        return -1;
    if (out->min_replicas > out->max_replicas)
        return conf_error(c, conf_get(map, "minReplicas"), e,
                          "minReplicas: must be less than or equal to maxReplicas (%d > %d)", out->min_replicas,
                          out->max_replicas);
    rc = conf_get_map(c, map, "behavior", &behavior, e);
    if (rc < 0)
        return -1;
    return rc == 1 ? hpa_behavior_from_conf(c, behavior, out, e) : 0;
}

int hpa_behavior_from_conf(const struct conf *c, const struct conf_node *behavior, struct hpa_spec *spec,
                           struct err *e)
{
    static const char *const behavior_keys[] = {"scaleUp", "scaleDown", NULL};

    spec->has_behavior = true;
    if (conf_check_keys(c, behavior, "behavior", behavior_keys, e) < 0 ||
        hpa_read_rules(c, behavior, "scaleUp", &spec->scale_up, e) < 0 ||
        hpa_read_rules(c, behavior, "scaleDown", &spec->scale_down, e) < 0)
        return -1;
    return 0;
}

int hpa_controller_from_conf(const struct conf *c, const struct conf_node *map, struct hpa_spec *spec,
                             struct err *e)
{
    static const char *const keys[] = {"syncPeriod", "tolerance", "cpuInitializationPeriod", "initialReadinessDelay",
                                       "downscaleStabilization", NULL};
    struct conf_node *tol;

    if (conf_check_keys(c, map, "controller", keys, e) < 0)
        return -1;
    if (conf_get_duration(c, map, "syncPeriod", &spec->sync_period_s, e) < 0 ||
        conf_get_nonneg(c, map, "tolerance", &spec->tolerance, e) < 0 ||
        conf_get_duration(c, map, "cpuInitializationPeriod", &spec->cpu_init_period_s, e) < 0 ||
        conf_get_duration(c, map, "initialReadinessDelay", &spec->readiness_delay_s, e) < 0 ||
        conf_get_duration(c, map, "downscaleStabilization", &spec->downscale_window_s, e) < 0)
        return -1;
    tol = conf_get(map, "syncPeriod");
    if (tol != NULL && spec->sync_period_s <= 0)
        return conf_error(c, tol, e, "syncPeriod: must be positive");
    return 0;
}
