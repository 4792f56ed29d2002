/* scenario.c -- see scenario.h.  One reader per section, each checking its
 * keys first so that a misspelt setting is an error rather than a default. */
#include "sim/scenario.h"

#include <math.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/log.h"
#include "sim/autoscaler.h"
#include "sim/instances.h"
#include "sim/quantity.h"

const char *const scenario_routing_names[] = {"round_robin", "least_outstanding", "power_of_two", "random",
                                              NULL};

static int scenario_read_service(struct scenario *s, struct conf_node *map, struct err *e)
{
    static const char *const keys[] = {"kind", "mean", "profile", "roofline", NULL};
    static const char *const kinds[] = {"profile", "exponential", "deterministic", NULL};
    const struct conf *c = s->conf;
    struct conf_node *rl = NULL;
    const char *path = NULL;
    int kind = SERVICE_PROFILE;
    int has_mean;

    if (map == NULL)
        return err_at(e, conf_origin(c), 0, "missing section 'service' (profile, roofline or exponential)");
    if (conf_check_keys(c, map, "service", keys, e) < 0 || conf_get_enum(c, map, "kind", kinds, &kind, e) < 0)
        return -1;
    s->service = (enum service_kind)kind;
    has_mean = conf_get_duration(c, map, "mean", &s->service_mean_s, e);
    if (has_mean < 0 || conf_get_str(c, map, "profile", &path, e) < 0 || conf_get_map(c, map, "roofline", &rl, e) < 0)
        return -1;
    if (s->service != SERVICE_PROFILE) {
        if (!has_mean || s->service_mean_s <= 0)
            return conf_error(c, map, e, "service: kind %s needs a positive 'mean' duration", kinds[kind]);
        if (path || rl)
            return conf_error(c, map, e, "service: kind %s takes no profile or roofline", kinds[kind]);
        return 0;
    }
    if (has_mean)
        return conf_error(c, conf_get(map, "mean"), e, "mean: only for kind exponential or deterministic");
    if ((path == NULL) == (rl == NULL))
        return conf_error(c, map, e, "service: give exactly one of 'profile: FILE.json' or 'roofline: {gpu, model}'");
    if (path != NULL) {
        char full[4096];
        conf_path(c, conf_get(map, "profile"), path, full, sizeof(full));
        s->profile = profile_load_json(full, e);
    } else {
        s->profile = profile_roofline_from_conf(c, rl, e);
    }
    return s->profile ? 0 : -1;
}

static const char *const scenario_pricing_names[] = {"on_demand", "spot", "reserved", NULL};

/* Spot interruption times replayed from a file: one time a line (seconds or
 * a duration, from the start of the run), in order; '#' starts a comment. */
static int scenario_read_interruptions(struct scenario *s, const struct conf_node *n, struct pool_spec *p,
                                       struct err *e)
{
    const char *name;
    char path[4096], line[256];
    long lineno = 0;
    FILE *f;

    if (conf_node_str(s->conf, n, "interruptions_file", &name, e) < 0)
        return -1;
    conf_path(s->conf, n, name, path, sizeof(path));
    f = fopen(path, "r");
    if (f == NULL) {
        char where[600];
        conf_where(s->conf, n, where, sizeof(where));
        err_sys(e, errno, "%s: interruptions_file %s", where, path);
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *hash = strchr(line, '#'), *t = line, *end;
        struct err sub;
        double v;

        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            fclose(f);
            return err_at(e, path, lineno, "line too long");
        }
        if (hash != NULL)
            *hash = '\0';
        while (*t == ' ' || *t == '\t')
            t++;
        end = t + strcspn(t, " \t\r\n");
        if (end == t)
            continue;
        *end = '\0';
        if (duration_parse(t, &v, &sub) < 0) {
            fclose(f);
            return err_at(e, path, lineno, "%s", sub.msg);
        }
        if (p->n_interruption_times == POOL_MAX_TIMES) {
            fclose(f);
            return err_at(e, path, lineno, "more than %d interruption times", POOL_MAX_TIMES);
        }
        if (p->n_interruption_times > 0 && v < p->interruption_times_s[p->n_interruption_times - 1]) {
            fclose(f);
            return err_at(e, path, lineno, "times must not go back (%s)", t);
        }
        p->interruption_times_s[p->n_interruption_times++] = v;
    }
    fclose(f);
    return 0;
}

/* One pool of cluster.pools: NAME: {...}.  Fallbacks are resolved later. */
static int scenario_read_pool(struct scenario *s, const char *name, struct conf_node *map, struct pool_spec *p,
                              const char **fallback, struct err *e)
{
    static const char *const keys[] = {"instance", "gpus_per_node", "hourly_usd", "on_demand_hourly_usd", "pricing",
                                       "min_nodes", "max_nodes", "provisioning", "idle_timeout", "share", "fallback",
                                       "spot", NULL};
    static const char *const spot_keys[] = {"interruptions_per_hour", "interruptions", "interruptions_file", "notice",
                                            "unavailable", NULL};
    const struct conf *c = s->conf;
    struct conf_node *spot = NULL, *times = NULL;
    long gpus = s->gpus_per_replica, min_nodes = 0, max_nodes = 1000;
    int pricing = PRICING_ON_DEMAND;
    char what[128];
    bool has_price;
    size_t i;

    snprintf(what, sizeof(what), "cluster.pools.%s", name);
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->share = 1;
    p->fallback = -1;
    p->notice_s = 120;
    p->idle_timeout_s = 600;
    *fallback = NULL;
    if (conf_check_keys(c, map, what, keys, e) < 0 || conf_get_long(c, map, "gpus_per_node", &gpus, e) < 0 ||
        conf_get_enum(c, map, "pricing", scenario_pricing_names, &pricing, e) < 0 ||
        conf_get_long(c, map, "min_nodes", &min_nodes, e) < 0 || conf_get_long(c, map, "max_nodes", &max_nodes, e) < 0 ||
        conf_get_duration(c, map, "provisioning", &p->provisioning_s, e) < 0 ||
        conf_get_duration(c, map, "idle_timeout", &p->idle_timeout_s, e) < 0 ||
        conf_get_nonneg(c, map, "share", &p->share, e) < 0 || conf_get_str(c, map, "fallback", fallback, e) < 0 ||
        conf_get_map(c, map, "spot", &spot, e) < 0)
        return -1;
    has_price = conf_get(map, "hourly_usd") != NULL;
    p->hourly_usd = gpus * s->gpu_hourly_usd;
    p->on_demand_hourly_usd = gpus * s->gpu_hourly_usd;
    if (conf_get(map, "instance") != NULL) {
        /* An instance type: its GPUs, its prices, its spot notice. */
        struct instance_type it;
        if (instance_from_conf(c, conf_get(map, "instance"), &it, e) < 0)
            return -1;
        snprintf(p->instance, sizeof(p->instance), "%s", it.name);
        if (conf_get(map, "gpus_per_node") == NULL)
            gpus = it.gpus;
        p->on_demand_hourly_usd = it.on_demand_usd_h;
        p->hourly_usd = pricing == PRICING_SPOT ? it.spot_usd_h : pricing == PRICING_RESERVED ? it.reserved_usd_h
                                                                                              : it.on_demand_usd_h;
        p->notice_s = it.spot_notice_s;
        if (p->hourly_usd <= 0 && !has_price)
            return conf_error(c, conf_get(map, "instance"), e,
                              "%s: the catalog has no %s price for %s: give hourly_usd", what,
                              scenario_pricing_names[pricing], it.name);
    } else if (!has_price && pricing != PRICING_ON_DEMAND) {
        return conf_error(c, map, e, "%s: a %s pool needs its hourly_usd (or an instance)", what,
                          scenario_pricing_names[pricing]);
    }
    if (conf_get_nonneg(c, map, "hourly_usd", &p->hourly_usd, e) < 0)
        return -1;
    if (has_price && pricing == PRICING_ON_DEMAND && conf_get(map, "instance") == NULL)
        p->on_demand_hourly_usd = p->hourly_usd;
    if (conf_get_nonneg(c, map, "on_demand_hourly_usd", &p->on_demand_hourly_usd, e) < 0)
        return -1;
    if (gpus < s->gpus_per_replica || gpus > 64)
        return conf_error(c, conf_get(map, "gpus_per_node") ? conf_get(map, "gpus_per_node") : map, e,
                          "%s: gpus_per_node (%ld) must hold a replica's %d GPUs and be at most 64", what, gpus,
                          s->gpus_per_replica);
    if (min_nodes < 0 || max_nodes < 1 || min_nodes > max_nodes || max_nodes > 100000)
        return conf_error(c, map, e, "%s: need 0 <= min_nodes <= max_nodes, 1 <= max_nodes <= 100000", what);
    p->gpus_per_node = (int)gpus;
    p->pricing = (enum pool_pricing)pricing;
    p->min_nodes = (int)min_nodes;
    p->max_nodes = (int)max_nodes;
    if (spot != NULL) {
        if (p->pricing != PRICING_SPOT)
            return conf_error(c, spot, e, "%s.spot: only for pricing: spot", what);
        if (conf_check_keys(c, spot, "spot", spot_keys, e) < 0 ||
            conf_get_nonneg(c, spot, "interruptions_per_hour", &p->interruptions_per_hour, e) < 0 ||
            conf_get_seq(c, spot, "interruptions", &times, e) < 0 ||
            conf_get_duration(c, spot, "notice", &p->notice_s, e) < 0 ||
            conf_get_duration(c, spot, "unavailable", &p->unavailable_s, e) < 0)
            return -1;
        if (conf_seq_len(times) > POOL_MAX_TIMES)
            return conf_error(c, times, e, "interruptions: at most %d times", POOL_MAX_TIMES);
        for (i = 0; i < conf_seq_len(times); i++) {
            const char *t;
            struct err sub;
            struct conf_node *item = conf_seq_at(times, i);
            if (conf_node_str(c, item, "interruptions", &t, e) < 0)
                return -1;
            if (duration_parse(t, &p->interruption_times_s[i], &sub) < 0)
                return conf_error(c, item, e, "interruptions[%zu]: %s", i, sub.msg);
            if (i > 0 && p->interruption_times_s[i] < p->interruption_times_s[i - 1])
                return conf_error(c, item, e, "interruptions: times must not go back");
        }
        p->n_interruption_times = conf_seq_len(times);
        if (conf_get(spot, "interruptions_file") != NULL &&
            scenario_read_interruptions(s, conf_get(spot, "interruptions_file"), p, e) < 0)
            return -1;
    }
    return 0;
}

static int scenario_read_pools(struct scenario *s, struct conf_node *map, struct err *e)
{
    const struct conf *c = s->conf;
    const char **fallbacks;
    size_t i, j, n = conf_map_len(map);

    if (n == 0)
        return conf_error(c, map, e, "cluster.pools: expected a mapping of pool names to pools");
    s->pools = calloc(n, sizeof(*s->pools));
    fallbacks = calloc(n, sizeof(*fallbacks));
    if (s->pools == NULL || fallbacks == NULL) {
        free(fallbacks);
        return err_set(e, ERR_SYSTEM, "out of memory");
    }
    s->npools = n;
    for (i = 0; i < n; i++) {
        struct conf_node *v = NULL;
        const char *name = conf_map_at(map, i, &v);
        if (name == NULL || !conf_is_map(v)) {
            free(fallbacks);
            return conf_error(c, v ? v : map, e, "cluster.pools: each pool is NAME: {mapping}");
        }
        if (scenario_read_pool(s, name, v, &s->pools[i], &fallbacks[i], e) < 0) {
            free(fallbacks);
            return -1;
        }
    }
    for (i = 0; i < n; i++) {
        if (fallbacks[i] == NULL)
            continue;
        for (j = 0; j < n && strcmp(s->pools[j].name, fallbacks[i]) != 0; j++)
            ;
        if (j == n || j == i) {
            struct conf_node *v = NULL;
            conf_map_at(map, i, &v);
            conf_error(c, conf_get(v, "fallback"), e, "fallback: '%s' is not another pool", fallbacks[i]);
            free(fallbacks);
            return -1;
        }
        s->pools[i].fallback = (int)j;
    }
    free(fallbacks);
    return 0;
}

/* Without cluster.pools: each replica on a node of its own, priced per GPU,
 * up at once and gone with it. */
static int scenario_default_pool(struct scenario *s, struct err *e)
{
    struct pool_spec *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return err_set(e, ERR_SYSTEM, "out of memory");
    snprintf(p->name, sizeof(p->name), "default");
    p->gpus_per_node = s->gpus_per_replica;
    p->pricing = PRICING_ON_DEMAND;
    p->hourly_usd = p->on_demand_hourly_usd = s->gpus_per_replica * s->gpu_hourly_usd;
    p->max_nodes = 100000;
    p->share = 1;
    p->fallback = -1;
    s->pools = p;
    s->npools = 1;
    return 0;
}

static int scenario_read_cluster(struct scenario *s, struct conf_node *map, struct err *e)
{
    static const char *const keys[] = {"replicas", "gpus_per_replica", "gpu_hourly_usd", "replica", "startup",
                                       "pools", "billing_minimum", NULL};
    static const char *const skeys[] = {"image_pull", "model_load", "readiness", NULL};
    static const char *const rkeys[] = {"max_num_seqs", "max_batched_tokens", "chunked_prefill",
                                        "kv_cache_tokens", "max_concurrency", NULL};
    const struct conf *c = s->conf;
    struct conf_node *r = NULL, *st = NULL, *pools = NULL;
    long replicas = 1, gpus = 0, seqs = 256, tokens = 8192, conc = -1;
    double kv = 0;
    bool has_price;

    if (map == NULL)
        return err_at(e, conf_origin(c), 0, "missing section 'cluster' (at least 'replicas')");
    if (conf_check_keys(c, map, "cluster", keys, e) < 0)
        return -1;
    if (conf_get_long(c, map, "replicas", &replicas, e) < 0 || conf_get_long(c, map, "gpus_per_replica", &gpus, e) < 0)
        return -1;
    if (replicas < 0 || replicas > 100000) /* 0 only with autoscaler.keda: checked in scenario_load */
        return conf_error(c, conf_get(map, "replicas"), e, "replicas: expected 1..100000, got %ld", replicas);
    if (gpus < 0 || gpus > 64)
        return conf_error(c, conf_get(map, "gpus_per_replica"), e, "gpus_per_replica: expected 1..64, got %ld", gpus);
    has_price = conf_get(map, "gpu_hourly_usd") != NULL;
    if (conf_get_nonneg(c, map, "gpu_hourly_usd", &s->gpu_hourly_usd, e) < 0 || conf_get_map(c, map, "replica", &r, e) < 0 ||
        conf_get_map(c, map, "startup", &st, e) < 0)
        return -1;
    if (st != NULL) {
        double pull = 0, load = 0, ready = 0;
        if (conf_check_keys(c, st, "cluster.startup", skeys, e) < 0 ||
            conf_get_duration(c, st, "image_pull", &pull, e) < 0 ||
            conf_get_duration(c, st, "model_load", &load, e) < 0 ||
            conf_get_duration(c, st, "readiness", &ready, e) < 0)
            return -1;
        s->startup_s = pull + load + ready;
    }
    if (r != NULL) {
        if (conf_check_keys(c, r, "cluster.replica", rkeys, e) < 0 ||
            conf_get_long(c, r, "max_num_seqs", &seqs, e) < 0 ||
            conf_get_long(c, r, "max_batched_tokens", &tokens, e) < 0 ||
            conf_get_bool(c, r, "chunked_prefill", &s->chunked_prefill, e) < 0 ||
            conf_get_nonneg(c, r, "kv_cache_tokens", &kv, e) < 0 ||
            conf_get_long(c, r, "max_concurrency", &conc, e) < 0)
            return -1;
        if (seqs < 1 || seqs > 1000000)
            return conf_error(c, conf_get(r, "max_num_seqs"), e, "max_num_seqs: expected 1..1000000, got %ld", seqs);
        if (tokens < 1)
            return conf_error(c, conf_get(r, "max_batched_tokens"), e, "max_batched_tokens: must be positive");
        if (conc < -1 || conc > 100000000)
            return conf_error(c, conf_get(r, "max_concurrency"), e, "max_concurrency: expected 0 (no limit) or a positive count");
    }
    s->replicas = (int)replicas;
    s->max_num_seqs = (int)seqs;
    s->max_batched_tokens = tokens;
    if (s->service != SERVICE_PROFILE) {
        /* One request at a time per replica: the gateway holds the queue (M/M/c). */
        s->max_num_seqs = 1;
        s->max_concurrency = 1;
    } else {
        s->max_concurrency = conc < 0 ? s->max_num_seqs : (int)conc;
        s->kv_capacity_tokens = kv > 0 ? kv : s->profile->kv_capacity_tokens;
    }
    if (gpus == 0)
        gpus = s->profile && s->profile->kind == PROFILE_ROOFLINE ? s->profile->rf.tp : 1;
    s->gpus_per_replica = (int)gpus;
    if (!has_price && s->profile && s->profile->kind == PROFILE_ROOFLINE)
        s->gpu_hourly_usd = s->profile->rf.gpu.hourly_usd;
    if (conf_get_map(c, map, "pools", &pools, e) < 0 ||
        conf_get_duration(c, map, "billing_minimum", &s->billing_minimum_s, e) < 0)
        return -1;
    return pools != NULL ? scenario_read_pools(s, pools, e) : scenario_default_pool(s, e);
}

static int scenario_read_gateway(struct scenario *s, struct conf_node *map, struct err *e)
{
    static const char *const keys[] = {"routing", "queue_capacity", "queue_timeout", NULL};
    const struct conf *c = s->conf;
    int routing = ROUTE_LEAST_OUTSTANDING;

    s->routing = ROUTE_LEAST_OUTSTANDING;
    s->queue_capacity = -1;
    if (map == NULL)
        return 0;
    if (conf_check_keys(c, map, "gateway", keys, e) < 0 ||
        conf_get_enum(c, map, "routing", scenario_routing_names, &routing, e) < 0 ||
        conf_get_long(c, map, "queue_capacity", &s->queue_capacity, e) < 0 ||
        conf_get_duration(c, map, "queue_timeout", &s->queue_timeout_s, e) < 0)
        return -1;
    if (s->queue_capacity < -1)
        return conf_error(c, conf_get(map, "queue_capacity"), e, "queue_capacity: expected -1 (unbounded) or a count");
    s->routing = (enum routing)routing;
    return 0;
}

static int scenario_read_slo(struct scenario *s, struct conf_node *map, struct err *e)
{
    static const char *const keys[] = {"ttft", "tpot", "e2e", "target", NULL};
    const struct conf *c = s->conf;

    s->slo_target = 0.99;
    if (map == NULL)
        return 0;
    if (conf_check_keys(c, map, "slo", keys, e) < 0 || conf_get_duration(c, map, "ttft", &s->slo_ttft_s, e) < 0 ||
        conf_get_duration(c, map, "tpot", &s->slo_tpot_s, e) < 0 ||
        conf_get_duration(c, map, "e2e", &s->slo_e2e_s, e) < 0 ||
        conf_get_nonneg(c, map, "target", &s->slo_target, e) < 0)
        return -1;
    if (s->slo_target > 1)
        return conf_error(c, conf_get(map, "target"), e, "target: expected a fraction in [0, 1], got %g", s->slo_target);
    return 0;
}

static int scenario_read_output(struct scenario *s, struct conf_node *map, struct err *e)
{
    static const char *const keys[] = {"interval", "requests_csv", NULL};
    const struct conf *c = s->conf;

    s->interval_s = 60.0;
    if (map == NULL)
        return 0;
    if (conf_check_keys(c, map, "output", keys, e) < 0 || conf_get_duration(c, map, "interval", &s->interval_s, e) < 0 ||
        conf_get_bool(c, map, "requests_csv", &s->requests_csv, e) < 0)
        return -1;
    if (s->interval_s < 1e-3)
        return conf_error(c, conf_get(map, "interval"), e, "interval: must be at least 1ms");
    return 0;
}

/* A quantity (Kubernetes "4", "500m", "32Gi") into milli-units. */
static int scenario_get_quantity(const struct conf *c, const struct conf_node *map, const char *key,
                                 int64_t *out_milli, struct err *e)
{
    struct conf_node *n = conf_get(map, key);
    const char *text;
    struct err sub;

    if (n == NULL)
        return 0;
    if (conf_node_str(c, n, key, &text, e) < 0)
        return -1;
    if (quantity_parse(text, out_milli, NULL, &sub) < 0 || *out_milli <= 0)
        return conf_error(c, n, e, "%s: %s", key, *out_milli <= 0 ? "must be positive" : sub.msg);
    return 1;
}

/* autoscaler.keda: the ScaledObject, the HPA it creates, the controller
 * flags CTL for that HPA (or NULL); every metric trigger must name a metric
 * the simulator exports. */
static int scenario_read_keda(struct scenario *s, struct conf_node *keda, struct conf_node *ctl, struct err *e)
{
    const struct conf *c = s->conf;
    struct conf_node *seq;
    size_t i;

    if (keda_spec_from_conf(c, keda, &s->keda, &s->hpa, e) < 0)
        return -1;
    if (ctl != NULL && hpa_controller_from_conf(c, ctl, &s->hpa, e) < 0)
        return -1;
    seq = conf_get(keda, "triggers");
    for (i = 0; i < s->keda.ntriggers; i++) {
        const struct keda_trigger *t = &s->keda.triggers[i];
        if (t->type == KEDA_TRIGGER_METRIC && !autoscaler_keda_metric_known(t->metric))
            return conf_error(c, conf_get(conf_get(conf_seq_at(seq, i), "metadata"), "metricName"), e,
                              "metricName: '%s' is not a metric the simulator exports (%s)", t->metric,
                              autoscaler_keda_metric_names());
    }
    s->has_keda = true;
    s->has_hpa = true;
    return 0;
}

static int scenario_read_autoscaler(struct scenario *s, struct conf_node *map, struct err *e)
{
    static const char *const keys[] = {"hpa", "keda", "controller", "metrics", NULL};
    static const char *const mkeys[] = {"scrape_interval", "adapter_lag", "cpu_request", "memory_request", NULL};
    const struct conf *c = s->conf;
    struct conf_node *hpa = NULL, *keda = NULL, *ctl = NULL, *met = NULL, *seq;
    size_t i;

    s->scrape_interval_s = 15.0;
    s->adapter_lag_s = 0.0;
    s->cpu_request_milli = 1000;
    s->memory_request_milli = 16LL * 1024 * 1024 * 1024 * 1000;
    if (map == NULL)
        return 0;
    if (conf_check_keys(c, map, "autoscaler", keys, e) < 0 || conf_get_map(c, map, "hpa", &hpa, e) < 0 ||
        conf_get_map(c, map, "keda", &keda, e) < 0 || conf_get_map(c, map, "controller", &ctl, e) < 0 ||
        conf_get_map(c, map, "metrics", &met, e) < 0)
        return -1;
    if (hpa != NULL && keda != NULL)
        return conf_error(c, keda, e, "autoscaler: give hpa or keda, not both (KEDA creates its own HPA)");
    if (met != NULL &&
        (conf_check_keys(c, met, "autoscaler.metrics", mkeys, e) < 0 ||
         conf_get_duration(c, met, "scrape_interval", &s->scrape_interval_s, e) < 0 ||
         conf_get_duration(c, met, "adapter_lag", &s->adapter_lag_s, e) < 0 ||
         scenario_get_quantity(c, met, "cpu_request", &s->cpu_request_milli, e) < 0 ||
         scenario_get_quantity(c, met, "memory_request", &s->memory_request_milli, e) < 0))
        return -1;
    if (s->scrape_interval_s < 1e-3)
        return conf_error(c, conf_get(met, "scrape_interval"), e, "scrape_interval: must be at least 1ms");
    if (keda != NULL)
        return scenario_read_keda(s, keda, ctl, e);
    if (hpa == NULL)
        return ctl ? conf_error(c, ctl, e, "autoscaler.controller: only with autoscaler.hpa or autoscaler.keda") : 0;
    if (hpa_spec_from_conf(c, hpa, &s->hpa, e) < 0)
        return -1;
    if (ctl != NULL && hpa_controller_from_conf(c, ctl, &s->hpa, e) < 0)
        return -1;
    /* Every metric must be one the simulated replicas export. */
    seq = conf_get(hpa, "metrics");
    for (i = 0; i < s->hpa.nmetrics; i++)
        if (!autoscaler_metric_known(&s->hpa.metrics[i]))
            return conf_error(c, seq ? conf_seq_at(seq, i) : hpa, e,
                              "metrics[%zu]: '%s' is not a metric the simulated replicas export (%s)", i,
                              s->hpa.metrics[i].name, autoscaler_metric_names());
    if (s->replicas < s->hpa.min_replicas || s->replicas > s->hpa.max_replicas)
        return conf_error(c, hpa, e, "cluster.replicas (%d, the starting count) must lie within minReplicas..maxReplicas (%d..%d)",
                          s->replicas, (int)s->hpa.min_replicas, (int)s->hpa.max_replicas);
    s->has_hpa = true;
    return 0;
}

static int scenario_read_cache(struct scenario *s, struct conf_node *map, struct err *e)
{
    static const char *const keys[] = {"enabled", "ttl", "capacity", "hit_latency", "deterministic_fraction", NULL};
    const struct conf *c = s->conf;
    bool enabled = true;

    s->cache_ttl_s = 3600;
    s->cache_capacity = 1000000;
    s->cache_hit_latency_s = 0.002;
    s->cache_deterministic = 1.0;
    if (map == NULL)
        return 0;
    if (conf_check_keys(c, map, "cache", keys, e) < 0 || conf_get_bool(c, map, "enabled", &enabled, e) < 0 ||
        conf_get_duration(c, map, "ttl", &s->cache_ttl_s, e) < 0 ||
        conf_get_long(c, map, "capacity", &s->cache_capacity, e) < 0 ||
        conf_get_duration(c, map, "hit_latency", &s->cache_hit_latency_s, e) < 0 ||
        conf_get_nonneg(c, map, "deterministic_fraction", &s->cache_deterministic, e) < 0)
        return -1;
    if (s->cache_capacity < 1 || s->cache_capacity > 100000000)
        return conf_error(c, conf_get(map, "capacity"), e, "capacity: expected 1..100000000 entries, got %ld",
                          s->cache_capacity);
    if (s->cache_deterministic > 1)
        return conf_error(c, conf_get(map, "deterministic_fraction"), e,
                          "deterministic_fraction: expected a fraction in [0, 1]");
    s->has_cache = enabled;
    return 0;
}

/* The index of region NAME, or -1. */
static int scenario_region_index(const struct scenario *s, const char *name)
{
    size_t i;

    for (i = 0; name != NULL && i < s->nregions; i++)
        if (strcmp(s->regions[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* regions.NAME.latency: {CLIENT_REGION: DURATION}, every region listed. */
static int scenario_read_latency(struct scenario *s, struct region_spec *r, struct conf_node *map, struct err *e)
{
    const struct conf *c = s->conf;
    bool seen[SCENARIO_MAX_REGIONS] = {false};
    size_t i, n = conf_map_len(map);

    for (i = 0; i < n; i++) {
        struct conf_node *v;
        const char *client = conf_map_at(map, i, &v);
        int k = scenario_region_index(s, client);
        if (k < 0)
            return conf_error(c, v ? v : map, e, "regions.%s.latency: unknown region '%s' (the client regions are the regions)",
                              r->name, client ? client : "?");
        if (conf_get_duration(c, map, client, &r->latency_s[k], e) < 0)
            return -1;
        seen[k] = true;
    }
    for (i = 0; i < s->nregions; i++)
        if (!seen[i])
            return conf_error(c, map, e, "regions.%s.latency: missing client region '%s' (every region lists every client region)",
                              r->name, s->regions[i].name);
    return 0;
}

/* regions.NAME.outages: [{start: DURATION, end: DURATION}, ...] in order. */
static int scenario_read_outages(struct scenario *s, struct region_spec *r, struct conf_node *seq, struct err *e)
{
    static const char *const keys[] = {"start", "end", NULL};
    const struct conf *c = s->conf;
    size_t i, n = conf_seq_len(seq);
    char what[128];

    r->outages = calloc(n ? n : 1, sizeof(*r->outages));
    if (r->outages == NULL)
        return err_set(e, ERR_SYSTEM, "out of memory");
    snprintf(what, sizeof(what), "regions.%s.outages", r->name);
    for (i = 0; i < n; i++) {
        struct conf_node *o = conf_seq_at(seq, i);
        struct region_outage *w = &r->outages[i];
        if (o == NULL || !conf_is_map(o))
            return conf_error(c, o ? o : seq, e, "%s: each outage is {start: DURATION, end: DURATION}", what);
        if (conf_check_keys(c, o, what, keys, e) < 0 || conf_get_duration(c, o, "start", &w->start_s, e) < 0 ||
            conf_get_duration(c, o, "end", &w->end_s, e) < 0)
            return -1;
        if (conf_get(o, "start") == NULL || conf_get(o, "end") == NULL)
            return conf_error(c, o, e, "%s: an outage needs both start and end", what);
        if (w->end_s <= w->start_s)
            return conf_error(c, conf_get(o, "end"), e, "%s: end must come after start", what);
        if (i > 0 && w->start_s < r->outages[i - 1].end_s)
            return conf_error(c, conf_get(o, "start"), e, "%s: outages must be in time order and not overlap", what);
        r->noutages++;
    }
    return 0;
}

/* regions: {NAME: {replicas, latency, outages}}; clients: {REGION: share}. */
static int scenario_read_regions(struct scenario *s, struct conf_node *map, struct conf_node *clients, struct err *e)
{
    static const char *const keys[] = {"replicas", "latency", "outages", NULL};
    const struct conf *c = s->conf;
    size_t i, n = map ? conf_map_len(map) : 0;
    double total = 0;

    if (map == NULL) {
        if (clients != NULL)
            return conf_error(c, clients, e, "clients: only with regions");
        return 0;
    }
    if (n == 0 || n > SCENARIO_MAX_REGIONS)
        return conf_error(c, map, e, "regions: expected 1..%d regions, NAME: {latency: ...}", SCENARIO_MAX_REGIONS);
    s->regions = calloc(n, sizeof(*s->regions));
    if (s->regions == NULL)
        return err_set(e, ERR_SYSTEM, "out of memory");
    s->nregions = n;
    for (i = 0; i < n; i++) {
        struct conf_node *v;
        const char *name = conf_map_at(map, i, &v);
        if (name == NULL || v == NULL || !conf_is_map(v))
            return conf_error(c, v ? v : map, e, "regions: each region is NAME: {latency: ..., outages: ...}");
        if (strlen(name) >= sizeof(s->regions[i].name) || scenario_region_index(s, name) >= 0)
            return conf_error(c, v, e, "regions: name '%s' too long or repeated", name);
        snprintf(s->regions[i].name, sizeof(s->regions[i].name), "%s", name);
        s->regions[i].client_share = 1.0;
    }
    for (i = 0; i < n; i++) {
        struct region_spec *r = &s->regions[i];
        struct conf_node *v, *lat = NULL, *out = NULL;
        long replicas = s->replicas;
        char what[128];
        conf_map_at(map, i, &v);
        snprintf(what, sizeof(what), "regions.%s", r->name);
        if (conf_check_keys(c, v, what, keys, e) < 0 || conf_get_long(c, v, "replicas", &replicas, e) < 0 ||
            conf_get_map(c, v, "latency", &lat, e) < 0 || conf_get_seq(c, v, "outages", &out, e) < 0)
            return -1;
        if (replicas < 0 || replicas > 100000 || (replicas == 0 && !s->has_keda))
            return conf_error(c, conf_get(v, "replicas"), e, "%s.replicas: expected 1..100000 (0 only with autoscaler.keda)",
                              what);
        r->replicas = (int)replicas;
        if (lat == NULL)
            return conf_error(c, v, e, "%s: missing latency (a round trip from every client region)", what);
        if (scenario_read_latency(s, r, lat, e) < 0 || (out != NULL && scenario_read_outages(s, r, out, e) < 0))
            return -1;
    }
    if (clients != NULL) {
        for (i = 0; i < n; i++)
            s->regions[i].client_share = 0;
        for (i = 0; i < conf_map_len(clients); i++) {
            struct conf_node *v;
            const char *name = conf_map_at(clients, i, &v);
            int k = scenario_region_index(s, name);
            if (k < 0)
                return conf_error(c, v ? v : clients, e, "clients: unknown region '%s'", name ? name : "?");
            if (conf_get_nonneg(c, clients, name, &s->regions[k].client_share, e) < 0)
                return -1;
        }
    }
    for (i = 0; i < n; i++)
        total += s->regions[i].client_share;
    if (!(total > 0) || !isfinite(total))
        return conf_error(c, clients ? clients : map, e, "clients: the shares must add up to more than 0");
    for (i = 0; i < n; i++)
        s->regions[i].client_share /= total;
    return 0;
}

/* Fetch a section mapping by name, NULL when absent. */
static int scenario_section(const struct conf *c, struct conf_node *root, const char *key,
                            struct conf_node **out, struct err *e)
{
    *out = NULL;
    return conf_get_map(c, root, key, out, e) < 0 ? -1 : 0;
}

struct scenario *scenario_load(const char *path, char *const *sets, int nsets, struct err *e)
{
    static const char *const keys[] = {"name", "description", "seed", "workload", "service", "cluster",
                                       "gateway", "autoscaler", "cache", "regions", "clients", "slo", "output",
                                       "tune", /* read by llmsim tune (sim/tune_space.c) */ NULL};
    struct scenario *s = calloc(1, sizeof(*s));
    struct conf_node *root, *sec;
    const char *name = NULL;
    long seed = 1;
    int i;

    if (s == NULL) {
        err_set(e, ERR_SYSTEM, "out of memory");
        return NULL;
    }
    s->chunked_prefill = true;
    s->conf = conf_load_file(path, e);
    if (s->conf == NULL)
        goto fail;
    for (i = 0; i < nsets; i++)
        if (conf_set(s->conf, sets[i], e) < 0)
            goto fail;
    root = conf_root(s->conf);
    if (conf_check_keys(s->conf, root, "the scenario", keys, e) < 0)
        goto fail;
    if (conf_get_str(s->conf, root, "name", &name, e) < 0 || conf_get_long(s->conf, root, "seed", &seed, e) < 0)
        goto fail;
    if (name == NULL) {
        /* Default name: the file's base name without extension. */
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        snprintf(s->name, sizeof(s->name), "%.*s", (int)strcspn(base, "."), base);
    } else {
        snprintf(s->name, sizeof(s->name), "%s", name);
    }
    if (seed < 0) {
        conf_error(s->conf, conf_get(root, "seed"), e, "seed: must not be negative");
        goto fail;
    }
    s->seed = (uint64_t)seed;
    if (conf_get_map(s->conf, root, "workload", &s->workload, e) < 0)
        goto fail;
    if (s->workload == NULL) {
        err_at(e, path, 0, "missing section 'workload' (trace: FILE or generator: {...})");
        goto fail;
    }
    if (scenario_section(s->conf, root, "service", &sec, e) < 0 || scenario_read_service(s, sec, e) < 0)
        goto fail;
    if (scenario_section(s->conf, root, "cluster", &sec, e) < 0 || scenario_read_cluster(s, sec, e) < 0)
        goto fail;
    if (scenario_section(s->conf, root, "gateway", &sec, e) < 0 || scenario_read_gateway(s, sec, e) < 0)
        goto fail;
    if (scenario_section(s->conf, root, "autoscaler", &sec, e) < 0 || scenario_read_autoscaler(s, sec, e) < 0)
        goto fail;
    if (s->replicas == 0 && !s->has_keda) {
        conf_error(s->conf, conf_get(conf_get(root, "cluster"), "replicas"), e,
                   "replicas: 0 only with autoscaler.keda (scale to zero), expected 1..100000");
        goto fail;
    }
    if (scenario_section(s->conf, root, "cache", &sec, e) < 0 || scenario_read_cache(s, sec, e) < 0)
        goto fail;
    {
        struct conf_node *clients = NULL;
        if (scenario_section(s->conf, root, "regions", &sec, e) < 0 ||
            scenario_section(s->conf, root, "clients", &clients, e) < 0 || scenario_read_regions(s, sec, clients, e) < 0)
            goto fail;
    }
    if (scenario_section(s->conf, root, "slo", &sec, e) < 0 || scenario_read_slo(s, sec, e) < 0)
        goto fail;
    if (scenario_section(s->conf, root, "output", &sec, e) < 0 || scenario_read_output(s, sec, e) < 0)
        goto fail;
    return s;
fail:
    scenario_free(s);
    return NULL;
}

void scenario_free(struct scenario *s)
{
    size_t i;

    if (s == NULL)
        return;
    for (i = 0; i < s->nregions; i++)
        free(s->regions[i].outages);
    free(s->regions);
    free(s->pools);
    profile_free(s->profile);
    keda_spec_free(&s->keda);
    conf_free(s->conf);
    free(s);
}
