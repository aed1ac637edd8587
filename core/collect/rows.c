/* dtk_rows: the growable row list every collector fills. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "collect/collector.h"
#include "util/pyfmt.h"

/* Warnings are short notes for the result; a longer one is truncated. */
#define DTK_ROWS_WARNING_MAX 512

void dtk_rows_init(dtk_rows *r)
{
	r->rows = NULL;
	r->n = 0;
	r->cap = 0;
	/* Best effort: when this allocation fails, dtk_rows_warn retries. */
	r->warnings = dtk_value_list();
}

int dtk_rows_push(dtk_rows *r, int64_t ts, double value, int is_missing, dtk_value *context)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		dtk_row *rows = realloc(r->rows, cap * sizeof(*rows));
		if (!rows)
			return -1;
		r->rows = rows;
		r->cap = cap;
	}
	dtk_row *row = &r->rows[r->n++];
	row->ts = ts;
	row->value = is_missing ? 0.0 : value;
	row->is_missing = is_missing ? 1 : 0;
	row->context = context;
	return 0;
}

void dtk_rows_warn(dtk_rows *r, const char *fmt, ...)
{
	char msg[DTK_ROWS_WARNING_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!r->warnings)
		r->warnings = dtk_value_list();
	if (!r->warnings)
		return;
	dtk_value *s = dtk_value_str(msg);
	if (s && dtk_value_list_push(r->warnings, s) != 0)
		dtk_value_free(&s);
}

void dtk_rows_clear(dtk_rows *r)
{
	for (size_t i = 0; i < r->n; i++)
		dtk_value_free(&r->rows[i].context);
	free(r->rows);
	r->rows = NULL;
	r->n = 0;
	r->cap = 0;
	dtk_value_free(&r->warnings);
}

dtk_value *dtk_collect_vars(const dtk_collect_request *req)
{
	char ps[40], pf[40], iv[48];
	dtk_value *vars = dtk_value_map();
	dtk_value *exec = dtk_value_datetime(req->execution_time, 0);
	dtk_pyfmt_datetime(req->period_start, 0, 'T', ps, sizeof(ps));
	dtk_pyfmt_datetime(req->period_finish, 0, 'T', pf, sizeof(pf));
	if (req->interval_text)
		snprintf(iv, sizeof(iv), "%s", req->interval_text);
	else
		snprintf(iv, sizeof(iv), "%lld seconds", (long long)req->interval);
	if (!vars || !exec || dtk_value_map_set(vars, "execution_time", exec) != 0)
		goto fail;
	exec = NULL;
	if (dtk_value_map_set_str(vars, "period_start", ps) != 0 ||
	    dtk_value_map_set_str(vars, "period_finish", pf) != 0 ||
	    dtk_value_map_set_str(vars, "interval", iv) != 0 ||
	    dtk_value_map_set_str(vars, "metric_name",
				  req->metric_name ? req->metric_name : "") != 0)
		goto fail;
	return vars;
fail:
	dtk_value_free(&exec);
	dtk_value_free(&vars);
	return NULL;
}
