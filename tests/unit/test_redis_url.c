/* util/redis.c without a server: URL parsing, the shown form, masking,
 * script SHA-1s; a closed local port for the connect error; and the
 * limiter's TTL and limit rules. */
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "limiter.h"
#include "store/state.h"
#include "util/redis.h"

static dtk_redis_url parse_ok(const char *url)
{
	dtk_redis_url u;
	char err[256] = "";
	if (dtk_redis_url_parse(url, &u, err, sizeof(err)) != 0)
		fail_msg("%s: %s", url, err);
	return u;
}

static void parse_fails_with(const char *url, const char *words)
{
	dtk_redis_url u;
	char err[256] = "";
	assert_int_equal(dtk_redis_url_parse(url, &u, err, sizeof(err)), -1);
	if (!strstr(err, words))
		fail_msg("%s: message '%s' lacks '%s'", url, err, words);
	assert_null(strstr(err, "s3cr3t"));
}

static void test_redis_url_defaults_port_6379_and_db_0(void **state)
{
	dtk_redis_url u = parse_ok("redis://cache.internal");
	assert_string_equal(u.host, "cache.internal");
	assert_int_equal(u.port, 6379);
	assert_int_equal(u.db, 0);
	assert_string_equal(u.password, "");
	assert_string_equal(u.shown, "redis://cache.internal:6379/0");
	u = parse_ok("REDIS://h:7000/");
	assert_int_equal(u.port, 7000);
	assert_int_equal(u.db, 0);
}

static void test_redis_url_reads_password_port_and_db(void **state)
{
	dtk_redis_url u = parse_ok("redis://:s3cr3t@10.0.0.5:6380/3");
	assert_string_equal(u.host, "10.0.0.5");
	assert_int_equal(u.port, 6380);
	assert_int_equal(u.db, 3);
	assert_string_equal(u.user, "");
	assert_string_equal(u.password, "s3cr3t");
	assert_string_equal(u.shown, "redis://***@10.0.0.5:6380/3");
}

static void test_redis_url_reads_acl_user_and_decodes_percent_escapes(void **state)
{
	dtk_redis_url u = parse_ok("redis://app%2Dworker:p%40ss%3Aw0rd@h:1/0");
	assert_string_equal(u.user, "app-worker");
	assert_string_equal(u.password, "p@ss:w0rd");
	assert_string_equal(u.shown, "redis://***@h:1/0");
}

static void test_redis_url_without_colon_in_userinfo_is_a_password(void **state)
{
	dtk_redis_url u = parse_ok("redis://s3cr3t@h");
	assert_string_equal(u.user, "");
	assert_string_equal(u.password, "s3cr3t");
}

static void test_redis_url_password_may_hold_an_unescaped_at(void **state)
{
	dtk_redis_url u = parse_ok("redis://:a@b@h:2/1");
	assert_string_equal(u.password, "a@b");
	assert_string_equal(u.host, "h");
}

static void test_redis_url_ipv6_host_in_brackets(void **state)
{
	dtk_redis_url u = parse_ok("redis://[::1]:6390/2");
	assert_string_equal(u.host, "::1");
	assert_int_equal(u.port, 6390);
	assert_string_equal(u.shown, "redis://[::1]:6390/2");
}

static void test_redis_url_rejects_bad_forms_without_echoing_the_password(void **state)
{
	parse_fails_with("", "empty");
	parse_fails_with("http://h", "redis://");
	parse_fails_with("rediss://:s3cr3t@h", "TLS");
	parse_fails_with("redis://:s3cr3t@h:0", "port");
	parse_fails_with("redis://:s3cr3t@h:65536", "port");
	parse_fails_with("redis://:s3cr3t@h:63x", "port");
	parse_fails_with("redis://:s3cr3t@h/abc", "database number");
	parse_fails_with("redis://:s3cr3t@h/1?timeout=3", "query");
	parse_fails_with("redis://:s3cr3t@", "no host");
	parse_fails_with("redis://:s3cr3t@[::1:6379", "[");
	parse_fails_with("redis://:s3cr%zzt@h", "%-escaped");
}

static void test_redis_mask_replaces_every_occurrence(void **state)
{
	char s[64] = "AUTH hunter2 failed: hunter2hunter2!";
	dtk_redis_mask(s, sizeof(s), "hunter2");
	assert_string_equal(s, "AUTH *** failed: ******!");
	char t[16] = "nothing here";
	dtk_redis_mask(t, sizeof(t), "");
	assert_string_equal(t, "nothing here");
	char u[8] = "ab";
	dtk_redis_mask(u, sizeof(u), "ab");
	assert_string_equal(u, "***");
}

static void test_redis_script_sha1_matches_redis(void **state)
{
	char sha[41];
	/* redis-cli SCRIPT LOAD "return 1" */
	assert_int_equal(dtk_redis_script_sha1("return 1", sha), 0);
	assert_string_equal(sha, "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
}

/* A local TCP port with nothing listening. */
static int closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void test_redis_connect_to_a_closed_port_names_redis_not_the_password(void **state)
{
	char url[128], err[512] = "";
	snprintf(url, sizeof(url), "redis://:s3cr3t@127.0.0.1:%d/0", closed_port());
	dtk_redis *r = dtk_redis_connect(url, 500, err, sizeof(err));
	assert_null(r);
	assert_non_null(strstr(err, "Redis redis://***@127.0.0.1:"));
	assert_non_null(strstr(err, "cannot connect"));
	assert_null(strstr(err, "s3cr3t"));

	err[0] = '\0';
	dtk_state *st = dtk_state_open_redis(url, err, sizeof(err));
	assert_null(st);
	assert_non_null(strstr(err, "alert state: Redis"));
	assert_null(strstr(err, "s3cr3t"));
}

static void test_redis_new_does_not_connect(void **state)
{
	char url[128], err[512] = "";
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", closed_port());
	dtk_redis *r = dtk_redis_new(url, 0, err, sizeof(err));
	assert_non_null(r);
	dtk_redis_reply rep;
	const char *argv[] = {"PING"};
	assert_int_equal(dtk_redis_command(r, 1, argv, NULL, &rep, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot connect"));
	dtk_redis_free(&r);
	assert_null(r);
}

static void test_limiter_ttl_is_timeout_plus_30s_at_most_120s(void **state)
{
	assert_int_equal(dtk_limiter_ttl_ms(10), 40000);
	assert_int_equal(dtk_limiter_ttl_ms(0), 30000);
	assert_int_equal(dtk_limiter_ttl_ms(-1), 30000);
	assert_int_equal(dtk_limiter_ttl_ms(90), 120000);
	assert_int_equal(dtk_limiter_ttl_ms(600), 120000);
	assert_int_equal(dtk_limiter_ttl_ms(1.5), 31500);
}

static void test_limiter_limit_prefers_max_connections_then_default_then_5(void **state)
{
	assert_int_equal(dtk_limiter_limit(3, 10), 3);
	assert_int_equal(dtk_limiter_limit(0, 10), 10);
	assert_int_equal(dtk_limiter_limit(0, 0), 5);
	assert_int_equal(dtk_limiter_limit(-2, -1), 5);
}

static void test_limiter_new_rejects_a_bad_url_without_the_password(void **state)
{
	char err[256] = "";
	dtk_limiter_options o = {.redis_url = "redis://:s3cr3t@h:99999"};
	assert_null(dtk_limiter_new(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "limiter: Redis URL"));
	assert_null(strstr(err, "s3cr3t"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_redis_url_defaults_port_6379_and_db_0),
	    cmocka_unit_test(test_redis_url_reads_password_port_and_db),
	    cmocka_unit_test(test_redis_url_reads_acl_user_and_decodes_percent_escapes),
	    cmocka_unit_test(test_redis_url_without_colon_in_userinfo_is_a_password),
	    cmocka_unit_test(test_redis_url_password_may_hold_an_unescaped_at),
	    cmocka_unit_test(test_redis_url_ipv6_host_in_brackets),
	    cmocka_unit_test(test_redis_url_rejects_bad_forms_without_echoing_the_password),
	    cmocka_unit_test(test_redis_mask_replaces_every_occurrence),
	    cmocka_unit_test(test_redis_script_sha1_matches_redis),
	    cmocka_unit_test(test_redis_connect_to_a_closed_port_names_redis_not_the_password),
	    cmocka_unit_test(test_redis_new_does_not_connect),
	    cmocka_unit_test(test_limiter_ttl_is_timeout_plus_30s_at_most_120s),
	    cmocka_unit_test(test_limiter_limit_prefers_max_connections_then_default_then_5),
	    cmocka_unit_test(test_limiter_new_rejects_a_bad_url_without_the_password),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
