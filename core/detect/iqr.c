/* iqr (beyond DetectK): Tukey fences [q1 - k·iqr, q3 + k·iqr] over the
 * weighted quartiles of the same baseline zscore and mad use. The score is
 * the distance beyond the nearer quartile in iqr units, so it is compared
 * with k the way the others' scores compare with n_sigma. */
#include <math.h>

#include "detect/common.h"
#include "detect/statdet.h"

static const char *const iqr_params[] = DTK_STATDET_PARAMS("threshold");

static const dtk_statdet_spec iqr_spec = {"iqr", "IQR", "threshold", 1.5};

static int iqr_compile(const dtk_value *params, const dtk_detector_env *env, void **compiled,
		       char *errstr, size_t errstr_size)
{
	return dtk_statdet_compile(&iqr_spec, params, env, compiled, errstr, errstr_size);
}

static void iqr_run(const void *compiled, const dtk_detect_input *in, dtk_detection *out)
{
	const dtk_statdet *sd = compiled;
	dtk_baseline b;
	if (dtk_statdet_baseline(sd, in, 1, &b, out) != 0)
		goto out;
	static const double levels[3] = {0.25, 0.5, 0.75};
	double q[3];
	dtk_stats_quantiles(b.sorted, b.n, levels, 3, q);
	double q1 = q[0], median = q[1], q3 = q[2], v = in->value;
	double iqr = q3 - q1;
	if (iqr <= dtk_statdet_zero_eps(median))
		iqr = 0.0;
	out->lower_bound = q1 - sd->sigma * iqr;
	out->upper_bound = q3 + sd->sigma * iqr;
	double beyond = v > q3 ? v - q3 : v < q1 ? q1 - v : 0.0;
	if (iqr > 0) {
		out->score = beyond / iqr;
		out->is_anomaly = v < out->lower_bound || v > out->upper_bound;
	} else {
		out->is_anomaly = beyond > 0;
		out->score = out->is_anomaly ? INFINITY : 0.0;
	}
	if (out->is_anomaly)
		out->direction = v > q3 ? "up" : "down";
	if (median != 0)
		out->percent_deviation = (v - median) / fabs(median) * 100;
	dtk_meta_num(out, "q1", q1);
	dtk_meta_num(out, "q3", q3);
	dtk_meta_num(out, "iqr", iqr);
	dtk_meta_num(out, "median", median);
	dtk_meta_num(out, "center", median);
	dtk_meta_num(out, "spread", iqr);
out:
	dtk_baseline_release(&b);
}

const dtk_detector_type dtk_detector_iqr = {
	.name = "iqr",
	.summary = "weighted quartiles with Tukey fences q1 - k*iqr, q3 + k*iqr",
	.compile = iqr_compile,
	.destroy = dtk_statdet_destroy,
	.window = dtk_statdet_window,
	.run = iqr_run,
	.known_params = iqr_params,
	.id_defaults_json = "{}",
};
