/* dtk run and dtk run-tagged. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "select.h"
#include "util/buf.h"

static void run_usage(FILE *f)
{
	fprintf(f,
		"usage: dtk run CONFIG [options]\n\n"
		"Runs one check: collect the value for the aligned execution time, store it,\n"
		"run the detectors against the stored history, and alert.\n\n"
		"  -t, --execution-time T  check time T (ISO 8601; default now), aligned down\n"
		"                          to the metric's interval grid\n"
		"      --no-align          use T as given\n"
		"      --no-store          do not write datapoints, detections or alert state\n"
		"      --no-alerts         do not decide or deliver alerts\n"
		"      --dry-run           --no-store --no-alerts\n"
		"      --profiles FILE     connection profiles (else DETECTK_PROFILES_PATH, ...)\n"
		"      --output text|json  json prints the check result object (alone on\n"
		"                          stdout: console alerts go to stderr)\n"
		"      --fail-on-anomaly   exit 3 when an anomaly is found\n"
		"  -h, --help\n\n"
		"Exit codes: 0 ok (anomalies are reported, not failures), 1 the check failed,\n"
		"2 usage or config error, 3 anomaly with --fail-on-anomaly.\n");
}

typedef struct run_flags {
	dtk_check_options check;
	const char *profiles;
	int json;
	int fail_on_anomaly;
} run_flags;

static int parse_output(const char *v, int *json)
{
	if (strcmp(v, "json") == 0)
		*json = 1;
	else if (strcmp(v, "text") == 0)
		*json = 0;
	else {
		fprintf(stderr, "dtk: --output must be text or json, got '%s'\n", v);
		return -1;
	}
	return 0;
}

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{"execution-time", required_argument, NULL, 't'},
		{"no-align", no_argument, NULL, 'A'},
		{"no-store", no_argument, NULL, 'S'},
		{"no-alerts", no_argument, NULL, 'N'},
		{"dry-run", no_argument, NULL, 'D'},
		{"profiles", required_argument, NULL, 'p'},
		{"output", required_argument, NULL, 'o'},
		{"fail-on-anomaly", no_argument, NULL, 'F'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	run_flags fl = {0};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (dtk_report_parse_time(optarg, &fl.check.requested_time) != 0)
				return DTK_EXIT_USAGE;
			fl.check.has_time = 1;
			break;
		case 'A':
			fl.check.no_align = 1;
			break;
		case 'S':
			fl.check.no_store = 1;
			break;
		case 'N':
			fl.check.no_alerts = 1;
			break;
		case 'D':
			fl.check.no_store = fl.check.no_alerts = 1;
			break;
		case 'p':
			fl.profiles = optarg;
			break;
		case 'o':
			if (parse_output(optarg, &fl.json) != 0)
				return DTK_EXIT_USAGE;
			break;
		case 'F':
			fl.fail_on_anomaly = 1;
			break;
		case 'h':
			run_usage(stdout);
			return DTK_EXIT_OK;
		default:
			run_usage(stderr);
			return DTK_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "dtk run: give exactly one CONFIG file\n");
		run_usage(stderr);
		return DTK_EXIT_USAGE;
	}
	const char *path = argv[optind];
	dtk_config_options copt = {.env_mode = DTK_ENV_STRICT, .profiles_path = fl.profiles};
	dtk_config *cfg = NULL;
	char err[2048];
	if (dtk_config_load(path, &copt, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "dtk: config error: %s\n", err);
		return DTK_EXIT_USAGE;
	}
	dtk_check_result *res = NULL;
	int saved_stdout = fl.json ? dtk_report_stdout_to_stderr() : -1;
	int run_rc = dtk_check_run(cfg, &fl.check, NULL, &res);
	dtk_report_stdout_restore(saved_stdout);
	if (run_rc != 0) {
		fprintf(stderr, "dtk: out of memory\n");
		dtk_config_free(&cfg);
		return DTK_EXIT_FAILED;
	}
	if (fl.json)
		dtk_report_json(stdout, res->json, 0);
	else
		dtk_report_text(stdout, res);
	dtk_report_errors(res);
	int rc = dtk_report_exit(res, fl.fail_on_anomaly);
	dtk_check_result_free(&res);
	dtk_config_free(&cfg);
	return rc;
}

static void tagged_usage(FILE *f)
{
	fprintf(f,
		"usage: dtk run-tagged [DIR] [options]\n\n"
		"Runs every config under DIR (default .; *.yaml and *.yml, recursively) that\n"
		"the tag selection picks. Exclusions apply first; then a config is selected\n"
		"when it has any of the --tags (or all of them with --match-all); with only\n"
		"--exclude-tags every other config is selected. Configs that fail to load are\n"
		"reported and the others still run.\n\n"
		"  -t, --tags T          select configs with tag T (repeatable, or a,b)\n"
		"  -e, --exclude-tags T  skip configs with tag T (repeatable, or a,b)\n"
		"      --match-all       require every --tags tag\n"
		"      --dry-run         list the selection without running it\n"
		"  -p, --parallel N      run N checks at once (default 1)\n"
		"      --profiles FILE   connection profiles\n"
		"      --output text|json  json: console alerts go to stderr\n"
		"      --fail-on-anomaly exit 3 when an anomaly is found\n"
		"  -h, --help\n");
}

static void free_list(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

int cmd_run_tagged(int argc, char **argv)
{
	static const struct option opts[] = {
		{"tags", required_argument, NULL, 't'},
		{"exclude-tags", required_argument, NULL, 'e'},
		{"match-all", no_argument, NULL, 'M'},
		{"dry-run", no_argument, NULL, 'D'},
		{"parallel", required_argument, NULL, 'p'},
		{"profiles", required_argument, NULL, 'P'},
		{"output", required_argument, NULL, 'o'},
		{"fail-on-anomaly", no_argument, NULL, 'F'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	char **tags = NULL, **excl = NULL;
	size_t ntags = 0, nexcl = 0, nitems = 0;
	int dry = 0, json = 0, fail_on_anomaly = 0, match_all = 0, c, rc = DTK_EXIT_USAGE;
	long parallel = 1;
	const char *profiles = NULL;
	dtk_selected *items = NULL;
	char err[2048];
	optind = 1;
	while ((c = getopt_long(argc, argv, "t:e:p:h", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 't':
			dtk_select_split(optarg, &tags, &ntags);
			break;
		case 'e':
			dtk_select_split(optarg, &excl, &nexcl);
			break;
		case 'M':
			match_all = 1;
			break;
		case 'D':
			dry = 1;
			break;
		case 'p':
			parallel = strtol(optarg, &end, 10);
			if (*end || parallel < 1 || parallel > 256) {
				fprintf(stderr, "dtk: --parallel needs a number from 1 to 256\n");
				goto out;
			}
			break;
		case 'P':
			profiles = optarg;
			break;
		case 'o':
			if (parse_output(optarg, &json) != 0)
				goto out;
			break;
		case 'F':
			fail_on_anomaly = 1;
			break;
		case 'h':
			tagged_usage(stdout);
			rc = DTK_EXIT_OK;
			goto out;
		default:
			tagged_usage(stderr);
			goto out;
		}
	}
	if (!ntags && !nexcl) {
		fprintf(stderr, "dtk run-tagged: give --tags and/or --exclude-tags\n");
		tagged_usage(stderr);
		goto out;
	}
	if (optind < argc - 1) {
		fprintf(stderr, "dtk run-tagged: give at most one DIR\n");
		goto out;
	}
	const char *dir = optind < argc ? argv[optind] : ".";
	dtk_select_opts sel = {
		.filter = {.tags = (const char *const *)tags,
			   .ntags = ntags,
			   .exclude = (const char *const *)excl,
			   .nexclude = nexcl,
			   .match_all = match_all},
		.profiles = profiles,
		.load_strict = !dry,
	};
	if (dtk_select_configs(dir, &sel, &items, &nitems, err, sizeof(err)) != 0) {
		fprintf(stderr, "dtk: %s\n", err);
		goto out;
	}
	rc = DTK_EXIT_OK;
	if (dry) {
		for (size_t i = 0; i < nitems; i++) {
			if (items[i].error) {
				printf("invalid  %s: %s\n", items[i].path, items[i].error);
				rc = DTK_EXIT_USAGE;
			} else {
				printf("selected %s\n", items[i].path);
			}
		}
		goto out;
	}
	dtk_check_options check = {0};
	int saved_stdout = json ? dtk_report_stdout_to_stderr() : -1;
	dtk_select_run(items, nitems, (size_t)parallel, &check);
	dtk_report_stdout_restore(saved_stdout);

	dtk_value *results = dtk_value_list(), *inv = dtk_value_list();
	for (size_t i = 0; i < nitems; i++) {
		dtk_selected *it = &items[i];
		if (it->error) {
			rc = dtk_report_exit_merge(rc, DTK_EXIT_USAGE);
			if (json) {
				dtk_value *e = dtk_value_map();
				dtk_value_map_set_str(e, "path", it->path);
				dtk_value_map_set_str(e, "error", it->error);
				if (dtk_value_list_push(inv, e) != 0)
					dtk_value_free(&e);
			} else {
				fprintf(stderr, "dtk: config error: %s\n", it->error);
			}
			continue;
		}
		if (!it->result) {
			rc = dtk_report_exit_merge(rc, DTK_EXIT_FAILED);
			continue;
		}
		rc = dtk_report_exit_merge(rc, dtk_report_exit(it->result, fail_on_anomaly));
		dtk_report_errors(it->result);
		if (json) {
			if (dtk_value_list_push(results, it->result->json) == 0)
				it->result->json = NULL;
		} else {
			dtk_report_text(stdout, it->result);
		}
	}
	dtk_select_counts cnt;
	dtk_select_count(items, nitems, &cnt);
	if (json) {
		dtk_value *doc = dtk_value_map(), *sum = dtk_value_map();
		dtk_value_map_set_int(sum, "selected", (int64_t)cnt.selected);
		dtk_value_map_set_int(sum, "results", (int64_t)cnt.results);
		dtk_value_map_set_int(sum, "ok", (int64_t)cnt.ok);
		dtk_value_map_set_int(sum, "anomaly", (int64_t)cnt.anomaly);
		dtk_value_map_set_int(sum, "error", (int64_t)cnt.error);
		dtk_value_map_set_int(sum, "invalid_configs", (int64_t)cnt.invalid);
		dtk_value_map_set(doc, "summary", sum);
		dtk_value_map_set(doc, "results", results);
		dtk_value_map_set(doc, "invalid", inv);
		dtk_report_json(stdout, doc, 0);
		dtk_value_free(&doc);
	} else {
		printf("\nTotal: %zu, success: %zu (anomalies: %zu), errors: %zu, invalid configs: "
		       "%zu\n",
		       cnt.selected, cnt.ok + cnt.anomaly, cnt.anomaly,
		       cnt.error + (cnt.selected - cnt.invalid - cnt.results), cnt.invalid);
		dtk_value_free(&results);
		dtk_value_free(&inv);
	}
out:
	dtk_select_release(&items, nitems);
	free_list(tags, ntags);
	free_list(excl, nexcl);
	return rc;
}
