#include "util/pyfmt.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Finds the shortest %.*e precision that round-trips, as Python's repr does
 * (David Gay's shortest mode gives the same digits). Two distinct decimals
 * of at most 15 significant digits never map to the same double (DBL_DIG),
 * so when the correctly rounded 15-digit form round-trips it is, with its
 * trailing zeros stripped, the shortest; otherwise 16 digits when the
 * (nearest) 16-digit form round-trips, else 17, which always does. */
static int shortest_digits(double f, char *digits, size_t dsz, int *exp10)
{
	if (f < 9007199254740992.0 && f == (double)(uint64_t)f && dsz > 17) {
		/* an integer below 2^53: its own digits are the shortest (any
		 * shorter decimal is another integer, and these are all exact),
		 * no printf and strtod round trip needed */
		char tmp[20];
		size_t k = sizeof(tmp);
		for (uint64_t u = (uint64_t)f; u; u /= 10)
			tmp[--k] = (char)('0' + u % 10);
		size_t n = sizeof(tmp) - k;
		*exp10 = (int)n - 1;
		while (n > 1 && tmp[k + n - 1] == '0')
			n--;
		memcpy(digits, tmp + k, n);
		digits[n] = '\0';
		return (int)n;
	}
	char tmp[40];
	int lo = 14;
	if (f < DBL_MIN) {
		/* subnormals carry fewer digits: bisect over 0..16 (a precision
		 * that round-trips makes every larger one round-trip too) */
		int hi = 16;
		lo = 0;
		while (lo < hi) {
			int mid = (lo + hi) / 2;
			snprintf(tmp, sizeof(tmp), "%.*e", mid, f);
			if (strtod(tmp, NULL) == f)
				hi = mid;
			else
				lo = mid + 1;
		}
		snprintf(tmp, sizeof(tmp), "%.*e", lo, f);
	} else {
		for (; lo < 16; lo++) {
			snprintf(tmp, sizeof(tmp), "%.*e", lo, f);
			if (strtod(tmp, NULL) == f)
				break;
		}
		if (lo == 16)
			snprintf(tmp, sizeof(tmp), "%.*e", lo, f);
	}
	/* tmp is like "-1.2345e+05": collect digits and exponent */
	char *e = strchr(tmp, 'e');
	*exp10 = (int)strtol(e + 1, NULL, 10);
	size_t n = 0;
	for (char *p = tmp; p < e && n + 1 < dsz; p++)
		if (*p >= '0' && *p <= '9')
			digits[n++] = *p;
	while (n > 1 && digits[n - 1] == '0')
		n--;
	digits[n] = '\0';
	return (int)n;
}

void dtk_pyfmt_float(double f, char *out, size_t outsz)
{
	if (isnan(f)) {
		snprintf(out, outsz, "nan");
		return;
	}
	if (isinf(f)) {
		snprintf(out, outsz, f < 0 ? "-inf" : "inf");
		return;
	}
	if (f == 0.0) {
		snprintf(out, outsz, signbit(f) ? "-0.0" : "0.0");
		return;
	}
	char digits[24];
	int exp10;
	int nd = shortest_digits(fabs(f), digits, sizeof(digits), &exp10);
	int decpt = exp10 + 1; /* digits d1d2... times 10^(decpt - nd) */
	char res[64];
	size_t k = 0;
	if (f < 0)
		res[k++] = '-';
	if (decpt > -4 && decpt <= 16) {
		if (decpt <= 0) {
			res[k++] = '0';
			res[k++] = '.';
			for (int i = 0; i < -decpt; i++)
				res[k++] = '0';
			for (int i = 0; i < nd; i++)
				res[k++] = digits[i];
		} else if (decpt >= nd) {
			for (int i = 0; i < nd; i++)
				res[k++] = digits[i];
			for (int i = nd; i < decpt; i++)
				res[k++] = '0';
			res[k++] = '.';
			res[k++] = '0';
		} else {
			for (int i = 0; i < nd; i++) {
				if (i == decpt)
					res[k++] = '.';
				res[k++] = digits[i];
			}
		}
		res[k] = '\0';
	} else {
		res[k++] = digits[0];
		if (nd > 1) {
			res[k++] = '.';
			for (int i = 1; i < nd; i++)
				res[k++] = digits[i];
		}
		res[k] = '\0';
		int e = decpt - 1;
		snprintf(res + k, sizeof(res) - k, "e%c%02d", e < 0 ? '-' : '+', abs(e));
	}
	size_t n = strlen(res);
	if (!outsz)
		return;
	if (n >= outsz)
		n = outsz - 1;
	memcpy(out, res, n);
	out[n] = '\0';
}

/* Howard Hinnant's days_from_civil / civil_from_days. */
int64_t dtk_pyfmt_days(int y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

void dtk_pyfmt_civil(int64_t z, int *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t yy = yoe + era * 400;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yy + (*m <= 2));
}

/* Writes v (0 <= v < 10^width) in exactly width digits; returns the end. */
static char *put_digits(char *p, int v, int width)
{
	for (int i = width - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return p + width;
}

void dtk_pyfmt_datetime(int64_t secs, int32_t usec, char sep, char *out, size_t outsz)
{
	int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
	int64_t rem = secs - days * 86400;
	int y, m, d;
	dtk_pyfmt_civil(days, &y, &m, &d);
	if (y >= 0 && y <= 9999 && usec >= 0 && usec < 1000000 && outsz > 26) {
		/* the common case without printf: results carry several of these */
		char *p = out;
		p = put_digits(p, y, 4);
		*p++ = '-';
		p = put_digits(p, m, 2);
		*p++ = '-';
		p = put_digits(p, d, 2);
		*p++ = sep;
		p = put_digits(p, (int)(rem / 3600), 2);
		*p++ = ':';
		p = put_digits(p, (int)(rem / 60 % 60), 2);
		*p++ = ':';
		p = put_digits(p, (int)(rem % 60), 2);
		if (usec) {
			*p++ = '.';
			p = put_digits(p, (int)usec, 6);
		}
		*p = '\0';
		return;
	}
	if (usec)
		snprintf(out, outsz, "%04d-%02d-%02d%c%02d:%02d:%02d.%06d", y, m, d, sep,
			 (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), (int)usec);
	else
		snprintf(out, outsz, "%04d-%02d-%02d%c%02d:%02d:%02d", y, m, d, sep,
			 (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60));
}
