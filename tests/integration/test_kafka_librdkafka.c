/* Ground truth for the fleet: Debian's librdkafka (2.0.2 on Debian 12) against the
 * Apache Kafka 4.x broker of scripts/services.sh (DTK_KAFKA_BROKERS=host:port).
 * Without the variable every test skips with the reason (exit 77), or fails when
 * DTK_REQUIRE_SERVICES=1. docs/fleet-ground.md records what this found.
 *
 * For each assignment strategy, in a topic and group of its own (dtk-it-<pid>-...):
 *   1. CreateTopics: 4 partitions, replication factor 1 (the broker does not
 *      auto-create topics);
 *   2. two consumers join one group and settle on 2 partitions each;
 *   3. 1000 keyed messages from an idempotent producer (enable.idempotence=true,
 *      the statistics show a producer id assigned), every delivery report waited for;
 *   4. the two consumers read every message exactly once, each from its own
 *      partitions, and commit synchronously: committed == high watermark;
 *   5. one consumer leaves (consumer_close), the other takes all 4 partitions; a
 *      new consumer joins and the group settles on 2 + 2 again; 200 more
 *      messages are read exactly once, none of the first 1000 again (the new
 *      member resumed from the committed offsets), and committed again;
 *   6. a new member alone in the group takes all 4 partitions, reads nothing
 *      (it starts at the committed offsets) and reads back committed == end.
 * A consumer commits what it consumed before giving partitions up (in the revoke
 * of its rebalance callback), so their next owner starts after it.
 *
 * The eager strategy (range,roundrobin: librdkafka's default and the worker's) is
 * asserted in full. cooperative-sticky runs the same steps; Debian's 2.0.2 has
 * known cooperative-rebalance bugs (fixed upstream in 2.1-2.6), so each step is
 * reported (lines "# cooperative-sticky: STEP ok|FAILED ...") and the test asserts
 * what was observed to work on every run here (join, exactly-once reading, commit)
 * rather than hanging: every wait is bounded, and a close that does not finish in
 * time is abandoned (destroy without close). It then closes cooperative-sticky
 * members soon after subscribing, each in a child process, and reports whether
 * any aborted (librdkafka issue 4312, seen here once). */
#include "kafka_test.h"
#ifndef DTK_NO_RDKAFKA
#include <inttypes.h>
#include <sys/wait.h>

#define PARTITIONS 4
#define N1 1000
#define N2 200
#define NTOTAL (N1 + N2)
#define WAIT_MS 30000 /* any single wait: a rebalance, a flush, an admin call */
#define CLOSE_MS 15000

static char brokers[256];
static int available;
/* Where each message landed (its delivery report), to name a missing one. */
static int32_t msg_partition[NTOTAL];
static int64_t msg_offset[NTOTAL];

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	/* librdkafka's own warnings and errors: part of what this test records. */
	if (level <= 4)
		note("librdkafka %s %s: %s", rd_kafka_name(rk), fac, buf);
}

static rd_kafka_conf_t *base_conf(const char *client_id)
{
	char err[512];
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	if (rd_kafka_conf_set(c, "bootstrap.servers", brokers, err, sizeof(err)) != 0 ||
	    rd_kafka_conf_set(c, "client.id", client_id, err, sizeof(err)) != 0 ||
	    rd_kafka_conf_set(c, "socket.timeout.ms", "10000", err, sizeof(err)) != 0)
		fail_msg("conf: %s", err);
	rd_kafka_conf_set_log_cb(c, on_log);
	return c;
}

/* ---- topics ---------------------------------------------------------------- */

static void create_topic(const char *topic, int partitions)
{
	char err[512];
	rd_kafka_t *rk =
	    rd_kafka_new(RD_KAFKA_PRODUCER, base_conf("dtk-it-admin"), err, sizeof(err));
	assert_non_null(rk);
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, err, sizeof(err));
	assert_non_null(nt);
	rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	assert_int_equal(
	    rd_kafka_AdminOptions_set_operation_timeout(o, WAIT_MS - 5000, err, sizeof(err)),
	    RD_KAFKA_RESP_ERR_NO_ERROR);
	assert_int_equal(rd_kafka_AdminOptions_set_request_timeout(o, WAIT_MS, err, sizeof(err)),
			 RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	int64_t t0 = now_ms();
	rd_kafka_CreateTopics(rk, &nt, 1, o, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, WAIT_MS + 5000);
	if (!ev)
		fail_msg("CreateTopics %s: no result within %d ms", topic, WAIT_MS + 5000);
	if (rd_kafka_event_error(ev))
		fail_msg("CreateTopics %s: %s", topic, rd_kafka_event_error_string(ev));
	size_t n = 0;
	const rd_kafka_topic_result_t **tr =
	    rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
	assert_int_equal(n, 1);
	if (rd_kafka_topic_result_error(tr[0]))
		fail_msg("CreateTopics %s: %s", topic, rd_kafka_topic_result_error_string(tr[0]));
	rd_kafka_event_destroy(ev);

	/* Until the metadata names every partition with a leader. */
	int ready = 0;
	while (!ready && now_ms() - t0 < WAIT_MS) {
		rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
		const struct rd_kafka_metadata *md = NULL;
		if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
			if (md->topic_cnt == 1 && md->topics[0].err == 0 &&
			    md->topics[0].partition_cnt == partitions) {
				ready = 1;
				for (int i = 0; i < partitions; i++)
					if (md->topics[0].partitions[i].leader < 0)
						ready = 0;
			}
			rd_kafka_metadata_destroy(md);
		}
		rd_kafka_topic_destroy(rkt);
		if (!ready)
			usleep(100 * 1000);
	}
	assert_true(ready);
	note("created %s (%d partitions) in %" PRId64 " ms", topic, partitions, now_ms() - t0);
	rd_kafka_queue_destroy(q);
	rd_kafka_AdminOptions_destroy(o);
	rd_kafka_NewTopic_destroy(nt);
	rd_kafka_destroy(rk);
}

/* ---- producing --------------------------------------------------------------- */

struct produced {
	int delivered, failed;
	int per_partition[PARTITIONS];
	char first_error[256];
	int idemp_assigned;
	long long producer_id;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct produced *p = opaque;
	if (m->err) {
		if (!p->failed++)
			snprintf(p->first_error, sizeof(p->first_error), "%s",
				 rd_kafka_err2str(m->err));
		return;
	}
	p->delivered++;
	intptr_t i = (intptr_t)m->_private;
	if (i >= 0 && i < NTOTAL) {
		msg_partition[i] = m->partition;
		msg_offset[i] = m->offset;
	}
	if (m->partition >= 0 && m->partition < PARTITIONS)
		p->per_partition[m->partition]++;
}

/* The statistics' "eos" object: "idemp_state":"Assigned", "producer_id":N. */
static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
	struct produced *p = opaque;
	const char *s = strstr(json, "\"idemp_state\":");
	if (s) {
		s += 14;
		while (*s == ' ')
			s++;
		if (strncmp(s, "\"Assigned\"", 10) == 0)
			p->idemp_assigned = 1;
	}
	const char *id = strstr(json, "\"producer_id\":");
	if (id)
		p->producer_id = strtoll(id + 14, NULL, 10);
	return 0; /* librdkafka frees json */
}

/* Messages FROM..TO-1: key "k<i>", value "<i>". */
static void produce_range(const char *topic, int from, int to)
{
	char err[512];
	struct produced p = {.producer_id = -1};
	rd_kafka_conf_t *c = base_conf("dtk-it-producer");
	conf_set(c, "enable.idempotence", "true");
	conf_set(c, "linger.ms", "5");
	conf_set(c, "statistics.interval.ms", "100");
	conf_set(c, "message.timeout.ms", "30000");
	rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
	rd_kafka_conf_set_stats_cb(c, on_stats);
	rd_kafka_conf_set_opaque(c, &p);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
	assert_non_null(rk);
	int64_t t0 = now_ms();
	for (int i = from; i < to; i++) {
		char key[32], val[32];
		int kl = snprintf(key, sizeof(key), "k%d", i);
		int vl = snprintf(val, sizeof(val), "%d", i);
		rd_kafka_resp_err_t e;
		while ((e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, kl),
					      RD_KAFKA_V_VALUE(val, vl),
					      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
					      RD_KAFKA_V_OPAQUE((void *)(intptr_t)i),
					      RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL &&
		       now_ms() - t0 < WAIT_MS)
			rd_kafka_poll(rk, 10);
		if (e)
			fail_msg("produce %d: %s", i, rd_kafka_err2str(e));
		rd_kafka_poll(rk, 0);
	}
	rd_kafka_resp_err_t fe = rd_kafka_flush(rk, WAIT_MS);
	/* One more statistics round, for the idempotence state. */
	for (int64_t t1 = now_ms(); !p.idemp_assigned && now_ms() - t1 < 2000;)
		rd_kafka_poll(rk, 50);
	char ferr[256] = "";
	rd_kafka_resp_err_t fatal = rd_kafka_fatal_error(rk, ferr, sizeof(ferr));
	note("produced %d..%d: %d delivered, %d failed%s%s, per partition %d/%d/%d/%d, "
	     "idempotent producer id %lld (%s), %" PRId64 " ms",
	     from, to - 1, p.delivered, p.failed, p.failed ? ": " : "", p.first_error,
	     p.per_partition[0], p.per_partition[1], p.per_partition[2], p.per_partition[3],
	     p.producer_id, p.idemp_assigned ? "Assigned" : "not assigned", now_ms() - t0);
	rd_kafka_destroy(rk);
	if (fatal)
		fail_msg("producer fatal error: %s", ferr);
	assert_int_equal(fe, RD_KAFKA_RESP_ERR_NO_ERROR);
	assert_int_equal(p.failed, 0);
	assert_int_equal(p.delivered, to - from);
	assert_true(p.idemp_assigned);
	assert_true(p.producer_id >= 0);
	for (int i = 0; i < PARTITIONS; i++)
		assert_true(p.per_partition[i] > 0);
}

/* ---- consuming ---------------------------------------------------------------- */

struct consumer {
	rd_kafka_t *rk;
	char name[32];
	int got;	     /* messages this consumer read */
	int rebalances;	     /* rebalance callbacks served */
	int errors;	     /* consumer errors and failed rebalance calls */
	char error[256];     /* the first of them */
	int closing;	     /* in consumer_close: errors are noted, not counted */
	unsigned char *seen; /* the scenario's per-message counts */
	const char *topic;
};

static void consumer_error(struct consumer *c, const char *what, const char *msg)
{
	note("%s: %s%s: %s", c->name, what, c->closing ? " (while closing)" : "", msg);
	if (c->closing)
		return;
	if (!c->errors++)
		snprintf(c->error, sizeof(c->error), "%s: %s", what, msg);
}

static int assigned_count(rd_kafka_t *rk)
{
	rd_kafka_topic_partition_list_t *l = NULL;
	if (rd_kafka_assignment(rk, &l) != RD_KAFKA_RESP_ERR_NO_ERROR || !l)
		return -1;
	int n = l->cnt;
	rd_kafka_topic_partition_list_destroy(l);
	return n;
}

static void list_str(const rd_kafka_topic_partition_list_t *l, char *buf, size_t len)
{
	size_t o = 0;
	buf[0] = 0;
	for (int i = 0; l && i < l->cnt && o + 8 < len; i++)
		o += snprintf(buf + o, len - o, "%s%d", i ? "," : "", (int)l->elems[i].partition);
}

static void handle_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			     rd_kafka_topic_partition_list_t *parts, struct consumer *c)
{
	const char *proto = rd_kafka_rebalance_protocol(rk);
	int coop = proto && strcmp(proto, "COOPERATIVE") == 0;
	char ps[64];
	list_str(parts, ps, sizeof(ps));
	c->rebalances++;
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		if (coop) {
			rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, parts);
			if (e) {
				consumer_error(c, "incremental_assign", rd_kafka_error_string(e));
				rd_kafka_error_destroy(e);
			}
		} else {
			rd_kafka_resp_err_t e = rd_kafka_assign(rk, parts);
			if (e)
				consumer_error(c, "assign", rd_kafka_err2str(e));
		}
	} else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
		/* Commit what was read, so the partitions' next owner starts after it. */
		if (!rd_kafka_assignment_lost(rk)) {
			rd_kafka_resp_err_t e = rd_kafka_commit(rk, NULL, 0);
			if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
				consumer_error(c, "commit on revoke", rd_kafka_err2str(e));
		}
		if (coop) {
			rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
			if (e) {
				consumer_error(c, "incremental_unassign", rd_kafka_error_string(e));
				rd_kafka_error_destroy(e);
			}
		} else {
			rd_kafka_assign(rk, NULL);
		}
	} else {
		consumer_error(c, "rebalance", rd_kafka_err2str(err));
		if (coop) {
			rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
			if (e)
				rd_kafka_error_destroy(e);
		} else {
			rd_kafka_assign(rk, NULL);
		}
	}
	note("%s: %s %s [%s] (%s); now %d partitions", c->name,
	     err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS ? "assigned" : "revoked",
	     coop ? "incrementally" : "eagerly", ps, proto ? proto : "?", assigned_count(rk));
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			 rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	handle_rebalance(rk, err, parts, opaque);
}

static void consumer_open(struct consumer *c, const char *name, const char *group,
			  const char *strategy, const char *topic, unsigned char *seen)
{
	char err[512];
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->seen = seen;
	c->topic = topic;
	rd_kafka_conf_t *conf = base_conf(name);
	conf_set(conf, "group.id", group);
	conf_set(conf, "partition.assignment.strategy", strategy);
	conf_set(conf, "session.timeout.ms", "6000");
	conf_set(conf, "heartbeat.interval.ms", "500");
	conf_set(conf, "auto.offset.reset", "earliest");
	conf_set(conf, "enable.auto.commit", "false");
	conf_set(conf, "enable.auto.offset.store", "true");
	conf_set(conf, "topic.metadata.refresh.interval.ms", "5000");
	rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
	rd_kafka_conf_set_opaque(conf, c);
	c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!c->rk)
		fail_msg("consumer %s: %s", name, err);
	rd_kafka_poll_set_consumer(c->rk);
	rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t e = rd_kafka_subscribe(c->rk, sub);
	rd_kafka_topic_partition_list_destroy(sub);
	if (e)
		fail_msg("subscribe %s: %s", name, rd_kafka_err2str(e));
}

/* Closes within CLOSE_MS (serving its rebalance on a queue of our own), else gives
 * up on the close and destroys the handle without one. Returns 1 when closed. */
static int consumer_close(struct consumer *c)
{
	if (!c->rk)
		return 1;
	int64_t t0 = now_ms();
	c->closing = 1;
	rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
	rd_kafka_error_t *e = rd_kafka_consumer_close_queue(c->rk, q);
	if (e) {
		consumer_error(c, "close", rd_kafka_error_string(e));
		rd_kafka_error_destroy(e);
	}
	while (!rd_kafka_consumer_closed(c->rk) && now_ms() - t0 < CLOSE_MS) {
		rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
		if (!ev)
			continue;
		if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
			handle_rebalance(c->rk, rd_kafka_event_error(ev),
					 rd_kafka_event_topic_partition_list(ev), c);
		else if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_ERROR)
			consumer_error(c, "close", rd_kafka_event_error_string(ev));
		rd_kafka_event_destroy(ev);
	}
	int closed = rd_kafka_consumer_closed(c->rk);
	rd_kafka_queue_destroy(q);
	note("%s: %s in %" PRId64 " ms", c->name, closed ? "closed" : "close did NOT finish",
	     now_ms() - t0);
	if (closed)
		rd_kafka_destroy(c->rk);
	else
		rd_kafka_destroy_flags(c->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	c->rk = NULL;
	return closed;
}

/* Serves one consumer for up to MS: rebalances and messages. */
static void consumer_serve(struct consumer *c, int ms)
{
	rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, ms);
	for (int n = 0; m && n < 500; n++) {
		if (m->err) {
			if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				consumer_error(c, "consume", rd_kafka_message_errstr(m));
		} else if (m->len > 0 && m->len < 16) {
			char v[16];
			memcpy(v, m->payload, m->len);
			v[m->len] = 0;
			char *end;
			long i = strtol(v, &end, 10);
			if (*end == '\0' && end != v && i >= 0 && i < NTOTAL && c->seen[i] < 255)
				c->seen[i]++;
			c->got++;
		}
		rd_kafka_message_destroy(m);
		m = n + 1 < 500 ? rd_kafka_consumer_poll(c->rk, 0) : NULL;
	}
}

/* Serves the consumers in turn until DONE holds or MS pass; returns DONE's value. */
typedef int (*cond_fn)(struct consumer **cs, int n, void *arg);

static int serve_until(struct consumer **cs, int n, cond_fn done, void *arg, int ms)
{
	int64_t t0 = now_ms();
	while (!done(cs, n, arg)) {
		if (now_ms() - t0 >= ms)
			return 0;
		for (int i = 0; i < n; i++)
			if (cs[i]->rk)
				consumer_serve(cs[i], 50);
	}
	return 1;
}

/* Every consumer holds exactly *(int *)arg partitions. */
static int each_holds(struct consumer **cs, int n, void *arg)
{
	for (int i = 0; i < n; i++)
		if (assigned_count(cs[i]->rk) != *(int *)arg)
			return 0;
	return 1;
}

struct range {
	const unsigned char *seen;
	int from, to;
};

/* Every message FROM..TO-1 was read at least once. */
static int all_seen(struct consumer **cs, int n, void *arg)
{
	struct range *r = arg;
	for (int i = r->from; i < r->to; i++)
		if (!r->seen[i])
			return 0;
	return 1;
}

/* Counts of messages in FROM..TO-1 read other than once, and outside it read at all. */
static void tally(const unsigned char *seen, int from, int to, int *missing, int *dups,
		  int *outside)
{
	*missing = *dups = *outside = 0;
	for (int i = 0; i < NTOTAL; i++) {
		if (i >= from && i < to) {
			if (seen[i] == 0) {
				if ((*missing)++ < 5)
					note("message %d (partition %d offset %" PRId64
					     ") never read",
					     i, (int)msg_partition[i], msg_offset[i]);
			} else if (seen[i] > 1) {
				(*dups)++;
			}
		} else if (seen[i]) {
			(*outside)++;
		}
	}
}

/* A synchronous commit of what C read; MS gets its duration. */
static rd_kafka_resp_err_t commit_sync(struct consumer *c, int64_t *ms)
{
	int64_t t0 = now_ms();
	rd_kafka_resp_err_t e = rd_kafka_commit(c->rk, NULL, 0);
	*ms = now_ms() - t0;
	return e;
}

/* Committed offsets of the group (through RK, a member) == each partition's high
 * watermark. Returns the number of partitions where they differ, -1 on error. */
static int committed_mismatches(rd_kafka_t *rk, const char *topic, char *why, size_t len)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(PARTITIONS);
	for (int p = 0; p < PARTITIONS; p++)
		rd_kafka_topic_partition_list_add(l, topic, p);
	rd_kafka_resp_err_t e = rd_kafka_committed(rk, l, WAIT_MS);
	if (e) {
		snprintf(why, len, "committed(): %s", rd_kafka_err2str(e));
		rd_kafka_topic_partition_list_destroy(l);
		return -1;
	}
	int bad = 0;
	size_t o = 0;
	why[0] = 0;
	for (int p = 0; p < PARTITIONS; p++) {
		int64_t lo = -1, hi = -1;
		rd_kafka_resp_err_t we =
		    rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, WAIT_MS);
		int64_t got = l->elems[p].offset;
		if (we || l->elems[p].err || got != hi)
			bad++;
		if (o < len)
			o += snprintf(why + o, len - o, "%sp%d committed %" PRId64 "/end %" PRId64,
				      p ? ", " : "", p, got, hi);
	}
	rd_kafka_topic_partition_list_destroy(l);
	return bad;
}

/* ---- the scenario --------------------------------------------------------------- */

enum step {
	S_JOIN,	   /* two members, 2 partitions each */
	S_READ1,   /* 1000 read exactly once, both members read */
	S_COMMIT1, /* commit, committed == end */
	S_LEAVE,   /* one closes, the other takes 4 */
	S_REJOIN,  /* a new member: 2 + 2 again */
	S_READ2,   /* 200 more exactly once, nothing of the first 1000 again */
	S_COMMIT2, /* commit, committed == end */
	S_CLOSE,   /* both close within the bound */
	S_RESUME,  /* a fresh member reads committed == end */
	S_ERRORS,  /* no consumer errors on the way */
	S_COUNT
};
static const char *step_name[S_COUNT] = {
    "join (2+2 partitions)",
    "read 1000 exactly once",
    "commit 1",
    "leave (survivor takes 4)",
    "rejoin (2+2 again)",
    "read 200 more exactly once",
    "commit 2",
    "close both",
    "new member resumes at the end",
    "no consumer errors",
};

struct outcome {
	int ok[S_COUNT];
	int ran[S_COUNT];
	char why[S_COUNT][320];
	int64_t ms[S_COUNT];
};

static void record(struct outcome *o, enum step s, int ok, int64_t t0, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(o->why[s], sizeof(o->why[s]), fmt, ap);
	va_end(ap);
	o->ran[s] = 1;
	o->ok[s] = ok;
	o->ms[s] = now_ms() - t0;
}

static void run_scenario(const char *strategy, const char *tag, struct outcome *o)
{
	char topic[96], group[128];
	static unsigned char seen[NTOTAL];
	struct consumer a, b, c2, fresh;
	memset(o, 0, sizeof(*o));
	memset(seen, 0, sizeof(seen));
	snprintf(topic, sizeof(topic), "dtk-it-%d-%ld-%s", (int)getpid(), (long)time(NULL), tag);
	snprintf(group, sizeof(group), "%s-group", topic);
	note("%s: topic %s, group %s", strategy, topic, group);
	create_topic(topic, PARTITIONS);

	int two = 2, four = 4, missing, dups, outside;
	int64_t t0 = now_ms();
	consumer_open(&a, "consumer-a", group, strategy, topic, seen);
	consumer_open(&b, "consumer-b", group, strategy, topic, seen);
	struct consumer *ab[2] = {&a, &b};
	int ok = serve_until(ab, 2, each_holds, &two, WAIT_MS);
	record(o, S_JOIN, ok, t0, "a holds %d, b holds %d", assigned_count(a.rk),
	       assigned_count(b.rk));
	if (!ok)
		goto out;

	produce_range(topic, 0, N1);
	t0 = now_ms();
	struct range r1 = {seen, 0, N1};
	serve_until(ab, 2, all_seen, &r1, WAIT_MS);
	/* A little longer: duplicates would show now. */
	for (int64_t t1 = now_ms(); now_ms() - t1 < 500;)
		for (int i = 0; i < 2; i++)
			consumer_serve(ab[i], 50);
	tally(seen, 0, N1, &missing, &dups, &outside);
	record(o, S_READ1, !missing && !dups && !outside && a.got > 0 && b.got > 0, t0,
	       "a read %d, b read %d; missing %d, duplicated %d", a.got, b.got, missing, dups);

	t0 = now_ms();
	char why[256];
	int64_t ma, mb;
	rd_kafka_resp_err_t ea = commit_sync(&a, &ma);
	rd_kafka_resp_err_t eb = commit_sync(&b, &mb);
	int mism = committed_mismatches(a.rk, topic, why, sizeof(why));
	record(o, S_COMMIT1, !ea && !eb && mism == 0, t0,
	       "commit a: %s (%" PRId64 " ms), b: %s (%" PRId64 " ms); %s", rd_kafka_err2str(ea),
	       ma, rd_kafka_err2str(eb), mb, why);

	t0 = now_ms();
	int bclosed = consumer_close(&b);
	struct consumer *only_a[1] = {&a};
	ok = serve_until(only_a, 1, each_holds, &four, WAIT_MS);
	record(o, S_LEAVE, ok && bclosed, t0, "b %s; a holds %d",
	       bclosed ? "closed" : "hung in close", assigned_count(a.rk));
	if (!o->ok[S_LEAVE])
		goto out;

	t0 = now_ms();
	consumer_open(&c2, "consumer-b2", group, strategy, topic, seen);
	struct consumer *ac[2] = {&a, &c2};
	ok = serve_until(ac, 2, each_holds, &two, WAIT_MS);
	record(o, S_REJOIN, ok, t0, "a holds %d, b2 holds %d", assigned_count(a.rk),
	       assigned_count(c2.rk));
	if (!ok)
		goto out;

	int a_before = a.got;
	produce_range(topic, N1, NTOTAL);
	t0 = now_ms();
	struct range r2 = {seen, N1, NTOTAL};
	serve_until(ac, 2, all_seen, &r2, WAIT_MS);
	for (int64_t t1 = now_ms(); now_ms() - t1 < 500;)
		for (int i = 0; i < 2; i++)
			consumer_serve(ac[i], 50);
	tally(seen, 0, NTOTAL, &missing, &dups, &outside);
	record(o, S_READ2, !missing && !dups && c2.got > 0 && a.got > a_before, t0,
	       "a read %d, b2 read %d; of all %d: missing %d, duplicated %d", a.got - a_before,
	       c2.got, NTOTAL, missing, dups);

	t0 = now_ms();
	ea = commit_sync(&a, &ma);
	eb = commit_sync(&c2, &mb);
	mism = committed_mismatches(c2.rk, topic, why, sizeof(why));
	record(o, S_COMMIT2, !ea && !eb && mism == 0, t0,
	       "commit a: %s (%" PRId64 " ms), b2: %s (%" PRId64 " ms); %s", rd_kafka_err2str(ea),
	       ma, rd_kafka_err2str(eb), mb, why);

	t0 = now_ms();
	int c2closed = consumer_close(&c2);
	int aclosed = consumer_close(&a);
	record(o, S_CLOSE, c2closed && aclosed, t0, "b2 %s, a %s", c2closed ? "closed" : "hung",
	       aclosed ? "closed" : "hung");

	/* A new member alone in the group: all 4 partitions, from the committed offsets,
	 * so nothing to read. It waits for its assignment before closing: a
	 * cooperative-sticky member destroyed before its first assignment aborts the
	 * process in 2.0.2 (librdkafka issue 4312, see test_cooperative_...). */
	t0 = now_ms();
	consumer_open(&fresh, "consumer-fresh", group, strategy, topic, seen);
	struct consumer *f1[1] = {&fresh};
	ok = serve_until(f1, 1, each_holds, &four, WAIT_MS);
	for (int64_t t1 = now_ms(); now_ms() - t1 < 1000;)
		consumer_serve(&fresh, 50);
	mism = committed_mismatches(fresh.rk, topic, why, sizeof(why));
	record(o, S_RESUME, ok && mism == 0 && fresh.got == 0, t0, "holds %d, read %d; %s",
	       assigned_count(fresh.rk), fresh.got, why);
	consumer_close(&fresh);
out:
	if (b.rk)
		consumer_close(&b);
	if (a.rk)
		consumer_close(&a);
	if (o->ran[S_REJOIN] && c2.rk)
		consumer_close(&c2);
	int errors = a.errors + b.errors + (o->ran[S_REJOIN] ? c2.errors : 0);
	record(o, S_ERRORS, errors == 0, now_ms(), "%d (first: %s)", errors,
	       a.errors		  ? a.error
	       : b.errors	  ? b.error
	       : o->ran[S_REJOIN] ? c2.error
				  : "");
	for (int s = 0; s < S_COUNT; s++)
		printf("# %s: %-36s %s%s%s (%" PRId64 " ms)\n", strategy, step_name[s],
		       !o->ran[s] ? "not reached"
		       : o->ok[s] ? "ok"
				  : "FAILED",
		       o->ran[s] ? ": " : "", o->why[s], o->ms[s]);
	fflush(stdout);
}

/* A cooperative-sticky member that subscribes and closes after WAIT_BEFORE_MS, in
 * a child process of its own (2.0.2 may abort: librdkafka issue 4312, an assert
 * in rd_kafka_sticky_assignor_state_destroy when a member is destroyed before its
 * first assignment; fixed in 2.3.0). Returns 1 when the child aborted, 0 when it
 * closed cleanly, -1 when it hung (killed after 20 s). */
static int close_before_assignment(const char *topic, int wait_before_ms)
{
	char group[128];
	snprintf(group, sizeof(group), "%s-early-%d", topic, wait_before_ms);
	fflush(stdout);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static unsigned char seen[NTOTAL];
		struct consumer c;
		alarm(20);
		consumer_open(&c, "consumer-early", group, "cooperative-sticky", topic, seen);
		/* Busy elsewhere (not polling) while the group assigns it partitions. */
		usleep(wait_before_ms * 1000);
		consumer_close(&c);
		fflush(stdout);
		_exit(0);
	}
	int status = 0;
	int64_t t0 = now_ms();
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (now_ms() - t0 > 20000) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		usleep(20 * 1000);
	}
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT)
		return 1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* ---- the tests ---------------------------------------------------------------- */

static void test_eager_range_roundrobin_group(void **state)
{
	struct outcome o;
	run_scenario("range,roundrobin", "eager", &o);
	for (int s = 0; s < S_COUNT; s++) {
		if (!o.ok[s])
			fail_msg("eager: %s: %s", step_name[s],
				 o.ran[s] ? o.why[s] : "not reached");
	}
}

static void test_cooperative_sticky_group(void **state)
{
	struct outcome o;
	run_scenario("cooperative-sticky", "coop", &o);
	int all = 1;
	for (int s = 0; s < S_COUNT; s++)
		all &= o.ok[s];
	printf("# cooperative-sticky with librdkafka %s: %s\n", rd_kafka_version_str(),
	       all ? "every step worked" : "NOT every step worked (see above)");
	char topic[96];
	snprintf(topic, sizeof(topic), "dtk-it-%d-%ld-early", (int)getpid(), (long)time(NULL));
	create_topic(topic, PARTITIONS);
	int waits[] = {0, 20, 50, 100, 200, 500};
	int aborted = 0, hung = 0, n = sizeof(waits) / sizeof(waits[0]);
	for (int i = 0; i < n; i++) {
		int r = close_before_assignment(topic, waits[i]);
		aborted += r == 1;
		hung += r == -1;
		note("cooperative-sticky member closed %d ms after subscribing: %s", waits[i],
		     r == 1   ? "ABORTED (assert in rd_kafka_sticky_assignor_state_destroy)"
		     : r == 0 ? "closed cleanly"
			      : "hung or failed");
	}
	printf("# cooperative-sticky: close soon after subscribe: %d of %d aborted, %d hung\n",
	       aborted, n, hung);
	/* What was observed to work on every run here (docs/fleet-ground.md): join,
	 * exactly-once reading and commits. The later steps (leave, rejoin, close) also
	 * worked on every completed run, but 2.0.2's cooperative bugs are timing
	 * dependent: they are reported, not asserted. */
	for (int s = S_JOIN; s <= S_COMMIT1; s++) {
		if (!o.ok[s])
			fail_msg("cooperative-sticky: %s: %s", step_name[s],
				 o.ran[s] ? o.why[s] : "not reached");
	}
	for (int s = S_LEAVE; s < S_COUNT; s++) {
		if (!o.ok[s])
			printf("# WARNING cooperative-sticky: %s: %s\n", step_name[s],
			       o.ran[s] ? o.why[s] : "not reached");
	}
}

static int setup(void **state)
{
	const char *b = getenv("DTK_KAFKA_BROKERS");
	if (b && *b) {
		snprintf(brokers, sizeof(brokers), "%s", b);
		available = 1;
	}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_eager_range_roundrobin_group),
	    cmocka_unit_test(test_cooperative_sticky_group),
	};
	t_start = now_ms();
	setup(NULL);
	if (!available) {
		printf("SKIP kafka: DTK_KAFKA_BROKERS not set (scripts/services.sh start kafka; "
		       "eval \"$(scripts/services.sh env)\")\n");
		return services_required() ? 1 : 77;
	}
	time_limit(500, "test_kafka_librdkafka: overall time limit passed; a wait was not "
			"bounded\n");
	printf("# librdkafka %s against %s (Kafka %s)\n", rd_kafka_version_str(), brokers,
	       getenv("DTK_KAFKA_VERSION") ? getenv("DTK_KAFKA_VERSION") : "?");
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	return failed ? 1 : 0;
}
#endif /* DTK_NO_RDKAFKA */
