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
