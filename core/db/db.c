/* The driver table, connection targets and the per-thread pool (db.h). */
#include "db/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "plugin.h"

#define POOL_MAX 16

extern const dtk_db_driver dtk_db_sqlite;
extern const dtk_db_driver dtk_db_clickhouse;

/* One line per engine: built in, or a plugin loaded on first use (the
 * client libraries of PostgreSQL and MariaDB cost every process that
 * links them milliseconds of start-up). */
static const struct {
	const char *engine;
	const dtk_db_driver *builtin;
	const char *plugin, *symbol;
} drivers[] = {
	{"sqlite", &dtk_db_sqlite, NULL, NULL},
	{"clickhouse", &dtk_db_clickhouse, NULL, NULL},
	{"postgres", NULL, "dtk-postgres", "dtk_db_postgres"},
	{"mysql", NULL, "dtk-mysql", "dtk_db_mysql"},
};

/* Schemes DetectK's connection strings use, by engine. */
static const struct {
	const char *scheme;
	const char *engine;
} schemes[] = {
	{"sqlite", "sqlite"},	     {"postgresql", "postgres"}, {"postgres", "postgres"},
	{"mysql", "mysql"},	     {"mariadb", "mysql"},	 {"clickhouse", "clickhouse"},
	{"clickhouses", "clickhouse"},
};

static const dtk_db_driver *by_engine(const char *engine, size_t n)
{
	char err[512];
	for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++) {
		if (strlen(drivers[i].engine) != n || strncasecmp(drivers[i].engine, engine, n) != 0)
			continue;
		if (drivers[i].builtin)
			return drivers[i].builtin;
		return dtk_plugin_symbol(drivers[i].plugin, drivers[i].symbol, err, sizeof(err));
	}
	return NULL;
}

const dtk_db_driver *dtk_db_driver_find(const char *name_or_conn)
{
	const char *sep = strstr(name_or_conn, "://");
	if (!sep)
		return by_engine(name_or_conn, strlen(name_or_conn));
	size_t n = strcspn(name_or_conn, "+:");
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (strlen(schemes[i].scheme) == n &&
		    strncasecmp(schemes[i].scheme, name_or_conn, n) == 0)
			return by_engine(schemes[i].engine, strlen(schemes[i].engine));
	return NULL;
}

/* Why engine's driver is unavailable (a plugin that fails to load). */
static void driver_error(const char *engine, char *out, size_t outsz)
{
	snprintf(out, outsz, "not built into this dtk");
	for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
		if (strcmp(drivers[i].engine, engine) == 0 && drivers[i].plugin)
			dtk_plugin_symbol(drivers[i].plugin, drivers[i].symbol, out, outsz);
}

/* The engine a scheme names even when its driver is not built in, for a
 * message that says so. */
static const char *engine_of_scheme(const char *conn)
{
	size_t n = strcspn(conn, "+:");
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (strlen(schemes[i].scheme) == n && strncasecmp(schemes[i].scheme, conn, n) == 0)
			return schemes[i].engine;
	return NULL;
}

int dtk_db_target_parse(const char *type, const dtk_value *params, dtk_db_target *t,
			char *errstr, size_t errstr_size)
{
	memset(t, 0, sizeof(*t));
	const dtk_db_driver *d = NULL;
	if (strcmp(type, "sql") == 0) {
		const char *conn = dtk_value_cstr(dtk_value_map_get(params, "connection_string"));
		if (!conn || !*conn) {
			snprintf(errstr, errstr_size,
				 "connection_string: required, e.g. sqlite:///data.db, "
				 "postgresql://host/db or mysql://host/db");
			return -1;
		}
		const char *sep = strstr(conn, "://");
		if (!sep || sep == conn || (size_t)(sep - conn) > 32) {
			snprintf(errstr, errstr_size,
				 "connection_string: expected scheme://..., e.g. sqlite:///data.db, "
				 "postgresql://host/db or mysql://host/db");
			return -1;
		}
		d = dtk_db_driver_find(conn);
		if (!d) {
			const char *engine = engine_of_scheme(conn);
			char why[512];
			if (engine) {
				driver_error(engine, why, sizeof(why));
				snprintf(errstr, errstr_size,
					 "connection_string: the %s driver is unavailable: %s", engine,
					 why);
			}
			else
				snprintf(errstr, errstr_size,
					 "connection_string: unsupported scheme '%.*s' (use "
					 "sqlite:///, postgresql://, mysql:// or clickhouse://)",
					 (int)(sep - conn), conn);
			return -1;
		}
	} else {
		d = dtk_db_driver_find(type);
		if (!d) {
			char why[512];
			driver_error(type, why, sizeof(why));
			snprintf(errstr, errstr_size, "type: no database driver for '%s' (%s)", type, why);
			return -1;
		}
	}
	t->driver = d;
	t->timeout_s = 30;
	const dtk_value *tv = dtk_value_map_get(params, "timeout");
	double x;
	if (tv && tv->type != DTK_V_NULL) {
		if ((tv->type != DTK_V_INT && tv->type != DTK_V_FLOAT) || !dtk_value_number(tv, &x) ||
		    !(x > 0) || x > 86400) {
			snprintf(errstr, errstr_size, "timeout: must be a number of seconds > 0");
			return -1;
		}
		t->timeout_s = x;
	}
	if (d->target(params, t, errstr, errstr_size) != 0) {
		dtk_db_target_clear(t);
		return -1;
	}
	return 0;
}

void dtk_db_target_clear(dtk_db_target *t)
{
	free(t->conn);
	free(t->pool_key);
	free(t->limit_key);
	free(t->shown);
	memset(t, 0, sizeof(*t));
}

struct dtk_db {
	const dtk_db_driver *driver;
	void *h;
	char *key; /* pool key, NULL when not pooled */
	double timeout_s;
	int in_use;
};

struct dtk_db_pool {
	dtk_db *conns[POOL_MAX];
	size_t n;
	size_t opened;
};

dtk_db_pool *dtk_db_pool_new(void)
{
	return calloc(1, sizeof(dtk_db_pool));
}

static void db_close(dtk_db *db)
{
	if (!db)
		return;
	if (db->h)
		db->driver->close(db->h);
	free(db->key);
	free(db);
}

void dtk_db_pool_free(dtk_db_pool **pp)
{
	if (!pp || !*pp)
		return;
	for (size_t i = 0; i < (*pp)->n; i++)
		db_close((*pp)->conns[i]);
	free(*pp);
	*pp = NULL;
}

size_t dtk_db_pool_opened(const dtk_db_pool *p)
{
	return p ? p->opened : 0;
}

dtk_db *dtk_db_get(dtk_db_pool *pool, const dtk_db_target *t, const char *base_dir,
		   char *errstr, size_t errstr_size)
{
	for (size_t i = 0; pool && i < pool->n; i++) {
		dtk_db *db = pool->conns[i];
		if (!db->in_use && strcmp(db->key, t->pool_key) == 0) {
			db->in_use = 1;
			db->timeout_s = t->timeout_s;
			return db;
		}
	}
	dtk_db *db = calloc(1, sizeof(*db));
	if (!db) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	db->driver = t->driver;
	db->timeout_s = t->timeout_s;
	db->h = t->driver->connect(t, base_dir, errstr, errstr_size);
	if (!db->h) {
		free(db);
		return NULL;
	}
	if (pool)
		pool->opened++;
	if (pool && pool->n == POOL_MAX) {
		/* evict the oldest idle connection */
		for (size_t i = 0; i < pool->n; i++) {
			if (pool->conns[i]->in_use)
				continue;
			db_close(pool->conns[i]);
			memmove(&pool->conns[i], &pool->conns[i + 1],
				(pool->n - i - 1) * sizeof(pool->conns[0]));
			pool->n--;
			break;
		}
	}
	if (pool && pool->n < POOL_MAX && (db->key = strdup(t->pool_key)) != NULL)
		pool->conns[pool->n++] = db;
	db->in_use = 1;
	return db;
}

void dtk_db_release(dtk_db_pool *pool, dtk_db **pdb, int broken)
{
	dtk_db *db = pdb ? *pdb : NULL;
	if (!db)
		return;
	*pdb = NULL;
	size_t i = 0;
	while (pool && i < pool->n && pool->conns[i] != db)
		i++;
	if (!pool || i == pool->n) {
		db_close(db);
		return;
	}
	if (broken) {
		db_close(db);
		memmove(&pool->conns[i], &pool->conns[i + 1], (pool->n - i - 1) * sizeof(db));
		pool->n--;
		return;
	}
	db->in_use = 0;
}

int dtk_db_query(dtk_db *db, const char *sql, const dtk_value *const *args, size_t nargs,
		 dtk_resultset *out, char *errstr, size_t errstr_size)
{
	return db->driver->query(db->h, sql, args, nargs, db->timeout_s, out, errstr,
				 errstr_size);
}
