/* core/config: loading, env rules, profiles, alignment, errors with positions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "util/pyfmt.h"

static dtk_config *load(const char *text, dtk_env_mode mode, char *err, size_t errsz)
{
	dtk_config *cfg = NULL;
	dtk_config_options opt = {.env_mode = mode};
	err[0] = '\0';
	if (dtk_config_parse(text, strlen(text), "metric.yaml", &opt, &cfg, err, errsz) != 0)
		return NULL;
	return cfg;
}

#define BASE                                                                                  \
	"name: m1\n"                                                                          \
	"collector:\n"                                                                        \
	"  type: synthetic\n"                                                                 \
	"  params: {base: 10}\n"                                                              \
	"detector:\n"                                                                         \
	"  type: threshold\n"                                                                 \
	"  params: {threshold: 1000}\n"

static int has_warning(const dtk_config *cfg, const char *needle)
{
	for (size_t i = 0; i < cfg->warnings->u.list.n; i++)
		if (strstr(cfg->warnings->u.list.items[i]->u.str.s, needle))
			return 1;
	return 0;
}

static void test_config_minimal_metric_gets_documented_defaults(void **state)
{
	char err[1024];
	dtk_config *cfg = load(BASE, DTK_ENV_STRICT, err, sizeof(err));
	assert_non_null(cfg);
	assert_string_equal(cfg->name, "m1");
	assert_int_equal(cfg->schedule.interval, 600);
	assert_string_equal(cfg->schedule.interval_text, "10 minutes");
	assert_int_equal(cfg->schedule.timeout, 600);
	assert_int_equal(cfg->schedule.delay, 0);
	assert_int_equal(cfg->schedule.batch_load_days, 30);
	assert_true(cfg->storage.enabled);
	assert_null(cfg->storage.type); /* synthetic: the local state database */
	assert_int_equal(cfg->ndetectors, 1);
	assert_string_equal(cfg->detectors[0].id, "bf005a3d"); /* conformance id */
	assert_string_equal(cfg->timezone, "UTC");
	dtk_config_free(&cfg);
	assert_null(cfg);
}

static void test_config_timeout_is_at_least_sixty_seconds(void **state)
{
	char err[1024];
	dtk_config *cfg = load(BASE "schedule: {interval: 30s}\n", DTK_ENV_STRICT, err, sizeof(err));
	assert_non_null(cfg);
	assert_int_equal(cfg->schedule.interval, 30);
	assert_int_equal(cfg->schedule.timeout, 60);
	dtk_config_free(&cfg);
}

static void test_config_unset_variable_names_variable_and_key_path(void **state)
{
	char err[1024];
	unsetenv("DTK_TEST_UNSET");
	dtk_config *cfg = load("name: m1\ncollector:\n  type: synthetic\n  params:\n    base: "
			       "${DTK_TEST_UNSET}\n" "detector: {type: threshold, params: {threshold: 1}}\n",
			       DTK_ENV_STRICT, err, sizeof(err));
	assert_null(cfg);
	assert_non_null(strstr(err, "metric.yaml:5:"));
	assert_non_null(strstr(err, "collector.params.base"));
	assert_non_null(strstr(err, "DTK_TEST_UNSET"));
}

static void test_config_deferred_mode_keeps_placeholders_and_builds_nothing(void **state)
{
	char err[1024];
	unsetenv("DTK_TEST_UNSET");
	dtk_config *cfg = load("name: m1\ntags: [a]\ncollector:\n  type: nosuch\n  params:\n    x: "
			       "${DTK_TEST_UNSET}\n",
			       DTK_ENV_DEFERRED, err, sizeof(err));
	assert_non_null(cfg);
	assert_false(cfg->built);
	assert_string_equal(
		dtk_value_cstr(dtk_value_path(cfg->root, "collector.params.x")), "${DTK_TEST_UNSET}");
	dtk_config_free(&cfg);
}

static void test_config_deferred_mode_still_requires_tags_to_resolve(void **state)
{
	char err[1024];
	unsetenv("DTK_TEST_UNSET");
	dtk_config *cfg = load("name: m1\ntags: ['${DTK_TEST_UNSET}']\n", DTK_ENV_DEFERRED, err,
			       sizeof(err));
	assert_null(cfg);
	assert_non_null(strstr(err, "tags[0]"));
}

static void test_config_env_default_applies_to_empty_and_unset(void **state)
{
	char err[1024];
	setenv("DTK_TEST_EMPTY", "", 1);
	unsetenv("DTK_TEST_UNSET");
	dtk_config *cfg = load("name: m1\n"
			       "description: \"${DTK_TEST_EMPTY:-fallback} ${DTK_TEST_UNSET:-two}\"\n"
			       "collector: {type: synthetic}\n"
			       "detector: {type: threshold, params: {threshold: 1}}\n",
			       DTK_ENV_STRICT, err, sizeof(err));
	assert_non_null(cfg);
	assert_string_equal(cfg->description, "fallback two");
	dtk_config_free(&cfg);
}

static void test_config_plain_substitution_is_retyped_quoted_stays_string(void **state)
{
	char err[1024];
	setenv("DTK_TEST_NUM", "9000", 1);
	dtk_config *cfg = load("name: m1\n"
			       "metadata:\n  plain: ${DTK_TEST_NUM}\n  quoted: \"${DTK_TEST_NUM}\"\n"
			       "collector: {type: synthetic}\n"
			       "detector: {type: threshold, params: {threshold: 1}}\n",
			       DTK_ENV_STRICT, err, sizeof(err));
	assert_non_null(cfg);
	const dtk_value *plain = dtk_value_map_get(cfg->metadata, "plain");
	const dtk_value *quoted = dtk_value_map_get(cfg->metadata, "quoted");
	assert_int_equal(plain->type, DTK_V_INT);
	assert_int_equal(plain->u.i, 9000);
	assert_int_equal(quoted->type, DTK_V_STR);
	dtk_config_free(&cfg);
}

static void test_config_template_dollar_brace_is_not_a_variable(void **state)
{
	char err[1024];
	dtk_config *cfg = load("name: m1\n"
			       "description: \"cost ${{ value }} and ${X_IN_TEXT_IS:-kept}\"\n"
			       "# ${COMMENTED_OUT_UNSET_VARIABLE}\n"
			       "collector: {type: synthetic}\n"
			       "detector: {type: threshold, params: {threshold: 1}}\n",
			       DTK_ENV_STRICT, err, sizeof(err));
	assert_non_null(cfg);
	assert_string_equal(cfg->description, "cost ${{ value }} and kept");
	dtk_config_free(&cfg);
}

static void test_config_bad_interval_quotes_the_value(void **state)
{
	char err[1024];
	dtk_config *cfg =
		load(BASE "schedule: {interval: \"10 minuts\"}\n", DTK_ENV_STRICT, err, sizeof(err));
	assert_null(cfg);
	assert_non_null(strstr(err, "10 minuts"));
	assert_non_null(strstr(err, "schedule"));
}

static void test_config_unknown_key_warns_with_did_you_mean(void **state)
{
	char err[1024];
	dtk_config *cfg = load(BASE "descripton: typo\n", DTK_ENV_STRICT, err, sizeof(err));
	assert_non_null(cfg);
	assert_true(has_warning(cfg, "descripton"));
	assert_true(has_warning(cfg, "did you mean 'description'"));
	dtk_config_free(&cfg);
}

static void test_config_unknown_condition_key_is_an_error(void **state)
{
	char err[1024];
	dtk_config *cfg = load(BASE "alerter:\n  type: console\n  conditions:\n    cooldown_minute: 5\n",
			       DTK_ENV_STRICT, err, sizeof(err));
	assert_null(cfg);
	assert_non_null(strstr(err, "cooldown_minute"));
	assert_non_null(strstr(err, "did you mean 'cooldown_minutes'"));
	assert_non_null(strstr(err, "metric.yaml:11:5:"));
}

static void test_config_unknown_detector_type_lists_known_types(void **state)
{
	char err[1024];
	dtk_config *cfg = load("name: m1\ncollector: {type: synthetic}\ndetector: {type: prophet}\n",
			       DTK_ENV_STRICT, err, sizeof(err));
	assert_null(cfg);
	assert_non_null(strstr(err, "prophet"));
	assert_non_null(strstr(err, "mad"));
	assert_non_null(strstr(err, "metric.yaml:3:"));
}

static void test_config_detector_param_error_points_at_the_param(void **state)
{
	char err[1024];
	dtk_config *cfg = load("name: m1\ncollector: {type: synthetic}\ndetector:\n  type: threshold\n"
			       "  params:\n    threshold: 1\n    operator: bogus\n",
			       DTK_ENV_STRICT, err, sizeof(err));
	assert_null(cfg);
	assert_non_null(strstr(err, "metric.yaml:7:"));
	assert_non_null(strstr(err, "detector.params.operator"));
	assert_non_null(strstr(err, "Invalid operator"));
}

static void test_config_duplicate_detector_ids_are_an_error(void **state)
{
	char err[1024];
	dtk_config *cfg = load("name: m1\ncollector: {type: synthetic}\ndetectors:\n"
			       "  - {type: threshold, params: {threshold: 1}}\n"
			       "  - {type: threshold, params: {threshold: 1}}\n",
			       DTK_ENV_STRICT, err, sizeof(err));
	assert_null(cfg);
	assert_non_null(strstr(err, "used twice"));
}

static void test_config_profiles_file_is_named_as_such(void **state)
{
	char err[1024];
	dtk_config *cfg = load("profiles:\n  a: {type: sqlite, path: x.db}\n", DTK_ENV_STRICT, err,
			       sizeof(err));
	assert_null(cfg);
	assert_non_null(strstr(err, "profiles file, not a metric"));
}

static void test_config_invalid_name_is_rejected(void **state)
{
	char err[1024];
	dtk_config *cfg = load("name: \"bad name!\"\ncollector: {type: synthetic}\n"
			       "detector: {type: threshold, params: {threshold: 1}}\n",
			       DTK_ENV_STRICT, err, sizeof(err));
	assert_null(cfg);
	assert_non_null(strstr(err, "bad name!"));
}

static void test_config_profile_merges_under_explicit_params(void **state)
{
	char dir[] = "/tmp/dtk-test-config-XXXXXX", path[256], err[1024];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/profiles.yaml", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("profiles:\n  gen:\n    type: synthetic\n    base: ${DTK_TEST_BASE:-50}\n"
	      "    noise: 3\n",
	      f);
	fclose(f);
	const char *text = "name: m1\ncollector:\n  profile: gen\n  params: {noise: 0}\n"
			   "detector: {type: threshold, params: {threshold: 1}}\n";
	dtk_config_options opt = {.env_mode = DTK_ENV_STRICT, .profiles_path = path};
	dtk_config *cfg = NULL;
	assert_int_equal(dtk_config_parse(text, strlen(text), "metric.yaml", &opt, &cfg, err,
					  sizeof(err)),
			 0);
	assert_string_equal(cfg->collector.impl->name, "synthetic");
	const dtk_value *base = dtk_value_map_get(cfg->collector.params, "base");
	assert_int_equal(base->type, DTK_V_INT); /* env-expanded, then re-typed */
	assert_int_equal(base->u.i, 50);
	const dtk_value *noise = dtk_value_map_get(cfg->collector.params, "noise");
	assert_int_equal(noise->u.i, 0);
	dtk_config_free(&cfg);

	const char *missing = "name: m1\ncollector: {profile: nosuch}\n"
			      "detector: {type: threshold, params: {threshold: 1}}\n";
	assert_int_equal(dtk_config_parse(missing, strlen(missing), "metric.yaml", &opt, &cfg, err,
					  sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "profile 'nosuch' not found"));
	unlink(path);
	rmdir(dir);
}

static void test_config_align_uses_monday_origin_and_timezone_for_days(void **state)
{
	char err[1024];
	dtk_config *cfg = load(BASE, DTK_ENV_STRICT, err, sizeof(err));
	assert_non_null(cfg);
	/* 2024-11-02T14:37:59Z -> 14:30:00 on a 10-minute grid */
	int64_t t = dtk_pyfmt_days(2024, 11, 2) * 86400 + 14 * 3600 + 37 * 60 + 59;
	assert_int_equal(dtk_config_align(cfg, t), t - 7 * 60 - 59);
	dtk_config_free(&cfg);

	cfg = load(BASE "timezone: Europe/Moscow\nschedule: {interval: 1 week}\n", DTK_ENV_STRICT,
		   err, sizeof(err));
	assert_non_null(cfg);
	/* Saturday 2024-11-02 -> Monday 2024-10-28 00:00 Moscow = Sunday 21:00 UTC */
	int64_t want = dtk_pyfmt_days(2024, 10, 27) * 86400 + 21 * 3600;
	assert_int_equal(dtk_config_align(cfg, t), want);
	dtk_config_free(&cfg);
}

static void test_config_mask_hides_secrets_and_url_userinfo(void **state)
{
	char err[1024], out[256];
	setenv("DTK_TEST_SECRET", "s3cr3t-value", 1);
	dtk_config *cfg = load("name: m1\nmetadata: {note: \"${DTK_TEST_SECRET}\"}\n"
			       "collector: {type: synthetic}\n"
			       "detector: {type: threshold, params: {threshold: 1}}\n",
			       DTK_ENV_STRICT, err, sizeof(err));
	assert_non_null(cfg);
	dtk_config_mask(cfg, "failed with s3cr3t-value at postgresql://bob:pw@db:5432/x", out,
			sizeof(out));
	assert_string_equal(out, "failed with *** at postgresql://***@db:5432/x");
	dtk_config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_minimal_metric_gets_documented_defaults),
		cmocka_unit_test(test_config_timeout_is_at_least_sixty_seconds),
		cmocka_unit_test(test_config_unset_variable_names_variable_and_key_path),
		cmocka_unit_test(test_config_deferred_mode_keeps_placeholders_and_builds_nothing),
		cmocka_unit_test(test_config_deferred_mode_still_requires_tags_to_resolve),
		cmocka_unit_test(test_config_env_default_applies_to_empty_and_unset),
		cmocka_unit_test(test_config_plain_substitution_is_retyped_quoted_stays_string),
		cmocka_unit_test(test_config_template_dollar_brace_is_not_a_variable),
		cmocka_unit_test(test_config_bad_interval_quotes_the_value),
		cmocka_unit_test(test_config_unknown_key_warns_with_did_you_mean),
		cmocka_unit_test(test_config_unknown_condition_key_is_an_error),
		cmocka_unit_test(test_config_unknown_detector_type_lists_known_types),
		cmocka_unit_test(test_config_detector_param_error_points_at_the_param),
		cmocka_unit_test(test_config_duplicate_detector_ids_are_an_error),
		cmocka_unit_test(test_config_profiles_file_is_named_as_such),
		cmocka_unit_test(test_config_invalid_name_is_rejected),
		cmocka_unit_test(test_config_profile_merges_under_explicit_params),
		cmocka_unit_test(test_config_align_uses_monday_origin_and_timezone_for_days),
		cmocka_unit_test(test_config_mask_hides_secrets_and_url_userinfo),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
