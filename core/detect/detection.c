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

static const dtk_value *param_get(const dtk_value *params, const char *key)
{
	const dtk_value *v = params ? dtk_value_map_get(params, key) : NULL;
	return v && v->type != DTK_V_NULL ? v : NULL;
}

int dtk_param_number(const dtk_value *params, const char *key, double def, double *out,
		     char *errstr, size_t errstr_size)
{
	const dtk_value *v = param_get(params, key);
	*out = def;
	if (!v)
		return 0;
	if ((v->type != DTK_V_INT && v->type != DTK_V_FLOAT) || !dtk_value_number(v, out) ||
	    !isfinite(*out)) {
		snprintf(errstr, errstr_size, "%s: must be a finite number, got %s", key,
			 dtk_value_type_name(v));
		return -1;
	}
	return 0;
}

int dtk_param_bool(const dtk_value *params, const char *key, int def, int *out, char *errstr,
		   size_t errstr_size)
{
	const dtk_value *v = param_get(params, key);
	*out = def;
	if (!v)
		return 0;
	if (v->type != DTK_V_BOOL) {
		snprintf(errstr, errstr_size, "%s: must be true or false, got %s", key,
			 dtk_value_type_name(v));
		return -1;
	}
	*out = v->u.b != 0;
	return 0;
}

int dtk_param_int(const dtk_value *params, const char *key, int64_t def, int64_t *out,
		  char *errstr, size_t errstr_size)
{
	const dtk_value *v = param_get(params, key);
	*out = def;
	if (!v)
		return 0;
	if (v->type == DTK_V_INT) {
		*out = v->u.i;
		return 0;
	}
	if (v->type == DTK_V_FLOAT && v->u.f == floor(v->u.f) && fabs(v->u.f) < 9e15) {
		*out = (int64_t)v->u.f;
		return 0;
	}
	snprintf(errstr, errstr_size, "%s: must be an integer, got %s", key, dtk_value_type_name(v));
	return -1;
}

dtk_value *dtk_param_copy_or(const dtk_value *params, const char *key, dtk_value *def)
{
	const dtk_value *v = param_get(params, key);
	if (v) {
		dtk_value_free(&def);
		return dtk_value_copy(v);
	}
	return def ? def : dtk_value_null();
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
