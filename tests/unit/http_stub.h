/* A scripted HTTP/1.1 server on 127.0.0.1:0 in a thread, for the tests of
 * util/http (test_http.c) and the HTTP alerters (test_alert_channels.c).
 * Test-only: static functions, included by each test program. */
#ifndef DTK_TEST_HTTP_STUB_H
#define DTK_TEST_HTTP_STUB_H

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

#endif
