/* limiter.h: Redis sorted-set semaphores, or per-process counters.
 *
 * Redis mode: each attempt is one EVALSHA of acquire_script on
 * dtk:sem:<key>; time comes from Redis TIME so worker clocks do not
 * matter. Connections come from a small pool (one per thread in flight,
 * kept for reuse); the renewal thread has its own. Held leases sit on a
 * list under the limiter's mutex, which the renewal thread walks.
 *
 * In-process mode: one counter per key under the same mutex, and a
 * condition variable that a release signals. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "limiter.h"
#include "util/clock.h"
#include "util/redis.h"

#define SEM_PREFIX "dtk:sem:"
#define BACKOFF_FIRST_MS 20
#define BACKOFF_MAX_MS 1000
#define DEFAULT_TIMEOUT_MS 1000

/* KEYS[1] the set; ARGV member, limit, ttl_ms. 1 granted, 0 full. A
 * member already in the set (a retried attempt whose reply was lost) is
 * granted again without counting twice. The set itself expires once its
 * longest lease would have. */
static const char acquire_script[] =
    "if redis.replicate_commands then redis.replicate_commands() end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local ttl = tonumber(ARGV[3])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))\n"
    "if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and\n"
    "   redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then\n"
    "  return 0\n"
    "end\n"
    "redis.call('ZADD', KEYS[1], string.format('%.0f', now + ttl), ARGV[1])\n"
    "if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end\n"
    "return 1\n";

/* KEYS[1] the set; ARGV member, ttl_ms. 1 renewed, 0 no longer held. */
static const char renew_script[] =
    "if redis.replicate_commands then redis.replicate_commands() end\n"
    "if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local ttl = tonumber(ARGV[2])\n"
    "redis.call('ZADD', KEYS[1], string.format('%.0f', now + ttl), ARGV[1])\n"
    "if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end\n"
    "return 1\n";

typedef struct local_key {
	char *key;
	int held, waiting; /* freed when both are 0 */
	struct local_key *next;
} local_key;

struct dtk_limiter_lease {
	dtk_limiter *l;
	char *key; /* Redis mode: dtk:sem:<key> */
	char *member;
	int64_t ttl_ms;
	int limited;
	int lost;			       /* under l->mu */
	double next_renew;		       /* mono ms; under l->mu */
	uint64_t id;			       /* names the lease to the renewal thread */
	local_key *lk;			       /* in-process mode */
	struct dtk_limiter_lease *prev, *next; /* l->held, Redis mode */
};

struct dtk_limiter {
	char *url; /* NULL: in-process */
	int fail_open, timeout_ms, manual_renew;
	char sha_acquire[41], sha_renew[41];
	pthread_mutex_t mu;
	pthread_cond_t freed; /* in-process: a slot was released (CLOCK_REALTIME) */
	pthread_cond_t wake;  /* the renewal thread (CLOCK_MONOTONIC) */
	dtk_redis **idle;
	size_t nidle, idle_cap;
	dtk_limiter_lease *held;
	local_key *keys;
	uint64_t next_id;
	int stop, renewer_running;
	pthread_t renewer;
};

int64_t dtk_limiter_ttl_ms(double timeout_s)
{
	if (!(timeout_s > 0))
		timeout_s = 0;
	double ms = timeout_s * 1000.0 + 30000.0;
	return ms >= (double)DTK_LIMITER_TTL_MAX_MS ? DTK_LIMITER_TTL_MAX_MS : (int64_t)ms;
}

int dtk_limiter_limit(int max_connections, int default_max)
{
	if (max_connections > 0)
		return max_connections;
	return default_max > 0 ? default_max : DTK_LIMITER_DEFAULT_MAX_CONNECTIONS;
}

int dtk_limiter_shared(const dtk_limiter *l)
{
	return l->url != NULL;
}

/* ---- connection pool ---- */

static dtk_redis *pool_get(dtk_limiter *l, char *errstr, size_t errstr_size)
{
	dtk_redis *r = NULL;
	pthread_mutex_lock(&l->mu);
	if (l->nidle)
		r = l->idle[--l->nidle];
	pthread_mutex_unlock(&l->mu);
	return r ? r : dtk_redis_new(l->url, l->timeout_ms, errstr, errstr_size);
}

static void pool_put(dtk_limiter *l, dtk_redis *r)
{
	pthread_mutex_lock(&l->mu);
	if (l->nidle == l->idle_cap) {
		size_t cap = l->idle_cap ? l->idle_cap * 2 : 8;
		dtk_redis **grown = realloc(l->idle, cap * sizeof(*grown));
		if (grown) {
			l->idle = grown;
			l->idle_cap = cap;
		}
	}
	if (l->nidle < l->idle_cap) {
		l->idle[l->nidle++] = r;
		r = NULL;
	}
	pthread_mutex_unlock(&l->mu);
	dtk_redis_free(&r);
}

/* One script on connection r: 1 or 0 from the script, -1 with errstr. */
static int run_script(dtk_limiter *l, dtk_redis *r, const char *script, const char *sha,
		      const char *key, int nargs, const char *const *args, char *errstr,
		      size_t errstr_size)
{
	dtk_redis_reply rep;
	int rc = -1;
	if (dtk_redis_eval(r, script, sha, 1, &key, nargs, args, &rep, errstr, errstr_size) != 0)
		return -1;
	if (rep.type == DTK_REDIS_INTEGER)
		rc = rep.integer ? 1 : 0;
	else
		snprintf(errstr, errstr_size, "Redis %s: %s", dtk_redis_shown(r),
			 rep.type == DTK_REDIS_ERROR ? rep.str : "unexpected reply to the script");
	dtk_redis_reply_free(&rep);
	return rc;
}

static int script_renew(dtk_limiter *l, dtk_redis *r, const char *key, const char *member,
			int64_t ttl_ms, char *errstr, size_t errstr_size)
{
	char ttl[24];
	snprintf(ttl, sizeof(ttl), "%" PRId64, ttl_ms);
	const char *args[] = {member, ttl};
	return run_script(l, r, renew_script, l->sha_renew, key, 2, args, errstr, errstr_size);
}

/* ---- renewal thread ---- */

typedef struct due_lease {
	uint64_t id;
	char *key, *member;
	int64_t ttl_ms;
	int rc;
} due_lease;

static void mono_deadline(struct timespec *ts, double at_mono_ms)
{
	double s = at_mono_ms / 1000.0;
	ts->tv_sec = (time_t)s;
	ts->tv_nsec = (long)((s - (double)ts->tv_sec) * 1e9);
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* After a renewal attempt: when the next one is due, or that the lease
 * is lost. Called under l->mu. */
static void renewed(dtk_limiter_lease *x, int rc)
{
	double now = dtk_mono_ms();
	if (rc == 1) {
		x->next_renew = now + (double)x->ttl_ms / 3.0;
	} else if (rc == 0) {
		x->lost = 1;
		x->next_renew = 1e300;
	} else {
		/* Redis failed: retry soon, well inside the TTL */
		double retry = (double)x->ttl_ms / 10.0;
		x->next_renew = now + (retry < 1000.0 ? retry : 1000.0);
	}
}

static void *renewer_main(void *arg)
{
	dtk_limiter *l = arg;
	char err[512];
	dtk_redis *r = dtk_redis_new(l->url, l->timeout_ms, err, sizeof(err));
	pthread_mutex_lock(&l->mu);
	while (!l->stop) {
		double now = dtk_mono_ms(), earliest = 1e300;
		size_t n = 0, cap = 0;
		due_lease *due = NULL;
		for (dtk_limiter_lease *x = l->held; x; x = x->next) {
			if (x->next_renew > now) {
				if (x->next_renew < earliest)
					earliest = x->next_renew;
				continue;
			}
			if (n == cap) {
				size_t c = cap ? cap * 2 : 8;
				due_lease *g = realloc(due, c * sizeof(*g));
				if (!g)
					break;
				due = g;
				cap = c;
			}
			due[n] =
			    (due_lease){x->id, strdup(x->key), strdup(x->member), x->ttl_ms, -1};
			if (!due[n].key || !due[n].member) {
				free(due[n].key);
				free(due[n].member);
				break;
			}
			n++;
		}
		if (n == 0) {
			free(due);
			if (earliest > now + 1000.0)
				earliest = now + 1000.0; /* also notices new leases */
			struct timespec ts;
			mono_deadline(&ts, earliest);
			pthread_cond_timedwait(&l->wake, &l->mu, &ts);
			continue;
		}
		pthread_mutex_unlock(&l->mu);
		for (size_t i = 0; i < n; i++)
			due[i].rc = r ? script_renew(l, r, due[i].key, due[i].member, due[i].ttl_ms,
						     err, sizeof(err))
				      : -1;
		pthread_mutex_lock(&l->mu);
		for (size_t i = 0; i < n; i++) {
			for (dtk_limiter_lease *x = l->held; x; x = x->next)
				if (x->id == due[i].id) {
					renewed(x, due[i].rc);
					break;
				}
			free(due[i].key);
			free(due[i].member);
		}
		free(due);
	}
	pthread_mutex_unlock(&l->mu);
	dtk_redis_free(&r);
	return NULL;
}

/* ---- lifecycle ---- */

dtk_limiter *dtk_limiter_new(const dtk_limiter_options *opt, char *errstr, size_t errstr_size)
{
	dtk_limiter_options none = {0};
	if (!opt)
		opt = &none;
	dtk_limiter *l = calloc(1, sizeof(*l));
	if (!l) {
		snprintf(errstr, errstr_size, "limiter: out of memory");
		return NULL;
	}
	l->fail_open = opt->fail_open;
	l->manual_renew = opt->manual_renew;
	l->timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms : DEFAULT_TIMEOUT_MS;
	pthread_condattr_t mono;
	pthread_condattr_init(&mono);
	pthread_condattr_setclock(&mono, CLOCK_MONOTONIC);
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->freed, NULL);
	pthread_cond_init(&l->wake, &mono);
	pthread_condattr_destroy(&mono);
	if (!opt->redis_url || !*opt->redis_url)
		return l;

	dtk_redis_url u;
	char err[512];
	if (dtk_redis_url_parse(opt->redis_url, &u, err, sizeof(err)) != 0) {
		snprintf(errstr, errstr_size, "limiter: %s", err);
		goto fail;
	}
	memset(u.password, 0, sizeof(u.password));
	l->url = strdup(opt->redis_url);
	if (!l->url || dtk_redis_script_sha1(acquire_script, l->sha_acquire) != 0 ||
	    dtk_redis_script_sha1(renew_script, l->sha_renew) != 0) {
		snprintf(errstr, errstr_size, "limiter: out of memory");
		goto fail;
	}
	if (!l->manual_renew) {
		if (pthread_create(&l->renewer, NULL, renewer_main, l) != 0) {
			snprintf(errstr, errstr_size, "limiter: cannot start the renewal thread");
			goto fail;
		}
		l->renewer_running = 1;
	}
	return l;
fail:
	dtk_limiter_free(&l);
	return NULL;
}

void dtk_limiter_free(dtk_limiter **lp)
{
	if (!lp || !*lp)
		return;
	dtk_limiter *l = *lp;
	if (l->renewer_running) {
		pthread_mutex_lock(&l->mu);
		l->stop = 1;
		pthread_cond_signal(&l->wake);
		pthread_mutex_unlock(&l->mu);
		pthread_join(l->renewer, NULL);
	}
	for (size_t i = 0; i < l->nidle; i++)
		dtk_redis_free(&l->idle[i]);
	free(l->idle);
	while (l->keys) {
		local_key *k = l->keys;
		l->keys = k->next;
		free(k->key);
		free(k);
	}
	pthread_cond_destroy(&l->freed);
	pthread_cond_destroy(&l->wake);
	pthread_mutex_destroy(&l->mu);
	if (l->url)
		memset(l->url, 0, strlen(l->url));
	free(l->url);
	free(l);
	*lp = NULL;
}

/* ---- leases ---- */

static dtk_limiter_lease *lease_new(dtk_limiter *l, const char *key, const char *member,
				    int64_t ttl_ms, int limited)
{
	dtk_limiter_lease *x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->l = l;
	x->ttl_ms = ttl_ms;
	x->limited = limited;
	x->key = strdup(key);
	x->member = strdup(member);
	if (!x->key || !x->member) {
		free(x->key);
		free(x->member);
		free(x);
		return NULL;
	}
	return x;
}

static void lease_free(dtk_limiter_lease *x)
{
	free(x->key);
	free(x->member);
	free(x);
}

/* Puts a granted Redis lease on the renewal list. */
static void hold(dtk_limiter *l, dtk_limiter_lease *x)
{
	pthread_mutex_lock(&l->mu);
	x->id = ++l->next_id;
	x->next_renew = dtk_mono_ms() + (double)x->ttl_ms / 3.0;
	x->next = l->held;
	if (l->held)
		l->held->prev = x;
	l->held = x;
	pthread_cond_signal(&l->wake);
	pthread_mutex_unlock(&l->mu);
}

static void unhold(dtk_limiter *l, dtk_limiter_lease *x)
{
	pthread_mutex_lock(&l->mu);
	if (x->prev)
		x->prev->next = x->next;
	else if (l->held == x)
		l->held = x->next;
	if (x->next)
		x->next->prev = x->prev;
	x->prev = x->next = NULL;
	pthread_mutex_unlock(&l->mu);
}

/* A random multiplier in [0.5, 1.5) from a per-call xorshift state. */
static double jitter(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return 0.5 + (double)(*s >> 11) / 9007199254740992.0;
}

/* Drops an in-process key no one holds or waits for, so the list stays
 * as long as the keys in use. Under l->mu. */
static void forget_if_idle(dtk_limiter *l, local_key *k)
{
	if (k->held || k->waiting)
		return;
	for (local_key **p = &l->keys; *p; p = &(*p)->next)
		if (*p == k) {
			*p = k->next;
			free(k->key);
			free(k);
			return;
		}
}

/* ZREM of one member; 0 or -1 with errstr. */
static int zrem(dtk_limiter *l, const char *key, const char *member, char *errstr,
		size_t errstr_size)
{
	dtk_redis_reply rep;
	const char *argv[] = {"ZREM", key, member};
	dtk_redis *r = pool_get(l, errstr, errstr_size);
	if (!r)
		return -1;
	int rc = dtk_redis_command(r, 3, argv, NULL, &rep, errstr, errstr_size);
	pool_put(l, r);
	if (rc == 0 && rep.type == DTK_REDIS_ERROR) {
		snprintf(errstr, errstr_size, "limiter: Redis: ZREM: %s", rep.str);
		rc = -1;
	}
	if (rc == 0)
		dtk_redis_reply_free(&rep);
	return rc;
}

static int acquire_local(dtk_limiter *l, const char *key, int limit, const char *member,
			 int64_t deadline_ms, dtk_limiter_lease **lease, char *errstr,
			 size_t errstr_size)
{
	dtk_limiter_lease *x = lease_new(l, key, member, 0, 1);
	if (!x) {
		snprintf(errstr, errstr_size, "limiter: out of memory");
		return DTK_LIMITER_FAILED;
	}
	pthread_mutex_lock(&l->mu);
	local_key *k = l->keys;
	while (k && strcmp(k->key, key) != 0)
		k = k->next;
	if (!k) {
		k = calloc(1, sizeof(*k));
		if (!k || !(k->key = strdup(key))) {
			free(k);
			pthread_mutex_unlock(&l->mu);
			lease_free(x);
			snprintf(errstr, errstr_size, "limiter: out of memory");
			return DTK_LIMITER_FAILED;
		}
		k->next = l->keys;
		l->keys = k;
	}
	struct timespec ts = {(time_t)(deadline_ms / 1000), (long)(deadline_ms % 1000) * 1000000L};
	k->waiting++;
	while (k->held >= limit && deadline_ms > 0 && dtk_now_ms() < deadline_ms)
		pthread_cond_timedwait(&l->freed, &l->mu, &ts);
	k->waiting--;
	int granted = k->held < limit;
	if (granted) {
		k->held++;
		x->lk = k;
	} else {
		forget_if_idle(l, k);
	}
	pthread_mutex_unlock(&l->mu);
	if (!granted) {
		lease_free(x);
		snprintf(errstr, errstr_size,
			 "limiter: %s still has its %d connections in use in this process at the "
			 "deadline",
			 key, limit);
		return DTK_LIMITER_FAILED;
	}
	*lease = x;
	return DTK_LIMITER_GRANTED;
}

int dtk_limiter_acquire(dtk_limiter *l, const char *key, int limit, const char *member,
			int64_t ttl_ms, int64_t deadline_ms, dtk_limiter_lease **lease,
			double *waited_ms, char *errstr, size_t errstr_size)
{
	double start = dtk_mono_ms();
	int rc = DTK_LIMITER_FAILED;
	char *skey = NULL;
	dtk_limiter_lease *x = NULL;
	*lease = NULL;
	if (!key || !*key || !member || !*member || limit < 1 || (l->url && ttl_ms <= 0)) {
		snprintf(errstr, errstr_size,
			 "limiter: need a key, a member, a limit of at least 1 and a positive TTL");
		goto out;
	}
	if (!l->url) {
		rc = acquire_local(l, key, limit, member, deadline_ms, lease, errstr, errstr_size);
		goto out;
	}

	size_t sklen = strlen(SEM_PREFIX) + strlen(key) + 1;
	skey = malloc(sklen);
	if (!skey) {
		snprintf(errstr, errstr_size, "limiter: out of memory");
		goto out;
	}
	snprintf(skey, sklen, "%s%s", SEM_PREFIX, key);
	char lim[16], ttl[24], err[512] = "";
	snprintf(lim, sizeof(lim), "%d", limit);
	snprintf(ttl, sizeof(ttl), "%" PRId64, ttl_ms);
	const char *args[] = {member, lim, ttl};
	uint64_t rng = (uint64_t)(start * 1000.0) ^ (uint64_t)(uintptr_t)&rng ^
		       ((uint64_t)(uintptr_t)member << 7) ^ UINT64_C(0x9e3779b97f4a7c15);
	int64_t backoff = BACKOFF_FIRST_MS;
	int got;
	for (;;) {
		dtk_redis *r = pool_get(l, err, sizeof(err));
		got = r ? run_script(l, r, acquire_script, l->sha_acquire, skey, 3, args, err,
				     sizeof(err))
			: -1;
		if (r)
			pool_put(l, r);
		if (got == 1)
			break;
		if (got < 0 && l->fail_open) {
			x = lease_new(l, skey, member, ttl_ms, 0);
			if (!x) {
				snprintf(errstr, errstr_size, "limiter: out of memory");
				goto out;
			}
			snprintf(errstr, errstr_size,
				 "limiter: running unlimited (--limiter-fail-open): %s", err);
			*lease = x;
			rc = DTK_LIMITER_OPEN;
			goto out;
		}
		int64_t now = dtk_now_ms();
		if (deadline_ms <= 0 || now >= deadline_ms)
			break;
		int64_t nap = (int64_t)((double)backoff * jitter(&rng));
		if (nap > deadline_ms - now)
			nap = deadline_ms - now;
		dtk_sleep_ms(nap);
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}
	if (got != 1) {
		double waited = dtk_mono_ms() - start;
		if (got < 0)
			snprintf(errstr, errstr_size,
				 "limiter: Redis unreachable until the deadline (waited %.0f ms): "
				 "%s",
				 waited, err);
		else
			snprintf(errstr, errstr_size,
				 "limiter: %s still had its %d connections in use at the deadline "
				 "(waited %.0f ms)",
				 key, limit, waited);
		goto out;
	}
	x = lease_new(l, skey, member, ttl_ms, 1);
	if (!x) {
		/* granted but cannot be tracked: give the slot straight back */
		zrem(l, skey, member, err, sizeof(err));
		snprintf(errstr, errstr_size, "limiter: out of memory");
		goto out;
	}
	if (!l->manual_renew)
		hold(l, x);
	*lease = x;
	rc = DTK_LIMITER_GRANTED;
out:
	free(skey);
	if (waited_ms)
		*waited_ms = dtk_mono_ms() - start;
	return rc;
}

int dtk_limiter_renew(dtk_limiter_lease *x, char *errstr, size_t errstr_size)
{
	dtk_limiter *l = x->l;
	if (!l->url || !x->limited)
		return 1;
	dtk_redis *r = pool_get(l, errstr, errstr_size);
	int rc = r ? script_renew(l, r, x->key, x->member, x->ttl_ms, errstr, errstr_size) : -1;
	if (r)
		pool_put(l, r);
	pthread_mutex_lock(&l->mu);
	if (rc == 0)
		x->lost = 1;
	if (rc >= 0)
		x->next_renew = dtk_mono_ms() + (double)x->ttl_ms / 3.0;
	pthread_mutex_unlock(&l->mu);
	return rc;
}

int dtk_limiter_release(dtk_limiter_lease **lease, char *errstr, size_t errstr_size)
{
	if (!lease || !*lease)
		return 0;
	dtk_limiter_lease *x = *lease;
	dtk_limiter *l = x->l;
	int rc = 0;
	*lease = NULL;
	if (x->lk) {
		pthread_mutex_lock(&l->mu);
		x->lk->held--;
		forget_if_idle(l, x->lk);
		pthread_cond_broadcast(&l->freed);
		pthread_mutex_unlock(&l->mu);
	} else if (l->url && x->limited) {
		if (!l->manual_renew)
			unhold(l, x);
		char err[512];
		if (zrem(l, x->key, x->member, err, sizeof(err)) != 0) {
			snprintf(errstr, errstr_size,
				 "limiter: could not release the lease (it lapses at its TTL): %s",
				 err);
			rc = -1;
		}
	}
	lease_free(x);
	return rc;
}

int dtk_limiter_lease_limited(const dtk_limiter_lease *x)
{
	return x->limited;
}

int dtk_limiter_lease_lost(const dtk_limiter_lease *x)
{
	pthread_mutex_lock(&x->l->mu);
	int lost = x->lost;
	pthread_mutex_unlock(&x->l->mu);
	return lost;
}
