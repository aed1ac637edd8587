/* util/timeparse.c: every accepted form, offsets, the timezone param. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/timeparse.h"
#include "util/tz.h"

#define T1 INT64_C(1718451045) /* 2024-06-15T11:30:45Z */

static int64_t parse(const char *s, const dtk_tz *tz)
{
	char err[256] = "";
	int64_t t = 0;
	if (dtk_timeparse_text(s, strlen(s), tz, &t, err, sizeof(err)) != 0)
		fail_msg("'%s' did not parse: %s", s, err);
	return t;
}

static void test_timeparse_accepts_iso_with_t_or_space_and_truncates_fractions(void **state)
{
	assert_int_equal(parse("2024-06-15T11:30:45", NULL), T1);
	assert_int_equal(parse("2024-06-15 11:30:45", NULL), T1);
	assert_int_equal(parse("2024-06-15t11:30:45", NULL), T1);
	assert_int_equal(parse("2024-06-15T11:30:45.999999", NULL), T1);
	assert_int_equal(parse("2024-06-15 11:30:45,5", NULL), T1);
	assert_int_equal(parse("  2024-06-15T11:30:45  ", NULL), T1);
	assert_int_equal(parse("2024-06-15T11:30", NULL), T1 - 45);
}

static void test_timeparse_date_alone_is_midnight(void **state)
{
	assert_int_equal(parse("2024-06-15", NULL), INT64_C(1718409600));
	assert_int_equal(parse("2024-02-29", NULL), INT64_C(1709164800));
}

static void test_timeparse_integers_are_epoch_seconds(void **state)
{
	assert_int_equal(parse("1718451045", NULL), T1);
	assert_int_equal(parse("-60", NULL), -60);
	char err[128];
	int64_t t = 0;
	dtk_value *v = dtk_value_int(T1);
	assert_int_equal(dtk_timeparse_value(v, NULL, &t, err, sizeof(err)), 0);
	assert_int_equal(t, T1);
	dtk_value_free(&v);
	v = dtk_value_float(1718451045.75);
	assert_int_equal(dtk_timeparse_value(v, NULL, &t, err, sizeof(err)), 0);
	assert_int_equal(t, T1);
	dtk_value_free(&v);
}

static void test_timeparse_offsets_and_z_convert_to_utc(void **state)
{
	assert_int_equal(parse("2024-06-15T11:30:45Z", NULL), T1);
	assert_int_equal(parse("2024-06-15T11:30:45.123z", NULL), T1);
	assert_int_equal(parse("2024-06-15T13:30:45+02:00", NULL), T1);
	assert_int_equal(parse("2024-06-15T17:00:45+0530", NULL), T1);
	assert_int_equal(parse("2024-06-15T06:30:45-05", NULL), T1);
	assert_int_equal(parse("2024-06-15 13:30:45+02", NULL), T1);
	assert_int_equal(parse("2024-06-15 13:30:45 +02:00", NULL), T1);
}

static void test_timeparse_timezone_param_applies_only_without_offset(void **state)
{
	char err[256];
	dtk_tz *ny = dtk_tz_load("America/New_York", err, sizeof(err));
	if (!ny)
		fail_msg("tz: %s", err);
	/* EDT is UTC-4 in June, EST UTC-5 in January */
	assert_int_equal(parse("2024-06-15T07:30:45", ny), T1);
	assert_int_equal(parse("2024-01-15 00:00:00", ny), INT64_C(1705294800));
	assert_int_equal(parse("2024-06-15", ny), INT64_C(1718409600) + 4 * 3600);
	assert_int_equal(parse("2024-06-15T11:30:45Z", ny), T1);
	assert_int_equal(parse("2024-06-15T13:30:45+02:00", ny), T1);
	assert_int_equal(parse("1718451045", ny), T1);
	dtk_tz_free(&ny);
}

static void test_timeparse_rejects_malformed_text_quoting_it(void **state)
{
	static const char *bad[] = {
		"",		       "yesterday",	      "2024-13-01",	  "2024-02-30",
		"2024-06-15T25:00:00", "2024-06-15T11:60",    "2024-06-15T11",	  "24-06-15",
		"2024-06-15T11:30:45+2", "2024-06-15T11:30:45.", "2024-06-15X11:30", "0x10",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[256] = "";
		int64_t t;
		if (dtk_timeparse_text(bad[i], strlen(bad[i]), NULL, &t, err, sizeof(err)) == 0)
			fail_msg("'%s' parsed", bad[i]);
		assert_non_null(strstr(err, bad[i]));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timeparse_accepts_iso_with_t_or_space_and_truncates_fractions),
		cmocka_unit_test(test_timeparse_date_alone_is_midnight),
		cmocka_unit_test(test_timeparse_integers_are_epoch_seconds),
		cmocka_unit_test(test_timeparse_offsets_and_z_convert_to_utc),
		cmocka_unit_test(test_timeparse_timezone_param_applies_only_without_offset),
		cmocka_unit_test(test_timeparse_rejects_malformed_text_quoting_it),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
