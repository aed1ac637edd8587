/* The worker's check pool: see pool.h.
 *
 * Metric queues live in one list, and the queues that have a job and no
 * running check wait in a FIFO ready list; a thread takes the head job of
 * the first ready queue. The number of queues is bounded by the jobs the
 * main thread lets in (it pauses its partitions when the pool is full), so
 * lists are enough. */
#include "pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "wlog.h"

typedef struct mqueue {
	struct mqueue *next;  /* all queues */
	struct mqueue *rnext; /* ready list */
	char *key;
	dtk_wjob *head, *tail;
	int running;
	int ready;
} mqueue;

struct dtk_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	mqueue *queues;
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

void dtk_wjob_free(dtk_wjob **j)
{
	if (!j || !*j)
		return;
	free((*j)->key);
	free((*j)->payload);
	free((*j)->signature);
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

static void unlink_ready(dtk_pool *p, mqueue *q)
{
	mqueue **pp = &p->rhead, *prev = NULL;
	while (*pp && *pp != q) {
		prev = *pp;
		pp = &(*pp)->rnext;
	}
	if (!*pp)
		return;
	*pp = q->rnext;
	if (p->rtail == q)
		p->rtail = prev;
	q->ready = 0;
}

/* Frees q when it has nothing queued and nothing running. */
static void maybe_free_queue(dtk_pool *p, mqueue *q)
{
	if (q->head || q->running)
		return;
	unlink_ready(p, q);
	for (mqueue **pp = &p->queues; *pp; pp = &(*pp)->next)
		if (*pp == q) {
			*pp = q->next;
			break;
		}
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
	pthread_mutex_lock(&p->mu);
	mqueue *q = p->queues;
	while (q && strcmp(q->key, job->key) != 0)
		q = q->next;
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
		q->next = p->queues;
		p->queues = q;
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
	mqueue *q = p->queues;
	while (q) {
		mqueue *next = q->next;
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
		if (!q->head)
			maybe_free_queue(p, q);
		q = next;
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
	while (p->queues) {
		mqueue *q = p->queues;
		p->queues = q->next;
		while (q->head) {
			dtk_wjob *j = q->head;
			q->head = j->next;
			dtk_wjob_free(&j);
		}
		free(q->key);
		free(q);
	}
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p->threads);
	free(p->args);
	free(p);
	*pp = NULL;
}
