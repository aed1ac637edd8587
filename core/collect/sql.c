/* SQL-family sources: DetectK's `sql` collector (a `connection_string`
 * whose scheme picks the database driver of core/db) and the typed
 * collectors `sqlite` (`path`), `clickhouse` (core/db/clickhouse.c),
 * `postgres` and `mysql` (`dsn`, or host/port/database/user/password):
 * one dtk_collector_type each, sharing this code.
 *
 * Choices where config.md is silent:
 * - has_timestamps is 1 when the query text mentions the timestamp column's
 *   name (case-insensitively): the real answer needs a run.
 * - The connection comes from the thread's pool (dtk_collect_request.pool),
 *   so a check whose storage lives on the same server reuses it; a failed
 *   query closes it.
 *
 * A compiled source is immutable and thread-safe. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "collect/collector.h"
#include "collect/columns.h"
#include "template/template.h"

typedef struct sqlsrc {
	dtk_db_target target;
	char *query_text;
	dtk_template *query;
	dtk_columns cols;
} sqlsrc;

static void sqlsrc_destroy(void *compiled)
{
	sqlsrc *s = compiled;
	if (!s)
		return;
	dtk_db_target_clear(&s->target);
	free(s->query_text);
	dtk_template_free(&s->query);
	dtk_columns_free(&s->cols);
	free(s);
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
	return dtk_columns_compile(params, &s->cols, errstr, errstr_size);
}

/* Compiles a source of collector type `type` ("sql" or an engine name). */
static int sqlsrc_compile(const char *type, const dtk_value *params, void **compiled,
			  char *errstr, size_t errstr_size)
{
	int rc = -1;
	sqlsrc *s = calloc(1, sizeof(*s));
	*compiled = NULL;
	if (!s) {
		snprintf(errstr, errstr_size, "%s: out of memory", type);
		goto out;
	}
	if (dtk_db_target_parse(type, params, &s->target, errstr, errstr_size) != 0 ||
	    sqlsrc_compile_common(params, s, errstr, errstr_size) != 0)
		goto out;
	*compiled = s;
	s = NULL;
	rc = 0;
out:
	sqlsrc_destroy(s);
	return rc;
}

static int sqlite_compile(const dtk_value *params, dtk_value *warnings, void **compiled,
			  char *errstr, size_t errstr_size)
{
	return sqlsrc_compile("sqlite", params, compiled, errstr, errstr_size);
}

int dtk_db_clickhouse_notice(const dtk_value *params, char *out, size_t outsz);

/* The ClickHouse port-mapping notice (9000 -> 8123) goes to the warnings. */
static int with_notice(const char *type, const dtk_value *params, dtk_value *warnings,
		       void **compiled, char *errstr, size_t errstr_size)
{
	char notice[256];
	if (sqlsrc_compile(type, params, compiled, errstr, errstr_size) != 0)
		return -1;
	if (warnings && dtk_db_clickhouse_notice(params, notice, sizeof(notice))) {
		dtk_value *w = dtk_value_str(notice);
		if (dtk_value_list_push(warnings, w) != 0)
			dtk_value_free(&w);
	}
	return 0;
}

static int sql_compile(const dtk_value *params, dtk_value *warnings, void **compiled,
		       char *errstr, size_t errstr_size)
{
	return with_notice("sql", params, warnings, compiled, errstr, errstr_size);
}

static int clickhouse_compile(const dtk_value *params, dtk_value *warnings, void **compiled,
			      char *errstr, size_t errstr_size)
{
	return with_notice("clickhouse", params, warnings, compiled, errstr, errstr_size);
}

static int postgres_compile(const dtk_value *params, dtk_value *warnings, void **compiled,
			    char *errstr, size_t errstr_size)
{
	return sqlsrc_compile("postgres", params, compiled, errstr, errstr_size);
}

static int mysql_compile(const dtk_value *params, dtk_value *warnings, void **compiled,
			 char *errstr, size_t errstr_size)
{
	return sqlsrc_compile("mysql", params, compiled, errstr, errstr_size);
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
	dtk_db *db = NULL;

	memset(&rs, 0, sizeof(rs));
	vars = dtk_collect_vars(req);
	if (!vars) {
		snprintf(errstr, errstr_size, "out of memory");
		goto out;
	}
	sql = dtk_template_render(s->query, vars, DTK_TEMPLATE_STRICT, err, sizeof(err));
	if (!sql) {
		snprintf(errstr, errstr_size, "query: %s", err);
		goto out;
	}
	db = dtk_db_get(req->pool, &s->target, req->base_dir, errstr, errstr_size);
	if (!db)
		goto out;
	int qrc = dtk_db_query(db, sql, NULL, 0, &rs, errstr, errstr_size);
	dtk_db_release(req->pool, &db, qrc != 0);
	if (qrc != 0)
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

static int sqlsrc_limit_key(const void *compiled, char *out, size_t outsz)
{
	const sqlsrc *s = compiled;
	if (!s->target.limit_key)
		return 0;
	snprintf(out, outsz, "%s", s->target.limit_key);
	return 1;
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

static const char *const postgres_params[] = {
	"dsn",		    "connection_string", "host",	    "port",
	"database",	    "user",		 "password",	    "sslmode",
	"query",	    "timeout",		 "timestamp_column", "value_column",
	"context_columns", "timezone",		 "max_connections", "limit_key",
	NULL,
};

static const char *const mysql_params[] = {
	"dsn",		    "connection_string", "host",	    "port",
	"database",	    "user",		 "password",	    "unix_socket",
	"query",	    "timeout",		 "timestamp_column", "value_column",
	"context_columns", "timezone",		 "max_connections", "limit_key",
	NULL,
};

const dtk_collector_type dtk_collector_sqlite = {
	.name = "sqlite",
	.summary = "a SQL query against a SQLite file, opened read-only (path)",
	.compile = sqlite_compile,
	.destroy = sqlsrc_destroy,
	.collect = sqlsrc_collect,
	.has_timestamps = sqlsrc_has_timestamps,
	.limit_key = sqlsrc_limit_key,
	.known_params = sqlite_params,
};

static const char *const clickhouse_params[] = {
	"connection_string", "host",	       "port",		   "http_port",
	"database",	     "user",	       "password",	   "secure",
	"query",	     "timeout",	       "timestamp_column", "value_column",
	"context_columns",   "timezone",       "max_connections",  "limit_key",
	NULL,
};

const dtk_collector_type dtk_collector_clickhouse = {
	.name = "clickhouse",
	.summary = "a SQL query against ClickHouse over its HTTP interface (host, port 8123, "
		   "database, user, password or connection_string)",
	.compile = clickhouse_compile,
	.destroy = sqlsrc_destroy,
	.collect = sqlsrc_collect,
	.has_timestamps = sqlsrc_has_timestamps,
	.limit_key = sqlsrc_limit_key,
	.known_params = clickhouse_params,
};

const dtk_collector_type dtk_collector_sql = {
	.name = "sql",
	.summary = "DetectK's SQL collector: a query via connection_string (sqlite:///, "
		   "postgresql://, mysql://, clickhouse://)",
	.compile = sql_compile,
	.destroy = sqlsrc_destroy,
	.collect = sqlsrc_collect,
	.has_timestamps = sqlsrc_has_timestamps,
	.limit_key = sqlsrc_limit_key,
	.known_params = sql_params,
};

const dtk_collector_type dtk_collector_postgres = {
	.name = "postgres",
	.summary = "a SQL query against PostgreSQL (dsn, or host/port/database/user/password)",
	.compile = postgres_compile,
	.destroy = sqlsrc_destroy,
	.collect = sqlsrc_collect,
	.has_timestamps = sqlsrc_has_timestamps,
	.limit_key = sqlsrc_limit_key,
	.known_params = postgres_params,
};

const dtk_collector_type dtk_collector_mysql = {
	.name = "mysql",
	.summary = "a SQL query against MySQL or MariaDB (dsn, or host/port/database/user/"
		   "password)",
	.compile = mysql_compile,
	.destroy = sqlsrc_destroy,
	.collect = sqlsrc_collect,
	.has_timestamps = sqlsrc_has_timestamps,
	.limit_key = sqlsrc_limit_key,
	.known_params = mysql_params,
};
