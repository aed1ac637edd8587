#include "detect/seasonal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/json.h"
#include "util/pyfmt.h"

static const char *const calendar_names[] = {
	[DTK_CAL_HOUR_OF_DAY] = "hour_of_day",	   [DTK_CAL_DAY_OF_WEEK] = "day_of_week",
	[DTK_CAL_DAY_OF_MONTH] = "day_of_month",   [DTK_CAL_MONTH] = "month",
	[DTK_CAL_MINUTE_OF_HOUR] = "minute_of_hour", [DTK_CAL_IS_WEEKEND] = "is_weekend",
};
#define N_CALENDAR (sizeof(calendar_names) / sizeof(calendar_names[0]))

dtk_calendar_feature dtk_calendar_feature_find(const char *name)
{
	for (size_t i = 0; i < N_CALENDAR; i++)
		if (strcmp(name, calendar_names[i]) == 0)
			return (dtk_calendar_feature)i;
	return DTK_CAL_NONE;
}

static int is_context_column(const dtk_detector_env *env, const char *name)
{
	if (!env)
		return 0;
	for (size_t i = 0; i < env->n_context_columns; i++)
		if (env->context_columns[i] && strcmp(env->context_columns[i], name) == 0)
			return 1;
	return 0;
}

static void warn(const dtk_detector_env *env, const char *msg)
{
	if (!env || !env->warnings)
		return;
	dtk_value *s = dtk_value_str(msg);
	if (s && dtk_value_list_push(env->warnings, s) != 0)
		dtk_value_free(&s);
}

int dtk_seasonal_compile(dtk_seasonal *s, const dtk_value *features, int combined,
			 const dtk_detector_env *env, char *errstr, size_t errstr_size)
{
	int rc = -1;
	char msg[512];

	memset(s, 0, sizeof(*s));
	s->combined = combined;
	if (!(s->listed = dtk_value_list()))
		goto nomem;
	if (!features || features->type == DTK_V_NULL) {
		rc = 0;
		goto out;
	}
	if (features->type != DTK_V_LIST) {
		snprintf(errstr, errstr_size, "seasonal_features: must be a list of feature names, got %s",
			 dtk_value_type_name(features));
		goto out;
	}
	size_t n = features->u.list.n;
	if (n == 0) {
		rc = 0;
		goto out;
	}
	s->names = calloc(n, sizeof(*s->names));
	s->calendar = calloc(n, sizeof(*s->calendar));
	if (!s->names || !s->calendar)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		const dtk_value *item = features->u.list.items[i];
		const char *name = dtk_value_cstr(item);
		int has_expression = 0;
		if (item->type == DTK_V_MAP) {
			name = dtk_value_cstr(dtk_value_map_get(item, "name"));
			has_expression = dtk_value_map_get(item, "expression") != NULL;
			if (!name) {
				snprintf(errstr, errstr_size,
					 "seasonal_features: item %zu is a mapping without a string "
					 "'name'",
					 i + 1);
				goto out;
			}
		} else if (!name) {
			snprintf(errstr, errstr_size,
				 "seasonal_features: item %zu must be a feature name, got %s", i + 1,
				 dtk_value_type_name(item));
			goto out;
		}
		dtk_calendar_feature cal = dtk_calendar_feature_find(name);
		int ctx = is_context_column(env, name);
		if (cal == DTK_CAL_NONE && !ctx) {
			snprintf(errstr, errstr_size,
				 "seasonal_features: unknown feature '%s': use a calendar feature "
				 "(hour_of_day, day_of_week, day_of_month, month, minute_of_hour, "
				 "is_weekend) or one of the collector's context_columns",
				 name);
			goto out;
		}
		if (has_expression) {
			snprintf(msg, sizeof(msg),
				 "seasonal_features: the expression of '%s' is not evaluated; the %s "
				 "named '%s' is used",
				 name, ctx ? "context column" : "calendar feature", name);
			warn(env, msg);
		}
		if (cal != DTK_CAL_NONE && ctx) {
			snprintf(msg, sizeof(msg),
				 "seasonal_features: context column '%s' overrides the calendar "
				 "feature of the same name",
				 name);
			warn(env, msg);
		}
		if (!(s->names[i] = strdup(name)))
			goto nomem;
		s->calendar[i] = cal;
		s->n = i + 1;
		dtk_value *lv = dtk_value_str(name);
		if (!lv || dtk_value_list_push(s->listed, lv) != 0) {
			dtk_value_free(&lv);
			goto nomem;
		}
	}
	rc = 0;
	goto out;
nomem:
	snprintf(errstr, errstr_size, "seasonal_features: out of memory");
out:
	return rc;
}

void dtk_seasonal_release(dtk_seasonal *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->names[i]);
	free(s->names);
	free(s->calendar);
	dtk_value_free(&s->listed);
	memset(s, 0, sizeof(*s));
}

/* A feature's value at one point. */
typedef struct feat {
	int kind; /* 0 absent, 1 number, 2 another value */
	double num;
	const dtk_value *v; /* the context value, or NULL for a calendar one */
} feat;

static int feat_equal(const feat *a, const feat *b)
{
	if (a->kind == 0 || b->kind == 0 || a->kind != b->kind)
		return 0;
	if (a->v && b->v)
		return dtk_value_equal(a->v, b->v);
	return a->kind == 1 && a->num == b->num;
}

static int from_context(const dtk_value *ctx, const char *name, feat *f)
{
	if (!ctx || ctx->type != DTK_V_MAP)
		return 0;
	const dtk_value *v = dtk_value_map_get(ctx, name);
	if (!v)
		return 0;
	f->v = v;
	if (v->type == DTK_V_NULL)
		f->kind = 0; /* pandas: None never equals anything */
	else if (dtk_value_number(v, &f->num))
		f->kind = 1;
	else
		f->kind = 2;
	return 1;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static double calendar_value(int which, int64_t local)
{
	int64_t days = floor_div(local, 86400);
	int64_t secs = local - days * 86400;
	int dow = (int)(((days + 3) % 7 + 7) % 7);
	int y, m, d;
	switch (which) {
	case DTK_CAL_HOUR_OF_DAY:
		return (double)(secs / 3600);
	case DTK_CAL_MINUTE_OF_HOUR:
		return (double)(secs % 3600 / 60);
	case DTK_CAL_DAY_OF_WEEK:
		return dow;
	case DTK_CAL_IS_WEEKEND:
		return dow >= 5;
	case DTK_CAL_DAY_OF_MONTH:
		dtk_pyfmt_civil(days, &y, &m, &d);
		return d;
	case DTK_CAL_MONTH:
		dtk_pyfmt_civil(days, &y, &m, &d);
		return m;
	default:
		return NAN;
	}
}

/* Offsets of sorted timestamps, looked up once per span of equal offset. */
typedef struct offset_cache {
	const dtk_tz *tz;
	int64_t from, until;
	int32_t off;
} offset_cache;

static int64_t local_time(offset_cache *c, int64_t t)
{
	if (t < c->from || t >= c->until)
		c->off = dtk_tz_offset_span(c->tz, t, &c->from, &c->until);
	return t + c->off;
}

static void point_feature(const dtk_seasonal *s, size_t k, const dtk_value *ctx, int64_t local,
			  feat *f)
{
	f->kind = 0;
	f->v = NULL;
	if (from_context(ctx, s->names[k], f))
		return;
	if (s->calendar[k] != DTK_CAL_NONE) {
		f->kind = 1;
		f->num = calendar_value(s->calendar[k], local);
	}
}

#define SEASONAL_MAX_STACK 16

long dtk_seasonal_filter(const dtk_seasonal *s, const dtk_detect_input *in, size_t lo, size_t hi,
			 double *x, char **why)
{
	feat cur_stack[SEASONAL_MAX_STACK];
	feat *cur = s->n <= SEASONAL_MAX_STACK ? cur_stack : malloc(s->n * sizeof(*cur));
	long kept = -1;
	offset_cache oc = {in->tz, 1, 0, 0}; /* empty span: the first lookup fills it */

	*why = NULL;
	if (!cur) {
		*why = strdup("out of memory");
		goto out;
	}
	int64_t cur_local = local_time(&oc, in->ts);
	for (size_t k = 0; k < s->n; k++) {
		point_feature(s, k, in->context, cur_local, &cur[k]);
		if (cur[k].kind == 0) {
			dtk_buf b;
			dtk_buf_init(&b, 1024);
			dtk_buf_printf(&b,
				       "Seasonal feature '%s' not found in the current point's "
				       "context",
				       s->names[k]);
			*why = dtk_buf_take(&b);
			dtk_buf_free(&b);
			goto out;
		}
	}
	kept = 0;
	const dtk_value *const *ctxs = in->history.context;
	for (size_t i = lo; i < hi; i++) {
		const dtk_value *ctx = ctxs ? ctxs[i] : NULL;
		int64_t local = local_time(&oc, in->history.ts[i]);
		int match = s->combined;
		for (size_t k = 0; k < s->n; k++) {
			feat f;
			point_feature(s, k, ctx, local, &f);
			int eq = feat_equal(&f, &cur[k]);
			if (s->combined && !eq) {
				match = 0;
				break;
			}
			if (!s->combined && eq) {
				match = 1;
				break;
			}
		}
		if (match)
			x[kept++] = in->history.values[i];
	}
out:
	if (cur != cur_stack)
		free(cur);
	return kept;
}

char *dtk_seasonal_describe(const dtk_seasonal *s, const dtk_detect_input *in)
{
	dtk_buf b;
	offset_cache oc = {in->tz, 1, 0, 0};
	int64_t local = local_time(&oc, in->ts);

	dtk_buf_init(&b, 4096);
	for (size_t k = 0; k < s->n; k++) {
		feat f;
		point_feature(s, k, in->context, local, &f);
		dtk_buf_printf(&b, "%s%s=", k ? ", " : "", s->names[k]);
		if (f.v)
			dtk_json_emit(&b, f.v, DTK_JSON_RAW_UTF8);
		else if (f.kind == 1)
			dtk_buf_printf(&b, "%lld", (long long)f.num);
		else
			dtk_buf_adds(&b, "None");
	}
	char *r = dtk_buf_take(&b);
	dtk_buf_free(&b);
	return r;
}
