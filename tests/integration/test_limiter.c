/* The connection limiter against a real Redis (DTK_REDIS_URL) and in
 * process: never more than the limit under contention, expired leases
 * reclaimed, renewal keeping a long holder, release on every path, Redis
 * down until the deadline (an error naming Redis, never the password),
 * fail-open.
 *
 * The in-process tests always run. Without DTK_REDIS_URL the Redis tests
 * are skipped with the reason (exit 77 when everything else passed), or
 * fail when DTK_REQUIRE_SERVICES=1. */
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "limiter.h"
#include "util/clock.h"
#include "util/redis.h"

static const char *redis_url; /* NULL: in-process group only */
static char run_id[48];

typedef struct mode {
	const char *name;
	int redis;
} mode;

static const mode in_process = {"in-process", 0}, in_redis = {"redis", 1};

static const mode *M(void **state)
{
	return *state;
}

static void key_for(char *out, size_t outsz, const char *what)
{
	snprintf(out, outsz, "test://%s/%s:1", run_id, what);
}

static dtk_limiter *limiter_for(const mode *m, int manual_renew)
{
	char err[512] = "";
	dtk_limiter_options o = {.redis_url = m->redis ? redis_url : NULL,
				 .manual_renew = manual_renew};
	dtk_limiter *l = dtk_limiter_new(&o, err, sizeof(err));
	if (!l)
		fail_msg("%s: %s", m->name, err);
	assert_int_equal(dtk_limiter_shared(l), m->redis);
	return l;
}

/* A raw connection to inspect dtk:sem:<key>. */
static long long zcard(const char *key)
{
	char err[512], skey[256];
	dtk_redis_reply rep;
	dtk_redis *r = dtk_redis_connect(redis_url, 2000, err, sizeof(err));
	if (!r)
		fail_msg("%s", err);
	snprintf(skey, sizeof(skey), "dtk:sem:%s", key);
	const char *argv[] = {"ZCARD", skey};
	assert_int_equal(dtk_redis_command(r, 2, argv, NULL, &rep, err, sizeof(err)), 0);
	assert_int_equal(rep.type, DTK_REDIS_INTEGER);
	long long n = rep.integer;
	dtk_redis_reply_free(&rep);
	dtk_redis_free(&r);
	return n;
}

static int closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* ---- contention ---- */

#define THREADS 8
#define ROUNDS 20
#define LIMIT 3

typedef struct contend {
	dtk_limiter *l;
	const char *key;
	int thread;
	atomic_int *current, *max, *done, *failed;
} contend;

static void *contender(void *arg)
{
	contend *c = arg;
	char member[64], err[512];
	for (int i = 0; i < ROUNDS; i++) {
		dtk_limiter_lease *lease = NULL;
		snprintf(member, sizeof(member), "w%d:req%d", c->thread, i);
		int rc = dtk_limiter_acquire(c->l, c->key, LIMIT, member, 10000,
					     dtk_now_ms() + 60000, &lease, NULL, err, sizeof(err));
		if (rc != DTK_LIMITER_GRANTED) {
			fprintf(stderr, "acquire: %s\n", err);
			atomic_fetch_add(c->failed, 1);
			continue;
		}
		int now = atomic_fetch_add(c->current, 1) + 1;
		int seen = atomic_load(c->max);
		while (now > seen && !atomic_compare_exchange_weak(c->max, &seen, now))
			;
		dtk_sleep_ms(2 + (c->thread + i) % 3);
		atomic_fetch_sub(c->current, 1);
		if (dtk_limiter_release(&lease, err, sizeof(err)) != 0) {
			fprintf(stderr, "release: %s\n", err);
			atomic_fetch_add(c->failed, 1);
		}
		assert_null(lease);
		atomic_fetch_add(c->done, 1);
	}
	return NULL;
}

static void test_limiter_never_grants_more_than_the_limit_under_contention(void **state)
{
	const mode *m = M(state);
	char key[128];
	key_for(key, sizeof(key), "contention");
	dtk_limiter *l = limiter_for(m, 0);
	atomic_int current = 0, max = 0, done = 0, failed = 0;
	pthread_t th[THREADS];
	contend c[THREADS];
	for (int i = 0; i < THREADS; i++) {
		c[i] = (contend){l, key, i, &current, &max, &done, &failed};
		assert_int_equal(pthread_create(&th[i], NULL, contender, &c[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	printf("%s: max held %d of limit %d\n", m->name, atomic_load(&max), LIMIT);
	assert_int_equal(atomic_load(&failed), 0);
	assert_int_equal(atomic_load(&done), THREADS * ROUNDS);
	assert_true(atomic_load(&max) <= LIMIT);
	assert_true(atomic_load(&max) >= 2); /* there was contention to limit */
	if (m->redis)
		assert_int_equal(zcard(key), 0);
	dtk_limiter_free(&l);
	assert_null(l);
}

/* ---- full until the deadline, and a release letting a waiter in ---- */

static void test_limiter_full_source_fails_at_the_deadline_naming_the_key(void **state)
{
	const mode *m = M(state);
	char key[128], err[512] = "";
	key_for(key, sizeof(key), "full");
	dtk_limiter *l = limiter_for(m, 0);
	dtk_limiter_lease *a = NULL, *b = NULL;
	double waited = -1;
	assert_int_equal(dtk_limiter_acquire(l, key, 1, "w:a", 10000, dtk_now_ms() + 1000, &a,
					     &waited, err, sizeof(err)),
			 DTK_LIMITER_GRANTED);
	assert_true(waited >= 0 && waited < 1000);
	assert_true(dtk_limiter_lease_limited(a));
	assert_int_equal(dtk_limiter_acquire(l, key, 1, "w:b", 10000, dtk_now_ms() + 300, &b,
					     &waited, err, sizeof(err)),
			 DTK_LIMITER_FAILED);
	assert_null(b);
	assert_true(waited >= 250);
	assert_non_null(strstr(err, key));
	assert_non_null(strstr(err, "deadline"));
	/* one attempt only without a deadline */
	assert_int_equal(
	    dtk_limiter_acquire(l, key, 1, "w:b", 10000, 0, &b, &waited, err, sizeof(err)),
	    DTK_LIMITER_FAILED);
	assert_true(waited < 250);
	/* a higher limit for the same key lets a second holder in */
	assert_int_equal(
	    dtk_limiter_acquire(l, key, 2, "w:b", 10000, 0, &b, NULL, err, sizeof(err)),
	    DTK_LIMITER_GRANTED);
	assert_int_equal(dtk_limiter_release(&a, err, sizeof(err)), 0);
	assert_int_equal(dtk_limiter_release(&b, err, sizeof(err)), 0);
	if (m->redis)
		assert_int_equal(zcard(key), 0);
	dtk_limiter_free(&l);
}

typedef struct releaser {
	dtk_limiter_lease *lease;
	int64_t after_ms;
} releaser;

static void *release_later(void *arg)
{
	releaser *r = arg;
	char err[512];
	dtk_sleep_ms(r->after_ms);
	dtk_limiter_release(&r->lease, err, sizeof(err));
	return NULL;
}

static void test_limiter_waiter_gets_the_slot_a_release_frees(void **state)
{
	const mode *m = M(state);
	char key[128], err[512] = "";
	key_for(key, sizeof(key), "handover");
	dtk_limiter *l = limiter_for(m, 0);
	releaser r = {NULL, 300};
	assert_int_equal(
	    dtk_limiter_acquire(l, key, 1, "w:first", 10000, 0, &r.lease, NULL, err, sizeof(err)),
	    DTK_LIMITER_GRANTED);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, release_later, &r), 0);
	dtk_limiter_lease *b = NULL;
	double waited = 0;
	assert_int_equal(dtk_limiter_acquire(l, key, 1, "w:second", 10000, dtk_now_ms() + 10000, &b,
					     &waited, err, sizeof(err)),
			 DTK_LIMITER_GRANTED);
	pthread_join(th, NULL);
	printf("%s: waited %.0f ms for a slot released after 300 ms\n", m->name, waited);
	assert_true(waited >= 250 && waited < 5000);
	assert_int_equal(dtk_limiter_release(&b, err, sizeof(err)), 0);
	dtk_limiter_free(&l);
}

/* ---- Redis only: expiry, renewal, Redis down, fail-open ---- */

static void test_limiter_expired_lease_is_reclaimed(void **state)
{
	char key[128], err[512] = "";
	key_for(key, sizeof(key), "expiry");
	/* manual renewal: the holder "dies" and never renews nor releases */
	dtk_limiter *dead = limiter_for(&in_redis, 1), *l = limiter_for(&in_redis, 0);
	dtk_limiter_lease *a = NULL, *b = NULL;
	assert_int_equal(
	    dtk_limiter_acquire(dead, key, 1, "dead:1", 400, 0, &a, NULL, err, sizeof(err)),
	    DTK_LIMITER_GRANTED);
	double waited = 0;
	assert_int_equal(dtk_limiter_acquire(l, key, 1, "alive:1", 10000, dtk_now_ms() + 5000, &b,
					     &waited, err, sizeof(err)),
			 DTK_LIMITER_GRANTED);
	printf("waited %.0f ms for a 400 ms lease to lapse\n", waited);
	assert_true(waited >= 300 && waited < 3000);
	assert_int_equal(zcard(key), 1);
	/* the dead holder's renewal finds its lease gone */
	assert_int_equal(dtk_limiter_renew(a, err, sizeof(err)), 0);
	assert_true(dtk_limiter_lease_lost(a));
	assert_int_equal(dtk_limiter_release(&a, err, sizeof(err)), 0);
	assert_int_equal(zcard(key), 1); /* releasing a lost lease takes nothing else */
	assert_int_equal(dtk_limiter_release(&b, err, sizeof(err)), 0);
	assert_int_equal(zcard(key), 0);
	dtk_limiter_free(&dead);
	dtk_limiter_free(&l);
}

static void test_limiter_renewal_keeps_a_long_holders_lease(void **state)
{
	char key[128], err[512] = "";
	key_for(key, sizeof(key), "renewal");
	dtk_limiter *l = limiter_for(&in_redis, 0), *manual = limiter_for(&in_redis, 1);
	dtk_limiter_lease *a = NULL, *m = NULL, *b = NULL;
	/* held for 5 TTLs of 300 ms: the thread renews every 100 ms */
	assert_int_equal(
	    dtk_limiter_acquire(l, key, 2, "long:1", 300, 0, &a, NULL, err, sizeof(err)),
	    DTK_LIMITER_GRANTED);
	/* and one renewed by hand every 100 ms */
	assert_int_equal(
	    dtk_limiter_acquire(manual, key, 2, "manual:1", 300, 0, &m, NULL, err, sizeof(err)),
	    DTK_LIMITER_GRANTED);
	for (int i = 0; i < 15; i++) {
		dtk_sleep_ms(100);
		assert_int_equal(dtk_limiter_renew(m, err, sizeof(err)), 1);
		assert_int_equal(
		    dtk_limiter_acquire(l, key, 2, "other:1", 300, 0, &b, NULL, err, sizeof(err)),
		    DTK_LIMITER_FAILED);
	}
	assert_false(dtk_limiter_lease_lost(a));
	assert_false(dtk_limiter_lease_lost(m));
	assert_int_equal(zcard(key), 2);
	assert_int_equal(dtk_limiter_release(&a, err, sizeof(err)), 0);
	assert_int_equal(
	    dtk_limiter_acquire(l, key, 2, "other:1", 300, 0, &b, NULL, err, sizeof(err)),
	    DTK_LIMITER_GRANTED);
	assert_int_equal(dtk_limiter_release(&b, err, sizeof(err)), 0);
	assert_int_equal(dtk_limiter_release(&m, err, sizeof(err)), 0);
	assert_int_equal(zcard(key), 0);
	dtk_limiter_free(&manual);
	dtk_limiter_free(&l);
}

static void test_limiter_release_on_every_path_leaves_nothing_held(void **state)
{
	char key[128], err[512] = "";
	key_for(key, sizeof(key), "release");
	dtk_limiter *l = limiter_for(&in_redis, 0);
	dtk_limiter_lease *a = NULL, *b = NULL;
	assert_int_equal(dtk_limiter_release(NULL, err, sizeof(err)), 0);
	assert_int_equal(dtk_limiter_release(&a, err, sizeof(err)), 0);
	/* a failed acquire leaves no member behind */
	assert_int_equal(
	    dtk_limiter_acquire(l, key, 1, "r:1", 10000, 0, &a, NULL, err, sizeof(err)),
	    DTK_LIMITER_GRANTED);
	assert_int_equal(
	    dtk_limiter_acquire(l, key, 1, "r:2", 10000, 0, &b, NULL, err, sizeof(err)),
	    DTK_LIMITER_FAILED);
	assert_int_equal(zcard(key), 1);
	assert_int_equal(dtk_limiter_release(&a, err, sizeof(err)), 0);
	assert_null(a);
	assert_int_equal(zcard(key), 0);
	/* a retried acquire by the same member does not count twice */
	assert_int_equal(
	    dtk_limiter_acquire(l, key, 2, "r:3", 10000, 0, &a, NULL, err, sizeof(err)),
	    DTK_LIMITER_GRANTED);
	assert_int_equal(
	    dtk_limiter_acquire(l, key, 2, "r:3", 10000, 0, &b, NULL, err, sizeof(err)),
	    DTK_LIMITER_GRANTED);
	assert_int_equal(zcard(key), 1);
	assert_int_equal(dtk_limiter_release(&b, err, sizeof(err)), 0);
	assert_int_equal(dtk_limiter_release(&a, err, sizeof(err)), 0);
	assert_int_equal(zcard(key), 0);
	/* bad arguments fail without a lease */
	assert_int_equal(
	    dtk_limiter_acquire(l, key, 0, "r:4", 10000, 0, &a, NULL, err, sizeof(err)),
	    DTK_LIMITER_FAILED);
	assert_null(a);
	dtk_limiter_free(&l);
}

static void test_limiter_redis_down_fails_at_the_deadline_naming_redis(void **state)
{
	char url[128], err[512] = "";
	snprintf(url, sizeof(url), "redis://:hunter2secret@127.0.0.1:%d/0", closed_port());
	dtk_limiter_options o = {.redis_url = url, .timeout_ms = 200};
	dtk_limiter *l = dtk_limiter_new(&o, err, sizeof(err));
	assert_non_null(l);
	dtk_limiter_lease *a = NULL;
	double waited = 0, t0 = dtk_mono_ms();
	assert_int_equal(dtk_limiter_acquire(l, "postgres://db:5432", 5, "w:1", 40000,
					     dtk_now_ms() + 600, &a, &waited, err, sizeof(err)),
			 DTK_LIMITER_FAILED);
	double took = dtk_mono_ms() - t0;
	printf("%s (after %.0f ms)\n", err, took);
	assert_null(a);
	assert_true(waited >= 550 && took < 600 + 1000);
	assert_non_null(strstr(err, "Redis"));
	assert_non_null(strstr(err, "127.0.0.1"));
	assert_null(strstr(err, "hunter2secret"));
	dtk_limiter_free(&l);
}

static void test_limiter_fail_open_runs_unlimited_when_redis_is_down(void **state)
{
	char url[128], err[512] = "";
	snprintf(url, sizeof(url), "redis://:hunter2secret@127.0.0.1:%d/0", closed_port());
	dtk_limiter_options o = {.redis_url = url, .fail_open = 1, .timeout_ms = 200};
	dtk_limiter *l = dtk_limiter_new(&o, err, sizeof(err));
	assert_non_null(l);
	dtk_limiter_lease *a = NULL;
	double waited = 0;
	assert_int_equal(dtk_limiter_acquire(l, "postgres://db:5432", 5, "w:1", 40000,
					     dtk_now_ms() + 5000, &a, &waited, err, sizeof(err)),
			 DTK_LIMITER_OPEN);
	assert_non_null(a);
	assert_false(dtk_limiter_lease_limited(a));
	assert_true(waited < 1000);
	assert_non_null(strstr(err, "Redis"));
	assert_null(strstr(err, "hunter2secret"));
	assert_int_equal(dtk_limiter_renew(a, err, sizeof(err)), 1);
	assert_int_equal(dtk_limiter_release(&a, err, sizeof(err)), 0);
	dtk_limiter_free(&l);
}

static int group_setup(void **state)
{
	return 0;
}

int main(void)
{
	snprintf(run_id, sizeof(run_id), "limiter-%ld-%lld", (long)getpid(),
		 (long long)dtk_now_ms());
	const struct CMUnitTest local[] = {
	    cmocka_unit_test_prestate(
		test_limiter_never_grants_more_than_the_limit_under_contention,
		(void *)&in_process),
	    cmocka_unit_test_prestate(test_limiter_full_source_fails_at_the_deadline_naming_the_key,
				      (void *)&in_process),
	    cmocka_unit_test_prestate(test_limiter_waiter_gets_the_slot_a_release_frees,
				      (void *)&in_process),
	};
	const struct CMUnitTest shared[] = {
	    cmocka_unit_test_prestate(
		test_limiter_never_grants_more_than_the_limit_under_contention, (void *)&in_redis),
	    cmocka_unit_test_prestate(test_limiter_full_source_fails_at_the_deadline_naming_the_key,
				      (void *)&in_redis),
	    cmocka_unit_test_prestate(test_limiter_waiter_gets_the_slot_a_release_frees,
				      (void *)&in_redis),
	    cmocka_unit_test(test_limiter_expired_lease_is_reclaimed),
	    cmocka_unit_test(test_limiter_renewal_keeps_a_long_holders_lease),
	    cmocka_unit_test(test_limiter_release_on_every_path_leaves_nothing_held),
	    cmocka_unit_test(test_limiter_redis_down_fails_at_the_deadline_naming_redis),
	    cmocka_unit_test(test_limiter_fail_open_runs_unlimited_when_redis_is_down),
	};
	int require =
	    getenv("DTK_REQUIRE_SERVICES") && strcmp(getenv("DTK_REQUIRE_SERVICES"), "1") == 0;
	redis_url = getenv("DTK_REDIS_URL");
	if (redis_url && !*redis_url)
		redis_url = NULL;
	int failed = cmocka_run_group_tests_name("in-process", local, group_setup, NULL);
	if (!redis_url) {
		printf("SKIP redis: DTK_REDIS_URL not set (scripts/services.sh start redis; eval "
		       "\"$(scripts/services.sh env)\")\n");
		return failed ? 1 : require ? 1 : 77;
	}
	failed += cmocka_run_group_tests_name("redis", shared, group_setup, NULL);
	return failed ? 1 : 0;
}
