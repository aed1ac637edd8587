/* template_render [--strict] TEMPLATE_FILE VARS_JSON_FILE
 *
 * Renders a template with variables from a JSON file and writes the result
 * to stdout byte for byte; exit 1 with the error on stderr on a compile or
 * render error. Drives tests/py/test_template_diff.py against Jinja2.
 *
 * JSON has no dates, so {"__datetime__": "2024-11-02T14:30:00[.ffffff]
 * [+HH:MM|Z]"} becomes a DTK_V_DATETIME and {"__date__": "2024-11-02"} a
 * DTK_V_DATE, anywhere in the tree. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/template.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/pyfmt.h"
#include "util/value.h"

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	dtk_buf b;
	char chunk[65536];
	size_t n;
	if (!f)
		return NULL;
	dtk_buf_init(&b, 0);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		dtk_buf_add(&b, chunk, n);
	int bad = ferror(f) || b.failed;
	fclose(f);
	if (bad) {
		dtk_buf_free(&b);
		return NULL;
	}
	*len = b.len;
	return dtk_buf_take(&b);
}

/* Reads exactly n digits at *p into *out. */
static int digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

/* ISO 8601 as Python's fromisoformat reads the forms the tests use. */
static dtk_value *parse_iso(const char *s, int date_only)
{
	const char *p = s;
	int y, mo, d, h = 0, mi = 0, sec = 0, usec = 0;
	if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
	    digits(&p, 2, &d))
		return NULL;
	int64_t days = dtk_pyfmt_days(y, mo, d);
	if (date_only) {
		if (*p)
			return NULL;
		dtk_value *v = dtk_value_datetime(days * 86400, 0);
		if (v)
			v->type = DTK_V_DATE;
		return v;
	}
	if ((*p != 'T' && *p != ' ') || (p++, digits(&p, 2, &h)) || *p++ != ':' ||
	    digits(&p, 2, &mi))
		return NULL;
	if (*p == ':') {
		p++;
		if (digits(&p, 2, &sec))
			return NULL;
		if (*p == '.') {
			p++;
			if (digits(&p, 6, &usec))
				return NULL;
		}
	}
	int has_tz = 0, tz_min = 0;
	if (*p == 'Z') {
		has_tz = 1;
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1, th, tm;
		if (digits(&p, 2, &th) || *p++ != ':' || digits(&p, 2, &tm))
			return NULL;
		has_tz = 1;
		tz_min = sign * (th * 60 + tm);
	}
	if (*p)
		return NULL;
	dtk_value *v = dtk_value_datetime(days * 86400 + h * 3600 + mi * 60 + sec, usec);
	if (v && has_tz) {
		v->u.dt.has_tz = 1;
		v->u.dt.tz_min = (int16_t)tz_min;
	}
	return v;
}

/* Replaces {"__datetime__": ...} and {"__date__": ...} maps in place.
 * Returns 0, or -1 with a message on stderr. */
static int convert(dtk_value **slot)
{
	dtk_value *v = *slot;
	if (v->type == DTK_V_LIST) {
		for (size_t i = 0; i < v->u.list.n; i++)
			if (convert(&v->u.list.items[i]) != 0)
				return -1;
		return 0;
	}
	if (v->type != DTK_V_MAP)
		return 0;
	if (v->u.map.n == 1) {
		const char *k = dtk_value_cstr(v->u.map.items[0].key);
		const char *s = dtk_value_cstr(v->u.map.items[0].val);
		int dt = k && !strcmp(k, "__datetime__"), date = k && !strcmp(k, "__date__");
		if (dt || date) {
			dtk_value *nv = s ? parse_iso(s, date) : NULL;
			if (!nv) {
				fprintf(stderr, "template_render: bad %s value\n", k);
				return -1;
			}
			dtk_value_free(slot);
			*slot = nv;
			return 0;
		}
	}
	for (size_t i = 0; i < v->u.map.n; i++)
		if (convert(&v->u.map.items[i].val) != 0)
			return -1;
	return 0;
}

int main(int argc, char **argv)
{
	int flags = 0, rc = 1, argi = 1;
	char *text = NULL, *json = NULL, *out = NULL;
	dtk_value *vars = NULL;
	dtk_template *t = NULL;
	char err[512];
	size_t tlen = 0, jlen = 0;
	if (argi < argc && !strcmp(argv[argi], "--strict")) {
		flags |= DTK_TEMPLATE_STRICT;
		argi++;
	}
	if (argc - argi != 2) {
		fprintf(stderr, "usage: template_render [--strict] TEMPLATE_FILE VARS_JSON_FILE\n");
		return 2;
	}
	text = read_file(argv[argi], &tlen);
	json = read_file(argv[argi + 1], &jlen);
	if (!text || !json) {
		fprintf(stderr, "template_render: cannot read %s: %s\n",
			text ? argv[argi + 1] : argv[argi], strerror(errno));
		goto out;
	}
	vars = dtk_json_parse(json, jlen, err, sizeof(err));
	if (!vars) {
		fprintf(stderr, "template_render: vars: %s\n", err);
		goto out;
	}
	if (convert(&vars) != 0)
		goto out;
	t = dtk_template_compile(text, err, sizeof(err));
	if (!t) {
		fprintf(stderr, "compile error: %s\n", err);
		goto out;
	}
	out = dtk_template_render(t, vars, flags, err, sizeof(err));
	if (!out) {
		fprintf(stderr, "render error: %s\n", err);
		goto out;
	}
	fwrite(out, 1, strlen(out), stdout);
	rc = fflush(stdout) == 0 ? 0 : 1;
out:
	free(out);
	dtk_template_free(&t);
	dtk_value_free(&vars);
	free(text);
	free(json);
	return rc;
}
