/* The `http` collector (config.md, Collectors): one request per collection,
 * one value out of the response, one point at period_finish.
 *
 * Params: url (required), method (GET, or POST when json or data is given),
 * headers (a map), params (a map added to the URL's query string), json (a
 * value sent as the JSON body), data (a string body, or a map sent as a
 * form), response_format json (default) / text / csv, value_path, timeout 30,
 * verify_ssl true, retry_count 3, retry_delay 1.
 *
 * Choices where config.md is silent:
 * - url, the values of params and every string inside json are templates
 *   rendered in strict mode with period_start, period_finish, interval,
 *   execution_time and metric_name; headers and data are sent as written.
 * - retry_count is the number of attempts in all (at least one); transport
 *   errors, 5xx and 429 are retried, retry_delay seconds apart (or what
 *   Retry-After asks).
 * - value_path: dot and bracket steps (`data.result[0].value[1]`; a
 *   negative index counts from the end; a numeric dot step indexes a list).
 *   No value_path: the whole document must be the number. For csv, the
 *   first line names the columns; `count` is the first data row's column,
 *   `count[1]` the second row's; without value_path a one-column csv gives
 *   its first row.
 * - The value: a number, a numeric string, or true/false (1/0, as Python's
 *   float() reads them). null, NaN and infinities are a missing point;
 *   anything else is an error quoting the path and the value.
 * - has_timestamps is 0: `dtk load-history` calls the collector once per
 *   slot, and the point is whatever the URL returns at that moment. Only a
 *   URL whose url/params use period_start/period_finish returns the past
 *   (docs/internals/sources.md).
 * - The connection limit key is <scheme>://<host>:<port>
 *   (dtk_collect_http_limit_key, shared with the prometheus collector).
 *
 * A compiled source is immutable and thread-safe; each collection uses a
 * temporary curl handle. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "collect/collector.h"
#include "template/template.h"
#include "util/buf.h"
#include "util/http.h"
#include "util/json.h"
#include "util/params.h"
#include "util/pyfmt.h"

#define HTTP_EXCERPT 80

enum { FMT_JSON, FMT_TEXT, FMT_CSV };

typedef struct http_param {
	char *name;
	dtk_template *value;
} http_param;

typedef struct httpsrc {
	dtk_template *url;
	char limit_key[300]; /* from the url as written ("" when its host is templated) */
	char *method;
	char **headers; /* "Name: value" */
	size_t nheaders;
	http_param *params;
	size_t nparams;
	dtk_value *json; /* the json param as written; strings rendered per collection */
	char *data;	 /* the body as sent, when data is given */
	int form;	 /* data was a map: a form body */
	int format;
	char *value_path;
	double timeout_s, retry_delay_s;
	int verify, attempts;
	dtk_value *secrets; /* header and param values under secret-looking names */
} httpsrc;

int dtk_collect_http_limit_key(const char *url, char *out, size_t outsz);
int dtk_collect_http_extract(const char *body, size_t len, const char *format,
			     const char *value_path, double *value, int *is_missing, char *errstr,
			     size_t errstr_size);

static void httpsrc_destroy(void *compiled)
{
	httpsrc *s = compiled;
	if (!s)
		return;
	dtk_template_free(&s->url);
	free(s->method);
	for (size_t i = 0; i < s->nheaders; i++)
		free(s->headers[i]);
	free(s->headers);
	for (size_t i = 0; i < s->nparams; i++) {
		free(s->params[i].name);
		dtk_template_free(&s->params[i].value);
	}
	free(s->params);
	dtk_value_free(&s->json);
	free(s->data);
	free(s->value_path);
	dtk_value_free(&s->secrets);
	free(s);
}

static int secret_name(const char *k)
{
	static const char *const parts[] = {"pass", "secret", "token", "key", "auth", "hmac"};
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		if (strcasestr(k, parts[i]))
			return 1;
	return 0;
}

static void add_secret(httpsrc *s, const char *v)
{
	if (!v || !*v)
		return;
	dtk_value *x = dtk_value_str(v);
	if (x && dtk_value_list_push(s->secrets, x) != 0)
		dtk_value_free(&x);
}

/* A scalar param value as text (Python's str()); -1 for other types. */
static int scalar_text(const dtk_value *v, char *out, size_t outsz)
{
	switch (v->type) {
	case DTK_V_STR:
		snprintf(out, outsz, "%s", v->u.str.s);
		return 0;
	case DTK_V_INT:
		snprintf(out, outsz, "%" PRId64, v->u.i);
		return 0;
	case DTK_V_FLOAT:
		dtk_pyfmt_float(v->u.f, out, outsz);
		return 0;
	case DTK_V_BOOL:
		snprintf(out, outsz, "%s", v->u.b ? "True" : "False");
		return 0;
	default:
		return -1;
	}
}

/* Compiles every string inside v as a template, to report syntax errors
 * at compile time. */
static int check_json_templates(const dtk_value *v, char *errstr, size_t errstr_size)
{
	char err[256];
	if (v->type == DTK_V_STR && dtk_template_has_syntax(v->u.str.s)) {
		dtk_template *t = dtk_template_compile(v->u.str.s, err, sizeof(err));
		if (!t) {
			snprintf(errstr, errstr_size, "json: %s", err);
			return -1;
		}
		dtk_template_free(&t);
	} else if (v->type == DTK_V_LIST) {
		for (size_t i = 0; i < v->u.list.n; i++)
			if (check_json_templates(v->u.list.items[i], errstr, errstr_size) != 0)
				return -1;
	} else if (v->type == DTK_V_MAP) {
		for (size_t i = 0; i < v->u.map.n; i++)
			if (check_json_templates(v->u.map.items[i].val, errstr, errstr_size) != 0)
				return -1;
	}
	return 0;
}

static int compile_map_param(const dtk_value *params, const char *key, dtk_value **out,
			     char *errstr, size_t errstr_size)
{
	const dtk_value *v = dtk_value_map_get(params, key);
	*out = NULL;
	if (!v || v->type == DTK_V_NULL)
		return 0;
	if (v->type != DTK_V_MAP) {
		snprintf(errstr, errstr_size, "%s: must be a mapping of names to values", key);
		return -1;
	}
	for (size_t i = 0; i < v->u.map.n; i++) {
		char text[16];
		const dtk_value *val = v->u.map.items[i].val;
		if (v->u.map.items[i].key->type != DTK_V_STR ||
		    (val->type != DTK_V_NULL && scalar_text(val, text, sizeof(text)) != 0)) {
			snprintf(errstr, errstr_size, "%s: values must be strings or numbers", key);
			return -1;
		}
	}
	*out = (dtk_value *)v;
	return 0;
}

static int compile_headers(httpsrc *s, const dtk_value *params, char *errstr, size_t errstr_size)
{
	dtk_value *h;
	char text[8192];
	if (compile_map_param(params, "headers", &h, errstr, errstr_size) != 0)
		return -1;
	if (!h)
		return 0;
	s->headers = calloc(h->u.map.n ? h->u.map.n : 1, sizeof(*s->headers));
	if (!s->headers)
		goto oom;
	for (size_t i = 0; i < h->u.map.n; i++) {
		const char *name = h->u.map.items[i].key->u.str.s;
		const dtk_value *val = h->u.map.items[i].val;
		text[0] = '\0';
		if (val->type != DTK_V_NULL)
			scalar_text(val, text, sizeof(text));
		if (strpbrk(name, "\r\n:") || !*name || strpbrk(text, "\r\n")) {
			snprintf(errstr, errstr_size, "headers: '%s' is not a valid header", name);
			return -1;
		}
		size_t n = strlen(name) + strlen(text) + 3;
		s->headers[s->nheaders] = malloc(n);
		if (!s->headers[s->nheaders])
			goto oom;
		snprintf(s->headers[s->nheaders++], n, "%s: %s", name, text);
		if (secret_name(name))
			add_secret(s, text);
	}
	return 0;
oom:
	snprintf(errstr, errstr_size, "headers: out of memory");
	return -1;
}

static int compile_params(httpsrc *s, const dtk_value *params, char *errstr, size_t errstr_size)
{
	dtk_value *p;
	char err[256];
	if (compile_map_param(params, "params", &p, errstr, errstr_size) != 0)
		return -1;
	if (!p)
		return 0;
	s->params = calloc(p->u.map.n ? p->u.map.n : 1, sizeof(*s->params));
	if (!s->params)
		goto oom;
	for (size_t i = 0; i < p->u.map.n; i++) {
		char text[8192];
		const dtk_value *val = p->u.map.items[i].val;
		text[0] = '\0';
		if (val->type != DTK_V_NULL)
			scalar_text(val, text, sizeof(text));
		http_param *hp = &s->params[s->nparams++];
		hp->name = strdup(p->u.map.items[i].key->u.str.s);
		if (!hp->name)
			goto oom;
		hp->value = dtk_template_compile(text, err, sizeof(err));
		if (!hp->value) {
			snprintf(errstr, errstr_size, "params: %s: %s", hp->name, err);
			return -1;
		}
		if (secret_name(hp->name))
			add_secret(s, text);
	}
	return 0;
oom:
	snprintf(errstr, errstr_size, "params: out of memory");
	return -1;
}

static int compile_body(httpsrc *s, const dtk_value *params, char *errstr, size_t errstr_size)
{
	const dtk_value *json = dtk_value_map_get(params, "json");
	const dtk_value *data = dtk_value_map_get(params, "data");
	if (json && json->type != DTK_V_NULL) {
		if (check_json_templates(json, errstr, errstr_size) != 0)
			return -1;
		s->json = dtk_value_copy(json);
		if (!s->json)
			goto oom;
	}
	if (data && data->type != DTK_V_NULL) {
		if (s->json) {
			snprintf(errstr, errstr_size, "data: give either json or data, not both");
			return -1;
		}
		if (data->type == DTK_V_STR) {
			s->data = strdup(data->u.str.s);
		} else if (data->type == DTK_V_MAP) {
			dtk_value *m;
			dtk_buf b;
			if (compile_map_param(params, "data", &m, errstr, errstr_size) != 0)
				return -1;
			dtk_buf_init(&b, (size_t)1 << 20);
			for (size_t i = 0; i < m->u.map.n; i++) {
				char text[8192], esc[3 * 8192];
				text[0] = '\0';
				if (m->u.map.items[i].val->type != DTK_V_NULL)
					scalar_text(m->u.map.items[i].val, text, sizeof(text));
				if (i)
					dtk_buf_addc(&b, '&');
				dtk_http_escape(m->u.map.items[i].key->u.str.s, esc, sizeof(esc));
				dtk_buf_adds(&b, esc);
				dtk_buf_addc(&b, '=');
				dtk_http_escape(text, esc, sizeof(esc));
				dtk_buf_adds(&b, esc);
			}
			s->data = b.failed ? NULL : dtk_buf_take(&b);
			dtk_buf_free(&b);
			s->form = 1;
		} else {
			snprintf(errstr, errstr_size, "data: must be a string or a mapping");
			return -1;
		}
		if (!s->data)
			goto oom;
	}
	return 0;
oom:
	snprintf(errstr, errstr_size, "json: out of memory");
	return -1;
}

static int http_compile(const dtk_value *params, dtk_value *warnings, void **compiled, char *errstr,
			size_t errstr_size)
{
	char err[256];
	int rc = -1;
	int64_t retries;
	httpsrc *s = calloc(1, sizeof(*s));
	*compiled = NULL;
	if (!s || !(s->secrets = dtk_value_list())) {
		snprintf(errstr, errstr_size, "http: out of memory");
		goto out;
	}
	const char *url = dtk_value_cstr(dtk_value_map_get(params, "url"));
	if (!url || !*url) {
		snprintf(errstr, errstr_size, "url: required, the http(s) URL to request");
		goto out;
	}
	s->url = dtk_template_compile(url, err, sizeof(err));
	if (dtk_collect_http_limit_key(url, s->limit_key, sizeof(s->limit_key)) != 0 ||
	    strstr(s->limit_key, "{"))
		s->limit_key[0] = '\0';
	if (!s->url) {
		snprintf(errstr, errstr_size, "url: %s", err);
		goto out;
	}
	if (!dtk_template_has_syntax(url) && dtk_http_check_url(url, err, sizeof(err)) != 0) {
		snprintf(errstr, errstr_size, "url: %s", err);
		goto out;
	}
	if (compile_headers(s, params, errstr, errstr_size) != 0 ||
	    compile_params(s, params, errstr, errstr_size) != 0 ||
	    compile_body(s, params, errstr, errstr_size) != 0)
		goto out;
	const dtk_value *m = dtk_value_map_get(params, "method");
	const char *method = s->json || s->data ? "POST" : "GET";
	if (m && m->type != DTK_V_NULL) {
		if (m->type != DTK_V_STR ||
		    (strcasecmp(m->u.str.s, "GET") != 0 && strcasecmp(m->u.str.s, "POST") != 0)) {
			snprintf(errstr, errstr_size, "method: must be GET or POST");
			goto out;
		}
		method = strcasecmp(m->u.str.s, "GET") == 0 ? "GET" : "POST";
	}
	if (strcmp(method, "GET") == 0 && (s->json || s->data)) {
		snprintf(errstr, errstr_size, "method: GET sends no body; use POST with %s",
			 s->json ? "json" : "data");
		goto out;
	}
	s->method = strdup(method);
	const dtk_value *f = dtk_value_map_get(params, "response_format");
	s->format = FMT_JSON;
	if (f && f->type != DTK_V_NULL) {
		const char *fs = dtk_value_cstr(f);
		if (fs && strcasecmp(fs, "json") == 0)
			s->format = FMT_JSON;
		else if (fs && strcasecmp(fs, "text") == 0)
			s->format = FMT_TEXT;
		else if (fs && strcasecmp(fs, "csv") == 0)
			s->format = FMT_CSV;
		else {
			snprintf(errstr, errstr_size, "response_format: must be json, text or csv");
			goto out;
		}
	}
	const dtk_value *vp = dtk_value_map_get(params, "value_path");
	if (vp && vp->type != DTK_V_NULL) {
		if (vp->type != DTK_V_STR) {
			snprintf(errstr, errstr_size,
				 "value_path: must be a string like "
				 "data.result[0].value[1]");
			goto out;
		}
		s->value_path = strdup(vp->u.str.s);
		if (!s->value_path)
			goto oom;
		if (s->format == FMT_TEXT && warnings) {
			dtk_value *w =
			    dtk_value_str("value_path: ignored with response_format text");
			if (w && dtk_value_list_push(warnings, w) != 0)
				dtk_value_free(&w);
		}
	}
	if (dtk_param_number(params, "timeout", 30, &s->timeout_s, errstr, errstr_size) != 0 ||
	    dtk_param_number(params, "retry_delay", 1, &s->retry_delay_s, errstr, errstr_size) !=
		0 ||
	    dtk_param_bool(params, "verify_ssl", 1, &s->verify, errstr, errstr_size) != 0 ||
	    dtk_param_int(params, "retry_count", 3, &retries, errstr, errstr_size) != 0)
		goto out;
	if (!(s->timeout_s > 0) || s->timeout_s > 86400) {
		snprintf(errstr, errstr_size, "timeout: must be a number of seconds > 0");
		goto out;
	}
	if (s->retry_delay_s < 0 || s->retry_delay_s > 3600) {
		snprintf(errstr, errstr_size, "retry_delay: must be 0 to 3600 seconds");
		goto out;
	}
	if (retries < 0 || retries > 100) {
		snprintf(errstr, errstr_size, "retry_count: must be 0 to 100");
		goto out;
	}
	s->attempts = retries < 1 ? 1 : (int)retries;
	if (!s->method)
		goto oom;
	*compiled = s;
	s = NULL;
	rc = 0;
	goto out;
oom:
	snprintf(errstr, errstr_size, "http: out of memory");
out:
	httpsrc_destroy(s);
	return rc;
}

/* Renders every string of v in place. */
static int render_json(dtk_value *v, const dtk_value *vars, char *errstr, size_t errstr_size)
{
	char err[256];
	if (v->type == DTK_V_STR && dtk_template_has_syntax(v->u.str.s)) {
		dtk_template *t = dtk_template_compile(v->u.str.s, err, sizeof(err));
		char *out =
		    t ? dtk_template_render(t, vars, DTK_TEMPLATE_STRICT, err, sizeof(err)) : NULL;
		dtk_template_free(&t);
		if (!out) {
			snprintf(errstr, errstr_size, "json: %s", err);
			return -1;
		}
		dtk_value_str_take(v, out, strlen(out));
	} else if (v->type == DTK_V_LIST) {
		for (size_t i = 0; i < v->u.list.n; i++)
			if (render_json(v->u.list.items[i], vars, errstr, errstr_size) != 0)
				return -1;
	} else if (v->type == DTK_V_MAP) {
		for (size_t i = 0; i < v->u.map.n; i++)
			if (render_json(v->u.map.items[i].val, vars, errstr, errstr_size) != 0)
				return -1;
	}
	return 0;
}

/* The request URL: the rendered url plus the rendered params. */
static char *build_url(const httpsrc *s, const dtk_value *vars, char *errstr, size_t errstr_size)
{
	char err[256];
	dtk_buf b;
	char *url = dtk_template_render(s->url, vars, DTK_TEMPLATE_STRICT, err, sizeof(err));
	if (!url) {
		snprintf(errstr, errstr_size, "url: %s", err);
		return NULL;
	}
	if (dtk_http_check_url(url, err, sizeof(err)) != 0) {
		snprintf(errstr, errstr_size, "url: %s", err);
		free(url);
		return NULL;
	}
	dtk_buf_init(&b, (size_t)1 << 20);
	dtk_buf_adds(&b, url);
	free(url);
	for (size_t i = 0; i < s->nparams; i++) {
		char *val = dtk_template_render(s->params[i].value, vars, DTK_TEMPLATE_STRICT, err,
						sizeof(err));
		if (!val) {
			snprintf(errstr, errstr_size, "params: %s: %s", s->params[i].name, err);
			dtk_buf_free(&b);
			return NULL;
		}
		size_t elen = 3 * (strlen(val) + strlen(s->params[i].name)) + 1;
		char *esc = malloc(elen);
		if (esc) {
			dtk_buf_addc(&b, i == 0 && !strchr(dtk_buf_str(&b), '?') ? '?' : '&');
			dtk_http_escape(s->params[i].name, esc, elen);
			dtk_buf_adds(&b, esc);
			dtk_buf_addc(&b, '=');
			dtk_http_escape(val, esc, elen);
			dtk_buf_adds(&b, esc);
		} else {
			b.failed = 1;
		}
		free(esc);
		free(val);
	}
	if (b.failed) {
		snprintf(errstr, errstr_size, "url: too long");
		dtk_buf_free(&b);
		return NULL;
	}
	url = dtk_buf_take(&b);
	dtk_buf_free(&b);
	return url;
}

/* The compiled secrets plus the values of secret-looking query parameters
 * of the final URL (`?api_key=...`, `&token=...`), as sent.
 * NULL when there are none to add (or out of memory). */
static dtk_value *request_secrets(const httpsrc *s, const char *url)
{
	const char *q = strchr(url, '?');
	dtk_value *out = NULL;
	while (q && *q) {
		q++;
		size_t n = strcspn(q, "&#");
		const char *eq = memchr(q, '=', n);
		if (eq && eq + 1 < q + n) {
			char name[128];
			size_t nl = (size_t)(eq - q), vl = (size_t)(q + n - eq - 1);
			snprintf(name, sizeof(name), "%.*s", (int)(nl < 127 ? nl : 127), q);
			if (secret_name(name)) {
				if (!out)
					out = dtk_value_copy(s->secrets);
				dtk_value *v = out ? dtk_value_strn(eq + 1, vl) : NULL;
				if (v && dtk_value_list_push(out, v) != 0)
					dtk_value_free(&v);
			}
		}
		q += n;
		if (*q == '#')
			break;
	}
	return out;
}

static int http_collect(const void *compiled, const dtk_collect_request *req, dtk_rows *out,
			char *errstr, size_t errstr_size)
{
	const httpsrc *s = compiled;
	char err[1024];
	int rc = -1;
	char *url = NULL;
	dtk_value *vars = dtk_collect_vars(req), *json = NULL, *secrets = NULL;
	dtk_buf body;
	dtk_http_response resp;
	const char **headers = NULL;
	memset(&resp, 0, sizeof(resp));
	dtk_buf_init(&body, (size_t)16 << 20);
	if (!vars) {
		snprintf(errstr, errstr_size, "http: out of memory");
		goto out;
	}
	url = build_url(s, vars, errstr, errstr_size);
	if (!url)
		goto out;
	headers = calloc(s->nheaders + 1, sizeof(*headers));
	if (!headers) {
		snprintf(errstr, errstr_size, "http: out of memory");
		goto out;
	}
	size_t nh = 0;
	for (size_t i = 0; i < s->nheaders; i++)
		headers[nh++] = s->headers[i];
	if (s->json) {
		json = dtk_value_copy(s->json);
		if (!json || render_json(json, vars, errstr, errstr_size) != 0) {
			if (!json)
				snprintf(errstr, errstr_size, "http: out of memory");
			goto out;
		}
		if (dtk_json_emit(&body, json, DTK_JSON_RAW_UTF8) != 0) {
			snprintf(errstr, errstr_size, "json: the body is too large");
			goto out;
		}
		headers[nh++] = "Content-Type: application/json";
	} else if (s->data) {
		dtk_buf_adds(&body, s->data);
		if (s->form)
			headers[nh++] = "Content-Type: application/x-www-form-urlencoded";
	}
	dtk_http_request hr = {
	    .method = s->method,
	    .url = url,
	    .headers = headers,
	    .nheaders = nh,
	    .body = s->json || s->data ? dtk_buf_str(&body) : NULL,
	    .body_len = body.len,
	    .timeout_s = s->timeout_s,
	    .no_verify_tls = !s->verify,
	    .max_attempts = s->attempts,
	    .retry_delay_s = s->retry_delay_s,
	    .secrets = s->secrets,
	};
	secrets = request_secrets(s, url);
	hr.secrets = secrets ? secrets : s->secrets;
	if (dtk_http_do(NULL, &hr, &resp, err, sizeof(err)) != 0) {
		if (resp.attempts > 1)
			snprintf(errstr, errstr_size, "http: %s (after %d attempts)", err,
				 resp.attempts);
		else
			snprintf(errstr, errstr_size, "http: %s", err);
		goto out;
	}
	double value = 0;
	int missing = 0;
	static const char *const fmt_names[] = {"json", "text", "csv"};
	if (dtk_collect_http_extract(resp.body, resp.body_len, fmt_names[s->format],
				     s->format == FMT_TEXT ? NULL : s->value_path, &value, &missing,
				     errstr, errstr_size) != 0)
		goto out;
	if (dtk_rows_push(out, req->period_finish, value, missing, NULL) != 0) {
		snprintf(errstr, errstr_size, "http: out of memory");
		goto out;
	}
	rc = 0;
out:
	dtk_http_response_free(&resp);
	dtk_buf_free(&body);
	free(headers);
	free(url);
	dtk_value_free(&json);
	dtk_value_free(&secrets);
	dtk_value_free(&vars);
	return rc;
}

static int http_limit_key(const void *compiled, char *out, size_t outsz)
{
	const httpsrc *s = compiled;
	if (!s->limit_key[0])
		return 0;
	snprintf(out, outsz, "%s", s->limit_key);
	return 1;
}

static int http_has_timestamps(const void *compiled)
{
	return 0;
}

/* --- extraction: pure functions, exposed for tests ---------------------- */

/* A short, printable excerpt of v for messages. */
static void excerpt(const dtk_value *v, char *out, size_t outsz)
{
	dtk_buf b;
	dtk_buf_init(&b, 4096);
	if (dtk_json_emit(&b, v, DTK_JSON_RAW_UTF8) != 0 && !b.len)
		dtk_buf_adds(&b, "...");
	if (b.len > HTTP_EXCERPT)
		snprintf(out, outsz, "%.*s...", HTTP_EXCERPT, dtk_buf_str(&b));
	else
		snprintf(out, outsz, "%s", dtk_buf_str(&b));
	dtk_buf_free(&b);
}

/* Text as a number: 0 with *value (or *missing for nan/inf); -1 when the
 * text is not a number. */
static int parse_number(const char *s, size_t len, double *value, int *missing)
{
	char buf[128], *end;
	while (len && isspace((unsigned char)*s)) {
		s++;
		len--;
	}
	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	errno = 0;
	double d = strtod(buf, &end);
	if (*end != '\0')
		return -1;
	*missing = !isfinite(d);
	*value = *missing ? 0 : d;
	return 0;
}

static int value_of(const dtk_value *v, const char *path, double *value, int *missing, char *errstr,
		    size_t errstr_size)
{
	char ex[HTTP_EXCERPT + 8];
	*missing = 0;
	switch (v->type) {
	case DTK_V_NULL:
		*missing = 1;
		return 0;
	case DTK_V_INT:
		*value = (double)v->u.i;
		return 0;
	case DTK_V_FLOAT:
		*missing = !isfinite(v->u.f);
		*value = *missing ? 0 : v->u.f;
		return 0;
	case DTK_V_BOOL:
		*value = v->u.b ? 1 : 0;
		return 0;
	case DTK_V_STR:
		if (parse_number(v->u.str.s, v->u.str.len, value, missing) == 0)
			return 0;
		break;
	default:
		break;
	}
	excerpt(v, ex, sizeof(ex));
	snprintf(errstr, errstr_size, "value_path '%s': %s is not a number", path ? path : "", ex);
	return -1;
}

/* One step of a path: a key, or an index. */
typedef struct path_step {
	const char *key;
	size_t keylen;
	int is_index;
	long long index;
} path_step;

/* Reads the step at *p (after a separating dot, if any) and advances. 1 with
 * a step, 0 at the end, -1 on a syntax error. */
static int next_step(const char **pp, path_step *st)
{
	const char *p = *pp;
	memset(st, 0, sizeof(*st));
	if (*p == '.')
		p++;
	if (!*p)
		return 0;
	if (*p == '[') {
		char *end;
		errno = 0;
		long long i = strtoll(p + 1, &end, 10);
		if (end == p + 1 || *end != ']' || errno)
			return -1;
		st->is_index = 1;
		st->index = i;
		*pp = end + 1;
		return 1;
	}
	size_t n = strcspn(p, ".[");
	if (n == 0)
		return -1;
	st->key = p;
	st->keylen = n;
	*pp = p + n;
	return 1;
}

static int all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return n > 0;
}

/* Walks path from root. Returns the node, or NULL with errstr naming the
 * path and the step that failed. */
static const dtk_value *walk(const dtk_value *root, const char *path, char *errstr,
			     size_t errstr_size)
{
	const dtk_value *v = root;
	const char *p = path;
	path_step st;
	int r;
	while ((r = next_step(&p, &st)) == 1) {
		if (st.key && v->type == DTK_V_LIST && all_digits(st.key, st.keylen)) {
			st.is_index = 1;
			st.index = strtoll(st.key, NULL, 10);
		}
		if (st.is_index) {
			if (v->type != DTK_V_LIST) {
				snprintf(errstr, errstr_size,
					 "value_path '%s': [%lld] needs a list, found %s", path,
					 st.index, dtk_value_type_name(v));
				return NULL;
			}
			long long n = (long long)v->u.list.n;
			long long i = st.index < 0 ? n + st.index : st.index;
			if (i < 0 || i >= n) {
				snprintf(
				    errstr, errstr_size,
				    "value_path '%s': index %lld is out of range (the list has "
				    "%lld items)",
				    path, st.index, n);
				return NULL;
			}
			v = v->u.list.items[i];
			continue;
		}
		if (v->type != DTK_V_MAP) {
			snprintf(errstr, errstr_size,
				 "value_path '%s': key '%.*s' needs an object, found %s", path,
				 (int)st.keylen, st.key, dtk_value_type_name(v));
			return NULL;
		}
		const dtk_value *next = NULL;
		for (size_t i = 0; i < v->u.map.n && !next; i++) {
			const dtk_value *k = v->u.map.items[i].key;
			if (k->type == DTK_V_STR && k->u.str.len == st.keylen &&
			    memcmp(k->u.str.s, st.key, st.keylen) == 0)
				next = v->u.map.items[i].val;
		}
		if (!next) {
			snprintf(errstr, errstr_size,
				 "value_path '%s': no key '%.*s' in the response", path,
				 (int)st.keylen, st.key);
			return NULL;
		}
		v = next;
	}
	if (r < 0) {
		snprintf(errstr, errstr_size,
			 "value_path '%s': not a path like data.result[0].value[1]", path);
		return NULL;
	}
	return v;
}

/* Splits one CSV record starting at *p into fields (RFC 4180 quoting) as a
 * list of strings, advancing *p past its line end. NULL when out of memory. */
static dtk_value *csv_record(const char **pp, const char *end)
{
	dtk_value *rec = dtk_value_list();
	dtk_buf f;
	const char *p = *pp;
	dtk_buf_init(&f, (size_t)16 << 20);
	if (!rec)
		return NULL;
	for (;;) {
		dtk_buf_reset(&f);
		if (p < end && *p == '"') {
			p++;
			while (p < end) {
				if (*p == '"' && p + 1 < end && p[1] == '"') {
					dtk_buf_addc(&f, '"');
					p += 2;
				} else if (*p == '"') {
					p++;
					break;
				} else {
					dtk_buf_addc(&f, *p++);
				}
			}
		}
		while (p < end && *p != ',' && *p != '\n' && *p != '\r')
			dtk_buf_addc(&f, *p++);
		dtk_value *s = dtk_value_strn(dtk_buf_str(&f), f.len);
		if (!s || dtk_value_list_push(rec, s) != 0) {
			dtk_value_free(&s);
			dtk_value_free(&rec);
			break;
		}
		if (p < end && *p == ',') {
			p++;
			continue;
		}
		if (p < end && *p == '\r')
			p++;
		if (p < end && *p == '\n')
			p++;
		break;
	}
	dtk_buf_free(&f);
	*pp = p;
	return rec;
}

static int extract_csv(const char *body, size_t len, const char *path, double *value, int *missing,
		       char *errstr, size_t errstr_size)
{
	const char *p = body, *end = body + len;
	int rc = -1;
	dtk_value *header = NULL, *rec = NULL;
	char col[256];
	long long row = 0;
	while (p < end && (*p == '\n' || *p == '\r'))
		p++;
	if (p >= end) {
		snprintf(errstr, errstr_size, "csv: the response is empty");
		return -1;
	}
	header = csv_record(&p, end);
	if (!header)
		goto oom;
	size_t ncols = header->u.list.n;
	if (path && *path) {
		size_t n = strcspn(path, "[");
		if (n >= sizeof(col) || n == 0) {
			snprintf(errstr, errstr_size,
				 "value_path '%s': expected COLUMN or COLUMN[ROW]", path);
			goto out;
		}
		memcpy(col, path, n);
		col[n] = '\0';
		if (path[n] == '[') {
			char *e;
			errno = 0;
			row = strtoll(path + n + 1, &e, 10);
			if (e == path + n + 1 || *e != ']' || e[1] != '\0' || errno) {
				snprintf(errstr, errstr_size,
					 "value_path '%s': expected COLUMN or COLUMN[ROW]", path);
				goto out;
			}
		}
	} else if (ncols == 1) {
		snprintf(col, sizeof(col), "%s", header->u.list.items[0]->u.str.s);
	} else {
		dtk_buf b;
		dtk_buf_init(&b, 1024);
		for (size_t i = 0; i < ncols; i++)
			dtk_buf_printf(&b, "%s%s", i ? ", " : "", header->u.list.items[i]->u.str.s);
		snprintf(errstr, errstr_size,
			 "value_path: required for a csv with %zu columns (%s), e.g. %s or %s[0]",
			 ncols, dtk_buf_str(&b), header->u.list.items[ncols - 1]->u.str.s,
			 header->u.list.items[ncols - 1]->u.str.s);
		dtk_buf_free(&b);
		goto out;
	}
	size_t ci = ncols;
	for (size_t i = 0; i < ncols; i++) {
		const char *h = header->u.list.items[i]->u.str.s;
		while (isspace((unsigned char)*h))
			h++;
		size_t hl = strlen(h);
		while (hl && isspace((unsigned char)h[hl - 1]))
			hl--;
		if (hl == strlen(col) && memcmp(h, col, hl) == 0) {
			ci = i;
			break;
		}
	}
	if (ci == ncols) {
		snprintf(errstr, errstr_size, "value_path '%s': no column '%s' in the csv header",
			 path ? path : "", col);
		goto out;
	}
	/* data rows, skipping blank lines */
	dtk_value *rows = dtk_value_list();
	if (!rows)
		goto oom;
	while (p < end) {
		if (*p == '\n' || *p == '\r') {
			p++;
			continue;
		}
		rec = csv_record(&p, end);
		if (!rec || dtk_value_list_push(rows, rec) != 0) {
			dtk_value_free(&rec);
			dtk_value_free(&rows);
			goto oom;
		}
		rec = NULL;
	}
	long long nrows = (long long)rows->u.list.n;
	long long ri = row < 0 ? nrows + row : row;
	if (ri < 0 || ri >= nrows) {
		snprintf(errstr, errstr_size,
			 "value_path '%s': row %lld is out of range (the csv has %lld data rows)",
			 path ? path : col, row, nrows);
		dtk_value_free(&rows);
		goto out;
	}
	const dtk_value *r = rows->u.list.items[ri];
	if (ci >= r->u.list.n) {
		snprintf(errstr, errstr_size, "value_path '%s': row %lld has no column '%s'",
			 path ? path : col, row, col);
		dtk_value_free(&rows);
		goto out;
	}
	const dtk_value *cell = r->u.list.items[ci];
	if (cell->u.str.len == 0 || strcasecmp(cell->u.str.s, "null") == 0) {
		*missing = 1;
		*value = 0;
		rc = 0;
	} else {
		rc = value_of(cell, path ? path : col, value, missing, errstr, errstr_size);
	}
	dtk_value_free(&rows);
	goto out;
oom:
	snprintf(errstr, errstr_size, "csv: out of memory");
out:
	dtk_value_free(&header);
	return rc;
}

/* Extracts the value from a response body per format ("json", "text",
 * "csv") and value_path (may be NULL). Returns 0 with *value, or with
 * *is_missing set for null/NaN/infinite; -1 with errstr naming the path
 * (and the value) when it does not exist or is not a number. */
int dtk_collect_http_extract(const char *body, size_t len, const char *format,
			     const char *value_path, double *value, int *is_missing, char *errstr,
			     size_t errstr_size)
{
	char err[256], ex[HTTP_EXCERPT + 8];
	*value = 0;
	*is_missing = 0;
	if (!body)
		body = "";
	if (strcmp(format, "text") == 0) {
		if (parse_number(body, len, value, is_missing) == 0)
			return 0;
		size_t n = len > HTTP_EXCERPT ? HTTP_EXCERPT : len;
		snprintf(errstr, errstr_size, "response_format text: \"%.*s%s\" is not a number",
			 (int)n, body, len > n ? "..." : "");
		return -1;
	}
	if (strcmp(format, "csv") == 0)
		return extract_csv(body, len, value_path, value, is_missing, errstr, errstr_size);
	dtk_value *doc = dtk_json_parse(body, len, err, sizeof(err));
	if (!doc) {
		size_t n = len > HTTP_EXCERPT ? HTTP_EXCERPT : len;
		snprintf(errstr, errstr_size, "the response is not JSON (%s): \"%.*s%s\"", err,
			 (int)n, body, len > n ? "..." : "");
		return -1;
	}
	int rc = -1;
	const dtk_value *v =
	    value_path && *value_path ? walk(doc, value_path, errstr, errstr_size) : doc;
	if (v) {
		if (!(value_path && *value_path) &&
		    (v->type == DTK_V_MAP || v->type == DTK_V_LIST)) {
			excerpt(v, ex, sizeof(ex));
			snprintf(errstr, errstr_size,
				 "value_path: required, the response is %s, not a number", ex);
		} else {
			rc = value_of(v, value_path, value, is_missing, errstr, errstr_size);
		}
	}
	dtk_value_free(&doc);
	return rc;
}

/* The connection-limit key of an http(s) URL: scheme://host:port with the
 * default port filled in and the host lower-cased (fleet.md). Returns 0, or
 * -1 when url is not an http(s) URL or out is too small. */
int dtk_collect_http_limit_key(const char *url, char *out, size_t outsz)
{
	const char *p;
	int https;
	if (strncasecmp(url, "https://", 8) == 0) {
		https = 1;
		p = url + 8;
	} else if (strncasecmp(url, "http://", 7) == 0) {
		https = 0;
		p = url + 7;
	} else {
		return -1;
	}
	size_t auth = strcspn(p, "/?#");
	const char *at = NULL;
	for (size_t i = 0; i < auth; i++)
		if (p[i] == '@')
			at = p + i;
	if (at) {
		auth -= (size_t)(at + 1 - p);
		p = at + 1;
	}
	size_t hlen;
	const char *port = NULL;
	if (*p == '[') {
		const char *rb = memchr(p, ']', auth);
		if (!rb)
			return -1;
		hlen = (size_t)(rb + 1 - p);
		if (rb + 1 < p + auth && rb[1] == ':')
			port = rb + 2;
	} else {
		const char *colon = memchr(p, ':', auth);
		hlen = colon ? (size_t)(colon - p) : auth;
		if (colon)
			port = colon + 1;
	}
	if (hlen == 0)
		return -1;
	char host[256];
	if (hlen >= sizeof(host))
		return -1;
	for (size_t i = 0; i < hlen; i++)
		host[i] = (char)tolower((unsigned char)p[i]);
	host[hlen] = '\0';
	long portnum = https ? 443 : 80;
	if (port && port < p + auth) {
		char *e;
		long v = strtol(port, &e, 10);
		if (e != p + auth || v < 1 || v > 65535)
			return -1;
		portnum = v;
	}
	int n = snprintf(out, outsz, "%s://%s:%ld", https ? "https" : "http", host, portnum);
	return n >= 0 && (size_t)n < outsz ? 0 : -1;
}

static const char *const http_params[] = {
    "url",	   "method",	      "headers",	 "params",    "json",
    "data",	   "response_format", "value_path",	 "timeout",   "verify_ssl",
    "retry_count", "retry_delay",     "max_connections", "limit_key", NULL,
};

const dtk_collector_type dtk_collector_http = {
    .name = "http",
    .summary = "one value from an HTTP(S) endpoint's JSON, text or CSV response (url, "
	       "value_path)",
    .compile = http_compile,
    .destroy = httpsrc_destroy,
    .collect = http_collect,
    .has_timestamps = http_has_timestamps,
    .limit_key = http_limit_key,
    .known_params = http_params,
};
