/* The public face of core/template: compile (lexer.c, parser.c), render
 * (eval.c, filters.c, pystr.c) and AST queries. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/template.h"
#include "template/tpl_internal.h"

struct dtk_template {
	tpl_nodes stmts;
};

dtk_template *dtk_template_compile(const char *text, char *errstr, size_t errstr_size)
{
	tpl_toks toks = {0};
	dtk_template *t = NULL;
	if (!text) {
		snprintf(errstr, errstr_size, "line 1: no template text");
		return NULL;
	}
	if (tpl_lex(text, &toks, errstr, errstr_size) != 0)
		goto out;
	t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(errstr, errstr_size, "line 1: out of memory");
		goto out;
	}
	if (tpl_parse(&toks, &t->stmts, errstr, errstr_size) != 0) {
		free(t);
		t = NULL;
	}
out:
	tpl_toks_free(&toks);
	return t;
}

void dtk_template_free(dtk_template **t)
{
	if (!t || !*t)
		return;
	tpl_nodes_free(&(*t)->stmts);
	free(*t);
	*t = NULL;
}

char *dtk_template_render(const dtk_template *t, const dtk_value *vars, int flags,
			  char *errstr, size_t errstr_size)
{
	dtk_buf out;
	char *res = NULL;
	dtk_value *empty = NULL;
	dtk_buf_init(&out, TPL_MAX_OUTPUT);
	if (!vars) {
		empty = dtk_value_map();
		if (!empty) {
			snprintf(errstr, errstr_size, "out of memory");
			goto out;
		}
		vars = empty;
	}
	if (tpl_eval(&t->stmts, vars, flags, &out, errstr, errstr_size) != 0)
		goto out;
	res = dtk_buf_take(&out);
	if (!res)
		snprintf(errstr, errstr_size, "out of memory");
out:
	dtk_value_free(&empty);
	dtk_buf_free(&out);
	return res;
}

/* Loop targets in scope while walking, innermost first. */
typedef struct scope {
	const struct scope *up;
	const char *n1, *n2;
} scope;

static int shadowed(const scope *s, const char *name)
{
	for (; s; s = s->up)
		if ((s->n1 && !strcmp(s->n1, name)) || (s->n2 && !strcmp(s->n2, name)) ||
		    !strcmp(name, "loop"))
			return 1;
	return 0;
}

static int walk(const tpl_node *n, const char *name, const scope *s);

static int walk_all(const tpl_nodes *ns, const char *name, const scope *s)
{
	for (size_t i = 0; i < ns->n; i++)
		if (walk(ns->v[i], name, s))
			return 1;
	return 0;
}

static int walk(const tpl_node *n, const char *name, const scope *s)
{
	if (!n)
		return 0;
	if (n->kind == N_NAME)
		return !strcmp(n->name, name) && !shadowed(s, name);
	if (n->kind == S_FOR) {
		scope inner = {.up = s, .n1 = n->t1, .n2 = n->t2};
		return walk(n->a, name, s) || walk(n->c, name, &inner) ||
		       walk_all(&n->body, name, &inner) || walk_all(&n->ebody, name, s);
	}
	return walk(n->a, name, s) || walk(n->b, name, s) || walk(n->c, name, s) ||
	       walk_all(&n->args, name, s) || walk_all(&n->kwargs, name, s) ||
	       walk_all(&n->body, name, s) || walk_all(&n->ebody, name, s);
}

int dtk_template_uses_var(const dtk_template *t, const char *name)
{
	if (!t || !name)
		return 0;
	return walk_all(&t->stmts, name, NULL);
}

int dtk_template_has_syntax(const char *text)
{
	return text && (strstr(text, "{{") || strstr(text, "{%") || strstr(text, "{#"));
}
