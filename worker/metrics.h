/* dtk-worker's --metrics-port (fleet.md "Worker"): a small HTTP/1.1
 * server on its own thread serving Prometheus text (format 0.0.4) at
 * /metrics, liveness at /healthz and readiness at /readyz.
 *
 * Thread safety: every dtk_metrics_* call may come from any thread; the
 * counters are atomics or behind one mutex. Every call accepts a NULL
 * handle and then does nothing, so the worker calls them unconditionally
 * whether or not --metrics-port was given. */
#ifndef DTK_WORKER_METRICS_H
#define DTK_WORKER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "util/value.h"

typedef struct dtk_metrics dtk_metrics;

/* Binds 0.0.0.0:port (so a container's probes reach it), listens and
 * starts the serving thread. topic is the request topic (consumer lag is
 * reported for it); redis_url, when not NULL, makes /readyz PING Redis.
 * Both are copied. Returns a handle owned by the caller
 * (dtk_metrics_free), or NULL with errstr naming the port (in use, no
 * permission) or the failure. */
dtk_metrics *dtk_metrics_start(int port, const char *topic, const char *redis_url, char *errstr,
			       size_t errstr_size);

/* Stops the thread, closes the socket and NULLs *m. */
void dtk_metrics_free(dtk_metrics **m);

/* Renders the exposition text into a new NUL-terminated string owned by
 * the caller (free), or NULL when out of memory. Separate from the
 * socket code so it can be read without HTTP. */
char *dtk_metrics_render(dtk_metrics *m);

/* ---- events, counted by the worker ---- */

/* A result about to be published (borrowed): its status, its
 * timings_ms stages and limiter wait (for checks that ran: not expired or
 * rejected ones), and its alerts by type and outcome. */
void dtk_metrics_result(dtk_metrics *m, const dtk_value *result);
/* A request refused to the DLQ with the codec's error name. */
void dtk_metrics_dlq(dtk_metrics *m, const char *error);
/* A result (or DLQ copy) that could not be delivered. */
void dtk_metrics_undelivered(dtk_metrics *m);
/* One turn of the main loop: it polled, in_flight jobs are in the
 * process and assigned partitions of the request topic are ours. */
void dtk_metrics_tick(dtk_metrics *m, size_t in_flight, size_t assigned);
/* A rebalance: an assignment (possibly empty) means the group was joined;
 * an eager revoke means it is being rejoined. */
void dtk_metrics_rebalance(dtk_metrics *m, int assigned, int cooperative);
/* A fatal error: /healthz answers 503 from now on. */
void dtk_metrics_fatal(dtk_metrics *m);
/* librdkafka's statistics JSON (the stats callback's, borrowed). */
void dtk_metrics_kafka_stats(dtk_metrics *m, const char *json, size_t len);

#endif
