/* Storage of datapoints and detections (config.md, Storage). SQLite is the
 * embedded default; PostgreSQL, MySQL/MariaDB and ClickHouse are backends
 * of the same vtable, one file each plus one line in store.c.
 *
 * A dtk_store belongs to one thread (it may hold a connection, or borrow
 * them from the thread's dtk_db_pool). */
#ifndef DTK_STORE_STORE_H
#define DTK_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "collect/collector.h"
#include "util/value.h"

typedef struct dtk_store dtk_store;

/* Baseline history, oldest first, non-missing points only. Owned by the
 * caller; dtk_series_clear frees it. */
typedef struct dtk_series {
	size_t n, cap;
	int64_t *ts;
	double *values;
	dtk_value **context; /* per point, map or NULL */
} dtk_series;

void dtk_series_clear(dtk_series *s);

/* Appends a point (and, with_context, its context map, which the series
 * then owns). Returns 0, or -1 when out of memory (ctx stays with the
 * caller). Every backend fills history through it. */
int dtk_series_push(dtk_series *out, int64_t ts, double v, int with_context, dtk_value *ctx);

/* One detection row for dtk_detections. */
typedef struct dtk_detection_row {
	const char *detector_id;
	const char *detector_type;
	int is_anomaly;
	double score, lower_bound, upper_bound, percent_deviation; /* NAN = NULL */
	const char *direction;
	int alert_sent;
	const char *alert_reason;
	const char *metadata_json;
} dtk_detection_row;

struct dtk_db_pool;

/* A storage engine. Every function takes the handle open() returned. */
typedef struct dtk_store_backend {
	const char *engine; /* "sqlite", "postgres", "mysql", "clickhouse" */
	/* Connects (or prepares to borrow connections from pool, which may be
	 * NULL) and creates the tables when missing. type is the storage block's
	 * type ("sql", an engine name, or NULL/"" for the local database). */
	void *(*open)(const char *type, const dtk_value *params, const char *base_dir,
		      struct dtk_db_pool *pool, char *errstr, size_t errstr_size);
	void (*close)(void *h);
	int (*upsert)(void *h, const char *metric, const dtk_row *rows, size_t n, char *errstr,
		      size_t errstr_size);
	int (*history)(void *h, const char *metric, int64_t since, int64_t before,
		       int64_t min_points, int with_context, dtk_series *out, char *errstr,
		       size_t errstr_size);
	int (*newest)(void *h, const char *metric, int64_t *ts, int *found, char *errstr,
		      size_t errstr_size);
	int (*last)(void *h, const char *metric, int64_t *ts, int *found, char *errstr,
		    size_t errstr_size);
	int (*save_detections)(void *h, const char *metric, int64_t collected_at,
			       int64_t execution_time, const dtk_detection_row *rows, size_t n,
			       char *errstr, size_t errstr_size);
	int (*retention)(void *h, const char *metric, int64_t now, int64_t datapoint_days,
			 int64_t detection_days, char *errstr, size_t errstr_size);
} dtk_store_backend;

/* Opens storage described by a storage block's merged params and type
 * ("sqlite", "postgres", "mysql", "clickhouse", or "sql" whose
 * connection_string scheme decides; "" or NULL means the local state
 * database). base_dir resolves relative sqlite paths; pool (may be NULL)
 * lends server connections. Creates the tables when missing. Returns a
 * store owned by the caller, or NULL with errstr. */
dtk_store *dtk_store_open(const char *type, const dtk_value *params, const char *base_dir,
			  struct dtk_db_pool *pool, char *errstr, size_t errstr_size);
void dtk_store_close(dtk_store **s);

/* Upserts rows (one transaction) on (metric_name, collected_at). */
int dtk_store_upsert(dtk_store *s, const char *metric, const dtk_row *rows, size_t n,
		     char *errstr, size_t errstr_size);

/* Non-missing points of metric with since <= ts < before, plus, when
 * min_points > 0, at least the newest min_points points before `before`.
 * Appends to out, oldest first. Context maps are read only with_context
 * (out->context stays NULL otherwise: parsing them dominates the cost of
 * a check that does not need them). */
int dtk_store_history(dtk_store *s, const char *metric, int64_t since, int64_t before,
		      int64_t min_points, int with_context, dtk_series *out, char *errstr,
		      size_t errstr_size);

/* The newest non-missing point's timestamp; *found 0 when none. */
int dtk_store_newest(dtk_store *s, const char *metric, int64_t *ts, int *found,
		     char *errstr, size_t errstr_size);

/* The newest stored timestamp, missing or not (load-history resumes after
 * it); *found 0 when none. */
int dtk_store_last(dtk_store *s, const char *metric, int64_t *ts, int *found, char *errstr,
		   size_t errstr_size);

int dtk_store_save_detections(dtk_store *s, const char *metric, int64_t collected_at,
			      int64_t execution_time, const dtk_detection_row *rows, size_t n,
			      char *errstr, size_t errstr_size);

/* Deletes datapoints (and detections) older than now - days. */
int dtk_store_retention(dtk_store *s, const char *metric, int64_t now, int64_t datapoint_days,
			int64_t detection_days, char *errstr, size_t errstr_size);

/* The local state directory: $DTK_STATE_DIR, else
 * ${XDG_STATE_HOME:-~/.local/state}/dtk. Writes it into out. */
int dtk_store_state_dir(char *out, size_t outsz);

#endif
