/* Python's text behaviour for template values: str() and repr(), string
 * case and whitespace, datetime.strftime/isoformat, float()/int() parsing
 * and round(). Pure functions; the one shared object, the C.UTF-8 locale
 * used for case mapping, is created once and never changed. */
#include <ctype.h>
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wctype.h>

#include "template/tpl_internal.h"
#include "util/pyfmt.h"

size_t tpl_utf8_next(const char *s, size_t len, uint32_t *cp)
{
	const unsigned char *u = (const unsigned char *)s;
	unsigned char c = u[0];
	size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
				: (c & 0xF8) == 0xF0	      ? 4
							      : 0;
	if (n == 0 || n > len) {
		*cp = c;
		return 1;
	}
	uint32_t v = n == 1 ? c : n == 2 ? (c & 0x1Fu) : n == 3 ? (c & 0x0Fu) : (c & 0x07u);
	for (size_t i = 1; i < n; i++) {
		if ((u[i] & 0xC0) != 0x80) {
			*cp = c;
			return 1;
		}
		v = (v << 6) | (u[i] & 0x3Fu);
	}
	*cp = v;
	return n;
}

int tpl_utf8_put(dtk_buf *out, uint32_t cp)
{
	char b[4];
	size_t n;
	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xC0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xE0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		b[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		b[0] = (char)(0xF0 | (cp >> 18));
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		b[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	return dtk_buf_add(out, b, n);
}

size_t tpl_utf8_count(const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; n++) {
		uint32_t cp;
		i += tpl_utf8_next(s + i, len - i, &cp);
	}
	return n;
}

int tpl_py_isspace(uint32_t c)
{
	return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
	       c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
	       c == 0x202F || c == 0x205F || c == 0x3000;
}

/* str.isprintable() for one code point, for repr(). Covers the categories
 * Cc, Cf, Zs (but space), Zl, Zp, Cs and Co; unassigned code points other
 * than the noncharacters count as printable (a known approximation). */
static int py_isprintable(uint32_t c)
{
	if (c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0xAD)
		return 0;
	if (c < 0x600)
		return 1;
	if ((c >= 0x600 && c <= 0x605) || c == 0x61C || c == 0x6DD || c == 0x70F ||
	    c == 0x890 || c == 0x891 || c == 0x8E2 || c == 0x1680 || c == 0x180E ||
	    (c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F) ||
	    (c >= 0x205F && c <= 0x2064) || (c >= 0x2066 && c <= 0x206F) || c == 0x3000 ||
	    (c >= 0xD800 && c <= 0xF8FF) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFB) ||
	    (c & 0xFFFE) == 0xFFFE || (c >= 0xFDD0 && c <= 0xFDEF) || c == 0x110BD ||
	    c == 0x110CD || (c >= 0x13430 && c <= 0x1343F) || (c >= 0x1BCA0 && c <= 0x1BCA3) ||
	    (c >= 0x1D173 && c <= 0x1D17A) || c == 0xE0001 || (c >= 0xE0020 && c <= 0xE007F) ||
	    c >= 0xF0000)
		return 0;
	return 1;
}

int tpl_py_repr_str(dtk_buf *out, const char *s, size_t len, int ascii)
{
	int has_sq = memchr(s, '\'', len) != NULL;
	int has_dq = memchr(s, '"', len) != NULL;
	char q = has_sq && !has_dq ? '"' : '\'';
	dtk_buf_addc(out, q);
	for (size_t i = 0; i < len;) {
		uint32_t c;
		size_t k = tpl_utf8_next(s + i, len - i, &c);
		if (c == (uint32_t)q || c == '\\') {
			dtk_buf_addc(out, '\\');
			dtk_buf_addc(out, (char)c);
		} else if (c == '\t') {
			dtk_buf_adds(out, "\\t");
		} else if (c == '\n') {
			dtk_buf_adds(out, "\\n");
		} else if (c == '\r') {
			dtk_buf_adds(out, "\\r");
		} else if (c < 0x80 && c >= 0x20 && c != 0x7F) {
			dtk_buf_addc(out, (char)c);
		} else if (!ascii && c >= 0x80 && py_isprintable(c)) {
			dtk_buf_add(out, s + i, k);
		} else if (c < 0x100) {
			dtk_buf_printf(out, "\\x%02x", (unsigned)c);
		} else if (c < 0x10000) {
			dtk_buf_printf(out, "\\u%04x", (unsigned)c);
		} else {
			dtk_buf_printf(out, "\\U%08x", (unsigned)c);
		}
		i += k;
	}
	return dtk_buf_addc(out, q);
}

static void split_dt(const dtk_value *v, int *y, int *mo, int *d, int *h, int *mi, int *s,
		     int64_t *days_out)
{
	int64_t secs = v->u.dt.secs;
	int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
	int64_t rem = secs - days * 86400;
	dtk_pyfmt_civil(days, y, mo, d);
	*h = (int)(rem / 3600);
	*mi = (int)(rem / 60 % 60);
	*s = (int)(rem % 60);
	if (days_out)
		*days_out = days;
}

/* "+HH:MM" (Python's utcoffset in str/isoformat), with sep ":" or "". */
static int put_offset(dtk_buf *out, int tz_min, const char *sep)
{
	int neg = tz_min < 0;
	int m = neg ? -tz_min : tz_min;
	return dtk_buf_printf(out, "%c%02d%s%02d", neg ? '-' : '+', m / 60, sep, m % 60);
}

int tpl_py_isoformat(dtk_buf *out, const dtk_value *v, const char *sep, size_t seplen)
{
	char tmp[64];
	if (v->type == DTK_V_DATE) {
		dtk_pyfmt_datetime(v->u.dt.secs, 0, 'T', tmp, sizeof(tmp));
		return dtk_buf_add(out, tmp, 10);
	}
	dtk_pyfmt_datetime(v->u.dt.secs, v->u.dt.usec, 'T', tmp, sizeof(tmp));
	dtk_buf_add(out, tmp, 10);
	dtk_buf_add(out, sep, seplen);
	dtk_buf_adds(out, tmp + 11);
	if (v->u.dt.has_tz)
		put_offset(out, v->u.dt.tz_min, ":");
	return out->failed ? -1 : 0;
}

static int repr_datetime(dtk_buf *out, const dtk_value *v)
{
	int y, mo, d, h, mi, s;
	split_dt(v, &y, &mo, &d, &h, &mi, &s, NULL);
	if (v->type == DTK_V_DATE)
		return dtk_buf_printf(out, "datetime.date(%d, %d, %d)", y, mo, d);
	dtk_buf_printf(out, "datetime.datetime(%d, %d, %d, %d, %d", y, mo, d, h, mi);
	if (v->u.dt.usec)
		dtk_buf_printf(out, ", %d, %d", s, (int)v->u.dt.usec);
	else if (s)
		dtk_buf_printf(out, ", %d", s);
	if (v->u.dt.has_tz) {
		int off = v->u.dt.tz_min * 60;
		if (off == 0)
			dtk_buf_adds(out, ", tzinfo=datetime.timezone.utc");
		else if (off > 0)
			dtk_buf_printf(out,
				       ", tzinfo=datetime.timezone(datetime.timedelta(seconds=%d))",
				       off);
		else
			dtk_buf_printf(out,
				       ", tzinfo=datetime.timezone(datetime.timedelta(days=-1, "
				       "seconds=%d))",
				       86400 + off);
	}
	return dtk_buf_addc(out, ')');
}

static int str_or_repr(dtk_buf *out, const dtk_value *v, int repr)
{
	char tmp[64];
	switch (v->type) {
	case DTK_V_NULL:
		return dtk_buf_adds(out, "None");
	case DTK_V_BOOL:
		return dtk_buf_adds(out, v->u.b ? "True" : "False");
	case DTK_V_INT:
		return dtk_buf_printf(out, "%lld", (long long)v->u.i);
	case DTK_V_FLOAT:
		dtk_pyfmt_float(v->u.f, tmp, sizeof(tmp));
		return dtk_buf_adds(out, tmp);
	case DTK_V_STR:
		if (repr)
			return tpl_py_repr_str(out, v->u.str.s, v->u.str.len, 0);
		return dtk_buf_add(out, v->u.str.s, v->u.str.len);
	case DTK_V_LIST:
		dtk_buf_addc(out, '[');
		for (size_t i = 0; i < v->u.list.n && !out->failed; i++) {
			if (i)
				dtk_buf_adds(out, ", ");
			str_or_repr(out, v->u.list.items[i], 1);
		}
		return dtk_buf_addc(out, ']');
	case DTK_V_MAP:
		dtk_buf_addc(out, '{');
		for (size_t i = 0; i < v->u.map.n && !out->failed; i++) {
			if (i)
				dtk_buf_adds(out, ", ");
			str_or_repr(out, v->u.map.items[i].key, 1);
			dtk_buf_adds(out, ": ");
			str_or_repr(out, v->u.map.items[i].val, 1);
		}
		return dtk_buf_addc(out, '}');
	case DTK_V_DATE:
	case DTK_V_DATETIME:
		if (repr)
			return repr_datetime(out, v);
		return tpl_py_isoformat(out, v, " ", 1);
	}
	return -1;
}

int tpl_py_str(dtk_buf *out, const dtk_value *v)
{
	return str_or_repr(out, v, 0);
}

int tpl_py_repr(dtk_buf *out, const dtk_value *v)
{
	return str_or_repr(out, v, 1);
}

static pthread_once_t locale_once = PTHREAD_ONCE_INIT;
static locale_t utf8_locale;

static void locale_init(void)
{
	utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

/* Full case mappings that are not one to one, as Python applies them;
 * NULL when the simple mapping applies. */
static const char *special_case(uint32_t c, int upper)
{
	if (upper) {
		switch (c) {
		case 0xDF:
			return "SS";
		case 0xFB00:
			return "FF";
		case 0xFB01:
			return "FI";
		case 0xFB02:
			return "FL";
		case 0xFB03:
			return "FFI";
		case 0xFB04:
			return "FFL";
		case 0x149:
			return "\xCA\xBCN";
		}
	} else if (c == 0x130) {
		return "i\xCC\x87";
	}
	return NULL;
}

int tpl_py_isident(uint32_t cp, int start)
{
	if (cp == '_' || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z'))
		return 1;
	if (cp >= '0' && cp <= '9')
		return !start;
	if (cp < 0x80)
		return 0;
	pthread_once(&locale_once, locale_init);
	if (!utf8_locale)
		return 0;
	return start ? iswalpha_l((wint_t)cp, utf8_locale) : iswalnum_l((wint_t)cp, utf8_locale);
}

int tpl_py_case(dtk_buf *out, const char *s, size_t len, int upper)
{
	pthread_once(&locale_once, locale_init);
	for (size_t i = 0; i < len;) {
		uint32_t c;
		size_t k = tpl_utf8_next(s + i, len - i, &c);
		if (c < 0x80) {
			char ch = s[i];
			if (upper && ch >= 'a' && ch <= 'z')
				ch = (char)(ch - 32);
			else if (!upper && ch >= 'A' && ch <= 'Z')
				ch = (char)(ch + 32);
			dtk_buf_addc(out, ch);
		} else if (k == 1) {
			dtk_buf_add(out, s + i, 1);
		} else if (special_case(c, upper)) {
			dtk_buf_adds(out, special_case(c, upper));
		} else {
			uint32_t m = c;
			if (utf8_locale)
				m = (uint32_t)(upper ? towupper_l((wint_t)c, utf8_locale)
						     : towlower_l((wint_t)c, utf8_locale));
			tpl_utf8_put(out, m);
		}
		i += k;
	}
	return out->failed ? -1 : 0;
}

int tpl_py_strftime(dtk_buf *out, const dtk_value *v, const char *fmt, size_t fmtlen)
{
	/* Python replaces %f, %z and %Z itself, then hands the rest to the C
	 * library's strftime with a struct tm of the wall-clock fields. */
	dtk_buf f;
	dtk_buf_init(&f, TPL_MAX_OUTPUT);
	int rc = -1;
	char *res = NULL;
	for (size_t i = 0; i < fmtlen; i++) {
		char c = fmt[i];
		if (c != '%') {
			dtk_buf_addc(&f, c);
			continue;
		}
		if (i + 1 >= fmtlen) {
			dtk_buf_addc(&f, '%');
			break;
		}
		char k = fmt[++i];
		if (k == 'f') {
			dtk_buf_printf(&f, "%06d", v->type == DTK_V_DATETIME ? (int)v->u.dt.usec : 0);
		} else if (k == 'z') {
			if (v->type == DTK_V_DATETIME && v->u.dt.has_tz)
				put_offset(&f, v->u.dt.tz_min, "");
		} else if (k == 'Z') {
			if (v->type == DTK_V_DATETIME && v->u.dt.has_tz) {
				if (v->u.dt.tz_min == 0)
					dtk_buf_adds(&f, "UTC");
				else {
					dtk_buf_adds(&f, "UTC");
					put_offset(&f, v->u.dt.tz_min, ":");
				}
			}
		} else {
			dtk_buf_addc(&f, '%');
			dtk_buf_addc(&f, k);
		}
	}
	if (f.failed)
		goto out;
	/* a "%" produced by %Z/%z cannot occur; a literal "%" came in as "%%" */
	int y, mo, d, h, mi, s;
	int64_t days;
	split_dt(v, &y, &mo, &d, &h, &mi, &s, &days);
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	tm.tm_wday = (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday */
	tm.tm_yday = (int)(days - dtk_pyfmt_days(y, 1, 1));
	tm.tm_isdst = -1;
	const char *cf = dtk_buf_str(&f);
	size_t cflen = f.len;
	for (size_t cap = 1024;; cap *= 2) {
		free(res);
		res = malloc(cap);
		if (!res)
			goto out;
		size_t n = strftime(res, cap, cf, &tm);
		if (n > 0 || cap >= 256 * (cflen + 1) || cap >= TPL_MAX_OUTPUT) {
			rc = dtk_buf_add(out, res, n);
			goto out;
		}
	}
out:
	free(res);
	dtk_buf_free(&f);
	return rc;
}

/* Strips Python whitespace from both ends. */
static void strip_ws(const char **s, size_t *len)
{
	const char *p = *s;
	size_t n = *len;
	for (;;) {
		uint32_t c;
		if (!n)
			break;
		size_t k = tpl_utf8_next(p, n, &c);
		if (!tpl_py_isspace(c))
			break;
		p += k;
		n -= k;
	}
	size_t keep = 0;
	for (size_t i = 0; i < n;) {
		uint32_t c;
		size_t k = tpl_utf8_next(p + i, n - i, &c);
		i += k;
		if (!tpl_py_isspace(c))
			keep = i;
	}
	*s = p;
	*len = keep;
}

/* digits with single underscores between them; returns the end index or
 * start when none (underscore rules as in Python literals). */
static size_t scan_digits(const char *s, size_t i, size_t n, char *out, size_t *olen,
			  size_t osz)
{
	size_t start = i;
	while (i < n && s[i] >= '0' && s[i] <= '9') {
		if (*olen + 1 < osz)
			out[(*olen)++] = s[i];
		i++;
		if (i + 1 < n && s[i] == '_' && s[i + 1] >= '0' && s[i + 1] <= '9')
			i++;
	}
	return i == start ? start : i;
}

int tpl_py_parse_float(const char *s, size_t len, double *out)
{
	strip_ws(&s, &len);
	char buf[512];
	size_t bl = 0, i = 0;
	if (i < len && (s[i] == '+' || s[i] == '-'))
		buf[bl++] = s[i++];
	const char *rest = s + i;
	size_t rl = len - i;
	if ((rl == 3 && !strncasecmp(rest, "inf", 3)) ||
	    (rl == 8 && !strncasecmp(rest, "infinity", 8))) {
		*out = bl && buf[0] == '-' ? -INFINITY : INFINITY;
		return 0;
	}
	if (rl == 3 && !strncasecmp(rest, "nan", 3)) {
		*out = NAN;
		return 0;
	}
	size_t j = scan_digits(s, i, len, buf, &bl, sizeof(buf) - 8);
	int have = j != i;
	i = j;
	if (i < len && s[i] == '.') {
		buf[bl++] = '.';
		i++;
		j = scan_digits(s, i, len, buf, &bl, sizeof(buf) - 8);
		have |= j != i;
		i = j;
	}
	if (!have)
		return -1;
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		buf[bl++] = 'e';
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			buf[bl++] = s[i++];
		j = scan_digits(s, i, len, buf, &bl, sizeof(buf) - 2);
		if (j == i)
			return -1;
		i = j;
	}
	if (i != len || bl >= sizeof(buf) - 8)
		return -1;
	buf[bl] = '\0';
	*out = strtod(buf, NULL);
	return 0;
}

static int digit_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 10;
	return 99;
}

int tpl_py_parse_int(const char *s, size_t len, int base, int64_t *out)
{
	strip_ws(&s, &len);
	size_t i = 0;
	int neg = 0;
	if (i < len && (s[i] == '+' || s[i] == '-'))
		neg = s[i++] == '-';
	int prefixed = 0;
	if (i + 1 < len && s[i] == '0') {
		char k = (char)tolower((unsigned char)s[i + 1]);
		int pb = k == 'x' ? 16 : k == 'o' ? 8 : k == 'b' ? 2 : 0;
		if (pb && (base == 0 || base == pb)) {
			base = pb;
			i += 2;
			prefixed = 1;
		}
	}
	if (base == 0) {
		/* base 0: decimal, where a leading zero needs an all-zero number */
		base = 10;
		if (i < len && s[i] == '0') {
			for (size_t k = i; k < len; k++)
				if (s[k] != '0' && s[k] != '_')
					return -1;
		}
	}
	if (base < 2 || base > 36)
		return -1;
	uint64_t v = 0;
	int ndig = 0, ovf = 0;
	for (; i < len; i++) {
		if (s[i] == '_') {
			if ((ndig == 0 && !prefixed) || i + 1 >= len || s[i + 1] == '_')
				return -1;
			continue;
		}
		int d = digit_val(s[i]);
		if (d >= base)
			return -1;
		if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
			ovf = 1;
		v = v * (uint64_t)base + (uint64_t)d;
		ndig++;
	}
	if (!ndig)
		return -1;
	if (ovf || v > (uint64_t)INT64_MAX + (neg ? 1u : 0u))
		return -2;
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

double tpl_py_round(double x, int64_t nd)
{
	/* float.__round__: correctly rounded, ties to even on the exact binary
	 * value; glibc's printf is exact, so printing and reading back does
	 * the same. */
	if (!isfinite(x) || nd > 323)
		return x;
	if (nd < -308)
		return 0.0 * x;
	char buf[1400];
	if (nd >= 0) {
		snprintf(buf, sizeof(buf), "%.*f", (int)nd, x);
		return strtod(buf, NULL);
	}
	if (x == 0.0)
		return x;
	snprintf(buf, sizeof(buf), "%.40e", fabs(x));
	int e10 = (int)strtol(strchr(buf, 'e') + 1, NULL, 10);
	int64_t keep = (int64_t)e10 + 1 + nd; /* significant digits kept */
	if (keep > 0) {
		snprintf(buf, sizeof(buf), "%.*e", (int)(keep - 1), x);
		return strtod(buf, NULL);
	}
	if (keep == 0) {
		double unit = pow(10.0, (double)-nd);
		double half = unit / 2;
		if (fabs(x) > half)
			return copysign(unit, x);
	}
	return copysign(0.0, x);
}
