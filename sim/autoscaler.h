/* autoscaler.h -- the Kubernetes HPA in the simulation loop.
 *
 * Every scrape_interval the replicas' metrics are scraped (as Prometheus
 * scrapes llmserve's /metrics); the HPA sees a scrape only adapter_lag after
 * it was taken (the Prometheus adapter's delay); every syncPeriod the
 * controller (sim/hpa.c, the real algorithm) computes the desired replica
 * count from the newest scrape it can see, and the cluster is scaled to it:
 * new replicas start cold (cluster.startup), removed ones drain.
 *
 * Metrics a replica exports (Pods metrics, by name, with or without the
 * llmserve_ prefix): requests_waiting, requests_running,
 * kv_cache_usage_ratio, gpu_utilization_ratio (busy fraction since the last
 * scrape), ttft_p90_seconds (first tokens since the last scrape).  Resource
 * metrics: cpu (usage = busy fraction x cpu_request), memory (usage = KV
 * cache fraction x memory_request).  Object/External metrics:
 * gateway_requests_waiting, requests_waiting_total (gateway and replicas),
 * requests_per_second (arrivals over the last scrape interval).
 *
 * With autoscaler.keda (sim/keda.h) the HPA is the one KEDA creates, its
 * External metrics read from the triggers: a metric trigger's value is the
 * named metric in the newest scrape the adapter lets through (a Pods metric
 * averaged over the replicas that export it, 0 with none), a cron trigger's
 * is desiredReplicas in its window, else 1.  Every pollingInterval, from
 * the first scrape on, KEDA's own loop (keda_poll) asks the triggers from
 * that same scrape and the clock, and scales 0 <-> N. */
#ifndef LLM_AUTOSCALER_H
#define LLM_AUTOSCALER_H

#include <stdbool.h>

#include "common/err.h"
#include "sim/cluster.h"
#include "sim/engine.h"
#include "sim/hpa.h"
#include "sim/scenario.h"

enum autoscaler_event {
    EV_SCRAPE = 200,
    EV_HPA_SYNC = 201,
    EV_KEDA_POLL = 202,
};

/* Whether the simulated replicas export metric M (by type and name). */
bool autoscaler_metric_known(const struct hpa_metric *m);
/* The names, for messages. */
const char *autoscaler_metric_names(void);

/* Whether the simulator exports NAME (without the llmserve_ prefix) for a
 * KEDA metric trigger: a Pods name (averaged) or an Object/External one. */
bool autoscaler_keda_metric_known(const char *name);
const char *autoscaler_keda_metric_names(void);

struct autoscaler;

/* Create and schedule the first scrape and sync.  NULL on error. */
struct autoscaler *autoscaler_create(const struct scenario *sc, struct cluster *cl, struct engine *en,
                                     struct err *e);
void autoscaler_free(struct autoscaler *a);
/* Handle EV_SCRAPE, EV_HPA_SYNC or EV_KEDA_POLL; -1 when out of memory. */
int autoscaler_handle(struct autoscaler *a, const struct event *ev);
/* True when nothing can ever bring a replica up again: KEDA without cron
 * triggers, no replica billed, no queue timeout, and the last poll found
 * every trigger inactive in a scrape with no replicas, no arrivals in its
 * interval and none since.  The simulation may then stop with the held
 * requests in flight.  False for NULL. */
bool autoscaler_idle_forever(const struct autoscaler *a);

struct autoscaler_totals {
    unsigned long long syncs;
    unsigned long long scale_ups;   /* syncs that raised the replica count */
    unsigned long long scale_downs; /* syncs that lowered it */
    unsigned long long keda_polls;
    unsigned long long activations;   /* KEDA polls that scaled up from zero (or idle) */
    unsigned long long scale_to_zero; /* KEDA polls that scaled to zero (or idleReplicaCount) */
};
void autoscaler_totals(const struct autoscaler *a, struct autoscaler_totals *t);

#endif
