/* generator.c -- synthetic arrival processes behind the trace_reader
 * interface: poisson, diurnal (a sinusoidal rate by thinning a Poisson
 * process at the peak rate) and bursty (a two-state Markov-modulated
 * Poisson process; rate_low 0 makes it on/off).  Token lengths come from
 * lengths.c; the optional repeat model gives prompts an identity.  Every
 * random choice draws from its own RNG stream (rng.h), so a seed fixes the
 * whole sequence and changing one part's draws never shifts another's. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "workloads/lengths.h"
#include "workloads/trace.h"
#include "workloads/trace_format.h"

#define GEN_MAX_RATE 1e6      /* requests per second */
#define GEN_MAX_REPEAT_KEYS 1000000

enum gen_kind { GEN_POISSON, GEN_DIURNAL, GEN_BURSTY };

static const char *const gen_kinds[] = {"poisson", "diurnal", "bursty", NULL};

struct gen {
    enum gen_kind kind;
    double duration_s;   /* 0: unbounded */
    double rate;         /* poisson: the rate; diurnal: the mean rate (req/s) */
    double amplitude;    /* diurnal: relative swing in [0, 1] */
    double period_s;     /* diurnal: default one day */
    double phase_s;      /* diurnal: time of the first peak */
    double rate_low, rate_high;     /* bursty, req/s */
    double mean_low_s, mean_high_s; /* bursty: mean time in each state */
    bool high;           /* bursty: current state */
    double state_end_s;  /* bursty: when the current state ends */
    double t_s;          /* last arrival */
    bool done;
    uint64_t seed;
    struct rng arrivals, prompt_rng, output_rng, burst, identity;
    struct lengths *prompt_len, *output_len;
    double repeat_fraction; /* share of requests that repeat a popular prompt */
    uint32_t repeat_keys;
    double *zipf_cdf;       /* repeat_keys entries, last = 1 */
};

/* A positive rate KEY (req/s) of SPEC; REQUIRED says whether it may be
 * absent (then *out is untouched). */
static int gen_get_rate(const struct conf *c, const struct conf_node *spec, const char *key, bool required,
                        bool allow_zero, double *out, struct err *e)
{
    int rc = conf_get_nonneg(c, spec, key, out, e);

    if (rc < 0)
        return -1;
    if (rc == 0) {
        if (required)
            return conf_error(c, spec, e, "%s: required (requests per second)", key);
        return 0;
    }
    if ((*out == 0 && !allow_zero) || *out > GEN_MAX_RATE)
        return conf_error(c, conf_get(spec, key), e, "%s: expected a rate in (0, %g] requests per second, got %g",
                          key, GEN_MAX_RATE, *out);
    return 1;
}

/* A positive duration KEY of SPEC, required when REQUIRED. */
static int gen_get_positive_duration(const struct conf *c, const struct conf_node *spec, const char *key,
                                     bool required, double *out_s, struct err *e)
{
    int rc = conf_get_duration(c, spec, key, out_s, e);

    if (rc < 0)
        return -1;
    if (rc == 0 && required)
        return conf_error(c, spec, e, "%s: required (a duration such as 30s, 5m, 1h)", key);
    if (rc == 1 && *out_s <= 0)
        return conf_error(c, conf_get(spec, key), e, "%s: must be positive", key);
    return rc;
}

/* Read repeat: {fraction, zipf_s, keys} and build the Zipf CDF. */
static int gen_load_repeat(struct gen *g, const struct conf *c, const struct conf_node *n, struct err *e)
{
    static const char *const keys[] = {"fraction", "zipf_s", "keys", NULL};
    double zipf_s = 1.0, sum = 0;
    long nkeys = 1000;
    uint32_t i;

    if (conf_check_keys(c, n, "repeat", keys, e) < 0 || conf_get_nonneg(c, n, "fraction", &g->repeat_fraction, e) < 0 ||
        conf_get_nonneg(c, n, "zipf_s", &zipf_s, e) < 0 || conf_get_long(c, n, "keys", &nkeys, e) < 0)
        return -1;
    if (conf_get(n, "fraction") == NULL)
        return conf_error(c, n, e, "repeat: 'fraction' is required");
    if (g->repeat_fraction > 1)
        return conf_error(c, conf_get(n, "fraction"), e, "fraction: expected a share in [0, 1], got %g",
                          g->repeat_fraction);
    if (nkeys < 1 || nkeys > GEN_MAX_REPEAT_KEYS)
        return conf_error(c, conf_get(n, "keys"), e, "keys: expected 1 to %d, got %ld", GEN_MAX_REPEAT_KEYS, nkeys);
    if (zipf_s > 10)
        return conf_error(c, conf_get(n, "zipf_s"), e, "zipf_s: expected an exponent in [0, 10], got %g", zipf_s);
    g->repeat_keys = (uint32_t)nkeys;
    g->zipf_cdf = malloc(sizeof(*g->zipf_cdf) * g->repeat_keys);
    if (g->zipf_cdf == NULL)
        return err_set(e, ERR_SYSTEM, "out of memory");
    for (i = 0; i < g->repeat_keys; i++) {
        sum += pow((double)(i + 1), -zipf_s);
        g->zipf_cdf[i] = sum;
    }
    for (i = 0; i < g->repeat_keys; i++)
        g->zipf_cdf[i] /= sum;
    g->zipf_cdf[g->repeat_keys - 1] = 1.0;
    return 0;
}

static void gen_free(void *state)
{
    struct gen *g = state;

    if (g == NULL)
        return;
    lengths_free(g->prompt_len);
    lengths_free(g->output_len);
    free(g->zipf_cdf);
    free(g);
}

/* Parse SPEC into a new generator state; NULL on error. */
static struct gen *gen_parse(const struct conf *c, const struct conf_node *spec, uint64_t seed,
                             bool allow_unbounded, struct err *e)
{
    static const char *const keys_poisson[] = {"kind", "duration", "prompt_tokens", "output_tokens", "repeat",
                                               "rate", NULL};
    static const char *const keys_diurnal[] = {"kind", "duration", "prompt_tokens", "output_tokens", "repeat",
                                               "rate", "amplitude", "period", "phase", NULL};
    static const char *const keys_bursty[] = {"kind", "duration", "prompt_tokens", "output_tokens", "repeat",
                                              "rate_low", "rate_high", "mean_low", "mean_high", NULL};
    static const char *const *const keys[] = {keys_poisson, keys_diurnal, keys_bursty};
    struct conf_node *repeat = NULL;
    struct gen *g = NULL;
    int kind = 0;
    char section[64];

    if (!conf_is_map(spec)) {
        conf_error(c, spec, e, "generator: expected a mapping {kind: poisson|diurnal|bursty, ...}");
        return NULL;
    }
    if (conf_get_enum(c, spec, "kind", gen_kinds, &kind, e) < 0)
        return NULL;
    if (conf_get(spec, "kind") == NULL) {
        conf_error(c, spec, e, "generator: 'kind' is required (poisson, diurnal or bursty)");
        return NULL;
    }
    snprintf(section, sizeof(section), "generator (%s)", gen_kinds[kind]);
    if (conf_check_keys(c, spec, section, keys[kind], e) < 0)
        return NULL;
    g = calloc(1, sizeof(*g));
    if (g == NULL) {
        err_set(e, ERR_SYSTEM, "out of memory");
        return NULL;
    }
    g->kind = (enum gen_kind)kind;
    g->seed = seed;
    g->period_s = 86400;
    if (gen_get_positive_duration(c, spec, "duration", !allow_unbounded, &g->duration_s, e) < 0)
        goto err;
    switch (g->kind) {
    case GEN_POISSON:
        if (gen_get_rate(c, spec, "rate", true, false, &g->rate, e) < 0)
            goto err;
        break;
    case GEN_DIURNAL:
        if (gen_get_rate(c, spec, "rate", true, false, &g->rate, e) < 0 ||
            conf_get_nonneg(c, spec, "amplitude", &g->amplitude, e) < 0 ||
            gen_get_positive_duration(c, spec, "period", false, &g->period_s, e) < 0 ||
            conf_get_duration(c, spec, "phase", &g->phase_s, e) < 0)
            goto err;
        if (g->amplitude > 1) {
            conf_error(c, conf_get(spec, "amplitude"), e, "amplitude: expected a value in [0, 1], got %g",
                       g->amplitude);
            goto err;
        }
        break;
    case GEN_BURSTY:
        if (gen_get_rate(c, spec, "rate_low", false, true, &g->rate_low, e) < 0 ||
            gen_get_rate(c, spec, "rate_high", true, false, &g->rate_high, e) < 0 ||
            gen_get_positive_duration(c, spec, "mean_low", true, &g->mean_low_s, e) < 0 ||
            gen_get_positive_duration(c, spec, "mean_high", true, &g->mean_high_s, e) < 0)
            goto err;
        break;
    }
    g->prompt_len = lengths_open(c, conf_get(spec, "prompt_tokens"), "prompt_tokens", 512, e);
    if (g->prompt_len == NULL)
        goto err;
    g->output_len = lengths_open(c, conf_get(spec, "output_tokens"), "output_tokens", 128, e);
    if (g->output_len == NULL)
        goto err;
    if (conf_get_map(c, spec, "repeat", &repeat, e) < 0)
        goto err;
    if (repeat != NULL && gen_load_repeat(g, c, repeat, e) < 0)
        goto err;
    rng_init(&g->arrivals, seed, RNG_STREAM_ARRIVALS);
    rng_init(&g->prompt_rng, seed, RNG_STREAM_PROMPT_LEN);
    rng_init(&g->output_rng, seed, RNG_STREAM_OUTPUT_LEN);
    rng_init(&g->burst, seed, RNG_STREAM_BURST);
    rng_init(&g->identity, seed, RNG_STREAM_IDENTITY);
    if (g->kind == GEN_BURSTY) { /* start in the stationary distribution */
        g->high = rng_uniform(&g->burst) < g->mean_high_s / (g->mean_low_s + g->mean_high_s);
        g->state_end_s = rng_exp(&g->burst, g->high ? g->mean_high_s : g->mean_low_s);
    }
    return g;
err:
    gen_free(g);
    return NULL;
}

/* The diurnal rate at time T: mean * (1 + amplitude cos(2 pi (t - phase) / period)). */
static double gen_diurnal_rate(const struct gen *g, double t_s)
{
    return g->rate * (1 + g->amplitude * cos(2 * M_PI * (t_s - g->phase_s) / g->period_s));
}

/* Advance g->t_s to the next arrival. */
static void gen_advance(struct gen *g)
{
    double peak, rate, candidate;

    switch (g->kind) {
    case GEN_POISSON:
        g->t_s += rng_exp(&g->arrivals, 1 / g->rate);
        break;
    case GEN_DIURNAL: /* thinning (Lewis and Shedler) at the peak rate */
        peak = g->rate * (1 + g->amplitude);
        do {
            g->t_s += rng_exp(&g->arrivals, 1 / peak);
            if (g->duration_s > 0 && g->t_s > g->duration_s)
                return;
        } while (rng_uniform(&g->arrivals) * peak > gen_diurnal_rate(g, g->t_s));
        break;
    case GEN_BURSTY: /* memoryless: restart the exponential at each switch */
        for (;;) {
            rate = g->high ? g->rate_high : g->rate_low;
            candidate = rate > 0 ? g->t_s + rng_exp(&g->arrivals, 1 / rate) : INFINITY;
            if (candidate <= g->state_end_s) {
                g->t_s = candidate;
                return;
            }
            g->t_s = g->state_end_s;
            if (g->duration_s > 0 && g->t_s > g->duration_s)
                return;
            g->high = !g->high;
            g->state_end_s = g->t_s + rng_exp(&g->burst, g->high ? g->mean_high_s : g->mean_low_s);
        }
    }
}

/* Fill identity and lengths of OUT.  A repeated prompt's lengths are drawn
 * from a generator seeded by its key, so every repeat has the same size. */
static void gen_fill(struct gen *g, struct trace_request *out)
{
    if (g->repeat_keys > 0 && rng_uniform(&g->identity) < g->repeat_fraction) {
        double u = rng_uniform(&g->identity);
        size_t lo = 0, hi = g->repeat_keys - 1;
        struct rng key_rng;

        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;

            if (g->zipf_cdf[mid] >= u)
                hi = mid;
            else
                lo = mid + 1;
        }
        out->prompt_hash = trace_hash_final(trace_hash_id_step(g->seed, lo));
        /* A generator of its own per key, seeded by the key's hash: stream 0,
         * since jumping to another stream costs thousands of draws and this
         * runs for every repeated request. */
        rng_init(&key_rng, out->prompt_hash, 0);
        out->prompt_tokens = lengths_draw(g->prompt_len, &key_rng);
        out->output_tokens = lengths_draw(g->output_len, &key_rng);
        return;
    }
    if (g->repeat_keys > 0)
        out->prompt_hash = trace_hash_final(rng_u64(&g->identity));
    out->prompt_tokens = lengths_draw(g->prompt_len, &g->prompt_rng);
    out->output_tokens = lengths_draw(g->output_len, &g->output_rng);
}

static int gen_next(void *state, struct linereader *lr, struct trace_request *out, struct err *e)
{
    struct gen *g = state;

    if (g->done)
        return 0;
    gen_advance(g);
    if (g->duration_s > 0 && g->t_s > g->duration_s) {
        g->done = true;
        return 0;
    }
    memset(out, 0, sizeof(*out));
    out->arrival_s = g->t_s;
    gen_fill(g, out);
    return 1;
}

static double gen_progress(const void *state)
{
    const struct gen *g = state;

    if (g->done)
        return 1;
    if (g->duration_s <= 0)
        return -1;
    return g->t_s < g->duration_s ? g->t_s / g->duration_s : 1;
}

const struct trace_format trace_format_generator = {
    .name = "generator",
    .detect = NULL,
    .open = NULL,
    .next = gen_next,
    .progress = gen_progress,
    .close = gen_free,
};

struct trace_reader *gen_open(const struct conf *c, const struct conf_node *spec, uint64_t seed,
                              bool allow_unbounded, const struct trace_options *opt, struct err *e)
{
    struct gen *g = gen_parse(c, spec, seed, allow_unbounded, e);

    if (g == NULL)
        return NULL;
    return trace_reader_wrap(&trace_format_generator, g, NULL, opt, e);
}

struct trace_reader *trace_open_generator(const struct conf *c, const struct conf_node *spec, uint64_t seed,
                                          struct err *e)
{
    return gen_open(c, spec, seed, false, NULL, e);
}
