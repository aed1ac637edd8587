/* The C API for foreign-function callers (capi.h). */
#include "capi.h"

#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "config/config.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/value.h"

static char *emit(const dtk_value *v, char *errstr, size_t errstr_size)
{
	dtk_buf b;
	dtk_buf_init(&b, 0);
	if (dtk_json_emit(&b, v, DTK_JSON_INF_AS_STRING | DTK_JSON_RAW_UTF8) != 0 || b.failed) {
		dtk_buf_free(&b);
		snprintf(errstr, errstr_size, "result too large or out of memory");
		return NULL;
	}
	char *s = dtk_buf_take(&b);
	dtk_buf_free(&b);
	if (!s)
		snprintf(errstr, errstr_size, "out of memory");
	return s;
}

static int check_args(const char *path, char *errstr, size_t errstr_size)
{
	if (errstr && errstr_size)
		errstr[0] = '\0';
	if (!path) {
		snprintf(errstr, errstr_size, "no config path given");
		return -1;
	}
	return 0;
}

char *dtk_check_run_json(const char *path, int64_t t, int has_t, char *errstr,
			 size_t errstr_size)
{
	if (check_args(path, errstr, errstr_size) != 0)
		return NULL;
	dtk_config_options copt = {.env_mode = DTK_ENV_STRICT};
	dtk_config *cfg = NULL;
	if (dtk_config_load(path, &copt, &cfg, errstr, errstr_size) != 0)
		return NULL;
	dtk_check_options opt = {.has_time = has_t ? 1 : 0, .requested_time = t};
	dtk_check_result *res = NULL;
	char *out = NULL;
	if (dtk_check_run(cfg, &opt, NULL, &res) != 0 || !res)
		snprintf(errstr, errstr_size, "out of memory");
	else
		out = emit(res->json, errstr, errstr_size);
	dtk_check_result_free(&res);
	dtk_config_free(&cfg);
	return out;
}

static dtk_value *str_or_null(const char *s)
{
	return s ? dtk_value_str(s) : dtk_value_null();
}

char *dtk_config_info_json(const char *path, int strict, char *errstr, size_t errstr_size)
{
	if (check_args(path, errstr, errstr_size) != 0)
		return NULL;
	dtk_config_options copt = {.env_mode = strict ? DTK_ENV_STRICT : DTK_ENV_DEFERRED};
	dtk_config *cfg = NULL;
	if (dtk_config_load(path, &copt, &cfg, errstr, errstr_size) != 0)
		return NULL;
	dtk_value *m = dtk_value_map();
	dtk_value *tags = dtk_value_list();
	dtk_value *coll = dtk_value_map();
	dtk_value *dets = dtk_value_list();
	dtk_value *sched = dtk_value_map();
	int bad = !m || !tags || !coll || !dets || !sched;
	for (size_t i = 0; !bad && i < cfg->ntags; i++)
		bad |= dtk_value_list_push(tags, dtk_value_str(cfg->tags[i])) != 0;
	/* the type as written, also when components are not built */
	const char *ctype = cfg->collector.impl ? cfg->collector.impl->name : NULL;
	if (!ctype)
		ctype = dtk_value_cstr(dtk_value_path(cfg->root, "collector.type"));
	if (!bad)
		bad |= dtk_value_map_set(coll, "type", str_or_null(ctype)) != 0;
	for (size_t i = 0; !bad && i < cfg->ndetectors; i++) {
		dtk_value *d = dtk_value_map();
		bad |= !d;
		if (!bad) {
			bad |= dtk_value_map_set_str(d, "id", cfg->detectors[i].id) != 0;
			bad |= dtk_value_map_set(d, "type",
						 str_or_null(cfg->detectors[i].impl
								     ? cfg->detectors[i].impl->name
								     : NULL)) != 0;
			bad |= dtk_value_list_push(dets, d) != 0;
		}
	}
	if (!bad) {
		bad |= dtk_value_map_set(sched, "interval",
					 str_or_null(cfg->schedule.interval_text)) != 0;
		bad |= dtk_value_map_set_int(sched, "interval_seconds", cfg->schedule.interval) != 0;
		bad |= dtk_value_map_set_int(sched, "timeout", cfg->schedule.timeout) != 0;
		bad |= dtk_value_map_set_int(sched, "delay", cfg->schedule.delay) != 0;
		bad |= dtk_value_map_set(m, "path", str_or_null(cfg->path)) != 0;
		bad |= dtk_value_map_set(m, "name", str_or_null(cfg->name)) != 0;
		bad |= dtk_value_map_set(m, "description", str_or_null(cfg->description)) != 0;
		bad |= dtk_value_map_set(m, "tags", tags) != 0;
		tags = NULL;
		bad |= dtk_value_map_set(m, "timezone", str_or_null(cfg->timezone)) != 0;
		bad |= dtk_value_map_set(m, "collector", coll) != 0;
		coll = NULL;
		bad |= dtk_value_map_set(m, "detectors", dets) != 0;
		dets = NULL;
		bad |= dtk_value_map_set(m, "schedule", sched) != 0;
		sched = NULL;
		bad |= dtk_value_map_set(m, "warnings", cfg->warnings ? dtk_value_copy(cfg->warnings)
								      : dtk_value_list()) != 0;
	}
	char *out = NULL;
	if (bad)
		snprintf(errstr, errstr_size, "out of memory");
	else
		out = emit(m, errstr, errstr_size);
	dtk_value_free(&tags);
	dtk_value_free(&coll);
	dtk_value_free(&dets);
	dtk_value_free(&sched);
	dtk_value_free(&m);
	dtk_config_free(&cfg);
	return out;
}

void dtk_free(void *p)
{
	free(p);
}
