/* alert/: the HTTP channels (mattermost, slack, webhook, alertmanager):
 * exact payloads, headers, HMAC signatures, retries and masked errors,
 * against the scripted server of http_stub.h. */
#include "http_stub.h"

#include <math.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "alert/alerter.h"
#include "alert/message.h"
#include "config/config.h"

#define EXEC_TIME 1730557800 /* 2024-11-02T14:30:00Z */

/* Compiles type with params given as alternating key/value strings. */
static void *compile_ok(const char *type, dtk_value *params)
{
	const dtk_alerter_type *t = dtk_alerter_find(type);
	assert_non_null(t);
	void *compiled = NULL;
	char err[512] = "";
	int rc = t->compile(params, NULL, &compiled, err, sizeof(err));
	if (rc != 0)
		fail_msg("compile %s: %s", type, err);
	return compiled;
}

static void compile_fails(const char *type, dtk_value *params, const char *want)
{
	const dtk_alerter_type *t = dtk_alerter_find(type);
	void *compiled = NULL;
	char err[512] = "";
	assert_int_equal(t->compile(params, NULL, &compiled, err, sizeof(err)), -1);
	assert_null(compiled);
	assert_string_equal(err, want);
	dtk_value_free(&params);
}

static dtk_value *params_of(const char *k1, const char *v1, const char *k2, const char *v2)
{
	dtk_value *p = dtk_value_map();
	if (k1)
		dtk_value_map_set_str(p, k1, v1);
	if (k2)
		dtk_value_map_set_str(p, k2, v2);
	return p;
}

static dtk_value *str_list(const char *a, const char *b)
{
	dtk_value *l = dtk_value_list();
	if (a)
		dtk_value_list_push(l, dtk_value_str(a));
	if (b)
		dtk_value_list_push(l, dtk_value_str(b));
	return l;
}

/* Template variables as dtk_message_vars makes them, reduced to what the
 * channels read. detector NULL: no primary detection (recovery). */
static dtk_value *vars_of(const char *detector)
{
	dtk_value *v = dtk_value_map();
	dtk_value_map_set_str(v, "metric_name", "orders");
	dtk_value_map_set(v, "tags", str_list("shop", "critical"));
	dtk_value *meta = dtk_value_map();
	if (detector)
		dtk_value_map_set_str(meta, "detector_id", detector);
	dtk_value_map_set(v, "metadata", meta);
	dtk_value *dets = dtk_value_list();
	const char *ids[] = {"mad_1", "zscore_2", "mad_1"};
	for (size_t i = 0; i < 3; i++) {
		dtk_value *d = dtk_value_map();
		dtk_value_map_set_str(d, "detector_id", ids[i]);
		dtk_value_list_push(dets, d);
	}
	dtk_value_map_set(v, "detections", dets);
	return v;
}

static dtk_alert_message message_of(const char *kind, const char *text, const dtk_value *vars)
{
	dtk_alert_message m = {.kind = kind,
			       .text = text,
			       .vars = vars,
			       .execution_time = EXEC_TIME,
			       .interval = 600,
			       .now_ms = (int64_t)(EXEC_TIME + 900) * 1000 + 250,
			       .deadline_ms = dtk_now_ms() + 20000};
	return m;
}

static void send_ok(const char *type, void *compiled, const dtk_alert_message *msg)
{
	char err[1024] = "";
	int rc = dtk_alerter_find(type)->send(compiled, msg, err, sizeof(err));
	if (rc != 0)
		fail_msg("send %s: %s", type, err);
}

static char *url_of(stub_server *s, const char *path)
{
	char *u = malloc(256);
	assert_non_null(u);
	snprintf(u, 256, "http://127.0.0.1:%d%s", s->port, path);
	return u;
}

/* ---- mattermost ---- */

static void test_mattermost_posts_text_username_icon_and_channel(void **state)
{
	stub_reply r[] = {{.status = 200, .body = "ok"}};
	stub_server *s = stub_start(r, 1);
	char *url = url_of(s, "/hooks/abc123");
	dtk_value *p = params_of("webhook_url", url, "username", "Bot");
	dtk_value_map_set_str(p, "icon_url", "https://example.com/i.png");
	dtk_value_map_set_str(p, "channel", "#alerts");
	void *c = compile_ok("mattermost", p);
	dtk_alert_message m =
	    message_of("anomaly", "**ANOMALY DETECTED: orders**\n\nValue: 1.00", NULL);
	send_ok("mattermost", c, &m);
	assert_int_equal(stub_nreqs(s), 1);
	char v[128];
	assert_string_equal(s->reqs[0].method, "POST");
	assert_string_equal(s->reqs[0].path, "/hooks/abc123");
	assert_string_equal(stub_header(&s->reqs[0], "Content-Type", v, sizeof(v)),
			    "application/json");
	assert_string_equal(s->reqs[0].body,
			    "{\"text\":\"**ANOMALY DETECTED: orders**\\n\\nValue: 1.00\","
			    "\"username\":\"Bot\",\"icon_url\":\"https://example.com/i.png\","
			    "\"channel\":\"#alerts\"}");
	dtk_alerter_find("mattermost")->destroy(c);
	dtk_value_free(&p);
	free(url);
	stub_stop(&s);
}

static void test_mattermost_defaults_username_and_leaves_out_absent_fields(void **state)
{
	stub_reply r[] = {{.status = 200}};
	stub_server *s = stub_start(r, 1);
	char *url = url_of(s, "/hooks/x");
	dtk_value *p = params_of("webhook_url", url, NULL, NULL);
	void *c = compile_ok("mattermost", p);
	dtk_alert_message m = message_of("recovery", "back to normal é", NULL);
	send_ok("mattermost", c, &m);
	assert_string_equal(s->reqs[0].body,
			    "{\"text\":\"back to normal é\",\"username\":\"DetectK\"}");
	const dtk_alerter_type *t = dtk_alerter_find("mattermost");
	assert_string_equal(t->rate_key(c), url);
	assert_int_equal(t->bold_single, 0);
	assert_int_equal(t->repost_while_firing, 0);
	t->destroy(c);
	dtk_value_free(&p);
	free(url);
	stub_stop(&s);
}

static void test_mattermost_compile_checks_params_without_connecting(void **state)
{
	compile_fails("mattermost", params_of("username", "x", NULL, NULL),
		      "webhook_url: required (the incoming webhook URL)");
	compile_fails("mattermost", params_of("webhook_url", "ftp://host/hooks/x", NULL, NULL),
		      "webhook_url: must be an http:// or https:// URL");
	compile_fails("mattermost", params_of("webhook_url", "${MATTERMOST_WEBHOOK}", NULL, NULL),
		      "webhook_url: must be an http:// or https:// URL");
	dtk_value *p = params_of("webhook_url", "https://mm.example.com/hooks/x", NULL, NULL);
	dtk_value_map_set_int(p, "username", 5);
	compile_fails("mattermost", p, "username: must be a string");
	p = params_of("webhook_url", "https://mm.example.com/hooks/x", NULL, NULL);
	dtk_value_map_set_num(p, "timeout", 0);
	compile_fails("mattermost", p, "timeout: must be a positive number of seconds");
	/* a closed port: compile must not connect */
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hooks/x", stub_closed_port());
	p = params_of("webhook_url", url, "icon_emoji", ":x:");
	void *c = compile_ok("mattermost", p);
	dtk_alerter_find("mattermost")->destroy(c);
	dtk_value_free(&p);
}

static void test_mattermost_failure_retries_three_times_and_masks_path_and_secrets(void **state)
{
	stub_reply r[] = {
	    {.status = 500, .body = "bad token SEKRET-42 for hook x7k3m9p2q8w4e6r1t5y0u3i9o"}};
	stub_server *s = stub_start(r, 1);
	char *url = url_of(s, "/hooks/x7k3m9p2q8w4e6r1t5y0u3i9o");
	dtk_value *p = params_of("webhook_url", url, NULL, NULL);
	void *c = compile_ok("mattermost", p);
	dtk_value *secrets = str_list("SEKRET-42", NULL);
	dtk_alert_message m = message_of("anomaly", "hi", NULL);
	m.secrets = secrets;
	char err[1024];
	assert_int_equal(dtk_alerter_find("mattermost")->send(c, &m, err, sizeof(err)), -1);
	assert_int_equal(stub_nreqs(s), 3);
	char want[128];
	snprintf(want, sizeof(want),
		 "mattermost: HTTP 500 from http://127.0.0.1:%d/***: ", s->port);
	assert_memory_equal(err, want, strlen(want));
	assert_null(strstr(err, "/hooks"));
	assert_null(strstr(err, "x7k3m9p2q8w4e6r1t5y0u3i9o"));
	assert_non_null(strstr(err, "for hook ***"));
	assert_null(strstr(err, "SEKRET-42"));
	assert_non_null(strstr(err, "attempt 3 of 3"));
	dtk_alerter_find("mattermost")->destroy(c);
	dtk_value_free(&secrets);
	dtk_value_free(&p);
	free(url);
	stub_stop(&s);
}

static void test_chat_delivery_gives_up_at_the_deadline(void **state)
{
	stub_reply r[] = {{.status = 503, .headers = "Retry-After: 30\r\n"}};
	stub_server *s = stub_start(r, 1);
	char *url = url_of(s, "/hooks/abc123");
	dtk_value *p = params_of("webhook_url", url, NULL, NULL);
	void *c = compile_ok("slack", p);
	dtk_alert_message m = message_of("anomaly", "hi", NULL);
	m.deadline_ms = dtk_now_ms() + 2000;
	char err[1024];
	double t0 = dtk_mono_ms();
	assert_int_equal(dtk_alerter_find("slack")->send(c, &m, err, sizeof(err)), -1);
	assert_true(dtk_mono_ms() - t0 < 1500);
	assert_int_equal(stub_nreqs(s), 1);
	assert_non_null(strstr(err, "would pass the deadline"));
	dtk_alerter_find("slack")->destroy(c);
	dtk_value_free(&p);
	free(url);
	stub_stop(&s);
}

/* ---- slack ---- */

static void test_slack_payload_has_icon_emoji_by_default_and_icon_url_when_given(void **state)
{
	stub_reply r[] = {{.status = 200, .body = "ok"}};
	stub_server *s = stub_start(r, 1);
	char *url = url_of(s, "/services/T0/B0/xyz");
	dtk_value *p = params_of("webhook_url", url, "channel", "#ops");
	void *c = compile_ok("slack", p);
	dtk_alert_message m = message_of("anomaly", "*ANOMALY DETECTED: orders*", NULL);
	send_ok("slack", c, &m);
	assert_string_equal(s->reqs[0].body,
			    "{\"text\":\"*ANOMALY DETECTED: orders*\",\"username\":\"DetectK\","
			    "\"icon_emoji\":\":warning:\",\"channel\":\"#ops\"}");
	dtk_alerter_find("slack")->destroy(c);
	dtk_value_free(&p);

	p = params_of("webhook_url", url, "icon_url", "https://example.com/i.png");
	dtk_value_map_set_str(p, "icon_emoji", ":moneybag:");
	c = compile_ok("slack", p);
	send_ok("slack", c, &m);
	assert_string_equal(s->reqs[1].body,
			    "{\"text\":\"*ANOMALY DETECTED: orders*\",\"username\":\"DetectK\","
			    "\"icon_url\":\"https://example.com/i.png\"}");
	dtk_alerter_find("slack")->destroy(c);
	dtk_value_free(&p);
	free(url);
	stub_stop(&s);
}

static void test_slack_default_message_uses_single_asterisk_bold(void **state)
{
	const dtk_alerter_type *slack = dtk_alerter_find("slack");
	const dtk_alerter_type *mm = dtk_alerter_find("mattermost");
	assert_int_equal(slack->bold_single, 1);
	assert_int_equal(mm->bold_single, 0);
	/* the rule alert.c applies: "*" for bold_single channels */
	dtk_config cfg = {.name = "orders"};
	char *text = dtk_message_default("recovery", &cfg, NULL, EXEC_TIME, 5.0, 0,
					 slack->bold_single ? "*" : "**", NULL, NULL);
	assert_non_null(text);
	assert_memory_equal(text, "*RECOVERED: orders*\n\n", 21);

	stub_reply r[] = {{.status = 200}};
	stub_server *s = stub_start(r, 1);
	char *url = url_of(s, "/services/x");
	dtk_value *p = params_of("webhook_url", url, NULL, NULL);
	void *c = compile_ok("slack", p);
	dtk_alert_message m = message_of("recovery", text, NULL);
	send_ok("slack", c, &m);
	assert_memory_equal(s->reqs[0].body, "{\"text\":\"*RECOVERED: orders*\\n\\n", 32);
	slack->destroy(c);
	dtk_value_free(&p);
	free(url);
	free(text);
	stub_stop(&s);
}

static void test_slack_checks_only_the_url_scheme(void **state)
{
	dtk_value *p = params_of("webhook_url", "http://chat.internal:8080/anything", NULL, NULL);
	void *c = compile_ok("slack", p);
	dtk_alerter_find("slack")->destroy(c);
	dtk_value_free(&p);
	compile_fails("slack", params_of("webhook_url", "hooks.slack.com/services/x", NULL, NULL),
		      "webhook_url: must be an http:// or https:// URL");
}

/* ---- webhook ---- */

static dtk_value *result_of(void)
{
	dtk_value *r = dtk_value_map();
	dtk_value_map_set_str(r, "metric", "orders");
	dtk_value_map_set_str(r, "status", "anomaly");
	dtk_value_map_set_num(r, "score", INFINITY);
	dtk_value_map_set_num(r, "value", 12.5);
	return r;
}

static void expect_hmac(const char *key, const stub_request *req)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	assert_non_null(HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)req->body,
			     req->body_len, md, &n));
	char want[80] = "sha256=";
	for (unsigned i = 0; i < n; i++)
		snprintf(want + 7 + 2 * i, 3, "%02x", md[i]);
	char got[128];
	assert_non_null(stub_header(req, "X-DTK-Signature", got, sizeof(got)));
	assert_string_equal(got, want);
}

static void test_webhook_posts_result_plus_message_signed_with_hmac(void **state)
{
	stub_reply r[] = {{.status = 202}};
	stub_server *s = stub_start(r, 1);
	char *url = url_of(s, "/in/dtk");
	dtk_value *p = params_of("url", url, "hmac_secret", "shh-hmac-key");
	dtk_value *h = dtk_value_map();
	dtk_value_map_set_str(h, "X-Team", "data");
	dtk_value_map_set_str(h, "Authorization", "Bearer tok-777");
	dtk_value_map_set(p, "headers", h);
	void *c = compile_ok("webhook", p);
	dtk_value *result = result_of();
	dtk_alert_message m = message_of("anomaly", "line1\nline2", NULL);
	m.result = result;
	send_ok("webhook", c, &m);
	const stub_request *req = &s->reqs[0];
	assert_string_equal(req->method, "POST");
	assert_string_equal(req->path, "/in/dtk");
	assert_string_equal(req->body,
			    "{\"metric\":\"orders\",\"status\":\"anomaly\",\"score\":\"inf\","
			    "\"value\":12.5,\"message\":\"line1\\nline2\"}");
	char v[128];
	assert_string_equal(stub_header(req, "Content-Type", v, sizeof(v)), "application/json");
	assert_string_equal(stub_header(req, "X-Team", v, sizeof(v)), "data");
	assert_string_equal(stub_header(req, "Authorization", v, sizeof(v)), "Bearer tok-777");
	expect_hmac("shh-hmac-key", req);
	dtk_alerter_find("webhook")->destroy(c);
	dtk_value_free(&result);
	dtk_value_free(&p);
	free(url);
	stub_stop(&s);
}

static void test_webhook_without_secret_sends_no_signature_and_put_works(void **state)
{
	stub_reply r[] = {{.status = 200}};
	stub_server *s = stub_start(r, 1);
	char *url = url_of(s, "/in");
	dtk_value *p = params_of("url", url, "method", "put");
	dtk_value *h = dtk_value_map();
	dtk_value_map_set_str(h, "content-type", "application/vnd.dtk+json");
	dtk_value_map_set(p, "headers", h);
	void *c = compile_ok("webhook", p);
	dtk_alert_message m = message_of("recovery", "ok again", NULL);
	send_ok("webhook", c, &m);
	const stub_request *req = &s->reqs[0];
	char v[128];
	assert_string_equal(req->method, "PUT");
	assert_string_equal(req->body, "{\"message\":\"ok again\"}");
	assert_null(stub_header(req, "X-DTK-Signature", v, sizeof(v)));
	assert_string_equal(stub_header(req, "Content-Type", v, sizeof(v)),
			    "application/vnd.dtk+json");
	assert_int_equal(memmem(req->head, strlen(req->head), "application/json", 16) == NULL, 1);
	dtk_alerter_find("webhook")->destroy(c);
	dtk_value_free(&p);
	free(url);
	stub_stop(&s);
}

static void test_webhook_failure_masks_path_hmac_secret_and_secret_headers(void **state)
{
	stub_reply r[] = {{.status = 401, .body = "bad key shh-hmac-key / tok-777 / ENVSECRET"}};
	stub_server *s = stub_start(r, 1);
	char *url = url_of(s, "/in/private-path");
	dtk_value *p = params_of("url", url, "hmac_secret", "shh-hmac-key");
	dtk_value *h = dtk_value_map();
	dtk_value_map_set_str(h, "X-Api-Key", "tok-777");
	dtk_value_map_set(p, "headers", h);
	void *c = compile_ok("webhook", p);
	dtk_value *secrets = str_list("ENVSECRET", NULL);
	dtk_alert_message m = message_of("anomaly", "x", NULL);
	m.secrets = secrets;
	char err[1024];
	assert_int_equal(dtk_alerter_find("webhook")->send(c, &m, err, sizeof(err)), -1);
	char want[256];
	snprintf(want, sizeof(want),
		 "webhook: HTTP 401 from http://127.0.0.1:%d/***: bad key *** / *** / ***",
		 s->port);
	assert_string_equal(err, want);
	assert_int_equal(stub_nreqs(s), 1); /* a 4xx is not retried */
	dtk_alerter_find("webhook")->destroy(c);
	dtk_value_free(&secrets);
	dtk_value_free(&p);
	free(url);
	stub_stop(&s);
}

static void test_webhook_compile_checks_url_method_and_headers(void **state)
{
	compile_fails("webhook", params_of("method", "POST", NULL, NULL),
		      "url: required (where to send the alert)");
	compile_fails("webhook", params_of("url", "https://h/x", "method", "GET"),
		      "method: must be POST or PUT (the alert is the body)");
	dtk_value *p = params_of("url", "https://h/x", NULL, NULL);
	dtk_value_map_set(p, "headers", str_list("a", NULL));
	compile_fails("webhook", p, "headers: must be a mapping of header names to values");
	p = params_of("url", "https://h/x", NULL, NULL);
	dtk_value *h = dtk_value_map();
	dtk_value_map_set_str(h, "Bad Name", "x");
	dtk_value_map_set(p, "headers", h);
	compile_fails("webhook", p, "headers: 'Bad Name' is not a header name");
	p = params_of("url", "https://h/x", NULL, NULL);
	h = dtk_value_map();
	dtk_value_map_set_str(h, "X-A", "x\r\nX-Injected: 1");
	dtk_value_map_set(p, "headers", h);
	compile_fails("webhook", p, "headers: the value of 'X-A' has a control character");
	compile_fails("webhook", params_of("url", "https://h/x", "hmac_secret", ""),
		      "hmac_secret: must not be empty");
}

/* ---- alertmanager ---- */

static void
test_alertmanager_anomaly_posts_labels_annotations_and_ends_two_intervals_later(void **state)
{
	stub_reply r[] = {{.status = 200}};
	stub_server *s = stub_start(r, 1);
	char *url = url_of(s, "/");
	dtk_value *p = params_of("url", url, "generator_url", "https://grafana.example.com/d/1");
	dtk_value *labels = dtk_value_map();
	dtk_value_map_set_str(labels, "severity", "critical");
	dtk_value_map_set_str(labels, "team", "shop");
	dtk_value_map_set(p, "labels", labels);
	dtk_value *ann = dtk_value_map();
	dtk_value_map_set_str(ann, "runbook_url", "https://wiki/r");
	dtk_value_map_set(p, "annotations", ann);
	void *c = compile_ok("alertmanager", p);
	const dtk_alerter_type *t = dtk_alerter_find("alertmanager");
	assert_int_equal(t->repost_while_firing, 1);
	assert_null(t->rate_key);
	dtk_value *vars = vars_of("mad_1");
	dtk_alert_message m =
	    message_of("anomaly", "**ANOMALY DETECTED: orders**\n\nValue: 3.00", vars);
	send_ok("alertmanager", c, &m);
	const stub_request *req = &s->reqs[0];
	assert_string_equal(req->method, "POST");
	assert_string_equal(req->path, "/api/v2/alerts");
	assert_string_equal(
	    req->body,
	    "[{\"labels\":{\"alertname\":\"dtk\",\"metric\":\"orders\",\"detector\":\"mad_1\","
	    "\"severity\":\"critical\",\"tags\":\"shop,critical\",\"team\":\"shop\"},"
	    "\"annotations\":{\"summary\":\"**ANOMALY DETECTED: orders**\","
	    "\"description\":\"**ANOMALY DETECTED: orders**\\n\\nValue: 3.00\","
	    "\"runbook_url\":\"https://wiki/r\"},"
	    "\"startsAt\":\"2024-11-02T14:30:00Z\",\"endsAt\":\"2024-11-02T14:50:00Z\","
	    "\"generatorURL\":\"https://grafana.example.com/d/1\"}]");
	t->destroy(c);
	dtk_value_free(&vars);
	dtk_value_free(&p);
	free(url);
	stub_stop(&s);
}

static void test_alertmanager_recovery_ends_now_for_every_detector(void **state)
{
	stub_reply r[] = {{.status = 200}};
	stub_server *s = stub_start(r, 1);
	char *url = url_of(s, "");
	dtk_value *p = params_of("url", url, NULL, NULL);
	void *c = compile_ok("alertmanager", p);
	dtk_value *vars = vars_of(NULL);
	dtk_alert_message m = message_of("recovery", "RECOVERED", vars);
	send_ok("alertmanager", c, &m);
	const stub_request *req = &s->reqs[0];
	assert_string_equal(req->path, "/api/v2/alerts");
	const char *one = "{\"labels\":{\"alertname\":\"dtk\",\"metric\":\"orders\",\"detector\":"
			  "\"%s\",\"severity\":\"warning\",\"tags\":\"shop,critical\"},"
			  "\"annotations\":{\"summary\":\"RECOVERED\",\"description\":"
			  "\"RECOVERED\"},\"startsAt\":\"2024-11-02T14:30:00Z\",\"endsAt\":"
			  "\"2024-11-02T14:45:00.250Z\"}";
	char a1[512], a2[512], want[1100];
	snprintf(a1, sizeof(a1), one, "mad_1");
	snprintf(a2, sizeof(a2), one, "zscore_2");
	snprintf(want, sizeof(want), "[%s,%s]", a1, a2);
	assert_string_equal(req->body, want);
	dtk_alerter_find("alertmanager")->destroy(c);
	dtk_value_free(&vars);
	dtk_value_free(&p);
	free(url);
	stub_stop(&s);
}

static void test_alertmanager_posts_to_every_peer_and_succeeds_with_one_down(void **state)
{
	stub_reply r[] = {{.status = 200}};
	stub_server *up1 = stub_start(r, 1);
	stub_server *up2 = stub_start(r, 1);
	char down[128];
	snprintf(down, sizeof(down), "http://127.0.0.1:%d", stub_closed_port());
	char *u1 = url_of(up1, "/am/"), *u2 = url_of(up2, "");
	dtk_value *p = dtk_value_map();
	dtk_value *peers = str_list(u1, down);
	dtk_value_list_push(peers, dtk_value_str(u2));
	dtk_value_map_set(p, "url", peers);
	void *c = compile_ok("alertmanager", p);
	dtk_value *vars = vars_of("mad_1");
	dtk_alert_message m = message_of("missing", "MISSING DATA", vars);
	m.deadline_ms = dtk_now_ms() + 1500; /* no time for the down peer's retries */
	send_ok("alertmanager", c, &m);
	assert_int_equal(stub_nreqs(up1), 1);
	assert_int_equal(stub_nreqs(up2), 1);
	assert_string_equal(up1->reqs[0].path, "/am/api/v2/alerts");
	assert_string_equal(up1->reqs[0].body, up2->reqs[0].body);
	dtk_alerter_find("alertmanager")->destroy(c);
	dtk_value_free(&p);
	stub_stop(&up1);
	stub_stop(&up2);

	/* every peer down: the error names each failure */
	char down2[128];
	snprintf(down2, sizeof(down2), "http://127.0.0.1:%d", stub_closed_port());
	p = dtk_value_map();
	dtk_value_map_set(p, "url", str_list(down, down2));
	c = compile_ok("alertmanager", p);
	m.deadline_ms = dtk_now_ms() + 1500;
	char err[2048];
	assert_int_equal(dtk_alerter_find("alertmanager")->send(c, &m, err, sizeof(err)), -1);
	char want1[200], want2[200];
	snprintf(want1, sizeof(want1), "cannot connect to %s/api/v2/alerts", down);
	snprintf(want2, sizeof(want2), "; cannot connect to %s/api/v2/alerts", down2);
	assert_memory_equal(err, "alertmanager: no peer accepted the alert: ", 42);
	assert_non_null(strstr(err, want1));
	assert_non_null(strstr(err, want2));
	dtk_alerter_find("alertmanager")->destroy(c);
	dtk_value_free(&vars);
	dtk_value_free(&p);
	free(u1);
	free(u2);
}

static void test_alertmanager_compile_checks_urls_and_label_names(void **state)
{
	compile_fails("alertmanager", dtk_value_map(),
		      "url: required (the Alertmanager URL, or a list of its peers)");
	dtk_value *p = dtk_value_map();
	dtk_value_map_set(p, "url", str_list("http://am1:9093", "am2:9093"));
	compile_fails("alertmanager", p, "url: 'am2:9093' must be an http:// or https:// URL");
	p = params_of("url", "http://am:9093", NULL, NULL);
	dtk_value *labels = dtk_value_map();
	dtk_value_map_set_str(labels, "metric", "x");
	dtk_value_map_set(p, "labels", labels);
	compile_fails("alertmanager", p, "labels: 'metric' is set by DetectK");
	p = params_of("url", "http://am:9093", NULL, NULL);
	labels = dtk_value_map();
	dtk_value_map_set_str(labels, "team-name", "x");
	dtk_value_map_set(p, "labels", labels);
	compile_fails("alertmanager", p,
		      "labels: 'team-name' is not a valid name ([a-zA-Z_][a-zA-Z0-9_]*)");
	compile_fails("alertmanager", params_of("url", "http://am:9093", "generator_url", "x"),
		      "generator_url: must be an http:// or https:// URL");
}

static void test_every_http_alerter_is_registered_with_its_params(void **state)
{
	const char *names[] = {"mattermost", "slack", "webhook", "alertmanager"};
	for (size_t i = 0; i < 4; i++) {
		const dtk_alerter_type *t = dtk_alerter_find(names[i]);
		assert_non_null(t);
		int has_timeout = 0;
		for (const char *const *k = t->known_params; *k; k++)
			has_timeout |= strcmp(*k, "timeout") == 0;
		assert_true(has_timeout);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mattermost_posts_text_username_icon_and_channel),
	    cmocka_unit_test(test_mattermost_defaults_username_and_leaves_out_absent_fields),
	    cmocka_unit_test(test_mattermost_compile_checks_params_without_connecting),
	    cmocka_unit_test(
		test_mattermost_failure_retries_three_times_and_masks_path_and_secrets),
	    cmocka_unit_test(test_chat_delivery_gives_up_at_the_deadline),
	    cmocka_unit_test(test_slack_payload_has_icon_emoji_by_default_and_icon_url_when_given),
	    cmocka_unit_test(test_slack_default_message_uses_single_asterisk_bold),
	    cmocka_unit_test(test_slack_checks_only_the_url_scheme),
	    cmocka_unit_test(test_webhook_posts_result_plus_message_signed_with_hmac),
	    cmocka_unit_test(test_webhook_without_secret_sends_no_signature_and_put_works),
	    cmocka_unit_test(test_webhook_failure_masks_path_hmac_secret_and_secret_headers),
	    cmocka_unit_test(test_webhook_compile_checks_url_method_and_headers),
	    cmocka_unit_test(
		test_alertmanager_anomaly_posts_labels_annotations_and_ends_two_intervals_later),
	    cmocka_unit_test(test_alertmanager_recovery_ends_now_for_every_detector),
	    cmocka_unit_test(test_alertmanager_posts_to_every_peer_and_succeeds_with_one_down),
	    cmocka_unit_test(test_alertmanager_compile_checks_urls_and_label_names),
	    cmocka_unit_test(test_every_http_alerter_is_registered_with_its_params),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
