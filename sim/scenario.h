/* scenario.h -- a simulation scenario read from YAML.
 *
 * Top-level sections: name, description, seed, workload, service, cluster,
 * gateway, autoscaler, cache, regions, clients, slo, output (see README.md
 * and the examples in workloads/examples); `tune` is left to llmsim tune
 * (sim/tune_space.c).  Every key is checked: an
 * unknown key, a wrong type or a negative duration is an error naming
 * FILE:LINE and the key.  Overrides ("--set key.path=value")
 * are applied to the YAML tree before it is read. */
#ifndef LLM_SCENARIO_H
#define LLM_SCENARIO_H

#include <stdbool.h>
#include <stdint.h>

#include "common/conf.h"
#include "common/err.h"
#include "sim/hpa.h"
#include "sim/keda.h"
#include "sim/nodes.h"
#include "sim/profile.h"

enum service_kind {
    SERVICE_PROFILE,       /* continuous batching, times from a profile */
    SERVICE_EXPONENTIAL,   /* one request at a time, exponential service time */
    SERVICE_DETERMINISTIC, /* one request at a time, constant service time */
};

/* A region of a multi-region scenario (regions:): its own cluster, reached
 * from each client region over a network round trip. */
#define SCENARIO_MAX_REGIONS 16

struct region_outage {
    double start_s;
    double end_s;
};

struct region_spec {
    char name[64];
    int replicas;                              /* at the start */
    double latency_s[SCENARIO_MAX_REGIONS];    /* round trip from client region i (scenario order) */
    double client_share;                       /* fraction of the traffic from this region's clients */
    struct region_outage *outages;             /* in time order, not overlapping; owned */
    size_t noutages;
};

enum routing {
    ROUTE_ROUND_ROBIN,
    ROUTE_LEAST_OUTSTANDING,
    ROUTE_POWER_OF_TWO,
    ROUTE_RANDOM,
};

struct scenario {
    struct conf *conf; /* owned; workload is read from it by the workloads library */
    struct conf_node *workload;
    char name[128];
    uint64_t seed;

    /* service */
    enum service_kind service;
    double service_mean_s;    /* exponential / deterministic */
    struct profile *profile;  /* SERVICE_PROFILE; owned */

    /* cluster */
    int replicas;
    int gpus_per_replica;
    double gpu_hourly_usd;
    int max_num_seqs;          /* sequences in a batch */
    long max_batched_tokens;   /* tokens in one iteration (prefill + decode) */
    bool chunked_prefill;
    double kv_capacity_tokens; /* per replica */
    int max_concurrency;       /* outstanding requests a replica accepts; 0 = no limit */
    double startup_s;          /* cold start of a new replica: image pull + model load + readiness */
    struct pool_spec *pools;   /* node pools (one implicit pool without cluster.pools) */
    size_t npools;
    double billing_minimum_s;  /* per-second billing with this minimum per node */

    /* gateway */
    enum routing routing;
    long queue_capacity;       /* requests the gateway holds; -1 = unbounded */
    double queue_timeout_s;    /* 0 = none: arrival to start of service */

    /* slo (0 = no target on that metric) */
    double slo_ttft_s;
    double slo_tpot_s;
    double slo_e2e_s;
    double slo_target;         /* fraction of requests that must meet it */

    /* autoscaler (autoscaler.hpa: the Kubernetes HPA; autoscaler.keda: a
     * KEDA ScaledObject, whose HPA is then in hpa) */
    bool has_hpa;              /* an HPA runs (also with KEDA) */
    struct hpa_spec hpa;
    bool has_keda;
    struct keda_spec keda;
    double scrape_interval_s;   /* Prometheus scrape of the replicas' metrics */
    double adapter_lag_s;       /* the metrics adapter's delay before the HPA sees a scrape */
    int64_t cpu_request_milli;  /* per pod, for Resource cpu metrics */
    int64_t memory_request_milli;

    /* response cache (cache:) */
    bool has_cache;
    double cache_ttl_s;
    long cache_capacity;          /* entries */
    double cache_hit_latency_s;
    double cache_deterministic;   /* fraction of requests with deterministic settings: the cacheable ones */

    /* regions (none: one implicit region without network latency) */
    struct region_spec *regions;
    size_t nregions;

    /* output */
    double interval_s;         /* timeline interval */
    bool requests_csv;         /* write per-request rows */
};

/* Load FILE, apply the NSETS overrides in SETS, and read it.  NULL on error. */
struct scenario *scenario_load(const char *path, char *const *sets, int nsets, struct err *e);
void scenario_free(struct scenario *s);

extern const char *const scenario_routing_names[];

#endif
