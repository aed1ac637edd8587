/* store/sqlite_store.c: upserts, history, newest/last, detections,
 * retention, the local state directory. */
#include <math.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "store/store.h"
#include "util/value.h"

#define T0 INT64_C(1718409600)

static char tmpdir[256];

static int setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/dtk-store-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	char dir[300];
	snprintf(dir, sizeof(dir), "%s/state/nested", tmpdir);
	setenv("DTK_STATE_DIR", dir, 1);
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static dtk_store *open_local(void)
{
	char err[512] = "";
	dtk_store *s = dtk_store_open(NULL, NULL, NULL, NULL, err, sizeof(err));
	if (!s)
		fail_msg("open: %s", err);
	return s;
}

static void put(dtk_store *s, const char *metric, int64_t ts, double v, int missing)
{
	char err[512] = "";
	dtk_row r = {ts, v, missing, NULL};
	if (dtk_store_upsert(s, metric, &r, 1, err, sizeof(err)) != 0)
		fail_msg("upsert: %s", err);
}

static void test_store_local_database_lives_in_state_dir_with_private_dirs(void **state)
{
	dtk_store *s = open_local();
	char path[400];
	struct stat sb;
	snprintf(path, sizeof(path), "%s/state/nested/dtk.db", tmpdir);
	assert_int_equal(stat(path, &sb), 0);
	snprintf(path, sizeof(path), "%s/state/nested", tmpdir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	char dir[400];
	assert_int_equal(dtk_store_state_dir(dir, sizeof(dir)), 0);
	assert_string_equal(dir, path);
	dtk_store_close(&s);
	assert_null(s);
}

static void test_store_upsert_same_time_overwrites(void **state)
{
	dtk_store *s = open_local();
	char err[512];
	dtk_series h = {0};
	put(s, "ow", T0, 1.0, 0);
	put(s, "ow", T0, 2.0, 0);
	assert_int_equal(dtk_store_history(s, "ow", 0, T0 + 1, 0, 1, &h, err, sizeof(err)), 0);
	assert_int_equal(h.n, 1);
	assert_true(h.values[0] == 2.0);
	dtk_series_clear(&h);
	/* a later missing point at the same time replaces the value */
	put(s, "ow", T0, 0.0, 1);
	assert_int_equal(dtk_store_history(s, "ow", 0, T0 + 1, 0, 1, &h, err, sizeof(err)), 0);
	assert_int_equal(h.n, 0);
	dtk_series_clear(&h);
	dtk_store_close(&s);
}

static void test_store_history_excludes_missing_and_the_current_time(void **state)
{
	dtk_store *s = open_local();
	char err[512];
	dtk_series h = {0};
	dtk_row rows[5] = {
		{T0, 1.0, 0, NULL},	   {T0 + 600, 0, 1, NULL}, {T0 + 1200, 3.0, 0, NULL},
		{T0 + 1800, 4.0, 0, NULL}, {T0 + 2400, 5.0, 0, NULL},
	};
	rows[2].context = dtk_value_map();
	dtk_value_map_set_str(rows[2].context, "region", "eu");
	assert_int_equal(dtk_store_upsert(s, "h", rows, 5, err, sizeof(err)), 0);
	dtk_value_free(&rows[2].context);
	put(s, "other", T0 + 600, 99.0, 0);
	assert_int_equal(dtk_store_history(s, "h", T0, T0 + 2400, 0, 1, &h, err, sizeof(err)), 0);
	assert_int_equal(h.n, 3);
	assert_int_equal(h.ts[0], T0);
	assert_int_equal(h.ts[1], T0 + 1200);
	assert_int_equal(h.ts[2], T0 + 1800);
	assert_true(h.values[2] == 4.0);
	assert_null(h.context[0]);
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(h.context[1], "region")), "eu");
	dtk_series_clear(&h);
	dtk_store_close(&s);
}

static void test_store_history_min_points_reaches_back_past_since(void **state)
{
	dtk_store *s = open_local();
	char err[512];
	dtk_series h = {0};
	for (int i = 0; i < 10; i++)
		put(s, "mp", T0 + i * 600, i, 0);
	/* the window alone holds 2 points (7, 8); min_points 5 gives 4..8 */
	assert_int_equal(
		dtk_store_history(s, "mp", T0 + 7 * 600, T0 + 9 * 600, 5, 1, &h, err, sizeof(err)), 0);
	assert_int_equal(h.n, 5);
	assert_int_equal(h.ts[0], T0 + 4 * 600);
	assert_int_equal(h.ts[4], T0 + 8 * 600);
	dtk_series_clear(&h);
	/* a window holding more than min_points keeps the whole window */
	assert_int_equal(dtk_store_history(s, "mp", T0, T0 + 9 * 600, 3, 1, &h, err, sizeof(err)), 0);
	assert_int_equal(h.n, 9);
	dtk_series_clear(&h);
	/* fewer points than min_points: all of them */
	assert_int_equal(
		dtk_store_history(s, "mp", T0 + 8 * 600, T0 + 9 * 600, 50, 1, &h, err, sizeof(err)), 0);
	assert_int_equal(h.n, 9);
	dtk_series_clear(&h);
	dtk_store_close(&s);
}

static void test_store_newest_skips_missing_and_last_does_not(void **state)
{
	dtk_store *s = open_local();
	char err[512];
	int64_t ts = 0;
	int found = 1;
	assert_int_equal(dtk_store_newest(s, "nl", &ts, &found, err, sizeof(err)), 0);
	assert_int_equal(found, 0);
	assert_int_equal(dtk_store_last(s, "nl", &ts, &found, err, sizeof(err)), 0);
	assert_int_equal(found, 0);
	put(s, "nl", T0, 1.0, 0);
	put(s, "nl", T0 + 600, 0.0, 1);
	assert_int_equal(dtk_store_newest(s, "nl", &ts, &found, err, sizeof(err)), 0);
	assert_int_equal(found, 1);
	assert_int_equal(ts, T0);
	assert_int_equal(dtk_store_last(s, "nl", &ts, &found, err, sizeof(err)), 0);
	assert_int_equal(found, 1);
	assert_int_equal(ts, T0 + 600);
	dtk_store_close(&s);
}

static int count_rows(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int n = -1;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static void test_store_detections_are_saved_and_upserted_per_detector(void **state)
{
	char path[400], err[512];
	snprintf(path, sizeof(path), "%s/det.db", tmpdir);
	dtk_value *p = dtk_value_map();
	dtk_value_map_set_str(p, "path", path);
	dtk_store *s = dtk_store_open("sqlite", p, NULL, NULL, err, sizeof(err));
	if (!s)
		fail_msg("open: %s", err);
	dtk_detection_row d[2] = {
		{"mad_abc", "mad", 1, 4.5, 10.0, 20.0, 50.0, "up", 1, "sent", "{\"k\": 1}"},
		{"zscore_def", "zscore", 0, NAN, NAN, NAN, NAN, NULL, 0, NULL, NULL},
	};
	assert_int_equal(dtk_store_save_detections(s, "d", T0, T0 + 600, d, 2, err, sizeof(err)), 0);
	d[0].is_anomaly = 0;
	assert_int_equal(dtk_store_save_detections(s, "d", T0, T0 + 1200, d, 1, err, sizeof(err)),
			 0);
	dtk_store_close(&s);
	assert_int_equal(count_rows(path, "SELECT COUNT(*) FROM dtk_detections"), 2);
	assert_int_equal(count_rows(path, "SELECT is_anomaly FROM dtk_detections WHERE "
					  "detector_id = 'mad_abc' AND execution_time = 1718410800"),
			 0);
	assert_int_equal(count_rows(path, "SELECT COUNT(*) FROM dtk_detections WHERE score IS NULL "
					  "AND detector_id = 'zscore_def'"),
			 1);
	/* the sql type with a sqlite:/// connection string opens the same file */
	char conn[450];
	snprintf(conn, sizeof(conn), "sqlite:///%s", path);
	dtk_value_free(&p);
	p = dtk_value_map();
	dtk_value_map_set_str(p, "connection_string", conn);
	s = dtk_store_open("sql", p, NULL, NULL, err, sizeof(err));
	assert_non_null(s);
	dtk_store_close(&s);
	dtk_value_free(&p);
}

static void test_store_retention_deletes_old_rows(void **state)
{
	dtk_store *s = open_local();
	char err[512];
	dtk_series h = {0};
	int64_t now = T0 + 10 * 86400;
	for (int d = 0; d <= 10; d++)
		put(s, "ret", T0 + d * 86400, d, 0);
	put(s, "ret-other", T0, 1.0, 0);
	assert_int_equal(dtk_store_retention(s, "ret", now, 3, 0, err, sizeof(err)), 0);
	assert_int_equal(dtk_store_history(s, "ret", 0, now + 1, 0, 1, &h, err, sizeof(err)), 0);
	assert_int_equal(h.n, 4);
	assert_int_equal(h.ts[0], now - 3 * 86400);
	dtk_series_clear(&h);
	assert_int_equal(dtk_store_history(s, "ret-other", 0, now, 0, 1, &h, err, sizeof(err)), 0);
	assert_int_equal(h.n, 1);
	dtk_series_clear(&h);
	/* zero days keeps everything */
	assert_int_equal(dtk_store_retention(s, "ret", now + 100 * 86400, 0, 0, err, sizeof(err)),
			 0);
	assert_int_equal(dtk_store_history(s, "ret", 0, now + 1, 0, 1, &h, err, sizeof(err)), 0);
	assert_int_equal(h.n, 4);
	dtk_series_clear(&h);
	dtk_store_close(&s);
}

static void test_store_unsupported_backends_fail_without_echoing_secrets(void **state)
{
	char err[512] = "";
	dtk_value *p = dtk_value_map();
	dtk_value_map_set_str(p, "connection_string", "oracle://bob:hunter2@db/x");
	assert_null(dtk_store_open("sql", p, NULL, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "no storage for scheme 'oracle'"));
	assert_null(strstr(err, "hunter2"));
	dtk_value_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store_local_database_lives_in_state_dir_with_private_dirs),
		cmocka_unit_test(test_store_upsert_same_time_overwrites),
		cmocka_unit_test(test_store_history_excludes_missing_and_the_current_time),
		cmocka_unit_test(test_store_history_min_points_reaches_back_past_since),
		cmocka_unit_test(test_store_newest_skips_missing_and_last_does_not),
		cmocka_unit_test(test_store_detections_are_saved_and_upserted_per_detector),
		cmocka_unit_test(test_store_retention_deletes_old_rows),
		cmocka_unit_test(test_store_unsupported_backends_fail_without_echoing_secrets),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
