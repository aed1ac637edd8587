/* util/http: retries, Retry-After, deadlines, bounded bodies, masked
 * errors and keep-alive, against a scripted HTTP server in a thread
 * (http_stub.h). */
#include "http_stub.h"


/* ---- the tests ---- */

static dtk_http_request post_to(const char *url, const char *body)
{
	dtk_http_request req = {.method = "POST",
				.url = url,
				.body = body,
				.body_len = body ? strlen(body) : 0,
				.timeout_s = 5};
	return req;
}

static void test_http_2xx_returns_body_status_and_content_type(void **state)
{
	stub_reply r[] = {{.status = 201, .body = "{\"ok\":true}"}};
	stub_server *s = stub_start(r, 1);
	char url[128], err[512];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/x?y=1", s->port);
	const char *hdr[] = {"X-Test: yes"};
	dtk_http_request req = post_to(url, "{\"a\":1}");
	req.headers = hdr;
	req.nheaders = 1;
	dtk_http_response resp;
	assert_int_equal(dtk_http_do(NULL, &req, &resp, err, sizeof(err)), 0);
	assert_int_equal(resp.status, 201);
	assert_string_equal(resp.body, "{\"ok\":true}");
	assert_int_equal(resp.body_len, 11);
	assert_string_equal(resp.content_type, "application/json");
	assert_int_equal(resp.attempts, 1);
	assert_int_equal(stub_nreqs(s), 1);
	char v[64];
	assert_string_equal(s->reqs[0].method, "POST");
	assert_string_equal(s->reqs[0].path, "/api/x?y=1");
	assert_string_equal(s->reqs[0].body, "{\"a\":1}");
	assert_string_equal(stub_header(&s->reqs[0], "X-Test", v, sizeof(v)), "yes");
	assert_null(stub_header(&s->reqs[0], "Expect", v, sizeof(v)));
	dtk_http_response_free(&resp);
	stub_stop(&s);
}

static void test_http_500_then_200_is_retried_and_succeeds(void **state)
{
	stub_reply r[] = {{.status = 500, .body = "busy"}, {.status = 200, .body = "fine"}};
	stub_server *s = stub_start(r, 2);
	char url[128], err[512];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s->port);
	dtk_http_request req = post_to(url, "x");
	req.max_attempts = 3;
	req.retry_delay_s = 0.01;
	dtk_http_response resp;
	assert_int_equal(dtk_http_do(NULL, &req, &resp, err, sizeof(err)), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(resp.attempts, 2);
	assert_string_equal(resp.body, "fine");
	assert_int_equal(stub_nreqs(s), 2);
	assert_string_equal(s->reqs[1].body, "x");
	dtk_http_response_free(&resp);
	stub_stop(&s);
}

static void test_http_500_forever_fails_after_max_attempts_with_status_and_body(void **state)
{
	stub_reply r[] = {{.status = 500, .body = "{\"error\": \"database\nis down\"}"}};
	stub_server *s = stub_start(r, 1);
	char url[128], err[512];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/q", s->port);
	dtk_http_request req = post_to(url, "x");
	req.max_attempts = 3;
	dtk_http_response resp;
	assert_int_equal(dtk_http_do(NULL, &req, &resp, err, sizeof(err)), -1);
	assert_int_equal(resp.attempts, 3);
	assert_int_equal(resp.status, 500);
	assert_int_equal(stub_nreqs(s), 3);
	char want[256];
	snprintf(
	    want, sizeof(want),
	    "HTTP 500 from http://127.0.0.1:%d/q: {\"error\": \"database is down\"} (attempt 3 "
	    "of 3)",
	    s->port);
	assert_string_equal(err, want);
	dtk_http_response_free(&resp);
	stub_stop(&s);
}

static void test_http_4xx_is_not_retried(void **state)
{
	stub_reply r[] = {{.status = 404, .body = "no such hook"}};
	stub_server *s = stub_start(r, 1);
	char url[128], err[512];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hooks/abc", s->port);
	dtk_http_request req = post_to(url, "x");
	req.max_attempts = 3;
	req.mask_url_path = 1;
	dtk_http_response resp;
	assert_int_equal(dtk_http_do(NULL, &req, &resp, err, sizeof(err)), -1);
	assert_int_equal(resp.attempts, 1);
	char want[256];
	snprintf(want, sizeof(want), "HTTP 404 from http://127.0.0.1:%d/***: no such hook",
		 s->port);
	assert_string_equal(err, want);
	dtk_http_response_free(&resp);
	stub_stop(&s);
}

static void test_http_429_retry_after_seconds_is_honoured(void **state)
{
	stub_reply r[] = {{.status = 429, .headers = "Retry-After: 1\r\n"}, {.status = 200}};
	stub_server *s = stub_start(r, 2);
	char url[128], err[512];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s->port);
	dtk_http_request req = post_to(url, "x");
	req.max_attempts = 3;
	req.retry_delay_s = 0.01;
	dtk_http_response resp;
	double t0 = dtk_mono_ms();
	assert_int_equal(dtk_http_do(NULL, &req, &resp, err, sizeof(err)), 0);
	double elapsed = dtk_mono_ms() - t0;
	assert_int_equal(resp.attempts, 2);
	assert_true(elapsed >= 950);
	assert_true(elapsed < 5000);
	dtk_http_response_free(&resp);
	stub_stop(&s);
}

static void test_http_503_retry_after_http_date_is_honoured(void **state)
{
	char ra[128];
	time_t when = time(NULL) + 2;
	struct tm tm;
	gmtime_r(&when, &tm);
	strftime(ra, sizeof(ra), "Retry-After: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
	stub_reply r[] = {{.status = 503, .headers = ra}, {.status = 200}};
	stub_server *s = stub_start(r, 2);
	char url[128], err[512];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s->port);
	dtk_http_request req = post_to(url, "x");
	req.max_attempts = 2;
	dtk_http_response resp;
	double t0 = dtk_mono_ms();
	assert_int_equal(dtk_http_do(NULL, &req, &resp, err, sizeof(err)), 0);
	double elapsed = dtk_mono_ms() - t0;
	assert_int_equal(resp.attempts, 2);
	assert_true(elapsed >= 900); /* the date has one-second resolution */
	dtk_http_response_free(&resp);
	stub_stop(&s);
}

static void test_http_deadline_stops_retries_without_sleeping_past_it(void **state)
{
	stub_reply r[] = {{.status = 503, .headers = "Retry-After: 3\r\n", .body = "later"}};
	stub_server *s = stub_start(r, 1);
	char url[128], err[512];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s->port);
	dtk_http_request req = post_to(url, "x");
	req.max_attempts = 5;
	req.deadline_ms = dtk_now_ms() + 1000;
	dtk_http_response resp;
	double t0 = dtk_mono_ms();
	assert_int_equal(dtk_http_do(NULL, &req, &resp, err, sizeof(err)), -1);
	double elapsed = dtk_mono_ms() - t0;
	assert_true(elapsed < 900);
	assert_int_equal(resp.attempts, 1);
	assert_int_equal(stub_nreqs(s), 1);
	assert_non_null(strstr(err, "HTTP 503 from"));
	assert_non_null(strstr(err, "would pass the deadline"));
	dtk_http_response_free(&resp);
	stub_stop(&s);
}

static void test_http_past_deadline_makes_no_attempt(void **state)
{
	stub_reply r[] = {{.status = 200}};
	stub_server *s = stub_start(r, 1);
	char url[128], err[512];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s->port);
	dtk_http_request req = post_to(url, "x");
	req.deadline_ms = dtk_now_ms() - 1;
	dtk_http_response resp;
	assert_int_equal(dtk_http_do(NULL, &req, &resp, err, sizeof(err)), -1);
	assert_int_equal(resp.attempts, 0);
	assert_int_equal(stub_nreqs(s), 0);
	assert_non_null(strstr(err, "deadline passed before the request"));
	dtk_http_response_free(&resp);
	stub_stop(&s);
}

static void test_http_attempt_timeout_is_reported(void **state)
{
	stub_reply r[] = {{.status = 200, .delay_ms = 800}};
	stub_server *s = stub_start(r, 1);
	char url[128], err[512];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/slow", s->port);
	dtk_http_request req = post_to(url, "x");
	req.timeout_s = 0.2;
	dtk_http_response resp;
	double t0 = dtk_mono_ms();
	assert_int_equal(dtk_http_do(NULL, &req, &resp, err, sizeof(err)), -1);
	assert_true(dtk_mono_ms() - t0 < 700);
	char want[128];
	snprintf(want, sizeof(want), "request to http://127.0.0.1:%d/slow failed: ", s->port);
	assert_memory_equal(err, want, strlen(want));
	assert_non_null(strstr(err, "timed out"));
	dtk_http_response_free(&resp);
	stub_stop(&s);
}

static void test_http_oversize_body_is_refused_without_retry(void **state)
{
	stub_reply r[] = {{.status = 200, .big = 200000}};
	stub_server *s = stub_start(r, 1);
	char url[128], err[512];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/big", s->port);
	dtk_http_request req = {.url = url, .max_response = 1000, .max_attempts = 3};
	dtk_http_response resp;
	assert_int_equal(dtk_http_do(NULL, &req, &resp, err, sizeof(err)), -1);
	assert_int_equal(resp.attempts, 1);
	char want[256];
	snprintf(want, sizeof(want),
		 "response from http://127.0.0.1:%d/big exceeds the limit of 1000 bytes", s->port);
	assert_string_equal(err, want);
	dtk_http_response_free(&resp);
	stub_stop(&s);
}

static void test_http_connection_refused_masks_userinfo_path_and_secrets(void **state)
{
	int port = stub_closed_port();
	char url[256], err[512];
	snprintf(url, sizeof(url), "http://alice:hunter2@127.0.0.1:%d/hooks/s3cr3tpath?t=tok42",
		 port);
	dtk_value *secrets = dtk_value_list();
	dtk_value_list_push(secrets, dtk_value_str("tok42"));
	dtk_http_request req = post_to(url, "x");
	req.secrets = secrets;
	req.mask_url_path = 1;
	req.max_attempts = 2;
	dtk_http_response resp;
	assert_int_equal(dtk_http_do(NULL, &req, &resp, err, sizeof(err)), -1);
	assert_int_equal(resp.attempts, 2);
	char want[128];
	snprintf(want, sizeof(want), "cannot connect to http://***@127.0.0.1:%d/***: ", port);
	assert_memory_equal(err, want, strlen(want));
	assert_null(strstr(err, "alice"));
	assert_null(strstr(err, "hunter2"));
	assert_null(strstr(err, "s3cr3tpath"));
	assert_null(strstr(err, "tok42"));
	dtk_http_response_free(&resp);

	/* path kept, the secret in the query masked */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api?key=tok42", port);
	req = post_to(url, "x");
	req.secrets = secrets;
	assert_int_equal(dtk_http_do(NULL, &req, &resp, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "cannot connect to http://127.0.0.1:%d/api?key=***: ", port);
	assert_memory_equal(err, want, strlen(want));
	dtk_http_response_free(&resp);
	dtk_value_free(&secrets);
}

static void test_http_error_body_excerpt_is_masked_and_bounded(void **state)
{
	char body[1024];
	memset(body, 'a', sizeof(body) - 1);
	body[sizeof(body) - 1] = '\0';
	memcpy(body + 190, "SECRETVALUE", 11); /* straddles the 200-byte cut */
	stub_reply r[] = {{.status = 400, .body = body}};
	stub_server *s = stub_start(r, 1);
	char url[128], err[1024];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s->port);
	dtk_value *secrets = dtk_value_list();
	dtk_value_list_push(secrets, dtk_value_str("SECRETVALUE"));
	dtk_http_request req = post_to(url, "x");
	req.secrets = secrets;
	dtk_http_response resp;
	assert_int_equal(dtk_http_do(NULL, &req, &resp, err, sizeof(err)), -1);
	assert_null(strstr(err, "SECRET"));
	const char *excerpt = strstr(err, ": ") + 2;
	assert_int_equal(strlen(excerpt), 200);
	assert_memory_equal(excerpt + 190, "***aaaaaaa", 10);
	dtk_http_response_free(&resp);
	dtk_value_free(&secrets);
	stub_stop(&s);
}

static void test_http_keep_alive_reuses_one_connection_across_requests(void **state)
{
	stub_reply r[] = {{.status = 200, .body = "one"}, {.status = 200, .body = "two"}};
	stub_server *s = stub_start(r, 2);
	char url[128], err[512];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/k", s->port);
	dtk_http_client *c = dtk_http_client_new();
	assert_non_null(c);
	dtk_http_request req = post_to(url, "first");
	dtk_http_response resp;
	assert_int_equal(dtk_http_do(c, &req, &resp, err, sizeof(err)), 0);
	assert_string_equal(resp.body, "one");
	dtk_http_response_free(&resp);
	dtk_http_request get = {.url = url, .timeout_s = 5};
	assert_int_equal(dtk_http_do(c, &get, &resp, err, sizeof(err)), 0);
	assert_string_equal(resp.body, "two");
	dtk_http_response_free(&resp);
	assert_int_equal(stub_nreqs(s), 2);
	assert_string_equal(s->reqs[0].method, "POST");
	assert_string_equal(s->reqs[1].method, "GET");
	assert_int_equal(s->reqs[1].body_len, 0);
	assert_int_equal(s->reqs[0].conn, s->reqs[1].conn);
	assert_int_equal(s->connections, 1);
	dtk_http_client_free(&c);
	assert_null(c);
	stub_stop(&s);
}

static void test_http_put_sends_method_and_body(void **state)
{
	stub_reply r[] = {{.status = 204}};
	stub_server *s = stub_start(r, 1);
	char url[128], err[512];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s->port);
	dtk_http_request req = post_to(url, "payload");
	req.method = "PUT";
	dtk_http_response resp;
	assert_int_equal(dtk_http_do(NULL, &req, &resp, err, sizeof(err)), 0);
	assert_string_equal(resp.body, "");
	assert_string_equal(s->reqs[0].method, "PUT");
	assert_string_equal(s->reqs[0].body, "payload");
	dtk_http_response_free(&resp);
	stub_stop(&s);
}

static void test_http_other_protocols_are_refused(void **state)
{
	char err[512];
	dtk_http_request req = {.url = "file:///etc/passwd", .max_attempts = 3};
	dtk_http_response resp;
	assert_int_equal(dtk_http_do(NULL, &req, &resp, err, sizeof(err)), -1);
	assert_int_equal(resp.attempts, 1);
	assert_int_equal(resp.body_len, 0);
	assert_non_null(strstr(err, "file:///etc/passwd"));
	dtk_http_response_free(&resp);
}

static void test_http_mask_url_hides_userinfo_always_and_path_on_request(void **state)
{
	char out[256];
	dtk_http_mask_url("https://u:p@hooks.example.com:8443/hooks/abc?x=1", 0, out, sizeof(out));
	assert_string_equal(out, "https://***@hooks.example.com:8443/hooks/abc?x=1");
	dtk_http_mask_url("https://u:p@hooks.example.com:8443/hooks/abc?x=1", 1, out, sizeof(out));
	assert_string_equal(out, "https://***@hooks.example.com:8443/***");
	dtk_http_mask_url("https://hooks.example.com?token=1", 1, out, sizeof(out));
	assert_string_equal(out, "https://hooks.example.com/***");
	dtk_http_mask_url("http://am:9093/", 1, out, sizeof(out));
	assert_string_equal(out, "http://am:9093/");
	dtk_http_mask_url("http://am:9093", 1, out, sizeof(out));
	assert_string_equal(out, "http://am:9093");
	dtk_http_mask_url("http://a@b@host/x", 0, out, sizeof(out));
	assert_string_equal(out, "http://***@host/x");
}

static void test_http_escape_percent_encodes_all_but_unreserved(void **state)
{
	char out[64];
	dtk_http_escape("a b&c=d/é~_.-", out, sizeof(out));
	assert_string_equal(out, "a%20b%26c%3Dd%2F%C3%A9~_.-");
	char small[5];
	dtk_http_escape("ab c", small, sizeof(small));
	assert_string_equal(small, "ab");
}

static void test_http_check_url_accepts_http_and_https_only(void **state)
{
	char err[256];
	assert_int_equal(dtk_http_check_url("https://hooks.slack.com/services/x", err, sizeof(err)),
			 0);
	assert_int_equal(dtk_http_check_url("HTTP://localhost:8065/hooks/x", err, sizeof(err)), 0);
	assert_int_equal(dtk_http_check_url("ftp://x/y", err, sizeof(err)), -1);
	assert_string_equal(err, "must be an http:// or https:// URL");
	assert_int_equal(dtk_http_check_url("https:///path", err, sizeof(err)), -1);
	assert_int_equal(dtk_http_check_url("https://host/a b", err, sizeof(err)), -1);
	assert_int_equal(dtk_http_check_url("${MATTERMOST_WEBHOOK}", err, sizeof(err)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_http_2xx_returns_body_status_and_content_type),
	    cmocka_unit_test(test_http_500_then_200_is_retried_and_succeeds),
	    cmocka_unit_test(test_http_500_forever_fails_after_max_attempts_with_status_and_body),
	    cmocka_unit_test(test_http_4xx_is_not_retried),
	    cmocka_unit_test(test_http_429_retry_after_seconds_is_honoured),
	    cmocka_unit_test(test_http_503_retry_after_http_date_is_honoured),
	    cmocka_unit_test(test_http_deadline_stops_retries_without_sleeping_past_it),
	    cmocka_unit_test(test_http_past_deadline_makes_no_attempt),
	    cmocka_unit_test(test_http_attempt_timeout_is_reported),
	    cmocka_unit_test(test_http_oversize_body_is_refused_without_retry),
	    cmocka_unit_test(test_http_connection_refused_masks_userinfo_path_and_secrets),
	    cmocka_unit_test(test_http_error_body_excerpt_is_masked_and_bounded),
	    cmocka_unit_test(test_http_keep_alive_reuses_one_connection_across_requests),
	    cmocka_unit_test(test_http_put_sends_method_and_body),
	    cmocka_unit_test(test_http_other_protocols_are_refused),
	    cmocka_unit_test(test_http_mask_url_hides_userinfo_always_and_path_on_request),
	    cmocka_unit_test(test_http_escape_percent_encodes_all_but_unreserved),
	    cmocka_unit_test(test_http_check_url_accepts_http_and_https_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
