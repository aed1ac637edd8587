/* util/tz: TZif zones, POSIX footer rules, calendar fields, bad names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/tz.h"

static dtk_tz *load(const char *name)
{
	char err[256];
	dtk_tz *tz = dtk_tz_load(name, err, sizeof(err));
	if (!tz)
		fail_msg("%s: %s", name, err);
	return tz;
}

static void test_tz_utc_needs_no_file_and_has_zero_offset(void **state)
{
	dtk_tz *tz = load("UTC");
	assert_string_equal(dtk_tz_name(tz), "UTC");
	assert_int_equal(dtk_tz_offset(tz, 1719792000), 0);
	assert_int_equal(dtk_tz_offset(NULL, 1719792000), 0);
	assert_int_equal(dtk_tz_to_utc(tz, 1719792000), 1719792000);
	dtk_tz_free(&tz);
	assert_null(tz);
	tz = load("Etc/UTC");
	assert_int_equal(dtk_tz_offset(tz, 0), 0);
	dtk_tz_free(&tz);
}

static void test_tz_moscow_history_and_present(void **state)
{
	dtk_tz *tz = load("Europe/Moscow");
	assert_int_equal(dtk_tz_offset(tz, 1719792000), 10800);  /* 2024-07-01: MSK */
	assert_int_equal(dtk_tz_offset(tz, 1277942400), 14400);  /* 2010-07-01: MSD */
	assert_int_equal(dtk_tz_offset(tz, 1325376000), 14400);  /* 2012: permanent +4 */
	assert_int_equal(dtk_tz_offset(tz, -2208988800), 9017);  /* 1900: local mean time */
	dtk_calendar c;
	dtk_tz_calendar(tz, 1719792000, &c); /* 2024-07-01 03:00 MSK, a Monday */
	assert_int_equal(c.year, 2024);
	assert_int_equal(c.month, 7);
	assert_int_equal(c.day_of_month, 1);
	assert_int_equal(c.hour_of_day, 3);
	assert_int_equal(c.day_of_week, 0);
	assert_int_equal(c.is_weekend, 0);
	dtk_tz_free(&tz);
}

static void test_tz_new_york_switches_at_dst_boundaries(void **state)
{
	dtk_tz *tz = load("America/New_York");
	assert_int_equal(dtk_tz_offset(tz, 1710053999), -18000);
	assert_int_equal(dtk_tz_offset(tz, 1710054000), -14400);
	assert_int_equal(dtk_tz_offset(tz, 1730613599), -14400);
	assert_int_equal(dtk_tz_offset(tz, 1730613600), -18000);
	int64_t from, until;
	assert_int_equal(dtk_tz_offset_span(tz, 1720000000, &from, &until), -14400);
	assert_int_equal(from, 1710054000);
	assert_int_equal(until, 1730613600);

	dtk_calendar c;
	dtk_tz_calendar(tz, 1710054000, &c); /* 2024-03-10 03:00 EDT, a Sunday */
	assert_int_equal(c.hour_of_day, 3);
	assert_int_equal(c.minute_of_hour, 0);
	assert_int_equal(c.day_of_week, 6);
	assert_int_equal(c.is_weekend, 1);
	dtk_tz_calendar(tz, 1710053999, &c); /* one second earlier: 01:59:59 EST */
	assert_int_equal(c.hour_of_day, 1);
	assert_int_equal(c.minute_of_hour, 59);
	dtk_tz_free(&tz);
}

static void test_tz_rule_footer_covers_far_future(void **state)
{
	dtk_tz *tz = load("America/New_York");
	assert_int_equal(dtk_tz_offset(tz, 4118083200), -14400);  /* 2100-07-01 */
	assert_int_equal(dtk_tz_offset(tz, 10429430400), -14400); /* 2300-07-01 */
	assert_int_equal(dtk_tz_offset(tz, 10442649600), -18000); /* 2300-12-01 */
	dtk_tz_free(&tz);
	tz = load("Australia/Sydney"); /* southern hemisphere: DST spans new year */
	assert_int_equal(dtk_tz_offset(tz, 1705276800), 39600);
	assert_int_equal(dtk_tz_offset(tz, 1721001600), 36000);
	assert_int_equal(dtk_tz_offset(tz, 10415001600), 39600);
	assert_int_equal(dtk_tz_offset(tz, 10430640000), 36000);
	dtk_tz_free(&tz);
}

static void test_tz_to_utc_takes_earlier_when_ambiguous_and_shifts_gaps(void **state)
{
	dtk_tz *tz = load("America/New_York");
	/* 2024-11-03 01:30 happens twice: EDT first (05:30Z) */
	assert_int_equal(dtk_tz_to_utc(tz, 1730597400), 1730611800);
	/* 2024-03-10 02:30 does not exist: read with EST, 07:30Z */
	assert_int_equal(dtk_tz_to_utc(tz, 1710037800), 1710055800);
	/* an ordinary summer time */
	assert_int_equal(dtk_tz_to_utc(tz, 1719792000 - 14400), 1719792000);
	dtk_tz_free(&tz);
}

static void test_tz_rejects_bad_names_with_a_message(void **state)
{
	static const char *const bad[] = {"Nowhere/City", "../etc/passwd", "/etc/localtime",
					  "Europe/../../etc/passwd", "", "Europe/Moscow\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[256] = "";
		dtk_tz *tz = dtk_tz_load(bad[i], err, sizeof(err));
		assert_null(tz);
		assert_non_null(strstr(err, "time zone"));
	}
	char err[256];
	assert_null(dtk_tz_load("Nowhere/City", err, sizeof(err)));
	assert_non_null(strstr(err, "Nowhere/City"));
	assert_null(dtk_tz_load("zone.tab", err, sizeof(err))); /* a file, but not TZif */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tz_utc_needs_no_file_and_has_zero_offset),
		cmocka_unit_test(test_tz_moscow_history_and_present),
		cmocka_unit_test(test_tz_new_york_switches_at_dst_boundaries),
		cmocka_unit_test(test_tz_rule_footer_covers_far_future),
		cmocka_unit_test(test_tz_to_utc_takes_earlier_when_ambiguous_and_shifts_gaps),
		cmocka_unit_test(test_tz_rejects_bad_names_with_a_message),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
