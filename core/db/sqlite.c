/* The SQLite driver for sources: `path`, or DetectK's `sqlite:///relative`
 * and `sqlite:////absolute` connection strings. Sources open read-only
 * (SQLITE_OPEN_READONLY), so a missing file is an error and never a new
 * empty database. Relative paths follow dtk_db_resolve_path. One statement
 * per query; the query's timeout bounds lock waits and execution (a
 * progress handler interrupts it). Storage keeps its own read-write
 * handle (core/store/sqlite_store.c). */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "db/db.h"

typedef struct sqlite_conn {
	sqlite3 *db;
	char path[4096];
	struct timespec end; /* the running query's deadline */
	int expired;
} sqlite_conn;

static int sqlite_target(const dtk_value *params, dtk_db_target *t, char *errstr,
			 size_t errstr_size)
{
	char path[4096], err[256];
	const char *p = dtk_value_cstr(dtk_value_map_get(params, "path"));
	const char *conn = dtk_value_cstr(dtk_value_map_get(params, "connection_string"));
	if (p && *p) {
		if ((size_t)snprintf(path, sizeof(path), "%s", p) >= sizeof(path)) {
			snprintf(errstr, errstr_size, "path: too long");
			return -1;
		}
	} else if (conn) {
		if (dtk_db_sqlite_path(conn, path, sizeof(path), err, sizeof(err)) != 0) {
			snprintf(errstr, errstr_size, "connection_string: %s", err);
			return -1;
		}
	} else {
		snprintf(errstr, errstr_size, "path: required, the SQLite database file to read");
		return -1;
	}
	size_t keylen = strlen(path) + 32;
	t->conn = strdup(path);
	t->shown = strdup(path);
	t->pool_key = malloc(keylen);
	if (!t->conn || !t->shown || !t->pool_key) {
		snprintf(errstr, errstr_size, "path: out of memory");
		return -1;
	}
	snprintf(t->pool_key, keylen, "sqlite:///%s?ro", path);
	t->read_only = 1;
	return 0;
}

static void *sqlite_connect(const dtk_db_target *t, const char *base_dir, char *errstr,
			    size_t errstr_size)
{
	struct stat sb;
	sqlite_conn *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	if (dtk_db_resolve_path(t->conn, base_dir, c->path, sizeof(c->path)) != 0) {
		snprintf(errstr, errstr_size, "sqlite path is too long");
		goto fail;
	}
	if (stat(c->path, &sb) != 0) {
		snprintf(errstr, errstr_size,
			 "sqlite database '%s' does not exist (relative paths are relative to the "
			 "current directory)",
			 c->path);
		goto fail;
	}
	int flags = (t->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
		    SQLITE_OPEN_NOMUTEX;
	if (sqlite3_open_v2(c->path, &c->db, flags, NULL) != SQLITE_OK) {
		snprintf(errstr, errstr_size, "cannot open sqlite database '%s': %s", c->path,
			 c->db ? sqlite3_errmsg(c->db) : "out of memory");
		goto fail;
	}
	return c;
fail:
	sqlite3_close(c->db);
	free(c);
	return NULL;
}

static int progress_cb(void *arg)
{
	sqlite_conn *c = arg;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec > c->end.tv_sec ||
	    (now.tv_sec == c->end.tv_sec && now.tv_nsec >= c->end.tv_nsec))
		c->expired = 1;
	return c->expired;
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

static int bind_args(sqlite3_stmt *st, const dtk_value *const *args, size_t nargs)
{
	for (size_t i = 0; i < nargs; i++) {
		const dtk_value *v = args[i];
		int col = (int)i + 1, rc;
		switch (v ? v->type : DTK_V_NULL) {
		case DTK_V_BOOL:
			rc = sqlite3_bind_int64(st, col, v->u.b);
			break;
		case DTK_V_INT:
			rc = sqlite3_bind_int64(st, col, v->u.i);
			break;
		case DTK_V_FLOAT:
			rc = isfinite(v->u.f) ? sqlite3_bind_double(st, col, v->u.f)
					      : sqlite3_bind_null(st, col);
			break;
		case DTK_V_STR:
			rc = sqlite3_bind_text(st, col, v->u.str.s, (int)v->u.str.len,
					       SQLITE_STATIC);
			break;
		default:
			rc = sqlite3_bind_null(st, col);
			break;
		}
		if (rc != SQLITE_OK)
			return -1;
	}
	return 0;
}

static int sqlite_query(void *h, const char *sql, const dtk_value *const *args, size_t nargs,
			double timeout_s, dtk_resultset *out, char *errstr, size_t errstr_size)
{
	sqlite_conn *c = h;
	sqlite3_stmt *st = NULL;
	const char *tail = NULL;
	const char **names = NULL;
	int rc = -1;

	if (out)
		memset(out, 0, sizeof(*out));
	if (!(timeout_s > 0))
		timeout_s = 30;
	sqlite3_busy_timeout(c->db, timeout_s * 1000.0 > 2e9 ? 2000000000 : (int)(timeout_s * 1e3));
	clock_gettime(CLOCK_MONOTONIC, &c->end);
	c->end.tv_sec += (time_t)timeout_s;
	c->end.tv_nsec += (long)((timeout_s - floor(timeout_s)) * 1e9);
	if (c->end.tv_nsec >= 1000000000L) {
		c->end.tv_sec++;
		c->end.tv_nsec -= 1000000000L;
	}
	c->expired = 0;
	sqlite3_progress_handler(c->db, 1000, progress_cb, c);

	if (sqlite3_prepare_v2(c->db, sql, -1, &st, &tail) != SQLITE_OK) {
		snprintf(errstr, errstr_size, "query failed on '%s': %s", c->path,
			 sqlite3_errmsg(c->db));
		goto out;
	}
	if (!st) {
		snprintf(errstr, errstr_size, "query: the rendered query is empty");
		goto out;
	}
	if (!only_comments(c->db, tail)) {
		snprintf(errstr, errstr_size, "query: only one SQL statement is allowed");
		goto out;
	}
	if (bind_args(st, args, nargs) != 0) {
		snprintf(errstr, errstr_size, "query: cannot bind parameters: %s",
			 sqlite3_errmsg(c->db));
		goto out;
	}
	int ncols = sqlite3_column_count(st);
	if (out) {
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
	}
	for (;;) {
		int step = sqlite3_step(st);
		if (step == SQLITE_DONE)
			break;
		if (step != SQLITE_ROW) {
			if (c->expired)
				snprintf(errstr, errstr_size, "query on '%s' timed out after %g s",
					 c->path, timeout_s);
			else
				snprintf(errstr, errstr_size, "query failed on '%s': %s", c->path,
					 sqlite3_errmsg(c->db));
			goto out;
		}
		if (!out)
			continue;
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
	if (rc != 0 && out)
		dtk_resultset_clear(out);
	free(names);
	sqlite3_finalize(st);
	sqlite3_progress_handler(c->db, 0, NULL, NULL);
	return rc;
}

static void sqlite_close(void *h)
{
	sqlite_conn *c = h;
	sqlite3_close(c->db);
	free(c);
}

const dtk_db_driver dtk_db_sqlite = {
	.engine = "sqlite",
	.target = sqlite_target,
	.connect = sqlite_connect,
	.query = sqlite_query,
	.close = sqlite_close,
};
