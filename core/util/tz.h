/* IANA time zones read from the system's TZif files, without touching the
 * process-wide TZ (so threads can each use any zone).
 *
 * dtk_tz_load returns a zone owned by the caller (free with dtk_tz_free),
 * or NULL with errstr naming the zone. "UTC" and "Etc/UTC" need no file.
 * A loaded zone is immutable and may be shared between threads. */
#ifndef DTK_UTIL_TZ_H
#define DTK_UTIL_TZ_H

#include <stddef.h>
#include <stdint.h>

typedef struct dtk_tz dtk_tz;

dtk_tz *dtk_tz_load(const char *name, char *errstr, size_t errstr_size);
void dtk_tz_free(dtk_tz **tz);
const char *dtk_tz_name(const dtk_tz *tz);
/* Offset east of UTC, in seconds, at the UTC instant t. NULL tz = UTC. */
int32_t dtk_tz_offset(const dtk_tz *tz, int64_t t);
/* As dtk_tz_offset, plus the span [*from, *until) of UTC instants that
 * share this offset (INT64_MIN / INT64_MAX when unbounded), so a caller
 * walking sorted timestamps can skip most lookups. from and until may be
 * NULL. */
int32_t dtk_tz_offset_span(const dtk_tz *tz, int64_t t, int64_t *from, int64_t *until);
/* The UTC instant of a local wall-clock time (the earlier one when it is
 * ambiguous, the shifted one when it falls in a gap). */
int64_t dtk_tz_to_utc(const dtk_tz *tz, int64_t local);

/* Calendar fields of UTC instant t in zone tz. */
typedef struct dtk_calendar {
	int year, month, day_of_month, hour_of_day, minute_of_hour;
	int day_of_week; /* 0 = Monday */
	int is_weekend;
} dtk_calendar;
void dtk_tz_calendar(const dtk_tz *tz, int64_t t, dtk_calendar *out);

#endif
