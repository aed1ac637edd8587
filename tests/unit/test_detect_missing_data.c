/* detect/missing_data: the consecutive count, zeros, failed collections
 * and staleness. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "detect/detector.h"
#include "util/json.h"

#define T0 1719792000

static void *compile(const char *params_json)
{
	char err[512];
	void *c = NULL;
	dtk_value *p = dtk_json_parse(params_json, strlen(params_json), err, sizeof(err));
	assert_non_null(p);
	if (dtk_detector_find("missing_data")->compile(p, NULL, &c, err, sizeof(err)) != 0)
		fail_msg("%s: %s", params_json, err);
	dtk_value_free(&p);
	return c;
}

static void run(void *c, dtk_detect_input *in, dtk_detection *d)
{
	dtk_detection_init(d, "m", "missing_data");
	dtk_detector_find("missing_data")->run(c, in, d);
}

static void destroy(void *c)
{
	dtk_detector_find("missing_data")->destroy(c);
}

static void test_missing_count_grows_and_data_resets_it(void **state)
{
	void *c = compile("{\"consecutive_missing\": 2}");
	dtk_detect_input in = {.ts = T0, .is_missing = 1, .value = NAN};
	dtk_detection d;
	run(c, &in, &d);
	assert_int_equal(d.missed, 1);
	assert_false(d.is_anomaly);
	assert_true(d.score == 0.5);
	dtk_detection_clear(&d);
	in.prev_missed = 1;
	run(c, &in, &d);
	assert_int_equal(d.missed, 2);
	assert_true(d.is_anomaly);
	assert_string_equal(d.direction, "missing");
	dtk_value *n = dtk_value_map_get(d.metadata, "consecutive_missing");
	assert_int_equal(n->u.i, 2);
	dtk_detection_clear(&d);
	in.prev_missed = 2;
	in.is_missing = 0;
	in.value = 5;
	run(c, &in, &d);
	assert_int_equal(d.missed, 0);
	assert_false(d.is_anomaly);
	assert_null(d.direction);
	dtk_detection_clear(&d);
	destroy(c);
}

static void test_zero_counts_only_with_treat_zero_as_missing(void **state)
{
	dtk_detect_input in = {.ts = T0, .value = 0.0};
	dtk_detection d;
	void *c = compile("{}");
	run(c, &in, &d);
	assert_int_equal(d.missed, 0);
	dtk_detection_clear(&d);
	destroy(c);
	c = compile("{\"treat_zero_as_missing\": true}");
	run(c, &in, &d);
	assert_int_equal(d.missed, 1);
	assert_true(d.is_anomaly);
	dtk_detection_clear(&d);
	destroy(c);
}

static void test_failed_collection_counts_only_with_count_errors_as_missing(void **state)
{
	dtk_detect_input in = {.ts = T0, .value = NAN, .collect_failed = 1, .prev_missed = 3};
	dtk_detection d;
	void *c = compile("{\"consecutive_missing\": 3}");
	run(c, &in, &d);
	assert_int_equal(d.missed, 0);
	assert_false(d.is_anomaly);
	dtk_detection_clear(&d);
	destroy(c);
	c = compile("{\"consecutive_missing\": 3, \"count_errors_as_missing\": true}");
	run(c, &in, &d);
	assert_int_equal(d.missed, 4);
	assert_true(d.is_anomaly);
	dtk_detection_clear(&d);
	destroy(c);
}

static void test_staleness_flags_old_newest_point(void **state)
{
	void *c = compile("{\"max_staleness_minutes\": 15}");
	dtk_detect_input in = {.ts = T0, .value = 1.0, .period_finish = T0 + 600,
			       .has_newest = 1, .newest_ts = T0 + 600 - 20 * 60};
	dtk_detection d;
	run(c, &in, &d);
	assert_true(d.is_anomaly);
	assert_string_equal(d.direction, "stale");
	assert_true(fabs(d.score - 20.0 / 15.0) < 1e-12);
	double age;
	dtk_value_number(dtk_value_map_get(d.metadata, "staleness_minutes"), &age);
	assert_true(age == 20.0);
	const dtk_value *limit = dtk_value_map_get(d.metadata, "max_staleness_minutes");
	assert_int_equal(limit->type, DTK_V_INT); /* as configured: "limit 15", not 15.0 */
	assert_int_equal(limit->u.i, 15);
	dtk_detection_clear(&d);

	in.newest_ts = T0 + 600 - 10 * 60;
	run(c, &in, &d);
	assert_false(d.is_anomaly);
	assert_null(d.direction);
	dtk_detection_clear(&d);

	in.has_newest = 0; /* nothing stored yet: nothing to call stale */
	run(c, &in, &d);
	assert_false(d.is_anomaly);
	dtk_detection_clear(&d);
	destroy(c);
}

static void test_staleness_column_overrides_newest_point(void **state)
{
	void *c = compile("{\"max_staleness_minutes\": 30, \"staleness_column\": \"last_event\"}");
	dtk_value *ctx = dtk_value_map();
	dtk_value_map_set(ctx, "last_event", dtk_value_str("2024-07-01T00:00:00+01:00"));
	dtk_detect_input in = {.ts = T0, .value = 1.0, .period_finish = T0, .has_newest = 1,
			       .newest_ts = T0, .context = ctx};
	dtk_detection d;
	run(c, &in, &d); /* 23:00Z the day before: 60 minutes old */
	assert_true(d.is_anomaly);
	assert_string_equal(d.direction, "stale");
	assert_true(d.score == 2.0);
	dtk_detection_clear(&d);

	dtk_value_map_set(ctx, "last_event", dtk_value_int(T0 - 10 * 60));
	run(c, &in, &d);
	assert_false(d.is_anomaly);
	dtk_detection_clear(&d);

	dtk_value_map_del(ctx, "last_event"); /* absent: falls back to the newest point */
	in.newest_ts = T0 - 31 * 60;
	run(c, &in, &d);
	assert_true(d.is_anomaly);
	dtk_detection_clear(&d);
	dtk_value_free(&ctx);
	destroy(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_missing_count_grows_and_data_resets_it),
		cmocka_unit_test(test_zero_counts_only_with_treat_zero_as_missing),
		cmocka_unit_test(test_failed_collection_counts_only_with_count_errors_as_missing),
		cmocka_unit_test(test_staleness_flags_old_newest_point),
		cmocka_unit_test(test_staleness_column_overrides_newest_point),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
