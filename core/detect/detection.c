/* The detection record and the helpers detectors share (common.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/common.h"
#include "detect/detector.h"

void dtk_detection_init(dtk_detection *d, const char *id, const char *type)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->detector_id, sizeof(d->detector_id), "%s", id ? id : "");
	d->detector_type = type;
	d->score = NAN;
	d->lower_bound = NAN;
	d->upper_bound = NAN;
	d->percent_deviation = NAN;
}

void dtk_detection_clear(dtk_detection *d)
{
	if (!d)
		return;
	free(d->skipped);
	d->skipped = NULL;
	dtk_value_free(&d->metadata);
}

void dtk_detection_skip(dtk_detection *out, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	free(out->skipped);
	out->skipped = strdup(msg);
	out->is_anomaly = 0;
}

void dtk_meta_set(dtk_detection *out, const char *key, dtk_value *val)
{
	if (!val)
		return;
	if (!out->metadata && !(out->metadata = dtk_value_map())) {
		dtk_value_free(&val);
		return;
	}
	if (dtk_value_map_set(out->metadata, key, val) != 0)
		dtk_value_free(&val);
}

void dtk_meta_num(dtk_detection *out, const char *key, double v)
{
	dtk_meta_set(out, key, isnan(v) ? dtk_value_null() : dtk_value_float(v));
}

void dtk_meta_int(dtk_detection *out, const char *key, int64_t v)
{
	dtk_meta_set(out, key, dtk_value_int(v));
}

void dtk_meta_str(dtk_detection *out, const char *key, const char *s)
{
	dtk_meta_set(out, key, s ? dtk_value_str(s) : dtk_value_null());
}

void dtk_meta_bool(dtk_detection *out, const char *key, int b)
{
	dtk_meta_set(out, key, dtk_value_bool(b));
}
