/* dtk init and dtk init-project. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "util/buf.h"
#include "util/fileio.h"

static const char *detector_block(const char *type)
{
	if (strcmp(type, "threshold") == 0)
		return "detector:\n"
		       "  type: threshold\n"
		       "  params:\n"
		       "    operator: greater_than\n"
		       "    threshold: 150\n";
	if (strcmp(type, "zscore") == 0)
		return "detector:\n"
		       "  type: zscore\n"
		       "  params:\n"
		       "    window_size: \"7 days\"\n"
		       "    n_sigma: 3.0\n";
	if (strcmp(type, "iqr") == 0)
		return "detector:\n"
		       "  type: iqr\n"
		       "  params:\n"
		       "    window_size: \"7 days\"\n"
		       "    threshold: 1.5\n";
	return "detector:\n"
	       "  type: mad\n"
	       "  params:\n"
	       "    window_size: \"7 days\"\n"
	       "    n_sigma: 3.0\n"
	       "    seasonal_features: [hour_of_day]\n";
}

static int write_file(const char *path, const char *text, int overwrite)
{
	if (!overwrite && dtk_file_exists(path)) {
		fprintf(stderr, "dtk: %s exists (use --overwrite to replace it)\n", path);
		return -1;
	}
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "dtk: cannot write %s: %s\n", path, strerror(errno));
		return -1;
	}
	int ok = fputs(text, f) >= 0;
	ok = fclose(f) == 0 && ok;
	if (!ok)
		fprintf(stderr, "dtk: cannot write %s\n", path);
	return ok ? 0 : -1;
}

static int write_config(const char *path, const char *name, const char *det, int overwrite)
{
	dtk_buf text;
	dtk_buf_init(&text, 1 << 16);
	dtk_buf_printf(&text,
		 "# A DetectK metric: collect one value per interval, keep its history,\n"
		 "# detect anomalies, alert. Try it: dtk run %s\n"
		 "name: %s\n"
		 "description: \"Example metric with a synthetic source\"\n"
		 "tags: [example]\n"
		 "\n"
		 "collector:\n"
		 "  type: synthetic\n"
		 "  params:\n"
		 "    base: 100\n"
		 "    noise: 2\n"
		 "    daily_amplitude: 0.2\n"
		 "    seed: 1\n"
		 "# A real source, e.g. ClickHouse:\n"
		 "# collector:\n"
		 "#   type: clickhouse\n"
		 "#   params:\n"
		 "#     host: \"${CLICKHOUSE_HOST:-localhost}\"\n"
		 "#     database: analytics\n"
		 "#     query: |\n"
		 "#       SELECT count() AS value FROM events\n"
		 "#       WHERE ts >= toDateTime('{{ period_start }}')\n"
		 "#         AND ts < toDateTime('{{ period_finish }}')\n"
		 "\n"
		 "%s"
		 "\n"
		 "alerter:\n"
		 "  type: console\n"
		 "  conditions:\n"
		 "    cooldown_minutes: 60\n"
		 "\n"
		 "schedule:\n"
		 "  interval: \"10 minutes\"\n"
		 "\n"
		 "# storage defaults to the local SQLite file $DTK_STATE_DIR/dtk.db\n",
		 path, name, detector_block(det));
	int rc = text.failed ? -1 : write_file(path, dtk_buf_str(&text), overwrite);
	dtk_buf_free(&text);
	return rc;
}

int cmd_init(int argc, char **argv)
{
	static const struct option opts[] = {
		{"detector", required_argument, NULL, 'd'},
		{"overwrite", no_argument, NULL, 'O'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *det = "mad";
	int overwrite = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			det = optarg;
			if (strcmp(det, "threshold") && strcmp(det, "mad") && strcmp(det, "zscore") &&
			    strcmp(det, "iqr")) {
				fprintf(stderr, "dtk init: -d must be threshold, mad, zscore or iqr\n");
				return DTK_EXIT_USAGE;
			}
			break;
		case 'O':
			overwrite = 1;
			break;
		case 'h':
			printf("usage: dtk init [PATH] [-d threshold|mad|zscore|iqr] [--overwrite]\n\n"
			       "Writes a runnable config (default PATH metric.yaml): a synthetic\n"
			       "collector, the chosen detector, a console alerter, and comments\n"
			       "showing the ClickHouse form.\n");
			return DTK_EXIT_OK;
		default:
			return DTK_EXIT_USAGE;
		}
	}
	const char *path = optind < argc ? argv[optind] : "metric.yaml";
	if (write_config(path, "example_metric", det, overwrite) != 0)
		return DTK_EXIT_USAGE;
	printf("wrote %s; try: dtk run %s\n", path, path);
	return DTK_EXIT_OK;
}

int cmd_init_project(int argc, char **argv)
{
	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: dtk init-project [DIR]\n\n"
		       "Lays out a project in DIR (default .): configs/ with an example metric,\n"
		       "detectk_profiles.yaml (connection profiles), .env.example and README.md.\n");
		return DTK_EXIT_OK;
	}
	const char *dir = argc > 1 ? argv[1] : ".";
	char path[4096];
	snprintf(path, sizeof(path), "%s/configs", dir);
	if (dtk_mkdirs(path, 0755) != 0) {
		fprintf(stderr, "dtk: cannot create %s: %s\n", path, strerror(errno));
		return DTK_EXIT_USAGE;
	}
	snprintf(path, sizeof(path), "%s/configs/example_metric.yaml", dir);
	if (write_config(path, "example_metric", "mad", 0) != 0)
		return DTK_EXIT_USAGE;
	snprintf(path, sizeof(path), "%s/detectk_profiles.yaml", dir);
	if (write_file(path,
		       "# Connection profiles: reference them with `profile: NAME` in a\n"
		       "# collector, storage or alerter. Secrets come from the environment.\n"
		       "profiles:\n"
		       "  analytics:\n"
		       "    type: clickhouse\n"
		       "    host: \"${CLICKHOUSE_HOST:-localhost}\"\n"
		       "    port: 8123\n"
		       "    database: analytics\n"
		       "    user: \"${CLICKHOUSE_USER:-default}\"\n"
		       "    password: \"${CLICKHOUSE_PASSWORD:-}\"\n",
		       0) != 0)
		return DTK_EXIT_USAGE;
	snprintf(path, sizeof(path), "%s/.env.example", dir);
	if (write_file(path,
		       "# Copy to .env and load it before running dtk (never commit .env)\n"
		       "CLICKHOUSE_HOST=localhost\nCLICKHOUSE_USER=default\nCLICKHOUSE_PASSWORD=\n"
		       "MATTERMOST_WEBHOOK=\n",
		       0) != 0)
		return DTK_EXIT_USAGE;
	snprintf(path, sizeof(path), "%s/README.md", dir);
	if (write_file(path,
		       "# Metrics\n\nOne YAML file per metric under `configs/`.\n\n"
		       "    dtk validate configs/*.yaml\n"
		       "    dtk run configs/example_metric.yaml\n"
		       "    dtk run-tagged configs --tags example\n",
		       0) != 0)
		return DTK_EXIT_USAGE;
	printf("project laid out in %s; try: dtk run %s/configs/example_metric.yaml\n", dir, dir);
	return DTK_EXIT_OK;
}
