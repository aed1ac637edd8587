/* A tiny Kafka client for the Python integration tests (there is no Python
 * Kafka client in the test virtualenv), on librdkafka through
 * libdtk-fleet's configuration helper.
 *
 *   kafka_tool consume BROKERS TOPIC N TIMEOUT_S
 *       reads every partition of TOPIC from the beginning (assign(), no
 *       group membership, nothing committed) until N messages or TIMEOUT_S;
 *       prints one JSON object per message: {"partition", "offset", "key",
 *       "headers": [[name, value], ...], "value"}. Exit 0 when N were read,
 *       1 otherwise (what was read is still printed).
 *   kafka_tool produce BROKERS TOPIC
 *       produces one message per stdin line "KEY<TAB>VALUE" and waits for
 *       every delivery report. Exit 0 when all were delivered.
 *   kafka_tool topic-config BROKERS TOPIC NAME
 *       prints the partition count and the value of config NAME of TOPIC
 *       ("4 16777216"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "kafka.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/json.h"

#define WAIT_MS 10000

static int usage(void)
{
	fprintf(stderr, "usage: kafka_tool consume BROKERS TOPIC N TIMEOUT_S\n"
			"       kafka_tool produce BROKERS TOPIC < KEY<TAB>VALUE lines\n"
			"       kafka_tool topic-config BROKERS TOPIC NAME\n");
	return 2;
}

static long parse_long(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	return *s && !*end ? v : -1;
}

static rd_kafka_t *client(rd_kafka_type_t type, const char *brokers, const char *group)
{
	char err[512];
	dtk_kafka_settings s = {.brokers = brokers, .client_id = "dtk-kafka-tool"};
	dtk_kafka_prop consumer[] = {{"group.id", group},
				     {"enable.auto.commit", "false"},
				     {"auto.offset.reset", "earliest"}};
	dtk_kafka_prop producer[] = {{"enable.idempotence", "true"}};
	rd_kafka_conf_t *conf =
		type == RD_KAFKA_CONSUMER ? dtk_kafka_conf_new(&s, consumer, 3, NULL, 0, err, sizeof(err))
					  : dtk_kafka_conf_new(&s, producer, 1, NULL, 0, err, sizeof(err));
	if (!conf) {
		fprintf(stderr, "kafka_tool: %s\n", err);
		return NULL;
	}
	rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));
	if (!rk) {
		rd_kafka_conf_destroy(conf);
		fprintf(stderr, "kafka_tool: %s\n", err);
	}
	return rk;
}

static void print_message(const rd_kafka_message_t *m)
{
	dtk_buf b;
	rd_kafka_headers_t *hdrs = NULL;
	dtk_buf_init(&b, 0);
	dtk_buf_printf(&b, "{\"partition\":%d,\"offset\":%lld,\"key\":", (int)m->partition,
		       (long long)m->offset);
	if (m->key)
		dtk_json_emit_str(&b, m->key, m->key_len, DTK_JSON_RAW_UTF8);
	else
		dtk_buf_adds(&b, "null");
	dtk_buf_adds(&b, ",\"headers\":[");
	if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		const char *name;
		const void *val;
		size_t size;
		for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &size) ==
				   RD_KAFKA_RESP_ERR_NO_ERROR;
		     i++) {
			dtk_buf_adds(&b, i ? ",[" : "[");
			dtk_json_emit_str(&b, name, strlen(name), DTK_JSON_RAW_UTF8);
			dtk_buf_addc(&b, ',');
			dtk_json_emit_str(&b, val ? val : "", val ? size : 0, DTK_JSON_RAW_UTF8);
			dtk_buf_addc(&b, ']');
		}
	}
	dtk_buf_adds(&b, "],\"value\":");
	dtk_json_emit_str(&b, m->payload ? m->payload : "", m->payload ? m->len : 0,
			  DTK_JSON_RAW_UTF8);
	dtk_buf_adds(&b, "}\n");
	fwrite(dtk_buf_str(&b), 1, b.len, stdout);
	fflush(stdout);
	dtk_buf_free(&b);
}

static int consume(const char *brokers, const char *topic, long want, long timeout_s)
{
	char err[512];
	int32_t *parts = NULL;
	size_t nparts = 0;
	long got = 0;
	int64_t end = dtk_now_ms() + timeout_s * 1000;
	rd_kafka_t *rk = client(RD_KAFKA_CONSUMER, brokers, "dtk-kafka-tool");
	if (!rk)
		return 2;
	if (dtk_kafka_partitions(rk, topic, WAIT_MS, &parts, &nparts, err, sizeof(err)) != 0) {
		fprintf(stderr, "kafka_tool: %s\n", err);
		rd_kafka_destroy(rk);
		return want == 0 ? 0 : 1;
	}
	rd_kafka_poll_set_consumer(rk);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)nparts);
	for (size_t i = 0; i < nparts; i++)
		rd_kafka_topic_partition_list_add(l, topic, parts[i])->offset =
			RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_assign(rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	free(parts);
	while (got < want) {
		int64_t left = end - dtk_now_ms();
		if (left <= 0)
			break;
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, (int)(left < 200 ? left : 200));
		if (!m)
			continue;
		if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
			print_message(m);
			got++;
		} else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			fprintf(stderr, "kafka_tool: %s\n", rd_kafka_message_errstr(m));
		}
		rd_kafka_message_destroy(m);
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return got == want ? 0 : 1;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	long *failed = rd_kafka_opaque(rk);
	if (m->err) {
		fprintf(stderr, "kafka_tool: not delivered: %s\n", rd_kafka_err2str(m->err));
		(*failed)++;
	}
}

static int produce(const char *brokers, const char *topic)
{
	char err[512];
	long failed = 0, sent = 0;
	dtk_kafka_settings s = {.brokers = brokers, .client_id = "dtk-kafka-tool"};
	dtk_kafka_prop props[] = {{"enable.idempotence", "true"}, {"message.timeout.ms", "20000"}};
	rd_kafka_conf_t *conf = dtk_kafka_conf_new(&s, props, 2, NULL, 0, err, sizeof(err));
	if (!conf) {
		fprintf(stderr, "kafka_tool: %s\n", err);
		return 2;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_opaque(conf, &failed);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk) {
		rd_kafka_conf_destroy(conf);
		fprintf(stderr, "kafka_tool: %s\n", err);
		return 2;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, stdin)) > 0) {
		if (line[len - 1] == '\n')
			line[--len] = '\0';
		char *tab = strchr(line, '\t');
		if (!tab)
			continue;
		size_t klen = (size_t)(tab - line);
		rd_kafka_resp_err_t e = rd_kafka_producev(
			rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(line, klen),
			RD_KAFKA_V_VALUE(tab + 1, (size_t)len - klen - 1),
			RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
		if (e) {
			fprintf(stderr, "kafka_tool: %s\n", rd_kafka_err2str(e));
			failed++;
		}
		sent++;
		rd_kafka_poll(rk, 0);
	}
	free(line);
	if (rd_kafka_flush(rk, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, "kafka_tool: flush timed out\n");
		failed++;
	}
	rd_kafka_destroy(rk);
	fprintf(stderr, "kafka_tool: produced %ld, failed %ld\n", sent, failed);
	return failed ? 1 : 0;
}

static int topic_config(const char *brokers, const char *topic, const char *name)
{
	char err[512];
	int32_t *parts = NULL;
	size_t nparts = 0;
	int rc = 1;
	rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, brokers, NULL);
	if (!rk)
		return 2;
	if (dtk_kafka_partitions(rk, topic, WAIT_MS, &parts, &nparts, err, sizeof(err)) != 0) {
		fprintf(stderr, "kafka_tool: %s\n", err);
		rd_kafka_destroy(rk);
		return 1;
	}
	free(parts);
	rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_DescribeConfigs(rk, &res, 1, NULL, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, WAIT_MS);
	const rd_kafka_DescribeConfigs_result_t *r = ev ? rd_kafka_event_DescribeConfigs_result(ev)
							: NULL;
	size_t nres = 0, nent = 0;
	const rd_kafka_ConfigResource_t **rs = r ? rd_kafka_DescribeConfigs_result_resources(r, &nres)
						 : NULL;
	const rd_kafka_ConfigEntry_t **ents = nres ? rd_kafka_ConfigResource_configs(rs[0], &nent)
						   : NULL;
	for (size_t i = 0; i < nent; i++) {
		if (strcmp(rd_kafka_ConfigEntry_name(ents[i]), name) != 0)
			continue;
		const char *v = rd_kafka_ConfigEntry_value(ents[i]);
		printf("%zu %s\n", nparts, v ? v : "null");
		rc = 0;
	}
	if (rc)
		fprintf(stderr, "kafka_tool: %s: no config %s (%s)\n", topic, name,
			ev ? rd_kafka_event_error_string(ev) : "no answer");
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_ConfigResource_destroy(res);
	rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc == 6 && strcmp(argv[1], "consume") == 0) {
		long n = parse_long(argv[4]), t = parse_long(argv[5]);
		if (n < 0 || t < 0)
			return usage();
		return consume(argv[2], argv[3], n, t);
	}
	if (argc == 4 && strcmp(argv[1], "produce") == 0)
		return produce(argv[2], argv[3]);
	if (argc == 5 && strcmp(argv[1], "topic-config") == 0)
		return topic_config(argv[2], argv[3], argv[4]);
	return usage();
}
