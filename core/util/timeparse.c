/* Source timestamps to UTC seconds; see timeparse.h. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util/pyfmt.h"
#include "util/timeparse.h"

/* Error messages quote at most this much of the source text. */
#define QUOTE_MAX 64

static void quote_text(const char *s, size_t len, char *out, size_t outsz)
{
	size_t n = 0;
	for (size_t i = 0; i < len && i < QUOTE_MAX && n + 1 < outsz; i++) {
		unsigned char c = (unsigned char)s[i];
		out[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (len > QUOTE_MAX && n + 4 < outsz) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Reads exactly n digits at s[*i]; returns -1 when they are not there. */
static int read_digits(const char *s, size_t len, size_t *i, int n)
{
	int v = 0;
	if (*i + (size_t)n > len)
		return -1;
	for (int k = 0; k < n; k++) {
		char c = s[*i + (size_t)k];
		if (!is_digit(c))
			return -1;
		v = v * 10 + (c - '0');
	}
	*i += (size_t)n;
	return v;
}

static int days_in_month(int y, int m)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return mdays[m - 1];
}

static int parse_epoch(const char *s, size_t len, int64_t *out)
{
	size_t i = 0;
	int neg = 0;
	if (i < len && (s[i] == '+' || s[i] == '-')) {
		neg = s[i] == '-';
		i++;
	}
	if (i == len)
		return -1;
	int64_t v = 0;
	for (; i < len; i++) {
		if (!is_digit(s[i]))
			return -1;
		if (v > (INT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = neg ? -v : v;
	return 0;
}

/* Parses the offset at s[i..len): Z, +HH, +HHMM, +HH:MM. */
static int parse_offset(const char *s, size_t len, size_t i, int *offset_sec)
{
	if (i == len)
		return -1;
	if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == len) {
		*offset_sec = 0;
		return 0;
	}
	if (s[i] != '+' && s[i] != '-')
		return -1;
	int sign = s[i] == '-' ? -1 : 1;
	i++;
	int hh = read_digits(s, len, &i, 2), mm = 0;
	if (hh < 0)
		return -1;
	if (i < len) {
		if (s[i] == ':')
			i++;
		mm = read_digits(s, len, &i, 2);
		if (mm < 0)
			return -1;
	}
	if (i != len || hh > 23 || mm > 59)
		return -1;
	*offset_sec = sign * (hh * 3600 + mm * 60);
	return 0;
}

int dtk_timeparse_text(const char *s, size_t len, const dtk_tz *tz, int64_t *out, char *errstr,
		       size_t errstr_size)
{
	char quoted[QUOTE_MAX + 8];
	int rc = -1;
	const char *why = "expected ISO 8601 (YYYY-MM-DD[THH:MM[:SS[.f]]][Z|+HH:MM]) or epoch seconds";

	while (len > 0 && is_space(*s)) {
		s++;
		len--;
	}
	while (len > 0 && is_space(s[len - 1]))
		len--;

	if (parse_epoch(s, len, out) == 0) {
		rc = 0;
		goto out;
	}

	size_t i = 0;
	int y = read_digits(s, len, &i, 4);
	if (y < 1 || i >= len || s[i++] != '-')
		goto out;
	int mo = read_digits(s, len, &i, 2);
	if (mo < 1 || mo > 12 || i >= len || s[i++] != '-')
		goto out;
	int d = read_digits(s, len, &i, 2);
	if (d < 1 || d > days_in_month(y, mo)) {
		why = "no such date";
		goto out;
	}
	int hh = 0, mi = 0, ss = 0, has_offset = 0, offset = 0;
	if (i < len && (s[i] == 'T' || s[i] == 't' || s[i] == ' ')) {
		i++;
		hh = read_digits(s, len, &i, 2);
		if (hh < 0 || hh > 23 || i >= len || s[i++] != ':')
			goto out;
		mi = read_digits(s, len, &i, 2);
		if (mi < 0 || mi > 59)
			goto out;
		if (i < len && s[i] == ':') {
			i++;
			ss = read_digits(s, len, &i, 2);
			if (ss < 0 || ss > 59)
				goto out;
			if (i < len && (s[i] == '.' || s[i] == ',')) {
				i++;
				size_t start = i;
				while (i < len && is_digit(s[i]))
					i++;
				if (i == start)
					goto out;
			}
		}
		/* PostgreSQL's text form may put a space before the offset. */
		if (i < len && s[i] == ' ' && i + 1 < len)
			i++;
	}
	if (i < len) {
		if (parse_offset(s, len, i, &offset) != 0)
			goto out;
		has_offset = 1;
	}
	int64_t local = dtk_pyfmt_days(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss;
	*out = has_offset ? local - offset : (tz ? dtk_tz_to_utc(tz, local) : local);
	rc = 0;
out:
	if (rc != 0) {
		quote_text(s, len, quoted, sizeof(quoted));
		snprintf(errstr, errstr_size, "cannot parse timestamp '%s': %s", quoted, why);
	}
	return rc;
}

int dtk_timeparse_value(const dtk_value *v, const dtk_tz *tz, int64_t *out, char *errstr,
			size_t errstr_size)
{
	if (!v) {
		snprintf(errstr, errstr_size, "cannot parse timestamp: no value");
		return -1;
	}
	switch (v->type) {
	case DTK_V_INT:
		*out = v->u.i;
		return 0;
	case DTK_V_FLOAT:
		/* Beyond +-2^62 seconds no calendar makes sense. */
		if (!isfinite(v->u.f) || fabs(v->u.f) > 4.6e18) {
			snprintf(errstr, errstr_size, "cannot parse timestamp: %g is not a time",
				 v->u.f);
			return -1;
		}
		*out = (int64_t)floor(v->u.f);
		return 0;
	case DTK_V_STR:
		return dtk_timeparse_text(v->u.str.s, v->u.str.len, tz, out, errstr, errstr_size);
	case DTK_V_DATE:
		*out = tz ? dtk_tz_to_utc(tz, v->u.dt.secs) : v->u.dt.secs;
		return 0;
	case DTK_V_DATETIME:
		if (v->u.dt.has_tz)
			*out = v->u.dt.secs - (int64_t)v->u.dt.tz_min * 60;
		else
			*out = tz ? dtk_tz_to_utc(tz, v->u.dt.secs) : v->u.dt.secs;
		return 0;
	default:
		snprintf(errstr, errstr_size, "cannot parse timestamp: got %s",
			 dtk_value_type_name(v));
		return -1;
	}
}
