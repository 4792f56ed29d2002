/* catalog.c -- the built-in GPUs and model shapes behind roofline profiles.
 *
 * GPU figures are the vendor's datasheet values for dense (non-sparse)
 * BF16/FP16 tensor throughput and memory bandwidth (SXM parts where there is a
 * choice).  Prices are reference on-demand list prices per GPU-hour (the
 * instance price divided by its GPUs: AWS g5.xlarge, g6.xlarge, p4d.24xlarge,
 * p4de.24xlarge, p5.48xlarge, p5e.48xlarge, us-east-1, 2024 list prices); set
 * cluster.gpu_hourly_usd for your own.  Model shapes are those of the
 * published configs (config.json) of each checkpoint. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sim/profile.h"

static const struct gpu_spec catalog_gpus[] = {
    {"A10G", 70e12, 600e9, 24e9, 1.006, "NVIDIA A10G (AWS g5): 70 TFLOP/s BF16 dense, 600 GB/s, 24 GB"},
    {"L4", 121e12, 300e9, 24e9, 0.805, "NVIDIA L4: 121 TFLOP/s BF16 dense, 300 GB/s, 24 GB"},
    {"A100-40GB", 312e12, 1555e9, 40e9, 4.096, "NVIDIA A100 SXM 40GB: 312 TFLOP/s BF16 dense, 1555 GB/s"},
    {"A100-80GB", 312e12, 2039e9, 80e9, 5.121, "NVIDIA A100 SXM 80GB: 312 TFLOP/s BF16 dense, 2039 GB/s"},
    {"H100", 989e12, 3350e9, 80e9, 12.290, "NVIDIA H100 SXM: 989 TFLOP/s BF16 dense, 3.35 TB/s, 80 GB"},
    {"H200", 989e12, 4800e9, 141e9, 13.000, "NVIDIA H200 SXM: 989 TFLOP/s BF16 dense, 4.8 TB/s, 141 GB"},
};

static const struct model_spec catalog_models[] = {
    /* name           layers hidden heads kv  ffn    vocab  tied tp */
    {"llama-2-7b", 32, 4096, 32, 32, 11008, 32000, 0, 1},
    {"llama-3-8b", 32, 4096, 32, 8, 14336, 128256, 0, 1},
    {"llama-2-13b", 40, 5120, 40, 40, 13824, 32000, 0, 1},
    {"llama-2-70b", 80, 8192, 64, 8, 28672, 32000, 0, 8},
};

#define CATALOG_LEN(a) (sizeof(a) / sizeof((a)[0]))

const struct gpu_spec *catalog_gpu(const char *name)
{
    size_t i;

    for (i = 0; i < CATALOG_LEN(catalog_gpus); i++)
        if (strcasecmp(catalog_gpus[i].name, name) == 0)
            return &catalog_gpus[i];
    return NULL;
}

const struct model_spec *catalog_model(const char *name)
{
    size_t i;

    for (i = 0; i < CATALOG_LEN(catalog_models); i++)
        if (strcasecmp(catalog_models[i].name, name) == 0)
            return &catalog_models[i];
    return NULL;
}

const char *catalog_gpu_names(void)
{
    static char buf[256];
    size_t i, used = 0;

    if (buf[0] == '\0')
        for (i = 0; i < CATALOG_LEN(catalog_gpus); i++)
            used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s%s", i ? ", " : "", catalog_gpus[i].name);
    return buf;
}

const char *catalog_model_names(void)
{
    static char buf[256];
    size_t i, used = 0;

    if (buf[0] == '\0')
        for (i = 0; i < CATALOG_LEN(catalog_models); i++)
            used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s%s", i ? ", " : "", catalog_models[i].name);
    return buf;
}
