/* tz.h -- time zones from the system's tz database, and civil-time
 * arithmetic, for schedules written in local wall-clock time (cron).
 *
 * tz_load() reads a TZif file (RFC 8536) from $TZDIR or /usr/share/zoneinfo:
 * its 64-bit transitions, and the POSIX TZ rule of its footer for instants
 * past the last transition.  "UTC", "Etc/UTC" and "Z" need no file.  A
 * loaded zone is immutable: lookups are pure functions of the instant, with
 * no use of the C library's global TZ state, so they are deterministic and
 * thread-safe.  Instants are integer seconds since 1970-01-01T00:00:00Z
 * (Unix time, no leap seconds); "civil seconds" count the same way on a
 * local wall clock (civil = instant + UTC offset). */
#ifndef LLM_TZ_H
#define LLM_TZ_H

#include <stdint.h>

#include "common/err.h"

/* No further transition / no such time. */
#define TZ_NEVER INT64_MAX

struct tz;

/* Load zone NAME ("Europe/Paris", "UTC").  NULL with e set (ERR_INPUT,
 * "unknown time zone 'NAME'", or what is wrong with its file). */
struct tz *tz_load(const char *name, struct err *e);
void tz_free(struct tz *z);
/* The name it was loaded by. */
const char *tz_name(const struct tz *z);

/* The UTC offset (seconds east of Greenwich) in force at instant T_S. */
int32_t tz_offset_s(const struct tz *z, int64_t t_s);
/* The first instant after T_S at which the offset may change (a
 * transition), or TZ_NEVER: the offset is constant on [t_s, result). */
int64_t tz_next_transition(const struct tz *z, int64_t t_s);

/* Parse an RFC 3339 date-time ("2024-05-06T08:00:00Z",
 * "2024-05-06T08:00:00+02:00"; whole seconds) into Unix seconds.  Returns 0,
 * or -1 with e set (ERR_INPUT, a message quoting TEXT, no location). */
int tz_parse_rfc3339(const char *text, int64_t *out_s, struct err *e);

/* Days since 1970-01-01 of the proleptic Gregorian date Y-M-D (M 1..12, D
 * 1..31), and back. */
int64_t tz_days_from_civil(int64_t y, int m, int d);
void tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
/* Days in month M of year Y. */
int tz_days_in_month(int64_t y, int m);

#endif
