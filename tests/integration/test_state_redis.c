/* Alert state in a real Redis (DTK_REDIS_URL) behind the dtk_state
 * functions: set/get/del with the keys exactly as given, expiry by Redis's
 * clock, SET NX races between two connections, SELECT and AUTH from the
 * URL, one reconnect after the server dropped a connection, and the
 * fleet.md claim protocol (claimed, held, sent, reclaimed after a dead
 * claimer, unclaim), which also runs on the local SQLite backend.
 *
 * The SQLite claim tests always run. Without DTK_REDIS_URL the Redis tests
 * are skipped with the reason (exit 77 when everything else passed), or
 * fail when DTK_REQUIRE_SERVICES=1. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/state.h"
#include "util/clock.h"
#include "util/redis.h"

static const char *redis_url;
static char run_id[64], sqlite_dir[64], sqlite_path[128];

typedef struct backend {
	const char *name;
	int redis;
	int64_t lease_ms; /* SQLite expiry counts whole seconds */
} backend;

static const backend on_sqlite = {"sqlite", 0, 1000}, on_redis = {"redis", 1, 300};

static const backend *B(void **state)
{
	return *state;
}

static void key_for(char *out, size_t outsz, const char *what)
{
	snprintf(out, outsz, "dtk:state:test:%s:%s", run_id, what);
}

static dtk_state *open_on(const backend *b)
{
	char err[512] = "";
	dtk_state *st = b->redis ? dtk_state_open_redis(redis_url, err, sizeof(err))
				 : dtk_state_open(sqlite_path, err, sizeof(err));
	if (!st)
		fail_msg("%s: %s", b->name, err);
	return st;
}

static dtk_redis *raw(void)
{
	char err[512];
	dtk_redis *r = dtk_redis_connect(redis_url, 2000, err, sizeof(err));
	if (!r)
		fail_msg("%s", err);
	return r;
}

/* One command on r returning its reply (failing the test on I/O errors). */
static dtk_redis_reply cmd(dtk_redis *r, int argc, const char **argv)
{
	char err[512];
	dtk_redis_reply rep;
	if (dtk_redis_command(r, argc, argv, NULL, &rep, err, sizeof(err)) != 0)
		fail_msg("%s: %s", argv[0], err);
	return rep;
}

/* redis_url with its path replaced by /db and, when password is non-NULL,
 * its user-info by :password (percent-encoded). */
static void url_variant(char *out, size_t outsz, int db, const char *password)
{
	dtk_redis_url u;
	char err[256], enc[256 * 3 + 1], host[300];
	const char *pw = password;
	if (dtk_redis_url_parse(redis_url, &u, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	if (!pw && u.password[0])
		pw = u.password;
	size_t o = 0;
	for (const char *p = pw ? pw : ""; *p; p++)
		o += (size_t)snprintf(enc + o, sizeof(enc) - o, "%%%02X", (unsigned char)*p);
	enc[o] = '\0';
	snprintf(host, sizeof(host), strchr(u.host, ':') ? "[%s]" : "%s", u.host);
	snprintf(out, outsz, "redis://%s%s%s%s%s:%d/%d", pw && !password ? u.user : "",
		 pw ? ":" : "", enc, pw ? "@" : "", host, u.port, db);
}

/* ---- Redis: plain state ---- */

static void test_state_redis_set_get_del_use_the_key_as_given(void **state)
{
	char key[192], err[512] = "", *v = NULL;
	key_for(key, sizeof(key), "cooldown:metric_a:0");
	dtk_state *st = open_on(&on_redis);
	assert_int_equal(dtk_state_get(st, key, 0, &v, err, sizeof(err)), 0);
	assert_null(v);
	assert_int_equal(dtk_state_set(st, key, "1718451000", 0, 3600, err, sizeof(err)), 0);
	assert_int_equal(dtk_state_get(st, key, 0, &v, err, sizeof(err)), 1);
	assert_string_equal(v, "1718451000");
	free(v);

	dtk_redis *r = raw();
	dtk_redis_reply rep = cmd(r, 2, (const char *[]){"GET", key});
	assert_int_equal(rep.type, DTK_REDIS_STRING);
	assert_string_equal(rep.str, "1718451000");
	dtk_redis_reply_free(&rep);
	rep = cmd(r, 2, (const char *[]){"PTTL", key});
	assert_int_equal(rep.type, DTK_REDIS_INTEGER);
	assert_true(rep.integer > 3590000 && rep.integer <= 3600000);
	dtk_redis_reply_free(&rep);

	/* no TTL: persists */
	assert_int_equal(dtk_state_set(st, key, "", 0, 0, err, sizeof(err)), 0);
	rep = cmd(r, 2, (const char *[]){"PTTL", key});
	assert_int_equal(rep.integer, -1);
	dtk_redis_reply_free(&rep);
	assert_int_equal(dtk_state_get(st, key, 0, &v, err, sizeof(err)), 1);
	assert_string_equal(v, "");
	free(v);

	assert_int_equal(dtk_state_del(st, key, err, sizeof(err)), 0);
	assert_int_equal(dtk_state_get(st, key, 0, &v, err, sizeof(err)), 0);
	assert_int_equal(dtk_state_del(st, key, err, sizeof(err)), 0);
	dtk_redis_free(&r);
	dtk_state_close(&st);
	assert_null(st);
}

static void test_state_redis_expiry_follows_redis_not_the_now_argument(void **state)
{
	char key[192], err[512] = "", *v = NULL;
	key_for(key, sizeof(key), "expiry");
	dtk_state *st = open_on(&on_redis);
	assert_int_equal(dtk_state_set(st, key, "x", 0, 1, err, sizeof(err)), 0);
	/* a far-future now does not expire it: Redis's clock decides */
	assert_int_equal(dtk_state_get(st, key, INT64_C(99999999999), &v, err, sizeof(err)), 1);
	free(v);
	assert_int_equal(dtk_state_set_nx(st, key, "y", INT64_C(99999999999), 1, err, sizeof(err)),
			 0);
	dtk_sleep_ms(1150);
	assert_int_equal(dtk_state_get(st, key, 0, &v, err, sizeof(err)), 0);
	assert_int_equal(dtk_state_set_nx(st, key, "y", 0, 1, err, sizeof(err)), 1);
	assert_int_equal(dtk_state_get(st, key, 0, &v, err, sizeof(err)), 1);
	assert_string_equal(v, "y");
	free(v);
	dtk_state_close(&st);
}

#define RACE_KEYS 200

typedef struct racer {
	pthread_barrier_t *go;
	int wins[RACE_KEYS];
	int errors;
	const char *value;
} racer;

static void *race(void *arg)
{
	racer *r = arg;
	char key[192], err[512];
	dtk_state *st = open_on(&on_redis);
	for (int i = 0; i < RACE_KEYS; i++) {
		char what[32];
		snprintf(what, sizeof(what), "race:%d", i);
		key_for(key, sizeof(key), what);
		pthread_barrier_wait(r->go);
		int got = dtk_state_set_nx(st, key, r->value, 0, 60, err, sizeof(err));
		if (got < 0)
			r->errors++;
		else
			r->wins[i] = got;
	}
	dtk_state_close(&st);
	return NULL;
}

static void test_state_redis_set_nx_race_has_one_winner_per_key(void **state)
{
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, 2);
	racer a = {.go = &go, .value = "a"}, b = {.go = &go, .value = "b"};
	pthread_t ta, tb;
	assert_int_equal(pthread_create(&ta, NULL, race, &a), 0);
	assert_int_equal(pthread_create(&tb, NULL, race, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	pthread_barrier_destroy(&go);
	assert_int_equal(a.errors + b.errors, 0);
	int awins = 0;
	dtk_state *st = open_on(&on_redis);
	for (int i = 0; i < RACE_KEYS; i++) {
		char key[192], what[32], err[512], *v = NULL;
		assert_int_equal(a.wins[i] + b.wins[i], 1);
		awins += a.wins[i];
		snprintf(what, sizeof(what), "race:%d", i);
		key_for(key, sizeof(key), what);
		assert_int_equal(dtk_state_get(st, key, 0, &v, err, sizeof(err)), 1);
		assert_string_equal(v, a.wins[i] ? "a" : "b");
		free(v);
	}
	printf("a won %d of %d keys\n", awins, RACE_KEYS);
	dtk_state_close(&st);
}

static void test_state_redis_selects_the_database_of_the_url(void **state)
{
	char url[1600], key[192], err[512] = "", *v = NULL;
	key_for(key, sizeof(key), "db1");
	url_variant(url, sizeof(url), 1, NULL);
	dtk_state *one = dtk_state_open_redis(url, err, sizeof(err));
	if (!one)
		fail_msg("%s", err);
	dtk_state *zero = open_on(&on_redis); /* DTK_REDIS_URL's database */
	assert_int_equal(dtk_state_set(one, key, "in-1", 0, 60, err, sizeof(err)), 0);
	assert_int_equal(dtk_state_get(one, key, 0, &v, err, sizeof(err)), 1);
	free(v);
	dtk_redis_url u;
	assert_int_equal(dtk_redis_url_parse(redis_url, &u, err, sizeof(err)), 0);
	if (u.db != 1)
		assert_int_equal(dtk_state_get(zero, key, 0, &v, err, sizeof(err)), 0);
	assert_int_equal(dtk_state_del(one, key, err, sizeof(err)), 0);
	dtk_state_close(&one);
	dtk_state_close(&zero);
}

static void test_state_redis_wrong_password_fails_without_showing_it(void **state)
{
	char url[1600], err[512] = "";
	url_variant(url, sizeof(url), 0, "Wr0ngS3cretPW");
	dtk_state *st = dtk_state_open_redis(url, err, sizeof(err));
	assert_null(st);
	printf("%s\n", err);
	assert_non_null(strstr(err, "Redis"));
	assert_non_null(strstr(err, "AUTH"));
	assert_null(strstr(err, "Wr0ngS3cretPW"));
}

static void test_redis_reconnects_once_after_the_server_dropped_the_connection(void **state)
{
	dtk_redis *r = raw(), *killer = raw();
	dtk_redis_reply rep = cmd(r, 2, (const char *[]){"CLIENT", "ID"});
	assert_int_equal(rep.type, DTK_REDIS_INTEGER);
	char id[32];
	snprintf(id, sizeof(id), "%lld", rep.integer);
	dtk_redis_reply_free(&rep);
	rep = cmd(killer, 4, (const char *[]){"CLIENT", "KILL", "ID", id});
	assert_int_equal(rep.type, DTK_REDIS_INTEGER);
	assert_int_equal(rep.integer, 1);
	dtk_redis_reply_free(&rep);
	/* the next command notices, reconnects and succeeds */
	rep = cmd(r, 1, (const char *[]){"PING"});
	assert_int_equal(rep.type, DTK_REDIS_STRING);
	assert_string_equal(rep.str, "PONG");
	dtk_redis_reply_free(&rep);
	rep = cmd(r, 2, (const char *[]){"CLIENT", "ID"});
	assert_true(rep.type == DTK_REDIS_INTEGER && rep.integer != strtoll(id, NULL, 10));
	dtk_redis_reply_free(&rep);
	/* a server error is a reply, not a failure */
	rep = cmd(r, 1, (const char *[]){"NOSUCHCOMMAND"});
	assert_int_equal(rep.type, DTK_REDIS_ERROR);
	dtk_redis_reply_free(&rep);
	dtk_redis_free(&r);
	dtk_redis_free(&killer);
}

/* ---- the claim protocol, on both backends ---- */

static void test_claim_first_claims_others_see_held_then_sent(void **state)
{
	const backend *b = B(state);
	char key[192], err[512] = "";
	key_for(key, sizeof(key), b->redis ? "alert:m:0:100" : "alert:m:0:101");
	dtk_state *a = open_on(b), *o = open_on(b);
	assert_int_equal(dtk_state_claim(a, key, "w1:r1", 60000, 0, err, sizeof(err)),
			 DTK_CLAIM_CLAIMED);
	/* a retried call by the same owner still holds it */
	assert_int_equal(dtk_state_claim(a, key, "w1:r1", 60000, 0, err, sizeof(err)),
			 DTK_CLAIM_CLAIMED);
	assert_int_equal(dtk_state_claim(o, key, "w2:r1", 60000, 0, err, sizeof(err)),
			 DTK_CLAIM_HELD);
	double t0 = dtk_mono_ms();
	assert_int_equal(dtk_state_claim(o, key, "w2:r1", 60000, 300, err, sizeof(err)),
			 DTK_CLAIM_HELD);
	double took = dtk_mono_ms() - t0;
	assert_true(took >= 280 && took < 2000);
	assert_int_equal(dtk_state_unclaim(o, key, "w2:r1", err, sizeof(err)), 0);
	assert_int_equal(dtk_state_mark_sent(a, key, err, sizeof(err)), 0);
	assert_int_equal(dtk_state_claim(o, key, "w2:r1", 60000, 1000, err, sizeof(err)),
			 DTK_CLAIM_SENT);
	assert_int_equal(dtk_state_claim(a, key, "w1:r1", 60000, 0, err, sizeof(err)),
			 DTK_CLAIM_SENT);
	assert_int_equal(dtk_state_unclaim(a, key, "w1:r1", err, sizeof(err)), 0);
	if (b->redis) {
		dtk_redis *r = raw();
		dtk_redis_reply rep = cmd(r, 2, (const char *[]){"PTTL", key});
		assert_true(rep.integer > 604700000 && rep.integer <= 604800000);
		dtk_redis_reply_free(&rep);
		dtk_redis_free(&r);
	}
	dtk_state_del(a, key, err, sizeof(err));
	dtk_state_close(&a);
	dtk_state_close(&o);
}

static void test_claim_of_a_dead_claimer_is_taken_over_after_its_lease(void **state)
{
	const backend *b = B(state);
	char key[192], err[512] = "";
	key_for(key, sizeof(key), b->redis ? "alert:m:0:200" : "alert:m:0:201");
	dtk_state *a = open_on(b), *o = open_on(b);
	assert_int_equal(dtk_state_claim(a, key, "dead:r1", b->lease_ms, 0, err, sizeof(err)),
			 DTK_CLAIM_CLAIMED);
	double t0 = dtk_mono_ms();
	assert_int_equal(
	    dtk_state_claim(o, key, "w2:r1", 60000, b->lease_ms + 3000, err, sizeof(err)),
	    DTK_CLAIM_RECLAIMED);
	double took = dtk_mono_ms() - t0;
	printf("%s: took over after %.0f ms (lease %lld ms)\n", b->name, took,
	       (long long)b->lease_ms);
	assert_true(took < (double)b->lease_ms + 2500);
	/* the dead claimer cannot give away what is no longer its own */
	assert_int_equal(dtk_state_unclaim(a, key, "dead:r1", err, sizeof(err)), 0);
	assert_int_equal(dtk_state_claim(a, key, "dead:r1", 60000, 0, err, sizeof(err)),
			 DTK_CLAIM_HELD);
	dtk_state_del(a, key, err, sizeof(err));
	dtk_state_close(&a);
	dtk_state_close(&o);
}

typedef struct marker {
	const backend *b;
	const char *key;
	int64_t after_ms;
	int rc;
} marker;

static void *mark_later(void *arg)
{
	marker *m = arg;
	char err[512];
	dtk_state *st = open_on(m->b);
	dtk_sleep_ms(m->after_ms);
	m->rc = dtk_state_mark_sent(st, m->key, err, sizeof(err));
	dtk_state_close(&st);
	return NULL;
}

static void test_claim_waiter_sees_sent_when_the_holder_finishes(void **state)
{
	const backend *b = B(state);
	char key[192], err[512] = "";
	key_for(key, sizeof(key), b->redis ? "alert:m:0:300" : "alert:m:0:301");
	dtk_state *a = open_on(b), *o = open_on(b);
	assert_int_equal(dtk_state_claim(a, key, "w1:r1", 60000, 0, err, sizeof(err)),
			 DTK_CLAIM_CLAIMED);
	marker m = {b, key, 200, -1};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, mark_later, &m), 0);
	assert_int_equal(dtk_state_claim(o, key, "w2:r1", 60000, 5000, err, sizeof(err)),
			 DTK_CLAIM_SENT);
	pthread_join(th, NULL);
	assert_int_equal(m.rc, 0);
	dtk_state_del(a, key, err, sizeof(err));
	dtk_state_close(&a);
	dtk_state_close(&o);
}

static void test_claim_unclaim_after_a_failed_send_frees_it_at_once(void **state)
{
	const backend *b = B(state);
	char key[192], err[512] = "";
	key_for(key, sizeof(key), b->redis ? "alert:m:0:400" : "alert:m:0:401");
	dtk_state *a = open_on(b), *o = open_on(b);
	assert_int_equal(dtk_state_claim(a, key, "w1:r1", 60000, 0, err, sizeof(err)),
			 DTK_CLAIM_CLAIMED);
	assert_int_equal(dtk_state_unclaim(o, key, "w2:r1", err, sizeof(err)), 0);
	assert_int_equal(dtk_state_unclaim(a, key, "w1:r1", err, sizeof(err)), 1);
	assert_int_equal(dtk_state_claim(o, key, "w2:r1", 60000, 0, err, sizeof(err)),
			 DTK_CLAIM_CLAIMED);
	assert_int_equal(dtk_state_claim(a, key, "sent", 60000, 0, err, sizeof(err)),
			 DTK_CLAIM_ERROR);
	assert_non_null(strstr(err, "owner"));
	assert_int_equal(dtk_state_claim(a, key, "", 60000, 0, err, sizeof(err)), DTK_CLAIM_ERROR);
	dtk_state_del(a, key, err, sizeof(err));
	dtk_state_close(&a);
	dtk_state_close(&o);
}

/* ---- setup ---- */

static int sqlite_setup(void **state)
{
	snprintf(sqlite_dir, sizeof(sqlite_dir), "/tmp/dtk-state-redis-XXXXXX");
	if (!mkdtemp(sqlite_dir))
		return -1;
	snprintf(sqlite_path, sizeof(sqlite_path), "%s/dtk.db", sqlite_dir);
	return 0;
}

static int sqlite_teardown(void **state)
{
	char p[160];
	const char *suffix[] = {"", "-wal", "-shm"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", sqlite_path, suffix[i]);
		unlink(p);
	}
	rmdir(sqlite_dir);
	return 0;
}

/* Deletes every key this run wrote. */
static int redis_teardown(void **state)
{
	char pattern[160];
	snprintf(pattern, sizeof(pattern), "dtk:state:test:%s:*", run_id);
	dtk_redis *r = raw();
	dtk_redis_reply rep = cmd(r, 2, (const char *[]){"KEYS", pattern});
	for (size_t i = 0; i < rep.nelem; i++) {
		dtk_redis_reply d = cmd(r, 2, (const char *[]){"DEL", rep.elem[i].str});
		dtk_redis_reply_free(&d);
	}
	dtk_redis_reply_free(&rep);
	dtk_redis_free(&r);
	return 0;
}

int main(void)
{
	snprintf(run_id, sizeof(run_id), "%ld-%lld", (long)getpid(), (long long)dtk_now_ms());
	const struct CMUnitTest local[] = {
	    cmocka_unit_test_prestate(test_claim_first_claims_others_see_held_then_sent,
				      (void *)&on_sqlite),
	    cmocka_unit_test_prestate(test_claim_of_a_dead_claimer_is_taken_over_after_its_lease,
				      (void *)&on_sqlite),
	    cmocka_unit_test_prestate(test_claim_waiter_sees_sent_when_the_holder_finishes,
				      (void *)&on_sqlite),
	    cmocka_unit_test_prestate(test_claim_unclaim_after_a_failed_send_frees_it_at_once,
				      (void *)&on_sqlite),
	};
	const struct CMUnitTest shared[] = {
	    cmocka_unit_test(test_state_redis_set_get_del_use_the_key_as_given),
	    cmocka_unit_test(test_state_redis_expiry_follows_redis_not_the_now_argument),
	    cmocka_unit_test(test_state_redis_set_nx_race_has_one_winner_per_key),
	    cmocka_unit_test(test_state_redis_selects_the_database_of_the_url),
	    cmocka_unit_test(test_state_redis_wrong_password_fails_without_showing_it),
	    cmocka_unit_test(test_redis_reconnects_once_after_the_server_dropped_the_connection),
	    cmocka_unit_test_prestate(test_claim_first_claims_others_see_held_then_sent,
				      (void *)&on_redis),
	    cmocka_unit_test_prestate(test_claim_of_a_dead_claimer_is_taken_over_after_its_lease,
				      (void *)&on_redis),
	    cmocka_unit_test_prestate(test_claim_waiter_sees_sent_when_the_holder_finishes,
				      (void *)&on_redis),
	    cmocka_unit_test_prestate(test_claim_unclaim_after_a_failed_send_frees_it_at_once,
				      (void *)&on_redis),
	};
	int require =
	    getenv("DTK_REQUIRE_SERVICES") && strcmp(getenv("DTK_REQUIRE_SERVICES"), "1") == 0;
	redis_url = getenv("DTK_REDIS_URL");
	if (redis_url && !*redis_url)
		redis_url = NULL;
	int failed = cmocka_run_group_tests_name("sqlite", local, sqlite_setup, sqlite_teardown);
	if (!redis_url) {
		printf("SKIP redis: DTK_REDIS_URL not set (scripts/services.sh start redis; eval "
		       "\"$(scripts/services.sh env)\")\n");
		return failed ? 1 : require ? 1 : 77;
	}
	failed += cmocka_run_group_tests_name("redis", shared, NULL, redis_teardown);
	return failed ? 1 : 0;
}
