/* core/db postgres.c, mysql.c and dsn.c without a server: connection
 * strings, URL-decoding, pool/limit/shown keys, and secrets kept out of
 * every key and message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "db/db.h"
#include "db/dsn.h"
#include "util/value.h"

/* A params map from key/value string pairs, NULL-terminated. */
static dtk_value *params(const char *k, ...)
{
	dtk_value *p = dtk_value_map();
	va_list ap;
	va_start(ap, k);
	for (; k; k = va_arg(ap, const char *))
		dtk_value_map_set_str(p, k, va_arg(ap, const char *));
	va_end(ap);
	return p;
}

static void parse_ok(const char *type, dtk_value *p, dtk_db_target *t)
{
	char err[512] = "";
	if (dtk_db_target_parse(type, p, t, err, sizeof(err)) != 0)
		fail_msg("%s: %s", type, err);
	dtk_value_free(&p);
}

/* Parses and fails; returns the message in err. */
static void parse_fails(const char *type, dtk_value *p, char *err, size_t errsz)
{
	dtk_db_target t;
	err[0] = '\0';
	assert_int_equal(dtk_db_target_parse(type, p, &t, err, errsz), -1);
	assert_true(err[0] != '\0');
	dtk_value_free(&p);
}

static void assert_keys(const dtk_db_target *t, const char *pool, const char *limit,
			const char *shown)
{
	assert_string_equal(t->pool_key, pool);
	assert_string_equal(t->limit_key, limit);
	assert_string_equal(t->shown, shown);
}

static void test_postgres_url_is_decoded_and_keys_hold_no_password(void **state)
{
	dtk_db_target t;
	parse_ok("sql",
		 params("connection_string",
			"postgresql://bob:p%40ss%3Aw0rd@DB.Example.com:6543/sales?sslmode=disable",
			NULL),
		 &t);
	assert_string_equal(t.driver->engine, "postgres");
	assert_keys(&t, "postgres://bob@db.example.com:6543/sales",
		    "postgres://db.example.com:6543", "postgres://db.example.com:6543/sales");
	assert_non_null(strstr(t.conn, "password='p@ss:w0rd'"));
	assert_non_null(strstr(t.conn, "sslmode='disable'"));
	dtk_db_target_clear(&t);
}

static void test_postgres_spellings_give_one_limit_key_with_the_default_port(void **state)
{
	static const char *const urls[] = {
	    "postgresql://bob:x@db/sales",
	    "postgres://bob:y@db:5432/sales",
	    "postgresql+psycopg2://bob@DB/sales",
	    "POSTGRESQL://bob:z@db:5432/sales?connect_timeout=3",
	};
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		dtk_db_target t;
		parse_ok("sql", params("connection_string", urls[i], NULL), &t);
		assert_keys(&t, "postgres://bob@db:5432/sales", "postgres://db:5432",
			    "postgres://db:5432/sales");
		dtk_db_target_clear(&t);
	}
	/* another database on the same server: same limit key, own pool key */
	dtk_db_target t;
	parse_ok("sql", params("connection_string", "postgresql://bob@db/other", NULL), &t);
	assert_string_equal(t.limit_key, "postgres://db:5432");
	assert_string_equal(t.pool_key, "postgres://bob@db:5432/other");
	dtk_db_target_clear(&t);
}

static void test_postgres_typed_collector_takes_dsn_in_both_forms_and_params(void **state)
{
	dtk_db_target t;
	parse_ok("postgres",
		 params("dsn", "host=db port=5433 dbname=sales user=bob password='s3 cret'", NULL),
		 &t);
	assert_keys(&t, "postgres://bob@db:5433/sales", "postgres://db:5433",
		    "postgres://db:5433/sales");
	assert_non_null(strstr(t.conn, "password='s3 cret'"));
	dtk_db_target_clear(&t);

	parse_ok("postgres", params("dsn", "postgresql://bob:pw@db:5433/sales", NULL), &t);
	assert_string_equal(t.pool_key, "postgres://bob@db:5433/sales");
	dtk_db_target_clear(&t);

	dtk_value *p = params("host", "DB", "database", "sales", "user", "bob", "password",
			      "it's\\secret", NULL);
	dtk_value_map_set_int(p, "port", 6000);
	parse_ok("postgres", p, &t);
	assert_keys(&t, "postgres://bob@db:6000/sales", "postgres://db:6000",
		    "postgres://db:6000/sales");
	dtk_db_target_clear(&t);

	/* nothing given: libpq's defaults, keyed as localhost:5432 */
	parse_ok("postgres", params("database", "sales", NULL), &t);
	assert_string_equal(t.limit_key, "postgres://localhost:5432");
	dtk_db_target_clear(&t);

	/* a socket directory is the local server */
	parse_ok("postgres", params("dsn", "host=/var/run/postgresql dbname=x", NULL), &t);
	assert_string_equal(t.limit_key, "postgres://localhost:5432");
	dtk_db_target_clear(&t);

	parse_ok("sql", params("connection_string", "postgresql://u@[::1]:5433/x", NULL), &t);
	assert_string_equal(t.limit_key, "postgres://[::1]:5433");
	dtk_db_target_clear(&t);
}

static void test_postgres_bad_connection_strings_fail_without_the_password(void **state)
{
	char err[512];
	parse_fails("sql",
		    params("connection_string", "postgresql://bob:hunter2@db/x?bogus=1", NULL), err,
		    sizeof(err));
	assert_non_null(strstr(err, "connection_string: "));
	assert_non_null(strstr(err, "bogus"));
	assert_null(strstr(err, "hunter2"));

	parse_fails("sql", params("connection_string", "postgresql://bob:hunter2@db:99999/x", NULL),
		    err, sizeof(err));
	assert_non_null(strstr(err, "port"));
	assert_null(strstr(err, "hunter2"));

	parse_fails("sql", params("connection_string", "postgresql://bob:hunter2@[::1/x", NULL),
		    err, sizeof(err));
	assert_null(strstr(err, "hunter2"));

	parse_fails("postgres", params("dsn", "mysql://bob:hunter2@db/x", NULL), err, sizeof(err));
	assert_non_null(strstr(err, "dsn: expected postgresql://"));
	assert_null(strstr(err, "hunter2"));

	dtk_value *p = params("host", "db", NULL);
	dtk_value_map_set_int(p, "port", 70000);
	parse_fails("postgres", p, err, sizeof(err));
	assert_non_null(strstr(err, "port: must be a number from 1 to 65535"));
}

static void test_mysql_url_is_decoded_and_keys_hold_no_password(void **state)
{
	dtk_db_target t;
	char err[256];
	dtk_dsn d;
	parse_ok(
	    "sql",
	    params("connection_string", "mysql+pymysql://bob:p%40ss%2Fw+rd@DB:3307/sales", NULL),
	    &t);
	assert_string_equal(t.driver->engine, "mysql");
	assert_keys(&t, "mysql://bob@db:3307/sales", "mysql://db:3307", "mysql://db:3307/sales");
	/* the canonical form connect() reads back */
	assert_int_equal(dtk_dsn_parse(t.conn, &d, err, sizeof(err)), 0);
	assert_string_equal(d.user, "bob");
	assert_string_equal(d.password, "p@ss/w+rd");
	assert_string_equal(d.host, "DB");
	assert_int_equal(d.port, 3307);
	assert_string_equal(d.database, "sales");
	dtk_dsn_clear(&d);
	dtk_db_target_clear(&t);
}

static void test_mysql_spellings_give_one_limit_key_with_the_default_port(void **state)
{
	static const char *const urls[] = {
	    "mysql://bob:x@db/sales",
	    "mariadb://bob@db:3306/sales",
	    "mysql+mysqldb://bob:y@DB/sales?charset=utf8mb4",
	};
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		dtk_db_target t;
		parse_ok("sql", params("connection_string", urls[i], NULL), &t);
		assert_keys(&t, "mysql://bob@db:3306/sales", "mysql://db:3306",
			    "mysql://db:3306/sales");
		dtk_db_target_clear(&t);
	}
}

static void test_mysql_typed_collector_takes_dsn_and_params(void **state)
{
	dtk_db_target t;
	parse_ok("mysql", params("dsn", "mysql://bob:pw@db/sales", NULL), &t);
	assert_string_equal(t.pool_key, "mysql://bob@db:3306/sales");
	dtk_db_target_clear(&t);

	dtk_value *p = params("host", "db", "database", "sales", "user", "bob", "password",
			      "p@ss:w/rd?&", NULL);
	dtk_value_map_set_str(p, "port", "3310");
	parse_ok("mysql", p, &t);
	assert_keys(&t, "mysql://bob@db:3310/sales", "mysql://db:3310", "mysql://db:3310/sales");
	char err[256];
	dtk_dsn d;
	assert_int_equal(dtk_dsn_parse(t.conn, &d, err, sizeof(err)), 0);
	assert_string_equal(d.password, "p@ss:w/rd?&");
	dtk_dsn_clear(&d);
	dtk_db_target_clear(&t);

	parse_ok("mysql", params("unix_socket", "/run/mysqld/mysqld.sock", "database", "x", NULL),
		 &t);
	assert_string_equal(t.limit_key, "mysql://localhost:3306");
	dtk_db_target_clear(&t);
}

static void test_mysql_bad_connection_strings_fail_without_the_password(void **state)
{
	char err[512];
	parse_fails("sql",
		    params("connection_string", "mysql://bob:hunter2@db/x?autocommit=1", NULL), err,
		    sizeof(err));
	assert_non_null(strstr(err, "unsupported parameter 'autocommit'"));
	assert_null(strstr(err, "hunter2"));

	parse_fails("sql",
		    params("connection_string", "mysql://bob:hunter2@db/x?charset=latin1", NULL),
		    err, sizeof(err));
	assert_non_null(strstr(err, "utf8mb4"));

	parse_fails("sql", params("connection_string", "mysql://bob:hunter2@db:0/x", NULL), err,
		    sizeof(err));
	assert_non_null(strstr(err, "invalid port '0'"));
	assert_null(strstr(err, "hunter2"));

	parse_fails("sql", params("connection_string", "mysql://bob:hunter2%zz@db/x", NULL), err,
		    sizeof(err));
	assert_null(strstr(err, "hunter2"));

	parse_fails("mysql", params("dsn", "postgresql://bob:hunter2@db/x", NULL), err,
		    sizeof(err));
	assert_non_null(strstr(err, "dsn: expected mysql://"));
	assert_null(strstr(err, "hunter2"));
}

static void test_dsn_parse_splits_at_the_last_at_sign_and_decodes(void **state)
{
	char err[256];
	dtk_dsn d;
	assert_int_equal(
	    dtk_dsn_parse("MySQL+x://a%20b:p@ss@[::1]:33/d%2Fb?k=v+w&x=%26", &d, err, sizeof(err)),
	    0);
	assert_string_equal(d.scheme, "mysql");
	assert_string_equal(d.user, "a b");
	assert_string_equal(d.password, "p@ss");
	assert_string_equal(d.host, "::1");
	assert_int_equal(d.port, 33);
	assert_string_equal(d.database, "d/b");
	assert_int_equal(d.nparams, 2);
	assert_string_equal(d.vals[0], "v w");
	assert_string_equal(d.vals[1], "&");
	dtk_dsn_clear(&d);

	assert_int_equal(dtk_dsn_parse("mysql://host", &d, err, sizeof(err)), 0);
	assert_null(d.user);
	assert_null(d.password);
	assert_null(d.database);
	assert_int_equal(d.port, 0);
	dtk_dsn_clear(&d);

	assert_int_equal(dtk_dsn_parse("mysql:/host", &d, err, sizeof(err)), -1);
	assert_int_equal(dtk_dsn_parse("mysql://h:12x/d", &d, err, sizeof(err)), -1);
}

static void test_mask_hides_the_password_and_url_user_info(void **state)
{
	char msg[256];
	snprintf(msg, sizeof(msg),
		 "cannot use postgresql://bob:hunter2@db:5432/x: password hunter2 rejected");
	dtk_dsn_mask(msg, sizeof(msg), "hunter2");
	assert_string_equal(msg, "cannot use postgresql://***@db:5432/x: password *** rejected");

	snprintf(msg, sizeof(msg), "mysql://u@h/d and \"ab\"");
	dtk_dsn_mask(msg, sizeof(msg), "ab");
	assert_string_equal(msg, "mysql://***@h/d and \"***\"");

	/* a short buffer: truncated, never a partial secret */
	char small[12];
	snprintf(small, sizeof(small), "x hunter2 y");
	dtk_dsn_mask(small, sizeof(small), "hunter2");
	assert_string_equal(small, "x *** y");
}

static void test_unknown_engine_in_sql_urls_is_refused(void **state)
{
	char err[512];
	parse_fails("sql", params("connection_string", "oracle://bob:hunter2@db/x", NULL), err,
		    sizeof(err));
	assert_null(strstr(err, "hunter2"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_postgres_url_is_decoded_and_keys_hold_no_password),
	    cmocka_unit_test(test_postgres_spellings_give_one_limit_key_with_the_default_port),
	    cmocka_unit_test(test_postgres_typed_collector_takes_dsn_in_both_forms_and_params),
	    cmocka_unit_test(test_postgres_bad_connection_strings_fail_without_the_password),
	    cmocka_unit_test(test_mysql_url_is_decoded_and_keys_hold_no_password),
	    cmocka_unit_test(test_mysql_spellings_give_one_limit_key_with_the_default_port),
	    cmocka_unit_test(test_mysql_typed_collector_takes_dsn_and_params),
	    cmocka_unit_test(test_mysql_bad_connection_strings_fail_without_the_password),
	    cmocka_unit_test(test_dsn_parse_splits_at_the_last_at_sign_and_decodes),
	    cmocka_unit_test(test_mask_hides_the_password_and_url_user_info),
	    cmocka_unit_test(test_unknown_engine_in_sql_urls_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
