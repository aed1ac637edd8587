/* One storage test, run unchanged against every backend whose service is
 * configured: sqlite (always), PostgreSQL (DTK_POSTGRES_DSN), MariaDB /
 * MySQL (DTK_MYSQL_DSN) and ClickHouse (DTK_CLICKHOUSE_URL with
 * DTK_CLICKHOUSE_USER / DTK_CLICKHOUSE_PASSWORD). A backend without its
 * variable is skipped with the reason, or fails when DTK_REQUIRE_SERVICES=1
 * (CI); one whose driver is not built into this dtk is skipped by name.
 *
 * Every run uses its own metric names (pid and time), so runs against a
 * shared server do not collide, and cleans them up through retention. */
#include <math.h>
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

#include "db/db.h"
#include "db/dsn.h"
#include "store/store.h"
#include "util/value.h"

#define T0 INT64_C(1718409600) /* 2024-06-15T00:00:00Z */

typedef struct backend {
	const char *name;
	const char *type; /* the storage block's type */
	const char *env;  /* NULL: always available */
	/* the storage params from the environment; NULL when unusable */
	dtk_value *(*params)(const struct backend *b);
	const char *placeholder; /* the driver's first-argument placeholder */
	const char *final;	 /* appended to the table when counting */
	/* 1: retention deletes exactly the rows past the cutoff; 0: only whole
	 * expired partitions, at most daily (ClickHouse, config.md) */
	int row_retention;
} backend;

static char tmpdir[64];
static char run_id[48];

static dtk_value *sqlite_params(const backend *b)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/store.db", tmpdir);
	dtk_value *p = dtk_value_map();
	dtk_value_map_set_str(p, "path", path);
	return p;
}

static dtk_value *url_params(const backend *b)
{
	dtk_value *p = dtk_value_map();
	dtk_value_map_set_str(p, "connection_string", getenv(b->env));
	return p;
}

/* DTK_CLICKHOUSE_URL is the HTTP endpoint (http://host:port); credentials
 * come separately. */
static dtk_value *clickhouse_params(const backend *b)
{
	char err[256];
	dtk_dsn d;
	if (dtk_dsn_parse(getenv(b->env), &d, err, sizeof(err)) != 0) {
		print_message("clickhouse: DTK_CLICKHOUSE_URL: %s\n", err);
		return NULL;
	}
	dtk_value *p = dtk_value_map();
	dtk_value_map_set_str(p, "host", d.host && *d.host ? d.host : "127.0.0.1");
	if (d.port)
		dtk_value_map_set_int(p, "port", d.port);
	if (getenv("DTK_CLICKHOUSE_USER"))
		dtk_value_map_set_str(p, "user", getenv("DTK_CLICKHOUSE_USER"));
	if (getenv("DTK_CLICKHOUSE_PASSWORD"))
		dtk_value_map_set_str(p, "password", getenv("DTK_CLICKHOUSE_PASSWORD"));
	dtk_dsn_clear(&d);
	return p;
}

static const backend backends[] = {
    {"sqlite", "sqlite", NULL, sqlite_params, "?", "", 1},
    {"postgres", "sql", "DTK_POSTGRES_DSN", url_params, "$1", "", 1},
    {"mysql", "sql", "DTK_MYSQL_DSN", url_params, "?", "", 1},
    {"clickhouse", "clickhouse", "DTK_CLICKHOUSE_URL", clickhouse_params, "{p1:String}", " FINAL",
     0},
};
#define NBACKENDS (sizeof(backends) / sizeof(backends[0]))

static const backend *B(void **state)
{
	return *state;
}

/* A metric name of this run. */
static const char *metric(const char *tag)
{
	static char buf[8][96];
	static int next;
	char *m = buf[next++ % 8];
	snprintf(m, sizeof(buf[0]), "dtk_it_%s_%s", run_id, tag);
	return m;
}

static dtk_store *open_store(const backend *b)
{
	char err[1024] = "";
	dtk_value *p = b->params(b);
	dtk_store *s = dtk_store_open(b->type, p, NULL, NULL, err, sizeof(err));
	dtk_value_free(&p);
	if (!s)
		fail_msg("%s: open: %s", b->name, err);
	return s;
}

static void put(dtk_store *s, const char *m, int64_t ts, double v, int missing)
{
	char err[1024] = "";
	dtk_row r = {ts, v, missing, NULL};
	if (dtk_store_upsert(s, m, &r, 1, err, sizeof(err)) != 0)
		fail_msg("upsert: %s", err);
}

static void history(dtk_store *s, const char *m, int64_t since, int64_t before, int64_t min_points,
		    int with_context, dtk_series *h)
{
	char err[1024] = "";
	memset(h, 0, sizeof(*h));
	if (dtk_store_history(s, m, since, before, min_points, with_context, h, err, sizeof(err)) !=
	    0)
		fail_msg("history: %s", err);
}

/* Rows of table for metric m, read through the backend's own driver. */
static int64_t count_rows(const backend *b, const char *table, const char *m)
{
	char sql[256], err[1024] = "";
	dtk_db_target t;
	dtk_resultset rs;
	dtk_value *p = b->params(b);
	dtk_value *mv = dtk_value_str(m);
	const dtk_value *args[] = {mv};
	int64_t n = -1;
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s%s WHERE metric_name = %s", table,
		 b->final, b->placeholder);
	if (dtk_db_target_parse(strcmp(b->type, "sql") == 0 ? "sql" : b->name, p, &t, err,
				sizeof(err)) != 0)
		fail_msg("%s: target: %s", b->name, err);
	dtk_db *db = dtk_db_get(NULL, &t, NULL, err, sizeof(err));
	if (!db)
		fail_msg("%s: connect: %s", b->name, err);
	if (dtk_db_query(db, sql, args, 1, &rs, err, sizeof(err)) != 0)
		fail_msg("%s: count: %s", b->name, err);
	double x;
	if (rs.nrows == 1 && rs.ncols == 1 && dtk_value_number(rs.cells[0], &x))
		n = (int64_t)x;
	else if (rs.nrows == 1 && rs.cells[0] && rs.cells[0]->type == DTK_V_STR)
		n = strtoll(rs.cells[0]->u.str.s, NULL, 10);
	dtk_resultset_clear(&rs);
	dtk_db_release(NULL, &db, 0);
	dtk_db_target_clear(&t);
	dtk_value_free(&p);
	dtk_value_free(&mv);
	return n;
}

/* Removes a metric's rows (retention with a cutoff past everything). */
static void drop_metric(dtk_store *s, const char *m)
{
	char err[1024] = "";
	if (dtk_store_retention(s, m, T0 + 1000 * 86400, 1, 1, err, sizeof(err)) != 0)
		fail_msg("cleanup: %s", err);
}

static void test_upsert_of_the_same_time_overwrites(void **state)
{
	dtk_store *s = open_store(B(state));
	const char *m = metric("ow");
	dtk_series h;
	put(s, m, T0, 1.0, 0);
	put(s, m, T0, 2.0, 0);
	history(s, m, 0, T0 + 1, 0, 1, &h);
	assert_int_equal(h.n, 1);
	assert_true(h.values[0] == 2.0);
	dtk_series_clear(&h);
	/* a later missing point at the same time replaces the value */
	put(s, m, T0, 0.0, 1);
	history(s, m, 0, T0 + 1, 0, 1, &h);
	assert_int_equal(h.n, 0);
	dtk_series_clear(&h);
	assert_int_equal(count_rows(B(state), "dtk_datapoints", m), 1);
	/* two rows of one call at one time: the later wins */
	dtk_row rows[3] = {{T0, 5.0, 0, NULL}, {T0 + 60, 6.0, 0, NULL}, {T0, 7.0, 0, NULL}};
	char err[1024] = "";
	if (dtk_store_upsert(s, m, rows, 3, err, sizeof(err)) != 0)
		fail_msg("upsert: %s", err);
	history(s, m, 0, T0 + 61, 0, 0, &h);
	assert_int_equal(h.n, 2);
	assert_true(h.values[0] == 7.0);
	assert_true(h.values[1] == 6.0);
	dtk_series_clear(&h);
	drop_metric(s, m);
	dtk_store_close(&s);
}

static void test_baseline_excludes_missing_points_and_the_current_time(void **state)
{
	dtk_store *s = open_store(B(state));
	const char *m = metric("h"), *other = metric("h_other");
	char err[1024] = "";
	dtk_series h;
	dtk_row rows[5] = {
	    {T0, 1.5, 0, NULL},	       {T0 + 600, 0, 1, NULL},	  {T0 + 1200, 3.25, 0, NULL},
	    {T0 + 1800, 4.0, 0, NULL}, {T0 + 2400, 5.0, 0, NULL},
	};
	rows[2].context = dtk_value_map();
	dtk_value_map_set_str(rows[2].context, "region", "eu-ü");
	dtk_value_map_set_int(rows[2].context, "hour", 7);
	if (dtk_store_upsert(s, m, rows, 5, err, sizeof(err)) != 0)
		fail_msg("upsert: %s", err);
	dtk_value_free(&rows[2].context);
	put(s, other, T0 + 600, 99.0, 0);
	history(s, m, T0, T0 + 2400, 0, 1, &h);
	assert_int_equal(h.n, 3);
	assert_int_equal(h.ts[0], T0);
	assert_int_equal(h.ts[1], T0 + 1200);
	assert_int_equal(h.ts[2], T0 + 1800);
	assert_true(h.values[0] == 1.5);
	assert_true(h.values[1] == 3.25);
	assert_null(h.context[0]);
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(h.context[1], "region")), "eu-ü");
	assert_int_equal(dtk_value_map_get(h.context[1], "hour")->u.i, 7);
	dtk_series_clear(&h);
	/* without context: values only */
	history(s, m, T0, T0 + 2400, 0, 0, &h);
	assert_int_equal(h.n, 3);
	assert_null(h.context);
	dtk_series_clear(&h);
	drop_metric(s, m);
	drop_metric(s, other);
	dtk_store_close(&s);
}

static void test_min_points_reaches_back_past_since(void **state)
{
	dtk_store *s = open_store(B(state));
	const char *m = metric("mp");
	dtk_series h;
	dtk_row rows[10];
	char err[1024] = "";
	for (int i = 0; i < 10; i++)
		rows[i] = (dtk_row){T0 + i * 600, i, 0, NULL};
	if (dtk_store_upsert(s, m, rows, 10, err, sizeof(err)) != 0)
		fail_msg("upsert: %s", err);
	/* the window alone holds 2 points (7, 8); min_points 5 gives 4..8 */
	history(s, m, T0 + 7 * 600, T0 + 9 * 600, 5, 1, &h);
	assert_int_equal(h.n, 5);
	assert_int_equal(h.ts[0], T0 + 4 * 600);
	assert_int_equal(h.ts[4], T0 + 8 * 600);
	dtk_series_clear(&h);
	/* a window holding more than min_points keeps the whole window */
	history(s, m, T0, T0 + 9 * 600, 3, 1, &h);
	assert_int_equal(h.n, 9);
	dtk_series_clear(&h);
	/* fewer points than min_points: all of them */
	history(s, m, T0 + 8 * 600, T0 + 9 * 600, 50, 1, &h);
	assert_int_equal(h.n, 9);
	dtk_series_clear(&h);
	drop_metric(s, m);
	dtk_store_close(&s);
}

static void test_newest_skips_missing_and_last_does_not(void **state)
{
	dtk_store *s = open_store(B(state));
	const char *m = metric("nl");
	char err[1024] = "";
	int64_t ts = 0;
	int found = 1;
	assert_int_equal(dtk_store_newest(s, m, &ts, &found, err, sizeof(err)), 0);
	assert_int_equal(found, 0);
	assert_int_equal(dtk_store_last(s, m, &ts, &found, err, sizeof(err)), 0);
	assert_int_equal(found, 0);
	put(s, m, T0, 1.0, 0);
	put(s, m, T0 + 600, 0.0, 1);
	assert_int_equal(dtk_store_newest(s, m, &ts, &found, err, sizeof(err)), 0);
	assert_int_equal(found, 1);
	assert_int_equal(ts, T0);
	assert_int_equal(dtk_store_last(s, m, &ts, &found, err, sizeof(err)), 0);
	assert_int_equal(found, 1);
	assert_int_equal(ts, T0 + 600);
	drop_metric(s, m);
	dtk_store_close(&s);
}

static void test_retention_deletes_only_old_rows(void **state)
{
	dtk_store *s = open_store(B(state));
	const char *m = metric("ret"), *other = metric("ret_other");
	char err[1024] = "";
	int64_t now = T0 + 100 * 86400;
	dtk_detection_row d = {"mad_1", "mad", 0, 1.0, 0.0, 2.0, 0.0, "up", 0, NULL, NULL};
	put(s, m, now - 40 * 86400, 1.0, 0);
	put(s, m, now - 10 * 86400, 2.0, 0);
	put(s, other, now - 40 * 86400, 3.0, 0);
	assert_int_equal(
	    dtk_store_save_detections(s, m, now - 40 * 86400, now, &d, 1, err, sizeof(err)), 0);
	assert_int_equal(
	    dtk_store_save_detections(s, m, now - 10 * 86400, now, &d, 1, err, sizeof(err)), 0);
	if (dtk_store_retention(s, m, now, 30, 30, err, sizeof(err)) != 0)
		fail_msg("retention: %s", err);
	int64_t dp = count_rows(B(state), "dtk_datapoints", m);
	int64_t det = count_rows(B(state), "dtk_detections", m);
	if (B(state)->row_retention) {
		assert_int_equal(dp, 1);
		assert_int_equal(det, 1);
	} else { /* the recent rows stay, old ones may wait for their partition */
		assert_in_range(dp, 1, 2);
		assert_in_range(det, 1, 2);
	}
	/* another metric's old rows stay */
	assert_int_equal(count_rows(B(state), "dtk_datapoints", other), 1);
	/* no retention configured (0 days): nothing goes */
	if (dtk_store_retention(s, m, now + 1000 * 86400, 0, 0, err, sizeof(err)) != 0)
		fail_msg("retention: %s", err);
	assert_int_equal(count_rows(B(state), "dtk_datapoints", m), dp);
	drop_metric(s, m);
	drop_metric(s, other);
	dtk_store_close(&s);
}

static void save_two_detections(dtk_store *s, const char *m, int anomaly)
{
	char err[1024] = "";
	dtk_detection_row d[2] = {
	    {"mad_abc", "mad", anomaly, 4.5, 10.0, 20.0, 50.0, "up", 1, "sent", "{\"k\": 1}"},
	    {"zscore_def", "zscore", 0, NAN, NAN, NAN, NAN, NULL, 0, NULL, NULL},
	};
	if (dtk_store_save_detections(s, m, T0, T0 + 600, d, 2, err, sizeof(err)) != 0)
		fail_msg("detections: %s", err);
}

static void test_detection_rows_are_saved_and_resaved_idempotently(void **state)
{
	dtk_store *s = open_store(B(state));
	const char *m = metric("det");
	save_two_detections(s, m, 1);
	assert_int_equal(count_rows(B(state), "dtk_detections", m), 2);
	save_two_detections(s, m, 0);
	save_two_detections(s, m, 0);
	assert_int_equal(count_rows(B(state), "dtk_detections", m), 2);
	drop_metric(s, m);
	dtk_store_close(&s);
}

/* One check's worth of writes: points, detections, retention. */
static void sequence(dtk_store *s, const char *m)
{
	char err[1024] = "";
	dtk_row rows[6];
	for (int i = 0; i < 6; i++)
		rows[i] = (dtk_row){T0 - 86400 * 60 + i * 86400 * 12, 10.0 + i, i == 3, NULL};
	if (dtk_store_upsert(s, m, rows, 6, err, sizeof(err)) != 0)
		fail_msg("upsert: %s", err);
	save_two_detections(s, m, 1);
	if (dtk_store_retention(s, m, T0, 30, 30, err, sizeof(err)) != 0)
		fail_msg("retention: %s", err);
}

static void test_rerunning_a_whole_sequence_is_idempotent(void **state)
{
	dtk_store *s = open_store(B(state));
	const char *m = metric("seq");
	dtk_series h1, h2;
	sequence(s, m);
	history(s, m, 0, T0 + 1, 0, 1, &h1);
	int64_t dp = count_rows(B(state), "dtk_datapoints", m);
	int64_t det = count_rows(B(state), "dtk_detections", m);
	dtk_store_close(&s);
	/* a new handle: the tables exist, creating them again is harmless */
	s = open_store(B(state));
	sequence(s, m);
	history(s, m, 0, T0 + 1, 0, 1, &h2);
	assert_int_equal(count_rows(B(state), "dtk_datapoints", m), dp);
	assert_int_equal(count_rows(B(state), "dtk_detections", m), det);
	assert_int_equal(h1.n, h2.n);
	if (B(state)->row_retention) /* T0-12d and T0; missing and old rows out */
		assert_int_equal(h1.n, 2);
	for (size_t i = 0; i < h1.n; i++) {
		assert_int_equal(h1.ts[i], h2.ts[i]);
		assert_true(h1.values[i] == h2.values[i]);
	}
	dtk_series_clear(&h1);
	dtk_series_clear(&h2);
	drop_metric(s, m);
	dtk_store_close(&s);
}

#define CASES(b)                                                                                   \
	{                                                                                          \
		cmocka_unit_test_prestate(test_upsert_of_the_same_time_overwrites, b),             \
		    cmocka_unit_test_prestate(                                                     \
			test_baseline_excludes_missing_points_and_the_current_time, b),            \
		    cmocka_unit_test_prestate(test_min_points_reaches_back_past_since, b),         \
		    cmocka_unit_test_prestate(test_newest_skips_missing_and_last_does_not, b),     \
		    cmocka_unit_test_prestate(test_retention_deletes_only_old_rows, b),            \
		    cmocka_unit_test_prestate(                                                     \
			test_detection_rows_are_saved_and_resaved_idempotently, b),                \
		    cmocka_unit_test_prestate(test_rerunning_a_whole_sequence_is_idempotent, b),   \
	}

/* 1 when b's storage type is built in; else prints why it is skipped. */
static int built_in(const backend *b)
{
	char err[1024] = "";
	dtk_value *p = b->params(b);
	if (!p)
		return -1;
	dtk_store *s = dtk_store_open(b->type, p, NULL, NULL, err, sizeof(err));
	dtk_value_free(&p);
	if (s) {
		dtk_store_close(&s);
		return 1;
	}
	if (strstr(err, "not built into this dtk") || strstr(err, "no storage for scheme")) {
		print_message("SKIP %s: its storage backend is not built into this dtk yet\n",
			      b->name);
		return 0;
	}
	print_message("%s: cannot open storage: %s\n", b->name, err);
	return -1;
}

int main(void)
{
	int failed = 0, ran = 0;
	int require =
	    getenv("DTK_REQUIRE_SERVICES") && strcmp(getenv("DTK_REQUIRE_SERVICES"), "1") == 0;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/dtk-it-store-XXXXXX");
	if (!mkdtemp(tmpdir))
		return 1;
	snprintf(run_id, sizeof(run_id), "%ld_%lld", (long)getpid(), (long long)time(NULL));
	for (size_t i = 0; i < NBACKENDS; i++) {
		const backend *b = &backends[i];
		if (b->env && (!getenv(b->env) || !*getenv(b->env))) {
			print_message("%s %s: %s is not set (scripts/services.sh start; eval "
				      "\"$(scripts/services.sh env)\")\n",
				      require ? "FAIL" : "SKIP", b->name, b->env);
			failed += require;
			continue;
		}
		int ok = built_in(b);
		if (ok < 0)
			failed++;
		if (ok <= 0)
			continue;
		print_message("== storage backend %s ==\n", b->name);
		const struct CMUnitTest tests[] = CASES((void *)b);
		char group[64];
		snprintf(group, sizeof(group), "store_backend_%s", b->name);
		failed += _cmocka_run_group_tests(group, tests, sizeof(tests) / sizeof(tests[0]),
						  NULL, NULL);
		ran++;
	}
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		failed++;
	return failed ? 1 : ran ? 0 : 77;
}
