#include "alert/alert.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert/message.h"
#include "template/template.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/hash.h"

#define SENT_TTL (7 * 86400)

static void format_score(double s, char *out, size_t outsz)
{
	if (isinf(s))
		snprintf(out, outsz, "inf");
	else
		snprintf(out, outsz, "%.2f", s);
}

char *dtk_alert_reason(const dtk_detection *det, size_t ndet)
{
	int primary = -1;
	size_t count = 0;
	dtk_buf ids;
	dtk_buf_init(&ids, 4096);
	for (size_t i = 0; i < ndet; i++) {
		if (!det[i].is_anomaly)
			continue;
		if (primary < 0)
			primary = (int)i;
		dtk_buf_printf(&ids, "%s%s", count ? ", " : "", det[i].detector_id);
		count++;
	}
	char *out = NULL;
	if (primary >= 0) {
		char score[32];
		format_score(det[primary].score, score, sizeof(score));
		dtk_buf b;
		dtk_buf_init(&b, 8192);
		if (count == 1)
			dtk_buf_printf(&b, "Anomaly detected by detector %s: score=%s",
				       det[primary].detector_id, score);
		else
			dtk_buf_printf(&b, "Anomalies detected by %zu detectors (%s): primary_score=%s",
				       count, dtk_buf_str(&ids), score);
		out = dtk_buf_take(&b);
	}
	dtk_buf_free(&ids);
	return out;
}

/* State keys follow fleet.md: dtk:state:<what>:<metric>:<alerter>[:<time>]. */
static void state_key(char *out, size_t outsz, const char *what, const char *metric,
		      const char *alerter, int64_t t)
{
	if (alerter && t >= 0)
		snprintf(out, outsz, "dtk:state:%s:%s:%s:%lld", what, metric, alerter, (long long)t);
	else if (alerter)
		snprintf(out, outsz, "dtk:state:%s:%s:%s", what, metric, alerter);
	else
		snprintf(out, outsz, "dtk:state:%s:%s:%lld", what, metric, (long long)t);
}

/* 1 when key holds want, 0 when it does not (or there is no state), -1
 * when the state store failed. */
static int state_is(const dtk_alert_ctx *c, const char *key, const char *want)
{
	char *v = NULL, err[256];
	if (!c->state)
		return 0;
	int got = dtk_state_get(c->state, key, c->now, &v, err, sizeof(err));
	if (got != 1)
		return got < 0 ? -1 : 0;
	int eq = strcmp(v, want) == 0;
	free(v);
	return eq;
}

static void state_put(const dtk_alert_ctx *c, const char *key, const char *val, int64_t ttl)
{
	char err[256];
	if (c->state)
		dtk_state_set(c->state, key, val, c->now, ttl, err, sizeof(err));
}

/* 1 when the n aligned slots ending at the execution time all have
 * key == "1". This slot qualifies (the caller knows), so only the n-1
 * before it are read. A slot the state store cannot tell about counts as
 * qualifying and sets *state_failed: with the store down an alert goes out
 * rather than being lost. */
static int streak_holds(const dtk_alert_ctx *c, const char *what, const char *alerter, int n,
			int *state_failed)
{
	char key[512];
	for (int k = 1; k < n; k++) {
		int64_t t = c->execution_time - (int64_t)k * c->cfg->schedule.interval;
		state_key(key, sizeof(key), what, c->cfg->name, alerter, t);
		int r = state_is(c, key, "1");
		if (r == 0)
			return 0;
		if (r < 0)
			*state_failed = 1;
	}
	return 1;
}

static int64_t streak_ttl(const dtk_alert_ctx *c, int n)
{
	return (int64_t)(n + 1) * c->cfg->schedule.interval + 86400;
}

typedef struct decision {
	const char *kind; /* NULL: nothing to send */
	const char *suppressed_by;
	const dtk_detection *primary;
	int state_failed; /* the alert state could not be read: conditions assumed met */
} decision;

static int detections_ran(const dtk_alert_ctx *c, size_t *anomalous)
{
	int ran = 0;
	*anomalous = 0;
	for (size_t i = 0; i < c->ndet; i++) {
		if (c->det[i].skipped)
			continue;
		ran++;
		if (c->det[i].is_anomaly)
			(*anomalous)++;
	}
	return ran;
}

/* Applies require, direction and min_deviation to an anomalous check. */
static const char *gate_anomaly(const dtk_alert_ctx *c, const dtk_conditions *cond,
				const dtk_detection *primary)
{
	size_t anomalous;
	int ran = detections_ran(c, &anomalous);
	if ((cond->require == DTK_REQUIRE_ALL && (int)anomalous < ran) ||
	    (cond->require == DTK_REQUIRE_N && (int)anomalous < cond->require_n))
		return "require";
	const char *dir = primary->direction;
	int value_dir = dir && (strcmp(dir, "up") == 0 || strcmp(dir, "down") == 0);
	if (value_dir && ((cond->direction == DTK_DIR_UP && strcmp(dir, "up") != 0) ||
			  (cond->direction == DTK_DIR_DOWN && strcmp(dir, "down") != 0)))
		return "direction";
	if (cond->has_min_deviation && value_dir && !isnan(primary->percent_deviation) &&
	    fabs(primary->percent_deviation) < cond->min_deviation_percent)
		return "min_deviation";
	return NULL;
}

static decision decide(const dtk_alert_ctx *c, const dtk_alerter_cfg *a)
{
	decision d = {0};
	const dtk_conditions *cond = &a->cond;
	char key[512];
	const char *name = c->cfg->name;
	if (strcmp(c->status, "error") == 0) {
		if (cond->notify_on_error &&
		    streak_holds(c, "errors", NULL, cond->consecutive_errors, &d.state_failed))
			d.kind = "error";
		return d;
	}
	if (strcmp(c->status, "anomaly") == 0) {
		for (size_t i = 0; i < c->ndet && !d.primary; i++)
			if (c->det[i].is_anomaly)
				d.primary = &c->det[i];
		d.suppressed_by = gate_anomaly(c, cond, d.primary);
		state_key(key, sizeof(key), "streak", name, a->id, c->execution_time);
		state_put(c, key, d.suppressed_by ? "0" : "1",
			  streak_ttl(c, cond->consecutive_anomalies));
		if (d.suppressed_by)
			return d;
		if (!streak_holds(c, "streak", a->id, cond->consecutive_anomalies,
				  &d.state_failed)) {
			d.suppressed_by = "consecutive";
			return d;
		}
		const char *dir = d.primary->direction;
		d.kind = dir && strcmp(dir, "missing") == 0 ? "missing"
			 : dir && strcmp(dir, "stale") == 0 ? "stale"
							      : "anomaly";
		return d;
	}
	state_key(key, sizeof(key), "streak", name, a->id, c->execution_time);
	state_put(c, key, "0", streak_ttl(c, cond->consecutive_anomalies));
	state_key(key, sizeof(key), "firing", name, a->id, -1);
	if (state_is(c, key, "1") == 1) {
		char err[256];
		if (c->state)
			dtk_state_del(c->state, key, err, sizeof(err));
		/* a channel that tracks firing alerts (Alertmanager) must hear the
		 * resolution whatever notify_recovery says */
		if (cond->notify_recovery || a->impl->repost_while_firing)
			d.kind = "recovery";
	}
	return d;
}

/* Waits for a delivery slot of the alerter's URL: at most rate_per_second
 * (default 1) messages a second per URL, counted in the alert state so
 * every process (and, with Redis, every worker) shares the limit. The key
 * holds a hash of the URL, never the URL (its path is a secret). */
static int wait_rate_slot(const dtk_alert_ctx *c, const dtk_alerter_cfg *a, char *err,
			  size_t errsz)
{
	const char *url = a->impl->rate_key ? a->impl->rate_key(a->compiled) : NULL;
	double rate = 1.0;
	const dtk_value *r = dtk_value_map_get(a->params, "rate_per_second");
	if (!url || !c->state || (dtk_value_number(r, &rate) && rate <= 0))
		return 0;
	char hash[65], key[128], serr[256];
	if (dtk_sha256_hex(url, strlen(url), hash) != 0)
		return 0;
	for (;;) {
		int64_t now = dtk_now_ms();
		int64_t slot = (int64_t)((double)now * rate / 1000.0);
		snprintf(key, sizeof(key), "dtk:rate:%.16s:%lld", hash, (long long)slot);
		int got = dtk_state_set_nx(c->state, key, "1", now / 1000, 2, serr, sizeof(serr));
		if (got != 0)
			return 0; /* a slot, or the state failed: deliver rather than drop */
		int64_t next = (int64_t)((double)(slot + 1) * 1000.0 / rate) + 1;
		if (c->deadline_ms && next > c->deadline_ms) {
			snprintf(err, errsz, "rate limit: no delivery slot before the deadline");
			return -1;
		}
		dtk_sleep_ms(next - now);
	}
}

/* The alert claim of fleet.md: 1 when this check may send (the key was
 * free, or its claimer died), 0 when it must not (already sent: sets
 * duplicate; still held past the wait: an error). A failing state store
 * lets the alert go out: a duplicate is better than a lost alert. */
static int claim(const dtk_alert_ctx *c, const char *key, decision *d, char *err, size_t errsz)
{
	if (!c->state)
		return 1;
	int64_t wait = c->deadline_ms ? c->deadline_ms - dtk_now_ms() : 0;
	if (wait > DTK_CLAIM_LEASE_MS)
		wait = DTK_CLAIM_LEASE_MS;
	char cerr[256];
	switch (dtk_state_claim(c->state, key, c->owner ? c->owner : "dtk", DTK_CLAIM_LEASE_MS,
				wait > 0 ? wait : 0, cerr, sizeof(cerr))) {
	case DTK_CLAIM_CLAIMED:
	case DTK_CLAIM_RECLAIMED:
	case DTK_CLAIM_ERROR:
		return 1;
	case DTK_CLAIM_SENT:
		d->suppressed_by = "duplicate";
		return 0;
	case DTK_CLAIM_HELD:
		snprintf(err, errsz, "another process holds this alert's claim past the deadline");
		return 0;
	}
	return 1;
}

static double num_var(const dtk_value *vars, const char *key, int *missing)
{
	double x;
	if (dtk_value_number(dtk_value_map_get(vars, key), &x))
		return x;
	*missing = 1;
	return NAN;
}

static char *render(const dtk_alert_ctx *c, const dtk_alerter_cfg *a, const decision *d,
		    char *err, size_t errsz)
{
	const char *bold = a->impl->bold_single ? "*" : "**";
	int is_missing = 0;
	double value = num_var(c->vars, "value", &is_missing);
	const dtk_value *ts = dtk_value_map_get(c->vars, "timestamp");
	int64_t point_ts = ts && ts->type == DTK_V_DATETIME ? ts->u.dt.secs : c->execution_time;
	int templated = a->tmpl && (strcmp(d->kind, "anomaly") == 0 ||
				    strcmp(d->kind, "missing") == 0 || strcmp(d->kind, "stale") == 0);
	if (templated) {
		char *text = dtk_template_render(a->tmpl, c->vars, 0, err, errsz);
		if (text)
			return text;
		/* fall back to the default message; err stays recorded */
	}
	return dtk_message_default(d->kind, c->cfg, d->primary, point_ts, value, is_missing, bold,
				   c->error_stage, c->error_message);
}

int dtk_alert_process(const dtk_alert_ctx *c, dtk_value *alerts, dtk_value *summary)
{
	const dtk_config *cfg = c->cfg;
	char key[512];
	int sent_count = 0;
	const char *first_suppressed = NULL;
	char *reason = dtk_alert_reason(c->det, c->ndet);
	char *sent_reason = NULL;

	state_key(key, sizeof(key), "errors", cfg->name, NULL, c->execution_time);
	state_put(c, key, strcmp(c->status, "error") == 0 ? "1" : "0", 30 * 86400);

	for (size_t i = 0; i < cfg->nalerters; i++) {
		const dtk_alerter_cfg *a = &cfg->alerters[i];
		dtk_value *entry = dtk_value_map();
		if (!entry)
			break;
		char err[1024] = "";
		int sent = 0;
		const char *entry_reason = reason;
		decision d = {0};
		if (!a->enabled) {
			d.suppressed_by = "disabled";
		} else {
			d = decide(c, a);
		}
		if (d.kind) {
			state_key(key, sizeof(key), "alert", cfg->name, a->id, c->execution_time);
			char ckey[512];
			state_key(ckey, sizeof(ckey), "cooldown", cfg->name, a->id, -1);
			char *last = NULL, serr[256];
			int64_t cooldown = (int64_t)(a->cond.cooldown_minutes * 60);
			if (state_is(c, key, "sent") == 1) {
				d.suppressed_by = "duplicate";
			} else if (strcmp(d.kind, "recovery") != 0 && !a->impl->repost_while_firing &&
				   cooldown > 0 && c->state &&
				   dtk_state_get(c->state, ckey, c->now, &last, serr,
						 sizeof(serr)) == 1) {
				char *end;
				long long t = strtoll(last, &end, 10);
				int64_t since = c->execution_time - (int64_t)t;
				if (*end == '\0' && since >= 0 && since < cooldown)
					d.suppressed_by = "cooldown";
			}
			free(last);
		}
		if (d.kind && !d.suppressed_by) {
			char terr[768] = "";
			char *text = render(c, a, &d, terr, sizeof(terr));
			dtk_alert_message msg = {.kind = d.kind,
						 .text = text ? text : "",
						 .result = c->result,
						 .vars = c->vars,
						 .bold_single = a->impl->bold_single,
						 .execution_time = c->execution_time,
						 .interval = cfg->schedule.interval,
						 .deadline_ms = c->deadline_ms,
						 .secrets = cfg->secrets};
			if (terr[0])
				snprintf(err, sizeof(err), "message_template: %s (default message sent)",
					 terr);
			char serr[1024] = "";
			int claimed = claim(c, key, &d, serr, sizeof(serr));
			int ready = claimed && wait_rate_slot(c, a, serr, sizeof(serr)) == 0;
			msg.now_ms = dtk_now_ms();
			if (ready && a->impl->send(a->compiled, &msg, serr, sizeof(serr)) == 0) {
				sent = 1;
				sent_count++;
				char merr[256];
				if (c->state && dtk_state_mark_sent(c->state, key, merr, sizeof(merr)) != 0)
					snprintf(err, sizeof(err), "sent, but not marked sent: %s", merr);
				else if (d.state_failed)
					snprintf(err, sizeof(err),
						 "sent without its consecutive count: the alert state "
						 "could not be read");
				if (strcmp(d.kind, "recovery") != 0) {
					char ckey[512], tbuf[32];
					state_key(ckey, sizeof(ckey), "cooldown", cfg->name, a->id, -1);
					snprintf(tbuf, sizeof(tbuf), "%lld", (long long)c->execution_time);
					state_put(c, ckey, tbuf, SENT_TTL);
				}
				if (strcmp(d.kind, "error") != 0 && strcmp(d.kind, "recovery") != 0) {
					state_key(key, sizeof(key), "firing", cfg->name, a->id, -1);
					state_put(c, key, "1", SENT_TTL);
				}
			} else if (!d.suppressed_by) {
				snprintf(err, sizeof(err), "%s", serr);
				char uerr[256];
				if (claimed && c->state)
					dtk_state_unclaim(c->state, key, c->owner, uerr, sizeof(uerr));
			}
			free(text);
			if (strcmp(d.kind, "recovery") == 0)
				entry_reason = "Recovered";
			else if (strcmp(d.kind, "error") == 0)
				entry_reason = "Check failed";
		}
		if (!sent && d.suppressed_by && !first_suppressed)
			first_suppressed = d.suppressed_by;
		if (sent && !sent_reason && entry_reason)
			sent_reason = strdup(entry_reason);
		const char *id = a->id;
		char *end;
		long idx = strtol(id, &end, 10);
		if (*end == '\0' && end != id)
			dtk_value_map_set_int(entry, "alerter", idx);
		else
			dtk_value_map_set_str(entry, "alerter", id);
		dtk_value_map_set_str(entry, "type", a->impl->name);
		dtk_value_map_set_bool(entry, "sent", sent);
		dtk_value_map_set_str(entry, "reason", d.kind ? entry_reason : NULL);
		dtk_value_map_set_str(entry, "suppressed_by", sent ? NULL : d.suppressed_by);
		dtk_value_map_set_str(entry, "error", err[0] ? err : NULL);
		if (dtk_value_list_push(alerts, entry) != 0)
			dtk_value_free(&entry);
	}
	dtk_value_map_set_bool(summary, "sent", sent_count > 0);
	dtk_value_map_set_str(summary, "reason", sent_reason ? sent_reason : reason);
	dtk_value_map_set_str(summary, "suppressed_by", sent_count ? NULL : first_suppressed);
	free(sent_reason);
	free(reason);
	return sent_count;
}
