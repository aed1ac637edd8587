/* threshold: compares the value, or its percent change from a fixed
 * baseline, with static limits (detection.md "threshold"). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/common.h"
#include "detect/detector.h"
#include "util/pyfmt.h"

typedef enum th_op {
	TH_GREATER_THAN,
	TH_GREATER_EQUAL,
	TH_LESS_THAN,
	TH_LESS_EQUAL,
	TH_EQUALS,
	TH_NOT_EQUALS,
	TH_BETWEEN,
	TH_OUTSIDE,
} th_op;

static const char *const th_op_names[] = {
	[TH_GREATER_THAN] = "greater_than", [TH_GREATER_EQUAL] = "greater_equal",
	[TH_LESS_THAN] = "less_than",	    [TH_LESS_EQUAL] = "less_equal",
	[TH_EQUALS] = "equals",		    [TH_NOT_EQUALS] = "not_equals",
	[TH_BETWEEN] = "between",	    [TH_OUTSIDE] = "outside",
};
#define TH_N_OPS (sizeof(th_op_names) / sizeof(th_op_names[0]))

typedef struct th_compiled {
	th_op op;
	double threshold, upper, baseline, tolerance;
	int has_upper, percent;
	dtk_value *threshold_v, *upper_v, *baseline_v; /* as configured, for metadata */
} th_compiled;

static const char *const th_params[] = {"threshold", "operator", "upper_threshold", "percent",
				       "baseline",  "tolerance", NULL};

/* A number as Python's str() prints it: 90 or 90.0. */
static void py_number(const dtk_value *v, double f, char *out, size_t outsz)
{
	if (v && v->type == DTK_V_INT)
		snprintf(out, outsz, "%lld", (long long)v->u.i);
	else
		dtk_pyfmt_float(f, out, outsz);
}

static void th_destroy(void *compiled)
{
	th_compiled *c = compiled;
	if (!c)
		return;
	dtk_value_free(&c->threshold_v);
	dtk_value_free(&c->upper_v);
	dtk_value_free(&c->baseline_v);
	free(c);
}

static int th_compile(const dtk_value *params, const dtk_detector_env *env, void **compiled,
		      char *errstr, size_t errstr_size)
{
	int rc = -1;
	th_compiled *c = calloc(1, sizeof(*c));
	const dtk_value *v;

	if (!c) {
		snprintf(errstr, errstr_size, "params: out of memory");
		goto out;
	}
	v = params ? dtk_value_map_get(params, "threshold") : NULL;
	if (!v || v->type == DTK_V_NULL) {
		snprintf(errstr, errstr_size,
			 "threshold: required: the value (or percent change) to compare against");
		goto out;
	}
	if (dtk_param_number(params, "threshold", 0, &c->threshold, errstr, errstr_size) != 0)
		goto out;
	v = params ? dtk_value_map_get(params, "operator") : NULL;
	c->op = TH_GREATER_THAN;
	if (v && v->type != DTK_V_NULL) {
		const char *name = dtk_value_cstr(v);
		size_t i = 0;
		while (name && i < TH_N_OPS && strcmp(th_op_names[i], name) != 0)
			i++;
		if (!name || i == TH_N_OPS) {
			snprintf(errstr, errstr_size,
				 "operator: Invalid operator '%s'. Must be one of: between, equals, "
				 "greater_equal, greater_than, less_equal, less_than, not_equals, "
				 "outside",
				 name ? name : dtk_value_type_name(v));
			goto out;
		}
		c->op = (th_op)i;
	}
	v = params ? dtk_value_map_get(params, "upper_threshold") : NULL;
	c->has_upper = v && v->type != DTK_V_NULL;
	if (dtk_param_number(params, "upper_threshold", NAN, &c->upper, errstr, errstr_size) != 0)
		goto out;
	if (c->op == TH_BETWEEN || c->op == TH_OUTSIDE) {
		if (!c->has_upper) {
			snprintf(errstr, errstr_size,
				 "upper_threshold: Operator '%s' requires 'upper_threshold' parameter",
				 th_op_names[c->op]);
			goto out;
		}
		if (c->upper < c->threshold) {
			char a[40], b[40];
			py_number(v, c->upper, a, sizeof(a));
			py_number(dtk_value_map_get(params, "threshold"), c->threshold, b, sizeof(b));
			snprintf(errstr, errstr_size,
				 "upper_threshold: upper_threshold (%s) must be >= threshold (%s)", a,
				 b);
			goto out;
		}
	}
	if (dtk_param_bool(params, "percent", 0, &c->percent, errstr, errstr_size) != 0)
		goto out;
	if (dtk_param_number(params, "baseline", NAN, &c->baseline, errstr, errstr_size) != 0)
		goto out;
	if (c->percent) {
		if (isnan(c->baseline)) {
			snprintf(errstr, errstr_size,
				 "baseline: Percentage mode (percent: true) requires 'baseline' "
				 "parameter");
			goto out;
		}
		if (c->baseline == 0) {
			snprintf(errstr, errstr_size,
				 "baseline: Baseline cannot be zero for percentage calculation");
			goto out;
		}
	}
	if (dtk_param_number(params, "tolerance", 0.001, &c->tolerance, errstr, errstr_size) != 0)
		goto out;
	if (c->tolerance < 0) {
		snprintf(errstr, errstr_size, "tolerance: must be >= 0");
		goto out;
	}
	c->threshold_v = dtk_param_copy_or(params, "threshold", NULL);
	c->upper_v = dtk_param_copy_or(params, "upper_threshold", NULL);
	c->baseline_v = dtk_param_copy_or(params, "baseline", NULL);
	if (!c->threshold_v || !c->upper_v || !c->baseline_v) {
		snprintf(errstr, errstr_size, "params: out of memory");
		goto out;
	}
	*compiled = c;
	c = NULL;
	rc = 0;
out:
	th_destroy(c);
	return rc;
}

static void th_window(const void *compiled, int64_t *seconds, int64_t *points)
{
	*seconds = 0;
	*points = 0;
}

static void th_run(const void *compiled, const dtk_detect_input *in, dtk_detection *out)
{
	const th_compiled *c = compiled;
	double t = c->threshold, u = c->upper;

	dtk_meta_str(out, "detector", "threshold");
	dtk_meta_set(out, "threshold", dtk_value_copy(c->threshold_v));
	dtk_meta_str(out, "operator", th_op_names[c->op]);
	dtk_meta_set(out, "upper_threshold", dtk_value_copy(c->upper_v));
	dtk_meta_bool(out, "percent_mode", c->percent);
	dtk_meta_set(out, "baseline", dtk_value_copy(c->baseline_v));
	if (in->is_missing) {
		dtk_detection_skip(out, "Cannot perform threshold detection on missing data");
		return;
	}
	double cv = c->percent ? (in->value - c->baseline) / fabs(c->baseline) * 100 : in->value;
	dtk_meta_num(out, "comparison_value", cv);

	int anomaly = 0;
	switch (c->op) {
	case TH_GREATER_THAN:
		anomaly = cv > t;
		break;
	case TH_GREATER_EQUAL:
		anomaly = cv >= t;
		break;
	case TH_LESS_THAN:
		anomaly = cv < t;
		break;
	case TH_LESS_EQUAL:
		anomaly = cv <= t;
		break;
	case TH_EQUALS:
		anomaly = fabs(cv - t) <= c->tolerance;
		break;
	case TH_NOT_EQUALS:
		anomaly = fabs(cv - t) > c->tolerance;
		break;
	case TH_BETWEEN:
		anomaly = t <= cv && cv <= u;
		break;
	case TH_OUTSIDE:
		anomaly = cv < t || cv > u;
		break;
	}
	out->is_anomaly = anomaly;

	int range = c->op == TH_BETWEEN || c->op == TH_OUTSIDE;
	if (range)
		out->score = cv < t ? fabs(cv - t) : cv > u ? fabs(cv - u) : 0.0;
	else
		out->score = fabs(cv - t);

	switch (c->op) {
	case TH_GREATER_THAN:
	case TH_GREATER_EQUAL:
		out->direction = anomaly ? "up" : NULL;
		out->lower_bound = t;
		break;
	case TH_LESS_THAN:
	case TH_LESS_EQUAL:
		out->direction = anomaly ? "down" : NULL;
		out->upper_bound = t;
		break;
	case TH_OUTSIDE:
		out->direction = cv < t ? "down" : cv > u ? "up" : NULL;
		/* fallthrough */
	case TH_BETWEEN:
		out->lower_bound = t;
		out->upper_bound = u;
		break;
	case TH_EQUALS:
		out->lower_bound = t - c->tolerance;
		out->upper_bound = t + c->tolerance;
		break;
	case TH_NOT_EQUALS:
		break;
	}

	if (anomaly) {
		if (range)
			out->percent_deviation = cv < t   ? (t != 0 ? (cv - t) / fabs(t) * 100 : NAN)
						 : cv > u ? (u != 0 ? (cv - u) / fabs(u) * 100 : NAN)
							  : 0.0;
		else if (t != 0)
			out->percent_deviation = (cv - t) / fabs(t) * 100;
		else
			out->percent_deviation = cv == 0 ? 0.0 : 100.0;
	}
}

const dtk_detector_type dtk_detector_threshold = {
	.name = "threshold",
	.summary = "value (or percent change from a baseline) against static limits",
	.compile = th_compile,
	.destroy = th_destroy,
	.window = th_window,
	.run = th_run,
	.id_defaults_json = "{\"operator\": \"greater_than\", \"percent\": false, \"tolerance\": 0.001}",
	.known_params = th_params,
};
