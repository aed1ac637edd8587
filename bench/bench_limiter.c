/* bench_limiter: bench/fleet.sh's (d), what the Redis limiter costs a check.
 *
 *   bench_limiter --redis URL [--seconds 3] [--threads 16] [--limit 1000]
 *
 * Times dtk_limiter_acquire + dtk_limiter_release pairs (one limiter, as a
 * worker has, with its renewal thread; one key, a unique member per pair,
 * a limit no thread reaches, so no pair waits) for --seconds on one thread,
 * then on --threads threads at once, each pair timed alone. As a reference
 * on the same connections' client code, PING round trips through dtk_redis
 * (the limiter's own client), one connection per thread, likewise.
 * bench/fleet.sh sets these against redis-benchmark's PING in the same run.
 *
 * Prints one JSON object: under "pair" and "ping", "single" (one thread) and
 * "parallel" (--threads), each with the operations done, their mean, p50
 * and p99 in microseconds, and the operations per second of all threads
 * together. Exit 1 when Redis fails, 2 on usage. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limiter.h"
#include "util/clock.h"
#include "util/redis.h"

#define MAX_THREADS 256
#define MAX_SAMPLES 2000000 /* per thread; later operations are counted, not kept */

typedef struct job {
	dtk_limiter *l;
	const char *url;
	int ping, limit, id;
	double seconds;
	double *us; /* samples, microseconds */
	size_t n, kept;
	double spent_ms; /* wall time of this thread's loop */
	char err[512];
} job;

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* One acquire + release pair; 0, or -1 with j->err. */
static int pair(job *j, unsigned long k)
{
	char member[64];
	dtk_limiter_lease *lease = NULL;
	snprintf(member, sizeof(member), "bench-%d-%lu", j->id, k);
	int rc =
	    dtk_limiter_acquire(j->l, "bench://limiter", j->limit, member, dtk_limiter_ttl_ms(10),
				0, &lease, NULL, j->err, sizeof(j->err));
	if (rc != DTK_LIMITER_GRANTED) {
		if (rc == DTK_LIMITER_OPEN)
			dtk_limiter_release(&lease, j->err, sizeof(j->err));
		return -1;
	}
	return dtk_limiter_release(&lease, j->err, sizeof(j->err));
}

/* One operation of j: a PING on r (j->ping) or pair k; 0, or -1 with j->err. */
static int operate(job *j, dtk_redis *r, unsigned long k)
{
	const char *ping[] = {"PING"};
	const size_t ping_len[] = {4};
	dtk_redis_reply rep;
	if (!j->ping)
		return pair(j, k);
	if (dtk_redis_command(r, 1, ping, ping_len, &rep, j->err, sizeof(j->err)))
		return -1;
	dtk_redis_reply_free(&rep);
	return 0;
}

static void *run(void *arg)
{
	job *j = arg;
	dtk_redis *r = NULL;
	if (j->ping && !(r = dtk_redis_new(j->url, 1000, j->err, sizeof(j->err))))
		return j;
	/* off the clock: the connection, the script load */
	for (unsigned long k = 0; k < 50; k++) {
		if (operate(j, r, k))
			goto out;
	}
	double start = dtk_mono_ms(), end = start + j->seconds * 1000, now = start;
	for (unsigned long k = 50; now < end; k++) {
		double t = now;
		if (operate(j, r, k))
			goto out;
		now = dtk_mono_ms();
		if (j->kept < MAX_SAMPLES)
			j->us[j->kept++] = (now - t) * 1000;
		j->n++;
	}
	j->spent_ms = now - start;
	j->err[0] = '\0';
out:
	dtk_redis_free(&r);
	return j;
}

/* Runs nthreads jobs of one kind and prints them as "name": {...}. */
static int measure(dtk_limiter *l, const char *url, int ping, int nthreads, double seconds,
		   int limit, const char *name, int last)
{
	job *jobs = calloc((size_t)nthreads, sizeof(*jobs));
	pthread_t *tids = calloc((size_t)nthreads, sizeof(*tids));
	double *all = NULL;
	int rc = -1, started = 0;
	if (!jobs || !tids)
		goto out;
	for (int i = 0; i < nthreads; i++) {
		jobs[i] = (job){.l = l,
				.url = url,
				.ping = ping,
				.limit = limit,
				.id = i,
				.seconds = seconds,
				.err = "not run"};
		if (!(jobs[i].us = malloc(MAX_SAMPLES * sizeof(double))))
			goto out;
	}
	for (; started < nthreads; started++)
		if (pthread_create(&tids[started], NULL, run, &jobs[started]) != 0)
			break;
	size_t n = 0, kept = 0;
	double spent = 0;
	for (int i = 0; i < started; i++) {
		pthread_join(tids[i], NULL);
		if (jobs[i].err[0]) {
			fprintf(stderr, "bench_limiter: %s\n", jobs[i].err);
			goto out;
		}
		n += jobs[i].n;
		kept += jobs[i].kept;
		spent = jobs[i].spent_ms > spent ? jobs[i].spent_ms : spent;
	}
	if (started < nthreads || !kept || !(all = malloc(kept * sizeof(*all))))
		goto out;
	double sum = 0;
	for (int i = 0, k = 0; i < nthreads; i++)
		for (size_t s = 0; s < jobs[i].kept; s++, k++)
			sum += (all[k] = jobs[i].us[s]);
	qsort(all, kept, sizeof(*all), cmp_double);
	printf("\"%s\": {\"n\": %zu, \"mean_us\": %.2f, \"p50_us\": %.2f, \"p99_us\": %.2f, "
	       "\"per_s\": %.0f}%s",
	       name, n, sum / (double)kept, all[kept / 2],
	       all[(size_t)ceil(0.99 * (double)kept) - 1], (double)n * 1000.0 / spent,
	       last ? "" : ", ");
	rc = 0;
out:
	for (int i = 0; jobs && i < nthreads; i++)
		free(jobs[i].us);
	free(jobs);
	free(tids);
	free(all);
	return rc;
}

static double arg_num(const char *name, const char *s, double min, double max)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= min && v <= max)) {
		fprintf(stderr, "bench_limiter: %s '%s' must be a number in [%g, %g]\n", name, s,
			min, max);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	const char *url = NULL;
	double seconds = 3;
	int threads = 16, limit = 1000;
	for (int i = 1; i < argc; i += 2) {
		if (i + 1 >= argc) {
			fprintf(stderr, "bench_limiter: %s needs a value\n", argv[i]);
			return 2;
		}
		if (!strcmp(argv[i], "--redis"))
			url = argv[i + 1];
		else if (!strcmp(argv[i], "--seconds"))
			seconds = arg_num("--seconds", argv[i + 1], 0.1, 3600);
		else if (!strcmp(argv[i], "--threads"))
			threads = (int)arg_num("--threads", argv[i + 1], 1, MAX_THREADS);
		else if (!strcmp(argv[i], "--limit"))
			limit = (int)arg_num("--limit", argv[i + 1], 1, 1e9);
		else {
			fprintf(stderr,
				"bench_limiter: unknown option %s (see bench/bench_limiter.c)\n",
				argv[i]);
			return 2;
		}
	}
	if (!url) {
		fprintf(stderr, "bench_limiter: --redis URL is required\n");
		return 2;
	}
	char err[512];
	dtk_limiter_options o = {.redis_url = url};
	dtk_limiter *l = dtk_limiter_new(&o, err, sizeof(err));
	if (!l) {
		fprintf(stderr, "bench_limiter: %s\n", err);
		return 1;
	}
	printf("{\"threads\": %d, \"seconds\": %g, \"pair\": {", threads, seconds);
	int rc = measure(l, url, 0, 1, seconds, limit, "single", 0) ||
		 measure(l, url, 0, threads, seconds, limit, "parallel", 1);
	if (!rc) {
		printf("}, \"ping\": {");
		rc = measure(l, url, 1, 1, seconds, limit, "single", 0) ||
		     measure(l, url, 1, threads, seconds, limit, "parallel", 1);
	}
	printf("}}\n");
	dtk_limiter_free(&l);
	return rc ? 1 : 0;
}
