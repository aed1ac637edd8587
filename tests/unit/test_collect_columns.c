/* collect/columns.c: mapping a generic result set to rows. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collect/columns.h"
#include "util/value.h"

#define PS INT64_C(1718451000) /* 2024-06-15T11:30:00Z */
#define PF (PS + 600)

static const dtk_collect_request req = {"m", PF, PS, PF, 600, "10 minutes", NULL, NULL};

/* Builds a result from names and cells given as JSON-ish shorthands:
 * "i:5", "f:1.5", "s:text", "n" (NULL). */
static void build(dtk_resultset *rs, size_t ncols, const char *const *names, size_t nrows,
		  const char *const *cells)
{
	char err[128];
	assert_int_equal(dtk_resultset_init(rs, ncols, names, err, sizeof(err)), 0);
	for (size_t r = 0; r < nrows; r++) {
		dtk_value **row = dtk_resultset_add_row(rs, err, sizeof(err));
		assert_non_null(row);
		for (size_t c = 0; c < ncols; c++) {
			const char *s = cells[r * ncols + c];
			if (s[0] == 'i')
				row[c] = dtk_value_int(strtoll(s + 2, NULL, 10));
			else if (s[0] == 'f')
				row[c] = dtk_value_float(strtod(s + 2, NULL));
			else if (s[0] == 's')
				row[c] = dtk_value_str(s + 2);
		}
	}
}

static void columns(dtk_columns *c, const char *ctx1, const char *tz)
{
	char err[256];
	dtk_value *p = dtk_value_map();
	if (ctx1) {
		dtk_value *l = dtk_value_list();
		dtk_value_list_push(l, dtk_value_str(ctx1));
		dtk_value_map_set(p, "context_columns", l);
	}
	if (tz)
		dtk_value_map_set_str(p, "timezone", tz);
	if (dtk_columns_compile(p, c, err, sizeof(err)) != 0)
		fail_msg("compile: %s", err);
	dtk_value_free(&p);
}

static int map(const dtk_columns *c, dtk_resultset *rs, dtk_rows *rows, char *err, size_t n)
{
	dtk_rows_init(rows);
	int rc = dtk_columns_map(c, rs, &req, rows, err, n);
	dtk_resultset_clear(rs);
	return rc;
}

static size_t n_warnings(const dtk_rows *rows)
{
	return rows->warnings ? rows->warnings->u.list.n : 0;
}

static void test_columns_are_matched_by_name_not_position(void **state)
{
	static const char *names[] = {"value", "period_time"};
	static const char *cells[] = {"f:7.5", "s:2024-06-15 11:40:00", "i:3",
				      "s:2024-06-15T11:30:00"};
	dtk_columns c;
	dtk_resultset rs;
	dtk_rows rows;
	char err[256];
	columns(&c, NULL, NULL);
	build(&rs, 2, names, 2, cells);
	assert_int_equal(map(&c, &rs, &rows, err, sizeof(err)), 0);
	assert_int_equal(rows.n, 2);
	/* oldest first */
	assert_int_equal(rows.rows[0].ts, PS);
	assert_true(rows.rows[0].value == 3.0);
	assert_int_equal(rows.rows[1].ts, PF);
	assert_true(rows.rows[1].value == 7.5);
	assert_int_equal(n_warnings(&rows), 1); /* 11:40 is period_finish itself: outside */
	dtk_rows_clear(&rows);
	dtk_columns_free(&c);
}

static void test_columns_missing_value_column_error_lists_columns(void **state)
{
	static const char *names[] = {"period_time", "cnt", "host"};
	static const char *cells[] = {"i:1718451000", "i:1", "s:a"};
	dtk_columns c;
	dtk_resultset rs;
	dtk_rows rows;
	char err[256] = "";
	columns(&c, NULL, NULL);
	build(&rs, 3, names, 1, cells);
	assert_int_equal(map(&c, &rs, &rows, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "'value'"));
	assert_non_null(strstr(err, "period_time, cnt, host"));
	dtk_rows_clear(&rows);
	dtk_columns_free(&c);
}

static void test_columns_null_value_is_missing(void **state)
{
	static const char *names[] = {"period_time", "value"};
	static const char *cells[] = {"i:1718451000", "n"};
	dtk_columns c;
	dtk_resultset rs;
	dtk_rows rows;
	char err[256];
	columns(&c, NULL, NULL);
	build(&rs, 2, names, 1, cells);
	assert_int_equal(map(&c, &rs, &rows, err, sizeof(err)), 0);
	assert_int_equal(rows.n, 1);
	assert_true(rows.rows[0].is_missing);
	assert_int_equal(rows.rows[0].ts, PS);
	dtk_rows_clear(&rows);
	dtk_columns_free(&c);
}

static void test_columns_nan_and_infinite_values_are_missing(void **state)
{
	static const char *names[] = {"period_time", "value"};
	static const char *cells[] = {"i:1718451000", "f:nan", "i:1718451060", "f:inf",
				      "i:1718451120", "s:-inf", "i:1718451180", "s: 2.5 "};
	dtk_columns c;
	dtk_resultset rs;
	dtk_rows rows;
	char err[256];
	columns(&c, NULL, NULL);
	build(&rs, 2, names, 4, cells);
	assert_int_equal(map(&c, &rs, &rows, err, sizeof(err)), 0);
	assert_int_equal(rows.n, 4);
	assert_true(rows.rows[0].is_missing);
	assert_true(rows.rows[1].is_missing);
	assert_true(rows.rows[2].is_missing);
	assert_false(rows.rows[3].is_missing);
	assert_true(rows.rows[3].value == 2.5);
	dtk_rows_clear(&rows);
	dtk_columns_free(&c);
}

static void test_columns_non_numeric_text_value_is_an_error(void **state)
{
	static const char *names[] = {"period_time", "value"};
	static const char *cells[] = {"i:1718451000", "s:12abc"};
	dtk_columns c;
	dtk_resultset rs;
	dtk_rows rows;
	char err[256] = "";
	columns(&c, NULL, NULL);
	build(&rs, 2, names, 1, cells);
	assert_int_equal(map(&c, &rs, &rows, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "non-numeric"));
	assert_non_null(strstr(err, "'12abc'"));
	dtk_rows_clear(&rows);
	dtk_columns_free(&c);
}

static void test_columns_timestamp_outside_period_becomes_period_finish_with_warning(void **state)
{
	static const char *names[] = {"period_time", "value"};
	static const char *cells[] = {"s:2024-06-14T00:00:00", "i:4", "s:2024-06-15T11:35:00Z",
				      "i:5"};
	dtk_columns c;
	dtk_resultset rs;
	dtk_rows rows;
	char err[256];
	columns(&c, NULL, NULL);
	build(&rs, 2, names, 2, cells);
	assert_int_equal(map(&c, &rs, &rows, err, sizeof(err)), 0);
	assert_int_equal(rows.n, 2);
	assert_int_equal(rows.rows[0].ts, PS + 300);
	assert_int_equal(rows.rows[1].ts, PF);
	assert_true(rows.rows[1].value == 4.0);
	assert_int_equal(n_warnings(&rows), 1);
	const char *w = rows.warnings->u.list.items[0]->u.str.s;
	assert_non_null(strstr(w, "outside the period"));
	assert_non_null(strstr(w, "2024-06-14T00:00:00"));
	dtk_rows_clear(&rows);
	dtk_columns_free(&c);
}

static void test_columns_single_column_is_the_value_at_period_finish(void **state)
{
	static const char *names[] = {"count(*)"};
	static const char *cells[] = {"i:42"};
	dtk_columns c;
	dtk_resultset rs;
	dtk_rows rows;
	char err[256];
	columns(&c, NULL, NULL);
	build(&rs, 1, names, 1, cells);
	assert_int_equal(map(&c, &rs, &rows, err, sizeof(err)), 0);
	assert_int_equal(rows.n, 1);
	assert_int_equal(rows.rows[0].ts, PF);
	assert_true(rows.rows[0].value == 42.0);
	assert_int_equal(n_warnings(&rows), 0);
	dtk_rows_clear(&rows);
	dtk_columns_free(&c);
}

static void test_columns_value_without_timestamp_column_is_at_period_finish(void **state)
{
	static const char *names[] = {"host", "value"};
	static const char *cells[] = {"s:a", "i:1", "s:b", "i:2"};
	dtk_columns c;
	dtk_resultset rs;
	dtk_rows rows;
	char err[256];
	columns(&c, NULL, NULL);
	build(&rs, 2, names, 2, cells);
	assert_int_equal(map(&c, &rs, &rows, err, sizeof(err)), 0);
	assert_int_equal(rows.n, 1);
	assert_int_equal(rows.rows[0].ts, PF);
	assert_true(rows.rows[0].value == 1.0);
	assert_int_equal(n_warnings(&rows), 1);
	dtk_rows_clear(&rows);
	dtk_columns_free(&c);
}

static void test_columns_context_columns_are_collected(void **state)
{
	static const char *names[] = {"period_time", "value", "region", "other"};
	static const char *cells[] = {"i:1718451000", "i:1", "s:eu", "i:9",
				      "i:1718451300", "i:2", "n",    "i:9"};
	dtk_columns c;
	dtk_resultset rs;
	dtk_rows rows;
	char err[256];
	columns(&c, "region", NULL);
	build(&rs, 4, names, 2, cells);
	assert_int_equal(map(&c, &rs, &rows, err, sizeof(err)), 0);
	assert_int_equal(rows.n, 2);
	assert_non_null(rows.rows[0].context);
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(rows.rows[0].context, "region")),
			    "eu");
	assert_null(dtk_value_map_get(rows.rows[0].context, "other"));
	assert_int_equal(dtk_value_map_get(rows.rows[1].context, "region")->type, DTK_V_NULL);
	dtk_rows_clear(&rows);
	dtk_columns_free(&c);
}

static void test_columns_timezone_param_reads_naive_timestamps_as_local(void **state)
{
	static const char *names[] = {"period_time", "value"};
	static const char *cells[] = {"s:2024-06-15 13:35:00", "i:1"};
	dtk_columns c;
	dtk_resultset rs;
	dtk_rows rows;
	char err[256];
	columns(&c, NULL, "Europe/Berlin");
	build(&rs, 2, names, 1, cells);
	assert_int_equal(map(&c, &rs, &rows, err, sizeof(err)), 0);
	assert_int_equal(rows.n, 1);
	assert_int_equal(rows.rows[0].ts, PS + 300);
	assert_int_equal(n_warnings(&rows), 0);
	dtk_rows_clear(&rows);
	dtk_columns_free(&c);
}

static void test_columns_no_rows_is_no_points(void **state)
{
	static const char *names[] = {"period_time", "value"};
	dtk_columns c;
	dtk_resultset rs;
	dtk_rows rows;
	char err[256];
	columns(&c, NULL, NULL);
	build(&rs, 2, names, 0, NULL);
	assert_int_equal(map(&c, &rs, &rows, err, sizeof(err)), 0);
	assert_int_equal(rows.n, 0);
	dtk_rows_clear(&rows);
	dtk_columns_free(&c);
}

static void test_columns_sqlite_connection_strings_give_paths(void **state)
{
	char path[256], err[256];
	assert_int_equal(dtk_db_sqlite_path("sqlite:///data/x.db", path, sizeof(path), err,
						 sizeof(err)),
			 0);
	assert_string_equal(path, "data/x.db");
	assert_int_equal(dtk_db_sqlite_path("sqlite:////var/x.db?timeout=5", path,
						 sizeof(path), err, sizeof(err)),
			 0);
	assert_string_equal(path, "/var/x.db");
	assert_int_equal(dtk_db_sqlite_path("sqlite://", path, sizeof(path), err, sizeof(err)),
			 -1);
	assert_int_equal(dtk_db_sqlite_path("postgresql://u:p@h/db", path, sizeof(path), err,
						 sizeof(err)),
			 -1);
	assert_null(strstr(err, "u:p"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_columns_are_matched_by_name_not_position),
		cmocka_unit_test(test_columns_missing_value_column_error_lists_columns),
		cmocka_unit_test(test_columns_null_value_is_missing),
		cmocka_unit_test(test_columns_nan_and_infinite_values_are_missing),
		cmocka_unit_test(test_columns_non_numeric_text_value_is_an_error),
		cmocka_unit_test(test_columns_timestamp_outside_period_becomes_period_finish_with_warning),
		cmocka_unit_test(test_columns_single_column_is_the_value_at_period_finish),
		cmocka_unit_test(test_columns_value_without_timestamp_column_is_at_period_finish),
		cmocka_unit_test(test_columns_context_columns_are_collected),
		cmocka_unit_test(test_columns_timezone_param_reads_naive_timestamps_as_local),
		cmocka_unit_test(test_columns_no_rows_is_no_points),
		cmocka_unit_test(test_columns_sqlite_connection_strings_give_paths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
