/* Template text to tokens, following jinja2/lexer.py with the default
 * Environment: newlines normalized to "\n", one trailing newline dropped
 * (keep_trailing_newline=False), trim_blocks and lstrip_blocks off, and the
 * "-" markers stripping whitespace around tags. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/tpl_internal.h"

typedef struct lexer {
	const char *s;
	size_t n;
	size_t pos;
	unsigned line;
	tpl_toks *toks;
	char *err;
	size_t errsz;
} lexer;

static int lex_fail(lexer *lx, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int lex_fail(lexer *lx, unsigned line, const char *fmt, ...)
{
	char msg[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(lx->err, lx->errsz, "line %u: %s", line, msg);
	return -1;
}

static tpl_tok *push_tok(lexer *lx, int type, unsigned line)
{
	tpl_toks *t = lx->toks;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		tpl_tok *v = realloc(t->v, cap * sizeof(*v));
		if (!v)
			return NULL;
		t->v = v;
		t->cap = cap;
	}
	tpl_tok *tok = &t->v[t->n++];
	memset(tok, 0, sizeof(*tok));
	tok->type = type;
	tok->line = line;
	return tok;
}

static int push_text(lexer *lx, int type, unsigned line, const char *s, size_t len)
{
	char *text = malloc(len + 1);
	if (!text)
		return lex_fail(lx, line, "out of memory");
	memcpy(text, s, len);
	text[len] = '\0';
	tpl_tok *tok = push_tok(lx, type, line);
	if (!tok) {
		free(text);
		return lex_fail(lx, line, "out of memory");
	}
	tok->text = text;
	tok->len = len;
	return 0;
}

void tpl_toks_free(tpl_toks *toks)
{
	for (size_t i = 0; i < toks->n; i++)
		free(toks->v[i].text);
	free(toks->v);
	memset(toks, 0, sizeof(*toks));
}

static unsigned count_nl(const char *s, size_t len)
{
	unsigned n = 0;
	for (size_t i = 0; i < len; i++)
		n += s[i] == '\n';
	return n;
}

/* Length of s[0..len) once trailing whitespace (Python str.rstrip()) is
 * removed. */
static size_t rstrip_len(const char *s, size_t len)
{
	size_t keep = 0, i = 0;
	while (i < len) {
		uint32_t cp;
		size_t k = tpl_utf8_next(s + i, len - i, &cp);
		i += k;
		if (!tpl_py_isspace(cp))
			keep = i;
	}
	return keep;
}

/* Skips whitespace (regex \s*) from lx->pos, counting lines. */
static void skip_ws(lexer *lx)
{
	while (lx->pos < lx->n) {
		uint32_t cp;
		size_t k = tpl_utf8_next(lx->s + lx->pos, lx->n - lx->pos, &cp);
		if (!tpl_py_isspace(cp))
			break;
		lx->line += cp == '\n';
		lx->pos += k;
	}
}

static int at(const lexer *lx, size_t p, const char *lit)
{
	size_t l = strlen(lit);
	return p + l <= lx->n && memcmp(lx->s + p, lit, l) == 0;
}

static int is_ws_byte(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Matches "{%[-+]?\s*raw\s*(-%}\s*|%})" at p; returns the length of the
 * match (without trailing whitespace) and whether it ended with "-%}". */
static size_t match_word_tag(const lexer *lx, size_t p, const char *word, int *sign, int *rstrip)
{
	size_t q = p;
	if (!at(lx, q, "{%"))
		return 0;
	q += 2;
	*sign = 0;
	if (q < lx->n && (lx->s[q] == '-' || lx->s[q] == '+'))
		*sign = lx->s[q++];
	while (q < lx->n && is_ws_byte(lx->s[q]))
		q++;
	if (!at(lx, q, word))
		return 0;
	q += strlen(word);
	while (q < lx->n && is_ws_byte(lx->s[q]))
		q++;
	*rstrip = 0;
	if (at(lx, q, "-%}")) {
		*rstrip = 1;
		return q + 3 - p;
	}
	if (at(lx, q, "+%}"))
		return q + 3 - p;
	if (at(lx, q, "%}"))
		return q + 2 - p;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes a string literal body as Python's unicode-escape codec does after
 * Jinja's backslashreplace step. */
static int decode_string(lexer *lx, unsigned line, const char *s, size_t len, tpl_tok *tok)
{
	dtk_buf b;
	dtk_buf_init(&b, TPL_MAX_OUTPUT);
	int rc = -1;
	size_t i = 0;
	while (i < len) {
		char c = s[i];
		if (c != '\\') {
			dtk_buf_addc(&b, c);
			i++;
			continue;
		}
		if (i + 1 >= len) {
			rc = lex_fail(lx, line, "\\ at end of string");
			goto out;
		}
		unsigned char e = (unsigned char)s[i + 1];
		i += 2;
		switch (e) {
		case '\n':
			break;
		case '\\':
		case '\'':
		case '"':
			dtk_buf_addc(&b, (char)e);
			break;
		case 'a':
			dtk_buf_addc(&b, '\a');
			break;
		case 'b':
			dtk_buf_addc(&b, '\b');
			break;
		case 'f':
			dtk_buf_addc(&b, '\f');
			break;
		case 'n':
			dtk_buf_addc(&b, '\n');
			break;
		case 'r':
			dtk_buf_addc(&b, '\r');
			break;
		case 't':
			dtk_buf_addc(&b, '\t');
			break;
		case 'v':
			dtk_buf_addc(&b, '\v');
			break;
		case 'x':
		case 'u':
		case 'U': {
			int nd = e == 'x' ? 2 : e == 'u' ? 4 : 8;
			uint32_t cp = 0;
			for (int k = 0; k < nd; k++) {
				int h = i + (size_t)k < len ? hexval(s[i + k]) : -1;
				if (h < 0) {
					rc = lex_fail(lx, line, "truncated \\%c escape in string", e);
					goto out;
				}
				cp = cp * 16 + (uint32_t)h;
			}
			i += (size_t)nd;
			if (cp > 0x10FFFF) {
				rc = lex_fail(lx, line, "illegal Unicode character in string");
				goto out;
			}
			tpl_utf8_put(&b, cp);
			break;
		}
		case 'N':
			rc = lex_fail(lx, line, "not supported: \\N{...} escape in string");
			goto out;
		default:
			if (e >= '0' && e <= '7') {
				uint32_t cp = e - '0';
				for (int k = 0; k < 2 && i < len && s[i] >= '0' && s[i] <= '7'; k++)
					cp = cp * 8 + (uint32_t)(s[i++] - '0');
				tpl_utf8_put(&b, cp);
			} else if (e >= 0x80) {
				/* backslashreplace turned the character into an
				 * escape whose own backslash this one escapes */
				uint32_t cp;
				size_t k = tpl_utf8_next(s + i - 1, len - (i - 1), &cp);
				i += k - 1;
				dtk_buf_addc(&b, '\\');
				if (cp < 0x100)
					dtk_buf_printf(&b, "x%02x", (unsigned)cp);
				else if (cp < 0x10000)
					dtk_buf_printf(&b, "u%04x", (unsigned)cp);
				else
					dtk_buf_printf(&b, "U%08x", (unsigned)cp);
			} else {
				dtk_buf_addc(&b, '\\');
				dtk_buf_addc(&b, (char)e);
			}
			break;
		}
	}
	if (b.failed) {
		rc = lex_fail(lx, line, "string literal too long");
		goto out;
	}
	tok->len = b.len;
	tok->text = dtk_buf_take(&b);
	if (!tok->text) {
		rc = lex_fail(lx, line, "out of memory");
		goto out;
	}
	rc = 0;
out:
	dtk_buf_free(&b);
	return rc;
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* (\d+_)*\d+ at p: returns the end, or p when no match. */
static size_t match_digits(const lexer *lx, size_t p)
{
	size_t q = p;
	if (q >= lx->n || !is_digit(lx->s[q]))
		return p;
	for (;;) {
		while (q < lx->n && is_digit(lx->s[q]))
			q++;
		if (q + 1 < lx->n && lx->s[q] == '_' && is_digit(lx->s[q + 1])) {
			q++;
			continue;
		}
		return q;
	}
}

/* Jinja's float_re; returns the end or p. */
static size_t match_float(const lexer *lx, size_t p)
{
	if (p > 0 && lx->s[p - 1] == '.')
		return p;
	size_t q = match_digits(lx, p);
	if (q == p)
		return p;
	size_t frac_end = q;
	if (q < lx->n && lx->s[q] == '.') {
		size_t f = match_digits(lx, q + 1);
		if (f != q + 1)
			frac_end = f;
	}
	size_t e = frac_end;
	if (e < lx->n && (lx->s[e] == 'e' || lx->s[e] == 'E')) {
		size_t x = e + 1;
		if (x < lx->n && (lx->s[x] == '+' || lx->s[x] == '-'))
			x++;
		size_t d = match_digits(lx, x);
		if (d != x)
			return d;
	}
	return frac_end != q ? frac_end : p;
}

/* Jinja's integer_re; returns the end or p, and the value (errno ERANGE
 * when it does not fit in 64 bits). */
static size_t match_int(const lexer *lx, size_t p, int64_t *val, int *overflow)
{
	size_t q = p;
	int base = 10;
	*overflow = 0;
	if (q + 1 < lx->n && lx->s[q] == '0' && strchr("bBoOxX", lx->s[q + 1]) && lx->s[q + 1]) {
		char k = (char)(lx->s[q + 1] | 0x20);
		base = k == 'b' ? 2 : k == 'o' ? 8 : 16;
		size_t r = q + 2;
		size_t last = q;
		uint64_t v = 0;
		for (;;) {
			size_t t = r;
			if (t < lx->n && lx->s[t] == '_')
				t++;
			int d = t < lx->n ? hexval(lx->s[t]) : -1;
			if (d < 0 || d >= base)
				break;
			if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
				*overflow = 1;
			v = v * (uint64_t)base + (uint64_t)d;
			r = t + 1;
			last = r;
		}
		if (last != q) {
			if (v > INT64_MAX)
				*overflow = 1;
			*val = (int64_t)v;
			return last;
		}
		/* "0b" alone: the integer is the "0" */
	}
	if (q >= lx->n || !is_digit(lx->s[q]))
		return p;
	uint64_t v = 0;
	if (lx->s[q] == '0') {
		q++;
		while (q + 1 < lx->n && lx->s[q] == '_' && lx->s[q + 1] == '0')
			q += 2;
		while (q < lx->n && lx->s[q] == '0')
			q++;
		*val = 0;
		return q;
	}
	for (;;) {
		while (q < lx->n && is_digit(lx->s[q])) {
			uint64_t d = (uint64_t)(lx->s[q] - '0');
			if (v > (UINT64_MAX - d) / 10)
				*overflow = 1;
			v = v * 10 + d;
			q++;
		}
		if (q + 1 < lx->n && lx->s[q] == '_' && is_digit(lx->s[q + 1])) {
			q++;
			continue;
		}
		break;
	}
	if (v > INT64_MAX)
		*overflow = 1;
	*val = (int64_t)v;
	return q;
}

static const struct {
	const char *text;
	int op;
} ops2[] = {
	{"//", OP_FLOORDIV}, {"**", OP_POW}, {"==", OP_EQ},
	{"!=", OP_NE},       {"<=", OP_LE},  {">=", OP_GE},
};

/* Tokenizes the inside of {{ }} or {% %} up to and including its end. */
static int lex_tag(lexer *lx, int is_block, unsigned begin_line)
{
	char stack[TPL_MAX_DEPTH];
	size_t depth = 0;
	for (;;) {
		size_t p = lx->pos;
		if (depth == 0) {
			size_t endlen = 0;
			int strip = 0;
			if (is_block) {
				if (at(lx, p, "-%}"))
					endlen = 3, strip = 1;
				else if (at(lx, p, "+%}"))
					endlen = 3;
				else if (at(lx, p, "%}"))
					endlen = 2;
			} else {
				if (at(lx, p, "-}}"))
					endlen = 3, strip = 1;
				else if (at(lx, p, "}}"))
					endlen = 2;
			}
			if (endlen) {
				if (!push_tok(lx, is_block ? TK_BLOCK_END : TK_VAR_END, lx->line))
					return lex_fail(lx, lx->line, "out of memory");
				lx->pos += endlen;
				if (strip)
					skip_ws(lx);
				return 0;
			}
		}
		if (p >= lx->n)
			return lex_fail(lx, lx->line,
					"unexpected end of template, expected '%s' (the tag "
					"opened on line %u)",
					is_block ? "%}" : "}}", begin_line);
		char c = lx->s[p];
		if (is_ws_byte(c)) {
			skip_ws(lx);
			continue;
		}
		size_t e = match_float(lx, p);
		if (e != p) {
			char num[128];
			size_t k = 0;
			for (size_t i = p; i < e && k + 1 < sizeof(num); i++)
				if (lx->s[i] != '_')
					num[k++] = lx->s[i];
			num[k] = '\0';
			tpl_tok *t = push_tok(lx, TK_FLOAT, lx->line);
			if (!t)
				return lex_fail(lx, lx->line, "out of memory");
			t->fval = strtod(num, NULL);
			lx->pos = e;
			continue;
		}
		int64_t iv;
		int ovf;
		e = match_int(lx, p, &iv, &ovf);
		if (e != p) {
			if (ovf)
				return lex_fail(lx, lx->line,
						"not supported: integer literal beyond 64 bits");
			tpl_tok *t = push_tok(lx, TK_INT, lx->line);
			if (!t)
				return lex_fail(lx, lx->line, "out of memory");
			t->ival = iv;
			lx->pos = e;
			continue;
		}
		uint32_t cp;
		size_t k = tpl_utf8_next(lx->s + p, lx->n - p, &cp);
		if (tpl_py_isident(cp, 1)) {
			size_t q = p + k;
			while (q < lx->n) {
				k = tpl_utf8_next(lx->s + q, lx->n - q, &cp);
				if (!tpl_py_isident(cp, 0))
					break;
				q += k;
			}
			if (push_text(lx, TK_NAME, lx->line, lx->s + p, q - p) != 0)
				return -1;
			lx->pos = q;
			continue;
		}
		if (c == '\'' || c == '"') {
			size_t q = p + 1;
			while (q < lx->n && lx->s[q] != c) {
				if (lx->s[q] == '\\' && q + 1 < lx->n)
					q++;
				q++;
			}
			if (q < lx->n) {
				unsigned line = lx->line;
				tpl_tok *t = push_tok(lx, TK_STRING, line);
				if (!t)
					return lex_fail(lx, line, "out of memory");
				if (decode_string(lx, line, lx->s + p + 1, q - p - 1, t) != 0)
					return -1;
				lx->line += count_nl(lx->s + p, q - p);
				lx->pos = q + 1;
				continue;
			}
			return lex_fail(lx, lx->line, "unexpected char '%c' (unterminated string)",
					c);
		}
		int op = 0;
		size_t oplen = 1;
		for (size_t i = 0; i < sizeof(ops2) / sizeof(ops2[0]); i++)
			if (at(lx, p, ops2[i].text)) {
				op = ops2[i].op;
				oplen = 2;
				break;
			}
		if (!op && strchr("+-/*%~[](){}<>=.:|,;", c) && c)
			op = c;
		if (!op) {
			if ((unsigned char)c >= 0x80)
				return lex_fail(lx, lx->line, "unexpected character U+%04X",
						(unsigned)cp);
			return lex_fail(lx, lx->line, "unexpected char '%c'", c);
		}
		if (op == '(' || op == '[' || op == '{') {
			if (depth >= sizeof(stack))
				return lex_fail(lx, lx->line, "brackets nested too deeply");
			stack[depth++] = (char)op;
		} else if (op == ')' || op == ']' || op == '}') {
			char want = op == ')' ? '(' : op == ']' ? '[' : '{';
			if (depth == 0)
				return lex_fail(lx, lx->line, "unexpected '%c'", op);
			if (stack[depth - 1] != want) {
				char close = stack[depth - 1] == '(' ? ')' :
					     stack[depth - 1] == '[' ? ']' : '}';
				return lex_fail(lx, lx->line, "unexpected '%c', expected '%c'", op,
						close);
			}
			depth--;
		}
		tpl_tok *t = push_tok(lx, TK_OP, lx->line);
		if (!t)
			return lex_fail(lx, lx->line, "out of memory");
		t->op = op;
		lx->pos = p + oplen;
	}
}

int tpl_lex(const char *text, tpl_toks *toks, char *errstr, size_t errstr_size)
{
	int rc = -1;
	size_t tl = strlen(text);
	char *src = malloc(tl + 1);
	lexer lx = {.toks = toks, .err = errstr, .errsz = errstr_size, .line = 1};
	if (!src) {
		snprintf(errstr, errstr_size, "line 1: out of memory");
		return -1;
	}
	size_t n = 0;
	for (size_t i = 0; i < tl; i++) {
		if (text[i] == '\r') {
			src[n++] = '\n';
			if (i + 1 < tl && text[i + 1] == '\n')
				i++;
		} else {
			src[n++] = text[i];
		}
	}
	if (n > 0 && src[n - 1] == '\n')
		n--;
	src[n] = '\0';
	lx.s = src;
	lx.n = n;

	while (lx.pos < lx.n) {
		size_t m = lx.pos;
		while (m + 1 < lx.n && !(lx.s[m] == '{' && strchr("{%#", lx.s[m + 1])))
			m++;
		if (m + 1 >= lx.n) {
			if (push_text(&lx, TK_DATA, lx.line, lx.s + lx.pos, lx.n - lx.pos) != 0)
				goto out;
			lx.line += count_nl(lx.s + lx.pos, lx.n - lx.pos);
			break;
		}
		char kind = lx.s[m + 1];
		int raw_sign = 0, raw_strip = 0;
		size_t rawlen = kind == '%' ? match_word_tag(&lx, m, "raw", &raw_sign, &raw_strip) : 0;
		char sign = rawlen ? (char)raw_sign
				   : (m + 2 < lx.n && (lx.s[m + 2] == '-' || lx.s[m + 2] == '+'))
					     ? lx.s[m + 2]
					     : 0;
		size_t dlen = m - lx.pos;
		size_t keep = sign == '-' ? rstrip_len(lx.s + lx.pos, dlen) : dlen;
		if (keep && push_text(&lx, TK_DATA, lx.line, lx.s + lx.pos, keep) != 0)
			goto out;
		lx.line += count_nl(lx.s + lx.pos, dlen);
		unsigned tag_line = lx.line;
		if (rawlen) {
			lx.line += count_nl(lx.s + m, rawlen);
			lx.pos = m + rawlen;
			if (raw_strip)
				skip_ws(&lx);
			if (lx.pos >= lx.n)
				break;
			size_t j = lx.pos, endlen = 0;
			int esign = 0, estrip = 0;
			for (; j < lx.n; j++)
				if ((endlen = match_word_tag(&lx, j, "endraw", &esign, &estrip)))
					break;
			if (!endlen) {
				lex_fail(&lx, tag_line, "missing end of raw directive");
				goto out;
			}
			size_t blen = j - lx.pos;
			size_t bkeep = esign == '-' ? rstrip_len(lx.s + lx.pos, blen) : blen;
			if (bkeep && push_text(&lx, TK_DATA, lx.line, lx.s + lx.pos, bkeep) != 0)
				goto out;
			lx.line += count_nl(lx.s + lx.pos, j + endlen - lx.pos);
			lx.pos = j + endlen;
			if (estrip)
				skip_ws(&lx);
			continue;
		}
		lx.pos = m + 2 + (sign ? 1 : 0);
		if (kind == '#' && lx.pos >= lx.n)
			break; /* Jinja's lexer stops at the end, even inside a comment */
		if (kind == '#') {
			size_t j = lx.pos;
			size_t endlen = 0;
			int strip = 0;
			for (; j < lx.n; j++) {
				if (at(&lx, j, "-#}")) {
					endlen = 3, strip = 1;
					break;
				}
				if (at(&lx, j, "+#}")) {
					endlen = 3;
					break;
				}
				if (at(&lx, j, "#}")) {
					endlen = 2;
					break;
				}
			}
			if (!endlen) {
				lex_fail(&lx, tag_line, "missing end of comment tag");
				goto out;
			}
			lx.line += count_nl(lx.s + lx.pos, j - lx.pos);
			lx.pos = j + endlen;
			if (strip)
				skip_ws(&lx);
			continue;
		}
		if (!push_tok(&lx, kind == '%' ? TK_BLOCK_BEGIN : TK_VAR_BEGIN, tag_line)) {
			lex_fail(&lx, tag_line, "out of memory");
			goto out;
		}
		if (lex_tag(&lx, kind == '%', tag_line) != 0)
			goto out;
	}
	if (!push_tok(&lx, TK_EOF, lx.line)) {
		lex_fail(&lx, lx.line, "out of memory");
		goto out;
	}
	rc = 0;
out:
	free(src);
	if (rc != 0)
		tpl_toks_free(toks);
	return rc;
}
