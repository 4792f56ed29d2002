/* tune_space.c -- the scenario's tune section: objective, constraints and
 * the search space, checked against the scenario before anything runs. */
#include "sim/tune_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "sim/scenario.h"

const char *const tune_metric_names[TM_N] = {
    "cost_usd",   "slo_attainment", "ttft_p50_s", "ttft_p90_s", "ttft_p99_s", "tpot_p50_s", "tpot_p90_s",
    "tpot_p99_s", "e2e_p50_s",      "e2e_p90_s",  "e2e_p99_s",  "failed_fraction", "replicas_mean", "gpu_hours",
    "arrived",
};

/* A scalar as a number: a plain number, or a duration in seconds. */
static int tune_node_number(const struct conf *c, const struct conf_node *n, const char *what, double *out,
                            struct err *e)
{
    const char *text;
    char *end;
    struct err sub = {0};

    if (conf_node_str(c, n, what, &text, e) < 0)
        return -1;
    errno = 0;
    *out = strtod(text, &end);
    if (*text != '\0' && *end == '\0' && errno == 0 && isfinite(*out))
        return 0;
    if (duration_parse(text, out, &sub) == 0)
        return 0;
    return conf_error(c, n, e, "%s: expected a number or a duration, got '%s'", what, text);
}

/* The YAML text that conf_set reads back as TEXT: plain when it is a plain
 * word or number, double-quoted otherwise. */
static int tune_yaml_text(const char *text, char *buf, size_t len)
{
    const char *p;
    size_t n = 0;
    bool plain = *text != '\0';

    for (p = text; *p && plain; p++)
        plain = isalnum((unsigned char)*p) || strchr("._+-", *p) != NULL;
    if (plain) {
        if (strlen(text) >= len)
            return -1;
        memcpy(buf, text, strlen(text) + 1);
        return 0;
    }
    if (len < 3)
        return -1;
    buf[n++] = '"';
    for (p = text; *p; p++) {
        if ((unsigned char)*p < 0x20)
            return -1; /* control characters: not a knob value */
        if (n + 3 >= len)
            return -1;
        if (*p == '"' || *p == '\\')
            buf[n++] = '\\';
        buf[n++] = *p;
    }
    buf[n++] = '"';
    buf[n] = '\0';
    return 0;
}

static int tune_knob_add(struct tune_knob *k, const char *yaml, double numeric, struct err *e)
{
    char **v;
    double *d;

    if (k->nvalues >= TUNE_MAX_VALUES)
        return err_set(e, ERR_INPUT, "%s: more than %d values", k->where, TUNE_MAX_VALUES);
    v = realloc(k->values, (k->nvalues + 1) * sizeof(*v));
    if (v == NULL)
        return err_set(e, ERR_SYSTEM, "out of memory");
    k->values = v;
    d = realloc(k->numeric, (k->nvalues + 1) * sizeof(*d));
    if (d == NULL)
        return err_set(e, ERR_SYSTEM, "out of memory");
    k->numeric = d;
    v[k->nvalues] = strdup(yaml);
    if (v[k->nvalues] == NULL)
        return err_set(e, ERR_SYSTEM, "out of memory");
    d[k->nvalues++] = numeric;
    return 0;
}

/* A generated number as value text: integers without a fraction. */
static int tune_knob_add_number(struct tune_knob *k, double v, struct err *e)
{
    char buf[64];

    if (fabs(v - nearbyint(v)) < 1e-9 * fmax(1.0, fabs(v)) && fabs(v) < 1e15)
        snprintf(buf, sizeof(buf), "%.0f", nearbyint(v) == 0 ? 0.0 : nearbyint(v));
    else
        snprintf(buf, sizeof(buf), "%.6g", v);
    return tune_knob_add(k, buf, strtod(buf, NULL), e);
}

static int tune_read_bounds(const struct conf *c, struct conf_node *seq, const char *what, double b[2],
                            bool *integral, struct err *e)
{
    char sub[64];
    int i;

    if (!conf_is_seq(seq) || conf_seq_len(seq) != 2)
        return conf_error(c, seq, e, "%s: expected [LOW, HIGH]", what);
    *integral = true;
    for (i = 0; i < 2; i++) {
        const char *text;
        snprintf(sub, sizeof(sub), "%s[%d]", what, i);
        if (tune_node_number(c, conf_seq_at(seq, (size_t)i), sub, &b[i], e) < 0)
            return -1;
        conf_node_str(c, conf_seq_at(seq, (size_t)i), sub, &text, e);
        if (strspn(text, "0123456789-+") != strlen(text))
            *integral = false;
    }
    if (b[1] < b[0])
        return conf_error(c, seq, e, "%s: HIGH %g is below LOW %g", what, b[1], b[0]);
    return 0;
}

static int tune_read_knob(const struct conf *cf, struct conf *doc, struct conf_node *item, size_t idx,
                          struct tune_knob *k, struct err *e)
{
    static const char *const keys[] = {"key", "values", "range", "step", "log_range", "points", NULL};
    struct conf_node *values = conf_get(item, "values"), *range = conf_get(item, "range"),
                     *logr = conf_get(item, "log_range"), *target;
    const char *key = NULL, *base;
    char what[64];
    size_t i, kinds = (values != NULL) + (range != NULL) + (logr != NULL);

    conf_where(cf, item, k->where, sizeof(k->where));
    snprintf(what, sizeof(what), "tune.space[%zu]", idx);
    {
        size_t n = strlen(k->where);
        snprintf(k->where + n, sizeof(k->where) - n, ": %s", what);
    }
    if (!conf_is_map(item))
        return conf_error(cf, item, e, "%s: expected {key: PATH, values: [...]} (or range/log_range)", what);
    if (conf_check_keys(cf, item, what, keys, e) < 0 || conf_get_str(cf, item, "key", &key, e) < 0)
        return -1;
    if (key == NULL)
        return conf_error(cf, item, e, "%s: missing 'key' (a scenario key such as autoscaler.hpa.minReplicas)", what);
    if (strlen(key) >= sizeof(k->key) || strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                     "0123456789_.[]-") != strlen(key))
        return conf_error(cf, conf_get(item, "key"), e, "%s.key: '%.100s' is not a key path (a.b[0].c)", what, key);
    if (strcmp(key, "seed") == 0 || strncmp(key, "tune", 4) == 0 || strncmp(key, "output", 6) == 0)
        return conf_error(cf, conf_get(item, "key"), e, "%s.key: '%s' cannot be tuned (seeds: tune.seeds)", what,
                          key);
    snprintf(k->key, sizeof(k->key), "%s", key);
    target = conf_lookup(doc, key);
    if (target == NULL)
        return conf_error(cf, conf_get(item, "key"), e,
                          "%s.key: '%s' is not in the scenario (tune a key the scenario sets, with its starting "
                          "value)", what, key);
    if (!conf_is_scalar(target))
        return conf_error(cf, conf_get(item, "key"), e, "%s.key: '%s' is a %s in the scenario; tune a single value",
                          what, key, conf_is_map(target) ? "mapping" : "list");
    if (conf_node_str(doc, target, key, &base, e) < 0)
        return -1;
    snprintf(k->baseline, sizeof(k->baseline), "%s", base);
    if (kinds != 1)
        return conf_error(cf, item, e, "%s: give exactly one of values, range (with step), log_range (with points)",
                          what);
    if (conf_get(item, "step") != NULL && range == NULL)
        return conf_error(cf, conf_get(item, "step"), e, "%s.step: only with range", what);
    if (conf_get(item, "points") != NULL && logr == NULL)
        return conf_error(cf, conf_get(item, "points"), e, "%s.points: only with log_range", what);
    if (values != NULL) {
        if (!conf_is_seq(values) || conf_seq_len(values) == 0)
            return conf_error(cf, values, e, "%s.values: expected a non-empty list", what);
        for (i = 0; i < conf_seq_len(values); i++) {
            struct conf_node *v = conf_seq_at(values, i);
            const char *text;
            char sub[96], yaml[TUNE_VALUE_MAX];
            double num = NAN;
            struct err ignore = {0};
            size_t j;

            snprintf(sub, sizeof(sub), "%s.values[%zu]", what, i);
            if (!conf_is_scalar(v))
                return conf_error(cf, v, e, "%s: expected a single value, not a %s", sub,
                                  conf_is_map(v) ? "mapping" : "list");
            if (conf_node_str(cf, v, sub, &text, e) < 0)
                return -1;
            if (tune_yaml_text(text, yaml, sizeof(yaml)) < 0)
                return conf_error(cf, v, e, "%s: value too long or holds control characters", sub);
            for (j = 0; j < k->nvalues; j++)
                if (strcmp(k->values[j], yaml) == 0)
                    return conf_error(cf, v, e, "%s: '%s' is listed twice", sub, text);
            tune_node_number(cf, v, sub, &num, &ignore);
            if (tune_knob_add(k, yaml, num, e) < 0)
                return -1;
        }
        return 0;
    }
    if (range != NULL) {
        double b[2], step = 0, v;
        bool integral;
        struct conf_node *sn = conf_get(item, "step");
        long n;

        if (tune_read_bounds(cf, range, "range", b, &integral, e) < 0)
            return err_prefix(e, "%s", what);
        if (sn == NULL)
            return conf_error(cf, item, e, "%s: range needs a step", what);
        if (tune_node_number(cf, sn, "step", &step, e) < 0)
            return err_prefix(e, "%s", what);
        if (!(step > 0))
            return conf_error(cf, sn, e, "%s.step: must be above 0", what);
        if ((b[1] - b[0]) / step + 1 > TUNE_MAX_VALUES)
            return conf_error(cf, range, e, "%s.range: over %d values with this step", what, TUNE_MAX_VALUES);
        n = (long)floor((b[1] - b[0]) / step + 1e-9) + 1;
        for (i = 0; i < (size_t)n; i++) {
            v = b[0] + (double)i * step;
            if (tune_knob_add_number(k, v, e) < 0)
                return -1;
        }
        return 0;
    }
    {
        double b[2], pts = 0;
        bool integral;
        struct conf_node *pn = conf_get(item, "points");

        if (tune_read_bounds(cf, logr, "log_range", b, &integral, e) < 0)
            return err_prefix(e, "%s", what);
        if (!(b[0] > 0))
            return conf_error(cf, logr, e, "%s.log_range: LOW must be above 0", what);
        if (pn == NULL)
            return conf_error(cf, item, e, "%s: log_range needs points", what);
        if (conf_node_double(cf, pn, "points", &pts, e) < 0)
            return err_prefix(e, "%s", what);
        if (!(pts >= 2 && pts <= TUNE_MAX_VALUES) || pts != floor(pts))
            return conf_error(cf, pn, e, "%s.points: expected an integer from 2 to %d", what, TUNE_MAX_VALUES);
        for (i = 0; i < (size_t)pts; i++) {
            double v = b[0] * pow(b[1] / b[0], (double)i / (pts - 1));
            if (integral)
                v = nearbyint(v);
            if (k->nvalues > 0 && k->numeric[k->nvalues - 1] == v)
                continue; /* rounding made two points one */
            if (tune_knob_add_number(k, v, e) < 0)
                return -1;
        }
        return 0;
    }
}

static int tune_read_latency(const struct conf *c, struct conf_node *slo, const char *name, enum tune_metric p50,
                             struct tune_spec *spec, struct err *e)
{
    static const char *const keys[] = {"p50", "p90", "p99", NULL};
    struct conf_node *m = NULL;
    char what[64];
    int i;

    snprintf(what, sizeof(what), "tune.constraints.slo.%s", name);
    if (conf_get_map(c, slo, name, &m, e) < 0)
        return -1;
    if (m == NULL)
        return 0;
    if (conf_check_keys(c, m, what, keys, e) < 0)
        return -1;
    for (i = 0; i < 3; i++) {
        double v;
        int rc = conf_get_duration(c, m, keys[i], &v, e);
        if (rc < 0)
            return -1;
        if (rc == 0)
            continue;
        spec->limits[spec->nlimits].metric = (enum tune_metric)(p50 + i);
        spec->limits[spec->nlimits++].max_s = v;
    }
    return 0;
}

static int tune_read_constraints(const struct conf *c, struct conf_node *map, const struct scenario *sc,
                                 struct tune_spec *spec, struct err *e)
{
    static const char *const keys[] = {"slo", "max_rejected_fraction", NULL};
    static const char *const slo_keys[] = {"ttft", "tpot", "e2e", "attainment", NULL};
    struct conf_node *slo = NULL;
    bool has_slo = sc->slo_ttft_s > 0 || sc->slo_tpot_s > 0 || sc->slo_e2e_s > 0;

    spec->attainment = has_slo ? sc->slo_target : 0.0;
    spec->max_failed = 1.0;
    if (map == NULL)
        return 0;
    if (conf_check_keys(c, map, "tune.constraints", keys, e) < 0 || conf_get_map(c, map, "slo", &slo, e) < 0 ||
        conf_get_double(c, map, "max_rejected_fraction", &spec->max_failed, e) < 0)
        return -1;
    if (!(spec->max_failed >= 0 && spec->max_failed <= 1))
        return conf_error(c, conf_get(map, "max_rejected_fraction"), e,
                          "tune.constraints.max_rejected_fraction: expected 0..1");
    if (slo == NULL)
        return 0;
    if (conf_check_keys(c, slo, "tune.constraints.slo", slo_keys, e) < 0 ||
        tune_read_latency(c, slo, "ttft", TM_TTFT_P50, spec, e) < 0 ||
        tune_read_latency(c, slo, "tpot", TM_TPOT_P50, spec, e) < 0 ||
        tune_read_latency(c, slo, "e2e", TM_E2E_P50, spec, e) < 0 ||
        conf_get_double(c, slo, "attainment", &spec->attainment, e) < 0)
        return -1;
    if (!(spec->attainment >= 0 && spec->attainment <= 1))
        return conf_error(c, conf_get(slo, "attainment"), e, "tune.constraints.slo.attainment: expected 0..1");
    if (spec->attainment > 0 && !has_slo)
        return conf_error(c, conf_get(slo, "attainment"), e,
                          "tune.constraints.slo.attainment: the scenario has no slo targets (slo.ttft, tpot, e2e) "
                          "to attain");
    return 0;
}

/* Build the scenario with one knob at each of its values. */
static int tune_check_values(const char *path, char *const *sets, int nsets, const struct tune_knob *k,
                             struct err *e)
{
    char **all = calloc((size_t)nsets + 1, sizeof(*all));
    size_t i;
    int rc = 0;

    if (all == NULL)
        return err_set(e, ERR_SYSTEM, "out of memory");
    if (nsets > 0)
        memcpy(all, sets, (size_t)nsets * sizeof(*all));
    for (i = 0; i < k->nvalues && rc == 0; i++) {
        char set[TUNE_KEY_MAX + TUNE_VALUE_MAX + 2];
        struct scenario *sc;

        snprintf(set, sizeof(set), "%s=%s", k->key, k->values[i]);
        all[nsets] = set;
        sc = scenario_load(path, all, nsets + 1, e);
        if (sc == NULL)
            rc = err_prefix(e, "%s: value %s", k->where, k->values[i]);
        scenario_free(sc);
    }
    free(all);
    return rc;
}

int tune_spec_load(const char *path, char *const *sets, int nsets, struct tune_spec *spec, struct err *e)
{
    static const char *const keys[] = {"objective", "budget_usd", "constraints", "space", "seeds", "method",
                                       "budget", NULL};
    static const char *const objectives[] = {"min_cost", "max_attainment", NULL};
    static const char *const methods[] = {"auto", "grid", "halving", NULL};
    struct scenario *sc;
    struct conf *c;
    struct conf_node *tune = NULL, *cons = NULL, *space = NULL;
    int objective = 0, method = 0, rc = -1;
    long seeds = 1, budget = 500;
    size_t i, j;

    memset(spec, 0, sizeof(*spec));
    sc = scenario_load(path, sets, nsets, e);
    if (sc == NULL)
        return -1;
    c = sc->conf;
    if (conf_get_map(c, conf_root(c), "tune", &tune, e) < 0)
        goto out;
    if (tune == NULL) {
        err_at(e, path, 0, "no 'tune' section (objective, constraints, space: see llmsim tune --help)");
        goto out;
    }
    if (conf_check_keys(c, tune, "tune", keys, e) < 0 ||
        conf_get_enum(c, tune, "objective", objectives, &objective, e) < 0 ||
        conf_get_enum(c, tune, "method", methods, &method, e) < 0 || conf_get_long(c, tune, "seeds", &seeds, e) < 0 ||
        conf_get_long(c, tune, "budget", &budget, e) < 0 || conf_get_map(c, tune, "constraints", &cons, e) < 0 ||
        conf_get_seq(c, tune, "space", &space, e) < 0)
        goto out;
    spec->objective = (enum tune_objective)objective;
    spec->method = (enum tune_method)method;
    if (seeds < 1 || seeds > TUNE_MAX_SEEDS) {
        conf_error(c, conf_get(tune, "seeds"), e, "tune.seeds: expected 1..%d, got %ld", TUNE_MAX_SEEDS, seeds);
        goto out;
    }
    spec->seeds = (int)seeds;
    if (budget < 1) {
        conf_error(c, conf_get(tune, "budget"), e, "tune.budget: expected a positive number of simulations");
        goto out;
    }
    spec->budget = budget;
    if (tune_read_constraints(c, cons, sc, spec, e) < 0)
        goto out;
    if (spec->objective == TUNE_MAX_ATTAINMENT) {
        int got = conf_get_nonneg(c, tune, "budget_usd", &spec->budget_usd, e);
        if (got < 0)
            goto out;
        if (got == 0 || !(spec->budget_usd > 0)) {
            conf_error(c, got ? conf_get(tune, "budget_usd") : tune, e,
                       "tune.budget_usd: max_attainment needs a cost budget above 0 (USD)");
            goto out;
        }
    } else if (conf_get(tune, "budget_usd") != NULL) {
        conf_error(c, conf_get(tune, "budget_usd"), e, "tune.budget_usd: only with objective: max_attainment");
        goto out;
    }
    if (space == NULL || conf_seq_len(space) == 0) {
        conf_error(c, space ? space : tune, e, "tune.space: expected a non-empty list of {key, values|range|log_range}");
        goto out;
    }
    if (conf_seq_len(space) > TUNE_MAX_KNOBS) {
        conf_error(c, space, e, "tune.space: at most %d keys", TUNE_MAX_KNOBS);
        goto out;
    }
    spec->ncandidates = 1;
    for (i = 0; i < conf_seq_len(space); i++) {
        struct tune_knob *k = &spec->knobs[spec->nknobs++];
        if (tune_read_knob(c, c, conf_seq_at(space, i), i, k, e) < 0)
            goto out;
        for (j = 0; j < i; j++)
            if (strcmp(spec->knobs[j].key, k->key) == 0) {
                conf_error(c, conf_seq_at(space, i), e, "tune.space[%zu]: key '%s' is already tune.space[%zu]", i,
                           k->key, j);
                goto out;
            }
        spec->ncandidates *= k->nvalues;
        if (spec->ncandidates > TUNE_MAX_CANDIDATES) {
            conf_error(c, space, e, "tune.space: over %llu candidates", (unsigned long long)TUNE_MAX_CANDIDATES);
            goto out;
        }
    }
    for (i = 0; i < spec->nknobs; i++)
        if (tune_check_values(path, sets, nsets, &spec->knobs[i], e) < 0)
            goto out;
    rc = 0;
out:
    scenario_free(sc);
    return rc;
}

void tune_spec_free(struct tune_spec *spec)
{
    size_t i, j;

    for (i = 0; i < spec->nknobs; i++) {
        for (j = 0; j < spec->knobs[i].nvalues; j++)
            free(spec->knobs[i].values[j]);
        free(spec->knobs[i].values);
        free(spec->knobs[i].numeric);
    }
    memset(spec, 0, sizeof(*spec));
}

long tune_value_index(const struct tune_spec *spec, long cand, size_t k)
{
    size_t j;
    long stride = 1;

    if (cand < 0)
        return -1;
    for (j = spec->nknobs; j-- > k + 1;)
        stride *= (long)spec->knobs[j].nvalues;
    return (cand / stride) % (long)spec->knobs[k].nvalues;
}

long tune_candidate(const struct tune_spec *spec, const long *idx)
{
    long cand = 0;
    size_t k;

    for (k = 0; k < spec->nknobs; k++)
        cand = cand * (long)spec->knobs[k].nvalues + idx[k];
    return cand;
}

const char *tune_value_text(const struct tune_spec *spec, long cand, size_t k)
{
    long i = tune_value_index(spec, cand, k);

    return i < 0 ? spec->knobs[k].baseline : spec->knobs[k].values[i];
}

int tune_candidate_sets(const struct tune_spec *spec, long cand, char ***sets, struct err *e)
{
    size_t k;

    *sets = NULL;
    if (cand < 0)
        return 0;
    *sets = calloc(spec->nknobs, sizeof(**sets));
    if (*sets == NULL)
        return err_set(e, ERR_SYSTEM, "out of memory");
    for (k = 0; k < spec->nknobs; k++) {
        size_t n = strlen(spec->knobs[k].key) + strlen(tune_value_text(spec, cand, k)) + 2;
        (*sets)[k] = malloc(n);
        if ((*sets)[k] == NULL) {
            tune_sets_free(*sets, k);
            *sets = NULL;
            return err_set(e, ERR_SYSTEM, "out of memory");
        }
        snprintf((*sets)[k], n, "%s=%s", spec->knobs[k].key, tune_value_text(spec, cand, k));
    }
    return 0;
}

void tune_sets_free(char **sets, size_t n)
{
    size_t i;

    if (sets == NULL)
        return;
    for (i = 0; i < n; i++)
        free(sets[i]);
    free(sets);
}
