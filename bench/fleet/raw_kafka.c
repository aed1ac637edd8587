/* raw_kafka: the baseline of bench/fleet.sh, plain librdkafka with nothing of
 * DetectK-C in it.
 *
 *   raw_kafka hop BROKERS TOPIC N SIZE PARTITIONS
 *       creates TOPIC (PARTITIONS, RF 1), produces N messages of SIZE bytes
 *       with distinct keys (as dtk-dispatch does: idempotent, acks=all,
 *       linger.ms 5), waits for every delivery report, then reads them all
 *       back in a consumer group of its own (subscribe, as dtk-worker does);
 *       prints {"n", "size", "produce_s", "consume_s"} (consume_s counts from
 *       the subscribe, so the group join is in it, as it is for a worker)
 *   raw_kafka sizes BROKERS TOPIC MAX
 *       reads up to MAX messages of TOPIC from the beginning and prints
 *       {"n", "value_bytes", "key_bytes", "header_bytes"} (means)
 * Exit 1 on a Kafka error, 2 on a usage error. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static rd_kafka_t *client(rd_kafka_type_t type, const char *brokers, const char *group)
{
	char err[512];
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	int bad = rd_kafka_conf_set(c, "bootstrap.servers", brokers, err, sizeof(err));
	if (type == RD_KAFKA_PRODUCER)
		bad = bad || rd_kafka_conf_set(c, "enable.idempotence", "true", err, sizeof(err)) ||
		      rd_kafka_conf_set(c, "linger.ms", "5", err, sizeof(err));
	else
		bad = bad || rd_kafka_conf_set(c, "group.id", group, err, sizeof(err)) ||
		      rd_kafka_conf_set(c, "auto.offset.reset", "earliest", err, sizeof(err)) ||
		      rd_kafka_conf_set(c, "enable.auto.commit", "true", err, sizeof(err));
	if (bad) {
		fprintf(stderr, "raw_kafka: %s\n", err);
		rd_kafka_conf_destroy(c);
		return NULL;
	}
	rd_kafka_t *rk = rd_kafka_new(type, c, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "raw_kafka: %s\n", err);
		rd_kafka_conf_destroy(c);
	}
	return rk;
}

static long failed;
static void dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *o)
{
	(void)rk, (void)o;
	if (m->err)
		failed++;
}

static int create_topic(rd_kafka_t *rk, const char *topic, int partitions)
{
	char err[512];
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, err, sizeof(err));
	if (!nt) {
		fprintf(stderr, "raw_kafka: %s\n", err);
		return -1;
	}
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
	int rc = 0;
	if (!ev || rd_kafka_event_error(ev)) {
		fprintf(stderr, "raw_kafka: create %s: %s\n", topic,
			ev ? rd_kafka_event_error_string(ev) : "timed out");
		rc = -1;
	} else {
		size_t n;
		const rd_kafka_topic_result_t **r =
			rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
		for (size_t i = 0; i < n; i++)
			if (rd_kafka_topic_result_error(r[i]) &&
			    rd_kafka_topic_result_error(r[i]) != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
				fprintf(stderr, "raw_kafka: create %s: %s\n", topic,
					rd_kafka_topic_result_error_string(r[i]));
				rc = -1;
			}
	}
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(q);
	rd_kafka_NewTopic_destroy(nt);
	return rc;
}

static int hop(const char *brokers, const char *topic, long n, long size, int partitions)
{
	char err[512];
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	if (rd_kafka_conf_set(c, "bootstrap.servers", brokers, err, sizeof(err)) ||
	    rd_kafka_conf_set(c, "enable.idempotence", "true", err, sizeof(err)) ||
	    rd_kafka_conf_set(c, "linger.ms", "5", err, sizeof(err))) {
		fprintf(stderr, "raw_kafka: %s\n", err);
		return 1;
	}
	rd_kafka_conf_set_dr_msg_cb(c, dr);
	rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
	if (!p || create_topic(p, topic, partitions))
		return 1;
	/* warm the connection and the idempotent producer id, off the clock */
	const struct rd_kafka_metadata *md;
	if (rd_kafka_metadata(p, 1, NULL, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR)
		rd_kafka_metadata_destroy(md);
	char *val = malloc((size_t)size + 1);
	memset(val, 'x', (size_t)size);
	char key[32];
	double t0 = now_s();
	for (long i = 0; i < n; i++) {
		int kl = snprintf(key, sizeof(key), "m%06ld", i);
		rd_kafka_resp_err_t e;
		while ((e = rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, (size_t)kl),
					      RD_KAFKA_V_VALUE(val, (size_t)size),
					      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
					      RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(p, 10);
		if (e) {
			fprintf(stderr, "raw_kafka: produce: %s\n", rd_kafka_err2str(e));
			return 1;
		}
		rd_kafka_poll(p, 0);
	}
	rd_kafka_flush(p, 60000);
	double t1 = now_s();
	rd_kafka_destroy(p);
	free(val);
	if (failed) {
		fprintf(stderr, "raw_kafka: %ld deliveries failed\n", failed);
		return 1;
	}

	char group[300];
	snprintf(group, sizeof(group), "%s.g", topic);
	rd_kafka_t *k = client(RD_KAFKA_CONSUMER, brokers, group);
	if (!k)
		return 1;
	rd_kafka_poll_set_consumer(k);
	rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
	double t2 = now_s();
	rd_kafka_subscribe(k, sub);
	rd_kafka_topic_partition_list_destroy(sub);
	long got = 0;
	while (got < n && now_s() - t2 < 120) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(k, 100);
		if (!m)
			continue;
		if (!m->err)
			got++;
		rd_kafka_message_destroy(m);
	}
	double t3 = now_s();
	rd_kafka_consumer_close(k);
	rd_kafka_destroy(k);
	if (got < n) {
		fprintf(stderr, "raw_kafka: read %ld of %ld\n", got, n);
		return 1;
	}
	printf("{\"n\": %ld, \"size\": %ld, \"produce_s\": %.6f, \"consume_s\": %.6f}\n", n, size,
	       t1 - t0, t3 - t2);
	return 0;
}

static int sizes(const char *brokers, const char *topic, long max)
{
	rd_kafka_t *k = client(RD_KAFKA_CONSUMER, brokers, "raw-kafka-sizes");
	if (!k)
		return 1;
	rd_kafka_topic_t *t = rd_kafka_topic_new(k, topic, NULL);
	const struct rd_kafka_metadata *md;
	if (rd_kafka_metadata(k, 0, t, &md, 10000) || md->topic_cnt != 1 || md->topics[0].err) {
		fprintf(stderr, "raw_kafka: no topic %s\n", topic);
		return 1;
	}
	int np = md->topics[0].partition_cnt;
	rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(t);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(np);
	for (int i = 0; i < np; i++)
		rd_kafka_topic_partition_list_add(l, topic, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_assign(k, l);
	rd_kafka_topic_partition_list_destroy(l);
	long n = 0;
	double v = 0, kb = 0, hb = 0, t0 = now_s();
	while (n < max && now_s() - t0 < 10) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(k, 200);
		if (!m)
			continue;
		if (!m->err) {
			n++;
			v += (double)m->len;
			kb += (double)m->key_len;
			rd_kafka_headers_t *h;
			const char *name;
			const void *val;
			size_t sz;
			if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR)
				for (size_t i = 0;
				     !rd_kafka_header_get_all(h, i, &name, &val, &sz); i++)
					hb += (double)(strlen(name) + sz);
		}
		rd_kafka_message_destroy(m);
	}
	rd_kafka_destroy(k);
	if (!n) {
		fprintf(stderr, "raw_kafka: nothing read from %s\n", topic);
		return 1;
	}
	printf("{\"n\": %ld, \"value_bytes\": %.1f, \"key_bytes\": %.1f, \"header_bytes\": %.1f}\n",
	       n, v / n, kb / n, hb / n);
	return 0;
}

/* A non-negative whole-number argument; exits 2 on anything else. */
static long arg_num(const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0) {
		fprintf(stderr, "raw_kafka: '%s' is not a number\n", s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	if (argc == 7 && !strcmp(argv[1], "hop"))
		return hop(argv[2], argv[3], arg_num(argv[4]), arg_num(argv[5]), (int)arg_num(argv[6]));
	if (argc == 5 && !strcmp(argv[1], "sizes"))
		return sizes(argv[2], argv[3], arg_num(argv[4]));
	fprintf(stderr, "usage: see the comment at the top of bench/fleet/raw_kafka.c\n");
	return 2;
}
