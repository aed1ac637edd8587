/* store.h over SQLite: the local state database and `sqlite` / `sql`
 * (sqlite:///) storage.
 *
 * Choices where config.md is silent:
 * - Relative paths resolve as for SQLite sources (columns.h): the current
 *   directory, or the config's directory when the file exists only there.
 * - Directories created for the database get mode 0700: it holds metric
 *   data and, for the local database, alert state.
 * - dtk_store_retention with metric NULL applies to every metric; days <= 0
 *   keeps everything.
 * - A non-missing row whose value is not finite is stored as missing.
 *
 * A dtk_store is one connection (SQLITE_OPEN_NOMUTEX) for one thread at a
 * time; several threads or processes may each open their own on one file. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "db/db.h"
#include "util/clock.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/json.h"

/* A stored context document larger than this is not loaded back. */
#define STORE_CONTEXT_MAX ((size_t)1 << 20)

enum {
	ST_UPSERT,
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
	[ST_UPSERT] = "INSERT INTO dtk_datapoints (metric_name, collected_at, value, is_missing, "
		      "context, inserted_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
		      "ON CONFLICT(metric_name, collected_at) DO UPDATE SET value = excluded.value, "
		      "is_missing = excluded.is_missing, context = excluded.context, "
		      "inserted_at = excluded.inserted_at",
	[ST_CUTOFF] = "SELECT collected_at FROM dtk_datapoints WHERE metric_name = ?1 AND "
		      "is_missing = 0 AND collected_at < ?2 ORDER BY collected_at DESC "
		      "LIMIT 1 OFFSET ?3",
	[ST_RANGE] = "SELECT collected_at, value, context FROM dtk_datapoints WHERE "
		     "metric_name = ?1 AND is_missing = 0 AND collected_at >= ?2 AND "
		     "collected_at < ?3 ORDER BY collected_at",
	[ST_RANGE_VALUES] = "SELECT collected_at, value FROM dtk_datapoints WHERE "
			    "metric_name = ?1 AND is_missing = 0 AND collected_at >= ?2 AND "
			    "collected_at < ?3 ORDER BY collected_at",
	[ST_NEWEST] = "SELECT MAX(collected_at) FROM dtk_datapoints WHERE metric_name = ?1 AND "
		      "is_missing = 0",
	[ST_LAST] = "SELECT MAX(collected_at) FROM dtk_datapoints WHERE metric_name = ?1",
	[ST_DETECTION] =
		"INSERT INTO dtk_detections (metric_name, collected_at, execution_time, "
		"detector_id, detector_type, is_anomaly, score, lower_bound, upper_bound, "
		"direction, percent_deviation, alert_sent, alert_reason, metadata, inserted_at) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) "
		"ON CONFLICT(metric_name, collected_at, detector_id) DO UPDATE SET "
		"execution_time = excluded.execution_time, detector_type = excluded.detector_type, "
		"is_anomaly = excluded.is_anomaly, score = excluded.score, "
		"lower_bound = excluded.lower_bound, upper_bound = excluded.upper_bound, "
		"direction = excluded.direction, percent_deviation = excluded.percent_deviation, "
		"alert_sent = excluded.alert_sent, alert_reason = excluded.alert_reason, "
		"metadata = excluded.metadata, inserted_at = excluded.inserted_at",
	[ST_RETAIN_DP] = "DELETE FROM dtk_datapoints WHERE metric_name = ?1 AND collected_at < ?2",
	[ST_RETAIN_DP_ALL] = "DELETE FROM dtk_datapoints WHERE collected_at < ?2",
	[ST_RETAIN_DET] = "DELETE FROM dtk_detections WHERE metric_name = ?1 AND collected_at < ?2",
	[ST_RETAIN_DET_ALL] = "DELETE FROM dtk_detections WHERE collected_at < ?2",
};

static const char store_schema[] =
	"CREATE TABLE IF NOT EXISTS dtk_datapoints ("
	" metric_name TEXT NOT NULL,"
	" collected_at INTEGER NOT NULL,"
	" value REAL,"
	" is_missing INTEGER NOT NULL DEFAULT 0,"
	" context TEXT,"
	" inserted_at INTEGER NOT NULL,"
	" PRIMARY KEY (metric_name, collected_at)) WITHOUT ROWID;" /* history reads are range
								       scans of the key: no
								       second lookup per row */
	"CREATE TABLE IF NOT EXISTS dtk_detections ("
	" metric_name TEXT NOT NULL,"
	" collected_at INTEGER NOT NULL,"
	" execution_time INTEGER NOT NULL,"
	" detector_id TEXT NOT NULL,"
	" detector_type TEXT,"
	" is_anomaly INTEGER NOT NULL,"
	" score REAL,"
	" lower_bound REAL,"
	" upper_bound REAL,"
	" direction TEXT,"
	" percent_deviation REAL,"
	" alert_sent INTEGER NOT NULL DEFAULT 0,"
	" alert_reason TEXT,"
	" metadata TEXT,"
	" inserted_at INTEGER NOT NULL,"
	" UNIQUE (metric_name, collected_at, detector_id));"
	"CREATE INDEX IF NOT EXISTS dtk_detections_time ON dtk_detections (collected_at);";

typedef struct sqlite_store {
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	char path[PATH_MAX];
} sqlite_store;

int dtk_store_state_dir(char *out, size_t outsz)
{
	const char *dir = getenv("DTK_STATE_DIR");
	int n;
	if (dir && *dir)
		n = snprintf(out, outsz, "%s", dir);
	else if ((dir = getenv("XDG_STATE_HOME")) && *dir)
		n = snprintf(out, outsz, "%s/dtk", dir);
	else if ((dir = getenv("HOME")) && *dir)
		n = snprintf(out, outsz, "%s/.local/state/dtk", dir);
	else
		return -1;
	return n >= 0 && (size_t)n < outsz ? 0 : -1;
}

/* mkdir -p of path's parent directory, new directories with mode 0700. */
static int make_parents(const char *path, char *errstr, size_t errstr_size)
{
	char dir[PATH_MAX];
	int n = snprintf(dir, sizeof(dir), "%s", path);
	if (n < 0 || (size_t)n >= sizeof(dir)) {
		snprintf(errstr, errstr_size, "path too long: %s", path);
		return -1;
	}
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
			snprintf(errstr, errstr_size, "cannot create directory %s: %s", dir,
				 strerror(errno));
			return -1;
		}
		*p = '/';
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(errstr, errstr_size, "cannot create directory %s: %s", dir,
			 strerror(errno));
		return -1;
	}
	return 0;
}

static int db_error(sqlite_store *s, const char *what, char *errstr, size_t errstr_size)
{
	snprintf(errstr, errstr_size, "storage %s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
	return -1;
}

#define SETUP_BUSY_MS 5000

/* Runs sql, retrying while another connection holds a lock: SQLite
 * answers SQLITE_BUSY at once, without its busy handler, when waiting
 * could deadlock (two connections setting up one new file). */
static int exec_busy(sqlite3 *db, const char *sql, char **msg)
{
	int rc;
	for (int waited = 0;; waited += 10) {
		sqlite3_free(*msg);
		*msg = NULL;
		rc = sqlite3_exec(db, sql, NULL, NULL, msg);
		if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || waited >= SETUP_BUSY_MS)
			return rc;
		dtk_sleep_ms(10);
	}
}

/* Opens path read-write (creating it) with the pragmas of config.md and
 * runs schema. Shared with state.c through dtk_store_sqlite_open. */
int dtk_store_sqlite_open(const char *path, const char *schema, sqlite3 **out, char *errstr,
			  size_t errstr_size);
int dtk_store_sqlite_open(const char *path, const char *schema, sqlite3 **out, char *errstr,
			  size_t errstr_size)
{
	sqlite3 *db = NULL;
	char *msg = NULL;
	*out = NULL;
	if (make_parents(path, errstr, errstr_size) != 0)
		return -1;
	if (sqlite3_open_v2(path, &db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		snprintf(errstr, errstr_size, "cannot open %s: %s", path,
			 db ? sqlite3_errmsg(db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(db, SETUP_BUSY_MS);
	if (exec_busy(db, "PRAGMA journal_mode=WAL", &msg) != SQLITE_OK ||
	    exec_busy(db, "PRAGMA synchronous=NORMAL", &msg) != SQLITE_OK ||
	    exec_busy(db, "BEGIN IMMEDIATE", &msg) != SQLITE_OK) {
		snprintf(errstr, errstr_size, "cannot set up %s: %s", path,
			 msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		goto fail;
	}
	/* the write lock is held: creating the tables cannot deadlock with a
	 * connection doing the same */
	if (sqlite3_exec(db, schema, NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(errstr, errstr_size, "cannot set up %s: %s", path,
			 msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		goto fail;
	}
	*out = db;
	return 0;
fail:
	sqlite3_close(db);
	return -1;
}

static int store_path(const char *type, const dtk_value *params, const char *base_dir,
		      char *out, size_t outsz, char *errstr, size_t errstr_size)
{
	char given[PATH_MAX], err[256];
	const dtk_value *pv = dtk_value_map_get(params, "path");
	const dtk_value *cv = dtk_value_map_get(params, "connection_string");
	const char *path = pv && pv->type == DTK_V_STR && pv->u.str.len ? pv->u.str.s : NULL;
	const char *conn = cv && cv->type == DTK_V_STR && cv->u.str.len ? cv->u.str.s : NULL;

	if (!type || !*type) {
		if (dtk_store_state_dir(given, sizeof(given)) != 0) {
			snprintf(errstr, errstr_size,
				 "storage: no state directory (set DTK_STATE_DIR or HOME)");
			return -1;
		}
		int n = snprintf(out, outsz, "%s/dtk.db", given);
		if (n < 0 || (size_t)n >= outsz) {
			snprintf(errstr, errstr_size, "storage: state directory path too long");
			return -1;
		}
		return 0;
	}
	if (strcmp(type, "sqlite") == 0 && path) {
		if ((size_t)snprintf(given, sizeof(given), "%s", path) >= sizeof(given)) {
			snprintf(errstr, errstr_size, "path: too long");
			return -1;
		}
	} else if (conn) {
		if (dtk_db_sqlite_path(conn, given, sizeof(given), err, sizeof(err)) != 0) {
			snprintf(errstr, errstr_size, "connection_string: %s", err);
			return -1;
		}
	} else {
		snprintf(errstr, errstr_size, "%s: required for %s storage",
			 strcmp(type, "sqlite") == 0 ? "path" : "connection_string", type);
		return -1;
	}
	if (dtk_db_resolve_path(given, base_dir, out, outsz) != 0) {
		snprintf(errstr, errstr_size, "storage path too long");
		return -1;
	}
	return 0;
}

static void sq_close(void *h)
{
	sqlite_store *s = h;
	if (!s)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close(s->db);
	free(s);
}

static void *sq_open(const char *type, const dtk_value *params, const char *base_dir,
		     struct dtk_db_pool *pool, char *errstr, size_t errstr_size)
{
	sqlite_store *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(errstr, errstr_size, "storage: out of memory");
		return NULL;
	}
	if (store_path(type, params, base_dir, s->path, sizeof(s->path), errstr, errstr_size) !=
		    0 ||
	    dtk_store_sqlite_open(s->path, store_schema, &s->db, errstr, errstr_size) != 0)
		goto fail;
	for (int i = 0; i < ST_COUNT; i++)
		if (sqlite3_prepare_v3(s->db, store_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
				       NULL) != SQLITE_OK) {
			db_error(s, "prepare", errstr, errstr_size);
			goto fail;
		}
	return s;
fail:
	sq_close(s);
	return NULL;
}

static sqlite3_stmt *stmt(sqlite_store *s, int which)
{
	sqlite3_stmt *st = s->st[which];
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

static int exec_simple(sqlite_store *s, const char *sql, char *errstr, size_t errstr_size)
{
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_error(s, sql, errstr, errstr_size);
	return 0;
}

static int sq_upsert(void *h, const char *metric, const dtk_row *rows, size_t n,
		     char *errstr, size_t errstr_size)
{
	sqlite_store *s = h;
	int rc = -1, in_tx = 0;
	dtk_buf ctx;
	int64_t now = (int64_t)time(NULL);
	dtk_buf_init(&ctx, STORE_CONTEXT_MAX);
	if (n == 0)
		return 0;
	if (exec_simple(s, "BEGIN IMMEDIATE", errstr, errstr_size) != 0)
		goto out;
	in_tx = 1;
	for (size_t i = 0; i < n; i++) {
		const dtk_row *r = &rows[i];
		int missing = r->is_missing || !isfinite(r->value);
		sqlite3_stmt *st = stmt(s, ST_UPSERT);
		sqlite3_bind_text(st, 1, metric, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, r->ts);
		if (missing)
			sqlite3_bind_null(st, 3);
		else
			sqlite3_bind_double(st, 3, r->value);
		sqlite3_bind_int(st, 4, missing);
		dtk_buf_reset(&ctx);
		if (r->context) {
			if (dtk_json_emit(&ctx, r->context, DTK_JSON_RAW_UTF8) != 0) {
				snprintf(errstr, errstr_size,
					 "storage: the context of the point at %lld is too large",
					 (long long)r->ts);
				goto out;
			}
			sqlite3_bind_text(st, 5, dtk_buf_str(&ctx), (int)ctx.len, SQLITE_STATIC);
		}
		sqlite3_bind_int64(st, 6, now);
		if (sqlite3_step(st) != SQLITE_DONE) {
			db_error(s, "saving datapoints", errstr, errstr_size);
			goto out;
		}
		sqlite3_reset(st);
	}
	if (exec_simple(s, "COMMIT", errstr, errstr_size) != 0)
		goto out;
	in_tx = 0;
	rc = 0;
out:
	if (in_tx)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_reset(s->st[ST_UPSERT]);
	dtk_buf_free(&ctx);
	return rc;
}

static int sq_history(void *h, const char *metric, int64_t since, int64_t before,
		      int64_t min_points, int with_context, dtk_series *out, char *errstr,
		      size_t errstr_size)
{
	sqlite_store *s = h;
	char perr[128];
	int rc = -1, step;
	sqlite3_stmt *st;
	if (min_points > 0) {
		st = stmt(s, ST_CUTOFF);
		sqlite3_bind_text(st, 1, metric, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, before);
		sqlite3_bind_int64(st, 3, min_points - 1);
		step = sqlite3_step(st);
		if (step == SQLITE_ROW) {
			int64_t cutoff = sqlite3_column_int64(st, 0);
			if (cutoff < since)
				since = cutoff;
		} else if (step == SQLITE_DONE) {
			/* Fewer than min_points points: all of them. */
			since = INT64_MIN;
		} else {
			db_error(s, "reading history", errstr, errstr_size);
			goto out;
		}
		sqlite3_reset(st);
	}
	if (out->n && !out->context != !with_context) {
		snprintf(errstr, errstr_size, "storage: history appended with and without context");
		goto out;
	}
	st = stmt(s, with_context ? ST_RANGE : ST_RANGE_VALUES);
	sqlite3_bind_text(st, 1, metric, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, since);
	sqlite3_bind_int64(st, 3, before);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		dtk_value *ctx = NULL;
		const char *text = with_context ? (const char *)sqlite3_column_text(st, 2) : NULL;
		size_t len = with_context ? (size_t)sqlite3_column_bytes(st, 2) : 0;
		if (with_context && text && len > 0 && len <= STORE_CONTEXT_MAX) {
			ctx = dtk_json_parse(text, len, perr, sizeof(perr));
			if (ctx && ctx->type != DTK_V_MAP)
				dtk_value_free(&ctx);
		}
		if (dtk_series_push(out, sqlite3_column_int64(st, 0), sqlite3_column_double(st, 1),
				with_context, ctx) != 0) {
			dtk_value_free(&ctx);
			snprintf(errstr, errstr_size, "storage: out of memory reading history");
			goto out;
		}
	}
	if (step != SQLITE_DONE) {
		db_error(s, "reading history", errstr, errstr_size);
		goto out;
	}
	rc = 0;
out:
	sqlite3_reset(s->st[ST_CUTOFF]);
	sqlite3_reset(s->st[ST_RANGE]);
	sqlite3_reset(s->st[ST_RANGE_VALUES]);
	return rc;
}

static int max_time(sqlite_store *s, int which, const char *metric, int64_t *ts, int *found,
		    char *errstr, size_t errstr_size)
{
	int rc = -1;
	sqlite3_stmt *st = stmt(s, which);
	*found = 0;
	sqlite3_bind_text(st, 1, metric, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		db_error(s, "reading the newest point", errstr, errstr_size);
		goto out;
	}
	if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
		*ts = sqlite3_column_int64(st, 0);
		*found = 1;
	}
	rc = 0;
out:
	sqlite3_reset(st);
	return rc;
}

static int sq_newest(void *h, const char *metric, int64_t *ts, int *found, char *errstr,
		     size_t errstr_size)
{
	sqlite_store *s = h;
	return max_time(s, ST_NEWEST, metric, ts, found, errstr, errstr_size);
}

static int sq_last(void *h, const char *metric, int64_t *ts, int *found, char *errstr,
		   size_t errstr_size)
{
	sqlite_store *s = h;
	return max_time(s, ST_LAST, metric, ts, found, errstr, errstr_size);
}

static void bind_num(sqlite3_stmt *st, int i, double v)
{
	if (isnan(v))
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_double(st, i, v);
}

static int sq_save_detections(void *h, const char *metric, int64_t collected_at,
			      int64_t execution_time, const dtk_detection_row *rows, size_t n,
			      char *errstr, size_t errstr_size)
{
	sqlite_store *s = h;
	int rc = -1, in_tx = 0;
	int64_t now = (int64_t)time(NULL);
	if (n == 0)
		return 0;
	if (exec_simple(s, "BEGIN IMMEDIATE", errstr, errstr_size) != 0)
		goto out;
	in_tx = 1;
	for (size_t i = 0; i < n; i++) {
		const dtk_detection_row *d = &rows[i];
		sqlite3_stmt *st = stmt(s, ST_DETECTION);
		sqlite3_bind_text(st, 1, metric, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, collected_at);
		sqlite3_bind_int64(st, 3, execution_time);
		sqlite3_bind_text(st, 4, d->detector_id ? d->detector_id : "", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, d->detector_type, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 6, d->is_anomaly ? 1 : 0);
		bind_num(st, 7, d->score);
		bind_num(st, 8, d->lower_bound);
		bind_num(st, 9, d->upper_bound);
		sqlite3_bind_text(st, 10, d->direction, -1, SQLITE_STATIC);
		bind_num(st, 11, d->percent_deviation);
		sqlite3_bind_int(st, 12, d->alert_sent ? 1 : 0);
		sqlite3_bind_text(st, 13, d->alert_reason, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 14, d->metadata_json, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 15, now);
		if (sqlite3_step(st) != SQLITE_DONE) {
			db_error(s, "saving detections", errstr, errstr_size);
			goto out;
		}
		sqlite3_reset(st);
	}
	if (exec_simple(s, "COMMIT", errstr, errstr_size) != 0)
		goto out;
	in_tx = 0;
	rc = 0;
out:
	if (in_tx)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_reset(s->st[ST_DETECTION]);
	return rc;
}

static int retain(sqlite_store *s, int which, const char *metric, int64_t cutoff, char *errstr,
		  size_t errstr_size)
{
	sqlite3_stmt *st = stmt(s, which);
	if (metric)
		sqlite3_bind_text(st, 1, metric, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, cutoff);
	int step = sqlite3_step(st);
	sqlite3_reset(st);
	if (step != SQLITE_DONE)
		return db_error(s, "applying retention", errstr, errstr_size);
	return 0;
}

static int sq_retention(void *h, const char *metric, int64_t now, int64_t datapoint_days,
			int64_t detection_days, char *errstr, size_t errstr_size)
{
	sqlite_store *s = h;
	if (datapoint_days > 0 &&
	    retain(s, metric ? ST_RETAIN_DP : ST_RETAIN_DP_ALL, metric, now - datapoint_days * 86400,
		   errstr, errstr_size) != 0)
		return -1;
	if (detection_days > 0 &&
	    retain(s, metric ? ST_RETAIN_DET : ST_RETAIN_DET_ALL, metric,
		   now - detection_days * 86400, errstr, errstr_size) != 0)
		return -1;
	return 0;
}

const dtk_store_backend dtk_store_sqlite = {
	.engine = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.upsert = sq_upsert,
	.history = sq_history,
	.newest = sq_newest,
	.last = sq_last,
	.save_detections = sq_save_detections,
	.retention = sq_retention,
};
