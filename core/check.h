/* The check pipeline as one library call: collect -> store -> detect ->
 * alert, for one metric at one execution time. `dtk run`, `run-tagged`,
 * the dispatcher's in-process mode and the worker all call this.
 *
 * Thread safety: dtk_check_run may run on many threads at once over the
 * same (immutable) dtk_config, each thread with its own dtk_session. */
#ifndef DTK_CHECK_H
#define DTK_CHECK_H

#include <stdint.h>

#include "config/config.h"
#include "util/clock.h"
#include "util/value.h"

/* Per-thread connections reused across checks: storage handles by
 * location and the local alert-state database. */
typedef struct dtk_session dtk_session;

/* A new session owned by the caller; NULL when out of memory. */
dtk_session *dtk_session_new(void);
/* Closes every connection and NULLs *s. */
void dtk_session_free(dtk_session **s);

typedef struct dtk_check_options {
	int has_time;	   /* requested_time given; else now */
	int64_t requested_time; /* UTC seconds */
	int no_align;	   /* use the time as given */
	int no_store;	   /* do not write datapoints, detections or state */
	int no_alerts;	   /* decide nothing, deliver nothing */
	const char *request_id;	 /* NULL for dtk run */
	const char *dispatch_id; /* NULL for dtk run */
	const dtk_value *worker; /* result's worker object; borrowed; NULL = null */
	int64_t queued_ms;
	int64_t deadline_ms; /* wall clock; 0 = start + schedule.timeout */
	const char *state_path; /* local alert-state db; NULL = $DTK_STATE_DIR/dtk.db */
	const char *redis_url;	/* alert state in Redis (shared by processes) instead */
	const char *owner;	/* alert claims and limiter leases: worker-id:request-id;
				   NULL = pid-based */
	struct dtk_limiter *limiter; /* connection limits per source (fleet.md); NULL = none */
	int default_max_connections; /* when the source names none (0 = 5) */
} dtk_check_options;

typedef struct dtk_check_result {
	const char *status; /* "ok", "anomaly" or "error" (static) */
	dtk_value *json;    /* the check result v1 object (fleet.md), owned */
	int alert_sent;
} dtk_check_result;

/* Runs one check of cfg (built in strict mode). session may be NULL (a
 * temporary one is used). Always returns a result owned by the caller in
 * *out (failures become status "error" with errors[]); returns -1 only when
 * out of memory. */
int dtk_check_run(const dtk_config *cfg, const dtk_check_options *opt, dtk_session *session,
		  dtk_check_result **out);

void dtk_check_result_free(dtk_check_result **r);

/* RFC 3339 UTC text of t seconds (+ms when with_ms): "2024-11-02T14:30:00Z". */
void dtk_format_time(int64_t t_ms, int with_ms, char *out, size_t outsz);

#endif
