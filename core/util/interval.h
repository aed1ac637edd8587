/* Intervals and windows as config.md "Time" spells them: "N unit" with
 * second(s), minute(s), hour(s), day(s), week(s), or the short forms 30s,
 * 10min, 10m, 1h, 1d, 1w. Anything else is an error that quotes the value,
 * never a silent fallback. Pure functions, thread-safe. */
#ifndef DTK_UTIL_INTERVAL_H
#define DTK_UTIL_INTERVAL_H

#include <stddef.h>
#include <stdint.h>

#include "util/value.h"

/* Parses text (borrowed) into a positive number of seconds. Returns 0, or -1
 * with errstr quoting the text and listing the accepted forms. */
int dtk_interval_parse(const char *text, int64_t *seconds, char *errstr, size_t errstr_size);

/* A detector's window_size (borrowed): a string interval gives *seconds (and
 * *points = 0), a positive integer gives *points, the last N points (and
 * *seconds = 0). Returns 0, or -1 with errstr quoting the value. */
int dtk_window_parse(const dtk_value *v, int64_t *seconds, int64_t *points, char *errstr,
		     size_t errstr_size);

#endif
