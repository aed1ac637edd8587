/* store.h over ClickHouse (config.md, Storage), through the ClickHouse
 * driver (core/db/clickhouse.c) and connections lent by the thread's pool.
 * Works on 18.16 and current releases.
 *
 * Tables (created on open when missing):
 *   dtk_datapoints (metric_name String, collected_at DateTime('UTC'),
 *     value Float64, is_missing UInt8, context String,
 *     inserted_at DateTime('UTC'), version UInt64)
 *     ENGINE = ReplacingMergeTree(version) PARTITION BY toYYYYMM(collected_at)
 *     ORDER BY (metric_name, collected_at)
 *   dtk_detections likewise, ORDER BY (metric_name, collected_at,
 *     detector_id).
 *
 * Choices where config.md is silent:
 * - The version column: config.md names ReplacingMergeTree(inserted_at),
 *   but DateTime has whole seconds, and two writes of one point within a
 *   second would tie (ReplacingMergeTree then keeps either). version is
 *   microseconds since the epoch, strictly increasing within a store
 *   handle; inserted_at stays, for people reading the table.
 * - Times travel as epoch seconds both ways (toDateTime(N) in, toUInt32(x)
 *   out), and the columns are DateTime('UTC') (18.16 accepts it), so
 *   neither the server's nor the session's timezone shifts anything.
 * - Reads use FINAL in a subquery filtered only on the sorting key; the
 *   is_missing filter applies outside it, so a newer missing row hides an
 *   older value instead of the other way round (filters on other columns
 *   may run before FINAL's merge).
 * - Retention drops whole partitions (months) whose every second is older
 *   than the cutoff, for all metrics in the table: partitions are shared,
 *   so metrics with different retention_days in one ClickHouse database
 *   keep data until the shortest retention expires a month. Rows of a
 *   partly expired month stay until the whole month expires.
 * - A non-missing row whose value is not finite is stored as missing.
 * - Without a pool, the store keeps one connection of its own.
 *
 * A dtk_store belongs to one thread. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/db.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/pyfmt.h"

#define CH_CONTEXT_MAX ((size_t)1 << 20)
#define CH_INSERT_MAX ((size_t)256 << 20)

int dtk_db_clickhouse_quote(dtk_buf *b, const char *s, size_t len);

static const char ddl_datapoints[] =
    "CREATE TABLE IF NOT EXISTS dtk_datapoints ("
    "metric_name String, collected_at DateTime('UTC'), value Float64, is_missing UInt8, "
    "context String, inserted_at DateTime('UTC'), version UInt64) "
    "ENGINE = ReplacingMergeTree(version) PARTITION BY toYYYYMM(collected_at) "
    "ORDER BY (metric_name, collected_at)";

static const char ddl_detections[] =
    "CREATE TABLE IF NOT EXISTS dtk_detections ("
    "metric_name String, collected_at DateTime('UTC'), execution_time DateTime('UTC'), "
    "detector_id String, detector_type String, is_anomaly UInt8, "
    "score Nullable(Float64), lower_bound Nullable(Float64), upper_bound Nullable(Float64), "
    "direction String, percent_deviation Nullable(Float64), alert_sent UInt8, "
    "alert_reason String, metadata String, inserted_at DateTime('UTC'), version UInt64) "
    "ENGINE = ReplacingMergeTree(version) PARTITION BY toYYYYMM(collected_at) "
    "ORDER BY (metric_name, collected_at, detector_id)";

static const char sql_cutoff[] =
    "SELECT toUInt32(collected_at) AS t FROM (SELECT collected_at, is_missing FROM "
    "dtk_datapoints FINAL WHERE metric_name = {p1:String} AND collected_at < "
    "{p2:DateTime}) WHERE is_missing = 0 ORDER BY collected_at DESC LIMIT {p3:UInt64}, 1";

static const char sql_range[] =
    "SELECT toUInt32(collected_at) AS t, value, context FROM (SELECT collected_at, value, "
    "is_missing, context FROM dtk_datapoints FINAL WHERE metric_name = {p1:String} AND "
    "collected_at >= {p2:DateTime} AND collected_at < {p3:DateTime}) WHERE is_missing = 0 "
    "ORDER BY collected_at";

static const char sql_range_values[] =
    "SELECT toUInt32(collected_at) AS t, value FROM (SELECT collected_at, value, is_missing "
    "FROM dtk_datapoints FINAL WHERE metric_name = {p1:String} AND "
    "collected_at >= {p2:DateTime} AND collected_at < {p3:DateTime}) WHERE is_missing = 0 "
    "ORDER BY collected_at";

static const char sql_newest[] =
    "SELECT toUInt32(max(collected_at)) AS t, count() AS n FROM (SELECT collected_at, "
    "is_missing FROM dtk_datapoints FINAL WHERE metric_name = {p1:String}) WHERE "
    "is_missing = 0";

static const char sql_last[] = "SELECT toUInt32(max(collected_at)) AS t, count() AS n FROM "
			       "dtk_datapoints WHERE metric_name = {p1:String}";

static const char sql_partitions[] =
    "SELECT DISTINCT partition FROM system.parts WHERE database = currentDatabase() AND "
    "table = {p1:String} AND active ORDER BY partition";

typedef struct ch_store {
	dtk_db_target target;
	char *base_dir;
	struct dtk_db_pool *pool;
	dtk_db *own; /* the connection kept when there is no pool */
	uint64_t last_version;
} ch_store;

static dtk_db *get_db(ch_store *s, char *errstr, size_t errstr_size)
{
	if (s->pool)
		return dtk_db_get(s->pool, &s->target, s->base_dir, errstr, errstr_size);
	if (!s->own)
		s->own = dtk_db_get(NULL, &s->target, s->base_dir, errstr, errstr_size);
	return s->own;
}

static void put_db(ch_store *s, dtk_db **db, int broken)
{
	if (s->pool) {
		dtk_db_release(s->pool, db, broken);
	} else {
		if (broken)
			dtk_db_release(NULL, &s->own, 1);
		*db = NULL;
	}
}

/* Runs one statement on a borrowed connection. */
static int run(ch_store *s, const char *sql, const dtk_value *const *args, size_t nargs,
	       dtk_resultset *out, const char *what, char *errstr, size_t errstr_size)
{
	char err[1536];
	dtk_db *db = get_db(s, err, sizeof(err));
	if (!db) {
		snprintf(errstr, errstr_size, "storage %s: %s", what, err);
		return -1;
	}
	int rc = dtk_db_query(db, sql, args, nargs, out, err, sizeof(err));
	put_db(s, &db, rc != 0);
	if (rc != 0)
		snprintf(errstr, errstr_size, "storage %s: %s", what, err);
	return rc;
}

static void chs_close(void *h)
{
	ch_store *s = h;
	if (!s)
		return;
	dtk_db_release(NULL, &s->own, 0);
	dtk_db_target_clear(&s->target);
	free(s->base_dir);
	free(s);
}

static void *chs_open(const char *type, const dtk_value *params, const char *base_dir,
		      struct dtk_db_pool *pool, char *errstr, size_t errstr_size)
{
	char err[1024];
	ch_store *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(errstr, errstr_size, "storage: out of memory");
		return NULL;
	}
	s->pool = pool;
	if (base_dir && !(s->base_dir = strdup(base_dir))) {
		snprintf(errstr, errstr_size, "storage: out of memory");
		goto fail;
	}
	if (dtk_db_target_parse(type && strcmp(type, "sql") == 0 ? "sql" : "clickhouse", params,
				&s->target, err, sizeof(err)) != 0) {
		snprintf(errstr, errstr_size, "storage: %s", err);
		goto fail;
	}
	if (run(s, ddl_datapoints, NULL, 0, NULL, "creating dtk_datapoints", errstr, errstr_size) !=
		0 ||
	    run(s, ddl_detections, NULL, 0, NULL, "creating dtk_detections", errstr, errstr_size) !=
		0)
		goto fail;
	return s;
fail:
	chs_close(s);
	return NULL;
}

/* A version above every earlier one of this handle: microseconds now. */
static uint64_t next_version(ch_store *s)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t v = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)(ts.tv_nsec / 1000);
	if (v <= s->last_version)
		v = s->last_version + 1;
	s->last_version = v;
	return v;
}

static int check_time(int64_t t, char *errstr, size_t errstr_size)
{
	if (t < 0 || t > 4294967295LL) {
		snprintf(errstr, errstr_size,
			 "storage: %" PRId64 " is outside ClickHouse DateTime's range (1970-2106)",
			 t);
		return -1;
	}
	return 0;
}

static void add_float(dtk_buf *b, double v)
{
	if (isnan(v))
		dtk_buf_adds(b, "NULL");
	else if (isinf(v))
		dtk_buf_adds(b, v > 0 ? "inf" : "-inf");
	else
		dtk_buf_printf(b, "%.17g", v);
}

static void add_text(dtk_buf *b, const char *s)
{
	dtk_db_clickhouse_quote(b, s ? s : "", s ? strlen(s) : 0);
}

static int chs_upsert(void *h, const char *metric, const dtk_row *rows, size_t n, char *errstr,
		      size_t errstr_size)
{
	ch_store *s = h;
	dtk_buf q, ctx;
	int rc = -1;
	if (n == 0)
		return 0;
	int64_t now = (int64_t)time(NULL);
	dtk_buf_init(&q, CH_INSERT_MAX);
	dtk_buf_init(&ctx, CH_CONTEXT_MAX);
	dtk_buf_adds(&q, "INSERT INTO dtk_datapoints (metric_name, collected_at, value, "
			 "is_missing, context, inserted_at, version) VALUES ");
	for (size_t i = 0; i < n; i++) {
		const dtk_row *r = &rows[i];
		int missing = r->is_missing || !isfinite(r->value);
		if (check_time(r->ts, errstr, errstr_size) != 0)
			goto out;
		dtk_buf_reset(&ctx);
		if (r->context && dtk_json_emit(&ctx, r->context, DTK_JSON_RAW_UTF8) != 0) {
			snprintf(errstr, errstr_size,
				 "storage: the context of the point at %lld is too large",
				 (long long)r->ts);
			goto out;
		}
		dtk_buf_printf(&q, "%s(", i ? ", " : "");
		add_text(&q, metric);
		dtk_buf_printf(&q, ", %" PRId64 ", ", r->ts);
		add_float(&q, missing ? 0.0 : r->value);
		dtk_buf_printf(&q, ", %d, ", missing);
		dtk_db_clickhouse_quote(&q, dtk_buf_str(&ctx), ctx.len);
		dtk_buf_printf(&q, ", %" PRId64 ", %" PRIu64 ")", now, next_version(s));
	}
	if (q.failed) {
		snprintf(errstr, errstr_size, "storage: too many rows for one insert");
		goto out;
	}
	rc = run(s, dtk_buf_str(&q), NULL, 0, NULL, "saving datapoints", errstr, errstr_size);
out:
	dtk_buf_free(&q);
	dtk_buf_free(&ctx);
	return rc;
}

static int64_t clamp_time(int64_t t)
{
	return t < 0 ? 0 : t > 4294967295LL ? 4294967295LL : t;
}

static int cell_int(const dtk_value *v, int64_t *out)
{
	double d;
	if (v && v->type == DTK_V_INT) {
		*out = v->u.i;
		return 1;
	}
	if (v && dtk_value_number(v, &d)) {
		*out = (int64_t)d;
		return 1;
	}
	return 0;
}

static int chs_history(void *h, const char *metric, int64_t since, int64_t before,
		       int64_t min_points, int with_context, dtk_series *out, char *errstr,
		       size_t errstr_size)
{
	ch_store *s = h;
	char perr[128];
	dtk_resultset rs;
	int rc = -1;
	memset(&rs, 0, sizeof(rs));
	dtk_value *m = dtk_value_str(metric), *a = NULL, *b = NULL, *c = NULL;
	if (!m)
		goto oom;
	before = clamp_time(before);
	if (min_points > 0) {
		a = dtk_value_int(before);
		b = dtk_value_int(min_points - 1);
		if (!a || !b)
			goto oom;
		const dtk_value *args[] = {m, a, b};
		if (run(s, sql_cutoff, args, 3, &rs, "reading history", errstr, errstr_size) != 0)
			goto out;
		int64_t cutoff;
		if (rs.nrows == 1 && cell_int(rs.cells[0], &cutoff)) {
			if (cutoff < since)
				since = cutoff;
		} else {
			since = 0; /* fewer than min_points points: all of them */
		}
		dtk_resultset_clear(&rs);
		dtk_value_free(&a);
		dtk_value_free(&b);
	}
	if (out->n && !out->context != !with_context) {
		snprintf(errstr, errstr_size, "storage: history appended with and without context");
		goto out;
	}
	a = dtk_value_int(clamp_time(since));
	c = dtk_value_int(before);
	if (!a || !c)
		goto oom;
	const dtk_value *args[] = {m, a, c};
	if (run(s, with_context ? sql_range : sql_range_values, args, 3, &rs, "reading history",
		errstr, errstr_size) != 0)
		goto out;
	for (size_t r = 0; r < rs.nrows; r++) {
		dtk_value **row = rs.cells + r * rs.ncols;
		int64_t t;
		double v;
		dtk_value *ctx = NULL;
		if (!cell_int(row[0], &t) || !dtk_value_number(row[1], &v))
			continue;
		if (with_context && row[2] && row[2]->type == DTK_V_STR && row[2]->u.str.len &&
		    row[2]->u.str.len <= CH_CONTEXT_MAX) {
			ctx =
			    dtk_json_parse(row[2]->u.str.s, row[2]->u.str.len, perr, sizeof(perr));
			if (ctx && ctx->type != DTK_V_MAP)
				dtk_value_free(&ctx);
		}
		if (dtk_series_push(out, t, v, with_context, ctx) != 0) {
			dtk_value_free(&ctx);
			goto oom;
		}
	}
	rc = 0;
	goto out;
oom:
	snprintf(errstr, errstr_size, "storage: out of memory reading history");
out:
	dtk_resultset_clear(&rs);
	dtk_value_free(&m);
	dtk_value_free(&a);
	dtk_value_free(&b);
	dtk_value_free(&c);
	return rc;
}

static int max_time(ch_store *s, const char *sql, const char *metric, int64_t *ts, int *found,
		    char *errstr, size_t errstr_size)
{
	dtk_resultset rs;
	int64_t t, n;
	*found = 0;
	dtk_value *m = dtk_value_str(metric);
	if (!m) {
		snprintf(errstr, errstr_size, "storage: out of memory");
		return -1;
	}
	const dtk_value *args[] = {m};
	int rc = run(s, sql, args, 1, &rs, "reading the newest point", errstr, errstr_size);
	dtk_value_free(&m);
	if (rc != 0)
		return -1;
	if (rs.nrows == 1 && rs.ncols == 2 && cell_int(rs.cells[0], &t) &&
	    cell_int(rs.cells[1], &n) && n > 0) {
		*ts = t;
		*found = 1;
	}
	dtk_resultset_clear(&rs);
	return 0;
}

static int chs_newest(void *h, const char *metric, int64_t *ts, int *found, char *errstr,
		      size_t errstr_size)
{
	return max_time(h, sql_newest, metric, ts, found, errstr, errstr_size);
}

static int chs_last(void *h, const char *metric, int64_t *ts, int *found, char *errstr,
		    size_t errstr_size)
{
	return max_time(h, sql_last, metric, ts, found, errstr, errstr_size);
}

static int chs_save_detections(void *h, const char *metric, int64_t collected_at,
			       int64_t execution_time, const dtk_detection_row *rows, size_t n,
			       char *errstr, size_t errstr_size)
{
	ch_store *s = h;
	dtk_buf q;
	int rc = -1;
	if (n == 0)
		return 0;
	if (check_time(collected_at, errstr, errstr_size) != 0 ||
	    check_time(execution_time, errstr, errstr_size) != 0)
		return -1;
	int64_t now = (int64_t)time(NULL);
	dtk_buf_init(&q, CH_INSERT_MAX);
	dtk_buf_adds(&q, "INSERT INTO dtk_detections (metric_name, collected_at, execution_time, "
			 "detector_id, detector_type, is_anomaly, score, lower_bound, upper_bound, "
			 "direction, percent_deviation, alert_sent, alert_reason, metadata, "
			 "inserted_at, version) VALUES ");
	for (size_t i = 0; i < n; i++) {
		const dtk_detection_row *d = &rows[i];
		dtk_buf_printf(&q, "%s(", i ? ", " : "");
		add_text(&q, metric);
		dtk_buf_printf(&q, ", %" PRId64 ", %" PRId64 ", ", collected_at, execution_time);
		add_text(&q, d->detector_id);
		dtk_buf_adds(&q, ", ");
		add_text(&q, d->detector_type);
		dtk_buf_printf(&q, ", %d, ", d->is_anomaly ? 1 : 0);
		add_float(&q, d->score);
		dtk_buf_adds(&q, ", ");
		add_float(&q, d->lower_bound);
		dtk_buf_adds(&q, ", ");
		add_float(&q, d->upper_bound);
		dtk_buf_adds(&q, ", ");
		add_text(&q, d->direction);
		dtk_buf_adds(&q, ", ");
		add_float(&q, d->percent_deviation);
		dtk_buf_printf(&q, ", %d, ", d->alert_sent ? 1 : 0);
		add_text(&q, d->alert_reason);
		dtk_buf_adds(&q, ", ");
		add_text(&q, d->metadata_json);
		dtk_buf_printf(&q, ", %" PRId64 ", %" PRIu64 ")", now, next_version(s));
	}
	if (q.failed) {
		snprintf(errstr, errstr_size, "storage: too many detections for one insert");
		goto out;
	}
	rc = run(s, dtk_buf_str(&q), NULL, 0, NULL, "saving detections", errstr, errstr_size);
out:
	dtk_buf_free(&q);
	return rc;
}

/* 1 when partition id YYYYMM ends (its next month starts) at or before
 * cutoff. */
static int partition_expired(const char *id, int64_t cutoff)
{
	if (strlen(id) != 6 || strspn(id, "0123456789") != 6)
		return 0;
	int y = (id[0] - '0') * 1000 + (id[1] - '0') * 100 + (id[2] - '0') * 10 + (id[3] - '0');
	int mo = (id[4] - '0') * 10 + (id[5] - '0');
	if (mo < 1 || mo > 12)
		return 0;
	if (++mo == 13) {
		mo = 1;
		y++;
	}
	return dtk_pyfmt_days(y, mo, 1) * 86400 <= cutoff;
}

static int drop_expired(ch_store *s, const char *table, int64_t cutoff, char *errstr,
			size_t errstr_size)
{
	dtk_resultset rs;
	char sql[128];
	int rc = -1;
	dtk_value *t = dtk_value_str(table);
	if (!t) {
		snprintf(errstr, errstr_size, "storage: out of memory");
		return -1;
	}
	const dtk_value *args[] = {t};
	if (run(s, sql_partitions, args, 1, &rs, "listing partitions", errstr, errstr_size) != 0) {
		dtk_value_free(&t);
		return -1;
	}
	for (size_t r = 0; r < rs.nrows; r++) {
		const char *id = dtk_value_cstr(rs.cells[r * rs.ncols]);
		if (!id || !partition_expired(id, cutoff))
			continue;
		/* id is six digits (checked above): safe to print as a literal */
		snprintf(sql, sizeof(sql), "ALTER TABLE %s DROP PARTITION %s", table, id);
		if (run(s, sql, NULL, 0, NULL, "applying retention", errstr, errstr_size) != 0)
			goto out;
	}
	rc = 0;
out:
	dtk_resultset_clear(&rs);
	dtk_value_free(&t);
	return rc;
}

static int chs_retention(void *h, const char *metric, int64_t now, int64_t datapoint_days,
			 int64_t detection_days, char *errstr, size_t errstr_size)
{
	ch_store *s = h;
	if (datapoint_days > 0 && drop_expired(s, "dtk_datapoints", now - datapoint_days * 86400,
					       errstr, errstr_size) != 0)
		return -1;
	if (detection_days > 0 && drop_expired(s, "dtk_detections", now - detection_days * 86400,
					       errstr, errstr_size) != 0)
		return -1;
	return 0;
}

const dtk_store_backend dtk_store_clickhouse = {
    .engine = "clickhouse",
    .open = chs_open,
    .close = chs_close,
    .upsert = chs_upsert,
    .history = chs_history,
    .newest = chs_newest,
    .last = chs_last,
    .save_detections = chs_save_detections,
    .retention = chs_retention,
};
