/* detect/: zscore, mad and iqr edge cases, windows, seasonality, params. */
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
#include "util/json.h"
#include "util/tz.h"

#define T0 1719792000 /* 2024-07-01T00:00:00Z, a Monday */

typedef struct fixture {
	const dtk_detector_type *type;
	void *compiled;
	dtk_value *warnings;
	char err[512];
} fixture;

static dtk_value *json(const char *text)
{
	char err[256];
	dtk_value *v = dtk_json_parse(text, strlen(text), err, sizeof(err));
	if (!v)
		fail_msg("bad test JSON %s: %s", text, err);
	return v;
}

/* Compiles type with params given as JSON; returns the compile result. */
static int compile(fixture *f, const char *type, const char *params_json, const char *const *cols,
		   size_t ncols)
{
	dtk_value *params = json(params_json);
	f->type = dtk_detector_find(type);
	assert_non_null(f->type);
	f->warnings = dtk_value_list();
	dtk_detector_env env = {cols, ncols, f->warnings};
	f->compiled = NULL;
	f->err[0] = '\0';
	int rc = f->type->compile(params, &env, &f->compiled, f->err, sizeof(f->err));
	dtk_value_free(&params);
	return rc;
}

static void release(fixture *f)
{
	if (f->compiled)
		f->type->destroy(f->compiled);
	f->compiled = NULL;
	dtk_value_free(&f->warnings);
}

static void compile_ok(fixture *f, const char *type, const char *params_json)
{
	if (compile(f, type, params_json, NULL, 0) != 0)
		fail_msg("%s %s: %s", type, params_json, f->err);
}

/* n points every step seconds ending step before T0. */
typedef struct series {
	size_t n;
	int64_t ts[512];
	double values[512];
	const dtk_value *ctx[512];
} series;

static void series_fill(series *s, size_t n, int64_t step, const double *values)
{
	memset(s, 0, sizeof(*s));
	s->n = n;
	for (size_t i = 0; i < n; i++) {
		s->ts[i] = T0 - (int64_t)(n - i) * step;
		s->values[i] = values ? values[i] : 100.0;
	}
}

static void run(const fixture *f, const series *s, double value, const dtk_value *ctx,
		const dtk_tz *tz, dtk_detection *d)
{
	dtk_detect_input in = {0};
	in.ts = T0;
	in.value = value;
	in.context = ctx;
	in.tz = tz;
	in.history.n = s->n;
	in.history.ts = s->ts;
	in.history.values = s->values;
	in.history.context = s->ctx;
	dtk_detection_init(d, "t", f->type->name);
	f->type->run(f->compiled, &in, d);
}

static double meta(const dtk_detection *d, const char *key)
{
	double v = NAN;
	dtk_value_number(dtk_value_map_get(d->metadata, key), &v);
	return v;
}

static void test_zscore_zero_spread_scores_zero_at_center_and_infinity_elsewhere(void **state)
{
	fixture f;
	series s;
	dtk_detection d;
	compile_ok(&f, "zscore", "{}");
	series_fill(&s, 20, 600, NULL);

	run(&f, &s, 100.0, NULL, NULL, &d);
	assert_null(d.skipped);
	assert_false(d.is_anomaly);
	assert_true(d.score == 0.0);
	assert_true(meta(&d, "spread") == 0.0);
	assert_true(d.lower_bound == d.upper_bound);
	dtk_detection_clear(&d);

	run(&f, &s, 100.5, NULL, NULL, &d);
	assert_true(d.is_anomaly);
	assert_true(isinf(d.score));
	assert_string_equal(d.direction, "up");
	dtk_detection_clear(&d);

	run(&f, &s, 99.0, NULL, NULL, &d);
	assert_true(isinf(d.score));
	assert_string_equal(d.direction, "down");
	assert_true(fabs(d.percent_deviation - (-1.0)) < 1e-9);
	dtk_detection_clear(&d);
	release(&f);
}

static void test_mad_zero_center_has_no_percent_deviation(void **state)
{
	fixture f;
	series s;
	dtk_detection d;
	double v[4] = {0, 0, 0, 1};
	compile_ok(&f, "mad", "{\"use_weighted\": false}");
	series_fill(&s, 4, 600, v);
	run(&f, &s, 5.0, NULL, NULL, &d);
	assert_true(isinf(d.score));
	assert_true(d.is_anomaly);
	assert_true(isnan(d.percent_deviation));
	dtk_detection_clear(&d);
	release(&f);
}

static void test_min_samples_skips_with_counts_in_message(void **state)
{
	fixture f;
	series s;
	dtk_detection d;
	compile_ok(&f, "mad", "{\"min_samples\": 5}");
	series_fill(&s, 4, 600, NULL);
	run(&f, &s, 100.0, NULL, NULL, &d);
	assert_non_null(d.skipped);
	assert_non_null(strstr(d.skipped, "Insufficient data"));
	assert_non_null(strstr(d.skipped, "4 points (minimum 5 required)"));
	assert_false(d.is_anomaly);
	assert_true(isnan(d.score));
	dtk_detection_clear(&d);
	release(&f);

	compile_ok(&f, "zscore", "{\"min_samples\": 1}");
	series_fill(&s, 1, 600, NULL);
	run(&f, &s, 100.0, NULL, NULL, &d);
	assert_null(d.skipped);
	dtk_detection_clear(&d);
	release(&f);
}

static void test_integer_window_size_uses_last_n_points(void **state)
{
	fixture f;
	series s;
	dtk_detection d;
	double v[30];
	for (int i = 0; i < 30; i++)
		v[i] = i < 20 ? 1000.0 : 10.0 + i % 3;
	compile_ok(&f, "mad", "{\"window_size\": 10, \"use_weighted\": false}");
	int64_t secs, points;
	f.type->window(f.compiled, &secs, &points);
	assert_int_equal(points, 10);
	assert_int_equal(secs, 0);
	series_fill(&s, 30, 600, v);
	run(&f, &s, 11.0, NULL, NULL, &d);
	assert_true(meta(&d, "window_points") == 10);
	assert_true(meta(&d, "median") == 11.0);
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(d.metadata, "window_size")), "10");
	dtk_detection_clear(&d);
	release(&f);
}

static void test_time_window_includes_its_start_and_excludes_current_point(void **state)
{
	fixture f;
	series s;
	dtk_detection d;
	compile_ok(&f, "zscore", "{\"window_size\": \"1 hour\", \"use_weighted\": false}");
	memset(&s, 0, sizeof(s));
	/* t-3601 (outside), t-3600 (window start, inside), t-1800, t-600, t (current), t+600 */
	int64_t ts[6] = {T0 - 3601, T0 - 3600, T0 - 1800, T0 - 600, T0, T0 + 600};
	double vals[6] = {1e6, 10, 20, 30, 5e5, 7e5};
	s.n = 6;
	memcpy(s.ts, ts, sizeof(ts));
	memcpy(s.values, vals, sizeof(vals));
	run(&f, &s, 20.0, NULL, NULL, &d);
	assert_null(d.skipped);
	assert_true(meta(&d, "window_points") == 3);
	assert_true(fabs(meta(&d, "mean") - 20.0) < 1e-12);
	dtk_detection_clear(&d);
	release(&f);
}

static void test_missing_value_is_skipped_not_scored(void **state)
{
	fixture f;
	series s;
	dtk_detection d;
	compile_ok(&f, "mad", "{}");
	series_fill(&s, 10, 600, NULL);
	dtk_detect_input in = {0};
	in.ts = T0;
	in.value = NAN;
	in.is_missing = 1;
	in.history.n = s.n;
	in.history.ts = s.ts;
	in.history.values = s.values;
	dtk_detection_init(&d, "t", "mad");
	f.type->run(f.compiled, &in, &d);
	assert_non_null(d.skipped);
	assert_non_null(strstr(d.skipped, "missing"));
	assert_false(d.is_anomaly);
	dtk_detection_clear(&d);
	release(&f);
}

static void test_no_history_is_skipped_as_no_historical_data(void **state)
{
	fixture f;
	series s;
	dtk_detection d;
	compile_ok(&f, "iqr", "{}");
	series_fill(&s, 0, 600, NULL);
	run(&f, &s, 1.0, NULL, NULL, &d);
	assert_non_null(d.skipped);
	assert_non_null(strstr(d.skipped, "No historical data"));
	dtk_detection_clear(&d);
	release(&f);
}

/* Context rows: (region, tier, value) x 3 each. */
static void seasonal_series(series *s, dtk_value **ctx)
{
	static const char *const regions[] = {"eu", "eu", "us", "us", "EU"};
	static const int tiers[] = {1, 2, 1, 2, 2};
	static const double vals[] = {10, 20, 30, 1000, 500};
	series_fill(s, 15, 600, NULL);
	for (int i = 0; i < 15; i++) {
		int g = i % 5;
		ctx[i] = dtk_value_map();
		dtk_value_map_set(ctx[i], "region", dtk_value_str(regions[g]));
		dtk_value_map_set(ctx[i], "tier", dtk_value_int(tiers[g]));
		s->values[i] = vals[g];
		s->ctx[i] = ctx[i];
	}
}

static void test_seasonal_union_keeps_any_match_and_combined_keeps_all(void **state)
{
	static const char *const cols[] = {"region", "tier"};
	fixture f;
	series s;
	dtk_detection d;
	dtk_value *ctx[15];
	seasonal_series(&s, ctx);
	/* tier 1.0 equals stored 1; "eu" does not equal "EU" */
	dtk_value *cur = json("{\"region\": \"eu\", \"tier\": 1.0}");

	assert_int_equal(compile(&f, "mad",
				 "{\"use_weighted\": false, \"seasonal_features\": [\"region\", "
				 "\"tier\"], \"use_combined_seasonality\": true}",
				 cols, 2),
			 0);
	run(&f, &s, 10.0, cur, NULL, &d);
	assert_null(d.skipped);
	assert_true(meta(&d, "median") == 10.0); /* only (eu, 1) */
	dtk_detection_clear(&d);
	release(&f);

	assert_int_equal(compile(&f, "mad",
				 "{\"use_weighted\": false, \"seasonal_features\": [\"region\", "
				 "\"tier\"]}",
				 cols, 2),
			 0);
	run(&f, &s, 10.0, cur, NULL, &d);
	/* (eu,1) (eu,2) (us,1): 10 x3, 20 x3, 30 x3 -> median 20 */
	assert_true(meta(&d, "median") == 20.0);
	assert_true(meta(&d, "window_points") == 15);
	dtk_detection_clear(&d);
	release(&f);

	dtk_value_free(&cur);
	for (int i = 0; i < 15; i++)
		dtk_value_free(&ctx[i]);
}

static void test_seasonal_calendar_features_use_the_metric_timezone(void **state)
{
	fixture f;
	series s;
	dtk_detection d;
	char err[256];
	dtk_tz *msk = dtk_tz_load("Europe/Moscow", err, sizeof(err));
	assert_non_null(msk);
	/* 72 hourly points; value = 10 x local (Moscow) hour */
	series_fill(&s, 72, 3600, NULL);
	for (int i = 0; i < 72; i++)
		s.values[i] = 10.0 * (double)(((s.ts[i] + 3 * 3600) % 86400) / 3600);
	compile_ok(&f, "mad", "{\"use_weighted\": false, \"seasonal_features\": [\"hour_of_day\"]}");
	run(&f, &s, 30.0, NULL, msk, &d); /* T0 is 03:00 in Moscow */
	assert_null(d.skipped);
	assert_true(meta(&d, "median") == 30.0);
	assert_true(meta(&d, "mad_sigma") == 0.0);
	assert_false(d.is_anomaly);
	dtk_detection_clear(&d);
	release(&f);

	/* combined day_of_week + is_weekend: Monday points only */
	compile_ok(&f, "zscore",
		   "{\"use_weighted\": false, \"seasonal_features\": [\"day_of_week\", "
		   "\"is_weekend\"], \"use_combined_seasonality\": true}");
	series_fill(&s, 96, 3600, NULL);
	for (int i = 0; i < 96; i++)
		s.values[i] = (s.ts[i] >= T0 - 3 * 3600) ? 7.0 : 1.0; /* Monday 00:00 Moscow = T0-3h */
	run(&f, &s, 7.0, NULL, msk, &d);
	assert_null(d.skipped);
	assert_true(fabs(meta(&d, "mean") - 7.0) < 1e-12);
	assert_true(meta(&d, "std") == 0.0);
	dtk_detection_clear(&d);
	/* in UTC, T0 is the first Monday instant: no Monday history at all */
	run(&f, &s, 7.0, NULL, NULL, &d);
	assert_non_null(d.skipped);
	assert_non_null(strstr(d.skipped, "No historical data found for seasonal group"));
	assert_non_null(strstr(d.skipped, "day_of_week=0"));
	dtk_detection_clear(&d);
	release(&f);
	dtk_tz_free(&msk);
}

static void test_seasonal_context_column_overrides_calendar_with_a_note(void **state)
{
	static const char *const cols[] = {"hour_of_day"};
	fixture f;
	series s;
	dtk_detection d;
	dtk_value *ctx[10];
	series_fill(&s, 10, 600, NULL);
	for (int i = 0; i < 10; i++) {
		ctx[i] = dtk_value_map();
		dtk_value_map_set(ctx[i], "hour_of_day", dtk_value_int(i % 2 ? 5 : 6));
		s.values[i] = i % 2 ? 50.0 : 60.0;
		s.ctx[i] = ctx[i];
	}
	dtk_value *cur = json("{\"hour_of_day\": 5}");
	assert_int_equal(compile(&f, "mad",
				 "{\"use_weighted\": false, \"seasonal_features\": [\"hour_of_day\"]}",
				 cols, 1),
			 0);
	assert_int_equal(f.warnings->u.list.n, 1);
	assert_non_null(strstr(dtk_value_cstr(f.warnings->u.list.items[0]), "overrides"));
	run(&f, &s, 50.0, cur, NULL, &d);
	assert_true(meta(&d, "median") == 50.0);
	dtk_detection_clear(&d);

	/* the current point lacks a context-only feature: skipped, not guessed */
	release(&f);
	static const char *const cols2[] = {"region"};
	assert_int_equal(compile(&f, "mad", "{\"seasonal_features\": [\"region\"]}", cols2, 1), 0);
	run(&f, &s, 50.0, cur, NULL, &d);
	assert_non_null(d.skipped);
	assert_non_null(strstr(d.skipped, "region"));
	dtk_detection_clear(&d);
	release(&f);
	dtk_value_free(&cur);
	for (int i = 0; i < 10; i++)
		dtk_value_free(&ctx[i]);
}

static void test_seasonal_dict_form_is_accepted_with_a_warning(void **state)
{
	fixture f;
	assert_int_equal(compile(&f, "zscore",
				 "{\"seasonal_features\": [{\"name\": \"hour_of_day\", "
				 "\"expression\": \"toHour(timestamp)\"}]}",
				 NULL, 0),
			 0);
	assert_int_equal(f.warnings->u.list.n, 1);
	assert_non_null(strstr(dtk_value_cstr(f.warnings->u.list.items[0]), "not evaluated"));
	release(&f);
}

static void test_iqr_fences_and_zero_iqr(void **state)
{
	fixture f;
	series s;
	dtk_detection d;
	double v[8] = {8, 1, 7, 2, 6, 3, 5, 4};
	compile_ok(&f, "iqr", "{\"use_weighted\": false}");
	series_fill(&s, 8, 600, v);
	run(&f, &s, 13.0, NULL, NULL, &d);
	assert_true(meta(&d, "q1") == 2.0);
	assert_true(meta(&d, "q3") == 6.0);
	assert_true(meta(&d, "iqr") == 4.0);
	assert_true(d.lower_bound == -4.0 && d.upper_bound == 12.0);
	assert_true(d.is_anomaly);
	assert_string_equal(d.direction, "up");
	assert_true(fabs(d.score - 1.75) < 1e-12);
	dtk_detection_clear(&d);
	run(&f, &s, 12.0, NULL, NULL, &d);
	assert_false(d.is_anomaly);
	dtk_detection_clear(&d);
	run(&f, &s, 4.0, NULL, NULL, &d);
	assert_true(d.score == 0.0);
	dtk_detection_clear(&d);

	series_fill(&s, 8, 600, NULL);
	run(&f, &s, 100.0, NULL, NULL, &d);
	assert_false(d.is_anomaly);
	dtk_detection_clear(&d);
	run(&f, &s, 100.5, NULL, NULL, &d);
	assert_true(d.is_anomaly);
	assert_true(isinf(d.score));
	dtk_detection_clear(&d);
	release(&f);
}

static void expect_error(const char *type, const char *params, const char *key, const char *text)
{
	fixture f;
	if (compile(&f, type, params, NULL, 0) == 0)
		fail_msg("%s %s compiled, expected an error about %s", type, params, key);
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "%s: ", key);
	if (strncmp(f.err, prefix, strlen(prefix)) != 0 || !strstr(f.err, text))
		fail_msg("%s %s: error \"%s\" lacks \"%s...%s\"", type, params, f.err, prefix, text);
	release(&f);
}

static void test_param_errors_name_the_param(void **state)
{
	expect_error("mad", "{\"n_sigma\": 0}", "n_sigma", "> 0");
	expect_error("zscore", "{\"n_sigma\": -1.5}", "n_sigma", "> 0");
	expect_error("zscore", "{\"n_sigma\": \"3\"}", "n_sigma", "number");
	expect_error("mad", "{\"exp_decay_factor\": 0}", "exp_decay_factor", "> 0");
	expect_error("mad", "{\"window_size\": \"30 дней\"}", "window_size", "\"30 дней\"");
	expect_error("zscore", "{\"window_size\": \"10 minuts\"}", "window_size", "\"10 minuts\"");
	expect_error("mad", "{\"window_size\": 0}", "window_size", "0");
	expect_error("mad", "{\"seasonal_features\": [\"hour_of_year\"]}", "seasonal_features",
		     "hour_of_year");
	expect_error("mad", "{\"seasonal_features\": \"hour_of_day\"}", "seasonal_features", "list");
	expect_error("mad", "{\"use_weighted\": \"yes\"}", "use_weighted", "true or false");
	expect_error("iqr", "{\"min_samples\": 0}", "min_samples", ">= 1");
	expect_error("iqr", "{\"threshold\": 0}", "threshold", "> 0");
	expect_error("threshold", "{}", "threshold", "required");
	expect_error("threshold", "{\"threshold\": 1, \"tolerance\": -1}", "tolerance", ">= 0");
	expect_error("threshold", "{\"threshold\": 1, \"operator\": 5}", "operator",
		     "Invalid operator");
	expect_error("missing_data", "{\"consecutive_missing\": 0}", "consecutive_missing", ">= 1");
	expect_error("missing_data", "{\"max_staleness_minutes\": 0}", "max_staleness_minutes",
		     "> 0");
}

static int listed(const char *const *known, const char *name)
{
	for (size_t i = 0; known && known[i]; i++)
		if (strcmp(known[i], name) == 0)
			return 1;
	return 0;
}

static void test_known_params_list_what_compile_reads_and_unknown_keys_compile(void **state)
{
	static const char *const stat[] = {"window_size", "use_weighted", "exp_decay_factor",
					   "seasonal_features", "use_combined_seasonality",
					   "min_samples", NULL};
	const char *const *types[] = {(const char *const[]){"zscore", "n_sigma", NULL},
				      (const char *const[]){"mad", "n_sigma", NULL},
				      (const char *const[]){"iqr", "threshold", NULL}};
	for (size_t t = 0; t < 3; t++) {
		const dtk_detector_type *dt = dtk_detector_find(types[t][0]);
		assert_true(listed(dt->known_params, types[t][1]));
		for (size_t i = 0; stat[i]; i++)
			assert_true(listed(dt->known_params, stat[i]));
	}
	assert_true(listed(dtk_detector_find("threshold")->known_params, "tolerance"));
	assert_true(listed(dtk_detector_find("missing_data")->known_params, "staleness_column"));

	/* unknown keys are the config loader's warning (known_params), not an error */
	fixture f;
	compile_ok(&f, "zscore", "{\"n_sigmas\": 4}");
	assert_int_equal(f.warnings->u.list.n, 0);
	assert_false(listed(f.type->known_params, "n_sigmas"));
	release(&f);
}

static void test_registry_lists_every_detector_and_ids_need_a_known_type(void **state)
{
	const dtk_detector_type *const *all = dtk_detector_types();
	static const char *const names[] = {"threshold", "zscore", "mad", "iqr", "missing_data"};
	size_t n = 0;
	while (all[n])
		n++;
	assert_int_equal(n, 5);
	for (size_t i = 0; i < 5; i++) {
		assert_ptr_equal(dtk_detector_find(names[i]), all[i]);
		assert_non_null(all[i]->summary);
	}
	assert_null(dtk_detector_find("prophet"));
	char id[9];
	assert_int_equal(dtk_detector_id("prophet", NULL, id), -1);
	assert_int_equal(dtk_detector_id("mad", NULL, id), 0);
	assert_string_equal(id, "1743b356"); /* same as {} */
	/* 3 == 3.0 and True == 1: both dropped as defaults */
	dtk_value *p = json("{\"n_sigma\": 3, \"use_weighted\": 1, \"window_size\": \"30 days\"}");
	assert_int_equal(dtk_detector_id("mad", p, id), 0);
	assert_string_equal(id, "a2b640f6");
	dtk_value_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_zscore_zero_spread_scores_zero_at_center_and_infinity_elsewhere),
		cmocka_unit_test(test_mad_zero_center_has_no_percent_deviation),
		cmocka_unit_test(test_min_samples_skips_with_counts_in_message),
		cmocka_unit_test(test_integer_window_size_uses_last_n_points),
		cmocka_unit_test(test_time_window_includes_its_start_and_excludes_current_point),
		cmocka_unit_test(test_missing_value_is_skipped_not_scored),
		cmocka_unit_test(test_no_history_is_skipped_as_no_historical_data),
		cmocka_unit_test(test_seasonal_union_keeps_any_match_and_combined_keeps_all),
		cmocka_unit_test(test_seasonal_calendar_features_use_the_metric_timezone),
		cmocka_unit_test(test_seasonal_context_column_overrides_calendar_with_a_note),
		cmocka_unit_test(test_seasonal_dict_form_is_accepted_with_a_warning),
		cmocka_unit_test(test_iqr_fences_and_zero_iqr),
		cmocka_unit_test(test_param_errors_name_the_param),
		cmocka_unit_test(test_known_params_list_what_compile_reads_and_unknown_keys_compile),
		cmocka_unit_test(test_registry_lists_every_detector_and_ids_need_a_known_type),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
