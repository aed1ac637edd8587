/* Connection limiting (fleet.md): at most `limit` checks hold a lease on
 * one source key at a time, across every worker sharing a Redis (sorted
 * set dtk:sem:<key>, one Lua script per attempt, time from Redis), or
 * within one process when no Redis is configured. docs/internals/limiter.md
 * has the keys, the script and the failure modes.
 *
 * Thread safety: a dtk_limiter may be used from any number of threads at
 * once (acquire, renew and release lock what they share and use their own
 * Redis connections). A lease belongs to the caller that acquired it:
 * pass it between threads if needed, but do not use one lease from two
 * threads at once. Release every lease before freeing its limiter. */
#ifndef DTK_LIMITER_H
#define DTK_LIMITER_H

#include <stddef.h>
#include <stdint.h>

#define DTK_LIMITER_DEFAULT_MAX_CONNECTIONS 5
#define DTK_LIMITER_TTL_MAX_MS INT64_C(120000)

typedef struct dtk_limiter dtk_limiter;
typedef struct dtk_limiter_lease dtk_limiter_lease;

typedef struct dtk_limiter_options {
	const char *redis_url; /* redis://[:password@]host:port/db; NULL or "": in-process */
	int fail_open;	       /* Redis unreachable: grant a lease that limits nothing */
	int timeout_ms;	       /* bounds each Redis connect and command; <= 0: 1000 */
	int manual_renew;      /* no renewal thread: holders call dtk_limiter_renew */
} dtk_limiter_options;

/* The lease TTL for a collector whose timeout is timeout_s seconds: the
 * timeout plus 30 s, at most DTK_LIMITER_TTL_MAX_MS. */
int64_t dtk_limiter_ttl_ms(double timeout_s);
/* The limit: max_connections (from the collector or its profile) when
 * positive, else default_max (--default-max-connections) when positive,
 * else DTK_LIMITER_DEFAULT_MAX_CONNECTIONS. */
int dtk_limiter_limit(int max_connections, int default_max);

/* A limiter owned by the caller (dtk_limiter_free). Does not contact
 * Redis (the first acquire does); with a Redis URL and no manual_renew,
 * starts one thread that renews held leases every third of their TTL.
 * NULL with errstr for a bad URL, no memory or no thread. opt may be NULL
 * (in-process). */
dtk_limiter *dtk_limiter_new(const dtk_limiter_options *opt, char *errstr, size_t errstr_size);
/* Stops the renewal thread, closes the connections, NULLs *l. */
void dtk_limiter_free(dtk_limiter **l);
/* 1 when limits are shared through Redis, 0 when they hold per process. */
int dtk_limiter_shared(const dtk_limiter *l);

enum {
	DTK_LIMITER_GRANTED = 0, /* *lease holds a slot */
	DTK_LIMITER_OPEN = 1,	 /* fail_open and Redis failed: *lease holds no slot;
				    errstr says why, for a warning */
	DTK_LIMITER_FAILED = -1	 /* no lease: errstr says whether the source stayed
				    full or Redis stayed unreachable */
};

/* Acquires a slot on key (the source's limit key, e.g.
 * postgres://db:5432; the caller computes it) for member (unique per
 * holder: worker-id:request-id) with a lease of ttl_ms (see
 * dtk_limiter_ttl_ms). While the source is full or Redis is unreachable,
 * retries with jittered exponential backoff (20 ms doubling to 1 s, +-50%)
 * until deadline_ms (wall clock, ms since the epoch; <= 0: one attempt);
 * a Redis command in flight may overrun it by at most timeout_ms.
 * Without Redis, waits on the per-process count instead and ttl_ms is not
 * used (leases do not expire; the process releases them).
 *
 * Returns DTK_LIMITER_GRANTED or DTK_LIMITER_OPEN with *lease owned by the
 * caller until dtk_limiter_release, or DTK_LIMITER_FAILED with *lease
 * NULL. *waited_ms (may be NULL) gets the time spent, for timings_ms.
 * limiter_wait, on every return. */
int dtk_limiter_acquire(dtk_limiter *l, const char *key, int limit, const char *member,
			int64_t ttl_ms, int64_t deadline_ms, dtk_limiter_lease **lease,
			double *waited_ms, char *errstr, size_t errstr_size);

/* Pushes the lease's expiry to now + its TTL (Redis time). The renewal
 * thread does this unless the limiter has manual_renew; then call it
 * every third of the TTL. Returns 1 renewed (or nothing to renew), 0 when
 * the lease had already lapsed and been taken away (it is then marked
 * lost), -1 with errstr when Redis failed. */
int dtk_limiter_renew(dtk_limiter_lease *lease, char *errstr, size_t errstr_size);

/* Gives the slot back (ZREM, or the per-process count) and frees the
 * lease, NULLing *lease; NULL or *lease NULL is a no-op. Returns 0, or -1
 * with errstr when Redis could not be told: the lease is freed anyway and
 * its slot lapses at its TTL. */
int dtk_limiter_release(dtk_limiter_lease **lease, char *errstr, size_t errstr_size);

/* 0 for a DTK_LIMITER_OPEN lease, 1 otherwise. */
int dtk_limiter_lease_limited(const dtk_limiter_lease *lease);
/* 1 once a renewal found the lease lapsed and taken away (the source may
 * then have more than the limit connected). */
int dtk_limiter_lease_lost(const dtk_limiter_lease *lease);

#endif
