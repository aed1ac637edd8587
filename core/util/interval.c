#include "util/interval.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/json.h"

#define INTERVAL_FORMS                                                                             \
	"expected \"N unit\" with unit second(s), minute(s), hour(s), day(s) or week(s), or a "   \
	"short form like 30s, 10min, 10m, 1h, 1d, 1w"

static const struct {
	const char *name;
	int64_t seconds;
} interval_units[] = {
	{"s", 1}, {"second", 1},    {"seconds", 1}, {"m", 60},
	{"min", 60},	  {"minute", 60},    {"minutes", 60},  {"h", 3600},    {"hour", 3600},
	{"hours", 3600},  {"d", 86400},	     {"day", 86400},   {"days", 86400}, {"w", 604800},
	{"week", 604800}, {"weeks", 604800},
};

/* The value quoted as JSON, so control bytes and quotes stay readable. */
static void quote_text(const char *text, size_t len, char *out, size_t outsz)
{
	dtk_buf b;
	dtk_buf_init(&b, 200);
	if (dtk_json_emit_str(&b, text, len, DTK_JSON_RAW_UTF8) != 0) {
		dtk_buf_reset(&b);
		dtk_buf_adds(&b, "\"...\"");
	}
	snprintf(out, outsz, "%s", dtk_buf_str(&b));
	dtk_buf_free(&b);
}

int dtk_interval_parse(const char *text, int64_t *seconds, char *errstr, size_t errstr_size)
{
	int rc = -1;
	char quoted[256];
	const char *p = text;
	int64_t n = 0;

	if (!text) {
		snprintf(errstr, errstr_size, "missing interval: " INTERVAL_FORMS);
		goto out;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	if (!isdigit((unsigned char)*p))
		goto bad;
	while (isdigit((unsigned char)*p)) {
		int d = *p - '0';
		if (n > (INT64_MAX - d) / 10)
			goto bad;
		n = n * 10 + d;
		p++;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	const char *unit = p;
	while (isalpha((unsigned char)*p))
		p++;
	size_t unit_len = (size_t)(p - unit);
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '\0' || unit_len == 0)
		goto bad;
	for (size_t i = 0; i < sizeof(interval_units) / sizeof(interval_units[0]); i++) {
		const char *name = interval_units[i].name;
		if (strlen(name) != unit_len || strncasecmp(name, unit, unit_len) != 0)
			continue;
		if (n == 0) {
			quote_text(text, strlen(text), quoted, sizeof(quoted));
			snprintf(errstr, errstr_size, "invalid interval %s: must be greater than zero",
				 quoted);
			goto out;
		}
		if (n > INT64_MAX / interval_units[i].seconds)
			goto bad;
		*seconds = n * interval_units[i].seconds;
		rc = 0;
		goto out;
	}
bad:
	quote_text(text, strlen(text), quoted, sizeof(quoted));
	snprintf(errstr, errstr_size, "invalid interval %s: " INTERVAL_FORMS, quoted);
out:
	return rc;
}

int dtk_window_parse(const dtk_value *v, int64_t *seconds, int64_t *points, char *errstr,
		     size_t errstr_size)
{
	int rc = -1;
	char quoted[256];
	dtk_buf b;

	dtk_buf_init(&b, 200);
	*seconds = 0;
	*points = 0;
	if (v && v->type == DTK_V_INT) {
		if (v->u.i <= 0) {
			snprintf(errstr, errstr_size,
				 "invalid window %lld: a number of points must be at least 1",
				 (long long)v->u.i);
			goto out;
		}
		*points = v->u.i;
		rc = 0;
		goto out;
	}
	if (v && v->type == DTK_V_STR) {
		if (dtk_interval_parse(v->u.str.s, seconds, errstr, errstr_size) == 0) {
			rc = 0;
			goto out;
		}
		quote_text(v->u.str.s, v->u.str.len, quoted, sizeof(quoted));
		snprintf(errstr, errstr_size,
			 "invalid window %s: expected \"N unit\" (e.g. \"30 days\", \"24 hours\", "
			 "\"1w\") or an integer number of points",
			 quoted);
		goto out;
	}
	if (!v || dtk_json_emit(&b, v, DTK_JSON_RAW_UTF8) != 0) {
		dtk_buf_reset(&b);
		dtk_buf_adds(&b, "null");
	}
	snprintf(errstr, errstr_size,
		 "invalid window %s (%s): expected \"N unit\" (e.g. \"30 days\") or an integer "
		 "number of points",
		 dtk_buf_str(&b), dtk_value_type_name(v));
out:
	dtk_buf_free(&b);
	return rc;
}
