#include "util/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dtk_buf_init(dtk_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max ? max : DTK_BUF_DEFAULT_MAX;
}

static int buf_reserve(dtk_buf *b, size_t extra)
{
	if (b->failed)
		return -1;
	if (!b->max)
		b->max = DTK_BUF_DEFAULT_MAX;
	if (extra > b->max - b->len) {
		b->failed = 1;
		return -1;
	}
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	/* never more room than the maximum allows: the fast paths rely on it */
	if (cap > b->max + 1)
		cap = b->max + 1;
	char *data = realloc(b->data, cap);
	if (!data) {
		b->failed = 1;
		return -1;
	}
	b->data = data;
	b->cap = cap;
	return 0;
}

int dtk_buf_add(dtk_buf *b, const void *data, size_t len)
{
	/* the common case, room already there, skips buf_reserve's checks
	 * (cap never exceeds max + 1, so room means under the maximum) */
	if (b->failed || len >= b->cap - b->len) {
		if (buf_reserve(b, len) != 0)
			return -1;
	}
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int dtk_buf_adds(dtk_buf *b, const char *s)
{
	return dtk_buf_add(b, s, strlen(s));
}

int dtk_buf_addc(dtk_buf *b, char c)
{
	if (b->failed || b->cap - b->len < 2)
		return dtk_buf_add(b, &c, 1);
	b->data[b->len++] = c;
	b->data[b->len] = '\0';
	return 0;
}

int dtk_buf_vprintf(dtk_buf *b, const char *fmt, va_list ap)
{
	if (b->failed)
		return -1;
	/* format once into the room there is; only a longer text formats twice */
	size_t room = b->cap - b->len;
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap2);
	va_end(ap2);
	if (n < 0) {
		if (room)
			b->data[b->len] = '\0';
		return -1;
	}
	if ((size_t)n >= room) {
		if (room)
			b->data[b->len] = '\0';
		if (buf_reserve(b, (size_t)n) != 0)
			return -1;
		vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	}
	b->len += (size_t)n;
	return 0;
}

int dtk_buf_printf(dtk_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = dtk_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

void dtk_buf_reset(dtk_buf *b)
{
	b->len = 0;
	b->failed = 0;
	if (b->data)
		b->data[0] = '\0';
}

const char *dtk_buf_str(const dtk_buf *b)
{
	return b->data ? b->data : "";
}

char *dtk_buf_take(dtk_buf *b)
{
	char *s = b->data ? b->data : strdup("");
	size_t max = b->max;
	memset(b, 0, sizeof(*b));
	b->max = max;
	return s;
}

void dtk_buf_free(dtk_buf *b)
{
	free(b->data);
	size_t max = b->max;
	memset(b, 0, sizeof(*b));
	b->max = max;
}
