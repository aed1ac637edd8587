/* worker_feed: raw Kafka access for tests/integration/test_worker.py.
 *
 *   worker_feed create BROKERS PARTITIONS TOPIC...
 *       creates the topics (max.message.bytes 16 MiB); existing ones are fine
 *   worker_feed produce BROKERS TOPIC < LINES
 *       one message per line of JSON {"key": K|null, "value": TEXT,
 *       "headers": {NAME: VALUE}}; waits for every delivery report and prints
 *       {"partition", "offset"} per message; exit 1 when one failed
 *   worker_feed read BROKERS TOPIC [MIN [TIMEOUT_S]]
 *       reads the topic from the beginning until at least MIN messages (0)
 *       were read and the end was reached, or TIMEOUT_S (30) passed; prints
 *       {"partition", "offset", "key", "value", "headers"} per message
 *   worker_feed committed BROKERS GROUP TOPIC
 *       prints {"PARTITION": committed offset (-1001 = none)}
 * Exit 2 on a usage error. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "util/buf.h"
#include "util/clock.h"
#include "util/json.h"
#include "util/value.h"

#define INPUT_MAX ((size_t)256 << 20)
#define WAIT_MS 30000

static int usage(const char *why)
{
	fprintf(stderr, "worker_feed: %s (see the comment at the top of worker_feed.c)\n", why);
	return 2;
}

static long num(const char *s, long def)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	return errno || end == s || *end ? def : v;
}

static rd_kafka_t *client(rd_kafka_type_t type, const char *brokers, const char *group)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err)) ||
	    (type == RD_KAFKA_PRODUCER &&
	     (rd_kafka_conf_set(conf, "message.max.bytes", "20000000", err, sizeof(err)) ||
	      rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof(err)))) ||
	    (type == RD_KAFKA_CONSUMER &&
	     (rd_kafka_conf_set(conf, "group.id", group ? group : "worker-feed", err,
				sizeof(err)) ||
	      rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err))))) {
		fprintf(stderr, "worker_feed: %s\n", err);
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "worker_feed: %s\n", err);
		rd_kafka_conf_destroy(conf);
	}
	return rk;
}

static int create(const char *brokers, int partitions, char **topics, int n)
{
	rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, brokers, NULL);
	if (!rk)
		return 1;
	char err[512];
	int rc = 0;
	rd_kafka_NewTopic_t **nt = calloc((size_t)n, sizeof(*nt));
	for (int i = 0; i < n; i++) {
		nt[i] = rd_kafka_NewTopic_new(topics[i], partitions, 1, err, sizeof(err));
		rd_kafka_NewTopic_set_config(nt[i], "max.message.bytes", "16777216");
	}
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	rd_kafka_AdminOptions_set_operation_timeout(opt, WAIT_MS, err, sizeof(err));
	rd_kafka_CreateTopics(rk, nt, (size_t)n, opt, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, WAIT_MS + 5000);
	if (!ev || rd_kafka_event_error(ev)) {
		fprintf(stderr, "worker_feed: create topics: %s\n",
			ev ? rd_kafka_event_error_string(ev) : "timed out");
		rc = 1;
	} else {
		size_t cnt;
		const rd_kafka_topic_result_t **res =
			rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
		for (size_t i = 0; i < cnt; i++) {
			rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
			if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
				fprintf(stderr, "worker_feed: %s: %s\n",
					rd_kafka_topic_result_name(res[i]),
					rd_kafka_topic_result_error_string(res[i]));
				rc = 1;
			}
		}
	}
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_AdminOptions_destroy(opt);
	rd_kafka_queue_destroy(q);
	rd_kafka_NewTopic_destroy_array(nt, (size_t)n);
	free(nt);
	rd_kafka_destroy(rk);
	return rc;
}

typedef struct delivered {
	int32_t partition;
	int64_t offset;
	int err;
	int done;
} delivered;

static void dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	delivered *d = m->_private;
	d->partition = m->partition;
	d->offset = m->offset;
	d->err = m->err;
	d->done = 1;
	if (m->err)
		fprintf(stderr, "worker_feed: delivery: %s\n", rd_kafka_err2str(m->err));
}

static int produce(const char *brokers, const char *topic)
{
	dtk_buf in;
	dtk_buf_init(&in, INPUT_MAX);
	char chunk[65536];
	size_t got;
	while ((got = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		if (dtk_buf_add(&in, chunk, got) != 0) {
			fprintf(stderr, "worker_feed: input too large\n");
			dtk_buf_free(&in);
			return 1;
		}
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "message.max.bytes", "20000000", err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof(err))) {
		fprintf(stderr, "worker_feed: %s\n", err);
		rd_kafka_conf_destroy(conf);
		dtk_buf_free(&in);
		return 1;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, dr);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "worker_feed: %s\n", err);
		rd_kafka_conf_destroy(conf);
		dtk_buf_free(&in);
		return 1;
	}
	size_t nlines = 0;
	for (size_t i = 0; i < in.len; i++)
		if (in.data[i] == '\n')
			nlines++;
	delivered *d = calloc(nlines + 1, sizeof(*d));
	int rc = 0;
	size_t n = 0;
	char *line = in.data;
	while (line && line < in.data + in.len) {
		char *nl = memchr(line, '\n', (size_t)(in.data + in.len - line));
		size_t len = nl ? (size_t)(nl - line) : (size_t)(in.data + in.len - line);
		if (len == 0) {
			line = nl ? nl + 1 : NULL;
			continue;
		}
		dtk_value *doc = dtk_json_parse(line, len, err, sizeof(err));
		if (!doc || doc->type != DTK_V_MAP) {
			fprintf(stderr, "worker_feed: line %zu: %s\n", n + 1,
				doc ? "not an object" : err);
			dtk_value_free(&doc);
			rc = 1;
			break;
		}
		const dtk_value *k = dtk_value_map_get(doc, "key");
		const dtk_value *v = dtk_value_map_get(doc, "value");
		const dtk_value *hs = dtk_value_map_get(doc, "headers");
		rd_kafka_headers_t *h = rd_kafka_headers_new(8);
		for (size_t j = 0; hs && hs->type == DTK_V_MAP && j < hs->u.map.n; j++) {
			const char *hv = dtk_value_cstr(hs->u.map.items[j].val);
			rd_kafka_header_add(h, dtk_value_cstr(hs->u.map.items[j].key), -1, hv,
					    hv ? -1 : 0);
		}
		const char *ks = k && k->type == DTK_V_STR ? k->u.str.s : NULL;
		rd_kafka_resp_err_t e;
		do {
			e = rd_kafka_producev(
				rk, RD_KAFKA_V_TOPIC(topic),
				RD_KAFKA_V_KEY(ks, ks ? k->u.str.len : 0),
				RD_KAFKA_V_VALUE(v && v->type == DTK_V_STR ? v->u.str.s : NULL,
						 v && v->type == DTK_V_STR ? v->u.str.len : 0),
				RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
				RD_KAFKA_V_OPAQUE(&d[n]), RD_KAFKA_V_END);
			if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
				rd_kafka_poll(rk, 100);
		} while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL);
		dtk_value_free(&doc);
		if (e) {
			rd_kafka_headers_destroy(h);
			fprintf(stderr, "worker_feed: produce: %s\n", rd_kafka_err2str(e));
			rc = 1;
			break;
		}
		n++;
		rd_kafka_poll(rk, 0);
		line = nl ? nl + 1 : NULL;
	}
	rd_kafka_flush(rk, WAIT_MS);
	for (size_t i = 0; i < n; i++) {
		if (!d[i].done || d[i].err)
			rc = 1;
		printf("{\"partition\": %d, \"offset\": %lld}\n", (int)d[i].partition,
		       (long long)d[i].offset);
	}
	rd_kafka_destroy(rk);
	free(d);
	dtk_buf_free(&in);
	return rc;
}

static int partition_count(rd_kafka_t *rk, const char *topic)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	int n = -1;
	if (rd_kafka_metadata(rk, 0, rkt, &md, WAIT_MS) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		if (md->topic_cnt == 1 && !md->topics[0].err)
			n = md->topics[0].partition_cnt;
		rd_kafka_metadata_destroy(md);
	}
	rd_kafka_topic_destroy(rkt);
	return n;
}

static void print_message(const rd_kafka_message_t *m)
{
	dtk_buf b;
	dtk_buf_init(&b, INPUT_MAX);
	dtk_buf_printf(&b, "{\"partition\": %d, \"offset\": %lld, \"key\": ", (int)m->partition,
		       (long long)m->offset);
	if (m->key)
		dtk_json_emit_str(&b, m->key, m->key_len, 0);
	else
		dtk_buf_adds(&b, "null");
	dtk_buf_adds(&b, ", \"value\": ");
	dtk_json_emit_str(&b, m->payload ? m->payload : "", m->len, 0);
	dtk_buf_adds(&b, ", \"headers\": {");
	rd_kafka_headers_t *h = NULL;
	if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		const char *name;
		const void *val;
		size_t size;
		for (size_t i = 0; rd_kafka_header_get_all(h, i, &name, &val, &size) ==
				   RD_KAFKA_RESP_ERR_NO_ERROR;
		     i++) {
			if (i)
				dtk_buf_adds(&b, ", ");
			dtk_json_emit_str(&b, name, strlen(name), 0);
			dtk_buf_adds(&b, ": ");
			dtk_json_emit_str(&b, val ? val : "", size, 0);
		}
	}
	dtk_buf_adds(&b, "}}\n");
	fwrite(b.data, 1, b.len, stdout);
	dtk_buf_free(&b);
}

static int read_topic(const char *brokers, const char *topic, long min, long timeout_s)
{
	rd_kafka_t *rk = client(RD_KAFKA_CONSUMER, brokers, NULL);
	if (!rk)
		return 1;
	int np = partition_count(rk, topic);
	if (np < 0) {
		fprintf(stderr, "worker_feed: no topic %s\n", topic);
		rd_kafka_destroy(rk);
		return 1;
	}
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(np);
	for (int p = 0; p < np; p++)
		rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_assign(rk, l);
	int64_t *next = calloc((size_t)np, sizeof(*next));
	int64_t deadline = dtk_now_ms() + timeout_s * 1000;
	long count = 0;
	int rc = 0;
	for (;;) {
		/* the end as of now, per partition */
		int64_t *high = calloc((size_t)np, sizeof(*high));
		for (int p = 0; p < np; p++) {
			int64_t lo;
			if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &high[p], 5000))
				high[p] = 0;
		}
		for (;;) {
			int caught_up = 1;
			for (int p = 0; p < np; p++)
				if (next[p] < high[p])
					caught_up = 0;
			if (caught_up || dtk_now_ms() > deadline)
				break;
			rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
			if (!m)
				continue;
			if (!m->err) {
				print_message(m);
				next[m->partition] = m->offset + 1;
				count++;
			}
			rd_kafka_message_destroy(m);
		}
		free(high);
		if (count >= min)
			break;
		if (dtk_now_ms() > deadline) {
			fprintf(stderr, "worker_feed: %ld of %ld messages after %ld s\n", count, min,
				timeout_s);
			rc = 1;
			break;
		}
		rd_kafka_poll(rk, 200);
	}
	fflush(stdout);
	free(next);
	rd_kafka_topic_partition_list_destroy(l);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return rc;
}

static int committed(const char *brokers, const char *group, const char *topic)
{
	rd_kafka_t *rk = client(RD_KAFKA_CONSUMER, brokers, group);
	if (!rk)
		return 1;
	int np = partition_count(rk, topic);
	if (np < 0) {
		rd_kafka_destroy(rk);
		return 1;
	}
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(np);
	for (int p = 0; p < np; p++)
		rd_kafka_topic_partition_list_add(l, topic, p);
	int rc = 0;
	rd_kafka_resp_err_t e = rd_kafka_committed(rk, l, WAIT_MS);
	if (e) {
		fprintf(stderr, "worker_feed: committed: %s\n", rd_kafka_err2str(e));
		rc = 1;
	} else {
		printf("{");
		for (int i = 0; i < l->cnt; i++)
			printf("%s\"%d\": %lld", i ? ", " : "", (int)l->elems[i].partition,
			       (long long)l->elems[i].offset);
		printf("}\n");
	}
	rd_kafka_topic_partition_list_destroy(l);
	rd_kafka_destroy(rk);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return usage("a command and BROKERS are required");
	const char *cmd = argv[1], *brokers = argv[2];
	if (strcmp(cmd, "create") == 0 && argc >= 5) {
		long n = num(argv[3], -1);
		if (n < 1)
			return usage("PARTITIONS must be a positive number");
		return create(brokers, (int)n, argv + 4, argc - 4);
	}
	if (strcmp(cmd, "produce") == 0 && argc == 4)
		return produce(brokers, argv[3]);
	if (strcmp(cmd, "read") == 0 && argc >= 4 && argc <= 6)
		return read_topic(brokers, argv[3], argc > 4 ? num(argv[4], 0) : 0,
				  argc > 5 ? num(argv[5], 30) : 30);
	if (strcmp(cmd, "committed") == 0 && argc == 5)
		return committed(brokers, argv[3], argv[4]);
	return usage("unknown command or wrong arguments");
}
