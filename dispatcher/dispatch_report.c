/* The report of a dispatch, in-process or through Kafka: the text
 * summary, or the JSON of fleet.md, and the exit code of cli.md. */
#include "dispatch_report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "report.h"

typedef struct dispatch_counts {
	size_t selected, published, undelivered, results, ok, anomaly, error, expired, rejected,
		missing, invalid;
} dispatch_counts;

static int has_positions(const dispatch_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (e[i].has_position)
			return 1;
	return 0;
}

/* The exit code and counter of one result's status. */
static int count_status(dispatch_counts *c, const char *status, int fail_on_anomaly)
{
	c->results++;
	if (strcmp(status, "ok") == 0) {
		c->ok++;
		return DTK_EXIT_OK;
	}
	if (strcmp(status, "anomaly") == 0) {
		c->anomaly++;
		return fail_on_anomaly ? DTK_EXIT_ANOMALY : DTK_EXIT_OK;
	}
	if (strcmp(status, "expired") == 0)
		c->expired++;
	else if (strcmp(status, "rejected") == 0)
		c->rejected++;
	else
		c->error++;
	return DTK_EXIT_FAILED;
}

static void push_map(dtk_value *list, dtk_value *m)
{
	if (dtk_value_list_push(list, m) != 0)
		dtk_value_free(&m);
}

int dispatch_report(const dtk_selected *items, dispatch_entry *e, size_t n,
		    const char *dispatch_id, const char *where, int waited, int64_t timeout_s,
		    int json, int fail_on_anomaly)
{
	int rc = DTK_EXIT_OK;
	dispatch_counts c = {.selected = n};
	dtk_value *results = dtk_value_list(), *inv = dtk_value_list(), *reqs = dtk_value_list(),
		  *undelivered = dtk_value_list();
	for (size_t i = 0; i < n; i++) {
		const dtk_selected *it = &items[i];
		if (it->error) {
			c.invalid++;
			rc = dtk_report_exit_merge(rc, DTK_EXIT_USAGE);
			dtk_value *bad = dtk_value_map();
			dtk_value_map_set_str(bad, "path", it->path);
			dtk_value_map_set_str(bad, "error", it->error);
			push_map(inv, bad);
			if (!json)
				fprintf(stderr, "dtk-dispatch: config error: %s\n", it->error);
			continue;
		}
		dispatch_entry *en = &e[i];
		char exec[48];
		dtk_format_time(en->execution_time * 1000, 0, exec, sizeof(exec));
		if (en->undelivered) {
			c.undelivered++;
			rc = dtk_report_exit_merge(rc, DTK_EXIT_FAILED);
			dtk_value *u = dtk_value_map();
			dtk_value_map_set_str(u, "metric", en->metric);
			dtk_value_map_set_str(u, "request_id", en->request_id);
			dtk_value_map_set_str(u, "error", en->undelivered);
			push_map(undelivered, u);
			fprintf(stderr, "dtk-dispatch: %s: %s\n", en->metric, en->undelivered);
			continue;
		}
		c.published++;
		if (en->has_position) {
			dtk_value *r = dtk_value_map();
			dtk_value_map_set_str(r, "metric", en->metric);
			dtk_value_map_set_str(r, "request_id", en->request_id);
			dtk_value_map_set_str(r, "execution_time", exec);
			dtk_value_map_set_int(r, "partition", en->partition);
			dtk_value_map_set_int(r, "offset", en->offset);
			push_map(reqs, r);
		}
		if (!waited) {
			if (!json)
				printf("published %s at %s: request %s\n", en->metric, exec,
				       en->request_id);
			continue;
		}
		if (!en->result) {
			c.missing++;
			rc = dtk_report_exit_merge(rc, DTK_EXIT_FAILED);
			if (en->request_id)
				fprintf(stderr, "dtk-dispatch: %s: no result within %llds (request %s)\n",
					en->metric, (long long)timeout_s, en->request_id);
			else
				fprintf(stderr, "dtk-dispatch: %s: no result\n", en->metric);
			continue;
		}
		const char *status = dtk_value_cstr(dtk_value_map_get(en->result, "status"));
		dtk_check_result res = {.status = status, .json = en->result};
		rc = dtk_report_exit_merge(rc, count_status(&c, status, fail_on_anomaly));
		dtk_report_errors(&res);
		if (json) {
			if (dtk_value_list_push(results, en->result) == 0)
				en->result = NULL;
		} else {
			dtk_report_text(stdout, &res);
		}
	}
	if (json) {
		dtk_value *doc = dtk_value_map(), *sum = dtk_value_map();
		dtk_value_map_set_str(doc, "dispatch_id", dispatch_id);
		const struct {
			const char *k;
			size_t v;
		} fields[] = {{"selected", c.selected},	  {"published", c.published},
			      {"results", c.results},	  {"ok", c.ok},
			      {"anomaly", c.anomaly},	  {"error", c.error},
			      {"expired", c.expired},	  {"rejected", c.rejected},
			      {"missing", c.missing},	  {"invalid_configs", c.invalid},
			      {"undelivered", c.undelivered}};
		/* undelivered (the last field) is a Kafka addition */
		size_t nfields = sizeof(fields) / sizeof(fields[0]) - !has_positions(e, n);
		for (size_t k = 0; k < nfields; k++)
			dtk_value_map_set_int(sum, fields[k].k, (int64_t)fields[k].v);
		dtk_value_map_set(doc, "summary", sum);
		dtk_value_map_set(doc, "results", results);
		dtk_value_map_set(doc, "invalid", inv);
		if (has_positions(e, n)) {
			dtk_value_map_set(doc, "requests", reqs);
			dtk_value_map_set(doc, "undelivered", undelivered);
		} else {
			dtk_value_free(&reqs);
			dtk_value_free(&undelivered);
		}
		dtk_report_json(stdout, doc, 0);
		dtk_value_free(&doc);
		return rc;
	}
	if (waited)
		printf("\ndispatch %s (%s): selected %zu, published %zu, ok %zu, anomaly %zu, "
		       "error %zu, expired %zu, rejected %zu, missing %zu, invalid configs %zu%s",
		       dispatch_id, where, c.selected, c.published, c.ok, c.anomaly, c.error,
		       c.expired, c.rejected, c.missing, c.invalid, c.undelivered ? "" : "\n");
	else
		printf("\ndispatch %s (%s): selected %zu, published %zu, invalid configs "
		       "%zu%s",
		       dispatch_id, where, c.selected, c.published, c.invalid,
		       c.undelivered ? "" : "\n");
	if (c.undelivered)
		printf(", undelivered %zu\n", c.undelivered);
	dtk_value_free(&results);
	dtk_value_free(&inv);
	dtk_value_free(&reqs);
	dtk_value_free(&undelivered);
	return rc;
}
