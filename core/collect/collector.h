/* The collector interface: a collector turns (params, period) into rows of
 * (timestamp, value, context). A new collector is one file in
 * core/collect/ plus one line in registry.c.
 *
 * A compiled collector is immutable and may be used by several threads at
 * once; each collect() call opens (or borrows) its own connection. */
#ifndef DTK_COLLECT_COLLECTOR_H
#define DTK_COLLECT_COLLECTOR_H

#include <stddef.h>
#include <stdint.h>

#include "util/value.h"

typedef struct dtk_row {
	int64_t ts;	    /* UTC seconds */
	double value;	    /* meaningful when !is_missing */
	int is_missing;	    /* no rows, NULL, NaN or infinite */
	dtk_value *context; /* owned map of context columns, or NULL */
} dtk_row;

/* Rows oldest first, plus warnings (a list of strings). Owned by whoever
 * initialised it; dtk_rows_clear frees everything inside. */
typedef struct dtk_rows {
	dtk_row *rows;
	size_t n, cap;
	dtk_value *warnings;
} dtk_rows;

void dtk_rows_init(dtk_rows *r);
/* Appends; takes ownership of context. Returns 0 or -1 (out of memory). */
int dtk_rows_push(dtk_rows *r, int64_t ts, double value, int is_missing, dtk_value *context);
void dtk_rows_warn(dtk_rows *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void dtk_rows_clear(dtk_rows *r);

/* One collection: the period [period_start, period_finish) of a run. */
typedef struct dtk_collect_request {
	const char *metric_name;
	int64_t execution_time; /* aligned, UTC seconds */
	int64_t period_start;
	int64_t period_finish;
	int64_t interval;	    /* seconds */
	const char *interval_text;  /* the schedule interval as written */
	const char *base_dir;	    /* directory of the config file (relative sqlite paths) */
	struct dtk_db_pool *pool;   /* the thread's database connections; NULL = private */
} dtk_collect_request;

/* The variables queries, URLs and params render with (config.md,
 * Templates): period_start and period_finish (ISO 8601 UTC text),
 * interval (as written), execution_time (a datetime), metric_name. A map
 * owned by the caller, or NULL when out of memory. */
dtk_value *dtk_collect_vars(const dtk_collect_request *req);

typedef struct dtk_collector_type {
	const char *name;
	const char *summary; /* one line for `dtk list-collectors` */
	/* Checks params without connecting (templates compiled, required
	 * keys present, period variables used by SQL queries) and returns the
	 * compiled form, owned by the caller (free with destroy). params is the
	 * merged map: profile values, then explicit params, then the
	 * collector-level column keys. On error -1 and errstr "KEY: message". */
	int (*compile)(const dtk_value *params, dtk_value *warnings, void **compiled,
		       char *errstr, size_t errstr_size);
	void (*destroy)(void *compiled);
	/* Collects the period. Rows come back oldest first; zero rows is not
	 * an error (the pipeline records a missing point). On failure -1 with
	 * errstr (secrets masked) and nothing in out worth keeping. */
	int (*collect)(const void *compiled, const dtk_collect_request *req, dtk_rows *out,
		       char *errstr, size_t errstr_size);
	/* 1 when the result has a timestamp column, so load-history can ask
	 * for many slots per query. */
	int (*has_timestamps)(const void *compiled);
	/* NULL-terminated names of the params it reads; others get an
	 * unknown-key warning from `dtk validate`. NULL = not checked. */
	const char *const *known_params;
	/* Writes the connection-limit key of the source (fleet.md: e.g.
	 * postgres://db:5432) into out and returns 1, or returns 0 for sources
	 * that are not limited (files, synthetic). NULL = not limited. */
	int (*limit_key)(const void *compiled, char *out, size_t outsz);
} dtk_collector_type;

/* Registry (registry.c). NULL when unknown. */
const dtk_collector_type *dtk_collector_find(const char *name);
const dtk_collector_type *const *dtk_collector_types(void);

#endif
