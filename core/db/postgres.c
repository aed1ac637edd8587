/* The PostgreSQL driver (libpq) for sources and storage.
 *
 * Connection forms: `connection_string` / `dsn` as a URL
 * (postgresql://user:pass@host:port/db?sslmode=..., also postgres:// and
 * SQLAlchemy's postgresql+psycopg2://) or, for `dsn`, libpq's key=value
 * text; else the params host, port, database, user, password, sslmode.
 * libpq parses every form (PQconninfoParse), so URL-decoding and the
 * accepted query keys are libpq's, and a bad key fails at validate time.
 *
 * Sessions run in UTC with ISO dates (SET after connecting, which also
 * works through PgBouncer); statement_timeout follows the query's timeout.
 * Statements go through PQexecParams (the extended protocol: one statement
 * per query, arguments as text parameters $1, $2, ...). A query on a
 * connection that turns out dead, outside a transaction, reconnects and
 * runs once more; any other failure is returned and the caller's pool
 * drops the handle. Messages carry the server's primary text, with the
 * password and URL user-info masked. */
#include <errno.h>
#include <libpq-fe.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "db/db.h"
#include "db/dsn.h"
#include "util/buf.h"

/* pg_type OIDs of the types read as numbers. */
#define OID_BOOL 16
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_OID 26
#define OID_FLOAT4 700
#define OID_FLOAT8 701
#define OID_NUMERIC 1700

#define PG_DEFAULT_PORT 5432
#define PG_MAX_KEYWORDS 64

typedef struct pg_conn {
	PGconn *pg;
	char *shown;
	char *password;	 /* masked out of every message */
	long timeout_ms; /* the session's statement_timeout; -1 unknown */
} pg_conn;

/* Appends key='value' (libpq's quoting) to b. */
static void conninfo_add(dtk_buf *b, const char *key, const char *val)
{
	if (b->len)
		dtk_buf_addc(b, ' ');
	dtk_buf_printf(b, "%s='", key);
	for (const char *p = val; *p; p++) {
		if (*p == '\'' || *p == '\\')
			dtk_buf_addc(b, '\\');
		dtk_buf_addc(b, *p);
	}
	dtk_buf_addc(b, '\'');
}

/* The libpq text of a connection_string / dsn: SQLAlchemy's
 * "postgresql+driver://" becomes "postgresql://". */
static int source_text(const char *key, const char *src, dtk_buf *b, char *errstr,
		       size_t errstr_size)
{
	const char *sep = strstr(src, "://");
	if (!sep) {
		if (strcmp(key, "dsn") == 0)
			return dtk_buf_adds(b, src);
		snprintf(errstr, errstr_size,
			 "%s: expected postgresql://user:password@host:port/database", key);
		return -1;
	}
	size_t n = strcspn(src, "+:");
	if (!((n == 10 && strncasecmp(src, "postgresql", n) == 0) ||
	      (n == 8 && strncasecmp(src, "postgres", n) == 0))) {
		snprintf(errstr, errstr_size,
			 "%s: expected postgresql://user:password@host:port/database", key);
		return -1;
	}
	dtk_buf_adds(b, "postgresql");
	return dtk_buf_adds(b, sep);
}

/* The conninfo of the params form. */
static int params_text(const dtk_value *params, dtk_buf *b, char *errstr, size_t errstr_size)
{
	static const struct {
		const char *param, *keyword;
	} map[] = {{"host", "host"},
		   {"database", "dbname"},
		   {"user", "user"},
		   {"password", "password"},
		   {"sslmode", "sslmode"}};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		const dtk_value *v = dtk_value_map_get(params, map[i].param);
		if (!v || v->type == DTK_V_NULL)
			continue;
		if (v->type != DTK_V_STR) {
			snprintf(errstr, errstr_size, "%s: must be a string", map[i].param);
			return -1;
		}
		if (v->u.str.len)
			conninfo_add(b, map[i].keyword, v->u.str.s);
	}
	const dtk_value *port = dtk_value_map_get(params, "port");
	if (port && port->type != DTK_V_NULL) {
		char text[32];
		if (port->type == DTK_V_INT && port->u.i >= 1 && port->u.i <= 65535)
			snprintf(text, sizeof(text), "%lld", (long long)port->u.i);
		else if (port->type == DTK_V_STR && port->u.str.len > 0 && port->u.str.len < 6 &&
			 strspn(port->u.str.s, "0123456789") == port->u.str.len &&
			 strtol(port->u.str.s, NULL, 10) >= 1 &&
			 strtol(port->u.str.s, NULL, 10) <= 65535)
			snprintf(text, sizeof(text), "%s", port->u.str.s);
		else {
			snprintf(errstr, errstr_size, "port: must be a number from 1 to 65535");
			return -1;
		}
		conninfo_add(b, "port", text);
	}
	return b->failed ? -1 : 0;
}

static const char *opt_val(const PQconninfoOption *opts, const char *key)
{
	for (const PQconninfoOption *o = opts; o && o->keyword; o++)
		if (strcmp(o->keyword, key) == 0)
			return o->val && *o->val ? o->val : NULL;
	return NULL;
}

/* Turns newlines and tabs of a libpq message into single spaces and drops
 * the trailing ones. */
static void one_line(char *s)
{
	char *w = s;
	for (const char *r = s; *r; r++) {
		char c = (*r == '\n' || *r == '\t' || *r == '\r') ? ' ' : *r;
		if (c == ' ' && (w == s || w[-1] == ' '))
			continue;
		*w++ = c;
	}
	while (w > s && w[-1] == ' ')
		w--;
	*w = '\0';
}

static int pg_target(const dtk_value *params, dtk_db_target *t, char *errstr, size_t errstr_size)
{
	const char *cs = dtk_value_cstr(dtk_value_map_get(params, "connection_string"));
	const char *dsn = dtk_value_cstr(dtk_value_map_get(params, "dsn"));
	const char *key = cs && *cs ? "connection_string" : "dsn";
	const char *src = cs && *cs ? cs : dsn && *dsn ? dsn : NULL;
	PQconninfoOption *opts = NULL;
	char *perr = NULL;
	int rc = -1;
	dtk_buf b;
	dtk_buf_init(&b, 1 << 16);

	if (src ? source_text(key, src, &b, errstr, errstr_size) != 0
		: params_text(params, &b, errstr, errstr_size) != 0)
		goto out;
	if (b.failed) {
		snprintf(errstr, errstr_size, "%s: too long", src ? key : "host");
		goto out;
	}
	opts = PQconninfoParse(dtk_buf_str(&b), &perr);
	if (!opts) {
		snprintf(errstr, errstr_size, "%s: %s", src ? key : "host",
			 perr ? perr : "out of memory");
		one_line(errstr);
		dtk_dsn_mask(errstr, errstr_size, NULL);
		goto out;
	}
	const char *port = opt_val(opts, "port");
	long portn = PG_DEFAULT_PORT;
	if (port) {
		char *end = NULL;
		errno = 0;
		portn = strtol(port, &end, 10);
		if (strchr(port, ',') == NULL &&
		    (errno || *end || end == port || portn < 1 || portn > 65535)) {
			snprintf(errstr, errstr_size, "%s: invalid port '%.16s' (expected 1-65535)",
				 src ? key : "port", port);
			goto out;
		}
	}
	dtk_buf_reset(&b);
	for (const PQconninfoOption *o = opts; o->keyword; o++)
		if (o->val)
			conninfo_add(&b, o->keyword, o->val);
	const char *host = opt_val(opts, "host");
	const char *user = opt_val(opts, "user");
	const char *db = opt_val(opts, "dbname");
	if (b.failed || !(t->conn = dtk_buf_take(&b)) ||
	    dtk_dsn_keys(t, "postgres", user, host ? host : opt_val(opts, "hostaddr"), (int)portn,
			 db ? db : user) != 0) {
		snprintf(errstr, errstr_size, "%s: out of memory", src ? key : "host");
		goto out;
	}
	rc = 0;
out:
	if (perr)
		PQfreemem(perr);
	PQconninfoFree(opts);
	dtk_buf_free(&b);
	return rc;
}

/* errstr = "<what> <shown>: <the server's message>", masked. */
static void pg_error(const pg_conn *c, const PGresult *res, const char *what, char *errstr,
		     size_t errstr_size)
{
	const char *prim = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	if (prim) {
		const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY);
		const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
		snprintf(errstr, errstr_size, "%s %s: %s: %s%s%s%s", what, c->shown,
			 sev ? sev : "ERROR", prim, hint ? " (HINT: " : "", hint ? hint : "",
			 hint ? ")" : "");
	} else {
		snprintf(errstr, errstr_size, "%s %s: %s", what, c->shown,
			 PQerrorMessage(c->pg)[0] ? PQerrorMessage(c->pg) : "connection lost");
	}
	one_line(errstr);
	dtk_dsn_mask(errstr, errstr_size, c->password);
}

/* Server notices (CREATE TABLE IF NOT EXISTS's "already exists,
 * skipping") would go to stderr: the library prints nothing. */
static void no_notices(void *arg, const char *message)
{
}

static int session_setup(pg_conn *c, char *errstr, size_t errstr_size)
{
	PQsetNoticeProcessor(c->pg, no_notices, NULL);
	PGresult *res = PQexec(c->pg, "SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'");
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok)
		pg_error(c, res, "cannot set up the session on", errstr, errstr_size);
	PQclear(res);
	c->timeout_ms = -1;
	return ok ? 0 : -1;
}

static void pg_close(void *h)
{
	pg_conn *c = h;
	if (!c)
		return;
	PQfinish(c->pg);
	free(c->shown);
	free(c->password);
	free(c);
}

static void *pg_connect(const dtk_db_target *t, const char *base_dir, char *errstr,
			size_t errstr_size)
{
	const char *kw[PG_MAX_KEYWORDS + 4], *vals[PG_MAX_KEYWORDS + 4];
	char ct[32];
	size_t n = 0;
	int has_ct = 0, has_app = 0, has_enc = 0;
	PQconninfoOption *opts = PQconninfoParse(t->conn, NULL);
	pg_conn *c = calloc(1, sizeof(*c));
	if (!c || !opts || !(c->shown = strdup(t->shown))) {
		snprintf(errstr, errstr_size, "out of memory");
		goto fail;
	}
	for (const PQconninfoOption *o = opts; o->keyword && n < PG_MAX_KEYWORDS; o++) {
		if (!o->val)
			continue;
		has_ct |= strcmp(o->keyword, "connect_timeout") == 0;
		has_app |= strcmp(o->keyword, "application_name") == 0;
		has_enc |= strcmp(o->keyword, "client_encoding") == 0;
		if (strcmp(o->keyword, "password") == 0 && !(c->password = strdup(o->val))) {
			snprintf(errstr, errstr_size, "out of memory");
			goto fail;
		}
		kw[n] = o->keyword;
		vals[n++] = o->val;
	}
	/* libpq treats a connect_timeout of 1 as 2 */
	double secs = t->timeout_s > 0 ? ceil(t->timeout_s) : 30;
	snprintf(ct, sizeof(ct), "%d", secs < 2 ? 2 : secs > 86400 ? 86400 : (int)secs);
	if (!has_ct) {
		kw[n] = "connect_timeout";
		vals[n++] = ct;
	}
	if (!has_app) {
		kw[n] = "application_name";
		vals[n++] = "dtk";
	}
	if (!has_enc) {
		kw[n] = "client_encoding";
		vals[n++] = "UTF8";
	}
	kw[n] = NULL;
	vals[n] = NULL;
	c->pg = PQconnectdbParams(kw, vals, 0);
	if (!c->pg) {
		snprintf(errstr, errstr_size, "out of memory");
		goto fail;
	}
	if (PQstatus(c->pg) != CONNECTION_OK) {
		pg_error(c, NULL, "cannot connect to", errstr, errstr_size);
		goto fail;
	}
	if (session_setup(c, errstr, errstr_size) != 0)
		goto fail;
	PQconninfoFree(opts);
	return c;
fail:
	PQconninfoFree(opts);
	pg_close(c);
	return NULL;
}

/* The text form of an argument in buf (or NULL for SQL NULL). */
static const char *arg_text(const dtk_value *v, char *buf, size_t bufsz)
{
	switch (v ? v->type : DTK_V_NULL) {
	case DTK_V_BOOL:
		return v->u.b ? "true" : "false";
	case DTK_V_INT:
		snprintf(buf, bufsz, "%lld", (long long)v->u.i);
		return buf;
	case DTK_V_FLOAT:
		if (!isfinite(v->u.f))
			return NULL;
		snprintf(buf, bufsz, "%.17g", v->u.f);
		return buf;
	case DTK_V_STR:
		return v->u.str.s;
	default:
		return NULL;
	}
}

static int set_timeout(pg_conn *c, double timeout_s)
{
	long ms = timeout_s > 0 && timeout_s < 86400 ? (long)ceil(timeout_s * 1000) : 0;
	char sql[64];
	if (ms == c->timeout_ms)
		return 0;
	snprintf(sql, sizeof(sql), "SET statement_timeout = %ld", ms);
	PGresult *res = PQexec(c->pg, sql);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	PQclear(res);
	if (!ok)
		return -1;
	c->timeout_ms = ms;
	return 0;
}

static dtk_value *cell(dtk_resultset *rs, Oid type, const char *s, size_t len, char *errstr,
		       size_t errstr_size)
{
	char *end = NULL;
	switch (type) {
	case OID_INT2:
	case OID_INT4:
	case OID_INT8:
	case OID_OID: {
		errno = 0;
		long long i = strtoll(s, &end, 10);
		if (!errno && end != s && !*end)
			return dtk_value_int(i);
		return dtk_value_float(strtod(s, NULL));
	}
	case OID_FLOAT4:
	case OID_FLOAT8:
	case OID_NUMERIC:
		return dtk_value_float(strtod(s, NULL));
	case OID_BOOL:
		return dtk_value_bool(s[0] == 't');
	default:
		return dtk_resultset_text(rs, s, len, errstr, errstr_size);
	}
}

static int read_result(PGresult *res, dtk_resultset *out, char *errstr, size_t errstr_size)
{
	int ncols = PQnfields(res), nrows = PQntuples(res), rc = -1;
	const char **names = ncols ? calloc((size_t)ncols, sizeof(*names)) : NULL;
	if (ncols && !names) {
		snprintf(errstr, errstr_size, "out of memory reading the result");
		return -1;
	}
	for (int i = 0; i < ncols; i++)
		names[i] = PQfname(res, i);
	if (dtk_resultset_init(out, (size_t)ncols, names, errstr, errstr_size) != 0)
		goto out;
	for (int r = 0; r < nrows; r++) {
		dtk_value **cells = dtk_resultset_add_row(out, errstr, errstr_size);
		if (!cells)
			goto out;
		for (int i = 0; i < ncols; i++) {
			if (PQgetisnull(res, r, i))
				continue;
			cells[i] = cell(out, PQftype(res, i), PQgetvalue(res, r, i),
					(size_t)PQgetlength(res, r, i), errstr, errstr_size);
			if (!cells[i]) {
				if (!*errstr)
					snprintf(errstr, errstr_size,
						 "out of memory reading the result");
				goto out;
			}
		}
	}
	rc = 0;
out:
	free(names);
	return rc;
}

static int pg_query(void *h, const char *sql, const dtk_value *const *args, size_t nargs,
		    double timeout_s, dtk_resultset *out, char *errstr, size_t errstr_size)
{
	pg_conn *c = h;
	PGresult *res = NULL;
	const char **vals = NULL;
	char(*bufs)[40] = NULL;
	int rc = -1;

	if (out)
		memset(out, 0, sizeof(*out));
	errstr[0] = '\0';
	if (nargs > 65535) {
		snprintf(errstr, errstr_size, "query: too many parameters");
		return -1;
	}
	if (nargs) {
		vals = calloc(nargs, sizeof(*vals));
		bufs = calloc(nargs, sizeof(*bufs));
		if (!vals || !bufs) {
			snprintf(errstr, errstr_size, "out of memory");
			goto out;
		}
		for (size_t i = 0; i < nargs; i++)
			vals[i] = arg_text(args[i], bufs[i], sizeof(bufs[i]));
	}
	for (int attempt = 0;; attempt++) {
		int idle = PQtransactionStatus(c->pg) == PQTRANS_IDLE;
		ExecStatusType st = PGRES_FATAL_ERROR;
		if (set_timeout(c, timeout_s) == 0) {
			res = PQexecParams(c->pg, sql, (int)nargs, NULL, vals, NULL, NULL, 0);
			st = PQresultStatus(res);
			if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
				break;
		}
		if (attempt == 0 && idle && PQstatus(c->pg) == CONNECTION_BAD) {
			PQclear(res);
			res = NULL;
			PQreset(c->pg);
			if (PQstatus(c->pg) == CONNECTION_OK &&
			    session_setup(c, errstr, errstr_size) == 0)
				continue;
			if (!*errstr)
				pg_error(c, NULL, "lost the connection to", errstr, errstr_size);
			goto out;
		}
		if (st == PGRES_EMPTY_QUERY) {
			snprintf(errstr, errstr_size, "query: the rendered query is empty");
			goto out;
		}
		const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
		if (state && strcmp(state, "57014") == 0) {
			snprintf(errstr, errstr_size, "query on %s timed out after %g s", c->shown,
				 timeout_s);
			goto out;
		}
		pg_error(c, res, "query failed on", errstr, errstr_size);
		goto out;
	}
	if (out && read_result(res, out, errstr, errstr_size) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0 && out)
		dtk_resultset_clear(out);
	PQclear(res);
	free(vals);
	free(bufs);
	return rc;
}

const dtk_db_driver dtk_db_postgres = {
    .engine = "postgres",
    .target = pg_target,
    .connect = pg_connect,
    .query = pg_query,
    .close = pg_close,
};
