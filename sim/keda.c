/* keda.c -- see keda.h. */
#include "sim/keda.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/conf.h"

/* An integer setting in LO..HI; 1 present, 0 absent, -1 error. */
static int keda_get_int(const struct conf *c, const struct conf_node *map, const char *key, long lo, long hi,
                        int32_t *out, struct err *e)
{
    long v;
    int rc = conf_get_long(c, map, key, &v, e);

    if (rc <= 0)
        return rc;
    if (v < lo || v > hi)
        return conf_error(c, conf_get(map, key), e, "%s: expected %ld..%ld, got %ld", key, lo, hi, v);
    *out = (int32_t)v;
    return 1;
}

/* A required string of metadata MD. */
static int keda_need_str(const struct conf *c, const struct conf_node *md, const char *key, const char **out,
                         struct err *e)
{
    int rc = conf_get_str(c, md, key, out, e);

    if (rc < 0)
        return -1;
    if (rc == 0 || (*out)[0] == '\0')
        return conf_error(c, md, e, "metadata.%s: required", key);
    return 0;
}

static int keda_read_cron(const struct conf *c, const struct conf_node *md, struct keda_trigger *t, struct err *e)
{
    static const char *const keys[] = {"timezone", "start", "end", "desiredReplicas", NULL};
    const char *zone, *start, *end;
    struct err sub = {0};
    int rc;

    if (conf_check_keys(c, md, "cron trigger metadata", keys, e) < 0 || keda_need_str(c, md, "timezone", &zone, e) < 0 ||
        keda_need_str(c, md, "start", &start, e) < 0 || keda_need_str(c, md, "end", &end, e) < 0)
        return -1;
    if ((t->tz = tz_load(zone, &sub)) == NULL)
        return conf_error(c, conf_get(md, "timezone"), e, "timezone: %s", sub.msg);
    if (cron_parse(start, &t->start, &sub) < 0)
        return conf_error(c, conf_get(md, "start"), e, "start: %s", sub.msg);
    if (cron_parse(end, &t->end, &sub) < 0)
        return conf_error(c, conf_get(md, "end"), e, "end: %s", sub.msg);
    if (strcmp(start, end) == 0)
        return conf_error(c, conf_get(md, "end"), e, "end: start and end must not be the same ('%s')", end);
    rc = keda_get_int(c, md, "desiredReplicas", 1, INT32_MAX, &t->desired_replicas, e);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return conf_error(c, md, e, "metadata.desiredReplicas: required");
    return 0;
}

/* metricType: at the trigger (KEDA's place) or in its metadata. */
static int keda_read_metric_type(const struct conf *c, const struct conf_node *trig, const struct conf_node *md,
                                 struct keda_trigger *t, struct err *e)
{
    static const char *const types[] = {"AverageValue", "Value", NULL};
    int a = 0, b = 0, ra, rb;

    ra = conf_get_enum(c, trig, "metricType", types, &a, e);
    if (ra < 0 || (rb = conf_get_enum(c, md, "metricType", types, &b, e)) < 0)
        return -1;
    if (ra == 1 && rb == 1)
        return conf_error(c, conf_get(md, "metricType"), e, "metricType: give it once (on the trigger)");
    t->value_target = (ra == 1 ? a : b) == 1;
    return 0;
}

static int keda_read_metric(const struct conf *c, const struct conf_node *trig, const struct conf_node *md,
                            struct keda_trigger *t, struct err *e)
{
    static const char *const keys[] = {"metricName", "targetValue", "value", "activationThreshold", "metricType", NULL};
    const char *name;
    int rt, rv;
    double v = 0;

    if (conf_check_keys(c, md, "metric trigger metadata", keys, e) < 0 || keda_need_str(c, md, "metricName", &name, e) < 0)
        return -1;
    if (strncmp(name, "llmserve_", 9) == 0)
        name += 9;
    if (strlen(name) >= sizeof(t->metric))
        return conf_error(c, conf_get(md, "metricName"), e, "metricName: too long");
    snprintf(t->metric, sizeof(t->metric), "%s", name);
    rt = conf_get_double(c, md, "targetValue", &t->target, e);
    if (rt < 0 || (rv = conf_get_double(c, md, "value", &v, e)) < 0)
        return -1;
    if (rt == rv)
        return conf_error(c, md, e, "metadata: give one of targetValue or value");
    if (rv == 1)
        t->target = v;
    if (!(t->target > 0) || !isfinite(t->target))
        return conf_error(c, conf_get(md, rt ? "targetValue" : "value"), e, "%s: must be positive",
                          rt ? "targetValue" : "value");
    if (conf_get_double(c, md, "activationThreshold", &t->activation_threshold, e) < 0)
        return -1;
    return keda_read_metric_type(c, trig, md, t, e);
}

static int keda_read_trigger(const struct conf *c, const struct conf_node *trig, struct keda_trigger *t,
                             struct err *e)
{
    static const char *const keys[] = {"type", "name", "metadata", "metricType", NULL};
    const char *type = NULL;
    struct conf_node *md = NULL;

    if (!conf_is_map(trig))
        return conf_error(c, trig, e, "triggers[]: expected a mapping {type, metadata}");
    if (conf_check_keys(c, trig, "triggers[]", keys, e) < 0 || conf_get_str(c, trig, "type", &type, e) < 0 ||
        conf_get_map(c, trig, "metadata", &md, e) < 0)
        return -1;
    if (type == NULL)
        return conf_error(c, trig, e, "type: required (cron or metric)");
    if (md == NULL)
        return conf_error(c, trig, e, "metadata: required");
    if (strcmp(type, "cron") == 0) {
        t->type = KEDA_TRIGGER_CRON;
        if (conf_get(trig, "metricType") != NULL)
            return conf_error(c, conf_get(trig, "metricType"), e, "metricType: not for a cron trigger");
        return keda_read_cron(c, md, t, e);
    }
    if (strcmp(type, "metric") == 0) {
        t->type = KEDA_TRIGGER_METRIC;
        return keda_read_metric(c, trig, md, t, e);
    }
    return conf_error(c, conf_get(trig, "type"), e,
                      "type: unknown trigger type '%s' (cron, or metric: one of the simulator's metrics)", type);
}

/* The HPA KEDA creates: External metrics, one per trigger. */
static void keda_build_hpa(const struct keda_spec *k, struct hpa_spec *hpa)
{
    size_t i;

    hpa->min_replicas = k->min_replicas > 0 ? k->min_replicas : 1;
    hpa->max_replicas = k->max_replicas;
    hpa->nmetrics = k->ntriggers;
    for (i = 0; i < k->ntriggers; i++) {
        const struct keda_trigger *t = &k->triggers[i];
        struct hpa_metric *m = &hpa->metrics[i];

        memset(m, 0, sizeof(*m));
        m->type = HPA_METRIC_EXTERNAL;
        if (t->type == KEDA_TRIGGER_CRON) {
            snprintf(m->name, sizeof(m->name), "s%zu-cron-%s", i, tz_name(t->tz));
            m->target = HPA_TARGET_AVERAGE_VALUE;
            m->target_milli = 1000;
        } else {
            snprintf(m->name, sizeof(m->name), "s%zu-%s", i, t->metric);
            m->target = t->value_target ? HPA_TARGET_VALUE : HPA_TARGET_AVERAGE_VALUE;
            m->target_milli = llround(t->target * 1000.0);
            if (m->target_milli < 1)
                m->target_milli = 1;
        }
    }
}

int keda_spec_from_conf(const struct conf *c, const struct conf_node *map, struct keda_spec *out,
                        struct hpa_spec *hpa, struct err *e)
{
    static const char *const keys[] = {"minReplicaCount", "maxReplicaCount", "idleReplicaCount", "pollingInterval",
                                       "cooldownPeriod", "initialCooldownPeriod", "advanced", "triggers",
                                       "clock_start", "scaleTargetRef", NULL};
    static const char *const akeys[] = {"horizontalPodAutoscalerConfig", "restoreToOriginalReplicaCount", NULL};
    static const char *const hkeys[] = {"behavior", "name", NULL};
    struct conf_node *adv = NULL, *hcfg = NULL, *beh = NULL, *seq = NULL;
    const char *clock = NULL;
    bool restore;
    int rc;
    size_t i;

    memset(out, 0, sizeof(*out));
    out->max_replicas = KEDA_DEFAULT_MAX_REPLICAS;
    out->polling_interval_s = KEDA_DEFAULT_POLLING_INTERVAL_S;
    out->cooldown_s = KEDA_DEFAULT_COOLDOWN_S;
    out->clock_start_s = KEDA_DEFAULT_CLOCK_START_S;
    hpa_spec_init(hpa);
    if (conf_check_keys(c, map, "autoscaler.keda", keys, e) < 0 ||
        keda_get_int(c, map, "minReplicaCount", 0, INT32_MAX, &out->min_replicas, e) < 0 ||
        keda_get_int(c, map, "maxReplicaCount", 1, INT32_MAX, &out->max_replicas, e) < 0 ||
        conf_get_duration(c, map, "pollingInterval", &out->polling_interval_s, e) < 0 ||
        conf_get_duration(c, map, "cooldownPeriod", &out->cooldown_s, e) < 0 ||
        conf_get_duration(c, map, "initialCooldownPeriod", &out->initial_cooldown_s, e) < 0)
        return -1;
    if (out->min_replicas > out->max_replicas)
        return conf_error(c, conf_get(map, "minReplicaCount"), e,
                          "minReplicaCount: must not exceed maxReplicaCount (%d > %d)", (int)out->min_replicas,
                          (int)out->max_replicas);
    if (out->polling_interval_s < 1e-3)
        return conf_error(c, conf_get(map, "pollingInterval"), e, "pollingInterval: must be at least 1ms");
    rc = keda_get_int(c, map, "idleReplicaCount", 0, INT32_MAX, &out->idle_replicas, e);
    if (rc < 0)
        return -1;
    if (rc == 1) {
        out->has_idle = true;
        if (out->idle_replicas >= out->min_replicas)
            return conf_error(c, conf_get(map, "idleReplicaCount"), e,
                              "idleReplicaCount: must be less than minReplicaCount (%d >= %d)", (int)out->idle_replicas,
                              (int)out->min_replicas);
    }
    if (conf_get_str(c, map, "clock_start", &clock, e) < 0)
        return -1;
    if (clock != NULL) {
        struct err sub = {0};
        if (tz_parse_rfc3339(clock, &out->clock_start_s, &sub) < 0)
            return conf_error(c, conf_get(map, "clock_start"), e, "clock_start: %s", sub.msg);
    }
    /* The HPA's spec, before its behavior is read into it. */
    if (conf_get_map(c, map, "advanced", &adv, e) < 0)
        return -1;
    if (adv != NULL && (conf_check_keys(c, adv, "advanced", akeys, e) < 0 ||
                        conf_get_bool(c, adv, "restoreToOriginalReplicaCount", &restore, e) < 0 ||
                        conf_get_map(c, adv, "horizontalPodAutoscalerConfig", &hcfg, e) < 0))
        return -1;
    if (hcfg != NULL && (conf_check_keys(c, hcfg, "horizontalPodAutoscalerConfig", hkeys, e) < 0 ||
                         conf_get_map(c, hcfg, "behavior", &beh, e) < 0))
        return -1;
    if (beh != NULL && hpa_behavior_from_conf(c, beh, hpa, e) < 0)
        return -1;
    if (conf_get_seq(c, map, "triggers", &seq, e) < 0)
        return -1;
    if (seq == NULL || conf_seq_len(seq) == 0)
        return conf_error(c, map, e, "triggers: at least one trigger is required");
    if (conf_seq_len(seq) > KEDA_MAX_TRIGGERS)
        return conf_error(c, seq, e, "triggers: at most %d triggers", KEDA_MAX_TRIGGERS);
    for (i = 0; i < conf_seq_len(seq); i++) {
        out->ntriggers = i + 1; /* so that keda_spec_free frees what was loaded */
        if (keda_read_trigger(c, conf_seq_at(seq, i), &out->triggers[i], e) < 0)
            return -1;
    }
    keda_build_hpa(out, hpa);
    return 0;
}

void keda_spec_free(struct keda_spec *k)
{
    size_t i;

    if (k == NULL)
        return;
    for (i = 0; i < k->ntriggers; i++) {
        tz_free(k->triggers[i].tz);
        k->triggers[i].tz = NULL;
    }
}

bool keda_cron_active(const struct keda_spec *k, const struct keda_trigger *t, double now_s)
{
    /* The cron scaler compares whole Unix seconds. */
    int64_t unix_s = k->clock_start_s + (int64_t)floor(now_s);

    return cron_window_active(&t->start, &t->end, t->tz, unix_s);
}

double keda_cron_value(const struct keda_spec *k, const struct keda_trigger *t, double now_s)
{
    return keda_cron_active(k, t, now_s) ? (double)t->desired_replicas : 1.0;
}

enum keda_action keda_poll(const struct keda_spec *k, struct keda_state *st, double now_s, int32_t current,
                           bool active, int32_t *replicas)
{
    *replicas = current;
    if (active) {
        st->has_last_active = true;
        st->last_active_s = now_s;
        if ((k->has_idle && current < k->min_replicas) || current == 0) {
            *replicas = k->min_replicas > 0 ? k->min_replicas : 1;
            return KEDA_ACTIVATE;
        }
        return KEDA_NO_CHANGE; /* the HPA scales from here */
    }
    if ((k->has_idle && current > k->idle_replicas) || (current > 0 && k->min_replicas == 0)) {
        bool cooled = st->has_last_active ? now_s - st->last_active_s >= k->cooldown_s
                                          : now_s >= k->initial_cooldown_s;
        if (!cooled)
            return KEDA_NO_CHANGE;
        *replicas = k->has_idle ? k->idle_replicas : k->min_replicas;
        return KEDA_DEACTIVATE;
    }
    if (!k->has_idle && current < k->min_replicas) {
        *replicas = k->min_replicas;
        return KEDA_TO_MIN;
    }
    return KEDA_NO_CHANGE;
}
