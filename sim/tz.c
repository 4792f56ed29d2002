/* tz.c -- see tz.h.  The TZif layout is RFC 8536; the footer's rule is the
 * POSIX TZ string ("CET-1CEST,M3.5.0,M10.5.0/3"), of which the M (month,
 * week, weekday) form is supported, as the tz database writes it. */
#include "sim/tz.h"

#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TZ_MAX_FILE_BYTES (1 << 20)

/* One end of a daylight-saving period: day WEEKDAY (0 = Sunday) of week
 * WEEK (1..4, 5 = last) of MONTH, at TIME_S local time. */
struct tz_mrule {
    int month, week, weekday;
    int32_t time_s;
};

struct tz {
    char name[128];
    int64_t *trans;     /* transition instants, ascending */
    uint8_t *trans_type;
    size_t ntrans;
    int32_t *type_off;  /* UTC offset of each local time type */
    size_t ntypes;
    /* The footer rule for instants past the last transition. */
    int has_rule;
    int has_dst;
    int32_t std_off, dst_off;
    struct tz_mrule dst_start, dst_end;
};

/* ---- civil time ----------------------------------------------------------------- */

static int64_t tz_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Howard Hinnant's days_from_civil / civil_from_days (public domain
 * algorithms, rewritten). */
int64_t tz_days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = tz_floor_div(y, 400);
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    int64_t z = days + 719468, era = tz_floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;

    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int tz_days_in_month(int64_t y, int m)
{
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : dim[m - 1];
}

/* ---- the footer rule ------------------------------------------------------------ */

/* The instant an M rule fires in year Y, its local time read at offset OFF. */
static int64_t tz_rule_instant(const struct tz_mrule *r, int64_t y, int32_t off)
{
    int64_t first = tz_days_from_civil(y, r->month, 1);
    int wd1 = (int)(((first + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
    int day = 1 + (r->weekday - wd1 + 7) % 7 + (r->week - 1) * 7;

    while (day > tz_days_in_month(y, r->month))
        day -= 7;
    return (first + day - 1) * 86400 + r->time_s - off;
}

/* The rule's DST period of year Y: [*start, *end) (end < start in the
 * southern hemisphere). */
static void tz_rule_year(const struct tz *z, int64_t y, int64_t *start, int64_t *end)
{
    *start = tz_rule_instant(&z->dst_start, y, z->std_off);
    *end = tz_rule_instant(&z->dst_end, y, z->dst_off);
}

static int64_t tz_year_of(int64_t t_s)
{
    int64_t y;
    int m, d;

    tz_civil_from_days(tz_floor_div(t_s, 86400), &y, &m, &d);
    return y;
}

static int32_t tz_rule_offset(const struct tz *z, int64_t t_s)
{
    int64_t start, end;

    if (!z->has_dst)
        return z->std_off;
    tz_rule_year(z, tz_year_of(t_s + z->std_off), &start, &end);
    if (start < end)
        return t_s >= start && t_s < end ? z->dst_off : z->std_off;
    return t_s >= end && t_s < start ? z->std_off : z->dst_off;
}

static int64_t tz_rule_next(const struct tz *z, int64_t t_s)
{
    int64_t y = tz_year_of(t_s), best = TZ_NEVER, k;

    if (!z->has_dst)
        return TZ_NEVER;
    for (k = y - 1; k <= y + 1; k++) {
        int64_t start, end;
        tz_rule_year(z, k, &start, &end);
        if (start > t_s && start < best)
            best = start;
        if (end > t_s && end < best)
            best = end;
    }
    return best;
}

/* [+-]hh[:mm[:ss]] into seconds; -1 on a syntax error. */
static int tz_posix_time(const char **pp, int32_t *out_s)
{
    const char *p = *pp;
    int sign = 1;
    long h, mm = 0, ss = 0;
    char *end;

    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    if (!isdigit((unsigned char)*p))
        return -1;
    h = strtol(p, &end, 10);
    p = end;
    if (*p == ':') {
        mm = strtol(p + 1, &end, 10);
        p = end;
        if (*p == ':') {
            ss = strtol(p + 1, &end, 10);
            p = end;
        }
    }
    if (h > 167 || mm > 59 || ss > 59)
        return -1;
    *out_s = (int32_t)(sign * (h * 3600 + mm * 60 + ss));
    *pp = p;
    return 0;
}

static int tz_posix_name(const char **pp)
{
    const char *p = *pp;

    if (*p == '<') {
        const char *q = strchr(p, '>');
        if (q == NULL)
            return -1;
        *pp = q + 1;
        return 0;
    }
    while (isalpha((unsigned char)*p))
        p++;
    if (p - *pp < 3)
        return -1;
    *pp = p;
    return 0;
}

static int tz_posix_mrule(const char **pp, struct tz_mrule *r)
{
    const char *p = *pp;
    char *end;

    if (*p != 'M')
        return -1; /* the Jn and n forms: not written by the tz database */
    r->month = (int)strtol(p + 1, &end, 10);
    if (*end != '.')
        return -1;
    r->week = (int)strtol(end + 1, &end, 10);
    if (*end != '.')
        return -1;
    r->weekday = (int)strtol(end + 1, &end, 10);
    p = end;
    r->time_s = 7200;
    if (*p == '/' && (p++, tz_posix_time(&p, &r->time_s) < 0))
        return -1;
    if (r->month < 1 || r->month > 12 || r->week < 1 || r->week > 5 || r->weekday < 0 || r->weekday > 6)
        return -1;
    *pp = p;
    return 0;
}

/* Parse the footer TEXT into Z's rule; -1 if unsupported. */
static int tz_parse_posix(struct tz *z, const char *text)
{
    const char *p = text;
    int32_t off;

    if (*p == '\0')
        return 0; /* no rule: the last transition holds for ever */
    if (tz_posix_name(&p) < 0 || tz_posix_time(&p, &off) < 0)
        return -1;
    z->has_rule = 1;
    z->std_off = -off; /* POSIX offsets count west */
    z->dst_off = z->std_off;
    if (*p == '\0')
        return 0;
    if (tz_posix_name(&p) < 0)
        return -1;
    z->has_dst = 1;
    z->dst_off = z->std_off + 3600;
    if (*p != ',' && *p != '\0') {
        if (tz_posix_time(&p, &off) < 0)
            return -1;
        z->dst_off = -off;
    }
    if (*p == '\0') { /* no rule given: the US rule, as glibc assumes */
        z->dst_start = (struct tz_mrule){3, 2, 0, 7200};
        z->dst_end = (struct tz_mrule){11, 1, 0, 7200};
        return 0;
    }
    if (*p++ != ',' || tz_posix_mrule(&p, &z->dst_start) < 0 || *p++ != ',' ||
        tz_posix_mrule(&p, &z->dst_end) < 0 || *p != '\0')
        return -1;
    return 0;
}

/* ---- TZif ------------------------------------------------------------------------- */

static uint32_t tz_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t tz_be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)tz_be32(p) << 32 | tz_be32(p + 4));
}

/* Read the TZif data in BUF (LEN bytes) into Z; -1 with a reason in *why. */
static int tz_parse_tzif(struct tz *z, const unsigned char *buf, size_t len, const char **why)
{
    size_t off = 0, cnt[6], i, block, tsize = 4;
    const unsigned char *p;

    *why = "not a TZif file";
    if (len < 44 || memcmp(buf, "TZif", 4) != 0)
        return -1;
    for (;;) {
        for (i = 0; i < 6; i++)
            cnt[i] = tz_be32(buf + off + 20 + 4 * i);
        /* isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt */
        block = 44 + cnt[3] * tsize + cnt[3] + cnt[4] * 6 + cnt[5] + cnt[2] * (tsize + 4) + cnt[1] + cnt[0];
        *why = "truncated TZif file";
        if (off + block > len || cnt[4] == 0 || cnt[4] > 256)
            return -1;
        if (tsize == 4 && buf[4] >= '2' && off + block + 44 <= len &&
            memcmp(buf + off + block, "TZif", 4) == 0) {
            off += block; /* skip the 32-bit data: read the 64-bit block */
            tsize = 8;
            continue;
        }
        break;
    }
    *why = "leap-second zones (right/...) are not supported";
    if (cnt[2] != 0)
        return -1;
    *why = "out of memory";
    z->ntrans = cnt[3];
    z->ntypes = cnt[4];
    z->trans = calloc(z->ntrans + 1, sizeof(*z->trans));
    z->trans_type = calloc(z->ntrans + 1, 1);
    z->type_off = calloc(z->ntypes, sizeof(*z->type_off));
    if (z->trans == NULL || z->trans_type == NULL || z->type_off == NULL)
        return -1;
    p = buf + off + 44;
    for (i = 0; i < z->ntrans; i++, p += tsize)
        z->trans[i] = tsize == 8 ? tz_be64(p) : (int64_t)(int32_t)tz_be32(p);
    *why = "corrupt TZif file";
    for (i = 0; i < z->ntrans; i++, p++) {
        z->trans_type[i] = *p;
        if (*p >= z->ntypes || (i > 0 && z->trans[i] <= z->trans[i - 1]))
            return -1;
    }
    for (i = 0; i < z->ntypes; i++, p += 6)
        z->type_off[i] = (int32_t)tz_be32(p);
    /* The footer: "\nTZ\n" after the version 2+ data. */
    off += block;
    if (tsize == 8 && off < len && buf[off] == '\n') {
        const unsigned char *nl = memchr(buf + off + 1, '\n', len - off - 1);
        char footer[128];
        size_t n;
        if (nl == NULL || (n = (size_t)(nl - (buf + off + 1))) >= sizeof(footer))
            return -1;
        memcpy(footer, buf + off + 1, n);
        footer[n] = '\0';
        *why = "unsupported TZ rule in the TZif footer";
        if (tz_parse_posix(z, footer) < 0)
            return -1;
    }
    return 0;
}

struct tz *tz_load(const char *name, struct err *e)
{
    struct tz *z = NULL;
    const char *dir = getenv("TZDIR"), *why = NULL;
    char path[4096];
    unsigned char *buf = NULL;
    size_t len = 0;
    FILE *f = NULL;

    if (name == NULL || name[0] == '\0' || name[0] == '/' || strstr(name, "..") != NULL ||
        strlen(name) >= sizeof(z->name)) {
        err_set(e, ERR_INPUT, "unknown time zone '%s'", name ? name : "");
        return NULL;
    }
    z = calloc(1, sizeof(*z));
    if (z == NULL)
        goto nomem;
    snprintf(z->name, sizeof(z->name), "%s", name);
    if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0 || strcmp(name, "Z") == 0) {
        z->has_rule = 1;
        return z;
    }
    snprintf(path, sizeof(path), "%s/%s", dir != NULL && dir[0] != '\0' ? dir : "/usr/share/zoneinfo", name);
    f = fopen(path, "rb");
    if (f == NULL) {
        err_set(e, ERR_INPUT, "unknown time zone '%s' (no %s)", name, path);
        goto fail;
    }
    buf = malloc(TZ_MAX_FILE_BYTES);
    if (buf == NULL)
        goto nomem;
    len = fread(buf, 1, TZ_MAX_FILE_BYTES, f);
    if (ferror(f)) {
        err_sys(e, errno ? errno : EIO, "%s", path);
        goto fail;
    }
    if (tz_parse_tzif(z, buf, len, &why) < 0) {
        err_set(e, ERR_INPUT, "time zone '%s': %s: %s", name, path, why);
        goto fail;
    }
    fclose(f);
    free(buf);
    return z;
nomem:
    err_set(e, ERR_SYSTEM, "out of memory");
fail:
    if (f != NULL)
        fclose(f);
    free(buf);
    tz_free(z);
    return NULL;
}

void tz_free(struct tz *z)
{
    if (z == NULL)
        return;
    free(z->trans);
    free(z->trans_type);
    free(z->type_off);
    free(z);
}

const char *tz_name(const struct tz *z)
{
    return z->name;
}

/* Index of the last transition at or before T_S, or -1. */
static long tz_find(const struct tz *z, int64_t t_s)
{
    size_t lo = 0, hi = z->ntrans;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->trans[mid] <= t_s)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (long)lo - 1;
}

int32_t tz_offset_s(const struct tz *z, int64_t t_s)
{
    long i;

    if (z->ntrans == 0)
        return z->has_rule ? tz_rule_offset(z, t_s) : (z->ntypes ? z->type_off[0] : 0);
    i = tz_find(z, t_s);
    if (i < 0)
        return z->type_off[0]; /* before the first transition: type 0 (RFC 8536) */
    if ((size_t)i == z->ntrans - 1 && z->has_rule)
        return tz_rule_offset(z, t_s);
    return z->type_off[z->trans_type[i]];
}

int64_t tz_next_transition(const struct tz *z, int64_t t_s)
{
    long i = tz_find(z, t_s);

    if (z->ntrans > 0 && (size_t)(i + 1) < z->ntrans)
        return z->trans[i + 1];
    return z->has_rule ? tz_rule_next(z, t_s) : TZ_NEVER;
}

/* ---- RFC 3339 ------------------------------------------------------------------- */

/* N decimal digits at *P into *OUT; -1 if not digits. */
static int tz_digits(const char **p, int n, int *out)
{
    int v = 0, i;

    for (i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

int tz_parse_rfc3339(const char *text, int64_t *out_s, struct err *e)
{
    const char *p = text;
    int y, mo, d, h, mi, s, oh = 0, om = 0, sign = 0;

    if (text == NULL)
        return err_set(e, ERR_INPUT, "expected an RFC 3339 time");
    if (tz_digits(&p, 4, &y) < 0 || *p++ != '-' || tz_digits(&p, 2, &mo) < 0 || *p++ != '-' ||
        tz_digits(&p, 2, &d) < 0 || (*p != 'T' && *p != 't' && *p != ' ') || (p++, tz_digits(&p, 2, &h) < 0) ||
        *p++ != ':' || tz_digits(&p, 2, &mi) < 0 || *p++ != ':' || tz_digits(&p, 2, &s) < 0)
        return err_set(e, ERR_INPUT, "'%s': expected an RFC 3339 time like 2024-01-01T00:00:00Z", text);
    if (*p == '.')
        return err_set(e, ERR_INPUT, "'%s': fractional seconds are not supported", text);
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p++ == '-' ? -1 : 1;
        if (tz_digits(&p, 2, &oh) < 0 || *p++ != ':' || tz_digits(&p, 2, &om) < 0 || oh > 23 || om > 59)
            return err_set(e, ERR_INPUT, "'%s': bad UTC offset (expected Z or +HH:MM)", text);
    } else {
        return err_set(e, ERR_INPUT, "'%s': missing the UTC offset (Z or +HH:MM)", text);
    }
    if (*p != '\0')
        return err_set(e, ERR_INPUT, "'%s': unexpected text after the time", text);
    if (mo < 1 || mo > 12 || d < 1 || d > tz_days_in_month(y, mo) || h > 23 || mi > 59 || s > 59)
        return err_set(e, ERR_INPUT, "'%s': no such date or time", text);
    *out_s = tz_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - sign * (oh * 3600 + om * 60);
    return 0;
}
