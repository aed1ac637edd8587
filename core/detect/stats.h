/* Weighted statistics as DetectK computes them with numpy (detection.md):
 * exponential-decay weights normalised by their pairwise sum, pairwise
 * summation for weighted mean and variance, and weighted order statistics
 * taken at the first index whose sequential cumulative weight reaches the
 * level. Private to core/detect. Pure functions, thread-safe; no function
 * allocates: callers pass scratch. */
#ifndef DTK_DETECT_STATS_H
#define DTK_DETECT_STATS_H

#include <stddef.h>
#include <stdint.h>

/* One value and its weight, sorted by value. */
typedef struct dtk_stats_pair {
	uint64_t key; /* order-preserving image of the value's bits */
	double w;
} dtk_stats_pair;

/* numpy's pairwise sum of a[0..n). */
double dtk_stats_sum(const double *a, size_t n);

/* Fills w[0..n): 1/n each, or exp(-decay*(n-1-i)) normalised by the
 * pairwise sum (newest, i = n-1, weighs most). */
void dtk_stats_weights(double *w, size_t n, int weighted, double decay);

/* mean = sum(w*x), std = sqrt(sum(w*(x-mean)^2)), both summed pairwise. */
void dtk_stats_mean_std(const double *x, const double *w, size_t n, double *mean, double *std);

/* Sorts (x[i], w[i]) by value into out[0..n); tmp holds n pairs of scratch.
 * Stable: equal values keep chronological order. */
void dtk_stats_sort(const double *x, const double *w, size_t n, dtk_stats_pair *out,
		    dtk_stats_pair *tmp);

/* The value a sorted pair holds. */
double dtk_stats_pair_value(const dtk_stats_pair *p);

/* The weighted order statistics at the levels (ascending, e.g. 0.25, 0.5,
 * 0.75) over sorted pairs: the value at the first index whose cumulative
 * weight is >= the level (the last value if rounding never gets there). */
void dtk_stats_quantiles(const dtk_stats_pair *s, size_t n, const double *levels, size_t nlevels,
			 double *out);

/* Weighted median and MAD (weighted median of |x - median|, same weights)
 * over sorted pairs, in O(n) once sorted. */
void dtk_stats_median_mad(const dtk_stats_pair *s, size_t n, double *median, double *mad);

#endif
