/* dtk-worker: run the checks that dtk-dispatch publishes to Kafka
 * (fleet.md "Worker"). This file turns flags, DTK_* variables and the
 * --config file into dtk_worker_settings; worker.c does the work. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "report.h"
#include "util/redis.h"
#include "wlog.h"
#include "worker.h"

extern char **environ;

static const dtk_opt_spec specs[] = {
	{"brokers", 0, DTK_OPT_STRING, "DTK_KAFKA_BROKERS", "brokers", "LIST",
	 "Kafka bootstrap servers (required)"},
	{"group", 0, DTK_OPT_STRING, NULL, NULL, "G", "consumer group (dtk-workers)"},
	{"topic", 0, DTK_OPT_STRING, NULL, NULL, "T", "request topic (dtk.check-requests)"},
	{"results-topic", 0, DTK_OPT_STRING, NULL, NULL, "T", "result topic (dtk.check-results)"},
	{"dlq-topic", 0, DTK_OPT_STRING, NULL, NULL, "T",
	 "dead-letter topic (dtk.check-requests.dlq)"},
	{"concurrency", 0, DTK_OPT_STRING, NULL, NULL, "N", "checks run at once (4)"},
	{"redis", 0, DTK_OPT_STRING, "DTK_REDIS_URL", "redis", "URL",
	 "alert state shared through Redis (redis://[:password@]host:port[/db])"},
	{"default-max-connections", 0, DTK_OPT_STRING, NULL, NULL, "N",
	 "connection limit per source without max_connections (5)"},
	{"limiter-fail-open", 0, DTK_OPT_FLAG, NULL, NULL, NULL,
	 "Redis down: run checks without a connection slot (default: wait, then fail)"},
	{"storage", 0, DTK_OPT_STRING, "DTK_STORAGE_URL", "storage", "URL",
	 "storage for configs without one (sqlite:///, postgresql://, mysql://, clickhouse://)"},
	{"metrics-port", 0, DTK_OPT_STRING, NULL, NULL, "P",
	 "serve /metrics (Prometheus), /healthz and /readyz on 0.0.0.0:P (none)"},
	{"drain-timeout", 0, DTK_OPT_STRING, NULL, NULL, "S",
	 "on SIGTERM: wait S seconds for running checks (30)"},
	{"startup-timeout", 0, DTK_OPT_STRING, NULL, NULL, "S",
	 "give up when no broker (or Redis) answers within S seconds (60)"},
	{"max-request-bytes", 0, DTK_OPT_STRING, NULL, NULL, "N",
	 "larger requests go to the DLQ (1048576)"},
	{"allow-unsigned", 0, DTK_OPT_FLAG, NULL, NULL, NULL,
	 "run requests without a dtk-signature header"},
	{"kafka-prop", 0, DTK_OPT_LIST, "-", NULL, "K=V",
	 "a librdkafka property (repeatable; env DTK_KAFKA_PROP_<NAME>, '_' for '.')"},
	{"allow-env", 0, DTK_OPT_LIST, NULL, NULL, "PREFIX",
	 "variables configs may expand (repeatable; replaces the default list)"},
	{"log-format", 0, DTK_OPT_STRING, NULL, NULL, "json|text", "log lines on stderr (json)"},
	{"log-level", 0, DTK_OPT_STRING, NULL, NULL, "L", "debug, info, warn or error (info)"},
	{"config", 0, DTK_OPT_STRING, NULL, "-", "FILE", "settings file (keys = flag names)"},
	{"help", 'h', DTK_OPT_FLAG, "-", "-", NULL, "this help"},
	{"version", 0, DTK_OPT_FLAG, "-", "-", NULL, "print the version"},
};
#define NSPECS (sizeof(specs) / sizeof(specs[0]))

/* config.md: workers expand only these unless --allow-env says otherwise,
 * and never DTK_* (the worker's own settings). */
static const char *const default_allow_env[] = {"CLICKHOUSE_", "POSTGRES_", "PG",
						"MYSQL_",      "MATTERMOST_", "SLACK_",
						"WEBHOOK_",    "ALERTMANAGER_"};

static void usage(FILE *f)
{
	fprintf(f, "usage: dtk-worker --brokers LIST [options]\n\n"
		   "Consumes check requests from Kafka in a consumer group, runs each check and\n"
		   "publishes its result; a request's offset is stored once its result was\n"
		   "delivered. SIGTERM or SIGINT drains (running checks finish), a second one\n"
		   "exits at once.\n\n"
		   "Every flag is also an environment variable (in brackets) and a key of the\n"
		   "--config file; flags beat the environment, which beats the file. Requests are\n"
		   "verified with DTK_SIGNING_KEYS (comma-separated) or DTK_SIGNING_KEY.\n\n");
	dtk_opts_help(specs, NSPECS, f);
	fprintf(f, "\nExit codes: 0 after a drain, 1 a fatal runtime error (no broker or Redis\n"
		   "within --startup-timeout, a fatal Kafka error, --metrics-port in use), 2 bad\n"
		   "flags or settings.\n");
}

/* Properties the worker's guarantees rest on: set by flags, not by
 * --kafka-prop or DTK_KAFKA_PROP_<NAME>. */
static const char *reserved_name(const char *name, size_t len)
{
	static const char *const reserved[] = {"bootstrap.servers", "group.id",
					       "enable.auto.offset.store"};
	for (size_t r = 0; r < sizeof(reserved) / sizeof(reserved[0]); r++)
		if (strlen(reserved[r]) == len && strncmp(name, reserved[r], len) == 0)
			return reserved[r];
	return NULL;
}

/* The first reserved property that the kafka-prop list (flags or file) or
 * a DTK_KAFKA_PROP_<NAME> variable sets, or NULL. */
static const char *reserved_prop(const dtk_opt_value *kp)
{
	const char *found = NULL;
	for (size_t i = 0; !found && i < kp->n; i++) {
		const char *eq = strchr(kp->list[i], '=');
		if (eq)
			found = reserved_name(kp->list[i], (size_t)(eq - kp->list[i]));
	}
	for (char **e = environ; !found && *e; e++) {
		char name[256];
		const char *value;
		if (dtk_kafka_env_prop(*e, name, sizeof(name), &value) == 1)
			found = reserved_name(name, strlen(name));
	}
	return found;
}

/* One --brokers entry, [PROTO://]HOST[:PORT] with HOST a name, an IPv4
 * address, [IPv6] or a bare IPv6 address (librdkafka's forms). Returns 0, or
 * -1 with what is wrong in why. */
static int check_broker(char *e, char *why, size_t whysz)
{
	char *host = e, *port = NULL;
	char *scheme = strstr(e, "://");
	if (scheme) {
		for (char *c = e; c < scheme; c++)
			if (!isalpha((unsigned char)*c) && *c != '_') {
				snprintf(why, whysz, "'%.200s' has no PROTOCOL:// before its host",
					 e);
				return -1;
			}
		host = scheme + 3;
	}
	char buf[256];
	if (strlen(host) >= sizeof(buf)) {
		snprintf(why, whysz, "'%.64s...' is too long for a host", e);
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", host);
	struct in6_addr a6;
	char *h = buf;
	if (*h == '[') {
		char *close = strchr(h, ']');
		if (!close || (close[1] && close[1] != ':')) {
			snprintf(why, whysz, "'%.200s' is not [IPV6]:PORT", e);
			return -1;
		}
		*close = 0;
		h++;
		if (inet_pton(AF_INET6, h, &a6) != 1) {
			snprintf(why, whysz, "'%.200s': %.64s is not an IPv6 address", e, h);
			return -1;
		}
		port = close[1] ? close + 2 : NULL;
	} else {
		char *colon = strchr(h, ':');
		if (colon && strchr(colon + 1, ':')) {
			if (inet_pton(AF_INET6, h, &a6) != 1) {
				snprintf(
				    why, whysz,
				    "'%.200s' is not HOST:PORT (an IPv6 address goes in brackets: "
				    "[::1]:9092)",
				    e);
				return -1;
			}
			return 0; /* a bare IPv6 address: librdkafka's default port */
		}
		if (colon) {
			*colon = 0;
			port = colon + 1;
		}
		if (!*h) {
			snprintf(why, whysz, "'%.200s' has no host", e);
			return -1;
		}
		for (char *c = h; *c; c++)
			if (!isalnum((unsigned char)*c) && *c != '.' && *c != '-' && *c != '_') {
				snprintf(why, whysz, "'%.200s': '%c' cannot be in a host name", e,
					 *c);
				return -1;
			}
	}
	if (port) {
		char *end = NULL;
		long n = *port && isdigit((unsigned char)*port) ? strtol(port, &end, 10) : -1;
		if (n < 1 || n > 65535 || !end || *end) {
			snprintf(why, whysz,
				 "'%.200s': port '%.64s' is not a number from 1 to 65535", e, port);
			return -1;
		}
	}
	return 0;
}

/* The comma-separated --brokers list: at least one entry, each one that
 * librdkafka could use (it would otherwise retry a typo until
 * --startup-timeout). Empty entries are skipped, as librdkafka does. */
static int check_brokers(const char *list, char *err, size_t errsz)
{
	size_t n = 0;
	const char *p = list;
	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		while (len && isspace((unsigned char)*p)) {
			p++;
			len--;
		}
		while (len && isspace((unsigned char)p[len - 1]))
			len--;
		if (len) {
			char e[512], why[700];
			if (len >= sizeof(e)) {
				snprintf(err, errsz,
					 "--brokers: an entry of %zu characters is too long", len);
				return -1;
			}
			memcpy(e, p, len);
			e[len] = 0;
			if (check_broker(e, why, sizeof(why)) != 0) {
				snprintf(err, errsz, "--brokers: %s", why);
				return -1;
			}
			n++;
		}
		if (!end)
			break;
		p = end + 1;
	}
	if (!n) {
		snprintf(err, errsz, "--brokers '%s' names no broker", list);
		return -1;
	}
	return 0;
}

static int seconds(const dtk_opts *o, const char *name, long def, long max, int64_t *ms,
		   char *err, size_t errsz)
{
	long v;
	if (dtk_opts_int(o, name, def, 1, max, &v, err, errsz) != 0)
		return -1;
	*ms = (int64_t)v * 1000;
	return 0;
}

int main(int argc, char **argv)
{
	dtk_opts o;
	char err[2048];
	int rc = DTK_EXIT_USAGE;
	dtk_worker_settings s;
	memset(&s, 0, sizeof(s));
	int started = dtk_opts_start(&o, specs, NSPECS, argc, argv, "dtk-worker", usage);
	if (started >= 0) {
		rc = started;
		goto out;
	}
	const char *fmt = dtk_opts_str(&o, "log-format", "json");
	if (strcmp(fmt, "json") != 0 && strcmp(fmt, "text") != 0) {
		fprintf(stderr, "dtk-worker: --log-format must be json or text, got '%s'\n", fmt);
		goto out;
	}
	const char *lvl = dtk_opts_str(&o, "log-level", "info");
	static const char *const levels[] = {"debug", "info", "warn", "error"};
	int level = -1;
	for (int i = 0; i < 4; i++)
		if (strcmp(lvl, levels[i]) == 0)
			level = i;
	if (level < 0) {
		fprintf(stderr, "dtk-worker: --log-level must be debug, info, warn or error\n");
		goto out;
	}
	dtk_wlog_setup(strcmp(fmt, "json") == 0, (dtk_wlog_level)level);
	s.kafka.brokers = dtk_opts_str(&o, "brokers", NULL);
	if (!s.kafka.brokers || !*s.kafka.brokers) {
		fprintf(stderr, "dtk-worker: --brokers is required (or DTK_KAFKA_BROKERS)\n");
		goto out;
	}
	/* a malformed address or Redis URL is a setting error (exit 2) at once,
	 * not a broker or Redis that does not answer within --startup-timeout */
	if (check_brokers(s.kafka.brokers, err, sizeof(err)) != 0) {
		fprintf(stderr, "dtk-worker: %s\n", err);
		goto out;
	}
	s.group = dtk_opts_str(&o, "group", "dtk-workers");
	s.topic = dtk_opts_str(&o, "topic", "dtk.check-requests");
	s.results_topic = dtk_opts_str(&o, "results-topic", "dtk.check-results");
	s.dlq_topic = dtk_opts_str(&o, "dlq-topic", "dtk.check-requests.dlq");
	s.redis_url = dtk_opts_str(&o, "redis", NULL);
	s.storage_url = dtk_opts_str(&o, "storage", NULL);
	if (s.redis_url && !*s.redis_url)
		s.redis_url = NULL;
	if (s.storage_url && !*s.storage_url)
		s.storage_url = NULL;
	dtk_redis_url ru;
	if (s.redis_url && dtk_redis_url_parse(s.redis_url, &ru, err, sizeof(err)) != 0) {
		fprintf(stderr, "dtk-worker: --redis: %s\n", err);
		goto out;
	}
	long concurrency, max_bytes, max_conn, metrics_port;
	if (dtk_opts_int(&o, "concurrency", 4, 1, 256, &concurrency, err, sizeof(err)) != 0 ||
	    dtk_opts_int(&o, "max-request-bytes", (long)(1 << 20), 1024, 16L << 20, &max_bytes,
			 err, sizeof(err)) != 0 ||
	    dtk_opts_int(&o, "default-max-connections", 5, 1, 100000, &max_conn, err,
			 sizeof(err)) != 0 ||
	    dtk_opts_int(&o, "metrics-port", 0, 1, 65535, &metrics_port, err, sizeof(err)) != 0 ||
	    seconds(&o, "drain-timeout", 30, 86400, &s.drain_timeout_ms, err, sizeof(err)) != 0 ||
	    seconds(&o, "startup-timeout", 60, 86400, &s.startup_timeout_ms, err, sizeof(err)) !=
		    0) {
		fprintf(stderr, "dtk-worker: %s\n", err);
		goto out;
	}
	s.concurrency = (size_t)concurrency;
	s.default_max_connections = (int)max_conn;
	s.limiter_fail_open = dtk_opts_on(&o, "limiter-fail-open");
	s.max_request_bytes = (size_t)max_bytes;
	s.allow_unsigned = dtk_opts_on(&o, "allow-unsigned");
	s.signing_keys = getenv("DTK_SIGNING_KEYS");
	if (!s.signing_keys || !*s.signing_keys)
		s.signing_keys = getenv("DTK_SIGNING_KEY");
	if (s.signing_keys && !*s.signing_keys)
		s.signing_keys = NULL;

	const dtk_opt_value *allow = dtk_opts_get(&o, "allow-env");
	if (allow->n) {
		for (size_t i = 0; i < allow->n; i++) {
			const char *p = allow->list[i];
			/* a prefix of "DTK_" (or "") would expand the worker's own settings */
			if (strncmp(p, "DTK_", strlen(p) < 4 ? strlen(p) : 4) == 0) {
				fprintf(stderr,
					"dtk-worker: --allow-env '%s' would let configs read the "
					"worker's DTK_* settings\n",
					p);
				goto out;
			}
		}
		s.allow_env = (const char *const *)allow->list;
		s.n_allow_env = allow->n;
	} else {
		s.allow_env = default_allow_env;
		s.n_allow_env = sizeof(default_allow_env) / sizeof(default_allow_env[0]);
	}

	const dtk_opt_value *kp = dtk_opts_get(&o, "kafka-prop");
	const char *reserved = reserved_prop(kp);
	if (reserved) {
		fprintf(stderr, "dtk-worker: --kafka-prop %s is set by the worker itself%s\n",
			reserved,
			strcmp(reserved, "enable.auto.offset.store") == 0
				? " (offsets are stored only after a result was delivered)"
				: " (use --brokers / --group)");
		goto out;
	}
	/* flags beat DTK_KAFKA_PROP_*, which beat the file; a --kafka-prop flag
	 * replaces the file's list, as every flag does */
	if (kp->set)
		dtk_kafka_settings_user_props(&s.kafka, (const char *const *)kp->list, kp->n,
					      kp->origin);
	/* a property librdkafka refuses is a setting error, said before the
	 * worker starts (worker.c builds the real confs once it has its id) */
	rd_kafka_conf_t *probe = dtk_kafka_conf_new(&s.kafka, NULL, 0, NULL, 0, err, sizeof(err));
	if (!probe) {
		fprintf(stderr, "dtk-worker: %s\n", err);
		goto out;
	}
	rd_kafka_conf_destroy(probe);
	s.metrics_port = (int)metrics_port;

	dtk_worker_signals_install();
	rc = dtk_worker_run(&s);
out:
	dtk_opts_free(&o);
	return rc;
}
