/* The evaluator: expressions with Python semantics and Jinja's Undefined,
 * and the if/for statements. Reads the immutable AST and the caller's
 * variables; all state lives in the render call's stack. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/eval.h"
#include "util/pyfmt.h"

int tpl_fail(ectx *c, unsigned line, const char *fmt, ...)
{
	char msg[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errsz, "line %u: %s", line, msg);
	return -1;
}

void rv_release(rv *r)
{
	dtk_value_free(&r->own);
	r->v = NULL;
	r->kind = RV_UNDEF;
	r->loop = NULL;
	r->umsg[0] = '\0';
}

void rv_borrow(rv *r, const dtk_value *v)
{
	r->kind = RV_VAL;
	r->v = v;
	r->own = NULL;
	r->loop = NULL;
}

int rv_own(ectx *c, unsigned line, rv *r, dtk_value *v)
{
	r->kind = RV_VAL;
	r->v = v;
	r->own = v;
	r->loop = NULL;
	if (!v) {
		r->kind = RV_UNDEF;
		return tpl_fail(c, line, "out of memory");
	}
	return 0;
}

void rv_undef(rv *r, const char *fmt, ...)
{
	r->kind = RV_UNDEF;
	r->v = NULL;
	r->own = NULL;
	r->loop = NULL;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->umsg, sizeof(r->umsg), fmt, ap);
	va_end(ap);
}

dtk_value *rv_take(rv *r)
{
	dtk_value *v;
	if (r->own) {
		v = r->own;
		r->own = NULL;
	} else {
		v = dtk_value_copy(r->v);
	}
	r->v = NULL;
	r->kind = RV_UNDEF;
	return v;
}

int tpl_undef_error(ectx *c, unsigned line, const rv *r)
{
	return tpl_fail(c, line, "%s", r->umsg);
}

const char *tpl_rv_type(const rv *r)
{
	if (r->kind == RV_UNDEF)
		return "Undefined";
	if (r->kind == RV_LOOP)
		return "LoopContext";
	return dtk_value_type_name(r->v);
}

int tpl_rv_str(ectx *c, unsigned line, const rv *r, dtk_buf *out)
{
	if (r->kind == RV_UNDEF)
		return c->strict ? tpl_undef_error(c, line, r) : 0;
	if (r->kind == RV_LOOP)
		dtk_buf_printf(out, "<LoopContext %lld/%lld>", (long long)r->loop->index0 + 1,
			       (long long)r->loop->length);
	else
		tpl_py_str(out, r->v);
	if (out->failed)
		return tpl_fail(c, line, "output exceeds %zu bytes", TPL_MAX_OUTPUT);
	return 0;
}

int tpl_rv_truthy(ectx *c, unsigned line, const rv *r, int *truth)
{
	if (r->kind == RV_UNDEF) {
		*truth = 0;
		return c->strict ? tpl_undef_error(c, line, r) : 0;
	}
	*truth = r->kind == RV_LOOP ? 1 : dtk_value_truthy(r->v);
	return 0;
}

/* ---- Python numbers and comparisons ---- */

static int is_intlike(const dtk_value *v)
{
	return v->type == DTK_V_INT || v->type == DTK_V_BOOL;
}

static int is_number(const dtk_value *v)
{
	return is_intlike(v) || v->type == DTK_V_FLOAT;
}

static int64_t as_int(const dtk_value *v)
{
	return v->type == DTK_V_BOOL ? v->u.b : v->u.i;
}

static double as_float(const dtk_value *v)
{
	return v->type == DTK_V_FLOAT ? v->u.f : (double)as_int(v);
}

int tpl_float_to_int(double f, int64_t *out)
{
	if (isnan(f))
		return -2;
	if (isinf(f))
		return -1;
	double t = trunc(f);
	if (t >= 9223372036854775808.0 || t < -9223372036854775808.0)
		return -3;
	*out = (int64_t)t;
	return 0;
}

/* Exact comparison of an int with a float, as Python does. */
static int cmp_int_float(int64_t i, double f)
{
	if (isnan(f))
		return 2;
	if (f >= 9223372036854775808.0)
		return -1;
	if (f < -9223372036854775808.0)
		return 1;
	double fl = floor(f);
	int64_t fi = (int64_t)fl;
	if (i < fi)
		return -1;
	if (i > fi)
		return 1;
	return f > fl ? -1 : 0;
}

static int num_order(const dtk_value *a, const dtk_value *b)
{
	if (is_intlike(a) && is_intlike(b)) {
		int64_t x = as_int(a), y = as_int(b);
		return x < y ? -1 : x > y;
	}
	if (is_intlike(a))
		return cmp_int_float(as_int(a), b->u.f);
	if (is_intlike(b)) {
		int r = cmp_int_float(as_int(b), a->u.f);
		return r == 2 ? 2 : -r;
	}
	double x = a->u.f, y = b->u.f;
	if (isnan(x) || isnan(y))
		return 2;
	return x < y ? -1 : x > y;
}

/* UTC microseconds of a datetime (aware ones shifted by their offset). */
static int64_t dt_instant(const dtk_value *v)
{
	int64_t s = v->u.dt.secs;
	if (v->type == DTK_V_DATETIME && v->u.dt.has_tz)
		s -= (int64_t)v->u.dt.tz_min * 60;
	return s * 1000000 + (v->type == DTK_V_DATETIME ? v->u.dt.usec : 0);
}

int tpl_py_eq(const dtk_value *a, const dtk_value *b)
{
	return dtk_value_equal(a, b);
}

int tpl_py_order(const dtk_value *a, const dtk_value *b, int *ord)
{
	if (is_number(a) && is_number(b)) {
		*ord = num_order(a, b);
		return 0;
	}
	if (a->type != b->type)
		return -1;
	switch (a->type) {
	case DTK_V_STR: {
		size_t n = a->u.str.len < b->u.str.len ? a->u.str.len : b->u.str.len;
		int r = memcmp(a->u.str.s, b->u.str.s, n);
		if (r == 0)
			r = a->u.str.len < b->u.str.len ? -1 : a->u.str.len > b->u.str.len;
		*ord = r < 0 ? -1 : r > 0;
		return 0;
	}
	case DTK_V_LIST:
		for (size_t i = 0; i < a->u.list.n && i < b->u.list.n; i++)
			if (!tpl_py_eq(a->u.list.items[i], b->u.list.items[i]))
				return tpl_py_order(a->u.list.items[i], b->u.list.items[i], ord);
		*ord = a->u.list.n < b->u.list.n ? -1 : a->u.list.n > b->u.list.n;
		return 0;
	case DTK_V_DATETIME:
		if (a->u.dt.has_tz != b->u.dt.has_tz)
			return -1;
		/* fall through */
	case DTK_V_DATE: {
		int64_t x = dt_instant(a), y = dt_instant(b);
		*ord = x < y ? -1 : x > y;
		return 0;
	}
	default:
		return -1;
	}
}

static const char *op_name(int op)
{
	switch (op) {
	case OP_FLOORDIV:
		return "//";
	case OP_POW:
		return "**";
	case OP_EQ:
		return "==";
	case OP_NE:
		return "!=";
	case OP_LE:
		return "<=";
	case OP_GE:
		return ">=";
	case '+':
		return "+";
	case '-':
		return "-";
	case '*':
		return "*";
	case '/':
		return "/";
	case '%':
		return "%";
	case '<':
		return "<";
	case '>':
		return ">";
	default:
		return "?";
	}
}

static int overflow(ectx *c, unsigned line)
{
	return tpl_fail(c, line, "integer overflow: results beyond 64 bits are not supported");
}

static int int_arith(ectx *c, unsigned line, int op, int64_t x, int64_t y, rv *out)
{
	int64_t r;
	switch (op) {
	case '+':
		if (__builtin_add_overflow(x, y, &r))
			return overflow(c, line);
		break;
	case '-':
		if (__builtin_sub_overflow(x, y, &r))
			return overflow(c, line);
		break;
	case '*':
		if (__builtin_mul_overflow(x, y, &r))
			return overflow(c, line);
		break;
	case '/':
		if (y == 0)
			return tpl_fail(c, line, "ZeroDivisionError: division by zero");
		return rv_own(c, line, out, dtk_value_float((double)x / (double)y));
	case OP_FLOORDIV:
		if (y == 0)
			return tpl_fail(c, line,
					"ZeroDivisionError: integer division or modulo by zero");
		if (x == INT64_MIN && y == -1)
			return overflow(c, line);
		r = x / y;
		if (x % y != 0 && ((x < 0) != (y < 0)))
			r--;
		break;
	case '%':
		if (y == 0)
			return tpl_fail(c, line, "ZeroDivisionError: integer modulo by zero");
		if (y == -1) {
			r = 0;
			break;
		}
		r = x % y;
		if (r != 0 && ((r < 0) != (y < 0)))
			r += y;
		break;
	case OP_POW:
		if (y < 0) {
			if (x == 0)
				return tpl_fail(c, line, "ZeroDivisionError: 0.0 cannot be raised "
							 "to a negative power");
			return rv_own(c, line, out, dtk_value_float(pow((double)x, (double)y)));
		}
		r = 1;
		{
			int64_t base = x, e = y;
			while (e > 0) {
				if (e & 1) {
					if (__builtin_mul_overflow(r, base, &r))
						return overflow(c, line);
				}
				e >>= 1;
				if (e && __builtin_mul_overflow(base, base, &base))
					return overflow(c, line);
			}
		}
		break;
	default:
		return tpl_fail(c, line, "unknown operator");
	}
	return rv_own(c, line, out, dtk_value_int(r));
}

static int float_arith(ectx *c, unsigned line, int op, double x, double y, rv *out)
{
	double r;
	switch (op) {
	case '+':
		r = x + y;
		break;
	case '-':
		r = x - y;
		break;
	case '*':
		r = x * y;
		break;
	case '/':
		if (y == 0.0)
			return tpl_fail(c, line, "ZeroDivisionError: float division by zero");
		r = x / y;
		break;
	case OP_FLOORDIV:
	case '%': {
		if (y == 0.0)
			return tpl_fail(c, line, "ZeroDivisionError: float %s",
					op == '%' ? "modulo" : "floor division by zero");
		/* CPython's float_divmod */
		double mod = fmod(x, y);
		double div = (x - mod) / y;
		if (mod != 0.0) {
			if ((y < 0) != (mod < 0)) {
				mod += y;
				div -= 1.0;
			}
		} else {
			mod = copysign(0.0, y);
		}
		double fd;
		if (div != 0.0) {
			fd = floor(div);
			if (div - fd > 0.5)
				fd += 1.0;
		} else {
			fd = copysign(0.0, x / y);
		}
		r = op == '%' ? mod : fd;
		break;
	}
	case OP_POW:
		if (x == 0.0 && y < 0.0)
			return tpl_fail(c, line,
					"ZeroDivisionError: 0.0 cannot be raised to a negative power");
		if (x < 0.0 && isfinite(x) && isfinite(y) && y != floor(y))
			return tpl_fail(c, line, "not supported: complex result of ** (negative "
						 "base, fractional exponent)");
		r = pow(x, y);
		if (isinf(r) && isfinite(x) && isfinite(y))
			return tpl_fail(c, line, "OverflowError: numerical result out of range");
		break;
	default:
		return tpl_fail(c, line, "unknown operator");
	}
	return rv_own(c, line, out, dtk_value_float(r));
}

static int repeat(ectx *c, unsigned line, const dtk_value *seq, int64_t count, rv *out)
{
	if (count < 0)
		count = 0;
	if (seq->type == DTK_V_STR) {
		if (seq->u.str.len && (uint64_t)count > TPL_MAX_OUTPUT / seq->u.str.len)
			return tpl_fail(c, line, "string repetition exceeds %zu bytes",
					TPL_MAX_OUTPUT);
		size_t n = seq->u.str.len * (size_t)count;
		char *s = malloc(n + 1);
		if (!s)
			return tpl_fail(c, line, "out of memory");
		for (int64_t i = 0; i < count; i++)
			memcpy(s + (size_t)i * seq->u.str.len, seq->u.str.s, seq->u.str.len);
		s[n] = '\0';
		int rc = rv_own(c, line, out, dtk_value_strn(s, n));
		free(s);
		return rc;
	}
	if (seq->u.list.n && (uint64_t)count > (TPL_MAX_OUTPUT / 8) / seq->u.list.n)
		return tpl_fail(c, line, "list repetition too large");
	dtk_value *l = dtk_value_list();
	for (int64_t i = 0; l && i < count; i++)
		for (size_t k = 0; l && k < seq->u.list.n; k++) {
			dtk_value *item = dtk_value_copy(seq->u.list.items[k]);
			if (!item || dtk_value_list_push(l, item) != 0) {
				dtk_value_free(&item);
				dtk_value_free(&l);
			}
		}
	return rv_own(c, line, out, l);
}

int tpl_arith(ectx *c, unsigned line, int op, const dtk_value *a, const dtk_value *b, rv *out)
{
	if (is_number(a) && is_number(b)) {
		if (is_intlike(a) && is_intlike(b))
			return int_arith(c, line, op, as_int(a), as_int(b), out);
		return float_arith(c, line, op, as_float(a), as_float(b), out);
	}
	if (op == '+' && a->type == DTK_V_STR && b->type == DTK_V_STR) {
		if (a->u.str.len + b->u.str.len > TPL_MAX_OUTPUT)
			return tpl_fail(c, line, "string exceeds %zu bytes", TPL_MAX_OUTPUT);
		dtk_buf s;
		dtk_buf_init(&s, 0);
		dtk_buf_add(&s, a->u.str.s, a->u.str.len);
		dtk_buf_add(&s, b->u.str.s, b->u.str.len);
		int rc = s.failed ? tpl_fail(c, line, "out of memory")
				  : rv_own(c, line, out, dtk_value_strn(dtk_buf_str(&s), s.len));
		dtk_buf_free(&s);
		return rc;
	}
	if (op == '+' && a->type == DTK_V_LIST && b->type == DTK_V_LIST) {
		dtk_value *l = dtk_value_copy(a);
		for (size_t k = 0; l && k < b->u.list.n; k++) {
			dtk_value *item = dtk_value_copy(b->u.list.items[k]);
			if (!item || dtk_value_list_push(l, item) != 0) {
				dtk_value_free(&item);
				dtk_value_free(&l);
			}
		}
		return rv_own(c, line, out, l);
	}
	if (op == '*') {
		if ((a->type == DTK_V_STR || a->type == DTK_V_LIST) && is_intlike(b))
			return repeat(c, line, a, as_int(b), out);
		if ((b->type == DTK_V_STR || b->type == DTK_V_LIST) && is_intlike(a))
			return repeat(c, line, b, as_int(a), out);
		if (a->type == DTK_V_STR || a->type == DTK_V_LIST || b->type == DTK_V_STR ||
		    b->type == DTK_V_LIST)
			return tpl_fail(c, line, "TypeError: can't multiply sequence by non-int of "
						 "type '%s'",
					dtk_value_type_name(a->type == DTK_V_STR ||
									a->type == DTK_V_LIST
								? b
								: a));
	}
	if (op == '+' && (a->type == DTK_V_STR || a->type == DTK_V_LIST))
		return tpl_fail(c, line, "TypeError: can only concatenate %s (not \"%s\") to %s",
				dtk_value_type_name(a), dtk_value_type_name(b),
				dtk_value_type_name(a));
	return tpl_fail(c, line, "TypeError: unsupported operand type(s) for %s: '%s' and '%s'",
			op_name(op), dtk_value_type_name(a), dtk_value_type_name(b));
}

/* ---- attribute and item access ---- */

/* Jinja's object_type_repr for the messages of Undefined. */
static const char *obj_repr(const rv *r)
{
	if (r->kind == RV_LOOP)
		return "jinja2.runtime.LoopContext object";
	switch (r->v->type) {
	case DTK_V_NULL:
		return "None";
	case DTK_V_BOOL:
		return "bool object";
	case DTK_V_INT:
		return "int object";
	case DTK_V_FLOAT:
		return "float object";
	case DTK_V_STR:
		return "str object";
	case DTK_V_LIST:
		return "list object";
	case DTK_V_MAP:
		return "dict object";
	case DTK_V_DATE:
		return "datetime.date object";
	case DTK_V_DATETIME:
		return "datetime.datetime object";
	}
	return "object";
}

/* A child of obj as out: borrowed when obj is, copied when obj is owned
 * (obj is released by the caller). */
static int child(ectx *c, unsigned line, const rv *obj, const dtk_value *v, rv *out)
{
	if (obj->own)
		return rv_own(c, line, out, dtk_value_copy(v));
	rv_borrow(out, v);
	return 0;
}

static int no_attr(const rv *obj, const char *name, rv *out)
{
	const char *o = obj_repr(obj);
	if (obj->kind == RV_VAL && obj->v->type == DTK_V_NULL)
		rv_undef(out, "%s has no attribute '%.80s'", o, name);
	else
		rv_undef(out, "'%s' has no attribute '%.80s'", o, name);
	return 0;
}

static int loop_attr(ectx *c, unsigned line, const tpl_loop *l, const char *name, rv *out)
{
	int64_t i = l->index0, n = l->length;
	if (!strcmp(name, "index"))
		return rv_own(c, line, out, dtk_value_int(i + 1));
	if (!strcmp(name, "index0"))
		return rv_own(c, line, out, dtk_value_int(i));
	if (!strcmp(name, "revindex"))
		return rv_own(c, line, out, dtk_value_int(n - i));
	if (!strcmp(name, "revindex0"))
		return rv_own(c, line, out, dtk_value_int(n - i - 1));
	if (!strcmp(name, "first"))
		return rv_own(c, line, out, dtk_value_bool(i == 0));
	if (!strcmp(name, "last"))
		return rv_own(c, line, out, dtk_value_bool(i == n - 1));
	if (!strcmp(name, "length"))
		return rv_own(c, line, out, dtk_value_int(n));
	if (!strcmp(name, "depth"))
		return rv_own(c, line, out, dtk_value_int(1));
	if (!strcmp(name, "depth0"))
		return rv_own(c, line, out, dtk_value_int(0));
	if (!strcmp(name, "previtem")) {
		if (i == 0)
			rv_undef(out, "there is no previous item");
		else
			rv_borrow(out, l->items[i - 1]);
		return 0;
	}
	if (!strcmp(name, "nextitem")) {
		if (i + 1 >= n)
			rv_undef(out, "there is no next item");
		else
			rv_borrow(out, l->items[i + 1]);
		return 0;
	}
	rv tmp = {.kind = RV_LOOP, .loop = l};
	return no_attr(&tmp, name, out);
}

int tpl_getattr(ectx *c, unsigned line, rv *obj, const char *name, rv *out)
{
	if (obj->kind == RV_UNDEF)
		return tpl_undef_error(c, line, obj);
	if (obj->kind == RV_LOOP)
		return loop_attr(c, line, obj->loop, name, out);
	const dtk_value *v = obj->v;
	if (v->type == DTK_V_MAP) {
		const dtk_value *m = dtk_value_map_get(v, name);
		if (m)
			return child(c, line, obj, m, out);
	} else if (v->type == DTK_V_DATETIME || v->type == DTK_V_DATE) {
		int y, mo, d;
		int64_t secs = v->u.dt.secs;
		int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
		int64_t rem = secs - days * 86400;
		dtk_pyfmt_civil(days, &y, &mo, &d);
		int64_t val = -1;
		if (!strcmp(name, "year"))
			val = y;
		else if (!strcmp(name, "month"))
			val = mo;
		else if (!strcmp(name, "day"))
			val = d;
		else if (v->type == DTK_V_DATETIME) {
			if (!strcmp(name, "hour"))
				val = rem / 3600;
			else if (!strcmp(name, "minute"))
				val = rem / 60 % 60;
			else if (!strcmp(name, "second"))
				val = rem % 60;
			else if (!strcmp(name, "microsecond"))
				val = v->u.dt.usec;
		}
		if (val >= 0)
			return rv_own(c, line, out, dtk_value_int(val));
	}
	return no_attr(obj, name, out);
}

/* Python's index normalisation; 0 when out of range. */
static int norm_index(int64_t i, size_t n, size_t *out)
{
	if (i < 0)
		i += (int64_t)n;
	if (i < 0 || (uint64_t)i >= n)
		return 0;
	*out = (size_t)i;
	return 1;
}

/* Byte offset of code point number idx in s, or len. */
static size_t cp_offset(const char *s, size_t len, size_t idx)
{
	size_t off = 0;
	for (size_t k = 0; k < idx && off < len; k++) {
		uint32_t cp;
		off += tpl_utf8_next(s + off, len - off, &cp);
	}
	return off;
}

static void no_element(const rv *obj, const rv *key, rv *out)
{
	dtk_buf b;
	dtk_buf_init(&b, 100);
	if (key->kind == RV_VAL)
		tpl_py_repr(&b, key->v);
	else
		dtk_buf_adds(&b, key->kind == RV_LOOP ? "<LoopContext>" : "Undefined");
	rv_undef(out, "%s has no element %s", obj_repr(obj), dtk_buf_str(&b));
	dtk_buf_free(&b);
}

int tpl_getitem(ectx *c, unsigned line, rv *obj, rv *key, rv *out)
{
	if (obj->kind == RV_UNDEF)
		return tpl_undef_error(c, line, obj);
	const dtk_value *k = key->kind == RV_VAL ? key->v : NULL;
	if (obj->kind == RV_VAL) {
		const dtk_value *v = obj->v;
		if (v->type == DTK_V_MAP && k && k->type != DTK_V_LIST && k->type != DTK_V_MAP) {
			for (size_t i = 0; i < v->u.map.n; i++)
				if (tpl_py_eq(v->u.map.items[i].key, k))
					return child(c, line, obj, v->u.map.items[i].val, out);
		} else if ((v->type == DTK_V_LIST || v->type == DTK_V_STR) && k && is_intlike(k)) {
			size_t idx;
			if (v->type == DTK_V_LIST) {
				if (norm_index(as_int(k), v->u.list.n, &idx))
					return child(c, line, obj, v->u.list.items[idx], out);
			} else {
				size_t n = tpl_utf8_count(v->u.str.s, v->u.str.len);
				if (norm_index(as_int(k), n, &idx)) {
					size_t off = cp_offset(v->u.str.s, v->u.str.len, idx);
					uint32_t cp;
					size_t l = tpl_utf8_next(v->u.str.s + off, v->u.str.len - off,
								 &cp);
					return rv_own(c, line, out,
						      dtk_value_strn(v->u.str.s + off, l));
				}
			}
		}
	}
	if (k && k->type == DTK_V_STR) {
		if (obj->kind == RV_VAL && obj->v->type == DTK_V_MAP)
			return no_attr(obj, k->u.str.s, out);
		return tpl_getattr(c, line, obj, k->u.str.s, out);
	}
	no_element(obj, key, out);
	return 0;
}

/* Python's PySlice_AdjustIndices. */
static void slice_indices(int64_t len, const int64_t *parts, const int *given, int64_t *start,
			  int64_t *stop, int64_t *step)
{
	*step = given[2] ? parts[2] : 1;
	int64_t lo_def = *step < 0 ? len - 1 : 0, hi_def = *step < 0 ? -1 : len;
	for (int k = 0; k < 2; k++) {
		int64_t *dst = k == 0 ? start : stop;
		if (!given[k]) {
			*dst = k == 0 ? lo_def : hi_def;
			continue;
		}
		int64_t x = parts[k];
		if (x < 0) {
			x += len;
			if (x < 0)
				x = *step < 0 ? -1 : 0;
		} else if (x >= len) {
			x = *step < 0 ? len - 1 : len;
		}
		*dst = x;
	}
}

static int eval(ectx *c, const tpl_node *n, rv *out);

static int eval_slice(ectx *c, const tpl_node *n, rv *out)
{
	rv obj = {0};
	rv parts[3] = {{0}};
	int rc = -1;
	int64_t iv[3] = {0};
	int given[3] = {0};
	if (eval(c, n->a, &obj) != 0)
		goto out;
	if (obj.kind == RV_UNDEF) {
		rc = tpl_undef_error(c, n->line, &obj);
		goto out;
	}
	int ok = obj.kind == RV_VAL &&
		 (obj.v->type == DTK_V_LIST || obj.v->type == DTK_V_STR);
	for (int k = 0; k < 3; k++) {
		if (!n->args.v[k])
			continue;
		if (eval(c, n->args.v[k], &parts[k]) != 0)
			goto out;
		if (parts[k].kind == RV_VAL && parts[k].v->type == DTK_V_NULL)
			continue;
		if (parts[k].kind != RV_VAL || !is_intlike(parts[k].v))
			ok = 0;
		else {
			iv[k] = as_int(parts[k].v);
			given[k] = 1;
		}
	}
	if (given[2] && iv[2] == 0) {
		rc = tpl_fail(c, n->line, "ValueError: slice step cannot be zero");
		goto out;
	}
	if (!ok) {
		rv_undef(out, "%s has no element slice", obj_repr(&obj));
		rc = 0;
		goto out;
	}
	const dtk_value *v = obj.v;
	int64_t len = v->type == DTK_V_LIST ? (int64_t)v->u.list.n
					    : (int64_t)tpl_utf8_count(v->u.str.s, v->u.str.len);
	int64_t start, stop, step;
	slice_indices(len, iv, given, &start, &stop, &step);
	if (v->type == DTK_V_LIST) {
		dtk_value *l = dtk_value_list();
		for (int64_t i = start; l && (step > 0 ? i < stop : i > stop); i += step) {
			dtk_value *item = dtk_value_copy(v->u.list.items[i]);
			if (!item || dtk_value_list_push(l, item) != 0) {
				dtk_value_free(&item);
				dtk_value_free(&l);
			}
		}
		rc = rv_own(c, n->line, out, l);
	} else {
		/* offsets of every code point, then pick */
		size_t *offs = malloc(((size_t)len + 1) * sizeof(size_t));
		dtk_buf b;
		dtk_buf_init(&b, TPL_MAX_OUTPUT);
		if (!offs) {
			rc = tpl_fail(c, n->line, "out of memory");
			goto out;
		}
		size_t off = 0;
		for (int64_t i = 0; i < len; i++) {
			offs[i] = off;
			uint32_t cp;
			off += tpl_utf8_next(v->u.str.s + off, v->u.str.len - off, &cp);
		}
		offs[len] = off;
		for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
			dtk_buf_add(&b, v->u.str.s + offs[i], offs[i + 1] - offs[i]);
		free(offs);
		rc = b.failed ? tpl_fail(c, n->line, "out of memory")
			      : rv_own(c, n->line, out, dtk_value_strn(dtk_buf_str(&b), b.len));
		dtk_buf_free(&b);
	}
out:
	rv_release(&obj);
	for (int k = 0; k < 3; k++)
		rv_release(&parts[k]);
	return rc;
}

/* ---- expressions ---- */

static int eval_name(ectx *c, const tpl_node *n, rv *out)
{
	for (const tpl_frame *f = c->top; f; f = f->up) {
		if (f->n1 && !strcmp(f->n1, n->name)) {
			rv_borrow(out, f->v1);
			return 0;
		}
		if (f->n2 && !strcmp(f->n2, n->name)) {
			rv_borrow(out, f->v2);
			return 0;
		}
		if (f->loop && !strcmp(n->name, "loop")) {
			memset(out, 0, sizeof(*out));
			out->kind = RV_LOOP;
			out->loop = f->loop;
			return 0;
		}
	}
	const dtk_value *v = dtk_value_map_get(c->vars, n->name);
	if (v) {
		rv_borrow(out, v);
		return 0;
	}
	rv_undef(out, "'%.100s' is undefined", n->name);
	return 0;
}

/* "x in seq" with Python's rules; *res set. */
static int eval_in(ectx *c, unsigned line, const rv *x, const rv *seq, int *res)
{
	*res = 0;
	if (seq->kind == RV_UNDEF) {
		if (c->strict)
			return tpl_undef_error(c, line, seq);
		return 0;
	}
	if (seq->kind == RV_LOOP)
		return tpl_fail(c, line, "TypeError: argument of type 'LoopContext' is not iterable");
	const dtk_value *s = seq->v;
	if (x->kind == RV_UNDEF && c->strict)
		return tpl_undef_error(c, line, x);
	switch (s->type) {
	case DTK_V_STR:
		if (x->kind != RV_VAL || x->v->type != DTK_V_STR)
			return tpl_fail(c, line,
					"TypeError: 'in <string>' requires string as left operand, "
					"not %s",
					tpl_rv_type(x));
		if (x->v->u.str.len == 0) {
			*res = 1;
			return 0;
		}
		for (size_t i = 0; i + x->v->u.str.len <= s->u.str.len; i++)
			if (!memcmp(s->u.str.s + i, x->v->u.str.s, x->v->u.str.len)) {
				*res = 1;
				break;
			}
		return 0;
	case DTK_V_LIST:
		if (x->kind != RV_VAL)
			return 0;
		for (size_t i = 0; i < s->u.list.n; i++)
			if (tpl_py_eq(s->u.list.items[i], x->v)) {
				*res = 1;
				break;
			}
		return 0;
	case DTK_V_MAP:
		if (x->kind != RV_VAL)
			return 0;
		if (x->v->type == DTK_V_LIST || x->v->type == DTK_V_MAP)
			return tpl_fail(c, line, "TypeError: unhashable type: '%s'",
					dtk_value_type_name(x->v));
		for (size_t i = 0; i < s->u.map.n; i++)
			if (tpl_py_eq(s->u.map.items[i].key, x->v)) {
				*res = 1;
				break;
			}
		return 0;
	default:
		return tpl_fail(c, line, "TypeError: argument of type '%s' is not iterable",
				dtk_value_type_name(s));
	}
}

static int eval_cmp(ectx *c, const tpl_node *n, rv *a, rv *b, rv *out)
{
	unsigned line = n->line;
	int op = n->op;
	int res;
	if (op == 'i' || op == 'n') {
		if (eval_in(c, line, a, b, &res) != 0)
			return -1;
		return rv_own(c, line, out, dtk_value_bool(op == 'i' ? res : !res));
	}
	if (op == OP_EQ || op == OP_NE) {
		if (c->strict && (a->kind == RV_UNDEF || b->kind == RV_UNDEF))
			return tpl_undef_error(c, line, a->kind == RV_UNDEF ? a : b);
		if (a->kind == RV_VAL && b->kind == RV_VAL)
			res = tpl_py_eq(a->v, b->v);
		else if (a->kind == RV_LOOP || b->kind == RV_LOOP)
			res = a->kind == b->kind && a->loop == b->loop;
		else
			res = a->kind == b->kind;
		return rv_own(c, line, out, dtk_value_bool(op == OP_EQ ? res : !res));
	}
	if (a->kind == RV_UNDEF)
		return tpl_undef_error(c, line, a);
	if (b->kind == RV_UNDEF)
		return tpl_undef_error(c, line, b);
	int ord;
	if (a->kind != RV_VAL || b->kind != RV_VAL || tpl_py_order(a->v, b->v, &ord) != 0)
		return tpl_fail(c, line,
				"TypeError: '%s' not supported between instances of '%s' and '%s'",
				op_name(op), tpl_rv_type(a), tpl_rv_type(b));
	switch (op) {
	case '<':
		res = ord == -1;
		break;
	case '>':
		res = ord == 1;
		break;
	case OP_LE:
		res = ord == -1 || ord == 0;
		break;
	default:
		res = ord == 1 || ord == 0;
		break;
	}
	return rv_own(c, line, out, dtk_value_bool(res));
}

static int eval_bin(ectx *c, const tpl_node *n, rv *a, rv *b, rv *out)
{
	if (n->op == '%' && a->kind == RV_VAL && a->v->type == DTK_V_STR) {
		dtk_buf s;
		dtk_buf_init(&s, TPL_MAX_OUTPUT);
		const dtk_value *mapping = b->kind == RV_VAL && b->v->type == DTK_V_MAP ? b->v : NULL;
		rv *args[1] = {b};
		int rc = tpl_percent(c, n->line, a->v->u.str.s, a->v->u.str.len, args, 1, 0, mapping,
				     &s);
		if (rc == 0)
			rc = rv_own(c, n->line, out, dtk_value_strn(dtk_buf_str(&s), s.len));
		dtk_buf_free(&s);
		return rc;
	}
	if (a->kind == RV_UNDEF)
		return tpl_undef_error(c, n->line, a);
	if (b->kind == RV_UNDEF)
		return tpl_undef_error(c, n->line, b);
	if (a->kind != RV_VAL || b->kind != RV_VAL)
		return tpl_fail(c, n->line, "TypeError: unsupported operand type(s) for %s: '%s' and '%s'",
				op_name(n->op), tpl_rv_type(a), tpl_rv_type(b));
	return tpl_arith(c, n->line, n->op, a->v, b->v, out);
}

static int eval_unary(ectx *c, const tpl_node *n, rv *a, rv *out)
{
	if (n->kind == N_NOT) {
		int t;
		if (tpl_rv_truthy(c, n->line, a, &t) != 0)
			return -1;
		return rv_own(c, n->line, out, dtk_value_bool(!t));
	}
	if (a->kind == RV_UNDEF)
		return tpl_undef_error(c, n->line, a);
	if (a->kind != RV_VAL || !is_number(a->v))
		return tpl_fail(c, n->line, "TypeError: bad operand type for unary %c: '%s'",
				n->kind == N_NEG ? '-' : '+', tpl_rv_type(a));
	const dtk_value *v = a->v;
	if (v->type == DTK_V_FLOAT)
		return rv_own(c, n->line, out, dtk_value_float(n->kind == N_NEG ? -v->u.f : v->u.f));
	int64_t i = as_int(v);
	if (n->kind == N_NEG) {
		if (i == INT64_MIN)
			return overflow(c, n->line);
		i = -i;
	}
	return rv_own(c, n->line, out, dtk_value_int(i));
}

static int eval_literal(ectx *c, const tpl_node *n, rv *out)
{
	int dict = n->kind == N_DICT;
	dtk_value *res = dict ? dtk_value_map() : dtk_value_list();
	int rc = -1;
	if (!res)
		return tpl_fail(c, n->line, "out of memory");
	for (size_t i = 0; i < n->args.n; i += dict ? 2 : 1) {
		rv k = {0}, v = {0};
		if (eval(c, n->args.v[i], &k) != 0)
			goto out;
		if (dict && eval(c, n->args.v[i + 1], &v) != 0) {
			rv_release(&k);
			goto out;
		}
		rv *bad = k.kind != RV_VAL ? &k : dict && v.kind != RV_VAL ? &v : NULL;
		if (bad) {
			tpl_fail(c, n->line,
				 "not supported: %s in a %s literal",
				 bad->kind == RV_LOOP ? "the loop object" : "an undefined value",
				 dict ? "dict" : "list");
			rv_release(&k);
			rv_release(&v);
			goto out;
		}
		if (dict && (k.v->type == DTK_V_LIST || k.v->type == DTK_V_MAP)) {
			tpl_fail(c, n->line, "TypeError: unhashable type: '%s'",
				 dtk_value_type_name(k.v));
			rv_release(&k);
			rv_release(&v);
			goto out;
		}
		dtk_value *kv = rv_take(&k);
		dtk_value *vv = dict ? rv_take(&v) : NULL;
		int bad_push;
		if (dict) {
			/* Python keeps the first equal key and updates its value */
			size_t j;
			for (j = 0; kv && j < res->u.map.n; j++)
				if (tpl_py_eq(res->u.map.items[j].key, kv))
					break;
			if (kv && vv && j < res->u.map.n) {
				dtk_value_free(&res->u.map.items[j].val);
				res->u.map.items[j].val = vv;
				dtk_value_free(&kv);
				bad_push = 0;
			} else {
				bad_push = !kv || !vv || dtk_value_map_set_v(res, kv, vv) != 0;
			}
		} else {
			bad_push = !kv || dtk_value_list_push(res, kv) != 0;
		}
		if (bad_push) {
			dtk_value_free(&kv);
			dtk_value_free(&vv);
			tpl_fail(c, n->line, "out of memory");
			goto out;
		}
	}
	rc = rv_own(c, n->line, out, res);
	res = NULL;
out:
	dtk_value_free(&res);
	return rc;
}

static int eval_args(ectx *c, const tpl_nodes *ns, rv *vals, rv **ptrs)
{
	for (size_t i = 0; i < ns->n; i++) {
		ptrs[i] = NULL;
		if (!ns->v[i])
			continue;
		if (eval(c, ns->v[i], &vals[i]) != 0)
			return -1;
		ptrs[i] = &vals[i];
	}
	return 0;
}

static int eval_call(ectx *c, const tpl_node *n, rv *out)
{
	rv obj = {0};
	size_t na = n->args.n, nk = n->kwargs.n;
	rv *vals = calloc(na + nk + 1, sizeof(rv));
	rv **ptrs = calloc(na + nk + 1, sizeof(rv *));
	int rc = -1;
	if (!vals || !ptrs) {
		rc = tpl_fail(c, n->line, "out of memory");
		goto out;
	}
	if (eval(c, n->a, &obj) != 0)
		goto out;
	if (eval_args(c, &n->args, vals, ptrs) != 0)
		goto out;
	if (eval_args(c, &n->kwargs, vals + na, ptrs + na) != 0)
		goto out;
	if (n->kind == N_FILTER)
		rc = tpl_filter(c, n, &obj, ptrs, na + nk, out);
	else
		rc = tpl_method(c, n, &obj, ptrs, na, out);
out:
	rv_release(&obj);
	if (vals)
		for (size_t i = 0; i < na + nk; i++)
			rv_release(&vals[i]);
	free(vals);
	free(ptrs);
	return rc;
}

static int eval_test(ectx *c, const tpl_node *n, rv *a, rv *out)
{
	int res = 0;
	const dtk_value *v = a->kind == RV_VAL ? a->v : NULL;
	switch (n->op) {
	case T_DEFINED:
		res = a->kind != RV_UNDEF;
		break;
	case T_UNDEFINED:
		res = a->kind == RV_UNDEF;
		break;
	case T_NONE:
		res = v && v->type == DTK_V_NULL;
		break;
	case T_NUMBER:
		res = v && is_number(v);
		break;
	case T_STRING:
		res = v && v->type == DTK_V_STR;
		break;
	case T_TRUE:
		res = v && v->type == DTK_V_BOOL && v->u.b;
		break;
	case T_FALSE:
		res = v && v->type == DTK_V_BOOL && !v->u.b;
		break;
	case T_ODD:
	case T_EVEN: {
		if (a->kind == RV_UNDEF)
			return tpl_undef_error(c, n->line, a);
		if (!v || !is_number(v))
			return tpl_fail(c, n->line, "TypeError: test '%s' needs a number, not %s",
					n->name, tpl_rv_type(a));
		dtk_value two = {.type = DTK_V_INT, .u.i = 2};
		rv m = {0};
		if (tpl_arith(c, n->line, '%', v, &two, &m) != 0)
			return -1;
		double r = as_float(m.v);
		rv_release(&m);
		res = n->op == T_ODD ? r == 1.0 : r == 0.0;
		break;
	}
	}
	return rv_own(c, n->line, out, dtk_value_bool(res));
}

static int eval(ectx *c, const tpl_node *n, rv *out)
{
	rv a = {0}, b = {0};
	int rc = -1;
	memset(out, 0, sizeof(*out));
	out->kind = RV_UNDEF;
	switch (n->kind) {
	case N_CONST:
		rv_borrow(out, n->cval);
		return 0;
	case N_LIST:
	case N_DICT:
		return eval_literal(c, n, out);
	case N_NAME:
		return eval_name(c, n, out);
	case N_GETATTR:
		if (eval(c, n->a, &a) == 0)
			rc = tpl_getattr(c, n->line, &a, n->name, out);
		break;
	case N_GETITEM:
		if (eval(c, n->a, &a) == 0 && eval(c, n->b, &b) == 0)
			rc = tpl_getitem(c, n->line, &a, &b, out);
		break;
	case N_SLICE:
		return eval_slice(c, n, out);
	case N_METHOD:
	case N_FILTER:
		return eval_call(c, n, out);
	case N_TEST:
		if (eval(c, n->a, &a) == 0)
			rc = eval_test(c, n, &a, out);
		break;
	case N_NEG:
	case N_POS:
	case N_NOT:
		if (eval(c, n->a, &a) == 0)
			rc = eval_unary(c, n, &a, out);
		break;
	case N_BIN:
		if (eval(c, n->a, &a) == 0 && eval(c, n->b, &b) == 0)
			rc = eval_bin(c, n, &a, &b, out);
		break;
	case N_CMP:
		if (eval(c, n->a, &a) == 0 && eval(c, n->b, &b) == 0)
			rc = eval_cmp(c, n, &a, &b, out);
		break;
	case N_AND:
	case N_OR: {
		int t;
		if (eval(c, n->a, &a) != 0 || tpl_rv_truthy(c, n->line, &a, &t) != 0)
			break;
		if ((n->kind == N_AND) == !!t) {
			rc = eval(c, n->b, out);
		} else {
			*out = a;
			memset(&a, 0, sizeof(a));
			rc = 0;
		}
		break;
	}
	case N_CONCAT: {
		dtk_buf s;
		dtk_buf_init(&s, TPL_MAX_OUTPUT);
		rc = 0;
		for (size_t i = 0; rc == 0 && i < n->args.n; i++) {
			rv item = {0};
			rc = eval(c, n->args.v[i], &item);
			if (rc == 0)
				rc = tpl_rv_str(c, n->line, &item, &s);
			rv_release(&item);
		}
		if (rc == 0)
			rc = rv_own(c, n->line, out, dtk_value_strn(dtk_buf_str(&s), s.len));
		dtk_buf_free(&s);
		break;
	}
	case N_COND: {
		int t;
		if (eval(c, n->a, &a) != 0 || tpl_rv_truthy(c, n->line, &a, &t) != 0)
			break;
		if (t)
			rc = eval(c, n->b, out);
		else if (n->c)
			rc = eval(c, n->c, out);
		else {
			rv_undef(out,
				 "the inline if-expression on line %u evaluated to false and no "
				 "else section was defined.",
				 n->line);
			rc = 0;
		}
		break;
	}
	default:
		rc = tpl_fail(c, n->line, "internal error: unknown expression node");
		break;
	}
	rv_release(&a);
	rv_release(&b);
	return rc;
}

/* ---- statements ---- */

static int render(ectx *c, const tpl_nodes *ns, dtk_buf *out);

/* Binds an item to the loop targets (one name, or two unpacked). */
static int bind_targets(ectx *c, const tpl_node *n, const dtk_value *item, tpl_frame *f)
{
	f->n1 = n->t1;
	f->v1 = item;
	f->n2 = NULL;
	if (!n->t2)
		return 0;
	size_t cnt;
	const dtk_value *x, *y;
	if (item->type == DTK_V_LIST) {
		cnt = item->u.list.n;
		x = cnt > 0 ? item->u.list.items[0] : NULL;
		y = cnt > 1 ? item->u.list.items[1] : NULL;
	} else if (item->type == DTK_V_MAP) {
		cnt = item->u.map.n;
		x = cnt > 0 ? item->u.map.items[0].key : NULL;
		y = cnt > 1 ? item->u.map.items[1].key : NULL;
	} else if (item->type == DTK_V_STR) {
		return tpl_fail(c, n->line, "not supported: unpacking a string in a for loop");
	} else {
		return tpl_fail(c, n->line, "TypeError: cannot unpack non-iterable %s object",
				dtk_value_type_name(item));
	}
	if (cnt != 2)
		return tpl_fail(c, n->line, "ValueError: %s values to unpack (expected 2, got %zu)",
				cnt < 2 ? "not enough" : "too many", cnt);
	f->v1 = x;
	f->n2 = n->t2;
	f->v2 = y;
	return 0;
}

static int render_for(ectx *c, const tpl_node *n, dtk_buf *out)
{
	rv seq = {0};
	const dtk_value **items = NULL;
	dtk_value **chars = NULL;
	size_t nitems = 0, nchars = 0;
	int rc = -1;
	if (eval(c, n->a, &seq) != 0)
		goto out;
	if (seq.kind == RV_UNDEF) {
		if (c->strict) {
			tpl_undef_error(c, n->line, &seq);
			goto out;
		}
	} else if (seq.kind == RV_LOOP) {
		tpl_fail(c, n->line, "TypeError: 'LoopContext' object is not iterable");
		goto out;
	} else {
		const dtk_value *s = seq.v;
		size_t cap;
		if (s->type == DTK_V_LIST)
			cap = s->u.list.n;
		else if (s->type == DTK_V_MAP)
			cap = s->u.map.n;
		else if (s->type == DTK_V_STR)
			cap = tpl_utf8_count(s->u.str.s, s->u.str.len);
		else {
			tpl_fail(c, n->line, "TypeError: '%s' object is not iterable",
				 dtk_value_type_name(s));
			goto out;
		}
		items = calloc(cap + 1, sizeof(*items));
		if (s->type == DTK_V_STR)
			chars = calloc(cap + 1, sizeof(*chars));
		if (!items || (s->type == DTK_V_STR && !chars)) {
			tpl_fail(c, n->line, "out of memory");
			goto out;
		}
		size_t off = 0;
		for (size_t i = 0; i < cap; i++) {
			const dtk_value *item;
			if (s->type == DTK_V_LIST) {
				item = s->u.list.items[i];
			} else if (s->type == DTK_V_MAP) {
				item = s->u.map.items[i].key;
			} else {
				uint32_t cp;
				size_t k = tpl_utf8_next(s->u.str.s + off, s->u.str.len - off, &cp);
				chars[nchars] = dtk_value_strn(s->u.str.s + off, k);
				off += k;
				if (!chars[nchars]) {
					tpl_fail(c, n->line, "out of memory");
					goto out;
				}
				item = chars[nchars++];
			}
			if (n->c) {
				tpl_frame f = {.up = c->top};
				if (bind_targets(c, n, item, &f) != 0)
					goto out;
				const tpl_frame *saved = c->top;
				c->top = &f;
				rv t = {0};
				int truth = 0;
				int erc = eval(c, n->c, &t);
				if (erc == 0)
					erc = tpl_rv_truthy(c, n->line, &t, &truth);
				rv_release(&t);
				c->top = saved;
				if (erc != 0)
					goto out;
				if (!truth)
					continue;
			}
			items[nitems++] = item;
		}
	}
	if (nitems == 0) {
		rc = render(c, &n->ebody, out);
		goto out;
	}
	tpl_loop loop = {.length = (int64_t)nitems, .items = items};
	for (size_t i = 0; i < nitems; i++) {
		tpl_frame f = {.up = c->top, .loop = &loop};
		loop.index0 = (int64_t)i;
		if (bind_targets(c, n, items[i], &f) != 0)
			goto out;
		const tpl_frame *saved = c->top;
		c->top = &f;
		int brc = render(c, &n->body, out);
		c->top = saved;
		if (brc != 0)
			goto out;
	}
	rc = 0;
out:
	for (size_t i = 0; i < nchars; i++)
		dtk_value_free(&chars[i]);
	free(chars);
	free(items);
	rv_release(&seq);
	return rc;
}

static int render(ectx *c, const tpl_nodes *ns, dtk_buf *out)
{
	for (size_t i = 0; i < ns->n; i++) {
		const tpl_node *n = ns->v[i];
		switch (n->kind) {
		case S_DATA:
			if (dtk_buf_add(out, n->name, n->name_len) != 0)
				return tpl_fail(c, n->line, "output exceeds %zu bytes",
						TPL_MAX_OUTPUT);
			break;
		case S_OUTPUT: {
			rv v = {0};
			int rc = eval(c, n->a, &v);
			if (rc == 0)
				rc = tpl_rv_str(c, n->line, &v, out);
			rv_release(&v);
			if (rc != 0)
				return -1;
			break;
		}
		case S_IF: {
			rv v = {0};
			int t = 0;
			int rc = eval(c, n->a, &v);
			if (rc == 0)
				rc = tpl_rv_truthy(c, n->line, &v, &t);
			rv_release(&v);
			if (rc != 0)
				return -1;
			if (render(c, t ? &n->body : &n->ebody, out) != 0)
				return -1;
			break;
		}
		case S_FOR:
			if (render_for(c, n, out) != 0)
				return -1;
			break;
		default:
			return tpl_fail(c, n->line, "internal error: unknown statement");
		}
	}
	return 0;
}

int tpl_eval(const tpl_nodes *stmts, const dtk_value *vars, int flags, dtk_buf *out,
	     char *errstr, size_t errstr_size)
{
	ectx c = {
		.vars = vars,
		.strict = (flags & DTK_TEMPLATE_STRICT) != 0,
		.err = errstr,
		.errsz = errstr_size,
	};
	return render(&c, stmts, out);
}
