/* Tokens to AST, following jinja2/parser.py for the subset in config.md.
 * Everything the subset leaves out fails here with "not supported: ...",
 * so that `dtk validate` reports it before any render. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/tpl_internal.h"

typedef struct parser {
	const tpl_toks *t;
	size_t i;
	int depth;
	char *err;
	size_t errsz;
} parser;

/* Jinja's built-in tags that the subset leaves out. */
static const char *const unsupported_tags[] = {
	"set",     "macro",  "include", "extends", "block", "import",     "from",
	"call",    "filter", "with",    "autoescape", "print", "do",     "break",
	"continue", "trans", "pluralize", "debug",
};

/* Ends of blocks, which may only appear where their opener expects them. */
static const char *const end_tags[] = {
	"endif", "endfor", "elif", "else", "endraw", "endmacro", "endblock",
	"endset", "endcall", "endfilter", "endwith", "endautoescape", "endtrans",
};

static const struct {
	const char *name;
	int id;
	int min_args, max_args; /* max -1: any (format) */
	const char *params[3];
} filters[] = {
	{"round", F_ROUND, 0, 2, {"precision", "method"}},
	{"int", F_INT, 0, 2, {"default", "base"}},
	{"float", F_FLOAT, 0, 1, {"default"}},
	{"abs", F_ABS, 0, 0, {0}},
	{"default", F_DEFAULT, 0, 2, {"default_value", "boolean"}},
	{"d", F_DEFAULT, 0, 2, {"default_value", "boolean"}},
	{"upper", F_UPPER, 0, 0, {0}},
	{"lower", F_LOWER, 0, 0, {0}},
	{"length", F_LENGTH, 0, 0, {0}},
	{"count", F_LENGTH, 0, 0, {0}},
	{"join", F_JOIN, 0, 2, {"d", "attribute"}},
	{"replace", F_REPLACE, 2, 3, {"old", "new", "count"}},
	{"trim", F_TRIM, 0, 1, {"chars"}},
	{"format", F_FORMAT, 0, -1, {0}},
	{"datetime_format", F_DATETIME_FORMAT, 0, 1, {"fmt"}},
};

static const struct {
	const char *name;
	int id;
} tests[] = {
	{"defined", T_DEFINED}, {"undefined", T_UNDEFINED}, {"none", T_NONE},
	{"number", T_NUMBER},   {"string", T_STRING},       {"odd", T_ODD},
	{"even", T_EVEN},       {"true", T_TRUE},           {"false", T_FALSE},
};

static const char *const methods[] = {
	"strftime", "isoformat", "timestamp", "date", "weekday", "isoweekday",
};

int tpl_filter_lookup(const char *name)
{
	for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++)
		if (strcmp(filters[i].name, name) == 0)
			return (int)i;
	return -1;
}

int tpl_test_lookup(const char *name)
{
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		if (strcmp(tests[i].name, name) == 0)
			return tests[i].id;
	return -1;
}

int tpl_method_known(const char *name)
{
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(methods[i], name) == 0)
			return 1;
	return 0;
}

static int pfail(parser *p, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int pfail(parser *p, unsigned line, const char *fmt, ...)
{
	char msg[240];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(p->err, p->errsz, "line %u: %s", line, msg);
	return -1;
}

static const tpl_tok *cur(const parser *p)
{
	return &p->t->v[p->i];
}

static const tpl_tok *peek(const parser *p, size_t k)
{
	size_t j = p->i + k;
	return j < p->t->n ? &p->t->v[j] : &p->t->v[p->t->n - 1];
}

static void advance(parser *p)
{
	if (p->t->v[p->i].type != TK_EOF)
		p->i++;
}

static int is_op(const tpl_tok *t, int op)
{
	return t->type == TK_OP && t->op == op;
}

static int is_name(const tpl_tok *t, const char *name)
{
	return t->type == TK_NAME && strcmp(t->text, name) == 0;
}

static void describe(const tpl_tok *t, char *out, size_t outsz)
{
	switch (t->type) {
	case TK_EOF:
		snprintf(out, outsz, "end of template");
		break;
	case TK_VAR_END:
		snprintf(out, outsz, "end of print statement");
		break;
	case TK_BLOCK_END:
		snprintf(out, outsz, "end of statement block");
		break;
	case TK_VAR_BEGIN:
		snprintf(out, outsz, "begin of print statement");
		break;
	case TK_BLOCK_BEGIN:
		snprintf(out, outsz, "begin of statement block");
		break;
	case TK_DATA:
		snprintf(out, outsz, "template data");
		break;
	case TK_NAME:
		snprintf(out, outsz, "%.60s", t->text);
		break;
	case TK_STRING:
		snprintf(out, outsz, "string");
		break;
	case TK_INT:
		snprintf(out, outsz, "integer");
		break;
	case TK_FLOAT:
		snprintf(out, outsz, "float");
		break;
	default:
		if (t->op == OP_FLOORDIV)
			snprintf(out, outsz, "//");
		else if (t->op == OP_POW)
			snprintf(out, outsz, "**");
		else if (t->op == OP_EQ)
			snprintf(out, outsz, "==");
		else if (t->op == OP_NE)
			snprintf(out, outsz, "!=");
		else if (t->op == OP_LE)
			snprintf(out, outsz, "<=");
		else if (t->op == OP_GE)
			snprintf(out, outsz, ">=");
		else
			snprintf(out, outsz, "%c", t->op);
		break;
	}
}

static int unexpected(parser *p)
{
	char d[80];
	describe(cur(p), d, sizeof(d));
	return pfail(p, cur(p)->line, "unexpected '%s'", d);
}

static int expect_op(parser *p, int op, const char *what)
{
	if (!is_op(cur(p), op)) {
		char d[80];
		describe(cur(p), d, sizeof(d));
		return pfail(p, cur(p)->line, "expected '%s', got '%s'", what, d);
	}
	advance(p);
	return 0;
}

static int expect_type(parser *p, int type, const char *what)
{
	if (cur(p)->type != type) {
		char d[80];
		describe(cur(p), d, sizeof(d));
		return pfail(p, cur(p)->line, "expected %s, got '%s'", what, d);
	}
	advance(p);
	return 0;
}

void tpl_nodes_free(tpl_nodes *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		tpl_node_free(&ns->v[i]);
	free(ns->v);
	memset(ns, 0, sizeof(*ns));
}

void tpl_node_free(tpl_node **pn)
{
	if (!pn || !*pn)
		return;
	tpl_node *n = *pn;
	dtk_value_free(&n->cval);
	free(n->name);
	tpl_node_free(&n->a);
	tpl_node_free(&n->b);
	tpl_node_free(&n->c);
	tpl_nodes_free(&n->args);
	if (n->kwnames)
		for (size_t i = 0; i < n->kwargs.n; i++)
			free(n->kwnames[i]);
	free(n->kwnames);
	tpl_nodes_free(&n->kwargs);
	tpl_nodes_free(&n->body);
	tpl_nodes_free(&n->ebody);
	free(n->t1);
	free(n->t2);
	free(n);
	*pn = NULL;
}

static tpl_node *node_new(parser *p, int kind, unsigned line)
{
	tpl_node *n = calloc(1, sizeof(*n));
	if (!n) {
		pfail(p, line, "out of memory");
		return NULL;
	}
	n->kind = kind;
	n->line = line;
	return n;
}

static int nodes_push(parser *p, tpl_nodes *ns, tpl_node *n)
{
	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? ns->cap * 2 : 4;
		tpl_node **v = realloc(ns->v, cap * sizeof(*v));
		if (!v)
			return pfail(p, n ? n->line : 0, "out of memory");
		ns->v = v;
		ns->cap = cap;
	}
	ns->v[ns->n++] = n;
	return 0;
}

static char *dupstr(parser *p, const char *s, unsigned line)
{
	char *d = strdup(s);
	if (!d)
		pfail(p, line, "out of memory");
	return d;
}

static tpl_node *parse_expression(parser *p, int with_cond);
static tpl_node *parse_unary(parser *p, int with_filter);

static int enter(parser *p)
{
	if (++p->depth > TPL_MAX_DEPTH) {
		pfail(p, cur(p)->line, "expression nested too deeply");
		return -1;
	}
	return 0;
}

/* Positional and keyword arguments of a call: "(a, b, k=v)". */
static int parse_call_args(parser *p, tpl_node *n)
{
	if (expect_op(p, '(', "(") != 0)
		return -1;
	while (!is_op(cur(p), ')')) {
		if (n->args.n || n->kwargs.n) {
			if (expect_op(p, ',', ",") != 0)
				return -1;
			if (is_op(cur(p), ')'))
				break;
		}
		if (is_op(cur(p), '*') || is_op(cur(p), OP_POW))
			return pfail(p, cur(p)->line, "not supported: *args and **kwargs");
		if (cur(p)->type == TK_NAME && is_op(peek(p, 1), '=')) {
			unsigned line = cur(p)->line;
			char *kw = dupstr(p, cur(p)->text, line);
			if (!kw)
				return -1;
			advance(p);
			advance(p);
			tpl_node *v = parse_expression(p, 1);
			char **names = v ? realloc(n->kwnames, (n->kwargs.n + 1) * sizeof(char *)) : NULL;
			if (!names) {
				free(kw);
				tpl_node_free(&v);
				return v ? pfail(p, line, "out of memory") : -1;
			}
			n->kwnames = names;
			names[n->kwargs.n] = kw;
			if (nodes_push(p, &n->kwargs, v) != 0) {
				free(kw);
				tpl_node_free(&v);
				return -1;
			}
			continue;
		}
		if (n->kwargs.n)
			return pfail(p, cur(p)->line,
				     "invalid argument syntax: positional argument after keyword");
		tpl_node *v = parse_expression(p, 1);
		if (!v || nodes_push(p, &n->args, v) != 0) {
			tpl_node_free(&v);
			return -1;
		}
	}
	advance(p);
	return 0;
}

/* Puts a filter's arguments in parameter order (NULL for the missing). */
static int bind_filter_args(parser *p, tpl_node *n, int fi)
{
	if (filters[fi].max_args < 0)
		return 0;
	int maxa = filters[fi].max_args;
	if ((int)n->args.n > maxa)
		return pfail(p, n->line, "filter '%s' takes at most %d argument%s", filters[fi].name,
			     maxa, maxa == 1 ? "" : "s");
	tpl_nodes bound = {0};
	for (int k = 0; k < maxa; k++) {
		tpl_node *v = (size_t)k < n->args.n ? n->args.v[k] : NULL;
		if (nodes_push(p, &bound, v) != 0) {
			free(bound.v);
			return -1;
		}
	}
	for (size_t k = 0; k < n->kwargs.n; k++) {
		int slot = -1;
		for (int j = 0; j < maxa; j++)
			if (filters[fi].params[j] && strcmp(filters[fi].params[j], n->kwnames[k]) == 0)
				slot = j;
		if (slot < 0 || bound.v[slot]) {
			const char *why = slot < 0 ? "unexpected" : "duplicate";
			pfail(p, n->line, "filter '%s': %s keyword argument '%.40s'",
			      filters[fi].name, why, n->kwnames[k]);
			for (int j = 0; j < maxa; j++)
				if ((size_t)j >= n->args.n)
					tpl_node_free(&bound.v[j]);
			free(bound.v);
			return -1;
		}
		bound.v[slot] = n->kwargs.v[k];
		n->kwargs.v[k] = NULL;
	}
	for (int j = 0; j < filters[fi].min_args; j++)
		if (!bound.v[j]) {
			pfail(p, n->line, "filter '%s' needs the argument '%s'", filters[fi].name,
			      filters[fi].params[j]);
			for (int k = 0; k < maxa; k++)
				if ((size_t)k >= n->args.n)
					tpl_node_free(&bound.v[k]);
			free(bound.v);
			return -1;
		}
	free(n->args.v);
	n->args = bound;
	for (size_t k = 0; k < n->kwargs.n; k++)
		free(n->kwnames[k]);
	free(n->kwnames);
	n->kwnames = NULL;
	free(n->kwargs.v);
	memset(&n->kwargs, 0, sizeof(n->kwargs));
	return 0;
}

/* "." name segments after a filter or test name. */
static int dotted_name(parser *p, char *out, size_t outsz)
{
	size_t len = strlen(out);
	while (is_op(cur(p), '.')) {
		advance(p);
		if (cur(p)->type != TK_NAME)
			return unexpected(p);
		snprintf(out + len, outsz - len, ".%s", cur(p)->text);
		len = strlen(out);
		advance(p);
	}
	return 0;
}

static tpl_node *parse_filter(parser *p, tpl_node *node)
{
	while (is_op(cur(p), '|')) {
		advance(p);
		unsigned line = cur(p)->line;
		if (cur(p)->type != TK_NAME) {
			unexpected(p);
			goto fail;
		}
		char name[128];
		snprintf(name, sizeof(name), "%s", cur(p)->text);
		advance(p);
		if (dotted_name(p, name, sizeof(name)) != 0)
			goto fail;
		int fi = tpl_filter_lookup(name);
		if (fi < 0) {
			pfail(p, line, "not supported: filter '%s'", name);
			goto fail;
		}
		tpl_node *f = node_new(p, N_FILTER, line);
		if (!f)
			goto fail;
		f->a = node;
		node = f;
		f->op = filters[fi].id;
		if (!(f->name = dupstr(p, name, line)))
			goto fail;
		if (is_op(cur(p), '(') && parse_call_args(p, f) != 0)
			goto fail;
		if (bind_filter_args(p, f, fi) != 0)
			goto fail;
	}
	return node;
fail:
	tpl_node_free(&node);
	return NULL;
}

static tpl_node *parse_primary(parser *p);
static tpl_node *parse_postfix(parser *p, tpl_node *node);

static tpl_node *parse_test(parser *p, tpl_node *node)
{
	unsigned line = cur(p)->line;
	advance(p); /* is */
	int negated = 0;
	if (is_name(cur(p), "not")) {
		advance(p);
		negated = 1;
	}
	if (cur(p)->type != TK_NAME) {
		unexpected(p);
		goto fail;
	}
	char name[128];
	snprintf(name, sizeof(name), "%s", cur(p)->text);
	advance(p);
	if (dotted_name(p, name, sizeof(name)) != 0)
		goto fail;
	int ti = tpl_test_lookup(name);
	if (ti < 0) {
		pfail(p, line, "not supported: test '%s'", name);
		goto fail;
	}
	const tpl_tok *c = cur(p);
	if (is_op(c, '(') ||
	    ((c->type == TK_NAME || c->type == TK_STRING || c->type == TK_INT ||
	      c->type == TK_FLOAT || is_op(c, '[') || is_op(c, '{')) &&
	     !is_name(c, "else") && !is_name(c, "or") && !is_name(c, "and"))) {
		if (is_name(c, "is"))
			pfail(p, line, "you cannot chain multiple tests with is");
		else
			pfail(p, line, "test '%s' takes no arguments", name);
		goto fail;
	}
	tpl_node *t = node_new(p, N_TEST, line);
	if (!t)
		goto fail;
	t->a = node;
	t->op = ti;
	node = t;
	if (!(t->name = dupstr(p, name, line)))
		goto fail;
	if (negated) {
		tpl_node *n = node_new(p, N_NOT, line);
		if (!n)
			goto fail;
		n->a = node;
		node = n;
	}
	return node;
fail:
	tpl_node_free(&node);
	return NULL;
}

static tpl_node *parse_call(parser *p, tpl_node *node)
{
	unsigned line = cur(p)->line;
	if (node->kind != N_GETATTR) {
		pfail(p, line, "not supported: function call (only the methods strftime, "
			       "isoformat, timestamp, date, weekday, isoweekday)");
		goto fail;
	}
	if (!tpl_method_known(node->name)) {
		pfail(p, line, "not supported: method call .%.60s()", node->name);
		goto fail;
	}
	node->kind = N_METHOD;
	if (parse_call_args(p, node) != 0)
		goto fail;
	if (node->kwargs.n) {
		pfail(p, line, "not supported: keyword arguments to .%s()", node->name);
		goto fail;
	}
	return node;
fail:
	tpl_node_free(&node);
	return NULL;
}

static tpl_node *parse_filter_expr(parser *p, tpl_node *node)
{
	for (;;) {
		if (!node)
			return NULL;
		if (is_op(cur(p), '|'))
			node = parse_filter(p, node);
		else if (is_name(cur(p), "is"))
			node = parse_test(p, node);
		else if (is_op(cur(p), '('))
			node = parse_call(p, node);
		else
			return node;
	}
}

static tpl_node *parse_subscribed(parser *p)
{
	unsigned line = cur(p)->line;
	tpl_node *parts[3] = {0};
	if (!is_op(cur(p), ':')) {
		parts[0] = parse_expression(p, 1);
		if (!parts[0])
			return NULL;
		if (!is_op(cur(p), ':'))
			return parts[0];
	}
	advance(p); /* the first colon */
	if (!is_op(cur(p), ':') && !is_op(cur(p), ']') && !is_op(cur(p), ',')) {
		if (!(parts[1] = parse_expression(p, 1)))
			goto fail;
	}
	if (is_op(cur(p), ':')) {
		advance(p);
		if (!is_op(cur(p), ']') && !is_op(cur(p), ',')) {
			if (!(parts[2] = parse_expression(p, 1)))
				goto fail;
		}
	}
	tpl_node *s = node_new(p, N_SLICE, line);
	if (!s)
		goto fail;
	for (int k = 0; k < 3; k++)
		if (nodes_push(p, &s->args, parts[k]) != 0) {
			for (int j = k; j < 3; j++)
				tpl_node_free(&parts[j]);
			tpl_node_free(&s);
			return NULL;
		}
	return s;
fail:
	for (int k = 0; k < 3; k++)
		tpl_node_free(&parts[k]);
	return NULL;
}

static tpl_node *parse_postfix(parser *p, tpl_node *node)
{
	while (node) {
		unsigned line = cur(p)->line;
		if (is_op(cur(p), '.')) {
			advance(p);
			const tpl_tok *t = cur(p);
			if (t->type == TK_NAME) {
				tpl_node *g = node_new(p, N_GETATTR, line);
				if (!g || !(g->name = dupstr(p, t->text, line))) {
					tpl_node_free(&g);
					goto fail;
				}
				g->a = node;
				node = g;
				advance(p);
			} else if (t->type == TK_INT) {
				tpl_node *k = node_new(p, N_CONST, line);
				tpl_node *g = node_new(p, N_GETITEM, line);
				if (!k || !g || !(k->cval = dtk_value_int(t->ival))) {
					tpl_node_free(&k);
					tpl_node_free(&g);
					pfail(p, line, "out of memory");
					goto fail;
				}
				g->a = node;
				g->b = k;
				node = g;
				advance(p);
			} else {
				pfail(p, line, "expected name or number");
				goto fail;
			}
		} else if (is_op(cur(p), '[')) {
			advance(p);
			tpl_node *sub = parse_subscribed(p);
			if (!sub)
				goto fail;
			if (is_op(cur(p), ',')) {
				tpl_node_free(&sub);
				pfail(p, line, "not supported: tuple subscript");
				goto fail;
			}
			if (expect_op(p, ']', "]") != 0) {
				tpl_node_free(&sub);
				goto fail;
			}
			if (sub->kind == N_SLICE) {
				sub->a = node;
				node = sub;
			} else {
				tpl_node *g = node_new(p, N_GETITEM, line);
				if (!g) {
					tpl_node_free(&sub);
					goto fail;
				}
				g->a = node;
				g->b = sub;
				node = g;
			}
		} else if (is_op(cur(p), '(')) {
			node = parse_call(p, node);
		} else {
			break;
		}
	}
	return node;
fail:
	tpl_node_free(&node);
	return NULL;
}

static tpl_node *parse_primary(parser *p)
{
	const tpl_tok *t = cur(p);
	unsigned line = t->line;
	tpl_node *n = NULL;
	if (t->type == TK_NAME) {
		const char *s = t->text;
		n = node_new(p, N_CONST, line);
		if (!n)
			return NULL;
		if (!strcmp(s, "true") || !strcmp(s, "True"))
			n->cval = dtk_value_bool(1);
		else if (!strcmp(s, "false") || !strcmp(s, "False"))
			n->cval = dtk_value_bool(0);
		else if (!strcmp(s, "none") || !strcmp(s, "None"))
			n->cval = dtk_value_null();
		else {
			n->kind = N_NAME;
			n->name = dupstr(p, s, line);
			if (!n->name)
				goto fail;
			advance(p);
			return n;
		}
		if (!n->cval)
			goto oom;
		advance(p);
		return n;
	}
	if (t->type == TK_STRING) {
		dtk_buf b;
		dtk_buf_init(&b, TPL_MAX_OUTPUT);
		while (cur(p)->type == TK_STRING) {
			dtk_buf_add(&b, cur(p)->text, cur(p)->len);
			advance(p);
		}
		n = node_new(p, N_CONST, line);
		if (n && !b.failed)
			n->cval = dtk_value_strn(b.data ? b.data : "", b.len);
		dtk_buf_free(&b);
		if (!n)
			return NULL;
		if (!n->cval)
			goto oom;
		return n;
	}
	if (t->type == TK_INT || t->type == TK_FLOAT) {
		n = node_new(p, N_CONST, line);
		if (!n)
			return NULL;
		n->cval = t->type == TK_INT ? dtk_value_int(t->ival) : dtk_value_float(t->fval);
		if (!n->cval)
			goto oom;
		advance(p);
		return n;
	}
	if (is_op(t, '(')) {
		advance(p);
		if (is_op(cur(p), ')')) {
			pfail(p, line, "not supported: tuple literal");
			return NULL;
		}
		n = parse_expression(p, 1);
		if (!n)
			return NULL;
		if (is_op(cur(p), ',')) {
			pfail(p, line, "not supported: tuple literal");
			goto fail;
		}
		if (expect_op(p, ')', ")") != 0)
			goto fail;
		return n;
	}
	if (is_op(t, '[') || is_op(t, '{')) {
		int dict = is_op(t, '{');
		int close = dict ? '}' : ']';
		advance(p);
		n = node_new(p, dict ? N_DICT : N_LIST, line);
		if (!n)
			return NULL;
		while (!is_op(cur(p), close)) {
			if (n->args.n) {
				if (expect_op(p, ',', ",") != 0)
					goto fail;
				if (is_op(cur(p), close))
					break;
			}
			tpl_node *item = parse_expression(p, 1);
			if (!item || nodes_push(p, &n->args, item) != 0) {
				tpl_node_free(&item);
				goto fail;
			}
			if (dict) {
				if (expect_op(p, ':', ":") != 0)
					goto fail;
				item = parse_expression(p, 1);
				if (!item || nodes_push(p, &n->args, item) != 0) {
					tpl_node_free(&item);
					goto fail;
				}
			}
		}
		advance(p);
		return n;
	}
	unexpected(p);
	return NULL;
oom:
	pfail(p, line, "out of memory");
fail:
	tpl_node_free(&n);
	return NULL;
}

static tpl_node *unary_node(parser *p, int kind, unsigned line, tpl_node *a)
{
	if (!a)
		return NULL;
	tpl_node *n = node_new(p, kind, line);
	if (!n) {
		tpl_node_free(&a);
		return NULL;
	}
	n->a = a;
	return n;
}

static tpl_node *binary_node(parser *p, int kind, int op, unsigned line, tpl_node *a, tpl_node *b)
{
	if (!a || !b) {
		tpl_node_free(&a);
		tpl_node_free(&b);
		return NULL;
	}
	tpl_node *n = node_new(p, kind, line);
	if (!n) {
		tpl_node_free(&a);
		tpl_node_free(&b);
		return NULL;
	}
	n->op = op;
	n->a = a;
	n->b = b;
	return n;
}

static tpl_node *parse_unary(parser *p, int with_filter)
{
	if (enter(p) != 0)
		return NULL;
	unsigned line = cur(p)->line;
	tpl_node *node;
	if (is_op(cur(p), '-')) {
		advance(p);
		node = unary_node(p, N_NEG, line, parse_unary(p, 0));
	} else if (is_op(cur(p), '+')) {
		advance(p);
		node = unary_node(p, N_POS, line, parse_unary(p, 0));
	} else {
		node = parse_primary(p);
	}
	node = parse_postfix(p, node);
	if (with_filter)
		node = parse_filter_expr(p, node);
	p->depth--;
	return node;
}

static tpl_node *parse_pow(parser *p)
{
	tpl_node *left = parse_unary(p, 1);
	while (left && is_op(cur(p), OP_POW)) {
		unsigned line = cur(p)->line;
		advance(p);
		left = binary_node(p, N_BIN, OP_POW, line, left, parse_unary(p, 1));
	}
	return left;
}

static tpl_node *parse_math2(parser *p)
{
	tpl_node *left = parse_pow(p);
	while (left && (is_op(cur(p), '*') || is_op(cur(p), '/') || is_op(cur(p), OP_FLOORDIV) ||
			is_op(cur(p), '%'))) {
		unsigned line = cur(p)->line;
		int op = cur(p)->op;
		advance(p);
		left = binary_node(p, N_BIN, op, line, left, parse_pow(p));
	}
	return left;
}

static tpl_node *parse_concat(parser *p)
{
	unsigned line = cur(p)->line;
	tpl_node *first = parse_math2(p);
	if (!first || !is_op(cur(p), '~'))
		return first;
	tpl_node *n = node_new(p, N_CONCAT, line);
	if (!n || nodes_push(p, &n->args, first) != 0) {
		tpl_node_free(&first);
		tpl_node_free(&n);
		return NULL;
	}
	while (is_op(cur(p), '~')) {
		advance(p);
		tpl_node *item = parse_math2(p);
		if (!item || nodes_push(p, &n->args, item) != 0) {
			tpl_node_free(&item);
			tpl_node_free(&n);
			return NULL;
		}
	}
	return n;
}

static tpl_node *parse_math1(parser *p)
{
	tpl_node *left = parse_concat(p);
	while (left && (is_op(cur(p), '+') || is_op(cur(p), '-'))) {
		unsigned line = cur(p)->line;
		int op = cur(p)->op;
		advance(p);
		left = binary_node(p, N_BIN, op, line, left, parse_concat(p));
	}
	return left;
}

static tpl_node *parse_compare(parser *p)
{
	tpl_node *expr = parse_math1(p);
	int nops = 0;
	while (expr) {
		const tpl_tok *t = cur(p);
		unsigned line = t->line;
		int op;
		if (t->type == TK_OP && (t->op == OP_EQ || t->op == OP_NE || t->op == '<' ||
					 t->op == '>' || t->op == OP_LE || t->op == OP_GE)) {
			op = t->op;
			advance(p);
		} else if (is_name(t, "in")) {
			op = 'i';
			advance(p);
		} else if (is_name(t, "not") && is_name(peek(p, 1), "in")) {
			op = 'n';
			advance(p);
			advance(p);
		} else {
			break;
		}
		if (++nops > 1) {
			pfail(p, line, "not supported: chained comparison");
			tpl_node_free(&expr);
			return NULL;
		}
		expr = binary_node(p, N_CMP, op, line, expr, parse_math1(p));
	}
	return expr;
}

static tpl_node *parse_not(parser *p)
{
	if (is_name(cur(p), "not")) {
		unsigned line = cur(p)->line;
		advance(p);
		if (enter(p) != 0)
			return NULL;
		tpl_node *n = unary_node(p, N_NOT, line, parse_not(p));
		p->depth--;
		return n;
	}
	return parse_compare(p);
}

static tpl_node *parse_and(parser *p)
{
	tpl_node *left = parse_not(p);
	while (left && is_name(cur(p), "and")) {
		unsigned line = cur(p)->line;
		advance(p);
		left = binary_node(p, N_AND, 0, line, left, parse_not(p));
	}
	return left;
}

static tpl_node *parse_or(parser *p)
{
	tpl_node *left = parse_and(p);
	while (left && is_name(cur(p), "or")) {
		unsigned line = cur(p)->line;
		advance(p);
		left = binary_node(p, N_OR, 0, line, left, parse_and(p));
	}
	return left;
}

static tpl_node *parse_condexpr(parser *p)
{
	unsigned line = cur(p)->line;
	tpl_node *expr1 = parse_or(p);
	while (expr1 && is_name(cur(p), "if")) {
		advance(p);
		tpl_node *n = node_new(p, N_COND, line);
		if (!n) {
			tpl_node_free(&expr1);
			return NULL;
		}
		n->b = expr1;
		expr1 = n;
		if (!(n->a = parse_or(p)))
			goto fail;
		if (is_name(cur(p), "else")) {
			advance(p);
			if (enter(p) != 0)
				goto fail;
			n->c = parse_condexpr(p);
			p->depth--;
			if (!n->c)
				goto fail;
		}
	}
	return expr1;
fail:
	tpl_node_free(&expr1);
	return NULL;
}

static tpl_node *parse_expression(parser *p, int with_cond)
{
	if (enter(p) != 0)
		return NULL;
	tpl_node *n = with_cond ? parse_condexpr(p) : parse_or(p);
	p->depth--;
	return n;
}

/* An expression where Jinja would accept a tuple: a comma is refused. */
static tpl_node *parse_tuple_expr(parser *p, int with_cond)
{
	unsigned line = cur(p)->line;
	tpl_node *n = parse_expression(p, with_cond);
	if (n && is_op(cur(p), ',')) {
		pfail(p, line, "not supported: tuple");
		tpl_node_free(&n);
	}
	return n;
}

static int parse_body(parser *p, tpl_nodes *out, const char *const *ends, size_t nends,
		      const char *opener, unsigned opener_line);

/* After a statement's head: optional ":" then "%}". */
static int end_of_head(parser *p)
{
	if (is_op(cur(p), ':'))
		advance(p);
	return expect_type(p, TK_BLOCK_END, "end of statement block");
}

/* Consumes "{% name %}" for an end tag already seen by parse_body. */
static int close_tag(parser *p)
{
	advance(p); /* the name */
	return expect_type(p, TK_BLOCK_END, "end of statement block");
}

static tpl_node *parse_if(parser *p, unsigned line)
{
	static const char *const ends[] = {"elif", "else", "endif"};
	tpl_node *root = NULL, *node = NULL;
	for (;;) {
		tpl_node *n = node_new(p, S_IF, line);
		if (!n)
			goto fail;
		if (!root)
			root = n;
		else if (nodes_push(p, &node->ebody, n) != 0) {
			tpl_node_free(&n);
			goto fail;
		}
		node = n;
		advance(p); /* if / elif */
		if (!(n->a = parse_tuple_expr(p, 0)) || end_of_head(p) != 0)
			goto fail;
		if (parse_body(p, &n->body, ends, 3, "if", root->line) != 0)
			goto fail;
		line = cur(p)->line;
		if (is_name(cur(p), "elif"))
			continue;
		if (is_name(cur(p), "else")) {
			advance(p);
			if (end_of_head(p) != 0 ||
			    parse_body(p, &n->ebody, ends + 2, 1, "if", root->line) != 0)
				goto fail;
		}
		if (close_tag(p) != 0)
			goto fail;
		return root;
	}
fail:
	tpl_node_free(&root);
	return NULL;
}

static int is_special_name(const char *s)
{
	return !strcmp(s, "true") || !strcmp(s, "false") || !strcmp(s, "none") ||
	       !strcmp(s, "True") || !strcmp(s, "False") || !strcmp(s, "None") ||
	       !strcmp(s, "loop");
}

static tpl_node *parse_for(parser *p, unsigned line)
{
	static const char *const ends[] = {"endfor", "else"};
	tpl_node *n = node_new(p, S_FOR, line);
	if (!n)
		return NULL;
	advance(p); /* for */
	int paren = 0;
	if (is_op(cur(p), '(')) {
		paren = 1;
		advance(p);
	}
	for (int k = 0; k < 2; k++) {
		if (cur(p)->type != TK_NAME || is_special_name(cur(p)->text)) {
			if (cur(p)->type == TK_NAME && !strcmp(cur(p)->text, "loop"))
				pfail(p, cur(p)->line, "can't assign to special loop variable in for-loop target");
			else
				pfail(p, cur(p)->line, "expected a name as the for-loop target");
			goto fail;
		}
		char **slot = k == 0 ? &n->t1 : &n->t2;
		if (!(*slot = dupstr(p, cur(p)->text, line)))
			goto fail;
		advance(p);
		if (!is_op(cur(p), ','))
			break;
		advance(p);
		if (k == 1) {
			pfail(p, line, "not supported: more than two for-loop targets");
			goto fail;
		}
	}
	if (paren && expect_op(p, ')', ")") != 0)
		goto fail;
	if (!is_name(cur(p), "in")) {
		char d[80];
		describe(cur(p), d, sizeof(d));
		pfail(p, cur(p)->line, "expected 'in', got '%s'", d);
		goto fail;
	}
	advance(p);
	if (!(n->a = parse_tuple_expr(p, 0)))
		goto fail;
	if (is_name(cur(p), "if")) {
		advance(p);
		if (!(n->c = parse_tuple_expr(p, 1)))
			goto fail;
	}
	if (is_name(cur(p), "recursive")) {
		pfail(p, line, "not supported: recursive for loops");
		goto fail;
	}
	if (end_of_head(p) != 0 || parse_body(p, &n->body, ends, 2, "for", line) != 0)
		goto fail;
	if (is_name(cur(p), "else")) {
		advance(p);
		if (end_of_head(p) != 0 || parse_body(p, &n->ebody, ends, 1, "for", line) != 0)
			goto fail;
	}
	if (close_tag(p) != 0)
		goto fail;
	return n;
fail:
	tpl_node_free(&n);
	return NULL;
}

/* Statements until one of ends ("{% endif %}"...) whose name is left as the
 * current token, or the end of the template when ends is empty. */
static int parse_body(parser *p, tpl_nodes *out, const char *const *ends, size_t nends,
		      const char *opener, unsigned opener_line)
{
	if (++p->depth > TPL_MAX_DEPTH)
		return pfail(p, cur(p)->line, "blocks nested too deeply");
	int rc = -1;
	for (;;) {
		const tpl_tok *t = cur(p);
		unsigned line = t->line;
		tpl_node *n = NULL;
		if (t->type == TK_EOF) {
			if (nends) {
				pfail(p, line,
				      "unexpected end of template: the %s opened on line %u needs "
				      "{%% end%s %%}",
				      opener, opener_line, opener);
				goto out;
			}
			break;
		} else if (t->type == TK_DATA) {
			n = node_new(p, S_DATA, line);
			if (!n)
				goto out;
			n->name = malloc(t->len + 1);
			if (!n->name) {
				tpl_node_free(&n);
				pfail(p, line, "out of memory");
				goto out;
			}
			memcpy(n->name, t->text, t->len + 1);
			n->name_len = t->len;
			advance(p);
		} else if (t->type == TK_VAR_BEGIN) {
			advance(p);
			if (cur(p)->type == TK_VAR_END) {
				pfail(p, line, "expected an expression, got 'end of print statement'");
				goto out;
			}
			n = node_new(p, S_OUTPUT, line);
			if (!n)
				goto out;
			if (!(n->a = parse_tuple_expr(p, 1)) ||
			    expect_type(p, TK_VAR_END, "end of print statement") != 0) {
				tpl_node_free(&n);
				goto out;
			}
		} else if (t->type == TK_BLOCK_BEGIN) {
			advance(p);
			t = cur(p);
			if (t->type != TK_NAME) {
				pfail(p, line, "expected a tag name");
				goto out;
			}
			for (size_t k = 0; k < nends; k++)
				if (!strcmp(t->text, ends[k])) {
					rc = 0;
					goto out;
				}
			if (!strcmp(t->text, "if")) {
				n = parse_if(p, line);
			} else if (!strcmp(t->text, "for")) {
				n = parse_for(p, line);
			} else {
				for (size_t k = 0; k < sizeof(unsupported_tags) / sizeof(char *); k++)
					if (!strcmp(t->text, unsupported_tags[k])) {
						pfail(p, line, "not supported: {%% %s %%}", t->text);
						goto out;
					}
				for (size_t k = 0; k < sizeof(end_tags) / sizeof(char *); k++)
					if (!strcmp(t->text, end_tags[k])) {
						if (nends)
							pfail(p, line,
							      "unexpected {%% %s %%}: the %s opened "
							      "on line %u is still open",
							      t->text, opener, opener_line);
						else
							pfail(p, line, "unexpected {%% %s %%}",
							      t->text);
						goto out;
					}
				pfail(p, line, "not supported: unknown tag {%% %.60s %%}", t->text);
				goto out;
			}
			if (!n)
				goto out;
		} else {
			unexpected(p);
			goto out;
		}
		if (nodes_push(p, out, n) != 0) {
			tpl_node_free(&n);
			goto out;
		}
	}
	rc = 0;
out:
	p->depth--;
	return rc;
}

int tpl_parse(const tpl_toks *toks, tpl_nodes *out, char *errstr, size_t errstr_size)
{
	parser p = {.t = toks, .err = errstr, .errsz = errstr_size};
	if (parse_body(&p, out, NULL, 0, NULL, 0) != 0) {
		tpl_nodes_free(out);
		return -1;
	}
	return 0;
}
