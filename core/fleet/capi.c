/* The fleet's C API for foreign-function callers (capi.h): dtk-dispatch's
 * publishing path (dispatcher/fleet.c) with JSON options and reports. */
#include "capi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dispatch.h"
#include "request.h"
#include "select.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/json.h"
#include "util/value.h"

/* The options object is built by a binding, not by users: small. */
#define MAX_OPTS_BYTES ((size_t)1 << 20)

struct dtk_fleet_handle {
	dtk_dispatch *d;
	char dispatch_id[DTK_UUID_SIZE];
	char **ids; /* request ids of the delivered requests, in report order */
	size_t nids;
	int tracked;
	dtk_dispatch_results *reader; /* dtk_fleet_next_result_json's */
};

/* Option key of o; NULL when it is absent or null. */
static const dtk_value *opt_get(const dtk_value *o, const char *key)
{
	const dtk_value *v = dtk_value_map_get(o, key);
	return v && v->type != DTK_V_NULL ? v : NULL;
}

/* Option key of o if it is of type want: 1 and *v; 0 when it is absent or
 * null; -1 when it is of another type, errstr saying it must be `must`. */
static int opt_typed(const dtk_value *o, const char *key, dtk_vtype want, const char *must,
		     const dtk_value **v, char *errstr, size_t errstr_size)
{
	*v = opt_get(o, key);
	if (!*v)
		return 0;
	if ((*v)->type != want) {
		snprintf(errstr, errstr_size, "option '%s' must be %s, not %s", key, must,
			 dtk_value_type_name(*v));
		return -1;
	}
	return 1;
}

/* What one option lookup found; a wrong type is an error naming the key. */
static int opt_str(const dtk_value *o, const char *key, const char **out, char *errstr,
		   size_t errstr_size)
{
	const dtk_value *v;
	int found = opt_typed(o, key, DTK_V_STR, "a string", &v, errstr, errstr_size);
	*out = found == 1 ? v->u.str.s : NULL;
	return found < 0 ? -1 : 0;
}

static int opt_bool(const dtk_value *o, const char *key, int def, int *out, char *errstr,
		    size_t errstr_size)
{
	const dtk_value *v;
	int found = opt_typed(o, key, DTK_V_BOOL, "a boolean", &v, errstr, errstr_size);
	*out = found == 1 ? v->u.b : def;
	return found < 0 ? -1 : 0;
}

static int opt_int(const dtk_value *o, const char *key, int64_t def, int64_t min, int64_t max,
		   int64_t *out, char *errstr, size_t errstr_size)
{
	const dtk_value *v = opt_get(o, key);
	*out = def;
	if (!v)
		return 0;
	if (v->type != DTK_V_INT || v->u.i < min || v->u.i > max) {
		snprintf(errstr, errstr_size, "option '%s' must be an integer from %lld to %lld",
			 key, (long long)min, (long long)max);
		return -1;
	}
	*out = v->u.i;
	return 0;
}

/* A list of strings as an array of borrowed pointers into o (malloc'd
 * array owned by the caller; NULL and 0 when absent). */
static int opt_list(const dtk_value *o, const char *key, const char ***out, size_t *n, char *errstr,
		    size_t errstr_size)
{
	const dtk_value *v = opt_get(o, key);
	*out = NULL;
	*n = 0;
	if (!v)
		return 0;
	if (v->type != DTK_V_LIST) {
		snprintf(errstr, errstr_size, "option '%s' must be a list of strings", key);
		return -1;
	}
	const char **list = calloc(v->u.list.n + 1, sizeof(*list));
	if (!list) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < v->u.list.n; i++) {
		const dtk_value *it = v->u.list.items[i];
		if (it->type != DTK_V_STR) {
			snprintf(errstr, errstr_size, "option '%s' must be a list of strings", key);
			free(list);
			return -1;
		}
		list[i] = it->u.str.s;
	}
	*out = list;
	*n = v->u.list.n;
	return 0;
}

/* The parsed options, borrowing from the JSON tree. */
typedef struct fleet_opts {
	const char *config_dir, *brokers, *topic, *results_topic, *dlq_topic, *metric;
	const char *profiles, *signing_key, *source;
	const char **tags, **exclude, **props;
	size_t ntags, nexclude, nprops;
	int match_all, due, no_align, store, alerts, create_topics, track;
	int has_time;
	int64_t execution_time, partitions, replication_factor, request_timeout_ms;
} fleet_opts;

static void fleet_opts_free(fleet_opts *f)
{
	free(f->tags);
	free(f->exclude);
	free(f->props);
}

/* need_brokers: publishing, which needs brokers and a selection (else an
 * empty selection selects every config, as `dtk list-metrics`). */
static int fleet_opts_parse(const dtk_value *o, fleet_opts *f, int need_brokers, char *errstr,
			    size_t errstr_size)
{
	memset(f, 0, sizeof(*f));
	if (!o || o->type != DTK_V_MAP) {
		snprintf(errstr, errstr_size, "the options must be a JSON object");
		return -1;
	}
	f->has_time = opt_get(o, "execution_time") != NULL;
	if (opt_str(o, "config_dir", &f->config_dir, errstr, errstr_size) != 0 ||
	    opt_str(o, "brokers", &f->brokers, errstr, errstr_size) != 0 ||
	    opt_str(o, "topic", &f->topic, errstr, errstr_size) != 0 ||
	    opt_str(o, "results_topic", &f->results_topic, errstr, errstr_size) != 0 ||
	    opt_str(o, "dlq_topic", &f->dlq_topic, errstr, errstr_size) != 0 ||
	    opt_str(o, "metric", &f->metric, errstr, errstr_size) != 0 ||
	    opt_str(o, "profiles", &f->profiles, errstr, errstr_size) != 0 ||
	    opt_str(o, "signing_key", &f->signing_key, errstr, errstr_size) != 0 ||
	    opt_str(o, "source", &f->source, errstr, errstr_size) != 0 ||
	    opt_list(o, "tags", &f->tags, &f->ntags, errstr, errstr_size) != 0 ||
	    opt_list(o, "exclude_tags", &f->exclude, &f->nexclude, errstr, errstr_size) != 0 ||
	    opt_list(o, "kafka_props", &f->props, &f->nprops, errstr, errstr_size) != 0 ||
	    opt_bool(o, "match_all", 0, &f->match_all, errstr, errstr_size) != 0 ||
	    opt_bool(o, "due", 0, &f->due, errstr, errstr_size) != 0 ||
	    opt_bool(o, "no_align", 0, &f->no_align, errstr, errstr_size) != 0 ||
	    opt_bool(o, "store", 1, &f->store, errstr, errstr_size) != 0 ||
	    opt_bool(o, "alerts", 1, &f->alerts, errstr, errstr_size) != 0 ||
	    opt_bool(o, "create_topics", 0, &f->create_topics, errstr, errstr_size) != 0 ||
	    opt_bool(o, "track_results", 1, &f->track, errstr, errstr_size) != 0 ||
	    opt_int(o, "execution_time", 0, -62135596800LL, 253402300799LL, &f->execution_time,
		    errstr, errstr_size) != 0 ||
	    opt_int(o, "partitions", 24, 1, 100000, &f->partitions, errstr, errstr_size) != 0 ||
	    opt_int(o, "replication_factor", 1, 1, 32767, &f->replication_factor, errstr,
		    errstr_size) != 0 ||
	    opt_int(o, "request_timeout_ms", 0, 0, 3600000, &f->request_timeout_ms, errstr,
		    errstr_size) != 0)
		return -1;
	if (!f->config_dir || !*f->config_dir) {
		snprintf(errstr, errstr_size, "no config directory given (config_dir)");
		return -1;
	}
	if (need_brokers && (!f->brokers || !*f->brokers)) {
		snprintf(errstr, errstr_size,
			 "no Kafka brokers given (brokers, or set DTK_KAFKA_BROKERS)");
		return -1;
	}
	if (need_brokers && !f->ntags && !f->nexclude && !f->metric && !f->due) {
		snprintf(errstr, errstr_size,
			 "select configs with tags, exclude_tags, metric or due");
		return -1;
	}
	if (!f->signing_key)
		f->signing_key = getenv("DTK_SIGNING_KEY");
	return 0;
}

/* The options of opts_json (text from a binding) parsed into f, borrowing from
 * *opts: a new tree the caller frees with dtk_value_free, also on failure.
 * 0, or -1 with errstr. */
static int fleet_opts_from_json(const char *opts_json, int need_brokers, dtk_value **opts,
				fleet_opts *f, char *errstr, size_t errstr_size)
{
	char err[2048];
	if (!opts_json || strlen(opts_json) > MAX_OPTS_BYTES) {
		snprintf(errstr, errstr_size, "no options, or options larger than 1 MiB");
		return -1;
	}
	*opts = dtk_json_parse(opts_json, strlen(opts_json), err, sizeof(err));
	if (!*opts) {
		snprintf(errstr, errstr_size, "the options are not JSON: %s", err);
		return -1;
	}
	return fleet_opts_parse(*opts, f, need_brokers, errstr, errstr_size);
}

/* dtk-dispatch's selection, loaded in deferred mode: a publisher needs
 * none of the workers' secrets. */
static int select_items(const fleet_opts *f, int64_t now, dtk_selected **items, size_t *n,
			char *errstr, size_t errstr_size)
{
	dtk_select_opts sel = {
	    .filter = {.tags = f->tags,
		       .ntags = f->ntags,
		       .exclude = f->exclude,
		       .nexclude = f->nexclude,
		       .match_all = f->match_all},
	    .metric = f->metric,
	    .due = f->due,
	    .now = now,
	    .profiles = f->profiles,
	    .load_strict = 0,
	};
	return dtk_select_configs(f->config_dir, &sel, items, n, errstr, errstr_size);
}

/* {"path", "error"} of every invalid config into list; 0 or -1. */
static int report_invalid(dtk_value *list, const dtk_selected *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!items[i].error)
			continue;
		dtk_value *e = dtk_value_map();
		if (!e || dtk_value_list_push(list, e) != 0) {
			dtk_value_free(&e);
			return -1;
		}
		if (dtk_value_map_set_str(e, "path", items[i].path) != 0 ||
		    dtk_value_map_set_str(e, "error", items[i].error) != 0)
			return -1;
	}
	return 0;
}

/* Emits v into *out (when out is not NULL); 0 or -1. */
static int emit_to(const dtk_value *v, char **out)
{
	if (!out)
		return 0;
	dtk_buf b;
	dtk_buf_init(&b, 0);
	if (dtk_json_emit(&b, v, DTK_JSON_INF_AS_STRING | DTK_JSON_RAW_UTF8) != 0 || b.failed) {
		dtk_buf_free(&b);
		return -1;
	}
	*out = dtk_buf_take(&b);
	dtk_buf_free(&b);
	return *out ? 0 : -1;
}

/* Before anything is published: only the invalid configs to report. */
static void report_early(const dtk_selected *items, size_t n, char **report_json)
{
	dtk_value *r = dtk_value_map(), *inv = dtk_value_list();
	if (r && inv && report_invalid(inv, items, n) == 0 &&
	    dtk_value_map_set(r, "invalid", inv) == 0) {
		inv = NULL;
		emit_to(r, report_json);
	}
	dtk_value_free(&inv);
	dtk_value_free(&r);
}

/* One entry of "requests". */
static dtk_value *request_entry(const dtk_selected *it, const dtk_request *req,
				const dtk_dispatch_msg *msg)
{
	dtk_value *e = dtk_value_map();
	if (!e)
		return NULL;
	if (dtk_value_map_set_str(e, "path", it->path) != 0 ||
	    dtk_value_map_set_str(e, "metric", req->metric) != 0 ||
	    dtk_value_map_set_str(e, "request_id", req->request_id) != 0 ||
	    dtk_value_map_set_int(e, "execution_time", req->execution_time) != 0 ||
	    dtk_value_map_set_int(e, "timeout", it->deferred->schedule.timeout) != 0 ||
	    dtk_value_map_set_int(e, "partition", msg->partition) != 0 ||
	    dtk_value_map_set_int(e, "offset", msg->offset) != 0 ||
	    dtk_value_map_set_str(e, "error", msg->error[0] ? msg->error : NULL) != 0)
		dtk_value_free(&e);
	return e;
}

dtk_fleet_handle *dtk_fleet_dispatch_json(const char *opts_json, char **report_json, char *errstr,
					  size_t errstr_size)
{
	char err[2048], host[128] = "localhost", source[192];
	fleet_opts f;
	dtk_value *opts = NULL, *report = NULL, *reqs = NULL, *inv = NULL;
	dtk_selected *items = NULL;
	size_t n = 0, nmsgs = 0;
	dtk_request *built = NULL;
	dtk_dispatch_msg *msgs = NULL;
	size_t *msg_item = NULL;
	dtk_fleet_handle *h = NULL;
	int ok = 0;
	memset(&f, 0, sizeof(f));
	if (errstr && errstr_size)
		errstr[0] = '\0';
	if (report_json)
		*report_json = NULL;
	if (fleet_opts_from_json(opts_json, 1, &opts, &f, errstr, errstr_size) != 0)
		goto out;
	h = calloc(1, sizeof(*h));
	if (!h || dtk_uuid_v4(h->dispatch_id) != 0) {
		snprintf(errstr, errstr_size, "out of memory, or no randomness for a dispatch id");
		goto out;
	}
	int64_t requested_time = f.has_time ? f.execution_time : (int64_t)time(NULL);
	if (select_items(&f, requested_time, &items, &n, errstr, errstr_size) != 0)
		goto out;
	if (!f.source) {
		gethostname(host, sizeof(host) - 1);
		snprintf(source, sizeof(source), "/dtk-dispatch/%s", host);
		f.source = source;
	}
	dtk_dispatch_opts dopt = {
	    .kafka = {.brokers = f.brokers, .props = f.props, .nprops = f.nprops},
	    .topic = f.topic,
	    .results_topic = f.results_topic,
	    .dlq_topic = f.dlq_topic,
	    .source = f.source,
	    .signing_key = f.signing_key,
	    .request_timeout_ms = (int)f.request_timeout_ms,
	};
	if (dtk_dispatch_new(&dopt, &h->d, errstr, errstr_size) != 0)
		goto early;
	if (f.create_topics &&
	    dtk_dispatch_create_topics(h->d, (int)f.partitions, (int)f.replication_factor, err,
				       sizeof(err)) != 0) {
		snprintf(errstr, errstr_size, "creating the topics: %s; nothing was published",
			 err);
		goto early;
	}
	if (dtk_dispatch_check_topic(h->d, err, sizeof(err)) != 0) {
		snprintf(errstr, errstr_size, "publishing: %s; nothing was published", err);
		goto early;
	}
	if (f.track && dtk_dispatch_mark_results(h->d, err, sizeof(err)) != 0) {
		snprintf(errstr, errstr_size,
			 "recording the result offsets (to wait for results): %s; nothing was "
			 "published",
			 err);
		goto early;
	}
	h->tracked = f.track;

	built = calloc(n ? n : 1, sizeof(*built));
	msgs = calloc(n ? n : 1, sizeof(*msgs));
	msg_item = calloc(n ? n : 1, sizeof(*msg_item));
	h->ids = calloc(n ? n : 1, sizeof(*h->ids));
	if (!built || !msgs || !msg_item || !h->ids)
		goto nomem;
	const char *rt = f.results_topic;
	dtk_fleet_request_opts ro = {
	    .dispatch_id = h->dispatch_id,
	    .profiles_path = f.profiles,
	    .requested_time = requested_time,
	    .no_align = f.no_align,
	    .dispatched_at_ms = dtk_now_ms(),
	    .store = f.store,
	    .alerts = f.alerts,
	    /* workers answer on the default topic unless told otherwise */
	    .reply_to = rt && *rt && strcmp(rt, DTK_DISPATCH_RESULT_TOPIC) != 0 ? rt : NULL,
	};
	for (size_t i = 0; i < n; i++) {
		dtk_selected *it = &items[i];
		if (it->error)
			continue;
		if (dtk_fleet_request_build(it->path, it->deferred, &ro, &built[i], err,
					    sizeof(err)) != 0) {
			char full[2600];
			snprintf(full, sizeof(full), "%s: %s", it->path, err);
			if (!(it->error = strdup(full)))
				goto nomem;
			continue;
		}
		msgs[nmsgs].req = &built[i];
		msg_item[nmsgs++] = i;
	}
	size_t delivered = dtk_dispatch_publish(h->d, msgs, nmsgs);

	report = dtk_value_map();
	reqs = dtk_value_list();
	inv = dtk_value_list();
	if (!report || !reqs || !inv)
		goto nomem;
	for (size_t k = 0; k < nmsgs; k++) {
		dtk_value *e = request_entry(&items[msg_item[k]], msgs[k].req, &msgs[k]);
		if (!e || dtk_value_list_push(reqs, e) != 0) {
			dtk_value_free(&e);
			goto nomem;
		}
		if (!msgs[k].error[0] && !(h->ids[h->nids++] = strdup(msgs[k].req->request_id)))
			goto nomem;
	}
	if (report_invalid(inv, items, n) != 0 ||
	    dtk_value_map_set_str(report, "dispatch_id", h->dispatch_id) != 0 ||
	    dtk_value_map_set_str(report, "topic", dtk_dispatch_topic(h->d)) != 0 ||
	    dtk_value_map_set_str(report, "results_topic",
				  rt && *rt ? rt : DTK_DISPATCH_RESULT_TOPIC) != 0 ||
	    dtk_value_map_set_bool(report, "signed", f.signing_key && *f.signing_key) != 0 ||
	    dtk_value_map_set_int(report, "published", (int64_t)delivered) != 0)
		goto nomem;
	if (dtk_value_map_set(report, "requests", reqs) != 0)
		goto nomem;
	reqs = NULL;
	if (dtk_value_map_set(report, "invalid", inv) != 0)
		goto nomem;
	inv = NULL;
	if (emit_to(report, report_json) != 0)
		goto nomem;
	ok = 1;
	goto out;
nomem:
	snprintf(errstr, errstr_size, "out of memory");
	goto out;
early:
	report_early(items, n, report_json);
out:
	for (size_t i = 0; built && i < n; i++)
		dtk_request_clear(&built[i]);
	free(built);
	free(msgs);
	free(msg_item);
	dtk_value_free(&reqs);
	dtk_value_free(&inv);
	dtk_value_free(&report);
	dtk_select_release(&items, n);
	fleet_opts_free(&f);
	dtk_value_free(&opts);
	if (!ok)
		dtk_fleet_handle_free(&h);
	return h;
}

/* One entry of "selected". */
static dtk_value *selected_entry(const dtk_selected *it)
{
	const dtk_config *c = it->deferred;
	dtk_value *e = dtk_value_map(), *tags = dtk_value_list();
	int bad = !e || !tags;
	for (size_t i = 0; !bad && i < c->ntags; i++)
		bad |= dtk_value_list_push(tags, dtk_value_str(c->tags[i])) != 0;
	if (!bad && dtk_value_map_set(e, "tags", tags) == 0)
		tags = NULL;
	else
		bad = 1;
	if (bad || dtk_value_map_set_str(e, "path", it->path) != 0 ||
	    dtk_value_map_set_str(e, "metric", it->name) != 0 ||
	    dtk_value_map_set_str(e, "interval", c->schedule.interval_text) != 0 ||
	    dtk_value_map_set_int(e, "interval_seconds", c->schedule.interval) != 0 ||
	    dtk_value_map_set_int(e, "timeout", c->schedule.timeout) != 0 ||
	    dtk_value_map_set_str(e, "timezone", c->timezone) != 0)
		dtk_value_free(&e);
	dtk_value_free(&tags);
	return e;
}

char *dtk_fleet_select_json(const char *opts_json, char *errstr, size_t errstr_size)
{
	char *out = NULL;
	fleet_opts f;
	dtk_value *opts = NULL, *doc = NULL, *sel = NULL, *inv = NULL;
	dtk_selected *items = NULL;
	size_t n = 0;
	memset(&f, 0, sizeof(f));
	if (errstr && errstr_size)
		errstr[0] = '\0';
	if (fleet_opts_from_json(opts_json, 0, &opts, &f, errstr, errstr_size) != 0 ||
	    select_items(&f, f.has_time ? f.execution_time : (int64_t)time(NULL), &items, &n,
			 errstr, errstr_size) != 0)
		goto out;
	doc = dtk_value_map();
	sel = dtk_value_list();
	inv = dtk_value_list();
	if (!doc || !sel || !inv || report_invalid(inv, items, n) != 0)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		if (items[i].error)
			continue;
		dtk_value *e = selected_entry(&items[i]);
		if (!e || dtk_value_list_push(sel, e) != 0) {
			dtk_value_free(&e);
			goto nomem;
		}
	}
	if (dtk_value_map_set(doc, "selected", sel) != 0)
		goto nomem;
	sel = NULL;
	if (dtk_value_map_set(doc, "invalid", inv) != 0)
		goto nomem;
	inv = NULL;
	if (emit_to(doc, &out) != 0)
		goto nomem;
	goto out;
nomem:
	snprintf(errstr, errstr_size, "out of memory");
out:
	dtk_value_free(&sel);
	dtk_value_free(&inv);
	dtk_value_free(&doc);
	dtk_select_release(&items, n);
	fleet_opts_free(&f);
	dtk_value_free(&opts);
	return out;
}

char *dtk_fleet_await_json(dtk_fleet_handle *h, int64_t timeout_ms, char *errstr,
			   size_t errstr_size)
{
	char err[1024];
	char *out = NULL;
	dtk_value *doc = NULL, *list = NULL;
	dtk_value **got = NULL;
	if (errstr && errstr_size)
		errstr[0] = '\0';
	if (!h) {
		snprintf(errstr, errstr_size, "no dispatch handle");
		return NULL;
	}
	if (!h->tracked) {
		snprintf(errstr, errstr_size,
			 "this dispatch did not record the result offsets (track_results was off)");
		return NULL;
	}
	got = calloc(h->nids ? h->nids : 1, sizeof(*got));
	if (!got) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	err[0] = '\0';
	long r = 0;
	if (h->nids)
		r = dtk_dispatch_await(h->d, h->dispatch_id, (const char *const *)h->ids, h->nids,
				       timeout_ms > 0 ? timeout_ms : 0, got, NULL, NULL, err,
				       sizeof(err));
	if (r < 0) {
		snprintf(errstr, errstr_size, "waiting for results: %s", err);
		goto out;
	}
	doc = dtk_value_map();
	list = dtk_value_list();
	if (!doc || !list)
		goto nomem;
	for (size_t i = 0; i < h->nids; i++) {
		dtk_value *v = got[i] ? got[i] : dtk_value_null();
		got[i] = NULL;
		if (!v || dtk_value_list_push(list, v) != 0) {
			dtk_value_free(&v);
			goto nomem;
		}
	}
	if (dtk_value_map_set(doc, "results", list) != 0)
		goto nomem;
	list = NULL;
	if (dtk_value_map_set_str(doc, "error", (size_t)r < h->nids && err[0] ? err : NULL) != 0 ||
	    emit_to(doc, &out) != 0)
		goto nomem;
	goto out;
nomem:
	snprintf(errstr, errstr_size, "out of memory");
	free(out);
	out = NULL;
out:
	for (size_t i = 0; i < h->nids; i++)
		dtk_value_free(&got[i]);
	free(got);
	dtk_value_free(&list);
	dtk_value_free(&doc);
	return out;
}

int dtk_fleet_results_start(dtk_fleet_handle *h, char *errstr, size_t errstr_size)
{
	if (errstr && errstr_size)
		errstr[0] = '\0';
	if (!h || !h->tracked) {
		snprintf(
		    errstr, errstr_size, "%s",
		    h ? "this dispatch did not record the result offsets (track_results was off)"
		      : "no dispatch handle");
		return -1;
	}
	dtk_dispatch_results_free(&h->reader);
	return dtk_dispatch_results_open(h->d, h->dispatch_id, &h->reader, errstr, errstr_size);
}

char *dtk_fleet_results_next_json(dtk_fleet_handle *h, int64_t timeout_ms, char *errstr,
				  size_t errstr_size)
{
	char *out = NULL;
	if (errstr && errstr_size)
		errstr[0] = '\0';
	if (!h || !h->reader) {
		snprintf(errstr, errstr_size, "the result reader was not started");
		return NULL;
	}
	int64_t end = dtk_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	for (;;) {
		int64_t left = end - dtk_now_ms();
		dtk_value *v = NULL;
		/* another dispatch's message returns at once: poll until the end */
		int rc = dtk_dispatch_results_poll(h->reader,
						   left > 200 ? 200
						   : left > 0 ? (int)left
							      : 0,
						   &v, errstr, errstr_size);
		if (rc == 1) {
			if (emit_to(v, &out) != 0)
				snprintf(errstr, errstr_size, "out of memory");
			dtk_value_free(&v);
			return out;
		}
		if (rc < 0 || left <= 0)
			return NULL;
	}
}

void dtk_fleet_handle_free(dtk_fleet_handle **ph)
{
	if (!ph || !*ph)
		return;
	dtk_fleet_handle *h = *ph;
	dtk_dispatch_results_free(&h->reader);
	dtk_dispatch_free(&h->d);
	for (size_t i = 0; h->ids && i < h->nids; i++)
		free(h->ids[i]);
	free(h->ids);
	free(h);
	*ph = NULL;
}
