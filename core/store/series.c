/* dtk_series, the history a store hands to detectors. */
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

void dtk_series_clear(dtk_series *s)
{
	if (!s)
		return;
	for (size_t i = 0; s->context && i < s->n; i++)
		dtk_value_free(&s->context[i]);
	free(s->ts);
	free(s->values);
	free(s->context);
	memset(s, 0, sizeof(*s));
}

int dtk_series_push(dtk_series *out, int64_t ts, double v, int with_context, dtk_value *ctx)
{
	if (out->n == out->cap) {
		size_t cap = out->cap ? out->cap * 2 : 64;
		int64_t *t = realloc(out->ts, cap * sizeof(*t));
		if (!t)
			return -1;
		out->ts = t;
		double *vals = realloc(out->values, cap * sizeof(*vals));
		if (!vals)
			return -1;
		out->values = vals;
		if (with_context) {
			dtk_value **c = realloc(out->context, cap * sizeof(*c));
			if (!c)
				return -1;
			out->context = c;
		}
		out->cap = cap;
	}
	out->ts[out->n] = ts;
	out->values[out->n] = v;
	if (with_context)
		out->context[out->n] = ctx;
	out->n++;
	return 0;
}
