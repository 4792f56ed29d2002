/* check_instances.c -- the built-in catalog of cloud GPU instance types
 * (sim/instances.yaml, embedded at build time) and instance types read from
 * scenarios: catalog names, overrides of a base type, custom types, and the
 * located errors for bad input. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/conf.h"
#include "sim/instances.h"
#include "sim/profile.h"

/* Read the instance type under key "instance" of YAML (origin "scn.yaml").
 * Returns 0 or -1 with the message in E. */
static int read_instance(const char *yaml, struct instance_type *out, struct err *e)
{
    struct conf *c;
    int rc;

    memset(e, 0, sizeof(*e));
    c = conf_load_string(yaml, "scn.yaml", e);
    ck_assert_msg(c != NULL, "YAML: %s", e->msg);
    rc = instance_from_conf(c, conf_get(conf_root(c), "instance"), out, e);
    conf_free(c);
    return rc;
}

/* The error message for YAML, which must be refused with ERR_INPUT. */
static const char *instance_error(const char *yaml)
{
    static struct err e;
    struct instance_type t;

    ck_assert_int_eq(read_instance(yaml, &t, &e), -1);
    ck_assert_int_eq(e.code, ERR_INPUT);
    return e.msg;
}

START_TEST(test_catalog_parses)
{
    struct err e = {0};
    size_t i;

    ck_assert_msg(instances_init(&e) == 0, "embedded catalog: %s", e.msg);
    ck_assert_uint_ge(instances_count(), 12);
    ck_assert_ptr_null(instances_at(instances_count()));
    for (i = 0; i < instances_count(); i++) {
        const struct instance_type *t = instances_at(i);
        const struct gpu_spec *g = catalog_gpu(t->gpu);

        ck_assert_ptr_nonnull(t);
        ck_assert_msg(t->gpus > 0, "%s: gpus", t->name);
        ck_assert_msg(g != NULL, "%s: gpu '%s' is not a roofline GPU", t->name, t->gpu);
        ck_assert_msg(t->gpu_memory_gb > 0 && t->vcpus > 0 && t->memory_gb > 0, "%s: sizes", t->name);
        ck_assert_msg(t->on_demand_usd_h > 0, "%s: on-demand price", t->name);
        ck_assert_msg(t->spot_usd_h > 0 && t->spot_usd_h < t->on_demand_usd_h, "%s: spot price", t->name);
        ck_assert_msg(t->reserved_usd_h == 0 || t->reserved_usd_h < t->on_demand_usd_h, "%s: reserved", t->name);
        ck_assert_msg(strlen(t->published) == 10, "%s: published '%s'", t->name, t->published);
        ck_assert_msg(t->region[0] != '\0', "%s: region", t->name);
        ck_assert_ptr_eq(instances_find(t->name), t);
        ck_assert_ptr_nonnull(strstr(instances_names(), t->name));
        if (strcmp(t->provider, "aws") == 0)
            ck_assert_double_eq(t->spot_notice_s, 120);
        else
            ck_assert_msg(strcmp(t->provider, "gcp") == 0 || strcmp(t->provider, "azure") == 0, "%s: provider %s",
                          t->name, t->provider);
        if (strcmp(t->provider, "aws") != 0)
            ck_assert_double_eq(t->spot_notice_s, 30);
    }
    ck_assert_ptr_null(instances_find("no-such-type"));
    ck_assert_ptr_null(instances_find(NULL));
}
END_TEST

START_TEST(test_catalog_required)
{
    static const struct {
        const char *name;
        int gpus;
        const char *gpu;
    } want[] = {
        {"g5.xlarge", 1, "A10G"},
        {"g5.12xlarge", 4, "A10G"},
        {"g6.xlarge", 1, "L4"},
        {"p4d.24xlarge", 8, "A100-40GB"},
        {"p4de.24xlarge", 8, "A100-80GB"},
        {"p5.48xlarge", 8, "H100"},
        {"g2-standard-4", 1, "L4"},
        {"a2-highgpu-1g", 1, "A100-40GB"},
        {"a2-ultragpu-1g", 1, "A100-80GB"},
        {"a3-highgpu-8g", 8, "H100"},
        {"Standard_NC24ads_A100_v4", 1, "A100-80GB"},
        {"Standard_NC40ads_H100_v5", 1, "H100"},
    };
    size_t i;

    for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const struct instance_type *t = instances_find(want[i].name);

        ck_assert_msg(t != NULL, "%s missing from the catalog", want[i].name);
        ck_assert_int_eq(t->gpus, want[i].gpus);
        ck_assert_str_eq(t->gpu, want[i].gpu);
    }
    /* The P5 price is the list after AWS's June 2025 reduction. */
    ck_assert_double_lt(instances_find("p5.48xlarge")->on_demand_usd_h, 60);
}
END_TEST

START_TEST(test_from_name)
{
    struct instance_type t;
    struct err e;

    ck_assert_int_eq(read_instance("instance: g5.xlarge\n", &t, &e), 0);
    ck_assert_str_eq(t.name, "g5.xlarge");
    ck_assert_str_eq(t.provider, "aws");
    ck_assert_str_eq(t.region, "us-east-1");
    ck_assert_int_eq(t.gpus, 1);
    ck_assert_str_eq(t.gpu, "A10G");
    ck_assert_double_eq_tol(t.on_demand_usd_h, 1.006, 1e-9);
    ck_assert_double_eq(t.spot_notice_s, 120);
}
END_TEST

START_TEST(test_override)
{
    struct instance_type t;
    struct err e;

    ck_assert_int_eq(read_instance("instance:\n"
                                   "  base: p5.48xlarge\n"
                                   "  on_demand_usd_per_hour: 40\n"
                                   "  spot_usd_per_hour: 15.5\n"
                                   "  spot_notice: 2m\n"
                                   "  published: 2026-01-02\n",
                                   &t, &e),
                     0);
    ck_assert_str_eq(t.name, "p5.48xlarge");
    ck_assert_str_eq(t.provider, "aws");
    ck_assert_int_eq(t.gpus, 8);
    ck_assert_str_eq(t.gpu, "H100");
    ck_assert_double_eq(t.on_demand_usd_h, 40);
    ck_assert_double_eq(t.spot_usd_h, 15.5);
    ck_assert_double_eq(t.spot_notice_s, 120);
    ck_assert_str_eq(t.published, "2026-01-02");
    ck_assert_double_eq(t.vcpus, instances_find("p5.48xlarge")->vcpus);
    /* The catalog itself is unchanged. */
    ck_assert_double_eq_tol(instances_find("p5.48xlarge")->on_demand_usd_h, 55.04, 1e-9);

    /* Changing the GPU takes that GPU's memory unless it is given. */
    ck_assert_int_eq(read_instance("instance: {base: p5.48xlarge, name: p5e.48xlarge, gpu: h200}\n", &t, &e), 0);
    ck_assert_str_eq(t.name, "p5e.48xlarge");
    ck_assert_str_eq(t.gpu, "H200");
    ck_assert_double_eq_tol(t.gpu_memory_gb, 141, 1e-9);
}
END_TEST

START_TEST(test_custom)
{
    struct instance_type t;
    struct err e;

    ck_assert_int_eq(read_instance("instance:\n"
                                   "  name: my-box\n"
                                   "  gpus: 2\n"
                                   "  gpu: A100-80GB\n"
                                   "  on_demand_usd_per_hour: 6.5\n",
                                   &t, &e),
                     0);
    ck_assert_str_eq(t.name, "my-box");
    ck_assert_str_eq(t.provider, "other");
    ck_assert_int_eq(t.gpus, 2);
    ck_assert_str_eq(t.gpu, "A100-80GB");
    ck_assert_double_eq_tol(t.gpu_memory_gb, 80, 1e-9);
    ck_assert_double_eq(t.on_demand_usd_h, 6.5);
    ck_assert_double_eq(t.spot_usd_h, 0);
    ck_assert_double_eq(t.reserved_usd_h, 0);
    ck_assert_double_eq(t.spot_notice_s, 30);
    ck_assert_str_eq(t.published, "");

    ck_assert_int_eq(read_instance("instance: {provider: aws, gpus: 1, gpu: L4, on_demand_usd_per_hour: 1}\n", &t, &e),
                     0);
    ck_assert_str_eq(t.name, "custom");
    ck_assert_double_eq(t.spot_notice_s, 120);
}
END_TEST

START_TEST(test_errors)
{
    const char *m;

    m = instance_error("instance: g9.huge\n");
    ck_assert_msg(strstr(m, "scn.yaml:1: ") == m, "%s", m);
    ck_assert_msg(strstr(m, "unknown instance type 'g9.huge'") != NULL, "%s", m);
    ck_assert_msg(strstr(m, "known: ") != NULL && strstr(m, "g5.xlarge") != NULL && strstr(m, "p5.48xlarge") != NULL,
                  "%s", m);

    m = instance_error("instance:\n  base: nope\n");
    ck_assert_msg(strstr(m, "scn.yaml:2: base: unknown instance type 'nope' (known: ") == m, "%s", m);

    m = instance_error("instance:\n  base: g5.xlarge\n  on_demand_usd_per_hr: 2\n");
    ck_assert_msg(strstr(m, "scn.yaml:3: ") == m && strstr(m, "unknown key 'on_demand_usd_per_hr'") != NULL, "%s",
                  m);

    m = instance_error("instance:\n  base: g5.xlarge\n  spot_usd_per_hour: -0.5\n");
    ck_assert_msg(strstr(m, "scn.yaml:3: spot_usd_per_hour: must not be negative") == m, "%s", m);

    m = instance_error("instance:\n  base: g5.xlarge\n  on_demand_usd_per_hour: 0\n");
    ck_assert_msg(strstr(m, "scn.yaml:3: on_demand_usd_per_hour: must be positive") == m, "%s", m);

    m = instance_error("instance:\n  name: x\n  gpus: 1\n  gpu: V100\n  on_demand_usd_per_hour: 1\n");
    ck_assert_msg(strstr(m, "scn.yaml:4: gpu: unknown GPU 'V100' (known: A10G,") == m, "%s", m);

    m = instance_error("instance:\n  name: x\n  gpus: 1\n  on_demand_usd_per_hour: 1\n");
    ck_assert_msg(strstr(m, "scn.yaml:2: ") == m && strstr(m, "missing required key 'gpu'") != NULL, "%s", m);

    m = instance_error("instance:\n  base: g5.xlarge\n  gpus: two\n");
    ck_assert_msg(strstr(m, "scn.yaml:3: gpus: expected an integer") == m, "%s", m);

    m = instance_error("instance:\n  base: g5.xlarge\n  gpus: 0\n");
    ck_assert_msg(strstr(m, "scn.yaml:3: gpus: must be 1 to") == m, "%s", m);

    m = instance_error("instance:\n  base: g5.xlarge\n  on_demand_usd_per_hour: [1]\n");
    ck_assert_msg(strstr(m, "scn.yaml:3: on_demand_usd_per_hour: expected a scalar") == m, "%s", m);

    m = instance_error("instance:\n  base: g5.xlarge\n  provider: ibm\n");
    ck_assert_msg(strstr(m, "scn.yaml:3: provider: unknown value 'ibm'") == m, "%s", m);

    m = instance_error("instance:\n  base: g5.xlarge\n  published: 2025-13-01\n");
    ck_assert_msg(strstr(m, "scn.yaml:3: published: expected a date YYYY-MM-DD") == m, "%s", m);

    m = instance_error("instance:\n  base: g5.xlarge\n  spot_notice: soon\n");
    ck_assert_msg(strstr(m, "scn.yaml:3: spot_notice: ") == m, "%s", m);

    m = instance_error("instance: [g5.xlarge]\n");
    ck_assert_msg(strstr(m, "scn.yaml:1: instance: expected an instance type name or a mapping") == m, "%s", m);
}
END_TEST

static Suite *suite_instances(void)
{
    Suite *s = suite_create("instances");
    TCase *tc = tcase_create("catalog");

    tcase_add_test(tc, test_catalog_parses);
    tcase_add_test(tc, test_catalog_required);
    tcase_add_test(tc, test_from_name);
    tcase_add_test(tc, test_override);
    tcase_add_test(tc, test_custom);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite_instances());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
