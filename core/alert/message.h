/* Alert messages: the template variables of detection.md and the default
 * texts for anomalies, missing and stale data, recoveries and errors. */
#ifndef DTK_ALERT_MESSAGE_H
#define DTK_ALERT_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "detect/detector.h"
#include "util/value.h"

/* One detection record as a map (detection.md), owned by the caller; the
 * form results and templates share. NULL when out of memory. */
dtk_value *dtk_message_detection(const dtk_detection *d);

/* The template variables for a check; a map owned by the caller. primary
 * is the index of the primary detection, or -1. */
dtk_value *dtk_message_vars(const dtk_config *cfg, int64_t execution_time, int64_t point_ts,
			    double value, int is_missing, const char *status,
			    const dtk_detection *det, size_t ndet, int primary);

/* The default message of kind ("anomaly", "missing", "stale", "recovery",
 * "error") for detection d (NULL for recovery and error). bold is "**" or
 * "*". extra is the error stage and message for "error". malloc'd, owned by
 * the caller. */
char *dtk_message_default(const char *kind, const dtk_config *cfg, const dtk_detection *d,
			  int64_t point_ts, double value, int is_missing, const char *bold,
			  const char *error_stage, const char *error_message);

#endif
