#include "util/params.h"

#include <math.h>
#include <stdio.h>

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
