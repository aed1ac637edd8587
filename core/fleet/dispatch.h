/* The dispatcher's side of the fleet (fleet.md "Dispatcher"): publish
 * check requests with an idempotent producer and wait for every delivery
 * report, then optionally read the workers' results from offsets recorded
 * before publishing.
 *
 * Use: dtk_dispatch_new; dtk_dispatch_create_topics (optional);
 * dtk_dispatch_mark_results (before publishing, to --wait);
 * dtk_dispatch_publish; dtk_dispatch_await; dtk_dispatch_free.
 *
 * Thread safety: a dtk_dispatch is used by one thread at a time. */
#ifndef DTK_FLEET_DISPATCH_H
#define DTK_FLEET_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "kafka.h"
#include "message.h"
#include "util/value.h"

#define DTK_DISPATCH_REQUEST_TOPIC "dtk.check-requests"
#define DTK_DISPATCH_RESULT_TOPIC "dtk.check-results"
#define DTK_DISPATCH_DLQ_TOPIC "dtk.check-requests.dlq"
/* max.message.bytes of the request and DLQ topics, and the producer's limit */
#define DTK_DISPATCH_MAX_MESSAGE_BYTES "16777216"
/* A result larger than this is not read (bounded input). */
#define DTK_DISPATCH_MAX_RESULT_BYTES ((size_t)16 << 20)

typedef struct dtk_dispatch_opts {
	dtk_kafka_settings kafka; /* client_id NULL = "dtk-dispatch" */
	const char *topic;	  /* NULL = DTK_DISPATCH_REQUEST_TOPIC */
	const char *results_topic; /* NULL = DTK_DISPATCH_RESULT_TOPIC */
	const char *dlq_topic;	   /* NULL = DTK_DISPATCH_DLQ_TOPIC */
	const char *source;	   /* ce_source of the requests */
	const char *signing_key;   /* DTK_SIGNING_KEY; NULL or "" = unsigned */
	/* each broker round trip: topic creation, metadata, each offset query
	 * (0 = 10 s) */
	int request_timeout_ms;
} dtk_dispatch_opts;

typedef struct dtk_dispatch dtk_dispatch;

/* Creates the producer (enable.idempotence=true, acks=all, client.id,
 * message.timeout.ms 30 s unless the user sets it). Strings in o are
 * copied. Returns 0 and a handle owned by the caller (dtk_dispatch_free),
 * or -1 with errstr (a bad property). Connecting happens later. */
int dtk_dispatch_new(const dtk_dispatch_opts *o, dtk_dispatch **out, char *errstr,
		     size_t errstr_size);

/* The request topic's name; borrowed from d. */
const char *dtk_dispatch_topic(const dtk_dispatch *d);

/* Closes everything and NULLs *d. NULL is a no-op. */
void dtk_dispatch_free(dtk_dispatch **d);

/* Creates the request topic (partitions, max.message.bytes 16 MiB), the
 * result topic and the DLQ topic (16 MiB) with replication_factor; topics
 * that exist are fine. Returns 0, or -1 with errstr. */
int dtk_dispatch_create_topics(dtk_dispatch *d, int partitions, int replication_factor,
			       char *errstr, size_t errstr_size);

/* Checks that the request topic exists and has leaders (one metadata
 * request bounded by the request timeout), so that a missing topic or an
 * unreachable cluster fails before anything is published. Returns 0, or
 * -1 with errstr. */
int dtk_dispatch_check_topic(dtk_dispatch *d, char *errstr, size_t errstr_size);

/* Records the end offset of every partition of the result topic, each
 * query bounded by its own timer; results at or past them are read by
 * dtk_dispatch_await. Call before publishing. Returns 0, or -1 with errstr
 * (the topic does not exist, a broker did not answer). */
int dtk_dispatch_mark_results(dtk_dispatch *d, char *errstr, size_t errstr_size);

/* One request to publish and what became of it. */
typedef struct dtk_dispatch_msg {
	const dtk_request *req; /* borrowed */
	char error[512];	/* "" when delivered */
	int32_t partition;	/* where it landed, when delivered */
	int64_t offset;
} dtk_dispatch_msg;

/* Encodes, signs (when a signing key is set) and produces every request:
 * key = metric, CloudEvents headers, then waits for every delivery report
 * (flush bounded by message.timeout.ms plus a margin; what is still queued
 * after it is purged and reported as undelivered). Fills msgs[i].error for
 * each one that failed. Returns the number delivered. */
size_t dtk_dispatch_publish(dtk_dispatch *d, dtk_dispatch_msg *msgs, size_t n);

/* Called while waiting: results in so far, of total, and ms left. */
typedef void (*dtk_dispatch_progress)(size_t got, size_t total, int64_t left_ms, void *ctx);

/* Reads the result topic from the offsets of dtk_dispatch_mark_results
 * (assign(), no group membership, nothing committed) and keeps the first
 * result per request id in request_ids whose dispatch_id is dispatch_id;
 * other dispatches, duplicates, and messages that are not result objects
 * are skipped. Stops when every request has a result or timeout_ms passed.
 * results[i] (caller storage, n slots, zeroed first) receives the result
 * of request_ids[i], owned by the caller, or stays NULL (missing).
 * progress may be NULL. Returns the number of results, or -1 with errstr
 * when the consumer cannot be set up (then results are all NULL). */
long dtk_dispatch_await(dtk_dispatch *d, const char *dispatch_id,
			const char *const *request_ids, size_t n, int64_t timeout_ms,
			dtk_value **results, dtk_dispatch_progress progress, void *ctx,
			char *errstr, size_t errstr_size);


/* Paced publishing, for a caller that sets its own rate (bench/fleet/
 * latency.c) instead of handing dtk_dispatch_publish a batch. */

/* Encodes, signs and produces one request as dtk_dispatch_publish does
 * (the same message), without waiting for its delivery report. Until
 * dtk_dispatch_poll serves that report, msg->error says none came yet;
 * the report clears it (and fills partition and offset) or says why the
 * message was not delivered. msg is borrowed and must stay valid until
 * then: poll until nothing is pending before freeing msg or d. Returns 0
 * when librdkafka queued the message, or -1 with msg->error. */
int dtk_dispatch_produce(dtk_dispatch *d, dtk_dispatch_msg *msg);

/* Serves ready delivery reports, waiting at most timeout_ms (0: none) for
 * the first one. Returns how many messages of dtk_dispatch_produce still
 * await theirs. */
size_t dtk_dispatch_poll(dtk_dispatch *d, int timeout_ms);

/* A reader of the result topic as dtk_dispatch_await reads it (from the
 * offsets of dtk_dispatch_mark_results, assign(), nothing committed), for
 * a caller that takes the results as they arrive. Used by one thread. */
typedef struct dtk_dispatch_results dtk_dispatch_results;

/* Opens the reader for the results of dispatch_id (copied). Returns 0 and
 * a reader owned by the caller (dtk_dispatch_results_free, before
 * dtk_dispatch_free(d)), or -1 with errstr (the offsets were not
 * recorded, the consumer cannot be set up). */
int dtk_dispatch_results_open(dtk_dispatch *d, const char *dispatch_id,
			      dtk_dispatch_results **out, char *errstr, size_t errstr_size);

/* Waits at most timeout_ms for the next message. Returns 1 with *result
 * a result object of dispatch_id (request_id, status and metric present;
 * owned by the caller); 0 with *result NULL when none came in time or
 * the message was not one (another dispatch's, not a result; duplicates
 * are not filtered here); -1 with errstr on a consumer error (the reader
 * stays usable). */
int dtk_dispatch_results_poll(dtk_dispatch_results *r, int timeout_ms, dtk_value **result,
			      char *errstr, size_t errstr_size);

/* Closes the reader and NULLs *r. NULL is a no-op. */
void dtk_dispatch_results_free(dtk_dispatch_results **r);

#endif
