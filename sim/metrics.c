/* metrics.c -- see metrics.h. */
#include "sim/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim/scenario.h"

static FILE *metrics_open(const char *dir, const char *name, struct err *e)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    if (f == NULL)
        err_sys(e, errno, "%s", path);
    return f;
}

int metrics_init(struct metrics *m, const struct scenario *sc, const char *dir, bool requests_csv,
                 struct err *e)
{
    memset(m, 0, sizeof(*m));
    m->sc = sc;
    m->queue = hist_create();
    m->ttft = hist_create();
    m->tpot = hist_create();
    m->e2e = hist_create();
    m->iv_ttft = hist_create();
    if (!m->queue || !m->ttft || !m->tpot || !m->e2e || !m->iv_ttft) {
        metrics_close(m, NULL);
        return err_set(e, ERR_SYSTEM, "out of memory");
    }
    if (dir == NULL)
        return 0; /* measure only, write nothing */
    m->timeline = metrics_open(dir, "timeline.csv", e);
    if (m->timeline == NULL) {
        metrics_close(m, NULL);
        return -1;
    }
    fputs("time_s,arrivals,completed,rejected,timed_out,queue_len,running,replicas_desired,replicas_ready,"
          "kv_util,busy_frac,cost_usd,ttft_p50_s,ttft_p99_s,cold_starts,nodes",
          m->timeline);
    {
        size_t i;
        for (i = 0; i < sc->npools; i++)
            fprintf(m->timeline, ",nodes_%s", sc->pools[i].name);
        fputc('\n', m->timeline);
    }
    if (requests_csv) {
        m->requests = metrics_open(dir, "requests.csv", e);
        if (m->requests == NULL) {
            metrics_close(m, NULL);
            return -1;
        }
        fputs("id,arrival_s,prompt_tokens,output_tokens,outcome,replica,queue_s,ttft_s,tpot_s,e2e_s,preemptions\n",
              m->requests);
    }
    return 0;
}

static int metrics_fclose(FILE *f)
{
    int bad;

    if (f == NULL)
        return 0;
    bad = ferror(f);
    return (fclose(f) != 0 || bad) ? -1 : 0;
}

int metrics_close(struct metrics *m, struct err *e)
{
    int rc = 0;

    if (metrics_fclose(m->timeline) < 0)
        rc = err_set(e, ERR_SYSTEM, "writing timeline.csv failed");
    if (metrics_fclose(m->requests) < 0)
        rc = err_set(e, ERR_SYSTEM, "writing requests.csv failed");
    m->timeline = m->requests = NULL;
    hist_free(m->queue);
    hist_free(m->ttft);
    hist_free(m->tpot);
    hist_free(m->e2e);
    hist_free(m->iv_ttft);
    m->queue = m->ttft = m->tpot = m->e2e = m->iv_ttft = NULL;
    return rc;
}

void metrics_arrival(struct metrics *m, uint32_t prompt_tokens)
{
    m->arrived++;
    m->iv_arrivals++;
    m->prompt_tokens += prompt_tokens;
}

void metrics_first_token(struct metrics *m, double ttft_s)
{
    hist_add(m->iv_ttft, ttft_s);
}

void metrics_done(struct metrics *m, const struct request_times *t)
{
    const struct scenario *sc = m->sc;
    double queue = t->start_s - t->arrival_s;
    double ttft = t->first_token_s - t->arrival_s;
    double e2e = t->finish_s - t->arrival_s;
    double tpot = t->output_tokens > 1 ? (t->finish_s - t->first_token_s) / (t->output_tokens - 1) : 0.0;
    bool good = true;

    m->completed++;
    m->iv_completed++;
    m->output_tokens += t->output_tokens;
    hist_add(m->queue, queue);
    hist_add(m->ttft, ttft);
    hist_add(m->e2e, e2e);
    /* Time per output token only where tokens are generated one by one: not
     * for a cached answer (it comes whole), nor when each request is served
     * whole (service kinds exponential and deterministic). */
    if (t->output_tokens > 1 && t->replica >= 0 && sc->service == SERVICE_PROFILE)
        hist_add(m->tpot, tpot);
    if (sc->slo_ttft_s > 0 && ttft > sc->slo_ttft_s)
        good = false;
    if (sc->slo_e2e_s > 0 && e2e > sc->slo_e2e_s)
        good = false;
    if (sc->slo_tpot_s > 0 && t->output_tokens > 1 && tpot > sc->slo_tpot_s)
        good = false;
    if (good)
        m->slo_good++;
    if (m->requests)
        fprintf(m->requests, "%llu,%.6f,%u,%u,completed,%d,%.6f,%.6f,%.6f,%.6f,%u\n", (unsigned long long)t->id,
                t->arrival_s, t->prompt_tokens, t->output_tokens, t->replica, queue, ttft, tpot, e2e,
                t->preemptions);
}

void metrics_dropped(struct metrics *m, enum request_outcome why, uint64_t id, double arrival_s, double now_s)
{
    if (why == OUTCOME_REJECTED) {
        m->rejected++;
        m->iv_rejected++;
    } else {
        m->timed_out++;
        m->iv_timed_out++;
    }
    if (m->requests)
        fprintf(m->requests, "%llu,%.6f,,,%s,,%.6f,,,,\n", (unsigned long long)id, arrival_s,
                why == OUTCOME_REJECTED ? "rejected" : "timed_out", now_s - arrival_s);
}

void metrics_timeline_row(struct metrics *m, double t_start_s, const struct timeline_sample *s)
{
    if (m->timeline == NULL)
        goto reset;
    fprintf(m->timeline, "%.3f,%llu,%llu,%llu,%llu,%ld,%ld,%d,%d,%.4f,%.4f,%.4f,", t_start_s,
            (unsigned long long)m->iv_arrivals, (unsigned long long)m->iv_completed,
            (unsigned long long)m->iv_rejected, (unsigned long long)m->iv_timed_out, s->queue_len, s->running,
            s->replicas_desired, s->replicas_ready, s->kv_util, s->busy_frac, s->cost_usd);
    if (hist_count(m->iv_ttft) > 0)
        fprintf(m->timeline, "%.6f,%.6f,", hist_quantile(m->iv_ttft, 0.5), hist_quantile(m->iv_ttft, 0.99));
    else
        fputs(",,", m->timeline);
    fprintf(m->timeline, "%llu,%d", s->cold_starts - m->last_cold_starts, s->nodes);
    m->last_cold_starts = s->cold_starts;
    {
        size_t i;
        for (i = 0; i < m->sc->npools; i++)
            fprintf(m->timeline, ",%d", s->pool_nodes ? s->pool_nodes[i] : 0);
        fputc('\n', m->timeline);
    }
reset:
    m->iv_arrivals = m->iv_completed = m->iv_rejected = m->iv_timed_out = 0;
    hist_reset(m->iv_ttft);
}

double metrics_slo_attainment(const struct metrics *m)
{
    return m->arrived ? (double)m->slo_good / (double)m->arrived : 1.0;
}

static json_t *metrics_real(double v)
{
    return json_real(isfinite(v) ? v : 0.0);
}

json_t *metrics_latency_json(const struct hist *h)
{
    return json_pack("{s:o,s:o,s:o,s:o,s:o}", "mean", metrics_real(hist_mean(h)), "p50",
                     metrics_real(hist_quantile(h, 0.5)), "p90", metrics_real(hist_quantile(h, 0.9)), "p99",
                     metrics_real(hist_quantile(h, 0.99)), "max", metrics_real(hist_max(h)));
}

int metrics_write_cdf(const struct metrics *m, const char *dir, struct err *e)
{
    const struct {
        const char *name;
        const struct hist *h;
    } series[] = {{"queue", m->queue}, {"ttft", m->ttft}, {"tpot", m->tpot}, {"e2e", m->e2e}};
    FILE *f = metrics_open(dir, "latency_cdf.csv", e);
    size_t i;

    if (f == NULL)
        return -1;
    fputs("metric,latency_s,cdf\n", f);
    for (i = 0; i < sizeof(series) / sizeof(series[0]); i++) {
        size_t idx = 0;
        uint64_t count, seen = 0, n = hist_count(series[i].h);
        double v;
        while (hist_next_bucket(series[i].h, &idx, &v, &count)) {
            seen += count;
            fprintf(f, "%s,%.6g,%.6f\n", series[i].name, v, (double)seen / (double)n);
        }
    }
    if (metrics_fclose(f) < 0)
        return err_set(e, ERR_SYSTEM, "%s/latency_cdf.csv: write failed", dir);
    return 0;
}
