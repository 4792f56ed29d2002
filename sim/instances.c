/* instances.c -- the catalog of cloud GPU instance types (sim/instances.yaml,
 * embedded at build time) and instance types read from scenarios.
 *
 * One reader, instance_read(), serves both: a catalog entry is read in
 * strict mode (every field required, so a gap in the shipped file fails the
 * unit test), a scenario's mapping in override mode (fields of a base type,
 * or of a custom one, replaced one by one). */
#include "config.h"

#include <assert.h>
#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "sim/instances.h"
#include "sim/profile.h"

/* Generated from sim/instances.yaml by reports/embed.sh (see Makefile.am),
 * which names every embedded text report_tpl_<file name>. */
extern const char report_tpl_instances_yaml[];

#define INSTANCES_MAX 128        /* entries in the built-in catalog */
#define INSTANCES_MAX_GPUS 1024L /* GPUs in one instance */
#define INSTANCES_ORIGIN "sim/instances.yaml (built in)"

static struct instance_type instances_catalog[INSTANCES_MAX];
static size_t instances_len;
static char instances_names_buf[4096];
static struct err instances_init_err;
static int instances_init_rc;
static pthread_once_t instances_once = PTHREAD_ONCE_INIT;

static const char *const instance_providers[] = {"aws", "gcp", "azure", "other", NULL};

/* Copy string KEY of MAP into BUF (LEN bytes).  Returns 1, 0 if absent, -1. */
static int instance_get_text(const struct conf *c, const struct conf_node *map, const char *key, char *buf,
                             size_t len, struct err *e)
{
    const char *s;
    int rc = conf_get_str(c, map, key, &s, e);

    if (rc <= 0)
        return rc;
    if (strlen(s) >= len)
        return conf_error(c, conf_get(map, key), e, "%s: longer than %zu characters", key, len - 1);
    memcpy(buf, s, strlen(s) + 1);
    return 1;
}

/* A date YYYY-MM-DD with a month 01-12 and a day 01-31. */
static bool instance_is_date(const char *s)
{
    int i, month, day;

    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
            return false;
    month = (s[5] - '0') * 10 + (s[6] - '0');
    day = (s[8] - '0') * 10 + (s[9] - '0');
    return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

/* Read a non-negative price KEY into *OUT; a required positive one refuses 0.
 * Returns 1, 0 if absent, -1. */
static int instance_get_price(const struct conf *c, const struct conf_node *map, const char *key, bool positive,
                              double *out, struct err *e)
{
    int rc = conf_get_nonneg(c, map, key, out, e);

    if (rc > 0 && positive && *out <= 0)
        return conf_error(c, conf_get(map, key), e, "%s: must be positive", key);
    return rc;
}

/* Read mapping MAP into OUT.  STRICT (a catalog entry): every field but the
 * reserved price is required and base is not allowed.  Otherwise OUT starts
 * from BASE, or from a custom type when BASE is NULL (then gpus, gpu and
 * on_demand_usd_per_hour are required).  Returns 0 or -1. */
static int instance_read(const struct conf *c, const struct conf_node *map, const struct instance_type *base,
                         bool strict, struct instance_type *out, struct err *e)
{
    static const char *const keys[] = {"base", "name", "provider", "region", "gpus", "gpu", "gpu_memory_gb",
                                       "vcpus", "memory_gb", "on_demand_usd_per_hour", "spot_usd_per_hour",
                                       "reserved_usd_per_hour", "spot_notice", "spot_note", "source",
                                       "published", NULL};
    static const char *const required_strict[] = {"name", "provider", "region", "gpus", "gpu", "gpu_memory_gb",
                                                  "vcpus", "memory_gb", "on_demand_usd_per_hour",
                                                  "spot_usd_per_hour", "spot_notice", "spot_note", "source",
                                                  "published", NULL};
    static const char *const required_custom[] = {"gpus", "gpu", "on_demand_usd_per_hour", NULL};
    const char *const *req = strict ? required_strict : base == NULL ? required_custom : NULL;
    const char *what = strict ? "instances[]" : "instance";
    const struct gpu_spec *g;
    const char *s;
    long gpus;
    int provider, rc;

    if (conf_check_keys(c, map, what, strict ? keys + 1 : keys, e) < 0)
        return -1;
    for (; req != NULL && *req != NULL; req++)
        if (conf_get(map, *req) == NULL)
            return conf_error(c, map, e, "%s: missing required key '%s'", what, *req);

    if (base != NULL) {
        *out = *base;
    } else {
        memset(out, 0, sizeof(*out));
        snprintf(out->name, sizeof(out->name), "custom");
        snprintf(out->provider, sizeof(out->provider), "other");
        out->spot_notice_s = 30;
    }
    if (instance_get_text(c, map, "name", out->name, sizeof(out->name), e) < 0 ||
        instance_get_text(c, map, "region", out->region, sizeof(out->region), e) < 0)
        return -1;
    rc = conf_get_enum(c, map, "provider", instance_providers, &provider, e);
    if (rc < 0)
        return -1;
    if (rc > 0) {
        snprintf(out->provider, sizeof(out->provider), "%s", instance_providers[provider]);
        if (base == NULL)
            out->spot_notice_s = strcmp(out->provider, "aws") == 0 ? 120 : 30;
    }
    rc = conf_get_long(c, map, "gpus", &gpus, e);
    if (rc < 0)
        return -1;
    if (rc > 0) {
        if (gpus < 1 || gpus > INSTANCES_MAX_GPUS)
            return conf_error(c, conf_get(map, "gpus"), e, "gpus: must be 1 to %ld, got %ld", INSTANCES_MAX_GPUS,
                              gpus);
        out->gpus = (int)gpus;
    }
    rc = conf_get_str(c, map, "gpu", &s, e);
    if (rc < 0)
        return -1;
    if (rc > 0) {
        g = catalog_gpu(s);
        if (g == NULL)
            return conf_error(c, conf_get(map, "gpu"), e, "gpu: unknown GPU '%s' (known: %s)", s,
                              catalog_gpu_names());
        snprintf(out->gpu, sizeof(out->gpu), "%s", g->name);
        out->gpu_memory_gb = g->mem_bytes / 1e9; /* unless given below */
    }
    if (conf_get_nonneg(c, map, "gpu_memory_gb", &out->gpu_memory_gb, e) < 0 ||
        conf_get_nonneg(c, map, "vcpus", &out->vcpus, e) < 0 ||
        conf_get_nonneg(c, map, "memory_gb", &out->memory_gb, e) < 0 ||
        instance_get_price(c, map, "on_demand_usd_per_hour", true, &out->on_demand_usd_h, e) < 0 ||
        instance_get_price(c, map, "spot_usd_per_hour", false, &out->spot_usd_h, e) < 0 ||
        instance_get_price(c, map, "reserved_usd_per_hour", false, &out->reserved_usd_h, e) < 0 ||
        conf_get_duration(c, map, "spot_notice", &out->spot_notice_s, e) < 0 ||
        conf_get_str(c, map, "spot_note", &s, e) < 0 || conf_get_str(c, map, "source", &s, e) < 0)
        return -1;
    rc = instance_get_text(c, map, "published", out->published, sizeof(out->published), e);
    if (rc < 0)
        return -1;
    if (rc > 0 && !instance_is_date(out->published))
        return conf_error(c, conf_get(map, "published"), e, "published: expected a date YYYY-MM-DD, got '%s'",
                          out->published);
    if (out->name[0] == '\0')
        return conf_error(c, map, e, "%s: name must not be empty", what);
    return 0;
}

/* Parse the embedded catalog into instances_catalog (run once). */
static void instances_parse(void)
{
    struct err *e = &instances_init_err;
    struct conf *c = conf_load_string(report_tpl_instances_yaml, INSTANCES_ORIGIN, e);
    struct conf_node *root;
    size_t i, j, used = 0;

    instances_init_rc = -1;
    if (c == NULL)
        return;
    root = conf_root(c);
    if (!conf_is_seq(root)) {
        conf_error(c, root, e, "expected a list of instance types");
        goto out;
    }
    if (conf_seq_len(root) > INSTANCES_MAX) {
        conf_error(c, root, e, "more than %d instance types", INSTANCES_MAX);
        goto out;
    }
    for (i = 0; i < conf_seq_len(root); i++) {
        struct conf_node *item = conf_seq_at(root, i);
        struct instance_type *t = &instances_catalog[i];

        if (instance_read(c, item, NULL, true, t, e) < 0)
            goto out;
        for (j = 0; j < i; j++)
            if (strcmp(instances_catalog[j].name, t->name) == 0) {
                conf_error(c, item, e, "instance type '%s' listed twice", t->name);
                goto out;
            }
        used += (size_t)snprintf(instances_names_buf + used, sizeof(instances_names_buf) - used, "%s%s",
                                 i ? ", " : "", t->name);
        if (used >= sizeof(instances_names_buf)) {
            err_set(e, ERR_SYSTEM, "%s: the list of names does not fit in %zu bytes", INSTANCES_ORIGIN,
                    sizeof(instances_names_buf));
            goto out;
        }
    }
    instances_len = i;
    instances_init_rc = 0;
out:
    if (instances_init_rc < 0) {
        instances_len = 0;
        instances_names_buf[0] = '\0';
    }
    conf_free(c);
}

int instances_init(struct err *e)
{
    pthread_once(&instances_once, instances_parse);
    if (instances_init_rc < 0 && e != NULL)
        *e = instances_init_err;
    return instances_init_rc;
}

const struct instance_type *instances_find(const char *name)
{
    size_t i;

    if (instances_init(NULL) < 0 || name == NULL)
        return NULL;
    for (i = 0; i < instances_len; i++)
        if (strcmp(instances_catalog[i].name, name) == 0)
            return &instances_catalog[i];
    return NULL;
}

size_t instances_count(void)
{
    return instances_init(NULL) < 0 ? 0 : instances_len;
}

const struct instance_type *instances_at(size_t i)
{
    return i < instances_count() ? &instances_catalog[i] : NULL;
}

const char *instances_names(void)
{
    instances_init(NULL);
    return instances_names_buf;
}

/* The catalog type named by scalar node N, or NULL with e set. */
static const struct instance_type *instance_lookup(const struct conf *c, const struct conf_node *n,
                                                   const char *what, struct err *e)
{
    const struct instance_type *t;
    const char *s;

    if (conf_node_str(c, n, what, &s, e) < 0)
        return NULL;
    t = instances_find(s);
    if (t == NULL)
        conf_error(c, n, e, "%s: unknown instance type '%s' (known: %s)", what, s, instances_names());
    return t;
}

int instance_from_conf(const struct conf *c, const struct conf_node *n, struct instance_type *out,
                       struct err *e)
{
    const struct instance_type *base = NULL;
    struct conf_node *b;

    assert(out != NULL);
    if (n == NULL)
        return err_set(e, ERR_INPUT, "instance: no instance type given");
    if (instances_init(e) < 0)
        return -1;
    if (conf_is_scalar(n)) {
        base = instance_lookup(c, n, "instance", e);
        if (base == NULL)
            return -1;
        *out = *base;
        return 0;
    }
    if (!conf_is_map(n))
        return conf_error(c, n, e, "instance: expected an instance type name or a mapping");
    b = conf_get(n, "base");
    if (b != NULL && (base = instance_lookup(c, b, "base", e)) == NULL)
        return -1;
    return instance_read(c, n, base, false, out, e);
}
