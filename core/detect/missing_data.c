/* missing_data: consecutive missed slots and staleness (detection.md). The
 * count itself lives in alert state; the pipeline passes the previous slot's
 * count in and persists out->missed, so this stays a pure function. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/common.h"
#include "detect/detector.h"
#include "util/pyfmt.h"

typedef struct md_compiled {
	int64_t consecutive;
	double max_staleness; /* minutes; NAN = no staleness check */
	dtk_value *max_staleness_v; /* as configured, for metadata ("limit 15") */
	int zero_missing, errors_missing;
	char *staleness_column;
} md_compiled;

static const char *const md_params[] = {"consecutive_missing",	   "max_staleness_minutes",
				       "treat_zero_as_missing",	   "count_errors_as_missing",
				       "staleness_column",	   NULL};

static void md_destroy(void *compiled)
{
	md_compiled *c = compiled;
	if (!c)
		return;
	free(c->staleness_column);
	dtk_value_free(&c->max_staleness_v);
	free(c);
}

static int md_compile(const dtk_value *params, const dtk_detector_env *env, void **compiled,
		      char *errstr, size_t errstr_size)
{
	int rc = -1;
	md_compiled *c = calloc(1, sizeof(*c));

	if (!c) {
		snprintf(errstr, errstr_size, "params: out of memory");
		goto out;
	}
	if (dtk_param_int(params, "consecutive_missing", 1, &c->consecutive, errstr,
			  errstr_size) != 0)
		goto out;
	if (c->consecutive < 1) {
		snprintf(errstr, errstr_size, "consecutive_missing: must be >= 1, got %lld",
			 (long long)c->consecutive);
		goto out;
	}
	if (dtk_param_number(params, "max_staleness_minutes", NAN, &c->max_staleness, errstr,
			     errstr_size) != 0)
		goto out;
	if (!isnan(c->max_staleness) && !(c->max_staleness > 0)) {
		snprintf(errstr, errstr_size, "max_staleness_minutes: must be > 0 when set");
		goto out;
	}
	if (!isnan(c->max_staleness) &&
	    !(c->max_staleness_v = dtk_param_copy_or(params, "max_staleness_minutes", NULL))) {
		snprintf(errstr, errstr_size, "params: out of memory");
		goto out;
	}
	if (dtk_param_bool(params, "treat_zero_as_missing", 0, &c->zero_missing, errstr,
			   errstr_size) != 0)
		goto out;
	if (dtk_param_bool(params, "count_errors_as_missing", 0, &c->errors_missing, errstr,
			   errstr_size) != 0)
		goto out;
	const dtk_value *col = params ? dtk_value_map_get(params, "staleness_column") : NULL;
	if (col && col->type != DTK_V_NULL) {
		if (col->type != DTK_V_STR || col->u.str.len == 0) {
			snprintf(errstr, errstr_size,
				 "staleness_column: must be the name of a column the collector "
				 "returns");
			goto out;
		}
		if (!(c->staleness_column = strdup(col->u.str.s))) {
			snprintf(errstr, errstr_size, "params: out of memory");
			goto out;
		}
	}
	*compiled = c;
	c = NULL;
	rc = 0;
out:
	md_destroy(c);
	return rc;
}

static void md_window(const void *compiled, int64_t *seconds, int64_t *points)
{
	*seconds = 0;
	*points = 0;
}

static int digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

/* "YYYY-MM-DD[( |T)HH:MM[:SS[.frac]]][Z|+HH[:]MM|-HH[:]MM]", UTC unless an
 * offset says otherwise (config.md "Time"). */
static int parse_iso(const char *s, int64_t *out)
{
	int y, mo, d, h = 0, mi = 0, se = 0, oh = 0, om = 0, sign = 0;
	const char *p = s;
	if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
	    digits(&p, 2, &d) || mo < 1 || mo > 12 || d < 1 || d > 31)
		return -1;
	if (*p == 'T' || *p == ' ') {
		p++;
		if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
			return -1;
		if (*p == ':') {
			p++;
			if (digits(&p, 2, &se))
				return -1;
			if (*p == '.')
				for (p++; *p >= '0' && *p <= '9'; p++)
					;
		}
	}
	if (*p == 'Z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '-' ? -1 : 1;
		if (digits(&p, 2, &oh))
			return -1;
		if (*p == ':')
			p++;
		if (*p && digits(&p, 2, &om))
			return -1;
	}
	if (*p != '\0' || h > 23 || mi > 59 || se > 60)
		return -1;
	*out = dtk_pyfmt_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + se -
	       sign * (oh * 3600 + om * 60);
	return 0;
}

/* The last-event time the collector returned in the staleness column. */
static int staleness_ts(const dtk_value *v, int64_t *out)
{
	double f;
	if (!v)
		return 0;
	switch (v->type) {
	case DTK_V_DATETIME:
		*out = v->u.dt.secs - (v->u.dt.has_tz ? (int64_t)v->u.dt.tz_min * 60 : 0);
		return 1;
	case DTK_V_DATE:
		*out = v->u.dt.secs;
		return 1;
	case DTK_V_INT:
	case DTK_V_FLOAT:
		dtk_value_number(v, &f);
		if (!isfinite(f))
			return 0;
		*out = (int64_t)floor(f);
		return 1;
	case DTK_V_STR:
		return parse_iso(v->u.str.s, out) == 0;
	default:
		return 0;
	}
}

static void md_run(const void *compiled, const dtk_detect_input *in, dtk_detection *out)
{
	const md_compiled *c = compiled;
	int missed = in->is_missing || (c->zero_missing && in->value == 0.0) ||
		     (c->errors_missing && in->collect_failed);

	out->missed = missed ? in->prev_missed + 1 : 0;
	out->score = 0.0;
	dtk_meta_str(out, "detector", "missing_data");
	dtk_meta_int(out, "consecutive_missing", out->missed);
	dtk_meta_int(out, "threshold", c->consecutive);
	if (missed) {
		out->score = (double)out->missed / (double)c->consecutive;
		out->direction = "missing";
		out->is_anomaly = out->missed >= c->consecutive;
		if (out->is_anomaly)
			return;
	}
	if (isnan(c->max_staleness))
		return;

	int64_t last = 0;
	int have = 0;
	if (c->staleness_column)
		have = staleness_ts(dtk_value_map_get(in->context, c->staleness_column), &last);
	if (!have && in->has_newest) {
		last = in->newest_ts;
		have = 1;
	}
	if (!have)
		return;
	double age = (double)(in->period_finish - last) / 60.0;
	char iso[40];
	dtk_pyfmt_datetime(last, 0, 'T', iso, sizeof(iso));
	dtk_meta_num(out, "staleness_minutes", age);
	dtk_meta_set(out, "max_staleness_minutes", dtk_value_copy(c->max_staleness_v));
	dtk_meta_str(out, "last_known_timestamp", iso);
	if (age > c->max_staleness) {
		out->is_anomaly = 1;
		out->direction = "stale";
		out->score = age / c->max_staleness;
	}
}

const dtk_detector_type dtk_detector_missing_data = {
	.name = "missing_data",
	.summary = "consecutive missing points and stale data",
	.compile = md_compile,
	.destroy = md_destroy,
	.window = md_window,
	.run = md_run,
	.id_defaults_json = "{}",
	.known_params = md_params,
};
