/* util/interval: every unit spelling, short forms, windows, and errors that
 * quote the value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "util/interval.h"

static int64_t parse_ok(const char *text)
{
	char err[512];
	int64_t s = -1;
	if (dtk_interval_parse(text, &s, err, sizeof(err)) != 0)
		fail_msg("\"%s\" rejected: %s", text, err);
	return s;
}

static void test_interval_accepts_every_unit_spelling(void **state)
{
	assert_int_equal(parse_ok("1 second"), 1);
	assert_int_equal(parse_ok("45 seconds"), 45);
	assert_int_equal(parse_ok("1 minute"), 60);
	assert_int_equal(parse_ok("10 minutes"), 600);
	assert_int_equal(parse_ok("1 hour"), 3600);
	assert_int_equal(parse_ok("24 hours"), 86400);
	assert_int_equal(parse_ok("1 day"), 86400);
	assert_int_equal(parse_ok("30 days"), 2592000);
	assert_int_equal(parse_ok("1 week"), 604800);
	assert_int_equal(parse_ok("2 weeks"), 1209600);
	assert_int_equal(parse_ok("  7 days "), 604800);
}

static void test_interval_accepts_short_forms(void **state)
{
	assert_int_equal(parse_ok("30s"), 30);
	assert_int_equal(parse_ok("10min"), 600);
	assert_int_equal(parse_ok("10m"), 600);
	assert_int_equal(parse_ok("1h"), 3600);
	assert_int_equal(parse_ok("1d"), 86400);
	assert_int_equal(parse_ok("1w"), 604800);
}

static void test_interval_errors_quote_the_value(void **state)
{
	static const char *const bad[] = {"10 minuts", "1.5 hours", "ten minutes", "minutes",
					  "10",	       "-5 minutes", "0 minutes", "30 дней",
					  "10 minutes ago", "", "99999999999999999999 seconds",
					  "9223372036854775807 weeks"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[512] = "";
		int64_t s = 42;
		assert_int_equal(dtk_interval_parse(bad[i], &s, err, sizeof(err)), -1);
		char quoted[128];
		snprintf(quoted, sizeof(quoted), "\"%s\"", bad[i]);
		if (!strstr(err, quoted))
			fail_msg("error for %s does not quote it: %s", quoted, err);
		assert_int_equal(s, 42);
	}
}

static void test_window_integer_means_last_n_points(void **state)
{
	char err[512];
	int64_t secs, points;
	dtk_value *v = dtk_value_int(144);
	assert_int_equal(dtk_window_parse(v, &secs, &points, err, sizeof(err)), 0);
	assert_int_equal(points, 144);
	assert_int_equal(secs, 0);
	dtk_value_free(&v);

	v = dtk_value_str("7 days");
	assert_int_equal(dtk_window_parse(v, &secs, &points, err, sizeof(err)), 0);
	assert_int_equal(secs, 604800);
	assert_int_equal(points, 0);
	dtk_value_free(&v);
}

static void test_window_errors_quote_the_value(void **state)
{
	char err[512];
	int64_t secs, points;
	dtk_value *v = dtk_value_str("30 дней");
	assert_int_equal(dtk_window_parse(v, &secs, &points, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "\"30 дней\""));
	dtk_value_free(&v);

	v = dtk_value_int(0);
	assert_int_equal(dtk_window_parse(v, &secs, &points, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "0"));
	dtk_value_free(&v);

	v = dtk_value_float(1.5);
	assert_int_equal(dtk_window_parse(v, &secs, &points, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "1.5"));
	dtk_value_free(&v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_interval_accepts_every_unit_spelling),
		cmocka_unit_test(test_interval_accepts_short_forms),
		cmocka_unit_test(test_interval_errors_quote_the_value),
		cmocka_unit_test(test_window_integer_means_last_n_points),
		cmocka_unit_test(test_window_errors_quote_the_value),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
