/* keda.h -- KEDA's ScaledObject (keda.sh): the spec read from a scenario,
 * the HPA it creates, and the operator's own scale loop.
 *
 * KEDA scales in two layers (docs: keda.sh/docs/latest/concepts/
 * scaling-deployments, reference/scaledobject-spec):
 *  - it creates an HPA whose metrics are the triggers, as External metrics
 *    (AverageValue by default), with minReplicas max(1, minReplicaCount),
 *    maxReplicas maxReplicaCount and the behavior given under
 *    advanced.horizontalPodAutoscalerConfig; that HPA scales 1 <-> N;
 *  - every pollingInterval its own loop asks each trigger whether it is
 *    active and handles 0 <-> 1 (pkg/scaling/executor/scale_scaledobjects.go,
 *    RequestScale): keda_poll() below.
 * A metric trigger is active when its value is above activationThreshold; a
 * cron trigger within its start..end window (sim/cron.h), where its metric
 * is desiredReplicas against an AverageValue target of 1 (outside: 1), so
 * the HPA keeps at least desiredReplicas (it takes the largest proposal). */
#ifndef LLM_KEDA_H
#define LLM_KEDA_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "sim/cron.h"
#include "sim/hpa.h"
#include "sim/tz.h"

struct conf;
struct conf_node;

#define KEDA_MAX_TRIGGERS HPA_MAX_METRICS
#define KEDA_DEFAULT_POLLING_INTERVAL_S 30.0
#define KEDA_DEFAULT_COOLDOWN_S 300.0
#define KEDA_DEFAULT_MAX_REPLICAS 100
/* Simulated second 0 when autoscaler.keda.clock_start is not given:
 * 2024-01-01T00:00:00Z, a Monday. */
#define KEDA_DEFAULT_CLOCK_START_S 1704067200LL

enum keda_trigger_type { KEDA_TRIGGER_METRIC, KEDA_TRIGGER_CRON };

struct keda_trigger {
    enum keda_trigger_type type;
    /* metric triggers */
    char metric[HPA_NAME_MAX];   /* a simulator metric (autoscaler.h), llmserve_ prefix removed */
    bool value_target;           /* metricType Value; false: AverageValue */
    double target;               /* targetValue */
    double activation_threshold; /* active when the value is above it */
    /* cron triggers */
    struct cron start, end;
    struct tz *tz;               /* owned */
    int32_t desired_replicas;
};

/* A ScaledObject spec, defaults applied. */
struct keda_spec {
    int32_t min_replicas;        /* minReplicaCount, default 0 */
    int32_t max_replicas;        /* maxReplicaCount, default 100 */
    bool has_idle;
    int32_t idle_replicas;       /* idleReplicaCount */
    double polling_interval_s;   /* pollingInterval, default 30 s */
    double cooldown_s;           /* cooldownPeriod, default 300 s */
    double initial_cooldown_s;   /* initialCooldownPeriod, default 0 */
    int64_t clock_start_s;       /* Unix time of simulated second 0 (cron) */
    struct keda_trigger triggers[KEDA_MAX_TRIGGERS];
    size_t ntriggers;
};

/* Read an autoscaler.keda mapping MAP (the ScaledObject spec vocabulary,
 * plus clock_start) into OUT, and fill HPA with the HPA that KEDA creates
 * from it (controller flags at their defaults).  Metric names are not
 * checked here (the caller knows which the simulator exports).  Returns 0,
 * or -1 with e set to "FILE:LINE: key: message"; OUT must be freed with
 * keda_spec_free either way. */
int keda_spec_from_conf(const struct conf *c, const struct conf_node *map, struct keda_spec *out,
                        struct hpa_spec *hpa, struct err *e);
void keda_spec_free(struct keda_spec *k);

/* Whether cron trigger T is in its window at simulated time NOW_S. */
bool keda_cron_active(const struct keda_spec *k, const struct keda_trigger *t, double now_s);
/* The value cron trigger T reports to the HPA at NOW_S: desiredReplicas in
 * its window, else 1 (as the cron scaler does). */
double keda_cron_value(const struct keda_spec *k, const struct keda_trigger *t, double now_s);

/* What the operator remembers: status.lastActiveTime. */
struct keda_state {
    bool has_last_active;
    double last_active_s;
};

enum keda_action {
    KEDA_NO_CHANGE,
    KEDA_ACTIVATE,     /* from 0 (or below minReplicaCount in idle mode) to minReplicaCount or 1 */
    KEDA_DEACTIVATE,   /* to idleReplicaCount, or minReplicaCount (0), after the cooldown */
    KEDA_TO_MIN,       /* inactive, below minReplicaCount, no idle mode: up to minReplicaCount */
};

/* One poll at NOW_S with the target at CURRENT replicas and ACTIVE telling
 * whether any trigger is active.  Updates ST (lastActiveTime) and returns
 * the action; *replicas gets the count to set (unchanged for
 * KEDA_NO_CHANGE).  The cooldown has passed when NOW_S - lastActiveTime >=
 * cooldownPeriod (KEDA compares wall-clock times; an exact tie is ours to
 * settle); with no lastActiveTime, when NOW_S >= initialCooldownPeriod. */
enum keda_action keda_poll(const struct keda_spec *k, struct keda_state *st, double now_s, int32_t current,
                           bool active, int32_t *replicas);

#endif
