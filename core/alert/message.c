#include "alert/message.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util/buf.h"
#include "util/pyfmt.h"

dtk_value *dtk_message_detection(const dtk_detection *d)
{
	dtk_value *m = dtk_value_map();
	if (!m)
		return NULL;
	dtk_value_map_set_str(m, "detector_id", d->detector_id);
	dtk_value_map_set_str(m, "detector_type", d->detector_type);
	dtk_value_map_set_bool(m, "is_anomaly", d->is_anomaly);
	dtk_value_map_set_num(m, "score", d->score);
	dtk_value_map_set_num(m, "lower_bound", d->lower_bound);
	dtk_value_map_set_num(m, "upper_bound", d->upper_bound);
	dtk_value_map_set_str(m, "direction", d->direction);
	dtk_value_map_set_num(m, "percent_deviation", d->percent_deviation);
	dtk_value_map_set_str(m, "skipped", d->skipped);
	dtk_value *meta = d->metadata ? dtk_value_copy(d->metadata) : dtk_value_map();
	if (!meta || dtk_value_map_set(m, "metadata", meta) != 0)
		dtk_value_free(&meta);
	return m;
}

static void set_owned(dtk_value *map, const char *key, dtk_value *v)
{
	if (!v || dtk_value_map_set(map, key, v) != 0)
		dtk_value_free(&v);
}

dtk_value *dtk_message_vars(const dtk_config *cfg, int64_t execution_time, int64_t point_ts,
			    double value, int is_missing, const char *status,
			    const dtk_detection *det, size_t ndet, int primary)
{
	dtk_value *vars = dtk_value_map();
	if (!vars)
		return NULL;
	const dtk_detection *p = primary >= 0 ? &det[primary] : NULL;
	dtk_value_map_set_str(vars, "metric_name", cfg->name);
	set_owned(vars, "timestamp", dtk_value_datetime(point_ts, 0));
	dtk_value_map_set_num(vars, "value", is_missing ? NAN : value);
	dtk_value_map_set_bool(vars, "is_anomaly", p != NULL);
	dtk_value_map_set_num(vars, "score", p ? p->score : NAN);
	dtk_value_map_set_num(vars, "lower_bound", p ? p->lower_bound : NAN);
	dtk_value_map_set_num(vars, "upper_bound", p ? p->upper_bound : NAN);
	dtk_value_map_set_str(vars, "direction", p ? p->direction : NULL);
	dtk_value_map_set_num(vars, "percent_deviation", p ? p->percent_deviation : NAN);
	dtk_value *meta = p && p->metadata ? dtk_value_copy(p->metadata) : dtk_value_map();
	if (meta && p) {
		dtk_value_map_set_str(meta, "detector_id", p->detector_id);
		dtk_value_map_set_str(meta, "detector_type", p->detector_type);
	}
	set_owned(vars, "metadata", meta);
	dtk_value *list = dtk_value_list();
	for (size_t i = 0; list && i < ndet; i++) {
		dtk_value *dv = dtk_message_detection(&det[i]);
		if (!dv || dtk_value_list_push(list, dv) != 0)
			dtk_value_free(&dv);
	}
	set_owned(vars, "detections", list);
	dtk_value *tags = dtk_value_list();
	for (size_t i = 0; tags && i < cfg->ntags; i++) {
		dtk_value *t = dtk_value_str(cfg->tags[i]);
		if (!t || dtk_value_list_push(tags, t) != 0)
			dtk_value_free(&t);
	}
	set_owned(vars, "tags", tags);
	dtk_value_map_set_str(vars, "description", cfg->description);
	set_owned(vars, "metric_metadata",
		  cfg->metadata ? dtk_value_copy(cfg->metadata) : dtk_value_map());
	dtk_value_map_set_str(vars, "status", status);
	set_owned(vars, "execution_time", dtk_value_datetime(execution_time, 0));
	return vars;
}

static void add_time_line(dtk_buf *b, int64_t ts)
{
	char t[40];
	dtk_pyfmt_datetime(ts, 0, ' ', t, sizeof(t));
	dtk_buf_printf(b, "\nTime: %s", t);
}

/* A metadata value as text: strings as they are, numbers as Python
 * prints them. Returns 0 when absent. */
static int meta_text(const dtk_detection *d, const char *key, char *out, size_t outsz)
{
	const dtk_value *v = d->metadata ? dtk_value_map_get(d->metadata, key) : NULL;
	if (!v || v->type == DTK_V_NULL)
		return 0;
	if (v->type == DTK_V_STR)
		snprintf(out, outsz, "%s", v->u.str.s);
	else if (v->type == DTK_V_INT)
		snprintf(out, outsz, "%lld", (long long)v->u.i);
	else if (v->type == DTK_V_FLOAT)
		dtk_pyfmt_float(v->u.f, out, outsz);
	else if (v->type == DTK_V_BOOL)
		snprintf(out, outsz, "%s", v->u.b ? "True" : "False");
	else
		return 0;
	return 1;
}

static double meta_num(const dtk_detection *d, const char *key)
{
	double x;
	const dtk_value *v = d->metadata ? dtk_value_map_get(d->metadata, key) : NULL;
	return dtk_value_number(v, &x) ? x : NAN;
}

static void anomaly_body(dtk_buf *b, const dtk_detection *d, double value, int is_missing)
{
	int is_threshold = strcmp(d->detector_type, "threshold") == 0;
	char op[64] = "";
	if (!is_missing)
		dtk_buf_printf(b, "Value: %.2f\n", value);
	if (is_threshold)
		meta_text(d, "operator", op, sizeof(op));
	int one_sided = is_threshold && strcmp(op, "between") != 0 && strcmp(op, "outside") != 0;
	if (one_sided) {
		double t = meta_num(d, "threshold");
		if (!isnan(t))
			dtk_buf_printf(b, "Threshold: %s %.2f\n", op, t);
	} else if (!isnan(d->lower_bound) && !isnan(d->upper_bound)) {
		dtk_buf_printf(b, "Expected range: %.2f - %.2f\n", d->lower_bound, d->upper_bound);
	}
	if (isinf(d->score))
		dtk_buf_adds(b, "Anomaly score: infinite (extreme outlier)\n");
	else if (!isnan(d->score) && is_threshold)
		dtk_buf_printf(b, "Distance from threshold: %.2f\n", d->score);
	else if (!isnan(d->score))
		dtk_buf_printf(b, "Anomaly score: %.2f sigma\n", d->score);
	if (d->direction)
		dtk_buf_printf(b, "Direction: %s\n", d->direction);
	if (!isnan(d->percent_deviation))
		dtk_buf_printf(b, "Deviation: %+.1f%%\n", d->percent_deviation);
}

char *dtk_message_default(const char *kind, const dtk_config *cfg, const dtk_detection *d,
			  int64_t point_ts, double value, int is_missing, const char *bold,
			  const char *error_stage, const char *error_message)
{
	dtk_buf b;
	dtk_buf_init(&b, 1 << 20);
	if (strcmp(kind, "missing") == 0 && d) {
		char limit[32] = "1";
		meta_text(d, "threshold", limit, sizeof(limit));
		dtk_buf_printf(&b, "%sMISSING DATA: %s%s\n\n", bold, cfg->name, bold);
		dtk_buf_printf(&b, "No data for %lld consecutive intervals (threshold %s)\n",
			       (long long)d->missed, limit);
		add_time_line(&b, point_ts);
	} else if (strcmp(kind, "stale") == 0 && d) {
		char limit[32] = "?";
		meta_text(d, "max_staleness_minutes", limit, sizeof(limit));
		double age = meta_num(d, "staleness_minutes");
		dtk_buf_printf(&b, "%sSTALE DATA: %s%s\n\n", bold, cfg->name, bold);
		dtk_buf_printf(&b, "Last data %.1f minutes ago (limit %s)\n", age, limit);
		add_time_line(&b, point_ts);
	} else if (strcmp(kind, "recovery") == 0) {
		dtk_buf_printf(&b, "%sRECOVERED: %s%s\n\n", bold, cfg->name, bold);
		if (!is_missing)
			dtk_buf_printf(&b, "Value: %.2f\n", value);
		add_time_line(&b, point_ts);
	} else if (strcmp(kind, "error") == 0) {
		dtk_buf_printf(&b, "%sCHECK FAILED: %s%s\n\n", bold, cfg->name, bold);
		dtk_buf_printf(&b, "Stage: %s\nError: %s\n", error_stage ? error_stage : "unknown",
			       error_message ? error_message : "");
		add_time_line(&b, point_ts);
	} else if (d) {
		dtk_buf_printf(&b, "%sANOMALY DETECTED: %s%s\n\n", bold, cfg->name, bold);
		anomaly_body(&b, d, value, is_missing);
		add_time_line(&b, point_ts);
		char window[64], nsig[32];
		if (strcmp(d->detector_type, "threshold") != 0 &&
		    meta_text(d, "window_size", window, sizeof(window)) &&
		    meta_text(d, "n_sigma", nsig, sizeof(nsig)))
			dtk_buf_printf(&b, "\nDetector: type=%s, window=%s, threshold=%s sigma",
				       d->detector_type, window, nsig);
		else if (strcmp(d->detector_type, "threshold") != 0)
			dtk_buf_printf(&b, "\nDetector: type=%s", d->detector_type);
	}
	return dtk_buf_take(&b);
}
