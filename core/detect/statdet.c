#include "detect/statdet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/common.h"
#include "util/interval.h"

#define DEFAULT_WINDOW "30 days"

void dtk_statdet_destroy(void *compiled)
{
	dtk_statdet *sd = compiled;
	if (!sd)
		return;
	free(sd->window_text);
	dtk_value_free(&sd->sigma_v);
	dtk_seasonal_release(&sd->seasonal);
	free(sd);
}

int dtk_statdet_compile(const dtk_statdet_spec *spec, const dtk_value *params,
			const dtk_detector_env *env, void **out, char *errstr, size_t errstr_size)
{
	int rc = -1;
	dtk_statdet *sd = calloc(1, sizeof(*sd));
	char msg[512];

	if (!sd)
		goto nomem;
	sd->spec = spec;

	const dtk_value *win = params ? dtk_value_map_get(params, "window_size") : NULL;
	if (win && win->type != DTK_V_NULL) {
		if (dtk_window_parse(win, &sd->window_seconds, &sd->window_points, msg,
				     sizeof(msg)) != 0) {
			snprintf(errstr, errstr_size, "window_size: %s", msg);
			goto out;
		}
		if (win->type == DTK_V_INT) {
			snprintf(msg, sizeof(msg), "%lld", (long long)win->u.i);
			sd->window_text = strdup(msg);
		} else {
			sd->window_text = strdup(win->u.str.s);
		}
	} else {
		sd->window_seconds = 30 * 86400;
		sd->window_text = strdup(DEFAULT_WINDOW);
	}
	if (!sd->window_text)
		goto nomem;

	if (dtk_param_number(params, spec->sigma_key, spec->sigma_default, &sd->sigma, errstr,
			     errstr_size) != 0)
		goto out;
	if (!(sd->sigma > 0)) {
		snprintf(errstr, errstr_size, "%s: must be > 0, got %.17g", spec->sigma_key,
			 sd->sigma);
		goto out;
	}
	if (!(sd->sigma_v = dtk_param_copy_or(params, spec->sigma_key,
					      dtk_value_float(spec->sigma_default))))
		goto nomem;
	if (dtk_param_bool(params, "use_weighted", 1, &sd->use_weighted, errstr, errstr_size) != 0)
		goto out;
	if (dtk_param_number(params, "exp_decay_factor", 0.1, &sd->decay, errstr, errstr_size) != 0)
		goto out;
	if (!(sd->decay > 0)) {
		snprintf(errstr, errstr_size, "exp_decay_factor: must be > 0, got %.17g", sd->decay);
		goto out;
	}
	if (dtk_param_int(params, "min_samples", 3, &sd->min_samples, errstr, errstr_size) != 0)
		goto out;
	if (sd->min_samples < 1) {
		snprintf(errstr, errstr_size, "min_samples: must be >= 1, got %lld",
			 (long long)sd->min_samples);
		goto out;
	}
	int combined = 0;
	if (dtk_param_bool(params, "use_combined_seasonality", 0, &combined, errstr,
			   errstr_size) != 0)
		goto out;
	if (dtk_seasonal_compile(&sd->seasonal,
				 params ? dtk_value_map_get(params, "seasonal_features") : NULL,
				 combined, env, errstr, errstr_size) != 0)
		goto out;
	*out = sd;
	sd = NULL;
	rc = 0;
	goto out;
nomem:
	snprintf(errstr, errstr_size, "params: out of memory");
out:
	dtk_statdet_destroy(sd);
	return rc;
}

void dtk_statdet_window(const void *compiled, int64_t *seconds, int64_t *points)
{
	const dtk_statdet *sd = compiled;
	*seconds = sd->window_seconds;
	*points = sd->window_points;
}

/* First index in ts[0..n) with ts[i] >= t. */
static size_t lower_bound(const int64_t *ts, size_t n, int64_t t)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ts[mid] < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void dtk_baseline_release(dtk_baseline *b)
{
	free(b->heap);
	b->heap = NULL;
}

int dtk_statdet_baseline(const dtk_statdet *sd, const dtk_detect_input *in, int want_sort,
			 dtk_baseline *b, dtk_detection *out)
{
	const char *label = sd->spec->label;
	int seasonal = sd->seasonal.n > 0;

	b->n = 0;
	b->window_points = 0;
	b->x = NULL;
	b->w = NULL;
	b->sorted = NULL;
	b->heap = NULL;

	dtk_meta_str(out, "detector", sd->spec->type);
	dtk_meta_str(out, "window_size", sd->window_text);
	dtk_meta_set(out, sd->spec->sigma_key, dtk_value_copy(sd->sigma_v));
	dtk_meta_bool(out, "use_weighted", sd->use_weighted);
	dtk_meta_set(out, "seasonal_features", dtk_value_copy(sd->seasonal.listed));

	if (in->is_missing) {
		dtk_detection_skip(out, "Cannot perform %s detection on missing data", label);
		return -1;
	}
	const dtk_history *h = &in->history;
	size_t hi = h->n ? lower_bound(h->ts, h->n, in->ts) : 0;
	size_t lo = 0;
	if (sd->window_seconds > 0)
		lo = lower_bound(h->ts, hi, in->ts - sd->window_seconds);
	else if (sd->window_points > 0 && (uint64_t)sd->window_points < hi)
		lo = hi - (size_t)sd->window_points;
	size_t nwin = hi - lo;
	b->window_points = nwin;
	dtk_meta_int(out, "window_points", (int64_t)nwin);
	if (nwin == 0) {
		dtk_detection_skip(out, "No historical data found within window %s", sd->window_text);
		return -1;
	}

	size_t need = (seasonal ? nwin : 0) * sizeof(double) + nwin * sizeof(double) +
		      (want_sort ? 2 * nwin * sizeof(dtk_stats_pair) : 0);
	unsigned char *mem = (unsigned char *)b->stack.d;
	if (need > sizeof(b->stack)) {
		if (!(b->heap = malloc(need))) {
			dtk_detection_skip(out, "Out of memory for %zu history points", nwin);
			return -1;
		}
		mem = b->heap;
	}
	b->w = (double *)mem;
	mem += nwin * sizeof(double);
	dtk_stats_pair *pairs = NULL;
	if (want_sort) {
		pairs = (dtk_stats_pair *)mem;
		mem += 2 * nwin * sizeof(dtk_stats_pair);
	}

	size_t n = nwin;
	b->x = h->values + lo;
	if (seasonal) {
		double *x = (double *)mem;
		char *why = NULL;
		long kept = dtk_seasonal_filter(&sd->seasonal, in, lo, hi, x, &why);
		if (kept < 0) {
			dtk_detection_skip(out, "%s", why ? why : "out of memory");
			free(why);
			return -1;
		}
		if (kept == 0) {
			char *desc = dtk_seasonal_describe(&sd->seasonal, in);
			dtk_detection_skip(out, "No historical data found for seasonal group: %s",
					   desc ? desc : "");
			free(desc);
			return -1;
		}
		n = (size_t)kept;
		b->x = x;
	}
	if ((int64_t)n < sd->min_samples) {
		if (seasonal)
			dtk_detection_skip(out,
					   "Insufficient data in seasonal group: %zu points (minimum "
					   "%lld required)",
					   n, (long long)sd->min_samples);
		else
			dtk_detection_skip(out,
					   "Insufficient data for %s detection: %zu points (minimum "
					   "%lld required)",
					   label, n, (long long)sd->min_samples);
		return -1;
	}
	b->n = n;
	dtk_stats_weights(b->w, n, sd->use_weighted, sd->decay);
	if (want_sort) {
		b->sorted = pairs;
		dtk_stats_sort(b->x, b->w, n, pairs, pairs + n);
	}
	return 0;
}

double dtk_statdet_zero_eps(double center)
{
	return 1e-9 * fmax(1.0, fabs(center));
}

void dtk_statdet_finish_sigma(const dtk_statdet *sd, const dtk_detect_input *in,
			      dtk_detection *out, double center, double spread,
			      const char *center_key, const char *spread_key)
{
	double v = in->value;
	double eps = dtk_statdet_zero_eps(center);

	if (spread <= eps)
		spread = 0.0;
	out->lower_bound = center - sd->sigma * spread;
	out->upper_bound = center + sd->sigma * spread;
	if (spread > 0) {
		out->score = fabs(v - center) / spread;
		out->is_anomaly = v < out->lower_bound || v > out->upper_bound;
	} else {
		int same = fabs(v - center) <= eps;
		out->score = same ? 0.0 : INFINITY;
		out->is_anomaly = !same;
	}
	if (out->is_anomaly)
		out->direction = v > center ? "up" : "down";
	if (center != 0)
		out->percent_deviation = (v - center) / fabs(center) * 100;
	dtk_meta_num(out, center_key, center);
	dtk_meta_num(out, spread_key, spread);
	dtk_meta_num(out, "center", center);
	dtk_meta_num(out, "spread", spread);
}
