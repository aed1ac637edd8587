/* The alerter interface: a channel that delivers one rendered message. A
 * new alerter is one file in core/alert/ plus one line in registry.c.
 * A compiled alerter is immutable and may be used from several threads. */
#ifndef DTK_ALERT_ALERTER_H
#define DTK_ALERT_ALERTER_H

#include <stddef.h>
#include <stdint.h>

#include "util/value.h"

/* What one delivery carries. Borrowed for the duration of send(). */
typedef struct dtk_alert_message {
	const char *kind;	  /* "anomaly", "missing", "stale", "recovery", "error" */
	const char *text;	  /* the rendered message (template or default) */
	const dtk_value *result;  /* the check result object (webhook payloads) */
	const dtk_value *vars;	  /* the template variables (metric_name, tags, metadata, ...) */
	int bold_single;	  /* 1 when the channel uses *bold* (Slack) */
	int64_t execution_time;	  /* aligned, UTC seconds */
	int64_t interval;	  /* the metric's interval, seconds */
	int64_t now_ms;		  /* wall clock at delivery */
	int64_t deadline_ms;	  /* give up retrying after this (wall clock, ms) */
	/* Secrets to mask in any error text (values from ${VAR}, secret keys);
	 * a list of strings, borrowed, may be NULL. */
	const dtk_value *secrets;
} dtk_alert_message;

typedef struct dtk_alerter_type {
	const char *name;
	const char *summary; /* one line for `dtk list-alerters` */
	/* 1 when the default message uses *single* asterisks (Slack). */
	int bold_single;
	/* Checks params without connecting; compiled form owned by the caller
	 * (free with destroy). On error -1 and errstr "KEY: message". */
	int (*compile)(const dtk_value *params, dtk_value *warnings, void **compiled,
		       char *errstr, size_t errstr_size);
	void (*destroy)(void *compiled);
	/* Delivers msg; -1 with errstr (secrets masked) on failure. */
	int (*send)(const void *compiled, const dtk_alert_message *msg, char *errstr,
		    size_t errstr_size);
	const char *const *known_params;
	/* The delivery URL whose rate `rate_per_second` (default 1) limits, or
	 * NULL for no limit (console). Borrowed from compiled. */
	const char *(*rate_key)(const void *compiled);
	/* 1 when cooldown does not apply: the channel wants every anomalous
	 * check (Alertmanager re-posts while firing, resolves on recovery). */
	int repost_while_firing;
} dtk_alerter_type;

const dtk_alerter_type *dtk_alerter_find(const char *name);
const dtk_alerter_type *const *dtk_alerter_types(void);

#endif
