#include "config/env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/yaml.h"
#include "util/buf.h"

static int is_name_start(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int is_name_char(char c)
{
	return is_name_start(c) || (c >= '0' && c <= '9');
}

/* Parses "${NAME}" or "${NAME:-default}" at s; returns its length, or 0. */
static size_t placeholder_at(const char *s, size_t *name_len, const char **def, size_t *def_len)
{
	if (s[0] != '$' || s[1] != '{' || !is_name_start(s[2]))
		return 0;
	size_t i = 2;
	while (is_name_char(s[i]))
		i++;
	*name_len = i - 2;
	*def = NULL;
	*def_len = 0;
	if (s[i] == '}')
		return i + 1;
	if (s[i] == ':' && s[i + 1] == '-') {
		const char *d = s + i + 2;
		const char *end = strchr(d, '}');
		if (!end)
			return 0;
		*def = d;
		*def_len = (size_t)(end - d);
		return (size_t)(end - s) + 1;
	}
	return 0;
}

int dtk_env_has_placeholder(const char *s)
{
	size_t nl, dl;
	const char *d;
	for (; s && *s; s++)
		if (placeholder_at(s, &nl, &d, &dl))
			return 1;
	return 0;
}

static int allowed(const dtk_env_opts *o, const char *name)
{
	if (!o->allow)
		return 1;
	for (size_t i = 0; i < o->n_allow; i++)
		if (strncmp(name, o->allow[i], strlen(o->allow[i])) == 0)
			return 1;
	return 0;
}

/* Values shorter than this that came from the environment are not masked:
 * they hide nothing (a port, a flag) and masking them would turn every "1"
 * in a message into ***. A short value under a secret-looking key is still
 * masked (config.c). */
#define ENV_SECRET_MIN_LEN 4

static int add_secret(dtk_value *secrets, const char *val)
{
	if (!secrets || strlen(val) < ENV_SECRET_MIN_LEN)
		return 0;
	for (size_t i = 0; i < secrets->u.list.n; i++)
		if (strcmp(secrets->u.list.items[i]->u.str.s, val) == 0)
			return 0;
	dtk_value *s = dtk_value_str(val);
	if (!s || dtk_value_list_push(secrets, s) != 0) {
		dtk_value_free(&s);
		return -1;
	}
	return 0;
}

/* Expands one string; *changed set when anything was substituted. */
static int expand_str(dtk_value *v, const char *keypath, const dtk_env_opts *o, int *changed,
		      char *errstr, size_t errstr_size)
{
	const char *s = v->u.str.s;
	if (!strstr(s, "${"))
		return 0;
	dtk_buf out;
	dtk_buf_init(&out, 0);
	int rc = -1;
	for (size_t i = 0; s[i];) {
		size_t nl, dl, n;
		const char *def;
		if (s[i] == '$' && s[i + 1] == '{' && s[i + 2] == '{') {
			/* ${{ ... }}: template text, copied as is */
			dtk_buf_add(&out, s + i, 3);
			i += 3;
			continue;
		}
		n = placeholder_at(s + i, &nl, &def, &dl);
		if (!n) {
			dtk_buf_addc(&out, s[i++]);
			continue;
		}
		char name[256];
		if (nl >= sizeof(name)) {
			snprintf(errstr, errstr_size, "%u:%u: %s: variable name too long", v->line,
				 v->col, keypath);
			goto out;
		}
		memcpy(name, s + i + 2, nl);
		name[nl] = '\0';
		const char *val = allowed(o, name) ? getenv(name) : NULL;
		if (val && *val) {
			dtk_buf_adds(&out, val);
			if (add_secret(o->secrets, val) != 0)
				goto out;
		} else if (def) {
			dtk_buf_add(&out, def, dl);
		} else if (val) {
			/* set but empty, no default: empty, as bash does */
		} else if (o->deferred) {
			dtk_buf_add(&out, s + i, n);
			i += n;
			continue;
		} else {
			snprintf(errstr, errstr_size,
				 "%u:%u: %s: environment variable %s is not set%s", v->line, v->col,
				 keypath, name,
				 allowed(o, name) ? "" : " (not in the worker's --allow-env list)");
			goto out;
		}
		*changed = 1;
		i += n;
	}
	if (out.failed) {
		snprintf(errstr, errstr_size, "%u:%u: %s: value too long after expansion", v->line,
			 v->col, keypath);
		goto out;
	}
	if (*changed) {
		size_t len = out.len;
		char *text = dtk_buf_take(&out);
		if (!text) {
			snprintf(errstr, errstr_size, "%u:%u: %s: out of memory", v->line, v->col,
				 keypath);
			goto out;
		}
		dtk_value_str_take(v, text, len);
	}
	rc = 0;
out:
	dtk_buf_free(&out);
	return rc;
}

/* Whether v is a container or a string with a '$': the others expand to
 * themselves, and their key paths (for error messages) need not be built. */
static int may_expand(const dtk_value *v)
{
	if (v->type == DTK_V_LIST || v->type == DTK_V_MAP)
		return 1;
	return v->type == DTK_V_STR && memchr(v->u.str.s, '$', v->u.str.len) != NULL;
}

static int expand(dtk_value *v, const char *keypath, const dtk_env_opts *o, char *errstr,
		  size_t errstr_size)
{
	char sub[512];
	switch (v->type) {
	case DTK_V_STR: {
		int changed = 0;
		if (expand_str(v, keypath, o, &changed, errstr, errstr_size) != 0)
			return -1;
		if (changed && v->plain) {
			dtk_value *typed = dtk_yaml_resolve_plain(v->u.str.s, v->u.str.len);
			if (!typed)
				return -1;
			if (typed->type != DTK_V_STR) {
				typed->line = v->line;
				typed->col = v->col;
				dtk_value_str_take(v, NULL, 0); /* its text, not v itself */
				*v = *typed;
				v->plain = 1;
				free(typed);
			} else {
				dtk_value_free(&typed);
			}
		}
		return 0;
	}
	case DTK_V_LIST:
		for (size_t i = 0; i < v->u.list.n; i++) {
			if (!may_expand(v->u.list.items[i]))
				continue;
			snprintf(sub, sizeof(sub), "%s[%zu]", keypath, i);
			if (expand(v->u.list.items[i], sub, o, errstr, errstr_size) != 0)
				return -1;
		}
		return 0;
	case DTK_V_MAP:
		for (size_t i = 0; i < v->u.map.n; i++) {
			if (!may_expand(v->u.map.items[i].val))
				continue;
			const dtk_value *k = v->u.map.items[i].key;
			const char *ks = k->type == DTK_V_STR ? k->u.str.s : "?";
			snprintf(sub, sizeof(sub), "%s%s%s", keypath, *keypath ? "." : "", ks);
			if (expand(v->u.map.items[i].val, sub, o, errstr, errstr_size) != 0)
				return -1;
		}
		return 0;
	default:
		return 0;
	}
}

int dtk_env_expand(dtk_value *v, const char *keypath, const dtk_env_opts *opts, char *errstr,
		   size_t errstr_size)
{
	return expand(v, keypath ? keypath : "", opts, errstr, errstr_size);
}
