/* check_metrics.c -- unit tests of server/metrics.c: names, labels and
 * their escaping, counters, gauges, histogram buckets, and the text
 * exposition format.  (tests/server_api.sh runs `promtool check metrics` on
 * a live server's output.) */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/metrics.h"

#define ASSERT_HAS(m, s) ck_assert_msg(strstr((m), (s)) != NULL, "expected '%s' in:\n%s", (s), (m))

static char *expose(struct metrics *r)
{
    char *out;
    size_t len;

    ck_assert_int_eq(metrics_expose(r, &out, &len), 0);
    ck_assert_uint_eq(strlen(out), len);
    return out;
}

START_TEST(test_bad_declarations)
{
    struct metrics *r = metrics_create();
    static const char *const le[] = {"le", NULL};
    static const char *const bad[] = {"a-b", NULL};
    static const char *const five[] = {"a", "b", "c", "d", "e", NULL};
    const double b[] = {1, 2}, unsorted[] = {2, 1};

    ck_assert_ptr_null(metrics_family(r, "requests", "h", METRIC_COUNTER, NULL, NULL, 0)); /* no _total */
    ck_assert_ptr_null(metrics_family(r, "9lives", "h", METRIC_GAUGE, NULL, NULL, 0));
    ck_assert_ptr_null(metrics_family(r, "a b", "h", METRIC_GAUGE, NULL, NULL, 0));
    ck_assert_ptr_null(metrics_family(r, "", "h", METRIC_GAUGE, NULL, NULL, 0));
    ck_assert_ptr_null(metrics_family(r, "x", "h", METRIC_GAUGE, le, NULL, 0));
    ck_assert_ptr_null(metrics_family(r, "x", "h", METRIC_GAUGE, bad, NULL, 0));
    ck_assert_ptr_null(metrics_family(r, "x", "h", METRIC_GAUGE, five, NULL, 0));
    ck_assert_ptr_null(metrics_family(r, "x_seconds", "h", METRIC_HISTOGRAM, NULL, NULL, 0));
    ck_assert_ptr_null(metrics_family(r, "x_seconds", "h", METRIC_HISTOGRAM, NULL, unsorted, 2));
    ck_assert_ptr_nonnull(metrics_family(r, "x_seconds", "h", METRIC_HISTOGRAM, NULL, b, 2));
    metrics_free(r);
}
END_TEST

START_TEST(test_counter_gauge_exposition)
{
    struct metrics *r = metrics_create();
    static const char *const lbl[] = {"endpoint", "status", NULL};
    struct metric_family *c = metrics_family(r, "t_requests_total", "Requests by endpoint.\nSecond \\ line.",
                                             METRIC_COUNTER, lbl, NULL, 0);
    struct metric_family *g = metrics_family(r, "t_ready", "Ready.", METRIC_GAUGE, NULL, NULL, 0);
    const char *a[] = {"/v1/chat", "200"}, *b[] = {"we\"ird\\path\n", "404"};
    char *out;

    metric_inc(c, a, 1);
    metric_inc(c, a, 2);
    metric_inc(c, b, 1);
    metric_inc(c, a, -5); /* counters never go down */
    metric_set(g, NULL, 0.25);
    metric_inc(g, NULL, 1);
    ck_assert_double_eq(metric_get(c, a), 3);
    ck_assert_double_eq(metric_get(g, NULL), 1.25);
    out = expose(r);
    ASSERT_HAS(out, "# HELP t_requests_total Requests by endpoint.\\nSecond \\\\ line.\n");
    ASSERT_HAS(out, "# TYPE t_requests_total counter\n");
    ASSERT_HAS(out, "t_requests_total{endpoint=\"/v1/chat\",status=\"200\"} 3\n");
    ASSERT_HAS(out, "t_requests_total{endpoint=\"we\\\"ird\\\\path\\n\",status=\"404\"} 1\n");
    ASSERT_HAS(out, "# TYPE t_ready gauge\nt_ready 1.25\n");
    free(out);
    metrics_free(r);
}
END_TEST

START_TEST(test_histogram_buckets)
{
    struct metrics *r = metrics_create();
    const double bounds[] = {0.01, 0.1, 1};
    struct metric_family *h = metrics_family(r, "t_latency_seconds", "Latency.", METRIC_HISTOGRAM, NULL, bounds, 3);
    char *out;
    int i;

    for (i = 0; i < 10; i++)
        metric_observe(h, NULL, 0.005); /* 10 in the first bucket */
    for (i = 0; i < 5; i++)
        metric_observe(h, NULL, 0.05);
    metric_observe(h, NULL, 0.5);
    metric_observe(h, NULL, 7);
    metric_observe(h, NULL, NAN); /* ignored */
    out = expose(r);
    ASSERT_HAS(out, "# TYPE t_latency_seconds histogram\n");
    ASSERT_HAS(out, "t_latency_seconds_bucket{le=\"0.01\"} 10\n");
    ASSERT_HAS(out, "t_latency_seconds_bucket{le=\"0.1\"} 15\n");
    ASSERT_HAS(out, "t_latency_seconds_bucket{le=\"1\"} 16\n");
    ASSERT_HAS(out, "t_latency_seconds_bucket{le=\"+Inf\"} 17\n");
    ASSERT_HAS(out, "t_latency_seconds_count 17\n");
    ASSERT_HAS(out, "t_latency_seconds_sum 7.8");
    ck_assert_double_eq(metric_get(h, NULL), 17);
    free(out);
    metrics_free(r);
}
END_TEST

/* Labels on a histogram come before le. */
START_TEST(test_histogram_labels)
{
    struct metrics *r = metrics_create();
    static const char *const lbl[] = {"route", NULL};
    const double bounds[] = {1};
    struct metric_family *h = metrics_family(r, "t_x_seconds", "X.", METRIC_HISTOGRAM, lbl, bounds, 1);
    const char *v[] = {"a"};
    char *out;

    metric_observe(h, v, 0.5);
    out = expose(r);
    ASSERT_HAS(out, "t_x_seconds_bucket{route=\"a\",le=\"1\"} 1\n");
    ASSERT_HAS(out, "t_x_seconds_sum{route=\"a\"} 0.5\n");
    free(out);
    metrics_free(r);
}
END_TEST

static struct metric_family *hammer_c;

static void *hammer(void *arg)
{
    const char *v[] = {(const char *)arg};

    for (int i = 0; i < 20000; i++)
        metric_inc(hammer_c, v, 1);
    return NULL;
}

/* Concurrent updates lose nothing. */
START_TEST(test_threads)
{
    struct metrics *r = metrics_create();
    static const char *const lbl[] = {"t", NULL};
    pthread_t th[4];
    const char *names[4] = {"a", "b", "a", "b"};
    const char *a[] = {"a"};
    int i;

    hammer_c = metrics_family(r, "t_hammer_total", "H.", METRIC_COUNTER, lbl, NULL, 0);
    for (i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, hammer, (void *)names[i]);
    for (i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    ck_assert_double_eq(metric_get(hammer_c, a), 40000);
    metrics_free(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_bad_declarations);
    tcase_add_test(tc, test_counter_gauge_exposition);
    tcase_add_test(tc, test_histogram_buckets);
    tcase_add_test(tc, test_histogram_labels);
    tcase_add_test(tc, test_threads);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
