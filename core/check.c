#include "check.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alert/alert.h"
#include "alert/message.h"
#include "db/db.h"
#include "limiter.h"
#include "store/state.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/pyfmt.h"

#define SESSION_MAX_STORES 16
#define MISSED_TTL (30 * 86400)

struct dtk_session {
	struct {
		char *key;
		dtk_store *store;
	} stores[SESSION_MAX_STORES];
	size_t nstores;
	dtk_state *state;
	char *state_path;
	dtk_db_pool *pool; /* source (and server storage) connections */
};

dtk_session *dtk_session_new(void)
{
	dtk_session *s = calloc(1, sizeof(dtk_session));
	if (s && !(s->pool = dtk_db_pool_new())) {
		free(s);
		s = NULL;
	}
	return s;
}

void dtk_session_free(dtk_session **ps)
{
	if (!ps || !*ps)
		return;
	dtk_session *s = *ps;
	for (size_t i = 0; i < s->nstores; i++) {
		free(s->stores[i].key);
		dtk_store_close(&s->stores[i].store);
	}
	dtk_state_close(&s->state);
	free(s->state_path);
	dtk_db_pool_free(&s->pool);
	free(s);
	*ps = NULL;
}

void dtk_format_time(int64_t t_ms, int with_ms, char *out, size_t outsz)
{
	int64_t secs = t_ms >= 0 ? t_ms / 1000 : -((-t_ms + 999) / 1000);
	char base[40];
	dtk_pyfmt_datetime(secs, 0, 'T', base, sizeof(base));
	size_t n = strlen(base);
	if (with_ms) {
		int ms = (int)(t_ms - secs * 1000);
		base[n++] = '.';
		base[n++] = (char)('0' + ms / 100);
		base[n++] = (char)('0' + ms / 10 % 10);
		base[n++] = (char)('0' + ms % 10);
	}
	base[n++] = 'Z';
	if (!outsz)
		return;
	if (n >= outsz)
		n = outsz - 1;
	memcpy(out, base, n);
	out[n] = '\0';
}

/* The session's connection to the config's storage, opened on first use. */
static dtk_store *session_store(dtk_session *s, const dtk_config *cfg, char *err, size_t errsz)
{
	dtk_buf key;
	dtk_buf_init(&key, 1 << 16);
	dtk_buf_printf(&key, "%s|%s|", cfg->storage.type ? cfg->storage.type : "",
		       cfg->storage.type ? cfg->base_dir : "");
	dtk_json_emit(&key, cfg->storage.params, DTK_JSON_SORT_KEYS);
	dtk_store *st = NULL;
	for (size_t i = 0; i < s->nstores; i++)
		if (strcmp(s->stores[i].key, dtk_buf_str(&key)) == 0) {
			st = s->stores[i].store;
			goto out;
		}
	st = dtk_store_open(cfg->storage.type, cfg->storage.params, cfg->base_dir, s->pool, err, errsz);
	if (!st)
		goto out;
	if (s->nstores == SESSION_MAX_STORES) {
		/* evict the oldest connection */
		free(s->stores[0].key);
		dtk_store_close(&s->stores[0].store);
		memmove(&s->stores[0], &s->stores[1], (SESSION_MAX_STORES - 1) * sizeof(s->stores[0]));
		s->nstores--;
	}
	s->stores[s->nstores].key = dtk_buf_take(&key);
	s->stores[s->nstores].store = st;
	s->nstores++;
out:
	dtk_buf_free(&key);
	return st;
}

/* The session's alert state: Redis when a URL is given, else the local
 * database at path (NULL = $DTK_STATE_DIR/dtk.db); reopened when the
 * location changes. */
static dtk_state *session_state(dtk_session *s, const char *path, const char *redis_url,
				char *err, size_t errsz)
{
	char where[4200];
	snprintf(where, sizeof(where), "%s:%s", redis_url ? "redis" : "local",
		 redis_url ? redis_url : path ? path : "");
	if (s->state && s->state_path && strcmp(where, s->state_path) == 0)
		return s->state;
	dtk_state_close(&s->state);
	free(s->state_path);
	s->state_path = strdup(where);
	s->state = redis_url ? dtk_state_open_redis(redis_url, err, errsz)
			     : dtk_state_open(path, err, errsz);
	return s->state;
}

typedef struct run {
	const dtk_config *cfg;
	const dtk_check_options *opt;
	dtk_session *session;
	dtk_value *errors;   /* list of {stage, message} */
	dtk_value *warnings; /* list of strings */
	int failed;
	const char *first_stage;
	char first_error[1024];
} run;

static void add_error(run *r, const char *stage, const char *msg)
{
	char masked[1024];
	dtk_config_mask(r->cfg, msg, masked, sizeof(masked));
	dtk_value *e = dtk_value_map();
	if (e) {
		dtk_value_map_set_str(e, "stage", stage);
		dtk_value_map_set_str(e, "message", masked);
		if (dtk_value_list_push(r->errors, e) != 0)
			dtk_value_free(&e);
	}
	if (!r->failed) {
		r->first_stage = stage;
		snprintf(r->first_error, sizeof(r->first_error), "%s", masked);
	}
	r->failed = 1;
}

static void add_warnings(run *r, const dtk_value *list)
{
	for (size_t i = 0; list && i < list->u.list.n; i++) {
		char masked[1024];
		dtk_config_mask(r->cfg, list->u.list.items[i]->u.str.s, masked, sizeof(masked));
		dtk_value *w = dtk_value_str(masked);
		if (!w || dtk_value_list_push(r->warnings, w) != 0)
			dtk_value_free(&w);
	}
}

/* A name for this check's limiter lease and alert claims when the caller
 * gave none: unique in the process (checks on --parallel threads start in
 * the same millisecond; sharing a name would make them share one slot). */
static void default_owner(char *out, size_t outsz, int64_t started_ms)
{
	static atomic_ulong seq;
	snprintf(out, outsz, "pid-%ld-%lld-%lu", (long)getpid(), (long long)started_ms,
		 atomic_fetch_add(&seq, 1));
}

/* Takes the source's connection-limit lease when the caller gave a
 * limiter and the source is limited (its `limit_key`, else the collector's
 * key). Returns 1 when no slot came before the deadline (the error is
 * recorded, stage limiter), else 0. */
static int acquire_lease(run *r, const dtk_check_options *opt, int64_t started_ms,
			 dtk_limiter_lease **lease, double *waited)
{
	const dtk_config *cfg = r->cfg;
	const dtk_value *params = cfg->collector.params;
	char key[320], err[1024], member[200];
	if (!opt->limiter)
		return 0;
	const char *explicit_key = dtk_value_cstr(dtk_value_map_get(params, "limit_key"));
	if (explicit_key && *explicit_key)
		snprintf(key, sizeof(key), "%s", explicit_key);
	else if (!cfg->collector.impl->limit_key ||
		 !cfg->collector.impl->limit_key(cfg->collector.compiled, key, sizeof(key)))
		return 0;
	double max_conn = 0, timeout = 30;
	dtk_value_number(dtk_value_map_get(params, "max_connections"), &max_conn);
	dtk_value_number(dtk_value_map_get(params, "timeout"), &timeout);
	int limit = dtk_limiter_limit((int)max_conn, opt->default_max_connections
							 ? opt->default_max_connections
							 : 5);
	int64_t deadline = opt->deadline_ms ? opt->deadline_ms
					    : started_ms + cfg->schedule.timeout * 1000;
	if (opt->owner)
		snprintf(member, sizeof(member), "%s", opt->owner);
	else
		default_owner(member, sizeof(member), started_ms);
	int rc = dtk_limiter_acquire(opt->limiter, key, limit, member, dtk_limiter_ttl_ms(timeout),
				     deadline, lease, waited, err, sizeof(err));
	if (rc == DTK_LIMITER_FAILED) {
		add_error(r, "limiter", err);
		return 1;
	}
	if (rc == DTK_LIMITER_OPEN) {
		char w[1100];
		snprintf(w, sizeof(w), "limiter: running without a slot (fail-open): %s", err);
		dtk_value *v = dtk_value_str(w);
		if (!v || dtk_value_list_push(r->warnings, v) != 0)
			dtk_value_free(&v);
	}
	return 0;
}

static int64_t prev_missed(run *r, dtk_state *st, const char *det_id, int64_t exec)
{
	char key[512], err[256], *v = NULL;
	if (!st)
		return 0;
	snprintf(key, sizeof(key), "dtk:state:missing:%s:%s:%lld", r->cfg->name, det_id,
		 (long long)(exec - r->cfg->schedule.interval));
	if (dtk_state_get(st, key, (int64_t)time(NULL), &v, err, sizeof(err)) != 1)
		return 0;
	char *end;
	long long n = strtoll(v, &end, 10);
	int whole = *end == '\0'; /* end points into v */
	free(v);
	return whole && n > 0 ? n : 0;
}

static void save_missed(run *r, dtk_state *st, const dtk_detection *d, int64_t prev,
			int64_t exec)
{
	char key[512], err[256], val[32];
	if (!st || (d->missed == 0 && prev == 0))
		return;
	snprintf(key, sizeof(key), "dtk:state:missing:%s:%s:%lld", r->cfg->name, d->detector_id,
		 (long long)exec);
	snprintf(val, sizeof(val), "%lld", (long long)d->missed);
	dtk_state_set(st, key, val, (int64_t)time(NULL), MISSED_TTL, err, sizeof(err));
}

static void set_time(dtk_value *map, const char *key, int64_t t_ms, int with_ms)
{
	char buf[48];
	dtk_format_time(t_ms, with_ms, buf, sizeof(buf));
	dtk_value_map_set_str(map, key, buf);
}

/* A duration in ms rounded to the microsecond: the clock's noise below that
 * is no information, and 0.006 reads (and formats) better than
 * 0.005968999117612839. */
static double to_us(double ms)
{
	return round(ms * 1000.0) / 1000.0;
}

static void set_owned(dtk_value *map, const char *key, dtk_value *v)
{
	if (!v || dtk_value_map_set(map, key, v) != 0)
		dtk_value_free(&v);
}

static void save_detections(run *r, dtk_store *store, const dtk_detection *det, size_t n,
			    int64_t point_ts, int64_t exec, const dtk_value *alert_summary)
{
	dtk_detection_row *rows = calloc(n ? n : 1, sizeof(*rows));
	char **meta = calloc(n ? n : 1, sizeof(char *));
	char err[1024];
	if (!rows || !meta)
		goto out;
	int sent = dtk_value_truthy(dtk_value_map_get(alert_summary, "sent"));
	const char *reason = dtk_value_cstr(dtk_value_map_get(alert_summary, "reason"));
	for (size_t i = 0; i < n; i++) {
		dtk_buf b;
		dtk_buf_init(&b, 1 << 20);
		dtk_json_emit(&b, det[i].metadata, DTK_JSON_INF_AS_STRING | DTK_JSON_RAW_UTF8);
		meta[i] = dtk_buf_take(&b);
		rows[i] = (dtk_detection_row){
			.detector_id = det[i].detector_id,
			.detector_type = det[i].detector_type,
			.is_anomaly = det[i].is_anomaly,
			.score = det[i].score,
			.lower_bound = det[i].lower_bound,
			.upper_bound = det[i].upper_bound,
			.percent_deviation = det[i].percent_deviation,
			.direction = det[i].direction,
			.alert_sent = sent && det[i].is_anomaly,
			.alert_reason = det[i].is_anomaly ? reason : NULL,
			.metadata_json = meta[i],
		};
	}
	if (dtk_store_save_detections(store, r->cfg->name, point_ts, exec, rows, n, err,
				      sizeof(err)) != 0)
		add_error(r, "store", err);
out:
	for (size_t i = 0; meta && i < n; i++)
		free(meta[i]);
	free(meta);
	free(rows);
}

static void apply_retention(run *r, dtk_store *store, dtk_state *st)
{
	const dtk_config *cfg = r->cfg;
	char key[512], err[1024];
	if (!cfg->storage.datapoint_retention_days && !cfg->storage.detection_retention_days)
		return;
	int64_t now = (int64_t)time(NULL);
	snprintf(key, sizeof(key), "dtk:state:retention:%s", cfg->name);
	/* at most once a day per metric */
	if (st && dtk_state_set_nx(st, key, "1", now, 86400, err, sizeof(err)) != 1)
		return;
	if (dtk_store_retention(store, cfg->name, now, cfg->storage.datapoint_retention_days,
				cfg->storage.detection_retention_days, err, sizeof(err)) != 0)
		add_error(r, "store", err);
}

int dtk_check_run(const dtk_config *cfg, const dtk_check_options *opt_in, dtk_session *session,
		  dtk_check_result **out)
{
	static const dtk_check_options no_options;
	const dtk_check_options *opt = opt_in ? opt_in : &no_options;
	dtk_session *own_session = NULL;
	double t_start = dtk_mono_ms();
	int64_t started_ms = dtk_now_ms();
	dtk_check_result *res = calloc(1, sizeof(*res));
	dtk_value *json = dtk_value_map();
	run r = {.cfg = cfg, .opt = opt, .errors = dtk_value_list(), .warnings = dtk_value_list()};
	dtk_rows rows;
	dtk_series hist = {0};
	dtk_detection *det = NULL;
	dtk_value *vars = NULL;
	char err[1024];
	double t_collect = 0, t_store = 0, t_detect = 0, t_alert = 0, t0;
	*out = NULL;
	dtk_rows_init(&rows);
	if (!res || !json || !r.errors || !r.warnings)
		goto oom;
	if (!session)
		session = own_session = dtk_session_new();
	if (!session)
		goto oom;
	r.session = session;

	int64_t requested = opt->has_time ? opt->requested_time : started_ms / 1000;
	int64_t exec = opt->no_align ? requested : dtk_config_align(cfg, requested);
	int64_t period_finish = exec - cfg->schedule.delay;
	int64_t period_start = period_finish - cfg->schedule.interval;
	add_warnings(&r, cfg->warnings);

	/* collect */
	t0 = dtk_mono_ms();
	dtk_collect_request req = {
		.metric_name = cfg->name,
		.execution_time = exec,
		.period_start = period_start,
		.period_finish = period_finish,
		.interval = cfg->schedule.interval,
		.interval_text = cfg->schedule.interval_text,
		.base_dir = cfg->base_dir,
		.pool = session->pool,
	};
	/* the source's connection limit, held through collect and store: a
	 * storage on the same server uses the collector's lease */
	dtk_limiter_lease *lease = NULL;
	double limiter_wait = 0;
	int limited_out = acquire_lease(&r, opt, started_ms, &lease, &limiter_wait);
	int collect_failed = 0;
	if (limited_out) {
		collect_failed = 1;
	} else if (cfg->collector.impl->collect(cfg->collector.compiled, &req, &rows, err, sizeof(err)) !=
	    0) {
		collect_failed = 1;
		add_error(&r, "collect", err);
		dtk_rows_clear(&rows);
		dtk_rows_init(&rows);
	}
	add_warnings(&r, rows.warnings);
	t_collect = dtk_mono_ms() - t0 - limiter_wait;

	/* the current point: the newest row, or a missing point for the slot */
	int have_point = !collect_failed;
	dtk_row point = {
		.ts = cfg->collector.impl->has_timestamps &&
			      cfg->collector.impl->has_timestamps(cfg->collector.compiled)
			  ? period_start
			  : period_finish,
		.is_missing = 1,
	};
	if (rows.n)
		point = rows.rows[rows.n - 1];

	/* store, then read the baseline */
	t0 = dtk_mono_ms();
	dtk_store *store = NULL;
	dtk_state *state = NULL;
	int64_t max_seconds = 0, max_points = 0;
	for (size_t i = 0; i < cfg->ndetectors; i++) {
		if (cfg->detectors[i].window_seconds > max_seconds)
			max_seconds = cfg->detectors[i].window_seconds;
		if (cfg->detectors[i].window_points > max_points)
			max_points = cfg->detectors[i].window_points;
	}
	int newest_found = 0;
	int64_t newest_ts = 0;
	/* storage of the collector's own type lives with the source: when the
	 * source failed, leave it alone (opening a missing SQLite source as
	 * storage would create it as an empty database) */
	int store_with_source = cfg->storage.type &&
				strcmp(cfg->storage.type, cfg->collector.impl->name) == 0;
	if (cfg->storage.enabled && !(collect_failed && store_with_source)) {
		store = session_store(session, cfg, err, sizeof(err));
		if (!store)
			add_error(&r, "store", err);
	}
	if (store && have_point && !opt->no_store &&
	    dtk_store_upsert(store, cfg->name, &point, 1, err, sizeof(err)) != 0)
		add_error(&r, "store", err);
	if (store && (max_seconds || max_points) &&
	    dtk_store_history(store, cfg->name, max_seconds ? point.ts - max_seconds : point.ts,
			      point.ts, max_points, cfg->collector.n_context_columns > 0, &hist, err,
			      sizeof(err)) != 0)
		add_error(&r, "store", err);
	if (have_point && !point.is_missing) {
		newest_found = 1;
		newest_ts = point.ts;
	} else if (store && dtk_store_newest(store, cfg->name, &newest_ts, &newest_found, err,
					     sizeof(err)) != 0) {
		add_error(&r, "store", err);
	}
	if (!opt->no_store || !opt->no_alerts) {
		state = session_state(session, opt->state_path, opt->redis_url, err, sizeof(err));
		if (!state)
			add_error(&r, "alert", err);
	}
	char lerr[256];
	dtk_limiter_release(&lease, lerr, sizeof(lerr));
	t_store = dtk_mono_ms() - t0;

	/* detect */
	t0 = dtk_mono_ms();
	det = calloc(cfg->ndetectors ? cfg->ndetectors : 1, sizeof(*det));
	if (!det)
		goto oom;
	int any_anomaly = 0, primary = -1;
	for (size_t i = 0; i < cfg->ndetectors; i++) {
		const dtk_detector_cfg *dc = &cfg->detectors[i];
		int64_t prev = prev_missed(&r, state, dc->id, exec);
		dtk_detect_input in = {
			.ts = point.ts,
			.value = point.value,
			.is_missing = point.is_missing,
			.context = point.context,
			.tz = cfg->tz,
			.history = {.n = hist.n,
				    .ts = hist.ts,
				    .values = hist.values,
				    .context = (const dtk_value *const *)hist.context},
			.collect_failed = collect_failed,
			.prev_missed = prev,
			.period_finish = period_finish,
			.has_newest = newest_found,
			.newest_ts = newest_ts,
		};
		dtk_detection_init(&det[i], dc->id, dc->impl->name);
		dc->impl->run(dc->compiled, &in, &det[i]);
		if (!opt->no_store)
			save_missed(&r, state, &det[i], prev, exec);
		if (det[i].is_anomaly) {
			any_anomaly = 1;
			if (primary < 0)
				primary = (int)i;
		}
	}
	t_detect = dtk_mono_ms() - t0;

	const char *status = r.failed ? "error" : any_anomaly ? "anomaly" : "ok";

	/* the result object, alert fields last */
	dtk_value_map_set_str(json, "schema", "dtk.check.result/v1");
	dtk_value_map_set_str(json, "request_id", opt->request_id);
	dtk_value_map_set_str(json, "dispatch_id", opt->dispatch_id);
	dtk_value_map_set_str(json, "metric", cfg->name);
	dtk_value_map_set_str(json, "status", status);
	set_time(json, "execution_time", exec * 1000, 0);
	set_time(json, "requested_time", requested * 1000, 0);
	set_time(json, "started_at", started_ms, 1);
	if (have_point) {
		dtk_value *dp = dtk_value_map();
		if (dp) {
			set_time(dp, "timestamp", point.ts * 1000, 0);
			dtk_value_map_set_num(dp, "value", point.is_missing ? NAN : point.value);
			dtk_value_map_set_bool(dp, "is_missing", point.is_missing);
			set_owned(dp, "context", point.context ? dtk_value_copy(point.context)
							       : dtk_value_map());
		}
		set_owned(json, "datapoint", dp);
	} else {
		set_owned(json, "datapoint", dtk_value_null());
	}
	dtk_value *dets = dtk_value_list();
	for (size_t i = 0; dets && i < cfg->ndetectors; i++) {
		dtk_value *d = dtk_message_detection(&det[i]);
		if (!d || dtk_value_list_push(dets, d) != 0)
			dtk_value_free(&d);
	}
	set_owned(json, "detections", dets);

	/* alert */
	t0 = dtk_mono_ms();
	dtk_value *alerts = dtk_value_list();
	dtk_value *summary = dtk_value_map();
	if (!alerts || !summary) {
		dtk_value_free(&alerts);
		dtk_value_free(&summary);
		goto oom;
	}
	if (!opt->no_alerts) {
		char owner[160];
		if (opt->owner)
			snprintf(owner, sizeof(owner), "%s", opt->owner);
		else
			default_owner(owner, sizeof(owner), started_ms);
		vars = dtk_message_vars(cfg, exec, point.ts, point.value,
					point.is_missing || !have_point, status, det,
					cfg->ndetectors, primary);
		dtk_alert_ctx actx = {
			.cfg = cfg,
			.execution_time = exec,
			.status = status,
			.det = det,
			.ndet = cfg->ndetectors,
			.vars = vars,
			.result = json,
			.error_stage = r.first_stage,
			.error_message = r.first_error,
			.state = state,
			.now = (int64_t)time(NULL),
			.deadline_ms = opt->deadline_ms ? opt->deadline_ms
							: started_ms + cfg->schedule.timeout * 1000,
			.owner = owner,
		};
		res->alert_sent = dtk_alert_process(&actx, alerts, summary) > 0;
		for (size_t i = 0; i < alerts->u.list.n; i++) {
			const char *e = dtk_value_cstr(dtk_value_map_get(alerts->u.list.items[i],
									  "error"));
			if (e && dtk_value_truthy(dtk_value_map_get(alerts->u.list.items[i], "sent")))
				continue; /* a template fallback: delivered anyway */
			if (e) {
				char msg[1200];
				snprintf(msg, sizeof(msg), "alerter %s: %s",
					 cfg->alerters[i].id, e);
				add_error(&r, "alert", msg);
			}
		}
	} else {
		char *reason = dtk_alert_reason(det, cfg->ndetectors);
		dtk_value_map_set_bool(summary, "sent", 0);
		dtk_value_map_set_str(summary, "reason", reason);
		dtk_value_map_set_str(summary, "suppressed_by", NULL);
		free(reason);
	}
	t_alert = dtk_mono_ms() - t0;

	/* detections and retention after alerting, so rows carry alert_sent */
	double t1 = dtk_mono_ms();
	if (store && !opt->no_store && cfg->storage.save_detections)
		save_detections(&r, store, det, cfg->ndetectors, point.ts, exec, summary);
	if (store && !opt->no_store)
		apply_retention(&r, store, state);
	t_store += dtk_mono_ms() - t1;

	status = r.failed ? "error" : any_anomaly ? "anomaly" : "ok";
	dtk_value_map_set_str(json, "status", status);
	set_owned(json, "alert", summary);
	set_owned(json, "alerts", alerts);
	set_owned(json, "errors", r.errors);
	r.errors = NULL;
	set_owned(json, "warnings", r.warnings);
	r.warnings = NULL;
	dtk_value *tags = dtk_value_list();
	for (size_t i = 0; tags && i < cfg->ntags; i++) {
		dtk_value *t = dtk_value_str(cfg->tags[i]);
		if (!t || dtk_value_list_push(tags, t) != 0)
			dtk_value_free(&t);
	}
	set_owned(json, "tags", tags);
	set_owned(json, "metadata", cfg->metadata ? dtk_value_copy(cfg->metadata) : dtk_value_map());
	set_owned(json, "worker", opt->worker ? dtk_value_copy(opt->worker) : dtk_value_null());
	dtk_value *timings = dtk_value_map();
	if (timings) {
		dtk_value_map_set_num(timings, "queued", (double)opt->queued_ms);
		dtk_value_map_set_num(timings, "limiter_wait", to_us(limiter_wait));
		dtk_value_map_set_num(timings, "collect", to_us(t_collect));
		dtk_value_map_set_num(timings, "store", to_us(t_store));
		dtk_value_map_set_num(timings, "detect", to_us(t_detect));
		dtk_value_map_set_num(timings, "alert", to_us(t_alert));
		dtk_value_map_set_num(timings, "total", to_us(dtk_mono_ms() - t_start));
	}
	set_owned(json, "timings_ms", timings);
	set_time(json, "finished_at", dtk_now_ms(), 1);

	res->status = status;
	res->json = json;
	*out = res;
	res = NULL;
	json = NULL;
oom:
	for (size_t i = 0; det && i < cfg->ndetectors; i++)
		dtk_detection_clear(&det[i]);
	free(det);
	dtk_value_free(&vars);
	dtk_series_clear(&hist);
	dtk_rows_clear(&rows);
	dtk_value_free(&r.errors);
	dtk_value_free(&r.warnings);
	dtk_value_free(&json);
	free(res);
	dtk_session_free(&own_session);
	return *out ? 0 : -1;
}

void dtk_check_result_free(dtk_check_result **pr)
{
	if (!pr || !*pr)
		return;
	dtk_value_free(&(*pr)->json);
	free(*pr);
	*pr = NULL;
}
