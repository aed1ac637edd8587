/* The HTTP client of http.h. libcurl (with the TLS, Kerberos and LDAP
 * libraries it pulls in) costs every process a few milliseconds to load, so
 * the transfer code lives in the plugin libdtk-http (core/plugins/
 * http_curl.c), loaded on the first request; what needs no libcurl (URL
 * masking and checks) stays here. */
#include "util/http.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "plugin.h"
#include "util/http_internal.h"

static const dtk_http_impl *impl(char *errstr, size_t errstr_size)
{
	return dtk_plugin_symbol("dtk-http", "dtk_http_curl", errstr, errstr_size);
}

dtk_http_client *dtk_http_client_new(void)
{
	char err[512];
	const dtk_http_impl *i = impl(err, sizeof(err));
	return i ? i->client_new() : NULL;
}

void dtk_http_client_free(dtk_http_client **c)
{
	char err[512];
	const dtk_http_impl *i = c && *c ? impl(err, sizeof(err)) : NULL;
	if (i)
		i->client_free(c);
}

int dtk_http_do(dtk_http_client *client, const dtk_http_request *req, dtk_http_response *resp,
		char *errstr, size_t errstr_size)
{
	const dtk_http_impl *i = impl(errstr, errstr_size);
	if (!i) {
		memset(resp, 0, sizeof(*resp));
		return -1;
	}
	return i->request(client, req, resp, errstr, errstr_size);
}

void dtk_http_response_free(dtk_http_response *resp)
{
	if (!resp)
		return;
	free(resp->body);
	free(resp->content_type);
	memset(resp, 0, sizeof(*resp));
}

/* The parts of a URL that masking needs: [scheme://][userinfo@]host[/rest]. */
dtk_http_url_parts dtk_http_url_split(const char *url)
{
	dtk_http_url_parts p = {0};
	const char *sep = strstr(url, "://");
	size_t start = sep ? (size_t)(sep - url) + 3 : 0;
	size_t end = start + strcspn(url + start, "/?#");
	p.userinfo = start;
	p.host = start;
	for (size_t i = end; i > start; i--)
		if (url[i - 1] == '@') {
			p.has_userinfo = 1;
			p.host = i;
			break;
		}
	p.rest = end;
	return p;
}

void dtk_http_mask_url(const char *url, int mask_path, char *out, size_t outsz)
{
	if (!outsz)
		return;
	if (!url) {
		snprintf(out, outsz, "(no URL)");
		return;
	}
	dtk_http_url_parts p = dtk_http_url_split(url);
	const char *rest = url + p.rest;
	int hide_rest = mask_path && rest[0] && strcmp(rest, "/") != 0;
	snprintf(out, outsz, "%.*s%s%.*s%s", (int)p.userinfo, url, p.has_userinfo ? "***@" : "",
		 (int)(p.rest - p.host), url + p.host, hide_rest ? "/***" : rest);
}

void dtk_http_escape(const char *s, char *out, size_t outsz)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	if (!outsz)
		return;
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			if (o + 1 >= outsz)
				break;
			out[o++] = (char)ch;
		} else {
			if (o + 3 >= outsz)
				break;
			out[o++] = '%';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = '\0';
}

int dtk_http_check_url(const char *url, char *errstr, size_t errstr_size)
{
	const char *host = NULL;
	if (url && strncasecmp(url, "http://", 7) == 0)
		host = url + 7;
	else if (url && strncasecmp(url, "https://", 8) == 0)
		host = url + 8;
	if (!host) {
		snprintf(errstr, errstr_size, "must be an http:// or https:// URL");
		return -1;
	}
	dtk_http_url_parts p = dtk_http_url_split(url);
	if (p.rest == p.host || url[p.host] == ':') {
		snprintf(errstr, errstr_size, "must be an http:// or https:// URL with a host");
		return -1;
	}
	for (const char *c = url; *c; c++)
		if ((unsigned char)*c <= ' ') {
			snprintf(errstr, errstr_size,
				 "must be a URL without spaces or control "
				 "characters");
			return -1;
		}
	return 0;
}
