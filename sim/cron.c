/* cron.c -- see cron.h. */
#include "sim/cron.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Search this many days ahead before giving up (covers 29 February across
 * a skipped leap year, 2096 -> 2104). */
#define CRON_HORIZON_DAYS (366 * 9)

struct cron_field {
    const char *name;
    int min, max;
    const char *const *names; /* NULL or names for min..min+n */
};

static const char *const cron_month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                               "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", NULL};
static const char *const cron_weekday_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL};

static const struct cron_field cron_fields[5] = {
    {"minute", 0, 59, NULL},
    {"hour", 0, 23, NULL},
    {"day of month", 1, 31, NULL},
    {"month", 1, 12, cron_month_names},
    {"day of week", 0, 7, cron_weekday_names}, /* 7 is Sunday too */
};

/* A number or a name of field F at [S, S+LEN) into *out; -1 if neither. */
static int cron_value(const struct cron_field *f, const char *s, size_t len, int *out)
{
    size_t i;
    long v = 0;

    if (len == 0)
        return -1;
    if (isdigit((unsigned char)s[0])) {
        for (i = 0; i < len; i++) {
            if (!isdigit((unsigned char)s[i]) || v > 1000)
                return -1;
            v = v * 10 + (s[i] - '0');
        }
        *out = (int)v;
        return 0;
    }
    for (i = 0; f->names != NULL && f->names[i] != NULL; i++)
        if (len == 3 && strncasecmp(s, f->names[i], 3) == 0) {
            *out = f->min + (int)i;
            return 0;
        }
    return -1;
}

/* Parse one field TEXT (NUL-terminated, no spaces) of kind F into *bits;
 * *star when it is unrestricted.  -1 with e set. */
static int cron_parse_field(const char *expr, const struct cron_field *f, const char *text, uint64_t *bits,
                            bool *star, struct err *e)
{
    const char *item = text;

    *bits = 0;
    *star = false;
    for (;;) {
        size_t len = strcspn(item, ",");
        const char *slash = memchr(item, '/', len), *dash;
        size_t range_len = slash ? (size_t)(slash - item) : len;
        int lo, hi, step = 1, v;
        bool is_star = false;

        if (len == 0)
            return err_set(e, ERR_INPUT, "cron '%s': %s: empty list item in '%s'", expr, f->name, text);
        if (range_len == 1 && (item[0] == '*' || item[0] == '?')) {
            lo = f->min;
            hi = f->max == 7 ? 6 : f->max;
            is_star = true;
        } else {
            dash = memchr(item, '-', range_len);
            if (cron_value(f, item, dash ? (size_t)(dash - item) : range_len, &lo) < 0 ||
                (dash && cron_value(f, dash + 1, range_len - (size_t)(dash + 1 - item), &hi) < 0))
                return err_set(e, ERR_INPUT, "cron '%s': %s: '%.*s' is not a value, range or '*'", expr, f->name,
                               (int)len, item);
            if (!dash)
                hi = slash ? (f->max == 7 ? 6 : f->max) : lo; /* "N/step" is N-max/step */
            if (lo < f->min || lo > f->max || hi < f->min || hi > f->max)
                return err_set(e, ERR_INPUT, "cron '%s': %s: %.*s is out of range %d-%d", expr, f->name,
                               (int)range_len, item, f->min, f->max);
            if (lo > hi)
                return err_set(e, ERR_INPUT, "cron '%s': %s: range %.*s is backwards", expr, f->name, (int)range_len,
                               item);
        }
        if (slash) {
            if (cron_value(f, slash + 1, len - range_len - 1, &step) < 0 || !isdigit((unsigned char)slash[1]) ||
                step < 1)
                return err_set(e, ERR_INPUT, "cron '%s': %s: bad step in '%.*s'", expr, f->name, (int)len, item);
            if (step > 1)
                is_star = false;
        }
        for (v = lo; v <= hi; v += step)
            *bits |= 1ULL << (f->max == 7 && v == 7 ? 0 : v);
        *star = *star || is_star;
        if (item[len] == '\0')
            return 0;
        item += len + 1;
    }
}

int cron_parse(const char *expr, struct cron *out, struct err *e)
{
    static const struct {
        const char *name, *expr;
    } descriptors[] = {
        {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"},
    };
    char buf[256], *fields[5], *p;
    uint64_t bits[5];
    bool star[5];
    int n = 0, i;
    size_t k;

    if (expr == NULL)
        return err_set(e, ERR_INPUT, "cron: missing expression");
    memset(out, 0, sizeof(*out));
    if (strlen(expr) >= sizeof(buf))
        return err_set(e, ERR_INPUT, "cron '%.40s...': too long", expr);
    snprintf(buf, sizeof(buf), "%s", expr);
    p = buf + strspn(buf, " \t");
    if (p[0] == '@') {
        char *end = p + strcspn(p, " \t");
        bool trailing = end[strspn(end, " \t")] != '\0';
        *end = '\0';
        for (k = 0; k < sizeof(descriptors) / sizeof(descriptors[0]); k++)
            if (strcasecmp(p, descriptors[k].name) == 0)
                break;
        if (k == sizeof(descriptors) / sizeof(descriptors[0]))
            return err_set(e, ERR_INPUT, "cron '%s': unknown descriptor (@yearly, @monthly, @weekly, @daily, "
                                         "@hourly; @every is not supported)", expr);
        if (trailing)
            return err_set(e, ERR_INPUT, "cron '%s': nothing may follow a descriptor", expr);
        snprintf(buf, sizeof(buf), "%s", descriptors[k].expr);
        p = buf;
    }
    while (*p != '\0') {
        char *end = p + strcspn(p, " \t");
        if (n == 5)
            return err_set(e, ERR_INPUT, "cron '%s': expected 5 fields (minute hour day-of-month month "
                                         "day-of-week), got more", expr);
        fields[n++] = p;
        p = end + strspn(end, " \t");
        *end = '\0';
    }
    if (n != 5)
        return err_set(e, ERR_INPUT, "cron '%s': expected 5 fields (minute hour day-of-month month day-of-week), "
                                     "got %d", expr, n);
    for (i = 0; i < 5; i++)
        if (cron_parse_field(expr, &cron_fields[i], fields[i], &bits[i], &star[i], e) < 0)
            return -1;
    out->minutes = bits[0];
    out->hours = (uint32_t)bits[1];
    out->days = (uint32_t)bits[2];
    out->months = (uint16_t)bits[3];
    out->weekdays = (uint8_t)bits[4];
    out->days_star = star[2];
    out->weekdays_star = star[4];
    if (cron_next_civil(out, 0) == CRON_NEVER)
        return err_set(e, ERR_INPUT, "cron '%s': never fires (no such day)", expr);
    return 0;
}

/* Whether day DAYS (since 1970-01-01), day-of-month DOM, matches C. */
static bool cron_day_matches(const struct cron *c, int64_t days, int dom)
{
    int wd = (int)(((days + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
    bool dom_ok = (c->days >> dom) & 1, wd_ok = (c->weekdays >> wd) & 1;

    if (c->days_star || c->weekdays_star)
        return dom_ok && wd_ok;
    return dom_ok || wd_ok;
}

int64_t cron_next_civil(const struct cron *c, int64_t civil_s)
{
    int64_t minute = civil_s >= 0 ? (civil_s + 59) / 60 : -((-civil_s) / 60);
    int64_t days = minute >= 0 ? minute / 1440 : -((-minute + 1439) / 1440);
    int64_t limit = days + CRON_HORIZON_DAYS, y;
    int rest = (int)(minute - days * 1440), h = rest / 60, mi = rest % 60, m, d;

    tz_civil_from_days(days, &y, &m, &d);
    while (days <= limit) {
        if (!((c->months >> m) & 1)) {
            days += tz_days_in_month(y, m) - d + 1; /* the first of next month */
            tz_civil_from_days(days, &y, &m, &d);
            h = mi = 0;
        } else if (!cron_day_matches(c, days, d)) {
            tz_civil_from_days(++days, &y, &m, &d);
            h = mi = 0;
        } else if (!((c->hours >> h) & 1)) {
            mi = 0;
            if (++h == 24) {
                h = 0;
                tz_civil_from_days(++days, &y, &m, &d);
            }
        } else if (!((c->minutes >> mi) & 1)) {
            if (++mi == 60) {
                mi = 0;
                if (++h == 24) {
                    h = 0;
                    tz_civil_from_days(++days, &y, &m, &d);
                }
            }
        } else {
            return days * 86400 + h * 3600 + mi * 60;
        }
    }
    return CRON_NEVER;
}

int64_t cron_next(const struct cron *c, const struct tz *z, int64_t t_s)
{
    int64_t seg = t_s + 1;
    int i;

    /* Walk the zone's constant-offset segments: in each, the first matching
     * civil time maps to one instant; if that instant is past the segment's
     * end, the match belongs to a later segment (or to a skipped hour). */
    for (i = 0; i < 64; i++) {
        int32_t off = tz_offset_s(z, seg);
        int64_t end = tz_next_transition(z, seg), civil = cron_next_civil(c, seg + off), at;

        if (civil == CRON_NEVER)
            return CRON_NEVER;
        at = civil - off;
        if (end == TZ_NEVER || at < end)
            return at;
        seg = end;
    }
    return CRON_NEVER;
}

bool cron_window_active(const struct cron *start, const struct cron *end, const struct tz *z, int64_t t_s)
{
    int64_t next_start = cron_next(start, z, t_s), next_end = cron_next(end, z, t_s);

    return next_end != CRON_NEVER && next_end <= next_start;
}
