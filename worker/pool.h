/* The worker's check pool (fleet.md "Worker"): --concurrency threads, and
 * per metric a FIFO queue so that at most one check of a metric runs at a
 * time, in the order its requests were consumed (offset order: requests of
 * one metric share a partition).
 *
 * Thread safety: submit, drop, stop and the counters are called by the
 * main thread; the run callback runs on the pool's threads, one job at a
 * time per thread. */
#ifndef DTK_WORKER_POOL_H
#define DTK_WORKER_POOL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* One consumed request, from the poll to the last delivery report of what
 * it produced. Owned by the pool while queued, by the running thread while
 * it runs, then by the delivery reports (pending counts them down). */
typedef struct dtk_wjob {
	struct dtk_wjob *next; /* pool queue link */
	char *key;	       /* message key, NUL-terminated ("" when none) */
	size_t keylen;
	void *payload; /* the message value, owned */
	size_t len;
	char *signature; /* dtk-signature header or NULL */
	int32_t partition;
	int64_t offset;
	uint64_t gen; /* the partition's assignment generation at consume time */
	int64_t received_ms;
	atomic_int pending; /* messages produced and not yet reported */
	atomic_int failed;  /* a produced message was not delivered */
	int retries;	    /* re-produce attempts (main thread) */
	char *metric;	    /* for logs once known (malloc'd), else NULL */
	char request_id[40];
	/* key and payload follow in the same allocation (dtk_wjob_new) */
} dtk_wjob;

/* A job holding copies of key (keylen bytes, then a NUL) and payload in
 * one allocation, the rest zeroed; owned by the caller (dtk_wjob_free), or
 * NULL when out of memory. */
dtk_wjob *dtk_wjob_new(const void *key, size_t keylen, const void *payload, size_t len);

/* Frees j and what it owns; NULLs *j. */
void dtk_wjob_free(dtk_wjob **j);

typedef struct dtk_pool dtk_pool;

/* Runs one job on pool thread `thread` (0..n-1); takes ownership of job. */
typedef void (*dtk_pool_run_fn)(void *ctx, size_t thread, dtk_wjob *job);

/* Starts n threads. Returns the pool (owned by the caller) or NULL. */
dtk_pool *dtk_pool_new(size_t n, dtk_pool_run_fn run, void *ctx);

/* Queues job behind the metric's (its key's) earlier jobs. Takes it. */
void dtk_pool_submit(dtk_pool *p, dtk_wjob *job);

/* Removes every queued (not running) job whose partition is in
 * partitions[0..n) (n == 0: every job) and hands each to drop, which takes
 * it. Returns how many. */
size_t dtk_pool_drop(dtk_pool *p, const int32_t *partitions, size_t n,
		     void (*drop)(void *ctx, dtk_wjob *job), void *ctx);

/* Jobs running now. */
size_t dtk_pool_running(dtk_pool *p);

/* Threads take no more jobs; each finishes its current one and exits. */
void dtk_pool_stop(dtk_pool *p);

/* Stops, joins the threads and frees the pool (queued jobs are freed);
 * NULLs *p. Call only once dtk_pool_running is 0 or the threads would be
 * waited for. */
void dtk_pool_free(dtk_pool **p);

#endif
