/* Result sets and the column mapping shared by SQL-family collectors; see
 * columns.h. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "collect/columns.h"
#include "util/buf.h"
#include "util/pyfmt.h"
#include "util/timeparse.h"

/* Cell text quoted in messages is cut to this length. */
#define QUOTE_MAX 48

static int column_name_param(const dtk_value *params, const char *key, const char *def,
			     char **out, char *errstr, size_t errstr_size)
{
	const dtk_value *v = dtk_value_map_get(params, key);
	const char *s = def;
	if (v && v->type != DTK_V_NULL) {
		if (v->type != DTK_V_STR || v->u.str.len == 0) {
			snprintf(errstr, errstr_size, "%s: must be a column name", key);
			return -1;
		}
		s = v->u.str.s;
	}
	*out = strdup(s);
	if (!*out) {
		snprintf(errstr, errstr_size, "%s: out of memory", key);
		return -1;
	}
	return 0;
}

int dtk_columns_compile(const dtk_value *params, dtk_columns *c, char *errstr,
			size_t errstr_size)
{
	char err[200];
	memset(c, 0, sizeof(*c));
	if (column_name_param(params, "timestamp_column", "period_time", &c->timestamp_column,
			      errstr, errstr_size) != 0 ||
	    column_name_param(params, "value_column", "value", &c->value_column, errstr,
			      errstr_size) != 0)
		goto fail;

	const dtk_value *ctx = dtk_value_map_get(params, "context_columns");
	if (ctx && ctx->type != DTK_V_NULL) {
		const dtk_value *const *items = NULL;
		size_t n = 0;
		if (ctx->type == DTK_V_STR) {
			items = (const dtk_value *const *)&ctx;
			n = 1;
		} else if (ctx->type == DTK_V_LIST) {
			items = (const dtk_value *const *)ctx->u.list.items;
			n = ctx->u.list.n;
		} else {
			snprintf(errstr, errstr_size,
				 "context_columns: must be a list of column names, got %s",
				 dtk_value_type_name(ctx));
			goto fail;
		}
		if (n) {
			c->context = calloc(n, sizeof(*c->context));
			if (!c->context) {
				snprintf(errstr, errstr_size, "context_columns: out of memory");
				goto fail;
			}
		}
		for (size_t i = 0; i < n; i++) {
			if (items[i]->type != DTK_V_STR || items[i]->u.str.len == 0) {
				snprintf(errstr, errstr_size,
					 "context_columns[%zu]: must be a column name, got %s", i,
					 dtk_value_type_name(items[i]));
				goto fail;
			}
			c->context[i] = strdup(items[i]->u.str.s);
			if (!c->context[i]) {
				snprintf(errstr, errstr_size, "context_columns: out of memory");
				goto fail;
			}
			c->n_context = i + 1;
		}
	}

	const dtk_value *tz = dtk_value_map_get(params, "timezone");
	if (tz && tz->type != DTK_V_NULL) {
		if (tz->type != DTK_V_STR) {
			snprintf(errstr, errstr_size, "timezone: must be an IANA zone name, got %s",
				 dtk_value_type_name(tz));
			goto fail;
		}
		c->tz = dtk_tz_load(tz->u.str.s, err, sizeof(err));
		if (!c->tz) {
			snprintf(errstr, errstr_size, "timezone: %s", err);
			goto fail;
		}
	}
	return 0;
fail:
	dtk_columns_free(c);
	return -1;
}

void dtk_columns_free(dtk_columns *c)
{
	free(c->timestamp_column);
	free(c->value_column);
	for (size_t i = 0; i < c->n_context; i++)
		free(c->context[i]);
	free(c->context);
	dtk_tz_free(&c->tz);
	memset(c, 0, sizeof(*c));
}

static long find_column(const dtk_resultset *rs, const char *name)
{
	for (size_t i = 0; i < rs->ncols; i++)
		if (strcmp(rs->names[i], name) == 0)
			return (long)i;
	return -1;
}

/* "a, b, c" (bounded) for messages that list the columns a query returned. */
static void column_list(const dtk_resultset *rs, char *out, size_t outsz)
{
	dtk_buf b;
	dtk_buf_init(&b, outsz > 4 ? outsz - 4 : 1);
	for (size_t i = 0; i < rs->ncols; i++) {
		if (i)
			dtk_buf_adds(&b, ", ");
		dtk_buf_adds(&b, rs->names[i]);
	}
	if (rs->ncols == 0)
		dtk_buf_adds(&b, "none");
	snprintf(out, outsz, "%s%s", dtk_buf_str(&b), b.failed ? "..." : "");
	dtk_buf_free(&b);
}

static void quote_cell(const dtk_value *v, char *out, size_t outsz)
{
	size_t n = 0;
	for (size_t i = 0; i < v->u.str.len && i < QUOTE_MAX && n + 1 < outsz; i++) {
		unsigned char ch = (unsigned char)v->u.str.s[i];
		out[n++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
	}
	out[n] = '\0';
	if (v->u.str.len > QUOTE_MAX && n + 4 <= outsz)
		snprintf(out + n, outsz - n, "...");
}

/* A value cell to a number: 0 with *value and *missing set, or -1 with errstr. */
static int cell_number(const dtk_columns *c, const dtk_value *v, size_t row, double *value,
		       int *missing, char *errstr, size_t errstr_size)
{
	char quoted[QUOTE_MAX + 8];
	*missing = 0;
	*value = 0.0;
	if (!v || v->type == DTK_V_NULL) {
		*missing = 1;
		return 0;
	}
	switch (v->type) {
	case DTK_V_BOOL:
	case DTK_V_INT:
	case DTK_V_FLOAT:
		dtk_value_number(v, value);
		break;
	case DTK_V_STR: {
		const char *s = v->u.str.s;
		char *end = NULL;
		while (*s == ' ' || *s == '\t')
			s++;
		errno = 0;
		*value = strtod(s, &end);
		while (end && (*end == ' ' || *end == '\t'))
			end++;
		/* strtod also reads hex; Python's float() (DetectK) does not. */
		if (end == s || *end != '\0' || strpbrk(s, "xX") ||
		    (size_t)(end - v->u.str.s) != v->u.str.len) {
			quote_cell(v, quoted, sizeof(quoted));
			snprintf(errstr, errstr_size,
				 "value_column '%s', row %zu: non-numeric text '%s'",
				 c->value_column, row + 1, quoted);
			return -1;
		}
		break;
	}
	default:
		snprintf(errstr, errstr_size, "value_column '%s', row %zu: not a number (got %s)",
			 c->value_column, row + 1, dtk_value_type_name(v));
		return -1;
	}
	if (!isfinite(*value)) {
		*missing = 1;
		*value = 0.0;
	}
	return 0;
}

typedef struct mapped_row {
	int64_t ts;
	double value;
	int missing;
	size_t order;
	dtk_value *context;
} mapped_row;

static int mapped_cmp(const void *a, const void *b)
{
	const mapped_row *x = a, *y = b;
	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int row_context(const dtk_columns *c, const dtk_resultset *rs, const long *ctx_idx,
		       size_t row, dtk_value **out)
{
	*out = NULL;
	if (c->n_context == 0)
		return 0;
	dtk_value *map = dtk_value_map();
	if (!map)
		return -1;
	for (size_t k = 0; k < c->n_context; k++) {
		if (ctx_idx[k] < 0)
			continue;
		const dtk_value *cell = rs->cells[row * rs->ncols + (size_t)ctx_idx[k]];
		dtk_value *copy = cell ? dtk_value_copy(cell) : dtk_value_null();
		if (!copy || dtk_value_map_set(map, c->context[k], copy) != 0) {
			dtk_value_free(&copy);
			dtk_value_free(&map);
			return -1;
		}
	}
	*out = map;
	return 0;
}

int dtk_columns_map(const dtk_columns *c, const dtk_resultset *rs, const dtk_collect_request *req,
		    dtk_rows *out, char *errstr, size_t errstr_size)
{
	char cols[400], err[200], when[40];
	int rc = -1;
	long *ctx_idx = NULL;
	mapped_row *m = NULL;
	size_t nm = 0, m_len = 0, outside = 0, null_ts = 0;

	if (rs->ncols == 0 && rs->nrows == 0)
		return 0;
	long vi = find_column(rs, c->value_column);
	long ti = find_column(rs, c->timestamp_column);
	if (vi < 0 && rs->ncols == 1 && ti < 0)
		vi = 0;
	if (vi < 0) {
		column_list(rs, cols, sizeof(cols));
		snprintf(errstr, errstr_size,
			 "value_column '%s' is not in the query result (columns: %s); name the "
			 "value column in the query or set value_column",
			 c->value_column, cols);
		goto out;
	}
	if (ti == vi)
		ti = -1;
	if (c->n_context) {
		ctx_idx = calloc(c->n_context, sizeof(*ctx_idx));
		if (!ctx_idx)
			goto oom;
		for (size_t k = 0; k < c->n_context; k++) {
			ctx_idx[k] = find_column(rs, c->context[k]);
			if (ctx_idx[k] < 0) {
				column_list(rs, cols, sizeof(cols));
				dtk_rows_warn(out,
					      "context column '%s' is not in the query result "
					      "(columns: %s)",
					      c->context[k], cols);
			}
		}
	}
	if (rs->nrows == 0) {
		rc = 0;
		goto out;
	}

	size_t nrows = ti < 0 ? 1 : rs->nrows;
	if (ti < 0 && rs->nrows > 1)
		dtk_rows_warn(out,
			      "the query returned %zu rows but no timestamp column '%s'; using the "
			      "first row as the value at period_finish",
			      rs->nrows, c->timestamp_column);
	m = calloc(nrows, sizeof(*m));
	if (!m)
		goto oom;
	m_len = nrows;
	for (size_t r = 0; r < nrows; r++) {
		dtk_value *const *cells = rs->cells + r * rs->ncols;
		mapped_row *mr = &m[nm];
		mr->order = r;
		mr->ts = req->period_finish;
		if (ti >= 0) {
			const dtk_value *tv = cells[ti];
			if (!tv || tv->type == DTK_V_NULL) {
				null_ts++;
				continue;
			}
			if (dtk_timeparse_value(tv, c->tz, &mr->ts, err, sizeof(err)) != 0) {
				snprintf(errstr, errstr_size, "timestamp_column '%s', row %zu: %s",
					 c->timestamp_column, r + 1, err);
				goto out;
			}
			if (mr->ts < req->period_start || mr->ts >= req->period_finish) {
				if (outside++ == 0)
					dtk_pyfmt_datetime(mr->ts, 0, 'T', when, sizeof(when));
				mr->ts = req->period_finish;
			}
		}
		if (cell_number(c, cells[vi], r, &mr->value, &mr->missing, errstr, errstr_size) !=
		    0)
			goto out;
		if (row_context(c, rs, ctx_idx, r, &mr->context) != 0)
			goto oom;
		nm++;
	}
	if (null_ts)
		dtk_rows_warn(out, "skipped %zu row(s) with a NULL timestamp in column '%s'",
			      null_ts, c->timestamp_column);
	if (outside) {
		char ps[40], pf[40];
		dtk_pyfmt_datetime(req->period_start, 0, 'T', ps, sizeof(ps));
		dtk_pyfmt_datetime(req->period_finish, 0, 'T', pf, sizeof(pf));
		dtk_rows_warn(out,
			      "%zu row timestamp(s) outside the period [%s, %s) (first: %s) were "
			      "recorded at period_finish",
			      outside, ps, pf, when);
	}
	qsort(m, nm, sizeof(*m), mapped_cmp);
	for (size_t i = 0; i < nm; i++) {
		if (dtk_rows_push(out, m[i].ts, m[i].value, m[i].missing, m[i].context) != 0)
			goto oom;
		m[i].context = NULL;
	}
	rc = 0;
	goto out;
oom:
	snprintf(errstr, errstr_size, "out of memory mapping the query result");
out:
	for (size_t i = 0; m && i < m_len; i++)
		dtk_value_free(&m[i].context);
	free(m);
	free(ctx_idx);
	return rc;
}
