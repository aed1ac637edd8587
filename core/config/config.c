#include "config/config.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/env.h"
#include "config/profiles.h"
#include "config/yaml.h"
#include "template/template.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/interval.h"
#include "util/timeparse.h"

#define DEFAULT_INTERVAL "10 minutes"
#define ALIGN_ORIGIN 345600 /* Monday 1970-01-05T00:00:00 */

typedef struct cfg_ctx {
	const char *path;
	const dtk_config_options *opt;
	dtk_env_opts env;
	dtk_config *cfg;
	char *errstr;
	size_t errstr_size;
} cfg_ctx;

static const char *const top_keys[] = {"name",	   "description", "tags",     "metadata",
				       "timezone", "collector",	  "detector", "detectors",
				       "alerter",  "alerters",	  "storage",  "schedule",
				       NULL};
static const char *const collector_keys[] = {"type",	     "profile",	     "params",
					     "timestamp_column", "value_column", "context_columns",
					     NULL};
static const char *const detector_keys[] = {"type", "id", "params", NULL};
static const char *const alerter_keys[] = {"id",	 "type",       "params", "enabled",
					   "conditions", "profile",    NULL};
static const char *const storage_keys[] = {"enabled", "type", "params", "profile",
					   "retention_days", NULL};
static const char *const storage_param_keys[] = {"connection_string",
						 "path",
						 "dsn",
						 "save_detections",
						 "datapoints_retention_days",
						 "detections_retention_days",
						 "host",
						 "port",
						 "database",
						 "user",
						 "password",
						 "secure",
						 "timeout",
						 "http_port",
						 NULL};
static const char *const schedule_keys[] = {"interval", "timeout",  "delay", "start_time",
					    "end_time", "batch_load_days", NULL};
static const char *const condition_keys[] = {
	"require",	   "consecutive_anomalies", "direction",	 "min_deviation_percent",
	"cooldown_minutes", "notify_recovery",	     "notify_on_error", "consecutive_errors",
	NULL};
/* keys every alerter reads, whatever its type */
static const char *const alerter_common_params[] = {"message_template", "cooldown_minutes",
						    "rate_per_second", NULL};

/* Formats "PATH:LINE:COL: keypath: message" (position from node when it
 * has one) and returns -1. */
static int fail_at(cfg_ctx *c, const dtk_value *node, const char *keypath, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail_at(cfg_ctx *c, const dtk_value *node, const char *keypath, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (node && node->line)
		snprintf(c->errstr, c->errstr_size, "%s:%u:%u: %s%s%s", c->path, node->line,
			 node->col, keypath ? keypath : "", keypath ? ": " : "", msg);
	else
		snprintf(c->errstr, c->errstr_size, "%s: %s%s%s", c->path, keypath ? keypath : "",
			 keypath ? ": " : "", msg);
	return -1;
}

static void warn(cfg_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(cfg_ctx *c, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	dtk_value *s = dtk_value_str(msg);
	if (!s || dtk_value_list_push(c->cfg->warnings, s) != 0)
		dtk_value_free(&s);
}

/* Optimal string alignment distance, capped at 2. */
static int edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64 || (la > lb ? la - lb : lb - la) > 1)
		return 2;
	int d[66][66];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = (int)i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			int cost = a[i - 1] != b[j - 1];
			int v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < v)
				v = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[la][lb];
}

static int key_known(const char *key, const char *const *known, const char *const *also)
{
	for (size_t i = 0; known && known[i]; i++)
		if (strcmp(key, known[i]) == 0)
			return 1;
	for (size_t i = 0; also && also[i]; i++)
		if (strcmp(key, also[i]) == 0)
			return 1;
	return 0;
}

static const char *suggest(const char *key, const char *const *known, const char *const *also)
{
	for (size_t i = 0; known && known[i]; i++)
		if (edit_distance(key, known[i]) <= 1)
			return known[i];
	for (size_t i = 0; also && also[i]; i++)
		if (edit_distance(key, also[i]) <= 1)
			return also[i];
	return NULL;
}

/* Warns about (or, when fatal, fails on) keys of map outside known. */
static int check_keys(cfg_ctx *c, const dtk_value *map, const char *keypath,
		      const char *const *known, const char *const *also, int fatal)
{
	if (!map || map->type != DTK_V_MAP || !known)
		return 0;
	for (size_t i = 0; i < map->u.map.n; i++) {
		const dtk_value *k = map->u.map.items[i].key;
		const char *ks = dtk_value_cstr(k);
		if (ks && key_known(ks, known, also))
			continue;
		char shown[128];
		snprintf(shown, sizeof(shown), "%s", ks ? ks : dtk_value_type_name(k));
		const char *near = ks ? suggest(ks, known, also) : NULL;
		char hint[160] = "";
		if (near)
			snprintf(hint, sizeof(hint), " (did you mean '%s'?)", near);
		if (fatal)
			return fail_at(c, k, keypath, "unknown key '%s'%s", shown, hint);
		warn(c, "%s:%u:%u: %s%s%s: unknown key, ignored%s", c->path, k->line, k->col,
		     keypath, *keypath ? "." : "", shown, hint);
	}
	return 0;
}

static int get_string(cfg_ctx *c, const dtk_value *map, const char *key, const char *keypath,
		      int required, const char **out)
{
	const dtk_value *v = dtk_value_map_get(map, key);
	*out = NULL;
	if (!v || v->type == DTK_V_NULL) {
		if (required)
			return fail_at(c, map, keypath, "required key '%s' is missing", key);
		return 0;
	}
	if (v->type != DTK_V_STR)
		return fail_at(c, v, keypath, "'%s' must be a string, got %s", key,
			       dtk_value_type_name(v));
	*out = v->u.str.s;
	return 0;
}

static int get_bool(cfg_ctx *c, const dtk_value *map, const char *key, const char *keypath,
		    int dflt, int *out)
{
	const dtk_value *v = dtk_value_map_get(map, key);
	*out = dflt;
	if (!v || v->type == DTK_V_NULL)
		return 0;
	if (v->type != DTK_V_BOOL)
		return fail_at(c, v, keypath, "'%s' must be true or false, got %s", key,
			       dtk_value_type_name(v));
	*out = v->u.b;
	return 0;
}

static int get_number(cfg_ctx *c, const dtk_value *map, const char *key, const char *keypath,
		      double dflt, double *out, int *present)
{
	const dtk_value *v = dtk_value_map_get(map, key);
	*out = dflt;
	if (present)
		*present = 0;
	if (!v || v->type == DTK_V_NULL)
		return 0;
	if ((v->type != DTK_V_INT && v->type != DTK_V_FLOAT) || !dtk_value_number(v, out))
		return fail_at(c, v, keypath, "'%s' must be a number, got %s", key,
			       dtk_value_type_name(v));
	if (!isfinite(*out))
		return fail_at(c, v, keypath, "'%s' must be finite", key);
	if (present)
		*present = 1;
	return 0;
}

static int get_int(cfg_ctx *c, const dtk_value *map, const char *key, const char *keypath,
		   int64_t dflt, int64_t min, int64_t *out)
{
	const dtk_value *v = dtk_value_map_get(map, key);
	*out = dflt;
	if (!v || v->type == DTK_V_NULL)
		return 0;
	if (v->type != DTK_V_INT)
		return fail_at(c, v, keypath, "'%s' must be an integer, got %s", key,
			       dtk_value_type_name(v));
	if (v->u.i < min)
		return fail_at(c, v, keypath, "'%s' must be at least %lld, got %lld", key,
			       (long long)min, (long long)v->u.i);
	*out = v->u.i;
	return 0;
}

static int get_interval(cfg_ctx *c, const dtk_value *map, const char *key, const char *keypath,
			const char *dflt, int64_t *out, const char **text)
{
	const dtk_value *v = dtk_value_map_get(map, key);
	char err[512];
	if (!v || v->type == DTK_V_NULL) {
		if (text)
			*text = dflt;
		return dtk_interval_parse(dflt, out, err, sizeof(err));
	}
	if (v->type != DTK_V_STR)
		return fail_at(c, v, keypath,
			       "'%s' must be a duration like \"10 minutes\" or \"1h\", got %s", key,
			       dtk_value_type_name(v));
	if (dtk_interval_parse(v->u.str.s, out, err, sizeof(err)) != 0)
		return fail_at(c, v, keypath, "%s: %s", key, err);
	if (text)
		*text = v->u.str.s;
	return 0;
}

static int get_time(cfg_ctx *c, const dtk_value *map, const char *key, const char *keypath,
		    int *has, int64_t *out)
{
	const dtk_value *v = dtk_value_map_get(map, key);
	char err[512];
	*has = 0;
	if (!v || v->type == DTK_V_NULL)
		return 0;
	if (dtk_timeparse_value(v, NULL, out, err, sizeof(err)) != 0)
		return fail_at(c, v, keypath, "%s: %s", key, err);
	*has = 1;
	return 0;
}

static int secret_key(const char *k)
{
	static const char *const parts[] = {"pass", "secret", "token", "key", "auth", "hmac"};
	static const size_t lens[] = {4, 6, 5, 3, 4, 4};
	/* one pass over the key (six strcasestr calls cost a parse of the
	 * whole config again) */
	for (const char *p = k; *p; p++) {
		char c = (char)tolower((unsigned char)*p);
		for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
			if (parts[i][0] == c && strncasecmp(p, parts[i], lens[i]) == 0)
				return 1;
	}
	return 0;
}

/* Values under keys that name secrets are masked wherever they appear. */
static void collect_key_secrets(dtk_value *secrets, const dtk_value *v)
{
	if (v->type == DTK_V_LIST) {
		for (size_t i = 0; i < v->u.list.n; i++)
			collect_key_secrets(secrets, v->u.list.items[i]);
	} else if (v->type == DTK_V_MAP) {
		for (size_t i = 0; i < v->u.map.n; i++) {
			const char *k = dtk_value_cstr(v->u.map.items[i].key);
			const dtk_value *val = v->u.map.items[i].val;
			if (k && secret_key(k) && val->type == DTK_V_STR && val->u.str.len >= 1 &&
			    strcmp(k, "value_column") != 0 && strcmp(k, "limit_key") != 0) {
				dtk_value *s = dtk_value_strn(val->u.str.s, val->u.str.len);
				if (!s || dtk_value_list_push(secrets, s) != 0)
					dtk_value_free(&s);
			} else {
				collect_key_secrets(secrets, val);
			}
		}
	}
}

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int parse_tags(cfg_ctx *c, const dtk_value *root)
{
	const dtk_value *tags = dtk_value_map_get(root, "tags");
	if (!tags || tags->type == DTK_V_NULL)
		return 0;
	if (tags->type != DTK_V_LIST)
		return fail_at(c, tags, "tags", "must be a list of strings, got %s",
			       dtk_value_type_name(tags));
	c->cfg->tags = calloc(tags->u.list.n + 1, sizeof(char *));
	if (!c->cfg->tags)
		return fail_at(c, tags, "tags", "out of memory");
	for (size_t i = 0; i < tags->u.list.n; i++) {
		const dtk_value *t = tags->u.list.items[i];
		char kp[32];
		snprintf(kp, sizeof(kp), "tags[%zu]", i);
		if (t->type != DTK_V_STR)
			return fail_at(c, t, kp, "tags must be strings, got %s",
				       dtk_value_type_name(t));
		if (dtk_env_has_placeholder(t->u.str.s))
			return fail_at(c, t, kp, "environment variable in a tag is not set");
		c->cfg->tags[c->cfg->ntags++] = xstrdup(t->u.str.s);
	}
	return 0;
}

static int valid_name(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++) {
		char ch = *s;
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
			return 0;
	}
	return 1;
}

static int parse_schedule(cfg_ctx *c, const dtk_value *root)
{
	dtk_config *cfg = c->cfg;
	const dtk_value *s = dtk_value_map_get(root, "schedule");
	const char *text = NULL;
	if (s && s->type != DTK_V_MAP && s->type != DTK_V_NULL)
		return fail_at(c, s, "schedule", "must be a mapping");
	if (s && s->type == DTK_V_MAP) {
		check_keys(c, s, "schedule", schedule_keys, NULL, 0);
		for (size_t i = 0; i < s->u.map.n; i++) {
			const dtk_value *v = s->u.map.items[i].val;
			if (v->type == DTK_V_STR && dtk_env_has_placeholder(v->u.str.s))
				return fail_at(c, v, "schedule",
					       "an environment variable here is not set (schedule "
					       "values must resolve when selecting configs)");
		}
	}
	if (get_interval(c, s, "interval", "schedule", DEFAULT_INTERVAL, &cfg->schedule.interval,
			 &text) != 0)
		return -1;
	if (cfg->schedule.interval <= 0)
		return fail_at(c, dtk_value_map_get(s, "interval"), "schedule",
			       "interval must be positive");
	cfg->schedule.interval_text = xstrdup(text);
	int64_t dflt_timeout = cfg->schedule.interval < 60 ? 60 : cfg->schedule.interval;
	if (dtk_value_map_get(s, "timeout")) {
		if (get_interval(c, s, "timeout", "schedule", DEFAULT_INTERVAL,
				 &cfg->schedule.timeout, NULL) != 0)
			return -1;
	} else {
		cfg->schedule.timeout = dflt_timeout;
	}
	if (dtk_value_map_get(s, "delay")) {
		if (get_interval(c, s, "delay", "schedule", DEFAULT_INTERVAL, &cfg->schedule.delay,
				 NULL) != 0)
			return -1;
	}
	if (get_int(c, s, "batch_load_days", "schedule", 30, 1, &cfg->schedule.batch_load_days) !=
	    0)
		return -1;
	if (get_time(c, s, "start_time", "schedule", &cfg->schedule.has_start,
		     &cfg->schedule.start_time) != 0 ||
	    get_time(c, s, "end_time", "schedule", &cfg->schedule.has_end,
		     &cfg->schedule.end_time) != 0)
		return -1;
	return 0;
}

/* Merges profile (if any) and explicit params into a new map: profile
 * values first, explicit params override. *type gets the explicit type,
 * else the profile's. */
static int merge_profile(cfg_ctx *c, const dtk_value *block, const char *keypath,
			 dtk_value **params_out, const char **type_out, dtk_value **profile_keep)
{
	const char *profile_name = NULL;
	const dtk_value *params = dtk_value_map_get(block, "params");
	dtk_value *merged = NULL;
	*type_out = NULL;
	if (get_string(c, block, "type", keypath, 0, type_out) != 0 ||
	    get_string(c, block, "profile", keypath, 0, &profile_name) != 0)
		return -1;
	if (params && params->type != DTK_V_MAP && params->type != DTK_V_NULL)
		return fail_at(c, params, keypath, "'params' must be a mapping");
	if (profile_name) {
		char where[1024], err[1024];
		dtk_value *prof = NULL;
		int rc = dtk_profiles_lookup(c->opt ? c->opt->profiles_path : NULL, profile_name,
					     &c->env, &prof, where, sizeof(where), err, sizeof(err));
		if (rc != 1)
			return fail_at(c, dtk_value_map_get(block, "profile"), keypath, "%s", err);
		*profile_keep = NULL;
		if (!*type_out && dtk_value_cstr(dtk_value_map_get(prof, "type"))) {
			/* the profile's type string dies with its key: keep a copy */
			*profile_keep = dtk_value_str(dtk_value_cstr(dtk_value_map_get(prof, "type")));
			if (!*profile_keep) {
				dtk_value_free(&prof);
				return fail_at(c, block, keypath, "out of memory");
			}
			*type_out = dtk_value_cstr(*profile_keep);
		}
		dtk_value_map_del(prof, "type");
		merged = prof;
	} else {
		merged = dtk_value_map();
	}
	if (!merged)
		return fail_at(c, block, keypath, "out of memory");
	if (params && params->type == DTK_V_MAP) {
		for (size_t i = 0; i < params->u.map.n; i++) {
			dtk_value *k = dtk_value_copy(params->u.map.items[i].key);
			dtk_value *v = dtk_value_copy(params->u.map.items[i].val);
			if (!k || !v || dtk_value_map_set_v(merged, k, v) != 0) {
				dtk_value_free(&k);
				dtk_value_free(&v);
				dtk_value_free(&merged);
				return fail_at(c, block, keypath, "out of memory");
			}
		}
	}
	*params_out = merged;
	return 0;
}

/* Strips "KEY: " from a component's message and points at that key. */
static int fail_component(cfg_ctx *c, const dtk_value *block, const dtk_value *params,
			  const char *keypath, const char *err)
{
	const char *colon = strstr(err, ": ");
	char key[128] = "";
	if (colon && (size_t)(colon - err) < sizeof(key) && !memchr(err, ' ', (size_t)(colon - err))) {
		memcpy(key, err, (size_t)(colon - err));
		key[colon - err] = '\0';
		const dtk_value *node = dtk_value_map_get(params, key);
		char kp[512];
		snprintf(kp, sizeof(kp), "%s.params.%s", keypath, key);
		return fail_at(c, node ? node : block, kp, "%s", colon + 2);
	}
	return fail_at(c, block, keypath, "%s", err);
}

static int parse_collector(cfg_ctx *c, const dtk_value *root)
{
	dtk_config *cfg = c->cfg;
	const dtk_value *block = dtk_value_map_get(root, "collector");
	const char *type = NULL;
	dtk_value *keep = NULL;
	char err[1024];
	int rc = -1;
	if (!block)
		return fail_at(c, root, "collector", "required key 'collector' is missing");
	if (block->type != DTK_V_MAP)
		return fail_at(c, block, "collector", "must be a mapping");
	check_keys(c, block, "collector", collector_keys, NULL, 0);
	if (merge_profile(c, block, "collector", &cfg->collector.params, &type, &keep) != 0)
		return -1;
	if (!type) {
		fail_at(c, block, "collector", "required key 'type' is missing (or give a profile)");
		goto out;
	}
	cfg->collector.impl = dtk_collector_find(type);
	if (!cfg->collector.impl) {
		dtk_buf names;
		dtk_buf_init(&names, 1024);
		for (const dtk_collector_type *const *t = dtk_collector_types(); *t; t++)
			dtk_buf_printf(&names, "%s%s", names.len ? ", " : "", (*t)->name);
		fail_at(c, dtk_value_map_get(block, "type"), "collector.type",
			"unknown collector type '%s' (known: %s)", type, dtk_buf_str(&names));
		dtk_buf_free(&names);
		goto out;
	}
	/* column keys may sit at the collector level (DetectK) */
	static const char *const column_keys[] = {"timestamp_column", "value_column",
						  "context_columns"};
	for (size_t i = 0; i < 3; i++) {
		const dtk_value *v = dtk_value_map_get(block, column_keys[i]);
		if (v && !dtk_value_map_get(cfg->collector.params, column_keys[i])) {
			dtk_value *copy = dtk_value_copy(v);
			if (!copy || dtk_value_map_set(cfg->collector.params, column_keys[i], copy)) {
				dtk_value_free(&copy);
				goto out;
			}
		}
	}
	const dtk_value *ctx = dtk_value_map_get(cfg->collector.params, "context_columns");
	if (ctx && ctx->type != DTK_V_NULL) {
		if (ctx->type != DTK_V_LIST) {
			fail_at(c, ctx, "collector.params.context_columns", "must be a list of names");
			goto out;
		}
		cfg->collector.context_columns = calloc(ctx->u.list.n + 1, sizeof(char *));
		for (size_t i = 0; cfg->collector.context_columns && i < ctx->u.list.n; i++) {
			const char *s = dtk_value_cstr(ctx->u.list.items[i]);
			if (!s) {
				fail_at(c, ctx->u.list.items[i], "collector.params.context_columns",
					"column names must be strings");
				goto out;
			}
			cfg->collector.context_columns[cfg->collector.n_context_columns++] =
				xstrdup(s);
		}
	}
	check_keys(c, cfg->collector.params, "collector.params", cfg->collector.impl->known_params,
		   (const char *const[]){"max_connections", "limit_key", "timestamp_column",
					 "value_column", "context_columns", NULL},
		   0);
	if (cfg->collector.impl->compile(cfg->collector.params, cfg->warnings,
					 &cfg->collector.compiled, err, sizeof(err)) != 0) {
		fail_component(c, block, cfg->collector.params, "collector", err);
		goto out;
	}
	rc = 0;
out:
	dtk_value_free(&keep);
	return rc;
}

static int parse_detectors(cfg_ctx *c, const dtk_value *root)
{
	dtk_config *cfg = c->cfg;
	const dtk_value *one = dtk_value_map_get(root, "detector");
	const dtk_value *many = dtk_value_map_get(root, "detectors");
	const dtk_value *const *items;
	size_t n;
	if (many && many->type != DTK_V_NULL) {
		if (many->type != DTK_V_LIST || many->u.list.n == 0)
			return fail_at(c, many, "detectors", "must be a non-empty list");
		items = (const dtk_value *const *)many->u.list.items;
		n = many->u.list.n;
		if (one)
			warn(c, "%s: both 'detector' and 'detectors' given; 'detectors' is used",
			     c->path);
	} else if (one && one->type != DTK_V_NULL) {
		items = &one;
		n = 1;
	} else {
		return fail_at(c, root, "detectors", "required: 'detector' or 'detectors'");
	}
	cfg->detectors = calloc(n, sizeof(*cfg->detectors));
	if (!cfg->detectors)
		return fail_at(c, root, "detectors", "out of memory");
	dtk_detector_env denv = {
		.context_columns = (const char *const *)cfg->collector.context_columns,
		.n_context_columns = cfg->collector.n_context_columns,
		.warnings = cfg->warnings,
	};
	for (size_t i = 0; i < n; i++) {
		const dtk_value *d = items[i];
		dtk_detector_cfg *dc = &cfg->detectors[i];
		char kp[64], err[1024];
		if (many && many->type != DTK_V_NULL)
			snprintf(kp, sizeof(kp), "detectors[%zu]", i);
		else
			snprintf(kp, sizeof(kp), "detector");
		if (d->type != DTK_V_MAP)
			return fail_at(c, d, kp, "must be a mapping with 'type' and 'params'");
		check_keys(c, d, kp, detector_keys, NULL, 0);
		const char *type = NULL;
		if (get_string(c, d, "type", kp, 1, &type) != 0)
			return -1;
		dc->impl = dtk_detector_find(type);
		if (!dc->impl) {
			dtk_buf names;
			dtk_buf_init(&names, 1024);
			for (const dtk_detector_type *const *t = dtk_detector_types(); *t; t++)
				dtk_buf_printf(&names, "%s%s", names.len ? ", " : "", (*t)->name);
			fail_at(c, dtk_value_map_get(d, "type"), kp,
				"unknown detector type '%s' (known: %s)", type, dtk_buf_str(&names));
			dtk_buf_free(&names);
			return -1;
		}
		cfg->ndetectors++;
		const dtk_value *params = dtk_value_map_get(d, "params");
		static const dtk_value empty = {.type = DTK_V_MAP};
		if (!params || params->type == DTK_V_NULL)
			params = &empty;
		if (params->type != DTK_V_MAP)
			return fail_at(c, params, kp, "'params' must be a mapping");
		dc->params = params;
		const dtk_value *id = dtk_value_map_get(d, "id");
		if (id && id->type != DTK_V_NULL) {
			if (id->type != DTK_V_STR || !id->u.str.len ||
			    id->u.str.len >= sizeof(dc->id))
				return fail_at(c, id, kp, "'id' must be a non-empty string");
			snprintf(dc->id, sizeof(dc->id), "%s", id->u.str.s);
		} else {
			char gen[9];
			dtk_detector_id(type, params, gen);
			snprintf(dc->id, sizeof(dc->id), "%s", gen);
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(cfg->detectors[j].id, dc->id) == 0)
				return fail_at(c, d, kp,
					       "detector id '%s' is used twice in this metric; give "
					       "each detector a distinct 'id'",
					       dc->id);
		char pkp[80];
		snprintf(pkp, sizeof(pkp), "%s.params", kp);
		check_keys(c, params, pkp, dc->impl->known_params, NULL, 0);
		if (dc->impl->compile(params, &denv, &dc->compiled, err, sizeof(err)) != 0)
			return fail_component(c, d, params, kp, err);
		dc->impl->window(dc->compiled, &dc->window_seconds, &dc->window_points);
	}
	return 0;
}

static int parse_conditions(cfg_ctx *c, const dtk_value *cond, const dtk_value *params,
			    const char *kp, dtk_conditions *out)
{
	char ckp[96];
	snprintf(ckp, sizeof(ckp), "%s.conditions", kp);
	memset(out, 0, sizeof(*out));
	out->consecutive_anomalies = 1;
	out->consecutive_errors = 1;
	out->cooldown_minutes = 60;
	double cd;
	int present;
	if (get_number(c, params, "cooldown_minutes", kp, 60, &cd, &present) != 0)
		return -1;
	out->cooldown_minutes = cd;
	if (!cond || cond->type == DTK_V_NULL)
		return 0;
	if (cond->type != DTK_V_MAP)
		return fail_at(c, cond, ckp, "must be a mapping");
	if (check_keys(c, cond, ckp, condition_keys, NULL, 1) != 0)
		return -1;
	const dtk_value *req = dtk_value_map_get(cond, "require");
	if (req && req->type == DTK_V_STR && strcmp(req->u.str.s, "any") == 0) {
		out->require = DTK_REQUIRE_ANY;
	} else if (req && req->type == DTK_V_STR && strcmp(req->u.str.s, "all") == 0) {
		out->require = DTK_REQUIRE_ALL;
	} else if (req && req->type == DTK_V_INT && req->u.i >= 1 && req->u.i <= 1000) {
		out->require = DTK_REQUIRE_N;
		out->require_n = (int)req->u.i;
	} else if (req && req->type != DTK_V_NULL) {
		return fail_at(c, req, ckp, "'require' must be any, all or a positive number");
	}
	int64_t n;
	if (get_int(c, cond, "consecutive_anomalies", ckp, 1, 1, &n) != 0)
		return -1;
	out->consecutive_anomalies = (int)(n > 10000 ? 10000 : n);
	if (get_int(c, cond, "consecutive_errors", ckp, 1, 1, &n) != 0)
		return -1;
	out->consecutive_errors = (int)(n > 10000 ? 10000 : n);
	const char *dir = NULL;
	if (get_string(c, cond, "direction", ckp, 0, &dir) != 0)
		return -1;
	if (!dir || strcmp(dir, "both") == 0)
		out->direction = DTK_DIR_BOTH;
	else if (strcmp(dir, "up") == 0)
		out->direction = DTK_DIR_UP;
	else if (strcmp(dir, "down") == 0)
		out->direction = DTK_DIR_DOWN;
	else
		return fail_at(c, dtk_value_map_get(cond, "direction"), ckp,
			       "'direction' must be up, down or both, got '%s'", dir);
	if (get_number(c, cond, "min_deviation_percent", ckp, 0, &out->min_deviation_percent,
		       &out->has_min_deviation) != 0)
		return -1;
	if (dtk_value_map_get(cond, "cooldown_minutes") &&
	    get_number(c, cond, "cooldown_minutes", ckp, 60, &out->cooldown_minutes, NULL) != 0)
		return -1;
	if (out->cooldown_minutes < 0)
		return fail_at(c, dtk_value_map_get(cond, "cooldown_minutes"), ckp,
			       "'cooldown_minutes' must not be negative");
	if (get_bool(c, cond, "notify_recovery", ckp, 0, &out->notify_recovery) != 0 ||
	    get_bool(c, cond, "notify_on_error", ckp, 0, &out->notify_on_error) != 0)
		return -1;
	return 0;
}

static int parse_alerters(cfg_ctx *c, const dtk_value *root)
{
	dtk_config *cfg = c->cfg;
	const dtk_value *one = dtk_value_map_get(root, "alerter");
	const dtk_value *many = dtk_value_map_get(root, "alerters");
	const dtk_value *const *items = NULL;
	size_t n = 0;
	int is_list = 0;
	if (many && many->type != DTK_V_NULL) {
		if (many->type != DTK_V_LIST)
			return fail_at(c, many, "alerters", "must be a list");
		items = (const dtk_value *const *)many->u.list.items;
		n = many->u.list.n;
		is_list = 1;
	} else if (one && one->type != DTK_V_NULL) {
		items = &one;
		n = 1;
	}
	if (!n)
		return 0;
	cfg->alerters = calloc(n, sizeof(*cfg->alerters));
	if (!cfg->alerters)
		return fail_at(c, root, "alerters", "out of memory");
	for (size_t i = 0; i < n; i++) {
		const dtk_value *a = items[i];
		dtk_alerter_cfg *ac = &cfg->alerters[i];
		char kp[64], err[1024];
		snprintf(kp, sizeof(kp), is_list ? "alerters[%zu]" : "alerter", i);
		if (a->type != DTK_V_MAP)
			return fail_at(c, a, kp, "must be a mapping with 'type' and 'params'");
		check_keys(c, a, kp, alerter_keys, NULL, 0);
		cfg->nalerters++;
		const char *type = NULL;
		dtk_value *keep = NULL;
		if (merge_profile(c, a, kp, &ac->params, &type, &keep) != 0)
			return -1;
		if (!type) {
			dtk_value_free(&keep);
			return fail_at(c, a, kp, "required key 'type' is missing");
		}
		ac->impl = dtk_alerter_find(type);
		dtk_value_free(&keep);
		if (!ac->impl) {
			dtk_buf names;
			dtk_buf_init(&names, 1024);
			for (const dtk_alerter_type *const *t = dtk_alerter_types(); *t; t++)
				dtk_buf_printf(&names, "%s%s", names.len ? ", " : "", (*t)->name);
			fail_at(c, dtk_value_map_get(a, "type"), kp,
				"unknown alerter type '%s' (known: %s)", type ? type : "",
				dtk_buf_str(&names));
			dtk_buf_free(&names);
			return -1;
		}
		const dtk_value *id = dtk_value_map_get(a, "id");
		if (id && id->type == DTK_V_STR)
			snprintf(ac->id, sizeof(ac->id), "%s", id->u.str.s);
		else if (id && id->type == DTK_V_INT)
			snprintf(ac->id, sizeof(ac->id), "%lld", (long long)id->u.i);
		else
			snprintf(ac->id, sizeof(ac->id), "%zu", i);
		if (get_bool(c, a, "enabled", kp, 1, &ac->enabled) != 0)
			return -1;
		if (parse_conditions(c, dtk_value_map_get(a, "conditions"), ac->params, kp,
				     &ac->cond) != 0)
			return -1;
		char pkp[80];
		snprintf(pkp, sizeof(pkp), "%s.params", kp);
		check_keys(c, ac->params, pkp, ac->impl->known_params, alerter_common_params, 0);
		const dtk_value *tmpl = dtk_value_map_get(ac->params, "message_template");
		if (tmpl && tmpl->type != DTK_V_NULL) {
			char tkp[100];
			snprintf(tkp, sizeof(tkp), "%s.message_template", pkp);
			if (tmpl->type != DTK_V_STR)
				return fail_at(c, tmpl, tkp, "must be a string");
			ac->tmpl = dtk_template_compile(tmpl->u.str.s, err, sizeof(err));
			if (!ac->tmpl)
				return fail_at(c, tmpl, tkp, "template %s", err);
		}
		if (ac->impl->compile(ac->params, cfg->warnings, &ac->compiled, err, sizeof(err)) !=
		    0)
			return fail_component(c, a, ac->params, kp, err);
	}
	return 0;
}

static int is_database_collector(const char *name)
{
	static const char *const db[] = {"clickhouse", "sql", "postgres", "mysql", "sqlite", NULL};
	for (size_t i = 0; db[i]; i++)
		if (strcmp(name, db[i]) == 0)
			return 1;
	return 0;
}

static int parse_storage(cfg_ctx *c, const dtk_value *root)
{
	dtk_config *cfg = c->cfg;
	const dtk_value *block = dtk_value_map_get(root, "storage");
	const char *type = NULL;
	dtk_value *keep = NULL;
	cfg->storage.enabled = 1;
	if (block && block->type != DTK_V_MAP && block->type != DTK_V_NULL)
		return fail_at(c, block, "storage", "must be a mapping");
	if (!block || block->type == DTK_V_NULL) {
		cfg->storage.params = dtk_value_map();
	} else {
		check_keys(c, block, "storage", storage_keys, NULL, 0);
		if (get_bool(c, block, "enabled", "storage", 1, &cfg->storage.enabled) != 0)
			return -1;
		if (cfg->storage.enabled &&
		    merge_profile(c, block, "storage", &cfg->storage.params, &type, &keep) != 0)
			return -1;
		if (!cfg->storage.enabled)
			cfg->storage.params = dtk_value_map();
	}
	if (!cfg->storage.params)
		return fail_at(c, block, "storage", "out of memory");
	if (type) {
		cfg->storage.type = xstrdup(type);
	} else if (cfg->storage.enabled && cfg->collector.impl &&
		   is_database_collector(cfg->collector.impl->name) &&
		   !dtk_value_map_get(cfg->storage.params, "connection_string") &&
		   !dtk_value_map_get(cfg->storage.params, "path")) {
		/* no type: a database collector stores next to its source */
		cfg->storage.type = xstrdup(cfg->collector.impl->name);
		const dtk_value *cp = cfg->collector.params;
		for (size_t i = 0; i < cp->u.map.n; i++) {
			const char *k = dtk_value_cstr(cp->u.map.items[i].key);
			if (!k || strcmp(k, "query") == 0 ||
			    dtk_value_map_get(cfg->storage.params, k))
				continue;
			dtk_value *v = dtk_value_copy(cp->u.map.items[i].val);
			if (!v || dtk_value_map_set(cfg->storage.params, k, v) != 0)
				dtk_value_free(&v);
		}
	}
	dtk_value_free(&keep);
	const dtk_value *params = cfg->storage.params;
	if (block && block->type == DTK_V_MAP)
		check_keys(c, dtk_value_map_get(block, "params"), "storage.params",
			   storage_param_keys, NULL, 0);
	int64_t days;
	if (get_int(c, block, "retention_days", "storage", 0, 1, &days) != 0)
		return -1;
	cfg->storage.datapoint_retention_days = days;
	cfg->storage.detection_retention_days = days;
	if (get_int(c, params, "datapoints_retention_days", "storage.params", days, 1, &days) != 0)
		return -1;
	cfg->storage.datapoint_retention_days = days;
	if (get_int(c, params, "detections_retention_days", "storage.params",
		    cfg->storage.detection_retention_days, 1, &days) != 0)
		return -1;
	cfg->storage.detection_retention_days = days;
	return get_bool(c, params, "save_detections", "storage.params", 0,
			&cfg->storage.save_detections);
}

int dtk_config_parse(const char *text, size_t len, const char *path,
		     const dtk_config_options *opt, dtk_config **out, char *errstr,
		     size_t errstr_size)
{
	static const dtk_config_options defaults = {.env_mode = DTK_ENV_STRICT};
	dtk_config *cfg = calloc(1, sizeof(*cfg));
	cfg_ctx c = {.path = path, .opt = opt ? opt : &defaults, .cfg = cfg, .errstr = errstr,
		     .errstr_size = errstr_size};
	char err[1024], base[4096];
	int rc = -1;
	*out = NULL;
	if (!cfg) {
		snprintf(errstr, errstr_size, "%s: out of memory", path);
		return -1;
	}
	cfg->warnings = dtk_value_list();
	cfg->secrets = dtk_value_list();
	cfg->path = xstrdup(path);
	dtk_dirname(path, base, sizeof(base));
	cfg->base_dir = xstrdup(base);
	c.env.deferred = c.opt->env_mode == DTK_ENV_DEFERRED;
	c.env.allow = c.opt->allow_env;
	c.env.n_allow = c.opt->n_allow_env;
	c.env.secrets = cfg->secrets;

	dtk_value *dups = dtk_value_list();
	cfg->root = dtk_yaml_load(text, len, path, dups, errstr, errstr_size);
	for (size_t i = 0; dups && i < dups->u.list.n; i++)
		warn(&c, "%s: %s", path, dups->u.list.items[i]->u.str.s);
	dtk_value_free(&dups);
	if (!cfg->root)
		goto out;
	dtk_value *root = cfg->root;
	if (dtk_profiles_is_profiles_doc(root)) {
		snprintf(errstr, errstr_size,
			 "%s: this is a profiles file, not a metric (pass it with --profiles FILE "
			 "or DETECTK_PROFILES_PATH)",
			 path);
		goto out;
	}
	if (root->type != DTK_V_MAP) {
		fail_at(&c, root, NULL, "a metric config must be a mapping with 'name', "
					"'collector' and 'detector' keys");
		goto out;
	}
	if (dtk_env_expand(root, "", &c.env, err, sizeof(err)) != 0) {
		snprintf(errstr, errstr_size, "%s:%s", path, err);
		goto out;
	}
	check_keys(&c, root, "", top_keys, NULL, 0);
	collect_key_secrets(cfg->secrets, root);

	const char *name = NULL, *desc = NULL, *tzname = NULL;
	if (get_string(&c, root, "name", "name", 1, &name) != 0)
		goto out;
	if (!valid_name(name)) {
		fail_at(&c, dtk_value_map_get(root, "name"), "name",
			"'%s' is not a valid metric name (letters, digits, '_' and '-' only)", name);
		goto out;
	}
	cfg->name = xstrdup(name);
	if (get_string(&c, root, "description", "description", 0, &desc) != 0)
		goto out;
	cfg->description = xstrdup(desc);
	if (parse_tags(&c, root) != 0 || parse_schedule(&c, root) != 0)
		goto out;
	const dtk_value *meta = dtk_value_map_get(root, "metadata");
	if (meta && meta->type != DTK_V_MAP && meta->type != DTK_V_NULL) {
		fail_at(&c, meta, "metadata", "must be a mapping");
		goto out;
	}
	cfg->metadata = meta && meta->type == DTK_V_MAP ? meta : NULL;
	if (get_string(&c, root, "timezone", "timezone", 0, &tzname) != 0)
		goto out;
	cfg->timezone = xstrdup(tzname ? tzname : "UTC");
	cfg->tz = dtk_tz_load(cfg->timezone, err, sizeof(err));
	if (!cfg->tz) {
		fail_at(&c, dtk_value_map_get(root, "timezone"), "timezone", "%s", err);
		goto out;
	}
	if (c.opt->env_mode == DTK_ENV_STRICT) {
		if (parse_collector(&c, root) != 0 || parse_detectors(&c, root) != 0 ||
		    parse_alerters(&c, root) != 0 || parse_storage(&c, root) != 0)
			goto out;
		cfg->built = 1;
	}
	*out = cfg;
	cfg = NULL;
	rc = 0;
out:
	dtk_config_free(&cfg);
	return rc;
}

int dtk_config_load(const char *path, const dtk_config_options *opt, dtk_config **out,
		    char *errstr, size_t errstr_size)
{
	char *text = NULL;
	size_t len = 0;
	*out = NULL;
	if (dtk_file_read(path, DTK_FILE_MAX_CONFIG, &text, &len, errstr, errstr_size) != 0)
		return -1;
	int rc = dtk_config_parse(text, len, path, opt, out, errstr, errstr_size);
	free(text);
	return rc;
}

void dtk_config_free(dtk_config **pcfg)
{
	if (!pcfg || !*pcfg)
		return;
	dtk_config *cfg = *pcfg;
	free(cfg->path);
	free(cfg->base_dir);
	free(cfg->name);
	free(cfg->description);
	for (size_t i = 0; i < cfg->ntags; i++)
		free(cfg->tags[i]);
	free(cfg->tags);
	free(cfg->timezone);
	dtk_tz_free(&cfg->tz);
	if (cfg->collector.impl && cfg->collector.compiled)
		cfg->collector.impl->destroy(cfg->collector.compiled);
	dtk_value_free(&cfg->collector.params);
	for (size_t i = 0; i < cfg->collector.n_context_columns; i++)
		free(cfg->collector.context_columns[i]);
	free(cfg->collector.context_columns);
	for (size_t i = 0; i < cfg->ndetectors; i++)
		if (cfg->detectors[i].compiled)
			cfg->detectors[i].impl->destroy(cfg->detectors[i].compiled);
	free(cfg->detectors);
	for (size_t i = 0; i < cfg->nalerters; i++) {
		dtk_alerter_cfg *a = &cfg->alerters[i];
		if (a->compiled)
			a->impl->destroy(a->compiled);
		dtk_value_free(&a->params);
		dtk_template_free(&a->tmpl);
	}
	free(cfg->alerters);
	free(cfg->storage.type);
	dtk_value_free(&cfg->storage.params);
	free(cfg->schedule.interval_text);
	dtk_value_free(&cfg->warnings);
	dtk_value_free(&cfg->secrets);
	dtk_value_free(&cfg->root);
	free(cfg);
	*pcfg = NULL;
}

int dtk_config_has_tag(const dtk_config *cfg, const char *tag)
{
	for (size_t i = 0; i < cfg->ntags; i++)
		if (strcmp(cfg->tags[i], tag) == 0)
			return 1;
	return 0;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t dtk_config_align(const dtk_config *cfg, int64_t t)
{
	int64_t iv = cfg->schedule.interval;
	if (iv >= 86400 && cfg->tz) {
		int64_t local = t + dtk_tz_offset(cfg->tz, t);
		int64_t aligned = ALIGN_ORIGIN + floor_div(local - ALIGN_ORIGIN, iv) * iv;
		return dtk_tz_to_utc(cfg->tz, aligned);
	}
	return ALIGN_ORIGIN + floor_div(t - ALIGN_ORIGIN, iv) * iv;
}

void dtk_config_mask(const dtk_config *cfg, const char *s, char *out, size_t outsz)
{
	dtk_buf b;
	dtk_buf_init(&b, outsz ? outsz - 1 : 0);
	for (size_t i = 0; s[i];) {
		/* URL user-info (user:pass@ after the scheme) becomes ***@ */
		if (s[i] == ':' && s[i + 1] == '/' && s[i + 2] == '/') {
			size_t j = i + 3;
			while (s[j] && s[j] != '@' && s[j] != '/' && s[j] != ' ' && s[j] != '\n')
				j++;
			if (s[j] == '@') {
				dtk_buf_adds(&b, "://***@");
				i = j + 1;
				continue;
			}
		}
		size_t best = 0;
		for (size_t k = 0; cfg && cfg->secrets && k < cfg->secrets->u.list.n; k++) {
			const dtk_value *sec = cfg->secrets->u.list.items[k];
			if (sec->u.str.len > best && strncmp(s + i, sec->u.str.s, sec->u.str.len) == 0)
				best = sec->u.str.len;
		}
		if (best) {
			dtk_buf_adds(&b, "***");
			i += best;
			continue;
		}
		dtk_buf_addc(&b, s[i++]);
	}
	snprintf(out, outsz, "%s", dtk_buf_str(&b));
	dtk_buf_free(&b);
}
