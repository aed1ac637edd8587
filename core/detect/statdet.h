/* What zscore, mad and iqr share (detection.md "zscore and mad"): params,
 * the baseline (window cut, seasonal filter, minimum size, weights) and the
 * verdict from a center and a spread. Private to core/detect. */
#ifndef DTK_DETECT_STATDET_H
#define DTK_DETECT_STATDET_H

#include <stddef.h>
#include <stdint.h>

#include "detect/detector.h"
#include "detect/seasonal.h"
#include "detect/stats.h"

typedef struct dtk_statdet_spec {
	const char *type;      /* "mad" */
	const char *label;     /* "MAD", for messages */
	const char *sigma_key; /* "n_sigma", or iqr's "threshold" */
	double sigma_default;
} dtk_statdet_spec;

typedef struct dtk_statdet {
	const dtk_statdet_spec *spec;
	int64_t window_seconds, window_points;
	char *window_text; /* str(window_size), for metadata and messages */
	double sigma;
	dtk_value *sigma_v; /* as configured, for metadata */
	int use_weighted;
	double decay;
	int64_t min_samples;
	dtk_seasonal seasonal;
} dtk_statdet;

/* The params zscore and mad read (known_params); iqr reads "threshold"
 * instead of "n_sigma". */
#define DTK_STATDET_PARAMS(sigma_key)                                                              \
	{"window_size",	     sigma_key,	 "use_weighted", "exp_decay_factor", "seasonal_features",  \
	 "use_combined_seasonality", "min_samples", NULL}

/* Builds *out (owned by the caller, freed with dtk_statdet_destroy) from
 * params (borrowed). Returns 0, or -1 with errstr "param: message". */
int dtk_statdet_compile(const dtk_statdet_spec *spec, const dtk_value *params,
			const dtk_detector_env *env, void **out, char *errstr, size_t errstr_size);
void dtk_statdet_destroy(void *compiled);
void dtk_statdet_window(const void *compiled, int64_t *seconds, int64_t *points);

#define DTK_BASELINE_STACK 8192

/* A baseline ready for statistics: x and w hold n values and weights,
 * oldest first; sorted (when asked for) the same pairs by value. */
typedef struct dtk_baseline {
	size_t n;
	size_t window_points; /* in the window, before seasonal filtering */
	const double *x;
	double *w;
	dtk_stats_pair *sorted;
	void *heap;
	union {
		double d[DTK_BASELINE_STACK / sizeof(double)];
		uint64_t u[DTK_BASELINE_STACK / sizeof(uint64_t)];
	} stack;
} dtk_baseline;

/* Cuts and filters in's history. Returns 0 when b is ready, or -1 when the
 * detector must skip (out->skipped says why). Fills the common metadata
 * either way. Release b with dtk_baseline_release in both cases. */
int dtk_statdet_baseline(const dtk_statdet *sd, const dtk_detect_input *in, int want_sort,
			 dtk_baseline *b, dtk_detection *out);
void dtk_baseline_release(dtk_baseline *b);

/* A spread this small is floating-point residue of a constant series. */
double dtk_statdet_zero_eps(double center);

/* The verdict of center ± sigma · spread, with metadata under the given
 * center and spread names plus "center" and "spread". */
void dtk_statdet_finish_sigma(const dtk_statdet *sd, const dtk_detect_input *in,
			      dtk_detection *out, double center, double spread,
			      const char *center_key, const char *spread_key);

#endif
