/* dtk-worker's check pool (worker/pool.c): one check per metric at a time,
 * in submission order, across many metrics, and dropping by partition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool.h"

#define NKEYS 3
#define PER_KEY 300
#define MANY 5000

typedef struct run_log {
	atomic_int running[NKEYS]; /* checks of key i running now */
	atomic_int overlap;	   /* a key ran twice at once */
	int64_t last[NKEYS];	   /* last offset run per key */
	atomic_int disorder;
	atomic_int done;
	atomic_int ran_partition[2];
	pthread_mutex_t gate_mu;
	pthread_cond_t gate_cv;
	int gate_open;
} run_log;

static dtk_wjob *job_new(const char *key, int32_t partition, int64_t offset)
{
	dtk_wjob *j = dtk_wjob_new(key, strlen(key), "{}", 2);
	assert_non_null(j);
	assert_string_equal(j->key, key);
	assert_memory_equal(j->payload, "{}", 2);
	j->partition = partition;
	j->offset = offset;
	return j;
}

static void wait_done(run_log *l, int n)
{
	for (int i = 0; i < 20000 && atomic_load(&l->done) < n; i++)
		usleep(1000);
	assert_int_equal(atomic_load(&l->done), n);
}

static void run_ordered(void *ctx, size_t thread, dtk_wjob *job)
{
	(void)thread;
	run_log *l = ctx;
	int k = job->key[1] - '0';
	if (atomic_fetch_add(&l->running[k], 1) != 0)
		atomic_store(&l->overlap, 1);
	if (job->offset != l->last[k] + 1)
		atomic_store(&l->disorder, 1);
	l->last[k] = job->offset;
	if (job->offset % 7 == 0)
		usleep(50); /* let other threads try to take the same key */
	atomic_fetch_sub(&l->running[k], 1);
	dtk_wjob_free(&job);
	atomic_fetch_add(&l->done, 1);
}

static void test_one_check_per_metric_in_order(void **state)
{
	(void)state;
	run_log l = {0};
	for (int k = 0; k < NKEYS; k++)
		l.last[k] = -1;
	dtk_pool *p = dtk_pool_new(8, run_ordered, &l);
	assert_non_null(p);
	for (int i = 0; i < PER_KEY; i++)
		for (int k = 0; k < NKEYS; k++) {
			char key[8];
			snprintf(key, sizeof(key), "k%d", k);
			dtk_pool_submit(p, job_new(key, 0, i));
		}
	wait_done(&l, NKEYS * PER_KEY);
	assert_int_equal(atomic_load(&l.overlap), 0);
	assert_int_equal(atomic_load(&l.disorder), 0);
	for (int k = 0; k < NKEYS; k++)
		assert_int_equal(l.last[k], PER_KEY - 1);
	dtk_pool_free(&p);
}

static void run_count(void *ctx, size_t thread, dtk_wjob *job)
{
	(void)thread;
	run_log *l = ctx;
	atomic_fetch_add(&l->ran_partition[job->partition], 1);
	dtk_wjob_free(&job);
	atomic_fetch_add(&l->done, 1);
}

static void test_many_metrics_each_run_once(void **state)
{
	(void)state;
	run_log l = {0};
	dtk_pool *p = dtk_pool_new(4, run_count, &l);
	assert_non_null(p);
	for (int i = 0; i < MANY; i++) {
		char key[32];
		snprintf(key, sizeof(key), "metric_%05d", i);
		dtk_pool_submit(p, job_new(key, 1, i));
		if (i % 2 == 0) /* a second request of the same metric */
			dtk_pool_submit(p, job_new(key, 1, i + MANY));
	}
	wait_done(&l, MANY + MANY / 2);
	assert_int_equal(atomic_load(&l.ran_partition[1]), MANY + MANY / 2);
	dtk_pool_free(&p);
}

static void run_gated(void *ctx, size_t thread, dtk_wjob *job)
{
	(void)thread;
	run_log *l = ctx;
	pthread_mutex_lock(&l->gate_mu);
	while (!l->gate_open)
		pthread_cond_wait(&l->gate_cv, &l->gate_mu);
	pthread_mutex_unlock(&l->gate_mu);
	run_count(ctx, thread, job);
}

static void dropped(void *ctx, dtk_wjob *job)
{
	int *n = ctx;
	assert_int_equal(job->partition, 1);
	(*n)++;
	dtk_wjob_free(&job);
}

static void test_drop_by_partition(void **state)
{
	(void)state;
	run_log l = {0};
	pthread_mutex_init(&l.gate_mu, NULL);
	pthread_cond_init(&l.gate_cv, NULL);
	dtk_pool *p = dtk_pool_new(2, run_gated, &l);
	assert_non_null(p);
	/* two blockers occupy both threads, then 100 jobs queue behind them */
	dtk_pool_submit(p, job_new("blocker_a", 0, 0));
	dtk_pool_submit(p, job_new("blocker_b", 0, 0));
	for (int i = 0; i < 2000 && dtk_pool_running(p) < 2; i++)
		usleep(1000);
	assert_int_equal(dtk_pool_running(p), 2);
	for (int i = 0; i < 100; i++) {
		char key[32];
		snprintf(key, sizeof(key), "m%d", i % 10);
		dtk_pool_submit(p, job_new(key, i % 2, i));
	}
	int32_t part1 = 1;
	int ndropped = 0;
	assert_int_equal(dtk_pool_drop(p, &part1, 1, dropped, &ndropped), 50);
	assert_int_equal(ndropped, 50);
	pthread_mutex_lock(&l.gate_mu);
	l.gate_open = 1;
	pthread_cond_broadcast(&l.gate_cv);
	pthread_mutex_unlock(&l.gate_mu);
	wait_done(&l, 52);
	usleep(20000);
	assert_int_equal(atomic_load(&l.done), 52);
	assert_int_equal(atomic_load(&l.ran_partition[0]), 52);
	assert_int_equal(atomic_load(&l.ran_partition[1]), 0);
	dtk_pool_free(&p);
	pthread_cond_destroy(&l.gate_cv);
	pthread_mutex_destroy(&l.gate_mu);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_check_per_metric_in_order),
		cmocka_unit_test(test_many_metrics_each_run_once),
		cmocka_unit_test(test_drop_by_partition),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
