/* The detector interface. A detector is a pure function of (params, current
 * point, baseline history, context, state): no I/O, no clock, no globals.
 * The pipeline (check.c) does the I/O and hands everything in here.
 *
 * A new detector is one file in core/detect/ plus one line in registry.c. */
#ifndef DTK_DETECT_DETECTOR_H
#define DTK_DETECT_DETECTOR_H

#include <stddef.h>
#include <stdint.h>

#include "util/tz.h"
#include "util/value.h"

/* Baseline candidates, oldest first: stored, non-missing points with a
 * timestamp before the current point's. The pipeline loads a superset
 * covering the widest window of the metric's detectors; each detector cuts
 * its own window and applies its seasonal filter. Borrowed. */
typedef struct dtk_history {
	size_t n;
	const int64_t *ts;		 /* UTC seconds */
	const double *values;		 /* finite */
	const dtk_value *const *context; /* per point: a map of context columns, or NULL;
					    the array itself may be NULL */
} dtk_history;

typedef struct dtk_detect_input {
	int64_t ts; /* current point's timestamp, UTC seconds */
	double value;
	int is_missing;		  /* no rows, NULL, NaN or infinite value */
	const dtk_value *context; /* current point's context columns (map) or NULL */
	const dtk_tz *tz;	  /* the metric's timezone, for calendar features */
	dtk_history history;

	/* missing_data: the pipeline reads these from alert state */
	int collect_failed;	  /* the collection failed (count_errors_as_missing) */
	int64_t prev_missed;	  /* this detector's count at the previous aligned slot */
	int64_t period_finish;	  /* end of the collected period, UTC seconds */
	int has_newest;		  /* newest non-missing stored point exists (this run's included) */
	int64_t newest_ts;	  /* its timestamp */
} dtk_detect_input;

/* One detector's verdict: the detection record of detection.md. */
typedef struct dtk_detection {
	char detector_id[72];
	const char *detector_type; /* static string */
	int is_anomaly;
	double score;		   /* INFINITY allowed; NAN = absent */
	double lower_bound;	   /* NAN = absent */
	double upper_bound;	   /* NAN = absent */
	const char *direction;	   /* static "up", "down", "missing", "stale", or NULL */
	double percent_deviation;  /* NAN = absent */
	char *skipped;		   /* malloc'd reason the detector could not run, or NULL */
	dtk_value *metadata;	   /* owned map with DetectK's key names */
	int64_t missed;		   /* missing_data: consecutive missed slots, to persist */
} dtk_detection;

/* What a detector may know when its params are checked. */
typedef struct dtk_detector_env {
	const char *const *context_columns; /* the collector's context_columns */
	size_t n_context_columns;
	dtk_value *warnings; /* a list to append warning strings to; may be NULL */
} dtk_detector_env;

typedef struct dtk_detector_type {
	const char *name;
	const char *summary; /* one line for `dtk list-detectors` */
	/* Checks params and builds the detector's compiled form, owned by the
	 * caller and released with destroy. On error returns -1 with errstr
	 * "PARAM: message" where PARAM is the params key at fault ("params"
	 * when none is). */
	int (*compile)(const dtk_value *params, const dtk_detector_env *env, void **compiled,
		       char *errstr, size_t errstr_size);
	void (*destroy)(void *compiled);
	/* The history the detector wants: seconds (0 = none) and/or a number
	 * of newest points (0 = none). */
	void (*window)(const void *compiled, int64_t *seconds, int64_t *points);
	/* Fills out (already zeroed, with NAN in the absent doubles and
	 * detector_id set by the caller). Never fails: a detector that cannot
	 * run sets out->skipped. */
	void (*run)(const void *compiled, const dtk_detect_input *in, dtk_detection *out);
	/* The params dropped from the id hash when equal to these (detection.md) */
	const char *id_defaults_json;
	/* NULL-terminated names of the params it reads; others get an
	 * unknown-key warning from `dtk validate`. NULL = not checked. */
	const char *const *known_params;
} dtk_detector_type;

/* Registry (registry.c). NULL when unknown. */
const dtk_detector_type *dtk_detector_find(const char *name);
/* NULL-terminated table, in display order. */
const dtk_detector_type *const *dtk_detector_types(void);

/* Prepares a record: zeroes it, sets the absent doubles to NAN. */
void dtk_detection_init(dtk_detection *d, const char *id, const char *type);
/* Frees what the record owns and re-inits nothing. */
void dtk_detection_clear(dtk_detection *d);

/* The id DetectK derives when `id` is absent: first 8 hex chars of SHA-256
 * over "<type>:" + canonical JSON of params minus defaults. out gets 9
 * bytes. Returns 0, or -1 for an unknown type. */
int dtk_detector_id(const char *type, const dtk_value *params, char out[9]);

#endif
