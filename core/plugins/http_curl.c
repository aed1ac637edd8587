/* libdtk-http: the libcurl side of util/http.h, loaded on demand by
 * libdtk (core/util/http.c) so processes that never speak HTTP do not pay
 * for libcurl and its libraries. */
#include "util/http.h"
#include "util/http_internal.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "util/buf.h"
#include "util/clock.h"

#define DEFAULT_TIMEOUT_S 30.0
#define DEFAULT_MAX_RESPONSE ((size_t)16 << 20)
#define BODY_EXCERPT 200
/* pieces of a secret URL path this long are masked on their own */
#define SECRET_PIECE_MIN 12
/* Without a deadline a server's Retry-After is honoured up to this long,
 * so one misbehaving endpoint cannot park a thread for hours. */
#define MAX_RETRY_AFTER_MS (300 * 1000)

struct dtk_http_client {
	CURL *easy;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT; /* written once, under global_once */

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static CURL *easy_new(void)
{
	pthread_once(&global_once, global_init);
	return global_rc == CURLE_OK ? curl_easy_init() : NULL;
}

static dtk_http_client *curl_client_new(void)
{
	dtk_http_client *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->easy = easy_new();
	if (!c->easy) {
		free(c);
		return NULL;
	}
	return c;
}

static void curl_client_free(dtk_http_client **c)
{
	if (!c || !*c)
		return;
	curl_easy_cleanup((*c)->easy);
	free(*c);
	*c = NULL;
}

/* What masking hides in a message: the caller's secrets, the URL's
 * user-info, and its path and query when they are secret. */
typedef struct masker {
	const dtk_value *secrets;
	const char *path; /* within the URL; NULL when not secret */
	size_t path_len;
	const char *userinfo;
	size_t userinfo_len;
} masker;

static masker masker_for(const dtk_http_request *req)
{
	masker m = {.secrets = req->secrets};
	dtk_http_url_parts p = dtk_http_url_split(req->url);
	if (p.has_userinfo && p.host - 1 > p.userinfo) {
		m.userinfo = req->url + p.userinfo;
		m.userinfo_len = p.host - 1 - p.userinfo;
	}
	if (req->mask_url_path && req->url[p.rest] && strcmp(req->url + p.rest, "/") != 0) {
		m.path = req->url + p.rest;
		m.path_len = strlen(m.path);
	}
	return m;
}

/* The length of the longest secret starting at s, or 0. */
static size_t secret_at(const masker *m, const char *s)
{
	size_t best = 0;
	if (m->path && m->path_len > best && strncmp(s, m->path, m->path_len) == 0)
		best = m->path_len;
	/* a receiver may echo the token alone ("invalid hook <token>"): long
	 * pieces of a secret path are secrets too */
	for (size_t i = 0; m->path && i < m->path_len;) {
		size_t n = strcspn(m->path + i, "/?&=#");
		if (n >= SECRET_PIECE_MIN && n > best && strncmp(s, m->path + i, n) == 0)
			best = n;
		i += n + 1;
	}
	if (m->userinfo && m->userinfo_len > best && strncmp(s, m->userinfo, m->userinfo_len) == 0)
		best = m->userinfo_len;
	const dtk_value *sec = m->secrets;
	for (size_t k = 0; sec && sec->type == DTK_V_LIST && k < sec->u.list.n; k++) {
		const dtk_value *v = sec->u.list.items[k];
		if (v->type == DTK_V_STR && v->u.str.len > best &&
		    strncmp(s, v->u.str.s, v->u.str.len) == 0)
			best = v->u.str.len;
	}
	return best;
}

/* Appends up to len bytes of s to out with secrets and any "://user@"
 * replaced by ***, and control characters by spaces (one-line errors). */
static void add_masked(dtk_buf *out, const masker *m, const char *s, size_t len)
{
	for (size_t i = 0; i < len && s[i];) {
		if (s[i] == ':' && s[i + 1] == '/' && s[i + 2] == '/') {
			size_t j = i + 3;
			while (j < len && s[j] && !strchr("@/?# \n", s[j]))
				j++;
			if (j < len && s[j] == '@') {
				dtk_buf_adds(out, "://***@");
				i = j + 1;
				continue;
			}
		}
		size_t n = secret_at(m, s + i);
		if (n) {
			dtk_buf_adds(out, "***");
			i += n;
			continue;
		}
		unsigned char ch = (unsigned char)s[i++];
		dtk_buf_addc(out, ch < ' ' || ch == 0x7f ? ' ' : (char)ch);
	}
}

/* The longest secret, so an excerpt can be masked before it is cut. */
static size_t longest_secret(const masker *m)
{
	size_t best = m->path_len > m->userinfo_len ? m->path_len : m->userinfo_len;
	const dtk_value *sec = m->secrets;
	for (size_t k = 0; sec && sec->type == DTK_V_LIST && k < sec->u.list.n; k++)
		if (sec->u.list.items[k]->u.str.len > best)
			best = sec->u.list.items[k]->u.str.len;
	return best;
}

/* Appends the first BODY_EXCERPT bytes of the masked body, cut at a UTF-8
 * character boundary. */
static void add_excerpt(dtk_buf *out, const masker *m, const char *body, size_t len)
{
	size_t take = BODY_EXCERPT + longest_secret(m);
	dtk_buf tmp;
	dtk_buf_init(&tmp, 0);
	add_masked(&tmp, m, body, len < take ? len : take);
	size_t n = tmp.len;
	if (n > BODY_EXCERPT) {
		n = BODY_EXCERPT;
		while (n > 0 && ((unsigned char)tmp.data[n] & 0xC0) == 0x80)
			n--;
	}
	while (n > 0 && tmp.data[n - 1] == ' ')
		n--;
	if (n)
		dtk_buf_add(out, tmp.data, n);
	dtk_buf_free(&tmp);
}

/* The URL as messages show it: dtk_http_mask_url, then the secrets (a
 * token in the query). A URL too long for out is cut. */
static void masked_url(const dtk_http_request *req, const masker *m, char *out, size_t outsz)
{
	char bare[1024];
	dtk_http_mask_url(req->url, req->mask_url_path, bare, sizeof(bare));
	dtk_buf b;
	dtk_buf_init(&b, outsz - 1);
	add_masked(&b, m, bare, strlen(bare));
	snprintf(out, outsz, "%s", dtk_buf_str(&b));
	dtk_buf_free(&b);
}

typedef struct sink {
	dtk_buf body;
	int too_big;
} sink;

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	sink *s = userdata;
	size_t n = size * nmemb;
	if (dtk_buf_add(&s->body, data, n) != 0) {
		s->too_big = 1;
		return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
	}
	return n;
}

static int is_connect_error(CURLcode rc)
{
	return rc == CURLE_COULDNT_RESOLVE_PROXY || rc == CURLE_COULDNT_RESOLVE_HOST ||
	       rc == CURLE_COULDNT_CONNECT || rc == CURLE_SSL_CONNECT_ERROR ||
	       rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CERTPROBLEM ||
	       rc == CURLE_SSL_CACERT_BADFILE;
}

/* Transport errors that another attempt cannot fix. */
static int is_permanent_error(CURLcode rc)
{
	return rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT ||
	       rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CERTPROBLEM ||
	       rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_TOO_MANY_REDIRECTS ||
	       rc == CURLE_OUT_OF_MEMORY;
}

static int set_options(CURL *h, const dtk_http_request *req, struct curl_slist *headers, sink *s,
		       char *curl_err, long timeout_ms)
{
	const char *method = req->method ? req->method : "GET";
	int ok = 1;
#define SET(opt, val) ok &= curl_easy_setopt(h, opt, val) == CURLE_OK
	SET(CURLOPT_URL, req->url);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, req->follow_redirects ? 1L : 0L);
	SET(CURLOPT_MAXREDIRS, 5L);
	SET(CURLOPT_TIMEOUT_MS, timeout_ms);
	SET(CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	SET(CURLOPT_SSL_VERIFYPEER, req->no_verify_tls ? 0L : 1L);
	SET(CURLOPT_SSL_VERIFYHOST, req->no_verify_tls ? 0L : 2L);
	SET(CURLOPT_USERAGENT, "detectk-c/" DTK_VERSION);
	SET(CURLOPT_HTTPHEADER, headers);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, s);
	SET(CURLOPT_ERRORBUFFER, curl_err);
	SET(CURLOPT_ACCEPT_ENCODING, "");
	if (strcmp(method, "GET") == 0) {
		SET(CURLOPT_HTTPGET, 1L);
	} else {
		if (strcmp(method, "POST") != 0)
			SET(CURLOPT_CUSTOMREQUEST, method);
		SET(CURLOPT_POST, 1L);
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(req->body ? req->body_len : 0));
		SET(CURLOPT_POSTFIELDS, req->body ? req->body : "");
	}
#undef SET
	return ok ? 0 : -1;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static int curl_request(dtk_http_client *client, const dtk_http_request *req,
			dtk_http_response *resp, char *errstr, size_t errstr_size)
{
	int rc = -1;
	CURL *h = client ? client->easy : NULL;
	CURL *temp = NULL;
	struct curl_slist *headers = NULL;
	char murl[1024];
	dtk_buf err;
	dtk_buf_init(&err, 8192);
	memset(resp, 0, sizeof(*resp));
	if (errstr_size)
		errstr[0] = '\0';
	if (!req || !req->url) {
		dtk_buf_adds(&err, "no URL");
		goto out;
	}
	masker m = masker_for(req);
	masked_url(req, &m, murl, sizeof(murl));
	if (!h)
		h = temp = easy_new();
	if (!h) {
		dtk_buf_adds(&err, "cannot initialise libcurl");
		goto out;
	}
	/* curl would wait for "100 Continue" before larger bodies */
	struct curl_slist *next = curl_slist_append(NULL, "Expect:");
	for (size_t i = 0; next && i < req->nheaders; i++) {
		headers = next;
		next = curl_slist_append(headers, req->headers[i]);
	}
	if (!next) {
		dtk_buf_adds(&err, "out of memory");
		goto out;
	}
	headers = next;
	double timeout_s = req->timeout_s > 0 ? req->timeout_s : DEFAULT_TIMEOUT_S;
	int max_attempts = req->max_attempts > 0 ? req->max_attempts : 1;
	size_t max_response = req->max_response ? req->max_response : DEFAULT_MAX_RESPONSE;
	for (int attempt = 1;; attempt++) {
		int64_t now = dtk_now_ms();
		if (req->deadline_ms && now >= req->deadline_ms) {
			if (attempt == 1)
				dtk_buf_printf(&err, "deadline passed before the request to %s",
					       murl);
			else
				dtk_buf_adds(&err, "; gave up: the deadline passed");
			goto out;
		}
		int64_t timeout_ms = (int64_t)(timeout_s * 1000.0);
		if (req->deadline_ms)
			timeout_ms = min64(timeout_ms, req->deadline_ms - now);
		if (timeout_ms < 1)
			timeout_ms = 1;
		char curl_err[CURL_ERROR_SIZE] = "";
		sink s = {0};
		dtk_buf_init(&s.body, max_response);
		curl_easy_reset(h); /* keeps the connection cache */
		CURLcode cc = CURLE_FAILED_INIT;
		if (set_options(h, req, headers, &s, curl_err, (long)timeout_ms) == 0)
			cc = curl_easy_perform(h);
		dtk_http_response_free(resp);
		resp->attempts = attempt;
		long status = 0;
		curl_off_t retry_after = -1;
		if (cc == CURLE_OK) {
			char *ct = NULL;
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
			curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
			curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &retry_after);
			resp->content_type = ct ? strdup(ct) : NULL;
		}
		resp->status = status;
		resp->body_len = s.body.len;
		resp->body = dtk_buf_take(&s.body);
		dtk_buf_free(&s.body);
		dtk_buf_reset(&err);
		int retryable = 0;
		if (cc == CURLE_OK && status >= 200 && status < 300) {
			rc = 0;
			goto out;
		} else if (cc == CURLE_OK) {
			dtk_buf_printf(&err, "HTTP %ld from %s", status, murl);
			if (resp->body_len) {
				dtk_buf_adds(&err, ": ");
				add_excerpt(&err, &m, resp->body, resp->body_len);
			}
			retryable = status >= 500 || status == 429;
		} else if (s.too_big) {
			dtk_buf_printf(&err, "response from %s exceeds the limit of %zu bytes",
				       murl, max_response);
		} else {
			const char *what = curl_err[0] ? curl_err : curl_easy_strerror(cc);
			dtk_buf_printf(&err, "%s %s%s: ",
				       is_connect_error(cc) ? "cannot connect to" : "request to",
				       murl, is_connect_error(cc) ? "" : " failed");
			add_masked(&err, &m, what, strlen(what));
			retryable = !is_permanent_error(cc);
		}
		if (attempt > 1)
			dtk_buf_printf(&err, " (attempt %d of %d)", attempt, max_attempts);
		if (!retryable || attempt >= max_attempts)
			goto out;
		int64_t delay_ms = (int64_t)(req->retry_delay_s * 1000.0);
		if (retry_after > 0) {
			int64_t ra_ms = (int64_t)retry_after * 1000;
			if (!req->deadline_ms)
				ra_ms = min64(ra_ms, MAX_RETRY_AFTER_MS);
			if (ra_ms > delay_ms)
				delay_ms = ra_ms;
		}
		if (req->deadline_ms && dtk_now_ms() + delay_ms >= req->deadline_ms) {
			dtk_buf_printf(&err,
				       "; gave up: the next attempt (in %.1f s) would pass the "
				       "deadline",
				       (double)delay_ms / 1000.0);
			goto out;
		}
		dtk_sleep_ms(delay_ms);
	}
out:
	if (errstr_size && rc != 0)
		snprintf(errstr, errstr_size, "%s", dtk_buf_str(&err));
	dtk_buf_free(&err);
	curl_slist_free_all(headers);
	if (temp)
		curl_easy_cleanup(temp);
	return rc;
}

const dtk_http_impl dtk_http_curl = {
	.client_new = curl_client_new,
	.client_free = curl_client_free,
	.request = curl_request,
};
