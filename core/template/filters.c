/* The subset's filters (jinja2/filters.py), the datetime methods, and
 * Python's printf-style "fmt % args" that the format filter and the %
 * operator on strings use. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/eval.h"
#include "util/pyfmt.h"

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

static int str_result(ectx *c, unsigned line, dtk_buf *b, rv *out)
{
	if (b->failed)
		return tpl_fail(c, line, "string exceeds %zu bytes", TPL_MAX_OUTPUT);
	return rv_own(c, line, out, dtk_value_strn(dtk_buf_str(b), b->len));
}

/* str(r) into a fresh buffer (the caller frees it). */
static int to_str(ectx *c, unsigned line, const rv *r, dtk_buf *b)
{
	dtk_buf_init(b, TPL_MAX_OUTPUT);
	return tpl_rv_str(c, line, r, b);
}

static int need_int_arg(ectx *c, unsigned line, const rv *r, const char *what, int64_t *out)
{
	if (r->kind == RV_UNDEF)
		return tpl_undef_error(c, line, r);
	if (r->kind != RV_VAL || !is_intlike(r->v))
		return tpl_fail(c, line, "TypeError: %s must be an integer, not %s", what,
				tpl_rv_type(r));
	*out = as_int(r->v);
	return 0;
}

static int need_str_arg(ectx *c, unsigned line, const rv *r, const char *what)
{
	if (r->kind == RV_UNDEF && c->strict)
		return tpl_undef_error(c, line, r);
	if (r->kind != RV_VAL || r->v->type != DTK_V_STR)
		return tpl_fail(c, line, "TypeError: %s must be str, not %s", what, tpl_rv_type(r));
	return 0;
}

static int copy_rv(ectx *c, unsigned line, rv *from, rv *out)
{
	if (from->kind != RV_VAL) {
		*out = *from;
		return 0;
	}
	if (from->own)
		return rv_own(c, line, out, dtk_value_copy(from->v));
	rv_borrow(out, from->v);
	return 0;
}

/* math.floor / math.ceil, which return an int. */
static int floor_ceil(ectx *c, unsigned line, const dtk_value *v, int ceil_, rv *out)
{
	if (is_intlike(v))
		return rv_own(c, line, out, dtk_value_int(as_int(v)));
	if (v->type != DTK_V_FLOAT)
		return tpl_fail(c, line, "TypeError: must be real number, not %s",
				dtk_value_type_name(v));
	double f = ceil_ ? ceil(v->u.f) : floor(v->u.f);
	int64_t i;
	int r = tpl_float_to_int(f, &i);
	if (r == -1)
		return tpl_fail(c, line, "OverflowError: cannot convert float infinity to integer");
	if (r == -2)
		return tpl_fail(c, line, "ValueError: cannot convert float NaN to integer");
	if (r == -3)
		return tpl_fail(c, line, "integer overflow: results beyond 64 bits are not supported");
	return rv_own(c, line, out, dtk_value_int(i));
}

static int f_round(ectx *c, unsigned line, rv *value, rv *prec, rv *method, rv *out)
{
	int64_t nd = 0;
	const char *m = "common";
	if (method) {
		if (method->kind != RV_VAL || method->v->type != DTK_V_STR ||
		    (strcmp(method->v->u.str.s, "common") && strcmp(method->v->u.str.s, "ceil") &&
		     strcmp(method->v->u.str.s, "floor")))
			return tpl_fail(c, line,
					"FilterArgumentError: method must be common, ceil or floor");
		m = method->v->u.str.s;
	}
	if (value->kind == RV_UNDEF && strcmp(m, "common") != 0)
		return tpl_undef_error(c, line, value);
	if (value->kind != RV_VAL)
		return tpl_fail(c, line, "TypeError: type %s doesn't define __round__ method",
				tpl_rv_type(value));
	if (prec && need_int_arg(c, line, prec, "round precision", &nd) != 0)
		return -1;
	const dtk_value *v = value->v;
	if (!strcmp(m, "common")) {
		if (v->type == DTK_V_FLOAT)
			return rv_own(c, line, out, dtk_value_float(tpl_py_round(v->u.f, nd)));
		if (!is_intlike(v))
			return tpl_fail(c, line, "TypeError: type %s doesn't define __round__ method",
					dtk_value_type_name(v));
		int64_t x = as_int(v);
		if (nd >= 0 || x == 0)
			return rv_own(c, line, out, dtk_value_int(x));
		if (nd < -18)
			return rv_own(c, line, out, dtk_value_int(0));
		/* int.__round__ with negative digits: half to even */
		int64_t p = 1;
		for (int64_t k = 0; k < -nd; k++)
			p *= 10;
		int64_t q = x / p, r = x % p;
		if (r < 0) {
			r += p;
			q -= 1;
		}
		if (2 * (r / 2) + (r % 2) > 0 && (r > p - r || (r == p - r && (q & 1))))
			q += 1;
		int64_t res;
		if (__builtin_mul_overflow(q, p, &res))
			return tpl_fail(c, line,
					"integer overflow: results beyond 64 bits are not supported");
		return rv_own(c, line, out, dtk_value_int(res));
	}
	/* func(value * (10 ** precision)) / (10 ** precision) */
	dtk_value ten = {.type = DTK_V_INT, .u.i = 10};
	dtk_value pv = {.type = DTK_V_INT, .u.i = nd};
	rv p10 = {0}, prod = {0}, fl = {0};
	int rc = -1;
	if (tpl_arith(c, line, OP_POW, &ten, &pv, &p10) != 0 ||
	    tpl_arith(c, line, '*', v, p10.v, &prod) != 0 ||
	    floor_ceil(c, line, prod.v, m[0] == 'c', &fl) != 0)
		goto out;
	rc = tpl_arith(c, line, '/', fl.v, p10.v, out);
out:
	rv_release(&p10);
	rv_release(&prod);
	rv_release(&fl);
	return rc;
}

static int f_int(ectx *c, unsigned line, rv *value, rv *def, rv *basearg, rv *out)
{
	int64_t base = 10;
	if (value->kind == RV_UNDEF)
		return tpl_undef_error(c, line, value);
	if (basearg && need_int_arg(c, line, basearg, "int base", &base) != 0)
		return -1;
	if (value->kind == RV_VAL) {
		const dtk_value *v = value->v;
		double f = 0;
		int have_float = 0;
		if (is_intlike(v))
			return rv_own(c, line, out, dtk_value_int(as_int(v)));
		if (v->type == DTK_V_STR) {
			int64_t i;
			int r = (base >= 2 && base <= 36) || base == 0
					? tpl_py_parse_int(v->u.str.s, v->u.str.len, (int)base, &i)
					: -1;
			if (r == 0)
				return rv_own(c, line, out, dtk_value_int(i));
			if (r == -2)
				return tpl_fail(c, line, "integer overflow: results beyond 64 bits "
							 "are not supported");
			have_float = tpl_py_parse_float(v->u.str.s, v->u.str.len, &f) == 0;
		} else if (v->type == DTK_V_FLOAT) {
			f = v->u.f;
			have_float = 1;
		}
		if (have_float) {
			int64_t i;
			int r = tpl_float_to_int(f, &i);
			if (r == 0)
				return rv_own(c, line, out, dtk_value_int(i));
			if (r == -1)
				return tpl_fail(c, line, "OverflowError: cannot convert float "
							 "infinity to integer");
			if (r == -3)
				return tpl_fail(c, line, "integer overflow: results beyond 64 bits "
							 "are not supported");
		}
	}
	if (def)
		return copy_rv(c, line, def, out);
	return rv_own(c, line, out, dtk_value_int(0));
}

static int f_float(ectx *c, unsigned line, rv *value, rv *def, rv *out)
{
	if (value->kind == RV_UNDEF)
		return tpl_undef_error(c, line, value);
	if (value->kind == RV_VAL) {
		const dtk_value *v = value->v;
		double f;
		if (is_number(v)) {
			f = v->type == DTK_V_FLOAT ? v->u.f : (double)as_int(v);
			return rv_own(c, line, out, dtk_value_float(f));
		}
		if (v->type == DTK_V_STR && tpl_py_parse_float(v->u.str.s, v->u.str.len, &f) == 0)
			return rv_own(c, line, out, dtk_value_float(f));
	}
	if (def)
		return copy_rv(c, line, def, out);
	return rv_own(c, line, out, dtk_value_float(0.0));
}

static int f_abs(ectx *c, unsigned line, rv *value, rv *out)
{
	if (value->kind != RV_VAL || !is_number(value->v))
		return tpl_fail(c, line, "TypeError: bad operand type for abs(): '%s'",
				tpl_rv_type(value));
	const dtk_value *v = value->v;
	if (v->type == DTK_V_FLOAT)
		return rv_own(c, line, out, dtk_value_float(fabs(v->u.f)));
	int64_t i = as_int(v);
	if (i == INT64_MIN)
		return tpl_fail(c, line, "integer overflow: results beyond 64 bits are not supported");
	return rv_own(c, line, out, dtk_value_int(i < 0 ? -i : i));
}

static int f_length(ectx *c, unsigned line, rv *value, rv *out)
{
	if (value->kind == RV_UNDEF) {
		if (c->strict)
			return tpl_undef_error(c, line, value);
		return rv_own(c, line, out, dtk_value_int(0));
	}
	if (value->kind == RV_LOOP)
		return tpl_fail(c, line, "TypeError: object of type 'LoopContext' has no len()");
	const dtk_value *v = value->v;
	if (v->type == DTK_V_STR)
		return rv_own(c, line, out,
			      dtk_value_int((int64_t)tpl_utf8_count(v->u.str.s, v->u.str.len)));
	if (v->type == DTK_V_LIST)
		return rv_own(c, line, out, dtk_value_int((int64_t)v->u.list.n));
	if (v->type == DTK_V_MAP)
		return rv_own(c, line, out, dtk_value_int((int64_t)v->u.map.n));
	return tpl_fail(c, line, "TypeError: object of type '%s' has no len()",
			dtk_value_type_name(v));
}

/* make_attrgetter: item.part.part via getitem, digits as integers. */
static int attr_path(ectx *c, unsigned line, const dtk_value *item, const char *path, rv *res)
{
	rv cur;
	rv_borrow(&cur, item);
	const char *p = path;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		int digits = n > 0;
		for (size_t i = 0; i < n; i++)
			digits &= p[i] >= '0' && p[i] <= '9';
		dtk_value *k = NULL;
		if (digits && n < 18) {
			int64_t iv = 0;
			for (size_t i = 0; i < n; i++)
				iv = iv * 10 + (p[i] - '0');
			k = dtk_value_int(iv);
		} else {
			k = dtk_value_strn(p, n);
		}
		rv key = {0}, next = {0};
		if (rv_own(c, line, &key, k) != 0) {
			rv_release(&cur);
			return -1;
		}
		int rc = tpl_getitem(c, line, &cur, &key, &next);
		rv_release(&key);
		rv_release(&cur);
		if (rc != 0)
			return -1;
		cur = next;
		if (!dot)
			break;
		p = dot + 1;
	}
	*res = cur;
	return 0;
}

/* Items of an iterable: list items, dict keys, characters; Undefined is
 * empty. Calls fn(arg, item) for each. */
static int each_item(ectx *c, unsigned line, const rv *seq,
		     int (*fn)(ectx *, unsigned, void *, const dtk_value *), void *arg)
{
	if (seq->kind == RV_UNDEF)
		return c->strict ? tpl_undef_error(c, line, seq) : 0;
	if (seq->kind == RV_LOOP)
		return tpl_fail(c, line, "TypeError: 'LoopContext' object is not iterable");
	const dtk_value *s = seq->v;
	if (s->type == DTK_V_LIST) {
		for (size_t i = 0; i < s->u.list.n; i++)
			if (fn(c, line, arg, s->u.list.items[i]) != 0)
				return -1;
		return 0;
	}
	if (s->type == DTK_V_MAP) {
		for (size_t i = 0; i < s->u.map.n; i++)
			if (fn(c, line, arg, s->u.map.items[i].key) != 0)
				return -1;
		return 0;
	}
	if (s->type == DTK_V_STR) {
		for (size_t off = 0; off < s->u.str.len;) {
			uint32_t cp;
			size_t k = tpl_utf8_next(s->u.str.s + off, s->u.str.len - off, &cp);
			dtk_value ch = {.type = DTK_V_STR};
			char tmp[5];
			memcpy(tmp, s->u.str.s + off, k);
			tmp[k] = '\0';
			ch.u.str.s = tmp;
			ch.u.str.len = k;
			if (fn(c, line, arg, &ch) != 0)
				return -1;
			off += k;
		}
		return 0;
	}
	return tpl_fail(c, line, "TypeError: '%s' object is not iterable", dtk_value_type_name(s));
}

typedef struct join_state {
	dtk_buf *out;
	const char *sep;
	size_t seplen;
	const char *attr;
	int n;
} join_state;

static int join_one(ectx *c, unsigned line, void *arg, const dtk_value *item)
{
	join_state *js = arg;
	if (js->n++)
		dtk_buf_add(js->out, js->sep, js->seplen);
	if (!js->attr) {
		tpl_py_str(js->out, item);
	} else {
		rv r = {0};
		if (attr_path(c, line, item, js->attr, &r) != 0)
			return -1;
		int rc = tpl_rv_str(c, line, &r, js->out);
		rv_release(&r);
		if (rc != 0)
			return -1;
	}
	if (js->out->failed)
		return tpl_fail(c, line, "string exceeds %zu bytes", TPL_MAX_OUTPUT);
	return 0;
}

static int f_join(ectx *c, unsigned line, rv *value, rv *sep, rv *attr, rv *out)
{
	dtk_buf s, b;
	dtk_buf_init(&b, TPL_MAX_OUTPUT);
	dtk_buf_init(&s, TPL_MAX_OUTPUT);
	int rc = -1;
	join_state js = {.out = &b};
	if (sep && tpl_rv_str(c, line, sep, &s) != 0)
		goto out;
	js.sep = dtk_buf_str(&s);
	js.seplen = s.len;
	if (attr && !(attr->kind == RV_VAL && attr->v->type == DTK_V_NULL)) {
		if (attr->kind != RV_VAL || attr->v->type != DTK_V_STR) {
			rc = tpl_fail(c, line, "not supported: join attribute must be a string");
			goto out;
		}
		js.attr = attr->v->u.str.s;
	}
	if (each_item(c, line, value, join_one, &js) != 0)
		goto out;
	rc = str_result(c, line, &b, out);
out:
	dtk_buf_free(&s);
	dtk_buf_free(&b);
	return rc;
}

static int f_replace(ectx *c, unsigned line, rv *value, rv *old, rv *new_, rv *count, rv *out)
{
	dtk_buf s, o, nw, b;
	to_str(c, line, value, &s);
	dtk_buf_init(&o, TPL_MAX_OUTPUT);
	dtk_buf_init(&nw, TPL_MAX_OUTPUT);
	dtk_buf_init(&b, TPL_MAX_OUTPUT);
	int rc = -1;
	int64_t cnt = -1;
	if ((value->kind == RV_UNDEF && c->strict) || tpl_rv_str(c, line, old, &o) != 0 ||
	    tpl_rv_str(c, line, new_, &nw) != 0) {
		if (value->kind == RV_UNDEF && c->strict)
			tpl_undef_error(c, line, value);
		goto out;
	}
	if (count && !(count->kind == RV_VAL && count->v->type == DTK_V_NULL) &&
	    need_int_arg(c, line, count, "replace count", &cnt) != 0)
		goto out;
	const char *str = dtk_buf_str(&s);
	size_t len = s.len;
	if (o.len == 0) {
		/* an empty old string matches around every character */
		size_t off = 0;
		int64_t done = 0;
		for (;;) {
			if (cnt < 0 || done < cnt) {
				dtk_buf_add(&b, nw.data ? nw.data : "", nw.len);
				done++;
			}
			if (off >= len)
				break;
			uint32_t cp;
			size_t k = tpl_utf8_next(str + off, len - off, &cp);
			dtk_buf_add(&b, str + off, k);
			off += k;
		}
	} else {
		size_t i = 0;
		int64_t done = 0;
		while (i < len) {
			if ((cnt < 0 || done < cnt) && i + o.len <= len &&
			    memcmp(str + i, o.data, o.len) == 0) {
				dtk_buf_add(&b, nw.data ? nw.data : "", nw.len);
				i += o.len;
				done++;
				continue;
			}
			dtk_buf_addc(&b, str[i++]);
		}
	}
	rc = str_result(c, line, &b, out);
out:
	dtk_buf_free(&s);
	dtk_buf_free(&o);
	dtk_buf_free(&nw);
	dtk_buf_free(&b);
	return rc;
}

static int in_chars(const char *chars, size_t clen, uint32_t cp)
{
	for (size_t i = 0; i < clen;) {
		uint32_t x;
		i += tpl_utf8_next(chars + i, clen - i, &x);
		if (x == cp)
			return 1;
	}
	return 0;
}

static int f_trim(ectx *c, unsigned line, rv *value, rv *chars, rv *out)
{
	dtk_buf s, b;
	dtk_buf_init(&b, TPL_MAX_OUTPUT);
	int rc = -1;
	const char *cs = NULL;
	size_t clen = 0;
	if (to_str(c, line, value, &s) != 0)
		goto out;
	if (chars && !(chars->kind == RV_VAL && chars->v->type == DTK_V_NULL)) {
		if (need_str_arg(c, line, chars, "strip arg") != 0)
			goto out;
		cs = chars->v->u.str.s;
		clen = chars->v->u.str.len;
	}
	const char *str = dtk_buf_str(&s);
	size_t start = 0, end = 0, i = 0;
	int seen = 0;
	while (i < s.len) {
		uint32_t cp;
		size_t k = tpl_utf8_next(str + i, s.len - i, &cp);
		int strip = cs ? in_chars(cs, clen, cp) : tpl_py_isspace(cp);
		if (!strip) {
			if (!seen)
				start = i;
			seen = 1;
			end = i + k;
		}
		i += k;
	}
	if (seen)
		dtk_buf_add(&b, str + start, end - start);
	rc = str_result(c, line, &b, out);
out:
	dtk_buf_free(&s);
	dtk_buf_free(&b);
	return rc;
}

static int f_case(ectx *c, unsigned line, rv *value, int upper, rv *out)
{
	dtk_buf s, b;
	dtk_buf_init(&b, TPL_MAX_OUTPUT);
	int rc = -1;
	if (to_str(c, line, value, &s) != 0)
		goto out;
	tpl_py_case(&b, dtk_buf_str(&s), s.len, upper);
	rc = str_result(c, line, &b, out);
out:
	dtk_buf_free(&s);
	dtk_buf_free(&b);
	return rc;
}

static int f_format(ectx *c, const tpl_node *n, rv *value, rv **args, rv *out)
{
	unsigned line = n->line;
	dtk_buf s, b;
	dtk_buf_init(&b, TPL_MAX_OUTPUT);
	dtk_value *mapping = NULL;
	int rc = -1;
	if (to_str(c, line, value, &s) != 0)
		goto out;
	if (n->kwargs.n) {
		mapping = dtk_value_map();
		for (size_t i = 0; mapping && i < n->kwargs.n; i++) {
			rv *a = args[n->args.n + i];
			if (a->kind != RV_VAL) {
				rc = tpl_fail(c, line, "not supported: an undefined or loop value "
						       "as a format keyword");
				goto out;
			}
			dtk_value *v = dtk_value_copy(a->v);
			if (!v || dtk_value_map_set(mapping, n->kwnames[i], v) != 0) {
				dtk_value_free(&v);
				dtk_value_free(&mapping);
			}
		}
		if (!mapping) {
			rc = tpl_fail(c, line, "out of memory");
			goto out;
		}
		rv m;
		rv_borrow(&m, mapping);
		rv *one[1] = {&m};
		rc = tpl_percent(c, line, dtk_buf_str(&s), s.len, one, 1, 0, mapping, &b);
	} else {
		rc = tpl_percent(c, line, dtk_buf_str(&s), s.len, args, n->args.n, 1, NULL, &b);
	}
	if (rc == 0)
		rc = str_result(c, line, &b, out);
out:
	dtk_value_free(&mapping);
	dtk_buf_free(&s);
	dtk_buf_free(&b);
	return rc;
}

static int is_dt(const rv *r)
{
	return r->kind == RV_VAL && (r->v->type == DTK_V_DATETIME || r->v->type == DTK_V_DATE);
}

/* DetectK's datetime_format(fmt='%Y-%m-%d %H:%M:%S'): value.strftime(fmt)
 * for a datetime or date, str(value) for anything else. DetectK registers
 * this filter itself (it is not a Jinja builtin); this is the behaviour the
 * differential test registers on the Jinja side too. */
static int f_datetime_format(ectx *c, unsigned line, rv *value, rv *fmt, rv *out)
{
	dtk_buf b;
	int rc = -1;
	if (!is_dt(value)) {
		if (to_str(c, line, value, &b) == 0)
			rc = str_result(c, line, &b, out);
		dtk_buf_free(&b);
		return rc;
	}
	dtk_buf_init(&b, TPL_MAX_OUTPUT);
	const char *f = "%Y-%m-%d %H:%M:%S";
	size_t flen = strlen(f);
	if (fmt) {
		if (need_str_arg(c, line, fmt, "strftime() argument 1") != 0)
			goto out;
		f = fmt->v->u.str.s;
		flen = fmt->v->u.str.len;
	}
	if (tpl_py_strftime(&b, value->v, f, flen) != 0) {
		rc = tpl_fail(c, line, "strftime output too long");
		goto out;
	}
	rc = str_result(c, line, &b, out);
out:
	dtk_buf_free(&b);
	return rc;
}

int tpl_filter(ectx *c, const tpl_node *n, rv *value, rv **args, size_t nargs, rv *out)
{
	unsigned line = n->line;
	rv *a0 = nargs > 0 ? args[0] : NULL;
	rv *a1 = nargs > 1 ? args[1] : NULL;
	rv *a2 = nargs > 2 ? args[2] : NULL;
	switch (n->op) {
	case F_ROUND:
		return f_round(c, line, value, a0, a1, out);
	case F_INT:
		return f_int(c, line, value, a0, a1, out);
	case F_FLOAT:
		return f_float(c, line, value, a0, out);
	case F_ABS:
		return f_abs(c, line, value, out);
	case F_DEFAULT: {
		int use_default = value->kind == RV_UNDEF;
		if (!use_default && a1) {
			int b, t;
			if (tpl_rv_truthy(c, line, a1, &b) != 0)
				return -1;
			if (b) {
				if (tpl_rv_truthy(c, line, value, &t) != 0)
					return -1;
				use_default = !t;
			}
		}
		if (!use_default)
			return copy_rv(c, line, value, out);
		if (a0)
			return copy_rv(c, line, a0, out);
		return rv_own(c, line, out, dtk_value_str(""));
	}
	case F_UPPER:
	case F_LOWER:
		return f_case(c, line, value, n->op == F_UPPER, out);
	case F_LENGTH:
		return f_length(c, line, value, out);
	case F_JOIN:
		return f_join(c, line, value, a0, a1, out);
	case F_REPLACE:
		return f_replace(c, line, value, a0, a1, a2, out);
	case F_TRIM:
		return f_trim(c, line, value, a0, out);
	case F_FORMAT:
		return f_format(c, n, value, args, out);
	case F_DATETIME_FORMAT:
		return f_datetime_format(c, line, value, a0, out);
	}
	return tpl_fail(c, line, "internal error: unknown filter");
}

int tpl_method(ectx *c, const tpl_node *n, rv *obj, rv **args, size_t nargs, rv *out)
{
	unsigned line = n->line;
	const char *m = n->name;
	if (obj->kind == RV_UNDEF)
		return tpl_undef_error(c, line, obj);
	int dt = obj->kind == RV_VAL && obj->v->type == DTK_V_DATETIME;
	int date = obj->kind == RV_VAL && obj->v->type == DTK_V_DATE;
	int ok = (dt || date) && (strcmp(m, "timestamp") && strcmp(m, "date") ? 1 : dt);
	if (!ok) {
		/* Jinja: getattr gives an Undefined, and calling it fails */
		if (obj->kind == RV_VAL && obj->v->type == DTK_V_NULL)
			return tpl_fail(c, line, "None has no attribute '%s'", m);
		return tpl_fail(c, line, "'%s' has no attribute '%s'",
				obj->kind == RV_LOOP ? "jinja2.runtime.LoopContext object"
				: obj->v->type == DTK_V_MAP ? "dict object"
				: obj->v->type == DTK_V_LIST ? "list object"
				: obj->v->type == DTK_V_STR ? "str object"
				: obj->v->type == DTK_V_DATE ? "datetime.date object"
							     : "object",
				m);
	}
	const dtk_value *v = obj->v;
	dtk_buf b;
	dtk_buf_init(&b, TPL_MAX_OUTPUT);
	int rc = -1;
	size_t maxargs = !strcmp(m, "strftime") ? 1 : !strcmp(m, "isoformat") && dt ? 1 : 0;
	size_t minargs = !strcmp(m, "strftime") ? 1 : 0;
	if (nargs > maxargs || nargs < minargs) {
		rc = tpl_fail(c, line, "TypeError: %s() takes %s%zu argument%s (%zu given)", m,
			      minargs == maxargs ? "exactly " : "at most ", maxargs,
			      maxargs == 1 ? "" : "s", nargs);
		goto out;
	}
	if (!strcmp(m, "strftime")) {
		if (need_str_arg(c, line, args[0], "strftime() argument 1") != 0)
			goto out;
		if (tpl_py_strftime(&b, v, args[0]->v->u.str.s, args[0]->v->u.str.len) != 0) {
			rc = tpl_fail(c, line, "strftime output too long");
			goto out;
		}
		rc = str_result(c, line, &b, out);
	} else if (!strcmp(m, "isoformat")) {
		const char *sep = "T";
		size_t seplen = 1;
		if (nargs) {
			if (need_str_arg(c, line, args[0], "isoformat() argument 1") != 0)
				goto out;
			sep = args[0]->v->u.str.s;
			seplen = args[0]->v->u.str.len;
			if (tpl_utf8_count(sep, seplen) != 1) {
				rc = tpl_fail(c, line, "TypeError: isoformat() argument 1 must be a "
						       "unicode character");
				goto out;
			}
		}
		tpl_py_isoformat(&b, v, sep, seplen);
		rc = str_result(c, line, &b, out);
	} else if (!strcmp(m, "timestamp")) {
		double ts;
		if (v->u.dt.has_tz) {
			int64_t us = (v->u.dt.secs - (int64_t)v->u.dt.tz_min * 60) * 1000000 +
				     v->u.dt.usec;
			ts = (double)us / 1e6;
		} else {
			/* naive: local time, which DetectK runs as UTC */
			ts = (double)v->u.dt.secs + v->u.dt.usec / 1e6;
		}
		rc = rv_own(c, line, out, dtk_value_float(ts));
	} else if (!strcmp(m, "date")) {
		int64_t secs = v->u.dt.secs;
		int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
		dtk_value *d = dtk_value_datetime(days * 86400, 0);
		if (d)
			d->type = DTK_V_DATE;
		rc = rv_own(c, line, out, d);
	} else {
		int64_t secs = v->u.dt.secs;
		int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
		int64_t wd = ((days % 7) + 10) % 7; /* Monday is 0; 1970-01-01 was a Thursday */
		rc = rv_own(c, line, out, dtk_value_int(!strcmp(m, "weekday") ? wd : wd + 1));
	}
out:
	dtk_buf_free(&b);
	return rc;
}

/* ---- printf-style formatting ---- */

enum { FL_LJUST = 1, FL_SIGN = 2, FL_BLANK = 4, FL_ALT = 8, FL_ZERO = 16 };

/* Python's unicode_format_arg_output: sign, prefix ("0x"), padding. */
static void pad_number(dtk_buf *out, int flags, int64_t width, char sign, const char *prefix,
		       const char *body, size_t blen)
{
	size_t plen = strlen(prefix);
	size_t len = (sign ? 1 : 0) + plen + blen;
	size_t pad = width > 0 && (uint64_t)width > len ? (size_t)width - len : 0;
	if (!(flags & FL_LJUST) && !(flags & FL_ZERO))
		for (size_t i = 0; i < pad; i++)
			dtk_buf_addc(out, ' ');
	if (sign)
		dtk_buf_addc(out, sign);
	dtk_buf_adds(out, prefix);
	if (!(flags & FL_LJUST) && (flags & FL_ZERO))
		for (size_t i = 0; i < pad; i++)
			dtk_buf_addc(out, '0');
	dtk_buf_add(out, body, blen);
	if (flags & FL_LJUST)
		for (size_t i = 0; i < pad; i++)
			dtk_buf_addc(out, ' ');
}

static int fmt_number_arg(ectx *c, unsigned line, const rv *a, char conv, int64_t *iv,
			  double *fv)
{
	if (a->kind == RV_UNDEF)
		return tpl_undef_error(c, line, a);
	const dtk_value *v = a->kind == RV_VAL ? a->v : NULL;
	if (conv == 'd' || conv == 'i' || conv == 'u') {
		if (!v || !is_number(v))
			return tpl_fail(c, line, "TypeError: %%%c format: a real number is required, "
						 "not %s",
					conv, tpl_rv_type(a));
		if (v->type != DTK_V_FLOAT) {
			*iv = as_int(v);
			return 0;
		}
		int r = tpl_float_to_int(v->u.f, iv);
		if (r == -1)
			return tpl_fail(c, line, "OverflowError: cannot convert float infinity to "
						 "integer");
		if (r == -2)
			return tpl_fail(c, line, "ValueError: cannot convert float NaN to integer");
		if (r == -3)
			return tpl_fail(c, line, "integer overflow: results beyond 64 bits are "
						 "not supported");
		return 0;
	}
	if (conv == 'x' || conv == 'X' || conv == 'o') {
		if (!v || !is_intlike(v))
			return tpl_fail(c, line, "TypeError: %%%c format: an integer is required, "
						 "not %s",
					conv, tpl_rv_type(a));
		*iv = as_int(v);
		return 0;
	}
	if (!v || !is_number(v))
		return tpl_fail(c, line, "TypeError: must be real number, not %s", tpl_rv_type(a));
	*fv = v->type == DTK_V_FLOAT ? v->u.f : (double)as_int(v);
	return 0;
}

static int fmt_one(ectx *c, unsigned line, dtk_buf *out, const rv *a, char conv, int flags,
		   int64_t width, int64_t prec)
{
	char sign = 0;
	if (conv == 's' || conv == 'r' || conv == 'a' || conv == 'c') {
		dtk_buf s;
		dtk_buf_init(&s, TPL_MAX_OUTPUT);
		int rc = 0;
		if (conv == 's') {
			rc = tpl_rv_str(c, line, a, &s);
		} else if (conv == 'c') {
			if (a->kind == RV_VAL && is_intlike(a->v)) {
				int64_t cp = as_int(a->v);
				if (cp < 0 || cp > 0x10FFFF)
					rc = tpl_fail(c, line, "OverflowError: %%c arg not in "
							       "range(0x110000)");
				else
					tpl_utf8_put(&s, (uint32_t)cp);
			} else if (a->kind == RV_VAL && a->v->type == DTK_V_STR &&
				   tpl_utf8_count(a->v->u.str.s, a->v->u.str.len) == 1) {
				dtk_buf_add(&s, a->v->u.str.s, a->v->u.str.len);
			} else {
				rc = a->kind == RV_UNDEF
					     ? tpl_undef_error(c, line, a)
					     : tpl_fail(c, line, "TypeError: %%c requires int or char");
			}
		} else if (a->kind == RV_VAL) {
			if (conv == 'r') {
				tpl_py_repr(&s, a->v);
			} else {
				dtk_buf r;
				dtk_buf_init(&r, TPL_MAX_OUTPUT);
				tpl_py_repr(&r, a->v);
				/* ascii(): repr with non-ASCII escaped */
				for (size_t i = 0; i < r.len;) {
					uint32_t cp;
					size_t k = tpl_utf8_next(r.data + i, r.len - i, &cp);
					if (cp < 0x80)
						dtk_buf_addc(&s, (char)cp);
					else if (cp < 0x100)
						dtk_buf_printf(&s, "\\x%02x", (unsigned)cp);
					else if (cp < 0x10000)
						dtk_buf_printf(&s, "\\u%04x", (unsigned)cp);
					else
						dtk_buf_printf(&s, "\\U%08x", (unsigned)cp);
					i += k;
				}
				dtk_buf_free(&r);
			}
		} else if (a->kind == RV_LOOP) {
			dtk_buf_printf(&s, "<LoopContext %lld/%lld>", (long long)a->loop->index0 + 1,
				       (long long)a->loop->length);
		} else {
			if (c->strict)
				rc = tpl_undef_error(c, line, a);
			else
				dtk_buf_adds(&s, "Undefined");
		}
		if (rc == 0) {
			const char *str = dtk_buf_str(&s);
			size_t len = s.len;
			if (prec >= 0 && conv != 'c' && tpl_utf8_count(str, s.len) > (uint64_t)prec) {
				size_t off = 0;
				for (int64_t k = 0; k < prec; k++) {
					uint32_t cp;
					off += tpl_utf8_next(str + off, s.len - off, &cp);
				}
				len = off;
			}
			size_t chars = tpl_utf8_count(str, len);
			size_t pad = width > 0 && (uint64_t)width > chars ? (size_t)width - chars : 0;
			if (pad > TPL_MAX_OUTPUT)
				pad = TPL_MAX_OUTPUT;
			if (!(flags & FL_LJUST))
				for (size_t i = 0; i < pad && !out->failed; i++)
					dtk_buf_addc(out, ' ');
			dtk_buf_add(out, str, len);
			if (flags & FL_LJUST)
				for (size_t i = 0; i < pad && !out->failed; i++)
					dtk_buf_addc(out, ' ');
		}
		dtk_buf_free(&s);
		return rc;
	}
	int64_t iv = 0;
	double fv = 0;
	if (fmt_number_arg(c, line, a, conv, &iv, &fv) != 0)
		return -1;
	if (width > (int64_t)TPL_MAX_OUTPUT || prec > (int64_t)TPL_MAX_OUTPUT)
		return tpl_fail(c, line, "format width or precision too large");
	dtk_buf body;
	dtk_buf_init(&body, TPL_MAX_OUTPUT);
	const char *prefix = "";
	if (conv == 'd' || conv == 'i' || conv == 'u' || conv == 'x' || conv == 'X' ||
	    conv == 'o') {
		uint64_t mag = iv < 0 ? (uint64_t)0 - (uint64_t)iv : (uint64_t)iv;
		if (iv < 0)
			sign = '-';
		char digits[80];
		if (conv == 'x' || conv == 'X')
			snprintf(digits, sizeof(digits), conv == 'x' ? "%llx" : "%llX",
				 (unsigned long long)mag);
		else if (conv == 'o')
			snprintf(digits, sizeof(digits), "%llo", (unsigned long long)mag);
		else
			snprintf(digits, sizeof(digits), "%llu", (unsigned long long)mag);
		size_t dl = strlen(digits);
		for (int64_t k = (int64_t)dl; prec >= 0 && k < prec; k++)
			dtk_buf_addc(&body, '0');
		dtk_buf_adds(&body, digits);
		if (flags & FL_ALT)
			prefix = conv == 'x' ? "0x" : conv == 'X' ? "0X" : conv == 'o' ? "0o" : "";
	} else {
		if (prec < 0)
			prec = 6;
		if (isnan(fv)) {
			dtk_buf_adds(&body, conv >= 'a' ? "nan" : "NAN");
		} else if (isinf(fv)) {
			dtk_buf_adds(&body, conv >= 'a' ? "inf" : "INF");
			if (fv < 0)
				sign = '-';
		} else {
			char f[16];
			snprintf(f, sizeof(f), "%%%s.*%c", (flags & FL_ALT) ? "#" : "", conv);
			if (signbit(fv))
				sign = '-';
			dtk_buf_printf(&body, f, (int)prec, fabs(fv));
		}
	}
	if (!sign && (flags & FL_SIGN))
		sign = '+';
	else if (!sign && (flags & FL_BLANK))
		sign = ' ';
	pad_number(out, flags, width, sign, prefix, dtk_buf_str(&body), body.len);
	int failed = body.failed;
	dtk_buf_free(&body);
	if (failed || out->failed)
		return tpl_fail(c, line, "formatted string exceeds %zu bytes", TPL_MAX_OUTPUT);
	return 0;
}

int tpl_percent(ectx *c, unsigned line, const char *fmt, size_t flen, rv **args, size_t nargs,
		int is_tuple, const dtk_value *mapping, dtk_buf *out)
{
	/* CPython's PyUnicode_Format: a non-tuple operand is one argument;
	 * a mapping-like operand (dict, list, Undefined) also excuses unused
	 * arguments */
	int64_t arglen = is_tuple ? (int64_t)nargs : -1;
	int64_t argidx = is_tuple ? 0 : -2;
	int dictlike = 0;
	if (!is_tuple) {
		const rv *a = args[0];
		dictlike = a->kind == RV_UNDEF ||
			   (a->kind == RV_VAL && (a->v->type == DTK_V_MAP || a->v->type == DTK_V_LIST));
	}
	if (mapping)
		dictlike = 1;
	size_t i = 0;
	while (i < flen) {
		if (fmt[i] != '%') {
			size_t j = i;
			while (j < flen && fmt[j] != '%')
				j++;
			dtk_buf_add(out, fmt + i, j - i);
			i = j;
			continue;
		}
		size_t start = i++;
		rv keyed = {0};
		int have_key = 0;
		if (i < flen && fmt[i] == '(') {
			if (!mapping)
				return tpl_fail(c, line, "TypeError: format requires a mapping");
			size_t depth = 1, k = ++i;
			while (i < flen && depth) {
				if (fmt[i] == '(')
					depth++;
				else if (fmt[i] == ')')
					depth--;
				i++;
			}
			if (depth)
				return tpl_fail(c, line, "ValueError: incomplete format key");
			const dtk_value *val = NULL;
			for (size_t m = 0; m < mapping->u.map.n; m++) {
				const dtk_value *key = mapping->u.map.items[m].key;
				if (key->type == DTK_V_STR && key->u.str.len == i - 1 - k &&
				    !memcmp(key->u.str.s, fmt + k, i - 1 - k))
					val = mapping->u.map.items[m].val;
			}
			if (!val)
				return tpl_fail(c, line, "KeyError: '%.*s'", (int)(i - 1 - k), fmt + k);
			rv_borrow(&keyed, val);
			have_key = 1;
			arglen = -1;
			argidx = -2;
		}
		int flags = 0;
		for (; i < flen; i++) {
			char f = fmt[i];
			if (f == '-')
				flags |= FL_LJUST;
			else if (f == '+')
				flags |= FL_SIGN;
			else if (f == ' ')
				flags |= FL_BLANK;
			else if (f == '#')
				flags |= FL_ALT;
			else if (f == '0')
				flags |= FL_ZERO;
			else
				break;
		}
		int64_t width = -1, prec = -1;
		for (int part = 0; part < 2; part++) {
			int64_t *dst = part ? &prec : &width;
			if (part) {
				if (i >= flen || fmt[i] != '.')
					break;
				i++;
				prec = 0;
			}
			if (i < flen && fmt[i] == '*') {
				i++;
				rv *a;
				if (argidx < arglen) {
					a = arglen < 0 ? args[0] : args[argidx];
					argidx++;
				} else {
					return tpl_fail(c, line, "TypeError: not enough arguments for "
								 "format string");
				}
				if (a->kind != RV_VAL || !is_intlike(a->v))
					return tpl_fail(c, line, "TypeError: * wants int");
				*dst = as_int(a->v);
				if (!part && *dst < 0) {
					flags |= FL_LJUST;
					*dst = -*dst;
				}
				if (part && *dst < 0)
					*dst = 0;
			} else {
				while (i < flen && fmt[i] >= '0' && fmt[i] <= '9') {
					if (*dst < 0)
						*dst = 0;
					if (*dst > (int64_t)TPL_MAX_OUTPUT)
						return tpl_fail(c, line, "ValueError: width too big");
					*dst = *dst * 10 + (fmt[i] - '0');
					i++;
				}
			}
		}
		while (i < flen && (fmt[i] == 'h' || fmt[i] == 'l' || fmt[i] == 'L'))
			i++;
		if (i >= flen)
			return tpl_fail(c, line, "ValueError: incomplete format");
		char conv = fmt[i++];
		if (conv == '%' && i == start + 2) {
			dtk_buf_addc(out, '%');
			continue;
		}
		const rv *a;
		if (have_key) {
			a = &keyed;
		} else if (argidx < arglen) {
			a = arglen < 0 ? args[0] : args[argidx];
			argidx++;
		} else {
			return tpl_fail(c, line, "TypeError: not enough arguments for format string");
		}
		if (conv == '\0' || !strchr("sradiuoxXeEfFgGc", conv)) {
			return tpl_fail(c, line,
					"ValueError: unsupported format character '%c' (0x%x) at "
					"index %zu",
					(unsigned char)conv < 0x80 && conv >= 0x20 ? conv : '?',
					(unsigned)(unsigned char)conv,
					tpl_utf8_count(fmt, i - 1));
		}
		if (fmt_one(c, line, out, a, conv, flags, width, prec) != 0)
			return -1;
		if (out->failed)
			return tpl_fail(c, line, "formatted string exceeds %zu bytes", TPL_MAX_OUTPUT);
	}
	if (argidx < arglen && !dictlike)
		return tpl_fail(c, line,
				"TypeError: not all arguments converted during string formatting");
	if (out->failed)
		return tpl_fail(c, line, "formatted string exceeds %zu bytes", TPL_MAX_OUTPUT);
	return 0;
}
