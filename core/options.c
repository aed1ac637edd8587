#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

#include "config/yaml.h"
#include "select.h"
#include "util/fileio.h"
#include "util/pyfmt.h"

static void derived(const char *name, char *out, size_t outsz, int env)
{
	size_t k = 0;
	if (env)
		k = (size_t)snprintf(out, outsz, "DTK_");
	for (const char *p = name; *p && k + 1 < outsz; p++)
		out[k++] = *p == '-' ? '_' : env ? (char)toupper((unsigned char)*p) : *p;
	out[k] = '\0';
}

static void env_name(const dtk_opt_spec *s, char *out, size_t outsz)
{
	if (s->env)
		snprintf(out, outsz, "%s", s->env);
	else
		derived(s->name, out, outsz, 1);
}

static void key_name(const dtk_opt_spec *s, char *out, size_t outsz)
{
	if (s->key)
		snprintf(out, outsz, "%s", s->key);
	else
		derived(s->name, out, outsz, 0);
}

static int parse_bool(const char *v, int *out)
{
	if (!strcasecmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
	    !strcasecmp(v, "on"))
		*out = 1;
	else if (!strcasecmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") ||
		 !strcasecmp(v, "off") || !*v)
		*out = 0;
	else
		return -1;
	return 0;
}

static int set_value(dtk_opt_value *v, const dtk_opt_spec *s, const char *text, const char *origin)
{
	v->set = 1;
	v->origin = origin;
	switch (s->kind) {
	case DTK_OPT_FLAG:
		return parse_bool(text, &v->on);
	case DTK_OPT_STRING:
		free(v->str);
		v->str = strdup(text);
		return v->str ? 0 : -1;
	case DTK_OPT_LIST:
		return dtk_select_split(text, &v->list, &v->n);
	}
	return -1;
}

static const dtk_opt_spec *find_long(const dtk_opt_spec *specs, size_t n, const char *name,
				     size_t len, size_t *idx)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(specs[i].name) == len && strncmp(specs[i].name, name, len) == 0) {
			*idx = i;
			return &specs[i];
		}
	return NULL;
}

static int parse_argv(dtk_opts *o, int argc, char **argv, char *errstr, size_t errstr_size)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const dtk_opt_spec *s = NULL;
		size_t idx = 0;
		const char *val = NULL;
		char shown[64];
		if (strcmp(a, "--") == 0) {
			for (i++; i < argc; i++)
				o->positional[o->npositional++] = argv[i];
			break;
		}
		if (a[0] == '-' && a[1] == '-') {
			const char *eq = strchr(a + 2, '=');
			size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
			s = find_long(o->specs, o->nspecs, a + 2, len, &idx);
			snprintf(shown, sizeof(shown), "--%.*s", (int)len, a + 2);
			if (eq)
				val = eq + 1;
		} else if (a[0] == '-' && a[1]) {
			for (size_t k = 0; k < o->nspecs; k++)
				if (o->specs[k].short_name == a[1]) {
					s = &o->specs[k];
					idx = k;
				}
			snprintf(shown, sizeof(shown), "-%c", a[1]);
			if (a[2])
				val = a + 2;
		} else {
			o->positional[o->npositional++] = argv[i];
			continue;
		}
		if (!s) {
			snprintf(errstr, errstr_size, "unknown option %s (see --help)", shown);
			return -1;
		}
		if (s->kind == DTK_OPT_FLAG) {
			if (val) {
				snprintf(errstr, errstr_size, "%s takes no value", shown);
				return -1;
			}
			o->values[idx].set = 1;
			o->values[idx].on = 1;
			o->values[idx].origin = "flag";
			continue;
		}
		if (!val) {
			if (i + 1 >= argc) {
				snprintf(errstr, errstr_size, "%s needs a value (%s)", shown,
					 s->arg ? s->arg : "VALUE");
				return -1;
			}
			val = argv[++i];
		}
		if (s->kind == DTK_OPT_STRING && o->values[idx].set) {
			snprintf(errstr, errstr_size, "%s given twice", shown);
			return -1;
		}
		if (set_value(&o->values[idx], s, val, "flag") != 0) {
			snprintf(errstr, errstr_size, "%s: out of memory", shown);
			return -1;
		}
	}
	return 0;
}

static int from_env(dtk_opts *o, char *errstr, size_t errstr_size)
{
	char name[128];
	for (size_t i = 0; i < o->nspecs; i++) {
		if (o->values[i].set)
			continue;
		if (o->specs[i].env && strcmp(o->specs[i].env, "-") == 0)
			continue;
		env_name(&o->specs[i], name, sizeof(name));
		const char *v = getenv(name);
		if (!v)
			continue;
		if (set_value(&o->values[i], &o->specs[i], v, "environment") != 0) {
			snprintf(errstr, errstr_size, "%s: '%s' is not a valid value for it", name, v);
			return -1;
		}
	}
	return 0;
}

/* A scalar of the settings file as text. */
static int scalar_text(const dtk_value *v, char *out, size_t outsz)
{
	switch (v->type) {
	case DTK_V_STR:
		snprintf(out, outsz, "%s", v->u.str.s);
		return 0;
	case DTK_V_INT:
		snprintf(out, outsz, "%lld", (long long)v->u.i);
		return 0;
	case DTK_V_FLOAT:
		dtk_pyfmt_float(v->u.f, out, outsz);
		return 0;
	case DTK_V_BOOL:
		snprintf(out, outsz, "%s", v->u.b ? "true" : "false");
		return 0;
	default:
		return -1;
	}
}

static int from_file(dtk_opts *o, const char *path, char *errstr, size_t errstr_size)
{
	char *text = NULL, err[1024], key[128], val[4096];
	size_t len = 0;
	int rc = -1;
	dtk_value *doc = NULL;
	if (dtk_file_read(path, DTK_FILE_MAX_CONFIG, &text, &len, errstr, errstr_size) != 0)
		return -1;
	doc = dtk_yaml_load(text, len, path, NULL, err, sizeof(err));
	if (!doc) {
		snprintf(errstr, errstr_size, "%s", err);
		goto out;
	}
	if (doc->type == DTK_V_NULL) {
		rc = 0;
		goto out;
	}
	if (doc->type != DTK_V_MAP) {
		snprintf(errstr, errstr_size, "%s: the settings file must be a mapping", path);
		goto out;
	}
	for (size_t k = 0; k < doc->u.map.n; k++) {
		const char *ks = dtk_value_cstr(doc->u.map.items[k].key);
		const dtk_value *v = doc->u.map.items[k].val;
		size_t i = 0;
		for (; ks && i < o->nspecs; i++) {
			if (o->specs[i].key && strcmp(o->specs[i].key, "-") == 0)
				continue;
			key_name(&o->specs[i], key, sizeof(key));
			if (strcmp(key, ks) == 0)
				break;
		}
		if (!ks || i == o->nspecs) {
			snprintf(errstr, errstr_size, "%s:%u:%u: unknown setting '%s'", path,
				 doc->u.map.items[k].key->line, doc->u.map.items[k].key->col,
				 ks ? ks : "?");
			goto out;
		}
		if (o->values[i].set || v->type == DTK_V_NULL)
			continue;
		if (v->type == DTK_V_LIST && o->specs[i].kind == DTK_OPT_LIST) {
			for (size_t j = 0; j < v->u.list.n; j++)
				if (scalar_text(v->u.list.items[j], val, sizeof(val)) != 0 ||
				    set_value(&o->values[i], &o->specs[i], val, path) != 0) {
					snprintf(errstr, errstr_size, "%s:%u:%u: %s: bad list item",
						 path, v->line, v->col, ks);
					goto out;
				}
			continue;
		}
		if (scalar_text(v, val, sizeof(val)) != 0 ||
		    set_value(&o->values[i], &o->specs[i], val, path) != 0) {
			snprintf(errstr, errstr_size, "%s:%u:%u: %s: not a valid value", path, v->line,
				 v->col, ks);
			goto out;
		}
	}
	rc = 0;
out:
	dtk_value_free(&doc);
	free(text);
	return rc;
}

int dtk_opts_parse(dtk_opts *o, const dtk_opt_spec *specs, size_t nspecs, int argc,
		   char **argv, char *errstr, size_t errstr_size)
{
	memset(o, 0, sizeof(*o));
	o->specs = specs;
	o->nspecs = nspecs;
	o->values = calloc(nspecs, sizeof(*o->values));
	o->positional = calloc((size_t)argc + 1, sizeof(char *));
	if (!o->values || !o->positional) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	if (parse_argv(o, argc, argv, errstr, errstr_size) != 0 ||
	    from_env(o, errstr, errstr_size) != 0)
		return -1;
	const dtk_opt_value *cfg = dtk_opts_get(o, "config");
	if (cfg && cfg->set && cfg->str && from_file(o, cfg->str, errstr, errstr_size) != 0)
		return -1;
	return 0;
}

void dtk_opts_free(dtk_opts *o)
{
	for (size_t i = 0; o->values && i < o->nspecs; i++) {
		free(o->values[i].str);
		for (size_t k = 0; k < o->values[i].n; k++)
			free(o->values[i].list[k]);
		free(o->values[i].list);
	}
	free(o->values);
	free(o->positional);
	memset(o, 0, sizeof(*o));
}

const dtk_opt_value *dtk_opts_get(const dtk_opts *o, const char *name)
{
	for (size_t i = 0; i < o->nspecs; i++)
		if (strcmp(o->specs[i].name, name) == 0)
			return &o->values[i];
	return NULL;
}

int dtk_opts_on(const dtk_opts *o, const char *name)
{
	const dtk_opt_value *v = dtk_opts_get(o, name);
	return v && v->set && v->on;
}

const char *dtk_opts_str(const dtk_opts *o, const char *name, const char *def)
{
	const dtk_opt_value *v = dtk_opts_get(o, name);
	return v && v->set && v->str ? v->str : def;
}

int dtk_opts_int(const dtk_opts *o, const char *name, long def, long min, long max, long *out,
		 char *errstr, size_t errstr_size)
{
	const dtk_opt_value *v = dtk_opts_get(o, name);
	*out = def;
	if (!v || !v->set || !v->str)
		return 0;
	char *end;
	errno = 0;
	long x = strtol(v->str, &end, 10);
	if (errno || end == v->str || *end || x < min || x > max) {
		snprintf(errstr, errstr_size, "--%s (from the %s) must be a whole number from %ld to "
					      "%ld, got '%s'",
			 name, v->origin, min, max, v->str);
		return -1;
	}
	*out = x;
	return 0;
}

void dtk_opts_help(const dtk_opt_spec *specs, size_t nspecs, FILE *f)
{
	char env[128], flag[96];
	for (size_t i = 0; i < nspecs; i++) {
		const dtk_opt_spec *s = &specs[i];
		if (s->short_name)
			snprintf(flag, sizeof(flag), "-%c, --%s%s%s", s->short_name, s->name,
				 s->arg ? " " : "", s->arg ? s->arg : "");
		else
			snprintf(flag, sizeof(flag), "    --%s%s%s", s->name, s->arg ? " " : "",
				 s->arg ? s->arg : "");
		env_name(s, env, sizeof(env));
		if (s->env && strcmp(s->env, "-") == 0)
			fprintf(f, "  %-32s %s\n", flag, s->help);
		else
			fprintf(f, "  %-32s %s [%s]\n", flag, s->help, env);
	}
}

int dtk_opts_start(dtk_opts *o, const dtk_opt_spec *specs, size_t nspecs, int argc,
		   char **argv, const char *prog, void (*usage)(FILE *f))
{
	char err[2048];
	if (dtk_opts_parse(o, specs, nspecs, argc, argv, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return 2;
	}
	if (dtk_opts_on(o, "help")) {
		usage(stdout);
		return 0;
	}
	if (dtk_opts_on(o, "version")) {
		printf("%s %s\n", prog, DTK_VERSION);
		return 0;
	}
	if (o->npositional) {
		fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", prog,
			o->positional[0]);
		return 2;
	}
	return -1;
}
