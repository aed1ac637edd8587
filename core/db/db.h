/* Database connections for SQL-family sources and storage: one driver per
 * engine (sqlite, postgres, mysql, clickhouse), one connection string form
 * per driver, and a per-thread pool so a check reuses the connection its
 * collector opened when its storage lives on the same server.
 *
 * A dtk_db_target is immutable once parsed and may be shared by threads; a
 * dtk_db (one connection) and a dtk_db_pool belong to one thread. */
#ifndef DTK_DB_DB_H
#define DTK_DB_DB_H

#include <stddef.h>
#include <stdint.h>

#include "util/value.h"

/* Bounds on what a query may return: a history load of a year of
 * one-minute points is about 526 000 rows. */
#define DTK_RESULTSET_MAX_ROWS ((size_t)2000000)
#define DTK_RESULTSET_MAX_TEXT ((size_t)256 << 20)

/* A generic result: column names plus cells, what every driver produces. */
typedef struct dtk_resultset {
	size_t ncols;
	char **names; /* owned */
	size_t nrows, cap;
	dtk_value **cells; /* nrows * ncols, row-major, owned; NULL means SQL NULL */
	size_t text_bytes;
} dtk_resultset;

/* Starts an empty result with the given column names (copied). Returns 0,
 * or -1 with errstr when out of memory. */
int dtk_resultset_init(dtk_resultset *rs, size_t ncols, const char *const *names, char *errstr,
		       size_t errstr_size);
/* Appends a row and returns its ncols cells (all NULL), which the driver
 * fills with values the result set then owns. NULL with errstr past
 * DTK_RESULTSET_MAX_ROWS or when out of memory. */
dtk_value **dtk_resultset_add_row(dtk_resultset *rs, char *errstr, size_t errstr_size);
/* A string cell counted against DTK_RESULTSET_MAX_TEXT; returns a value
 * owned by the caller, or NULL with errstr. */
dtk_value *dtk_resultset_text(dtk_resultset *rs, const char *s, size_t len, char *errstr,
			      size_t errstr_size);
void dtk_resultset_clear(dtk_resultset *rs);

struct dtk_db_driver;

/* Where to connect. */
typedef struct dtk_db_target {
	const struct dtk_db_driver *driver;
	char *conn;	 /* the driver's connection string (may hold a password) */
	char *pool_key;	 /* engine://user@host:port/database[?ro]: no password */
	char *limit_key; /* engine://host:port (fleet.md), NULL for files */
	char *shown;	 /* for messages: the target without user-info or password */
	double timeout_s;
	int read_only;
} dtk_db_target;

typedef struct dtk_db_driver {
	const char *engine; /* "sqlite", "postgres", "mysql", "clickhouse" */
	/* Builds t from the connection params of a collector or storage block
	 * (connection_string / dsn / path / host, port, database, user,
	 * password, ...). Without connecting. -1 with "KEY: message". */
	int (*target)(const dtk_value *params, dtk_db_target *t, char *errstr, size_t errstr_size);
	/* Opens a connection; base_dir resolves relative file paths. Returns
	 * the driver's handle, or NULL with a message that never includes the
	 * password or user-info. */
	void *(*connect)(const dtk_db_target *t, const char *base_dir, char *errstr,
			 size_t errstr_size);
	/* Runs one statement with args bound as parameters (the driver's own
	 * placeholders: ? for sqlite and mysql, $1 for postgres, {pN:Type} for
	 * clickhouse); fills out when non-NULL. */
	int (*query)(void *h, const char *sql, const dtk_value *const *args, size_t nargs,
		     double timeout_s, dtk_resultset *out, char *errstr, size_t errstr_size);
	void (*close)(void *h);
} dtk_db_driver;

/* The file path of a `sqlite:///relative` or `sqlite:////absolute`
 * connection string (a `?query` suffix is ignored), written into out.
 * Returns 0, or -1 with errstr when conn is not such a string. */
int dtk_db_sqlite_path(const char *conn, char *out, size_t outsz, char *errstr,
		       size_t errstr_size);
/* Resolves a SQLite path. Relative paths are relative to the current
 * directory, as in DetectK; when no such file exists there but one exists
 * under base_dir (the config's directory; may be NULL), that one is used.
 * Returns 0, or -1 when the result does not fit in outsz. */
int dtk_db_resolve_path(const char *path, const char *base_dir, char *out, size_t outsz);

/* The driver for an engine name or a connection string's scheme
 * ("postgresql+psycopg2://" finds postgres). NULL when none. */
const dtk_db_driver *dtk_db_driver_find(const char *name_or_conn);

/* Fills t for a SQL-family block: type is "sql" (DetectK's: the scheme of
 * connection_string decides), or an engine name. -1 with "KEY: message". */
int dtk_db_target_parse(const char *type, const dtk_value *params, dtk_db_target *t,
			char *errstr, size_t errstr_size);
void dtk_db_target_clear(dtk_db_target *t);

typedef struct dtk_db dtk_db;
typedef struct dtk_db_pool dtk_db_pool;

/* A pool owned by the caller; NULL when out of memory. */
dtk_db_pool *dtk_db_pool_new(void);
/* Closes every pooled connection and NULLs *p. */
void dtk_db_pool_free(dtk_db_pool **p);

/* A connection to t: the pooled one when pool holds one for t's pool key,
 * else a new one (kept by the pool when pool is non-NULL). Release it
 * with dtk_db_release after use. NULL with errstr on failure. */
dtk_db *dtk_db_get(dtk_db_pool *pool, const dtk_db_target *t, const char *base_dir,
		   char *errstr, size_t errstr_size);
/* Gives the connection back (closing it when it is not pooled, or when
 * broken is set after a failure) and NULLs *db. */
void dtk_db_release(dtk_db_pool *pool, dtk_db **db, int broken);

int dtk_db_query(dtk_db *db, const char *sql, const dtk_value *const *args, size_t nargs,
		 dtk_resultset *out, char *errstr, size_t errstr_size);

/* How many connections the pool has opened in total (tests of reuse). */
size_t dtk_db_pool_opened(const dtk_db_pool *p);

#endif
