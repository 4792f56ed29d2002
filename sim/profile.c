/* profile.c -- see profile.h. */
#include "sim/profile.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void profile_free(struct profile *p)
{
    if (p == NULL)
        return;
    free(p->prefill_tokens);
    free(p->prefill_s);
    free(p->decode_batch);
    free(p->decode_ctx);
    free(p->decode_s);
    free(p);
}

/* ---- table profiles --------------------------------------------------------- */

/* Read a JSON array of numbers into a new array.  POSITIVE demands > 0 values
 * (times); INCREASING demands a strictly increasing axis. */
static double *profile_read_axis(const char *path, json_t *arr, const char *key, size_t *n,
                                 int positive, int increasing, struct err *e)
{
    size_t i, len;
    double *v;

    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        err_at(e, path, 0, "%s: expected a non-empty array of numbers", key);
        return NULL;
    }
    len = json_array_size(arr);
    if (len > 100000) {
        err_at(e, path, 0, "%s: %zu points is too many (at most 100000)", key, len);
        return NULL;
    }
    v = malloc(len * sizeof(*v));
    if (v == NULL) {
        err_set(e, ERR_SYSTEM, "out of memory");
        return NULL;
    }
    for (i = 0; i < len; i++) {
        json_t *x = json_array_get(arr, i);
        if (!json_is_number(x) || !isfinite(json_number_value(x))) {
            err_at(e, path, 0, "%s[%zu]: expected a number", key, i);
            goto fail;
        }
        v[i] = json_number_value(x);
        if (v[i] < 0 || (positive && v[i] <= 0)) {
            err_at(e, path, 0, "%s[%zu]: expected a %s number, got %g", key, i,
                   positive ? "positive" : "non-negative", v[i]);
            goto fail;
        }
        if (increasing && i > 0 && v[i] <= v[i - 1]) {
            err_at(e, path, 0, "%s[%zu]: values must increase (%g after %g)", key, i, v[i], v[i - 1]);
            goto fail;
        }
    }
    *n = len;
    return v;
fail:
    free(v);
    return NULL;
}

static int profile_check_keys(const char *path, json_t *obj, const char *where,
                              const char *const *known, struct err *e)
{
    const char *key;
    json_t *val;

    json_object_foreach(obj, key, val) {
        const char *const *k;
        for (k = known; *k != NULL; k++)
            if (strcmp(*k, key) == 0)
                break;
        if (*k == NULL)
            return err_at(e, path, 0, "%s%s%s: unknown key", where, *where ? "." : "", key);
    }
    return 0;
}

struct profile *profile_load_json(const char *path, struct err *e)
{
    static const char *const top_keys[] = {"format", "name", "kv_capacity_tokens", "step_overhead_s",
                                           "prefill", "decode", "measured", NULL};
    static const char *const prefill_keys[] = {"tokens", "time_s", NULL};
    static const char *const decode_keys[] = {"batch", "context_tokens", "time_s", NULL};
    json_error_t jerr;
    json_t *root, *pre, *dec, *rows, *x;
    struct profile *p = NULL;
    size_t n, i, j;

    root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        if (jerr.line <= 0)
            err_set(e, ERR_INPUT, "%s: %s", path, jerr.text);
        else
            err_at(e, path, jerr.line, "%s", jerr.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        err_at(e, path, 1, "a profile must be a JSON object");
        goto fail;
    }
    if (profile_check_keys(path, root, "", top_keys, e) < 0)
        goto fail;
    x = json_object_get(root, "format");
    if (x != NULL && (!json_is_string(x) || strcmp(json_string_value(x), "llmscale-profile-v1") != 0)) {
        err_at(e, path, 0, "format: expected \"llmscale-profile-v1\"");
        goto fail;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        err_set(e, ERR_SYSTEM, "out of memory");
        goto fail;
    }
    p->kind = PROFILE_TABLE;
    x = json_object_get(root, "name");
    snprintf(p->name, sizeof(p->name), "%s", json_is_string(x) ? json_string_value(x) : path);
    x = json_object_get(root, "kv_capacity_tokens");
    if (!json_is_number(x) || json_number_value(x) < 1 || !isfinite(json_number_value(x))) {
        err_at(e, path, 0, "kv_capacity_tokens: expected a positive number");
        goto fail;
    }
    p->kv_capacity_tokens = json_number_value(x);
    x = json_object_get(root, "step_overhead_s");
    if (x != NULL) {
        if (!json_is_number(x) || json_number_value(x) < 0 || !isfinite(json_number_value(x))) {
            err_at(e, path, 0, "step_overhead_s: expected a number >= 0 (seconds)");
            goto fail;
        }
        p->step_overhead_s = json_number_value(x);
    }

    pre = json_object_get(root, "prefill");
    if (!json_is_object(pre)) {
        err_at(e, path, 0, "prefill: expected an object {tokens, time_s}");
        goto fail;
    }
    if (profile_check_keys(path, pre, "prefill", prefill_keys, e) < 0)
        goto fail;
    p->prefill_tokens = profile_read_axis(path, json_object_get(pre, "tokens"), "prefill.tokens",
                                          &p->n_prefill, 1, 1, e);
    if (p->prefill_tokens == NULL)
        goto fail;
    p->prefill_s = profile_read_axis(path, json_object_get(pre, "time_s"), "prefill.time_s", &n, 1, 0, e);
    if (p->prefill_s == NULL)
        goto fail;
    if (n != p->n_prefill) {
        err_at(e, path, 0, "prefill.time_s: %zu values for %zu token counts", n, p->n_prefill);
        goto fail;
    }

    dec = json_object_get(root, "decode");
    if (!json_is_object(dec)) {
        err_at(e, path, 0, "decode: expected an object {batch, context_tokens, time_s}");
        goto fail;
    }
    if (profile_check_keys(path, dec, "decode", decode_keys, e) < 0)
        goto fail;
    p->decode_batch = profile_read_axis(path, json_object_get(dec, "batch"), "decode.batch", &p->n_batch, 1, 1, e);
    if (p->decode_batch == NULL)
        goto fail;
    p->decode_ctx = profile_read_axis(path, json_object_get(dec, "context_tokens"), "decode.context_tokens",
                                      &p->n_ctx, 0, 1, e);
    if (p->decode_ctx == NULL)
        goto fail;
    rows = json_object_get(dec, "time_s");
    if (!json_is_array(rows) || json_array_size(rows) != p->n_batch) {
        err_at(e, path, 0, "decode.time_s: expected %zu rows (one per batch size)", p->n_batch);
        goto fail;
    }
    p->decode_s = malloc(p->n_batch * p->n_ctx * sizeof(double));
    if (p->decode_s == NULL) {
        err_set(e, ERR_SYSTEM, "out of memory");
        goto fail;
    }
    for (i = 0; i < p->n_batch; i++) {
        char key[64];
        double *row;
        snprintf(key, sizeof(key), "decode.time_s[%zu]", i);
        row = profile_read_axis(path, json_array_get(rows, i), key, &n, 1, 0, e);
        if (row == NULL)
            goto fail;
        if (n != p->n_ctx) {
            free(row);
            err_at(e, path, 0, "%s: %zu values for %zu context points", key, n, p->n_ctx);
            goto fail;
        }
        for (j = 0; j < n; j++)
            p->decode_s[i * p->n_ctx + j] = row[j];
        free(row);
    }
    json_decref(root);
    return p;
fail:
    json_decref(root);
    profile_free(p);
    return NULL;
}

/* Piecewise-linear interpolation on an increasing axis, extended linearly
 * beyond both ends (a single point extends as a line through the origin). */
static double profile_interp(const double *xs, const double *ys, size_t n, double x, size_t stride)
{
    size_t lo, hi;

    if (n == 1)
        return xs[0] > 0 ? ys[0] * x / xs[0] : ys[0];
    if (x <= xs[0]) {
        lo = 0;
    } else if (x >= xs[n - 1]) {
        lo = n - 2;
    } else {
        /* Binary search for the segment holding x. */
        lo = 0;
        hi = n - 1;
        while (hi - lo > 1) {
            size_t mid = (lo + hi) / 2;
            if (xs[mid] <= x)
                lo = mid;
            else
                hi = mid;
        }
    }
    {
        double x0 = xs[lo], x1 = xs[lo + 1];
        double y0 = ys[lo * stride], y1 = ys[(lo + 1) * stride];
        double y = y0 + (y1 - y0) * (x - x0) / (x1 - x0);
        return y > 0 ? y : 0;
    }
}

static double profile_table_s(const struct profile *p, double P, double B, double C)
{
    double tp = 0, td = 0;

    if (P > 0)
        tp = profile_interp(p->prefill_tokens, p->prefill_s, p->n_prefill, P, 1);
    if (B > 0 && p->n_batch == 1) {
        td = profile_interp(p->decode_ctx, p->decode_s, p->n_ctx, C, 1) * B / p->decode_batch[0];
    } else if (B > 0) {
        /* Bilinear: interpolate along context in the two bracketing batch rows,
         * then along batch. */
        size_t lo = 0, k;
        double r0, r1, b0, b1;
        for (k = 0; k + 2 < p->n_batch && p->decode_batch[k + 1] <= B; k++)
            ;
        lo = k;
        r0 = p->n_ctx == 1 ? p->decode_s[lo * p->n_ctx]
                           : profile_interp(p->decode_ctx, p->decode_s + lo * p->n_ctx, p->n_ctx, C, 1);
        r1 = p->n_ctx == 1 ? p->decode_s[(lo + 1) * p->n_ctx]
                           : profile_interp(p->decode_ctx, p->decode_s + (lo + 1) * p->n_ctx, p->n_ctx, C, 1);
        b0 = p->decode_batch[lo];
        b1 = p->decode_batch[lo + 1];
        td = r0 + (r1 - r0) * (B - b0) / (b1 - b0);
        if (td < 0)
            td = 0;
    }
    /* A step that prefills and decodes pays the fixed cost of a step, which
     * both tables include, once. */
    if (P > 0 && B > 0)
        return tp + td - fmin(p->step_overhead_s, fmin(tp, td));
    return tp + td;
}

/* ---- roofline profiles ---------------------------------------------------- */

struct profile *profile_roofline(const struct roofline *in, struct err *e)
{
    struct profile *p = calloc(1, sizeof(*p));
    struct roofline *rf;
    double d, head_dim, kv_dim, per_layer, embed, usable;

    if (p == NULL) {
        err_set(e, ERR_SYSTEM, "out of memory");
        return NULL;
    }
    p->kind = PROFILE_ROOFLINE;
    p->rf = *in;
    rf = &p->rf;
    d = rf->model.hidden;
    head_dim = d / rf->model.heads;
    kv_dim = head_dim * rf->model.kv_heads;
    /* Attention q, o (d x d) and k, v (d x kv_dim); SwiGLU MLP 3 d ffn. */
    per_layer = 2.0 * d * d + 2.0 * d * kv_dim + 3.0 * d * rf->model.ffn;
    rf->params = per_layer * rf->model.layers;
    embed = (double)rf->model.vocab * d * (rf->model.tied ? 1 : 2);
    /* The classifier is a matmul for every token too: count it in the FLOPs. */
    rf->params += (double)rf->model.vocab * d;
    rf->weight_bytes = (per_layer * rf->model.layers + embed) * rf->bytes_per_weight;
    rf->kv_bytes_per_token = 2.0 * rf->model.layers * kv_dim * rf->kv_bytes_per_elem;
    usable = rf->gpu.mem_bytes * rf->tp * rf->memory_utilization - rf->weight_bytes;
    if (usable < rf->kv_bytes_per_token * 16) {
        err_set(e, ERR_INPUT, "%s (%.1f GB of weights) does not fit on %d x %s (%.0f GB usable)",
                rf->model.name, rf->weight_bytes / 1e9, rf->tp, rf->gpu.name,
                rf->gpu.mem_bytes * rf->tp * rf->memory_utilization / 1e9);
        free(p);
        return NULL;
    }
    p->kv_capacity_tokens = floor(usable / rf->kv_bytes_per_token);
    snprintf(p->name, sizeof(p->name), "%s on %d x %s (roofline)", rf->model.name, rf->tp, rf->gpu.name);
    return p;
}

static double profile_roofline_s(const struct roofline *rf, double P, double Pctx, double B, double C)
{
    double d = rf->model.hidden;
    double flops = 2.0 * rf->params * (P + B) + 4.0 * rf->model.layers * d * (Pctx + C);
    double bytes = rf->weight_bytes + rf->kv_bytes_per_token * (C + P);
    double t_compute = flops / (rf->tp * rf->gpu.peak_flops * rf->compute_efficiency);
    double t_memory = bytes / (rf->tp * rf->gpu.mem_bw_Bps * rf->memory_efficiency);

    return (t_compute > t_memory ? t_compute : t_memory) + rf->overhead_s;
}

double profile_iteration_s(const struct profile *p, double prefill_tokens, double prefill_ctx,
                           double decode_batch, double decode_ctx)
{
    if (prefill_tokens <= 0 && decode_batch <= 0)
        return 0.0;
    if (p->kind == PROFILE_ROOFLINE)
        return profile_roofline_s(&p->rf, prefill_tokens, prefill_ctx, decode_batch, decode_ctx);
    return profile_table_s(p, prefill_tokens, decode_batch, decode_ctx);
}

struct profile *profile_roofline_from_conf(const struct conf *c, const struct conf_node *map,
                                           struct err *e)
{
    static const char *const keys[] = {"gpu", "model", "tp", "bytes_per_weight", "kv_bytes",
                                       "compute_efficiency", "memory_efficiency", "memory_utilization",
                                       "overhead", NULL};
    const struct gpu_spec *gpu;
    const struct model_spec *model;
    const char *gname = "A100-80GB", *mname = "llama-2-7b";
    struct roofline rf;
    struct conf_node *n;
    long tp = 0;

    if (conf_check_keys(c, map, "service.roofline", keys, e) < 0)
        return NULL;
    if (conf_get_str(c, map, "gpu", &gname, e) < 0 || conf_get_str(c, map, "model", &mname, e) < 0)
        return NULL;
    gpu = catalog_gpu(gname);
    if (gpu == NULL) {
        conf_error(c, conf_get(map, "gpu"), e, "gpu: unknown GPU '%s' (known: %s)", gname, catalog_gpu_names());
        return NULL;
    }
    model = catalog_model(mname);
    if (model == NULL) {
        conf_error(c, conf_get(map, "model"), e, "model: unknown model '%s' (known: %s)", mname,
                   catalog_model_names());
        return NULL;
    }
    memset(&rf, 0, sizeof(rf));
    rf.gpu = *gpu;
    rf.model = *model;
    rf.bytes_per_weight = 2.0;
    rf.kv_bytes_per_elem = 2.0;
    rf.compute_efficiency = 0.6;
    rf.memory_efficiency = 0.8;
    rf.memory_utilization = 0.9;
    rf.overhead_s = 0.002;
    rf.tp = model->tp;
    if (conf_get_long(c, map, "tp", &tp, e) < 0)
        return NULL;
    if (tp != 0) {
        if (tp < 1 || tp > 64)
            return conf_error(c, conf_get(map, "tp"), e, "tp: expected 1..64 GPUs, got %ld", tp), NULL;
        rf.tp = (int)tp;
    }
    if (conf_get_nonneg(c, map, "bytes_per_weight", &rf.bytes_per_weight, e) < 0 ||
        conf_get_nonneg(c, map, "kv_bytes", &rf.kv_bytes_per_elem, e) < 0 ||
        conf_get_nonneg(c, map, "compute_efficiency", &rf.compute_efficiency, e) < 0 ||
        conf_get_nonneg(c, map, "memory_efficiency", &rf.memory_efficiency, e) < 0 ||
        conf_get_nonneg(c, map, "memory_utilization", &rf.memory_utilization, e) < 0 ||
        conf_get_duration(c, map, "overhead", &rf.overhead_s, e) < 0)
        return NULL;
    if (rf.bytes_per_weight <= 0 || rf.bytes_per_weight > 8)
        return conf_error(c, conf_get(map, "bytes_per_weight"), e, "bytes_per_weight: expected (0, 8]"), NULL;
    if (rf.kv_bytes_per_elem <= 0 || rf.kv_bytes_per_elem > 8)
        return conf_error(c, conf_get(map, "kv_bytes"), e, "kv_bytes: expected (0, 8]"), NULL;
    n = conf_get(map, "compute_efficiency");
    if (rf.compute_efficiency <= 0 || rf.compute_efficiency > 1)
        return conf_error(c, n, e, "compute_efficiency: expected a fraction in (0, 1]"), NULL;
    n = conf_get(map, "memory_efficiency");
    if (rf.memory_efficiency <= 0 || rf.memory_efficiency > 1)
        return conf_error(c, n, e, "memory_efficiency: expected a fraction in (0, 1]"), NULL;
    n = conf_get(map, "memory_utilization");
    if (rf.memory_utilization <= 0 || rf.memory_utilization > 1)
        return conf_error(c, n, e, "memory_utilization: expected a fraction in (0, 1]"), NULL;
    {
        struct profile *p = profile_roofline(&rf, e);
        if (p == NULL && e != NULL) {
            char where[600];
            conf_where(c, map, where, sizeof(where));
            err_prefix(e, "%s: service.roofline", where);
        }
        return p;
    }
}
