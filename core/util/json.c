#include "util/json.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/pyfmt.h"

#define JSON_MAX_DEPTH 200

/* Appends the escape of the byte (or UTF-8 sequence) at s[*i] and leaves *i
 * on its last byte. */
static void emit_escape(dtk_buf *out, const char *s, size_t len, size_t *i)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char c = (unsigned char)s[*i];
	switch (c) {
	case '"':
		dtk_buf_add(out, "\\\"", 2);
		return;
	case '\\':
		dtk_buf_add(out, "\\\\", 2);
		return;
	case '\n':
		dtk_buf_add(out, "\\n", 2);
		return;
	case '\r':
		dtk_buf_add(out, "\\r", 2);
		return;
	case '\t':
		dtk_buf_add(out, "\\t", 2);
		return;
	case '\b':
		dtk_buf_add(out, "\\b", 2);
		return;
	case '\f':
		dtk_buf_add(out, "\\f", 2);
		return;
	default:
		break;
	}
	if (c < 0x20) {
		char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
		dtk_buf_add(out, esc, sizeof(esc));
		return;
	}
	/* decode one UTF-8 sequence into \uXXXX (surrogate pairs above BMP) */
	int extra = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
	unsigned cp = extra == 3 ? c & 7 : extra == 2 ? c & 15 : c & 31;
	if (!extra || *i + (size_t)extra >= len) {
		dtk_buf_adds(out, "\\ufffd");
		return;
	}
	for (int k = 1; k <= extra; k++)
		cp = (cp << 6) | ((unsigned char)s[*i + (size_t)k] & 0x3f);
	*i += (size_t)extra;
	char esc[16];
	if (cp >= 0x10000) {
		cp -= 0x10000;
		snprintf(esc, sizeof(esc), "\\u%04x\\u%04x", 0xd800 + (cp >> 10),
			 0xdc00 + (cp & 0x3ff));
	} else {
		snprintf(esc, sizeof(esc), "\\u%04x", cp);
	}
	dtk_buf_adds(out, esc);
}

int dtk_json_emit_str(dtk_buf *out, const char *s, size_t len, int flags)
{
	unsigned char top = (flags & DTK_JSON_RAW_UTF8) ? 0xff : 0x7f;
	dtk_buf_addc(out, '"');
	/* bytes that stand for themselves go out in runs, one copy each */
	size_t run = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c <= top && c != '"' && c != '\\')
			continue;
		dtk_buf_add(out, s + run, i - run);
		emit_escape(out, s, len, &i);
		run = i + 1;
	}
	dtk_buf_add(out, s + run, len - run);
	return dtk_buf_addc(out, '"');
}

static void emit_indent(dtk_buf *out, int flags, int depth)
{
	if (!(flags & DTK_JSON_PRETTY))
		return;
	dtk_buf_addc(out, '\n');
	for (int i = 0; i < depth; i++)
		dtk_buf_adds(out, "  ");
}

static int kv_cmp(const void *a, const void *b)
{
	const dtk_kv *x = a, *y = b;
	const char *xs = x->key->type == DTK_V_STR ? x->key->u.str.s : "";
	const char *ys = y->key->type == DTK_V_STR ? y->key->u.str.s : "";
	return strcmp(xs, ys);
}

static void emit_key(dtk_buf *out, const dtk_value *k, int flags)
{
	char tmp[64];
	switch (k->type) {
	case DTK_V_STR:
		dtk_json_emit_str(out, k->u.str.s, k->u.str.len, flags);
		return;
	case DTK_V_INT:
		snprintf(tmp, sizeof(tmp), "\"%lld\"", (long long)k->u.i);
		break;
	case DTK_V_BOOL:
		snprintf(tmp, sizeof(tmp), "\"%s\"", k->u.b ? "true" : "false");
		break;
	case DTK_V_NULL:
		snprintf(tmp, sizeof(tmp), "\"null\"");
		break;
	case DTK_V_FLOAT: {
		char f[32];
		dtk_pyfmt_float(k->u.f, f, sizeof(f));
		snprintf(tmp, sizeof(tmp), "\"%s\"", f);
		break;
	}
	default:
		snprintf(tmp, sizeof(tmp), "\"?\"");
		break;
	}
	dtk_buf_adds(out, tmp);
}

/* printf's %lld without its format parsing: results carry many integers */
static int emit_int(dtk_buf *out, int64_t i)
{
	char tmp[24];
	char *p = tmp + sizeof(tmp);
	uint64_t u = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (i < 0)
		*--p = '-';
	return dtk_buf_add(out, p, (size_t)(tmp + sizeof(tmp) - p));
}

static int emit(dtk_buf *out, const dtk_value *v, int flags, int depth)
{
	const char *comma = (flags & DTK_JSON_PY_SEPARATORS) ? ", " : ",";
	const char *colon = (flags & (DTK_JSON_PY_SEPARATORS | DTK_JSON_PRETTY)) ? ": " : ":";
	if (flags & DTK_JSON_PRETTY)
		comma = ",";
	char tmp[64];
	if (!v)
		return dtk_buf_adds(out, "null");
	switch (v->type) {
	case DTK_V_NULL:
		return dtk_buf_adds(out, "null");
	case DTK_V_BOOL:
		return dtk_buf_adds(out, v->u.b ? "true" : "false");
	case DTK_V_INT:
		return emit_int(out, v->u.i);
	case DTK_V_FLOAT:
		if (isnan(v->u.f))
			return dtk_buf_adds(out, (flags & DTK_JSON_INF_AS_STRING) ? "null" : "NaN");
		if (isinf(v->u.f)) {
			if (flags & DTK_JSON_INF_AS_STRING)
				return dtk_buf_adds(out, v->u.f > 0 ? "\"inf\"" : "\"-inf\"");
			return dtk_buf_adds(out, v->u.f > 0 ? "Infinity" : "-Infinity");
		}
		dtk_pyfmt_float(v->u.f, tmp, sizeof(tmp));
		return dtk_buf_adds(out, tmp);
	case DTK_V_STR:
		return dtk_json_emit_str(out, v->u.str.s, v->u.str.len, flags);
	case DTK_V_DATE: {
		int y, m, d;
		dtk_pyfmt_civil(v->u.dt.secs / 86400, &y, &m, &d);
		return dtk_buf_printf(out, "\"%04d-%02d-%02d\"", y, m, d);
	}
	case DTK_V_DATETIME:
		dtk_pyfmt_datetime(v->u.dt.secs, v->u.dt.usec, 'T', tmp, sizeof(tmp));
		if (v->u.dt.has_tz) {
			int off = v->u.dt.tz_min;
			size_t n = strlen(tmp);
			snprintf(tmp + n, sizeof(tmp) - n, "%c%02d:%02d", off < 0 ? '-' : '+',
				 abs(off) / 60, abs(off) % 60);
		}
		dtk_buf_addc(out, '"');
		dtk_buf_adds(out, tmp);
		return dtk_buf_addc(out, '"');
	case DTK_V_LIST:
		dtk_buf_addc(out, '[');
		for (size_t i = 0; i < v->u.list.n; i++) {
			if (i)
				dtk_buf_adds(out, comma);
			emit_indent(out, flags, depth + 1);
			emit(out, v->u.list.items[i], flags, depth + 1);
		}
		if (v->u.list.n)
			emit_indent(out, flags, depth);
		return dtk_buf_addc(out, ']');
	case DTK_V_MAP: {
		dtk_kv *items = v->u.map.items;
		dtk_kv *sorted = NULL;
		if ((flags & DTK_JSON_SORT_KEYS) && v->u.map.n > 1) {
			sorted = malloc(v->u.map.n * sizeof(*sorted));
			if (!sorted) {
				out->failed = 1;
				return -1;
			}
			memcpy(sorted, items, v->u.map.n * sizeof(*sorted));
			qsort(sorted, v->u.map.n, sizeof(*sorted), kv_cmp);
			items = sorted;
		}
		dtk_buf_addc(out, '{');
		for (size_t i = 0; i < v->u.map.n; i++) {
			if (i)
				dtk_buf_adds(out, comma);
			emit_indent(out, flags, depth + 1);
			emit_key(out, items[i].key, flags);
			dtk_buf_adds(out, colon);
			emit(out, items[i].val, flags, depth + 1);
		}
		if (v->u.map.n)
			emit_indent(out, flags, depth);
		free(sorted);
		return dtk_buf_addc(out, '}');
	}
	}
	return -1;
}

int dtk_json_emit(dtk_buf *out, const dtk_value *v, int flags)
{
	emit(out, v, flags, 0);
	return out->failed ? -1 : 0;
}

typedef struct json_parser {
	const char *s;
	size_t len, pos;
	char *errstr;
	size_t errstr_size;
	int failed;
} json_parser;

static void jp_fail(json_parser *p, const char *what)
{
	if (p->failed)
		return;
	p->failed = 1;
	unsigned line = 1, col = 1;
	for (size_t i = 0; i < p->pos && i < p->len; i++) {
		if (p->s[i] == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	snprintf(p->errstr, p->errstr_size, "invalid JSON at line %u column %u: %s", line, col,
		 what);
}

static void jp_ws(json_parser *p)
{
	while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
				   p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
		p->pos++;
}

static int jp_lit(json_parser *p, const char *lit)
{
	size_t n = strlen(lit);
	if (p->len - p->pos >= n && memcmp(p->s + p->pos, lit, n) == 0) {
		p->pos += n;
		return 1;
	}
	return 0;
}

static int hex4(const char *s, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = s[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static void put_utf8(dtk_buf *b, unsigned cp)
{
	char u[4];
	if (cp < 0x80) {
		dtk_buf_addc(b, (char)cp);
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		dtk_buf_add(b, u, 2);
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		dtk_buf_add(b, u, 3);
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		dtk_buf_add(b, u, 4);
	}
}

static dtk_value *jp_string(json_parser *p)
{
	/* most strings have no escape: one value straight from the text */
	size_t stop = p->pos + 1;
	while (stop < p->len && p->s[stop] != '"' && p->s[stop] != '\\' &&
	       (unsigned char)p->s[stop] >= 0x20)
		stop++;
	if (stop < p->len && p->s[stop] == '"') {
		dtk_value *v = dtk_value_strn(p->s + p->pos + 1, stop - p->pos - 1);
		p->pos = stop + 1;
		return v;
	}
	dtk_buf b;
	dtk_buf_init(&b, p->len + 1);
	p->pos++; /* opening quote */
	while (p->pos < p->len) {
		unsigned char c = (unsigned char)p->s[p->pos];
		if (c == '"') {
			p->pos++;
			dtk_value *v = dtk_value_strn(dtk_buf_str(&b), b.len);
			dtk_buf_free(&b);
			return v;
		}
		if (c < 0x20) {
			jp_fail(p, "control character in string");
			break;
		}
		if (c != '\\') {
			/* copy the whole run up to the next quote, escape or control */
			size_t end = p->pos + 1;
			while (end < p->len && p->s[end] != '"' && p->s[end] != '\\' &&
			       (unsigned char)p->s[end] >= 0x20)
				end++;
			dtk_buf_add(&b, p->s + p->pos, end - p->pos);
			p->pos = end;
			continue;
		}
		if (p->pos + 1 >= p->len)
			break;
		char e = p->s[p->pos + 1];
		p->pos += 2;
		switch (e) {
		case '"':
		case '\\':
		case '/':
			dtk_buf_addc(&b, e);
			break;
		case 'n':
			dtk_buf_addc(&b, '\n');
			break;
		case 't':
			dtk_buf_addc(&b, '\t');
			break;
		case 'r':
			dtk_buf_addc(&b, '\r');
			break;
		case 'b':
			dtk_buf_addc(&b, '\b');
			break;
		case 'f':
			dtk_buf_addc(&b, '\f');
			break;
		case 'u': {
			unsigned cp, lo;
			if (p->pos + 4 > p->len || hex4(p->s + p->pos, &cp) != 0) {
				jp_fail(p, "bad \\u escape");
				goto fail;
			}
			p->pos += 4;
			if (cp >= 0xd800 && cp < 0xdc00 && p->pos + 6 <= p->len &&
			    p->s[p->pos] == '\\' && p->s[p->pos + 1] == 'u' &&
			    hex4(p->s + p->pos + 2, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				p->pos += 6;
			}
			put_utf8(&b, cp);
			break;
		}
		default:
			jp_fail(p, "bad escape in string");
			goto fail;
		}
	}
	jp_fail(p, "unterminated string");
fail:
	dtk_buf_free(&b);
	return NULL;
}

static dtk_value *jp_number(json_parser *p)
{
	size_t start = p->pos;
	int is_float = 0;
	if (p->s[p->pos] == '-')
		p->pos++;
	if (jp_lit(p, "Infinity"))
		return dtk_value_float(p->s[start] == '-' ? -INFINITY : INFINITY);
	while (p->pos < p->len) {
		char c = p->s[p->pos];
		if (c >= '0' && c <= '9') {
			p->pos++;
		} else if (c == '.' || c == 'e' || c == 'E' || c == '+' ||
			   (c == '-' && p->pos > start)) {
			is_float = 1;
			p->pos++;
		} else {
			break;
		}
	}
	char tmp[128];
	size_t n = p->pos - start;
	if (n == 0 || n >= sizeof(tmp) || (n == 1 && p->s[start] == '-')) {
		jp_fail(p, "bad number");
		return NULL;
	}
	memcpy(tmp, p->s + start, n);
	tmp[n] = '\0';
	char *end;
	errno = 0;
	if (!is_float) {
		long long i = strtoll(tmp, &end, 10);
		if (*end == '\0' && errno == 0)
			return dtk_value_int(i);
		errno = 0;
	}
	double f = strtod(tmp, &end);
	if (*end != '\0') {
		jp_fail(p, "bad number");
		return NULL;
	}
	return dtk_value_float(f);
}

static dtk_value *jp_value(json_parser *p, int depth)
{
	if (depth > JSON_MAX_DEPTH) {
		jp_fail(p, "nesting too deep");
		return NULL;
	}
	jp_ws(p);
	if (p->pos >= p->len) {
		jp_fail(p, "unexpected end of input");
		return NULL;
	}
	char c = p->s[p->pos];
	if (c == '"')
		return jp_string(p);
	if (c == '-' || (c >= '0' && c <= '9') || c == 'I')
		return c == 'I' ? (jp_lit(p, "Infinity") ? dtk_value_float(INFINITY) : NULL)
				: jp_number(p);
	if (jp_lit(p, "null"))
		return dtk_value_null();
	if (jp_lit(p, "true"))
		return dtk_value_bool(1);
	if (jp_lit(p, "false"))
		return dtk_value_bool(0);
	if (jp_lit(p, "NaN"))
		return dtk_value_float(NAN);
	if (c == '[') {
		p->pos++;
		dtk_value *list = dtk_value_list();
		jp_ws(p);
		if (p->pos < p->len && p->s[p->pos] == ']') {
			p->pos++;
			return list;
		}
		for (;;) {
			dtk_value *item = jp_value(p, depth + 1);
			if (!item || dtk_value_list_push(list, item) != 0) {
				dtk_value_free(&item);
				break;
			}
			jp_ws(p);
			if (p->pos < p->len && p->s[p->pos] == ',') {
				p->pos++;
				continue;
			}
			if (p->pos < p->len && p->s[p->pos] == ']') {
				p->pos++;
				return list;
			}
			jp_fail(p, "expected ',' or ']'");
			break;
		}
		dtk_value_free(&list);
		return NULL;
	}
	if (c == '{') {
		p->pos++;
		dtk_value *map = dtk_value_map();
		jp_ws(p);
		if (p->pos < p->len && p->s[p->pos] == '}') {
			p->pos++;
			return map;
		}
		for (;;) {
			jp_ws(p);
			if (p->pos >= p->len || p->s[p->pos] != '"') {
				jp_fail(p, "expected a string key");
				break;
			}
			dtk_value *key = jp_string(p);
			if (!key)
				break;
			jp_ws(p);
			if (p->pos >= p->len || p->s[p->pos] != ':') {
				dtk_value_free(&key);
				jp_fail(p, "expected ':'");
				break;
			}
			p->pos++;
			dtk_value *val = jp_value(p, depth + 1);
			if (!val || dtk_value_map_set_v(map, key, val) != 0) {
				dtk_value_free(&key);
				dtk_value_free(&val);
				break;
			}
			jp_ws(p);
			if (p->pos < p->len && p->s[p->pos] == ',') {
				p->pos++;
				continue;
			}
			if (p->pos < p->len && p->s[p->pos] == '}') {
				p->pos++;
				return map;
			}
			jp_fail(p, "expected ',' or '}'");
			break;
		}
		dtk_value_free(&map);
		return NULL;
	}
	jp_fail(p, "unexpected character");
	return NULL;
}

dtk_value *dtk_json_parse(const char *text, size_t len, char *errstr, size_t errstr_size)
{
	json_parser p = {.s = text, .len = len, .errstr = errstr, .errstr_size = errstr_size};
	dtk_value *v = jp_value(&p, 0);
	if (v) {
		jp_ws(&p);
		if (p.pos != p.len) {
			jp_fail(&p, "trailing characters after the document");
			dtk_value_free(&v);
		}
	} else {
		jp_fail(&p, "invalid value");
	}
	return v;
}
