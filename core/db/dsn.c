/* Connection strings of server databases (dsn.h). */
#include "db/dsn.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *dtk_dsn_decode(const char *s, size_t n, int plus_space)
{
	char *out = malloc(n + 1);
	size_t j = 0;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
			int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				free(out);
				return NULL;
			}
			out[j++] = (char)(hi * 16 + lo);
			i += 2;
			continue;
		}
		out[j++] = plus_space && s[i] == '+' ? ' ' : s[i];
	}
	out[j] = '\0';
	return out;
}

int dtk_dsn_encode(dtk_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~')
			dtk_buf_addc(b, (char)*p);
		else
			dtk_buf_printf(b, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
	}
	return b->failed ? -1 : 0;
}

/* The first c in [from, to), or NULL. */
static const char *find(const char *from, const char *to, char c)
{
	for (const char *p = from; p < to; p++)
		if (*p == c)
			return p;
	return NULL;
}

void dtk_dsn_clear(dtk_dsn *d)
{
	free(d->scheme);
	free(d->user);
	free(d->password);
	free(d->host);
	free(d->database);
	for (size_t i = 0; i < d->nparams; i++) {
		free(d->keys[i]);
		free(d->vals[i]);
	}
	memset(d, 0, sizeof(*d));
}

static int parse_query(const char *q, dtk_dsn *d, char *errstr, size_t errstr_size)
{
	while (*q) {
		size_t n = strcspn(q, "&");
		const char *eq = memchr(q, '=', n);
		if (n > 0) {
			if (!eq || eq == q) {
				snprintf(errstr, errstr_size,
					 "expected key=value parameters after '?'");
				return -1;
			}
			if (d->nparams == DTK_DSN_MAX_PARAMS) {
				snprintf(errstr, errstr_size, "more than %d parameters",
					 DTK_DSN_MAX_PARAMS);
				return -1;
			}
			d->keys[d->nparams] = dtk_dsn_decode(q, (size_t)(eq - q), 1);
			d->vals[d->nparams] = dtk_dsn_decode(eq + 1, n - (size_t)(eq + 1 - q), 1);
			d->nparams++;
			if (!d->keys[d->nparams - 1] || !d->vals[d->nparams - 1]) {
				snprintf(errstr, errstr_size, "malformed %%-escape in a parameter");
				return -1;
			}
		}
		q += n;
		if (*q == '&')
			q++;
	}
	return 0;
}

int dtk_dsn_parse(const char *s, dtk_dsn *d, char *errstr, size_t errstr_size)
{
	memset(d, 0, sizeof(*d));
	const char *sep = strstr(s, "://");
	if (!sep || sep == s || sep - s > 32) {
		snprintf(errstr, errstr_size,
			 "expected scheme://[user[:password]@]host[:port]/database");
		return -1;
	}
	size_t slen = strcspn(s, "+:");
	d->scheme = dtk_dsn_decode(s, slen, 0);
	if (!d->scheme)
		goto nomem;
	for (char *p = d->scheme; *p; p++)
		*p = (char)tolower((unsigned char)*p);

	const char *rest = sep + 3;
	const char *qmark = strchr(rest, '?');
	const char *end = qmark ? qmark : rest + strlen(rest);
	const char *at = NULL;
	for (const char *p = rest; p < end; p++)
		if (*p == '@')
			at = p;
	if (at) {
		const char *colon = find(rest, at, ':');
		const char *uend = colon ? colon : at;
		d->user = dtk_dsn_decode(rest, (size_t)(uend - rest), 0);
		if (colon)
			d->password = dtk_dsn_decode(colon + 1, (size_t)(at - colon - 1), 0);
		if (!d->user || (colon && !d->password)) {
			snprintf(errstr, errstr_size, "malformed %%-escape in the user-info");
			goto fail;
		}
		rest = at + 1;
	}
	const char *slash = find(rest, end, '/');
	const char *hend = slash ? slash : end;
	const char *pstart = NULL;
	if (rest < hend && *rest == '[') {
		const char *rb = find(rest, hend, ']');
		if (!rb) {
			snprintf(errstr, errstr_size, "unterminated [IPv6] host");
			goto fail;
		}
		d->host = dtk_dsn_decode(rest + 1, (size_t)(rb - rest - 1), 0);
		if (rb + 1 < hend) {
			if (rb[1] != ':') {
				snprintf(errstr, errstr_size,
					 "expected ':port' after the [IPv6] host");
				goto fail;
			}
			pstart = rb + 2;
		}
	} else {
		const char *colon = find(rest, hend, ':');
		d->host = dtk_dsn_decode(rest, (size_t)((colon ? colon : hend) - rest), 0);
		if (colon)
			pstart = colon + 1;
	}
	if (!d->host) {
		snprintf(errstr, errstr_size, "malformed %%-escape in the host");
		goto fail;
	}
	if (pstart) {
		long port = 0;
		const char *p = pstart;
		for (; p < hend && isdigit((unsigned char)*p) && port <= 65535; p++)
			port = port * 10 + (*p - '0');
		if (p == pstart || p != hend || port < 1 || port > 65535) {
			snprintf(errstr, errstr_size, "invalid port '%.*s' (expected 1-65535)",
				 (int)(hend - pstart > 16 ? 16 : hend - pstart), pstart);
			goto fail;
		}
		d->port = (int)port;
	}
	if (slash && slash + 1 < end) {
		d->database = dtk_dsn_decode(slash + 1, (size_t)(end - slash - 1), 0);
		if (!d->database) {
			snprintf(errstr, errstr_size, "malformed %%-escape in the database name");
			goto fail;
		}
	}
	if (qmark && parse_query(qmark + 1, d, errstr, errstr_size) != 0)
		goto fail;
	return 0;
nomem:
	snprintf(errstr, errstr_size, "out of memory");
fail:
	dtk_dsn_clear(d);
	return -1;
}

int dtk_dsn_keys(dtk_db_target *t, const char *engine, const char *user, const char *host, int port,
		 const char *database)
{
	dtk_buf hb, b;
	int rc = -1;
	dtk_buf_init(&hb, 4096);
	dtk_buf_init(&b, 8192);
	if (!host || !*host || host[0] == '/' || host[0] == '@')
		host = "localhost";
	int v6 = strchr(host, ':') != NULL;
	if (v6)
		dtk_buf_addc(&hb, '[');
	for (const char *p = host; *p; p++)
		dtk_buf_addc(&hb, (char)tolower((unsigned char)*p));
	if (v6)
		dtk_buf_addc(&hb, ']');
	if (hb.failed)
		goto out;
	const char *h = dtk_buf_str(&hb);
	const char *db = database ? database : "";
	dtk_buf_printf(&b, "%s://%s:%d", engine, h, port);
	t->limit_key = dtk_buf_take(&b);
	dtk_buf_printf(&b, "%s://%s:%d/%s", engine, h, port, db);
	t->shown = dtk_buf_take(&b);
	dtk_buf_printf(&b, "%s://%s@%s:%d/%s", engine, user ? user : "", h, port, db);
	t->pool_key = dtk_buf_take(&b);
	if (t->limit_key && t->shown && t->pool_key)
		rc = 0;
out:
	dtk_buf_free(&hb);
	dtk_buf_free(&b);
	return rc;
}

/* Replaces [from, from + n) of msg (length len) by "***". */
static size_t splice(char *msg, size_t size, size_t len, size_t from, size_t n)
{
	size_t tail = len - from - n;
	if (from + 3 >= size) {
		msg[from] = '\0';
		return from;
	}
	if (from + 3 + tail > size - 1)
		tail = size - 1 - from - 3;
	memmove(msg + from + 3, msg + from + n, tail);
	memcpy(msg + from, "***", 3);
	msg[from + 3 + tail] = '\0';
	return from + 3 + tail;
}

void dtk_dsn_mask(char *msg, size_t size, const char *secret)
{
	if (!msg || size < 4)
		return;
	size_t len = strlen(msg);
	size_t slen = secret ? strlen(secret) : 0;
	if (slen) {
		char *p = msg;
		while ((p = strstr(p, secret)) != NULL) {
			size_t from = (size_t)(p - msg);
			len = splice(msg, size, len, from, slen);
			if (from + 3 > len)
				break;
			p = msg + from + 3;
		}
	}
	/* scheme://user-info@ : the user-info runs to the last '@' before a
	 * character that cannot be part of a URL's authority. */
	for (char *p = strstr(msg, "://"); p; p = strstr(p, "://")) {
		char *ui = p + 3;
		size_t n = strcspn(ui, " \t\r\n\"'<>/");
		char *at = NULL;
		for (size_t i = 0; i < n; i++)
			if (ui[i] == '@')
				at = ui + i;
		if (at && !(at - ui == 3 && strncmp(ui, "***", 3) == 0))
			len = splice(msg, size, len, (size_t)(ui - msg), (size_t)(at - ui));
		p = ui;
	}
}
