/* dtk-dispatch: select metric configs by tag, metric name or schedule, and
 * run their checks. Without a broker (the embedded default) the checks run
 * in-process on a thread pool; with --brokers the requests go to Kafka for
 * the workers (fleet.c, through libdtk-fleet). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "dispatch_report.h"
#include "fleet.h"
#include "limiter.h"
#include "message.h"
#include "options.h"
#include "report.h"
#include "select.h"

static const dtk_opt_spec specs[] = {
	{"config-dir", 0, DTK_OPT_STRING, NULL, NULL, "DIR",
	 "where the metric configs are (recursively; default .)"},
	{"tags", 't', DTK_OPT_LIST, NULL, NULL, "T", "select configs with tag T (repeatable, a,b)"},
	{"exclude-tags", 'e', DTK_OPT_LIST, NULL, NULL, "T", "skip configs with tag T"},
	{"match-all", 0, DTK_OPT_FLAG, NULL, NULL, NULL, "require every --tags tag"},
	{"metric", 0, DTK_OPT_STRING, NULL, NULL, "NAME", "select the config named NAME"},
	{"due", 0, DTK_OPT_FLAG, NULL, NULL, NULL,
	 "select configs with a slot starting this minute (run every minute from cron)"},
	{"execution-time", 0, DTK_OPT_STRING, NULL, NULL, "T",
	 "check time (ISO 8601; default now), aligned per config"},
	{"no-align", 0, DTK_OPT_FLAG, NULL, NULL, NULL, "use --execution-time as given"},
	{"brokers", 0, DTK_OPT_STRING, "DTK_KAFKA_BROKERS", "brokers", "LIST",
	 "Kafka bootstrap servers: publish requests for the workers"},
	{"topic", 0, DTK_OPT_STRING, NULL, NULL, "T", "request topic (dtk.check-requests)"},
	{"results-topic", 0, DTK_OPT_STRING, NULL, NULL, "T", "result topic (dtk.check-results)"},
	{"dlq-topic", 0, DTK_OPT_STRING, NULL, NULL, "T", "dead-letter topic"},
	{"kafka-prop", 0, DTK_OPT_LIST, "-", NULL, "K=V",
	 "a librdkafka property (repeatable; env DTK_KAFKA_PROP_<NAME>, '_' for '.')"},
	{"wait", 0, DTK_OPT_FLAG, NULL, NULL, NULL, "wait for the workers' results"},
	{"timeout", 0, DTK_OPT_STRING, NULL, NULL, "S", "with --wait: give up after S seconds"},
	{"create-topics", 0, DTK_OPT_FLAG, NULL, NULL, NULL, "create the topics first"},
	{"partitions", 0, DTK_OPT_STRING, NULL, NULL, "N", "with --create-topics (24)"},
	{"replication-factor", 0, DTK_OPT_STRING, NULL, NULL, "N", "with --create-topics (1)"},
	{"dry-run", 0, DTK_OPT_FLAG, NULL, NULL, NULL, "list the selection; run nothing"},
	{"no-store", 0, DTK_OPT_FLAG, NULL, NULL, NULL, "write no datapoints or state"},
	{"no-alerts", 0, DTK_OPT_FLAG, NULL, NULL, NULL, "decide and deliver no alerts"},
	{"parallel", 'p', DTK_OPT_STRING, NULL, NULL, "N",
	 "in-process: run N checks at once (default 5)"},
	{"redis", 0, DTK_OPT_STRING, "DTK_REDIS_URL", "redis", "URL",
	 "alert state and limits shared through Redis"},
	{"profiles", 0, DTK_OPT_STRING, "DETECTK_PROFILES_PATH", "profiles", "FILE",
	 "connection profiles"},
	{"output", 0, DTK_OPT_STRING, NULL, NULL, "text|json", "the report's format"},
	{"fail-on-anomaly", 0, DTK_OPT_FLAG, NULL, NULL, NULL, "exit 3 when an anomaly is found"},
	{"config", 0, DTK_OPT_STRING, NULL, "-", "FILE", "settings file (keys = flag names)"},
	{"help", 'h', DTK_OPT_FLAG, "-", "-", NULL, "this help"},
	{"version", 0, DTK_OPT_FLAG, "-", "-", NULL, "print the version"},
};
#define NSPECS (sizeof(specs) / sizeof(specs[0]))

/* Flags that only mean something with a broker. */
static const char *const kafka_only[] = {"topic",	  "results-topic", "dlq-topic",
					 "kafka-prop",	  "wait",	   "timeout",
					 "create-topics", "partitions",    "replication-factor"};

static void usage(FILE *f)
{
	fprintf(f, "usage: dtk-dispatch [--config-dir DIR] (--tags T | --exclude-tags T | --metric "
		   "NAME | --due) [options]\n\n"
		   "Selects metric configs exactly as `dtk run-tagged` does and runs their checks.\n"
		   "Without --brokers (the embedded default) the checks run here, on --parallel\n"
		   "threads; with --brokers the requests are published for dtk-worker.\n\n"
		   "Every flag is also an environment variable (in brackets) and a key of the\n"
		   "--config file; flags beat the environment, which beats the file.\n\n");
	dtk_opts_help(specs, NSPECS, f);
	fprintf(f, "\nEnvironment only:\n"
		   "  DTK_SIGNING_KEY                  with --brokers: sign every request (HMAC-SHA256);\n"
		   "                                   workers check it with DTK_SIGNING_KEYS\n");
	fprintf(f, "\nExit codes: 0 everything ran, 1 a check failed, 2 usage or config error,\n"
		   "3 anomalies with --fail-on-anomaly (2 before 1 before 3 before 0).\n");
}

/* The in-process run as report entries: each result object moves into
 * the entry. */
static int report_in_process(dtk_selected *items, size_t n, const char *dispatch_id, int json,
			     int fail_on_anomaly)
{
	dispatch_entry *e = calloc(n ? n : 1, sizeof(*e));
	if (!e)
		return DTK_EXIT_FAILED;
	for (size_t i = 0; i < n; i++) {
		if (items[i].error)
			continue;
		e[i].metric = items[i].name;
		if (items[i].result) {
			e[i].result = items[i].result->json;
			items[i].result->json = NULL;
		}
	}
	int rc = dispatch_report(items, e, n, dispatch_id, "in-process", 1, 0, json,
				 fail_on_anomaly);
	for (size_t i = 0; i < n; i++)
		dtk_value_free(&e[i].result);
	free(e);
	return rc;
}

static int names_metric(const dtk_selected *items, size_t n, const char *metric)
{
	for (size_t i = 0; i < n; i++)
		if (items[i].name && strcmp(items[i].name, metric) == 0)
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	dtk_opts o;
	char err[2048], dispatch_id[DTK_UUID_SIZE];
	dtk_selected *items = NULL;
	size_t nitems = 0;
	int rc = DTK_EXIT_USAGE;
	int started = dtk_opts_start(&o, specs, NSPECS, argc, argv, "dtk-dispatch", usage);
	if (started >= 0) {
		rc = started;
		goto out;
	}
	const char *brokers = dtk_opts_str(&o, "brokers", NULL);
	int fleet = brokers && *brokers;
	for (size_t i = 0; !fleet && i < sizeof(kafka_only) / sizeof(kafka_only[0]); i++) {
		const dtk_opt_value *v = dtk_opts_get(&o, kafka_only[i]);
		if (v && v->set) {
			fprintf(stderr, "dtk-dispatch: --%s needs --brokers (from the %s)\n",
				kafka_only[i], v->origin);
			goto out;
		}
	}
	const char *output = dtk_opts_str(&o, "output", NULL);
	if (output && strcmp(output, "text") != 0 && strcmp(output, "json") != 0) {
		fprintf(stderr, "dtk-dispatch: --output must be text or json, got '%s'\n", output);
		goto out;
	}
	int json = output && strcmp(output, "json") == 0;
	long parallel;
	if (dtk_opts_int(&o, "parallel", 5, 1, 256, &parallel, err, sizeof(err)) != 0) {
		fprintf(stderr, "dtk-dispatch: %s\n", err);
		goto out;
	}
	const dtk_opt_value *tags = dtk_opts_get(&o, "tags"), *excl = dtk_opts_get(&o, "exclude-tags");
	const char *metric = dtk_opts_str(&o, "metric", NULL);
	int due = dtk_opts_on(&o, "due");
	if (!tags->n && !excl->n && !metric && !due) {
		fprintf(stderr, "dtk-dispatch: select configs with --tags, --exclude-tags, --metric or "
				"--due\n");
		goto out;
	}
	dtk_check_options check = {.no_align = dtk_opts_on(&o, "no-align"),
				   .no_store = dtk_opts_on(&o, "no-store"),
				   .no_alerts = dtk_opts_on(&o, "no-alerts"),
				   .redis_url = dtk_opts_str(&o, "redis", NULL)};
	const char *t = dtk_opts_str(&o, "execution-time", NULL);
	if (t) {
		if (dtk_report_parse_time(t, &check.requested_time) != 0)
			goto out;
		check.has_time = 1;
	} else {
		/* one requested time for the whole dispatch */
		check.requested_time = (int64_t)time(NULL);
		check.has_time = 1;
	}
	if (dtk_uuid_v4(dispatch_id) != 0) {
		fprintf(stderr, "dtk-dispatch: cannot make a dispatch id\n");
		rc = DTK_EXIT_FAILED;
		goto out;
	}
	check.dispatch_id = dispatch_id;
	const char *dir = dtk_opts_str(&o, "config-dir", NULL);
	int dry = dtk_opts_on(&o, "dry-run");
	dtk_select_opts sel = {
		.filter = {.tags = (const char *const *)tags->list,
			   .ntags = tags->n,
			   .exclude = (const char *const *)excl->list,
			   .nexclude = excl->n,
			   .match_all = dtk_opts_on(&o, "match-all")},
		.metric = metric,
		.due = due,
		.now = check.requested_time,
		.profiles = dtk_opts_str(&o, "profiles", NULL),
		/* a publisher needs none of the workers' secrets */
		.load_strict = !dry && !fleet,
	};
	if (dtk_select_configs(dir ? dir : ".", &sel, &items, &nitems, err, sizeof(err)) != 0) {
		fprintf(stderr, "dtk-dispatch: %s\n", err);
		goto out;
	}
	if (metric && !names_metric(items, nitems, metric)) {
		/* a misspelt name must not pass for "nothing to do" */
		fprintf(stderr, "dtk-dispatch: --metric %s: no config under %s has that name\n",
			metric, dir ? dir : ".");
		rc = DTK_EXIT_USAGE;
		goto out;
	}
	if (dry) {
		rc = DTK_EXIT_OK;
		for (size_t i = 0; i < nitems; i++) {
			if (items[i].error) {
				printf("invalid  %s: %s\n", items[i].path, items[i].error);
				rc = DTK_EXIT_USAGE;
			} else {
				printf("selected %s (%s)\n", items[i].path, items[i].name);
			}
		}
		goto out;
	}
	if (fleet) {
		rc = dispatch_fleet(&o, items, nitems, dispatch_id, check.requested_time, json);
		goto out;
	}
	/* in-process checks respect max_connections too: through Redis with
	 * --redis (shared with workers and other dispatchers), else per process */
	dtk_limiter_options lo = {.redis_url = check.redis_url};
	dtk_limiter *limiter = dtk_limiter_new(&lo, err, sizeof(err));
	if (!limiter) {
		fprintf(stderr, "dtk-dispatch: connection limiter: %s\n", err);
		rc = DTK_EXIT_FAILED;
		goto out;
	}
	check.limiter = limiter;
	int saved_stdout = json ? dtk_report_stdout_to_stderr() : -1;
	dtk_select_run(items, nitems, (size_t)parallel, &check);
	dtk_limiter_free(&limiter);
	dtk_report_stdout_restore(saved_stdout);
	rc = report_in_process(items, nitems, dispatch_id, json, dtk_opts_on(&o, "fail-on-anomaly"));
out:
	dtk_select_release(&items, nitems);
	dtk_opts_free(&o);
	return rc;
}
