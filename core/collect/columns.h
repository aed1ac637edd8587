/* SQL-family sources share three things, kept here so each driver is small:
 * - dtk_resultset: a generic result (column names plus cells as dtk_value),
 *   what every driver produces;
 * - dtk_columns: the column mapping of config.md (timestamp_column,
 *   value_column, context_columns, timezone) from a result set to rows;
 * - dtk_sql_driver: the per-scheme entry of the `sql` collector's table
 *   (sqlite.c), so a new database is one driver plus one line there.
 *
 * A compiled dtk_columns is immutable and may be shared between threads; a
 * dtk_resultset belongs to one thread. */
#ifndef DTK_COLLECT_COLUMNS_H
#define DTK_COLLECT_COLUMNS_H

#include <stddef.h>
#include <stdint.h>

#include "collect/collector.h"
#include "util/tz.h"
#include "util/value.h"

/* Bounds on what a query may return: a history load of a year of
 * one-minute points is about 526 000 rows. */
#define DTK_RESULTSET_MAX_ROWS ((size_t)2000000)
#define DTK_RESULTSET_MAX_TEXT ((size_t)256 << 20)

typedef struct dtk_resultset {
	size_t ncols;
	char **names; /* owned */
	size_t nrows, cap;
	dtk_value **cells; /* nrows * ncols, row-major, owned; NULL means SQL NULL */
	size_t text_bytes;
} dtk_resultset;

/* Starts an empty result with the given column names (copied). Returns 0,
 * or -1 with errstr when out of memory. */
int dtk_resultset_init(dtk_resultset *rs, size_t ncols, const char *const *names, char *errstr,
		       size_t errstr_size);
/* Appends a row and returns its ncols cells (all NULL), which the driver
 * fills with values the result set then owns. NULL with errstr past
 * DTK_RESULTSET_MAX_ROWS or when out of memory. */
dtk_value **dtk_resultset_add_row(dtk_resultset *rs, char *errstr, size_t errstr_size);
/* A string cell counted against DTK_RESULTSET_MAX_TEXT; returns a value
 * owned by the caller, or NULL with errstr. */
dtk_value *dtk_resultset_text(dtk_resultset *rs, const char *s, size_t len, char *errstr,
			      size_t errstr_size);
void dtk_resultset_clear(dtk_resultset *rs);

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

/* The file path of a `sqlite:///relative` or `sqlite:////absolute`
 * connection string (a `?query` suffix is ignored), written into out.
 * Returns 0, or -1 with errstr when conn is not such a string. */
int dtk_columns_sqlite_path(const char *conn, char *out, size_t outsz, char *errstr,
			    size_t errstr_size);
/* Resolves a SQLite path. Relative paths are relative to the current
 * directory, as in DetectK; when no such file exists there but one exists
 * under base_dir (the config's directory; may be NULL), that one is used.
 * Returns 0, or -1 when the result does not fit in outsz. */
int dtk_columns_resolve_path(const char *path, const char *base_dir, char *out, size_t outsz);

/* One database family of the `sql` collector. */
typedef struct dtk_sql_driver {
	const char *scheme; /* connection string scheme, before any "+driver" */
	/* Checks the connection string without connecting (NULL: any). */
	int (*check)(const char *conn, char *errstr, size_t errstr_size);
	/* Runs sql and fills out (initialised by the driver). NULL: the family
	 * is recognised but not available yet. Errors never include the
	 * connection string's user-info. */
	int (*query)(const char *conn, const char *base_dir, const char *sql, double timeout_s,
		     dtk_resultset *out, char *errstr, size_t errstr_size);
} dtk_sql_driver;

#endif
