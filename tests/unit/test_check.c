/* core/check.c: the pipeline as a library call. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "check.h"
#include "collect/collector.h"
#include "config/config.h"
#include "limiter.h"
#include "store/store.h"
#include "util/pyfmt.h"

/* 2024-11-02T14:30:00Z */
#define T0 (INT64_C(20029) * 86400 + 14 * 3600 + 30 * 60)

static char state_dir[64];

static int setup(void **state)
{
	snprintf(state_dir, sizeof(state_dir), "/tmp/dtk-test-check-XXXXXX");
	if (!mkdtemp(state_dir))
		return -1;
	setenv("DTK_STATE_DIR", state_dir, 1);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", state_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static dtk_config *load(const char *text)
{
	char err[1024];
	dtk_config *cfg = NULL;
	dtk_config_options opt = {.env_mode = DTK_ENV_STRICT};
	if (dtk_config_parse(text, strlen(text), "check.yaml", &opt, &cfg, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	return cfg;
}

/* Fills the metric's storage with `days` of history before T0. */
static void load_history(const dtk_config *cfg, int days)
{
	char err[1024];
	dtk_rows rows;
	dtk_rows_init(&rows);
	dtk_collect_request req = {.metric_name = cfg->name,
				   .execution_time = T0,
				   .period_start = T0 - (int64_t)days * 86400,
				   .period_finish = T0 - cfg->schedule.interval,
				   .interval = cfg->schedule.interval,
				   .interval_text = cfg->schedule.interval_text,
				   .base_dir = "."};
	assert_int_equal(cfg->collector.impl->collect(cfg->collector.compiled, &req, &rows, err,
						      sizeof(err)),
			 0);
	dtk_store *st = dtk_store_open(cfg->storage.type, cfg->storage.params, ".", NULL, err, sizeof(err));
	assert_non_null(st);
	assert_int_equal(dtk_store_upsert(st, cfg->name, rows.rows, rows.n, err, sizeof(err)), 0);
	dtk_store_close(&st);
	dtk_rows_clear(&rows);
}

static const dtk_value *first_item(const dtk_value *list)
{
	return list && list->type == DTK_V_LIST && list->u.list.n ? list->u.list.items[0] : NULL;
}

static const char *result_str(const dtk_check_result *r, const char *path)
{
	return dtk_value_cstr(dtk_value_path(r->json, path));
}

#define SPIKE_CONFIG                                                                          \
	"name: spiky\n"                                                                       \
	"collector:\n"                                                                        \
	"  type: synthetic\n"                                                                 \
	"  params:\n"                                                                         \
	"    base: 100\n"                                                                     \
	"    noise: 1\n"                                                                      \
	"    seed: 5\n"                                                                       \
	"    anomalies: [{start: \"-10m\", end: \"+10m\", factor: 3}]\n"                      \
	"detectors:\n"                                                                        \
	"  - {type: mad, params: {window_size: \"7 days\"}}\n"                                \
	"  - {type: threshold, params: {threshold: 1000}}\n"

static void test_check_flags_spike_and_times_every_stage(void **state)
{
	dtk_config *cfg = load(SPIKE_CONFIG);
	load_history(cfg, 7);
	dtk_check_options opt = {.has_time = 1, .requested_time = T0 + 125};
	dtk_check_result *r = NULL;
	assert_int_equal(dtk_check_run(cfg, &opt, NULL, &r), 0);
	assert_string_equal(r->status, "anomaly");
	assert_string_equal(result_str(r, "execution_time"), "2024-11-02T14:30:00Z");
	assert_string_equal(result_str(r, "requested_time"), "2024-11-02T14:32:05Z");
	assert_string_equal(result_str(r, "datapoint.timestamp"), "2024-11-02T14:20:00Z");
	const dtk_value *dets = dtk_value_map_get(r->json, "detections");
	assert_int_equal(dets->u.list.n, 2);
	assert_true(dtk_value_map_get(dets->u.list.items[0], "is_anomaly")->u.b);
	assert_false(dtk_value_map_get(dets->u.list.items[1], "is_anomaly")->u.b);
	const char *stages[] = {"queued", "limiter_wait", "collect", "store",
				"detect", "alert",	  "total"};
	for (size_t i = 0; i < 7; i++) {
		double ms;
		assert_true(dtk_value_number(dtk_value_map_get(
						     dtk_value_map_get(r->json, "timings_ms"), stages[i]),
					     &ms));
		assert_true(ms >= 0);
	}
	dtk_check_result_free(&r);
	dtk_config_free(&cfg);
}

static void test_check_current_point_is_not_in_its_own_baseline(void **state)
{
	dtk_config *cfg = load(SPIKE_CONFIG);
	load_history(cfg, 7);
	dtk_check_options opt = {.has_time = 1, .requested_time = T0};
	dtk_check_result *r = NULL;
	/* run twice: the second run finds the spike stored, and must still exclude it */
	for (int i = 0; i < 2; i++) {
		dtk_check_result_free(&r);
		assert_int_equal(dtk_check_run(cfg, &opt, NULL, &r), 0);
	}
	const dtk_value *mad = first_item(dtk_value_map_get(r->json, "detections"));
	double points;
	assert_true(dtk_value_number(dtk_value_path(mad, "metadata.window_points"), &points));
	assert_int_equal((int)points, 7 * 144 - 1);
	dtk_check_result_free(&r);
	dtk_config_free(&cfg);
}

static void test_check_missing_point_skips_statistics_and_stores_flag(void **state)
{
	dtk_config *cfg = load("name: gappy\n"
			       "collector:\n"
			       "  type: synthetic\n"
			       "  params: {base: 10, missing: [{start: \"-10m\", end: \"+10m\"}]}\n"
			       "detectors:\n"
			       "  - {type: zscore, params: {window_size: \"1 day\"}}\n"
			       "  - {type: missing_data, params: {consecutive_missing: 1}}\n");
	load_history(cfg, 1);
	dtk_check_options opt = {.has_time = 1, .requested_time = T0};
	dtk_check_result *r = NULL;
	assert_int_equal(dtk_check_run(cfg, &opt, NULL, &r), 0);
	assert_string_equal(r->status, "anomaly");
	assert_true(dtk_value_path(r->json, "datapoint.is_missing")->u.b);
	assert_int_equal(dtk_value_path(r->json, "datapoint.value")->type, DTK_V_NULL);
	const dtk_value *dets = dtk_value_map_get(r->json, "detections");
	assert_non_null(dtk_value_cstr(dtk_value_map_get(dets->u.list.items[0], "skipped")));
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(dets->u.list.items[1], "direction")),
			    "missing");
	dtk_check_result_free(&r);
	dtk_config_free(&cfg);
}

static void test_check_failed_collection_is_an_error_result_and_stores_nothing(void **state)
{
	dtk_config *cfg = load("name: broken\n"
			       "collector:\n"
			       "  type: sqlite\n"
			       "  params:\n"
			       "    path: /nonexistent/dtk/source.db\n"
			       "    query: \"SELECT 1 AS value WHERE '{{ period_start }}' < "
			       "'{{ period_finish }}'\"\n"
			       "storage: {type: sqlite, params: {path: \"${DTK_STATE_DIR}/s.db\"}}\n"
			       "detector: {type: threshold, params: {threshold: 1}}\n");
	dtk_check_options opt = {.has_time = 1, .requested_time = T0};
	dtk_check_result *r = NULL;
	assert_int_equal(dtk_check_run(cfg, &opt, NULL, &r), 0);
	assert_string_equal(r->status, "error");
	const dtk_value *errs = dtk_value_map_get(r->json, "errors");
	assert_true(errs->u.list.n >= 1);
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(errs->u.list.items[0], "stage")),
			    "collect");
	assert_int_equal(dtk_value_map_get(r->json, "datapoint")->type, DTK_V_NULL);
	char err[512];
	int64_t ts;
	int found = 1;
	dtk_store *st = dtk_store_open(cfg->storage.type, cfg->storage.params, ".", NULL, err, sizeof(err));
	assert_non_null(st);
	assert_int_equal(dtk_store_last(st, "broken", &ts, &found, err, sizeof(err)), 0);
	assert_false(found);
	dtk_store_close(&st);
	dtk_check_result_free(&r);
	dtk_config_free(&cfg);
}

typedef struct thread_arg {
	const dtk_config *cfg;
	int64_t t;
	char status[16];
	double score;
} thread_arg;

static void *run_thread(void *p)
{
	thread_arg *a = p;
	dtk_session *s = dtk_session_new();
	dtk_check_options opt = {.has_time = 1, .requested_time = a->t, .no_alerts = 1};
	for (int i = 0; i < 20; i++) {
		dtk_check_result *r = NULL;
		if (dtk_check_run(a->cfg, &opt, s, &r) != 0)
			break;
		snprintf(a->status, sizeof(a->status), "%s", r->status);
		const dtk_value *d0 =
			first_item(dtk_value_map_get(r->json, "detections"));
		if (!dtk_value_number(dtk_value_map_get(d0, "score"), &a->score))
			a->score = NAN;
		dtk_check_result_free(&r);
	}
	dtk_session_free(&s);
	return NULL;
}

static void test_check_runs_one_config_on_many_threads_with_identical_results(void **state)
{
	dtk_config *cfg = load(SPIKE_CONFIG);
	load_history(cfg, 7);
	thread_arg args[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		args[i] = (thread_arg){.cfg = cfg, .t = T0};
		assert_int_equal(pthread_create(&th[i], NULL, run_thread, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 4; i++) {
		assert_string_equal(args[i].status, "anomaly");
		assert_true(args[i].score == args[0].score);
	}
	dtk_config_free(&cfg);
}

static void test_check_waits_for_a_source_slot_and_fails_at_the_deadline(void **state)
{
	dtk_config *cfg = load("name: limited\n"
			       "collector:\n"
			       "  type: synthetic\n"
			       "  params: {base: 10, limit_key: \"test://source:1\", max_connections: 1}\n"
			       "detector: {type: threshold, params: {threshold: 100}}\n");
	char err[512];
	dtk_limiter_options lo = {0};
	dtk_limiter *lim = dtk_limiter_new(&lo, err, sizeof(err));
	assert_non_null(lim);
	dtk_limiter_lease *held = NULL;
	assert_int_equal(dtk_limiter_acquire(lim, "test://source:1", 1, "someone-else", 60000, 0,
					     &held, NULL, err, sizeof(err)),
			 DTK_LIMITER_GRANTED);
	dtk_check_options opt = {.has_time = 1,
				 .requested_time = T0,
				 .no_alerts = 1,
				 .limiter = lim,
				 .deadline_ms = dtk_now_ms() + 300};
	dtk_check_result *r = NULL;
	assert_int_equal(dtk_check_run(cfg, &opt, NULL, &r), 0);
	assert_string_equal(r->status, "error");
	const dtk_value *e0 = first_item(dtk_value_map_get(r->json, "errors"));
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(e0, "stage")), "limiter");
	assert_int_equal(dtk_value_map_get(r->json, "datapoint")->type, DTK_V_NULL);
	dtk_check_result_free(&r);

	assert_int_equal(dtk_limiter_release(&held, err, sizeof(err)), 0);
	opt.deadline_ms = dtk_now_ms() + 5000;
	assert_int_equal(dtk_check_run(cfg, &opt, NULL, &r), 0);
	assert_string_equal(r->status, "ok");
	/* the check gave its slot back: another holder gets it at once */
	assert_int_equal(dtk_limiter_acquire(lim, "test://source:1", 1, "next", 60000, 0, &held,
					     NULL, err, sizeof(err)),
			 DTK_LIMITER_GRANTED);
	dtk_limiter_release(&held, err, sizeof(err));
	dtk_check_result_free(&r);
	dtk_limiter_free(&lim);
	dtk_config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_check_flags_spike_and_times_every_stage, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_check_current_point_is_not_in_its_own_baseline,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_check_missing_point_skips_statistics_and_stores_flag, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_check_failed_collection_is_an_error_result_and_stores_nothing, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_check_runs_one_config_on_many_threads_with_identical_results, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_check_waits_for_a_source_slot_and_fails_at_the_deadline, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
