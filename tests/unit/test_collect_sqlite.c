/* collect/sqlite.c: the `sqlite` and `sql` collectors over SQLite files. */
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "collect/collector.h"
#include "db/db.h"
#include "util/value.h"

#define PS INT64_C(1718451000) /* 2024-06-15T11:30:00Z */
#define PF (PS + 600)

static const char *const good_query =
	"SELECT ts AS period_time, v AS value, region FROM points "
	"WHERE ts >= '{{ period_start }}' AND ts < '{{period_finish}}' ORDER BY ts DESC";

static char tmpdir[256], dbpath[320];

static void exec_sql(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	char *msg = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("sql: %s", msg);
	sqlite3_close(db);
}

static int setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/dtk-sqlsrc-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(dbpath, sizeof(dbpath), "%s/src.db", tmpdir);
	exec_sql(dbpath, "CREATE TABLE points (ts TEXT, v, region TEXT);"
			 "INSERT INTO points VALUES ('2024-06-15T11:30:00', 10, 'eu'),"
			 " ('2024-06-15T11:35:00Z', 12.5, 'us'),"
			 " ('2024-06-15T11:40:00', 99, 'eu');");
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static dtk_value *params(const char *key, const char *target, const char *query)
{
	dtk_value *p = dtk_value_map();
	dtk_value_map_set_str(p, key, target);
	dtk_value_map_set_str(p, "query", query);
	dtk_value *ctx = dtk_value_list();
	dtk_value_list_push(ctx, dtk_value_str("region"));
	dtk_value_map_set(p, "context_columns", ctx);
	return p;
}

static void *compile_ok(const char *type, dtk_value *p)
{
	char err[512] = "";
	void *c = NULL;
	if (dtk_collector_find(type)->compile(p, NULL, &c, err, sizeof(err)) != 0)
		fail_msg("compile: %s", err);
	dtk_value_free(&p);
	return c;
}

static int collect(const char *type, void *c, dtk_rows *rows, char *err, size_t errsz)
{
	dtk_collect_request req = {"m", PF, PS, PF, 600, "10 minutes", NULL, NULL};
	dtk_rows_init(rows);
	return dtk_collector_find(type)->collect(c, &req, rows, err, errsz);
}

static void test_sqlite_source_collects_rows_in_the_period(void **state)
{
	void *c = compile_ok("sqlite", params("path", dbpath, good_query));
	dtk_rows rows;
	char err[512] = "";
	if (collect("sqlite", c, &rows, err, sizeof(err)) != 0)
		fail_msg("collect: %s", err);
	assert_int_equal(rows.n, 2);
	assert_int_equal(rows.rows[0].ts, PS);
	assert_true(rows.rows[0].value == 10.0);
	assert_int_equal(rows.rows[1].ts, PS + 300);
	assert_true(rows.rows[1].value == 12.5);
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(rows.rows[1].context, "region")),
			    "us");
	assert_int_equal(dtk_collector_find("sqlite")->has_timestamps(c), 1);
	dtk_rows_clear(&rows);
	dtk_collector_find("sqlite")->destroy(c);
}

static void test_sql_source_with_sqlite_url_is_relative_to_the_current_directory(void **state)
{
	char cwd[512];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(tmpdir), 0);
	void *c = compile_ok("sql", params("connection_string", "sqlite:///src.db",
					   "SELECT COUNT(*) FROM points WHERE ts >= "
					   "'{{ period_start }}' AND ts < '{{ period_finish }}'"));
	dtk_rows rows;
	char err[512] = "";
	int rc = collect("sql", c, &rows, err, sizeof(err));
	assert_int_equal(chdir(cwd), 0);
	if (rc != 0)
		fail_msg("collect: %s", err);
	assert_int_equal(rows.n, 1);
	assert_int_equal(rows.rows[0].ts, PF);
	assert_true(rows.rows[0].value == 2.0);
	assert_int_equal(dtk_collector_find("sql")->has_timestamps(c), 0);
	dtk_rows_clear(&rows);
	dtk_collector_find("sql")->destroy(c);
}

static void test_sqlite_missing_file_error_names_the_path_and_creates_nothing(void **state)
{
	char missing[400];
	struct stat sb;
	snprintf(missing, sizeof(missing), "%s/nope.db", tmpdir);
	void *c = compile_ok("sqlite", params("path", missing, good_query));
	dtk_rows rows;
	char err[512] = "";
	assert_int_equal(collect("sqlite", c, &rows, err, sizeof(err)), -1);
	assert_non_null(strstr(err, missing));
	assert_non_null(strstr(err, "does not exist"));
	assert_int_not_equal(stat(missing, &sb), 0);
	dtk_rows_clear(&rows);
	dtk_collector_find("sqlite")->destroy(c);
}

static void test_sqlite_query_error_carries_the_database_message(void **state)
{
	void *c = compile_ok("sqlite",
			     params("path", dbpath,
				    "SELECT v FROM no_such_table WHERE ts >= '{{ period_start }}' "
				    "AND ts < '{{ period_finish }}'"));
	dtk_rows rows;
	char err[512] = "";
	assert_int_equal(collect("sqlite", c, &rows, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no such table: no_such_table"));
	dtk_rows_clear(&rows);
	dtk_collector_find("sqlite")->destroy(c);
}

static void test_sqlite_source_is_opened_read_only(void **state)
{
	void *c = compile_ok("sqlite", params("path", dbpath,
					      "DELETE FROM points WHERE ts >= '{{ period_start }}' "
					      "AND ts < '{{ period_finish }}'"));
	dtk_rows rows;
	char err[512] = "";
	assert_int_equal(collect("sqlite", c, &rows, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "readonly"));
	dtk_rows_clear(&rows);
	dtk_collector_find("sqlite")->destroy(c);
	/* the rows are all still there */
	c = compile_ok("sqlite", params("path", dbpath,
					"SELECT COUNT(*) AS value FROM points WHERE "
					"'{{ period_start }}' < '{{ period_finish }}'"));
	assert_int_equal(collect("sqlite", c, &rows, err, sizeof(err)), 0);
	assert_true(rows.rows[0].value == 3.0);
	dtk_rows_clear(&rows);
	dtk_collector_find("sqlite")->destroy(c);
}

static void test_sqlite_query_past_its_timeout_is_interrupted(void **state)
{
	dtk_value *p = params("path", dbpath,
			      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
			      "SELECT COUNT(*) AS value FROM c WHERE '{{ period_start }}' < "
			      "'{{ period_finish }}'");
	dtk_value_map_set_num(p, "timeout", 0.2);
	void *c = compile_ok("sqlite", p);
	dtk_rows rows;
	char err[512] = "";
	assert_int_equal(collect("sqlite", c, &rows, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "timed out after 0.2 s"));
	dtk_rows_clear(&rows);
	dtk_collector_find("sqlite")->destroy(c);
}

static void test_sql_query_without_period_variables_fails_compile(void **state)
{
	char err[512] = "";
	void *c = NULL;
	dtk_value *p = params("path", dbpath, "SELECT 1 AS value WHERE '{{ period_start }}' != ''");
	assert_int_equal(dtk_collector_find("sqlite")->compile(p, NULL, &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "query: must use {{ period_start }} and {{ period_finish }}"));
	assert_non_null(strstr(err, "period_finish"));
	dtk_value_free(&p);
}

static void test_sql_collects_reuse_one_pooled_connection(void **state)
{
	char conn[400];
	snprintf(conn, sizeof(conn), "sqlite:///%s", dbpath);
	void *c = compile_ok("sql", params("connection_string", conn, good_query));
	dtk_db_pool *pool = dtk_db_pool_new();
	assert_non_null(pool);
	for (int i = 0; i < 3; i++) {
		dtk_rows rows;
		char err[512] = "";
		dtk_collect_request req = {"m", PF, PS, PF, 600, "10 minutes", NULL, pool};
		dtk_rows_init(&rows);
		if (dtk_collector_find("sql")->collect(c, &req, &rows, err, sizeof(err)) != 0)
			fail_msg("collect: %s", err);
		assert_int_equal(rows.n, 2);
		dtk_rows_clear(&rows);
	}
	assert_int_equal(dtk_db_pool_opened(pool), 1);
	dtk_db_pool_free(&pool);
	assert_null(pool);
	dtk_collector_find("sql")->destroy(c);
}

static void test_sql_unknown_scheme_fails_compile_without_echoing_secrets(void **state)
{
	char err[512] = "";
	void *c = NULL;
	dtk_value *p = params("connection_string", "oracle://bob:hunter2@db/x", good_query);
	assert_int_equal(dtk_collector_find("sql")->compile(p, NULL, &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "connection_string: unsupported scheme 'oracle'"));
	assert_null(strstr(err, "hunter2"));
	dtk_value_free(&p);
	p = params("connection_string", "bob:hunter2@db", good_query);
	assert_int_equal(dtk_collector_find("sql")->compile(p, NULL, &c, err, sizeof(err)), -1);
	assert_null(strstr(err, "hunter2"));
	dtk_value_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sqlite_source_collects_rows_in_the_period),
		cmocka_unit_test(test_sql_source_with_sqlite_url_is_relative_to_the_current_directory),
		cmocka_unit_test(test_sqlite_missing_file_error_names_the_path_and_creates_nothing),
		cmocka_unit_test(test_sqlite_query_error_carries_the_database_message),
		cmocka_unit_test(test_sqlite_source_is_opened_read_only),
		cmocka_unit_test(test_sqlite_query_past_its_timeout_is_interrupted),
		cmocka_unit_test(test_sql_query_without_period_variables_fails_compile),
		cmocka_unit_test(test_sql_collects_reuse_one_pooled_connection),
		cmocka_unit_test(test_sql_unknown_scheme_fails_compile_without_echoing_secrets),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
