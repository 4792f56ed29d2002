/* cmd_hpa.c -- `llmsim hpa`: replay recorded observations through the HPA
 * controller alone and print what it decides at each sync.
 *
 *   llmsim hpa FILE [-o OUT.json]
 *
 * FILE (YAML or JSON) holds:
 *   hpa:              an autoscaling/v2 HorizontalPodAutoscalerSpec
 *   controller:       optional controller flags (tolerance, syncPeriod,
 *                     cpuInitializationPeriod, initialReadinessDelay,
 *                     downscaleStabilization)
 *   recommendations:  optional prior recommendations [{time, replicas}]
 *   scaleEvents:      optional prior scale events [{time, change}]
 *   observations:     [{time, currentReplicas, statusReplicas, metricWindow,
 *                       pods: [{count, ready, phase, deleting, startTime,
 *                               lastTransition, metricTime, metricWindow,
 *                               request, usage}],
 *                       metrics: {NAME: value or [values]}}]
 * Times are seconds on the replay's clock.  request and usage are
 * quantities, or mappings from a Resource or Pods metric's name to
 * quantities; a pod without a usage for a metric is "missing" for it. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/conf.h"
#include "common/err.h"
#include "common/log.h"
#include "sim/command.h"
#include "sim/hpa.h"
#include "sim/quantity.h"

#define HPA_CMD_MAX_PODS 100000 /* pods in one observation, counts included */

static void hpa_usage(FILE *f)
{
    fprintf(f,
            "usage: llmsim hpa FILE [-o OUT.json]\n"
            "\n"
            "Replay observations through the Kubernetes HPA controller (autoscaling/v2,\n"
            "computed as kube-controller-manager does) and print, for each sync, the\n"
            "desired replica count, the reason and each metric's proposal as JSON.\n"
            "FILE (YAML or JSON) holds 'hpa' (the HPA spec), optional 'controller',\n"
            "'recommendations' and 'scaleEvents', and 'observations'; see docs/HPA.md.\n"
            "-o OUT.json writes the result there instead of standard output.\n"
            "\n"
            "Exit status: 0 ok, 1 I/O or system error, 2 bad input or usage.\n");
}

/* The number of Resource/Pods metrics of SPEC, and the first one's index. */
static size_t hpa_pod_metrics(const struct hpa_spec *spec, size_t *first)
{
    size_t m, n = 0;

    for (m = 0; m < spec->nmetrics; m++)
        if (spec->metrics[m].type == HPA_METRIC_RESOURCE || spec->metrics[m].type == HPA_METRIC_PODS) {
            if (n++ == 0)
                *first = m;
        }
    return n;
}

/* Read KEY of pod mapping P (request or usage): a quantity for the only
 * per-pod metric, or a mapping by metric name.  HAS/VAL are per metric. */
static int hpa_read_pod_values(const struct conf *c, const struct conf_node *p, const char *key,
                               const struct hpa_spec *spec, bool *has, int64_t *val, struct err *e)
{
    struct conf_node *n = conf_get(p, key);
    size_t first = 0, m;
    const char *s;
    struct err sub;

    if (n == NULL)
        return 0;
    if (conf_is_scalar(n)) {
        if (hpa_pod_metrics(spec, &first) != 1)
            return conf_error(c, n, e, "%s: the HPA has %zu per-pod metrics: give a mapping from metric name to value",
                              key, hpa_pod_metrics(spec, &first));
        if (conf_node_str(c, n, key, &s, e) < 0)
            return -1;
        if (quantity_parse(s, &val[first], NULL, &sub) < 0)
            return conf_error(c, n, e, "%s: %s", key, sub.msg);
        has[first] = true;
        return 0;
    }
    if (!conf_is_map(n))
        return conf_error(c, n, e, "%s: expected a quantity or a mapping from metric name to quantity", key);
    for (m = 0; m < spec->nmetrics; m++) {
        const struct hpa_metric *mt = &spec->metrics[m];
        int rc;

        if (mt->type != HPA_METRIC_RESOURCE && mt->type != HPA_METRIC_PODS)
            continue;
        rc = conf_get_str(c, n, mt->name, &s, e);
        if (rc < 0)
            return -1;
        if (rc == 0)
            continue;
        if (quantity_parse(s, &val[m], NULL, &sub) < 0)
            return conf_error(c, conf_get(n, mt->name), e, "%s: %s", mt->name, sub.msg);
        has[m] = true;
    }
    /* Every key must name a per-pod metric of the spec. */
    {
        const char *names[HPA_MAX_METRICS + 1];
        size_t k = 0;

        for (m = 0; m < spec->nmetrics; m++)
            if (spec->metrics[m].type == HPA_METRIC_RESOURCE || spec->metrics[m].type == HPA_METRIC_PODS)
                names[k++] = spec->metrics[m].name;
        names[k] = NULL;
        return conf_check_keys(c, n, key, names, e);
    }
}

/* Read the pods of observation O into a growing array. */
static int hpa_read_pods(const struct conf *c, const struct conf_node *o, const struct hpa_spec *spec,
                         double now_s, double window_s, struct hpa_pod **pods, size_t *npods, size_t *cap,
                         struct err *e)
{
    static const char *const keys[] = {"count", "ready", "phase", "deleting", "startTime", "lastTransition",
                                       "metricTime", "metricWindow", "request", "usage", NULL};
    static const char *const phases[] = {"Running", "Pending", "Failed", NULL};
    struct conf_node *seq;
    size_t i;
    int rc;

    *npods = 0;
    rc = conf_get_seq(c, o, "pods", &seq, e);
    if (rc <= 0)
        return rc;
    for (i = 0; i < conf_seq_len(seq); i++) {
        struct conf_node *p = conf_seq_at(seq, i);
        struct hpa_pod pod;
        long count = 1, k;
        int phase;

        hpa_pod_init(&pod, now_s);
        pod.metric_window_s = window_s;
        if (conf_check_keys(c, p, "pods[]", keys, e) < 0 || conf_get_long(c, p, "count", &count, e) < 0 ||
            conf_get_bool(c, p, "ready", &pod.ready, e) < 0 || conf_get_bool(c, p, "deleting", &pod.deleting, e) < 0 ||
            conf_get_double(c, p, "startTime", &pod.start_s, e) < 0 ||
            conf_get_double(c, p, "metricTime", &pod.metric_time_s, e) < 0 ||
            conf_get_duration(c, p, "metricWindow", &pod.metric_window_s, e) < 0)
            return -1;
        rc = conf_get_enum(c, p, "phase", phases, &phase, e);
        if (rc < 0)
            return -1;
        if (rc == 1)
            pod.phase = (enum hpa_pod_phase)phase;
        /* An unknown last transition is the pod's start: never been ready. */
        pod.last_transition_s = pod.start_s;
        if (conf_get_double(c, p, "lastTransition", &pod.last_transition_s, e) < 0)
            return -1;
        if (count < 0 || (size_t)count > HPA_CMD_MAX_PODS - *npods)
            return conf_error(c, conf_get(p, "count"), e, "count: must be between 0 and %d pods in all",
                              HPA_CMD_MAX_PODS);
        if (hpa_read_pod_values(c, p, "request", spec, pod.has_request, pod.request_milli, e) < 0 ||
            hpa_read_pod_values(c, p, "usage", spec, pod.has_usage, pod.usage_milli, e) < 0)
            return -1;
        for (k = 0; k < count; k++) {
            if (*npods == *cap) {
                size_t want = *cap ? *cap * 2 : 64;
                struct hpa_pod *grown = realloc(*pods, want * sizeof(*grown));
                if (grown == NULL)
                    return err_set(e, ERR_SYSTEM, "out of memory");
                *pods = grown;
                *cap = want;
            }
            (*pods)[(*npods)++] = pod;
        }
    }
    return 0;
}

/* Read the Object/External values of observation O. */
static int hpa_read_values(const struct conf *c, const struct conf_node *o, const struct hpa_spec *spec,
                           struct hpa_observation *obs, struct err *e)
{
    const char *names[HPA_MAX_METRICS + 1];
    struct conf_node *map;
    struct err sub;
    size_t m, k = 0;
    int rc = conf_get_map(c, o, "metrics", &map, e);

    if (rc <= 0)
        return rc;
    for (m = 0; m < spec->nmetrics; m++) {
        const struct hpa_metric *mt = &spec->metrics[m];
        struct conf_node *v;
        const char *s;

        if (mt->type != HPA_METRIC_OBJECT && mt->type != HPA_METRIC_EXTERNAL)
            continue;
        names[k++] = mt->name;
        v = conf_get(map, mt->name);
        if (v == NULL)
            continue;
        obs->has_value[m] = true;
        obs->value_milli[m] = 0;
        if (conf_is_seq(v) && mt->type == HPA_METRIC_EXTERNAL) { /* series, summed */
            size_t i;

            for (i = 0; i < conf_seq_len(v); i++) {
                int64_t x;

                if (conf_node_str(c, conf_seq_at(v, i), mt->name, &s, e) < 0)
                    return -1;
                if (quantity_parse(s, &x, NULL, &sub) < 0)
                    return conf_error(c, conf_seq_at(v, i), e, "%s: %s", mt->name, sub.msg);
                obs->value_milli[m] += x;
            }
            continue;
        }
        if (conf_node_str(c, v, mt->name, &s, e) < 0)
            return -1;
        if (quantity_parse(s, &obs->value_milli[m], NULL, &sub) < 0)
            return conf_error(c, v, e, "%s: %s", mt->name, sub.msg);
    }
    names[k] = NULL;
    return conf_check_keys(c, map, "metrics", names, e);
}

/* Seed ST from the optional recommendations and scaleEvents lists. */
static int hpa_read_history(const struct conf *c, const struct conf_node *root, struct hpa_state *st,
                            struct err *e)
{
    static const char *const rec_keys[] = {"time", "replicas", NULL};
    static const char *const ev_keys[] = {"time", "change", NULL};
    struct conf_node *seq;
    size_t i;
    int rc;

    rc = conf_get_seq(c, root, "recommendations", &seq, e);
    if (rc < 0)
        return -1;
    if (rc == 1)
        st->recommendations_set = true; /* even an empty list: no initial record */
    for (i = 0; rc == 1 && i < conf_seq_len(seq); i++) {
        struct conf_node *n = conf_seq_at(seq, i);
        double t = 0;
        long r = -1;

        if (conf_check_keys(c, n, "recommendations[]", rec_keys, e) < 0 || conf_get_double(c, n, "time", &t, e) < 0 ||
            conf_get_long(c, n, "replicas", &r, e) < 0)
            return -1;
        if (r < 0 || r > INT32_MAX)
            return conf_error(c, n, e, "replicas: required, 0 or more");
        if (hpa_state_add_recommendation(st, t, (int32_t)r, e) < 0)
            return -1;
    }
    rc = conf_get_seq(c, root, "scaleEvents", &seq, e);
    if (rc < 0)
        return -1;
    for (i = 0; rc == 1 && i < conf_seq_len(seq); i++) {
        struct conf_node *n = conf_seq_at(seq, i);
        double t = 0;
        long ch = 0;

        if (conf_check_keys(c, n, "scaleEvents[]", ev_keys, e) < 0 || conf_get_double(c, n, "time", &t, e) < 0 ||
            conf_get_long(c, n, "change", &ch, e) < 0)
            return -1;
        if (ch == 0 || ch < -INT32_MAX || ch > INT32_MAX)
            return conf_error(c, n, e, "change: required, a non-zero replica change");
        if (hpa_state_add_scale_event(st, t, (int32_t)ch, e) < 0)
            return -1;
    }
    return 0;
}

static json_t *hpa_result_json(double now_s, int32_t current, const struct hpa_result *res)
{
    json_t *o = json_object(), *metrics = json_array();
    size_t m;

    json_object_set_new(o, "time", json_real(now_s));
    json_object_set_new(o, "currentReplicas", json_integer(current));
    json_object_set_new(o, "desiredReplicas", json_integer(res->desired_replicas));
    json_object_set_new(o, "reason", json_string(res->reason));
    json_object_set_new(o, "ableToScale", json_string(res->able_to_scale));
    json_object_set_new(o, "scalingActive", json_string(res->scaling_active));
    json_object_set_new(o, "message", json_string(res->message));
    if (res->metric_replicas >= 0)
        json_object_set_new(o, "metricReplicas", json_integer(res->metric_replicas));
    json_object_set_new(o, "stabilizedReplicas", json_integer(res->stabilized_replicas));
    for (m = 0; m < res->nmetrics; m++) {
        const struct hpa_metric_result *r = &res->metrics[m];
        json_t *j = json_pack("{s:s, s:b}", "metric", r->description, "valid", r->valid);

        if (r->valid) {
            json_object_set_new(j, "replicas", json_integer(r->replicas));
            json_object_set_new(j, "current", json_real((double)r->current_milli / 1000.0));
            if (r->has_utilization)
                json_object_set_new(j, "utilization", json_integer(r->utilization));
        } else {
            json_object_set_new(j, "error", json_string(r->error));
        }
        json_array_append_new(metrics, j);
    }
    json_object_set_new(o, "metrics", metrics);
    return o;
}

/* Run the replay in C's document; the result goes to *OUT. */
static int hpa_replay(const struct conf *c, struct conf_node *root, json_t **out, struct err *e)
{
    static const char *const keys[] = {"hpa", "controller", "recommendations", "scaleEvents", "observations", NULL};
    static const char *const obs_keys[] = {"time", "currentReplicas", "statusReplicas", "metricWindow", "pods",
                                           "metrics", NULL};
    struct hpa_spec spec;
    struct hpa_state st;
    struct hpa_pod *pods = NULL;
    size_t npods = 0, cap = 0, i;
    struct conf_node *n, *seq;
    json_t *list = json_array();
    int32_t current = -1;
    double prev_s = -INFINITY;
    int rc, status = -1;

    hpa_state_init(&st);
    if (conf_check_keys(c, root, "the replay file", keys, e) < 0)
        goto done;
    rc = conf_get_map(c, root, "hpa", &n, e);
    if (rc == 0)
        conf_error(c, root, e, "hpa: required (an autoscaling/v2 HorizontalPodAutoscalerSpec)");
    if (rc <= 0 || hpa_spec_from_conf(c, n, &spec, e) < 0)
        goto done;
    rc = conf_get_map(c, root, "controller", &n, e);
    if (rc < 0 || (rc == 1 && hpa_controller_from_conf(c, n, &spec, e) < 0))
        goto done;
    if (hpa_read_history(c, root, &st, e) < 0)
        goto done;
    rc = conf_get_seq(c, root, "observations", &seq, e);
    if (rc == 0)
        conf_error(c, root, e, "observations: required (a list)");
    if (rc <= 0)
        goto done;
    for (i = 0; i < conf_seq_len(seq); i++) {
        struct conf_node *o = conf_seq_at(seq, i);
        struct hpa_observation obs;
        struct hpa_result res;
        double now_s = 0, window_s = HPA_DEFAULT_METRIC_WINDOW_S;
        long v;

        memset(&obs, 0, sizeof(obs));
        obs.status_replicas = -1;
        if (conf_check_keys(c, o, "observations[]", obs_keys, e) < 0)
            goto done;
        rc = conf_get_double(c, o, "time", &now_s, e);
        if (rc == 0)
            conf_error(c, o, e, "time: required");
        if (rc <= 0)
            goto done;
        if (now_s < prev_s) {
            conf_error(c, conf_get(o, "time"), e, "time: observations must be in time order (%g after %g)", now_s,
                       prev_s);
            goto done;
        }
        prev_s = now_s;
        rc = conf_get_long(c, o, "currentReplicas", &v, e);
        if (rc < 0)
            goto done;
        if (rc == 1 && (v < 0 || v > INT32_MAX)) {
            conf_error(c, conf_get(o, "currentReplicas"), e, "currentReplicas: must be 0 or more");
            goto done;
        }
        if (rc == 1)
            current = (int32_t)v;
        else if (current < 0) {
            conf_error(c, o, e, "currentReplicas: required in the first observation");
            goto done;
        }
        rc = conf_get_long(c, o, "statusReplicas", &v, e);
        if (rc < 0 || (rc == 1 && (v < 0 || v > INT32_MAX))) {
            if (rc == 1)
                conf_error(c, conf_get(o, "statusReplicas"), e, "statusReplicas: must be 0 or more");
            goto done;
        }
        if (rc == 1)
            obs.status_replicas = (int32_t)v;
        if (conf_get_duration(c, o, "metricWindow", &window_s, e) < 0 ||
            hpa_read_pods(c, o, &spec, now_s, window_s, &pods, &npods, &cap, e) < 0 ||
            hpa_read_values(c, o, &spec, &obs, e) < 0)
            goto done;
        obs.pods = pods;
        obs.npods = npods;
        if (hpa_step(&st, &spec, now_s, current, &obs, &res) < 0) {
            err_set(e, ERR_SYSTEM, "out of memory");
            goto done;
        }
        json_array_append_new(list, hpa_result_json(now_s, current, &res));
        current = res.desired_replicas; /* the next sync starts where this one left */
    }
    *out = json_pack("{s:s, s:o}", "file", conf_origin(c), "observations", list);
    list = NULL;
    status = 0;
done:
    json_decref(list);
    free(pods);
    hpa_state_free(&st);
    return status;
}

static int hpa_exec(int argc, char **argv)
{
    const char *path = NULL, *out_path = NULL;
    struct conf *c = NULL;
    json_t *result = NULL;
    struct err e;
    int i, status = 0;

    err_clear(&e);
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            hpa_usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
            out_path = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            log_error("hpa: unknown or incomplete option '%s' (try 'llmsim hpa --help')", argv[i]);
            return 2;
        } else if (path == NULL) {
            path = argv[i];
        } else {
            log_error("hpa: one FILE expected, got '%s' too", argv[i]);
            return 2;
        }
    }
    if (path == NULL) {
        hpa_usage(stderr);
        return 2;
    }
    c = conf_load_file(path, &e);
    if (c == NULL || hpa_replay(c, conf_root(c), &result, &e) < 0) {
        log_error("%s", e.msg);
        status = err_exit_status(&e);
        goto done;
    }
    if (out_path != NULL && strcmp(out_path, "-") != 0) {
        if (json_dump_file(result, out_path, JSON_INDENT(2) | JSON_REAL_PRECISION(10)) != 0) {
            log_error("%s: cannot write", out_path);
            status = 1;
        }
    } else {
        if (json_dumpf(result, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10)) != 0)
            status = 1;
        printf("\n");
        if (fflush(stdout) != 0)
            status = 1;
    }
done:
    json_decref(result);
    conf_free(c);
    return status;
}

const struct command cmd_hpa_entry = {
    .name = "hpa",
    .summary = "replay observations through the Kubernetes HPA controller",
    .exec = hpa_exec,
};
