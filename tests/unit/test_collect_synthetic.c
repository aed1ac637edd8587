/* collect/synthetic.c: determinism, seeds, anomaly windows, offsets. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "collect/collector.h"
#include "util/value.h"

#define T0 INT64_C(1718409600) /* 2024-06-15T00:00:00Z */

static dtk_value *params_noise(int64_t seed)
{
	dtk_value *p = dtk_value_map();
	dtk_value_map_set_num(p, "base", 100.0);
	dtk_value_map_set_num(p, "noise", 5.0);
	dtk_value_map_set_num(p, "daily_amplitude", 0.2);
	dtk_value_map_set_num(p, "weekly_amplitude", 0.1);
	dtk_value_map_set_num(p, "trend", 0.5);
	dtk_value_map_set_int(p, "seed", seed);
	return p;
}

static void *compile_ok(const dtk_value *p)
{
	const dtk_collector_type *t = dtk_collector_find("synthetic");
	char err[256] = "";
	void *c = NULL;
	assert_non_null(t);
	if (t->compile(p, NULL, &c, err, sizeof(err)) != 0)
		fail_msg("compile failed: %s", err);
	return c;
}

static void collect(void *c, int64_t exec, int64_t start, int64_t finish, int64_t interval,
		    dtk_rows *rows)
{
	const dtk_collector_type *t = dtk_collector_find("synthetic");
	char err[256] = "";
	dtk_collect_request req = {"m", exec, start, finish, interval, "10 minutes", NULL, NULL};
	dtk_rows_init(rows);
	if (t->collect(c, &req, rows, err, sizeof(err)) != 0)
		fail_msg("collect failed: %s", err);
}

static double value_at(void *c, int64_t t)
{
	dtk_rows rows;
	collect(c, t + 600, t, t + 600, 600, &rows);
	assert_int_equal(rows.n, 1);
	assert_int_equal(rows.rows[0].ts, t);
	double v = rows.rows[0].value;
	dtk_rows_clear(&rows);
	return v;
}

static void test_synthetic_same_params_and_time_give_same_value(void **state)
{
	dtk_value *p = params_noise(42);
	void *a = compile_ok(p), *b = compile_ok(p);
	for (int64_t k = 0; k < 50; k++) {
		int64_t t = T0 + k * 600;
		double va = value_at(a, t);
		assert_true(va == value_at(b, t));
		assert_true(va == value_at(a, t));
	}
	/* the slot's value does not depend on the period it is collected in */
	dtk_rows rows;
	collect(a, T0 + 86400, T0, T0 + 86400, 600, &rows);
	assert_int_equal(rows.n, 144);
	assert_true(rows.rows[7].ts == T0 + 7 * 600);
	assert_true(rows.rows[7].value == value_at(b, T0 + 7 * 600));
	dtk_rows_clear(&rows);
	dtk_collector_find("synthetic")->destroy(a);
	dtk_collector_find("synthetic")->destroy(b);
	dtk_value_free(&p);
}

static void test_synthetic_different_seed_gives_different_noise(void **state)
{
	dtk_value *p1 = params_noise(1), *p2 = params_noise(2);
	void *a = compile_ok(p1), *b = compile_ok(p2);
	int differ = 0;
	for (int64_t k = 0; k < 20; k++)
		differ += value_at(a, T0 + k * 600) != value_at(b, T0 + k * 600);
	assert_int_equal(differ, 20);
	dtk_collector_find("synthetic")->destroy(a);
	dtk_collector_find("synthetic")->destroy(b);
	dtk_value_free(&p1);
	dtk_value_free(&p2);
}

static void test_synthetic_without_noise_follows_the_formula(void **state)
{
	dtk_value *p = dtk_value_map();
	dtk_value_map_set_num(p, "base", 200.0);
	dtk_value_map_set_num(p, "daily_amplitude", 0.5);
	void *c = compile_ok(p);
	/* 06:00 UTC: sin(2*pi*6/24) = 1; days since 2024-01-01 with trend 0 */
	assert_true(fabs(value_at(c, T0 + 6 * 3600) - 300.0) < 1e-9);
	assert_true(fabs(value_at(c, T0) - 200.0) < 1e-9);
	dtk_collector_find("synthetic")->destroy(c);
	dtk_value_free(&p);
}

static dtk_value *window(const char *start, const char *end, double factor)
{
	dtk_value *w = dtk_value_map();
	dtk_value_map_set_str(w, "start", start);
	dtk_value_map_set_str(w, "end", end);
	dtk_value_map_set_num(w, "factor", factor);
	return w;
}

static void test_synthetic_anomaly_factor_applies_only_inside_its_window(void **state)
{
	dtk_value *p = dtk_value_map();
	dtk_value *list = dtk_value_list();
	/* 2024-06-15 01:00 to 02:00 */
	dtk_value_list_push(list, window("2024-06-15T01:00:00", "2024-06-15T02:00:00Z", 3.0));
	dtk_value_map_set(p, "anomalies", list);
	void *c = compile_ok(p);
	dtk_rows rows;
	collect(c, T0 + 4 * 3600, T0, T0 + 3 * 3600, 600, &rows);
	assert_int_equal(rows.n, 18);
	for (size_t i = 0; i < rows.n; i++) {
		int64_t t = rows.rows[i].ts;
		int inside = t >= T0 + 3600 && t < T0 + 7200;
		assert_true(fabs(rows.rows[i].value - (inside ? 300.0 : 100.0)) < 1e-9);
	}
	dtk_rows_clear(&rows);
	dtk_collector_find("synthetic")->destroy(c);
	dtk_value_free(&p);
}

static void test_synthetic_relative_offsets_count_from_the_execution_time(void **state)
{
	dtk_value *p = dtk_value_map();
	dtk_value *list = dtk_value_list();
	dtk_value_list_push(list, window("-30m", "-10m", 0.5));
	dtk_value_list_push(list, window("-10m", "now", 2.0));
	dtk_value_map_set(p, "anomalies", list);
	void *c = compile_ok(p);
	int64_t exec = T0 + 86400;
	dtk_rows rows;
	collect(c, exec, exec - 3600, exec, 600, &rows);
	assert_int_equal(rows.n, 6);
	for (size_t i = 0; i < rows.n; i++) {
		int64_t t = rows.rows[i].ts;
		int inside = t >= exec - 1800 && t < exec - 600;
		int last = t >= exec - 600;
		assert_true(fabs(rows.rows[i].value - (inside ? 50.0 : last ? 200.0 : 100.0)) < 1e-9);
	}
	dtk_rows_clear(&rows);
	/* the same slot, seen from a later execution time, is outside */
	collect(c, exec + 86400, exec - 1800, exec - 1200, 600, &rows);
	assert_true(fabs(rows.rows[0].value - 100.0) < 1e-9);
	dtk_rows_clear(&rows);
	dtk_collector_find("synthetic")->destroy(c);
	dtk_value_free(&p);
}

static void test_synthetic_missing_window_gives_missing_points(void **state)
{
	dtk_value *p = dtk_value_map();
	dtk_value *list = dtk_value_list();
	dtk_value *w = dtk_value_map();
	dtk_value_map_set_str(w, "start", "-20m");
	dtk_value_map_set_str(w, "end", "-10m");
	dtk_value_list_push(list, w);
	dtk_value_map_set(p, "missing", list);
	void *c = compile_ok(p);
	dtk_rows rows;
	collect(c, T0, T0 - 1800, T0, 600, &rows);
	assert_int_equal(rows.n, 3);
	assert_false(rows.rows[0].is_missing);
	assert_true(rows.rows[1].is_missing);
	assert_false(rows.rows[2].is_missing);
	dtk_rows_clear(&rows);
	dtk_collector_find("synthetic")->destroy(c);
	dtk_value_free(&p);
}

static void expect_compile_error(dtk_value *p, const char *want)
{
	const dtk_collector_type *t = dtk_collector_find("synthetic");
	char err[256] = "";
	void *c = NULL;
	assert_int_equal(t->compile(p, NULL, &c, err, sizeof(err)), -1);
	assert_null(c);
	if (!strstr(err, want))
		fail_msg("error '%s' lacks '%s'", err, want);
	dtk_value_free(&p);
}

static void test_synthetic_bad_params_fail_compile_naming_the_key(void **state)
{
	dtk_value *p = dtk_value_map();
	dtk_value_map_set_str(p, "base", "lots");
	expect_compile_error(p, "base: ");

	p = dtk_value_map();
	dtk_value_map_set_num(p, "seed", 1.5);
	expect_compile_error(p, "seed: ");

	p = dtk_value_map();
	dtk_value_map_set_str(p, "anomalies", "x");
	expect_compile_error(p, "anomalies: ");

	p = dtk_value_map();
	dtk_value *list = dtk_value_list();
	dtk_value *w = dtk_value_map();
	dtk_value_map_set_str(w, "start", "-1h");
	dtk_value_map_set_str(w, "end", "-0m");
	dtk_value_list_push(list, w);
	dtk_value_map_set(p, "anomalies", list);
	expect_compile_error(p, "anomalies[0].");

	p = dtk_value_map();
	list = dtk_value_list();
	dtk_value_list_push(list, window("yesterday", "-1h", 2.0));
	dtk_value_map_set(p, "anomalies", list);
	expect_compile_error(p, "anomalies[0].start: ");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_synthetic_same_params_and_time_give_same_value),
		cmocka_unit_test(test_synthetic_different_seed_gives_different_noise),
		cmocka_unit_test(test_synthetic_without_noise_follows_the_formula),
		cmocka_unit_test(test_synthetic_anomaly_factor_applies_only_inside_its_window),
		cmocka_unit_test(test_synthetic_relative_offsets_count_from_the_execution_time),
		cmocka_unit_test(test_synthetic_missing_window_gives_missing_points),
		cmocka_unit_test(test_synthetic_bad_params_fail_compile_naming_the_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
