/* The synthetic collector (config.md, Collectors): a deterministic series
 * for demos and tests, no I/O.
 *
 *   v(t) = (base + trend*days(t))
 *          * (1 + daily_amplitude*sin(2*pi*hour(t)/24) + weekly_amplitude*sin(2*pi*dow(t)/7))
 *          * factor(t) + noise*N(0,1)
 *
 * Choices where config.md is silent:
 * - hour(t) is the fractional hour of the UTC day, (t mod 86400) / 3600.
 * - dow(t) is the fractional day of the UTC week, 0.0 = Monday 00:00, so the
 *   weekly wave is as smooth as the daily one.
 * - days(t) counts fractional days since 2024-01-01T00:00Z (negative before),
 *   so a trend keeps present-day values near base instead of adding
 *   trend * 19700 days since 1970.
 * - N(0,1) is Box-Muller over two uniforms from splitmix64 keyed by (seed, t):
 *   no state, so any slot can be computed alone and every run, thread and
 *   machine (same libm) gets the same value.
 * - factor(t) is the product of the factors of every `anomalies` window with
 *   start <= t < end (1 outside them).
 * - Rows are at period_start, period_start + interval, ... before
 *   period_finish (the period is aligned by the caller).
 * - `missing: [{start, end}]` (an addition) makes the slots in the window
 *   missing points, to exercise missing-data detection.
 * Window bounds are ISO times, YAML dates/datetimes, epoch seconds, or
 * offsets from the execution time: a sign and an interval (`-30m`, `-2h`,
 * `-1d`, `+90s`, `-1w`, `-2 hours`), or `now` (the execution time itself).
 *
 * A compiled synthetic collector is immutable and thread-safe. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collect/collector.h"
#include "util/interval.h"
#include "util/params.h"
#include "util/timeparse.h"

#define SYN_EPOCH_2024 INT64_C(1704067200) /* 2024-01-01T00:00:00Z */
#define SYN_MONDAY INT64_C(345600)	   /* 1970-01-05T00:00:00Z */
#define SYN_MAX_ROWS ((int64_t)10 * 1000 * 1000)
#define SYN_PI 3.14159265358979323846

typedef struct syn_bound {
	int relative; /* t is an offset from the execution time */
	int64_t t;
} syn_bound;

typedef struct syn_window {
	syn_bound start, end;
	double factor;
} syn_window;

typedef struct synthetic {
	double base, noise, daily, weekly, trend;
	uint64_t seed;
	syn_window *anomalies;
	size_t n_anomalies;
	syn_window *missing;
	size_t n_missing;
} synthetic;

/* "-30m" and friends: a sign, then an interval as config.md spells it; or
 * "now".
 * 1 and *secs when s is an offset, 0 when it is not one, -1 (errstr set) when
 * it starts with a sign but is not a valid interval. */
static int parse_relative(const char *s, int64_t *secs, char *errstr, size_t errstr_size)
{
	if (strcmp(s, "now") == 0) {
		*secs = 0;
		return 1;
	}
	if (s[0] != '-' && s[0] != '+')
		return 0;
	/* A signed bare number stays epoch seconds. */
	if (strspn(s + 1, "0123456789") == strlen(s + 1))
		return 0;
	if (dtk_interval_parse(s + 1, secs, errstr, errstr_size) != 0)
		return -1;
	if (s[0] == '-')
		*secs = -*secs;
	return 1;
}

static int parse_bound(const dtk_value *v, const char *key, syn_bound *b, char *errstr,
		       size_t errstr_size)
{
	char err[256];
	if (!v || v->type == DTK_V_NULL) {
		snprintf(errstr, errstr_size, "%s: required (an ISO time or an offset like -30m)",
			 key);
		return -1;
	}
	b->relative = 0;
	if (v->type == DTK_V_STR) {
		int r = parse_relative(v->u.str.s, &b->t, err, sizeof(err));
		if (r < 0) {
			snprintf(errstr, errstr_size, "%s: %s", key, err);
			return -1;
		}
		if (r > 0) {
			b->relative = 1;
			return 0;
		}
	}
	if (v->type != DTK_V_STR && v->type != DTK_V_INT && v->type != DTK_V_DATE &&
	    v->type != DTK_V_DATETIME) {
		snprintf(errstr, errstr_size, "%s: must be an ISO time or an offset like -30m, got %s",
			 key, dtk_value_type_name(v));
		return -1;
	}
	if (dtk_timeparse_value(v, NULL, &b->t, err, sizeof(err)) != 0) {
		snprintf(errstr, errstr_size, "%s: %s, or an offset like -30m", key, err);
		return -1;
	}
	return 0;
}

static int parse_windows(const dtk_value *params, const char *key, int with_factor,
			 syn_window **out, size_t *n_out, char *errstr, size_t errstr_size)
{
	char path[64];
	const dtk_value *list = dtk_value_map_get(params, key);
	*out = NULL;
	*n_out = 0;
	if (!list || list->type == DTK_V_NULL)
		return 0;
	if (list->type != DTK_V_LIST) {
		snprintf(errstr, errstr_size, "%s: must be a list of {start, end%s}, got %s", key,
			 with_factor ? ", factor" : "", dtk_value_type_name(list));
		return -1;
	}
	if (list->u.list.n == 0)
		return 0;
	syn_window *w = calloc(list->u.list.n, sizeof(*w));
	if (!w) {
		snprintf(errstr, errstr_size, "%s: out of memory", key);
		return -1;
	}
	for (size_t i = 0; i < list->u.list.n; i++) {
		const dtk_value *item = list->u.list.items[i];
		if (item->type != DTK_V_MAP) {
			snprintf(errstr, errstr_size, "%s[%zu]: must be a mapping with start, end%s",
				 key, i, with_factor ? ", factor" : "");
			goto fail;
		}
		snprintf(path, sizeof(path), "%s[%zu].start", key, i);
		if (parse_bound(dtk_value_map_get(item, "start"), path, &w[i].start, errstr,
				errstr_size) != 0)
			goto fail;
		snprintf(path, sizeof(path), "%s[%zu].end", key, i);
		if (parse_bound(dtk_value_map_get(item, "end"), path, &w[i].end, errstr,
				errstr_size) != 0)
			goto fail;
		w[i].factor = 1.0;
		if (with_factor) {
			const dtk_value *f = dtk_value_map_get(item, "factor");
			if (!f || (f->type != DTK_V_INT && f->type != DTK_V_FLOAT) ||
			    !dtk_value_number(f, &w[i].factor) || !isfinite(w[i].factor)) {
				snprintf(errstr, errstr_size, "%s[%zu].factor: must be a finite number",
					 key, i);
				goto fail;
			}
		}
		if (!w[i].start.relative && !w[i].end.relative && w[i].end.t <= w[i].start.t) {
			snprintf(errstr, errstr_size, "%s[%zu]: end must be after start", key, i);
			goto fail;
		}
	}
	*out = w;
	*n_out = list->u.list.n;
	return 0;
fail:
	free(w);
	return -1;
}

static void synthetic_destroy(void *compiled)
{
	synthetic *s = compiled;
	if (!s)
		return;
	free(s->anomalies);
	free(s->missing);
	free(s);
}

static int synthetic_compile(const dtk_value *params, dtk_value *warnings, void **compiled,
			     char *errstr, size_t errstr_size)
{
	int rc = -1;
	synthetic *s = calloc(1, sizeof(*s));
	*compiled = NULL;
	if (!s) {
		snprintf(errstr, errstr_size, "synthetic: out of memory");
		goto out;
	}
	if (params && params->type != DTK_V_MAP && params->type != DTK_V_NULL) {
		snprintf(errstr, errstr_size, "params: must be a mapping");
		goto out;
	}
	if (dtk_param_number(params, "base", 100.0, &s->base, errstr, errstr_size) != 0 ||
	    dtk_param_number(params, "noise", 0.0, &s->noise, errstr, errstr_size) != 0 ||
	    dtk_param_number(params, "daily_amplitude", 0.0, &s->daily, errstr, errstr_size) != 0 ||
	    dtk_param_number(params, "weekly_amplitude", 0.0, &s->weekly, errstr, errstr_size) != 0 ||
	    dtk_param_number(params, "trend", 0.0, &s->trend, errstr, errstr_size) != 0)
		goto out;
	const dtk_value *seed = dtk_value_map_get(params, "seed");
	if (seed && seed->type != DTK_V_NULL) {
		if (seed->type != DTK_V_INT) {
			snprintf(errstr, errstr_size, "seed: must be an integer, got %s",
				 dtk_value_type_name(seed));
			goto out;
		}
		s->seed = (uint64_t)seed->u.i;
	}
	if (parse_windows(params, "anomalies", 1, &s->anomalies, &s->n_anomalies, errstr,
			  errstr_size) != 0 ||
	    parse_windows(params, "missing", 0, &s->missing, &s->n_missing, errstr,
			  errstr_size) != 0)
		goto out;
	*compiled = s;
	s = NULL;
	rc = 0;
out:
	synthetic_destroy(s);
	return rc;
}

static uint64_t splitmix64(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

static double normal_at(uint64_t seed, int64_t t)
{
	uint64_t h1 = splitmix64(seed ^ splitmix64((uint64_t)t));
	uint64_t h2 = splitmix64(h1);
	double u1 = (double)((h1 >> 11) + 1) * 0x1p-53; /* (0, 1] keeps log finite */
	double u2 = (double)(h2 >> 11) * 0x1p-53;
	return sqrt(-2.0 * log(u1)) * cos(2.0 * SYN_PI * u2);
}

static int64_t floor_mod(int64_t a, int64_t m)
{
	int64_t r = a % m;
	return r < 0 ? r + m : r;
}

static int in_window(const syn_window *w, int64_t exec, int64_t t)
{
	int64_t start = w->start.relative ? exec + w->start.t : w->start.t;
	int64_t end = w->end.relative ? exec + w->end.t : w->end.t;
	return start <= t && t < end;
}

static double synthetic_value(const synthetic *s, int64_t exec, int64_t t)
{
	double hour = (double)floor_mod(t, 86400) / 3600.0;
	double dow = (double)floor_mod(t - SYN_MONDAY, 604800) / 86400.0;
	double days = (double)(t - SYN_EPOCH_2024) / 86400.0;
	double factor = 1.0;
	for (size_t i = 0; i < s->n_anomalies; i++)
		if (in_window(&s->anomalies[i], exec, t))
			factor *= s->anomalies[i].factor;
	double v = (s->base + s->trend * days) *
		   (1.0 + s->daily * sin(2.0 * SYN_PI * hour / 24.0) +
		    s->weekly * sin(2.0 * SYN_PI * dow / 7.0)) *
		   factor;
	if (s->noise != 0.0)
		v += s->noise * normal_at(s->seed, t);
	return v;
}

static int synthetic_collect(const void *compiled, const dtk_collect_request *req, dtk_rows *out,
			     char *errstr, size_t errstr_size)
{
	const synthetic *s = compiled;
	int64_t step = req->interval > 0 ? req->interval : req->period_finish - req->period_start;
	if (step <= 0) {
		snprintf(errstr, errstr_size, "synthetic: empty period");
		return -1;
	}
	if ((req->period_finish - req->period_start) / step > SYN_MAX_ROWS) {
		snprintf(errstr, errstr_size,
			 "synthetic: the period holds more than %lld slots; load it in batches",
			 (long long)SYN_MAX_ROWS);
		return -1;
	}
	for (int64_t t = req->period_start; t < req->period_finish; t += step) {
		int missing = 0;
		for (size_t i = 0; i < s->n_missing && !missing; i++)
			missing = in_window(&s->missing[i], req->execution_time, t);
		double v = missing ? 0.0 : synthetic_value(s, req->execution_time, t);
		if (dtk_rows_push(out, t, v, missing || !isfinite(v), NULL) != 0) {
			snprintf(errstr, errstr_size, "synthetic: out of memory");
			return -1;
		}
	}
	return 0;
}

static int synthetic_has_timestamps(const void *compiled)
{
	return 1;
}

static const char *const synthetic_params[] = {
	"base",	 "noise",     "daily_amplitude", "weekly_amplitude", "trend",
	"seed",	 "anomalies", "missing",	 NULL,
};

const dtk_collector_type dtk_collector_synthetic = {
	.name = "synthetic",
	.summary = "a deterministic generated series (seasonality, trend, noise, anomalies)",
	.compile = synthetic_compile,
	.destroy = synthetic_destroy,
	.collect = synthetic_collect,
	.has_timestamps = synthetic_has_timestamps,
	.known_params = synthetic_params,
};
