/* The `prometheus` collector (config.md, Collectors): a PromQL query over
 * the period through the HTTP API,
 *   GET <url>/api/v1/query_range?query=Q&start=<period_start>&end=<period_finish>&step=<interval s>
 * with one row per returned sample (at the sample's timestamp, oldest
 * first), so a run's current point is the newest sample, the one at
 * period_finish.
 *
 * Params: url (the server's base URL, required), query (PromQL, required;
 * plain text, not a template: Prometheus's own `[5m]` ranges and `{}`
 * matchers would collide with template syntax), series (which series to
 * use when the query returns several), timeout 30, verify_ssl true,
 * headers (e.g. Authorization).
 *
 * Choices where config.md is silent:
 * - series is a label matcher string, `job="api", instance="a:9100"` (only
 *   `=`; values in double quotes with \" and \\ escapes), or a map of label
 *   names to values. A series matches when it has every listed label with
 *   that value. No series param and more than one series, or a series
 *   param that several series match, is an error listing their labels.
 *   No series (or none matching) is no rows: a missing point.
 * - A sample value "NaN", "+Inf" or "-Inf" is a missing row.
 * - has_timestamps is 0: load-history asks one slot per request; the
 *   sample at a slot's period_start repeats the previous slot's newest
 *   sample and overwrites it with the same value.
 * - The connection limit key is <scheme>://<host>:<port>.
 *
 * A compiled source is immutable and thread-safe. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "collect/collector.h"
#include "util/buf.h"
#include "util/http.h"
#include "util/json.h"
#include "util/params.h"

typedef struct promsrc {
	char *base; /* the url without a trailing slash */
	char *query;
	dtk_value *series; /* map label -> value, or NULL */
	char **headers;
	size_t nheaders;
	double timeout_s;
	int verify;
	dtk_value *secrets;
} promsrc;

int dtk_collect_http_limit_key(const char *url, char *out, size_t outsz);
int dtk_collect_prometheus_series(const dtk_value *param, dtk_value **out, char *errstr,
				  size_t errstr_size);
int dtk_collect_prometheus_parse(const char *body, size_t len, const dtk_value *series,
				 dtk_rows *out, char *errstr, size_t errstr_size);

static void promsrc_destroy(void *compiled)
{
	promsrc *s = compiled;
	if (!s)
		return;
	free(s->base);
	free(s->query);
	dtk_value_free(&s->series);
	for (size_t i = 0; i < s->nheaders; i++)
		free(s->headers[i]);
	free(s->headers);
	dtk_value_free(&s->secrets);
	free(s);
}

/* Parses a matcher string `a="x", b="y"` into a map. */
static int parse_matcher(const char *s, dtk_value *map, char *errstr, size_t errstr_size)
{
	const char *p = s;
	dtk_buf val;
	int rc = -1;
	dtk_buf_init(&val, 65536);
	if (*p == '{')
		p++;
	for (;;) {
		while (isspace((unsigned char)*p) || *p == ',')
			p++;
		if (!*p || *p == '}')
			break;
		const char *name = p;
		while (isalnum((unsigned char)*p) || *p == '_')
			p++;
		size_t nlen = (size_t)(p - name);
		while (isspace((unsigned char)*p))
			p++;
		if (nlen == 0 || *p != '=' || p[1] == '~') {
			snprintf(
			    errstr, errstr_size,
			    "series: expected label=\"value\" pairs like job=\"api\" (only =)");
			goto out;
		}
		p++;
		while (isspace((unsigned char)*p))
			p++;
		if (*p != '"') {
			snprintf(errstr, errstr_size,
				 "series: the value of %.*s must be in double "
				 "quotes",
				 (int)nlen, name);
			goto out;
		}
		p++;
		dtk_buf_reset(&val);
		while (*p && *p != '"') {
			if (*p == '\\' && p[1])
				p++;
			dtk_buf_addc(&val, *p++);
		}
		if (*p != '"') {
			snprintf(errstr, errstr_size, "series: unclosed quote after %.*s",
				 (int)nlen, name);
			goto out;
		}
		p++;
		char key[256];
		snprintf(key, sizeof(key), "%.*s", (int)(nlen < 255 ? nlen : 255), name);
		if (dtk_value_map_set_str(map, key, dtk_buf_str(&val)) != 0) {
			snprintf(errstr, errstr_size, "series: out of memory");
			goto out;
		}
	}
	rc = 0;
out:
	dtk_buf_free(&val);
	return rc;
}

/* The series param as a map of label -> value (NULL when absent), owned by
 * the caller. Exposed for tests. -1 with "series: ..." when malformed. */
int dtk_collect_prometheus_series(const dtk_value *param, dtk_value **out, char *errstr,
				  size_t errstr_size)
{
	*out = NULL;
	if (!param || param->type == DTK_V_NULL)
		return 0;
	dtk_value *map = dtk_value_map();
	if (!map) {
		snprintf(errstr, errstr_size, "series: out of memory");
		return -1;
	}
	if (param->type == DTK_V_STR) {
		if (parse_matcher(param->u.str.s, map, errstr, errstr_size) != 0)
			goto fail;
	} else if (param->type == DTK_V_MAP) {
		for (size_t i = 0; i < param->u.map.n; i++) {
			const dtk_value *k = param->u.map.items[i].key,
					*v = param->u.map.items[i].val;
			if (k->type != DTK_V_STR || v->type != DTK_V_STR) {
				snprintf(errstr, errstr_size,
					 "series: label names and values must be strings");
				goto fail;
			}
			if (dtk_value_map_set_str(map, k->u.str.s, v->u.str.s) != 0) {
				snprintf(errstr, errstr_size, "series: out of memory");
				goto fail;
			}
		}
	} else {
		snprintf(errstr, errstr_size,
			 "series: must be a label matcher like job=\"api\" or a map of labels");
		goto fail;
	}
	if (map->u.map.n == 0) {
		snprintf(errstr, errstr_size, "series: names no label");
		goto fail;
	}
	*out = map;
	return 0;
fail:
	dtk_value_free(&map);
	return -1;
}

static int matches(const dtk_value *labels, const dtk_value *series)
{
	for (size_t i = 0; i < series->u.map.n; i++) {
		const dtk_value *want = series->u.map.items[i].val;
		const dtk_value *got =
		    dtk_value_map_get(labels, dtk_value_cstr(series->u.map.items[i].key));
		if (!got || got->type != DTK_V_STR || got->u.str.len != want->u.str.len ||
		    memcmp(got->u.str.s, want->u.str.s, want->u.str.len) != 0)
			return 0;
	}
	return 1;
}

/* `{a="x", b="y"}` into b. */
static void add_labels(dtk_buf *b, const dtk_value *labels)
{
	dtk_buf_addc(b, '{');
	for (size_t i = 0; labels && labels->type == DTK_V_MAP && i < labels->u.map.n; i++) {
		const char *v = dtk_value_cstr(labels->u.map.items[i].val);
		dtk_buf_printf(b, "%s%s=\"%s\"", i ? ", " : "",
			       dtk_value_cstr(labels->u.map.items[i].key), v ? v : "");
	}
	dtk_buf_addc(b, '}');
}

/* Parses a query_range response into rows (one per sample, oldest first),
 * choosing the series per `series` (a map or NULL). Exposed for tests.
 * Returns 0 (no series: no rows), or -1 with errstr. */
int dtk_collect_prometheus_parse(const char *body, size_t len, const dtk_value *series,
				 dtk_rows *out, char *errstr, size_t errstr_size)
{
	char err[256];
	int rc = -1;
	dtk_buf b;
	dtk_buf_init(&b, 4096);
	dtk_value *doc = dtk_json_parse(body ? body : "", body ? len : 0, err, sizeof(err));
	if (!doc || doc->type != DTK_V_MAP) {
		snprintf(errstr, errstr_size, "prometheus: the response is not a JSON object%s%s",
			 doc ? "" : ": ", doc ? "" : err);
		goto out;
	}
	const char *status = dtk_value_cstr(dtk_value_map_get(doc, "status"));
	if (!status || strcmp(status, "success") != 0) {
		const char *e = dtk_value_cstr(dtk_value_map_get(doc, "error"));
		const char *et = dtk_value_cstr(dtk_value_map_get(doc, "errorType"));
		snprintf(errstr, errstr_size, "prometheus: %s%s%s", et ? et : "", et ? ": " : "",
			 e ? e : "the response status is not success");
		goto out;
	}
	const dtk_value *data = dtk_value_map_get(doc, "data");
	const char *rtype = dtk_value_cstr(dtk_value_map_get(data, "resultType"));
	const dtk_value *result = dtk_value_map_get(data, "result");
	if (!rtype || strcmp(rtype, "matrix") != 0 || !result || result->type != DTK_V_LIST) {
		snprintf(errstr, errstr_size,
			 "prometheus: expected a matrix result from query_range, got %s",
			 rtype ? rtype : "none");
		goto out;
	}
	const dtk_value *chosen = NULL;
	size_t nmatch = 0;
	for (size_t i = 0; i < result->u.list.n; i++) {
		const dtk_value *labels = dtk_value_map_get(result->u.list.items[i], "metric");
		if (series && !matches(labels, series))
			continue;
		nmatch++;
		if (!chosen)
			chosen = result->u.list.items[i];
	}
	if (nmatch > 1) {
		size_t shown = 0;
		for (size_t i = 0; i < result->u.list.n && shown < 10; i++) {
			const dtk_value *labels =
			    dtk_value_map_get(result->u.list.items[i], "metric");
			if (series && !matches(labels, series))
				continue;
			if (shown++)
				dtk_buf_adds(&b, ", ");
			add_labels(&b, labels);
		}
		if (nmatch > shown)
			dtk_buf_printf(&b, " and %zu more", nmatch - shown);
		snprintf(errstr, errstr_size,
			 "prometheus: the query returned %zu series%s; choose one with `series` "
			 "(e.g. a label matcher like job=\"api\"): %s",
			 nmatch, series ? " matching series" : "", dtk_buf_str(&b));
		goto out;
	}
	if (!chosen) {
		rc = 0;
		goto out;
	}
	const dtk_value *values = dtk_value_map_get(chosen, "values");
	if (!values || values->type != DTK_V_LIST) {
		snprintf(errstr, errstr_size, "prometheus: the series has no values");
		goto out;
	}
	for (size_t i = 0; i < values->u.list.n; i++) {
		const dtk_value *pair = values->u.list.items[i];
		double ts, v = 0;
		const char *text;
		if (pair->type != DTK_V_LIST || pair->u.list.n != 2 ||
		    !dtk_value_number(pair->u.list.items[0], &ts) ||
		    !(text = dtk_value_cstr(pair->u.list.items[1]))) {
			snprintf(errstr, errstr_size,
				 "prometheus: sample %zu is not [timestamp, \"value\"]", i + 1);
			goto out;
		}
		char *end;
		errno = 0;
		v = strtod(text, &end);
		if (end == text || *end != '\0') {
			snprintf(errstr, errstr_size,
				 "prometheus: sample value \"%.40s\" is not a number", text);
			goto out;
		}
		int missing = !isfinite(v);
		if (dtk_rows_push(out, (int64_t)floor(ts), v, missing, NULL) != 0) {
			snprintf(errstr, errstr_size, "prometheus: out of memory");
			goto out;
		}
	}
	rc = 0;
out:
	dtk_buf_free(&b);
	dtk_value_free(&doc);
	return rc;
}

static int prom_compile(const dtk_value *params, dtk_value *warnings, void **compiled, char *errstr,
			size_t errstr_size)
{
	char err[256];
	int rc = -1;
	promsrc *s = calloc(1, sizeof(*s));
	*compiled = NULL;
	if (!s || !(s->secrets = dtk_value_list())) {
		snprintf(errstr, errstr_size, "prometheus: out of memory");
		goto out;
	}
	const char *url = dtk_value_cstr(dtk_value_map_get(params, "url"));
	if (!url || !*url) {
		snprintf(errstr, errstr_size,
			 "url: required, the Prometheus server's base URL (http://host:9090)");
		goto out;
	}
	if (dtk_http_check_url(url, err, sizeof(err)) != 0) {
		snprintf(errstr, errstr_size, "url: %s", err);
		goto out;
	}
	if (strpbrk(url, "?#")) {
		snprintf(
		    errstr, errstr_size,
		    "url: the base URL only (http://host:9090 or with a path prefix); dtk adds "
		    "/api/v1/query_range and its parameters");
		goto out;
	}
	s->base = strdup(url);
	if (!s->base)
		goto oom;
	size_t n = strlen(s->base);
	while (n && s->base[n - 1] == '/')
		s->base[--n] = '\0';
	const dtk_value *q = dtk_value_map_get(params, "query");
	if (!q || q->type != DTK_V_STR || strspn(q->u.str.s, " \t\r\n") == q->u.str.len) {
		snprintf(errstr, errstr_size, "query: required, the PromQL expression");
		goto out;
	}
	s->query = strdup(q->u.str.s);
	if (!s->query)
		goto oom;
	if (dtk_collect_prometheus_series(dtk_value_map_get(params, "series"), &s->series, errstr,
					  errstr_size) != 0)
		goto out;
	if (dtk_param_number(params, "timeout", 30, &s->timeout_s, errstr, errstr_size) != 0 ||
	    dtk_param_bool(params, "verify_ssl", 1, &s->verify, errstr, errstr_size) != 0)
		goto out;
	if (!(s->timeout_s > 0) || s->timeout_s > 86400) {
		snprintf(errstr, errstr_size, "timeout: must be a number of seconds > 0");
		goto out;
	}
	const dtk_value *h = dtk_value_map_get(params, "headers");
	if (h && h->type != DTK_V_NULL) {
		if (h->type != DTK_V_MAP) {
			snprintf(errstr, errstr_size,
				 "headers: must be a mapping of names to strings");
			goto out;
		}
		s->headers = calloc(h->u.map.n ? h->u.map.n : 1, sizeof(*s->headers));
		if (!s->headers)
			goto oom;
		for (size_t i = 0; i < h->u.map.n; i++) {
			const char *k = dtk_value_cstr(h->u.map.items[i].key);
			const char *v = dtk_value_cstr(h->u.map.items[i].val);
			if (!k || !v || !*k || strpbrk(k, "\r\n:") || strpbrk(v, "\r\n")) {
				snprintf(errstr, errstr_size, "headers: '%s' is not a valid header",
					 k ? k : "?");
				goto out;
			}
			size_t len = strlen(k) + strlen(v) + 3;
			if (!(s->headers[s->nheaders] = malloc(len)))
				goto oom;
			snprintf(s->headers[s->nheaders++], len, "%s: %s", k, v);
			dtk_value *sv = *v ? dtk_value_str(v) : NULL;
			if (sv && dtk_value_list_push(s->secrets, sv) != 0)
				dtk_value_free(&sv);
		}
	}
	*compiled = s;
	s = NULL;
	rc = 0;
	goto out;
oom:
	snprintf(errstr, errstr_size, "prometheus: out of memory");
out:
	promsrc_destroy(s);
	return rc;
}

static int prom_collect(const void *compiled, const dtk_collect_request *req, dtk_rows *out,
			char *errstr, size_t errstr_size)
{
	const promsrc *s = compiled;
	char err[1024];
	int rc = -1;
	dtk_buf url;
	dtk_http_response resp;
	memset(&resp, 0, sizeof(resp));
	dtk_buf_init(&url, (size_t)1 << 20);
	size_t elen = 3 * strlen(s->query) + 1;
	char *esc = malloc(elen);
	if (!esc) {
		snprintf(errstr, errstr_size, "prometheus: out of memory");
		goto out;
	}
	dtk_http_escape(s->query, esc, elen);
	dtk_buf_printf(
	    &url, "%s/api/v1/query_range?query=%s&start=%" PRId64 "&end=%" PRId64 "&step=%" PRId64,
	    s->base, esc, req->period_start, req->period_finish,
	    req->interval > 0 ? req->interval : 60);
	if (url.failed) {
		snprintf(errstr, errstr_size, "prometheus: the query is too long");
		goto out;
	}
	dtk_http_request hr = {
	    .method = "GET",
	    .url = dtk_buf_str(&url),
	    .headers = (const char *const *)s->headers,
	    .nheaders = s->nheaders,
	    .timeout_s = s->timeout_s,
	    .no_verify_tls = !s->verify,
	    .max_attempts = 1,
	    .secrets = s->secrets,
	};
	if (dtk_http_do(NULL, &hr, &resp, err, sizeof(err)) != 0) {
		/* Prometheus explains 4xx/5xx in its JSON error body */
		char perr[512];
		dtk_rows scratch;
		dtk_rows_init(&scratch);
		if (resp.status >= 400 && resp.body &&
		    dtk_collect_prometheus_parse(resp.body, resp.body_len, NULL, &scratch, perr,
						 sizeof(perr)) != 0 &&
		    strncmp(perr, "prometheus: the response is not", 31) != 0)
			snprintf(errstr, errstr_size, "%s (HTTP %ld)", perr, resp.status);
		else
			snprintf(errstr, errstr_size, "prometheus: %s", err);
		dtk_rows_clear(&scratch);
		goto out;
	}
	if (dtk_collect_prometheus_parse(resp.body, resp.body_len, s->series, out, errstr,
					 errstr_size) != 0)
		goto out;
	rc = 0;
out:
	free(esc);
	dtk_http_response_free(&resp);
	dtk_buf_free(&url);
	return rc;
}

static int prom_limit_key(const void *compiled, char *out, size_t outsz)
{
	const promsrc *s = compiled;
	return dtk_collect_http_limit_key(s->base, out, outsz) == 0;
}

static int prom_has_timestamps(const void *compiled)
{
	return 0;
}

static const char *const prom_params[] = {
    "url",     "query",		  "series",    "timeout", "verify_ssl",
    "headers", "max_connections", "limit_key", NULL,
};

const dtk_collector_type dtk_collector_prometheus = {
    .name = "prometheus",
    .summary = "a PromQL query_range over the period from a Prometheus server (url, query, "
	       "series)",
    .compile = prom_compile,
    .destroy = promsrc_destroy,
    .collect = prom_collect,
    .has_timestamps = prom_has_timestamps,
    .limit_key = prom_limit_key,
    .known_params = prom_params,
};
