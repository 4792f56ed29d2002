/* hpa.h -- the Kubernetes Horizontal Pod Autoscaler controller, one sync at
 * a time, computed as kube-controller-manager's podautoscaler package does
 * (horizontal.go and replica_calculator.go).
 *
 * struct hpa_spec is an autoscaling/v2 HorizontalPodAutoscalerSpec (with the
 * API server's defaults filled in) plus the controller's flags.  struct
 * hpa_state is what the controller remembers between syncs for one HPA: the
 * unstabilised recommendations and the scale events.  hpa_step() is one
 * reconcile: given the current replica count and what the metrics pipeline
 * reports (per-pod samples, object/external values), it returns the desired
 * replica count, the reason, and each metric's proposal.  Everything is
 * pure: the time is an argument (seconds on any clock), there are no
 * globals, and the state only grows up to the longest window or period
 * divided by the sync interval.  See docs/HPA.md. */
#ifndef LLM_HPA_H
#define LLM_HPA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct conf;
struct conf_node;

#define HPA_MAX_METRICS 8
#define HPA_MAX_POLICIES 8
#define HPA_NAME_MAX 64

/* Controller defaults (kube-controller-manager flags). */
#define HPA_DEFAULT_SYNC_PERIOD_S 15.0
#define HPA_DEFAULT_TOLERANCE 0.1
#define HPA_DEFAULT_CPU_INIT_PERIOD_S 300.0
#define HPA_DEFAULT_READINESS_DELAY_S 30.0
#define HPA_DEFAULT_DOWNSCALE_WINDOW_S 300.0
/* The window of a resource metric sample when the input gives none
 * (metrics-server's default resolution). */
#define HPA_DEFAULT_METRIC_WINDOW_S 15.0
/* A time before anything: pods whose start is unknown started long ago. */
#define HPA_LONG_AGO_S (-1e12)

enum hpa_metric_type { HPA_METRIC_RESOURCE, HPA_METRIC_PODS, HPA_METRIC_OBJECT, HPA_METRIC_EXTERNAL };
enum hpa_target_type { HPA_TARGET_UTILIZATION, HPA_TARGET_VALUE, HPA_TARGET_AVERAGE_VALUE };
enum hpa_policy_type { HPA_POLICY_PODS, HPA_POLICY_PERCENT };
enum hpa_select { HPA_SELECT_MAX, HPA_SELECT_MIN, HPA_SELECT_DISABLED };

struct hpa_metric {
    enum hpa_metric_type type;
    char name[HPA_NAME_MAX];        /* resource name (cpu, memory) or metric name */
    char object_kind[HPA_NAME_MAX]; /* Object metrics: describedObject.kind, or "" */
    enum hpa_target_type target;
    int32_t average_utilization;    /* percent, HPA_TARGET_UTILIZATION */
    int64_t target_milli;           /* value or averageValue in milli-units */
};

struct hpa_policy {
    enum hpa_policy_type type;
    int32_t value;
    int32_t period_s;
};

/* One direction of behavior, defaults applied (GenerateHPAScale{Up,Down}Rules). */
struct hpa_rules {
    double stabilization_window_s;
    enum hpa_select select;
    struct hpa_policy policies[HPA_MAX_POLICIES];
    size_t npolicies;
    double tolerance; /* NAN unless the spec sets one: then the controller's */
};

struct hpa_spec {
    int32_t min_replicas; /* default 1 */
    int32_t max_replicas;
    struct hpa_metric metrics[HPA_MAX_METRICS];
    size_t nmetrics;
    bool has_behavior; /* false: the legacy normalisation path */
    struct hpa_rules scale_up, scale_down;
    /* controller flags */
    double sync_period_s;
    double tolerance;
    double cpu_init_period_s;
    double readiness_delay_s;
    double downscale_window_s; /* legacy path, and scaleDown's default window */
};

/* Fill SPEC with the defaults of an HPA that has no metrics yet
 * (minReplicas 1, maxReplicas 1, no behavior) and the controller flags. */
void hpa_spec_init(struct hpa_spec *spec);

/* Read an autoscaling/v2 HorizontalPodAutoscalerSpec from mapping MAP
 * (camelCase keys: minReplicas, maxReplicas, metrics, behavior; a
 * scaleTargetRef is accepted and ignored) into OUT, applying the API
 * defaults and the API server's validation.  Returns 0, or -1 with e set to
 * "FILE:LINE: key: message" (ERR_INPUT). */
int hpa_spec_from_conf(const struct conf *c, const struct conf_node *map, struct hpa_spec *out, struct err *e);

/* Read a HorizontalPodAutoscalerBehavior mapping (scaleUp, scaleDown) into
 * SPEC, whose rules already hold the defaults (hpa_spec_init), and set
 * has_behavior.  Returns 0 or -1 with e located.  (KEDA passes its
 * advanced.horizontalPodAutoscalerConfig.behavior through this.) */
int hpa_behavior_from_conf(const struct conf *c, const struct conf_node *behavior, struct hpa_spec *spec,
                           struct err *e);

/* Read optional controller flags (syncPeriod, tolerance,
 * cpuInitializationPeriod, initialReadinessDelay, downscaleStabilization:
 * durations or numbers) from mapping MAP into SPEC; returns 0 or -1 with e
 * located.  Behavior tolerances left unset follow the new tolerance. */
int hpa_controller_from_conf(const struct conf *c, const struct conf_node *map, struct hpa_spec *spec,
                             struct err *e);

/* ---- observations ---------------------------------------------------------- */

enum hpa_pod_phase { HPA_POD_RUNNING, HPA_POD_PENDING, HPA_POD_FAILED };

/* One pod as the controller sees it.  Arrays are indexed by the spec's
 * metric index (only Resource and Pods metrics read them). */
struct hpa_pod {
    enum hpa_pod_phase phase;
    bool deleting;            /* has a deletion timestamp */
    bool ready;               /* the Ready condition's status */
    double start_s;           /* status.startTime (HPA_LONG_AGO_S if unknown) */
    double last_transition_s; /* the Ready condition's lastTransitionTime */
    double metric_time_s;     /* the resource sample's timestamp */
    double metric_window_s;   /* the resource sample's window */
    bool has_request[HPA_MAX_METRICS];
    int64_t request_milli[HPA_MAX_METRICS]; /* resource request, summed over containers */
    bool has_usage[HPA_MAX_METRICS];        /* false: the metric is missing for this pod */
    int64_t usage_milli[HPA_MAX_METRICS];
};

/* Set a pod to: running, ready, started long ago, no requests or usage;
 * metric time NOW_S and the default window. */
void hpa_pod_init(struct hpa_pod *pod, double now_s);

struct hpa_observation {
    const struct hpa_pod *pods;
    size_t npods;
    int32_t status_replicas; /* scale.status.replicas; < 0: currentReplicas */
    /* Object/External metrics: the value (External: the sum of the series). */
    bool has_value[HPA_MAX_METRICS];
    int64_t value_milli[HPA_MAX_METRICS];
};

/* ---- the controller ------------------------------------------------------- */

struct hpa_recommendation {
    double time_s;
    int32_t replicas;
};

struct hpa_scale_event {
    double time_s;
    int32_t change; /* absolute value */
    bool outdated;
};

/* What the controller remembers between syncs of one HPA.  Zero it (or call
 * hpa_state_init) before the first step; free with hpa_state_free. */
struct hpa_state {
    bool recommendations_set; /* false: the first sync records the current size */
    struct hpa_recommendation *recs;
    size_t nrecs, recs_cap;
    struct hpa_scale_event *up, *down;
    size_t nup, ndown, up_cap, down_cap;
};

void hpa_state_init(struct hpa_state *st);
void hpa_state_free(struct hpa_state *st);
/* Seed history (a replay's prior recommendations and scale events).  A
 * positive CHANGE is a scale-up event, a negative one a scale-down.
 * Returns 0 or -1 (ERR_SYSTEM) when out of memory. */
int hpa_state_add_recommendation(struct hpa_state *st, double time_s, int32_t replicas, struct err *e);
int hpa_state_add_scale_event(struct hpa_state *st, double time_s, int32_t change, struct err *e);

struct hpa_metric_result {
    bool valid;
    int32_t replicas;     /* this metric's proposal */
    bool has_utilization;
    int32_t utilization;  /* percent of request (Resource Utilization targets) */
    int64_t current_milli; /* the current value, average or utilisation's raw average */
    char description[160];   /* "cpu resource utilization (percentage of request)" */
    char error[160];      /* why the metric is invalid */
    const char *failure_reason; /* FailedGetResourceMetric, ... */
};

struct hpa_result {
    int32_t desired_replicas;
    int32_t metric_replicas;     /* max of the valid proposals, -1 if none computed */
    int32_t stabilized_replicas; /* after the stabilisation window */
    bool rescale;                /* desired != current: a scale event was recorded */
    /* The condition reasons the controller sets: */
    const char *reason;        /* ScalingLimited reason, or why nothing was computed */
    const char *able_to_scale; /* ReadyForNewScale, ScaleUpStabilized, ScaleDownStabilized */
    const char *scaling_active; /* ValidMetricFound, ScalingDisabled, FailedGet...Metric */
    char message[200];          /* the controller's rescale reason text */
    struct hpa_metric_result metrics[HPA_MAX_METRICS];
    size_t nmetrics;
};

/* One sync (reconcileAutoscaler) at time NOW_S with the target at
 * CURRENT_REPLICAS (scale.spec.replicas) and the metrics in OBS.  Fills RES
 * and updates ST (recommendations, scale events).  Returns 0, or -1 when out
 * of memory (RES is then incomplete); invalid metrics are not errors, they are
 * reported in RES as the controller reports them. */
int hpa_step(struct hpa_state *st, const struct hpa_spec *spec, double now_s, int32_t current_replicas,
             const struct hpa_observation *obs, struct hpa_result *res);

#endif
