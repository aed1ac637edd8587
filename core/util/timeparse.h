/* Timestamps as data sources write them (config.md, "Timestamps from
 * sources"): ISO 8601 with `T` or a space, an optional fraction (truncated
 * to seconds), an optional `Z` or offset (`+05:30`, `+0530`, `+05`); a date
 * alone is midnight; integers are epoch seconds. Text without an offset is
 * wall-clock time in the given zone (NULL = UTC). Pure functions, safe from
 * any thread. */
#ifndef DTK_UTIL_TIMEPARSE_H
#define DTK_UTIL_TIMEPARSE_H

#include <stddef.h>
#include <stdint.h>

#include "util/tz.h"
#include "util/value.h"

/* Parses len bytes of text (surrounding whitespace ignored; an all-digit
 * text, optionally signed, is epoch seconds). tz is borrowed. Returns 0 and
 * *out in UTC seconds, or -1 with errstr quoting (a prefix of) the text. */
int dtk_timeparse_text(const char *s, size_t len, const dtk_tz *tz, int64_t *out, char *errstr,
		       size_t errstr_size);

/* Parses a cell: an integer is epoch seconds, a float epoch seconds rounded
 * down, a string as dtk_timeparse_text, a date its midnight in tz, a
 * datetime its own offset when it has one, else wall-clock time in tz. v and
 * tz are borrowed. Returns 0 and *out, or -1 with errstr (NULL and other
 * types are errors naming the type). */
int dtk_timeparse_value(const dtk_value *v, const dtk_tz *tz, int64_t *out, char *errstr,
			size_t errstr_size);

#endif
