/* detect/stats: pairwise summation, weights, sorting and weighted order
 * statistics against plain reference implementations. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "detect/stats.h"

static uint64_t rng_state = 88172645463325252ULL;

static double rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (double)(rng_state >> 11) / 9007199254740992.0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void test_stats_pairwise_sum_follows_numpy_blocks(void **state)
{
	/* numpy: sum(np.full(10, 0.1)) == 0.9999999999999999, while a
	 * sequential loop gives the same; with 8 lanes the first 8 are summed
	 * in a tree: check against the tree by hand for n = 9. */
	double a[9];
	for (int i = 0; i < 9; i++)
		a[i] = 0.1 * (i + 1);
	double r = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
	r += a[8];
	assert_true(dtk_stats_sum(a, 9) == r);
	double seq = 0;
	for (int i = 0; i < 7; i++)
		seq += a[i];
	assert_true(dtk_stats_sum(a, 7) == seq);

	/* Above 128 elements the halves split at a multiple of 8. */
	double *big = malloc(1000 * sizeof(*big));
	for (int i = 0; i < 1000; i++)
		big[i] = rnd();
	double want = dtk_stats_sum(big, 496) + dtk_stats_sum(big + 496, 504);
	assert_true(dtk_stats_sum(big, 1000) == want);
	free(big);
}

static void test_stats_weights_newest_weighs_most_and_sum_to_one(void **state)
{
	double w[500];
	dtk_stats_weights(w, 500, 1, 0.1);
	for (int i = 1; i < 500; i++)
		assert_true(w[i] > w[i - 1]);
	assert_true(fabs(dtk_stats_sum(w, 500) - 1.0) < 1e-15);
	for (int k = 0; k < 500; k++) {
		double exact = exp(-0.1 * k) / exp(-0.1 * 0) * w[499];
		assert_true(fabs(w[499 - k] - exact) <= 1e-13 * exact);
	}
	/* underflow: very old points weigh exactly 0, no NaN */
	double far[9000];
	dtk_stats_weights(far, 9000, 1, 0.5);
	assert_true(far[0] == 0.0);
	assert_false(isnan(far[8999]));
	dtk_stats_weights(w, 4, 0, 0);
	assert_true(w[0] == 0.25 && w[3] == 0.25);
}

static void test_stats_sort_matches_qsort_with_negatives_and_zeros(void **state)
{
	enum { N = 3000 };
	double *x = malloc(N * sizeof(*x)), *w = malloc(N * sizeof(*w));
	double *ref = malloc(N * sizeof(*ref));
	dtk_stats_pair *p = malloc(2 * N * sizeof(*p));
	for (int n = 1; n <= N; n = n * 3 + 1) {
		for (int i = 0; i < n; i++) {
			x[i] = (rnd() - 0.5) * 1e6;
			if (i % 17 == 0)
				x[i] = 0.0;
			if (i % 19 == 0)
				x[i] = -0.0;
			if (i % 23 == 0)
				x[i] = 1e-310; /* subnormal */
			w[i] = i;
			ref[i] = x[i];
		}
		qsort(ref, (size_t)n, sizeof(*ref), cmp_double);
		dtk_stats_sort(x, w, (size_t)n, p, p + n);
		for (int i = 0; i < n; i++)
			assert_true(dtk_stats_pair_value(&p[i]) == ref[i]);
		/* stable: equal values keep chronological order (weights = index) */
		for (int i = 1; i < n; i++)
			if (p[i].key == p[i - 1].key)
				assert_true(p[i].w > p[i - 1].w);
	}
	free(x);
	free(w);
	free(ref);
	free(p);
}

static void test_stats_weighted_median_takes_lower_middle_on_ties(void **state)
{
	double x[4] = {4, 1, 3, 2}, w[4];
	dtk_stats_pair p[8];
	double median, mad;
	dtk_stats_weights(w, 4, 0, 0);
	dtk_stats_sort(x, w, 4, p, p + 4);
	dtk_stats_median_mad(p, 4, &median, &mad);
	assert_true(median == 2.0);
	assert_true(mad == 1.0); /* |x-2| = 2,1,1,0 -> 0,1,1,2 -> lower middle 1 */
}

/* MAD by brute force: sort the deviations with qsort. */
static double brute_mad(const double *x, const double *w, size_t n, double median)
{
	dtk_stats_pair *p = malloc(2 * n * sizeof(*p));
	double *d = malloc(n * sizeof(*d));
	for (size_t i = 0; i < n; i++)
		d[i] = fabs(x[i] - median);
	dtk_stats_sort(d, w, n, p, p + n);
	double cum = 0, r = dtk_stats_pair_value(&p[n - 1]);
	for (size_t i = 0; i < n; i++) {
		cum += p[i].w;
		if (cum >= 0.5) {
			r = dtk_stats_pair_value(&p[i]);
			break;
		}
	}
	free(p);
	free(d);
	return r;
}

static void test_stats_mad_merge_equals_sorting_deviations(void **state)
{
	enum { N = 700 };
	double x[N], w[N];
	dtk_stats_pair p[2 * N];
	for (int round = 0; round < 50; round++) {
		size_t n = 3 + (size_t)(rnd() * (N - 3));
		for (size_t i = 0; i < n; i++)
			x[i] = floor(rnd() * 50); /* many ties */
		dtk_stats_weights(w, n, round % 2, 0.05);
		dtk_stats_sort(x, w, n, p, p + n);
		double median, mad;
		dtk_stats_median_mad(p, n, &median, &mad);
		assert_true(mad == brute_mad(x, w, n, median));
	}
}

static void test_stats_quantiles_use_first_index_reaching_each_level(void **state)
{
	double x[8] = {8, 7, 6, 5, 4, 3, 2, 1}, w[8];
	dtk_stats_pair p[16];
	dtk_stats_weights(w, 8, 0, 0);
	dtk_stats_sort(x, w, 8, p, p + 8);
	static const double levels[3] = {0.25, 0.5, 0.75};
	double q[3];
	dtk_stats_quantiles(p, 8, levels, 3, q);
	assert_true(q[0] == 2.0 && q[1] == 4.0 && q[2] == 6.0);
}

static void test_stats_mean_std_is_population_std(void **state)
{
	double x[5] = {10, 20, 30, 40, 50}, w[5], mean, std;
	dtk_stats_weights(w, 5, 0, 0);
	dtk_stats_mean_std(x, w, 5, &mean, &std);
	assert_true(fabs(mean - 30.0) < 1e-12);
	assert_true(fabs(std - sqrt(200.0)) < 1e-12);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stats_pairwise_sum_follows_numpy_blocks),
		cmocka_unit_test(test_stats_weights_newest_weighs_most_and_sum_to_one),
		cmocka_unit_test(test_stats_sort_matches_qsort_with_negatives_and_zeros),
		cmocka_unit_test(test_stats_weighted_median_takes_lower_middle_on_ties),
		cmocka_unit_test(test_stats_mad_merge_equals_sorting_deviations),
		cmocka_unit_test(test_stats_quantiles_use_first_index_reaching_each_level),
		cmocka_unit_test(test_stats_mean_std_is_population_std),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
