/* store.h over server SQL databases: `postgres` and `mysql` (MySQL,
 * MariaDB) storage, and `sql` storage whose connection_string names one of
 * them. One implementation; a small dialect table holds what differs
 * (placeholders, column types, the upsert clause).
 *
 * Semantics are sqlite_store.c's, statement for statement:
 * - collected_at, execution_time and inserted_at are BIGINT epoch seconds
 *   (UTC), as in the SQLite backend: comparisons and the min_points cutoff
 *   stay plain integer SQL, identical on both servers, with no session time
 *   zone involved. Read them as time with to_timestamp(collected_at)
 *   (PostgreSQL) or FROM_UNIXTIME(collected_at) (MySQL, session in UTC).
 * - Primary keys (metric_name, collected_at) and (metric_name,
 *   collected_at, detector_id): an upsert is INSERT ... ON CONFLICT DO
 *   UPDATE / ON DUPLICATE KEY UPDATE, so re-running a time overwrites.
 * - The tables are created (IF NOT EXISTS) once, when the store opens.
 * - Datapoints go in multi-row INSERTs of up to BATCH_ROWS rows inside one
 *   transaction; two rows with the same time in one call: the later wins,
 *   as in SQLite.
 * - MySQL tables are InnoDB, utf8mb4 with binary collation (metric names
 *   compare exactly, as in SQLite); names and detector ids are at most 255
 *   characters there.
 *
 * Connections are borrowed from the pool given to open() (the check's
 * session pool, so a collector and its storage on one server share one
 * connection) around each operation; without a pool the store keeps a
 * private one. A failed operation hands its connection back as broken. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/db.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/json.h"

/* A stored context document larger than this is not loaded back. */
#define STORE_CONTEXT_MAX ((size_t)1 << 20)
#define BATCH_ROWS 100
#define DP_COLS 6

typedef struct dialect {
	const char *engine;
	int dollar;		  /* $1, $2 ... placeholders (else ?) */
	const char *key_text;	  /* metric names, detector ids */
	const char *dbl;	  /* double columns */
	const char *long_text;	  /* context and metadata JSON */
	const char *inline_index; /* dtk_detections' time index inside CREATE TABLE */
	const char *index_stmt;	  /* or as its own statement */
	const char *table_opts;
	const char *upsert;  /* the conflict clause, %s = the key columns */
	const char *set_col; /* one updated column, %s twice */
} dialect;

static const dialect pg_dialect = {
    .engine = "postgres",
    .dollar = 1,
    .key_text = "TEXT",
    .dbl = "DOUBLE PRECISION",
    .long_text = "TEXT",
    .inline_index = "",
    .index_stmt = "CREATE INDEX IF NOT EXISTS dtk_detections_time ON dtk_detections "
		  "(collected_at)",
    .table_opts = "",
    .upsert = " ON CONFLICT (%s) DO UPDATE SET ",
    .set_col = "%s = EXCLUDED.%s",
};

static const dialect my_dialect = {
    .engine = "mysql",
    .dollar = 0,
    .key_text = "VARCHAR(255)",
    .dbl = "DOUBLE",
    .long_text = "MEDIUMTEXT",
    .inline_index = ", INDEX dtk_detections_time (collected_at)",
    .index_stmt = NULL,
    .table_opts = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    .upsert = " ON DUPLICATE KEY UPDATE ",
    .set_col = "%s = VALUES(%s)",
};

enum {
	ST_CUTOFF,
	ST_RANGE,
	ST_RANGE_VALUES,
	ST_NEWEST,
	ST_LAST,
	ST_DETECTION,
	ST_RETAIN_DP,
	ST_RETAIN_DP_ALL,
	ST_RETAIN_DET,
	ST_RETAIN_DET_ALL,
	ST_COUNT
};

static const char *const store_sql[ST_COUNT] = {
    [ST_CUTOFF] = "SELECT collected_at FROM dtk_datapoints WHERE metric_name = ? AND "
		  "NOT is_missing AND collected_at < ? ORDER BY collected_at DESC "
		  "LIMIT 1 OFFSET ?",
    [ST_RANGE] = "SELECT collected_at, value, context FROM dtk_datapoints WHERE "
		 "metric_name = ? AND NOT is_missing AND collected_at >= ? AND "
		 "collected_at < ? ORDER BY collected_at",
    [ST_RANGE_VALUES] = "SELECT collected_at, value FROM dtk_datapoints WHERE "
			"metric_name = ? AND NOT is_missing AND collected_at >= ? AND "
			"collected_at < ? ORDER BY collected_at",
    [ST_NEWEST] = "SELECT MAX(collected_at) FROM dtk_datapoints WHERE metric_name = ? AND "
		  "NOT is_missing",
    [ST_LAST] = "SELECT MAX(collected_at) FROM dtk_datapoints WHERE metric_name = ?",
    [ST_DETECTION] = NULL, /* built by build_upsert */
    [ST_RETAIN_DP] = "DELETE FROM dtk_datapoints WHERE metric_name = ? AND collected_at < ?",
    [ST_RETAIN_DP_ALL] = "DELETE FROM dtk_datapoints WHERE collected_at < ?",
    [ST_RETAIN_DET] = "DELETE FROM dtk_detections WHERE metric_name = ? AND collected_at < ?",
    [ST_RETAIN_DET_ALL] = "DELETE FROM dtk_detections WHERE collected_at < ?",
};

static const char *const dp_cols[] = {"metric_name", "collected_at", "value",
				      "is_missing",  "context",	     "inserted_at"};
static const char *const det_cols[] = {
    "metric_name",	 "collected_at", "execution_time", "detector_id", "detector_type",
    "is_anomaly",	 "score",	 "lower_bound",	   "upper_bound", "direction",
    "percent_deviation", "alert_sent",	 "alert_reason",   "metadata",	  "inserted_at"};
#define DET_COLS (sizeof(det_cols) / sizeof(det_cols[0]))
static const char *const dp_key[] = {"metric_name", "collected_at", NULL};
static const char *const det_key[] = {"metric_name", "collected_at", "detector_id", NULL};

typedef struct sql_store {
	const dialect *d;
	dtk_db_target target;
	dtk_db_pool *pool; /* borrowed from open(), or own_pool */
	dtk_db_pool *own_pool;
	char *sql[ST_COUNT]; /* in the dialect's placeholders */
} sql_store;

/* Appends sql with each ? turned into the dialect's placeholder numbered
 * from *n. The statements here hold no ? inside literals. */
static void add_sql(dtk_buf *b, const dialect *d, const char *sql, int *n)
{
	for (const char *p = sql; *p; p++) {
		if (*p == '?' && d->dollar)
			dtk_buf_printf(b, "$%d", ++*n);
		else
			dtk_buf_addc(b, *p);
	}
}

static int is_key(const char *col, const char *const *keys)
{
	for (; *keys; keys++)
		if (strcmp(col, *keys) == 0)
			return 1;
	return 0;
}

/* INSERT INTO table (cols) VALUES (...) x rows, then the upsert clause on
 * the key columns (NULL-terminated) updating every other column. */
static char *build_upsert(const dialect *d, const char *table, const char *const *cols,
			  size_t ncols, const char *const *key, size_t rows)
{
	dtk_buf b, keys;
	int n = 0;
	dtk_buf_init(&b, 1 << 20);
	dtk_buf_init(&keys, 4096);
	dtk_buf_printf(&b, "INSERT INTO %s (", table);
	for (size_t i = 0; i < ncols; i++)
		dtk_buf_printf(&b, "%s%s", i ? ", " : "", cols[i]);
	dtk_buf_adds(&b, ") VALUES ");
	for (size_t r = 0; r < rows; r++) {
		dtk_buf_adds(&b, r ? ", (" : "(");
		for (size_t i = 0; i < ncols; i++)
			add_sql(&b, d, i ? ", ?" : "?", &n);
		dtk_buf_addc(&b, ')');
	}
	for (size_t i = 0; key[i]; i++)
		dtk_buf_printf(&keys, "%s%s", i ? ", " : "", key[i]);
	dtk_buf_printf(&b, d->upsert, dtk_buf_str(&keys));
	int first = 1;
	for (size_t i = 0; i < ncols; i++) {
		if (is_key(cols[i], key))
			continue;
		if (!first)
			dtk_buf_adds(&b, ", ");
		first = 0;
		dtk_buf_printf(&b, d->set_col, cols[i], cols[i]);
	}
	dtk_buf_free(&keys);
	if (b.failed) {
		dtk_buf_free(&b);
		return NULL;
	}
	return dtk_buf_take(&b);
}

static char *schema_sql(const dialect *d, int which)
{
	dtk_buf b;
	dtk_buf_init(&b, 8192);
	if (which == 0)
		dtk_buf_printf(&b,
			       "CREATE TABLE IF NOT EXISTS dtk_datapoints ("
			       "metric_name %s NOT NULL, "
			       "collected_at BIGINT NOT NULL, "
			       "value %s, "
			       "is_missing BOOLEAN NOT NULL DEFAULT FALSE, "
			       "context %s, "
			       "inserted_at BIGINT NOT NULL, "
			       "PRIMARY KEY (metric_name, collected_at))%s",
			       d->key_text, d->dbl, d->long_text, d->table_opts);
	else if (which == 1)
		dtk_buf_printf(&b,
			       "CREATE TABLE IF NOT EXISTS dtk_detections ("
			       "metric_name %s NOT NULL, "
			       "collected_at BIGINT NOT NULL, "
			       "execution_time BIGINT NOT NULL, "
			       "detector_id %s NOT NULL, "
			       "detector_type %s, "
			       "is_anomaly BOOLEAN NOT NULL, "
			       "score %s, lower_bound %s, upper_bound %s, "
			       "direction %s, "
			       "percent_deviation %s, "
			       "alert_sent BOOLEAN NOT NULL DEFAULT FALSE, "
			       "alert_reason TEXT, "
			       "metadata %s, "
			       "inserted_at BIGINT NOT NULL, "
			       "PRIMARY KEY (metric_name, collected_at, detector_id)%s)%s",
			       d->key_text, d->key_text, d->key_text, d->dbl, d->dbl, d->dbl,
			       d->key_text, d->dbl, d->long_text, d->inline_index, d->table_opts);
	else if (d->index_stmt)
		dtk_buf_adds(&b, d->index_stmt);
	else
		return NULL;
	return dtk_buf_take(&b);
}

static void ss_close(void *h)
{
	sql_store *s = h;
	if (!s)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		free(s->sql[i]);
	dtk_db_target_clear(&s->target);
	dtk_db_pool_free(&s->own_pool);
	free(s);
}

/* One statement on a borrowed connection. */
static int run(sql_store *s, dtk_db *db, const char *what, const char *sql,
	       const dtk_value *const *args, size_t nargs, dtk_resultset *out, char *errstr,
	       size_t errstr_size)
{
	char err[1024];
	if (dtk_db_query(db, sql, args, nargs, out, err, sizeof(err)) != 0) {
		snprintf(errstr, errstr_size, "storage: %s: %s", what, err);
		return -1;
	}
	return 0;
}

static dtk_db *borrow(sql_store *s, char *errstr, size_t errstr_size)
{
	char err[1024];
	dtk_db *db = dtk_db_get(s->pool, &s->target, NULL, err, sizeof(err));
	if (!db)
		snprintf(errstr, errstr_size, "storage: %s", err);
	return db;
}

static void *open_dialect(const dialect *d, const char *type, const dtk_value *params,
			  struct dtk_db_pool *pool, char *errstr, size_t errstr_size)
{
	char err[1024];
	dtk_db *db = NULL;
	sql_store *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(errstr, errstr_size, "storage: out of memory");
		return NULL;
	}
	s->d = d;
	if (dtk_db_target_parse(type && *type ? type : d->engine, params, &s->target, err,
				sizeof(err)) != 0) {
		snprintf(errstr, errstr_size, "%s", err);
		goto fail;
	}
	s->pool = pool;
	if (!pool && !(s->pool = s->own_pool = dtk_db_pool_new()))
		goto nomem;
	for (int i = 0; i < ST_COUNT; i++) {
		dtk_buf b;
		int n = 0;
		if (i == ST_DETECTION) {
			s->sql[i] =
			    build_upsert(d, "dtk_detections", det_cols, DET_COLS, det_key, 1);
		} else {
			dtk_buf_init(&b, 4096);
			add_sql(&b, d, store_sql[i], &n);
			s->sql[i] = b.failed ? NULL : dtk_buf_take(&b);
			dtk_buf_free(&b);
		}
		if (!s->sql[i])
			goto nomem;
	}
	db = borrow(s, errstr, errstr_size);
	if (!db)
		goto fail;
	for (int which = 0; which < 3; which++) {
		char *sql = schema_sql(d, which);
		if (!sql)
			continue;
		/* Two first runs racing on CREATE TABLE IF NOT EXISTS: the loser's
		 * error is a duplicate in the catalog, and a retry sees the table. */
		int rc = run(s, db, "creating tables", sql, NULL, 0, NULL, errstr, errstr_size);
		if (rc != 0) {
			dtk_db_release(s->pool, &db, 1);
			db = borrow(s, errstr, errstr_size);
			rc = db ? run(s, db, "creating tables", sql, NULL, 0, NULL, errstr,
				      errstr_size)
				: -1;
		}
		free(sql);
		if (rc != 0)
			goto fail;
	}
	dtk_db_release(s->pool, &db, 0);
	return s;
nomem:
	snprintf(errstr, errstr_size, "storage: out of memory");
fail:
	dtk_db_release(s->pool, &db, 1);
	ss_close(s);
	return NULL;
}

static void *pg_open(const char *type, const dtk_value *params, const char *base_dir,
		     struct dtk_db_pool *pool, char *errstr, size_t errstr_size)
{
	return open_dialect(&pg_dialect, type, params, pool, errstr, errstr_size);
}

static void *my_open(const char *type, const dtk_value *params, const char *base_dir,
		     struct dtk_db_pool *pool, char *errstr, size_t errstr_size)
{
	return open_dialect(&my_dialect, type, params, pool, errstr, errstr_size);
}

static void free_values(dtk_value **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dtk_value_free(&v[i]);
}

/* Runs BEGIN; body; COMMIT on a borrowed connection, ROLLBACK on failure. */
typedef int (*tx_body)(sql_store *s, dtk_db *db, void *arg, char *errstr, size_t errstr_size);

static int in_transaction(sql_store *s, tx_body body, void *arg, char *errstr, size_t errstr_size)
{
	dtk_db *db = borrow(s, errstr, errstr_size);
	int rc = -1;
	if (!db)
		return -1;
	if (run(s, db, "starting a transaction", "BEGIN", NULL, 0, NULL, errstr, errstr_size) ==
		0 &&
	    body(s, db, arg, errstr, errstr_size) == 0 &&
	    run(s, db, "committing", "COMMIT", NULL, 0, NULL, errstr, errstr_size) == 0)
		rc = 0;
	else {
		char ignored[256];
		rc = -1;
		dtk_db_query(db, "ROLLBACK", NULL, 0, NULL, ignored, sizeof(ignored));
	}
	dtk_db_release(s->pool, &db, rc != 0);
	return rc;
}

typedef struct upsert_arg {
	const char *metric;
	const dtk_row *rows;
	size_t n;
} upsert_arg;

static int upsert_body(sql_store *s, dtk_db *db, void *varg, char *errstr, size_t errstr_size)
{
	upsert_arg *a = varg;
	dtk_value *metric = dtk_value_str(a->metric), *now = dtk_value_int((int64_t)time(NULL));
	const dtk_value *args[BATCH_ROWS * DP_COLS];
	dtk_value *owned[BATCH_ROWS * 4]; /* collected_at, value, is_missing, context */
	char *sql = NULL;
	size_t nowned = 0, k = 0, built = 0;
	int rc = -1;
	dtk_buf ctx;
	dtk_buf_init(&ctx, STORE_CONTEXT_MAX);
	if (!metric || !now)
		goto nomem;
	for (size_t i = 0; i <= a->n; i++) {
		int flush = i == a->n || k == BATCH_ROWS;
		/* a time already in this batch: the later row must win */
		for (size_t j = 0; !flush && j < k; j++)
			flush = args[j * DP_COLS + 1]->u.i == a->rows[i].ts;
		if (flush && k) {
			if (built != k) {
				free(sql);
				sql = build_upsert(s->d, "dtk_datapoints", dp_cols, DP_COLS, dp_key,
						   k);
				built = k;
				if (!sql)
					goto nomem;
			}
			if (run(s, db, "saving datapoints", sql, args, k * DP_COLS, NULL, errstr,
				errstr_size) != 0)
				goto out;
			free_values(owned, nowned);
			nowned = k = 0;
		}
		if (i == a->n)
			break;
		const dtk_row *r = &a->rows[i];
		int missing = r->is_missing || !isfinite(r->value);
		dtk_value *ts = dtk_value_int(r->ts);
		dtk_value *val = missing ? NULL : dtk_value_float(r->value);
		dtk_value *miss = dtk_value_bool(missing);
		dtk_value *cv = NULL;
		owned[nowned++] = ts;
		owned[nowned++] = val;
		owned[nowned++] = miss;
		if (r->context) {
			dtk_buf_reset(&ctx);
			if (dtk_json_emit(&ctx, r->context, DTK_JSON_RAW_UTF8) != 0) {
				snprintf(errstr, errstr_size,
					 "storage: the context of the point at %lld is too large",
					 (long long)r->ts);
				goto out;
			}
			cv = dtk_value_strn(dtk_buf_str(&ctx), ctx.len);
			if (!cv)
				goto nomem;
		}
		owned[nowned++] = cv;
		if (!ts || (!missing && !val) || !miss)
			goto nomem;
		const dtk_value *row[DP_COLS] = {metric, ts, val, miss, cv, now};
		memcpy(&args[k * DP_COLS], row, sizeof(row));
		k++;
	}
	rc = 0;
	goto out;
nomem:
	snprintf(errstr, errstr_size, "storage: out of memory");
out:
	free_values(owned, nowned);
	free(sql);
	dtk_value_free(&metric);
	dtk_value_free(&now);
	dtk_buf_free(&ctx);
	return rc;
}

static int ss_upsert(void *h, const char *metric, const dtk_row *rows, size_t n, char *errstr,
		     size_t errstr_size)
{
	upsert_arg a = {metric, rows, n};
	if (n == 0)
		return 0;
	return in_transaction(h, upsert_body, &a, errstr, errstr_size);
}

/* An integer cell (servers may hand back BIGINT aggregates as floats or
 * decimals). */
static int int_cell(const dtk_value *v, int64_t *out)
{
	double x;
	if (v && v->type == DTK_V_INT) {
		*out = v->u.i;
		return 0;
	}
	if (v && v->type == DTK_V_STR) {
		char *end = NULL;
		long long i = strtoll(v->u.str.s, &end, 10);
		if (end != v->u.str.s && !*end) {
			*out = i;
			return 0;
		}
		return -1;
	}
	if (!dtk_value_number(v, &x))
		return -1;
	*out = (int64_t)x;
	return 0;
}

/* One query on a connection borrowed for it. */
static int query1(sql_store *s, const char *what, int which, const dtk_value *const *args,
		  size_t nargs, dtk_resultset *out, char *errstr, size_t errstr_size)
{
	dtk_db *db = borrow(s, errstr, errstr_size);
	if (!db)
		return -1;
	int rc = run(s, db, what, s->sql[which], args, nargs, out, errstr, errstr_size);
	dtk_db_release(s->pool, &db, rc != 0);
	return rc;
}

static int ss_history(void *h, const char *metric, int64_t since, int64_t before,
		      int64_t min_points, int with_context, dtk_series *out, char *errstr,
		      size_t errstr_size)
{
	sql_store *s = h;
	char perr[128];
	int rc = -1;
	dtk_resultset rs;
	dtk_value *mv = dtk_value_str(metric), *bv = dtk_value_int(before), *sv = NULL, *ov = NULL;
	memset(&rs, 0, sizeof(rs));
	if (!mv || !bv)
		goto nomem;
	if (min_points > 0) {
		if (!(ov = dtk_value_int(min_points - 1)))
			goto nomem;
		const dtk_value *args[] = {mv, bv, ov};
		if (query1(s, "reading history", ST_CUTOFF, args, 3, &rs, errstr, errstr_size) != 0)
			goto out;
		int64_t cutoff;
		if (rs.nrows == 0)
			since = INT64_MIN; /* fewer than min_points points: all of them */
		else if (rs.ncols == 1 && int_cell(rs.cells[0], &cutoff) == 0) {
			if (cutoff < since)
				since = cutoff;
		} else {
			snprintf(errstr, errstr_size, "storage: reading history: bad cutoff row");
			goto out;
		}
		dtk_resultset_clear(&rs);
	}
	if (out->n && !out->context != !with_context) {
		snprintf(errstr, errstr_size, "storage: history appended with and without context");
		goto out;
	}
	if (!(sv = dtk_value_int(since)))
		goto nomem;
	const dtk_value *args[] = {mv, sv, bv};
	if (query1(s, "reading history", with_context ? ST_RANGE : ST_RANGE_VALUES, args, 3, &rs,
		   errstr, errstr_size) != 0)
		goto out;
	for (size_t r = 0; r < rs.nrows; r++) {
		dtk_value **row = &rs.cells[r * rs.ncols];
		int64_t ts;
		double v;
		dtk_value *ctx = NULL;
		if (rs.ncols < 2 || int_cell(row[0], &ts) != 0 || !dtk_value_number(row[1], &v)) {
			snprintf(errstr, errstr_size, "storage: reading history: bad row");
			goto out;
		}
		if (with_context && rs.ncols > 2 && row[2] && row[2]->type == DTK_V_STR &&
		    row[2]->u.str.len > 0 && row[2]->u.str.len <= STORE_CONTEXT_MAX) {
			ctx =
			    dtk_json_parse(row[2]->u.str.s, row[2]->u.str.len, perr, sizeof(perr));
			if (ctx && ctx->type != DTK_V_MAP)
				dtk_value_free(&ctx);
		}
		if (dtk_series_push(out, ts, v, with_context, ctx) != 0) {
			dtk_value_free(&ctx);
			goto nomem;
		}
	}
	rc = 0;
	goto out;
nomem:
	snprintf(errstr, errstr_size, "storage: out of memory reading history");
out:
	dtk_resultset_clear(&rs);
	dtk_value_free(&mv);
	dtk_value_free(&bv);
	dtk_value_free(&sv);
	dtk_value_free(&ov);
	return rc;
}

static int max_time(sql_store *s, int which, const char *metric, int64_t *ts, int *found,
		    char *errstr, size_t errstr_size)
{
	dtk_resultset rs;
	dtk_value *mv = dtk_value_str(metric);
	int rc = -1;
	*found = 0;
	memset(&rs, 0, sizeof(rs));
	if (!mv) {
		snprintf(errstr, errstr_size, "storage: out of memory");
		return -1;
	}
	const dtk_value *args[] = {mv};
	if (query1(s, "reading the newest point", which, args, 1, &rs, errstr, errstr_size) != 0)
		goto out;
	if (rs.nrows == 1 && rs.ncols == 1 && rs.cells[0]) {
		if (int_cell(rs.cells[0], ts) != 0) {
			snprintf(errstr, errstr_size, "storage: reading the newest point: bad row");
			goto out;
		}
		*found = 1;
	}
	rc = 0;
out:
	dtk_resultset_clear(&rs);
	dtk_value_free(&mv);
	return rc;
}

static int ss_newest(void *h, const char *metric, int64_t *ts, int *found, char *errstr,
		     size_t errstr_size)
{
	return max_time(h, ST_NEWEST, metric, ts, found, errstr, errstr_size);
}

static int ss_last(void *h, const char *metric, int64_t *ts, int *found, char *errstr,
		   size_t errstr_size)
{
	return max_time(h, ST_LAST, metric, ts, found, errstr, errstr_size);
}

typedef struct det_arg {
	const char *metric;
	int64_t collected_at, execution_time;
	const dtk_detection_row *rows;
	size_t n;
} det_arg;

static dtk_value *num_or_null(double v)
{
	return isnan(v) ? NULL : dtk_value_float(v);
}

static dtk_value *str_or_null(const char *s)
{
	return s ? dtk_value_str(s) : NULL;
}

static int det_body(sql_store *s, dtk_db *db, void *varg, char *errstr, size_t errstr_size)
{
	det_arg *a = varg;
	int64_t now = (int64_t)time(NULL);
	for (size_t i = 0; i < a->n; i++) {
		const dtk_detection_row *d = &a->rows[i];
		dtk_value *v[DET_COLS] = {
		    dtk_value_str(a->metric),
		    dtk_value_int(a->collected_at),
		    dtk_value_int(a->execution_time),
		    dtk_value_str(d->detector_id ? d->detector_id : ""),
		    str_or_null(d->detector_type),
		    dtk_value_bool(d->is_anomaly != 0),
		    num_or_null(d->score),
		    num_or_null(d->lower_bound),
		    num_or_null(d->upper_bound),
		    str_or_null(d->direction),
		    num_or_null(d->percent_deviation),
		    dtk_value_bool(d->alert_sent != 0),
		    str_or_null(d->alert_reason),
		    str_or_null(d->metadata_json),
		    dtk_value_int(now),
		};
		int rc = 0;
		if (!v[0] || !v[1] || !v[2] || !v[3] || !v[5] || !v[11] || !v[14]) {
			snprintf(errstr, errstr_size, "storage: out of memory");
			rc = -1;
		} else {
			rc = run(s, db, "saving detections", s->sql[ST_DETECTION],
				 (const dtk_value *const *)v, DET_COLS, NULL, errstr, errstr_size);
		}
		free_values(v, DET_COLS);
		if (rc != 0)
			return -1;
	}
	return 0;
}

static int ss_save_detections(void *h, const char *metric, int64_t collected_at,
			      int64_t execution_time, const dtk_detection_row *rows, size_t n,
			      char *errstr, size_t errstr_size)
{
	det_arg a = {metric, collected_at, execution_time, rows, n};
	if (n == 0)
		return 0;
	return in_transaction(h, det_body, &a, errstr, errstr_size);
}

static int retain(sql_store *s, int which, const char *metric, int64_t cutoff, char *errstr,
		  size_t errstr_size)
{
	dtk_value *mv = metric ? dtk_value_str(metric) : NULL, *cv = dtk_value_int(cutoff);
	int rc = -1;
	if ((metric && !mv) || !cv)
		snprintf(errstr, errstr_size, "storage: out of memory");
	else {
		const dtk_value *args[] = {mv, cv};
		rc = metric ? query1(s, "applying retention", which, args, 2, NULL, errstr,
				     errstr_size)
			    : query1(s, "applying retention", which, args + 1, 1, NULL, errstr,
				     errstr_size);
	}
	dtk_value_free(&mv);
	dtk_value_free(&cv);
	return rc;
}

static int ss_retention(void *h, const char *metric, int64_t now, int64_t datapoint_days,
			int64_t detection_days, char *errstr, size_t errstr_size)
{
	sql_store *s = h;
	if (datapoint_days > 0 && retain(s, metric ? ST_RETAIN_DP : ST_RETAIN_DP_ALL, metric,
					 now - datapoint_days * 86400, errstr, errstr_size) != 0)
		return -1;
	if (detection_days > 0 && retain(s, metric ? ST_RETAIN_DET : ST_RETAIN_DET_ALL, metric,
					 now - detection_days * 86400, errstr, errstr_size) != 0)
		return -1;
	return 0;
}

const dtk_store_backend dtk_store_postgres = {
    .engine = "postgres",
    .open = pg_open,
    .close = ss_close,
    .upsert = ss_upsert,
    .history = ss_history,
    .newest = ss_newest,
    .last = ss_last,
    .save_detections = ss_save_detections,
    .retention = ss_retention,
};

const dtk_store_backend dtk_store_mysql = {
    .engine = "mysql",
    .open = my_open,
    .close = ss_close,
    .upsert = ss_upsert,
    .history = ss_history,
    .newest = ss_newest,
    .last = ss_last,
    .save_detections = ss_save_detections,
    .retention = ss_retention,
};
