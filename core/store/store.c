/* The storage backends and the dispatch of store.h. */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "db/db.h"

extern const dtk_store_backend dtk_store_sqlite;
extern const dtk_store_backend dtk_store_postgres;
extern const dtk_store_backend dtk_store_mysql;
extern const dtk_store_backend dtk_store_clickhouse;

/* One line per engine. */
static const dtk_store_backend *const backends[] = {
	&dtk_store_sqlite,
	&dtk_store_postgres,
	&dtk_store_mysql,
	&dtk_store_clickhouse,
	NULL,
};

struct dtk_store {
	const dtk_store_backend *b;
	void *h;
};

static const dtk_store_backend *backend_for(const char *type, const dtk_value *params,
					     char *errstr, size_t errstr_size)
{
	const char *engine = type;
	if (!type || !*type)
		engine = "sqlite";
	else if (strcmp(type, "sql") == 0) {
		const char *conn = dtk_value_cstr(dtk_value_map_get(params, "connection_string"));
		const dtk_db_driver *d = conn ? dtk_db_driver_find(conn) : NULL;
		if (!conn) {
			snprintf(errstr, errstr_size, "connection_string: required for sql storage");
			return NULL;
		}
		if (!d) {
			size_t n = strcspn(conn, ":+");
			snprintf(errstr, errstr_size,
				 "connection_string: no storage for scheme '%.*s'",
				 (int)(n > 32 ? 32 : n), conn);
			return NULL;
		}
		engine = d->engine;
	}
	for (size_t i = 0; backends[i]; i++)
		if (strcasecmp(backends[i]->engine, engine) == 0)
			return backends[i];
	snprintf(errstr, errstr_size, "storage type '%.32s' is not built into this dtk", engine);
	return NULL;
}

dtk_store *dtk_store_open(const char *type, const dtk_value *params, const char *base_dir,
			  struct dtk_db_pool *pool, char *errstr, size_t errstr_size)
{
	const dtk_store_backend *b = backend_for(type, params, errstr, errstr_size);
	if (!b)
		return NULL;
	dtk_store *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(errstr, errstr_size, "storage: out of memory");
		return NULL;
	}
	s->b = b;
	s->h = b->open(type, params, base_dir, pool, errstr, errstr_size);
	if (!s->h) {
		free(s);
		return NULL;
	}
	return s;
}

void dtk_store_close(dtk_store **sp)
{
	if (!sp || !*sp)
		return;
	(*sp)->b->close((*sp)->h);
	free(*sp);
	*sp = NULL;
}

int dtk_store_upsert(dtk_store *s, const char *metric, const dtk_row *rows, size_t n,
		     char *errstr, size_t errstr_size)
{
	return s->b->upsert(s->h, metric, rows, n, errstr, errstr_size);
}

int dtk_store_history(dtk_store *s, const char *metric, int64_t since, int64_t before,
		      int64_t min_points, int with_context, dtk_series *out, char *errstr,
		      size_t errstr_size)
{
	return s->b->history(s->h, metric, since, before, min_points, with_context, out, errstr,
			     errstr_size);
}

int dtk_store_newest(dtk_store *s, const char *metric, int64_t *ts, int *found, char *errstr,
		     size_t errstr_size)
{
	return s->b->newest(s->h, metric, ts, found, errstr, errstr_size);
}

int dtk_store_last(dtk_store *s, const char *metric, int64_t *ts, int *found, char *errstr,
		   size_t errstr_size)
{
	return s->b->last(s->h, metric, ts, found, errstr, errstr_size);
}

int dtk_store_save_detections(dtk_store *s, const char *metric, int64_t collected_at,
			      int64_t execution_time, const dtk_detection_row *rows, size_t n,
			      char *errstr, size_t errstr_size)
{
	return s->b->save_detections(s->h, metric, collected_at, execution_time, rows, n, errstr,
				     errstr_size);
}

int dtk_store_retention(dtk_store *s, const char *metric, int64_t now, int64_t datapoint_days,
			int64_t detection_days, char *errstr, size_t errstr_size)
{
	return s->b->retention(s->h, metric, now, datapoint_days, detection_days, errstr,
			       errstr_size);
}
