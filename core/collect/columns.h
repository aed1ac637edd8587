/* The column mapping of config.md shared by SQL-family collectors: from a
 * dtk_resultset (db/db.h) to rows, by column name.
 *
 * A compiled dtk_columns is immutable and may be shared between threads. */
#ifndef DTK_COLLECT_COLUMNS_H
#define DTK_COLLECT_COLUMNS_H

#include <stddef.h>
#include <stdint.h>

#include "collect/collector.h"
#include "db/db.h"
#include "util/tz.h"
#include "util/value.h"

typedef struct dtk_columns {
	char *timestamp_column; /* default "period_time" */
	char *value_column;	/* default "value" */
	char **context;		/* context_columns */
	size_t n_context;
	dtk_tz *tz; /* the `timezone` param for timestamps without offset; NULL = UTC */
} dtk_columns;

/* Reads timestamp_column, value_column, context_columns (a list of names or
 * one name) and timezone from params (borrowed) into c, which the caller
 * releases with dtk_columns_free. Returns 0, or -1 with "KEY: message". */
int dtk_columns_compile(const dtk_value *params, dtk_columns *c, char *errstr,
			size_t errstr_size);
void dtk_columns_free(dtk_columns *c);

/* Maps rs to rows of out (oldest first), per config.md "Column mapping":
 * columns by name; no timestamp column (or a single-column result) puts the
 * first row's value at period_finish; a timestamp outside [period_start,
 * period_finish) becomes period_finish with a warning; NULL, NaN and
 * infinite values are missing; numeric text is a number, other text an
 * error; a NULL timestamp skips the row with a warning; a context column
 * absent from the result is a warning. Returns 0, or -1 with errstr (rows
 * already appended to out stay there for the caller to clear). */
int dtk_columns_map(const dtk_columns *c, const dtk_resultset *rs, const dtk_collect_request *req,
		    dtk_rows *out, char *errstr, size_t errstr_size);

#endif
