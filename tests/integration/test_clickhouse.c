/* The ClickHouse driver, collector and storage against a real server
 * (Debian's 18.16 under scripts/services.sh): DTK_CLICKHOUSE_URL
 * (http://host:port) or DTK_CLICKHOUSE_HTTP_PORT, with DTK_CLICKHOUSE_USER
 * and DTK_CLICKHOUSE_PASSWORD. Without them every test skips with the
 * reason (exit 77), or fails when DTK_REQUIRE_SERVICES=1.
 *
 * Each run works in its own database (dtk_it_<pid>_<time>), dropped at the
 * end, so parallel runs and other tests on the server do not collide. */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "collect/collector.h"
#include "db/db.h"
#include "store/store.h"
#include "util/value.h"

#define T0 INT64_C(1718409600) /* 2024-06-15T00:00:00Z, the end of the source data */

static char host[256] = "127.0.0.1", dbname[64], user[128] = "default", password[128];
static long port;
static int available;

static dtk_value *params(const char *database)
{
	dtk_value *p = dtk_value_map();
	dtk_value_map_set_str(p, "host", host);
	dtk_value_map_set_int(p, "port", port);
	dtk_value_map_set_str(p, "user", user);
	if (*password)
		dtk_value_map_set_str(p, "password", password);
	dtk_value_map_set_str(p, "database", database ? database : dbname);
	return p;
}

static dtk_db *connect_to(const char *database, dtk_db_target *t)
{
	char err[1024];
	dtk_value *p = params(database);
	if (dtk_db_target_parse("clickhouse", p, t, err, sizeof(err)) != 0)
		fail_msg("target: %s", err);
	dtk_value_free(&p);
	dtk_db *db = dtk_db_get(NULL, t, NULL, err, sizeof(err));
	if (!db)
		fail_msg("connect: %s", err);
	return db;
}

static void exec_sql(dtk_db *db, const char *sql)
{
	char err[2048];
	if (dtk_db_query(db, sql, NULL, 0, NULL, err, sizeof(err)) != 0)
		fail_msg("%s: %s", sql, err);
}

static int setup(void **state)
{
	const char *url = getenv("DTK_CLICKHOUSE_URL");
	const char *hp = getenv("DTK_CLICKHOUSE_HTTP_PORT");
	if (url && strncmp(url, "http://", 7) == 0) {
		const char *h = url + 7, *colon = strrchr(h, ':');
		if (colon) {
			snprintf(host, sizeof(host), "%.*s", (int)(colon - h), h);
			port = strtol(colon + 1, NULL, 10);
		}
	} else if (hp) {
		port = strtol(hp, NULL, 10);
	}
	if (getenv("DTK_CLICKHOUSE_USER"))
		snprintf(user, sizeof(user), "%s", getenv("DTK_CLICKHOUSE_USER"));
	if (getenv("DTK_CLICKHOUSE_PASSWORD"))
		snprintf(password, sizeof(password), "%s", getenv("DTK_CLICKHOUSE_PASSWORD"));
	if (port <= 0)
		return 0;
	available = 1;
	snprintf(dbname, sizeof(dbname), "dtk_it_%ld_%ld", (long)getpid(), (long)time(NULL));
	dtk_db_target t;
	char sql[512];
	dtk_db *db = connect_to("default", &t);
	snprintf(sql, sizeof(sql), "CREATE DATABASE IF NOT EXISTS %s", dbname);
	exec_sql(db, sql);
	dtk_db_release(NULL, &db, 0);
	dtk_db_target_clear(&t);

	/* 30 days of 10-minute data before T0, with 18.16-compatible SQL */
	db = connect_to(NULL, &t);
	exec_sql(db, "CREATE TABLE src (ts DateTime, v Float64, region String) "
		     "ENGINE = MergeTree ORDER BY ts");
	snprintf(sql, sizeof(sql),
		 "INSERT INTO src SELECT toDateTime(intDiv(toUInt32(toDateTime(%lld - (number + 1) "
		 "* 600)), 600) * 600) AS ts, 100 + number %% 7 AS v, if(number %% 2 = 0, 'eu', "
		 "'us') AS region FROM numbers(4320)",
		 (long long)T0);
	exec_sql(db, sql);
	dtk_db_release(NULL, &db, 0);
	dtk_db_target_clear(&t);
	return 0;
}

static int teardown(void **state)
{
	if (!available)
		return 0;
	dtk_db_target t;
	char sql[128];
	dtk_db *db = connect_to("default", &t);
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", dbname);
	exec_sql(db, sql);
	dtk_db_release(NULL, &db, 0);
	dtk_db_target_clear(&t);
	return 0;
}

#define NEED_SERVER()                                                                              \
	do {                                                                                       \
		if (!available)                                                                    \
			skip();                                                                    \
	} while (0)

static void *compile_collector(const char *query, dtk_value **warnings)
{
	char err[1024];
	void *compiled = NULL;
	dtk_value *p = params(NULL);
	dtk_value_map_set_str(p, "query", query);
	if (dtk_collector_find("clickhouse")
		->compile(p, warnings ? *warnings : NULL, &compiled, err, sizeof(err)) != 0)
		fail_msg("compile: %s", err);
	dtk_value_free(&p);
	return compiled;
}

static void test_clickhouse_collects_a_period_with_the_period_variables(void **state)
{
	NEED_SERVER();
	char err[1024];
	const dtk_collector_type *ct = dtk_collector_find("clickhouse");
	void *c = compile_collector(
	    "SELECT toDateTime(intDiv(toUInt32(ts), 600) * 600) AS period_time, sum(v) AS "
	    "value, any(region) AS region FROM src WHERE ts >= toDateTime('{{ period_start }}') "
	    "AND ts < toDateTime('{{ period_finish }}') GROUP BY period_time ORDER BY "
	    "period_time",
	    NULL);
	assert_int_equal(ct->has_timestamps(c), 1);
	dtk_db_pool *pool = dtk_db_pool_new();
	/* the newest 10 minutes: number 0, v = 100, region eu */
	dtk_collect_request req = {.metric_name = "m",
				   .execution_time = T0,
				   .period_start = T0 - 600,
				   .period_finish = T0,
				   .interval = 600,
				   .interval_text = "10 minutes",
				   .pool = pool};
	dtk_rows rows;
	dtk_rows_init(&rows);
	if (ct->collect(c, &req, &rows, err, sizeof(err)) != 0)
		fail_msg("collect: %s", err);
	assert_int_equal(rows.n, 1);
	assert_true(rows.rows[0].ts == T0 - 600);
	assert_true(rows.rows[0].value == 100);
	assert_false(rows.rows[0].is_missing);
	dtk_rows_clear(&rows);

	/* a whole day: 144 rows, oldest first, on the 10-minute grid */
	req.period_start = T0 - 86400;
	dtk_rows_init(&rows);
	if (ct->collect(c, &req, &rows, err, sizeof(err)) != 0)
		fail_msg("collect: %s", err);
	assert_int_equal(rows.n, 144);
	for (size_t i = 0; i < rows.n; i++)
		assert_true(rows.rows[i].ts == T0 - 86400 + (int64_t)i * 600);
	dtk_rows_clear(&rows);

	/* before the data: no rows (a missing point), not an error */
	req.period_start = T0 - 40 * 86400;
	req.period_finish = T0 - 39 * 86400;
	dtk_rows_init(&rows);
	if (ct->collect(c, &req, &rows, err, sizeof(err)) != 0)
		fail_msg("collect: %s", err);
	assert_int_equal(rows.n, 0);
	dtk_rows_clear(&rows);
	/* one connection served every collection */
	assert_int_equal(dtk_db_pool_opened(pool), 1);
	dtk_db_pool_free(&pool);
	ct->destroy(c);
}

static void test_clickhouse_datetime_in_another_zone_arrives_as_utc(void **state)
{
	NEED_SERVER();
	char err[1024];
	dtk_db_target t;
	dtk_resultset rs;
	dtk_db *db = connect_to(NULL, &t);
	if (dtk_db_query(
		db,
		"SELECT toDateTime(1718451000, 'Asia/Kolkata') AS k, toDateTime(1718451000) "
		"AS s, toUInt64(18446744073709551615) AS big, toInt64(-9007199254740993) AS "
		"neg, nan AS n, CAST(NULL AS Nullable(Float64)) AS nul",
		NULL, 0, &rs, err, sizeof(err)) != 0)
		fail_msg("query: %s", err);
	assert_int_equal(rs.nrows, 1);
	assert_string_equal(rs.cells[0]->u.str.s, "2024-06-15T11:30:00Z");
	assert_string_equal(rs.cells[1]->u.str.s, "2024-06-15T11:30:00Z");
	assert_int_equal(rs.cells[2]->type, DTK_V_FLOAT);
	assert_int_equal(rs.cells[3]->type, DTK_V_INT);
	assert_true(rs.cells[3]->u.i == INT64_C(-9007199254740993));
	assert_null(rs.cells[4]);
	assert_null(rs.cells[5]);
	dtk_resultset_clear(&rs);
	dtk_db_release(NULL, &db, 0);
	dtk_db_target_clear(&t);
}

static void test_clickhouse_bound_strings_round_trip_unchanged(void **state)
{
	NEED_SERVER();
	char err[1024];
	dtk_db_target t;
	dtk_resultset rs;
	const char hostile[] = "x' OR '1'='1 \\' -- {p2:String}\n\t\"`";
	dtk_value *a = dtk_value_str(hostile), *b = dtk_value_int(-42), *c = dtk_value_float(0.1);
	const dtk_value *args[] = {a, b, c};
	dtk_db *db = connect_to(NULL, &t);
	if (dtk_db_query(db, "SELECT {p1:String} AS s, {p2:Int64} AS i, {p3:Float64} AS f", args, 3,
			 &rs, err, sizeof(err)) != 0)
		fail_msg("query: %s", err);
	assert_string_equal(rs.cells[0]->u.str.s, hostile);
	assert_true(rs.cells[1]->u.i == -42);
	assert_true(rs.cells[2]->u.f == 0.1);
	dtk_resultset_clear(&rs);
	dtk_db_release(NULL, &db, 0);
	dtk_db_target_clear(&t);
	dtk_value_free(&a);
	dtk_value_free(&b);
	dtk_value_free(&c);
}

static void test_clickhouse_syntax_error_carries_the_server_exception(void **state)
{
	NEED_SERVER();
	char err[2048];
	dtk_db_target t;
	dtk_resultset rs;
	dtk_db *db = connect_to(NULL, &t);
	assert_int_equal(dtk_db_query(db, "SELEC 1", NULL, 0, &rs, err, sizeof(err)), -1);
	if (!strstr(err, "Code: 62") || !strstr(err, "Syntax error"))
		fail_msg("want the server's exception, got: %s", err);
	if (*password)
		assert_null(strstr(err, password));
	dtk_db_release(NULL, &db, 1);
	dtk_db_target_clear(&t);
}

static void test_clickhouse_wrong_password_is_reported_masked(void **state)
{
	NEED_SERVER();
	char err[2048];
	const char *wrong = "not-the-Password-42";
	dtk_value *p = params(NULL);
	dtk_value_map_set_str(p, "user", "dtk");
	dtk_value_map_set_str(p, "password", wrong);
	dtk_db_target t;
	if (dtk_db_target_parse("clickhouse", p, &t, err, sizeof(err)) != 0)
		fail_msg("target: %s", err);
	dtk_db *db = dtk_db_get(NULL, &t, NULL, err, sizeof(err));
	assert_null(db);
	if (!strstr(err, "password") && !strstr(err, "Authentication"))
		fail_msg("want an authentication error, got: %s", err);
	assert_null(strstr(err, wrong));
	dtk_db_target_clear(&t);
	dtk_value_free(&p);
}

static void test_clickhouse_unreachable_port_is_an_error(void **state)
{
	NEED_SERVER();
	char err[2048];
	/* a port that was free a moment ago: nothing listens there */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	dtk_value *p = params(NULL);
	dtk_value_map_set_str(p, "host", "127.0.0.1");
	dtk_value_map_set_int(p, "port", ntohs(a.sin_port));
	dtk_value_map_set_str(p, "password", "hidden-pw-7");
	dtk_value_map_set_int(p, "timeout", 3);
	dtk_db_target t;
	if (dtk_db_target_parse("clickhouse", p, &t, err, sizeof(err)) != 0)
		fail_msg("target: %s", err);
	assert_null(dtk_db_get(NULL, &t, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "127.0.0.1"));
	assert_null(strstr(err, "hidden-pw-7"));
	dtk_db_target_clear(&t);
	dtk_value_free(&p);
}

static int64_t count(dtk_db *db, const char *sql)
{
	char err[1024];
	dtk_resultset rs;
	double d = -1;
	if (dtk_db_query(db, sql, NULL, 0, &rs, err, sizeof(err)) != 0)
		fail_msg("%s: %s", sql, err);
	if (rs.nrows == 1)
		dtk_value_number(rs.cells[0], &d);
	dtk_resultset_clear(&rs);
	return (int64_t)d;
}

static void test_clickhouse_storage_full_cycle(void **state)
{
	NEED_SERVER();
	char err[2048];
	dtk_value *p = params(NULL);
	dtk_db_pool *pool = dtk_db_pool_new();
	dtk_store *s = dtk_store_open("clickhouse", p, NULL, pool, err, sizeof(err));
	if (!s)
		fail_msg("open: %s", err);
	const char *m = "cycle";
	int64_t now = T0;
	dtk_row rows[5];
	for (int i = 0; i < 5; i++)
		rows[i] = (dtk_row){now - (4 - i) * 600, 10.0 + i, i == 2, NULL};
	dtk_value *ctx = dtk_value_map();
	dtk_value_map_set_str(ctx, "region", "eu'\\\"");
	rows[4].context = ctx;
	if (dtk_store_upsert(s, m, rows, 5, err, sizeof(err)) != 0)
		fail_msg("upsert: %s", err);
	/* overwrite the newest point twice within one second: the last write wins */
	dtk_row again = {now, 99.0, 0, NULL};
	dtk_row third = {now, 77.0, 0, NULL};
	if (dtk_store_upsert(s, m, &again, 1, err, sizeof(err)) != 0 ||
	    dtk_store_upsert(s, m, &third, 1, err, sizeof(err)) != 0)
		fail_msg("upsert: %s", err);

	dtk_series h = {0};
	if (dtk_store_history(s, m, now - 3600, now + 1, 0, 0, &h, err, sizeof(err)) != 0)
		fail_msg("history: %s", err);
	assert_int_equal(h.n, 4); /* the missing point is not history */
	assert_true(h.ts[0] == now - 2400 && h.values[0] == 10);
	assert_true(h.ts[3] == now && h.values[3] == 77);
	dtk_series_clear(&h);

	/* min_points reaches back past since; context comes back with_context */
	memset(&h, 0, sizeof(h));
	if (dtk_store_history(s, m, now, now, 3, 1, &h, err, sizeof(err)) != 0)
		fail_msg("history: %s", err);
	assert_int_equal(h.n, 3);
	assert_true(h.ts[0] == now - 2400 && h.ts[2] == now - 600);
	dtk_series_clear(&h);
	memset(&h, 0, sizeof(h));
	rows[4].value = 55;
	rows[4].ts = now + 600;
	if (dtk_store_upsert(s, m, &rows[4], 1, err, sizeof(err)) != 0)
		fail_msg("upsert: %s", err);
	if (dtk_store_history(s, m, now + 600, now + 1200, 0, 1, &h, err, sizeof(err)) != 0)
		fail_msg("history: %s", err);
	assert_int_equal(h.n, 1);
	assert_non_null(h.context[0]);
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(h.context[0], "region")), "eu'\\\"");
	dtk_series_clear(&h);

	int64_t ts;
	int found;
	dtk_row missing = {now + 1200, 0, 1, NULL};
	if (dtk_store_upsert(s, m, &missing, 1, err, sizeof(err)) != 0)
		fail_msg("upsert: %s", err);
	assert_int_equal(dtk_store_newest(s, m, &ts, &found, err, sizeof(err)), 0);
	assert_true(found && ts == now + 600);
	assert_int_equal(dtk_store_last(s, m, &ts, &found, err, sizeof(err)), 0);
	assert_true(found && ts == now + 1200);
	/* a later missing write of a point hides its older value */
	dtk_row hide = {now + 600, 0, 1, NULL};
	if (dtk_store_upsert(s, m, &hide, 1, err, sizeof(err)) != 0)
		fail_msg("upsert: %s", err);
	assert_int_equal(dtk_store_newest(s, m, &ts, &found, err, sizeof(err)), 0);
	assert_true(found && ts == now);
	assert_int_equal(dtk_store_newest(s, "no-such-metric", &ts, &found, err, sizeof(err)), 0);
	assert_false(found);

	dtk_detection_row d[2] = {
	    {"mad_1", "mad", 1, 4.5, 1.0, 2.0, 50.0, "up", 1, "sent", "{\"k\": 1}"},
	    {"zscore_1", "zscore", 0, NAN, NAN, NAN, NAN, NULL, 0, NULL, NULL},
	};
	if (dtk_store_save_detections(s, m, now, now + 600, d, 2, err, sizeof(err)) != 0 ||
	    dtk_store_save_detections(s, m, now, now + 600, d, 2, err, sizeof(err)) != 0)
		fail_msg("detections: %s", err);

	/* retention: an old month, wholly expired, goes; the current one stays */
	dtk_row old = {now - 90 * 86400, 1.0, 0, NULL};
	if (dtk_store_upsert(s, m, &old, 1, err, sizeof(err)) != 0 ||
	    dtk_store_save_detections(s, m, old.ts, old.ts, d, 1, err, sizeof(err)) != 0)
		fail_msg("upsert: %s", err);
	if (dtk_store_retention(s, m, now, 30, 30, err, sizeof(err)) != 0)
		fail_msg("retention: %s", err);

	dtk_db_target t;
	dtk_db *db = connect_to(NULL, &t);
	assert_int_equal(count(db, "SELECT count() FROM dtk_datapoints FINAL WHERE metric_name = "
				   "'cycle' AND collected_at < toDateTime(1712000000)"),
			 0);
	assert_int_equal(count(db, "SELECT count() FROM dtk_datapoints FINAL WHERE metric_name = "
				   "'cycle'"),
			 7);
	assert_int_equal(count(db, "SELECT count() FROM dtk_detections FINAL WHERE metric_name = "
				   "'cycle'"),
			 2);
	assert_int_equal(count(db, "SELECT count() FROM dtk_detections FINAL WHERE metric_name = "
				   "'cycle' AND isNull(score)"),
			 1);
	dtk_db_release(NULL, &db, 0);
	dtk_db_target_clear(&t);

	/* a second open finds the tables and reuses the pooled connection */
	dtk_store *s2 = dtk_store_open("clickhouse", p, NULL, pool, err, sizeof(err));
	if (!s2)
		fail_msg("reopen: %s", err);
	assert_int_equal(dtk_db_pool_opened(pool), 1);
	dtk_store_close(&s2);
	dtk_store_close(&s);
	dtk_db_pool_free(&pool);
	dtk_value_free(&ctx);
	dtk_value_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_clickhouse_collects_a_period_with_the_period_variables),
	    cmocka_unit_test(test_clickhouse_datetime_in_another_zone_arrives_as_utc),
	    cmocka_unit_test(test_clickhouse_bound_strings_round_trip_unchanged),
	    cmocka_unit_test(test_clickhouse_syntax_error_carries_the_server_exception),
	    cmocka_unit_test(test_clickhouse_wrong_password_is_reported_masked),
	    cmocka_unit_test(test_clickhouse_unreachable_port_is_an_error),
	    cmocka_unit_test(test_clickhouse_storage_full_cycle),
	};
	int require =
	    getenv("DTK_REQUIRE_SERVICES") && strcmp(getenv("DTK_REQUIRE_SERVICES"), "1") == 0;
	setup(NULL);
	if (!available) {
		printf("SKIP clickhouse: DTK_CLICKHOUSE_URL / DTK_CLICKHOUSE_HTTP_PORT not set "
		       "(scripts/services.sh start clickhouse; eval \"$(scripts/services.sh "
		       "env)\")\n");
		return require ? 1 : 77;
	}
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	teardown(NULL);
	return failed ? 1 : 0;
}
