/* TZif reader (RFC 8536, versions 1 to 3) and POSIX TZ rule evaluation.
 *
 * A zone is the file's 64-bit transition table, extended at load time with
 * the transitions its footer rule gives up to TZ_RULE_LAST_YEAR, so nearly
 * every lookup is one binary search; later instants evaluate the rule. */
#include "util/tz.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/pyfmt.h"

#define TZ_MAX_FILE (1 << 20)
#define TZ_MAX_NAME 255
#define TZ_RULE_LAST_YEAR 2200
#define TZ_DIR "/usr/share/zoneinfo/"

typedef struct tz_rule_date {
	char kind; /* 'J' (1..365, no Feb 29), 'N' (0..365), 'M' (month.week.day) */
	int n, m, w, d;
	int32_t time; /* seconds after local midnight, may be negative or > 24 h */
} tz_rule_date;

typedef struct tz_rule {
	int32_t std_off; /* east of UTC */
	int32_t dst_off;
	int has_dst;
	tz_rule_date start, end;
} tz_rule;

struct dtk_tz {
	char *name;
	size_t n;
	int64_t *trans; /* ascending UTC instants */
	int32_t *off;	/* offset from trans[i] on */
	int32_t first_off;
	int has_rule;
	tz_rule rule;
};

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static int is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* ---- POSIX TZ string ---- */

static const char *parse_tz_name(const char *p)
{
	if (*p == '<') {
		const char *q = strchr(p, '>');
		return q && q > p + 1 ? q + 1 : NULL;
	}
	const char *s = p;
	while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
		p++;
	return p - s >= 3 ? p : NULL;
}

/* [+-]hh[:mm[:ss]] with hh up to 167 (RFC 8536 extension). */
static const char *parse_hms(const char *p, int32_t *out)
{
	int sign = 1;
	if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		p++;
	}
	int32_t parts[3] = {0, 0, 0};
	for (int i = 0; i < 3; i++) {
		if (i > 0) {
			if (*p != ':')
				break;
			p++;
		}
		if (*p < '0' || *p > '9')
			return NULL;
		int v = 0, digits = 0;
		while (*p >= '0' && *p <= '9' && digits < 3) {
			v = v * 10 + (*p - '0');
			p++;
			digits++;
		}
		parts[i] = v;
	}
	if (parts[0] > 167 || parts[1] > 59 || parts[2] > 59)
		return NULL;
	*out = sign * (parts[0] * 3600 + parts[1] * 60 + parts[2]);
	return p;
}

static const char *parse_int(const char *p, int *out, int lo, int hi)
{
	if (*p < '0' || *p > '9')
		return NULL;
	int v = 0;
	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (*p - '0');
		if (v > hi)
			return NULL;
		p++;
	}
	if (v < lo)
		return NULL;
	*out = v;
	return p;
}

static const char *parse_rule_date(const char *p, tz_rule_date *rd)
{
	memset(rd, 0, sizeof(*rd));
	rd->time = 2 * 3600;
	if (*p == 'J') {
		rd->kind = 'J';
		p = parse_int(p + 1, &rd->n, 1, 365);
	} else if (*p == 'M') {
		rd->kind = 'M';
		p = parse_int(p + 1, &rd->m, 1, 12);
		if (p && *p == '.')
			p = parse_int(p + 1, &rd->w, 1, 5);
		else
			p = NULL;
		if (p && *p == '.')
			p = parse_int(p + 1, &rd->d, 0, 6);
		else
			p = NULL;
	} else {
		rd->kind = 'N';
		p = parse_int(p, &rd->n, 0, 365);
	}
	if (p && *p == '/')
		p = parse_hms(p + 1, &rd->time);
	return p;
}

static int parse_posix_tz(const char *s, tz_rule *r)
{
	const char *p = parse_tz_name(s);
	int32_t v;
	memset(r, 0, sizeof(*r));
	if (!p || !(p = parse_hms(p, &v)))
		return -1;
	r->std_off = -v;
	if (*p == '\0')
		return 0;
	if (!(p = parse_tz_name(p)))
		return -1;
	r->has_dst = 1;
	r->dst_off = r->std_off + 3600;
	if (*p != ',' && *p != '\0') {
		if (!(p = parse_hms(p, &v)))
			return -1;
		r->dst_off = -v;
	}
	if (*p == '\0') {
		/* POSIX leaves the default rule to the implementation; use the US one */
		r->start = (tz_rule_date){'M', 0, 3, 2, 0, 7200};
		r->end = (tz_rule_date){'M', 0, 11, 1, 0, 7200};
		return 0;
	}
	if (*p != ',' || !(p = parse_rule_date(p + 1, &r->start)))
		return -1;
	if (*p != ',' || !(p = parse_rule_date(p + 1, &r->end)))
		return -1;
	return *p == '\0' ? 0 : -1;
}

/* Days since the epoch of the rule's date in year y. */
static int64_t rule_day(const tz_rule_date *rd, int y)
{
	int64_t jan1 = dtk_pyfmt_days(y, 1, 1);
	switch (rd->kind) {
	case 'J':
		return jan1 + rd->n - 1 + (is_leap(y) && rd->n >= 60 ? 1 : 0);
	case 'N':
		return jan1 + rd->n;
	default: {
		int64_t first = dtk_pyfmt_days(y, rd->m, 1);
		int64_t next = rd->m == 12 ? dtk_pyfmt_days(y + 1, 1, 1) : dtk_pyfmt_days(y, rd->m + 1, 1);
		int dow_first = (int)(((first + 4) % 7 + 7) % 7); /* 0 = Sunday */
		int64_t day = first + (rd->d - dow_first + 7) % 7 + (int64_t)(rd->w - 1) * 7;
		while (day >= next)
			day -= 7;
		return day;
	}
	}
}

/* The rule's two transitions in year y, in time order. */
static void rule_year(const tz_rule *r, int y, int64_t at[2], int32_t off[2])
{
	int64_t start = rule_day(&r->start, y) * 86400 + r->start.time - r->std_off;
	int64_t end = rule_day(&r->end, y) * 86400 + r->end.time - r->dst_off;
	if (start <= end) {
		at[0] = start, off[0] = r->dst_off;
		at[1] = end, off[1] = r->std_off;
	} else {
		at[0] = end, off[0] = r->std_off;
		at[1] = start, off[1] = r->dst_off;
	}
}

static int year_of(int64_t t)
{
	int y, m, d;
	dtk_pyfmt_civil(floor_div(t, 86400), &y, &m, &d);
	return y;
}

/* Offset at t from the rule alone, with its span. */
static int32_t rule_offset(const tz_rule *r, int64_t t, int64_t *from, int64_t *until)
{
	if (!r->has_dst) {
		*from = INT64_MIN;
		*until = INT64_MAX;
		return r->std_off;
	}
	int y = year_of(t + r->std_off);
	int64_t at[6];
	int32_t off[6];
	for (int k = 0; k < 3; k++)
		rule_year(r, y - 1 + k, at + 2 * k, off + 2 * k);
	int i = 5;
	while (i > 0 && at[i] > t)
		i--;
	/* at[0] is in year y - 1, so t >= at[0] always holds for sane rules */
	*from = at[i] <= t ? at[i] : INT64_MIN;
	*until = i < 5 ? at[i + 1] : INT64_MAX;
	return at[i] <= t ? off[i] : off[(i + 1) % 2];
}

/* ---- TZif ---- */

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

typedef struct tzif_counts {
	uint32_t isut, isstd, leap, time, type, chars;
} tzif_counts;

static int read_header(const unsigned char *p, size_t len, int *version, tzif_counts *c)
{
	if (len < 44 || memcmp(p, "TZif", 4) != 0)
		return -1;
	*version = p[4] == 0 ? 1 : p[4] - '0';
	c->isut = be32(p + 20);
	c->isstd = be32(p + 24);
	c->leap = be32(p + 28);
	c->time = be32(p + 32);
	c->type = be32(p + 36);
	c->chars = be32(p + 40);
	if (c->type == 0 || c->time > 100000 || c->type > 256 || c->leap > 10000 ||
	    c->chars > 100000 || c->isut > 256 || c->isstd > 256)
		return -1;
	return 0;
}

static size_t block_size(const tzif_counts *c, int tsize)
{
	return (size_t)c->time * tsize + c->time + (size_t)c->type * 6 + c->chars +
	       (size_t)c->leap * (tsize + 4) + c->isstd + c->isut;
}

static int push_trans(dtk_tz *tz, size_t *cap, int64_t at, int32_t off)
{
	if (tz->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		int64_t *t = realloc(tz->trans, ncap * sizeof(*t));
		if (!t)
			return -1;
		tz->trans = t;
		int32_t *o = realloc(tz->off, ncap * sizeof(*o));
		if (!o)
			return -1;
		tz->off = o;
		*cap = ncap;
	}
	tz->trans[tz->n] = at;
	tz->off[tz->n] = off;
	tz->n++;
	return 0;
}

static int parse_tzif(dtk_tz *tz, const unsigned char *data, size_t len, char *err, size_t errsz)
{
	int version;
	tzif_counts c;
	size_t cap = 0;
	const unsigned char *p = data;
	int tsize = 4;

	if (read_header(p, len, &version, &c) != 0)
		goto bad;
	if (version >= 2) {
		size_t skip = 44 + block_size(&c, 4);
		if (skip > len)
			goto bad;
		p += skip;
		len -= skip;
		if (read_header(p, len, &version, &c) != 0)
			goto bad;
		tsize = 8;
	}
	if (44 + block_size(&c, tsize) > len)
		goto bad;
	const unsigned char *times = p + 44;
	const unsigned char *idx = times + (size_t)c.time * tsize;
	const unsigned char *types = idx + c.time;
	const unsigned char *end = p + 44 + block_size(&c, tsize);

	tz->first_off = (int32_t)be32(types);
	for (uint32_t i = 0; i < c.time; i++) {
		int64_t at = tsize == 8 ? be64(times + 8 * (size_t)i) : (int32_t)be32(times + 4 * (size_t)i);
		if (idx[i] >= c.type)
			goto bad;
		int32_t off = (int32_t)be32(types + 6 * (size_t)idx[i]);
		if (tz->n > 0 && at <= tz->trans[tz->n - 1])
			goto bad;
		if (push_trans(tz, &cap, at, off) != 0)
			goto nomem;
	}
	if (version >= 2) {
		/* footer: "\n" TZ string "\n" */
		size_t rest = (size_t)((p + len) - end);
		if (rest >= 2 && end[0] == '\n') {
			const unsigned char *nl = memchr(end + 1, '\n', rest - 1);
			if (nl && nl > end + 1) {
				char footer[128];
				size_t flen = (size_t)(nl - end - 1);
				if (flen < sizeof(footer)) {
					memcpy(footer, end + 1, flen);
					footer[flen] = '\0';
					if (parse_posix_tz(footer, &tz->rule) == 0)
						tz->has_rule = 1;
				}
			}
		}
	}
	if (tz->has_rule && tz->rule.has_dst) {
		int y0 = tz->n ? year_of(tz->trans[tz->n - 1]) : 1970;
		for (int y = y0; y <= TZ_RULE_LAST_YEAR; y++) {
			int64_t at[2];
			int32_t off[2];
			rule_year(&tz->rule, y, at, off);
			for (int k = 0; k < 2; k++) {
				if (tz->n && at[k] <= tz->trans[tz->n - 1])
					continue;
				if (tz->n && off[k] == tz->off[tz->n - 1])
					continue;
				if (push_trans(tz, &cap, at[k], off[k]) != 0)
					goto nomem;
			}
		}
	}
	return 0;
bad:
	snprintf(err, errsz, "time zone \"%s\": " TZ_DIR "%s is not a valid TZif file", tz->name,
		 tz->name);
	return -1;
nomem:
	snprintf(err, errsz, "time zone \"%s\": out of memory", tz->name);
	return -1;
}

static int valid_name(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > TZ_MAX_NAME || name[0] == '/' || strstr(name, ".."))
		return 0;
	for (const char *p = name; *p; p++) {
		char ch = *p;
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		      ch == '/' || ch == '_' || ch == '-' || ch == '+' || ch == '.'))
			return 0;
	}
	return 1;
}

dtk_tz *dtk_tz_load(const char *name, char *errstr, size_t errstr_size)
{
	dtk_tz *tz = NULL;
	unsigned char *data = NULL;
	FILE *f = NULL;
	int ok = 0;

	if (!name || !valid_name(name)) {
		snprintf(errstr, errstr_size,
			 "unknown time zone \"%s\": use an IANA name such as \"Europe/Moscow\" or \"UTC\"",
			 name ? name : "");
		goto out;
	}
	tz = calloc(1, sizeof(*tz));
	if (!tz || !(tz->name = strdup(name))) {
		snprintf(errstr, errstr_size, "time zone \"%s\": out of memory", name);
		goto out;
	}
	if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0) {
		ok = 1;
		goto out;
	}
	char path[sizeof(TZ_DIR) + TZ_MAX_NAME + 1];
	snprintf(path, sizeof(path), TZ_DIR "%s", name);
	f = fopen(path, "rb");
	if (!f) {
		snprintf(errstr, errstr_size,
			 "unknown time zone \"%s\": cannot open %s (%s); use an IANA name such as "
			 "\"Europe/Moscow\" or \"UTC\"",
			 name, path, strerror(errno));
		goto out;
	}
	data = malloc(TZ_MAX_FILE);
	if (!data) {
		snprintf(errstr, errstr_size, "time zone \"%s\": out of memory", name);
		goto out;
	}
	size_t len = fread(data, 1, TZ_MAX_FILE, f);
	if (ferror(f) || len == TZ_MAX_FILE) {
		snprintf(errstr, errstr_size, "time zone \"%s\": cannot read %s", name, path);
		goto out;
	}
	if (parse_tzif(tz, data, len, errstr, errstr_size) != 0)
		goto out;
	ok = 1;
out:
	if (f)
		fclose(f);
	free(data);
	if (!ok)
		dtk_tz_free(&tz);
	return tz;
}

void dtk_tz_free(dtk_tz **ptz)
{
	if (!ptz || !*ptz)
		return;
	dtk_tz *tz = *ptz;
	free(tz->name);
	free(tz->trans);
	free(tz->off);
	free(tz);
	*ptz = NULL;
}

const char *dtk_tz_name(const dtk_tz *tz)
{
	return tz ? tz->name : "UTC";
}

int32_t dtk_tz_offset_span(const dtk_tz *tz, int64_t t, int64_t *from, int64_t *until)
{
	int64_t f = INT64_MIN, u = INT64_MAX;
	int32_t off = 0;

	if (!tz || (tz->n == 0 && !tz->has_rule)) {
		off = tz ? tz->first_off : 0;
		goto out;
	}
	if (tz->n == 0 || t < tz->trans[0]) {
		if (tz->n == 0) {
			off = rule_offset(&tz->rule, t, &f, &u);
			goto out;
		}
		off = tz->first_off;
		u = tz->trans[0];
		goto out;
	}
	size_t lo = 0, hi = tz->n; /* trans[lo] <= t < trans[hi] */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (tz->trans[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	off = tz->off[lo];
	f = tz->trans[lo];
	if (hi < tz->n) {
		u = tz->trans[hi];
		goto out;
	}
	if (tz->has_rule) {
		int64_t rf, ru;
		off = rule_offset(&tz->rule, t, &rf, &ru);
		if (rf > f)
			f = rf;
		u = ru;
	}
out:
	if (from)
		*from = f;
	if (until)
		*until = u;
	return off;
}

int32_t dtk_tz_offset(const dtk_tz *tz, int64_t t)
{
	return dtk_tz_offset_span(tz, t, NULL, NULL);
}

int64_t dtk_tz_to_utc(const dtk_tz *tz, int64_t local)
{
	int32_t before = dtk_tz_offset(tz, local - 86400);
	int32_t after = dtk_tz_offset(tz, local + 86400);
	int64_t ta = local - before, tb = local - after;
	int va = dtk_tz_offset(tz, ta) == before;
	int vb = dtk_tz_offset(tz, tb) == after;
	if (va && vb)
		return ta < tb ? ta : tb;
	if (vb)
		return tb;
	/* valid with the earlier offset, or in a gap: Python's fold=0 reading */
	return ta;
}

void dtk_tz_calendar(const dtk_tz *tz, int64_t t, dtk_calendar *out)
{
	int64_t local = t + dtk_tz_offset(tz, t);
	int64_t days = floor_div(local, 86400);
	int64_t secs = local - days * 86400;
	dtk_pyfmt_civil(days, &out->year, &out->month, &out->day_of_month);
	out->hour_of_day = (int)(secs / 3600);
	out->minute_of_hour = (int)(secs % 3600 / 60);
	out->day_of_week = (int)(((days + 3) % 7 + 7) % 7);
	out->is_weekend = out->day_of_week >= 5;
}
