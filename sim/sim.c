/* sim.c -- see sim.h.  The event loop: arrivals are read from the workload
 * one ahead (so memory does not grow with the trace), the cluster handles
 * its own events, and a timeline tick closes each output interval. */
#include "sim/sim.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/duration.h"
#include "sim/autoscaler.h"
#include "sim/cluster.h"
#include "sim/engine.h"
#include "sim/metrics.h"
#include "sim/nodes.h"
#include "sim/regions.h"
#include "workloads/trace.h"

enum sim_event {
    EV_ARRIVAL = 1,
    EV_TICK = 2,
};

struct sim {
    const struct scenario *sc;
    const struct sim_options *opt;
    struct engine en;
    struct metrics m;
    struct regions *rg; /* the clusters (one per region) and their autoscalers */
    struct trace_reader *tr;
    struct trace_request next; /* the arrival scheduled but not yet delivered */
    size_t next_request;       /* with opt->requests: the next to deliver */
    bool arrivals_done;
    double tick_start_s;
    double wall_start_s;
    double last_progress_s;
};

static double sim_wall_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Read the next request and schedule its arrival. */
static int sim_schedule_arrival(struct sim *s, struct err *e)
{
    int rc;

    if (s->opt->requests != NULL) {
        rc = s->next_request < s->opt->nrequests;
        if (rc)
            s->next = s->opt->requests[s->next_request++];
    } else {
        rc = trace_next(s->tr, &s->next, e);
    }

    if (rc < 0)
        return -1;
    if (rc == 0) {
        s->arrivals_done = true;
        return 0;
    }
    if (s->next.arrival_s < s->en.now_s)
        s->next.arrival_s = s->en.now_s; /* readers keep order; guard anyway */
    if (engine_schedule(&s->en, s->next.arrival_s, EV_ARRIVAL, NULL, 0) < 0)
        return err_set(e, ERR_SYSTEM, "out of memory");
    return 0;
}

static void sim_close_interval(struct sim *s)
{
    struct timeline_sample ts;

    regions_sample(s->rg, &ts);
    metrics_timeline_row(&s->m, s->tick_start_s, &ts);
    s->tick_start_s = s->en.now_s;
}

static void sim_progress(struct sim *s, bool final)
{
    double now = sim_wall_s();
    double frac;
    char simt[32];

    if (!s->opt->progress)
        return;
    if (final) {
        fputs("\r\033[K", stderr);
        return;
    }
    if (now - s->last_progress_s < 0.25)
        return;
    s->last_progress_s = now;
    frac = s->tr ? trace_progress(s->tr)
                 : s->opt->nrequests ? (double)s->next_request / (double)s->opt->nrequests : -1.0;
    duration_format(s->en.now_s, simt, sizeof(simt));
    if (frac > 0) {
        char left[32];
        duration_format((now - s->wall_start_s) * (1.0 - frac) / frac, left, sizeof(left));
        fprintf(stderr, "\r\033[K  simulated %s, %3.0f%% of the workload, %.1fM events (%.1fM/s), about %s left", simt,
                100.0 * frac, s->en.processed / 1e6, s->en.processed / 1e6 / (now - s->wall_start_s), left);
    }
    else
        fprintf(stderr, "\r\033[K  simulated %s, %.1fM events", simt, s->en.processed / 1e6);
}

static json_t *sim_real(double v)
{
    return json_real(isfinite(v) ? v : 0.0);
}

static json_t *sim_opt_duration(double v)
{
    return v > 0 ? json_real(v) : json_null();
}

static json_t *sim_summary(struct sim *s, double wall_s)
{
    const struct scenario *sc = s->sc;
    const struct metrics *m = &s->m;
    struct cluster_totals t;
    struct autoscaler_totals at;
    double span = s->en.now_s;
    json_t *sm;
    double attainment = metrics_slo_attainment(m);
    unsigned long long events = s->en.processed + regions_events(s->rg);

    regions_totals(s->rg, &t);
    regions_autoscaler_totals(s->rg, &at);
    sm = json_pack(
        "{s:{s:s,s:s,s:I},"
        "s:{s:I,s:I,s:I,s:I,s:I,s:I},"
        "s:{s:o,s:o,s:o,s:o},"
        "s:{s:I,s:I},"
        "s:{s:o,s:o},"
        "s:{s:o,s:o},"
        "s:o,"
        "s:{s:o,s:o,s:o,s:o,s:o,s:b},"
        "s:{s:i,s:o,s:i},"
        "s:{s:o,s:o},"
        "s:{s:o,s:I,s:I,s:o,s:o,s:I}}",
        "scenario", "name", sc->name, "file", conf_origin(sc->conf), "seed", (json_int_t)sc->seed,
        "requests", "arrived", (json_int_t)m->arrived, "completed", (json_int_t)m->completed, "rejected",
        (json_int_t)m->rejected, "timed_out", (json_int_t)m->timed_out, "in_flight_at_end",
        (json_int_t)regions_in_flight(s->rg), "preempted", (json_int_t)m->preemptions,
        "latency_s", "queue", metrics_latency_json(m->queue), "ttft", metrics_latency_json(m->ttft), "tpot",
        metrics_latency_json(m->tpot), "e2e", metrics_latency_json(m->e2e),
        "tokens", "prompt", (json_int_t)m->prompt_tokens, "output", (json_int_t)m->output_tokens,
        "throughput", "requests_per_s", sim_real(span > 0 ? m->completed / span : 0), "output_tokens_per_s",
        sim_real(span > 0 ? m->output_tokens / span : 0),
        "cost_usd", "total", sim_real(t.cost_usd), "per_1k_requests",
        sim_real(m->completed ? t.cost_usd * 1000.0 / m->completed : 0),
        "gpu_hours", sim_real(t.gpu_hours),
        "slo", "ttft_s", sim_opt_duration(sc->slo_ttft_s), "tpot_s", sim_opt_duration(sc->slo_tpot_s), "e2e_s",
        sim_opt_duration(sc->slo_e2e_s), "target", sim_real(sc->slo_target), "attainment", sim_real(attainment),
        "met", attainment >= sc->slo_target,
        "replicas", "min", t.replicas_min, "mean", sim_real(span > 0 ? t.replica_s / span : t.replicas_max), "max",
        t.replicas_max,
        "utilization", "kv_mean",
        sim_real(t.replica_s > 0 && sc->service == SERVICE_PROFILE ? t.kv_token_s / (t.replica_s * t.kv_capacity_tokens)
                                                                    : 0),
        "busy_mean", sim_real(t.replica_s > 0 ? t.busy_s / t.replica_s : 0),
        "sim", "duration_s", sim_real(span), "events", (json_int_t)events, "steps", (json_int_t)t.steps,
        "wall_s", sim_real(wall_s), "events_per_s", sim_real(wall_s > 0 ? events / wall_s : 0), "seed",
        (json_int_t)sc->seed);
    if (sm != NULL &&
        json_object_set_new(sm, "events", json_pack("{s:I,s:I,s:I,s:I}", "cold_starts", (json_int_t)t.cold_starts,
                                                     "scale_ups", (json_int_t)at.scale_ups, "scale_downs",
                                                     (json_int_t)at.scale_downs, "hpa_syncs",
                                                     (json_int_t)at.syncs)) != 0) {
        json_decref(sm);
        sm = NULL;
    }
    if (sm != NULL) {
        /* Cost and nodes by pool, spot figures. */
        json_t *by_pool = json_object(), *pools = json_object(), *cost = json_object_get(sm, "cost_usd");
        unsigned long long node_preemptions = 0;
        size_t i;
        for (i = 0; by_pool && pools && i < sc->npools; i++) {
            struct pool_totals pt;
            regions_pool_totals(s->rg, i, &pt);
            node_preemptions += pt.preemptions;
            json_object_set_new(by_pool, sc->pools[i].name, sim_real(pt.cost_usd));
            json_object_set_new(pools, sc->pools[i].name,
                                json_pack("{s:o,s:o,s:i,s:I,s:I,s:I}", "cost_usd", sim_real(pt.cost_usd), "node_hours",
                                          sim_real(pt.node_s / 3600.0), "nodes_max", pt.nodes_max, "provisioned",
                                          (json_int_t)pt.provisioned, "removed_idle", (json_int_t)pt.removed_idle,
                                          "preemptions", (json_int_t)pt.preemptions));
        }
        if (by_pool == NULL || pools == NULL || json_object_set_new(cost, "by_pool", by_pool) != 0 ||
            json_object_set_new(cost, "on_demand_equivalent", sim_real(t.on_demand_usd)) != 0 ||
            json_object_set_new(cost, "savings_vs_on_demand", sim_real(t.on_demand_usd - t.cost_usd)) != 0 ||
            json_object_set_new(sm, "pools", pools) != 0 ||
            json_object_set_new(json_object_get(sm, "events"), "preemptions", json_integer((json_int_t)node_preemptions)) != 0 ||
            json_object_set_new(json_object_get(sm, "events"), "replicas_preempted", json_integer((json_int_t)t.preemptions)) != 0 ||
            json_object_set_new(json_object_get(sm, "events"), "requeued", json_integer((json_int_t)t.requeued)) != 0 ||
            json_object_set_new(json_object_get(sm, "events"), "lost_tokens", sim_real(t.lost_tokens)) != 0) {
            json_decref(sm);
            sm = NULL;
        }
    }
    if (sm != NULL && sc->has_keda &&
        (json_object_set_new(json_object_get(sm, "events"), "activations", json_integer((json_int_t)at.activations)) != 0 ||
         json_object_set_new(json_object_get(sm, "events"), "scale_to_zero",
                             json_integer((json_int_t)at.scale_to_zero)) != 0 ||
         json_object_set_new(json_object_get(sm, "events"), "keda_polls", json_integer((json_int_t)at.keda_polls)) != 0)) {
        json_decref(sm);
        sm = NULL;
    }
    if (sm != NULL && sc->has_cache &&
        json_object_set_new(
            sm, "cache",
            json_pack("{s:I,s:I,s:o,s:o,s:o,s:o,s:I}", "lookups", (json_int_t)t.cache_lookups, "hits",
                      (json_int_t)t.cache_hits, "hit_ratio",
                      sim_real(t.cache_lookups ? (double)t.cache_hits / t.cache_lookups : 0), "hit_ratio_all",
                      sim_real(m->arrived ? (double)t.cache_hits / m->arrived : 0), "tokens_saved",
                      sim_real(t.cache_tokens_saved), "gpu_s_saved", sim_real(t.cache_gpu_s_saved), "evictions",
                      (json_int_t)t.cache_evictions)) != 0) {
        json_decref(sm);
        sm = NULL;
    }
    if (sm != NULL && sc->nregions > 0) {
        json_t *by_region = regions_summary(s->rg, span);
        if (by_region == NULL || json_object_set_new(sm, "regions", by_region) != 0 ||
            json_object_set_new(json_object_get(sm, "events"), "failed_over",
                                json_integer((json_int_t)regions_failed_over(s->rg))) != 0) {
            json_decref(sm);
            sm = NULL;
        }
    }
    return sm;
}

static int sim_write_summary(json_t *summary, const char *dir, struct err *e)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/summary.json", dir);
    if (json_dump_file(summary, path, JSON_INDENT(2) | JSON_REAL_PRECISION(10)) != 0)
        return err_sys(e, errno ? errno : EIO, "%s", path);
    /* json_dump_file writes no final newline; add one for tools. */
    {
        FILE *f = fopen(path, "a");
        if (f == NULL || fputc('\n', f) == EOF || fclose(f) != 0)
            return err_sys(e, errno ? errno : EIO, "%s", path);
    }
    return 0;
}

static int sim_loop(struct sim *s, struct err *e)
{
    struct event ev;
    int region;

    if (sim_schedule_arrival(s, e) < 0)
        return -1;
    if (engine_schedule(&s->en, s->sc->interval_s, EV_TICK, NULL, 0) < 0)
        return err_set(e, ERR_SYSTEM, "out of memory");
    while (regions_pop(s->rg, &ev, &region)) {
        switch (ev.type) {
        case EV_ARRIVAL: {
            /* Schedule the next arrival first, so that arrivals at the same
             * instant come before the batch that this one may start. */
            struct trace_request now = s->next;
            if (sim_schedule_arrival(s, e) < 0)
                return -1;
            if (regions_arrive(s->rg, &now) < 0)
                return err_set(e, ERR_SYSTEM, "out of memory");
            break;
        }
        case EV_TICK:
            sim_close_interval(s);
            /* Keep ticking while anything can still happen. */
            if (!s->arrivals_done || regions_in_flight(s->rg) > 0)
                if (engine_schedule(&s->en, s->en.now_s + s->sc->interval_s, EV_TICK, NULL, 0) < 0)
                    return err_set(e, ERR_SYSTEM, "out of memory");
            break;
        default:
            if (regions_handle(s->rg, region, &ev) < 0)
                return err_set(e, ERR_SYSTEM, "out of memory");
            break;
        }
        if (((s->en.processed + regions_events(s->rg)) & 0xffff) == 0)
            sim_progress(s, false);
        /* All work done: what is left are periodic events. */
        if (s->arrivals_done && (regions_in_flight(s->rg) == 0 || regions_idle_forever(s->rg)))
            break;
    }
    if (s->en.now_s > s->tick_start_s || s->m.iv_arrivals || s->m.iv_completed)
        sim_close_interval(s);
    return 0;
}

json_t *sim_run(const struct scenario *sc, const struct sim_options *opt, struct err *e)
{
    struct sim s;
    json_t *summary = NULL;
    int rc;

    memset(&s, 0, sizeof(s));
    s.sc = sc;
    s.opt = opt;
    s.wall_start_s = sim_wall_s();
    engine_init(&s.en);
    if (metrics_init(&s.m, sc, opt->outdir, opt->requests_csv || sc->requests_csv, e) < 0) {
        engine_free(&s.en);
        return NULL;
    }
    s.rg = regions_create(sc, &s.en, &s.m, e);
    if (s.rg == NULL)
        goto out;
    if (opt->requests == NULL) {
        s.tr = workload_open(sc->conf, sc->workload, sc->seed, e);
        if (s.tr == NULL)
            goto out;
    }
    rc = sim_loop(&s, e);
    sim_progress(&s, true);
    if (rc < 0)
        goto out;
    summary = sim_summary(&s, opt->reproducible ? 0.0 : sim_wall_s() - s.wall_start_s);
    if (summary == NULL) {
        err_set(e, ERR_SYSTEM, "out of memory");
        goto out;
    }
    if (opt->outdir != NULL &&
        (metrics_write_cdf(&s.m, opt->outdir, e) < 0 || sim_write_summary(summary, opt->outdir, e) < 0)) {
        json_decref(summary);
        summary = NULL;
    }
out:
    if (s.tr)
        trace_close(s.tr);
    regions_free(s.rg);
    if (metrics_close(&s.m, summary ? e : NULL) < 0 && summary) {
        json_decref(summary);
        summary = NULL;
    }
    engine_free(&s.en);
    return summary;
}
