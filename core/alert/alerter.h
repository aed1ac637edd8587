/* The alerter interface: a channel that delivers one rendered message. A
 * new alerter is one file in core/alert/ plus one line in registry.c.
 * A compiled alerter is immutable and may be used from several threads. */
#ifndef DTK_ALERT_ALERTER_H
#define DTK_ALERT_ALERTER_H

#include <stddef.h>

#include "util/value.h"

/* What one delivery carries. Borrowed for the duration of send(). */
typedef struct dtk_alert_message {
	const char *kind;	  /* "anomaly", "missing", "stale", "recovery", "error" */
	const char *text;	  /* the rendered message (template or default) */
	const dtk_value *result;  /* the check result object (webhook payloads) */
	const dtk_value *vars;	  /* the template variables */
	int bold_single;	  /* 1 when the channel uses *bold* (Slack) */
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
} dtk_alerter_type;

const dtk_alerter_type *dtk_alerter_find(const char *name);
const dtk_alerter_type *const *dtk_alerter_types(void);

#endif
