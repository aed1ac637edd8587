/* The `dtk` command line: one file per group of commands. */
#ifndef DTK_CLI_H
#define DTK_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "check.h"
#include "config/config.h"

enum {
	DTK_EXIT_OK = 0,
	DTK_EXIT_FAILED = 1,  /* a check failed */
	DTK_EXIT_USAGE = 2,   /* usage error or a config failed to load */
	DTK_EXIT_ANOMALY = 3, /* anomalies with --fail-on-anomaly */
};

/* Combines exit codes by precedence: 2 before 1 before 3 before 0. */
int cli_exit_merge(int a, int b);

/* Parses a time argument (ISO 8601, or epoch seconds) into *out. */
int cli_parse_time(const char *s, int64_t *out);

/* Prints a check result as text (cli.md `dtk run`) to f. */
void cli_print_result_text(FILE *f, const dtk_check_result *r);
/* Prints the check's errors (stage and masked message) on stderr. */
void cli_print_errors(const dtk_check_result *r);
/* Prints v as one JSON document and a newline. */
void cli_print_json(FILE *f, const dtk_value *v, int pretty);
/* The exit code a result contributes. */
int cli_result_exit(const dtk_check_result *r, int fail_on_anomaly);

int cmd_run(int argc, char **argv);
int cmd_run_tagged(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_list_metrics(int argc, char **argv);
int cmd_list_collectors(int argc, char **argv);
int cmd_list_detectors(int argc, char **argv);
int cmd_list_alerters(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_init_project(int argc, char **argv);
int cmd_load_history(int argc, char **argv);

#endif
