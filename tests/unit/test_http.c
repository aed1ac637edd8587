/* util/http: retries, Retry-After, deadlines, bounded bodies, masked
 * errors and keep-alive, against a scripted HTTP server in a thread.
 *
 * The first part (the stub server) is shared: test_alert_channels.c
 * includes this file with DTK_TEST_HTTP_STUB_ONLY defined. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/clock.h"
#include "util/http.h"
#include "util/value.h"

/* ---- a scripted HTTP/1.1 server on 127.0.0.1:0 ---- */

#define STUB_MAX_REPLIES 16
#define STUB_MAX_REQUESTS 32
#define STUB_MAX_CONNS 8

typedef struct stub_reply {
	int status;
	const char *headers; /* extra header lines, each ending in \r\n */
	const char *body;
	size_t big; /* when non-zero, a body of this many 'x' instead */
	int delay_ms;
} stub_reply;

typedef struct stub_request {
	char method[16];
	char path[512];
	char *head; /* the request line and headers */
	char *body;
	size_t body_len;
	int conn; /* which accepted connection carried it (1-based) */
} stub_request;

typedef struct stub_conn {
	int fd;
	int id;
	char *buf;
	size_t len, cap;
} stub_conn;

typedef struct stub_server {
	int listen_fd;
	int port;
	pthread_t thread;
	pthread_mutex_t mu;
	int stop;
	stub_reply replies[STUB_MAX_REPLIES];
	size_t nreplies; /* the last reply repeats once the script runs out */
	stub_request reqs[STUB_MAX_REQUESTS];
	size_t nreqs;
	int connections;
	stub_conn conns[STUB_MAX_CONNS];
} stub_server;

static void stub_send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void stub_reply_to(stub_server *s, stub_conn *c, size_t index)
{
	stub_reply r = s->replies[index < s->nreplies ? index : s->nreplies - 1];
	if (r.delay_ms > 0)
		dtk_sleep_ms(r.delay_ms);
	char *big = NULL;
	const char *body = r.body ? r.body : "";
	size_t blen = strlen(body);
	if (r.big) {
		big = malloc(r.big);
		assert_non_null(big);
		memset(big, 'x', r.big);
		body = big;
		blen = r.big;
	}
	char head[1024];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d Stub\r\nContent-Length: %zu\r\n"
			 "Content-Type: application/json\r\n%s\r\n",
			 r.status, blen, r.headers ? r.headers : "");
	stub_send_all(c->fd, head, (size_t)n);
	stub_send_all(c->fd, body, blen);
	free(big);
}

/* Serves every complete request buffered on c; 0, or -1 on a bad request. */
static int stub_serve(stub_server *s, stub_conn *c)
{
	for (;;) {
		char *end = c->buf ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
		if (!end)
			return 0;
		size_t head_len = (size_t)(end - c->buf) + 4;
		size_t body_len = 0;
		for (const char *p = c->buf; p && p < end;) {
			if (strncasecmp(p, "Content-Length:", 15) == 0)
				body_len = strtoul(p + 15, NULL, 10);
			p = memchr(p, '\n', (size_t)(end - p));
			p = p ? p + 1 : NULL;
		}
		if (c->len < head_len + body_len)
			return 0;
		pthread_mutex_lock(&s->mu);
		size_t index = s->nreqs;
		if (s->nreqs < STUB_MAX_REQUESTS) {
			stub_request *r = &s->reqs[s->nreqs++];
			sscanf(c->buf, "%15s %511s", r->method, r->path);
			r->head = strndup(c->buf, head_len);
			r->body = strndup(c->buf + head_len, body_len);
			r->body_len = body_len;
			r->conn = c->id;
		}
		pthread_mutex_unlock(&s->mu);
		stub_reply_to(s, c, index);
		memmove(c->buf, c->buf + head_len + body_len, c->len - head_len - body_len);
		c->len -= head_len + body_len;
		c->buf[c->len] = '\0';
	}
}

static void stub_close(stub_conn *c)
{
	close(c->fd);
	free(c->buf);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

static void *stub_main(void *arg)
{
	stub_server *s = arg;
	for (;;) {
		pthread_mutex_lock(&s->mu);
		int stop = s->stop;
		pthread_mutex_unlock(&s->mu);
		if (stop)
			break;
		struct pollfd pfd[STUB_MAX_CONNS + 1];
		pfd[0] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
		for (int i = 0; i < STUB_MAX_CONNS; i++)
			pfd[i + 1] = (struct pollfd){.fd = s->conns[i].fd, .events = POLLIN};
		if (poll(pfd, STUB_MAX_CONNS + 1, 20) <= 0)
			continue;
		if (pfd[0].revents & POLLIN) {
			int fd = accept(s->listen_fd, NULL, NULL);
			int placed = 0;
			for (int i = 0; fd >= 0 && i < STUB_MAX_CONNS && !placed; i++)
				if (s->conns[i].fd < 0) {
					pthread_mutex_lock(&s->mu);
					s->conns[i].id = ++s->connections;
					pthread_mutex_unlock(&s->mu);
					s->conns[i].fd = fd;
					placed = 1;
				}
			if (fd >= 0 && !placed)
				close(fd);
		}
		for (int i = 0; i < STUB_MAX_CONNS; i++) {
			stub_conn *c = &s->conns[i];
			if (c->fd < 0 || !(pfd[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (c->cap - c->len < 4096) {
				c->cap = c->cap ? c->cap * 2 : 8192;
				c->buf = realloc(c->buf, c->cap);
				assert_non_null(c->buf);
			}
			/* one byte stays free for the NUL that sscanf needs */
			ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
			if (n <= 0) {
				stub_close(c);
				continue;
			}
			c->len += (size_t)n;
			c->buf[c->len] = '\0';
			if (stub_serve(s, c) != 0)
				stub_close(c);
		}
	}
	for (int i = 0; i < STUB_MAX_CONNS; i++)
		if (s->conns[i].fd >= 0)
			stub_close(&s->conns[i]);
	return NULL;
}

/* Starts a server that answers with replies in order (the last repeats).
 * Owned by the caller: stub_stop frees it. */
static stub_server *stub_start(const stub_reply *replies, size_t n)
{
	stub_server *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	assert_true(n > 0 && n <= STUB_MAX_REPLIES);
	memcpy(s->replies, replies, n * sizeof(*replies));
	s->nreplies = n;
	for (int i = 0; i < STUB_MAX_CONNS; i++)
		s->conns[i].fd = -1;
	s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->listen_fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->listen_fd, 16), 0);
	socklen_t alen = sizeof(a);
	assert_int_equal(getsockname(s->listen_fd, (struct sockaddr *)&a, &alen), 0);
	s->port = ntohs(a.sin_port);
	pthread_mutex_init(&s->mu, NULL);
	assert_int_equal(pthread_create(&s->thread, NULL, stub_main, s), 0);
	return s;
}

static void stub_stop(stub_server **sp)
{
	stub_server *s = *sp;
	pthread_mutex_lock(&s->mu);
	s->stop = 1;
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	close(s->listen_fd);
	for (size_t i = 0; i < s->nreqs; i++) {
		free(s->reqs[i].head);
		free(s->reqs[i].body);
	}
	pthread_mutex_destroy(&s->mu);
	free(s);
	*sp = NULL;
}

static size_t stub_nreqs(stub_server *s)
{
	pthread_mutex_lock(&s->mu);
	size_t n = s->nreqs;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* The value of header name in request r (NULL when absent), copied into out. */
static const char *stub_header(const stub_request *r, const char *name, char *out, size_t outsz)
{
	size_t nlen = strlen(name);
	for (const char *p = strstr(r->head, "\r\n"); p && p[2] != '\r';
	     p = strstr(p + 2, "\r\n")) {
		const char *line = p + 2;
		if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
			const char *v = line + nlen + 1;
			while (*v == ' ')
				v++;
			size_t vlen = strcspn(v, "\r");
			snprintf(out, outsz, "%.*s", (int)vlen, v);
			return out;
		}
	}
	return NULL;
}

/* A port on 127.0.0.1 where nothing listens. */
static int stub_closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	close(fd);
	return ntohs(a.sin_port);
}

#ifndef DTK_TEST_HTTP_STUB_ONLY

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

#endif
