/* tune_manifest.c -- the winner as Kubernetes manifests (DIR/manifests/):
 *
 *   hpa.yaml               autoscaling/v2 HorizontalPodAutoscaler (scenarios with autoscaler.hpa)
 *   scaledobject.yaml      KEDA ScaledObject (autoscaler.keda: scale to zero, cron windows)
 *   deployment-patch.yaml  strategic-merge patch of the llmserve Deployment: the cache TTL
 *                          (LLMSERVE_CACHE_TTL) and the spot share as node affinity weights
 *
 * The objects are built as JSON (jansson), the one tree type of the
 * project, then written as block YAML by libfyaml.  The names follow deploy/
 * (Deployment and container "llmserve", label app.kubernetes.io/name). */
#include "sim/tune_int.h"

#include "common/path.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <libfyaml.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sim/instances.h"
#include "sim/scenario.h"

#define TUNE_APP "llmserve"

/* Keys whose values the Kubernetes API types as integers. */
static bool tune_int_key(const char *key, bool in_policy)
{
    static const char *const ints[] = {"minReplicas", "maxReplicas", "averageUtilization",
                                       "stabilizationWindowSeconds", "periodSeconds", NULL};
    size_t i;

    for (i = 0; ints[i]; i++)
        if (strcmp(key, ints[i]) == 0)
            return true;
    return in_policy && strcmp(key, "value") == 0;
}

/* A scenario subtree (autoscaling/v2 vocabulary) as JSON: integers where the
 * API has them, every other scalar a string (quantities included). */
static json_t *tune_conf_json(const struct conf *c, const struct conf_node *n, const char *key, bool in_policy,
                              struct err *e)
{
    size_t i;

    if (conf_is_map(n)) {
        json_t *o = json_object();
        bool policy = conf_get(n, "periodSeconds") != NULL;
        for (i = 0; o && i < conf_map_len(n); i++) {
            struct conf_node *v;
            const char *k = conf_map_at(n, i, &v);
            json_t *j;
            if (k == NULL)
                continue;
            j = tune_conf_json(c, v, k, policy, e);
            if (j == NULL || json_object_set_new(o, k, j) != 0) {
                json_decref(o);
                return NULL;
            }
        }
        return o;
    }
    if (conf_is_seq(n)) {
        json_t *a = json_array();
        for (i = 0; a && i < conf_seq_len(n); i++) {
            json_t *j = tune_conf_json(c, conf_seq_at(n, i), key, false, e);
            if (j == NULL || json_array_append_new(a, j) != 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    {
        const char *text;
        char *end;
        long long v;

        if (conf_node_str(c, n, key, &text, e) < 0)
            return NULL;
        if (tune_int_key(key, in_policy)) {
            errno = 0;
            v = strtoll(text, &end, 10);
            if (*text != '\0' && *end == '\0' && errno == 0)
                return json_integer(v);
        }
        return json_string(text);
    }
}

/* A string that YAML would read back as a string when written plain. */
static bool tune_plain_ok(const char *s)
{
    static const char *const words[] = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~", NULL};
    char *end;
    size_t i;

    if (*s == '\0' || !(isalpha((unsigned char)*s) || *s == '/' || *s == '_'))
        return false;
    for (i = 0; s[i]; i++)
        if (!(isalnum((unsigned char)s[i]) || strchr("_./-", s[i])))
            return false;
    for (i = 0; words[i]; i++)
        if (strcasecmp(s, words[i]) == 0)
            return false;
    strtod(s, &end);
    return *end != '\0';
}

/* J as a node of DOC: strings plain where that keeps them strings, else
 * double-quoted; numbers and booleans plain. */
static struct fy_node *tune_fy_node(struct fy_document *doc, json_t *j)
{
    struct fy_node *n = NULL;
    const char *key;
    json_t *v;
    size_t i;

    switch (json_typeof(j)) {
    case JSON_OBJECT:
        n = fy_node_create_mapping(doc);
        json_object_foreach(j, key, v) {
            struct fy_node *k = fy_node_create_scalar_copy(doc, key, strlen(key)), *c = tune_fy_node(doc, v);
            if (n == NULL || k == NULL || c == NULL || fy_node_mapping_append(n, k, c) != 0)
                return NULL;
        }
        return n;
    case JSON_ARRAY:
        n = fy_node_create_sequence(doc);
        json_array_foreach(j, i, v) {
            struct fy_node *c = tune_fy_node(doc, v);
            if (n == NULL || c == NULL || fy_node_sequence_append(n, c) != 0)
                return NULL;
        }
        return n;
    case JSON_STRING: {
        const char *s = json_string_value(j);
        char *q;
        if (tune_plain_ok(s))
            return fy_node_create_scalar_copy(doc, s, strlen(s));
        /* A JSON string is a YAML double-quoted scalar. */
        q = json_dumps(j, JSON_ENCODE_ANY);
        if (q == NULL)
            return NULL;
        /* The document takes q and frees it with itself. */
        n = fy_node_build_from_malloc_string(doc, q, FY_NT);
        if (n == NULL)
            free(q);
        return n;
    }
    default: {
        char *t = json_dumps(j, JSON_ENCODE_ANY);
        if (t == NULL)
            return NULL;
        n = fy_node_create_scalar_copy(doc, t, strlen(t));
        free(t);
        return n;
    }
    }
}

/* Write OBJ to DIR/manifests/NAME as YAML after the comment lines HEAD. */
static int tune_write_yaml(const struct tune_ctx *ctx, const char *name, const char *head, json_t *obj, struct err *e)
{
    char path[4200];
    struct fy_document *doc = fy_document_create(NULL);
    struct fy_node *root = doc ? tune_fy_node(doc, obj) : NULL;
    FILE *f = NULL;
    int rc = -1;

    if (root == NULL || fy_document_set_root(doc, root) != 0) {
        err_set(e, ERR_SYSTEM, "%s: cannot build the YAML document", name);
        goto out;
    }
    snprintf(path, sizeof(path), "%s/manifests/%s", ctx->opt->outdir, name);
    f = fopen(path, "w");
    if (f == NULL) {
        err_sys(e, errno, "%s", path);
        goto out;
    }
    fputs(head, f);
    if (fy_emit_document_to_fp(doc, FYECF_MODE_BLOCK | FYECF_WIDTH_INF | FYECF_INDENT_2, f) != 0) {
        err_set(e, ERR_SYSTEM, "%s: cannot write YAML", path);
        fclose(f);
        goto out;
    }
    if (ferror(f) | (fclose(f) != 0)) {
        err_sys(e, errno ? errno : EIO, "%s", path);
        goto out;
    }
    rc = 0;
out:
    if (doc)
        fy_document_destroy(doc);
    return rc;
}

static json_t *tune_metadata(const char *name)
{
    return json_pack("{s:s,s:{s:s,s:s}}", "name", name, "labels", "app.kubernetes.io/name", TUNE_APP,
                     "app.kubernetes.io/managed-by", "llmsim-tune");
}

static int tune_hpa(const struct tune_ctx *ctx, struct scenario *sc, const char *head, struct err *e)
{
    struct conf_node *hpa = conf_lookup(sc->conf, "autoscaler.hpa");
    json_t *spec = tune_conf_json(sc->conf, hpa, "hpa", false, e), *obj;
    int rc;

    if (spec == NULL)
        return -1;
    if (json_object_get(spec, "scaleTargetRef") == NULL)
        json_object_set_new(spec, "scaleTargetRef",
                            json_pack("{s:s,s:s,s:s}", "apiVersion", "apps/v1", "kind", "Deployment", "name", TUNE_APP));
    obj = json_pack("{s:s,s:s,s:o,s:{}}", "apiVersion", "autoscaling/v2", "kind", "HorizontalPodAutoscaler",
                    "metadata", tune_metadata(TUNE_APP), "spec");
    if (obj == NULL) {
        json_decref(spec);
        return err_set(e, ERR_SYSTEM, "out of memory");
    }
    /* scaleTargetRef first, as kubectl shows it. */
    json_object_set_new(json_object_get(obj, "spec"), "scaleTargetRef",
                        json_incref(json_object_get(spec, "scaleTargetRef")));
    json_object_del(spec, "scaleTargetRef");
    json_object_update(json_object_get(obj, "spec"), spec);
    json_decref(spec);
    rc = tune_write_yaml(ctx, "hpa.yaml", head, obj, e);
    json_decref(obj);
    return rc;
}

/* The PromQL a KEDA prometheus trigger reads for a simulator metric. */
static void tune_promql(const char *metric, char *buf, size_t len)
{
    if (strcmp(metric, "requests_per_second") == 0)
        snprintf(buf, len, "sum(rate(llmserve_requests_total[1m]))");
    else if (strcmp(metric, "requests_waiting_total") == 0 || strcmp(metric, "gateway_requests_waiting") == 0)
        snprintf(buf, len, "sum(llmserve_requests_waiting)");
    else if (strncmp(metric, "llmserve_", 9) == 0)
        snprintf(buf, len, "sum(%s)", metric);
    else
        snprintf(buf, len, "sum(llmserve_%s)", metric);
}

static json_t *tune_keda_trigger(const struct conf *c, struct conf_node *t, struct err *e)
{
    struct conf_node *md = conf_get(t, "metadata");
    const char *type = NULL, *s;
    json_t *meta = json_object(), *out;
    char q[256];

    if (meta == NULL || conf_get_str(c, t, "type", &type, e) < 0 || type == NULL) {
        json_decref(meta);
        return NULL;
    }
    if (strcmp(type, "cron") == 0) {
        static const char *const keys[] = {"timezone", "start", "end", "desiredReplicas", NULL};
        size_t i;
        for (i = 0; keys[i]; i++) {
            s = NULL;
            if (conf_get_str(c, md, keys[i], &s, e) == 1)
                json_object_set_new(meta, keys[i], json_string(s));
        }
        return json_pack("{s:s,s:o}", "type", "cron", "metadata", meta);
    }
    /* A metric trigger: Prometheus, the threshold per replica (AverageValue)
     * or for the whole service (Value). */
    s = NULL;
    if (conf_get_str(c, md, "metricName", &s, e) < 0 || s == NULL) {
        json_decref(meta);
        return NULL;
    }
    tune_promql(s, q, sizeof(q));
    json_object_set_new(meta, "serverAddress", json_string("http://prometheus-operated.monitoring.svc:9090"));
    json_object_set_new(meta, "query", json_string(q));
    s = NULL;
    if (conf_get_str(c, md, "targetValue", &s, e) < 0 || (s == NULL && conf_get_str(c, md, "value", &s, e) < 0)) {
        json_decref(meta);
        return NULL;
    }
    json_object_set_new(meta, "threshold", json_string(s ? s : "1"));
    s = NULL;
    if (conf_get_str(c, md, "activationThreshold", &s, e) == 1)
        json_object_set_new(meta, "activationThreshold", json_string(s));
    s = NULL;
    if (conf_get_str(c, t, "metricType", &s, e) < 0 || (s == NULL && conf_get_str(c, md, "metricType", &s, e) < 0)) {
        json_decref(meta);
        return NULL;
    }
    out = json_pack("{s:s,s:s,s:o}", "type", "prometheus", "metricType", s ? s : "AverageValue", "metadata", meta);
    return out;
}

static int tune_keda(const struct tune_ctx *ctx, struct scenario *sc, const char *head, struct err *e)
{
    struct conf_node *k = conf_lookup(sc->conf, "autoscaler.keda"), *trig = conf_get(k, "triggers");
    struct conf_node *beh = conf_lookup(sc->conf, "autoscaler.keda.advanced.horizontalPodAutoscalerConfig.behavior");
    const struct keda_spec *ks = &sc->keda;
    json_t *spec, *triggers = json_array(), *obj;
    size_t i;
    int rc;

    spec = json_pack("{s:{s:s,s:s,s:s},s:i,s:i,s:i,s:i}", "scaleTargetRef", "apiVersion", "apps/v1", "kind",
                     "Deployment", "name", TUNE_APP, "pollingInterval", (int)lround(ks->polling_interval_s),
                     "cooldownPeriod", (int)lround(ks->cooldown_s), "minReplicaCount", (int)ks->min_replicas,
                     "maxReplicaCount", (int)ks->max_replicas);
    if (spec == NULL || triggers == NULL) {
        json_decref(spec);
        json_decref(triggers);
        return err_set(e, ERR_SYSTEM, "out of memory");
    }
    if (ks->has_idle)
        json_object_set_new(spec, "idleReplicaCount", json_integer(ks->idle_replicas));
    if (ks->initial_cooldown_s > 0)
        json_object_set_new(spec, "initialCooldownPeriod", json_integer(lround(ks->initial_cooldown_s)));
    if (beh != NULL) {
        json_t *b = tune_conf_json(sc->conf, beh, "behavior", false, e);
        if (b == NULL) {
            json_decref(spec);
            json_decref(triggers);
            return -1;
        }
        json_object_set_new(spec, "advanced", json_pack("{s:{s:o}}", "horizontalPodAutoscalerConfig", "behavior", b));
    }
    for (i = 0; i < conf_seq_len(trig); i++) {
        json_t *t = tune_keda_trigger(sc->conf, conf_seq_at(trig, i), e);
        if (t == NULL) {
            json_decref(spec);
            json_decref(triggers);
            return -1;
        }
        json_array_append_new(triggers, t);
    }
    json_object_set_new(spec, "triggers", triggers);
    obj = json_pack("{s:s,s:s,s:o,s:o}", "apiVersion", "keda.sh/v1alpha1", "kind", "ScaledObject", "metadata",
                    tune_metadata(TUNE_APP), "spec", spec);
    if (obj == NULL)
        return err_set(e, ERR_SYSTEM, "out of memory");
    rc = tune_write_yaml(ctx, "scaledobject.yaml", head, obj, e);
    json_decref(obj);
    return rc;
}

/* The node label (and taint) marking spot capacity on the provider of a
 * pool's instance type. */
static void tune_spot_label(const struct pool_spec *p, const char **key, const char **value)
{
    const struct instance_type *it = instances_find(p->instance);
    const char *prov = it ? it->provider : "";

    if (strcmp(prov, "gcp") == 0) {
        *key = "cloud.google.com/gke-spot";
        *value = "true";
    } else if (strcmp(prov, "azure") == 0) {
        *key = "kubernetes.azure.com/scalesetpriority";
        *value = "spot";
    } else {
        *key = "karpenter.sh/capacity-type"; /* AWS (Karpenter), and the default */
        *value = "spot";
    }
}

static int tune_patch(const struct tune_ctx *ctx, struct scenario *sc, const char *head, struct err *e)
{
    json_t *pod = json_object(), *container, *obj;
    double spot = 0, total = 0;
    const struct pool_spec *sp = NULL;
    size_t i;
    char buf[64], comment[2048];
    int rc;

    container = json_pack("{s:s}", "name", TUNE_APP);
    if (pod == NULL || container == NULL) {
        json_decref(pod);
        json_decref(container);
        return err_set(e, ERR_SYSTEM, "out of memory");
    }
    snprintf(comment, sizeof(comment), "%s", head);
    if (sc->has_cache) {
        /* llmserve reads --cache-ttl from LLMSERVE_CACHE_TTL: seconds. */
        snprintf(buf, sizeof(buf), "%.0f", sc->cache_ttl_s);
        json_object_set_new(container, "env",
                            json_pack("[{s:s,s:s}]", "name", "LLMSERVE_CACHE_TTL", "value", buf));
        snprintf(comment + strlen(comment), sizeof(comment) - strlen(comment),
                 "# Response cache: entries live %s s (LLMSERVE_CACHE_TTL, llmserve's --cache-ttl).\n", buf);
    }
    json_object_set_new(pod, "containers", json_pack("[o]", container));
    for (i = 0; i < sc->npools; i++) {
        total += sc->pools[i].share;
        if (sc->pools[i].pricing == PRICING_SPOT) {
            spot += sc->pools[i].share;
            if (sp == NULL)
                sp = &sc->pools[i];
        }
    }
    if (sp != NULL && total > 0) {
        const char *key, *value;
        double share = spot / total;
        int ws = (int)lround(100 * share), wo = 100 - ws;
        json_t *terms = json_array();

        tune_spot_label(sp, &key, &value);
        if (ws > 0)
            json_array_append_new(terms, json_pack("{s:i,s:{s:[{s:s,s:s,s:[s]}]}}", "weight", ws, "preference",
                                                   "matchExpressions", "key", key, "operator", "In", "values", value));
        if (wo > 0)
            json_array_append_new(terms, json_pack("{s:i,s:{s:[{s:s,s:s,s:[s]}]}}", "weight", wo, "preference",
                                                   "matchExpressions", "key", key, "operator", "NotIn", "values", value));
        json_object_set_new(pod, "affinity",
                            json_pack("{s:{s:o}}", "nodeAffinity", "preferredDuringSchedulingIgnoredDuringExecution",
                                      terms));
        if (ws > 0)
            json_object_set_new(pod, "tolerations", json_pack("[{s:s,s:s,s:s,s:s}]", "key", key, "operator", "Equal",
                                                              "value", value, "effect", "NoSchedule"));
        snprintf(comment + strlen(comment), sizeof(comment) - strlen(comment),
                 "# Spot share %.0f%%: node affinity prefers spot nodes (%s=%s) with weight %d and\n"
                 "# other nodes with weight %d, and tolerates the spot taint.  Preferences weigh\n"
                 "# each placement; they do not hold an exact share.  For an exact split run two\n"
                 "# Deployments (llmserve-spot with required affinity to %s=%s, llmserve with\n"
                 "# NotIn) and give their HPAs maxReplicas in the same ratio.\n",
                 100 * share, key, value, ws, wo, key, value);
    }
    obj = json_pack("{s:s,s:s,s:o,s:{s:{s:{s:s}},s:{s:{s:{s:s}},s:o}}}", "apiVersion", "apps/v1", "kind", "Deployment",
                    "metadata", tune_metadata(TUNE_APP), "spec", "selector", "matchLabels", "app.kubernetes.io/name",
                    TUNE_APP, "template", "metadata", "labels", "app.kubernetes.io/name", TUNE_APP, "spec", pod);
    if (obj == NULL)
        return err_set(e, ERR_SYSTEM, "out of memory");
    rc = tune_write_yaml(ctx, "deployment-patch.yaml", comment, obj, e);
    json_decref(obj);
    return rc;
}

int tune_write_manifests(struct tune_ctx *ctx, const struct tune_result *r, struct err *e)
{
    const struct tune_point *b = &r->points[r->best];
    char **cand = NULL, **all = NULL, dir[4200], head[1024];
    struct scenario *sc = NULL;
    size_t n = 0, k;
    int rc = -1;

    snprintf(dir, sizeof(dir), "%s/manifests", ctx->opt->outdir);
    if (path_mkdirs(dir, e) < 0 || tune_candidate_sets(&ctx->spec, b->cand, &cand, e) < 0)
        return -1;
    all = calloc((size_t)ctx->nsets + ctx->spec.nknobs + 1, sizeof(*all));
    if (all == NULL) {
        err_set(e, ERR_SYSTEM, "out of memory");
        goto out;
    }
    for (k = 0; k < (size_t)ctx->nsets; k++)
        all[n++] = ctx->sets[k];
    for (k = 0; k < ctx->spec.nknobs; k++)
        all[n++] = cand[k];
    sc = scenario_load(ctx->real_path, all, (int)n, e);
    if (sc == NULL)
        goto out;
    snprintf(head, sizeof(head),
             "# Generated by llmsim tune for scenario %s, candidate %ld (cost $%.2f,\n"
             "# SLO attainment %.4f over %d seed(s) in simulation).  Target: the Deployment\n"
             "# \"%s\" of deploy/k8s.\n",
             ctx->name, b->cand, b->mean[TM_COST], b->mean[TM_ATTAINMENT], b->nseeds, TUNE_APP);
    if (sc->has_keda)
        rc = tune_keda(ctx, sc, head, e);
    else if (sc->has_hpa)
        rc = tune_hpa(ctx, sc, head, e);
    else
        rc = 0;
    if (rc == 0)
        rc = tune_patch(ctx, sc, head, e);
out:
    scenario_free(sc);
    free(all);
    tune_sets_free(cand, cand ? ctx->spec.nknobs : 0);
    return rc;
}
