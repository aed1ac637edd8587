/* dtk-worker's engine: see worker.h.
 *
 * Threads. The main thread polls the consumer (which runs the rebalance
 * callback), polls the producer (which runs the delivery reports) and owns
 * the partition bookkeeping; --concurrency pool threads open requests, run
 * checks and produce their results. A job whose last message was reported
 * comes back to the main thread through the delivery report (or, when the
 * produce call itself failed, through the `finished` list).
 *
 * Offsets. Each assigned partition keeps the offsets it handed to the pool,
 * in consumption order. A job is done when every message it produced (its
 * result, and for a refused request its DLQ copy) was delivered; the
 * highest contiguous done offset + 1 is stored with rd_kafka_offsets_store,
 * and librdkafka's auto-commit commits what was stored. A job that was not
 * delivered keeps its partition from advancing: after a restart or a
 * rebalance the request runs again (at-least-once).
 *
 * Flow control. When the jobs in the process (queued, running, awaiting a
 * delivery report) reach 2 x --concurrency, the partitions this worker was
 * assigned are paused; at --concurrency or fewer, exactly the paused ones are
 * resumed (Debian's librdkafka 2.0.2 misbehaves when a partition that was
 * not paused is resumed). */
#include "worker.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "cfgcache.h"
#include "check.h"
#include "limiter.h"
#include "message.h"
#include "metrics.h"
#include "pool.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/hash.h"
#include "util/json.h"
#include "util/redis.h"
#include "util/value.h"
#include "wlog.h"

#define DLQ_MAX_VALUE ((size_t)64 << 10)
#define CONFIG_CACHE_SIZE 256
#define RESULT_MAX_BYTES ((size_t)16 << 20)
#define DELIVERY_RETRIES 3
#define POLL_MS 100

/* The signal flag: the number of SIGTERM/SIGINT received. */
static volatile sig_atomic_t signals_received;

static void on_signal(int sig)
{
	(void)sig;
	if (signals_received) {
		static const char msg[] = "dtk-worker: second signal: exiting now\n";
		ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
		(void)n;
		_exit(1);
	}
	signals_received = 1;
}

void dtk_worker_signals_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

/* One assigned partition of the request topic (main thread only). */
typedef struct part {
	int32_t partition;
	int assigned;
	uint64_t gen;	   /* changes on every assign and revoke */
	int64_t last_seen; /* highest offset taken in this generation, -1 */
	size_t outstanding;
	/* offsets handed to the pool and not yet stored, in order */
	int64_t *off;
	char *done;
	size_t head, n, cap;
} part;

typedef struct wk {
	const dtk_worker_settings *s;
	rd_kafka_t *consumer, *producer;
	dtk_pool *pool;
	dtk_cfgcache *cache;
	dtk_session **sessions;
	dtk_limiter *limiter; /* connection limits per source, shared by the pool */
	dtk_metrics *metrics; /* --metrics-port; NULL without */
	part *parts;
	size_t nparts;
	rd_kafka_topic_partition_list_t *paused;
	size_t outstanding; /* jobs taken and not finished (main thread) */
	size_t high, low;
	uint64_t gen_counter;
	int shutting_down;
	atomic_int fatal;
	char worker_id[160];
	char source[200];
	dtk_value *worker_obj;
	char tmpdir[64];
	atomic_ulong seq;
	pthread_mutex_t finished_mu;
	dtk_wjob *finished; /* jobs completed off the main thread */
} wk;

/* ---- partitions and offsets (main thread) ---- */

static part *part_find(wk *w, int32_t partition)
{
	for (size_t i = 0; i < w->nparts; i++)
		if (w->parts[i].partition == partition)
			return &w->parts[i];
	return NULL;
}

static part *part_get(wk *w, int32_t partition)
{
	part *p = part_find(w, partition);
	if (p)
		return p;
	part *np = realloc(w->parts, (w->nparts + 1) * sizeof(*np));
	if (!np)
		return NULL;
	w->parts = np;
	p = &w->parts[w->nparts++];
	memset(p, 0, sizeof(*p));
	p->partition = partition;
	p->last_seen = -1;
	return p;
}

static void part_reset(wk *w, part *p, int assigned)
{
	p->assigned = assigned;
	p->gen = ++w->gen_counter;
	p->last_seen = -1;
	p->outstanding = 0;
	p->head = p->n = 0;
}

static int part_push(part *p, int64_t offset)
{
	if (p->n == p->cap && p->head > 0) {
		memmove(p->off, p->off + p->head, (p->n - p->head) * sizeof(*p->off));
		memmove(p->done, p->done + p->head, p->n - p->head);
		p->n -= p->head;
		p->head = 0;
	}
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		int64_t *off = realloc(p->off, cap * sizeof(*off));
		if (!off)
			return -1;
		p->off = off;
		char *done = realloc(p->done, cap);
		if (!done)
			return -1;
		p->done = done;
		p->cap = cap;
	}
	p->off[p->n] = offset;
	p->done[p->n] = 0;
	p->n++;
	return 0;
}

static void offsets_store(wk *w, int32_t partition, int64_t offset)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, w->s->topic, partition)->offset = offset;
	rd_kafka_resp_err_t err = rd_kafka_offsets_store(w->consumer, l);
	if (err || l->elems[0].err) {
		dtk_wlog_field f[] = {{"partition", NULL, partition}, {"offset", NULL, offset}};
		dtk_wlog_f(DTK_WLOG_WARN, NULL, NULL, f, 2, "cannot store offset: %s",
			   rd_kafka_err2str(err ? err : l->elems[0].err));
	}
	rd_kafka_topic_partition_list_destroy(l);
}

/* Marks offset done and stores the highest contiguous done offset + 1. */
static void part_mark_done(wk *w, part *p, int64_t offset)
{
	for (size_t i = p->head; i < p->n; i++)
		if (p->off[i] == offset) {
			p->done[i] = 1;
			break;
		}
	int64_t store = -1;
	while (p->head < p->n && p->done[p->head]) {
		store = p->off[p->head] + 1;
		p->head++;
	}
	if (p->head == p->n)
		p->head = p->n = 0;
	if (store >= 0)
		offsets_store(w, p->partition, store);
}

/* A job leaves the process: finished (delivered unless failed) or dropped
 * unrun (done = 0). */
static void job_leave(wk *w, dtk_wjob *job, int done)
{
	w->outstanding--;
	part *p = part_find(w, job->partition);
	int current = p && p->assigned && p->gen == job->gen;
	if (current)
		p->outstanding--;
	if (done && atomic_load(&job->failed)) {
		dtk_wlog_field f[] = {{"partition", NULL, job->partition},
				      {"offset", NULL, job->offset}};
		dtk_wlog_f(DTK_WLOG_ERROR, job->metric && job->metric[0] ? job->metric : NULL,
			   job->request_id, f, 2,
			   "result not delivered: the offset stays unstored, so the request runs "
			   "again after a restart or rebalance");
		dtk_metrics_undelivered(w->metrics); /* metrics */
	} else if (done && current) {
		part_mark_done(w, p, job->offset);
	}
	dtk_wjob_free(&job);
}

static void drop_job(void *ctx, dtk_wjob *job)
{
	job_leave(ctx, job, 0);
}

static void drain_finished(wk *w)
{
	pthread_mutex_lock(&w->finished_mu);
	dtk_wjob *list = w->finished;
	w->finished = NULL;
	pthread_mutex_unlock(&w->finished_mu);
	while (list) {
		dtk_wjob *j = list;
		list = j->next;
		j->next = NULL;
		job_leave(w, j, 1);
	}
}

/* ---- flow control (main thread) ---- */

static int in_list(const rd_kafka_topic_partition_list_t *l, int32_t partition)
{
	for (int i = 0; l && i < l->cnt; i++)
		if (l->elems[i].partition == partition)
			return 1;
	return 0;
}

/* Pauses every assigned partition not paused yet. */
static void pause_assigned(wk *w)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
	for (size_t i = 0; i < w->nparts; i++)
		if (w->parts[i].assigned && !in_list(w->paused, w->parts[i].partition))
			rd_kafka_topic_partition_list_add(l, w->s->topic, w->parts[i].partition);
	if (l->cnt) {
		rd_kafka_pause_partitions(w->consumer, l);
		for (int i = 0; i < l->cnt; i++)
			if (!l->elems[i].err)
				rd_kafka_topic_partition_list_add(w->paused, w->s->topic,
								  l->elems[i].partition);
		dtk_wlog_field f[] = {{"paused", NULL, w->paused->cnt},
				      {"in_process", NULL, (int64_t)w->outstanding}};
		dtk_wlog_f(DTK_WLOG_DEBUG, NULL, NULL, f, 2, "pool full: partitions paused");
	}
	rd_kafka_topic_partition_list_destroy(l);
}

static void resume_paused(wk *w)
{
	if (!w->paused->cnt)
		return;
	rd_kafka_resume_partitions(w->consumer, w->paused);
	dtk_wlog_field f[] = {{"resumed", NULL, w->paused->cnt}};
	dtk_wlog_f(DTK_WLOG_DEBUG, NULL, NULL, f, 1, "pool has room: partitions resumed");
	rd_kafka_topic_partition_list_destroy(w->paused);
	w->paused = rd_kafka_topic_partition_list_new(4);
}

static void flow_control(wk *w)
{
	if (w->outstanding >= w->high)
		pause_assigned(w);
	else if (w->outstanding <= w->low)
		resume_paused(w);
}

/* ---- producing (any thread) ---- */

/* A produced message of job finished (delivered or not): the last one
 * hands the job back to the main thread. Main thread only when
 * from_main. */
static void job_message_done(wk *w, dtk_wjob *job, int from_main)
{
	if (atomic_fetch_sub(&job->pending, 1) != 1)
		return;
	if (from_main) {
		job_leave(w, job, 1);
		return;
	}
	pthread_mutex_lock(&w->finished_mu);
	job->next = w->finished;
	w->finished = job;
	pthread_mutex_unlock(&w->finished_mu);
}

/* Produces one message for job (counted in job->pending beforehand);
 * takes hdrs. After the last such call the job may be gone. */
static void produce(wk *w, dtk_wjob *job, const char *topic, const void *key, size_t keylen,
		    const void *value, size_t len, rd_kafka_headers_t *hdrs)
{
	rd_kafka_resp_err_t err;
	for (;;) {
		err = rd_kafka_producev(w->producer, RD_KAFKA_V_TOPIC(topic),
					RD_KAFKA_V_KEY(keylen ? key : NULL, keylen),
					RD_KAFKA_V_VALUE((void *)value, len),
					RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
					RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(job),
					RD_KAFKA_V_END);
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			break;
		/* the main thread serves delivery reports meanwhile */
		dtk_sleep_ms(50);
	}
	if (!err)
		return;
	rd_kafka_headers_destroy(hdrs);
	dtk_wlog(DTK_WLOG_ERROR, job->metric, job->request_id, "cannot produce to %s: %s", topic,
		 rd_kafka_err2str(err));
	atomic_store(&job->failed, 1);
	job_message_done(w, job, 0);
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	wk *w = opaque;
	dtk_wjob *job = m->_private;
	if (!job)
		return;
	if (m->err) {
		const char *topic = rd_kafka_topic_name(m->rkt);
		dtk_wlog(DTK_WLOG_WARN, job->metric, job->request_id,
			 "delivery to %s failed: %s%s", topic, rd_kafka_err2str(m->err),
			 job->retries < DELIVERY_RETRIES ? " (producing again)" : "");
		if (job->retries < DELIVERY_RETRIES) {
			job->retries++;
			rd_kafka_headers_t *h = NULL, *copy = NULL;
			if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR && h)
				copy = rd_kafka_headers_copy(h);
			rd_kafka_resp_err_t err = rd_kafka_producev(
				rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(m->key, m->key_len),
				RD_KAFKA_V_VALUE(m->payload, m->len),
				RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(copy),
				RD_KAFKA_V_OPAQUE(job), RD_KAFKA_V_END);
			if (!err)
				return;
			if (copy)
				rd_kafka_headers_destroy(copy);
		}
		atomic_store(&job->failed, 1);
	}
	job_message_done(w, job, 1);
}

/* Kafka headers from the codec's name/value pairs; the caller owns them. */
static rd_kafka_headers_t *headers_of(const dtk_msg_headers *h)
{
	rd_kafka_headers_t *hdrs = rd_kafka_headers_new(h->n + 1);
	for (size_t i = 0; i < h->n; i++)
		rd_kafka_header_add(hdrs, h->h[i].name, -1, h->h[i].value, -1);
	return hdrs;
}

/* Publishes result (taken) for job: key = its metric. The job must count
 * this message in pending. */
static void publish_result(wk *w, dtk_wjob *job, const char *topic, dtk_value *result)
{
	dtk_buf b;
	dtk_msg_headers h;
	dtk_buf_init(&b, RESULT_MAX_BYTES);
	const char *metric = dtk_value_cstr(dtk_value_map_get(result, "metric"));
	dtk_metrics_result(w->metrics, result); /* metrics */
	char key[256];
	snprintf(key, sizeof(key), "%s", metric ? metric : job->key);
	if (dtk_json_emit(&b, result, DTK_JSON_INF_AS_STRING) != 0 ||
	    dtk_msg_result_headers(result, w->source, &h) != 0) {
		dtk_value_free(&result);
		dtk_buf_free(&b);
		dtk_wlog(DTK_WLOG_ERROR, job->metric, job->request_id,
			 "cannot encode the result (larger than 16 MiB or out of memory)");
		atomic_store(&job->failed, 1);
		job_message_done(w, job, 0);
		return;
	}
	dtk_value_free(&result);
	produce(w, job, topic, key, strlen(key), b.data, b.len, headers_of(&h));
	dtk_buf_free(&b);
}

/* ---- one request (pool threads) ---- */

static const char *status_of(const dtk_value *result)
{
	const char *s = dtk_value_cstr(dtk_value_map_get(result, "status"));
	return s ? s : "?";
}

/* An envelope failure: the original bytes to the DLQ with the error
 * headers, and a rejected result when the request id could be read. */
static void refuse(wk *w, dtk_wjob *job, dtk_request *req, dtk_msg_err e, const char *err)
{
	if (e == DTK_MSG_NOMEM) {
		dtk_wlog(DTK_WLOG_ERROR, job->metric, job->request_id,
			 "out of memory opening a request: it runs again after a restart");
		atomic_store(&job->pending, 1);
		atomic_store(&job->failed, 1);
		job_message_done(w, job, 0);
		return;
	}
	int reply = req->request_id[0] != 0;
	dtk_value *result = NULL;
	char msg[2200];
	snprintf(msg, sizeof(msg), "request refused (%s): %s", dtk_msg_err_name(e), err);
	if (reply) {
		if (!req->metric && job->keylen)
			req->metric = strdup(job->key);
		result = dtk_msg_result_rejected(req, "config", msg, w->worker_obj, 0);
		reply = result != NULL;
	}
	char part_s[16], off_s[24];
	snprintf(part_s, sizeof(part_s), "%d", (int)job->partition);
	snprintf(off_s, sizeof(off_s), "%lld", (long long)job->offset);
	rd_kafka_headers_t *h = rd_kafka_headers_new(8);
	rd_kafka_header_add(h, "dtk-error", -1, dtk_msg_err_name(e), -1);
	rd_kafka_header_add(h, "dtk-error-stage", -1, dtk_msg_err_stage(e), -1);
	rd_kafka_header_add(h, "dtk-error-message", -1, err, -1);
	rd_kafka_header_add(h, "dtk-origin-topic", -1, w->s->topic, -1);
	rd_kafka_header_add(h, "dtk-origin-partition", -1, part_s, -1);
	rd_kafka_header_add(h, "dtk-origin-offset", -1, off_s, -1);
	dtk_wlog_field f[] = {{"partition", NULL, job->partition},
			      {"offset", NULL, job->offset},
			      {"error", dtk_msg_err_name(e), 0},
			      {"stage", dtk_msg_err_stage(e), 0}};
	dtk_wlog_f(DTK_WLOG_WARN, job->metric && job->metric[0] ? job->metric : NULL,
		   job->request_id, f, 4, "request refused to the DLQ: %s", err);
	dtk_metrics_dlq(w->metrics, dtk_msg_err_name(e)); /* metrics */
	const char *topic = req->reply_to ? req->reply_to : w->s->results_topic;
	atomic_store(&job->pending, reply ? 2 : 1);
	size_t len = job->len < DLQ_MAX_VALUE ? job->len : DLQ_MAX_VALUE;
	if (reply) {
		produce(w, job, w->s->dlq_topic, job->key, job->keylen, job->payload, len, h);
		publish_result(w, job, topic, result);
	} else {
		produce(w, job, w->s->dlq_topic, job->key, job->keylen, job->payload, len, h);
	}
}

/* Writes the request's profiles where the config loader looks first.
 * Returns 0 with path filled ("" when there are none), or -1. */
static int write_profiles(wk *w, const dtk_request *req, char *path, size_t pathsz)
{
	path[0] = 0;
	if (!req->profiles || req->profiles->type != DTK_V_MAP || req->profiles->u.map.n == 0)
		return 0;
	dtk_buf b;
	dtk_buf_init(&b, (size_t)16 << 20);
	dtk_buf_adds(&b, "{\"profiles\":");
	dtk_json_emit(&b, req->profiles, 0);
	dtk_buf_addc(&b, '}');
	unsigned long n = atomic_fetch_add(&w->seq, 1);
	snprintf(path, pathsz, "%s/profiles-%lu.json", w->tmpdir, n);
	FILE *f = b.failed ? NULL : fopen(path, "w");
	int rc = -1;
	if (f) {
		rc = fwrite(b.data, 1, b.len, f) == b.len ? 0 : -1;
		if (fclose(f) != 0)
			rc = -1;
	}
	dtk_buf_free(&b);
	if (rc != 0)
		unlink(path);
	return rc;
}

/* The parsed config of req, cached; NULL with err on failure. */
static const dtk_config *config_for(wk *w, const dtk_request *req, char *err, size_t errsz)
{
	char key[140], ph[65] = "";
	dtk_buf b;
	dtk_buf_init(&b, (size_t)16 << 20);
	if (req->profiles)
		dtk_json_emit(&b, req->profiles, DTK_JSON_SORT_KEYS);
	int hashed = !b.failed && dtk_sha256_hex(b.data ? b.data : "", b.len, ph) == 0;
	dtk_buf_free(&b);
	if (!hashed) {
		snprintf(err, errsz, "out of memory hashing the request's profiles");
		return NULL;
	}
	snprintf(key, sizeof(key), "%s:%s", req->config_sha256, ph);
	const dtk_config *cached = dtk_cfgcache_get(w->cache, key);
	if (cached)
		return cached;

	char profiles[PATH_MAX + 64], name[300];
	if (write_profiles(w, req, profiles, sizeof(profiles)) != 0) {
		snprintf(err, errsz, "cannot write the request's profiles under %s", w->tmpdir);
		return NULL;
	}
	dtk_config_options opt = {.env_mode = DTK_ENV_STRICT,
				  .profiles_path = profiles[0] ? profiles : NULL,
				  .allow_env = w->s->allow_env,
				  .n_allow_env = w->s->n_allow_env};
	dtk_config *cfg = NULL;
	char perr[2048];
	snprintf(name, sizeof(name), "%s.yaml", req->metric);
	int rc = dtk_config_parse(req->config_yaml, req->config_yaml_len, name, &opt, &cfg, perr,
				  sizeof(perr));
	if (profiles[0])
		unlink(profiles);
	if (rc != 0) {
		dtk_config_mask(NULL, perr, err, errsz);
		return NULL;
	}
	if (strcmp(cfg->name, req->metric) != 0) {
		snprintf(err, errsz, "the config is named '%.200s', the request's metric is '%.200s'",
			 cfg->name, req->metric);
		dtk_config_free(&cfg);
		return NULL;
	}
	if (cfg->storage.enabled && !cfg->storage.type && w->s->storage_url) {
		/* default storage: the worker's --storage */
		cfg->storage.type = strdup("sql");
		if (!cfg->storage.type ||
		    dtk_value_map_set_str(cfg->storage.params, "connection_string",
					  w->s->storage_url) != 0) {
			dtk_config_free(&cfg);
			snprintf(err, errsz, "out of memory");
			return NULL;
		}
	}
	const dtk_config *out = dtk_cfgcache_put(w->cache, key, &cfg);
	if (!out)
		snprintf(err, errsz, "out of memory caching the config");
	return out;
}

static void run_job(void *ctx, size_t thread, dtk_wjob *job)
{
	wk *w = ctx;
	dtk_request req;
	char err[2048];
	dtk_msg_err e = dtk_request_open(job->payload, job->len, w->s->max_request_bytes,
					 job->signature, w->s->signing_keys,
					 w->s->allow_unsigned, &req, err, sizeof(err));
	job->metric = strdup(req.metric ? req.metric : job->key); /* NULL: logged without */
	snprintf(job->request_id, sizeof(job->request_id), "%s", req.request_id);
	if (e != DTK_MSG_OK) {
		refuse(w, job, &req, e, err);
		dtk_request_clear(&req);
		return;
	}
	const char *topic = req.reply_to ? req.reply_to : w->s->results_topic;
	dtk_value *result = NULL;
	const dtk_config *cfg = NULL;
	int64_t start = dtk_now_ms();
	atomic_store(&job->pending, 1);
	if (dtk_request_expired(&req, start)) {
		result = dtk_msg_result_expired(&req, w->worker_obj, start);
		dtk_wlog(DTK_WLOG_WARN, job->metric, job->request_id,
			 "deadline passed before the check ran: expired");
	} else if (!(cfg = config_for(w, &req, err, sizeof(err)))) {
		result = dtk_msg_result_rejected(&req, "config", err, w->worker_obj, 0);
		dtk_wlog(DTK_WLOG_WARN, job->metric, job->request_id, "config rejected: %s", err);
	} else if (req.store && cfg->storage.enabled && !cfg->storage.type) {
		snprintf(err, sizeof(err),
			 "storage: this config uses the default storage: start the worker with "
			 "--storage");
		result = dtk_msg_result_rejected(&req, "config", err, w->worker_obj, 0);
		dtk_wlog(DTK_WLOG_WARN, job->metric, job->request_id, "config rejected: %s", err);
	} else {
		char owner[sizeof(w->worker_id) + DTK_UUID_SIZE + 1];
		snprintf(owner, sizeof(owner), "%s:%s", w->worker_id, req.request_id);
		dtk_check_options o = {
			.has_time = 1,
			.requested_time = req.execution_time,
			.no_store = !req.store,
			.no_alerts = !req.alerts,
			.request_id = req.request_id,
			.dispatch_id = req.dispatch_id[0] ? req.dispatch_id : NULL,
			.worker = w->worker_obj,
			.queued_ms = start > req.dispatched_at_ms ? start - req.dispatched_at_ms : 0,
			.deadline_ms = req.deadline_ms,
			.redis_url = w->s->redis_url,
			.owner = owner,
			.limiter = w->limiter,
			.default_max_connections = w->s->default_max_connections,
		};
		dtk_check_result *r = NULL;
		if (dtk_check_run(cfg, &o, w->sessions[thread], &r) == 0 && r) {
			result = r->json;
			r->json = NULL;
		}
		dtk_check_result_free(&r);
		if (!result)
			result = dtk_msg_result_rejected(&req, "config",
							 "out of memory running the check",
							 w->worker_obj, 0);
		const dtk_value *errors = dtk_value_map_get(result, "errors");
		dtk_wlog_field f[] = {
			{"status", status_of(result), 0},
			{"duration_ms", NULL, dtk_now_ms() - start},
			{"errors", NULL,
			 errors && errors->type == DTK_V_LIST ? (int64_t)errors->u.list.n : 0},
			{"partition", NULL, job->partition},
			{"offset", NULL, job->offset}};
		dtk_wlog_f(DTK_WLOG_INFO, job->metric, job->request_id, f, 5, "check finished");
	}
	dtk_cfgcache_release(w->cache, cfg);
	if (result) {
		publish_result(w, job, topic, result);
	} else {
		dtk_wlog(DTK_WLOG_ERROR, job->metric, job->request_id,
			 "out of memory building a result: the request runs again after a restart");
		atomic_store(&job->failed, 1);
		job_message_done(w, job, 0);
	}
	dtk_request_clear(&req);
}

/* ---- consuming (main thread) ---- */

static void on_message(wk *w, rd_kafka_message_t *m)
{
	if (m->err) {
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
			return;
		dtk_wlog(DTK_WLOG_WARN, NULL, NULL, "consumer: %s", rd_kafka_message_errstr(m));
		return;
	}
	part *p = part_find(w, m->partition);
	if (!p || !p->assigned || m->offset <= p->last_seen)
		return; /* not ours now, or seen already in this assignment */
	dtk_wjob *job = dtk_wjob_new(m->key, m->key_len, m->payload, m->len);
	if (!job)
		goto oom;
	rd_kafka_headers_t *h = NULL;
	const void *sv;
	size_t sl;
	if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
	    rd_kafka_header_get_last(h, DTK_MSG_SIGNATURE_HEADER, &sv, &sl) ==
		    RD_KAFKA_RESP_ERR_NO_ERROR &&
	    sv) {
		job->signature = strndup(sv, sl);
		if (!job->signature)
			goto oom;
	}
	job->partition = m->partition;
	job->offset = m->offset;
	job->gen = p->gen;
	job->received_ms = dtk_now_ms();
	if (part_push(p, m->offset) != 0)
		goto oom;
	p->last_seen = m->offset;
	p->outstanding++;
	w->outstanding++;
	dtk_pool_submit(w->pool, job);
	return;
oom:
	/* unstored: the request runs again after a restart or rebalance */
	dtk_wlog(DTK_WLOG_ERROR, NULL, NULL, "out of memory taking a request");
	dtk_wjob_free(&job);
}

static size_t outstanding_in(wk *w, const rd_kafka_topic_partition_list_t *l)
{
	size_t n = 0;
	for (int i = 0; i < l->cnt; i++) {
		part *p = part_find(w, l->elems[i].partition);
		if (p && p->assigned)
			n += p->outstanding;
	}
	return n;
}

static void list_text(const rd_kafka_topic_partition_list_t *l, char *out, size_t outsz)
{
	size_t used = 0;
	out[0] = 0;
	for (int i = 0; i < l->cnt && used < outsz; i++) {
		int n = snprintf(out + used, outsz - used, "%s%d", i ? "," : "",
				 (int)l->elems[i].partition);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

/* Partitions going away: their queued jobs are dropped (the next owner
 * runs them), running ones finish and are delivered (bounded by
 * --drain-timeout, none while shutting down), and the stored offsets are
 * committed before the partitions go. */
static void revoke_partitions(wk *w, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *l, int lost)
{
	int32_t ids[l->cnt > 0 ? l->cnt : 1];
	for (int i = 0; i < l->cnt; i++)
		ids[i] = l->elems[i].partition;
	size_t dropped = dtk_pool_drop(w->pool, ids, (size_t)l->cnt, drop_job, w);
	int64_t deadline = dtk_now_ms() + (w->shutting_down ? 0 : w->s->drain_timeout_ms);
	while (outstanding_in(w, l) > 0 && dtk_now_ms() < deadline) {
		rd_kafka_poll(w->producer, 50);
		drain_finished(w);
	}
	size_t left = outstanding_in(w, l);
	if (!lost) {
		rd_kafka_resp_err_t err = rd_kafka_commit(rk, NULL, 0);
		if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
			dtk_wlog(DTK_WLOG_WARN, NULL, NULL, "commit on revoke: %s",
				 rd_kafka_err2str(err));
	}
	rd_kafka_topic_partition_list_t *keep = rd_kafka_topic_partition_list_new(4);
	for (int i = 0; i < w->paused->cnt; i++)
		if (!in_list(l, w->paused->elems[i].partition))
			rd_kafka_topic_partition_list_add(keep, w->s->topic,
							  w->paused->elems[i].partition);
	rd_kafka_topic_partition_list_destroy(w->paused);
	w->paused = keep;
	for (int i = 0; i < l->cnt; i++) {
		part *p = part_find(w, l->elems[i].partition);
		if (p)
			part_reset(w, p, 0);
	}
	char text[512];
	list_text(l, text, sizeof(text));
	dtk_wlog_field f[] = {{"partitions", text, 0},
			      {"dropped", NULL, (int64_t)dropped},
			      {"unfinished", NULL, (int64_t)left}};
	dtk_wlog_f(left ? DTK_WLOG_WARN : DTK_WLOG_INFO, NULL, NULL, f, 3, "partitions %s",
		   lost ? "lost" : "revoked");
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			 rd_kafka_topic_partition_list_t *l, void *opaque)
{
	wk *w = opaque;
	int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
	rd_kafka_error_t *error = NULL;
	dtk_metrics_rebalance(w->metrics, err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, coop);
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		for (int i = 0; i < l->cnt; i++) {
			part *p = part_get(w, l->elems[i].partition);
			if (p)
				part_reset(w, p, 1);
		}
		char text[512];
		list_text(l, text, sizeof(text));
		dtk_wlog_field f[] = {{"partitions", text, 0}};
		dtk_wlog_f(DTK_WLOG_INFO, NULL, NULL, f, 1, "partitions assigned");
		if (coop)
			error = rd_kafka_incremental_assign(rk, l);
		else
			rd_kafka_assign(rk, l);
	} else {
		if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
			dtk_wlog(DTK_WLOG_ERROR, NULL, NULL, "rebalance: %s", rd_kafka_err2str(err));
		revoke_partitions(w, rk, l, rd_kafka_assignment_lost(rk));
		if (coop)
			error = rd_kafka_incremental_unassign(rk, l);
		else
			rd_kafka_assign(rk, NULL);
	}
	if (error) {
		dtk_wlog(DTK_WLOG_ERROR, NULL, NULL, "rebalance: %s", rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
	}
}

/* start-up errors: librdkafka's last reason while no broker answered yet,
 * for wait_for_broker's final line (error_cb runs on the polling thread) */
static char startup_kafka_err[512];

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	wk *w = opaque;
	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		char why[512];
		rd_kafka_fatal_error(rk, why, sizeof(why));
		dtk_wlog(DTK_WLOG_ERROR, NULL, NULL, "fatal Kafka error (%s): %s", rd_kafka_name(rk),
			 why);
		atomic_store(&w->fatal, 1);
		dtk_metrics_fatal(w->metrics); /* metrics */
		return;
	}
	if (!w->consumer && err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) /* start-up errors */
		snprintf(startup_kafka_err, sizeof(startup_kafka_err), "%s", reason);
	dtk_wlog(DTK_WLOG_WARN, NULL, NULL, "kafka: %s: %s", rd_kafka_err2name(err), reason);
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	dtk_wlog_level l = level <= 3 ? DTK_WLOG_ERROR : level == 4 ? DTK_WLOG_WARN
				      : level <= 6  ? DTK_WLOG_INFO
						    : DTK_WLOG_DEBUG;
	dtk_wlog(l, NULL, NULL, "librdkafka %s: %s", fac, buf);
}

/* ---- setup ---- */

/* metrics: consumer lag from librdkafka's statistics (the JSON stays
 * librdkafka's: return 0) */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
	wk *w = opaque;
	dtk_metrics_kafka_stats(w->metrics, json, len);
	return 0;
}

/* The worker's defaults overridden by the user's properties
 * (dtk_kafka_conf_new), then the callbacks; NULL (logged) when a property
 * is refused. */
static rd_kafka_conf_t *client_conf(wk *w, int consumer)
{
	char id[200], err[2048];
	snprintf(id, sizeof(id), "%s-%s", w->worker_id, consumer ? "consumer" : "producer");
	dtk_kafka_settings ks = w->s->kafka;
	ks.client_id = id;
	static const dtk_kafka_prop consumer_defaults[] = {
	    {"enable.auto.commit", "true"},
	    {"auto.offset.reset", "earliest"},
	    {"enable.partition.eof", "false"},
	    /* bounded prefetch and fetch responses (a larger message is still
	     * fetched alone): resident memory stays near 25 MB under a
	     * 20,000-request backlog (bench/fleet.sh) */
	    {"queued.max.messages.kbytes", "4096"},
	    {"fetch.max.bytes", "1048576"},
	    {"fetch.message.max.bytes", "262144"},
	    /* last, so that ncd can leave it out: the statistics only feed
	     * --metrics-port */
	    {"statistics.interval.ms", "5000"},
	};
	/* main.c refuses these from the user with its own messages; required
	 * keeps them should a property ever get past that check */
	const dtk_kafka_prop consumer_required[] = {
	    {"group.id", w->s->group},
	    {"enable.auto.offset.store", "false"},
	};
	/* Not idempotent: librdkafka 2.0.2's idempotent producer thread spins
	 * under load (docs/librdkafka.md; bench/fleet.sh measured 2-6 s of CPU
	 * per worker for 20,000 results, 23 s with 4 workers, and 0.01-0.05 s
	 * without), and results are at-least-once anyway: a duplicate from a
	 * retried produce is one more copy of a result the readers already
	 * deduplicate by request id. One request in flight keeps a partition's
	 * results in order across retries, as the idempotent producer did.
	 * linger 1 ms: results leave promptly (5 ms added about 5 ms to the
	 * median dispatch-to-result latency) and still batch under load. */
	static const dtk_kafka_prop producer_defaults[] = {
	    {"enable.idempotence", "false"},
	    {"max.in.flight.requests.per.connection", "1"},
	    {"linger.ms", "1"},
	};
	size_t ncd = sizeof(consumer_defaults) / sizeof(consumer_defaults[0]) - !w->metrics;
	rd_kafka_conf_t *conf =
	    consumer ? dtk_kafka_conf_new(&ks, consumer_defaults, ncd, consumer_required,
					  sizeof(consumer_required) / sizeof(consumer_required[0]),
					  err, sizeof(err))
		     : dtk_kafka_conf_new(&ks, producer_defaults,
					  sizeof(producer_defaults) / sizeof(producer_defaults[0]),
					  NULL, 0, err, sizeof(err));
	if (!conf) {
		dtk_wlog(DTK_WLOG_ERROR, NULL, NULL, "%s", err);
		return NULL;
	}
	rd_kafka_conf_set_opaque(conf, w);
	rd_kafka_conf_set_error_cb(conf, error_cb);
	rd_kafka_conf_set_log_cb(conf, log_cb);
	if (consumer && w->metrics)
		rd_kafka_conf_set_stats_cb(conf, stats_cb);
	if (consumer)
		rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
	else
		rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	return conf;
}

static int interrupted(void)
{
	return signals_received != 0;
}

/* Waits for a broker to answer; 0, or -1 after the startup timeout. */
static int wait_for_broker(wk *w)
{
	int64_t deadline = dtk_now_ms() + w->s->startup_timeout_ms;
	rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
	while (!interrupted()) {
		const struct rd_kafka_metadata *md = NULL;
		int64_t left = deadline - dtk_now_ms();
		if (left <= 0)
			break;
		err = rd_kafka_metadata(w->producer, 1, NULL, &md, (int)(left < 2000 ? left : 2000));
		if (!err) {
			int found = 0;
			for (int i = 0; i < md->topic_cnt; i++)
				if (strcmp(md->topics[i].topic, w->s->topic) == 0 &&
				    !md->topics[i].err)
					found = 1;
			dtk_wlog_field f[] = {{"brokers", NULL, md->broker_cnt}};
			dtk_wlog_f(DTK_WLOG_INFO, NULL, NULL, f, 1, "connected to Kafka");
			if (!found)
				dtk_wlog(DTK_WLOG_WARN, NULL, NULL,
					 "topic %s does not exist yet (create it with dtk-dispatch "
					 "--create-topics); waiting for it",
					 w->s->topic);
			rd_kafka_metadata_destroy(md);
			return 0;
		}
		rd_kafka_poll(w->producer, 100);
	}
	if (interrupted())
		return 0;
	dtk_wlog(DTK_WLOG_ERROR, NULL, NULL,
		 "no Kafka broker reachable at %s within --startup-timeout (%lld s): %s",
		 w->s->kafka.brokers, (long long)(w->s->startup_timeout_ms / 1000),
		 startup_kafka_err[0] ? startup_kafka_err : rd_kafka_err2str(err));
	return -1;
}

static int wait_for_redis(wk *w)
{
	if (!w->s->redis_url)
		return 0;
	int64_t deadline = dtk_now_ms() + w->s->startup_timeout_ms;
	char err[512] = "";
	while (!interrupted() && dtk_now_ms() < deadline) {
		dtk_redis *r = dtk_redis_connect(w->s->redis_url, 2000, err, sizeof(err));
		/* a server that takes the connection is Redis once it answers PING
		 * (not another service's port; not a Redis that wants a password) */
		const char *ping[] = {"PING"};
		dtk_redis_reply reply;
		memset(&reply, 0, sizeof(reply));
		if (r && dtk_redis_command(r, 1, ping, NULL, &reply, err, sizeof(err)) == 0) {
			if (reply.type == DTK_REDIS_STRING) {
				dtk_wlog(DTK_WLOG_INFO, NULL, NULL, "connected to Redis at %s",
					 dtk_redis_shown(r));
				dtk_redis_reply_free(&reply);
				dtk_redis_free(&r);
				return 0;
			}
			snprintf(err, sizeof(err), "Redis %s: PING: %s", dtk_redis_shown(r),
				 reply.str ? reply.str : "not a Redis reply");
		}
		dtk_redis_reply_free(&reply);
		dtk_redis_free(&r);
		dtk_sleep_ms(500);
	}
	if (interrupted())
		return 0;
	dtk_wlog(DTK_WLOG_ERROR, NULL, NULL, "Redis not reachable within --startup-timeout: %s",
		 err);
	return -1;
}

static int setup_identity(wk *w)
{
	char host[128] = "localhost";
	if (gethostname(host, sizeof(host) - 1) != 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = 0;
	snprintf(w->worker_id, sizeof(w->worker_id), "%.100s-%ld", host, (long)getpid());
	snprintf(w->source, sizeof(w->source), "dtk-worker/%s", w->worker_id);
	w->worker_obj = dtk_value_map();
	if (!w->worker_obj || dtk_value_map_set_str(w->worker_obj, "id", w->worker_id) != 0 ||
	    dtk_value_map_set_str(w->worker_obj, "host", host) != 0 ||
	    dtk_value_map_set_str(w->worker_obj, "version", DTK_VERSION) != 0)
		return -1;
	snprintf(w->tmpdir, sizeof(w->tmpdir), "/tmp/dtk-worker-XXXXXX");
	if (!mkdtemp(w->tmpdir)) {
		dtk_wlog(DTK_WLOG_ERROR, NULL, NULL, "cannot make a temporary directory: %s",
			 strerror(errno));
		w->tmpdir[0] = 0;
		return -1;
	}
	return 0;
}

/* ---- the loop ---- */

static size_t assigned_count(const wk *w)
{
	size_t n = 0;
	for (size_t i = 0; i < w->nparts; i++)
		n += w->parts[i].assigned != 0;
	return n;
}

/* Stop taking work, let running checks finish and their results be
 * delivered within --drain-timeout, flush, commit. Returns the number of
 * checks still running. */
static size_t drain(wk *w)
{
	size_t dropped = dtk_pool_drop(w->pool, NULL, 0, drop_job, w);
	pause_assigned(w);
	dtk_wlog_field f[] = {{"running", NULL, (int64_t)dtk_pool_running(w->pool)},
			      {"dropped", NULL, (int64_t)dropped}};
	dtk_wlog_f(DTK_WLOG_INFO, NULL, NULL, f, 2,
		   "draining: finishing running checks (queued ones are left to the next owner)");
	int64_t deadline = dtk_now_ms() + w->s->drain_timeout_ms;
	while (w->outstanding > 0 && dtk_now_ms() < deadline && !atomic_load(&w->fatal)) {
		/* serve group events; anything still fetched is left unstored */
		rd_kafka_message_t *m = rd_kafka_consumer_poll(w->consumer, 0);
		if (m)
			rd_kafka_message_destroy(m);
		rd_kafka_poll(w->producer, 50);
		drain_finished(w);
	}
	int64_t left = deadline - dtk_now_ms();
	rd_kafka_resp_err_t err = rd_kafka_flush(w->producer, (int)(left > 5000 ? left : 5000));
	if (err)
		dtk_wlog(DTK_WLOG_WARN, NULL, NULL, "producer flush: %s", rd_kafka_err2str(err));
	drain_finished(w);
	size_t running = dtk_pool_running(w->pool);
	if (w->outstanding)
		dtk_wlog(DTK_WLOG_WARN, NULL, NULL,
			 "%zu requests unfinished after --drain-timeout; they run again elsewhere",
			 w->outstanding);
	err = rd_kafka_commit(w->consumer, NULL, 0);
	if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
		dtk_wlog(DTK_WLOG_WARN, NULL, NULL, "final commit: %s", rd_kafka_err2str(err));
	return running;
}

int dtk_worker_run(const dtk_worker_settings *s)
{
	wk w;
	int rc = 1;
	size_t still_running = 0;
	char err[512];
	memset(&w, 0, sizeof(w));
	w.s = s;
	/* glibc gives threads that allocate their own arenas (up to 8 per
	 * core): with 16 check threads under a backlog the fragments doubled
	 * the resident memory (bench/fleet.sh: peak 31 MB, 21 MB with two
	 * arenas, and less CPU). MALLOC_ARENA_MAX still decides when set. */
	if (!getenv("MALLOC_ARENA_MAX"))
		mallopt(M_ARENA_MAX, 2);
	/* A pause makes librdkafka drop what it prefetched for the partition and
	 * fetch it again on resume (hundreds of ms), so pause only when far
	 * ahead of the pool: short checks finish by the thousand per second. */
	w.high = s->concurrency * 16 < 4096 ? 4096 : s->concurrency * 16;
	w.low = w.high / 2;
	pthread_mutex_init(&w.finished_mu, NULL);
	w.paused = rd_kafka_topic_partition_list_new(4);
	if (setup_identity(&w) != 0)
		goto out;
	if (s->metrics_port) { /* metrics: a port in use fails the start */
		w.metrics = dtk_metrics_start(s->metrics_port, s->topic, s->redis_url, err,
					      sizeof(err));
		if (!w.metrics) {
			dtk_wlog(DTK_WLOG_ERROR, NULL, NULL, "%s", err);
			goto out;
		}
		dtk_wlog(DTK_WLOG_INFO, NULL, NULL,
			 "metrics on http://0.0.0.0:%d/metrics (/healthz, /readyz)", s->metrics_port);
	}
	dtk_wlog_field id[] = {{"worker", w.worker_id, 0},
			       {"group", s->group, 0},
			       {"topic", s->topic, 0},
			       {"concurrency", NULL, (int64_t)s->concurrency}};
	dtk_wlog_f(DTK_WLOG_INFO, NULL, NULL, id, 4, "dtk-worker %s starting", DTK_VERSION);
	if (s->allow_unsigned)
		dtk_wlog(DTK_WLOG_WARN, NULL, NULL,
			 "--allow-unsigned: unsigned requests run (signed ones are still checked)");
	else if (!s->signing_keys)
		dtk_wlog(DTK_WLOG_WARN, NULL, NULL,
			 "no DTK_SIGNING_KEYS and no --allow-unsigned: every request will be "
			 "refused to the DLQ");

	rd_kafka_conf_t *pconf = client_conf(&w, 0), *cconf = NULL;
	if (!pconf) {
		rc = 2;
		goto out;
	}
	cconf = client_conf(&w, 1);
	if (!cconf) {
		rd_kafka_conf_destroy(pconf);
		rc = 2;
		goto out;
	}
	w.producer = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, err, sizeof(err));
	if (!w.producer) {
		rd_kafka_conf_destroy(pconf);
		rd_kafka_conf_destroy(cconf);
		dtk_wlog(DTK_WLOG_ERROR, NULL, NULL, "Kafka producer: %s", err);
		goto out;
	}
	if (wait_for_broker(&w) != 0 || wait_for_redis(&w) != 0) {
		rd_kafka_conf_destroy(cconf);
		goto out;
	}
	w.consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cconf, err, sizeof(err));
	if (!w.consumer) {
		rd_kafka_conf_destroy(cconf);
		dtk_wlog(DTK_WLOG_ERROR, NULL, NULL, "Kafka consumer: %s", err);
		goto out;
	}
	rd_kafka_poll_set_consumer(w.consumer);
	w.cache = dtk_cfgcache_new(CONFIG_CACHE_SIZE);
	dtk_limiter_options lo = {.redis_url = s->redis_url, .fail_open = s->limiter_fail_open};
	w.limiter = dtk_limiter_new(&lo, err, sizeof(err));
	if (!w.limiter) {
		dtk_wlog(DTK_WLOG_ERROR, NULL, NULL, "connection limiter: %s", err);
		goto out;
	}
	w.sessions = calloc(s->concurrency, sizeof(*w.sessions));
	if (!w.cache || !w.sessions)
		goto out;
	for (size_t i = 0; i < s->concurrency; i++)
		if (!(w.sessions[i] = dtk_session_new()))
			goto out;
	/* only the main thread takes SIGTERM/SIGINT (librdkafka blocks them in
	 * its own threads) */
	sigset_t sigs, old;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, &old);
	w.pool = dtk_pool_new(s->concurrency, run_job, &w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!w.pool)
		goto out;
	rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(sub, s->topic, RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t serr = rd_kafka_subscribe(w.consumer, sub);
	rd_kafka_topic_partition_list_destroy(sub);
	if (serr) {
		dtk_wlog(DTK_WLOG_ERROR, NULL, NULL, "subscribe to %s: %s", s->topic,
			 rd_kafka_err2str(serr));
		goto out;
	}
	dtk_wlog(DTK_WLOG_INFO, NULL, NULL, "consuming %s", s->topic);

	while (!interrupted() && !atomic_load(&w.fatal)) {
		/* while paused (or results await their delivery reports) the
		 * consumer has nothing to give: wait on the producer instead, so
		 * finished requests free the pool within milliseconds */
		int paused = w.paused->cnt > 0, busy = w.outstanding > 0;
		rd_kafka_message_t *m =
			rd_kafka_consumer_poll(w.consumer, paused ? 0 : busy ? 1 : POLL_MS);
		if (m) {
			on_message(&w, m);
			rd_kafka_message_destroy(m);
		}
		rd_kafka_poll(w.producer, paused && !m ? 2 : 0);
		drain_finished(&w);
		flow_control(&w);
		dtk_metrics_tick(w.metrics, w.outstanding, assigned_count(&w)); /* metrics */
	}
	w.shutting_down = 1;
	if (atomic_load(&w.fatal)) {
		dtk_pool_drop(w.pool, NULL, 0, drop_job, &w);
		rd_kafka_flush(w.producer, 5000);
		drain_finished(&w);
		still_running = dtk_pool_running(w.pool);
		rc = 1;
	} else {
		dtk_wlog(DTK_WLOG_INFO, NULL, NULL, "signal received: draining (a second one exits now)");
		still_running = drain(&w);
		rc = 0;
	}
	dtk_pool_stop(w.pool);
	dtk_wlog(DTK_WLOG_INFO, NULL, NULL, "closing the consumer");
	rd_kafka_consumer_close(w.consumer);
	drain_finished(&w);
	if (still_running) {
		/* a check is stuck in I/O: its thread cannot be joined, and its
		 * request runs again elsewhere since its offset was not stored */
		dtk_wlog(DTK_WLOG_WARN, NULL, NULL, "%zu checks still running: exiting without them",
			 still_running);
		if (w.tmpdir[0])
			rmdir(w.tmpdir);
		_exit(rc);
	}
	dtk_wlog(DTK_WLOG_INFO, NULL, NULL, "stopped");
out:
	dtk_pool_free(&w.pool);
	if (w.consumer)
		rd_kafka_destroy(w.consumer);
	if (w.producer) {
		rd_kafka_poll(w.producer, 0);
		rd_kafka_destroy(w.producer);
	}
	drain_finished(&w);
	for (size_t i = 0; w.sessions && i < s->concurrency; i++)
		dtk_session_free(&w.sessions[i]);
	free(w.sessions);
	dtk_limiter_free(&w.limiter);
	dtk_metrics_free(&w.metrics); /* after the clients: no stats callback left */
	dtk_cfgcache_free(&w.cache);
	for (size_t i = 0; i < w.nparts; i++) {
		free(w.parts[i].off);
		free(w.parts[i].done);
	}
	free(w.parts);
	if (w.paused)
		rd_kafka_topic_partition_list_destroy(w.paused);
	dtk_value_free(&w.worker_obj);
	if (w.tmpdir[0])
		rmdir(w.tmpdir);
	pthread_mutex_destroy(&w.finished_mu);
	return rc;
}
