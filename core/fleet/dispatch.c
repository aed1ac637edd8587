#include "dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/clock.h"
#include "util/json.h"

#define DEFAULT_REQUEST_TIMEOUT_MS 10000
#define DEFAULT_MESSAGE_TIMEOUT_MS "30000"
/* the flush waits this much longer than message.timeout.ms, the bound on
 * a message's own delivery, before purging what is left */
#define FLUSH_MARGIN_MS 5000
#define PURGE_WAIT_MS 2000
#define POLL_MS 200
#define PROGRESS_EVERY_MS 1000

struct dtk_dispatch {
	rd_kafka_t *producer;
	dtk_kafka_settings kafka; /* strings owned below */
	char *brokers, *client_id, **props;
	char *topic, *results_topic, *dlq_topic, *source, *signing_key;
	int request_timeout_ms;
	int64_t message_timeout_ms;
	size_t pending; /* delivery reports still to come */
	int32_t *partitions; /* of the result topic, with their end offsets */
	int64_t *offsets;
	size_t npartitions;
	int marked;
};

static char *dup_or(const char *s, const char *def)
{
	return strdup(s && *s ? s : def);
}

/* Delivery report: clears the message's error on success. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	dtk_dispatch *d = opaque;
	dtk_dispatch_msg *msg = m->_private;
	if (d->pending)
		d->pending--;
	if (!msg)
		return;
	if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
		msg->error[0] = '\0';
		msg->partition = m->partition;
		msg->offset = m->offset;
	} else {
		snprintf(msg->error, sizeof(msg->error), "not delivered: %s",
			 rd_kafka_err2str(m->err));
	}
}

int dtk_dispatch_new(const dtk_dispatch_opts *o, dtk_dispatch **out, char *errstr,
		     size_t errstr_size)
{
	dtk_dispatch *d = calloc(1, sizeof(*d));
	rd_kafka_conf_t *conf = NULL;
	char err[512], mt[32];
	size_t mtlen = sizeof(mt);
	*out = NULL;
	if (!d)
		goto nomem;
	d->brokers = strdup(o->kafka.brokers ? o->kafka.brokers : "");
	d->client_id = dup_or(o->kafka.client_id, "dtk-dispatch");
	d->props = calloc(o->kafka.nprops + 1, sizeof(char *));
	d->topic = dup_or(o->topic, DTK_DISPATCH_REQUEST_TOPIC);
	d->results_topic = dup_or(o->results_topic, DTK_DISPATCH_RESULT_TOPIC);
	d->dlq_topic = dup_or(o->dlq_topic, DTK_DISPATCH_DLQ_TOPIC);
	d->source = dup_or(o->source, "dtk-dispatch");
	d->signing_key = o->signing_key && *o->signing_key ? strdup(o->signing_key) : NULL;
	if (!d->brokers || !d->client_id || !d->props || !d->topic || !d->results_topic ||
	    !d->dlq_topic || !d->source || (o->signing_key && *o->signing_key && !d->signing_key))
		goto nomem;
	for (size_t i = 0; i < o->kafka.nprops; i++)
		if (!(d->props[i] = strdup(o->kafka.props[i])))
			goto nomem;
	d->kafka = (dtk_kafka_settings){.brokers = d->brokers,
					.props = (const char *const *)d->props,
					.nprops = o->kafka.nprops,
					.client_id = d->client_id};
	d->request_timeout_ms =
		o->request_timeout_ms > 0 ? o->request_timeout_ms : DEFAULT_REQUEST_TIMEOUT_MS;
	static const dtk_kafka_prop defaults[] = {
		{"message.timeout.ms", DEFAULT_MESSAGE_TIMEOUT_MS},
		{"message.max.bytes", DTK_DISPATCH_MAX_MESSAGE_BYTES},
	};
	static const dtk_kafka_prop required[] = {
		{"enable.idempotence", "true"},
		{"acks", "all"},
	};
	conf = dtk_kafka_conf_new(&d->kafka, defaults, sizeof(defaults) / sizeof(defaults[0]),
				  required, sizeof(required) / sizeof(required[0]), errstr,
				  errstr_size);
	if (!conf)
		goto fail;
	d->message_timeout_ms = 30000;
	if (rd_kafka_conf_get(conf, "message.timeout.ms", mt, &mtlen) == RD_KAFKA_CONF_OK) {
		/* librdkafka validated it as an integer; keep the default otherwise */
		char *end;
		long long v = strtoll(mt, &end, 10);
		if (end != mt && *end == '\0' && v > 0)
			d->message_timeout_ms = v;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_opaque(conf, d);
	d->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!d->producer) {
		rd_kafka_conf_destroy(conf);
		snprintf(errstr, errstr_size, "Kafka producer: %s", err);
		goto fail;
	}
	*out = d;
	return 0;
nomem:
	snprintf(errstr, errstr_size, "out of memory");
fail:
	dtk_dispatch_free(&d);
	return -1;
}

const char *dtk_dispatch_topic(const dtk_dispatch *d)
{
	return d->topic;
}

void dtk_dispatch_free(dtk_dispatch **pd)
{
	if (!pd || !*pd)
		return;
	dtk_dispatch *d = *pd;
	if (d->producer)
		rd_kafka_destroy(d->producer);
	for (size_t i = 0; d->props && d->props[i]; i++)
		free(d->props[i]);
	free(d->props);
	free(d->brokers);
	free(d->client_id);
	free(d->topic);
	free(d->results_topic);
	free(d->dlq_topic);
	free(d->source);
	free(d->signing_key);
	free(d->partitions);
	free(d->offsets);
	free(d);
	*pd = NULL;
}

int dtk_dispatch_create_topics(dtk_dispatch *d, int partitions, int replication_factor,
			       char *errstr, size_t errstr_size)
{
	const dtk_kafka_topic_spec topics[] = {
		{d->topic, partitions, replication_factor, DTK_DISPATCH_MAX_MESSAGE_BYTES},
		{d->results_topic, partitions, replication_factor, NULL},
		{d->dlq_topic, partitions, replication_factor, DTK_DISPATCH_MAX_MESSAGE_BYTES},
	};
	return dtk_kafka_create_topics(d->producer, topics, sizeof(topics) / sizeof(topics[0]),
				       d->request_timeout_ms, errstr, errstr_size);
}

int dtk_dispatch_check_topic(dtk_dispatch *d, char *errstr, size_t errstr_size)
{
	int32_t *parts = NULL;
	size_t n = 0;
	int rc = dtk_kafka_partitions(d->producer, d->topic, d->request_timeout_ms, &parts, &n,
				      errstr, errstr_size);
	free(parts);
	return rc;
}

int dtk_dispatch_mark_results(dtk_dispatch *d, char *errstr, size_t errstr_size)
{
	free(d->partitions);
	free(d->offsets);
	d->partitions = NULL;
	d->offsets = NULL;
	d->marked = 0;
	if (dtk_kafka_partitions(d->producer, d->results_topic, d->request_timeout_ms,
				 &d->partitions, &d->npartitions, errstr, errstr_size) != 0)
		return -1;
	d->offsets = calloc(d->npartitions, sizeof(*d->offsets));
	if (!d->offsets) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < d->npartitions; i++)
		if (dtk_kafka_end_offset(d->producer, d->results_topic, d->partitions[i],
					 d->request_timeout_ms, &d->offsets[i], errstr,
					 errstr_size) != 0)
			return -1;
	d->marked = 1;
	return 0;
}

/* Produces one request; 0, or -1 with msg->error. */
static int produce_one(dtk_dispatch *d, dtk_dispatch_msg *msg, dtk_buf *value)
{
	char err[512], sig[DTK_MSG_SIGNATURE_SIZE];
	dtk_msg_headers mh;
	const dtk_request *req = msg->req;
	dtk_buf_reset(value);
	if (dtk_request_encode(req, value, err, sizeof(err)) != 0) {
		snprintf(msg->error, sizeof(msg->error), "cannot encode the request: %.400s", err);
		return -1;
	}
	if (d->signing_key && dtk_msg_sign(value->data, value->len, d->signing_key, sig) != 0) {
		snprintf(msg->error, sizeof(msg->error), "cannot sign the request (libcrypto)");
		return -1;
	}
	if (dtk_msg_request_headers(req, d->source, d->signing_key ? sig : NULL, &mh) != 0) {
		snprintf(msg->error, sizeof(msg->error), "cannot build the request headers");
		return -1;
	}
	rd_kafka_headers_t *hdrs = dtk_kafka_headers(&mh);
	if (!hdrs) {
		snprintf(msg->error, sizeof(msg->error), "out of memory");
		return -1;
	}
	for (;;) {
		rd_kafka_resp_err_t e = rd_kafka_producev(
			d->producer, RD_KAFKA_V_TOPIC(d->topic),
			RD_KAFKA_V_KEY(req->metric, strlen(req->metric)),
			RD_KAFKA_V_VALUE(value->data, value->len),
			RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
			RD_KAFKA_V_OPAQUE(msg), RD_KAFKA_V_END);
		if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
			break;
		if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
			rd_kafka_poll(d->producer, POLL_MS);
			continue;
		}
		rd_kafka_headers_destroy(hdrs);
		snprintf(msg->error, sizeof(msg->error), "not published: %s", rd_kafka_err2str(e));
		return -1;
	}
	d->pending++;
	rd_kafka_poll(d->producer, 0);
	return 0;
}

size_t dtk_dispatch_publish(dtk_dispatch *d, dtk_dispatch_msg *msgs, size_t n)
{
	dtk_buf value;
	dtk_buf_init(&value, (size_t)strtoul(DTK_DISPATCH_MAX_MESSAGE_BYTES, NULL, 10));
	for (size_t i = 0; i < n; i++) {
		/* stays unless a delivery report comes */
		snprintf(msgs[i].error, sizeof(msgs[i].error),
			 "no delivery report within %lld ms (are the brokers reachable?)",
			 (long long)(d->message_timeout_ms + FLUSH_MARGIN_MS));
		msgs[i].partition = -1;
		msgs[i].offset = -1;
		produce_one(d, &msgs[i], &value);
	}
	dtk_buf_free(&value);
	rd_kafka_flush(d->producer, (int)(d->message_timeout_ms + FLUSH_MARGIN_MS));
	if (d->pending) {
		rd_kafka_purge(d->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		int64_t end = dtk_now_ms() + PURGE_WAIT_MS;
		while (d->pending && dtk_now_ms() < end)
			rd_kafka_poll(d->producer, 100);
	}
	char fatal[512];
	if (rd_kafka_fatal_error(d->producer, fatal, sizeof(fatal)) != RD_KAFKA_RESP_ERR_NO_ERROR)
		for (size_t i = 0; i < n; i++)
			if (msgs[i].error[0])
				snprintf(msgs[i].error, sizeof(msgs[i].error),
					 "not delivered: fatal producer error: %.400s", fatal);
	size_t delivered = 0;
	for (size_t i = 0; i < n; i++)
		delivered += msgs[i].error[0] == '\0';
	return delivered;
}

typedef struct id_slot {
	const char *id;
	size_t index;
} id_slot;

static int cmp_slot(const void *a, const void *b)
{
	return strcmp(((const id_slot *)a)->id, ((const id_slot *)b)->id);
}

/* m's value when it is a result object of dispatch_id with what the
 * report prints (request_id, status, metric), owned by the caller; NULL
 * otherwise. */
static dtk_value *result_of(const rd_kafka_message_t *m, const char *dispatch_id)
{
	char err[256];
	if (!m->payload || m->len == 0 || m->len > DTK_DISPATCH_MAX_RESULT_BYTES)
		return NULL;
	dtk_value *v = dtk_json_parse(m->payload, m->len, err, sizeof(err));
	if (!v || v->type != DTK_V_MAP)
		goto skip;
	const char *did = dtk_value_cstr(dtk_value_map_get(v, "dispatch_id"));
	const char *rid = dtk_value_cstr(dtk_value_map_get(v, "request_id"));
	const dtk_value *status = dtk_value_map_get(v, "status");
	if (!did || !rid || strcmp(did, dispatch_id) != 0 || !status || status->type != DTK_V_STR ||
	    !dtk_value_cstr(dtk_value_map_get(v, "metric")))
		goto skip;
	return v;
skip:
	dtk_value_free(&v);
	return NULL;
}

/* Keeps m's result when it answers one of ours for the first time. */
static int take_result(const rd_kafka_message_t *m, const char *dispatch_id, const id_slot *ids,
		       size_t n, dtk_value **results)
{
	dtk_value *v = result_of(m, dispatch_id);
	if (!v)
		return 0;
	id_slot key = {.id = dtk_value_cstr(dtk_value_map_get(v, "request_id"))};
	const id_slot *hit = bsearch(&key, ids, n, sizeof(*ids), cmp_slot);
	if (!hit || results[hit->index]) {
		dtk_value_free(&v);
		return 0;
	}
	results[hit->index] = v;
	return 1;
}

/* A consumer of the result topic assigned at the recorded offsets; owned
 * by the caller (rd_kafka_consumer_close, rd_kafka_destroy), or NULL with
 * errstr. */
static rd_kafka_t *results_consumer(dtk_dispatch *d, const char *dispatch_id, char *errstr,
				    size_t errstr_size)
{
	char err[512], group[64];
	static const dtk_kafka_prop defaults[] = {
		{"auto.offset.reset", "earliest"},
		{"fetch.message.max.bytes", "1048576"},
	};
	rd_kafka_conf_t *conf = dtk_kafka_conf_new(&d->kafka, defaults,
						   sizeof(defaults) / sizeof(defaults[0]), NULL, 0,
						   errstr, errstr_size);
	if (!conf)
		return NULL;
	/* librdkafka's assign() needs a group id, but nothing here joins the
	 * group or commits: this id only keeps the consumer from borrowing a
	 * real group's (a DTK_KAFKA_PROP_GROUP_ID shared with the workers). */
	snprintf(group, sizeof(group), "dtk-dispatch-%s", dispatch_id);
	if (rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err)) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err)) !=
		    RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", err, sizeof(err)) !=
		    RD_KAFKA_CONF_OK) {
		rd_kafka_conf_destroy(conf);
		snprintf(errstr, errstr_size, "Kafka consumer: %s", err);
		return NULL;
	}
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!rk) {
		rd_kafka_conf_destroy(conf);
		snprintf(errstr, errstr_size, "Kafka consumer: %s", err);
		return NULL;
	}
	rd_kafka_poll_set_consumer(rk);
	rd_kafka_topic_partition_list_t *parts =
		rd_kafka_topic_partition_list_new((int)d->npartitions);
	for (size_t i = 0; i < d->npartitions; i++)
		rd_kafka_topic_partition_list_add(parts, d->results_topic, d->partitions[i])->offset =
			d->offsets[i];
	rd_kafka_resp_err_t e = rd_kafka_assign(rk, parts);
	rd_kafka_topic_partition_list_destroy(parts);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(errstr, errstr_size, "reading %s: %s", d->results_topic,
			 rd_kafka_err2str(e));
		rd_kafka_consumer_close(rk);
		rd_kafka_destroy(rk);
		return NULL;
	}
	return rk;
}

long dtk_dispatch_await(dtk_dispatch *d, const char *dispatch_id,
			const char *const *request_ids, size_t n, int64_t timeout_ms,
			dtk_value **results, dtk_dispatch_progress progress, void *ctx,
			char *errstr, size_t errstr_size)
{
	rd_kafka_t *rk = NULL;
	id_slot *ids = calloc(n ? n : 1, sizeof(*ids));
	long got = -1;
	int64_t end = dtk_now_ms() + timeout_ms, last_progress = 0;
	rd_kafka_resp_err_t last_err = RD_KAFKA_RESP_ERR_NO_ERROR;
	memset(results, 0, n * sizeof(*results));
	errstr[0] = '\0';
	if (!ids) {
		snprintf(errstr, errstr_size, "out of memory");
		goto out;
	}
	if (!d->marked) {
		snprintf(errstr, errstr_size, "the result offsets were not recorded before publishing");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		ids[i] = (id_slot){.id = request_ids[i], .index = i};
	qsort(ids, n, sizeof(*ids), cmp_slot);
	rk = results_consumer(d, dispatch_id, errstr, errstr_size);
	if (!rk)
		goto out;
	got = 0;
	for (;;) {
		int64_t now = dtk_now_ms(), left = end - now;
		if (progress && (now - last_progress >= PROGRESS_EVERY_MS || (size_t)got == n)) {
			progress((size_t)got, n, left > 0 ? left : 0, ctx);
			last_progress = now;
		}
		if ((size_t)got == n || left <= 0)
			break;
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, (int)(left < POLL_MS ? left : POLL_MS));
		if (!m)
			continue;
		if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
			if (take_result(m, dispatch_id, ids, n, results)) {
				got++;
				last_progress = 0;
			}
		} else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			last_err = m->err;
		}
		rd_kafka_message_destroy(m);
	}
	if ((size_t)got < n && last_err != RD_KAFKA_RESP_ERR_NO_ERROR)
		snprintf(errstr, errstr_size, "reading %s: %s", d->results_topic,
			 rd_kafka_err2str(last_err));
out:
	if (rk) {
		rd_kafka_consumer_close(rk);
		rd_kafka_destroy(rk);
	}
	free(ids);
	return got;
}

int dtk_dispatch_produce(dtk_dispatch *d, dtk_dispatch_msg *msg)
{
	dtk_buf value;
	snprintf(msg->error, sizeof(msg->error), "no delivery report yet");
	msg->partition = -1;
	msg->offset = -1;
	dtk_buf_init(&value, (size_t)strtoul(DTK_DISPATCH_MAX_MESSAGE_BYTES, NULL, 10));
	int rc = produce_one(d, msg, &value);
	dtk_buf_free(&value);
	return rc;
}

size_t dtk_dispatch_poll(dtk_dispatch *d, int timeout_ms)
{
	rd_kafka_poll(d->producer, timeout_ms);
	return d->pending;
}

struct dtk_dispatch_results {
	rd_kafka_t *rk;
	char *dispatch_id;
	const char *topic; /* borrowed from the dtk_dispatch */
};

int dtk_dispatch_results_open(dtk_dispatch *d, const char *dispatch_id,
			      dtk_dispatch_results **out, char *errstr, size_t errstr_size)
{
	dtk_dispatch_results *r = calloc(1, sizeof(*r));
	*out = NULL;
	if (!r || !(r->dispatch_id = strdup(dispatch_id))) {
		snprintf(errstr, errstr_size, "out of memory");
		goto fail;
	}
	if (!d->marked) {
		snprintf(errstr, errstr_size, "the result offsets were not recorded before publishing");
		goto fail;
	}
	r->topic = d->results_topic;
	if (!(r->rk = results_consumer(d, dispatch_id, errstr, errstr_size)))
		goto fail;
	*out = r;
	return 0;
fail:
	dtk_dispatch_results_free(&r);
	return -1;
}

int dtk_dispatch_results_poll(dtk_dispatch_results *r, int timeout_ms, dtk_value **result,
			      char *errstr, size_t errstr_size)
{
	*result = NULL;
	rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, timeout_ms);
	if (!m)
		return 0;
	int rc = 0;
	if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
		*result = result_of(m, r->dispatch_id);
		rc = *result ? 1 : 0;
	} else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
		snprintf(errstr, errstr_size, "reading %s: %s", r->topic, rd_kafka_err2str(m->err));
		rc = -1;
	}
	rd_kafka_message_destroy(m);
	return rc;
}

void dtk_dispatch_results_free(dtk_dispatch_results **pr)
{
	if (!pr || !*pr)
		return;
	dtk_dispatch_results *r = *pr;
	if (r->rk) {
		rd_kafka_consumer_close(r->rk);
		rd_kafka_destroy(r->rk);
	}
	free(r->dispatch_id);
	free(r);
	*pr = NULL;
}
