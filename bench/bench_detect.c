/* Detector throughput over a 4,320-point history (10-minute points over 30
 * days: a daily sine plus noise from a fixed seed), against plain baseline
 * implementations of the same computations (exp() per weight, qsort-based
 * weighted median, straightforward loops) timed in the same invocation.
 *
 * Usage: bench_detect [--json] [--seconds S]
 * One line per case: name, points/s, ns per run, speedup over its baseline.
 * Not part of ctest: timings are measured, never asserted. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "detect/detector.h"
#include "util/json.h"
#include "util/tz.h"

#define N_POINTS 4320
#define STEP 600
#define T_NOW 1719792000 /* 2024-07-01T00:00:00Z */

typedef struct bench_data {
	int64_t ts[N_POINTS];
	double values[N_POINTS];
	dtk_detect_input in;
} bench_data;

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void make_series(bench_data *b)
{
	uint64_t s = 0x9E3779B97F4A7C15ULL;
	for (int i = 0; i < N_POINTS; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		double noise = ((double)(s >> 11) / 9007199254740992.0 - 0.5) * 40.0;
		b->ts[i] = T_NOW - (int64_t)(N_POINTS - i) * STEP;
		b->values[i] = 1000.0 + 150.0 * sin(2 * M_PI * (double)(b->ts[i] % 86400) / 86400.0) + noise;
	}
	memset(&b->in, 0, sizeof(b->in));
	b->in.ts = T_NOW;
	b->in.value = 1210.0;
	b->in.history.n = N_POINTS;
	b->in.history.ts = b->ts;
	b->in.history.values = b->values;
}

/* ---- plain baselines ---- */

typedef struct naive_pair {
	double v, w;
} naive_pair;

static int naive_cmp(const void *a, const void *b)
{
	double x = ((const naive_pair *)a)->v, y = ((const naive_pair *)b)->v;
	return (x > y) - (x < y);
}

static void naive_weights(double *w, size_t n, double decay)
{
	double total = 0;
	for (size_t i = 0; i < n; i++) {
		w[i] = exp(-decay * (double)(n - 1 - i));
		total += w[i];
	}
	for (size_t i = 0; i < n; i++)
		w[i] /= total;
}

static double naive_wmedian(naive_pair *p, size_t n)
{
	qsort(p, n, sizeof(*p), naive_cmp);
	double cum = 0;
	for (size_t i = 0; i < n; i++) {
		cum += p[i].w;
		if (cum >= 0.5)
			return p[i].v;
	}
	return p[n - 1].v;
}

static double naive_zscore(const double *x, size_t n, double value)
{
	double *w = malloc(n * sizeof(*w));
	naive_weights(w, n, 0.1);
	double mean = 0, var = 0;
	for (size_t i = 0; i < n; i++)
		mean += w[i] * x[i];
	for (size_t i = 0; i < n; i++)
		var += w[i] * (x[i] - mean) * (x[i] - mean);
	free(w);
	return fabs(value - mean) / sqrt(var);
}

static double naive_mad(const double *x, size_t n, double value)
{
	double *w = malloc(n * sizeof(*w));
	naive_pair *p = malloc(n * sizeof(*p));
	naive_weights(w, n, 0.1);
	for (size_t i = 0; i < n; i++)
		p[i] = (naive_pair){x[i], w[i]};
	double median = naive_wmedian(p, n);
	for (size_t i = 0; i < n; i++)
		p[i] = (naive_pair){fabs(x[i] - median), w[i]};
	double mad = naive_wmedian(p, n);
	free(w);
	free(p);
	return fabs(value - median) / (1.4826 * mad);
}

static double naive_mad_hourly(const bench_data *b)
{
	dtk_calendar cur, c;
	double *x = malloc(N_POINTS * sizeof(*x));
	size_t n = 0;
	dtk_tz_calendar(b->in.tz, b->in.ts, &cur);
	for (size_t i = 0; i < N_POINTS; i++) {
		dtk_tz_calendar(b->in.tz, b->ts[i], &c);
		if (c.hour_of_day == cur.hour_of_day)
			x[n++] = b->values[i];
	}
	double r = naive_mad(x, n, b->in.value);
	free(x);
	return r;
}

/* ---- timing ---- */

typedef struct bench_case {
	const char *name;
	const char *type;
	const char *params;
	int baseline; /* 0 zscore, 1 mad, 2 hourly mad */
} bench_case;

static const bench_case cases[] = {
	{"zscore_weighted", "zscore", "{\"window_size\": \"30 days\"}", 0},
	{"mad_weighted", "mad", "{\"window_size\": \"30 days\"}", 1},
	{"mad_weighted_hour_of_day", "mad",
	 "{\"window_size\": \"30 days\", \"seasonal_features\": [\"hour_of_day\"]}", 2},
};

static double sink;

static double time_ours(const dtk_detector_type *dt, void *c, const bench_data *b, double budget,
			double *score)
{
	long runs = 0, batch = 16;
	double start = now_s(), el;
	do {
		for (long k = 0; k < batch; k++) {
			dtk_detection d;
			dtk_detection_init(&d, "bench", dt->name);
			dt->run(c, &b->in, &d);
			*score = d.score;
			sink += d.score;
			dtk_detection_clear(&d);
		}
		runs += batch;
		el = now_s() - start;
	} while (el < budget);
	return el / (double)runs;
}

static double time_naive(int which, const bench_data *b, double budget, double *score)
{
	long runs = 0, batch = 16;
	double start = now_s(), el;
	do {
		for (long k = 0; k < batch; k++) {
			double s = which == 0   ? naive_zscore(b->values, N_POINTS, b->in.value)
				   : which == 1 ? naive_mad(b->values, N_POINTS, b->in.value)
						: naive_mad_hourly(b);
			*score = s;
			sink += s;
		}
		runs += batch;
		el = now_s() - start;
	} while (el < budget);
	return el / (double)runs;
}

int main(int argc, char **argv)
{
	int as_json = 0;
	double budget = 0.5;
	int rc = 1;
	char err[512];
	bench_data *b = calloc(1, sizeof(*b));
	dtk_tz *tz = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			as_json = 1;
		} else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
			char *end;
			budget = strtod(argv[++i], &end);
			if (*end || !(budget > 0)) {
				fprintf(stderr, "--seconds: expected a positive number\n");
				goto out;
			}
		} else {
			fprintf(stderr, "usage: %s [--json] [--seconds S]\n", argv[0]);
			goto out;
		}
	}
	if (!b)
		goto out;
	tz = dtk_tz_load("Europe/Moscow", err, sizeof(err));
	if (!tz)
		fprintf(stderr, "note: %s; seasonal case runs in UTC\n", err);
	make_series(b);
	b->in.tz = tz;

	if (!as_json)
		printf("%-26s %14s %12s %10s  (history %d points, one thread)\n", "case", "points/s",
		       "ns/run", "speedup", N_POINTS);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const bench_case *bc = &cases[i];
		const dtk_detector_type *dt = dtk_detector_find(bc->type);
		dtk_value *params = dtk_json_parse(bc->params, strlen(bc->params), err, sizeof(err));
		void *c = NULL;
		if (!dt || !params || dt->compile(params, NULL, &c, err, sizeof(err)) != 0) {
			fprintf(stderr, "%s: %s\n", bc->name, err);
			dtk_value_free(&params);
			goto out;
		}
		double ours_score = 0, naive_score = 0;
		double ours = time_ours(dt, c, b, budget, &ours_score);
		double naive = time_naive(bc->baseline, b, budget, &naive_score);
		double pps = N_POINTS / ours, naive_pps = N_POINTS / naive;
		if (fabs(ours_score - naive_score) > 1e-6 * fabs(naive_score))
			fprintf(stderr, "warning: %s score %.17g differs from baseline %.17g\n",
				bc->name, ours_score, naive_score);
		if (as_json) {
			printf("{\"case\": \"%s\", \"points_per_s\": %.0f, \"ns_per_run\": %.0f, "
			       "\"baseline_points_per_s\": %.0f, \"baseline_ns_per_run\": %.0f, "
			       "\"speedup\": %.2f, \"history_points\": %d}\n",
			       bc->name, pps, ours * 1e9, naive_pps, naive * 1e9, naive / ours,
			       N_POINTS);
		} else {
			printf("%-26s %14.0f %12.0f %9.2fx\n", bc->name, pps, ours * 1e9, naive / ours);
			printf("%-26s %14.0f %12.0f\n", "  baseline", naive_pps, naive * 1e9);
		}
		dt->destroy(c);
		dtk_value_free(&params);
	}
	rc = sink == 12345.678 ? 2 : 0; /* keeps the results live */
out:
	dtk_tz_free(&tz);
	free(b);
	return rc;
}
