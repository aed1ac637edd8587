/* Reading component params (a detector's, a collector's, an alerter's)
 * with type checks and messages in the "KEY: message" form the config
 * loader anchors at the key's line. Pure functions. */
#ifndef DTK_UTIL_PARAMS_H
#define DTK_UTIL_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "util/value.h"

/* Each reads params[key] (params borrowed, may be NULL): absent or null
 * leaves *out = def and returns 0; a value of the wrong type returns -1
 * with errstr "key: must be ...". */
int dtk_param_number(const dtk_value *params, const char *key, double def, double *out,
		     char *errstr, size_t errstr_size);
int dtk_param_bool(const dtk_value *params, const char *key, int def, int *out, char *errstr,
		   size_t errstr_size);
int dtk_param_int(const dtk_value *params, const char *key, int64_t def, int64_t *out,
		  char *errstr, size_t errstr_size);

/* params[key] when present and not null, else a new value from def (NULL
 * def means null). The result is owned by the caller. */
dtk_value *dtk_param_copy_or(const dtk_value *params, const char *key, dtk_value *def);

#endif
