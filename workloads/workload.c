/* workload.c -- the `workload:` section of a scenario: a trace file or a
 * generator, with the options every source shares. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workloads/trace.h"
#include "workloads/trace_format.h"

/* A positive scale factor KEY of N into *out (left untouched when absent). */
static int workload_get_scale(const struct conf *c, const struct conf_node *n, const char *key, double *out,
                              struct err *e)
{
    int rc = conf_get_double(c, n, key, out, e);

    if (rc == 1 && (*out <= 0 || *out > 1000))
        return conf_error(c, conf_get(n, key), e, "%s: expected a positive factor up to 1000, got %g", key, *out);
    return rc;
}

/* Open the generator given by node GEN: an inline mapping, or the name of a
 * YAML file holding one (relative to the scenario). */
static struct trace_reader *workload_open_generator(const struct conf *c, const struct conf_node *gen,
                                                    uint64_t seed, const struct trace_options *opt,
                                                    struct err *e)
{
    bool unbounded_ok = opt->max_duration_s > 0 || opt->limit > 0;
    struct trace_reader *r;
    struct conf *spec_conf;
    const char *name;
    char path[4096], where[600];

    if (conf_is_map(gen))
        return gen_open(c, gen, seed, unbounded_ok, opt, e);
    if (conf_node_str(c, gen, "generator", &name, e) < 0)
        return NULL;
    conf_path(c, gen, name, path, sizeof(path));
    spec_conf = conf_load_file(path, e);
    if (spec_conf == NULL) {
        conf_where(c, gen, where, sizeof(where));
        err_prefix(e, "%s: generator", where);
        return NULL;
    }
    r = gen_open(spec_conf, conf_root(spec_conf), seed, unbounded_ok, opt, e);
    conf_free(spec_conf); /* the generator keeps nothing of the document */
    return r;
}

struct trace_reader *workload_open(const struct conf *c, const struct conf_node *workload, uint64_t seed,
                                   struct err *e)
{
    static const char *const keys[] = {"trace", "generator", "format", "time_scale", "rate_scale",
                                       "duration", "limit", NULL};
    struct trace_options opt;
    struct conf_node *trace_node, *gen_node;
    struct trace_reader *r;
    const char *trace_path = NULL;
    char path[4096], where[600];
    long limit = 0;

    if (workload == NULL) {
        err_set(e, ERR_INPUT, "%s: workload: missing", conf_origin(c));
        return NULL;
    }
    if (conf_check_keys(c, workload, "workload", keys, e) < 0)
        return NULL;
    memset(&opt, 0, sizeof(opt));
    opt.seed = seed;
    trace_node = conf_get(workload, "trace");
    gen_node = conf_get(workload, "generator");
    if ((trace_node == NULL) == (gen_node == NULL)) {
        conf_error(c, workload, e, "workload: give exactly one of 'trace' (a file) and 'generator' (a spec)");
        return NULL;
    }
    if (conf_get_str(c, workload, "format", &opt.format, e) < 0 ||
        workload_get_scale(c, workload, "time_scale", &opt.time_scale, e) < 0 ||
        workload_get_scale(c, workload, "rate_scale", &opt.rate_scale, e) < 0 ||
        conf_get_duration(c, workload, "duration", &opt.max_duration_s, e) < 0 ||
        conf_get_long(c, workload, "limit", &limit, e) < 0)
        return NULL;
    if (opt.format != NULL && strcmp(opt.format, "auto") != 0 && !trace_format_known(opt.format)) {
        char names[256];

        trace_format_list(names, sizeof(names));
        conf_error(c, conf_get(workload, "format"), e, "format: unknown trace format '%s' (known: auto, %s)",
                   opt.format, names);
        return NULL;
    }
    if (limit < 0) {
        conf_error(c, conf_get(workload, "limit"), e, "limit: must not be negative, got %ld", limit);
        return NULL;
    }
    opt.limit = (uint64_t)limit;
    if (gen_node != NULL) {
        if (opt.format != NULL) {
            conf_error(c, conf_get(workload, "format"), e, "format: only applies to a trace file, not a generator");
            return NULL;
        }
        return workload_open_generator(c, gen_node, seed, &opt, e);
    }
    if (conf_node_str(c, trace_node, "trace", &trace_path, e) < 0)
        return NULL;
    conf_path(c, trace_node, trace_path, path, sizeof(path));
    r = trace_open_file(path, &opt, e);
    if (r == NULL) {
        conf_where(c, trace_node, where, sizeof(where));
        err_prefix(e, "%s", where);
    }
    return r;
}
