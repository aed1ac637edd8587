/* ${VAR} expansion over a loaded YAML tree (config.md "Environment
 * variables"). Pure apart from reading the environment. */
#ifndef DTK_CONFIG_ENV_H
#define DTK_CONFIG_ENV_H

#include <stddef.h>

#include "util/value.h"

typedef struct dtk_env_opts {
	int deferred; /* leave unset variables as placeholders */
	const char *const *allow; /* expandable name prefixes; NULL = all */
	size_t n_allow;
	dtk_value *secrets; /* list: every value taken from the environment is appended */
} dtk_env_opts;

/* Expands every string scalar under v in place; plain scalars that changed
 * are re-typed as YAML would type the new text. keypath names v in
 * messages ("" for the root). On an unset variable in strict mode returns
 * -1 with errstr "LINE:COL: key.path: environment variable NAME is not
 * set". */
int dtk_env_expand(dtk_value *v, const char *keypath, const dtk_env_opts *opts, char *errstr,
		   size_t errstr_size);

/* 1 when s still holds a ${NAME} placeholder (not ${{ template text). */
int dtk_env_has_placeholder(const char *s);

#endif
