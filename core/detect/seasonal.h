/* Seasonal filtering of a baseline (detection.md "Seasonality"): each
 * point's features are its context columns, falling back to calendar
 * features of its timestamp in the metric's time zone. Private to
 * core/detect. A compiled filter is immutable and thread-safe to use. */
#ifndef DTK_DETECT_SEASONAL_H
#define DTK_DETECT_SEASONAL_H

#include <stddef.h>
#include <stdint.h>

#include "detect/detector.h"

typedef enum dtk_calendar_feature {
	DTK_CAL_NONE = -1,
	DTK_CAL_HOUR_OF_DAY,
	DTK_CAL_DAY_OF_WEEK,
	DTK_CAL_DAY_OF_MONTH,
	DTK_CAL_MONTH,
	DTK_CAL_MINUTE_OF_HOUR,
	DTK_CAL_IS_WEEKEND,
} dtk_calendar_feature;

typedef struct dtk_seasonal {
	size_t n;
	char **names;	   /* owned */
	int *calendar;	   /* dtk_calendar_feature per name */
	int combined;	   /* all features must match, not any */
	dtk_value *listed; /* owned list of the names, for metadata */
} dtk_seasonal;

/* The calendar feature called name, or DTK_CAL_NONE. */
dtk_calendar_feature dtk_calendar_feature_find(const char *name);

/* Reads seasonal_features (borrowed; NULL = none) into s, which the caller
 * releases with dtk_seasonal_release even on failure. Appends warnings to
 * env->warnings. Returns 0, or -1 with errstr "seasonal_features: ...". */
int dtk_seasonal_compile(dtk_seasonal *s, const dtk_value *features, int combined,
			 const dtk_detector_env *env, char *errstr, size_t errstr_size);
void dtk_seasonal_release(dtk_seasonal *s);

/* Copies into x the values of history points [lo, hi) whose features match
 * the current point's (any in union mode, all in combined mode). Returns
 * the count, or -1 with a malloc'd reason in *why when the current point
 * lacks a feature. */
long dtk_seasonal_filter(const dtk_seasonal *s, const dtk_detect_input *in, size_t lo, size_t hi,
			 double *x, char **why);

/* "hour_of_day=0, day_of_week=3" for the current point, malloc'd. */
char *dtk_seasonal_describe(const dtk_seasonal *s, const dtk_detect_input *in);

#endif
