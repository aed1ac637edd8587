/* Every vector of tests/conformance/detectors.json (measured on DetectK's
 * Python implementation) against our detectors, ids and statistics. Each
 * section is one test; a failing section lists every mismatching vector. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "detect/detector.h"
#include "detect/stats.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/value.h"

#define REL_TOL 1e-9
#define ABS_TOL 1e-12
#define T0 1700000000 /* current point's timestamp; history is 10-minute steps before it */

static dtk_value *conformance;

typedef struct tally {
	const char *section;
	int vectors, failed;
} tally;

static void mismatch(tally *t, int idx, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void mismatch(tally *t, int idx, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "MISMATCH %s[%d]: ", t->section, idx);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

static void report(const tally *t)
{
	printf("conformance %s: %d/%d vectors pass\n", t->section, t->vectors - t->failed,
	       t->vectors);
	if (t->failed)
		fail_msg("%s: %d of %d vectors mismatch (listed above)", t->section, t->failed,
			 t->vectors);
}

static int load(void **state)
{
	const char *dir = getenv("DTK_SOURCE_DIR");
	char path[4096];
	snprintf(path, sizeof(path), "%s/tests/conformance/detectors.json", dir ? dir : ".");
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "cannot open %s (set DTK_SOURCE_DIR)\n", path);
		return -1;
	}
	dtk_buf b;
	dtk_buf_init(&b, 0);
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		dtk_buf_add(&b, chunk, n);
	fclose(f);
	char err[256];
	conformance = dtk_json_parse(b.data, b.len, err, sizeof(err));
	dtk_buf_free(&b);
	if (!conformance) {
		fprintf(stderr, "%s: %s\n", path, err);
		return -1;
	}
	return 0;
}

static int unload(void **state)
{
	dtk_value_free(&conformance);
	return 0;
}

static dtk_value *section(const char *name)
{
	dtk_value *v = dtk_value_map_get(conformance, name);
	assert_non_null(v);
	return v;
}

static double num(const dtk_value *v)
{
	double d = NAN;
	const char *s = dtk_value_cstr(v);
	if (s && strcmp(s, "inf") == 0)
		return INFINITY;
	if (s && strcmp(s, "-inf") == 0)
		return -INFINITY;
	dtk_value_number(v, &d);
	return d;
}

static int close_enough(double want, double got)
{
	if (isinf(want) || isinf(got))
		return want == got;
	if (isnan(want) || isnan(got))
		return isnan(want) && isnan(got);
	double diff = fabs(want - got);
	return diff <= ABS_TOL || diff <= REL_TOL * fmax(fabs(want), fabs(got));
}

/* An expected number or null (absent, NAN) against what we produced. */
static int check_num(tally *t, int idx, const char *what, const dtk_value *want, double got)
{
	double w = (!want || want->type == DTK_V_NULL) ? NAN : num(want);
	if (close_enough(w, got))
		return 1;
	mismatch(t, idx, "%s: want %.17g, got %.17g", what, w, got);
	return 0;
}

static double meta_num(const dtk_detection *d, const char *key)
{
	const dtk_value *v = dtk_value_map_get(d->metadata, key);
	double f = NAN;
	dtk_value_number(v, &f);
	return f;
}

/* Compares the expect map's keys (center, spread, lower, upper, is_anomaly,
 * direction, score, percent_deviation) with a detection. */
static int check_expect(tally *t, int idx, const dtk_value *expect, const dtk_detection *d)
{
	int ok = 1;
	if (d->skipped) {
		mismatch(t, idx, "skipped: %s", d->skipped);
		return 0;
	}
	for (size_t i = 0; i < expect->u.map.n; i++) {
		const char *key = dtk_value_cstr(expect->u.map.items[i].key);
		const dtk_value *want = expect->u.map.items[i].val;
		if (strcmp(key, "center") == 0 || strcmp(key, "spread") == 0)
			ok &= check_num(t, idx, key, want, meta_num(d, key));
		else if (strcmp(key, "lower") == 0)
			ok &= check_num(t, idx, key, want, d->lower_bound);
		else if (strcmp(key, "upper") == 0)
			ok &= check_num(t, idx, key, want, d->upper_bound);
		else if (strcmp(key, "score") == 0)
			ok &= check_num(t, idx, key, want, d->score);
		else if (strcmp(key, "percent_deviation") == 0)
			ok &= check_num(t, idx, key, want, d->percent_deviation);
		else if (strcmp(key, "is_anomaly") == 0) {
			if (!!dtk_value_truthy(want) != !!d->is_anomaly) {
				mismatch(t, idx, "is_anomaly: want %d, got %d", dtk_value_truthy(want),
					 d->is_anomaly);
				ok = 0;
			}
		} else if (strcmp(key, "direction") == 0) {
			const char *w = dtk_value_cstr(want);
			const char *g = d->direction;
			if ((w == NULL) != (g == NULL) || (w && strcmp(w, g) != 0)) {
				mismatch(t, idx, "direction: want %s, got %s", w ? w : "null",
					 g ? g : "null");
				ok = 0;
			}
		} else {
			mismatch(t, idx, "unknown expect key %s", key);
			ok = 0;
		}
	}
	return ok;
}

static void *compile_or_fail(const char *type, const dtk_value *params, tally *t, int idx)
{
	const dtk_detector_type *dt = dtk_detector_find(type);
	char err[512];
	void *c = NULL;
	if (!dt) {
		mismatch(t, idx, "no detector type %s", type);
		return NULL;
	}
	if (dt->compile(params, NULL, &c, err, sizeof(err)) != 0) {
		mismatch(t, idx, "compile failed: %s", err);
		return NULL;
	}
	return c;
}

/* History of 10-minute points ending just before T0. */
typedef struct series {
	size_t n;
	int64_t *ts;
	double *values;
	const dtk_value **ctx;
} series;

static void series_from(series *s, const dtk_value *list, size_t n)
{
	s->n = n;
	s->ts = calloc(n + 1, sizeof(*s->ts));
	s->values = calloc(n + 1, sizeof(*s->values));
	s->ctx = calloc(n + 1, sizeof(*s->ctx));
	for (size_t i = 0; i < n; i++) {
		s->ts[i] = T0 - (int64_t)(n - i) * 600;
		s->values[i] = list ? num(list->u.list.items[i]) : 100.0 + (double)i;
	}
}

static void series_free(series *s)
{
	free(s->ts);
	free(s->values);
	free(s->ctx);
}

static void run_detector(const char *type, void *c, const series *s, double value,
			 const dtk_value *context, dtk_detection *d)
{
	const dtk_detector_type *dt = dtk_detector_find(type);
	dtk_detect_input in = {0};
	in.ts = T0;
	in.value = value;
	in.context = context;
	in.history.n = s ? s->n : 0;
	in.history.ts = s ? s->ts : NULL;
	in.history.values = s ? s->values : NULL;
	in.history.context = s ? s->ctx : NULL;
	dtk_detection_init(d, "test", type);
	dt->run(c, &in, d);
}

static void test_conformance_weights(void **state)
{
	tally t = {"weights", 0, 0};
	const dtk_value *sec = section("weights");
	for (size_t i = 0; i < sec->u.list.n; i++) {
		const dtk_value *v = sec->u.list.items[i];
		size_t n = (size_t)num(dtk_value_map_get(v, "n"));
		const dtk_value *want = dtk_value_map_get(v, "weights");
		double *w = calloc(n, sizeof(*w));
		int ok = 1;
		t.vectors++;
		dtk_stats_weights(w, n, 1, num(dtk_value_map_get(v, "decay")));
		for (size_t k = 0; k < n; k++) {
			char what[32];
			snprintf(what, sizeof(what), "weights[%zu]", k);
			ok &= check_num(&t, (int)i, what, want->u.list.items[k], w[k]);
		}
		t.failed += !ok;
		free(w);
	}
	report(&t);
}

static double *helper_weights(const dtk_value *spec, size_t n)
{
	double *w = calloc(n, sizeof(*w));
	if (spec->type == DTK_V_STR)
		dtk_stats_weights(w, n, 0, 0);
	else
		for (size_t k = 0; k < n; k++)
			w[k] = num(spec->u.list.items[k]);
	return w;
}

static void test_conformance_helpers(void **state)
{
	tally t = {"helpers", 0, 0};
	const dtk_value *sec = section("helpers");
	for (size_t i = 0; i < sec->u.list.n; i++) {
		const dtk_value *v = sec->u.list.items[i];
		const char *fn = dtk_value_cstr(dtk_value_map_get(v, "fn"));
		const dtk_value *vals = dtk_value_map_get(v, "values");
		size_t n = vals->u.list.n;
		double *x = calloc(n, sizeof(*x));
		for (size_t k = 0; k < n; k++)
			x[k] = num(vals->u.list.items[k]);
		double *w = helper_weights(dtk_value_map_get(v, "weights"), n);
		dtk_stats_pair *pairs = calloc(2 * n, sizeof(*pairs));
		double median, mad, mean, std;
		int ok = 1;
		t.vectors++;
		dtk_stats_sort(x, w, n, pairs, pairs + n);
		dtk_stats_median_mad(pairs, n, &median, &mad);
		dtk_stats_mean_std(x, w, n, &mean, &std);
		if (strcmp(fn, "weighted_median") == 0) {
			ok &= check_num(&t, (int)i, "median", dtk_value_map_get(v, "expect"), median);
		} else if (strcmp(fn, "weighted_mad") == 0) {
			ok &= check_num(&t, (int)i, "median", dtk_value_map_get(v, "expect_median"),
					median);
			ok &= check_num(&t, (int)i, "mad_sigma",
					dtk_value_map_get(v, "expect_mad_sigma"), 1.4826 * mad);
		} else if (strcmp(fn, "weighted_mean_std") == 0) {
			ok &= check_num(&t, (int)i, "mean", dtk_value_map_get(v, "expect_mean"), mean);
			ok &= check_num(&t, (int)i, "std", dtk_value_map_get(v, "expect_std"), std);
		} else {
			mismatch(&t, (int)i, "unknown helper %s", fn);
			ok = 0;
		}
		t.failed += !ok;
		free(x);
		free(w);
		free(pairs);
	}
	report(&t);
}

static dtk_value *stat_params(const dtk_value *v)
{
	dtk_value *p = dtk_value_map();
	const dtk_value *uw = dtk_value_map_get(v, "use_weighted");
	const dtk_value *decay = dtk_value_map_get(v, "exp_decay_factor");
	if (uw)
		dtk_value_map_set(p, "use_weighted", dtk_value_copy(uw));
	if (decay)
		dtk_value_map_set(p, "exp_decay_factor", dtk_value_copy(decay));
	return p;
}

static void test_conformance_mad_zscore(void **state)
{
	tally t = {"mad_zscore", 0, 0};
	const dtk_value *sec = section("mad_zscore");
	for (size_t i = 0; i < sec->u.list.n; i++) {
		const dtk_value *v = sec->u.list.items[i];
		const char *type = dtk_value_cstr(dtk_value_map_get(v, "detector"));
		const dtk_value *hist = dtk_value_map_get(v, "history");
		dtk_value *params = stat_params(v);
		series s;
		dtk_detection d;
		t.vectors++;
		void *c = compile_or_fail(type, params, &t, (int)i);
		if (!c) {
			t.failed++;
			dtk_value_free(&params);
			continue;
		}
		series_from(&s, hist, hist->u.list.n);
		run_detector(type, c, &s, num(dtk_value_map_get(v, "value")), NULL, &d);
		t.failed += !check_expect(&t, (int)i, dtk_value_map_get(v, "expect"), &d);
		dtk_detection_clear(&d);
		dtk_detector_find(type)->destroy(c);
		series_free(&s);
		dtk_value_free(&params);
	}
	report(&t);
}

static void test_conformance_mad_zscore_errors(void **state)
{
	tally t = {"mad_zscore_errors", 0, 0};
	const dtk_value *sec = section("mad_zscore_errors");
	static const char *const types[] = {"mad", "zscore"};
	for (size_t i = 0; i < sec->u.list.n; i++) {
		const dtk_value *v = sec->u.list.items[i];
		size_t n = (size_t)num(dtk_value_map_get(v, "history_len"));
		const char *want = dtk_value_cstr(dtk_value_map_get(v, "expect_error_contains"));
		int ok = 1;
		t.vectors++;
		for (int k = 0; k < 2; k++) {
			series s;
			dtk_detection d;
			void *c = compile_or_fail(types[k], NULL, &t, (int)i);
			if (!c) {
				ok = 0;
				continue;
			}
			series_from(&s, NULL, n);
			run_detector(types[k], c, &s, 100.0, NULL, &d);
			if (!d.skipped || !strstr(d.skipped, want)) {
				mismatch(&t, (int)i, "%s: want skipped containing \"%s\", got %s",
					 types[k], want, d.skipped ? d.skipped : "(not skipped)");
				ok = 0;
			}
			dtk_detection_clear(&d);
			dtk_detector_find(types[k])->destroy(c);
			series_free(&s);
		}
		t.failed += !ok;
	}
	report(&t);
}

static void test_conformance_seasonal(void **state)
{
	tally t = {"seasonal", 0, 0};
	const dtk_value *sec = section("seasonal");
	const dtk_value *pairs = dtk_value_map_get(sec, "separate_pairs");
	const dtk_value *cases = dtk_value_map_get(sec, "cases");
	size_t n = pairs->u.list.n;
	series s;
	dtk_value **ctx = calloc(n, sizeof(*ctx));

	series_from(&s, NULL, n);
	for (size_t k = 0; k < n; k++) {
		const dtk_value *p = pairs->u.list.items[k];
		s.values[k] = num(p->u.list.items[0]);
		ctx[k] = dtk_value_map();
		dtk_value_map_set(ctx[k], "hour_of_day", dtk_value_copy(p->u.list.items[1]));
		s.ctx[k] = ctx[k];
	}
	for (size_t i = 0; i < cases->u.list.n; i++) {
		const dtk_value *v = cases->u.list.items[i];
		const char *type = dtk_value_cstr(dtk_value_map_get(v, "detector"));
		dtk_value *params = dtk_value_map();
		dtk_detection d;
		dtk_value_map_set(params, "use_weighted", dtk_value_bool(0));
		dtk_value_map_set(params, "seasonal_features",
				  dtk_value_copy(dtk_value_map_get(v, "features")));
		const dtk_value *comb = dtk_value_map_get(v, "use_combined_seasonality");
		if (comb)
			dtk_value_map_set(params, "use_combined_seasonality", dtk_value_copy(comb));
		t.vectors++;
		void *c = compile_or_fail(type, params, &t, (int)i);
		if (!c) {
			t.failed++;
			dtk_value_free(&params);
			continue;
		}
		run_detector(type, c, &s, num(dtk_value_map_get(v, "value")),
			     dtk_value_map_get(v, "context"), &d);
		t.failed += !check_expect(&t, (int)i, dtk_value_map_get(v, "expect"), &d);
		dtk_detection_clear(&d);
		dtk_detector_find(type)->destroy(c);
		dtk_value_free(&params);
	}
	for (size_t k = 0; k < n; k++)
		dtk_value_free(&ctx[k]);
	free(ctx);
	series_free(&s);
	report(&t);
}

static void test_conformance_threshold(void **state)
{
	tally t = {"threshold", 0, 0};
	const dtk_value *sec = section("threshold");
	for (size_t i = 0; i < sec->u.list.n; i++) {
		const dtk_value *v = sec->u.list.items[i];
		dtk_detection d;
		t.vectors++;
		void *c = compile_or_fail("threshold", dtk_value_map_get(v, "params"), &t, (int)i);
		if (!c) {
			t.failed++;
			continue;
		}
		run_detector("threshold", c, NULL, num(dtk_value_map_get(v, "value")), NULL, &d);
		t.failed += !check_expect(&t, (int)i, dtk_value_map_get(v, "expect"), &d);
		dtk_detection_clear(&d);
		dtk_detector_find("threshold")->destroy(c);
	}
	report(&t);
}

static void test_conformance_threshold_config_errors(void **state)
{
	tally t = {"threshold_config_errors", 0, 0};
	const dtk_value *sec = section("threshold_config_errors");
	const dtk_detector_type *dt = dtk_detector_find("threshold");
	for (size_t i = 0; i < sec->u.list.n; i++) {
		const dtk_value *v = sec->u.list.items[i];
		const char *want = dtk_value_cstr(dtk_value_map_get(v, "expect_error_contains"));
		char err[512] = "";
		void *c = NULL;
		t.vectors++;
		if (dt->compile(dtk_value_map_get(v, "params"), NULL, &c, err, sizeof(err)) == 0) {
			mismatch(&t, (int)i, "compiled, want an error containing \"%s\"", want);
			dt->destroy(c);
			t.failed++;
		} else if (!strstr(err, want)) {
			mismatch(&t, (int)i, "error \"%s\" lacks \"%s\"", err, want);
			t.failed++;
		}
	}
	report(&t);
}

static void test_conformance_missing_data(void **state)
{
	tally t = {"missing_data", 0, 0};
	const dtk_value *sec = section("missing_data");
	for (size_t i = 0; i < sec->u.list.n; i++) {
		const dtk_value *v = sec->u.list.items[i];
		const dtk_value *seq = dtk_value_map_get(v, "sequence");
		const dtk_value *want_anom = dtk_value_map_get(v, "expect_anomaly");
		const dtk_value *want_score = dtk_value_map_get(v, "expect_score");
		int ok = 1;
		int64_t prev = 0;
		t.vectors++;
		void *c = compile_or_fail("missing_data", dtk_value_map_get(v, "params"), &t, (int)i);
		if (!c) {
			t.failed++;
			continue;
		}
		for (size_t k = 0; k < seq->u.list.n; k++) {
			const dtk_value *item = seq->u.list.items[k];
			dtk_detect_input in = {0};
			dtk_detection d;
			in.ts = T0 + (int64_t)k * 600;
			in.is_missing = item->type == DTK_V_NULL;
			in.value = in.is_missing ? NAN : num(item);
			in.prev_missed = prev;
			dtk_detection_init(&d, "test", "missing_data");
			dtk_detector_find("missing_data")->run(c, &in, &d);
			prev = d.missed;
			if (want_anom && !!dtk_value_truthy(want_anom->u.list.items[k]) != !!d.is_anomaly) {
				mismatch(&t, (int)i, "step %zu: is_anomaly want %d, got %d", k,
					 dtk_value_truthy(want_anom->u.list.items[k]), d.is_anomaly);
				ok = 0;
			}
			if (want_score) {
				char what[32];
				snprintf(what, sizeof(what), "step %zu score", k);
				ok &= check_num(&t, (int)i, what, want_score->u.list.items[k], d.score);
			}
			dtk_detection_clear(&d);
		}
		t.failed += !ok;
		dtk_detector_find("missing_data")->destroy(c);
	}
	report(&t);
}

static void test_conformance_detector_ids(void **state)
{
	tally t = {"detector_ids", 0, 0};
	const dtk_value *sec = section("detector_ids");
	const dtk_value *cases = dtk_value_map_get(sec, "cases");
	const dtk_value *defaults = dtk_value_map_get(sec, "defaults");
	for (size_t i = 0; i < cases->u.list.n; i++) {
		const dtk_value *v = cases->u.list.items[i];
		const char *type = dtk_value_cstr(dtk_value_map_get(v, "type"));
		const char *want = dtk_value_cstr(dtk_value_map_get(v, "id"));
		char id[9];
		t.vectors++;
		if (dtk_detector_id(type, dtk_value_map_get(v, "params"), id) != 0 ||
		    strcmp(id, want) != 0) {
			mismatch(&t, (int)i, "%s id: want %s, got %s", type, want, id);
			t.failed++;
		}
	}
	for (size_t i = 0; i < defaults->u.map.n; i++) {
		const char *type = dtk_value_cstr(defaults->u.map.items[i].key);
		const dtk_detector_type *dt = dtk_detector_find(type);
		char err[256];
		t.vectors++;
		dtk_value *ours = dt ? dtk_json_parse(dt->id_defaults_json,
						      strlen(dt->id_defaults_json), err, sizeof(err))
				     : NULL;
		if (!ours || !dtk_value_equal(ours, defaults->u.map.items[i].val)) {
			mismatch(&t, (int)(cases->u.list.n + i), "%s id_defaults_json differs", type);
			t.failed++;
		}
		dtk_value_free(&ours);
	}
	report(&t);
}

/* http_extraction belongs to the http collector: tests/unit/test_http_extract.c
 * runs its vectors. */
static void test_conformance_has_no_unknown_sections(void **state)
{
	static const char *const known[] = {"about",	 "weights",	   "helpers",
					    "mad_zscore", "mad_zscore_errors", "seasonal",
					    "threshold", "threshold_config_errors", "missing_data",
					    "detector_ids", "http_extraction", NULL};
	for (size_t i = 0; i < conformance->u.map.n; i++) {
		const char *key = dtk_value_cstr(conformance->u.map.items[i].key);
		int found = 0;
		for (size_t k = 0; known[k]; k++)
			found |= strcmp(known[k], key) == 0;
		if (!found)
			fail_msg("section %s is not run by this test", key);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conformance_weights),
		cmocka_unit_test(test_conformance_helpers),
		cmocka_unit_test(test_conformance_mad_zscore),
		cmocka_unit_test(test_conformance_mad_zscore_errors),
		cmocka_unit_test(test_conformance_seasonal),
		cmocka_unit_test(test_conformance_threshold),
		cmocka_unit_test(test_conformance_threshold_config_errors),
		cmocka_unit_test(test_conformance_missing_data),
		cmocka_unit_test(test_conformance_detector_ids),
		cmocka_unit_test(test_conformance_has_no_unknown_sections),
	};
	return cmocka_run_group_tests(tests, load, unload);
}
