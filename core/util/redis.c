/* redis.h over hiredis 0.14's blocking API.
 *
 * hiredis writes with write(2), so a server that closed the connection
 * raises SIGPIPE; every call that touches the socket blocks SIGPIPE in the
 * calling thread and consumes one it caused (curl's sigpipe_ignore idea),
 * leaving the process's signal dispositions alone. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include "util/redis.h"

struct dtk_redis {
	dtk_redis_url url;
	int timeout_ms;
	redisContext *ctx; /* NULL while disconnected */
};

/* ---- URL ---- */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes s[0..len) into out. -1 when it does not fit or a %
 * escape is malformed. */
static int pct_decode(const char *s, size_t len, char *out, size_t outsz)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)s[i];
		if (c == '%') {
			if (i + 2 >= len)
				return -1;
			int h = hexval((unsigned char)s[i + 1]),
			    l = hexval((unsigned char)s[i + 2]);
			if (h < 0 || l < 0)
				return -1;
			c = h * 16 + l;
			i += 2;
		}
		if (c == 0 || o + 1 >= outsz)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

/* A decimal number of 1..9 digits in s[0..len) within [lo, hi]. */
static int parse_uint(const char *s, size_t len, long lo, long hi, int *out)
{
	long v = 0;
	if (len == 0 || len > 9)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

int dtk_redis_url_parse(const char *url, dtk_redis_url *out, char *errstr, size_t errstr_size)
{
	memset(out, 0, sizeof(*out));
	out->port = DTK_REDIS_DEFAULT_PORT;
	if (!url || !*url) {
		snprintf(errstr, errstr_size, "Redis URL: empty");
		return -1;
	}
	if (strncasecmp(url, "rediss://", 9) == 0) {
		snprintf(errstr, errstr_size,
			 "Redis URL: rediss:// (TLS) is not available with this hiredis; use "
			 "redis:// through a TLS proxy");
		return -1;
	}
	if (strncasecmp(url, "redis://", 8) != 0) {
		snprintf(errstr, errstr_size,
			 "Redis URL: must start with redis:// (redis://[:password@]host:port/db)");
		return -1;
	}
	const char *auth = url + 8;
	size_t alen = strcspn(auth, "/?#");
	const char *rest = auth + alen;
	if (*rest == '?' || *rest == '#' || (*rest == '/' && strpbrk(rest, "?#"))) {
		snprintf(errstr, errstr_size, "Redis URL: query parameters are not supported");
		return -1;
	}
	/* user-info ends at the last '@' of the authority (a password may
	 * hold an unescaped '@') */
	const char *at = NULL;
	for (const char *p = auth; p < rest; p++)
		if (*p == '@')
			at = p;
	const char *host = auth;
	if (at) {
		const char *colon = memchr(auth, ':', (size_t)(at - auth));
		int bad;
		if (colon)
			bad = pct_decode(auth, (size_t)(colon - auth), out->user,
					 sizeof(out->user)) != 0 ||
			      pct_decode(colon + 1, (size_t)(at - colon - 1), out->password,
					 sizeof(out->password)) != 0;
		else /* redis://secret@host: the pre-ACL form, a password alone */
			bad = pct_decode(auth, (size_t)(at - auth), out->password,
					 sizeof(out->password)) != 0;
		if (bad) {
			snprintf(errstr, errstr_size,
				 "Redis URL: the user-info is too long or badly %%-escaped");
			goto fail;
		}
		host = at + 1;
	}
	const char *hend, *port = NULL;
	if (*host == '[') {
		const char *close = memchr(host, ']', (size_t)(rest - host));
		if (!close) {
			snprintf(errstr, errstr_size, "Redis URL: unclosed [ in the host");
			goto fail;
		}
		hend = close;
		host++;
		if (close + 1 < rest) {
			if (close[1] != ':') {
				snprintf(errstr, errstr_size, "Redis URL: junk after ]");
				goto fail;
			}
			port = close + 2;
		}
	} else {
		const char *colon = memchr(host, ':', (size_t)(rest - host));
		hend = colon ? colon : rest;
		if (colon)
			port = colon + 1;
	}
	size_t hlen = (size_t)(hend - host);
	if (hlen == 0 || hlen >= sizeof(out->host)) {
		snprintf(errstr, errstr_size, "Redis URL: %s host", hlen ? "too long a" : "no");
		goto fail;
	}
	memcpy(out->host, host, hlen);
	out->host[hlen] = '\0';
	if (port && parse_uint(port, (size_t)(rest - port), 1, 65535, &out->port) != 0) {
		snprintf(errstr, errstr_size, "Redis URL: the port must be a number 1..65535");
		goto fail;
	}
	if (*rest == '/' && rest[1] &&
	    parse_uint(rest + 1, strlen(rest + 1), 0, 1000000, &out->db) != 0) {
		snprintf(errstr, errstr_size,
			 "Redis URL: the path must be a database number (/0, /1, ...)");
		goto fail;
	}
	int bracket = strchr(out->host, ':') != NULL;
	snprintf(out->shown, sizeof(out->shown), "redis://%s%s%s%s:%d/%d", at ? "***@" : "",
		 bracket ? "[" : "", out->host, bracket ? "]" : "", out->port, out->db);
	return 0;
fail:
	memset(out, 0, sizeof(*out));
	return -1;
}

void dtk_redis_mask(char *s, size_t size, const char *secret)
{
	size_t slen = secret ? strlen(secret) : 0;
	if (!s || size == 0 || slen == 0 || !strstr(s, secret))
		return;
	char *tmp = malloc(size);
	if (!tmp) {
		/* cannot rebuild: say nothing rather than the secret */
		snprintf(s, size, "***");
		return;
	}
	size_t o = 0;
	const char *p = s;
	while (*p && o + 1 < size) {
		if (strncmp(p, secret, slen) == 0) {
			for (const char *m = "***"; *m && o + 1 < size; m++)
				tmp[o++] = *m;
			p += slen;
		} else {
			tmp[o++] = *p++;
		}
	}
	tmp[o] = '\0';
	memcpy(s, tmp, o + 1);
	free(tmp);
}

/* ---- SIGPIPE ---- */

typedef struct sigpipe_guard {
	sigset_t old;
	int was_blocked;
} sigpipe_guard;

static void sigpipe_block(sigpipe_guard *g)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
	g->was_blocked = sigismember(&g->old, SIGPIPE);
}

static void sigpipe_restore(sigpipe_guard *g)
{
	if (g->was_blocked)
		return;
	sigset_t set, pending;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
		struct timespec zero = {0, 0};
		while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* ---- connection ---- */

static struct timeval tv_of(int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	return tv;
}

static void drop(dtk_redis *r)
{
	if (r->ctx) {
		redisFree(r->ctx);
		r->ctx = NULL;
	}
}

static void set_err(const dtk_redis *r, char *errstr, size_t errstr_size, const char *what,
		    const char *detail)
{
	snprintf(errstr, errstr_size, "Redis %s: %s%s%s", r->url.shown, what, detail ? ": " : "",
		 detail ? detail : "");
	dtk_redis_mask(errstr, errstr_size, r->url.password);
}

/* One command on the current context; hiredis's reply or NULL (the
 * context is then broken and ctx->errstr says why). */
static redisReply *raw_command(dtk_redis *r, int argc, const char **argv, const size_t *argvlen)
{
	size_t lens[64];
	size_t *heap = NULL;
	const size_t *use = argvlen;
	if (!use) {
		size_t *l = lens;
		if ((size_t)argc > sizeof(lens) / sizeof(lens[0])) {
			heap = malloc((size_t)argc * sizeof(*heap));
			if (!heap)
				return NULL;
			l = heap;
		}
		for (int i = 0; i < argc; i++)
			l[i] = strlen(argv[i]);
		use = l;
	}
	redisReply *rep = redisCommandArgv(r->ctx, argc, argv, use);
	free(heap);
	return rep;
}

/* Connects, authenticates and selects the database. 0, or -1 with
 * errstr and no context. */
static int connect_now(dtk_redis *r, char *errstr, size_t errstr_size)
{
	drop(r);
	r->ctx = redisConnectWithTimeout(r->url.host, r->url.port, tv_of(r->timeout_ms));
	if (!r->ctx) {
		set_err(r, errstr, errstr_size, "cannot connect", "out of memory");
		return -1;
	}
	if (r->ctx->err) {
		set_err(r, errstr, errstr_size, "cannot connect", r->ctx->errstr);
		goto fail;
	}
	if (redisSetTimeout(r->ctx, tv_of(r->timeout_ms)) != REDIS_OK) {
		set_err(r, errstr, errstr_size, "cannot set the timeout", r->ctx->errstr);
		goto fail;
	}
	if (r->url.password[0]) {
		const char *argv[3] = {"AUTH", r->url.user, r->url.password};
		int argc = r->url.user[0] ? 3 : 2;
		if (argc == 2)
			argv[1] = r->url.password;
		redisReply *rep = raw_command(r, argc, argv, NULL);
		if (!rep || rep->type == REDIS_REPLY_ERROR) {
			set_err(r, errstr, errstr_size, "AUTH failed",
				rep ? rep->str : r->ctx->errstr);
			if (rep)
				freeReplyObject(rep);
			goto fail;
		}
		freeReplyObject(rep);
	}
	if (r->url.db != 0) {
		char db[16];
		snprintf(db, sizeof(db), "%d", r->url.db);
		const char *argv[2] = {"SELECT", db};
		redisReply *rep = raw_command(r, 2, argv, NULL);
		if (!rep || rep->type == REDIS_REPLY_ERROR) {
			set_err(r, errstr, errstr_size, "SELECT failed",
				rep ? rep->str : r->ctx->errstr);
			if (rep)
				freeReplyObject(rep);
			goto fail;
		}
		freeReplyObject(rep);
	}
	return 0;
fail:
	drop(r);
	return -1;
}

dtk_redis *dtk_redis_new(const char *url, int timeout_ms, char *errstr, size_t errstr_size)
{
	dtk_redis *r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(errstr, errstr_size, "Redis: out of memory");
		return NULL;
	}
	if (dtk_redis_url_parse(url, &r->url, errstr, errstr_size) != 0) {
		free(r);
		return NULL;
	}
	r->timeout_ms = timeout_ms > 0 ? timeout_ms : DTK_REDIS_DEFAULT_TIMEOUT_MS;
	return r;
}

dtk_redis *dtk_redis_connect(const char *url, int timeout_ms, char *errstr, size_t errstr_size)
{
	dtk_redis *r = dtk_redis_new(url, timeout_ms, errstr, errstr_size);
	if (!r)
		return NULL;
	sigpipe_guard g;
	sigpipe_block(&g);
	int rc = connect_now(r, errstr, errstr_size);
	sigpipe_restore(&g);
	if (rc != 0)
		dtk_redis_free(&r);
	return r;
}

void dtk_redis_free(dtk_redis **rp)
{
	if (!rp || !*rp)
		return;
	drop(*rp);
	memset((*rp)->url.password, 0, sizeof((*rp)->url.password));
	free(*rp);
	*rp = NULL;
}

const char *dtk_redis_shown(const dtk_redis *r)
{
	return r->url.shown;
}

/* ---- replies ---- */

static void reply_clear(dtk_redis_reply *x)
{
	free(x->str);
	for (size_t i = 0; i < x->nelem; i++)
		reply_clear(&x->elem[i]);
	free(x->elem);
	memset(x, 0, sizeof(*x));
}

void dtk_redis_reply_free(dtk_redis_reply *reply)
{
	if (reply)
		reply_clear(reply);
}

static int reply_copy(const dtk_redis *r, const redisReply *in, dtk_redis_reply *out)
{
	memset(out, 0, sizeof(*out));
	switch (in->type) {
	case REDIS_REPLY_STRING:
	case REDIS_REPLY_STATUS:
	case REDIS_REPLY_ERROR:
		out->type = in->type == REDIS_REPLY_ERROR ? DTK_REDIS_ERROR : DTK_REDIS_STRING;
		out->len = in->len;
		out->str = malloc(in->len + 1);
		if (!out->str)
			return -1;
		memcpy(out->str, in->str, in->len);
		out->str[in->len] = '\0';
		if (out->type == DTK_REDIS_ERROR) {
			dtk_redis_mask(out->str, in->len + 1, r->url.password);
			out->len = strlen(out->str);
		}
		return 0;
	case REDIS_REPLY_INTEGER:
		out->type = DTK_REDIS_INTEGER;
		out->integer = in->integer;
		return 0;
	case REDIS_REPLY_ARRAY:
		out->type = DTK_REDIS_ARRAY;
		if (in->elements == 0)
			return 0;
		out->elem = calloc(in->elements, sizeof(*out->elem));
		if (!out->elem)
			return -1;
		out->nelem = in->elements;
		for (size_t i = 0; i < in->elements; i++)
			if (reply_copy(r, in->element[i], &out->elem[i]) != 0)
				return -1;
		return 0;
	default:
		out->type = DTK_REDIS_NIL;
		return 0;
	}
}

int dtk_redis_command(dtk_redis *r, int argc, const char **argv, const size_t *argvlen,
		      dtk_redis_reply *out, char *errstr, size_t errstr_size)
{
	int rc = -1;
	redisReply *rep = NULL;
	sigpipe_guard g;
	memset(out, 0, sizeof(*out));
	sigpipe_block(&g);
	int reused = r->ctx != NULL;
	if (!r->ctx && connect_now(r, errstr, errstr_size) != 0)
		goto out;
	rep = raw_command(r, argc, argv, argvlen);
	if (!rep && reused) {
		/* a pooled connection the server closed or that broke since its
		 * last use: one new connection, one more try */
		if (connect_now(r, errstr, errstr_size) != 0)
			goto out;
		rep = raw_command(r, argc, argv, argvlen);
	}
	if (!rep) {
		set_err(r, errstr, errstr_size, "command failed",
			r->ctx && r->ctx->err ? r->ctx->errstr : "out of memory");
		drop(r);
		goto out;
	}
	if (reply_copy(r, rep, out) != 0) {
		reply_clear(out);
		set_err(r, errstr, errstr_size, "reading a reply", "out of memory");
		goto out;
	}
	rc = 0;
out:
	if (rep)
		freeReplyObject(rep);
	sigpipe_restore(&g);
	return rc;
}

int dtk_redis_eval(dtk_redis *r, const char *script, const char *sha1, int nkeys,
		   const char *const *keys, int nargs, const char *const *args,
		   dtk_redis_reply *out, char *errstr, size_t errstr_size)
{
	int argc = 3 + nkeys + nargs, rc = -1;
	const char **argv = calloc((size_t)argc, sizeof(*argv));
	char n[16];
	if (!argv) {
		snprintf(errstr, errstr_size, "Redis: out of memory");
		return -1;
	}
	snprintf(n, sizeof(n), "%d", nkeys);
	argv[0] = "EVALSHA";
	argv[1] = sha1;
	argv[2] = n;
	for (int i = 0; i < nkeys; i++)
		argv[3 + i] = keys[i];
	for (int i = 0; i < nargs; i++)
		argv[3 + nkeys + i] = args[i];
	rc = dtk_redis_command(r, argc, argv, NULL, out, errstr, errstr_size);
	if (rc == 0 && out->type == DTK_REDIS_ERROR && strncmp(out->str, "NOSCRIPT", 8) == 0) {
		dtk_redis_reply_free(out);
		argv[0] = "EVAL";
		argv[1] = script;
		rc = dtk_redis_command(r, argc, argv, NULL, out, errstr, errstr_size);
	}
	free(argv);
	return rc;
}

int dtk_redis_script_sha1(const char *script, char out[41])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (EVP_Digest(script, strlen(script), md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20)
		return -1;
	for (unsigned int i = 0; i < mdlen; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}
