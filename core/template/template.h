/* The Jinja subset of config.md, in C: `{{ expr }}`, `{% if/elif/else %}`,
 * `{% for %}`, `{# #}`, whitespace control, the listed filters and tests.
 * Rendering matches Jinja2 3.1 byte for byte for what the subset accepts.
 *
 * A compiled template is immutable and may be rendered from several threads
 * at once. */
#ifndef DTK_TEMPLATE_TEMPLATE_H
#define DTK_TEMPLATE_TEMPLATE_H

#include <stddef.h>

#include "util/value.h"

typedef struct dtk_template dtk_template;

/* Compiles text. Returns a template owned by the caller, or NULL with
 * errstr "line N: message" for a syntax error or a construct outside the
 * subset (naming the construct). */
dtk_template *dtk_template_compile(const char *text, char *errstr, size_t errstr_size);

void dtk_template_free(dtk_template **t);

enum {
	/* an undefined variable is an error (queries), instead of rendering
	 * empty (messages) */
	DTK_TEMPLATE_STRICT = 1 << 0,
};

/* Renders with vars (a map of names to values; DTK_V_DATETIME values behave
 * as naive UTC datetimes). Returns a malloc'd NUL-terminated string owned by
 * the caller, or NULL with errstr set. Output is bounded (16 MiB). */
char *dtk_template_render(const dtk_template *t, const dtk_value *vars, int flags,
			  char *errstr, size_t errstr_size);

/* 1 when the template refers to the top-level variable name anywhere. */
int dtk_template_uses_var(const dtk_template *t, const char *name);

/* 1 when text contains template syntax ("{{", "{%" or "{#"). */
int dtk_template_has_syntax(const char *text);

#endif
