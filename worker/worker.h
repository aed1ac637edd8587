/* dtk-worker's engine (fleet.md "Worker"): consume check requests from
 * Kafka in a consumer group, run them on a thread pool, publish one result
 * per request and store a request's offset only once its result was
 * delivered. Its Kafka client configurations come from libdtk-fleet
 * (core/fleet/kafka.h). */
#ifndef DTK_WORKER_WORKER_H
#define DTK_WORKER_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "kafka.h"

/* Everything borrowed; resolved from flags, environment and file by
 * main.c. */
typedef struct dtk_worker_settings {
	/* the brokers and the user's librdkafka properties (file, environment,
	 * flags); client_id is not read: each client names itself */
	dtk_kafka_settings kafka;
	const char *group;
	const char *topic;
	const char *results_topic;
	const char *dlq_topic;
	size_t concurrency;
	const char *redis_url;	 /* NULL = alert state in $DTK_STATE_DIR */
	const char *storage_url; /* default storage; NULL = refuse configs needing it */
	int64_t drain_timeout_ms;
	int64_t startup_timeout_ms;
	size_t max_request_bytes;
	int allow_unsigned;
	const char *signing_keys;     /* DTK_SIGNING_KEYS (or DTK_SIGNING_KEY); NULL = none */
	const char *const *allow_env; /* variable name prefixes configs may expand */
	size_t n_allow_env;
	int default_max_connections; /* sources naming no max_connections */
	int limiter_fail_open;	     /* Redis unreachable: run checks unlimited */
	int metrics_port;	     /* serve /metrics, /healthz, /readyz; 0 = none */
} dtk_worker_settings;

/* Installs the SIGTERM/SIGINT handlers: the first signal starts a drain,
 * the second exits at once (status 1). Call before any thread starts. */
void dtk_worker_signals_install(void);

/* Runs the worker until a signal drained it (returns 0), a librdkafka
 * property is refused (2, message on the log), or a fatal runtime error
 * (1: no broker or Redis within the startup timeout, a fatal librdkafka
 * error). */
int dtk_worker_run(const dtk_worker_settings *s);

#endif
