/* YAML loading with PyYAML's safe_load semantics on top of libyaml.
 *
 * Mirrors PyYAML's three stages so that its quirks carry over: libyaml's
 * parser produces events, compose() builds a node graph (anchors shared, as
 * PyYAML's Composer does), and construct() turns nodes into dtk_values the
 * way SafeConstructor does, including flatten_mapping() for merge keys. The
 * implicit resolvers below are hand-written equivalents of the YAML 1.1
 * regular expressions in PyYAML's resolver.py. */
#include "config/yaml.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "util/pyfmt.h"

/* Deeper documents are refused rather than risking the C stack. */
#define YAML_MAX_DEPTH 200
/* Values that aliases may add beyond the document's own nodes (billion
 * laughs protection). */
#define YAML_MAX_EXPANSION 1000000
/* Longest key text quoted in a duplicate-key warning. */
#define YAML_WARN_KEY_MAX 80

#define TAG_PREFIX "tag:yaml.org,2002:"
#define TAG_NULL TAG_PREFIX "null"
#define TAG_BOOL TAG_PREFIX "bool"
#define TAG_INT TAG_PREFIX "int"
#define TAG_FLOAT TAG_PREFIX "float"
#define TAG_STR TAG_PREFIX "str"
#define TAG_TIMESTAMP TAG_PREFIX "timestamp"
#define TAG_MERGE TAG_PREFIX "merge"
#define TAG_VALUE TAG_PREFIX "value"
#define TAG_SEQ TAG_PREFIX "seq"
#define TAG_MAP TAG_PREFIX "map"

typedef enum ykind { YN_SCALAR, YN_SEQ, YN_MAP } ykind;

typedef struct ynode ynode;
struct ynode {
	ykind kind;
	char *tag; /* resolved full tag, owned */
	char *val; /* scalar text, owned, NUL-terminated */
	size_t len;
	unsigned plain : 1;     /* an untagged plain scalar */
	unsigned anchored : 1;  /* has an anchor: constructed once, copied per use */
	unsigned visiting : 1;  /* being constructed: reaching it again is a cycle */
	unsigned flattened : 1; /* merge keys already folded in */
	unsigned warned : 1;    /* a duplicate-key warning was given for this key */
	unsigned line, col;
	ynode **items; /* sequence items, or mapping key, value, key, value... */
	size_t n, cap;
	size_t merged; /* leading items that came from merge keys */
	dtk_value *built; /* anchored nodes: the constructed value */
	size_t built_count;
	int built_height; /* container levels in built */
	ynode *all_next; /* every node, for freeing */
};

typedef struct yanchor {
	char *name;
	ynode *node;
} yanchor;

typedef struct yctx {
	const char *file;
	const char *text;
	size_t text_len;
	char *errstr;
	size_t errstr_size;
	int failed;
	int oom;
	dtk_value *warnings;
	ynode *all;
	yanchor *anchors; /* open-addressing hash table */
	size_t anchors_cap, anchors_n;
	size_t nodes; /* composed */
	size_t made;  /* constructed or copied values */
	size_t budget;
	yaml_parser_t parser;
} yctx;

static void yerr(yctx *c, unsigned line, unsigned col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void yerr(yctx *c, unsigned line, unsigned col, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	if (c->failed)
		return;
	c->failed = 1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->errstr && c->errstr_size)
		snprintf(c->errstr, c->errstr_size, "%s:%u:%u: %s", c->file, line, col, msg);
}

static void yerr_oom(yctx *c, unsigned line, unsigned col)
{
	c->oom = 1;
	yerr(c, line, col, "out of memory");
}

static const char *kind_name(ykind k)
{
	return k == YN_SCALAR ? "scalar" : k == YN_SEQ ? "sequence" : "mapping";
}

/* ---- implicit resolvers (PyYAML resolver.py, YAML 1.1) ---- */

static int is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static int span_eq(const char *s, size_t n, const char *lit)
{
	size_t l = strlen(lit);
	return n == l && memcmp(s, lit, l) == 0;
}

static int is_null(const char *s, size_t n)
{
	return n == 0 || span_eq(s, n, "~") || span_eq(s, n, "null") || span_eq(s, n, "Null") ||
	       span_eq(s, n, "NULL");
}

/* 1 true, 0 false, -1 not a YAML 1.1 boolean spelling. */
static int bool_value(const char *s, size_t n)
{
	static const char *const yes[] = {"yes", "Yes", "YES", "true", "True",
					   "TRUE", "on", "On", "ON"};
	static const char *const no[] = {"no",	  "No",	 "NO",	"false", "False",
					  "FALSE", "off", "Off", "OFF"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (span_eq(s, n, yes[i]))
			return 1;
		if (span_eq(s, n, no[i]))
			return 0;
	}
	return -1;
}

/* Consumes chars while they are in set; returns how many. */
static size_t skip_set(const char *s, size_t n, size_t i, const char *set)
{
	size_t start = i;
	while (i < n && s[i] != '\0' && strchr(set, s[i]))
		i++;
	return i - start;
}

#define DIGITS "0123456789"
#define DIGITS_ "0123456789_"

/* (:[0-5]?[0-9])+ starting at *i; greedy is exact here because a segment is
 * always followed by ':' , '.' or the end. */
static int sexagesimal_tail(const char *s, size_t n, size_t *i)
{
	int segs = 0;
	while (*i < n && s[*i] == ':') {
		size_t j = *i + 1;
		if (j + 1 < n && s[j] >= '0' && s[j] <= '5' && is_digit(s[j + 1]))
			j += 2;
		else if (j < n && is_digit(s[j]))
			j += 1;
		else
			return segs;
		*i = j;
		segs++;
	}
	return segs;
}

/* [eE][-+][0-9]+ or nothing. */
static int exponent_opt(const char *s, size_t n, size_t *i)
{
	if (*i < n && (s[*i] == 'e' || s[*i] == 'E')) {
		size_t j = *i + 1;
		if (j >= n || (s[j] != '-' && s[j] != '+'))
			return 0;
		j++;
		size_t d = skip_set(s, n, j, DIGITS);
		if (!d)
			return 0;
		*i = j + d;
	}
	return 1;
}

static int is_float(const char *s, size_t n)
{
	size_t i = 0;
	if (n == 0)
		return 0;
	if (s[0] == '.') {
		/* \.[0-9][0-9_]*([eE][-+][0-9]+)? | \.(inf|Inf|INF) | \.(nan|NaN|NAN) */
		if (span_eq(s, n, ".inf") || span_eq(s, n, ".Inf") || span_eq(s, n, ".INF") ||
		    span_eq(s, n, ".nan") || span_eq(s, n, ".NaN") || span_eq(s, n, ".NAN"))
			return 1;
		if (n < 2 || !is_digit(s[1]))
			return 0;
		i = 2 + skip_set(s, n, 2, DIGITS_);
		return exponent_opt(s, n, &i) && i == n;
	}
	if (s[0] == '-' || s[0] == '+') {
		i = 1;
		if (span_eq(s + 1, n - 1, ".inf") || span_eq(s + 1, n - 1, ".Inf") ||
		    span_eq(s + 1, n - 1, ".INF"))
			return 1;
	}
	if (i >= n || !is_digit(s[i]))
		return 0;
	i += 1 + skip_set(s, n, i + 1, DIGITS_);
	if (i < n && s[i] == '.') {
		/* [-+]?[0-9][0-9_]*\.[0-9_]*([eE][-+][0-9]+)? */
		i += 1 + skip_set(s, n, i + 1, DIGITS_);
		return exponent_opt(s, n, &i) && i == n;
	}
	/* [-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]* */
	if (!sexagesimal_tail(s, n, &i))
		return 0;
	if (i >= n || s[i] != '.')
		return 0;
	i += 1 + skip_set(s, n, i + 1, DIGITS_);
	return i == n;
}

static int is_int(const char *s, size_t n)
{
	size_t i = 0;
	if (n && (s[0] == '-' || s[0] == '+'))
		i = 1;
	if (i >= n || !is_digit(s[i]))
		return 0;
	const char *p = s + i;
	size_t m = n - i;
	if (m >= 2 && p[0] == '0' && p[1] == 'b')
		return m > 2 && skip_set(p, m, 2, "01_") == m - 2;
	if (m >= 2 && p[0] == '0' && p[1] == 'x')
		return m > 2 && skip_set(p, m, 2, "0123456789abcdefABCDEF_") == m - 2;
	if (p[0] == '0')
		return m == 1 || skip_set(p, m, 1, "01234567_") == m - 1;
	size_t j = 1 + skip_set(p, m, 1, DIGITS_);
	if (j == m)
		return 1;
	return sexagesimal_tail(p, m, &j) && j == m;
}

/* 1-2 digits (greedy) into *out. */
static int digits12(const char *s, size_t n, size_t *i, int *out)
{
	if (*i >= n || !is_digit(s[*i]))
		return 0;
	int v = s[(*i)++] - '0';
	if (*i < n && is_digit(s[*i]))
		v = v * 10 + (s[(*i)++] - '0');
	*out = v;
	return 1;
}

static int digitsk(const char *s, size_t n, size_t *i, int k, int *out)
{
	int v = 0;
	for (int j = 0; j < k; j++) {
		if (*i >= n || !is_digit(s[*i]))
			return 0;
		v = v * 10 + (s[(*i)++] - '0');
	}
	*out = v;
	return 1;
}

typedef struct yts {
	int year, month, day;
	int has_time;
	int hour, minute, second, usec;
	int has_tz, tz_min;
} yts;

/* SafeConstructor.timestamp_regexp; 1 on a match. Field ranges are checked
 * by the caller as Python's datetime does. */
static int ts_match(const char *s, size_t n, yts *t)
{
	size_t i = 0;
	memset(t, 0, sizeof(*t));
	if (!digitsk(s, n, &i, 4, &t->year) || i >= n || s[i++] != '-' ||
	    !digits12(s, n, &i, &t->month) || i >= n || s[i++] != '-' ||
	    !digits12(s, n, &i, &t->day))
		return 0;
	if (i == n)
		return 1;
	if (s[i] == 'T' || s[i] == 't')
		i++;
	else if (!skip_set(s, n, i, " \t"))
		return 0;
	else
		i += skip_set(s, n, i, " \t");
	t->has_time = 1;
	if (!digits12(s, n, &i, &t->hour) || i >= n || s[i++] != ':' ||
	    !digitsk(s, n, &i, 2, &t->minute) || i >= n || s[i++] != ':' ||
	    !digitsk(s, n, &i, 2, &t->second))
		return 0;
	if (i < n && s[i] == '.') {
		i++;
		size_t d = skip_set(s, n, i, DIGITS);
		int usec = 0;
		for (size_t k = 0; k < 6; k++)
			usec = usec * 10 + (k < d ? s[i + k] - '0' : 0);
		t->usec = usec;
		i += d;
	}
	if (i == n)
		return 1;
	i += skip_set(s, n, i, " \t");
	if (i < n && s[i] == 'Z') {
		t->has_tz = 1;
		i++;
	} else if (i < n && (s[i] == '-' || s[i] == '+')) {
		int neg = s[i++] == '-';
		int th, tm = 0;
		if (!digits12(s, n, &i, &th))
			return 0;
		if (i < n && s[i] == ':') {
			i++;
			if (!digitsk(s, n, &i, 2, &tm))
				return 0;
		}
		t->has_tz = 1;
		t->tz_min = (neg ? -1 : 1) * (th * 60 + tm);
	} else {
		return 0;
	}
	return i == n;
}

/* The implicit resolver's stricter form: a date alone needs two-digit month
 * and day. */
static int is_timestamp(const char *s, size_t n)
{
	yts t;
	if (!ts_match(s, n, &t))
		return 0;
	if (t.has_time)
		return 1;
	return n == 10;
}

/* The tag PyYAML's resolver gives a plain scalar. Resolver order per first
 * character is bool, float, int, merge, null, timestamp, value. */
static const char *resolve_tag(const char *s, size_t n)
{
	if (n == 0)
		return TAG_NULL;
	if (bool_value(s, n) >= 0)
		return TAG_BOOL;
	if (is_float(s, n))
		return TAG_FLOAT;
	if (is_int(s, n))
		return TAG_INT;
	if (span_eq(s, n, "<<"))
		return TAG_MERGE;
	if (is_null(s, n))
		return TAG_NULL;
	if (is_timestamp(s, n))
		return TAG_TIMESTAMP;
	if (span_eq(s, n, "="))
		return TAG_VALUE;
	return TAG_STR;
}

/* ---- scalar constructors (SafeConstructor) ---- */

static int is_pyspace(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

static void py_strip(const char **s, size_t *n)
{
	while (*n && is_pyspace(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && is_pyspace((*s)[*n - 1]))
		(*n)--;
}

/* Python's int(s, base) as a sign and a 64-bit magnitude: 0 ok, -1 invalid
 * literal, -2 out of range. */
static int py_int_mag(const char *s, size_t n, int base, int *negp, uint64_t *magp)
{
	int neg = 0;
	uint64_t mag = 0;
	py_strip(&s, &n);
	if (n && (s[0] == '-' || s[0] == '+')) {
		neg = s[0] == '-';
		s++;
		n--;
	}
	if (n >= 2 && s[0] == '0') {
		char p = (char)(s[1] | 0x20);
		if ((base == 2 && p == 'b') || (base == 8 && p == 'o') || (base == 16 && p == 'x')) {
			s += 2;
			n -= 2;
		}
	}
	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int d;
		char ch = s[i];
		if (is_digit(ch))
			d = ch - '0';
		else if (ch >= 'a' && ch <= 'z')
			d = ch - 'a' + 10;
		else if (ch >= 'A' && ch <= 'Z')
			d = ch - 'A' + 10;
		else
			return -1;
		if (d >= base)
			return -1;
		if (mag > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) {
			/* keep validating: an invalid digit later is the better error */
			for (size_t j = i; j < n; j++)
				if (!(is_digit(s[j]) || ((s[j] | 0x20) >= 'a' && (s[j] | 0x20) <= 'z')))
					return -1;
			return -2;
		}
		mag = mag * (uint64_t)base + (uint64_t)d;
	}
	*negp = neg;
	*magp = mag;
	return 0;
}

/* A sign and magnitude as int64: 0, or -2 when out of range. */
static int int_from_mag(int neg, uint64_t mag, int64_t *out)
{
	if (!neg && mag > (uint64_t)INT64_MAX)
		return -2;
	if (neg && mag > (uint64_t)INT64_MAX + 1)
		return -2;
	*out = neg ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
	return 0;
}

/* Python's int(s, base) restricted to 64 bits. */
static int py_int(const char *s, size_t n, int base, int64_t *out)
{
	int neg;
	uint64_t mag;
	int rc = py_int_mag(s, n, base, &neg, &mag);
	return rc ? rc : int_from_mag(neg, mag, out);
}

/* Python's float(s) for the decimal forms and inf/infinity/nan. */
static int py_float(const char *s, size_t n, double *out)
{
	char tmp[512];
	size_t i = 0;
	py_strip(&s, &n);
	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	for (size_t k = 0; k < n; k++)
		if (tmp[k] >= 'A' && tmp[k] <= 'Z')
			tmp[k] = (char)(tmp[k] | 0x20);
	if (tmp[0] == '-' || tmp[0] == '+')
		i = 1;
	const char *word = tmp + i;
	if (!strcmp(word, "inf") || !strcmp(word, "infinity")) {
		*out = tmp[0] == '-' ? -INFINITY : INFINITY;
		return 0;
	}
	if (!strcmp(word, "nan")) {
		*out = NAN;
		return 0;
	}
	size_t d1 = skip_set(tmp, n, i, DIGITS);
	i += d1;
	size_t d2 = 0;
	if (i < n && tmp[i] == '.') {
		i++;
		d2 = skip_set(tmp, n, i, DIGITS);
		i += d2;
	}
	if (d1 + d2 == 0)
		return -1;
	if (i < n && tmp[i] == 'e') {
		i++;
		if (i < n && (tmp[i] == '-' || tmp[i] == '+'))
			i++;
		size_t d3 = skip_set(tmp, n, i, DIGITS);
		if (!d3)
			return -1;
		i += d3;
	}
	if (i != n)
		return -1;
	errno = 0;
	char *end = NULL;
	double f = strtod(tmp, &end);
	if (end != tmp + n)
		return -1;
	*out = f; /* ERANGE: Python also gives inf or a denormal/0 here */
	return 0;
}

/* A copy of s without '_' (PyYAML's value.replace('_', '')), optionally
 * lower-cased. Owned by the caller; NULL when out of memory. */
static char *strip_underscores(const char *s, size_t n, int lower, size_t *outn)
{
	char *o = malloc(n + 1);
	size_t k = 0;
	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (ch == '_')
			continue;
		if (lower && ch >= 'A' && ch <= 'Z')
			ch = (char)(ch | 0x20);
		o[k++] = ch;
	}
	o[k] = '\0';
	*outn = k;
	return o;
}

static void quote_for_msg(const char *s, size_t n, char *out, size_t outsz)
{
	size_t k = 0;
	for (size_t i = 0; i < n && k + 4 < outsz; i++)
		out[k++] = (s[i] == '\0' || s[i] == '\n') ? ' ' : s[i];
	if (n && k + 4 >= outsz && outsz > 4) {
		memcpy(out + k, "...", 3);
		k += 3;
	}
	out[k < outsz ? k : outsz - 1] = '\0';
}

static dtk_value *construct_int(yctx *c, const ynode *nd)
{
	dtk_value *v = NULL;
	size_t n;
	char shown[64];
	char *s = strip_underscores(nd->val, nd->len, 0, &n);
	int64_t r = 0;
	int rc = 0, sign = 1;
	if (!s) {
		yerr_oom(c, nd->line, nd->col);
		goto out;
	}
	quote_for_msg(nd->val, nd->len, shown, sizeof(shown));
	char *p = s;
	if (n && p[0] == '-')
		sign = -1;
	if (n && (p[0] == '-' || p[0] == '+')) {
		p++;
		n--;
	}
	int base = 10, skip = 0;
	if (n >= 2 && p[0] == '0' && p[1] == 'b')
		base = 2, skip = 2;
	else if (n >= 2 && p[0] == '0' && p[1] == 'x')
		base = 16, skip = 2;
	else if (n && p[0] == '0')
		base = 8;
	if (n == 0) {
		rc = -1;
	} else if (span_eq(p, n, "0")) {
		r = 0;
	} else if (base != 10 || !memchr(p, ':', n)) {
		/* the sign applies to the magnitude, so INT64_MIN fits */
		int neg = 0;
		uint64_t mag = 0;
		rc = py_int_mag(p + skip, n - (size_t)skip, base, &neg, &mag);
		if (rc == 0)
			rc = int_from_mag(neg != (sign < 0), mag, &r);
		sign = 1;
	} else {
		/* base 60, least significant part first, as PyYAML sums it */
		int64_t mult = 1;
		int mult_overflow = 0;
		size_t end = n;
		r = 0;
		while (rc == 0) {
			size_t start = end;
			while (start > 0 && p[start - 1] != ':')
				start--;
			int64_t digit = 0, term = 0;
			rc = py_int(p + start, end - start, 10, &digit);
			if (rc)
				break;
			if (digit && (mult_overflow || __builtin_mul_overflow(digit, mult, &term) ||
				      __builtin_add_overflow(r, term, &r)))
				rc = -2;
			if (start == 0)
				break;
			end = start - 1;
			if (!mult_overflow && __builtin_mul_overflow(mult, (int64_t)60, &mult))
				mult_overflow = 1;
		}
	}
	if (rc == 0 && sign < 0) {
		if (r == INT64_MIN)
			rc = -2;
		else
			r = -r;
	}
	if (rc == -1) {
		yerr(c, nd->line, nd->col, "invalid integer '%s'", shown);
		goto out;
	}
	if (rc == -2) {
		yerr(c, nd->line, nd->col, "integer '%s' does not fit in 64 bits", shown);
		goto out;
	}
	v = dtk_value_int(r);
	if (!v)
		yerr_oom(c, nd->line, nd->col);
out:
	free(s);
	return v;
}

static dtk_value *construct_float(yctx *c, const ynode *nd)
{
	dtk_value *v = NULL;
	size_t n;
	char shown[64];
	char *s = strip_underscores(nd->val, nd->len, 1, &n);
	double f = 0.0;
	int rc = 0, sign = 1;
	if (!s) {
		yerr_oom(c, nd->line, nd->col);
		goto out;
	}
	quote_for_msg(nd->val, nd->len, shown, sizeof(shown));
	char *p = s;
	if (n && p[0] == '-')
		sign = -1;
	if (n && (p[0] == '-' || p[0] == '+')) {
		p++;
		n--;
	}
	if (n == 0) {
		rc = -1;
	} else if (span_eq(p, n, ".inf")) {
		f = INFINITY;
	} else if (span_eq(p, n, ".nan")) {
		f = NAN;
		sign = 1;
	} else if (memchr(p, ':', n)) {
		/* same order of float operations as PyYAML */
		double base = 1.0;
		size_t end = n;
		while (rc == 0) {
			size_t start = end;
			while (start > 0 && p[start - 1] != ':')
				start--;
			double digit = 0.0;
			rc = py_float(p + start, end - start, &digit);
			if (rc)
				break;
			f += digit * base;
			base *= 60.0;
			if (start == 0)
				break;
			end = start - 1;
		}
	} else {
		rc = py_float(p, n, &f);
	}
	if (rc) {
		yerr(c, nd->line, nd->col, "invalid float '%s'", shown);
		goto out;
	}
	v = dtk_value_float(sign < 0 ? -f : f);
	if (!v)
		yerr_oom(c, nd->line, nd->col);
out:
	free(s);
	return v;
}

static int days_in_month(int y, int m)
{
	static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return dm[m - 1];
}

static dtk_value *construct_timestamp(yctx *c, const ynode *nd)
{
	yts t;
	char shown[64];
	dtk_value *v = NULL;
	quote_for_msg(nd->val, nd->len, shown, sizeof(shown));
	if (!ts_match(nd->val, nd->len, &t)) {
		yerr(c, nd->line, nd->col, "invalid timestamp '%s'", shown);
		return NULL;
	}
	if (t.year < 1 || t.month < 1 || t.month > 12 || t.day < 1 ||
	    t.day > days_in_month(t.year, t.month)) {
		yerr(c, nd->line, nd->col, "day or month out of range in date '%s'", shown);
		return NULL;
	}
	if (t.hour > 23 || t.minute > 59 || t.second > 59) {
		yerr(c, nd->line, nd->col, "time out of range in '%s'", shown);
		return NULL;
	}
	if (t.tz_min <= -24 * 60 || t.tz_min >= 24 * 60) {
		yerr(c, nd->line, nd->col, "UTC offset must be under 24 hours in '%s'", shown);
		return NULL;
	}
	int64_t secs = dtk_pyfmt_days(t.year, t.month, t.day) * 86400;
	if (t.has_time)
		secs += (int64_t)t.hour * 3600 + t.minute * 60 + t.second;
	v = dtk_value_datetime(secs, t.has_time ? t.usec : 0);
	if (!v) {
		yerr_oom(c, nd->line, nd->col);
		return NULL;
	}
	if (!t.has_time) {
		v->type = DTK_V_DATE;
	} else if (t.has_tz) {
		v->u.dt.has_tz = 1;
		v->u.dt.tz_min = (int16_t)t.tz_min;
	}
	return v;
}

static dtk_value *construct_scalar(yctx *c, const ynode *nd)
{
	const char *tag = nd->tag;
	dtk_value *v = NULL;
	if (!strcmp(tag, TAG_STR)) {
		v = dtk_value_strn(nd->val, nd->len);
	} else if (!strcmp(tag, TAG_NULL)) {
		v = dtk_value_null();
	} else if (!strcmp(tag, TAG_BOOL)) {
		char low[8] = {0};
		size_t k = 0;
		for (; k < nd->len && k < sizeof(low) - 1; k++)
			low[k] = (char)(nd->val[k] >= 'A' && nd->val[k] <= 'Z' ? nd->val[k] | 0x20
									      : nd->val[k]);
		int b = nd->len < sizeof(low) ? bool_value(low, k) : -1;
		if (b < 0) {
			char shown[64];
			quote_for_msg(nd->val, nd->len, shown, sizeof(shown));
			yerr(c, nd->line, nd->col, "invalid boolean '%s'", shown);
			return NULL;
		}
		v = dtk_value_bool(b);
	} else if (!strcmp(tag, TAG_INT)) {
		return construct_int(c, nd);
	} else if (!strcmp(tag, TAG_FLOAT)) {
		return construct_float(c, nd);
	} else if (!strcmp(tag, TAG_TIMESTAMP)) {
		return construct_timestamp(c, nd);
	} else {
		return NULL; /* the caller reports unknown tags */
	}
	if (!v)
		yerr_oom(c, nd->line, nd->col);
	return v;
}

/* ---- composing: libyaml events into a node graph ---- */

static void parser_error(yctx *c)
{
	yaml_parser_t *p = &c->parser;
	const char *problem = p->problem ? p->problem : "cannot parse the document";
	if (p->error == YAML_MEMORY_ERROR) {
		yerr_oom(c, 1, 1);
		return;
	}
	if (p->error == YAML_READER_ERROR) {
		unsigned line = 1, col = 1;
		for (size_t i = 0; i < p->problem_offset && i < c->text_len; i++) {
			unsigned char ch = (unsigned char)c->text[i];
			if (ch == '\n') {
				line++;
				col = 1;
			} else if ((ch & 0xc0) != 0x80) {
				col++;
			}
		}
		if (p->problem_value != -1)
			yerr(c, line, col, "%s (#%X)", problem, (unsigned)p->problem_value);
		else
			yerr(c, line, col, "%s", problem);
		return;
	}
	unsigned line = (unsigned)p->problem_mark.line + 1;
	unsigned col = (unsigned)p->problem_mark.column + 1;
	if (p->context)
		yerr(c, line, col, "%s (%s at line %u, column %u)", problem, p->context,
		     (unsigned)p->context_mark.line + 1, (unsigned)p->context_mark.column + 1);
	else
		yerr(c, line, col, "%s", problem);
}

/* PyYAML's scanner, unlike libyaml's, never takes a tab as separation
 * space: a tab is only allowed inside a comment, a quoted scalar or a block
 * scalar's content. Rejecting the rest here keeps "a:<TAB>b" an error, as
 * safe_load makes it. Spans come from libyaml's own tokens; their marks count
 * characters, so the walk below counts characters too. */
typedef struct tspan {
	size_t start, end;
	int kind; /* 0 no tabs, 1 tabs allowed, 2 block scalar: allowed after its header */
} tspan;

static int check_tabs(yctx *c)
{
	yaml_parser_t p;
	yaml_token_t tok;
	tspan *spans = NULL;
	size_t nspans = 0, cap = 0, skip = 0;
	int rc = 0, done = 0;
	const unsigned char *t = (const unsigned char *)c->text;
	size_t n = c->text_len;

	if (!memchr(c->text, '\t', n))
		return 0;
	if (n >= 3 && t[0] == 0xef && t[1] == 0xbb && t[2] == 0xbf)
		skip = 3;
	else if (n >= 2 && ((t[0] == 0xfe && t[1] == 0xff) || (t[0] == 0xff && t[1] == 0xfe)))
		return 0; /* UTF-16: character positions are not byte-countable here */
	if (!yaml_parser_initialize(&p)) {
		yerr_oom(c, 1, 1);
		return -1;
	}
	yaml_parser_set_input_string(&p, t, n);
	while (!done) {
		if (!yaml_parser_scan(&p, &tok))
			goto out; /* the parse that follows reports the syntax error */
		done = tok.type == YAML_STREAM_END_TOKEN;
		if (nspans == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			tspan *ns = realloc(spans, ncap * sizeof(*ns));
			if (!ns) {
				yaml_token_delete(&tok);
				yerr_oom(c, 1, 1);
				rc = -1;
				goto out;
			}
			spans = ns;
			cap = ncap;
		}
		tspan *sp = &spans[nspans++];
		sp->start = tok.start_mark.index;
		sp->end = tok.end_mark.index;
		sp->kind = 0;
		if (tok.type == YAML_SCALAR_TOKEN) {
			yaml_scalar_style_t st = tok.data.scalar.style;
			if (st == YAML_SINGLE_QUOTED_SCALAR_STYLE || st == YAML_DOUBLE_QUOTED_SCALAR_STYLE)
				sp->kind = 1;
			else if (st == YAML_LITERAL_SCALAR_STYLE || st == YAML_FOLDED_SCALAR_STYLE)
				sp->kind = 2;
		}
		yaml_token_delete(&tok);
	}
	size_t ci = 0, si = 0;
	unsigned line = 1, col = 1;
	int in_comment = 0, past_header = 0;
	for (size_t i = skip; i < n; i++) {
		unsigned char ch = t[i];
		if ((ch & 0xc0) == 0x80)
			continue;
		while (si < nspans && spans[si].end <= ci)
			si++, past_header = 0;
		int in_tok = si < nspans && spans[si].start <= ci && ci < spans[si].end;
		int kind = in_tok ? spans[si].kind : -1;
		if (kind == 2 && past_header)
			kind = 1;
		if (ch == '\n' || ch == '\r') {
			in_comment = 0;
			if (kind == 2)
				past_header = 1;
		} else if (ch == '#' && kind != 1 && (!in_tok || kind == 2)) {
			in_comment = 1;
		} else if (ch == '\t' && kind != 1 && !in_comment) {
			yerr(c, line, col, "found character '\\t' that cannot start any token "
					   "(PyYAML accepts tabs only in comments and quoted or "
					   "block scalars)");
			rc = -1;
			goto out;
		}
		if (ch == '\n' || (ch == '\r' && !(i + 1 < n && t[i + 1] == '\n'))) {
			line++;
			col = 1;
		} else if (ch != '\r') {
			col++;
		}
		ci++;
	}
out:
	free(spans);
	yaml_parser_delete(&p);
	return rc;
}

static int next_event(yctx *c, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&c->parser, ev)) {
		parser_error(c);
		return -1;
	}
	return 0;
}

static uint64_t hash_name_n(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return h;
}

static uint64_t hash_name(const char *s)
{
	return hash_name_n(s, strlen(s));
}

static yanchor *anchor_slot(yctx *c, const char *name)
{
	if (!c->anchors_cap)
		return NULL;
	size_t mask = c->anchors_cap - 1;
	for (size_t i = hash_name(name) & mask;; i = (i + 1) & mask)
		if (!c->anchors[i].name || !strcmp(c->anchors[i].name, name))
			return &c->anchors[i];
}

static int anchor_add(yctx *c, const char *name, ynode *nd)
{
	if ((c->anchors_n + 1) * 2 > c->anchors_cap) {
		size_t cap = c->anchors_cap ? c->anchors_cap * 2 : 16;
		yanchor *old = c->anchors;
		size_t oldcap = c->anchors_cap;
		c->anchors = calloc(cap, sizeof(*c->anchors));
		if (!c->anchors) {
			c->anchors = old;
			return -1;
		}
		c->anchors_cap = cap;
		for (size_t i = 0; i < oldcap; i++)
			if (old[i].name)
				*anchor_slot(c, old[i].name) = old[i];
		free(old);
	}
	yanchor *slot = anchor_slot(c, name);
	slot->name = strdup(name);
	if (!slot->name)
		return -1;
	slot->node = nd;
	c->anchors_n++;
	return 0;
}

static ynode *node_new(yctx *c, ykind kind, const char *tag, const yaml_mark_t *mark)
{
	ynode *nd = calloc(1, sizeof(*nd));
	if (!nd)
		goto fail;
	nd->kind = kind;
	nd->line = (unsigned)mark->line + 1;
	nd->col = (unsigned)mark->column + 1;
	nd->all_next = c->all;
	c->all = nd;
	c->nodes++;
	nd->tag = strdup(tag);
	if (!nd->tag)
		goto fail;
	return nd;
fail:
	yerr_oom(c, (unsigned)mark->line + 1, (unsigned)mark->column + 1);
	return NULL;
}

static int node_push(ynode *nd, ynode *child)
{
	if (nd->n == nd->cap) {
		size_t cap = nd->cap ? nd->cap * 2 : 8;
		ynode **items = realloc(nd->items, cap * sizeof(*items));
		if (!items)
			return -1;
		nd->items = items;
		nd->cap = cap;
	}
	nd->items[nd->n++] = child;
	return 0;
}

/* Registers an anchor, refusing duplicates as PyYAML's Composer does. */
static int register_anchor(yctx *c, const yaml_char_t *anchor, ynode *nd)
{
	if (!anchor)
		return 0;
	yanchor *slot = anchor_slot(c, (const char *)anchor);
	if (slot && slot->name) {
		yerr(c, nd->line, nd->col,
		     "found duplicate anchor '%s'; first occurrence at line %u, column %u",
		     (const char *)anchor, slot->node->line, slot->node->col);
		return -1;
	}
	if (anchor_add(c, (const char *)anchor, nd) != 0) {
		yerr_oom(c, nd->line, nd->col);
		return -1;
	}
	nd->anchored = 1;
	return 0;
}

static ynode *compose(yctx *c, yaml_event_t *ev, int depth)
{
	ynode *nd = NULL;
	const yaml_mark_t *mark = &ev->start_mark;
	switch (ev->type) {
	case YAML_ALIAS_EVENT: {
		yanchor *slot = anchor_slot(c, (const char *)ev->data.alias.anchor);
		if (!slot || !slot->name) {
			yerr(c, (unsigned)mark->line + 1, (unsigned)mark->column + 1,
			     "found undefined alias '%s'", (const char *)ev->data.alias.anchor);
			return NULL;
		}
		return slot->node;
	}
	case YAML_SCALAR_EVENT: {
		const char *tag = (const char *)ev->data.scalar.tag;
		const char *val = (const char *)ev->data.scalar.value;
		size_t len = ev->data.scalar.length;
		int implicit = 0;
		if (!tag || !strcmp(tag, "!")) {
			implicit = ev->data.scalar.plain_implicit;
			tag = implicit ? resolve_tag(val, len) : TAG_STR;
		}
		nd = node_new(c, YN_SCALAR, tag, mark);
		if (!nd)
			return NULL;
		nd->plain = implicit && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		nd->val = malloc(len + 1);
		if (!nd->val) {
			yerr_oom(c, nd->line, nd->col);
			return NULL;
		}
		memcpy(nd->val, val, len);
		nd->val[len] = '\0';
		nd->len = len;
		if (register_anchor(c, ev->data.scalar.anchor, nd) != 0)
			return NULL;
		return nd;
	}
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT: {
		int is_seq = ev->type == YAML_SEQUENCE_START_EVENT;
		const char *tag = (const char *)(is_seq ? ev->data.sequence_start.tag
							: ev->data.mapping_start.tag);
		const yaml_char_t *anchor =
			is_seq ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor;
		if (depth >= YAML_MAX_DEPTH) {
			yerr(c, (unsigned)mark->line + 1, (unsigned)mark->column + 1,
			     "nesting deeper than %d levels", YAML_MAX_DEPTH);
			return NULL;
		}
		if (!tag || !strcmp(tag, "!"))
			tag = is_seq ? TAG_SEQ : TAG_MAP;
		nd = node_new(c, is_seq ? YN_SEQ : YN_MAP, tag, mark);
		if (!nd || register_anchor(c, anchor, nd) != 0)
			return NULL;
		for (;;) {
			yaml_event_t child;
			if (next_event(c, &child) != 0)
				return NULL;
			if (child.type == YAML_SEQUENCE_END_EVENT ||
			    child.type == YAML_MAPPING_END_EVENT) {
				yaml_event_delete(&child);
				return nd;
			}
			ynode *sub = compose(c, &child, depth + 1);
			yaml_event_delete(&child);
			if (!sub)
				return NULL;
			if (node_push(nd, sub) != 0) {
				yerr_oom(c, nd->line, nd->col);
				return NULL;
			}
		}
	}
	default:
		yerr(c, (unsigned)mark->line + 1, (unsigned)mark->column + 1,
		     "unexpected YAML event %d", (int)ev->type);
		return NULL;
	}
}

/* ---- constructing: nodes into values ---- */

static size_t value_count(const dtk_value *v)
{
	size_t n = 1;
	if (v->type == DTK_V_LIST)
		for (size_t i = 0; i < v->u.list.n; i++)
			n += value_count(v->u.list.items[i]);
	else if (v->type == DTK_V_MAP)
		for (size_t i = 0; i < v->u.map.n; i++)
			n += value_count(v->u.map.items[i].key) +
			     value_count(v->u.map.items[i].val);
	return n;
}

static int value_height(const dtk_value *v)
{
	int h = 0;
	if (v->type == DTK_V_LIST) {
		for (size_t i = 0; i < v->u.list.n; i++) {
			int sub = value_height(v->u.list.items[i]);
			h = sub > h ? sub : h;
		}
		return h + 1;
	}
	if (v->type == DTK_V_MAP) {
		for (size_t i = 0; i < v->u.map.n; i++) {
			int sub = value_height(v->u.map.items[i].val);
			h = sub > h ? sub : h;
		}
		return h + 1;
	}
	return 0;
}

static int spend(yctx *c, const ynode *nd, size_t n)
{
	c->made += n;
	if (c->made > c->budget) {
		yerr(c, nd->line, nd->col,
		     "aliases expand the document beyond %d extra values (a billion laughs?)",
		     YAML_MAX_EXPANSION);
		return -1;
	}
	return 0;
}

/* Python dict key equality for the hashable values YAML produces: 1, 1.0
 * and True are one key; aware datetimes compare as instants; PyYAML's .nan
 * is a single object, so NaN keys collide. */
static int key_equal(const dtk_value *a, const dtk_value *b)
{
	if (a->type == DTK_V_FLOAT && b->type == DTK_V_FLOAT && isnan(a->u.f) && isnan(b->u.f))
		return 1;
	return dtk_value_equal(a, b);
}

static dtk_value *construct(yctx *c, ynode *nd, int depth);

/* SafeConstructor.flatten_mapping, step for step (including its in-place
 * edits), so merge precedence and key order match PyYAML: merged pairs go
 * first, later lists entries first, and explicit keys override them. */
static int flatten(yctx *c, ynode *nd, int depth)
{
	ynode **merge = NULL;
	size_t nm = 0, capm = 0;
	size_t index = 0;
	int rc = -1;
	if (nd->flattened)
		return 0;
	if (depth >= YAML_MAX_DEPTH) {
		yerr(c, nd->line, nd->col, "merge keys nest deeper than %d levels",
		     YAML_MAX_DEPTH);
		return -1;
	}
	while (2 * index < nd->n) {
		ynode *key = nd->items[2 * index];
		ynode *val = nd->items[2 * index + 1];
		if (!strcmp(key->tag, TAG_MERGE)) {
			memmove(&nd->items[2 * index], &nd->items[2 * index + 2],
				(nd->n - 2 * index - 2) * sizeof(ynode *));
			nd->n -= 2;
			ynode **srcs = NULL;
			size_t nsrc = 0;
			if (val->kind == YN_MAP) {
				if (flatten(c, val, depth + 1) != 0)
					goto out;
				srcs = &val;
				nsrc = 1;
			} else if (val->kind == YN_SEQ) {
				for (size_t i = 0; i < val->n; i++) {
					ynode *sub = val->items[i];
					if (sub->kind != YN_MAP) {
						yerr(c, sub->line, sub->col,
						     "expected a mapping for merging, but found %s "
						     "(while constructing the mapping at line %u, "
						     "column %u)",
						     kind_name(sub->kind), nd->line, nd->col);
						goto out;
					}
					if (flatten(c, sub, depth + 1) != 0)
						goto out;
				}
				srcs = val->items;
				nsrc = val->n;
			} else {
				yerr(c, val->line, val->col,
				     "expected a mapping or list of mappings for merging, but found "
				     "%s (while constructing the mapping at line %u, column %u)",
				     kind_name(val->kind), nd->line, nd->col);
				goto out;
			}
			/* PyYAML reverses the list: later mappings go in first */
			for (size_t s = nsrc; s-- > 0;) {
				ynode *src = srcs[s];
				if (!src->n)
					continue;
				if (nm + src->n > capm) {
					size_t cap = (nm + src->n) * 2;
					ynode **m = realloc(merge, cap * sizeof(*m));
					if (!m) {
						yerr_oom(c, nd->line, nd->col);
						goto out;
					}
					merge = m;
					capm = cap;
				}
				memcpy(merge + nm, src->items, src->n * sizeof(ynode *));
				nm += src->n;
			}
		} else if (!strcmp(key->tag, TAG_VALUE)) {
			char *tag = strdup(TAG_STR);
			if (!tag) {
				yerr_oom(c, key->line, key->col);
				goto out;
			}
			free(key->tag);
			key->tag = tag;
			index++;
		} else {
			index++;
		}
	}
	if (nm) {
		ynode **items = realloc(merge, (nm + nd->n + 1) * sizeof(*items));
		if (!items) {
			yerr_oom(c, nd->line, nd->col);
			goto out;
		}
		merge = NULL;
		if (nd->n)
			memcpy(items + nm, nd->items, nd->n * sizeof(ynode *));
		free(nd->items);
		nd->items = items;
		nd->n += nm;
		nd->cap = nd->n + 1;
		nd->merged = nm;
	}
	nd->flattened = 1;
	rc = 0;
out:
	free(merge);
	return rc;
}

static void warn_duplicate(yctx *c, ynode *key)
{
	char shown[YAML_WARN_KEY_MAX + 4];
	char msg[YAML_WARN_KEY_MAX + 64];
	/* merged pairs construct their nodes again: warn once per source key */
	if (!c->warnings || key->warned)
		return;
	key->warned = 1;
	if (key->kind == YN_SCALAR)
		quote_for_msg(key->val, key->len, shown, sizeof(shown));
	else
		snprintf(shown, sizeof(shown), "<%s>", kind_name(key->kind));
	snprintf(msg, sizeof(msg), "line %u: duplicate key '%s'", key->line, shown);
	dtk_value *w = dtk_value_str(msg);
	if (!w || dtk_value_list_push(c->warnings, w) != 0)
		dtk_value_free(&w);
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

/* A hash consistent with key_equal, as Python's hash() is with ==. */
static uint64_t key_hash(const dtk_value *k)
{
	switch (k->type) {
	case DTK_V_BOOL:
		return mix64((uint64_t)k->u.b);
	case DTK_V_INT:
		return mix64((uint64_t)k->u.i);
	case DTK_V_FLOAT: {
		double f = k->u.f;
		if (isnan(f))
			return 0x6e616eULL;
		if (f == floor(f) && f >= -9223372036854775808.0 && f < 9223372036854775808.0)
			return mix64((uint64_t)(int64_t)f);
		uint64_t bits;
		memcpy(&bits, &f, sizeof(bits));
		return mix64(bits);
	}
	case DTK_V_STR:
		return mix64(hash_name_n(k->u.str.s, k->u.str.len));
	case DTK_V_DATE:
		return mix64((uint64_t)k->u.dt.secs ^ 0x44);
	case DTK_V_DATETIME: {
		int64_t secs = k->u.dt.secs - (k->u.dt.has_tz ? 60 * (int64_t)k->u.dt.tz_min : 0);
		return mix64((uint64_t)secs * 1000003u + (uint64_t)k->u.dt.usec);
	}
	default:
		return 0x4e6f6e65ULL;
	}
}

/* Key lookup for one mapping under construction: an open-addressing index
 * over map->u.map.items, so large mappings stay linear. */
typedef struct keyindex {
	size_t *slots; /* entry index + 1; 0 is empty */
	size_t cap;
} keyindex;

static size_t *keyindex_slot(keyindex *ix, const dtk_value *map, const dtk_value *key)
{
	size_t mask = ix->cap - 1;
	for (size_t i = key_hash(key) & mask;; i = (i + 1) & mask)
		if (!ix->slots[i] || key_equal(map->u.map.items[ix->slots[i] - 1].key, key))
			return &ix->slots[i];
}

static dtk_value *construct_map(yctx *c, ynode *nd, int depth)
{
	dtk_value *map = NULL, *key = NULL, *val = NULL;
	unsigned char *explicit = NULL;
	keyindex ix = {NULL, 0};
	if (flatten(c, nd, 0) != 0)
		goto fail;
	size_t pairs = nd->n / 2;
	ix.cap = 8;
	while (ix.cap < 2 * pairs + 2)
		ix.cap *= 2;
	map = dtk_value_map();
	explicit = calloc(pairs + 1, 1);
	ix.slots = calloc(ix.cap, sizeof(*ix.slots));
	if (!map || !explicit || !ix.slots) {
		yerr_oom(c, nd->line, nd->col);
		goto fail;
	}
	for (size_t i = 0; i < pairs; i++) {
		ynode *kn = nd->items[2 * i];
		int is_explicit = 2 * i >= nd->merged;
		key = construct(c, kn, depth + 1);
		if (!key)
			goto fail;
		if (key->type == DTK_V_LIST || key->type == DTK_V_MAP) {
			yerr(c, kn->line, kn->col,
			     "found unhashable key (while constructing the mapping at line %u, "
			     "column %u)",
			     nd->line, nd->col);
			goto fail;
		}
		val = construct(c, nd->items[2 * i + 1], depth + 1);
		if (!val)
			goto fail;
		size_t *slot = keyindex_slot(&ix, map, key);
		size_t j;
		if (*slot) {
			/* Python keeps the first key object and takes the last value */
			j = *slot - 1;
			if (is_explicit && explicit[j])
				warn_duplicate(c, kn);
			dtk_value_free(&map->u.map.items[j].val);
			map->u.map.items[j].val = val;
			val = NULL;
			dtk_value_free(&key);
		} else {
			j = map->u.map.n;
			if (dtk_value_map_push(map, key, val) != 0) {
				yerr_oom(c, kn->line, kn->col);
				goto fail;
			}
			*slot = j + 1;
			key = val = NULL;
		}
		explicit[j] |= (unsigned char)is_explicit;
	}
	free(ix.slots);
	free(explicit);
	return map;
fail:
	free(ix.slots);
	free(explicit);
	dtk_value_free(&key);
	dtk_value_free(&val);
	dtk_value_free(&map);
	return NULL;
}

static dtk_value *construct_seq(yctx *c, ynode *nd, int depth)
{
	dtk_value *list = dtk_value_list();
	if (!list) {
		yerr_oom(c, nd->line, nd->col);
		return NULL;
	}
	for (size_t i = 0; i < nd->n; i++) {
		dtk_value *item = construct(c, nd->items[i], depth + 1);
		if (!item)
			goto fail;
		if (dtk_value_list_push(list, item) != 0) {
			dtk_value_free(&item);
			yerr_oom(c, nd->line, nd->col);
			goto fail;
		}
	}
	return list;
fail:
	dtk_value_free(&list);
	return NULL;
}

static dtk_value *construct_node(yctx *c, ynode *nd, int depth)
{
	const char *tag = nd->tag;
	const char *want = NULL;
	dtk_value *v = NULL;
	if (!strcmp(tag, TAG_MAP)) {
		if (nd->kind == YN_MAP)
			return construct_map(c, nd, depth);
		want = "mapping";
	} else if (!strcmp(tag, TAG_SEQ)) {
		if (nd->kind == YN_SEQ)
			return construct_seq(c, nd, depth);
		want = "sequence";
	} else if (!strcmp(tag, TAG_STR) || !strcmp(tag, TAG_NULL) || !strcmp(tag, TAG_BOOL) ||
		   !strcmp(tag, TAG_INT) || !strcmp(tag, TAG_FLOAT) ||
		   !strcmp(tag, TAG_TIMESTAMP)) {
		if (nd->kind == YN_SCALAR) {
			v = construct_scalar(c, nd);
			if (v)
				v->plain = nd->plain;
			return v;
		}
		want = "scalar";
	} else if (!strcmp(tag, TAG_PREFIX "binary") || !strcmp(tag, TAG_PREFIX "set") ||
		   !strcmp(tag, TAG_PREFIX "omap") || !strcmp(tag, TAG_PREFIX "pairs")) {
		yerr(c, nd->line, nd->col, "the tag '%s' is not supported", tag);
		return NULL;
	} else {
		yerr(c, nd->line, nd->col, "could not determine a constructor for the tag '%s'",
		     tag);
		return NULL;
	}
	yerr(c, nd->line, nd->col, "expected a %s node, but found %s (tag '%s')", want,
	     kind_name(nd->kind), tag);
	return NULL;
}

static dtk_value *construct(yctx *c, ynode *nd, int depth)
{
	dtk_value *v = NULL;
	if (nd->kind != YN_SCALAR && depth >= YAML_MAX_DEPTH) {
		yerr(c, nd->line, nd->col, "nesting deeper than %d levels through aliases",
		     YAML_MAX_DEPTH);
		return NULL;
	}
	if (nd->visiting) {
		yerr(c, nd->line, nd->col,
		     "recursive alias: the node at line %u, column %u contains itself",
		     nd->line, nd->col);
		return NULL;
	}
	if (!nd->built) {
		if (spend(c, nd, 1) != 0)
			return NULL;
		nd->visiting = 1;
		v = construct_node(c, nd, depth);
		nd->visiting = 0;
		if (!v)
			return NULL;
		v->line = nd->line;
		v->col = nd->col;
		if (!nd->anchored)
			return v;
		nd->built = v;
		nd->built_count = value_count(v);
		nd->built_height = value_height(v);
		/* the cached original stays with the node; every use gets a copy */
	} else {
		if (depth + nd->built_height > YAML_MAX_DEPTH) {
			yerr(c, nd->line, nd->col, "nesting deeper than %d levels through aliases",
			     YAML_MAX_DEPTH);
			return NULL;
		}
		if (spend(c, nd, nd->built_count) != 0)
			return NULL;
	}
	v = dtk_value_copy(nd->built);
	if (!v)
		yerr_oom(c, nd->line, nd->col);
	return v;
}

/* ---- entry points ---- */

static void ctx_free(yctx *c)
{
	ynode *nd = c->all;
	while (nd) {
		ynode *next = nd->all_next;
		free(nd->tag);
		free(nd->val);
		free(nd->items);
		dtk_value_free(&nd->built);
		free(nd);
		nd = next;
	}
	c->all = NULL;
	for (size_t i = 0; i < c->anchors_cap; i++)
		free(c->anchors[i].name);
	free(c->anchors);
	c->anchors = NULL;
}

dtk_value *dtk_yaml_load(const char *text, size_t len, const char *filename,
			 dtk_value *warnings, char *errstr, size_t errstr_size)
{
	yctx c;
	yaml_event_t ev;
	int have_event = 0, parser_ready = 0;
	ynode *root = NULL;
	dtk_value *result = NULL;
	unsigned line = 1, col = 1;

	memset(&c, 0, sizeof(c));
	c.file = filename ? filename : "<string>";
	c.text = text ? text : "";
	c.text_len = text ? len : 0;
	c.errstr = errstr;
	c.errstr_size = errstr_size;
	c.warnings = warnings && warnings->type == DTK_V_LIST ? warnings : NULL;
	if (errstr && errstr_size)
		errstr[0] = '\0';

	if (!yaml_parser_initialize(&c.parser)) {
		yerr_oom(&c, 1, 1);
		goto out;
	}
	parser_ready = 1;
	yaml_parser_set_input_string(&c.parser, (const unsigned char *)c.text, c.text_len);
	if (check_tabs(&c) != 0)
		goto out;

	if (next_event(&c, &ev) != 0) /* stream start */
		goto out;
	yaml_event_delete(&ev);
	if (next_event(&c, &ev) != 0)
		goto out;
	have_event = 1;
	if (ev.type == YAML_STREAM_END_EVENT) {
		result = dtk_value_null(); /* no document at all: PyYAML gives None */
		if (!result)
			yerr_oom(&c, 1, 1);
		else
			result->line = result->col = 1;
		goto out;
	}
	yaml_event_delete(&ev); /* document start */
	have_event = 0;
	if (next_event(&c, &ev) != 0)
		goto out;
	have_event = 1;
	root = compose(&c, &ev, 0);
	yaml_event_delete(&ev);
	have_event = 0;
	if (!root)
		goto out;
	if (next_event(&c, &ev) != 0) /* document end */
		goto out;
	yaml_event_delete(&ev);
	if (next_event(&c, &ev) != 0)
		goto out;
	have_event = 1;
	if (ev.type != YAML_STREAM_END_EVENT) {
		line = (unsigned)ev.start_mark.line + 1;
		col = (unsigned)ev.start_mark.column + 1;
		yerr(&c, line, col,
		     "expected a single document in the stream, but found another document");
		goto out;
	}
	c.budget = c.nodes + YAML_MAX_EXPANSION;
	result = construct(&c, root, 0);
out:
	if (have_event)
		yaml_event_delete(&ev);
	if (parser_ready)
		yaml_parser_delete(&c.parser);
	ctx_free(&c);
	if (c.failed)
		dtk_value_free(&result);
	return result;
}

dtk_value *dtk_yaml_resolve_plain(const char *text, size_t len)
{
	yctx c;
	ynode nd;
	dtk_value *v = NULL;
	memset(&c, 0, sizeof(c));
	memset(&nd, 0, sizeof(nd));
	c.file = "<string>";
	nd.kind = YN_SCALAR;
	nd.tag = (char *)resolve_tag(text, len);
	nd.val = (char *)text;
	nd.len = len;
	v = construct_scalar(&c, &nd);
	if (!v && c.oom)
		return NULL;
	/* text PyYAML would refuse to construct (2024-02-30, '=', '<<') stays
	 * the text */
	if (!v)
		v = dtk_value_strn(text, len);
	if (v)
		v->plain = 1;
	return v;
}
