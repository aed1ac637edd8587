/* mad: weighted median ± n_sigma · 1.4826 · weighted MAD (detection.md). */
#include "detect/common.h"
#include "detect/statdet.h"

static const char *const mad_params[] = DTK_STATDET_PARAMS("n_sigma");

static const dtk_statdet_spec mad_spec = {"mad", "MAD", "n_sigma", 3.0};

static int mad_compile(const dtk_value *params, const dtk_detector_env *env, void **compiled,
		       char *errstr, size_t errstr_size)
{
	return dtk_statdet_compile(&mad_spec, params, env, compiled, errstr, errstr_size);
}

static void mad_run(const void *compiled, const dtk_detect_input *in, dtk_detection *out)
{
	const dtk_statdet *sd = compiled;
	dtk_baseline b;
	if (dtk_statdet_baseline(sd, in, 1, &b, out) == 0) {
		double median, mad;
		dtk_stats_median_mad(b.sorted, b.n, &median, &mad);
		dtk_statdet_finish_sigma(sd, in, out, median, 1.4826 * mad, "median", "mad_sigma");
	}
	dtk_baseline_release(&b);
}

const dtk_detector_type dtk_detector_mad = {
	.name = "mad",
	.summary = "weighted median +/- n_sigma robust sigmas (1.4826 MAD) over a window",
	.compile = mad_compile,
	.destroy = dtk_statdet_destroy,
	.window = dtk_statdet_window,
	.run = mad_run,
	.known_params = mad_params,
	.id_defaults_json = "{\"n_sigma\": 3.0, \"use_weighted\": true, \"exp_decay_factor\": 0.1, "
			    "\"seasonal_features\": [], \"use_combined_seasonality\": false}",
};
