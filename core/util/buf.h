/* A bounded growable byte buffer (curl's dynbuf idea): every buffer built
 * from outside input has a maximum size and fails cleanly past it.
 *
 * The buffer owns its memory; dtk_buf_free releases it. dtk_buf_take hands
 * the NUL-terminated contents to the caller, who frees them with free().
 * Not thread-safe. */
#ifndef DTK_UTIL_BUF_H
#define DTK_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

#define DTK_BUF_DEFAULT_MAX ((size_t)64 << 20)

typedef struct dtk_buf {
	char *data; /* always NUL-terminated when non-NULL */
	size_t len;
	size_t cap;
	size_t max; /* maximum len; 0 means DTK_BUF_DEFAULT_MAX */
	int failed; /* set once an append failed; later appends are ignored */
} dtk_buf;

void dtk_buf_init(dtk_buf *b, size_t max);
/* Each returns 0, or -1 (and sets b->failed) when the maximum would be
 * exceeded or memory ran out. */
int dtk_buf_add(dtk_buf *b, const void *data, size_t len);
int dtk_buf_adds(dtk_buf *b, const char *s);
int dtk_buf_addc(dtk_buf *b, char c);
int dtk_buf_printf(dtk_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int dtk_buf_vprintf(dtk_buf *b, const char *fmt, va_list ap);
void dtk_buf_reset(dtk_buf *b);
/* The contents ("" when empty); borrowed, valid until the next append. */
const char *dtk_buf_str(const dtk_buf *b);
/* Hands the contents to the caller (never NULL unless out of memory) and
 * resets the buffer. */
char *dtk_buf_take(dtk_buf *b);
void dtk_buf_free(dtk_buf *b);

#endif
