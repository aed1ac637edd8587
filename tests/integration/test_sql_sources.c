/* SQL sources against real servers: the `sql` collector with postgresql://
 * and mysql:// connection strings and the typed `postgres` / `mysql`
 * collectors, on PostgreSQL (DTK_POSTGRES_DSN) and MariaDB / MySQL
 * (DTK_MYSQL_DSN). An engine without its variable is skipped with the
 * reason, or fails when DTK_REQUIRE_SERVICES=1 (CI).
 *
 * Connection reuse is counted twice: with dtk_db_pool_opened on a pool the
 * test passes to a collector and a store, and for a whole dtk_check_run
 * (whose session pool is private) with pg_stat_activity: the check's
 * connections carry a unique application_name, and exactly one backend
 * with it is open after the check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "check.h"
#include "collect/collector.h"
#include "config/config.h"
#include "db/db.h"
#include "db/dsn.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/value.h"

/* The period 2024-06-15T11:30:00Z .. 11:40:00Z */
#define PS INT64_C(1718451000)
#define PF (PS + 600)

typedef struct engine {
	const char *name; /* the typed collector */
	const char *env;
	const char *scheme; /* for building wrong-password and bad-port URLs */
	const char *ts_type;
	const char *auth_word; /* what a wrong password's message says */
} engine;

static const engine engines[] = {
    {"postgres", "DTK_POSTGRES_DSN", "postgresql", "TIMESTAMPTZ", "authentication"},
    {"mysql", "DTK_MYSQL_DSN", "mysql", "DATETIME", "Access denied"},
};
#define NENGINES (sizeof(engines) / sizeof(engines[0]))

static char run_id[48], table[96], state_dir[64];

static const engine *E(void **state)
{
	return *state;
}

static const char *dsn(const engine *e)
{
	return getenv(e->env);
}

/* Runs sql on the engine's server (setup and inspection). */
static void exec_sql(const engine *e, const char *sql, dtk_resultset *out)
{
	char err[1024] = "";
	dtk_db_target t;
	dtk_value *p = dtk_value_map();
	dtk_value_map_set_str(p, "connection_string", dsn(e));
	if (dtk_db_target_parse("sql", p, &t, err, sizeof(err)) != 0)
		fail_msg("%s: %s", e->name, err);
	dtk_db *db = dtk_db_get(NULL, &t, NULL, err, sizeof(err));
	if (!db)
		fail_msg("%s: %s", e->name, err);
	if (dtk_db_query(db, sql, NULL, 0, out, err, sizeof(err)) != 0)
		fail_msg("%s: %s: %s", e->name, sql, err);
	dtk_db_release(NULL, &db, 0);
	dtk_db_target_clear(&t);
	dtk_value_free(&p);
}

static int setup_engine(void **state)
{
	const engine *e = E(state);
	char sql[512];
	snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS %s", table);
	exec_sql(e, sql, NULL);
	snprintf(sql, sizeof(sql),
		 "CREATE TABLE %s (ts %s, v DOUBLE PRECISION, n BIGINT, region "
		 "VARCHAR(16))",
		 table, e->ts_type);
	exec_sql(e, sql, NULL);
	snprintf(sql, sizeof(sql),
		 "INSERT INTO %s VALUES ('2024-06-15 11:30:00', 10.5, 3, 'eu'), "
		 "('2024-06-15 11:35:00', NULL, 4, 'us'), ('2024-06-15 11:40:00', 99, 5, 'eu')",
		 table);
	exec_sql(e, sql, NULL);
	return 0;
}

static int teardown_engine(void **state)
{
	char sql[256];
	snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS %s", table);
	exec_sql(E(state), sql, NULL);
	return 0;
}

static dtk_value *params_with(const char *key, const char *val, const char *query)
{
	dtk_value *p = dtk_value_map();
	dtk_value_map_set_str(p, key, val);
	dtk_value_map_set_str(p, "query", query);
	dtk_value_map_set_int(p, "timeout", 10);
	dtk_value *ctx = dtk_value_list();
	dtk_value_list_push(ctx, dtk_value_str("region"));
	dtk_value_list_push(ctx, dtk_value_str("n"));
	dtk_value_map_set(p, "context_columns", ctx);
	return p;
}

/* The period's rows of the test table, oldest first. */
static const char *points_query(void)
{
	static char q[512];
	snprintf(q, sizeof(q),
		 "SELECT ts AS period_time, v AS value, region, n FROM %s WHERE ts >= "
		 "'{{ period_start }}' AND ts < '{{ period_finish }}' ORDER BY ts",
		 table);
	return q;
}

static int compile(const char *type, dtk_value *p, void **c, char *err, size_t errsz)
{
	int rc = dtk_collector_find(type)->compile(p, NULL, c, err, errsz);
	dtk_value_free(&p);
	return rc;
}

static int collect(const char *type, void *c, dtk_db_pool *pool, dtk_rows *rows, char *err,
		   size_t errsz)
{
	dtk_collect_request req = {.metric_name = "m",
				   .execution_time = PF,
				   .period_start = PS,
				   .period_finish = PF,
				   .interval = 600,
				   .interval_text = "10 minutes",
				   .pool = pool};
	dtk_rows_init(rows);
	return dtk_collector_find(type)->collect(c, &req, rows, err, errsz);
}

/* Compiles and collects; fails the test on an error. */
static void collect_ok(const char *type, dtk_value *p, dtk_rows *rows)
{
	char err[1024] = "";
	void *c = NULL;
	if (compile(type, p, &c, err, sizeof(err)) != 0)
		fail_msg("compile: %s", err);
	if (collect(type, c, NULL, rows, err, sizeof(err)) != 0)
		fail_msg("collect: %s", err);
	dtk_collector_find(type)->destroy(c);
}

/* Compiles and collects; returns the collection's error in err. */
static void collect_fails(const char *type, dtk_value *p, char *err, size_t errsz)
{
	void *c = NULL;
	dtk_rows rows;
	err[0] = '\0';
	if (compile(type, p, &c, err, errsz) != 0)
		fail_msg("compile: %s", err);
	assert_int_equal(collect(type, c, NULL, &rows, err, errsz), -1);
	dtk_rows_clear(&rows);
	dtk_collector_find(type)->destroy(c);
}

static void assert_period_rows(const dtk_rows *rows)
{
	assert_int_equal(rows->n, 2);
	assert_int_equal(rows->rows[0].ts, PS);
	assert_false(rows->rows[0].is_missing);
	assert_true(rows->rows[0].value == 10.5);
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(rows->rows[0].context, "region")),
			    "eu");
	const dtk_value *n = dtk_value_map_get(rows->rows[0].context, "n");
	assert_non_null(n);
	assert_int_equal(n->type, DTK_V_INT); /* numbers come back as numbers */
	assert_int_equal(n->u.i, 3);
	/* NULL value: a missing point */
	assert_int_equal(rows->rows[1].ts, PS + 300);
	assert_true(rows->rows[1].is_missing);
}

static void test_sql_collector_reads_rows_by_column_name(void **state)
{
	dtk_rows rows;
	collect_ok("sql", params_with("connection_string", dsn(E(state)), points_query()), &rows);
	assert_period_rows(&rows);
	dtk_rows_clear(&rows);
}

static void test_typed_collector_with_dsn_and_with_params(void **state)
{
	const engine *e = E(state);
	char err[256];
	dtk_rows rows;
	collect_ok(e->name, params_with("dsn", dsn(e), points_query()), &rows);
	assert_period_rows(&rows);
	dtk_rows_clear(&rows);

	dtk_dsn d;
	assert_int_equal(dtk_dsn_parse(dsn(e), &d, err, sizeof(err)), 0);
	dtk_value *p = params_with("host", d.host, points_query());
	dtk_value_map_set_int(p, "port", d.port);
	dtk_value_map_set_str(p, "database", d.database);
	dtk_value_map_set_str(p, "user", d.user);
	dtk_value_map_set_str(p, "password", d.password);
	dtk_dsn_clear(&d);
	collect_ok(e->name, p, &rows);
	assert_period_rows(&rows);
	dtk_rows_clear(&rows);
}

static void test_zero_rows_are_no_rows(void **state)
{
	char q[512];
	dtk_rows rows;
	snprintf(q, sizeof(q),
		 "SELECT ts AS period_time, v AS value FROM %s WHERE ts >= '{{ period_start }}' "
		 "AND ts < '{{ period_finish }}' AND region = 'nowhere'",
		 table);
	collect_ok("sql", params_with("connection_string", dsn(E(state)), q), &rows);
	assert_int_equal(rows.n, 0);
	dtk_rows_clear(&rows);
}

static void test_query_errors_carry_the_server_message(void **state)
{
	const engine *e = E(state);
	char err[1024];
	collect_fails("sql",
		      params_with("connection_string", dsn(e),
				  "SELEC value FROM x WHERE '{{ period_start }}' < "
				  "'{{ period_finish }}'"),
		      err, sizeof(err));
	print_message("%s syntax error: %s\n", e->name, err);
	assert_non_null(strstr(err, strcmp(e->name, "postgres") == 0 ? "ERROR: syntax error"
								     : "error in your SQL syntax"));
	collect_fails("sql",
		      params_with("connection_string", dsn(e),
				  "SELECT 1 AS value FROM dtk_no_such_table WHERE "
				  "'{{ period_start }}' < '{{ period_finish }}'"),
		      err, sizeof(err));
	print_message("%s missing table: %s\n", e->name, err);
	assert_non_null(strstr(err, "dtk_no_such_table"));
	assert_non_null(
	    strstr(err, strcmp(e->name, "postgres") == 0 ? "does not exist" : "doesn't exist"));
}

static void test_statement_past_its_timeout_is_cancelled(void **state)
{
	const engine *e = E(state);
	char err[1024], q[256];
	snprintf(q, sizeof(q),
		 "SELECT %s AS value WHERE '{{ period_start }}' < '{{ period_finish }}'",
		 strcmp(e->name, "postgres") == 0 ? "pg_sleep(5)::text" : "SLEEP(5)");
	dtk_value *p = params_with("connection_string", dsn(e), q);
	dtk_value_map_set_int(p, "timeout", 1);
	time_t start = time(NULL);
	collect_fails("sql", p, err, sizeof(err));
	print_message("%s timeout: %s\n", e->name, err);
	assert_true(time(NULL) - start < 4);
	assert_non_null(strstr(err, "timed out after 1 s"));
}

/* The DSN with its password (and, when port > 0, its port) replaced. */
static void with(const engine *e, const char *password, int port, char *out, size_t outsz)
{
	char err[256];
	dtk_dsn d;
	assert_int_equal(dtk_dsn_parse(dsn(e), &d, err, sizeof(err)), 0);
	snprintf(out, outsz, "%s://%s:%s@%s:%d/%s", e->scheme, d.user, password, d.host,
		 port > 0 ? port : d.port, d.database);
	dtk_dsn_clear(&d);
}

static void test_wrong_password_is_refused_without_echoing_it(void **state)
{
	const engine *e = E(state);
	char url[512], err[1024], pw[64];
	snprintf(pw, sizeof(pw), "wrongpw%s", run_id);
	with(e, pw, 0, url, sizeof(url));
	collect_fails("sql", params_with("connection_string", url, points_query()), err,
		      sizeof(err));
	print_message("%s wrong password: %s\n", e->name, err);
	assert_non_null(strstr(err, e->auth_word));
	assert_null(strstr(err, pw));
	assert_null(strstr(err, "dtkpass"));
	assert_null(strstr(err, "://dtk")); /* no URL user-info */
}

static void test_unreachable_port_is_a_clear_error(void **state)
{
	const engine *e = E(state);
	char url[512], err[1024], want[64];
	with(e, "dtkpass", 1, url, sizeof(url));
	collect_fails("sql", params_with("connection_string", url, points_query()), err,
		      sizeof(err));
	print_message("%s unreachable: %s\n", e->name, err);
	assert_non_null(strstr(err, "cannot connect to"));
	snprintf(want, sizeof(want), "%s://", e->name);
	assert_non_null(strstr(err, want));
	assert_non_null(strstr(err, ":1/"));
	assert_null(strstr(err, "dtkpass"));
}

static void test_collector_and_storage_share_one_pooled_connection(void **state)
{
	const engine *e = E(state);
	char err[1024] = "", m[96];
	void *c = NULL;
	dtk_rows rows;
	dtk_db_pool *pool = dtk_db_pool_new();
	assert_non_null(pool);
	if (compile("sql", params_with("connection_string", dsn(e), points_query()), &c, err,
		    sizeof(err)) != 0)
		fail_msg("compile: %s", err);
	for (int i = 0; i < 2; i++) {
		if (collect("sql", c, pool, &rows, err, sizeof(err)) != 0)
			fail_msg("collect: %s", err);
		if (i == 0)
			dtk_rows_clear(&rows);
	}
	dtk_value *sp = dtk_value_map();
	dtk_value_map_set_str(sp, "connection_string", dsn(e));
	dtk_store *st = dtk_store_open("sql", sp, NULL, pool, err, sizeof(err));
	if (!st)
		fail_msg("store: %s", err);
	snprintf(m, sizeof(m), "dtk_it_%s_reuse", run_id);
	if (dtk_store_upsert(st, m, rows.rows, rows.n, err, sizeof(err)) != 0)
		fail_msg("upsert: %s", err);
	assert_int_equal(dtk_store_retention(st, m, PF + 86400 * 10, 1, 1, err, sizeof(err)), 0);
	assert_int_equal(dtk_db_pool_opened(pool), 1);
	dtk_store_close(&st);
	dtk_value_free(&sp);
	dtk_rows_clear(&rows);
	dtk_collector_find("sql")->destroy(c);
	dtk_db_pool_free(&pool);
}

/* This connection's server-side id through the pooled handle. */
static int64_t session_id(dtk_db_pool *pool, const dtk_db_target *t, const engine *e)
{
	char err[1024] = "";
	dtk_resultset rs;
	double id = -1;
	dtk_db *db = dtk_db_get(pool, t, NULL, err, sizeof(err));
	if (!db)
		fail_msg("connect: %s", err);
	const char *sql =
	    strcmp(e->name, "postgres") == 0 ? "SELECT pg_backend_pid()" : "SELECT CONNECTION_ID()";
	if (dtk_db_query(db, sql, NULL, 0, &rs, err, sizeof(err)) != 0)
		fail_msg("query on the pooled connection: %s", err);
	assert_true(rs.nrows == 1 && dtk_value_number(rs.cells[0], &id));
	dtk_resultset_clear(&rs);
	dtk_db_release(pool, &db, 0);
	return (int64_t)id;
}

static void test_pooled_connection_killed_by_the_server_reconnects_once(void **state)
{
	const engine *e = E(state);
	char err[1024] = "", sql[128];
	dtk_db_target t;
	dtk_db_pool *pool = dtk_db_pool_new();
	dtk_value *p = dtk_value_map();
	dtk_value_map_set_str(p, "connection_string", dsn(e));
	if (dtk_db_target_parse("sql", p, &t, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	int64_t before = session_id(pool, &t, e);
	if (strcmp(e->name, "postgres") == 0)
		snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%lld)", (long long)before);
	else
		snprintf(sql, sizeof(sql), "KILL %lld", (long long)before);
	exec_sql(e, sql, NULL);
	usleep(100 * 1000);
	int64_t after = session_id(pool, &t, e);
	assert_true(after != before);
	assert_int_equal(dtk_db_pool_opened(pool), 1); /* the same pooled handle, reconnected */
	dtk_db_pool_free(&pool);
	dtk_db_target_clear(&t);
	dtk_value_free(&p);
}

static int64_t backends_named(const engine *e, const char *app)
{
	char sql[256];
	dtk_resultset rs;
	double n = -1;
	snprintf(sql, sizeof(sql),
		 "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = '%s'", app);
	exec_sql(e, sql, &rs);
	assert_int_equal(rs.nrows, 1);
	assert_true(dtk_value_number(rs.cells[0], &n));
	dtk_resultset_clear(&rs);
	return (int64_t)n;
}

static void test_check_with_collector_and_storage_on_one_server_opens_one_connection(void **state)
{
	const engine *e = E(state);
	char app[64], url[512], err[1024] = "";
	dtk_buf cfgtext;
	dtk_config *cfg = NULL;
	dtk_check_result *r = NULL;
	if (strcmp(e->name, "postgres") != 0) {
		print_message("counted through pg_stat_activity: PostgreSQL only\n");
		return;
	}
	snprintf(app, sizeof(app), "dtk_it_%s", run_id);
	snprintf(url, sizeof(url), "%s%sapplication_name=%s", dsn(e),
		 strchr(dsn(e), '?') ? "&" : "?", app);
	dtk_buf_init(&cfgtext, 1 << 16);
	dtk_buf_printf(&cfgtext,
		       "name: dtk_it_%s_check\n"
		       "schedule: {interval: 10 minutes}\n"
		       "collector:\n"
		       "  type: sql\n"
		       "  params:\n"
		       "    connection_string: \"%s\"\n"
		       "    query: \"SELECT ts AS period_time, v AS value FROM %s WHERE ts >= "
		       "'{{ period_start }}' AND ts < '{{ period_finish }}'\"\n"
		       "storage:\n"
		       "  type: sql\n"
		       "  params:\n"
		       "    connection_string: \"%s\"\n"
		       "detectors:\n"
		       "  - {type: threshold, params: {threshold: 1000}}\n",
		       run_id, url, table, url);
	dtk_config_options opt = {.env_mode = DTK_ENV_STRICT};
	if (dtk_config_parse(dtk_buf_str(&cfgtext), cfgtext.len, "check.yaml", &opt, &cfg, err,
			     sizeof(err)) != 0)
		fail_msg("config: %s", err);
	dtk_session *session = dtk_session_new();
	assert_non_null(session);
	assert_int_equal(backends_named(e, app), 0);
	dtk_check_options copt = {.has_time = 1, .requested_time = PF + 600, .no_alerts = 1};
	assert_int_equal(dtk_check_run(cfg, &copt, session, &r), 0);
	if (strcmp(r->status, "error") == 0)
		fail_msg("check failed: %s", dtk_value_cstr(dtk_value_path(r->json, "errors")));
	/* collected and stored over the same, still pooled, connection */
	assert_int_equal(backends_named(e, app), 1);
	dtk_check_result_free(&r);
	dtk_session_free(&session);
	assert_int_equal(backends_named(e, app), 0);
	dtk_config_free(&cfg);
	dtk_buf_free(&cfgtext);
}

#define CASES(e)                                                                                   \
	{                                                                                          \
		cmocka_unit_test_prestate(test_sql_collector_reads_rows_by_column_name, e),        \
		    cmocka_unit_test_prestate(test_typed_collector_with_dsn_and_with_params, e),   \
		    cmocka_unit_test_prestate(test_zero_rows_are_no_rows, e),                      \
		    cmocka_unit_test_prestate(test_query_errors_carry_the_server_message, e),      \
		    cmocka_unit_test_prestate(test_wrong_password_is_refused_without_echoing_it,   \
					      e),                                                  \
		    cmocka_unit_test_prestate(test_unreachable_port_is_a_clear_error, e),          \
		    cmocka_unit_test_prestate(test_statement_past_its_timeout_is_cancelled, e),    \
		    cmocka_unit_test_prestate(                                                     \
			test_collector_and_storage_share_one_pooled_connection, e),                \
		    cmocka_unit_test_prestate(                                                     \
			test_pooled_connection_killed_by_the_server_reconnects_once, e),           \
		    cmocka_unit_test_prestate(                                                     \
			test_check_with_collector_and_storage_on_one_server_opens_one_connection,  \
			e),                                                                        \
	}

int main(void)
{
	int failed = 0, ran = 0;
	int require =
	    getenv("DTK_REQUIRE_SERVICES") && strcmp(getenv("DTK_REQUIRE_SERVICES"), "1") == 0;
	snprintf(run_id, sizeof(run_id), "%ld_%lld", (long)getpid(), (long long)time(NULL));
	snprintf(table, sizeof(table), "dtk_it_src_%s", run_id);
	/* the check's alert state lives in the local state database */
	snprintf(state_dir, sizeof(state_dir), "/tmp/dtk-it-sql-XXXXXX");
	if (!mkdtemp(state_dir))
		return 1;
	setenv("DTK_STATE_DIR", state_dir, 1);
	for (size_t i = 0; i < NENGINES; i++) {
		const engine *e = &engines[i];
		if (!dsn(e) || !*dsn(e)) {
			print_message("%s %s: %s is not set (scripts/services.sh start; eval "
				      "\"$(scripts/services.sh env)\")\n",
				      require ? "FAIL" : "SKIP", e->name, e->env);
			failed += require;
			continue;
		}
		print_message("== SQL sources on %s ==\n", e->name);
		const struct CMUnitTest tests[] = CASES((void *)e);
		void *st = (void *)e;
		if (setup_engine(&st) != 0) {
			failed++;
			continue;
		}
		failed += _cmocka_run_group_tests(e->name, tests, sizeof(tests) / sizeof(tests[0]),
						  NULL, NULL);
		teardown_engine(&st);
		ran++;
	}
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", state_dir);
	if (system(cmd) != 0)
		failed++;
	return failed ? 1 : ran ? 0 : 77;
}
