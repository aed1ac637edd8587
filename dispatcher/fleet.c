#include "fleet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dispatch.h"
#include "dispatch_report.h"
#include "report.h"
#include "request.h"
#include "util/clock.h"

/* --wait without --timeout: the slowest config's schedule.timeout plus
 * this, for the request to be picked up and the result to come back */
#define WAIT_MARGIN_S 30

/* What became of one selected config. */
typedef struct fleet_item {
	dtk_request req;
	int built;
	dtk_dispatch_msg msg;
	dtk_value *result; /* with --wait */
} fleet_item;

static void progress_line(size_t got, size_t total, int64_t left_ms, void *ctx)
{
	int *shown = ctx;
	fprintf(stderr, "\rdtk-dispatch: %zu/%zu results, %llds left   ", got, total,
		(long long)((left_ms + 999) / 1000));
	fflush(stderr);
	*shown = 1;
}

/* Before anything is published: the error, and the configs that were
 * invalid anyway. */
static int fail_early(const dtk_selected *items, size_t n, const char *what, const char *err)
{
	int rc = DTK_EXIT_FAILED;
	fprintf(stderr, "dtk-dispatch: %s: %s; nothing was published\n", what, err);
	for (size_t i = 0; i < n; i++)
		if (items[i].error) {
			fprintf(stderr, "dtk-dispatch: config error: %s\n", items[i].error);
			rc = DTK_EXIT_USAGE;
		}
	return rc;
}

int dispatch_fleet(const dtk_opts *o, dtk_selected *items, size_t n, const char *dispatch_id,
		   int64_t requested_time, int json)
{
	dispatch_entry *entries = NULL;
	char err[2048], host[128] = "localhost", source[192];
	long partitions, rf, timeout_s = 0;
	int rc = DTK_EXIT_USAGE, wait = dtk_opts_on(o, "wait"), shown = 0;
	dtk_dispatch *d = NULL;
	fleet_item *fi = calloc(n ? n : 1, sizeof(*fi));
	dtk_dispatch_msg *msgs = calloc(n ? n : 1, sizeof(*msgs));
	size_t *msg_item = calloc(n ? n : 1, sizeof(*msg_item)), nmsgs = 0;
	const char **ids = calloc(n ? n : 1, sizeof(*ids));
	dtk_value **got = calloc(n ? n : 1, sizeof(*got));
	if (!fi || !msgs || !msg_item || !ids || !got) {
		fprintf(stderr, "dtk-dispatch: out of memory\n");
		rc = DTK_EXIT_FAILED;
		goto out;
	}
	if (dtk_opts_int(o, "partitions", 24, 1, 100000, &partitions, err, sizeof(err)) != 0 ||
	    dtk_opts_int(o, "replication-factor", 1, 1, 32767, &rf, err, sizeof(err)) != 0 ||
	    (wait && dtk_opts_int(o, "timeout", 0, 1, 7 * 86400, &timeout_s, err, sizeof(err)) != 0)) {
		fprintf(stderr, "dtk-dispatch: %s\n", err);
		goto out;
	}
	if (wait && !timeout_s) {
		int64_t longest = 0;
		for (size_t i = 0; i < n; i++)
			if (!items[i].error && items[i].deferred->schedule.timeout > longest)
				longest = items[i].deferred->schedule.timeout;
		timeout_s = (long)longest + WAIT_MARGIN_S;
	}
	const dtk_opt_value *props = dtk_opts_get(o, "kafka-prop");
	gethostname(host, sizeof(host) - 1);
	snprintf(source, sizeof(source), "/dtk-dispatch/%s", host);
	const char *key = getenv("DTK_SIGNING_KEY");
	dtk_dispatch_opts dopt = {
		.kafka = {.brokers = dtk_opts_str(o, "brokers", NULL)},
		.topic = dtk_opts_str(o, "topic", NULL),
		.results_topic = dtk_opts_str(o, "results-topic", NULL),
		.dlq_topic = dtk_opts_str(o, "dlq-topic", NULL),
		.source = source,
		.signing_key = key,
	};
	/* flags beat DTK_KAFKA_PROP_*, which beat the settings file */
	if (props->set)
		dtk_kafka_settings_user_props(&dopt.kafka, (const char *const *)props->list,
					      props->n, props->origin);
	if (dtk_dispatch_new(&dopt, &d, err, sizeof(err)) != 0) {
		fprintf(stderr, "dtk-dispatch: %s\n", err);
		goto out;
	}
	if (!key || !*key)
		fprintf(stderr, "dtk-dispatch: DTK_SIGNING_KEY is not set: the requests are unsigned "
				"(workers run them only with --allow-unsigned)\n");
	if (dtk_opts_on(o, "create-topics") &&
	    dtk_dispatch_create_topics(d, (int)partitions, (int)rf, err, sizeof(err)) != 0) {
		rc = fail_early(items, n, "--create-topics", err);
		goto out;
	}
	if (dtk_dispatch_check_topic(d, err, sizeof(err)) != 0) {
		rc = fail_early(items, n, "publishing", err);
		goto out;
	}
	if (wait && dtk_dispatch_mark_results(d, err, sizeof(err)) != 0) {
		rc = fail_early(items, n, "--wait", err);
		goto out;
	}
	const char *results_topic = dtk_opts_str(o, "results-topic", NULL);
	dtk_fleet_request_opts ro = {
		.dispatch_id = dispatch_id,
		.profiles_path = dtk_opts_str(o, "profiles", NULL),
		.requested_time = requested_time,
		.no_align = dtk_opts_on(o, "no-align"),
		.dispatched_at_ms = dtk_now_ms(),
		.store = !dtk_opts_on(o, "no-store"),
		.alerts = !dtk_opts_on(o, "no-alerts"),
		/* workers answer on the default topic unless told otherwise */
		.reply_to = results_topic && strcmp(results_topic, DTK_DISPATCH_RESULT_TOPIC) != 0
				    ? results_topic
				    : NULL,
	};
	for (size_t i = 0; i < n; i++) {
		dtk_selected *it = &items[i];
		if (it->error)
			continue;
		if (dtk_fleet_request_build(it->path, it->deferred, &ro, &fi[i].req, err,
					    sizeof(err)) != 0) {
			char full[2600];
			snprintf(full, sizeof(full), "%s: %s", it->path, err);
			it->error = strdup(full);
			if (!it->error) {
				fprintf(stderr, "dtk-dispatch: out of memory\n");
				rc = DTK_EXIT_FAILED;
				goto out;
			}
			continue;
		}
		fi[i].built = 1;
		msgs[nmsgs].req = &fi[i].req;
		msg_item[nmsgs++] = i;
	}
	dtk_dispatch_publish(d, msgs, nmsgs);
	size_t nids = 0;
	for (size_t k = 0; k < nmsgs; k++) {
		fi[msg_item[k]].msg = msgs[k];
		if (!msgs[k].error[0])
			ids[nids++] = msgs[k].req->request_id;
	}
	if (wait && nids) {
		int tty = isatty(STDERR_FILENO);
		long r = dtk_dispatch_await(d, dispatch_id, ids, nids, (int64_t)timeout_s * 1000, got,
					    tty ? progress_line : NULL, &shown, err, sizeof(err));
		if (shown)
			fputc('\n', stderr);
		if (r < 0)
			fprintf(stderr, "dtk-dispatch: waiting for results: %s\n", err);
		else if (err[0] && (size_t)r < nids)
			fprintf(stderr, "dtk-dispatch: %s\n", err);
		/* got[] follows ids[], which follows the delivered messages */
		for (size_t k = 0, j = 0; k < nmsgs; k++)
			if (!msgs[k].error[0]) {
				fi[msg_item[k]].result = got[j];
				got[j++] = NULL;
			}
	}
	entries = calloc(n ? n : 1, sizeof(*entries));
	if (!entries) {
		rc = DTK_EXIT_FAILED;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (items[i].error)
			continue;
		entries[i] = (dispatch_entry){.metric = fi[i].req.metric,
					      .request_id = fi[i].req.request_id,
					      .execution_time = fi[i].req.execution_time,
					      .undelivered = fi[i].msg.error[0] ? fi[i].msg.error : NULL,
					      .has_position = 1,
					      .partition = fi[i].msg.partition,
					      .offset = fi[i].msg.offset,
					      .result = fi[i].result};
		fi[i].result = NULL;
	}
	char where[300];
	snprintf(where, sizeof(where), "Kafka, %s", dtk_dispatch_topic(d));
	rc = dispatch_report(items, entries, n, dispatch_id, where, wait, timeout_s, json,
			     dtk_opts_on(o, "fail-on-anomaly"));
out:
	dtk_dispatch_free(&d);
	for (size_t i = 0; fi && i < n; i++) {
		dtk_request_clear(&fi[i].req);
		dtk_value_free(&fi[i].result);
	}
	for (size_t i = 0; entries && i < n; i++)
		dtk_value_free(&entries[i].result);
	free(entries);
	free(fi);
	free(msgs);
	free(msg_item);
	free(ids);
	free(got);
	return rc;
}
