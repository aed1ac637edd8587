/* The MySQL/MariaDB driver (libmariadb) for sources and storage.
 *
 * Connection forms: `connection_string` / `dsn` as a URL
 * (mysql://user:pass@host:port/db, also mariadb:// and SQLAlchemy's
 * mysql+pymysql://), with the query keys unix_socket, charset (utf8mb4
 * only) and ssl_ca / ssl_cert / ssl_key; else the params host, port,
 * database, user, password, unix_socket. User and password are URL-decoded.
 * TCP is used unless unix_socket is given (libmariadb would otherwise take
 * "localhost" to mean its default socket; DetectK's pymysql does not).
 *
 * Sessions: utf8mb4, time_zone '+00:00' (MYSQL_INIT_COMMAND, so it also
 * holds after a reconnect); the connect timeout is the target's timeout and
 * the read/write timeouts 5 s more, a backstop behind the server-side
 * statement limit (MariaDB's max_statement_time, else MySQL's
 * max_execution_time for SELECTs). Queries without arguments use the text
 * protocol; with arguments, a prepared statement with ? placeholders.
 * CLIENT_MULTI_STATEMENTS is off: one statement per query. A query that
 * finds the server gone outside a transaction reconnects and runs once
 * more. Messages are the server's, with the password and URL user-info
 * masked. */
#include <errmsg.h>
#include <errno.h>
#include <math.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/db.h"
#include "db/dsn.h"
#include "util/buf.h"

#define MY_DEFAULT_PORT 3306
#define MY_BACKSTOP_S 5

enum { TV_UNKNOWN, TV_MARIADB, TV_MYSQL, TV_NONE };

typedef struct my_conn {
	MYSQL *my;
	dtk_dsn dsn; /* host, port, user, password, database, params */
	char *shown;
	unsigned connect_s, rw_s;
	int timeout_var;  /* TV_*: how this server limits a statement */
	double timeout_s; /* the session's statement limit; -1 unknown */
} my_conn;

static const char *const url_params[] = {"unix_socket", "charset", "ssl_ca",
					 "ssl_cert",	"ssl_key", NULL};

static const char *param(const dtk_dsn *d, const char *key)
{
	for (size_t i = 0; i < d->nparams; i++)
		if (strcmp(d->keys[i], key) == 0)
			return d->vals[i];
	return NULL;
}

/* Moves the params form into d. */
static int from_params(const dtk_value *params, dtk_dsn *d, char *errstr, size_t errstr_size)
{
	static const char *const keys[] = {"host", "database", "user", "password", "unix_socket"};
	char **dest[] = {&d->host, &d->database, &d->user, &d->password, NULL};
	memset(d, 0, sizeof(*d));
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const dtk_value *v = dtk_value_map_get(params, keys[i]);
		if (!v || v->type == DTK_V_NULL)
			continue;
		if (v->type != DTK_V_STR) {
			snprintf(errstr, errstr_size, "%s: must be a string", keys[i]);
			return -1;
		}
		if (!v->u.str.len)
			continue;
		char *s = strdup(v->u.str.s);
		if (!s)
			goto nomem;
		if (dest[i]) {
			*dest[i] = s;
		} else {
			d->keys[d->nparams] = strdup(keys[i]);
			d->vals[d->nparams++] = s;
			if (!d->keys[d->nparams - 1])
				goto nomem;
		}
	}
	const dtk_value *port = dtk_value_map_get(params, "port");
	if (port && port->type != DTK_V_NULL) {
		long p = -1;
		char *end = NULL;
		if (port->type == DTK_V_INT)
			p = port->u.i >= 1 && port->u.i <= 65535 ? (long)port->u.i : -1;
		else if (port->type == DTK_V_STR && port->u.str.len && port->u.str.len < 6) {
			p = strtol(port->u.str.s, &end, 10);
			if (*end)
				p = -1;
		}
		if (p < 1 || p > 65535) {
			snprintf(errstr, errstr_size, "port: must be a number from 1 to 65535");
			return -1;
		}
		d->port = (int)p;
	}
	return 0;
nomem:
	snprintf(errstr, errstr_size, "host: out of memory");
	return -1;
}

static int my_target(const dtk_value *params, dtk_db_target *t, char *errstr, size_t errstr_size)
{
	const char *cs = dtk_value_cstr(dtk_value_map_get(params, "connection_string"));
	const char *dsn = dtk_value_cstr(dtk_value_map_get(params, "dsn"));
	const char *key = cs && *cs ? "connection_string" : "dsn";
	const char *src = cs && *cs ? cs : dsn && *dsn ? dsn : NULL;
	char err[256];
	dtk_dsn d;
	dtk_buf b;
	int rc = -1;
	dtk_buf_init(&b, 1 << 16);
	memset(&d, 0, sizeof(d));

	if (src) {
		if (dtk_dsn_parse(src, &d, err, sizeof(err)) != 0) {
			snprintf(errstr, errstr_size, "%s: %s", key, err);
			goto out;
		}
		if (strcmp(d.scheme, "mysql") != 0 && strcmp(d.scheme, "mariadb") != 0) {
			snprintf(errstr, errstr_size,
				 "%s: expected mysql://user:password@host:port/database", key);
			goto out;
		}
	} else if (from_params(params, &d, errstr, errstr_size) != 0) {
		goto out;
	}
	for (size_t i = 0; i < d.nparams; i++) {
		size_t k = 0;
		while (url_params[k] && strcmp(url_params[k], d.keys[i]) != 0)
			k++;
		if (!url_params[k]) {
			snprintf(errstr, errstr_size,
				 "%s: unsupported parameter '%.64s' (mysql takes unix_socket, "
				 "charset, ssl_ca, ssl_cert, ssl_key)",
				 key, d.keys[i]);
			goto out;
		}
	}
	const char *cset = param(&d, "charset");
	if (cset && strcmp(cset, "utf8mb4") != 0 && strcmp(cset, "utf8") != 0) {
		snprintf(errstr, errstr_size, "%s: charset must be utf8mb4 (got '%.32s')", key,
			 cset);
		goto out;
	}
	int port = d.port ? d.port : MY_DEFAULT_PORT;
	/* The canonical URL connect() parses again. */
	dtk_buf_adds(&b, "mysql://");
	dtk_dsn_encode(&b, d.user ? d.user : "");
	if (d.password) {
		dtk_buf_addc(&b, ':');
		dtk_dsn_encode(&b, d.password);
	}
	dtk_buf_addc(&b, '@');
	const char *host = d.host && *d.host ? d.host : "localhost";
	if (strchr(host, ':'))
		dtk_buf_printf(&b, "[%s]", host);
	else
		dtk_dsn_encode(&b, host);
	dtk_buf_printf(&b, ":%d/", port);
	dtk_dsn_encode(&b, d.database ? d.database : "");
	for (size_t i = 0; i < d.nparams; i++) {
		dtk_buf_printf(&b, "%c%s=", i ? '&' : '?', d.keys[i]);
		dtk_dsn_encode(&b, d.vals[i]);
	}
	if (b.failed || !(t->conn = dtk_buf_take(&b)) ||
	    dtk_dsn_keys(t, "mysql", d.user, param(&d, "unix_socket") ? NULL : host, port,
			 d.database) != 0) {
		snprintf(errstr, errstr_size, "%s: out of memory or too long", src ? key : "host");
		goto out;
	}
	rc = 0;
out:
	dtk_dsn_clear(&d);
	dtk_buf_free(&b);
	return rc;
}

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_rc;

static void lib_init(void)
{
	lib_rc = mysql_library_init(0, NULL, NULL);
}

/* errstr = "<what> <shown>: <message>", masked. */
static void my_error(const my_conn *c, const char *what, const char *msg, char *errstr,
		     size_t errstr_size)
{
	snprintf(errstr, errstr_size, "%s %s: %s", what, c->shown,
		 msg && *msg ? msg : "unknown error");
	dtk_dsn_mask(errstr, errstr_size, c->dsn.password);
}

static int my_open(my_conn *c, char *errstr, size_t errstr_size)
{
	const char *sock = param(&c->dsn, "unix_socket");
	const char *ca = param(&c->dsn, "ssl_ca"), *cert = param(&c->dsn, "ssl_cert"),
		   *key = param(&c->dsn, "ssl_key");
	unsigned proto = MYSQL_PROTOCOL_TCP;
	if (c->my)
		mysql_close(c->my);
	c->my = mysql_init(NULL);
	if (!c->my) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	mysql_options(c->my, MYSQL_OPT_CONNECT_TIMEOUT, &c->connect_s);
	mysql_options(c->my, MYSQL_OPT_READ_TIMEOUT, &c->rw_s);
	mysql_options(c->my, MYSQL_OPT_WRITE_TIMEOUT, &c->rw_s);
	mysql_options(c->my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	mysql_options(c->my, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00'");
	if (!sock)
		mysql_options(c->my, MYSQL_OPT_PROTOCOL, &proto);
	if (ca || cert || key)
		mysql_ssl_set(c->my, key, cert, ca, NULL, NULL);
	if (!mysql_real_connect(c->my, sock ? NULL : c->dsn.host, c->dsn.user, c->dsn.password,
				c->dsn.database, (unsigned)c->dsn.port, sock, 0)) {
		my_error(c, "cannot connect to", mysql_error(c->my), errstr, errstr_size);
		return -1;
	}
	c->timeout_s = -1;
	return 0;
}

static void my_close(void *h)
{
	my_conn *c = h;
	if (!c)
		return;
	if (c->my)
		mysql_close(c->my);
	dtk_dsn_clear(&c->dsn);
	free(c->shown);
	free(c);
}

static void *my_connect(const dtk_db_target *t, const char *base_dir, char *errstr,
			size_t errstr_size)
{
	char err[256];
	my_conn *c = calloc(1, sizeof(*c));
	pthread_once(&lib_once, lib_init);
	if (lib_rc != 0) {
		snprintf(errstr, errstr_size, "cannot initialise libmariadb");
		free(c);
		return NULL;
	}
	if (!c || !(c->shown = strdup(t->shown))) {
		snprintf(errstr, errstr_size, "out of memory");
		goto fail;
	}
	if (dtk_dsn_parse(t->conn, &c->dsn, err, sizeof(err)) != 0) {
		snprintf(errstr, errstr_size, "cannot connect to %s: %s", c->shown, err);
		goto fail;
	}
	double secs = t->timeout_s > 0 ? ceil(t->timeout_s) : 30;
	c->connect_s = secs > 86400 ? 86400 : (unsigned)secs;
	c->rw_s = c->connect_s + MY_BACKSTOP_S;
	if (my_open(c, errstr, errstr_size) != 0)
		goto fail;
	return c;
fail:
	my_close(c);
	return NULL;
}

/* Sets the server-side statement limit when it differs from the session's.
 * A server that knows neither variable keeps only the read timeout. */
static int set_timeout(my_conn *c, double timeout_s)
{
	char sql[96];
	if (!(timeout_s > 0) || timeout_s > 86400)
		timeout_s = 0;
	if (timeout_s == c->timeout_s || c->timeout_var == TV_NONE)
		return 0;
	if (c->timeout_var == TV_UNKNOWN || c->timeout_var == TV_MARIADB) {
		snprintf(sql, sizeof(sql), "SET SESSION max_statement_time = %.3f", timeout_s);
		if (mysql_query(c->my, sql) == 0) {
			c->timeout_var = TV_MARIADB;
			c->timeout_s = timeout_s;
			return 0;
		}
		if (c->timeout_var == TV_MARIADB || mysql_errno(c->my) >= CR_MIN_ERROR)
			return -1;
	}
	snprintf(sql, sizeof(sql), "SET SESSION max_execution_time = %ld",
		 (long)ceil(timeout_s * 1000));
	if (mysql_query(c->my, sql) == 0) {
		c->timeout_var = TV_MYSQL;
		c->timeout_s = timeout_s;
		return 0;
	}
	if (mysql_errno(c->my) >= CR_MIN_ERROR)
		return -1;
	c->timeout_var = TV_NONE;
	return 0;
}

static int is_int_type(enum enum_field_types t)
{
	return t == MYSQL_TYPE_TINY || t == MYSQL_TYPE_SHORT || t == MYSQL_TYPE_LONG ||
	       t == MYSQL_TYPE_INT24 || t == MYSQL_TYPE_LONGLONG || t == MYSQL_TYPE_YEAR;
}

static int is_float_type(enum enum_field_types t)
{
	return t == MYSQL_TYPE_FLOAT || t == MYSQL_TYPE_DOUBLE || t == MYSQL_TYPE_DECIMAL ||
	       t == MYSQL_TYPE_NEWDECIMAL;
}

/* A cell from the text the server (or libmariadb) printed. */
static dtk_value *text_cell(dtk_resultset *rs, enum enum_field_types type, const char *s,
			    size_t len, char *errstr, size_t errstr_size)
{
	char *end = NULL;
	if (is_int_type(type)) {
		errno = 0;
		long long i = strtoll(s, &end, 10);
		if (!errno && end != s && !*end)
			return dtk_value_int(i);
		return dtk_value_float(strtod(s, NULL)); /* unsigned beyond int64 */
	}
	if (is_float_type(type))
		return dtk_value_float(strtod(s, NULL));
	return dtk_resultset_text(rs, s, len, errstr, errstr_size);
}

static int names_init(dtk_resultset *out, MYSQL_FIELD *fields, unsigned ncols, char *errstr,
		      size_t errstr_size)
{
	const char **names = ncols ? calloc(ncols, sizeof(*names)) : NULL;
	if (ncols && !names) {
		snprintf(errstr, errstr_size, "out of memory reading the result");
		return -1;
	}
	for (unsigned i = 0; i < ncols; i++)
		names[i] = fields[i].name;
	int rc = dtk_resultset_init(out, ncols, names, errstr, errstr_size);
	free(names);
	return rc;
}

static int conn_error(my_conn *c, unsigned *errnum, char *errstr, size_t errstr_size)
{
	*errnum = mysql_errno(c->my);
	snprintf(errstr, errstr_size, "%s", mysql_error(c->my));
	return -1;
}

/* The text protocol: a statement without arguments. Returns 0, -1 with
 * *errnum and the client's message in errstr, or -2 with errstr. */
static int run_text(my_conn *c, const char *sql, dtk_resultset *out, unsigned *errnum, char *errstr,
		    size_t errstr_size)
{
	MYSQL_RES *res = NULL;
	int rc = -1;
	if (mysql_real_query(c->my, sql, strlen(sql)) != 0)
		return conn_error(c, errnum, errstr, errstr_size);
	res = mysql_store_result(c->my);
	if (!res) {
		if (mysql_field_count(c->my) != 0)
			return conn_error(c, errnum, errstr, errstr_size);
		return out ? dtk_resultset_init(out, 0, NULL, errstr, errstr_size) : 0;
	}
	if (!out) {
		mysql_free_result(res);
		return 0;
	}
	unsigned ncols = mysql_num_fields(res);
	MYSQL_FIELD *fields = mysql_fetch_fields(res);
	MYSQL_ROW row;
	if (names_init(out, fields, ncols, errstr, errstr_size) != 0)
		goto out;
	while ((row = mysql_fetch_row(res)) != NULL) {
		unsigned long *lens = mysql_fetch_lengths(res);
		dtk_value **cells = dtk_resultset_add_row(out, errstr, errstr_size);
		if (!cells)
			goto out;
		for (unsigned i = 0; i < ncols; i++) {
			if (!row[i])
				continue;
			cells[i] =
			    text_cell(out, fields[i].type, row[i], lens[i], errstr, errstr_size);
			if (!cells[i])
				goto out;
		}
	}
	rc = 0;
out:
	mysql_free_result(res);
	return rc ? -2 : 0;
}

/* A prepared statement with args bound to its ? placeholders; returns as
 * run_text. */
static int run_prepared(my_conn *c, const char *sql, const dtk_value *const *args, size_t nargs,
			dtk_resultset *out, unsigned *errnum, char *errstr, size_t errstr_size)
{
	MYSQL_STMT *st = mysql_stmt_init(c->my);
	MYSQL_BIND *pb = calloc(nargs, sizeof(*pb)), *rb = NULL;
	long long *ints = calloc(nargs, sizeof(*ints));
	double *dbls = calloc(nargs, sizeof(*dbls));
	MYSQL_RES *meta = NULL;
	unsigned ncols = 0;
	struct rcol {
		long long i;
		double f;
		char *buf;
		unsigned long len;
		my_bool null, err;
	} *cols = NULL;
	int rc = -1;
	my_bool on = 1;

	if (!st || !pb || !ints || !dbls) {
		snprintf(errstr, errstr_size, "out of memory");
		rc = -2;
		goto out;
	}
	if (mysql_stmt_prepare(st, sql, strlen(sql)) != 0)
		goto stmt_error;
	if (mysql_stmt_param_count(st) != nargs) {
		snprintf(errstr, errstr_size, "query: %lu placeholders but %zu arguments",
			 mysql_stmt_param_count(st), nargs);
		rc = -2;
		goto out;
	}
	for (size_t i = 0; i < nargs; i++) {
		const dtk_value *v = args[i];
		switch (v ? v->type : DTK_V_NULL) {
		case DTK_V_BOOL:
		case DTK_V_INT:
			ints[i] = v->type == DTK_V_BOOL ? v->u.b != 0 : v->u.i;
			pb[i].buffer_type = MYSQL_TYPE_LONGLONG;
			pb[i].buffer = &ints[i];
			break;
		case DTK_V_FLOAT:
			dbls[i] = v->u.f;
			pb[i].buffer_type = isfinite(v->u.f) ? MYSQL_TYPE_DOUBLE : MYSQL_TYPE_NULL;
			pb[i].buffer = &dbls[i];
			break;
		case DTK_V_STR:
			pb[i].buffer_type = MYSQL_TYPE_STRING;
			pb[i].buffer = v->u.str.s;
			pb[i].buffer_length = v->u.str.len;
			break;
		default:
			pb[i].buffer_type = MYSQL_TYPE_NULL;
			break;
		}
	}
	if ((nargs && mysql_stmt_bind_param(st, pb) != 0) ||
	    mysql_stmt_attr_set(st, STMT_ATTR_UPDATE_MAX_LENGTH, &on) != 0 ||
	    mysql_stmt_execute(st) != 0)
		goto stmt_error;
	meta = mysql_stmt_result_metadata(st);
	if (!meta) {
		if (mysql_stmt_errno(st))
			goto stmt_error;
		rc = out ? dtk_resultset_init(out, 0, NULL, errstr, errstr_size) : 0;
		if (rc)
			rc = -2;
		goto out;
	}
	if (mysql_stmt_store_result(st) != 0)
		goto stmt_error;
	ncols = mysql_num_fields(meta);
	MYSQL_FIELD *fields = mysql_fetch_fields(meta);
	rb = calloc(ncols ? ncols : 1, sizeof(*rb));
	cols = calloc(ncols ? ncols : 1, sizeof(*cols));
	if (!rb || !cols) {
		snprintf(errstr, errstr_size, "out of memory");
		rc = -2;
		goto out;
	}
	for (unsigned i = 0; i < ncols; i++) {
		rb[i].is_null = &cols[i].null;
		rb[i].length = &cols[i].len;
		rb[i].error = &cols[i].err;
		if (is_int_type(fields[i].type)) {
			rb[i].buffer_type = MYSQL_TYPE_LONGLONG;
			rb[i].buffer = &cols[i].i;
			rb[i].is_unsigned = (fields[i].flags & UNSIGNED_FLAG) != 0;
		} else if (fields[i].type == MYSQL_TYPE_FLOAT ||
			   fields[i].type == MYSQL_TYPE_DOUBLE) {
			rb[i].buffer_type = MYSQL_TYPE_DOUBLE;
			rb[i].buffer = &cols[i].f;
		} else {
			size_t cap = (fields[i].max_length > 64 ? fields[i].max_length : 64) + 1;
			rb[i].buffer_type = MYSQL_TYPE_STRING;
			rb[i].buffer = cols[i].buf = malloc(cap);
			rb[i].buffer_length = cap;
			if (!cols[i].buf) {
				snprintf(errstr, errstr_size, "out of memory");
				rc = -2;
				goto out;
			}
		}
	}
	if (mysql_stmt_bind_result(st, rb) != 0)
		goto stmt_error;
	if (out && names_init(out, fields, ncols, errstr, errstr_size) != 0) {
		rc = -2;
		goto out;
	}
	for (;;) {
		int f = mysql_stmt_fetch(st);
		if (f == MYSQL_NO_DATA)
			break;
		if (f == 1)
			goto stmt_error;
		if (f == MYSQL_DATA_TRUNCATED) {
			snprintf(errstr, errstr_size,
				 "query: a value was truncated reading the result");
			rc = -2;
			goto out;
		}
		if (!out)
			continue;
		dtk_value **cells = dtk_resultset_add_row(out, errstr, errstr_size);
		if (!cells) {
			rc = -2;
			goto out;
		}
		for (unsigned i = 0; i < ncols; i++) {
			if (cols[i].null)
				continue;
			if (rb[i].buffer_type == MYSQL_TYPE_LONGLONG)
				cells[i] =
				    rb[i].is_unsigned && cols[i].i < 0
					? dtk_value_float((double)(unsigned long long)cols[i].i)
					: dtk_value_int(cols[i].i);
			else if (rb[i].buffer_type == MYSQL_TYPE_DOUBLE)
				cells[i] = dtk_value_float(cols[i].f);
			else
				cells[i] = text_cell(out, fields[i].type, cols[i].buf, cols[i].len,
						     errstr, errstr_size);
			if (!cells[i]) {
				if (!*errstr)
					snprintf(errstr, errstr_size, "out of memory");
				rc = -2;
				goto out;
			}
		}
	}
	rc = 0;
	goto out;
stmt_error:
	*errnum = mysql_stmt_errno(st);
	snprintf(errstr, errstr_size, "%s", mysql_stmt_error(st));
	rc = -1;
out:
	for (unsigned i = 0; cols && i < ncols; i++)
		free(cols[i].buf);
	free(cols);
	free(rb);
	if (meta)
		mysql_free_result(meta);
	if (st)
		mysql_stmt_close(st);
	free(pb);
	free(ints);
	free(dbls);
	return rc;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int my_query(void *h, const char *sql, const dtk_value *const *args, size_t nargs,
		    double timeout_s, dtk_resultset *out, char *errstr, size_t errstr_size)
{
	my_conn *c = h;
	char msg[1024];
	int rc = -1;
	if (out)
		memset(out, 0, sizeof(*out));
	for (int attempt = 0;; attempt++) {
		unsigned status = 0;
		mariadb_get_infov(c->my, MARIADB_CONNECTION_SERVER_STATUS, &status);
		int idle = !(status & SERVER_STATUS_IN_TRANS);
		double start = now_s();
		unsigned err = 0;
		msg[0] = '\0';
		if (set_timeout(c, timeout_s) != 0) {
			conn_error(c, &err, msg, sizeof(msg));
		} else {
			int r = nargs
				    ? run_prepared(c, sql, args, nargs, out, &err, msg, sizeof(msg))
				    : run_text(c, sql, out, &err, msg, sizeof(msg));
			if (r == 0) {
				rc = 0;
				break;
			}
			if (r == -2) {
				snprintf(errstr, errstr_size, "%s", msg);
				dtk_dsn_mask(errstr, errstr_size, c->dsn.password);
				break;
			}
		}
		if (out)
			dtk_resultset_clear(out);
		/* Gone while idle, and not a read timeout of a slow statement: the
		 * server restarted or dropped an idle connection. */
		int gone = err == CR_SERVER_GONE_ERROR ||
			   (err == CR_SERVER_LOST && now_s() - start < c->rw_s - 1);
		if (attempt == 0 && idle && gone) {
			if (my_open(c, errstr, errstr_size) == 0)
				continue;
			break;
		}
		if (err == ER_STATEMENT_TIMEOUT || err == 3024 /* MySQL's */ ||
		    (err == CR_SERVER_LOST && timeout_s > 0 && now_s() - start >= timeout_s))
			snprintf(errstr, errstr_size, "query on %s timed out after %g s", c->shown,
				 timeout_s);
		else if (!sql[strspn(sql, " \t\r\n")])
			snprintf(errstr, errstr_size, "query: the rendered query is empty");
		else
			my_error(c, "query failed on", msg, errstr, errstr_size);
		break;
	}
	if (rc != 0 && out)
		dtk_resultset_clear(out);
	return rc;
}

const dtk_db_driver dtk_db_mysql = {
    .engine = "mysql",
    .target = my_target,
    .connect = my_connect,
    .query = my_query,
    .close = my_close,
};
