/* zscore: weighted mean ± n_sigma weighted population std (detection.md). */
#include "detect/common.h"
#include "detect/statdet.h"

static const char *const zscore_params[] = DTK_STATDET_PARAMS("n_sigma");

static const dtk_statdet_spec zscore_spec = {"zscore", "Z-score", "n_sigma", 3.0};

static int zscore_compile(const dtk_value *params, const dtk_detector_env *env, void **compiled,
			  char *errstr, size_t errstr_size)
{
	return dtk_statdet_compile(&zscore_spec, params, env, compiled, errstr, errstr_size);
}

static void zscore_run(const void *compiled, const dtk_detect_input *in, dtk_detection *out)
{
	const dtk_statdet *sd = compiled;
	dtk_baseline b;
	if (dtk_statdet_baseline(sd, in, 0, &b, out) == 0) {
		double mean, std;
		dtk_stats_mean_std(b.x, b.w, b.n, &mean, &std);
		dtk_statdet_finish_sigma(sd, in, out, mean, std, "mean", "std");
	}
	dtk_baseline_release(&b);
}

const dtk_detector_type dtk_detector_zscore = {
	.name = "zscore",
	.summary = "weighted mean +/- n_sigma standard deviations over a window",
	.compile = zscore_compile,
	.destroy = dtk_statdet_destroy,
	.window = dtk_statdet_window,
	.run = zscore_run,
	.known_params = zscore_params,
	.id_defaults_json = "{\"n_sigma\": 3.0, \"use_weighted\": true, \"exp_decay_factor\": 0.1, "
			    "\"seasonal_features\": [], \"use_combined_seasonality\": false}",
};
