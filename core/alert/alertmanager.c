/* alertmanager: POSTs a one-alert array to <url>/api/v2/alerts on every
 * peer of an Alertmanager cluster (Alertmanager's clients must send to
 * all of them). Anomalies are re-posted on every anomalous check with
 * endsAt two intervals ahead, so an alert that stops being re-posted
 * resolves by itself; a recovery posts endsAt = now. Delivery succeeds
 * when at least one peer accepted. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alert/alerter.h"
#include "util/buf.h"
#include "util/http.h"
#include "util/json.h"
#include "util/params.h"

#define AM_ATTEMPTS 3
#define AM_RETRY_DELAY_S 1.0
#define AM_MAX_RESPONSE (64 * 1024)
#define AM_MAX_PEERS 16

typedef struct alertmanager {
	char **peers; /* full endpoint URLs: <url>/api/v2/alerts */
	size_t npeers;
	dtk_value *labels;	/* map of strings */
	dtk_value *annotations; /* map of strings */
	char *generator_url;
	double timeout_s;
} alertmanager;

static const char *const am_params[] = {"url",		 "labels",  "annotations",
					"generator_url", "timeout", NULL};

/* The labels DetectK sets and a config may not replace: they identify the
 * alert, so a recovery resolves what the anomaly fired. */
static const char *const own_labels[] = {"metric", "detector", "tags", NULL};

static void am_destroy(void *compiled)
{
	alertmanager *a = compiled;
	if (!a)
		return;
	for (size_t i = 0; i < a->npeers; i++)
		free(a->peers[i]);
	free(a->peers);
	dtk_value_free(&a->labels);
	dtk_value_free(&a->annotations);
	free(a->generator_url);
	free(a);
}

static int add_peer(alertmanager *a, const dtk_value *v, char *errstr, size_t errstr_size)
{
	char uerr[256];
	const char *url = dtk_value_cstr(v);
	if (!url) {
		snprintf(errstr, errstr_size, "url: must be a URL or a list of URLs");
		return -1;
	}
	if (dtk_http_check_url(url, uerr, sizeof(uerr)) != 0) {
		char shown[512];
		dtk_http_mask_url(url, 0, shown, sizeof(shown));
		snprintf(errstr, errstr_size, "url: '%s' %s", shown, uerr);
		return -1;
	}
	size_t len = strlen(url);
	while (len > 0 && url[len - 1] == '/')
		len--;
	dtk_buf b;
	dtk_buf_init(&b, 8192);
	dtk_buf_printf(&b, "%.*s/api/v2/alerts", (int)len, url);
	if (b.failed) {
		dtk_buf_free(&b);
		snprintf(errstr, errstr_size, "url: too long");
		return -1;
	}
	a->peers[a->npeers++] = dtk_buf_take(&b);
	dtk_buf_free(&b);
	return 0;
}

/* Alertmanager's label (and annotation) names: [a-zA-Z_][a-zA-Z0-9_]*. */
static int is_label_name(const char *s)
{
	if (!s || !*s || (*s >= '0' && *s <= '9'))
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return 0;
	return 1;
}

/* params[key]: a mapping of label names to strings (integers become their
 * text). *out is a new map owned by the caller. */
static int label_map(const dtk_value *params, const char *key, int labels, dtk_value **out,
		     char *errstr, size_t errstr_size)
{
	const dtk_value *m = dtk_value_map_get(params, key);
	*out = dtk_value_map();
	if (!*out) {
		snprintf(errstr, errstr_size, "%s: out of memory", key);
		return -1;
	}
	if (!m || m->type == DTK_V_NULL)
		return 0;
	if (m->type != DTK_V_MAP) {
		snprintf(errstr, errstr_size, "%s: must be a mapping of names to strings", key);
		return -1;
	}
	for (size_t i = 0; i < m->u.map.n; i++) {
		const char *name = dtk_value_cstr(m->u.map.items[i].key);
		const dtk_value *v = m->u.map.items[i].val;
		if (!is_label_name(name)) {
			snprintf(errstr, errstr_size,
				 "%s: '%s' is not a valid name ([a-zA-Z_][a-zA-Z0-9_]*)", key,
				 name ? name : "(not a string)");
			return -1;
		}
		for (size_t k = 0; labels && own_labels[k]; k++)
			if (strcmp(name, own_labels[k]) == 0) {
				snprintf(errstr, errstr_size, "%s: '%s' is set by DetectK", key,
					 name);
				return -1;
			}
		char num[32];
		const char *s = dtk_value_cstr(v);
		if (!s && v->type == DTK_V_INT) {
			snprintf(num, sizeof(num), "%lld", (long long)v->u.i);
			s = num;
		}
		if (!s) {
			snprintf(errstr, errstr_size, "%s: the value of '%s' must be a string", key,
				 name);
			return -1;
		}
		if (dtk_value_map_set_str(*out, name, s) != 0) {
			snprintf(errstr, errstr_size, "%s: out of memory", key);
			return -1;
		}
	}
	return 0;
}

static int am_compile(const dtk_value *params, dtk_value *warnings, void **compiled, char *errstr,
		      size_t errstr_size)
{
	char uerr[256];
	alertmanager *a = calloc(1, sizeof(*a));
	if (!a) {
		snprintf(errstr, errstr_size, "params: out of memory");
		return -1;
	}
	const dtk_value *url = dtk_value_map_get(params, "url");
	size_t n = url && url->type == DTK_V_LIST ? url->u.list.n : 1;
	if (!url || url->type == DTK_V_NULL || n == 0) {
		snprintf(errstr, errstr_size,
			 "url: required (the Alertmanager URL, or a list of "
			 "its peers)");
		goto fail;
	}
	if (n > AM_MAX_PEERS) {
		snprintf(errstr, errstr_size, "url: at most %d peers", AM_MAX_PEERS);
		goto fail;
	}
	if (!(a->peers = calloc(n, sizeof(*a->peers)))) {
		snprintf(errstr, errstr_size, "url: out of memory");
		goto fail;
	}
	for (size_t i = 0; i < n; i++)
		if (add_peer(a, url->type == DTK_V_LIST ? url->u.list.items[i] : url, errstr,
			     errstr_size) != 0)
			goto fail;
	if (label_map(params, "labels", 1, &a->labels, errstr, errstr_size) != 0 ||
	    label_map(params, "annotations", 0, &a->annotations, errstr, errstr_size) != 0 ||
	    dtk_param_number(params, "timeout", 10, &a->timeout_s, errstr, errstr_size) != 0)
		goto fail;
	const dtk_value *gen = dtk_value_map_get(params, "generator_url");
	if (gen && gen->type != DTK_V_NULL) {
		if (gen->type != DTK_V_STR ||
		    dtk_http_check_url(gen->u.str.s, uerr, sizeof(uerr)) != 0) {
			snprintf(errstr, errstr_size, "generator_url: %s",
				 gen->type != DTK_V_STR ? "must be a string" : uerr);
			goto fail;
		}
		if (!(a->generator_url = strdup(gen->u.str.s))) {
			snprintf(errstr, errstr_size, "generator_url: out of memory");
			goto fail;
		}
	}
	if (!(a->timeout_s > 0)) {
		snprintf(errstr, errstr_size, "timeout: must be a positive number of seconds");
		goto fail;
	}
	*compiled = a;
	return 0;
fail:
	am_destroy(a);
	return -1;
}

/* RFC 3339 in UTC, with milliseconds when ms is not a whole second. */
static void rfc3339(int64_t ms, char *out, size_t outsz)
{
	time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	int frac = (int)(ms - (int64_t)secs * 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	char base[32];
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	if (frac)
		snprintf(out, outsz, "%s.%03dZ", base, frac);
	else
		snprintf(out, outsz, "%sZ", base);
}

/* The detector ids the alert is about: the primary detection's, or for a
 * recovery (which has none) every detection's, so each alert that may be
 * firing gets resolved. */
static dtk_value *detector_ids(const dtk_alert_message *msg)
{
	dtk_value *ids = dtk_value_list();
	const dtk_value *meta = dtk_value_map_get(msg->vars, "metadata");
	const dtk_value *primary = dtk_value_map_get(meta, "detector_id");
	if (ids && dtk_value_cstr(primary)) {
		dtk_value *s = dtk_value_copy(primary);
		if (!s || dtk_value_list_push(ids, s) != 0)
			dtk_value_free(&s);
		return ids;
	}
	const dtk_value *dets = dtk_value_map_get(msg->vars, "detections");
	if (!ids || strcmp(msg->kind, "recovery") != 0 || !dets || dets->type != DTK_V_LIST)
		return ids;
	for (size_t i = 0; i < dets->u.list.n; i++) {
		const dtk_value *id = dtk_value_map_get(dets->u.list.items[i], "detector_id");
		int seen = !dtk_value_cstr(id);
		for (size_t k = 0; !seen && k < ids->u.list.n; k++)
			seen = dtk_value_equal(ids->u.list.items[k], id);
		dtk_value *s = seen ? NULL : dtk_value_copy(id);
		if (s && dtk_value_list_push(ids, s) != 0)
			dtk_value_free(&s);
	}
	return ids;
}

static int merge_into(dtk_value *dst, const dtk_value *src)
{
	for (size_t i = 0; src && i < src->u.map.n; i++) {
		dtk_value *v = dtk_value_copy(src->u.map.items[i].val);
		if (!v || dtk_value_map_set(dst, src->u.map.items[i].key->u.str.s, v) != 0) {
			dtk_value_free(&v);
			return -1;
		}
	}
	return 0;
}

/* One alert object for detector id (NULL: no detector label). */
static dtk_value *one_alert(const alertmanager *a, const dtk_alert_message *msg,
			    const char *detector, const char *tags)
{
	dtk_value *alert = dtk_value_map();
	dtk_value *labels = dtk_value_map();
	dtk_value *ann = dtk_value_map();
	int ok = alert && labels && ann;
	const char *metric = dtk_value_cstr(dtk_value_map_get(msg->vars, "metric_name"));
	ok = ok && dtk_value_map_set_str(labels, "alertname", "dtk") == 0 &&
	     dtk_value_map_set_str(labels, "metric", metric ? metric : "") == 0 &&
	     (!detector || dtk_value_map_set_str(labels, "detector", detector) == 0) &&
	     dtk_value_map_set_str(labels, "severity", "warning") == 0 &&
	     (!*tags || dtk_value_map_set_str(labels, "tags", tags) == 0) &&
	     merge_into(labels, a->labels) == 0;
	const char *text = msg->text ? msg->text : "";
	size_t first = strcspn(text, "\n");
	dtk_value *summary = dtk_value_strn(text, first);
	ok = ok && summary && dtk_value_map_set(ann, "summary", summary) == 0;
	if (!ok)
		dtk_value_free(&summary);
	ok = ok && dtk_value_map_set_str(ann, "description", text) == 0 &&
	     merge_into(ann, a->annotations) == 0;
	int64_t starts = msg->execution_time * 1000;
	int64_t ends = strcmp(msg->kind, "recovery") == 0
			   ? msg->now_ms
			   : (msg->execution_time + 2 * msg->interval) * 1000;
	if (starts > ends)
		starts = ends;
	char ts[40];
	ok = ok && dtk_value_map_set(alert, "labels", labels) == 0;
	if (ok)
		labels = NULL;
	ok = ok && dtk_value_map_set(alert, "annotations", ann) == 0;
	if (ok)
		ann = NULL;
	rfc3339(starts, ts, sizeof(ts));
	ok = ok && dtk_value_map_set_str(alert, "startsAt", ts) == 0;
	rfc3339(ends, ts, sizeof(ts));
	ok = ok && dtk_value_map_set_str(alert, "endsAt", ts) == 0;
	ok = ok && (!a->generator_url ||
		    dtk_value_map_set_str(alert, "generatorURL", a->generator_url) == 0);
	dtk_value_free(&labels);
	dtk_value_free(&ann);
	if (!ok)
		dtk_value_free(&alert);
	return alert;
}

/* The JSON body: an array of alerts, as text owned by the caller. */
static char *build_body(const alertmanager *a, const dtk_alert_message *msg, size_t *len)
{
	char *out = NULL;
	dtk_buf tags;
	dtk_buf_init(&tags, 0);
	const dtk_value *tl = dtk_value_map_get(msg->vars, "tags");
	for (size_t i = 0; tl && tl->type == DTK_V_LIST && i < tl->u.list.n; i++) {
		const char *t = dtk_value_cstr(tl->u.list.items[i]);
		if (t)
			dtk_buf_printf(&tags, "%s%s", tags.len ? "," : "", t);
	}
	dtk_value *ids = detector_ids(msg);
	dtk_value *alerts = dtk_value_list();
	int ok = ids && alerts && !tags.failed;
	size_t n = ok ? ids->u.list.n : 0;
	for (size_t i = 0; ok && i < (n ? n : 1); i++) {
		const char *det = n ? dtk_value_cstr(ids->u.list.items[i]) : NULL;
		dtk_value *alert = one_alert(a, msg, det, dtk_buf_str(&tags));
		if (!alert || dtk_value_list_push(alerts, alert) != 0) {
			dtk_value_free(&alert);
			ok = 0;
		}
	}
	dtk_buf body;
	dtk_buf_init(&body, 0);
	if (ok && dtk_json_emit(&body, alerts, DTK_JSON_RAW_UTF8) == 0) {
		*len = body.len;
		out = dtk_buf_take(&body);
	}
	dtk_buf_free(&body);
	dtk_value_free(&alerts);
	dtk_value_free(&ids);
	dtk_buf_free(&tags);
	return out;
}

typedef struct peer_post {
	const alertmanager *a;
	const char *url;
	const dtk_alert_message *msg;
	const char *body;
	size_t body_len;
	int rc;
	char err[1024];
} peer_post;

static void *post_to_peer(void *arg)
{
	peer_post *p = arg;
	static const char *const headers[] = {"Content-Type: application/json"};
	dtk_http_request req = {.method = "POST",
				.url = p->url,
				.headers = headers,
				.nheaders = 1,
				.body = p->body,
				.body_len = p->body_len,
				.timeout_s = p->a->timeout_s,
				.max_attempts = AM_ATTEMPTS,
				.retry_delay_s = AM_RETRY_DELAY_S,
				.deadline_ms = p->msg->deadline_ms,
				.max_response = AM_MAX_RESPONSE,
				.secrets = p->msg->secrets};
	dtk_http_response resp;
	p->rc = dtk_http_do(NULL, &req, &resp, p->err, sizeof(p->err));
	dtk_http_response_free(&resp);
	return NULL;
}

static int am_send(const void *compiled, const dtk_alert_message *msg, char *errstr,
		   size_t errstr_size)
{
	const alertmanager *a = compiled;
	size_t len = 0;
	char *body = build_body(a, msg, &len);
	if (!body) {
		snprintf(errstr, errstr_size, "alertmanager: out of memory building the payload");
		return -1;
	}
	peer_post posts[AM_MAX_PEERS];
	pthread_t threads[AM_MAX_PEERS];
	int started[AM_MAX_PEERS] = {0};
	for (size_t i = 0; i < a->npeers; i++) {
		posts[i] = (peer_post){.a = a,
				       .url = a->peers[i],
				       .msg = msg,
				       .body = body,
				       .body_len = len,
				       .rc = -1};
		/* peers in parallel, so a blackholed one does not eat the others'
		 * deadline; inline when there is one peer or no thread */
		started[i] = a->npeers > 1 &&
			     pthread_create(&threads[i], NULL, post_to_peer, &posts[i]) == 0;
		if (!started[i])
			post_to_peer(&posts[i]);
	}
	size_t accepted = 0;
	for (size_t i = 0; i < a->npeers; i++) {
		if (started[i])
			pthread_join(threads[i], NULL);
		accepted += posts[i].rc == 0;
	}
	free(body);
	if (accepted > 0)
		return 0;
	dtk_buf e;
	dtk_buf_init(&e, 16384);
	dtk_buf_printf(&e, "alertmanager: no peer accepted the alert: ");
	for (size_t i = 0; i < a->npeers; i++)
		dtk_buf_printf(&e, "%s%s", i ? "; " : "", posts[i].err);
	snprintf(errstr, errstr_size, "%s", dtk_buf_str(&e));
	dtk_buf_free(&e);
	return -1;
}

const dtk_alerter_type dtk_alerter_alertmanager = {
	.name = "alertmanager",
	.summary = "post alerts to every Alertmanager peer (re-posted while firing)",
	.compile = am_compile,
	.destroy = am_destroy,
	.send = am_send,
	.known_params = am_params,
	.repost_while_firing = 1,
};
