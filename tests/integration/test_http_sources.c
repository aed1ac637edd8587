/* The http and prometheus collectors against the scriptable receiver of
 * scripts/receiver.py (DTK_RECEIVER_URL). Without it every test skips with
 * the reason (exit 77), or fails when DTK_REQUIRE_SERVICES=1.
 *
 * Each run scripts paths under its own prefix (/dtk-it-<pid>-<time>/), so
 * parallel tests share one receiver. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "collect/collector.h"
#include "util/http.h"
#include "util/json.h"
#include "util/value.h"

#define PS INT64_C(1718451000) /* 2024-06-15T11:30:00Z */
#define PF (PS + 600)

static const char *receiver;
static char prefix[96];

static dtk_value *J(const char *json)
{
	char err[256];
	dtk_value *v = dtk_json_parse(json, strlen(json), err, sizeof(err));
	if (!v)
		fail_msg("bad test JSON: %s: %s", err, json);
	return v;
}

/* POST /_dtk/script {path: prefix+path, responses: <responses_json>} */
static void script(const char *path, const char *responses_json)
{
	char url[512], err[1024];
	size_t n = strlen(responses_json) + 1024;
	char *body = malloc(n);
	snprintf(url, sizeof(url), "%s/_dtk/script", receiver);
	snprintf(body, n, "{\"path\": \"%s%s\", \"responses\": %s}", prefix, path, responses_json);
	const char *headers[] = {"Content-Type: application/json"};
	dtk_http_request req = {.method = "POST",
				.url = url,
				.headers = headers,
				.nheaders = 1,
				.body = body,
				.body_len = strlen(body),
				.timeout_s = 10};
	dtk_http_response resp;
	if (dtk_http_do(NULL, &req, &resp, err, sizeof(err)) != 0)
		fail_msg("script %s: %s", path, err);
	dtk_http_response_free(&resp);
	free(body);
}

/* The requests the receiver recorded under prefix+path: a list, owned. */
static dtk_value *requests(const char *path)
{
	char url[512], err[1024];
	snprintf(url, sizeof(url), "%s/_dtk/requests?path=%s%s", receiver, prefix, path);
	dtk_http_request req = {.url = url, .timeout_s = 10};
	dtk_http_response resp;
	if (dtk_http_do(NULL, &req, &resp, err, sizeof(err)) != 0)
		fail_msg("requests %s: %s", path, err);
	dtk_value *doc = J(resp.body);
	dtk_http_response_free(&resp);
	dtk_value *list = dtk_value_copy(dtk_value_map_get(doc, "requests"));
	dtk_value_free(&doc);
	assert_non_null(list);
	return list;
}

#define NEED_RECEIVER()                                                                            \
	do {                                                                                       \
		if (!receiver)                                                                     \
			skip();                                                                    \
	} while (0)

/* Compiles type with params_json, where every %s is replaced by the
 * receiver URL plus prefix. */
static void *compile(const char *type, const char *params_fmt, char *err, size_t errsz)
{
	char base[256], json[4096];
	void *compiled = NULL;
	snprintf(base, sizeof(base), "%s%s", receiver, prefix);
	snprintf(json, sizeof(json), params_fmt, base);
	dtk_value *p = J(json);
	if (dtk_collector_find(type)->compile(p, NULL, &compiled, err, errsz) != 0)
		fail_msg("compile %s: %s", type, err);
	dtk_value_free(&p);
	return compiled;
}

/* Collects the period [PS, PF); 0 with rows, or -1 with err. */
static int collect(const char *type, void *c, dtk_rows *rows, char *err, size_t errsz)
{
	dtk_collect_request req = {.metric_name = "web",
				   .execution_time = PF,
				   .period_start = PS,
				   .period_finish = PF,
				   .interval = 600,
				   .interval_text = "10 minutes"};
	dtk_rows_init(rows);
	return dtk_collector_find(type)->collect(c, &req, rows, err, errsz);
}

static double collect_value(const char *params_fmt)
{
	char err[1024];
	dtk_rows rows;
	void *c = compile("http", params_fmt, err, sizeof(err));
	if (collect("http", c, &rows, err, sizeof(err)) != 0)
		fail_msg("collect: %s", err);
	assert_int_equal(rows.n, 1);
	assert_true(rows.rows[0].ts == PF);
	assert_false(rows.rows[0].is_missing);
	double v = rows.rows[0].value;
	dtk_rows_clear(&rows);
	dtk_collector_find("http")->destroy(c);
	return v;
}

static void collect_error(const char *params_fmt, const char *want1, const char *want2)
{
	char err[2048];
	dtk_rows rows;
	void *c = compile("http", params_fmt, err, sizeof(err));
	assert_int_equal(collect("http", c, &rows, err, sizeof(err)), -1);
	if (!strstr(err, want1) || (want2 && !strstr(err, want2)))
		fail_msg("want \"%s\" and \"%s\" in \"%s\"", want1, want2 ? want2 : "", err);
	if (strstr(err, "s3cr3t") || strstr(err, "hdr-secret"))
		fail_msg("a secret leaked: %s", err);
	dtk_rows_clear(&rows);
	dtk_collector_find("http")->destroy(c);
}

static void test_http_json_with_period_variables_in_url_and_params(void **state)
{
	NEED_RECEIVER();
	script("/json", "[{\"json\": {\"data\": {\"result\": [{\"value\": [1, \"42.5\"]}]}}}]");
	double v =
	    collect_value("{\"url\": \"%s/json?day={{ period_finish }}\", \"params\": "
			  "{\"from\": \"{{ period_start }}\", \"to\": \"{{ period_finish }}\", "
			  "\"m\": \"{{ metric_name }}\"}, \"headers\": {\"X-Api-Key\": \"k1\"}, "
			  "\"value_path\": \"data.result[0].value[1]\"}");
	assert_true(v == 42.5);
	dtk_value *reqs = requests("/json");
	assert_int_equal(reqs->u.list.n, 1);
	const dtk_value *r = reqs->u.list.items[0];
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(r, "method")), "GET");
	const char *q = dtk_value_cstr(dtk_value_map_get(r, "query"));
	if (!strstr(q, "day=2024-06-15T11:40:00") || !strstr(q, "from=2024-06-15T11%3A30%3A00") ||
	    !strstr(q, "to=2024-06-15T11%3A40%3A00") || !strstr(q, "m=web"))
		fail_msg("query string: %s", q);
	dtk_value_free(&reqs);
}

static void test_http_post_json_body_is_rendered(void **state)
{
	NEED_RECEIVER();
	script("/post", "[{\"json\": {\"count\": 7}}]");
	double v = collect_value("{\"url\": \"%s/post\", \"json\": {\"query\": {\"start\": \"{{ "
				 "period_start }}\", \"tags\": [\"a\", \"{{ metric_name }}\"]}, "
				 "\"n\": 3}, \"value_path\": \"count\"}");
	assert_true(v == 7);
	dtk_value *reqs = requests("/post");
	const dtk_value *r = reqs->u.list.items[0];
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(r, "method")), "POST");
	dtk_value *want = J("{\"query\": {\"start\": \"2024-06-15T11:30:00\", \"tags\": [\"a\", "
			    "\"web\"]}, \"n\": 3}");
	assert_true(dtk_value_equal(dtk_value_map_get(r, "json"), want));
	dtk_value_free(&want);
	dtk_value_free(&reqs);
}

static void test_http_text_and_csv_responses(void **state)
{
	NEED_RECEIVER();
	script("/text", "[{\"body\": \"  12.25\\n\", \"content_type\": \"text/plain\"}]");
	assert_true(collect_value("{\"url\": \"%s/text\", \"response_format\": \"text\"}") ==
		    12.25);
	script("/csv", "[{\"body\": \"timestamp,count\\n2024-11-01,42\\n2024-11-02,50\\n\", "
		       "\"content_type\": \"text/csv\"}]");
	assert_true(collect_value("{\"url\": \"%s/csv\", \"response_format\": \"csv\", "
				  "\"value_path\": \"count[1]\"}") == 50);
}

static void test_http_500_then_200_is_retried_and_succeeds(void **state)
{
	NEED_RECEIVER();
	script("/flaky", "[{\"status\": 500, \"body\": \"busy\"}, {\"status\": 200, \"json\": "
			 "{\"v\": 3}}]");
	assert_true(collect_value("{\"url\": \"%s/flaky\", \"value_path\": \"v\", "
				  "\"retry_count\": 3, \"retry_delay\": 0.05}") == 3);
	dtk_value *reqs = requests("/flaky");
	assert_int_equal(reqs->u.list.n, 2);
	dtk_value_free(&reqs);
}

static void test_http_500_forever_fails_after_retry_count_attempts(void **state)
{
	NEED_RECEIVER();
	script("/down", "[{\"status\": 500, \"body\": \"db is down\"}]");
	collect_error("{\"url\": \"%s/down?token=s3cr3t-tok\", \"value_path\": \"v\", "
		      "\"retry_count\": 3, \"retry_delay\": 0.05, \"headers\": {\"Authorization\": "
		      "\"Bearer hdr-secret\"}}",
		      "500", "3 attempts");
	dtk_value *reqs = requests("/down");
	assert_int_equal(reqs->u.list.n, 3);
	dtk_value_free(&reqs);
}

static void test_http_missing_path_and_non_numeric_value_are_errors(void **state)
{
	NEED_RECEIVER();
	script("/shape", "[{\"json\": {\"data\": {\"status\": \"green\"}}}]");
	collect_error("{\"url\": \"%s/shape\", \"value_path\": \"data.value\"}", "'data.value'",
		      "no key 'value'");
	collect_error("{\"url\": \"%s/shape\", \"value_path\": \"data.status\"}", "'data.status'",
		      "\"green\"");
}

static void test_http_null_value_is_a_missing_point(void **state)
{
	NEED_RECEIVER();
	char err[1024];
	dtk_rows rows;
	script("/null", "[{\"json\": {\"v\": null}}]");
	void *c =
	    compile("http", "{\"url\": \"%s/null\", \"value_path\": \"v\"}", err, sizeof(err));
	if (collect("http", c, &rows, err, sizeof(err)) != 0)
		fail_msg("collect: %s", err);
	assert_int_equal(rows.n, 1);
	assert_true(rows.rows[0].is_missing && rows.rows[0].ts == PF);
	dtk_rows_clear(&rows);
	dtk_collector_find("http")->destroy(c);
}

static void test_prometheus_query_range_over_the_period(void **state)
{
	NEED_RECEIVER();
	char err[1024];
	dtk_rows rows;
	script("/prom/api/v1/query_range",
	       "[{\"json\": {\"status\": \"success\", \"data\": {\"resultType\": \"matrix\", "
	       "\"result\": [{\"metric\": {\"job\": \"api\", \"instance\": \"a\"}, \"values\": "
	       "[[1718451000, \"5\"], [1718451600, \"6.5\"]]}, {\"metric\": {\"job\": \"api\", "
	       "\"instance\": \"b\"}, \"values\": [[1718451600, \"9\"]]}]}}}]");
	void *c = compile("prometheus",
			  "{\"url\": \"%s/prom/\", \"query\": \"sum by (instance) "
			  "(rate(http_requests_total{job=\\\"api\\\"}[5m]))\", \"series\": "
			  "\"instance=\\\"a\\\"\"}",
			  err, sizeof(err));
	if (collect("prometheus", c, &rows, err, sizeof(err)) != 0)
		fail_msg("collect: %s", err);
	assert_int_equal(rows.n, 2);
	assert_true(rows.rows[0].ts == PS && rows.rows[0].value == 5);
	assert_true(rows.rows[1].ts == PF && rows.rows[1].value == 6.5);
	dtk_rows_clear(&rows);
	dtk_collector_find("prometheus")->destroy(c);

	dtk_value *reqs = requests("/prom/api/v1/query_range");
	assert_int_equal(reqs->u.list.n, 1);
	const char *q = dtk_value_cstr(dtk_value_map_get(reqs->u.list.items[0], "query"));
	if (!strstr(q, "start=1718451000") || !strstr(q, "end=1718451600") ||
	    !strstr(q, "step=600") || !strstr(q, "query=sum%20by%20%28instance%29"))
		fail_msg("query string: %s", q);
	dtk_value_free(&reqs);

	/* without series: an error listing both */
	c = compile("prometheus", "{\"url\": \"%s/prom\", \"query\": \"up\"}", err, sizeof(err));
	assert_int_equal(collect("prometheus", c, &rows, err, sizeof(err)), -1);
	if (!strstr(err, "instance=\"a\"") || !strstr(err, "instance=\"b\""))
		fail_msg("want both series in: %s", err);
	dtk_rows_clear(&rows);
	dtk_collector_find("prometheus")->destroy(c);
}

static void test_prometheus_error_response_is_reported(void **state)
{
	NEED_RECEIVER();
	char err[1024];
	dtk_rows rows;
	script("/bad/api/v1/query_range",
	       "[{\"status\": 400, \"json\": {\"status\": \"error\", \"errorType\": \"bad_data\", "
	       "\"error\": \"1:5: parse error: unexpected end of input\"}}]");
	void *c =
	    compile("prometheus", "{\"url\": \"%s/bad\", \"query\": \"rate(\"}", err, sizeof(err));
	assert_int_equal(collect("prometheus", c, &rows, err, sizeof(err)), -1);
	if (!strstr(err, "bad_data: 1:5: parse error") || !strstr(err, "400"))
		fail_msg("want the server's error, got: %s", err);
	dtk_rows_clear(&rows);
	dtk_collector_find("prometheus")->destroy(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_http_json_with_period_variables_in_url_and_params),
	    cmocka_unit_test(test_http_post_json_body_is_rendered),
	    cmocka_unit_test(test_http_text_and_csv_responses),
	    cmocka_unit_test(test_http_500_then_200_is_retried_and_succeeds),
	    cmocka_unit_test(test_http_500_forever_fails_after_retry_count_attempts),
	    cmocka_unit_test(test_http_missing_path_and_non_numeric_value_are_errors),
	    cmocka_unit_test(test_http_null_value_is_a_missing_point),
	    cmocka_unit_test(test_prometheus_query_range_over_the_period),
	    cmocka_unit_test(test_prometheus_error_response_is_reported),
	};
	int require =
	    getenv("DTK_REQUIRE_SERVICES") && strcmp(getenv("DTK_REQUIRE_SERVICES"), "1") == 0;
	receiver = getenv("DTK_RECEIVER_URL");
	if (!receiver || !*receiver) {
		receiver = NULL;
		printf("SKIP http sources: DTK_RECEIVER_URL is not set (scripts/services.sh start "
		       "receiver; eval \"$(scripts/services.sh env)\")\n");
		return require ? 1 : 77;
	}
	snprintf(prefix, sizeof(prefix), "/dtk-it-%ld-%ld", (long)getpid(), (long)time(NULL));
	return cmocka_run_group_tests(tests, NULL, NULL) ? 1 : 0;
}
