/* Reporting check results to people (text) and programs (JSON), and the
 * exit codes of cli.md, shared by `dtk` and `dtk-dispatch`. */
#ifndef DTK_REPORT_H
#define DTK_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "check.h"

enum {
	DTK_EXIT_OK = 0,
	DTK_EXIT_FAILED = 1,  /* a check failed */
	DTK_EXIT_USAGE = 2,   /* usage error or a config failed to load */
	DTK_EXIT_ANOMALY = 3, /* anomalies with --fail-on-anomaly */
};

/* Combines exit codes by precedence: 2 before 1 before 3 before 0. */
int dtk_report_exit_merge(int a, int b);

/* The exit code a result contributes. */
int dtk_report_exit(const dtk_check_result *r, int fail_on_anomaly);

/* Parses a time argument (ISO 8601, or epoch seconds) into *out; prints
 * the reason on stderr and returns -1 when it is not one. */
int dtk_report_parse_time(const char *s, int64_t *out);

/* Prints a check result as text (cli.md `dtk run`) to f. */
void dtk_report_text(FILE *f, const dtk_check_result *r);
/* Prints the check's errors (stage and masked message) on stderr. */
void dtk_report_errors(const dtk_check_result *r);
/* Prints v as one JSON document and a newline. */
void dtk_report_json(FILE *f, const dtk_value *v, int pretty);

/* Points stdout at stderr while checks run, so a console alerter cannot
 * interleave text with a JSON document; returns the saved descriptor for
 * dtk_report_stdout_restore, or -1 when stdout was left as it is. */
int dtk_report_stdout_to_stderr(void);
void dtk_report_stdout_restore(int saved);

#endif
