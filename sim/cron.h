/* cron.h -- five-field cron schedules in a time zone, as KEDA's cron
 * scaler reads them (robfig/cron's standard parser).
 *
 * An expression is "minute hour day-of-month month day-of-week": each field
 * a comma-separated list of '*' (or '?'), N, N-M, with an optional /STEP
 * ("*\/15", "8-18/2", "5/10" = 5-max/10); months and weekdays also by
 * name (JAN..DEC, SUN..SAT, any case); weekday 0 or 7 is Sunday.  The
 * descriptors @yearly (@annually), @monthly, @weekly, @daily (@midnight)
 * and @hourly are accepted.  When both day fields are restricted (neither
 * is '*' or '?'), a day matches if either does; otherwise both must.
 *
 * A schedule fires at the instants whose local wall-clock time in its zone
 * matches, at second 0.  Local times skipped by a daylight-saving change
 * never fire; local times repeated by one fire at each occurrence. */
#ifndef LLM_CRON_H
#define LLM_CRON_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "sim/tz.h"

/* No further firing (same value as TZ_NEVER). */
#define CRON_NEVER INT64_MAX

struct cron {
    uint64_t minutes;   /* bit m: minute m (0..59) */
    uint32_t hours;     /* bit h: hour h (0..23) */
    uint32_t days;      /* bit d: day of month d (1..31) */
    uint16_t months;    /* bit m: month m (1..12) */
    uint8_t weekdays;   /* bit w: weekday w (0 = Sunday .. 6) */
    bool days_star;     /* the day-of-month field is '*' or '?' */
    bool weekdays_star; /* the day-of-week field is '*' or '?' */
};

/* Parse EXPR into OUT.  Returns 0, or -1 with e set (ERR_INPUT) to a message
 * that quotes the expression and names the field at fault, e.g. "cron '0 25
 * * * *': hour: 25 is out of range 0-23".  An expression that can never fire
 * ("0 0 30 2 *") is refused. */
int cron_parse(const char *expr, struct cron *out, struct err *e);

/* The first civil (wall-clock) time at or after CIVIL_S, in civil seconds
 * (see tz.h), that C matches; CRON_NEVER if none within nine years. */
int64_t cron_next_civil(const struct cron *c, int64_t civil_s);

/* The first instant strictly after T_S (Unix seconds) at which C fires in
 * zone Z; CRON_NEVER if none within nine years. */
int64_t cron_next(const struct cron *c, const struct tz *z, int64_t t_s);

/* Whether instant T_S lies in a START..END window, by KEDA's cron scaler
 * rule: active when the next END comes no later than the next START (both
 * strictly after T_S).  The window is thus [start, end): active from the
 * start's instant, inactive from the end's. */
bool cron_window_active(const struct cron *start, const struct cron *end, const struct tz *z, int64_t t_s);

#endif
