/* dtk_resultset: the generic query result every driver fills (db.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"

int dtk_resultset_init(dtk_resultset *rs, size_t ncols, const char *const *names, char *errstr,
		       size_t errstr_size)
{
	memset(rs, 0, sizeof(*rs));
	if (ncols == 0)
		return 0;
	rs->names = calloc(ncols, sizeof(*rs->names));
	if (!rs->names)
		goto oom;
	rs->ncols = ncols;
	for (size_t i = 0; i < ncols; i++) {
		rs->names[i] = strdup(names[i] ? names[i] : "");
		if (!rs->names[i])
			goto oom;
	}
	return 0;
oom:
	dtk_resultset_clear(rs);
	snprintf(errstr, errstr_size, "out of memory reading the result");
	return -1;
}

dtk_value **dtk_resultset_add_row(dtk_resultset *rs, char *errstr, size_t errstr_size)
{
	if (rs->nrows >= DTK_RESULTSET_MAX_ROWS) {
		snprintf(errstr, errstr_size,
			 "the query returned more than %zu rows; load history in smaller batches",
			 DTK_RESULTSET_MAX_ROWS);
		return NULL;
	}
	if (rs->nrows == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 16;
		dtk_value **cells = realloc(rs->cells, cap * (rs->ncols ? rs->ncols : 1) *
							      sizeof(*cells));
		if (!cells) {
			snprintf(errstr, errstr_size, "out of memory reading the result");
			return NULL;
		}
		rs->cells = cells;
		rs->cap = cap;
	}
	dtk_value **row = rs->cells + rs->nrows * rs->ncols;
	for (size_t i = 0; i < rs->ncols; i++)
		row[i] = NULL;
	rs->nrows++;
	return row;
}

dtk_value *dtk_resultset_text(dtk_resultset *rs, const char *s, size_t len, char *errstr,
			      size_t errstr_size)
{
	if (len > DTK_RESULTSET_MAX_TEXT - rs->text_bytes) {
		snprintf(errstr, errstr_size, "the query returned more than %zu MiB of text",
			 DTK_RESULTSET_MAX_TEXT >> 20);
		return NULL;
	}
	dtk_value *v = dtk_value_strn(s ? s : "", s ? len : 0);
	if (!v) {
		snprintf(errstr, errstr_size, "out of memory reading the result");
		return NULL;
	}
	rs->text_bytes += len;
	return v;
}

void dtk_resultset_clear(dtk_resultset *rs)
{
	for (size_t i = 0; i < rs->nrows * rs->ncols; i++)
		dtk_value_free(&rs->cells[i]);
	free(rs->cells);
	for (size_t i = 0; rs->names && i < rs->ncols; i++)
		free(rs->names[i]);
	free(rs->names);
	memset(rs, 0, sizeof(*rs));
}
