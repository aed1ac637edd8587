/* SQLite sources: the `sqlite` collector (`path`) and the `sql` collector
 * (DetectK's, a `connection_string` dispatched by scheme through
 * sql_drivers below; PostgreSQL and MySQL are recognised so configs
 * validate, and their drivers are one line each when they land).
 *
 * Choices where config.md is silent:
 * - A relative path (`sqlite:///data/x.db`, `path: data/x.db`) is relative
 *   to the current directory, as in DetectK; only when no such file exists
 *   there but one exists next to the config file is that one used.
 * - has_timestamps is 1 when the query text mentions the timestamp column's
 *   name (case-insensitively): the real answer needs a run.
 * - The query runs once per collect on a fresh read-only connection
 *   (SQLITE_OPEN_READONLY, so a missing file is an error, never a new
 *   database); `timeout` (seconds, default 30) bounds both waiting for
 *   locks and running the query.
 * - One statement per query; a second one is an error.
 *
 * A compiled source is immutable and thread-safe; each collect opens its
 * own connection. */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "collect/collector.h"
#include "collect/columns.h"
#include "template/template.h"
#include "util/pyfmt.h"

#define SQL_DEFAULT_TIMEOUT 30.0

static int sqlite_check(const char *conn, char *errstr, size_t errstr_size);
static int sqlite_query(const char *conn, const char *base_dir, const char *sql,
			double timeout_s, dtk_resultset *out, char *errstr, size_t errstr_size);

/* The `sql` collector's families, by connection string scheme. */
static const dtk_sql_driver sql_drivers[] = {
	{"sqlite", sqlite_check, sqlite_query},
	{"postgresql", NULL, NULL},
	{"postgres", NULL, NULL},
	{"mysql", NULL, NULL},
	{"mariadb", NULL, NULL},
};

typedef struct sqlsrc {
	const dtk_sql_driver *driver;
	char *conn; /* connection string, or the path of a `sqlite` source */
	char *query_text;
	dtk_template *query;
	double timeout;
	dtk_columns cols;
} sqlsrc;

typedef struct deadline {
	struct timespec end;
	int expired;
} deadline;

static int progress_cb(void *arg)
{
	deadline *d = arg;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec > d->end.tv_sec ||
	    (now.tv_sec == d->end.tv_sec && now.tv_nsec >= d->end.tv_nsec))
		d->expired = 1;
	return d->expired;
}

static int only_comments(sqlite3 *db, const char *tail)
{
	sqlite3_stmt *st = NULL;
	const char *next = NULL;
	while (tail && *tail) {
		if (sqlite3_prepare_v2(db, tail, -1, &st, &next) != SQLITE_OK)
			return 0;
		if (st) {
			sqlite3_finalize(st);
			return 0;
		}
		if (next == tail)
			break;
		tail = next;
	}
	return 1;
}

static int sqlite_check(const char *conn, char *errstr, size_t errstr_size)
{
	char path[4096], err[256];
	if (dtk_columns_sqlite_path(conn, path, sizeof(path), err, sizeof(err)) != 0) {
		snprintf(errstr, errstr_size, "connection_string: %s", err);
		return -1;
	}
	return 0;
}

static int sqlite_query(const char *conn, const char *base_dir, const char *sql,
			double timeout_s, dtk_resultset *out, char *errstr, size_t errstr_size)
{
	char given[4096], path[4096];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	const char *tail = NULL;
	const char **names = NULL;
	deadline dl = {{0, 0}, 0};
	struct stat sb;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (strstr(conn, "://")) {
		if (dtk_columns_sqlite_path(conn, given, sizeof(given), errstr, errstr_size) != 0)
			goto out;
	} else if ((size_t)snprintf(given, sizeof(given), "%s", conn) >= sizeof(given)) {
		snprintf(errstr, errstr_size, "sqlite path is too long");
		goto out;
	}
	if (dtk_columns_resolve_path(given, base_dir, path, sizeof(path)) != 0) {
		snprintf(errstr, errstr_size, "sqlite path is too long");
		goto out;
	}
	if (stat(path, &sb) != 0) {
		snprintf(errstr, errstr_size,
			 "sqlite database '%s' does not exist (relative paths are relative to the "
			 "current directory)",
			 path);
		goto out;
	}
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		snprintf(errstr, errstr_size, "cannot open sqlite database '%s': %s", path,
			 db ? sqlite3_errmsg(db) : "out of memory");
		goto out;
	}
	if (!(timeout_s > 0))
		timeout_s = SQL_DEFAULT_TIMEOUT;
	sqlite3_busy_timeout(db, timeout_s * 1000.0 > 2e9 ? 2000000000 : (int)(timeout_s * 1000.0));
	clock_gettime(CLOCK_MONOTONIC, &dl.end);
	dl.end.tv_sec += (time_t)timeout_s;
	dl.end.tv_nsec += (long)((timeout_s - floor(timeout_s)) * 1e9);
	if (dl.end.tv_nsec >= 1000000000L) {
		dl.end.tv_sec++;
		dl.end.tv_nsec -= 1000000000L;
	}
	sqlite3_progress_handler(db, 1000, progress_cb, &dl);

	if (sqlite3_prepare_v2(db, sql, -1, &st, &tail) != SQLITE_OK) {
		snprintf(errstr, errstr_size, "query failed on '%s': %s", path,
			 sqlite3_errmsg(db));
		goto out;
	}
	if (!st) {
		snprintf(errstr, errstr_size, "query: the rendered query is empty");
		goto out;
	}
	if (!only_comments(db, tail)) {
		snprintf(errstr, errstr_size, "query: only one SQL statement is allowed");
		goto out;
	}
	int ncols = sqlite3_column_count(st);
	if (ncols > 0) {
		names = calloc((size_t)ncols, sizeof(*names));
		if (!names) {
			snprintf(errstr, errstr_size, "out of memory reading the result");
			goto out;
		}
		for (int i = 0; i < ncols; i++)
			names[i] = sqlite3_column_name(st, i);
	}
	if (dtk_resultset_init(out, (size_t)ncols, names, errstr, errstr_size) != 0)
		goto out;
	for (;;) {
		int step = sqlite3_step(st);
		if (step == SQLITE_DONE)
			break;
		if (step != SQLITE_ROW) {
			if (dl.expired)
				snprintf(errstr, errstr_size, "query on '%s' timed out after %g s",
					 path, timeout_s);
			else
				snprintf(errstr, errstr_size, "query failed on '%s': %s", path,
					 sqlite3_errmsg(db));
			goto out;
		}
		dtk_value **cells = dtk_resultset_add_row(out, errstr, errstr_size);
		if (!cells)
			goto out;
		for (int i = 0; i < ncols; i++) {
			switch (sqlite3_column_type(st, i)) {
			case SQLITE_INTEGER:
				cells[i] = dtk_value_int(sqlite3_column_int64(st, i));
				break;
			case SQLITE_FLOAT:
				cells[i] = dtk_value_float(sqlite3_column_double(st, i));
				break;
			case SQLITE_NULL:
				continue;
			default: {
				const char *text = (const char *)sqlite3_column_text(st, i);
				size_t len = (size_t)sqlite3_column_bytes(st, i);
				cells[i] = dtk_resultset_text(out, text, len, errstr, errstr_size);
				if (!cells[i])
					goto out;
				continue;
			}
			}
			if (!cells[i]) {
				snprintf(errstr, errstr_size, "out of memory reading the result");
				goto out;
			}
		}
	}
	rc = 0;
out:
	if (rc != 0)
		dtk_resultset_clear(out);
	free(names);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

static void sqlsrc_destroy(void *compiled)
{
	sqlsrc *s = compiled;
	if (!s)
		return;
	free(s->conn);
	free(s->query_text);
	dtk_template_free(&s->query);
	dtk_columns_free(&s->cols);
	free(s);
}

static const char *param_str(const dtk_value *params, const char *key)
{
	const dtk_value *v = dtk_value_map_get(params, key);
	return v && v->type == DTK_V_STR ? v->u.str.s : NULL;
}

/* The driver for conn's scheme; NULL with errstr (which never echoes conn,
 * as it may carry a password) when none. */
static const dtk_sql_driver *driver_for(const char *conn, char *errstr, size_t errstr_size)
{
	const char *sep = strstr(conn, "://");
	size_t n = sep ? (size_t)(sep - conn) : 0;
	size_t plus = strcspn(conn, "+");
	if (!sep || n == 0 || n > 32 || strspn(conn, "abcdefghijklmnopqrstuvwxyz"
						      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+_-") < n) {
		snprintf(errstr, errstr_size,
			 "connection_string: expected scheme://..., e.g. sqlite:///data.db, "
			 "postgresql://host/db or mysql://host/db");
		return NULL;
	}
	if (plus < n)
		n = plus;
	for (size_t i = 0; i < sizeof(sql_drivers) / sizeof(sql_drivers[0]); i++)
		if (strlen(sql_drivers[i].scheme) == n &&
		    strncasecmp(sql_drivers[i].scheme, conn, n) == 0)
			return &sql_drivers[i];
	snprintf(errstr, errstr_size,
		 "connection_string: unsupported scheme '%.*s' (use sqlite:///, postgresql:// or "
		 "mysql://)",
		 (int)n, conn);
	return NULL;
}

static int sqlsrc_compile_common(const dtk_value *params, sqlsrc *s, char *errstr,
				 size_t errstr_size)
{
	char err[256];
	const dtk_value *q = dtk_value_map_get(params, "query");
	if (!q || q->type != DTK_V_STR || strspn(q->u.str.s, " \t\r\n") == q->u.str.len) {
		snprintf(errstr, errstr_size, "query: required, the SQL to run (a template using "
					      "{{ period_start }} and {{ period_finish }})");
		return -1;
	}
	s->query_text = strdup(q->u.str.s);
	if (!s->query_text) {
		snprintf(errstr, errstr_size, "query: out of memory");
		return -1;
	}
	s->query = dtk_template_compile(q->u.str.s, err, sizeof(err));
	if (!s->query) {
		snprintf(errstr, errstr_size, "query: %s", err);
		return -1;
	}
	int has_start = dtk_template_uses_var(s->query, "period_start");
	int has_finish = dtk_template_uses_var(s->query, "period_finish");
	if (!has_start || !has_finish) {
		snprintf(errstr, errstr_size,
			 "query: must use {{ period_start }} and {{ period_finish }} (missing %s), "
			 "e.g. WHERE ts >= '{{ period_start }}' AND ts < '{{ period_finish }}'",
			 !has_start && !has_finish ? "both"
			 : !has_start		   ? "period_start"
						   : "period_finish");
		return -1;
	}
	s->timeout = SQL_DEFAULT_TIMEOUT;
	const dtk_value *t = dtk_value_map_get(params, "timeout");
	if (t && t->type != DTK_V_NULL) {
		if ((t->type != DTK_V_INT && t->type != DTK_V_FLOAT) ||
		    !dtk_value_number(t, &s->timeout) || !(s->timeout > 0) || s->timeout > 86400) {
			snprintf(errstr, errstr_size, "timeout: must be a number of seconds > 0");
			return -1;
		}
	}
	return dtk_columns_compile(params, &s->cols, errstr, errstr_size);
}

static int sqlite_compile(const dtk_value *params, dtk_value *warnings, void **compiled,
			  char *errstr, size_t errstr_size)
{
	int rc = -1;
	sqlsrc *s = calloc(1, sizeof(*s));
	*compiled = NULL;
	if (!s) {
		snprintf(errstr, errstr_size, "sqlite: out of memory");
		goto out;
	}
	s->driver = &sql_drivers[0];
	const char *path = param_str(params, "path");
	const char *conn = param_str(params, "connection_string");
	if (path && *path) {
		s->conn = strdup(path);
	} else if (conn) {
		if (sqlite_check(conn, errstr, errstr_size) != 0)
			goto out;
		s->conn = strdup(conn);
	} else {
		snprintf(errstr, errstr_size, "path: required, the SQLite database file to read");
		goto out;
	}
	if (!s->conn) {
		snprintf(errstr, errstr_size, "path: out of memory");
		goto out;
	}
	if (sqlsrc_compile_common(params, s, errstr, errstr_size) != 0)
		goto out;
	*compiled = s;
	s = NULL;
	rc = 0;
out:
	sqlsrc_destroy(s);
	return rc;
}

static int sql_compile(const dtk_value *params, dtk_value *warnings, void **compiled,
		       char *errstr, size_t errstr_size)
{
	int rc = -1;
	sqlsrc *s = calloc(1, sizeof(*s));
	*compiled = NULL;
	if (!s) {
		snprintf(errstr, errstr_size, "sql: out of memory");
		goto out;
	}
	const char *conn = param_str(params, "connection_string");
	if (!conn || !*conn) {
		snprintf(errstr, errstr_size,
			 "connection_string: required, e.g. sqlite:///data.db, "
			 "postgresql://host/db or mysql://host/db");
		goto out;
	}
	s->driver = driver_for(conn, errstr, errstr_size);
	if (!s->driver)
		goto out;
	if (s->driver->check && s->driver->check(conn, errstr, errstr_size) != 0)
		goto out;
	s->conn = strdup(conn);
	if (!s->conn) {
		snprintf(errstr, errstr_size, "connection_string: out of memory");
		goto out;
	}
	if (sqlsrc_compile_common(params, s, errstr, errstr_size) != 0)
		goto out;
	*compiled = s;
	s = NULL;
	rc = 0;
out:
	sqlsrc_destroy(s);
	return rc;
}

/* The variables a SQL query renders with (config.md, Templates). */
static dtk_value *query_vars(const dtk_collect_request *req)
{
	char ps[40], pf[40], iv[48];
	dtk_value *vars = dtk_value_map();
	dtk_value *exec = dtk_value_datetime(req->execution_time, 0);
	dtk_pyfmt_datetime(req->period_start, 0, 'T', ps, sizeof(ps));
	dtk_pyfmt_datetime(req->period_finish, 0, 'T', pf, sizeof(pf));
	if (req->interval_text)
		snprintf(iv, sizeof(iv), "%s", req->interval_text);
	else
		snprintf(iv, sizeof(iv), "%lld seconds", (long long)req->interval);
	if (!vars || !exec || dtk_value_map_set(vars, "execution_time", exec) != 0)
		goto fail;
	exec = NULL;
	if (dtk_value_map_set_str(vars, "period_start", ps) != 0 ||
	    dtk_value_map_set_str(vars, "period_finish", pf) != 0 ||
	    dtk_value_map_set_str(vars, "interval", iv) != 0 ||
	    dtk_value_map_set_str(vars, "metric_name",
				  req->metric_name ? req->metric_name : "") != 0)
		goto fail;
	return vars;
fail:
	dtk_value_free(&exec);
	dtk_value_free(&vars);
	return NULL;
}

static int sqlsrc_collect(const void *compiled, const dtk_collect_request *req, dtk_rows *out,
			  char *errstr, size_t errstr_size)
{
	const sqlsrc *s = compiled;
	char err[512];
	char *sql = NULL;
	dtk_resultset rs;
	int rc = -1;
	dtk_value *vars = NULL;

	memset(&rs, 0, sizeof(rs));
	if (!s->driver->query) {
		snprintf(errstr, errstr_size, "%s sources arrive in a later release",
			 s->driver->scheme);
		goto out;
	}
	vars = query_vars(req);
	if (!vars) {
		snprintf(errstr, errstr_size, "out of memory");
		goto out;
	}
	sql = dtk_template_render(s->query, vars, DTK_TEMPLATE_STRICT, err, sizeof(err));
	if (!sql) {
		snprintf(errstr, errstr_size, "query: %s", err);
		goto out;
	}
	if (s->driver->query(s->conn, req->base_dir, sql, s->timeout, &rs, errstr, errstr_size) !=
	    0)
		goto out;
	if (dtk_columns_map(&s->cols, &rs, req, out, errstr, errstr_size) != 0)
		goto out;
	rc = 0;
out:
	dtk_resultset_clear(&rs);
	free(sql);
	dtk_value_free(&vars);
	return rc;
}

static int sqlsrc_has_timestamps(const void *compiled)
{
	const sqlsrc *s = compiled;
	return strcasestr(s->query_text, s->cols.timestamp_column) != NULL;
}

static const char *const sqlite_params[] = {
	"path",		   "connection_string", "query",	   "timeout",
	"timestamp_column", "value_column",	 "context_columns", "timezone",
	"max_connections",  "limit_key",	 NULL,
};

static const char *const sql_params[] = {
	"connection_string", "query",	 "timeout",	    "timestamp_column",
	"value_column",	     "context_columns", "timezone", "pool_size",
	"max_overflow",	     "max_connections", "limit_key", NULL,
};

const dtk_collector_type dtk_collector_sqlite = {
	.name = "sqlite",
	.summary = "a SQL query against a SQLite file, opened read-only (path)",
	.compile = sqlite_compile,
	.destroy = sqlsrc_destroy,
	.collect = sqlsrc_collect,
	.has_timestamps = sqlsrc_has_timestamps,
	.known_params = sqlite_params,
};

const dtk_collector_type dtk_collector_sql = {
	.name = "sql",
	.summary = "DetectK's SQL collector: a query via connection_string (sqlite:///; "
		   "postgresql:// and mysql:// later)",
	.compile = sql_compile,
	.destroy = sqlsrc_destroy,
	.collect = sqlsrc_collect,
	.has_timestamps = sqlsrc_has_timestamps,
	.known_params = sql_params,
};
