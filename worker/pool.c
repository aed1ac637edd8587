/* The worker's check pool: see pool.h.
 *
 * Metric queues live in a hash table by key, and the queues that have a job
 * and no running check wait in a FIFO ready list; a thread takes the head
 * job of the first ready queue. A queue exists while it has a job queued or
 * running, so the table holds at most as many queues as the jobs the main
 * thread lets in (thousands: it pauses its partitions far ahead of the
 * pool). */
#include "pool.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/hash.h"
#include "wlog.h"

typedef struct mqueue {
	struct mqueue *hnext; /* hash chain */
	struct mqueue *rnext; /* ready list */
	char *key;
	size_t hash;
	dtk_wjob *head, *tail;
	int running;
	int ready;
} mqueue;

struct dtk_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	mqueue **buckets; /* nbuckets, a power of two */
	size_t nbuckets, nqueues;
	mqueue *rhead, *rtail;
	size_t running;
	int stop;
	dtk_pool_run_fn run;
	void *ctx;
	size_t nthreads;
	pthread_t *threads;
	struct thread_arg {
		dtk_pool *p;
		size_t index;
	} *args;
};

dtk_wjob *dtk_wjob_new(const void *key, size_t keylen, const void *payload, size_t len)
{
	/* one allocation per request: a backlog of thousands stays small */
	if (keylen > SIZE_MAX / 2 || len > SIZE_MAX / 2 - sizeof(dtk_wjob) - keylen - 1)
		return NULL;
	dtk_wjob *j = malloc(sizeof(*j) + keylen + 1 + len);
	if (!j)
		return NULL;
	memset(j, 0, sizeof(*j));
	j->key = (char *)(j + 1);
	if (keylen)
		memcpy(j->key, key, keylen);
	j->key[keylen] = '\0';
	j->keylen = keylen;
	j->payload = j->key + keylen + 1;
	if (len)
		memcpy(j->payload, payload, len);
	j->len = len;
	return j;
}

void dtk_wjob_free(dtk_wjob **j)
{
	if (!j || !*j)
		return;
	free((*j)->signature);
	free((*j)->metric);
	free(*j);
	*j = NULL;
}

static void make_ready(dtk_pool *p, mqueue *q)
{
	if (q->ready || q->running || !q->head)
		return;
	q->ready = 1;
	q->rnext = NULL;
	if (p->rtail)
		p->rtail->rnext = q;
	else
		p->rhead = q;
	p->rtail = q;
	pthread_cond_signal(&p->cv);
}

static mqueue *queue_find(dtk_pool *p, const char *key, size_t h)
{
	mqueue *q = p->buckets[h & (p->nbuckets - 1)];
	while (q && (q->hash != h || strcmp(q->key, key) != 0))
		q = q->hnext;
	return q;
}

/* Doubles the table when queues outnumber buckets (kept on failure). */
static void maybe_grow(dtk_pool *p)
{
	if (p->nqueues < p->nbuckets)
		return;
	size_t n = p->nbuckets * 2;
	mqueue **b = calloc(n, sizeof(*b));
	if (!b)
		return;
	for (size_t i = 0; i < p->nbuckets; i++)
		while (p->buckets[i]) {
			mqueue *q = p->buckets[i];
			p->buckets[i] = q->hnext;
			q->hnext = b[q->hash & (n - 1)];
			b[q->hash & (n - 1)] = q;
		}
	free(p->buckets);
	p->buckets = b;
	p->nbuckets = n;
}

/* Frees q when it has nothing queued and nothing running (it is then not
 * on the ready list either). */
static void maybe_free_queue(dtk_pool *p, mqueue *q)
{
	if (q->head || q->running || q->ready)
		return;
	for (mqueue **pp = &p->buckets[q->hash & (p->nbuckets - 1)]; *pp; pp = &(*pp)->hnext)
		if (*pp == q) {
			*pp = q->hnext;
			break;
		}
	p->nqueues--;
	free(q->key);
	free(q);
}

static void *thread_main(void *arg)
{
	struct thread_arg *a = arg;
	dtk_pool *p = a->p;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->stop && !p->rhead)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->stop)
			break;
		mqueue *q = p->rhead;
		p->rhead = q->rnext;
		if (!p->rhead)
			p->rtail = NULL;
		q->ready = 0;
		dtk_wjob *job = q->head;
		q->head = job->next;
		if (!q->head)
			q->tail = NULL;
		job->next = NULL;
		q->running = 1;
		p->running++;
		pthread_mutex_unlock(&p->mu);
		p->run(p->ctx, a->index, job);
		pthread_mutex_lock(&p->mu);
		p->running--;
		q->running = 0;
		if (q->head)
			make_ready(p, q);
		else
			maybe_free_queue(p, q);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

dtk_pool *dtk_pool_new(size_t n, dtk_pool_run_fn run, void *ctx)
{
	dtk_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->threads = calloc(n, sizeof(*p->threads));
	p->args = calloc(n, sizeof(*p->args));
	if (!p->threads || !p->args) {
		free(p->threads);
		free(p->args);
		free(p);
		return NULL;
	}
	p->nbuckets = 64;
	p->buckets = calloc(p->nbuckets, sizeof(*p->buckets));
	if (!p->buckets) {
		free(p->threads);
		free(p->args);
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->run = run;
	p->ctx = ctx;
	for (size_t i = 0; i < n; i++) {
		p->args[i].p = p;
		p->args[i].index = i;
		if (pthread_create(&p->threads[i], NULL, thread_main, &p->args[i]) != 0) {
			dtk_wlog(DTK_WLOG_ERROR, NULL, NULL, "cannot start check thread %zu", i);
			break;
		}
		p->nthreads++;
	}
	if (p->nthreads < n) {
		dtk_pool_free(&p);
		return NULL;
	}
	return p;
}

void dtk_pool_submit(dtk_pool *p, dtk_wjob *job)
{
	size_t h = (size_t)dtk_hash_str(job->key);
	pthread_mutex_lock(&p->mu);
	mqueue *q = queue_find(p, job->key, h);
	if (!q) {
		q = calloc(1, sizeof(*q));
		char *key = strdup(job->key);
		if (!q || !key) {
			/* out of memory: the job is lost from this process, and its
			 * offset is never stored, so it is redone after a restart */
			free(q);
			free(key);
			pthread_mutex_unlock(&p->mu);
			dtk_wlog(DTK_WLOG_ERROR, NULL, NULL, "out of memory queueing a request");
			dtk_wjob_free(&job);
			return;
		}
		q->key = key;
		q->hash = h;
		maybe_grow(p);
		q->hnext = p->buckets[h & (p->nbuckets - 1)];
		p->buckets[h & (p->nbuckets - 1)] = q;
		p->nqueues++;
	}
	job->next = NULL;
	if (q->tail)
		q->tail->next = job;
	else
		q->head = job;
	q->tail = job;
	make_ready(p, q);
	pthread_mutex_unlock(&p->mu);
}

static int in_set(int32_t v, const int32_t *set, size_t n)
{
	if (n == 0)
		return 1;
	for (size_t i = 0; i < n; i++)
		if (set[i] == v)
			return 1;
	return 0;
}

size_t dtk_pool_drop(dtk_pool *p, const int32_t *partitions, size_t n,
		     void (*drop)(void *ctx, dtk_wjob *job), void *ctx)
{
	dtk_wjob *dropped = NULL, **dtail = &dropped;
	size_t count = 0;
	pthread_mutex_lock(&p->mu);
	/* a queue emptied here may sit on the ready list: rebuild that list */
	for (size_t b = 0; b < p->nbuckets; b++) {
		mqueue *q = p->buckets[b];
		while (q) {
			mqueue *next = q->hnext;
			dtk_wjob **pp = &q->head, *last = NULL;
			while (*pp) {
				dtk_wjob *j = *pp;
				if (in_set(j->partition, partitions, n)) {
					*pp = j->next;
					j->next = NULL;
					*dtail = j;
					dtail = &j->next;
					count++;
				} else {
					last = j;
					pp = &j->next;
				}
			}
			q->tail = last;
			q = next;
		}
	}
	mqueue *ready = p->rhead;
	p->rhead = p->rtail = NULL;
	while (ready) {
		mqueue *q = ready;
		ready = q->rnext;
		q->ready = 0;
		if (q->head)
			make_ready(p, q);
	}
	for (size_t b = 0; b < p->nbuckets; b++) {
		mqueue *q = p->buckets[b];
		while (q) {
			mqueue *next = q->hnext;
			maybe_free_queue(p, q);
			q = next;
		}
	}
	pthread_mutex_unlock(&p->mu);
	while (dropped) {
		dtk_wjob *j = dropped;
		dropped = j->next;
		j->next = NULL;
		drop(ctx, j);
	}
	return count;
}

size_t dtk_pool_running(dtk_pool *p)
{
	pthread_mutex_lock(&p->mu);
	size_t n = p->running;
	pthread_mutex_unlock(&p->mu);
	return n;
}

void dtk_pool_stop(dtk_pool *p)
{
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

void dtk_pool_free(dtk_pool **pp)
{
	if (!pp || !*pp)
		return;
	dtk_pool *p = *pp;
	dtk_pool_stop(p);
	for (size_t i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	for (size_t b = 0; b < p->nbuckets; b++)
		while (p->buckets[b]) {
			mqueue *q = p->buckets[b];
			p->buckets[b] = q->hnext;
			while (q->head) {
				dtk_wjob *j = q->head;
				q->head = j->next;
				dtk_wjob_free(&j);
			}
			free(q->key);
			free(q);
		}
	free(p->buckets);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p->threads);
	free(p->args);
	free(p);
	*pp = NULL;
}
