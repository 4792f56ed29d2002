/* check_keda.c -- time zones (TZif, RFC 3339), cron schedules (parsing,
 * next firing across months, leap years and daylight-saving changes), and
 * KEDA in the simulation loop: activation from zero, cooldown, activation
 * thresholds, cron windows, scenario errors. */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim/cron.h"
#include "sim/keda.h"
#include "sim/scenario.h"
#include "sim/sim.h"
#include "sim/tz.h"

/* ---- helpers ------------------------------------------------------------------------ */

/* An RFC 3339 time as Unix seconds (the parser is checked on its own). */
static int64_t T(const char *text)
{
    struct err e = {0};
    int64_t t = 0;

    if (tz_parse_rfc3339(text, &t, &e) < 0)
        ck_abort_msg("bad time in the test: %s", e.msg);
    return t;
}

static struct tz *zone(const char *name)
{
    struct err e = {0};
    struct tz *z = tz_load(name, &e);

    if (z == NULL)
        ck_abort_msg("tz_load(%s): %s", name, e.msg);
    return z;
}

static struct cron cron_of(const char *expr)
{
    struct err e = {0};
    struct cron c;

    if (cron_parse(expr, &c, &e) < 0)
        ck_abort_msg("cron_parse(%s): %s", expr, e.msg);
    return c;
}

/* The first firing of EXPR in zone NAME strictly after the time AFTER. */
static int64_t next_at(const char *expr, const char *name, const char *after)
{
    struct cron c = cron_of(expr);
    struct tz *z = zone(name);
    int64_t t = cron_next(&c, z, T(after));

    tz_free(z);
    return t;
}

/* Expect cron_parse(EXPR) to fail with a message containing WANT. */
static void cron_fails(const char *expr, const char *want)
{
    struct err e = {0};
    struct cron c;

    ck_assert_msg(cron_parse(expr, &c, &e) < 0, "'%s' was accepted", expr);
    ck_assert_msg(strstr(e.msg, want) != NULL, "'%s': got \"%s\", want \"%s\"", expr, e.msg, want);
}

/* ---- time zones ----------------------------------------------------------------------- */

START_TEST(test_tz_rfc3339)
{
    struct err e = {0};
    int64_t t;

    ck_assert_int_eq(T("2024-05-06T00:00:00Z"), 1714953600);
    ck_assert_int_eq(T("2024-05-06T02:00:00+02:00"), 1714953600);
    ck_assert_int_eq(T("2024-05-05T20:00:00-04:00"), 1714953600);
    ck_assert_int_eq(T("1970-01-01T00:00:00Z"), 0);
    ck_assert_int_eq(T("2024-01-01T00:00:00Z"), KEDA_DEFAULT_CLOCK_START_S);
    ck_assert_int_eq(T("2096-03-01T00:00:00Z"), 3981398400LL);
    ck_assert_int_lt(tz_parse_rfc3339("2023-02-29T00:00:00Z", &t, &e), 0);
    ck_assert_ptr_nonnull(strstr(e.msg, "no such date"));
    ck_assert_int_lt(tz_parse_rfc3339("2024-01-01T00:00:00", &t, &e), 0);
    ck_assert_ptr_nonnull(strstr(e.msg, "missing the UTC offset"));
    ck_assert_int_lt(tz_parse_rfc3339("2024-01-01 00:00", &t, &e), 0);
    ck_assert_int_lt(tz_parse_rfc3339("2024-01-01T00:00:00.5Z", &t, &e), 0);
    ck_assert_ptr_nonnull(strstr(e.msg, "fractional"));
}
END_TEST

START_TEST(test_tz_offsets)
{
    struct tz *paris = zone("Europe/Paris"), *ny = zone("America/New_York"), *utc = zone("UTC");
    struct err e = {0};

    ck_assert_int_eq(tz_offset_s(paris, T("2024-01-15T12:00:00Z")), 3600);
    ck_assert_int_eq(tz_offset_s(paris, T("2024-07-15T12:00:00Z")), 7200);
    /* The change itself: 2024-03-31 01:00 UTC, 2024-10-27 01:00 UTC. */
    ck_assert_int_eq(tz_offset_s(paris, T("2024-03-31T00:59:59Z")), 3600);
    ck_assert_int_eq(tz_offset_s(paris, T("2024-03-31T01:00:00Z")), 7200);
    ck_assert_int_eq(tz_next_transition(paris, T("2024-03-01T00:00:00Z")), T("2024-03-31T01:00:00Z"));
    ck_assert_int_eq(tz_next_transition(paris, T("2024-03-31T01:00:00Z")), T("2024-10-27T01:00:00Z"));
    ck_assert_int_eq(tz_offset_s(ny, T("2024-03-10T06:59:59Z")), -5 * 3600);
    ck_assert_int_eq(tz_offset_s(ny, T("2024-03-10T07:00:00Z")), -4 * 3600);
    /* Past the file's transitions: the footer's rule. */
    ck_assert_int_eq(tz_offset_s(paris, T("2090-07-01T00:00:00Z")), 7200);
    ck_assert_int_eq(tz_offset_s(paris, T("2090-12-01T00:00:00Z")), 3600);
    ck_assert_int_eq(tz_next_transition(ny, T("2090-01-01T00:00:00Z")), T("2090-03-12T07:00:00Z"));
    ck_assert_int_eq(tz_offset_s(utc, T("2024-07-15T12:00:00Z")), 0);
    ck_assert_int_eq(tz_next_transition(utc, 0), TZ_NEVER);
    ck_assert_ptr_null(tz_load("Mars/Olympus_Mons", &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "unknown time zone 'Mars/Olympus_Mons'"));
    ck_assert_ptr_null(tz_load("../../etc/passwd", &e));
    ck_assert_ptr_null(tz_load("/etc/localtime", &e));
    tz_free(paris);
    tz_free(ny);
    tz_free(utc);
}
END_TEST

/* ---- cron parsing ------------------------------------------------------------------------- */

START_TEST(test_cron_parse_fields)
{
    struct cron c = cron_of("*/15 8-18/2 1,15 JAN-mar Mon-FRI");

    ck_assert_uint_eq(c.minutes, (1ULL << 0) | (1ULL << 15) | (1ULL << 30) | (1ULL << 45));
    ck_assert_uint_eq(c.hours, (1u << 8) | (1u << 10) | (1u << 12) | (1u << 14) | (1u << 16) | (1u << 18));
    ck_assert_uint_eq(c.days, (1u << 1) | (1u << 15));
    ck_assert_uint_eq(c.months, 0xe);
    ck_assert_uint_eq(c.weekdays, 0x3e);
    ck_assert(!c.days_star && !c.weekdays_star);
    c = cron_of("5/20 * ? * *");
    ck_assert_uint_eq(c.minutes, (1ULL << 5) | (1ULL << 25) | (1ULL << 45));
    ck_assert_uint_eq(c.hours, 0xffffff);
    ck_assert(c.days_star && c.weekdays_star);
    ck_assert_uint_eq(c.weekdays, 0x7f);
    /* Sunday: 0, 7 or SUN; a range through 7. */
    ck_assert_uint_eq(cron_of("0 0 * * 7").weekdays, 1);
    ck_assert_uint_eq(cron_of("0 0 * * sun").weekdays, 1);
    ck_assert_uint_eq(cron_of("0 0 * * 5-7").weekdays, 0x61);
    /* "*" with a step restricts the field. */
    ck_assert(!cron_of("0 0 */2 * *").days_star);
    ck_assert(cron_of("0 0 */1 * *").days_star);
    /* Descriptors. */
    c = cron_of("@daily");
    ck_assert_uint_eq(c.minutes, 1);
    ck_assert_uint_eq(c.hours, 1);
    ck_assert(c.days_star);
    ck_assert_uint_eq(cron_of("  @Weekly ").weekdays, 1);
}
END_TEST

START_TEST(test_cron_parse_errors)
{
    cron_fails("0 25 * * *", "cron '0 25 * * *': hour: 25 is out of range 0-23");
    cron_fails("60 * * * *", "minute: 60 is out of range 0-59");
    cron_fails("0 0 0 * *", "day of month: 0 is out of range 1-31");
    cron_fails("0 0 * 13 *", "month: 13 is out of range 1-12");
    cron_fails("0 0 * * 8", "day of week: 8 is out of range 0-7");
    cron_fails("0 0 * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4");
    cron_fails("", "got 0");
    cron_fails("0 0 * * * *", "got more");
    cron_fails("5-3 * * * *", "minute: range 5-3 is backwards");
    cron_fails("*/0 * * * *", "minute: bad step");
    cron_fails("*/x * * * *", "minute: bad step");
    cron_fails("0 0 * FOO *", "month: 'FOO' is not a value, range or '*'");
    cron_fails("0 0 * * MONDAY", "day of week: 'MONDAY' is not a value");
    cron_fails("0,,5 * * * *", "minute: empty list item");
    cron_fails("0 0 30 2 *", "never fires");
    cron_fails("@every 1h", "unknown descriptor");
    cron_fails("@daily 5", "nothing may follow a descriptor");
}
END_TEST

/* ---- next firing ---------------------------------------------------------------------------- */

START_TEST(test_cron_next_months_and_leap_years)
{
    /* Strictly after: at 08:00 exactly, the next is tomorrow's. */
    ck_assert_int_eq(next_at("0 8 * * *", "UTC", "2024-01-01T08:00:00Z"), T("2024-01-02T08:00:00Z"));
    ck_assert_int_eq(next_at("0 8 * * *", "UTC", "2024-01-01T07:59:59Z"), T("2024-01-01T08:00:00Z"));
    /* The 31st skips the months without one. */
    ck_assert_int_eq(next_at("0 0 31 * *", "UTC", "2024-01-31T00:00:00Z"), T("2024-03-31T00:00:00Z"));
    ck_assert_int_eq(next_at("0 0 31 * *", "UTC", "2024-03-31T00:00:00Z"), T("2024-05-31T00:00:00Z"));
    ck_assert_int_eq(next_at("59 23 31 12 *", "UTC", "2024-06-01T00:00:00Z"), T("2024-12-31T23:59:00Z"));
    /* 29 February: the next leap year; 2100 is not one. */
    ck_assert_int_eq(next_at("0 12 29 2 *", "UTC", "2024-03-01T00:00:00Z"), T("2028-02-29T12:00:00Z"));
    ck_assert_int_eq(next_at("0 12 29 2 *", "UTC", "2096-03-01T00:00:00Z"), T("2104-02-29T12:00:00Z"));
    ck_assert_int_eq(next_at("0 0 28 2 *", "UTC", "2023-02-28T00:00:00Z"), T("2024-02-28T00:00:00Z"));
    /* Both day fields restricted: either matches (the 13th or a Friday). */
    ck_assert_int_eq(next_at("0 0 13 * 5", "UTC", "2024-01-01T00:00:00Z"), T("2024-01-05T00:00:00Z"));
    ck_assert_int_eq(next_at("0 0 13 * 5", "UTC", "2024-01-12T00:00:00Z"), T("2024-01-13T00:00:00Z"));
    /* One of them '*': both must (here only the weekday restricts). */
    ck_assert_int_eq(next_at("0 0 * * 5", "UTC", "2024-01-05T00:00:00Z"), T("2024-01-12T00:00:00Z"));
    ck_assert_int_eq(next_at("0 0 13 * *", "UTC", "2024-01-01T00:00:00Z"), T("2024-01-13T00:00:00Z"));
    /* A weekday schedule over a weekend, in a zone. */
    ck_assert_int_eq(next_at("0 8 * * 1-5", "Europe/Paris", "2024-01-05T12:00:00Z"),
                     T("2024-01-08T08:00:00+01:00"));
    /* Far ahead, past the TZif file's last transition. */
    ck_assert_int_eq(next_at("0 9 * * *", "Europe/Paris", "2090-07-01T00:00:00Z"), T("2090-07-01T09:00:00+02:00"));
    ck_assert_int_eq(next_at("0 9 * * *", "Europe/Paris", "2090-01-01T00:00:00Z"), T("2090-01-01T09:00:00+01:00"));
}
END_TEST

START_TEST(test_cron_next_dst_paris)
{
    /* 2024-03-31: 02:00 CET -> 03:00 CEST; 02:30 does not exist that day. */
    ck_assert_int_eq(next_at("30 2 * * *", "Europe/Paris", "2024-03-30T12:00:00Z"), T("2024-04-01T02:30:00+02:00"));
    ck_assert_int_eq(next_at("0 8 * * *", "Europe/Paris", "2024-03-30T12:00:00Z"), T("2024-03-31T08:00:00+02:00"));
    ck_assert_int_eq(next_at("0 3 * * *", "Europe/Paris", "2024-03-30T12:00:00Z"), T("2024-03-31T03:00:00+02:00"));
    ck_assert_int_eq(next_at("59 1 * * *", "Europe/Paris", "2024-03-30T12:00:00Z"), T("2024-03-31T01:59:00+01:00"));
    /* 2024-10-27: 03:00 CEST -> 02:00 CET; 02:30 happens twice. */
    ck_assert_int_eq(next_at("30 2 * * *", "Europe/Paris", "2024-10-26T12:00:00Z"), T("2024-10-27T02:30:00+02:00"));
    ck_assert_int_eq(next_at("30 2 * * *", "Europe/Paris", "2024-10-27T02:30:00+02:00"),
                     T("2024-10-27T02:30:00+01:00"));
    ck_assert_int_eq(next_at("30 2 * * *", "Europe/Paris", "2024-10-27T02:30:00+01:00"),
                     T("2024-10-28T02:30:00+01:00"));
    /* An hourly schedule across the change keeps firing every hour of UTC. */
    ck_assert_int_eq(next_at("0 * * * *", "Europe/Paris", "2024-10-27T02:00:00+02:00"), T("2024-10-27T02:00:00+01:00"));
    ck_assert_int_eq(next_at("0 * * * *", "Europe/Paris", "2024-03-31T01:00:00+01:00"), T("2024-03-31T03:00:00+02:00"));
}
END_TEST

START_TEST(test_cron_next_dst_new_york)
{
    /* 2024-03-10: 02:00 EST -> 03:00 EDT. */
    ck_assert_int_eq(next_at("0 9 * * *", "America/New_York", "2024-03-09T15:00:00Z"),
                     T("2024-03-10T09:00:00-04:00"));
    ck_assert_int_eq(next_at("15 2 * * *", "America/New_York", "2024-03-09T15:00:00Z"),
                     T("2024-03-11T02:15:00-04:00"));
    /* 2024-11-03: 02:00 EDT -> 01:00 EST; 01:30 twice. */
    ck_assert_int_eq(next_at("30 1 * * *", "America/New_York", "2024-11-02T12:00:00Z"),
                     T("2024-11-03T01:30:00-04:00"));
    ck_assert_int_eq(next_at("30 1 * * *", "America/New_York", "2024-11-03T01:30:00-04:00"),
                     T("2024-11-03T01:30:00-05:00"));
    ck_assert_int_eq(next_at("30 1 * * *", "America/New_York", "2024-11-03T01:30:00-05:00"),
                     T("2024-11-04T01:30:00-05:00"));
    /* Weekdays at 9:00 local, across the change: 13:00 UTC after, 14:00 before. */
    ck_assert_int_eq(next_at("0 9 * * MON-FRI", "America/New_York", "2024-11-01T14:00:00Z"),
                     T("2024-11-04T14:00:00Z"));
}
END_TEST

START_TEST(test_cron_window)
{
    struct cron start = cron_of("0 8 * * 1-5"), end = cron_of("0 20 * * 1-5");
    struct tz *paris = zone("Europe/Paris");

    /* Monday 2024-01-01, CET. */
    ck_assert(!cron_window_active(&start, &end, paris, T("2024-01-01T07:59:59+01:00")));
    ck_assert(cron_window_active(&start, &end, paris, T("2024-01-01T08:00:00+01:00")));
    ck_assert(cron_window_active(&start, &end, paris, T("2024-01-01T19:59:59+01:00")));
    ck_assert(!cron_window_active(&start, &end, paris, T("2024-01-01T20:00:00+01:00")));
    /* Friday evening to Monday morning: closed. */
    ck_assert(!cron_window_active(&start, &end, paris, T("2024-01-06T12:00:00+01:00")));
    ck_assert(!cron_window_active(&start, &end, paris, T("2024-01-08T07:00:00+01:00")));
    /* The same local hours in summer time. */
    ck_assert(cron_window_active(&start, &end, paris, T("2024-07-01T08:00:00+02:00")));
    ck_assert(!cron_window_active(&start, &end, paris, T("2024-07-01T07:30:00+02:00")));
    tz_free(paris);
}
END_TEST

/* ---- KEDA's poll rules ----------------------------------------------------------------------- */

START_TEST(test_keda_poll_rules)
{
    struct keda_spec k;
    struct keda_state st = {0};
    int32_t r;

    memset(&k, 0, sizeof(k));
    k.max_replicas = 10;
    k.cooldown_s = 60;
    /* minReplicaCount 0: activate from 0 to 1; no lastActiveTime: scale in at once. */
    ck_assert_int_eq(keda_poll(&k, &st, 0, 3, false, &r), KEDA_DEACTIVATE);
    ck_assert_int_eq(r, 0);
    ck_assert_int_eq(keda_poll(&k, &st, 30, 0, true, &r), KEDA_ACTIVATE);
    ck_assert_int_eq(r, 1);
    ck_assert_int_eq(keda_poll(&k, &st, 60, 4, false, &r), KEDA_NO_CHANGE);
    ck_assert_int_eq(r, 4);
    ck_assert_int_eq(keda_poll(&k, &st, 89, 4, false, &r), KEDA_NO_CHANGE);
    ck_assert_int_eq(keda_poll(&k, &st, 90, 4, false, &r), KEDA_DEACTIVATE);
    ck_assert_int_eq(r, 0);
    ck_assert_int_eq(keda_poll(&k, &st, 120, 0, false, &r), KEDA_NO_CHANGE);
    /* Active above zero: only lastActiveTime moves. */
    ck_assert_int_eq(keda_poll(&k, &st, 150, 2, true, &r), KEDA_NO_CHANGE);
    ck_assert(st.has_last_active && st.last_active_s == 150);
    /* initialCooldownPeriod holds the first scale-in. */
    memset(&st, 0, sizeof(st));
    k.initial_cooldown_s = 100;
    ck_assert_int_eq(keda_poll(&k, &st, 30, 1, false, &r), KEDA_NO_CHANGE);
    ck_assert_int_eq(keda_poll(&k, &st, 100, 1, false, &r), KEDA_DEACTIVATE);
    /* minReplicaCount 2 with idleReplicaCount 0. */
    memset(&st, 0, sizeof(st));
    k.initial_cooldown_s = 0;
    k.min_replicas = 2;
    k.has_idle = true;
    k.idle_replicas = 0;
    ck_assert_int_eq(keda_poll(&k, &st, 0, 0, true, &r), KEDA_ACTIVATE);
    ck_assert_int_eq(r, 2);
    ck_assert_int_eq(keda_poll(&k, &st, 60, 2, false, &r), KEDA_DEACTIVATE);
    ck_assert_int_eq(r, 0);
    /* minReplicaCount 2 without idle mode: never below 2. */
    memset(&st, 0, sizeof(st));
    k.has_idle = false;
    ck_assert_int_eq(keda_poll(&k, &st, 0, 0, false, &r), KEDA_TO_MIN);
    ck_assert_int_eq(r, 2);
    ck_assert_int_eq(keda_poll(&k, &st, 500, 2, false, &r), KEDA_NO_CHANGE);
    ck_assert_int_eq(keda_poll(&k, &st, 530, 0, true, &r), KEDA_ACTIVATE);
    ck_assert_int_eq(r, 2);
}
END_TEST

/* ---- KEDA in the simulation -------------------------------------------------------------------- */

static char tmpdir[256];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_keda.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

static const char *write_file(const char *name, const char *text)
{
    static char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

#define NATIVE_HEADER "arrival_s,prompt_tokens,output_tokens,prompt_hash,tenant\n"

/* Run YAML (with the trace TRACE written as t.csv) into tmpdir; returns
 * the summary. */
static json_t *run_keda(const char *trace, const char *yaml)
{
    struct sim_options opt = {0};
    struct err e = {0};
    struct scenario *s;
    json_t *sm;

    write_file("t.csv", trace);
    s = scenario_load(write_file("scenario.yaml", yaml), NULL, 0, &e);
    if (s == NULL)
        ck_abort_msg("scenario failed to load: %s", e.msg);
    opt.outdir = tmpdir;
    opt.reproducible = true;
    opt.requests_csv = true;
    sm = sim_run(s, &opt, &e);
    if (sm == NULL)
        ck_abort_msg("run failed: %s", e.msg);
    scenario_free(s);
    return sm;
}

static double jget(json_t *o, const char *a, const char *b, const char *c)
{
    json_t *x = json_object_get(o, a);
    if (b)
        x = json_object_get(x, b);
    if (c)
        x = json_object_get(x, c);
    ck_assert_msg(x != NULL, "no %s.%s.%s in the summary", a, b ? b : "", c ? c : "");
    return json_number_value(x);
}

/* Column COL (by header name) of the CSV file NAME in tmpdir, in the row
 * whose KEY column equals KEY_VALUE; NAN when absent or empty. */
static double csv_at(const char *name, const char *key, double key_value, const char *col)
{
    char path[512], line[2048];
    int kcol = -1, vcol = -1, i;
    double v = NAN;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
    {
        char *tok = strtok(line, ",\n");
        for (i = 0; tok != NULL; i++, tok = strtok(NULL, ",\n")) {
            if (strcmp(tok, key) == 0)
                kcol = i;
            if (strcmp(tok, col) == 0)
                vcol = i;
        }
    }
    ck_assert_msg(kcol >= 0 && vcol >= 0, "%s: no column %s or %s", name, key, col);
    while (fgets(line, sizeof(line), f)) {
        char *fields[64], *p = line;
        int n = 0;
        while (n < 64) {
            fields[n++] = p;
            p = strchr(p, ',');
            if (p == NULL)
                break;
            *p++ = '\0';
        }
        if (kcol < n && vcol < n && fabs(strtod(fields[kcol], NULL) - key_value) < 1e-6) {
            if (fields[vcol][0] != '\0' && fields[vcol][0] != '\n')
                v = strtod(fields[vcol], NULL);
            break;
        }
    }
    fclose(f);
    return v;
}

/* The timeline with 1 s rows: the row starting at T - 1 is closed by the
 * tick at T, which was scheduled after every poll, sync and start-up due at
 * T, so it shows the state just after time T. */
static double state_after(double t, const char *col)
{
    return csv_at("timeline.csv", "time_s", t - 1, col);
}

/* At zero replicas a request waits at the gateway; the poll at 30 s sees it
 * (value 1 > activationThreshold 0) and scales to 1; the replica is ready
 * 20 s later and serves it in 1 s: TTFT = 51 - 10.  The last active poll is
 * at 30 s; with cooldownPeriod 60 s the poll at 90 s scales to zero.  A
 * second request at 200 s is activated at 210 s, ready at 230 s. */
START_TEST(test_keda_activation_and_cooldown)
{
    json_t *sm;

    make_tmpdir();
    sm = run_keda(NATIVE_HEADER "10,1,1,,\n200,1,1,,\n",
                  "workload: {trace: t.csv}\n"
                  "service: {kind: deterministic, mean: 1s}\n"
                  "cluster: {replicas: 0, startup: {model_load: 20s}}\n"
                  "autoscaler:\n"
                  "  keda:\n"
                  "    pollingInterval: 30\n"
                  "    cooldownPeriod: 60\n"
                  "    triggers:\n"
                  "    - type: metric\n"
                  "      metadata: {metricName: gateway_requests_waiting, targetValue: '1'}\n"
                  "  metrics: {scrape_interval: 5s}\n"
                  "output: {interval: 1s}\n");
    ck_assert_double_eq(state_after(29, "replicas_desired"), 0);
    ck_assert_double_eq(state_after(30, "replicas_desired"), 1);
    ck_assert_double_eq(state_after(49, "replicas_ready"), 0);
    ck_assert_double_eq(state_after(50, "replicas_ready"), 1);
    ck_assert_double_eq(state_after(89, "replicas_desired"), 1);
    ck_assert_double_eq(state_after(90, "replicas_desired"), 0);
    ck_assert_double_eq(state_after(209, "replicas_desired"), 0);
    ck_assert_double_eq(state_after(210, "replicas_desired"), 1);
    ck_assert_double_eq(csv_at("requests.csv", "id", 0, "ttft_s"), 41);
    ck_assert_double_eq(csv_at("requests.csv", "id", 0, "queue_s"), 40);
    ck_assert_double_eq(csv_at("requests.csv", "id", 1, "ttft_s"), 31);
    ck_assert_double_eq(jget(sm, "requests", "completed", NULL), 2);
    ck_assert_double_eq(jget(sm, "events", "activations", NULL), 2);
    ck_assert_double_eq(jget(sm, "events", "scale_to_zero", NULL), 1);
    ck_assert_double_eq(jget(sm, "events", "cold_starts", NULL), 2);
    ck_assert_double_eq(jget(sm, "replicas", "min", NULL), 0);
    ck_assert_double_eq(jget(sm, "replicas", "max", NULL), 1);
    /* Billed: 30..90 and 210..231 (the end of the run). */
    ck_assert_double_eq_tol(jget(sm, "gpu_hours", NULL, NULL), (60.0 + 21.0) / 3600.0, 1e-9);
    json_decref(sm);
    remove_tmpdir();
}
END_TEST

/* Waiting requests below activationThreshold never wake the service: with
 * a queue timeout they time out; without one the run stops once nothing
 * can change, the requests still held. */
START_TEST(test_keda_activation_threshold)
{
    static const char *yaml = "workload: {trace: t.csv}\n"
                              "service: {kind: deterministic, mean: 1s}\n"
                              "cluster: {replicas: 0, startup: {model_load: 20s}}\n"
                              "gateway: {queue_timeout: %s}\n"
                              "autoscaler:\n"
                              "  keda:\n"
                              "    triggers:\n"
                              "    - type: metric\n"
                              "      metadata: {metricName: gateway_requests_waiting, value: 1, activationThreshold: 3}\n";
    char text[1024];
    json_t *sm;

    make_tmpdir();
    snprintf(text, sizeof(text), yaml, "60s");
    sm = run_keda(NATIVE_HEADER "10,1,1,,\n10,1,1,,\n10,1,1,,\n", text);
    ck_assert_double_eq(jget(sm, "requests", "timed_out", NULL), 3);
    ck_assert_double_eq(jget(sm, "replicas", "max", NULL), 0);
    ck_assert_double_eq(jget(sm, "events", "activations", NULL), 0);
    json_decref(sm);
    snprintf(text, sizeof(text), yaml, "0");
    sm = run_keda(NATIVE_HEADER "10,1,1,,\n10,1,1,,\n10,1,1,,\n", text);
    ck_assert_double_eq(jget(sm, "requests", "in_flight_at_end", NULL), 3);
    ck_assert_double_eq(jget(sm, "replicas", "max", NULL), 0);
    ck_assert(jget(sm, "sim", "duration_s", NULL) < 120);
    json_decref(sm);
    /* One more request crosses the threshold (4 > 3): all are served. */
    snprintf(text, sizeof(text), yaml, "0");
    sm = run_keda(NATIVE_HEADER "10,1,1,,\n10,1,1,,\n10,1,1,,\n10,1,1,,\n", text);
    ck_assert_double_eq(jget(sm, "requests", "completed", NULL), 4);
    ck_assert_double_eq(jget(sm, "events", "activations", NULL), 1);
    json_decref(sm);
    remove_tmpdir();
}
END_TEST

/* A cron window 08:00-08:10 Paris time on weekdays; the clock starts on
 * Monday 2024-01-01 at 07:55 Paris (06:55 UTC), so the window is simulated
 * seconds 300..900.  The poll at 300 activates (0 -> 1) and the HPA sync
 * at the same instant follows the cron metric (3 against AverageValue 1) to
 * 3.  The last active poll is at 870; with cooldownPeriod 60 the poll at
 * 930 scales to zero.  A request at 1000 finds no replica and times out. */
START_TEST(test_keda_cron_window)
{
    json_t *sm;

    make_tmpdir();
    sm = run_keda(NATIVE_HEADER "1000,1,1,,\n",
                  "workload: {trace: t.csv}\n"
                  "service: {kind: deterministic, mean: 1s}\n"
                  "cluster: {replicas: 0, startup: {model_load: 20s}}\n"
                  "gateway: {queue_timeout: 30s}\n"
                  "autoscaler:\n"
                  "  keda:\n"
                  "    clock_start: '2024-01-01T07:55:00+01:00'\n"
                  "    cooldownPeriod: 1m\n"
                  "    triggers:\n"
                  "    - type: cron\n"
                  "      metadata: {timezone: Europe/Paris, start: 0 8 * * 1-5, end: 10 8 * * 1-5, desiredReplicas: '3'}\n"
                  "output: {interval: 1s}\n");
    ck_assert_double_eq(state_after(299, "replicas_desired"), 0);
    ck_assert_double_eq(state_after(300, "replicas_desired"), 3);
    ck_assert_double_eq(state_after(320, "replicas_ready"), 3);
    ck_assert_double_eq(state_after(929, "replicas_desired"), 3);
    ck_assert_double_eq(state_after(930, "replicas_desired"), 0);
    ck_assert_double_eq(jget(sm, "requests", "timed_out", NULL), 1);
    ck_assert_double_eq(jget(sm, "events", "activations", NULL), 1);
    ck_assert_double_eq(jget(sm, "events", "scale_to_zero", NULL), 1);
    ck_assert_double_eq(jget(sm, "replicas", "max", NULL), 3);
    json_decref(sm);
    remove_tmpdir();
}
END_TEST

/* Expect the scenario YAML to fail with "scenario.yaml:LINE:" and WANT. */
static void scenario_fails(const char *yaml, int line, const char *want)
{
    struct err e = {0};
    struct scenario *s;
    char where[64];

    write_file("t.csv", NATIVE_HEADER "0,1,1,,\n");
    s = scenario_load(write_file("scenario.yaml", yaml), NULL, 0, &e);
    ck_assert_msg(s == NULL, "accepted:\n%s", yaml);
    snprintf(where, sizeof(where), "scenario.yaml:%d:", line);
    ck_assert_msg(strstr(e.msg, where) != NULL && strstr(e.msg, want) != NULL, "got \"%s\", want %s ... %s", e.msg,
                  where, want);
}

#define SC_HEAD                                                                                                        \
    "workload: {trace: t.csv}\n"                                                                                       \
    "service: {kind: deterministic, mean: 1s}\n"                                                                       \
    "cluster: {replicas: 0}\n"                                                                                         \
    "autoscaler:\n"                                                                                                    \
    "  keda:\n"

START_TEST(test_keda_scenario_errors)
{
    make_tmpdir();
    scenario_fails(SC_HEAD "    triggers:\n"
                           "    - type: cron\n"
                           "      metadata:\n"
                           "        timezone: UTC\n"
                           "        start: 0 25 * * *\n"
                           "        end: 0 20 * * *\n"
                           "        desiredReplicas: 2\n",
                   10, "start: cron '0 25 * * *': hour: 25 is out of range 0-23");
    scenario_fails(SC_HEAD "    triggers:\n"
                           "    - type: cron\n"
                           "      metadata:\n"
                           "        timezone: Europe/Atlantis\n"
                           "        start: 0 8 * * *\n"
                           "        end: 0 20 * * *\n"
                           "        desiredReplicas: 2\n",
                   9, "timezone: unknown time zone 'Europe/Atlantis'");
    scenario_fails(SC_HEAD "    triggers:\n"
                           "    - type: cron\n"
                           "      metadata: {timezone: UTC, start: 0 8 * * *, end: 0 8 * * *, desiredReplicas: 2}\n",
                   8, "start and end must not be the same");
    scenario_fails(SC_HEAD "    triggers:\n"
                           "    - type: kafka\n"
                           "      metadata: {topic: x}\n",
                   7, "type: unknown trigger type 'kafka'");
    scenario_fails(SC_HEAD "    triggers:\n"
                           "    - type: metric\n"
                           "      metadata: {metricName: queue_depth, targetValue: 1}\n",
                   8, "metricName: 'queue_depth' is not a metric the simulator exports");
    scenario_fails(SC_HEAD "    triggers:\n"
                           "    - type: metric\n"
                           "      metadata: {metricName: requests_running, targetValue: 0}\n",
                   8, "targetValue: must be positive");
    scenario_fails(SC_HEAD "    minReplicaCount: 1\n"
                           "    idleReplicaCount: 1\n"
                           "    triggers: [{type: metric, metadata: {metricName: requests_running, value: 4}}]\n",
                   7, "idleReplicaCount: must be less than minReplicaCount");
    scenario_fails(SC_HEAD "    clock_start: 2024-01-01\n"
                           "    triggers: [{type: metric, metadata: {metricName: requests_running, value: 4}}]\n",
                   6, "clock_start:");
    scenario_fails(SC_HEAD "    triggers: []\n", 6, "at least one trigger");
    scenario_fails(SC_HEAD "    triggers: [{type: metric, metadata: {metricName: requests_running, value: 4}}]\n"
                           "  hpa: {maxReplicas: 3}\n",
                   6, "give hpa or keda, not both");
    scenario_fails("workload: {trace: t.csv}\n"
                   "service: {kind: deterministic, mean: 1s}\n"
                   "cluster: {replicas: 0}\n",
                   3, "replicas: 0 only with autoscaler.keda");
    remove_tmpdir();
}
END_TEST

static Suite *suite_cron(void)
{
    Suite *s = suite_create("cron");
    TCase *tc = tcase_create("cron");

    tcase_add_test(tc, test_tz_rfc3339);
    tcase_add_test(tc, test_tz_offsets);
    tcase_add_test(tc, test_cron_parse_fields);
    tcase_add_test(tc, test_cron_parse_errors);
    tcase_add_test(tc, test_cron_next_months_and_leap_years);
    tcase_add_test(tc, test_cron_next_dst_paris);
    tcase_add_test(tc, test_cron_next_dst_new_york);
    tcase_add_test(tc, test_cron_window);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *suite_keda(void)
{
    Suite *s = suite_create("keda");
    TCase *tc = tcase_create("keda");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_keda_poll_rules);
    tcase_add_test(tc, test_keda_activation_and_cooldown);
    tcase_add_test(tc, test_keda_activation_threshold);
    tcase_add_test(tc, test_keda_cron_window);
    tcase_add_test(tc, test_keda_scenario_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite_cron());
    int failed;

    srunner_add_suite(sr, suite_keda());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
