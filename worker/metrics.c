/* dtk-worker's metrics endpoint: see metrics.h.
 *
 * The server answers one connection at a time on its own thread: a request
 * is read within 2 s and 8 KiB or refused, answered and the connection
 * closed. A scrape is small and rare, so no keep-alive and no threads per
 * client; a slow client delays the next scrape by at most the timeout.
 * /readyz's Redis PING runs on this thread too and is cached for 3 s, so
 * probes never load Redis nor stall the worker. */
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "message.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/json.h"
#include "util/redis.h"

#define REQ_MAX 8192
#define REQ_TIMEOUT_MS 2000
#define HEALTHY_POLL_MS 10000
#define REDIS_CACHE_MS 3000
#define REDIS_TIMEOUT_MS 1000
#define MAX_LABELSETS 64 /* per labelled counter; more go to "other" */
#define BODY_MAX ((size_t)4 << 20)

/* Upper bounds in seconds, for the stage and limiter histograms. */
static const char *const bucket_text[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
					  "1",	   "2.5",  "5",	    "10",   "30",  "60",   "+Inf"};
static const double bucket_le[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
#define NBUCKETS (sizeof(bucket_text) / sizeof(bucket_text[0]))

static const char *const stages[] = {"collect", "store", "detect", "alert", "total"};
#define NSTAGES (sizeof(stages) / sizeof(stages[0]))
static const char *const statuses[] = {"ok", "anomaly", "error", "expired", "rejected"};
#define NSTATUSES (sizeof(statuses) / sizeof(statuses[0]))

typedef struct hist {
	uint64_t in[NBUCKETS]; /* per bucket, not cumulative; the last is +Inf */
	uint64_t count;
	double sum;
} hist;

typedef struct labelled {
	char *a, *b; /* label values (b may be NULL) */
	uint64_t n;
} labelled;

typedef struct lag {
	int32_t partition;
	int64_t lag;
} lag;

struct dtk_metrics {
	int fd;
	int wake[2];
	pthread_t thread;
	int started;
	char *topic;
	char *redis_url;

	pthread_mutex_t mu; /* guards everything up to the atomics */
	uint64_t checks[NSTATUSES];
	hist stage[NSTAGES];
	hist limiter;
	labelled dlq[MAX_LABELSETS + 1];
	size_t ndlq;
	labelled alerts[MAX_LABELSETS + 1];
	size_t nalerts;
	uint64_t undelivered;
	lag *lags;
	size_t nlags;

	atomic_llong last_poll_ms; /* dtk_mono_ms of the main loop's last turn */
	atomic_int fatal;
	atomic_int joined;
	atomic_size_t in_flight;
	atomic_size_t assigned;

	/* the serving thread's own */
	dtk_redis *redis;
	double redis_checked_ms;
	int redis_ok;
	char redis_err[300];
};

/* ---- counting ---- */

static void hist_observe(hist *h, double v)
{
	size_t i = 0;
	while (i < NBUCKETS - 1 && v > bucket_le[i])
		i++;
	h->in[i]++;
	h->count++;
	h->sum += v;
}

/* Adds one to the labelled count (a, b); past MAX_LABELSETS distinct ones
 * the last slot, "other", takes the rest. Under m->mu. */
static void labelled_add(labelled *t, size_t *n, const char *a, const char *b)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp(t[i].a, a) == 0 && (!b || strcmp(t[i].b, b) == 0)) {
			t[i].n++;
			return;
		}
	if (*n == MAX_LABELSETS) {
		if (!t[*n].a) {
			t[*n].a = strdup("other");
			t[*n].b = b ? strdup("other") : NULL;
			if (!t[*n].a || (b && !t[*n].b))
				return;
		}
		t[*n].n++;
		return;
	}
	char *ca = strdup(a), *cb = b ? strdup(b) : NULL;
	if (!ca || (b && !cb)) {
		free(ca);
		free(cb);
		return;
	}
	t[*n] = (labelled){ca, cb, 1};
	(*n)++;
}

/* Adds the label set (a) at 0 (no other labels), before any counting. */
static void labelled_zero(labelled *t, size_t *n, const char *a)
{
	if (*n < MAX_LABELSETS && (t[*n].a = strdup(a)) != NULL)
		t[(*n)++].n = 0;
}

static double ms_field(const dtk_value *map, const char *key, int *found)
{
	double v = 0;
	*found = dtk_value_number(dtk_value_map_get(map, key), &v) && v >= 0;
	return *found ? v / 1000.0 : 0;
}

static const char *alert_outcome(const dtk_value *entry)
{
	if (dtk_value_truthy(dtk_value_map_get(entry, "sent")))
		return "sent";
	if (dtk_value_cstr(dtk_value_map_get(entry, "suppressed_by")))
		return "suppressed";
	if (dtk_value_cstr(dtk_value_map_get(entry, "error")))
		return "failed";
	return NULL; /* nothing was due */
}

void dtk_metrics_result(dtk_metrics *m, const dtk_value *result)
{
	if (!m || !result)
		return;
	const char *status = dtk_value_cstr(dtk_value_map_get(result, "status"));
	const dtk_value *timings = dtk_value_map_get(result, "timings_ms");
	const dtk_value *alerts = dtk_value_map_get(result, "alerts");
	size_t st = NSTATUSES;
	for (size_t i = 0; status && i < NSTATUSES; i++)
		if (strcmp(status, statuses[i]) == 0)
			st = i;
	/* expired and rejected results carry zero timings: the check never ran */
	int ran = st < NSTATUSES && strcmp(statuses[st], "expired") != 0 &&
		  strcmp(statuses[st], "rejected") != 0;
	pthread_mutex_lock(&m->mu);
	if (st < NSTATUSES)
		m->checks[st]++;
	if (ran && timings && timings->type == DTK_V_MAP) {
		int found;
		for (size_t i = 0; i < NSTAGES; i++) {
			double s = ms_field(timings, stages[i], &found);
			if (found)
				hist_observe(&m->stage[i], s);
		}
		double s = ms_field(timings, "limiter_wait", &found);
		if (found)
			hist_observe(&m->limiter, s);
	}
	for (size_t i = 0; alerts && alerts->type == DTK_V_LIST && i < alerts->u.list.n; i++) {
		const dtk_value *e = alerts->u.list.items[i];
		const char *outcome = alert_outcome(e);
		const char *type = dtk_value_cstr(dtk_value_map_get(e, "type"));
		if (outcome)
			labelled_add(m->alerts, &m->nalerts, type ? type : "unknown", outcome);
	}
	pthread_mutex_unlock(&m->mu);
}

void dtk_metrics_dlq(dtk_metrics *m, const char *error)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->mu);
	labelled_add(m->dlq, &m->ndlq, error ? error : "unknown", NULL);
	pthread_mutex_unlock(&m->mu);
}

void dtk_metrics_undelivered(dtk_metrics *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->mu);
	m->undelivered++;
	pthread_mutex_unlock(&m->mu);
}

void dtk_metrics_tick(dtk_metrics *m, size_t in_flight, size_t assigned)
{
	if (!m)
		return;
	atomic_store(&m->last_poll_ms, (long long)dtk_mono_ms());
	atomic_store(&m->in_flight, in_flight);
	atomic_store(&m->assigned, assigned);
}

void dtk_metrics_rebalance(dtk_metrics *m, int assigned, int cooperative)
{
	if (!m)
		return;
	if (assigned)
		atomic_store(&m->joined, 1);
	else if (!cooperative)
		atomic_store(&m->joined, 0);
}

void dtk_metrics_fatal(dtk_metrics *m)
{
	if (m)
		atomic_store(&m->fatal, 1);
}

/* librdkafka 2.0's statistics: topics.<name>.partitions.<id>.consumer_lag,
 * -1 while unknown and for partition -1 (the unassigned pseudo one). */
void dtk_metrics_kafka_stats(dtk_metrics *m, const char *json, size_t len)
{
	if (!m || !json)
		return;
	char err[256];
	dtk_value *root = dtk_json_parse(json, len, err, sizeof(err));
	const dtk_value *topics = dtk_value_map_get(root, "topics");
	const dtk_value *parts =
	    dtk_value_map_get(dtk_value_map_get(topics, m->topic), "partitions");
	lag *lags = NULL;
	size_t n = 0;
	if (parts && parts->type == DTK_V_MAP && parts->u.map.n) {
		lags = calloc(parts->u.map.n, sizeof(*lags));
		for (size_t i = 0; lags && i < parts->u.map.n; i++) {
			const dtk_value *p = parts->u.map.items[i].val;
			double id, l;
			if (dtk_value_number(dtk_value_map_get(p, "partition"), &id) &&
			    dtk_value_number(dtk_value_map_get(p, "consumer_lag"), &l) && id >= 0 &&
			    l >= 0)
				lags[n++] = (lag){(int32_t)id, (int64_t)l};
		}
	}
	dtk_value_free(&root);
	pthread_mutex_lock(&m->mu);
	free(m->lags);
	m->lags = lags;
	m->nlags = n;
	pthread_mutex_unlock(&m->mu);
}

/* ---- exposition ---- */

static void label_value(dtk_buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			dtk_buf_addc(b, '\\');
		if (*s == '\n')
			dtk_buf_adds(b, "\\n");
		else
			dtk_buf_addc(b, *s);
	}
}

static void family(dtk_buf *b, const char *name, const char *type, const char *help)
{
	dtk_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One histogram's samples; label is `name="value"` or "". */
static void hist_samples(dtk_buf *b, const char *name, const char *label, const hist *h)
{
	uint64_t cum = 0;
	const char *sep = label[0] ? "," : "";
	for (size_t i = 0; i < NBUCKETS; i++) {
		cum += h->in[i];
		dtk_buf_printf(b, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, label, sep,
			       bucket_text[i], (unsigned long long)cum);
	}
	const char *open = label[0] ? "{" : "", *close = label[0] ? "}" : "";
	dtk_buf_printf(b, "%s_sum%s%s%s %.9g\n", name, open, label, close, h->sum);
	dtk_buf_printf(b, "%s_count%s%s%s %llu\n", name, open, label, close,
		       (unsigned long long)h->count);
}

char *dtk_metrics_render(dtk_metrics *m)
{
	if (!m)
		return NULL;
	dtk_buf b;
	dtk_buf_init(&b, BODY_MAX);
	family(&b, "dtk_worker_up", "gauge", "1 while the worker process runs.");
	dtk_buf_adds(&b, "dtk_worker_up 1\n");
	family(&b, "dtk_worker_build_info", "gauge", "The worker's version (value always 1).");
	dtk_buf_printf(&b, "dtk_worker_build_info{version=\"%s\"} 1\n", DTK_VERSION);

	pthread_mutex_lock(&m->mu);
	family(&b, "dtk_worker_checks_total", "counter", "Results published, by status.");
	for (size_t i = 0; i < NSTATUSES; i++)
		dtk_buf_printf(&b, "dtk_worker_checks_total{status=\"%s\"} %llu\n", statuses[i],
			       (unsigned long long)m->checks[i]);
	family(&b, "dtk_worker_check_duration_seconds", "histogram",
	       "Time per pipeline stage of a check, from its result's timings_ms.");
	for (size_t i = 0; i < NSTAGES; i++) {
		char label[32];
		snprintf(label, sizeof(label), "stage=\"%s\"", stages[i]);
		hist_samples(&b, "dtk_worker_check_duration_seconds", label, &m->stage[i]);
	}
	family(&b, "dtk_worker_limiter_wait_seconds_total", "counter",
	       "Time checks waited for a connection-limiter slot.");
	dtk_buf_printf(&b, "dtk_worker_limiter_wait_seconds_total %.9g\n", m->limiter.sum);
	family(&b, "dtk_worker_limiter_wait_seconds", "histogram",
	       "Connection-limiter wait per check.");
	hist_samples(&b, "dtk_worker_limiter_wait_seconds", "", &m->limiter);
	family(&b, "dtk_worker_dlq_total", "counter",
	       "Requests refused to the dead-letter topic, by error.");
	for (size_t i = 0; i < m->ndlq + (m->dlq[MAX_LABELSETS].a ? 1 : 0); i++) {
		size_t k = i < m->ndlq ? i : MAX_LABELSETS;
		dtk_buf_adds(&b, "dtk_worker_dlq_total{error=\"");
		label_value(&b, m->dlq[k].a);
		dtk_buf_printf(&b, "\"} %llu\n", (unsigned long long)m->dlq[k].n);
	}
	family(&b, "dtk_worker_alerts_total", "counter",
	       "Alerts by alerter type and outcome (sent, suppressed, failed).");
	for (size_t i = 0; i < m->nalerts + (m->alerts[MAX_LABELSETS].a ? 1 : 0); i++) {
		size_t k = i < m->nalerts ? i : MAX_LABELSETS;
		dtk_buf_adds(&b, "dtk_worker_alerts_total{type=\"");
		label_value(&b, m->alerts[k].a);
		dtk_buf_adds(&b, "\",outcome=\"");
		label_value(&b, m->alerts[k].b ? m->alerts[k].b : "");
		dtk_buf_printf(&b, "\"} %llu\n", (unsigned long long)m->alerts[k].n);
	}
	family(&b, "dtk_worker_results_undelivered_total", "counter",
	       "Results or DLQ copies not delivered (their requests run again later).");
	dtk_buf_printf(&b, "dtk_worker_results_undelivered_total %llu\n",
		       (unsigned long long)m->undelivered);
	family(&b, "dtk_worker_consumer_lag", "gauge",
	       "Messages behind the partition's end, per assigned partition (librdkafka "
	       "statistics, every 5 s).");
	int64_t total = 0;
	for (size_t i = 0; i < m->nlags; i++) {
		dtk_buf_printf(&b, "dtk_worker_consumer_lag{partition=\"%d\"} %lld\n",
			       (int)m->lags[i].partition, (long long)m->lags[i].lag);
		total += m->lags[i].lag;
	}
	pthread_mutex_unlock(&m->mu);
	family(&b, "dtk_worker_consumer_lag_overall", "gauge",
	       "Consumer lag summed over the assigned partitions.");
	dtk_buf_printf(&b, "dtk_worker_consumer_lag_overall %lld\n", (long long)total);
	family(&b, "dtk_worker_in_flight", "gauge",
	       "Requests in the process: queued, running or awaiting delivery.");
	dtk_buf_printf(&b, "dtk_worker_in_flight %zu\n", atomic_load(&m->in_flight));
	family(&b, "dtk_worker_assigned_partitions", "gauge",
	       "Partitions of the request topic assigned to this worker.");
	dtk_buf_printf(&b, "dtk_worker_assigned_partitions %zu\n", atomic_load(&m->assigned));
	if (b.failed) {
		dtk_buf_free(&b);
		return NULL;
	}
	return dtk_buf_take(&b);
}

/* ---- health ---- */

static int healthy(dtk_metrics *m, char *why, size_t whysz)
{
	if (atomic_load(&m->fatal)) {
		snprintf(why, whysz, "fatal error (see the worker's log)");
		return 0;
	}
	double idle = dtk_mono_ms() - (double)atomic_load(&m->last_poll_ms);
	if (idle > HEALTHY_POLL_MS) {
		snprintf(why, whysz, "the main loop has not polled Kafka for %.0f s", idle / 1000);
		return 0;
	}
	return 1;
}

/* PINGs Redis at most every REDIS_CACHE_MS (serving thread only). */
static int redis_reachable(dtk_metrics *m)
{
	double now = dtk_mono_ms();
	if (m->redis_checked_ms && now - m->redis_checked_ms < REDIS_CACHE_MS)
		return m->redis_ok;
	m->redis_checked_ms = now;
	m->redis_ok = 0;
	char err[256] = "";
	if (!m->redis)
		m->redis = dtk_redis_new(m->redis_url, REDIS_TIMEOUT_MS, err, sizeof(err));
	if (!m->redis) {
		snprintf(m->redis_err, sizeof(m->redis_err), "%s", err);
		return 0;
	}
	const char *argv[] = {"PING"};
	dtk_redis_reply reply;
	memset(&reply, 0, sizeof(reply));
	if (dtk_redis_command(m->redis, 1, argv, NULL, &reply, err, sizeof(err)) != 0)
		snprintf(m->redis_err, sizeof(m->redis_err), "%s", err);
	else if (reply.type != DTK_REDIS_STRING)
		snprintf(m->redis_err, sizeof(m->redis_err), "PING: %s",
			 reply.str ? reply.str : "unexpected reply");
	else
		m->redis_ok = 1;
	dtk_redis_reply_free(&reply);
	return m->redis_ok;
}

static int ready(dtk_metrics *m, char *why, size_t whysz)
{
	if (!healthy(m, why, whysz))
		return 0;
	if (!atomic_load(&m->joined) && !atomic_load(&m->assigned)) {
		snprintf(why, whysz,
			 "no partitions assigned and the consumer group not joined yet");
		return 0;
	}
	if (m->redis_url && !redis_reachable(m)) {
		snprintf(why, whysz, "Redis not reachable: %s", m->redis_err);
		return 0;
	}
	return 1;
}

/* ---- HTTP ---- */

static void send_all(int fd, const char *p, size_t len)
{
	double deadline = dtk_mono_ms() + REQ_TIMEOUT_MS;
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return;
		int left = (int)(deadline - dtk_mono_ms());
		struct pollfd pf = {fd, POLLOUT, 0};
		if (left <= 0 || poll(&pf, 1, left) <= 0)
			return;
	}
}

static void respond(int fd, int code, const char *reason, const char *type, const char *body,
		    const char *extra)
{
	char head[512];
	size_t len = strlen(body);
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
			 "Connection: close\r\n\r\n",
			 code, reason, type, len, extra ? extra : "");
	if (n < 0 || (size_t)n >= sizeof(head))
		return;
	send_all(fd, head, (size_t)n);
	send_all(fd, body, len);
}

/* Reads the request head (up to the blank line) into buf; returns its
 * length, 0 when the client sent too much, or -1 on timeout or close. */
static ssize_t read_head(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	double deadline = dtk_mono_ms() + REQ_TIMEOUT_MS;
	for (;;) {
		int left = (int)(deadline - dtk_mono_ms());
		struct pollfd pf = {fd, POLLIN, 0};
		if (left <= 0 || poll(&pf, 1, left) <= 0)
			return -1;
		if (len == cap - 1)
			return 0;
		ssize_t n = recv(fd, buf + len, cap - 1 - len, MSG_DONTWAIT);
		if (n == 0)
			return -1;
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				continue;
			return -1;
		}
		len += (size_t)n;
		buf[len] = 0;
		if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
			return (ssize_t)len;
	}
}

static void handle(dtk_metrics *m, int fd)
{
	char req[REQ_MAX];
	ssize_t n = read_head(fd, req, sizeof(req));
	if (n < 0)
		return;
	if (n == 0) {
		respond(fd, 431, "Request Header Fields Too Large", "text/plain; charset=utf-8",
			"request too large\n", NULL);
		return;
	}
	char *sp1 = strchr(req, ' ');
	char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || !sp2 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
		respond(fd, 400, "Bad Request", "text/plain; charset=utf-8", "bad request\n", NULL);
		return;
	}
	*sp1 = 0;
	*sp2 = 0;
	char *path = sp1 + 1;
	path[strcspn(path, "?")] = 0;
	if (strcmp(req, "GET") != 0) {
		respond(fd, 405, "Method Not Allowed", "text/plain; charset=utf-8", "GET only\n",
			"Allow: GET\r\n");
		return;
	}
	char why[512], body[600];
	if (strcmp(path, "/metrics") == 0) {
		char *text = dtk_metrics_render(m);
		if (text)
			respond(fd, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", text,
				NULL);
		else
			respond(fd, 500, "Internal Server Error", "text/plain; charset=utf-8",
				"out of memory\n", NULL);
		free(text);
	} else if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0) {
		int ok = path[1] == 'h' ? healthy(m, why, sizeof(why)) : ready(m, why, sizeof(why));
		snprintf(body, sizeof(body), "%s\n", ok ? "ok" : why);
		if (ok)
			respond(fd, 200, "OK", "text/plain; charset=utf-8", body, NULL);
		else
			respond(fd, 503, "Service Unavailable", "text/plain; charset=utf-8", body,
				NULL);
	} else {
		respond(fd, 404, "Not Found", "text/plain; charset=utf-8",
			"not found (try /metrics, /healthz or /readyz)\n", NULL);
	}
}

static void *serve(void *arg)
{
	dtk_metrics *m = arg;
	for (;;) {
		struct pollfd pf[2] = {{m->fd, POLLIN, 0}, {m->wake[0], POLLIN, 0}};
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[1].revents)
			break;
		if (!(pf[0].revents & POLLIN))
			continue;
		int c = accept4(m->fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		handle(m, c);
		close(c);
	}
	return NULL;
}

/* ---- lifetime ---- */

dtk_metrics *dtk_metrics_start(int port, const char *topic, const char *redis_url, char *errstr,
			       size_t errstr_size)
{
	dtk_metrics *m = calloc(1, sizeof(*m));
	if (!m) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	m->fd = -1;
	m->wake[0] = m->wake[1] = -1;
	pthread_mutex_init(&m->mu, NULL);
	/* Every DLQ error starts at 0, so increase() and rate() over
	 * dtk_worker_dlq_total (deploy/observability/alerts.yml) see the
	 * first message of a kind, not only the second. */
	for (int e = DTK_MSG_OVERSIZE; e <= DTK_MSG_NOMEM; e++)
		labelled_zero(m->dlq, &m->ndlq, dtk_msg_err_name((dtk_msg_err)e));
	atomic_store(&m->last_poll_ms, (long long)dtk_mono_ms());
	m->topic = strdup(topic ? topic : "");
	m->redis_url = redis_url ? strdup(redis_url) : NULL;
	if (!m->topic || (redis_url && !m->redis_url)) {
		snprintf(errstr, errstr_size, "out of memory");
		goto fail;
	}
	m->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (m->fd < 0) {
		snprintf(errstr, errstr_size, "metrics port %d: socket: %s", port, strerror(errno));
		goto fail;
	}
	/* a port in TIME_WAIT after a restart is free; one with a listener
	 * still is not (Linux) */
	int one = 1;
	setsockopt(m->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_ANY);
	if (bind(m->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(m->fd, 16) != 0) {
		snprintf(errstr, errstr_size, "metrics port %d: %s%s", port, strerror(errno),
			 errno == EADDRINUSE ? " (another process listens there: pick another "
					       "--metrics-port)"
					     : "");
		goto fail;
	}
	if (pipe2(m->wake, O_CLOEXEC) != 0) {
		snprintf(errstr, errstr_size, "metrics: pipe: %s", strerror(errno));
		goto fail;
	}
	/* signals belong to the main thread */
	sigset_t sigs, old;
	sigfillset(&sigs);
	pthread_sigmask(SIG_BLOCK, &sigs, &old);
	int rc = pthread_create(&m->thread, NULL, serve, m);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		snprintf(errstr, errstr_size, "metrics: cannot start a thread: %s", strerror(rc));
		goto fail;
	}
	m->started = 1;
	return m;
fail:
	dtk_metrics_free(&m);
	return NULL;
}

void dtk_metrics_free(dtk_metrics **mp)
{
	dtk_metrics *m = mp ? *mp : NULL;
	if (!m)
		return;
	if (m->started) {
		ssize_t n = write(m->wake[1], "x", 1);
		(void)n;
		pthread_join(m->thread, NULL);
	}
	if (m->fd >= 0)
		close(m->fd);
	if (m->wake[0] >= 0)
		close(m->wake[0]);
	if (m->wake[1] >= 0)
		close(m->wake[1]);
	for (size_t i = 0; i <= MAX_LABELSETS; i++) {
		free(m->dlq[i].a);
		free(m->dlq[i].b);
		free(m->alerts[i].a);
		free(m->alerts[i].b);
	}
	free(m->lags);
	free(m->topic);
	free(m->redis_url);
	dtk_redis_free(&m->redis);
	pthread_mutex_destroy(&m->mu);
	free(m);
	*mp = NULL;
}
