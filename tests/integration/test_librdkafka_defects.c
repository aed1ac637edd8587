/* Two defects of Debian 12's librdkafka 2.0.2 that dtk-worker works around
 * (docs/librdkafka.md), tried on purpose against the Kafka broker of
 * scripts/services.sh (DTK_KAFKA_BROKERS; the restart also needs DTK_SERVICES_DIR
 * and DTK_SOURCE_DIR). Without them every test skips (exit 77), or fails when
 * DTK_REQUIRE_SERVICES=1. Topics are made with worker/tools/worker_feed
 * (DTK_BINARY_DIR).
 *
 * 1. Resuming a partition that was never paused (librdkafka issues 2593, 4637;
 *    fixed by pull request 4636 in 2.4.0). The resume bumps the partition's
 *    fetch version even though there is nothing to resume, and the fetcher then
 *    starts over from the partition's stale "next fetch start" (where it was
 *    assigned), so messages already consumed come again. One consumer reads two
 *    partitions, pauses one of them (as the worker pauses what it was assigned
 *    when its pool is full) and then resumes either the whole assignment (the
 *    naive way) or exactly what it paused (the worker's way). Asserted: the naive
 *    way re-delivers the never-paused partition from before its position; the
 *    worker's way reads every message exactly once.
 *
 * 2. The idempotent producer around a broker restart (fatal "sequence
 *    desynchronization" / "rewound sequence" errors after a possibly persisted
 *    request: pull request 4438, fixed in 2.3.0; earlier fixes in 2.1-2.2). A
 *    producer with the worker's settings produces at a steady rate while the
 *    broker is stopped (scripts/services.sh stop kafka: SIGTERM) and started again
 *    on the same port, twice. The worker's handling is applied: a failed delivery
 *    is produced again (up to 3 times); a fatal error ends the producer, and a new
 *    one produces everything not delivered (the worker exits 1 and its
 *    orchestrator restarts it). Asserted: every message is in the topic and only
 *    re-produced ones twice. What librdkafka reported (fatal error, failed
 *    deliveries, error events) is printed as "# observed:" lines; whether the
 *    defect was provoked is reported, not asserted (it was not, in the runs
 *    recorded in docs/librdkafka.md). A third test injects the fatal error the
 *    defect raises (rd_kafka_test_fatal_error, OUT_OF_ORDER_SEQUENCE_NUMBER)
 *    while messages are in flight: a producer that carries on loses every later
 *    message (produce() refuses them), a new producer delivers them all.
 *
 * tests/integration.cmake links librdkafka and registers this RUN_SERIAL with its
 * own label (librdkafka_defects): it stops the shared broker. */
#include "kafka_test.h"
#ifndef DTK_NO_RDKAFKA
#include <errno.h>
#include <inttypes.h>
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

#define WAIT_MS 60000	   /* any single wait: a join, a flush, a command */
#define RESUME_N 500	   /* messages per partition in the resume scenarios */
#define RATE 2000	   /* messages per second in the producer scenarios */
#define MAX_IDS 200000	   /* more than RATE times any scenario's length */
#define DELIVERY_RETRIES 3 /* as worker/worker.c */
#define OUTAGE_MS 10000	   /* the broker is down this long, as in fleet_broker_restart */
#define RESTARTS 2

static char brokers[256], feed[1024], services[1024], port_file[1024];
static int can_restart, kafka_down;

/* librdkafka's warnings and errors, the first few: while the broker is down it
 * logs every refused connection. */
static int log_lines;
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	if (level <= 4 && log_lines++ < 12)
		note("librdkafka %s %s: %s", rd_kafka_name(rk), fac, buf);
}

static rd_kafka_conf_t *conf_new(const char *client_id)
{
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	conf_set(c, "bootstrap.servers", brokers);
	conf_set(c, "client.id", client_id);
	rd_kafka_conf_set_log_cb(c, on_log);
	return c;
}

/* Runs argv to its end, at most timeout_ms, serving rk's callbacks meanwhile
 * (when given) so a producer keeps going; the exit status, or -1. */
static int run_cmd(char *const argv[], rd_kafka_t *rk, int timeout_ms)
{
	pid_t pid;
	if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) != 0)
		fail_msg("cannot run %s: %s", argv[0], strerror(errno));
	int64_t t0 = now_ms();
	int status;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		if (now_ms() - t0 > timeout_ms) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		if (rk)
			rd_kafka_poll(rk, 20);
		else
			usleep(20 * 1000);
	}
}

static void create_topic(const char *topic, int partitions)
{
	char n[16];
	snprintf(n, sizeof(n), "%d", partitions);
	char *argv[] = {feed, "create", brokers, n, (char *)topic, NULL};
	if (run_cmd(argv, NULL, WAIT_MS) != 0)
		fail_msg("worker_feed create %s failed", topic);
}

static void topic_name(char *buf, size_t len, const char *what)
{
	snprintf(buf, len, "dtk-it-%d-%ld-%s", (int)getpid(), (long)time(NULL), what);
}

/* ---- 1: resuming a partition that was never paused ------------------------------ */

struct tally {
	int count[2][RESUME_N]; /* deliveries per partition and offset */
	int got[2];
	int64_t position[2];	/* rd_kafka_position just before the resume */
	int64_t first_after[2]; /* the first offset delivered after the resume, -1 none */
	int resumed;
	int dup[2], missing[2];
};

/* static, so a failed assertion (a longjmp out of the test) leaks nothing */
static struct tally tally;

static void tally_message(struct tally *t, const rd_kafka_message_t *m)
{
	if (m->err) {
		note("consumer: %s", rd_kafka_message_errstr(m));
		return;
	}
	if (m->partition < 0 || m->partition > 1 || m->offset < 0 || m->offset >= RESUME_N)
		fail_msg("unexpected message at partition %d offset %" PRId64, (int)m->partition,
			 m->offset);
	if (t->resumed && t->first_after[m->partition] < 0)
		t->first_after[m->partition] = m->offset;
	t->count[m->partition][m->offset]++;
	t->got[m->partition]++;
}

static void produce_to_partitions(const char *topic)
{
	char err[512];
	rd_kafka_t *rk =
	    rd_kafka_new(RD_KAFKA_PRODUCER, conf_new("dtk-it-defects-feed"), err, sizeof(err));
	assert_non_null(rk);
	for (int p = 0; p < 2; p++)
		for (int i = 0; i < RESUME_N; i++) {
			char v[32];
			int vl = snprintf(v, sizeof(v), "%d-%d", p, i);
			rd_kafka_resp_err_t e = rd_kafka_producev(
			    rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(p),
			    RD_KAFKA_V_VALUE(v, vl), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
			    RD_KAFKA_V_END);
			if (e)
				fail_msg("produce: %s", rd_kafka_err2str(e));
		}
	rd_kafka_resp_err_t e = rd_kafka_flush(rk, WAIT_MS);
	rd_kafka_destroy(rk);
	assert_int_equal(e, RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* One consumer, partitions 0 and 1 of a topic of its own; partition 0 is paused
 * after both partitions delivered some messages, then resume_all ? the whole
 * assignment : exactly the paused list is resumed, and everything is read. */
static void resume_scenario(int resume_all, struct tally *t)
{
	char topic[128], err[512];
	topic_name(topic, sizeof(topic), resume_all ? "resume-all" : "resume-own");
	create_topic(topic, 2);
	produce_to_partitions(topic);
	memset(t, 0, sizeof(*t));
	t->first_after[0] = t->first_after[1] = -1;

	rd_kafka_conf_t *c = conf_new("dtk-it-defects-resume");
	conf_set(c, "group.id", topic);
	conf_set(c, "auto.offset.reset", "earliest");
	conf_set(c, "enable.auto.commit", "false");
	conf_set(c, "session.timeout.ms", "6000");
	/* small fetches, so the two partitions' messages interleave */
	conf_set(c, "max.partition.fetch.bytes", "2048");
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
	assert_non_null(rk);
	rd_kafka_poll_set_consumer(rk);
	rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
	assert_int_equal(rd_kafka_subscribe(rk, sub), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_topic_partition_list_destroy(sub);

	int64_t t0 = now_ms();
	while ((t->got[0] < 20 || t->got[1] < 20) && now_ms() - t0 < WAIT_MS) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		if (m) {
			tally_message(t, m);
			rd_kafka_message_destroy(m);
		}
	}
	if (t->got[0] < 20 || t->got[1] < 20)
		fail_msg("no messages within %d ms: %d + %d", WAIT_MS, t->got[0], t->got[1]);

	rd_kafka_topic_partition_list_t *paused = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(paused, topic, 0);
	assert_int_equal(rd_kafka_pause_partitions(rk, paused), RD_KAFKA_RESP_ERR_NO_ERROR);
	/* what was fetched for partition 1 keeps coming */
	for (int64_t t1 = now_ms(); now_ms() - t1 < 500;) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 50);
		if (m) {
			tally_message(t, m);
			rd_kafka_message_destroy(m);
		}
	}
	rd_kafka_topic_partition_list_t *pos = rd_kafka_topic_partition_list_new(2);
	rd_kafka_topic_partition_list_add(pos, topic, 0);
	rd_kafka_topic_partition_list_add(pos, topic, 1);
	assert_int_equal(rd_kafka_position(rk, pos), RD_KAFKA_RESP_ERR_NO_ERROR);
	for (int i = 0; i < 2; i++)
		t->position[pos->elems[i].partition] = pos->elems[i].offset;
	rd_kafka_topic_partition_list_destroy(pos);

	rd_kafka_topic_partition_list_t *resume = paused;
	if (resume_all)
		assert_int_equal(rd_kafka_assignment(rk, &resume), RD_KAFKA_RESP_ERR_NO_ERROR);
	note("%s: read %d + %d, positions %" PRId64 " / %" PRId64 ", paused [0], resuming %d "
	     "partition(s)",
	     topic, t->got[0], t->got[1], t->position[0], t->position[1], resume->cnt);
	t->resumed = 1;
	assert_int_equal(rd_kafka_resume_partitions(rk, resume), RD_KAFKA_RESP_ERR_NO_ERROR);
	if (resume != paused)
		rd_kafka_topic_partition_list_destroy(resume);
	rd_kafka_topic_partition_list_destroy(paused);

	/* until every message came and nothing more for 3 s */
	int64_t last = now_ms();
	t0 = now_ms();
	while (now_ms() - last < 3000 && now_ms() - t0 < WAIT_MS) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		if (m) {
			tally_message(t, m);
			rd_kafka_message_destroy(m);
			last = now_ms();
		}
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	for (int p = 0; p < 2; p++) {
		for (int i = 0; i < RESUME_N; i++) {
			t->dup[p] += t->count[p][i] > 1 ? t->count[p][i] - 1 : 0;
			t->missing[p] += t->count[p][i] == 0;
		}
		note("observed: partition %d (%s): %d deliveries of %d messages, %d again, %d "
		     "missing; first offset after the resume %" PRId64 " (position was %" PRId64
		     ")",
		     p, p ? "never paused" : "paused", t->got[p], RESUME_N, t->dup[p],
		     t->missing[p], t->first_after[p], t->position[p]);
	}
}

static void test_resuming_a_never_paused_partition_delivers_it_again_from_its_start(void **state)
{
	struct tally *t = &tally;
	resume_scenario(1, t);
	assert_int_equal(t->missing[0] + t->missing[1], 0);
	assert_int_equal(t->dup[0], 0); /* the paused one resumes where it was */
	if (t->dup[1] == 0)
		fail_msg("librdkafka %s did not deliver the never-paused partition again: the "
			 "defect is not there (fixed in 2.4.0); update docs/librdkafka.md",
			 rd_kafka_version_str());
	/* it went back to before its position: already consumed messages came again */
	assert_true(t->first_after[1] >= 0 && t->first_after[1] < t->position[1]);
	printf("# provoked: resuming the whole assignment re-delivered %d messages of the "
	       "never-paused partition (from offset %" PRId64 ", its position was %" PRId64 ")\n",
	       t->dup[1], t->first_after[1], t->position[1]);
}

static void test_resuming_only_the_paused_partitions_delivers_every_message_once(void **state)
{
	struct tally *t = &tally;
	resume_scenario(0, t);
	assert_int_equal(t->missing[0] + t->missing[1], 0);
	assert_int_equal(t->dup[0] + t->dup[1], 0);
	/* the paused partition went on where it stopped */
	if (t->position[0] < RESUME_N)
		assert_int_equal(t->first_after[0], t->position[0]);
}

/* ---- 2: the idempotent producer with the worker's handling ------------------------ */

enum { ID_NEW, ID_IN_FLIGHT, ID_DELIVERED, ID_GAVE_UP };

struct producing {
	rd_kafka_t *rk;
	char topic[128];
	int n;			       /* ids produced so far */
	unsigned char state[MAX_IDS];  /* enum above */
	unsigned char tries[MAX_IDS];  /* produce calls after the first */
	unsigned char again[MAX_IDS];  /* was produced more than once */
	int32_t dr_partition[MAX_IDS]; /* where its delivery report put it */
	int64_t dr_offset[MAX_IDS];
	int count[MAX_IDS];	    /* how often each id is in the topic */
	int retry[MAX_IDS], nretry; /* failed deliveries to produce again */
	int producers;		    /* instances made (1 + fatal errors) */
	int failed_reports;	    /* delivery reports with an error */
	char first_failure[256];
	int fatal; /* fatal errors (each ended a producer) */
	char first_fatal[768];
	int refused_after_fatal; /* produce() calls refused with __FATAL */
	int lost_by_naive;	 /* not delivered by the producer they were given to */
	int events[8];		 /* error events: transport, all brokers down, other */
	char first_other_event[256];
	int ignore_reports; /* while a failed producer is taken down */
};

/* One scenario at a time; static, so a failed assertion (which leaves the test
 * by longjmp) leaks nothing. */
static struct producing producing;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct producing *p = opaque;
	intptr_t id = (intptr_t)m->_private;
	if (p->ignore_reports || id < 0 || id >= MAX_IDS)
		return;
	if (!m->err) {
		p->state[id] = ID_DELIVERED;
		p->dr_partition[id] = m->partition;
		p->dr_offset[id] = m->offset;
		return;
	}
	if (!p->failed_reports++)
		snprintf(p->first_failure, sizeof(p->first_failure), "%s (%s)",
			 rd_kafka_err2str(m->err), rd_kafka_err2name(m->err));
	if (p->tries[id] < DELIVERY_RETRIES) {
		p->tries[id]++;
		p->retry[p->nretry++] = (int)id;
	} else {
		p->state[id] = ID_GAVE_UP;
	}
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct producing *p = opaque;
	if (err == RD_KAFKA_RESP_ERR__TRANSPORT)
		p->events[0]++;
	else if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
		p->events[1]++;
	else if (!p->events[2]++)
		snprintf(p->first_other_event, sizeof(p->first_other_event), "%s: %s",
			 rd_kafka_err2name(err), reason);
}

/* An idempotent producer as dtk-dispatch's (core/fleet/dispatch.c; the
 * worker's results producer is not idempotent, docs/librdkafka.md) with
 * linger.ms=5, librdkafka's defaults otherwise (message.timeout.ms 300 s). */
static void producer_new(struct producing *p)
{
	char err[512];
	rd_kafka_conf_t *c = conf_new("dtk-it-defects-producer");
	conf_set(c, "enable.idempotence", "true");
	conf_set(c, "linger.ms", "5");
	rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
	rd_kafka_conf_set_error_cb(c, on_error);
	rd_kafka_conf_set_opaque(c, p);
	p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
	if (!p->rk)
		fail_msg("producer: %s", err);
	p->producers++;
}

static void produce_id(struct producing *p, int id)
{
	char v[16];
	int vl = snprintf(v, sizeof(v), "%d", id);
	char k[16];
	int kl = snprintf(k, sizeof(k), "k%d", id % 64);
	rd_kafka_resp_err_t e;
	int64_t t0 = now_ms();
	while ((e = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(p->topic), RD_KAFKA_V_KEY(k, kl),
				      RD_KAFKA_V_VALUE(v, vl),
				      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
				      RD_KAFKA_V_OPAQUE((void *)(intptr_t)id), RD_KAFKA_V_END)) ==
		   RD_KAFKA_RESP_ERR__QUEUE_FULL &&
	       now_ms() - t0 < WAIT_MS)
		rd_kafka_poll(p->rk, 10);
	if (e == RD_KAFKA_RESP_ERR__FATAL) {
		p->refused_after_fatal++;
		p->state[id] = ID_IN_FLIGHT; /* not taken: the next producer takes it */
		return;
	}
	if (e)
		fail_msg("produce %d: %s", id, rd_kafka_err2str(e));
	p->state[id] = ID_IN_FLIGHT;
}

/* A fatal error: the worker flushes once and exits 1; its orchestrator starts it
 * again, and every request whose result was not delivered runs again. Here: the
 * producer goes, a new one produces every id not delivered. */
static int handle_fatal(struct producing *p)
{
	char why[512];
	rd_kafka_resp_err_t fe = rd_kafka_fatal_error(p->rk, why, sizeof(why));
	if (!fe)
		return 0;
	if (!p->fatal++)
		snprintf(p->first_fatal, sizeof(p->first_fatal), "%s: %s", rd_kafka_err2name(fe),
			 why);
	note("observed: fatal error %s: %s; a new producer takes over", rd_kafka_err2name(fe), why);
	p->ignore_reports = 1;
	rd_kafka_flush(p->rk, 2000);
	rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	rd_kafka_poll(p->rk, 0);
	rd_kafka_destroy(p->rk);
	p->ignore_reports = 0;
	producer_new(p);
	p->nretry = 0;
	for (int id = 0; id < p->n; id++)
		if (p->state[id] == ID_IN_FLIGHT) {
			p->lost_by_naive++;
			p->again[id] = 1;
			produce_id(p, id);
		}
	return 1;
}

/* Produces RATE ids a second until `until` (ms on now_ms's clock; 0: produce no
 * new ids), producing failed deliveries again and handling fatal errors. */
static void pump(struct producing *p, int64_t started, int64_t until)
{
	do {
		int64_t want = until ? (now_ms() - started) * RATE / 1000 : p->n;
		while (p->n < want && p->n < MAX_IDS)
			produce_id(p, p->n++);
		while (p->nretry > 0) {
			int id = p->retry[--p->nretry];
			p->again[id] = 1;
			produce_id(p, id);
		}
		rd_kafka_poll(p->rk, 2);
		handle_fatal(p);
	} while (until && now_ms() < until);
}

/* Until every id is delivered or given up (at most timeout_ms). */
static void settle(struct producing *p, int timeout_ms)
{
	int64_t t0 = now_ms();
	for (;;) {
		pump(p, 0, 0);
		int open = p->nretry;
		for (int id = 0; id < p->n && !open; id++)
			open = p->state[id] == ID_IN_FLIGHT;
		if (!open || now_ms() - t0 > timeout_ms)
			return;
		rd_kafka_poll(p->rk, 50);
	}
}

/* Reads the whole topic back: how often each id is in it. */
static void read_back(const char *topic, int n, int *count)
{
	char err[512];
	rd_kafka_conf_t *c = conf_new("dtk-it-defects-reader");
	char group[160];
	snprintf(group, sizeof(group), "%s-reader", topic);
	conf_set(c, "group.id", group); /* assign() needs one in 2.0.2 */
	conf_set(c, "enable.auto.commit", "false");
	conf_set(c, "auto.offset.reset", "earliest"); /* an offset reset must not skip */
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
	assert_non_null(rk);
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	assert_int_equal(rd_kafka_metadata(rk, 0, rkt, &md, WAIT_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
	int parts = md->topics[0].partition_cnt;
	rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
	int64_t high[64], next[64];
	assert_true(parts > 0 && parts <= 64);
	for (int i = 0; i < parts; i++) {
		int64_t lo;
		assert_int_equal(
		    rd_kafka_query_watermark_offsets(rk, topic, i, &lo, &high[i], WAIT_MS),
		    RD_KAFKA_RESP_ERR_NO_ERROR);
		next[i] = lo;
		rd_kafka_topic_partition_list_add(l, topic, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
	}
	assert_int_equal(rd_kafka_assign(rk, l), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_topic_partition_list_destroy(l);
	int64_t t0 = now_ms(), read = 0, stored = 0;
	for (int i = 0; i < parts; i++)
		stored += high[i] - next[i];
	for (;;) {
		int done = 1;
		for (int i = 0; i < parts; i++)
			done &= next[i] >= high[i];
		if (done)
			break;
		if (now_ms() - t0 > WAIT_MS)
			fail_msg("reading %s back: not at the end within %d ms", topic, WAIT_MS);
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		if (!m)
			continue;
		if (m->err) {
			note("reading %s back: %s", topic, rd_kafka_message_errstr(m));
		} else {
			read++;
			next[m->partition] = m->offset + 1;
			char v[16] = "";
			if (m->payload && m->len < sizeof(v))
				memcpy(v, m->payload, m->len);
			char *end;
			long id = strtol(v, &end, 10);
			if (end != v && id >= 0 && id < n)
				count[id]++;
		}
		rd_kafka_message_destroy(m);
	}
	if (read != stored)
		note("reading %s back: %" PRId64 " messages read, the watermarks say %" PRId64,
		     topic, read, stored);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
}

/* Every id in the topic, and more than once only when it was produced again. */
static void assert_nothing_lost(struct producing *p)
{
	int *count = p->count;
	read_back(p->topic, p->n, count);
	int missing = 0, twice = 0, twice_unexplained = 0, gave_up = 0, first_missing = -1;
	for (int id = 0; id < p->n; id++) {
		gave_up += p->state[id] == ID_GAVE_UP;
		if (!count[id] && first_missing < 0)
			first_missing = id;
		missing += count[id] == 0;
		twice += count[id] > 1;
		twice_unexplained += count[id] > 1 && !p->again[id];
	}
	note("observed: %d messages, %d producer(s), %d fatal%s%s, %d failed deliveries%s%s, "
	     "%d produce() refused after a fatal error; in the topic: %d missing, %d more "
	     "than once",
	     p->n, p->producers, p->fatal, p->fatal ? ": " : "", p->first_fatal, p->failed_reports,
	     p->failed_reports ? ": " : "", p->first_failure, p->refused_after_fatal, missing,
	     twice);
	for (int id = 0, shown = 0; id < p->n && shown < 5; id++) {
		if (count[id])
			continue;
		note("missing: id %d, state %d, produced again %d, delivery report: partition %d "
		     "offset %" PRId64,
		     id, p->state[id], p->again[id], (int)p->dr_partition[id], p->dr_offset[id]);
		shown++;
	}
	assert_int_equal(gave_up, 0);
	if (missing)
		fail_msg("%d messages not in the topic (the first: %d)", missing, first_missing);
	assert_int_equal(twice_unexplained, 0);
}

/* A scenario of its own: a topic (6 partitions) and a producer. */
static struct producing *producing_start(const char *what)
{
	struct producing *p = &producing;
	memset(p, 0, sizeof(*p));
	topic_name(p->topic, sizeof(p->topic), what);
	create_topic(p->topic, 6);
	producer_new(p);
	return p;
}

static int services_cmd(const char *action, rd_kafka_t *rk)
{
	char *argv[] = {"/bin/bash", services, (char *)action, "kafka", NULL};
	return run_cmd(argv, rk, 180000);
}

static long read_port(void)
{
	FILE *f = fopen(port_file, "r");
	long port = -1;
	if (f) {
		if (fscanf(f, "%ld", &port) != 1)
			port = -1;
		fclose(f);
	}
	return port;
}

static void
test_idempotent_producer_across_broker_restarts_loses_nothing_with_the_worker_handling(void **state)
{
	if (!can_restart) {
		if (getenv("DTK_REQUIRE_SERVICES") && !strcmp(getenv("DTK_REQUIRE_SERVICES"), "1"))
			fail_msg("DTK_SERVICES_DIR and DTK_SOURCE_DIR are needed to restart Kafka");
		skip();
	}
	struct producing *p = producing_start("idempotent-restart");
	long port = read_port();
	int64_t started = now_ms();
	pump(p, started, now_ms() + 3000);
	for (int cycle = 1; cycle <= RESTARTS; cycle++) {
		int in_queue = rd_kafka_outq_len(p->rk);
		kafka_down = 1;
		if (services_cmd("stop", p->rk) != 0)
			fail_msg("scripts/services.sh stop kafka failed");
		note("restart %d: broker stopped with %d messages in the producer's queue, %d ids "
		     "so far",
		     cycle, in_queue, p->n);
		pump(p, started, now_ms() + OUTAGE_MS);
		if (services_cmd("start", p->rk) != 0)
			fail_msg("scripts/services.sh start kafka failed");
		kafka_down = 0;
		if (read_port() != port)
			fail_msg("the broker came back on port %ld, not %ld", read_port(), port);
		note("restart %d: broker back on port %ld, %d messages queued", cycle, port,
		     rd_kafka_outq_len(p->rk));
		pump(p, started, now_ms() + 4000);
	}
	settle(p, 180000);
	note("observed: error events: %d transport, %d all brokers down, %d other%s%s",
	     p->events[0], p->events[1], p->events[2], p->events[2] ? ": " : "",
	     p->first_other_event);
	printf("# %s: %d fatal error(s) and %d failed deliveries across %d broker restarts\n",
	       p->fatal || p->failed_reports ? "provoked" : "not provoked", p->fatal,
	       p->failed_reports, RESTARTS);
	rd_kafka_destroy(p->rk);
	assert_nothing_lost(p);
}

static void
test_fatal_idempotence_error_refuses_later_messages_and_a_new_producer_delivers_them(void **state)
{
	struct producing *p = producing_start("idempotent-fatal");
	int64_t started = now_ms();
	pump(p, started, now_ms() + 2000);
	settle(p, WAIT_MS); /* the producer id is assigned and sequences run */
	pump(p, started, now_ms() + 500);
	int before = p->n;
	/* The error the defect raises, injected while messages are in flight. */
	rd_kafka_t *old = p->rk;
	assert_int_equal(rd_kafka_test_fatal_error(old,
						   RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
						   "injected by test_librdkafka_defects"),
			 RD_KAFKA_RESP_ERR_NO_ERROR);
	char why[512];
	assert_int_equal(rd_kafka_fatal_error(old, why, sizeof(why)),
			 RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	/* a producer that carries on: every later produce() is refused */
	rd_kafka_resp_err_t e =
	    rd_kafka_producev(old, RD_KAFKA_V_TOPIC(p->topic), RD_KAFKA_V_VALUE("x", 1),
			      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
	assert_int_equal(e, RD_KAFKA_RESP_ERR__FATAL);
	pump(p, started, now_ms() + 2000); /* handles it: a new producer */
	settle(p, WAIT_MS);
	note("observed: fatal error injected after %d ids; %d not delivered by the failed "
	     "producer were produced again by a new one",
	     before, p->lost_by_naive);
	assert_int_equal(p->fatal, 1);
	assert_int_equal(p->producers, 2);
	assert_true(p->lost_by_naive > 0); /* what carrying on would have lost */
	assert_true(p->n > before);	   /* the new producer went on producing */
	rd_kafka_destroy(p->rk);
	assert_nothing_lost(p);
}

/* A restart test that failed half way must not leave the broker down for the
 * tests that follow. */
static int restore_kafka(void **state)
{
	if (kafka_down && services_cmd("start", NULL) == 0)
		kafka_down = 0;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(
		test_resuming_a_never_paused_partition_delivers_it_again_from_its_start),
	    cmocka_unit_test(test_resuming_only_the_paused_partitions_delivers_every_message_once),
	    cmocka_unit_test(
		test_fatal_idempotence_error_refuses_later_messages_and_a_new_producer_delivers_them),
	    cmocka_unit_test_teardown(
		test_idempotent_producer_across_broker_restarts_loses_nothing_with_the_worker_handling,
		restore_kafka),
	};
	t_start = now_ms();
	const char *b = getenv("DTK_KAFKA_BROKERS");
	const char *bin = getenv("DTK_BINARY_DIR");
	if (!b || !*b || !bin) {
		printf("SKIP kafka: DTK_KAFKA_BROKERS or DTK_BINARY_DIR not set "
		       "(scripts/services.sh start kafka; eval \"$(scripts/services.sh env)\"; "
		       "run through ctest)\n");
		return services_required() ? 1 : 77;
	}
	snprintf(brokers, sizeof(brokers), "%s", b);
	snprintf(feed, sizeof(feed), "%s/worker/worker_feed", bin);
	const char *src = getenv("DTK_SOURCE_DIR"), *dir = getenv("DTK_SERVICES_DIR");
	if (src && dir) {
		snprintf(services, sizeof(services), "%s/scripts/services.sh", src);
		snprintf(port_file, sizeof(port_file), "%s/kafka/port", dir);
		can_restart = 1;
	}
	time_limit(580, "test_librdkafka_defects: overall time limit passed\n");
	printf("# librdkafka %s against %s\n", rd_kafka_version_str(), brokers);
	if (getenv("DTK_TEST_FILTER")) /* e.g. "*resum*": the tests that leave the broker be */
		cmocka_set_test_filter(getenv("DTK_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL) ? 1 : 0;
}
#endif /* DTK_NO_RDKAFKA */
