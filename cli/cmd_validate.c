/* dtk validate, dtk list-metrics, dtk list-collectors|detectors|alerters. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "select.h"
#include "store/store.h"

static void validate_usage(FILE *f)
{
	fprintf(f, "usage: dtk validate CONFIG... [--no-env] [--profiles FILE] [--init-storage]\n\n"
		   "Loads each config and builds every component without connecting anything:\n"
		   "types, params, templates, intervals, profiles. Prints a summary per file,\n"
		   "the detector ids and warnings (unknown keys, with a \"did you mean\").\n\n"
		   "  --no-env          leave unset ${VAR}s as placeholders (checks name, tags\n"
		   "                    and schedule only, since components cannot be built)\n"
		   "  --profiles FILE   connection profiles\n"
		   "  --init-storage    also connect to storage and create its tables\n"
		   "Exit codes: 0 all valid, 2 at least one config error.\n");
}

int cmd_validate(int argc, char **argv)
{
	static const struct option opts[] = {
		{"no-env", no_argument, NULL, 'E'},
		{"profiles", required_argument, NULL, 'p'},
		{"init-storage", no_argument, NULL, 'I'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int no_env = 0, init_storage = 0, c;
	const char *profiles = NULL;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'E':
			no_env = 1;
			break;
		case 'p':
			profiles = optarg;
			break;
		case 'I':
			init_storage = 1;
			break;
		case 'h':
			validate_usage(stdout);
			return DTK_EXIT_OK;
		default:
			validate_usage(stderr);
			return DTK_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "dtk validate: give at least one CONFIG\n");
		return DTK_EXIT_USAGE;
	}
	int rc = DTK_EXIT_OK;
	dtk_config_options copt = {.env_mode = no_env ? DTK_ENV_DEFERRED : DTK_ENV_STRICT,
				   .profiles_path = profiles};
	for (int i = optind; i < argc; i++) {
		dtk_config *cfg = NULL;
		char err[2048];
		if (dtk_config_load(argv[i], &copt, &cfg, err, sizeof(err)) != 0) {
			printf("INVALID %s\n  error: %s\n", argv[i], err);
			rc = DTK_EXIT_USAGE;
			continue;
		}
		printf("OK      %s: metric %s, interval %s", argv[i], cfg->name,
		       cfg->schedule.interval_text);
		if (cfg->built) {
			printf(", collector %s\n", cfg->collector.impl->name);
			for (size_t d = 0; d < cfg->ndetectors; d++)
				printf("  detector %s (%s)\n", cfg->detectors[d].id,
				       cfg->detectors[d].impl->name);
			for (size_t a = 0; a < cfg->nalerters; a++)
				printf("  alerter  %s (%s)%s\n", cfg->alerters[a].id,
				       cfg->alerters[a].impl->name,
				       cfg->alerters[a].enabled ? "" : " disabled");
			printf("  storage  %s\n",
			       !cfg->storage.enabled ? "disabled"
			       : cfg->storage.type   ? cfg->storage.type
						     : "local (DTK_STATE_DIR/dtk.db)");
		} else {
			printf(" (components not built: --no-env)\n");
		}
		for (size_t w = 0; w < cfg->warnings->u.list.n; w++)
			printf("  warning: %s\n", cfg->warnings->u.list.items[w]->u.str.s);
		if (init_storage && cfg->built && cfg->storage.enabled) {
			dtk_store *st = dtk_store_open(cfg->storage.type, cfg->storage.params,
						       cfg->base_dir, NULL, err, sizeof(err));
			if (!st) {
				printf("  storage error: %s\n", err);
				rc = dtk_report_exit_merge(rc, DTK_EXIT_FAILED);
			} else {
				printf("  storage tables ready\n");
				dtk_store_close(&st);
			}
		}
		dtk_config_free(&cfg);
	}
	return rc;
}

static int is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void list_usage(FILE *f)
{
	fprintf(f, "usage: dtk list-metrics [-p DIR] [--details] [--validate] [-c TYPE] [-t TAG]\n"
		   "                        [--match-all-tags]\n\n"
		   "Lists metric configs under DIR/configs and DIR/metrics when they exist, else\n"
		   "under DIR (default .). ${VAR}s need not be set, except with --validate.\n\n"
		   "  -p, --path DIR        project directory\n"
		   "      --details         description, collector, detectors, interval\n"
		   "      --validate        also build each config (strict env) and mark errors\n"
		   "  -c, --collector TYPE  only configs with this collector type\n"
		   "  -t, --tag TAG         only configs with this tag (repeatable, or a,b)\n"
		   "      --match-all-tags  require every --tag\n");
}

static void list_one(const char *path, const dtk_config *cfg, int details, const char *vstatus)
{
	printf("%-32s %-10s", cfg->name, cfg->schedule.interval_text);
	printf(" [");
	for (size_t i = 0; i < cfg->ntags; i++)
		printf("%s%s", i ? "," : "", cfg->tags[i]);
	printf("] %s%s%s\n", path, vstatus ? "  " : "", vstatus ? vstatus : "");
	if (!details)
		return;
	const char *ctype = dtk_value_cstr(dtk_value_path(cfg->root, "collector.type"));
	const char *cprof = dtk_value_cstr(dtk_value_path(cfg->root, "collector.profile"));
	if (cfg->description)
		printf("    description: %s\n", cfg->description);
	printf("    collector:   %s%s%s\n", ctype ? ctype : "(from profile)",
	       cprof ? " profile " : "", cprof ? cprof : "");
	const dtk_value *dets = dtk_value_map_get(cfg->root, "detectors");
	const dtk_value *one = dtk_value_map_get(cfg->root, "detector");
	if (dets && dets->type == DTK_V_LIST) {
		for (size_t i = 0; i < dets->u.list.n; i++)
			printf("    detector:    %s\n",
			       dtk_value_cstr(dtk_value_map_get(dets->u.list.items[i], "type")));
	} else if (one) {
		printf("    detector:    %s\n", dtk_value_cstr(dtk_value_map_get(one, "type")));
	}
}

int cmd_list_metrics(int argc, char **argv)
{
	static const struct option opts[] = {
		{"path", required_argument, NULL, 'p'},
		{"details", no_argument, NULL, 'd'},
		{"validate", no_argument, NULL, 'V'},
		{"collector", required_argument, NULL, 'c'},
		{"tag", required_argument, NULL, 't'},
		{"match-all-tags", no_argument, NULL, 'M'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *dir = ".", *ctype = NULL;
	char **tags = NULL;
	size_t ntags = 0;
	int details = 0, validate = 0, match_all = 0, c, rc = DTK_EXIT_OK;
	optind = 1;
	while ((c = getopt_long(argc, argv, "p:c:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			dir = optarg;
			break;
		case 'd':
			details = 1;
			break;
		case 'V':
			validate = 1;
			break;
		case 'c':
			ctype = optarg;
			break;
		case 't':
			dtk_select_split(optarg, &tags, &ntags);
			break;
		case 'M':
			match_all = 1;
			break;
		case 'h':
			list_usage(stdout);
			return DTK_EXIT_OK;
		default:
			list_usage(stderr);
			return DTK_EXIT_USAGE;
		}
	}
	char roots[2][4096];
	size_t nroots = 0;
	static const char *const subdirs[] = {"configs", "metrics"};
	for (size_t i = 0; i < 2; i++) {
		snprintf(roots[nroots], sizeof(roots[nroots]), "%s/%s", dir, subdirs[i]);
		if (is_dir(roots[nroots]))
			nroots++;
	}
	if (!nroots)
		snprintf(roots[nroots++], sizeof(roots[0]), "%s", dir);
	dtk_tag_filter filter = {.tags = (const char *const *)tags, .ntags = ntags,
				 .match_all = match_all};
	size_t listed = 0;
	for (size_t r = 0; r < nroots; r++) {
		char **paths = NULL, err[2048];
		size_t n = 0;
		if (dtk_select_scan(roots[r], &paths, &n, err, sizeof(err)) != 0) {
			fprintf(stderr, "dtk: %s\n", err);
			rc = DTK_EXIT_USAGE;
			continue;
		}
		for (size_t i = 0; i < n; i++) {
			dtk_config *cfg = NULL;
			dtk_config_options dopt = {.env_mode = DTK_ENV_DEFERRED};
			if (dtk_config_load(paths[i], &dopt, &cfg, err, sizeof(err)) != 0) {
				/* a profiles file beside the metrics is not an error */
				if (!validate && strstr(err, "profiles file") != NULL)
					continue;
				printf("%-32s INVALID %s\n", paths[i], err);
				rc = DTK_EXIT_USAGE;
				continue;
			}
			const char *t = dtk_value_cstr(dtk_value_path(cfg->root, "collector.type"));
			if ((ctype && (!t || strcmp(t, ctype) != 0)) ||
			    !dtk_select_match(&filter, (const char *const *)cfg->tags, cfg->ntags)) {
				dtk_config_free(&cfg);
				continue;
			}
			const char *vstatus = NULL;
			char vbuf[2100];
			if (validate) {
				dtk_config *full = NULL;
				dtk_config_options sopt = {.env_mode = DTK_ENV_STRICT};
				if (dtk_config_load(paths[i], &sopt, &full, err, sizeof(err)) != 0) {
					snprintf(vbuf, sizeof(vbuf), "INVALID: %s", err);
					rc = DTK_EXIT_USAGE;
				} else {
					snprintf(vbuf, sizeof(vbuf), "valid");
				}
				vstatus = vbuf;
				dtk_config_free(&full);
			}
			list_one(paths[i], cfg, details, vstatus);
			listed++;
			dtk_config_free(&cfg);
		}
		dtk_select_free(&paths, n);
	}
	printf("%zu metric%s\n", listed, listed == 1 ? "" : "s");
	for (size_t i = 0; i < ntags; i++)
		free(tags[i]);
	free(tags);
	return rc;
}

static int wants_help(int argc, char **argv)
{
	return argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0);
}

int cmd_list_collectors(int argc, char **argv)
{
	if (wants_help(argc, argv)) {
		printf("usage: dtk list-collectors\n\nLists the collector types.\n");
		return DTK_EXIT_OK;
	}
	for (const dtk_collector_type *const *t = dtk_collector_types(); *t; t++)
		printf("%-12s %s\n", (*t)->name, (*t)->summary);
	return DTK_EXIT_OK;
}

int cmd_list_detectors(int argc, char **argv)
{
	if (wants_help(argc, argv)) {
		printf("usage: dtk list-detectors\n\nLists the detector types.\n");
		return DTK_EXIT_OK;
	}
	for (const dtk_detector_type *const *t = dtk_detector_types(); *t; t++)
		printf("%-12s %s\n", (*t)->name, (*t)->summary);
	return DTK_EXIT_OK;
}

int cmd_list_alerters(int argc, char **argv)
{
	if (wants_help(argc, argv)) {
		printf("usage: dtk list-alerters\n\nLists the alerter types.\n");
		return DTK_EXIT_OK;
	}
	for (const dtk_alerter_type *const *t = dtk_alerter_types(); *t; t++)
		printf("%-12s %s\n", (*t)->name, (*t)->summary);
	return DTK_EXIT_OK;
}
