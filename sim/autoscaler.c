/* autoscaler.c -- see autoscaler.h. */
#include "sim/autoscaler.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a replica exports, by name. */
enum autoscaler_source {
    SRC_WAITING,
    SRC_RUNNING,
    SRC_KV,
    SRC_GPU,
    SRC_TTFT,
    SRC_CPU,
    SRC_MEMORY,
    SRC_GATEWAY_WAITING,
    SRC_WAITING_TOTAL,
    SRC_RPS,
    SRC_UNKNOWN,
};

struct autoscaler_name {
    const char *name;
    enum autoscaler_source src;
    int per_pod; /* 1: Pods metric, 0: Object/External, 2: Resource */
};

static const struct autoscaler_name autoscaler_names[] = {
    {"requests_waiting", SRC_WAITING, 1},
    {"requests_running", SRC_RUNNING, 1},
    {"kv_cache_usage_ratio", SRC_KV, 1},
    {"gpu_utilization_ratio", SRC_GPU, 1},
    {"ttft_p90_seconds", SRC_TTFT, 1},
    {"cpu", SRC_CPU, 2},
    {"memory", SRC_MEMORY, 2},
    {"gateway_requests_waiting", SRC_GATEWAY_WAITING, 0},
    {"requests_waiting_total", SRC_WAITING_TOTAL, 0},
    {"requests_per_second", SRC_RPS, 0},
};

#define AUTOSCALER_NNAMES (sizeof(autoscaler_names) / sizeof(autoscaler_names[0]))

/* The source of metric M, or SRC_UNKNOWN. */
static enum autoscaler_source autoscaler_source_of(const struct hpa_metric *m)
{
    const char *name = m->name;
    int want = m->type == HPA_METRIC_RESOURCE ? 2 : m->type == HPA_METRIC_PODS ? 1 : 0;
    size_t i;

    if (strncmp(name, "llmserve_", 9) == 0)
        name += 9;
    for (i = 0; i < AUTOSCALER_NNAMES; i++)
        if (autoscaler_names[i].per_pod == want && strcmp(autoscaler_names[i].name, name) == 0)
            return autoscaler_names[i].src;
    return SRC_UNKNOWN;
}

bool autoscaler_metric_known(const struct hpa_metric *m)
{
    return autoscaler_source_of(m) != SRC_UNKNOWN;
}

const char *autoscaler_metric_names(void)
{
    return "Pods: requests_waiting, requests_running, kv_cache_usage_ratio, gpu_utilization_ratio, "
           "ttft_p90_seconds; Resource: cpu, memory; Object/External: gateway_requests_waiting, "
           "requests_waiting_total, requests_per_second";
}

bool autoscaler_keda_metric_known(const char *name)
{
    size_t i;

    if (strncmp(name, "llmserve_", 9) == 0)
        name += 9;
    for (i = 0; i < AUTOSCALER_NNAMES; i++)
        if (autoscaler_names[i].per_pod != 2 && strcmp(autoscaler_names[i].name, name) == 0)
            return true;
    return false;
}

const char *autoscaler_keda_metric_names(void)
{
    return "gateway_requests_waiting, requests_waiting_total, requests_per_second; averaged over replicas: "
           "requests_waiting, requests_running, kv_cache_usage_ratio, gpu_utilization_ratio, ttft_p90_seconds";
}

/* One scrape of every billed replica, and the cluster-wide values. */
struct autoscaler_scrape {
    double time_s;
    struct replica_sample *samples;
    size_t n, cap;
    long gateway_waiting;
    double rps;
    unsigned long long arrivals; /* cluster arrivals so far, at the scrape */
};

struct autoscaler {
    const struct scenario *sc;
    struct cluster *cl;
    struct engine *en;
    struct hpa_state state;
    struct autoscaler_scrape *ring; /* the last scrapes, oldest overwritten */
    size_t ring_len;
    size_t next_slot;
    unsigned long long last_arrivals;
    struct hpa_pod *pods;
    size_t pods_cap;
    struct autoscaler_totals totals;
    bool sync_scheduled;
    /* KEDA (sc->has_keda) */
    struct keda_state keda;
    bool poll_scheduled;
    bool polled;                                   /* a poll has happened */
    bool last_poll_active;
    const struct autoscaler_scrape *last_poll_scrape; /* what it saw, or NULL */
    struct autoscaler_scrape last_poll_seen;       /* a copy of its figures (samples not kept) */
};

struct autoscaler *autoscaler_create(const struct scenario *sc, struct cluster *cl, struct engine *en,
                                     struct err *e)
{
    struct autoscaler *a = calloc(1, sizeof(*a));

    if (a == NULL)
        goto nomem;
    a->sc = sc;
    a->cl = cl;
    a->en = en;
    hpa_state_init(&a->state);
    /* Enough scrapes to reach back over the adapter's lag, and one more. */
    a->ring_len = (size_t)ceil(sc->adapter_lag_s / sc->scrape_interval_s) + 2;
    a->ring = calloc(a->ring_len, sizeof(*a->ring));
    if (a->ring == NULL)
        goto nomem;
    {
        size_t i;
        for (i = 0; i < a->ring_len; i++)
            a->ring[i].time_s = -INFINITY;
    }
    /* The first sync is scheduled by the first scrape, so that a scrape and a
     * sync due at the same instant happen in that order. */
    if (engine_schedule(en, en->now_s, EV_SCRAPE, a, 0) < 0)
        goto nomem;
    return a;
nomem:
    autoscaler_free(a);
    err_set(e, ERR_SYSTEM, "out of memory");
    return NULL;
}

void autoscaler_free(struct autoscaler *a)
{
    size_t i;

    if (a == NULL)
        return;
    hpa_state_free(&a->state);
    for (i = 0; a->ring != NULL && i < a->ring_len; i++)
        free(a->ring[i].samples);
    free(a->ring);
    free(a->pods);
    free(a);
}

static int autoscaler_scrape(struct autoscaler *a)
{
    struct autoscaler_scrape *sc = &a->ring[a->next_slot];
    size_t want = cluster_size(a->cl);
    unsigned long long arrivals = cluster_arrivals(a->cl);

    if (want > sc->cap) {
        struct replica_sample *p = realloc(sc->samples, want * sizeof(*p));
        if (p == NULL)
            return -1;
        sc->samples = p;
        sc->cap = want;
    }
    sc->time_s = a->en->now_s;
    sc->n = cluster_snapshot(a->cl, sc->samples, sc->cap);
    sc->gateway_waiting = cluster_gateway_waiting(a->cl);
    sc->rps = (double)(arrivals - a->last_arrivals) / a->sc->scrape_interval_s;
    sc->arrivals = arrivals;
    a->last_arrivals = arrivals;
    a->next_slot = (a->next_slot + 1) % a->ring_len;
    if (engine_schedule(a->en, a->en->now_s + a->sc->scrape_interval_s, EV_SCRAPE, a, 0) < 0)
        return -1;
    if (a->sc->has_keda && !a->poll_scheduled) {
        /* KEDA's scale loop checks the triggers at once, then every
         * pollingInterval. */
        a->poll_scheduled = true;
        if (engine_schedule(a->en, a->en->now_s, EV_KEDA_POLL, a, 0) < 0)
            return -1;
    }
    if (!a->sync_scheduled) {
        a->sync_scheduled = true;
        return engine_schedule(a->en, a->en->now_s + a->sc->hpa.sync_period_s, EV_HPA_SYNC, a, 0);
    }
    return 0;
}

/* The newest scrape the HPA can see now, or NULL. */
static const struct autoscaler_scrape *autoscaler_visible(const struct autoscaler *a)
{
    const struct autoscaler_scrape *best = NULL;
    double horizon = a->en->now_s - a->sc->adapter_lag_s + 1e-9;
    size_t i;

    for (i = 0; i < a->ring_len; i++) {
        const struct autoscaler_scrape *s = &a->ring[i];
        if (s->time_s <= horizon && (best == NULL || s->time_s > best->time_s))
            best = s;
    }
    return best;
}

static int64_t autoscaler_milli(double v)
{
    return (int64_t)llround(v * 1000.0);
}

/* Fill the controller's view of pod P from sample SM of scrape SC. */
static void autoscaler_pod(const struct autoscaler *a, const struct autoscaler_scrape *sc,
                           const struct replica_sample *sm, struct hpa_pod *p)
{
    const struct hpa_spec *spec = &a->sc->hpa;
    bool exporting = sm->state == REPLICA_READY || sm->state == REPLICA_DRAINING;
    size_t i;

    hpa_pod_init(p, sc->time_s);
    p->phase = HPA_POD_RUNNING;
    p->deleting = sm->state == REPLICA_DRAINING;
    p->ready = sm->state == REPLICA_READY;
    p->start_s = sm->created_s;
    p->last_transition_s = sm->state == REPLICA_STARTING ? sm->created_s : sm->ready_s;
    p->metric_time_s = sc->time_s;
    p->metric_window_s = a->sc->scrape_interval_s;
    for (i = 0; i < spec->nmetrics; i++) {
        double v = 0;
        bool has = exporting;

        switch (autoscaler_source_of(&spec->metrics[i])) {
        case SRC_WAITING: v = (double)sm->waiting; break;
        case SRC_RUNNING: v = (double)sm->running; break;
        case SRC_KV: v = sm->kv_usage; break;
        case SRC_GPU: v = sm->busy_frac; break;
        case SRC_TTFT:
            v = sm->ttft_p90_s;
            has = has && sm->has_ttft;
            break;
        case SRC_CPU:
            p->has_request[i] = true;
            p->request_milli[i] = a->sc->cpu_request_milli;
            p->has_usage[i] = has;
            p->usage_milli[i] = (int64_t)llround(sm->busy_frac * (double)a->sc->cpu_request_milli);
            continue;
        case SRC_MEMORY:
            p->has_request[i] = true;
            p->request_milli[i] = a->sc->memory_request_milli;
            p->has_usage[i] = has;
            p->usage_milli[i] = (int64_t)llround(sm->kv_usage * (double)a->sc->memory_request_milli);
            continue;
        default:
            continue;
        }
        p->has_usage[i] = has;
        p->usage_milli[i] = autoscaler_milli(v);
    }
}

/* The value of KEDA trigger I in scrape SC (NULL: none visible yet) at
 * now; false when there is none (a metric trigger before any scrape). */
static bool autoscaler_keda_value(const struct autoscaler *a, const struct autoscaler_scrape *sc, size_t i,
                                  double *out)
{
    const struct keda_trigger *t = &a->sc->keda.triggers[i];
    struct hpa_metric m;
    double sum = 0;
    size_t k, n = 0;

    if (t->type == KEDA_TRIGGER_CRON) {
        *out = keda_cron_value(&a->sc->keda, t, a->en->now_s);
        return true;
    }
    if (sc == NULL)
        return false;
    memset(&m, 0, sizeof(m));
    m.type = HPA_METRIC_EXTERNAL;
    snprintf(m.name, sizeof(m.name), "%s", t->metric);
    switch (autoscaler_source_of(&m)) {
    case SRC_GATEWAY_WAITING: *out = (double)sc->gateway_waiting; return true;
    case SRC_RPS: *out = sc->rps; return true;
    case SRC_WAITING_TOTAL:
        *out = (double)sc->gateway_waiting;
        for (k = 0; k < sc->n; k++)
            *out += (double)sc->samples[k].waiting;
        return true;
    default: break;
    }
    /* A Pods metric, averaged over the replicas that export it. */
    m.type = HPA_METRIC_PODS;
    for (k = 0; k < sc->n; k++) {
        const struct replica_sample *sm = &sc->samples[k];
        if (sm->state != REPLICA_READY && sm->state != REPLICA_DRAINING)
            continue;
        switch (autoscaler_source_of(&m)) {
        case SRC_WAITING: sum += (double)sm->waiting; break;
        case SRC_RUNNING: sum += (double)sm->running; break;
        case SRC_KV: sum += sm->kv_usage; break;
        case SRC_GPU: sum += sm->busy_frac; break;
        case SRC_TTFT:
            if (!sm->has_ttft)
                continue;
            sum += sm->ttft_p90_s;
            break;
        default: continue;
        }
        n++;
    }
    *out = n > 0 ? sum / (double)n : 0.0;
    return true;
}

/* One poll of KEDA's scale loop (RequestScale). */
static int autoscaler_keda_poll(struct autoscaler *a)
{
    const struct keda_spec *k = &a->sc->keda;
    const struct autoscaler_scrape *sc = autoscaler_visible(a);
    int current = cluster_replicas(a->cl, NULL);
    bool active = false;
    int32_t replicas;
    size_t i;

    for (i = 0; i < k->ntriggers; i++) {
        const struct keda_trigger *t = &k->triggers[i];
        double v;
        if (t->type == KEDA_TRIGGER_CRON)
            active = active || keda_cron_active(k, t, a->en->now_s);
        else if (autoscaler_keda_value(a, sc, i, &v) && v > t->activation_threshold)
            active = true;
    }
    a->totals.keda_polls++;
    a->polled = true;
    a->last_poll_active = active;
    a->last_poll_scrape = sc;
    if (sc != NULL) {
        a->last_poll_seen = *sc;
        a->last_poll_seen.samples = NULL;
    }
    switch (keda_poll(k, &a->keda, a->en->now_s, current, active, &replicas)) {
    case KEDA_ACTIVATE: a->totals.activations++; break;
    case KEDA_DEACTIVATE: a->totals.scale_to_zero++; break;
    default: break;
    }
    if (replicas != current && cluster_scale(a->cl, replicas) < 0)
        return -1;
    return engine_schedule(a->en, a->en->now_s + k->polling_interval_s, EV_KEDA_POLL, a, 0);
}

bool autoscaler_idle_forever(const struct autoscaler *a)
{
    size_t i;

    if (a == NULL || !a->sc->has_keda || !a->polled || a->last_poll_active || a->last_poll_scrape == NULL ||
        a->sc->queue_timeout_s > 0 || cluster_size(a->cl) != 0)
        return false;
    for (i = 0; i < a->sc->keda.ntriggers; i++)
        if (a->sc->keda.triggers[i].type == KEDA_TRIGGER_CRON)
            return false;
    /* With no replica, no arrival and no timeout, every metric stays as
     * that scrape saw it. */
    return a->last_poll_seen.n == 0 && a->last_poll_seen.rps == 0 &&
           a->last_poll_seen.arrivals == cluster_arrivals(a->cl);
}

static int autoscaler_sync(struct autoscaler *a)
{
    const struct hpa_spec *spec = &a->sc->hpa;
    const struct autoscaler_scrape *sc = autoscaler_visible(a);
    struct hpa_observation obs;
    struct hpa_result res;
    int current = cluster_replicas(a->cl, NULL);
    size_t i;

    memset(&obs, 0, sizeof(obs));
    obs.status_replicas = -1;
    if (sc != NULL) {
        long waiting_total = sc->gateway_waiting;
        if (sc->n > a->pods_cap) {
            struct hpa_pod *p = realloc(a->pods, sc->n * sizeof(*p));
            if (p == NULL)
                return -1;
            a->pods = p;
            a->pods_cap = sc->n;
        }
        for (i = 0; i < sc->n; i++) {
            autoscaler_pod(a, sc, &sc->samples[i], &a->pods[i]);
            waiting_total += sc->samples[i].waiting;
        }
        obs.pods = a->pods;
        obs.npods = sc->n;
        for (i = 0; i < spec->nmetrics; i++) {
            switch (autoscaler_source_of(&spec->metrics[i])) {
            case SRC_GATEWAY_WAITING: obs.value_milli[i] = autoscaler_milli((double)sc->gateway_waiting); break;
            case SRC_WAITING_TOTAL: obs.value_milli[i] = autoscaler_milli((double)waiting_total); break;
            case SRC_RPS: obs.value_milli[i] = autoscaler_milli(sc->rps); break;
            default: continue;
            }
            obs.has_value[i] = true;
        }
    }
    for (i = 0; a->sc->has_keda && i < spec->nmetrics; i++) {
        double v;
        obs.has_value[i] = autoscaler_keda_value(a, sc, i, &v);
        obs.value_milli[i] = obs.has_value[i] ? autoscaler_milli(v) : 0;
    }
    if (hpa_step(&a->state, spec, a->en->now_s, current, &obs, &res) < 0)
        return -1;
    a->totals.syncs++;
    if (res.desired_replicas != current) {
        if (res.desired_replicas > current)
            a->totals.scale_ups++;
        else
            a->totals.scale_downs++;
        if (cluster_scale(a->cl, res.desired_replicas) < 0)
            return -1;
    }
    return engine_schedule(a->en, a->en->now_s + spec->sync_period_s, EV_HPA_SYNC, a, 0);
}

int autoscaler_handle(struct autoscaler *a, const struct event *ev)
{
    switch (ev->type) {
    case EV_SCRAPE: return autoscaler_scrape(a);
    case EV_KEDA_POLL: return autoscaler_keda_poll(a);
    default: return autoscaler_sync(a);
    }
}

void autoscaler_totals(const struct autoscaler *a, struct autoscaler_totals *t)
{
    if (a == NULL)
        memset(t, 0, sizeof(*t));
    else
        *t = a->totals;
}
