/* Reporting results to people and programs, shared by `dtk` and
 * `dtk-dispatch` (report.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "report.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/pyfmt.h"
#include "util/timeparse.h"

int dtk_report_exit_merge(int a, int b)
{
	static const int rank[] = {[DTK_EXIT_OK] = 0, [DTK_EXIT_ANOMALY] = 1,
				   [DTK_EXIT_FAILED] = 2, [DTK_EXIT_USAGE] = 3};
	return rank[a] >= rank[b] ? a : b;
}

int dtk_report_parse_time(const char *s, int64_t *out)
{
	char err[256];
	if (dtk_timeparse_text(s, strlen(s), NULL, out, err, sizeof(err)) != 0) {
		fprintf(stderr, "bad time '%s': %s (use ISO 8601, e.g. 2024-11-02T14:30:00Z)\n",
			s, err);
		return -1;
	}
	return 0;
}

void dtk_report_json(FILE *f, const dtk_value *v, int pretty)
{
	dtk_buf b;
	dtk_buf_init(&b, 0);
	dtk_json_emit(&b, v, DTK_JSON_INF_AS_STRING | DTK_JSON_RAW_UTF8 |
				     (pretty ? DTK_JSON_PRETTY : 0));
	dtk_buf_addc(&b, '\n');
	fwrite(dtk_buf_str(&b), 1, b.len, f);
	dtk_buf_free(&b);
}

static const char *str_of(const dtk_value *m, const char *k)
{
	return dtk_value_cstr(dtk_value_map_get(m, k));
}

void dtk_report_errors(const dtk_check_result *r)
{
	const dtk_value *errors = dtk_value_map_get(r->json, "errors");
	const char *metric = str_of(r->json, "metric");
	for (size_t i = 0; errors && i < errors->u.list.n; i++)
		fprintf(stderr, "dtk: %s: %s error: %s\n", metric,
			str_of(errors->u.list.items[i], "stage"),
			str_of(errors->u.list.items[i], "message"));
}

int dtk_report_exit(const dtk_check_result *r, int fail_on_anomaly)
{
	if (strcmp(r->status, "error") == 0)
		return DTK_EXIT_FAILED;
	if (strcmp(r->status, "anomaly") == 0 && fail_on_anomaly)
		return DTK_EXIT_ANOMALY;
	return DTK_EXIT_OK;
}


static void num_text(const dtk_value *v, const char *fmt, char *out, size_t outsz)
{
	double x;
	if (v && v->type == DTK_V_STR)
		snprintf(out, outsz, "%s", v->u.str.s);
	else if (dtk_value_number(v, &x))
		snprintf(out, outsz, fmt, x);
	else
		snprintf(out, outsz, "-");
}

void dtk_report_text(FILE *f, const dtk_check_result *r)
{
	const dtk_value *j = r->json;
	const char *exec = str_of(j, "execution_time"), *req = str_of(j, "requested_time");
	fprintf(f, "%s: %s\n", str_of(j, "metric"), r->status);
	if (req && exec && strcmp(req, exec) != 0)
		fprintf(f, "  time:      %s (requested %s)\n", exec, req);
	else
		fprintf(f, "  time:      %s\n", exec ? exec : "-");
	const dtk_value *dp = dtk_value_map_get(j, "datapoint");
	if (dp && dp->type == DTK_V_MAP) {
		char val[64];
		num_text(dtk_value_map_get(dp, "value"), "%.6g", val, sizeof(val));
		fprintf(f, "  value:     %s at %s%s\n",
			dtk_value_truthy(dtk_value_map_get(dp, "is_missing")) ? "missing" : val,
			str_of(dp, "timestamp"), "");
	}
	const dtk_value *dets = dtk_value_map_get(j, "detections");
	for (size_t i = 0; dets && i < dets->u.list.n; i++) {
		const dtk_value *d = dets->u.list.items[i];
		const char *skipped = str_of(d, "skipped");
		fprintf(f, "  %-9s  %s %s", dtk_value_truthy(dtk_value_map_get(d, "is_anomaly"))
						   ? "ANOMALY"
					   : skipped ? "skipped"
						     : "normal",
			str_of(d, "detector_type"), str_of(d, "detector_id"));
		if (skipped) {
			fprintf(f, ": %s\n", skipped);
			continue;
		}
		char score[64], lo[64], hi[64], dev[64];
		num_text(dtk_value_map_get(d, "score"), "%.2f", score, sizeof(score));
		num_text(dtk_value_map_get(d, "lower_bound"), "%.2f", lo, sizeof(lo));
		num_text(dtk_value_map_get(d, "upper_bound"), "%.2f", hi, sizeof(hi));
		num_text(dtk_value_map_get(d, "percent_deviation"), "%+.1f%%", dev, sizeof(dev));
		const char *dir = str_of(d, "direction");
		fprintf(f, ": score=%s range=[%s, %s] direction=%s deviation=%s\n", score, lo, hi,
			dir ? dir : "-", dev);
	}
	const dtk_value *alerts = dtk_value_map_get(j, "alerts");
	for (size_t i = 0; alerts && i < alerts->u.list.n; i++) {
		const dtk_value *a = alerts->u.list.items[i];
		const char *sup = str_of(a, "suppressed_by"), *err = str_of(a, "error");
		int sent = dtk_value_truthy(dtk_value_map_get(a, "sent"));
		const char *outcome = sent  ? "sent"
				      : sup ? "suppressed by "
				      : err ? "delivery failed"
					    : "not needed";
		fprintf(f, "  alert      %s: %s%s\n", str_of(a, "type"), outcome, sup ? sup : "");
		if (err)
			fprintf(f, "             error: %s\n", err);
	}
	if (dtk_value_map_get(j, "errors") && dtk_value_map_get(j, "errors")->u.list.n)
		fprintf(f, "  errors     see stderr\n");
	const dtk_value *warnings = dtk_value_map_get(j, "warnings");
	for (size_t i = 0; warnings && i < warnings->u.list.n; i++)
		fprintf(f, "  warning    %s\n", dtk_value_cstr(warnings->u.list.items[i]));
}

/* With --output json stdout carries only the result document, so what the
 * checks print there meanwhile (the console alerter's stdout stream) goes
 * to stderr. Returns the saved stdout descriptor for stdout_restore, or -1
 * when stdout was left as it is. */
int dtk_report_stdout_to_stderr(void)
{
	fflush(stdout);
	int saved = dup(STDOUT_FILENO);
	if (saved >= 0 && dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
		close(saved);
		saved = -1;
	}
	return saved;
}

void dtk_report_stdout_restore(int saved)
{
	if (saved < 0)
		return;
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
}
