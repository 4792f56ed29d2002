/* check_common.c -- unit tests of common/: errors, durations, histograms,
 * the RNG and YAML configuration.  One suite per module; main runs them all
 * and exits nonzero when any test fails. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/conf.h"
#include "common/duration.h"
#include "common/err.h"
#include "common/hist.h"
#include "common/path.h"
#include "common/rng.h"

/* Assert that message M contains S, printing M when it does not. */
#define ASSERT_HAS(m, s) ck_assert_msg(strstr((m), (s)) != NULL, "expected '%s' in message: %s", (s), (m))

/* ==== err ================================================================= */

/* Each setter returns -1, fills code and message as documented. */
START_TEST(test_err_setters)
{
    struct err e;

    err_clear(&e);
    ck_assert_int_eq(e.code, ERR_OK);
    ck_assert_str_eq(e.msg, "");
    ck_assert_int_eq(err_set(&e, ERR_INPUT, "bad %s %d", "thing", 7), -1);
    ck_assert_int_eq(e.code, ERR_INPUT);
    ck_assert_str_eq(e.msg, "bad thing 7");

    ck_assert_int_eq(err_at(&e, "a.yaml", 12, "key %s: wrong", "x"), -1);
    ck_assert_int_eq(e.code, ERR_INPUT);
    ck_assert_str_eq(e.msg, "a.yaml:12: key x: wrong");
    /* line <= 0 omits the line; a NULL file reads <input>. */
    err_at(&e, "a.yaml", 0, "whole file");
    ck_assert_str_eq(e.msg, "a.yaml: whole file");
    err_at(&e, NULL, 3, "m");
    ck_assert_str_eq(e.msg, "<input>:3: m");

    ck_assert_int_eq(err_sys(&e, ENOENT, "open %s", "/nope"), -1);
    ck_assert_int_eq(e.code, ERR_SYSTEM);
    ck_assert_str_eq(e.msg, "open /nope: No such file or directory");

    err_set(&e, ERR_INPUT, "inner");
    ck_assert_int_eq(err_prefix(&e, "outer %d", 1), -1);
    ck_assert_str_eq(e.msg, "outer 1: inner");
    ck_assert_int_eq(e.code, ERR_INPUT); /* prefixing keeps the code */
}
END_TEST

/* The exit status follows the code: input -> 2, system -> 1, ok -> 0. */
START_TEST(test_err_exit_status)
{
    struct err e;

    err_clear(&e);
    ck_assert_int_eq(err_exit_status(&e), 0);
    ck_assert_int_eq(err_exit_status(NULL), 0);
    err_set(&e, ERR_INPUT, "x");
    ck_assert_int_eq(err_exit_status(&e), 2);
    err_set(&e, ERR_SYSTEM, "x");
    ck_assert_int_eq(err_exit_status(&e), 1);
    err_sys(&e, EIO, "x");
    ck_assert_int_eq(err_exit_status(&e), 1);
    err_at(&e, "f", 1, "x");
    ck_assert_int_eq(err_exit_status(&e), 2);
}
END_TEST

/* A NULL e is allowed everywhere and the setters still return -1. */
START_TEST(test_err_null)
{
    ck_assert_int_eq(err_set(NULL, ERR_INPUT, "x"), -1);
    ck_assert_int_eq(err_at(NULL, "f", 1, "x"), -1);
    ck_assert_int_eq(err_sys(NULL, EIO, "x"), -1);
    ck_assert_int_eq(err_prefix(NULL, "x"), -1);
    err_clear(NULL);
}
END_TEST

/* Messages longer than ERR_MSG_MAX are cut, NUL-terminated, never overflow. */
START_TEST(test_err_truncation)
{
    static char big[5000];
    struct err e;
    int i;

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    err_set(&e, ERR_INPUT, "%s", big);
    ck_assert_uint_eq(strlen(e.msg), ERR_MSG_MAX - 1);
    err_at(&e, big, 5, "%s", big);
    ck_assert_uint_eq(strlen(e.msg), ERR_MSG_MAX - 1);
    err_sys(&e, ENOENT, "%s", big);
    ck_assert_uint_eq(strlen(e.msg), ERR_MSG_MAX - 1);
    /* Prefixing a full message over and over keeps the newest head. */
    for (i = 0; i < 5; i++)
        err_prefix(&e, "p%d", i);
    ck_assert_uint_eq(strlen(e.msg), ERR_MSG_MAX - 1);
    ck_assert(strncmp(e.msg, "p4: p3: p2: p1: p0: xxx", 23) == 0);
    err_prefix(&e, "%s", big);
    ck_assert_uint_eq(strlen(e.msg), ERR_MSG_MAX - 1);
}
END_TEST

static Suite *suite_err(void)
{
    Suite *s = suite_create("err");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_err_setters);
    tcase_add_test(tc, test_err_exit_status);
    tcase_add_test(tc, test_err_null);
    tcase_add_test(tc, test_err_truncation);
    suite_add_tcase(s, tc);
    return s;
}

/* ==== duration ============================================================= */

static double parse_ok(const char *text)
{
    struct err e;
    double v = -12345.0;

    err_clear(&e);
    ck_assert_msg(duration_parse(text, &v, &e) == 0, "'%s' refused: %s", text, e.msg);
    return v;
}

/* The documented forms, units and combinations. */
START_TEST(test_duration_accepts)
{
    ck_assert_double_eq(parse_ok("250ms"), 0.25);
    ck_assert_double_eq(parse_ok("30s"), 30.0);
    ck_assert_double_eq(parse_ok("5m"), 300.0);
    ck_assert_double_eq(parse_ok("1h30m"), 5400.0);
    ck_assert_double_eq(parse_ok("2d"), 172800.0);
    ck_assert_double_eq(parse_ok("1w"), 604800.0);
    ck_assert_double_eq(parse_ok("1.5h"), 5400.0);
    ck_assert_double_eq_tol(parse_ok("100us"), 100e-6, 1e-18);
    ck_assert_double_eq_tol(parse_ok("7ns"), 7e-9, 1e-21);
    ck_assert_double_eq(parse_ok("90"), 90.0);
    ck_assert_double_eq(parse_ok("0.25"), 0.25);
    ck_assert_double_eq(parse_ok("0"), 0.0);
    ck_assert_double_eq(parse_ok("0s"), 0.0);
    ck_assert_double_eq(parse_ok(".5s"), 0.5);
    ck_assert_double_eq(parse_ok("1h1m1s"), 3661.0);
    ck_assert_double_eq_tol(parse_ok("1s500ms"), 1.5, 1e-12);
    /* Design: terms need not be in decreasing order, and they add up. */
    ck_assert_double_eq(parse_ok("30m1h"), 5400.0);
    /* Design: a decimal exponent is part of the number. */
    ck_assert_double_eq(parse_ok("1e3ms"), 1.0);
}
END_TEST

/* Design: leading and trailing whitespace is ignored (YAML and shells add
 * it); whitespace inside the text is refused. */
START_TEST(test_duration_whitespace)
{
    ck_assert_double_eq(parse_ok("  30s"), 30.0);
    ck_assert_double_eq(parse_ok("30s \t\n"), 30.0);
    ck_assert_double_eq(parse_ok(" 90 "), 90.0);
}
END_TEST

/* Every refusal returns -1 with ERR_INPUT, quotes the text and leaves the
 * output untouched. */
START_TEST(test_duration_refuses)
{
    static const char *const bad[] = {
        "-5s", "5x", "s", "1h-30m", "1e400s", "1e308w", "abc", "1h30", "5 m", "1h 30m", "   ",
        "+5s", "nan", "inf", "infinity", "5ss", "1.2.3s", ".", "5m-", "0x10s", "0x1p3", "-0",
        "5M", "1e-400s",
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct err e;
        double v = 42.0;
        char quoted[64];
        int rc;

        err_clear(&e);
        rc = duration_parse(bad[i], &v, &e);
        ck_assert_msg(rc == -1, "'%s' accepted as %g", bad[i], v);
        ck_assert_int_eq(e.code, ERR_INPUT);
        ck_assert_double_eq(v, 42.0);
        snprintf(quoted, sizeof(quoted), "'%s'", bad[i]);
        ASSERT_HAS(e.msg, quoted);
    }
}
END_TEST

/* The empty string (and NULL) are refused with a message that says so. */
START_TEST(test_duration_empty)
{
    struct err e;
    double v = 42.0;

    err_clear(&e);
    ck_assert_int_eq(duration_parse("", &v, &e), -1);
    ck_assert_int_eq(e.code, ERR_INPUT);
    ASSERT_HAS(e.msg, "empty duration");
    err_clear(&e);
    ck_assert_int_eq(duration_parse(NULL, &v, &e), -1);
    ck_assert_int_eq(e.code, ERR_INPUT);
    ck_assert_double_eq(v, 42.0);
    ck_assert_int_eq(duration_parse("5x", &v, NULL), -1); /* NULL e tolerated */
}
END_TEST

/* duration_format gives the documented short forms, and parsing them back
 * gives the value within the format's rounding (3 significant digits, or
 * whole seconds / minutes above a minute / an hour). */
START_TEST(test_duration_format)
{
    static const struct {
        double s;
        const char *text;
    } exact[] = {
        {0.25, "250ms"}, {30, "30s"}, {300, "5m"}, {5400, "1h30m"}, {2.5, "2.5s"},
        {100e-6, "100us"}, {90, "1m30s"}, {3600, "1h"}, {172800, "2d"}, {0, "0us"},
    };
    static const double values[] = {1e-7, 3.3e-5, 0.0123, 0.999, 1.0, 7.77, 59.9, 61, 599.4, 3599,
                                    3601, 7321, 86399, 172799, 1e6, 3.2e7};
    char buf[64];
    size_t i;

    for (i = 0; i < sizeof(exact) / sizeof(exact[0]); i++) {
        duration_format(exact[i].s, buf, sizeof(buf));
        ck_assert_str_eq(buf, exact[i].text);
        ck_assert_double_eq_tol(parse_ok(buf), exact[i].s, 1e-12 * (1 + exact[i].s));
    }
    for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        double s = values[i], back, tol;

        duration_format(s, buf, sizeof(buf));
        back = parse_ok(buf);
        tol = s < 60 ? 5e-3 * s : s < 3600 ? 0.5 : s < 172800 ? 30.0 : 5e-3 * s;
        ck_assert_msg(fabs(back - s) <= tol, "%g formatted as %s reads back as %g", s, buf, back);
    }
    /* A short buffer is cut, not overrun. */
    duration_format(5400, buf, 3);
    ck_assert_str_eq(buf, "1h");
}
END_TEST

static Suite *suite_duration(void)
{
    Suite *s = suite_create("duration");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_duration_accepts);
    tcase_add_test(tc, test_duration_whitespace);
    tcase_add_test(tc, test_duration_refuses);
    tcase_add_test(tc, test_duration_empty);
    tcase_add_test(tc, test_duration_format);
    suite_add_tcase(s, tc);
    return s;
}

/* ==== hist ================================================================= */

#define HIST_N 100000

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The exact lower-rank quantile of sorted x[0..n): the ceil(q*n)-th value. */
static double exact_quantile(const double *sorted, size_t n, double q)
{
    size_t rank = (size_t)ceil(q * (double)n);

    if (rank < 1)
        rank = 1;
    return sorted[rank - 1];
}

enum dist { DIST_LOGNORMAL, DIST_EXP, DIST_DECADES, DIST_COUNT };

static double draw(struct rng *r, enum dist d)
{
    switch (d) {
    case DIST_LOGNORMAL:
        return rng_lognormal(r, -3.0, 1.5);
    case DIST_EXP:
        return rng_exp(r, 0.2);
    default:
        return pow(10.0, -7.0 + 14.0 * rng_uniform(r)); /* 1e-7 .. 1e7 */
    }
}

/* Every quantile is within HIST_REL_ERR of the exact sample quantile, and
 * count, sum, mean, min and max are exact, for three shapes of data. */
START_TEST(test_hist_quantiles)
{
    static const double qs[] = {0.01, 0.1, 0.5, 0.9, 0.99, 0.999};
    double *x = malloc(HIST_N * sizeof(*x));
    struct hist *h = hist_create();
    struct rng r;
    int d;

    ck_assert_ptr_nonnull(x);
    ck_assert_ptr_nonnull(h);
    for (d = 0; d < DIST_COUNT; d++) {
        double sum = 0.0, mn = INFINITY, mx = -INFINITY;
        size_t i, k;

        hist_reset(h);
        rng_init(&r, 1234 + (uint64_t)d, RNG_STREAM_USER);
        for (i = 0; i < HIST_N; i++) {
            x[i] = draw(&r, (enum dist)d);
            hist_add(h, x[i]);
            sum += x[i];
            mn = fmin(mn, x[i]);
            mx = fmax(mx, x[i]);
        }
        ck_assert_uint_eq(hist_count(h), HIST_N);
        ck_assert_double_eq(hist_sum(h), sum);
        ck_assert_double_eq(hist_mean(h), sum / HIST_N);
        ck_assert_double_eq(hist_min(h), mn);
        ck_assert_double_eq(hist_max(h), mx);
        ck_assert_uint_eq(hist_clamped(h), 0);
        qsort(x, HIST_N, sizeof(*x), cmp_double);
        for (k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
            double want = exact_quantile(x, HIST_N, qs[k]);
            double got = hist_quantile(h, qs[k]);
            ck_assert_msg(fabs(got - want) <= HIST_REL_ERR * want * (1 + 1e-9),
                          "dist %d q=%g: got %.9g want %.9g (rel %.4g)", d, qs[k], got, want,
                          fabs(got - want) / want);
        }
        ck_assert_double_eq(hist_quantile(h, 0.0), mn);
        ck_assert_double_eq(hist_quantile(h, 1.0), mx);
    }
    hist_free(h);
    free(x);
}
END_TEST

/* Small exact cases of the lower-rank convention. */
START_TEST(test_hist_rank_convention)
{
    struct hist *h = hist_create();
    int i;

    for (i = 1; i <= 10; i++)
        hist_add(h, (double)i);
    /* ceil(0.5*10) = 5th value = 5; ceil(0.51*10) = 6th = 6; ceil(0.01*10) = 1st. */
    ck_assert_double_eq_tol(hist_quantile(h, 0.5), 5.0, 5.0 * HIST_REL_ERR);
    ck_assert_double_eq_tol(hist_quantile(h, 0.51), 6.0, 6.0 * HIST_REL_ERR);
    ck_assert_double_eq_tol(hist_quantile(h, 0.01), 1.0, 1.0 * HIST_REL_ERR);
    ck_assert_double_eq_tol(hist_quantile(h, 0.95), 10.0, 10.0 * HIST_REL_ERR);
    /* Out-of-range q reads as the extremes. */
    ck_assert_double_eq(hist_quantile(h, -1.0), 1.0);
    ck_assert_double_eq(hist_quantile(h, 2.0), 10.0);
    /* A single value is reported exactly (the estimate is clamped to [min, max]). */
    hist_reset(h);
    hist_add(h, 0.123456);
    ck_assert_double_eq(hist_quantile(h, 0.5), 0.123456);
    hist_free(h);
}
END_TEST

/* merge(a, b) equals one histogram fed every sample: same quantiles, count,
 * min, max, clamped; merging an empty one changes nothing. */
START_TEST(test_hist_merge)
{
    struct hist *a = hist_create(), *b = hist_create(), *all = hist_create(), *empty = hist_create();
    struct rng r;
    int i;
    double q;

    rng_init(&r, 7, 0);
    for (i = 0; i < 20000; i++) {
        double v = rng_lognormal(&r, 0.0, 2.0);
        hist_add(i % 3 ? a : b, v);
        hist_add(all, v);
    }
    hist_add(b, 5e9); /* clamped */
    hist_add(all, 5e9);
    hist_add(a, 0.0);
    hist_add(all, 0.0);
    hist_merge(a, b);
    hist_merge(a, empty);
    ck_assert_uint_eq(hist_count(a), hist_count(all));
    ck_assert_uint_eq(hist_clamped(a), 1);
    ck_assert_double_eq(hist_min(a), hist_min(all));
    ck_assert_double_eq(hist_max(a), hist_max(all));
    ck_assert_double_eq_tol(hist_sum(a), hist_sum(all), 1e-9 * hist_sum(all));
    for (q = 0.0; q <= 1.0; q += 0.001)
        ck_assert_double_eq(hist_quantile(a, q), hist_quantile(all, q));
    /* Merging into an empty histogram copies min and max. */
    hist_merge(empty, b);
    ck_assert_double_eq(hist_min(empty), hist_min(b));
    ck_assert_double_eq(hist_max(empty), hist_max(b));
    hist_free(a);
    hist_free(b);
    hist_free(all);
    hist_free(empty);
}
END_TEST

/* An empty histogram reports 0 for everything; NaN is ignored. */
START_TEST(test_hist_empty_nan)
{
    struct hist *h = hist_create();
    size_t idx = 0;
    double v;
    uint64_t n;

    ck_assert_uint_eq(hist_count(h), 0);
    ck_assert_double_eq(hist_sum(h), 0.0);
    ck_assert_double_eq(hist_mean(h), 0.0);
    ck_assert_double_eq(hist_min(h), 0.0);
    ck_assert_double_eq(hist_max(h), 0.0);
    ck_assert_double_eq(hist_quantile(h, 0.5), 0.0);
    ck_assert_double_eq(hist_quantile(h, 0.0), 0.0);
    ck_assert_double_eq(hist_cdf_at(h, 1.0), 0.0);
    ck_assert_int_eq(hist_next_bucket(h, &idx, &v, &n), 0);
    hist_add(h, NAN);
    ck_assert_uint_eq(hist_count(h), 0);
    hist_add(h, 2.0);
    hist_add(h, NAN);
    ck_assert_uint_eq(hist_count(h), 1);
    ck_assert_double_eq(hist_sum(h), 2.0);
    /* Reset empties it again. */
    hist_reset(h);
    ck_assert_uint_eq(hist_count(h), 0);
    ck_assert_double_eq(hist_max(h), 0.0);
    hist_free(h);
}
END_TEST

/* Zeros, negatives and values <= HIST_MIN share the zero bucket (reported as
 * 0) while min, max and sum stay exact; values above HIST_MAX (and +inf) are
 * clamped to HIST_MAX and counted. */
START_TEST(test_hist_zero_and_clamp)
{
    struct hist *h = hist_create();
    size_t idx = 0;
    double v;
    uint64_t n;

    hist_add(h, 0.0);
    hist_add(h, -3.0);
    hist_add(h, 1e-12);
    hist_add(h, 5.0);
    ck_assert_uint_eq(hist_count(h), 4);
    ck_assert_double_eq(hist_min(h), -3.0);
    ck_assert_double_eq(hist_sum(h), 2.0 + 1e-12);
    ck_assert_int_eq(hist_next_bucket(h, &idx, &v, &n), 1);
    ck_assert_double_eq(v, 0.0);
    ck_assert_uint_eq(n, 3);
    ck_assert_double_eq(hist_quantile(h, 0.75), 0.0);
    ck_assert_double_eq_tol(hist_quantile(h, 0.76), 5.0, 5.0 * HIST_REL_ERR);

    hist_reset(h);
    hist_add(h, 2e9);
    hist_add(h, INFINITY);
    hist_add(h, 1.0);
    ck_assert_uint_eq(hist_count(h), 3);
    ck_assert_uint_eq(hist_clamped(h), 2);
    ck_assert_double_eq(hist_max(h), HIST_MAX);
    ck_assert_double_eq(hist_sum(h), 2 * HIST_MAX + 1.0);
    ck_assert_double_eq(hist_quantile(h, 0.99), HIST_MAX);
    ck_assert_double_eq_tol(hist_quantile(h, 0.5), HIST_MAX, HIST_MAX * HIST_REL_ERR);
    hist_free(h);
}
END_TEST

/* hist_next_bucket visits non-empty buckets in increasing order and its
 * counts add up to the count; hist_cdf_at is monotone, 0 below the minimum
 * and 1 at the maximum. */
START_TEST(test_hist_walk_cdf)
{
    struct hist *h = hist_create();
    struct rng r;
    size_t idx = 0;
    uint64_t total = 0, n;
    double v, prev_v = -1.0, prev_c = 0.0, x;
    int i, buckets = 0;

    rng_init(&r, 99, 3);
    for (i = 0; i < 50000; i++)
        hist_add(h, pow(10.0, -10.0 + 20.0 * rng_uniform(&r))); /* hits both ends too */
    while (hist_next_bucket(h, &idx, &v, &n)) {
        ck_assert(v > prev_v || (buckets == 0 && v == 0.0));
        ck_assert_uint_gt(n, 0);
        prev_v = v;
        total += n;
        buckets++;
    }
    ck_assert_uint_eq(total, hist_count(h));
    ck_assert_int_gt(buckets, 100);
    ck_assert_int_eq(hist_next_bucket(h, &idx, &v, &n), 0); /* stays at the end */
    for (x = 1e-12; x < 1e11; x *= 1.07) {
        double c = hist_cdf_at(h, x);
        ck_assert_msg(c >= prev_c, "cdf(%g) = %g < %g", x, c, prev_c);
        ck_assert(c >= 0.0 && c <= 1.0);
        prev_c = c;
    }
    ck_assert_double_eq(hist_cdf_at(h, hist_max(h)), 1.0);
    ck_assert_double_eq(hist_cdf_at(h, 1e300), 1.0);
    /* The zero bucket holds the values <= HIST_MIN: about 5% of them. */
    ck_assert_double_eq(hist_cdf_at(h, 0.0), 0.0);
    ck_assert_double_eq_tol(hist_cdf_at(h, HIST_MIN), 0.05, 0.01);
    ck_assert_double_eq_tol(hist_cdf_at(h, 1.0), 0.5, 0.02);
    hist_reset(h);
    hist_add(h, 3.0);
    hist_add(h, 4.0);
    ck_assert_double_eq(hist_cdf_at(h, -1.0), 0.0);
    ck_assert_double_eq(hist_cdf_at(h, 4.0), 1.0);
    ck_assert_double_eq(hist_cdf_at(h, 3.5), 0.5);
    hist_free(h);
}
END_TEST

/* Values below the minimum have a CDF of 0, even when negatives share the
 * zero bucket; a NaN argument gives NaN rather than undefined behaviour. */
START_TEST(test_hist_cdf_edges)
{
    struct hist *h = hist_create();

    hist_add(h, -3.0);
    hist_add(h, 5.0);
    ck_assert_double_eq(hist_cdf_at(h, -10.0), 0.0);
    ck_assert_double_eq(hist_cdf_at(h, -3.0), 0.5);
    ck_assert_double_eq(hist_cdf_at(h, 0.0), 0.5);
    ck_assert(isnan(hist_cdf_at(h, NAN)));
    ck_assert(isnan(hist_quantile(h, NAN)));
    hist_free(h);
}
END_TEST

static Suite *suite_hist(void)
{
    Suite *s = suite_create("hist");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_hist_quantiles);
    tcase_add_test(tc, test_hist_rank_convention);
    tcase_add_test(tc, test_hist_merge);
    tcase_add_test(tc, test_hist_empty_nan);
    tcase_add_test(tc, test_hist_zero_and_clamp);
    tcase_add_test(tc, test_hist_walk_cdf);
    tcase_add_test(tc, test_hist_cdf_edges);
    suite_add_tcase(s, tc);
    return s;
}

/* ==== rng ================================================================== */

/* rng_u64 is xoshiro256** and seeding is splitmix64: the published outputs
 * for state {1,2,3,4}, and splitmix64-seeded values from a reference. */
START_TEST(test_rng_reference)
{
    struct rng r = {{1, 2, 3, 4}};

    ck_assert_uint_eq(rng_u64(&r), 11520u);
    ck_assert_uint_eq(rng_u64(&r), 0u);
    ck_assert_uint_eq(rng_u64(&r), 1509978240u);
    ck_assert_uint_eq(rng_u64(&r), 1215971899390074240u);
    rng_init(&r, 42, 0);
    ck_assert_uint_eq(rng_u64(&r), 0x15780b2e0c2ec716u);
    ck_assert_uint_eq(rng_u64(&r), 0x6104d9866d113a7eu);
    ck_assert_uint_eq(rng_u64(&r), 0xae17533239e499a1u);
}
END_TEST

/* The same (seed, stream) repeats; other streams and seeds differ, and a
 * stream is not a shifted copy of another. */
START_TEST(test_rng_streams)
{
    enum { N = 2000 };
    static uint64_t a[N], b[N];
    struct rng r1, r2;
    int i, j, same;

    rng_init(&r1, 5, 3);
    rng_init(&r2, 5, 3);
    same = 0;
    for (i = 0; i < 1000; i++)
        same += rng_u64(&r1) == rng_u64(&r2);
    ck_assert_int_eq(same, 1000);

    rng_init(&r1, 5, 0);
    rng_init(&r2, 5, 1);
    for (i = 0; i < N; i++) {
        a[i] = rng_u64(&r1);
        b[i] = rng_u64(&r2);
    }
    same = 0;
    for (i = 0; i < N; i++)
        for (j = 0; j < N; j++)
            same += a[i] == b[j];
    ck_assert_int_eq(same, 0);

    rng_init(&r1, 5, 0);
    rng_init(&r2, 6, 0);
    same = 0;
    for (i = 0; i < 1000; i++)
        same += rng_u64(&r1) == rng_u64(&r2);
    ck_assert_int_eq(same, 0);
    /* Seed 0 is a valid seed (splitmix64 never gives the all-zero state). */
    rng_init(&r1, 0, 0);
    ck_assert(r1.s[0] | r1.s[1] | r1.s[2] | r1.s[3]);
}
END_TEST

/* rng_uniform is in the open interval (0, 1), mean 1/2. */
START_TEST(test_rng_uniform)
{
    enum { N = 1000000 };
    struct rng r;
    double sum = 0.0, se = sqrt(1.0 / 12.0 / N);
    int i, outside = 0;

    /* (Assertions are counted, not made in the loop: check logs each one.) */
    rng_init(&r, 11, 0);
    for (i = 0; i < N; i++) {
        double u = rng_uniform(&r);
        outside += !(u > 0.0 && u < 1.0);
        sum += u;
    }
    ck_assert_int_eq(outside, 0);
    ck_assert_msg(fabs(sum / N - 0.5) < 4 * se, "mean %g", sum / N);
}
END_TEST

/* Modular inverse of odd a mod 2^64 (Newton's iteration). */
static uint64_t inv64(uint64_t a)
{
    uint64_t x = a;
    int i;

    for (i = 0; i < 6; i++)
        x *= 2 - a * x;
    return x;
}

/* The extreme raw draws map inside (0, 1): build the state whose next
 * rng_u64 is all ones (or zero) and check rng_uniform's result. */
START_TEST(test_rng_uniform_extremes)
{
    struct rng r;
    uint64_t y, s1;

    /* result = rotl(s1 * 5, 7) * 9; solve for result = ~0. */
    y = UINT64_MAX * inv64(9);
    y = (y >> 7) | (y << 57);
    s1 = y * inv64(5);
    r = (struct rng){{0, s1, 0, 0}};
    ck_assert_uint_eq(rng_u64(&r), UINT64_MAX);
    r = (struct rng){{0, s1, 0, 0}};
    ck_assert_msg(rng_uniform(&r) < 1.0, "rng_uniform returned 1 for the largest draw");
    r = (struct rng){{0, 0, 0, 1}}; /* s1 = 0 gives a draw of 0 */
    ck_assert(rng_uniform(&r) > 0.0);
}
END_TEST

/* rng_below(n) stays in [0, n) and is uniform by a chi-square test
 * (bound: df + 6 sqrt(2 df), far in the tail for a fixed seed). */
START_TEST(test_rng_below)
{
    static const uint64_t ns[] = {3, 7, 1000};
    static uint64_t counts[1000];
    struct rng r;
    size_t k;
    int i, outside = 0;

    rng_init(&r, 2024, 0);
    for (k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
        uint64_t n = ns[k];
        int draws = (int)n * 500;
        double chi2 = 0.0, expect = (double)draws / (double)n, df = (double)n - 1;

        memset(counts, 0, sizeof(counts));
        for (i = 0; i < draws; i++) {
            uint64_t v = rng_below(&r, n);
            if (v < n)
                counts[v]++;
            else
                outside++;
        }
        for (i = 0; i < (int)n; i++)
            chi2 += (counts[i] - expect) * (counts[i] - expect) / expect;
        ck_assert_msg(chi2 < df + 6 * sqrt(2 * df), "n=%llu chi2=%g", (unsigned long long)n, chi2);
    }
    for (i = 0; i < 100; i++)
        outside += rng_below(&r, 1) != 0;
    /* A bound just above 2^63 rejects about half the raw draws. */
    for (i = 0; i < 1000; i++)
        outside += rng_below(&r, (1ULL << 63) + 1) >= (1ULL << 63) + 1;
    ck_assert_int_eq(outside, 0);
}
END_TEST

/* Moments of the continuous distributions, within 5 standard errors. */
START_TEST(test_rng_continuous)
{
    enum { N = 200000 };
    static double x[N];
    struct rng r;
    double sum = 0.0, sum2 = 0.0, m, var;
    int i;

    rng_init(&r, 31, RNG_STREAM_SERVICE);
    for (i = 0; i < N; i++)
        sum += rng_exp(&r, 2.5);
    ck_assert_msg(fabs(sum / N - 2.5) < 5 * 2.5 / sqrt(N), "exp mean %g", sum / N);

    sum = 0.0;
    for (i = 0; i < N; i++) {
        double z = rng_normal(&r);
        sum += z;
        sum2 += z * z;
    }
    m = sum / N;
    var = sum2 / N - m * m;
    ck_assert_msg(fabs(m) < 5 / sqrt(N), "normal mean %g", m);
    ck_assert_msg(fabs(var - 1.0) < 5 * sqrt(2.0 / N), "normal variance %g", var);

    for (i = 0; i < N; i++)
        x[i] = rng_lognormal(&r, 1.0, 0.5);
    qsort(x, N, sizeof(x[0]), cmp_double);
    /* The median is e^mu; its standard error is about 1.25 sigma e^mu / sqrt(N). */
    ck_assert_msg(fabs(x[N / 2] - exp(1.0)) < 5 * 1.25 * 0.5 * exp(1.0) / sqrt(N), "lognormal median %g",
                  x[N / 2]);
}
END_TEST

/* rng_poisson: mean and variance both equal the mean parameter, P(0) matches
 * e^-mean for a small mean, and degenerate means give 0 rather than
 * undefined behaviour. */
START_TEST(test_rng_poisson)
{
    enum { N = 200000 };
    static const double means[] = {0.5, 5.0, 100.0};
    struct rng r;
    size_t k;
    int i;

    rng_init(&r, 77, RNG_STREAM_ARRIVALS);
    for (k = 0; k < sizeof(means) / sizeof(means[0]); k++) {
        double lam = means[k], sum = 0.0, sum2 = 0.0, m, var, zeros = 0;

        for (i = 0; i < N; i++) {
            double v = (double)rng_poisson(&r, lam);
            sum += v;
            sum2 += v * v;
            zeros += v == 0;
        }
        m = sum / N;
        var = sum2 / N - m * m;
        ck_assert_msg(fabs(m - lam) < 5 * sqrt(lam / N), "mean %g: got %g", lam, m);
        ck_assert_msg(fabs(var - lam) < 5 * sqrt((lam + 2 * lam * lam) / N), "mean %g: variance %g", lam, var);
        if (lam < 10)
            ck_assert_msg(fabs(zeros / N - exp(-lam)) < 5 * sqrt(exp(-lam) / N), "mean %g: P(0) %g", lam,
                          zeros / N);
    }
    ck_assert_uint_eq(rng_poisson(&r, 0.0), 0);
    ck_assert_uint_eq(rng_poisson(&r, -1.0), 0);
    ck_assert_uint_eq(rng_poisson(&r, NAN), 0);
    ck_assert_uint_eq(rng_poisson(&r, 1e30), UINT64_MAX);
}
END_TEST

/* Paired draws from streams 0 and 1 are uncorrelated. */
START_TEST(test_rng_stream_correlation)
{
    enum { N = 100000 };
    struct rng a, b;
    double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0, cor;
    int i;

    rng_init(&a, 123, 0);
    rng_init(&b, 123, 1);
    for (i = 0; i < N; i++) {
        double x = rng_uniform(&a), y = rng_uniform(&b);
        sx += x;
        sy += y;
        sxx += x * x;
        syy += y * y;
        sxy += x * y;
    }
    cor = (sxy / N - sx / N * sy / N) / sqrt((sxx / N - sx / N * sx / N) * (syy / N - sy / N * sy / N));
    ck_assert_msg(fabs(cor) < 5 / sqrt(N), "correlation %g", cor);
}
END_TEST

static Suite *suite_rng(void)
{
    Suite *s = suite_create("rng");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_rng_reference);
    tcase_add_test(tc, test_rng_streams);
    tcase_add_test(tc, test_rng_uniform);
    tcase_add_test(tc, test_rng_uniform_extremes);
    tcase_add_test(tc, test_rng_below);
    tcase_add_test(tc, test_rng_continuous);
    tcase_add_test(tc, test_rng_poisson);
    tcase_add_test(tc, test_rng_stream_correlation);
    suite_add_tcase(s, tc);
    return s;
}

/* ==== conf ================================================================= */

static char conf_tmpdir[256];

static void conf_setup(void)
{
    const char *base = getenv("TMPDIR");

    snprintf(conf_tmpdir, sizeof(conf_tmpdir), "%s/check_common.XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(conf_tmpdir));
}

static void conf_teardown(void)
{
    char cmd[300];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", conf_tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", conf_tmpdir);
}

/* Write LEN bytes of TEXT to NAME in the temporary dir; returns the path. */
static const char *write_file(const char *name, const char *text, size_t len)
{
    static char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", conf_tmpdir, name);
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

static struct conf *load_ok(const char *text)
{
    struct err e;
    struct conf *c;

    err_clear(&e);
    c = conf_load_string(text, "t.yaml", &e);
    ck_assert_msg(c != NULL, "load failed: %s", e.msg);
    return c;
}

static const char valid_yaml[] =
    "# a scenario\n"                  /* 1 */
    "name: demo\n"                    /* 2 */
    "rate: 2.5\n"                     /* 3 */
    "replicas: 4\n"                   /* 4 */
    "autoscale: yes\n"                /* 5 */
    "duration: 1h30m\n"               /* 6 */
    "policy: least-loaded\n"          /* 7 */
    "cluster:\n"                      /* 8 */
    "  gpus: 8\n"                     /* 9 */
    "  typo_key: 1\n"                 /* 10 */
    "list: [a, b]\n"                  /* 11 */
    "bad_num: 12abc\n"                /* 12 */
    "neg: -5s\n"                      /* 13 */
    "nothing: ~\n";                   /* 14 */

/* A valid file loads; the typed getters return 1 with the value, 0 when the
 * key is absent (output untouched), and origin/dir come from the path. */
START_TEST(test_conf_getters)
{
    const char *path = write_file("s.yaml", valid_yaml, sizeof(valid_yaml) - 1);
    struct err e;
    struct conf *c;
    struct conf_node *root, *cluster = NULL, *list = NULL;
    const char *s = "untouched";
    double d = -1.0;
    long l = -1;
    bool b = false;
    int en = -1;
    static const char *const policies[] = {"round-robin", "least-loaded", NULL};

    err_clear(&e);
    c = conf_load_file(path, &e);
    ck_assert_msg(c != NULL, "%s", e.msg);
    ck_assert_str_eq(conf_origin(c), path);
    ck_assert_str_eq(conf_dir(c), conf_tmpdir);
    root = conf_root(c);
    ck_assert(conf_is_map(root));
    ck_assert_int_eq(conf_get_str(c, root, "name", &s, &e), 1);
    ck_assert_str_eq(s, "demo");
    ck_assert_int_eq(conf_get_double(c, root, "rate", &d, &e), 1);
    ck_assert_double_eq(d, 2.5);
    ck_assert_int_eq(conf_get_nonneg(c, root, "rate", &d, &e), 1);
    ck_assert_int_eq(conf_get_long(c, root, "replicas", &l, &e), 1);
    ck_assert_int_eq(l, 4);
    ck_assert_int_eq(conf_get_bool(c, root, "autoscale", &b, &e), 1);
    ck_assert(b);
    ck_assert_int_eq(conf_get_duration(c, root, "duration", &d, &e), 1);
    ck_assert_double_eq(d, 5400.0);
    ck_assert_int_eq(conf_get_enum(c, root, "policy", policies, &en, &e), 1);
    ck_assert_int_eq(en, 1);
    ck_assert_int_eq(conf_get_map(c, root, "cluster", &cluster, &e), 1);
    ck_assert_int_eq(conf_get_long(c, cluster, "gpus", &l, &e), 1);
    ck_assert_int_eq(l, 8);
    ck_assert_int_eq(conf_get_seq(c, root, "list", &list, &e), 1);
    ck_assert_uint_eq(conf_seq_len(list), 2);
    ck_assert_int_eq(conf_node_str(c, conf_seq_at(list, 1), "list[1]", &s, &e), 1);
    ck_assert_str_eq(s, "b");
    ck_assert_ptr_null(conf_seq_at(list, 2));

    /* Absent keys (and a null value, by design) return 0 and touch nothing. */
    s = "untouched";
    d = -1.0;
    l = -1;
    b = false;
    en = -1;
    ck_assert_int_eq(conf_get_str(c, root, "absent", &s, &e), 0);
    ck_assert_str_eq(s, "untouched");
    ck_assert_int_eq(conf_get_str(c, root, "nothing", &s, &e), 0);
    ck_assert_str_eq(s, "untouched");
    ck_assert_int_eq(conf_get_double(c, root, "absent", &d, &e), 0);
    ck_assert_int_eq(conf_get_duration(c, root, "absent", &d, &e), 0);
    ck_assert_double_eq(d, -1.0);
    ck_assert_int_eq(conf_get_long(c, root, "absent", &l, &e), 0);
    ck_assert_int_eq(l, -1);
    ck_assert_int_eq(conf_get_bool(c, root, "absent", &b, &e), 0);
    ck_assert(!b);
    ck_assert_int_eq(conf_get_enum(c, root, "absent", policies, &en, &e), 0);
    ck_assert_int_eq(en, -1);
    ck_assert_int_eq(conf_get_map(c, root, "absent", &cluster, &e), 0);
    ck_assert_ptr_null(conf_get(root, "absent"));
    ck_assert_ptr_null(conf_get(list, "a")); /* not a mapping */
    conf_free(c);
}
END_TEST

/* A getter given the wrong type returns -1 with "FILE:LINE: key: ...",
 * the line being the value's. */
START_TEST(test_conf_wrong_types)
{
    const char *path = write_file("s.yaml", valid_yaml, sizeof(valid_yaml) - 1);
    struct err e;
    struct conf *c = conf_load_file(path, &e);
    struct conf_node *root = conf_root(c), *n;
    char want[600];
    double d = -1;
    long l = -1;
    bool b;
    const char *s;
    static const char *const policies[] = {"round-robin", "random", NULL};
    int en;

#define EXPECT_ERR(call, line, key)                                         \
    do {                                                                    \
        err_clear(&e);                                                      \
        ck_assert_int_eq((call), -1);                                       \
        ck_assert_int_eq(e.code, ERR_INPUT);                                \
        snprintf(want, sizeof(want), "%s:%d: %s: ", path, (line), (key));   \
        ck_assert_msg(strncmp(e.msg, want, strlen(want)) == 0,              \
                      "expected prefix '%s' in: %s", want, e.msg);          \
    } while (0)

    EXPECT_ERR(conf_get_double(c, root, "name", &d, &e), 2, "name");
    ck_assert_double_eq(d, -1);
    EXPECT_ERR(conf_get_double(c, root, "bad_num", &d, &e), 12, "bad_num");
    EXPECT_ERR(conf_get_long(c, root, "rate", &l, &e), 3, "rate");
    ck_assert_int_eq(l, -1);
    EXPECT_ERR(conf_get_bool(c, root, "name", &b, &e), 2, "name");
    EXPECT_ERR(conf_get_map(c, root, "name", &n, &e), 2, "name");
    EXPECT_ERR(conf_get_seq(c, root, "cluster", &n, &e), 9, "cluster");
    EXPECT_ERR(conf_get_str(c, root, "list", &s, &e), 11, "list");
    EXPECT_ERR(conf_get_nonneg(c, root, "bad_num", &d, &e), 12, "bad_num");
    /* A negative duration is refused, naming file:line and the value. */
    EXPECT_ERR(conf_get_duration(c, root, "neg", &d, &e), 13, "neg");
    ASSERT_HAS(e.msg, "'-5s'");
    EXPECT_ERR(conf_get_duration(c, root, "name", &d, &e), 2, "name");
    /* An unknown enum value lists the choices. */
    EXPECT_ERR(conf_get_enum(c, root, "policy", policies, &en, &e), 7, "policy");
    ASSERT_HAS(e.msg, "'least-loaded'");
    ASSERT_HAS(e.msg, "round-robin, random");
    conf_free(c);

    c = load_ok("n: -2\nbig: 99999999999999999999999\nhuge: 1e999\n");
    root = conf_root(c);
    path = "t.yaml";
    EXPECT_ERR(conf_get_nonneg(c, root, "n", &d, &e), 1, "n");
    ck_assert_int_eq(conf_get_double(c, root, "n", &d, &e), 1);
    ck_assert_double_eq(d, -2);
    EXPECT_ERR(conf_get_long(c, root, "big", &l, &e), 2, "big");
    EXPECT_ERR(conf_get_double(c, root, "huge", &d, &e), 3, "huge");
    conf_free(c);
#undef EXPECT_ERR
}
END_TEST

/* conf_check_keys accepts known keys and refuses an unknown one, naming the
 * key, the section, the line and the known keys. */
START_TEST(test_conf_check_keys)
{
    const char *path = write_file("s.yaml", valid_yaml, sizeof(valid_yaml) - 1);
    struct err e;
    struct conf *c = conf_load_file(path, &e);
    struct conf_node *cluster = conf_get(conf_root(c), "cluster");
    static const char *const known[] = {"gpus", "typo_key", NULL};
    static const char *const fewer[] = {"gpus", "model", NULL};
    char want[600];

    ck_assert_int_eq(conf_check_keys(c, cluster, "cluster", known, &e), 0);
    err_clear(&e);
    ck_assert_int_eq(conf_check_keys(c, cluster, "cluster", fewer, &e), -1);
    ck_assert_int_eq(e.code, ERR_INPUT);
    snprintf(want, sizeof(want), "%s:10: ", path);
    ck_assert_msg(strncmp(e.msg, want, strlen(want)) == 0, "%s", e.msg);
    ASSERT_HAS(e.msg, "'typo_key'");
    ASSERT_HAS(e.msg, "cluster");
    ASSERT_HAS(e.msg, "gpus, model");
    conf_free(c);
}
END_TEST

/* Loading errors: a YAML syntax error names the file and the line; a
 * missing file is ERR_SYSTEM naming the path; a duplicate key is an error. */
START_TEST(test_conf_load_errors)
{
    struct err e;
    const char *path;
    char missing[600];

    path = write_file("bad.yaml", "a: 1\nb: 2\nc: d: e\n", 19);
    err_clear(&e);
    ck_assert_ptr_null(conf_load_file(path, &e));
    ck_assert_int_eq(e.code, ERR_INPUT);
    {
        char want[600];
        snprintf(want, sizeof(want), "%s:3: ", path);
        ck_assert_msg(strncmp(e.msg, want, strlen(want)) == 0, "%s", e.msg);
    }
    ASSERT_HAS(e.msg, "YAML");

    snprintf(missing, sizeof(missing), "%s/no-such.yaml", conf_tmpdir);
    err_clear(&e);
    ck_assert_ptr_null(conf_load_file(missing, &e));
    ck_assert_int_eq(e.code, ERR_SYSTEM);
    ASSERT_HAS(e.msg, missing);
    ASSERT_HAS(e.msg, "No such file");

    err_clear(&e);
    ck_assert_ptr_null(conf_load_string("a: 1\nb: 2\na: 3\n", "dup.yaml", &e));
    ck_assert_int_eq(e.code, ERR_INPUT);
    ASSERT_HAS(e.msg, "dup.yaml:3: ");
    ASSERT_HAS(e.msg, "duplicate");

    err_clear(&e);
    ck_assert_ptr_null(conf_load_string("a: [1, 2\n", "open.yaml", &e));
    ASSERT_HAS(e.msg, "open.yaml:");
}
END_TEST

/* Design: a configuration is one YAML document; a second one is refused
 * rather than silently ignored. */
START_TEST(test_conf_multi_document)
{
    struct err e;

    err_clear(&e);
    ck_assert_ptr_null(conf_load_string("a: 1\n---\nb: 2\n", "multi.yaml", &e));
    ck_assert_int_eq(e.code, ERR_INPUT);
    ASSERT_HAS(e.msg, "multi.yaml:");
    ASSERT_HAS(e.msg, "document");
    /* A leading document marker is just one document. */
    conf_free(load_ok("---\na: 1\n"));
    conf_free(load_ok("a: 1\n...\n"));
}
END_TEST

/* An empty file, or one of only comments, is an empty mapping. */
START_TEST(test_conf_empty)
{
    const char *path = write_file("empty.yaml", "", 0);
    struct err e;
    struct conf *c;
    static const char *const none[] = {NULL};

    err_clear(&e);
    c = conf_load_file(path, &e);
    ck_assert_msg(c != NULL, "%s", e.msg);
    ck_assert(conf_is_map(conf_root(c)));
    ck_assert_int_eq(conf_check_keys(c, conf_root(c), "root", none, &e), 0);
    conf_free(c);
    c = load_ok("");
    ck_assert(conf_is_map(conf_root(c)));
    conf_free(c);
    c = load_ok("# nothing here\n\n");
    ck_assert(conf_is_map(conf_root(c)));
    conf_free(c);
    c = load_ok("---\n");
    ck_assert(conf_is_map(conf_root(c)));
    conf_free(c);
    c = load_ok("~\n");
    ck_assert(conf_is_map(conf_root(c)));
    conf_free(c);
}
END_TEST

/* A root that is a scalar or a list loads, but checking it as a mapping
 * gives a clear "expected a mapping" error. */
START_TEST(test_conf_root_not_map)
{
    static const char *const texts[] = {"hello\n", "- 1\n- 2\n", "42\n"};
    static const char *const none[] = {NULL};
    size_t i;

    for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        struct conf *c = load_ok(texts[i]);
        struct err e;

        ck_assert(!conf_is_map(conf_root(c)));
        err_clear(&e);
        ck_assert_int_eq(conf_check_keys(c, conf_root(c), "scenario", none, &e), -1);
        ck_assert_int_eq(e.code, ERR_INPUT);
        ASSERT_HAS(e.msg, "t.yaml:1: ");
        ASSERT_HAS(e.msg, "expected a mapping");
        ck_assert_ptr_null(conf_get(conf_root(c), "a"));
        conf_free(c);
    }
}
END_TEST

/* Anchors and aliases read as the anchored value (not the anchor's name),
 * merge keys work, and an alias bomb is refused instead of expanded. */
START_TEST(test_conf_aliases)
{
    struct conf *c = load_ok("base: &b {gpus: 4, model: m}\n"
                             "x: &a 5\n"
                             "y: *a\n"
                             "copy: *b\n"
                             "merged:\n  <<: *b\n  gpus: 8\n");
    struct conf_node *root = conf_root(c), *copy = NULL, *merged = NULL;
    struct err e;
    long l = 0;
    const char *s = NULL;

    ck_assert_int_eq(conf_get_long(c, root, "y", &l, &e), 1);
    ck_assert_int_eq(l, 5);
    ck_assert_int_eq(conf_get_map(c, root, "copy", &copy, &e), 1);
    ck_assert_int_eq(conf_get_long(c, copy, "gpus", &l, &e), 1);
    ck_assert_int_eq(l, 4);
    ck_assert_int_eq(conf_get_map(c, root, "merged", &merged, &e), 1);
    ck_assert_int_eq(conf_get_long(c, merged, "gpus", &l, &e), 1);
    ck_assert_int_eq(l, 8);
    ck_assert_int_eq(conf_get_str(c, merged, "model", &s, &e), 1);
    ck_assert_str_eq(s, "m");
    conf_free(c);

    /* Nine levels of ten aliases: 10^9 nodes if expanded. */
    {
        static char bomb[4096];
        size_t used = 0;
        int i;

        used += (size_t)snprintf(bomb + used, sizeof(bomb) - used, "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
        for (i = 1; i <= 9; i++)
            used += (size_t)snprintf(bomb + used, sizeof(bomb) - used,
                                     "l%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d]\n",
                                     i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
        err_clear(&e);
        ck_assert_ptr_null(conf_load_string(bomb, "bomb.yaml", &e));
        ck_assert_int_eq(e.code, ERR_INPUT);
        ASSERT_HAS(e.msg, "bomb.yaml:");
        ASSERT_HAS(e.msg, "aliases expand to over");
    }
    /* An undefined alias and a self-referencing one are clean errors. */
    err_clear(&e);
    ck_assert_ptr_null(conf_load_string("a: *nope\n", "u.yaml", &e));
    ck_assert_int_eq(e.code, ERR_INPUT);
    ASSERT_HAS(e.msg, "u.yaml:1: ");
    ASSERT_HAS(e.msg, "undefined");
    err_clear(&e);
    ck_assert_ptr_null(conf_load_string("a: &s [1, *s]\n", "self.yaml", &e));
    ck_assert_int_eq(e.code, ERR_INPUT);
    ASSERT_HAS(e.msg, "self.yaml:1: ");
}
END_TEST

/* Hostile input never crashes: a 1 MB scalar loads, 10000-deep flow nesting
 * is refused with a located error, binary garbage and NUL bytes either load
 * or fail cleanly. */
START_TEST(test_conf_hostile)
{
    enum { BIG = 1 << 20, DEEP = 10000 };
    char *buf = malloc(BIG + 16);
    struct err e;
    struct conf *c;
    const char *path, *s = NULL;
    struct rng r;
    int i, k;

    ck_assert_ptr_nonnull(buf);
    memcpy(buf, "k: ", 3);
    memset(buf + 3, 'z', BIG);
    buf[BIG + 3] = '\n';
    path = write_file("big.yaml", buf, BIG + 4);
    err_clear(&e);
    c = conf_load_file(path, &e);
    ck_assert_msg(c != NULL, "%s", e.msg);
    ck_assert_int_eq(conf_get_str(c, conf_root(c), "k", &s, &e), 1);
    ck_assert_uint_eq(strlen(s), BIG);
    conf_free(c);

    memcpy(buf, "a: ", 3);
    memset(buf + 3, '[', DEEP);
    memset(buf + 3 + DEEP, ']', DEEP);
    buf[3 + 2 * DEEP] = '\0';
    err_clear(&e);
    ck_assert_ptr_null(conf_load_string(buf, "deep.yaml", &e));
    ck_assert_int_eq(e.code, ERR_INPUT);
    ASSERT_HAS(e.msg, "deep.yaml:1: ");

    path = write_file("nul.yaml", "a: 1\0b: 2\n", 10);
    err_clear(&e);
    c = conf_load_file(path, &e);
    ck_assert(c != NULL || (e.code == ERR_INPUT && strstr(e.msg, "nul.yaml") != NULL));
    conf_free(c);

    rng_init(&r, 1, 0);
    for (k = 0; k < 20; k++) {
        for (i = 0; i < 4096; i++)
            buf[i] = (char)rng_below(&r, 256);
        path = write_file("garbage.yaml", buf, 4096);
        err_clear(&e);
        c = conf_load_file(path, &e);
        ck_assert(c != NULL || (e.code != ERR_OK && strstr(e.msg, "garbage.yaml") != NULL));
        conf_free(c);
    }
    free(buf);
}
END_TEST

/* conf_set: scalars replace values, missing mappings are created, list
 * items are replaced or appended, and values are parsed as YAML. */
START_TEST(test_conf_set)
{
    struct conf *c = load_ok("a: 1\nlist: [x0, x1]\nm: {k: v}\n");
    struct conf_node *root = conf_root(c), *n = NULL, *list = NULL;
    struct err e;
    long l = 0;
    const char *s = NULL;

    err_clear(&e);
    ck_assert_int_eq(conf_set(c, "a=2", &e), 0);
    ck_assert_int_eq(conf_get_long(c, root, "a", &l, &e), 1);
    ck_assert_int_eq(l, 2);
    ck_assert_int_eq(conf_set(c, "new=hello world", &e), 0);
    ck_assert_int_eq(conf_get_str(c, root, "new", &s, &e), 1);
    ck_assert_str_eq(s, "hello world");
    /* Nested creation. */
    ck_assert_int_eq(conf_set(c, "x.y.z=5", &e), 0);
    ck_assert_int_eq(conf_get_map(c, root, "x", &n, &e), 1);
    ck_assert_int_eq(conf_get_map(c, n, "y", &n, &e), 1);
    ck_assert_int_eq(conf_get_long(c, n, "z", &l, &e), 1);
    ck_assert_int_eq(l, 5);
    ck_assert_int_eq(conf_set(c, "m.k2=v2", &e), 0);
    ck_assert_int_eq(conf_get_map(c, root, "m", &n, &e), 1);
    ck_assert_int_eq(conf_get_str(c, n, "k", &s, &e), 1);
    ck_assert_str_eq(s, "v");
    ck_assert_int_eq(conf_get_str(c, n, "k2", &s, &e), 1);
    ck_assert_str_eq(s, "v2");
    /* Sequence items: replace, then append at the end. */
    ck_assert_int_eq(conf_set(c, "list[1]=x", &e), 0);
    ck_assert_int_eq(conf_set(c, "list[2]=y", &e), 0);
    ck_assert_int_eq(conf_get_seq(c, root, "list", &list, &e), 1);
    ck_assert_uint_eq(conf_seq_len(list), 3);
    conf_node_str(c, conf_seq_at(list, 0), "list[0]", &s, &e);
    ck_assert_str_eq(s, "x0");
    conf_node_str(c, conf_seq_at(list, 1), "list[1]", &s, &e);
    ck_assert_str_eq(s, "x");
    conf_node_str(c, conf_seq_at(list, 2), "list[2]", &s, &e);
    ck_assert_str_eq(s, "y");
    /* Past the end is refused. */
    err_clear(&e);
    ck_assert_int_eq(conf_set(c, "list[4]=z", &e), -1);
    ck_assert_int_eq(e.code, ERR_INPUT);
    ASSERT_HAS(e.msg, "--set list[4]=z");
    /* A path through a list item, creating a mapping in a new item. */
    ck_assert_int_eq(conf_set(c, "list[3].name=w", &e), 0);
    ck_assert_uint_eq(conf_seq_len(list), 4);
    ck_assert_int_eq(conf_get_str(c, conf_seq_at(list, 3), "name", &s, &e), 1);
    ck_assert_str_eq(s, "w");
    /* Values are YAML. */
    ck_assert_int_eq(conf_set(c, "seq=[1,2]", &e), 0);
    ck_assert_int_eq(conf_get_seq(c, root, "seq", &n, &e), 1);
    ck_assert_uint_eq(conf_seq_len(n), 2);
    ck_assert_int_eq(conf_set(c, "map={k: v}", &e), 0);
    ck_assert_int_eq(conf_get_map(c, root, "map", &n, &e), 1);
    ck_assert_int_eq(conf_get_str(c, n, "k", &s, &e), 1);
    ck_assert_str_eq(s, "v");
    /* Replacing a whole subtree, and a value with '=' in it. */
    ck_assert_int_eq(conf_set(c, "m=plain", &e), 0);
    ck_assert_int_eq(conf_get_str(c, root, "m", &s, &e), 1);
    ck_assert_str_eq(s, "plain");
    ck_assert_int_eq(conf_set(c, "eq=a=b", &e), 0);
    ck_assert_int_eq(conf_get_str(c, root, "eq", &s, &e), 1);
    ck_assert_str_eq(s, "a=b");
    /* Design: a value that is not valid YAML is kept as the plain string. */
    ck_assert_int_eq(conf_set(c, "raw=[1,", &e), 0);
    ck_assert_int_eq(conf_get_str(c, root, "raw", &s, &e), 1);
    ck_assert_str_eq(s, "[1,");
    /* Design: "~" sets a null, which readers see as absent. */
    ck_assert_int_eq(conf_set(c, "a=~", &e), 0);
    ck_assert_int_eq(conf_get_long(c, root, "a", &l, &e), 0);
    conf_free(c);
}
END_TEST

/* Malformed assignments and paths that do not fit the tree are refused
 * with ERR_INPUT and a message quoting the assignment; the tree is kept. */
START_TEST(test_conf_set_refuses)
{
    static const char *const bad[] = {
        "",      "a..b=1", "a[=1",   "a[x]=1", "=5",    "noequals", "a.=1",  ".a=1",
        "a[-1]=1", "a[]=1", "a[0]b=1", "a.[0]=1", "a[ 0]=1", "a[+0]=1", "s.x=1", "s[0]=1",
        "l.x=1",  "l[5]=1",
    };
    struct conf *c = load_ok("s: scalar\nl: [1]\n");
    size_t i;
    const char *s = NULL;
    struct err e;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err_clear(&e);
        ck_assert_msg(conf_set(c, bad[i], &e) == -1, "'%s' accepted", bad[i]);
        ck_assert_int_eq(e.code, ERR_INPUT);
        ASSERT_HAS(e.msg, "--set");
    }
    ck_assert_int_eq(conf_get_str(c, conf_root(c), "s", &s, &e), 1);
    ck_assert_str_eq(s, "scalar");
    ck_assert_uint_eq(conf_seq_len(conf_get(conf_root(c), "l")), 1);
    ck_assert_ptr_null(conf_get(conf_root(c), "a"));
    conf_free(c);

    /* A root that is not a mapping takes no keys. */
    c = load_ok("- 1\n");
    err_clear(&e);
    ck_assert_int_eq(conf_set(c, "a=1", &e), -1);
    ASSERT_HAS(e.msg, "--set a=1");
    conf_free(c);
}
END_TEST

/* Errors about values, keys and containers that came from --set name the
 * assignment instead of a file line, also after the same key is set twice. */
START_TEST(test_conf_set_located)
{
    struct conf *c = load_ok("a: 1\ncluster:\n  gpus: 8\nlist: [1]\n");
    struct conf_node *root = conf_root(c), *cluster;
    struct err e;
    double d;
    static const char *const known_root[] = {"a", "cluster", "list", NULL};
    static const char *const known_cluster[] = {"gpus", NULL};

    ck_assert_int_eq(conf_set(c, "a=oops", &e), 0);
    err_clear(&e);
    ck_assert_int_eq(conf_get_double(c, root, "a", &d, &e), -1);
    ck_assert_str_eq(e.msg, "--set a=oops: a: expected a number, got 'oops'");
    /* Set again: the newer assignment is named. */
    ck_assert_int_eq(conf_set(c, "a=again", &e), 0);
    err_clear(&e);
    ck_assert_int_eq(conf_get_double(c, root, "a", &d, &e), -1);
    ASSERT_HAS(e.msg, "--set a=again: ");
    /* An unknown key added by --set is named by its assignment. */
    ck_assert_int_eq(conf_set(c, "cluster.gpuz=4", &e), 0);
    cluster = conf_get(root, "cluster");
    err_clear(&e);
    ck_assert_int_eq(conf_check_keys(c, cluster, "cluster", known_cluster, &e), -1);
    ck_assert_msg(strncmp(e.msg, "--set cluster.gpuz=4: ", 22) == 0, "%s", e.msg);
    ASSERT_HAS(e.msg, "'gpuz'");
    /* So is a mapping created on the way. */
    ck_assert_int_eq(conf_set(c, "extra.deep.key=1", &e), 0);
    err_clear(&e);
    ck_assert_int_eq(conf_check_keys(c, root, "scenario", known_root, &e), -1);
    ck_assert_msg(strncmp(e.msg, "--set extra.deep.key=1: ", 24) == 0, "%s", e.msg);
    /* A file value next to overridden ones keeps its file line. */
    err_clear(&e);
    ck_assert_int_eq(conf_get_map(c, cluster, "gpus", &root, &e), -1);
    ck_assert_str_eq(e.msg, "t.yaml:3: gpus: expected a mapping");
    conf_free(c);
}
END_TEST

static Suite *suite_conf(void)
{
    Suite *s = suite_create("conf");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, conf_setup, conf_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_conf_getters);
    tcase_add_test(tc, test_conf_wrong_types);
    tcase_add_test(tc, test_conf_check_keys);
    tcase_add_test(tc, test_conf_load_errors);
    tcase_add_test(tc, test_conf_multi_document);
    tcase_add_test(tc, test_conf_empty);
    tcase_add_test(tc, test_conf_root_not_map);
    tcase_add_test(tc, test_conf_aliases);
    tcase_add_test(tc, test_conf_hostile);
    tcase_add_test(tc, test_conf_set);
    tcase_add_test(tc, test_conf_set_refuses);
    tcase_add_test(tc, test_conf_set_located);
    suite_add_tcase(s, tc);
    return s;
}

/* ==== path ================================================================= */

/* Whether PATH is a directory. */
static int is_dir(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

START_TEST(test_path_mkdirs)
{
    char dir[512], file[600], big[5000];
    struct err e = {0};
    FILE *f;

    /* nested, then again (existing: fine), with a trailing slash */
    snprintf(dir, sizeof(dir), "%s/a/b/c", conf_tmpdir);
    ck_assert_int_eq(path_mkdirs(dir, &e), 0);
    ck_assert(is_dir(dir));
    ck_assert_int_eq(path_mkdirs(dir, &e), 0);
    snprintf(dir, sizeof(dir), "%s/a/d/", conf_tmpdir);
    ck_assert_int_eq(path_mkdirs(dir, &e), 0);
    snprintf(dir, sizeof(dir), "%s/a/d", conf_tmpdir);
    ck_assert(is_dir(dir));
    /* the directories above a file, not the file */
    snprintf(file, sizeof(file), "%s/x/y/out.json", conf_tmpdir);
    ck_assert_int_eq(path_mkdirs_for(file, &e), 0);
    snprintf(dir, sizeof(dir), "%s/x/y", conf_tmpdir);
    ck_assert(is_dir(dir));
    ck_assert(!is_dir(file));
    ck_assert_int_eq(path_mkdirs_for("out.json", &e), 0); /* a bare name: nothing */
    ck_assert_int_eq(path_mkdirs_for("/out.json", &e), 0);
    /* a file in the way is named */
    snprintf(file, sizeof(file), "%s/plain", conf_tmpdir);
    f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    snprintf(dir, sizeof(dir), "%s/plain/sub", conf_tmpdir);
    err_clear(&e);
    ck_assert_int_eq(path_mkdirs(dir, &e), -1);
    ck_assert_msg(strstr(e.msg, "plain/sub") != NULL, "%s", e.msg);
    /* empty and oversized paths are refused, not truncated */
    err_clear(&e);
    ck_assert_int_eq(path_mkdirs("", &e), -1);
    ck_assert_int_eq(e.code, ERR_INPUT);
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    err_clear(&e);
    ck_assert_int_eq(path_mkdirs(big, &e), -1);
    ck_assert_int_eq(e.code, ERR_INPUT);
    ck_assert_uint_lt(strlen(e.msg), 200);
    big[4500] = '/'; /* a directory part over the limit */
    err_clear(&e);
    ck_assert_int_eq(path_mkdirs_for(big, &e), -1);
    ck_assert_int_eq(e.code, ERR_INPUT);
}
END_TEST

static Suite *suite_path(void)
{
    Suite *s = suite_create("path");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, conf_setup, conf_teardown);
    tcase_add_test(tc, test_path_mkdirs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite_err());
    int failed;

    srunner_add_suite(sr, suite_duration());
    srunner_add_suite(sr, suite_hist());
    srunner_add_suite(sr, suite_rng());
    srunner_add_suite(sr, suite_conf());
    srunner_add_suite(sr, suite_path());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
