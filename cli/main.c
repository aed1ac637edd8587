/* dtk: DetectK's command line, in C. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} command;

static const command commands[] = {
	{"run", cmd_run, "run one check: collect, store, detect, alert"},
	{"run-tagged", cmd_run_tagged, "run every config in a directory selected by tags"},
	{"validate", cmd_validate, "check configs without connecting to anything"},
	{"list-metrics", cmd_list_metrics, "list the metric configs of a project"},
	{"list-collectors", cmd_list_collectors, "list the collector types"},
	{"list-detectors", cmd_list_detectors, "list the detector types"},
	{"list-alerters", cmd_list_alerters, "list the alerter types"},
	{"init", cmd_init, "write a runnable example config"},
	{"init-project", cmd_init_project, "lay out a new project"},
	{"load-history", cmd_load_history, "fill storage from the source over a time range"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: dtk COMMAND [OPTIONS]\n\n"
		   "Metric anomaly detection, DetectK-compatible. Commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-16s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n`dtk COMMAND --help` describes each. Exit codes: 0 ok, 1 a check failed,\n"
		   "2 usage or config error, 3 anomalies with --fail-on-anomaly.\n"
		   "Environment: DTK_STATE_DIR (local storage and alert state),\n"
		   "DETECTK_PROFILES_PATH (connection profiles).\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return DTK_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return DTK_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("dtk %s\n", DTK_VERSION);
		return DTK_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "dtk: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return DTK_EXIT_USAGE;
}
