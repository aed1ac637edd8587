/* HTTP over libcurl for collectors (ClickHouse, http, Prometheus) and
 * alerters (Mattermost, Slack, webhook, Alertmanager): bounded responses,
 * per-attempt timeouts, retries on transport errors, 5xx and 429 that honour
 * Retry-After within an overall deadline, TLS verification on by default,
 * and error texts with secrets masked.
 *
 * A dtk_http_client is one keep-alive connection cache (a curl easy
 * handle) for one thread; requests may pass NULL to use a temporary one. */
#ifndef DTK_UTIL_HTTP_H
#define DTK_UTIL_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "util/value.h"

typedef struct dtk_http_client dtk_http_client;

/* A new client owned by the caller (free with dtk_http_client_free), or
 * NULL when libcurl cannot be initialised. Thread-safe to call. */
dtk_http_client *dtk_http_client_new(void);
void dtk_http_client_free(dtk_http_client **c);

typedef struct dtk_http_request {
	const char *method;		/* "GET" (default), "POST" or "PUT" */
	const char *url;
	const char *const *headers;	/* "Name: value" lines */
	size_t nheaders;
	const char *body;		/* POST/PUT body, may be NULL */
	size_t body_len;
	double timeout_s;		/* per attempt; 0 = 30 */
	int no_verify_tls;		/* 1 only when a config says verify_ssl: false */
	int max_attempts;		/* 0 = 1 */
	double retry_delay_s;		/* between attempts unless Retry-After says more */
	int64_t deadline_ms;		/* wall clock; no attempt starts after it; 0 = none */
	size_t max_response;		/* bytes; 0 = 16 MiB */
	const dtk_value *secrets;	/* strings to mask in errors; borrowed, may be NULL */
	int mask_url_path;		/* the URL's path is a secret (webhooks) */
	int follow_redirects;		/* up to 5, http(s) only; 0 = a 3xx is the answer */
} dtk_http_request;

typedef struct dtk_http_response {
	long status;	  /* the last attempt's HTTP status, 0 when none arrived */
	char *body;	  /* NUL-terminated, owned */
	size_t body_len;
	char *content_type; /* owned, may be NULL */
	int attempts;
} dtk_http_response;

/* Performs req with client (NULL = a temporary handle). Returns 0 when a
 * 2xx response arrived, with resp filled; -1 otherwise, with errstr saying
 * what happened on the last attempt (status and a bounded, masked excerpt
 * of the body, or the transport error) and resp holding what arrived.
 * Retries transport errors, 5xx and 429 up to max_attempts, waiting
 * retry_delay_s or the Retry-After header (seconds or an HTTP date),
 * whichever is longer (Retry-After capped at 300 s when there is no
 * deadline); each attempt's timeout is cut at deadline_ms and no wait
 * passes it. Error texts: "HTTP <status> from <url>: <first 200 bytes of
 * the body>", "cannot connect to <url>: <libcurl error>", "request to
 * <url> failed: <libcurl error>", "response from <url> exceeds the limit
 * of N bytes" (not retried), with the URL masked as dtk_http_mask_url does
 * and every string of req->secrets (and the URL's secret parts) as ***.
 * resp is owned by the caller (dtk_http_response_free); its body is never
 * NULL once a response arrived. Redirects are not followed unless asked. */
int dtk_http_do(dtk_http_client *client, const dtk_http_request *req, dtk_http_response *resp,
		char *errstr, size_t errstr_size);

void dtk_http_response_free(dtk_http_response *resp);

/* The URL for messages: user-info always, and the path and query too when
 * mask_path, replaced by ***. */
void dtk_http_mask_url(const char *url, int mask_path, char *out, size_t outsz);

/* Percent-encodes s for a URL query into out (every byte but A-Z a-z 0-9
 * - . _ ~); a result that does not fit is cut before a whole escape. */
void dtk_http_escape(const char *s, char *out, size_t outsz);

/* 0 when url is an http:// or https:// URL with a host; -1 with errstr
 * "must be an http(s) URL ..." otherwise. Does not connect. */
int dtk_http_check_url(const char *url, char *errstr, size_t errstr_size);

#endif
