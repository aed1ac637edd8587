/* Private to core/template: tokens, the AST, and the Python value helpers
 * the evaluator shares with the filters. Nothing here is thread-unsafe: the
 * AST is immutable once compiled and every helper is a pure function over
 * its arguments. */
#ifndef DTK_TEMPLATE_TPL_INTERNAL_H
#define DTK_TEMPLATE_TPL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "template/template.h"
#include "util/buf.h"
#include "util/value.h"

/* Render output and every intermediate string are bounded by this. */
#define TPL_MAX_OUTPUT ((size_t)16 << 20)
/* Nesting of expressions and blocks; deeper templates are refused. */
#define TPL_MAX_DEPTH 100

/* ---- lexer ---- */

enum tpl_tok_type {
	TK_EOF,
	TK_DATA,
	TK_VAR_BEGIN,
	TK_VAR_END,
	TK_BLOCK_BEGIN,
	TK_BLOCK_END,
	TK_NAME,
	TK_STRING,
	TK_INT,
	TK_FLOAT,
	TK_OP,
};

/* Operators: single characters stand for themselves; these are the
 * two-character ones. */
enum {
	OP_FLOORDIV = 256,
	OP_POW,
	OP_EQ,
	OP_NE,
	OP_LE,
	OP_GE,
};

typedef struct tpl_tok {
	int type;
	unsigned line;
	int op;      /* TK_OP */
	char *text;  /* TK_DATA, TK_NAME, TK_STRING: owned, NUL-terminated */
	size_t len;  /* length of text (strings may hold NULs) */
	int64_t ival;
	double fval;
} tpl_tok;

typedef struct tpl_toks {
	tpl_tok *v;
	size_t n, cap;
} tpl_toks;

/* Tokenizes text as Jinja's lexer does with default settings (newlines
 * normalized, one trailing newline dropped, whitespace control applied to
 * data). Fills toks (owned by the caller, freed with tpl_toks_free) and
 * returns 0, or -1 with errstr "line N: ...". */
int tpl_lex(const char *text, tpl_toks *toks, char *errstr, size_t errstr_size);
void tpl_toks_free(tpl_toks *toks);

/* ---- AST ---- */

enum tpl_node_kind {
	N_CONST,   /* cval */
	N_LIST,    /* args */
	N_DICT,    /* args: key, value, key, value... */
	N_NAME,    /* name */
	N_GETATTR, /* a.name */
	N_GETITEM, /* a[b] */
	N_SLICE,   /* a[args[0]:args[1]:args[2]], NULL parts omitted */
	N_METHOD,  /* a.name(args) */
	N_FILTER,  /* a|name(args, kw) ; op = filter id */
	N_TEST,    /* a is name(args) ; op = test id */
	N_NEG,
	N_POS,
	N_NOT,
	N_BIN,    /* op: + - * / % OP_FLOORDIV OP_POW */
	N_AND,
	N_OR,
	N_CONCAT, /* args joined with ~ */
	N_CMP,    /* op: OP_EQ OP_NE < > OP_LE OP_GE 'i' (in) 'n' (not in) */
	N_COND,   /* b if a else c (c may be NULL) */
	S_DATA,   /* name/name_len: literal text */
	S_OUTPUT, /* {{ a }} */
	S_IF,     /* a: test, body, ebody (elif becomes a nested S_IF) */
	S_FOR,    /* t1[, t2] in a [if c]: body, ebody */
};

typedef struct tpl_node tpl_node;
typedef struct tpl_nodes {
	tpl_node **v;
	size_t n, cap;
} tpl_nodes;

struct tpl_node {
	int kind;
	int op;
	unsigned line;
	dtk_value *cval;
	char *name;
	size_t name_len;
	tpl_node *a, *b, *c;
	tpl_nodes args;
	tpl_nodes kwargs;  /* values of keyword arguments */
	char **kwnames;    /* names, parallel to kwargs */
	tpl_nodes body, ebody;
	char *t1, *t2;
};

void tpl_node_free(tpl_node **n);
void tpl_nodes_free(tpl_nodes *ns);

/* Parses tokens into a list of statements (owned by the caller). Returns 0,
 * or -1 with errstr "line N: ...". */
int tpl_parse(const tpl_toks *toks, tpl_nodes *out, char *errstr, size_t errstr_size);

/* Filter and test tables, shared by parser (names) and evaluator (ids). */
enum tpl_filter_id {
	F_ROUND,
	F_INT,
	F_FLOAT,
	F_ABS,
	F_DEFAULT,
	F_UPPER,
	F_LOWER,
	F_LENGTH,
	F_JOIN,
	F_REPLACE,
	F_TRIM,
	F_FORMAT,
	F_DATETIME_FORMAT,
};

enum tpl_test_id {
	T_DEFINED,
	T_UNDEFINED,
	T_NONE,
	T_NUMBER,
	T_STRING,
	T_ODD,
	T_EVEN,
	T_TRUE,
	T_FALSE,
};

/* id for a filter or test name, or -1 when outside the subset */
int tpl_filter_lookup(const char *name);
int tpl_test_lookup(const char *name);
/* 1 when name is a method the evaluator knows (strftime, isoformat...). */
int tpl_method_known(const char *name);

/* ---- evaluator ---- */

/* Renders stmts into out. Returns 0, or -1 with errstr set. */
int tpl_eval(const tpl_nodes *stmts, const dtk_value *vars, int flags, dtk_buf *out,
	     char *errstr, size_t errstr_size);

/* ---- Python text helpers (pystr.c) ---- */

/* Appends str(v) / repr(v) as Python prints them. Return 0 or -1 when out
 * is full. */
int tpl_py_str(dtk_buf *out, const dtk_value *v);
int tpl_py_repr(dtk_buf *out, const dtk_value *v);
/* repr() of a str. ascii: ascii() instead of repr(). */
int tpl_py_repr_str(dtk_buf *out, const char *s, size_t len, int ascii);

/* UTF-8: decodes one code point at s (len > 0), returning its byte length;
 * an invalid byte decodes as itself (length 1). */
size_t tpl_utf8_next(const char *s, size_t len, uint32_t *cp);
int tpl_utf8_put(dtk_buf *out, uint32_t cp);
size_t tpl_utf8_count(const char *s, size_t len);
/* Python str.isspace() for one code point. */
int tpl_py_isspace(uint32_t cp);
/* A code point that may start (start=1) or continue a name: ASCII letters,
 * digits and "_", and non-ASCII letters (Python's \w, approximately). */
int tpl_py_isident(uint32_t cp, int start);
/* str.upper() / str.lower(). */
int tpl_py_case(dtk_buf *out, const char *s, size_t len, int upper);

/* datetime.strftime(fmt) for a DTK_V_DATETIME or DTK_V_DATE. */
int tpl_py_strftime(dtk_buf *out, const dtk_value *dt, const char *fmt, size_t fmtlen);
/* datetime.isoformat(sep) / date.isoformat(). */
int tpl_py_isoformat(dtk_buf *out, const dtk_value *dt, const char *sep, size_t seplen);

/* Python float(str) and int(str, base) syntax. Return 0 on success, -1
 * when the text is not a valid literal (ValueError), -2 when an integer
 * does not fit in 64 bits. */
int tpl_py_parse_float(const char *s, size_t len, double *out);
int tpl_py_parse_int(const char *s, size_t len, int base, int64_t *out);

/* round(x, nd) for a float, as Python's float.__round__. */
double tpl_py_round(double x, int64_t nd);

#endif
