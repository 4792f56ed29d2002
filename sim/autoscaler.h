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
 * requests_per_second (arrivals over the last scrape interval). */
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
};

/* Whether the simulated replicas export metric M (by type and name). */
bool autoscaler_metric_known(const struct hpa_metric *m);
/* The names, for messages. */
const char *autoscaler_metric_names(void);

struct autoscaler;

/* Create and schedule the first scrape and sync.  NULL on error. */
struct autoscaler *autoscaler_create(const struct scenario *sc, struct cluster *cl, struct engine *en,
                                     struct err *e);
void autoscaler_free(struct autoscaler *a);
/* Handle EV_SCRAPE or EV_HPA_SYNC; -1 when out of memory. */
int autoscaler_handle(struct autoscaler *a, const struct event *ev);

struct autoscaler_totals {
    unsigned long long syncs;
    unsigned long long scale_ups;   /* syncs that raised the replica count */
    unsigned long long scale_downs; /* syncs that lowered it */
};
void autoscaler_totals(const struct autoscaler *a, struct autoscaler_totals *t);

#endif
