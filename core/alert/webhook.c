/* webhook: POSTs (or PUTs) the check result JSON plus "message" to any
 * URL, with optional headers and an HMAC-SHA256 signature of the exact
 * body bytes in X-DTK-Signature, so a receiver can authenticate it. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alert/alerter.h"
#include "util/buf.h"
#include "util/hash.h"
#include "util/http.h"
#include "util/json.h"
#include "util/params.h"

#define WEBHOOK_ATTEMPTS 3
#define WEBHOOK_RETRY_DELAY_S 1.0
#define WEBHOOK_MAX_RESPONSE (64 * 1024)
#define WEBHOOK_MAX_HEADERS 64

typedef struct webhook {
	char *url;
	char *method;	/* "POST" or "PUT" */
	char **headers; /* "Name: value", Content-Type first */
	size_t nheaders;
	char *hmac_secret;
	dtk_value *secrets; /* hmac_secret and secret header values */
	double timeout_s;
} webhook;

static const char *const webhook_params[] = {"url",	    "method",  "headers",
					     "hmac_secret", "timeout", NULL};

static void webhook_destroy(void *compiled)
{
	webhook *w = compiled;
	if (!w)
		return;
	free(w->url);
	free(w->method);
	for (size_t i = 0; i < w->nheaders; i++)
		free(w->headers[i]);
	free(w->headers);
	free(w->hmac_secret);
	dtk_value_free(&w->secrets);
	free(w);
}

/* params[key] as a malloc'd string, NULL when absent or null. */
static int str_param(const dtk_value *params, const char *key, char **out, char *errstr,
		     size_t errstr_size)
{
	const dtk_value *v = dtk_value_map_get(params, key);
	*out = NULL;
	if (!v || v->type == DTK_V_NULL)
		return 0;
	if (v->type != DTK_V_STR) {
		snprintf(errstr, errstr_size, "%s: must be a string", key);
		return -1;
	}
	if (!(*out = strdup(v->u.str.s))) {
		snprintf(errstr, errstr_size, "%s: out of memory", key);
		return -1;
	}
	return 0;
}

/* The header names whose values are secrets (fleet.md, "Security"). */
static int is_secret_name(const char *name)
{
	static const char *const words[] = {"pass", "secret", "token", "key", "auth", "hmac", NULL};
	for (size_t i = 0; words[i]; i++)
		if (strcasestr(name, words[i]))
			return 1;
	return 0;
}

static int add_secret(webhook *w, const char *s)
{
	if (!s || !*s)
		return 0;
	dtk_value *v = dtk_value_str(s);
	if (!v || dtk_value_list_push(w->secrets, v) != 0) {
		dtk_value_free(&v);
		return -1;
	}
	return 0;
}

static int add_header(webhook *w, const char *name, const char *value)
{
	dtk_buf b;
	dtk_buf_init(&b, 8192);
	dtk_buf_printf(&b, "%s: %s", name, value);
	if (b.failed) {
		dtk_buf_free(&b);
		return -1;
	}
	w->headers[w->nheaders++] = dtk_buf_take(&b);
	dtk_buf_free(&b);
	return 0;
}

/* headers: a mapping of names to string (or number) values; no control
 * characters, names are HTTP tokens. Content-Type defaults to JSON. */
static int compile_headers(webhook *w, const dtk_value *params, char *errstr, size_t errstr_size)
{
	const dtk_value *h = dtk_value_map_get(params, "headers");
	size_t n = h && h->type == DTK_V_MAP ? h->u.map.n : 0;
	if (h && h->type != DTK_V_NULL && h->type != DTK_V_MAP) {
		snprintf(errstr, errstr_size,
			 "headers: must be a mapping of header names to values");
		return -1;
	}
	if (n > WEBHOOK_MAX_HEADERS) {
		snprintf(errstr, errstr_size, "headers: at most %d headers", WEBHOOK_MAX_HEADERS);
		return -1;
	}
	w->headers = calloc(n + 1, sizeof(*w->headers));
	if (!w->headers) {
		snprintf(errstr, errstr_size, "headers: out of memory");
		return -1;
	}
	int has_content_type = 0;
	for (size_t i = 0; i < n; i++) {
		const dtk_value *k = h->u.map.items[i].key, *v = h->u.map.items[i].val;
		const char *name = dtk_value_cstr(k);
		if (!name || !*name || strcspn(name, "()<>@,;:\\\"/[]?={} \t") != strlen(name)) {
			snprintf(errstr, errstr_size, "headers: '%s' is not a header name",
				 name ? name : "(not a string)");
			return -1;
		}
		for (const char *c = name; *c; c++)
			if ((unsigned char)*c < 0x21 || (unsigned char)*c > 0x7e) {
				snprintf(errstr, errstr_size, "headers: '%s' is not a header name",
					 name);
				return -1;
			}
		char num[64];
		const char *value = dtk_value_cstr(v);
		if (!value && v->type == DTK_V_INT) {
			snprintf(num, sizeof(num), "%lld", (long long)v->u.i);
			value = num;
		}
		if (!value) {
			snprintf(errstr, errstr_size, "headers: the value of '%s' must be a string",
				 name);
			return -1;
		}
		for (const char *c = value; *c; c++)
			if ((unsigned char)*c < 0x20 && *c != '\t') {
				snprintf(errstr, errstr_size,
					 "headers: the value of '%s' has a control character",
					 name);
				return -1;
			}
		if (strcasecmp(name, "Content-Type") == 0)
			has_content_type = 1;
		if (strcasecmp(name, "X-DTK-Signature") == 0) {
			snprintf(errstr, errstr_size,
				 "headers: X-DTK-Signature is set from hmac_secret");
			return -1;
		}
		if ((is_secret_name(name) && add_secret(w, value) != 0) ||
		    add_header(w, name, value) != 0) {
			snprintf(errstr, errstr_size, "headers: out of memory");
			return -1;
		}
	}
	if (!has_content_type && add_header(w, "Content-Type", "application/json") != 0) {
		snprintf(errstr, errstr_size, "headers: out of memory");
		return -1;
	}
	return 0;
}

static int webhook_compile(const dtk_value *params, dtk_value *warnings, void **compiled,
			   char *errstr, size_t errstr_size)
{
	char uerr[256];
	webhook *w = calloc(1, sizeof(*w));
	if (!w || !(w->secrets = dtk_value_list())) {
		snprintf(errstr, errstr_size, "params: out of memory");
		free(w);
		return -1;
	}
	if (str_param(params, "url", &w->url, errstr, errstr_size) != 0 ||
	    str_param(params, "method", &w->method, errstr, errstr_size) != 0 ||
	    str_param(params, "hmac_secret", &w->hmac_secret, errstr, errstr_size) != 0 ||
	    dtk_param_number(params, "timeout", 10, &w->timeout_s, errstr, errstr_size) != 0)
		goto fail;
	if (!w->url) {
		snprintf(errstr, errstr_size, "url: required (where to send the alert)");
		goto fail;
	}
	if (dtk_http_check_url(w->url, uerr, sizeof(uerr)) != 0) {
		snprintf(errstr, errstr_size, "url: %s", uerr);
		goto fail;
	}
	if (!w->method && !(w->method = strdup("POST"))) {
		snprintf(errstr, errstr_size, "method: out of memory");
		goto fail;
	}
	for (char *c = w->method; *c; c++)
		*c = (char)toupper((unsigned char)*c);
	if (strcmp(w->method, "POST") != 0 && strcmp(w->method, "PUT") != 0) {
		snprintf(errstr, errstr_size,
			 "method: must be POST or PUT (the alert is the body)");
		goto fail;
	}
	if (w->hmac_secret && !*w->hmac_secret) {
		snprintf(errstr, errstr_size, "hmac_secret: must not be empty");
		goto fail;
	}
	if (!(w->timeout_s > 0)) {
		snprintf(errstr, errstr_size, "timeout: must be a positive number of seconds");
		goto fail;
	}
	if (add_secret(w, w->hmac_secret) != 0) {
		snprintf(errstr, errstr_size, "hmac_secret: out of memory");
		goto fail;
	}
	if (compile_headers(w, params, errstr, errstr_size) != 0)
		goto fail;
	*compiled = w;
	return 0;
fail:
	webhook_destroy(w);
	return -1;
}

/* The message's secrets plus the alerter's own, as one list owned by the
 * caller. */
static dtk_value *all_secrets(const webhook *w, const dtk_value *msg_secrets)
{
	dtk_value *all = dtk_value_copy(w->secrets);
	for (size_t i = 0;
	     all && msg_secrets && msg_secrets->type == DTK_V_LIST && i < msg_secrets->u.list.n;
	     i++) {
		dtk_value *s = dtk_value_copy(msg_secrets->u.list.items[i]);
		if (!s || dtk_value_list_push(all, s) != 0) {
			dtk_value_free(&s);
			dtk_value_free(&all);
		}
	}
	return all;
}

static int webhook_send(const void *compiled, const dtk_alert_message *msg, char *errstr,
			size_t errstr_size)
{
	const webhook *w = compiled;
	int rc = -1;
	const char **headers = NULL;
	dtk_value *secrets = NULL;
	dtk_buf body;
	dtk_buf_init(&body, 0);
	dtk_value *payload = msg->result && msg->result->type == DTK_V_MAP
				 ? dtk_value_copy(msg->result)
				 : dtk_value_map();
	if (!payload || dtk_value_map_set_str(payload, "message", msg->text) != 0 ||
	    dtk_json_emit(&body, payload, DTK_JSON_INF_AS_STRING) != 0) {
		snprintf(errstr, errstr_size, "webhook: out of memory building the payload");
		goto out;
	}
	headers = calloc(w->nheaders + 1, sizeof(*headers));
	secrets = all_secrets(w, msg->secrets);
	if (!headers || !secrets) {
		snprintf(errstr, errstr_size, "webhook: out of memory");
		goto out;
	}
	for (size_t i = 0; i < w->nheaders; i++)
		headers[i] = w->headers[i];
	size_t nheaders = w->nheaders;
	char signature[128];
	if (w->hmac_secret) {
		char hex[65];
		if (dtk_hmac_sha256_hex(w->hmac_secret, strlen(w->hmac_secret), body.data, body.len,
					hex) != 0) {
			snprintf(errstr, errstr_size, "webhook: cannot compute the HMAC signature");
			goto out;
		}
		snprintf(signature, sizeof(signature), "X-DTK-Signature: sha256=%s", hex);
		headers[nheaders++] = signature;
	}
	dtk_http_request req = {.method = w->method,
				.url = w->url,
				.headers = headers,
				.nheaders = nheaders,
				.body = body.data,
				.body_len = body.len,
				.timeout_s = w->timeout_s,
				.max_attempts = WEBHOOK_ATTEMPTS,
				.retry_delay_s = WEBHOOK_RETRY_DELAY_S,
				.deadline_ms = msg->deadline_ms,
				.max_response = WEBHOOK_MAX_RESPONSE,
				.secrets = secrets,
				.mask_url_path = 1};
	dtk_http_response resp;
	char herr[1024];
	rc = dtk_http_do(NULL, &req, &resp, herr, sizeof(herr));
	if (rc != 0)
		snprintf(errstr, errstr_size, "webhook: %s", herr);
	dtk_http_response_free(&resp);
out:
	free(headers);
	dtk_value_free(&secrets);
	dtk_value_free(&payload);
	dtk_buf_free(&body);
	return rc;
}

static const char *webhook_rate_key(const void *compiled)
{
	return ((const webhook *)compiled)->url;
}

const dtk_alerter_type dtk_alerter_webhook = {
	.name = "webhook",
	.summary = "POST the check result JSON to a URL, optionally HMAC-signed",
	.compile = webhook_compile,
	.destroy = webhook_destroy,
	.send = webhook_send,
	.known_params = webhook_params,
	.rate_key = webhook_rate_key,
};
