/* instances.h -- cloud GPU instance types and their prices.
 *
 * The built-in catalog is sim/instances.yaml, compiled into the binary
 * (sim/instances_data.c is generated from it) and parsed once, on first use,
 * with common/conf.  A scenario names a type of the catalog, changes some of
 * its fields, or defines its own (instance_from_conf).  Prices are per
 * instance-hour in USD; 0 means "not known" for the spot and reserved
 * prices.  See sim/instances.yaml for the meaning and the source of each
 * figure. */
#ifndef LLM_INSTANCES_H
#define LLM_INSTANCES_H

#include <stddef.h>

#include "common/conf.h"
#include "common/err.h"

struct instance_type {
    char name[64];          /* "g5.xlarge" */
    char provider[16];      /* aws, gcp, azure, or other for a custom type */
    char region[32];        /* the region the prices are for ("" if unknown) */
    int gpus;               /* GPUs per instance, >= 1 */
    char gpu[32];           /* a roofline GPU of sim/catalog.c (catalog_gpu()) */
    double gpu_memory_gb;   /* memory of one GPU */
    double vcpus;
    double memory_gb;       /* host memory */
    double on_demand_usd_h; /* > 0 */
    double spot_usd_h;      /* 0 when unknown */
    double reserved_usd_h;  /* 1-year commitment, effective hourly; 0 when unknown */
    double spot_notice_s;   /* warning before a spot instance is reclaimed */
    char published[16];     /* YYYY-MM-DD the prices were published or recorded; "" if unknown */
};

/* Parse the built-in catalog if that has not been done yet (thread-safe: the
 * parse runs once).  Returns 0, or -1 with e set if the embedded text is
 * broken -- a programming error, which tests/check_instances catches.  The
 * catalog is read-only afterwards. */
int instances_init(struct err *e);

/* The catalog entry named NAME (case-sensitive, as the providers spell it),
 * or NULL if there is none or the catalog is broken. */
const struct instance_type *instances_find(const char *name);

/* The number of catalog entries and the I-th one (in file order); 0 and
 * NULL if the catalog is broken. */
size_t instances_count(void);
const struct instance_type *instances_at(size_t i);

/* The catalog's names, comma-separated, for error messages. */
const char *instances_names(void);

/* Read an instance type from scenario node N into OUT: either a scalar naming
 * a catalog type, or a mapping
 *   {base, name, provider, region, gpus, gpu, gpu_memory_gb, vcpus, memory_gb,
 *    on_demand_usd_per_hour, spot_usd_per_hour, reserved_usd_per_hour,
 *    spot_notice, spot_note, source, published}
 * whose keys override the fields of catalog type BASE or, without base,
 * define a custom type (gpus, gpu and on_demand_usd_per_hour required; the
 * name defaults to "custom", gpu_memory_gb to the GPU's memory, provider to
 * "other", spot_notice to 30 s, or 120 s for aws).  Unknown keys, wrong types,
 * negative prices, unknown catalog names (the message lists the known ones)
 * and unknown GPUs are input errors located at FILE:LINE.  Returns 0 or -1. */
int instance_from_conf(const struct conf *c, const struct conf_node *n, struct instance_type *out,
                       struct err *e);

#endif
