/* cmd_instances.c -- `llmsim instances [--json]`: print the built-in catalog
 * of cloud GPU instance types (sim/instances.yaml) and their prices. */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "common/log.h"
#include "sim/command.h"
#include "sim/instances.h"

static void instances_usage(FILE *f)
{
    fprintf(f,
            "usage: llmsim instances [--json]\n"
            "\n"
            "List the built-in cloud GPU instance types with their prices in USD per\n"
            "instance-hour: on-demand, spot and 1-year reserved ('-' when not known), the\n"
            "on-demand price per GPU-hour, and the date the prices were published or\n"
            "recorded.  Prices change: check them.  The catalog, with the source of every\n"
            "figure and how a scenario overrides it, is installed as\n"
            "  %s/instances.yaml\n"
            "\n"
            "options:\n"
            "      --json   print a JSON array instead of a table\n"
            "  -h, --help   this help\n"
            "\n"
            "Exit status: 0 ok, 1 failure, 2 usage.\n",
            LLMSCALE_DATADIR);
}

/* A price, or "-" when it is not known (0). */
static const char *instances_price(double usd, char *buf, size_t len)
{
    if (usd <= 0)
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%.4f", usd);
    return buf;
}

static void instances_print_table(void)
{
    char od[32], spot[32], res[32], per_gpu[32];
    size_t i;

    printf("%-26s %-8s %-12s %4s %-10s %10s %10s %10s %9s  %s\n", "NAME", "PROVIDER", "REGION", "GPUS", "GPU",
           "ON-DEMAND", "SPOT", "RESERVED", "$/GPU-H", "PUBLISHED");
    for (i = 0; i < instances_count(); i++) {
        const struct instance_type *t = instances_at(i);

        printf("%-26s %-8s %-12s %4d %-10s %10s %10s %10s %9s  %s\n", t->name, t->provider, t->region, t->gpus,
               t->gpu, instances_price(t->on_demand_usd_h, od, sizeof(od)),
               instances_price(t->spot_usd_h, spot, sizeof(spot)),
               instances_price(t->reserved_usd_h, res, sizeof(res)),
               instances_price(t->on_demand_usd_h / t->gpus, per_gpu, sizeof(per_gpu)), t->published);
    }
    printf("USD per instance-hour ('-': not known).  Prices change: check them; sources in %s/instances.yaml.\n",
           LLMSCALE_DATADIR);
}

/* A price as a JSON number, or null when it is not known. */
static json_t *instances_price_json(double usd)
{
    return usd > 0 ? json_real(usd) : json_null();
}

static int instances_print_json(void)
{
    json_t *arr = json_array();
    size_t i;
    int rc;

    if (arr == NULL)
        return -1;
    for (i = 0; i < instances_count(); i++) {
        const struct instance_type *t = instances_at(i);
        json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:s, s:f, s:f, s:f, s:f, s:o, s:o, s:f, s:f, s:s}", "name",
                              t->name, "provider", t->provider, "region", t->region, "gpus", t->gpus, "gpu", t->gpu,
                              "gpu_memory_gb", t->gpu_memory_gb, "vcpus", t->vcpus, "memory_gb", t->memory_gb,
                              "on_demand_usd_per_hour", t->on_demand_usd_h, "spot_usd_per_hour",
                              instances_price_json(t->spot_usd_h), "reserved_usd_per_hour",
                              instances_price_json(t->reserved_usd_h), "on_demand_usd_per_gpu_hour",
                              t->on_demand_usd_h / t->gpus, "spot_notice_s", t->spot_notice_s, "published",
                              t->published);

        if (o == NULL || json_array_append_new(arr, o) < 0) {
            json_decref(arr);
            return -1;
        }
    }
    rc = json_dumpf(arr, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    json_decref(arr);
    if (rc < 0)
        return -1;
    putchar('\n');
    return 0;
}

static int cmd_instances_exec(int argc, char **argv)
{
    struct err e = {0};
    bool json = false;
    int i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            instances_usage(stdout);
            return 0;
        } else {
            log_error("instances: unknown argument '%s'", argv[i]);
            instances_usage(stderr);
            return 2;
        }
    }
    if (instances_init(&e) < 0) {
        log_error("%s", e.msg);
        return 1;
    }
    if (json) {
        if (instances_print_json() < 0) {
            log_error("instances: cannot write JSON");
            return 1;
        }
    } else {
        instances_print_table();
    }
    if (fflush(stdout) != 0) {
        log_error("instances: cannot write to standard output");
        return 1;
    }
    return 0;
}

const struct command cmd_instances_entry = {
    .name = "instances",
    .summary = "list the built-in cloud GPU instance types and their prices",
    .exec = cmd_instances_exec,
};
