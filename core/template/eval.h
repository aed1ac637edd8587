/* Private to core/template: the evaluator's runtime values, shared by
 * eval.c (expressions and statements) and filters.c (filters, methods,
 * %-formatting). A runtime value lives on the C stack of one render call;
 * nothing here is shared between threads. */
#ifndef DTK_TEMPLATE_EVAL_H
#define DTK_TEMPLATE_EVAL_H

#include "template/tpl_internal.h"

typedef struct tpl_loop {
	int64_t index0, length;
	const dtk_value *const *items;
} tpl_loop;

enum { RV_VAL, RV_UNDEF, RV_LOOP };

/* A runtime value: a dtk_value (borrowed from the variables or owned), an
 * Undefined with the message Jinja would give when it is used, or the loop
 * object. */
typedef struct rv {
	int kind;
	const dtk_value *v; /* RV_VAL */
	dtk_value *own;     /* set (== v) when this rv owns the value */
	const tpl_loop *loop;
	char umsg[160]; /* RV_UNDEF: "'x' is undefined" */
} rv;

typedef struct tpl_frame {
	const struct tpl_frame *up;
	const char *n1, *n2;
	const dtk_value *v1, *v2;
	const tpl_loop *loop;
} tpl_frame;

typedef struct ectx {
	const dtk_value *vars;
	int strict;
	char *err;
	size_t errsz;
	const tpl_frame *top;
} ectx;

int tpl_fail(ectx *c, unsigned line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

void rv_release(rv *r);
void rv_borrow(rv *r, const dtk_value *v);
/* Takes ownership of v; fails (out of memory) when v is NULL. */
int rv_own(ectx *c, unsigned line, rv *r, dtk_value *v);
void rv_undef(rv *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The value as a dtk_value owned by the caller (moved or copied). */
dtk_value *rv_take(rv *r);

/* Errors the way Jinja does when an Undefined is used by an operation. */
int tpl_undef_error(ectx *c, unsigned line, const rv *r);
/* str(r) appended to out; an Undefined is "" (an error when strict). */
int tpl_rv_str(ectx *c, unsigned line, const rv *r, dtk_buf *out);
int tpl_rv_truthy(ectx *c, unsigned line, const rv *r, int *truth);
/* "str", "int", ... or "Undefined" / "LoopContext". */
const char *tpl_rv_type(const rv *r);

/* Python binary arithmetic (op as in N_BIN) on two defined values. */
int tpl_arith(ectx *c, unsigned line, int op, const dtk_value *a, const dtk_value *b, rv *out);
/* Jinja's environment.getattr / getitem. */
int tpl_getattr(ectx *c, unsigned line, rv *obj, const char *name, rv *out);
int tpl_getitem(ectx *c, unsigned line, rv *obj, rv *key, rv *out);

/* Filters, methods and "fmt % args" (filters.c). args holds one pointer
 * per parameter, NULL when not given; for format, the positional then the
 * keyword arguments (names in n->kwnames). */
int tpl_filter(ectx *c, const tpl_node *n, rv *value, rv **args, size_t nargs, rv *out);
int tpl_method(ectx *c, const tpl_node *n, rv *obj, rv **args, size_t nargs, rv *out);
/* fmt % args: a tuple of nargs values (is_tuple), or the single operand
 * args[0] of the % operator; mapping serves %(key)s. */
int tpl_percent(ectx *c, unsigned line, const char *fmt, size_t flen, rv **args, size_t nargs,
		int is_tuple, const dtk_value *mapping, dtk_buf *out);
/* Python ==; and ordering (ord -1/0/1, 2 when unordered: NaN); -1 when the
 * types cannot be ordered. */
int tpl_py_eq(const dtk_value *a, const dtk_value *b);
int tpl_py_order(const dtk_value *a, const dtk_value *b, int *ord);
/* Python int(x) of a float: -1 with an error for inf, -2 for NaN
 * (ValueError), -3 beyond 64 bits. */
int tpl_float_to_int(double f, int64_t *out);

#endif
