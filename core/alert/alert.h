/* Alert decisions and delivery for one check (detection.md "Status and
 * alert decision"): conditions, cooldown, consecutive counts, recovery and
 * error notices, with their state in a dtk_state. */
#ifndef DTK_ALERT_ALERT_H
#define DTK_ALERT_ALERT_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "detect/detector.h"
#include "store/state.h"
#include "util/value.h"

typedef struct dtk_alert_ctx {
	const dtk_config *cfg;
	int64_t execution_time;
	const char *status; /* "ok", "anomaly", "error" */
	const dtk_detection *det;
	size_t ndet;
	const dtk_value *vars;	    /* template variables (message.h) */
	const dtk_value *result;    /* the result object so far (webhook payloads) */
	const char *error_stage;    /* first error, when status is "error" */
	const char *error_message;  /* masked */
	dtk_state *state;	    /* where cooldowns and counts live */
	int64_t now;		    /* wall clock, seconds (state expiry) */
	int64_t deadline_ms;	    /* deliveries give up after this (wall clock) */
	const char *owner;	    /* who claims alerts: worker-id:request-id, or a
				       process-unique name for dtk run */
} dtk_alert_ctx;

/* Decides and delivers for every alerter of ctx->cfg, appending one object
 * per alerter to alerts (a list: alerter, type, sent, reason,
 * suppressed_by, error) and setting summary's sent / reason /
 * suppressed_by. Returns the number of messages sent. */
int dtk_alert_process(const dtk_alert_ctx *ctx, dtk_value *alerts, dtk_value *summary);

/* "Anomaly detected by detector <id>: score=<s>" or "Anomalies detected by
 * N detectors (ids): primary_score=<s>"; NULL when nothing is anomalous.
 * malloc'd, owned by the caller. */
char *dtk_alert_reason(const dtk_detection *det, size_t ndet);

#endif
