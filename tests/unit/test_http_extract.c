/* collect/http.c and collect/prometheus.c without a server: value
 * extraction (paths, csv, text), the conformance `http_extraction`
 * vectors (tests/conformance/detectors.json; this test owns that section),
 * limit keys, compile-time checks and Prometheus query_range parsing. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collect/collector.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/value.h"

/* Exposed by core/collect/http.c and core/collect/prometheus.c for tests. */
int dtk_collect_http_extract(const char *body, size_t len, const char *format,
			     const char *value_path, double *value, int *is_missing, char *errstr,
			     size_t errstr_size);
int dtk_collect_http_limit_key(const char *url, char *out, size_t outsz);
int dtk_collect_prometheus_series(const dtk_value *param, dtk_value **out, char *errstr,
				  size_t errstr_size);
int dtk_collect_prometheus_parse(const char *body, size_t len, const dtk_value *series,
				 dtk_rows *out, char *errstr, size_t errstr_size);

static dtk_value *J(const char *json)
{
	char err[256];
	dtk_value *v = dtk_json_parse(json, strlen(json), err, sizeof(err));
	if (!v)
		fail_msg("bad test JSON: %s", err);
	return v;
}

static double extract(const char *format, const char *body, const char *path)
{
	char err[512];
	double v;
	int missing;
	if (dtk_collect_http_extract(body, strlen(body), format, path, &v, &missing, err,
				     sizeof(err)) != 0)
		fail_msg("extract %s %s: %s", format, path ? path : "(none)", err);
	assert_false(missing);
	return v;
}

static void extract_missing(const char *format, const char *body, const char *path)
{
	char err[512];
	double v;
	int missing;
	if (dtk_collect_http_extract(body, strlen(body), format, path, &v, &missing, err,
				     sizeof(err)) != 0)
		fail_msg("extract %s: %s", path ? path : "(none)", err);
	assert_true(missing);
}

static void extract_error(const char *format, const char *body, const char *path, const char *want1,
			  const char *want2)
{
	char err[512];
	double v;
	int missing;
	assert_int_equal(dtk_collect_http_extract(body, strlen(body), format, path, &v, &missing,
						  err, sizeof(err)),
			 -1);
	if (!strstr(err, want1) || (want2 && !strstr(err, want2)))
		fail_msg("want \"%s\" and \"%s\" in \"%s\"", want1, want2 ? want2 : "", err);
}

static void test_http_conformance_vectors(void **state)
{
	char path[4096], err[256];
	const char *dir = getenv("DTK_SOURCE_DIR");
	size_t len = 0;
	snprintf(path, sizeof(path), "%s/tests/conformance/detectors.json", dir ? dir : ".");
	char *text = NULL;
	if (dtk_file_read(path, (size_t)64 << 20, &text, &len, err, sizeof(err)) != 0)
		fail_msg("cannot read %s: %s (set DTK_SOURCE_DIR)", path, err);
	dtk_value *doc = dtk_json_parse(text, len, err, sizeof(err));
	free(text);
	assert_non_null(doc);
	const dtk_value *sec = dtk_value_map_get(doc, "http_extraction");
	assert_non_null(sec);
	assert_int_equal(sec->type, DTK_V_LIST);
	assert_true(sec->u.list.n >= 6);
	for (size_t i = 0; i < sec->u.list.n; i++) {
		const dtk_value *c = sec->u.list.items[i];
		const char *format = dtk_value_cstr(dtk_value_map_get(c, "format"));
		const char *body = dtk_value_cstr(dtk_value_map_get(c, "body"));
		const char *vp = dtk_value_cstr(dtk_value_map_get(c, "value_path"));
		double want, got;
		int missing;
		char e[512];
		assert_non_null(format);
		assert_non_null(body);
		assert_true(dtk_value_number(dtk_value_map_get(c, "expect"), &want));
		if (dtk_collect_http_extract(body, strlen(body), format, vp, &got, &missing, e,
					     sizeof(e)) != 0)
			fail_msg("vector %zu (%s %s): %s", i, format, vp ? vp : "", e);
		if (missing || fabs(got - want) > 1e-9 * fabs(want))
			fail_msg("vector %zu (%s %s): want %g, got %g%s", i, format, vp ? vp : "",
				 want, got, missing ? " (missing)" : "");
	}
	printf("conformance http_extraction: %zu vectors passed\n", sec->u.list.n);
	dtk_value_free(&doc);
}

static void test_http_json_paths_dot_bracket_and_negative_index(void **state)
{
	const char *body = "{\"data\": {\"result\": [{\"value\": [1699999999, \"789.5\"]}, "
			   "{\"value\": [1, 3]}], \"n\": 4, \"ok\": true, \"list\": [[1, 2], [3, "
			   "4]]}}";
	assert_true(extract("json", body, "data.result[0].value[1]") == 789.5);
	assert_true(extract("json", body, "data.result[-1].value[-1]") == 3);
	assert_true(extract("json", body, "data.result.1.value.0") == 1);
	assert_true(extract("json", body, "data.list[1][0]") == 3);
	assert_true(extract("json", body, "data.n") == 4);
	assert_true(extract("json", body, "data.ok") == 1);
	assert_true(extract("json", "12.25", NULL) == 12.25);
	assert_true(extract("json", "[5, 6]", "[1]") == 6);
}

static void test_http_json_null_nan_and_infinite_are_missing(void **state)
{
	extract_missing("json", "{\"v\": null}", "v");
	extract_missing("json", "{\"v\": \"NaN\"}", "v");
	extract_missing("json", "{\"v\": \"+Inf\"}", "v");
	extract_missing("json", "{\"v\": NaN}", "v");
	extract_missing("text", " nan\n", NULL);
}

static void test_http_json_missing_path_names_the_path(void **state)
{
	const char *body = "{\"data\": {\"result\": []}}";
	extract_error("json", body, "data.results[0]", "'data.results[0]'", "no key 'results'");
	extract_error("json", body, "data.result[0].value", "'data.result[0].value'",
		      "out of range");
	extract_error("json", body, "data.result.x", "'data.result.x'", "needs an object");
	extract_error("json", body, "data[0]", "'data[0]'", "needs a list");
	extract_error("json", body, "data..x", "'data..x'", NULL);
	extract_error("json", body, NULL, "value_path: required", NULL);
}

static void test_http_non_numeric_value_names_path_and_value(void **state)
{
	extract_error("json", "{\"status\": \"healthy\"}", "status", "'status'", "\"healthy\"");
	extract_error("json", "{\"v\": {\"a\": 1}}", "v", "'v'", "{\"a\":1}");
	extract_error("json", "{\"v\": \"\"}", "v", "'v'", "not a number");
	extract_error("text", "OK\n", NULL, "\"OK", "not a number");
	extract_error("json", "<html>oops</html>", "v", "not JSON", "<html>");
}

static void test_http_text_is_the_trimmed_body(void **state)
{
	assert_true(extract("text", "  42\r\n", NULL) == 42);
	assert_true(extract("text", "-1.5e3", NULL) == -1500);
	extract_error("text", "", NULL, "not a number", NULL);
	extract_error("text", "4 2", NULL, "not a number", NULL);
}

static void test_http_csv_column_row_quotes_and_errors(void **state)
{
	const char *body =
	    "ts,\"count\",label\r\n2024-11-01,42,\"a,b\"\r\n\r\n2024-11-02,\"50\",x\n";
	assert_true(extract("csv", body, "count") == 42);
	assert_true(extract("csv", body, "count[1]") == 50);
	assert_true(extract("csv", body, "count[-1]") == 50);
	assert_true(extract("csv", "n\n7\n", NULL) == 7);
	extract_missing("csv", "a,b\n1,\n", "b");
	extract_error("csv", body, "count[2]", "'count[2]'", "out of range");
	extract_error("csv", body, "total", "'total'", "no column 'total'");
	extract_error("csv", body, "label", "'label'", "\"a,b\"");
	extract_error("csv", body, NULL, "value_path: required", "ts, count, label");
	extract_error("csv", body, "count[x]", "'count[x]'", "COLUMN[ROW]");
	extract_error("csv", "", "count", "empty", NULL);
}

static void test_http_limit_key_is_scheme_host_port(void **state)
{
	char key[256];
	assert_int_equal(
	    dtk_collect_http_limit_key("https://API.Example.com/v1?x=1", key, sizeof(key)), 0);
	assert_string_equal(key, "https://api.example.com:443");
	assert_int_equal(dtk_collect_http_limit_key("http://u:pw@h:8080", key, sizeof(key)), 0);
	assert_string_equal(key, "http://h:8080");
	assert_int_equal(dtk_collect_http_limit_key("http://[::1]:9090/x", key, sizeof(key)), 0);
	assert_string_equal(key, "http://[::1]:9090");
	assert_int_equal(dtk_collect_http_limit_key("http://h/", key, sizeof(key)), 0);
	assert_string_equal(key, "http://h:80");
	assert_int_equal(dtk_collect_http_limit_key("ftp://h/", key, sizeof(key)), -1);
	assert_int_equal(dtk_collect_http_limit_key("http://h:0/", key, sizeof(key)), -1);
}

static void compile_error(const char *type, const char *params_json, const char *want)
{
	char err[512];
	void *compiled = NULL;
	const dtk_collector_type *ct = dtk_collector_find(type);
	assert_non_null(ct);
	dtk_value *p = J(params_json);
	assert_int_equal(ct->compile(p, NULL, &compiled, err, sizeof(err)), -1);
	assert_null(compiled);
	if (!strstr(err, want))
		fail_msg("want \"%s\" in \"%s\"", want, err);
	dtk_value_free(&p);
}

static void test_http_compile_checks_params(void **state)
{
	char err[512];
	void *compiled = NULL;
	const dtk_collector_type *ct = dtk_collector_find("http");
	assert_non_null(ct);
	assert_int_equal(ct->has_timestamps ? 1 : 0, 1);
	dtk_value *p = J("{\"url\": \"http://h/{{ period_start }}\", \"params\": {\"from\": "
			 "\"{{ period_start }}\", \"n\": 5}, \"json\": {\"q\": [\"{{ metric_name "
			 "}}\"]}, \"headers\": {\"Authorization\": \"Bearer t\"}, \"retry_count\": "
			 "0, \"value_path\": \"a.b\"}");
	if (ct->compile(p, NULL, &compiled, err, sizeof(err)) != 0)
		fail_msg("compile: %s", err);
	assert_int_equal(ct->has_timestamps(compiled), 0);
	ct->destroy(compiled);
	dtk_value_free(&p);

	compile_error("http", "{}", "url: required");
	compile_error("http", "{\"url\": \"ftp://h/\"}", "url:");
	compile_error("http", "{\"url\": \"http://h/{{ x \"}", "url:");
	compile_error("http", "{\"url\": \"http://h/\", \"method\": \"PUT\"}", "method:");
	compile_error("http", "{\"url\": \"http://h/\", \"method\": \"GET\", \"json\": {}}",
		      "method:");
	compile_error("http", "{\"url\": \"http://h/\", \"response_format\": \"xml\"}",
		      "response_format:");
	compile_error("http", "{\"url\": \"http://h/\", \"headers\": [1]}", "headers:");
	compile_error("http", "{\"url\": \"http://h/\", \"headers\": {\"A\\nB\": \"x\"}}",
		      "headers:");
	compile_error("http", "{\"url\": \"http://h/\", \"timeout\": 0}", "timeout:");
	compile_error("http", "{\"url\": \"http://h/\", \"retry_count\": -1}", "retry_count:");
	compile_error("http", "{\"url\": \"http://h/\", \"verify_ssl\": \"maybe\"}", "verify_ssl:");
	compile_error("http", "{\"url\": \"http://h/\", \"json\": {\"a\": \"{% if %}\"}}", "json:");
	compile_error("http", "{\"url\": \"http://h/\", \"json\": {}, \"data\": \"x\"}", "data:");
}

static void test_prometheus_compile_checks_params(void **state)
{
	compile_error("prometheus", "{\"query\": \"up\"}", "url: required");
	compile_error("prometheus", "{\"url\": \"http://p:9090\"}", "query: required");
	compile_error("prometheus", "{\"url\": \"http://p:9090/?x=1\", \"query\": \"up\"}", "url:");
	compile_error("prometheus",
		      "{\"url\": \"http://p:9090\", \"query\": \"up\", \"series\": \"job=api\"}",
		      "series:");
	compile_error(
	    "prometheus",
	    "{\"url\": \"http://p:9090\", \"query\": \"up\", \"series\": \"job=~\\\"a\\\"\"}",
	    "series:");
	compile_error("prometheus",
		      "{\"url\": \"http://p:9090\", \"query\": \"up\", \"series\": [1]}",
		      "series:");
}

static void test_prometheus_series_matcher_string_or_map(void **state)
{
	char err[256];
	dtk_value *m = NULL;
	dtk_value *p = J("\"{job=\\\"api\\\", instance=\\\"a:9100\\\" ,x=\\\"q\\\\\\\"\\\"}\"");
	assert_int_equal(dtk_collect_prometheus_series(p, &m, err, sizeof(err)), 0);
	assert_int_equal(m->u.map.n, 3);
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(m, "job")), "api");
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(m, "instance")), "a:9100");
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(m, "x")), "q\"");
	dtk_value_free(&m);
	dtk_value_free(&p);
	p = J("{\"job\": \"api\"}");
	assert_int_equal(dtk_collect_prometheus_series(p, &m, err, sizeof(err)), 0);
	assert_string_equal(dtk_value_cstr(dtk_value_map_get(m, "job")), "api");
	dtk_value_free(&m);
	dtk_value_free(&p);
}

static const char matrix0[] = "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\","
			      "\"result\":[]}}";
static const char matrix1[] =
    "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[{\"metric\":{"
    "\"__name__\":\"up\",\"job\":\"api\"},\"values\":[[1718451000,\"1\"],[1718451300.5,"
    "\"NaN\"],[1718451600,\"2.5\"]]}]}}";
static const char matrix2[] =
    "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[{\"metric\":{"
    "\"job\":\"api\",\"instance\":\"a\"},\"values\":[[1718451000,\"1\"],[1718451600,\"3\"]]},"
    "{\"metric\":{\"job\":\"api\",\"instance\":\"b\"},\"values\":[[1718451600,\"7\"]]}]}}";

static void test_prometheus_matrix_with_zero_series_is_no_rows(void **state)
{
	char err[256];
	dtk_rows rows;
	dtk_rows_init(&rows);
	assert_int_equal(
	    dtk_collect_prometheus_parse(matrix0, strlen(matrix0), NULL, &rows, err, sizeof(err)),
	    0);
	assert_int_equal(rows.n, 0);
	dtk_rows_clear(&rows);
}

static void test_prometheus_matrix_with_one_series_gives_a_row_per_sample(void **state)
{
	char err[256];
	dtk_rows rows;
	dtk_rows_init(&rows);
	assert_int_equal(
	    dtk_collect_prometheus_parse(matrix1, strlen(matrix1), NULL, &rows, err, sizeof(err)),
	    0);
	assert_int_equal(rows.n, 3);
	assert_true(rows.rows[0].ts == 1718451000 && rows.rows[0].value == 1);
	assert_true(rows.rows[1].ts == 1718451300 && rows.rows[1].is_missing);
	assert_true(rows.rows[2].ts == 1718451600 && rows.rows[2].value == 2.5);
	dtk_rows_clear(&rows);
}

static void test_prometheus_two_series_need_a_series_matcher(void **state)
{
	char err[512];
	dtk_rows rows;
	dtk_rows_init(&rows);
	assert_int_equal(
	    dtk_collect_prometheus_parse(matrix2, strlen(matrix2), NULL, &rows, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "2 series"));
	assert_non_null(strstr(err, "{job=\"api\", instance=\"a\"}"));
	assert_non_null(strstr(err, "{job=\"api\", instance=\"b\"}"));
	dtk_rows_clear(&rows);

	dtk_value *s = J("{\"instance\": \"b\"}");
	dtk_rows_init(&rows);
	assert_int_equal(
	    dtk_collect_prometheus_parse(matrix2, strlen(matrix2), s, &rows, err, sizeof(err)), 0);
	assert_int_equal(rows.n, 1);
	assert_true(rows.rows[0].value == 7);
	dtk_rows_clear(&rows);
	dtk_value_free(&s);

	s = J("{\"job\": \"api\"}");
	dtk_rows_init(&rows);
	assert_int_equal(
	    dtk_collect_prometheus_parse(matrix2, strlen(matrix2), s, &rows, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "matching"));
	dtk_rows_clear(&rows);
	dtk_value_free(&s);

	s = J("{\"job\": \"web\"}");
	dtk_rows_init(&rows);
	assert_int_equal(
	    dtk_collect_prometheus_parse(matrix2, strlen(matrix2), s, &rows, err, sizeof(err)), 0);
	assert_int_equal(rows.n, 0);
	dtk_rows_clear(&rows);
	dtk_value_free(&s);
}

static void test_prometheus_error_responses_carry_the_server_message(void **state)
{
	char err[512];
	dtk_rows rows;
	const char *e = "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"parse error "
			"at char 3\"}";
	const char *vec = "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\","
			  "\"result\":[]}}";
	dtk_rows_init(&rows);
	assert_int_equal(dtk_collect_prometheus_parse(e, strlen(e), NULL, &rows, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "bad_data: parse error at char 3"));
	assert_int_equal(
	    dtk_collect_prometheus_parse(vec, strlen(vec), NULL, &rows, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "matrix"));
	dtk_rows_clear(&rows);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_http_conformance_vectors),
	    cmocka_unit_test(test_http_json_paths_dot_bracket_and_negative_index),
	    cmocka_unit_test(test_http_json_null_nan_and_infinite_are_missing),
	    cmocka_unit_test(test_http_json_missing_path_names_the_path),
	    cmocka_unit_test(test_http_non_numeric_value_names_path_and_value),
	    cmocka_unit_test(test_http_text_is_the_trimmed_body),
	    cmocka_unit_test(test_http_csv_column_row_quotes_and_errors),
	    cmocka_unit_test(test_http_limit_key_is_scheme_host_port),
	    cmocka_unit_test(test_http_compile_checks_params),
	    cmocka_unit_test(test_prometheus_compile_checks_params),
	    cmocka_unit_test(test_prometheus_series_matcher_string_or_map),
	    cmocka_unit_test(test_prometheus_matrix_with_zero_series_is_no_rows),
	    cmocka_unit_test(test_prometheus_matrix_with_one_series_gives_a_row_per_sample),
	    cmocka_unit_test(test_prometheus_two_series_need_a_series_matcher),
	    cmocka_unit_test(test_prometheus_error_responses_carry_the_server_message),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
